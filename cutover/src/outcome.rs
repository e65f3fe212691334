//! How a run ended, and the exit codes every `cutover` command follows
//! (the table in docs/exit-codes.md).

/// The exit codes of every `cutover` command, and of `gateway check`.
pub mod exit {
    /// Done: the run completed, the command was taken, every check passed.
    pub const DONE: u8 = 0;
    /// Failed: the run rolled back, a check failed (smoke, preflight, the
    /// network plan does not fit), or an error stopped the command.
    pub const FAILED: u8 = 1;
    /// Bad input: a flag, a file or a field is wrong (the message names it);
    /// nothing changed.
    pub const BAD_INPUT: u8 = 2;
    /// Refused or stopped: nothing was done (nothing to act on, the run has
    /// ended, the lock is held, the confirmation was declined), or the run
    /// stopped without rolling back (an outside change, an emergency, a lost lock).
    pub const REFUSED: u8 = 3;
    /// Not ended yet: `status` of a run still running, paused or waiting
    /// (also when `status --watch --timeout` runs out).
    pub const NOT_ENDED: u8 = 4;
}

/// How a run ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Completed,
    RolledBack(String),
    /// Stopped without touching the split (outside change, lost lock).
    Stopped(String),
    /// A live run elsewhere was told to resume.
    Signalled(String),
    /// Left off in a stage's wait (`--no-wait`); `cutover resume` goes on.
    Waiting(String),
}

impl Outcome {
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Completed | Outcome::Signalled(_) | Outcome::Waiting(_) => exit::DONE,
            Outcome::RolledBack(_) => exit::FAILED,
            Outcome::Stopped(_) => exit::REFUSED,
        }
    }
}

/// The exit code `status` gives for a run in `state` (the status
/// document's field): what the run itself exits with once it ends.
pub fn exit_code_of_state(state: &str) -> u8 {
    match state {
        "completed" => exit::DONE,
        "rolled_back" => exit::FAILED,
        "stopped" | "emergency" => exit::REFUSED,
        _ => exit::NOT_ENDED,
    }
}
