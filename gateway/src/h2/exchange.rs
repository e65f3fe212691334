//! One HTTP/2 stream on the lean path, routed as [`crate::proxy`] routes it
//! (request ID, forwarding, pin, split, `max_in_flight`), sent to an HTTP/1
//! endpoint over the lean HTTP/1 path's per-worker pool, or to an HTTP/2
//! endpoint over the worker's connection to it ([`super::connections`]).
//! Connect failures go to the next endpoint; a request that was never
//! processed (a pooled connection found closed before a body was read from
//! the client, a refused stream) is tried again; the outcome is recorded in
//! the metrics and the access log.

use super::forward::{answer, Attempted, Routed, Tally};
use super::upstream::{BodyFraming, RequestHead};
use super::{connections, forward_h2, H2App, Lean};
use crate::access_log::{Asked, Entry};
use crate::choose::{choose_in, Attempts, Choice};
use crate::forwarded::Believed;
use crate::http1::pool;
use crate::proxy::log::head_size;
use crate::proxy::{upstream_request, Exchange};
use crate::request_id::{self, X_REQUEST_ID};
use crate::routing::Snapshot;
use crate::split::Color;
use crate::upstream::Endpoint;
use http::HeaderValue;
use pingora::protocols::http::v2::server::HttpSession;
use pingora::upstreams::peer::Peer;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

/// Connections that closed without a response, at most, before a 502.
const MAX_RETRIES: usize = 4;

/// What a stream's exchange needs of the client's request, taken from it
/// before the response is written (the session is borrowed then).
struct Asking {
    request_id: HeaderValue,
    head_request: bool,
    /// The route and colour, and the head for an HTTP/1 upstream; `None`:
    /// no route.
    routed: Option<(Choice, Option<RequestHead>)>,
    believed: Believed,
    /// For the access log, when it wants this request.
    asked: Option<Asked>,
    bytes_in: u64,
}

impl H2App {
    pub(super) async fn serve(&self, session: &mut HttpSession, lean: Lean) {
        session.set_write_timeout(Some(self.send_timeout));
        let started = Instant::now();
        let _in_flight = self.gateway.request_started();
        let snapshot = lean.snapshot.clone();
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let asking = self.asking(session, &snapshot, &lean, client);
        let mut tally = Tally::default();
        let (status, route) = match &asking.routed {
            None => {
                answer(session, 404, &asking.request_id, false);
                (404, None)
            }
            Some((choice, head)) => {
                let entry = &snapshot.routes[choice.route];
                let routed = Routed {
                    snapshot: &snapshot,
                    entry,
                    choice,
                    head: head.as_ref(),
                    believed: asking.believed,
                    client,
                    request_id: &asking.request_id,
                    head_request: asking.head_request,
                    https: asking.believed.https,
                };
                let (status, color) = self.admitted(session, &routed, started, &mut tally).await;
                (status, Some((entry.def.clone(), color, choice.pinned)))
            }
        };
        if let Some(asked) = asking.asked {
            let log = self
                .gateway
                .access_log
                .as_ref()
                .expect("asked only when logging");
            log.record(Entry {
                time: SystemTime::now(),
                client,
                asked,
                status,
                grpc_status: tally
                    .grpc_status
                    .as_ref()
                    .and_then(|s| s.to_str().ok())
                    .map(str::to_owned),
                bytes_in: asking.bytes_in + session.body_bytes_read() as u64,
                bytes_out: tally.bytes_out,
                duration: started.elapsed(),
                upstream: tally.upstream,
                color: route.as_ref().map(|r| r.1),
                pinned: route.as_ref().is_some_and(|r| r.2),
                route: route.map(|r| r.0),
                attempts: tally.tries,
            });
        }
        let _ = session.finish();
    }

    /// What the request asks for: its ID (the client's, or generated), the
    /// route and colour, and the head its upstream gets.
    fn asking(
        &self,
        session: &HttpSession,
        snapshot: &Snapshot,
        lean: &Lean,
        client: Option<IpAddr>,
    ) -> Asking {
        let req = session.req_header();
        let request_id = match req.headers.get(X_REQUEST_ID) {
            Some(id) if request_id::is_usable(id.as_bytes()) => id.clone(),
            _ => HeaderValue::from_bytes(&request_id::generate()).expect("hex digits"),
        };
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let believed = snapshot.forwarding.believe(client, tls, &req.headers);
        let routed = lean.route.map(|route| {
            let choice = choose_in(snapshot, route, believed.client, &req.headers);
            let head = lean.http1_upstreams.then(|| {
                let body = BodyFraming::of(session);
                RequestHead::new(req, &request_id, &snapshot.pin, &believed, client, body)
            });
            (choice, head)
        });
        let logging = self.gateway.access_log.as_ref().is_some_and(|l| l.wants());
        Asking {
            asked: logging.then(|| Asked::of(req, Some(&request_id))),
            bytes_in: if logging {
                head_size(&req.headers, req.uri.to_string().len())
            } else {
                0
            },
            request_id,
            head_request: req.method == http::Method::HEAD,
            routed,
            believed,
        }
    }

    /// Within the colour's `max_in_flight`, the exchange; past it 503 now,
    /// not a queue (counted as such). The status and the colour that served.
    async fn admitted(
        &self,
        session: &mut HttpSession,
        routed: &Routed<'_>,
        started: Instant,
        tally: &mut Tally,
    ) -> (u16, Color) {
        let choice = routed.choice;
        let def = &routed.entry.def;
        let Some(_admitted) = def.group(choice.color).admit() else {
            def.metrics.overloaded(choice.color, choice.pinned);
            answer(session, 503, routed.request_id, true);
            return (503, choice.color);
        };
        let mut attempts = Attempts::new(choice);
        let status = self.proxy(session, routed, &mut attempts, tally).await;
        let code = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        let elapsed = started.elapsed().as_secs_f64();
        let grpc = tally.grpc_status.as_ref().and_then(|s| s.to_str().ok());
        def.metrics
            .record(attempts.color, choice.pinned, code, grpc, elapsed);
        (status, attempts.color)
    }

    /// Endpoints one after the other until one answers; the status the
    /// client got.
    async fn proxy(
        &self,
        session: &mut HttpSession,
        routed: &Routed<'_>,
        attempts: &mut Attempts,
        tally: &mut Tally,
    ) -> u16 {
        let def = &routed.entry.def;
        let metrics = &self.gateway.metrics;
        let mut retries = 0;
        let (status, why) = loop {
            let endpoint = match attempts.next(def, metrics) {
                Ok(endpoint) => endpoint,
                Err(none) => {
                    let why = format!("no healthy {} endpoint", none.color.as_str());
                    break (503, why);
                }
            };
            tally.tries += 1;
            tally.upstream = Some(endpoint.addr);
            // Boxed: the HTTP/2 attempt's future would make every stream's
            // bigger, HTTP/1 upstreams' too.
            let attempt = if def.group(attempts.color).speaks_h2() {
                Box::pin(self.attempt_h2(session, routed, &endpoint, attempts, tally)).await
            } else {
                self.attempt_http1(session, routed, &endpoint, attempts, tally)
                    .await
            };
            match attempt {
                None => continue,
                Some(Attempted::Answered(status)) => return status,
                Some(Attempted::NoResponse | Attempted::Refused) => {
                    if retries == MAX_RETRIES {
                        let why = "refused the request or closed without a response";
                        break (502, format!("{}: {why}", endpoint.addr));
                    }
                    retries += 1;
                }
                Some(Attempted::Failed(status, why)) => {
                    let labels = [def.name.as_str(), attempts.color.as_str(), "proxy"];
                    metrics.upstream_errors.with_label_values(&labels).inc();
                    break (status, format!("{}: {why}", endpoint.addr));
                }
            }
        };
        if status == 503 {
            tracing::debug!(route = %def.name, status, "{why}");
        } else {
            tracing::warn!(route = %def.name, status, "{why}");
        }
        answer(session, status, routed.request_id, false);
        status
    }

    /// One attempt on an HTTP/1 endpoint over a pooled connection; `None`:
    /// it could not be reached (counted, marked tried).
    async fn attempt_http1(
        &self,
        session: &mut HttpSession,
        routed: &Routed<'_>,
        endpoint: &Endpoint,
        attempts: &mut Attempts,
        tally: &mut Tally,
    ) -> Option<Attempted> {
        let def = &routed.entry.def;
        let metrics = &self.gateway.metrics;
        let connection = pool::connection(&self.connector, endpoint, &def.name, attempts, metrics);
        let (upstream, reused) = connection.await?;
        let spec = def.group(attempts.color).spec();
        // The head as this colour's group wants it (its Host rewrite).
        let head = routed.head.expect("made for HTTP/1 routes");
        let head = head.with_host(spec.group.host_rewrite.as_deref());
        let attempt = self
            .forward(session, routed, upstream, &head, spec, tally)
            .await;
        Some(match attempt {
            (Attempted::NoResponse, _) => {
                pool::forget(endpoint.pool_key);
                if !reused {
                    attempts.failed(endpoint.addr);
                }
                Attempted::NoResponse
            }
            (answered, Some(keep)) => {
                pool::put(endpoint.pool_key, keep);
                answered
            }
            (attempted, None) => attempted,
        })
    }

    /// One attempt on an HTTP/2 endpoint over this worker's connection to
    /// it; `None`: it could not be reached (counted, marked tried).
    async fn attempt_h2(
        &self,
        session: &mut HttpSession,
        routed: &Routed<'_>,
        endpoint: &Endpoint,
        attempts: &mut Attempts,
        tally: &mut Tally,
    ) -> Option<Attempted> {
        let def = &routed.entry.def;
        let metrics = &self.gateway.metrics;
        let connection =
            connections::connection(&self.connector, endpoint, &def.name, attempts, metrics);
        let (sender, reused) = connection.await?;
        // The head as this colour's upstreams get it.
        let client = session.req_header();
        let mut headers = client.headers.clone();
        let exchange = Exchange {
            snapshot: routed.snapshot,
            entry: routed.entry,
            color: attempts.color,
            request_id: Some(routed.request_id),
            believed: routed.believed,
            client: routed.client,
        };
        let request = upstream_request(&mut headers, &exchange, client.uri.authority())
            .map_err(|e| e.to_string())
            .and_then(|()| forward_h2::upstream_request(client, headers, endpoint.peer.tls()));
        let request = match request {
            Ok(request) => request,
            Err(why) => return Some(Attempted::Failed(400, why)),
        };
        let spec = def.group(attempts.color).spec();
        // Up to 64 KiB of the body kept, to be sent again after a refusal.
        session.enable_retry_buffering();
        let attempt = self
            .forward_h2(session, routed, sender, request, spec, tally)
            .await;
        match &attempt {
            Attempted::Refused => attempts.failed(endpoint.addr),
            Attempted::NoResponse => {
                connections::forget(endpoint.pool_key);
                if !reused {
                    attempts.failed(endpoint.addr);
                }
            }
            // A connection that answers nothing in time may be gone without
            // a word: new streams get a new one.
            Attempted::Failed(504, _) => connections::forget(endpoint.pool_key),
            _ => {}
        }
        Some(attempt)
    }
}
