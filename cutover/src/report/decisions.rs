//! Every decision of a run in words: who decided (the run itself or an
//! operator), what, and why. Consecutive gate evaluations with the same
//! verdict at the same step are one line, so an hour's hold stays short.

use crate::gates::Verdict;
use crate::journal::{Event, Record};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Decision {
    pub time: String,
    pub seconds: f64,
    pub actor: String,
    /// The journal event's name (`gate`, `paused`, `rolled_back`…).
    pub event: String,
    pub what: String,
    /// Why, where the record says.
    pub reason: Option<String>,
    /// How many records this line stands for (gate evaluations in a row).
    pub count: usize,
}

pub fn verdict_word(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail(_) => "fail",
        Verdict::Inconclusive(_) => "inconclusive",
    }
}

/// The decisions among a run's records; `at` gives a record's seconds
/// since the run began.
pub fn of(run: &[Record], at: impl Fn(&Record) -> f64) -> Vec<Decision> {
    let mut out: Vec<Decision> = Vec::new();
    for r in run {
        let Some((what, reason)) = describe(&r.event) else {
            continue;
        };
        if let Some(last) = out.last_mut() {
            if r.event.name() == "gate" && last.event == "gate" && last.what == what {
                last.count += 1;
                last.reason = reason.or(last.reason.take());
                continue;
            }
        }
        out.push(Decision {
            time: r.time.clone(),
            seconds: at(r),
            actor: r.actor.clone(),
            event: r.event.name().into(),
            what,
            reason,
            count: 1,
        });
    }
    out
}

/// What a record decided, and why; `None` for records that only report
/// (convergence).
fn describe(event: &Event) -> Option<(String, Option<String>)> {
    let said = |what: String| Some((what, None));
    match event {
        Event::Started { plan_file, plan } => said(format!(
            "run started from {plan_file} ({} steps)",
            plan.schedule().len()
        )),
        Event::Preflight { passed, .. } => said(format!(
            "preflight checks {}",
            if *passed {
                "passed"
            } else {
                "failed: run refused"
            }
        )),
        Event::Smoke {
            step,
            passed,
            results,
        } => {
            let failed = crate::smoke::failures(results);
            let verdict = if *passed { "passed" } else { "failed" };
            Some((
                format!("smoke checks before step {} {verdict}", step + 1),
                (!failed.is_empty()).then(|| failed.join("; ")),
            ))
        }
        Event::AwaitingApproval { step } => said(format!("step {} waits for approval", step + 1)),
        Event::StageWaiting {
            name, not_before, ..
        } => said(format!("stage {name} waits until {not_before}")),
        Event::StageStarted { name, .. } => said(format!("stage {name} started")),
        Event::Applied {
            step,
            mirror_percent: Some(mirror),
            generations,
            ..
        } => said(format!(
            "{mirror}% of blue's requests mirrored to green for step {} on {} replica(s)",
            step + 1,
            generations.len()
        )),
        Event::Applied {
            step,
            green_percent,
            generations,
            ..
        } => said(format!(
            "green set to {green_percent}% for step {} on {} replica(s)",
            step + 1,
            generations.len()
        )),
        Event::Converged { .. } => None,
        Event::Gate { step, verdict, .. } => {
            let reason = match verdict {
                Verdict::Pass => None,
                Verdict::Fail(why) | Verdict::Inconclusive(why) => Some(why.clone()),
            };
            Some((
                format!("gate {} at step {}", verdict_word(verdict), step + 1),
                reason,
            ))
        }
        Event::StepPassed {
            step,
            green_percent,
            ..
        } => said(format!(
            "step {} passed at green {green_percent}%",
            step + 1
        )),
        Event::Paused { step, reason } => {
            Some((format!("paused at step {}", step + 1), Some(reason.clone())))
        }
        Event::Resumed { step } => said(format!("resumed at step {}", step + 1)),
        Event::Promoted { from_step } => said(format!(
            "promoted to 100% green from step {}",
            from_step + 1
        )),
        Event::StepPromoted { step } => said(format!("step {}'s hold ended early", step + 1)),
        Event::RolledBack {
            step,
            to_percent,
            reason,
            ..
        } => Some((
            format!("rolled back at step {} to green {to_percent}%", step + 1),
            Some(reason.clone()),
        )),
        Event::Completed { green_percent } => said(format!("completed at green {green_percent}%")),
        Event::Stopped { step, reason } => Some((
            format!("stopped at step {}", step + 1),
            Some(reason.clone()),
        )),
        Event::LockTakenOver { previous_holder } => {
            said(format!("lock taken over from {previous_holder}"))
        }
        Event::Control {
            command, reason, ..
        } => Some((
            format!("`cutover {}` sent", command.command_line()),
            reason.clone(),
        )),
        Event::Emergency { to, reason, .. } => Some((
            format!("emergency: every route to {to}"),
            Some(reason.clone()),
        )),
        Event::Drained {
            color,
            replicas,
            left,
            reason,
            ..
        } => Some((
            match left.is_empty() {
                true => format!("{color} drained on {replicas} replica(s)"),
                false => format!("{color} not empty at the deadline: {}", left.join(", ")),
            },
            reason.clone(),
        )),
        Event::MirrorSamples { step, samples } => said(format!(
            "{} differing mirrored answer(s) of step {} journaled",
            samples.len(),
            step + 1
        )),
    }
}
