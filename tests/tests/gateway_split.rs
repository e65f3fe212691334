//! The split, stickiness and pinning, through the real gateway binary.

use e2e::{one_route_config, pinned_config, Admin, Backend, Gateway};
use futures_util::{stream, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const STICKY_HEADER: &str = "    stickiness: {header: x-client-id}";

/// The backend that served each request, one request per key, 32 at a time.
async fn colors(client: &reqwest::Client, url: &str, keys: &[String]) -> Vec<String> {
    stream::iter(keys.iter().cloned())
        .map(|key| {
            let req = client.get(url).header("x-client-id", key);
            async move {
                let resp = req.send().await.expect("request through the gateway");
                assert_eq!(resp.status(), 200);
                resp.headers()["x-backend"].to_str().unwrap().to_owned()
            }
        })
        .buffered(32)
        .collect()
        .await
}

fn green_share(colors: &[String]) -> f64 {
    100.0 * colors.iter().filter(|c| *c == "green").count() as f64 / colors.len() as f64
}

fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn split_accuracy_with_client_keys_and_with_issued_cookies() {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let gw = Gateway::start(&one_route_config(&[&blue], &[&green], STICKY_HEADER));
    let admin = Admin::new(&gw);
    let client = reqwest::Client::new();

    admin.set_split("web", 25.0).await;
    let share = green_share(&colors(&client, &gw.url("/"), &keys("acc", 20_000)).await);
    assert!(
        (share - 25.0).abs() <= 1.5,
        "green share {share} at split 25"
    );

    admin.set_split("web", 0.0).await;
    assert_eq!(
        green_share(&colors(&client, &gw.url("/"), &keys("zero", 2_000)).await),
        0.0
    );
    admin.set_split("web", 100.0).await;
    assert_eq!(
        green_share(&colors(&client, &gw.url("/"), &keys("all", 2_000)).await),
        100.0
    );

    // Clients that bring no key get a gateway-issued cookie; the split holds
    // for them too, and the cookie keeps each one on its colour.
    admin.set_split("web", 25.0).await;
    let results: Vec<(String, String)> = stream::iter(0..20_000)
        .map(|_| {
            let req = client.get(gw.url("/"));
            async move {
                let resp = req.send().await.unwrap();
                let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
                let color = resp.headers()["x-backend"].to_str().unwrap().to_owned();
                (cookie, color)
            }
        })
        .buffered(32)
        .collect()
        .await;
    let share = green_share(&results.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>());
    assert!(
        (share - 25.0).abs() <= 1.5,
        "green share {share} for cookie-less clients"
    );
    for (set_cookie, color) in results.iter().take(300) {
        assert!(set_cookie.starts_with("cutover_client="), "{set_cookie}");
        let pair = set_cookie.split(';').next().unwrap().to_owned();
        let again = client
            .get(gw.url("/"))
            .header("cookie", pair)
            .send()
            .await
            .unwrap();
        assert_eq!(again.headers()["x-backend"], color.as_str());
        assert!(
            again.headers().get("set-cookie").is_none(),
            "a known client gets no new cookie"
        );
    }
    // HTTP/2 clients (the lean HTTP/2 path) get and keep theirs the same way.
    let h2c = e2e::h2c_client();
    for _ in 0..20 {
        let resp = h2c.get(gw.url("/")).send().await.unwrap();
        let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(
            set_cookie.starts_with("cutover_client="),
            "h2c: {set_cookie}"
        );
        assert!(set_cookie.contains("HttpOnly"), "h2c: {set_cookie}");
        let color = resp.headers()["x-backend"].clone();
        let pair = set_cookie.split(';').next().unwrap().to_owned();
        let again = h2c
            .get(gw.url("/"))
            .header("cookie", pair)
            .send()
            .await
            .unwrap();
        assert_eq!(again.headers()["x-backend"], color, "h2c");
        assert!(again.headers().get("set-cookie").is_none(), "h2c");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stickiness_is_monotone_and_the_same_on_every_replica() {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let config = one_route_config(&[&blue], &[&green], STICKY_HEADER);
    let gw = Gateway::start(&config);
    let admin = Admin::new(&gw);
    let client = reqwest::Client::new();
    let clients = keys("sticky", 1_000);

    let mut previous: Option<Vec<String>> = None;
    for step in [0.0, 5.0, 25.0, 50.0, 100.0] {
        admin.set_split("web", step).await;
        let first = colors(&client, &gw.url("/"), &clients).await;
        let second = colors(&client, &gw.url("/"), &clients).await;
        assert_eq!(first, second, "a client changed colour within step {step}");
        let share = green_share(&first);
        assert!(
            (share - step).abs() <= 4.0,
            "green share {share} at step {step}"
        );
        if let Some(prev) = &previous {
            for (i, (before, now)) in prev.iter().zip(&first).enumerate() {
                assert!(
                    !(before == "green" && now == "blue"),
                    "client {} moved green→blue at step {step}",
                    clients[i]
                );
            }
        }
        previous = Some(first);
    }
    assert!(previous.unwrap().iter().all(|c| c == "green"));

    // A second gateway process, and the same one restarted, put every key
    // in the same colour.
    let mut other = Gateway::start(&config);
    let other_admin = Admin::new(&other);
    admin.set_split("web", 50.0).await;
    other_admin.set_split("web", 50.0).await;
    let here = colors(&client, &gw.url("/"), &clients).await;
    let there = colors(&client, &other.url("/"), &clients).await;
    assert_eq!(here, there, "two replicas disagree on a client's colour");
    other.restart();
    other_admin.set_split("web", 50.0).await;
    let client = reqwest::Client::new();
    let restarted = colors(&client, &other.url("/"), &clients).await;
    assert_eq!(here, restarted, "a restarted replica moved a client");
}

#[tokio::test(flavor = "multi_thread")]
async fn pin_header_wins_over_the_split_and_never_reaches_upstream() {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let gw = Gateway::start(&pinned_config(&[&blue], &[&green], ""));
    let admin = Admin::new(&gw);
    let h1 = reqwest::Client::new();
    // HTTP/2 streams take the lean HTTP/2 path: the same rules.
    let h2c = e2e::h2c_client();

    for (split, pin) in [(0.0, "green"), (100.0, "blue")] {
        admin.set_split("web", split).await;
        for (client, name) in [(&h1, "HTTP/1"), (&h2c, "h2c")] {
            for _ in 0..10 {
                let resp = client
                    .get(gw.url("/echo"))
                    .header("x-cutover-color", pin)
                    .header("x-forwarded-for", "203.0.113.7")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.headers()["x-cutover-served-by"], pin, "{name}");
                let echo: serde_json::Value = resp.json().await.unwrap();
                assert_eq!(echo["backend"], pin, "{name}: split {split}, pinned {pin}");
                let headers = &echo["headers"];
                assert!(
                    headers.get("x-cutover-color").is_none(),
                    "{name}: pin header leaked upstream"
                );
                // The peer is no trusted proxy: its claim is replaced.
                assert_eq!(headers["x-forwarded-for"], "127.0.0.1", "{name}");
                assert_eq!(headers["x-forwarded-proto"], "http", "{name}");
                assert_eq!(
                    headers["x-request-id"].as_str().unwrap().len(),
                    32,
                    "{name}"
                );
            }
        }
    }
    let metrics = admin.metrics().await;
    assert!(
        metrics.contains(
            r#"gateway_requests_total{code="200",color="green",grpc_status="",pinned="true",route="web"} 20"#
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pin_from_an_untrusted_source_is_ignored_unless_it_has_the_secret() {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pin-secret"), "s3cret\n").unwrap();
    let config = one_route_config(&[&blue], &[&green], "").replace(
        "routes:",
        "pin: {trusted_sources: [\"10.0.0.0/8\"], secret_file: \"{dir}/pin-secret\"}\nroutes:",
    );
    let gw = Gateway::start_in(dir, &config);
    let client = reqwest::Client::new();

    let echo = |secret: Option<&'static str>| {
        let mut req = client
            .get(gw.url("/echo"))
            .header("x-cutover-color", "green");
        if let Some(s) = secret {
            req = req.header("x-cutover-pin-secret", s);
        }
        async move {
            req.send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    // Split is 0: only an honoured pin reaches green.
    for secret in [None, Some("wrong")] {
        let e = echo(secret).await;
        assert_eq!(
            e["backend"], "blue",
            "untrusted pin honoured with secret {secret:?}"
        );
        assert!(e["headers"].get("x-cutover-color").is_none());
        assert!(e["headers"].get("x-cutover-pin-secret").is_none());
    }
    let e = echo(Some("s3cret")).await;
    assert_eq!(e["backend"], "green", "pin with the right secret ignored");
    assert!(e["headers"].get("x-cutover-color").is_none());
    assert!(
        e["headers"].get("x-cutover-pin-secret").is_none(),
        "pin secret leaked upstream"
    );
    assert!(e["headers"]["x-forwarded-for"]
        .as_str()
        .unwrap()
        .contains("127.0.0.1"));
    assert_eq!(e["headers"]["x-forwarded-proto"], "http");
}

#[tokio::test(flavor = "multi_thread")]
async fn split_changes_under_load_fail_no_request() {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let gw = Gateway::start(&one_route_config(&[&blue], &[&green], STICKY_HEADER));
    let admin = Admin::new(&gw);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));

    let mut load = Vec::new();
    for worker in 0..16 {
        let (stop, ok, failed, url) = (stop.clone(), ok.clone(), failed.clone(), gw.url("/"));
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::new(); // one keep-alive connection per worker
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let res = client
                    .get(&url)
                    .header("x-client-id", format!("w{worker}-{i}"))
                    .send()
                    .await;
                let good = match res {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if good {
                    ok.fetch_add(1, Ordering::Relaxed)
                } else {
                    failed.fetch_add(1, Ordering::Relaxed)
                };
            }
        }));
    }

    let probe = reqwest::Client::new();
    let mut served: HashMap<String, u32> = HashMap::new();
    for change in 0..60 {
        let split = if change % 2 == 0 { 100.0 } else { 0.0 };
        admin.set_split("web", split).await;
        let expected = if split == 100.0 { "green" } else { "blue" };
        for probe_client in 0..5 {
            let resp = probe
                .get(gw.url("/"))
                .header("x-client-id", format!("probe-{change}-{probe_client}"))
                .send()
                .await
                .unwrap();
            let backend = resp.headers()["x-backend"].to_str().unwrap().to_owned();
            assert_eq!(
                backend, expected,
                "request after change {change} ignored the new split"
            );
            *served.entry(backend).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let state = admin.state().await;
    assert_eq!(state["generation"], 60);
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed while the split changed"
    );
    assert!(
        ok.load(Ordering::Relaxed) > 1_000,
        "too little load to mean anything"
    );
}
