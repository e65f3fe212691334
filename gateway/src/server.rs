//! Assembles the pingora server: the proxy service on the configured
//! listeners, the admin API on its own listener, and the background services.

use crate::admin::AdminApi;
use crate::config::Config;
use crate::control::Gateway;
use crate::health::HealthChecks;
use crate::proxy::Proxy;
use crate::signals::ReloadOnHangup;
use pingora::listeners::tls::TlsSettings;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::path::PathBuf;
use std::sync::Arc;

/// Builds everything from a validated config and serves until shut down.
pub fn run(config_path: PathBuf, config: Config, reset_state: bool) -> anyhow::Result<()> {
    let gateway = Arc::new(Gateway::start(config_path, config.clone(), reset_state)?);
    let conf = ServerConf {
        threads: config.threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(config.shutdown_grace.as_secs().max(1)),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        Proxy::new(gateway.clone()),
        "proxy",
    );
    for listener in &config.listeners {
        match &listener.tls {
            None => proxy.add_tcp(&listener.address),
            Some(tls) => {
                let mut settings = TlsSettings::intermediate(
                    &tls.cert_file.to_string_lossy(),
                    &tls.key_file.to_string_lossy(),
                )
                .map_err(|e| {
                    anyhow::anyhow!("listener {}: TLS certificate or key: {e}", listener.address)
                })?;
                settings.enable_h2();
                proxy.add_tls_with_settings(&listener.address, None, settings);
            }
        }
    }
    let mut admin = Service::new("admin".to_owned(), AdminApi::new(gateway.clone()));
    admin.add_tcp(&config.admin.address);

    server.add_service(proxy);
    server.add_service(admin);
    server.add_service(background_service(
        "health checks",
        HealthChecks {
            gateway: gateway.clone(),
        },
    ));
    server.add_service(background_service(
        "reload on SIGHUP",
        ReloadOnHangup { gateway },
    ));
    tracing::info!(
        listeners = ?config.listeners.iter().map(|l| &l.address).collect::<Vec<_>>(),
        admin = %config.admin.address,
        "gateway starting"
    );
    server.run(RunArgs::default());
    Ok(())
}
