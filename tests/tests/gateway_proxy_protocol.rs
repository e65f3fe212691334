//! PROXY protocol on a listener: a TCP load balancer in front names the
//! client before the connection's bytes (before the TLS handshake on a TLS
//! listener); upstream sees that client in X-Forwarded-For. A connection
//! without the header is closed; other listeners take none.

use e2e::fake_k8s::TestCa;
use e2e::{one_route_config, Backend, Gateway};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use serde_json::Value;
use std::net::SocketAddr;
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one request on `stream` and returns the echoed request (or
/// `None` when the gateway closed the connection without an answer).
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) -> Option<Value> {
    stream
        .write_all(b"GET /echo HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    let body = text.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

fn forwarded_for(echoed: &Value) -> &str {
    echoed["headers"]["x-forwarded-for"].as_str().unwrap_or("")
}

fn v2_header(client: &str) -> Vec<u8> {
    use ppp::v2::{Builder, Command, Protocol, Version};
    let source: SocketAddr = client.parse().unwrap();
    let destination: SocketAddr = match source {
        SocketAddr::V4(_) => "10.0.0.1:443".parse().unwrap(),
        SocketAddr::V6(_) => "[2001:db8::1]:443".parse().unwrap(),
    };
    Builder::with_addresses(
        Version::Two | Command::Proxy,
        Protocol::Stream,
        (source, destination),
    )
    .build()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_load_balancers_client_is_the_client_on_plain_and_tls_listeners() {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca.leaf_named("shop");
    std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), key).unwrap();
    let tls_port = e2e::free_port();
    let plain_port = e2e::free_port();
    let config = one_route_config(&[&blue], &[&green], "").replace(
        "listeners: [{address: \"{proxy}\"}]",
        &format!(
            "listeners:\n  - {{address: \"{{proxy}}\"}}\n  - {{address: \"127.0.0.1:{plain_port}\", proxy_protocol: true}}\n  - {{address: \"127.0.0.1:{tls_port}\", proxy_protocol: true, tls: {{cert_file: \"{{dir}}/tls.crt\", key_file: \"{{dir}}/tls.key\"}}}}"
        ),
    );
    let gw = Gateway::start_in(dir, &config);
    let plain: SocketAddr = format!("127.0.0.1:{plain_port}").parse().unwrap();
    let tls: SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    e2e::wait_listening(tls, std::time::Duration::from_secs(5));

    // v1 on the plain listener.
    let mut tcp = TcpStream::connect(plain).await.unwrap();
    tcp.write_all(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 80\r\n")
        .await
        .unwrap();
    let echoed = echo(tcp).await.expect("answered");
    assert_eq!(forwarded_for(&echoed), "203.0.113.7");

    // v2 on the plain listener, the request in the same packet.
    let mut tcp = TcpStream::connect(plain).await.unwrap();
    let mut bytes = v2_header("198.51.100.9:40000");
    bytes.extend_from_slice(b"GET /echo HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n");
    tcp.write_all(&bytes).await.unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.contains("198.51.100.9"), "{text}");

    // v2 before the TLS handshake; the answer says https.
    let mut tcp = TcpStream::connect(tls).await.unwrap();
    tcp.write_all(&v2_header("[2001:db8::5]:40000"))
        .await
        .unwrap();
    let mut connector = SslConnector::builder(SslMethod::tls_client()).unwrap();
    connector.set_verify(SslVerifyMode::NONE);
    let ssl = connector
        .build()
        .configure()
        .unwrap()
        .into_ssl("shop")
        .unwrap();
    let mut stream = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    Pin::new(&mut stream)
        .connect()
        .await
        .expect("handshake after the header");
    let echoed = echo(stream).await.expect("answered over TLS");
    assert_eq!(forwarded_for(&echoed), "2001:db8::5");
    assert_eq!(echoed["headers"]["x-forwarded-proto"], "https");

    // Without the header: closed, nothing upstream. Other listeners take none.
    let tcp = TcpStream::connect(plain).await.unwrap();
    assert!(echo(tcp).await.is_none(), "served without a PROXY header");
    let tcp = TcpStream::connect(gw.proxy).await.unwrap();
    assert_eq!(forwarded_for(&echo(tcp).await.unwrap()), "127.0.0.1");
}
