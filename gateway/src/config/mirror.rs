//! A route's `mirror:` block: which of blue's requests are copied to
//! green, and how green's answers are compared with blue's.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// Share of blue's requests copied to green (0–100) until an operator
    /// changes it (then the state store wins, like the split).
    #[serde(default)]
    pub percent: f64,
    /// Methods that are copied; others never are (writes must not run
    /// twice unless an operator lists them on purpose).
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Requests with larger bodies are not copied, and answers are
    /// compared up to this size (e.g. `64KiB`).
    #[serde(default = "default_max_body")]
    pub max_body: bytesize::ByteSize,
    /// Copies in flight to green at once; past it copies are dropped.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// How long green may take to answer a copy.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default)]
    pub compare: CompareConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CompareConfig {
    /// Compare the status codes.
    #[serde(default = "yes")]
    pub status: bool,
    /// Response headers whose values must be equal (names, any case).
    #[serde(default)]
    pub headers: Vec<String>,
    /// How bodies are compared.
    #[serde(default)]
    pub body: BodyCompare,
    /// With `body: json`: fields left out before comparing: a name (at any
    /// depth, e.g. `timestamp`) or a JSON pointer (`/meta/request_id`).
    #[serde(default)]
    pub ignore_fields: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BodyCompare {
    /// Byte for byte.
    #[default]
    Exact,
    /// As JSON values (key order and spacing do not matter).
    Json,
    /// Bodies are not compared.
    None,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            status: true,
            headers: Vec::new(),
            body: BodyCompare::default(),
            ignore_fields: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_methods() -> Vec<String> {
    vec!["GET".into(), "HEAD".into()]
}

fn default_max_body() -> bytesize::ByteSize {
    bytesize::ByteSize::kib(64)
}

fn default_max_in_flight() -> usize {
    64
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl MirrorConfig {
    /// Problems serde cannot see, each naming its field under `at`.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        if crate::split::GreenPercent::from_percent(self.percent).is_err() {
            out.push(format!(
                "{at}.percent: must be a number from 0 to 100 with at most two decimals, got {}",
                self.percent
            ));
        }
        for (i, method) in self.methods.iter().enumerate() {
            if http::Method::from_bytes(method.as_bytes()).is_err()
                || method.to_ascii_uppercase() != *method
            {
                out.push(format!(
                    "{at}.methods[{i}]: {method:?} is not an HTTP method in capitals (GET, HEAD, POST, …)"
                ));
            }
        }
        if self.max_in_flight == 0 {
            out.push(format!("{at}.max_in_flight: must be at least 1"));
        }
        if self.timeout.is_zero() {
            out.push(format!("{at}.timeout: must be more than 0"));
        }
        if !self.compare.ignore_fields.is_empty() && self.compare.body != BodyCompare::Json {
            out.push(format!(
                "{at}.compare.ignore_fields: only used with body: json (body is {:?})",
                self.compare.body
            ));
        }
        out
    }
}
