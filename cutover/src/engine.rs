//! The cutover engine: smoke checks, then for each step apply → converge →
//! hold under gates; roll back at once when green is worse.
//!
//! Every transition is journaled (fsynced) right after it happens, and
//! re-applying a step is a no-op on a fleet that already serves it, so a run
//! killed at any point resumes from the journal without repeating or
//! skipping a step. The gateways keep serving the last applied split while
//! no engine runs.

use crate::figures::{Figures, GatewayScrapes, Prometheus, Source};
use crate::fleet::{Fleet, FleetError};
use crate::gates::{judge, Verdict};
use crate::journal::{self, ControlCommand, Event, Journal, JournalError, Record};
use crate::output::Output;
use crate::plan::{GateSource, InconclusiveAction, Plan, RollbackTarget};
use crate::smoke::{self, SmokeTarget};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// How a run ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Completed,
    RolledBack(String),
    /// Stopped without touching the split (outside change, lost lock).
    Stopped(String),
    /// A live run elsewhere was told to resume.
    Signalled(String),
}

impl Outcome {
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Completed | Outcome::Signalled(_) => 0,
            Outcome::RolledBack(_) => 1,
            Outcome::Stopped(_) => 3,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The request cannot be carried out as things are (exit 3).
    #[error("{0}")]
    Refused(String),
}

/// Where a run picks up.
struct Position {
    step: usize,
    /// The step's split may already be applied (a crash after the write).
    applied: bool,
}

/// What holding a step came to.
enum Held {
    Passed,
    Ended(Outcome),
}

pub struct Engine {
    plan: Plan,
    fleet: Fleet,
    journal: Journal,
    source: Source,
    out: Output,
    actor: String,
    holder: String,
    smoke_target: SmokeTarget,
    last_lock_renewal: Instant,
}

impl Engine {
    async fn new(plan: Plan, journal: Journal, out: Output) -> Result<Engine, EngineError> {
        let fleet = Fleet::from_plan(&plan.fleet).await?;
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
        let pin_secret = match &plan.fleet.pin_secret_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| {
                        EngineError::Refused(format!(
                            "fleet.pin_secret_file: cannot read {}: {e}",
                            p.display()
                        ))
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        let smoke_target = SmokeTarget {
            proxy_url: plan.fleet.proxy_url.clone(),
            pin_header: plan.fleet.pin_header.clone(),
            pin_secret,
        };
        let actor = journal::actor();
        Ok(Engine {
            holder: format!("{actor}/pid{}", std::process::id()),
            actor,
            plan,
            fleet,
            journal,
            source,
            out,
            smoke_target,
            last_lock_renewal: Instant::now(),
        })
    }

    /// `cutover run`: a new run of `plan`.
    pub async fn run(
        plan: Plan,
        plan_file: &Path,
        journal_path: &Path,
        out: Output,
        take_over: bool,
    ) -> Result<Outcome, EngineError> {
        if journal_path.exists() {
            let records = journal::read_all(journal_path)?;
            if let Some(last) = journal::last_run(&records).last() {
                if !last.event.ends_run() {
                    return Err(EngineError::Refused(format!(
                        "journal {} holds a cutover that has not ended (last: {} by {}); use `cutover resume` or `cutover abort`",
                        journal_path.display(),
                        event_name(&last.event),
                        last.actor
                    )));
                }
            }
        }
        let journal = Journal::open(journal_path)?;
        let mut engine = Engine::new(plan, journal, out).await?;
        let previous = engine.acquire_lock(take_over).await?;
        let plan = Box::new(engine.plan.clone());
        engine.record(Event::Started {
            plan_file: plan_file.display().to_string(),
            plan,
        })?;
        if let Some(previous_holder) = previous {
            engine.record(Event::LockTakenOver { previous_holder })?;
        }
        if let Some(outcome) = engine.preflight().await? {
            engine.fleet.release_lock(&engine.holder).await;
            engine.out.finish(&outcome);
            return Ok(outcome);
        }
        engine
            .execute(Position {
                step: 0,
                applied: false,
            })
            .await
    }

    /// `cutover resume`: unpause a live run, or continue a dead one from
    /// its journal.
    pub async fn resume(
        journal_path: &Path,
        out: Output,
        take_over: bool,
    ) -> Result<Outcome, EngineError> {
        let (plan, run) = live_run(journal_path, "resume")?;
        let position = position_of(&run);
        let mut journal = Journal::open(journal_path)?;
        let mut engine = Engine::new(plan, Journal::open(journal_path)?, out).await?;
        if let Some(lock) = engine.fleet.lock_holder().await {
            if lock.holder != engine.holder && lock.is_live() {
                // A live run holds the lock: tell it to go on.
                let resume = Event::Control {
                    command: ControlCommand::Resume,
                    reason: None,
                };
                journal.append(&engine.actor, resume)?;
                return Ok(Outcome::Signalled(format!(
                    "the live run of {} was told to resume",
                    lock.holder
                )));
            }
        }
        if let Some(previous_holder) = engine.acquire_lock(take_over).await? {
            engine.record(Event::LockTakenOver { previous_holder })?;
        }
        engine.journal.new_records(); // the past is not a command
        engine.out.note(&format!(
            "resuming at step {} of {}",
            position.step + 1,
            engine.plan.steps.len()
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
        let step = position_of(run).step;
        let mut engine = Engine::new(plan.clone(), Journal::open(journal_path)?, out).await?;
        engine
            .fleet
            .take_lock(&engine.holder, engine.plan.lock_ttl, true)
            .await?;
        engine.record(Event::Control {
            command: ControlCommand::Abort,
            reason: Some(reason.to_owned()),
        })?;
        Ok(engine
            .roll_back(step, format!("aborted by {}: {reason}", engine.actor), None)
            .await)
    }

    /// Takes the fleet's lock. Another holder's lock is taken over only
    /// when its process is provably gone from this host, or when it has
    /// expired and the operator said `--take-over`; returns who had it.
    async fn acquire_lock(&mut self, take_over: bool) -> Result<Option<String>, EngineError> {
        if let Some(lock) = self
            .fleet
            .lock_holder()
            .await
            .filter(|l| l.holder != self.holder)
        {
            let expired = lock.expires_at <= journal::unix_now();
            if holder_is_dead_here(&lock.holder) || (expired && take_over) {
                self.fleet
                    .take_lock(&self.holder, self.plan.lock_ttl, true)
                    .await?;
                return Ok(Some(lock.holder));
            }
            return Err(FleetError::LockHeld {
                holder: lock.holder,
                expires_at: lock.expires_at,
                expired,
            }
            .into());
        }
        self.fleet
            .take_lock(&self.holder, self.plan.lock_ttl, false)
            .await?;
        Ok(None)
    }

    async fn execute(&mut self, from: Position) -> Result<Outcome, EngineError> {
        let outcome = self.steps(from).await;
        self.fleet.release_lock(&self.holder).await;
        let outcome = outcome?;
        self.out.finish(&outcome);
        Ok(outcome)
    }

    async fn steps(&mut self, from: Position) -> Result<Outcome, EngineError> {
        for step in from.step..self.plan.steps.len() {
            let resumed_applied = from.applied && step == from.step;
            if !resumed_applied {
                if self.plan.steps[step].approval {
                    self.record(Event::AwaitingApproval { step })?;
                    if let Some(outcome) = self.paused(step).await? {
                        return Ok(outcome);
                    }
                }
                if !self.smoke(step).await? {
                    return Ok(self
                        .roll_back(step, "smoke checks failed on green".into(), None)
                        .await);
                }
            }
            let split = self.plan.split_of(step);
            match self.apply(split, &format!("step {}", step + 1)).await {
                Ok(generations) => {
                    failpoint("after-apply", step);
                    self.record(Event::Applied {
                        step,
                        green_percent: split,
                        generations: generations.clone(),
                    })?;
                    if let Err(e) = self
                        .fleet
                        .wait_converged(&generations, self.plan.convergence_timeout)
                        .await
                    {
                        return Ok(self.roll_back(step, e.to_string(), None).await);
                    }
                    self.record(Event::Converged { step })?;
                }
                Err(e @ FleetError::Conflict { .. }) => return self.stop(step, e.to_string()),
                Err(e) => return Ok(self.roll_back(step, e.to_string(), None).await),
            }
            match self.hold(step).await? {
                Held::Passed => {}
                Held::Ended(outcome) => return Ok(outcome),
            }
        }
        let last = self.plan.split_of(self.plan.steps.len() - 1);
        self.record(Event::Completed {
            green_percent: last,
        })?;
        Ok(Outcome::Completed)
    }

    /// Watches the gates until the hold is over with a pass.
    async fn hold(&mut self, step: usize) -> Result<Held, EngineError> {
        let gates = self.plan.gates.clone();
        let hold = self.plan.steps[step].hold;
        let split = self.plan.split_of(step);
        self.source.reset();
        let _ = self.source.figures(&self.fleet).await; // the step's baseline
        let started = Instant::now();
        let (mut failures, mut inconclusive) = (0u32, 0u32);
        loop {
            if let Some(outcome) = self.wait_interval(step).await? {
                return Ok(Held::Ended(outcome));
            }
            let (verdict, figures) = match self.source.figures(&self.fleet).await {
                Ok(f) => (judge(&gates, &f), f),
                Err(e) => (
                    Verdict::Inconclusive(format!("no figures: {e}")),
                    Figures::default(),
                ),
            };
            self.out.progress(
                step,
                self.plan.steps.len(),
                split,
                started.elapsed(),
                hold,
                &figures,
                &verdict,
            );
            self.record(Event::Gate {
                step,
                green_percent: split,
                verdict: verdict.clone(),
                figures: figures.clone(),
            })?;
            match verdict {
                Verdict::Fail(reason) => {
                    inconclusive = 0;
                    failures += 1;
                    if failures >= gates.failure_limit {
                        let reason = format!("gate failed {failures} time(s) in a row: {reason}");
                        return Ok(Held::Ended(
                            self.roll_back(step, reason, Some(figures)).await,
                        ));
                    }
                }
                Verdict::Inconclusive(reason) => {
                    failures = 0;
                    inconclusive += 1;
                    if gates.inconclusive_limit > 0 && inconclusive >= gates.inconclusive_limit {
                        inconclusive = 0;
                        let reason = format!(
                            "inconclusive {} time(s) in a row: {reason}",
                            gates.inconclusive_limit
                        );
                        match gates.on_inconclusive_limit {
                            InconclusiveAction::Fail => {
                                return Ok(Held::Ended(
                                    self.roll_back(step, reason, Some(figures)).await,
                                ))
                            }
                            InconclusiveAction::Pause => {
                                self.record(Event::Paused { step, reason })?;
                                if let Some(outcome) = self.paused(step).await? {
                                    return Ok(Held::Ended(outcome));
                                }
                            }
                        }
                    }
                }
                Verdict::Pass => {
                    failures = 0;
                    inconclusive = 0;
                    if started.elapsed() >= hold {
                        self.record(Event::StepPassed {
                            step,
                            green_percent: split,
                            figures,
                        })?;
                        return Ok(Held::Passed);
                    }
                }
            }
        }
    }

    /// Sleeps one gate interval, acting on control commands meanwhile.
    async fn wait_interval(&mut self, step: usize) -> Result<Option<Outcome>, EngineError> {
        let until = Instant::now() + self.plan.gates.interval;
        while Instant::now() < until {
            if let Some(outcome) = self.controls(step, false).await? {
                return Ok(Some(outcome));
            }
            tokio::time::sleep(
                Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())),
            )
            .await;
        }
        self.renew_lock(step).await
    }

    /// Waits for `resume` (or abort, promote, emergency).
    async fn paused(&mut self, step: usize) -> Result<Option<Outcome>, EngineError> {
        self.out.note(&format!(
            "paused at step {}: run `cutover resume` to go on, `cutover abort` to roll back",
            step + 1
        ));
        loop {
            if let Some(outcome) = self.controls(step, true).await? {
                return Ok(match outcome {
                    Outcome::Signalled(_) => None, // resumed
                    other => Some(other),
                });
            }
            if let Some(outcome) = self.renew_lock(step).await? {
                return Ok(Some(outcome));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Acts on records other processes appended. While paused, `resume`
    /// comes back as `Signalled`.
    async fn controls(
        &mut self,
        step: usize,
        paused: bool,
    ) -> Result<Option<Outcome>, EngineError> {
        for record in self.journal.new_records() {
            match record.event {
                Event::Control { command, reason } => {
                    let why = reason.unwrap_or_else(|| "no reason given".into());
                    match command {
                        ControlCommand::Pause if !paused => {
                            self.record(Event::Paused {
                                step,
                                reason: format!("paused by {}: {why}", record.actor),
                            })?;
                            return Box::pin(self.paused(step)).await;
                        }
                        ControlCommand::Resume if paused => {
                            self.record(Event::Resumed { step })?;
                            return Ok(Some(Outcome::Signalled("resumed".into())));
                        }
                        ControlCommand::Abort => {
                            let reason = format!("aborted by {}: {why}", record.actor);
                            return Ok(Some(self.roll_back(step, reason, None).await));
                        }
                        ControlCommand::Promote => return Ok(Some(self.promote(step).await?)),
                        _ => {}
                    }
                }
                Event::Emergency { to, reason } => {
                    let why = format!(
                        "emergency switch to {to} by {}: {reason}; this run stops",
                        record.actor
                    );
                    return self.stop(step, why).map(Some);
                }
                _ => {}
            }
        }
        Ok(None)
    }

    async fn renew_lock(&mut self, step: usize) -> Result<Option<Outcome>, EngineError> {
        if self.last_lock_renewal.elapsed() < self.plan.lock_ttl / 3 {
            return Ok(None);
        }
        match self
            .fleet
            .take_lock(&self.holder, self.plan.lock_ttl, false)
            .await
        {
            Ok(()) => {
                self.last_lock_renewal = Instant::now();
                Ok(None)
            }
            Err(e @ FleetError::LockHeld { .. }) => self
                .stop(step, format!("lost the cutover lock: {e}"))
                .map(Some),
            Err(e) => {
                tracing::warn!("cannot renew the cutover lock (will retry): {e}");
                Ok(None)
            }
        }
    }

    /// The plan's preflight phase; `Some` ends the run before any change.
    async fn preflight(&mut self) -> Result<Option<Outcome>, EngineError> {
        let Some(preflight) = self.plan.preflight.clone() else {
            return Ok(None);
        };
        let report = crate::preflight::run(&preflight.args())
            .await
            .map_err(|e| EngineError::Refused(format!("preflight: {e}")))?;
        let checks = serde_json::to_value(&report.checks).expect("json");
        self.record(Event::Preflight {
            passed: report.passed,
            checks,
        })?;
        Ok((!report.passed).then(|| {
            Outcome::RolledBack("preflight failed on green; nothing was changed (`cutover preflight` shows the details)".into())
        }))
    }

    async fn smoke(&mut self, step: usize) -> Result<bool, EngineError> {
        if self.plan.smoke.is_empty() {
            return Ok(true);
        }
        let results = smoke::run_all(&self.smoke_target, &self.plan.smoke).await;
        let passed = results.iter().all(|r| r.passed);
        self.record(Event::Smoke {
            step,
            passed,
            results,
        })?;
        Ok(passed)
    }

    async fn apply(
        &self,
        green_percent: f64,
        reason: &str,
    ) -> Result<Vec<(String, u64)>, FleetError> {
        let splits: BTreeMap<String, f64> = self
            .plan
            .routes
            .iter()
            .map(|r| (r.clone(), green_percent))
            .collect();
        self.fleet.apply(&splits, &self.actor, reason, true).await
    }

    /// Back to the rollback target at once; the outcome says why.
    async fn roll_back(
        &mut self,
        step: usize,
        reason: String,
        figures: Option<Figures>,
    ) -> Outcome {
        let to = match self.plan.rollback.to {
            RollbackTarget::Zero => 0.0,
            RollbackTarget::LastPassed => {
                let records = journal::read_all(self.journal.path()).unwrap_or_default();
                journal::last_run(&records)
                    .iter()
                    .filter_map(|r| match r.event {
                        Event::StepPassed { green_percent, .. } => Some(green_percent),
                        _ => None,
                    })
                    .next_back()
                    .unwrap_or(0.0)
            }
        };
        let splits: BTreeMap<String, f64> =
            self.plan.routes.iter().map(|r| (r.clone(), to)).collect();
        let mut reason = reason;
        match self
            .fleet
            .apply(&splits, &self.actor, &format!("rollback: {reason}"), false)
            .await
        {
            Ok(generations) => {
                if let Err(e) = self
                    .fleet
                    .wait_converged(&generations, self.plan.convergence_timeout)
                    .await
                {
                    reason = format!("{reason}; after the rollback: {e}");
                }
            }
            Err(e) => reason = format!("{reason}; THE ROLLBACK WRITE FAILED: {e}"),
        }
        if let Err(e) = self.record(Event::RolledBack {
            step,
            to_percent: to,
            reason: reason.clone(),
            figures,
        }) {
            tracing::error!("{e}");
        }
        Outcome::RolledBack(reason)
    }

    async fn promote(&mut self, step: usize) -> Result<Outcome, EngineError> {
        let generations = match self.apply(100.0, "promote").await {
            Ok(g) => g,
            Err(e) => {
                return Ok(self
                    .roll_back(step, format!("promote failed: {e}"), None)
                    .await)
            }
        };
        if let Err(e) = self
            .fleet
            .wait_converged(&generations, self.plan.convergence_timeout)
            .await
        {
            return Ok(self
                .roll_back(step, format!("promote did not converge: {e}"), None)
                .await);
        }
        self.record(Event::Promoted { from_step: step })?;
        self.record(Event::Completed {
            green_percent: 100.0,
        })?;
        Ok(Outcome::Completed)
    }

    fn stop(&mut self, step: usize, reason: String) -> Result<Outcome, EngineError> {
        self.record(Event::Stopped {
            step,
            reason: reason.clone(),
        })?;
        Ok(Outcome::Stopped(reason))
    }

    fn record(&mut self, event: Event) -> Result<(), EngineError> {
        let record = self.journal.append(&self.actor, event)?;
        self.out.record(&record);
        Ok(())
    }
}

/// Where a run that died stands, from its journal: the first step whose
/// gates have not passed, and whether its split was already written.
fn position_of(run: &[Record]) -> Position {
    let mut passed: Option<usize> = None;
    let mut applied: Option<usize> = None;
    for r in run {
        match r.event {
            Event::StepPassed { step, .. } => passed = Some(step),
            Event::Applied { step, .. } => applied = Some(step),
            _ => {}
        }
    }
    let next = passed.map_or(0, |s| s + 1);
    Position {
        step: next,
        applied: applied == Some(next),
    }
}

/// The plan and records of the journal's newest run, refused (naming what
/// the operator wanted `to`) when there is none or it has ended.
pub fn live_run(journal_path: &Path, to: &str) -> Result<(Plan, Vec<Record>), EngineError> {
    let records = journal::read_all(journal_path)?;
    let run = journal::last_run(&records).to_vec();
    let Some(plan) = journal::plan_of(&run).cloned() else {
        return Err(EngineError::Refused(format!(
            "journal {} holds no cutover to {to}",
            journal_path.display()
        )));
    };
    if let Some(last) = run.last().filter(|r| r.event.ends_run()) {
        return Err(EngineError::Refused(format!(
            "the last cutover in {} has ended ({} at {}); nothing to {to}",
            journal_path.display(),
            event_name(&last.event),
            last.time
        )));
    }
    Ok((plan, run))
}

/// A lock holder `user@host/pidN` whose process is gone from this host.
pub fn holder_is_dead_here(holder: &str) -> bool {
    let Some((who, pid)) = holder.rsplit_once("/pid") else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    let same_host = who
        .rsplit_once('@')
        .is_some_and(|(_, host)| host == journal::hostname());
    // SAFETY: kill with signal 0 only checks that the process exists.
    same_host && unsafe { libc::kill(pid, 0) } != 0
}

/// Test failpoint: `CUTOVER_FAILPOINT=after-apply:<step>` kills the process
/// right after the step's split was written and before it was journaled,
/// the worst moment for a crash.
fn failpoint(name: &str, step: usize) {
    if std::env::var("CUTOVER_FAILPOINT").is_ok_and(|f| f == format!("{name}:{step}")) {
        eprintln!("failpoint {name}:{step} reached: aborting");
        std::process::abort();
    }
}

pub fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Started { .. } => "started",
        Event::Preflight { .. } => "preflight",
        Event::Smoke { .. } => "smoke",
        Event::AwaitingApproval { .. } => "awaiting_approval",
        Event::Applied { .. } => "applied",
        Event::Converged { .. } => "converged",
        Event::Gate { .. } => "gate",
        Event::StepPassed { .. } => "step_passed",
        Event::Paused { .. } => "paused",
        Event::Resumed { .. } => "resumed",
        Event::Promoted { .. } => "promoted",
        Event::RolledBack { .. } => "rolled_back",
        Event::Completed { .. } => "completed",
        Event::Stopped { .. } => "stopped",
        Event::LockTakenOver { .. } => "lock_taken_over",
        Event::Control { .. } => "control",
        Event::Emergency { .. } => "emergency",
    }
}
