//! A record is one line of a run's log: who or what caused it, when, and what it was.
//!
//! The log of a run is the sequence of records the engine returned, in order. Field names
//! are part of the log format and stay stable.

use serde::{Deserialize, Serialize};

use crate::effect::EffectRequest;
use crate::input::{Input, Weights};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub at: jiff::Timestamp,
    pub actor: Actor,
    pub body: RecordBody,
}

/// Who or what caused a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A person, acting in the role that gave them the authority (if one was needed).
    Person {
        person: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
    },
    /// A rule of the plan, evaluated on metrics or raised by an alert.
    Rule { rule: String },
    /// A manual trigger, pulled by a person or raised by an alert.
    Trigger {
        trigger: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        person: Option<String>,
    },
    /// A step of the timeline (its failure or result caused this).
    Step { step: String },
    /// The passing of time: a scheduled step, message, deadline.
    Schedule,
    /// The traffic router's answer.
    Router,
    /// A metric source's answer.
    MetricSource,
    /// Alertmanager.
    Alertmanager,
    /// A command or probe executor's answer.
    Executor,
    /// The engine itself (start, bookkeeping).
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordBody {
    /// An accepted input.
    Input(Input),
    /// An input the engine refused, and why. It changed nothing.
    Refused {
        input: Input,
        reason: String,
    },
    Decision(Decision),
    /// An effect the shell must execute.
    Effect(EffectRequest),
}

/// A verdict of a gate or criterion. Inconclusive is never a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

/// One judged condition: what it was, what was seen, the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub what: String,
    pub verdict: Verdict,
    pub detail: String,
    /// The condition cannot be judged in this environment at all (its metric source has
    /// no query for the SLI): inconclusive for good, whatever the wait.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unmeasurable: bool,
}

impl Judgement {
    /// A condition judged on what was seen.
    pub fn new(what: String, verdict: Verdict, detail: String) -> Judgement {
        Judgement {
            what,
            verdict,
            detail,
            unmeasurable: false,
        }
    }
}

/// Everything the engine decides. Each says enough to explain itself in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    RunStarted {
        plan: String,
        env: String,
        t0_planned: jiff::Timestamp,
    },
    /// A rule that cannot be evaluated in this environment.
    RuleInactive {
        rule: String,
        reason: String,
    },
    /// Something worth knowing that changes nothing (a cadence with no window…).
    Note {
        text: String,
    },
    PhaseStarted {
        phase: String,
        title: String,
    },

    ChecklistItemDone {
        checklist: String,
        item: String,
    },
    ChecklistItemFailed {
        checklist: String,
        item: String,
        reason: String,
    },
    ChecklistItemWaived {
        checklist: String,
        item: String,
        reason: String,
    },
    ChecklistComplete {
        checklist: String,
    },
    ChecklistOverdue {
        checklist: String,
        missing: Vec<String>,
    },

    StepStarted {
        step: String,
        title: String,
        kind: String,
    },
    StepDone {
        step: String,
        outcome: String,
    },
    StepFailed {
        step: String,
        reason: String,
        consequence: String,
    },
    StepOutcomeUnknown {
        step: String,
    },
    StepSkipped {
        step: String,
        reason: String,
    },
    StepWaived {
        step: String,
        reason: String,
    },
    RollCallStarted {
        step: String,
        roles: Vec<String>,
    },
    RollCallAnswered {
        step: String,
        role: String,
        person: String,
    },
    FreezeStarted {
        step: String,
        freeze: String,
    },
    GateOpened {
        gate: String,
        due: jiff::Timestamp,
        authority: String,
    },
    GateDue {
        gate: String,
    },
    /// "Go" at a gate; when the gate sets T0, `t0_actual` is now and `late_by_ms` says how
    /// far it is from the planned T0 (negative: early).
    Go {
        gate: String,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        t0_actual: Option<jiff::Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        late_by_ms: Option<i64>,
    },
    NoGo {
        gate: String,
        reason: String,
    },
    RunEnded {
        status: String,
        reason: String,
    },

    StageAwaitingApproval {
        stage: usize,
        weight: u8,
        role: String,
    },
    StageApproved {
        stage: usize,
        weight: u8,
        reason: String,
    },
    StageEntering {
        stage: usize,
        weight: u8,
    },
    StageEntered {
        stage: usize,
        weight: u8,
        hold_until: jiff::Timestamp,
        /// Until then no-data outcomes of rules are not acted upon (`ramp.warmup`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        warmup_until: Option<jiff::Timestamp>,
    },
    /// The stage's warm-up is over: the metric window now covers the new weights.
    StageWarmedUp {
        stage: usize,
        weight: u8,
    },
    StageHoldEnded {
        stage: usize,
        weight: u8,
    },
    StageGates {
        stage: usize,
        weight: u8,
        verdict: Verdict,
        judgements: Vec<Judgement>,
    },
    StageGatesWaived {
        stage: usize,
        weight: u8,
        reason: String,
    },
    RampCompleted {
        weight: u8,
    },
    RampPaused {
        reason: String,
    },
    RampResumed {
        reason: String,
    },
    WeightsConfirmed {
        weights: Weights,
    },
    WeightChangeFailed {
        reason: String,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_at: Option<jiff::Timestamp>,
    },
    RollbackStarted {
        cause: String,
        reason: String,
        budget_ms: u64,
    },
    RollbackConfirmed {
        duration_ms: u64,
        budget_ms: u64,
        within_budget: bool,
    },

    RulePending {
        rule: String,
        value: Option<f64>,
    },
    RuleFiring {
        rule: String,
        severity: String,
        value: Option<f64>,
        source: String,
    },
    RuleResolved {
        rule: String,
        value: Option<f64>,
    },
    /// One false evaluation reset a pending rule.
    RuleReset {
        rule: String,
        value: Option<f64>,
    },
    /// The first blind evaluation: the rule is inconclusive (pending); its `no_data`
    /// policy acts if it stays blind for `acts_after_ms`.
    RuleInconclusive {
        rule: String,
        reason: String,
        policy: String,
        #[serde(default)]
        acts_after_ms: u64,
    },
    /// Blind for the grace: the `no_data` policy (`pause`, `firing`) acts now.
    RuleNoData {
        rule: String,
        reason: String,
        policy: String,
        blind_ms: u64,
    },
    RuleDataBack {
        rule: String,
    },
    RuleDeactivated {
        rule: String,
    },
    TriggerPulled {
        trigger: String,
        severity: String,
        reason: String,
    },

    PlaybookStarted {
        playbook: String,
        run: String,
        cause: String,
    },
    ActionDone {
        task: String,
    },
    ActionOverdue {
        task: String,
        role: String,
    },
    TaskAssigned {
        task: String,
        role: String,
        due: jiff::Timestamp,
    },
    PageAcknowledged {
        page: String,
        person: String,
    },
    PageEscalated {
        page: String,
        role: String,
        person: String,
    },
    PageUnanswered {
        page: String,
    },
    /// A page nobody needs to answer any more: what it was about was settled.
    PageClosed {
        page: String,
        reason: String,
    },
    MessageSkipped {
        message: String,
        reason: String,
    },

    CriterionSignedOff {
        criterion: String,
    },
    SuccessEvaluated {
        verdict: Verdict,
        judgements: Vec<Judgement>,
    },
    FollowUpReminder {
        task: String,
        due: jiff::Timestamp,
    },
    FollowUpOverdue {
        task: String,
    },
    FollowUpDone {
        task: String,
    },

    EffectFailed {
        id: u64,
        kind: String,
        reason: String,
    },
    EffectTimedOut {
        id: u64,
        kind: String,
    },
}
