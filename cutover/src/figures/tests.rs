//! Figures from scrapes: what counts, what is left out.

use super::*;

const SCRAPE: &str = r#"
# TYPE gateway_requests_total counter
gateway_requests_total{code="200",color="green",grpc_status="",pinned="false",route="web"} 80
gateway_requests_total{code="200",color="green",grpc_status="0",pinned="false",route="web"} 5
gateway_requests_total{code="200",color="green",grpc_status="14",pinned="false",route="web"} 5
gateway_requests_total{code="500",color="green",grpc_status="",pinned="false",route="web"} 10
gateway_requests_total{code="200",color="green",pinned="true",route="web"} 1000
gateway_requests_total{code="200",color="blue",pinned="false",route="other"} 5
# TYPE gateway_request_duration_seconds histogram
gateway_request_duration_seconds_bucket{color="green",pinned="false",route="web",le="0.01"} 50
gateway_request_duration_seconds_bucket{color="green",pinned="false",route="web",le="0.1"} 98
gateway_request_duration_seconds_bucket{color="green",pinned="false",route="web",le="1"} 100
gateway_request_duration_seconds_bucket{color="green",pinned="false",route="web",le="+Inf"} 100
gateway_request_duration_seconds_sum{color="green",pinned="false",route="web"} 3
gateway_request_duration_seconds_count{color="green",pinned="false",route="web"} 100
# TYPE gateway_backend_healthy gauge
gateway_backend_healthy{color="green",endpoint="a",route="web"} 1
gateway_backend_healthy{color="green",endpoint="b",route="web"} 0
"#;

#[test]
fn a_scrape_counts_5xx_and_grpc_errors_and_leaves_out_pinned_requests_and_other_routes() {
    let s = parse_scrape(SCRAPE, &["web".to_owned()]);
    assert_eq!(s.green.requests, 100.0);
    assert_eq!(
        s.green.errors, 15.0,
        "5xx and grpc-status 14, not grpc-status 0"
    );
    assert_eq!(s.blue.requests, 0.0);
    assert_eq!(s.green_healthy, 1);
    assert_eq!(s.green.buckets.len(), 4);
}

#[test]
fn p99_interpolates_like_histogram_quantile() {
    // 99th of 100 lies in (0.1, 1]: 98 below, 2 in the bucket → halfway.
    let b = [
        (0.01, 50.0),
        (0.1, 98.0),
        (1.0, 100.0),
        (f64::INFINITY, 100.0),
    ];
    let p = p99_from_buckets(&b).unwrap();
    assert!((p - 0.55).abs() < 1e-9, "{p}");
    assert_eq!(p99_from_buckets(&[(0.1, 0.0), (f64::INFINITY, 0.0)]), None);
    // Everything beyond the last finite bucket: its bound, not infinity.
    assert_eq!(
        p99_from_buckets(&[(0.1, 0.0), (f64::INFINITY, 10.0)]),
        Some(0.1)
    );
}

#[test]
fn a_restarted_replica_never_counts_negative_traffic() {
    let then = Counters {
        requests: 1000.0,
        errors: 10.0,
        buckets: BTreeMap::new(),
    };
    let now = Counters {
        requests: 40.0,
        errors: 1.0,
        buckets: BTreeMap::new(),
    };
    let d = delta(&now, &then);
    assert_eq!((d.requests, d.errors), (40.0, 1.0));
    let f = color_figures(&Counters::default(), 10.0);
    assert_eq!(f.success_rate, None);
    assert_eq!(f.p99_seconds, None);
}

#[test]
fn a_tcp_route_counts_connections_as_requests_and_failed_ones_as_errors() {
    let scrape = r#"
# TYPE gateway_tcp_connections_total counter
gateway_tcp_connections_total{color="green",result="ok",route="db"} 90
gateway_tcp_connections_total{color="green",result="reset",route="db"} 6
gateway_tcp_connections_total{color="green",result="refused",route="db"} 4
"#;
    let s = parse_scrape(scrape, &["db".to_owned()]);
    assert_eq!((s.green.requests, s.green.errors), (100.0, 10.0));
}
