//! `cutover drain`: after a cutover, end what is still open to the colour
//! no route sends traffic to (WebSockets, gRPC and HTTP/2 streams opened
//! before the split moved, requests in flight), and say when that cluster
//! may be deleted.

use crate::engine::EngineError;
use crate::fleet::Fleet;
use crate::journal::{Event, Journal};
use crate::outcome::exit;
use crate::output::{drain_summary, Output};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long after the deadline the command still waits for the replicas
/// to report the colour empty (closing takes a moment).
const SETTLE: Duration = Duration::from_secs(5);

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
    for fleet in fleets {
        if let Err(why) = fleet
            .drain(color, deadline, &actor, reason.as_deref())
            .await?
        {
            return Err(EngineError::Refused(format!("drain refused: {why}")));
        }
    }
    let replicas: usize = fleets.iter().map(|f| f.replicas.len()).sum();
    let give_up = Instant::now() + deadline + SETTLE;
    let left = loop {
        let mut left = Vec::new();
        let mut in_flight = 0;
        for fleet in fleets {
            for (replica, count) in fleet.in_flight_to(color).await {
                match count {
                    Some(0) => {}
                    Some(n) => {
                        in_flight += n;
                        left.push(format!("{replica}: {n} in flight"));
                    }
                    None => left.push(format!("{replica}: did not answer")),
                }
            }
        }
        if left.is_empty() || Instant::now() >= give_up {
            break left;
        }
        let to_deadline = (give_up - SETTLE).saturating_duration_since(Instant::now());
        out.spinner(format!(
            "draining {color}: {in_flight} in flight on {} replica(s), tunnels close in {}s",
            left.len(),
            to_deadline.as_secs()
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
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
