//! The cutover lock in the split document: one cutover at a time per
//! fleet. Taking, renewing or releasing it keeps the generation.

use super::Gateway;
use crate::state::{CutoverLock, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the cutover lock is held by {:?} until {} (unix time){}", lock.holder, lock.expires_at, if *expired { "; it is stale: take it over explicitly" } else { "" })]
    Held { lock: CutoverLock, expired: bool },
    #[error("the state store refused the change: {0}")]
    Store(#[from] StoreError),
}

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Gateway {
    /// Takes or renews the cutover lock for `holder`. A lock another holder
    /// keeps is refused unless `take_over` is set: the caller has decided it
    /// is stale (expired, or its process is gone), and the takeover is logged.
    pub async fn take_lock(
        &self,
        holder: &str,
        ttl: u64,
        take_over: bool,
    ) -> Result<CutoverLock, LockError> {
        self.update(|doc| {
            let now = unix_now();
            if let Some(held) = &doc.lock {
                let expired = held.expires_at <= now;
                if held.holder != holder {
                    if !take_over {
                        return Err(LockError::Held {
                            lock: held.clone(),
                            expired,
                        });
                    }
                    tracing::warn!(previous = %held.holder, holder, expired, "cutover lock taken over");
                }
            }
            let lock = CutoverLock {
                holder: holder.to_owned(),
                renewed_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                    .to_string(),
                expires_at: now + ttl,
            };
            doc.lock = Some(lock.clone());
            Ok(lock)
        })
        .await
    }

    /// Releases the lock if `holder` has it.
    pub async fn release_lock(&self, holder: &str) -> Result<(), LockError> {
        self.update(|doc| match &doc.lock {
            Some(held) if held.holder == holder => {
                doc.lock = None;
                Ok(())
            }
            Some(held) => Err(LockError::Held {
                lock: held.clone(),
                expired: held.expires_at <= unix_now(),
            }),
            None => Ok(()),
        })
        .await
    }
}
