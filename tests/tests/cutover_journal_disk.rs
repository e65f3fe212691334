//! The journal's file system fills up in the middle of a hold, or is
//! read-only when a dead run is resumed: the engine stops (or refuses) with
//! a clear message and exit 1, the gateways keep the last journaled split,
//! no journaled record is lost or torn, and once the disk is writable again
//! `resume` finishes the run.
//!
//! The journal lives on a small tmpfs mounted by the test, which needs
//! root (CI has it); elsewhere those tests skip, saying why. A split write
//! whose record the journal refuses is played by a failpoint.

use e2e::tmpfs::Tmpfs;
use e2e::{pinned_config, test_plan, Admin, Backend, Cutover, Gateway, Load};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

async fn split(admin: &Admin) -> f64 {
    admin.state().await["routes"]["web"]["green_percent"]
        .as_f64()
        .unwrap()
}

/// Every line of the journal parses: nothing torn, nothing lost.
/// `cutover resume` runs the plan to 100%, each step passed once.
async fn resume_to_the_end(cutover: &Cutover, admin: &Admin) {
    let (code, _, stderr) = cutover.output(&["resume"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(split(admin).await, 100.0);
    let records = whole_lines(cutover);
    let passed: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] == "step_passed")
        .map(|r| &r["step"])
        .collect();
    assert_eq!(passed, [0, 1, 2], "a step was repeated or skipped");
}

fn whole_lines(cutover: &Cutover) -> Vec<Value> {
    let text = std::fs::read_to_string(cutover.journal()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}")))
        .collect()
}

/// Blue and green behind one gateway (pins honoured from loopback), a
/// three-step plan whose second step holds `hold`, client load, and a
/// cutover whose journal is on `fs`.
struct Topology {
    _backends: [Backend; 2],
    _gw: Gateway,
    admin: Admin,
    _plan_dir: tempfile::TempDir,
    plan: String,
    cutover: Cutover,
    load: Load,
}

fn topology(journal_dir: &Path, hold: &str) -> Topology {
    let backends = [Backend::start("blue"), Backend::start("green")];
    let gw = Gateway::start(&pinned_config(&[&backends[0]], &[&backends[1]], ""));
    let plan_dir = tempfile::tempdir().unwrap();
    let plan = plan_dir.path().join("plan.yaml");
    let steps = format!(
        "[{{green_percent: 10, hold: 1s}}, {{green_percent: 50, hold: {hold}}}, {{green_percent: 100, hold: 1s}}]"
    );
    std::fs::write(&plan, test_plan(&[gw.admin_url("")], gw.proxy, &steps, "")).unwrap();
    Topology {
        admin: Admin::new(&gw),
        load: Load::start(gw.url("/"), 4, Duration::from_millis(10)),
        _backends: backends,
        _gw: gw,
        _plan_dir: plan_dir,
        plan: plan.display().to_string(),
        cutover: Cutover::new(journal_dir),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_journal_disk_stops_the_run_and_keeps_the_split() {
    let Some(fs) = Tmpfs::mount("256k") else {
        return;
    };
    let t = topology(fs.path(), "6s");
    let (admin, cutover, plan) = (&t.admin, &t.cutover, &t.plan);

    let run = cutover.command(&["run", plan]).output();
    let run = tokio::spawn(run);
    cutover
        .wait_for("step 2 converged", |r| {
            r["event"] == "converged" && r["step"] == 1
        })
        .await;
    let filler = fs.fill();
    let started = Instant::now();
    let out = run.await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run went on without a journal"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains("the run stopped here and moves no more traffic: the gateways keep serving green 50% (step 2, the last journaled)"),
        "{stderr}"
    );
    assert_eq!(
        split(admin).await,
        50.0,
        "the split moved after the journal failed"
    );

    std::fs::remove_file(filler).unwrap();
    let records = whole_lines(cutover);
    assert!(records
        .iter()
        .any(|r| r["event"] == "applied" && r["step"] == 1));
    resume_to_the_end(cutover, admin).await;
    let (_, failed) = t.load.stop().await;
    assert_eq!(failed, 0);
}

/// A read-only file system cannot be made so under an open journal (the
/// kernel refuses while a file is open for writing), so this is the case
/// an operator meets: the engine died, the disk came back read-only, and
/// `resume` must refuse without touching the gateways.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_journal_disk_refuses_resume_and_keeps_the_split() {
    let Some(fs) = Tmpfs::mount("256k") else {
        return;
    };
    let t = topology(fs.path(), "3s");
    let (admin, cutover) = (&t.admin, &t.cutover);
    let mut run = cutover.command(&["run", &t.plan]).spawn().unwrap();
    cutover
        .wait_for("step 2 converged", |r| {
            r["event"] == "converged" && r["step"] == 1
        })
        .await;
    run.start_kill().unwrap();
    run.wait().await.unwrap();
    let journaled = whole_lines(cutover).len();

    fs.remount("ro");
    let (code, _, stderr) = cutover.output(&["resume"]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert!(
        stderr.contains(&cutover.journal().display().to_string()),
        "{stderr}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(split(admin).await, 50.0, "a refused resume moved traffic");

    fs.remount("rw");
    assert_eq!(whole_lines(cutover).len(), journaled, "a record was lost");
    resume_to_the_end(cutover, admin).await;
    assert_eq!(t.load.stop().await.1, 0);
}

/// A file system that cannot allocate room ahead may fill up between a
/// split write and its record: the journal refuses `applied` (a failpoint
/// plays that disk). The split goes back to the last journaled one, the
/// run stops saying so, and `resume` finishes once the journal can write.
#[tokio::test(flavor = "multi_thread")]
async fn a_split_write_the_journal_cannot_record_is_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let t = topology(dir.path(), "1s");
    let (admin, cutover) = (&t.admin, &t.cutover);
    let mut run = cutover.command(&["run", &t.plan]);
    run.env("CUTOVER_FAILPOINT", "journal-refuses-applied:1");
    let out = run.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused by the test failpoint"), "{stderr}");
    assert!(
        stderr.contains("the step's split was put back; the gateways keep serving green 10% on web (the last journaled)"),
        "{stderr}"
    );
    assert_eq!(split(admin).await, 10.0, "the unjournaled split stayed");
    let records = whole_lines(cutover);
    assert!(
        !records
            .iter()
            .any(|r| r["event"] == "applied" && r["step"] == 1),
        "the refused record is in the journal"
    );

    let (code, _, stderr) = cutover.output(&["resume"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(split(admin).await, 100.0);
    let passed: Vec<Value> = whole_lines(cutover)
        .into_iter()
        .filter(|r| r["event"] == "step_passed")
        .map(|r| r["step"].clone())
        .collect();
    assert_eq!(passed, [0, 1, 2], "a step was repeated or skipped");
    assert_eq!(t.load.stop().await.1, 0);
}
