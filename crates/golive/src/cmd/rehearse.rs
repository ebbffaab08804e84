//! `golive rehearse PLAN [--env NAME] [--scenario FILE] [--json] [--log FILE]`: runs a plan
//! on simulated time against a scenario and prints what would have happened. Nothing is
//! executed: no command, probe, weight change or message leaves this process.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use engine::rehearsal::{Scenario, rehearse};

#[derive(clap::Args)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Environment of the plan to rehearse (default: the scenario's, else the plan's first).
    #[arg(long)]
    pub env: Option<String>,
    /// Scenario file: metrics over time, outcomes of commands and probes, what people do.
    /// Without one, everything goes as planned.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Print the report as JSON (with the final state and every message).
    #[arg(long)]
    pub json: bool,
    /// Also write the run's log to this file, one JSON record per line.
    #[arg(long)]
    pub log: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = plan::load_file(&args.plan);
    if loaded.errors() > 0 || loaded.plan.is_none() {
        eprint!("{}", loaded.render());
        return Ok(ExitCode::from(1));
    }
    let Some(plan) = loaded.plan else {
        return Ok(ExitCode::from(1));
    };
    let (scenario, name) = match &args.scenario {
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read scenario {name}"))?;
            match Scenario::parse(&name, &text) {
                Ok(s) => (s, name),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
        None => (Scenario::default(), "as planned (no scenario)".to_string()),
    };
    let rehearsal = match rehearse(Arc::new(plan), &scenario, &name, args.env.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if let Some(path) = &args.log {
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        );
        for record in &rehearsal.log {
            serde_json::to_writer(&mut file, record)?;
            file.write_all(b"\n")?;
        }
        file.flush()?;
    }
    let text = if args.json {
        let mut json = serde_json::to_string_pretty(&rehearsal.report)?;
        json.push('\n');
        json
    } else {
        rehearsal.report.to_text()
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        // The reader stopped early (`| head`): nothing is wrong with the rehearsal.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(ExitCode::SUCCESS)
}
