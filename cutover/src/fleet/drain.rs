//! Draining a colour on every replica of a fleet (`POST /v1/drain`), and
//! what is still in flight to it on each (`GET /v1/state`).

use super::{Fleet, FleetError};
use serde_json::json;
use std::time::Duration;

impl Fleet {
    /// Asks every replica to drain `color`. A replica that refuses (a route
    /// still sends the colour traffic) stops it: `Err` in `Ok` says why.
    pub async fn drain(
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
    pub async fn in_flight_to(&self, color: &str) -> Vec<(String, Option<u64>)> {
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
