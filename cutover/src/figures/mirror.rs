//! Figures of mirrored traffic: how green's answers to the copies compare
//! with blue's answers to the same requests (from the gateways'
//! `gateway_mirror_*` metrics, as counter deltas over the window).

use super::{color_figures, delta, increase, ColorFigures, Counters, OrderedF64};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a mirror step is judged on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorFigures {
    /// Copies whose answers were compared.
    pub compared: u64,
    /// By result: `match`, `status_differs`, `headers_differ`,
    /// `body_differs`, `error` (green gave no answer), `dropped`.
    pub results: BTreeMap<String, u64>,
    /// Share of compared answers that differ (`None` without any).
    pub mismatch_rate: Option<f64>,
    /// Each colour on the same requests: green's answers to the copies,
    /// blue's to the clients (errors: 5xx or no answer).
    pub blue: ColorFigures,
    pub green: ColorFigures,
}

/// One replica's cumulative mirror counters.
#[derive(Clone, Debug, Default)]
pub(super) struct MirrorCounters {
    pub blue: Counters,
    pub green: Counters,
    pub results: BTreeMap<String, f64>,
    /// The replica exports mirror metrics at all.
    pub seen: bool,
}

impl MirrorCounters {
    /// Takes a scrape's sample if it is a mirror metric.
    pub fn take(&mut self, sample: &prometheus_parse::Sample, value: f64) -> bool {
        let l = &sample.labels;
        match sample.metric.as_str() {
            "gateway_mirror_total" => {
                *self
                    .results
                    .entry(l.get("result").unwrap_or("?").to_owned())
                    .or_default() += value;
            }
            "gateway_mirror_errors_total" => self.colour(l.get("color")).errors += value,
            "gateway_mirror_duration_seconds" => {
                if let prometheus_parse::Value::Histogram(buckets) = &sample.value {
                    let c = self.colour(l.get("color"));
                    for b in buckets {
                        *c.buckets.entry(OrderedF64(b.less_than)).or_default() += b.count;
                    }
                    c.requests += buckets.iter().map(|b| b.count).fold(0.0, f64::max);
                }
            }
            _ => return false,
        }
        self.seen = true;
        true
    }

    fn colour(&mut self, color: Option<&str>) -> &mut Counters {
        match color {
            Some("green") => &mut self.green,
            _ => &mut self.blue,
        }
    }

    /// What changed since `then`.
    pub fn since(&self, then: &MirrorCounters) -> MirrorCounters {
        MirrorCounters {
            blue: delta(&self.blue, &then.blue),
            green: delta(&self.green, &then.green),
            results: self
                .results
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        increase(*v, then.results.get(k).copied().unwrap_or(0.0)),
                    )
                })
                .collect(),
            seen: self.seen,
        }
    }

    pub fn add(&mut self, other: &MirrorCounters) {
        for (sum, d) in [
            (&mut self.blue, &other.blue),
            (&mut self.green, &other.green),
        ] {
            sum.requests += d.requests;
            sum.errors += d.errors;
            for (le, c) in &d.buckets {
                *sum.buckets.entry(*le).or_default() += c;
            }
        }
        for (k, v) in &other.results {
            *self.results.entry(k.clone()).or_default() += v;
        }
        self.seen |= other.seen;
    }

    /// The figures, when any replica mirrors.
    pub fn figures(&self, seconds: f64) -> Option<MirrorFigures> {
        if !self.seen {
            return None;
        }
        let results: BTreeMap<String, u64> = self
            .results
            .iter()
            .map(|(k, v)| (k.clone(), v.round() as u64))
            .collect();
        let count = |k: &str| results.get(k).copied().unwrap_or(0);
        let differing = count("status_differs") + count("headers_differ") + count("body_differs");
        let compared = count("match") + differing;
        Some(MirrorFigures {
            compared,
            mismatch_rate: (compared > 0).then(|| differing as f64 / compared as f64),
            results,
            blue: color_figures(&self.blue, seconds),
            green: color_figures(&self.green, seconds),
        })
    }
}
