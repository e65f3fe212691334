//! Preflight: check the green cluster through the Kubernetes API before any
//! traffic moves. Each check has a status, the objects involved and a
//! remediation line. Exit 0 all pass, 1 any fail (or any warning with
//! `--strict`), 2 input error.

mod api_versions;
mod checks;
mod manifests;
mod ownership;
pub mod removals;
pub mod sources;

use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args, Clone, Debug)]
pub struct PreflightArgs {
    /// Kubeconfig context of the blue (current) cluster.
    #[arg(long)]
    pub blue_context: String,
    /// Kubeconfig context of the green (new) cluster.
    #[arg(long)]
    pub green_context: String,
    /// Kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Namespaces whose workloads must exist on green (repeatable).
    #[arg(long = "namespace", short = 'n')]
    pub namespaces: Vec<String>,
    /// Manifests about to be applied to green: a file, a folder of them,
    /// or a Kustomize folder (rendered, as `kubectl apply -k` would).
    /// Files that are not Kubernetes objects are skipped, saying so.
    #[arg(long, value_name = "PATH")]
    pub manifests: Option<PathBuf>,
    /// Least share of green's nodes that must be Ready (0–1).
    #[arg(long, default_value_t = 0.9)]
    pub min_ready_nodes: f64,
    /// Warnings fail too.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub message: String,
    pub objects: Vec<String>,
    pub remediation: Option<String>,
}

impl Check {
    fn new(name: &str, status: Status, message: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status,
            message: message.into(),
            objects: Vec::new(),
            remediation: None,
        }
    }

    fn objects(mut self, objects: Vec<String>) -> Check {
        self.objects = objects;
        self
    }

    fn fix(mut self, remediation: impl Into<String>) -> Check {
        self.remediation = Some(remediation.into());
        self
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub blue_context: String,
    pub green_context: String,
    pub checks: Vec<Check>,
    pub passed: bool,
}

impl Report {
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.passed)
    }
}

/// An error in what the operator gave (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// A client for one kubeconfig context; a missing file or context is an
/// input error, an unreachable cluster is found by the checks.
async fn client(args: &PreflightArgs, context: &str, flag: &str) -> Result<Client, InputError> {
    let kubeconfig = match &args.kubeconfig {
        Some(path) => Kubeconfig::read_from(path)
            .map_err(|e| InputError(format!("--kubeconfig {}: {e}", path.display())))?,
        None => Kubeconfig::read().map_err(|e| {
            InputError(format!(
                "cannot read the kubeconfig (KUBECONFIG or ~/.kube/config): {e}"
            ))
        })?,
    };
    if !kubeconfig.contexts.iter().any(|c| c.name == context) {
        let known: Vec<&str> = kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(InputError(format!(
            "{flag} {context:?}: no such context in the kubeconfig (it has: {})",
            known.join(", ")
        )));
    }
    let options = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..KubeConfigOptions::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| InputError(format!("{flag} {context:?}: {e}")))?;
    config.connect_timeout = Some(std::time::Duration::from_secs(5));
    config.read_timeout = Some(std::time::Duration::from_secs(15));
    Client::try_from(config).map_err(|e| InputError(format!("{flag} {context:?}: {e}")))
}

pub async fn run(args: &PreflightArgs) -> Result<Report, InputError> {
    if !(0.0..=1.0).contains(&args.min_ready_nodes) {
        return Err(InputError(format!(
            "--min-ready-nodes {} must be from 0 to 1",
            args.min_ready_nodes
        )));
    }
    let manifests = match &args.manifests {
        Some(path) => {
            let found = manifests::read(path).map_err(InputError)?;
            for note in &found.notes {
                eprintln!("manifests: {note}");
            }
            found.objects
        }
        None => Vec::new(),
    };
    let blue = client(args, &args.blue_context, "--blue-context").await?;
    let green = client(args, &args.green_context, "--green-context").await?;
    let checks = checks::all(args, blue, green, manifests).await;
    let passed = checks
        .iter()
        .all(|c| c.status == Status::Pass || (c.status == Status::Warn && !args.strict));
    Ok(Report {
        blue_context: args.blue_context.clone(),
        green_context: args.green_context.clone(),
        checks,
        passed,
    })
}

/// The report for people.
pub fn print_table(report: &Report) {
    let mut table = comfy_table::Table::new();
    table.set_header(["check", "status", "finding", "objects", "remediation"]);
    for c in &report.checks {
        table.add_row(vec![
            c.name.clone(),
            format!("{:?}", c.status).to_uppercase(),
            c.message.clone(),
            c.objects.join("\n"),
            c.remediation.clone().unwrap_or_default(),
        ]);
    }
    println!(
        "preflight: blue {} → green {}",
        report.blue_context, report.green_context
    );
    println!("{table}");
    println!(
        "{}",
        if report.passed {
            "preflight passed"
        } else {
            "preflight FAILED"
        }
    );
}
