//! HTTP/2 clients. pingora's HTTP/2 server runs each connection (its accept
//! loop, the `http2:` limits, idle timeout, graceful shutdown) and hands
//! every stream to [`H2App`], which serves the common case itself and the
//! rest through pingora-proxy ([`crate::proxy`]).
//!
//! H2App        which path a stream takes: on a route that mirrors
//!              nothing, any stream but a tunnel (CONNECT) is the lean
//!              path's; mirrored routes and tunnels are pingora-proxy's
//! exchange     one lean stream: routed as [`crate::proxy`] routes, sent
//!              upstream, retried or failed over, recorded
//! forward      one attempt on an HTTP/1 upstream connection: the request
//!              body sent with its length or in chunks
//! upstream     HTTP/1 heads to and from pingora's header types
//! forward_h2   one attempt on an HTTP/2 upstream: a stream both ways,
//!              trailers included
//! connections  HTTP/2 upstream connections, one per endpoint per worker

mod connections;
mod exchange;
mod forward;
mod forward_h2;
mod upstream;

use crate::control::Gateway;
use crate::proxy::Proxy;
use crate::routing::Snapshot;
use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::connectors::TransportConnector;
use pingora::protocols::http::v2::server::H2Options;
use pingora::protocols::http::ServerSession;
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;

pub struct H2App {
    proxy: Arc<HttpProxy<Proxy>>,
    gateway: Arc<Gateway>,
    connector: Arc<TransportConnector>,
    /// `http2.send_timeout`.
    send_timeout: Duration,
    /// `client_timeouts.keepalive`: the longest wait for a request body's
    /// next bytes, as on HTTP/1.
    body_timeout: Duration,
}

impl H2App {
    pub fn new(
        proxy: HttpProxy<Proxy>,
        gateway: Arc<Gateway>,
        connector: Arc<TransportConnector>,
        send_timeout: Duration,
        body_timeout: Duration,
    ) -> H2App {
        H2App {
            proxy: Arc::new(proxy),
            gateway,
            connector,
            send_timeout,
            body_timeout,
        }
    }

    /// Whether the lean path serves this stream: if so, the routes it was
    /// looked up in and its route, so the exchange need not find it again.
    fn takes(&self, session: &ServerSession) -> Option<Lean> {
        // An HTTP/1 session here has not read its head yet: pingora-proxy's.
        if !session.is_http2() {
            return None;
        }
        let req = session.req_header();
        let snapshot = self.gateway.snapshot();
        let host = crate::choose::request_host(req);
        let route = snapshot.find(host, req.uri.path());
        let def = route.map(|r| &snapshot.routes[r].def);
        if def.is_some_and(|d| d.mirror.is_some()) {
            return None;
        }
        // Either colour may serve (a failover crosses): an HTTP/1 head is
        // made if either speaks HTTP/1.
        let http1_upstreams = def.is_none_or(|d| !d.blue.speaks_h2() || !d.green.speaks_h2());
        // A tunnel (extended CONNECT) is pingora-proxy's.
        (req.method != http::Method::CONNECT).then_some(Lean {
            snapshot,
            route,
            http1_upstreams,
        })
    }
}

/// A stream on the lean path: the routes as they were when it came, and its
/// route among them (`None`: no route matches, and the lean path answers
/// 404 itself).
struct Lean {
    snapshot: Arc<Snapshot>,
    route: Option<usize>,
    /// A colour of the route speaks HTTP/1.
    http1_upstreams: bool,
}

#[async_trait]
impl HttpServerApp for H2App {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        if let Some(lean) = self.takes(&session) {
            // The HTTP/2 session itself, not pingora's HTTP/1-or-2 wrapper:
            // its writes need no await, and the exchange's future is
            // smaller by the HTTP/1 code paths it will never take.
            if let ServerSession::H2(stream) = &mut session {
                self.serve(stream, lean).await;
                return None;
            }
        }
        self.proxy.process_new_http(session, shutdown).await
    }

    fn h2_options(&self) -> Option<H2Options> {
        self.proxy.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.proxy.server_options()
    }

    async fn http_cleanup(&self) {
        self.proxy.http_cleanup().await
    }
}
