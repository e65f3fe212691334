//! Mirroring at the gateway: copies of blue's requests go to green, which
//! answers one path with a different body, another with 500, and a third
//! 2 s late; the client only ever gets blue's answers, and the comparison
//! is counted (metrics, `/v1/state`, samples without secrets).

use e2e::{http_server, metric_value, Admin, Gateway};
use http_body_util::Full;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What green was sent: (method, path, mirror header, headers as text).
type Seen = Arc<Mutex<Vec<(String, String, bool, String)>>>;

async fn blue() -> SocketAddr {
    http_server(|req: http::Request<bytes::Bytes>| async move {
        let body = match req.uri().path() {
            "/json" => r#"{"v": 1, "time": "10:00"}"#.to_owned(),
            path => format!("answer for {path}"),
        };
        http::Response::builder()
            .header("content-type", "text/plain")
            .body(Full::new(body.into()))
            .unwrap()
    })
    .await
}

async fn green(seen: Seen) -> SocketAddr {
    http_server(move |req: http::Request<bytes::Bytes>| {
        let seen = seen.clone();
        async move {
            let path = req.uri().path().to_owned();
            if path != "/healthz" {
                let mirrored = req.headers().contains_key("x-gateway-mirror");
                let headers = format!("{:?}", req.headers());
                seen.lock().unwrap().push((
                    req.method().to_string(),
                    path.clone(),
                    mirrored,
                    headers,
                ));
            }
            let (status, body) = match path.as_str() {
                "/differs" => (200, "another answer".to_owned()),
                "/fails" => (500, "boom".to_owned()),
                "/json" => (200, r#"{"time": "10:07", "v": 1}"#.to_owned()),
                "/slow" => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    (200, "answer for /slow".to_owned())
                }
                other => (200, format!("answer for {other}")),
            };
            http::Response::builder()
                .status(status)
                .header("content-type", "text/plain")
                .body(Full::new(body.into()))
                .unwrap()
        }
    })
    .await
}

fn config(blue: SocketAddr, green: SocketAddr, mirror: &str) -> String {
    format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
pin: {{trusted_sources: ["127.0.0.0/8"]}}
routes:
  - name: web
    blue: {{endpoints: ["{blue}"]}}
    green: {{endpoints: ["{green}"]}}
    health_check: {{path: /healthz, interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 2}}
    mirror: {mirror}
  - name: plain
    path_prefix: /plain
    blue: {{endpoints: ["{blue}"]}}
    green: {{endpoints: ["{green}"]}}
"#
    )
}

async fn mirror_counts(admin: &Admin) -> Value {
    admin.state().await["routes"]["web"]["mirror"]["counts"].clone()
}

/// Waits until every copy in flight was compared (the counts stop moving
/// at `total`).
async fn settled(admin: &Admin, total: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counts = mirror_counts(admin).await;
        let sum: u64 = counts
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        if sum >= total || Instant::now() > deadline {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn green_differences_and_errors_are_counted_and_clients_get_only_blue() {
    let seen: Seen = Arc::default();
    let (blue, green) = (blue().await, green(seen.clone()).await);
    let mirror = "{percent: 0, max_in_flight: 8, compare: {body: exact}}";
    let gw = Gateway::start(&config(blue, green, mirror));
    let admin = Admin::new(&gw);
    // Mirroring is set like the split: through the admin API, with the
    // token, as a new generation; the split stays at 0.
    let generation = admin.state().await["generation"].as_u64().unwrap();
    let r = admin
        .put(
            "/v1/splits",
            Some(e2e::TOKEN),
            json!({"mirrors": {"web": 50}, "reason": "mirror step"}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let state = admin.state().await;
    assert_eq!(state["generation"].as_u64().unwrap(), generation + 1);
    assert_eq!(state["routes"]["web"]["mirror_percent"], 50.0);
    assert_eq!(state["routes"]["web"]["green_percent"], 0.0);
    // Refused, changing nothing: a route without mirror:, a bad percent, no token.
    let r = admin
        .put(
            "/v1/splits",
            Some(e2e::TOKEN),
            json!({"mirrors": {"plain": 10}}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("mirrors: route")
            && text.contains("plain")
            && text.contains("has no mirror block"),
        "{text}"
    );
    assert_eq!(
        admin
            .put(
                "/v1/splits",
                Some(e2e::TOKEN),
                json!({"mirrors": {"web": 150}})
            )
            .await
            .status(),
        400
    );
    let anonymous = reqwest::Client::new()
        .put(gw.admin_url("/v1/splits"))
        .json(&json!({"mirrors": {"web": 100}}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        admin.state().await["generation"].as_u64().unwrap(),
        generation + 1
    );

    let client = reqwest::Client::new();
    let paths = ["/same", "/differs", "/fails"];
    for i in 0..600 {
        let path = paths[i % 3];
        let response = client
            .get(gw.url(path))
            .header("authorization", "Bearer secret-token-1")
            .header("cookie", "session=secret-cookie-2")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "the client got green's answer on {path}"
        );
        assert_eq!(response.text().await.unwrap(), format!("answer for {path}"));
    }
    // Pinned requests (smoke checks) are never copied.
    for _ in 0..50 {
        let r = client
            .get(gw.url("/pinned"))
            .header("x-cutover-color", "blue")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Writes are not copied unless listed.
    for _ in 0..50 {
        let r = client.post(gw.url("/same")).body("x").send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let copies = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n = seen.lock().unwrap().len() as u64;
            let counts = mirror_counts(&admin).await;
            let compared: u64 = ["match", "body_differs", "status_differs"]
                .iter()
                .map(|k| counts[k].as_u64().unwrap())
                .sum();
            if compared == n || Instant::now() > deadline {
                break n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let seen = seen.lock().unwrap().clone();
    assert!(
        (210..=390).contains(&copies),
        "about half of 600 GETs copied, got {copies}"
    );
    assert!(
        seen.iter()
            .all(|(m, _, mirrored, _)| m == "GET" && *mirrored),
        "only marked GET copies reach green (the split stays 0)"
    );
    let of = |path: &str| seen.iter().filter(|s| s.1 == path).count() as u64;
    assert_eq!(of("/pinned"), 0, "pinned requests are not copied");
    let counts = mirror_counts(&admin).await;
    assert_eq!(counts["match"].as_u64().unwrap(), of("/same"), "{counts}");
    assert_eq!(
        counts["body_differs"].as_u64().unwrap(),
        of("/differs"),
        "{counts}"
    );
    assert_eq!(
        counts["status_differs"].as_u64().unwrap(),
        of("/fails"),
        "{counts}"
    );
    let metrics = admin.metrics().await;
    let metric = |result: &str| {
        metric_value(
            &metrics,
            &format!("gateway_mirror_total{{result=\"{result}\",route=\"web\"}}"),
        )
        .unwrap_or(0.0) as u64
    };
    assert_eq!(metric("match"), of("/same"));
    assert_eq!(metric("status_differs"), of("/fails"));
    let green_errors = metric_value(
        &metrics,
        "gateway_mirror_errors_total{color=\"green\",route=\"web\"}",
    );
    assert_eq!(green_errors, Some(of("/fails") as f64));
    assert!(metrics.contains("gateway_mirror_duration_seconds_count{color=\"blue\",route=\"web\"}"));

    // Samples of the differences: method, path, statuses, the difference;
    // never the Authorization or Cookie values.
    let state = admin.state().await;
    let samples = state["routes"]["web"]["mirror"]["samples"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!samples.is_empty());
    let text = serde_json::to_string(&samples).unwrap();
    assert!(
        !text.contains("secret-token-1") && !text.contains("secret-cookie-2"),
        "{text}"
    );
    let fails = samples
        .iter()
        .find(|s| s["path"] == "/fails")
        .expect("a /fails sample");
    assert_eq!(
        (
            fails["blue_status"].as_u64(),
            fails["green_status"].as_u64()
        ),
        (Some(200), Some(500))
    );
    assert_eq!(fails["difference"], "status 200 (blue) vs 500 (green)");
    let differs = samples
        .iter()
        .find(|s| s["path"] == "/differs")
        .expect("a /differs sample");
    assert!(
        differs["difference"]
            .as_str()
            .unwrap()
            .starts_with("bodies differ at byte 2 (19 vs 14 bytes)"),
        "{differs}"
    );
    assert_eq!(differs["request_id"].as_str().map(str::len), Some(32));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_green_costs_clients_nothing_and_its_copies_are_dropped() {
    let seen: Seen = Arc::default();
    let (blue, green) = (blue().await, green(seen.clone()).await);
    let mirror = "{percent: 100, max_in_flight: 4, timeout: 5s, compare: {body: json, ignore_fields: [time]}}";
    let gw = Gateway::start(&config(blue, green, mirror));
    let admin = Admin::new(&gw);
    let client = reqwest::Client::new();
    // Client latency of 200 requests with mirroring off, then on.
    let mut p99 = Vec::new();
    for percent in [0.0, 100.0] {
        let body = json!({"mirrors": {"web": percent}});
        assert_eq!(
            admin
                .put("/v1/splits", Some(e2e::TOKEN), body)
                .await
                .status(),
            200
        );
        let mut took = Vec::new();
        for _ in 0..200 {
            let started = Instant::now();
            let r = client.get(gw.url("/slow")).send().await.unwrap();
            assert_eq!(r.text().await.unwrap(), "answer for /slow");
            took.push(started.elapsed());
        }
        took.sort();
        println!(
            "mirror {percent}% with green 2 s slow: client p50 {:?}, p99 {:?}, max {:?}",
            took[99], took[197], took[199]
        );
        assert!(
            took[199] < Duration::from_millis(500),
            "a client waited for green: {:?}",
            took[199]
        );
        p99.push(took[197]);
    }
    println!(
        "p99 added by mirroring: {:?}",
        p99[1].saturating_sub(p99[0])
    );
    let counts = settled(&admin, 200).await;
    assert!(
        counts["dropped"].as_u64().unwrap() >= 150,
        "slots full, copies dropped: {counts}"
    );
    // JSON with an ignored field compares equal; over HTTP/2 (pingora's
    // path) as over HTTP/1.
    let h2 = e2e::h2c_client();
    tokio::time::sleep(Duration::from_millis(2500)).await; // the slow copies end
    let before = mirror_counts(&admin).await["match"].as_u64().unwrap();
    for c in [&client, &h2] {
        let r = c.get(gw.url("/json")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("10:00"), "blue's answer");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while mirror_counts(&admin).await["match"].as_u64().unwrap() < before + 2 {
        assert!(Instant::now() < deadline, "{}", mirror_counts(&admin).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
