//! HTTP/2 clients' streams on the gateway's own path, bodies included. To
//! HTTP/1 upstreams a request body goes with its length, or in chunks when
//! the client gave none, and an early answer is heard; a client whose body
//! stops coming is answered 408; each colour is
//! spoken to in its own version. On a route whose upstreams speak HTTP/2: the
//! streams of one worker multiplexed on one upstream connection, bodies
//! flowing both ways at once (as a gRPC stream's do), larger than any
//! flow-control window, trailers passed on, the forwarding headers as
//! HTTP/1 upstreams get them, a client's cancel passed on.

use bytes::Bytes;
use e2e::Gateway;
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An h2c server (hyper): `/echo` streams the request body back as it
/// comes, then trailers; anything else answers what it got, as JSON.
/// Counts the connections that carried requests (health checks only
/// connect).
async fn h2c_upstream() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(AtomicUsize::new(0));
    let (counted, abandoned) = (connections.clone(), cancelled.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (counted, asked) = (counted.clone(), Arc::new(AtomicBool::new(false)));
            let abandoned = abandoned.clone();
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    if !asked.swap(true, Ordering::SeqCst) {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                    let abandoned = abandoned.clone();
                    async move {
                        if req.uri().path() == "/slow" {
                            // Counts the call dropped before it answered:
                            // hyper drops it when its stream is reset.
                            let _unanswered = Unanswered(abandoned);
                            tokio::time::sleep(Duration::from_secs(30)).await;
                        }
                        if req.uri().path() == "/echo" {
                            return Ok::<_, hyper::Error>(http::Response::new(echo(
                                req.into_body(),
                            )));
                        }
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let header = |name: &str| {
                            parts
                                .headers
                                .get(name)
                                .map(|v| v.to_str().unwrap().to_owned())
                        };
                        let json = serde_json::json!({
                            "method": parts.method.as_str(),
                            "authority": parts.uri.authority().map(|a| a.to_string()),
                            "host": header("host"),
                            "x-request-id": header("x-request-id"),
                            "x-forwarded-for": header("x-forwarded-for"),
                            "x-forwarded-proto": header("x-forwarded-proto"),
                            "body_length": body.len(),
                        });
                        let full = http_body_util::Full::new(Bytes::from(json.to_string()));
                        Ok(http::Response::new(
                            full.map_err(|never| match never {}).boxed(),
                        ))
                    }
                });
            tokio::spawn(async move {
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
            });
        }
    });
    Upstream {
        addr,
        connections,
        cancelled,
    }
}

struct Upstream {
    addr: SocketAddr,
    /// Connections that carried requests (health checks only connect).
    connections: Arc<AtomicUsize>,
    /// `/slow` calls dropped before they answered.
    cancelled: Arc<AtomicUsize>,
}

struct Unanswered(Arc<AtomicUsize>);

impl Drop for Unanswered {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The request body's frames back as they come, then trailers: its
/// length and a gRPC status.
fn echo(
    mut body: hyper::body::Incoming,
) -> http_body_util::combinators::BoxBody<Bytes, hyper::Error> {
    use hyper::body::Frame;
    let (frames, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, hyper::Error>>(4);
    tokio::spawn(async move {
        let mut length = 0;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map(|f| f.into_data().unwrap_or_default()) else {
                return;
            };
            length += data.len();
            let _ = frames.send(Ok(Frame::data(data))).await;
        }
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        trailers.insert("x-length", length.to_string().parse().unwrap());
        let _ = frames.send(Ok(Frame::trailers(trailers))).await;
    });
    let stream = tokio_stream_from(rx);
    http_body_util::StreamBody::new(stream).boxed()
}

fn tokio_stream_from<T>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + Sync + 'static
where
    T: Send + Sync + 'static,
{
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn config(upstream: SocketAddr) -> String {
    format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
access_log: {{path: "{{dir}}/access.log", format: json}}
routes:
  - name: api
    blue: {{endpoints: ["{upstream}"], protocol: h2c}}
    green: {{endpoints: ["{upstream}"], protocol: h2c}}
    health_check: {{protocol: tcp}}
"#
    )
}

/// An h2c connection to the gateway, with prior knowledge.
async fn h2c(gw: &Gateway) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(gw.proxy).await.unwrap();
    let (sender, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    sender
}

fn request(gw: &Gateway, method: &str, path: &str) -> http::Request<()> {
    http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", gw.proxy))
        .body(())
        .unwrap()
}

/// Sends `data` whole, as the stream's flow control allows.
async fn send_all(stream: &mut h2::SendStream<Bytes>, mut data: Bytes, end: bool) {
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = std::future::poll_fn(|cx| stream.poll_capacity(cx))
            .await
            .unwrap()
            .unwrap();
        let chunk = data.split_to(granted.min(data.len()));
        stream.send_data(chunk, end && data.is_empty()).unwrap();
    }
}

/// The next `n` body bytes of `body`, releasing the window as they come.
async fn read_exactly(body: &mut h2::RecvStream, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let data = body.data().await.expect("more body").unwrap();
        let _ = body.flow_control().release_capacity(data.len());
        got.extend_from_slice(&data);
    }
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_flow_both_ways_on_one_multiplexed_upstream_connection() {
    let upstream = h2c_upstream().await;
    let gw = Gateway::start(&config(upstream.addr));
    e2e::wait_listening(gw.proxy, Duration::from_secs(10));
    let client = h2c(&gw).await;

    // A stream both ways at once: the response and its first bytes come
    // back while the request body is still open; the trailers come last.
    let (response, mut up) = client
        .clone()
        .ready()
        .await
        .unwrap()
        .send_request(request(&gw, "POST", "/echo"), false)
        .unwrap();
    send_all(&mut up, Bytes::from_static(b"first "), false).await;
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("the response head before the request body ended")
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let mut down = response.into_body();
    assert_eq!(read_exactly(&mut down, 6).await, b"first ");
    send_all(&mut up, Bytes::from_static(b"second"), true).await;
    assert_eq!(read_exactly(&mut down, 6).await, b"second");
    let more = down.data().await;
    assert!(more.is_none(), "no more body: {more:?}");
    let trailers = down.trailers().await.unwrap().expect("trailers");
    assert_eq!(trailers["x-length"], "12");
    assert_eq!(trailers["grpc-status"], "0");

    // A body larger than every window, up and back.
    let big: Bytes = (0..1_500_000u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let (response, mut up) = client
        .clone()
        .ready()
        .await
        .unwrap()
        .send_request(request(&gw, "PUT", "/echo"), false)
        .unwrap();
    let sending = tokio::spawn({
        let big = big.clone();
        async move { send_all(&mut up, big, true).await }
    });
    let mut down = response.await.unwrap().into_body();
    let back = read_exactly(&mut down, big.len()).await;
    sending.await.unwrap();
    assert!(back == big, "the 1.5 MB body came back changed");
    // Its access log line counts the body that went up.
    let log = gw.dir.path().join("access.log");
    let written = std::time::Instant::now() + Duration::from_secs(5);
    let put = loop {
        assert!(std::time::Instant::now() < written, "no access log line");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("\"PUT\"")) {
            break serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let bytes_in = put["bytes_in"].as_u64().unwrap();
    assert!(bytes_in > 1_500_000, "{put}");
    assert_eq!(put["grpc_status"], "0", "{put}");

    // Many streams at once: one worker, one upstream connection.
    let asks = (0..20).map(|i| {
        let client = client.clone();
        let req = request(&gw, "POST", &format!("/ask/{i}"));
        async move {
            let (response, mut up) = client
                .ready()
                .await
                .unwrap()
                .send_request(req, false)
                .unwrap();
            send_all(&mut up, Bytes::from(vec![b'x'; 1000 + i]), true).await;
            let mut body = response.await.unwrap().into_body();
            let mut got = Vec::new();
            while let Some(data) = body.data().await {
                got.extend_from_slice(&data.unwrap());
            }
            let echo: serde_json::Value = serde_json::from_slice(&got).unwrap();
            assert_eq!(echo["body_length"], 1000 + i);
            echo
        }
    });
    let echoes = futures_util::future::join_all(asks).await;
    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        1,
        "every stream on the worker's one connection"
    );
    // The upstream gets what an HTTP/1 upstream gets: the authority, the
    // request ID, the forwarding headers; no Host beside :authority.
    let echo = &echoes[0];
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["authority"], gw.proxy.to_string());
    assert_eq!(echo["host"], serde_json::Value::Null);
    assert_eq!(echo["x-request-id"].as_str().map(str::len), Some(32));
    assert_eq!(echo["x-forwarded-for"], "127.0.0.1");
    assert_eq!(echo["x-forwarded-proto"], "http");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_cancels_cancels_the_upstream_stream() {
    let upstream = h2c_upstream().await;
    let gw = Gateway::start(&config(upstream.addr));
    e2e::wait_listening(gw.proxy, Duration::from_secs(10));
    let client = h2c(&gw).await;
    let (response, body) = client
        .ready()
        .await
        .unwrap()
        .send_request(request(&gw, "GET", "/slow"), true)
        .unwrap();
    // The upstream has the call; the client gives up on it (RST_STREAM).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(upstream.cancelled.load(Ordering::SeqCst), 0);
    drop((response, body));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while upstream.cancelled.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upstream still works on a call nobody waits for"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_reach_http1_upstreams_with_their_framing() {
    // Echoes the body, and says how it was framed.
    let upstream = e2e::http_server(|req: http::Request<Bytes>| async move {
        let framing = |name| {
            req.headers()
                .get(name)
                .map_or("-".to_owned(), |v| v.to_str().unwrap().to_owned())
        };
        let mut response = http::Response::new(http_body_util::Full::new(req.body().clone()));
        let said = format!(
            "{} {} {}",
            req.method(),
            framing("content-length"),
            framing("transfer-encoding")
        );
        response
            .headers_mut()
            .insert("x-framing", said.parse().unwrap());
        response
    })
    .await;
    let gw = Gateway::start(&format!(
        "listeners: [{{address: \"{{proxy}}\"}}]\nadmin: {{address: \"{{admin}}\"}}\nroutes:\n  - name: web\n    blue: {{endpoints: [\"{upstream}\"]}}\n    green: {{endpoints: [\"{upstream}\"]}}\n"
    ));
    e2e::wait_listening(gw.proxy, Duration::from_secs(10));
    let client = h2c(&gw).await;
    let body: Bytes = (0..300_000u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    // (method, content-length the client gives, pieces it sends)
    let cases: [(&str, Option<usize>, usize); 4] = [
        ("POST", Some(body.len()), 1),
        ("PUT", None, 3),
        ("POST", None, 1),
        ("DELETE", Some(0), 0),
    ];
    for (method, length, pieces) in cases {
        let mut req = request(&gw, method, "/api");
        if let Some(length) = length {
            req.headers_mut()
                .insert("content-length", length.to_string().parse().unwrap());
        }
        let sent = if pieces == 0 {
            Bytes::new()
        } else {
            body.clone()
        };
        let (response, mut up) = client
            .clone()
            .ready()
            .await
            .unwrap()
            .send_request(req, pieces == 0)
            .unwrap();
        if pieces > 0 {
            let step = sent.len().div_ceil(pieces);
            for (i, piece) in sent.chunks(step).enumerate() {
                let last = i + 1 == pieces;
                send_all(&mut up, Bytes::copy_from_slice(piece), last).await;
            }
        }
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200, "{method} {length:?}");
        let framing = response.headers()["x-framing"].to_str().unwrap().to_owned();
        let expected = match length {
            Some(0) => format!("{method} - -"),
            Some(n) => format!("{method} {n} -"),
            None => format!("{method} - chunked"),
        };
        assert_eq!(framing, expected);
        let mut down = response.into_body();
        let mut back = Vec::new();
        while let Some(data) = down.data().await {
            let data = data.unwrap();
            let _ = down.flow_control().release_capacity(data.len());
            back.extend_from_slice(&data);
        }
        assert!(
            back == sent[..],
            "{method} {length:?}: the body came back changed"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http1_upstream_that_answers_before_reading_the_body_is_heard() {
    // Answers 413 to the head and never reads the body, keeping the
    // connection open: the gateway's writes stall.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                if e2e::read_request_head(&mut stream).await.is_none() {
                    return;
                }
                let answer = b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n";
                let _ = stream.write_all(answer).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let gw = Gateway::start(&format!(
        "listeners: [{{address: \"{{proxy}}\"}}]\nadmin: {{address: \"{{admin}}\"}}\nroutes:\n  - name: web\n    blue: {{endpoints: [\"{upstream}\"]}}\n    green: {{endpoints: [\"{upstream}\"]}}\n    timeouts: {{read: 1s}}\n    health_check: {{protocol: tcp}}\n"
    ));
    e2e::wait_listening(gw.proxy, Duration::from_secs(10));
    let client = h2c(&gw).await;
    let (response, mut up) = client
        .ready()
        .await
        .unwrap()
        .send_request(request(&gw, "POST", "/upload"), false)
        .unwrap();
    // More than the sockets between gateway and upstream hold.
    let body = Bytes::from(vec![0u8; 64 << 20]);
    tokio::spawn(async move { send_all(&mut up, body, true).await });
    let started = std::time::Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("the upstream's answer within its read timeout and a bit")
        .unwrap();
    assert_eq!(response.status(), 413);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_sending_its_body_is_answered_408() {
    // Answers a GET; for a POST reads what body comes until the gateway
    // closes the connection, and says how much came.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move {
                let Some(head) = e2e::read_request_head(&mut stream).await else {
                    return;
                };
                if head.starts_with("GET") {
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    let _ = stream.write_all(answer).await;
                    return;
                }
                let mut body = Vec::new();
                let _ = stream.read_to_end(&mut body).await;
                let _ = closed_tx.send(body.len());
            });
        }
    });
    let gw = Gateway::start(&format!(
        "listeners: [{{address: \"{{proxy}}\"}}]\nadmin: {{address: \"{{admin}}\"}}\nclient_timeouts: {{keepalive: 1s}}\nroutes:\n  - name: web\n    blue: {{endpoints: [\"{upstream}\"]}}\n    green: {{endpoints: [\"{upstream}\"]}}\n    timeouts: {{read: 30s}}\n    health_check: {{protocol: tcp}}\n"
    ));
    e2e::wait_listening(gw.proxy, Duration::from_secs(10));
    let client = h2c(&gw).await;
    let mut req = request(&gw, "POST", "/upload");
    req.headers_mut()
        .insert("content-length", "100".parse().unwrap());
    let (response, mut up) = client
        .clone()
        .ready()
        .await
        .unwrap()
        .send_request(req, false)
        .unwrap();
    // A tenth of the body, then nothing more.
    send_all(&mut up, Bytes::from_static(&[7u8; 10]), false).await;
    let started = std::time::Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("an answer once the body stalls for client_timeouts.keepalive")
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status(), 408);
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(3000),
        "answered 1s after the last body bytes (up to a sweep late), took {waited:?}"
    );
    let got = tokio::time::timeout(Duration::from_secs(5), closed.recv())
        .await
        .expect("the upstream connection with the unfinished request is closed");
    assert_eq!(got, Some(10), "the upstream got the body as far as it came");
    // Only that stream ended: the connection asks on.
    let (response, _) = client
        .ready()
        .await
        .unwrap()
        .send_request(request(&gw, "GET", "/after"), true)
        .unwrap();
    assert_eq!(response.await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_colour_is_spoken_to_in_its_own_version() {
    // Blue's ingress speaks h2c, green's HTTP/1 (a migration under way).
    let blue = h2c_upstream().await;
    let green = e2e::Backend::start("green");
    let gw = Gateway::start(&format!(
        "listeners: [{{address: \"{{proxy}}\"}}]\nadmin: {{address: \"{{admin}}\"}}\nroutes:\n  - name: api\n    blue: {{endpoints: [\"{}\"], protocol: h2c}}\n    green: {{endpoints: [\"{}\"]}}\n    health_check: {{protocol: tcp}}\n",
        blue.addr, green.addr
    ));
    let admin = e2e::Admin::new(&gw);
    let client = h2c(&gw).await;
    let post = |path: &str| {
        let (response, mut up) = client
            .clone()
            .send_request(request(&gw, "POST", path), false)
            .unwrap();
        async move {
            send_all(&mut up, Bytes::from_static(b"twelve bytes"), true).await;
            let response = response.await.unwrap();
            let headers = response.headers().clone();
            let mut body = response.into_body();
            let mut got = Vec::new();
            while let Some(data) = body.data().await {
                got.extend_from_slice(&data.unwrap());
            }
            (headers, got)
        }
    };
    let (_, got) = post("/ask").await;
    let echo: serde_json::Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(echo["body_length"], 12, "blue over HTTP/2");
    admin.set_split("api", 100.0).await;
    let (headers, _) = post("/echo").await;
    assert_eq!(headers["x-backend"], "green", "green over HTTP/1");
}

/// An HTTP/2 server that refuses every stream unprocessed
/// (`REFUSED_STREAM`); counts them.
async fn refusing_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let refused = Arc::new(AtomicUsize::new(0));
    let counted = refused.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let counted = counted.clone();
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((_, mut respond))) = connection.accept().await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    respond.send_reset(h2::Reason::REFUSED_STREAM);
                }
            });
        }
    });
    (addr, refused)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_stream_goes_to_another_endpoint_with_its_body() {
    let (refusing, refused) = refusing_upstream().await;
    let good = h2c_upstream().await;
    let gw = Gateway::start(&format!(
        "listeners: [{{address: \"{{proxy}}\"}}]\nadmin: {{address: \"{{admin}}\"}}\nroutes:\n  - name: api\n    blue: {{endpoints: [\"{refusing}\", \"{}\"], protocol: h2c}}\n    green: {{endpoints: [\"{}\"], protocol: h2c}}\n    health_check: {{protocol: tcp}}\n",
        good.addr, good.addr
    ));
    e2e::wait_listening(gw.proxy, Duration::from_secs(10));
    let client = h2c(&gw).await;
    for i in 0..6 {
        let (response, mut up) = client
            .clone()
            .ready()
            .await
            .unwrap()
            .send_request(request(&gw, "POST", "/ask"), false)
            .unwrap();
        send_all(&mut up, Bytes::from(vec![b'x'; 100 + i]), true).await;
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200, "call {i}");
        let mut body = response.into_body();
        let mut got = Vec::new();
        while let Some(data) = body.data().await {
            got.extend_from_slice(&data.unwrap());
        }
        let echo: serde_json::Value = serde_json::from_slice(&got).unwrap();
        assert_eq!(
            echo["body_length"],
            100 + i,
            "call {i}: the body sent again whole"
        );
    }
    assert!(
        refused.load(Ordering::SeqCst) >= 1,
        "the refusing endpoint was tried"
    );
}
