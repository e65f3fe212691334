//! The access log: a JSON line for every request on both request paths
//! (HTTP/1 and HTTP/2), with no secret in it; logrotate's rename and
//! SIGUSR1 lose no line; a full disk drops lines (counted), never a request.

use e2e::tmpfs::Tmpfs;
use e2e::{metric_value, one_route_config, Admin, Backend, Gateway};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

fn config(blue: &Backend, green: &Backend, log: &Path) -> String {
    one_route_config(&[blue], &[green], "").replace(
        "routes:",
        &format!(
            "access_log: {{path: \"{}\", format: json}}\nroutes:",
            log.display()
        ),
    )
}

/// `n` requests from `workers` keep-alive clients at once; every answer
/// must be 200. Returns the request IDs the gateway answered with.
async fn load(url: String, n: usize, workers: usize, h2: bool) -> Vec<String> {
    let per = n / workers;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let builder = reqwest::Client::builder();
            let client = match h2 {
                true => builder.http2_prior_knowledge(),
                false => builder,
            }
            .build()
            .unwrap();
            let mut ids = Vec::new();
            for i in 0..per {
                let r = client
                    .get(format!("{url}?token=secret-query-{w}-{i}"))
                    .header("authorization", "Bearer secret-token")
                    .header("cookie", "session=secret-cookie")
                    .header("user-agent", "load/1.0")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                ids.push(r.headers()["x-request-id"].to_str().unwrap().to_owned());
                r.bytes().await.unwrap();
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    ids
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until the log holds `n` lines (the writer runs behind).
async fn wait_lines(paths: &[&Path], n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen: usize = paths.iter().map(|p| lines(p).len()).sum();
        if seen >= n || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_of_both_paths_is_one_json_line_without_secrets() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let gw = Gateway::start(&config(&blue, &green, &log));
    let mut ids = load(gw.url("/things"), 9_000, 8, false).await;
    ids.extend(load(gw.url("/things"), 1_000, 4, true).await);
    assert_eq!(wait_lines(&[&log], 10_000).await, 10_000);
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in ["secret-token", "secret-cookie", "secret-query"] {
        assert!(!text.contains(secret), "{secret} is in the access log");
    }
    let mut logged_ids = std::collections::HashSet::new();
    let mut h2 = 0;
    for line in text.lines() {
        let l: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for field in [
            "time",
            "client",
            "method",
            "host",
            "path",
            "protocol",
            "status",
            "bytes_in",
            "bytes_out",
            "duration_ms",
            "upstream",
            "route",
            "color",
            "pinned",
            "attempts",
            "request_id",
            "user_agent",
        ] {
            assert!(l.get(field).is_some(), "no {field} in {line}");
        }
        assert_eq!(
            (l["method"].as_str(), l["path"].as_str()),
            (Some("GET"), Some("/things"))
        );
        assert_eq!(
            (l["status"].as_u64(), l["route"].as_str()),
            (Some(200), Some("web"))
        );
        assert_eq!(l["user_agent"], "load/1.0");
        assert_eq!(l["client"], "127.0.0.1");
        assert!(
            l["bytes_out"].as_u64().unwrap() > 0 && l["bytes_in"].as_u64().unwrap() > 0,
            "{line}"
        );
        assert_eq!(l["upstream"], blue.addr.to_string());
        h2 += usize::from(l["protocol"] == "HTTP/2.0");
        logged_ids.insert(l["request_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(h2, 1_000, "HTTP/2 requests are logged from pingora's path");
    let answered: std::collections::HashSet<String> = ids.into_iter().collect();
    assert_eq!(
        logged_ids, answered,
        "each line names the request ID its client got"
    );
    let metrics = Admin::new(&gw).metrics().await;
    assert_eq!(
        metric_value(&metrics, "gateway_access_log_lines_total"),
        Some(10_000.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_loses_no_line_and_a_full_disk_drops_lines_not_requests() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let gw = Gateway::start(&config(&blue, &green, &log));
    // logrotate: rename, then SIGUSR1 (postrotate), while requests flow.
    let flowing = tokio::spawn(load(gw.url("/"), 4_000, 4, false));
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::rename(&log, &rotated).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    gw.proc.as_ref().unwrap().signal("USR1");
    flowing.await.unwrap();
    assert_eq!(wait_lines(&[&log, &rotated], 4_000).await, 4_000);
    assert!(
        !lines(&rotated).is_empty() && !lines(&log).is_empty(),
        "both files have lines"
    );
    for line in lines(&rotated).iter().chain(&lines(&log)) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }

    // A full disk: lines are dropped and counted, every request answered.
    let Some(fs) = Tmpfs::mount("64k") else {
        return;
    };
    let small = fs.path().join("access.log");
    let gw = Gateway::start(&config(&blue, &green, &small));
    fs.fill();
    load(gw.url("/"), 2_000, 4, false).await;
    let admin = Admin::new(&gw);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = admin.metrics().await;
        let written = metric_value(&metrics, "gateway_access_log_lines_total").unwrap();
        let dropped = metric_value(
            &metrics,
            "gateway_access_log_dropped_total{reason=\"write_failed\"}",
        )
        .unwrap();
        if written + dropped >= 2_000.0 || Instant::now() > deadline {
            assert_eq!(
                written + dropped,
                2_000.0,
                "every request's line is written or counted"
            );
            assert!(dropped > 0.0, "the full disk dropped lines");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
