//! Judging a step from its figures. Pure: the same figures always give the
//! same verdict, and every verdict says why.

use crate::figures::Figures;
use crate::plan::Gates;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail(String),
    /// Too little traffic to tell; holds the step, never a pass.
    Inconclusive(String),
}

pub fn judge(gates: &Gates, f: &Figures) -> Verdict {
    // Green being unable to serve is a failure whatever the traffic.
    if f.green_healthy_endpoints == 0 {
        return Verdict::Fail("green has no healthy endpoint".into());
    }
    if f.failovers_from_green > 0 {
        return Verdict::Fail(format!(
            "{} request(s) failed over from green to blue in the window",
            f.failovers_from_green
        ));
    }
    let green = &f.green;
    if green.requests < gates.min_requests {
        return Verdict::Inconclusive(format!(
            "{} green request(s) in the window; at least {} are needed",
            green.requests, gates.min_requests
        ));
    }
    let success = green.success_rate.unwrap_or(0.0);
    if success < gates.success_rate {
        return Verdict::Fail(format!(
            "green success rate {:.2}% is below {:.2}%",
            success * 100.0,
            gates.success_rate * 100.0
        ));
    }
    if let Some(p99) = green.p99_seconds {
        if p99 > gates.p99_latency.as_secs_f64() {
            return Verdict::Fail(format!(
                "green p99 {:.0} ms is above {} ms",
                p99 * 1000.0,
                gates.p99_latency.as_millis()
            ));
        }
    }
    let blue = &f.blue;
    if blue.requests >= gates.min_requests {
        let green_errors = 1.0 - success;
        let blue_errors = 1.0 - blue.success_rate.unwrap_or(1.0);
        if green_errors > blue_errors + gates.max_error_rate_increase {
            return Verdict::Fail(format!(
                "green error rate {:.2}% exceeds blue's {:.2}% by more than {:.2} points",
                green_errors * 100.0,
                blue_errors * 100.0,
                gates.max_error_rate_increase * 100.0
            ));
        }
    }
    Verdict::Pass
}

/// A mirror step's verdict: green's answers to the copies against blue's
/// answers to the same requests. Nothing of the real traffic is judged:
/// green serves none of it.
pub fn judge_mirror(gates: &Gates, f: &Figures) -> Verdict {
    let Some(m) = &f.mirror else {
        return Verdict::Inconclusive(
            "no mirror figures: does the route have a mirror: block on every replica?".into(),
        );
    };
    let green_errors = m.results.get("error").copied().unwrap_or(0);
    let answered = m.compared + green_errors;
    if answered < gates.min_requests {
        return Verdict::Inconclusive(format!(
            "{answered} mirrored request(s) in the window ({} dropped); at least {} are needed",
            m.results.get("dropped").copied().unwrap_or(0),
            gates.min_requests
        ));
    }
    let mismatch = m.mismatch_rate.unwrap_or(0.0);
    if mismatch > gates.mirror.max_mismatch_rate {
        let differing = m.compared - m.results.get("match").copied().unwrap_or(0);
        return Verdict::Fail(format!(
            "{:.2}% of green's mirrored answers differ from blue's ({differing} of {}); at most {:.2}% may",
            mismatch * 100.0,
            m.compared,
            gates.mirror.max_mismatch_rate * 100.0
        ));
    }
    let rate = |c: &crate::figures::ColorFigures| 1.0 - c.success_rate.unwrap_or(1.0);
    let (green_rate, blue_rate) = (rate(&m.green), rate(&m.blue));
    if green_rate > blue_rate + gates.max_error_rate_increase {
        return Verdict::Fail(format!(
            "green failed {:.2}% of the mirrored requests, blue {:.2}% of the same ones",
            green_rate * 100.0,
            blue_rate * 100.0
        ));
    }
    if let (Some(green), Some(blue)) = (m.green.p99_seconds, m.blue.p99_seconds) {
        if green > blue + gates.mirror.max_p99_increase.as_secs_f64() {
            return Verdict::Fail(format!(
                "green's p99 on the mirrored requests {:.0} ms is more than {} ms above blue's {:.0} ms",
                green * 1000.0,
                gates.mirror.max_p99_increase.as_millis(),
                blue * 1000.0
            ));
        }
    }
    Verdict::Pass
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::ColorFigures;

    fn figures(
        green_requests: u64,
        green_errors: u64,
        blue_requests: u64,
        blue_errors: u64,
    ) -> Figures {
        let color = |r: u64, e: u64| ColorFigures {
            requests: r,
            errors: e,
            success_rate: (r > 0).then(|| 1.0 - e as f64 / r as f64),
            p99_seconds: (r > 0).then_some(0.02),
            requests_per_second: r as f64 / 10.0,
        };
        Figures {
            window_seconds: 10.0,
            blue: color(blue_requests, blue_errors),
            green: color(green_requests, green_errors),
            blue_healthy_endpoints: 1,
            green_healthy_endpoints: 1,
            failovers_from_green: 0,
            mirror: None,
        }
    }

    fn gates() -> Gates {
        serde_yaml_ng::from_str(
            "{min_requests: 100, success_rate: 0.95, max_error_rate_increase: 0.01}",
        )
        .unwrap()
    }

    #[test]
    fn verdicts() {
        assert_eq!(judge(&gates(), &figures(500, 0, 500, 0)), Verdict::Pass);
        assert!(matches!(
            judge(&gates(), &figures(99, 0, 500, 0)),
            Verdict::Inconclusive(_)
        ));
        assert!(matches!(
            judge(&gates(), &figures(0, 0, 0, 0)),
            Verdict::Inconclusive(_)
        ));
        assert!(
            matches!(judge(&gates(), &figures(500, 100, 500, 0)), Verdict::Fail(m) if m.contains("success rate"))
        );
        // 3% vs blue's 1%: within the success threshold, over the margin.
        assert!(
            matches!(judge(&gates(), &figures(1000, 30, 1000, 10)), Verdict::Fail(m) if m.contains("exceeds blue"))
        );
        // Blue too quiet to compare: no comparison.
        assert_eq!(judge(&gates(), &figures(1000, 30, 10, 0)), Verdict::Pass);
    }

    #[test]
    fn no_healthy_green_fails_at_once_even_without_traffic() {
        let mut f = figures(0, 0, 0, 0);
        f.green_healthy_endpoints = 0;
        assert!(matches!(judge(&gates(), &f), Verdict::Fail(_)));
        let mut f = figures(0, 0, 500, 0);
        f.failovers_from_green = 3;
        assert!(matches!(judge(&gates(), &f), Verdict::Fail(m) if m.contains("failed over")));
    }
}
