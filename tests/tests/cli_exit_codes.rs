//! The exit-code table (docs/exit-codes.md) held by every command: each
//! refusal and failure path run with the real binaries, its code checked.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | failed: rolled back, a check failed |
//! | 2 | bad input, nothing changed |
//! | 3 | refused or stopped: nothing done, or stopped without rollback |
//! | 4 | not ended yet (`status`) |

use e2e::{bin, Backend, Cutover, Topology};
use std::path::Path;
use std::process::{Command, Stdio};

const DONE: i32 = 0;
const FAILED: i32 = 1;
const BAD_INPUT: i32 = 2;
const REFUSED: i32 = 3;
const NOT_ENDED: i32 = 4;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_to_act_on_is_refused_with_3() {
    let dir = tempfile::tempdir().unwrap();
    let cutover = Cutover::new(dir.path());
    // No journal here: nothing to resume, pause, approve, promote, abort.
    for command in ["resume", "pause", "approve", "promote", "abort"] {
        let (code, _, stderr) = cutover
            .output(&[command, "--reason", "testing the table"])
            .await;
        assert_eq!(code, REFUSED, "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("nothing to {command}")),
            "{stderr}"
        );
    }
    let (code, _, stderr) = cutover.output(&["promote", "--full"]).await;
    assert_eq!(code, REFUSED, "{stderr}");
    let (code, _, stderr) = cutover.output(&["status"]).await;
    assert_eq!(code, REFUSED, "status without a run: {stderr}");
    assert!(
        !cutover.journal().exists(),
        "a refused command wrote a journal"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_2_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cutover = Cutover::new(dir.path());
    let bad_plan = write(
        dir.path(),
        "plan.yaml",
        "routes: [web]\nsteps: [{green_percent: 150}]\nunknown_field: 1\n",
    );
    for args in [
        vec!["run", bad_plan.as_str()],
        vec!["plan", "check", bad_plan.as_str()],
        vec!["status", "--timeout", "1s"], // --timeout needs --watch
        vec!["promote", "--fulll"],
        vec!["status", "--output", "xml"],
    ] {
        let (code, _, stderr) = cutover.output(&args).await;
        assert_eq!(code, BAD_INPUT, "{args:?}: {stderr}");
    }
    let (_, _, stderr) = cutover.output(&["run", &bad_plan]).await;
    assert!(
        stderr.contains("unknown_field") && stderr.contains("green_percent"),
        "{stderr}"
    );
    assert!(!cutover.journal().exists());

    let bad_config = write(dir.path(), "gateway.yaml", "listen: [1\n");
    let code = Command::new(bin("gateway"))
        .args(["check", "--config", &bad_config])
        .output()
        .unwrap()
        .status
        .code();
    assert_eq!(code, Some(BAD_INPUT));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_confirmation_is_refused_with_3() {
    let t = Topology::start("");
    let (gw, dir) = (&t.gw, &t.dir);
    // The confirmation reads a terminal: `script` gives the command one,
    // and the operator types "no".
    let line = format!(
        "{} emergency --to green --gateway {} --reason drill --journal {}",
        bin("cutover").display(),
        gw.admin_url(""),
        dir.path().join("journal.jsonl").display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("GATEWAY_ADMIN_TOKEN", e2e::TOKEN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"no\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(REFUSED), "{text}");
    assert!(text.contains("not confirmed; nothing changed"), "{text}");
    assert_eq!(t.split().await, 0.0);
    // Without a terminal and without --yes: the flag is missing (bad input).
    let (code, _, stderr) = t
        .cutover
        .output(&[
            "emergency",
            "--to",
            "green",
            "--gateway",
            &gw.admin_url(""),
            "--reason",
            "drill",
        ])
        .await;
    assert_eq!(code, BAD_INPUT, "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_run_exits_1_and_status_says_so() {
    // "green" that answers as something else: the smoke check fails.
    let t = Topology::with_green(Backend::start("not-it"), "");
    let cutover = &t.cutover;
    let plan = t.plan("[{green_percent: 50, hold: 1s}]", "");
    let (code, _, stderr) = cutover.output(&["run", &plan]).await;
    assert_eq!(code, FAILED, "{stderr}");
    let (code, stdout, _) = cutover.output(&["status", "-o", "json"]).await;
    assert_eq!(code, FAILED, "status of a rolled-back run: {stdout}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["state"], "rolled_back");
    // A rolled-back run has ended: nothing to pause or resume.
    for command in ["pause", "resume"] {
        let (code, _, stderr) = cutover.output(&[command]).await;
        assert_eq!(code, REFUSED, "{command}: {stderr}");
        assert!(stderr.contains("has ended"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_says_how_the_run_stands_and_a_stopped_run_exits_3() {
    let t = Topology::start("");
    let (gw, cutover) = (&t.gw, &t.cutover);
    let plan = t.plan(
        "[{green_percent: 10, hold: 60s}, {green_percent: 100, hold: 60s}]",
        "",
    );
    let mut run = cutover.command(&["run", &plan]).spawn().unwrap();
    cutover
        .wait_for("converged", |r| r["event"] == "converged")
        .await;
    let (code, stdout, _) = cutover.output(&["status", "-o", "yaml"]).await;
    assert_eq!(code, NOT_ENDED, "{stdout}");
    let doc: serde_json::Value = serde_yaml_ng::from_str(&stdout).unwrap();
    assert_eq!(doc["state"], "running");
    let started = std::time::Instant::now();
    let (code, _, stderr) = cutover
        .output(&[
            "status",
            "--watch",
            "--interval",
            "200ms",
            "--timeout",
            "1s",
        ])
        .await;
    assert_eq!(code, NOT_ENDED, "{stderr}");
    assert!(stderr.contains("timed out after 1s"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // A second run while this one holds the lock: refused.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = Cutover::new(elsewhere.path());
    let (code, _, stderr) = other.output(&["run", &plan]).await;
    assert_eq!(code, REFUSED, "{stderr}");
    // An emergency stops the run without rollback: the run exits 3, and
    // so does its status.
    let (code, _, stderr) = cutover
        .emergency("blue", ["--gateway", &gw.admin_url("")], "drill")
        .await;
    assert_eq!(code, DONE, "{stderr}");
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), run.wait())
        .await
        .expect("the run stops after the emergency")
        .unwrap();
    assert_eq!(status.code(), Some(REFUSED));
    let (code, _, _) = cutover.output(&["status"]).await;
    assert_eq!(code, REFUSED, "status of a stopped run");
    assert_eq!(t.split().await, 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completed_run_is_0_everywhere() {
    let t = Topology::start("");
    let (gw, cutover) = (&t.gw, &t.cutover);
    let plan = t.plan("[{green_percent: 100, hold: 1s}]", "");
    let load = t.load();
    let (code, _, stderr) = cutover.output(&["run", &plan]).await;
    load.stop().await;
    assert_eq!(code, DONE, "{stderr}");
    let (code, _, _) = cutover.output(&["status"]).await;
    assert_eq!(code, DONE);
    let (code, _, _) = cutover
        .output(&["status", "--watch", "--timeout", "5s"])
        .await;
    assert_eq!(code, DONE, "a watch of an ended run returns at once");
    let (code, _, stderr) = cutover
        .emergency("blue", ["--gateway", &gw.admin_url("")], "drill")
        .await;
    assert_eq!(code, DONE, "{stderr}");
}

#[test]
fn both_binaries_print_shell_completions() {
    for (binary, shell, words) in [
        (
            "cutover",
            "bash",
            ["promote", "--full", "plan", "--timeout"],
        ),
        (
            "gateway",
            "zsh",
            ["check", "--resolve", "--config", "completions"],
        ),
    ] {
        let out = Command::new(bin(binary))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(DONE),
            "{binary} completions {shell}"
        );
        let script = String::from_utf8_lossy(&out.stdout);
        for word in words {
            assert!(
                script.contains(word),
                "{binary}'s {shell} script lacks {word}"
            );
        }
    }
}
