//! What a journal record says happened: one event per transition of a
//! run, and the commands operators send it.

use crate::figures::Figures;
use crate::gates::Verdict;
use crate::plan::Plan;
use crate::smoke::SmokeResult;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A run began; the plan is kept so `resume` needs nothing else.
    Started {
        plan_file: String,
        plan: Box<Plan>,
    },
    /// Preflight checks of green, before anything changed.
    Preflight {
        passed: bool,
        checks: serde_json::Value,
    },
    Smoke {
        step: usize,
        passed: bool,
        results: Vec<SmokeResult>,
    },
    AwaitingApproval {
        step: usize,
    },
    /// A stage's `wait_before`: it may not begin before this time (RFC
    /// 3339), whichever process is running then.
    StageWaiting {
        stage: usize,
        name: String,
        not_before: String,
    },
    /// A stage began (its wait over, its approval given).
    StageStarted {
        stage: usize,
        name: String,
    },
    /// The step's split was written to the fleet.
    Applied {
        step: usize,
        green_percent: f64,
        /// A mirror step's share of blue's requests copied to green.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mirror_percent: Option<f64>,
        generations: Vec<(String, u64)>,
    },
    Converged {
        step: usize,
    },
    Gate {
        step: usize,
        green_percent: f64,
        verdict: Verdict,
        figures: Figures,
    },
    StepPassed {
        step: usize,
        green_percent: f64,
        figures: Figures,
    },
    Paused {
        step: usize,
        reason: String,
    },
    Resumed {
        step: usize,
    },
    /// `promote --full`: 100% green now, the rest of the stage skipped.
    Promoted {
        from_step: usize,
    },
    /// `promote`: the step's hold ended early; the run goes on with the next step.
    StepPromoted {
        step: usize,
    },
    RolledBack {
        step: usize,
        to_percent: f64,
        reason: String,
        figures: Option<Figures>,
    },
    Completed {
        green_percent: f64,
    },
    /// The run stopped without touching the split (e.g. an outside change).
    Stopped {
        step: usize,
        reason: String,
    },
    LockTakenOver {
        previous_holder: String,
    },
    /// A command from another terminal, for the live run to act on.
    /// `id`: the command came through the fleet (each id is journaled once).
    Control {
        command: ControlCommand,
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// `cutover emergency`: the split was forced to one colour.
    Emergency {
        to: String,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// A mirror step ended: the differing answers the gateways kept
    /// (method, path, both statuses, the difference; never a header).
    MirrorSamples {
        step: usize,
        samples: Vec<serde_json::Value>,
    },
    /// `cutover drain`: what was still open to a colour no route sends
    /// traffic to was ended; `left` names what remained at the deadline
    /// (empty: the colour is empty everywhere).
    Drained {
        color: String,
        deadline_seconds: f64,
        replicas: usize,
        left: Vec<String>,
        reason: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ControlCommand {
    Pause,
    Resume,
    /// Resume at a step or stage that waits for approval.
    Approve,
    /// `promote --full`: 100% green now (named `promote` in journals).
    Promote,
    /// `promote`: end the step's hold now and go on with the next step.
    PromoteStep,
    Abort,
}

impl ControlCommand {
    /// The name the fleet's queue and the CLI use.
    pub fn name(self) -> &'static str {
        match self {
            ControlCommand::Pause => "pause",
            ControlCommand::Resume => "resume",
            ControlCommand::Approve => "approve",
            ControlCommand::Promote => "promote",
            ControlCommand::PromoteStep => "promote_step",
            ControlCommand::Abort => "abort",
        }
    }

    /// The command as the operator types it.
    pub fn command_line(self) -> &'static str {
        match self {
            ControlCommand::Promote => "promote --full",
            ControlCommand::PromoteStep => "promote",
            other => other.name(),
        }
    }

    pub fn from_name(name: &str) -> Option<ControlCommand> {
        [
            ControlCommand::Pause,
            ControlCommand::Resume,
            ControlCommand::Approve,
            ControlCommand::Promote,
            ControlCommand::PromoteStep,
            ControlCommand::Abort,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }
}

impl Event {
    /// Whether the run this event belongs to is over.
    pub fn ends_run(&self) -> bool {
        matches!(
            self,
            Event::RolledBack { .. }
                | Event::Completed { .. }
                | Event::Stopped { .. }
                | Event::Emergency { .. }
                | Event::Preflight { passed: false, .. }
        )
    }

    /// The event's name as `status` and messages show it.
    /// Every value of [`Event::name`] (kept in step with it by hand).
    pub const NAMES: [&'static str; 22] = [
        "started",
        "preflight",
        "smoke",
        "awaiting_approval",
        "stage_waiting",
        "stage_started",
        "applied",
        "converged",
        "gate",
        "step_passed",
        "paused",
        "resumed",
        "promoted",
        "step_promoted",
        "rolled_back",
        "completed",
        "stopped",
        "lock_taken_over",
        "control",
        "emergency",
        "drained",
        "mirror_samples",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Event::Started { .. } => "started",
            Event::Preflight { .. } => "preflight",
            Event::Smoke { .. } => "smoke",
            Event::AwaitingApproval { .. } => "awaiting_approval",
            Event::StageWaiting { .. } => "stage_waiting",
            Event::StageStarted { .. } => "stage_started",
            Event::Applied { .. } => "applied",
            Event::Converged { .. } => "converged",
            Event::Gate { .. } => "gate",
            Event::StepPassed { .. } => "step_passed",
            Event::Paused { .. } => "paused",
            Event::Resumed { .. } => "resumed",
            Event::Promoted { .. } => "promoted",
            Event::StepPromoted { .. } => "step_promoted",
            Event::RolledBack { .. } => "rolled_back",
            Event::Completed { .. } => "completed",
            Event::Stopped { .. } => "stopped",
            Event::LockTakenOver { .. } => "lock_taken_over",
            Event::Control { .. } => "control",
            Event::Emergency { .. } => "emergency",
            Event::Drained { .. } => "drained",
            Event::MirrorSamples { .. } => "mirror_samples",
        }
    }
}
