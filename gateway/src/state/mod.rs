//! The desired split: one document with a generation, kept in a store so it
//! survives restarts and is shared by every replica.

mod file;

pub use file::FileStore;

use crate::split::GreenPercent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The split of every route. `generation` grows by one per accepted change
/// and is never reused; a replica reports the generation it serves so the
/// cutover engine can wait for a fleet to converge.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitDocument {
    pub generation: u64,
    pub routes: BTreeMap<String, GreenPercent>,
    /// Who made the last change, and why (free text from the caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339 time of the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
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
}

impl Store {
    /// The stored document, or `None` when nothing was stored yet.
    pub fn load(&self) -> Result<Option<SplitDocument>, StoreError> {
        match self {
            Store::Memory => Ok(None),
            Store::File(f) => f.load(),
        }
    }

    /// Stores `doc` durably; returns only once it is safe from a crash.
    pub fn save(&self, doc: &SplitDocument) -> Result<(), StoreError> {
        match self {
            Store::Memory => Ok(()),
            Store::File(f) => f.save(doc),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Store::Memory => "memory".into(),
            Store::File(f) => format!("file {}", f.path().display()),
        }
    }
}
