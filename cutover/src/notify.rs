//! Notifications: each journaled event a receiver asked for goes to its
//! webhook (Slack, Teams, plain JSON, or a Grafana annotation), from a task
//! of its own per receiver, so a receiver that is down or slow never holds
//! up or fails the cutover. Each message is tried a few times with backoff,
//! then dropped with a warning; at the end of a run the last messages get a
//! few seconds to go out.

use crate::journal::{Event, Record};
use crate::output::human_line;
use crate::plan::{check_webhook_url, Webhook, WebhookFormat};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Sent when a receiver lists no `events`.
const DEFAULT_EVENTS: [&str; 7] = [
    "started",
    "step_passed",
    "paused",
    "rolled_back",
    "completed",
    "stopped",
    "emergency",
];
/// Tries per message, and the wait before each retry.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait at the end of a run for messages still going out.
pub const FLUSH_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct NotifyError {
    field: String,
    problem: String,
}

/// A receiver, ready to send to: its URL and token resolved.
struct Receiver {
    /// `notify[i]` and the host: what logs may say (the URL is a secret).
    name: String,
    url: String,
    token: Option<String>,
    format: WebhookFormat,
    /// Handed to the [`Notifier`], which picks what to queue.
    events: Vec<String>,
}

#[derive(Default)]
pub struct Notifier {
    /// Each receiver's events and the queue to its sender.
    queues: Vec<(Vec<String>, mpsc::UnboundedSender<Record>)>,
    tasks: Vec<JoinHandle<()>>,
}

impl Notifier {
    /// Resolves every receiver's secrets and starts its sender. Fails,
    /// naming the field, before anything has been sent.
    pub fn start(hooks: &[Webhook]) -> Result<Notifier, NotifyError> {
        let receivers = hooks
            .iter()
            .enumerate()
            .map(|(i, hook)| Receiver::resolve(&format!("notify[{i}]"), hook))
            .collect::<Result<Vec<_>, _>>()?;
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .map_err(|e| NotifyError {
                field: "notify".into(),
                problem: format!("cannot build an HTTP client: {e}"),
            })?;
        let mut notifier = Notifier::default();
        for mut receiver in receivers {
            let (tx, rx) = mpsc::unbounded_channel();
            notifier
                .queues
                .push((std::mem::take(&mut receiver.events), tx));
            notifier
                .tasks
                .push(tokio::spawn(deliver(client.clone(), receiver, rx)));
        }
        Ok(notifier)
    }

    /// Queues `record` for every receiver that wants its event; returns at
    /// once.
    pub fn notify(&self, record: &Record) {
        let name = record.event.name();
        for (events, queue) in &self.queues {
            if events.iter().any(|e| e == name) {
                let _ = queue.send(record.clone());
            }
        }
    }

    /// Lets queued messages go out, for at most `limit`.
    pub async fn flush(&mut self, limit: Duration) {
        self.queues.clear();
        let tasks = std::mem::take(&mut self.tasks);
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("notifications still unsent after {limit:?}; giving up on them");
        }
    }
}

impl Receiver {
    fn resolve(at: &str, hook: &Webhook) -> Result<Receiver, NotifyError> {
        let fail = |field: &str, problem: String| NotifyError {
            field: format!("{at}.{field}"),
            problem,
        };
        let url = match (&hook.url, &hook.url_env, &hook.url_file) {
            (Some(url), None, None) => url.clone(),
            (None, Some(var), None) => std::env::var(var)
                .map_err(|_| fail("url_env", format!("environment variable {var} is not set")))?,
            (None, None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| fail("url_file", format!("cannot read {}: {e}", path.display())))?,
            _ => {
                return Err(fail(
                    "url",
                    "set exactly one of url, url_env, url_file".into(),
                ))
            }
        };
        let url = url.trim().to_owned();
        check_webhook_url(&url).map_err(|e| fail("url", e))?;
        let token =
            match (&hook.token_env, &hook.token_file) {
                (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                    fail(
                        "token_env",
                        format!("environment variable {var} is not set"),
                    )
                })?),
                (None, Some(path)) => Some(std::fs::read_to_string(path).map_err(|e| {
                    fail("token_file", format!("cannot read {}: {e}", path.display()))
                })?),
                (None, None) => None,
            };
        let events: Vec<String> = match &hook.events {
            Some(events) => events.clone(),
            None => DEFAULT_EVENTS.iter().map(|e| e.to_string()).collect(),
        };
        if let Some(unknown) = events.iter().find(|e| !Event::NAMES.contains(&e.as_str())) {
            return Err(fail(
                "events",
                format!(
                    "unknown event {unknown:?}; known: {}",
                    Event::NAMES.join(", ")
                ),
            ));
        }
        let host = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(Receiver {
            name: format!("{at} ({host})"),
            url,
            token: token.map(|t| t.trim().to_owned()),
            format: hook.format,
            events,
        })
    }
}

/// Sends one receiver's messages in order until the queue closes.
async fn deliver(
    client: reqwest::Client,
    receiver: Receiver,
    mut queue: mpsc::UnboundedReceiver<Record>,
) {
    while let Some(record) = queue.recv().await {
        let body = body(receiver.format, &record);
        let mut attempt = 0;
        loop {
            let mut request = client.post(&receiver.url).json(&body);
            if let Some(token) = &receiver.token {
                request = request.bearer_auth(token);
            }
            let problem = match request.send().await {
                Ok(response) if response.status().is_success() => break,
                Ok(response) => format!("answered {}", response.status()),
                // Without the URL: it may hold the webhook's secret.
                Err(e) => format!("unreachable ({})", e.without_url()),
            };
            let Some(wait) = BACKOFF.get(attempt) else {
                tracing::warn!(receiver = %receiver.name, event = record.event.name(), "notification dropped: {problem}");
                break;
            };
            tracing::debug!(receiver = %receiver.name, "notification failed, retrying: {problem}");
            tokio::time::sleep(*wait).await;
            attempt += 1;
        }
    }
}

/// The body a receiver of `format` understands.
fn body(format: WebhookFormat, record: &Record) -> Value {
    let event = record.event.name();
    let text = human_line(&record.event).unwrap_or_else(|| event.to_owned());
    let text = format!("cutover: {text}");
    match format {
        WebhookFormat::Json => json!({"event": event, "text": text, "record": record}),
        WebhookFormat::Slack => json!({ "text": text }),
        WebhookFormat::Teams => json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": text,
            "text": text,
        }),
        WebhookFormat::GrafanaAnnotation => {
            let time = humantime::parse_rfc3339_weak(&record.time)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as u64);
            json!({"time": time, "tags": ["cutover", event], "text": text})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event: Event) -> Record {
        Record {
            time: "2026-12-02T10:00:00Z".into(),
            actor: "ana@host".into(),
            event,
        }
    }

    #[test]
    fn each_format_carries_the_same_line() {
        let r = record(Event::Completed {
            green_percent: 100.0,
        });
        let line = "cutover: completed at green 100%";
        assert_eq!(body(WebhookFormat::Slack, &r), json!({ "text": line }));
        assert_eq!(body(WebhookFormat::Teams, &r)["text"], line);
        let j = body(WebhookFormat::Json, &r);
        assert_eq!(
            (j["event"].as_str(), j["text"].as_str()),
            (Some("completed"), Some(line))
        );
        let g = body(WebhookFormat::GrafanaAnnotation, &r);
        assert_eq!(g["time"], 1_796_205_600_000u64);
        assert_eq!(g["tags"], json!(["cutover", "completed"]));
    }

    #[test]
    fn bad_receivers_are_named_before_anything_is_sent() {
        let hook = |url: &str| Webhook {
            url: Some(url.into()),
            url_env: None,
            url_file: None,
            format: WebhookFormat::Json,
            token_env: None,
            token_file: None,
            events: None,
        };
        let e = Receiver::resolve("notify[0]", &hook("ftp://example.com/x"))
            .err()
            .unwrap();
        assert!(
            e.to_string().starts_with("notify[0].url: must be an http"),
            "{e}"
        );
        let mut unknown = hook("http://127.0.0.1:9/x");
        unknown.events = Some(vec!["finished".into()]);
        let e = Receiver::resolve("notify[1]", &unknown).err().unwrap();
        assert!(
            e.to_string()
                .contains("notify[1].events: unknown event \"finished\""),
            "{e}"
        );
        let mut env = hook("x");
        env.url = None;
        env.url_env = Some("CUTOVER_TEST_UNSET_WEBHOOK".into());
        let e = Receiver::resolve("notify[2]", &env).err().unwrap();
        assert!(
            e.to_string()
                .contains("notify[2].url_env: environment variable"),
            "{e}"
        );
    }
}
