//! A client's request head: parsed once with httparse, checked for framing
//! that two parsers could read differently, routed, and rewritten into the
//! head that goes upstream.

use super::fields::Fields;
use super::framing::{Chunk, Framing};
use crate::choose::{choose, strip_port, Choice};
use crate::forwarded::{Believed, X_FORWARDED_FOR, X_FORWARDED_PROTO};
use crate::request_id::{self, X_REQUEST_ID};
use crate::routing::Snapshot;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::ops::Range;

/// Largest request head (nginx allows 4 × 8 KiB by default).
pub const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;

/// A request head that cannot be served; the connection closes after the
/// answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400, with what was wrong (logged at debug level).
    BadRequest(&'static str),
    /// 431: more than [`MAX_HEAD`] bytes or [`MAX_HEADERS`] fields.
    TooLarge,
}

/// What the connection knows about its client.
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub tls: bool,
}

/// A parsed, routed request head.
pub struct Request {
    /// Bytes of the head in the buffer it was parsed from.
    pub head_len: usize,
    pub http10: bool,
    pub is_head: bool,
    pub idempotent: bool,
    /// The client wants the connection kept open after the response.
    pub keep_alive: bool,
    pub framing: Framing,
    /// A WebSocket (or other) upgrade was asked for.
    pub upgrade: bool,
    /// That upgrade is to WebSocket.
    pub websocket: bool,
    /// The client waits for `100 Continue` before it sends the body; the
    /// gateway answers that itself (as nginx does), so upstream never sees
    /// the expectation.
    pub expects_continue: bool,
    /// `None`: no route matches.
    pub choice: Option<Choice>,
    /// The client used TLS (to the gateway or to a trusted proxy): cookies
    /// the gateway sets are `Secure`.
    pub https: bool,
    /// The head for upstream, with `host` marking the Host value and
    /// `request_id` the X-Request-Id value.
    upstream_head: Vec<u8>,
    host: Range<usize>,
    request_id: Range<usize>,
    /// Where the User-Agent value is in `upstream_head` (for the access log).
    user_agent: Option<Range<usize>>,
}

impl Request {
    /// Retrying on another connection is safe: nothing of the request can
    /// have changed anything upstream, and there is no body to resend.
    pub fn retryable(&self) -> bool {
        self.idempotent && self.framing == Framing::Empty
    }

    /// The method, as the request line gives it.
    pub fn method(&self) -> &[u8] {
        let end = self.upstream_head.iter().position(|&b| b == b' ');
        &self.upstream_head[..end.unwrap_or(0)]
    }

    /// What the access log needs of the request: its head as sent
    /// upstream (given away) and where the fields it logs are in it.
    pub fn into_logged(self) -> crate::access_log::Http1Head {
        crate::access_log::Http1Head {
            head: self.upstream_head,
            host: self.host,
            request_id: self.request_id,
            user_agent: self.user_agent,
        }
    }

    /// The head as sent upstream (before a group's Host rewrite).
    pub fn upstream_head(&self) -> &[u8] {
        &self.upstream_head
    }

    /// The request's X-Request-Id (the client's, or generated).
    pub fn request_id(&self) -> &[u8] {
        &self.upstream_head[self.request_id.clone()]
    }

    /// Appends the upstream head, with Host replaced by `host_rewrite`.
    pub fn write_upstream_head(&self, out: &mut Vec<u8>, host_rewrite: Option<&str>) {
        match host_rewrite {
            None => out.extend_from_slice(&self.upstream_head),
            Some(host) => {
                out.extend_from_slice(&self.upstream_head[..self.host.start]);
                out.extend_from_slice(host.as_bytes());
                out.extend_from_slice(&self.upstream_head[self.host.end..]);
            }
        }
    }
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is
/// incomplete.
pub fn parse(
    buf: &[u8],
    client: &ClientInfo,
    snapshot: &Snapshot,
) -> Result<Option<Request>, Refusal> {
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(Refusal::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::TooLarge),
        Err(_) => return Err(Refusal::BadRequest("malformed request head")),
    };
    if head_len > MAX_HEAD {
        return Err(Refusal::TooLarge);
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Refusal::BadRequest("incomplete request line"));
    };
    let http10 = version == 0;
    let fields = Fields::read(req.headers).map_err(Refusal::BadRequest)?;

    let framing = match (fields.chunked, fields.content_length) {
        (Some(_), _) if http10 => {
            return Err(Refusal::BadRequest(
                "Transfer-Encoding in an HTTP/1.0 request",
            ))
        }
        (Some(false), _) => {
            return Err(Refusal::BadRequest(
                "Transfer-Encoding not ending in chunked",
            ))
        }
        (Some(true), _) => Framing::Chunked(Chunk::Size),
        (None, Some(0)) | (None, None) => Framing::Empty,
        (None, Some(n)) => Framing::Length(n),
    };
    // Both framings at once is how requests are smuggled: chunked wins
    // (RFC 9112 6.3), Content-Length is not passed on, and the connection
    // closes after this request.
    let both = fields.chunked.is_some() && fields.content_length.is_some();
    let keep_alive = !both
        && if http10 {
            fields.connection.keep_alive
        } else {
            !fields.connection.close
        };

    // An absolute-form target's authority wins over Host (RFC 9112
    // 3.2.2): it routes the request and becomes the Host upstream, which
    // gets the origin-form path (what a request to an origin looks like).
    let (host, target) = match target.strip_prefix('/') {
        Some(_) => (fields.host.unwrap_or(""), target),
        None => absolute_form(target).unwrap_or((fields.host.unwrap_or(""), target)),
    };
    if fields.host.is_none() && !http10 {
        return Err(Refusal::BadRequest("HTTP/1.1 request without Host"));
    }
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    let believed = snapshot
        .forwarding
        .believe(client.ip, client.tls, &*req.headers);
    let choice = choose(
        snapshot,
        strip_port(host),
        path,
        believed.client,
        &*req.headers,
    );

    let upgrade = !http10 && fields.connection.upgrade && fields.upgrade.is_some();
    // Room for what the gateway adds: X-Request-Id, X-Forwarded-For and
    // -Proto (a reallocation per request costs more than the bytes).
    let mut head = Vec::with_capacity(head_len + 160);
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(if http10 {
        b" HTTP/1.0\r\nHost: "
    } else {
        b" HTTP/1.1\r\nHost: "
    });
    let host_start = head.len();
    head.extend_from_slice(host.as_bytes());
    let host_range = host_start..head.len();
    head.extend_from_slice(b"\r\n");
    let mut request_id = None;
    let mut user_agent = None;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case(X_REQUEST_ID) {
            // The first usable one is kept; others, and odd ones, dropped.
            if request_id.is_none() && request_id::is_usable(h.value) {
                head.extend_from_slice(b"X-Request-Id: ");
                request_id = Some(head.len()..head.len() + h.value.len());
                head.extend_from_slice(h.value);
                head.extend_from_slice(b"\r\n");
            }
            continue;
        }
        if is_hop_by_hop(name)
            || name.eq_ignore_ascii_case("host")
            || name.eq_ignore_ascii_case(X_FORWARDED_PROTO)
            || name.eq_ignore_ascii_case(X_FORWARDED_FOR)
            || name.eq_ignore_ascii_case("content-length")
            || (fields.expects_continue && name.eq_ignore_ascii_case("expect"))
            || snapshot.pin.is_pin_header(name)
            || fields.connection.names(name)
        {
            continue;
        }
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        if user_agent.is_none() && name.eq_ignore_ascii_case("user-agent") {
            user_agent = Some(head.len()..head.len() + h.value.len());
        }
        head.extend_from_slice(h.value);
        head.extend_from_slice(b"\r\n");
    }
    // One Content-Length, however the client wrote it (`3, 3` or twice):
    // a strict upstream refuses a list. None when chunked framing wins.
    if let (Some(length), false) = (fields.content_length, both) {
        use std::io::Write;
        write!(head, "Content-Length: {length}\r\n").expect("writing to a Vec");
    }
    let request_id = request_id.unwrap_or_else(|| {
        head.extend_from_slice(b"X-Request-Id: ");
        let at = head.len();
        head.extend_from_slice(&request_id::generate());
        head.extend_from_slice(b"\r\n");
        at..at + 32
    });
    write_forwarded(&mut head, req.headers, client.ip, &believed);
    if upgrade {
        head.extend_from_slice(b"Connection: upgrade\r\nUpgrade: ");
        head.extend_from_slice(fields.upgrade.unwrap_or_default());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");

    Ok(Some(Request {
        head_len,
        http10,
        is_head: method == "HEAD",
        idempotent: matches!(
            method,
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        ),
        keep_alive,
        framing,
        upgrade,
        websocket: upgrade
            && fields
                .upgrade
                .is_some_and(|u| u.eq_ignore_ascii_case(b"websocket")),
        expects_continue: fields.expects_continue,
        choice,
        https: believed.https,
        upstream_head: head,
        host: host_range,
        request_id,
        user_agent,
    }))
}

/// `X-Forwarded-For` and `X-Forwarded-Proto` for upstream: from a trusted
/// proxy its list (several lines are one list, sent as one line) and then
/// the peer, and the scheme it names; from anyone else the peer alone and
/// the gateway's own scheme.
fn write_forwarded(
    head: &mut Vec<u8>,
    headers: &[httparse::Header],
    peer: Option<IpAddr>,
    believed: &Believed,
) {
    let mut prior = headers
        .iter()
        .filter(|h| believed.from_proxy && h.name.eq_ignore_ascii_case(X_FORWARDED_FOR))
        .map(|h| h.value)
        .peekable();
    if prior.peek().is_some() || peer.is_some() {
        head.extend_from_slice(b"X-Forwarded-For: ");
        let mut sep = false;
        for value in prior {
            if sep {
                head.extend_from_slice(b", ");
            }
            head.extend_from_slice(value);
            sep = true;
        }
        if let Some(ip) = peer {
            if sep {
                head.extend_from_slice(b", ");
            }
            crate::forwarded::write_ip(head, ip);
        }
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(if believed.https {
        b"X-Forwarded-Proto: https\r\n"
    } else {
        b"X-Forwarded-Proto: http\r\n"
    });
}

/// `http://host:port/path` → (`host:port`, `/path`).
fn absolute_form(target: &str) -> Option<(&str, &str)> {
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))?;
    Some(match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    })
}

/// Headers that describe one connection, not the message (RFC 9110 7.6.1).
/// Transfer-Encoding is not among them here: bodies pass through as they
/// came, chunked included.
pub fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_targets_give_host_and_path() {
        assert_eq!(
            absolute_form("http://a.example:81/x?y"),
            Some(("a.example:81", "/x?y"))
        );
        assert_eq!(absolute_form("https://a.example"), Some(("a.example", "/")));
        assert_eq!(absolute_form("*"), None);
    }
}
