//! `cutover status [--watch]`: where the newest run stands, read from the
//! journal alone, so it works from any terminal while `run` is active (or
//! after it died, or in a stage's wait of days).

use crate::engine::EngineError;
use crate::figures::Figures;
use crate::journal::{self, Event, Record};
use crate::output::{color_line, Output};
use crate::plan::Schedule;
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// `status`: prints where the run stands once.
pub fn status(journal_path: &Path, out: &Output) -> Result<Value, EngineError> {
    let doc = status_doc(journal_path)?;
    print(&doc, out);
    Ok(doc)
}

/// `status --watch`: reprints every `interval` until the run ends.
pub async fn watch(
    journal_path: &Path,
    out: &Output,
    interval: Duration,
) -> Result<(), EngineError> {
    let clear = !out.is_json() && std::io::stdout().is_terminal();
    loop {
        let doc = status_doc(journal_path)?;
        if clear {
            print!("\x1b[2J\x1b[H"); // clear the screen, cursor home
        }
        print(&doc, out);
        let _ = std::io::stdout().flush();
        if doc["ended"] == true {
            return Ok(());
        }
        tokio::time::sleep(interval).await;
    }
}

/// The run's state as one JSON document (what `--output json` prints).
pub fn status_doc(journal_path: &Path) -> Result<Value, EngineError> {
    let records = journal::read_all(journal_path)?;
    let run = journal::last_run(&records);
    let Some(first) = run.first() else {
        return Err(EngineError::Refused(format!(
            "journal {} holds no cutover",
            journal_path.display()
        )));
    };
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
            Event::StepPassed { step: s, .. } => passed.push(*s + 1),
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
    let ended = last.event.ends_run();
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
    Ok(json!({
        "journal": journal_path.display().to_string(),
        "started": first.time, "started_by": first.actor,
        "state": state,
        "ended": ended,
        "step": step + 1,
        "steps": schedule.as_ref().map_or(0, |s| s.len()),
        "green_percent": green_percent,
        "steps_passed": passed,
        "hold": hold,
        "stages": schedule.as_ref().filter(|s| s.staged).map(|s| stages(s, run)),
        "last_event": {"event": last.event.name(), "time": last.time, "actor": last.actor, "record": last},
        "last_gate": last_gate,
    }))
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
            Event::StepPassed { step, .. } if *step == last_of(schedule.stage_of(*step)) => {
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

fn print(doc: &Value, out: &Output) {
    if out.is_json() {
        println!("{doc}");
        return;
    }
    println!(
        "cutover {}: step {} of {} at green {}% (started {} by {})",
        doc["state"].as_str().unwrap_or("?"),
        doc["step"],
        doc["steps"],
        number(&doc["green_percent"]),
        doc["started"].as_str().unwrap_or("?"),
        doc["started_by"].as_str().unwrap_or("?"),
    );
    for (i, stage) in doc["stages"].as_array().into_iter().flatten().enumerate() {
        let mut line = format!(
            "  stage {} {}: {}",
            i + 1,
            stage["name"].as_str().unwrap_or("?"),
            stage["state"].as_str().unwrap_or("?")
        );
        if let Some(t) = stage["not_before"].as_str() {
            line += &format!(" (not before {t})");
        }
        if stage["state"] == "running" && stage["step"].is_number() {
            line += &format!(
                " at step {} (green {}%)",
                stage["step"],
                number(&stage["green_percent"])
            );
        }
        println!("{line}");
    }
    if let Some(left) = doc["hold"]["left_seconds"].as_u64() {
        println!("hold: {left}s left of {}s", doc["hold"]["seconds"]);
    }
    if let Some(gate) = doc["last_gate"].as_object() {
        if let Ok(figures) = serde_json::from_value::<Figures>(gate["figures"].clone()) {
            println!(
                "figures: {} | {}",
                color_line("blue", &figures.blue),
                color_line("green", &figures.green)
            );
        }
        println!(
            "last gate: {} at {}",
            gate["verdict"],
            gate["time"].as_str().unwrap_or("?")
        );
    }
    println!("steps passed: {}", doc["steps_passed"]);
    println!(
        "last event: {} at {} by {}",
        doc["last_event"]["event"].as_str().unwrap_or("?"),
        doc["last_event"]["time"].as_str().unwrap_or("?"),
        doc["last_event"]["actor"].as_str().unwrap_or("?")
    );
}

/// `50` for 50.0, `12.5` for 12.5.
fn number(v: &Value) -> String {
    v.as_f64().map_or("?".into(), |n| n.to_string())
}
