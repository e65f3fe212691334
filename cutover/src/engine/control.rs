//! What happens around a step while it holds: control commands from other
//! terminals (pause, resume, abort, promote, emergency) and the cutover
//! lock (taken at the start, renewed while the run lives).

use super::{Engine, EngineError};
use crate::fleet::FleetError;
use crate::journal::{ControlCommand, Event};
use crate::outcome::Outcome;
use std::time::{Duration, Instant};

impl Engine {
    /// Takes the fleet's lock. Another holder's lock is taken over when it
    /// has expired and the operator said `--take-over`, or, when this
    /// process continues a journaled run (`resuming`), when its holder is
    /// provably gone from this host: the run that died is this one. A new
    /// run never silently takes over a dead run's lock (that run may be
    /// resumed from its journal). Returns who had it.
    pub(super) async fn acquire_lock(
        &mut self,
        take_over: bool,
        resuming: bool,
    ) -> Result<Option<String>, EngineError> {
        if let Some(lock) = self
            .fleet
            .lock_holder()
            .await
            .filter(|l| l.holder != self.holder)
        {
            let dead = crate::fleet::holder_is_dead_here(&lock.holder);
            let expired = dead || lock.expires_at <= crate::host::unix_now();
            if (dead && resuming) || (expired && take_over) {
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

    /// Sleeps one gate interval, acting on control commands meanwhile.
    pub(super) async fn wait_interval(
        &mut self,
        step: usize,
    ) -> Result<Option<Outcome>, EngineError> {
        let until = Instant::now() + self.plan.gates.interval;
        while Instant::now() < until {
            if let Some(outcome) = self.controls(step, false).await? {
                return Ok(Some(outcome));
            }
            if self.step_promoted {
                return Ok(None);
            }
            tokio::time::sleep(
                Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())),
            )
            .await;
        }
        self.renew_lock(step).await
    }

    /// Waits for `resume` (or abort, promote, emergency).
    pub(super) async fn paused(&mut self, step: usize) -> Result<Option<Outcome>, EngineError> {
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
    /// comes back as `Signalled`. A `promote` of one step sets
    /// `step_promoted` (and resumes a pause): the hold ends as passed.
    pub(super) async fn controls(
        &mut self,
        step: usize,
        paused: bool,
    ) -> Result<Option<Outcome>, EngineError> {
        self.take_fleet_controls().await?;
        for record in self.new_records() {
            match record.event {
                Event::Control {
                    command, reason, ..
                } => {
                    let why = reason.unwrap_or_else(|| "no reason given".into());
                    match command {
                        ControlCommand::Pause if !paused => {
                            self.record(Event::Paused {
                                step,
                                reason: format!("paused by {}: {why}", record.actor),
                            })?;
                            return Box::pin(self.paused(step)).await;
                        }
                        ControlCommand::Resume | ControlCommand::Approve if paused => {
                            self.record(Event::Resumed { step })?;
                            return Ok(Some(Outcome::Signalled("resumed".into())));
                        }
                        ControlCommand::Abort => {
                            let reason = format!("aborted by {}: {why}", record.actor);
                            return Ok(Some(self.roll_back(step, reason, None).await));
                        }
                        ControlCommand::Promote => return Ok(Some(self.promote(step).await?)),
                        ControlCommand::PromoteStep => {
                            self.record(Event::StepPromoted { step })?;
                            self.step_promoted = true;
                            if paused {
                                self.record(Event::Resumed { step })?;
                                return Ok(Some(Outcome::Signalled("promoted".into())));
                            }
                            return Ok(None);
                        }
                        _ => {}
                    }
                }
                Event::Emergency { to, reason, .. } => {
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

    pub(super) async fn renew_lock(&mut self, step: usize) -> Result<Option<Outcome>, EngineError> {
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

    /// Ends the run without touching the split (an outside change, a lost
    /// lock, an emergency).
    pub(super) fn stop(&mut self, step: usize, reason: String) -> Result<Outcome, EngineError> {
        self.record(Event::Stopped {
            step,
            reason: reason.clone(),
        })?;
        Ok(Outcome::Stopped(reason))
    }
}
