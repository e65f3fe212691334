//! A plan's mirror step: green is judged on copies of blue's requests
//! before any real traffic moves. A green whose answers differ fails the
//! step and the run stops with the split never off 0; a green that
//! answers alike passes it, and the steps after it move real traffic with
//! mirroring off.

use e2e::Topology;
use serde_json::Value;

const STEPS: &str = "[{mirror_percent: 50, hold: 2s}, {green_percent: 50, hold: 1s}, {green_percent: 100, hold: 1s}]";

fn events<'a>(records: &'a [Value], name: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["event"] == name).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn green_answering_differently_fails_the_mirror_step_before_any_traffic_moves() {
    // The sample backends answer with their own names: every body differs.
    let s = Topology::start("    mirror: {percent: 0}");
    let plan = s.plan(STEPS, "");
    let load = s.load();
    let (code, _, stderr) = s.cutover.output(&["run", &plan]).await;
    let (ok, failed) = load.stop().await;
    assert_eq!(code, 1, "the mirror step fails: {stderr}");
    assert_eq!(failed, 0);
    assert!(ok > 100);
    let records = s.cutover.records();
    // The split never left 0: every applied step and the rollback say so.
    assert!(events(&records, "applied")
        .iter()
        .all(|r| r["green_percent"] == 0.0));
    assert_eq!(
        events(&records, "applied").len(),
        1,
        "only the mirror step ran"
    );
    assert_eq!(events(&records, "applied")[0]["mirror_percent"], 50.0);
    let rolled_back = events(&records, "rolled_back");
    let reason = rolled_back[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("mirrored answers differ from blue's"),
        "{reason}"
    );
    assert_eq!(rolled_back[0]["to_percent"], 0.0);
    // The gates judged the mirrored requests, and the differences are in
    // the journal, without headers.
    let gate = events(&records, "gate")[0];
    assert!(
        gate["figures"]["mirror"]["compared"].as_u64().unwrap() > 0,
        "{gate}"
    );
    let samples = &events(&records, "mirror_samples")[0]["samples"];
    let first = &samples[0];
    assert_eq!(
        (first["method"].as_str(), first["path"].as_str()),
        (Some("GET"), Some("/"))
    );
    assert!(
        first["difference"]
            .as_str()
            .unwrap()
            .starts_with("bodies differ"),
        "{first}"
    );
    // Green got no real request: every request it saw was a marked copy
    // or a pinned smoke check; after the rollback mirroring is off.
    let state = s.admin.state().await;
    assert_eq!(state["routes"]["web"]["green_percent"], 0.0);
    assert_eq!(state["routes"]["web"]["mirror_percent"], 0.0);
    let metrics = s.admin.metrics().await;
    let unpinned_green: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("gateway_requests_total") && l.contains("color=\"green\""))
        .filter(|l| l.contains("pinned=\"false\"") && !l.ends_with(" 0"))
        .collect();
    assert!(
        unpinned_green.is_empty(),
        "client requests served by green: {unpinned_green:?}"
    );

    // status and the report say what the comparison found.
    let (_, status, _) = s.cutover.output(&["status"]).await;
    assert!(
        status.contains("mirror 50%") && status.contains("  mirror       "),
        "{status}"
    );
    let checked = e2e::report::check_report(&s.cutover, "mirror-failed").await;
    assert!(!checked.json["mirror_samples"]
        .as_array()
        .unwrap()
        .is_empty());
    if !checked.dom.is_empty() {
        assert!(checked.dom.contains(r#"id="mirror-samples""#));
        assert!(!e2e::report::points(&checked.dom, "mirror-green").is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn green_answering_alike_passes_the_mirror_step_and_the_run_goes_on() {
    let s = Topology::start("    mirror: {percent: 0, compare: {body: none}}");
    let plan = s.plan(STEPS, "");
    let load = s.load();
    let (code, _, stderr) = s.cutover.output(&["run", &plan]).await;
    assert_eq!(load.stop().await.1, 0);
    assert_eq!(code, 0, "{stderr}");
    let records = s.cutover.records();
    let passed = events(&records, "step_passed");
    assert_eq!(passed.len(), 3);
    let mirror = &passed[0]["figures"]["mirror"];
    assert!(mirror["compared"].as_u64().unwrap() >= 5, "{mirror}");
    assert_eq!(mirror["mismatch_rate"], 0.0);
    let state = s.admin.state().await;
    assert_eq!(state["routes"]["web"]["green_percent"], 100.0);
    assert_eq!(
        state["routes"]["web"]["mirror_percent"], 0.0,
        "mirroring ends with real traffic"
    );
}
