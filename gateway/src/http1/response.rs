//! An upstream's response head: parsed with httparse, its framing worked
//! out, and rewritten into the head the client gets.

use super::framing::{Chunk, Framing};
use super::request::{is_hop_by_hop, Request};
use crate::pin::SERVED_BY;
use crate::request_id::X_REQUEST_ID;
use std::mem::MaybeUninit;

/// Largest response head accepted from upstream.
const MAX_HEAD: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 128;

/// A response head the gateway cannot pass on; the client gets a 502.
#[derive(Debug, PartialEq, Eq)]
pub struct BadResponse(pub &'static str);

pub struct Response {
    pub head_len: usize,
    pub status: u16,
    pub framing: Framing,
    /// The upstream connection may carry another request afterwards.
    pub reusable: bool,
}

impl Response {
    /// 1xx other than 101: more heads follow before the real one.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// What the client side decides about the head it gets.
pub struct ClientSide<'a> {
    pub request: &'a Request,
    /// The client connection closes after this response.
    pub closing: bool,
    /// A stickiness cookie to set: (name, key).
    pub issue_cookie: Option<(&'a str, &'a str)>,
    /// The client used TLS: the cookie is `Secure`.
    pub https: bool,
    /// A pinned request is told which colour served it, so a smoke check
    /// knows its pin was honoured.
    pub served_by: Option<&'static str>,
}

/// The response head at the start of `buf`, its fields parsed into
/// `headers`: its length and the response; `Ok(None)` while incomplete.
pub fn parse_head<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Option<(usize, httparse::Response<'h, 'b>)>, &'static str> {
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, headers);
    match parsed {
        Ok(httparse::Status::Complete(n)) => Ok(Some((n, resp))),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => Err("response head too large"),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err("malformed response head"),
    }
}

/// Parses the head at the start of `buf` (`Ok(None)` while incomplete) and
/// appends the client's version of it to `out`.
pub fn parse(
    buf: &[u8],
    client: &ClientSide,
    out: &mut Vec<u8>,
) -> Result<Option<Response>, BadResponse> {
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let Some((head_len, resp)) = parse_head(buf, &mut headers).map_err(BadResponse)? else {
        return Ok(None);
    };
    let (Some(status), Some(version)) = (resp.code, resp.version) else {
        return Err(BadResponse("incomplete status line"));
    };
    let mut content_length = None;
    let mut chunked = None;
    let mut connection = super::Connection::default();
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value.trim_ascii())
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(BadResponse("Content-Length is not a number"))?;
            if content_length.is_some_and(|seen| seen != n) {
                return Err(BadResponse("Content-Length values disagree"));
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            connection.add(h.value);
        }
    }
    let no_body =
        client.request.is_head || (100..200).contains(&status) || status == 204 || status == 304;
    let framing = match (no_body, chunked, content_length) {
        (true, _, _) => Framing::Empty,
        (false, Some(true), _) => Framing::Chunked(Chunk::Size),
        // A coding other than chunked last: the body ends at close.
        (false, Some(false), _) => Framing::UntilClose,
        (false, None, Some(0)) => Framing::Empty,
        (false, None, Some(n)) => Framing::Length(n),
        (false, None, None) => Framing::UntilClose,
    };
    let persistent = if version == 0 {
        connection.keep_alive
    } else {
        !connection.close
    };
    let response = Response {
        head_len,
        status,
        framing,
        reusable: persistent && framing != Framing::UntilClose && status != 101,
    };

    write_client_head(out, &resp, &response, client);
    Ok(Some(response))
}

fn write_client_head(
    out: &mut Vec<u8>,
    resp: &httparse::Response,
    response: &Response,
    client: &ClientSide,
) {
    use std::io::Write;
    let reason = resp.reason.unwrap_or("");
    write!(out, "HTTP/1.1 {} {reason}\r\n", response.status).expect("writing to a Vec");
    let upgrading = response.status == 101;
    for h in resp.headers.iter() {
        // A 101 keeps Connection and Upgrade: they say what the
        // connection becomes.
        let keep = upgrading
            && ["connection", "upgrade"]
                .iter()
                .any(|n| h.name.eq_ignore_ascii_case(n));
        // Content-Length next to chunked is dropped (RFC 9112 6.3).
        let stale_length = matches!(response.framing, Framing::Chunked(_))
            && h.name.eq_ignore_ascii_case("content-length");
        // The request's own ID goes back below, once.
        let own_id = h.name.eq_ignore_ascii_case(X_REQUEST_ID);
        if (!keep && is_hop_by_hop(h.name)) || stale_length || own_id {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    if let Some((name, key)) = client.issue_cookie {
        let secure = if client.https { "; Secure" } else { "" };
        write!(
            out,
            "Set-Cookie: {name}={key}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax{secure}\r\n"
        )
        .expect("writing to a Vec");
    }
    if let Some(color) = client.served_by {
        write!(out, "{SERVED_BY}: {color}\r\n").expect("writing to a Vec");
    }
    out.extend_from_slice(b"X-Request-Id: ");
    out.extend_from_slice(client.request.request_id());
    out.extend_from_slice(b"\r\n");
    if !upgrading && !response.is_interim() {
        if client.closing || response.framing == Framing::UntilClose {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if client.request.http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}
