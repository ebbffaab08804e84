//! Everything that can happen to a run, as one closed enum: the engine's only way in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Percent of traffic per version group (`stable`, `canary`, …).
pub type Weights = BTreeMap<String, u32>;

/// One input to [`crate::Engine::handle`]. Persons are named by their plan id; they act
/// with the authorities of every role they hold (as primary or backup).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Input {
    /// The run begins. Must be the first input; given once.
    Start,
    /// Time has passed: process every deadline up to `now`.
    Tick,
    /// The result of an effect the engine requested.
    EffectResult {
        id: u64,
        outcome: EffectOutcome,
    },
    /// After a crash, the shell does not know whether a non-idempotent effect ran.
    EffectOutcomeUnknown {
        id: u64,
    },
    /// The shell restarted and runs these idempotent effects again (same ids). Every
    /// effect still out gets its full time again from now, so the time the shell was down
    /// fails none of them. Given first after a restart (see `Engine::restart_inputs`).
    Restarted {
        retrying: Vec<u64>,
    },
    /// Readings of SLIs per version. `query` names the `QueryMetrics` effect they answer
    /// (none for pushed samples).
    MetricSamples {
        #[serde(default)]
        query: Option<u64>,
        samples: Vec<Sample>,
    },
    /// An alert from Alertmanager, mapped by name (or the source's `rule_label`) to a rule
    /// or a manual trigger.
    Alert {
        name: String,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        status: AlertStatus,
        fingerprint: String,
    },
    /// A person signs off a checklist item, a success criterion or a follow-up task.
    SignOff {
        person: String,
        item: String,
    },
    /// A person waives a checklist item, a failed step, a stage's gates (`stage:25`) or a
    /// success criterion, with a reason.
    Waive {
        person: String,
        item: String,
        reason: String,
    },
    /// A person answers "ready" to a roll call step.
    RollCallAnswer {
        person: String,
        step: String,
    },
    /// Go or no-go at a gate step.
    Decide {
        person: String,
        gate: String,
        go: bool,
        reason: String,
    },
    /// A person pulls a manual stop-the-line trigger.
    StopTheLine {
        person: String,
        trigger: String,
        reason: String,
    },
    Pause {
        person: String,
        reason: String,
    },
    Resume {
        person: String,
        reason: String,
    },
    /// Approve the next ramp stage and end the current hold early (gates still apply).
    Promote {
        person: String,
        reason: String,
    },
    Rollback {
        person: String,
        reason: String,
    },
    /// Acknowledge a page (`page-12`) or a playbook task (`stop-the-line#1/brief-support`).
    Ack {
        person: String,
        target: String,
    },
    /// Settle a step (or checklist item) that failed or whose outcome is unknown.
    Resolve {
        person: String,
        target: String,
        outcome: Resolution,
    },
}

impl Input {
    /// The person the input comes from, when a person gave it.
    pub fn person(&self) -> Option<&str> {
        match self {
            Input::SignOff { person, .. }
            | Input::Waive { person, .. }
            | Input::RollCallAnswer { person, .. }
            | Input::Decide { person, .. }
            | Input::StopTheLine { person, .. }
            | Input::Pause { person, .. }
            | Input::Resume { person, .. }
            | Input::Promote { person, .. }
            | Input::Rollback { person, .. }
            | Input::Ack { person, .. }
            | Input::Resolve { person, .. } => Some(person),
            _ => None,
        }
    }

    /// Short name of the input kind, as written in the log.
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Start => "start",
            Input::Tick => "tick",
            Input::EffectResult { .. } => "effect_result",
            Input::EffectOutcomeUnknown { .. } => "effect_outcome_unknown",
            Input::Restarted { .. } => "restarted",
            Input::MetricSamples { .. } => "metric_samples",
            Input::Alert { .. } => "alert",
            Input::SignOff { .. } => "sign_off",
            Input::Waive { .. } => "waive",
            Input::RollCallAnswer { .. } => "roll_call_answer",
            Input::Decide { .. } => "decide",
            Input::StopTheLine { .. } => "stop_the_line",
            Input::Pause { .. } => "pause",
            Input::Resume { .. } => "resume",
            Input::Promote { .. } => "promote",
            Input::Rollback { .. } => "rollback",
            Input::Ack { .. } => "ack",
            Input::Resolve { .. } => "resolve",
        }
    }
}

/// What an effect's executor reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum EffectOutcome {
    /// It ran and succeeded (a command exited as expected, a probe passed, a message went out).
    Done {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    },
    /// It ran and failed, or could not run.
    Failed {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    },
    /// The router read back these weights after a change.
    Weights { weights: Weights },
    /// Not executed: a rehearsal, or a step this environment only rehearses.
    Rehearsed,
}

/// One SLI reading for one version group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub sli: String,
    pub version: String,
    pub reading: Reading,
}

/// What a metric source answered. No data and errors are inconclusive, never a pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    Value(f64),
    /// The source answered but had nothing to judge (no series, too few requests).
    NoData {
        reason: String,
    },
    /// The source could not be asked, or answered with an error.
    Error {
        reason: String,
    },
}

impl Reading {
    /// Non-finite numbers cannot be judged (nor written to JSON): they become errors.
    pub(crate) fn normalized(self) -> Reading {
        match self {
            Reading::Value(v) if !v.is_finite() => Reading::Error {
                reason: format!("not a finite number ({v})"),
            },
            other => other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// How a person settles a failed or unknown step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// It is done (it ran, or a person did it by hand): go on.
    Done,
    /// It failed: apply the step's `on_failure`.
    Failed,
    /// Run it again.
    Retry,
}
