//! `cutover drain`: after a cutover, end what is still open to the colour
//! no route sends traffic to (WebSockets, gRPC and HTTP/2 streams opened
//! before the split moved, requests in flight), and say when that cluster
//! may be deleted.

use crate::engine::EngineError;
use crate::fleet::{drain_fleets, Drained, Fleet};
use crate::journal::{Event, Journal};
use crate::outcome::exit;
use crate::output::{drain_summary, Output};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Drains `color` on every replica of every fleet, waits until nothing is
/// in flight to it (or the deadline passed), journals what it found and
/// says it: exit 0 when the colour is empty everywhere, 1 when not, 3 when
/// a route still sends it traffic (nothing was drained then).
pub async fn drain(
    fleets: &[Fleet],
    color: &str,
    deadline: Duration,
    reason: Option<String>,
    journal_path: &Path,
    out: &mut Output,
) -> Result<u8, EngineError> {
    let actor = crate::host::actor();
    let waiting = |in_flight: u64, to_deadline: Duration| {
        out.spinner(format!(
            "draining {color}: {in_flight} in flight, tunnels close in {}s",
            to_deadline.as_secs()
        ))
    };
    let drained = drain_fleets(fleets, color, deadline, &actor, reason.as_deref(), waiting).await?;
    let (replicas, left) = match drained {
        Drained::Refused(why) => return Err(EngineError::Refused(format!("drain refused: {why}"))),
        Drained::Done { replicas, left } => (replicas, left),
    };
    out.clear();
    let mut journal = Journal::open(journal_path)?;
    let record = journal.append(
        &actor,
        Event::Drained {
            color: color.to_owned(),
            deadline_seconds: deadline.as_secs_f64(),
            replicas,
            left: left.clone(),
            reason,
        },
    )?;
    if out.is_machine() {
        out.document(&json!({"color": color, "empty": left.is_empty(), "replicas": replicas, "left": left, "record": record}));
    } else {
        println!("{}", drain_summary(color, replicas, &left));
    }
    Ok(if left.is_empty() {
        exit::DONE
    } else {
        exit::FAILED
    })
}
