//! The background service that runs every upstream group's health checks
//! and name resolution at their own intervals, always over the current
//! routing snapshot (so a reloaded config is picked up without restarting
//! anything).

use crate::control::Gateway;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;

/// How often due checks are looked for; the finest useful interval.
const TICK: Duration = Duration::from_millis(100);

pub struct HealthChecks {
    pub gateway: Arc<Gateway>,
}

#[async_trait]
impl BackgroundService for HealthChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            for entry in &self.gateway.snapshot().routes {
                for group in [&entry.def.blue, &entry.def.green] {
                    // Each runs on its own so a slow endpoint (or resolver)
                    // never delays another group's.
                    let g = group.clone();
                    tokio::spawn(async move { g.check_health_if_due().await });
                    tokio::spawn(group.clone().resolve_if_due());
                }
            }
        }
    }
}
