//! The file store: the split document as JSON, replaced atomically.
//!
//! A write goes to a temporary file in the same directory, is fsynced,
//! renamed over the old file, and the directory is fsynced, so after a crash
//! the file holds either the old or the new document, never a mix.

use super::{SplitDocument, StoreError};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    pub fn new(path: PathBuf) -> FileStore {
        FileStore { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Result<Option<SplitDocument>, StoreError> {
        let text = match fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::Corrupt(format!(
                    "cannot read state file {}: {e}",
                    self.path.display()
                )))
            }
        };
        serde_json::from_slice(&text).map(Some).map_err(|e| {
            StoreError::Corrupt(format!(
                "state file {} is not a valid split document ({e}); fix or remove it, or start with --reset-state to begin from the config's initial splits",
                self.path.display()
            ))
        })
    }

    pub fn save(&self, doc: &SplitDocument) -> Result<(), StoreError> {
        let unavailable = |what: &str, e: std::io::Error| {
            StoreError::Unavailable(format!("{what} {}: {e}", self.path.display()))
        };
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // A first save makes the state's directory (the example config keeps
        // its state under `target/`, which a fresh work directory lacks).
        fs::create_dir_all(dir).map_err(|e| unavailable("cannot create the directory of", e))?;
        let tmp = self.path.with_extension("tmp");
        let body = serde_json::to_vec_pretty(doc).expect("document serializes");
        let mut f =
            File::create(&tmp).map_err(|e| unavailable("cannot create temp file for", e))?;
        f.write_all(&body)
            .and_then(|_| f.sync_all())
            .map_err(|e| unavailable("cannot write temp file for", e))?;
        fs::rename(&tmp, &self.path).map_err(|e| unavailable("cannot replace", e))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| unavailable("cannot sync the directory of", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::GreenPercent;

    #[test]
    fn saves_and_loads_and_names_a_corrupt_file() {
        let dir = std::env::temp_dir().join(format!("gw-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        // The state's own directory does not exist yet: the first save makes it.
        let store = FileStore::new(dir.join("state").join("state.json"));
        assert!(store.load().unwrap().is_none());
        let mut doc = SplitDocument {
            generation: 7,
            ..Default::default()
        };
        doc.routes
            .insert("web".into(), GreenPercent::from_percent(37.5).unwrap());
        store.save(&doc).unwrap();
        assert_eq!(store.load().unwrap().unwrap(), doc);
        fs::write(store.path(), b"{\"generation\": 7, \"rou").unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("state.json"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }
}
