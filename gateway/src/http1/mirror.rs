//! Mirroring on the lean path: which requests are copied (see
//! [`crate::mirror`]), the taps that keep a copy of the request body and
//! of blue's answer as they are relayed, and the hand-over once blue's
//! answer is complete.

use super::framing::Framing;
use super::request::Request;
use crate::choose::Choice;
use crate::mirror::{Answer, Capture, RequestCopy, Ticket};
use crate::routing::RouteEntry;
use crate::split::Color;

/// Copies of one exchange's bytes, as relayed.
pub struct Taps {
    pub request: Capture,
    head: Vec<u8>,
    chunked: bool,
    pub response: Capture,
    /// Blue's answer was relayed to its end.
    pub complete: bool,
}

impl Taps {
    fn new(max_body: usize) -> Taps {
        Taps {
            request: Capture::new(max_body),
            head: Vec::new(),
            chunked: false,
            response: Capture::new(max_body),
            complete: false,
        }
    }

    pub fn response_head(&mut self, head: &[u8], framing: Framing) {
        self.head = head.to_vec();
        self.chunked = matches!(framing, Framing::Chunked(_));
    }
}

/// A ticket and taps when this request is copied to green: a request to
/// blue that is not pinned, not an upgrade, with a body of known length.
pub fn admit(request: &Request, entry: &RouteEntry, choice: &Choice) -> Option<(Ticket, Taps)> {
    let mirror = entry.def.mirror.as_ref()?;
    if choice.color != Color::Blue || choice.pinned || request.upgrade {
        return None;
    }
    let body_len = match request.framing {
        Framing::Empty => Some(0),
        Framing::Length(n) => Some(n),
        _ => None,
    };
    let ticket = mirror.admit(entry.mirror_percent, request.method(), body_len)?;
    Some((ticket, Taps::new(mirror.max_body())))
}

/// After the exchange: blue's complete answer and the request go to the
/// ticket's task; anything else (a failover to green, an answer cut off,
/// the gateway's own answer) is not compared.
pub fn hand_over(
    ticket: Ticket,
    taps: Taps,
    request: &Request,
    entry: &RouteEntry,
    served_by: Color,
) {
    if !taps.complete || served_by != Color::Blue || taps.head.is_empty() {
        ticket.abandon();
        return;
    }
    let copy = RequestCopy::Http1 {
        head: request.upstream_head().to_vec(),
        body: taps.request.bytes,
    };
    let blue = Answer::from_http1(&taps.head, taps.response, taps.chunked);
    ticket.send(copy, blue, entry.def.green.clone());
}
