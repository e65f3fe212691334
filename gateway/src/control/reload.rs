//! Reloading the config file and the listeners' certificates (SIGHUP,
//! `POST /v1/reload`): all of it is checked first, then served at once, so
//! a refused reload changes nothing.

use super::Gateway;
use crate::config::Config;
use crate::pin::PinPolicy;
use crate::routing::Snapshot;
use std::sync::Arc;

impl Gateway {
    /// Re-reads the config file and every listener's certificate files. A
    /// config that fails validation, or a certificate that does not load,
    /// match its key or has expired, is refused and what runs stays; health
    /// state and splits carry over.
    pub async fn reload(&self) -> Result<(), Vec<String>> {
        let config = Config::load(&self.config_path).map_err(|e| {
            e.errors
                .iter()
                .map(|m| format!("{}: {m}", e.file.display()))
                .collect::<Vec<_>>()
        })?;
        let mut control = self.lock().await;
        let same_sockets = config.listeners.len() == control.config.listeners.len()
            && config
                .listeners
                .iter()
                .zip(&control.config.listeners)
                .all(|(new, old)| new.same_socket(old));
        if !same_sockets
            || config.admin != control.config.admin
            || config.state != control.config.state
            || config.threads != control.config.threads
            || config.upgrade_socket != control.config.upgrade_socket
        {
            return Err(vec![
                "listeners (other than their certificate files), admin, state, threads and upgrade_socket cannot change on reload; upgrade the gateway in place (SIGUSR2) for those".into(),
            ]);
        }
        let pin = Arc::new(PinPolicy::from_config(&config.pin).map_err(|e| vec![e])?);
        let previous = self.snapshot();
        let snapshot = Snapshot::build(
            &config,
            pin,
            &control.document,
            Some(&previous),
            &self.metrics,
        )?;
        self.certificates.reload(&config.listeners)?;
        self.routing.store(Arc::new(snapshot));
        control.config = config;
        let generation = control.document.generation;
        drop(control);
        self.publish_metrics(generation);
        tracing::info!(config = %self.config_path.display(), "config reloaded (and certificates)");
        Ok(())
    }
}
