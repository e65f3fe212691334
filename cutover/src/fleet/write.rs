//! Writing splits to the fleet: one write through any replica of a shared
//! store, guarded by the generation read first; one write per replica
//! with stores of their own. Passing faults are tried again.

use super::{Fleet, FleetError, Generations};
use std::collections::BTreeMap;

/// A split write: what to set, who asks, and whether it is guarded by the
/// generation read first (an outside change in between is a conflict).
struct Write<'a> {
    splits: &'a BTreeMap<String, f64>,
    mirrors: &'a BTreeMap<String, f64>,
    actor: &'a str,
    reason: &'a str,
    guard: bool,
}

impl Fleet {
    /// Sets `splits` on the fleet, one write per store. A replica already
    /// serving exactly these splits is not written again, so re-applying a
    /// step after a crash (or after a write whose answer was lost) changes
    /// nothing.
    pub async fn apply(
        &self,
        splits: &BTreeMap<String, f64>,
        actor: &str,
        reason: &str,
        guard: bool,
    ) -> Result<Generations, FleetError> {
        self.apply_mirrored(splits, &BTreeMap::new(), actor, reason, guard)
            .await
    }

    /// [`Fleet::apply`] with the routes' mirror percents set in the same
    /// generation (routes with a `mirror:` block only).
    pub async fn apply_mirrored(
        &self,
        splits: &BTreeMap<String, f64>,
        mirrors: &BTreeMap<String, f64>,
        actor: &str,
        reason: &str,
        guard: bool,
    ) -> Result<Generations, FleetError> {
        let write = Write {
            splits,
            mirrors,
            actor,
            reason,
            guard,
        };
        let (_, first) = self
            .patiently("reading the fleet's split", || self.any_state())
            .await?;
        if first.shares_store() {
            let baseline = first.generation;
            let generation = self
                .patiently("writing the split", || self.write_shared(&write, baseline))
                .await?;
            // One write reaches every replica through the store.
            return Ok(self
                .replicas
                .iter()
                .map(|r| (r.clone(), generation))
                .collect());
        }
        let mut generations = Vec::new();
        for replica in &self.replicas {
            let generation = self
                .patiently("writing the split", || self.write_own(&write, replica))
                .await?;
            generations.push((replica.clone(), generation));
        }
        Ok(generations)
    }

    /// One try at writing a shared store through any replica that knows
    /// the split as of `baseline` (the generation read first).
    async fn write_shared(&self, write: &Write<'_>, baseline: u64) -> Result<u64, FleetError> {
        let mut last = None;
        for replica in &self.replicas {
            let state = match self.state(replica).await {
                Ok(s) if s.loaded => s,
                Ok(_) => {
                    last = Some(Self::unavailable(
                        replica,
                        "has not read the split from its store yet",
                    ));
                    continue;
                }
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            if state.serves(write.splits, write.mirrors) {
                return Ok(state.generation); // written already (maybe by a try whose answer was lost)
            }
            if state.generation > baseline && write.guard {
                return Err(FleetError::Conflict {
                    replica: replica.clone(),
                    expected: baseline,
                    found: state.generation,
                });
            }
            if state.generation < baseline {
                // Not caught up yet: its watch delivers the rest.
                last = Some(Self::unavailable(
                    replica,
                    format!("serves generation {}, behind {baseline}", state.generation),
                ));
                continue;
            }
            match self.put_splits(write, replica, baseline).await {
                Err(FleetError::Conflict { .. }) => {
                    // The store's version moved (a lock renewal this
                    // replica has not seen yet, or an outside write):
                    // the next read tells which.
                    last = Some(Self::unavailable(replica, "the store changed meanwhile"));
                }
                Err(e) if e.is_passing() => last = Some(e),
                other => return other,
            }
        }
        Err(last.expect("a fleet has replicas (any_state found one)"))
    }

    /// One try at writing a replica with a store of its own.
    async fn write_own(&self, write: &Write<'_>, replica: &str) -> Result<u64, FleetError> {
        let state = self.state(replica).await?;
        if state.serves(write.splits, write.mirrors) {
            return Ok(state.generation);
        }
        self.put_splits(write, replica, state.generation).await
    }

    /// `PUT /v1/splits` on one replica; the new generation.
    async fn put_splits(
        &self,
        write: &Write<'_>,
        replica: &str,
        expected: u64,
    ) -> Result<u64, FleetError> {
        let mut body = serde_json::json!({
            "routes": write.splits, "actor": write.actor, "reason": write.reason,
        });
        if !write.mirrors.is_empty() {
            body["mirrors"] = serde_json::json!(write.mirrors);
        }
        if write.guard {
            body["expected_generation"] = expected.into();
        }
        let (status, answer) = self
            .send(reqwest::Method::PUT, replica, "/v1/splits", &body)
            .await?;
        match status.as_u16() {
            200 => Ok(answer["generation"].as_u64().unwrap_or(expected + 1)),
            409 => {
                let found = self.state(replica).await.map(|s| s.generation).unwrap_or(0);
                Err(FleetError::Conflict {
                    replica: replica.to_owned(),
                    expected,
                    found,
                })
            }
            s if s >= 500 => Err(Self::unavailable(
                replica,
                format!("PUT /v1/splits answered {status}: {}", answer["error"]),
            )),
            _ => Err(Self::fail(
                replica,
                format!("PUT /v1/splits answered {status}: {}", answer["error"]),
            )),
        }
    }
}
