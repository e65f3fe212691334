//! The gRPC health protocol (`grpc.health.v1.Health/Check`) as a pingora
//! health check, for upstreams that speak gRPC: SERVING is healthy; any
//! other answer, a grpc-status other than 0, or no HTTP/2 is not.
//!
//! The two messages are declared here with prost (the protocol is four
//! fields; generating them would need protoc for nothing).

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::lb::health_check::HealthCheck;
use pingora::lb::Backend;
use pingora::prelude::HttpPeer;
use pingora::protocols::http::client::HttpSession;
use pingora::{Error, ErrorType, Result};
use prost::Message;

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, Message)]
struct HealthCheckResponse {
    /// `ServingStatus`: 1 is SERVING.
    #[prost(int32, tag = "1")]
    status: i32,
}

const SERVING: i32 = 1;
const PATH: &[u8] = b"/grpc.health.v1.Health/Check";

pub struct GrpcHealthCheck {
    pub consecutive_success: usize,
    pub consecutive_failure: usize,
    /// How to reach an endpoint (HTTP/2 by ALPN or prior knowledge); its
    /// address is replaced by each target's.
    pub peer_template: HttpPeer,
    /// The `:authority` sent.
    pub host: String,
    /// The service asked about; empty for the whole server.
    pub service: String,
    connector: Connector,
}

impl GrpcHealthCheck {
    pub fn new(peer_template: HttpPeer, host: String, service: String) -> Self {
        GrpcHealthCheck {
            consecutive_success: 1,
            consecutive_failure: 1,
            peer_template,
            host,
            service,
            connector: Connector::new(None),
        }
    }
}

fn failed(why: String) -> Box<Error> {
    Error::explain(ErrorType::CustomCode("grpc health check failed", 0), why)
}

/// A gRPC message frame: not compressed, 4-byte length, the message.
fn frame(message: &impl Message) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.encoded_len());
    out.put_u8(0);
    out.put_u32(message.encoded_len() as u32);
    message.encode(&mut out).expect("room reserved");
    out.freeze()
}

#[async_trait]
impl HealthCheck for GrpcHealthCheck {
    async fn check(&self, target: &Backend) -> Result<()> {
        let mut peer = self.peer_template.clone();
        peer._address = target.addr.clone();
        let (session, _) = self.connector.get_http_session(&peer).await?;
        let HttpSession::H2(mut h2) = session else {
            return Err(failed("the endpoint did not speak HTTP/2".into()));
        };
        let mut req = RequestHeader::build("POST", PATH, None)?;
        req.insert_header("host", &self.host)?;
        req.insert_header("content-type", "application/grpc")?;
        req.insert_header("te", "trailers")?;
        h2.write_request_header(Box::new(req), false)?;
        let request = HealthCheckRequest {
            service: self.service.clone(),
        };
        h2.write_request_body(frame(&request), true).await?;
        h2.read_response_header().await?;
        let head = h2.response_header().expect("just read");
        if head.status != 200 {
            return Err(failed(format!("HTTP status {}", head.status)));
        }
        let mut grpc_status = head.headers.get("grpc-status").cloned();
        let mut body = BytesMut::new();
        while let Some(chunk) = h2.read_response_body().await? {
            body.extend_from_slice(&chunk);
        }
        if let Some(trailers) = h2.read_trailers().await? {
            grpc_status = trailers.get("grpc-status").cloned().or(grpc_status);
        }
        match grpc_status.as_ref().map(|v| v.as_bytes()) {
            Some(b"0") => {}
            other => {
                let status = other.map(String::from_utf8_lossy);
                return Err(failed(format!("grpc-status {status:?}")));
            }
        }
        let message = body.get(5..).unwrap_or_default();
        let answer = HealthCheckResponse::decode(message)
            .map_err(|e| failed(format!("not a HealthCheckResponse: {e}")))?;
        if answer.status != SERVING {
            return Err(failed(format!("serving status {}", answer.status)));
        }
        Ok(())
    }

    fn health_threshold(&self, success: bool) -> usize {
        if success {
            self.consecutive_success
        } else {
            self.consecutive_failure
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_frame_is_what_grpc_sends() {
        let empty = frame(&HealthCheckRequest::default());
        assert_eq!(&empty[..], &[0, 0, 0, 0, 0]);
        let named = frame(&HealthCheckRequest {
            service: "shop".into(),
        });
        assert_eq!(&named[..], b"\x00\x00\x00\x00\x06\x0a\x04shop");
        let serving = HealthCheckResponse::decode(&b"\x08\x01"[..]).unwrap();
        assert_eq!(serving.status, SERVING);
    }
}
