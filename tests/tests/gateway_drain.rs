//! Draining a colour after a cutover: a WebSocket and a gRPC stream opened
//! while blue served are closed by `cutover drain --color blue`'s deadline,
//! the command reports blue empty (and journals it), no other request
//! fails, and a drain is refused while a route still sends the colour
//! traffic.

use e2e::{Admin, Backend, Cutover, Gateway, Load, TOKEN};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tonic::transport::{Channel, Server};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::ServingStatus;

/// A gRPC health server whose service `watched` changes status every
/// 200 ms, so a Watch stream carries a message that often.
async fn grpc_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (health, service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    tokio::spawn(async move {
        for i in 0.. {
            let status = if i % 2 == 0 {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            health.set_service_status("watched", status).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .unwrap()
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_closes_what_blue_still_holds_by_the_deadline() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let (blue_grpc, green_grpc) = (grpc_backend().await, grpc_backend().await);
    let config = format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
routes:
  - name: grpc
    path_prefix: /grpc.
    blue: {{endpoints: ["{blue_grpc}"], protocol: h2c}}
    green: {{endpoints: ["{green_grpc}"], protocol: h2c}}
    health_check: {{protocol: grpc, interval: 200ms, timeout: 500ms, healthy_threshold: 1, unhealthy_threshold: 2}}
  - name: web
    blue: {{endpoints: ["{}"]}}
    green: {{endpoints: ["{}"]}}
"#,
        blue.addr, green.addr
    );
    let gw = Gateway::start(&config);
    let admin = Admin::new(&gw);
    let dir = tempfile::tempdir().unwrap();
    let cutover = Cutover::new(dir.path());
    let admin_url = gw.admin_url("");
    let drain = |color: &'static str| {
        let admin_url = admin_url.clone();
        let cutover = &cutover;
        async move {
            cutover
                .output(&[
                    "drain",
                    "--color",
                    color,
                    "--deadline",
                    "3s",
                    "--gateway",
                    &admin_url,
                ])
                .await
        }
    };

    // While blue serves, its drain is refused and nothing changes.
    let (code, _, stderr) = drain("blue").await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("web sends 100% to blue"), "{stderr}");
    assert_eq!(admin.state().await["colors"]["blue"]["draining"], false);

    // At split 0: a WebSocket and a gRPC stream to blue.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", gw.proxy))
        .await
        .unwrap();
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    let channel = Channel::from_shared(format!("http://{}", gw.proxy))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: "watched".into(),
        })
        .await
        .unwrap()
        .into_inner();
    watch.message().await.unwrap().expect("a first status");
    let state = admin.state().await;
    assert_eq!(state["colors"]["blue"]["in_flight"], 2, "{state:#}");

    // The cutover's last step: every route to green. Clients keep asking.
    let load = Load::start(gw.url("/echo"), 2, Duration::from_millis(10));
    let resp = admin
        .put(
            "/v1/splits",
            Some(TOKEN),
            serde_json::json!({"routes": {"web": 100, "grpc": 100}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // Green still has traffic: its drain is refused.
    let (code, _, stderr) = drain("green").await;
    assert_eq!(code, 3, "{stderr}");

    // The tunnels opened before still flow until the drain's deadline.
    let started = Instant::now();
    let draining = tokio::spawn({
        let cutover = Cutover::new(dir.path());
        let admin_url = admin_url.clone();
        async move {
            cutover
                .output(&[
                    "drain",
                    "--color",
                    "blue",
                    "--deadline",
                    "3s",
                    "--gateway",
                    &admin_url,
                    "--reason",
                    "blue goes",
                ])
                .await
        }
    });
    ws.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("still here")
    );
    // The WebSocket hears "going away" (1001) at the deadline.
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("the WebSocket ended without a close frame: {other:?}"),
        }
    };
    let closed_after = started.elapsed();
    assert_eq!(u16::from(close.unwrap().code), 1001);
    assert!(
        closed_after >= Duration::from_millis(2500),
        "{closed_after:?}"
    );
    // The gRPC stream is cut by then too.
    let cut = loop {
        match tokio::time::timeout(Duration::from_secs(10), watch.message()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => break "ended".to_string(),
            Ok(Err(status)) => break format!("{status:?}"),
            Err(_) => panic!("the gRPC stream was not cut"),
        }
    };
    println!(
        "WebSocket closed after {closed_after:?}; gRPC stream: {cut}, after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(6));

    let (code, stdout, stderr) = draining.await.unwrap();
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("blue is empty on all 1 replica(s)"),
        "{stdout}"
    );
    let (ok, failed) = load.stop().await;
    assert_eq!(failed, 0, "a client request failed during the drain");
    assert!(ok > 50);
    let records = cutover.records();
    let drained = records
        .iter()
        .find(|r| r["event"] == "drained")
        .expect("journaled");
    assert_eq!(drained["color"], "blue");
    assert_eq!(drained["left"], serde_json::json!([]));
    assert_eq!(drained["reason"], "blue goes");
    // Blue gets traffic again: its drain ends.
    admin.set_split("web", 50.0).await;
    assert_eq!(admin.state().await["colors"]["blue"]["draining"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plans_drain_ends_blue_after_the_run_completes() {
    let t = e2e::Topology::start("");
    // A WebSocket to blue, opened before the run.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", t.gw.proxy))
        .await
        .unwrap();
    ws.send(Message::text("before")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("before"));
    let plan = t.plan(
        "[{green_percent: 50, hold: 1s}, {green_percent: 100, hold: 1s}]",
        ", min_requests: 1",
    );
    let text = std::fs::read_to_string(&plan).unwrap() + "drain: {deadline: 2s}\n";
    std::fs::write(&plan, text).unwrap();
    let load = t.load();
    let (code, stdout, stderr) = t.cutover.output(&["run", &plan]).await;
    load.stop().await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("blue is empty on all 1 replica(s)"),
        "{stderr}"
    );
    // The WebSocket was told blue goes away.
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(u16::from(closed.unwrap().code), 1001);
    let records = t.cutover.records();
    let last = records.last().unwrap();
    assert_eq!(last["event"], "drained", "{last:#}");
    assert_eq!(last["left"], serde_json::json!([]));
    // The run completed; status agrees (exit 0).
    let (code, _, _) = t.cutover.output(&["status"]).await;
    assert_eq!(code, 0);

    // A plan that does not end at 100% green cannot drain.
    let bad = std::fs::read_to_string(&plan).unwrap().replace(
        "{green_percent: 100, hold: 1s}",
        "{green_percent: 60, hold: 1s}",
    );
    std::fs::write(&plan, bad).unwrap();
    let (code, _, stderr) = t.cutover.output(&["plan", "check", &plan]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("drain: blue is drained after a run that ends at green_percent 100"),
        "{stderr}"
    );
}
