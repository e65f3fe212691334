//! Per-colour figures over a sliding window, from the gateways' own
//! `/metrics` (counter deltas between scrapes) or from a Prometheus server
//! (PromQL). Pinned (smoke) requests are always left out.

mod mirror;
mod prometheus;

pub use mirror::MirrorFigures;
pub use prometheus::Prometheus;

use crate::fleet::{Fleet, FleetError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// One colour's traffic in the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColorFigures {
    pub requests: u64,
    /// 5xx responses.
    pub errors: u64,
    /// `None` without traffic: never a NaN.
    pub success_rate: Option<f64>,
    pub p99_seconds: Option<f64>,
    pub requests_per_second: f64,
}

/// What the gates judge; journaled with every decision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub window_seconds: f64,
    pub blue: ColorFigures,
    pub green: ColorFigures,
    /// Endpoints in rotation per colour, summed over replicas.
    pub blue_healthy_endpoints: u64,
    pub green_healthy_endpoints: u64,
    /// Requests meant for green that blue served in the window.
    pub failovers_from_green: u64,
    /// Mirrored traffic, where the gateways mirror.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorFigures>,
}

/// Raw cumulative counters of one replica for one colour.
#[derive(Clone, Debug, Default)]
struct Counters {
    requests: f64,
    errors: f64,
    /// Upper bound → cumulative count.
    buckets: BTreeMap<OrderedF64, f64>,
}

/// A bucket bound as a map key (bounds are never NaN).
#[derive(Clone, Copy, Debug, PartialEq)]
struct OrderedF64(f64);
impl Eq for OrderedF64 {}
impl PartialOrd for OrderedF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrderedF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Clone, Debug, Default)]
struct ReplicaSample {
    blue: Counters,
    green: Counters,
    failovers_from_green: f64,
    blue_healthy: u64,
    green_healthy: u64,
    mirror: mirror::MirrorCounters,
}

/// Parses one replica's scrape, keeping the given routes' samples.
fn parse_scrape(text: &str, routes: &[String]) -> ReplicaSample {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap_or(prometheus_parse::Scrape {
        docs: HashMap::new(),
        samples: Vec::new(),
    });
    let mut s = ReplicaSample::default();
    for sample in scrape.samples {
        let l = &sample.labels;
        if !l
            .get("route")
            .is_some_and(|r| routes.iter().any(|x| x == r))
        {
            continue;
        }
        let value = match &sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            _ => 0.0,
        };
        if s.mirror.take(&sample, value) {
            continue;
        }
        let counters = match l.get("color") {
            Some("green") => &mut s.green,
            _ => &mut s.blue,
        };
        match sample.metric.as_str() {
            "gateway_requests_total" if l.get("pinned") == Some("false") => {
                counters.requests += value;
                let server_error = l.get("code").is_some_and(|c| c.starts_with('5'));
                let grpc_error = l
                    .get("grpc_status")
                    .is_some_and(|g| !g.is_empty() && g != "0");
                if server_error || grpc_error {
                    counters.errors += value;
                }
            }
            // A TCP route's connection is one request; one that no endpoint
            // took, or whose upstream failed before its first byte, an error.
            "gateway_tcp_connections_total" => {
                counters.requests += value;
                if l.get("result") != Some("ok") {
                    counters.errors += value;
                }
            }
            "gateway_request_duration_seconds" | "gateway_tcp_connect_duration_seconds"
                if l.get("pinned") != Some("true") =>
            {
                if let prometheus_parse::Value::Histogram(buckets) = &sample.value {
                    for b in buckets {
                        *counters.buckets.entry(OrderedF64(b.less_than)).or_default() += b.count;
                    }
                }
            }
            "gateway_failover_requests_total" if l.get("from") == Some("green") => {
                s.failovers_from_green += value;
            }
            "gateway_backend_healthy" => {
                let healthy = u64::from(value >= 1.0);
                match l.get("color") {
                    Some("green") => s.green_healthy += healthy,
                    _ => s.blue_healthy += healthy,
                }
            }
            _ => {}
        }
    }
    s
}

/// Counter increase; a counter that went down was reset (the replica
/// restarted), so everything it counts now is new — never negative.
fn increase(now: f64, then: f64) -> f64 {
    if now >= then {
        now - then
    } else {
        now
    }
}

fn delta(now: &Counters, then: &Counters) -> Counters {
    if now.requests < then.requests {
        return now.clone(); // reset: the whole replica restarted
    }
    Counters {
        requests: increase(now.requests, then.requests),
        errors: increase(now.errors, then.errors),
        buckets: now
            .buckets
            .iter()
            .map(|(le, c)| {
                (
                    *le,
                    increase(*c, then.buckets.get(le).copied().unwrap_or(0.0)),
                )
            })
            .collect(),
    }
}

/// The 0.99 quantile from cumulative buckets, interpolated within the
/// bucket as Prometheus's `histogram_quantile` does.
pub fn p99_from_buckets(buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = 0.99 * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let width = count - lower.1;
            let fraction = if width > 0.0 {
                (rank - lower.1) / width
            } else {
                1.0
            };
            return Some(lower.0 + (le - lower.0) * fraction);
        }
        lower = (le, count);
    }
    Some(lower.0)
}

fn color_figures(c: &Counters, seconds: f64) -> ColorFigures {
    let requests = c.requests.round() as u64;
    let errors = c.errors.round().min(c.requests.round()) as u64;
    let buckets: Vec<(f64, f64)> = c.buckets.iter().map(|(le, n)| (le.0, *n)).collect();
    ColorFigures {
        requests,
        errors,
        success_rate: (requests > 0).then(|| 1.0 - errors as f64 / requests as f64),
        p99_seconds: p99_from_buckets(&buckets),
        requests_per_second: if seconds > 0.0 {
            c.requests / seconds
        } else {
            0.0
        },
    }
}

/// Where figures come from; `reset` starts a new step's window.
pub enum Source {
    Gateway(GatewayScrapes),
    Prometheus(Prometheus),
}

impl Source {
    pub fn reset(&mut self) {
        if let Source::Gateway(g) = self {
            g.history.clear();
        }
    }

    pub async fn figures(&mut self, fleet: &Fleet) -> Result<Figures, FleetError> {
        match self {
            Source::Gateway(g) => g.figures(fleet).await,
            Source::Prometheus(p) => p.figures().await,
        }
    }
}

/// Scrapes of every replica over time; figures are deltas across the
/// window (within the current step).
pub struct GatewayScrapes {
    routes: Vec<String>,
    window: Duration,
    history: VecDeque<(Instant, HashMap<String, ReplicaSample>)>,
}

impl GatewayScrapes {
    pub fn new(routes: Vec<String>, window: Duration) -> GatewayScrapes {
        GatewayScrapes {
            routes,
            window,
            history: VecDeque::new(),
        }
    }

    async fn figures(&mut self, fleet: &Fleet) -> Result<Figures, FleetError> {
        let now = Instant::now();
        let samples: HashMap<String, ReplicaSample> = fleet
            .scrape()
            .await?
            .into_iter()
            .map(|(replica, text)| (replica, parse_scrape(&text, &self.routes)))
            .collect();
        self.history.push_back((now, samples));
        // Keep the newest scrape at least a window old as the baseline.
        while self.history.len() > 2 && now.duration_since(self.history[1].0) >= self.window {
            self.history.pop_front();
        }
        let (then_at, then) = self.history.front().expect("just pushed");
        let (_, latest) = self.history.back().expect("just pushed");
        let seconds = now.duration_since(*then_at).as_secs_f64();
        let mut blue = Counters::default();
        let mut green = Counters::default();
        let mut figures = Figures {
            window_seconds: seconds,
            ..Figures::default()
        };
        let mut failovers = 0.0;
        let mut mirrored = mirror::MirrorCounters::default();
        for (replica, sample) in latest {
            let base = then.get(replica).cloned().unwrap_or_default();
            let single = self.history.len() == 1;
            for (sum, now_c, then_c) in [
                (&mut blue, &sample.blue, &base.blue),
                (&mut green, &sample.green, &base.green),
            ] {
                let d = if single {
                    Counters::default()
                } else {
                    delta(now_c, then_c)
                };
                sum.requests += d.requests;
                sum.errors += d.errors;
                for (le, c) in d.buckets {
                    *sum.buckets.entry(le).or_default() += c;
                }
            }
            if !single {
                failovers += increase(sample.failovers_from_green, base.failovers_from_green);
                mirrored.add(&sample.mirror.since(&base.mirror));
            }
            figures.blue_healthy_endpoints += sample.blue_healthy;
            figures.green_healthy_endpoints += sample.green_healthy;
        }
        figures.blue = color_figures(&blue, seconds);
        figures.green = color_figures(&green, seconds);
        figures.failovers_from_green = failovers.round() as u64;
        figures.mirror = mirrored.figures(seconds);
        Ok(figures)
    }
}

#[cfg(test)]
mod tests;
