//! Operators' commands that come through the fleet (`cutover pause --plan`
//! and the like, from any terminal): the run journals each one once, with
//! the operator as its actor, then takes it off the fleet's queue. From
//! the journal on they are handled like commands written there directly.

use super::{Engine, EngineError};
use crate::fleet::ControlRequest;
use crate::journal::{ControlCommand, Event, Record};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// How often the fleet's queue is read.
const EVERY: Duration = Duration::from_secs(1);

impl Engine {
    /// Journals the commands waiting in the fleet, then takes them off
    /// its queue (at most once a second).
    pub(super) async fn take_fleet_controls(&mut self) -> Result<(), EngineError> {
        if self.inbox_read.is_some_and(|at| at.elapsed() < EVERY) {
            return Ok(());
        }
        self.inbox_read = Some(Instant::now());
        let waiting = self.fleet.waiting_controls().await;
        if waiting.is_empty() {
            return Ok(());
        }
        let mut taken = Vec::new();
        for request in waiting {
            if self.journaled_ids.insert(request.id.clone()) {
                match event_of(&request) {
                    Some(event) => {
                        let record = self.journal.append(&request.actor, event)?;
                        self.published(&record);
                    }
                    None => tracing::warn!(
                        "a command {:?} from {} is not one this run knows; dropped",
                        request.command,
                        request.actor
                    ),
                }
            }
            taken.push(request.id);
        }
        self.fleet.ack_controls(&self.holder, &taken).await;
        Ok(())
    }

    /// Records appended to the journal since the last call (by anyone);
    /// the fleet commands among them count as journaled (an emergency
    /// journaled here is also queued in the fleet).
    pub(super) fn new_records(&mut self) -> Vec<Record> {
        let records = self.journal.new_records();
        self.journaled_ids.extend(journaled_ids(&records));
        records
    }

    /// A new run does not act on commands queued before it began (for a
    /// run that has ended): each is logged and dropped.
    pub(super) async fn drop_stale_controls(&mut self) {
        let waiting = self.fleet.waiting_controls().await;
        if waiting.is_empty() {
            return;
        }
        for c in &waiting {
            tracing::warn!(
                "dropping a {} by {} queued at {} before this run began",
                c.command,
                c.actor,
                c.queued_at
            );
        }
        let ids: Vec<String> = waiting.into_iter().map(|c| c.id).collect();
        self.fleet.ack_controls(&self.holder, &ids).await;
    }
}

/// The ids of fleet commands a run has journaled already.
pub(super) fn journaled_ids(run: &[Record]) -> HashSet<String> {
    run.iter()
        .filter_map(|r| match &r.event {
            Event::Control { id, .. } | Event::Emergency { id, .. } => id.clone(),
            _ => None,
        })
        .collect()
}

/// The journal record for a queued command.
fn event_of(request: &ControlRequest) -> Option<Event> {
    let id = Some(request.id.clone());
    if request.command == "emergency" {
        return Some(Event::Emergency {
            to: request.to.clone()?,
            reason: request.reason.clone().unwrap_or_default(),
            id,
        });
    }
    Some(Event::Control {
        command: ControlCommand::from_name(&request.command)?,
        reason: request.reason.clone(),
        id,
    })
}
