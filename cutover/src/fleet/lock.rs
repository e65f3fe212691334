//! The cutover lock on the fleet's state: who holds it, taking or renewing
//! it, letting it go. One cutover at a time per fleet.

use super::{Fleet, FleetError};
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
pub struct LockState {
    pub holder: String,
    pub expires_at: u64,
}

impl LockState {
    /// Not expired, and its holder not provably gone from this host.
    pub fn is_live(&self) -> bool {
        self.expires_at > crate::host::unix_now() && !holder_is_dead_here(&self.holder)
    }
}

/// A lock holder `user@host/pidN` whose process is gone from this host.
pub fn holder_is_dead_here(holder: &str) -> bool {
    let Some((who, pid)) = holder.rsplit_once("/pid") else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    let same_host = who
        .rsplit_once('@')
        .is_some_and(|(_, host)| host == crate::host::hostname());
    // SAFETY: kill with signal 0 only checks that the process exists.
    same_host && unsafe { libc::kill(pid, 0) } != 0
}

impl Fleet {
    /// Takes (or renews) the lock on every store of the fleet: a shared
    /// store through whichever replica answers, own stores one by one.
    pub async fn take_lock(
        &self,
        holder: &str,
        ttl: Duration,
        take_over: bool,
    ) -> Result<(), FleetError> {
        let body = serde_json::json!({"holder": holder, "ttl_seconds": ttl.as_secs().max(1), "take_over": take_over});
        let (_, first) = self
            .patiently("reading the fleet's lock", || self.any_state())
            .await?;
        if first.shares_store() {
            return self
                .patiently("taking the cutover lock", || async {
                    let mut last = None;
                    for replica in &self.replicas {
                        match self.lock_on(replica, &body).await {
                            Err(e) if e.is_passing() => last = Some(e),
                            other => return other,
                        }
                    }
                    Err(last.expect("a fleet has replicas"))
                })
                .await;
        }
        for replica in &self.replicas {
            self.patiently("taking the cutover lock", || self.lock_on(replica, &body))
                .await?;
        }
        Ok(())
    }

    /// `PUT /v1/lock` on one replica.
    async fn lock_on(&self, replica: &str, body: &serde_json::Value) -> Result<(), FleetError> {
        let (status, answer) = self
            .send(reqwest::Method::PUT, replica, "/v1/lock", body)
            .await?;
        match status.as_u16() {
            200 => Ok(()),
            409 if answer["lock"].is_object() => Err(FleetError::LockHeld {
                holder: answer["lock"]["holder"].as_str().unwrap_or("?").to_owned(),
                expires_at: answer["lock"]["expires_at"].as_u64().unwrap_or(0),
                expired: answer["expired"].as_bool().unwrap_or(false),
            }),
            // 409 without a lock: the store changed under the replica; 5xx:
            // its store cannot be reached. Both pass.
            409 | 500.. => Err(Self::unavailable(
                replica,
                format!("PUT /v1/lock answered {status}: {}", answer["error"]),
            )),
            _ => Err(Self::fail(
                replica,
                format!("PUT /v1/lock answered {status}: {}", answer["error"]),
            )),
        }
    }

    /// Lets the lock go on every replica that answers (best effort: an
    /// unreleased lock expires).
    pub async fn release_lock(&self, holder: &str) {
        let body = serde_json::json!({ "holder": holder });
        for replica in &self.replicas {
            let _ = self
                .send(reqwest::Method::POST, replica, "/v1/lock/release", &body)
                .await;
        }
    }

    /// Who holds the lock, as the first replica that knows the split says.
    pub async fn lock_holder(&self) -> Option<LockState> {
        self.patiently("reading the fleet's lock", || self.any_state())
            .await
            .ok()
            .and_then(|(_, s)| s.lock)
    }
}
