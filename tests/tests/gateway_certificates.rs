//! Listener certificates rotate without a restart: files replaced the way a
//! Kubernetes Secret volume replaces them are served within 2 s under load,
//! with no failed request; a broken, mismatched or expired pair is refused
//! and the served one stays; several certificates are chosen by SNI.

use e2e::{Admin, Backend, Gateway};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use rcgen::{CertificateParams, DnType, KeyPair};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A self-signed certificate (PEM) for `names`, its subject's common name
/// `cn` (what the tests read back to know which one was served).
fn certificate(cn: &str, names: &[&str], expired: bool) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    } else {
        params.not_after = rcgen::date_time_ymd(2031, 1, 1);
    }
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

/// A folder laid out as kubelet lays out a Secret volume: `tls.crt` and
/// `tls.key` are links through `..data`, which points at a versioned folder
/// and is replaced by one atomic rename.
struct SecretVolume {
    dir: std::path::PathBuf,
    versions: usize,
}

impl SecretVolume {
    fn new(dir: &Path, cert: &str, key: &str) -> SecretVolume {
        std::fs::create_dir_all(dir).unwrap();
        let mut volume = SecretVolume {
            dir: dir.to_owned(),
            versions: 0,
        };
        volume.publish(cert, key);
        for file in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{file}"), dir.join(file)).unwrap();
        }
        volume
    }

    fn publish(&mut self, cert: &str, key: &str) {
        self.versions += 1;
        let version = format!("..2026_12_06_{}", self.versions);
        std::fs::create_dir(self.dir.join(&version)).unwrap();
        std::fs::write(self.dir.join(&version).join("tls.crt"), cert).unwrap();
        std::fs::write(self.dir.join(&version).join("tls.key"), key).unwrap();
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }
}

fn connector(alpn: &[u8]) -> SslConnector {
    let mut builder = SslConnector::builder(SslMethod::tls()).unwrap();
    builder.set_verify(SslVerifyMode::NONE);
    builder.set_alpn_protos(alpn).unwrap();
    builder.build()
}

type Tls = tokio_openssl::SslStream<tokio::net::TcpStream>;

/// A TLS connection to `addr` asking for `server_name` (none: no SNI).
async fn connect(addr: SocketAddr, server_name: Option<&str>, alpn: &[u8]) -> Result<Tls, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut config = connector(alpn).configure().unwrap();
    config.set_use_server_name_indication(server_name.is_some());
    let ssl = config.into_ssl(server_name.unwrap_or("")).unwrap();
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    Pin::new(&mut tls)
        .connect()
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    Ok(tls)
}

/// The common name of the certificate the server presented.
fn served(tls: &Tls) -> String {
    let cert = tls.ssl().peer_certificate().unwrap();
    let cn = cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .unwrap();
    cn.data().to_string().unwrap()
}

/// One GET on the connection; Ok when a whole 200 response came back.
async fn get(tls: &mut Tls) -> Result<(), String> {
    tls.write_all(b"GET /echo HTTP/1.1\r\nHost: web\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tls
            .read(&mut byte)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("closed after {:?}", String::from_utf8_lossy(&head)));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(format!("answered {head:?}"));
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .ok_or("no content-length")?
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    tls.read_exact(&mut body)
        .await
        .map_err(|e| format!("body: {e}"))?;
    Ok(())
}

/// A TLS listener's config, and the backend behind it (kept by the test:
/// dropped, it stops).
fn tls_config(files: &str) -> (String, Backend) {
    let blue = Backend::start("blue");
    let config = format!(
        r#"listeners: [{{address: "{{proxy}}", tls: {files}}}]
admin: {{address: "{{admin}}"}}
routes:
  - name: web
    blue: {{endpoints: ["{}"]}}
    green: {{endpoints: ["{}"]}}
"#,
        blue.addr, blue.addr
    );
    (config, blue)
}

/// What the load saw: each new connection's certificate, in order, and
/// every failure.
#[derive(Default)]
struct Seen {
    served: Vec<(Instant, String)>,
    failures: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_within_two_seconds_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert1, key1) = certificate("generation-1", &["web.test"], false);
    let mut volume = SecretVolume::new(&dir.path().join("tls"), &cert1, &key1);
    let (config, _backend) =
        tls_config(r#"{cert_file: "{dir}/tls/tls.crt", key_file: "{dir}/tls/tls.key"}"#);
    let gw = Gateway::start_in(dir, &config);
    let admin = Admin::new(&gw);
    let addr = gw.proxy;

    // A keep-alive client, connected before any rotation, carries on.
    let mut kept = connect(addr, Some("web.test"), b"\x08http/1.1")
        .await
        .unwrap();
    assert_eq!(served(&kept), "generation-1");

    // Load: a new TLS connection every few milliseconds from 4 clients.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (seen, stop) = (seen.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let outcome = match connect(addr, Some("web.test"), b"\x08http/1.1").await {
                        Ok(mut tls) => get(&mut tls).await.map(|()| served(&tls)),
                        Err(e) => Err(e),
                    };
                    match outcome {
                        Ok(cn) => seen.lock().unwrap().served.push((Instant::now(), cn)),
                        Err(e) => seen.lock().unwrap().failures.push(e),
                    }
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            })
        })
        .collect();
    let keep_alive = async {
        let mut answered = 0;
        for _ in 0..100 {
            get(&mut kept)
                .await
                .expect("the open connection carries on");
            answered += 1;
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        answered
    };
    let scenario = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // cert-manager renews: a new pair behind the same paths.
        let (cert2, key2) = certificate("generation-2", &["web.test"], false);
        let rotated = Instant::now();
        volume.publish(&cert2, &key2);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let last_old = seen
            .lock()
            .unwrap()
            .served
            .iter()
            .filter(|(_, cn)| cn == "generation-1")
            .map(|(at, _)| *at)
            .max()
            .unwrap();
        let took = last_old.saturating_duration_since(rotated);
        println!("the last handshake with the old certificate: {took:?} after the rotation");
        assert!(
            took < Duration::from_secs(2),
            "old certificate served {took:?} after rotation"
        );

        // A key that is not the certificate's, then an expired pair: refused.
        let (cert3, _) = certificate("generation-3", &["web.test"], false);
        let (_, other_key) = certificate("other", &["web.test"], false);
        let refused_at = Instant::now();
        volume.publish(&cert3, &other_key);
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let (cert4, key4) = certificate("generation-4", &["web.test"], true);
        volume.publish(&cert4, &key4);
        tokio::time::sleep(Duration::from_millis(2000)).await;
        refused_at
    };
    let (answered, refused_at) = tokio::join!(keep_alive, scenario);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(answered, 100);
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    println!(
        "{} new TLS connections answered, {} failed",
        seen.served.len(),
        seen.failures.len()
    );
    assert!(seen.failures.is_empty(), "failed: {:?}", seen.failures);
    assert!(
        seen.served.len() > 300,
        "only {} connections",
        seen.served.len()
    );
    let after_refusal: Vec<_> = seen
        .served
        .iter()
        .filter(|(at, _)| *at > refused_at)
        .map(|(_, cn)| cn.as_str())
        .collect();
    assert!(after_refusal.len() > 100);
    assert!(
        after_refusal.iter().all(|cn| *cn == "generation-2"),
        "a refused pair was served"
    );
    assert_eq!(served(&kept), "generation-1");
    let log = gw.log_text();
    assert!(log.contains("is not the key of the certificate"), "{log}");
    assert!(log.contains("the certificate has expired"), "{log}");

    // The admin reload says why, names the file, and changes nothing.
    let resp = admin.post("/v1/reload").await;
    assert_eq!(resp.status(), 400);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("tls/tls.crt: the certificate has expired"),
        "{body}"
    );
    let tls = connect(addr, Some("web.test"), b"\x08http/1.1")
        .await
        .unwrap();
    assert_eq!(served(&tls), "generation-2");

    // Metrics: reloads counted, the expiry of what is served (2031-01-01).
    let metrics = admin.metrics().await;
    let value = |prefix: &str| -> f64 {
        e2e::metric_value(&metrics, prefix).unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
    };
    assert_eq!(
        value("gateway_tls_certificate_expiry_timestamp_seconds{"),
        1_924_992_000.0
    );
    assert!(value("gateway_tls_certificate_reloads_total{listener=") >= 1.0);
    assert!(metrics.contains("result=\"refused\""), "{metrics}");
}

#[tokio::test]
async fn certificates_are_chosen_by_server_name_and_sighup_rereads_the_config() {
    let dir = tempfile::tempdir().unwrap();
    for (file, cn, names) in [
        ("default", "default", &["default.test"][..]),
        ("api", "api", &["api.test", "www.api.test"][..]),
        ("wild", "wild", &["*.green.test"][..]),
        ("next", "next-default", &["default.test"][..]),
    ] {
        let (cert, key) = certificate(cn, names, false);
        std::fs::write(dir.path().join(format!("{file}.crt")), cert).unwrap();
        std::fs::write(dir.path().join(format!("{file}.key")), key).unwrap();
    }
    let files = r#"{cert_file: "{dir}/default.crt", key_file: "{dir}/default.key", sni: [{cert_file: "{dir}/api.crt", key_file: "{dir}/api.key"}, {cert_file: "{dir}/wild.crt", key_file: "{dir}/wild.key"}]}"#;
    let (config, _backend) = tls_config(files);
    let gw = Gateway::start_in(dir, &config);
    let addr = gw.proxy;
    for (name, expected) in [
        (Some("api.test"), "api"),
        (Some("WWW.API.test"), "api"),
        (Some("a.green.test"), "wild"),
        (Some("a.b.green.test"), "default"),
        (Some("green.test"), "default"),
        (Some("other.test"), "default"),
        (None, "default"),
    ] {
        let mut tls = connect(addr, name, b"\x08http/1.1").await.unwrap();
        assert_eq!(served(&tls), expected, "server name {name:?}");
        get(&mut tls).await.unwrap();
    }
    // A client that comes back resumes its session (TLS 1.3 ticket),
    // though each handshake switches to the certificate's own context.
    let mut first = connect(addr, Some("api.test"), b"\x08http/1.1")
        .await
        .unwrap();
    get(&mut first).await.unwrap();
    let session = first.ssl().session().expect("a session").to_owned();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut ssl = connector(b"\x08http/1.1")
        .configure()
        .unwrap()
        .into_ssl("api.test")
        .unwrap();
    // SAFETY: the session comes from a connection of the same connector settings.
    unsafe { ssl.set_session(&session).unwrap() };
    let mut again = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    Pin::new(&mut again).connect().await.unwrap();
    assert!(again.ssl().session_reused(), "the session was not resumed");
    assert_eq!(served(&again), "api");
    get(&mut again).await.unwrap();

    // HTTP/2 is still negotiated on a certificate chosen by name.
    let tls = connect(addr, Some("api.test"), b"\x02h2\x08http/1.1")
        .await
        .unwrap();
    assert_eq!(tls.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));

    // `gateway check` refuses a key that is not its certificate's, naming it.
    let bad = std::fs::read_to_string(gw.config_path())
        .unwrap()
        .replace("api.key", "wild.key");
    let bad_path = gw.dir.path().join("bad.yaml");
    std::fs::write(&bad_path, bad).unwrap();
    let out = std::process::Command::new(e2e::bin("gateway"))
        .args(["check", "--config"])
        .arg(&bad_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("listeners[0].tls.sni[0].key_file"),
        "{stderr}"
    );
    assert!(
        stderr.contains("is not the key of the certificate"),
        "{stderr}"
    );

    // Another default certificate in the config, then SIGHUP: served.
    let next = std::fs::read_to_string(gw.config_path())
        .unwrap()
        .replace("default.crt", "next.crt")
        .replace("default.key", "next.key");
    std::fs::write(gw.config_path(), next).unwrap();
    gw.proc.as_ref().unwrap().signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let tls = connect(addr, None, b"\x08http/1.1").await.unwrap();
        if served(&tls) == "next-default" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not apply the new certificate"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
