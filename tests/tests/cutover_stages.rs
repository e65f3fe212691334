//! Staged fleets: a plan moving a staging fleet (1 replica) and then, after
//! a journaled wait, a production fleet (2 replicas); a wait survives the
//! process; `status --watch` follows a run from a second terminal.

use e2e::{pinned_config, Admin, Backend, Cutover, Gateway, Load};
use serde_json::Value;
use std::time::{Duration, SystemTime};

struct Fleets {
    _backends: Vec<Backend>,
    staging: Gateway,
    prod: [Gateway; 2],
    cutover: Cutover,
    dir: tempfile::TempDir,
}

fn fleets() -> Fleets {
    fleets_with(&[])
}

/// The fleets; prod's green backend runs with `prod_green` flags.
fn fleets_with(prod_green: &[&str]) -> Fleets {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let prod_green = Backend::start_with("green", prod_green);
    let config = |green: &Backend| pinned_config(&[&blue], &[green], "");
    let dir = tempfile::tempdir().unwrap();
    Fleets {
        staging: Gateway::start(&config(&green)),
        prod: [
            Gateway::start(&config(&prod_green)),
            Gateway::start(&config(&prod_green)),
        ],
        _backends: vec![blue, green, prod_green],
        cutover: Cutover::new(dir.path()),
        dir,
    }
}

fn fleet_yaml(gateways: &[&Gateway]) -> String {
    format!(
        "{{admin_urls: [{}], proxy_url: \"http://{}\"}}",
        e2e::quoted_list(gateways.iter().map(|g| g.admin_url(""))),
        gateways[0].proxy
    )
}

impl Fleets {
    /// A two-stage plan; `prod_extra` adds fields to the second stage.
    fn plan(&self, prod_extra: &str) -> String {
        let text = format!(
            r#"routes: [web]
stages:
  - name: staging
    fleet: {staging}
    steps: [{{green_percent: 50, hold: 1s}}, {{green_percent: 100, hold: 1s}}]
  - name: prod
    fleet: {prod}
    steps: [{{green_percent: 50, hold: 1s}}, {{green_percent: 100, hold: 1s}}]
{prod_extra}
gates: {{interval: 500ms, window: 3s, min_requests: 5, success_rate: 0.95, p99_latency: 2s}}
smoke:
  - {{name: echo, path: /echo, expect_status: 200, expect_body: green}}
convergence_timeout: 3s
lock_ttl: 10s
"#,
            staging = fleet_yaml(&[&self.staging]),
            prod = fleet_yaml(&[&self.prod[0], &self.prod[1]]),
        );
        let path = self.dir.path().join("plan.yaml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn loads(&self) -> Vec<Load> {
        [&self.staging, &self.prod[0]]
            .iter()
            .map(|g| Load::start(g.url("/"), 2, Duration::from_millis(10)))
            .collect()
    }

    async fn splits(&self) -> (f64, [f64; 2]) {
        let split = |g: &Gateway| {
            let admin = Admin::new(g);
            async move {
                admin.state().await["routes"]["web"]["green_percent"]
                    .as_f64()
                    .unwrap()
            }
        };
        (
            split(&self.staging).await,
            [split(&self.prod[0]).await, split(&self.prod[1]).await],
        )
    }
}

fn events<'a>(records: &'a [Value], name: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["event"] == name).collect()
}

fn steps_of(records: &[Value], name: &str) -> Vec<u64> {
    events(records, name)
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect()
}

fn time_of(record: &Value, field: &str) -> SystemTime {
    humantime::parse_rfc3339(record[field].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_stage_wait_and_resume_goes_on_without_repeating_stage_1() {
    let f = fleets();
    let plan = f.plan("    wait_before: 3s");
    let loads = f.loads();

    let mut run = f.cutover.command(&["run", &plan]).spawn().unwrap();
    let waiting = f
        .cutover
        .wait_for("stage_waiting", |r| r["event"] == "stage_waiting")
        .await;
    assert_eq!(waiting["name"], "prod");
    run.start_kill().unwrap();
    run.wait().await.unwrap();
    assert_eq!(
        f.splits().await,
        (100.0, [0.0, 0.0]),
        "staging finished, prod untouched"
    );

    let (code, _, stderr) = f.cutover.output(&["resume"]).await;
    assert_eq!(code, 0, "{stderr}");
    let records = f.cutover.records();
    assert_eq!(
        steps_of(&records, "applied"),
        [0, 1, 2, 3],
        "a step was repeated or skipped"
    );
    assert_eq!(steps_of(&records, "step_passed"), [0, 1, 2, 3]);
    assert_eq!(
        events(&records, "stage_waiting").len(),
        1,
        "the wait was journaled once and kept"
    );
    let started: Vec<&Value> = events(&records, "stage_started");
    assert_eq!(started.len(), 2);
    assert!(
        time_of(started[1], "time") >= time_of(&waiting, "not_before"),
        "prod began before its wait was over"
    );
    assert_eq!(events(&records, "lock_taken_over").len(), 1);
    assert_eq!(events(&records, "completed").len(), 1);
    assert_eq!(f.splits().await, (100.0, [100.0, 100.0]));

    let (code, status, _) = f.cutover.output(&["status", "--output", "json"]).await;
    assert_eq!(code, 0);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["state"], "completed");
    let states: Vec<&Value> = status["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["state"])
        .collect();
    assert_eq!(states, ["done", "done"]);
    for load in loads {
        let (ok, failed) = load.stop().await;
        assert_eq!(failed, 0);
        assert!(ok > 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_of_days_needs_no_process_and_says_when_it_may_go_on() {
    let f = fleets();
    let plan = f.plan("    wait_before: 7d\n    approval: true");
    let loads = f.loads();

    let (code, _, stderr) = f.cutover.output(&["run", &plan, "--no-wait"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("stage 2 of 2 (prod) may not begin before"),
        "{stderr}"
    );
    assert_eq!(f.splits().await, (100.0, [0.0, 0.0]));
    let not_before = f.cutover.records().last().unwrap()["not_before"].clone();
    assert!(not_before.is_string(), "{:?}", f.cutover.records().last());

    // Before T: resume says when and leaves it; a new run is refused.
    let (code, _, stderr) = f.cutover.output(&["resume", "--no-wait"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("may not begin before"), "{stderr}");
    let (code, _, stderr) = f.cutover.output(&["run", &plan]).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "may not begin before {}",
            not_before.as_str().unwrap()
        )),
        "{stderr}"
    );
    let (code, status, _) = f.cutover.output(&["status", "--output", "json"]).await;
    assert_eq!(code, 4, "a waiting run has not ended");
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["state"], "waiting");
    assert_eq!(status["stages"][0]["state"], "done");
    assert_eq!(status["stages"][1]["state"], "waiting");
    assert_eq!(status["stages"][1]["not_before"], not_before);

    // Aborting in the wait stops the plan and moves nothing.
    let (code, _, stderr) = f
        .cutover
        .output(&["abort", "--reason", "change freeze"])
        .await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("no traffic was moved"), "{stderr}");
    assert_eq!(f.splits().await, (100.0, [0.0, 0.0]));
    assert_eq!(steps_of(&f.cutover.records(), "applied"), [0, 1]);
    for load in loads {
        assert_eq!(load.stop().await.1, 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_finishes_the_current_stage_and_the_plan_goes_on() {
    let f = fleets();
    let plan = f.plan("");
    // A long first hold, so that the promote comes during it.
    let text = std::fs::read_to_string(&plan).unwrap().replacen(
        "{green_percent: 50, hold: 1s}",
        "{green_percent: 50, hold: 60s}",
        1,
    );
    std::fs::write(&plan, text).unwrap();
    let loads = f.loads();
    let run = f.cutover.command(&["run", &plan]).output();
    let run = tokio::spawn(run);
    f.cutover
        .wait_for("step 1 converged", |r| {
            r["event"] == "converged" && r["step"] == 0
        })
        .await;
    let (code, _, stderr) = f
        .cutover
        .output(&["promote", "--full", "--reason", "staging is fine"])
        .await;
    assert_eq!(code, 0, "{stderr}");
    let out = run.await.unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(f.splits().await, (100.0, [100.0, 100.0]));
    let records = f.cutover.records();
    assert_eq!(events(&records, "promoted").len(), 1);
    assert_eq!(
        steps_of(&records, "step_passed"),
        [2, 3],
        "prod ran its own steps"
    );
    assert_eq!(events(&records, "completed").len(), 1);
    for load in loads {
        assert_eq!(load.stop().await.1, 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_stage_rolls_back_its_own_fleet_only_and_stops_the_plan() {
    let f = fleets_with(&["--error-rate", "0.5"]);
    let plan = f.plan("");
    let loads = f.loads();
    let (code, _, stderr) = f.cutover.output(&["run", &plan]).await;
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        f.splits().await,
        (100.0, [0.0, 0.0]),
        "staging keeps its split, prod is back on blue"
    );
    let records = f.cutover.records();
    let rolled_back = events(&records, "rolled_back");
    assert_eq!(rolled_back.len(), 1);
    assert_eq!(rolled_back[0]["step"], 2, "prod's first step failed");
    assert!(events(&records, "completed").is_empty());
    let (_, status, _) = f.cutover.output(&["status", "--output", "json"]).await;
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["stages"][0]["state"], "done");
    assert_eq!(status["stages"][1]["state"], "rolled_back");
    for load in loads {
        load.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_stages_are_named_and_nothing_runs() {
    let f = fleets();
    let good = f.plan("");
    let text = std::fs::read_to_string(&good).unwrap();
    let prod_fleet = fleet_yaml(&[&f.prod[0], &f.prod[1]]);
    let no_fleet = text.replace(&format!("    fleet: {prod_fleet}\n"), "");
    assert_ne!(no_fleet, text);
    let bad_wait = text.replace(
        "  - name: prod\n",
        "  - name: prod\n    wait_before: next tuesday\n",
    );
    for (name, bad, needle) in [
        (
            "no-fleet.yaml",
            no_fleet,
            "stages[1].fleet: every stage needs its own fleet",
        ),
        ("bad-wait.yaml", bad_wait, "stages[1].wait_before"),
    ] {
        let path = f.dir.path().join(name);
        std::fs::write(&path, bad).unwrap();
        let (code, _, stderr) = f.cutover.output(&["run", path.to_str().unwrap()]).await;
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert!(
            !f.cutover.journal().exists(),
            "{name}: a journal was written"
        );
    }
    assert_eq!(f.splits().await, (0.0, [0.0, 0.0]));
}

#[tokio::test(flavor = "multi_thread")]
async fn status_watch_follows_a_run_from_another_terminal_until_it_ends() {
    let f = fleets();
    let plan = f.plan("");
    let loads = f.loads();
    let run = f
        .cutover
        .command(&["run", &plan])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    f.cutover
        .wait_for("started", |r| r["event"] == "started")
        .await;
    let watch = f
        .cutover
        .command(&["status", "--watch", "--interval", "300ms"])
        .output();
    let (run, watch) = tokio::join!(run.wait_with_output(), watch);
    let (run, watch) = (run.unwrap(), watch.unwrap());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(watch.status.success());
    let text = String::from_utf8_lossy(&watch.stdout);
    for needle in [
        "Running: step ",
        "  hold         ",
        "  figures      blue ",
        "  last gate    pass at ",
        "staging (running)",
        "prod (pending)",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    let last_frame = text
        .lines()
        .rev()
        .find(|l| l.starts_with("Running:") || l.starts_with("Completed:"))
        .unwrap();
    assert!(
        last_frame.starts_with("Completed: green serves 100% after ")
            && last_frame.ends_with("(4 steps)"),
        "{last_frame}"
    );
    // The staged run's report: every stage on the charts, every decision.
    let checked = e2e::report::check_report(&f.cutover, "staged").await;
    let stages = checked.json["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2);
    assert!(
        stages.iter().all(|s| s["began_at_seconds"].is_number()),
        "{stages:?}"
    );
    if !checked.dom.is_empty() {
        assert!(
            checked.dom.contains(r#"class="stage-name""#) && checked.dom.contains(">prod</text>")
        );
    }
    for load in loads {
        assert_eq!(load.stop().await.1, 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stages_drain_empties_its_fleet_before_the_next_stage_begins() {
    let f = fleets();
    let path = f.plan("");
    // Staging drains blue once it reached 100%, before prod begins.
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "    steps: [{green_percent: 50, hold: 1s}, {green_percent: 100, hold: 1s}]\n",
        "    steps: [{green_percent: 50, hold: 1s}, {green_percent: 100, hold: 1s}]\n    drain: {deadline: 1s}\n",
        1,
    );
    std::fs::write(&path, text).unwrap();
    let loads = f.loads();
    let (code, stdout, stderr) = f.cutover.output(&["run", &path]).await;
    for load in loads {
        load.stop().await;
    }
    assert_eq!(code, 0, "{stdout}{stderr}");
    let records = f.cutover.records();
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    let drained = names
        .iter()
        .position(|n| *n == "drained")
        .expect("a drained record");
    let prod_began = names
        .iter()
        .rposition(|n| *n == "stage_started")
        .expect("prod began");
    assert!(drained < prod_began, "{names:?}");
    assert_eq!(records[drained]["replicas"], 1, "staging's fleet only");
    assert_eq!(records[drained]["left"], serde_json::json!([]));
    assert_eq!(*names.last().unwrap(), "completed");
    let (code, _, _) = f.cutover.output(&["status"]).await;
    assert_eq!(code, 0, "the run completed");
}
