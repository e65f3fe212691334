//! The heads pingora-proxy and the lean HTTP/2 path pass on: the request
//! going upstream (pins stripped, the request ID, Host, `X-Forwarded-*`),
//! and the response going back (the request ID, a stickiness cookie for a
//! new client, which colour served a pinned request), whichever kind of
//! head they are (`headers::EditHead`).

use crate::choose::Choice;
use crate::forwarded::{forwarded_for, Believed, X_FORWARDED_FOR, X_FORWARDED_PROTO};
use crate::headers::EditHead;
use crate::request_id::X_REQUEST_ID;
use crate::routing::{RouteEntry, Snapshot};
use crate::split::Color;
use http::uri::Authority;
use http::{HeaderName, HeaderValue};
use pingora::Result;
use std::net::IpAddr;

const REQUEST_ID: HeaderName = HeaderName::from_static(X_REQUEST_ID);
const FORWARDED_FOR: HeaderName = HeaderName::from_static(X_FORWARDED_FOR);
const FORWARDED_PROTO: HeaderName = HeaderName::from_static(X_FORWARDED_PROTO);
const SERVED_BY: HeaderName = HeaderName::from_static(crate::pin::SERVED_BY);

/// What a request's upstream head depends on.
pub struct Exchange<'a> {
    pub snapshot: &'a Snapshot,
    pub entry: &'a RouteEntry,
    pub color: Color,
    pub request_id: Option<&'a HeaderValue>,
    pub believed: Believed,
    /// The peer's address (a PROXY protocol header's source, once read).
    pub client: Option<IpAddr>,
}

/// Rewrites the client's request head into the one the upstream gets.
pub fn upstream_request(
    upstream: &mut impl EditHead,
    exchange: &Exchange,
    authority: Option<&Authority>,
) -> Result<()> {
    exchange.snapshot.pin.strip(upstream);
    let edits = ToUpstream::new(upstream.headers(), exchange, authority)?;
    if let Some(id) = edits.request_id {
        upstream.set(REQUEST_ID, id)?;
    }
    if let Some(host) = edits.host {
        upstream.set(http::header::HOST, host)?;
    }
    match edits.forwarded_for {
        Some(forwarded) => upstream.set(FORWARDED_FOR, forwarded)?,
        None => upstream.unset(&FORWARDED_FOR),
    }
    upstream.set(FORWARDED_PROTO, edits.proto)
}

/// What the gateway sets on a request going upstream.
struct ToUpstream {
    request_id: Option<HeaderValue>,
    /// The route's Host rewrite, or the authority of an HTTP/2 client's
    /// request (which has no Host).
    host: Option<HeaderValue>,
    /// `None`: the header is removed.
    forwarded_for: Option<HeaderValue>,
    proto: HeaderValue,
}

impl ToUpstream {
    /// From the client's `headers` (the pins stripped).
    fn new(
        headers: &http::HeaderMap,
        exchange: &Exchange,
        authority: Option<&Authority>,
    ) -> Result<ToUpstream> {
        let invalid = |e| pingora::Error::because(pingora::ErrorType::InvalidHTTPHeader, "host", e);
        let group = exchange.entry.def.group(exchange.color);
        let host = match &group.spec().group.host_rewrite {
            Some(host) => Some(HeaderValue::from_str(host).map_err(invalid)?),
            // HTTP/2 clients send :authority instead of Host.
            None if !headers.contains_key(http::header::HOST) => authority
                .map(|a| HeaderValue::from_str(a.as_str()))
                .transpose()
                .map_err(invalid)?,
            None => None,
        };
        // From a trusted proxy its list grows; from anyone else it is
        // replaced (`forwarded` explains).
        let believed = exchange.believed;
        let forwarded_for = exchange.client.map(|ip| {
            let prior = headers
                .get(X_FORWARDED_FOR)
                .filter(|_| believed.from_proxy)
                .map(|v| v.as_bytes());
            forwarded_for(prior, ip)
        });
        Ok(ToUpstream {
            request_id: exchange.request_id.cloned(),
            host,
            forwarded_for,
            proto: HeaderValue::from_static(if believed.https { "https" } else { "http" }),
        })
    }
}

/// Adds what the gateway tells the client to the upstream's response head;
/// `routed`: the request's choice and its route's issued-cookie name.
pub fn client_response(
    response: &mut impl EditHead,
    request_id: Option<&HeaderValue>,
    routed: Option<(&Choice, &str)>,
    secure: bool,
) -> Result<()> {
    let added = ToClient::new(request_id, routed, secure)?;
    if let Some(id) = added.request_id {
        response.set(REQUEST_ID, id)?;
    }
    if let Some(cookie) = added.cookie {
        response.add(http::header::SET_COOKIE, cookie)?;
    }
    if let Some(color) = added.served_by {
        response.set(SERVED_BY, HeaderValue::from_static(color))?;
    }
    Ok(())
}

/// What the gateway adds to a response for the client.
struct ToClient {
    request_id: Option<HeaderValue>,
    cookie: Option<HeaderValue>,
    /// The colour that served a pinned request.
    served_by: Option<&'static str>,
}

impl ToClient {
    fn new(
        request_id: Option<&HeaderValue>,
        routed: Option<(&Choice, &str)>,
        secure: bool,
    ) -> Result<ToClient> {
        // Unique per request: HPACK would add it to the connection's table
        // only to evict it; marked sensitive it is sent as a literal.
        let request_id = request_id.map(|id| {
            let mut id = id.clone();
            id.set_sensitive(true);
            id
        });
        let Some((choice, issued_cookie)) = routed else {
            return Ok(ToClient {
                request_id,
                cookie: None,
                served_by: None,
            });
        };
        let cookie = match &choice.issued_key {
            Some(key) => {
                let cookie = format!(
                    "{issued_cookie}={key}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax{}",
                    if secure { "; Secure" } else { "" }
                );
                // Unique per new client: a never-indexed HPACK literal, as
                // the ID.
                let mut cookie = HeaderValue::try_from(cookie).map_err(|e| {
                    pingora::Error::because(pingora::ErrorType::InvalidHTTPHeader, "cookie", e)
                })?;
                cookie.set_sensitive(true);
                Some(cookie)
            }
            None => None,
        };
        Ok(ToClient {
            request_id,
            cookie,
            served_by: choice.pinned.then(|| choice.color.as_str()),
        })
    }
}
