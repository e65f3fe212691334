//! `gateway`: serve, or check a config file.

use clap::{Parser, Subcommand, ValueEnum};
use gateway::config::Config;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Blue/green traffic gateway: splits each route's traffic between two
/// clusters by weight, changed at runtime through the admin API.
///
/// Examples:
///   gateway --config deploy/examples/gateway.yaml
///   gateway check --config deploy/examples/gateway.yaml
///   gateway check --resolve --config deploy/examples/gateway.yaml
///   GATEWAY_ADMIN_TOKEN=secret gateway --config gw.yaml --log-format json
#[derive(Parser)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    /// The gateway config file (YAML).
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// Start from the config's initial splits even if the state file is
    /// unreadable or corrupt (it is overwritten on the next change).
    #[arg(long)]
    reset_state: bool,
    /// Take over the listening sockets of the gateway running with the
    /// same upgrade_socket (it hands them over and drains). The running
    /// gateway starts this itself on SIGUSR2; by hand, start this, then
    /// send the old process SIGQUIT.
    #[arg(long)]
    upgrade: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the config and exit: 0 if valid, 2 with every error found
    /// (every unknown field, then every field that is wrong). Needs no DNS:
    /// endpoint names are checked for their form; --resolve also looks
    /// them up (a name that does not resolve at start does not stop the
    /// gateway: it waits unresolved while the other endpoints serve).
    Check {
        /// Also resolve every endpoint name (as the gateway would now).
        #[arg(long)]
        resolve: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions { shell: clap_complete::Shell },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// jemalloc: its per-thread caches serve the dozens of small and 4 KiB
/// allocations pingora makes per request without glibc's bin searches and
/// consolidation (tests/bench/RESULTS.md has the measurements).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read from this C string (`malloc_conf`, under the
/// crate's `_rjem_` prefix) at start-up:
/// - cache up to 128 KiB per thread (the default is 32 KiB) so the 64 KiB
///   body buffer pingora allocates for every upstream response is recycled,
///   not returned to the arena each time;
/// - give pages freed after a burst back to the system within about a
///   second, from a thread of jemalloc's own: by default they go back over
///   ten seconds and only while the program allocates, so a gateway left
///   holding idle connections after a burst of requests kept ~350 B per
///   connection of freed memory resident (tests/bench/RESULTS.md). Pages
///   reused under steady load are not freed, so requests cost no more.
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: JemallocConf =
    JemallocConf(c"tcache_max:131072,background_thread:true,dirty_decay_ms:1000".as_ptr());

#[repr(transparent)]
struct JemallocConf(*const std::ffi::c_char);
// SAFETY: points at an immutable static string.
unsafe impl Sync for JemallocConf {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Used by the docs tests: the real parser checks a command, nothing runs.
    if std::env::var_os("CUTOVER_PARSE_ONLY").is_some() {
        return ExitCode::SUCCESS;
    }
    init_logging(cli.log_format);
    let resolve = match cli.command {
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "gateway",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        Some(Command::Check { resolve }) => Some(resolve),
        None => None,
    };
    let Some(path) = cli.config else {
        eprintln!("error: --config FILE is required (for example deploy/examples/gateway.yaml)");
        return ExitCode::from(2);
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match resolve {
        Some(resolve) => check(&path, &config, resolve),
        None => match gateway::server::run(
            path,
            config,
            gateway::server::Start {
                reset_state: cli.reset_state,
                upgrade: cli.upgrade,
            },
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

/// `gateway check`: the config loaded; with `resolve`, its names too.
fn check(path: &Path, config: &Config, resolve: bool) -> ExitCode {
    // The listeners' certificates load and match their keys, as at start.
    let mut errors = gateway::tls::Certificates::load(&config.listeners, Default::default())
        .err()
        .unwrap_or_default();
    if resolve {
        errors.extend(config.unresolved_names());
    }
    if !errors.is_empty() {
        let errors = gateway::config::ConfigErrors {
            file: path.to_owned(),
            errors,
        };
        eprintln!("error: {errors}");
        return ExitCode::from(2);
    }
    let names = if resolve {
        "every endpoint name resolves"
    } else {
        "endpoint names not looked up (--resolve does)"
    };
    println!(
        "{}: ok ({} route(s); {names})",
        path.display(),
        config.routes.len()
    );
    ExitCode::SUCCESS
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
