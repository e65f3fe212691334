//! How a run ended, and the exit code that says so.

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
            Outcome::Completed | Outcome::Signalled(_) | Outcome::Waiting(_) => 0,
            Outcome::RolledBack(_) => 1,
            Outcome::Stopped(_) => 3,
        }
    }
}
