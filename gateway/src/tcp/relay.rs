//! Bytes both ways between a client and an upstream until either side is
//! done (a half-close is passed on: tokio's `copy_bidirectional` shuts the
//! other side's writing down and goes on the other way), the connection
//! idles past its timeout, or its colour's drain deadline comes.

use pingora::protocols::Stream;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Buffer per direction: nginx's `proxy_buffer_size` for streams. Each is
/// allocated (and zeroed, by tokio) per connection, so larger ones cost
/// every short connection (64 KiB: ~130k instructions) for little gain
/// on long ones.
const BUFFER: usize = 16 * 1024;

pub enum Ended {
    /// Both sides finished.
    Done,
    /// A side failed (reset, broken pipe).
    Failed(std::io::Error),
    Idle,
    Drained,
}

pub struct Relayed {
    /// Client to upstream.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub ended: Ended,
}

/// A stream that counts what is read from it.
struct Counted<'a> {
    inner: &'a mut Stream,
    read: &'a AtomicU64,
}

impl AsyncRead for Counted<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut *self.inner).poll_read(cx, buf);
        self.read
            .fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counted<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

pub async fn both_ways(
    client: &mut Stream,
    upstream: &mut Stream,
    idle: Duration,
    drained: impl std::future::Future<Output = ()>,
) -> Relayed {
    let (bytes_in, bytes_out) = (AtomicU64::new(0), AtomicU64::new(0));
    let ended = {
        let mut c = Counted {
            inner: client,
            read: &bytes_in,
        };
        let mut u = Counted {
            inner: upstream,
            read: &bytes_out,
        };
        let copy = tokio::io::copy_bidirectional_with_sizes(&mut c, &mut u, BUFFER, BUFFER);
        tokio::pin!(copy);
        tokio::pin!(drained);
        let moved = || bytes_in.load(Ordering::Relaxed) + bytes_out.load(Ordering::Relaxed);
        let (mut seen, mut since) = (moved(), Instant::now());
        let tick = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        loop {
            tokio::select! {
                done = &mut copy => break match done {
                    Ok(_) => Ended::Done,
                    Err(e) => Ended::Failed(e),
                },
                _ = &mut drained => break Ended::Drained,
                _ = tokio::time::sleep(tick) => {
                    let now = moved();
                    if now != seen {
                        (seen, since) = (now, Instant::now());
                    } else if since.elapsed() >= idle {
                        break Ended::Idle;
                    }
                }
            }
        }
    };
    Relayed {
        bytes_in: bytes_in.into_inner(),
        bytes_out: bytes_out.into_inner(),
        ended,
    }
}
