//! An in-place upgrade (SIGUSR2) under keep-alive and new-connection load:
//! the new process takes the listening sockets (HTTP and a TCP route's),
//! no connection is refused, no request fails, a request in flight
//! completes on the old process, and the new one serves the same split
//! from the state store.

use e2e::{Admin, Backend, Gateway};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Counts what a client saw: answered, failed, refused connections.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
}

fn load(
    client: reqwest::Client,
    url: String,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            match client.get(&url).send().await {
                Ok(r) => {
                    let status = r.status();
                    match r.bytes().await {
                        Ok(_) if status == 200 => tally.ok.fetch_add(1, Ordering::Relaxed),
                        other => {
                            eprintln!("failed: {status} {other:?}");
                            tally.failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
                Err(e) if e.is_connect() => {
                    tally.refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    eprintln!("failed: {e:?}");
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

/// New TCP connections one after another to a TCP route's listener: each
/// must be greeted by an upstream and echo a line back.
fn tcp_load(
    listen: SocketAddr,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let Ok(stream) = tokio::net::TcpStream::connect(listen).await else {
                tally.refused.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let mut stream = BufReader::new(stream);
            let mut greeting = String::new();
            let exchange = async {
                stream.read_line(&mut greeting).await?;
                stream.get_mut().write_all(b"ping\n").await?;
                let mut echo = String::new();
                stream.read_line(&mut echo).await?;
                Ok::<_, std::io::Error>(echo)
            };
            match tokio::time::timeout(Duration::from_secs(5), exchange).await {
                Ok(Ok(echo)) if echo == "ping\n" && greeting.ends_with("\n") => {
                    tally.ok.fetch_add(1, Ordering::Relaxed)
                }
                other => {
                    eprintln!("tcp failed: {greeting:?} {other:?}");
                    tally.failed.fetch_add(1, Ordering::Relaxed)
                }
            };
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

/// The process started with `--upgrade` for this config: a child of the
/// old gateway, then of this test (a subreaper, so the orphan is not handed
/// to the machine's init); killed and reaped when the test ends.
struct Successor(u32);

/// Orphaned descendants (the successor, once the old gateway exits) become
/// this process's children.
fn adopt_orphans() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers.
    let done = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(done, 0, "PR_SET_CHILD_SUBREAPER");
}

impl Successor {
    fn find(config: &std::path::Path) -> Option<Successor> {
        let config = config.display().to_string();
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .find_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                let args: Vec<String> = cmdline
                    .split(|b| *b == 0)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                // Built only for the match: dropping a Successor kills its pid.
                let ours = args.contains(&config) && args.iter().any(|a| a == "--upgrade");
                if ours {
                    Some(Successor(pid))
                } else {
                    None
                }
            })
    }
}

impl Drop for Successor {
    fn drop(&mut self) {
        let pid = self.0 as libc::pid_t;
        // SAFETY: signals and reaps one process of ours by its pid.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_under_load_refuses_nothing_and_keeps_the_split() {
    adopt_orphans();
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let (tcp_blue, tcp_green) = (
        e2e::tcp_greeter("blue").await,
        e2e::tcp_greeter("green").await,
    );
    let tcp_listen: SocketAddr = format!("127.0.0.1:{}", e2e::free_port()).parse().unwrap();
    let config = format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
state: {{store: file, path: "{{dir}}/state.json"}}
upgrade_socket: "{{dir}}/upgrade.sock"
shutdown_grace: 5s
routes:
  - name: web
    blue: {{endpoints: ["{}"]}}
    green: {{endpoints: ["{}"]}}
  - name: db
    tcp: {{listen: "{tcp_listen}"}}
    blue: {{endpoints: ["{tcp_blue}"]}}
    green: {{endpoints: ["{tcp_green}"]}}
"#,
        blue.addr, green.addr
    );
    // systemd's side of Type=notify: the gateway says it is ready and which
    // process is the unit's main one (this test is the only one in its
    // binary, so setting the variable here races with nothing).
    let notify_dir = tempfile::tempdir().unwrap();
    let notify_path = notify_dir.path().join("notify");
    let systemd = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    systemd
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    std::env::set_var("NOTIFY_SOCKET", &notify_path);
    let notification = || {
        let mut buf = [0u8; 256];
        let n = systemd.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut gw = Gateway::start(&config);
    e2e::wait_listening(tcp_listen, Duration::from_secs(10));
    let old_pid = gw.proc.as_ref().unwrap().child.id();
    assert_eq!(notification(), format!("READY=1\nMAINPID={old_pid}"));
    let admin = Admin::new(&gw);
    let before = admin.set_split("web", 30.0).await;

    let stop = Arc::new(AtomicBool::new(false));
    let keep_alive = Arc::new(Tally::default());
    let fresh = Arc::new(Tally::default());
    let tcp = Arc::new(Tally::default());
    let mut tasks = vec![tcp_load(tcp_listen, stop.clone(), tcp.clone())];
    for _ in 0..2 {
        let client = reqwest::Client::new();
        tasks.push(load(
            client,
            gw.url("/echo"),
            stop.clone(),
            keep_alive.clone(),
        ));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        tasks.push(load(client, gw.url("/echo"), stop.clone(), fresh.clone()));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A request in flight across the hand-over completes.
    let slow = tokio::spawn(reqwest::get(gw.url("/slow?ms=3000")));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let old = gw.proc.as_ref().unwrap();
    old.signal("USR2");
    let started = Instant::now();
    let successor = loop {
        if let Some(s) = Successor::find(&gw.config_path()) {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no successor:\n{}",
            gw.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The old process hands over, drains and exits by itself.
    let exited = loop {
        if let Some(status) = gw.proc.as_mut().unwrap().child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the old process did not exit:\n{}",
            gw.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "the old process exited ({exited}) after {:?}",
        started.elapsed()
    );
    assert!(exited.success());
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    let slow = slow.await.unwrap().unwrap();
    assert_eq!(slow.status(), 200);
    assert!(slow.text().await.unwrap().contains("slow"));
    let tallies = [
        ("keep-alive", &keep_alive),
        ("new connections", &fresh),
        ("new TCP route connections", &tcp),
    ];
    for (name, tally) in tallies {
        let (ok, failed, refused) = (
            tally.ok.load(Ordering::Relaxed),
            tally.failed.load(Ordering::Relaxed),
            tally.refused.load(Ordering::Relaxed),
        );
        println!("{name}: {ok} answered, {failed} failed, {refused} refused");
        assert_eq!((failed, refused), (0, 0), "{name}");
        assert!(ok > 200, "{name}: {ok}");
    }
    // Only the new process is left, and it serves the same split.
    let state = admin.state().await;
    assert_eq!(state["routes"]["web"]["green_percent"], 30.0, "{state:#}");
    assert_eq!(state["generation"], before["generation"]);
    let log = gw.log_text();
    assert!(log.contains("listening sockets handed over"), "{log}");
    drop(successor);
}
