//! `golive schema`: print the plan format's JSON Schema (for editors' YAML completion).

use std::io::Write as _;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    match std::io::stdout()
        .lock()
        .write_all(plan::schema::json_schema().as_bytes())
    {
        // A reader that stops early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}
