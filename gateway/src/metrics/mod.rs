//! Prometheus metrics the gateway exports on the admin listener's `/metrics`.
//!
//! `color` is always the colour that *served* a request. Requests forced by
//! the pin header carry `pinned="true"` so that cutover gates can leave smoke
//! traffic out of their figures.

mod tcp;

pub use tcp::TcpSeries;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub upstream_errors: IntCounterVec,
    pub split_green_percent: GaugeVec,
    pub state_generation: IntGauge,
    pub served_generation: IntGauge,
    pub state_store_stale: IntGauge,
    pub backend_healthy: IntGaugeVec,
    pub endpoint_resolve_failing: IntGaugeVec,
    pub failover_requests: IntCounterVec,
    pub tls_certificate_expiry: IntGaugeVec,
    pub tls_certificate_reloads: IntCounterVec,
    pub client_connections: IntGaugeVec,
    pub connections_refused: IntCounterVec,
    pub overload: IntCounterVec,
    pub in_flight: IntGaugeVec,
    pub mirror: IntCounterVec,
    pub mirror_duration: HistogramVec,
    pub mirror_errors: IntCounterVec,
    pub access_log_lines: prometheus::IntCounter,
    pub access_log_dropped: IntCounterVec,
    pub tcp_connections: IntCounterVec,
    pub tcp_bytes: IntCounterVec,
    pub tcp_connect_duration: HistogramVec,
    pub tcp_rejected: IntCounterVec,
}

/// Latency buckets (seconds) fine enough for a p99 gate in the 5 ms–10 s range.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0,
    3.0, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "gateway_requests_total",
                "Requests answered, by the colour that served them (grpc_status: a gRPC response's status, empty otherwise)",
            ),
            &["route", "color", "code", "grpc_status", "pinned"],
        )
        .unwrap();
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "gateway_request_duration_seconds",
                "Time from request to the end of the response",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["route", "color", "pinned"],
        )
        .unwrap();
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "gateway_upstream_errors_total",
                "Failures talking to an upstream",
            ),
            &["route", "color", "kind"],
        )
        .unwrap();
        let split_green_percent = GaugeVec::new(
            Opts::new(
                "gateway_split_green_percent",
                "Configured percent of traffic to green",
            ),
            &["route"],
        )
        .unwrap();
        let state_generation = IntGauge::new(
            "gateway_state_generation",
            "Generation of the newest split document this replica knows",
        )
        .unwrap();
        let served_generation = IntGauge::new(
            "gateway_served_generation",
            "Generation of the split document this replica routes by",
        )
        .unwrap();
        let state_store_stale = IntGauge::new(
            "gateway_state_store_stale",
            "1 while the state store cannot be reached and the last split is served",
        )
        .unwrap();
        let backend_healthy = IntGaugeVec::new(
            Opts::new(
                "gateway_backend_healthy",
                "1 if the endpoint passes its health checks",
            ),
            &["route", "color", "endpoint"],
        )
        .unwrap();
        let endpoint_resolve_failing = IntGaugeVec::new(
            Opts::new(
                "gateway_endpoint_resolve_failing",
                "1 while a configured endpoint name fails to resolve (its last good addresses stay in use)",
            ),
            &["route", "color", "endpoint"],
        )
        .unwrap();
        let failover_requests = IntCounterVec::new(
            Opts::new(
                "gateway_failover_requests_total",
                "Requests served by the other colour because theirs had no healthy endpoint",
            ),
            &["route", "from", "to"],
        )
        .unwrap();
        let tls_certificate_expiry = IntGaugeVec::new(
            Opts::new(
                "gateway_tls_certificate_expiry_timestamp_seconds",
                "When each certificate a TLS listener serves expires (Unix time)",
            ),
            &["listener", "cert_file"],
        )
        .unwrap();
        let tls_certificate_reloads = IntCounterVec::new(
            Opts::new(
                "gateway_tls_certificate_reloads_total",
                "Listener certificates re-read: result ok (now served) or refused (the previous ones stay)",
            ),
            &["listener", "result"],
        )
        .unwrap();
        let client_connections = IntGaugeVec::new(
            Opts::new(
                "gateway_client_connections",
                "Client connections open on each proxy listener",
            ),
            &["listener"],
        )
        .unwrap();
        let connections_refused = IntCounterVec::new(
            Opts::new(
                "gateway_connections_refused_total",
                "Client connections closed on accept because their listener was at max_connections",
            ),
            &["listener"],
        )
        .unwrap();
        let overload = IntCounterVec::new(
            Opts::new(
                "gateway_overload_total",
                "Requests answered 503 because their colour was at max_in_flight",
            ),
            &["route", "color"],
        )
        .unwrap();
        let in_flight = IntGaugeVec::new(
            Opts::new(
                "gateway_in_flight_requests",
                "Requests in flight to each route's colour, tunnels and streams included (read at scrape)",
            ),
            &["route", "color"],
        )
        .unwrap();
        let mirror = IntCounterVec::new(
            Opts::new(
                "gateway_mirror_total",
                "Copies of blue's requests sent to green, by how green's answer compared with blue's (match, status_differs, headers_differ, body_differs, error: green gave none; dropped: not sent or not compared)",
            ),
            &["route", "result"],
        )
        .unwrap();
        let mirror_duration = HistogramVec::new(
            HistogramOpts::new(
                "gateway_mirror_duration_seconds",
                "Time to the end of the answer, for mirrored requests only: blue's to the client, green's to the copy",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["route", "color"],
        )
        .unwrap();
        let mirror_errors = IntCounterVec::new(
            Opts::new(
                "gateway_mirror_errors_total",
                "Mirrored requests a colour answered with 5xx or not at all",
            ),
            &["route", "color"],
        )
        .unwrap();
        let access_log_lines = prometheus::IntCounter::new(
            "gateway_access_log_lines_total",
            "Access log lines written",
        )
        .unwrap();
        let access_log_dropped = IntCounterVec::new(
            Opts::new(
                "gateway_access_log_dropped_total",
                "Access log lines dropped: queue_full (the writer fell behind) or write_failed (the disk refused them)",
            ),
            &["reason"],
        )
        .unwrap();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).unwrap()
        };
        let tcp_connections = counter(
            "gateway_tcp_connections_total",
            "TCP route connections by how they went: ok, refused (no endpoint took it), reset (the upstream failed before sending a byte), no_endpoint (none healthy)",
            &["route", "color", "result"],
        );
        let tcp_bytes = counter(
            "gateway_tcp_bytes_total",
            "Bytes relayed on TCP routes: in (client to upstream) and out",
            &["route", "color", "direction"],
        );
        let tcp_connect_duration = HistogramVec::new(
            HistogramOpts::new(
                "gateway_tcp_connect_duration_seconds",
                "Time to connect to a TCP route's upstream",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["route", "color"],
        )
        .unwrap();
        let tcp_rejected = counter(
            "gateway_tcp_rejected_total",
            "Connections closed before routing on a TCP listener: no_sni, unknown_sni (no route and no default), bad_client_hello",
            &["listener", "reason"],
        );
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(tcp_connections.clone()),
            Box::new(tcp_bytes.clone()),
            Box::new(tcp_connect_duration.clone()),
            Box::new(tcp_rejected.clone()),
            Box::new(access_log_lines.clone()),
            Box::new(access_log_dropped.clone()),
            Box::new(mirror.clone()),
            Box::new(mirror_duration.clone()),
            Box::new(mirror_errors.clone()),
            Box::new(request_duration.clone()),
            Box::new(upstream_errors.clone()),
            Box::new(split_green_percent.clone()),
            Box::new(state_generation.clone()),
            Box::new(served_generation.clone()),
            Box::new(state_store_stale.clone()),
            Box::new(backend_healthy.clone()),
            Box::new(endpoint_resolve_failing.clone()),
            Box::new(failover_requests.clone()),
            Box::new(tls_certificate_expiry.clone()),
            Box::new(tls_certificate_reloads.clone()),
            Box::new(client_connections.clone()),
            Box::new(connections_refused.clone()),
            Box::new(overload.clone()),
            Box::new(in_flight.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            request_duration,
            upstream_errors,
            split_green_percent,
            state_generation,
            served_generation,
            state_store_stale,
            backend_healthy,
            endpoint_resolve_failing,
            failover_requests,
            tls_certificate_expiry,
            tls_certificate_reloads,
            client_connections,
            connections_refused,
            overload,
            in_flight,
            mirror,
            mirror_duration,
            mirror_errors,
            access_log_lines,
            access_log_dropped,
            tcp_connections,
            tcp_bytes,
            tcp_connect_duration,
            tcp_rejected,
        }
    }

    /// The text exposition format for a scrape.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// One route's request metrics with their label values resolved once, so
/// recording a request is a few atomic adds instead of label hashing.
pub struct RouteMetrics {
    route: String,
    requests: IntCounterVec,
    /// Refused at `max_in_flight`, per colour.
    overload: [prometheus::IntCounter; 2],
    /// 200s per [color][pinned], the common case.
    ok: [[prometheus::IntCounter; 2]; 2],
    duration: [[prometheus::Histogram; 2]; 2],
    /// A TCP route's own series.
    pub tcp: Option<TcpSeries>,
}

impl RouteMetrics {
    pub fn new(metrics: &Metrics, route: &str, tcp: bool) -> RouteMetrics {
        let colors = [crate::split::Color::Blue, crate::split::Color::Green];
        let pinned = ["false", "true"];
        RouteMetrics {
            route: route.to_owned(),
            requests: metrics.requests.clone(),
            overload: colors.map(|c| metrics.overload.with_label_values(&[route, c.as_str()])),
            ok: colors.map(|c| {
                pinned.map(|p| {
                    metrics
                        .requests
                        .with_label_values(&[route, c.as_str(), "200", "", p])
                })
            }),
            duration: colors.map(|c| {
                pinned.map(|p| {
                    metrics
                        .request_duration
                        .with_label_values(&[route, c.as_str(), p])
                })
            }),
            tcp: tcp.then(|| TcpSeries::new(metrics, route)),
        }
    }

    /// A request its colour refused at `max_in_flight`: counted as a 503
    /// of that colour (so the gates see green's own limit as green failing)
    /// and as overload.
    pub fn overloaded(&self, color: crate::split::Color, pinned: bool) {
        self.overload[color as usize].inc();
        self.record(
            color,
            pinned,
            http::StatusCode::SERVICE_UNAVAILABLE,
            None,
            0.0,
        );
    }

    /// One answered request; `grpc_status` is a gRPC response's status
    /// (from its trailers, or its headers when it has no body).
    pub fn record(
        &self,
        color: crate::split::Color,
        pinned: bool,
        status: http::StatusCode,
        grpc_status: Option<&str>,
        seconds: f64,
    ) {
        let (c, p) = (color as usize, usize::from(pinned));
        if status == http::StatusCode::OK && grpc_status.is_none() {
            self.ok[c][p].inc();
        } else {
            let pinned = if pinned { "true" } else { "false" };
            let grpc = grpc_status.unwrap_or_default();
            self.requests
                .with_label_values(&[&self.route, color.as_str(), status.as_str(), grpc, pinned])
                .inc();
        }
        self.duration[c][p].observe(seconds);
    }
}
