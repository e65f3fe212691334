//! Sending a copy to green with pingora's HTTP client (HTTP/1 or HTTP/2,
//! as the green group speaks; its connections are pooled apart from the
//! client path's) and reading the answer, up to `max_body`.

use super::capture::{Answer, RequestCopy};
use super::MIRROR_HEADER;
use crate::upstream::UpstreamGroup;
use bytes::Bytes;
use pingora::connectors::http::Connector;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

static CONNECTOR: LazyLock<Connector> = LazyLock::new(|| Connector::new(None));

/// How long a connection to green stays pooled for the next copy.
const IDLE: Duration = Duration::from_secs(60);

/// Green's answer to the copy, within `timeout`; `Err` says why there is
/// none.
pub async fn green(
    group: &UpstreamGroup,
    request: &RequestCopy,
    max_body: usize,
    timeout: Duration,
) -> Result<Answer, String> {
    let started = Instant::now();
    match tokio::time::timeout(timeout, exchange(group, request, max_body)).await {
        Ok(Ok(mut answer)) => {
            answer.seconds = started.elapsed().as_secs_f64();
            Ok(answer)
        }
        Ok(Err(why)) => Err(why),
        Err(_) => Err(format!("green gave no answer within {timeout:?}")),
    }
}

async fn exchange(
    group: &UpstreamGroup,
    request: &RequestCopy,
    max_body: usize,
) -> Result<Answer, String> {
    let endpoint = group.pick(&[]).ok_or("green has no healthy endpoint")?;
    let mut header = request.header()?;
    if let Some(host) = &group.spec().group.host_rewrite {
        header
            .insert_header(http::header::HOST, host)
            .map_err(|e| e.to_string())?;
    }
    header
        .insert_header(MIRROR_HEADER, "1")
        .map_err(|e| e.to_string())?;
    let failed = |e: Box<pingora::Error>| format!("{}: {e}", endpoint.addr);
    let (mut session, _reused) = CONNECTOR
        .get_http_session(&endpoint.peer)
        .await
        .map_err(failed)?;
    session
        .write_request_header(Box::new(header))
        .await
        .map_err(failed)?;
    if !request.body().is_empty() {
        let body = Bytes::copy_from_slice(request.body());
        session
            .write_request_body(body, true)
            .await
            .map_err(failed)?;
    }
    session.finish_request_body().await.map_err(failed)?;
    session.read_response_header().await.map_err(failed)?;
    let head = session
        .response_header()
        .ok_or("green's answer has no header")?;
    let mut answer = Answer {
        status: head.status.as_u16(),
        headers: head
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        ..Answer::default()
    };
    while let Some(chunk) = session.read_response_body().await.map_err(failed)? {
        let room = max_body.saturating_sub(answer.body.len());
        answer.truncated |= chunk.len() > room;
        answer
            .body
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        if answer.truncated {
            // Not worth reading on: the connection is not kept.
            return Ok(answer);
        }
    }
    CONNECTOR
        .release_http_session(session, &endpoint.peer, Some(IDLE))
        .await;
    Ok(answer)
}
