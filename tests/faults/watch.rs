//! Watches the replicas in service for divergence: every 250 ms each one's
//! served split is read from `/v1/state`; while two disagree the fleet is
//! diverged, and each such stretch is measured.

use crate::ring::Ring;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The stretches during which replicas in service served different splits.
#[derive(Debug, Default)]
pub struct Divergence {
    pub stretches: Vec<Duration>,
    pub polls: u64,
}

impl Divergence {
    pub fn longest(&self) -> Duration {
        self.stretches.iter().copied().max().unwrap_or_default()
    }
}

pub struct Watch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Divergence>,
}

impl Watch {
    pub fn start(ring: Arc<Ring>, admin_urls: Vec<String>) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .build()
                .unwrap();
            let mut seen = Divergence::default();
            let mut since: Option<Instant> = None;
            while !stopped.load(Ordering::Relaxed) {
                let mut splits = Vec::new();
                for i in ring.in_service() {
                    if let Some(split) = served_split(&client, &admin_urls[i]).await {
                        splits.push(split);
                    }
                }
                seen.polls += 1;
                let diverged = splits.windows(2).any(|w| (w[0] - w[1]).abs() > 1e-9);
                match (diverged, since) {
                    (true, None) => since = Some(Instant::now()),
                    (false, Some(from)) => {
                        seen.stretches.push(from.elapsed());
                        since = None;
                    }
                    _ => {}
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            if let Some(from) = since {
                seen.stretches.push(from.elapsed());
            }
            seen
        });
        Watch { stop, task }
    }

    pub async fn stop(self) -> Divergence {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// The split of route `web` a replica serves, if it answers.
pub async fn served_split(client: &reqwest::Client, admin_url: &str) -> Option<f64> {
    let state: serde_json::Value = client
        .get(format!("{admin_url}/v1/state"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    state["routes"]["web"]["green_percent"].as_f64()
}
