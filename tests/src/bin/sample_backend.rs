//! `sample-backend`: a small HTTP server standing in for a cluster's
//! ingress in the demo and the end-to-end tests.
//!
//! Every response carries `x-backend: NAME`. Paths:
//!   /healthz                      200 "ok" (never injected with errors)
//!   /echo                         JSON: backend, method, path, headers
//!   /slow?ms=N                    answers after N ms
//!   /stream?chunks=N&interval_ms=M  N chunks, M ms apart
//!   /die                          reads the request, then drops the connection
//!   /ws                           WebSocket echo
//!   /stats                        JSON: requests served, /die hits
//!   anything else                 200 with the backend's name
//! `--error-rate` and `--latency-ms` degrade "anything else", to play a
//! broken green cluster.

use bytes::Bytes;
use clap::Parser;
use futures_util::stream;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(about = "A sample HTTP backend for the cutover demo and tests")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: String,
    /// Name reported in `x-backend` and bodies (e.g. blue, green-2).
    #[arg(long, default_value = "backend")]
    name: String,
    /// Fraction (0–1) of ordinary requests answered with 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Extra latency added to ordinary requests, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

struct Backend {
    args: Args,
    requests: AtomicU64,
    die: AtomicU64,
}

type Body = BoxBody<Bytes, Infallible>;

fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).boxed()
}

fn query(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.parse().ok()).flatten()
    })
}

impl Backend {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<Body>, String> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let path = req.uri().path().to_owned();
        let (status, body) = match path.as_str() {
            "/healthz" => (StatusCode::OK, full("ok\n")),
            "/echo" => {
                let headers: serde_json::Map<String, serde_json::Value> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                    .collect();
                let doc = serde_json::json!({
                    "backend": self.args.name,
                    "method": req.method().as_str(),
                    "path": path,
                    "headers": headers,
                });
                (StatusCode::OK, full(doc.to_string()))
            }
            "/slow" => {
                tokio::time::sleep(Duration::from_millis(query(&req, "ms").unwrap_or(1000))).await;
                (StatusCode::OK, full(format!("{} slow\n", self.args.name)))
            }
            "/stream" => {
                let chunks = query(&req, "chunks").unwrap_or(5);
                let interval = Duration::from_millis(query(&req, "interval_ms").unwrap_or(200));
                let s = stream::unfold(0, move |i| async move {
                    if i == chunks {
                        return None;
                    }
                    if i > 0 {
                        tokio::time::sleep(interval).await;
                    }
                    let frame = Frame::data(Bytes::from(format!("chunk {i}\n")));
                    Some((Ok::<_, Infallible>(frame), i + 1))
                });
                (StatusCode::OK, StreamBody::new(s).boxed())
            }
            "/ws" => return Ok(websocket_echo(req)),
            "/die" => {
                let _ = req.into_body().collect().await;
                self.die.fetch_add(1, Ordering::Relaxed);
                // An error from the service makes hyper drop the connection
                // without answering: an upstream dying mid-request.
                return Err("dying on purpose".into());
            }
            "/stats" => {
                let doc = serde_json::json!({
                    "requests": self.requests.load(Ordering::Relaxed),
                    "die": self.die.load(Ordering::Relaxed),
                });
                (StatusCode::OK, full(doc.to_string()))
            }
            _ => {
                if self.args.latency_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(self.args.latency_ms)).await;
                }
                // Deterministic error injection: every k-th request fails,
                // so a 20% rate is exactly 20% over any 5 requests.
                let failing = self.args.error_rate > 0.0
                    && (n as f64 * self.args.error_rate).floor()
                        != ((n + 1) as f64 * self.args.error_rate).floor();
                if failing {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        full(format!("{} injected error\n", self.args.name)),
                    )
                } else {
                    (StatusCode::OK, full(format!("{}\n", self.args.name)))
                }
            }
        };
        Ok(Response::builder()
            .status(status)
            .header("x-backend", &self.args.name)
            .body(body)
            .expect("valid response"))
    }
}

/// Answers the WebSocket handshake, then echoes every message back.
fn websocket_echo(mut req: Request<Incoming>) -> Response<Body> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{handshake::derive_accept_key, protocol::Role};
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(full("expected a WebSocket upgrade\n"))
            .expect("valid response");
    };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            None,
        )
        .await;
        while let Some(Ok(msg)) = ws.next().await {
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                break;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
        .body(full(Bytes::new()))
        .expect("valid response")
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let listener = TcpListener::bind(&args.listen)
        .await
        .unwrap_or_else(|e| panic!("--listen {}: {e}", args.listen));
    let backend = Arc::new(Backend {
        args,
        requests: AtomicU64::new(0),
        die: AtomicU64::new(0),
    });
    eprintln!(
        "sample-backend {} listening on {}",
        backend.args.name, backend.args.listen
    );
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let backend = backend.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| backend.clone().handle(req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}
