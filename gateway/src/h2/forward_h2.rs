//! One attempt on an HTTP/2 upstream connection: a stream opened with the
//! request's head, the client's body passed on as it comes while the
//! response comes back (a gRPC stream flows both ways at once), and the
//! response's head, body and trailers (`grpc-status`) relayed as they come.

use super::forward::{cut, Attempted, Routed, Tally};
use super::H2App;
use crate::deadline::within;
use crate::proxy::GRPC_STATUS;
use crate::request_id::X_REQUEST_ID;
use crate::upstream::GroupSpec;
use ::h2::client::SendRequest;
use ::h2::SendStream;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::protocols::http::v2::server::HttpSession;
use std::future::poll_fn;
use std::time::Duration;

/// The client's request body on its way upstream. Its state lives here,
/// not in the future that moves it, so that future may be dropped whenever
/// the response is ready first, and a later one goes on where it was.
struct Upload {
    /// `None` once the body ended (or there was none).
    stream: Option<SendStream<Bytes>>,
    /// Read from the client, not yet sent.
    pending: Bytes,
    /// The client's body ends with `pending`.
    end: bool,
}

/// What the client's side of the stream did while the upstream was waited
/// on.
enum ClientSide {
    /// Its next body bytes went upstream (or its body ended).
    Sent,
    /// The upstream stopped taking the body.
    Failed(String),
    /// The client reset the stream or closed the connection: the upstream's
    /// stream is reset in turn (dropped), so it stops working for nobody.
    Gone,
}

impl H2App {
    /// One attempt on `sender`'s connection to an endpoint of `group` (the
    /// colour serving now); `tally.grpc_status` gets the response's gRPC
    /// status.
    pub(super) async fn forward_h2(
        &self,
        session: &mut HttpSession,
        routed: &Routed<'_>,
        sender: SendRequest<Bytes>,
        request: http::Request<()>,
        group: &GroupSpec,
        tally: &mut Tally,
    ) -> Attempted {
        let read_timeout = group.timeouts.read;
        let Ok(mut sender) = sender.ready().await else {
            return Attempted::NoResponse;
        };
        // Tried again after a refusal: the body read so far goes again.
        let replay = session.get_retry_buffer().unwrap_or_default();
        let body_read = session.is_body_done();
        let no_body = body_read && replay.is_empty();
        let (mut response, stream) = match sender.send_request(request, no_body) {
            Ok(sent) => sent,
            Err(_) => return Attempted::NoResponse,
        };
        let mut upload = Upload {
            stream: (!no_body).then_some(stream),
            pending: replay,
            end: body_read,
        };
        // The response head, while the request body goes up.
        let response = loop {
            tokio::select! {
                biased;
                head = within(read_timeout, &mut response) => break head,
                side = upload.next(session, read_timeout) => match side {
                    ClientSide::Sent => {}
                    ClientSide::Failed(why) => return Attempted::Failed(502, why),
                    ClientSide::Gone => return Attempted::Answered(cut(session, 499, "the client went away")),
                },
            }
        };
        let response = match response {
            Some(Ok(response)) => response,
            // Refused before it was processed: another endpoint may take it,
            // if what the client sent so far is still at hand.
            Some(Err(e)) if never_processed(&e) && !session.retry_buffer_truncated() => {
                return Attempted::Refused
            }
            Some(Err(e)) => return Attempted::Failed(502, e.to_string()),
            None => {
                let why = format!("no response within {read_timeout:?}");
                return Attempted::Failed(504, why);
            }
        };
        let (mut parts, mut body) = response.into_parts();
        // A gRPC error without a body has its status in the headers.
        tally.grpc_status = parts.headers.get(GRPC_STATUS).cloned();
        let status = parts.status.as_u16();
        tally.bytes_out += routed.to_client(&mut parts.headers);
        let header = Box::new(ResponseHeader::from(parts));
        if session
            .write_response_header(header, body.is_end_stream())
            .is_err()
        {
            return Attempted::Answered(499);
        }
        if body.is_end_stream() {
            return Attempted::Answered(status);
        }
        loop {
            let data = tokio::select! {
                biased;
                data = within(read_timeout, body.data()) => data,
                side = upload.next(session, read_timeout) => match side {
                    ClientSide::Sent => continue,
                    ClientSide::Failed(why) => return Attempted::Answered(cut(session, status, &why)),
                    ClientSide::Gone => return Attempted::Answered(cut(session, 499, "the client went away")),
                },
            };
            match data {
                // An empty frame (an upstream may end its body with one)
                // is nothing to pass on: the end is sent with the trailers.
                Some(Some(Ok(data))) if data.is_empty() => {}
                Some(Some(Ok(data))) => {
                    let _ = body.flow_control().release_capacity(data.len());
                    tally.bytes_out += data.len() as u64;
                    if let Err(e) = session.write_body(data, false).await {
                        // Gone, or not reading within `send_timeout`.
                        let why = format!("writing to the client: {e}");
                        return Attempted::Answered(cut(session, 499, &why));
                    }
                }
                // The body ended: trailers may follow.
                Some(None) => break,
                Some(Some(Err(e))) => {
                    return Attempted::Answered(cut(session, status, &e.to_string()))
                }
                None => {
                    let why = format!("no bytes within {read_timeout:?}");
                    return Attempted::Answered(cut(session, status, &why));
                }
            }
            if self.gateway.drains.deadline_passed(group.color) {
                return Attempted::Answered(cut(session, status, "its colour was drained"));
            }
        }
        let ended = match within(read_timeout, body.trailers()).await {
            Some(Ok(Some(trailers))) => {
                if let Some(grpc) = trailers.get(GRPC_STATUS) {
                    tally.grpc_status = Some(grpc.clone());
                }
                session.write_trailers(trailers)
            }
            Some(Ok(None)) => session.write_body(Bytes::new(), true).await,
            Some(Err(e)) => return Attempted::Answered(cut(session, status, &e.to_string())),
            None => {
                let why = format!("no trailers within {read_timeout:?}");
                return Attempted::Answered(cut(session, status, &why));
            }
        };
        match ended {
            Ok(()) => Attempted::Answered(status),
            Err(e) => {
                Attempted::Answered(cut(session, 499, &format!("writing to the client: {e}")))
            }
        }
    }
}

impl Upload {
    /// The client's next body bytes, sent upstream as its flow control
    /// allows (waiting for it at most `timeout`); once the body has ended,
    /// pending until the client goes away.
    async fn next(&mut self, session: &mut HttpSession, timeout: Duration) -> ClientSide {
        let Some(stream) = self.stream.as_mut() else {
            let _ = session.idle().await;
            return ClientSide::Gone;
        };
        if self.pending.is_empty() && !self.end {
            match session.read_body_bytes().await {
                Ok(Some(data)) => (self.pending, self.end) = (data, session.is_body_done()),
                Ok(None) => self.end = true,
                Err(e) => {
                    tracing::debug!("reading the client's body: {e}");
                    return ClientSide::Gone;
                }
            }
        }
        let mut ended = false;
        while !self.pending.is_empty() {
            stream.reserve_capacity(self.pending.len());
            let granted = match within(timeout, poll_fn(|cx| stream.poll_capacity(cx))).await {
                Some(Some(Ok(granted))) => granted,
                Some(Some(Err(e))) => return ClientSide::Failed(format!("sending the body: {e}")),
                Some(None) => return ClientSide::Failed("the upstream closed the stream".into()),
                None => {
                    let why = format!("the upstream took no body bytes within {timeout:?}");
                    return ClientSide::Failed(why);
                }
            };
            let chunk = self.pending.split_to(granted.min(self.pending.len()));
            ended = self.end && self.pending.is_empty();
            if let Err(e) = stream.send_data(chunk, ended) {
                return ClientSide::Failed(format!("sending the body: {e}"));
            }
        }
        if self.end {
            // An end that came without bytes goes up as an empty frame.
            if !ended {
                let _ = stream.send_data(Bytes::new(), true);
            }
            self.stream = None;
        }
        ClientSide::Sent
    }
}

/// The upstream refused the stream, or was going away, before it did
/// anything with it (RFC 9113 §8.7): it may go elsewhere.
fn never_processed(e: &::h2::Error) -> bool {
    e.reason() == Some(::h2::Reason::REFUSED_STREAM) || (e.is_go_away() && e.is_remote())
}

/// The request as an HTTP/2 upstream gets it: `head` (already rewritten for
/// the upstream) with its Host as `:authority`, and the scheme the
/// connection has.
pub(super) fn upstream_request(
    client: &pingora::http::RequestHeader,
    mut headers: http::HeaderMap,
    tls: bool,
) -> Result<http::Request<()>, String> {
    let authority = match headers.remove(http::header::HOST) {
        Some(host) => http::uri::Authority::try_from(host.as_bytes())
            .map_err(|e| format!("the request's authority {host:?}: {e}"))?,
        None => match client.uri.authority() {
            Some(authority) => authority.clone(),
            None => return Err("the request names no authority".into()),
        },
    };
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(match tls {
        true => http::uri::Scheme::HTTPS,
        false => http::uri::Scheme::HTTP,
    });
    uri.authority = Some(authority);
    uri.path_and_query = Some(match client.uri.path_and_query() {
        Some(path) => path.clone(),
        None => http::uri::PathAndQuery::from_static("/"),
    });
    // Unique per request: HPACK would add it to the connection's table only
    // to evict a header worth keeping; sensitive, it goes as a literal.
    if let Some(id) = headers.get_mut(X_REQUEST_ID) {
        id.set_sensitive(true);
    }
    let mut request = http::Request::new(());
    *request.method_mut() = client.method.clone();
    *request.uri_mut() = http::Uri::from_parts(uri).map_err(|e| e.to_string())?;
    *request.version_mut() = http::Version::HTTP_2;
    *request.headers_mut() = headers;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::upstream_request;
    use pingora::http::RequestHeader;

    #[test]
    fn the_host_becomes_the_authority_with_the_connections_scheme() {
        let mut head = RequestHeader::build("POST", b"/pkg.Service/Call?x=1", None).unwrap();
        head.insert_header("host", "api.internal:8443").unwrap();
        head.insert_header("te", "trailers").unwrap();
        head.insert_header("x-request-id", "4f2a").unwrap();
        let request = upstream_request(&head, head.headers.clone(), true).unwrap();
        assert!(request.headers()["x-request-id"].is_sensitive());
        assert_eq!(
            request.uri().to_string(),
            "https://api.internal:8443/pkg.Service/Call?x=1"
        );
        assert!(request.headers().get("host").is_none());
        assert_eq!(request.headers()["te"], "trailers");
        assert_eq!(request.version(), http::Version::HTTP_2);
        let plain = upstream_request(&head, head.headers.clone(), false).unwrap();
        assert_eq!(plain.uri().scheme_str(), Some("http"));
    }

    #[test]
    fn a_request_without_an_authority_is_refused_with_a_reason() {
        let head = RequestHeader::build("GET", b"/", None).unwrap();
        let why = upstream_request(&head, head.headers.clone(), false).unwrap_err();
        assert!(why.contains("no authority"), "{why}");
        let mut bad = RequestHeader::build("GET", b"/", None).unwrap();
        bad.insert_header("host", "a b").unwrap();
        assert!(upstream_request(&bad, bad.headers.clone(), false).is_err());
    }
}
