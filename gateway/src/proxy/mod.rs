//! pingora-proxy's request path: its `ProxyHttp` callbacks, for the HTTP/2
//! streams the lean HTTP/2 path (the `h2` module) leaves to it — mirrored
//! routes and tunnels — and for HTTP/1 clients of routes whose upstreams
//! speak HTTP/2. (Plain HTTP/1 takes the
//! lean path in [`crate::http1`]; all share the decisions in
//! [`crate::choose`].)
//!
//! request_filter   picks the route and the colour (pin, else the split)
//! upstream_peer    picks a healthy endpoint of that colour, failing over
//!                  to the other colour when none is left
//! fail_to_connect  marks connect failures retryable on another endpoint
//! upstream_request_filter  strips pin headers, adds X-Forwarded-*
//! response_filter  issues the stickiness cookie to clients without a key
//! logging          records the metrics

mod heads;
pub(crate) mod log;

pub use heads::{client_response, upstream_request, Exchange};

use crate::choose::{choose, Attempts, Choice};
use crate::control::{Gateway, InFlight};
use crate::forwarded::Believed;
use crate::mirror::Tap;
use crate::request_id::{self, X_REQUEST_ID};
use crate::routing::{RouteEntry, Snapshot};
use crate::split::Color;
use crate::upstream::Admission;
use async_trait::async_trait;
use http::HeaderValue;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::HttpModules;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Proxy {
    gateway: Arc<Gateway>,
    /// `http2.send_timeout`: a client that stops opening its window is cut.
    send_timeout: Duration,
}

impl Proxy {
    pub fn new(gateway: Arc<Gateway>, send_timeout: Duration) -> Proxy {
        Proxy {
            gateway,
            send_timeout,
        }
    }

    /// An error (pingora then ends the stream) once the request's colour
    /// is drained past its deadline.
    fn cut_if_drained(&self, ctx: &RequestCtx) -> Result<()> {
        if self.gateway.drains.deadline_passed(ctx.color()) {
            return Error::e_explain(ConnectionClosed, "its colour was drained");
        }
        Ok(())
    }
}

/// Per-request state.
pub struct RequestCtx {
    _in_flight: InFlight,
    started: Instant,
    /// The routing version this request uses from start to end.
    snapshot: Option<Arc<Snapshot>>,
    choice: Option<Choice>,
    attempts: Option<Attempts>,
    /// The endpoint being tried.
    current: Option<SocketAddr>,
    /// A gRPC response's `grpc-status` (trailers, or headers alone).
    grpc_status: Option<HeaderValue>,
    /// What the peer says about the client, as far as it is believed.
    believed: Option<Believed>,
    /// The request's place under its colour's `max_in_flight`.
    admitted: Option<Admission>,
    /// X-Request-Id: the client's, or generated.
    request_id: Option<HeaderValue>,
    /// A copy of the exchange for green, when it is mirrored.
    mirror: Option<Tap>,
    /// Endpoints tried.
    tries: u32,
}

impl RequestCtx {
    fn entry(&self) -> Option<&RouteEntry> {
        Some(&self.snapshot.as_ref()?.routes[self.choice.as_ref()?.route])
    }

    /// The colour serving the request now (it changes on failover); set
    /// with the route in `request_filter`.
    fn color(&self) -> crate::split::Color {
        self.attempts
            .as_ref()
            .map_or(crate::split::Color::Blue, |a| a.color)
    }
}

fn client_ip(session: &Session) -> Option<IpAddr> {
    session.client_addr()?.as_inet().map(|a| a.ip())
}

pub(crate) const GRPC_STATUS: &str = "grpc-status";

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            _in_flight: self.gateway.request_started(),
            started: Instant::now(),
            snapshot: None,
            choice: None,
            attempts: None,
            current: None,
            grpc_status: None,
            believed: None,
            admitted: None,
            request_id: None,
            mirror: None,
            tries: 0,
        }
    }

    /// No downstream modules: the gateway does not compress, and pingora's
    /// default (a disabled compression module) still costs a module context
    /// and its filter calls on every request.
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        session.set_write_timeout(Some(self.send_timeout));
        let snapshot = self.gateway.snapshot();
        let req = session.req_header();
        ctx.request_id = Some(match req.headers.get(X_REQUEST_ID) {
            Some(id) if request_id::is_usable(id.as_bytes()) => id.clone(),
            _ => HeaderValue::from_bytes(&request_id::generate()).expect("hex digits"),
        });
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let believed = snapshot
            .forwarding
            .believe(client_ip(session), tls, &req.headers);
        ctx.believed = Some(believed);
        let Some(choice) = choose(
            &snapshot,
            crate::choose::request_host(req),
            req.uri.path(),
            believed.client,
            &req.headers,
        ) else {
            session.respond_error(404).await?;
            return Ok(true);
        };
        ctx.attempts = Some(Attempts::new(&choice));
        let def = snapshot.routes[choice.route].def.clone();
        ctx.admitted = def.group(choice.color).admit();
        let overloaded = ctx.admitted.is_none();
        let entry = &snapshot.routes[choice.route];
        ctx.mirror = match (&entry.def.mirror, choice.color, choice.pinned || overloaded) {
            (Some(mirror), Color::Blue, false) => Tap::admit(mirror, entry.mirror_percent, req),
            _ => None,
        };
        let (color, pinned) = (choice.color, choice.pinned);
        ctx.choice = Some(choice);
        ctx.snapshot = Some(snapshot);
        if overloaded {
            // The colour is at max_in_flight: 503 now, not a queue.
            let mut response = ResponseHeader::build(503, Some(3))?;
            response.insert_header("retry-after", "1")?;
            if let Some(id) = &ctx.request_id {
                response.insert_header(X_REQUEST_ID, id)?;
            }
            response.insert_header("content-length", "0")?;
            session
                .write_response_header(Box::new(response), true)
                .await?;
            def.metrics.overloaded(color, pinned);
            ctx.choice = None; // recorded: `logging` leaves it alone
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let def = ctx.entry().expect("routed in request_filter").def.clone();
        let attempts = ctx.attempts.as_mut().expect("routed in request_filter");
        match attempts.next(&def, &self.gateway.metrics) {
            Ok(endpoint) => {
                ctx.current = Some(endpoint.addr);
                ctx.tries += 1;
                Ok(Box::new(endpoint.peer.clone()))
            }
            Err(none) => Error::e_explain(
                HTTPStatus(503),
                format!(
                    "route {}: no healthy {} endpoint",
                    def.name,
                    none.color.as_str()
                ),
            ),
        }
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let (Some(entry), Some(addr)) = (ctx.entry(), ctx.current) {
            self.gateway
                .metrics
                .upstream_errors
                .with_label_values(&[&entry.def.name, ctx.color().as_str(), "connect"])
                .inc();
            if let Some(attempts) = ctx.attempts.as_mut() {
                attempts.failed(addr);
            }
        }
        // Nothing was sent, so any request may go to another endpoint.
        e.set_retry(true);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        if let Some(entry) = ctx.entry() {
            self.gateway
                .metrics
                .upstream_errors
                .with_label_values(&[&entry.def.name, ctx.color().as_str(), "proxy"])
                .inc();
        }
        // pingora's policy: never retry a non-idempotent request once sent,
        // or one whose body no longer fits the retry buffer.
        let mut e = e.more_context(format!("Peer: {peer}"));
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let entry = ctx.entry().expect("routed");
        heads::upstream_request(
            upstream,
            &heads::Exchange {
                snapshot: ctx.snapshot.as_ref().expect("routed"),
                entry,
                color: ctx.color(),
                request_id: ctx.request_id.as_ref(),
                believed: ctx.believed.expect("set with the route"),
                client: client_ip(session),
            },
            session.req_header().uri.authority(),
        )?;
        if let Some(tap) = ctx.mirror.as_mut() {
            tap.upstream_request(upstream);
        }
        Ok(())
    }

    fn upstream_response_trailer_filter(
        &self,
        _session: &mut Session,
        trailers: &mut http::HeaderMap,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(status) = trailers.get(GRPC_STATUS) {
            ctx.grpc_status = Some(status.clone());
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // A gRPC error without a body has its status in the headers.
        if let Some(status) = response.headers.get(GRPC_STATUS) {
            ctx.grpc_status = Some(status.clone());
        }
        let routed = ctx.choice.as_ref().zip(ctx.entry());
        heads::client_response(
            response,
            ctx.request_id.as_ref(),
            routed.map(|(c, e)| (c, e.def.stickiness.issued_cookie.as_str())),
            ctx.believed.is_some_and(|b| b.https),
        )?;
        if let Some(tap) = ctx.mirror.as_mut() {
            tap.response(response);
        }
        Ok(())
    }

    /// A stream to a drained colour (a gRPC or HTTP/2 stream opened before
    /// the split moved) is cut when it next carries data after the drain's
    /// deadline.
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        if let Some(tap) = ctx.mirror.as_mut() {
            tap.response_body(body, end_of_stream);
        }
        self.cut_if_drained(ctx).map(|()| None)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(tap) = ctx.mirror.as_mut() {
            tap.request_body(body);
        }
        self.cut_if_drained(ctx)
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let mirror = ctx.mirror.take();
        let Some(entry) = ctx.entry() else { return };
        let status = match session.response_written() {
            Some(r) => r.status,
            None => match e.map(|e| e.etype()) {
                Some(HTTPStatus(code)) => {
                    http::StatusCode::from_u16(*code).unwrap_or(http::StatusCode::BAD_GATEWAY)
                }
                Some(_) => http::StatusCode::BAD_GATEWAY,
                // No response and no error: the client went away (nginx's 499).
                None => http::StatusCode::from_u16(499).expect("valid code"),
            },
        };
        let pinned = ctx.choice.as_ref().is_some_and(|c| c.pinned);
        let grpc = ctx.grpc_status.as_ref().and_then(|v| v.to_str().ok());
        entry.def.metrics.record(
            ctx.color(),
            pinned,
            status,
            grpc,
            ctx.started.elapsed().as_secs_f64(),
        );
        if let Some(tap) = mirror {
            tap.finish(e.is_none(), ctx.color(), &entry.def.green);
        }
        self.log(session, ctx, entry, status, grpc);
    }
}
