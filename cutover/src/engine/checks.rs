//! The checks that run before traffic moves: the plan's preflight phase
//! (green's cluster through the Kubernetes API) and each step's smoke
//! requests to green; and the tests' failpoint.

use super::{Engine, EngineError};
use crate::journal::Event;
use crate::outcome::Outcome;
use crate::smoke;

impl Engine {
    /// The plan's preflight phase; `Some` ends the run before any change.
    pub(super) async fn preflight(&mut self) -> Result<Option<Outcome>, EngineError> {
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

    pub(super) async fn smoke(&mut self, step: usize) -> Result<bool, EngineError> {
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
}

/// Whether the test failpoint `CUTOVER_FAILPOINT=<name>:<step>` is set.
fn failpoint_set(name: &str, step: usize) -> bool {
    std::env::var("CUTOVER_FAILPOINT").is_ok_and(|f| f == format!("{name}:{step}"))
}

/// Test failpoint `after-apply:<step>`: kills the process right after the
/// step's split was written and before it was journaled, the worst moment
/// for a crash.
pub(super) fn failpoint(name: &str, step: usize) {
    if failpoint_set(name, step) {
        eprintln!("failpoint {name}:{step} reached: aborting");
        std::process::abort();
    }
}

impl Engine {
    /// Journals a step's `applied` record. The test failpoint
    /// `journal-refuses-applied:<step>` makes the journal refuse it, as a
    /// file system that cannot allocate room ahead would when full.
    pub(super) fn record_applied(&mut self, step: usize, event: Event) -> Result<(), EngineError> {
        if failpoint_set("journal-refuses-applied", step) {
            return Err(EngineError::Journal(crate::journal::JournalError {
                path: self.journal.path().display().to_string(),
                message: "cannot append: refused by the test failpoint".into(),
            }));
        }
        self.record(event)
    }
}
