//! One HTTP/2 stream on the lean path: a body-less GET or HEAD, routed as
//! [`crate::proxy`] routes it (request ID, forwarding, pin, split,
//! `max_in_flight`), sent to an HTTP/1 endpoint over the lean HTTP/1 path's
//! per-worker pool (connect failures go to the next endpoint; a connection
//! that closes without a response is retried), recorded in the metrics and
//! the access log.

use super::forward::{Attempted, Routed, Tally};
use super::upstream::RequestHead;
use super::{H2App, Lean};
use crate::access_log::{Asked, Entry};
use crate::choose::{choose_in, Attempts, Choice};
use crate::http1::pool;
use crate::proxy::log::head_size;
use crate::request_id::{self, X_REQUEST_ID};
use crate::routing::Snapshot;
use crate::split::Color;
use http::HeaderValue;
use pingora::protocols::http::v2::server::HttpSession;
use pingora::protocols::http::ServerSession;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

/// Connections that closed without a response, at most, before a 502.
const MAX_RETRIES: usize = 4;

/// What a stream's exchange needs of the client's request, taken from it
/// before the response is written (the session is borrowed then).
struct Asking {
    request_id: HeaderValue,
    head_request: bool,
    /// The route and colour, and the head for upstream; `None`: no route.
    routed: Option<(Choice, RequestHead)>,
    https: bool,
    /// For the access log, when it wants this request.
    asked: Option<Asked>,
    bytes_in: u64,
}

impl H2App {
    pub(super) async fn serve(&self, session: &mut HttpSession, lean: Lean) {
        session.set_write_timeout(Some(self.send_timeout));
        let started = Instant::now();
        let _in_flight = self.gateway.request_started();
        let snapshot = lean.snapshot;
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let asking = self.asking(session, &snapshot, lean.route, client);
        let mut tally = Tally::default();
        let (status, route) = match &asking.routed {
            None => {
                answer(session, 404, &asking.request_id, false);
                (404, None)
            }
            Some((choice, head)) => {
                let entry = &snapshot.routes[choice.route];
                let routed = Routed {
                    entry,
                    choice,
                    head,
                    request_id: &asking.request_id,
                    head_request: asking.head_request,
                    https: asking.https,
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
                grpc_status: None,
                bytes_in: asking.bytes_in,
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
        route: Option<usize>,
        client: Option<IpAddr>,
    ) -> Asking {
        let req = session.req_header();
        let request_id = match req.headers.get(X_REQUEST_ID) {
            Some(id) if request_id::is_usable(id.as_bytes()) => id.clone(),
            _ => HeaderValue::from_bytes(&request_id::generate()).expect("hex digits"),
        };
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let believed = snapshot.forwarding.believe(client, tls, &req.headers);
        let routed = route.map(|route| {
            let choice = choose_in(snapshot, route, believed.client, &req.headers);
            let head = RequestHead::new(req, &request_id, &snapshot.pin, &believed, client);
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
            https: believed.https,
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
        def.metrics
            .record(attempts.color, choice.pinned, code, None, elapsed);
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
            let connection =
                pool::connection(&self.connector, &endpoint, &def.name, attempts, metrics);
            let Some((upstream, reused)) = connection.await else {
                continue;
            };
            let spec = def.group(attempts.color).spec();
            let read_timeout = spec.timeouts.read;
            // The head as this colour's group wants it (its Host rewrite).
            let head = routed.head.with_host(spec.group.host_rewrite.as_deref());
            let attempt = self
                .forward(session, routed, upstream, &head, read_timeout, tally)
                .await;
            match attempt {
                (Attempted::Answered(status), Some(keep)) => {
                    pool::put(endpoint.pool_key, keep);
                    return status;
                }
                (Attempted::Answered(status), None) => return status,
                (Attempted::NoResponse, _) => {
                    pool::forget(endpoint.pool_key);
                    if !reused {
                        attempts.failed(endpoint.addr);
                    }
                    if retries == MAX_RETRIES {
                        break (502, format!("{}: closed without a response", endpoint.addr));
                    }
                    retries += 1;
                }
                (Attempted::Failed(status, why), _) => {
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
}

/// The gateway's own answer: a status and no body (the stream ends with
/// the headers).
fn answer(session: &mut HttpSession, status: u16, request_id: &HeaderValue, retry_after: bool) {
    let mut response = ServerSession::generate_error(status);
    let _ = response.insert_header(X_REQUEST_ID, request_id);
    if retry_after {
        let _ = response.insert_header("retry-after", "1");
    }
    let _ = session.write_response_header(Box::new(response), true);
}
