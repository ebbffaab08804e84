//! `golive validate PLAN`: parse, validate and lint; exit 0 when the plan is usable
//! (warnings allowed), 1 when it has errors.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Print a machine-readable result.
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output. Field names are part of the CLI's interface.
#[derive(Serialize)]
struct Report<'a> {
    file: &'a str,
    ok: bool,
    errors: usize,
    warnings: usize,
    diagnostics: &'a [plan::Diagnostic],
    summary: Option<plan::Summary>,
    /// Per environment, the worst case from breach to traffic off the new version.
    reaction: Vec<plan::reaction::Reaction>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = plan::load_file(&args.plan);
    let errors = loaded.errors();
    let summary = loaded.plan.as_ref().map(plan::Summary::of);
    let mut out = String::new();
    if args.json {
        let report = Report {
            file: &loaded.file,
            ok: errors == 0,
            errors,
            warnings: loaded.warnings(),
            diagnostics: &loaded.diagnostics,
            summary,
            reaction: loaded
                .plan
                .as_ref()
                .map(plan::reaction::of)
                .unwrap_or_default(),
        };
        out = serde_json::to_string_pretty(&report)?;
        out.push('\n');
    } else {
        write!(out, "{}", loaded.render())?;
        if errors == 0
            && let Some(plan) = &loaded.plan
        {
            let table = plan::reaction::render(&plan::reaction::of(plan));
            if !table.is_empty() {
                writeln!(out, "{table}")?;
            }
        }
        let verdict = match (errors, loaded.warnings()) {
            (0, 0) => format!("{}: the plan is valid.", loaded.file),
            (0, w) => format!(
                "{}: the plan is usable, with {w} warning{}.",
                loaded.file,
                plural(w)
            ),
            (e, w) => format!(
                "{}: the plan has {e} error{} and {w} warning{}; fix the errors before running it.",
                loaded.file,
                plural(e),
                plural(w)
            ),
        };
        match summary {
            Some(summary) => writeln!(out, "{verdict} {}", summary.sentence())?,
            None => writeln!(out, "{verdict}")?,
        }
    }
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        // A reader that stops early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
