//! Ending a run by moving the split at once: rolling back to the plan's
//! rollback target, or promoting to 100% green.

use super::{Engine, EngineError};
use crate::figures::Figures;
use crate::journal::{self, Event};
use crate::outcome::Outcome;
use crate::plan::RollbackTarget;
use std::collections::BTreeMap;

impl Engine {
    /// Back to the rollback target at once; the outcome says why.
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
        self.record(Event::Completed {
            green_percent: 100.0,
        })?;
        Ok(Outcome::Completed)
    }
}
