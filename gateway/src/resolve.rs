//! Endpoint names (load balancer and ingress host names) and the addresses
//! they stand for: resolved when a group is built, then again every
//! `dns.resolve_interval` by the upkeep service, as pingora service
//! discovery ([`NameDiscovery`]), so pingora keeps the health of addresses
//! that stay and health-checks the new ones.
//!
//! A name that stops resolving keeps its last good addresses and is
//! reported (log, `/v1/state`, `gateway_endpoint_resolve_failing`) until
//! it resolves again.

use async_trait::async_trait;
use pingora::lb::discovery::ServiceDiscovery;
use pingora::lb::Backend;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How names become addresses: from `dns.hosts_file` when set (hosts(5)
/// format, re-read at every resolution, the only source then: a name not
/// in it does not resolve), else the system resolver.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Resolver {
    pub hosts_file: Option<PathBuf>,
}

impl Resolver {
    /// Every address of a `host:port` endpoint (an `IP:port` is itself).
    pub fn resolve(&self, endpoint: &str) -> Result<Vec<SocketAddr>, String> {
        if let Ok(addr) = endpoint.parse::<SocketAddr>() {
            return Ok(vec![addr]);
        }
        let (host, port) = parse_endpoint(endpoint)?;
        let bad = |why: String| {
            format!("{endpoint:?} is not a reachable host:port (e.g. 10.0.0.4:443 or ingress.blue.example:443): {why}")
        };
        let mut addrs = match &self.hosts_file {
            Some(_) => self
                .in_hosts_file(host)?
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            None => (host, port)
                .to_socket_addrs()
                .map_err(|e| bad(e.to_string()))?
                .collect::<Vec<_>>(),
        };
        addrs.sort();
        addrs.dedup();
        if addrs.is_empty() {
            return Err(format!("{endpoint:?} resolved to no address"));
        }
        Ok(addrs)
    }

    /// The hosts file's addresses for `host`.
    fn in_hosts_file(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let Some(path) = &self.hosts_file else {
            return Ok(Vec::new());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("dns.hosts_file {}: {e}", path.display()))?;
        let ips: Vec<IpAddr> = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default())
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let ip = fields.next()?.parse::<IpAddr>().ok()?;
                fields
                    .any(|name| name.eq_ignore_ascii_case(host))
                    .then_some(ip)
            })
            .collect();
        if ips.is_empty() {
            return Err(format!(
                "{host} is not in dns.hosts_file {}",
                path.display()
            ));
        }
        Ok(ips)
    }
}

/// The host and port of an `IP:port` or `name:port` endpoint, checked for
/// form only (no lookup): a port, and a host that is an IP or a DNS name.
pub fn parse_endpoint(endpoint: &str) -> Result<(&str, u16), String> {
    let bad = |why: String| {
        format!("{endpoint:?} is not a host:port (e.g. 10.0.0.4:443 or ingress.blue.example:443): {why}")
    };
    if let Ok(addr) = endpoint.parse::<SocketAddr>() {
        let host = endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h);
        return Ok((host, addr.port()));
    }
    let (host, port) = endpoint
        .rsplit_once(':')
        .ok_or_else(|| bad("no port".into()))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad(format!("bad port {port:?}")))?;
    let name_like = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !name_like {
        return Err(bad(format!(
            "{host:?} is neither an IP address nor a DNS name"
        )));
    }
    Ok((host, port))
}

/// One configured endpoint's resolution.
#[derive(Clone, Debug, Default)]
pub struct NameState {
    /// The last addresses it resolved to.
    pub last_good: Vec<SocketAddr>,
    /// Why the latest resolution failed, while it fails.
    pub failing: Option<String>,
}

/// pingora service discovery over a group's configured endpoints.
pub struct NameDiscovery {
    pub names: Arc<Names>,
}

/// The configured endpoints and how each resolves now.
pub struct Names {
    endpoints: Vec<String>,
    resolver: Resolver,
    states: Mutex<Vec<NameState>>,
    /// Whether any endpoint is a name (else there is never anything to do).
    pub any_name: bool,
}

impl Names {
    /// Resolves every endpoint once. A name that does not resolve waits
    /// unresolved (no address, `failing` says why) while the others serve;
    /// each later resolution tries it again.
    pub fn resolve_first(endpoints: &[String], resolver: Resolver) -> Names {
        let states = endpoints
            .iter()
            .map(|e| match resolver.resolve(e) {
                Ok(addrs) => NameState {
                    last_good: addrs,
                    failing: None,
                },
                Err(why) => NameState {
                    last_good: Vec::new(),
                    failing: Some(why),
                },
            })
            .collect();
        Names {
            any_name: endpoints.iter().any(|e| e.parse::<SocketAddr>().is_err()),
            endpoints: endpoints.to_vec(),
            resolver,
            states: Mutex::new(states),
        }
    }

    /// Resolves again; a failure keeps the last good addresses. Returns the
    /// endpoints whose failing state changed (for the log and metrics).
    pub fn refresh(&self) -> Vec<(String, NameState)> {
        let results: Vec<_> = self
            .endpoints
            .iter()
            .map(|e| self.resolver.resolve(e))
            .collect();
        let mut states = self.states.lock().expect("names lock");
        let mut changed = Vec::new();
        for ((endpoint, state), result) in self.endpoints.iter().zip(states.iter_mut()).zip(results)
        {
            let was_failing = state.failing.is_some();
            match result {
                Ok(addrs) => {
                    state.last_good = addrs;
                    state.failing = None;
                }
                Err(e) => state.failing = Some(e),
            }
            if was_failing != state.failing.is_some() {
                changed.push((endpoint.clone(), state.clone()));
            }
        }
        changed
    }

    /// Every address with the configured endpoint it came from.
    pub fn addresses(&self) -> Vec<(SocketAddr, String)> {
        let states = self.states.lock().expect("names lock");
        let mut seen = HashMap::new();
        for (endpoint, state) in self.endpoints.iter().zip(states.iter()) {
            for addr in &state.last_good {
                seen.entry(*addr).or_insert_with(|| endpoint.clone());
            }
        }
        let mut all: Vec<_> = seen.into_iter().collect();
        all.sort();
        all
    }

    /// Each endpoint that fails to resolve now, with why.
    pub fn failing(&self) -> Vec<(String, NameState)> {
        let states = self.states.lock().expect("names lock");
        self.endpoints
            .iter()
            .zip(states.iter())
            .filter(|(_, s)| s.failing.is_some())
            .map(|(e, s)| (e.clone(), s.clone()))
            .collect()
    }
}

#[async_trait]
impl ServiceDiscovery for NameDiscovery {
    /// The addresses as last resolved ([`Names::refresh`] runs first, off
    /// the async threads, since the system resolver blocks).
    async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let backends = self
            .names
            .addresses()
            .into_iter()
            .map(|(addr, _)| Backend {
                addr: pingora::protocols::l4::socket::SocketAddr::Inet(addr),
                weight: 1,
                ext: Default::default(),
            })
            .collect();
        Ok((backends, HashMap::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_file_wins_and_is_read_each_time() {
        let dir = std::env::temp_dir().join(format!("resolve-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let hosts = dir.join("hosts");
        std::fs::write(
            &hosts,
            "# ingress\n127.0.0.2 Ingress.Blue.Test other\n127.0.0.3 ingress.blue.test\n",
        )
        .unwrap();
        let r = Resolver {
            hosts_file: Some(hosts.clone()),
        };
        let addrs = r.resolve("ingress.blue.test:8443").unwrap();
        assert_eq!(addrs.len(), 2);
        assert_eq!(addrs[0], "127.0.0.2:8443".parse().unwrap());
        assert_eq!(r.resolve("10.0.0.1:80").unwrap().len(), 1);
        assert!(r
            .resolve("ingress.blue.test")
            .unwrap_err()
            .contains("no port"));

        let names = Names::resolve_first(&["ingress.blue.test:8443".into()], r.clone());
        assert!(names.any_name);
        std::fs::write(&hosts, "127.0.0.4 ingress.blue.test\n").unwrap();
        assert!(names.refresh().is_empty(), "no failing state changed");
        assert_eq!(names.addresses()[0].0, "127.0.0.4:8443".parse().unwrap());
        std::fs::write(&hosts, "").unwrap();
        let changed = names.refresh();
        assert_eq!(changed.len(), 1);
        assert_eq!(
            names.addresses()[0].0,
            "127.0.0.4:8443".parse().unwrap(),
            "a name that stops resolving keeps its last good addresses"
        );
        assert_eq!(names.failing().len(), 1);
        // A name that does not resolve at first waits with no address.
        let waiting =
            Names::resolve_first(&["ingress.blue.test:8443".into(), "10.0.0.1:80".into()], r);
        assert_eq!(waiting.addresses().len(), 1);
        assert_eq!(waiting.failing()[0].0, "ingress.blue.test:8443");
        std::fs::write(&hosts, "127.0.0.5 ingress.blue.test\n").unwrap();
        assert_eq!(waiting.refresh().len(), 1, "it resolves later");
        assert_eq!(waiting.addresses().len(), 2);
        assert!(parse_endpoint("under_score.example:80").is_err());
        assert!(parse_endpoint("[::1]:80").is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
