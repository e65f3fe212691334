//! An HTTP/2 stream's exchange with an HTTP/1 upstream: the request head
//! written from pingora's `RequestHeader`, the response head parsed into a
//! `ResponseHeader` with its body's framing.

use crate::forwarded::{Believed, X_FORWARDED_FOR, X_FORWARDED_PROTO};
use crate::http1::framing::{Chunk, Framing};
use crate::http1::response::{parse_head, MAX_HEADERS};
use crate::pin::PinPolicy;
use crate::request_id::X_REQUEST_ID;
use http::HeaderValue;
use pingora::http::RequestHeader;
use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::ops::Range;

/// Headers of one connection's hop, never passed on, and Transfer-Encoding,
/// which HTTP/2 frames itself.
fn is_hop_by_hop(name: &str) -> bool {
    crate::http1::is_hop_by_hop(name) || name.eq_ignore_ascii_case("transfer-encoding")
}

/// How a request's body goes to an HTTP/1 upstream: HTTP/2 frames it
/// itself, HTTP/1 needs a length or chunks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BodyFraming {
    None,
    /// The client said how long (`content-length`; the `h2` crate holds it
    /// to that).
    Length(u64),
    /// Of a length nobody said: sent chunked.
    Chunked,
}

impl BodyFraming {
    /// The framing of the body the client is sending on `session`.
    pub fn of(session: &pingora::protocols::http::v2::server::HttpSession) -> BodyFraming {
        if session.is_body_empty() {
            return BodyFraming::None;
        }
        let length = session
            .req_header()
            .headers
            .get(http::header::CONTENT_LENGTH);
        match length.and_then(|l| l.to_str().ok()?.parse().ok()) {
            Some(length) => BodyFraming::Length(length),
            None => BodyFraming::Chunked,
        }
    }
}

/// The HTTP/1.1 head of a request as the upstream gets it, written once per
/// stream from the client's: pin headers and hop-by-hop ones left out, the
/// request ID, `X-Forwarded-*` (from a trusted proxy its list grows; from
/// anyone else it is replaced, `forwarded` explains), the body's framing.
/// The Host line's place is kept for a colour's `host_rewrite`.
pub struct RequestHead {
    bytes: Vec<u8>,
    host: Range<usize>,
    body: BodyFraming,
}

impl RequestHead {
    pub fn new(
        req: &RequestHeader,
        request_id: &HeaderValue,
        pin: &PinPolicy,
        believed: &Believed,
        peer: Option<IpAddr>,
        body: BodyFraming,
    ) -> RequestHead {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(req.method.as_str().as_bytes());
        out.push(b' ');
        let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        let start = out.len();
        // HTTP/2 clients send :authority, and Host only sometimes.
        out.extend_from_slice(crate::choose::request_host(req).as_bytes());
        let host = start..out.len();
        out.extend_from_slice(b"\r\nx-request-id: ");
        out.extend_from_slice(request_id.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &req.headers {
            let name = name.as_str();
            if is_hop_by_hop(name)
                || name == "host"
                || name == "cookie"
                || name == "content-length"
                || name == X_REQUEST_ID
                || name == X_FORWARDED_FOR
                || name == X_FORWARDED_PROTO
                || pin.is_pin_header(name)
            {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        // HTTP/2 clients may split Cookie into crumbs, one field each; an
        // HTTP/1 upstream gets them joined into one (RFC 9113 §8.2.3).
        let mut cookies = req.headers.get_all(http::header::COOKIE).iter();
        if let Some(first) = cookies.next() {
            out.extend_from_slice(b"cookie: ");
            out.extend_from_slice(first.as_bytes());
            for crumb in cookies {
                out.extend_from_slice(b"; ");
                out.extend_from_slice(crumb.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        let mut prior = req
            .headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter(|_| believed.from_proxy)
            .peekable();
        if prior.peek().is_some() || peer.is_some() {
            out.extend_from_slice(b"x-forwarded-for: ");
            let mut sep = false;
            for value in prior {
                if std::mem::replace(&mut sep, true) {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(value.as_bytes());
            }
            if let Some(ip) = peer {
                if sep {
                    out.extend_from_slice(b", ");
                }
                crate::forwarded::write_ip(&mut out, ip);
            }
            out.extend_from_slice(b"\r\n");
        }
        match body {
            BodyFraming::None => {}
            BodyFraming::Length(length) => {
                out.extend_from_slice(b"content-length: ");
                out.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            BodyFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        }
        out.extend_from_slice(if believed.https {
            b"x-forwarded-proto: https\r\n\r\n"
        } else {
            b"x-forwarded-proto: http\r\n\r\n"
        });
        RequestHead {
            bytes: out,
            host,
            body,
        }
    }

    pub fn body(&self) -> BodyFraming {
        self.body
    }

    /// The head to send, with Host replaced by `host_rewrite`.
    pub fn with_host(&self, host_rewrite: Option<&str>) -> Cow<'_, [u8]> {
        match host_rewrite {
            None => Cow::Borrowed(&self.bytes),
            Some(host) => {
                let mut out = Vec::with_capacity(self.bytes.len() + host.len());
                out.extend_from_slice(&self.bytes[..self.host.start]);
                out.extend_from_slice(host.as_bytes());
                out.extend_from_slice(&self.bytes[self.host.end..]);
                Cow::Owned(out)
            }
        }
    }
}

/// A parsed response head.
pub struct Response {
    pub head_len: usize,
    /// Status and headers (hop-by-hop ones left out), as HTTP/2 sends them.
    pub parts: http::response::Parts,
    pub framing: Framing,
    /// The upstream connection may carry another request afterwards.
    pub reusable: bool,
}

/// Parses the head at the start of `buf`; `Ok(None)` while incomplete.
pub fn parse_response(buf: &[u8], head_request: bool) -> Result<Option<Response>, &'static str> {
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let Some((head_len, resp)) = parse_head(buf, &mut headers)? else {
        return Ok(None);
    };
    let status = resp.code.ok_or("no status")?;
    // A header map of its own, not pingora's `ResponseHeader` methods: they
    // turn each name into its HTTP/1 case and parse it again.
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = http::StatusCode::from_u16(status).map_err(|_| "bad status")?;
    parts.headers.reserve(resp.headers.len());
    // The values share one copy of the head instead of a copy each.
    let head = bytes::Bytes::copy_from_slice(&buf[..head_len]);
    let (mut length, mut chunked) = (None, false);
    let mut connection = crate::http1::Connection::default();
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
            if length.is_some_and(|l| Some(l) != n) || n.is_none() {
                return Err("bad Content-Length");
            }
            length = n;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.eq_ignore_ascii_case(b"chunked");
            if !chunked {
                return Err("unsupported Transfer-Encoding");
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            connection.add(h.value);
        }
        if is_hop_by_hop(h.name) {
            continue;
        }
        let name = http::HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| "bad header")?;
        let value = HeaderValue::from_maybe_shared(within(&head, buf, h.value))
            .map_err(|_| "bad header")?;
        parts.headers.append(name, value);
    }
    // Headers the upstream's Connection names are for that connection only
    // (RFC 9110 §7.6.1); the header may come after them, so they go now.
    for name in &connection.others {
        if let Ok(name) = std::str::from_utf8(name) {
            parts.headers.remove(name);
        }
    }
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::Empty
    } else if chunked {
        Framing::Chunked(Chunk::Size)
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let close = connection.close || (resp.version == Some(0) && !connection.keep_alive);
    let reusable = !close && framing != Framing::UntilClose;
    Ok(Some(Response {
        head_len,
        parts,
        framing,
        reusable,
    }))
}

/// The part of `head` (a copy of `buf`'s start) that `part` of `buf` is.
fn within(head: &bytes::Bytes, buf: &[u8], part: &[u8]) -> bytes::Bytes {
    if part.is_empty() {
        return bytes::Bytes::new();
    }
    let at = part.as_ptr() as usize - buf.as_ptr() as usize;
    head.slice(at..at + part.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_leaves_pins_and_hop_by_hop_headers_out_joins_cookies_and_says_who_asked() {
        let pin = PinPolicy::from_config(&crate::config::PinConfig::default()).unwrap();
        let mut req = RequestHeader::build("GET", b"/a?b=1", None).unwrap();
        req.insert_header("host", "shop").unwrap();
        req.insert_header("te", "trailers").unwrap();
        req.insert_header("x-request-id", "from-the-client")
            .unwrap();
        req.insert_header(pin.header.clone(), "green").unwrap();
        req.insert_header("x-forwarded-for", "10.0.0.1").unwrap();
        req.append_header("x-forwarded-for", "10.0.0.2").unwrap();
        req.insert_header("accept", "*/*").unwrap();
        req.append_header("cookie", "a=1").unwrap();
        req.append_header("cookie", "b=2").unwrap();
        let id = HeaderValue::from_static("abc");
        let peer = Some(IpAddr::from([127, 0, 0, 9]));
        let stranger = Believed {
            from_proxy: false,
            client: peer,
            https: true,
        };
        let head = RequestHead::new(&req, &id, &pin, &stranger, peer, BodyFraming::None);
        assert_eq!(
            std::str::from_utf8(&head.with_host(None)).unwrap(),
            "GET /a?b=1 HTTP/1.1\r\nhost: shop\r\nx-request-id: abc\r\naccept: */*\r\n\
             cookie: a=1; b=2\r\nx-forwarded-for: 127.0.0.9\r\nx-forwarded-proto: https\r\n\r\n"
        );
        let proxy = Believed {
            from_proxy: true,
            ..stranger
        };
        let head = RequestHead::new(&req, &id, &pin, &proxy, peer, BodyFraming::None);
        let rewritten =
            String::from_utf8(head.with_host(Some("green.internal")).into_owned()).unwrap();
        assert!(rewritten.starts_with("GET /a?b=1 HTTP/1.1\r\nhost: green.internal\r\n"));
        assert!(rewritten.contains("\r\nx-forwarded-for: 10.0.0.1, 10.0.0.2, 127.0.0.9\r\n"));
    }

    #[test]
    fn a_response_head_gives_its_framing_and_drops_hop_by_hop_headers() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nX-A: 1\r\n\r\n";
        let r = parse_response(chunked, false).unwrap().unwrap();
        assert_eq!(r.framing, Framing::Chunked(Chunk::Size));
        assert!(r.reusable);
        assert!(r.parts.headers.get("transfer-encoding").is_none());
        assert_eq!(r.parts.headers.get("x-a").unwrap(), "1");
        let closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
        let r = parse_response(closing, false).unwrap().unwrap();
        assert_eq!((r.framing, r.reusable), (Framing::Length(2), false));
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n";
        assert_eq!(
            parse_response(head, true).unwrap().unwrap().framing,
            Framing::Empty
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n", false)
            .unwrap()
            .is_none());
    }

    #[test]
    fn connection_tokens_decide_reuse_drop_the_headers_they_name_and_values_are_kept_whole() {
        let reused = |head: &[u8]| parse_response(head, false).unwrap().unwrap().reusable;
        assert!(reused(
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!reused(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!reused(
            b"HTTP/1.1 200 OK\r\nConnection: upgrade , CLOSE\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(reused(
            b"HTTP/1.1 200 OK\r\nConnection: closed-ish\r\nContent-Length: 0\r\n\r\n"
        ));
        let named = b"HTTP/1.1 200 OK\r\nX-Hop: 1\r\nX-End: 2\r\nConnection: x-hop, X-END\r\nX-Kept: 3\r\nContent-Length: 0\r\n\r\n";
        let r = parse_response(named, false).unwrap().unwrap();
        assert!(r.parts.headers.get("x-hop").is_none());
        assert!(r.parts.headers.get("x-end").is_none());
        assert_eq!(r.parts.headers.get("x-kept").unwrap(), "3");
        assert!(r.reusable);
        let head = b"HTTP/1.1 200 OK\r\nX-Empty:\r\nETag: \"a b\"\r\nContent-Length: 0\r\n\r\n";
        let r = parse_response(head, false).unwrap().unwrap();
        assert_eq!(r.parts.headers.get("x-empty").unwrap(), "");
        assert_eq!(r.parts.headers.get("etag").unwrap(), "\"a b\"");
        assert_eq!(r.parts.headers.get("content-length").unwrap(), "0");
    }
}
