//! Draining a colour on every replica of some fleets (`POST /v1/drain`),
//! then waiting until nothing is in flight to it on any of them
//! (`GET /v1/state`): what `cutover drain` and a plan's `drain:` do.

use super::{Fleet, FleetError};
use serde_json::json;
use std::time::{Duration, Instant};

/// How long after the deadline the replicas still have to report the
/// colour empty (closing takes a moment).
const SETTLE: Duration = Duration::from_secs(5);

/// How a drain ended.
pub enum Drained {
    /// A route still sends the colour traffic; nothing was drained.
    Refused(String),
    /// What is left at the end, per replica (empty: nothing anywhere).
    Done { replicas: usize, left: Vec<String> },
}

/// Drains `color` on every replica of `fleets` and waits (calling
/// `waiting` with what is in flight and the time to the deadline) until it
/// is empty everywhere or the deadline passed.
pub async fn drain_fleets(
    fleets: &[Fleet],
    color: &str,
    deadline: Duration,
    actor: &str,
    reason: Option<&str>,
    mut waiting: impl FnMut(u64, Duration),
) -> Result<Drained, FleetError> {
    for fleet in fleets {
        if let Err(why) = fleet.drain(color, deadline, actor, reason).await? {
            return Ok(Drained::Refused(why));
        }
    }
    let replicas = fleets.iter().map(|f| f.replicas.len()).sum();
    let close_at = Instant::now() + deadline;
    loop {
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
        if left.is_empty() || Instant::now() >= close_at + SETTLE {
            return Ok(Drained::Done { replicas, left });
        }
        waiting(
            in_flight,
            close_at.saturating_duration_since(Instant::now()),
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

impl Fleet {
    /// Asks every replica to drain `color`. A replica that refuses (a route
    /// still sends the colour traffic) stops it: `Err` in `Ok` says why.
    async fn drain(
        &self,
        color: &str,
        deadline: Duration,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<Result<(), String>, FleetError> {
        let body = json!({
            "color": color,
            "deadline_seconds": deadline.as_secs_f64(),
            "actor": actor,
            "reason": reason,
        });
        for replica in &self.replicas {
            let (status, answer) = self
                .patiently("asking for the drain", || {
                    self.send(reqwest::Method::POST, replica, "/v1/drain", &body)
                })
                .await?;
            match status.as_u16() {
                200 => {}
                409 => {
                    return Ok(Err(format!(
                        "{replica}: {}",
                        answer["error"].as_str().unwrap_or("refused")
                    )))
                }
                _ => {
                    return Err(FleetError::Setup(format!(
                        "{replica}: POST /v1/drain answered {status}: {answer}"
                    )))
                }
            }
        }
        Ok(Ok(()))
    }

    /// Requests (tunnels and streams included) in flight to `color` on each
    /// replica; a replica that does not answer is named with `None`.
    async fn in_flight_to(&self, color: &str) -> Vec<(String, Option<u64>)> {
        let mut counts = Vec::new();
        for replica in &self.replicas {
            let state = async {
                let resp = self.client.get(format!("{replica}/v1/state")).send().await;
                resp.ok()?.json::<serde_json::Value>().await.ok()
            };
            let count = state
                .await
                .and_then(|s| s["colors"][color]["in_flight"].as_u64());
            counts.push((replica.clone(), count));
        }
        counts
    }
}
