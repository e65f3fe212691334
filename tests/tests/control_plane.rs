//! The admin API's guarantees, durable state, reload and graceful shutdown.

use e2e::{one_route_config, Admin, Backend, Gateway, TOKEN};
use futures_util::{stream, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};

fn file_store(config: String) -> String {
    config.replace(
        "routes:",
        "state: {store: file, path: \"{dir}/state.json\"}\nroutes:",
    )
}

fn two_routes(blue: &Backend, green: &Backend) -> String {
    let api = format!(
        "  - name: api\n    path_prefix: /api\n    blue: {{endpoints: [\"{}\"]}}\n    green: {{endpoints: [\"{}\"]}}\n",
        blue.addr, green.addr
    );
    one_route_config(&[blue], &[green], &api)
}

async fn green_share(client: &reqwest::Client, url: &str, n: usize) -> f64 {
    let greens: usize = stream::iter(0..n)
        .map(|i| {
            let req = client.get(url).header("x-client-id", format!("share-{i}"));
            async move { usize::from(req.send().await.unwrap().headers()["x-backend"] == "green") }
        })
        .buffered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum();
    100.0 * greens as f64 / n as f64
}

#[tokio::test(flavor = "multi_thread")]
async fn mutations_need_the_token_and_a_refused_call_changes_nothing() {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let mut gw = Gateway::start(&two_routes(&blue, &green));
    let admin = Admin::new(&gw);
    let before = admin.state().await;
    let body = json!({"green_percent": 50});

    for token in [None, Some("wrong-token"), Some("")] {
        let resp = admin.put("/v1/routes/web/split", token, body.clone()).await;
        assert_eq!(resp.status(), 401, "token {token:?}");
        assert!(resp.text().await.unwrap().contains("bearer token"));
    }
    let resp = admin
        .put("/v1/splits", Some("nope"), json!({"routes": {"web": 10}}))
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        admin.state().await,
        before,
        "a refused call changed the state"
    );

    // Stale generation: 409, nothing changed.
    admin.set_split("web", 10.0).await;
    let state = admin.state().await;
    assert_eq!(state["generation"], 1);
    let resp = admin
        .put_split(
            "web",
            json!({"green_percent": 90, "expected_generation": 0}),
        )
        .await;
    assert_eq!(resp.status(), 409);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("expected_generation 0 is stale"));
    assert_eq!(admin.state().await, state);

    // Invalid bodies: 400 naming the field, nothing changed.
    let client = reqwest::Client::new();
    let cases: [(&str, &str, &str); 8] = [
        (
            "/v1/routes/web/split",
            r#"{"green_percent": 101}"#,
            "green_percent: must be a number from 0 to 100",
        ),
        (
            "/v1/routes/web/split",
            r#"{"green_percent": -1}"#,
            "green_percent: must be a number from 0 to 100",
        ),
        (
            "/v1/routes/web/split",
            r#"{"green_percent": "NaN"}"#,
            "green_percent: invalid type",
        ),
        (
            "/v1/routes/web/split",
            r#"{"green_percent": NaN}"#,
            "green_percent: expected value",
        ),
        (
            "/v1/routes/web/split",
            r#"{"green_percent": 5, "colour": 1}"#,
            "unknown field `colour`",
        ),
        (
            "/v1/routes/web/split",
            r#"{"green_percent": 5"#,
            "body: EOF while parsing",
        ),
        (
            "/v1/splits",
            r#"{"routes": {"web": 5, "nope": 5}}"#,
            "routes: unknown route \"nope\"",
        ),
        (
            "/v1/splits",
            r#"{"routes": {"web": 5, "api": 250}}"#,
            "routes.api: must be a number from 0 to 100",
        ),
    ];
    for (path, body, expected) in cases {
        let resp = client
            .put(admin.base.clone() + path)
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let error: serde_json::Value = resp.json().await.unwrap();
        let message = error["error"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{body}: {message:?} lacks {expected:?}"
        );
    }
    assert_eq!(
        admin.state().await,
        state,
        "an invalid body changed the state"
    );

    // Several routes in one atomic write: one new generation.
    let resp = admin
        .put("/v1/splits", Some(TOKEN), json!({"routes": {"web": 30, "api": 60}, "expected_generation": 1, "actor": "test", "reason": "batch"}))
        .await;
    assert_eq!(resp.status(), 200);
    let state = admin.state().await;
    assert_eq!(state["generation"], 2);
    assert_eq!(state["routes"]["web"]["green_percent"], 30.0);
    assert_eq!(state["routes"]["api"]["green_percent"], 60.0);
    assert_eq!(state["actor"], "test");
    assert!(!gw.log_text().contains(TOKEN), "the token reached the log");

    // A gateway with no token: reads work, mutations are refused.
    gw.token = None;
    gw.restart();
    let admin = Admin::new(&gw);
    let resp = admin.put("/v1/routes/web/split", Some(TOKEN), body).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(admin.state().await["routes"]["web"]["green_percent"], 0.0);
    assert!(gw.log_text().contains("no admin token configured"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_split_survives_kill_9_and_a_corrupt_state_file_stops_start_up() {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let mut gw = Gateway::start(&file_store(one_route_config(
        &[&blue],
        &[&green],
        "    stickiness: {header: x-client-id}",
    )));
    let admin = Admin::new(&gw);
    admin.set_split("web", 37.5).await;
    gw.kill();
    gw.restart();
    let state = admin.state().await;
    assert_eq!(state["routes"]["web"]["green_percent"], 37.5);
    assert_eq!(state["generation"], 1);
    let client = reqwest::Client::new();
    let share = green_share(&client, &gw.url("/"), 4_000).await;
    assert!(
        (share - 37.5).abs() <= 3.0,
        "traffic does not follow the stored split: {share}"
    );

    // A truncated state file: start-up stops and names it.
    gw.kill();
    let state_file = gw.dir.path().join("state.json");
    let text = std::fs::read(&state_file).unwrap();
    std::fs::write(&state_file, &text[..text.len() / 2]).unwrap();
    let out = gw.command().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&state_file.display().to_string()),
        "{stderr}"
    );
    assert!(!e2e::is_listening(gw.proxy));
    // The explicit flag starts from the config's initial split.
    let mut reset = gw.command();
    reset
        .arg("--reset-state")
        .stderr(std::process::Stdio::null());
    let mut child = e2e::Proc {
        child: reset.spawn().unwrap(),
    };
    e2e::wait_listening(gw.admin, Duration::from_secs(10));
    assert_eq!(admin.state().await["routes"]["web"]["green_percent"], 0.0);
    child.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_reload_keeps_the_old_config_and_a_good_one_drops_nothing() {
    let blue = Backend::start("blue");
    let blue2 = Backend::start("blue-2");
    let green = Backend::start("green");
    let gw = Gateway::start(&one_route_config(&[&blue], &[&green], ""));
    let admin = Admin::new(&gw);
    let client = reqwest::Client::new();
    admin.set_split("web", 0.0).await;
    let good = std::fs::read_to_string(gw.config_path()).unwrap();

    // Broken: refused through the API (with the reason) and on SIGHUP.
    std::fs::write(
        gw.config_path(),
        good.replace("name: web", "name: web\n    initial_green_percent: 120"),
    )
    .unwrap();
    let resp = client
        .post(gw.admin_url("/v1/reload"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body = resp.text().await.unwrap();
    assert!(body.contains("routes[0].initial_green_percent"), "{body}");
    gw.proc.as_ref().unwrap().signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        gw.log_text().contains("SIGHUP: the new config was refused"),
        "{}",
        gw.log_text()
    );
    let resp = client.get(gw.url("/")).send().await.unwrap();
    assert_eq!(resp.headers()["x-backend"], "blue");

    // Good: blue moves to another endpoint under load, nothing fails, and
    // the split set through the API survives the reload.
    admin.set_split("web", 20.0).await;
    let url = gw.url("/");
    let load = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        let (mut ok, mut failed) = (0, 0);
        while Instant::now() < deadline {
            match client.get(&url).send().await {
                Ok(r) if r.status() == 200 => ok += 1,
                _ => failed += 1,
            }
        }
        (ok, failed)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(
        gw.config_path(),
        good.replace(&blue.addr.to_string(), &blue2.addr.to_string()),
    )
    .unwrap();
    gw.proc.as_ref().unwrap().signal("HUP");
    let (ok, failed) = load.await.unwrap();
    assert_eq!(failed, 0, "requests failed across the reload");
    assert!(ok > 100);
    assert!(gw.log_text().contains("config reloaded"));
    let state = admin.state().await;
    assert_eq!(state["routes"]["web"]["green_percent"], 20.0);
    assert_eq!(
        state["routes"]["web"]["blue"]["endpoints"][0]["address"],
        blue2.addr.to_string()
    );
    admin.set_split("web", 0.0).await;
    let resp = client.get(gw.url("/")).send().await.unwrap();
    assert_eq!(resp.headers()["x-backend"], "blue-2");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_request_in_flight_finish_then_exits_at_once() {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let mut gw = Gateway::start(&one_route_config(&[&blue], &[&green], ""));
    let url = gw.url("/slow?ms=2000");
    let request = tokio::spawn(async move {
        let resp = reqwest::get(url).await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        (status, body, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let proc = gw.proc.as_mut().unwrap();
    proc.signal("TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !e2e::is_listening(gw.proxy),
        "still accepting after SIGTERM"
    );
    let (status, body, answered) = request.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, "blue slow\n");
    let proc = gw.proc.as_mut().unwrap();
    let exit = loop {
        if let Some(status) = proc.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            answered.elapsed() < Duration::from_secs(1),
            "still running 1 s after the last request"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(exit.success(), "exit status {exit}");

    // With nothing in flight it exits within a second of the signal.
    gw.restart();
    let signalled = Instant::now();
    let proc = gw.proc.as_mut().unwrap();
    proc.signal("TERM");
    let exit = loop {
        if let Some(status) = proc.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(1),
            "idle gateway still running 1 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(exit.success());
}
