//! Idle upstream connections kept for reuse, one pool per worker thread.
//!
//! Each worker is a single-threaded runtime (`work_stealing: false`), so a
//! thread-local pool needs no lock, and returning a connection spawns
//! nothing: instead of a task watching every idle connection (pingora's
//! pool), a connection is checked when it is taken, and dropped if the
//! upstream closed it, sent bytes nobody asked for, or it idled too long.

use crate::choose::Attempts;
use crate::metrics::Metrics;
use crate::upstream::Endpoint;
use nohash_hasher::IntMap;
use pingora::connectors::TransportConnector;
use pingora::protocols::Stream;
use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, ReadBuf};

/// Longest an upstream connection waits in the pool (pingora's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most idle connections kept per endpoint and worker (nginx's `keepalive`
/// is per worker too).
const MAX_IDLE_PER_ENDPOINT: usize = 128;

struct Idle {
    stream: Stream,
    since: Instant,
}

thread_local! {
    // Keyed by pingora's reuse hash: hashing it again would be for nothing.
    static POOL: RefCell<IntMap<u64, Vec<Idle>>> = RefCell::new(IntMap::default());
}

/// The most recently used live connection to the endpoint `key`, if any.
pub fn take(key: u64) -> Option<Stream> {
    POOL.with_borrow_mut(|pool| {
        let idle = pool.get_mut(&key)?;
        while let Some(mut entry) = idle.pop() {
            if entry.since.elapsed() < IDLE_TIMEOUT && still_open(&mut entry.stream) {
                return Some(entry.stream);
            }
        }
        None
    })
}

/// A connection to `endpoint`: an idle one from the pool (`true`: reused),
/// else a new one. A connect failure is counted for `route` and the
/// endpoint marked tried; `None` says to try the next.
pub async fn connection(
    connector: &TransportConnector,
    endpoint: &Endpoint,
    route: &str,
    attempts: &mut Attempts,
    metrics: &Metrics,
) -> Option<(Stream, bool)> {
    if let Some(stream) = take(endpoint.pool_key) {
        return Some((stream, true));
    }
    // Boxed: connecting is rare (connections are reused) and its future is
    // large (~1.7 KB); inline, every request's future would be that much
    // bigger, and be copied at that size when it is made.
    match Box::pin(connector.new_stream(&endpoint.peer)).await {
        Ok(stream) => Some((stream, false)),
        Err(e) => {
            attempts.unreachable(endpoint.addr, route, metrics, e);
            None
        }
    }
}

/// Drops every idle connection to the endpoint `key`: one of them turned
/// out closed, so the upstream restarted or went away and the others are
/// as likely closed, even where that has not shown yet.
pub fn forget(key: u64) {
    POOL.with_borrow_mut(|pool| pool.remove(&key));
}

/// Keeps a connection whose last response ended cleanly.
pub fn put(key: u64, stream: Stream) {
    let now = Instant::now();
    POOL.with_borrow_mut(|pool| {
        let idle = pool.entry(key).or_default();
        // Oldest first: drop the ones that idled too long.
        let expired = idle
            .iter()
            .take_while(|e| now.saturating_duration_since(e.since) >= IDLE_TIMEOUT)
            .count();
        idle.drain(..expired);
        if idle.len() >= MAX_IDLE_PER_ENDPOINT {
            idle.remove(0);
        }
        idle.push(Idle { stream, since: now });
    });
}

/// An idle connection must have nothing to read: readable means the
/// upstream closed it or sent bytes outside any response. (tokio answers
/// from the readiness it already has, so this costs no syscall while the
/// socket is quiet.)
fn still_open(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    matches!(Pin::new(stream).poll_read(&mut cx, &mut buf), Poll::Pending)
}
