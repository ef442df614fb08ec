//! `pave`: the command-line entry point. Thin: it parses arguments and calls the server,
//! the store or the offline tools; domain rules live in the library crates.

mod arenas;
mod assess;
mod client;
mod commands;
mod delivery;
mod demo;
mod flags;
mod output;
mod release;
mod rollout;
mod router;
mod scan;
mod secret;
mod serve;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Pave — an internal developer platform in one binary: service catalog, delivery events and
/// DORA metrics, audited and event-sourced, on embedded SQLite or PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "pave", version, about, long_about = None)]
#[command(after_help = "Start with `pave demo`, or `pave serve` and then `pave apply -f catalog/`.")]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How commands that talk to a server reach it.
#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// Base URL of the Pave server.
    #[arg(long, env = "PAVE_URL", default_value = "http://127.0.0.1:7700")]
    pub url: String,
    /// API token (`pave_…`); `pave serve` prints the first admin token on its first start.
    #[arg(long, env = "PAVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = output::Format::Table)]
    pub output: output::Format,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane: HTTP API, audit, metrics, and the delivery engine with its router.
    Serve(serve::ServeArgs),
    /// A DORA baseline from a git repository's history alone (no server needed).
    Assess(assess::AssessArgs),
    /// Start a throwaway platform: sample catalog, DORA, a real blue-green deployment; show around.
    Demo(demo::DemoArgs),
    /// Create, update (and with --prune, delete) catalog resources from YAML files.
    Apply(commands::ApplyArgs),
    /// List resources of a kind, or show one.
    Get(commands::GetArgs),
    /// Delete one resource.
    Delete(commands::DeleteArgs),
    /// Page through the event log.
    Events(commands::EventsArgs),
    /// Read the audit trail of mutating requests (admin).
    Audit(commands::AuditArgs),
    /// Manage API tokens (admin).
    #[command(subcommand)]
    Token(commands::TokenCommand),
    /// Feature flags: create, enable, disable, roll out, show, archive, stale; SDK tokens.
    #[command(subcommand)]
    Flags(flags::FlagsCommand),
    /// Publish and list releases: immutable, content-addressed artifacts of a service.
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// A service's secrets per environment: set (value from stdin), list, rm. Encrypted at
    /// rest, injected into replicas, never shown again.
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Report a deployment, incident or change from any CI/CD or incident tool.
    #[command(subcommand)]
    Event(delivery::EventCommand),
    /// DORA metrics with their performance levels, for any window, team or service.
    Dora(delivery::DoraArgs),
    /// What changed: deployments, incidents and flag changes in time order (around an incident).
    Timeline(delivery::TimelineArgs),
    /// Deploy a release to an environment (follows the rollout to its end).
    Deploy(rollout::DeployArgs),
    /// Watch and steer rollouts: status, list, approve, promote, abort, undo.
    #[command(subcommand)]
    Rollout(rollout::RolloutCommand),
    /// Read a service's replica logs in an environment.
    Logs(rollout::LogsArgs),
    /// Show which token and role the CLI is using.
    Whoami(commands::WhoamiArgs),
    /// Security gates for any CI: secrets and vulnerable dependencies (exit 1 when something is found).
    #[command(subcommand)]
    Scan(scan::ScanCommand),
    /// A CycloneDX 1.5 SBOM of the packages the lockfiles under PATH install.
    Sbom(scan::SbomArgs),
    /// Run the router on its own: the data plane that keeps serving while control planes come
    /// and go (`pave serve` starts one itself unless given --router-socket).
    Router(router::RouterArgs),
    /// Run the sample service (what the demo and tests deploy; configured by PORT and SAMPLE_*).
    #[command(hide = true)]
    Sample,
}

/// Output piped into a reader that stops early (`pave events | head`) ends the program
/// quietly, as it would end a C program by SIGPIPE (status 141), instead of a panic message:
/// Rust ignores SIGPIPE, so a write to a closed pipe is an error `println!` panics on.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> std::process::ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    if matches!(cli.command, Command::Sample) {
        return pave_sample::main();
    }
    match cli.command {
        Command::Scan(cmd) => return scan::run(cmd),
        Command::Sbom(args) => return scan::sbom(&args),
        // Before the runtime starts any thread: this may replace the process (see `arenas`).
        Command::Serve(_) => arenas::cap(),
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Router(args) => router::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Assess(args) => tokio::task::spawn_blocking(move || assess::run(args)).await?,
            Command::Apply(args) => commands::apply(args).await,
            Command::Get(args) => commands::get(args).await,
            Command::Delete(args) => commands::delete(args).await,
            Command::Events(args) => commands::events(args).await,
            Command::Audit(args) => commands::audit(args).await,
            Command::Token(cmd) => commands::token(cmd).await,
            Command::Whoami(args) => commands::whoami(args).await,
            Command::Event(cmd) => delivery::event(cmd).await,
            Command::Release(cmd) => release::run(cmd).await,
            Command::Secret(cmd) => secret::run(cmd).await,
            Command::Flags(cmd) => flags::run(cmd).await,
            Command::Dora(args) => delivery::dora(args).await,
            Command::Timeline(args) => delivery::timeline(args).await,
            Command::Deploy(args) => rollout::deploy(args).await,
            Command::Rollout(cmd) => rollout::rollout(cmd).await,
            Command::Logs(args) => rollout::logs(args).await,
            Command::Sample | Command::Scan(_) | Command::Sbom(_) => unreachable!("handled before the runtime starts"),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

// `serve` still reads the clock through this name; it is the model's one clock function.

/// Default data directory: `./.pave`.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from(".pave")
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    /// Every option and argument of every command says what it is for (a `--env` without help
    /// leaves a user guessing whether it names a Pave environment or a process variable).
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && !cmd.is_hide_set() {
                missing.push(format!("{path}: no about"));
            }
            for a in cmd.get_arguments() {
                if a.get_help().is_none() && a.get_long_help().is_none() && !a.is_hide_set() {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:#?}");
    }
}
