//! One attempt on one upstream connection: the request head sent, the
//! response head parsed and passed on with the gateway's headers, its body
//! relayed as it comes (a chunked body decoded: HTTP/2 frames bodies
//! itself). The connection comes back when it may carry another request.

use super::upstream::{parse_response, BodyFraming, RequestHead, Response};
use super::H2App;
use crate::choose::Choice;
use crate::deadline::within;
use crate::forwarded::Believed;
use crate::http1::framing::Framing;
use crate::http1::{write_all, write_all_after};
use crate::proxy::{client_response, log::head_size};
use crate::request_id::X_REQUEST_ID;
use crate::routing::{RouteEntry, Snapshot};
use crate::upstream::GroupSpec;
use bytes::BytesMut;
use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::protocols::http::v2::server::HttpSession;
use pingora::protocols::http::ServerSession;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Room to read upstream bytes into.
const READ_ROOM: usize = 32 * 1024;

/// One routed stream.
pub(super) struct Routed<'a> {
    pub(super) snapshot: &'a Snapshot,
    pub(super) entry: &'a RouteEntry,
    pub(super) choice: &'a Choice,
    /// The head an HTTP/1 upstream gets; `None` on a route whose colours
    /// both speak HTTP/2 (theirs is made for each attempt's colour).
    pub(super) head: Option<&'a RequestHead>,
    pub(super) believed: Believed,
    pub(super) client: Option<IpAddr>,
    pub(super) request_id: &'a HeaderValue,
    pub(super) head_request: bool,
    pub(super) https: bool,
}

impl Routed<'_> {
    /// Adds what the gateway tells the client (the request ID, a new
    /// client's stickiness cookie, the colour that served a pinned
    /// request) to the response head; its size, for the access log.
    pub(super) fn to_client(&self, headers: &mut http::HeaderMap) -> u64 {
        let issued_cookie = self.entry.def.stickiness.issued_cookie.as_str();
        let choice = Some((self.choice, issued_cookie));
        let _ = client_response(headers, Some(self.request_id), choice, self.https);
        head_size(headers, 12)
    }
}

/// What the access log and metrics need of how it went.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) upstream: Option<SocketAddr>,
    pub(super) tries: u32,
    pub(super) bytes_out: u64,
    /// From an HTTP/2 upstream's response: its trailers, or its head alone.
    pub(super) grpc_status: Option<HeaderValue>,
}

/// How one attempt on one upstream connection ended.
pub(super) enum Attempted {
    /// A response was passed on (whole, or cut off after it began).
    Answered(u16),
    /// The connection closed before any response byte.
    NoResponse,
    /// The upstream refused the stream before doing anything with it
    /// (`REFUSED_STREAM`, or past its `GOAWAY`): another endpoint may take
    /// it, the body read so far sent again.
    Refused,
    /// The gateway answers this status itself.
    Failed(u16, String),
}

impl H2App {
    /// One attempt on an endpoint of `group` (the colour serving now): the
    /// head sent, the response relayed. The connection comes back when it
    /// may carry another request.
    pub(super) async fn forward(
        &self,
        session: &mut HttpSession,
        routed: &Routed<'_>,
        mut upstream: pingora::protocols::Stream,
        head: &[u8],
        group: &GroupSpec,
        tally: &mut Tally,
    ) -> (Attempted, Option<pingora::protocols::Stream>) {
        let read_timeout = group.timeouts.read;
        if upstream.write_all(head).await.is_err() || upstream.flush().await.is_err() {
            return (Attempted::NoResponse, None);
        }
        let framing = routed.head.map_or(BodyFraming::None, |h| h.body());
        // Once the client's body is read it cannot be sent again: no retry.
        let mut sent_body = false;
        if framing != BodyFraming::None {
            sent_body = true;
            let timeouts = (self.body_timeout, read_timeout);
            match send_body(session, &mut upstream, framing, timeouts).await {
                BodySent::Whole => {}
                // As nginx's `client_body_timeout`: 408, and the upstream
                // connection, its request unfinished, closed.
                BodySent::ClientStalled => {
                    let why = format!("no request body bytes within {:?}", self.body_timeout);
                    tracing::debug!("{why}");
                    answer(session, 408, routed.request_id, false);
                    return (Attempted::Answered(408), None);
                }
                BodySent::ClientGone => {
                    return (
                        Attempted::Answered(cut(session, 499, "the client went away")),
                        None,
                    )
                }
                // The upstream may have answered early (401, 413): read on.
                BodySent::UpstreamClosed(why) => {
                    tracing::debug!("sending the body upstream: {why}")
                }
            }
        }
        let head_request = routed.head_request;
        let mut buf = BytesMut::with_capacity(READ_ROOM);
        let Response {
            head_len,
            mut parts,
            mut framing,
            reusable,
        } = loop {
            match parse_response(&buf, head_request) {
                // 1xx other than 101: more heads follow.
                Ok(Some(r)) if r.parts.status.is_informational() => {
                    let _ = buf.split_to(r.head_len);
                    continue;
                }
                Ok(Some(r)) => break r,
                Ok(None) => {}
                Err(why) => return (Attempted::Failed(502, why.into()), None),
            }
            buf.reserve(READ_ROOM);
            match within(read_timeout, upstream.read_buf(&mut buf)).await {
                Some(Ok(n)) if n > 0 => {}
                Some(_) if buf.is_empty() && !sent_body => return (Attempted::NoResponse, None),
                Some(_) if buf.is_empty() => {
                    let why = "closed without a response to a request with a body".into();
                    return (Attempted::Failed(502, why), None);
                }
                Some(_) => return (Attempted::Failed(502, "closed mid-head".into()), None),
                None => {
                    let why = format!("no response within {read_timeout:?}");
                    return (Attempted::Failed(504, why), None);
                }
            }
        };
        let status = parts.status.as_u16();
        tally.bytes_out += routed.to_client(&mut parts.headers);
        // Boxed at once: the future holds a pointer, not the header.
        let header = Box::new(ResponseHeader::from(parts));
        let _ = buf.split_to(head_len);
        // A response without a body ends the stream with its headers.
        let mut ended = framing == Framing::Empty;
        if session.write_response_header(header, ended).is_err() {
            return (Attempted::Answered(499), None);
        }
        while !ended {
            let mut payload = BytesMut::new();
            let used = match framing {
                Framing::Chunked(_) => {
                    match framing.advance_payload(&buf, |p| payload.extend_from_slice(p)) {
                        Ok(n) => n,
                        Err(e) => {
                            return (
                                Attempted::Answered(cut(session, status, &e.to_string())),
                                None,
                            )
                        }
                    }
                }
                _ => {
                    let n = framing.advance(&buf).unwrap_or(0);
                    payload = buf.split_to(n);
                    0
                }
            };
            let _ = buf.split_to(used);
            ended = framing.is_done();
            if !payload.is_empty() || ended {
                tally.bytes_out += payload.len() as u64;
                if let Err(e) = session.write_body(payload.freeze(), ended).await {
                    // Gone, or not reading within `send_timeout`.
                    let why = format!("writing to the client: {e}");
                    return (Attempted::Answered(cut(session, 499, &why)), None);
                }
            }
            if ended {
                break;
            }
            if self.gateway.drains.deadline_passed(group.color) {
                return (
                    Attempted::Answered(cut(session, status, "its colour was drained")),
                    None,
                );
            }
            buf.reserve(READ_ROOM);
            match within(read_timeout, upstream.read_buf(&mut buf)).await {
                Some(Ok(n)) if n > 0 => {}
                Some(Ok(_)) if framing == Framing::UntilClose => {
                    let _ = session.write_body(bytes::Bytes::new(), true).await;
                    return (Attempted::Answered(status), None);
                }
                _ => {
                    return (
                        Attempted::Answered(cut(session, status, "upstream ended early")),
                        None,
                    )
                }
            }
        }
        let keep = (reusable && buf.is_empty()).then_some(upstream);
        (Attempted::Answered(status), keep)
    }
}

/// How sending a request's body upstream ended.
enum BodySent {
    Whole,
    /// The client reset its stream or closed its connection.
    ClientGone,
    /// The client sent none of its body's next bytes in time.
    ClientStalled,
    /// The upstream stopped reading (it may have answered already).
    UpstreamClosed(std::io::Error),
}

/// The client's body, as it comes, to an HTTP/1 upstream: as it is, or in
/// chunks; each piece written and flushed at once, so a client sending
/// slowly is not held up. `timeouts`: how long the client may take to send
/// its next bytes, and the upstream to take them.
async fn send_body(
    session: &mut HttpSession,
    upstream: &mut pingora::protocols::Stream,
    framing: BodyFraming,
    (client_timeout, timeout): (std::time::Duration, std::time::Duration),
) -> BodySent {
    let chunked = framing == BodyFraming::Chunked;
    // A chunk's size line also ends the chunk before it.
    let mut size_line = String::new();
    loop {
        let data = match within(client_timeout, session.read_body_bytes()).await {
            None => return BodySent::ClientStalled,
            Some(Ok(Some(data))) if data.is_empty() => continue,
            Some(Ok(Some(data))) => data,
            Some(Ok(None)) => break,
            Some(Err(e)) => {
                tracing::debug!("reading the client's body: {e}");
                return BodySent::ClientGone;
            }
        };
        let written = if chunked {
            let ends_one = if size_line.is_empty() { "" } else { "\r\n" };
            size_line = format!("{ends_one}{:x}\r\n", data.len());
            within_timeout(
                timeout,
                write_all_after(upstream, size_line.as_bytes(), &data),
            )
            .await
        } else {
            within_timeout(timeout, write_all(upstream, &data)).await
        };
        if let Err(e) = written {
            return BodySent::UpstreamClosed(e);
        }
    }
    if chunked {
        let last: &[u8] = if size_line.is_empty() {
            b"0\r\n\r\n"
        } else {
            b"\r\n0\r\n\r\n"
        };
        if let Err(e) = within_timeout(timeout, write_all(upstream, last)).await {
            return BodySent::UpstreamClosed(e);
        }
    }
    BodySent::Whole
}

/// `writing`'s outcome, or a timeout error once `timeout` has passed.
async fn within_timeout(
    timeout: std::time::Duration,
    writing: impl std::future::Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    within(timeout, writing).await.unwrap_or_else(|| {
        let why = format!("the upstream took no body bytes within {timeout:?}");
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why))
    })
}

/// The gateway's own answer: a status and no body (the stream ends with
/// the headers).
pub(super) fn answer(
    session: &mut HttpSession,
    status: u16,
    request_id: &HeaderValue,
    retry_after: bool,
) {
    let mut response = ServerSession::generate_error(status);
    let _ = response.insert_header(X_REQUEST_ID, request_id);
    if retry_after {
        let _ = response.insert_header("retry-after", "1");
    }
    let _ = session.write_response_header(Box::new(response), true);
}

/// A response that began and cannot end well: the stream is reset.
pub(super) fn cut(session: &mut HttpSession, status: u16, why: &str) -> u16 {
    tracing::debug!(status, "response cut off: {why}");
    session.shutdown();
    status
}
