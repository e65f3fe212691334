//! What a field is when the file leaves it out: the safe choice (loopback
//! listeners, verification on, short timeouts).

use std::time::Duration;

pub(super) fn default_resolve_interval() -> Duration {
    Duration::from_secs(30)
}

pub(super) fn yes() -> bool {
    true
}

pub(super) fn default_upgrade_socket() -> std::path::PathBuf {
    "/tmp/cutover-gateway-upgrade.sock".into()
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
