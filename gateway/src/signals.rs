//! SIGHUP re-reads the config file, as operators expect of a daemon.

use crate::control::Gateway;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

pub struct ReloadOnHangup {
    pub gateway: Arc<Gateway>,
}

#[async_trait]
impl BackgroundService for ReloadOnHangup {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen for SIGHUP, reload only through the admin API: {e}");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = hangups.recv() => {
                    if let Err(errors) = self.gateway.reload().await {
                        tracing::error!(?errors, "SIGHUP: the new config was refused; the running config stays");
                    }
                }
            }
        }
    }
}
