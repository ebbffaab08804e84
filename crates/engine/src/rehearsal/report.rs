//! What a rehearsal tells a person (and, as JSON, a machine): the timeline and why,
//! rules that fired, weights over time, messages, the rollback and how long it took.

use std::collections::BTreeMap;
use std::fmt::Write;

use jiff::Timestamp;
use plan::Plan;
use serde::Serialize;

use super::scenario::Scenario;
use crate::effect::Effect;
use crate::input::Input;
use crate::record::{Actor, Decision, Judgement, RecordBody, Verdict};
use crate::state::{RunState, RunStatus, StepStatus};
use crate::{Engine, Record};

pub const NOT_EXECUTED: &str = "This was a rehearsal: no command or probe was executed, no weight was changed and no message was sent. Outcomes come from the scenario (default: success, shown as \"rehearsed\").";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub plan: String,
    pub scenario: String,
    pub description: Option<String>,
    pub env: String,
    pub note: String,
    pub started_at: Timestamp,
    pub stopped_at: Timestamp,
    pub t0_planned: Timestamp,
    pub t0_actual: Option<Timestamp>,
    /// `completed`, `rolled_back`, `aborted`, or `running` when the horizon came first.
    pub outcome: String,
    pub reason: Option<String>,
    pub phases: Vec<PhaseProgress>,
    pub stages: Vec<StageProgress>,
    pub timeline: Vec<Entry>,
    pub rules_fired: Vec<RuleFired>,
    pub weights: Vec<WeightChange>,
    pub messages: Vec<Message>,
    pub pages: Vec<PageEntry>,
    pub rollback: Option<RollbackReport>,
    pub success: Option<SuccessReport>,
    pub refused: Vec<Refusal>,
    /// SLIs the scenario gave no baseline for, and the healthy value used.
    pub derived_baselines: Vec<String>,
    pub counts: Counts,
    pub final_state: RunState,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseProgress {
    pub id: String,
    pub title: String,
    pub steps: usize,
    pub done: usize,
    pub rehearsed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub open: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageProgress {
    pub weight: u8,
    pub entered: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub at: Timestamp,
    /// Offset from T0 (the actual one once decided).
    pub t: String,
    pub actor: String,
    pub kind: String,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleFired {
    pub t: String,
    pub rule: String,
    pub severity: String,
    pub value: Option<f64>,
    /// The unit of the rule's SLI (`%`, `ms`, empty for plain numbers).
    pub unit: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightChange {
    pub t: String,
    pub weights: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub t: String,
    pub audience: String,
    pub channels: Vec<String>,
    pub template: Option<String>,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageEntry {
    pub t: String,
    pub page: String,
    pub role: String,
    pub person: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackReport {
    pub cause: String,
    pub reason: String,
    pub triggered: String,
    pub confirmed: Option<String>,
    pub duration_ms: Option<u64>,
    pub budget_ms: u64,
    pub within_budget: Option<bool>,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuccessReport {
    pub verdict: Verdict,
    pub judgements: Vec<Judgement>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    pub t: String,
    pub actor: String,
    pub input: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub records: usize,
    pub inputs: usize,
    pub refused: usize,
    pub decisions: usize,
    pub effects: usize,
    pub commands_not_executed: usize,
    pub probes_not_executed: usize,
    pub metric_queries: usize,
    pub messages: usize,
    pub pages: usize,
}

/// `T-2:00:00`, `T+4:22:15`, `T+3d 04:00:00`.
pub fn offset_text(t0: Timestamp, at: Timestamp) -> String {
    let ms = at.as_millisecond() - t0.as_millisecond();
    let sign = if ms < 0 { '-' } else { '+' };
    let abs = ms.unsigned_abs();
    let total = abs / 1000;
    let (d, h, m, s) = (
        total / 86_400,
        (total / 3600) % 24,
        (total / 60) % 60,
        total % 60,
    );
    let fraction = match abs % 1000 {
        0 => String::new(),
        f if f % 100 == 0 => format!(".{}", f / 100),
        f => format!(".{f:03}"),
    };
    if d > 0 {
        format!("T{sign}{d}d {h:02}:{m:02}:{s:02}{fraction}")
    } else {
        format!("T{sign}{h}:{m:02}:{s:02}{fraction}")
    }
}

pub fn actor_text(actor: &Actor) -> String {
    match actor {
        Actor::Person {
            person,
            role: Some(role),
        } => format!("{person} ({role})"),
        Actor::Person { person, role: None } => person.clone(),
        Actor::Rule { rule } => format!("rule {rule}"),
        Actor::Trigger {
            trigger,
            person: Some(p),
        } => format!("trigger {trigger} ({p})"),
        Actor::Trigger {
            trigger,
            person: None,
        } => format!("trigger {trigger}"),
        Actor::Step { step } => format!("step {step}"),
        Actor::Schedule => "schedule".to_string(),
        Actor::Router => "router".to_string(),
        Actor::MetricSource => "metrics".to_string(),
        Actor::Alertmanager => "alertmanager".to_string(),
        Actor::Executor => "executor".to_string(),
        Actor::System => "golive".to_string(),
    }
}

fn value_text(v: Option<f64>) -> String {
    v.map(|v| format!("{v}"))
        .unwrap_or_else(|| "no value".to_string())
}

fn ms_text(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

fn judgements_text(js: &[Judgement]) -> String {
    js.iter()
        .map(|j| format!("{} → {:?} ({})", j.what, j.verdict, j.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A sentence for a decision; none for bookkeeping a person need not read.
pub fn decision_text(d: &Decision) -> Option<String> {
    Some(match d {
        Decision::RunStarted { env, .. } => format!("run started in environment `{env}`"),
        Decision::RuleInactive { rule, reason } => {
            format!("rule {rule} is inactive here: {reason}")
        }
        Decision::Note { text } => text.clone(),
        Decision::PhaseStarted { title, .. } => format!("phase: {title}"),
        Decision::ChecklistItemDone { checklist, item } => format!("{checklist}: {item} done"),
        Decision::ChecklistItemFailed {
            checklist,
            item,
            reason,
        } => format!("{checklist}: {item} FAILED: {reason}"),
        Decision::ChecklistItemWaived {
            checklist,
            item,
            reason,
        } => format!("{checklist}: {item} waived: {reason}"),
        Decision::ChecklistComplete { checklist } => format!("checklist {checklist} complete"),
        Decision::ChecklistOverdue { checklist, missing } => format!(
            "checklist {checklist} overdue; open: {}",
            missing.join(", ")
        ),
        Decision::StepStarted { step, title, kind } => format!("step {step} ({kind}): {title}"),
        Decision::StepDone { step, outcome } => format!("step {step}: {outcome}"),
        Decision::StepFailed {
            step,
            reason,
            consequence,
        } => format!("step {step} FAILED: {reason} → {consequence}"),
        Decision::StepOutcomeUnknown { step } => {
            format!("step {step}: outcome unknown, waits for a person")
        }
        Decision::StepSkipped { step, reason } => format!("step {step} skipped: {reason}"),
        Decision::StepWaived { step, reason } => format!("step {step} waived: {reason}"),
        Decision::RollCallStarted { step, roles } => {
            format!("roll call {step}: {}", roles.join(", "))
        }
        Decision::RollCallAnswered { role, person, .. } => format!("{person} ({role}): ready"),
        Decision::FreezeStarted { freeze, .. } => format!("{freeze} freeze in force"),
        Decision::GateOpened {
            gate, authority, ..
        } => format!("gate {gate} open for a decision ({authority})"),
        Decision::GateDue { gate } => format!("gate {gate}: decision due now"),
        Decision::Go {
            gate,
            reason,
            late_by_ms,
            ..
        } => match late_by_ms {
            Some(late) => format!(
                "GO at {gate} ({reason}); T0 actual is now, {} the planned T0",
                if *late == 0 {
                    "exactly at".to_string()
                } else if *late > 0 {
                    format!("{} after", ms_text(*late as u64))
                } else {
                    format!("{} before", ms_text(late.unsigned_abs()))
                }
            ),
            None => format!("go at {gate} ({reason})"),
        },
        Decision::NoGo { gate, reason } => format!("NO-GO at {gate}: {reason}"),
        Decision::RunEnded { status, reason } => format!("run ended ({status}): {reason}"),
        Decision::StageAwaitingApproval { weight, role, .. } => {
            format!("stage {weight}% waits for approval by {role}")
        }
        Decision::StageApproved { weight, reason, .. } => {
            format!("stage {weight}% approved: {reason}")
        }
        Decision::StageEntering { weight, .. } => format!("entering stage {weight}%"),
        Decision::StageEntered { weight, .. } => {
            format!("stage {weight}% confirmed by the router; hold starts")
        }
        Decision::StageHoldEnded { weight, .. } => format!("hold of stage {weight}% over"),
        Decision::StageGates {
            weight,
            verdict,
            judgements,
            ..
        } => {
            format!(
                "gates of stage {weight}%: {verdict:?}: {}",
                judgements_text(judgements)
            )
        }
        Decision::StageGatesWaived { weight, reason, .. } => {
            format!("gates of stage {weight}% waived: {reason}")
        }
        Decision::RampCompleted { weight } => format!("ramp complete at {weight}%"),
        Decision::RampPaused { reason } => format!("RAMP PAUSED: {reason}"),
        Decision::RampResumed { reason } => format!("ramp resumed: {reason}"),
        Decision::WeightsConfirmed { weights } => {
            format!(
                "weights in force: {}",
                weights
                    .iter()
                    .map(|(g, w)| format!("{g}={w}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        Decision::WeightChangeFailed {
            reason, attempt, ..
        } => format!("weight change failed (attempt {attempt}): {reason}"),
        Decision::RollbackStarted { cause, reason, .. } => format!("ROLLBACK ({cause}): {reason}"),
        Decision::RollbackConfirmed {
            duration_ms,
            budget_ms,
            within_budget,
        } => format!(
            "rollback confirmed: traffic off the new version in {} (budget {}){}",
            ms_text(*duration_ms),
            ms_text(*budget_ms),
            if *within_budget {
                ""
            } else {
                " — OVER BUDGET"
            }
        ),
        Decision::RulePending { rule, value } => {
            format!("rule {rule} pending ({})", value_text(*value))
        }
        Decision::RuleFiring {
            rule,
            severity,
            value,
            source,
        } => {
            format!(
                "rule {rule} FIRING ({severity}, {} from {source})",
                value_text(*value)
            )
        }
        Decision::RuleResolved { rule, .. } => format!("rule {rule} resolved"),
        Decision::RuleReset { rule, value } => {
            format!("rule {rule} back to inactive ({})", value_text(*value))
        }
        Decision::RuleInconclusive {
            rule,
            reason,
            policy,
            acts_after_ms,
        } => {
            if policy == "keep_state" {
                format!("rule {rule} INCONCLUSIVE: {reason} (policy: keep_state)")
            } else {
                format!(
                    "rule {rule} INCONCLUSIVE: {reason} (policy: {policy} once blind for {})",
                    plan::Dur(*acts_after_ms)
                )
            }
        }
        Decision::RuleNoData {
            rule,
            policy,
            blind_ms,
            ..
        } => format!(
            "rule {rule} blind for {}: no-data policy `{policy}` acts",
            plan::Dur(*blind_ms)
        ),
        Decision::StageWarmedUp { weight, .. } => {
            format!("stage {weight}%: warm-up over, missing data counts again")
        }
        Decision::PageClosed { page, reason } => format!("{page} closed: {reason}"),
        Decision::RuleDataBack { rule } => format!("rule {rule}: data is back"),
        Decision::RuleDeactivated { rule } => format!("rule {rule} no longer watched"),
        Decision::TriggerPulled {
            trigger,
            severity,
            reason,
        } => format!("STOP THE LINE: {trigger} ({severity}): {reason}"),
        Decision::PlaybookStarted { run, cause, .. } => format!("playbook {run} started ({cause})"),
        Decision::ActionDone { task } => format!("{task} done"),
        Decision::ActionOverdue { task, role } => format!("{task} OVERDUE ({role})"),
        Decision::TaskAssigned { task, role, .. } => format!("task {task} for {role}"),
        Decision::PageAcknowledged { page, person } => format!("{page} acknowledged by {person}"),
        Decision::PageEscalated { page, role, person } => {
            format!("{page} escalated to {person} ({role})")
        }
        Decision::PageUnanswered { page } => format!("{page}: NOBODY ACKNOWLEDGED"),
        Decision::MessageSkipped { message, reason } => {
            format!("message {message} skipped: {reason}")
        }
        Decision::CriterionSignedOff { criterion } => format!("criterion {criterion} signed off"),
        Decision::SuccessEvaluated { verdict, .. } => format!("success criteria: {verdict:?}"),
        Decision::FollowUpReminder { task, .. } => {
            format!("reminder: follow-up {task} due in a day")
        }
        Decision::FollowUpOverdue { task } => format!("follow-up {task} OVERDUE"),
        Decision::FollowUpDone { task } => format!("follow-up {task} done"),
        Decision::EffectFailed { kind, reason, .. } => format!("{kind} failed: {reason}"),
        Decision::EffectTimedOut { id, kind } => {
            format!("{kind} (effect {id}) got no answer in time")
        }
    })
}

/// Writes a rule's value with its SLI's unit: `pending (8%)` instead of `pending (8)`.
fn with_unit(plan: &Plan, d: &Decision, text: String) -> String {
    let (rule, value) = match d {
        Decision::RulePending { rule, value }
        | Decision::RuleReset { rule, value }
        | Decision::RuleFiring { rule, value, .. } => (rule, value),
        _ => return text,
    };
    let Some(v) = value else { return text };
    let unit = sli_unit(plan, rule);
    if unit.is_empty() {
        return text;
    }
    text.replacen(&format!("({v}"), &format!("({v}{unit}"), 1)
}

/// The unit of a rule's SLI.
fn sli_unit(plan: &Plan, rule: &str) -> String {
    plan.rules
        .as_ref()
        .and_then(|r| r.list.iter().find(|x| x.id.as_str() == rule))
        .and_then(|r| plan.slis.iter().find(|s| s.id.as_str() == r.when.sli))
        .map(|s| s.unit.value.to_string())
        .unwrap_or_default()
}

fn decision_kind(d: &Decision) -> String {
    serde_json::to_value(d)
        .ok()
        .and_then(|v| {
            v.get("decision")
                .and_then(|k| k.as_str().map(str::to_string))
        })
        .unwrap_or_default()
}

fn input_text(input: &Input) -> String {
    match input {
        Input::SignOff { item, .. } => format!("sign off {item}"),
        Input::Waive { item, reason, .. } => format!("waive {item}: {reason}"),
        Input::RollCallAnswer { step, .. } => format!("ready for {step}"),
        Input::Decide {
            gate, go, reason, ..
        } => format!("{} at {gate}: {reason}", if *go { "go" } else { "no-go" }),
        Input::StopTheLine {
            trigger, reason, ..
        } => format!("stop the line ({trigger}): {reason}"),
        Input::Pause { reason, .. } => format!("pause: {reason}"),
        Input::Resume { reason, .. } => format!("resume: {reason}"),
        Input::Promote { reason, .. } => format!("promote: {reason}"),
        Input::Rollback { reason, .. } => format!("roll back: {reason}"),
        Input::Ack { target, .. } => format!("acknowledge {target}"),
        Input::Resolve {
            target, outcome, ..
        } => format!("resolve {target} as {outcome:?}"),
        Input::Alert { name, status, .. } => format!("alert {name} {status:?}"),
        other => other.kind().to_string(),
    }
}

pub(crate) fn build(
    plan: &Plan,
    scenario: &Scenario,
    scenario_name: &str,
    engine: &Engine,
    log: &[Record],
    derived_baselines: &[String],
    horizon: Timestamp,
) -> Report {
    let state = engine.state().clone();
    let t0 = state.t0_actual.unwrap_or(state.t0_planned);
    let t = |at: Timestamp| offset_text(t0, at);
    let mut timeline = Vec::new();
    let mut rules_fired = Vec::new();
    let mut weights = Vec::new();
    let mut messages = Vec::new();
    let mut pages = Vec::new();
    let mut refused = Vec::new();
    let mut counts = Counts {
        records: log.len(),
        ..Counts::default()
    };
    for r in log {
        match &r.body {
            RecordBody::Input(input) => {
                counts.inputs += 1;
                if input.person().is_some() || matches!(input, Input::Alert { .. }) {
                    timeline.push(Entry {
                        at: r.at,
                        t: t(r.at),
                        actor: actor_text(&r.actor),
                        kind: input.kind().to_string(),
                        what: input_text(input),
                    });
                }
            }
            RecordBody::Refused { input, reason } => {
                counts.refused += 1;
                refused.push(Refusal {
                    t: t(r.at),
                    actor: actor_text(&r.actor),
                    input: input_text(input),
                    reason: reason.clone(),
                });
                timeline.push(Entry {
                    at: r.at,
                    t: t(r.at),
                    actor: actor_text(&r.actor),
                    kind: "refused".to_string(),
                    what: format!("REFUSED {}: {reason}", input_text(input)),
                });
            }
            RecordBody::Decision(d) => {
                counts.decisions += 1;
                match d {
                    Decision::RuleFiring {
                        rule,
                        severity,
                        value,
                        source,
                    } => rules_fired.push(RuleFired {
                        t: t(r.at),
                        rule: rule.clone(),
                        severity: severity.clone(),
                        value: *value,
                        unit: sli_unit(plan, rule),
                        source: source.clone(),
                    }),
                    Decision::WeightsConfirmed { weights: w } => weights.push(WeightChange {
                        t: t(r.at),
                        weights: w.clone(),
                    }),
                    _ => {}
                }
                if let Some(what) = decision_text(d).map(|w| with_unit(plan, d, w)) {
                    timeline.push(Entry {
                        at: r.at,
                        t: t(r.at),
                        actor: actor_text(&r.actor),
                        kind: decision_kind(d),
                        what,
                    });
                }
            }
            RecordBody::Effect(e) => {
                counts.effects += 1;
                match &e.effect {
                    Effect::RunCommand { .. } => counts.commands_not_executed += 1,
                    Effect::RunProbe { .. } => counts.probes_not_executed += 1,
                    Effect::QueryMetrics { .. } => counts.metric_queries += 1,
                    Effect::SendMessage {
                        audience,
                        channels,
                        template,
                        subject,
                        body,
                        ..
                    } => {
                        counts.messages += 1;
                        messages.push(Message {
                            t: t(r.at),
                            audience: audience.clone(),
                            channels: channels.clone(),
                            template: template.clone(),
                            subject: subject.clone(),
                            body: body.clone(),
                        });
                    }
                    Effect::Page {
                        page,
                        role,
                        person,
                        reason,
                        ..
                    } => {
                        counts.pages += 1;
                        pages.push(PageEntry {
                            t: t(r.at),
                            page: page.clone(),
                            role: role.clone(),
                            person: person.clone(),
                            reason: reason.clone(),
                        });
                    }
                    Effect::SetWeights { weights: w, reason } => timeline.push(Entry {
                        at: r.at,
                        t: t(r.at),
                        actor: actor_text(&r.actor),
                        kind: "set_weights".to_string(),
                        what: format!(
                            "set weights {} ({reason})",
                            w.iter()
                                .map(|(g, w)| format!("{g}={w}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ),
                    }),
                    Effect::UpdateStatusPage { status, message } => timeline.push(Entry {
                        at: r.at,
                        t: t(r.at),
                        actor: actor_text(&r.actor),
                        kind: "status_page".to_string(),
                        what: format!("status page: {status}: {message}"),
                    }),
                }
            }
        }
    }
    let phases = plan
        .timeline
        .iter()
        .map(|phase| {
            let steps: Vec<_> = state
                .steps
                .iter()
                .filter(|s| s.phase.as_deref() == Some(phase.id.as_str()))
                .collect();
            let count =
                |f: &dyn Fn(StepStatus) -> bool| steps.iter().filter(|s| f(s.status)).count();
            PhaseProgress {
                id: phase.id.value.clone(),
                title: phase.title.value.clone(),
                steps: steps.len(),
                done: count(&|s| s == StepStatus::Done),
                rehearsed: count(&|s| s == StepStatus::Rehearsed),
                failed: count(&|s| {
                    matches!(
                        s,
                        StepStatus::Failed
                            | StepStatus::FailedContinued
                            | StepStatus::OutcomeUnknown
                    )
                }),
                skipped: count(&|s| matches!(s, StepStatus::Skipped | StepStatus::Waived)),
                open: count(&|s| matches!(s, StepStatus::Waiting | StepStatus::Running)),
            }
        })
        .collect();
    let mut entered: BTreeMap<u8, String> = BTreeMap::new();
    for r in log {
        if let RecordBody::Decision(Decision::StageEntered { weight, .. }) = &r.body {
            entered.entry(*weight).or_insert_with(|| t(r.at));
        }
    }
    let stages = plan
        .ramp
        .iter()
        .flat_map(|ramp| ramp.stages.iter())
        .map(|s| StageProgress {
            weight: s.weight.value,
            entered: entered.get(&s.weight.value).cloned(),
        })
        .collect();
    let rollback = state.rollback.as_ref().map(|rb| RollbackReport {
        cause: rb.cause.clone(),
        reason: rb.reason.clone(),
        triggered: t(rb.triggered_at),
        confirmed: rb.confirmed_at.map(t),
        duration_ms: rb.duration_ms,
        budget_ms: rb.budget_ms,
        within_budget: rb.duration_ms.map(|d| d <= rb.budget_ms),
        attempts: rb.attempts,
    });
    let success = state.success.verdict.map(|verdict| SuccessReport {
        verdict,
        judgements: state.success.judgements.clone(),
    });
    let stopped_at = log.last().map(|r| r.at).unwrap_or(state.t0_planned);
    let (outcome, reason) = match state.status {
        RunStatus::Running => (
            "running".to_string(),
            Some(format!(
                "the rehearsal stopped at its horizon ({}) with the run still going{}",
                t(horizon),
                state
                    .ramp
                    .paused
                    .as_ref()
                    .map(|p| format!("; the ramp is paused ({})", p.reason))
                    .unwrap_or_default()
            )),
        ),
        other => (other.as_str().to_string(), state.end_reason.clone()),
    };
    Report {
        plan: plan.meta.name.value.clone(),
        scenario: scenario
            .name
            .clone()
            .unwrap_or_else(|| scenario_name.to_string()),
        description: scenario.description.clone(),
        env: state.env.clone(),
        note: NOT_EXECUTED.to_string(),
        started_at: state.started_at.unwrap_or(state.t0_planned),
        stopped_at,
        t0_planned: state.t0_planned,
        t0_actual: state.t0_actual,
        outcome,
        reason,
        phases,
        stages,
        timeline,
        rules_fired,
        weights,
        messages,
        pages,
        rollback,
        success,
        refused,
        derived_baselines: derived_baselines.to_vec(),
        counts,
        final_state: state,
    }
}

impl Report {
    /// The report as a person reads it in a terminal.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "Rehearsal of \"{}\" — scenario {} (environment {})",
            self.plan, self.scenario, self.env
        );
        if let Some(d) = &self.description {
            let _ = writeln!(o, "{d}");
        }
        let _ = writeln!(o, "\nNOTE: {}", self.note);
        let _ = writeln!(o, "\nT0 planned: {}", self.t0_planned);
        match self.t0_actual {
            Some(t0) => {
                let _ = writeln!(o, "T0 actual:  {t0} (offsets below count from it)");
            }
            None => {
                let _ = writeln!(
                    o,
                    "T0 actual:  never decided (offsets below count from the planned T0)"
                );
            }
        }
        let _ = writeln!(
            o,
            "Outcome:    {}{}",
            self.outcome.to_uppercase(),
            self.reason
                .as_ref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default()
        );

        let _ = writeln!(o, "\nProgress by phase");
        for p in &self.phases {
            let _ = writeln!(
                o,
                "  {:<40} {:>2} steps: {} done, {} rehearsed (not executed), {} failed, {} skipped, {} open",
                p.title, p.steps, p.done, p.rehearsed, p.failed, p.skipped, p.open
            );
        }
        if !self.stages.is_empty() {
            let stages: Vec<String> = self
                .stages
                .iter()
                .map(|s| {
                    format!(
                        "{}% {}",
                        s.weight,
                        s.entered
                            .as_deref()
                            .map(|e| format!("at {e}"))
                            .unwrap_or_else(|| "not reached".to_string())
                    )
                })
                .collect();
            let _ = writeln!(o, "  Ramp: {}", stages.join(" → "));
        }

        let _ = writeln!(o, "\nTimeline");
        let mut i = 0;
        while i < self.timeline.len() {
            let e = &self.timeline[i];
            // Many rules going blind (or seeing again) at one evaluation read as one line.
            if matches!(
                e.kind.as_str(),
                "rule_inconclusive" | "rule_data_back" | "rule_no_data"
            ) {
                let mut j = i;
                let mut rules = Vec::new();
                while j < self.timeline.len()
                    && self.timeline[j].at == e.at
                    && self.timeline[j].kind == e.kind
                {
                    rules.push(
                        self.timeline[j]
                            .actor
                            .trim_start_matches("rule ")
                            .to_string(),
                    );
                    j += 1;
                }
                if rules.len() > 3 {
                    let what = if e.kind == "rule_data_back" {
                        format!("{} rules: data is back", rules.len())
                    } else if e.kind == "rule_no_data" {
                        let tail = e.what.split_once(": ").map(|(_, t)| t).unwrap_or("");
                        format!("{} rules blind: {tail}", rules.len())
                    } else {
                        let reason = e
                            .what
                            .split_once("INCONCLUSIVE: ")
                            .map(|(_, r)| r)
                            .unwrap_or("");
                        let reason = reason
                            .rsplit_once(" (policy:")
                            .map(|(r, _)| r)
                            .unwrap_or(reason);
                        format!("{} rules INCONCLUSIVE: {reason}", rules.len())
                    };
                    let _ = writeln!(
                        o,
                        "  {:<16} {:<28} {what} ({})",
                        e.t,
                        "rules",
                        rules.join(", ")
                    );
                    i = j;
                    continue;
                }
            }
            // Many checklist items done at the same moment read as one line.
            if e.kind == "checklist_item_done" || e.kind == "sign_off" {
                let mut j = i;
                while j < self.timeline.len()
                    && self.timeline[j].at == e.at
                    && matches!(
                        self.timeline[j].kind.as_str(),
                        "checklist_item_done" | "sign_off" | "checklist_complete"
                    )
                {
                    j += 1;
                }
                let done = self.timeline[i..j]
                    .iter()
                    .filter(|x| x.kind == "checklist_item_done")
                    .count();
                let complete: Vec<&str> = self.timeline[i..j]
                    .iter()
                    .filter(|x| x.kind == "checklist_complete")
                    .map(|x| x.what.as_str())
                    .collect();
                if j - i > 3 {
                    let _ = writeln!(
                        o,
                        "  {:<16} {:<28} {done} checklist items signed off or verified{}",
                        e.t,
                        "owners",
                        if complete.is_empty() {
                            String::new()
                        } else {
                            format!("; {}", complete.join("; "))
                        }
                    );
                    i = j;
                    continue;
                }
            }
            let _ = writeln!(o, "  {:<16} {:<28} {}", e.t, e.actor, e.what);
            i += 1;
        }

        let _ = writeln!(o, "\nRules fired");
        if self.rules_fired.is_empty() {
            let _ = writeln!(o, "  none");
        }
        for r in &self.rules_fired {
            let _ = writeln!(
                o,
                "  {:<16} {} ({}, value {} from {})",
                r.t,
                r.rule,
                r.severity,
                r.value
                    .map(|v| format!("{v}{}", r.unit))
                    .unwrap_or_else(|| "none".to_string()),
                r.source
            );
        }

        let _ = writeln!(o, "\nWeights over time (as confirmed by the router)");
        if self.weights.is_empty() {
            let _ = writeln!(o, "  never changed");
        }
        for w in &self.weights {
            let _ = writeln!(
                o,
                "  {:<16} {}",
                w.t,
                w.weights
                    .iter()
                    .map(|(g, p)| format!("{g} {p}%"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }

        let _ = writeln!(o, "\nRollback");
        match &self.rollback {
            None => {
                let _ = writeln!(o, "  none");
            }
            Some(rb) => {
                let _ = writeln!(
                    o,
                    "  triggered {} by {}: {}",
                    rb.triggered, rb.cause, rb.reason
                );
                match (rb.confirmed.as_deref(), rb.duration_ms) {
                    (Some(c), Some(d)) => {
                        let _ = writeln!(
                            o,
                            "  confirmed {c}: traffic off the new version in {} (budget {}, {}), {} attempt(s)",
                            ms_text(d),
                            ms_text(rb.budget_ms),
                            if d <= rb.budget_ms {
                                "within budget"
                            } else {
                                "OVER BUDGET"
                            },
                            rb.attempts
                        );
                    }
                    _ => {
                        let _ = writeln!(
                            o,
                            "  NOT CONFIRMED by the router ({} attempt(s))",
                            rb.attempts
                        );
                    }
                }
            }
        }

        if let Some(s) = &self.success {
            let _ = writeln!(o, "\nSuccess criteria: {:?}", s.verdict);
            for j in &s.judgements {
                let _ = writeln!(o, "  {:?}  {} — {}", j.verdict, j.what, j.detail);
            }
        }

        let _ = writeln!(o, "\nPages ({})", self.pages.len());
        for p in &self.pages {
            let _ = writeln!(
                o,
                "  {:<16} {} → {} ({}): {}",
                p.t, p.page, p.person, p.role, p.reason
            );
        }

        let _ = writeln!(
            o,
            "\nMessages that would have been sent: {}",
            self.messages.len()
        );
        let mut by_audience: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &self.messages {
            *by_audience.entry(&m.audience).or_default() += 1;
        }
        for (a, n) in &by_audience {
            let _ = writeln!(o, "  {a:<28} {n}");
        }
        let _ = writeln!(o, "  (every message with its text is in --json)");

        if !self.refused.is_empty() {
            let _ = writeln!(o, "\nRefused inputs");
            for r in &self.refused {
                let _ = writeln!(o, "  {:<16} {}: {} — {}", r.t, r.actor, r.input, r.reason);
            }
        }
        if !self.derived_baselines.is_empty() {
            let _ = writeln!(
                o,
                "\nValues assumed for judged SLIs the scenario does not set (healthy by the plan's own thresholds): {}",
                self.derived_baselines.join(", ")
            );
        }
        let c = &self.counts;
        let _ = writeln!(
            o,
            "\nLog: {} records ({} inputs, {} refused, {} decisions, {} effects: {} commands and {} probes not executed, {} metric queries, {} messages, {} pages)",
            c.records,
            c.inputs,
            c.refused,
            c.decisions,
            c.effects,
            c.commands_not_executed,
            c.probes_not_executed,
            c.metric_queries,
            c.messages,
            c.pages
        );
        o
    }
}
