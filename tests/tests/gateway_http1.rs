//! HTTP/1 framing and strictness on raw sockets: requests whose framing is
//! ambiguous are refused (or the connection is cut off after the one request
//! it can frame), heads that never end are cut off, and nothing reaches
//! upstream twice or out of order. (Pipelining and keep-alive are in
//! gateway_connections.rs.)
//!
//! The upstream here is a hyper server that records every request it gets
//! (method, path, Content-Length, body) in arrival order.

use bytes::Bytes;
use e2e::Gateway;
use http_body_util::Full;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the recording upstream saw of one request.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    method: String,
    path: String,
    /// The request target as it arrived (origin- or absolute-form).
    target: String,
    host: Option<String>,
    content_length: Option<String>,
    transfer_encoding: Option<String>,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

/// A hyper upstream on a fresh port that records every request except the
/// gateway's health checks, answering `ok <path>`.
async fn recording_upstream() -> (SocketAddr, Recorder) {
    let recorder = Recorder::default();
    let log = recorder.clone();
    let addr = e2e::http_server(move |req: http::Request<Bytes>| {
        let log = log.clone();
        async move {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
            };
            let seen = Seen {
                method: req.method().to_string(),
                path: req.uri().path().to_owned(),
                target: req.uri().to_string(),
                host: header("host"),
                content_length: header("content-length"),
                transfer_encoding: header("transfer-encoding"),
                body: req.body().to_vec(),
            };
            let reply = format!("ok {}", seen.path);
            if seen.path != "/healthz" {
                log.0.lock().unwrap().push(seen);
            }
            http::Response::new(Full::new(Bytes::from(reply)))
        }
    })
    .await;
    (addr, recorder)
}

/// A gateway whose blue and green both point at one recording upstream.
async fn gateway(listener_extra: &str) -> (Gateway, Recorder) {
    gateway_with_routes(listener_extra, "").await
}

/// The same, after `routes` (YAML list items) of other upstreams.
async fn gateway_with_routes(listener_extra: &str, routes: &str) -> (Gateway, Recorder) {
    let (upstream, recorder) = recording_upstream().await;
    let config = format!(
        r#"listeners: [{{address: "{{proxy}}"{listener_extra}}}]
admin: {{address: "{{admin}}"}}
routes:
{routes}
  - name: web
    blue: {{endpoints: ["{upstream}"]}}
    green: {{endpoints: ["{upstream}"]}}
    health_check: {{path: /healthz, interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 2}}
"#
    );
    let gw = tokio::task::spawn_blocking(move || Gateway::start(&config))
        .await
        .unwrap();
    (gw, recorder)
}

/// Writes `bytes` on a fresh connection and reads until the gateway closes
/// it (or `limit` passes); returns what came back and whether it closed.
async fn exchange(proxy: SocketAddr, bytes: &[u8], limit: Duration) -> (String, bool) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    read_until_closed(&mut stream, limit).await
}

async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
        }
    }
}

fn status_of(response: &str) -> Option<u16> {
    response.split_whitespace().nth(1)?.parse().ok()
}

fn responses_in(text: &str) -> usize {
    text.matches("HTTP/1.1 ").count()
}

/// The gateway answers a request it refuses itself, closes, and sends
/// nothing upstream.
async fn assert_refused(proxy: SocketAddr, recorder: &Recorder, what: &str, bytes: &[u8]) {
    let before = recorder.seen();
    let (response, closed) = exchange(proxy, bytes, Duration::from_secs(5)).await;
    let status = status_of(&response);
    assert!(
        matches!(status, Some(400) | Some(431)),
        "{what}: expected 400 (or 431), got {response:?}"
    );
    assert_eq!(responses_in(&response), 1, "{what}: {response:?}");
    assert!(closed, "{what}: the connection stayed open");
    assert_eq!(recorder.seen(), before, "{what}: reached upstream");
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicting_content_lengths_are_refused() {
    let (gw, recorder) = gateway("").await;
    assert_refused(
        gw.proxy,
        &recorder,
        "two different Content-Length headers",
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    )
    .await;
    assert_refused(
        gw.proxy,
        &recorder,
        "a Content-Length list that disagrees",
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!",
    )
    .await;
    assert_refused(
        gw.proxy,
        &recorder,
        "a Content-Length that is not a number",
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn what_goes_upstream_has_one_reading() {
    let (other, other_seen) = recording_upstream().await;
    let routes = format!(
        r#"  - name: other
    hosts: [other.example]
    blue: {{endpoints: ["{other}"]}}
    green: {{endpoints: ["{other}"]}}
"#
    );
    let (gw, web_seen) = gateway_with_routes("", &routes).await;

    // An absolute-form target is routed by its authority, not Host, and
    // reaches the upstream in origin-form with that authority as Host.
    let (response, _) = exchange(
        gw.proxy,
        b"GET http://other.example/a?b=1 HTTP/1.1\r\nHost: web.example\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status_of(&response), Some(200), "{response}");
    let seen = other_seen.seen();
    assert_eq!(seen.len(), 1, "routed by the authority: {seen:?}");
    assert_eq!(seen[0].target, "/a?b=1");
    assert_eq!(seen[0].host.as_deref(), Some("other.example"));
    assert!(web_seen.seen().is_empty());

    // `Content-Length: 3, 3` (one value, written as a list) goes on as 3.
    let (response, _) = exchange(
        gw.proxy,
        b"POST /len HTTP/1.1\r\nHost: web.example\r\nContent-Length: 3, 3\r\nConnection: close\r\n\r\nabc",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status_of(&response), Some(200), "{response}");
    let seen = web_seen.seen();
    assert_eq!(seen[0].content_length.as_deref(), Some("3"));
    assert_eq!(seen[0].body, b"abc");
    assert_eq!(seen[0].host.as_deref(), Some("web.example"));
}

#[tokio::test(flavor = "multi_thread")]
async fn obfuscated_transfer_encodings_are_refused() {
    let (gw, recorder) = gateway("").await;
    for (what, bytes) in [
        (
            "an unknown coding",
            &b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"[..],
        ),
        (
            "chunked not last",
            b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        ),
        (
            "a space before the colon",
            b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "Transfer-Encoding on HTTP/1.0",
            b"POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
    ] {
        assert_refused(gw.proxy, &recorder, what, bytes).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_are_refused() {
    let (gw, recorder) = gateway("").await;
    let mut request = b"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    let mut stream = TcpStream::connect(gw.proxy).await.unwrap();
    // The gateway may answer and close before it has read everything.
    let _ = stream.write_all(&request).await;
    let (response, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(
        matches!(status_of(&response), Some(400) | Some(431)),
        "{response:?}"
    );
    assert!(closed);
    assert_eq!(recorder.seen(), []);
}

/// Content-Length and Transfer-Encoding together: chunked wins (RFC 9112
/// 6.3), the Content-Length is not passed on, and the connection is closed
/// after the response, so bytes hidden after the chunked body are never
/// read as a second request.
#[tokio::test(flavor = "multi_thread")]
async fn content_length_with_transfer_encoding_cannot_smuggle() {
    let (gw, recorder) = gateway("").await;
    let (response, closed) = exchange(
        gw.proxy,
        b"POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status_of(&response), Some(200), "{response:?}");
    assert_eq!(responses_in(&response), 1, "{response:?}");
    assert!(
        closed,
        "the connection stayed open after an ambiguous request"
    );
    let seen = recorder.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/first");
    assert_eq!(seen[0].body, b"abc");
    assert_eq!(seen[0].content_length, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_chunk_framing_is_cut_off() {
    let (gw, recorder) = gateway("").await;
    let (response, closed) = exchange(
        gw.proxy,
        b"POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(closed);
    // Either refused outright or the upstream request was abandoned: no
    // complete request with that body ever reached upstream.
    assert!(
        recorder.seen().iter().all(|s| s.body != b"abc"),
        "{:?}",
        recorder.seen()
    );
    if let Some(status) = status_of(&response) {
        assert!(status >= 400, "{response:?}");
    }
}

/// Header lines that end in a bare LF are read as lines, the same way on
/// the way in and on the way upstream (the gateway re-writes the head
/// with CRLF), so they cannot hide a header from one side.
#[tokio::test(flavor = "multi_thread")]
async fn bare_lf_line_endings_are_framed_consistently() {
    let (gw, recorder) = gateway("").await;
    let (response, _) = exchange(
        gw.proxy,
        b"POST /lf HTTP/1.1\nHost: x\nContent-Length: 3\nConnection: close\n\nabc",
        Duration::from_secs(5),
    )
    .await;
    let status = status_of(&response);
    if status == Some(200) {
        assert_eq!(responses_in(&response), 1);
        let seen = recorder.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            (seen[0].path.as_str(), &seen[0].body[..]),
            ("/lf", &b"abc"[..])
        );
    } else {
        assert_eq!(status, Some(400), "{response:?}");
        assert_eq!(recorder.seen(), []);
    }
    // A bare CR is never a line ending.
    assert_refused(
        gw.proxy,
        &recorder,
        "a bare CR",
        b"GET /cr HTTP/1.1\r\nHost: x\rX-Hidden: 1\r\n\r\n",
    )
    .await;
}

/// A head that never ends, however slowly it trickles in, is answered
/// 408 and closed once `client_timeouts.header` has passed since its first
/// byte (slowloris), and nothing of it reaches upstream.
#[tokio::test(flavor = "multi_thread")]
async fn never_finished_headers_are_cut_off() {
    let (upstream, recorder) = recording_upstream().await;
    let config = format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
client_timeouts: {{header: 1s}}
routes:
  - name: web
    blue: {{endpoints: ["{upstream}"]}}
    green: {{endpoints: ["{upstream}"]}}
"#
    );
    let gw = tokio::task::spawn_blocking(move || Gateway::start(&config))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(gw.proxy).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // One header byte every 200 ms: each read is quick, the head never ends.
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(1500), trickle).await;
    let (response, closed) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    assert_eq!(status_of(&response), Some(408), "{response:?}");
    assert!(closed, "the connection stayed open");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(recorder.seen(), []);
}
