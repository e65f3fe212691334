//! The gateway's shared state and the only place that changes it: the
//! routing snapshot, the split document and its store, the config.
//!
//! Every change follows one order — validate, persist, then publish — so a
//! rejected change leaves everything as it was and an acknowledged one
//! survives a crash. Beside the split, the document carries the cutover
//! lock ([`lock`]) and the channel between operators and the run
//! ([`operators`]); changing those keeps the generation.

mod drain;
mod lock;
mod operators;
mod reload;
mod view;

pub use lock::LockError;
pub use operators::{ControlError, ControlRequest};

use crate::access_log::AccessLog;
use crate::config::{Config, StateConfig};
use crate::drain::Drains;
use crate::metrics::Metrics;
use crate::pin::PinPolicy;
use crate::routing::Snapshot;
use crate::split::GreenPercent;
use crate::state::{FileStore, KubeStore, KubeTarget, SplitDocument, Store, StoreError};
use crate::tls::Certificates;
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

pub struct Gateway {
    routing: ArcSwap<Snapshot>,
    pub metrics: Arc<Metrics>,
    /// The TLS listeners' certificates, re-read on reload.
    pub certificates: Arc<Certificates>,
    /// Colours being drained after a cutover (`POST /v1/drain`).
    pub drains: Drains,
    /// A line per request, when `access_log:` asks (set at start: a
    /// reload does not change it).
    pub access_log: Option<AccessLog>,
    control: Mutex<Control>,
    store: Store,
    admin_token: Option<String>,
    config_path: PathBuf,
    /// False until a split document was read from the store (or the store
    /// is local): a new replica is not ready before it knows the split.
    loaded: AtomicBool,
    draining: AtomicBool,
    in_flight: AtomicUsize,
}

struct Control {
    document: SplitDocument,
    config: Config,
}

/// Why a split change was refused; nothing changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("expected_generation {expected} is stale: the current generation is {current}")]
    StaleGeneration { expected: u64, current: u64 },
    #[error("routes: unknown route {0:?}")]
    UnknownRoute(String),
    #[error("routes: at least one route must be given")]
    Empty,
    #[error("mirrors: route {0:?} has no mirror block in the gateway config")]
    NoMirror(String),
    #[error("the state store refused the change: {0}")]
    Store(#[from] StoreError),
}

/// Why a replica that has not read the shared split yet takes no writes:
/// built on a document it never saw, a write could overwrite the store
/// with an older generation.
fn not_loaded() -> StoreError {
    StoreError::Unavailable(
        "this replica has not read the split from its store yet; try another replica or again shortly".into(),
    )
}

/// A change of one or more routes' splits, applied as one new generation.
pub struct SplitChange {
    pub routes: BTreeMap<String, GreenPercent>,
    /// Mirror percents to set (routes with a `mirror:` block).
    pub mirrors: BTreeMap<String, GreenPercent>,
    pub expected_generation: Option<u64>,
    pub actor: Option<String>,
    pub reason: Option<String>,
}

impl Gateway {
    /// Loads the stored split (or starts from the config with `reset_state`)
    /// and builds the first routing snapshot.
    pub fn start(
        config_path: PathBuf,
        config: Config,
        reset_state: bool,
    ) -> anyhow::Result<Gateway> {
        let metrics = Arc::new(Metrics::new());
        let store = match &config.state {
            StateConfig::Memory => Store::Memory,
            StateConfig::File { path } => Store::File(FileStore::new(path.clone())),
            StateConfig::Kubernetes {
                namespace,
                name,
                kubeconfig,
                context,
            } => {
                let target = KubeTarget {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    kubeconfig: kubeconfig.clone(),
                    context: context.clone(),
                };
                Store::Kubernetes(Arc::new(KubeStore::connect(
                    target,
                    metrics.state_store_stale.clone(),
                )?))
            }
        };
        let (document, loaded) = if reset_state {
            tracing::warn!(store = %store.describe(), "--reset-state: starting from the config's initial splits");
            (None, true)
        } else {
            match store.load() {
                Ok(doc) => (doc, true),
                // A shared store may be briefly unreachable: start, not
                // ready, and take the split from the watch when it comes.
                Err(StoreError::Unavailable(e)) if matches!(store, Store::Kubernetes(_)) => {
                    tracing::error!("{e}; not ready until the split can be read");
                    (None, false)
                }
                Err(e) => return Err(e.into()),
            }
        };
        let document = document.unwrap_or_default();
        let pin = Arc::new(PinPolicy::from_config(&config.pin).map_err(anyhow::Error::msg)?);
        let snapshot = Snapshot::build(&config, pin, &document, None, &metrics)
            .map_err(|errors| anyhow::anyhow!("{}", errors.join("; ")))?;
        let certificates = Certificates::load(&config.listeners, metrics.clone())
            .map_err(|errors| anyhow::anyhow!("{}", errors.join("; ")))?;
        let admin_token = admin_token(&config)?;
        if admin_token.is_none() {
            tracing::warn!("no admin token configured (GATEWAY_ADMIN_TOKEN or admin.token_file): the admin API is read-only");
        }
        let access_log = match &config.access_log {
            Some(c) => Some(AccessLog::start(c, &metrics).map_err(anyhow::Error::msg)?),
            None => None,
        };
        let generation = document.generation;
        let gateway = Gateway {
            access_log,
            routing: ArcSwap::from_pointee(snapshot),
            metrics,
            certificates: Arc::new(certificates),
            drains: Drains::default(),
            control: Mutex::new(Control { document, config }),
            store,
            admin_token,
            config_path,
            loaded: AtomicBool::new(loaded),
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
        };
        gateway.publish_metrics(generation);
        Ok(gateway)
    }

    /// The current routing table; hold it for the whole request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.routing.load_full()
    }

    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Applies a split change: validate, persist, publish.
    pub async fn change_splits(&self, change: SplitChange) -> Result<SplitDocument, ChangeError> {
        let mut control = self.lock().await;
        if !self.is_loaded() {
            return Err(not_loaded().into());
        }
        let current = control.document.generation;
        if let Some(expected) = change.expected_generation {
            if expected != current {
                return Err(ChangeError::StaleGeneration { expected, current });
            }
        }
        if change.routes.is_empty() && change.mirrors.is_empty() {
            return Err(ChangeError::Empty);
        }
        let snapshot = self.snapshot();
        let named = change.routes.keys().chain(change.mirrors.keys());
        if let Some(unknown) = named.clone().find(|r| snapshot.route(r).is_none()) {
            return Err(ChangeError::UnknownRoute(unknown.clone()));
        }
        let unmirrored = |r: &&String| snapshot.route(r).is_some_and(|e| e.def.mirror.is_none());
        if let Some(route) = change.mirrors.keys().find(unmirrored) {
            return Err(ChangeError::NoMirror(route.clone()));
        }
        let mut next = control.document.clone();
        // Routes never changed before keep the split they are served with.
        for entry in &snapshot.routes {
            next.routes
                .entry(entry.def.name.clone())
                .or_insert(entry.green_percent);
        }
        next.routes.extend(change.routes);
        next.mirrors.extend(change.mirrors);
        next.generation = current + 1;
        next.actor = change.actor;
        next.reason = change.reason;
        next.updated_at =
            Some(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string());
        self.store.save(&next).await?;
        self.routing.store(Arc::new(snapshot.with_splits(&next)));
        control.document = next.clone();
        drop(control);
        self.publish_metrics(next.generation);
        tracing::info!(
            generation = next.generation,
            actor = next.actor.as_deref().unwrap_or("-"),
            reason = next.reason.as_deref().unwrap_or("-"),
            splits = ?next.routes,
            mirrors = ?next.mirrors,
            "split changed"
        );
        Ok(next)
    }

    /// Counts a proxied request until the returned guard drops.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Adopts a document another replica wrote to the shared store. Older
    /// generations than the one served are ignored: generations only grow.
    pub async fn adopt(&self, document: SplitDocument) {
        let mut control = self.lock().await;
        self.loaded.store(true, Ordering::SeqCst);
        let current = control.document.generation;
        if document.generation == current {
            // The same split; the lock, the run's progress or the
            // operators' commands changed elsewhere.
            control.document = document;
            return;
        }
        if document.generation <= current {
            if document.generation < current {
                tracing::warn!(
                    stored = document.generation,
                    served = current,
                    "the store holds an older generation than this replica serves; ignoring it"
                );
            }
            return;
        }
        self.routing
            .store(Arc::new(self.snapshot().with_splits(&document)));
        tracing::info!(generation = document.generation, splits = ?document.routes, "split adopted from the store");
        let generation = document.generation;
        control.document = document;
        drop(control);
        self.publish_metrics(generation);
    }

    /// The split was read from the store (or the store is local).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
    }

    /// Ready: the split is known, not draining, and at least one endpoint
    /// is in rotation. A stale store does not make a replica unready.
    pub fn is_ready(&self) -> bool {
        self.is_loaded()
            && !self.is_draining()
            && self
                .snapshot()
                .routes
                .iter()
                .any(|r| r.def.blue.has_healthy_endpoint() || r.def.green.has_healthy_endpoint())
    }

    /// After every change of what is served: metrics, and drains of
    /// colours that get traffic again.
    fn publish_metrics(&self, generation: u64) {
        let snapshot = self.snapshot();
        self.end_drains_with_traffic(&snapshot);
        self.metrics.state_generation.set(generation as i64);
        self.metrics
            .served_generation
            .set(snapshot.generation as i64);
        for entry in &snapshot.routes {
            let route = entry.def.name.as_str();
            self.metrics
                .split_green_percent
                .with_label_values(&[route])
                .set(entry.green_percent.as_f64());
            // Export the error counters at 0 from the start, so rates and
            // alerts work before the first failure.
            for (from, to) in [("blue", "green"), ("green", "blue")] {
                self.metrics
                    .failover_requests
                    .with_label_values(&[route, from, to]);
                for kind in ["connect", "proxy"] {
                    self.metrics
                        .upstream_errors
                        .with_label_values(&[route, from, kind]);
                }
            }
        }
    }

    /// Changes the document's other parts (lock, run, controls), keeping
    /// its generation: `change` edits a copy, which is stored, then kept.
    /// A refused change or a failed save leaves everything as it was.
    async fn update<T, E: From<StoreError>>(
        &self,
        change: impl FnOnce(&mut SplitDocument) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut control = self.lock().await;
        if !self.is_loaded() {
            return Err(not_loaded().into());
        }
        let mut next = control.document.clone();
        let out = change(&mut next)?;
        if next != control.document {
            self.store.save(&next).await?;
            control.document = next;
        }
        Ok(out)
    }

    /// Changes are serialized; the document is replaced only after the
    /// store accepted it, so a failure anywhere leaves the old one in force.
    async fn lock(&self) -> MutexGuard<'_, Control> {
        self.control.lock().await
    }
}

/// One proxied request in flight; graceful shutdown waits for these.
pub struct InFlight(Arc<Gateway>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `GATEWAY_ADMIN_TOKEN`, else the token file; never logged.
fn admin_token(config: &Config) -> anyhow::Result<Option<String>> {
    if let Ok(token) = std::env::var("GATEWAY_ADMIN_TOKEN") {
        if !token.trim().is_empty() {
            return Ok(Some(token.trim().to_owned()));
        }
    }
    match &config.admin.token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("admin.token_file: cannot read {}: {e}", path.display())
            })?;
            Ok(Some(token.trim().to_owned()).filter(|t| !t.is_empty()))
        }
        None => Ok(None),
    }
}
