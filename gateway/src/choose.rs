//! Which route, colour and endpoint serve a request: the decisions both
//! request paths share (the lean HTTP/1 path in [`crate::http1`], the
//! lean HTTP/2 path in `h2`, and pingora-proxy's in [`crate::proxy`]).
//!
//! choose      the route (host, longest prefix), then the colour: a valid
//!             pin, else the client's sticky key hashed against the split
//! Attempts    a healthy endpoint of that colour not tried yet, failing over
//!             to the other colour when none is left

use crate::config::FailoverPolicy;
use crate::headers::Headers;
use crate::metrics::Metrics;
use crate::routing::{RouteDef, Snapshot};
use crate::split::{bucket_of, Color};
use crate::upstream::Endpoint;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The route and colour chosen for one request.
pub struct Choice {
    /// Index into [`Snapshot::routes`].
    pub route: usize,
    pub color: Color,
    /// Pinned requests test one colour on purpose and never fail over.
    pub pinned: bool,
    /// A new client key to hand out in a cookie with the response.
    pub issued_key: Option<String>,
}

/// The route for `host` and `path`, and its colour for this client; `None`
/// when no route matches.
pub fn choose(
    snapshot: &Snapshot,
    host: &str,
    path: &str,
    client: Option<IpAddr>,
    headers: &(impl Headers + ?Sized),
) -> Option<Choice> {
    let route = snapshot.find(host, path)?;
    Some(choose_in(snapshot, route, client, headers))
}

/// The colour of `route` (an index into `snapshot.routes`, found already)
/// for this client.
pub fn choose_in(
    snapshot: &Snapshot,
    route: usize,
    client: Option<IpAddr>,
    headers: &(impl Headers + ?Sized),
) -> Choice {
    let entry = &snapshot.routes[route];
    if let Some(color) = snapshot.pin.pinned_color(headers, client) {
        return Choice {
            route,
            color,
            pinned: true,
            issued_key: None,
        };
    }
    let sticky = &entry.def.stickiness;
    let bucket = sticky
        .cookie
        .as_deref()
        .and_then(|c| cookie_value(headers, c, bucket_of))
        .or_else(|| headers.get(sticky.header.as_deref()?).map(bucket_of))
        .or_else(|| cookie_value(headers, &sticky.issued_cookie, bucket_of));
    let (bucket, issued_key) = match bucket {
        Some(bucket) => (bucket, None),
        None => {
            // A new client's key: unique, not secret (a client may send any
            // key it likes), so the request ID's generator serves without
            // a random draw per request.
            let fresh = crate::request_id::generate();
            let key = String::from_utf8(fresh.to_vec()).expect("hex digits");
            (bucket_of(&fresh), Some(key))
        }
    };
    let color = if entry.green_percent.sends_to_green(bucket) {
        Color::Green
    } else {
        Color::Blue
    };
    Choice {
        route,
        color,
        pinned: false,
        issued_key,
    }
}

/// Applies `with` to the value of the first non-empty cookie `name`.
fn cookie_value<T>(
    headers: &(impl Headers + ?Sized),
    name: &str,
    with: impl Fn(&[u8]) -> T,
) -> Option<T> {
    headers.find_map("cookie", |value| {
        let value = std::str::from_utf8(value).ok()?;
        cookie::Cookie::split_parse(value)
            .filter_map(Result::ok)
            .find(|c| c.name() == name)
            .map(|c| c.value_raw().unwrap_or(""))
            .filter(|v| !v.is_empty())
            .map(|v| with(v.as_bytes()))
    })
}

/// Host without port, from a Host header or an authority.
/// `example.com:8080` → `example.com`, `[::1]:80` → `::1`.
pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Host without port, from the URI (HTTP/2) or the Host header (HTTP/1).
pub fn request_host(req: &pingora::http::RequestHeader) -> &str {
    let host = match req.uri.host() {
        Some(h) => return h.trim_start_matches('[').trim_end_matches(']'),
        None => req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
    };
    strip_port(host)
}

/// The endpoints one request has tried, and which colour it is on.
pub struct Attempts {
    pub color: Color,
    pinned: bool,
    failed_over: bool,
    tried: Vec<SocketAddr>,
}

/// Neither the chosen colour nor (where allowed) the other has an endpoint
/// left to try.
pub struct NoEndpoint {
    pub color: Color,
}

impl Attempts {
    pub fn new(choice: &Choice) -> Attempts {
        Attempts {
            color: choice.color,
            pinned: choice.pinned,
            failed_over: false,
            tried: Vec::new(),
        }
    }

    /// A healthy endpoint not tried yet, of this colour or, once it has
    /// none, of the other (counted in `gateway_failover_requests_total`).
    pub fn next(&mut self, def: &RouteDef, metrics: &Metrics) -> Result<Arc<Endpoint>, NoEndpoint> {
        loop {
            if let Some(endpoint) = def.group(self.color).pick(&self.tried) {
                return Ok(endpoint);
            }
            if self.pinned || self.failed_over || def.failover == FailoverPolicy::None {
                return Err(NoEndpoint { color: self.color });
            }
            let from = self.color;
            self.color = from.other();
            self.failed_over = true;
            metrics
                .failover_requests
                .with_label_values(&[&def.name, from.as_str(), self.color.as_str()])
                .inc();
        }
    }

    /// `endpoint` failed before it got the request: never pick it again.
    pub fn failed(&mut self, endpoint: SocketAddr) {
        self.tried.push(endpoint);
    }

    /// `endpoint` could not be connected to: counted as `route`'s connect
    /// error, and never picked again.
    pub fn unreachable(
        &mut self,
        endpoint: SocketAddr,
        route: &str,
        metrics: &Metrics,
        why: impl std::fmt::Display,
    ) {
        tracing::debug!(%endpoint, "connect failed: {why}");
        let labels = [route, self.color.as_str(), "connect"];
        metrics.upstream_errors.with_label_values(&labels).inc();
        self.failed(endpoint);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_are_stripped_from_hosts() {
        for (given, host) in [
            ("example.com", "example.com"),
            ("example.com:8080", "example.com"),
            ("[::1]:80", "::1"),
            ("::1", "::1"),
            ("10.0.0.1:443", "10.0.0.1"),
        ] {
            assert_eq!(super::strip_port(given), host);
        }
    }

    #[test]
    fn headers_from_httparse_are_found_by_any_case() {
        let headers = [
            httparse::Header {
                name: "Cookie",
                value: b"a=1",
            },
            httparse::Header {
                name: "X-Key",
                value: b"k",
            },
            httparse::Header {
                name: "cookie",
                value: b"b=2; c=3",
            },
        ];
        let headers: &[httparse::Header] = &headers;
        assert_eq!(
            crate::headers::Headers::get(headers, "x-key"),
            Some(&b"k"[..])
        );
        let c = super::cookie_value(headers, "c", |v| v.to_vec());
        assert_eq!(c.as_deref(), Some(&b"3"[..]));
        assert!(super::cookie_value(headers, "z", |v| v.to_vec()).is_none());
    }
}
