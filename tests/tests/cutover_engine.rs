//! The cutover engine against real gateways and backends on loopback.

use e2e::{Backend, Cutover, Topology};
use serde_json::Value;
use std::time::{Duration, Instant};

fn setup() -> Topology {
    Topology::start("    stickiness: {header: x-client-id}")
}

fn events<'a>(records: &'a [Value], name: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["event"] == name).collect()
}

fn time_of(record: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339(record["time"].as_str().unwrap()).unwrap()
}

const THREE_STEPS: &str = "[{green_percent: 10, hold: 1s}, {green_percent: 50, hold: 1s}, {green_percent: 100, hold: 1s}]";

#[tokio::test(flavor = "multi_thread")]
async fn a_full_cutover_under_load_loses_no_request() {
    let s = setup();
    let plan = s.plan(THREE_STEPS, "");
    let load = s.load();
    let (code, _, stderr) = s.cutover.output(&["run", &plan]).await;
    let (ok, failed) = load.stop().await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(failed, 0, "client requests failed during the cutover");
    assert!(ok > 200, "too little load: {ok}");
    assert_eq!(s.split().await, 100.0);
    let records = s.cutover.records();
    let passed = events(&records, "step_passed");
    assert_eq!(passed.len(), 3);
    for (i, r) in passed.iter().enumerate() {
        assert_eq!(r["step"], i);
        assert!(
            r["figures"]["green"]["requests"].as_u64().unwrap() >= 5,
            "{r}"
        );
        assert!(r["actor"].as_str().unwrap().contains('@'));
    }
    assert_eq!(
        events(&records, "smoke").len(),
        3,
        "smoke checks before each step"
    );
    assert!(events(&records, "smoke")
        .iter()
        .all(|r| r["passed"] == true));
    assert_eq!(events(&records, "completed").len(), 1);
    // Smoke requests are pinned, and the gates left them out.
    assert!(s.admin.metrics().await.contains(r#"pinned="true""#));
    let (code, status, _) = s.cutover.output(&["status", "--output", "json"]).await;
    assert_eq!(code, 0);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["state"], "completed");
    assert_eq!(status["green_percent"], 100.0);
    let _ = (&s.blue, &s.green);
}

#[tokio::test(flavor = "multi_thread")]
async fn green_errors_from_step_two_roll_back_in_time() {
    let mut s = setup();
    let plan = s.plan(
        "[{green_percent: 20, hold: 1s}, {green_percent: 50, hold: 20s}, {green_percent: 100}]",
        "",
    );
    let load = s.load();
    let mut run = s.cutover.command(&["run", &plan]).spawn().unwrap();
    s.cutover
        .wait_for("step 1 passed", |r| {
            r["event"] == "step_passed" && r["step"] == 0
        })
        .await;
    // Green starts failing 20% of its requests: the config is reloaded to
    // point at a broken green backend.
    let mut broken = Backend::start_with("green", &["--error-rate", "0.2"]);
    let config = std::fs::read_to_string(s.gw.config_path())
        .unwrap()
        .replace(&s.green.addr.to_string(), &broken.addr.to_string());
    std::fs::write(s.gw.config_path(), config).unwrap();
    s.gw.proc.as_ref().unwrap().signal("HUP");
    std::mem::swap(&mut s.green, &mut broken);

    let status = tokio::time::timeout(Duration::from_secs(30), run.wait())
        .await
        .unwrap()
        .unwrap();
    load.stop().await;
    assert_eq!(status.code(), Some(1), "a rolled-back run exits 1");
    assert_eq!(s.split().await, 0.0);
    let records = s.cutover.records();
    let rolled = events(&records, "rolled_back");
    assert_eq!(rolled.len(), 1);
    let reason = rolled[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("success rate") || reason.contains("error rate"),
        "{reason}"
    );
    assert!(rolled[0]["figures"]["green"]["errors"].as_u64().unwrap() > 0);
    // The failure limit (2) was reached at the second failed gate in a row.
    let gates = events(&records, "gate");
    let second_fail = gates
        .windows(2)
        .find(|w| w.iter().all(|g| g["verdict"]["verdict"] == "fail"))
        .map(|w| w[1])
        .expect("two failed gates in a row");
    let lag = time_of(rolled[0])
        .duration_since(time_of(second_fail))
        .unwrap();
    assert!(
        lag <= Duration::from_millis(1500),
        "rollback took {lag:?} after the failure limit"
    );
    // The report tells it: step 1 passed, step 2 rolled back and why.
    let checked = e2e::report::check_report(&s.cutover, "rolled-back").await;
    let headline = checked.json["outcome"]["headline"].as_str().unwrap();
    assert!(
        headline.starts_with("Rolled back at step 2 of 3"),
        "{headline}"
    );
    // docs/images/report-rolled-back.png is this page's screenshot.
    if let Some(path) = std::env::var_os("REPORT_PAGE_TO") {
        std::fs::copy(checked.screenshot.with_extension("html"), path).unwrap();
    }
    drop(broken);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_little_traffic_holds_then_fails_or_pauses_as_configured() {
    let s = setup();
    // No load at all: the step can never pass.
    let plan = s.plan(
        THREE_STEPS,
        ", min_requests: 50, inconclusive_limit: 4, on_inconclusive_limit: fail",
    );
    let (code, _, _) = s.cutover.output(&["run", &plan]).await;
    assert_eq!(code, 1);
    let records = s.cutover.records();
    assert!(
        events(&records, "step_passed").is_empty(),
        "a step passed on no traffic"
    );
    let gates = events(&records, "gate");
    assert!(gates.len() >= 4);
    assert!(
        gates
            .iter()
            .all(|g| g["verdict"]["verdict"] == "inconclusive"),
        "{gates:?}"
    );
    assert!(events(&records, "rolled_back")[0]["reason"]
        .as_str()
        .unwrap()
        .contains("inconclusive"));

    let plan = s.plan(
        THREE_STEPS,
        ", min_requests: 50, inconclusive_limit: 3, on_inconclusive_limit: pause",
    );
    let mut run = s.cutover.command(&["run", &plan]).spawn().unwrap();
    s.cutover
        .wait_for("pause", |r| r["event"] == "paused")
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        run.try_wait().unwrap().is_none(),
        "a paused run keeps its place"
    );
    assert_eq!(s.split().await, 10.0, "the paused step did not advance");
    let (code, _, _) = s.cutover.output(&["abort", "--reason", "test over"]).await;
    assert_eq!(code, 0);
    let status = tokio::time::timeout(Duration::from_secs(10), run.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(s.split().await, 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_hold_and_at_the_worst_moment_then_resume() {
    let s = setup();
    let plan = s.plan("[{green_percent: 10, hold: 1s}, {green_percent: 50, hold: 3s}, {green_percent: 100, hold: 1s}]", "");
    let load = s.load();

    // 1. Killed while holding step 2.
    let mut run = s.cutover.command(&["run", &plan]).spawn().unwrap();
    s.cutover
        .wait_for("step 2 converged", |r| {
            r["event"] == "converged" && r["step"] == 1
        })
        .await;
    run.start_kill().unwrap();
    run.wait().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.split().await, 50.0, "the gateway keeps the last split");
    let (code, _, stderr) = s.cutover.output(&["resume"]).await;
    assert_eq!(code, 0, "{stderr}");
    let records = s.cutover.records();
    let passed: Vec<u64> = events(&records, "step_passed")
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(passed, [0, 1, 2], "a step was repeated or skipped");
    assert_eq!(events(&records, "lock_taken_over").len(), 1);
    // One write per step: resuming wrote nothing twice.
    assert_eq!(s.admin.state().await["generation"], 3);

    // 2. Killed between writing step 2's split and journaling it.
    let dir2 = tempfile::tempdir().unwrap();
    let cutover = Cutover::new(dir2.path());
    let mut first = cutover.command(&["run", &plan]);
    first.env("CUTOVER_FAILPOINT", "after-apply:1");
    s.admin.set_split("web", 0.0).await;
    let generation_before = s.admin.state().await["generation"].as_u64().unwrap();
    let status = first.status().await.unwrap();
    assert!(!status.success());
    assert_eq!(
        s.split().await,
        50.0,
        "the split was written before the crash"
    );
    let records = cutover.records();
    assert!(
        events(&records, "applied").iter().all(|r| r["step"] == 0),
        "step 2 was journaled"
    );
    let (code, _, stderr) = cutover.output(&["resume"]).await;
    assert_eq!(code, 0, "{stderr}");
    let records = cutover.records();
    let passed: Vec<u64> = events(&records, "step_passed")
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(passed, [0, 1, 2]);
    let (ok, failed) = load.stop().await;
    assert_eq!(failed, 0);
    assert!(ok > 0);
    let generation = s.admin.state().await["generation"].as_u64().unwrap();
    assert_eq!(
        generation,
        generation_before + 3,
        "step 2 was applied twice"
    );
}

/// A run killed in the middle of a long hold goes on where it stopped:
/// the hold already watched under the gates (one interval per journaled
/// gate) counts, and `status` says what is left.
#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_hold_goes_on_where_it_stopped() {
    let s = setup();
    let plan = s.plan(
        "[{green_percent: 10, hold: 1s}, {green_percent: 50, hold: 6s}]",
        "",
    );
    let load = s.load();
    let mut run = s.cutover.command(&["run", &plan]).spawn().unwrap();
    s.cutover
        .wait_for("8 gates of step 2", |_| {
            let records = s.cutover.records();
            records
                .iter()
                .filter(|r| r["event"] == "gate" && r["step"] == 1)
                .count()
                >= 8
        })
        .await;
    run.start_kill().unwrap();
    run.wait().await.unwrap();
    let gates = events(&s.cutover.records(), "gate")
        .iter()
        .filter(|r| r["step"] == 1)
        .count();
    let (code, status, _) = s.cutover.output(&["status", "--output", "json"]).await;
    assert_eq!(code, 4, "a run that has not ended");
    let status: Value = serde_json::from_str(&status).unwrap();
    let left = status["hold"]["left_seconds"].as_u64().unwrap();
    assert!(left <= 6 - gates as u64 / 2, "status: {status}");

    let (code, _, stderr) = s.cutover.output(&["resume"]).await;
    assert_eq!(code, 0, "{stderr}");
    let watched = humantime::format_duration(Duration::from_millis(500 * gates as u64));
    assert!(
        stderr.contains(&format!(
            "resuming at step 2 of 2 ({watched} of its hold watched already)"
        )),
        "{stderr}"
    );
    let records = s.cutover.records();
    let converged = events(&records, "converged")
        .into_iter()
        .rfind(|r| r["step"] == 1)
        .unwrap();
    let passed = events(&records, "step_passed")
        .into_iter()
        .find(|r| r["step"] == 1)
        .unwrap();
    let rest = time_of(passed).duration_since(time_of(converged)).unwrap();
    let owed = Duration::from_secs(6) - Duration::from_millis(500 * gates as u64);
    assert!(
        rest < owed + Duration::from_millis(1500),
        "the resumed hold took {rest:?}, {owed:?} were left"
    );
    assert_eq!(load.stop().await.1, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn control_commands_from_another_terminal() {
    let s = setup();
    let plan = s.plan(
        "[{green_percent: 10, hold: 60s}, {green_percent: 50, hold: 60s}]",
        "",
    );
    let load = s.load();
    let interval = Duration::from_millis(500);

    // pause → resume → promote (one step) → promote --full
    let mut run = s.cutover.command(&["run", &plan]).spawn().unwrap();
    s.cutover
        .wait_for("converged", |r| r["event"] == "converged")
        .await;
    let sent = Instant::now();
    assert_eq!(
        s.cutover.output(&["pause", "--reason", "coffee"]).await.0,
        0
    );
    let paused = s
        .cutover
        .wait_for("paused", |r| r["event"] == "paused")
        .await;
    assert!(sent.elapsed() < interval + Duration::from_secs(1));
    assert!(paused["reason"].as_str().unwrap().contains("coffee"));
    assert_eq!(s.cutover.output(&["resume"]).await.0, 0);
    s.cutover
        .wait_for("resumed", |r| r["event"] == "resumed")
        .await;
    // `promote`: step 1's hold (60 s) ends now, step 2 is applied.
    assert_eq!(
        s.cutover
            .output(&["promote", "--reason", "looks good"])
            .await
            .0,
        0
    );
    s.cutover
        .wait_for("step 2 applied", |r| {
            r["event"] == "applied" && r["step"] == 1
        })
        .await;
    assert_eq!(s.split().await, 50.0);
    // `promote --full`: 100% now.
    assert_eq!(s.cutover.output(&["promote", "--full"]).await.0, 0);
    let status = tokio::time::timeout(Duration::from_secs(10), run.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(s.split().await, 100.0);
    let records = s.cutover.records();
    for name in ["control", "paused", "resumed", "step_promoted", "promoted"] {
        let r = events(&records, name);
        assert!(!r.is_empty(), "no {name}");
        assert!(r[0]["actor"].as_str().unwrap().contains('@'));
    }

    // abort
    s.admin.set_split("web", 0.0).await;
    let first_run_ended = records.last().unwrap()["time"].clone();
    let mut run = s.cutover.command(&["run", &plan]).spawn().unwrap();
    s.cutover
        .wait_for("converged", |r| {
            r["event"] == "converged" && r["time"].as_str() > first_run_ended.as_str()
        })
        .await;
    assert_eq!(s.split().await, 10.0);
    assert_eq!(
        s.cutover
            .output(&["abort", "--reason", "changed my mind"])
            .await
            .0,
        0
    );
    let status = tokio::time::timeout(Duration::from_secs(5), run.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(s.split().await, 0.0);

    // emergency during a run: the split goes to one colour, the run stops.
    let mut run = s.cutover.command(&["run", &plan]).spawn().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let admin_url = s.gw.admin_url("");
    let (code, _, stderr) = s
        .cutover
        .emergency("green", ["--gateway", &admin_url], "blue is on fire")
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(s.split().await, 100.0);
    let status = tokio::time::timeout(Duration::from_secs(5), run.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(3));
    let records = s.cutover.records();
    assert_eq!(
        events(&records, "emergency")[0]["reason"],
        "blue is on fire"
    );
    // Without --yes and without a terminal it refuses and changes nothing.
    let (code, _, stderr) = s
        .cutover
        .output(&[
            "emergency",
            "--to",
            "blue",
            "--gateway",
            &admin_url,
            "--reason",
            "x",
        ])
        .await;
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(s.split().await, 100.0);
    let (_, failed) = load.stop().await;
    assert_eq!(failed, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_and_a_malformed_plan_are_refused() {
    let s = setup();
    let plan = s.plan("[{green_percent: 10, hold: 60s}]", "");
    let _load = s.load();
    let mut run = s.cutover.command(&["run", &plan]).spawn().unwrap();
    s.cutover
        .wait_for("converged", |r| r["event"] == "converged")
        .await;
    // Another operator, another journal: the fleet's lock refuses them.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Cutover::new(other_dir.path());
    let (code, _, stderr) = other.output(&["run", &plan]).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("lock is held by"), "{stderr}");
    assert!(stderr.contains("/pid"), "the holder is not named: {stderr}");
    run.start_kill().unwrap();

    let generation = s.admin.state().await["generation"].clone();
    let bad = s.dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&plan)
            .unwrap()
            .replace("green_percent: 10", "green_percent: 150"),
    )
    .unwrap();
    let (code, _, stderr) = other.output(&["run", bad.to_str().unwrap()]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("steps[0].green_percent"), "{stderr}");
    assert_eq!(
        s.admin.state().await["generation"],
        generation,
        "a refused plan changed the split"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn green_going_dark_fails_the_gate_at_once() {
    let mut s = setup();
    let plan = s.plan("[{green_percent: 30, hold: 30s}]", "");
    let load = s.load();
    let mut run = s.cutover.command(&["run", &plan]).spawn().unwrap();
    let converged = s
        .cutover
        .wait_for("converged", |r| r["event"] == "converged")
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    s.green.stop();
    let status = tokio::time::timeout(Duration::from_secs(15), run.wait())
        .await
        .unwrap()
        .unwrap();
    let (_, failed) = load.stop().await;
    assert_eq!(status.code(), Some(1));
    assert_eq!(s.split().await, 0.0);
    assert_eq!(
        failed, 0,
        "failover should have hidden green's death from clients"
    );
    let records = s.cutover.records();
    // The gate sees green's death as no healthy endpoint, or, when it
    // samples before the health checks have noticed, as requests failed
    // over from green: whichever comes first.
    let after: Vec<&Value> = events(&records, "gate")
        .into_iter()
        .filter(|g| {
            let figures = &g["figures"];
            time_of(g) > time_of(&converged)
                && (figures["green_healthy_endpoints"] == 0
                    || figures["failovers_from_green"].as_u64() > Some(0))
        })
        .collect();
    assert!(!after.is_empty(), "{records:?}");
    assert!(
        after.iter().all(|g| g["verdict"]["verdict"] == "fail"),
        "{after:?}"
    );
    let reason = events(&records, "rolled_back")[0]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains("no healthy endpoint") || reason.contains("failed over"),
        "{reason}"
    );
}
