//! A TCP route listener's accept loop, a pingora service of its own.
//!
//! pingora's listening service wraps every connection in its `Stream` (a
//! boxed stream with a socket digest, a pending-time clock and a socket
//! check on drop) and runs it through its handshake and app layers: more
//! than half of a relayed connection's cost. A relay needs none of it, so
//! this loop accepts plain tokio streams. The listening socket still goes
//! through pingora's table of listening descriptors, so an in-place upgrade
//! hands it to the new process as it does pingora's own listeners.

use super::TcpApp;
use crate::listening;
use async_trait::async_trait;
use pingora::server::{ListenFds, ShutdownWatch};
use pingora::services::Service;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub struct TcpService {
    name: String,
    app: Arc<TcpApp>,
}

impl TcpService {
    pub fn new(app: TcpApp) -> TcpService {
        TcpService {
            name: format!("tcp {}", app.listen),
            app: Arc::new(app),
        }
    }
}

#[async_trait]
impl Service for TcpService {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        mut shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
    ) {
        let listen = self.app.listen.clone();
        let fds = fds.expect("pingora hands every service its table of listening sockets");
        let fd = listening::socket_or_exit(&listen, &fds, "a TCP route's listener").await;
        let listener = match tokio_listener(fd) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(listener = %listen, "a TCP route's listener cannot listen: {e}");
                std::process::exit(1);
            }
        };
        loop {
            tokio::select! {
                // Shutdown began: no new connections (the next process, on
                // an upgrade, accepts them); open ones run on.
                _ = shutdown.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((client, peer)) => {
                        let app = self.app.clone();
                        tokio::spawn(async move { app.serve(client, peer).await });
                    }
                    Err(e) => {
                        // Out of descriptors, most likely: let some close.
                        tracing::warn!(listener = %listen, "accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
            }
        }
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// The table's socket as this loop's own.
fn tokio_listener(fd: RawFd) -> std::io::Result<TcpListener> {
    // SAFETY: the descriptor is the table's listening socket for this
    // route's address, which no other service takes (HTTP listeners and
    // TCP routes may not share an address: config validation).
    let socket = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket)
}
