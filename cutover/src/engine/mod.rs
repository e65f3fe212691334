//! The cutover engine: smoke checks, then for each step apply → converge →
//! hold under gates; roll back at once when green is worse.
//!
//! Every transition is journaled (fsynced) right after it happens, and
//! re-applying a step is a no-op on a fleet that already serves it, so a run
//! killed at any point resumes from the journal without repeating or
//! skipping a step. The gateways keep serving the last applied split while
//! no engine runs.
//!
//! This file is the run loop, top to bottom: [`Engine::run`] → preflight →
//! `execute` → `steps` → `step` (smoke → apply → converge → `hold` under
//! gates, in its own file → next step, or roll back). Around it: `stages` (a staged plan's
//! fleets, waits and approvals), `control` (pause, resume, abort, promote,
//! emergency and the lock), `resume` (picking a journaled run up again)
//! and `rollback` (ending a run by moving the split at once).

mod checks;
mod control;
mod drain;
mod hold;
mod inbox;
mod publish;
mod resume;
mod rollback;
mod stages;

use hold::Held;
use resume::Position;
pub use resume::{last_written, live_run, stage_now};

use crate::figures::{GatewayScrapes, Prometheus, Source};
use crate::fleet::{Fleet, FleetError};
use crate::journal::{self, Event, Journal, JournalError};
use crate::notify::{Notifier, NotifyError, FLUSH_LIMIT};
use crate::outcome::Outcome;
use crate::output::Output;
use crate::plan::{GateSource, Plan, Schedule};
use crate::smoke::SmokeTarget;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A run could not journal a transition and stopped there (exit 1).
    /// (`cause`, not `source`: the message says it once.)
    #[error("{cause}; the run stopped here and moves no more traffic: {serving}")]
    JournalFailed {
        cause: JournalError,
        serving: String,
    },
    /// A notification receiver cannot be set up (exit 2).
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// The request cannot be carried out as things are (exit 3).
    #[error("{0}")]
    Refused(String),
}

/// How a run starts or picks up.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Take over a stale cutover lock (journaled).
    pub take_over: bool,
    /// At a stage's wait, exit (0) instead of waiting; `resume` goes on.
    pub no_wait: bool,
}

pub struct Engine {
    plan: Plan,
    schedule: Schedule,
    /// The stage whose fleet the engine drives (and holds the lock of).
    stage: usize,
    fleet: Fleet,
    journal: Journal,
    source: Source,
    out: Output,
    actor: String,
    holder: String,
    smoke_target: SmokeTarget,
    last_lock_renewal: Instant,
    notifier: Notifier,
    no_wait: bool,
    /// Publishes the run's progress to its fleet.
    publisher: publish::Publisher,
    /// Ids of the fleet's commands this run has journaled.
    journaled_ids: std::collections::HashSet<String>,
    /// When the fleet's command queue was last read.
    inbox_read: Option<Instant>,
    /// `promote` (one step) was taken: the step's hold ends at once.
    step_promoted: bool,
}

impl Engine {
    /// An engine driving `stage`'s fleet.
    async fn new(
        plan: Plan,
        journal: Journal,
        out: Output,
        stage: usize,
        options: RunOptions,
    ) -> Result<Engine, EngineError> {
        let notifier = Notifier::start(&plan.notify)?;
        let schedule = plan.schedule();
        let (fleet, smoke_target) =
            stages::fleet_of(&schedule, stage, plan.convergence_timeout).await?;
        let source = match plan.gates.source {
            GateSource::Gateway => {
                Source::Gateway(GatewayScrapes::new(plan.routes.clone(), plan.gates.window))
            }
            GateSource::Prometheus => Source::Prometheus(Prometheus::new(
                plan.gates.prometheus_url.as_deref().unwrap_or_default(),
                &plan.routes,
                plan.gates.window,
            )),
        };
        let actor = crate::host::actor();
        let records = journal::read_all(journal.path())?;
        let journaled_ids = inbox::journaled_ids(journal::last_run(&records));
        let publisher = publish::Publisher::start(journal.path().to_owned());
        Ok(Engine {
            holder: format!("{actor}/pid{}", std::process::id()),
            actor,
            plan,
            schedule,
            stage,
            fleet,
            journal,
            source,
            out,
            smoke_target,
            last_lock_renewal: Instant::now(),
            notifier,
            no_wait: options.no_wait,
            publisher,
            journaled_ids,
            inbox_read: None,
            step_promoted: false,
        })
    }

    /// `cutover run`: a new run of `plan`.
    pub async fn run(
        plan: Plan,
        plan_file: &Path,
        journal_path: &Path,
        out: Output,
        options: RunOptions,
    ) -> Result<Outcome, EngineError> {
        if journal_path.exists() {
            let records = journal::read_all(journal_path)?;
            if let Some(last) = journal::last_decisive(journal::last_run(&records)) {
                if !last.event.ends_run() {
                    let waiting = match &last.event {
                        Event::StageWaiting { stage, name, not_before } => format!(
                            "; it waits: stage {} ({name}) may not begin before {not_before}, and `cutover resume` continues it then",
                            stage + 1
                        ),
                        _ => String::new(),
                    };
                    return Err(EngineError::Refused(format!(
                        "journal {} holds a cutover that has not ended (last: {} by {}){waiting}; use `cutover resume` or `cutover abort`",
                        journal_path.display(),
                        last.event.name(),
                        last.actor
                    )));
                }
            }
        }
        let journal = Journal::open(journal_path)?;
        let mut engine = Engine::new(plan, journal, out, 0, options).await?;
        let previous = engine.acquire_lock(options.take_over, false).await?;
        engine.drop_stale_controls().await;
        let plan = Box::new(engine.plan.clone());
        engine.record(Event::Started {
            plan_file: plan_file.display().to_string(),
            plan,
        })?;
        if let Some(previous_holder) = previous {
            engine.record(Event::LockTakenOver { previous_holder })?;
        }
        if let Some(outcome) = engine.preflight().await? {
            engine.let_go().await;
            engine.out.finish(&outcome);
            return Ok(outcome);
        }
        engine.execute(Position::start()).await
    }

    async fn execute(&mut self, from: Position) -> Result<Outcome, EngineError> {
        let outcome = match self.steps(from).await {
            Err(EngineError::Journal(cause)) => Err(EngineError::JournalFailed {
                serving: resume::serving_by_journal(self.journal.path()),
                cause,
            }),
            other => other,
        };
        self.let_go().await;
        let outcome = outcome?;
        self.out.finish(&outcome);
        Ok(outcome)
    }

    async fn steps(&mut self, from: Position) -> Result<Outcome, EngineError> {
        let mut step = from.step;
        while step < self.schedule.len() {
            let resumed_applied = from.applied && step == from.step;
            let stage = self.schedule.stage_of(step);
            if stage != self.stage {
                self.enter_stage(stage).await?;
            }
            let first_of_stage = step == self.schedule.steps_of(stage).start;
            if first_of_stage && !resumed_applied {
                if let Some(outcome) = self.begin_stage(stage, step).await? {
                    return Ok(outcome);
                }
            }
            let held = match step == from.step {
                true => self.plan.gates.interval * from.held_gates,
                false => std::time::Duration::ZERO,
            };
            let last_stage = stage + 1 == self.schedule.stages.len();
            match self.step(step, resumed_applied, held).await? {
                None => {
                    step += 1;
                    if step == self.schedule.steps_of(stage).end && !last_stage {
                        self.drain_stage(stage).await?;
                    }
                }
                // Only a promote ends a step `Completed`; before the last
                // stage it finished this stage only.
                Some(Outcome::Completed) if !last_stage => {
                    self.drain_stage(stage).await?;
                    step = self.schedule.steps_of(stage + 1).start;
                }
                Some(Outcome::Completed) => {
                    self.drain_stage(stage).await?;
                    return Ok(Outcome::Completed);
                }
                Some(outcome) => return Ok(outcome),
            }
        }
        let last = self.schedule.step(self.schedule.len() - 1).green_percent;
        self.record(Event::Completed {
            green_percent: last,
        })?;
        self.drain_stage(self.schedule.stages.len() - 1).await?;
        Ok(Outcome::Completed)
    }

    /// One step: approval, smoke, apply, converge, hold (less what was
    /// `held` before a resume). `Some` ends it early.
    async fn step(
        &mut self,
        step: usize,
        resumed_applied: bool,
        held: std::time::Duration,
    ) -> Result<Option<Outcome>, EngineError> {
        if !resumed_applied {
            if self.schedule.step(step).approval {
                self.record(Event::AwaitingApproval { step })?;
                if let Some(outcome) = self.paused(step).await? {
                    return Ok(Some(outcome));
                }
                // A `promote` at an approval approves it: the step is applied.
                self.step_promoted = false;
            }
            if !self.smoke(step).await? {
                let reason = "smoke checks failed on green".into();
                return Ok(Some(self.roll_back(step, reason, None).await));
            }
        }
        let split = self.schedule.step(step).green_percent;
        let mirror = self.schedule.step(step).mirror_percent;
        self.journal.ensure_room()?;
        let before = self.fleet.splits_now().await.ok();
        let reason = format!("step {}", step + 1);
        match self.apply(split, mirror.unwrap_or(0.0), &reason).await {
            Ok(generations) => {
                checks::failpoint("after-apply", step);
                let applied = Event::Applied {
                    step,
                    green_percent: split,
                    mirror_percent: mirror,
                    generations: generations.clone(),
                };
                if let Err(e) = self.record_applied(step, applied) {
                    return Err(self.unjournaled(e, before).await);
                }
                if let Err(e) = self
                    .fleet
                    .wait_converged(&generations, self.plan.convergence_timeout)
                    .await
                {
                    return Ok(Some(self.roll_back(step, e.to_string(), None).await));
                }
                self.record(Event::Converged { step })?;
            }
            Err(e @ FleetError::Conflict { .. }) => {
                return self.stop(step, e.to_string()).map(Some)
            }
            Err(e) => return Ok(Some(self.roll_back(step, e.to_string(), None).await)),
        }
        Ok(match self.hold(step, held).await? {
            Held::Passed => None,
            Held::Ended(outcome) => Some(outcome),
        })
    }

    /// Every route of the plan to `green_percent`; in a stage with mirror
    /// steps also to `mirror_percent` (0 once real traffic moves).
    async fn apply(
        &self,
        green_percent: f64,
        mirror_percent: f64,
        reason: &str,
    ) -> Result<Vec<(String, u64)>, FleetError> {
        let (splits, mirrors) = self.splits(green_percent, mirror_percent);
        self.fleet
            .apply_mirrored(&splits, &mirrors, &self.actor, reason, true)
            .await
    }

    /// The split of every route, and the mirror percents where this stage
    /// mirrors (none otherwise: a gateway refuses them for a route without
    /// a `mirror:` block).
    fn splits(&self, green: f64, mirror: f64) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
        let each = |p: f64| self.plan.routes.iter().map(|r| (r.clone(), p)).collect();
        let steps = self.schedule.steps_of(self.stage);
        let mirrors = match steps.clone().any(|s| self.schedule.step(s).is_mirror()) {
            true => each(mirror),
            false => BTreeMap::new(),
        };
        (each(green), mirrors)
    }

    fn record(&mut self, event: Event) -> Result<(), EngineError> {
        let record = self.journal.append(&self.actor, event)?;
        self.published(&record);
        Ok(())
    }

    /// A journaled record goes to the operator, the notification
    /// receivers and the fleet's published progress.
    fn published(&mut self, record: &journal::Record) {
        self.out.record(record);
        self.notifier.notify(record);
        self.publisher.poke(&self.fleet, &self.holder);
    }

    /// The end of this process's part in the run: the last progress is
    /// published, the lock let go, the last notifications sent.
    async fn let_go(&mut self) {
        self.publisher
            .flush(&self.fleet, &self.holder, FLUSH_LIMIT)
            .await;
        self.fleet.release_lock(&self.holder).await;
        self.notifier.flush(FLUSH_LIMIT).await;
    }
}
