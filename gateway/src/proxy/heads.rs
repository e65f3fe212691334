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
    if let Some(id) = exchange.request_id {
        upstream.set(REQUEST_ID, id.clone())?;
    }
    let invalid = |e| pingora::Error::because(pingora::ErrorType::InvalidHTTPHeader, "host", e);
    let group = exchange.entry.def.group(exchange.color);
    if let Some(host) = &group.spec().group.host_rewrite {
        let host = HeaderValue::from_str(host).map_err(invalid)?;
        upstream.set(http::header::HOST, host)?;
    } else if !upstream.headers().contains_key(http::header::HOST) {
        // HTTP/2 clients send :authority instead of Host.
        if let Some(authority) = authority {
            let host = HeaderValue::from_str(authority.as_str()).map_err(invalid)?;
            upstream.set(http::header::HOST, host)?;
        }
    }
    // From a trusted proxy its list grows; from anyone else it is
    // replaced (`forwarded` explains).
    let believed = exchange.believed;
    match exchange.client {
        Some(ip) => {
            let prior = upstream
                .headers()
                .get(X_FORWARDED_FOR)
                .filter(|_| believed.from_proxy)
                .map(|v| v.as_bytes());
            let forwarded = forwarded_for(prior, ip);
            upstream.set(FORWARDED_FOR, forwarded)?;
        }
        None => upstream.unset(&FORWARDED_FOR),
    }
    let proto = HeaderValue::from_static(if believed.https { "https" } else { "http" });
    upstream.set(FORWARDED_PROTO, proto)
}

/// Adds what the gateway tells the client to the upstream's response head;
/// `routed`: the request's choice and its route's issued-cookie name.
pub fn client_response(
    response: &mut impl EditHead,
    request_id: Option<&HeaderValue>,
    routed: Option<(&Choice, &str)>,
    secure: bool,
) -> Result<()> {
    if let Some(id) = request_id {
        // Unique per request: HPACK would add it to the connection's table
        // only to evict it; marked sensitive it is sent as a literal.
        let mut id = id.clone();
        id.set_sensitive(true);
        response.set(REQUEST_ID, id)?;
    }
    let Some((choice, issued_cookie)) = routed else {
        return Ok(());
    };
    if let Some(key) = &choice.issued_key {
        let cookie = format!(
            "{issued_cookie}={key}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax{}",
            if secure { "; Secure" } else { "" }
        );
        // Unique per new client: a never-indexed HPACK literal, as the ID.
        let mut cookie = HeaderValue::try_from(cookie).map_err(|e| {
            pingora::Error::because(pingora::ErrorType::InvalidHTTPHeader, "cookie", e)
        })?;
        cookie.set_sensitive(true);
        response.add(http::header::SET_COOKIE, cookie)?;
    }
    if choice.pinned {
        let color = HeaderValue::from_static(choice.color.as_str());
        response.set(SERVED_BY, color)?;
    }
    Ok(())
}
