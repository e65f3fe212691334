//! `fault-run`: one whole cutover under client load against three gateway
//! replicas sharing the Kubernetes store (the fake API server), with
//! faults injected at seeded random points: replicas killed, the API
//! server down, green endpoints down, the engine killed and resumed, its
//! journal's disk full and read-only, a second operator. It reports what
//! the clients, the store, the journal and the replicas saw, checks the
//! promises (no step repeated or skipped, no record lost, no unexplained
//! client failure, no divergence beyond the convergence timeout, the run
//! completed) and exits 1 when any broke.
//!
//! `tests/faults/run.sh` builds the binaries and runs it; see
//! `tests/faults/RESULTS.md` for a long run.

mod inject;
mod load;
mod operator;
mod report;
mod ring;
mod schedule;
mod topology;
mod watch;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Run a whole cutover under load while faults are injected, and check
/// that nothing was lost.
///
/// Examples:
///   fault-run --seed 7                         (the short form CI runs: 72 s nominal)
///   fault-run --duration 20m --report run.json (a long run)
#[derive(Parser)]
#[command(verbatim_doc_comment)]
struct Args {
    /// Nominal length of the cutover: the plan's holds add up to about
    /// this, and the faults fall inside it. Faults make the run longer.
    #[arg(long, default_value = "72s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Seed of the fault schedule; random when absent (printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Client workers (each sends a request every 20 ms).
    #[arg(long, default_value_t = 4)]
    clients: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(rand::random);
    let topology = Arc::new(topology::Topology::start(args.duration).await);
    let schedule = schedule::Schedule::draw(seed, args.duration, topology.journal_fs.is_some());
    println!(
        "fault run: seed {seed}, nominal {} (rerun with --seed {seed} --duration {}); work dir {}",
        humantime::format_duration(args.duration),
        humantime::format_duration(args.duration),
        topology.work.path().display()
    );
    for planned in schedule.all() {
        println!(
            "  planned at {:>6.1}s: {}",
            planned.at_ms as f64 / 1000.0,
            serde_json::to_string(&planned.fault).unwrap()
        );
    }

    let injector = Arc::new(inject::Injector {
        topology: topology.clone(),
        t0: Instant::now(),
        log: Mutex::default(),
        green_kills: Mutex::default(),
    });
    let load = load::Load::start(
        topology.ring.clone(),
        args.clients,
        Duration::from_millis(20),
    );
    let watch = watch::Watch::start(topology.ring.clone(), topology.admin_urls());
    let finished = Arc::new(AtomicBool::new(false));
    let lanes: Vec<_> = [
        schedule.replicas.clone(),
        schedule.api_server.clone(),
        schedule.green.clone(),
    ]
    .into_iter()
    .map(|lane| tokio::spawn(injector.clone().lane(lane, finished.clone())))
    .collect();

    let mut operator = operator::Operator::new(injector.clone());
    operator.start_run();
    let limit = args.duration * 3 + Duration::from_secs(300);
    let exit_code = tokio::select! {
        code = operator.lane(schedule.operator.clone(), limit, finished.clone()) => code,
        _ = tokio::signal::ctrl_c() => {
            // Returning drops the topology: every process it started is
            // killed and the journal's tmpfs unmounted.
            println!("interrupted: stopping everything");
            return ExitCode::from(130);
        }
    };
    for lane in lanes {
        let _ = lane.await;
    }
    let seen = load.stop().await;
    let divergence = watch.stop().await;

    let report = gather(
        &topology,
        &injector,
        &operator,
        &schedule,
        seed,
        args.duration,
        exit_code,
        seen,
        divergence,
    )
    .await;
    report.print();
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
        println!("report written to {}", path.display());
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        print_logs(&topology);
        ExitCode::from(1)
    }
}

/// The ends of the engine's and the replicas' logs, for a failed run.
fn print_logs(topology: &topology::Topology) {
    let tail = |path: &std::path::Path, keep: &dyn Fn(&str) -> bool| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
        println!("--- {} (last lines)", path.display());
        for line in &lines[lines.len().saturating_sub(25)..] {
            println!("{line}");
        }
    };
    let mut engine_logs: Vec<PathBuf> = std::fs::read_dir(topology.work.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "stderr"))
        .collect();
    engine_logs.sort();
    for log in engine_logs {
        tail(&log, &|_| true);
    }
    for replica in &topology.replicas {
        let log = replica.lock().unwrap().log.clone();
        tail(&log, &|l| l.contains("WARN") || l.contains("ERROR"));
    }
}

#[allow(clippy::too_many_arguments)]
async fn gather(
    topology: &topology::Topology,
    injector: &inject::Injector,
    operator: &operator::Operator,
    schedule: &schedule::Schedule,
    seed: u64,
    duration: Duration,
    exit_code: Option<i32>,
    seen: load::Seen,
    divergence: watch::Divergence,
) -> report::Report {
    let green_kills = injector.green_kills.lock().unwrap().clone();
    let clients = report::clients(&seen, &topology.ring.kills(), &green_kills, injector.t0);
    let lines = std::fs::read_to_string(topology.journal()).unwrap_or_default();
    let (journal, records) = report::journal(&lines, &operator.printed.lock().unwrap());
    let versions = topology
        .api
        .lock()
        .await
        .versions(topology::NAMESPACE, topology::CONFIGMAP);
    let client = reqwest::Client::new();
    let mut replicas = Vec::new();
    for url in topology.admin_urls() {
        if let Ok(r) = client.get(format!("{url}/v1/state")).send().await {
            if let Ok(state) = r.json::<serde_json::Value>().await {
                replicas.push(serde_json::json!({
                    "generation": state["generation"],
                    "served_generation": state["served_generation"],
                    "green_percent": state["routes"]["web"]["green_percent"],
                }));
            }
        }
    }
    let mut report = report::Report {
        seed,
        nominal_seconds: duration.as_secs(),
        wall_seconds: injector.t0.elapsed().as_secs_f64(),
        planned: schedule.all().into_iter().cloned().collect(),
        injected: injector.log.lock().unwrap().clone(),
        clients,
        steps: report::steps(&versions, &records),
        journal,
        divergence: report::divergence(&divergence),
        final_state: report::FinalState {
            exit_code,
            last_event: records
                .last()
                .and_then(|r| r["event"].as_str())
                .unwrap_or("none")
                .to_owned(),
            reason: records
                .last()
                .and_then(|r| r["reason"].as_str())
                .map(str::to_owned),
            processes: operator.processes.clone(),
            replicas,
        },
        checks: Vec::new(),
    };
    report.judge();
    report
}
