//! Endpoint names that change: re-resolved every `dns.resolve_interval`
//! from a hosts file the test controls; new addresses take traffic,
//! vanished ones leave, a name that stops resolving keeps its last good
//! addresses and is reported.

use e2e::{free_port, Admin, Backend, Gateway, Load};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Which backends answer `n` requests.
async fn served_by(gw: &Gateway, n: usize) -> BTreeSet<String> {
    let client = reqwest::Client::new();
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        let r = client.get(gw.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        seen.insert(r.headers()["x-backend"].to_str().unwrap().to_owned());
    }
    seen
}

/// Waits (10 s at most) until requests are served by exactly `expected`.
async fn until_served_by(gw: &Gateway, expected: &[&str]) {
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = served_by(gw, 12).await;
        if seen == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "served by {seen:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn blue(state: &Value) -> &Value {
    &state["routes"]["web"]["blue"]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_that_changes_is_followed_and_one_that_vanishes_keeps_its_addresses() {
    let port = free_port();
    let at = |ip: &str| format!("{ip}:{port}").parse().unwrap();
    let _a = Backend::start_at("blue-a", at("127.0.0.2"), &[]);
    let _b = Backend::start_at("blue-b", at("127.0.0.3"), &[]);
    let green = Backend::start("green");
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.2 ingress.blue.test\n").unwrap();
    let config = format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
dns: {{resolve_interval: 1s, hosts_file: "{{dir}}/hosts"}}
routes:
  - name: web
    blue: {{endpoints: ["ingress.blue.test:{port}"]}}
    green: {{endpoints: ["{}"]}}
    health_check: {{path: /healthz, interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 2}}
"#,
        green.addr
    );
    let gw = Gateway::start_in(dir, &config);
    let admin = Admin::new(&gw);
    let load = Load::start(gw.url("/"), 2, Duration::from_millis(5));
    until_served_by(&gw, &["blue-a"]).await;

    // The name moves: the new address takes the traffic, the old one leaves.
    std::fs::write(&hosts, "127.0.0.3 ingress.blue.test\n").unwrap();
    until_served_by(&gw, &["blue-b"]).await;
    let endpoints = blue(&admin.state().await)["endpoints"].clone();
    assert_eq!(
        endpoints,
        serde_json::json!([{"address": format!("ingress.blue.test:{port} (127.0.0.3:{port})"), "healthy": true}])
    );

    // Two addresses: both serve.
    std::fs::write(
        &hosts,
        "127.0.0.2 ingress.blue.test\n127.0.0.3 ingress.blue.test\n",
    )
    .unwrap();
    until_served_by(&gw, &["blue-a", "blue-b"]).await;

    // The name stops resolving: its last good addresses keep serving, and
    // it is reported.
    std::fs::write(&hosts, "# nothing\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let unresolved = loop {
        let u = blue(&admin.state().await)["unresolved"].clone();
        if u.as_array().is_some_and(|a| !a.is_empty()) {
            break u;
        }
        assert!(Instant::now() < deadline, "never reported unresolved");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        unresolved[0]["endpoint"],
        format!("ingress.blue.test:{port}")
    );
    assert!(
        unresolved[0]["error"]
            .as_str()
            .unwrap()
            .contains("not in dns.hosts_file"),
        "{unresolved}"
    );
    assert_eq!(unresolved[0]["last_good"].as_array().unwrap().len(), 2);
    let failing = format!(
        "gateway_endpoint_resolve_failing{{color=\"blue\",endpoint=\"ingress.blue.test:{port}\",route=\"web\"}} 1"
    );
    assert!(
        admin.metrics().await.contains(&failing),
        "{}",
        admin.metrics().await
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        served_by(&gw, 12).await.len(),
        2,
        "last good addresses dropped"
    );
    assert!(
        gw.log_text().contains("no longer resolves"),
        "{}",
        gw.log_text()
    );

    // It resolves again: reported as such.
    std::fs::write(&hosts, "127.0.0.2 ingress.blue.test\n").unwrap();
    until_served_by(&gw, &["blue-a"]).await;
    assert!(admin
        .metrics()
        .await
        .contains(&failing.replace("} 1", "} 0")));
    assert_eq!(
        blue(&admin.state().await)["unresolved"],
        serde_json::json!([])
    );

    let (ok, failed) = load.stop().await;
    assert_eq!(failed, 0, "a request failed while the name moved");
    assert!(ok > 100);
}

/// `gateway check` on `config`: (exit code, stdout + stderr).
fn check(config: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(e2e::bin("gateway"))
        .args(["check", "--config", config.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_that_does_not_resolve_needs_resolve_to_fail_a_check_and_waits_while_the_rest_serve()
{
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let dir = tempfile::tempdir().unwrap();
    // The hosts file is the only source of names: no DNS query leaves.
    std::fs::write(dir.path().join("hosts"), "").unwrap();
    let text = format!(
        r#"listeners: [{{address: "{{proxy}}"}}]
admin: {{address: "{{admin}}"}}
dns: {{resolve_interval: 100ms, hosts_file: "{hosts}"}}
routes:
  - name: web
    blue: {{endpoints: ["{blue}"]}}
    green: {{endpoints: ["{green}"]}}
  - name: later
    hosts: [later.test]
    blue: {{endpoints: ["ingress.blue.test:{blue_port}", "{blue}"]}}
    green: {{endpoints: ["ingress.green.test:{green_port}"]}}
"#,
        hosts = dir.path().join("hosts").display(),
        blue = blue.addr,
        green = green.addr,
        blue_port = blue.addr.port(),
        green_port = green.addr.port(),
    );
    let config = dir.path().join("check.yaml");
    let checked = text
        .replace("{proxy}", "127.0.0.1:8080")
        .replace("{admin}", "127.0.0.1:9090");
    std::fs::write(
        &config,
        checked.replace("resolve_interval: 100ms", "resolve_interval: 1s"),
    )
    .unwrap();
    let (code, out) = check(&config, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("not looked up"), "{out}");
    let (code, out) = check(&config, &["--resolve"]);
    assert_eq!(code, Some(2), "{out}");
    for endpoint in [
        "routes[1].blue.endpoints[0]",
        "routes[1].green.endpoints[0]",
    ] {
        assert!(out.contains(endpoint), "{endpoint} not named: {out}");
    }
    assert!(
        out.contains("ingress.blue.test is not in dns.hosts_file"),
        "{out}"
    );
    assert!(!out.contains("routes[0]"), "{out}");
    // The interval is still checked without --resolve.
    std::fs::write(&config, &checked).unwrap();
    let (code, out) = check(&config, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("dns.resolve_interval: must be at least 1s"),
        "{out}"
    );

    // The gateway starts: `web` serves, `later`'s blue serves through its
    // IP endpoint, its green waits unresolved and is reported.
    let gw = Gateway::start(&text.replace("resolve_interval: 100ms", "resolve_interval: 1s"));
    let admin = Admin::new(&gw);
    let client = reqwest::Client::new();
    let answer = client.get(gw.url("/echo")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer = client
        .get(gw.url("/echo"))
        .header("host", "later.test")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("blue"));
    let state = admin.state().await;
    let unresolved = state["routes"]["later"]["green"]["unresolved"].to_string();
    assert!(unresolved.contains("ingress.green.test"), "{state:#}");
    assert!(admin
        .metrics()
        .await
        .lines()
        .any(|l| l.starts_with("gateway_endpoint_resolve_failing")
            && l.contains("ingress.green.test")
            && l.ends_with(" 1")));

    // The name appears: green of `later` serves without a restart.
    std::fs::write(
        dir.path().join("hosts"),
        "127.0.0.1 ingress.green.test ingress.blue.test\n",
    )
    .unwrap();
    admin.set_split("later", 100.0).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let answer = client
            .get(gw.url("/echo"))
            .header("host", "later.test")
            .send()
            .await
            .unwrap();
        if answer.status() == 200 && answer.text().await.unwrap().contains("green") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "green never served");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
