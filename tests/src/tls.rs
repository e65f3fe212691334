//! TLS servers for the tests' own upstreams and fakes: a listener on a
//! fresh loopback port that completes each handshake and hands the
//! stream on, one task a connection.

use openssl::ssl::{Ssl, SslAcceptor, SslMethod};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

/// A TLS stream the server side accepted.
pub type TlsStream = tokio_openssl::SslStream<tokio::net::TcpStream>;

/// An acceptor serving `cert_pem`/`key_pem`; with `h2`, ALPN selects h2.
pub fn acceptor(cert_pem: &str, key_pem: &str, h2: bool) -> Arc<SslAcceptor> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    if h2 {
        builder.set_alpn_select_callback(|_, offered| {
            openssl::ssl::select_next_proto(b"\x02h2", offered)
                .ok_or(openssl::ssl::AlpnError::NOACK)
        });
    }
    builder
        .set_certificate(&openssl::x509::X509::from_pem(cert_pem.as_bytes()).unwrap())
        .unwrap();
    builder
        .set_private_key(&openssl::pkey::PKey::private_key_from_pem(key_pem.as_bytes()).unwrap())
        .unwrap();
    Arc::new(builder.build())
}

/// Listens on 127.0.0.1 (a fresh port, returned) and calls `serve` with
/// every connection whose handshake completed; a refused handshake (the
/// client did not trust the certificate) is dropped.
pub async fn serve<F, Fut>(acceptor: Arc<SslAcceptor>, serve: F) -> SocketAddr
where
    F: Fn(TlsStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, serve) = (acceptor.clone(), serve.clone());
            tokio::spawn(async move {
                let ssl = Ssl::new(acceptor.context()).unwrap();
                let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
                if Pin::new(&mut tls).accept().await.is_ok() {
                    serve(tls).await;
                }
            });
        }
    });
    addr
}
