//! `cutover report` of real runs (one completed with a pause, one rolled
//! back by its gates; the staged run is in `cutover_stages`), opened in
//! headless Chromium: the page renders, its charts hold the journaled
//! points, every decision is listed; the Markdown parses; and `status`
//! says the outcome in words.

use e2e::report::{check_report, CheckedReport};
use e2e::{Backend, Topology};

const STEPS: &str = "[{green_percent: 10, hold: 2s}, {green_percent: 50, hold: 2s}, {green_percent: 100, hold: 1s}]";

#[tokio::test(flavor = "multi_thread")]
async fn a_completed_run_with_a_pause_reports_every_decision_and_point() {
    let s = Topology::start("");
    let plan = s.plan(STEPS, "");
    let load = s.load();
    let run = s.cutover.command(&["run", &plan]).output();
    let operator = async {
        s.cutover
            .wait_for("step 1 applied", |r| r["event"] == "applied")
            .await;
        let pause = s.cutover.output(&["pause", "--reason", "DBA check"]).await;
        assert_eq!(pause.0, 0, "{}", pause.2);
        s.cutover
            .wait_for("paused", |r| r["event"] == "paused")
            .await;
        // A run that has not ended is reported as it stands.
        let (code, json, _) = s.cutover.output(&["report", "-o", "json"]).await;
        assert_eq!(code, 0);
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["outcome"]["state"], "paused");
        assert_eq!(report["outcome"]["ended"], false);
        let headline = report["outcome"]["headline"].as_str().unwrap();
        assert!(
            headline.starts_with("Paused: step 1 of 3 at green 10%"),
            "{headline}"
        );
        let resume = s.cutover.output(&["resume", "--reason", "DBA done"]).await;
        assert_eq!(resume.0, 0, "{}", resume.2);
    };
    let (run, ()) = tokio::join!(run, operator);
    let run = run.unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(load.stop().await.1, 0);

    let CheckedReport { json, markdown, .. } = check_report(&s.cutover, "completed").await;
    assert_eq!(json["outcome"]["state"], "completed");
    assert!(json["outcome"]["headline"]
        .as_str()
        .unwrap()
        .starts_with("Completed: green serves 100% after "));
    assert!(markdown.contains("DBA check") && markdown.contains("DBA done"));

    // status: the outcome in words first, then an aligned table of steps.
    let (code, status, _) = s.cutover.output(&["status"]).await;
    assert_eq!(code, 0);
    let mut lines = status.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("Completed: green serves 100%"),
        "{status}"
    );
    assert!(
        !status.contains('{') && !status.contains('['),
        "JSON fragments in:\n{status}"
    );
    assert!(status.contains("  last gate    pass at "), "{status}");
    let table: Vec<&str> = status.lines().skip_while(|l| !l.contains("STEP")).collect();
    assert_eq!(table.len(), 4, "a header and three steps:\n{status}");
    assert_eq!(
        table[0].find("GREEN"),
        table[1].find("10%"),
        "aligned:\n{status}"
    );
    for (row, green) in table[1..].iter().zip(["10%", "50%", "100%"]) {
        assert!(row.contains(green) && row.contains("passed"), "{row}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_run_reports_why_with_its_figures_against_the_gates() {
    let s = Topology::with_green(Backend::start_with("green", &["--error-rate", "0.5"]), "");
    let plan = s.plan(STEPS, "");
    let load = s.load();
    let (code, _, stderr) = s.cutover.output(&["run", &plan]).await;
    load.stop().await;
    assert_eq!(code, 1, "the gates roll it back: {stderr}");

    let checked = check_report(&s.cutover, "rolled-back").await;
    let outcome = &checked.json["outcome"];
    assert_eq!(outcome["state"], "rolled_back");
    let headline = outcome["headline"].as_str().unwrap();
    assert!(
        headline.starts_with("Rolled back at step 1 of 3 to green 0% after ")
            && headline.contains("success rate"),
        "{headline}"
    );
    assert!(checked.dom.contains(r#"class="outcome rolled_back""#));
    // The gate's limit is drawn on the success chart, and green's points
    // fall below it.
    assert!(checked.dom.contains("gate: green ≥ 95%"));
    let green_success = e2e::report::points(&checked.dom, "success-green");
    assert!(green_success.iter().any(|v| *v < 95.0), "{green_success:?}");
    let (code, status, _) = s.cutover.output(&["status"]).await;
    assert_eq!(code, 1);
    assert_eq!(status.lines().next().unwrap(), headline, "{status}");
    assert!(status.contains("rolled back"), "{status}");
}
