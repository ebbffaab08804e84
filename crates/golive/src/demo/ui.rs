//! What the demo shows a person: progress bars and live SLIs while it runs, the notable
//! decisions as they happen, and a report at the end.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use engine::state::{RampStatus, RunState};
use engine::{Decision, Record, RecordBody};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;
use plan::Plan;
use serde::Serialize;

use super::Observed;
use super::load::LoadCounters;
use crate::shell::Ending;

/// The window the live SLI line shows.
const LIVE_WINDOW: Duration = Duration::from_secs(2);

pub struct Ui {
    plan: Arc<Plan>,
    tty: bool,
    multi: MultiProgress,
    header: ProgressBar,
    ramp: ProgressBar,
    slis: ProgressBar,
    users: ProgressBar,
    started: std::time::Instant,
}

fn line(multi: &MultiProgress, template: &str) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(100));
    // The templates are fixed strings; a bad one is a bug caught the first time it runs.
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid progress template")
            .progress_chars("█▓░"),
    );
    bar
}

impl Ui {
    pub fn new(plan: Arc<Plan>, _scale: f64) -> Ui {
        let tty = std::io::stdout().is_terminal();
        let multi = MultiProgress::with_draw_target(if tty {
            ProgressDrawTarget::stdout_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        });
        let header = line(&multi, "{msg}");
        let ramp = line(&multi, "  ramp  [{bar:40}] {pos:>3} %  {msg}");
        let slis = line(&multi, "  {msg}");
        let users = line(&multi, "  {msg}");
        Ui {
            plan,
            tty,
            multi,
            header,
            ramp,
            slis,
            users,
            started: std::time::Instant::now(),
        }
    }

    fn t0(&self) -> Timestamp {
        self.plan.t0.value.0.timestamp()
    }

    fn say(&self, text: &str) {
        if self.tty {
            // Printing above the bars keeps them in place; it fails only when hidden.
            let _ = self.multi.println(text);
        } else {
            println!("{text}");
        }
    }

    pub fn start(
        &self,
        router_url: &str,
        store: &Path,
        scale: f64,
        fault: bool,
        window: plan::Dur,
    ) {
        self.say(&format!(
            "golive demo — {} (environment local), clock ×{scale:.0}: one real second is {} of plan time",
            self.plan.meta.name.value,
            plan::Dur((scale * 1000.0) as u64)
        ));
        self.say(&format!(
            "  real traffic: simulated users → built-in router {router_url} → stable and canary services on loopback"
        ));
        self.say(&format!("  run log: {}", store.display()));
        self.say(&format!(
            "  SLIs from the router's own telemetry over the last 2 real seconds ({window} of plan time)"
        ));
        if fault {
            self.say("  --fault: the new version will start failing at the 25 % stage");
        }
        self.say("  commands that need infrastructure this machine lacks are rehearsed, never executed\n");
    }

    pub fn on_record(&self, record: &Record) {
        if let Some(text) = headline(record) {
            let offset = super::offset_of(record.at, self.t0());
            let local = record
                .at
                .to_zoned_datetime(self.plan.t0.value.0.time_zone().clone());
            self.say(&format!(
                "{:>10}  {}  {text}",
                offset,
                local.strftime("%a %H:%M")
            ));
        }
    }

    pub fn refresh(
        &self,
        state: &RunState,
        now: Timestamp,
        telemetry: &proxy::Telemetry,
        load: &LoadCounters,
    ) {
        let offset = super::offset_of(now, state.t0_actual.unwrap_or(self.t0()));
        let local = now.to_zoned_datetime(self.plan.t0.value.0.time_zone().clone());
        self.header.set_message(format!(
            "plan time {} ({offset})  phase: {}  run: {}  real {:.0}s",
            local.strftime("%a %b %d %H:%M %Z"),
            state.phase.as_deref().unwrap_or("—"),
            state.status.as_str(),
            self.started.elapsed().as_secs_f64()
        ));
        let stages = self.plan.ramp.as_ref().map(|r| r.stages.len()).unwrap_or(0);
        self.ramp.set_position(u64::from(state.ramp.weight));
        let ramp_state = match (&state.ramp.paused, state.ramp.status) {
            (Some(pause), _) => format!("PAUSED: {}", pause.reason),
            (None, RampStatus::Holding) => format!(
                "stage {}/{stages}, holding until {}",
                state.ramp.stage.map(|s| s + 1).unwrap_or(0),
                state
                    .ramp
                    .hold_until
                    .map(|t| super::offset_of(t, state.t0_actual.unwrap_or(self.t0())))
                    .unwrap_or_default()
            ),
            (None, status) => format!("{status:?}").to_lowercase(),
        };
        self.ramp.set_message(ramp_state);
        let version = |name: &str| match telemetry.window(name, LIVE_WINDOW) {
            Some(w) if w.requests > 0 => format!(
                "{name}: {:>5.0} req/s  {:>5.2} % errors  p95 {:>6.1} ms",
                w.requests as f64 / w.covered.as_secs_f64().max(1.0),
                w.error_rate_percent.unwrap_or(0.0),
                w.p95_ms.unwrap_or(0.0)
            ),
            _ => format!("{name}: no traffic"),
        };
        self.slis
            .set_message(format!("{}   |   {}", version("stable"), version("canary")));
        let requests = load.requests.load(Ordering::Relaxed);
        self.users.set_message(format!(
            "users: {requests} requests, {} answered 5xx, {} without answer, {} served by the new version",
            load.server_errors.load(Ordering::Relaxed),
            load.failed.load(Ordering::Relaxed),
            load.served_by_canary.load(Ordering::Relaxed)
        ));
    }

    pub fn finish(&self) {
        for bar in [&self.header, &self.ramp, &self.slis, &self.users] {
            bar.finish_and_clear();
        }
    }
}

/// One line for the records a person watching wants to see; none for the rest.
pub fn headline(record: &Record) -> Option<String> {
    let RecordBody::Decision(decision) = &record.body else {
        return None;
    };
    Some(match decision {
        Decision::PhaseStarted { title, .. } => format!("▶ phase: {title}"),
        Decision::ChecklistComplete { checklist } => format!("✓ checklist `{checklist}` complete"),
        Decision::StepDone { step, outcome } => format!("✓ step `{step}`: {outcome}"),
        Decision::StepFailed {
            step,
            reason,
            consequence,
        } => format!("✗ step `{step}` failed ({reason}) → {consequence}"),
        Decision::StepWaived { step, reason } => format!("~ step `{step}` waived: {reason}"),
        Decision::ChecklistItemWaived { item, reason, .. } => {
            format!("~ item `{item}` waived: {reason}")
        }
        Decision::RollCallStarted { roles, .. } => format!("? roll call: {}", roles.join(", ")),
        Decision::FreezeStarted { freeze, .. } => format!("❄ freeze: {freeze}"),
        Decision::Go {
            gate, t0_actual, ..
        } => match t0_actual {
            Some(t0) => format!("GO at `{gate}` — T0 is {t0:.0}"),
            None => format!("GO at `{gate}`"),
        },
        Decision::NoGo { gate, reason } => format!("NO-GO at `{gate}`: {reason}"),
        Decision::StageEntered { stage, weight, .. } => format!(
            "⇢ stage {}: {weight} % of users on the new version",
            stage + 1
        ),
        Decision::StageGates {
            weight,
            verdict,
            judgements,
            ..
        } => {
            let open: Vec<String> = judgements
                .iter()
                .filter(|j| j.verdict != engine::Verdict::Pass)
                .map(|j| {
                    if j.unmeasurable {
                        format!("{} (not measured here)", j.what)
                    } else {
                        format!("{} ({})", j.what, j.detail)
                    }
                })
                .collect();
            if open.is_empty() {
                format!("  gates at {weight} %: {verdict:?}")
            } else if *verdict == engine::Verdict::Pass {
                format!("  gates at {weight} %: Pass, as waived")
            } else {
                format!("  gates at {weight} %: {verdict:?}: {}", open.join("; "))
            }
        }
        Decision::StageGatesWaived { weight, reason, .. } => {
            format!("~ gates at {weight} % waived: {reason}")
        }
        Decision::RampPaused { reason } => format!("‖ ramp paused: {reason}"),
        Decision::RampResumed { reason } => format!("▶ ramp resumed: {reason}"),
        Decision::RampCompleted { weight } => format!("✓ ramp complete at {weight} %"),
        Decision::RuleFiring { rule, value, .. } => {
            format!(
                "⚠ rule `{rule}` firing{}",
                value
                    .map(|v| format!(" (value {v:.2})"))
                    .unwrap_or_default()
            )
        }
        Decision::TriggerPulled {
            trigger, reason, ..
        } => format!("■ stop the line: `{trigger}`: {reason}"),
        Decision::RollbackStarted { cause, .. } => format!("⟲ ROLLBACK started by {cause}"),
        Decision::RollbackConfirmed {
            duration_ms,
            budget_ms,
            ..
        } => format!(
            "⟲ rollback confirmed by the router after {} of plan time (budget {})",
            plan::Dur(*duration_ms),
            plan::Dur(*budget_ms)
        ),
        Decision::PlaybookStarted { playbook, .. } => format!("☎ playbook `{playbook}` started"),
        Decision::SuccessEvaluated { verdict, .. } => format!("★ success criteria: {verdict:?}"),
        Decision::RunEnded { status, reason } => format!("run ended: {status} — {reason}"),
        _ => return None,
    })
}

/// The end-of-demo report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub outcome: String,
    pub fault: bool,
    pub clock_scale: f64,
    pub timeline: Vec<String>,
    pub weights: Vec<String>,
    pub rules_fired: Vec<String>,
    pub messages_sent: u64,
    pub pages_sent: u64,
    pub steps_executed: u64,
    pub steps_rehearsed: u64,
    pub requests: u64,
    pub answered_5xx: u64,
    pub without_answer: u64,
    pub served_by_new_version: u64,
    pub rollback_plan_ms: Option<u64>,
    pub rollback_budget_ms: Option<u64>,
    pub rollback_real_ms_from_decision: Option<f64>,
    pub rollback_real_ms_from_fault: Option<f64>,
    /// User requests the new version served after the router confirmed the rollback
    /// (requests already in flight at that moment).
    pub new_version_requests_after_rollback: Option<u64>,
    pub success: Option<String>,
    pub store: String,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        plan: &Plan,
        state: &RunState,
        seen: &Observed,
        load: &LoadCounters,
        scale: f64,
        store: &Path,
        fault: bool,
        ending: &Ending,
    ) -> Report {
        let t0 = state.t0_actual.unwrap_or(plan.t0.value.0.timestamp());
        let ms_between = |a: Option<std::time::Instant>, b: Option<std::time::Instant>| match (a, b)
        {
            (Some(a), Some(b)) if b >= a => Some(b.duration_since(a).as_secs_f64() * 1000.0),
            _ => None,
        };
        let outcome = if state.rollback.is_some() {
            "rolled back".to_owned()
        } else if seen.reached_full {
            "reached 100 %".to_owned()
        } else {
            match ending {
                Ending::Finished { status } => status.clone(),
                Ending::Stopped => format!("stopped at {} %", state.ramp.weight),
            }
        };
        Report {
            outcome,
            fault,
            clock_scale: scale,
            timeline: seen
                .timeline
                .iter()
                .map(|(at, text)| format!("{:>10}  {text}", super::offset_of(*at, t0)))
                .collect(),
            weights: seen
                .weights
                .iter()
                .map(|(at, w)| format!("{} → {w} %", super::offset_of(*at, t0)))
                .collect(),
            rules_fired: seen
                .rules_fired
                .iter()
                .map(|(at, rule, value)| {
                    format!(
                        "{} {rule}{}",
                        super::offset_of(*at, t0),
                        value.map(|v| format!(" ({v:.2})")).unwrap_or_default()
                    )
                })
                .collect(),
            messages_sent: seen.messages,
            pages_sent: seen.pages,
            steps_executed: seen.executed,
            steps_rehearsed: seen.rehearsed,
            requests: load.requests.load(Ordering::Relaxed),
            answered_5xx: load.server_errors.load(Ordering::Relaxed),
            without_answer: load.failed.load(Ordering::Relaxed),
            served_by_new_version: load.served_by_canary.load(Ordering::Relaxed),
            rollback_plan_ms: seen.rollback_plan_ms,
            rollback_budget_ms: seen.rollback_budget_ms,
            rollback_real_ms_from_decision: ms_between(
                seen.rollback_decided_real,
                seen.rollback_confirmed_real,
            ),
            rollback_real_ms_from_fault: ms_between(
                seen.fault_injected_real,
                seen.rollback_confirmed_real,
            ),
            new_version_requests_after_rollback: seen.canary_served_after_rollback,
            success: seen.success_verdict.clone(),
            store: store.display().to_string(),
        }
    }

    /// Whether the demo showed what it set out to: a clean ramp, or a rollback in budget.
    pub fn outcome_ok(&self, fault: bool) -> bool {
        if fault {
            self.rollback_plan_ms
                .zip(self.rollback_budget_ms)
                .is_some_and(|(took, budget)| took <= budget)
        } else {
            self.outcome == "reached 100 %"
        }
    }

    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "\n══ golive demo report ══");
        let _ = writeln!(out, "outcome: {}", self.outcome);
        let _ = writeln!(out, "\ntimeline (plan time, offsets from T0):");
        for entry in &self.timeline {
            let _ = writeln!(out, "  {entry}");
        }
        let _ = writeln!(
            out,
            "\nnew version's share of traffic: {}",
            self.weights.join(", ")
        );
        if !self.rules_fired.is_empty() {
            let _ = writeln!(out, "rules fired: {}", self.rules_fired.join("; "));
        }
        let _ = writeln!(
            out,
            "steps: {} executed, {} rehearsed (not executed: they need infrastructure this machine lacks)",
            self.steps_executed, self.steps_rehearsed
        );
        let _ = writeln!(
            out,
            "messages: {} sent (to the console and the log), {} pages",
            self.messages_sent, self.pages_sent
        );
        let _ = writeln!(
            out,
            "users: {} requests, {} answered 5xx, {} without answer, {} served by the new version",
            self.requests, self.answered_5xx, self.without_answer, self.served_by_new_version
        );
        if let (Some(took), Some(budget)) = (self.rollback_plan_ms, self.rollback_budget_ms) {
            let _ = writeln!(
                out,
                "rollback: {} of plan time from trigger to router confirmation (budget {}, {})",
                plan::Dur(took),
                plan::Dur(budget),
                if took <= budget {
                    "within budget"
                } else {
                    "OVER BUDGET"
                }
            );
            if let Some(ms) = self.rollback_real_ms_from_fault {
                let _ = writeln!(
                    out,
                    "          {ms:.0} ms of real time from the fault to traffic off the new version"
                );
            }
            if let Some(after) = self.new_version_requests_after_rollback {
                let _ = writeln!(
                    out,
                    "          {after} user request(s) reached the new version after the confirmation (in flight before it)"
                );
            }
            if let Some(ms) = self.rollback_real_ms_from_decision {
                let _ = writeln!(
                    out,
                    "          {ms:.1} ms of real time from the rollback decision to the router's confirmation"
                );
            }
        }
        if let Some(success) = &self.success {
            let _ = writeln!(out, "success criteria at T+24:00: {success}");
        }
        let _ = writeln!(
            out,
            "clock: ×{:.0} (plan time runs that much faster than real time)",
            self.clock_scale
        );
        out
    }
}
