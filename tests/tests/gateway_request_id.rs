//! Every request has one X-Request-Id, on both request paths (lean HTTP/1
//! and pingora-proxy's HTTP/2): the client's when usable, generated
//! otherwise; the upstream and the client see the same one, and
//! `traceparent` passes through untouched.

use e2e::{one_route_config, Backend, Gateway};

/// (the ID the client got back, the ID and traceparent the upstream saw)
async fn ids(
    client: &reqwest::Client,
    url: &str,
    sent: Option<&str>,
) -> (String, String, Option<String>) {
    let mut req = client.get(url).header(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    if let Some(id) = sent {
        req = req.header("x-request-id", id);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let back = resp.headers().get_all("x-request-id").iter().count();
    assert_eq!(back, 1, "one X-Request-Id back");
    let returned = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: serde_json::Value = resp.json().await.unwrap();
    let upstream = body["headers"]["x-request-id"].as_str().unwrap().to_owned();
    let trace = body["headers"]["traceparent"].as_str().map(str::to_owned);
    (returned, upstream, trace)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_request_has_one_id_seen_upstream_and_by_the_client() {
    let blue = Backend::start("blue");
    let gw = Gateway::start(&one_route_config(&[&blue], &[&blue], ""));
    let url = gw.url("/echo");
    let h1 = reqwest::Client::new();
    let h2c = e2e::h2c_client();
    for (client, path) in [(&h1, "HTTP/1"), (&h2c, "h2c")] {
        // None sent: one is generated, 32 hex digits, new each time.
        let (returned, upstream, trace) = ids(client, &url, None).await;
        assert_eq!(returned, upstream, "{path}");
        assert_eq!(returned.len(), 32, "{path}: {returned}");
        assert!(returned.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(ids(client, &url, None).await.0, returned, "{path}");
        assert_eq!(
            trace.as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "{path}"
        );
        // The client's own is kept both ways.
        let (returned, upstream, _) = ids(client, &url, Some("order-42-retry-1")).await;
        assert_eq!(
            (returned.as_str(), upstream.as_str()),
            ("order-42-retry-1", "order-42-retry-1"),
            "{path}"
        );
        // One too long to log is replaced.
        let long = "x".repeat(200);
        let (returned, upstream, _) = ids(client, &url, Some(&long)).await;
        assert_eq!(returned, upstream, "{path}");
        assert_eq!(returned.len(), 32, "{path}");
    }
}
