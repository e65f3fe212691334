//! The engine with several replicas (convergence), and with a real
//! Prometheus server as its gate source.

use bytes::Bytes;
use e2e::{pinned_config, test_plan, Admin, Backend, Cutover, Gateway, Load};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An admin API in front of a real one that, after every split write,
/// keeps reporting the old served generation for `lag`: a replica that is
/// slow (or, with a huge lag, unable) to converge.
async fn lagging_admin(real: SocketAddr, lag: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let frozen: Arc<Mutex<Option<(Instant, Value)>>> = Arc::default();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (client, frozen) = (client.clone(), frozen.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (client, frozen) = (client.clone(), frozen.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let url = format!("http://{real}{}", parts.uri.path());
                        let is_split_write =
                            parts.method == http::Method::PUT && parts.uri.path() == "/v1/splits";
                        if is_split_write {
                            let before: Value =
                                e2e::get_json(&client, &format!("http://{real}/v1/state")).await;
                            *frozen.lock().unwrap() =
                                Some((Instant::now() + lag, before["served_generation"].clone()));
                        }
                        let mut forward = client.request(parts.method.clone(), url).body(body);
                        for (k, v) in parts.headers.iter() {
                            if k != "host" && k != "content-length" {
                                forward = forward.header(k, v);
                            }
                        }
                        let resp = forward.send().await.unwrap();
                        let status = resp.status();
                        let mut bytes = resp.bytes().await.unwrap();
                        if parts.uri.path() == "/v1/state" {
                            if let Some((until, served)) = frozen.lock().unwrap().clone() {
                                if Instant::now() < until {
                                    let mut state: Value = serde_json::from_slice(&bytes).unwrap();
                                    state["served_generation"] = served;
                                    bytes = Bytes::from(state.to_string());
                                }
                            }
                        }
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .status(status)
                                .body(Full::new(bytes))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

fn gateway_config(blue: &Backend, green: &Backend) -> String {
    pinned_config(&[blue], &[green], "    stickiness: {header: x-client-id}")
}

fn time_of(record: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339(record["time"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_waits_for_every_replica_and_a_laggard_fails_it() {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let one = Gateway::start(&gateway_config(&blue, &green));
    let two = Gateway::start(&gateway_config(&blue, &green));
    let slow = lagging_admin(two.admin, Duration::from_millis(1500)).await;
    let dir = tempfile::tempdir().unwrap();
    let cutover = Cutover::new(dir.path());
    let plan = dir.path().join("plan.yaml");
    let urls = [one.admin_url(""), format!("http://{slow}")];
    std::fs::write(
        &plan,
        test_plan(
            &urls,
            one.proxy,
            "[{green_percent: 50, hold: 1s}, {green_percent: 100, hold: 1s}]",
            "",
        ),
    )
    .unwrap();
    let load = Load::start(one.url("/"), 2, Duration::from_millis(10));
    let load2 = Load::start(two.url("/"), 2, Duration::from_millis(10));
    let (code, _, stderr) = cutover.output(&["run", plan.to_str().unwrap()]).await;
    load.stop().await;
    load2.stop().await;
    assert_eq!(code, 0, "{stderr}");
    let records = cutover.records();
    for step in 0..2 {
        let applied = records
            .iter()
            .find(|r| r["event"] == "applied" && r["step"] == step)
            .unwrap();
        let converged = records
            .iter()
            .find(|r| r["event"] == "converged" && r["step"] == step)
            .unwrap();
        let waited = time_of(converged).duration_since(time_of(applied)).unwrap();
        assert!(
            waited >= Duration::from_millis(1400),
            "step {step} went on after {waited:?}, before the slow replica converged"
        );
    }
    for gw in [&one, &two] {
        let state = Admin::new(gw).state().await;
        assert_eq!(state["routes"]["web"]["green_percent"], 100.0);
    }

    // A replica that never converges fails the step, and is named.
    let stuck = lagging_admin(two.admin, Duration::from_secs(3600)).await;
    for gw in [&one, &two] {
        Admin::new(gw).set_split("web", 0.0).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let cutover = Cutover::new(dir.path());
    let plan = dir.path().join("plan.yaml");
    let urls = [one.admin_url(""), format!("http://{stuck}")];
    std::fs::write(
        &plan,
        test_plan(&urls, one.proxy, "[{green_percent: 50, hold: 1s}]", ""),
    )
    .unwrap();
    let (code, _, stderr) = cutover.output(&["run", plan.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{stderr}");
    let records = cutover.records();
    assert!(!records.iter().any(|r| r["event"] == "converged"));
    let rolled = records
        .iter()
        .find(|r| r["event"] == "rolled_back")
        .unwrap();
    let reason = rolled["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("gateway http://{stuck} did not converge")),
        "{reason}"
    );
    assert_eq!(
        Admin::new(&one).state().await["routes"]["web"]["green_percent"],
        0.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gates_from_a_real_prometheus_server() {
    let Ok(prometheus) = which("prometheus") else {
        println!(
            "SKIPPED: no prometheus binary (scripts/setup.sh installs Debian's prometheus package)"
        );
        return;
    };
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let gw = Gateway::start(&gateway_config(&blue, &green));
    let dir = tempfile::tempdir().unwrap();
    let port = e2e::free_port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 500ms, evaluation_interval: 500ms}}\nscrape_configs:\n  - job_name: gateway\n    static_configs: [{{targets: [\"{}\"]}}]\n",
            gw.admin
        ),
    )
    .unwrap();
    let mut server = e2e::Proc {
        child: std::process::Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    };
    let ready = format!("http://127.0.0.1:{port}/-/ready");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reqwest::get(&ready).await.is_ok_and(|r| r.status() == 200) {
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Wait until Prometheus holds the gateway's series.
    let query = format!("http://127.0.0.1:{port}/api/v1/query?query=gateway_backend_healthy");
    loop {
        let body: Value = reqwest::get(&query).await.unwrap().json().await.unwrap();
        if body["data"]["result"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never scraped the gateway: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let load = Load::start(gw.url("/"), 4, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_secs(2)).await; // a few scrapes of traffic
    let cutover = Cutover::new(dir.path());
    let plan = dir.path().join("plan.yaml");
    let source =
        format!(", window: 5s, source: prometheus, prometheus_url: \"http://127.0.0.1:{port}\"");
    std::fs::write(
        &plan,
        test_plan(
            &[gw.admin_url("")],
            gw.proxy,
            "[{green_percent: 50, hold: 2s}, {green_percent: 100, hold: 1s}]",
            &source,
        )
        .replace("window: 3s, ", ""),
    )
    .unwrap();
    let (code, _, stderr) = cutover.output(&["run", plan.to_str().unwrap()]).await;
    let (_, failed) = load.stop().await;
    assert_eq!(code, 0, "{stderr}\n{:#?}", cutover.records());
    assert_eq!(failed, 0);
    let records = cutover.records();
    let passed: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] == "step_passed")
        .collect();
    assert_eq!(passed.len(), 2);
    let figures = &passed[0]["figures"];
    assert!(
        figures["green"]["requests"].as_u64().unwrap() >= 5,
        "{figures}"
    );
    assert!(figures["green"]["p99_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(figures["green_healthy_endpoints"], 1);
    server.kill();
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.exists())
        })
        .ok_or(())
}
