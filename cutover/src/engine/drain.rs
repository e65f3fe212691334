//! A stage's `drain:` (a plan's, for a plan without stages) once the stage
//! reached 100% green: blue's remaining tunnels and streams ended on the
//! stage's fleet, journaled like `cutover drain`. Traffic has moved by
//! then: what the drain finds (or a fleet that cannot be drained) is
//! reported, never turned into a rollback.

use super::{Engine, EngineError};
use crate::fleet::{drain_fleets, Drained, Fleet};
use crate::journal::Event;
use crate::output::drain_summary;
use std::time::Duration;

impl Engine {
    /// Drains blue on `stage`'s fleet when the stage asks for it.
    pub(super) async fn drain_stage(&mut self, stage: usize) -> Result<(), EngineError> {
        let Some(drain) = self.schedule.stages[stage].drain.clone() else {
            return Ok(());
        };
        let deadline = drain.deadline;
        let fleet = match self.schedule.fleet(stage).map(Fleet::from_plan) {
            Some(found) => found.await,
            None => return Ok(()),
        };
        let fleets = match fleet {
            Ok(fleet) => vec![fleet],
            Err(e) => {
                tracing::warn!("drain: the stage's fleet was not found, not drained: {e}");
                return Ok(());
            }
        };
        let actor = self.actor.clone();
        let out = &mut self.out;
        let waiting = |in_flight: u64, to_deadline: Duration| {
            out.spinner(format!(
                "draining blue: {in_flight} in flight, tunnels close in {}s",
                to_deadline.as_secs()
            ))
        };
        let reason = Some("the plan's drain");
        let drained = drain_fleets(&fleets, "blue", deadline, &actor, reason, waiting).await;
        self.out.clear();
        let (replicas, left) = match drained {
            Ok(Drained::Done { replicas, left }) => (replicas, left),
            Ok(Drained::Refused(why)) => {
                tracing::warn!("drain refused: {why}");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!("drain failed: {e}");
                return Ok(());
            }
        };
        if !self.out.is_machine() {
            eprintln!("{}", drain_summary("blue", replicas, &left));
        }
        self.record(Event::Drained {
            color: "blue".into(),
            deadline_seconds: deadline.as_secs_f64(),
            replicas,
            left,
            reason: reason.map(str::to_owned),
        })
    }
}
