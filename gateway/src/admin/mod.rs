//! The admin API, on its own listener (loopback by default).
//!
//! | method | path                     | token | what                            |
//! |--------|--------------------------|-------|---------------------------------|
//! | GET    | /v1/state                | no    | the split document and health   |
//! | PUT    | /v1/routes/{route}/split | yes   | one route's split               |
//! | PUT    | /v1/splits               | yes   | several routes, one generation  |
//! | POST   | /v1/reload               | yes   | re-read the config file         |
//! | PUT    | /v1/lock                 | yes   | take or renew the cutover lock  |
//! | POST   | /v1/lock/release         | yes   | release the cutover lock        |
//! | PUT    | /v1/run                  | yes   | the lock holder's progress      |
//! | POST   | /v1/controls             | yes   | queue an operator's command     |
//! | POST   | /v1/controls/ack         | yes   | the lock holder took commands   |
//! | POST   | /v1/drain                | yes   | end what is open to a colour    |
//! | GET    | /metrics                 | no    | Prometheus text format          |
//! | GET    | /healthz                 | no    | the process is alive            |
//! | GET    | /readyz                  | no    | ready for traffic               |
//!
//! Errors are JSON `{"error": "..."}` naming the field at fault. A refused
//! call changes nothing.

use crate::control::{ChangeError, ControlError, ControlRequest, Gateway, LockError, SplitChange};
use async_trait::async_trait;
use http::{Method, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use wire::*;

mod wire;

pub struct AdminApi {
    gateway: Arc<Gateway>,
}

impl AdminApi {
    pub fn new(gateway: Arc<Gateway>) -> AdminApi {
        AdminApi { gateway }
    }
}

#[async_trait]
impl ServeHttp for AdminApi {
    async fn response(&self, session: &mut ServerSession) -> Reply {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (&method, segments.as_slice()) {
            (&Method::GET, ["healthz"]) => text(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            (&Method::GET, ["readyz"]) => {
                if self.gateway.is_ready() {
                    text(StatusCode::OK, "text/plain", b"ready\n".to_vec())
                } else {
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        b"not ready\n".to_vec(),
                    )
                }
            }
            (&Method::GET, ["metrics"]) => {
                self.gateway.publish_in_flight();
                text(
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    self.gateway.metrics.render(),
                )
            }
            (&Method::GET, ["v1", "state"]) => {
                reply(StatusCode::OK, self.gateway.state_view().await)
            }
            (&Method::PUT, ["v1", "routes", route, "split"]) => {
                let route = route.to_string();
                self.mutation(session, |body| {
                    let b: RouteSplitBody = parse(body)?;
                    if self.gateway.snapshot().route(&route).is_none() {
                        return Err(ApiError::new(
                            StatusCode::NOT_FOUND,
                            format!("route: unknown route {route:?}"),
                        ));
                    }
                    let mirrors = match b.mirror_percent {
                        Some(m) => BTreeMap::from([(route.clone(), percent("mirror_percent", m)?)]),
                        None => BTreeMap::new(),
                    };
                    let percent = percent("green_percent", b.green_percent)?;
                    Ok(SplitChange {
                        routes: BTreeMap::from([(route, percent)]),
                        mirrors,
                        expected_generation: b.expected_generation,
                        actor: b.actor,
                        reason: b.reason,
                    })
                })
                .await
            }
            (&Method::PUT, ["v1", "splits"]) => {
                self.mutation(session, |body| {
                    let b: SplitsBody = parse(body)?;
                    let routes = b
                        .routes
                        .into_iter()
                        .map(|(name, p)| Ok((name.clone(), percent(&format!("routes.{name}"), p)?)))
                        .collect::<Result<_, ApiError>>()?;
                    let mirrors = b
                        .mirrors
                        .into_iter()
                        .map(|(name, p)| {
                            Ok((name.clone(), percent(&format!("mirrors.{name}"), p)?))
                        })
                        .collect::<Result<_, ApiError>>()?;
                    Ok(SplitChange {
                        routes,
                        mirrors,
                        expected_generation: b.expected_generation,
                        actor: b.actor,
                        reason: b.reason,
                    })
                })
                .await
            }
            (&Method::PUT, ["v1", "lock"]) | (&Method::POST, ["v1", "lock", "release"]) => {
                let release = method == Method::POST;
                self.lock_call(session, release)
                    .await
                    .unwrap_or_else(ApiError::reply)
            }
            (&Method::PUT, ["v1", "run"])
            | (&Method::POST, ["v1", "controls"])
            | (&Method::POST, ["v1", "controls", "ack"]) => self
                .operators_call(session, segments.len())
                .await
                .unwrap_or_else(ApiError::reply),
            (&Method::POST, ["v1", "drain"]) => self
                .drain_call(session)
                .await
                .unwrap_or_else(ApiError::reply),
            (&Method::POST, ["v1", "reload"]) => {
                if let Err(denied) = self.authorize(session) {
                    return denied.reply();
                }
                match self.gateway.reload().await {
                    Ok(()) => reply(StatusCode::OK, json!({"reloaded": true})),
                    Err(errors) => reply(
                        StatusCode::BAD_REQUEST,
                        json!({"error": "the new config or certificates were refused; the running ones stay", "errors": errors}),
                    ),
                }
            }
            _ => error(
                StatusCode::NOT_FOUND,
                format!("no such endpoint: {method} {path}"),
            ),
        }
    }
}

impl AdminApi {
    /// Token check, body read, parse, apply; any failure changes nothing.
    async fn mutation(
        &self,
        session: &mut ServerSession,
        parse_change: impl FnOnce(&[u8]) -> Result<SplitChange, ApiError>,
    ) -> Reply {
        if let Err(denied) = self.authorize(session) {
            return denied.reply();
        }
        let body = match read_body(session).await {
            Ok(b) => b,
            Err(e) => return e.reply(),
        };
        let change = match parse_change(&body) {
            Ok(c) => c,
            Err(e) => return e.reply(),
        };
        match self.gateway.change_splits(change).await {
            Ok(doc) => reply(StatusCode::OK, serde_json::to_value(doc).expect("json")),
            Err(e @ ChangeError::StaleGeneration { .. }) => error(StatusCode::CONFLICT, e),
            Err(e @ ChangeError::Store(crate::state::StoreError::Conflict(_))) => {
                error(StatusCode::CONFLICT, e)
            }
            Err(
                e @ (ChangeError::UnknownRoute(_) | ChangeError::Empty | ChangeError::NoMirror(_)),
            ) => error(StatusCode::BAD_REQUEST, e),
            Err(e @ ChangeError::Store(_)) => error(StatusCode::SERVICE_UNAVAILABLE, e),
        }
    }

    async fn lock_call(
        &self,
        session: &mut ServerSession,
        release: bool,
    ) -> Result<Reply, ApiError> {
        self.authorize(session)?;
        let body = read_body(session).await?;
        let b: LockBody = parse(&body)?;
        if b.holder.trim().is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "holder: must name who holds the lock",
            ));
        }
        let result = if release {
            self.gateway
                .release_lock(&b.holder)
                .await
                .map(|()| json!({"released": true}))
        } else {
            let ttl = b.ttl_seconds.unwrap_or(60);
            if ttl == 0 || ttl > 86_400 {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "ttl_seconds: must be from 1 to 86400",
                ));
            }
            self.gateway
                .take_lock(&b.holder, ttl, b.take_over)
                .await
                .map(|lock| serde_json::to_value(lock).expect("json"))
        };
        match result {
            Ok(v) => Ok(reply(StatusCode::OK, v)),
            Err(e) => match &e {
                LockError::Held { lock, expired } => Ok(reply(
                    StatusCode::CONFLICT,
                    json!({"error": e.to_string(), "lock": lock, "expired": expired}),
                )),
                LockError::Store(crate::state::StoreError::Conflict(_)) => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "the stored state changed concurrently; try again",
                )),
                LockError::Store(_) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e)),
            },
        }
    }

    /// The run's progress, an operator's command, or the run taking
    /// commands (`segments`: 2 for `/v1/run` and `/v1/controls`, 3 for
    /// the ack).
    async fn operators_call(
        &self,
        session: &mut ServerSession,
        segments: usize,
    ) -> Result<Reply, ApiError> {
        self.authorize(session)?;
        let body = read_body(session).await?;
        let is_run = session.req_header().uri.path().ends_with("/run");
        let result = if is_run {
            let b: RunBody = parse(&body)?;
            self.gateway
                .publish_run(&b.holder, b.progress)
                .await
                .map(|run| serde_json::to_value(run).expect("json"))
        } else if segments == 2 {
            let request: ControlRequest = parse(&body)?;
            self.gateway
                .queue_control(request)
                .await
                .map(|queued| serde_json::to_value(queued).expect("json"))
        } else {
            let b: AckBody = parse(&body)?;
            self.gateway
                .ack_controls(&b.holder, &b.ids)
                .await
                .map(|removed| json!({ "removed": removed }))
        };
        result.map(|v| reply(StatusCode::OK, v)).map_err(|e| {
            let status = match &e {
                ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
                ControlError::NotHolder(_) => StatusCode::CONFLICT,
                ControlError::Full => StatusCode::TOO_MANY_REQUESTS,
                ControlError::Store(crate::state::StoreError::Conflict(_)) => StatusCode::CONFLICT,
                ControlError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            ApiError::new(status, e)
        })
    }

    /// `POST /v1/drain`: refused (409) while a route sends the colour
    /// traffic; what is in flight to it is in the answer.
    async fn drain_call(&self, session: &mut ServerSession) -> Result<Reply, ApiError> {
        self.authorize(session)?;
        let body = read_body(session).await?;
        let b: DrainBody = parse(&body)?;
        let color = match b.color.as_str() {
            "blue" => crate::split::Color::Blue,
            "green" => crate::split::Color::Green,
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("color: {other:?} is not blue or green"),
                ))
            }
        };
        let deadline = std::time::Duration::from_secs_f64(b.deadline_seconds.clamp(0.0, 86_400.0));
        self.gateway
            .start_drain(color, deadline)
            .map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
        tracing::info!(
            actor = b.actor.as_deref().unwrap_or("-"),
            reason = b.reason.as_deref().unwrap_or("-"),
            color = color.as_str(),
            "drain asked for"
        );
        Ok(reply(
            StatusCode::OK,
            json!({"draining": color.as_str(), "deadline_seconds": deadline.as_secs_f64(), "in_flight": self.gateway.in_flight_to(color)}),
        ))
    }

    fn authorize(&self, session: &ServerSession) -> Result<(), ApiError> {
        let Some(token) = self.gateway.admin_token() else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this gateway has no admin token configured (GATEWAY_ADMIN_TOKEN or admin.token_file), so the admin API is read-only",
            ));
        };
        let given = session
            .get_header(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token in the Authorization header",
            ))
        }
    }
}
