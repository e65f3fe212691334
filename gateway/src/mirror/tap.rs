//! Mirroring on pingora-proxy's path (HTTP/2 clients): the copy of the
//! request as sent upstream and of blue's answer, kept as pingora's
//! callbacks see them pass, and the hand-over once the answer ended.

use super::capture::{Answer, Capture, RequestCopy};
use super::{Mirror, Ticket};
use crate::split::{Color, GreenPercent};
use crate::upstream::UpstreamGroup;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use std::sync::Arc;

pub struct Tap {
    ticket: Ticket,
    request: Option<Box<RequestHeader>>,
    request_body: Capture,
    answer: Answer,
    response_body: Capture,
    complete: bool,
}

impl Tap {
    /// A tap when this request (chosen for blue, not pinned) is copied to
    /// green at `percent`: of a listed method, with a body (as far as its
    /// Content-Length tells) of at most `max_body`.
    pub fn admit(
        mirror: &Arc<Mirror>,
        percent: GreenPercent,
        request: &RequestHeader,
    ) -> Option<Tap> {
        let length = match request.headers.get(http::header::CONTENT_LENGTH) {
            Some(v) => v.to_str().ok().and_then(|v| v.parse().ok()),
            None => Some(0), // HTTP/2: checked again at the end
        };
        let ticket = mirror.admit(percent, request.method.as_str().as_bytes(), length)?;
        Some(Tap {
            ticket,
            request: None,
            request_body: Capture::new(mirror.max_body()),
            answer: Answer::default(),
            response_body: Capture::new(mirror.max_body()),
            complete: false,
        })
    }

    /// The request as it goes upstream (pin headers gone).
    pub fn upstream_request(&mut self, request: &RequestHeader) {
        self.request = Some(Box::new(request.clone()));
    }

    pub fn request_body(&mut self, body: &Option<Bytes>) {
        if let Some(body) = body {
            self.request_body.take(body);
        }
    }

    pub fn response(&mut self, response: &ResponseHeader) {
        self.answer.status = response.status.as_u16();
        self.answer.headers = response
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
    }

    pub fn response_body(&mut self, body: &Option<Bytes>, end: bool) {
        if let Some(body) = body {
            self.response_body.take(body);
        }
        self.complete |= end;
    }

    /// The exchange ended: a complete answer from blue goes to be compared.
    pub fn finish(self, ok: bool, served_by: Color, green: &Arc<UpstreamGroup>) {
        let Tap {
            ticket,
            request,
            request_body,
            mut answer,
            response_body,
            complete,
        } = self;
        let (Some(header), true, Color::Blue, false) =
            (request, ok && complete, served_by, request_body.over)
        else {
            return ticket.abandon();
        };
        answer.truncated = response_body.over;
        answer.body = response_body.bytes;
        let copy = RequestCopy::Header {
            header,
            body: request_body.bytes,
        };
        ticket.send(copy, answer, green.clone());
    }
}
