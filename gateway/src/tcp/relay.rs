//! Bytes both ways between a client and an upstream until both sides are
//! done (a half-close is passed on: the other side's writing is shut down
//! and the other way goes on), a side fails, the connection idles past its
//! timeout, or its colour's drain deadline comes.

use bytes::BytesMut;
use pingora::protocols::Stream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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

/// One direction until its reader is done (then the writer is shut down:
/// the half-close passes on), counting what it moved.
async fn one_way<R, W>(mut from: R, mut to: W, moved: &AtomicU64) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(BUFFER);
    loop {
        buf.clear();
        if from.read_buf(&mut buf).await? == 0 {
            return to.shutdown().await;
        }
        moved.fetch_add(buf.len() as u64, Ordering::Relaxed);
        to.write_all(&buf).await?;
        // pingora's streams buffer writes: what was read goes out now.
        to.flush().await?;
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
        let (client_reads, client_writes) = tokio::io::split(&mut *client);
        let (upstream_reads, upstream_writes) = tokio::io::split(&mut *upstream);
        // The first failure ends both directions.
        let copy = async {
            tokio::try_join!(
                one_way(client_reads, upstream_writes, &bytes_in),
                one_way(upstream_reads, client_writes, &bytes_out),
            )
        };
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
