//! Listener certificates that rotate without a restart.
//!
//! Each TLS listener serves a [`CertificateSet`] held in an `ArcSwap`: a
//! default certificate and any number chosen by the client's server name
//! (SNI). OpenSSL's server-name callback picks the certificate for every
//! handshake from the current set, so a new set applies to the next
//! handshake while open connections carry on with theirs. A set is
//! replaced only whole and only by one whose every pair loaded and checked
//! ([`load`]); the files are re-read on SIGHUP, `POST /v1/reload` and when
//! they change on disk ([`watch`]).

mod load;
pub mod watch;

pub use load::LoadedCertificate;

use crate::config::{ListenerConfig, ListenerTls};
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use openssl::ssl::{NameType, SniError, SslAcceptor, SslMethod};
use pingora::listeners::tls::TlsSettings;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The certificates of one listener: a default and those chosen by name.
pub struct CertificateSet {
    default: LoadedCertificate,
    by_name: Vec<LoadedCertificate>,
    /// Exact name → index into `by_name`; the first certificate naming it wins.
    exact: HashMap<String, usize>,
    /// `*.example.com` stored as `example.com`: matches one more label.
    wildcard: HashMap<String, usize>,
}

impl CertificateSet {
    /// Loads every pair of a listener's `tls`; all or nothing.
    fn load(field: &str, tls: &ListenerTls) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let default = LoadedCertificate::load(field, &tls.cert_file, &tls.key_file)
            .map_err(|e| errors.push(e))
            .ok();
        let by_name: Vec<LoadedCertificate> = tls
            .sni
            .iter()
            .enumerate()
            .filter_map(|(i, pair)| {
                LoadedCertificate::load(
                    &format!("{field}.sni[{i}]"),
                    &pair.cert_file,
                    &pair.key_file,
                )
                .map_err(|e| errors.push(e))
                .ok()
            })
            .collect();
        let Some(default) = default.filter(|_| errors.is_empty()) else {
            return Err(errors);
        };
        let (mut exact, mut wildcard) = (HashMap::new(), HashMap::new());
        for (i, cert) in by_name.iter().enumerate() {
            for name in &cert.names {
                match name.strip_prefix("*.") {
                    Some(parent) => wildcard.entry(parent.to_owned()).or_insert(i),
                    None => exact.entry(name.clone()).or_insert(i),
                };
            }
        }
        Ok(CertificateSet {
            default,
            by_name,
            exact,
            wildcard,
        })
    }

    /// The certificate for a handshake: an exact name, then a wildcard one
    /// label up, then the default (also for clients that send no name).
    pub fn pick(&self, server_name: Option<&str>) -> &LoadedCertificate {
        let Some(name) = server_name.map(str::to_ascii_lowercase) else {
            return &self.default;
        };
        let wildcard = || {
            let (_, parent) = name.split_once('.')?;
            self.wildcard.get(parent)
        };
        match self.exact.get(&name).or_else(wildcard) {
            Some(&i) => &self.by_name[i],
            None => &self.default,
        }
    }

    fn all(&self) -> impl Iterator<Item = &LoadedCertificate> {
        std::iter::once(&self.default).chain(&self.by_name)
    }

    fn expired(&self) -> Vec<String> {
        self.all()
            .filter(|c| c.expired())
            .map(|c| format!("{}: the certificate has expired", c.cert_file.display()))
            .collect()
    }
}

/// One TLS listener's certificates: the files it reads and what it serves.
pub struct ListenerCertificates {
    address: String,
    field: String,
    files: Mutex<ListenerTls>,
    current: ArcSwap<CertificateSet>,
    seen: Mutex<watch::Fingerprint>,
}

impl ListenerCertificates {
    /// The listener's TLS settings: a server-name callback that switches
    /// each handshake to the current set's certificate for its name.
    pub fn settings(self: &Arc<Self>) -> anyhow::Result<TlsSettings> {
        let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
        let certificates = self.clone();
        builder.set_servername_callback(move |ssl, _alert| {
            let set = certificates.current.load();
            let chosen = set.pick(ssl.servername(NameType::HOST_NAME));
            ssl.set_ssl_context(&chosen.context)
                .map_err(|_| SniError::ALERT_FATAL)
        });
        let mut settings = TlsSettings::from(builder);
        settings.enable_h2();
        Ok(settings)
    }

    /// Loads `tls` and serves it if every pair is good and none expired;
    /// otherwise what is served stays and the errors name the files.
    fn replace(&self, tls: &ListenerTls, metrics: &Metrics) -> Result<(), Vec<String>> {
        // Taken before reading: a change while reading is seen next time.
        let seen = watch::Fingerprint::of(tls);
        let set = CertificateSet::load(&self.field, tls)?;
        let expired = set.expired();
        if !expired.is_empty() {
            return Err(expired);
        }
        self.serve(tls.clone(), seen, set, metrics);
        Ok(())
    }

    fn serve(
        &self,
        tls: ListenerTls,
        seen: watch::Fingerprint,
        set: CertificateSet,
        metrics: &Metrics,
    ) {
        count_reload(metrics, &self.address, true);
        for old in self.current.load().all() {
            let file = old.cert_file.to_string_lossy();
            let _ = metrics
                .tls_certificate_expiry
                .remove_label_values(&[self.address.as_str(), &file]);
        }
        publish_expiry(metrics, &self.address, &set);
        *self.seen.lock().unwrap() = seen;
        *self.files.lock().unwrap() = tls;
        self.current.store(Arc::new(set));
    }
}

/// Every TLS listener's certificates, by listener address.
pub struct Certificates {
    listeners: BTreeMap<String, Arc<ListenerCertificates>>,
    metrics: Arc<Metrics>,
}

impl Certificates {
    /// Loads each TLS listener's certificates at start. An expired one is
    /// served (a gateway that will not start is worse), with a warning and
    /// the expiry metric for the alert.
    pub fn load(listeners: &[ListenerConfig], metrics: Arc<Metrics>) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let mut loaded = BTreeMap::new();
        for (i, listener) in listeners.iter().enumerate() {
            let Some(tls) = &listener.tls else { continue };
            let field = format!("listeners[{i}].tls");
            let seen = watch::Fingerprint::of(tls);
            let set = match CertificateSet::load(&field, tls) {
                Ok(set) => set,
                Err(e) => {
                    errors.extend(e);
                    continue;
                }
            };
            for problem in set.expired() {
                tracing::warn!(listener = %listener.address, "{problem}; serving it until it is replaced");
            }
            publish_expiry(&metrics, &listener.address, &set);
            for result in ["ok", "refused"] {
                // Exported from 0, so a rate() sees the first refusal.
                metrics
                    .tls_certificate_reloads
                    .with_label_values(&[listener.address.as_str(), result]);
            }
            let certs = ListenerCertificates {
                address: listener.address.clone(),
                field,
                files: Mutex::new(tls.clone()),
                current: ArcSwap::from_pointee(set),
                seen: Mutex::new(seen),
            };
            loaded.insert(listener.address.clone(), Arc::new(certs));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Certificates {
            listeners: loaded,
            metrics,
        })
    }

    /// The certificates of the TLS listener at `address`.
    pub fn listener(&self, address: &str) -> Option<&Arc<ListenerCertificates>> {
        self.listeners.get(address)
    }

    /// Re-reads every listener's files (the paths `listeners` names now):
    /// either all are good and all are served, or nothing changes.
    pub fn reload(&self, listeners: &[ListenerConfig]) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        let mut sets = Vec::new();
        for (i, listener) in listeners.iter().enumerate() {
            let (Some(tls), Some(certs)) = (&listener.tls, self.listener(&listener.address)) else {
                continue;
            };
            let seen = watch::Fingerprint::of(tls);
            match CertificateSet::load(&format!("listeners[{i}].tls"), tls) {
                Ok(set) => {
                    errors.extend(set.expired());
                    sets.push((certs, tls.clone(), seen, set));
                }
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            for certs in self.listeners.values() {
                count_reload(&self.metrics, &certs.address, false);
            }
            return Err(errors);
        }
        for (certs, tls, seen, set) in sets {
            certs.serve(tls, seen, set, &self.metrics);
            tracing::info!(listener = %certs.address, "certificates reloaded");
        }
        Ok(())
    }
}

fn publish_expiry(metrics: &Metrics, listener: &str, set: &CertificateSet) {
    for cert in set.all() {
        metrics
            .tls_certificate_expiry
            .with_label_values(&[listener, &cert.cert_file.to_string_lossy()])
            .set(cert.not_after);
    }
}

fn count_reload(metrics: &Metrics, listener: &str, ok: bool) {
    let result = if ok { "ok" } else { "refused" };
    metrics
        .tls_certificate_reloads
        .with_label_values(&[listener, result])
        .inc();
}
