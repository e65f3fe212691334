//! TCP routes and TLS passthrough: connections split per client address by
//! the same split document (30% ± 4 of 1,000 distinct clients on green, a
//! client never moving back), open connections flowing across split
//! changes, an emergency moving new ones at once; a passthrough listener
//! routing by server name a TLS it never ends, and bad clients closed and
//! counted without disturbing anyone.

use e2e::{metric_value, Admin, Backend, Gateway};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// A connection from `source` (a 127/8 address): the colour it met.
async fn connect_from(
    gateway: SocketAddr,
    source: Ipv4Addr,
) -> (String, BufReader<tokio::net::TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source.into(), 0)).unwrap();
    let stream = socket.connect(gateway).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line))
        .await
        .expect("the upstream greets")
        .unwrap();
    (line.trim().to_owned(), reader)
}

fn source(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 1 + (i / 250 % 250) as u8, (i % 250) as u8 + 1, 7)
}

struct Tcp {
    gw: Gateway,
    admin: Admin,
    listen: SocketAddr,
    _web: [Backend; 2],
}

async fn topology() -> Tcp {
    let (blue, green) = (
        e2e::tcp_greeter("blue").await,
        e2e::tcp_greeter("green").await,
    );
    let web = [Backend::start("blue"), Backend::start("green")];
    let listen: SocketAddr = format!("127.0.0.1:{}", e2e::free_port()).parse().unwrap();
    let config = format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
routes:
  - name: web
    blue: {{endpoints: ["{}"]}}
    green: {{endpoints: ["{}"]}}
  - name: db
    tcp: {{listen: "{listen}", idle_timeout: 30s}}
    blue: {{endpoints: ["{blue}"]}}
    green: {{endpoints: ["{green}"]}}
    health_check: {{interval: 200ms, timeout: 200ms, healthy_threshold: 1}}
"#,
        web[0].addr, web[1].addr
    );
    let gw = Gateway::start(&config);
    e2e::wait_listening(listen, Duration::from_secs(10));
    let admin = Admin::new(&gw);
    Tcp {
        gw,
        admin,
        listen,
        _web: web,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_split_by_client_address_and_never_move_back() {
    let t = topology().await;
    // An open connection at split 0 keeps flowing whatever the split does.
    let (color, mut open) = connect_from(t.listen, source(5000)).await;
    assert_eq!(color, "blue");
    t.admin.set_split("db", 30.0).await;
    let mut green = 0;
    let mut colors = Vec::new();
    for i in 0..1000 {
        let (color, _) = connect_from(t.listen, source(i)).await;
        green += usize::from(color == "green");
        colors.push(color);
    }
    assert!(
        (260..=340).contains(&green),
        "30% ± 4 of 1,000 clients on green, got {green}"
    );
    // The same client lands the same way again; raising the split moves
    // clients blue→green only.
    t.admin.set_split("db", 60.0).await;
    for (i, before) in colors.iter().enumerate().take(300) {
        let (now, _) = connect_from(t.listen, source(i as u32)).await;
        assert!(
            !(before == "green" && now == "blue"),
            "client {i} moved back to blue"
        );
    }
    t.admin.set_split("db", 100.0).await;
    open.get_mut().write_all(b"still here\n").await.unwrap();
    let mut line = String::new();
    open.read_line(&mut line).await.unwrap();
    assert_eq!(
        line, "still here\n",
        "an open connection flows across split changes"
    );
    // An emergency moves new connections at once; the HTTP route too.
    let admin_url = t.gw.admin_url("");
    let cutover = e2e::Cutover::new(t.gw.dir.path());
    let (code, _, stderr) = cutover
        .emergency("blue", ["--gateway", &admin_url], "green broke")
        .await;
    assert_eq!(code, 0, "{stderr}");
    for i in 0..50 {
        assert_eq!(connect_from(t.listen, source(i)).await.0, "blue");
    }
    // Half-close: the client ends its sending, the answer still comes back.
    let (_, mut half) = connect_from(t.listen, source(1)).await;
    half.get_mut().write_all(b"last words\n").await.unwrap();
    half.get_mut().shutdown().await.unwrap();
    let mut rest = String::new();
    half.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "last words\n");

    let metrics = t.admin.metrics().await;
    let ok = |color: &str| {
        metric_value(
            &metrics,
            &format!(
                "gateway_tcp_connections_total{{color=\"{color}\",result=\"ok\",route=\"db\"}}"
            ),
        )
        .unwrap_or(0.0)
    };
    assert!(ok("blue") + ok("green") >= 1300.0, "{metrics}");
    assert!(metrics
        .contains("gateway_tcp_connect_duration_seconds_count{color=\"green\",route=\"db\"}"));
    assert!(
        metric_value(
            &metrics,
            "gateway_tcp_bytes_total{color=\"blue\",direction=\"in\",route=\"db\"}"
        )
        .unwrap()
            > 0.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_endpoint_is_skipped_and_a_colour_without_any_fails_over() {
    let (blue, _green) = (
        e2e::tcp_greeter("blue").await,
        e2e::tcp_greeter("green").await,
    );
    let dead = format!("127.0.0.1:{}", e2e::free_port());
    let listen: SocketAddr = format!("127.0.0.1:{}", e2e::free_port()).parse().unwrap();
    let config = format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
routes:
  - name: db
    tcp: {{listen: "{listen}"}}
    initial_green_percent: 100
    blue: {{endpoints: ["{blue}"]}}
    green: {{endpoints: ["{dead}"]}}
    health_check: {{interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 1}}
"#
    );
    let _gw = Gateway::start(&config);
    e2e::wait_listening(listen, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(800)).await; // green found down
    for i in 0..10 {
        assert_eq!(
            connect_from(listen, source(i)).await.0,
            "blue",
            "failed over to blue"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_passes_through_by_server_name_and_bad_hellos_are_closed() {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let cert = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    };
    let service = |name: &'static str, (c, k): (String, String)| async move {
        e2e::tls::serve(
            e2e::tls::acceptor(&c, &k, false),
            move |mut tls| async move {
                let _ = tls.write_all(format!("{name}\n").as_bytes()).await;
                let _ = tls.shutdown().await;
            },
        )
        .await
    };
    let shop = service("shop blue", cert("shop.test")).await;
    let shop_green = service("shop green", cert("shop.test")).await;
    let api = service("api blue", cert("eu.api.test")).await;
    let listen: SocketAddr = format!("127.0.0.1:{}", e2e::free_port()).parse().unwrap();
    let config = format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
routes:
  - name: shop
    tcp: {{listen: "{listen}", sni: [shop.test]}}
    blue: {{endpoints: ["{shop}"]}}
    green: {{endpoints: ["{shop_green}"]}}
  - name: api
    tcp: {{listen: "{listen}", sni: ["*.api.test"]}}
    blue: {{endpoints: ["{api}"]}}
    green: {{endpoints: ["{api}"]}}
"#
    );
    let gw = Gateway::start(&config);
    e2e::wait_listening(listen, Duration::from_secs(10));
    let admin = Admin::new(&gw);
    let hello = |name: Option<&'static str>| async move {
        let tcp = tokio::net::TcpStream::connect(listen).await.unwrap();
        let mut connector = SslConnector::builder(SslMethod::tls()).unwrap();
        connector.set_verify(SslVerifyMode::NONE);
        let mut config = connector.build().configure().unwrap();
        config.set_use_server_name_indication(name.is_some());
        let ssl = config.into_ssl(name.unwrap_or("ignored")).unwrap();
        let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
        std::pin::Pin::new(&mut tls).connect().await.ok()?;
        let subject = tls
            .ssl()
            .peer_certificate()
            .map(|c| format!("{:?}", c.subject_alt_names()));
        let mut text = String::new();
        let _ = tls.read_to_string(&mut text).await;
        Some((text, subject.unwrap_or_default()))
    };
    let (text, san) = hello(Some("shop.test")).await.unwrap();
    assert_eq!(text, "shop blue\n");
    assert!(
        san.contains("shop.test"),
        "the backend's own certificate: {san}"
    );
    assert_eq!(hello(Some("eu.api.test")).await.unwrap().0, "api blue\n");
    admin.set_split("shop", 100.0).await;
    assert_eq!(hello(Some("shop.test")).await.unwrap().0, "shop green\n");
    // No server name and no default route; a name nobody serves; garbage.
    assert!(hello(None).await.is_none());
    assert!(hello(Some("other.test")).await.is_none());
    let mut junk = tokio::net::TcpStream::connect(listen).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = junk.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "closed without an answer");
    assert_eq!(
        hello(Some("shop.test")).await.unwrap().0,
        "shop green\n",
        "still serving"
    );
    let metrics = admin.metrics().await;
    for reason in ["no_sni", "unknown_sni", "bad_client_hello"] {
        let value = metric_value(
            &metrics,
            &format!("gateway_tcp_rejected_total{{listener=\"{listen}\",reason=\"{reason}\"}}"),
        );
        assert_eq!(value, Some(1.0), "{reason}");
    }
}

/// A TCP route with `idle_timeout: 1s` and `timeouts.connect: 500ms`: blue's
/// endpoint never completes a handshake, green's greets.
async fn timed_route() -> (Gateway, SocketAddr, tokio::net::TcpListener) {
    // Backlog 0 holds one connection nobody accepts; the kernel drops the
    // SYNs that come after it, so a connect waits until it gives up.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let silent = socket.listen(0).unwrap();
    let unanswering = silent.local_addr().unwrap();
    for _ in 0..2 {
        let _ = std::net::TcpStream::connect_timeout(&unanswering, Duration::from_millis(200))
            .map(std::mem::forget);
    }
    let green = e2e::tcp_greeter("green").await;
    let listen: SocketAddr = format!("127.0.0.1:{}", e2e::free_port()).parse().unwrap();
    let config = format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
routes:
  - name: db
    tcp: {{listen: "{listen}", idle_timeout: 1s}}
    blue: {{endpoints: ["{unanswering}"]}}
    green: {{endpoints: ["{green}"]}}
    timeouts: {{connect: 500ms}}
    health_check: {{interval: 1h, unhealthy_threshold: 100}}
"#
    );
    let gw = Gateway::start(&config);
    e2e::wait_listening(listen, Duration::from_secs(10));
    (gw, listen, silent)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connect_that_hangs_is_given_up_and_a_quiet_connection_closed() {
    let (_gw, listen, _silent) = timed_route().await;
    // Blue never answers: after the connect timeout the connection fails
    // over to green.
    let asked = std::time::Instant::now();
    let (color, mut quiet) = connect_from(listen, source(1)).await;
    let (waited, quiet_since) = (asked.elapsed(), std::time::Instant::now());
    assert_eq!(color, "green");
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_millis(2500),
        "the connect to blue given up after 500ms (up to a sweep late), took {waited:?}"
    );
    // A connection that keeps talking outlives the idle timeout; a quiet
    // one is closed after it.
    let (_, mut busy) = connect_from(listen, source(2)).await;
    let closed = tokio::spawn(async move {
        let mut rest = Vec::new();
        let _ = quiet.read_to_end(&mut rest).await;
        quiet_since.elapsed()
    });
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        busy.get_mut()
            .write_all(format!("{i}\n").as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        busy.read_line(&mut line).await.unwrap();
        assert_eq!(line, format!("{i}\n"), "a busy connection stays open");
    }
    let closed = tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("the quiet connection is closed")
        .unwrap();
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_millis(2500),
        "closed 1s after its last byte (up to half a second late), took {closed:?}"
    );
}

/// Echoes one line on `connection` and says whether it came back.
async fn echoes(connection: &mut BufReader<tokio::net::TcpStream>, text: &str) -> bool {
    if connection
        .get_mut()
        .write_all(text.as_bytes())
        .await
        .is_err()
    {
        return false;
    }
    let mut line = String::new();
    let read = connection.read_line(&mut line);
    matches!(
        tokio::time::timeout(Duration::from_secs(5), read).await,
        Ok(Ok(_))
    ) && line == text
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drain_closes_the_colours_connections_at_its_deadline() {
    let t = topology().await;
    let (color, mut on_blue) = connect_from(t.listen, source(1)).await;
    assert_eq!(color, "blue");
    for route in ["web", "db"] {
        t.admin.set_split(route, 100.0).await;
    }
    let (color, mut on_green) = connect_from(t.listen, source(2)).await;
    assert_eq!(color, "green");

    // The route's idle check runs every 5 s here (a quarter of its 30 s,
    // at most 5 s): the drain is seen on that tick and its deadline kept.
    let drained = t
        .admin
        .client
        .post(t.gw.admin_url("/v1/drain"))
        .bearer_auth(e2e::TOKEN)
        .json(&serde_json::json!({"color": "blue", "deadline_seconds": 6}))
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status(), 200, "{}", drained.text().await.unwrap());
    let since = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        echoes(&mut on_blue, "before the deadline\n").await,
        "a draining colour's connection flows until the deadline"
    );
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), on_blue.read_to_end(&mut rest));
    assert!(closed.await.is_ok(), "the blue connection is closed");
    let took = since.elapsed();
    assert!(
        took >= Duration::from_millis(5500) && took < Duration::from_millis(7500),
        "closed at the 6 s deadline (up to a sweep late), took {took:?}"
    );
    assert!(
        echoes(&mut on_green, "green goes on\n").await,
        "the other colour's connection is not touched"
    );
    let state = t.admin.state().await;
    assert_eq!(state["colors"]["blue"]["in_flight"], 0, "{state}");
}
