//! Holding a step: the gates are watched every interval until the hold is
//! over with a pass, a failure rolls back, inconclusive figures pause or
//! fail as the plan says.

use super::{Engine, EngineError};
use crate::figures::Figures;
use crate::gates::{judge, judge_mirror, Verdict};
use crate::journal::Event;
use crate::outcome::Outcome;
use crate::plan::InconclusiveAction;
use std::time::Instant;

/// What holding a step came to.
pub(super) enum Held {
    Passed,
    Ended(Outcome),
}

impl Engine {
    /// Watches the gates until the hold is over with a pass; `held` counts
    /// as already watched (a resumed step goes on where it stopped).
    pub(super) async fn hold(
        &mut self,
        step: usize,
        held: std::time::Duration,
    ) -> Result<Held, EngineError> {
        let gates = self.plan.gates.clone();
        let hold = self.schedule.step(step).hold;
        let split = self.schedule.step(step).green_percent;
        let mirror_step = self.schedule.step(step).is_mirror();
        let judge = if mirror_step { judge_mirror } else { judge };
        self.source.reset();
        let _ = self.source.figures(&self.fleet).await; // the step's baseline
        let started = Instant::now()
            .checked_sub(held)
            .unwrap_or_else(Instant::now);
        let (mut failures, mut inconclusive) = (0u32, 0u32);
        loop {
            if let Some(outcome) = self.wait_interval(step).await? {
                return Ok(Held::Ended(outcome));
            }
            if std::mem::take(&mut self.step_promoted) {
                return Ok(Held::Passed);
            }
            let (verdict, figures) = match self.source.figures(&self.fleet).await {
                Ok(f) => (judge(&gates, &f), f),
                Err(e) => (
                    Verdict::Inconclusive(format!("no figures: {e}")),
                    Figures::default(),
                ),
            };
            self.out.progress(
                step,
                self.schedule.len(),
                split,
                started.elapsed(),
                hold,
                &figures,
                &verdict,
            );
            self.record(Event::Gate {
                step,
                green_percent: split,
                verdict: verdict.clone(),
                figures: figures.clone(),
            })?;
            match verdict {
                Verdict::Fail(reason) => {
                    inconclusive = 0;
                    failures += 1;
                    if failures >= gates.failure_limit {
                        let reason = format!("gate failed {failures} time(s) in a row: {reason}");
                        self.keep_mirror_samples(step).await?;
                        return Ok(Held::Ended(
                            self.roll_back(step, reason, Some(figures)).await,
                        ));
                    }
                }
                Verdict::Inconclusive(reason) => {
                    failures = 0;
                    inconclusive += 1;
                    if gates.inconclusive_limit > 0 && inconclusive >= gates.inconclusive_limit {
                        inconclusive = 0;
                        let reason = format!(
                            "inconclusive {} time(s) in a row: {reason}",
                            gates.inconclusive_limit
                        );
                        match gates.on_inconclusive_limit {
                            InconclusiveAction::Fail => {
                                self.keep_mirror_samples(step).await?;
                                return Ok(Held::Ended(
                                    self.roll_back(step, reason, Some(figures)).await,
                                ));
                            }
                            InconclusiveAction::Pause => {
                                self.record(Event::Paused { step, reason })?;
                                if let Some(outcome) = self.paused(step).await? {
                                    return Ok(Held::Ended(outcome));
                                }
                                if std::mem::take(&mut self.step_promoted) {
                                    return Ok(Held::Passed);
                                }
                            }
                        }
                    }
                }
                Verdict::Pass => {
                    failures = 0;
                    inconclusive = 0;
                    if started.elapsed() >= hold {
                        self.keep_mirror_samples(step).await?;
                        self.record(Event::StepPassed {
                            step,
                            green_percent: split,
                            figures,
                        })?;
                        return Ok(Held::Passed);
                    }
                }
            }
        }
    }

    /// A mirror step's differing answers, as every replica kept them, to
    /// the journal (nothing for other steps, or when none differed).
    async fn keep_mirror_samples(&mut self, step: usize) -> Result<(), EngineError> {
        if !self.schedule.step(step).is_mirror() {
            return Ok(());
        }
        let states = self.fleet.states().await.unwrap_or_default();
        let mut samples: Vec<serde_json::Value> = Vec::new();
        for (_, state) in &states {
            for route in &self.plan.routes {
                let kept = state.routes.get(route).and_then(|r| r.mirror.as_ref());
                for sample in kept
                    .and_then(|m| m["samples"].as_array())
                    .into_iter()
                    .flatten()
                {
                    let mut sample = sample.clone();
                    sample["route"] = route.as_str().into();
                    if !samples.contains(&sample) {
                        samples.push(sample);
                    }
                }
            }
        }
        if samples.is_empty() {
            return Ok(());
        }
        self.record(Event::MirrorSamples { step, samples })
    }
}
