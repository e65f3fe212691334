//! `cutover report`: a run told from its journal, for a change ticket or a
//! post-mortem: the outcome, the split over time, each colour's figures
//! against the gate thresholds, every decision with who made it and why,
//! and the smoke and preflight results. One model ([`Report`]) rendered as
//! JSON, as Markdown ([`markdown`]) or as one self-contained HTML page
//! ([`html`]). It works for finished, failed and still-running runs.

mod decisions;
pub mod html;
pub mod markdown;
mod svg;

use crate::figures::{ColorFigures, MirrorFigures};
use crate::journal::{self, Event, Record};
use crate::smoke::SmokeResult;
use serde::Serialize;
use serde_json::Value;
use std::time::SystemTime;

pub use decisions::Decision;

#[derive(Debug, Serialize)]
pub struct Report {
    pub journal: String,
    pub plan_file: Option<String>,
    pub outcome: Outcome,
    /// What the gates held green to (from the plan).
    pub thresholds: Option<Thresholds>,
    /// Each stage of a staged plan, with when it began (if it did).
    pub stages: Vec<StageSpan>,
    /// The split each time it changed.
    pub split: Vec<SplitPoint>,
    /// Every gate evaluation's figures.
    pub samples: Vec<Sample>,
    pub decisions: Vec<Decision>,
    pub smoke: Vec<SmokeRun>,
    pub preflight: Vec<PreflightRun>,
    /// Differing mirrored answers journaled by mirror steps (each with
    /// `step`, 1-based).
    pub mirror_samples: Vec<Value>,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    /// `completed`, `rolled_back`, `stopped`, `emergency`, `running`,
    /// `paused` or `waiting` (as `cutover status` says it).
    pub state: String,
    pub ended: bool,
    pub green_percent: f64,
    pub started: String,
    pub started_by: String,
    /// The newest record's time.
    pub last_record: String,
    pub duration_seconds: f64,
    /// One sentence: what happened.
    pub headline: String,
}

#[derive(Debug, Serialize)]
pub struct Thresholds {
    pub success_rate: f64,
    pub p99_seconds: f64,
    pub min_requests: u64,
    pub max_mismatch_rate: f64,
}

#[derive(Debug, Serialize)]
pub struct StageSpan {
    pub name: String,
    pub first_step: usize,
    pub last_step: usize,
    /// Seconds after the run's start the stage began; `None`: not yet.
    pub began_at_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct SplitPoint {
    pub time: String,
    pub seconds: f64,
    pub green_percent: f64,
    /// 1-based; 0 before the first step.
    pub step: usize,
    pub event: String,
}

#[derive(Debug, Serialize)]
pub struct Sample {
    pub time: String,
    pub seconds: f64,
    pub step: usize,
    pub green_percent: f64,
    /// `pass`, `fail` or `inconclusive`.
    pub verdict: String,
    pub blue: ColorFigures,
    pub green: ColorFigures,
    /// A mirror step's comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorFigures>,
}

#[derive(Debug, Serialize)]
pub struct SmokeRun {
    pub time: String,
    /// 1-based: the step the checks came before.
    pub step: usize,
    pub passed: bool,
    pub results: Vec<SmokeResult>,
}

#[derive(Debug, Serialize)]
pub struct PreflightRun {
    pub time: String,
    pub passed: bool,
    pub checks: Value,
}

/// The report of the newest run in `records` (a journal's); `None` when
/// the journal holds no run.
pub fn of(records: &[Record], journal: &str) -> Option<Report> {
    let run = journal::last_run(records);
    let status = crate::progress::of(run, journal)?;
    let plan = journal::plan_of(run);
    let start = seconds_of(&run[0].time);
    let at = |r: &Record| (seconds_of(&r.time) - start).max(0.0);
    let mut report = Report {
        journal: journal.to_owned(),
        plan_file: run.iter().find_map(|r| match &r.event {
            Event::Started { plan_file, .. } => Some(plan_file.clone()),
            _ => None,
        }),
        outcome: outcome(run, &status, at(run.last().expect("a run has records"))),
        thresholds: plan.map(|p| Thresholds {
            success_rate: p.gates.success_rate,
            p99_seconds: p.gates.p99_latency.as_secs_f64(),
            min_requests: p.gates.min_requests,
            max_mismatch_rate: p.gates.mirror.max_mismatch_rate,
        }),
        stages: Vec::new(),
        split: vec![SplitPoint {
            time: run[0].time.clone(),
            seconds: 0.0,
            green_percent: 0.0,
            step: 0,
            event: "started".into(),
        }],
        samples: Vec::new(),
        decisions: decisions::of(run, at),
        smoke: Vec::new(),
        preflight: Vec::new(),
        mirror_samples: Vec::new(),
    };
    if let Some(schedule) = plan.map(|p| p.schedule()).filter(|s| s.staged) {
        report.stages = schedule
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let steps = schedule.steps_of(i);
                StageSpan {
                    name: s.name.clone(),
                    first_step: steps.start + 1,
                    last_step: steps.end,
                    began_at_seconds: run.iter().find_map(|r| match &r.event {
                        Event::StageStarted { stage, .. } if *stage == i => Some(at(r)),
                        Event::Applied { step, .. } if steps.contains(step) => Some(at(r)),
                        _ => None,
                    }),
                }
            })
            .collect();
    }
    let mut green_percent = 0.0;
    let mut step = 0;
    for r in run {
        let split_to = match &r.event {
            Event::Applied {
                step: s,
                green_percent: p,
                ..
            } => {
                step = s + 1;
                Some(*p)
            }
            Event::RolledBack { to_percent, .. } => Some(*to_percent),
            Event::Completed { green_percent: p } => Some(*p),
            Event::Emergency { to, .. } => Some(if to == "green" { 100.0 } else { 0.0 }),
            _ => None,
        };
        if let Some(p) = split_to.filter(|p| *p != green_percent || r.event.name() == "applied") {
            green_percent = p;
            report.split.push(SplitPoint {
                time: r.time.clone(),
                seconds: at(r),
                green_percent,
                step,
                event: r.event.name().into(),
            });
        }
        match &r.event {
            Event::Gate {
                step,
                green_percent,
                verdict,
                figures,
            } => report.samples.push(Sample {
                time: r.time.clone(),
                seconds: at(r),
                step: step + 1,
                green_percent: *green_percent,
                verdict: decisions::verdict_word(verdict).into(),
                blue: figures.blue.clone(),
                green: figures.green.clone(),
                mirror: figures.mirror.clone(),
            }),
            Event::MirrorSamples { step, samples } => {
                report.mirror_samples.extend(samples.iter().map(|s| {
                    let mut s = s.clone();
                    s["step"] = (step + 1).into();
                    s
                }))
            }
            Event::Smoke {
                step,
                passed,
                results,
            } => report.smoke.push(SmokeRun {
                time: r.time.clone(),
                step: step + 1,
                passed: *passed,
                results: results.clone(),
            }),
            Event::Preflight { passed, checks } => report.preflight.push(PreflightRun {
                time: r.time.clone(),
                passed: *passed,
                checks: checks.clone(),
            }),
            _ => {}
        }
    }
    Some(report)
}

/// How the run ended (or stands), from its status document.
fn outcome(run: &[Record], status: &Value, duration_seconds: f64) -> Outcome {
    Outcome {
        state: status["state"].as_str().unwrap_or("running").to_owned(),
        ended: status["ended"] == true,
        green_percent: status["green_percent"].as_f64().unwrap_or(0.0),
        started: run[0].time.clone(),
        started_by: run[0].actor.clone(),
        last_record: run.last().map(|r| r.time.clone()).unwrap_or_default(),
        duration_seconds,
        headline: status["headline"].as_str().unwrap_or_default().to_owned(),
    }
}

/// Seconds since the Unix epoch of an RFC 3339 time (0 when unreadable).
fn seconds_of(time: &str) -> f64 {
    humantime::parse_rfc3339_weak(time)
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}
