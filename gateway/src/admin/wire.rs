//! The admin API's wire format: the request bodies it accepts (unknown
//! fields refused, each error naming its field) and the JSON answers.

use crate::split::GreenPercent;
use http::{Response, StatusCode};
use pingora::protocols::http::ServerSession;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

/// Largest request body the admin API reads.
const MAX_BODY: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteSplitBody {
    pub green_percent: f64,
    /// The route's mirror percent, set in the same generation.
    #[serde(default)]
    pub mirror_percent: Option<f64>,
    #[serde(default)]
    pub expected_generation: Option<u64>,
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LockBody {
    pub holder: String,
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    #[serde(default)]
    pub take_over: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SplitsBody {
    #[serde(default)]
    pub routes: BTreeMap<String, f64>,
    /// Mirror percents, by route (routes with a `mirror:` block).
    #[serde(default)]
    pub mirrors: BTreeMap<String, f64>,
    #[serde(default)]
    pub expected_generation: Option<u64>,
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunBody {
    pub holder: String,
    pub progress: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DrainBody {
    pub color: String,
    pub deadline_seconds: f64,
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AckBody {
    pub holder: String,
    pub ids: Vec<String>,
}

pub(super) type Reply = Response<Vec<u8>>;

pub(super) fn reply(status: StatusCode, body: serde_json::Value) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(serde_json::to_vec_pretty(&body).expect("json"))
        .expect("valid response")
}

/// A refused call: its status and a message naming the field at fault.
pub(super) struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl std::fmt::Display) -> ApiError {
        ApiError {
            status,
            message: message.to_string(),
        }
    }

    pub(super) fn reply(self) -> Reply {
        reply(self.status, json!({ "error": self.message }))
    }
}

pub(super) fn error(status: StatusCode, message: impl std::fmt::Display) -> Reply {
    ApiError::new(status, message).reply()
}

pub(super) fn text(status: StatusCode, content_type: &str, body: Vec<u8>) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body)
        .expect("valid response")
}

pub(super) async fn read_body(session: &mut ServerSession) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BODY {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("request body over {MAX_BODY} bytes"),
                    ));
                }
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                ))
            }
        }
    }
}

pub(super) fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let message = if field == "." || field == "?" {
            format!("body: {}", e.inner())
        } else {
            format!("{field}: {}", e.inner())
        };
        ApiError::new(StatusCode::BAD_REQUEST, message)
    })
}

pub(super) fn percent(field: &str, value: f64) -> Result<GreenPercent, ApiError> {
    GreenPercent::from_percent(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("{field}: {e}")))
}
