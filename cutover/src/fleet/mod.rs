//! The gateway fleet, through each replica's admin API: read state, apply
//! splits (guarded by `expected_generation`), wait for convergence, hold
//! the cutover lock, scrape metrics.
//!
//! Replicas that share a Kubernetes store get one write and are all waited
//! for; replicas with their own file stores get one write each.

mod discovery;

use crate::plan;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("gateway {replica}: {message}")]
    Replica { replica: String, message: String },
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

/// What `GET /v1/state` says (the fields the engine uses).
#[derive(Clone, Debug, Deserialize)]
pub struct GatewayState {
    pub generation: u64,
    pub served_generation: u64,
    pub routes: BTreeMap<String, RouteState>,
    pub store: StoreState,
    #[serde(default)]
    pub lock: Option<LockState>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RouteState {
    pub green_percent: f64,
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

#[derive(Clone, Debug, Deserialize)]
pub struct LockState {
    pub holder: String,
    pub expires_at: u64,
}

impl LockState {
    /// Not expired, and its holder not provably gone from this host.
    pub fn is_live(&self) -> bool {
        self.expires_at > crate::host::unix_now() && !holder_is_dead_here(&self.holder)
    }
}

/// A lock holder `user@host/pidN` whose process is gone from this host.
pub fn holder_is_dead_here(holder: &str) -> bool {
    let Some((who, pid)) = holder.rsplit_once("/pid") else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    let same_host = who
        .rsplit_once('@')
        .is_some_and(|(_, host)| host == crate::host::hostname());
    // SAFETY: kill with signal 0 only checks that the process exists.
    same_host && unsafe { libc::kill(pid, 0) } != 0
}

impl GatewayState {
    fn shares_store(&self) -> bool {
        self.store.kind.starts_with("kubernetes")
    }
}

pub struct Fleet {
    pub replicas: Vec<String>,
    token: String,
    client: reqwest::Client,
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
        }
    }

    /// The fleet of a plan: its admin URLs (or the headless Service's
    /// endpoints) and its token from the environment or a file.
    pub async fn from_plan(fleet: &plan::Fleet) -> Result<Fleet, FleetError> {
        let token = read_token(&fleet.token_env, fleet.token_file.as_deref())?;
        let replicas = match &fleet.kubernetes {
            Some(k) => discovery::admin_urls(k).await?,
            None => fleet.admin_urls.clone(),
        };
        Ok(Fleet::new(replicas, token))
    }

    fn fail(replica: &str, message: impl std::fmt::Display) -> FleetError {
        FleetError::Replica {
            replica: replica.to_owned(),
            message: message.to_string(),
        }
    }

    pub async fn state(&self, replica: &str) -> Result<GatewayState, FleetError> {
        let resp = self
            .client
            .get(format!("{replica}/v1/state"))
            .send()
            .await
            .map_err(|e| Self::fail(replica, format!("unreachable: {e}")))?;
        if !resp.status().is_success() {
            return Err(Self::fail(
                replica,
                format!("GET /v1/state answered {}", resp.status()),
            ));
        }
        resp.json()
            .await
            .map_err(|e| Self::fail(replica, format!("bad /v1/state: {e}")))
    }

    pub async fn states(&self) -> Result<Vec<(String, GatewayState)>, FleetError> {
        let mut out = Vec::new();
        for r in &self.replicas {
            out.push((r.clone(), self.state(r).await?));
        }
        Ok(out)
    }

    /// Sets `splits` on the fleet, one write per store. A replica already
    /// serving exactly these splits is not written again, so re-applying a
    /// step after a crash changes nothing.
    pub async fn apply(
        &self,
        splits: &BTreeMap<String, f64>,
        actor: &str,
        reason: &str,
        guard: bool,
    ) -> Result<Generations, FleetError> {
        let states = self.states().await?;
        let shared = states.first().is_some_and(|(_, s)| s.shares_store());
        let mut generations = Vec::new();
        for (replica, state) in &states {
            let already = splits.iter().all(|(route, p)| {
                state
                    .routes
                    .get(route)
                    .is_some_and(|r| (r.green_percent - p).abs() < 1e-9)
            });
            let generation = if already {
                state.generation
            } else {
                let mut body = serde_json::json!({
                    "routes": splits, "actor": actor, "reason": reason,
                });
                if guard {
                    body["expected_generation"] = state.generation.into();
                }
                let (status, answer) = self
                    .send(reqwest::Method::PUT, replica, "/v1/splits", &body)
                    .await?;
                match status.as_u16() {
                    200 => answer["generation"]
                        .as_u64()
                        .unwrap_or(state.generation + 1),
                    409 => {
                        let found = self.state(replica).await.map(|s| s.generation).unwrap_or(0);
                        return Err(FleetError::Conflict {
                            replica: replica.clone(),
                            expected: state.generation,
                            found,
                        });
                    }
                    _ => {
                        return Err(Self::fail(
                            replica,
                            format!("PUT /v1/splits answered {status}: {}", answer["error"]),
                        ))
                    }
                }
            };
            if shared {
                // One write reaches every replica through the store.
                return Ok(self
                    .replicas
                    .iter()
                    .map(|r| (r.clone(), generation))
                    .collect());
            }
            generations.push((replica.clone(), generation));
        }
        Ok(generations)
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

    /// Takes (or renews) the lock on every store of the fleet.
    pub async fn take_lock(
        &self,
        holder: &str,
        ttl: Duration,
        take_over: bool,
    ) -> Result<(), FleetError> {
        let states = self.states().await?;
        for (replica, state) in &states {
            let body = serde_json::json!({"holder": holder, "ttl_seconds": ttl.as_secs().max(1), "take_over": take_over});
            let (status, answer) = self
                .send(reqwest::Method::PUT, replica, "/v1/lock", &body)
                .await?;
            match status.as_u16() {
                200 => {}
                409 if answer["lock"].is_object() => {
                    return Err(FleetError::LockHeld {
                        holder: answer["lock"]["holder"].as_str().unwrap_or("?").to_owned(),
                        expires_at: answer["lock"]["expires_at"].as_u64().unwrap_or(0),
                        expired: answer["expired"].as_bool().unwrap_or(false),
                    })
                }
                _ => {
                    return Err(Self::fail(
                        replica,
                        format!("PUT /v1/lock answered {status}: {}", answer["error"]),
                    ))
                }
            }
            if state.shares_store() {
                break;
            }
        }
        Ok(())
    }

    pub async fn release_lock(&self, holder: &str) {
        let body = serde_json::json!({ "holder": holder });
        for replica in &self.replicas {
            let _ = self
                .send(reqwest::Method::POST, replica, "/v1/lock/release", &body)
                .await;
        }
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
            .map_err(|e| Self::fail(replica, format!("unreachable: {e}")))?;
        let status = resp.status();
        Ok((status, resp.json().await.unwrap_or_default()))
    }

    /// Who holds the lock, as the first reachable replica says.
    pub async fn lock_holder(&self) -> Option<LockState> {
        for replica in &self.replicas {
            if let Ok(s) = self.state(replica).await {
                return s.lock;
            }
        }
        None
    }

    /// Every replica's `/metrics` text.
    pub async fn scrape(&self) -> Result<Vec<(String, String)>, FleetError> {
        let mut out = Vec::new();
        for replica in &self.replicas {
            let text = self
                .client
                .get(format!("{replica}/metrics"))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| Self::fail(replica, format!("cannot scrape /metrics: {e}")))?
                .text()
                .await
                .map_err(|e| Self::fail(replica, format!("cannot scrape /metrics: {e}")))?;
            out.push((replica.clone(), text));
        }
        Ok(out)
    }
}

/// The admin token from the environment variable, else the file.
pub fn read_token(env: &str, file: Option<&std::path::Path>) -> Result<String, FleetError> {
    if let Ok(t) = std::env::var(env) {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_owned());
        }
    }
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .map_err(|e| {
                FleetError::Setup(format!(
                    "fleet.token_file: cannot read {}: {e}",
                    path.display()
                ))
            }),
        None => Err(FleetError::Setup(format!(
            "no admin token: set the environment variable {env} or fleet.token_file"
        ))),
    }
}
