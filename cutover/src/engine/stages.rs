//! A staged plan's seams: the fleet a run drives changes at a stage's first
//! step, and the stage's wait and approval come before it.
//!
//! A wait is journaled as a time ("not before T"), so the process may end
//! (`--no-wait`, a crash, a reboot) and whichever `cutover resume` runs
//! after T goes on; one that runs before T says when.

use super::{Engine, EngineError};
use crate::fleet::Fleet;
use crate::journal::{self, Event};
use crate::outcome::Outcome;
use crate::plan::Schedule;
use crate::smoke::SmokeTarget;
use std::time::{Duration, Instant, SystemTime};

/// The gateways of `stage` and where its smoke checks go.
pub(super) async fn fleet_of(
    schedule: &Schedule,
    stage: usize,
    patience: std::time::Duration,
) -> Result<(Fleet, SmokeTarget), EngineError> {
    let Some(plan) = schedule.fleet(stage) else {
        return Err(EngineError::Refused(format!(
            "stages[{stage}].fleet: the plan names no fleet for this stage"
        )));
    };
    let from_env = plan
        .pin_secret_env
        .as_ref()
        .and_then(|name| std::env::var(name).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let pin_secret = match (&plan.pin_secret_file, from_env) {
        (_, Some(secret)) => Some(secret),
        (Some(p), None) => Some(
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
        (None, None) if plan.pin_secret_env.is_some() => {
            return Err(EngineError::Refused(format!(
                "fleet.pin_secret_env: the environment variable {} is not set",
                plan.pin_secret_env.as_deref().unwrap_or_default()
            )))
        }
        (None, None) => None,
    };
    let smoke = SmokeTarget {
        proxy_url: plan.proxy_url.clone(),
        pin_header: plan.pin_header.clone(),
        pin_secret,
    };
    Ok((Fleet::from_plan(plan).await?.with_patience(patience), smoke))
}

impl Engine {
    /// Drives `stage`'s fleet from now on: the previous stage's lock is let
    /// go (that stage keeps its last split) and this one's taken.
    pub(super) async fn enter_stage(&mut self, stage: usize) -> Result<(), EngineError> {
        let (fleet, smoke) = fleet_of(&self.schedule, stage, self.plan.convergence_timeout).await?;
        self.fleet.release_lock(&self.holder).await;
        self.fleet = fleet;
        self.smoke_target = smoke;
        self.stage = stage;
        if let Some(previous_holder) = self.acquire_lock(false, true).await? {
            self.record(Event::LockTakenOver { previous_holder })?;
        }
        self.last_lock_renewal = Instant::now();
        if let Some(label) = self.schedule.label(stage) {
            self.out.note(&format!(
                "{label}: {} replica(s)",
                self.fleet.replicas.len()
            ));
        }
        Ok(())
    }

    /// A stage's wait and approval, then its start, each journaled once
    /// (a resumed run inside the stage does neither again). `Some` ends the
    /// run here.
    pub(super) async fn begin_stage(
        &mut self,
        stage: usize,
        step: usize,
    ) -> Result<Option<Outcome>, EngineError> {
        if !self.schedule.staged {
            return Ok(None);
        }
        let records = journal::read_all(self.journal.path())?;
        let run = journal::last_run(&records);
        let journaled = |f: &dyn Fn(&Event) -> bool| run.iter().any(|r| f(&r.event));
        if journaled(&|e| matches!(e, Event::StageStarted { stage: s, .. } if *s == stage)) {
            return Ok(None);
        }
        let name = self.schedule.stages[stage].name.clone();
        if let Some(wait) = self.schedule.stages[stage].wait_before {
            let not_before = match journaled_not_before(run, stage) {
                Some(t) => t,
                None => {
                    let t = SystemTime::now() + wait;
                    self.record(Event::StageWaiting {
                        stage,
                        name: name.clone(),
                        not_before: humantime::format_rfc3339_millis(t).to_string(),
                    })?;
                    t
                }
            };
            if let Some(outcome) = self.wait_until(stage, step, not_before).await? {
                return Ok(Some(outcome));
            }
        }
        if self.schedule.stages[stage].approval {
            self.record(Event::AwaitingApproval { step })?;
            if let Some(outcome) = self.paused(step).await? {
                return Ok(Some(outcome));
            }
            self.step_promoted = false; // a `promote` here approves the stage
        }
        self.record(Event::StageStarted { stage, name })?;
        Ok(None)
    }

    /// Waits for `not_before` (or leaves off with `--no-wait`), keeping the
    /// lock. An abort or emergency meanwhile stops the plan; no traffic
    /// moves, since the stage has not begun.
    async fn wait_until(
        &mut self,
        stage: usize,
        step: usize,
        not_before: SystemTime,
    ) -> Result<Option<Outcome>, EngineError> {
        let label = self.schedule.label(stage).unwrap_or_default();
        let until = humantime::format_rfc3339_seconds(not_before);
        loop {
            let left = match not_before.duration_since(SystemTime::now()) {
                Ok(left) if !left.is_zero() => left,
                _ => return Ok(None),
            };
            let left_text = humantime::format_duration(Duration::from_secs(left.as_secs() + 1));
            if self.no_wait {
                return Ok(Some(Outcome::Waiting(format!(
                    "{label} may not begin before {until} ({left_text} from now); `cutover resume` then goes on"
                ))));
            }
            self.out.waiting(&label, &until.to_string(), left);
            self.take_fleet_controls().await?;
            for record in self.new_records() {
                let stopped_by = match &record.event {
                    Event::Control {
                        command: journal::ControlCommand::Abort,
                        reason,
                        ..
                    } => format!(
                        "aborted by {}: {}",
                        record.actor,
                        reason.as_deref().unwrap_or("no reason given")
                    ),
                    Event::Emergency { to, reason, .. } => {
                        format!("emergency switch to {to} by {}: {reason}", record.actor)
                    }
                    _ => continue,
                };
                let reason =
                    format!("{stopped_by}, while waiting before {label}; no traffic was moved");
                return self.stop(step, reason).map(Some);
            }
            if let Some(outcome) = self.renew_lock(step).await? {
                return Ok(Some(outcome));
            }
            tokio::time::sleep(left.min(Duration::from_millis(200))).await;
        }
    }
}

/// The "not before" a run journaled for `stage`, if it did.
fn journaled_not_before(run: &[journal::Record], stage: usize) -> Option<SystemTime> {
    run.iter().rev().find_map(|r| match &r.event {
        Event::StageWaiting {
            stage: s,
            not_before,
            ..
        } if *s == stage => humantime::parse_rfc3339(not_before).ok(),
        _ => None,
    })
}
