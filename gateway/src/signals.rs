//! SIGHUP re-reads the config file, as operators expect of a daemon;
//! SIGUSR1 reopens the access log (logrotate's `postrotate`), as nginx does.

use crate::control::Gateway;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

/// Runs `each` for every `kind` signal until shutdown; `without` says what
/// is lost when the signal cannot be listened for.
async fn on_signal<F: std::future::Future<Output = ()>>(
    kind: SignalKind,
    name: &str,
    without: &str,
    mut shutdown: ShutdownWatch,
    each: impl Fn() -> F,
) {
    let mut signals = match signal(kind) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for {name}: {without}: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = signals.recv() => each().await,
        }
    }
}

pub struct ReloadOnHangup {
    pub gateway: Arc<Gateway>,
}

#[async_trait]
impl BackgroundService for ReloadOnHangup {
    async fn start(&self, shutdown: ShutdownWatch) {
        let without = "reload only through the admin API";
        on_signal(
            SignalKind::hangup(),
            "SIGHUP",
            without,
            shutdown,
            || async {
                if let Err(errors) = self.gateway.reload().await {
                    tracing::error!(
                        ?errors,
                        "SIGHUP: the new config was refused; the running config stays"
                    );
                }
            },
        )
        .await
    }
}

pub struct ReopenLogOnUsr1 {
    pub gateway: Arc<Gateway>,
}

#[async_trait]
impl BackgroundService for ReopenLogOnUsr1 {
    async fn start(&self, shutdown: ShutdownWatch) {
        let Some(log) = &self.gateway.access_log else {
            return;
        };
        let without = "the access log is not reopened after a rotation";
        on_signal(
            SignalKind::user_defined1(),
            "SIGUSR1",
            without,
            shutdown,
            || async {
                tracing::info!("SIGUSR1: the access log is opened anew");
                log.reopen();
            },
        )
        .await
    }
}
