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
use async_trait::async_trait;
use pingora::server::{ListenFds, ShutdownWatch};
use pingora::services::Service;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};

/// The accept backlog pingora's own listeners ask for.
const BACKLOG: u32 = 65535;

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
        let listener = match bind(&listen, fds).await {
            Ok(listener) => listener,
            // As pingora does when one of its listeners cannot bind.
            Err(e) => panic!("tcp route listener {listen}: {e}"),
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

/// The listening socket for `listen`: the one an upgraded-from process
/// handed over, else a new one, put in the table for the next upgrade.
async fn bind(listen: &str, fds: Option<ListenFds>) -> std::io::Result<TcpListener> {
    let handed_over = fds.as_ref().and_then(|f| f.lock().get(listen).copied());
    if let Some(fd) = handed_over {
        // SAFETY: the descriptor came from the table, which hands each
        // address's listening socket to one service.
        let socket = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        socket.set_nonblocking(true)?;
        return TcpListener::from_std(socket);
    }
    let addr: SocketAddr = listen.parse().map_err(std::io::Error::other)?;
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // A restart binds while the old connections are in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(BACKLOG)?;
    if let Some(fds) = fds {
        fds.lock().add(listen.to_owned(), listener.as_raw_fd());
    }
    Ok(listener)
}
