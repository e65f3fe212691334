//! One request, from its head to the end of its response:
//!
//! serve_request  reads and checks the head, routes it, records metrics
//! proxy          picks endpoints until one answers: connect failures go to
//!                the next endpoint (nothing was sent); a connection that
//!                closes without a response is retried only for idempotent
//!                requests without a body
//! forward        one attempt: send the head and body, relay the response,
//!                keep the upstream connection if it may carry another

use super::app::{Client, Http1App};
use super::buffer::Buffer;
use super::framing::{Framing, FramingError};
use super::pool;
use super::relay::{relay, respond, tunnel, write_all, Relay};
use super::request::{self, Refusal, Request};
use super::response::{self, ClientSide};
use crate::choose::Attempts;
use crate::routing::RouteEntry;
use crate::upstream::Endpoint;
use pingora::protocols::Stream;
use std::time::{Duration, Instant};

/// What the connection does after a request.
pub enum After {
    KeepAlive,
    Close,
    /// The route's upstreams speak HTTP/2, which pingora-proxy does: the
    /// connection (this request still unread) goes there.
    ToPingora,
}

/// Room to read upstream bytes into: a 16 KiB response fits one read.
const UPSTREAM_ROOM: usize = 32 * 1024;
/// Room to read a request body into.
const BODY_ROOM: usize = 16 * 1024;
/// Connections that closed without a response, at most, before a
/// retryable request fails.
const MAX_RETRIES: usize = 4;

/// How one attempt ended, when it did not deliver a response.
enum Failure {
    /// The client sent a body whose chunked framing is broken: 400.
    BadBody(FramingError),
    /// The client went away, or stopped sending its body.
    ClientGone,
    /// The connection failed before any response byte: on a reused one
    /// the upstream had closed it while idle, on a new one it went away.
    /// Safe to retry when the request is retryable (nginx's
    /// `proxy_next_upstream error` does the same for idempotent requests).
    NoResponse { reused: bool, error: String },
    /// The upstream failed; the client gets this status.
    Upstream(u16, String),
}

/// A response delivered (or cut off once started).
struct Delivered {
    status: u16,
    after: After,
}

impl Http1App {
    pub(super) async fn serve_request(&self, client: &mut Client, draining: bool) -> After {
        let snapshot = self.gateway.snapshot();
        let deadline = Instant::now() + self.timeouts.header;
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
            let left = deadline.saturating_duration_since(Instant::now());
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
            return if closing {
                After::Close
            } else {
                After::KeepAlive
            };
        };
        let _in_flight = self.gateway.request_started();
        let started = Instant::now();
        let entry = &snapshot.routes[choice.route];
        let mut attempts = Attempts::new(choice);
        let delivered = self
            .proxy(client, &request, entry, &mut attempts, closing)
            .await;
        let status =
            http::StatusCode::from_u16(delivered.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        entry.def.metrics.record(
            attempts.color,
            choice.pinned,
            status,
            None,
            started.elapsed().as_secs_f64(),
        );
        delivered.after
    }

    async fn proxy(
        &self,
        client: &mut Client,
        request: &Request,
        entry: &RouteEntry,
        attempts: &mut Attempts,
        closing: bool,
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
            let (upstream, reused) = match pool::take(endpoint.pool_key) {
                Some(stream) => (stream, true),
                None => match self.connector.new_stream(&endpoint.peer).await {
                    Ok(stream) => (stream, false),
                    Err(e) => {
                        tracing::debug!(endpoint = %endpoint.addr, error = %e, "connect failed");
                        let color = attempts.color.as_str();
                        metrics
                            .upstream_errors
                            .with_label_values(&[&def.name, color, "connect"])
                            .inc();
                        attempts.failed(endpoint.addr);
                        continue;
                    }
                },
            };
            let spec = def.group(attempts.color).spec();
            let attempt = Attempt {
                endpoint: &endpoint,
                reused,
                host_rewrite: spec.group.host_rewrite.as_deref(),
                read_timeout: spec.timeouts.read,
            };
            match self
                .forward(client, &side, &mut framing, upstream, attempt)
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
        respond(client, status, closing).await;
        Delivered {
            status,
            after: if closing {
                After::Close
            } else {
                After::KeepAlive
            },
        }
    }

    async fn forward(
        &self,
        client: &mut Client,
        side: &ClientSide<'_>,
        framing: &mut Framing,
        mut upstream: Stream,
        attempt: Attempt<'_>,
    ) -> Result<Delivered, Failure> {
        let request = side.request;
        // The head and whatever of the body already came, in one write.
        let mut out = Vec::with_capacity(512 + client.buf.pending().len());
        request.write_upstream_head(&mut out, attempt.host_rewrite);
        let n = framing
            .advance(client.buf.pending())
            .map_err(Failure::BadBody)?;
        out.extend_from_slice(&client.buf.pending()[..n]);
        client.buf.consume(n);
        if let Err(e) = write_all(&mut upstream, &out).await {
            return Err(attempt.failed(e, false));
        }
        if request.expects_continue && !framing.is_done() {
            write_all(&mut client.stream, b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(|_| Failure::ClientGone)?;
        }
        let body_timeout = self.timeouts.keepalive;
        relay(
            &mut client.stream,
            &mut client.buf,
            framing,
            &mut upstream,
            body_timeout,
            BODY_ROOM,
        )
        .await
        .map_err(|e| match e {
            Relay::Framing(e) => Failure::BadBody(e),
            Relay::Write(e) => {
                Failure::Upstream(502, format!("sending the request body upstream: {e}"))
            }
            Relay::ReadClosed | Relay::Read(_) | Relay::Timeout => Failure::ClientGone,
        })?;

        // The response head; 1xx heads before it go to the client as they come.
        let mut from_upstream = Buffer::default();
        let response = loop {
            out.clear();
            match response::parse(from_upstream.pending(), side, &mut out) {
                Ok(Some(response)) if response.is_interim() => {
                    from_upstream.consume(response.head_len);
                    write_all(&mut client.stream, &out)
                        .await
                        .map_err(|_| Failure::ClientGone)?;
                    continue;
                }
                Ok(Some(response)) => break response,
                Ok(None) => {}
                Err(bad) => {
                    return Err(Failure::Upstream(
                        502,
                        format!("{}: {}", attempt.endpoint.addr, bad.0),
                    ))
                }
            }
            let received = !from_upstream.is_empty();
            match pingora::time::timeout(
                attempt.read_timeout,
                from_upstream.read_from(&mut upstream, UPSTREAM_ROOM),
            )
            .await
            {
                Ok(Ok(n)) if n > 0 => {}
                Ok(Ok(_)) => {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "closed before a response",
                    );
                    return Err(attempt.failed(e, received));
                }
                Ok(Err(e)) => return Err(attempt.failed(e, received)),
                Err(_) => {
                    return Err(Failure::Upstream(
                        504,
                        format!(
                            "{}: no response within {:?}",
                            attempt.endpoint.addr, attempt.read_timeout
                        ),
                    ))
                }
            }
        };
        from_upstream.consume(response.head_len);
        let mut body = response.framing;
        let n = body
            .advance(from_upstream.pending())
            .map_err(|e| Failure::Upstream(502, format!("{}: {e}", attempt.endpoint.addr)))?;
        out.extend_from_slice(&from_upstream.pending()[..n]);
        from_upstream.consume(n);
        if write_all(&mut client.stream, &out).await.is_err() {
            return Ok(Delivered {
                status: response.status,
                after: After::Close,
            });
        }
        drop(out);

        if response.status == 101 && request.upgrade {
            tunnel(client, &mut upstream, &from_upstream).await;
            return Ok(Delivered {
                status: 101,
                after: After::Close,
            });
        }
        let relayed = relay(
            &mut upstream,
            &mut from_upstream,
            &mut body,
            &mut client.stream,
            attempt.read_timeout,
            UPSTREAM_ROOM,
        )
        .await;
        if let Err(e) = relayed {
            // The response started: all that is left is to cut it off.
            tracing::debug!(endpoint = %attempt.endpoint.addr, error = ?e, "response cut off");
            return Ok(Delivered {
                status: response.status,
                after: After::Close,
            });
        }
        if response.reusable && from_upstream.is_empty() && framing.is_done() {
            pool::put(attempt.endpoint.pool_key, upstream);
        }
        let closing = side.closing || response.framing == Framing::UntilClose;
        Ok(Delivered {
            status: response.status,
            after: if closing {
                After::Close
            } else {
                After::KeepAlive
            },
        })
    }
}

/// One endpoint and connection being tried.
struct Attempt<'a> {
    endpoint: &'a Endpoint,
    reused: bool,
    host_rewrite: Option<&'a str>,
    read_timeout: Duration,
}

impl Attempt<'_> {
    /// A failure to send, or to get a response head.
    fn failed(&self, e: std::io::Error, received: bool) -> Failure {
        if !received {
            Failure::NoResponse {
                reused: self.reused,
                error: e.to_string(),
            }
        } else {
            Failure::Upstream(502, format!("{}: {e}", self.endpoint.addr))
        }
    }
}
