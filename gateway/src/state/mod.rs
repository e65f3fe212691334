//! The desired split: one document with a generation, kept in a store so it
//! survives restarts and is shared by every replica.

mod file;
mod kubernetes;

pub use file::FileStore;
pub use kubernetes::{KubeStore, KubeTarget, DATA_KEY};

use crate::split::GreenPercent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The split of every route. `generation` grows by one per accepted change
/// and is never reused; a replica reports the generation it serves so the
/// cutover engine can wait for a fleet to converge.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitDocument {
    pub generation: u64,
    pub routes: BTreeMap<String, GreenPercent>,
    /// Share of each route's blue requests copied to green (routes with a
    /// `mirror:` block; absent: the config's `mirror.percent`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mirrors: BTreeMap<String, GreenPercent>,
    /// Who made the last change, and why (free text from the caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339 time of the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// The cutover lock: one cutover at a time per fleet. Taking or
    /// releasing it is not a split change and keeps the generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<CutoverLock>,
    /// What the run holding the lock last published about itself (kept
    /// as given): `cutover status --plan` reads it from any replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunProgress>,
    /// Commands from operators' terminals (pause, resume, abort, ...)
    /// waiting for the run to journal and act on them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<ControlRequest>,
}

/// A run's own account of where it stands, published while it holds the
/// lock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunProgress {
    pub holder: String,
    /// RFC 3339, the gateway's clock.
    pub published_at: String,
    /// The run's status document (what `cutover status -o json` prints).
    pub progress: serde_json::Value,
}

/// One operator's command for the run, until the run takes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlRequest {
    /// Chosen by the sender; a second request with the same id is the same
    /// request (a retry).
    pub id: String,
    /// `pause`, `resume`, `approve`, `promote` (to 100%), `promote_step`, `abort`
    /// or `emergency`.
    pub command: String,
    /// Who sent it (`user@host`).
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `emergency`: the colour that took all traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// RFC 3339, the gateway's clock.
    #[serde(default)]
    pub queued_at: String,
}

/// Who runs the cutover of this fleet, until when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutoverLock {
    pub holder: String,
    /// RFC 3339 time it was taken (or last renewed).
    pub renewed_at: String,
    /// Seconds since the Unix epoch after which it is stale.
    pub expires_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else changed the document first.
    #[error("the stored split changed concurrently (generation {0} is no longer current)")]
    Conflict(u64),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Corrupt(String),
}

/// Where the split document lives.
pub enum Store {
    /// Nothing survives a restart; the config's initial splits apply.
    Memory,
    File(FileStore),
    /// A ConfigMap shared by every replica.
    Kubernetes(Arc<KubeStore>),
}

impl Store {
    /// The stored document, or `None` when nothing was stored yet.
    /// Called once at start-up, outside any async runtime.
    pub fn load(&self) -> Result<Option<SplitDocument>, StoreError> {
        match self {
            Store::Memory => Ok(None),
            Store::File(f) => f.load(),
            Store::Kubernetes(k) => k.load(),
        }
    }

    /// Stores `doc` durably; returns only once it is safe from a crash.
    pub async fn save(&self, doc: &SplitDocument) -> Result<(), StoreError> {
        match self {
            Store::Memory => Ok(()),
            Store::File(f) => f.save(doc),
            Store::Kubernetes(k) => k.save(doc).await,
        }
    }

    /// True while the store cannot be reached and the last split is served.
    pub fn is_stale(&self) -> bool {
        match self {
            Store::Kubernetes(k) => k.is_stale(),
            _ => false,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Store::Memory => "memory".into(),
            Store::File(f) => format!("file {}", f.path().display()),
            Store::Kubernetes(k) => k.describe(),
        }
    }
}
