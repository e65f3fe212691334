//! What a field is when the file leaves it out: the safe choice (loopback
//! listeners, verification on, short timeouts).

use super::schema::*;
use std::time::Duration;

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            address: default_admin_address(),
            token_file: None,
            tls: None,
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

impl DnsConfig {
    pub fn resolver(&self) -> crate::resolve::Resolver {
        crate::resolve::Resolver {
            hosts_file: self.hosts_file.clone(),
        }
    }
}

pub(super) fn default_resolve_interval() -> Duration {
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

pub(super) fn yes() -> bool {
    true
}

pub(super) fn default_threads() -> usize {
    1
}

pub(super) fn default_grace() -> Duration {
    Duration::from_secs(10)
}

pub(super) fn default_admin_address() -> String {
    "127.0.0.1:9090".into()
}

pub(super) fn default_pin_header() -> String {
    "x-cutover-color".into()
}

pub(super) fn default_pin_secret_header() -> String {
    "x-cutover-pin-secret".into()
}

pub(super) fn default_path_prefix() -> String {
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

pub(super) fn default_health_path() -> String {
    "/healthz".into()
}

pub(super) fn default_health_interval() -> Duration {
    Duration::from_secs(1)
}

pub(super) fn default_health_timeout() -> Duration {
    Duration::from_millis(500)
}

pub(super) fn default_threshold() -> usize {
    2
}

pub(super) fn default_connect_timeout() -> Duration {
    Duration::from_secs(2)
}

pub(super) fn default_read_timeout() -> Duration {
    Duration::from_secs(30)
}

pub(super) fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}

pub(super) fn default_keepalive_timeout() -> Duration {
    Duration::from_secs(60)
}
