//! `golive`: the command-line entry point. Parses arguments and hands each command to its
//! module under `cmd/`.

mod cmd;
mod demo;
mod report;
mod shell;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "golive",
    version,
    about = "Runs a go-live runbook: checklists, timeline, traffic ramp, rollback, comms, audit."
)]
struct Cli {
    /// Address of a running `golive run`'s API, for `status` and the operator commands.
    #[arg(long, env = "GOLIVE_SERVER", default_value = cmd::client::DEFAULT_SERVER, global = true)]
    server: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse, validate and lint a plan.
    Validate(cmd::validate::Args),
    /// Print the JSON Schema of the plan format (for editors' YAML completion).
    Schema(cmd::schema::Args),
    /// Print every scheduled item of a plan in order, with offsets and local times.
    Timeline(cmd::timeline::Args),
    /// Verify a run log's hash chain or export it for auditors.
    Audit(cmd::audit::Args),
    /// The seed go-live on this machine: real traffic, a ramp in about a minute, a report.
    Demo(cmd::demo::Args),
    /// Rehearse a plan on simulated time against a scenario; nothing is executed.
    Rehearse(cmd::rehearse::Args),
    /// Run a plan live, in the foreground; the same command resumes it after a crash.
    Run(cmd::run::Args),
    /// Show a running run: phase, next items, ramp, rules, open actions.
    Status(cmd::client::StatusArgs),
    #[command(flatten)]
    Act(cmd::client::ActionCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    adapters::probe::install_crypto_provider();
    let target = cmd::client::Target { server: cli.server };
    let result = match cli.command {
        Command::Validate(args) => cmd::validate::run(args),
        Command::Schema(args) => cmd::schema::run(args),
        Command::Timeline(args) => cmd::timeline::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Demo(args) => block_on(cmd::demo::run(args)),
        Command::Rehearse(args) => cmd::rehearse::run(args),
        Command::Run(args) => block_on(cmd::run::run(args)),
        Command::Status(args) => block_on(cmd::client::status(target, args)),
        Command::Act(command) => block_on(cmd::client::act(target, command)),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs an async command on a multi-threaded runtime (the shell blocks a worker while it
/// writes the log, which needs more than one).
fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    future: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
}
