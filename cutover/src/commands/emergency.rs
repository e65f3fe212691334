//! `cutover emergency`: every route of every fleet to one colour, now.

use crate::engine::EngineError;
use crate::fleet::{ControlRequest, Fleet};
use crate::journal::{Event, Journal};
use crate::output::Output;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Where an emergency switch goes: each fleet (a staged plan's stages
/// each have one), found as a run finds it.
pub struct EmergencyTarget {
    pub fleets: Vec<Fleet>,
}

/// `emergency --to COLOR`: every route of every replica (of every fleet
/// given: a staged plan's stages) to 100% of one colour now. Needs no plan,
/// no running cutover and no lock. A fleet that cannot be switched does
/// not stop the others; the first failure is returned after them. A run
/// driving a fleet learns of it through the fleet (and the journal here)
/// and stops.
pub async fn emergency(
    target: EmergencyTarget,
    to_green: bool,
    reason: &str,
    journal_path: &Path,
    out: &Output,
) -> Result<(), EngineError> {
    let to = if to_green { "green" } else { "blue" };
    let actor = crate::host::actor();
    let request = ControlRequest {
        id: super::remote::request_id(&actor),
        command: "emergency".into(),
        actor: actor.clone(),
        reason: Some(reason.to_owned()),
        to: Some(to.to_owned()),
        queued_at: String::new(),
    };
    let (mut routes, mut generations, mut replicas) = (BTreeMap::new(), Vec::new(), 0);
    let mut switched_fleets = Vec::new();
    let mut failure = None;
    for fleet in target.fleets {
        let switched = async {
            let these: BTreeMap<String, f64> = fleet
                .splits_now()
                .await?
                .into_keys()
                .map(|route| (route, if to_green { 100.0 } else { 0.0 }))
                .collect();
            let g = fleet
                .apply(&these, &actor, &format!("emergency: {reason}"), false)
                .await?;
            Ok::<_, crate::fleet::FleetError>((these, g))
        };
        match switched.await {
            Ok((these, g)) => {
                routes.extend(these);
                generations.extend(g);
                replicas += fleet.replicas.len();
                switched_fleets.push(fleet);
            }
            Err(e) => {
                tracing::error!("emergency: {e}");
                failure.get_or_insert(e);
            }
        }
    }
    if replicas == 0 {
        if let Some(e) = failure {
            return Err(e.into());
        }
    }
    // Keep the record, and tell a running cutover (it stops): one beside
    // this journal directly, any other through its fleet.
    let mut journal = Journal::open(journal_path)?;
    let record = journal.append(
        &actor,
        Event::Emergency {
            to: to.into(),
            reason: reason.into(),
            id: Some(request.id.clone()),
        },
    )?;
    for fleet in &switched_fleets {
        if let Err(e) = fleet.queue_control(&request).await {
            tracing::warn!("a run driving this fleet was not told of the emergency: {e}");
        }
    }
    notify_latest_run(journal_path, &record).await;
    if out.is_machine() {
        out.document(
            &json!({"emergency": to, "routes": routes, "generations": generations, "record": record}),
        );
    } else {
        eprintln!(
            "EMERGENCY: routes {:?} now send 100% to {to} on {replicas} replica(s)",
            routes.keys().collect::<Vec<_>>(),
        );
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Tells the newest run's notification receivers about `record` (an
/// emergency happens outside a run); a receiver that cannot be set up is
/// logged and skipped, never stopping the emergency.
async fn notify_latest_run(journal_path: &Path, record: &crate::journal::Record) {
    let Ok(records) = crate::journal::read_all(journal_path) else {
        return;
    };
    let Some(Event::Started { plan, .. }) =
        crate::journal::last_run(&records).first().map(|r| &r.event)
    else {
        return;
    };
    match crate::notify::Notifier::start(&plan.notify) {
        Ok(mut notifier) => {
            notifier.notify(record);
            notifier.flush(crate::notify::FLUSH_LIMIT).await;
        }
        Err(e) => tracing::warn!("emergency not notified: {e}"),
    }
}
