//! The PromQL gate source: per-colour figures from a Prometheus server's
//! HTTP API (instant queries over the window).

use super::{ColorFigures, Figures};
use crate::fleet::FleetError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// PromQL over a Prometheus server's HTTP API.
pub struct Prometheus {
    url: String,
    routes: String,
    window: Duration,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct PromResponse {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<PromData>,
}

#[derive(Deserialize)]
struct PromData {
    result: Vec<PromSeries>,
}

#[derive(Deserialize)]
struct PromSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

impl Prometheus {
    pub fn new(url: &str, routes: &[String], window: Duration) -> Prometheus {
        Prometheus {
            url: url.trim_end_matches('/').to_owned(),
            routes: routes.join("|"),
            window,
            client: reqwest::Client::new(),
        }
    }

    /// One instant query; the value per `color` label (or "" without one).
    /// NaN (no data) comes back as absent.
    async fn query(&self, promql: &str) -> Result<BTreeMap<String, f64>, FleetError> {
        let fail = |m: String| FleetError::Setup(format!("prometheus {}: {m}", self.url));
        let resp: PromResponse = self
            .client
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?
            .json()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if resp.status != "success" {
            return Err(fail(format!(
                "query {promql:?} failed: {}",
                resp.error.unwrap_or_default()
            )));
        }
        Ok(resp
            .data
            .map(|d| d.result)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| {
                let v: f64 = s.value.1.parse().ok()?;
                v.is_finite()
                    .then(|| (s.metric.get("color").cloned().unwrap_or_default(), v))
            })
            .collect())
    }

    pub(super) async fn figures(&self) -> Result<Figures, FleetError> {
        let w = format!("{}s", self.window.as_secs().max(1));
        let sel = format!(r#"route=~"{}""#, self.routes);
        let requests = self
            .query(&format!(
                r#"sum by (color) (increase(gateway_requests_total{{{sel},pinned="false"}}[{w}]))"#
            ))
            .await?;
        let errors = self
            // 5xx, and gRPC responses whose grpc-status is not 0 (two
            // selectors over disjoint series).
            .query(&format!(r#"sum by (color) (increase(gateway_requests_total{{{sel},pinned="false",code=~"5.."}}[{w}]) or increase(gateway_requests_total{{{sel},pinned="false",code!~"5..",grpc_status!~"0?"}}[{w}]))"#))
            .await?;
        let p99 = self
            .query(&format!(r#"histogram_quantile(0.99, sum by (le, color) (rate(gateway_request_duration_seconds_bucket{{{sel},pinned="false"}}[{w}])))"#))
            .await?;
        let healthy = self
            .query(&format!(
                r#"sum by (color) (gateway_backend_healthy{{{sel}}})"#
            ))
            .await?;
        let failovers = self
            .query(&format!(
                r#"sum(increase(gateway_failover_requests_total{{{sel},from="green"}}[{w}]))"#
            ))
            .await?;
        let seconds = self.window.as_secs_f64();
        let color = |c: &str| {
            let requests = requests.get(c).copied().unwrap_or(0.0).round() as u64;
            let errors = (errors.get(c).copied().unwrap_or(0.0).round() as u64).min(requests);
            ColorFigures {
                requests,
                errors,
                success_rate: (requests > 0).then(|| 1.0 - errors as f64 / requests as f64),
                p99_seconds: p99.get(c).copied(),
                requests_per_second: requests as f64 / seconds,
            }
        };
        Ok(Figures {
            window_seconds: seconds,
            blue: color("blue"),
            green: color("green"),
            blue_healthy_endpoints: healthy.get("blue").copied().unwrap_or(0.0) as u64,
            green_healthy_endpoints: healthy.get("green").copied().unwrap_or(0.0) as u64,
            failovers_from_green: failovers.values().sum::<f64>().round() as u64,
            // Mirror steps need the gateway source (the plan says so).
            mirror: None,
        })
    }
}
