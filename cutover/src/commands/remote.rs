//! Driving a run from any terminal through its plan's fleet: the run holds
//! the fleet's lock and publishes its progress there; a command queued
//! there is journaled by the run (with the operator as its actor) and
//! acted on. Nothing here needs the run's journal, which stays wherever the
//! run keeps it (a Job's volume, another machine).

use crate::engine::EngineError;
use crate::fleet::{ControlRequest, Fleet, LockState, Published};
use crate::journal::ControlCommand;
use crate::outcome::Outcome;
use crate::plan::Plan;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a remote call waits for an unreachable fleet.
const PATIENCE: Duration = Duration::from_secs(3);

/// How long a command waits to be taken by a live run.
const TAKEN_WITHIN: Duration = Duration::from_secs(15);

/// The run as its plan's fleets show it.
pub struct Found {
    /// The stage whose fleet the run is on (or last published to).
    pub stage: usize,
    pub fleet: Fleet,
    pub progress: Option<Published>,
    pub lock: Option<LockState>,
}

impl Found {
    /// A run holds the fleet's lock and has not let it expire.
    pub fn alive(&self) -> bool {
        self.lock.as_ref().is_some_and(LockState::is_live)
    }

    /// The published progress says the run ended.
    pub fn ended(&self) -> bool {
        self.progress
            .as_ref()
            .is_some_and(|p| p.progress["ended"] == true)
    }
}

/// A unique id for a queued command.
pub fn request_id(actor: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{actor}/pid{}/{nanos}", std::process::id())
}

/// Each stage's fleet of `plan` (read from `plan_path`), found as a run
/// finds it.
pub async fn fleets(plan: &Plan, plan_path: &Path) -> Result<Vec<Fleet>, EngineError> {
    let mut fleets = Vec::new();
    for (i, stage) in plan.schedule().stages.iter().enumerate() {
        let Some(fleet) = &stage.fleet else {
            return Err(EngineError::Refused(format!(
                "{}: stage {} names no fleet",
                plan_path.display(),
                i + 1
            )));
        };
        fleets.push(Fleet::from_plan(fleet).await?.with_patience(PATIENCE));
    }
    Ok(fleets)
}

/// Where the plan's run is: the fleet whose lock a live run holds, else
/// the one with the newest published progress.
pub async fn find_run(plan: &Plan, plan_path: &Path) -> Result<Option<Found>, EngineError> {
    let mut best: Option<Found> = None;
    for (stage, fleet) in fleets(plan, plan_path).await?.into_iter().enumerate() {
        let (progress, lock) = fleet.run_view().await;
        let found = Found {
            stage,
            fleet,
            progress,
            lock,
        };
        let better = match &best {
            None => true,
            Some(b) if found.alive() != b.alive() => found.alive(),
            Some(b) => match (&found.progress, &b.progress) {
                (Some(f), Some(b)) => f.published_at > b.published_at,
                (f, b) => f.is_some() && b.is_none(),
            },
        };
        if better {
            best = Some(found);
        }
    }
    Ok(best.filter(|f| f.alive() || f.progress.is_some()))
}

/// `pause|resume|approve|promote|abort --plan PLAN`: queues the command for
/// the run through its fleet, and waits a little for the run to take it.
/// Without a live run only an abort of a run that has not ended is queued
/// (its next `resume` stops); anything else is refused.
pub async fn control(
    plan: &Plan,
    plan_path: &Path,
    command: ControlCommand,
    reason: Option<String>,
) -> Result<Outcome, EngineError> {
    let name = command.command_line();
    let Some(found) = find_run(plan, plan_path).await? else {
        return Err(EngineError::Refused(format!(
            "nothing to {name}: no run holds the lock of {}'s fleet or has published progress there",
            plan_path.display()
        )));
    };
    let holder = found.lock.as_ref().map(|l| l.holder.clone());
    if !found.alive() {
        let waits = command == ControlCommand::Abort && !found.ended() && found.progress.is_some();
        if !waits {
            let state = found.progress.as_ref().map_or("unknown".into(), |p| {
                p.progress["state"].as_str().unwrap_or("?").to_owned()
            });
            return Err(EngineError::Refused(format!(
                "nothing to {name}: no live run holds the lock of {}'s fleet (the last run published state {state}); where its journal is, `cutover resume` continues a run that has not ended",
                plan_path.display()
            )));
        }
    }
    let actor = crate::host::actor();
    let request = ControlRequest {
        id: request_id(&actor),
        command: command.name().to_owned(),
        actor,
        reason,
        to: None,
        queued_at: String::new(),
    };
    found.fleet.queue_control(&request).await?;
    let Some(holder) = holder.filter(|_| found.alive()) else {
        return Ok(Outcome::Signalled(
            "abort queued in the fleet: no run is alive now; the run's next `cutover resume` (e.g. its CronJob's) stops it before any traffic moves".into(),
        ));
    };
    let deadline = Instant::now() + TAKEN_WITHIN;
    while Instant::now() < deadline {
        let waiting = found.fleet.waiting_controls().await;
        if !waiting.iter().any(|c| c.id == request.id) {
            return Ok(Outcome::Signalled(format!(
                "{name} taken by the run of {holder}; `cutover status --plan {}` shows it",
                plan_path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(Outcome::Signalled(format!(
        "{name} queued for the run of {holder}, not taken yet: it takes commands while a step holds, while paused or waiting"
    )))
}
