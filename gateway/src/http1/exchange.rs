//! One request, from its head to the end of its response:
//!
//! serve_request  reads and checks the head, routes it, records metrics
//! proxy          picks endpoints until one answers: connect failures go to
//!                the next endpoint (nothing was sent); a connection that
//!                closes without a response is retried only for idempotent
//!                requests without a body
//! forward        one attempt: send the head and body, relay the response,
//!                keep the upstream connection if it may carry another

use super::client::{After, Client};
use super::forward::{Attempt, Delivered, Failure};
use super::framing::Framing;
use super::log::{self, Traffic};
use super::mirror;
use super::pool;
use super::relay::{respond, respond_with, RETRY_AFTER};
use super::request::{self, Refusal, Request};
use super::response::ClientSide;
use super::service::Service;
use crate::choose::Attempts;
use crate::routing::RouteEntry;
use std::time::Instant;

/// Connections that closed without a response, at most, before a
/// retryable request fails.
const MAX_RETRIES: usize = 4;

/// The request's ID as a header line, for the gateway's own answers.
fn id_line(request: &Request) -> String {
    format!(
        "X-Request-Id: {}\r\n",
        String::from_utf8_lossy(request.request_id())
    )
}

impl Service {
    pub(super) async fn serve_request(&self, client: &mut Client, draining: bool) -> After {
        let snapshot = self.gateway.snapshot();
        // Set when a head turns out incomplete (most arrive whole: no clock).
        let mut deadline = None;
        let request = loop {
            match request::parse(client.buf.pending(), &client.info, &snapshot) {
                Ok(Some(request)) => break request,
                Ok(None) => {}
                Err(refusal) => {
                    tracing::debug!(?refusal, "request refused");
                    let status = match refusal {
                        Refusal::BadRequest(_) => 400,
                        Refusal::TooLarge => 431,
                    };
                    respond(client, status, true).await;
                    return After::Close;
                }
            }
            let now = Instant::now();
            let deadline = *deadline.get_or_insert(now + self.timeouts.header);
            let left = deadline.saturating_duration_since(now);
            match pingora::time::timeout(left, client.read_more_head()).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return After::Close,
                Err(_) => {
                    // Headers that never end (slowloris) are cut off.
                    respond(client, 408, true).await;
                    return After::Close;
                }
            }
        };
        if let Some(choice) = &request.choice {
            let def = &snapshot.routes[choice.route].def;
            if def.blue.speaks_h2() || def.green.speaks_h2() {
                if client.info.tls {
                    // A TLS stream cannot take its bytes back for pingora.
                    tracing::warn!(route = %def.name, "HTTP/1 over TLS to a route whose upstreams speak HTTP/2: clients must negotiate h2");
                    respond(client, 502, true).await;
                    return After::Close;
                }
                return After::ToPingora;
            }
        }
        client.buf.consume(request.head_len);
        // A body that is not read cannot be skipped safely: close instead.
        let closing = !request.keep_alive || draining;
        let Some(choice) = &request.choice else {
            let closing = closing || request.framing != Framing::Empty;
            respond(client, 404, closing).await;
            let outcome = log::Outcome {
                status: 404,
                started: Instant::now(),
                route: None,
                color: None,
                pinned: false,
                traffic: Traffic::default(),
            };
            self.log(&client.info, request, outcome);
            return if closing {
                After::Close
            } else {
                After::KeepAlive
            };
        };
        let _in_flight = self.gateway.request_started();
        let started = Instant::now();
        let entry = &snapshot.routes[choice.route];
        let Some(_admitted) = entry.def.group(choice.color).admit() else {
            // The colour is at max_in_flight: 503 now, not a queue.
            entry.def.metrics.overloaded(choice.color, choice.pinned);
            let closing = closing || request.framing != Framing::Empty;
            let extra = format!("{RETRY_AFTER}{}", id_line(&request));
            respond_with(client, 503, closing, &extra).await;
            let outcome = log::Outcome {
                status: 503,
                started,
                route: Some(entry),
                color: Some(choice.color),
                pinned: choice.pinned,
                traffic: Traffic::default(),
            };
            self.log(&client.info, request, outcome);
            return if closing {
                After::Close
            } else {
                After::KeepAlive
            };
        };
        let mut attempts = Attempts::new(choice);
        let (ticket, taps) = mirror::admit(&request, entry, choice).unzip();
        let mut traffic = Traffic {
            taps,
            ..Traffic::default()
        };
        let delivered = self
            .proxy(
                client,
                &request,
                entry,
                &mut attempts,
                closing,
                &mut traffic,
            )
            .await;
        if let (Some(ticket), Some(taps)) = (ticket, traffic.taps.take()) {
            mirror::hand_over(ticket, taps, &request, entry, attempts.color);
        }
        let status =
            http::StatusCode::from_u16(delivered.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        entry.def.metrics.record(
            attempts.color,
            choice.pinned,
            status,
            None,
            started.elapsed().as_secs_f64(),
        );
        let outcome = log::Outcome {
            status: delivered.status,
            started,
            route: Some(entry),
            color: Some(attempts.color),
            pinned: choice.pinned,
            traffic,
        };
        self.log(&client.info, request, outcome);
        delivered.after
    }

    async fn proxy(
        &self,
        client: &mut Client,
        request: &Request,
        entry: &RouteEntry,
        attempts: &mut Attempts,
        closing: bool,
        traffic: &mut Traffic,
    ) -> Delivered {
        let def = &entry.def;
        let metrics = &self.gateway.metrics;
        let mut framing = request.framing;
        let mut retries = 0;
        let issue_cookie = request
            .choice
            .as_ref()
            .and_then(|c| c.issued_key.as_deref());
        let side = ClientSide {
            request,
            closing,
            issue_cookie: issue_cookie.map(|key| (def.stickiness.issued_cookie.as_str(), key)),
            https: request.https,
            served_by: request
                .choice
                .as_ref()
                .filter(|c| c.pinned)
                .map(|c| c.color.as_str()),
        };
        let failure = loop {
            let endpoint = match attempts.next(def, metrics) {
                Ok(endpoint) => endpoint,
                Err(none) => {
                    let why = format!(
                        "route {}: no healthy {} endpoint",
                        def.name,
                        none.color.as_str()
                    );
                    break Failure::Upstream(503, why);
                }
            };
            traffic.tries += 1;
            let connection =
                pool::connection(&self.connector, &endpoint, &def.name, attempts, metrics);
            let Some((upstream, reused)) = connection.await else {
                continue;
            };
            let spec = def.group(attempts.color).spec();
            let attempt = Attempt {
                endpoint: &endpoint,
                color: attempts.color,
                reused,
                host_rewrite: spec.group.host_rewrite.as_deref(),
                read_timeout: spec.timeouts.read,
            };
            match self
                .forward(client, &side, &mut framing, upstream, attempt, traffic)
                .await
            {
                Ok(delivered) => return delivered,
                Err(Failure::NoResponse { reused, error }) => {
                    // One closed connection: its idle siblings are suspect.
                    pool::forget(endpoint.pool_key);
                    if !reused {
                        attempts.failed(endpoint.addr);
                    }
                    if !request.retryable() || retries == MAX_RETRIES {
                        break Failure::Upstream(502, format!("{}: {error}", endpoint.addr));
                    }
                    retries += 1;
                }
                Err(failure) => break failure,
            }
        };
        let status = match failure {
            Failure::BadBody(e) => {
                tracing::debug!(error = %e, "request body refused");
                respond(client, 400, true).await;
                return Delivered {
                    status: 400,
                    after: After::Close,
                };
            }
            // nginx's 499: the client closed before the response.
            Failure::ClientGone => {
                return Delivered {
                    status: 499,
                    after: After::Close,
                }
            }
            Failure::NoResponse { .. } => unreachable!("turned into a retry or a 502 above"),
            Failure::Upstream(status, why) => {
                if status != 503 {
                    let color = attempts.color.as_str();
                    metrics
                        .upstream_errors
                        .with_label_values(&[&def.name, color, "proxy"])
                        .inc();
                }
                // A colour without healthy endpoints is logged when its
                // endpoints flip, not once per request.
                if status == 503 {
                    tracing::debug!(route = %def.name, status, "{why}");
                } else {
                    tracing::warn!(route = %def.name, status, "{why}");
                }
                status
            }
        };
        // An unread body cannot be skipped: close.
        let closing = closing || !framing.is_done();
        respond_with(client, status, closing, &id_line(request)).await;
        Delivered {
            status,
            after: if closing {
                After::Close
            } else {
                After::KeepAlive
            },
        }
    }
}
