//! Smoke checks: representative requests sent through the gateway pinned
//! to green, before the first step and before each step.

use crate::plan::SmokeCheck;

/// The header a gateway answers a pinned request with, naming the colour
/// that served it.
pub const SERVED_BY: &str = "x-cutover-served-by";
use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SmokeResult {
    pub name: String,
    pub passed: bool,
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The X-Request-Id it was sent with: the gateway's and green's logs
    /// name the same request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The failed checks, each as `name: problem`.
pub fn failures(results: &[SmokeResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: {}", r.name, r.problem.as_deref().unwrap_or("failed")))
        .collect()
}

/// How smoke requests reach green.
pub struct SmokeTarget {
    pub proxy_url: String,
    pub pin_header: String,
    pub pin_secret: Option<String>,
}

pub async fn run_all(target: &SmokeTarget, checks: &[SmokeCheck]) -> Vec<SmokeResult> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for check in checks {
        out.push(run_one(&client, target, check).await);
    }
    out
}

async fn run_one(
    client: &reqwest::Client,
    target: &SmokeTarget,
    check: &SmokeCheck,
) -> SmokeResult {
    let method =
        reqwest::Method::from_bytes(check.method.as_bytes()).expect("validated with the plan");
    let url = format!("{}{}", target.proxy_url.trim_end_matches('/'), check.path);
    let request_id = format!(
        "smoke-{}-{}",
        check
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let mut req = client
        .request(method, url)
        .timeout(check.max_latency * 2)
        .header(&target.pin_header, "green")
        .header("x-request-id", &request_id);
    if let Some(secret) = &target.pin_secret {
        req = req.header("x-cutover-pin-secret", secret);
    }
    for (k, v) in &check.headers {
        req = req.header(k, v);
    }
    if let Some(body) = &check.body {
        req = req.body(body.clone());
    }
    // A request that got no answer at all (the connection refused or cut,
    // e.g. one gateway replica restarting behind the load balancer) is
    // sent once more: the check is about green's answer, not one socket.
    let mut started = Instant::now();
    let mut sent = req.try_clone().expect("bodies are bytes").send().await;
    if sent.as_ref().is_err_and(|e| !e.is_timeout()) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        started = Instant::now();
        sent = req.send().await;
    }
    let result = match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let served_by = resp
                .headers()
                .get(SERVED_BY)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = resp.text().await.unwrap_or_default();
            Ok((status, served_by, body))
        }
        Err(e) => Err(e.to_string()),
    };
    let latency = started.elapsed();
    let (status, problem) = match result {
        Err(e) => (None, Some(format!("request failed: {e}"))),
        Ok((status, served_by, body)) => {
            let problem = if let Some(why) = not_green(target, status, served_by.as_deref()) {
                Some(why)
            } else if status != check.expect_status {
                Some(format!("status {status}, expected {}", check.expect_status))
            } else if check
                .expect_body
                .as_ref()
                .is_some_and(|s| !body.contains(s.as_str()))
            {
                Some(format!(
                    "body lacks {:?}",
                    check.expect_body.as_deref().unwrap_or("")
                ))
            } else if latency > check.max_latency {
                Some(format!(
                    "took {} ms, limit {} ms",
                    latency.as_millis(),
                    check.max_latency.as_millis()
                ))
            } else {
                None
            };
            (Some(status), problem)
        }
    };
    SmokeResult {
        name: check.name.clone(),
        passed: problem.is_none(),
        status,
        latency_ms: latency.as_millis() as u64,
        problem: problem.map(|p| format!("{p} (request id {request_id})")),
        request_id: Some(request_id),
    }
}

/// Why an answer does not prove green served it, if it does not. A pin
/// the gateway did not honour is routed by the split, so without this a
/// smoke check could pass on blue.
fn not_green(target: &SmokeTarget, status: u16, served_by: Option<&str>) -> Option<String> {
    match served_by {
        Some("green") => None,
        Some(other) => Some(format!("answered by {other}, not green")),
        // The gateway's own answer (no green endpoint, a bad request)
        // fails on its status.
        None if status >= 500 => None,
        None if target.pin_secret.is_some() => Some(format!(
            "the gateway did not honour the pin (no {SERVED_BY} in the answer, which came from whichever colour the split chose): it refused the pin secret (fleet.pin_secret_file / pin_secret_env must hold the gateway's pin.secret_file)"
        )),
        None => Some(format!(
            "the gateway did not honour the pin (no {SERVED_BY} in the answer, which came from whichever colour the split chose): this engine's address is not in the gateway's pin.trusted_sources and the plan gives no pin secret (fleet.pin_secret_file or fleet.pin_secret_env)"
        )),
    }
}
