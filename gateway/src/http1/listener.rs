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
use std::sync::Arc;

pub struct ProxyListeners<H2: ServerApp + Send + Sync + 'static> {
    app: Arc<Http1App<H2>>,
    plain: Vec<PlainListener>,
    /// The TLS listeners, added by the caller (`tls_mut`).
    tls: PingoraListeners<TlsClients<H2>>,
    /// The TLS listeners' addresses, bound by the gateway first.
    tls_addresses: Vec<String>,
}

impl<H2: ServerApp + Send + Sync + 'static> ProxyListeners<H2> {
    pub fn new(app: Http1App<H2>, plain: Vec<PlainListener>) -> Self {
        let app = Arc::new(app);
        ProxyListeners {
            tls: PingoraListeners::new("proxy".to_owned(), TlsClients(app.clone())),
            tls_addresses: Vec::new(),
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
        self.tls_addresses.push(address.to_owned());
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
        let mut plain = Vec::new();
        for listener in &self.plain {
            let address = listener.address.to_string();
            let socket = listening::tokio_listener_or_exit(&address, &fds, "a listener").await;
            plain.push((listener.clone(), address, socket));
        }
        for address in &self.tls_addresses {
            listening::socket_or_exit(address, &fds, "a listener").await;
        }
        self.app.know_every_worker().await;
        let mut loops = Vec::new();
        for (listener, address, socket) in plain {
            let (app, watch) = (self.app.clone(), shutdown.clone());
            let accepting = shutdown.clone();
            loops.push(tokio::spawn(async move {
                listening::accept_until_shutdown(&socket, &address, accepting, |tcp, peer| {
                    app.accept_plain(tcp, peer, &listener, &watch)
                })
                .await
            }));
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
