//! Mirror steps: a share of blue's requests copied to green, green's
//! answers compared with blue's before any real traffic moves.

use super::Step;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The gates of a mirror step, beside `min_requests` (compared answers)
/// and `max_error_rate_increase` (green's 5xx or missing answers against
/// blue's on the same requests).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MirrorGates {
    /// Share of compared answers that may differ from blue's (0–1).
    #[serde(default = "default_mismatch")]
    pub max_mismatch_rate: f64,
    /// Green's p99 on the mirrored requests may exceed blue's by this much.
    #[serde(default = "default_p99_increase", with = "humantime_serde")]
    pub max_p99_increase: Duration,
}

impl Default for MirrorGates {
    fn default() -> Self {
        MirrorGates {
            max_mismatch_rate: default_mismatch(),
            max_p99_increase: default_p99_increase(),
        }
    }
}

fn default_mismatch() -> f64 {
    0.01
}

fn default_p99_increase() -> Duration {
    Duration::from_millis(250)
}

impl Step {
    pub fn is_mirror(&self) -> bool {
        self.mirror_percent.is_some()
    }
}

/// A stage's steps: mirror steps first, then green steps that climb; each
/// percent above 0, at most 100, in steps of 0.01.
pub(super) fn validate_steps(at: &str, steps: &[Step], errors: &mut Vec<String>) {
    if steps.is_empty() {
        errors.push(format!("{at}: at least one step is required"));
    }
    let percent_ok =
        |p: f64| p > 0.0 && p <= 100.0 && ((p * 100.0).round() - p * 100.0).abs() <= 1e-6;
    let mut previous = 0.0;
    for (i, step) in steps.iter().enumerate() {
        if let Some(m) = step.mirror_percent {
            if step.green_percent != 0.0 {
                errors.push(format!(
                    "{at}[{i}]: a step sets green_percent or mirror_percent, not both"
                ));
            } else if !percent_ok(m) {
                errors.push(format!(
                    "{at}[{i}].mirror_percent: {m} must be above 0 and at most 100, in steps of 0.01"
                ));
            } else if previous > 0.0 {
                errors.push(format!(
                    "{at}[{i}].mirror_percent: mirror steps come before the first green step (green is at {previous}% here)"
                ));
            }
            continue;
        }
        let p = step.green_percent;
        if !percent_ok(p) {
            errors.push(format!(
                "{at}[{i}].green_percent: {p} must be above 0 and at most 100, in steps of 0.01 (or give mirror_percent for a mirror step)"
            ));
        } else if p <= previous {
            errors.push(format!(
                "{at}[{i}].green_percent: {p} must be greater than the previous step's {previous}"
            ));
        }
        previous = p;
    }
    if steps.last().is_some_and(Step::is_mirror) {
        errors.push(format!(
            "{at}: the last step must move real traffic (a green_percent), not mirror"
        ));
    }
}
