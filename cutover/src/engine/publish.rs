//! The run publishes where it stands to its fleet (beside the lock), so
//! `cutover status --plan` works from any terminal, without the journal.
//!
//! A task of its own does it, at most once a second and never blocking
//! the run: each journaled record pokes it; it reads the journal, builds
//! the status document (`progress::of`) and sends it. The last one is sent
//! before the run lets the lock go.

use crate::fleet::Fleet;
use crate::journal;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// Where and as whom to publish.
#[derive(Clone)]
struct Target {
    fleet: Fleet,
    holder: String,
}

pub(super) struct Publisher {
    latest: Option<watch::Sender<Option<Target>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Time between two publications.
const EVERY: Duration = Duration::from_secs(1);

impl Publisher {
    pub fn start(journal_path: PathBuf) -> Publisher {
        let (latest, mut news) = watch::channel(None::<Target>);
        let task = tokio::spawn(async move {
            while news.changed().await.is_ok() {
                let Some(target) = news.borrow_and_update().clone() else {
                    continue;
                };
                publish_once(&target, &journal_path).await;
                tokio::time::sleep(EVERY).await;
            }
        });
        Publisher {
            latest: Some(latest),
            task: Some(task),
        }
    }

    /// Something was journaled: publish soon.
    pub fn poke(&self, fleet: &Fleet, holder: &str) {
        if let Some(latest) = &self.latest {
            latest.send_replace(Some(Target {
                fleet: fleet.clone(),
                holder: holder.to_owned(),
            }));
        }
    }

    /// Publishes what is journaled now, waiting at most `limit` for it.
    pub async fn flush(&mut self, fleet: &Fleet, holder: &str, limit: Duration) {
        self.poke(fleet, holder);
        self.latest = None; // the task sends the last poke, then ends
        if let Some(task) = self.task.take() {
            if tokio::time::timeout(limit, task).await.is_err() {
                tracing::warn!("the run's last progress was not published within {limit:?}");
            }
        }
    }
}

async fn publish_once(target: &Target, journal_path: &std::path::Path) {
    let Ok(records) = journal::read_all(journal_path) else {
        return;
    };
    let run = journal::last_run(&records);
    let Some(mut progress) = crate::progress::of(run, &journal_path.display().to_string()) else {
        return;
    };
    // The record itself may hold the whole plan; its name, time and actor
    // are enough for a remote reader.
    if let Some(last) = progress["last_event"].as_object_mut() {
        last.remove("record");
    }
    target.fleet.publish(&target.holder, &progress).await;
}
