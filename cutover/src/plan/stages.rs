//! Stages: fleets moved one after another (staging, wait a week, then
//! production region by region), and the schedule that numbers every step
//! of every stage in the order they run.
//!
//! Steps are numbered across stages, so the journal's `step` (and resume's
//! position) means the same thing in a staged plan as in a plain one. A
//! plan without `stages` is one stage made of its `fleet` and `steps`.

use super::{Fleet, Plan, Step};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Shown in status, messages and notifications, e.g. `staging`.
    pub name: String,
    /// This stage's gateways (required; each stage has its own).
    #[serde(default)]
    pub fleet: Option<Fleet>,
    pub steps: Vec<Step>,
    /// How long after the previous stage ended (or the run started) this
    /// stage may begin, e.g. `7d`. Journaled as a time, so no process needs
    /// to stay alive through it.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub wait_before: Option<Duration>,
    /// Wait for `cutover resume` before the stage's first step.
    #[serde(default)]
    pub approval: bool,
    /// Once the stage's last step (100% green) passed: end what blue still
    /// holds on this stage's fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<super::DrainPlan>,
}

/// A plan's stages and every step in run order.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub stages: Vec<Stage>,
    /// Whether the plan was written with `stages`.
    pub staged: bool,
    /// The stage of each step, by the step's number.
    stage_of: Vec<usize>,
    steps: Vec<Step>,
}

impl Plan {
    pub fn schedule(&self) -> Schedule {
        let staged = !self.stages.is_empty();
        let stages = if staged {
            self.stages.clone()
        } else {
            vec![Stage {
                name: "all".into(),
                fleet: self.fleet.clone(),
                steps: self.steps.clone(),
                wait_before: None,
                approval: false,
                drain: self.drain.clone(),
            }]
        };
        let mut stage_of = Vec::new();
        let mut steps = Vec::new();
        for (i, stage) in stages.iter().enumerate() {
            stage_of.extend(std::iter::repeat_n(i, stage.steps.len()));
            steps.extend(stage.steps.iter().cloned());
        }
        Schedule {
            stages,
            staged,
            stage_of,
            steps,
        }
    }
}

impl Schedule {
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn step(&self, step: usize) -> &Step {
        &self.steps[step]
    }

    /// The stage a step belongs to; past the end, the last stage.
    pub fn stage_of(&self, step: usize) -> usize {
        self.stage_of
            .get(step)
            .or(self.stage_of.last())
            .copied()
            .unwrap_or(0)
    }

    /// The step numbers of a stage.
    pub fn steps_of(&self, stage: usize) -> std::ops::Range<usize> {
        let start = self.stage_of.iter().position(|s| *s == stage);
        let end = self.stage_of.iter().rposition(|s| *s == stage);
        match (start, end) {
            (Some(s), Some(e)) => s..e + 1,
            _ => 0..0,
        }
    }

    /// The stage's fleet; a validated plan has one for every stage.
    pub fn fleet(&self, stage: usize) -> Option<&Fleet> {
        self.stages.get(stage).and_then(|s| s.fleet.as_ref())
    }

    /// `stage 2 of 3 (prod)`, or nothing for a plan without stages.
    pub fn label(&self, stage: usize) -> Option<String> {
        self.staged.then(|| {
            format!(
                "stage {} of {} ({})",
                stage + 1,
                self.stages.len(),
                self.stages[stage].name
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_across_stages() {
        let plan: Plan = serde_yaml_ng::from_str(
            r#"
routes: [web]
stages:
  - name: staging
    fleet: {admin_urls: ["http://127.0.0.1:9090"], proxy_url: "http://127.0.0.1:8080"}
    steps: [{green_percent: 50}, {green_percent: 100}]
  - name: prod
    wait_before: 7d
    fleet: {admin_urls: ["http://127.0.0.1:9091"], proxy_url: "http://127.0.0.1:8081"}
    steps: [{green_percent: 10}, {green_percent: 50}, {green_percent: 100}]
"#,
        )
        .unwrap();
        assert!(plan.validate().is_empty(), "{:?}", plan.validate());
        let s = plan.schedule();
        assert_eq!(s.len(), 5);
        assert_eq!(s.steps_of(1), 2..5);
        assert_eq!(s.stage_of(2), 1);
        assert_eq!(s.stage_of(99), 1);
        assert_eq!(s.step(2).green_percent, 10.0);
        assert_eq!(
            s.stages[1].wait_before,
            Some(Duration::from_secs(7 * 86400))
        );
        assert_eq!(s.label(1).unwrap(), "stage 2 of 2 (prod)");
        assert_eq!(
            s.fleet(1).unwrap().admin_urls,
            vec!["http://127.0.0.1:9091"]
        );
    }
}
