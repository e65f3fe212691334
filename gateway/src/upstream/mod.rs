//! One colour's upstream endpoints: round robin over the healthy ones,
//! pingora's active HTTP health check, how to reach an endpoint (plain or
//! TLS with SNI and a CA bundle), and the endpoint list following what the
//! configured names resolve to (`resolve`).

mod admission;
mod checks;
mod grpc_health;
pub use admission::Admission;

use crate::config::{DnsConfig, GroupConfig, HealthCheckConfig, TimeoutConfig, UpstreamProtocol};
use crate::metrics::Metrics;
use crate::resolve::{NameDiscovery, Names};
use crate::split::Color;
use arc_swap::ArcSwap;
use futures::FutureExt;
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend, Backends, LoadBalancer};
use pingora::prelude::HttpPeer;
use pingora::protocols::ALPN;
use pingora::tls::x509::X509;
use pingora::upstreams::peer::Peer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What an upstream group is built from; two groups built from equal specs
/// are interchangeable, which lets a config reload keep health state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupSpec {
    pub route: String,
    pub color: Color,
    pub group: GroupConfig,
    pub health: HealthCheckConfig,
    pub timeouts: TimeoutConfig,
    pub dns: DnsConfig,
}

pub(crate) type Ca = Option<Arc<Box<[X509]>>>;

pub struct UpstreamGroup {
    spec: GroupSpec,
    /// Holds pingora's health state of the endpoints (and runs the checks).
    lb: LoadBalancer<RoundRobin>,
    /// The configured endpoints and what they resolve to.
    names: Arc<Names>,
    /// One per resolved address; replaced whole when names resolve anew.
    endpoints: Arc<ArcSwap<Vec<Arc<Endpoint>>>>,
    ca: Ca,
    metrics: Arc<Metrics>,
    /// Round-robin position.
    next: AtomicUsize,
    /// Milliseconds since `epoch` when the next health check is due.
    next_check_ms: AtomicU64,
    /// Milliseconds since `epoch` when names are resolved again.
    next_resolve_ms: AtomicU64,
    epoch: Instant,
    in_flight: AtomicUsize, // requests sent, not answered yet (admission.rs)
}

/// One endpoint, with what the request path needs prepared once.
pub struct Endpoint {
    pub addr: SocketAddr,
    /// As configured (`host:port`), with the address a name resolved to:
    /// the name in metrics and `/v1/state`.
    pub(crate) name: String,
    /// In rotation: pingora's health of this endpoint as its checks last
    /// reported a change (asking pingora would hash the backend each time).
    healthy: AtomicBool,
    /// How the proxy reaches it.
    pub peer: HttpPeer,
    /// Which idle connections can serve it: pingora's reuse hash of `peer`
    /// (address, TLS settings), computed once.
    pub pool_key: u64,
}

impl UpstreamGroup {
    pub fn build(spec: GroupSpec, metrics: Arc<Metrics>) -> Result<UpstreamGroup, String> {
        let names = Arc::new(Names::resolve_first(
            &spec.group.endpoints,
            spec.dns.resolver(),
        ));
        let ca = match spec.group.tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read CA bundle {}: {e}", path.display()))?;
                let certs = X509::stack_from_pem(&pem)
                    .map_err(|e| format!("CA bundle {} is not PEM: {e}", path.display()))?;
                Some(Arc::new(certs.into_boxed_slice()))
            }
            None => None,
        };
        let discovery = NameDiscovery {
            names: names.clone(),
        };
        let mut lb = LoadBalancer::<RoundRobin>::from_backends(Backends::new(Box::new(discovery)));
        lb.update()
            .now_or_never()
            .expect("discovery answers from memory")
            .map_err(|e| format!("cannot build the load balancer: {e}"))?;
        let endpoints = Arc::new(ArcSwap::from_pointee(Vec::new()));
        lb.set_health_check(checks::health_check(
            &spec,
            endpoints.clone(),
            &ca,
            metrics.clone(),
        ));
        let group = UpstreamGroup {
            spec,
            lb,
            names,
            endpoints,
            ca,
            metrics,
            next: AtomicUsize::new(0),
            next_check_ms: AtomicU64::new(0),
            next_resolve_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
        };
        group.sync_endpoints();
        for (endpoint, state) in group.names.failing() {
            group.report_resolution(&endpoint, &state);
        }
        group.next_resolve_ms.store(
            group.spec.dns.resolve_interval.as_millis() as u64,
            Ordering::Relaxed,
        );
        Ok(group)
    }

    /// Makes the endpoint list match pingora's backends: addresses that
    /// stay keep their endpoint, new ones are prepared, vanished ones leave
    /// (requests already on them finish: they hold their own `Arc`).
    fn sync_endpoints(&self) {
        let current = self.endpoints.load_full();
        let names = self.names.addresses();
        let tls = self.spec.group.tls.as_ref();
        let labels = |name: &str| {
            [
                self.spec.route.clone(),
                self.spec.color.as_str().to_owned(),
                name.to_owned(),
            ]
        };
        let mut next = Vec::with_capacity(names.len());
        for backend in self.lb.backends().get_backend().iter() {
            let addr = inet(backend);
            if let Some(kept) = current.iter().find(|e| e.addr == addr) {
                next.push(kept.clone());
                continue;
            }
            let configured = names
                .iter()
                .find(|(a, _)| *a == addr)
                .map_or_else(|| addr.to_string(), |(_, n)| n.clone());
            let name = if configured == addr.to_string() {
                configured
            } else {
                format!("{configured} ({addr})")
            };
            let sni = tls.map(|t| t.sni.clone()).unwrap_or_default();
            let mut peer = HttpPeer::new(addr, tls.is_some(), sni);
            apply_peer_options(&self.spec, &self.ca, &mut peer);
            self.metrics
                .backend_healthy
                .with_label_values(&labels(&name))
                .set(1);
            next.push(Arc::new(Endpoint {
                addr,
                name,
                healthy: AtomicBool::new(self.lb.backends().ready(backend)),
                pool_key: peer.reuse_hash(),
                peer,
            }));
        }
        for gone in current
            .iter()
            .filter(|e| !next.iter().any(|n| n.addr == e.addr))
        {
            let _ = self
                .metrics
                .backend_healthy
                .remove_label_values(&labels(&gone.name));
        }
        if !current.is_empty() {
            let names = |v: &[Arc<Endpoint>]| v.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
            tracing::info!(route = %self.spec.route, color = self.spec.color.as_str(),
                before = ?names(&current), after = ?names(&next), "endpoints follow their names");
        }
        self.endpoints.store(Arc::new(next));
    }

    pub fn spec(&self) -> &GroupSpec {
        &self.spec
    }

    /// Whether the endpoints speak HTTP/2 (only pingora-proxy's path does).
    pub fn speaks_h2(&self) -> bool {
        self.spec.group.protocol != UpstreamProtocol::Http1
    }

    /// A healthy endpoint not yet tried for this request, round robin (not
    /// pingora's `select_with`, which allocates a set on every call).
    pub fn pick(&self, tried: &[SocketAddr]) -> Option<Arc<Endpoint>> {
        let endpoints = self.endpoints.load();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = endpoints.len();
        (0..n)
            .map(|i| &endpoints[(start + i) % n])
            .find(|e| !tried.contains(&e.addr) && self.is_healthy(e))
            .cloned()
    }

    pub fn has_healthy_endpoint(&self) -> bool {
        self.endpoints.load().iter().any(|e| self.is_healthy(e))
    }

    /// Each endpoint's name and whether it is in rotation.
    pub fn endpoint_health(&self) -> Vec<(String, bool)> {
        self.endpoints
            .load()
            .iter()
            .map(|e| (e.name.clone(), self.is_healthy(e)))
            .collect()
    }

    /// Configured names that fail to resolve now: (endpoint, why, the last
    /// good addresses still in use).
    pub fn unresolved(&self) -> Vec<(String, String, Vec<SocketAddr>)> {
        self.names
            .failing()
            .into_iter()
            .map(|(e, s)| (e, s.failing.unwrap_or_default(), s.last_good))
            .collect()
    }

    fn is_healthy(&self, endpoint: &Endpoint) -> bool {
        endpoint.healthy.load(Ordering::Relaxed)
    }

    /// Runs one health-check pass if this group's interval has elapsed.
    pub async fn check_health_if_due(&self) {
        if !self.due(&self.next_check_ms, self.spec.health.interval) {
            return;
        }
        self.lb.backends().run_health_check(true).await;
    }

    /// Resolves the configured names again if `dns.resolve_interval` has
    /// elapsed (never for a group of IP addresses).
    pub async fn resolve_if_due(self: Arc<Self>) {
        if !self.names.any_name || !self.due(&self.next_resolve_ms, self.spec.dns.resolve_interval)
        {
            return;
        }
        // The system resolver blocks: off the async threads.
        let names = self.names.clone();
        let Ok(changed) = tokio::task::spawn_blocking(move || names.refresh()).await else {
            return;
        };
        for (endpoint, state) in changed {
            self.report_resolution(&endpoint, &state);
        }
        let before = self.lb.backends().get_backend();
        if self.lb.update().await.is_ok() && self.lb.backends().get_backend() != before {
            self.sync_endpoints();
        }
    }

    /// Logs a name's resolution turning (or starting) bad or good, and sets
    /// `gateway_endpoint_resolve_failing`.
    fn report_resolution(&self, endpoint: &str, state: &crate::resolve::NameState) {
        let labels = [&self.spec.route, self.spec.color.as_str(), endpoint];
        let failing = self
            .metrics
            .endpoint_resolve_failing
            .with_label_values(&labels);
        match &state.failing {
            Some(why) if state.last_good.is_empty() => {
                failing.set(1);
                tracing::warn!(route = %self.spec.route, color = self.spec.color.as_str(), %endpoint,
                    error = %why, "endpoint name does not resolve; it waits unresolved while the group's other endpoints serve");
            }
            Some(why) => {
                failing.set(1);
                tracing::warn!(route = %self.spec.route, color = self.spec.color.as_str(), %endpoint,
                    error = %why, last_good = ?state.last_good, "endpoint name no longer resolves; keeping its last good addresses");
            }
            None => {
                failing.set(0);
                tracing::info!(route = %self.spec.route, color = self.spec.color.as_str(), %endpoint, "endpoint name resolves");
            }
        }
    }

    /// Whether the timer in `next_ms` has run out; if so it is set again.
    fn due(&self, next_ms: &AtomicU64, interval: Duration) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        if now < next_ms.load(Ordering::Relaxed) {
            return false;
        }
        next_ms.store(now + interval.as_millis() as u64, Ordering::Relaxed);
        true
    }
}

pub(crate) fn apply_peer_options(spec: &GroupSpec, ca: &Ca, peer: &mut HttpPeer) {
    let o = &mut peer.options;
    o.connection_timeout = Some(spec.timeouts.connect);
    o.read_timeout = Some(spec.timeouts.read);
    o.idle_timeout = Some(Duration::from_secs(60));
    if let Some(tls) = &spec.group.tls {
        o.verify_cert = tls.verify;
        o.verify_hostname = tls.verify;
        o.ca = ca.clone();
    }
    // HTTP/2 only: by ALPN over TLS, by prior knowledge in the clear.
    o.alpn = match spec.group.protocol {
        UpstreamProtocol::Http1 => ALPN::H1,
        UpstreamProtocol::H2 | UpstreamProtocol::H2c => ALPN::H2,
    };
}

pub(crate) fn inet(b: &Backend) -> SocketAddr {
    b.addr
        .as_inet()
        .copied()
        .expect("endpoints are always IP addresses")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(endpoints: &[&str]) -> UpstreamGroup {
        let spec = GroupSpec {
            route: "web".into(),
            color: Color::Blue,
            group: GroupConfig {
                endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
                tls: None,
                host_rewrite: None,
                protocol: Default::default(),
                max_in_flight: None,
            },
            health: HealthCheckConfig::default(),
            timeouts: TimeoutConfig::default(),
            dns: DnsConfig::default(),
        };
        UpstreamGroup::build(spec, Arc::new(Metrics::new())).expect("valid group")
    }

    fn port(endpoint: Option<Arc<Endpoint>>) -> Option<u16> {
        endpoint.map(|e| e.addr.port())
    }

    #[test]
    fn round_robin_over_endpoints_skipping_the_tried_ones() {
        let g = group(&["127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"]);
        let ports: Vec<_> = (0..6).map(|_| port(g.pick(&[])).unwrap()).collect();
        assert_eq!(ports, [1001, 1002, 1003, 1001, 1002, 1003]);

        let tried: Vec<SocketAddr> = vec!["127.0.0.1:1002".parse().unwrap()];
        for _ in 0..6 {
            assert_ne!(port(g.pick(&tried)), Some(1002));
        }
        let all: Vec<SocketAddr> = g.endpoints.load().iter().map(|e| e.addr).collect();
        assert_eq!(port(g.pick(&all)), None);
    }

    #[test]
    fn endpoints_out_of_rotation_are_never_picked() {
        let g = group(&["127.0.0.1:1001", "127.0.0.1:1002"]);
        let endpoints = g.endpoints.load_full();
        endpoints[0].healthy.store(false, Ordering::Relaxed);
        for _ in 0..4 {
            assert_eq!(port(g.pick(&[])), Some(1002));
        }
        endpoints[1].healthy.store(false, Ordering::Relaxed);
        assert_eq!(port(g.pick(&[])), None);
        assert!(!g.has_healthy_endpoint());
    }

    #[test]
    fn peers_are_prepared_with_the_configured_timeouts() {
        let g = group(&["127.0.0.1:1001"]);
        let peer = &g.pick(&[]).unwrap().peer;
        assert_eq!(
            peer.options.connection_timeout,
            Some(TimeoutConfig::default().connect)
        );
        assert_eq!(
            peer.options.read_timeout,
            Some(TimeoutConfig::default().read)
        );
        assert!(peer.sni.is_empty());
    }
}
