//! gRPC through the gateway: real tonic servers behind each colour (h2c),
//! a real tonic client in front (HTTP/2 with prior knowledge): the split,
//! trailers intact, grpc-status ≠ 0 counted as an error, gRPC health
//! checks and failover; and an h2c upstream that answers HTTP/1.

use e2e::{Admin, Backend, Gateway};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Server};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// A gRPC server (the standard health service) that names itself in an
/// `x-backend` response header.
struct GrpcBackend {
    addr: SocketAddr,
    health: HealthReporter,
    _server: tokio::task::JoinHandle<()>,
}

async fn grpc_backend(name: &'static str) -> GrpcBackend {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (health, service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    health
        .set_service_status("shop", ServingStatus::Serving)
        .await;
    let named = tower::util::MapResponseLayer::new(move |mut r: http::Response<_>| {
        r.headers_mut()
            .insert("x-backend", http::HeaderValue::from_static(name));
        r
    });
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let server = tokio::spawn(async move {
        Server::builder()
            .layer(named)
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .unwrap()
    });
    GrpcBackend {
        addr,
        health,
        _server: server,
    }
}

fn grpc_config(blue: SocketAddr, green: SocketAddr, health: &str) -> String {
    format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
routes:
  - name: grpc
    initial_green_percent: 50
    blue: {{endpoints: ["{blue}"], protocol: h2c}}
    green: {{endpoints: ["{green}"], protocol: h2c}}
    health_check: {{{health}interval: 200ms, timeout: 500ms, healthy_threshold: 1, unhealthy_threshold: 2}}
"#
    )
}

async fn client(gw: &Gateway) -> HealthClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", gw.proxy))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

/// `n` checks of `service`: (backend that answered, or the error code).
async fn checks(client: &mut HealthClient<Channel>, service: &str, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        seen.push(match client.check(request).await {
            Ok(r) => {
                assert_eq!(r.get_ref().status, ServingStatus::Serving as i32);
                r.metadata()
                    .get("x-backend")
                    .map_or("?".into(), |v| v.to_str().unwrap().to_owned())
            }
            Err(status) => format!("{:?}", status.code()),
        });
    }
    seen
}

/// Waits (5 s at most) until `color` has no healthy endpoint.
async fn out_of_rotation(admin: &Admin, color: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while admin.state().await["routes"]["grpc"][color]["healthy"] != false {
        assert!(
            Instant::now() < deadline,
            "{color} never failed its health checks"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(seen: &[String], what: &str) -> usize {
    seen.iter().filter(|s| *s == what).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_is_split_counted_health_checked_and_failed_over() {
    let blue = grpc_backend("blue").await;
    let green = grpc_backend("green").await;
    let gw = Gateway::start(&grpc_config(blue.addr, green.addr, "protocol: grpc, "));
    let admin = Admin::new(&gw);
    let mut client = client(&gw).await;

    // Split 50/50; each answer came whole (message and trailers: tonic
    // refuses a response without grpc-status).
    let seen = checks(&mut client, "", 60).await;
    let (b, g) = (count(&seen, "blue"), count(&seen, "green"));
    assert_eq!(b + g, 60, "{seen:?}");
    assert!(b >= 15 && g >= 15, "blue {b}, green {g}");

    // A gRPC error (NOT_FOUND) passes through and is counted as one.
    let seen = checks(&mut client, "no-such-service", 10).await;
    assert_eq!(count(&seen, "NotFound"), 10, "{seen:?}");
    let metrics = admin.metrics().await;
    let errors: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("gateway_requests_total{") && l.contains("grpc_status=\"5\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(errors, 10.0, "{metrics}");

    // An HTTP/1 client on the gRPC route is carried to the HTTP/2
    // upstreams too (pingora-proxy translates): the gRPC server answers.
    let r = reqwest::Client::new()
        .get(gw.url("/grpc.health.v1.Health/Check"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("x-backend"), "{:?}", r.headers());

    // Green reports NOT_SERVING: the gRPC health check takes it out, and
    // its share fails over to blue.
    green
        .health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    out_of_rotation(&admin, "green").await;
    let seen = checks(&mut client, "shop", 30).await;
    assert_eq!(count(&seen, "blue"), 30, "{seen:?}");
    assert!(admin
        .metrics()
        .await
        .contains("gateway_failover_requests_total{from=\"green\",route=\"grpc\",to=\"blue\"}"));

    // Green serves again: it comes back.
    green
        .health
        .set_service_status("", ServingStatus::Serving)
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let seen = checks(&mut client, "", 40).await;
    assert!(count(&seen, "green") > 0, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_h2c_upstream_that_answers_http1_is_named_and_out_of_rotation() {
    let http1 = Backend::start("blue");
    let green = grpc_backend("green").await;
    let config = grpc_config(http1.addr, green.addr, "path: /healthz, ")
        .replace("initial_green_percent: 50", "initial_green_percent: 0");
    let gw = Gateway::start(&config);
    let admin = Admin::new(&gw);
    out_of_rotation(&admin, "blue").await;
    let log = gw.log_text();
    let name = http1.addr.to_string();
    assert!(
        log.lines().any(|l| l.contains(&name)
            && l.contains("it answers HTTP/1, not HTTP/2: blue.protocol is h2c")),
        "{log}"
    );
    // Its traffic goes to the colour that speaks HTTP/2.
    let mut client = client(&gw).await;
    let seen = checks(&mut client, "", 10).await;
    assert_eq!(count(&seen, "green"), 10, "{seen:?}");
}
