//! `cutover plan check` on the shipped plans: the steps and the fleet are
//! printed (a `kubernetes:` fleet resolved through its headless Service on
//! a fake API server), and nothing is written.

use e2e::docs::repo;
use e2e::fake_kube::FakeApiServer;
use serde_json::Value;

/// Runs `cutover plan check PLAN -o json` in an empty folder; (exit code,
/// the document, stderr, what the folder holds afterwards).
async fn plan_check(plan: &str, kubeconfig: &std::path::Path) -> (i32, Value, String, usize) {
    let cwd = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(e2e::bin("cutover"))
        .args([
            "plan",
            "check",
            repo().join(plan).to_str().unwrap(),
            "-o",
            "json",
        ])
        .current_dir(cwd.path())
        .env("KUBECONFIG", kubeconfig)
        .env("GATEWAY_ADMIN_TOKEN", e2e::TOKEN)
        .env("STAGING_GATEWAY_ADMIN_TOKEN", e2e::TOKEN)
        .env_remove("CUTOVER_JOURNAL")
        .output()
        .await
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let left = std::fs::read_dir(cwd.path()).unwrap().count();
    (
        out.status.code().unwrap_or(-1),
        doc,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        left,
    )
}

fn steps(doc: &Value) -> Vec<f64> {
    doc["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["steps"].as_array().unwrap().iter())
        .map(|s| s["green_percent"].as_f64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_plans_are_checked_without_writing_anything() {
    let api = FakeApiServer::start().await;
    api.put_endpoints(
        "cutover",
        "gateway-admin",
        &["10.1.0.4", "10.1.0.5", "10.1.0.6"],
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();

    let (code, doc, stderr, left) = plan_check("deploy/examples/plan.yaml", &kubeconfig).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(left, 0, "plan check wrote into its folder");
    assert_eq!(
        doc["stages"][0]["fleet"]["replicas"][0],
        "http://127.0.0.1:9090"
    );
    assert_eq!(steps(&doc).last(), Some(&100.0));
    assert_eq!(doc["written"], "nothing");

    let (code, doc, stderr, left) =
        plan_check("deploy/kubernetes/cutover-job/plan.yaml", &kubeconfig).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(left, 0);
    let replicas = doc["stages"][0]["fleet"]["replicas"].to_string();
    for ip in ["10.1.0.4", "10.1.0.5", "10.1.0.6"] {
        assert!(
            replicas.contains(&format!("http://{ip}:9090")),
            "{replicas}"
        );
    }
    assert!(steps(&doc).len() >= 3, "{doc:#}");

    // The staged plan's staging fleet needs a CA file that lives in the
    // Job's pod: named, exit 1, and still every stage and step shown.
    let (code, doc, stderr, left) =
        plan_check("deploy/kubernetes/cutover-staged/plan.yaml", &kubeconfig).await;
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(left, 0);
    assert_eq!(doc["fleets_resolved"], false);
    let staging = &doc["stages"][0]["fleet"];
    assert!(
        staging["error"]
            .as_str()
            .unwrap()
            .contains("staging-admin-ca"),
        "{staging}"
    );
    assert!(doc["stages"][1]["fleet"]["replicas"].is_array(), "{doc:#}");
    assert!(steps(&doc).len() >= 4, "{doc:#}");

    // The human form says the same, and that nothing was written.
    let out = tokio::process::Command::new(e2e::bin("cutover"))
        .args([
            "plan",
            "check",
            repo().join("deploy/examples/plan.yaml").to_str().unwrap(),
        ])
        .env("GATEWAY_ADMIN_TOKEN", e2e::TOKEN)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("step 1: mirror 20% of blue's requests to green, hold 5s"),
        "{text}"
    );
    assert!(text.contains("step 2: green 5%, hold 5s"), "{text}");
    assert!(text.contains("http://127.0.0.1:9090"), "{text}");
    assert!(text.contains("nothing was written"), "{text}");
}
