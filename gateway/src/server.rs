//! Assembles the pingora server: the proxy service on the configured
//! listeners, the admin API on its own listener, and the background services.

use crate::admin::AdminApi;
use crate::config::Config;
use crate::control::Gateway;
use crate::follow::FollowStore;
use crate::h2::H2App;
use crate::health::HealthChecks;
use crate::http1::{Http1App, PlainListener, ProxyListeners};
use crate::lifecycle::{KeptUntilExit, Lifecycle};
use crate::limits::ConnectionLimits;
use crate::listening::BoundFirst;
use crate::proxy::Proxy;
use crate::proxy_protocol::ProxyProtocol;
use crate::signals::{ReloadOnHangup, ReopenLogOnUsr1};
use crate::tcp::{TcpApp, TcpService};
use crate::tls::watch::WatchCertificates;
use pingora::connectors::TransportConnector;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::path::PathBuf;
use std::sync::Arc;

/// How this process starts.
pub struct Start {
    /// Begin from the config's initial splits (`--reset-state`).
    pub reset_state: bool,
    /// Take the listening sockets of the gateway being upgraded (`--upgrade`).
    pub upgrade: bool,
}

/// Builds everything from a validated config and serves until SIGTERM (or
/// until a successor took over, after SIGUSR2).
pub fn run(config_path: PathBuf, config: Config, start: Start) -> anyhow::Result<()> {
    let gateway = Arc::new(Gateway::start(
        config_path,
        config.clone(),
        start.reset_state,
    )?);
    let conf = ServerConf {
        threads: config.threads,
        // One single-threaded runtime per worker, nginx-style: no task
        // stealing, so no cross-thread wake-ups on the request path.
        work_stealing: false,
        // pingora would sleep this long whatever happens; `drain` below
        // exits the process as soon as the last request is done instead.
        grace_period_seconds: Some(config.shutdown_grace.as_secs() + 1),
        graceful_shutdown_timeout_seconds: Some(1),
        upgrade_sock: config.upgrade_socket.to_string_lossy().into_owned(),
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade: start.upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    // With --upgrade: the listening sockets come from the running gateway.
    server.bootstrap();

    // HTTP/1 takes the gateway's own lean path; pingora-proxy serves
    // clients that negotiate HTTP/2, or speak it with prior knowledge (h2c:
    // the lean path spots the preface and hands the connection over).
    let mut h2 = pingora::proxy::http_proxy(
        &server.configuration,
        Proxy::new(gateway.clone(), config.http2.send_timeout),
    );
    let mut h2_server = pingora::apps::HttpServerOptions::default();
    h2_server.h2c = true;
    h2_server.h2_idle_timeout = Some(config.http2.idle_timeout);
    h2.server_options = Some(h2_server);
    h2.h2_options = Some(config.http2.h2_options());
    let connector = Arc::new(TransportConnector::new(None));
    let h2 = H2App::new(
        h2,
        gateway.clone(),
        connector.clone(),
        config.http2.send_timeout,
        config.client_timeouts.keepalive,
    );
    let kept = KeptUntilExit {
        h2: Arc::new(h2),
        connector,
    };
    let proxy_protocol = Arc::new(ProxyProtocol::new(
        config
            .listeners
            .iter()
            .filter(|l| l.proxy_protocol)
            .filter_map(|l| l.address.parse().ok())
            .collect(),
        config.client_timeouts.header,
    ));
    let limits = Arc::new(ConnectionLimits::new(&config.listeners, &gateway.metrics));
    let app = Http1App::new(
        gateway.clone(),
        kept.h2.clone(),
        kept.connector.clone(),
        config.client_timeouts,
        config.threads,
        proxy_protocol.clone(),
        limits.clone(),
    );
    let plain = config
        .listeners
        .iter()
        .filter(|l| l.tls.is_none())
        .map(|l| PlainListener {
            address: l.address.parse().expect("config validation: IP:port"),
            proxy_protocol: l.proxy_protocol,
        })
        .collect();
    let mut proxy = ProxyListeners::new(app, plain);
    if config
        .listeners
        .iter()
        .any(|l| l.proxy_protocol && l.tls.is_some())
    {
        // Before the TLS handshake; plain connections read it in the app.
        proxy
            .tls_mut()
            .endpoints()
            .set_pre_tls_callback(proxy_protocol);
    }
    for listener in config.listeners.iter().filter(|l| l.tls.is_some()) {
        let certificates = gateway
            .certificates
            .listener(&listener.address)
            .expect("every TLS listener's certificates are loaded at start");
        // TLS reads whole records (up to 16 KiB): buffer below it.
        let buffer = L4BufferSettings::default().read(16 * 1024);
        let endpoint = ListenerConfig::tcp(listener.address.as_str())
            .tls(certificates.settings()?)
            .l4_buffer(buffer);
        proxy.tls_mut().add_listener(endpoint);
        proxy.bind_tls(&listener.address);
    }
    let mut admin = Service::new("admin".to_owned(), AdminApi::new(gateway.clone()));
    match &config.admin.tls {
        None => admin.add_tcp(&config.admin.address),
        Some(tls) => admin.add_tls_with_settings(&config.admin.address, None, admin_tls(tls)?),
    }

    server.add_service(proxy);
    // Bound before pingora's listener looks for it: a listener that
    // cannot listen stops the process (see `listening`).
    let admin_address = vec![config.admin.address.clone()];
    server.add_service(BoundFirst::new(admin, admin_address, "the admin listener"));
    // TCP routes: a listener each (TLS passthrough routes share theirs).
    let mut tcp_listeners: Vec<&str> = config
        .routes
        .iter()
        .filter_map(|r| Some(r.tcp.as_ref()?.listen.as_str()))
        .collect();
    tcp_listeners.sort_unstable();
    tcp_listeners.dedup();
    for listen in tcp_listeners {
        let app = TcpApp::new(
            gateway.clone(),
            listen.to_owned(),
            config.client_timeouts.header,
        );
        server.add_service(TcpService::new(app));
    }
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
    server.add_service(background_service(
        "reopen the access log on SIGUSR1",
        ReopenLogOnUsr1 {
            gateway: gateway.clone(),
        },
    ));
    tracing::info!(
        listeners = ?config.listeners.iter().map(|l| &l.address).collect::<Vec<_>>(),
        admin = %config.admin.address,
        "gateway starting"
    );
    let phases = server.watch_execution_phase();
    let (stop, stop_signal) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("pingora".into())
        .spawn(move || {
            server.run(RunArgs {
                shutdown_signal: Box::new(Drain(tokio::sync::Mutex::new(Some(stop_signal)))),
            })
        })?;
    let lifecycle = Lifecycle {
        gateway,
        limits,
        phases,
        grace: config.shutdown_grace,
        upgrade_socket: config.upgrade_socket,
        _kept: kept,
    };
    lifecycle.serve_until_stopped(stop)
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

/// Tells pingora how to shut down once `Lifecycle` says so.
struct Drain(tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<ShutdownSignal>>>);

#[async_trait::async_trait]
impl ShutdownSignalWatch for Drain {
    async fn recv(&self) -> ShutdownSignal {
        match self.0.lock().await.take() {
            Some(rx) => rx.await.unwrap_or(ShutdownSignal::GracefulTerminate),
            None => std::future::pending().await,
        }
    }
}
