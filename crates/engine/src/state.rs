//! The run's state: a projection of its log, serializable for `status` and the API.
//!
//! Everything the engine knows about a run lives here (plus the plan), so two engines that
//! handled the same inputs serialize to the same JSON.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::effect::EffectRequest;
use crate::input::Weights;
use crate::record::{Judgement, Verdict};
use crate::rules::RuleTracker;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for `Input::Start`.
    NotStarted,
    Running,
    /// "No-go" at the gate that sets T0.
    Aborted,
    /// Traffic was taken off the new version.
    RolledBack,
    /// Every scheduled item of the plan is behind us.
    Completed,
}

impl RunStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::NotStarted => "not_started",
            RunStatus::Running => "running",
            RunStatus::Aborted => "aborted",
            RunStatus::RolledBack => "rolled_back",
            RunStatus::Completed => "completed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: String,
    pub plan: String,
    pub env: String,
    pub status: RunStatus,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub end_reason: Option<String>,
    pub t0_planned: Timestamp,
    /// The moment "go" was recorded at the gate that sets T0.
    pub t0_actual: Option<Timestamp>,
    /// The timeline phase whose window we are in.
    pub phase: Option<String>,
    pub phases_started: BTreeSet<String>,
    pub checklists: Vec<ChecklistState>,
    pub steps: Vec<StepState>,
    /// Index of the first timeline step not yet finished.
    pub cursor: usize,
    pub freezes: Vec<FreezeState>,
    pub ramp: RampState,
    /// Weights last confirmed by the router.
    pub weights: Option<Weights>,
    pub rules: Vec<RuleState>,
    pub next_evaluation: Option<Timestamp>,
    /// Latest reading per `sli/version`.
    pub latest: BTreeMap<String, LatestReading>,
    /// Readings since T0 per `sli/version`, for success criteria.
    pub since_t0: BTreeMap<String, MetricStats>,
    pub triggers_pulled: Vec<TriggerPull>,
    pub alerts: BTreeMap<String, String>,
    pub playbooks: Vec<PlaybookRun>,
    pub pages: Vec<PageState>,
    pub rollback: Option<RollbackState>,
    pub success: SuccessState,
    pub followups: Vec<FollowUpState>,
    pub cadences: Vec<CadenceState>,
    pub dated: Vec<DatedState>,
    pub messages_sent: u64,
    /// The latest incident (a rule that fired, a trigger pulled), for messages.
    pub incident: Option<Incident>,
    pub next_effect_id: u64,
    /// Effects requested and not yet answered.
    pub pending: BTreeMap<u64, PendingEffect>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestReading {
    pub at: Timestamp,
    /// The value, or none when the reading was inconclusive.
    pub value: Option<f64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricStats {
    pub count: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub inconclusive: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecklistState {
    pub id: String,
    pub title: String,
    pub due_at: Option<Timestamp>,
    pub overdue_noted: bool,
    pub complete: bool,
    pub items: Vec<ItemState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Open,
    Probing,
    /// A metric item: judged on the SLI at every evaluation until it passes, fails, or
    /// its checklist is due.
    Measuring,
    Done,
    Failed,
    Waived,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemState {
    pub id: String,
    pub title: String,
    pub owner: String,
    pub manual: bool,
    pub status: ItemStatus,
    pub by: Option<String>,
    pub at: Option<Timestamp>,
    pub reason: Option<String>,
    /// It failed without a verdict: no data, a source error, or nothing to measure it with
    /// in this environment (a person may waive it).
    #[serde(default)]
    pub inconclusive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Waiting,
    Running,
    Done,
    Rehearsed,
    /// Failed and holding the timeline until a person retries, resolves or waives it.
    Failed,
    /// Failed; the declared consequence let the timeline go on.
    FailedContinued,
    OutcomeUnknown,
    Skipped,
    Waived,
}

impl StepStatus {
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            StepStatus::Done
                | StepStatus::Rehearsed
                | StepStatus::FailedContinued
                | StepStatus::Skipped
                | StepStatus::Waived
        )
    }
    pub fn is_stuck(&self) -> bool {
        matches!(self, StepStatus::Failed | StepStatus::OutcomeUnknown)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    pub id: String,
    pub phase: Option<String>,
    pub title: String,
    pub kind: String,
    pub offset: String,
    pub status: StepStatus,
    pub due: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// When a waiting step (roll call, gate, checklist) times out.
    pub deadline: Option<Timestamp>,
    pub effect: Option<u64>,
    /// Roll call: role → person who answered.
    pub answered: BTreeMap<String, String>,
    pub due_noted: bool,
    pub reason: Option<String>,
    pub attempts: u32,
    /// A metric probe: judged at every evaluation while it runs.
    #[serde(default)]
    pub measuring: bool,
    /// It failed without a verdict (no data, nothing to measure it with here).
    #[serde(default)]
    pub inconclusive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreezeState {
    pub step: String,
    pub freeze: String,
    pub since: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RampStatus {
    NotStarted,
    /// Weights requested for a stage; waiting for the router to confirm.
    Entering,
    Holding,
    Completed,
    RolledBack,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RampState {
    pub status: RampStatus,
    pub stage: Option<usize>,
    /// Percent on the new version, as last confirmed.
    pub weight: u8,
    pub entered_at: Option<Timestamp>,
    /// Until then the new version has too few requests in the metric window: no-data
    /// outcomes of rules are not acted upon, and the hold does not end.
    #[serde(default)]
    pub warmup_until: Option<Timestamp>,
    #[serde(default)]
    pub warmup_over: bool,
    pub hold_until: Option<Timestamp>,
    pub hold_over: bool,
    pub approvals: BTreeSet<usize>,
    pub awaiting_approval: Option<usize>,
    pub last_gates: Option<Verdict>,
    pub gates_waived: BTreeSet<usize>,
    pub paused: Option<PauseState>,
    pub effect: Option<u64>,
    pub completed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseState {
    pub by: String,
    pub reason: String,
    pub since: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    pub id: String,
    pub severity: String,
    /// False when the environment's metric source has no query for the rule's SLI.
    pub evaluable: bool,
    /// Whether the rule is watched now (during the ramp, or from T0 for `always` rules).
    pub active: bool,
    pub tracker: RuleTracker,
    /// Firing because Alertmanager says so.
    pub alert_firing: bool,
    pub fired: u32,
}

impl RuleState {
    pub fn is_firing(&self) -> bool {
        self.tracker.is_firing() || self.alert_firing
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerPull {
    pub trigger: String,
    pub by: String,
    pub at: Timestamp,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookRun {
    pub run: String,
    pub playbook: String,
    pub cause: String,
    pub started_at: Timestamp,
    pub actions: Vec<ActionState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    Open,
    Done,
    Overdue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionState {
    /// `playbook#n/action`: what `Input::Ack` names.
    pub task: String,
    pub title: String,
    pub kind: String,
    pub role: Option<String>,
    pub due: Timestamp,
    pub status: ActionStatus,
    pub page: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageState {
    /// `page-N`: what `Input::Ack` names.
    pub id: String,
    pub role: String,
    pub reason: String,
    /// Who is paged in turn: (role, person), primary → backup → upward.
    pub chain: Vec<(String, String)>,
    pub level: usize,
    pub ack_within_ms: u64,
    pub ack_by: Timestamp,
    pub acked_by: Option<String>,
    pub acked_at: Option<Timestamp>,
    pub unanswered: bool,
    /// What the page is about (`step:<id>`, `approval:<stage>`, `pause`, `rule:<id>`…):
    /// when that is settled, the page is closed.
    #[serde(default)]
    pub about: Option<String>,
    /// Why it was closed without an acknowledgement (its reason went away).
    #[serde(default)]
    pub closed: Option<String>,
}

impl PageState {
    pub fn is_open(&self) -> bool {
        self.acked_by.is_none() && !self.unanswered && self.closed.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackState {
    pub cause: String,
    pub reason: String,
    pub triggered_at: Timestamp,
    pub attempts: u32,
    pub effect: Option<u64>,
    pub retry_at: Option<Timestamp>,
    pub confirmed_at: Option<Timestamp>,
    pub duration_ms: Option<u64>,
    pub budget_ms: u64,
    pub paged: bool,
    pub steps: Vec<StepState>,
    pub cursor: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SuccessState {
    pub at: Option<Timestamp>,
    pub evaluated: bool,
    pub signed: BTreeMap<String, String>,
    pub waived: BTreeMap<String, String>,
    pub verdict: Option<Verdict>,
    pub judgements: Vec<Judgement>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUpState {
    pub id: String,
    pub title: String,
    pub owner: String,
    pub due_at: Option<Timestamp>,
    pub reminded: bool,
    pub overdue: bool,
    pub done_by: Option<String>,
    pub done_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CadenceState {
    pub id: String,
    pub next_at: Option<Timestamp>,
    pub last_sent: Option<Timestamp>,
    pub sent: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatedState {
    pub id: String,
    pub at: Option<Timestamp>,
    pub done: bool,
}

/// Why an effect was requested: where its result goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Purpose {
    Step {
        step: usize,
    },
    RollbackStep {
        step: usize,
    },
    Probe {
        checklist: usize,
        item: usize,
    },
    StageWeights {
        stage: usize,
    },
    TrafficStep {
        step: usize,
    },
    RollbackWeights,
    /// A metrics query; `keys` index the SLIs and versions asked for (the full queries
    /// are in the effect's record; keeping them once here is enough).
    Metrics {
        keys: Vec<(u16, u16)>,
        /// The evaluation's scheduled time: the readings are judged as of then, however
        /// late they arrive.
        #[serde(default)]
        at: Option<Timestamp>,
    },
    Message,
    Page,
    StatusPage,
    PlaybookCommand {
        run: usize,
        action: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingEffect {
    pub request: EffectRequest,
    pub purpose: Purpose,
    pub requested_at: Timestamp,
    /// When the engine stops waiting and counts it as failed (timeout plus a grace).
    pub deadline: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub trigger: String,
    pub title: String,
    pub reason: String,
    pub started: Timestamp,
    pub impact: String,
}
