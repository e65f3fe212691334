//! One HTTP/2 stream on the lean path: a body-less GET or HEAD, routed as
//! [`crate::proxy`] routes it (request ID, forwarding, pin, split,
//! `max_in_flight`), sent to an HTTP/1 endpoint over the lean HTTP/1 path's
//! per-worker pool (connect failures go to the next endpoint; a connection
//! that closes without a response is retried), its response head passed on
//! with the gateway's headers and its body relayed as it comes (a chunked
//! body decoded: HTTP/2 frames bodies itself).

use super::upstream::{parse_response, request_head};
use super::H2App;
use crate::access_log::{Asked, Entry};
use crate::choose::{choose, request_host, Attempts, Choice};
use crate::forwarded::Believed;
use crate::http1::framing::Framing;
use crate::http1::pool;
use crate::proxy::{client_response, log::head_size, upstream_request, Exchange};
use crate::request_id::{self, X_REQUEST_ID};
use crate::routing::{RouteEntry, Snapshot};
use bytes::BytesMut;
use http::HeaderValue;
use pingora::http::RequestHeader;
use pingora::protocols::http::ServerSession;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Room to read upstream bytes into.
const READ_ROOM: usize = 32 * 1024;
/// Connections that closed without a response, at most, before a 502.
const MAX_RETRIES: usize = 4;

/// One routed stream.
struct Routed<'a> {
    snapshot: &'a Snapshot,
    entry: &'a RouteEntry,
    choice: &'a Choice,
    req: &'a RequestHeader,
    request_id: &'a HeaderValue,
    believed: Believed,
    client: Option<IpAddr>,
}

/// What the access log and metrics need of how it went.
#[derive(Default)]
struct Tally {
    upstream: Option<SocketAddr>,
    tries: u32,
    bytes_out: u64,
}

/// How one attempt on one upstream connection ended.
enum Attempted {
    /// A response was passed on (whole, or cut off after it began).
    Answered(u16),
    /// The connection closed before any response byte.
    NoResponse,
    /// The gateway answers this status itself.
    Failed(u16, String),
}

impl H2App {
    pub(super) async fn serve(&self, mut session: ServerSession) {
        session.set_write_timeout(Some(self.send_timeout));
        let started = Instant::now();
        let _in_flight = self.gateway.request_started();
        let snapshot = self.gateway.snapshot();
        let req = session.req_header().clone();
        let request_id = match req.headers.get(X_REQUEST_ID) {
            Some(id) if request_id::is_usable(id.as_bytes()) => id.clone(),
            _ => HeaderValue::from_bytes(&request_id::generate()).expect("hex digits"),
        };
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let believed = snapshot.forwarding.believe(client, tls, &req.headers);
        let host = request_host(&req);
        let Some(choice) = choose(
            &snapshot,
            host,
            req.uri.path(),
            believed.client,
            &req.headers,
        ) else {
            answer(&mut session, 404, &request_id, false).await;
            return;
        };
        let entry = &snapshot.routes[choice.route];
        let Some(_admitted) = entry.def.group(choice.color).admit() else {
            // The colour is at max_in_flight: 503 now, not a queue.
            entry.def.metrics.overloaded(choice.color, choice.pinned);
            answer(&mut session, 503, &request_id, true).await;
            return;
        };
        let routed = Routed {
            snapshot: &snapshot,
            entry,
            choice: &choice,
            req: &req,
            request_id: &request_id,
            believed,
            client,
        };
        let mut attempts = Attempts::new(&choice);
        let mut tally = Tally::default();
        let status = self
            .proxy(&mut session, &routed, &mut attempts, &mut tally)
            .await;
        let status_code =
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        let elapsed = started.elapsed();
        let def = &entry.def;
        def.metrics.record(
            attempts.color,
            choice.pinned,
            status_code,
            None,
            elapsed.as_secs_f64(),
        );
        if let Some(log) = self.gateway.access_log.as_ref().filter(|l| l.wants()) {
            log.record(Entry {
                time: SystemTime::now(),
                client,
                asked: Asked::of(&req, Some(&request_id)),
                status,
                grpc_status: None,
                bytes_in: head_size(&req.headers, req.uri.to_string().len()),
                bytes_out: tally.bytes_out,
                duration: elapsed,
                upstream: tally.upstream,
                route: Some(def.clone()),
                color: Some(attempts.color),
                pinned: choice.pinned,
                attempts: tally.tries,
            });
        }
        let _ = session.finish().await;
    }

    /// Endpoints one after the other until one answers; the status the
    /// client got.
    async fn proxy(
        &self,
        session: &mut ServerSession,
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
            let color = attempts.color.as_str();
            let (upstream, reused) = match pool::take(endpoint.pool_key) {
                Some(stream) => (stream, true),
                None => match self.connector.new_stream(&endpoint.peer).await {
                    Ok(stream) => (stream, false),
                    Err(e) => {
                        tracing::debug!(endpoint = %endpoint.addr, error = %e, "connect failed");
                        let labels = [def.name.as_str(), color, "connect"];
                        metrics.upstream_errors.with_label_values(&labels).inc();
                        attempts.failed(endpoint.addr);
                        continue;
                    }
                },
            };
            // The head as this colour's group wants it (its Host rewrite).
            let mut upstream_req = routed.req.clone();
            let exchange = Exchange {
                snapshot: routed.snapshot,
                entry: routed.entry,
                color: attempts.color,
                request_id: Some(routed.request_id),
                believed: routed.believed,
                client: routed.client,
            };
            if let Err(e) =
                upstream_request(&mut upstream_req, &exchange, routed.req.uri.authority())
            {
                break (400, format!("request head: {e}"));
            }
            let spec = def.group(attempts.color).spec();
            let read_timeout = spec.timeouts.read;
            let head = request_head(&upstream_req);
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
                    let labels = [def.name.as_str(), color, "proxy"];
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
        answer(session, status, routed.request_id, false).await;
        status
    }

    /// One attempt: the head sent, the response relayed. The connection
    /// comes back when it may carry another request.
    async fn forward(
        &self,
        session: &mut ServerSession,
        routed: &Routed<'_>,
        mut upstream: pingora::protocols::Stream,
        head: &[u8],
        read_timeout: std::time::Duration,
        tally: &mut Tally,
    ) -> (Attempted, Option<pingora::protocols::Stream>) {
        if upstream.write_all(head).await.is_err() || upstream.flush().await.is_err() {
            return (Attempted::NoResponse, None);
        }
        let head_request = routed.req.method == http::Method::HEAD;
        let mut buf = BytesMut::with_capacity(READ_ROOM);
        let response = loop {
            match parse_response(&buf, head_request) {
                // 1xx other than 101: more heads follow.
                Ok(Some(r)) if r.header.status.is_informational() => {
                    let _ = buf.split_to(r.head_len);
                    continue;
                }
                Ok(Some(r)) => break r,
                Ok(None) => {}
                Err(why) => return (Attempted::Failed(502, why.into()), None),
            }
            buf.reserve(READ_ROOM);
            match pingora::time::timeout(read_timeout, upstream.read_buf(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) if buf.is_empty() => return (Attempted::NoResponse, None),
                Ok(_) => return (Attempted::Failed(502, "closed mid-head".into()), None),
                Err(_) => {
                    let why = format!("no response within {read_timeout:?}");
                    return (Attempted::Failed(504, why), None);
                }
            }
        };
        let status = response.header.status.as_u16();
        let mut header = response.header;
        let routed_choice = Some((
            routed.choice,
            routed.entry.def.stickiness.issued_cookie.as_str(),
        ));
        let _ = client_response(
            &mut header,
            Some(routed.request_id),
            routed_choice,
            routed.believed.https,
        );
        tally.bytes_out += head_size(&header.headers, 12);
        let _ = buf.split_to(response.head_len);
        let mut framing = response.framing;
        if session
            .write_response_header(Box::new(header))
            .await
            .is_err()
        {
            return (Attempted::Answered(499), None);
        }
        loop {
            let mut payload = BytesMut::new();
            let used = match framing {
                Framing::Chunked(_) => {
                    match framing.advance_payload(&buf, |p| payload.extend_from_slice(p)) {
                        Ok(n) => n,
                        Err(e) => {
                            return (
                                Attempted::Answered(cut(session, status, &e.to_string()).await),
                                None,
                            )
                        }
                    }
                }
                _ => {
                    let n = framing.advance(&buf).unwrap_or(0);
                    payload = buf.split_to(n);
                    0
                }
            };
            let _ = buf.split_to(used);
            let done = framing.is_done();
            if !payload.is_empty() || done {
                tally.bytes_out += payload.len() as u64;
                if let Err(e) = session.write_response_body(payload.freeze(), done).await {
                    // Gone, or not reading within `send_timeout`.
                    let why = format!("writing to the client: {e}");
                    return (Attempted::Answered(cut(session, 499, &why).await), None);
                }
            }
            if done {
                break;
            }
            if self.gateway.drains.deadline_passed(routed.choice.color) {
                return (
                    Attempted::Answered(cut(session, status, "its colour was drained").await),
                    None,
                );
            }
            buf.reserve(READ_ROOM);
            match pingora::time::timeout(read_timeout, upstream.read_buf(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(Ok(_)) if framing == Framing::UntilClose => {
                    let _ = session.write_response_body(bytes::Bytes::new(), true).await;
                    return (Attempted::Answered(status), None);
                }
                _ => {
                    return (
                        Attempted::Answered(cut(session, status, "upstream ended early").await),
                        None,
                    )
                }
            }
        }
        let keep = (response.reusable && buf.is_empty()).then_some(upstream);
        (Attempted::Answered(status), keep)
    }
}

/// A response that began and cannot end well: the stream is reset.
async fn cut(session: &mut ServerSession, status: u16, why: &str) -> u16 {
    tracing::debug!(status, "response cut off: {why}");
    session.shutdown().await;
    status
}

/// The gateway's own answer: a status and no body.
async fn answer(
    session: &mut ServerSession,
    status: u16,
    request_id: &HeaderValue,
    retry_after: bool,
) {
    let mut response = ServerSession::generate_error(status);
    let _ = response.insert_header(X_REQUEST_ID, request_id);
    if retry_after {
        let _ = response.insert_header("retry-after", "1");
    }
    if session
        .write_response_header(Box::new(response))
        .await
        .is_ok()
    {
        let _ = session.finish_body().await;
    }
}
