//! How an upstream group's endpoints are checked: an HTTP GET of the
//! configured path, or the gRPC health protocol ([`super::grpc_health`]),
//! over the group's own protocol; and what a change of health tells the
//! log (with the last failure's reason) and `gateway_backend_healthy`.

use super::grpc_health::GrpcHealthCheck;
use super::{apply_peer_options, inet, Ca, Endpoint, GroupSpec};
use crate::config::{HealthCheckConfig, HealthProtocol, UpstreamProtocol};
use crate::metrics::Metrics;
use crate::split::Color;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::lb::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora::lb::Backend;
use pingora::prelude::HttpPeer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// The group's active check: an HTTP GET of the configured path (200 is
/// healthy), or the gRPC health protocol (SERVING is healthy).
pub(crate) fn health_check(
    spec: &GroupSpec,
    endpoints: Arc<ArcSwap<Vec<Arc<Endpoint>>>>,
    ca: &Ca,
    metrics: Arc<Metrics>,
) -> Box<dyn HealthCheck + Send + Sync> {
    let hc = &spec.health;
    let tls = spec.group.tls.as_ref();
    let host = spec
        .group
        .host_rewrite
        .clone()
        .or_else(|| tls.map(|t| t.sni.clone()))
        .unwrap_or_else(|| "localhost".into());
    let reporter = HealthReporter {
        route: spec.route.clone(),
        color: spec.color,
        protocol: spec.group.protocol,
        endpoints,
        metrics,
    };
    let mut peer = HttpPeer::new("0.0.0.0:1", tls.is_some(), String::new());
    apply_peer_options(spec, ca, &mut peer);
    peer.sni = tls.map(|t| t.sni.clone()).unwrap_or_default();
    let o = &mut peer.options;
    o.connection_timeout = Some(hc.timeout);
    o.total_connection_timeout = Some(hc.timeout);
    o.read_timeout = Some(hc.timeout);
    let check: Box<dyn HealthCheck + Send + Sync> = match hc.protocol.unwrap_or_default() {
        HealthProtocol::Grpc => {
            let mut check = GrpcHealthCheck::new(peer, host, hc.service.clone());
            check.consecutive_success = hc.healthy_threshold;
            check.consecutive_failure = hc.unhealthy_threshold;
            Box::new(check)
        }
        HealthProtocol::Tcp => {
            let mut check = TcpHealthCheck::new();
            check.consecutive_success = hc.healthy_threshold;
            check.consecutive_failure = hc.unhealthy_threshold;
            check.peer_template.options.connection_timeout = Some(hc.timeout);
            check.peer_template.options.total_connection_timeout = Some(hc.timeout);
            check
        }
        HealthProtocol::Http => Box::new(http_check(peer, &host, hc)),
    };
    Box::new(Reported {
        check,
        reporter,
        last_failure: Mutex::new(HashMap::new()),
    })
}

fn http_check(peer: HttpPeer, host: &str, hc: &HealthCheckConfig) -> HttpHealthCheck {
    let mut check = HttpHealthCheck::new(host, peer.is_tls());
    let mut req = RequestHeader::build("GET", hc.path.as_bytes(), None).expect("validated path");
    req.insert_header("Host", host).expect("validated host");
    req.insert_header("User-Agent", "cutover-gateway-health")
        .expect("static header");
    check.req = req;
    check.consecutive_success = hc.healthy_threshold;
    check.consecutive_failure = hc.unhealthy_threshold;
    // (`HttpHealthCheck::new` would put the Host in the SNI; the handshake
    // must present the configured server name.)
    check.peer_template = peer;
    check
}

/// A check, with why each endpoint last failed, reported on a change.
struct Reported {
    check: Box<dyn HealthCheck + Send + Sync>,
    reporter: HealthReporter,
    last_failure: Mutex<HashMap<SocketAddr, String>>,
}

#[async_trait]
impl HealthCheck for Reported {
    async fn check(&self, target: &Backend) -> pingora::Result<()> {
        let result = self.check.check(target).await;
        if let Err(e) = &result {
            let mut failures = self.last_failure.lock().expect("failures lock");
            failures.insert(inet(target), e.to_string());
        }
        result
    }

    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        // Into or out of rotation at once; the report may first probe.
        self.reporter.mark(target, healthy);
        let why = self
            .last_failure
            .lock()
            .expect("failures lock")
            .remove(&inet(target));
        let why = match self.reporter.protocol {
            UpstreamProtocol::H2c if !healthy && answers_http1(inet(target)).await => {
                Some(format!(
                "it answers HTTP/1, not HTTP/2: {}.protocol is h2c; use http1 for this endpoint",
                self.reporter.color.as_str()
            ))
            }
            _ => why,
        };
        self.reporter.report(target, healthy, why.as_deref());
    }

    fn health_threshold(&self, success: bool) -> usize {
        self.check.health_threshold(success)
    }
}

/// Keeps `gateway_backend_healthy` and the log in step with health changes.
struct HealthReporter {
    route: String,
    color: Color,
    protocol: UpstreamProtocol,
    endpoints: Arc<ArcSwap<Vec<Arc<Endpoint>>>>,
    metrics: Arc<Metrics>,
}

impl HealthReporter {
    /// Puts the endpoint into rotation or takes it out.
    fn mark(&self, target: &Backend, healthy: bool) {
        let addr = inet(target);
        if let Some(endpoint) = self.endpoints.load().iter().find(|e| e.addr == addr) {
            endpoint.healthy.store(healthy, Ordering::Relaxed);
        }
    }

    fn report(&self, target: &Backend, healthy: bool, why: Option<&str>) {
        let addr = inet(target);
        let endpoints = self.endpoints.load();
        let name = endpoints
            .iter()
            .find(|e| e.addr == addr)
            .map(|e| e.name.as_str())
            .unwrap_or("unknown");
        self.metrics
            .backend_healthy
            .with_label_values(&[&self.route, self.color.as_str(), name])
            .set(i64::from(healthy));
        let (route, color) = (&self.route, self.color.as_str());
        if healthy {
            tracing::info!(%route, color, endpoint = name, "endpoint back in rotation");
            return;
        }
        let why = why.unwrap_or("no reason recorded");
        tracing::warn!(%route, color, endpoint = name, reason = why,
            "endpoint failed its health checks; out of rotation: {why}");
    }
}

/// Whether the server at `addr` answers an HTTP/1 request in HTTP/1 (an
/// HTTP/1-only server behind `protocol: h2c`: such servers answer the
/// HTTP/2 preface with an error or nothing), asked once when an h2c
/// endpoint goes out of rotation. An HTTP/2-only server answers no
/// `HTTP/1.` status line.
async fn answers_http1(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = b"OPTIONS * HTTP/1.1\r\nHost: health\r\nConnection: close\r\n\r\n";
        stream.write_all(request).await.ok()?;
        let mut answer = [0u8; 7];
        stream.read_exact(&mut answer).await.ok()?;
        Some(&answer == b"HTTP/1.")
    };
    let limit = std::time::Duration::from_secs(1);
    matches!(tokio::time::timeout(limit, probe).await, Ok(Some(true)))
}
