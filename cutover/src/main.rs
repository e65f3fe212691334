//! `cutover`: the operator CLI.

use clap::{Parser, Subcommand, ValueEnum};
use cutover::commands::{self, EmergencyTarget};
use cutover::engine::{Engine, EngineError, RunOptions};
use cutover::fleet::{read_token, Fleet, FleetError};
use cutover::journal::ControlCommand;
use cutover::outcome::Outcome;
use cutover::output::{Format, Output};
use cutover::plan::Plan;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Move traffic from a blue cluster to its green sibling, step by step,
/// under gates and smoke checks, with automatic rollback.
///
/// Exit codes: 0 done, 1 rolled back or checks failed, 2 bad input,
/// 3 refused (lock held, nothing to resume, outside change).
///
/// Examples:
///   cutover run deploy/examples/plan.yaml
///   cutover status --output json
///   cutover pause --reason "waiting for the DBA"
///   cutover resume
///   cutover emergency --to blue --gateway http://127.0.0.1:9090 --reason "green 502s" --yes
#[derive(Parser)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    /// The journal of the cutover (JSON lines).
    #[arg(
        long,
        global = true,
        env = "CUTOVER_JOURNAL",
        default_value = "cutover-journal.jsonl"
    )]
    journal: PathBuf,
    /// human: lines and a live bar on stderr; json: one JSON record per line on stdout.
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Human)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a plan: smoke checks, then each step under its gates.
    Run {
        /// The plan file (YAML), e.g. deploy/examples/plan.yaml.
        plan: PathBuf,
        #[command(flatten)]
        options: RunFlags,
    },
    /// Unpause a live run, or continue a run that died (or left off in a
    /// stage's wait), from the journal. With --plan: tell the plan's live
    /// run to go on, through its fleet, from any terminal.
    Resume {
        #[command(flatten)]
        options: RunFlags,
        #[command(flatten)]
        remote: Remote,
    },
    /// Where the cutover stands, from the journal (or with --plan from
    /// what the run published to its fleet): stage, step, split, the last
    /// gate's figures and verdict, time left in the hold.
    ///
    /// Examples (from a second terminal while `cutover run` is active, or
    /// from a laptop while the run is a Job in the cluster):
    ///   cutover status --watch --interval 2s
    ///   cutover status --plan deploy/kubernetes/cutover-job/plan.yaml
    #[command(verbatim_doc_comment)]
    Status {
        /// Keep refreshing until the run ends.
        #[arg(long)]
        watch: bool,
        /// Time between refreshes with --watch.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        #[command(flatten)]
        remote: Remote,
    },
    /// Pause the live run after the current evaluation.
    Pause(ControlFlags),
    /// Approve a step or stage that waits for approval (the run goes on).
    Approve(ControlFlags),
    /// Go to 100% green now (still waiting for convergence).
    Promote(ControlFlags),
    /// Roll back now.
    Abort(ControlFlags),
    /// The local demo: sample backends, the gateway and load on loopback,
    /// and deploy/examples/plan.yaml run to 100% (or rolled back).
    Demo {
        /// Make green misbehave, to watch the gates roll it back.
        #[arg(long, value_enum)]
        break_green: Option<cutover::demo::Breakage>,
    },
    /// Check the green cluster through the Kubernetes API before any
    /// traffic moves. Exit 0 all pass, 1 any fail, 2 input error.
    ///
    /// Example:
    ///   cutover preflight --blue-context aks-blue --green-context aks-green -n shop -n payments --manifests k8s/
    #[command(verbatim_doc_comment)]
    Preflight(cutover::preflight::PreflightArgs),
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
        /// Admin URL of a gateway replica (repeat for each).
        #[arg(long = "gateway", value_name = "URL")]
        gateways: Vec<String>,
        /// Or every fleet of a plan file (every stage's; a `kubernetes:`
        /// fleet is found through its headless Service).
        #[arg(long, conflicts_with = "gateways")]
        plan: Option<PathBuf>,
        /// File with the admin token (else GATEWAY_ADMIN_TOKEN).
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
}

/// Acting through the plan's fleet instead of the journal.
#[derive(clap::Args)]
struct Remote {
    /// Reach the run through this plan's fleet (its lock, published
    /// progress and command queue) instead of the journal: works from any
    /// terminal that reaches the gateways' admin API, wherever the run's
    /// journal lives (e.g. an in-cluster Job's volume).
    #[arg(long, value_name = "PLAN")]
    plan: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ControlFlags {
    /// Why; journaled with your name, shown in status and notifications.
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Args)]
struct RunFlags {
    /// Take over a stale cutover lock (journaled).
    #[arg(long)]
    take_over: bool,
    /// At a stage's `wait_before`, exit 0 saying when it may go on instead
    /// of waiting (a CronJob running `cutover resume --no-wait` picks it up).
    #[arg(long)]
    no_wait: bool,
}

impl RunFlags {
    fn options(&self) -> RunOptions {
        RunOptions {
            take_over: self.take_over,
            no_wait: self.no_wait,
        }
    }
}

#[derive(Subcommand)]
enum NetworkCommand {
    /// Is there room for the sibling cluster's subnets, and are its
    /// service/pod CIDRs and DNS IP clear? Exit 0 yes, 1 no, 2 bad input.
    ///
    /// Examples:
    ///   cutover network plan --inventory deploy/examples/network.yaml --cluster deploy/examples/cluster.yaml
    ///   cutover network plan --azure-subscription SUB --resource-group rg-net --vnet vnet-prod \
    ///       --inventory onprem.yaml --cluster cluster.yaml --output json
    #[command(verbatim_doc_comment)]
    Plan(cutover::network::PlanArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Colour {
    Blue,
    Green,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Used by the docs tests: the real parser checks a command, nothing runs.
    if std::env::var_os("CUTOVER_PARSE_ONLY").is_some() {
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code_of(&e))
        }
    }
}

fn exit_code_of(e: &anyhow::Error) -> u8 {
    if let Some(e) = e.downcast_ref::<EngineError>() {
        return match e {
            EngineError::Refused(_) | EngineError::Fleet(FleetError::LockHeld { .. }) => 3,
            EngineError::Fleet(FleetError::Setup(_)) | EngineError::Notify(_) => 2,
            _ => 1,
        };
    }
    if e.downcast_ref::<cutover::plan::PlanErrors>().is_some() {
        return 2;
    }
    1
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let out = Output::new(cli.output);
    let json = out.is_json();
    let outcome: Outcome = match cli.command {
        Command::Run { plan, options } => {
            let loaded = Plan::load(&plan)?;
            Engine::run(loaded, &plan, &cli.journal, out, options.options()).await?
        }
        Command::Resume {
            remote: Remote { plan: Some(p) },
            ..
        } => {
            let plan = Plan::load(&p)?;
            commands::remote::control(&plan, &p, ControlCommand::Resume, None).await?
        }
        Command::Resume { options, .. } => {
            Engine::resume(&cli.journal, out, options.options()).await?
        }
        Command::Demo { break_green } => return cutover::demo::run(break_green, out).await,
        Command::Network {
            command: NetworkCommand::Plan(args),
        } => {
            return Ok(match cutover::network::plan(&args).await {
                cutover::network::Planned::InputError(e) => {
                    eprintln!("error: {e}");
                    2
                }
                cutover::network::Planned::Report(report) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&report)?);
                    } else {
                        cutover::network::print_table(&report);
                    }
                    if report.fits {
                        0
                    } else {
                        1
                    }
                }
            });
        }
        Command::Preflight(args) => {
            return Ok(match cutover::preflight::run(&args).await {
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
                Ok(report) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&report)?);
                    } else {
                        cutover::preflight::print_table(&report);
                    }
                    report.exit_code()
                }
            });
        }
        Command::Status {
            watch,
            interval,
            remote,
        } => {
            let plan = remote.plan.as_deref().map(Plan::load).transpose()?;
            let source = match (&plan, &remote.plan) {
                (Some(plan), Some(path)) => cutover::status::Source::Fleet(plan, path),
                _ => cutover::status::Source::Journal(&cli.journal),
            };
            if watch {
                cutover::status::watch(&source, &out, interval).await?;
            } else {
                cutover::status::status(&source, &out).await?;
            }
            return Ok(0);
        }
        Command::Pause(flags) => control(&cli.journal, ControlCommand::Pause, flags, out).await?,
        Command::Approve(flags) => {
            control(&cli.journal, ControlCommand::Approve, flags, out).await?
        }
        Command::Promote(flags) => {
            control(&cli.journal, ControlCommand::Promote, flags, out).await?
        }
        Command::Abort(flags) => control(&cli.journal, ControlCommand::Abort, flags, out).await?,
        Command::Emergency {
            to,
            reason,
            yes,
            gateways,
            plan,
            token_file,
        } => {
            let to_green = matches!(to, Colour::Green);
            let plan_fleets = match &plan {
                Some(p) => Plan::load(p)?
                    .schedule()
                    .stages
                    .into_iter()
                    .filter_map(|s| s.fleet)
                    .collect(),
                None => Vec::new(),
            };
            if plan.is_none() && gateways.is_empty() {
                return Err(EngineError::Fleet(FleetError::Setup(
                    "--gateway URL (repeatable) or --plan FILE: which gateways to switch".into(),
                ))
                .into());
            }
            if !yes && !confirm(if to_green { "green" } else { "blue" })? {
                eprintln!("not confirmed; nothing changed");
                return Ok(2);
            }
            let mut target = EmergencyTarget { fleets: Vec::new() };
            if plan.is_none() {
                let token = read_token("GATEWAY_ADMIN_TOKEN", token_file.as_deref())
                    .map_err(EngineError::Fleet)?;
                target.fleets.push(Fleet::new(gateways, token));
            }
            for mut fleet in plan_fleets {
                if token_file.is_some() {
                    fleet.token_file = token_file.clone();
                }
                target
                    .fleets
                    .push(Fleet::from_plan(&fleet).await.map_err(EngineError::Fleet)?);
            }
            commands::emergency(target, to_green, &reason, &cli.journal, &out).await?;
            return Ok(0);
        }
    };
    if let Outcome::Signalled(message) = &outcome {
        if !json {
            eprintln!("{message}");
        }
    }
    Ok(outcome.exit_code())
}

/// A control command: through the plan's fleet with --plan, else through
/// the journal.
async fn control(
    journal: &std::path::Path,
    command: ControlCommand,
    flags: ControlFlags,
    out: Output,
) -> anyhow::Result<Outcome> {
    Ok(match flags.remote.plan {
        Some(path) => {
            let plan = Plan::load(&path)?;
            commands::remote::control(&plan, &path, command, flags.reason).await?
        }
        None => commands::control(journal, command, flags.reason, out).await?,
    })
}

/// Asks for the colour to be typed back; refuses without a terminal.
fn confirm(colour: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(EngineError::Fleet(FleetError::Setup(
            "emergency needs --yes when not run from a terminal".into(),
        ))
        .into());
    }
    eprint!("This sends ALL traffic of every route to {colour} now. Type {colour} to confirm: ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim() == colour)
}
