//! What mirroring a route came to since the gateway started: counts per
//! outcome and the latest differing exchanges, for `/v1/state` (the cutover
//! engine journals them). A sample holds method, path (no query), the
//! request ID, both statuses and the difference: never a header, so never
//! an Authorization or Cookie value.

use super::capture::RequestCopy;
use super::compare::Outcome;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Samples of differences kept per route.
const SAMPLES: usize = 20;

#[derive(Default)]
pub struct Tally {
    counts: [AtomicU64; Outcome::ALL.len()],
    samples: Mutex<VecDeque<Sample>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// RFC 3339.
    pub time: String,
    pub method: String,
    pub path: String,
    pub request_id: Option<String>,
    pub blue_status: u16,
    /// `None`: green gave no answer.
    pub green_status: Option<u16>,
    pub result: &'static str,
    pub difference: String,
}

impl Sample {
    pub fn new(
        request: &RequestCopy,
        blue_status: u16,
        green_status: Option<u16>,
        outcome: Outcome,
        difference: String,
    ) -> Sample {
        let (method, path) = request.method_and_path();
        let request_id = request.header().ok().and_then(|h| {
            let id = h.headers.get(crate::request_id::X_REQUEST_ID)?;
            Some(String::from_utf8_lossy(id.as_bytes()).into_owned())
        });
        Sample {
            time: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            method,
            path,
            request_id,
            blue_status,
            green_status,
            result: outcome.as_str(),
            difference,
        }
    }
}

impl Tally {
    pub fn count(&self, outcome: Outcome) {
        self.counts[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn keep(&self, sample: Sample) {
        let mut samples = self.samples.lock().expect("never poisoned");
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// `{"counts": {"match": n, …}, "samples": [...]}`.
    pub fn view(&self) -> serde_json::Value {
        let counts: serde_json::Map<String, serde_json::Value> = Outcome::ALL
            .iter()
            .map(|o| {
                (
                    o.as_str().to_owned(),
                    self.counts[*o as usize].load(Ordering::Relaxed).into(),
                )
            })
            .collect();
        let samples = self.samples.lock().expect("never poisoned").clone();
        serde_json::json!({"counts": counts, "samples": samples})
    }
}
