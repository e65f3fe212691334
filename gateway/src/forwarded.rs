//! What the gateway tells upstreams about the client (`X-Forwarded-For`,
//! `X-Forwarded-Proto`), and which of those headers it believes.
//!
//! Only a peer inside `trusted_proxies` (a load balancer that ends TLS, a
//! CDN) may speak for the client: its `X-Forwarded-For` is kept and
//! extended with the peer, its `X-Forwarded-Proto` kept, and the client's
//! own address is the last one in the list that is not a trusted proxy (as
//! nginx's `real_ip_recursive`). From anyone else both headers are
//! replaced: the list is the peer alone, the scheme the gateway's own.

use crate::headers::Headers;
use ipnetwork::IpNetwork;
use std::net::IpAddr;

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";

#[derive(Debug, Default)]
pub struct Forwarding {
    trusted: Vec<IpNetwork>,
}

/// What one request's peer says, as far as the gateway believes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Believed {
    /// The peer is a trusted proxy: its forwarding headers are kept.
    pub from_proxy: bool,
    /// The client's address: the peer's, or the one a trusted proxy names.
    pub client: Option<IpAddr>,
    /// The client used TLS: to the gateway, or to the trusted proxy.
    pub https: bool,
}

impl Forwarding {
    /// From `trusted_proxies` (validated with the config).
    pub fn new(trusted_proxies: &[String]) -> Result<Forwarding, String> {
        let trusted = trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse()
                    .map_err(|e| format!("trusted_proxies[{i}]: {s:?}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Forwarding { trusted })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    /// What to believe of a request from `peer` (over TLS or not).
    pub fn believe(
        &self,
        peer: Option<IpAddr>,
        tls: bool,
        headers: &(impl Headers + ?Sized),
    ) -> Believed {
        let from_proxy = peer.is_some_and(|ip| self.trusts(ip));
        if !from_proxy {
            return Believed {
                from_proxy,
                client: peer,
                https: tls,
            };
        }
        let mut client = peer;
        let mut hops: Vec<IpAddr> = Vec::new();
        headers.find_map(X_FORWARDED_FOR, |value| {
            let text = std::str::from_utf8(value).ok()?;
            hops.extend(
                text.split(',')
                    .filter_map(|a| a.trim().parse::<IpAddr>().ok()),
            );
            None::<()>
        });
        for ip in hops.iter().rev() {
            client = Some(*ip);
            if !self.trusts(*ip) {
                break;
            }
        }
        let proto = headers
            .get(X_FORWARDED_PROTO)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(|v| {
                v.split(',')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        Believed {
            from_proxy,
            client,
            https: match proto.as_deref() {
                Some("https") => true,
                Some(_) => false,
                None => tls,
            },
        }
    }
}

/// An address as `Display` writes it; IPv4 without `core::fmt` (which
/// costs ~1,000 instructions an address, on every request's
/// `X-Forwarded-For` and access-log line).
pub fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut number = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(number.format(octet).as_bytes());
            }
        }
        IpAddr::V6(_) => {
            use std::io::Write;
            write!(out, "{ip}").expect("writing to a Vec")
        }
    }
}

/// `prior, ip` (or `ip`), built in one buffer: this runs for every request.
pub fn forwarded_for(prior: Option<&[u8]>, ip: IpAddr) -> http::HeaderValue {
    use std::fmt::Write;
    let mut value = bytes::BytesMut::with_capacity(prior.map_or(0, |p| p.len() + 2) + 39);
    if let Some(prior) = prior {
        value.extend_from_slice(prior);
        value.extend_from_slice(b", ");
    }
    write!(value, "{ip}").expect("BytesMut grows as needed");
    http::HeaderValue::from_maybe_shared(value.freeze()).expect("header bytes and an IP address")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct H(Vec<(&'static str, &'static str)>);

    impl Headers for H {
        fn get(&self, name: &str) -> Option<&[u8]> {
            self.0
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes())
        }
        fn find_map<T>(&self, name: &str, mut with: impl FnMut(&[u8]) -> Option<T>) -> Option<T> {
            self.0
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .find_map(|(_, v)| with(v.as_bytes()))
        }
    }

    #[test]
    fn a_trusted_proxy_speaks_for_the_client_and_others_do_not() {
        let f = Forwarding::new(&["10.0.0.0/8".into()]).unwrap();
        let lb: IpAddr = "10.1.1.1".parse().unwrap();
        let headers = H(vec![
            ("x-forwarded-for", "198.51.100.7, 10.2.2.2"),
            ("x-forwarded-proto", "https"),
        ]);
        let b = f.believe(Some(lb), false, &headers);
        assert!(b.from_proxy && b.https);
        assert_eq!(b.client, Some("198.51.100.7".parse().unwrap()));
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        let b = f.believe(Some(stranger), false, &headers);
        assert!(!b.from_proxy && !b.https);
        assert_eq!(b.client, Some(stranger));
    }

    #[test]
    fn forwarded_for_appends_the_client() {
        let ip: std::net::IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(super::forwarded_for(None, ip), "10.1.2.3");
        assert_eq!(
            super::forwarded_for(Some(b"192.0.2.7, 198.51.100.1"), ip),
            "192.0.2.7, 198.51.100.1, 10.1.2.3"
        );
        let v6: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(super::forwarded_for(None, v6), "2001:db8::1");
    }
}
