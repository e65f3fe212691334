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
use super::plain::{PlainListener, PlainStream};
use super::request::ClientInfo;
use super::service::Service;
use super::workers::{self, Placed, Workers};
use crate::config::ClientTimeoutConfig;
use crate::control::Gateway;
use crate::deadline::Deadline;
use crate::limits::{Admitted, ConnectionLimits};
use crate::proxy_protocol::ProxyProtocol;
use pingora::apps::ServerApp;
use pingora::connectors::TransportConnector;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

pub struct Http1App<H2> {
    /// What serving a request needs: gateway state, connector, timeouts.
    service: Service,
    /// HTTP/2 clients. A type parameter: that app builds on this module's
    /// upstream pool, so this module cannot name it.
    h2: Arc<H2>,
    /// With more than one worker: where connections go.
    workers: Option<Workers>,
    /// How many workers there are.
    threads: usize,
    /// Reads PROXY protocol headers (on plain listeners that expect one;
    /// TLS listeners read theirs before the handshake).
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
            threads,
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
                // The worker's deadline list, not a timer per wait: a
                // keep-alive connection waits on every request, and rarely
                // until its deadline.
                let deadline = Deadline::after(self.service.timeouts.keepalive);
                if !client.wait_for_bytes(&deadline).await {
                    return Served::Closed;
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

    /// A connection from a TLS listener (pingora's), its handshake done:
    /// HTTP/2 (by ALPN) goes to the HTTP/2 app, HTTP/1 to a task of its own.
    pub(super) async fn accept_tls(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let local = stream
            .get_socket_digest()
            .and_then(|d| d.local_addr()?.as_inet().copied());
        // The listener is full: closed (and counted).
        let admitted = self.limits.admit(local)?;
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            let _admitted = admitted;
            return self.h2.process_new(stream, shutdown).await;
        }
        // The peer: the PROXY protocol header's source, when there was one.
        let ip = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr()?.as_inet().map(|a| a.ip()));
        let client = Client {
            stream,
            buf: Buffer::default(),
            info: ClientInfo { ip, tls: true },
        };
        // The task pingora spawned for it is sized for a TLS handshake
        // (~2 KB parked for the connection's whole life); this one holds
        // only what a waiting connection needs.
        self.spawn(client, shutdown, admitted, false);
        None
    }

    /// A connection from a plain listener (the gateway's own accept loop),
    /// served in a task of its own.
    pub(super) fn accept_plain(
        self: &Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        listener: &PlainListener,
        shutdown: &ShutdownWatch,
    ) {
        let Some(admitted) = self.limits.admit(Some(listener.address)) else {
            return; // the listener is full: closed (and counted)
        };
        // Small writes go out at once, as pingora's listeners set it.
        let _ = tcp.set_nodelay(true);
        let client = Client {
            stream: Box::new(PlainStream(tcp)),
            buf: Buffer::default(),
            info: ClientInfo {
                ip: Some(peer.ip()),
                tls: false,
            },
        };
        self.spawn(client, shutdown, admitted, listener.proxy_protocol);
    }

    /// Makes every worker known before connections are placed: the
    /// gateway's accept loop runs on one of them, and would know only that
    /// one. (pingora picks a worker at random for each task: tasks are sent
    /// until each has run one.)
    pub(super) async fn know_every_worker(self: &Arc<Self>) {
        let Some(workers) = &self.workers else {
            return;
        };
        for _ in 0..10_000 {
            if workers.known() >= self.threads {
                return;
            }
            let app = self.clone();
            let ran = pingora_runtime::current_handle().spawn(async move {
                if let Some(workers) = &app.workers {
                    workers.know_this_worker();
                }
            });
            let _ = ran.await;
        }
    }

    /// The connection's task, on the least busy worker when there are
    /// several.
    fn spawn(
        self: &Arc<Self>,
        client: Client,
        shutdown: &ShutdownWatch,
        admitted: Admitted,
        proxy_header: bool,
    ) {
        let (app, shutdown) = (self.clone(), shutdown.clone());
        match &self.workers {
            None => {
                tokio::spawn(app.run(client, shutdown, admitted, None, proxy_header));
            }
            Some(placement) => {
                let (worker, placed) = placement.place();
                let placed = Some(placed);
                worker.spawn(app.run(client, shutdown, admitted, placed, proxy_header));
            }
        }
    }

    /// Serves a connection from start to end, in the task it runs in; its
    /// place under the listener's limit (and on its worker, when `placed`
    /// there) is freed when it ends. `proxy_header`: it starts with a PROXY
    /// protocol header.
    ///
    /// An `async` block, not an `async fn`: an async fn keeps its arguments
    /// twice in its future (as given, and as locals), and this future is
    /// what every idle connection holds.
    #[allow(clippy::manual_async_fn)]
    fn run(
        self: Arc<Self>,
        mut client: Client,
        shutdown: ShutdownWatch,
        admitted: Admitted,
        placed: Option<Placed>,
        proxy_header: bool,
    ) -> impl std::future::Future<Output = ()> + Send {
        async move {
            // Both held until the connection ends.
            let (_admitted, placed) = (admitted, placed);
            if placed.is_some() {
                // On the worker it was placed on: its socket moves to this
                // worker's reactor.
                let Some(stream) = workers::register_here(client.stream) else {
                    return;
                };
                client.stream = stream;
            }
            if proxy_header {
                // Boxed, as every state a connection passes through once:
                // the task's size is what an idle connection holds, and
                // this future (a 256-byte read buffer, a timer) would set it.
                let header = Box::pin(self.proxy_protocol.read(&mut client.stream));
                match header.await {
                    Ok((source, rest)) => {
                        if let Some(source) = source {
                            client.info.ip = Some(source.ip());
                        }
                        client.buf = Buffer::holding(rest);
                    }
                    Err(e) => {
                        tracing::debug!("connection closed: {e}");
                        return;
                    }
                }
            }
            if let Served::ToPingora = self.serve(&mut client, &shutdown).await {
                // pingora-proxy's, with the bytes read and not used first.
                let Client { stream, buf, .. } = client;
                let Some(stream) = PlainStream::into_pingora(stream, buf.pending()) else {
                    tracing::debug!("a stream that cannot be handed to pingora-proxy; closed");
                    return;
                };
                self.h2.process_new(stream, &shutdown).await;
            }
        }
    }
}
