//! Health checks, whole-colour failover, connect retries, and no replay of
//! a non-idempotent request once it was sent.

use e2e::{one_route_config, Admin, Backend, Gateway};
use futures_util::{stream, StreamExt};
use std::time::Duration;

/// interval 200ms × unhealthy_threshold 2, from `one_route_config`.
const DETECTION: Duration = Duration::from_millis(400);

async fn served_by(client: &reqwest::Client, url: &str, n: usize, tag: &str) -> Vec<(u16, String)> {
    stream::iter(0..n)
        .map(|i| {
            let req = client.get(url).header("x-client-id", format!("{tag}-{i}"));
            async move {
                match req.send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let backend = r
                            .headers()
                            .get("x-backend")
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default();
                        (status, backend)
                    }
                    Err(e) => (0, e.to_string()),
                }
            }
        })
        .buffered(16)
        .collect()
        .await
}

fn metric(metrics: &str, prefix: &str) -> f64 {
    e2e::metric_value(metrics, prefix).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_colour_fails_over_and_comes_back() {
    let blue = Backend::start("blue");
    let mut green1 = Backend::start("green");
    let mut green2 = Backend::start("green");
    let gw = Gateway::start(&one_route_config(
        &[&blue],
        &[&green1, &green2],
        "    stickiness: {header: x-client-id}",
    ));
    let admin = Admin::new(&gw);
    let client = reqwest::Client::new();
    admin.set_split("web", 50.0).await;
    let before = served_by(&client, &gw.url("/"), 200, "a").await;
    assert!(before.iter().any(|(_, b)| b == "green"));

    green1.stop();
    green2.stop();
    tokio::time::sleep(DETECTION + Duration::from_secs(1)).await;
    let during = served_by(&client, &gw.url("/"), 400, "b").await;
    for (status, backend) in &during {
        assert_eq!(
            (*status, backend.as_str()),
            (200, "blue"),
            "with green down"
        );
    }
    let state = admin.state().await;
    assert_eq!(state["routes"]["web"]["green"]["healthy"], false, "{state}");
    let metrics = admin.metrics().await;
    assert!(
        metric(
            &metrics,
            r#"gateway_failover_requests_total{from="green",route="web",to="blue"}"#
        ) > 0.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            &format!(
                r#"gateway_backend_healthy{{color="green",endpoint="{}",route="web"}}"#,
                green1.addr
            )
        ),
        0.0
    );

    green1.restart();
    green2.restart();
    // healthy_threshold 1 × interval 200ms, plus a margin.
    tokio::time::sleep(Duration::from_millis(200) + Duration::from_secs(1)).await;
    let after = served_by(&client, &gw.url("/"), 200, "a").await;
    assert_eq!(
        after, before,
        "clients did not return to their colours after green recovered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_dead_endpoint_causes_no_client_error() {
    let h1 = reqwest::Client::new();
    let h2c = e2e::h2c_client();
    for (client, name) in [(&h1, "HTTP/1"), (&h2c, "h2c")] {
        let blue1 = Backend::start("blue");
        let mut blue2 = Backend::start("blue");
        let green = Backend::start("green");
        let gw = Gateway::start(&one_route_config(&[&blue1, &blue2], &[&green], ""));
        let admin = Admin::new(&gw);
        blue2.stop();
        // Straight away, before the health checks notice: connect failures
        // are retried on the other endpoint.
        let results = served_by(client, &gw.url("/"), 300, "c").await;
        for (status, backend) in results {
            assert_eq!((status, backend.as_str()), (200, "blue"), "{name}");
        }
        let metrics = admin.metrics().await;
        let failed = r#"gateway_upstream_errors_total{color="blue",kind="connect",route="web"}"#;
        assert!(metrics.contains(failed), "{name}: {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_whose_upstream_dies_is_not_replayed() {
    let blue1 = Backend::start("blue");
    let blue2 = Backend::start("blue");
    let green = Backend::start("green");
    let gw = Gateway::start(&one_route_config(&[&blue1, &blue2], &[&green], ""));
    let client = reqwest::Client::new();
    for attempt in 0..5 {
        let resp = client
            .post(gw.url("/die"))
            .body(format!("order #{attempt}"))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_server_error(), "got {}", resp.status());
    }
    let hits =
        blue1.stats().await["die"].as_u64().unwrap() + blue2.stats().await["die"].as_u64().unwrap();
    assert_eq!(hits, 5, "a POST reached upstream more than once");
    assert_eq!(green.stats().await["die"], 0);
}
