//! Where a run stands, computed from its journal records: the document
//! `cutover status` prints, and the one a run publishes to its fleet so
//! that any terminal can read it.

use crate::journal::{self, Event, Record};
use crate::plan::Schedule;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

/// Where the run whose records are `run` stands (what `cutover status
/// --output json` prints); `None` without a run. `journal` names where
/// the records live.
pub fn of(run: &[Record], journal: &str) -> Option<Value> {
    let first = run.first()?;
    let schedule = journal::plan_of(run).map(|p| p.schedule());
    let mut state = "running";
    let mut green_percent = 0.0;
    let mut step = 0;
    let mut converged_at: Option<&str> = None;
    // Gates of the step before its latest convergence: hold watched
    // before a resume, which the engine counts.
    let (mut gates_seen, mut gates_before) = (0u32, 0u32);
    let mut last_gate = Value::Null;
    let mut passed = Vec::new();
    for r in run {
        match &r.event {
            Event::Applied {
                step: s,
                green_percent: p,
                ..
            } => {
                if *s != step {
                    gates_seen = 0;
                }
                step = *s;
                green_percent = *p;
                state = "running";
                converged_at = None;
            }
            Event::Converged { .. } => {
                converged_at = Some(&r.time);
                gates_before = gates_seen;
            }
            Event::Gate {
                verdict, figures, ..
            } => {
                gates_seen += 1;
                last_gate = json!({"verdict": verdict, "figures": figures, "time": r.time});
            }
            Event::StepPassed { step: s, .. } | Event::StepPromoted { step: s } => {
                passed.push(*s + 1)
            }
            Event::Paused { .. } | Event::AwaitingApproval { .. } => state = "paused",
            Event::StageWaiting { .. } => state = "waiting",
            Event::Resumed { .. } | Event::StageStarted { .. } => state = "running",
            Event::RolledBack { to_percent, .. } => {
                state = "rolled_back";
                green_percent = *to_percent;
            }
            Event::Completed { green_percent: p } => {
                state = "completed";
                green_percent = *p;
            }
            Event::Stopped { .. } => state = "stopped",
            Event::Emergency { to, .. } => {
                state = "emergency";
                green_percent = if to == "green" { 100.0 } else { 0.0 };
            }
            _ => {}
        }
    }
    let last = run.last().expect("non-empty");
    let ended = journal::last_decisive(run).is_some_and(|r| r.event.ends_run());
    let interval = journal::plan_of(run).map_or(Duration::ZERO, |p| p.gates.interval);
    let hold = match (&schedule, converged_at) {
        (Some(s), Some(at)) if state == "running" && step < s.len() => {
            let hold = s.step(step).hold;
            let since = humantime::parse_rfc3339(at)
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default()
                + interval * gates_before;
            json!({"seconds": hold.as_secs(), "left_seconds": hold.saturating_sub(since).as_secs()})
        }
        _ => Value::Null,
    };
    let steps = schedule.as_ref().map_or(0, |s| s.len());
    let headline = headline(run, state, green_percent, step + 1, steps);
    let plan_steps = schedule
        .as_ref()
        .map(|s| plan_steps(s, run, state, step, &passed));
    Some(json!({
        "headline": headline,
        "journal": journal,
        "started": first.time, "started_by": first.actor,
        "state": state,
        "ended": ended,
        "step": step + 1,
        "steps": steps,
        "plan_steps": plan_steps,
        "green_percent": green_percent,
        "steps_passed": passed,
        "hold": hold,
        "stages": schedule.as_ref().filter(|s| s.staged).map(|s| stages(s, run)),
        "last_event": {"event": last.event.name(), "time": last.time, "actor": last.actor, "record": last},
        "last_gate": last_gate,
    }))
}

/// One sentence: how the run ended, or where it stands.
fn headline(run: &[Record], state: &str, green: f64, step: usize, steps: usize) -> String {
    let begun = humantime::parse_rfc3339_weak(&run[0].time).ok();
    let last = run
        .last()
        .and_then(|r| humantime::parse_rfc3339_weak(&r.time).ok());
    let took = match (begun, last) {
        (Some(b), Some(l)) => l.duration_since(b).unwrap_or_default(),
        _ => Duration::ZERO,
    };
    let took = humantime::format_duration(Duration::from_secs(took.as_secs()));
    let (reason, rolled_back_at) = run
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::RolledBack { reason, step, .. } => Some((reason.as_str(), step + 1)),
            Event::Stopped { reason, .. } | Event::Emergency { reason, .. } => {
                Some((reason.as_str(), step))
            }
            _ => None,
        })
        .unwrap_or(("no reason recorded", step));
    match state {
        "completed" => format!("Completed: green serves {green}% after {took} ({steps} steps)"),
        "rolled_back" => format!(
            "Rolled back at step {rolled_back_at} of {steps} to green {green}% after {took}: {reason}"
        ),
        "stopped" => format!("Stopped at step {step} of {steps} (green {green}%) after {took}: {reason}"),
        "emergency" => format!("Emergency: every route forced to green {green}% after {took}: {reason}"),
        "paused" => format!("Paused: step {step} of {steps} at green {green}%, {took} so far"),
        "waiting" => format!("Waiting: step {step} of {steps} at green {green}%, {took} so far"),
        _ => format!("Running: step {step} of {steps} at green {green}%, {took} so far"),
    }
}

/// Every step of the plan with its split, hold and how it went:
/// `passed`, `current`, `rolled_back`, `skipped` (a promotion passed it
/// by) or `pending`.
fn plan_steps(
    schedule: &Schedule,
    run: &[Record],
    state: &str,
    current: usize,
    passed: &[usize],
) -> Vec<Value> {
    let rolled_back = run.iter().rev().find_map(|r| match &r.event {
        Event::RolledBack { step, .. } => Some(*step),
        _ => None,
    });
    let promoted = run
        .iter()
        .any(|r| matches!(r.event, Event::Promoted { .. }));
    let completed = state == "completed";
    (0..schedule.len())
        .map(|i| {
            let step = schedule.step(i);
            let how = if passed.contains(&(i + 1)) {
                "passed"
            } else if rolled_back == Some(i) && state == "rolled_back" {
                "rolled_back"
            } else if completed || (promoted && i > current) {
                "skipped"
            } else if i == current && ["running", "paused"].contains(&state) {
                "current"
            } else {
                "pending"
            };
            json!({
                "step": i + 1,
                "stage": schedule.staged.then(|| schedule.stages[schedule.stage_of(i)].name.clone()),
                "green_percent": step.green_percent,
                "mirror_percent": step.mirror_percent,
                "hold_seconds": step.hold.as_secs(),
                "approval": step.approval,
                "state": how,
            })
        })
        .collect()
}

/// Each stage of a staged plan: `pending`, `waiting` (until when),
/// `running` (which step), `done`, `rolled_back` or `stopped`.
fn stages(schedule: &Schedule, run: &[Record]) -> Vec<Value> {
    let mut docs: Vec<Value> = schedule
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let steps = schedule.steps_of(i);
            json!({"name": s.name, "state": "pending", "first_step": steps.start + 1, "last_step": steps.end})
        })
        .collect();
    let last_of = |stage: usize| schedule.steps_of(stage).end.saturating_sub(1);
    for r in run {
        let (stage, update) = match &r.event {
            Event::StageWaiting {
                stage, not_before, ..
            } => (
                *stage,
                json!({"state": "waiting", "not_before": not_before}),
            ),
            Event::StageStarted { stage, .. } => (*stage, json!({"state": "running"})),
            Event::Applied {
                step,
                green_percent,
                ..
            } => (
                schedule.stage_of(*step),
                json!({"state": "running", "step": step + 1, "green_percent": green_percent}),
            ),
            Event::StepPassed { step, .. } | Event::StepPromoted { step }
                if *step == last_of(schedule.stage_of(*step)) =>
            {
                (schedule.stage_of(*step), json!({"state": "done"}))
            }
            Event::Promoted { from_step } => (
                schedule.stage_of(*from_step),
                json!({"state": "done", "green_percent": 100.0}),
            ),
            Event::RolledBack {
                step, to_percent, ..
            } => (
                schedule.stage_of(*step),
                json!({"state": "rolled_back", "green_percent": to_percent}),
            ),
            Event::Stopped { step, .. } => (schedule.stage_of(*step), json!({"state": "stopped"})),
            _ => continue,
        };
        if let (Some(doc), Some(fields)) = (docs.get_mut(stage), update.as_object()) {
            for (k, v) in fields {
                doc[k] = v.clone();
            }
        }
    }
    docs
}
