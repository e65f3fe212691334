//! The journal: an append-only file of JSON lines, fsynced per record. It
//! is the cutover's memory: `resume` continues from it, `status` reads it,
//! and control commands from other terminals are records in it too.

mod event;

pub use event::{ControlCommand, Event};

use crate::host::now;
use crate::plan::Plan;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339.
    pub time: String,
    /// Who did it: `user@host` (and the process for a run).
    pub actor: String,
    #[serde(flatten)]
    pub event: Event,
}

/// Bytes kept allocated past the journal's end before a split write.
pub const ROOM: u64 = 16 * 1024;

pub struct Journal {
    path: PathBuf,
    file: File,
    /// Bytes of the file already read by `new_records`.
    read_offset: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {message}")]
pub struct JournalError {
    pub path: String,
    pub message: String,
}

fn journal_error(path: &Path, message: impl std::fmt::Display) -> JournalError {
    JournalError {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

impl Journal {
    /// Opens (creating) the journal for appending; reading starts at its end.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|e| journal_error(path, format!("cannot open: {e}")))?;
        let read_offset = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Journal {
            path: path.to_owned(),
            file,
            read_offset,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and fsyncs it before returning.
    pub fn append(&mut self, actor: &str, event: Event) -> Result<Record, JournalError> {
        let record = Record {
            time: now(),
            actor: actor.to_owned(),
            event,
        };
        let mut line = serde_json::to_vec(&record).expect("record serializes");
        line.push(b'\n');
        // One write per record: appends from several processes never mix.
        let before = self.file.metadata().map(|m| m.len());
        if let Err(e) = self
            .file
            .write_all(&line)
            .and_then(|_| self.file.sync_data())
        {
            // A full disk may take part of the line: cut it off, so the
            // next record (after space is freed) starts on a line of its own.
            if let Ok(len) = before {
                let _ = self.file.set_len(len);
            }
            return Err(journal_error(&self.path, format!("cannot append: {e}")));
        }
        Ok(record)
    }

    /// Makes sure the next records fit before traffic moves: room for
    /// [`ROOM`] bytes past the end is allocated (the file's length is kept),
    /// so the record of a split write cannot fail for want of space after
    /// the write. A file system that cannot allocate ahead passes.
    pub fn ensure_room(&mut self) -> Result<(), JournalError> {
        use std::os::fd::AsRawFd;
        let end = self
            .file
            .metadata()
            .map_err(|e| journal_error(&self.path, e))?
            .len();
        // SAFETY: fallocate on an open descriptor we own; no memory is shared.
        let rc = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_KEEP_SIZE,
                end as libc::off_t,
                ROOM as libc::off_t,
            )
        };
        let error = std::io::Error::last_os_error();
        match (rc, error.raw_os_error()) {
            (0, _) => Ok(()),
            (_, Some(libc::EOPNOTSUPP | libc::ENOSYS)) => Ok(()),
            _ => Err(journal_error(
                &self.path,
                format!("cannot make room for the next records: {error}"),
            )),
        }
    }

    /// Records appended since the last call (by anyone).
    pub fn new_records(&mut self) -> Vec<Record> {
        let mut reader = BufReader::new(&self.file);
        if reader.seek(SeekFrom::Start(self.read_offset)).is_err() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut line = String::new();
        while let Ok(n) = reader.read_line(&mut line) {
            if n == 0 || !line.ends_with('\n') {
                break; // a record being written: read it next time
            }
            self.read_offset += n as u64;
            if let Ok(r) = serde_json::from_str(&line) {
                out.push(r);
            }
            line.clear();
        }
        out
    }
}

/// Every complete record of a journal; a torn last line (a crash while
/// writing) is left out.
pub fn read_all(path: &Path) -> Result<Vec<Record>, JournalError> {
    let file = File::open(path).map_err(|e| journal_error(path, format!("cannot read: {e}")))?;
    let mut records = Vec::new();
    // Lines as bytes: one damaged line (not even UTF-8) costs that line only.
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(|e| journal_error(path, e))?;
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice(&line) {
            Ok(r) => records.push(r),
            Err(e) => tracing::warn!(
                "journal {} line {}: skipped, not a record: {e}",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(records)
}

/// The records of the newest run (from its `started`), if any.
pub fn last_run(records: &[Record]) -> &[Record] {
    match records
        .iter()
        .rposition(|r| matches!(r.event, Event::Started { .. }))
    {
        Some(i) => &records[i..],
        None => &[],
    }
}

/// The last record that says where a run stands: a `drained` record (an
/// account of a colour no route sends traffic to) never changes that.
pub fn last_decisive(run: &[Record]) -> Option<&Record> {
    run.iter()
        .rev()
        .find(|r| !matches!(r.event, Event::Drained { .. }))
}

/// The plan a run was started with (its first record).
pub fn plan_of(run: &[Record]) -> Option<&Plan> {
    match run.first() {
        Some(Record {
            event: Event::Started { plan, .. },
            ..
        }) => Some(plan.as_ref()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_are_read_back_and_a_torn_line_is_skipped() {
        let dir = std::env::temp_dir().join(format!("journal-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.jsonl");
        let mut j = Journal::open(&path).unwrap();
        j.append("ana", Event::Converged { step: 0 }).unwrap();
        let mut other = Journal::open(&path).unwrap();
        other
            .append(
                "ben",
                Event::Control {
                    command: ControlCommand::Pause,
                    reason: None,
                    id: None,
                },
            )
            .unwrap();
        let seen = j.new_records();
        assert_eq!(seen.len(), 2, "a reader sees its own and others' records");
        assert_eq!(seen[1].actor, "ben");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"time\":")
            .unwrap();
        assert_eq!(read_all(&path).unwrap().len(), 2);
        assert!(j.new_records().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
