//! Client load through the replicas in service: a few keep-alive workers,
//! each request to the next replica the ring offers, every failure kept
//! with its replica and its time so the report can tell the failures a
//! fault explains from the ones nothing explains.

use crate::ring::Ring;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request that did not get a 2xx answer.
#[derive(Clone, Debug)]
pub struct Failure {
    pub replica: usize,
    pub started: Instant,
    pub ended: Instant,
    pub what: String,
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    answered: AtomicU64,
    failures: Mutex<Vec<Failure>>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// What the clients saw.
pub struct Seen {
    pub sent: u64,
    pub answered: u64,
    pub failures: Vec<Failure>,
}

impl Load {
    /// `workers` loops, each pausing `pause` between requests; client keys
    /// (`x-client-id`) are many and distinct, so the split shows.
    pub fn start(ring: Arc<Ring>, workers: usize, pause: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let workers = (0..workers)
            .map(|w| {
                let (stop, tally, ring) = (stop.clone(), tally.clone(), ring.clone());
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let Some((replica, proxy, client)) = ring.pick() else {
                            tokio::time::sleep(pause).await;
                            continue;
                        };
                        tally.sent.fetch_add(1, Ordering::Relaxed);
                        let started = Instant::now();
                        let result = client
                            .get(format!("http://{proxy}/"))
                            .header("x-client-id", format!("client-{w}-{}", i % 500))
                            .send()
                            .await;
                        let what = match result {
                            Ok(r) if r.status().is_success() => None,
                            Ok(r) => Some(format!("status {}", r.status())),
                            Err(e) => Some(format!("{e:?}")),
                        };
                        match what {
                            None => {
                                tally.answered.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(what) => tally.failures.lock().unwrap().push(Failure {
                                replica,
                                started,
                                ended: Instant::now(),
                                what,
                            }),
                        }
                        tokio::time::sleep(pause).await;
                    }
                })
            })
            .collect();
        Load {
            stop,
            tally,
            workers,
        }
    }

    pub async fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            let _ = w.await;
        }
        Seen {
            sent: self.tally.sent.load(Ordering::Relaxed),
            answered: self.tally.answered.load(Ordering::Relaxed),
            failures: self.tally.failures.lock().unwrap().clone(),
        }
    }
}
