//! One attempt at a request on one upstream connection: send the head and
//! the body, relay the response, keep the connection when it may carry
//! another. How an attempt failed decides whether `exchange` tries again.

use super::buffer::Buffer;
use super::client::{After, Client};
use super::framing::{Framing, FramingError};
use super::log::Traffic;
use super::pool;
use super::relay::{relay, tunnel, write_all, write_all_after, Relay};
use super::response::{self, ClientSide};
use super::service::Service;
use crate::deadline::within;
use crate::split::Color;
use crate::upstream::Endpoint;
use pingora::protocols::Stream;
use std::time::Duration;

/// Room to read upstream bytes into: a 16 KiB response fits one read.
const UPSTREAM_ROOM: usize = 32 * 1024;
/// Room to read a request body into.
const BODY_ROOM: usize = 16 * 1024;
/// Up to this many first body bytes are copied behind the response head
/// (one write); more go out with `writev` from where they were read.
const SMALL_BODY: usize = 2048;
/// How one attempt ended, when it did not deliver a response.
pub(super) enum Failure {
    /// The client sent a body whose chunked framing is broken: 400.
    BadBody(FramingError),
    /// The client went away, or stopped sending its body.
    ClientGone,
    /// The connection failed before any response byte: on a reused one
    /// the upstream had closed it while idle, on a new one it went away.
    /// Safe to retry when the request is retryable (nginx's
    /// `proxy_next_upstream error` does the same for idempotent requests).
    NoResponse { reused: bool, error: String },
    /// The upstream failed; the client gets this status.
    Upstream(u16, String),
}

/// A response delivered (or cut off once started).
pub(super) struct Delivered {
    pub status: u16,
    pub after: After,
}

impl Service {
    pub(super) async fn forward(
        &self,
        client: &mut Client,
        side: &ClientSide<'_>,
        framing: &mut Framing,
        mut upstream: Stream,
        attempt: Attempt<'_>,
        traffic: &mut Traffic,
    ) -> Result<Delivered, Failure> {
        let request = side.request;
        traffic.upstream = Some(attempt.endpoint.addr);
        // The head and whatever of the body already came, in one write.
        let mut out = Vec::with_capacity(512 + client.buf.pending().len());
        request.write_upstream_head(&mut out, attempt.host_rewrite);
        let n = framing
            .advance(client.buf.pending())
            .map_err(Failure::BadBody)?;
        out.extend_from_slice(&client.buf.pending()[..n]);
        traffic.bytes_in += n as u64;
        if let Some(taps) = traffic.taps.as_mut() {
            taps.request.take(&client.buf.pending()[..n]);
        }
        client.buf.consume(n);
        if let Err(e) = write_all(&mut upstream, &out).await {
            return Err(attempt.failed(e, false));
        }
        if request.expects_continue && !framing.is_done() {
            write_all(&mut client.stream, b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(|_| Failure::ClientGone)?;
        }
        let body_timeout = self.timeouts.keepalive;
        traffic.bytes_in += relay(
            &mut client.stream,
            &mut client.buf,
            framing,
            &mut upstream,
            body_timeout,
            BODY_ROOM,
            traffic.taps.as_mut().map(|t| &mut t.request),
        )
        .await
        .map_err(|e| match e {
            Relay::Framing(e) => Failure::BadBody(e),
            Relay::Write(e) => {
                Failure::Upstream(502, format!("sending the request body upstream: {e}"))
            }
            Relay::ReadClosed | Relay::Read(_) | Relay::Timeout => Failure::ClientGone,
        })?;

        // The response head; 1xx heads before it go to the client as they come.
        let mut from_upstream = Buffer::default();
        let response = loop {
            out.clear();
            match response::parse(from_upstream.pending(), side, &mut out) {
                Ok(Some(response)) if response.is_interim() => {
                    from_upstream.consume(response.head_len);
                    write_all(&mut client.stream, &out)
                        .await
                        .map_err(|_| Failure::ClientGone)?;
                    continue;
                }
                Ok(Some(response)) => break response,
                Ok(None) => {}
                Err(bad) => {
                    return Err(Failure::Upstream(
                        502,
                        format!("{}: {}", attempt.endpoint.addr, bad.0),
                    ))
                }
            }
            let received = !from_upstream.is_empty();
            match within(
                attempt.read_timeout,
                from_upstream.read_from(&mut upstream, UPSTREAM_ROOM),
            )
            .await
            {
                Some(Ok(n)) if n > 0 => {}
                Some(Ok(_)) => {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "closed before a response",
                    );
                    return Err(attempt.failed(e, received));
                }
                Some(Err(e)) => return Err(attempt.failed(e, received)),
                None => {
                    return Err(Failure::Upstream(
                        504,
                        format!(
                            "{}: no response within {:?}",
                            attempt.endpoint.addr, attempt.read_timeout
                        ),
                    ))
                }
            }
        };
        if let Some(taps) = traffic.taps.as_mut() {
            taps.response_head(
                &from_upstream.pending()[..response.head_len],
                response.framing,
            );
        }
        from_upstream.consume(response.head_len);
        let mut body = response.framing;
        let n = body
            .advance(from_upstream.pending())
            .map_err(|e| Failure::Upstream(502, format!("{}: {e}", attempt.endpoint.addr)))?;
        let first_body = &from_upstream.pending()[..n];
        if let Some(taps) = traffic.taps.as_mut() {
            taps.response.take(first_body);
        }
        traffic.bytes_out += (out.len() + n) as u64;
        // A small first piece is copied behind the head (one plain write);
        // a large one goes out from where it was read.
        let written = if n <= SMALL_BODY {
            out.extend_from_slice(first_body);
            write_all(&mut client.stream, &out).await
        } else {
            write_all_after(&mut client.stream, &out, first_body).await
        };
        from_upstream.consume(n);
        if written.is_err() {
            return Ok(Delivered {
                status: response.status,
                after: After::Close,
            });
        }
        drop(out);

        if response.status == 101 && request.upgrade {
            // Open until either side closes, or a drain of its colour ends it.
            let drained = self.gateway.drains.closing(attempt.color);
            tunnel(
                client,
                &mut upstream,
                &from_upstream,
                drained,
                request.websocket,
            )
            .await;
            return Ok(Delivered {
                status: 101,
                after: After::Close,
            });
        }
        let relayed = relay(
            &mut upstream,
            &mut from_upstream,
            &mut body,
            &mut client.stream,
            attempt.read_timeout,
            UPSTREAM_ROOM,
            traffic.taps.as_mut().map(|t| &mut t.response),
        )
        .await;
        let relayed = relayed.map(|n| traffic.bytes_out += n);
        if let Err(e) = relayed {
            // The response started: all that is left is to cut it off.
            tracing::debug!(endpoint = %attempt.endpoint.addr, error = ?e, "response cut off");
            return Ok(Delivered {
                status: response.status,
                after: After::Close,
            });
        }
        if let Some(taps) = traffic.taps.as_mut() {
            taps.complete = true;
        }
        // A drained colour's connections are not kept for reuse.
        let draining = self.gateway.drains.is_draining(attempt.color);
        if response.reusable && from_upstream.is_empty() && framing.is_done() && !draining {
            pool::put(attempt.endpoint.pool_key, upstream);
        }
        let closing = side.closing || response.framing == Framing::UntilClose;
        Ok(Delivered {
            status: response.status,
            after: if closing {
                After::Close
            } else {
                After::KeepAlive
            },
        })
    }
}

/// One endpoint and connection being tried.
pub(super) struct Attempt<'a> {
    pub endpoint: &'a Endpoint,
    pub color: Color,
    pub reused: bool,
    pub host_rewrite: Option<&'a str>,
    pub read_timeout: Duration,
}

impl Attempt<'_> {
    /// A failure to send, or to get a response head.
    pub(super) fn failed(&self, e: std::io::Error, received: bool) -> Failure {
        if !received {
            Failure::NoResponse {
                reused: self.reused,
                error: e.to_string(),
            }
        } else {
            Failure::Upstream(502, format!("{}: {e}", self.endpoint.addr))
        }
    }
}
