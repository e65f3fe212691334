//! Bytes both ways between a client and an upstream until both sides are
//! done (a half-close is passed on: the other side's writing is shut down
//! and the other way goes on), a side fails, the connection idles past its
//! timeout, or its colour's drain deadline comes.
//!
//! Idleness and drains are both checked on one tick of the worker's
//! deadline list: no timer and no drain subscription per connection (a
//! `watch` receiver and its waiter, ~2,000 instructions a connection). A
//! drain is seen on the next tick after it starts and its deadline kept
//! from then on, so a drain shorter than the tick ends connections up to a
//! tick late.

use crate::deadline::Deadline;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

/// Buffer per direction, taken without zeroing (tokio's
/// `copy_bidirectional` zeroes its buffers per connection: ~2 instructions
/// a byte) and filled by reads into its spare room.
const BUFFER: usize = 64 * 1024;

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

/// One direction: bytes read from one side into `buf` (its spare room, not
/// zeroed) and written to the other, until the reader ends; then the
/// writer is shut down (the half-close passes on) unless the other
/// direction already ended, when both streams are about to close anyway
/// (closing sends the FIN; a shutdown first is a syscall for nothing).
/// Polled in place on both streams, so neither needs splitting (a lock per
/// poll) nor a task.
struct Pipe {
    buf: Vec<u8>,
    written: usize,
    read_done: bool,
    done: bool,
}

impl Pipe {
    fn new() -> Pipe {
        Pipe {
            buf: Vec::with_capacity(BUFFER),
            written: 0,
            read_done: false,
            done: false,
        }
    }

    fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut TcpStream,
        to: &mut TcpStream,
        moved: &AtomicU64,
        other_done: bool,
    ) -> Poll<std::io::Result<()>> {
        while !self.done {
            while self.written < self.buf.len() {
                let n = ready!(Pin::new(&mut *to).poll_write(cx, &self.buf[self.written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                self.written += n;
            }
            // A socket writes through: nothing to flush.
            self.buf.clear();
            self.written = 0;
            if self.read_done {
                if !other_done {
                    ready!(Pin::new(&mut *to).poll_shutdown(cx))?;
                }
                self.done = true;
                break;
            }
            let n = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut *from),
                cx,
                &mut self.buf
            ))?;
            self.read_done = n == 0;
            moved.fetch_add(n as u64, Relaxed);
        }
        Poll::Ready(Ok(()))
    }
}

/// `drain_left`: while the connection's colour drains, the time left to
/// its deadline.
pub async fn both_ways(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    idle: Duration,
    drain_left: impl Fn() -> Option<Duration>,
) -> Relayed {
    // Atomics only because the future must be `Send`; one task uses them.
    let (bytes_in, bytes_out) = (AtomicU64::new(0), AtomicU64::new(0));
    let ended = {
        let (mut inward, mut outward) = (Pipe::new(), Pipe::new());
        // The first failure ends both directions.
        let copy = poll_fn(|cx| {
            let inward = inward.poll_copy(cx, client, upstream, &bytes_in, outward.done)?;
            let outward = outward.poll_copy(cx, upstream, client, &bytes_out, inward.is_ready())?;
            match (inward, outward) {
                (Poll::Ready(()), Poll::Ready(())) => Poll::Ready(Ok::<(), std::io::Error>(())),
                _ => Poll::Pending,
            }
        });
        tokio::pin!(copy);
        // Bytes moved since the last tick restart the quiet time.
        let tick = (idle / 4).clamp(Duration::from_millis(250), Duration::from_secs(5));
        let moved = || bytes_in.load(Relaxed) + bytes_out.load(Relaxed);
        let (mut seen, mut since) = (moved(), Instant::now());
        let mut next_tick = Deadline::after(tick);
        poll_fn(|cx| {
            if let Poll::Ready(done) = copy.as_mut().poll(cx) {
                return Poll::Ready(match done {
                    Ok(()) => Ended::Done,
                    Err(e) => Ended::Failed(e),
                });
            }
            while next_tick.poll_expired(cx).is_ready() {
                let drain_left = drain_left();
                if drain_left.is_some_and(|left| left.is_zero()) {
                    return Poll::Ready(Ended::Drained);
                }
                let now = moved();
                if now != seen {
                    (seen, since) = (now, Instant::now());
                } else if since.elapsed() >= idle {
                    return Poll::Ready(Ended::Idle);
                }
                next_tick = Deadline::after(drain_left.map_or(tick, |left| left.min(tick)));
            }
            Poll::Pending
        })
        .await
    };
    Relayed {
        bytes_in: bytes_in.into_inner(),
        bytes_out: bytes_out.into_inner(),
        ended,
    }
}
