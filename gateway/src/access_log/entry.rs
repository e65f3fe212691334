//! What a log line is made of, as the request path hands it over: owned,
//! cheap to build (the lean path gives its upstream head away, the writer
//! reads the fields it needs from it).

use crate::routing::RouteDef;
use crate::split::Color;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub struct Entry {
    pub time: SystemTime,
    pub client: Option<IpAddr>,
    pub asked: Asked,
    /// HTTP status (the gateway's own answers included; 499: the client
    /// went away); 0 for a TCP connection.
    pub status: u16,
    pub grpc_status: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration: Duration,
    pub upstream: Option<SocketAddr>,
    /// `None`: no route matched.
    pub route: Option<Arc<RouteDef>>,
    pub color: Option<Color>,
    pub pinned: bool,
    /// Endpoints tried (connect failures and retries included).
    pub attempts: u32,
}

/// What the client asked for.
pub enum Asked {
    /// The lean path's request head as sent upstream.
    Http1(Http1Head),
    /// From pingora's request header (HTTP/2 clients).
    Http {
        method: String,
        host: String,
        target: String,
        version: &'static str,
        user_agent: Option<String>,
        request_id: Option<String>,
    },
    /// A TCP route's connection: the server name a passthrough client
    /// asked for, and how it went (`ok`, `refused`, `reset`, …).
    Tcp {
        server_name: Option<String>,
        result: String,
    },
}

impl Asked {
    /// From pingora's request header and the request's ID.
    pub fn of(req: &pingora::http::RequestHeader, request_id: Option<&http::HeaderValue>) -> Asked {
        let text = |v: &http::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
        Asked::Http {
            method: req.method.to_string(),
            host: crate::choose::request_host(req).to_owned(),
            target: req
                .uri
                .path_and_query()
                .map_or("/".into(), |p| p.to_string()),
            version: match req.version {
                http::Version::HTTP_2 => "HTTP/2.0",
                http::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            user_agent: req.headers.get(http::header::USER_AGENT).map(text),
            request_id: request_id.map(text),
        }
    }
}

/// The lean path's request head, and where the logged fields are in it.
pub struct Http1Head {
    pub head: Vec<u8>,
    pub host: std::ops::Range<usize>,
    pub request_id: std::ops::Range<usize>,
    pub user_agent: Option<std::ops::Range<usize>>,
}

/// The fields of a request line, however it was asked.
pub struct Fields<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub target: &'a str,
    pub version: &'a str,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

impl Asked {
    /// Reads the fields; `with` sees them (borrowed from the head).
    pub fn fields<T>(&self, with: impl FnOnce(Fields) -> T) -> T {
        match self {
            Asked::Http {
                method,
                host,
                target,
                version,
                user_agent,
                request_id,
            } => with(Fields {
                method,
                host,
                target,
                version,
                user_agent: user_agent.as_deref(),
                request_id: request_id.as_deref(),
            }),
            Asked::Tcp {
                server_name,
                result,
            } => with(Fields {
                method: if server_name.is_some() { "TLS" } else { "TCP" },
                host: server_name.as_deref().unwrap_or("-"),
                target: result,
                version: "tcp",
                user_agent: None,
                request_id: None,
            }),
            Asked::Http1(h) => {
                let text = |r: &std::ops::Range<usize>| {
                    h.head
                        .get(r.clone())
                        .and_then(|b| std::str::from_utf8(b).ok())
                };
                // `METHOD TARGET HTTP/1.x` is the head's first line.
                let line = h.head.split(|&b| b == b'\r').next().unwrap_or_default();
                let line = std::str::from_utf8(line).unwrap_or("- - HTTP/1.1");
                let (method, rest) = line.split_once(' ').unwrap_or(("-", "-"));
                let (target, version) = rest.rsplit_once(' ').unwrap_or((rest, "HTTP/1.1"));
                with(Fields {
                    method,
                    host: text(&h.host).unwrap_or("-"),
                    target,
                    version,
                    user_agent: h.user_agent.as_ref().and_then(text),
                    request_id: text(&h.request_id),
                })
            }
        }
    }
}
