//! `golive audit verify|export`: check a run log's hash chain, or write it out for auditors.
//!
//! Exit codes: 0 every chain checked is whole; 1 a chain is broken (the message names the
//! first bad event); 2 the store could not be read at all.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use store::{EventStore, SqliteStore, VerifyError};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Check that no event was changed, removed, inserted or reordered.
    Verify(VerifyArgs),
    /// Write the events as JSON lines, one event per line with its hash.
    Export(ExportArgs),
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The store file (SQLite).
    #[arg(long, value_name = "PATH")]
    pub store: PathBuf,
    /// Only this run; default every run in the store.
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The store file (SQLite).
    #[arg(long, value_name = "PATH")]
    pub store: PathBuf,
    /// Only this run; default every run in the store, oldest first.
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

const BROKEN: u8 = 1;
const UNREADABLE: u8 = 2;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let result = match args.command {
        AuditCommand::Verify(args) => verify(args),
        AuditCommand::Export(args) => export(args),
    };
    // Errors reading the store get their own exit code, apart from a broken chain.
    Ok(result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::from(UNREADABLE)
    }))
}

fn runs_to_check(store: &SqliteStore, run: Option<String>) -> anyhow::Result<Vec<String>> {
    match run {
        Some(id) => {
            if store.run(&id)?.is_none() {
                let known: Vec<String> = store.list_runs()?.into_iter().map(|r| r.id).collect();
                anyhow::bail!(
                    "no run `{id}` in the store; runs: {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
            }
            Ok(vec![id])
        }
        None => Ok(store.list_runs()?.into_iter().map(|r| r.id).collect()),
    }
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let store = SqliteStore::open_read_only(&args.store)?;
    let runs = runs_to_check(&store, args.run)?;
    if runs.is_empty() {
        println!("{}: no runs", args.store.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut broken = false;
    for run in runs {
        match store.verify(&run) {
            Ok(report) => println!(
                "run {run}: {} events, head {}: ok",
                report.events, report.head_hash
            ),
            Err(VerifyError::Broken(chain)) => {
                eprintln!("run {run}: {chain}");
                broken = true;
            }
            Err(VerifyError::Store(error)) => return Err(error.into()),
        }
    }
    Ok(if broken {
        ExitCode::from(BROKEN)
    } else {
        ExitCode::SUCCESS
    })
}

fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = SqliteStore::open_read_only(&args.store)?;
    let runs = runs_to_check(&store, args.run)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut events = 0;
    for run in &runs {
        events += store.export(run, &mut out)?;
    }
    out.flush()?;
    if let Some(path) = &args.output {
        eprintln!(
            "{}: {events} events of {} run(s)",
            path.display(),
            runs.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
