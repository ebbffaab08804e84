//! `golive validate PLAN`: parse, validate and lint.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Print a machine-readable result.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.plan)?;
    match plan::from_yaml(&text) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("{}: {error}", args.plan.display());
            Ok(ExitCode::from(1))
        }
    }
}
