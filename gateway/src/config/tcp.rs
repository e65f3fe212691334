//! A route's `tcp:` block: the route carries TCP connections (or TLS it
//! passes through untouched) instead of HTTP requests.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TcpConfig {
    /// `IP:port` the route's connections arrive on: a listener of its own
    /// (shared only by TLS passthrough routes, told apart by `sni`).
    pub listen: String,
    /// TLS passthrough: a connection is routed by its ClientHello's server
    /// name (exact, or `*.` one label deep) and the TLS is not ended here.
    #[serde(default)]
    pub sni: Vec<String>,
    /// With `sni`: the route of clients whose server name no route names
    /// (or who send none). Without one such a client is closed (counted).
    #[serde(default)]
    pub sni_default: bool,
    /// A connection without a byte either way for this long is closed.
    #[serde(default = "default_idle", with = "humantime_serde")]
    pub idle_timeout: Duration,
}

fn default_idle() -> Duration {
    Duration::from_secs(600)
}

/// Problems of the config's TCP routes, each naming its field.
pub fn problems(routes: &[super::RouteConfig], http_listeners: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut by_listen: BTreeMap<&str, Vec<(usize, &TcpConfig)>> = BTreeMap::new();
    for (i, route) in routes.iter().enumerate() {
        let Some(tcp) = &route.tcp else { continue };
        let at = format!("routes[{i}].tcp");
        if tcp.listen.parse::<std::net::SocketAddr>().is_err() {
            out.push(format!("{at}.listen: {:?} is not an IP:port", tcp.listen));
        }
        if http_listeners.contains(&tcp.listen) {
            out.push(format!(
                "{at}.listen: {} is an HTTP listener too",
                tcp.listen
            ));
        }
        if tcp.idle_timeout.is_zero() {
            out.push(format!("{at}.idle_timeout: must be more than 0"));
        }
        let http_only = [
            (!route.hosts.is_empty(), "hosts"),
            (route.path_prefix != "/", "path_prefix"),
            (route.mirror.is_some(), "mirror"),
            (
                route.stickiness != Default::default(),
                "stickiness (a TCP route's client is its address)",
            ),
        ];
        for (_, field) in http_only.iter().filter(|(set, _)| *set) {
            out.push(format!("routes[{i}].{field}: not for a TCP route"));
        }
        by_listen
            .entry(tcp.listen.as_str())
            .or_default()
            .push((i, tcp));
    }
    for (listen, sharing) in by_listen {
        let passthrough = sharing
            .iter()
            .any(|(_, t)| !t.sni.is_empty() || t.sni_default);
        if sharing.len() > 1 && !passthrough {
            out.push(format!(
                "routes[{}].tcp.listen: {listen} is taken by another TCP route; routes share a listener only to pass TLS through by sni",
                sharing[1].0
            ));
        }
        for (i, tcp) in &sharing {
            if passthrough && tcp.sni.is_empty() && !tcp.sni_default {
                out.push(format!("routes[{i}].tcp.sni: routes on passthrough listener {listen} each name their server names (or are sni_default)"));
            }
        }
        if sharing.iter().filter(|(_, t)| t.sni_default).count() > 1 {
            out.push(format!(
                "tcp.sni_default: more than one route on {listen} is the default"
            ));
        }
    }
    out
}
