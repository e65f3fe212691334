//! What the fault run stands up on loopback: the fake Kubernetes API
//! server holding the split ConfigMap, two blue and two green sample
//! backends, three gateway replicas sharing that store, the load balancer
//! in front of them, the plan, and the journal's small file system.

use crate::ring::Ring;
use e2e::fake_kube::FakeApiServer;
use e2e::tmpfs::Tmpfs;
use e2e::{pinned_config, Backend, Gateway};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const NAMESPACE: &str = "cutover";
pub const CONFIGMAP: &str = "gateway-split";
pub const REPLICAS: usize = 3;
/// The plan's convergence timeout: the longest the replicas may disagree.
pub const CONVERGENCE_TIMEOUT: Duration = Duration::from_secs(30);
/// Steps of the plan, in percent of traffic on green.
pub const STEPS: [f64; 6] = [1.0, 5.0, 25.0, 50.0, 75.0, 100.0];

pub struct Topology {
    pub api: Arc<tokio::sync::Mutex<FakeApiServer>>,
    /// Kept running for the whole run (blue is never disturbed).
    pub _blue: Vec<Backend>,
    pub green: Vec<Arc<Mutex<Backend>>>,
    pub replicas: Vec<Arc<Mutex<Gateway>>>,
    pub ring: Arc<Ring>,
    pub work: tempfile::TempDir,
    /// Where the journal lives: a small tmpfs (root), else `work`.
    pub journal_fs: Option<Tmpfs>,
    pub plan: PathBuf,
}

impl Topology {
    /// Everything up and every replica ready; the plan's holds add up to
    /// about `duration`.
    pub async fn start(duration: Duration) -> Topology {
        let work = tempfile::tempdir().unwrap();
        let api = FakeApiServer::start().await;
        let document = serde_json::json!({"generation": 1, "routes": {"web": 0.0}});
        api.put_configmap(
            NAMESPACE,
            CONFIGMAP,
            BTreeMap::from([("split.json".to_owned(), document.to_string())]),
        );
        let kubeconfig = work.path().join("kubeconfig");
        std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();

        let blue = vec![Backend::start("blue-1"), Backend::start("blue-2")];
        let green = vec![Backend::start("green-1"), Backend::start("green-2")];
        let config = gateway_config(&blue, &green, &kubeconfig);
        let replicas: Vec<_> = (0..REPLICAS)
            .map(|_| Arc::new(Mutex::new(Gateway::start(&config))))
            .collect();
        let ring = Arc::new(Ring::new(REPLICAS));
        for (i, replica) in replicas.iter().enumerate() {
            let (admin, proxy) = {
                let g = replica.lock().unwrap();
                (g.admin, g.proxy)
            };
            assert!(
                wait_ready(admin, Duration::from_secs(30)).await,
                "replica {i} did not become ready"
            );
            ring.add(i, proxy);
        }
        let load_balancer = crate::ring::serve_load_balancer(ring.clone()).await;

        let journal_fs = Tmpfs::mount("4m");
        if journal_fs.is_none() {
            println!("the journal's disk faults are left out: they need a tmpfs (root)");
        }
        let admin_urls: Vec<String> = replicas
            .iter()
            .map(|r| r.lock().unwrap().admin_url(""))
            .collect();
        let plan = work.path().join("plan.yaml");
        std::fs::write(&plan, plan_yaml(&admin_urls, load_balancer, duration)).unwrap();
        Topology {
            api: Arc::new(tokio::sync::Mutex::new(api)),
            _blue: blue,
            green: green.into_iter().map(|b| Arc::new(Mutex::new(b))).collect(),
            replicas,
            ring,
            work,
            journal_fs,
            plan,
        }
    }

    pub fn journal(&self) -> PathBuf {
        let dir = match &self.journal_fs {
            Some(fs) => fs.path(),
            None => self.work.path(),
        };
        dir.join("journal.jsonl")
    }

    pub fn admin_urls(&self) -> Vec<String> {
        self.replicas
            .iter()
            .map(|r| r.lock().unwrap().admin_url(""))
            .collect()
    }
}

/// The tests' one-route config (pins honoured from loopback), sticky on
/// `x-client-id`, one worker thread, sharing the ConfigMap store.
fn gateway_config(blue: &[Backend], green: &[Backend], kubeconfig: &std::path::Path) -> String {
    let (blue, green): (Vec<&Backend>, Vec<&Backend>) =
        (blue.iter().collect(), green.iter().collect());
    pinned_config(&blue, &green, "    stickiness: {header: x-client-id}")
        .replace("threads: 2", "threads: 1")
        .replace(
            "routes:",
            &format!(
                "state: {{store: kubernetes, namespace: {NAMESPACE}, name: {CONFIGMAP}, kubeconfig: \"{}\"}}\nroutes:",
                kubeconfig.display()
            ),
        )
}

/// The plan: six steps whose holds add up to about `duration`, gates on
/// the gateways' own metrics, a smoke check through the load balancer.
fn plan_yaml(
    admin_urls: &[String],
    load_balancer: std::net::SocketAddr,
    duration: Duration,
) -> String {
    let hold = (duration / STEPS.len() as u32).max(Duration::from_secs(5));
    let steps: Vec<String> = STEPS
        .iter()
        .map(|p| format!("{{green_percent: {p}, hold: {}ms}}", hold.as_millis()))
        .collect();
    format!(
        r#"fleet:
  admin_urls: [{}]
  proxy_url: "http://{load_balancer}"
routes: [web]
steps: [{}]
gates: {{interval: 1s, window: 5s, min_requests: 5, success_rate: 0.95, p99_latency: 2s, failure_limit: 3}}
smoke:
  - {{name: echo, path: /echo, expect_status: 200, expect_body: green}}
convergence_timeout: {}s
lock_ttl: 30s
"#,
        e2e::quoted_list(admin_urls),
        steps.join(", "),
        CONVERGENCE_TIMEOUT.as_secs()
    )
}

/// Polls `/readyz` until it answers 200, or `timeout` passes.
pub async fn wait_ready(admin: std::net::SocketAddr, timeout: Duration) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("http://{admin}/readyz")).send().await {
            if r.status() == 200 {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
