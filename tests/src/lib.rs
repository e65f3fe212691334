//! Helpers for the end-to-end tests: start the real binaries on loopback,
//! wait for them, talk to their admin APIs, and stop them.
//!
//! The binaries are built by the README's test command before the tests
//! run; a test that cannot find one fails (it never skips).

pub mod browser;
pub mod docs;
pub mod fake_arm;
pub mod fake_k8s;
pub mod fake_kube;
pub mod report;
pub mod tls;
pub mod tmpfs;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-admin-token";

/// Path of a workspace binary in the same profile as the tests.
pub fn bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let path = target.join(profile).join(name);
    assert!(
        path.exists(),
        "binary {} not found: build it first with `cargo build --workspace --bins` (the README's test command does)",
        path.display()
    );
    path
}

/// A folder of `../shared/fixtures` (beside the repository), or `None`
/// with a printed reason where it is absent.
pub fn shared_fixtures(sub: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(sub);
    if dir.exists() {
        Some(dir)
    } else {
        println!(
            "SKIPPED: {} is absent (the shared fixtures sit beside the repository)",
            dir.display()
        );
        None
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `addr`.
pub fn wait_listening(addr: SocketAddr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listening on {addr} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn is_listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal (e.g. "TERM", "HUP") with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP/2 client that speaks h2c with prior knowledge, as gRPC clients
/// do on a plain port.
pub fn h2c_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// A running `sample-backend`.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    extra: Vec<String>,
    proc: Option<Proc>,
}

impl Backend {
    pub fn start(name: &str) -> Backend {
        Backend::start_with(name, &[])
    }

    /// Starts with extra flags, e.g. `["--error-rate", "0.2"]`.
    pub fn start_with(name: &str, extra: &[&str]) -> Backend {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        Backend::start_at(name, addr, extra)
    }

    /// Starts on a chosen loopback address (e.g. `127.0.0.2:PORT`, for
    /// several addresses behind one name).
    pub fn start_at(name: &str, addr: SocketAddr, extra: &[&str]) -> Backend {
        let mut b = Backend {
            name: name.into(),
            addr,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            proc: None,
        };
        b.restart();
        b
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts again on the same address.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(bin("sample-backend"))
            .args(["--listen", &self.addr.to_string(), "--name", &self.name])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.proc = Some(Proc { child });
        wait_listening(self.addr, Duration::from_secs(10));
    }

    /// The backend's own counters (`/stats`).
    pub async fn stats(&self) -> serde_json::Value {
        reqwest::get(format!("http://{}/stats", self.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// A running `gateway` with its config in a temporary directory.
pub struct Gateway {
    /// The admin token the process gets in `GATEWAY_ADMIN_TOKEN`, if any.
    pub token: Option<String>,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    pub proc: Option<Proc>,
    pub log: PathBuf,
}

impl Gateway {
    /// Writes `config` (YAML, with `{proxy}` and `{admin}` placeholders
    /// filled in) and starts the gateway on fresh ports.
    pub fn start(config: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        Gateway::start_in(dir, config)
    }

    pub fn start_in(dir: tempfile::TempDir, config: &str) -> Gateway {
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        Gateway::start_with_admin(dir, config, admin)
    }

    /// Starts with the admin API on `admin` (replicas found through a
    /// headless Service share one admin port, each on its own address).
    pub fn start_with_admin(dir: tempfile::TempDir, config: &str, admin: SocketAddr) -> Gateway {
        let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = config
            .replace("{proxy}", &proxy.to_string())
            .replace("{admin}", &admin.to_string())
            .replace("{dir}", &dir.path().display().to_string());
        std::fs::write(dir.path().join("gateway.yaml"), config).unwrap();
        let log = dir.path().join("gateway.log");
        let mut g = Gateway {
            token: Some(TOKEN.to_owned()),
            proxy,
            admin,
            dir,
            proc: None,
            log,
        };
        g.restart();
        g
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("gateway.yaml")
    }

    /// (Re)starts the process with the same config and ports.
    pub fn restart(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
        let mut command = self.command();
        command.stderr(std::fs::File::create(&self.log).unwrap());
        self.proc = Some(Proc {
            child: command.spawn().unwrap(),
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(is_listening(self.admin) && is_listening(self.proxy)) {
            if let Some(status) = self.proc.as_mut().unwrap().child.try_wait().unwrap() {
                panic!("gateway exited with {status}:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not start:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The gateway command line for this config, not yet started.
    pub fn command(&self) -> Command {
        let mut command = Command::new(bin("gateway"));
        command
            .arg("--config")
            .arg(self.config_path())
            .env_remove("GATEWAY_ADMIN_TOKEN")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null());
        if let Some(token) = &self.token {
            command.env("GATEWAY_ADMIN_TOKEN", token);
        }
        command
    }

    /// Kills the process the hard way (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }
}

/// The admin API of one gateway.
pub struct Admin {
    pub base: String,
    pub client: reqwest::Client,
}

impl Admin {
    pub fn new(gateway: &Gateway) -> Admin {
        Admin {
            base: gateway.admin_url(""),
            client: reqwest::Client::new(),
        }
    }

    pub async fn state(&self) -> serde_json::Value {
        crate::get_json(&self.client, &format!("{}/v1/state", self.base)).await
    }

    /// `POST path` with the test token and no body (e.g. `/v1/reload`).
    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{}", self.base, path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// `PUT /v1/routes/{route}/split` with the test token and `body`.
    pub async fn put_split(&self, route: &str, body: serde_json::Value) -> reqwest::Response {
        self.put(&format!("/v1/routes/{route}/split"), Some(TOKEN), body)
            .await
    }

    /// Sets one route's split with the test token; panics unless 200.
    pub async fn set_split(&self, route: &str, percent: f64) -> serde_json::Value {
        let resp = self
            .put_split(route, serde_json::json!({ "green_percent": percent }))
            .await;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "set split {percent}: {body}");
        body
    }

    pub async fn put(
        &self,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .put(format!("{}{}", self.base, path))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The standard one-route config used by most tests, with the given blue
/// and green endpoints and extra route-level YAML (indented 4 spaces).
pub fn one_route_config(blue: &[&Backend], green: &[&Backend], route_extra: &str) -> String {
    let list = |bs: &[&Backend]| quoted_list(bs.iter().map(|b| b.addr));
    format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
threads: 2
routes:
  - name: web
    blue: {{endpoints: [{}]}}
    green: {{endpoints: [{}]}}
    health_check: {{path: /healthz, interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 2}}
{route_extra}
"#,
        list(blue),
        list(green)
    )
}

/// [`one_route_config`] with pins honoured from loopback, as the cutover
/// tests' smoke checks need.
pub fn pinned_config(blue: &[&Backend], green: &[&Backend], route_extra: &str) -> String {
    one_route_config(blue, green, route_extra).replace(
        "routes:",
        "pin: {trusted_sources: [\"127.0.0.0/8\"]}\nroutes:",
    )
}

/// Continuous client load through a gateway: distinct client keys, a few
/// keep-alive workers, counting failures.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<(u64, u64)>>,
}

impl Load {
    /// `workers` loops, each pausing `pause` between requests.
    pub fn start(url: String, workers: usize, pause: Duration) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers = (0..workers)
            .map(|w| {
                let (stop, url) = (stop.clone(), url.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let (mut ok, mut failed) = (0u64, 0u64);
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        i += 1;
                        let res = client
                            .get(&url)
                            .header("x-client-id", format!("load-{w}-{i}"))
                            .send()
                            .await;
                        match res {
                            Ok(r) if r.status().is_success() => ok += 1,
                            _ => failed += 1,
                        }
                        tokio::time::sleep(pause).await;
                    }
                    (ok, failed)
                })
            })
            .collect();
        Load { stop, workers }
    }

    /// Stops and returns (ok, failed).
    pub async fn stop(self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut total = (0, 0);
        for w in self.workers {
            let (ok, failed) = w.await.unwrap();
            total.0 += ok;
            total.1 += failed;
        }
        total
    }
}

/// `emergency --to TO TARGET --reason REASON --yes`; `target` is
/// `["--gateway", admin_url]` or `["--plan", plan_path]`.
pub fn emergency_args<'a>(to: &'a str, target: [&'a str; 2], reason: &'a str) -> [&'a str; 8] {
    [
        "emergency",
        "--to",
        to,
        target[0],
        target[1],
        "--reason",
        reason,
        "--yes",
    ]
}

/// GET `url`: its JSON body (panics unless it answers with JSON).
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// Runs the `cutover` binary with the test token and a journal in `dir`.
pub struct Cutover {
    pub dir: PathBuf,
}

impl Cutover {
    pub fn new(dir: &Path) -> Cutover {
        Cutover {
            dir: dir.to_owned(),
        }
    }

    pub fn journal(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(bin("cutover"));
        c.args(args)
            .arg("--journal")
            .arg(self.journal())
            .env("GATEWAY_ADMIN_TOKEN", TOKEN)
            .env_remove("CUTOVER_FAILPOINT")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs to the end; (exit code, stdout, stderr).
    pub async fn output(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command(args).output().await.unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `cutover emergency` ([`emergency_args`]).
    pub async fn emergency(
        &self,
        to: &str,
        target: [&str; 2],
        reason: &str,
    ) -> (i32, String, String) {
        self.output(&emergency_args(to, target, reason)).await
    }

    /// Every journal record so far.
    pub fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.journal())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until a record satisfies `pred` (10 s at most), returning it.
    pub async fn wait_for(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(r) = self.records().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} in the journal: {:#?}",
                self.records()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Blue and green sample backends behind one gateway (pins honoured from
/// loopback, route `web`), and the `cutover` CLI with its journal in a
/// folder of its own: what most cutover tests start from.
pub struct Topology {
    pub blue: Backend,
    pub green: Backend,
    pub gw: Gateway,
    pub admin: Admin,
    pub cutover: Cutover,
    pub dir: tempfile::TempDir,
}

impl Topology {
    /// `route_extra`: more YAML lines for the route (e.g. stickiness).
    pub fn start(route_extra: &str) -> Topology {
        Topology::with_green(Backend::start("green"), route_extra)
    }

    /// With a green of the test's own (e.g. one that misbehaves).
    pub fn with_green(green: Backend, route_extra: &str) -> Topology {
        let blue = Backend::start("blue");
        let gw = Gateway::start(&pinned_config(&[&blue], &[&green], route_extra));
        let admin = Admin::new(&gw);
        let dir = tempfile::tempdir().unwrap();
        let cutover = Cutover::new(dir.path());
        Topology {
            blue,
            green,
            gw,
            admin,
            cutover,
            dir,
        }
    }

    /// Writes a [`test_plan`] for this gateway; returns its path.
    pub fn plan(&self, steps: &str, gates: &str) -> String {
        let path = self.dir.path().join("plan.yaml");
        std::fs::write(
            &path,
            test_plan(&[self.gw.admin_url("")], self.gw.proxy, steps, gates),
        )
        .unwrap();
        path.display().to_string()
    }

    /// Client load on the gateway: 4 workers, 10 ms apart.
    pub fn load(&self) -> Load {
        Load::start(self.gw.url("/"), 4, Duration::from_millis(10))
    }

    /// Route `web`'s split as the gateway serves it.
    pub async fn split(&self) -> f64 {
        self.admin.state().await["routes"]["web"]["green_percent"]
            .as_f64()
            .unwrap()
    }
}

/// The value of the first sample in a `/metrics` text whose line starts
/// with `prefix` (a name, or a name and the start of its labels).
pub fn metric_value(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse().expect("a sample value"))
}

/// Items in double quotes, comma-separated: the inside of a YAML flow list.
pub fn quoted_list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|item| format!("\"{item}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A plan for the tests: fast steps and gates, over one route `web`;
/// `gates` adds or overrides gate fields (", name: value, ...").
pub fn test_plan(admin_urls: &[String], proxy: SocketAddr, steps: &str, gates: &str) -> String {
    format!(
        r#"fleet:
  admin_urls: [{}]
  proxy_url: "http://{proxy}"
routes: [web]
steps: {steps}
gates: {{interval: 500ms, window: 3s, {min}success_rate: 0.95, p99_latency: 2s, failure_limit: 2{gates}}}
smoke:
  - {{name: echo, path: /echo, expect_status: 200, expect_body: green}}
convergence_timeout: 3s
lock_ttl: 10s
"#,
        quoted_list(admin_urls),
        min = if gates.contains("min_requests") {
            ""
        } else {
            "min_requests: 5, "
        },
    )
}

/// An HTTP/1 server (hyper) on a fresh loopback port: every request, its
/// body read whole, is answered by `handle`. For the tests' own upstreams,
/// webhook receivers and admin-API stand-ins.
pub async fn http_server<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(http::Request<bytes::Bytes>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = http::Response<http_body_util::Full<bytes::Bytes>>>
        + Send
        + 'static,
{
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let handle = handle.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let handle = handle.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await?.to_bytes();
                            Ok::<_, hyper::Error>(
                                handle(http::Request::from_parts(parts, body)).await,
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A request's head read byte by byte (nothing of its body), for raw
/// upstreams that misbehave on purpose; `None` if the connection closed
/// first.
pub async fn read_request_head(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A TCP service on a fresh loopback port that greets each connection with
/// `name` and a newline, then echoes what it gets: the tests' TCP upstream.
pub async fn tcp_greeter(name: &'static str) -> SocketAddr {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = s.write_all(format!("{name}\n").as_bytes()).await;
                let (r, mut w) = s.split();
                let _ = tokio::io::copy(&mut tokio::io::BufReader::new(r), &mut w).await;
            });
        }
    });
    addr
}
