//! What a run shows: for people, one line per transition and a live bar
//! while a step holds; for automation (`--output json` or `yaml`), every
//! journal record on stdout: a JSON line, or a YAML document after `---`.

use crate::figures::{ColorFigures, Figures};
use crate::gates::Verdict;
use crate::journal::{Event, Record};
use crate::outcome::Outcome;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[value(alias = "table")]
    Human,
    Json,
    Yaml,
    /// Markdown, for `cutover report`.
    #[value(alias = "markdown")]
    Md,
}

pub struct Output {
    format: Format,
    bar: Option<ProgressBar>,
}

/// `blue 12.0 rps 99.50% p99 3ms`.
pub fn color_line(name: &str, c: &ColorFigures) -> String {
    let success = c
        .success_rate
        .map_or("-".into(), |s| format!("{:.2}%", s * 100.0));
    let p99 = c
        .p99_seconds
        .map_or("-".into(), |p| format!("{:.0}ms", p * 1000.0));
    format!(
        "{name} {:.1} rps {success} p99 {p99}",
        c.requests_per_second
    )
}

/// `120 compared, 2.50% differ (status 2, body 1), 4 dropped | green p99 12ms vs blue 10ms`.
pub fn mirror_line(m: &crate::figures::MirrorFigures) -> String {
    let count = |k: &str| m.results.get(k).copied().unwrap_or(0);
    let p99 = |c: &ColorFigures| {
        c.p99_seconds
            .map_or("-".into(), |p| format!("{:.0}ms", p * 1000.0))
    };
    format!(
        "{} compared, {} differ (status {}, headers {}, body {}), {} without answer, {} dropped | green p99 {} vs blue {}",
        m.compared,
        m.mismatch_rate.map_or("-".into(), |r| format!("{:.2}%", r * 100.0)),
        count("status_differs"),
        count("headers_differ"),
        count("body_differs"),
        count("error"),
        count("dropped"),
        p99(&m.green),
        p99(&m.blue),
    )
}

impl Output {
    pub fn new(format: Format) -> Output {
        Output { format, bar: None }
    }

    /// JSON or YAML on stdout, for automation (no bars, no notes).
    pub fn is_machine(&self) -> bool {
        self.format != Format::Human
    }

    /// One document for automation: a JSON line, or YAML after `---` (a
    /// stream of them reads as JSON lines or as a YAML stream).
    pub fn document(&self, doc: &impl serde::Serialize) {
        match self.format {
            Format::Yaml => print!(
                "---\n{}",
                serde_yaml_ng::to_string(doc).expect("a document serializes as YAML")
            ),
            _ => println!(
                "{}",
                serde_json::to_string(doc).expect("a document serializes as JSON")
            ),
        }
    }

    /// A journal record as it happens.
    pub fn record(&mut self, record: &Record) {
        match self.format {
            Format::Json | Format::Yaml | Format::Md => self.document(record),
            Format::Human => {
                if let Some(line) = human_line(&record.event) {
                    self.println(&line);
                }
                if matches!(
                    record.event,
                    Event::StepPassed { .. }
                        | Event::StepPromoted { .. }
                        | Event::RolledBack { .. }
                        | Event::Completed { .. }
                        | Event::AwaitingApproval { .. }
                        | Event::StageStarted { .. }
                ) {
                    if let Some(bar) = self.bar.take() {
                        bar.finish_and_clear();
                    }
                }
            }
        }
    }

    pub fn note(&self, line: &str) {
        if self.format == Format::Human {
            self.println(line);
        }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            // A hidden bar (no terminal) would swallow the line.
            Some(bar) if !bar.is_hidden() => bar.println(line),
            _ => eprintln!("{line}"),
        }
    }

    /// The live view of a holding step.
    #[allow(clippy::too_many_arguments)]
    pub fn progress(
        &mut self,
        step: usize,
        steps: usize,
        split: f64,
        elapsed: Duration,
        hold: Duration,
        figures: &Figures,
        verdict: &Verdict,
    ) {
        if self.format != Format::Human {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(hold.as_millis().max(1) as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:20}] {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        bar.set_prefix(format!("step {}/{steps} green {split}%", step + 1));
        bar.set_position(elapsed.as_millis().min(hold.as_millis()) as u64);
        let verdict = match verdict {
            Verdict::Pass => "pass".to_owned(),
            Verdict::Fail(r) => format!("FAIL: {r}"),
            Verdict::Inconclusive(r) => format!("inconclusive: {r}"),
        };
        let left = hold.saturating_sub(elapsed).as_secs();
        bar.set_message(format!(
            "{} | {} | {left}s left | {verdict}",
            color_line("blue", &figures.blue),
            color_line("green", &figures.green)
        ));
    }

    /// The live view of a stage's wait.
    pub fn waiting(&mut self, stage: &str, until: &str, left: Duration) {
        let left = humantime::format_duration(Duration::from_secs(left.as_secs() + 1));
        self.spinner(format!("{stage} begins at {until}: {left} left"));
    }

    /// A spinner with a message, for a wait of unknown length.
    pub fn spinner(&mut self, message: String) {
        if self.format != Format::Human {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        bar.set_message(message);
    }

    /// Clears a spinner or bar.
    pub fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    pub fn finish(&mut self, outcome: &Outcome) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.format == Format::Human {
            match outcome {
                Outcome::Completed => eprintln!("cutover completed"),
                Outcome::RolledBack(r) => eprintln!("cutover ROLLED BACK: {r}"),
                Outcome::Stopped(r) => eprintln!("cutover stopped: {r}"),
                Outcome::Signalled(r) | Outcome::Waiting(r) => eprintln!("{r}"),
            }
        }
    }
}

/// One line saying what happened, for people (terminal, chat).
pub fn human_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::Started { plan, .. } => {
            let schedule = plan.schedule();
            let stages: Vec<String> = schedule
                .stages
                .iter()
                .map(|stage| {
                    let steps: Vec<String> = stage
                        .steps
                        .iter()
                        .map(|s| match s.mirror_percent {
                            Some(m) => format!("mirror {m}%"),
                            None => format!("{}%", s.green_percent),
                        })
                        .collect();
                    let steps = format!("[{}]", steps.join(", "));
                    if schedule.staged {
                        format!("{} {steps}", stage.name)
                    } else {
                        steps
                    }
                })
                .collect();
            let what = if schedule.staged { "stages" } else { "steps" };
            format!(
                "cutover started: routes {:?}, {what} {}",
                plan.routes,
                stages.join(", then ")
            )
        }
        Event::Preflight { passed, checks } => {
            let failed: Vec<String> = checks
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["status"] == "fail")
                .map(|c| {
                    format!(
                        "{}: {}",
                        c["name"].as_str().unwrap_or("?"),
                        c["message"].as_str().unwrap_or("")
                    )
                })
                .collect();
            if *passed {
                "preflight passed".to_owned()
            } else {
                format!("preflight FAILED: {}", failed.join("; "))
            }
        }
        Event::Smoke {
            step,
            passed,
            results,
        } => {
            let failed = crate::smoke::failures(results);
            if *passed {
                format!(
                    "smoke checks before step {}: {} passed",
                    step + 1,
                    results.len()
                )
            } else {
                format!(
                    "smoke checks before step {} FAILED: {}",
                    step + 1,
                    failed.join("; ")
                )
            }
        }
        Event::AwaitingApproval { step } => format!(
            "step {} needs approval: `cutover approve` to apply it",
            step + 1
        ),
        Event::StageWaiting {
            stage,
            name,
            not_before,
        } => format!(
            "stage {} ({name}) may not begin before {not_before}",
            stage + 1
        ),
        Event::StageStarted { stage, name } => format!("stage {} ({name}) begins", stage + 1),
        Event::Applied {
            step,
            mirror_percent: Some(mirror),
            ..
        } => format!(
            "step {}: {mirror}% of blue's requests mirrored to green",
            step + 1
        ),
        Event::Applied {
            step,
            green_percent,
            ..
        } => format!("step {}: green {green_percent}% applied", step + 1),
        Event::Converged { step } => format!("step {}: every replica serves it", step + 1),
        Event::Gate { .. } => return None,
        Event::StepPassed {
            step,
            green_percent,
            figures,
        } => format!(
            "step {} passed at green {green_percent}%: {} | {}",
            step + 1,
            color_line("blue", &figures.blue),
            color_line("green", &figures.green)
        ),
        Event::Paused { step, reason } => format!("paused at step {}: {reason}", step + 1),
        Event::Resumed { step } => format!("resumed at step {}", step + 1),
        Event::Promoted { from_step } => format!("promoted to 100% from step {}", from_step + 1),
        Event::StepPromoted { step } => {
            format!("step {} promoted: the rest of its hold skipped", step + 1)
        }
        Event::RolledBack {
            to_percent, reason, ..
        } => format!("rolled back to green {to_percent}%: {reason}"),
        Event::Completed { green_percent } => format!("completed at green {green_percent}%"),
        Event::Stopped { reason, .. } => format!("stopped: {reason}"),
        Event::LockTakenOver { previous_holder } => {
            format!("took over the cutover lock from {previous_holder}")
        }
        Event::Control {
            command, reason, ..
        } => format!(
            "control: {} ({})",
            command.command_line(),
            reason.as_deref().unwrap_or("no reason given")
        ),
        Event::Emergency { to, reason, .. } => format!("EMERGENCY: all traffic to {to}: {reason}"),
        Event::Drained {
            color,
            replicas,
            left,
            ..
        } => drain_summary(color, *replicas, left),
        Event::MirrorSamples { step, samples } => format!(
            "step {}: {} differing mirrored answer(s) kept in the journal",
            step + 1,
            samples.len()
        ),
    })
}

/// `cutover drain`'s last line: the colour empty everywhere, or what is
/// left and where.
pub fn drain_summary(color: &str, replicas: usize, left: &[String]) -> String {
    if left.is_empty() {
        format!("{color} is empty on all {replicas} replica(s)")
    } else {
        format!("{color} is not empty: {}", left.join("; "))
    }
}
