//! One plan moves an HTTP route and a TCP route together: `cutover run`
//! takes both to 100% green under the same gates (a TCP connection counts
//! as a request, one that fails as an error) while clients of both keep
//! working.

use e2e::{pinned_config, Admin, Backend, Cutover, Gateway, Load};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Connections from ever new client addresses until stopped: (ok, failed).
fn tcp_load(listen: SocketAddr, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let (ok, failed) = (AtomicU64::new(0), AtomicU64::new(0));
        let mut i = 0u32;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let source = Ipv4Addr::new(127, 2, (i / 250 % 250) as u8, (i % 250) as u8 + 1);
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::new(source.into(), 0)).unwrap();
            let greeted = async {
                let stream = socket.connect(listen).await.ok()?;
                let mut line = String::new();
                BufReader::new(stream).read_line(&mut line).await.ok()?;
                (!line.is_empty()).then_some(())
            };
            match tokio::time::timeout(Duration::from_secs(2), greeted).await {
                Ok(Some(())) => ok.fetch_add(1, Ordering::Relaxed),
                _ => failed.fetch_add(1, Ordering::Relaxed),
            };
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (ok.into_inner(), failed.into_inner())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_takes_an_http_and_a_tcp_route_to_green_together() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let (db_blue, db_green) = (
        e2e::tcp_greeter("blue").await,
        e2e::tcp_greeter("green").await,
    );
    let listen: SocketAddr = format!("127.0.0.1:{}", e2e::free_port()).parse().unwrap();
    let config = pinned_config(&[&blue], &[&green], "").replace(
        "routes:\n",
        &format!(
            "routes:\n  - name: db\n    tcp: {{listen: \"{listen}\"}}\n    blue: {{endpoints: [\"{db_blue}\"]}}\n    green: {{endpoints: [\"{db_green}\"]}}\n    health_check: {{interval: 200ms, timeout: 200ms, healthy_threshold: 1}}\n"
        ),
    );
    let gw = Gateway::start(&config);
    e2e::wait_listening(listen, Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    let cutover = Cutover::new(dir.path());
    let plan = dir.path().join("plan.yaml");
    let text = e2e::test_plan(
        &[gw.admin_url("")],
        gw.proxy,
        "[{green_percent: 30, hold: 1s}, {green_percent: 100, hold: 1s}]",
        "",
    )
    .replace("routes: [web]", "routes: [web, db]");
    std::fs::write(&plan, text).unwrap();
    let http = Load::start(gw.url("/"), 4, Duration::from_millis(10));
    let stop = Arc::new(AtomicBool::new(false));
    let tcp = tcp_load(listen, stop.clone());
    let (code, _, stderr) = cutover.output(&["run", plan.to_str().unwrap()]).await;
    stop.store(true, Ordering::Relaxed);
    let (tcp_ok, tcp_failed) = tcp.await.unwrap();
    assert_eq!(http.stop().await.1, 0);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(tcp_failed, 0, "{tcp_ok} TCP clients served");
    let state = Admin::new(&gw).state().await;
    for route in ["web", "db"] {
        assert_eq!(state["routes"][route]["green_percent"], 100.0, "{route}");
    }
    let gates: Vec<_> = cutover
        .records()
        .into_iter()
        .filter(|r| r["event"] == "gate")
        .collect();
    let green_seen: u64 = gates
        .iter()
        .map(|g| g["figures"]["green"]["requests"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(green_seen > 0);
}
