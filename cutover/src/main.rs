//! `cutover`: the operator CLI.

use clap::{Parser, Subcommand, ValueEnum};
use cutover::commands::{self, EmergencyTarget};
use cutover::engine::{Engine, EngineError, RunOptions};
use cutover::fleet::{read_token, FleetError};
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
    /// stage's wait), from the journal.
    Resume {
        #[command(flatten)]
        options: RunFlags,
    },
    /// Where the cutover stands, from the journal: stage, step, split,
    /// the last gate's figures and verdict, time left in the hold.
    ///
    /// Example (from a second terminal while `cutover run` is active):
    ///   cutover status --watch --interval 2s
    #[command(verbatim_doc_comment)]
    Status {
        /// Keep refreshing until the run ends.
        #[arg(long)]
        watch: bool,
        /// Time between refreshes with --watch.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
    },
    /// Pause the live run after the current evaluation.
    Pause {
        #[arg(long)]
        reason: Option<String>,
    },
    /// Go to 100% green now (still waiting for convergence).
    Promote {
        #[arg(long)]
        reason: Option<String>,
    },
    /// Roll back now.
    Abort {
        #[arg(long)]
        reason: Option<String>,
    },
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
        /// Or take the replicas from a plan file.
        #[arg(long, conflicts_with = "gateways")]
        plan: Option<PathBuf>,
        /// File with the admin token (else GATEWAY_ADMIN_TOKEN).
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
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
        Command::Resume { options } => Engine::resume(&cli.journal, out, options.options()).await?,
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
        Command::Status { watch, interval } => {
            if watch {
                cutover::status::watch(&cli.journal, &out, interval).await?;
            } else {
                cutover::status::status(&cli.journal, &out)?;
            }
            return Ok(0);
        }
        Command::Pause { reason } => {
            commands::control(&cli.journal, ControlCommand::Pause, reason, out).await?
        }
        Command::Promote { reason } => {
            commands::control(&cli.journal, ControlCommand::Promote, reason, out).await?
        }
        Command::Abort { reason } => {
            commands::control(&cli.journal, ControlCommand::Abort, reason, out).await?
        }
        Command::Emergency {
            to,
            reason,
            yes,
            gateways,
            plan,
            token_file,
        } => {
            let to_green = matches!(to, Colour::Green);
            // (admin URLs, token env, token file) of each fleet to switch.
            let fleets = match plan {
                Some(p) => Plan::load(&p)?
                    .schedule()
                    .stages
                    .into_iter()
                    .filter_map(|s| s.fleet)
                    .map(|f| (f.admin_urls, f.token_env, f.token_file))
                    .collect(),
                None => vec![(gateways, "GATEWAY_ADMIN_TOKEN".to_owned(), None)],
            };
            if fleets.iter().all(|(gateways, ..)| gateways.is_empty()) {
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
            for (gateways, token_env, plan_token_file) in fleets {
                let file = token_file.as_deref().or(plan_token_file.as_deref());
                let token = read_token(&token_env, file).map_err(EngineError::Fleet)?;
                target.fleets.push((gateways, token));
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
