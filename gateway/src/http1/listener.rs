//! The proxy's listeners, one pingora service: plain listeners on accept
//! loops of the gateway's own, TLS listeners on pingora's (its handshake,
//! certificates and pre-handshake PROXY protocol), in the same worker
//! runtimes.
//!
//! Why plain listeners are not pingora's: its listener wraps every
//! connection in its own stream type with a socket digest (~830 B that an
//! idle keep-alive connection would hold for nothing) and runs it through a
//! task of its own before the app's. The listening sockets still go
//! through pingora's table of descriptors, so an in-place upgrade hands
//! them over like pingora's own.

use super::app::Http1App;
use super::plain::PlainListener;
use crate::listening;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::{ListenFds, ShutdownWatch};
use pingora::services::listening::Service as PingoraListeners;
use pingora::services::Service;
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub struct ProxyListeners<H2: ServerApp + Send + Sync + 'static> {
    app: Arc<Http1App<H2>>,
    plain: Vec<PlainListener>,
    /// The TLS listeners, added by the caller (`tls_mut`).
    tls: PingoraListeners<TlsClients<H2>>,
    /// Every listener's address, plain and TLS, bound first.
    addresses: Vec<String>,
}

impl<H2: ServerApp + Send + Sync + 'static> ProxyListeners<H2> {
    pub fn new(app: Http1App<H2>, plain: Vec<PlainListener>) -> Self {
        let app = Arc::new(app);
        ProxyListeners {
            tls: PingoraListeners::new("proxy".to_owned(), TlsClients(app.clone())),
            addresses: plain.iter().map(|l| l.address.to_string()).collect(),
            app,
            plain,
        }
    }

    /// pingora's listening service, for TLS listeners and their settings.
    pub fn tls_mut(&mut self) -> &mut PingoraListeners<TlsClients<H2>> {
        &mut self.tls
    }

    /// A TLS listener's address, bound with the plain ones.
    pub fn bind_tls(&mut self, address: &str) {
        self.addresses.push(address.to_owned());
    }

    /// Accepts on `listener` until shutdown begins (then the next process,
    /// on an upgrade, accepts); open connections run on.
    async fn accept(
        app: Arc<Http1App<H2>>,
        plain: PlainListener,
        listener: TcpListener,
        mut shutdown: ShutdownWatch,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => app.accept_plain(tcp, peer, &plain, &shutdown),
                    Err(e) => {
                        // Out of descriptors, most likely: let some close.
                        tracing::warn!(listener = %plain.address, "accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
            }
        }
    }
}

#[async_trait]
impl<H2: ServerApp + Send + Sync + 'static> Service for ProxyListeners<H2> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
    ) {
        let fds = fds.expect("pingora hands every service its table of listening sockets");
        // Every listener bound before any accepts: one that cannot listen
        // stops the process (see `listening`).
        for address in &self.addresses {
            listening::socket_or_exit(address, &fds, "a listener").await;
        }
        self.app.know_every_worker().await;
        let mut loops = Vec::new();
        for plain in &self.plain {
            let address = plain.address.to_string();
            let fd = listening::socket_or_exit(&address, &fds, "a listener").await;
            // SAFETY: the table's socket for this address, which no other
            // service takes (listener addresses are unique: config checks).
            let socket = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            let listener = match socket
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(socket))
            {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::error!(listener = %address, "a listener cannot listen: {e}");
                    std::process::exit(1);
                }
            };
            let accept = Self::accept(self.app.clone(), plain.clone(), listener, shutdown.clone());
            loops.push(tokio::spawn(accept));
        }
        self.tls
            .start_service(Some(fds), shutdown, listeners_per_fd)
            .await;
        for accept in loops {
            let _ = accept.await;
        }
    }

    fn name(&self) -> &str {
        "proxy"
    }

    fn threads(&self) -> Option<usize> {
        Service::threads(&self.tls)
    }
}

/// TLS clients, from pingora's listeners, to the app.
pub struct TlsClients<H2>(Arc<Http1App<H2>>);

#[async_trait]
impl<H2: ServerApp + Send + Sync + 'static> ServerApp for TlsClients<H2> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        self.0.accept_tls(stream, shutdown).await
    }
}
