//! The commands an operator runs from another terminal while (or after) a
//! cutover runs: pause, promote, abort, emergency (and `status`, in its
//! own module).

use crate::engine::{Engine, EngineError};
use crate::fleet::Fleet;
use crate::journal::{ControlCommand, Event, Journal};
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
    let (plan, run) = crate::engine::live_run(journal_path, "control")?;
    if command == ControlCommand::Abort {
        let stage = crate::engine::stage_now(&plan, &run);
        let Some(fleet) = plan.schedule().fleet(stage).cloned() else {
            return Err(EngineError::Refused(format!(
                "the journaled plan names no fleet for stage {}",
                stage + 1
            )));
        };
        let fleet = Fleet::from_plan(&fleet).await?;
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

/// Where an emergency switch goes: each fleet's admin URLs and token.
pub struct EmergencyTarget {
    pub fleets: Vec<(Vec<String>, String)>,
}

/// `emergency --to COLOR`: every route of every replica (of every fleet
/// given: a staged plan's stages) to 100% of one colour now. Needs no plan,
/// no running cutover and no lock. A fleet that cannot be switched does
/// not stop the others; the first failure is returned after them.
pub async fn emergency(
    target: EmergencyTarget,
    to_green: bool,
    reason: &str,
    journal_path: &Path,
    out: &Output,
) -> Result<(), EngineError> {
    let to = if to_green { "green" } else { "blue" };
    let actor = crate::host::actor();
    let (mut routes, mut generations, mut replicas) = (BTreeMap::new(), Vec::new(), 0);
    let mut failure = None;
    for (gateways, token) in target.fleets {
        let fleet = Fleet::new(gateways, token);
        let switched = async {
            let mut these = BTreeMap::new();
            for (_, state) in fleet.states().await? {
                for route in state.routes.keys() {
                    these.insert(route.clone(), if to_green { 100.0 } else { 0.0 });
                }
            }
            let g = fleet
                .apply(&these, &actor, &format!("emergency: {reason}"), false)
                .await?;
            Ok::<_, crate::fleet::FleetError>((these, g))
        };
        match switched.await {
            Ok((these, g)) => {
                routes.extend(these);
                generations.extend(g);
                replicas += fleet.replicas.len();
            }
            Err(e) => {
                tracing::error!("emergency: {e}");
                failure.get_or_insert(e);
            }
        }
    }
    if replicas == 0 {
        if let Some(e) = failure {
            return Err(e.into());
        }
    }
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
            "EMERGENCY: routes {:?} now send 100% to {to} on {replicas} replica(s)",
            routes.keys().collect::<Vec<_>>(),
        );
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
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
