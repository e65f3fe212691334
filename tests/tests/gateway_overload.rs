//! Overload limits: a flood of client connections is capped per listener
//! (configured, or the default derived from the descriptor limit) so the
//! admin API, metrics, health checks and clients already connected keep
//! working; a slow colour at `max_in_flight` answers 503 + Retry-After at
//! once instead of queueing.

use e2e::{Admin, Backend, Gateway};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Opens COUNT connections that each send half a request line, holds them
/// HOLD seconds, then says how many the server closed.
const FLOOD: &str = r#"
import resource, socket, sys, time
host, port, count, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks, refused = [], 0
for _ in range(count):
    s = socket.socket()
    try:
        s.connect((host, port))
        s.send(b"GET / HT")
        socks.append(s)
    except OSError:
        refused += 1
        s.close()
print(f"opened {len(socks)} refused {refused}", flush=True)
time.sleep(hold)
closed = 0
for s in socks:
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            closed += 1
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print(f"closed {closed} open {len(socks) - closed}", flush=True)
"#;

/// 10,000 connections from one Python process (a process's descriptors
/// are capped at the machine's hard limit, 20,000 here).
struct Flood {
    _child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Flood {
    fn start(proxy: std::net::SocketAddr, count: usize, hold: Duration) -> Flood {
        let mut child = tokio::process::Command::new("python3")
            .args(["-c", FLOOD, "127.0.0.1"])
            .arg(proxy.port().to_string())
            .arg(count.to_string())
            .arg(hold.as_secs_f64().to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Flood {
            _child: child,
            lines,
        }
    }

    /// The numbers on the next line the flood prints.
    async fn numbers(&mut self) -> Vec<u64> {
        let line = tokio::time::timeout(Duration::from_secs(120), self.lines.next_line())
            .await
            .expect("the flood reports in time")
            .unwrap()
            .expect("a line");
        line.split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect()
    }
}

/// A keep-alive client that asks every 20 ms until stopped.
struct Client {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    async fn start(url: String) -> Client {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        // Connected before the flood.
        assert!(client.get(&url).send().await.unwrap().status().is_success());
        let (stop, ok, failed) = Default::default();
        let (s, o, f): (Arc<AtomicBool>, Arc<AtomicU64>, Arc<AtomicU64>) =
            (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                let answered = match client.get(&url).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if answered {
                    o.fetch_add(1, Ordering::Relaxed);
                } else {
                    f.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Client {
            stop,
            ok,
            failed,
            task,
        }
    }

    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb / 1024.0
}

/// The gateway process's soft descriptor limit (after it raised it).
fn open_files_limit(pid: u32) -> usize {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn metric(metrics: &str, prefix: &str) -> f64 {
    e2e::metric_value(metrics, prefix).unwrap_or_else(|| panic!("no {prefix}"))
}

/// 20,000 half-open requests against a gateway whose listener takes at
/// most `limit` (configured with `max_connections`, or the default).
async fn flood(max_connections: Option<usize>) {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let max = max_connections.map_or(String::new(), |n| format!(", max_connections: {n}"));
    let config = format!(
        r#"listeners: [{{address: "{{proxy}}"{max}}}]
admin: {{address: "{{admin}}"}}
client_timeouts: {{header: 60s}}
routes:
  - name: web
    initial_green_percent: 50
    blue: {{endpoints: ["{}"]}}
    green: {{endpoints: ["{}"]}}
    health_check: {{path: /healthz, interval: 200ms, timeout: 500ms, healthy_threshold: 1, unhealthy_threshold: 2}}
"#,
        blue.addr, green.addr
    );
    let gw = Gateway::start(&config);
    let pid = gw.proc.as_ref().unwrap().child.id();
    let limit = max_connections.unwrap_or((open_files_limit(pid) - 256) / 2);
    let admin = Admin::new(&gw);
    let client = Client::start(gw.url("/")).await;

    let hold = Duration::from_secs(10);
    let mut floods = [
        Flood::start(gw.proxy, 10_000, hold),
        Flood::start(gw.proxy, 10_000, hold),
    ];
    for f in &mut floods {
        let opened = f.numbers().await;
        println!("flood connected: {opened:?} (opened, refused)");
    }

    // While the flood holds: the admin API and metrics answer at once, no
    // endpoint is unhealthy, memory stays bounded.
    let mut slowest = Duration::ZERO;
    let mut metrics = String::new();
    for _ in 0..10 {
        let started = Instant::now();
        metrics = admin.metrics().await;
        let state = admin.state().await;
        slowest = slowest.max(started.elapsed() / 2);
        for color in ["blue", "green"] {
            let endpoints = state["routes"]["web"][color]["endpoints"]
                .as_array()
                .unwrap();
            assert!(
                endpoints.iter().all(|e| e["healthy"] == true),
                "{color} marked unhealthy under the flood: {state:#}"
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let rss = rss_mib(pid);
    let open = metric(&metrics, "gateway_client_connections{");
    let refused = metric(&metrics, "gateway_connections_refused_total{");
    println!(
        "limit {limit}: {open} client connections open, {refused} refused, RSS {rss:.1} MiB, slowest admin answer {slowest:?}"
    );
    assert!(open as usize <= limit, "{open} open past the limit {limit}");
    assert!(
        open as usize >= limit.min(20_000) - 10,
        "the limit was not reached: {open}"
    );
    assert!(refused as usize >= 20_000 - limit - 10);
    assert!(
        slowest < Duration::from_millis(100),
        "admin took {slowest:?}"
    );
    assert!(rss < 160.0, "RSS {rss:.1} MiB");

    for f in &mut floods {
        let closed = f.numbers().await;
        println!("flood after {hold:?}: {closed:?} (closed by the gateway, still open)");
    }
    let (ok, failed) = client.stop().await;
    println!("the client connected before the flood: {ok} answered, {failed} failed");
    assert_eq!(failed, 0);
    assert!(ok > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_stops_at_max_connections() {
    flood(Some(5000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_stops_at_the_default_limit() {
    flood(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_colour_at_max_in_flight_answers_503_at_once() {
    let blue = Backend::start("blue");
    let green = Backend::start_with("green", &["--latency-ms", "1000"]);
    let config = format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
routes:
  - name: web
    initial_green_percent: 100
    blue: {{endpoints: ["{}"]}}
    green: {{endpoints: ["{}"], max_in_flight: 2}}
"#,
        blue.addr, green.addr
    );
    let gw = Gateway::start(&config);
    let admin = Admin::new(&gw);
    let h1 = reqwest::Client::new();
    let h2c = e2e::h2c_client();
    for (client, name) in [(&h1, "HTTP/1"), (&h2c, "h2c")] {
        let started = Instant::now();
        let answers = futures_util::future::join_all((0..10).map(|_| async {
            let resp = client.get(gw.url("/work")).send().await.unwrap();
            let retry_after = resp.headers().get("retry-after").cloned();
            (resp.status().as_u16(), retry_after, started.elapsed())
        }))
        .await;
        let ok: Vec<_> = answers.iter().filter(|a| a.0 == 200).collect();
        let refused: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
        println!("{name}: {} answered, {} refused", ok.len(), refused.len());
        assert_eq!(ok.len(), 2, "{name}: {answers:?}");
        assert_eq!(refused.len(), 8, "{name}: {answers:?}");
        for (_, retry_after, took) in &refused {
            assert_eq!(retry_after.as_ref().unwrap(), "1");
            assert!(
                *took < Duration::from_millis(500),
                "{name}: a refusal took {took:?}"
            );
        }
    }
    let metrics = admin.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            r#"gateway_overload_total{color="green",route="web"}"#
        ),
        16.0
    );
    assert_eq!(
        metric(
            &metrics,
            r#"gateway_overload_total{color="blue",route="web"}"#
        ),
        0.0
    );
    // The gates see green's own limit as green failing.
    assert!(metrics.contains(r#"gateway_requests_total{code="503",color="green",grpc_status="",pinned="false",route="web"} 16"#), "{metrics}");
}
