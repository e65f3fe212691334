//! The faults of one run, drawn from a seed: when each happens and to
//! what. Faults come in lanes; one lane's faults happen one after another
//! (one replica down at a time, as a PodDisruptionBudget allows; one
//! operator mishap at a time), different lanes' overlap freely.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// kill -9 of a gateway replica, started again after `down_ms`.
    ReplicaKilled { replica: usize, down_ms: u64 },
    /// The Kubernetes API server gone for `down_ms` (every watch cut).
    ApiServerDown { down_ms: u64 },
    /// A green backend flapping: `cycles` times killed, started again
    /// after `down_ms`, left up for `up_ms`.
    GreenEndpointFlapping {
        backend: usize,
        cycles: u32,
        down_ms: u64,
        up_ms: u64,
    },
    /// kill -9 of `cutover run` (or `resume`), `cutover resume` after `down_ms`.
    CutoverKilled { down_ms: u64 },
    /// The journal's file system fills up while the run goes on.
    JournalDiskFull,
    /// The engine dies and its journal's file system comes back read-only.
    JournalReadOnly,
    /// Another operator starts the same plan (own journal, then the same).
    SecondOperator,
}

#[derive(Clone, Debug, Serialize)]
pub struct Planned {
    /// From the start of the run.
    pub at_ms: u64,
    pub fault: Fault,
}

pub struct Schedule {
    pub replicas: Vec<Planned>,
    pub api_server: Vec<Planned>,
    pub green: Vec<Planned>,
    pub operator: Vec<Planned>,
}

impl Schedule {
    /// Faults over the middle of a run of nominal length `duration`;
    /// `disk` says whether the journal's disk faults can be staged.
    pub fn draw(seed: u64, duration: Duration, disk: bool) -> Schedule {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let start = duration.mul_f64(0.08);
        let span = duration.mul_f64(0.77);
        let count = |every: u64| (span.as_secs() / every).max(1) as usize;

        let replicas = spread(&mut rng, start, span, count(75))
            .into_iter()
            .map(|at| {
                (
                    at,
                    Fault::ReplicaKilled {
                        replica: rng.gen_range(0..crate::topology::REPLICAS),
                        down_ms: rng.gen_range(1000..5000),
                    },
                )
            })
            .collect();
        let api_server = spread(&mut rng, start, span, count(90))
            .into_iter()
            .map(|at| {
                (
                    at,
                    Fault::ApiServerDown {
                        down_ms: rng.gen_range(2000..10000),
                    },
                )
            })
            .collect();
        let green = spread(&mut rng, start, span, count(35))
            .into_iter()
            .map(|at| {
                (
                    at,
                    Fault::GreenEndpointFlapping {
                        backend: rng.gen_range(0..2),
                        cycles: rng.gen_range(1..=4),
                        down_ms: rng.gen_range(300..3000),
                        up_ms: rng.gen_range(300..2000),
                    },
                )
            })
            .collect();

        let mut mishaps = Vec::new();
        for _ in 0..count(300) {
            mishaps.push(Fault::CutoverKilled {
                down_ms: rng.gen_range(500..3000),
            });
            mishaps.push(Fault::SecondOperator);
        }
        if disk {
            for _ in 0..count(600) {
                mishaps.push(Fault::JournalDiskFull);
                mishaps.push(Fault::JournalReadOnly);
            }
        }
        mishaps.shuffle(&mut rng);
        let operator = spread(&mut rng, start, span, mishaps.len())
            .into_iter()
            .zip(mishaps)
            .collect();

        let planned = |faults: Vec<(Duration, Fault)>| {
            faults
                .into_iter()
                .map(|(at, fault)| Planned {
                    at_ms: at.as_millis() as u64,
                    fault,
                })
                .collect()
        };
        Schedule {
            replicas: planned(replicas),
            api_server: planned(api_server),
            green: planned(green),
            operator: planned(operator),
        }
    }

    pub fn all(&self) -> Vec<&Planned> {
        let mut all: Vec<&Planned> = [
            &self.replicas,
            &self.api_server,
            &self.green,
            &self.operator,
        ]
        .into_iter()
        .flatten()
        .collect();
        all.sort_by_key(|p| p.at_ms);
        all
    }
}

/// `n` times in `span` after `start`, one at a random point of each of
/// `n` equal slots.
fn spread(rng: &mut impl Rng, start: Duration, span: Duration, n: usize) -> Vec<Duration> {
    let slot = span / n.max(1) as u32;
    (0..n)
        .map(|k| start + slot * k as u32 + slot.mul_f64(rng.gen::<f64>()))
        .collect()
}
