//! Rehearsal: runs a plan against a scenario on simulated time, as fast as it can.
//!
//! The driver is pure like the engine: it jumps the clock to the next deadline (the
//! engine's `poll_timeout`, the next scenario event, the next answer it owes), answers
//! every effect from the scenario — commands and probes are never executed — and plays
//! the people through [`crate::crew`]. The same plan and scenario give the same log and
//! report, byte for byte.

pub mod report;
pub mod scenario;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;
use plan::{Offset, Plan};

use crate::crew::{Crew, CrewOptions};
use crate::record::{Decision, RecordBody};
use crate::state::RunStatus;
use crate::{Effect, EffectOutcome, Engine, Input, Reading, Record, Sample, add_ms, ms_between};
pub use report::Report;
pub use scenario::{Scenario, ScenarioError, When};

/// The run id every rehearsal uses, so logs of the same inputs are identical.
pub const REHEARSAL_RUN_ID: &str = "rehearsal";
/// A rehearsal that needs more steps than this is stuck in a loop: a bug.
const MAX_STEPS: usize = 5_000_000;
/// The default rehearsal starts this long before the plan's earliest item.
const START_LEAD_MS: i64 = 3_600_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RehearsalError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Engine(#[from] crate::EngineError),
    #[error("the rehearsal did not settle after {0} steps; this is a bug")]
    Runaway(usize),
}

/// A finished rehearsal: its log and what a person reads of it.
#[derive(Debug, Clone)]
pub struct Rehearsal {
    pub log: Vec<Record>,
    pub report: Report,
}

/// A thing the driver will do at a time: answer an effect, or act as a person.
struct Queued {
    input: Input,
    /// A person's input, given only if still wanted when its time comes.
    by_crew: bool,
}

/// A value of an SLI for one version: how it develops.
#[derive(Debug, Clone)]
struct Series {
    baseline: f64,
}

struct Driver<'a> {
    plan: Arc<Plan>,
    scenario: &'a Scenario,
    engine: Engine,
    log: Vec<Record>,
    now: Timestamp,
    queue: BTreeMap<(Timestamp, u64), Queued>,
    seq: u64,
    /// Scenario actions not yet delivered (by index).
    actions_left: BTreeSet<usize>,
    /// The plan's people.
    crew: Crew,
    /// Attempts per step or item, for outcomes that fail only the first few times.
    attempts: BTreeMap<String, u32>,
    stage_entered: BTreeMap<u8, Timestamp>,
    router_failures_used: Vec<u32>,
    /// SLI → version → its series.
    baselines: BTreeMap<String, BTreeMap<String, Series>>,
    derived_baselines: Vec<String>,
    until: Timestamp,
}

/// Rehearses `plan` against `scenario`. `env` overrides the scenario's environment.
pub fn rehearse(
    plan: Arc<Plan>,
    scenario: &Scenario,
    scenario_name: &str,
    env: Option<&str>,
) -> Result<Rehearsal, RehearsalError> {
    scenario.check(scenario_name, &plan)?;
    let env = env
        .map(str::to_string)
        .or_else(|| scenario.env.as_ref().map(|e| e.value.clone()))
        .or_else(|| plan.environments.first().map(|e| e.id.value.clone()))
        .unwrap_or_else(|| "default".to_string());
    let engine = Engine::new(Arc::clone(&plan), &env, REHEARSAL_RUN_ID)?;
    let t0 = engine.state().t0_planned;
    let tz = plan.t0.0.time_zone().clone();
    let start = scenario
        .start
        .as_ref()
        .map(|s| s.value)
        .unwrap_or_else(|| earliest_offset(&plan));
    let start = start.resolve(t0, &tz);
    let start = if scenario.start.is_some() {
        start
    } else {
        add_ms(start, -START_LEAD_MS)
    };
    let until_offset = scenario
        .until
        .as_ref()
        .map(|u| u.value)
        .unwrap_or_else(|| latest_offset(&plan));
    let crew = Crew::new(Arc::clone(&plan), crew_options(scenario));
    let mut driver = Driver {
        scenario,
        engine,
        log: Vec::new(),
        now: start,
        queue: BTreeMap::new(),
        seq: 0,
        actions_left: (0..scenario.actions.len()).collect(),
        crew,
        attempts: BTreeMap::new(),
        stage_entered: BTreeMap::new(),
        router_failures_used: vec![0; scenario.router.failures.len()],
        baselines: BTreeMap::new(),
        derived_baselines: Vec::new(),
        until: start,
        plan,
    };
    driver.until = driver.resolve_until(until_offset);
    driver.derive_baselines();
    driver.run()?;
    let report = report::build(
        &driver.plan,
        scenario,
        scenario_name,
        &driver.engine,
        &driver.log,
        &driver.derived_baselines,
        driver.until,
    );
    Ok(Rehearsal {
        log: driver.log,
        report,
    })
}

/// The people as the scenario has them behave.
fn crew_options(scenario: &Scenario) -> CrewOptions {
    let names = |list: &[plan::At<String>]| list.iter().map(|p| p.value.clone()).collect();
    let defaults = CrewOptions::default();
    CrewOptions {
        sign_offs: scenario.people.sign_offs,
        go: scenario.people.go,
        approve: scenario.people.approve,
        ack_after_ms: scenario
            .people
            .ack_after
            .map(|d| d.millis())
            .unwrap_or(defaults.ack_after_ms),
        absent: names(&scenario.people.absent),
        never_ack: names(&scenario.people.never_ack),
        withhold: names(&scenario.people.withhold),
        // A gate the scenario decides is left to it.
        decided_elsewhere: scenario
            .actions
            .iter()
            .filter_map(|a| a.decide.as_ref().map(|d| d.gate.clone()))
            .collect(),
        ..defaults
    }
}

/// The earliest offset the plan schedules anything at (checklists, messages, steps).
fn earliest_offset(plan: &Plan) -> Offset {
    let mut offsets: Vec<Offset> = Vec::new();
    offsets.extend(plan.checklists.iter().map(|c| c.due.value));
    offsets.extend(plan.timeline.iter().map(|p| p.window.start));
    offsets.extend(
        plan.timeline
            .iter()
            .flat_map(|p| p.steps.iter().map(|s| s.at.value)),
    );
    if let Some(comms) = &plan.comms {
        offsets.extend(comms.messages.iter().map(|m| m.at.value));
    }
    offsets
        .into_iter()
        .min_by_key(|o| o.approx_millis())
        .unwrap_or(Offset::ZERO)
        .min(Offset::ZERO)
}

/// The latest offset the plan schedules anything at, plus a day.
fn latest_offset(plan: &Plan) -> Offset {
    let mut offsets: Vec<Offset> = vec![Offset::ZERO];
    offsets.extend(plan.followups.iter().map(|f| f.due.value));
    offsets.extend(plan.success.iter().map(|s| s.at.value));
    offsets.extend(plan.timeline.iter().map(|p| p.window.end));
    if let Some(comms) = &plan.comms {
        offsets.extend(comms.messages.iter().map(|m| m.at.value));
    }
    if let Some(ramp) = &plan.ramp {
        let total: u64 = ramp.stages.iter().map(|s| s.hold.millis()).sum();
        let ramp_end = Offset {
            months: ramp.start.months,
            millis: ramp.start.millis + total as i64,
        };
        offsets.push(ramp_end);
        offsets.extend(
            ramp.stages
                .iter()
                .filter_map(|s| s.not_before.as_ref().map(|n| n.value)),
        );
    }
    let last = offsets
        .into_iter()
        .max_by_key(|o| o.approx_millis())
        .unwrap_or(Offset::ZERO);
    Offset {
        months: last.months,
        millis: last.millis + 86_400_000,
    }
}

impl Driver<'_> {
    fn resolve_until(&self, offset: Offset) -> Timestamp {
        let tz = self.plan.t0.0.time_zone().clone();
        offset.resolve(self.engine.state().t0_planned, &tz)
    }

    /// A time of the scenario, or none while it cannot be known yet (T0 not decided, the
    /// stage not reached).
    fn when(&self, when: &When) -> Option<Timestamp> {
        let tz = self.plan.t0.0.time_zone();
        let state = self.engine.state();
        match when {
            When::Offset(o) if o.approx_millis() <= 0 => Some(o.resolve(state.t0_planned, tz)),
            When::Offset(o) => match state.t0_actual {
                Some(t0) => Some(o.resolve(t0, tz)),
                // Before "go" an offset after T0 is not due yet — unless the run will
                // never have a T0.
                None if state.status == RunStatus::Running
                    || state.status == RunStatus::NotStarted =>
                {
                    None
                }
                None => Some(o.resolve(state.t0_planned, tz)),
            },
            When::Stage { weight, after } => self
                .stage_entered
                .get(weight)
                .map(|t| add_ms(*t, after.millis() as i64)),
        }
    }

    fn enqueue(&mut self, at: Timestamp, input: Input) {
        self.seq += 1;
        self.queue.insert(
            (at.max(self.now), self.seq),
            Queued {
                input,
                by_crew: false,
            },
        );
    }

    fn handle(&mut self, input: Input) {
        let records = self.engine.handle(self.now, input);
        self.react(&records);
        self.log.extend(records);
    }

    fn run(&mut self) -> Result<(), RehearsalError> {
        self.handle(Input::Start);
        for _ in 0..MAX_STEPS {
            let next = [
                self.queue.keys().next().map(|(t, _)| *t),
                self.engine.poll_timeout(),
                self.next_action_time(),
                self.crew.next_due(self.engine.state(), self.now),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { return Ok(()) };
            if next > self.until {
                return Ok(());
            }
            self.now = self.now.max(next);
            // 1. answers and people the driver owes, in the order it queued them;
            while let Some(entry) = self.queue.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let queued = entry.remove();
                // A person does not acknowledge a page someone else already took.
                if queued.by_crew && !self.crew.still_wanted(&queued.input, self.engine.state()) {
                    continue;
                }
                self.handle(queued.input);
            }
            // 2. the scenario's own actions;
            let actions_due = self.next_action_time().is_some_and(|t| t <= self.now);
            for n in if actions_due {
                self.actions_left.clone()
            } else {
                BTreeSet::new()
            } {
                let action = &self.scenario.actions[n];
                if self.action_time(action).is_some_and(|t| t <= self.now) {
                    self.actions_left.remove(&n);
                    // Checked by `Scenario::check`.
                    if let Ok(input) = action.input(n) {
                        self.handle(input);
                    }
                }
            }
            // 3. people acting of their own accord (owners signing off what is due);
            for input in self.crew.due(self.engine.state(), self.now) {
                self.handle(input);
            }
            // 4. time itself.
            if self.engine.poll_timeout().is_some_and(|t| t <= self.now) {
                self.handle(Input::Tick);
            }
        }
        Err(RehearsalError::Runaway(MAX_STEPS))
    }

    fn next_action_time(&self) -> Option<Timestamp> {
        self.actions_left
            .iter()
            .filter_map(|n| self.action_time(&self.scenario.actions[*n]))
            .min()
    }

    /// When a scenario action happens. A decision at a gate is timed from the planned T0:
    /// it is what sets the actual one.
    fn action_time(&self, action: &scenario::Action) -> Option<Timestamp> {
        match (&action.decide, &action.at.value) {
            (Some(_), When::Offset(o)) => {
                Some(o.resolve(self.engine.state().t0_planned, self.plan.t0.0.time_zone()))
            }
            _ => self.when(&action.at),
        }
    }

    /// Answers what the engine asked for and plays the people it called on, record by
    /// record: an effect's answer first, then what people do about it.
    fn react(&mut self, records: &[Record]) {
        for record in records {
            match &record.body {
                RecordBody::Effect(request) => self.answer(request.id, &request.effect),
                RecordBody::Decision(Decision::StageEntered { weight, .. }) => {
                    self.stage_entered.entry(*weight).or_insert(self.now);
                }
                _ => {}
            }
            for planned in self.crew.answer(record, self.engine.state(), self.now) {
                self.seq += 1;
                self.queue.insert(
                    (planned.at.max(self.now), self.seq),
                    Queued {
                        input: planned.input,
                        by_crew: true,
                    },
                );
            }
        }
    }

    fn answer(&mut self, id: u64, effect: &Effect) {
        let now = self.now;
        match effect {
            Effect::RunCommand { step, .. } => {
                let outcome = self.outcome_for(step);
                self.enqueue(now, Input::EffectResult { id, outcome });
            }
            Effect::RunProbe { target, .. } => {
                let outcome = self.outcome_for(target);
                self.enqueue(now, Input::EffectResult { id, outcome });
            }
            Effect::SetWeights { weights, .. } => {
                let delay = self
                    .scenario
                    .router
                    .delay
                    .map(|d| d.millis() as i64)
                    .unwrap_or(0);
                let mut failure = None;
                for (f, spec) in self.scenario.router.failures.iter().enumerate() {
                    if self.router_failures_used[f] < spec.count
                        && self.when(&spec.from).is_some_and(|t| t <= now)
                    {
                        self.router_failures_used[f] += 1;
                        failure = Some(
                            spec.reason
                                .clone()
                                .unwrap_or_else(|| "router refused the change".to_string()),
                        );
                        break;
                    }
                }
                let outcome = match failure {
                    Some(reason) => EffectOutcome::Failed {
                        reason,
                        output: None,
                    },
                    None => EffectOutcome::Weights {
                        weights: weights.clone(),
                    },
                };
                self.enqueue(add_ms(now, delay), Input::EffectResult { id, outcome });
            }
            Effect::QueryMetrics { slis } => {
                let samples = slis
                    .iter()
                    .map(|q| Sample {
                        sli: q.sli.clone(),
                        version: q.version.clone(),
                        reading: self.reading(&q.sli, &q.version),
                    })
                    .collect();
                self.enqueue(
                    now,
                    Input::MetricSamples {
                        query: Some(id),
                        samples,
                    },
                );
            }
            Effect::SendMessage { .. } | Effect::UpdateStatusPage { .. } => {
                self.enqueue(
                    now,
                    Input::EffectResult {
                        id,
                        outcome: EffectOutcome::Done { output: None },
                    },
                );
            }
            Effect::Page { .. } => {
                self.enqueue(
                    now,
                    Input::EffectResult {
                        id,
                        outcome: EffectOutcome::Done { output: None },
                    },
                );
            }
        }
    }

    fn outcome_for(&mut self, id: &str) -> EffectOutcome {
        let n = self.attempts.entry(id.to_string()).or_insert(0);
        *n += 1;
        match self.scenario.outcomes.get(id) {
            Some(o) if o.times.is_none_or(|t| *n <= t) => EffectOutcome::Failed {
                reason: o.fail.clone(),
                output: None,
            },
            _ => EffectOutcome::Rehearsed,
        }
    }

    // === metrics ===

    /// Healthy baselines for SLIs the scenario leaves out: a value every threshold of the
    /// plan calls good.
    fn derive_baselines(&mut self) {
        let mut below: BTreeMap<String, f64> = BTreeMap::new();
        let mut above: BTreeMap<String, f64> = BTreeMap::new();
        let mut note = |c: &plan::Condition, good_when_true: bool| {
            let upper = c.comparison.is_upper_bound();
            // A gate `x < t` (good when true) and a rule `x > t` (bad when true) both say
            // "stay below t".
            let stay_below = upper != good_when_true;
            let map = if stay_below { &mut below } else { &mut above };
            let e = map.entry(c.sli.clone()).or_insert(c.threshold.value);
            *e = if stay_below {
                e.min(c.threshold.value)
            } else {
                e.max(c.threshold.value)
            };
        };
        if let Some(rules) = &self.plan.rules {
            for r in &rules.list {
                note(&r.when, false);
            }
        }
        if let Some(ramp) = &self.plan.ramp {
            for s in &ramp.stages {
                for g in &s.gates {
                    if let Some(m) = &g.metric {
                        note(m, true);
                    }
                }
            }
        }
        if let Some(success) = &self.plan.success {
            for c in &success.criteria {
                if let Some(m) = &c.metric {
                    note(m, true);
                }
            }
        }
        // Checklist items and probe steps verified by a metric pass when it holds.
        let verifications = self
            .plan
            .checklists
            .iter()
            .flat_map(|c| c.items.iter().map(|i| &*i.verify))
            .chain(
                self.plan
                    .timeline
                    .iter()
                    .flat_map(|p| p.steps.iter())
                    .chain(self.plan.ramp.iter().flat_map(|r| r.rollback.steps.iter()))
                    .filter_map(|s| s.probe.as_deref()),
            );
        for verify in verifications {
            if let plan::Verify::Metric(m) = verify {
                note(&m.when, true);
            }
        }
        for sli in &self.plan.slis {
            let id = sli.id.value.clone();
            let configured = self.scenario.metrics.baseline.get(&id);
            let value_for = |version: &str| -> Option<f64> {
                match configured.map(|b| &b.value) {
                    Some(scenario::Baseline::All(v)) => Some(v.0),
                    Some(scenario::Baseline::PerVersion(m)) => m.get(version).map(|v| v.0),
                    None => None,
                }
            };
            let derived = match (below.get(&id), above.get(&id)) {
                (Some(b), Some(a)) if a < b => (a + b) / 2.0,
                (Some(b), _) => b / 2.0,
                (None, Some(a)) if sli.unit.value == plan::Unit::Percent => a + (100.0 - a) / 2.0,
                (None, Some(a)) => a * 1.5 + 1.0,
                (None, None) => 0.0,
            };
            let mut used_derived = false;
            for version in [self.engine.stable_group(), self.engine.canary_group()] {
                let value = value_for(version).unwrap_or_else(|| {
                    used_derived = true;
                    derived
                });
                self.baselines
                    .entry(id.clone())
                    .or_default()
                    .insert(version.to_string(), Series { baseline: value });
            }
            // SLIs no rule, gate or criterion judges are read as 0 and not worth listing.
            let judged = below.contains_key(&id) || above.contains_key(&id);
            if used_derived && judged {
                self.derived_baselines
                    .push(format!("{id} = {derived}{}", sli.unit.value));
            }
        }
    }

    fn reading(&self, sli: &str, version: &str) -> Reading {
        let now = self.now;
        let mut value = self
            .baselines
            .get(sli)
            .and_then(|m| m.get(version))
            .map(|s| s.baseline)
            .unwrap_or(0.0);
        let canary = self.engine.canary_group();
        for fault in &self.scenario.metrics.faults {
            let Some(from) = self.when(&fault.at) else {
                continue;
            };
            if from > now {
                continue;
            }
            if let Some(until) = &fault.until
                && self.when(until).is_some_and(|u| u <= now)
            {
                continue;
            }
            if let Some(reason) = &fault.outage {
                return Reading::Error {
                    reason: reason.clone(),
                };
            }
            if let Some(no_data) = &fault.no_data {
                if no_data
                    .iter()
                    .any(|s| s.as_str() == sli || s.as_str() == "all")
                {
                    return Reading::NoData {
                        reason: "no series (scenario)".to_string(),
                    };
                }
                continue;
            }
            let applies = fault.sli.as_ref().is_some_and(|s| s.as_str() == sli)
                && fault.version.as_deref().unwrap_or(canary) == version;
            if !applies {
                continue;
            }
            if let Some(v) = fault.set {
                value = v.0;
            }
            if let Some(ramp) = &fault.ramp {
                let over = ramp.over.millis().max(1) as f64;
                let progress = (ms_between(from, now) as f64 / over).clamp(0.0, 1.0);
                value += (ramp.to.0 - value) * progress;
            }
        }
        Reading::Value(value)
    }
}
