//! A fake Azure Resource Manager for the network reads the planner makes:
//! a VNet, its subnets (paged through `nextLink`, rewritten to point at
//! this server) and its peerings, with ARM-shaped errors for a missing VNet
//! (404), a forbidden resource group (403) and a throttled one (429).

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// What the fake serves.
#[derive(Clone)]
pub struct ArmData {
    pub vnet: Value,
    pub subnets: Vec<Value>,
    pub peerings: Vec<Value>,
    /// Subnets per page; several pages exercise `nextLink`.
    pub page_size: usize,
    /// Point the subnets' `nextLink` at another host (must be refused).
    pub foreign_next_link: bool,
}

pub struct FakeArm {
    pub addr: SocketAddr,
    /// `METHOD path?query authorization` of every request.
    pub seen: Arc<Mutex<Vec<String>>>,
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("retry-after", "0")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn arm_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    reply(status, json!({"error": {"code": code, "message": message}}))
}

impl FakeArm {
    pub async fn start(data: ArmData) -> FakeArm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (data, log) = (Arc::new(data), seen.clone());
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (data, log) = (data.clone(), log.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (data, log) = (data.clone(), log.clone());
                        async move { Ok::<_, Infallible>(handle(&data, &log, addr, req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        FakeArm { addr, seen }
    }

    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn handle(
    data: &ArmData,
    log: &Mutex<Vec<String>>,
    addr: SocketAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    log.lock()
        .unwrap()
        .push(format!("{} {path}?{query} {auth}", req.method()));
    if !auth.starts_with("Bearer ") {
        return arm_error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "no bearer token",
        );
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{vnet}[/{kind}]
    let (Some(rg), Some(vnet)) = (parts.get(3), parts.get(7)) else {
        return arm_error(StatusCode::NOT_FOUND, "InvalidResourceType", "unknown path");
    };
    match *rg {
        "forbidden-rg" => {
            return arm_error(
                StatusCode::FORBIDDEN,
                "AuthorizationFailed",
                "The client does not have authorization to perform action 'Microsoft.Network/virtualNetworks/read'",
            )
        }
        "throttled-rg" => return arm_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "slow down"),
        _ => {}
    }
    if *vnet == "missing" {
        return arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The Resource 'Microsoft.Network/virtualNetworks/missing' was not found.",
        );
    }
    match parts.get(8).copied() {
        None => reply(StatusCode::OK, data.vnet.clone()),
        Some("subnets") => {
            let page: usize = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("$skiptoken="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let start = page * data.page_size;
            let items: Vec<Value> = data
                .subnets
                .iter()
                .skip(start)
                .take(data.page_size)
                .cloned()
                .collect();
            let mut body = json!({ "value": items });
            if start + data.page_size < data.subnets.len() {
                let host = if data.foreign_next_link {
                    "https://attacker.invalid".to_owned()
                } else {
                    format!("http://{addr}")
                };
                body["nextLink"] = json!(format!(
                    "{host}{path}?api-version=2024-03-01&$skiptoken={}",
                    page + 1
                ));
            }
            reply(StatusCode::OK, body)
        }
        Some("virtualNetworkPeerings") => reply(StatusCode::OK, json!({ "value": data.peerings })),
        Some(other) => arm_error(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            &format!("no {other}"),
        ),
    }
}
