//! The gateway's pingora app: one client connection from accept to close.
//!
//! HTTP/1 connections are served here, request after request; a TLS
//! client that negotiated h2 goes to pingora-proxy (see [`crate::proxy`]).
//! While a connection waits for its next request it holds no buffer and no
//! request state: the request's work runs in a future of its own, boxed,
//! and freed when the response is done.

use super::buffer::Buffer;
use super::exchange::After;
use super::request::ClientInfo;
use crate::config::ClientTimeoutConfig;
use crate::control::Gateway;
use crate::proxy::Proxy;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::connectors::TransportConnector;
use pingora::protocols::{Stream, ALPN};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, ReadBuf};

pub struct Http1App {
    pub(super) gateway: Arc<Gateway>,
    /// pingora-proxy, for HTTP/2 clients.
    h2: Arc<HttpProxy<Proxy>>,
    /// Opens upstream connections (TCP or TLS, as the endpoint's peer says).
    pub(super) connector: TransportConnector,
    pub(super) timeouts: ClientTimeoutConfig,
}

/// One client connection.
pub(super) struct Client {
    pub stream: Stream,
    pub buf: Buffer,
    pub info: ClientInfo,
}

/// Room to read a request head into.
const HEAD_ROOM: usize = 4096;

impl Http1App {
    pub fn new(gateway: Arc<Gateway>, h2: HttpProxy<Proxy>, timeouts: ClientTimeoutConfig) -> Self {
        Http1App {
            gateway,
            h2: Arc::new(h2),
            connector: TransportConnector::new(None),
            timeouts,
        }
    }

    async fn serve(&self, client: &mut Client, mut shutdown: ShutdownWatch) {
        loop {
            if client.buf.is_empty() {
                client.buf.release_if_empty();
                if *shutdown.borrow() {
                    return;
                }
                let next_request = async {
                    tokio::select! {
                        biased;
                        _ = shutdown.changed() => false,
                        bytes = client.wait_for_bytes() => bytes,
                    }
                };
                match pingora::time::timeout(self.timeouts.keepalive, next_request).await {
                    Ok(true) => {}
                    Ok(false) | Err(_) => return,
                }
            }
            let draining = *shutdown.borrow() || self.gateway.is_draining();
            match Box::pin(self.serve_request(client, draining)).await {
                After::KeepAlive => {}
                After::Close => return,
            }
        }
    }
}

impl Client {
    /// Waits for the client's next bytes; false when it closed. A plain TCP
    /// connection waits for readability with no buffer (tokio returns from
    /// a zero-length read once the socket is readable); TLS has to read.
    async fn wait_for_bytes(&mut self) -> bool {
        if !self.info.tls {
            let ready =
                poll_fn(|cx| Pin::new(&mut self.stream).poll_read(cx, &mut ReadBuf::new(&mut [])));
            if ready.await.is_err() {
                return false;
            }
        }
        matches!(self.buf.read_from(&mut self.stream, HEAD_ROOM).await, Ok(n) if n > 0)
    }

    /// Reads more of a request head; the head is parsed again from the
    /// start each time, so a head split over reads needs no parser state.
    pub async fn read_more_head(&mut self) -> std::io::Result<usize> {
        self.buf.read_from(&mut self.stream, HEAD_ROOM).await
    }
}

#[async_trait]
impl ServerApp for Http1App {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return self.h2.process_new(stream, shutdown).await;
        }
        let info = ClientInfo {
            ip: stream
                .get_socket_digest()
                .and_then(|d| d.peer_addr()?.as_inet().map(|a| a.ip())),
            tls: stream.get_ssl_digest().is_some(),
        };
        let mut client = Client {
            stream,
            buf: Buffer::default(),
            info,
        };
        self.serve(&mut client, shutdown.clone()).await;
        None
    }
}
