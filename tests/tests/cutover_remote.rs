//! Any terminal drives any run: a run whose journal lives in directory A
//! (as an in-cluster Job's volume) is watched, paused, resumed, approved,
//! aborted and switched by emergency from directory B, which holds only
//! the plan, through the plan's fleet. Every command is journaled in A with
//! the operator who gave it.

use e2e::fake_kube::FakeApiServer;
use e2e::{pinned_config, Admin, Backend, Cutover, Gateway, Load};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const NS: &str = "cutover";

/// `cutover` run by `user` in a directory of its own, with the kubeconfig
/// that reaches the fake API server.
struct Terminal {
    cutover: Cutover,
    kubeconfig: std::path::PathBuf,
    user: &'static str,
}

impl Terminal {
    fn new(dir: &std::path::Path, kubeconfig: &std::path::Path, user: &'static str) -> Terminal {
        Terminal {
            cutover: Cutover::new(dir),
            kubeconfig: kubeconfig.to_owned(),
            user,
        }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = self.cutover.command(args);
        c.env("KUBECONFIG", &self.kubeconfig).env("USER", self.user);
        c
    }

    /// Who this terminal's commands are journaled as.
    fn actor(&self) -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        format!("{}@{}", self.user, host.trim())
    }

    async fn output(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command(args).output().await.unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn emergency(&self, to: &str, target: [&str; 2], reason: &str) -> (i32, String, String) {
        self.output(&e2e::emergency_args(to, target, reason)).await
    }

    /// `status --plan -o json` until `check` holds (20 s at most).
    async fn status_until(&self, plan: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, stdout, stderr) = self
                .output(&["status", "--plan", plan, "--output", "json"])
                .await;
            // 0 completed, 1 rolled back, 3 stopped, 4 not ended: a
            // document (3 without one: nothing published yet).
            if let Ok(doc) = serde_json::from_str::<Value>(&stdout) {
                if check(&doc) {
                    return doc;
                }
                assert!(Instant::now() < deadline, "{what}: last status {doc:#}");
            } else {
                assert!(
                    Instant::now() < deadline,
                    "{what}: status exit {code}: {stderr}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn control_records<'a>(records: &'a [Value], command: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["event"] == "control" && r["command"] == command)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kubernetes_fleet_run_is_driven_from_a_directory_without_its_journal() {
    let fake = FakeApiServer::start().await;
    let doc = json!({"generation": 1, "routes": {"web": 0.0}});
    fake.put_configmap(
        NS,
        "gateway-split",
        BTreeMap::from([("split.json".to_owned(), doc.to_string())]),
    );
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let kubeconfig = b.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig()).unwrap();
    // Two replicas behind the headless Service: one admin port, each on
    // its own address, sharing the split through the ConfigMap.
    let admin_port = e2e::free_port();
    let config = pinned_config(&[&blue], &[&green], "").replace(
        "routes:",
        &format!(
            "state: {{store: kubernetes, namespace: {NS}, name: gateway-split, kubeconfig: \"{}\"}}\nroutes:",
            kubeconfig.display()
        ),
    );
    let replicas: Vec<Gateway> = ["127.0.0.2", "127.0.0.3"]
        .iter()
        .map(|ip| {
            let admin: SocketAddr = format!("{ip}:{admin_port}").parse().unwrap();
            Gateway::start_with_admin(tempfile::tempdir().unwrap(), &config, admin)
        })
        .collect();
    fake.put_endpoints(NS, "gateway-admin", &["127.0.0.2", "127.0.0.3"]);
    let plan_text = format!(
        r#"fleet:
  kubernetes: {{namespace: {NS}, service: gateway-admin, admin_port: {admin_port}}}
  proxy_url: "http://{proxy}"
routes: [web]
steps:
  - {{green_percent: 10, hold: 60s, approval: true}}
  - {{green_percent: 100, hold: 1s}}
gates: {{interval: 500ms, window: 3s, min_requests: 5, success_rate: 0.95, p99_latency: 2s}}
smoke:
  - {{name: echo, path: /echo, expect_status: 200, expect_body: green}}
convergence_timeout: 5s
lock_ttl: 10s
"#,
        proxy = replicas[0].proxy
    );
    // The plan in both places (a ConfigMap for the Job, a file for the
    // operator); the journal only in A.
    for dir in [a.path(), b.path()] {
        std::fs::write(dir.join("plan.yaml"), &plan_text).unwrap();
    }
    let job = Terminal::new(a.path(), &kubeconfig, "cutover-job");
    let laptop = Terminal::new(b.path(), &kubeconfig, "ana");
    let plan = b.path().join("plan.yaml").display().to_string();
    let load = Load::start(replicas[0].url("/"), 2, Duration::from_millis(10));

    let a_plan = a.path().join("plan.yaml").display().to_string();
    let mut run = job.command(&["run", &a_plan]).spawn().unwrap();

    // status from B: the run's own account, through the fleet. The first
    // step waits for approval: approve from B.
    let doc = laptop
        .status_until(&plan, "waiting for approval", |d| {
            d["last_event"]["event"] == "awaiting_approval"
        })
        .await;
    assert_eq!(doc["state"], "paused", "{doc:#}");
    assert_eq!(doc["source"]["alive"], true, "{doc:#}");
    assert_eq!(
        doc["journal"],
        job.cutover.journal().display().to_string(),
        "status names where the journal is"
    );
    let (code, _, stderr) = laptop
        .output(&[
            "approve",
            "--plan",
            &plan,
            "--reason",
            "change 4711 approved",
        ])
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("taken by the run"), "{stderr}");
    laptop
        .status_until(&plan, "the first step holding", |d| {
            d["state"] == "running" && d["step"] == 1 && d["green_percent"] == 10.0
        })
        .await;

    // pause and resume from B.
    let (code, _, stderr) = laptop
        .output(&["pause", "--plan", &plan, "--reason", "checking dashboards"])
        .await;
    assert_eq!(code, 0, "{stderr}");
    job.cutover
        .wait_for("paused", |r| r["event"] == "paused")
        .await;
    laptop
        .status_until(&plan, "paused in status", |d| d["state"] == "paused")
        .await;
    let (code, _, stderr) = laptop.output(&["resume", "--plan", &plan]).await;
    assert_eq!(code, 0, "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while job
        .cutover
        .records()
        .iter()
        .filter(|r| r["event"] == "resumed")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "the pause was not resumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // abort from B: the run rolls back.
    let (code, _, stderr) = laptop
        .output(&["abort", "--plan", &plan, "--reason", "p99 regression"])
        .await;
    assert_eq!(code, 0, "{stderr}");
    let status = run.wait().await.unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "an aborted run exits 1 (rolled back)"
    );

    let records = job.cutover.records();
    let me = laptop.actor();
    for (command, reason) in [
        ("pause", Some("checking dashboards")),
        ("resume", None),
        ("approve", Some("change 4711 approved")),
        ("abort", Some("p99 regression")),
    ] {
        let found = control_records(&records, command);
        assert_eq!(
            found.len(),
            1,
            "{command} journaled once in A: {records:#?}"
        );
        assert_eq!(found[0]["actor"], me, "{command} names who sent it");
        assert_eq!(found[0]["reason"].as_str(), reason, "{command}");
    }
    let rolled = records
        .iter()
        .find(|r| r["event"] == "rolled_back")
        .unwrap();
    assert!(
        rolled["reason"]
            .as_str()
            .unwrap()
            .contains("p99 regression"),
        "{rolled}"
    );
    let doc = laptop
        .status_until(&plan, "the rollback in status", |d| d["ended"] == true)
        .await;
    assert_eq!(doc["state"], "rolled_back");
    assert!(!laptop.cutover.journal().exists(), "B never had a journal");

    // With no live run, B's pause is refused (3) and changes nothing.
    let (code, _, stderr) = laptop.output(&["pause", "--plan", &plan]).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("no live run"), "{stderr}");

    // A second run; an emergency from B switches the fleet found through
    // the Service, and the run journals it in A and stops.
    let mut run = job.command(&["run", &a_plan]).spawn().unwrap();
    job.cutover
        .wait_for("second run applied", |r| {
            r["event"] == "applied" && job_runs(&job) == 2
        })
        .await;
    let (code, _, stderr) = laptop
        .emergency("green", ["--plan", &plan], "blue node image broken")
        .await;
    assert_eq!(code, 0, "{stderr}");
    let status = run.wait().await.unwrap();
    assert_eq!(status.code(), Some(3), "the run stopped (exit 3)");
    for gw in &replicas {
        let state = Admin::new(gw).state().await;
        assert_eq!(state["routes"]["web"]["green_percent"], 100.0, "{state}");
    }
    let records = job.cutover.records();
    let emergency: Vec<_> = records
        .iter()
        .filter(|r| r["event"] == "emergency")
        .collect();
    assert_eq!(emergency.len(), 1, "journaled once in A: {records:#?}");
    assert_eq!(emergency[0]["actor"], me);
    assert_eq!(emergency[0]["to"], "green");
    assert_eq!(records.last().unwrap()["event"], "stopped");
    let (_, failed) = load.stop().await;
    assert_eq!(failed, 0, "no client request failed");
}

/// The runs journaled in A so far.
fn job_runs(job: &Terminal) -> usize {
    job.cutover
        .records()
        .iter()
        .filter(|r| r["event"] == "started")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_staged_run_is_approved_and_switched_from_a_directory_without_its_journal() {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let config = pinned_config(&[&blue], &[&green], "");
    let (staging, prod) = (Gateway::start(&config), Gateway::start(&config));
    let fleet = |g: &Gateway| {
        format!(
            "{{admin_urls: [\"{}\"], proxy_url: \"http://{}\"}}",
            g.admin_url(""),
            g.proxy
        )
    };
    let plan_text = format!(
        r#"routes: [web]
stages:
  - name: staging
    fleet: {staging}
    steps: [{{green_percent: 100, hold: 1s}}]
  - name: prod
    fleet: {prod}
    approval: true
    steps: [{{green_percent: 50, hold: 60s}}, {{green_percent: 100, hold: 1s}}]
gates: {{interval: 500ms, window: 3s, min_requests: 5, success_rate: 0.95, p99_latency: 2s}}
smoke:
  - {{name: echo, path: /echo, expect_status: 200, expect_body: green}}
convergence_timeout: 3s
lock_ttl: 10s
"#,
        staging = fleet(&staging),
        prod = fleet(&prod),
    );
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [a.path(), b.path()] {
        std::fs::write(dir.join("plan.yaml"), &plan_text).unwrap();
    }
    let kubeconfig = b.path().join("no-kubeconfig");
    let job = Terminal::new(a.path(), &kubeconfig, "cutover-job");
    let laptop = Terminal::new(b.path(), &kubeconfig, "ben");
    let plan = b.path().join("plan.yaml").display().to_string();
    let loads = [&staging, &prod].map(|g| Load::start(g.url("/"), 2, Duration::from_millis(10)));
    let a_plan = a.path().join("plan.yaml").display().to_string();
    let mut run = job.command(&["run", &a_plan]).spawn().unwrap();

    // B sees prod waiting for approval (found on prod's fleet), approves.
    let doc = laptop
        .status_until(&plan, "prod awaiting approval", |d| {
            d["last_event"]["event"] == "awaiting_approval"
        })
        .await;
    assert_eq!(doc["source"]["fleet_of_stage"], 2, "{doc:#}");
    assert_eq!(doc["stages"][0]["state"], "done", "{doc:#}");
    let (code, _, stderr) = laptop.output(&["approve", "--plan", &plan]).await;
    assert_eq!(code, 0, "{stderr}");
    laptop
        .status_until(&plan, "prod at 50%", |d| {
            d["stages"][1]["state"] == "running" && d["green_percent"] == 50.0
        })
        .await;

    // An emergency from B switches both stages' fleets; the run stops.
    let (code, _, stderr) = laptop.emergency("blue", ["--plan", &plan], "drill").await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(run.wait().await.unwrap().code(), Some(3), "the run stopped");
    for gw in [&staging, &prod] {
        let state = Admin::new(gw).state().await;
        assert_eq!(state["routes"]["web"]["green_percent"], 0.0, "{state}");
    }
    let records = job.cutover.records();
    let approve = control_records(&records, "approve");
    assert_eq!(approve.len(), 1, "{records:#?}");
    assert_eq!(approve[0]["actor"], laptop.actor());
    let emergency: Vec<_> = records
        .iter()
        .filter(|r| r["event"] == "emergency")
        .collect();
    assert_eq!(emergency.len(), 1, "{records:#?}");
    assert_eq!(emergency[0]["actor"], laptop.actor());
    assert_eq!(records.last().unwrap()["event"], "stopped");
    for load in loads {
        assert_eq!(load.stop().await.1, 0, "no client request failed");
    }
}
