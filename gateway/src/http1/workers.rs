//! Which worker thread serves a client connection.
//!
//! pingora accepts on one worker's runtime and hands each connection to a
//! random worker, but the socket stays registered with the accepting
//! runtime's reactor: with several workers, most readiness events then
//! cross threads, and the random choice leaves some workers with more
//! connections than others. So with more than one worker, a plain TCP
//! connection goes to the worker serving the fewest, and its socket is
//! registered again with that worker's reactor. (TLS connections stay
//! where pingora put them: their socket is inside the TLS stream.)

use pingora::protocols::l4::stream::Stream as TcpStream;
use pingora::protocols::{GetSocketDigest, SocketDigest, Stream};
use std::os::fd::{AsRawFd, BorrowedFd};
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
    /// known; this one on a tie), called on the worker pingora chose.
    pub fn place(&self) -> (Handle, Placed) {
        let here = std::thread::current().id();
        let mut known = self.known.lock().expect("worker list poisoned");
        if !known.iter().any(|w| w.thread == here) {
            known.push(Worker {
                thread: here,
                handle: Handle::current(),
                connections: Arc::default(),
            });
        }
        let load = |w: &Worker| (w.connections.load(Ordering::Relaxed), w.thread != here);
        let worker = known
            .iter()
            .min_by_key(|w| load(w))
            .expect("this worker is known");
        worker.connections.fetch_add(1, Ordering::Relaxed);
        (worker.handle.clone(), Placed(worker.connections.clone()))
    }
}

/// The same TCP connection, registered with the current runtime's reactor;
/// a stream that is not plain TCP (TLS) comes back as it was.
pub fn register_here(stream: Stream) -> Stream {
    let Some(tcp) = stream.as_any().downcast_ref::<TcpStream>() else {
        return stream;
    };
    // SAFETY: the descriptor belongs to `stream`, alive for this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(tcp.as_raw_fd()) };
    let Ok(owned) = fd.try_clone_to_owned() else {
        return stream;
    };
    // The duplicate shares the socket and its flags (non-blocking, nodelay).
    let Ok(tcp) = tokio::net::TcpStream::from_std(std::net::TcpStream::from(owned)) else {
        return stream;
    };
    drop(stream);
    let mut moved = TcpStream::from(tcp);
    // The socket's addresses, as the listener gave them (pingora-proxy
    // reads the client's address from them after an h2c hand-over).
    let fd = moved.as_raw_fd();
    moved.set_socket_digest(SocketDigest::from_raw_fd(fd));
    Box::new(moved)
}
