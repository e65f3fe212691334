//! What the types cannot say: addresses, ranges, duplicates, files that
//! must exist, protocols that must match. Every problem is returned, each
//! naming its field.

use super::schema::*;
use crate::split::GreenPercent;
use ipnetwork::IpNetwork;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

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
                let sni = tls.sni.iter().enumerate().map(|(j, pair)| {
                    (
                        format!("listeners[{i}].tls.sni[{j}]"),
                        &pair.cert_file,
                        &pair.key_file,
                    )
                });
                for (at, cert, key) in
                    std::iter::once((format!("listeners[{i}].tls"), &tls.cert_file, &tls.key_file))
                        .chain(sni)
                {
                    check_file(&format!("{at}.cert_file"), cert, &mut errors);
                    check_file(&format!("{at}.key_file"), key, &mut errors);
                }
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
        errors.extend(self.http2.problems());
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
        let http_listeners: Vec<String> =
            self.listeners.iter().map(|l| l.address.clone()).collect();
        errors.extend(super::tcp_problems(&self.routes, &http_listeners));
        if let Some(log) = &self.access_log {
            errors.extend(log.problems());
        }
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
            if route.tcp.is_none() && !matchers.insert((hosts, route.path_prefix.as_str())) {
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
            if let Some(mirror) = &route.mirror {
                errors.extend(mirror.problems(&format!("{at}.mirror")));
            }
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
                if hc.protocol == Some(HealthProtocol::Grpc)
                    && group.protocol == UpstreamProtocol::Http1
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
