//! The commands an operator runs from another terminal while (or after) a
//! cutover runs: status, pause, promote, abort, emergency.

use crate::engine::{Engine, EngineError};
use crate::fleet::Fleet;
use crate::journal::{self, ControlCommand, Event, Journal};
use crate::outcome::Outcome;
use crate::output::Output;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// `pause`, `promote`: a command for the live run, which acts on it within
/// one evaluation interval. `abort` rolls back directly when no run is alive.
pub async fn control(
    journal_path: &Path,
    command: ControlCommand,
    reason: Option<String>,
    out: Output,
) -> Result<Outcome, EngineError> {
    if !journal_path.exists() {
        return Err(EngineError::Refused(format!(
            "no journal at {}: no cutover has run here",
            journal_path.display()
        )));
    }
    let (plan, _) = crate::engine::live_run(journal_path, "control")?;
    if command == ControlCommand::Abort {
        let fleet = Fleet::from_plan(&plan.fleet).await?;
        let alive = fleet.lock_holder().await.is_some_and(|l| l.is_live());
        if !alive {
            let reason = reason.unwrap_or_else(|| "no reason given".into());
            return Engine::abort_dead_run(journal_path, out, &reason).await;
        }
    }
    let mut journal = Journal::open(journal_path)?;
    journal.append(&crate::host::actor(), Event::Control { command, reason })?;
    Ok(Outcome::Signalled(format!(
        "{command:?} sent to the running cutover; it acts within one evaluation interval (`cutover status` shows it)"
    )))
}

/// Where an emergency switch goes.
pub struct EmergencyTarget {
    pub gateways: Vec<String>,
    pub token: String,
}

/// `emergency --to COLOR`: every route of every replica to 100% of one
/// colour now. Needs no plan, no running cutover and no lock.
pub async fn emergency(
    target: EmergencyTarget,
    to_green: bool,
    reason: &str,
    journal_path: &Path,
    out: &Output,
) -> Result<(), EngineError> {
    let fleet = Fleet::new(target.gateways, target.token);
    let to = if to_green { "green" } else { "blue" };
    let mut routes = BTreeMap::new();
    for (_, state) in fleet.states().await? {
        for route in state.routes.keys() {
            routes.insert(route.clone(), if to_green { 100.0 } else { 0.0 });
        }
    }
    let actor = crate::host::actor();
    let generations = fleet
        .apply(&routes, &actor, &format!("emergency: {reason}"), false)
        .await?;
    // Tell a running cutover (it stops) and keep the record.
    let mut journal = Journal::open(journal_path)?;
    let record = journal.append(
        &actor,
        Event::Emergency {
            to: to.into(),
            reason: reason.into(),
        },
    )?;
    notify_latest_run(journal_path, &record).await;
    if out.is_json() {
        println!(
            "{}",
            json!({"emergency": to, "routes": routes, "generations": generations, "record": record})
        );
    } else {
        eprintln!(
            "EMERGENCY: routes {:?} now send 100% to {to} on {} replica(s)",
            routes.keys().collect::<Vec<_>>(),
            fleet.replicas.len()
        );
    }
    Ok(())
}

/// Tells the newest run's notification receivers about `record` (an
/// emergency happens outside a run); a receiver that cannot be set up is
/// logged and skipped, never stopping the emergency.
async fn notify_latest_run(journal_path: &Path, record: &crate::journal::Record) {
    let Ok(records) = crate::journal::read_all(journal_path) else {
        return;
    };
    let Some(Event::Started { plan, .. }) =
        crate::journal::last_run(&records).first().map(|r| &r.event)
    else {
        return;
    };
    match crate::notify::Notifier::start(&plan.notify) {
        Ok(mut notifier) => {
            notifier.notify(record);
            notifier.flush(crate::notify::FLUSH_LIMIT).await;
        }
        Err(e) => tracing::warn!("emergency not notified: {e}"),
    }
}

/// `status`: where the newest run stands, from the journal.
pub fn status(journal_path: &Path, out: &Output) -> Result<serde_json::Value, EngineError> {
    let records = journal::read_all(journal_path)?;
    let run = journal::last_run(&records);
    let Some(first) = run.first() else {
        return Err(EngineError::Refused(format!(
            "journal {} holds no cutover",
            journal_path.display()
        )));
    };
    let mut state = "running";
    let mut green_percent = 0.0;
    let mut step = 0;
    let mut last_gate = serde_json::Value::Null;
    let mut passed = Vec::new();
    for r in run {
        match &r.event {
            Event::Applied {
                step: s,
                green_percent: p,
                ..
            } => {
                step = *s;
                green_percent = *p;
                state = "running";
            }
            Event::Gate {
                verdict, figures, ..
            } => last_gate = json!({"verdict": verdict, "figures": figures, "time": r.time}),
            Event::StepPassed { step: s, .. } => passed.push(*s + 1),
            Event::Paused { .. } | Event::AwaitingApproval { .. } => state = "paused",
            Event::Resumed { .. } => state = "running",
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
    let doc = json!({
        "journal": journal_path.display().to_string(),
        "started": first.time, "started_by": first.actor,
        "state": state,
        "step": step + 1,
        "green_percent": green_percent,
        "steps_passed": passed,
        "last_event": {"event": last.event.name(), "time": last.time, "actor": last.actor, "record": last},
        "last_gate": last_gate,
    });
    if out.is_json() {
        println!("{doc}");
    } else {
        println!(
            "cutover {state}: step {} at green {green_percent}% (started {} by {})",
            step + 1,
            first.time,
            first.actor
        );
        println!("steps passed: {passed:?}");
        println!(
            "last event: {} at {} by {}",
            last.event.name(),
            last.time,
            last.actor
        );
        if let Some(v) = last_gate.get("verdict") {
            println!("last gate: {v}");
        }
    }
    Ok(doc)
}
