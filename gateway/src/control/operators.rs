//! The channel between operators' terminals and the cutover run, through
//! the fleet's own state (where the lock lives), so any terminal that can
//! reach the admin API drives any run, wherever its journal is:
//!
//! - a run holding the lock publishes its progress (`PUT /v1/run`);
//! - an operator queues a command (`POST /v1/controls`);
//! - the run takes the commands, journals them with their actor, acts on
//!   them, and removes them (`POST /v1/controls/ack`).
//!
//! The gateway keeps these as given; it never acts on them itself.

use super::lock::{unix_now, LockError};
use super::Gateway;
pub use crate::state::ControlRequest;
use crate::state::{RunProgress, SplitDocument, StoreError};

/// The commands a run understands.
pub const COMMANDS: [&str; 7] = [
    "pause",
    "resume",
    "approve",
    "promote",
    "promote_step",
    "abort",
    "emergency",
];

/// Commands kept waiting at most; a run takes them within seconds.
pub const MAX_WAITING: usize = 32;

/// Largest published progress, in bytes of JSON.
pub const MAX_PROGRESS: usize = 32 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The call names a field wrongly (400).
    #[error("{0}")]
    Invalid(String),
    /// Only the run holding the lock may publish or take commands (409).
    #[error("{0}")]
    NotHolder(String),
    /// Too many commands wait already (409).
    #[error("{MAX_WAITING} commands are waiting already and no run takes them; is a run alive? (`cutover status --plan`)")]
    Full,
    #[error("the state store refused the change: {0}")]
    Store(#[from] StoreError),
}

impl From<LockError> for ControlError {
    fn from(e: LockError) -> ControlError {
        match e {
            LockError::Store(e) => ControlError::Store(e),
            held => ControlError::NotHolder(held.to_string()),
        }
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Refuses unless `holder` holds a lock that has not expired.
fn check_holder(doc: &SplitDocument, holder: &str) -> Result<(), ControlError> {
    match &doc.lock {
        Some(held) if held.holder == holder && held.expires_at > unix_now() => Ok(()),
        Some(held) if held.holder == holder => Err(ControlError::NotHolder(format!(
            "holder: the cutover lock of {holder:?} has expired; take it again first"
        ))),
        Some(held) => Err(ControlError::NotHolder(format!(
            "holder: the cutover lock is held by {:?}, not {holder:?}",
            held.holder
        ))),
        None => Err(ControlError::NotHolder(format!(
            "holder: nobody holds the cutover lock, so {holder:?} may not speak for the run"
        ))),
    }
}

impl Gateway {
    /// `PUT /v1/run`: the run holding the lock says where it stands.
    pub async fn publish_run(
        &self,
        holder: &str,
        progress: serde_json::Value,
    ) -> Result<RunProgress, ControlError> {
        let size = serde_json::to_vec(&progress).map_or(0, |v| v.len());
        if size > MAX_PROGRESS {
            return Err(ControlError::Invalid(format!(
                "progress: {size} bytes, at most {MAX_PROGRESS}"
            )));
        }
        self.update(|doc| {
            check_holder(doc, holder)?;
            let run = RunProgress {
                holder: holder.to_owned(),
                published_at: now(),
                progress,
            };
            doc.run = Some(run.clone());
            Ok(run)
        })
        .await
    }

    /// `POST /v1/controls`: queues an operator's command for the run. The
    /// same id again is the same command (a retry), queued once.
    pub async fn queue_control(
        &self,
        mut request: ControlRequest,
    ) -> Result<ControlRequest, ControlError> {
        if !COMMANDS.contains(&request.command.as_str()) {
            return Err(ControlError::Invalid(format!(
                "command: {:?} is not one of {}",
                request.command,
                COMMANDS.join(", ")
            )));
        }
        for (field, value) in [("id", &request.id), ("actor", &request.actor)] {
            if value.trim().is_empty() || value.len() > 200 {
                return Err(ControlError::Invalid(format!(
                    "{field}: must be 1 to 200 characters"
                )));
            }
        }
        if request.reason.as_ref().is_some_and(|r| r.len() > 2000) {
            return Err(ControlError::Invalid(
                "reason: at most 2000 characters".into(),
            ));
        }
        match (request.command.as_str(), request.to.as_deref()) {
            ("emergency", Some("blue" | "green")) | (_, None) => {}
            ("emergency", _) => {
                return Err(ControlError::Invalid(
                    "to: an emergency names the colour that took all traffic: blue or green".into(),
                ))
            }
            _ => return Err(ControlError::Invalid("to: only an emergency has it".into())),
        }
        request.queued_at = now();
        self.update(|doc| {
            if let Some(queued) = doc.controls.iter().find(|c| c.id == request.id) {
                return Ok(queued.clone());
            }
            if doc.controls.len() >= MAX_WAITING {
                return Err(ControlError::Full);
            }
            doc.controls.push(request.clone());
            Ok(request)
        })
        .await
    }

    /// `POST /v1/controls/ack`: the run holding the lock has journaled
    /// these commands; they leave the queue. Returns how many were removed.
    pub async fn ack_controls(&self, holder: &str, ids: &[String]) -> Result<usize, ControlError> {
        self.update(|doc| {
            check_holder(doc, holder)?;
            let before = doc.controls.len();
            doc.controls.retain(|c| !ids.contains(&c.id));
            Ok(before - doc.controls.len())
        })
        .await
    }
}
