//! The access log: a line for every request (both request paths) and every
//! TCP connection, written off the request path. A request hands its
//! [`Entry`] to a bounded queue and goes on; a writer thread formats the
//! lines ([`format`]) and appends them, reopening the file on SIGUSR1 (after
//! logrotate renamed it). A full queue or a failing disk drops lines,
//! counted in `gateway_access_log_dropped_total`, and never a request.
//! Header values are never logged but the user agent, so neither
//! `Authorization`, `Cookie` nor the pin secret can appear; the query is
//! left out unless `include_query`.

mod entry;
mod format;
mod writer;

pub use entry::{Asked, Entry, Http1Head};

use crate::config::AccessLogConfig;
use crate::metrics::Metrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

pub struct AccessLog {
    queue: SyncSender<Entry>,
    /// Requests are logged when a draw below 2^32 falls under this.
    sample: Option<u32>,
    reopen: Arc<AtomicBool>,
    dropped_full: prometheus::IntCounter,
}

impl AccessLog {
    /// Opens the file (or standard output) and starts the writer; `Err`
    /// names the path when it cannot be opened.
    pub fn start(config: &AccessLogConfig, metrics: &Metrics) -> Result<AccessLog, String> {
        let (queue, lines) = sync_channel(config.buffer_lines);
        let reopen = Arc::new(AtomicBool::new(false));
        let writer = writer::Writer::open(config, metrics, reopen.clone())?;
        std::thread::Builder::new()
            .name("access log".into())
            .spawn(move || writer.run(lines))
            .map_err(|e| format!("access_log: cannot start its writer: {e}"))?;
        Ok(AccessLog {
            queue,
            sample: (config.sample < 1.0).then(|| (config.sample * f64::from(u32::MAX)) as u32),
            reopen,
            dropped_full: metrics
                .access_log_dropped
                .with_label_values(&["queue_full"]),
        })
    }

    /// Whether this request is logged (always, unless `sample` < 1).
    pub fn wants(&self) -> bool {
        self.sample.is_none_or(|s| rand::random::<u32>() < s)
    }

    /// Queues a line; a full queue drops it (counted).
    pub fn record(&self, entry: Entry) {
        match self.queue.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped_full.inc(),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// SIGUSR1: the file is opened anew before the next line.
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }
}
