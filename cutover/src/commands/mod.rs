//! The commands an operator runs from another terminal while (or after) a
//! cutover runs: pause, resume, approve, promote, abort, emergency, drain,
//! report (and `status`, in its own module). Beside the journal, the local way; with
//! `--plan`, through the plan's fleet ([`remote`]), from any terminal.

mod drain;
mod emergency;
pub mod plan_check;
pub mod remote;
mod report;

pub use drain::drain;
pub use emergency::{emergency, EmergencyTarget};
pub use report::report;

use crate::engine::{Engine, EngineError};
use crate::fleet::Fleet;
use crate::journal::{ControlCommand, Event, Journal};
use crate::outcome::Outcome;
use crate::output::Output;
use std::path::Path;

/// `pause`, `approve`, `promote [--full]`: a command for the live run, which acts on it within
/// one evaluation interval. `abort` rolls back directly when no run is alive.
pub async fn control(
    journal_path: &Path,
    command: ControlCommand,
    reason: Option<String>,
    out: Output,
) -> Result<Outcome, EngineError> {
    let (plan, run) = crate::engine::live_run(journal_path, command.command_line())?;
    if command == ControlCommand::Abort {
        let stage = crate::engine::stage_now(&plan, &run);
        let Some(fleet) = plan.schedule().fleet(stage).cloned() else {
            return Err(EngineError::Refused(format!(
                "the journaled plan names no fleet for stage {}",
                stage + 1
            )));
        };
        let fleet = Fleet::from_plan(&fleet).await?;
        let alive = fleet.lock_holder().await.is_some_and(|l| l.is_live());
        if !alive {
            let reason = reason.unwrap_or_else(|| "no reason given".into());
            return Engine::abort_dead_run(journal_path, out, &reason).await;
        }
    }
    let mut journal = Journal::open(journal_path)?;
    journal.append(
        &crate::host::actor(),
        Event::Control {
            command,
            reason,
            id: None,
        },
    )?;
    Ok(Outcome::Signalled(format!(
        "{command:?} sent to the running cutover; it acts within one evaluation interval (`cutover status` shows it)"
    )))
}
