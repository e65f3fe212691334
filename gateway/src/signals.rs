//! SIGHUP re-reads the config file, as operators expect of a daemon;
//! SIGUSR1 reopens the access log (logrotate's `postrotate`), as nginx does.

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

pub struct ReopenLogOnUsr1 {
    pub gateway: Arc<Gateway>,
}

#[async_trait]
impl BackgroundService for ReopenLogOnUsr1 {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(log) = &self.gateway.access_log else {
            return;
        };
        let mut usr1 = match signal(SignalKind::user_defined1()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen for SIGUSR1: the access log is not reopened after a rotation: {e}");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = usr1.recv() => {
                    tracing::info!("SIGUSR1: the access log is opened anew");
                    log.reopen();
                }
            }
        }
    }
}
