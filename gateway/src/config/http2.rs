//! `http2:`: what one HTTP/2 client connection may take from the gateway.
//! A front door meets clients that open streams without end, reset them as
//! fast as they open them (CVE-2023-44487), send headers in endless
//! CONTINUATION frames, or stop reading; each of these is cut off here
//! without touching the other clients.

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Http2Config {
    /// Streams a client may have open at once on one connection (the
    /// SETTINGS it is sent); one more is refused.
    #[serde(default = "default_max_concurrent_streams")]
    pub max_concurrent_streams: u32,
    /// Largest decoded request head (HPACK-decoded names and values); a
    /// larger one, however many CONTINUATION frames carry it, is refused.
    #[serde(default = "default_max_header_list_size")]
    pub max_header_list_size: ByteSize,
    /// Flow-control window the gateway opens per stream for request
    /// bodies, and for the whole connection.
    #[serde(default = "default_stream_window")]
    pub initial_stream_window: ByteSize,
    #[serde(default = "default_connection_window")]
    pub initial_connection_window: ByteSize,
    /// Streams the client reset before the gateway served them, at most at
    /// once: past it the connection is closed with GOAWAY
    /// ENHANCE_YOUR_CALM (rapid reset).
    #[serde(default = "default_max_pending_resets")]
    pub max_pending_resets: usize,
    /// A connection without a stream open is closed after this long.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Longest wait to send a piece of a response to a client that does
    /// not open its flow-control window (a stalled reader); then the
    /// stream is reset and its upstream freed.
    #[serde(default = "default_send_timeout", with = "humantime_serde")]
    pub send_timeout: Duration,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            max_concurrent_streams: default_max_concurrent_streams(),
            max_header_list_size: default_max_header_list_size(),
            initial_stream_window: default_stream_window(),
            initial_connection_window: default_connection_window(),
            max_pending_resets: default_max_pending_resets(),
            idle_timeout: default_idle_timeout(),
            send_timeout: default_send_timeout(),
        }
    }
}

fn default_max_concurrent_streams() -> u32 {
    100
}

fn default_max_header_list_size() -> ByteSize {
    ByteSize::kib(64)
}

/// HTTP/2's own initial window (RFC 9113 §6.9.2).
fn default_stream_window() -> ByteSize {
    ByteSize::b(65_535)
}

fn default_connection_window() -> ByteSize {
    ByteSize::mib(1)
}

/// The `h2` crate's own default.
fn default_max_pending_resets() -> usize {
    20
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(300)
}

fn default_send_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Largest flow-control window HTTP/2 allows (RFC 9113 §6.9.1).
const MAX_WINDOW: u64 = (1 << 31) - 1;

impl Http2Config {
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.max_concurrent_streams == 0 {
            out.push("http2.max_concurrent_streams: must be at least 1 (e.g. 100)".into());
        }
        if !(1024..=u64::from(u32::MAX)).contains(&self.max_header_list_size.as_u64()) {
            out.push(
                "http2.max_header_list_size: must be between 1KiB and 4GiB (e.g. 64KiB)".into(),
            );
        }
        for (field, window) in [
            ("initial_stream_window", self.initial_stream_window),
            ("initial_connection_window", self.initial_connection_window),
        ] {
            if !(65_535..=MAX_WINDOW).contains(&window.as_u64()) {
                out.push(format!(
                    "http2.{field}: must be between 65535 bytes (HTTP/2's initial window) and 2147483647 (e.g. 1MiB)"
                ));
            }
        }
        if self.max_pending_resets == 0 {
            out.push("http2.max_pending_resets: must be at least 1 (e.g. 20)".into());
        }
        if self.idle_timeout.is_zero() || self.send_timeout.is_zero() {
            out.push(
                "http2: idle_timeout and send_timeout must be longer than 0 (e.g. 5m, 30s)".into(),
            );
        }
        out
    }

    /// The `h2` crate's server settings (pingora-proxy hands them to each
    /// HTTP/2 client connection's handshake).
    pub fn h2_options(&self) -> pingora::protocols::http::v2::server::H2Options {
        let mut options = pingora::protocols::http::v2::server::H2Options::new();
        options
            .max_concurrent_streams(self.max_concurrent_streams)
            .max_header_list_size(self.max_header_list_size.as_u64() as u32)
            .initial_window_size(self.initial_stream_window.as_u64() as u32)
            .initial_connection_window_size(self.initial_connection_window.as_u64() as u32)
            .max_pending_accept_reset_streams(self.max_pending_resets);
        options
    }
}
