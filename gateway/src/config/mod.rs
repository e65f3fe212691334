//! The gateway's configuration file (YAML), field by field.
//!
//! [`Config::load`] (in `load.rs`) refuses unknown fields and then checks
//! everything that serde cannot (addresses, ranges, duplicates, files), and
//! reports every problem at once, each naming its field, so an operator
//! fixes a file in one pass. A config that fails there never replaces a
//! running one. Endpoint names are checked for their form only: whether
//! they resolve is `gateway check --resolve`'s question (a name that does
//! not resolve at start waits unresolved while the others serve).

mod load;

pub use load::ConfigErrors;

use crate::split::GreenPercent;
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
    /// How endpoint names are resolved, and how often again.
    #[serde(default)]
    pub dns: DnsConfig,
    /// How long a SIGTERM waits for in-flight requests before exiting.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// The routes, matched by host and the longest path prefix.
    pub routes: Vec<RouteConfig>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `IP:port` to bind, e.g. `127.0.0.1:8080` or `0.0.0.0:443`.
    pub address: String,
    /// Serve TLS (HTTP/1.1 and HTTP/2 via ALPN) with these files.
    #[serde(default)]
    pub tls: Option<ListenerTls>,
    /// Connections start with a PROXY protocol header (v1 or v2) from a
    /// TCP load balancer naming the client; one without it is closed.
    #[serde(default)]
    pub proxy_protocol: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `IP:port` of the admin API; loopback by default.
    #[serde(default = "default_admin_address")]
    pub address: String,
    /// File holding the bearer token for mutations. The environment
    /// variable `GATEWAY_ADMIN_TOKEN` takes precedence. With neither, the
    /// admin API is read-only.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Serve the admin API over TLS (a fleet driven from another cluster
    /// or network), optionally only to clients with a certificate.
    #[serde(default)]
    pub tls: Option<AdminTls>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            address: default_admin_address(),
            token_file: None,
            tls: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminTls {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// PEM CA bundle: when set, a client must present a certificate it
    /// signed (mutual TLS), before and besides the bearer token.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
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
    /// `http` (GET `path`, a 200 is healthy) or `grpc` (the gRPC health
    /// protocol, `grpc.health.v1.Health/Check`: SERVING is healthy).
    #[serde(default)]
    pub protocol: HealthProtocol,
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

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            resolve_interval: default_resolve_interval(),
            hosts_file: None,
        }
    }
}

impl DnsConfig {
    pub fn resolver(&self) -> crate::resolve::Resolver {
        crate::resolve::Resolver {
            hosts_file: self.hosts_file.clone(),
        }
    }
}

fn default_resolve_interval() -> Duration {
    Duration::from_secs(30)
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
            protocol: HealthProtocol::default(),
            service: String::new(),
            path: default_health_path(),
            interval: default_health_interval(),
            timeout: default_health_timeout(),
            healthy_threshold: default_threshold(),
            unhealthy_threshold: default_threshold(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_threads() -> usize {
    1
}
fn default_grace() -> Duration {
    Duration::from_secs(10)
}
fn default_admin_address() -> String {
    "127.0.0.1:9090".into()
}
fn default_pin_header() -> String {
    "x-cutover-color".into()
}
fn default_pin_secret_header() -> String {
    "x-cutover-pin-secret".into()
}
fn default_path_prefix() -> String {
    "/".into()
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
fn default_health_path() -> String {
    "/healthz".into()
}
fn default_health_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_health_timeout() -> Duration {
    Duration::from_millis(500)
}
fn default_threshold() -> usize {
    2
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_read_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_keepalive_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Config {
    /// Checks what the types cannot; returns every problem.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.listeners.is_empty() {
            errors.push("listeners: at least one listener is required".into());
        }
        for (i, l) in self.listeners.iter().enumerate() {
            check_bind_address(&format!("listeners[{i}].address"), &l.address, &mut errors);
            if let Some(tls) = &l.tls {
                check_file(
                    &format!("listeners[{i}].tls.cert_file"),
                    &tls.cert_file,
                    &mut errors,
                );
                check_file(
                    &format!("listeners[{i}].tls.key_file"),
                    &tls.key_file,
                    &mut errors,
                );
            }
        }
        check_bind_address("admin.address", &self.admin.address, &mut errors);
        if let Some(f) = &self.admin.token_file {
            check_file("admin.token_file", f, &mut errors);
        }
        if let Some(tls) = &self.admin.tls {
            check_file("admin.tls.cert_file", &tls.cert_file, &mut errors);
            check_file("admin.tls.key_file", &tls.key_file, &mut errors);
            if let Some(ca) = &tls.client_ca_file {
                check_file("admin.tls.client_ca_file", ca, &mut errors);
            }
        }
        if self.threads == 0 {
            errors.push("threads: must be at least 1".into());
        }
        let client = &self.client_timeouts;
        if client.header.is_zero() || client.keepalive.is_zero() {
            errors.push(
                "client_timeouts: header and keepalive must be longer than 0 (e.g. 10s, 60s)"
                    .into(),
            );
        }
        if self.dns.resolve_interval < Duration::from_secs(1) {
            errors.push("dns.resolve_interval: must be at least 1s (e.g. 30s)".into());
        }
        if let Some(f) = &self.dns.hosts_file {
            check_file("dns.hosts_file", f, &mut errors);
        }
        for (i, range) in self.trusted_proxies.iter().enumerate() {
            if range.parse::<ipnetwork::IpNetwork>().is_err() {
                errors.push(format!(
                    "trusted_proxies[{i}]: {range:?} is not a CIDR range (e.g. 10.0.0.0/8 or 127.0.0.1/32)"
                ));
            }
        }
        for (i, range) in self.pin.trusted_sources.iter().enumerate() {
            if range.parse::<IpNetwork>().is_err() {
                errors.push(format!(
                    "pin.trusted_sources[{i}]: {range:?} is not a CIDR range (e.g. 10.0.0.0/8 or 127.0.0.1/32)"
                ));
            }
        }
        if let Some(f) = &self.pin.secret_file {
            check_file("pin.secret_file", f, &mut errors);
        }
        check_header_name("pin.header", &self.pin.header, &mut errors);
        check_header_name("pin.secret_header", &self.pin.secret_header, &mut errors);
        if self.routes.is_empty() {
            errors.push("routes: at least one route is required".into());
        }
        let mut names = HashSet::new();
        let mut matchers = HashSet::new();
        for (i, route) in self.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            if route.name.is_empty()
                || !route
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                errors.push(format!(
                    "{at}.name: {:?} must be non-empty letters, digits, '-' or '_'",
                    route.name
                ));
            }
            if !names.insert(route.name.as_str()) {
                errors.push(format!("{at}.name: duplicate route name {:?}", route.name));
            }
            let mut hosts: Vec<&str> = route.hosts.iter().map(String::as_str).collect();
            hosts.sort_unstable();
            if !matchers.insert((hosts, route.path_prefix.as_str())) {
                errors.push(format!(
                    "{at}: another route already matches the same hosts and path_prefix {:?}",
                    route.path_prefix
                ));
            }
            if !route.path_prefix.starts_with('/') {
                errors.push(format!(
                    "{at}.path_prefix: {:?} must start with '/'",
                    route.path_prefix
                ));
            }
            if let Err(e) = GreenPercent::from_percent(route.initial_green_percent) {
                errors.push(format!("{at}.initial_green_percent: {e}"));
            }
            check_group(&format!("{at}.blue"), &route.blue, &mut errors);
            check_group(&format!("{at}.green"), &route.green, &mut errors);
            let s = &route.stickiness;
            if s.cookie.is_some() && s.header.is_some() {
                errors.push(format!(
                    "{at}.stickiness: set either cookie or header, not both"
                ));
            }
            if let Some(h) = &s.header {
                check_header_name(&format!("{at}.stickiness.header"), h, &mut errors);
            }
            let hc = &route.health_check;
            for (color, group) in [("blue", &route.blue), ("green", &route.green)] {
                if hc.protocol == HealthProtocol::Grpc && group.protocol == UpstreamProtocol::Http1
                {
                    errors.push(format!(
                        "{at}.health_check.protocol: grpc needs HTTP/2 upstreams; set {at}.{color}.protocol to h2 or h2c"
                    ));
                }
            }
            if !hc.path.starts_with('/') {
                errors.push(format!(
                    "{at}.health_check.path: {:?} must start with '/'",
                    hc.path
                ));
            }
            if hc.interval.is_zero() || hc.timeout.is_zero() {
                errors.push(format!(
                    "{at}.health_check: interval and timeout must be greater than 0"
                ));
            }
            if hc.healthy_threshold == 0 || hc.unhealthy_threshold == 0 {
                errors.push(format!(
                    "{at}.health_check: healthy_threshold and unhealthy_threshold must be at least 1"
                ));
            }
        }
        errors
    }
}

fn check_bind_address(field: &str, value: &str, errors: &mut Vec<String>) {
    if value.parse::<SocketAddr>().is_err() {
        errors.push(format!(
            "{field}: {value:?} is not an IP:port address (e.g. 127.0.0.1:8080 or [::1]:8080)"
        ));
    }
}

fn check_file(field: &str, path: &Path, errors: &mut Vec<String>) {
    if let Err(e) = std::fs::metadata(path) {
        errors.push(format!("{field}: cannot read {}: {e}", path.display()));
    }
}

fn check_header_name(field: &str, name: &str, errors: &mut Vec<String>) {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        errors.push(format!("{field}: {name:?} is not a valid HTTP header name"));
    }
}

fn check_group(at: &str, group: &GroupConfig, errors: &mut Vec<String>) {
    if group.endpoints.is_empty() {
        errors.push(format!("{at}.endpoints: at least one endpoint is required"));
    }
    for (i, endpoint) in group.endpoints.iter().enumerate() {
        if let Err(e) = crate::resolve::parse_endpoint(endpoint) {
            errors.push(format!("{at}.endpoints[{i}]: {e}"));
        }
    }
    match (group.protocol, &group.tls) {
        (UpstreamProtocol::H2, None) => errors.push(format!(
            "{at}.protocol: h2 is negotiated over TLS: add {at}.tls, or use h2c for HTTP/2 in the clear"
        )),
        (UpstreamProtocol::H2c, Some(_)) => errors.push(format!(
            "{at}.protocol: h2c is HTTP/2 in the clear: remove {at}.tls, or use h2 over TLS"
        )),
        _ => {}
    }
    if let Some(tls) = &group.tls {
        if tls.sni.is_empty() {
            errors.push(format!(
                "{at}.tls.sni: must name the upstream's server name"
            ));
        }
        if let Some(ca) = &tls.ca_file {
            check_file(&format!("{at}.tls.ca_file"), ca, errors);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Config, String> {
        serde_yaml_ng::from_str::<Config>(yaml).map_err(|e| e.to_string())
    }

    const MINIMAL: &str = r#"
listeners: [{address: "127.0.0.1:8080"}]
routes:
  - name: web
    blue: {endpoints: ["127.0.0.1:8081"]}
    green: {endpoints: ["127.0.0.1:8082"]}
"#;

    #[test]
    fn minimal_config_gets_safe_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert!(c.validate().is_empty());
        assert_eq!(c.admin.address, "127.0.0.1:9090");
        assert_eq!(c.pin.header, "x-cutover-color");
        assert!(c.pin.trusted_sources.is_empty());
        assert_eq!(c.routes[0].path_prefix, "/");
        assert_eq!(c.routes[0].failover, FailoverPolicy::OtherColor);
        assert_eq!(c.state, StateConfig::Memory);
        // Without `stickiness:` the gateway still issues a named cookie.
        assert_eq!(c.routes[0].stickiness.issued_cookie, "cutover_client");
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse(&MINIMAL.replace("name: web", "name: web\n    colour: red")).unwrap_err();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn every_semantic_error_is_reported_with_its_field() {
        let yaml = r#"
listeners: [{address: "localhost:80"}]
pin: {trusted_sources: ["10.0.0.0/33"]}
routes:
  - name: web
    initial_green_percent: 120
    blue: {endpoints: ["127.0.0.1:99999"]}
    green: {endpoints: []}
  - name: web
    path_prefix: api
    blue: {endpoints: ["127.0.0.1:1"]}
    green: {endpoints: ["127.0.0.1:2"]}
"#;
        let errors = parse(yaml).unwrap().validate().join("\n");
        for needle in [
            "listeners[0].address",
            "pin.trusted_sources[0]",
            "routes[0].initial_green_percent",
            "routes[0].blue.endpoints[0]",
            "routes[0].green.endpoints",
            "routes[1].name: duplicate route name",
            "routes[1].path_prefix",
        ] {
            assert!(errors.contains(needle), "missing {needle} in\n{errors}");
        }
    }
}
