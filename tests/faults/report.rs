//! The run's report: what the clients saw (each failure explained by a
//! fault or not), which splits reached the store and in what order, what
//! the journal kept of what the engine printed, how long replicas
//! disagreed, the final state; and the checks the run must pass.

use crate::inject::Injected;
use crate::load::{Failure, Seen};
use crate::ring::KillWindow;
use crate::schedule::Planned;
use crate::topology::{CONVERGENCE_TIMEOUT, STEPS};
use crate::watch::Divergence;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[derive(Serialize)]
pub struct Report {
    pub seed: u64,
    pub nominal_seconds: u64,
    pub wall_seconds: f64,
    pub planned: Vec<Planned>,
    pub injected: Vec<Injected>,
    pub clients: Clients,
    pub steps: Steps,
    pub journal: JournalTally,
    pub divergence: DivergenceTally,
    pub final_state: FinalState,
    pub checks: Vec<Check>,
}

#[derive(Serialize)]
pub struct Clients {
    pub sent: u64,
    pub answered: u64,
    pub failed: u64,
    /// In flight on a replica as it was killed, or on a green endpoint as it died.
    pub failed_expected: u64,
    pub failed_unexpected: u64,
    /// The first unexpected failures, with their time from the start.
    pub unexpected: Vec<String>,
}

#[derive(Serialize)]
pub struct Steps {
    pub planned: Vec<f64>,
    /// Green percent of every new generation the store received, in order.
    pub written: Vec<f64>,
    pub applied: usize,
    pub repeated: usize,
    pub skipped: usize,
    /// Writes that are no step of the plan (a rollback would be one).
    pub unplanned: Vec<f64>,
    /// `step_passed` records in the journal, in order.
    pub passed: Vec<u64>,
    /// `applied` records in the journal, in order: a step journaled again
    /// by a `resume` whose fleet already served it (no new write).
    pub journaled_applied: Vec<u64>,
}

#[derive(Serialize)]
pub struct JournalTally {
    pub records: usize,
    pub printed: usize,
    /// Printed by an engine process but not in the journal.
    pub lost: usize,
    /// Lines of the journal that are not a whole record.
    pub unreadable: usize,
}

#[derive(Serialize)]
pub struct DivergenceTally {
    pub polls: u64,
    pub stretches: usize,
    pub longest_seconds: f64,
    pub over_timeout: usize,
    pub timeout_seconds: u64,
}

#[derive(Serialize)]
pub struct FinalState {
    pub exit_code: Option<i32>,
    pub last_event: String,
    /// Why the run ended, when the last record says (a rollback, a stop).
    pub reason: Option<String>,
    pub processes: Vec<(String, Option<i32>)>,
    /// Each replica: generation, served generation, green percent.
    pub replicas: Vec<Value>,
}

#[derive(Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// Whether a failed request is explained by a fault.
pub fn expected(f: &Failure, kills: &[KillWindow], green_kills: &[Instant]) -> bool {
    let grace = Duration::from_millis(50);
    kills
        .iter()
        .any(|k| k.replica == f.replica && f.started <= k.removed && f.ended + grace >= k.killed)
        || green_kills
            .iter()
            .any(|&g| f.started <= g + grace && f.ended + grace >= g)
}

pub fn clients(seen: &Seen, kills: &[KillWindow], green_kills: &[Instant], t0: Instant) -> Clients {
    let (explained, unexplained): (Vec<&Failure>, Vec<&Failure>) = seen
        .failures
        .iter()
        .partition(|f| expected(f, kills, green_kills));
    Clients {
        sent: seen.sent,
        answered: seen.answered,
        failed: seen.failures.len() as u64,
        failed_expected: explained.len() as u64,
        failed_unexpected: unexplained.len() as u64,
        unexpected: unexplained
            .iter()
            .take(20)
            .map(|f| {
                format!(
                    "{:.3}s replica {}: {}",
                    f.started.duration_since(t0).as_secs_f64(),
                    f.replica,
                    f.what
                )
            })
            .collect(),
    }
}

/// The store's versions → the splits written, judged against the plan.
pub fn steps(versions: &[Value], journal: &[Value]) -> Steps {
    let mut written = Vec::new();
    let mut generation = 0;
    for version in versions {
        let Some(doc) = version["data"]["split.json"]
            .as_str()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
        else {
            continue;
        };
        let g = doc["generation"].as_u64().unwrap_or(0);
        if g > generation {
            if generation > 0 {
                written.push(doc["routes"]["web"].as_f64().unwrap_or(-1.0));
            }
            generation = g;
        }
    }
    let same = |a: f64, b: f64| (a - b).abs() < 1e-9;
    let (mut next, mut applied, mut repeated, mut skipped) = (0, 0, 0, 0);
    let mut unplanned = Vec::new();
    for &w in &written {
        if let Some(at) = STEPS[next..].iter().position(|&s| same(s, w)) {
            skipped += at;
            applied += 1;
            next += at + 1;
        } else if STEPS[..next].iter().any(|&s| same(s, w)) {
            repeated += 1;
        } else {
            unplanned.push(w);
        }
    }
    skipped += STEPS.len() - next;
    Steps {
        planned: STEPS.to_vec(),
        written,
        applied,
        repeated,
        skipped,
        unplanned,
        passed: steps_of(journal, "step_passed"),
        journaled_applied: steps_of(journal, "applied"),
    }
}

fn steps_of(journal: &[Value], event: &str) -> Vec<u64> {
    journal
        .iter()
        .filter(|r| r["event"] == event)
        .filter_map(|r| r["step"].as_u64())
        .collect()
}

/// The journal's lines against what the engine processes printed.
pub fn journal(lines: &str, printed: &[String]) -> (JournalTally, Vec<Value>) {
    let mut records = Vec::new();
    let mut unreadable = 0;
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => records.push(v),
            Err(_) => unreadable += 1,
        }
    }
    let kept: HashSet<String> = records.iter().map(|r| r.to_string()).collect();
    let printed: Vec<Value> = printed
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let lost = printed
        .iter()
        .filter(|p| !kept.contains(&p.to_string()))
        .count();
    (
        JournalTally {
            records: records.len(),
            printed: printed.len(),
            lost,
            unreadable,
        },
        records,
    )
}

pub fn divergence(d: &Divergence) -> DivergenceTally {
    DivergenceTally {
        polls: d.polls,
        stretches: d.stretches.len(),
        longest_seconds: d.longest().as_secs_f64(),
        over_timeout: d
            .stretches
            .iter()
            .filter(|s| **s >= CONVERGENCE_TIMEOUT)
            .count(),
        timeout_seconds: CONVERGENCE_TIMEOUT.as_secs(),
    }
}

impl Report {
    /// The promises of a fault run, each checked.
    pub fn judge(&mut self) {
        let s = &self.steps;
        let c = &self.clients;
        let j = &self.journal;
        let d = &self.divergence;
        let f = &self.final_state;
        let all_steps: Vec<u64> = (0..STEPS.len() as u64).collect();
        let not_ok: Vec<String> = self
            .injected
            .iter()
            .filter(|i| !i.ok)
            .map(|i| format!("{:.1}s: {}", i.at_ms as f64 / 1000.0, i.detail))
            .collect();
        let at_100 = f
            .replicas
            .iter()
            .all(|r| r["green_percent"].as_f64() == Some(100.0));
        self.checks = vec![
            Check {
                name: "the cutover completed",
                passed: f.exit_code == Some(0) && f.last_event == "completed",
                detail: format!(
                    "exit {:?}, last journal event {}",
                    f.exit_code, f.last_event
                ),
            },
            Check {
                name: "every planned fault was injected and went as expected",
                passed: self.injected.len() == self.planned.len() && not_ok.is_empty(),
                detail: format!(
                    "{} of {} injected; not as expected: {not_ok:?}",
                    self.injected.len(),
                    self.planned.len()
                ),
            },
            Check {
                name: "no step repeated or skipped",
                passed: s.repeated == 0
                    && s.skipped == 0
                    && s.unplanned.is_empty()
                    && s.passed == all_steps,
                detail: format!(
                    "written {:?}; repeated {}, skipped {}, unplanned {:?}; passed {:?}",
                    s.written, s.repeated, s.skipped, s.unplanned, s.passed
                ),
            },
            Check {
                name: "no journal record lost",
                passed: j.lost == 0 && j.unreadable == 0 && j.printed > 0,
                detail: format!(
                    "{} printed, {} in the journal, {} lost, {} unreadable lines",
                    j.printed, j.records, j.lost, j.unreadable
                ),
            },
            Check {
                name: "no unexpected client failure",
                passed: c.failed_unexpected == 0 && c.answered > 0,
                detail: format!(
                    "{} sent, {} answered, {} failed ({} expected): {:?}",
                    c.sent, c.answered, c.failed, c.failed_expected, c.unexpected
                ),
            },
            Check {
                name: "replicas never diverged beyond the convergence timeout",
                passed: d.over_timeout == 0,
                detail: format!(
                    "{} stretches, longest {:.2} s (timeout {} s)",
                    d.stretches, d.longest_seconds, d.timeout_seconds
                ),
            },
            Check {
                name: "every replica serves 100% green at the end",
                passed: at_100 && f.replicas.len() == crate::topology::REPLICAS,
                detail: format!("{:?}", f.replicas),
            },
        ];
    }

    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The report for people.
    pub fn print(&self) {
        let c = &self.clients;
        let s = &self.steps;
        let j = &self.journal;
        let d = &self.divergence;
        println!(
            "\n== fault run: seed {}, {:.0} s ==",
            self.seed, self.wall_seconds
        );
        println!(
            "faults injected     {} of {} planned",
            self.injected.len(),
            self.planned.len()
        );
        println!(
            "client requests     {} sent, {} answered, {} failed ({} in a fault's window, {} unexpected)",
            c.sent, c.answered, c.failed, c.failed_expected, c.failed_unexpected
        );
        println!(
            "steps               {} applied, {} repeated, {} skipped; store saw {:?}; journal: applied {:?}, passed {:?}",
            s.applied, s.repeated, s.skipped, s.written, s.journaled_applied, s.passed
        );
        println!(
            "journal             {} records, {} printed by the engine, {} lost, {} unreadable",
            j.records, j.printed, j.lost, j.unreadable
        );
        println!(
            "divergence          {} stretches, longest {:.2} s, {} beyond {} s",
            d.stretches, d.longest_seconds, d.over_timeout, d.timeout_seconds
        );
        println!(
            "final               exit {:?}, last event {}, replicas {:?}",
            self.final_state.exit_code,
            self.final_state.last_event,
            self.final_state
                .replicas
                .iter()
                .map(|r| r["green_percent"].clone())
                .collect::<Vec<_>>()
        );
        for check in &self.checks {
            println!(
                "{} {} — {}",
                if check.passed { "PASS" } else { "FAIL" },
                check.name,
                check.detail
            );
        }
        let passed = self.checks.iter().filter(|c| c.passed).count();
        println!(
            "checks: {passed} passed, {} failed",
            self.checks.len() - passed
        );
    }
}
