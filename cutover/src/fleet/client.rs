//! The admin API's HTTP client over TLS, and the admin token.

use super::FleetError;
use crate::plan;
use std::time::Duration;

/// An HTTP client for admin APIs over TLS: the plan's CA and client
/// certificate.
pub(super) fn tls_client(tls: &plan::AdminTls) -> Result<reqwest::Client, FleetError> {
    let read = |field: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| {
            FleetError::Setup(format!(
                "fleet.admin_tls.{field}: cannot read {}: {e}",
                path.display()
            ))
        })
    };
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if let Some(ca) = &tls.ca_file {
        let pem = read("ca_file", ca)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            FleetError::Setup(format!("fleet.admin_tls.ca_file {}: {e}", ca.display()))
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert_file, &tls.client_key_file) {
        let identity = reqwest::Identity::from_pkcs8_pem(
            &read("client_cert_file", cert)?,
            &read("client_key_file", key)?,
        )
        .map_err(|e| {
            FleetError::Setup(format!(
                "fleet.admin_tls: client certificate {} with key {}: {e} (the key must be PKCS#8 PEM)",
                cert.display(),
                key.display()
            ))
        })?;
        builder = builder.identity(identity);
    }
    builder
        .build()
        .map_err(|e| FleetError::Setup(format!("fleet.admin_tls: {e}")))
}

/// The admin token from the environment variable, else the file.
pub fn read_token(env: &str, file: Option<&std::path::Path>) -> Result<String, FleetError> {
    if let Ok(t) = std::env::var(env) {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_owned());
        }
    }
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .map_err(|e| {
                FleetError::Setup(format!(
                    "fleet.token_file: cannot read {}: {e}",
                    path.display()
                ))
            }),
        None => Err(FleetError::Setup(format!(
            "no admin token: set the environment variable {env} or fleet.token_file"
        ))),
    }
}
