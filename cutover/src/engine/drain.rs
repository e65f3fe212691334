//! The plan's `drain:` after a completed run: blue's remaining tunnels and
//! streams ended on every stage's fleet, journaled like `cutover drain`.
//! The run has completed by then: what the drain finds (or a fleet that
//! cannot be drained) is reported, never turned into a rollback.

use super::{Engine, EngineError};
use crate::fleet::{drain_fleets, Drained, Fleet};
use crate::journal::Event;
use crate::output::drain_summary;
use std::time::Duration;

impl Engine {
    pub(super) async fn drain_blue(&mut self, deadline: Duration) -> Result<(), EngineError> {
        let mut fleets = Vec::new();
        for fleet in self.schedule.stages.iter().filter_map(|s| s.fleet.as_ref()) {
            match Fleet::from_plan(fleet).await {
                Ok(fleet) => fleets.push(fleet),
                Err(e) => tracing::warn!("drain: a fleet was not found, not drained: {e}"),
            }
        }
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
