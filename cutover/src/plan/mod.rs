//! The cutover plan (YAML): which gateways, which routes, the steps, the
//! gates that judge each step, the smoke checks, and where to roll back to.
//! `deploy/examples/plan.yaml` is a documented example.
//!
//! A plan is validated whole before anything changes; every problem names
//! its field.

mod admin_tls;
mod drain;
mod mirror;
mod stages;
mod validate;

pub use mirror::MirrorGates;

pub use admin_tls::AdminTls;
pub use drain::DrainPlan;
pub use stages::{Schedule, Stage};
pub use validate::{check_webhook_url, PlanErrors};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The gateways (a plan with `stages` names a fleet per stage instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<Fleet>,
    /// Routes moved together; each step sets all of them in one write.
    pub routes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Or: fleets moved one after another, each with its own steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub gates: Gates,
    #[serde(default)]
    pub smoke: Vec<SmokeCheck>,
    /// Check green through the Kubernetes API before anything changes.
    #[serde(default)]
    pub preflight: Option<PreflightPlan>,
    #[serde(default)]
    pub rollback: Rollback,
    /// Longest wait for every replica to serve a new split.
    #[serde(default = "default_convergence", with = "humantime_serde")]
    pub convergence_timeout: Duration,
    /// How long the cutover lock lasts without renewal.
    #[serde(default = "default_lock_ttl", with = "humantime_serde")]
    pub lock_ttl: Duration,
    /// Webhooks told about the run as it goes (never blocking it).
    #[serde(default)]
    pub notify: Vec<Webhook>,
    /// After the last step (100% green): end what blue still holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainPlan>,
}

/// One receiver of notifications: a chat webhook, a JSON endpoint, or
/// Grafana's annotations API.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// The URL; one of `url`, `url_env`, `url_file`. Chat webhook URLs are
    /// secrets: prefer the environment or a file, which the journal never
    /// holds.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub url_env: Option<String>,
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    #[serde(default)]
    pub format: WebhookFormat,
    /// A bearer token for the receiver (Grafana's service-account token),
    /// from the environment or a file.
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Journal events to send (`started`, `step_passed`, `paused`,
    /// `rolled_back`, `completed`, `stopped`, `emergency`, ...); those
    /// seven when absent.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"event", "text", "record"}`.
    #[default]
    Json,
    /// Slack incoming webhook: `{"text"}`.
    Slack,
    /// Microsoft Teams incoming webhook: a MessageCard.
    Teams,
    /// Grafana `POST /api/annotations`: `{"time", "tags", "text"}`.
    GrafanaAnnotation,
}

/// The gateway replicas and how to reach them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// Admin API base URL of every replica, e.g. `http://10.0.0.5:9090`.
    #[serde(default)]
    pub admin_urls: Vec<String>,
    /// Or: find the replicas through a headless Service's endpoints.
    #[serde(default)]
    pub kubernetes: Option<KubernetesFleet>,
    /// Environment variable holding the admin token.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// Or a file holding it. Never put the token itself in a plan.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Where client traffic enters (smoke checks go here), e.g.
    /// `http://127.0.0.1:8080`.
    pub proxy_url: String,
    /// The gateway's pin header (smoke checks set it to `green`).
    #[serde(default = "default_pin_header")]
    pub pin_header: String,
    /// Pin secret, when the engine does not run from a trusted source (an
    /// in-cluster Job: pod addresses depend on the network plugin): a
    /// file holding it, or an environment variable (from a Secret).
    #[serde(default)]
    pub pin_secret_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_secret_env: Option<String>,
    /// For `https://` admin URLs (a gateway with `admin.tls`): the CA that
    /// signed the gateways' certificates, and a client certificate when they
    /// ask for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_tls: Option<AdminTls>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesFleet {
    pub namespace: String,
    /// A headless Service selecting the gateway pods.
    pub service: String,
    /// The admin API port on each pod.
    #[serde(default = "default_admin_port")]
    pub admin_port: u16,
    #[serde(default)]
    pub context: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Percent of traffic on green during this step (0 < p ≤ 100); left
    /// out (0) in a mirror step.
    #[serde(default)]
    pub green_percent: f64,
    /// A mirror step: this percent of blue's requests is copied to green
    /// (which serves none of them) and the gates judge green's answers
    /// against blue's (`gates.mirror`). Mirror steps come before a stage's
    /// first green step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_percent: Option<f64>,
    /// How long to hold and watch the gates before the next step.
    #[serde(default = "default_hold", with = "humantime_serde")]
    pub hold: Duration,
    /// Wait for `cutover resume` before applying this step.
    #[serde(default)]
    pub approval: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// Where the figures come from: `gateway` or `prometheus`.
    #[serde(default)]
    pub source: GateSource,
    /// The Prometheus server for `source: prometheus`, e.g.
    /// `http://prometheus.monitoring:9090`.
    #[serde(default)]
    pub prometheus_url: Option<String>,
    /// Time between evaluations.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// The sliding window the figures cover.
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    /// Fewer green requests than this in the window is inconclusive.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    /// Green's share of non-5xx responses must be at least this (0–1).
    #[serde(default = "default_success_rate")]
    pub success_rate: f64,
    /// Green's p99 latency must be at most this.
    #[serde(default = "default_p99", with = "humantime_serde")]
    pub p99_latency: Duration,
    /// Green's error rate may exceed blue's by at most this (0–1), when
    /// blue has enough traffic to compare.
    #[serde(default = "default_error_margin")]
    pub max_error_rate_increase: f64,
    /// Consecutive failed evaluations that trigger a rollback.
    #[serde(default = "default_failure_limit")]
    pub failure_limit: u32,
    /// Consecutive inconclusive evaluations before `on_inconclusive_limit`;
    /// 0 waits for traffic for ever.
    #[serde(default)]
    pub inconclusive_limit: u32,
    #[serde(default)]
    pub on_inconclusive_limit: InconclusiveAction,
    /// What a mirror step holds green's answers to.
    #[serde(default)]
    pub mirror: MirrorGates,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GateSource {
    /// Scrape every replica's `/metrics` and use counter deltas.
    #[default]
    Gateway,
    /// Ask a Prometheus server (PromQL over its HTTP API).
    Prometheus,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InconclusiveAction {
    /// Pause the run until `cutover resume`.
    #[default]
    Pause,
    /// Roll back.
    Fail,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmokeCheck {
    pub name: String,
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// A substring the response body must contain.
    #[serde(default)]
    pub expect_body: Option<String>,
    #[serde(default = "default_smoke_latency", with = "humantime_serde")]
    pub max_latency: Duration,
}

/// `cutover preflight`'s flags, as the first phase of a run.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PreflightPlan {
    pub blue_context: String,
    pub green_context: String,
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub manifests: Option<PathBuf>,
    #[serde(default = "default_min_ready")]
    pub min_ready_nodes: f64,
    #[serde(default)]
    pub strict: bool,
}

fn default_min_ready() -> f64 {
    0.9
}

impl PreflightPlan {
    pub fn args(&self) -> crate::preflight::PreflightArgs {
        crate::preflight::PreflightArgs {
            blue_context: self.blue_context.clone(),
            green_context: self.green_context.clone(),
            kubeconfig: self.kubeconfig.clone(),
            namespaces: self.namespaces.clone(),
            manifests: self.manifests.clone(),
            min_ready_nodes: self.min_ready_nodes,
            strict: self.strict,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    #[serde(default)]
    pub to: RollbackTarget,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RollbackTarget {
    /// Everything back to blue.
    #[default]
    Zero,
    /// The split of the last step that passed its gates (0 if none).
    LastPassed,
}

impl Default for Gates {
    fn default() -> Self {
        serde_yaml_ng::from_str("{}").expect("defaults")
    }
}

fn default_convergence() -> Duration {
    Duration::from_secs(30)
}
fn default_lock_ttl() -> Duration {
    Duration::from_secs(30)
}
fn default_token_env() -> String {
    "GATEWAY_ADMIN_TOKEN".into()
}
fn default_pin_header() -> String {
    "x-cutover-color".into()
}
fn default_admin_port() -> u16 {
    9090
}
fn default_hold() -> Duration {
    Duration::from_secs(60)
}
fn default_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_window() -> Duration {
    Duration::from_secs(60)
}
fn default_min_requests() -> u64 {
    100
}
fn default_success_rate() -> f64 {
    0.99
}
fn default_p99() -> Duration {
    Duration::from_millis(500)
}
fn default_error_margin() -> f64 {
    0.01
}
fn default_failure_limit() -> u32 {
    2
}
fn default_method() -> String {
    "GET".into()
}
fn default_status() -> u16 {
    200
}
fn default_smoke_latency() -> Duration {
    Duration::from_secs(2)
}

#[cfg(test)]
mod tests;
