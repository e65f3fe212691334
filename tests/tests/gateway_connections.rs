//! Connections on both sides of the gateway's HTTP/1 path: upstream
//! keep-alive connections the upstream closed while idle, pipelined
//! requests, `Expect: 100-continue`, HTTP/1.0 clients, hop-by-hop headers,
//! and idle client connections.
//!
//! The upstream here is a small raw-socket server so that the test decides
//! when it closes a connection; it records every request head and body in
//! arrival order, with the connection each came on.

use e2e::Gateway;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
struct Seen {
    /// Which upstream connection (in accept order) carried it.
    connection: usize,
    head: String,
    body: Vec<u8>,
}

impl Seen {
    fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    fn header(&self, name: &str) -> Vec<&str> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    /// Everything but the gateway's health checks.
    fn seen(&self) -> Vec<Seen> {
        let all = self.0.lock().unwrap().clone();
        all.into_iter()
            .filter(|s| !s.request_line().contains("/healthz"))
            .collect()
    }
}

/// An upstream that keeps connections alive but closes each one after
/// `idle_close` without a request (as Node.js does after 5 s by default).
async fn upstream(idle_close: Duration) -> (SocketAddr, Recorder) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let recorder = Recorder::default();
    let log = recorder.clone();
    tokio::spawn(async move {
        for connection in 0.. {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(stream, connection, idle_close, log.clone()));
        }
    });
    (addr, recorder)
}

async fn serve(mut stream: TcpStream, connection: usize, idle_close: Duration, log: Recorder) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(idle_close, stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return, // idle too long, or closed: close
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        }
        let body = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
        log.0.lock().unwrap().push(Seen {
            connection,
            head,
            body,
        });
        let reply = format!("ok {path}");
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn gateway(upstream: SocketAddr, extra: &str) -> Gateway {
    let config = format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
{extra}
routes:
  - name: web
    blue: {{endpoints: ["{upstream}"]}}
    green: {{endpoints: ["{upstream}"]}}
    health_check: {{path: /healthz, interval: 5s, timeout: 500ms, healthy_threshold: 1, unhealthy_threshold: 3}}
"#
    );
    tokio::task::spawn_blocking(move || Gateway::start(&config))
        .await
        .unwrap()
}

/// Reads one response (head and Content-Length body) off `stream`.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i + 4]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: ")?.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= i + 4 + length {
                let all: Vec<u8> = buf.drain(..i + 4 + length).collect();
                return String::from_utf8_lossy(&all).into_owned();
            }
        }
        let mut chunk = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            other => panic!("no complete response: {other:?}, have {buf:?}"),
        }
    }
}

async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut chunk = [0u8; 64];
    matches!(
        tokio::time::timeout(limit, stream.read(&mut chunk)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// An upstream that closed its idle keep-alive connection must cost no
/// request: not a GET, and not a POST, which must never be sent twice.
#[tokio::test(flavor = "multi_thread")]
async fn connections_the_upstream_closed_while_idle_are_not_used() {
    let (up, recorder) = upstream(Duration::from_millis(150)).await;
    let gw = gateway(up, "").await;
    let client = reqwest::Client::new();
    for round in 0..3 {
        let get = client
            .get(gw.url(&format!("/get{round}")))
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), 200, "{}", gw.log_text());
        // The upstream closes the pooled connection meanwhile.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let post = client
            .post(gw.url(&format!("/post{round}")))
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 200, "{}", gw.log_text());
        assert_eq!(post.text().await.unwrap(), format!("ok /post{round}"));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let seen = recorder.seen();
    let lines: Vec<&str> = seen.iter().map(|s| s.request_line()).collect();
    assert_eq!(
        lines,
        [
            "GET /get0 HTTP/1.1",
            "POST /post0 HTTP/1.1",
            "GET /get1 HTTP/1.1",
            "POST /post1 HTTP/1.1",
            "GET /get2 HTTP/1.1",
            "POST /post2 HTTP/1.1"
        ]
    );
    assert!(seen
        .iter()
        .all(|s| s.request_line().starts_with("GET") || s.body == b"payload"));
}

/// Back-to-back requests on one upstream connection: the pool reuses it.
#[tokio::test(flavor = "multi_thread")]
async fn upstream_connections_are_reused() {
    let (up, recorder) = upstream(Duration::from_secs(30)).await;
    let gw = gateway(up, "").await;
    let client = reqwest::Client::new();
    for i in 0..20 {
        let resp = client.get(gw.url(&format!("/r{i}"))).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    let connections: std::collections::BTreeSet<usize> =
        recorder.seen().iter().map(|s| s.connection).collect();
    assert_eq!(
        connections.len(),
        1,
        "sequential requests used {connections:?}"
    );
}

/// Pipelined requests are all answered, in order, each sent upstream once.
#[tokio::test(flavor = "multi_thread")]
async fn pipelined_requests_are_all_answered_in_order() {
    let (up, recorder) = upstream(Duration::from_secs(30)).await;
    let gw = gateway(up, "").await;
    let mut stream = TcpStream::connect(gw.proxy).await.unwrap();
    stream
        .write_all(
            b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n\
              POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz\
              GET /three HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await
        .unwrap();
    let mut buf = Vec::new();
    for path in ["/one", "/two", "/three"] {
        let response = read_response(&mut stream, &mut buf).await;
        assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
        assert!(response.ends_with(&format!("ok {path}")), "{response}");
    }
    let seen = recorder.seen();
    let lines: Vec<&str> = seen.iter().map(|s| s.request_line()).collect();
    assert_eq!(
        lines,
        [
            "GET /one HTTP/1.1",
            "POST /two HTTP/1.1",
            "GET /three HTTP/1.1"
        ]
    );
    assert_eq!(seen[1].body, b"xyz");
}

/// `Expect: 100-continue`: the gateway says continue, the body follows,
/// and the upstream gets the body without the expectation.
#[tokio::test(flavor = "multi_thread")]
async fn expect_continue_is_answered_and_the_body_goes_upstream() {
    let (up, recorder) = upstream(Duration::from_secs(30)).await;
    let gw = gateway(up, "").await;
    let mut stream = TcpStream::connect(gw.proxy).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let interim = read_response(&mut stream, &mut buf).await;
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").await.unwrap();
    let response = read_response(&mut stream, &mut buf).await;
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    let seen = recorder.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, b"hello");
    assert!(seen[0].header("expect").is_empty(), "{}", seen[0].head);
}

/// Headers for one hop stay on it; X-Forwarded-For lists every hop once.
#[tokio::test(flavor = "multi_thread")]
async fn hop_by_hop_headers_stay_and_forwarding_headers_are_believed_from_trusted_proxies_only() {
    const REQUEST: &[u8] =
        b"GET /h HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive, X-Hop\r\n\
              X-Hop: secret\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 192.0.2.1\r\n\
              X-Forwarded-For: 198.51.100.2\r\nX-Forwarded-Proto: https\r\nX-Kept: yes\r\n\r\n";
    let (up, recorder) = upstream(Duration::from_secs(30)).await;
    // Behind a load balancer that ends TLS (on loopback: trusted).
    let behind_lb = gateway(up, "trusted_proxies: [\"127.0.0.0/8\"]").await;
    // Reached directly: the same headers are a client's claims.
    let direct = gateway(up, "").await;
    let mut responses = Vec::new();
    for gw in [&behind_lb, &direct] {
        let mut stream = TcpStream::connect(gw.proxy).await.unwrap();
        stream.write_all(REQUEST).await.unwrap();
        let mut buf = Vec::new();
        let response = read_response(&mut stream, &mut buf).await;
        assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
        responses.push(response);
    }
    let seen = recorder.seen();
    for s in &seen {
        assert_eq!(s.header("host"), ["app.example"]);
        assert_eq!(s.header("x-kept"), ["yes"]);
        for gone in ["x-hop", "keep-alive", "connection"] {
            assert!(
                s.header(gone).is_empty(),
                "{gone} went upstream: {}",
                s.head
            );
        }
    }
    // The trusted proxy's list grows by the peer, its scheme is kept, and
    // the cookie the gateway issues is Secure (the client used https).
    assert_eq!(
        seen[0].header("x-forwarded-for"),
        ["192.0.2.1, 198.51.100.2, 127.0.0.1"]
    );
    assert_eq!(seen[0].header("x-forwarded-proto"), ["https"]);
    let cookie = |r: &str| {
        r.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert!(
        cookie(&responses[0]).contains("HttpOnly; SameSite=Lax; Secure"),
        "{}",
        responses[0]
    );
    // From anyone else both are replaced: the peer alone, the gateway's scheme.
    assert_eq!(seen[1].header("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen[1].header("x-forwarded-proto"), ["http"]);
    let plain = cookie(&responses[1]);
    assert!(
        plain.contains("HttpOnly; SameSite=Lax") && !plain.contains("Secure"),
        "{plain}"
    );
}

/// HTTP/1.0 clients: closed after the response unless they ask to keep
/// the connection, and then told it is kept.
#[tokio::test(flavor = "multi_thread")]
async fn http10_clients_get_what_they_asked_for() {
    let (up, _recorder) = upstream(Duration::from_secs(30)).await;
    let gw = gateway(up, "").await;
    let mut stream = TcpStream::connect(gw.proxy).await.unwrap();
    stream
        .write_all(b"GET /old HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let response = read_response(&mut stream, &mut buf).await;
    assert!(response.contains("Connection: close\r\n"), "{response}");
    assert!(closed_within(&mut stream, Duration::from_secs(2)).await);

    let mut stream = TcpStream::connect(gw.proxy).await.unwrap();
    let mut buf = Vec::new();
    for _ in 0..2 {
        stream
            .write_all(b"GET /old HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            .await
            .unwrap();
        let response = read_response(&mut stream, &mut buf).await;
        assert!(
            response.contains("Connection: keep-alive\r\n"),
            "{response}"
        );
        assert!(response.ends_with("ok /old"), "{response}");
    }
}

/// Idle keep-alive clients are closed after `client_timeouts.keepalive`.
#[tokio::test(flavor = "multi_thread")]
async fn idle_clients_are_closed_after_the_keepalive_timeout() {
    let (up, _recorder) = upstream(Duration::from_secs(30)).await;
    let gw = gateway(up, "client_timeouts: {keepalive: 1s}").await;
    let mut stream = TcpStream::connect(gw.proxy).await.unwrap();
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    read_response(&mut stream, &mut buf).await;
    let idle = Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(5)).await);
    let waited = idle.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
}

/// With two workers, connections are moved between workers' reactors:
/// many keep-alive clients at once each get every answer, in order.
#[tokio::test(flavor = "multi_thread")]
async fn two_workers_serve_many_keepalive_clients() {
    let (up, recorder) = upstream(Duration::from_secs(30)).await;
    let gw = gateway(up, "threads: 2").await;
    let clients = (0..40).map(|c| {
        let proxy = gw.proxy;
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(proxy).await.unwrap();
            let mut buf = Vec::new();
            for r in 0..25 {
                let request = format!("GET /c{c}/r{r} HTTP/1.1\r\nHost: x\r\n\r\n");
                stream.write_all(request.as_bytes()).await.unwrap();
                let response = read_response(&mut stream, &mut buf).await;
                assert!(response.ends_with(&format!("ok /c{c}/r{r}")), "{response}");
            }
        })
    });
    for client in clients.collect::<Vec<_>>() {
        client.await.unwrap();
    }
    assert_eq!(recorder.seen().len(), 40 * 25);
}
