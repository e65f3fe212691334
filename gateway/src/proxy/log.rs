//! The access log's line of an exchange on pingora-proxy's path.

use super::{client_ip, Proxy, RequestCtx};
use crate::access_log::{Asked, Entry};
use crate::routing::RouteEntry;
use pingora::proxy::Session;

impl Proxy {
    /// Hands the exchange's line to the access log, when there is one and
    /// it wants this request.
    pub(super) fn log(
        &self,
        session: &Session,
        ctx: &RequestCtx,
        entry: &RouteEntry,
        status: http::StatusCode,
        grpc: Option<&str>,
    ) {
        let pinned = ctx.choice.as_ref().is_some_and(|c| c.pinned);
        if let Some(log) = self.gateway.access_log.as_ref().filter(|l| l.wants()) {
            log.record(Entry {
                time: std::time::SystemTime::now(),
                client: client_ip(session),
                asked: Asked::of(session.req_header(), ctx.request_id.as_ref()),
                status: status.as_u16(),
                grpc_status: grpc.map(str::to_owned),
                bytes_in: head_size(
                    &session.req_header().headers,
                    session.req_header().uri.to_string().len(),
                ) + session.body_bytes_read() as u64,
                bytes_out: session
                    .response_written()
                    .map_or(0, |r| head_size(&r.headers, 12))
                    + session.body_bytes_sent() as u64,
                duration: ctx.started.elapsed(),
                upstream: ctx.current,
                route: Some(entry.def.clone()),
                color: Some(ctx.color()),
                pinned,
                attempts: ctx.tries,
            });
        }
    }
}

/// A head's size as HTTP/1 would write it (HTTP/2 compresses heads: this
/// is what the access log counts on both paths): its first line, each
/// `name: value` line, the blank line.
pub(crate) fn head_size(headers: &http::HeaderMap, first_line: usize) -> u64 {
    let fields: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    (first_line + 2 + fields + 2) as u64
}
