//! The run as a pure state machine: inputs in, records out.
//!
//! [`Engine`] holds the state of one run of a plan. The shell (live) or the rehearsal
//! driver (simulated) feeds it [`Input`]s with the time they happened; it returns the
//! [`Record`]s to append to the run's log — the accepted input (or its refusal and why),
//! then every decision and every effect request it caused — and says through
//! [`Engine::poll_timeout`] when it next needs to be woken with [`Input::Tick`].
//!
//! **Architecture Invariant:** the engine does no I/O, reads no clock, uses no randomness
//! and iterates no hash map. The same inputs at the same times give the same records,
//! byte for byte; [`Engine::replay`] rebuilds a run from its log and checks exactly that.
//!
//! **Architecture Invariant:** an inconclusive reading (no data, a source error) is never
//! a pass: a rule applies its `no_data` policy, a stage gate stays closed.
//!
//! What lives where:
//! - [`input`], [`effect`], [`record`]: the closed enums of what comes in and goes out.
//! - [`state`]: the serializable projection shown by `status` and the API.
//! - [`rules`]: Prometheus alerting semantics for one rule.
//! - `timeline` (checklists, steps, gates), `ramp` (stages, rules, rollback, alerts,
//!   triggers), `comms` (messages, pages, playbooks, cadences, success, follow-ups).
//! - [`crew`]: the plan's people, played (by the rehearsal and the demo).
//! - [`rehearsal`]: a scenario format and a driver that runs a plan on simulated time.

pub mod crew;
pub mod effect;
pub mod input;
pub mod record;
pub mod rehearsal;
pub mod rules;
pub mod state;

mod comms;
mod measure;
mod ramp;
mod timeline;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use plan::{Authority, Offset, Plan};

pub use effect::{Effect, EffectRequest, MetricQuery};
pub use input::{AlertStatus, EffectOutcome, Input, Reading, Resolution, Sample, Weights};
pub use record::{Actor, Decision, Judgement, Record, RecordBody, Verdict};
pub use state::RunState;

use state::*;

/// Why a run cannot be set up for this plan and environment.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("the plan has no environment `{env}`; it has: {known}")]
    UnknownEnvironment { env: String, known: String },
}

/// Why a log does not replay to the same records.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("record {seq} is not an input, but the record before it ends what its input caused")]
    NotAnInput { seq: u64 },
    #[error(
        "record {seq} differs from what the engine produces now:\n  logged:   {logged}\n  produced: {produced}"
    )]
    Mismatch {
        seq: u64,
        logged: String,
        produced: String,
    },
    #[error("the log ends at record {seq}, but the engine also produces: {produced}")]
    Truncated { seq: u64, produced: String },
}

/// How long the engine waits beyond an effect's own timeout before counting it as failed.
const EFFECT_GRACE_MS: i64 = 5_000;
const DEFAULT_COMMAND_TIMEOUT_MS: u64 = 600_000;
const DEFAULT_PROBE_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_ROUTER_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_METRIC_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_EVALUATION_MS: u64 = 30_000;
const DEFAULT_ACK_MS: u64 = 300_000;
const MESSAGE_TIMEOUT_MS: u64 = 30_000;

/// One run of a plan. See the crate documentation.
pub struct Engine {
    plan: Arc<Plan>,
    env: String,
    tz: TimeZone,
    vars: BTreeMap<String, String>,
    metric_source: Option<String>,
    rehearse_only: BTreeSet<String>,
    /// Timeline steps in the order they run: (phase index, step index).
    order: Vec<(usize, usize)>,
    /// Position in `order` of the gate whose "go" sets T0.
    t0_gate: Option<usize>,
    t0_gate_offset: Offset,
    state: RunState,
    /// The plan's facts for message templates; the run's part is filled per message.
    template_base: plan::templates::TemplateContext,
    /// Every query the run may need, by SLI and version, built once.
    queries: BTreeMap<String, BTreeMap<String, Result<MetricQuery, String>>>,
    /// SLI ids and version names, by the indices `Purpose::Metrics` keeps.
    sli_names: Vec<String>,
    version_names: Vec<String>,
    /// Version groups: the one that keeps the rest of the traffic, the one ramped up.
    stable: String,
    canary: String,
    /// Checklist items verified by a metric.
    measured_items: Vec<measure::MeasuredItem>,
    /// How long after a stage's weights are confirmed no-data outcomes are not acted upon.
    warmup_ms: u64,
    /// The last time progress was made; deadlines at or before it have been seen.
    /// Not part of the state: a tick that changes nothing is not logged.
    last_progress: Option<Timestamp>,
    /// The time of the latest record; an input dated before it is refused.
    last_at: Option<Timestamp>,
}

// The shell keeps the engine in an async task: it must be `Send`.
const _: fn() = || {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Engine>();
};

/// Records produced while handling one input.
pub(crate) struct Out {
    pub now: Timestamp,
    pub records: Vec<Record>,
}

impl Out {
    fn decide(&mut self, actor: Actor, decision: Decision) {
        self.records.push(Record {
            at: self.now,
            actor,
            body: RecordBody::Decision(decision),
        });
    }
}

pub(crate) fn add_ms(t: Timestamp, ms: i64) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond().saturating_add(ms)).unwrap_or(if ms > 0 {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    })
}

pub(crate) fn ms_between(from: Timestamp, to: Timestamp) -> i64 {
    to.as_millisecond() - from.as_millisecond()
}

fn ms(d: &plan::Dur) -> u64 {
    d.millis()
}

impl Engine {
    /// Sets up a run of `plan` in environment `env`. Nothing happens until `Input::Start`.
    pub fn new(plan: Arc<Plan>, env: &str, run_id: &str) -> Result<Engine, EngineError> {
        let environment = plan.environments.iter().find(|e| e.id.as_str() == env);
        if environment.is_none() && !plan.environments.is_empty() {
            let known: Vec<&str> = plan.environments.iter().map(|e| e.id.as_str()).collect();
            return Err(EngineError::UnknownEnvironment {
                env: env.to_string(),
                known: known.join(", "),
            });
        }
        let vars: BTreeMap<String, String> = environment
            .map(|e| {
                e.vars
                    .iter()
                    .map(|(k, v)| (k.clone(), v.value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let metric_source = match environment {
            Some(environment) => plan.metric_source_of(environment),
            // A plan without environments judges with its only source, if it has one.
            None => (plan.metric_sources.len() == 1).then(|| &plan.metric_sources[0]),
        }
        .map(|source| source.id.value.clone());
        let rehearse_only = environment
            .map(|e| e.rehearse_only.iter().map(|s| s.value.clone()).collect())
            .unwrap_or_default();
        let tz = plan.t0.0.time_zone().clone();
        let t0_planned = plan.t0.0.timestamp();

        let mut order: Vec<(usize, usize)> = Vec::new();
        for (p, phase) in plan.timeline.iter().enumerate() {
            for s in 0..phase.steps.len() {
                order.push((p, s));
            }
        }
        // Stable: steps at the same offset keep the plan's order.
        order.sort_by_key(|&(p, s)| plan.timeline[p].steps[s].at.approx_millis());
        let t0_gate = order.iter().position(|&(p, s)| {
            plan.timeline[p].steps[s]
                .gate
                .as_ref()
                .is_some_and(|g| g.sets_t0)
        });
        let t0_gate_offset = t0_gate
            .map(|i| {
                let (p, s) = order[i];
                plan.timeline[p].steps[s].at.value
            })
            .unwrap_or(Offset::ZERO);

        let steps = order
            .iter()
            .map(|&(p, s)| {
                let step = &plan.timeline[p].steps[s];
                new_step_state(step, Some(plan.timeline[p].id.value.clone()))
            })
            .collect();
        let checklists = plan
            .checklists
            .iter()
            .map(|c| ChecklistState {
                id: c.id.value.clone(),
                title: c.title.value.clone(),
                due_at: None,
                overdue_noted: false,
                complete: c.items.is_empty(),
                items: c
                    .items
                    .iter()
                    .map(|i| ItemState {
                        id: i.id.value.clone(),
                        title: i.title.value.clone(),
                        owner: i.owner.value.clone(),
                        manual: i.verify.is_manual(),
                        status: ItemStatus::Open,
                        by: None,
                        at: None,
                        reason: None,
                        inconclusive: false,
                    })
                    .collect(),
            })
            .collect();
        let rules = plan
            .rules
            .as_ref()
            .map(|r| {
                r.list
                    .iter()
                    .map(|rule| RuleState {
                        id: rule.id.value.clone(),
                        severity: severity_name(rule.severity.value).to_string(),
                        evaluable: true,
                        active: false,
                        tracker: Default::default(),
                        alert_firing: false,
                        fired: 0,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (cadences, dated) = plan
            .comms
            .as_ref()
            .map(|c| {
                (
                    c.cadences
                        .iter()
                        .map(|k| CadenceState {
                            id: k.id.value.clone(),
                            next_at: None,
                            last_sent: None,
                            sent: 0,
                        })
                        .collect(),
                    c.messages
                        .iter()
                        .map(|m| DatedState {
                            id: m.id.value.clone(),
                            at: None,
                            done: false,
                        })
                        .collect(),
                )
            })
            .unwrap_or_default();
        let followups = plan
            .followups
            .iter()
            .map(|f| FollowUpState {
                id: f.id.value.clone(),
                title: f.title.value.clone(),
                owner: f.owner.value.clone(),
                due_at: None,
                reminded: false,
                overdue: false,
                done_by: None,
                done_at: None,
            })
            .collect();

        let state = RunState {
            run_id: run_id.to_string(),
            plan: plan.meta.name.value.clone(),
            env: env.to_string(),
            status: RunStatus::NotStarted,
            started_at: None,
            ended_at: None,
            end_reason: None,
            t0_planned,
            t0_actual: None,
            phase: None,
            phases_started: BTreeSet::new(),
            checklists,
            steps,
            cursor: 0,
            freezes: Vec::new(),
            ramp: RampState {
                status: RampStatus::NotStarted,
                stage: None,
                weight: 0,
                entered_at: None,
                warmup_until: None,
                warmup_over: false,
                hold_until: None,
                hold_over: false,
                approvals: BTreeSet::new(),
                awaiting_approval: None,
                last_gates: None,
                gates_waived: BTreeSet::new(),
                paused: None,
                effect: None,
                completed_at: None,
            },
            weights: None,
            rules,
            next_evaluation: None,
            latest: BTreeMap::new(),
            since_t0: BTreeMap::new(),
            triggers_pulled: Vec::new(),
            alerts: BTreeMap::new(),
            playbooks: Vec::new(),
            pages: Vec::new(),
            rollback: None,
            success: SuccessState::default(),
            followups,
            cadences,
            dated,
            messages_sent: 0,
            incident: None,
            next_effect_id: 1,
            pending: BTreeMap::new(),
        };
        let template_base = plan::templates::TemplateContext::for_plan(&plan);
        let mut versions: BTreeSet<String> =
            BTreeSet::from(["stable".to_string(), "canary".to_string()]);
        if let Some(ramp) = &plan.ramp {
            versions.extend(
                ramp.stable
                    .iter()
                    .chain(ramp.canary.iter())
                    .map(|v| v.value.clone()),
            );
        }
        if let Some(rules) = &plan.rules {
            versions.extend(
                rules
                    .list
                    .iter()
                    .filter_map(|r| r.version.as_ref().map(|v| v.value.clone())),
            );
        }
        let metric_version = |v: &plan::Verify| match v {
            plan::Verify::Metric(m) => m.version.as_ref().map(|v| v.value.clone()),
            _ => None,
        };
        versions.extend(
            plan.checklists
                .iter()
                .flat_map(|c| c.items.iter())
                .filter_map(|i| metric_version(&i.verify)),
        );
        versions.extend(
            plan.timeline
                .iter()
                .flat_map(|p| p.steps.iter())
                .chain(plan.ramp.iter().flat_map(|r| r.rollback.steps.iter()))
                .filter_map(|s| s.probe.as_ref().and_then(|p| metric_version(p))),
        );
        let mut queries = BTreeMap::new();
        for sli in &plan.slis {
            for version in &versions {
                let q = ramp::build_query(
                    &plan,
                    env,
                    metric_source.as_deref(),
                    &vars,
                    &sli.id.value,
                    version,
                );
                queries
                    .entry(sli.id.value.clone())
                    .or_insert_with(BTreeMap::new)
                    .insert(version.clone(), q);
            }
        }
        let group = |g: Option<&plan::Id>, default: &str| {
            g.map(|g| g.value.clone())
                .unwrap_or_else(|| default.to_string())
        };
        let stable = group(plan.ramp.as_ref().and_then(|r| r.stable.as_ref()), "stable");
        let canary = group(plan.ramp.as_ref().and_then(|r| r.canary.as_ref()), "canary");
        let sli_names: Vec<String> = plan.slis.iter().map(|s| s.id.value.clone()).collect();
        let version_names: Vec<String> = versions.into_iter().collect();
        let mut measured_items = Vec::new();
        for (c, checklist) in plan.checklists.iter().enumerate() {
            for (i, item) in checklist.items.iter().enumerate() {
                let plan::Verify::Metric(m) = &*item.verify else {
                    continue;
                };
                let version = m
                    .version
                    .as_ref()
                    .map(|v| v.value.as_str())
                    .unwrap_or(&canary);
                let key = match queries.get(&m.when.sli).and_then(|q| q.get(version)) {
                    Some(Ok(_)) => {
                        let s = sli_names.iter().position(|x| *x == m.when.sli);
                        let v = version_names.iter().position(|x| x == version);
                        match (s, v) {
                            (Some(s), Some(v)) => Ok((s as u16, v as u16)),
                            _ => Err(format!("no SLI `{}` in the plan", m.when.sli)),
                        }
                    }
                    Some(Err(reason)) => Err(format!(
                        "cannot be verified in environment `{env}`: {reason}"
                    )),
                    None => Err(format!(
                        "cannot be verified in environment `{env}`: no SLI `{}` in the plan",
                        m.when.sli
                    )),
                };
                measured_items.push(measure::MeasuredItem {
                    checklist: c,
                    item: i,
                    key,
                });
            }
        }
        let source_window = metric_source
            .as_deref()
            .and_then(|id| plan.metric_sources.iter().find(|m| m.id.as_str() == id))
            .and_then(|m| m.window());
        let warmup_ms = plan
            .ramp
            .as_ref()
            .and_then(|r| r.warmup.as_ref().map(|w| w.millis()))
            .or(source_window.map(|w| w.millis()))
            .unwrap_or(0);
        Ok(Engine {
            sli_names,
            version_names,
            stable,
            canary,
            measured_items,
            warmup_ms,
            queries,
            template_base,
            plan,
            env: env.to_string(),
            tz,
            vars,
            metric_source,
            rehearse_only,
            order,
            t0_gate,
            t0_gate_offset,
            state,
            last_progress: None,
            last_at: None,
        })
    }

    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// Effects requested but with no result recorded. After a crash the shell retries the
    /// idempotent ones (same id) and reports the others with `Input::EffectOutcomeUnknown`;
    /// [`Engine::restart_inputs`] says what to hand the engine first.
    pub fn pending_effects(&self) -> Vec<EffectRequest> {
        self.state
            .pending
            .values()
            .map(|p| match &p.purpose {
                Purpose::Metrics { keys, .. } => {
                    let mut request = p.request.clone();
                    request.effect = Effect::QueryMetrics {
                        slis: keys
                            .iter()
                            .filter_map(|k| self.metric_query(*k).cloned())
                            .collect(),
                    };
                    request
                }
                _ => p.request.clone(),
            })
            .collect()
    }

    /// What a shell that restarted hands the engine first: `Restarted`, naming the
    /// idempotent effects it runs again (every effect still out gets its full time again,
    /// so the downtime fails none of them), then `EffectOutcomeUnknown` for each of the
    /// others (a person settles those).
    pub fn restart_inputs(&self) -> Vec<Input> {
        let pending = self.pending_effects();
        let retrying: Vec<u64> = pending
            .iter()
            .filter(|p| p.idempotent)
            .map(|p| p.id)
            .collect();
        let mut inputs = Vec::new();
        if !pending.is_empty() {
            inputs.push(Input::Restarted { retrying });
        }
        inputs.extend(
            pending
                .iter()
                .filter(|p| !p.idempotent)
                .map(|p| Input::EffectOutcomeUnknown { id: p.id }),
        );
        inputs
    }

    /// Applies one input at `now` and returns the records to append to the log, in order.
    /// A tick that finds nothing due returns nothing (and changes nothing).
    pub fn handle(&mut self, now: Timestamp, input: Input) -> Vec<Record> {
        let input = normalize(input);
        let mut out = Out {
            now,
            records: Vec::new(),
        };
        if self.last_at.is_some_and(|last| now < last) {
            if input == Input::Tick {
                return Vec::new();
            }
            let reason = format!(
                "time went backwards: this input is dated {now}, after a record dated {}",
                self.last_at.unwrap_or(now)
            );
            return vec![Record {
                at: now,
                actor: input_actor(&input, None),
                body: RecordBody::Refused { input, reason },
            }];
        }
        if input == Input::Tick {
            if self.state.status == RunStatus::NotStarted {
                return Vec::new();
            }
            self.progress(&mut out);
            self.last_progress = Some(now);
            if !out.records.is_empty() {
                self.last_at = Some(now);
                out.records.insert(
                    0,
                    Record {
                        at: now,
                        actor: Actor::Schedule,
                        body: RecordBody::Input(Input::Tick),
                    },
                );
            }
            return out.records;
        }
        match self.apply(&mut out, &input) {
            Ok(actor) => {
                out.records.insert(
                    0,
                    Record {
                        at: now,
                        actor,
                        body: RecordBody::Input(input),
                    },
                );
                self.progress(&mut out);
                self.last_progress = Some(now);
                self.last_at = Some(now);
                out.records
            }
            Err(reason) => {
                // A refusal is logged too: later inputs may not be dated before it.
                self.last_at = Some(now);
                let actor = input_actor(&input, None);
                vec![Record {
                    at: now,
                    actor,
                    body: RecordBody::Refused { input, reason },
                }]
            }
        }
    }

    /// When the caller must next call `handle(t, Input::Tick)`; none when nothing is due.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let mut next: Option<Timestamp> = None;
        let after = self.last_progress;
        let mut consider = |t: Option<Timestamp>| {
            if let Some(t) = t
                && after.is_none_or(|a| t > a)
                && next.is_none_or(|n| t < n)
            {
                next = Some(t);
            }
        };
        if self.state.status == RunStatus::NotStarted {
            return None;
        }
        for p in self.state.pending.values() {
            consider(p.deadline);
        }
        self.timeline_deadlines(&mut consider);
        self.ramp_deadlines(&mut consider);
        self.comms_deadlines(&mut consider);
        next
    }

    /// Rebuilds a run from its log: re-handles every logged input at its time and checks
    /// that each record produced equals the logged one. Sequence numbers count from 1.
    pub fn replay(
        plan: Arc<Plan>,
        env: &str,
        run_id: &str,
        records: &[Record],
    ) -> Result<Engine, ReplayError> {
        let mut engine = Engine::new(plan, env, run_id)?;
        let mut pos = 0usize;
        while pos < records.len() {
            let record = &records[pos];
            let input = match &record.body {
                RecordBody::Input(input) | RecordBody::Refused { input, .. } => input.clone(),
                _ => {
                    return Err(ReplayError::NotAnInput {
                        seq: pos as u64 + 1,
                    });
                }
            };
            let produced = engine.handle(record.at, input);
            if produced.is_empty() {
                return Err(ReplayError::Mismatch {
                    seq: pos as u64 + 1,
                    logged: to_json(record),
                    produced: "nothing (a tick with nothing due)".to_string(),
                });
            }
            for (k, got) in produced.iter().enumerate() {
                let seq = pos + k;
                match records.get(seq) {
                    None => {
                        return Err(ReplayError::Truncated {
                            seq: seq as u64,
                            produced: to_json(got),
                        });
                    }
                    Some(logged) if logged != got => {
                        return Err(ReplayError::Mismatch {
                            seq: seq as u64 + 1,
                            logged: to_json(logged),
                            produced: to_json(got),
                        });
                    }
                    Some(_) => {}
                }
            }
            pos += produced.len();
        }
        Ok(engine)
    }

    // === helpers shared by the submodules ===

    /// The instant of a plan offset: before the T0 gate from the planned T0, from it on
    /// from the actual T0 (none until "go").
    pub(crate) fn resolve(&self, offset: Offset) -> Option<Timestamp> {
        if self.t0_gate.is_none() || offset < self.t0_gate_offset {
            Some(offset.resolve(self.state.t0_planned, &self.tz))
        } else {
            self.state.t0_actual.map(|t0| offset.resolve(t0, &self.tz))
        }
    }

    /// Like `resolve`, for offsets that always follow the actual T0.
    pub(crate) fn resolve_after_t0(&self, offset: Offset) -> Option<Timestamp> {
        self.state.t0_actual.map(|t0| offset.resolve(t0, &self.tz))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn request(
        &mut self,
        out: &mut Out,
        actor: Actor,
        effect: Effect,
        idempotent: bool,
        timeout_ms: u64,
        purpose: Purpose,
        backstop: bool,
    ) -> u64 {
        let id = self.state.next_effect_id;
        self.state.next_effect_id += 1;
        // A metrics query is kept pending by its keys only: its queries are in the record.
        let stored = match (&purpose, &effect) {
            (Purpose::Metrics { .. }, Effect::QueryMetrics { .. }) => {
                Effect::QueryMetrics { slis: Vec::new() }
            }
            _ => effect.clone(),
        };
        let deadline = backstop.then(|| add_ms(out.now, timeout_ms as i64 + EFFECT_GRACE_MS));
        self.state.pending.insert(
            id,
            PendingEffect {
                request: EffectRequest {
                    id,
                    effect: stored,
                    idempotent,
                    timeout_ms,
                },
                purpose,
                requested_at: out.now,
                deadline,
            },
        );
        let request = EffectRequest {
            id,
            effect,
            idempotent,
            timeout_ms,
        };
        out.records.push(Record {
            at: out.now,
            actor,
            body: RecordBody::Effect(request),
        });
        id
    }

    pub(crate) fn metric_key(&self, sli: &str, version: &str) -> Option<(u16, u16)> {
        let s = self.sli_names.iter().position(|x| x == sli)?;
        let v = self.version_names.iter().position(|x| x == version)?;
        Some((s as u16, v as u16))
    }

    pub(crate) fn metric_query(&self, (s, v): (u16, u16)) -> Option<&MetricQuery> {
        let sli = self.sli_names.get(usize::from(s))?;
        let version = self.version_names.get(usize::from(v))?;
        self.queries.get(sli)?.get(version)?.as_ref().ok()
    }

    pub(crate) fn person_exists(&self, person: &str) -> bool {
        self.plan.people.iter().any(|p| p.id.as_str() == person)
    }

    /// Roles a person holds, as primary or backup, in plan order.
    pub(crate) fn roles_of(&self, person: &str) -> Vec<&plan::Role> {
        self.plan
            .roles
            .iter()
            .filter(|r| {
                r.primary.as_str() == person
                    || r.backup.as_ref().is_some_and(|b| b.as_str() == person)
            })
            .map(|r| &r.value)
            .collect()
    }

    pub(crate) fn holds_role(&self, person: &str, role: &str) -> bool {
        self.roles_of(person).iter().any(|r| r.id.as_str() == role)
    }

    /// The role through which `person` has `authority`, or why they do not.
    pub(crate) fn authority(&self, person: &str, authority: Authority) -> Result<String, String> {
        if !self.person_exists(person) {
            return Err(format!("no person `{person}` in the plan"));
        }
        let roles = self.roles_of(person);
        if let Some(role) = roles
            .iter()
            .find(|r| r.authorities.iter().any(|a| **a == authority))
        {
            return Ok(role.id.value.clone());
        }
        let holders: Vec<&str> = self
            .plan
            .roles
            .iter()
            .filter(|r| r.authorities.iter().any(|a| **a == authority))
            .map(|r| r.id.as_str())
            .collect();
        let mine: Vec<&str> = roles.iter().map(|r| r.id.as_str()).collect();
        Err(format!(
            "`{person}` (roles: {}) lacks the `{}` authority; roles that have it: {}",
            if mine.is_empty() {
                "none".to_string()
            } else {
                mine.join(", ")
            },
            authority_name(authority),
            if holders.is_empty() {
                "none".to_string()
            } else {
                holders.join(", ")
            }
        ))
    }

    /// The first role holding an authority (whom to page about it).
    pub(crate) fn role_with(&self, authority: Authority) -> Option<String> {
        self.plan
            .roles
            .iter()
            .find(|r| r.authorities.iter().any(|a| **a == authority))
            .map(|r| r.id.value.clone())
    }

    pub(crate) fn stable_group(&self) -> &str {
        &self.stable
    }

    pub(crate) fn canary_group(&self) -> &str {
        &self.canary
    }

    pub(crate) fn weights_for(&self, canary_percent: u8) -> Weights {
        let canary = u32::from(canary_percent.min(100));
        BTreeMap::from([
            (self.stable.clone(), 100 - canary),
            (self.canary.clone(), canary),
        ])
    }

    pub(crate) fn router_timeout_ms(&self) -> u64 {
        let env_router = self
            .plan
            .environments
            .iter()
            .find(|e| e.id.as_str() == self.env)
            .and_then(|e| e.router.as_ref().map(|r| r.value.clone()));
        let router = match env_router {
            Some(id) => self.plan.routers.iter().find(|r| r.id.as_str() == id),
            None => self.plan.routers.first(),
        };
        router
            .and_then(|r| r.timeout.as_ref().map(|t| ms(t)))
            .unwrap_or(DEFAULT_ROUTER_TIMEOUT_MS)
    }

    /// Runs every piece of the run that time or the last input made due, until nothing
    /// more happens.
    fn progress(&mut self, out: &mut Out) {
        if self.state.status == RunStatus::NotStarted {
            return;
        }
        for _ in 0..64 {
            let before = out.records.len();
            self.expire_effects(out);
            self.phases(out);
            self.checklists_due(out);
            self.advance_timeline(out);
            self.update_rule_activity(out);
            self.advance_ramp(out);
            self.rollback_progress(out);
            self.evaluation(out);
            self.pages_and_tasks(out);
            self.comms_due(out);
            self.success_and_followups(out);
            self.maybe_finish(out);
            if out.records.len() == before {
                break;
            }
        }
    }

    /// Validates an input and applies it. An error is a refusal: nothing was changed.
    fn apply(&mut self, out: &mut Out, input: &Input) -> Result<Actor, String> {
        if self.state.status == RunStatus::NotStarted && *input != Input::Start {
            return Err("the run has not started; `start` comes first".to_string());
        }
        match input {
            Input::Start => self.on_start(out),
            Input::Tick => Ok(Actor::Schedule),
            Input::EffectResult { id, outcome } => self.on_effect_result(out, *id, outcome),
            Input::EffectOutcomeUnknown { id } => self.on_effect_unknown(out, *id),
            Input::Restarted { retrying } => self.on_restarted(out, retrying),
            Input::MetricSamples { query, samples } => self.on_samples(out, *query, samples),
            Input::Alert {
                name,
                labels,
                status,
                fingerprint,
            } => self.on_alert(out, name, labels, *status, fingerprint),
            Input::SignOff { person, item } => self.on_sign_off(out, person, item),
            Input::Waive {
                person,
                item,
                reason,
            } => self.on_waive(out, person, item, reason),
            Input::RollCallAnswer { person, step } => self.on_roll_call(out, person, step),
            Input::Decide {
                person,
                gate,
                go,
                reason,
            } => self.on_decide(out, person, gate, *go, reason),
            Input::StopTheLine {
                person,
                trigger,
                reason,
            } => self.on_stop_the_line(out, person, trigger, reason),
            Input::Pause { person, reason } => self.on_pause(out, person, reason),
            Input::Resume { person, reason } => self.on_resume(out, person, reason),
            Input::Promote { person, reason } => self.on_promote(out, person, reason),
            Input::Rollback { person, reason } => self.on_manual_rollback(out, person, reason),
            Input::Ack { person, target } => self.on_ack(out, person, target),
            Input::Resolve {
                person,
                target,
                outcome,
            } => self.on_resolve(out, person, target, *outcome),
        }
    }

    fn on_start(&mut self, out: &mut Out) -> Result<Actor, String> {
        if self.state.status != RunStatus::NotStarted {
            return Err("the run has already started".to_string());
        }
        self.state.status = RunStatus::Running;
        self.state.started_at = Some(out.now);
        out.decide(
            Actor::System,
            Decision::RunStarted {
                plan: self.state.plan.clone(),
                env: self.env.clone(),
                t0_planned: self.state.t0_planned,
            },
        );
        if self.t0_gate.is_none() {
            self.state.t0_actual = Some(self.state.t0_planned);
            out.decide(
                Actor::System,
                Decision::Note {
                    text: "no gate sets T0 (`gate: {sets_t0: true}`): T0 is the planned one"
                        .to_string(),
                },
            );
        }
        self.mark_unevaluable_rules(out);
        self.start_checklists(out);
        self.schedule_times(out);
        Ok(Actor::System)
    }

    /// Fills in every due time that can be known now (again after "go").
    pub(crate) fn schedule_times(&mut self, out: &mut Out) {
        for i in 0..self.state.steps.len() {
            if self.state.steps[i].due.is_none() {
                self.state.steps[i].due = self.step_due(i);
            }
        }
        for c in 0..self.state.checklists.len() {
            if self.state.checklists[c].due_at.is_none() {
                self.state.checklists[c].due_at = self.resolve(self.plan.checklists[c].due.value);
            }
        }
        self.schedule_comms(out);
    }

    fn expire_effects(&mut self, out: &mut Out) {
        let expired: Vec<u64> = self
            .state
            .pending
            .iter()
            .filter(|(_, p)| p.deadline.is_some_and(|d| d <= out.now))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(pending) = self.state.pending.remove(&id) {
                out.decide(
                    Actor::System,
                    Decision::EffectTimedOut {
                        id,
                        kind: pending.request.effect.kind().to_string(),
                    },
                );
                let reason = format!("no result within {} ms", pending.request.timeout_ms);
                self.effect_failed(out, Actor::System, id, pending, reason);
            }
        }
    }

    fn on_effect_result(
        &mut self,
        out: &mut Out,
        id: u64,
        outcome: &EffectOutcome,
    ) -> Result<Actor, String> {
        let Some(pending) = self.state.pending.get(&id) else {
            return Err(format!("no effect {id} is waiting for a result"));
        };
        if matches!(pending.purpose, Purpose::Metrics { .. })
            && !matches!(outcome, EffectOutcome::Failed { .. })
        {
            return Err(format!(
                "effect {id} is a metrics query: answer it with `metric_samples` (query: {id}), or report its failure"
            ));
        }
        let actor = match pending.purpose {
            Purpose::StageWeights { .. }
            | Purpose::RollbackWeights
            | Purpose::TrafficStep { .. } => Actor::Router,
            Purpose::Metrics { .. } => Actor::MetricSource,
            Purpose::Step { .. }
            | Purpose::RollbackStep { .. }
            | Purpose::Probe { .. }
            | Purpose::PlaybookCommand { .. } => Actor::Executor,
            Purpose::Message | Purpose::Page | Purpose::StatusPage => Actor::System,
        };
        // Checked above: the effect is pending.
        let pending = self
            .state
            .pending
            .remove(&id)
            .expect("pending effect checked above");
        match outcome {
            EffectOutcome::Failed { reason, .. } => {
                self.effect_failed(out, actor.clone(), id, pending, reason.clone())
            }
            other => self.effect_succeeded(out, actor.clone(), id, pending, other),
        }
        Ok(actor)
    }

    fn on_restarted(&mut self, out: &mut Out, retrying: &[u64]) -> Result<Actor, String> {
        if let Some(id) = retrying.iter().find(|id| {
            self.state
                .pending
                .get(id)
                .is_none_or(|p| !p.request.idempotent)
        }) {
            return Err(format!(
                "effect {id} is not an idempotent effect waiting for a result; only those are retried"
            ));
        }
        // Every effect still out gets its full time again: the retried ones run anew, and
        // the others are about to be reported as of unknown outcome — none of them may fail
        // for the time the shell was down.
        for p in self.state.pending.values_mut() {
            if p.deadline.is_some() {
                p.deadline = Some(add_ms(
                    out.now,
                    p.request.timeout_ms as i64 + EFFECT_GRACE_MS,
                ));
            }
        }
        Ok(Actor::System)
    }

    fn on_effect_unknown(&mut self, out: &mut Out, id: u64) -> Result<Actor, String> {
        let Some(pending) = self.state.pending.get(&id) else {
            return Err(format!("no effect {id} is waiting for a result"));
        };
        if pending.request.idempotent {
            let pending = self
                .state
                .pending
                .remove(&id)
                .expect("pending effect checked above");
            self.effect_failed(
                out,
                Actor::System,
                id,
                pending,
                "outcome unknown after a restart".to_string(),
            );
            return Ok(Actor::System);
        }
        let pending = self
            .state
            .pending
            .remove(&id)
            .expect("pending effect checked above");
        match pending.purpose {
            Purpose::Step { step } => self.step_outcome_unknown(out, false, step),
            Purpose::RollbackStep { step } => self.step_outcome_unknown(out, true, step),
            _ => self.effect_failed(
                out,
                Actor::System,
                id,
                pending,
                "outcome unknown after a restart".to_string(),
            ),
        }
        Ok(Actor::System)
    }

    fn effect_succeeded(
        &mut self,
        out: &mut Out,
        actor: Actor,
        id: u64,
        pending: PendingEffect,
        outcome: &EffectOutcome,
    ) {
        let rehearsed = matches!(outcome, EffectOutcome::Rehearsed);
        match pending.purpose {
            Purpose::Step { step } => self.step_effect_done(out, actor, false, step, id, rehearsed),
            Purpose::RollbackStep { step } => {
                self.step_effect_done(out, actor, true, step, id, rehearsed)
            }
            Purpose::Probe { checklist, item } => self.item_probe_done(out, checklist, item, id),
            Purpose::StageWeights { stage } => self.stage_weights_result(out, id, stage, outcome),
            Purpose::TrafficStep { step } => self.traffic_step_result(out, id, step, outcome),
            Purpose::RollbackWeights => self.rollback_weights_result(out, id, outcome),
            Purpose::PlaybookCommand { run, action } => {
                self.playbook_command_done(out, run, action, None)
            }
            Purpose::Metrics { .. } | Purpose::Message | Purpose::Page | Purpose::StatusPage => {}
        }
    }

    fn effect_failed(
        &mut self,
        out: &mut Out,
        actor: Actor,
        id: u64,
        pending: PendingEffect,
        reason: String,
    ) {
        match pending.purpose {
            Purpose::Step { step } => self.step_effect_failed(out, actor, false, step, id, reason),
            Purpose::RollbackStep { step } => {
                self.step_effect_failed(out, actor, true, step, id, reason)
            }
            Purpose::Probe { checklist, item } => {
                self.item_probe_failed(out, checklist, item, id, reason)
            }
            Purpose::StageWeights { stage } => self.stage_weights_failed(out, id, stage, reason),
            Purpose::TrafficStep { step } => self.traffic_step_failed(out, id, step, reason),
            Purpose::RollbackWeights => self.rollback_weights_failed(out, id, reason),
            Purpose::Metrics { keys, at } => {
                self.metrics_failed(out, &keys, reason, at.unwrap_or(pending.requested_at))
            }
            Purpose::PlaybookCommand { run, action } => {
                self.playbook_command_done(out, run, action, Some(reason))
            }
            Purpose::Message | Purpose::Page | Purpose::StatusPage => {
                out.decide(
                    actor,
                    Decision::EffectFailed {
                        id,
                        kind: pending.request.effect.kind().to_string(),
                        reason,
                    },
                );
            }
        }
    }
}

fn new_step_state(step: &plan::Step, phase: Option<String>) -> StepState {
    StepState {
        id: step.id.value.clone(),
        phase,
        title: step.title.value.clone(),
        kind: step_kind(step).to_string(),
        offset: step.at.value.to_string(),
        status: StepStatus::Waiting,
        due: None,
        started_at: None,
        finished_at: None,
        deadline: None,
        effect: None,
        answered: BTreeMap::new(),
        due_noted: false,
        reason: None,
        attempts: 0,
        measuring: false,
        inconclusive: false,
    }
}

pub(crate) fn step_kind(step: &plan::Step) -> &'static str {
    if step.run.is_some() {
        "run"
    } else if step.probe.is_some() {
        "probe"
    } else if step.roll_call.is_some() {
        "roll_call"
    } else if step.freeze.is_some() {
        "freeze"
    } else if step.gate.is_some() {
        "gate"
    } else if step.notify.is_some() {
        "notify"
    } else if step.traffic.is_some() {
        "traffic"
    } else if step.checklist.is_some() {
        "checklist"
    } else {
        "marker"
    }
}

pub(crate) fn severity_name(s: plan::Severity) -> &'static str {
    match s {
        plan::Severity::Info => "info",
        plan::Severity::Warning => "warning",
        plan::Severity::Critical => "critical",
    }
}

pub(crate) fn authority_name(a: Authority) -> &'static str {
    match a {
        Authority::GoNoGo => "go_no_go",
        Authority::StopTheLine => "stop_the_line",
        Authority::Waive => "waive",
        Authority::Approve => "approve",
        Authority::Pause => "pause",
        Authority::Rollback => "rollback",
    }
}

fn normalize(input: Input) -> Input {
    match input {
        Input::MetricSamples { query, samples } => Input::MetricSamples {
            query,
            samples: samples
                .into_iter()
                .map(|s| Sample {
                    sli: s.sli,
                    version: s.version,
                    reading: s.reading.normalized(),
                })
                .collect(),
        },
        other => other,
    }
}

/// Who an input comes from, for its record.
fn input_actor(input: &Input, role: Option<String>) -> Actor {
    if let Some(person) = input.person() {
        return Actor::Person {
            person: person.to_string(),
            role,
        };
    }
    match input {
        Input::Tick => Actor::Schedule,
        Input::MetricSamples { .. } => Actor::MetricSource,
        Input::Alert { .. } => Actor::Alertmanager,
        Input::EffectResult { .. } => Actor::Executor,
        _ => Actor::System,
    }
}

pub(crate) fn person_actor(person: &str, role: Option<String>) -> Actor {
    Actor::Person {
        person: person.to_string(),
        role,
    }
}

fn to_json(record: &Record) -> String {
    serde_json::to_string(record).unwrap_or_else(|e| format!("<unserializable record: {e}>"))
}
