//! Moving bytes: a body from one side to the other as it arrives, a
//! tunnel after an upgrade, and the gateway's own short answers.

use super::buffer::Buffer;
use super::client::Client;
use super::framing::{Framing, FramingError};
use crate::deadline::within;
use crate::mirror::Capture;
use pingora::protocols::Stream;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

pub enum Relay {
    ReadClosed,
    Read(std::io::Error),
    Write(std::io::Error),
    Framing(FramingError),
    Timeout,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Relay::ReadClosed => write!(f, "closed before the body ended"),
            Relay::Read(e) => write!(f, "read: {e}"),
            Relay::Write(e) => write!(f, "write: {e}"),
            Relay::Framing(e) => write!(f, "{e}"),
            Relay::Timeout => write!(f, "timed out"),
        }
    }
}

/// Copies the rest of a body from `from` to `to` as it arrives, until its
/// framing says it ended (or, for [`Framing::UntilClose`], `from` closes),
/// and says how many bytes it relayed; a mirrored exchange keeps a copy in
/// `tap`.
pub async fn relay(
    from: &mut Stream,
    buf: &mut Buffer,
    framing: &mut Framing,
    to: &mut Stream,
    read_timeout: Duration,
    room: usize,
    mut tap: Option<&mut Capture>,
) -> Result<u64, Relay> {
    let mut relayed = 0;
    while !framing.is_done() {
        let read = within(read_timeout, buf.read_from(from, room)).await;
        match read {
            Some(Ok(0)) if *framing == Framing::UntilClose => return Ok(relayed),
            Some(Ok(0)) => return Err(Relay::ReadClosed),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(Relay::Read(e)),
            None => return Err(Relay::Timeout),
        }
        let n = framing.advance(buf.pending()).map_err(Relay::Framing)?;
        write_all(to, &buf.pending()[..n])
            .await
            .map_err(Relay::Write)?;
        if let Some(tap) = tap.as_deref_mut() {
            tap.take(&buf.pending()[..n]);
        }
        buf.consume(n);
        relayed += n as u64;
    }
    Ok(relayed)
}

/// A WebSocket close frame from the server (unmasked), code 1001: "going
/// away", as a server that shuts down says it (RFC 6455 7.4.1).
const WEBSOCKET_GOING_AWAY: &[u8] = &[0x88, 0x02, 0x03, 0xe9];

/// After a 101: bytes flow both ways until either side closes, or until
/// `drained` (the colour's drain deadline): then a WebSocket client is told
/// the server goes away, and both sides are closed.
pub async fn tunnel(
    client: &mut Client,
    upstream: &mut Stream,
    early: &Buffer,
    drained: impl std::future::Future<Output = ()>,
    websocket: bool,
) {
    if write_all(&mut client.stream, early.pending())
        .await
        .is_err()
        || write_all(upstream, client.buf.pending()).await.is_err()
    {
        return;
    }
    let pending = client.buf.pending().len();
    client.buf.consume(pending);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client.stream, upstream) => {}
        _ = drained => {
            if websocket {
                let _ = write_all(&mut client.stream, WEBSOCKET_GOING_AWAY).await;
            }
            tracing::info!("tunnel closed: its colour was drained");
        }
    }
}

/// `head`, then `body`, without copying the body behind the head: one
/// `writev` where the kernel takes both (a 16 KiB body read with its
/// response head was one more copy of every such response).
pub async fn write_all_after(
    stream: &mut Stream,
    mut head: &[u8],
    mut body: &[u8],
) -> std::io::Result<()> {
    while !head.is_empty() || !body.is_empty() {
        let slices = [std::io::IoSlice::new(head), std::io::IoSlice::new(body)];
        let n = stream.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        body = &body[n - from_head..];
    }
    stream.flush().await
}

pub async fn write_all(stream: &mut Stream, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// The gateway's own answer: a status and no body.
pub async fn respond(client: &mut Client, status: u16, closing: bool) {
    respond_with(client, status, closing, "").await
}

/// Tells a client refused for overload when to come back.
pub const RETRY_AFTER: &str = "Retry-After: 1\r\n";

/// The gateway's own answer with extra header lines (each ending `\r\n`).
pub async fn respond_with(client: &mut Client, status: u16, closing: bool, extra: &str) {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let connection = if closing { "Connection: close\r\n" } else { "" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nCache-Control: private, no-store\r\n{extra}{connection}\r\n"
    );
    let _ = write_all(&mut client.stream, head.as_bytes()).await;
}
