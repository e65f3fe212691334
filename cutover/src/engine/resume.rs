//! Picking a run up again: `cutover resume` (tell a live run to go on, or
//! continue a dead one from its journal), `cutover abort` of a dead run,
//! and where a journaled run stands.

use super::{Engine, EngineError, RunOptions};
use crate::journal::{self, ControlCommand, Event, Journal, Record};
use crate::outcome::Outcome;
use crate::output::Output;
use crate::plan::{Plan, Schedule};
use std::path::Path;

impl Engine {
    /// `cutover resume`: unpause a live run, or continue a dead one from
    /// its journal; `reason` is journaled with the operator's name.
    pub async fn resume(
        journal_path: &Path,
        out: Output,
        options: RunOptions,
        reason: Option<String>,
    ) -> Result<Outcome, EngineError> {
        let (plan, run) = live_run(journal_path, "resume")?;
        let schedule = plan.schedule();
        let position = position_of(&run, &schedule);
        let stage = schedule.stage_of(position.step);
        let mut journal = Journal::open(journal_path)?;
        let mut engine =
            Engine::new(plan, Journal::open(journal_path)?, out, stage, options).await?;
        if let Some(lock) = engine.fleet.lock_holder().await {
            if lock.holder != engine.holder && lock.is_live() {
                // A live run holds the lock: tell it to go on.
                let resume = Event::Control {
                    command: ControlCommand::Resume,
                    reason,
                    id: None,
                };
                journal.append(&engine.actor, resume)?;
                return Ok(Outcome::Signalled(format!(
                    "the live run of {} was told to resume",
                    lock.holder
                )));
            }
        }
        if let Some(previous_holder) = engine.acquire_lock(options.take_over, true).await? {
            engine.record(Event::LockTakenOver { previous_holder })?;
        }
        if reason.is_some() {
            // Who continued the run, and why (not a command for it).
            engine.record(Event::Control {
                command: ControlCommand::Resume,
                reason,
                id: None,
            })?;
        }
        engine.journal.new_records(); // the past is not a command
        let stage_label = engine
            .schedule
            .label(stage)
            .map_or(String::new(), |l| format!(", {l}"));
        let held = engine.plan.gates.interval * position.held_gates;
        engine.out.note(&format!(
            "resuming at step {} of {}{stage_label} ({} of its hold watched already)",
            position.step + 1,
            engine.schedule.len(),
            humantime::format_duration(held)
        ));
        engine.execute(position).await
    }

    /// `cutover abort` with no live run: roll back from the journal.
    pub async fn abort_dead_run(
        journal_path: &Path,
        out: Output,
        reason: &str,
    ) -> Result<Outcome, EngineError> {
        let records = journal::read_all(journal_path)?;
        let run = journal::last_run(&records);
        let Some(plan) = journal::plan_of(run) else {
            return Err(EngineError::Refused("no cutover to abort".into()));
        };
        let schedule = plan.schedule();
        let step = position_of(run, &schedule).step;
        let stage = schedule.stage_of(step);
        let options = RunOptions::default();
        let mut engine = Engine::new(
            plan.clone(),
            Journal::open(journal_path)?,
            out,
            stage,
            options,
        )
        .await?;
        engine
            .fleet
            .take_lock(&engine.holder, engine.plan.lock_ttl, true)
            .await?;
        engine.record(Event::Control {
            command: ControlCommand::Abort,
            reason: Some(reason.to_owned()),
            id: None,
        })?;
        let begun = run
            .iter()
            .any(|r| matches!(r.event, Event::StageStarted { stage: s, .. } if s == stage));
        if schedule.staged && !begun {
            // Between stages (in a wait): the next stage's fleet was never
            // touched, and the finished ones keep their splits.
            let label = schedule.label(stage).unwrap_or_default();
            let reason = format!(
                "aborted by {}: {reason}, before {label} began; no traffic was moved",
                engine.actor
            );
            let stopped = engine.stop(step, reason);
            engine.let_go().await;
            return stopped;
        }
        let outcome = engine
            .roll_back(step, format!("aborted by {}: {reason}", engine.actor), None)
            .await;
        engine.let_go().await;
        Ok(outcome)
    }
}

/// Where a run picks up.
pub(super) struct Position {
    pub step: usize,
    /// The step's split may already be applied (a crash after the write).
    pub applied: bool,
    /// Gate evaluations the step had before (each one interval of its
    /// hold, watched already).
    pub held_gates: u32,
}

impl Position {
    /// A new run's: step one, nothing done.
    pub fn start() -> Position {
        Position {
            step: 0,
            applied: false,
            held_gates: 0,
        }
    }
}

/// Gate evaluations journaled for `step` in a run: each stands for one
/// interval of the step's hold.
fn gates_of(run: &[Record], step: usize) -> u32 {
    run.iter()
        .filter(|r| matches!(r.event, Event::Gate { step: s, .. } if s == step))
        .count() as u32
}

/// Where a run that died stands, from its journal: the first step whose
/// gates have not passed, whether its split was already written, and how
/// much of its hold was watched. A stage promoted before the last one
/// counts as passed whole.
pub(super) fn position_of(run: &[Record], schedule: &Schedule) -> Position {
    let mut passed: Option<usize> = None;
    let mut applied: Option<usize> = None;
    for r in run {
        match r.event {
            Event::StepPassed { step, .. } | Event::StepPromoted { step } => passed = Some(step),
            Event::Applied { step, .. } => applied = Some(step),
            Event::Promoted { from_step } => {
                let stage = schedule.stage_of(from_step);
                passed = schedule.steps_of(stage).end.checked_sub(1);
            }
            _ => {}
        }
    }
    let next = passed.map_or(0, |s| s + 1);
    Position {
        step: next,
        applied: applied == Some(next),
        held_gates: gates_of(run, next),
    }
}

/// The stage a journaled run stands in (whose fleet it drives).
pub fn stage_now(plan: &Plan, run: &[Record]) -> usize {
    let schedule = plan.schedule();
    schedule.stage_of(position_of(run, &schedule).step)
}

/// The plan and records of the journal's newest run, refused (naming what
/// the operator wanted `to`) when there is none or it has ended.
pub fn live_run(journal_path: &Path, to: &str) -> Result<(Plan, Vec<Record>), EngineError> {
    if !journal_path.exists() {
        return Err(EngineError::Refused(format!(
            "nothing to {to}: no journal at {} (no cutover has run here; --journal or CUTOVER_JOURNAL names another, --plan reaches a run through its fleet)",
            journal_path.display()
        )));
    }
    let records = journal::read_all(journal_path)?;
    let run = journal::last_run(&records).to_vec();
    let Some(plan) = journal::plan_of(&run).cloned() else {
        return Err(EngineError::Refused(format!(
            "journal {} holds no cutover to {to}",
            journal_path.display()
        )));
    };
    if let Some(last) = journal::last_decisive(&run).filter(|r| r.event.ends_run()) {
        return Err(EngineError::Refused(format!(
            "the last cutover in {} has ended ({} at {}); nothing to {to}",
            journal_path.display(),
            last.event.name(),
            last.time
        )));
    }
    Ok((plan, run))
}

/// What the gateways serve by the journal's newest run (said when a run
/// cannot write the journal any more).
pub(super) fn serving_by_journal(journal_path: &Path) -> String {
    let records = journal::read_all(journal_path).unwrap_or_default();
    let serving = match last_written(journal::last_run(&records)) {
        Some((percent, Some(step))) => {
            format!("green {percent}% (step {}, the last journaled)", step + 1)
        }
        Some((percent, None)) => format!("green {percent}% (rolled back)"),
        None => "the split from before the run (no step was journaled)".into(),
    };
    format!("the gateways keep serving {serving}")
}

/// The split a run last wrote: `(green_percent, Some(step))` for an
/// applied step, `(to_percent, None)` for a rollback; `None` before any.
pub fn last_written(run: &[Record]) -> Option<(f64, Option<usize>)> {
    run.iter().rev().find_map(|r| match r.event {
        Event::Applied {
            step,
            green_percent,
            ..
        } => Some((green_percent, Some(step))),
        Event::RolledBack { to_percent, .. } => Some((to_percent, None)),
        _ => None,
    })
}
