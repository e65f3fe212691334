//! Notifications from real runs to local webhook receivers: one that
//! records, one that is down and one that is slow; neither of the last two
//! may fail or hold up the cutover.

use bytes::Bytes;
use e2e::{pinned_config, test_plan, Admin, Backend, Cutover, Gateway, Load};
use http_body_util::Full;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a receiver got: (path, Authorization, body).
type Received = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

/// A webhook receiver that answers after `delay`.
async fn receiver(delay: Duration) -> (SocketAddr, Received) {
    let got = Received::default();
    let log = got.clone();
    let addr = e2e::http_server(move |req: http::Request<Bytes>| {
        let log = log.clone();
        async move {
            let auth = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            tokio::time::sleep(delay).await;
            let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
            log.lock()
                .unwrap()
                .push((req.uri().path().to_owned(), auth, body));
            http::Response::new(Full::new(Bytes::from("ok")))
        }
    })
    .await;
    (addr, got)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_is_told_to_every_receiver_and_a_dead_or_slow_one_costs_nothing() {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let config = pinned_config(&[&blue], &[&green], "");
    let gw = Gateway::start(&config);
    let admin = Admin::new(&gw);
    let dir = tempfile::tempdir().unwrap();
    let cutover = Cutover::new(dir.path());

    let (json_at, json_got) = receiver(Duration::ZERO).await;
    let (slack_at, slack_got) = receiver(Duration::ZERO).await;
    let (grafana_at, grafana_got) = receiver(Duration::ZERO).await;
    let (slow_at, _) = receiver(Duration::from_secs(20)).await;
    let dead = format!("127.0.0.1:{}", e2e::free_port());
    std::fs::write(
        dir.path().join("slack-url"),
        format!("http://{slack_at}/hooks/T0/B0/secret\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("grafana-token"), "glsa_test\n").unwrap();
    let notify = format!(
        r#"notify:
  - {{url: "http://{json_at}/cutover"}}
  - {{url_file: "{slack}", format: slack, events: [started, completed]}}
  - {{url: "http://{grafana_at}/api/annotations", format: grafana_annotation, token_file: "{token}"}}
  - {{url: "http://{dead}/down"}}
  - {{url: "http://{slow_at}/slow"}}
"#,
        slack = dir.path().join("slack-url").display(),
        token = dir.path().join("grafana-token").display(),
    );
    let plan = dir.path().join("plan.yaml");
    let steps = "[{green_percent: 50, hold: 1s}, {green_percent: 100, hold: 1s}]";
    std::fs::write(
        &plan,
        test_plan(&[gw.admin_url("")], gw.proxy, steps, "") + &notify,
    )
    .unwrap();

    let load = Load::start(gw.url("/"), 4, Duration::from_millis(10));
    let started = Instant::now();
    let (code, _, stderr) = cutover.output(&["run", plan.to_str().unwrap()]).await;
    let took = started.elapsed();
    let (_, failed) = load.stop().await;
    assert_eq!(failed, 0);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(admin.state().await["routes"]["web"]["green_percent"], 100.0);
    // Two 1 s holds, checks and convergence, and at most the 5 s the end of
    // a run waits for the slow receiver: never its 20 s per message.
    assert!(took < Duration::from_secs(20), "the run took {took:?}");

    let events = |got: &Received| -> Vec<String> {
        got.lock()
            .unwrap()
            .iter()
            .map(|(_, _, b)| {
                b["event"]
                    .as_str()
                    .or(b["tags"][1].as_str())
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(
        events(&json_got),
        ["started", "step_passed", "step_passed", "completed"]
    );
    let first = &json_got.lock().unwrap()[0];
    assert_eq!(first.0, "/cutover");
    assert!(
        first.2["text"]
            .as_str()
            .unwrap()
            .starts_with("cutover: cutover started"),
        "{:?}",
        first.2
    );
    assert_eq!(first.2["record"]["event"], "started");

    let slack = slack_got.lock().unwrap().clone();
    assert_eq!(slack.len(), 2, "{slack:?}");
    assert_eq!(slack[0].0, "/hooks/T0/B0/secret");
    assert_eq!(
        slack[1].2,
        serde_json::json!({"text": "cutover: completed at green 100%"})
    );

    let grafana = grafana_got.lock().unwrap().clone();
    assert_eq!(grafana.len(), 4);
    assert!(grafana
        .iter()
        .all(|(_, auth, _)| auth.as_deref() == Some("Bearer glsa_test")));
    assert!(grafana[0].2["time"].as_u64().unwrap() > 1_700_000_000_000);

    // The receivers' trouble is in the log, never their secret URL.
    assert!(!stderr.contains("secret"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_that_is_not_http_is_refused_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    let cutover = Cutover::new(dir.path());
    let plan = dir.path().join("plan.yaml");
    let proxy: SocketAddr = "127.0.0.1:9".parse().unwrap();
    std::fs::write(
        &plan,
        test_plan(&["http://127.0.0.1:9".into()], proxy, "[{green_percent: 100}]", "")
            + "notify:\n  - {url: \"ftp://chat.example/hook\"}\n  - {url_env: CUTOVER_TEST_NO_SUCH_VAR, events: [finished]}\n",
    )
    .unwrap();
    let (code, _, stderr) = cutover.output(&["run", plan.to_str().unwrap()]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("notify[0].url: must be an http:// or https:// URL"),
        "{stderr}"
    );
    assert!(
        !cutover.journal().exists(),
        "a refused plan wrote a journal"
    );
}
