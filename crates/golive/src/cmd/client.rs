//! The operator commands (`status`, `signoff`, `decide`, `stop-the-line`, …): clients of a
//! running `golive run`'s API. The run checks authority; these only carry the request.

use std::process::ExitCode;

use anyhow::Context;
use server::{Action, ActionAccepted, ActionRequest, ErrorBody, StatusView};

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7450";

/// Where a running `golive run` answers.
#[derive(Clone)]
pub struct Target {
    pub server: String,
}

#[derive(clap::Args)]
pub struct Who {
    /// The person acting (their id in the plan).
    #[arg(long = "as", env = "GOLIVE_AS")]
    pub person: String,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Subcommand)]
pub enum ActionCommand {
    /// Sign off a checklist item, success criterion or follow-up task.
    Signoff {
        item: String,
        #[command(flatten)]
        who: Who,
    },
    /// Waive a checklist item, a failed step or a stage's gates (`stage:25`), with a reason.
    Waive {
        target: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: Who,
    },
    /// Decide go or no-go at a gate.
    Decide {
        #[arg(value_parser = ["go", "no-go"])]
        decision: String,
        /// The gate step; default the gate that is open now.
        #[arg(long)]
        gate: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        who: Who,
    },
    /// Answer "ready" at a roll call; default the roll call that is open now.
    Ready {
        #[arg(long)]
        step: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// Pull a manual stop-the-line trigger.
    StopTheLine {
        #[arg(long)]
        trigger: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: Who,
    },
    /// Pause the ramp.
    Pause {
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: Who,
    },
    /// Resume a paused ramp.
    Resume {
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        who: Who,
    },
    /// Approve the next stage and end the current hold early (gates still apply).
    Promote {
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        who: Who,
    },
    /// Roll back now.
    Rollback {
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: Who,
    },
    /// Acknowledge a page (`page-3`) or a playbook task.
    Ack {
        id: String,
        #[command(flatten)]
        who: Who,
    },
    /// Settle a failed step or one whose outcome is unknown: done, failed or retry.
    Resolve {
        step: String,
        #[arg(value_parser = ["done", "failed", "retry"])]
        outcome: String,
        #[command(flatten)]
        who: Who,
    },
}

fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .no_proxy()
        .build()
        .context("building the HTTP client")
}

async fn get_status(target: &Target) -> anyhow::Result<StatusView> {
    let url = format!("{}/api/v1/status", target.server.trim_end_matches('/'));
    let response = client()?.get(&url).send().await.with_context(|| {
        format!(
            "no run answers at {} (is `golive run` running? --server)",
            target.server
        )
    })?;
    if !response.status().is_success() {
        anyhow::bail!("{url}: HTTP {}", response.status());
    }
    Ok(response.json().await?)
}

pub async fn status(target: Target, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let view = get_status(&target).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", render_status(&view));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn render_status(view: &StatusView) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — run {} (environment {})",
        view.plan, view.run_id, view.env
    );
    let _ = writeln!(
        out,
        "state: {}   phase: {}   now: {}",
        view.state,
        view.phase.as_deref().unwrap_or("—"),
        view.now
    );
    let _ = writeln!(
        out,
        "T0 planned {}{}",
        view.t0_planned,
        view.t0_actual
            .as_ref()
            .map(|t| format!(", actual {t}"))
            .unwrap_or_default()
    );
    let ramp = &view.ramp;
    let _ = writeln!(
        out,
        "ramp: stage {}/{}, {} % on the new version, {}{}{}",
        ramp.stage,
        ramp.stages,
        ramp.weight,
        ramp.state,
        ramp.hold_ends
            .as_ref()
            .map(|t| format!(", hold ends {t}"))
            .unwrap_or_default(),
        ramp.rollback_duration_ms
            .map(|ms| format!(", rolled back in {ms} ms"))
            .unwrap_or_default()
    );
    if !view.next.is_empty() {
        let _ = writeln!(out, "next:");
        for item in &view.next {
            let _ = writeln!(
                out,
                "  {:>12}  {:>9}  {}",
                countdown(item.in_seconds),
                item.offset,
                item.what
            );
        }
    }
    if !view.rules.is_empty() {
        let _ = writeln!(out, "rules:");
        for rule in &view.rules {
            let value = rule
                .value
                .map(|v| format!("{v:.3}"))
                .unwrap_or_else(|| "—".into());
            let _ = writeln!(out, "  {:<32} {:<14} {}", rule.id, rule.state, value);
        }
    }
    if !view.open_actions.is_empty() {
        let _ = writeln!(out, "open:");
        for action in &view.open_actions {
            let _ = writeln!(
                out,
                "  {:<28} {}{}",
                action.id,
                action.what,
                action
                    .due
                    .as_ref()
                    .map(|d| format!(" (due {d})"))
                    .unwrap_or_default()
            );
        }
    }
    for unknown in &view.outcome_unknown {
        let _ = writeln!(
            out,
            "OUTCOME UNKNOWN: {} — check by hand, then `golive resolve <step> done|failed|retry`",
            unknown.what
        );
    }
    out
}

fn countdown(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let text = if s >= 86_400 {
        format!("{}d {}h", s / 86_400, (s % 86_400) / 3600)
    } else if s >= 3600 {
        format!("{}h {}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    };
    if seconds < 0 {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

/// The open step of a kind, for commands whose step may be left out.
async fn open_step(target: &Target, kind: &str, what: &str) -> anyhow::Result<String> {
    let view = get_status(target).await?;
    let open: Vec<&str> = view
        .open_actions
        .iter()
        .filter(|a| a.kind == kind)
        .map(|a| a.id.as_str())
        .collect();
    match open.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => anyhow::bail!(
            "no {what} is open now; name one with --{}",
            if kind == "gate" { "gate" } else { "step" }
        ),
        many => anyhow::bail!("several {what}s are open ({}); name one", many.join(", ")),
    }
}

pub async fn act(target: Target, command: ActionCommand) -> anyhow::Result<ExitCode> {
    let (person, action) = match command {
        ActionCommand::Signoff { item, who } => (who.person, Action::SignOff { item }),
        ActionCommand::Waive {
            target,
            reason,
            who,
        } => (who.person, Action::Waive { target, reason }),
        ActionCommand::Decide {
            decision,
            gate,
            reason,
            who,
        } => {
            let gate = match gate {
                Some(gate) => gate,
                None => open_step(&target, "gate", "gate").await?,
            };
            (
                who.person,
                Action::Decide {
                    gate,
                    go: decision == "go",
                    reason,
                },
            )
        }
        ActionCommand::Ready { step, who } => {
            let step = match step {
                Some(step) => step,
                None => open_step(&target, "roll_call", "roll call").await?,
            };
            (who.person, Action::RollCall { step })
        }
        ActionCommand::StopTheLine {
            trigger,
            reason,
            who,
        } => (who.person, Action::StopTheLine { trigger, reason }),
        ActionCommand::Pause { reason, who } => (who.person, Action::Pause { reason }),
        ActionCommand::Resume { reason, who } => (who.person, Action::Resume { reason }),
        ActionCommand::Promote { reason, who } => (who.person, Action::Promote { reason }),
        ActionCommand::Rollback { reason, who } => (who.person, Action::Rollback { reason }),
        ActionCommand::Ack { id, who } => (who.person, Action::Ack { id }),
        ActionCommand::Resolve { step, outcome, who } => (
            who.person,
            Action::Resolve {
                target: step,
                outcome,
            },
        ),
    };
    let url = format!("{}/api/v1/actions", target.server.trim_end_matches('/'));
    let response = client()?
        .post(&url)
        .json(&ActionRequest {
            as_person: person,
            action,
        })
        .send()
        .await
        .with_context(|| {
            format!(
                "no run answers at {} (is `golive run` running? --server)",
                target.server
            )
        })?;
    let status = response.status();
    if status.is_success() {
        let accepted: ActionAccepted = response.json().await?;
        println!("accepted (event {}): {}", accepted.seq, accepted.message);
        Ok(ExitCode::SUCCESS)
    } else {
        let body: Result<ErrorBody, _> = response.json().await;
        let message = body
            .map(|b| b.error)
            .unwrap_or_else(|_| format!("HTTP {status}"));
        eprintln!("refused: {message}");
        Ok(ExitCode::from(1))
    }
}
