//! The config file's fields: every struct and enum serde reads, with the
//! doc comment an operator's question lands on, and the defaults of whole
//! sections. The default of each field is in
//! `defaults.rs`, the checks serde cannot do in `validate.rs`.

use super::defaults::*;
use super::listeners::{AdminConfig, ListenerConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where clients connect. At least one.
    pub listeners: Vec<ListenerConfig>,
    /// The admin API listener and its token.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Where the desired split is kept across restarts.
    #[serde(default)]
    pub state: StateConfig,
    /// Request pinning with a header (smoke tests, humans checking green).
    #[serde(default)]
    pub pin: PinConfig,
    /// CIDR ranges of proxies in front of the gateway (a load balancer
    /// that ends TLS) whose `X-Forwarded-For`/`-Proto` are believed; from
    /// anyone else those headers are replaced.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Worker threads of the proxy service.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// How long clients may take: to send a request head, and to idle
    /// between requests on a keep-alive connection.
    #[serde(default)]
    pub client_timeouts: ClientTimeoutConfig,
    /// Limits on each HTTP/2 client connection (streams, header size,
    /// windows, resets, idle and stalled clients).
    #[serde(default)]
    pub http2: super::Http2Config,
    /// How endpoint names are resolved, and how often again.
    #[serde(default)]
    pub dns: DnsConfig,
    /// How long a SIGTERM waits for in-flight requests before exiting.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Where a new gateway process takes this one's listening sockets
    /// from on an in-place upgrade (SIGUSR2, or `gateway --upgrade`).
    #[serde(default = "default_upgrade_socket")]
    pub upgrade_socket: PathBuf,
    /// A line per request (and TCP connection); none by default.
    #[serde(default)]
    pub access_log: Option<super::AccessLogConfig>,
    /// The routes, matched by host and the longest path prefix.
    pub routes: Vec<RouteConfig>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, tag = "store", rename_all = "lowercase")]
pub enum StateConfig {
    /// Keep the split in memory only: it resets to the config on restart.
    #[default]
    Memory,
    /// A JSON file, written atomically before a change is acknowledged.
    File {
        /// Path of the state file.
        path: PathBuf,
    },
    /// A ConfigMap shared by every replica, watched for changes.
    Kubernetes {
        /// Namespace of the ConfigMap.
        namespace: String,
        /// Name of the ConfigMap.
        name: String,
        /// Kubeconfig file; with neither this nor `context`, the in-cluster
        /// config, else `KUBECONFIG` / `~/.kube/config`.
        #[serde(default)]
        kubeconfig: Option<PathBuf>,
        /// Kubeconfig context; the current context when absent.
        #[serde(default)]
        context: Option<String>,
    },
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PinConfig {
    /// Header that forces a colour: `blue` or `green`. Always stripped
    /// before the request goes upstream.
    #[serde(default = "default_pin_header")]
    pub header: String,
    /// Client source ranges whose pin header is honoured, e.g.
    /// `127.0.0.1/32`. Empty: only requests carrying the secret are.
    #[serde(default)]
    pub trusted_sources: Vec<String>,
    /// Header carrying the pin secret; stripped before the request goes
    /// upstream.
    #[serde(default = "default_pin_secret_header")]
    pub secret_header: String,
    /// File holding a secret that makes a pin header valid from any source.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique name; the admin API and metrics use it.
    pub name: String,
    /// Host names this route serves (without port). Empty or `*`: any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path prefix; the longest matching prefix wins.
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
    /// Split used until an operator changes it (then the state store wins).
    #[serde(default)]
    pub initial_green_percent: f64,
    pub blue: GroupConfig,
    pub green: GroupConfig,
    /// How a client is identified for stickiness.
    #[serde(default)]
    pub stickiness: StickinessConfig,
    #[serde(default)]
    pub health_check: HealthCheckConfig,
    /// What happens when every endpoint of the chosen colour is down.
    #[serde(default)]
    pub failover: FailoverPolicy,
    #[serde(default)]
    pub timeouts: TimeoutConfig,
    /// Copy some of blue's requests to green and compare the answers
    /// (see `MirrorConfig`); none by default.
    #[serde(default)]
    pub mirror: Option<super::MirrorConfig>,
    /// A TCP route: connections on a listener of its own (see `TcpConfig`).
    #[serde(default)]
    pub tcp: Option<super::TcpConfig>,
}

/// One colour's upstream endpoints (a cluster's ingress addresses).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// `host:port` of each endpoint; names are resolved when the config
    /// loads and every `dns.resolve_interval` after (every address a name
    /// has is an endpoint).
    pub endpoints: Vec<String>,
    /// Connect to the endpoints over TLS.
    #[serde(default)]
    pub tls: Option<UpstreamTls>,
    /// Host header sent upstream instead of the client's.
    #[serde(default)]
    pub host_rewrite: Option<String>,
    /// What the endpoints speak: `http1`, `h2` (over TLS, by ALPN) or
    /// `h2c` (HTTP/2 in the clear, prior knowledge), e.g. for gRPC.
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// Requests in flight to this colour at once; past it the gateway
    /// answers 503 with `Retry-After` at once instead of queueing. None:
    /// no limit.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    #[default]
    Http1,
    H2,
    H2c,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// Server name sent in the TLS handshake and checked in the certificate.
    pub sni: String,
    /// PEM bundle of CAs to trust; the system store when absent.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Verify the upstream's certificate and name. Only turn off knowingly.
    #[serde(default = "yes")]
    pub verify: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StickinessConfig {
    /// Cookie whose value identifies a client (e.g. a session cookie).
    pub cookie: Option<String>,
    /// Header whose value identifies a client (e.g. `x-user-id`).
    pub header: Option<String>,
    /// Cookie the gateway issues to clients that bring no key.
    pub issued_cookie: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// `http` (GET `path`, a 200 is healthy), `grpc` (the gRPC health
    /// protocol, `grpc.health.v1.Health/Check`: SERVING is healthy) or
    /// `tcp` (a connection is accepted). Default: `http`, `tcp` for a TCP
    /// route.
    #[serde(default)]
    pub protocol: Option<HealthProtocol>,
    /// With `grpc`: the service asked about; empty means the whole server.
    #[serde(default)]
    pub service: String,
    /// Path requested with GET; a 200 is healthy.
    #[serde(default = "default_health_path")]
    pub path: String,
    #[serde(default = "default_health_interval", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "default_health_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Consecutive successes that bring an endpoint back.
    #[serde(default = "default_threshold")]
    pub healthy_threshold: usize,
    /// Consecutive failures that take an endpoint out.
    #[serde(default = "default_threshold")]
    pub unhealthy_threshold: usize,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum HealthProtocol {
    #[default]
    Http,
    Grpc,
    Tcp,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum FailoverPolicy {
    /// Send the share of a colour with no healthy endpoint to the other one.
    #[default]
    OtherColor,
    /// Fail those requests (502) instead.
    None,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct TimeoutConfig {
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect: Duration,
    /// Longest wait for upstream bytes (not the whole response).
    #[serde(default = "default_read_timeout", with = "humantime_serde")]
    pub read: Duration,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientTimeoutConfig {
    /// Longest time from a request's first byte to the end of its head;
    /// a head that never ends is answered 408 and closed.
    #[serde(default = "default_header_timeout", with = "humantime_serde")]
    pub header: Duration,
    /// Longest idle time between requests on a keep-alive connection
    /// (and between reads of a request body).
    #[serde(default = "default_keepalive_timeout", with = "humantime_serde")]
    pub keepalive: Duration,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// How often endpoint names are resolved again: new addresses enter
    /// health checking, vanished ones drain, a name that stops resolving
    /// keeps its last good addresses.
    #[serde(default = "default_resolve_interval", with = "humantime_serde")]
    pub resolve_interval: Duration,
    /// Resolve names from this hosts(5) file only (re-read each time)
    /// instead of the system resolver.
    #[serde(default)]
    pub hosts_file: Option<PathBuf>,
}

impl DnsConfig {
    /// How this config resolves endpoint names.
    pub fn resolver(&self) -> crate::resolve::Resolver {
        crate::resolve::Resolver {
            hosts_file: self.hosts_file.clone(),
        }
    }
}

impl Default for PinConfig {
    fn default() -> Self {
        PinConfig {
            header: default_pin_header(),
            trusted_sources: Vec::new(),
            secret_header: default_pin_secret_header(),
            secret_file: None,
        }
    }
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            resolve_interval: default_resolve_interval(),
            hosts_file: None,
        }
    }
}

impl Default for ClientTimeoutConfig {
    fn default() -> Self {
        ClientTimeoutConfig {
            header: default_header_timeout(),
            keepalive: default_keepalive_timeout(),
        }
    }
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            connect: default_connect_timeout(),
            read: default_read_timeout(),
        }
    }
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            protocol: None,
            service: String::new(),
            path: default_health_path(),
            interval: default_health_interval(),
            timeout: default_health_timeout(),
            healthy_threshold: default_threshold(),
            unhealthy_threshold: default_threshold(),
        }
    }
}

/// One default for a missing `stickiness:` and for its missing fields (a
/// derived `Default` would leave the issued cookie's name empty and send
/// `Set-Cookie: =…`).
impl Default for StickinessConfig {
    fn default() -> Self {
        StickinessConfig {
            cookie: None,
            header: None,
            issued_cookie: "cutover_client".into(),
        }
    }
}
