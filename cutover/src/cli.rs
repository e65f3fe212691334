//! The command line: every command, flag and help text of `cutover`
//! (`main.rs` carries them out).

use crate::output::Format;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Move traffic from a blue cluster to its green sibling, step by step,
/// under gates and smoke checks, with automatic rollback.
///
/// Exit codes (every command; docs/exit-codes.md):
///   0 done: the run completed, the command was taken, every check passed
///   1 failed: rolled back, a check failed, or an error stopped the command
///   2 bad input: a flag, file or field is wrong; nothing changed
///   3 refused or stopped: nothing to act on, the run has ended, the lock
///     is held, the confirmation was declined; or the run stopped without
///     rolling back (outside change, emergency)
///   4 not ended yet: `status` of a run still running, paused or waiting
///
/// Examples:
///   cutover plan check deploy/examples/plan.yaml
///   cutover run deploy/examples/plan.yaml
///   cutover status --watch --timeout 30m
///   cutover pause --reason "waiting for the DBA"
///   cutover resume --reason "DBA done"
///   cutover promote --reason "metrics look fine"      # skip the rest of this step's hold
///   cutover promote --full --reason "all good"        # 100% green now
///   cutover emergency --to blue --gateway http://127.0.0.1:9090 --reason "green 502s" --yes
#[derive(Parser)]
#[command(name = "cutover", version, verbatim_doc_comment)]
pub struct Cli {
    /// The journal of the cutover (JSON lines).
    #[arg(
        long,
        global = true,
        env = "CUTOVER_JOURNAL",
        default_value = "cutover-journal.jsonl"
    )]
    pub journal: PathBuf,
    /// human: lines and a live bar on stderr; json: one JSON document per
    /// line on stdout; yaml: one YAML document per `---` on stdout; md:
    /// Markdown (`cutover report` only).
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Human)]
    pub output: Format,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a plan: smoke checks, then each step under its gates.
    Run {
        /// The plan file (YAML), e.g. deploy/examples/plan.yaml.
        plan: PathBuf,
        #[command(flatten)]
        options: RunFlags,
    },
    /// Check a plan without running it: validate it, resolve each stage's
    /// fleet, print the steps, gates and checks. Writes nothing.
    Plan {
        #[command(subcommand)]
        command: PlanCommand,
    },
    /// Unpause a live run, or continue a run that died (or left off in a
    /// stage's wait), from the journal. With --plan: tell the plan's live
    /// run to go on, through its fleet, from any terminal.
    Resume {
        #[command(flatten)]
        options: RunFlags,
        #[command(flatten)]
        control: ControlFlags,
    },
    /// Where the cutover stands, from the journal (or with --plan from
    /// what the run published to its fleet): stage, step, split, the last
    /// gate's figures and verdict, time left in the hold. The exit code
    /// says how the run stands: 0 completed, 1 rolled back, 3 stopped,
    /// 4 not ended yet.
    ///
    /// Examples (from a second terminal while `cutover run` is active, or
    /// from a laptop while the run is a Job in the cluster):
    ///   cutover status --watch --interval 2s
    ///   cutover status --watch --timeout 1h && echo "green took it all"
    ///   cutover status --plan deploy/kubernetes/cutover-job/plan.yaml
    #[command(verbatim_doc_comment)]
    Status {
        /// Keep refreshing until the run ends.
        #[arg(long)]
        watch: bool,
        /// Time between refreshes with --watch.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        interval: Duration,
        /// With --watch: give up after this long (exit 4 if the run has
        /// not ended by then).
        #[arg(long, requires = "watch", value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Pause the live run after the current evaluation.
    Pause(ControlFlags),
    /// Approve a step or stage that waits for approval (the run goes on).
    Approve(ControlFlags),
    /// End the current step's hold now and go on with the next step (at an
    /// approval: approve it). With --full: 100% green now.
    Promote {
        /// Skip every remaining step: 100% green now (still waiting for
        /// every replica to serve it).
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        control: ControlFlags,
    },
    /// Roll back now.
    Abort(ControlFlags),
    /// The local demo: sample backends, the gateway and load on loopback,
    /// and deploy/examples/plan.yaml run to 100% (or rolled back).
    Demo {
        /// Make green misbehave, to watch the gates roll it back.
        #[arg(long, value_enum)]
        break_green: Option<crate::demo::Breakage>,
    },
    /// Check the green cluster through the Kubernetes API before any
    /// traffic moves. Exit 0 all pass, 1 any fail, 2 input error.
    ///
    /// Example:
    ///   cutover preflight --blue-context aks-blue --green-context aks-green -n shop -n payments --manifests k8s/
    #[command(verbatim_doc_comment)]
    Preflight(crate::preflight::PreflightArgs),
    /// Network planning for the sibling cluster.
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// Send 100% of every route to one colour at once. Needs no plan, no
    /// running cutover and no lock.
    Emergency {
        /// The colour that takes all traffic.
        #[arg(long, value_enum)]
        to: Colour,
        /// Why; recorded in the gateways and the journal.
        #[arg(long)]
        reason: String,
        /// Skip the interactive confirmation.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        gateways: GatewayFlags,
    },
    /// End what is still open to a colour no route sends traffic to:
    /// WebSockets, gRPC and HTTP/2 streams opened before the split moved,
    /// requests in flight. No upstream connection to it is reused from now
    /// on; at the deadline its tunnels are closed (WebSocket code 1001).
    /// Waits until nothing is in flight to it on any replica, journals it,
    /// and says whether it is empty everywhere: the last step before
    /// deleting that cluster. Refused (exit 3) while a route still sends
    /// the colour traffic; exit 1 when something is left at the deadline.
    ///
    /// Example:
    ///   cutover drain --color blue --deadline 10m --plan plan.yaml
    #[command(verbatim_doc_comment)]
    Drain {
        /// The colour to empty.
        #[arg(long, value_enum)]
        color: Colour,
        /// When its remaining tunnels and streams are closed.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        deadline: std::time::Duration,
        /// Why; recorded in the journal and the gateways' logs.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        gateways: GatewayFlags,
    },
    /// A run's report from the journal, for a change ticket or a
    /// post-mortem: the outcome, the split over time, each colour's
    /// figures against the gate thresholds, every decision with who made
    /// it and why, smoke and preflight results. Works for finished, failed
    /// and running runs. Prints Markdown (`-o md`, also the default), or
    /// `-o json`/`yaml`; `--html FILE` writes one self-contained page
    /// (inline SVG charts, no outside assets, prints well).
    ///
    /// Examples:
    ///   cutover report --html cutover-report.html
    ///   cutover report -o md > report.md
    ///   cutover report --journal /var/lib/cutover/journal.jsonl -o json | jq .outcome
    #[command(verbatim_doc_comment)]
    Report {
        /// Write the HTML page to this file (nothing else is printed but
        /// where it went).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Print a shell completion script.
    ///
    /// Examples:
    ///   cutover completions bash > /etc/bash_completion.d/cutover
    ///   cutover completions zsh > "${fpath[1]}/_cutover"
    #[command(verbatim_doc_comment)]
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
pub enum PlanCommand {
    /// Validate PLAN as `run` would, resolve each stage's fleet (token,
    /// replicas), and print what a run would do. Exit 0 ready, 1 a fleet
    /// did not resolve, 2 the plan is invalid.
    ///
    /// Example:
    ///   cutover plan check deploy/kubernetes/cutover-job/plan.yaml
    #[command(verbatim_doc_comment)]
    Check {
        /// The plan file (YAML).
        plan: PathBuf,
    },
}

/// Acting through the plan's fleet instead of the journal.
#[derive(clap::Args)]
pub struct Remote {
    /// Reach the run through this plan's fleet (its lock, published
    /// progress and command queue) instead of the journal: works from any
    /// terminal that reaches the gateways' admin API, wherever the run's
    /// journal lives (e.g. an in-cluster Job's volume).
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
}

/// Which gateways a command acts on, without a run: `emergency`, `drain`.
#[derive(clap::Args)]
pub struct GatewayFlags {
    /// Admin URL of a gateway replica (repeat for each).
    #[arg(long = "gateway", value_name = "URL")]
    pub gateways: Vec<String>,
    /// Or every fleet of a plan file (every stage's; a `kubernetes:`
    /// fleet is found through its headless Service).
    #[arg(long, conflicts_with = "gateways")]
    pub plan: Option<PathBuf>,
    /// File with the admin token (else GATEWAY_ADMIN_TOKEN).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ControlFlags {
    /// Why; journaled with your name, shown in status and notifications.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(clap::Args)]
pub struct RunFlags {
    /// Take over a stale cutover lock (journaled).
    #[arg(long)]
    pub take_over: bool,
    /// At a stage's `wait_before`, exit 0 saying when it may go on instead
    /// of waiting (a CronJob running `cutover resume --no-wait` picks it up).
    #[arg(long)]
    pub no_wait: bool,
}

impl RunFlags {
    pub fn options(&self) -> crate::engine::RunOptions {
        crate::engine::RunOptions {
            take_over: self.take_over,
            no_wait: self.no_wait,
        }
    }
}

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Is there room for the sibling cluster's subnets, and are its
    /// service/pod CIDRs and DNS IP clear? Exit 0 yes, 1 no, 2 bad input.
    ///
    /// Examples:
    ///   cutover network plan --inventory deploy/examples/network.yaml --cluster deploy/examples/cluster.yaml
    ///   cutover network plan --azure-subscription SUB --resource-group rg-net --vnet vnet-prod \
    ///       --inventory onprem.yaml --cluster cluster.yaml --output json
    #[command(verbatim_doc_comment)]
    Plan(crate::network::PlanArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Colour {
    Blue,
    Green,
}
