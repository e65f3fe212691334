//! The lean path's access log lines: what an exchange moved, counted as it
//! went, and the line handed to the log's queue once the response is done.

use super::mirror::Taps;
use super::request::{ClientInfo, Request};
use super::service::Service;
use crate::access_log::{Asked, Entry};
use crate::routing::RouteEntry;
use crate::split::Color;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

/// What one exchange moved.
#[derive(Default)]
pub struct Traffic {
    /// Request body bytes sent upstream (the head is counted apart).
    pub bytes_in: u64,
    /// Response bytes sent to the client, head included.
    pub bytes_out: u64,
    /// The last endpoint tried.
    pub upstream: Option<SocketAddr>,
    /// Endpoints tried: connect failures and retries included.
    pub tries: u32,
    /// Copies of what passes, for a mirrored exchange.
    pub taps: Option<Taps>,
}

/// How a logged request ended.
pub struct Outcome<'a> {
    pub status: u16,
    pub started: Instant,
    pub route: Option<&'a RouteEntry>,
    pub color: Option<Color>,
    pub pinned: bool,
    pub traffic: Traffic,
}

impl Service {
    /// Hands the request's line to the access log, when there is one and
    /// it wants this request; the request's head goes with it.
    pub(super) fn log(&self, client: &ClientInfo, request: Request, outcome: Outcome) {
        let Some(log) = self.gateway.access_log.as_ref().filter(|l| l.wants()) else {
            return;
        };
        let head_len = request.head_len as u64;
        log.record(Entry {
            time: SystemTime::now(),
            client: client.ip,
            asked: Asked::Http1(request.into_logged()),
            status: outcome.status,
            grpc_status: None,
            bytes_in: head_len + outcome.traffic.bytes_in,
            bytes_out: outcome.traffic.bytes_out,
            duration: outcome.started.elapsed(),
            upstream: outcome.traffic.upstream,
            route: outcome.route.map(|r| r.def.clone()),
            color: outcome.color,
            pinned: outcome.pinned,
            attempts: outcome.traffic.tries,
        });
    }
}
