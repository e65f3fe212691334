//! The floor under the gateway: what its building blocks cost with nothing
//! of the gateway around them, measured by `tests/bench` beside the
//! gateway and its peers (the same allocator, one worker: a tokio
//! current-thread runtime, as each pingora worker is).
//!
//!   floor tcp-relay LISTEN UPSTREAM   a task per connection, a connect,
//!                                     bytes both ways (tokio's copy)
//!   floor h1-proxy LISTEN UPSTREAM    HTTP/1 keep-alive clients to an
//!                                     HTTP/1 upstream: each head parsed
//!                                     (httparse) and passed on as it came
//!                                     on a keep-alive connection of its
//!                                     client connection's
//!   floor h2-server LISTEN            the `h2` crate serving h2c, each
//!                                     stream answered at once with a
//!                                     head like nginx's and "ok"
//!   floor h2-relay LISTEN UPSTREAM    the `h2` crate on both sides: each
//!                                     stream passed to one h2c upstream
//!                                     connection, trailers included
//!   floor h2-proxy LISTEN UPSTREAM [CERT KEY]
//!                                     HTTP/2 clients (h2c, or TLS by
//!                                     OpenSSL with ALPN h2) to an HTTP/1
//!                                     upstream: each stream's head written
//!                                     as HTTP/1 on a keep-alive connection
//!                                     of its client connection's, the
//!                                     answer parsed (httparse) into the
//!                                     header map `h2` sends
//!
//! No routing, metrics, health checks or logs: a proxy built on these
//! parts costs at least this much per connection or request.

use bytes::Bytes;
use std::net::SocketAddr;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, listen, upstream, tls) = match &args[..] {
        [mode, listen] => (mode.as_str(), listen, None, None),
        [mode, listen, upstream] => (mode.as_str(), listen, Some(upstream), None),
        [mode, listen, upstream, cert, key] => (
            mode.as_str(),
            listen,
            Some(upstream),
            Some(acceptor(cert, key)),
        ),
        _ => usage(),
    };
    let upstream: Option<SocketAddr> = upstream.map(|u| u.parse().unwrap_or_else(|_| usage()));
    // A subscriber set, as in the gateway: built beside it, `tracing` has its
    // `log` feature (kube's), and without a subscriber every span of the
    // `h2` crate would be offered to `log` (~12,000 instructions a request).
    tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default())
        .expect("the first subscriber");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen.as_str())
            .await
            .unwrap_or_else(|e| panic!("listen on {listen}: {e}"));
        match (mode, upstream) {
            ("tcp-relay", Some(upstream)) => tcp_relay(listener, upstream).await,
            ("h1-proxy", Some(upstream)) => h1_proxy(listener, upstream).await,
            ("h2-server", None) => h2_server(listener).await,
            ("h2-relay", Some(upstream)) => h2_relay(listener, upstream).await,
            ("h2-proxy", Some(upstream)) => h2_proxy(listener, upstream, tls).await,
            _ => usage(),
        }
    });
}

fn usage() -> ! {
    eprintln!("usage: floor tcp-relay LISTEN UPSTREAM | h1-proxy LISTEN UPSTREAM | h2-server LISTEN | h2-relay LISTEN UPSTREAM | h2-proxy LISTEN UPSTREAM [CERT KEY]");
    std::process::exit(2)
}

async fn tcp_relay(listener: tokio::net::TcpListener, upstream: SocketAddr) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                return;
            };
            // Small buffers: tokio zeroes them per connection, which is the
            // copy's cost, not the runtime's.
            let _ = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut server, 1024, 1024)
                .await;
        });
    }
}

async fn h2_server(listener: tokio::net::TcpListener) {
    // nginx's answer for the benchmark's /small, less its `connection`.
    let mut head = http::Response::new(());
    for (name, value) in [
        ("server", "nginx/1.22.1"),
        ("date", "Mon, 07 Dec 2026 19:00:00 GMT"),
        ("content-type", "text/plain"),
        ("content-length", "2"),
        ("last-modified", "Mon, 07 Dec 2026 18:59:00 GMT"),
        ("etag", "\"6755a5cc-2\""),
        ("accept-ranges", "bytes"),
    ] {
        head.headers_mut()
            .insert(name, http::HeaderValue::from_static(value));
    }
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let head = head.clone();
        tokio::spawn(async move {
            let Ok(mut connection) = h2::server::handshake(client).await else {
                return;
            };
            while let Some(Ok((_request, mut respond))) = connection.accept().await {
                let response = http::Response::from_parts(head.clone().into_parts().0, ());
                if let Ok(mut body) = respond.send_response(response, false) {
                    let _ = body.send_data(Bytes::from_static(b"ok"), true);
                }
            }
        });
    }
}

async fn h2_relay(listener: tokio::net::TcpListener, upstream: SocketAddr) {
    let (sender, connection) = h2::client::handshake(
        tokio::net::TcpStream::connect(upstream)
            .await
            .unwrap_or_else(|e| panic!("connect to {upstream}: {e}")),
    )
    .await
    .expect("an h2c upstream");
    tokio::spawn(connection);
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let sender = sender.clone();
        tokio::spawn(async move {
            let Ok(mut connection) = h2::server::handshake(client).await else {
                return;
            };
            while let Some(Ok((request, respond))) = connection.accept().await {
                tokio::spawn(relay_stream(sender.clone(), request, respond));
            }
        });
    }
}

/// One stream: its head and body upstream, the answer's head, body and
/// trailers back.
async fn relay_stream(
    sender: h2::client::SendRequest<Bytes>,
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) -> Result<(), Error> {
    let (head, mut body) = request.into_parts();
    let mut sender = sender.ready().await?;
    let no_body = body.is_end_stream();
    let (response, mut up) = sender.send_request(http::Request::from_parts(head, ()), no_body)?;
    if !no_body {
        while let Some(data) = body.data().await {
            let data = data?;
            let _ = body.flow_control().release_capacity(data.len());
            up.send_data(data, body.is_end_stream())?;
        }
    }
    let (head, mut body) = response.await?.into_parts();
    let mut down =
        respond.send_response(http::Response::from_parts(head, ()), body.is_end_stream())?;
    while let Some(data) = body.data().await {
        let data = data?;
        let _ = body.flow_control().release_capacity(data.len());
        down.send_data(data, false)?;
    }
    match body.trailers().await? {
        Some(trailers) => down.send_trailers(trailers)?,
        None => down.send_data(Bytes::new(), true)?,
    }
    Ok(())
}

/// TLS as the benchmark's proxies serve it: the certificate and key given,
/// ALPN h2 only.
fn acceptor(cert: &str, key: &str) -> openssl::ssl::SslAcceptor {
    use openssl::ssl::{select_next_proto, AlpnError, SslAcceptor, SslFiletype, SslMethod};
    let mut tls = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("OpenSSL");
    tls.set_certificate_chain_file(cert)
        .unwrap_or_else(|e| panic!("{cert}: {e}"));
    tls.set_private_key_file(key, SslFiletype::PEM)
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    tls.set_alpn_select_callback(|_, offered| {
        select_next_proto(b"\x02h2", offered).ok_or(AlpnError::NOACK)
    });
    tls.build()
}

async fn h2_proxy(
    listener: tokio::net::TcpListener,
    upstream: SocketAddr,
    tls: Option<openssl::ssl::SslAcceptor>,
) {
    let tls = tls.map(std::sync::Arc::new);
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let Some(tls) = tls else {
                return h2_to_http1(client, upstream).await;
            };
            let ssl = openssl::ssl::Ssl::new(tls.context()).map_err(Error::from)?;
            let mut client = tokio_openssl::SslStream::new(ssl, client).map_err(Error::from)?;
            std::pin::Pin::new(&mut client)
                .accept()
                .await
                .map_err(Error::from)?;
            h2_to_http1(client, upstream).await
        });
    }
}

/// One client connection: each stream in turn (the benchmark's clients ask
/// one at a time) over one keep-alive upstream connection.
async fn h2_to_http1<T>(client: T, upstream: SocketAddr) -> Result<(), Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut connection = h2::server::handshake(client).await?;
    let mut server = tokio::net::TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = bytes::BytesMut::with_capacity(16 * 1024);
    while let Some(stream) = connection.accept().await {
        let (request, mut respond) = stream?;
        head.clear();
        let uri = request.uri();
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let authority = uri.authority().map_or("", |a| a.as_str());
        head.extend_from_slice(request.method().as_str().as_bytes());
        for piece in [" ", target, " HTTP/1.1\r\nhost: ", authority, "\r\n"] {
            head.extend_from_slice(piece.as_bytes());
        }
        for (name, value) in request.headers() {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        server.write_all(&head).await?;

        buf.clear();
        let (response, head_len, body_len) = loop {
            if server.read_buf(&mut buf).await? == 0 {
                return Err("the upstream closed".into());
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) = parsed.parse(&buf)? {
                let mut response = http::Response::new(());
                *response.status_mut() = http::StatusCode::from_u16(parsed.code.unwrap_or(502))?;
                let mut body_len = 0;
                for header in parsed.headers.iter() {
                    if header.name.eq_ignore_ascii_case("connection") {
                        continue;
                    }
                    if header.name.eq_ignore_ascii_case("content-length") {
                        body_len = std::str::from_utf8(header.value)?.parse()?;
                    }
                    response.headers_mut().append(
                        http::HeaderName::from_bytes(header.name.as_bytes())?,
                        http::HeaderValue::from_bytes(header.value)?,
                    );
                }
                break (response, head_len, body_len);
            }
        };
        while buf.len() < head_len + body_len {
            if server.read_buf(&mut buf).await? == 0 {
                return Err("the upstream closed".into());
            }
        }
        let body = buf
            .split_to(head_len + body_len)
            .split_off(head_len)
            .freeze();
        let end = body.is_empty();
        let mut sending = respond.send_response(response, end)?;
        if !end {
            sending.send_data(body, true)?;
        }
    }
    Ok(())
}

async fn h1_proxy(listener: tokio::net::TcpListener, upstream: SocketAddr) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(h1_to_http1(client, upstream));
    }
}

/// One client connection: each request (no body) passed on whole, and its
/// answer (a `content-length` body) passed back whole.
async fn h1_to_http1(mut client: tokio::net::TcpStream, upstream: SocketAddr) -> Result<(), Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    client.set_nodelay(true)?;
    let mut server = tokio::net::TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    let mut asked = bytes::BytesMut::with_capacity(4096);
    let mut answer = bytes::BytesMut::with_capacity(16 * 1024);
    loop {
        let request_len = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            if let httparse::Status::Complete(n) =
                httparse::Request::new(&mut headers).parse(&asked)?
            {
                break n;
            }
            if client.read_buf(&mut asked).await? == 0 {
                return Ok(());
            }
        };
        server.write_all(&asked.split_to(request_len)).await?;
        let response_len = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) = parsed.parse(&answer)? {
                let length = match parsed
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                {
                    Some(h) => std::str::from_utf8(h.value)?.parse::<usize>()?,
                    None => 0,
                };
                break head_len + length;
            }
            if server.read_buf(&mut answer).await? == 0 {
                return Err("the upstream closed".into());
            }
        };
        while answer.len() < response_len {
            if server.read_buf(&mut answer).await? == 0 {
                return Err("the upstream closed".into());
            }
        }
        client.write_all(&answer.split_to(response_len)).await?;
    }
}
