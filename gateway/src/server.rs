//! Assembles the pingora server: the proxy service on the configured
//! listeners, the admin API on its own listener, and the background services.

use crate::admin::AdminApi;
use crate::config::Config;
use crate::control::Gateway;
use crate::follow::FollowStore;
use crate::health::HealthChecks;
use crate::http1::Http1App;
use crate::limits::ConnectionLimits;
use crate::proxy::Proxy;
use crate::proxy_protocol::ProxyProtocol;
use crate::signals::ReloadOnHangup;
use crate::tls::watch::WatchCertificates;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};

/// Builds everything from a validated config and serves until SIGTERM.
pub fn run(config_path: PathBuf, config: Config, reset_state: bool) -> anyhow::Result<()> {
    let gateway = Arc::new(Gateway::start(config_path, config.clone(), reset_state)?);
    let conf = ServerConf {
        threads: config.threads,
        // One single-threaded runtime per worker, nginx-style: no task
        // stealing, so no cross-thread wake-ups on the request path.
        work_stealing: false,
        // pingora would sleep this long whatever happens; `drain` below
        // exits the process as soon as the last request is done instead.
        grace_period_seconds: Some(config.shutdown_grace.as_secs() + 1),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    // HTTP/1 takes the gateway's own lean path; pingora-proxy serves
    // clients that negotiate HTTP/2, or speak it with prior knowledge (h2c:
    // the lean path spots the preface and hands the connection over).
    let mut h2 = pingora::proxy::http_proxy(&server.configuration, Proxy::new(gateway.clone()));
    let mut h2_options = pingora::apps::HttpServerOptions::default();
    h2_options.h2c = true;
    h2.server_options = Some(h2_options);
    let proxy_protocol = Arc::new(ProxyProtocol::new(
        config
            .listeners
            .iter()
            .filter(|l| l.proxy_protocol)
            .filter_map(|l| l.address.parse().ok())
            .collect(),
        config.client_timeouts.header,
    ));
    let app = Http1App::new(
        gateway.clone(),
        h2,
        config.client_timeouts,
        config.threads,
        proxy_protocol.clone(),
        ConnectionLimits::new(&config.listeners, &gateway.metrics),
    );
    let mut proxy = Service::new("proxy".to_owned(), app);
    if config
        .listeners
        .iter()
        .any(|l| l.proxy_protocol && l.tls.is_some())
    {
        // Before the TLS handshake; plain connections read it in the app.
        proxy.endpoints().set_pre_tls_callback(proxy_protocol);
    }
    for listener in &config.listeners {
        let endpoint = ListenerConfig::tcp(listener.address.as_str());
        match &listener.tls {
            // No L4 buffers: the request path reads into buffers of its own,
            // taken only while a request is being read.
            None => proxy.add_listener(endpoint.l4_buffer(L4BufferSettings::unbuffered())),
            Some(_) => {
                let certificates = gateway
                    .certificates
                    .listener(&listener.address)
                    .expect("every TLS listener's certificates are loaded at start");
                // TLS reads whole records (up to 16 KiB): buffer below it.
                let buffer = L4BufferSettings::default().read(16 * 1024);
                proxy.add_listener(endpoint.tls(certificates.settings()?).l4_buffer(buffer));
            }
        }
    }
    let mut admin = Service::new("admin".to_owned(), AdminApi::new(gateway.clone()));
    match &config.admin.tls {
        None => admin.add_tcp(&config.admin.address),
        Some(tls) => admin.add_tls_with_settings(&config.admin.address, None, admin_tls(tls)?),
    }

    server.add_service(proxy);
    server.add_service(admin);
    server.add_service(background_service(
        "health checks",
        HealthChecks {
            gateway: gateway.clone(),
        },
    ));
    server.add_service(background_service(
        "follow the state store",
        FollowStore {
            gateway: gateway.clone(),
        },
    ));
    server.add_service(background_service(
        "watch certificate files",
        WatchCertificates {
            certificates: gateway.certificates.clone(),
        },
    ));
    server.add_service(background_service(
        "reload on SIGHUP",
        ReloadOnHangup {
            gateway: gateway.clone(),
        },
    ));
    tracing::info!(
        listeners = ?config.listeners.iter().map(|l| &l.address).collect::<Vec<_>>(),
        admin = %config.admin.address,
        "gateway starting"
    );
    let (stop_accepting, stop_signal) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("pingora".into())
        .spawn(move || {
            server.run(RunArgs {
                shutdown_signal: Box::new(Drain(tokio::sync::Mutex::new(Some(stop_signal)))),
            })
        })?;
    drain(&gateway, stop_accepting, config.shutdown_grace)
}

/// TLS for the admin listener; with a client CA, only clients holding a
/// certificate it signed complete the handshake.
fn admin_tls(tls: &crate::config::AdminTls) -> anyhow::Result<TlsSettings> {
    use pingora::tls::ssl::SslVerifyMode;
    let mut settings = TlsSettings::intermediate(
        &tls.cert_file.to_string_lossy(),
        &tls.key_file.to_string_lossy(),
    )
    .map_err(|e| anyhow::anyhow!("admin.tls: certificate or key: {e}"))?;
    if let Some(ca) = &tls.client_ca_file {
        settings
            .set_ca_file(ca)
            .map_err(|e| anyhow::anyhow!("admin.tls.client_ca_file {}: {e}", ca.display()))?;
        settings.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    Ok(settings)
}

/// Waits for SIGTERM (or SIGINT), then drains: readiness goes false,
/// pingora stops accepting, and the process exits as soon as no request is
/// in flight or the grace period is over, whichever comes first. (pingora
/// alone would always sleep the whole grace period.)
fn drain(
    gateway: &Gateway,
    stop_accepting: tokio::sync::oneshot::Sender<()>,
    grace: Duration,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        let started = Instant::now();
        gateway.start_draining();
        let _ = stop_accepting.send(());
        tracing::info!(in_flight = gateway.in_flight(), grace = ?grace, "{name}: draining");
        // Let connections accepted just before the signal register.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while gateway.in_flight() > 0 && started.elapsed() < grace {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = gateway.in_flight();
        if left > 0 {
            tracing::warn!(
                in_flight = left,
                "grace period over; exiting with requests in flight"
            );
        } else {
            tracing::info!(after = ?started.elapsed(), "drained; exiting");
        }
        anyhow::Ok(())
    })?;
    std::process::exit(0)
}

/// Tells pingora to shut down gracefully once `drain` says so.
struct Drain(tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>);

#[async_trait::async_trait]
impl ShutdownSignalWatch for Drain {
    async fn recv(&self) -> ShutdownSignal {
        if let Some(rx) = self.0.lock().await.take() {
            let _ = rx.await;
        }
        ShutdownSignal::GracefulTerminate
    }
}
