//! Which worker thread serves a client connection.
//!
//! Connections are accepted on one worker's runtime (the gateway's own
//! accept loop for plain listeners, pingora's for TLS ones) and their
//! sockets registered with that runtime's reactor. With several workers,
//! a connection goes to the worker serving the fewest, and a plain one's
//! socket is registered again with that worker's reactor, so its
//! readiness events do not cross threads. (TLS connections stay where
//! pingora put them: their socket is inside the TLS stream.)

use super::plain::PlainStream;
use pingora::protocols::Stream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use tokio::runtime::Handle;

#[derive(Default)]
pub struct Workers {
    /// The workers seen so far (each registers with its first connection).
    known: Mutex<Vec<Worker>>,
}

struct Worker {
    thread: ThreadId,
    handle: Handle,
    connections: Arc<AtomicUsize>,
}

/// Counts a connection against its worker while it lives.
pub struct Placed(Arc<AtomicUsize>);

impl Drop for Placed {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Workers {
    /// The runtime to serve a new connection on (the least busy worker
    /// known; this one on a tie), called on the worker that accepted it.
    pub fn place(&self) -> (Handle, Placed) {
        let here = std::thread::current().id();
        let mut known = self.known.lock().expect("worker list poisoned");
        Self::know_this_one(&mut known);
        let load = |w: &Worker| (w.connections.load(Ordering::Relaxed), w.thread != here);
        let worker = known
            .iter()
            .min_by_key(|w| load(w))
            .expect("this worker is known");
        worker.connections.fetch_add(1, Ordering::Relaxed);
        (worker.handle.clone(), Placed(worker.connections.clone()))
    }

    /// How many workers are known.
    pub fn known(&self) -> usize {
        self.known.lock().expect("worker list poisoned").len()
    }

    /// Makes the worker this is called on known.
    pub fn know_this_worker(&self) {
        Self::know_this_one(&mut self.known.lock().expect("worker list poisoned"));
    }

    fn know_this_one(known: &mut Vec<Worker>) {
        let here = std::thread::current().id();
        if !known.iter().any(|w| w.thread == here) {
            known.push(Worker {
                thread: here,
                handle: Handle::current(),
                connections: Arc::default(),
            });
        }
    }
}

/// The same TCP connection, registered with the current runtime's reactor
/// instead of the one that accepted it (`None`: it could not be, and is
/// closed); a stream that is not plain TCP (TLS) comes back as it was.
pub fn register_here(stream: Stream) -> Option<Stream> {
    if !stream.as_any().is::<PlainStream>() {
        return Some(stream);
    }
    let PlainStream(tcp) = *stream.into_any().downcast::<PlainStream>().ok()?;
    // Deregistered from the accepting reactor, registered with this one;
    // the socket keeps its flags (non-blocking, nodelay).
    match tcp.into_std().and_then(tokio::net::TcpStream::from_std) {
        Ok(tcp) => Some(Box::new(PlainStream(tcp))),
        Err(e) => {
            tracing::debug!("a connection could not move to its worker: {e}");
            None
        }
    }
}
