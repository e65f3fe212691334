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
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};

/// The accept backlog pingora's own listeners ask for.
const BACKLOG: u32 = 65535;

/// Binds tried after the first while the address is in use.
const BIND_TRIES: u32 = 29;

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
            Err(e) => {
                // A route that cannot take its connections: the process
                // stops, as nginx does, so a supervisor sees it (pingora's
                // own listeners would panic this service's thread and the
                // process would run on without them).
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
    let mut tries = 0;
    let listener = loop {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        // A restart binds while the old connections are in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        match socket.bind(addr) {
            Ok(()) => break socket.listen(BACKLOG)?,
            // A process on its way out may still hold the port: wait for
            // it as pingora's listeners do (30 tries, a second apart).
            Err(e) if e.kind() == ErrorKind::AddrInUse && tries < BIND_TRIES => {
                tries += 1;
                tracing::warn!(listener = %listen, "address in use; trying again in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    };
    if let Some(fds) = fds {
        fds.lock().add(listen.to_owned(), listener.as_raw_fd());
    }
    Ok(listener)
}
