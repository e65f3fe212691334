//! Ending a run by moving the split at once: rolling back to the plan's
//! rollback target, or promoting to 100% green.

use super::{Engine, EngineError};
use crate::figures::Figures;
use crate::journal::{self, Event};
use crate::outcome::Outcome;
use crate::plan::RollbackTarget;
use std::collections::BTreeMap;

impl Engine {
    /// This stage's fleet back to the rollback target at once (earlier
    /// stages keep their splits); the outcome says why.
    pub(super) async fn roll_back(
        &mut self,
        step: usize,
        reason: String,
        figures: Option<Figures>,
    ) -> Outcome {
        let to = match self.plan.rollback.to {
            RollbackTarget::Zero => 0.0,
            RollbackTarget::LastPassed => {
                let records = journal::read_all(self.journal.path()).unwrap_or_default();
                let this_stage = self.schedule.steps_of(self.stage);
                journal::last_run(&records)
                    .iter()
                    .filter_map(|r| match r.event {
                        Event::StepPassed {
                            step,
                            green_percent,
                            ..
                        } if this_stage.contains(&step) => Some(green_percent),
                        _ => None,
                    })
                    .next_back()
                    .unwrap_or(0.0)
            }
        };
        let (splits, mirrors) = self.splits(to, 0.0);
        let mut reason = reason;
        let why = format!("rollback: {reason}");
        match self
            .fleet
            .apply_mirrored(&splits, &mirrors, &self.actor, &why, false)
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

    /// 100% green on this stage's fleet. Before the last stage the run
    /// goes on with the next stage (the outcome `Completed` says this
    /// stage is done).
    pub(super) async fn promote(&mut self, step: usize) -> Result<Outcome, EngineError> {
        self.journal.ensure_room()?;
        let generations = match self.apply(100.0, 0.0, "promote").await {
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
        if self.stage + 1 < self.schedule.stages.len() {
            return Ok(Outcome::Completed);
        }
        self.record(Event::Completed {
            green_percent: 100.0,
        })?;
        Ok(Outcome::Completed)
    }

    /// A step's split was written but the journal cannot say so (its disk
    /// is full or read-only): the fleet goes back to `before`, the split
    /// it served while the journal could still speak, so the journal and
    /// the gateways agree when the run stops here.
    pub(super) async fn unjournaled(
        &mut self,
        error: EngineError,
        before: Option<BTreeMap<String, f64>>,
    ) -> EngineError {
        let EngineError::Journal(cause) = error else {
            return error;
        };
        let back: Option<BTreeMap<String, f64>> = before.map(|b| {
            b.into_iter()
                .filter(|(route, _)| self.plan.routes.contains(route))
                .collect()
        });
        let serving = match back {
            None => "the step's split was written and could not be read back; `cutover status` and the gateways' /v1/state tell what they serve".to_owned(),
            Some(splits) => {
                let reason = "the journal cannot be written: back to the last journaled split";
                let put_back = match self.fleet.apply(&splits, &self.actor, reason, false).await {
                    Ok(g) => self.fleet.wait_converged(&g, self.plan.convergence_timeout).await,
                    Err(e) => Err(e),
                };
                let splits: Vec<String> =
                    splits.iter().map(|(r, p)| format!("{p}% on {r}")).collect();
                let splits = splits.join(", ");
                match put_back {
                    Ok(()) => format!("the step's split was put back; the gateways keep serving green {splits} (the last journaled)"),
                    Err(e) => format!("the step's split could not be put back ({e}); the gateways may serve it unjournaled"),
                }
            }
        };
        EngineError::JournalFailed { cause, serving }
    }
}
