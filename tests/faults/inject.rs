//! Injecting the infrastructure's faults: gateway replicas killed and
//! started again, the API server down and back, green endpoints flapping.
//! Each lane runs its faults in order at their times.

use crate::schedule::{Fault, Planned};
use crate::topology::{wait_ready, Topology};
use e2e::Proc;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What happened when a fault was injected.
#[derive(Clone, Debug, Serialize)]
pub struct Injected {
    pub at_ms: u64,
    #[serde(flatten)]
    pub fault: Fault,
    /// It went as the fault expects (e.g. a killed replica came back ready,
    /// a full journal stopped the run with exit 1 and the split unchanged).
    pub ok: bool,
    pub detail: String,
}

/// Shared by the lanes: the run's start, the log of injected faults, and
/// when green endpoints died (requests in flight then may fail).
pub struct Injector {
    pub topology: Arc<Topology>,
    pub t0: Instant,
    pub log: Mutex<Vec<Injected>>,
    pub green_kills: Mutex<Vec<Instant>>,
}

impl Injector {
    pub fn since_start(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    pub fn note(&self, fault: &Fault, ok: bool, detail: String) {
        let at_ms = self.since_start();
        println!(
            "[{:>7.1}s] {} {}: {detail}",
            at_ms as f64 / 1000.0,
            if ok { "ok  " } else { "FAIL" },
            serde_json::to_value(fault).unwrap()["kind"]
                .as_str()
                .unwrap()
        );
        self.log.lock().unwrap().push(Injected {
            at_ms,
            fault: fault.clone(),
            ok,
            detail,
        });
    }

    /// Sleeps until `planned` is due.
    pub async fn until(&self, planned: &Planned) {
        let due = self.t0 + Duration::from_millis(planned.at_ms);
        tokio::time::sleep_until(due.into()).await;
    }

    /// Runs one infrastructure lane; stops early when `finished` is set.
    pub async fn lane(
        self: Arc<Self>,
        faults: Vec<Planned>,
        finished: Arc<std::sync::atomic::AtomicBool>,
    ) {
        for planned in faults {
            self.until(&planned).await;
            if finished.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            match planned.fault {
                Fault::ReplicaKilled { replica, down_ms } => {
                    self.kill_replica(&planned.fault, replica, down_ms).await
                }
                Fault::ApiServerDown { down_ms } => {
                    self.topology.api.lock().await.stop();
                    tokio::time::sleep(Duration::from_millis(down_ms)).await;
                    self.topology.api.lock().await.restart().await;
                    let back = Instant::now();
                    let fresh = self.stores_fresh(Duration::from_secs(15)).await;
                    let detail = match fresh {
                        true => format!(
                            "down {down_ms} ms; every replica in service read the store again {} ms after it came back",
                            back.elapsed().as_millis()
                        ),
                        false => format!("down {down_ms} ms; a replica still reports its store stale 15 s after it came back"),
                    };
                    self.note(&planned.fault, fresh, detail);
                }
                Fault::GreenEndpointFlapping {
                    backend,
                    cycles,
                    down_ms,
                    up_ms,
                } => {
                    for cycle in 0..cycles {
                        if cycle > 0 {
                            tokio::time::sleep(Duration::from_millis(up_ms)).await;
                        }
                        self.green_down(backend, down_ms).await;
                    }
                    self.note(
                        &planned.fault,
                        true,
                        format!(
                            "green-{} down {down_ms} ms and back, {cycles} times",
                            backend + 1
                        ),
                    );
                }
                _ => unreachable!("operator faults run in the operator's lane"),
            }
        }
    }

    /// Waits until no replica in service reports its store stale.
    async fn stores_fresh(&self, timeout: Duration) -> bool {
        self.every_replica(timeout, |s| s["store"]["stale"] == false)
            .await
    }

    /// Polls every replica in service's `/v1/state` until `holds` is true
    /// of all of them (true), or `timeout` passes (false).
    pub async fn every_replica(
        &self,
        timeout: Duration,
        holds: impl Fn(&serde_json::Value) -> bool,
    ) -> bool {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let urls = self.topology.admin_urls();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let mut all = true;
            for i in self.topology.ring.in_service() {
                let state = async {
                    client
                        .get(format!("{}/v1/state", urls[i]))
                        .send()
                        .await?
                        .json::<serde_json::Value>()
                        .await
                };
                all &= state.await.is_ok_and(|s| holds(&s));
            }
            if all {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    async fn kill_replica(&self, fault: &Fault, replica: usize, down_ms: u64) {
        let topology = &self.topology;
        let killed = Instant::now();
        topology.replicas[replica].lock().unwrap().kill();
        topology.ring.remove_killed(replica, killed);
        tokio::time::sleep(Duration::from_millis(down_ms)).await;
        let (admin, proxy) = {
            let mut gateway = topology.replicas[replica].lock().unwrap();
            let log = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&gateway.log)
                .unwrap();
            let mut command = gateway.command();
            command.stderr(log);
            gateway.proc = Some(Proc {
                child: command.spawn().unwrap(),
            });
            (gateway.admin, gateway.proxy)
        };
        let restarted = Instant::now();
        let ready = wait_ready(admin, Duration::from_secs(60)).await;
        if ready {
            topology.ring.add(replica, proxy);
        }
        self.note(
            fault,
            ready,
            format!(
                "replica {replica} down {down_ms} ms, {} {} ms after its start",
                if ready { "ready" } else { "NOT ready" },
                restarted.elapsed().as_millis()
            ),
        );
    }

    async fn green_down(&self, backend: usize, down_ms: u64) {
        let green = self.topology.green[backend].clone();
        self.green_kills.lock().unwrap().push(Instant::now());
        let stopped = green.clone();
        tokio::task::spawn_blocking(move || stopped.lock().unwrap().stop())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(down_ms)).await;
        let addr = tokio::task::spawn_blocking(move || {
            let mut green = green.lock().unwrap();
            green.restart();
            green.addr
        })
        .await
        .unwrap();
        // Back in rotation everywhere before anything else happens to
        // green: the flapping is one endpoint's, as in a rolling restart;
        // green as a whole going dark is a failure the gates must roll back.
        self.in_rotation(addr, Duration::from_secs(15)).await;
    }

    /// Waits until every replica in service has green endpoint `addr` in
    /// rotation.
    async fn in_rotation(&self, addr: std::net::SocketAddr, timeout: Duration) {
        let addr = addr.to_string();
        self.every_replica(timeout, |s| {
            s["routes"]["web"]["green"]["endpoints"]
                .as_array()
                .is_some_and(|eps| {
                    eps.iter()
                        .any(|e| e["address"] == addr.as_str() && e["healthy"] == true)
                })
        })
        .await;
    }
}
