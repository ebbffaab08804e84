//! `golive timeline PLAN`: every scheduled item of a plan in order, with its offset from T0
//! and its time in the plan's zone.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use plan::schedule::{self, Cadences};
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Mark the steps this environment only rehearses.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// List every occurrence of each cadence instead of one line per cadence.
    #[arg(long)]
    pub all: bool,
    /// Print a machine-readable result.
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output. Field names are part of the CLI's interface.
#[derive(Serialize)]
struct Report<'a> {
    file: &'a str,
    t0: String,
    timezone: String,
    env: Option<&'a str>,
    items: Vec<Entry>,
}

#[derive(Serialize)]
struct Entry {
    /// RFC 9557 time with offset and zone.
    time: String,
    /// The same time for people: "Saturday, August 23, 2025 at 2:00 AM EDT".
    local: String,
    #[serde(flatten)]
    item: schedule::Item,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = plan::load_file(&args.plan);
    let Some(plan) = loaded.usable() else {
        eprint!("{}", loaded.render());
        eprintln!(
            "{}: the plan has errors; fix them first (see `golive validate`).",
            loaded.file
        );
        return Ok(ExitCode::from(1));
    };
    let env = match &args.env {
        None => None,
        Some(name) => match plan.environments.iter().find(|e| e.id.value == *name) {
            Some(env) => Some(&env.value),
            None => {
                let known: Vec<&str> = plan.environments.iter().map(|e| e.id.as_str()).collect();
                eprintln!(
                    "error: the plan has no environment `{name}`; it has: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
                return Ok(ExitCode::from(2));
            }
        },
    };
    let cadences = if args.all {
        Cadences::List
    } else {
        Cadences::Summary
    };
    let items = schedule::items(plan, env, cadences);
    let mut out = String::new();
    if args.json {
        let entries = items
            .into_iter()
            .map(|item| {
                let (at, tz) = schedule::resolve(plan, item.at);
                Entry {
                    time: at.to_zoned_datetime(tz.clone()).to_string(),
                    local: plan::templates::format_time(at, &tz),
                    item,
                }
            })
            .collect();
        let report = Report {
            file: &loaded.file,
            t0: plan.t0.0.to_string(),
            timezone: plan
                .t0
                .0
                .time_zone()
                .iana_name()
                .unwrap_or("UTC")
                .to_string(),
            env: args.env.as_deref(),
            items: entries,
        };
        out = serde_json::to_string_pretty(&report)?;
        out.push('\n');
        print_all(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{} — T0 {}",
        plan.meta.name.value,
        plan::templates::format_time(plan.t0.0.timestamp(), plan.t0.0.time_zone())
    )?;
    if let Some(name) = &args.env {
        writeln!(out, "environment: {name}")?;
    }
    for item in &items {
        let (at, tz) = schedule::resolve(plan, item.at);
        let local = at
            .to_zoned_datetime(tz)
            .strftime("%a %b %e %Y %l:%M %p %Z")
            .to_string();
        let mut detail = item.detail.clone();
        if item.rehearsed {
            detail = if detail.is_empty() {
                "rehearsed".into()
            } else {
                format!("{detail}; rehearsed")
            };
        }
        let kind = kind_label(item.kind);
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!("  ({detail})")
        };
        writeln!(
            out,
            "{:<11} {local}  {kind:<13} {}{detail}",
            item.at.to_string(),
            item.title
        )?;
    }
    print_all(&out)?;
    if loaded.warnings() > 0 {
        eprintln!(
            "{}: {} warnings; see `golive validate`.",
            loaded.file,
            loaded.warnings()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints to stdout; a reader that stops early (`| head`) is not an error.
fn print_all(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn kind_label(kind: schedule::ItemKind) -> &'static str {
    use schedule::ItemKind::*;
    match kind {
        ChecklistDue => "checklist due",
        WindowStart | WindowEnd => "window",
        PhaseStart | PhaseEnd => "phase",
        Step => "step",
        RampStage => "ramp",
        Message => "message",
        Cadence => "cadence",
        Success => "success",
        FollowUp => "follow-up",
    }
}
