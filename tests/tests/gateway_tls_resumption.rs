//! A client that comes back resumes its TLS session (a ticket in TLS 1.3, a
//! ticket or the session cache in TLS 1.2) instead of a full handshake: the
//! certificate is not sent again and no new key exchange is signed, which
//! is most of a new connection's cost at a front door.

use e2e::{Backend, Gateway};
use openssl::ssl::{SslConnector, SslMethod, SslSession, SslStream, SslVerifyMode, SslVersion};
use rcgen::{CertificateParams, KeyPair};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// A TLS connection, with `session` offered for resumption, that asks for
/// one response and reads it (TLS 1.3 tickets come after the handshake:
/// reading is when the client takes them), then closes cleanly.
fn get(
    gateway: SocketAddr,
    version: SslVersion,
    session: Option<&SslSession>,
) -> SslStream<TcpStream> {
    let mut builder = SslConnector::builder(SslMethod::tls()).unwrap();
    builder.set_verify(SslVerifyMode::NONE);
    builder.set_max_proto_version(Some(version)).unwrap();
    let mut ssl = builder
        .build()
        .configure()
        .unwrap()
        .into_ssl("web")
        .unwrap();
    if let Some(session) = session {
        // SAFETY: the session came from a connector of the same settings.
        unsafe { ssl.set_session(session).unwrap() };
    }
    let tcp = TcpStream::connect(gateway).unwrap();
    let mut tls = ssl.connect(tcp).unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.ends_with(b"blue\n") {
        let n = tls.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    // A clean close (close_notify): a session cut short is not resumed.
    let _ = tls.shutdown();
    tls
}

#[test]
fn a_returning_client_resumes_its_tls_session() {
    let blue = Backend::start("blue");
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["web".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).unwrap();
    let files = dir.path().display();
    let gw = Gateway::start(&format!(
        r#"listeners: [{{address: "{{proxy}}", tls: {{cert_file: "{files}/tls.crt", key_file: "{files}/tls.key"}}}}]
admin: {{address: "{{admin}}"}}
routes:
  - name: web
    blue: {{endpoints: ["{0}"]}}
    green: {{endpoints: ["{0}"]}}
"#,
        blue.addr
    ));
    for version in [SslVersion::TLS1_3, SslVersion::TLS1_2] {
        let first = get(gw.proxy, version, None);
        assert!(!first.ssl().session_reused());
        let session = first
            .ssl()
            .session()
            .expect("a session to resume")
            .to_owned();
        for _ in 0..3 {
            let again = get(gw.proxy, version, Some(&session));
            assert!(
                again.ssl().session_reused(),
                "{version:?}: the session was not resumed"
            );
        }
    }
}
