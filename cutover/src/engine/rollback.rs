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

    /// 100% green on this stage's fleet. Before the last stage the run
    /// goes on with the next stage (the outcome `Completed` says this
    /// stage is done).
    pub(super) async fn promote(&mut self, step: usize) -> Result<Outcome, EngineError> {
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
        if self.stage + 1 < self.schedule.stages.len() {
            return Ok(Outcome::Completed);
        }
        self.record(Event::Completed {
            green_percent: 100.0,
        })?;
        Ok(Outcome::Completed)
    }
}
