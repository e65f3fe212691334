//! `cutover`: the operator CLI (its commands and flags are in `cli.rs`).

use clap::{CommandFactory, Parser};
use cutover::cli::{Cli, Colour, Command, ControlFlags, GatewayFlags, NetworkCommand, PlanCommand};
use cutover::commands::{self, EmergencyTarget};
use cutover::engine::{Engine, EngineError};
use cutover::fleet::{read_token, Fleet, FleetError};
use cutover::journal::ControlCommand;
use cutover::outcome::{exit, Outcome};
use cutover::output::{Format, Output};
use cutover::plan::Plan;
use std::io::IsTerminal;
use std::process::ExitCode;

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

/// The exit code of an error (the table in `cutover --help`).
fn exit_code_of(e: &anyhow::Error) -> u8 {
    if let Some(e) = e.downcast_ref::<EngineError>() {
        return match e {
            EngineError::Refused(_) | EngineError::Fleet(FleetError::LockHeld { .. }) => {
                exit::REFUSED
            }
            EngineError::Fleet(FleetError::Setup(_)) | EngineError::Notify(_) => exit::BAD_INPUT,
            _ => exit::FAILED,
        };
    }
    if e.downcast_ref::<cutover::plan::PlanErrors>().is_some() {
        return exit::BAD_INPUT;
    }
    exit::FAILED
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    if cli.output == Format::Md && !matches!(cli.command, Command::Report { .. }) {
        eprintln!(
            "error: --output md is for `cutover report`; this command takes human, json or yaml"
        );
        return Ok(exit::BAD_INPUT);
    }
    let out = Output::new(cli.output);
    let machine = out.is_machine();
    let journal = cli.journal;
    let outcome: Outcome = match cli.command {
        Command::Run { plan, options } => {
            let loaded = Plan::load(&plan)?;
            Engine::run(loaded, &plan, &journal, out, options.options()).await?
        }
        Command::Plan {
            command: PlanCommand::Check { plan },
        } => {
            let loaded = Plan::load(&plan)?;
            return Ok(commands::plan_check::check(&loaded, &plan, &out).await);
        }
        Command::Resume { options, control } => match control.remote.plan {
            Some(p) => {
                let plan = Plan::load(&p)?;
                let reason = control.reason;
                commands::remote::control(&plan, &p, ControlCommand::Resume, reason).await?
            }
            None => Engine::resume(&journal, out, options.options(), control.reason).await?,
        },
        Command::Demo { break_green } => return cutover::demo::run(break_green, out).await,
        Command::Network {
            command: NetworkCommand::Plan(args),
        } => {
            return Ok(match cutover::network::plan(&args).await {
                cutover::network::Planned::InputError(e) => {
                    eprintln!("error: {e}");
                    exit::BAD_INPUT
                }
                cutover::network::Planned::Report(report, shape) => {
                    match cutover::network::az_script(&args, &report, &shape) {
                        Some(script) => print!("{script}"),
                        None if out.is_machine() && args.emit.is_none() => out.document(&report),
                        None => cutover::network::print_table(&report),
                    }
                    if args.emit.is_some() && !report.fits {
                        eprintln!("no commands emitted: the plan does not fit");
                    }
                    if report.fits {
                        exit::DONE
                    } else {
                        exit::FAILED
                    }
                }
            });
        }
        Command::Preflight(args) => {
            return Ok(match cutover::preflight::run(&args).await {
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::BAD_INPUT
                }
                Ok(report) => {
                    if out.is_machine() {
                        out.document(&report);
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
            timeout,
            remote,
        } => {
            let plan = remote.plan.as_deref().map(Plan::load).transpose()?;
            let source = match (&plan, &remote.plan) {
                (Some(plan), Some(path)) => cutover::status::Source::Fleet(plan, path),
                _ => cutover::status::Source::Journal(&journal),
            };
            let doc = if watch {
                cutover::status::watch(&source, &out, interval, timeout).await?
            } else {
                cutover::status::status(&source, &out).await?
            };
            return Ok(cutover::outcome::exit_code_of_state(
                doc["state"].as_str().unwrap_or("?"),
            ));
        }
        Command::Pause(flags) => control(&journal, ControlCommand::Pause, flags, out).await?,
        Command::Approve(flags) => control(&journal, ControlCommand::Approve, flags, out).await?,
        Command::Promote { full, control: c } => {
            let command = match full {
                true => ControlCommand::Promote,
                false => ControlCommand::PromoteStep,
            };
            control(&journal, command, c, out).await?
        }
        Command::Abort(flags) => control(&journal, ControlCommand::Abort, flags, out).await?,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "cutover",
                &mut std::io::stdout(),
            );
            return Ok(exit::DONE);
        }
        Command::Emergency {
            to,
            reason,
            yes,
            gateways,
        } => {
            let to_green = matches!(to, Colour::Green);
            let fleets = fleets(gateways).await?;
            if !yes && !confirm(if to_green { "green" } else { "blue" })? {
                eprintln!("not confirmed; nothing changed");
                return Ok(exit::REFUSED);
            }
            let target = EmergencyTarget { fleets };
            commands::emergency(target, to_green, &reason, &journal, &out).await?;
            return Ok(exit::DONE);
        }
        Command::Report { html } => {
            return Ok(commands::report(
                &journal,
                html.as_deref(),
                cli.output,
                &out,
            )?);
        }
        Command::Drain {
            color,
            deadline,
            reason,
            gateways,
        } => {
            let fleets = fleets(gateways).await?;
            let color = if matches!(color, Colour::Green) {
                "green"
            } else {
                "blue"
            };
            let mut out = out;
            return Ok(
                commands::drain(&fleets, color, deadline, reason, &journal, &mut out).await?,
            );
        }
    };
    if let Outcome::Signalled(message) = &outcome {
        if !machine {
            eprintln!("{message}");
        }
    }
    Ok(outcome.exit_code())
}

/// The gateways a command acts on: every stage's fleet of `--plan`, or the
/// `--gateway` URLs with the token from the environment or `--token-file`.
async fn fleets(flags: GatewayFlags) -> anyhow::Result<Vec<Fleet>> {
    let GatewayFlags {
        gateways,
        plan,
        token_file,
    } = flags;
    let Some(plan) = plan else {
        if gateways.is_empty() {
            return Err(EngineError::Fleet(FleetError::Setup(
                "--gateway URL (repeatable) or --plan FILE: which gateways".into(),
            ))
            .into());
        }
        let token =
            read_token("GATEWAY_ADMIN_TOKEN", token_file.as_deref()).map_err(EngineError::Fleet)?;
        return Ok(vec![Fleet::new(gateways, token)]);
    };
    let mut fleets = Vec::new();
    for mut fleet in Plan::load(&plan)?
        .schedule()
        .stages
        .into_iter()
        .filter_map(|s| s.fleet)
    {
        if token_file.is_some() {
            fleet.token_file = token_file.clone();
        }
        fleets.push(Fleet::from_plan(&fleet).await.map_err(EngineError::Fleet)?);
    }
    Ok(fleets)
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
