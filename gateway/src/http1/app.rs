//! The gateway's pingora app: one client connection from accept to close.
//!
//! HTTP/1 connections are served here, request after request; a client
//! speaking HTTP/2 (negotiated by TLS ALPN, or with prior knowledge on a
//! plain connection: h2c, as gRPC clients do) goes to the HTTP/2 app the
//! server hands in (the `h2` module's).
//! While a connection waits for its next request it holds no buffer and no
//! request state: the request's work runs in a future of its own, boxed,
//! and freed when the response is done, and the connection's task is just
//! big enough for waiting.

use super::buffer::Buffer;
use super::client::{After, Client};
use super::request::ClientInfo;
use super::service::Service;
use super::workers::{self, Placed, Workers};
use crate::config::ClientTimeoutConfig;
use crate::control::Gateway;
use crate::limits::{Admitted, ConnectionLimits};
use crate::proxy_protocol::ProxyProtocol;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::connectors::TransportConnector;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use std::sync::Arc;

pub struct Http1App<H2> {
    /// What serving a request needs: gateway state, connector, timeouts.
    service: Service,
    /// HTTP/2 clients. A type parameter: that app builds on this module's
    /// upstream pool, so this module cannot name it.
    h2: Arc<H2>,
    /// With more than one worker: where connections go.
    workers: Option<Workers>,
    /// Plain listeners whose connections start with a PROXY protocol header.
    proxy_protocol: Arc<ProxyProtocol>,
    /// How many client connections each listener serves at once.
    limits: Arc<ConnectionLimits>,
}

/// What an HTTP/2 client with prior knowledge sends first (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How a connection's HTTP/1 service ended.
enum Served {
    Closed,
    /// pingora-proxy's from here: the client spoke HTTP/2 with prior
    /// knowledge, or a route's upstreams speak HTTP/2.
    ToPingora,
}

impl<H2: ServerApp + Send + Sync + 'static> Http1App<H2> {
    pub fn new(
        gateway: Arc<Gateway>,
        h2: Arc<H2>,
        connector: Arc<TransportConnector>,
        timeouts: ClientTimeoutConfig,
        threads: usize,
        proxy_protocol: Arc<ProxyProtocol>,
        limits: Arc<ConnectionLimits>,
    ) -> Self {
        Http1App {
            service: Service {
                gateway,
                connector,
                timeouts,
            },
            h2,
            workers: (threads > 1).then(Workers::default),
            proxy_protocol,
            limits,
        }
    }

    /// Requests one after another until the client closes, idles past the
    /// keep-alive timeout, or a response says the connection ends. Once
    /// shutdown began, every response says so (`Connection: close`) and a
    /// connection that served a request is not waited on again; idle
    /// connections end with the process (see `server::drain`), so waiting
    /// costs no shutdown watcher per connection.
    async fn serve(&self, client: &mut Client, shutdown: &ShutdownWatch) -> Served {
        let mut first = true;
        loop {
            if client.buf.is_empty() {
                // An idle keep-alive client goes; a new one accepted just
                // before pingora stopped accepting has not sent its request
                // yet, and is owed an answer (closed unanswered, it sees a
                // reset).
                if *shutdown.borrow() && !first {
                    return Served::Closed;
                }
                // pingora's timer (10 ms ticks, one timer per tick shared by
                // every connection), not tokio's: a new tokio timer earlier
                // than the worker's next wake-up writes to its eventfd, which
                // about every other request here did.
                let next_request = client.wait_for_bytes();
                match pingora::time::timeout(self.service.timeouts.keepalive, next_request).await {
                    Ok(true) => {}
                    Ok(false) | Err(_) => return Served::Closed,
                }
            }
            if std::mem::take(&mut first)
                && !client.info.tls
                && Box::pin(self.h2c_preface(client)).await
            {
                return Served::ToPingora;
            }
            let draining = *shutdown.borrow() || self.service.gateway.is_draining();
            match Box::pin(self.service.serve_request(client, draining)).await {
                After::KeepAlive => {}
                After::Close => return Served::Closed,
                After::ToPingora => return Served::ToPingora,
            }
        }
    }

    /// Whether a plain connection's first bytes are the HTTP/2 preface
    /// (reading on while they could still be; one comparison otherwise).
    async fn h2c_preface(&self, client: &mut Client) -> bool {
        let prefix = |c: &Client| {
            let seen = c.buf.pending();
            H2_PREFACE.starts_with(&seen[..seen.len().min(H2_PREFACE.len())])
        };
        while prefix(client) && client.buf.pending().len() < H2_PREFACE.len() {
            let more = tokio::time::timeout(self.service.timeouts.header, client.read_more_head());
            if !matches!(more.await, Ok(Ok(n)) if n > 0) {
                return false;
            }
        }
        prefix(client)
    }

    /// Serves a connection from start to end, in the task it runs in; its
    /// place under the listener's limit (and on its worker, when `placed`
    /// there) is freed when it ends.
    ///
    /// An `async` block, not an `async fn`: an async fn keeps its arguments
    /// twice in its future (as given, and as locals), and this future is
    /// what every idle connection holds.
    fn run(
        self: Arc<Self>,
        mut client: Client,
        shutdown: ShutdownWatch,
        admitted: Admitted,
        placed: Option<Placed>,
    ) -> impl std::future::Future<Output = ()> + Send {
        async move {
            // Both held until the connection ends.
            let (_admitted, placed) = (admitted, placed);
            if placed.is_some() {
                // On the worker it was placed on: its socket moves to this
                // worker's reactor.
                client.stream = workers::register_here(client.stream);
            }
            // Read here, on the worker the connection stays on (moving it there
            // makes a new stream, which would lose bytes given back).
            if !client.info.tls && self.proxy_protocol.is_used() {
                // Boxed, as every state a connection passes through once: the
                // task's size is what an idle connection holds, and this
                // future (a 256-byte read buffer, a timer) would set it.
                let header = Box::pin(self.read_proxy_header(client.stream));
                let Some((stream, source)) = header.await else {
                    return;
                };
                if let Some(source) = source {
                    client.info.ip = Some(source.ip());
                }
                client.stream = stream;
            }
            if let Served::ToPingora = self.serve(&mut client, &shutdown).await {
                // Give the bytes read back to the stream, for pingora to read.
                let Client { stream, buf, .. } = client;
                let l4 = stream
                    .into_any()
                    .downcast::<pingora::protocols::l4::stream::Stream>()
                    .ok();
                let Some(mut l4) = l4 else {
                    tracing::debug!("a stream that cannot be rewound for pingora-proxy; closed");
                    return;
                };
                l4.rewind(buf.pending());
                self.h2.process_new(l4, &shutdown).await;
            }
        }
    }
}

impl<H2: ServerApp + Send + Sync + 'static> Http1App<H2> {
    /// On a plain listener that expects it, the PROXY protocol header:
    /// its source becomes the connection's peer (and is returned). `None`:
    /// closed.
    async fn read_proxy_header(
        &self,
        stream: Stream,
    ) -> Option<(Stream, Option<std::net::SocketAddr>)> {
        let mut l4 = match stream
            .into_any()
            .downcast::<pingora::protocols::l4::stream::Stream>()
        {
            Ok(l4) => l4,
            Err(_) => return None, // a plain listener's stream is always L4
        };
        if !self.proxy_protocol.expected_on(&l4) {
            return Some((l4, None));
        }
        match self.proxy_protocol.accept(&mut l4).await {
            Ok(source) => Some((l4, source)),
            Err(e) => {
                tracing::debug!("connection closed: {e}");
                None
            }
        }
    }
}

#[async_trait]
impl<H2: ServerApp + Send + Sync + 'static> ServerApp for Http1App<H2> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let local = stream
            .get_socket_digest()
            .and_then(|d| d.local_addr()?.as_inet().copied());
        let Some(admitted) = self.limits.admit(local) else {
            return None; // the listener is full: closed (and counted)
        };
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            let _admitted = admitted;
            return self.h2.process_new(stream, shutdown).await;
        }

        let info = ClientInfo {
            ip: peer_ip(&stream),
            tls: stream.get_ssl_digest().is_some(),
        };
        let client = Client {
            stream,
            buf: Buffer::default(),
            info,
        };
        // The connection moves to a task of its own, on this worker: the
        // task pingora spawned for it is sized for a TLS handshake (~2 KB
        // parked for the connection's whole life); this one holds only
        // what a waiting connection needs.
        let app = self.clone();
        let shutdown = shutdown.clone();
        match &self.workers {
            None => {
                tokio::spawn(app.run(client, shutdown, admitted, None));
            }
            Some(placement) => {
                let (worker, placed) = placement.place();
                worker.spawn(app.run(client, shutdown, admitted, Some(placed)));
            }
        }
        None
    }
}

/// The peer's address (a PROXY protocol header's source, once read).
fn peer_ip(stream: &Stream) -> Option<std::net::IpAddr> {
    stream
        .get_socket_digest()
        .and_then(|d| d.peer_addr()?.as_inet().map(|a| a.ip()))
}
