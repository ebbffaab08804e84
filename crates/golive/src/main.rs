//! `golive`: the command-line entry point. Parses arguments and hands each command to its
//! module under `cmd/`.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "golive", version, about = "Runs a go-live runbook: checklists, timeline, traffic ramp, rollback, comms, audit.")]
struct Cli {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => cmd::validate::run(args),
        Command::Schema(args) => cmd::schema::run(args),
        Command::Timeline(args) => cmd::timeline::run(args),
        Command::Audit(args) => cmd::audit::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
