//! Bad configs are refused by `gateway check` and by `gateway --config`,
//! naming the field, and nothing starts listening.

use e2e::{bin, free_port, is_listening};
use std::process::Command;
use std::time::Duration;

fn config(proxy: u16, admin: u16, route: &str) -> String {
    format!(
        r#"listeners: [{{address: "127.0.0.1:{proxy}"}}]
admin: {{address: "127.0.0.1:{admin}"}}
routes:
{route}
"#
    )
}

const GOOD_ROUTE: &str = r#"  - name: web
    blue: {endpoints: ["127.0.0.1:18081"]}
    green: {endpoints: ["127.0.0.1:18082"]}"#;

#[test]
fn bad_configs_are_refused_with_the_field_named_and_nothing_listens() {
    let cases: [(&str, String, &str); 4] = [
        (
            "unknown field",
            GOOD_ROUTE.replace("name: web", "name: web\n    weight: 3"),
            "unknown field `weight`",
        ),
        (
            "bad address",
            GOOD_ROUTE.replace("127.0.0.1:18082", "127.0.0.1:99999"),
            "routes[0].green.endpoints[0]",
        ),
        (
            "split 120",
            format!("{GOOD_ROUTE}\n    initial_green_percent: 120"),
            "routes[0].initial_green_percent",
        ),
        (
            "duplicate route",
            format!("{GOOD_ROUTE}\n{GOOD_ROUTE}"),
            "routes[1].name: duplicate route name \"web\"",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (what, route, expected) in cases {
        let (proxy, admin) = (free_port(), free_port());
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, config(proxy, admin, &route)).unwrap();

        let check = Command::new(bin("gateway"))
            .arg("check")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&check.stderr);
        assert_eq!(
            check.status.code(),
            Some(2),
            "{what}: check exit code; {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{what}: expected {expected:?} in:\n{stderr}"
        );
        assert!(
            stderr.contains("bad.yaml"),
            "{what}: the file is not named:\n{stderr}"
        );

        let mut serve = Command::new(bin("gateway"))
            .arg("--config")
            .arg(&path)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let status = loop {
            assert!(
                !is_listening(format!("127.0.0.1:{proxy}").parse().unwrap()),
                "{what}: proxy listened"
            );
            assert!(
                !is_listening(format!("127.0.0.1:{admin}").parse().unwrap()),
                "{what}: admin listened"
            );
            if let Some(s) = serve.try_wait().unwrap() {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: gateway kept running"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(2), "{what}: serve exit code");
        let out = serve.wait_with_output().unwrap();
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expected),
            "{what}"
        );
    }
}

#[test]
fn the_example_config_is_valid() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/gateway.yaml"
    );
    let check = Command::new(bin("gateway"))
        .args(["check", "--config", example])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn check_lists_an_unknown_field_and_every_other_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("five.yaml");
    std::fs::write(
        &path,
        r#"listeners: [{address: "localhost:8080"}]
admin: {address: "127.0.0.1:9090", tokn_file: /etc/gateway/token}
threads: 0
routes:
  - name: web
    initial_green_percent: 120
    blue: {endpoints: ["ingress.blue.example:443"]}
    green: {endpoints: []}
"#,
    )
    .unwrap();
    let check = Command::new(bin("gateway"))
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("5 error(s)"), "{stderr}");
    for needle in [
        "admin: unknown field `tokn_file`, expected one of",
        "listeners[0].address",
        "threads: must be at least 1",
        "routes[0].initial_green_percent",
        "routes[0].green.endpoints: at least one endpoint",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in\n{stderr}");
    }
    // The endpoint name was not looked up (no DNS needed to check a file).
    assert!(!stderr.contains("ingress.blue.example"), "{stderr}");
}

/// A listener that cannot listen stops the gateway (exit 1, the listener
/// named), as nginx does, instead of running on without it: pingora's own
/// listeners panic their service's thread and the process runs on, its
/// admin port answering while every client is refused.
/// (192.0.2.1 is a documentation address no interface here has: the bind
/// fails at once; an address in use is tried for 30 s first.)
#[test]
fn a_listener_that_cannot_listen_stops_the_gateway() {
    let nowhere = format!("192.0.2.1:{}", free_port());
    let (proxy, admin) = (free_port(), free_port());
    let tcp_route = format!(
        r#"{GOOD_ROUTE}
  - name: db
    tcp: {{listen: "{nowhere}"}}
    blue: {{endpoints: ["127.0.0.1:18083"]}}
    green: {{endpoints: ["127.0.0.1:18084"]}}"#
    );
    let cases = [
        ("a TCP route's listener", config(proxy, admin, &tcp_route)),
        (
            "an HTTP listener",
            config(proxy, admin, GOOD_ROUTE).replace(&format!("127.0.0.1:{proxy}"), &nowhere),
        ),
        (
            "the admin listener",
            config(proxy, admin, GOOD_ROUTE).replace(&format!("127.0.0.1:{admin}"), &nowhere),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (what, text) in cases {
        assert!(text.contains(&nowhere), "{what}: {text}");
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, text).unwrap();
        let mut serve = Command::new(bin("gateway"))
            .arg("--config")
            .arg(&path)
            .env("GATEWAY_ADMIN_TOKEN", e2e::TOKEN)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = serve.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = serve.kill();
                panic!("the gateway kept running without {what}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = serve.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains(&nowhere), "{what}: {stderr}");
        assert!(stderr.contains("cannot listen"), "{what}: {stderr}");
    }
}
