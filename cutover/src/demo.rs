//! `cutover demo`: the whole story on loopback. Two sample backends (blue
//! on :8081, green on :8082), the gateway in front (:8080, admin :9090),
//! client load, and `deploy/examples/plan.yaml` run to 100% — or, with
//! `--break-green`, rolled back by the gates. Ends with a summary table.

use crate::engine::Engine;
use crate::journal::{self, Event};
use crate::outcome::Outcome;
use crate::output::Output;
use crate::plan::Plan;
use comfy_table::Table;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GATEWAY_CONFIG: &str = include_str!("../../deploy/examples/gateway.yaml");
const PLAN: &str = include_str!("../../deploy/examples/plan.yaml");
const TOKEN: &str = "demo-token";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Breakage {
    /// Green answers 20% of requests with 500.
    Errors,
    /// Green answers 800 ms late.
    Latency,
}

/// Children killed when the demo ends, however it ends.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    anyhow::ensure!(
        path.exists(),
        "{} not found next to {}: build everything with `cargo build --workspace --bins`",
        name,
        exe.display()
    );
    Ok(path)
}

fn wait_listening(addr: &str, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(addr).is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what} did not start listening on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn ensure_free(addr: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::net::TcpStream::connect(addr).is_err(),
        "{addr} is already in use: the demo needs 127.0.0.1 ports 8080, 8081, 8082 and 9090"
    );
    Ok(())
}

pub async fn run(break_green: Option<Breakage>, out: Output) -> anyhow::Result<u8> {
    for addr in [
        "127.0.0.1:8080",
        "127.0.0.1:8081",
        "127.0.0.1:8082",
        "127.0.0.1:9090",
    ] {
        ensure_free(addr)?;
    }
    let work = tempfile_dir()?;
    let backend = sibling_binary("sample-backend")?;
    let mut children = Processes(Vec::new());
    let quiet = || Stdio::null();
    children.0.push(
        Command::new(&backend)
            .args(["--listen", "127.0.0.1:8081", "--name", "blue"])
            .stdout(quiet())
            .stderr(quiet())
            .spawn()?,
    );
    let mut green = Command::new(&backend);
    green.args(["--listen", "127.0.0.1:8082", "--name", "green"]);
    match break_green {
        Some(Breakage::Errors) => green.args(["--error-rate", "0.2"]),
        Some(Breakage::Latency) => green.args(["--latency-ms", "800"]),
        None => &mut green,
    };
    children
        .0
        .push(green.stdout(quiet()).stderr(quiet()).spawn()?);
    let config = work.join("gateway.yaml");
    std::fs::write(
        &config,
        GATEWAY_CONFIG.replace(
            "target/gateway-state.json",
            &work.join("state.json").display().to_string(),
        ),
    )?;
    children.0.push(
        Command::new(sibling_binary("gateway")?)
            .arg("--config")
            .arg(&config)
            .env("GATEWAY_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(quiet())
            .stderr(std::fs::File::create(work.join("gateway.log"))?)
            .spawn()?,
    );
    for (addr, what) in [
        ("127.0.0.1:8081", "blue"),
        ("127.0.0.1:8082", "green"),
        ("127.0.0.1:8080", "gateway"),
        ("127.0.0.1:9090", "gateway admin"),
    ] {
        wait_listening(addr, what)?;
    }
    out.note(&format!(
        "demo: blue :8081, green :8082{}, gateway :8080 (admin :9090, token {TOKEN}); driving load…",
        match break_green {
            Some(Breakage::Errors) => " (answering 20% errors)",
            Some(Breakage::Latency) => " (answering 800 ms late)",
            None => "",
        }
    ));

    let load = ClientLoad::start("http://127.0.0.1:8080/", 4);
    let mut plan: Plan = serde_yaml_ng::from_str(PLAN)?;
    // The demo's own token, whatever GATEWAY_ADMIN_TOKEN holds here.
    std::fs::write(work.join("token"), TOKEN)?;
    let fleet = plan.fleet.as_mut().expect("the demo plan has a fleet");
    fleet.token_env = "CUTOVER_DEMO_TOKEN_FROM_FILE".into();
    fleet.token_file = Some(work.join("token"));
    let journal_path = work.join("journal.jsonl");
    let outcome = Engine::run(
        plan,
        Path::new("deploy/examples/plan.yaml"),
        &journal_path,
        out,
        Default::default(),
    )
    .await?;
    let (ok, failed) = load.stop().await;
    print_summary(&journal_path, &outcome, ok, failed)?;
    drop(children);
    let _ = std::fs::remove_dir_all(&work);
    Ok(outcome.exit_code())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cutover-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The steps as the journal saw them, and what clients saw.
fn print_summary(
    journal_path: &Path,
    outcome: &Outcome,
    ok: u64,
    failed: u64,
) -> anyhow::Result<()> {
    let records = journal::read_all(journal_path)?;
    let mut table = Table::new();
    table.set_header([
        "step",
        "green %",
        "result",
        "blue rps",
        "green rps",
        "green success",
        "green p99",
    ]);
    let mut last_gate: Option<(usize, f64, crate::figures::Figures)> = None;
    let fmt_row = |step: usize, pct: f64, result: String, f: &crate::figures::Figures| {
        vec![
            (step + 1).to_string(),
            pct.to_string(),
            result,
            format!("{:.1}", f.blue.requests_per_second),
            format!("{:.1}", f.green.requests_per_second),
            f.green
                .success_rate
                .map_or("-".into(), |s| format!("{:.2}%", s * 100.0)),
            f.green
                .p99_seconds
                .map_or("-".into(), |p| format!("{:.0} ms", p * 1000.0)),
        ]
    };
    for r in &records {
        match &r.event {
            Event::Gate {
                step,
                green_percent,
                figures,
                ..
            } => last_gate = Some((*step, *green_percent, figures.clone())),
            Event::StepPassed {
                step,
                green_percent,
                figures,
            } => {
                table.add_row(fmt_row(*step, *green_percent, "passed".into(), figures));
            }
            Event::RolledBack {
                step,
                to_percent,
                reason,
                figures,
            } => {
                let f = figures
                    .clone()
                    .or_else(|| last_gate.clone().map(|g| g.2))
                    .unwrap_or_default();
                let pct = last_gate.as_ref().map_or(0.0, |g| g.1);
                table.add_row(fmt_row(
                    *step,
                    pct,
                    format!("ROLLED BACK to {to_percent}%: {reason}"),
                    &f,
                ));
            }
            _ => {}
        }
    }
    println!("{table}");
    let verdict = match outcome {
        Outcome::Completed => "completed: all traffic on green".to_owned(),
        Outcome::RolledBack(r) => format!("rolled back: {r}"),
        Outcome::Stopped(r) | Outcome::Signalled(r) | Outcome::Waiting(r) => r.clone(),
    };
    println!("outcome: {verdict}");
    println!("client requests: {ok} answered, {failed} failed");
    Ok(())
}

/// The demo's clients: a few keep-alive loops, each request a new client.
struct ClientLoad {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ClientLoad {
    fn start(url: &'static str, workers: usize) -> ClientLoad {
        let (stop, ok, failed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let tasks = (0..workers)
            .map(|_| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    while !stop.load(Ordering::Relaxed) {
                        match client.get(url).send().await {
                            Ok(r) if r.status().is_success() => ok.fetch_add(1, Ordering::Relaxed),
                            _ => failed.fetch_add(1, Ordering::Relaxed),
                        };
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
            })
            .collect();
        ClientLoad {
            stop,
            ok,
            failed,
            tasks,
        }
    }

    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
