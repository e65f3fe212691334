//! Where the gateway listens: the proxy's listeners with their TLS
//! certificates, and the admin API's listener.

use super::defaults::default_admin_address;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// Client connections served at once; past it new ones are closed on
    /// accept and counted. Default: an equal share of half the process's
    /// descriptor limit, less 256 kept for the admin API and health checks.
    #[serde(default)]
    pub max_connections: Option<usize>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM certificate chain: the default certificate, served to clients
    /// whose server name (SNI) no `sni` certificate names, or who send none.
    pub cert_file: PathBuf,
    /// PEM private key of `cert_file`.
    pub key_file: PathBuf,
    /// More certificates, each served to clients asking for a name in its
    /// subjectAltName (exact, or `*.` one label deep).
    #[serde(default)]
    pub sni: Vec<CertificateFiles>,
}

/// A certificate chain and its key, PEM files re-read when they change.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl ListenerConfig {
    /// The same socket, served the same way: what a reload cannot change
    /// (the certificate files it can).
    pub fn same_socket(&self, other: &ListenerConfig) -> bool {
        self.address == other.address
            && self.proxy_protocol == other.proxy_protocol
            && self.max_connections == other.max_connections
            && self.tls.is_some() == other.tls.is_some()
    }
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

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            address: default_admin_address(),
            token_file: None,
            tls: None,
        }
    }
}
