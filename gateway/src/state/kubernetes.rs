//! The Kubernetes store, for replicated gateways: the split document lives
//! in one ConfigMap (key `split.json`) that every replica watches.
//!
//! - A write is a ConfigMap `replace` carrying the `resourceVersion` last
//!   seen, so two concurrent writers cannot both win: the loser gets a 409.
//! - The watch uses the field selector `metadata.name=<name>`, so RBAC can be
//!   limited to that one ConfigMap with `resourceNames`.
//! - When the API server cannot be reached the replica keeps its last split
//!   and is marked stale; it stays ready, since a control-plane outage must
//!   not take the data plane out of its Service. The watch reconnects within
//!   about 10 s of the API server's return (see `watch_backoff`).
//!
//! All Kubernetes I/O runs on a small runtime of its own, so the client
//! outlives whichever pingora service happened to call it.

use super::{SplitDocument, StoreError};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The ConfigMap key holding the document (JSON).
pub const DATA_KEY: &str = "split.json";

pub struct KubeStore {
    runtime: tokio::runtime::Runtime,
    api: Api<ConfigMap>,
    namespace: String,
    name: String,
    /// The ConfigMap as last read or written: its resourceVersion guards the
    /// next write, and its labels and annotations are kept.
    last_seen: Mutex<Option<ConfigMap>>,
    stale: AtomicBool,
    stale_gauge: prometheus::IntGauge,
}

/// Where to find the cluster: a kubeconfig (file and context) or, with
/// neither given, the usual inference (in-cluster, then `KUBECONFIG`).
pub struct KubeTarget {
    pub namespace: String,
    pub name: String,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

impl KubeStore {
    pub fn connect(
        target: KubeTarget,
        stale_gauge: prometheus::IntGauge,
    ) -> Result<KubeStore, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kube-store")
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the Kubernetes client runtime: {e}"))
            })?;
        let client = runtime.block_on(client(&target))?;
        Ok(KubeStore {
            runtime,
            api: Api::namespaced(client, &target.namespace),
            namespace: target.namespace,
            name: target.name,
            last_seen: Mutex::new(None),
            stale: AtomicBool::new(false),
            stale_gauge,
        })
    }

    pub fn describe(&self) -> String {
        format!("kubernetes ConfigMap {}/{}", self.namespace, self.name)
    }

    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::SeqCst)
    }

    pub fn set_stale(&self, stale: bool) {
        if self.stale.swap(stale, Ordering::SeqCst) != stale {
            if stale {
                tracing::warn!(store = %self.describe(), "state store unreachable; serving the last split");
            } else {
                tracing::info!(store = %self.describe(), "state store reachable again");
            }
        }
        self.stale_gauge.set(i64::from(stale));
    }

    /// Reads the ConfigMap once (used at start-up).
    pub fn load(&self) -> Result<Option<SplitDocument>, StoreError> {
        let api = self.api.clone();
        let name = self.name.clone();
        let result = self
            .runtime
            .block_on(async move { api.get_opt(&name).await });
        match result {
            Ok(Some(cm)) => {
                self.set_stale(false);
                self.document_of(cm)
            }
            Ok(None) => {
                self.set_stale(true);
                Err(StoreError::Unavailable(format!(
                    "{} does not exist; create it (deploy/kubernetes has it) with an empty data map",
                    self.describe()
                )))
            }
            Err(e) => {
                self.set_stale(true);
                Err(StoreError::Unavailable(format!(
                    "cannot read {}: {e}",
                    self.describe()
                )))
            }
        }
    }

    /// Replaces the ConfigMap's document, guarded by the last resourceVersion.
    pub async fn save(&self, doc: &SplitDocument) -> Result<(), StoreError> {
        let mut cm = self
            .last_seen
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| ConfigMap {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                ..ConfigMap::default()
            });
        cm.data.get_or_insert_with(BTreeMap::new).insert(
            DATA_KEY.to_owned(),
            serde_json::to_string_pretty(doc).expect("document serializes"),
        );
        let api = self.api.clone();
        let name = self.name.clone();
        let result = self
            .runtime
            .spawn(async move { api.replace(&name, &PostParams::default(), &cm).await })
            .await
            .map_err(|e| StoreError::Unavailable(format!("Kubernetes client task failed: {e}")))?;
        match result {
            Ok(updated) => {
                self.set_stale(false);
                *self.last_seen.lock().unwrap() = Some(updated);
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                Err(StoreError::Conflict(doc.generation - 1))
            }
            Err(e) => {
                if !matches!(e, kube::Error::Api(_)) {
                    self.set_stale(true);
                }
                Err(StoreError::Unavailable(format!(
                    "cannot update {}: {e}",
                    self.describe()
                )))
            }
        }
    }

    /// Watches the ConfigMap and sends every document it holds, on and
    /// on; the watcher retries with backoff by itself, and while it cannot
    /// reach the API server the store is marked stale.
    pub fn watch(self: &Arc<Self>) -> mpsc::Receiver<SplitDocument> {
        let (tx, rx) = mpsc::channel(16);
        let store = self.clone();
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        self.runtime.spawn(async move {
            let mut events = std::pin::pin!(watcher(store.api.clone(), config).backoff(watch_backoff()));
            while let Some(event) = events.next().await {
                let document = match event {
                    Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => {
                        store.set_stale(false);
                        match store.document_of(cm) {
                            Ok(doc) => doc,
                            Err(e) => {
                                tracing::error!("{e}; keeping the current split");
                                None
                            }
                        }
                    }
                    Ok(watcher::Event::Delete(_)) => {
                        tracing::error!(store = %store.describe(), "the split ConfigMap was deleted; keeping the current split");
                        store.set_stale(true);
                        None
                    }
                    Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
                    Err(e) => {
                        tracing::debug!(error = %e, "watch of the split ConfigMap failed; retrying");
                        store.set_stale(true);
                        None
                    }
                };
                if let Some(doc) = document {
                    if tx.send(doc).await.is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }

    fn document_of(&self, cm: ConfigMap) -> Result<Option<SplitDocument>, StoreError> {
        let text = cm.data.as_ref().and_then(|d| d.get(DATA_KEY)).cloned();
        *self.last_seen.lock().unwrap() = Some(cm);
        match text {
            None => Ok(None),
            Some(t) if t.trim().is_empty() => Ok(None),
            Some(t) => serde_json::from_str(&t).map(Some).map_err(|e| {
                StoreError::Corrupt(format!(
                    "{} key {DATA_KEY} is not a split document: {e}",
                    self.describe()
                ))
            }),
        }
    }
}

/// How the watch reconnects: 250 ms doubling to 5 s, each delay plus up
/// to as much again of jitter, reset by any event. kube's default (0.8 s
/// doubling to 30 s, for controllers watching whole clusters) could leave
/// a replica serving a stale split for up to a minute after an API server
/// outage ends, longer than the cutover engine's convergence timeout; a
/// few replicas watching one ConfigMap ask little of the API server.
fn watch_backoff() -> watcher::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(250))
        .with_max_delay(std::time::Duration::from_secs(5))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .into()
}

async fn client(target: &KubeTarget) -> Result<Client, StoreError> {
    let unavailable = |e: String| StoreError::Unavailable(e);
    let config = if target.kubeconfig.is_none() && target.context.is_none() {
        kube::Config::infer().await.map_err(|e| {
            unavailable(format!(
                "state: no in-cluster config or kubeconfig found: {e}"
            ))
        })?
    } else {
        let kubeconfig = match &target.kubeconfig {
            Some(path) => Kubeconfig::read_from(path)
                .map_err(|e| unavailable(format!("state.kubeconfig: {}: {e}", path.display())))?,
            None => Kubeconfig::read()
                .map_err(|e| unavailable(format!("state: cannot read the kubeconfig: {e}")))?,
        };
        let options = KubeConfigOptions {
            context: target.context.clone(),
            ..KubeConfigOptions::default()
        };
        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| unavailable(format!("state.context: {e}")))?
    };
    Client::try_from(config)
        .map_err(|e| unavailable(format!("cannot build the Kubernetes client: {e}")))
}
