//! The writer thread: takes queued entries, formats them and appends them
//! in batches (one write per batch), flushing whenever the queue is empty.
//! A failed write drops its lines (counted) and the file is opened again
//! for the next batch; SIGUSR1 asks for that too (after logrotate).

use super::entry::Entry;
use super::format;
use crate::config::{AccessLogConfig, AccessLogFormat};
use crate::metrics::Metrics;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// Bytes gathered before a write, at most.
const BATCH: usize = 64 * 1024;
/// How long lines gather after the first before they are written.
const GATHER: Duration = Duration::from_millis(10);

pub struct Writer {
    path: String,
    format: AccessLogFormat,
    include_query: bool,
    out: Output,
    reopen: Arc<AtomicBool>,
    written: prometheus::IntCounter,
    dropped: prometheus::IntCounter,
}

enum Output {
    Stdout,
    File(Option<File>),
}

fn open(path: &str) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Writer {
    pub fn open(
        config: &AccessLogConfig,
        metrics: &Metrics,
        reopen: Arc<AtomicBool>,
    ) -> Result<Writer, String> {
        let out = match config.path.as_str() {
            "-" => Output::Stdout,
            path => Output::File(Some(
                open(path).map_err(|e| format!("access_log.path {path}: cannot open: {e}"))?,
            )),
        };
        Ok(Writer {
            path: config.path.clone(),
            format: config.format,
            include_query: config.include_query,
            out,
            reopen,
            written: metrics.access_log_lines.clone(),
            dropped: metrics
                .access_log_dropped
                .with_label_values(&["write_failed"]),
        })
    }

    /// Until the gateway's queue is gone.
    pub fn run(mut self, lines: Receiver<Entry>) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut count = 0u64;
        let mut formatter = format::Formatter::default();
        loop {
            let first = match lines.recv_timeout(Duration::from_millis(200)) {
                Ok(entry) => Some(entry),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if self.reopen.swap(false, Ordering::Relaxed) {
                self.reopen_file();
            }
            if first.is_some() {
                // Let lines gather: one write (and no wake-up of this
                // thread per request) for what comes meanwhile.
                std::thread::sleep(GATHER);
            }
            for entry in first
                .into_iter()
                .chain(std::iter::from_fn(|| lines.try_recv().ok()))
            {
                formatter.line(&mut batch, &entry, self.format, self.include_query);
                count += 1;
                if batch.len() >= BATCH {
                    self.write(&mut batch, &mut count);
                }
            }
            self.write(&mut batch, &mut count);
        }
    }

    fn write(&mut self, batch: &mut Vec<u8>, count: &mut u64) {
        if batch.is_empty() {
            return;
        }
        let (taken, result) = match &mut self.out {
            Output::Stdout => write_counted(&mut std::io::stdout().lock(), batch),
            Output::File(Some(f)) => write_counted(f, batch),
            Output::File(None) => (0, Err(std::io::Error::other("not open"))),
        };
        match result {
            Ok(()) => self.written.inc_by(*count),
            Err(e) => {
                self.dropped.inc_by(*count);
                tracing::warn!(path = %self.path, lines = *count, "access log: lines dropped: {e}");
                self.reopen_file();
                // Part of the batch went out: the next line starts on a
                // line of its own.
                if let (true, Output::File(Some(f))) = (taken > 0, &mut self.out) {
                    let _ = f.write_all(b"\n");
                }
            }
        }
        batch.clear();
        *count = 0;
    }

    fn reopen_file(&mut self) {
        if let Output::File(file) = &mut self.out {
            *file = match open(&self.path) {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!(path = %self.path, "access log: cannot open: {e}");
                    None
                }
            };
        }
    }
}

/// `write_all` that says how many bytes went out before an error.
fn write_counted(to: &mut impl Write, mut bytes: &[u8]) -> (usize, std::io::Result<()>) {
    let mut taken = 0;
    while !bytes.is_empty() {
        match to.write(bytes) {
            Ok(0) => return (taken, Err(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                taken += n;
                bytes = &bytes[n..];
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (taken, Err(e)),
        }
    }
    (taken, to.flush())
}
