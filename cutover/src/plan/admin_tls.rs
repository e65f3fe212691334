//! TLS for a fleet's admin API (gateways with `admin.tls`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminTls {
    /// PEM CA bundle trusted for the gateways' admin certificates (else
    /// the system's roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and its PKCS#8 key, for gateways whose
    /// `admin.tls.client_ca_file` asks for one.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}
