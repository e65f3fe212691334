//! The gateway fleet, through each replica's admin API: read state, apply
//! splits (guarded by `expected_generation`), wait for convergence, hold
//! the cutover lock, scrape metrics.
//!
//! Replicas that share a Kubernetes store get one write, through whichever
//! replica answers, and are all waited for; replicas with their own file
//! stores get one write each. A replica that is down or restarting, or a
//! store that cannot be reached, is a passing fault: every call retries it
//! with backoff until the fleet's patience (the plan's
//! `convergence_timeout`) runs out, and only then fails.

mod client;
mod discovery;
mod drain;
mod lock;
mod operators;
mod write;

pub use drain::{drain_fleets, Drained};

pub use client::read_token;
use client::tls_client;
pub use lock::holder_is_dead_here;
pub use operators::{ControlRequest, Published};

use crate::plan;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A refusal that asking again will not change (a bad token, a bad
    /// request).
    #[error("gateway {replica}: {message}")]
    Replica { replica: String, message: String },
    /// A passing fault: the replica is unreachable, or its store is.
    #[error("gateway {replica}: {message}")]
    Unavailable { replica: String, message: String },
    #[error("gateway {replica} did not converge within {timeout:?}: it serves generation {served}, the write made {wanted}")]
    NotConverged {
        replica: String,
        served: u64,
        wanted: u64,
        timeout: Duration,
    },
    #[error("the cutover lock is held by {holder:?} (expires at unix time {expires_at}{})", if *expired { ", stale: take it over with --take-over" } else { "" })]
    LockHeld {
        holder: String,
        expires_at: u64,
        expired: bool,
    },
    #[error("gateway {replica}: its split changed under us (generation {expected} expected, {found} found)")]
    Conflict {
        replica: String,
        expected: u64,
        found: u64,
    },
    #[error("{0}")]
    Setup(String),
}

impl FleetError {
    fn is_passing(&self) -> bool {
        matches!(self, FleetError::Unavailable { .. })
    }
}

/// What `GET /v1/state` says (the fields the engine uses).
#[derive(Clone, Debug, Deserialize)]
pub struct GatewayState {
    pub generation: u64,
    pub served_generation: u64,
    pub routes: BTreeMap<String, RouteState>,
    pub store: StoreState,
    #[serde(default)]
    pub lock: Option<LockState>,
    /// False while a replica has not read the shared split yet (it
    /// started while its store was unreachable): its view is not the
    /// fleet's.
    #[serde(default = "loaded_by_default")]
    pub loaded: bool,
    /// What the run holding the lock last published about itself.
    #[serde(default)]
    pub run: Option<Published>,
    /// Operators' commands the run has not taken yet.
    #[serde(default)]
    pub controls: Vec<ControlRequest>,
}

fn loaded_by_default() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize)]
pub struct RouteState {
    pub green_percent: f64,
    /// Set where the route has a `mirror:` block.
    #[serde(default)]
    pub mirror_percent: Option<f64>,
    /// What mirroring came to: counts and the latest differing samples.
    #[serde(default)]
    pub mirror: Option<serde_json::Value>,
    pub blue: GroupState,
    pub green: GroupState,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GroupState {
    pub healthy: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StoreState {
    pub kind: String,
    pub stale: bool,
}

pub use lock::LockState;

impl GatewayState {
    fn shares_store(&self) -> bool {
        self.store.kind.starts_with("kubernetes")
    }

    /// Serves exactly these splits and mirror percents.
    fn serves(&self, splits: &BTreeMap<String, f64>, mirrors: &BTreeMap<String, f64>) -> bool {
        let route = |name: &String| self.routes.get(name);
        splits
            .iter()
            .all(|(name, p)| route(name).is_some_and(|r| (r.green_percent - p).abs() < 1e-9))
            && mirrors.iter().all(|(name, p)| {
                route(name).is_some_and(|r| (r.mirror_percent.unwrap_or(0.0) - p).abs() < 1e-9)
            })
    }
}

#[derive(Clone)]
pub struct Fleet {
    pub replicas: Vec<String>,
    token: String,
    client: reqwest::Client,
    /// How long passing faults are retried before a call fails.
    patience: Duration,
    /// Whether the replicas share one store, once a state was read.
    shared: std::sync::Arc<std::sync::OnceLock<bool>>,
}

/// The generation each written replica must serve.
pub type Generations = Vec<(String, u64)>;

impl Fleet {
    pub fn new(replicas: Vec<String>, token: String) -> Fleet {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        Fleet {
            replicas: replicas
                .into_iter()
                .map(|r| r.trim_end_matches('/').to_owned())
                .collect(),
            token,
            client,
            patience: Duration::from_secs(10),
            shared: Default::default(),
        }
    }

    /// Retry passing faults for this long (the plan's convergence timeout).
    pub fn with_patience(mut self, patience: Duration) -> Fleet {
        self.patience = patience;
        self
    }

    /// The fleet of a plan: its admin URLs (or the headless Service's
    /// endpoints), its token from the environment or a file, and TLS for
    /// `https://` admin APIs.
    pub async fn from_plan(fleet: &plan::Fleet) -> Result<Fleet, FleetError> {
        let token = read_token(&fleet.token_env, fleet.token_file.as_deref())?;
        let scheme = if fleet.admin_tls.is_some() {
            "https"
        } else {
            "http"
        };
        let replicas = match &fleet.kubernetes {
            Some(k) => discovery::admin_urls(k, scheme).await?,
            None => fleet.admin_urls.clone(),
        };
        let mut built = Fleet::new(replicas, token);
        if let Some(tls) = &fleet.admin_tls {
            built.client = tls_client(tls)?;
        }
        Ok(built)
    }

    fn fail(replica: &str, message: impl std::fmt::Display) -> FleetError {
        FleetError::Replica {
            replica: replica.to_owned(),
            message: message.to_string(),
        }
    }

    fn unavailable(replica: &str, message: impl std::fmt::Display) -> FleetError {
        FleetError::Unavailable {
            replica: replica.to_owned(),
            message: message.to_string(),
        }
    }

    /// Runs `attempt` again while it fails with a passing fault, with
    /// backoff, until the fleet's patience runs out.
    async fn patiently<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, FleetError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, FleetError>>,
    {
        let deadline = Instant::now() + self.patience;
        let mut pause = Duration::from_millis(100);
        loop {
            match attempt().await {
                Err(e) if e.is_passing() && Instant::now() + pause < deadline => {
                    tracing::warn!("{what}: {e}; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }

    pub async fn state(&self, replica: &str) -> Result<GatewayState, FleetError> {
        let resp = self
            .client
            .get(format!("{replica}/v1/state"))
            .send()
            .await
            .map_err(|e| Self::unavailable(replica, format!("unreachable: {e}")))?;
        if !resp.status().is_success() {
            return Err(Self::unavailable(
                replica,
                format!("GET /v1/state answered {}", resp.status()),
            ));
        }
        let state: GatewayState = resp
            .json()
            .await
            .map_err(|e| Self::fail(replica, format!("bad /v1/state: {e}")))?;
        let _ = self.shared.set(state.shares_store());
        Ok(state)
    }

    /// Every replica's state; any unreachable replica fails the call.
    pub async fn states(&self) -> Result<Vec<(String, GatewayState)>, FleetError> {
        let mut out = Vec::new();
        for r in &self.replicas {
            out.push((r.clone(), self.state(r).await?));
        }
        Ok(out)
    }

    /// The first replica, in order, that answers and knows the split.
    async fn any_state(&self) -> Result<(String, GatewayState), FleetError> {
        let mut last = None;
        for replica in &self.replicas {
            match self.state(replica).await {
                Ok(s) if s.loaded => return Ok((replica.clone(), s)),
                Ok(_) => {
                    last = Some(Self::unavailable(
                        replica,
                        "has not read the split from its store yet",
                    ))
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| FleetError::Setup("the fleet names no replica".into())))
    }

    /// The splits the fleet serves now, as the first replica that knows
    /// them says.
    pub async fn splits_now(&self) -> Result<BTreeMap<String, f64>, FleetError> {
        let (_, state) = self
            .patiently("reading the fleet's split", || self.any_state())
            .await?;
        Ok(state
            .routes
            .into_iter()
            .map(|(route, r)| (route, r.green_percent))
            .collect())
    }

    /// Waits until every replica serves at least its generation.
    pub async fn wait_converged(
        &self,
        wanted: &Generations,
        timeout: Duration,
    ) -> Result<(), FleetError> {
        let deadline = Instant::now() + timeout;
        for (replica, generation) in wanted {
            loop {
                let served = match self.state(replica).await {
                    Ok(s) => s.served_generation,
                    Err(_) => 0,
                };
                if served >= *generation {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(FleetError::NotConverged {
                        replica: replica.clone(),
                        served,
                        wanted: *generation,
                        timeout,
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// An authenticated admin call; the status and the JSON answer.
    async fn send(
        &self,
        method: reqwest::Method,
        replica: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(reqwest::StatusCode, serde_json::Value), FleetError> {
        let resp = self
            .client
            .request(method, format!("{replica}{path}"))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| Self::unavailable(replica, format!("unreachable: {e}")))?;
        let status = resp.status();
        Ok((status, resp.json().await.unwrap_or_default()))
    }

    /// The `/metrics` text of every replica that answers; a replica that
    /// is down is left out of this scrape (and logged), so one restarting
    /// replica does not blind the gates. Fails only when none answers.
    pub async fn scrape(&self) -> Result<Vec<(String, String)>, FleetError> {
        let mut out = Vec::new();
        let mut last = None;
        for replica in &self.replicas {
            let text = async {
                self.client
                    .get(format!("{replica}/metrics"))
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await
            };
            match text.await {
                Ok(text) => out.push((replica.clone(), text)),
                Err(e) => {
                    tracing::warn!("gateway {replica}: cannot scrape /metrics: {e}; left out of this evaluation");
                    last = Some(Self::unavailable(
                        replica,
                        format!("cannot scrape /metrics: {e}"),
                    ));
                }
            }
        }
        match (out.is_empty(), last) {
            (true, Some(e)) => Err(e),
            _ => Ok(out),
        }
    }
}
