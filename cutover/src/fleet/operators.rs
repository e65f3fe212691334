//! The channel between operators' terminals and a run, through the fleet's
//! state (the gateways keep it beside the lock): a run publishes its
//! progress there, operators queue commands there, and the run takes them.
//! So any terminal that reaches the admin API drives a run, wherever its
//! journal lives (a Job's volume, another machine).

use super::{Fleet, FleetError, LockState};
use serde::{Deserialize, Serialize};

/// An operator's command for the run, as the fleet keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// Chosen by the sender; the run journals each id once.
    pub id: String,
    /// `pause`, `resume`, `approve`, `promote`, `abort` or `emergency`.
    pub command: String,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `emergency`: the colour that took all traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// When a gateway took it (RFC 3339, the gateway's clock).
    #[serde(default, skip_serializing)]
    pub queued_at: String,
}

/// A run's progress as it published it.
#[derive(Clone, Debug, Deserialize)]
pub struct Published {
    pub holder: String,
    /// RFC 3339, the gateway's clock.
    pub published_at: String,
    /// The run's status document.
    pub progress: serde_json::Value,
}

impl Fleet {
    /// Queues `request` for the run: through any replica of a shared
    /// store, else on every replica (the run reads them all and takes each
    /// id once).
    pub async fn queue_control(&self, request: &ControlRequest) -> Result<(), FleetError> {
        let body = serde_json::to_value(request).expect("json");
        let (_, first) = self
            .patiently("reading the fleet's state", || self.any_state())
            .await?;
        let targets: Vec<&String> = match first.shares_store() {
            true => self.replicas.iter().take(1).collect(),
            false => self.replicas.iter().collect(),
        };
        for replica in targets {
            self.patiently("queueing the command", || async {
                let (status, answer) = self
                    .send(reqwest::Method::POST, replica, "/v1/controls", &body)
                    .await?;
                match status.as_u16() {
                    200 => Ok(()),
                    // A concurrent change of the store, or the store away.
                    409 | 500.. => Err(Self::unavailable(
                        replica,
                        format!("POST /v1/controls answered {status}: {}", answer["error"]),
                    )),
                    _ => Err(Self::fail(
                        replica,
                        format!("POST /v1/controls answered {status}: {}", answer["error"]),
                    )),
                }
            })
            .await?;
        }
        Ok(())
    }

    /// The commands waiting on any replica that answers, each id once, in
    /// the order they were queued.
    pub async fn waiting_controls(&self) -> Vec<ControlRequest> {
        let mut all: Vec<ControlRequest> = Vec::new();
        for replica in &self.replicas {
            if let Ok(state) = self.state(replica).await {
                for c in state.controls {
                    if !all.iter().any(|a| a.id == c.id) {
                        all.push(c);
                    }
                }
            }
        }
        all.sort_by(|a, b| a.queued_at.cmp(&b.queued_at));
        all
    }

    /// Takes `ids` off every replica's queue (best effort: what stays is
    /// seen again, and the run journals each id once).
    pub async fn ack_controls(&self, holder: &str, ids: &[String]) {
        let body = serde_json::json!({"holder": holder, "ids": ids});
        for replica in &self.replicas {
            if let Err(e) = self
                .send(reqwest::Method::POST, replica, "/v1/controls/ack", &body)
                .await
            {
                tracing::debug!("taking commands off {replica}'s queue: {e}");
            }
        }
    }

    /// Publishes the run's progress (best effort, no retries: the next
    /// publication carries the news): on one replica of a shared store,
    /// else on each.
    pub async fn publish(&self, holder: &str, progress: &serde_json::Value) {
        let body = serde_json::json!({"holder": holder, "progress": progress});
        for replica in &self.replicas {
            match self
                .send(reqwest::Method::PUT, replica, "/v1/run", &body)
                .await
            {
                Ok((status, _)) if status.is_success() => {
                    if self.shared.get() == Some(&true) {
                        return; // one write reaches every replica
                    }
                }
                Ok((status, answer)) => {
                    tracing::debug!(
                        "publishing progress on {replica}: {status} {}",
                        answer["error"]
                    )
                }
                Err(e) => tracing::debug!("publishing progress on {replica}: {e}"),
            }
        }
    }

    /// The newest progress any replica holds, and the fleet's lock (as
    /// the first replica that knows the split says).
    pub async fn run_view(&self) -> (Option<Published>, Option<LockState>) {
        let (mut newest, mut lock): (Option<Published>, Option<Option<LockState>>) = (None, None);
        for replica in &self.replicas {
            let Ok(state) = self.state(replica).await else {
                continue;
            };
            if state.loaded && lock.is_none() {
                lock = Some(state.lock.clone());
            }
            if let Some(run) = state.run {
                if newest
                    .as_ref()
                    .is_none_or(|n| n.published_at < run.published_at)
                {
                    newest = Some(run);
                }
            }
        }
        (newest, lock.flatten())
    }
}
