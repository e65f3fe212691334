//! Certificate files re-read when they change on disk: cert-manager and
//! Kubernetes Secret volumes replace them by swapping a symlink (`..data`),
//! so what is compared is the file each path leads to, not the link.

use super::{count_reload, Certificates};
use crate::config::ListenerTls;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How often the files are looked at: a rotated certificate is served
/// within this (and a handshake or two).
const POLL: Duration = Duration::from_secs(1);

/// What identifies the contents of a listener's files without reading
/// them: device, inode, size and modification time of each, through links.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fingerprint(Vec<Option<FileIdentity>>);

/// Device, inode, size, modification time (seconds, nanoseconds).
type FileIdentity = (u64, u64, u64, i64, i64);

impl Fingerprint {
    pub fn of(tls: &ListenerTls) -> Fingerprint {
        let file = |path: &Path| {
            let m = std::fs::metadata(path).ok()?;
            Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
        };
        let pairs = std::iter::once((&tls.cert_file, &tls.key_file))
            .chain(tls.sni.iter().map(|p| (&p.cert_file, &p.key_file)));
        Fingerprint(pairs.flat_map(|(c, k)| [file(c), file(k)]).collect())
    }
}

pub struct WatchCertificates {
    pub certificates: Arc<Certificates>,
}

impl WatchCertificates {
    /// Reloads each listener whose files changed since they were last read.
    /// A pair that fails is logged and counted; its files are looked at
    /// again when they change again (a key written after its certificate).
    fn check(&self) {
        let metrics = &self.certificates.metrics;
        for certs in self.certificates.listeners.values() {
            let tls = certs.files.lock().unwrap().clone();
            let now = Fingerprint::of(&tls);
            if *certs.seen.lock().unwrap() == now {
                continue;
            }
            match certs.replace(&tls, metrics) {
                Ok(()) => {
                    tracing::info!(listener = %certs.address, "certificate files changed: now serving them")
                }
                Err(errors) => {
                    *certs.seen.lock().unwrap() = now;
                    count_reload(metrics, &certs.address, false);
                    tracing::error!(listener = %certs.address, ?errors, "certificate files changed but were refused; the previous certificates keep serving");
                }
            }
        }
    }
}

#[async_trait]
impl BackgroundService for WatchCertificates {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        if self.certificates.listeners.is_empty() {
            return;
        }
        let mut ticks = tokio::time::interval(POLL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = ticks.tick() => self.check(),
            }
        }
    }
}
