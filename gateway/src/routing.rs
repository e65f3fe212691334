//! The routing table: one immutable snapshot of every route, its upstream
//! groups and its split, published through `ArcSwap`.
//!
//! A request loads the snapshot once and uses that version throughout, so a
//! change never shows it half of an update. Changing a split or reloading the
//! config builds a new snapshot and swaps it in whole; upstream groups (and
//! with them health state and connection pools) are shared between snapshots.

use crate::config::{Config, FailoverPolicy, StickinessConfig};
use crate::metrics::{Metrics, RouteMetrics};
use crate::pin::PinPolicy;
use crate::split::{Color, GreenPercent};
use crate::state::SplitDocument;
use crate::upstream::{GroupSpec, UpstreamGroup};
use std::collections::HashMap;
use std::sync::Arc;

/// Everything about a route except its split; shared between snapshots.
pub struct RouteDef {
    pub name: String,
    /// Lower-case host names; empty matches any host.
    hosts: Vec<String>,
    path_prefix: String,
    pub blue: Arc<UpstreamGroup>,
    pub green: Arc<UpstreamGroup>,
    pub stickiness: StickinessConfig,
    pub failover: FailoverPolicy,
    pub initial: GreenPercent,
    pub metrics: RouteMetrics,
    /// Copies of blue's requests to green, when the route has `mirror:`.
    pub mirror: Option<Arc<crate::mirror::Mirror>>,
    /// A TCP route: where its connections arrive (never matched by HTTP).
    pub tcp: Option<crate::config::TcpConfig>,
}

impl RouteDef {
    pub fn group(&self, color: Color) -> &Arc<UpstreamGroup> {
        match color {
            Color::Blue => &self.blue,
            Color::Green => &self.green,
        }
    }

    fn matches(&self, host: &str, path: &str) -> bool {
        self.tcp.is_none()
            && (self.hosts.is_empty()
                || self
                    .hosts
                    .iter()
                    .any(|h| h == "*" || h.eq_ignore_ascii_case(host)))
            && path.starts_with(&self.path_prefix)
    }

    /// Specific hosts before wildcards, then longer prefixes first.
    fn precedence(&self) -> (bool, std::cmp::Reverse<usize>) {
        let wildcard = self.hosts.is_empty() || self.hosts.iter().any(|h| h == "*");
        (wildcard, std::cmp::Reverse(self.path_prefix.len()))
    }
}

#[derive(Clone)]
pub struct RouteEntry {
    pub def: Arc<RouteDef>,
    pub green_percent: GreenPercent,
    /// Share of blue's requests copied to green (0 without `mirror:`).
    pub mirror_percent: GreenPercent,
}

impl RouteEntry {
    fn new(def: Arc<RouteDef>, document: &SplitDocument) -> RouteEntry {
        let name = &def.name;
        RouteEntry {
            green_percent: document.routes.get(name).copied().unwrap_or(def.initial),
            mirror_percent: match &def.mirror {
                Some(m) => document.mirrors.get(name).copied().unwrap_or(m.initial),
                None => GreenPercent::ZERO,
            },
            def,
        }
    }
}

/// One consistent version of the routing table.
pub struct Snapshot {
    /// Generation of the split document this snapshot routes by.
    pub generation: u64,
    /// In match order.
    pub routes: Vec<RouteEntry>,
    pub pin: Arc<PinPolicy>,
    /// Which peers' forwarding headers are believed.
    pub forwarding: Arc<crate::forwarded::Forwarding>,
}

impl Snapshot {
    /// Builds the route definitions of `config`, reusing from `previous`
    /// every upstream group whose spec is unchanged.
    pub fn build(
        config: &Config,
        pin: Arc<PinPolicy>,
        document: &SplitDocument,
        previous: Option<&Snapshot>,
        metrics: &Arc<Metrics>,
    ) -> Result<Snapshot, Vec<String>> {
        let mut reusable: HashMap<GroupSpec, Arc<UpstreamGroup>> = HashMap::new();
        if let Some(prev) = previous {
            for entry in &prev.routes {
                for g in [&entry.def.blue, &entry.def.green] {
                    reusable.insert(g.spec().clone(), g.clone());
                }
            }
        }
        let mut errors = Vec::new();
        let mut routes = Vec::new();
        for (i, rc) in config.routes.iter().enumerate() {
            let mut group = |color: Color| {
                let spec = GroupSpec {
                    route: rc.name.clone(),
                    color,
                    group: match color {
                        Color::Blue => rc.blue.clone(),
                        Color::Green => rc.green.clone(),
                    },
                    health: crate::config::HealthCheckConfig {
                        protocol: Some(rc.health_check.protocol.unwrap_or(match rc.tcp {
                            Some(_) => crate::config::HealthProtocol::Tcp,
                            None => crate::config::HealthProtocol::Http,
                        })),
                        ..rc.health_check.clone()
                    },
                    timeouts: rc.timeouts,
                    dns: config.dns.clone(),
                };
                if let Some(g) = reusable.get(&spec) {
                    return Some(g.clone());
                }
                match UpstreamGroup::build(spec, metrics.clone()) {
                    Ok(g) => Some(Arc::new(g)),
                    Err(e) => {
                        errors.push(format!("routes[{i}].{}: {e}", color.as_str()));
                        None
                    }
                }
            };
            let (Some(blue), Some(green)) = (group(Color::Blue), group(Color::Green)) else {
                continue;
            };
            let initial = GreenPercent::from_percent(rc.initial_green_percent)
                .expect("validated with the config");
            let def = Arc::new(RouteDef {
                name: rc.name.clone(),
                hosts: rc.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
                path_prefix: rc.path_prefix.clone(),
                blue,
                green,
                stickiness: rc.stickiness.clone(),
                failover: rc.failover,
                initial,
                metrics: RouteMetrics::new(metrics, &rc.name, rc.tcp.is_some()),
                mirror: rc
                    .mirror
                    .as_ref()
                    .map(|m| Arc::new(crate::mirror::Mirror::new(&rc.name, m, metrics))),
                tcp: rc.tcp.clone(),
            });
            routes.push(RouteEntry::new(def, document));
        }
        let forwarding =
            crate::forwarded::Forwarding::new(&config.trusted_proxies).unwrap_or_else(|e| {
                errors.push(e);
                Default::default()
            });
        if !errors.is_empty() {
            return Err(errors);
        }
        routes.sort_by_key(|r| r.def.precedence());
        Ok(Snapshot {
            generation: document.generation,
            routes,
            pin,
            forwarding: Arc::new(forwarding),
        })
    }

    /// The same routes with the splits of `document`.
    pub fn with_splits(&self, document: &SplitDocument) -> Snapshot {
        Snapshot {
            generation: document.generation,
            routes: self
                .routes
                .iter()
                .map(|r| RouteEntry::new(r.def.clone(), document))
                .collect(),
            pin: self.pin.clone(),
            forwarding: self.forwarding.clone(),
        }
    }

    /// Index of the route serving `host` (port stripped) and `path`.
    pub fn find(&self, host: &str, path: &str) -> Option<usize> {
        self.routes.iter().position(|r| r.def.matches(host, path))
    }

    pub fn route(&self, name: &str) -> Option<&RouteEntry> {
        self.routes.iter().find(|r| r.def.name == name)
    }
}
