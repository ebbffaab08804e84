//! The scenario file: what the world does during a rehearsal.
//!
//! ```yaml
//! name: error-rate-25
//! description: The canary's error rate breaches the critical threshold at the 25 % stage.
//! env: staging                  # default: the plan's first environment
//! start: T-7d                   # default: the earliest item of the plan
//! until: T+1 month              # default: the plan's last item plus a day
//! router: { delay: 1s }         # how long the router takes to confirm a weight change
//! metrics:
//!   baseline:                   # per SLI: one value, or one per version group
//!     error_rate: 0.02%
//!     p95_latency: { stable: 310ms, canary: 290ms }
//!   faults:
//!     - { at: stage 25 + 20m, sli: error_rate, set: 3% }
//!     - { at: T+6:00, sli: p95_latency, ramp: { to: 1500ms, over: 10m } }
//!     - { at: T+8:00, until: T+8:30, no_data: [error_rate] }
//!     - { at: T+9:00, until: T+9:10, outage: connection refused }
//! outcomes:                     # commands and probes by step or item id; default: success
//!   smoke_test: { fail: 2 of 5 smoke tests failed, times: 1 }
//! people:
//!   withhold: [pen_test_report] # items nobody signs off
//!   never_ack: [sarah]          # people who never acknowledge a page
//!   absent: [david]             # people who never answer anything
//!   ack_after: 2m
//!   go: true                    # the decider says "go" when a gate is due
//! actions:
//!   - { at: T+4:30, stop_the_line: { person: robert, trigger: security_incident, reason: … } }
//! ```
//! Times are offsets from T0 (`T-2:00`, `T+4:20`: before T0 from the planned one, from
//! T0 on from the actual one) or `stage 25 + 20m` (after the router confirmed that stage).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use plan::{At, Dur, Offset, Quantity};
use serde::{Deserialize, Deserializer};

/// When something happens in a scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    Offset(Offset),
    /// `stage 25 + 20m`: this long after the stage with this weight was confirmed.
    Stage {
        weight: u8,
        after: Dur,
    },
}

impl FromStr for When {
    type Err = String;
    fn from_str(s: &str) -> Result<When, String> {
        let t = s.trim();
        if let Some(rest) = t.strip_prefix("stage") {
            let (weight, after) = match rest.split_once('+') {
                Some((w, a)) => (w, Some(a)),
                None => (rest, None),
            };
            let weight: u8 = weight
                .trim()
                .trim_end_matches('%')
                .parse()
                .map_err(|_| format!("`{s}`: write a stage time like `stage 25 + 20m`"))?;
            let after = match after {
                Some(a) => a.trim().parse::<Dur>().map_err(|e| format!("`{s}`: {e}"))?,
                None => Dur::ZERO,
            };
            return Ok(When::Stage { weight, after });
        }
        t.parse::<Offset>()
            .map(When::Offset)
            .map_err(|e| format!("{e}; or a stage time like `stage 25 + 20m`"))
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::Offset(o) => write!(f, "{o}"),
            When::Stage { weight, after } => write!(f, "stage {weight} + {after}"),
        }
    }
}

impl<'de> Deserialize<'de> for When {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<When, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A value of an SLI in its unit: `0.5%`, `320ms`, `2s`, `4.2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value(pub f64);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        let q: Quantity = Quantity::deserialize(d)?;
        Ok(Value(q.value))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Baseline {
    All(Value),
    PerVersion(BTreeMap<String, Value>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    pub to: Value,
    pub over: Dur,
}

/// A change to the metrics from a moment on (until `until`, if given).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub at: At<When>,
    #[serde(default)]
    pub until: Option<At<When>>,
    #[serde(default)]
    pub sli: Option<At<String>>,
    /// Version group; default the canary.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub set: Option<Value>,
    #[serde(default)]
    pub ramp: Option<Ramp>,
    /// SLIs (or `all`) with no data.
    #[serde(default)]
    pub no_data: Option<Vec<At<String>>>,
    /// The metric source fails: every reading is an error with this reason.
    #[serde(default)]
    pub outage: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    #[serde(default)]
    pub baseline: BTreeMap<String, At<Baseline>>,
    #[serde(default)]
    pub faults: Vec<At<Fault>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterBehaviour {
    /// How long the router takes to confirm a weight change.
    #[serde(default)]
    pub delay: Option<Dur>,
    /// Weight changes that fail.
    #[serde(default)]
    pub failures: Vec<At<RouterFailure>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterFailure {
    /// From this moment on…
    pub from: At<When>,
    /// …this many weight changes fail.
    pub count: u32,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The outcome of a command or probe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// It fails, with this reason.
    pub fail: String,
    /// Only the first this many attempts fail; default every attempt.
    #[serde(default)]
    pub times: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct People {
    /// Items (checklist items, criteria, follow-ups) nobody signs off.
    #[serde(default)]
    pub withhold: Vec<At<String>>,
    /// Whether owners sign off their items when due; default yes.
    #[serde(default = "yes")]
    pub sign_offs: bool,
    /// Whether the decider says "go" at each gate when it is due; default yes.
    #[serde(default = "yes")]
    pub go: bool,
    /// Whether approvers approve ramp stages when asked; default yes.
    #[serde(default = "yes")]
    pub approve: bool,
    #[serde(default)]
    pub never_ack: Vec<At<String>>,
    #[serde(default)]
    pub absent: Vec<At<String>>,
    /// How long people take to acknowledge a page or a task; default 2 minutes.
    #[serde(default)]
    pub ack_after: Option<Dur>,
}

fn yes() -> bool {
    true
}

impl Default for People {
    fn default() -> People {
        People {
            withhold: Vec::new(),
            sign_offs: true,
            go: true,
            approve: true,
            never_ack: Vec::new(),
            absent: Vec::new(),
            ack_after: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonReason {
    pub person: At<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOffAction {
    pub person: At<String>,
    pub item: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaiveAction {
    pub person: At<String>,
    pub item: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideAction {
    pub person: At<String>,
    pub gate: String,
    pub go: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopAction {
    pub person: At<String>,
    pub trigger: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollCallAction {
    pub person: At<String>,
    pub step: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckAction {
    pub person: At<String>,
    pub target: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveAction {
    pub person: At<String>,
    pub target: String,
    pub outcome: crate::input::Resolution,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertAction {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub resolved: bool,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// One thing a person (or Alertmanager) does: exactly one kind key is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub at: At<When>,
    #[serde(default)]
    pub sign_off: Option<SignOffAction>,
    #[serde(default)]
    pub waive: Option<WaiveAction>,
    #[serde(default)]
    pub roll_call: Option<RollCallAction>,
    #[serde(default)]
    pub decide: Option<DecideAction>,
    #[serde(default)]
    pub stop_the_line: Option<StopAction>,
    #[serde(default)]
    pub pause: Option<PersonReason>,
    #[serde(default)]
    pub resume: Option<PersonReason>,
    #[serde(default)]
    pub promote: Option<PersonReason>,
    #[serde(default)]
    pub rollback: Option<PersonReason>,
    #[serde(default)]
    pub ack: Option<AckAction>,
    #[serde(default)]
    pub resolve: Option<ResolveAction>,
    #[serde(default)]
    pub alert: Option<AlertAction>,
}

impl Action {
    /// The input this action gives, or why the action is malformed.
    pub fn input(&self, fingerprint_seq: usize) -> Result<crate::Input, String> {
        use crate::Input;
        let mut inputs = Vec::new();
        if let Some(a) = &self.sign_off {
            inputs.push(Input::SignOff {
                person: a.person.value.clone(),
                item: a.item.clone(),
            });
        }
        if let Some(a) = &self.waive {
            inputs.push(Input::Waive {
                person: a.person.value.clone(),
                item: a.item.clone(),
                reason: a.reason.clone(),
            });
        }
        if let Some(a) = &self.roll_call {
            inputs.push(Input::RollCallAnswer {
                person: a.person.value.clone(),
                step: a.step.clone(),
            });
        }
        if let Some(a) = &self.decide {
            inputs.push(Input::Decide {
                person: a.person.value.clone(),
                gate: a.gate.clone(),
                go: a.go,
                reason: a.reason.clone(),
            });
        }
        if let Some(a) = &self.stop_the_line {
            inputs.push(Input::StopTheLine {
                person: a.person.value.clone(),
                trigger: a.trigger.clone(),
                reason: a.reason.clone(),
            });
        }
        if let Some(a) = &self.pause {
            inputs.push(Input::Pause {
                person: a.person.value.clone(),
                reason: a.reason.clone(),
            });
        }
        if let Some(a) = &self.resume {
            inputs.push(Input::Resume {
                person: a.person.value.clone(),
                reason: a.reason.clone(),
            });
        }
        if let Some(a) = &self.promote {
            inputs.push(Input::Promote {
                person: a.person.value.clone(),
                reason: a.reason.clone(),
            });
        }
        if let Some(a) = &self.rollback {
            inputs.push(Input::Rollback {
                person: a.person.value.clone(),
                reason: a.reason.clone(),
            });
        }
        if let Some(a) = &self.ack {
            inputs.push(Input::Ack {
                person: a.person.value.clone(),
                target: a.target.clone(),
            });
        }
        if let Some(a) = &self.resolve {
            inputs.push(Input::Resolve {
                person: a.person.value.clone(),
                target: a.target.clone(),
                outcome: a.outcome,
            });
        }
        if let Some(a) = &self.alert {
            inputs.push(Input::Alert {
                name: a.name.clone(),
                labels: a.labels.clone(),
                status: if a.resolved {
                    crate::AlertStatus::Resolved
                } else {
                    crate::AlertStatus::Firing
                },
                fingerprint: a
                    .fingerprint
                    .clone()
                    .unwrap_or_else(|| format!("scenario-{}-{fingerprint_seq}", a.name)),
            });
        }
        match inputs.len() {
            1 => Ok(inputs.remove(0)),
            0 => Err("an action needs one of: sign_off, waive, roll_call, decide, stop_the_line, pause, resume, promote, rollback, ack, resolve, alert".to_string()),
            _ => Err("an action has exactly one kind (sign_off, decide, …); split it into several actions".to_string()),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub env: Option<At<String>>,
    #[serde(default)]
    pub start: Option<At<Offset>>,
    #[serde(default)]
    pub until: Option<At<Offset>>,
    #[serde(default)]
    pub router: RouterBehaviour,
    #[serde(default)]
    pub metrics: Metrics,
    #[serde(default)]
    pub outcomes: BTreeMap<String, At<Outcome>>,
    #[serde(default)]
    pub people: People,
    #[serde(default)]
    pub actions: Vec<At<Action>>,
}

/// A scenario that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ScenarioError {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl Scenario {
    /// Parses a scenario. `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        if text.trim().is_empty() {
            return Ok(Scenario::default());
        }
        serde_saphyr::from_str::<Scenario>(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line() as u32, l.column() as u32))
                .unwrap_or((0, 0));
            ScenarioError {
                file: file.to_string(),
                line,
                column,
                message: plain_message(&e.to_string()),
            }
        })
    }

    /// Checks every name the scenario uses against the plan.
    pub fn check(&self, file: &str, plan: &plan::Plan) -> Result<(), ScenarioError> {
        let err = |loc: plan::Loc, message: String| ScenarioError {
            file: file.to_string(),
            line: loc.line,
            column: loc.column,
            message,
        };
        let person = |p: &At<String>| -> Result<(), ScenarioError> {
            if plan.people.iter().any(|x| x.id.value == p.value) {
                Ok(())
            } else {
                let known: Vec<&str> = plan.people.iter().map(|x| x.id.as_str()).collect();
                Err(err(p.loc, unknown("person", &p.value, &known)))
            }
        };
        if let Some(env) = &self.env
            && !plan.environments.iter().any(|e| e.id.value == env.value)
        {
            let known: Vec<&str> = plan.environments.iter().map(|e| e.id.as_str()).collect();
            return Err(err(
                env.loc,
                format!(
                    "no environment `{}` in the plan; it has: {}",
                    env.value,
                    known.join(", ")
                ),
            ));
        }
        let slis: Vec<&str> = plan.slis.iter().map(|s| s.id.as_str()).collect();
        for sli in self.metrics.baseline.keys() {
            if !plan.slis.iter().any(|s| s.id.as_str() == sli) {
                let loc = self.metrics.baseline[sli].loc;
                return Err(err(loc, unknown("SLI", sli, &slis)));
            }
        }
        for fault in &self.metrics.faults {
            if let Some(sli) = &fault.sli
                && !plan.slis.iter().any(|s| s.id.as_str() == sli.as_str())
            {
                return Err(err(sli.loc, unknown("SLI", &sli.value, &slis)));
            }
            for sli in fault.no_data.iter().flatten() {
                if sli.as_str() != "all" && !plan.slis.iter().any(|s| s.id.as_str() == sli.as_str())
                {
                    return Err(err(
                        sli.loc,
                        format!("no SLI `{}` in the plan (or write `all`)", sli.value),
                    ));
                }
            }
            let kinds = [
                fault.set.is_some(),
                fault.ramp.is_some(),
                fault.no_data.is_some(),
                fault.outage.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                return Err(err(
                    fault.loc,
                    "a fault has exactly one of `set`, `ramp`, `no_data`, `outage`".to_string(),
                ));
            }
            if (fault.set.is_some() || fault.ramp.is_some()) && fault.sli.is_none() {
                return Err(err(
                    fault.loc,
                    "`set` and `ramp` need the `sli` they change".to_string(),
                ));
            }
        }
        let ids = all_step_and_item_ids(plan);
        let known: Vec<&str> = ids.iter().copied().collect();
        for (id, outcome) in &self.outcomes {
            if !ids.contains(id.as_str()) {
                return Err(err(
                    outcome.loc,
                    unknown("step, checklist item or playbook action", id, &known),
                ));
            }
        }
        for p in self.people.never_ack.iter().chain(&self.people.absent) {
            person(p)?;
        }
        for (n, action) in self.actions.iter().enumerate() {
            action.input(n).map_err(|m| err(action.loc, m))?;
            let p = [
                action.sign_off.as_ref().map(|a| &a.person),
                action.waive.as_ref().map(|a| &a.person),
                action.roll_call.as_ref().map(|a| &a.person),
                action.decide.as_ref().map(|a| &a.person),
                action.stop_the_line.as_ref().map(|a| &a.person),
                action.pause.as_ref().map(|a| &a.person),
                action.resume.as_ref().map(|a| &a.person),
                action.promote.as_ref().map(|a| &a.person),
                action.rollback.as_ref().map(|a| &a.person),
                action.ack.as_ref().map(|a| &a.person),
                action.resolve.as_ref().map(|a| &a.person),
            ];
            for person_at in p.into_iter().flatten() {
                person(person_at)?;
            }
        }
        Ok(())
    }
}

/// The parser's message without its own location prefix and source snippet (the error
/// carries the location already).
fn plain_message(text: &str) -> String {
    let first = text.lines().next().unwrap_or(text).trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.split_once(": ") {
        Some((place, rest)) if place.starts_with("line ") && place.contains(" column ") => {
            rest.to_string()
        }
        _ => first.to_string(),
    }
}

/// "no X `wrong`" plus the closest known name, or the list of known names.
fn unknown(what: &str, wrong: &str, known: &[&str]) -> String {
    match plan::suggest::did_you_mean(wrong, known.iter().copied()) {
        Some(close) => format!("no {what} `{wrong}` in the plan; did you mean `{close}`?"),
        None => format!(
            "no {what} `{wrong}` in the plan; it has: {}",
            known.join(", ")
        ),
    }
}

fn all_step_and_item_ids(plan: &plan::Plan) -> std::collections::BTreeSet<&str> {
    let mut ids = std::collections::BTreeSet::new();
    for phase in &plan.timeline {
        for s in &phase.steps {
            ids.insert(s.id.as_str());
        }
    }
    if let Some(r) = &plan.ramp {
        for s in &r.rollback.steps {
            ids.insert(s.id.as_str());
        }
    }
    for c in &plan.checklists {
        for i in &c.items {
            ids.insert(i.id.as_str());
        }
    }
    for p in &plan.playbooks {
        for a in &p.actions {
            ids.insert(a.id.as_str());
        }
    }
    ids
}
