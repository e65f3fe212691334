//! Replicated gateways sharing the split through a ConfigMap, against a
//! fake API server that speaks the real list/watch/replace protocol.

use e2e::fake_kube::FakeApiServer;
use e2e::{Admin, Backend, Gateway, TOKEN};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const NS: &str = "cutover";
const NAME: &str = "gateway-split";

fn document(generation: u64, web: f64) -> BTreeMap<String, String> {
    let doc = json!({"generation": generation, "routes": {"web": web}});
    BTreeMap::from([("split.json".to_owned(), doc.to_string())])
}

/// One route over `blue` and `green` (pins honoured from loopback), its
/// split in the fake's ConfigMap.
fn shared_config(
    fake: &FakeApiServer,
    dir: &std::path::Path,
    blue: &Backend,
    green: &Backend,
) -> String {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig()).unwrap();
    e2e::pinned_config(&[blue], &[green], "").replace(
        "routes:",
        &format!(
            "state: {{store: kubernetes, namespace: {NS}, name: {NAME}, kubeconfig: \"{}\"}}\nroutes:",
            kubeconfig.display()
        ),
    )
}

/// Polls until `check` holds for the state, or panics after 5 s.
async fn eventually(
    admin: &Admin,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = admin.state().await;
        if check(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "{what}: last state {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn backend_of(client: &reqwest::Client, gw: &Gateway) -> String {
    let resp = client.get(gw.url("/")).send().await.expect("traffic flows");
    assert_eq!(resp.status(), 200);
    resp.headers()["x-backend"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_follow_the_configmap_and_survive_an_api_server_outage() {
    let mut fake = FakeApiServer::start().await;
    fake.put_configmap(NS, NAME, document(3, 0.0));
    let shared = tempfile::tempdir().unwrap();
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let config = shared_config(&fake, shared.path(), &blue, &green);
    let one = Gateway::start(&config);
    let two = Gateway::start(&config);
    let (admin1, admin2) = (Admin::new(&one), Admin::new(&two));
    let client = reqwest::Client::new();

    // Initial load.
    for admin in [&admin1, &admin2] {
        let state = eventually(admin, "initial load", |s| s["generation"] == 3).await;
        assert_eq!(state["served_generation"], 3);
        assert_eq!(state["store"]["stale"], false);
    }
    assert_eq!(backend_of(&client, &one).await, "blue");

    // Another writer changes the ConfigMap: both replicas serve it.
    fake.put_configmap(NS, NAME, document(4, 100.0));
    for (admin, gw) in [(&admin1, &one), (&admin2, &two)] {
        eventually(admin, "watch event", |s| s["served_generation"] == 4).await;
        assert_eq!(backend_of(&client, gw).await, "green");
    }

    // A write through one replica reaches the other: they converge.
    let resp = admin1
        .put_split("web", json!({"green_percent": 0, "expected_generation": 4}))
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let stored = fake.configmap(NS, NAME).unwrap();
    assert!(stored["data"]["split.json"]
        .as_str()
        .unwrap()
        .contains("\"generation\": 5"));
    assert_eq!(
        stored["metadata"]["labels"]["app"], "gateway",
        "the write dropped the ConfigMap's labels"
    );
    for (admin, gw) in [(&admin1, &one), (&admin2, &two)] {
        eventually(admin, "convergence", |s| {
            s["generation"] == 5 && s["served_generation"] == 5
        })
        .await;
        assert_eq!(backend_of(&client, gw).await, "blue");
    }

    // A 409 from the API server is a 409 to the caller; nothing changes.
    fake.conflict_next_put();
    let before = admin2.state().await;
    let resp = admin2.put_split("web", json!({"green_percent": 50})).await;
    assert_eq!(resp.status(), 409);
    assert_eq!(admin2.state().await["generation"], before["generation"]);
    assert_eq!(admin2.state().await["routes"]["web"]["green_percent"], 0.0);

    // The API server goes away: traffic flows at the last split, the store
    // is reported stale, and the replica stays ready.
    fake.stop();
    for (admin, gw) in [(&admin1, &one), (&admin2, &two)] {
        let state = eventually(admin, "stale store", |s| s["store"]["stale"] == true).await;
        assert_eq!(state["routes"]["web"]["green_percent"], 0.0);
        assert!(admin
            .metrics()
            .await
            .contains("gateway_state_store_stale 1"));
        assert!(admin
            .metrics()
            .await
            .contains("gateway_served_generation 5"));
        let ready = client.get(gw.admin_url("/readyz")).send().await.unwrap();
        assert_eq!(
            ready.status(),
            200,
            "an API server outage made the replica unready"
        );
        for _ in 0..20 {
            assert_eq!(backend_of(&client, gw).await, "blue");
        }
    }
    let resp = admin1.put_split("web", json!({"green_percent": 50})).await;
    assert_eq!(resp.status(), 503, "a write with the store down must fail");
    assert_eq!(admin1.state().await["routes"]["web"]["green_percent"], 0.0);

    // It comes back: the replicas pick up where they were.
    fake.restart().await;
    fake.put_configmap(NS, NAME, document(6, 100.0));
    for admin in [&admin1, &admin2] {
        eventually(admin, "recovery", |s| {
            s["served_generation"] == 6 && s["store"]["stale"] == false
        })
        .await;
    }

    // The gateways never listed or watched without the name selector, and
    // the fake does refuse that, as RBAC limited to one ConfigMap would.
    assert_eq!(fake.refused_requests(), 0);
    let unscoped = client
        .get(format!(
            "http://{}/api/v1/namespaces/{NS}/configmaps?watch=true",
            fake.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unscoped.status(), 403);
}

/// A replica that starts while the API server is away does not know the
/// split: not ready, `loaded: false`, and it refuses writes (a document it
/// never saw must not overwrite the store) until it has read it.
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_has_not_read_the_store_refuses_writes() {
    let mut fake = FakeApiServer::start().await;
    fake.put_configmap(NS, NAME, document(7, 25.0));
    let dir = tempfile::tempdir().unwrap();
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let config = shared_config(&fake, dir.path(), &blue, &green);
    fake.stop();
    let gw = Gateway::start(&config);
    let admin = Admin::new(&gw);
    let client = reqwest::Client::new();
    let state = admin.state().await;
    assert_eq!(state["loaded"], false, "{state}");
    let ready = client.get(gw.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    for (path, body) in [
        ("/v1/splits", json!({"routes": {"web": 100}})),
        (
            "/v1/lock",
            json!({"holder": "ana@host/pid1", "ttl_seconds": 30}),
        ),
    ] {
        let resp = admin.put(path, Some(TOKEN), body).await;
        assert_eq!(resp.status(), 503, "{path}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("has not read the split"), "{path}: {text}");
    }

    fake.restart().await;
    let state = eventually(&admin, "the split read", |s| s["loaded"] == true).await;
    assert_eq!(state["generation"], 7);
    assert_eq!(state["routes"]["web"]["green_percent"], 25.0);
    let stored = fake.configmap(NS, NAME).unwrap();
    assert!(
        stored["data"]["split.json"]
            .as_str()
            .unwrap()
            .contains("\"generation\":7"),
        "a refused write reached the store: {stored}"
    );
    admin.set_split("web", 50.0).await;
}

/// A step that falls while one replica is dead and the API server is down
/// waits for them (within the convergence timeout) instead of rolling
/// back: the run completes, each step written once.
#[tokio::test(flavor = "multi_thread")]
async fn a_step_during_an_api_outage_and_a_dead_replica_waits_and_goes_on() {
    let mut fake = FakeApiServer::start().await;
    fake.put_configmap(NS, NAME, document(1, 0.0));
    let dir = tempfile::tempdir().unwrap();
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let config = shared_config(&fake, dir.path(), &blue, &green);
    let mut one = Gateway::start(&config);
    let two = Gateway::start(&config);
    for gw in [&one, &two] {
        eventually(&Admin::new(gw), "initial load", |s| s["loaded"] == true).await;
    }
    let cutover = e2e::Cutover::new(dir.path());
    let plan = dir.path().join("plan.yaml");
    let urls = [one.admin_url(""), two.admin_url("")];
    let text = e2e::test_plan(
        &urls,
        two.proxy,
        "[{green_percent: 10, hold: 2s}, {green_percent: 50, hold: 1s}]",
        "",
    )
    .replace("convergence_timeout: 3s", "convergence_timeout: 20s");
    std::fs::write(&plan, text).unwrap();
    let load = e2e::Load::start(two.url("/"), 2, Duration::from_millis(10));
    let run = tokio::spawn(cutover.command(&["run", plan.to_str().unwrap()]).output());
    cutover
        .wait_for("step 1 converged", |r| {
            r["event"] == "converged" && r["step"] == 0
        })
        .await;

    // Step 2 comes due in the outage: the first replica (where writes go
    // first) dead, the API server gone.
    one.kill();
    fake.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    fake.restart().await;
    let back = std::time::SystemTime::now();
    one.restart();

    let out = run.await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("trying again"),
        "no retry was logged: {stderr}"
    );
    let records = cutover.records();
    assert!(
        !records.iter().any(|r| r["event"] == "rolled_back"),
        "{records:#?}"
    );
    let applied = records
        .iter()
        .find(|r| r["event"] == "applied" && r["step"] == 1)
        .unwrap();
    let at = humantime::parse_rfc3339(applied["time"].as_str().unwrap()).unwrap();
    assert!(
        at + Duration::from_secs(1) >= back,
        "step 2 was journaled as applied before the API server came back"
    );
    let generations: Vec<u64> = fake
        .versions(NS, NAME)
        .iter()
        .filter_map(|v| {
            let doc: serde_json::Value =
                serde_json::from_str(v["data"]["split.json"].as_str()?).ok()?;
            doc["generation"].as_u64()
        })
        .collect();
    let mut distinct = generations.clone();
    distinct.dedup();
    assert_eq!(distinct, [1, 2, 3], "one write per step: {generations:?}");
    for gw in [&one, &two] {
        let state = eventually(&Admin::new(gw), "convergence", |s| {
            s["served_generation"] == 3
        })
        .await;
        assert_eq!(state["routes"]["web"]["green_percent"], 50.0);
    }
    load.stop().await;
}
