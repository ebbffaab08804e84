//! The traffic ramp, the rules that watch it, manual triggers, alerts and rollback.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use plan::{Action, Authority, NoData};

use crate::effect::{Effect, MetricQuery, substitute};
use crate::input::{AlertStatus, EffectOutcome, Reading, Sample};
use crate::record::{Actor, Decision, Judgement, Verdict};
use crate::rules::{Observation, Timing, Transition};
use crate::state::*;
use crate::{
    DEFAULT_EVALUATION_MS, DEFAULT_METRIC_TIMEOUT_MS, Engine, Out, add_ms, ms, ms_between,
    person_actor, severity_name,
};

const ROLLBACK_BACKOFF_MAX_MS: i64 = 30_000;
const DEFAULT_ROLLBACK_BUDGET_MS: u64 = 300_000;

/// The query of one SLI for one version in this environment, or why there is none.
pub(crate) fn build_query(
    plan: &plan::Plan,
    env: &str,
    metric_source: Option<&str>,
    vars: &BTreeMap<String, String>,
    sli: &str,
    version: &str,
) -> Result<MetricQuery, String> {
    let Some(source) = metric_source else {
        return Err(format!("environment `{env}` names no metric source"));
    };
    let Some(def) = plan.slis.iter().find(|s| s.id.as_str() == sli) else {
        return Err(format!("no SLI `{sli}` in the plan"));
    };
    let Some(query) = def.queries.get(source) else {
        return Err(format!(
            "SLI `{sli}` has no query for metric source `{source}`"
        ));
    };
    let mut vars = vars.clone();
    vars.insert("version".to_string(), version.to_string());
    Ok(MetricQuery {
        sli: sli.to_string(),
        source: source.to_string(),
        query: substitute(query, &vars),
        version: version.to_string(),
    })
}

fn key(sli: &str, version: &str) -> String {
    format!("{sli}/{version}")
}

impl Engine {
    fn evaluation_interval_ms(&self) -> u64 {
        self.plan
            .rules
            .as_ref()
            .map(|r| ms(&r.evaluation_interval))
            .unwrap_or(DEFAULT_EVALUATION_MS)
            .max(1)
    }

    fn sli_query_ref(&self, sli: &str, version: &str) -> Option<&MetricQuery> {
        self.queries
            .get(sli)
            .and_then(|m| m.get(version))
            .and_then(|q| q.as_ref().ok())
    }

    fn sli_query(&self, sli: &str, version: &str) -> Result<MetricQuery, String> {
        if let Some(cached) = self.queries.get(sli).and_then(|m| m.get(version)) {
            return cached.clone();
        }
        build_query(
            &self.plan,
            &self.env,
            self.metric_source.as_deref(),
            &self.vars,
            sli,
            version,
        )
    }

    fn rule_version<'a>(&'a self, rule: &'a plan::Rule) -> &'a str {
        rule.version
            .as_ref()
            .map(|v| v.value.as_str())
            .unwrap_or(self.canary_group())
    }

    pub(crate) fn mark_unevaluable_rules(&mut self, out: &mut Out) {
        let plan = Arc::clone(&self.plan);
        let Some(rules) = plan.rules.as_ref() else {
            return;
        };
        for (r, rule) in rules.list.iter().enumerate() {
            if let Err(reason) = self.sli_query(&rule.when.sli, self.rule_version(rule)) {
                self.state.rules[r].evaluable = false;
                out.decide(
                    Actor::System,
                    Decision::RuleInactive {
                        rule: rule.id.value.clone(),
                        reason,
                    },
                );
            }
        }
    }

    fn ramp_running(&self) -> bool {
        matches!(
            self.state.ramp.status,
            RampStatus::Entering | RampStatus::Holding
        )
    }

    /// Rules watch while the ramp runs; `always` rules from T0 until the success
    /// criteria are judged (or the ramp ends, without criteria).
    pub(crate) fn update_rule_activity(&mut self, out: &mut Out) {
        let plan = Arc::clone(&self.plan);
        let Some(rules) = plan.rules.as_ref() else {
            return;
        };
        let running = self.state.status == RunStatus::Running;
        let ramp_running = self.ramp_running();
        let after_t0 = self.state.t0_actual.is_some_and(|t0| t0 <= out.now);
        let success_open = if plan.success.is_some() {
            !self.state.success.evaluated
        } else {
            ramp_running || self.state.ramp.status == RampStatus::NotStarted
        };
        for (r, rule) in rules.list.iter().enumerate() {
            let st = &self.state.rules[r];
            let should = running
                && st.evaluable
                && (ramp_running || (rule.always && after_t0 && success_open));
            if should == st.active {
                continue;
            }
            let st = &mut self.state.rules[r];
            st.active = should;
            if !should
                && (st.tracker.status != crate::rules::RuleStatus::Inactive
                    || st.tracker.is_inconclusive()
                    || st.alert_firing)
            {
                st.tracker.reset();
                st.alert_firing = false;
                out.decide(
                    Actor::System,
                    Decision::RuleDeactivated {
                        rule: rule.id.value.clone(),
                    },
                );
            }
        }
    }

    /// Visits every (SLI, version) some active rule, open stage gate or success criterion
    /// needs; stops early when `visit` returns true.
    fn visit_needed(&self, visit: &mut dyn FnMut(&str, &str) -> bool) {
        if let Some(rules) = &self.plan.rules {
            for (r, rule) in rules.list.iter().enumerate() {
                if self.state.rules[r].active && visit(&rule.when.sli, self.rule_version(rule)) {
                    return;
                }
            }
        }
        if self.state.status != RunStatus::Running {
            // Rollback steps may still be measuring.
            self.visit_measured(visit);
            return;
        }
        if self.visit_measured(visit) {
            return;
        }
        if let (Some(ramp), Some(stage)) = (&self.plan.ramp, self.state.ramp.stage)
            && self.ramp_running()
        {
            for gate in &ramp.stages[stage].gates {
                if let Some(c) = &gate.metric
                    && visit(&c.sli, self.canary_group())
                {
                    return;
                }
            }
        }
        if let Some(success) = &self.plan.success
            && self.state.t0_actual.is_some()
            && !self.state.success.evaluated
            && self.state.rollback.is_none()
        {
            for c in &success.criteria {
                if let Some(m) = &c.metric
                    && visit(&m.sli, self.canary_group())
                {
                    return;
                }
            }
        }
    }

    fn needs_metrics(&self) -> bool {
        let mut any = false;
        self.visit_needed(&mut |sli, version| {
            any = self.sli_query_ref(sli, version).is_some();
            any
        });
        any
    }

    /// The queries to run now, in a stable order, each once.
    fn needed_queries(&self) -> Vec<MetricQuery> {
        let mut wanted: BTreeMap<(&str, &str), &MetricQuery> = BTreeMap::new();
        self.visit_needed(&mut |sli, version| {
            if let Some(q) = self.sli_query_ref(sli, version) {
                wanted.entry((&q.sli, &q.version)).or_insert(q);
            }
            false
        });
        wanted.into_values().cloned().collect()
    }

    pub(crate) fn evaluation(&mut self, out: &mut Out) {
        if !self.needs_metrics() {
            self.state.next_evaluation = None;
            return;
        }
        let due = *self.state.next_evaluation.get_or_insert(out.now);
        if due > out.now {
            return;
        }
        // A query still out makes the evaluation wait for its answer (or its deadline), as a
        // rule group whose evaluation overran skips a beat: a slow source delays judging
        // instead of making every reading "no answer".
        if self
            .state
            .pending
            .values()
            .any(|p| matches!(p.purpose, Purpose::Metrics { .. }))
        {
            return;
        }
        let needed = self.needed_queries();
        let keys: Vec<(u16, u16)> = needed
            .iter()
            .filter_map(|q| self.metric_key(&q.sli, &q.version))
            .collect();
        let interval = self.evaluation_interval_ms() as i64;
        // Readings count as of the evaluation's scheduled time, so a tick or an answer a
        // few milliseconds late does not stretch `for` by an interval; an evaluation that
        // waited for a slow answer counts as of when it really asks.
        let at = if ms_between(due, out.now) < interval {
            due
        } else {
            out.now
        };
        let timeout = self
            .metric_source
            .as_ref()
            .and_then(|s| self.plan.metric_sources.iter().find(|m| m.id.as_str() == s))
            .and_then(|m| m.timeout.as_ref().map(|t| ms(t)))
            .unwrap_or(DEFAULT_METRIC_TIMEOUT_MS);
        self.request(
            out,
            Actor::Schedule,
            Effect::QueryMetrics { slis: needed },
            true,
            timeout,
            Purpose::Metrics { keys, at: Some(at) },
            true,
        );
        let mut next = add_ms(due, interval);
        if next <= out.now {
            next = add_ms(out.now, interval);
        }
        self.state.next_evaluation = Some(next);
    }

    pub(crate) fn metrics_failed(
        &mut self,
        out: &mut Out,
        keys: &[(u16, u16)],
        reason: String,
        at: Timestamp,
    ) {
        let samples: Vec<Sample> = keys
            .iter()
            .filter_map(|k| self.metric_query(*k))
            .map(|q| Sample {
                sli: q.sli.clone(),
                version: q.version.clone(),
                reading: Reading::Error {
                    reason: reason.clone(),
                },
            })
            .collect();
        self.judge_samples(out, &samples, at);
    }

    pub(crate) fn on_samples(
        &mut self,
        out: &mut Out,
        query: Option<u64>,
        samples: &[Sample],
    ) -> Result<crate::Actor, String> {
        let mut missing = Vec::new();
        let mut taken_at = out.now;
        match query {
            Some(id) => {
                let Some(p) = self.state.pending.get(&id) else {
                    return Err(format!("no metrics query {id} is waiting for an answer"));
                };
                let Purpose::Metrics { keys, at } = &p.purpose else {
                    return Err(format!("effect {id} is not a metrics query"));
                };
                taken_at = at.unwrap_or(p.requested_at);
                for key in keys {
                    let Some(q) = self.metric_query(*key) else {
                        continue;
                    };
                    if !samples
                        .iter()
                        .any(|s| s.sli == q.sli && s.version == q.version)
                    {
                        missing.push(Sample {
                            sli: q.sli.clone(),
                            version: q.version.clone(),
                            reading: Reading::NoData {
                                reason: "not in the answer".to_string(),
                            },
                        });
                    }
                }
                self.state.pending.remove(&id);
            }
            None => {
                if let Some(s) = samples
                    .iter()
                    .find(|s| !self.plan.slis.iter().any(|d| d.id.as_str() == s.sli))
                {
                    return Err(format!("no SLI `{}` in the plan", s.sli));
                }
            }
        }
        if missing.is_empty() {
            self.judge_samples(out, samples, taken_at);
        } else {
            missing.extend_from_slice(samples);
            self.judge_samples(out, &missing, taken_at);
        }
        Ok(Actor::MetricSource)
    }

    /// Records readings taken at `at` and judges every rule, metric item and metric probe
    /// step on them.
    fn judge_samples(&mut self, out: &mut Out, samples: &[Sample], at: Timestamp) {
        let after_t0 = self.state.t0_actual.is_some_and(|t0| t0 <= at);
        let mut k = String::new();
        for s in samples {
            let (value, reason) = match &s.reading {
                Reading::Value(v) => (Some(*v), None),
                Reading::NoData { reason } => (None, Some(format!("no data: {reason}"))),
                Reading::Error { reason } => (None, Some(format!("source error: {reason}"))),
            };
            k.clear();
            k.push_str(&s.sli);
            k.push('/');
            k.push_str(&s.version);
            let reading = crate::state::LatestReading { at, value, reason };
            match self.state.latest.get_mut(k.as_str()) {
                Some(latest) => *latest = reading,
                None => {
                    self.state.latest.insert(k.clone(), reading);
                }
            }
            if after_t0 && self.state.rollback.is_none() {
                if !self.state.since_t0.contains_key(k.as_str()) {
                    self.state.since_t0.insert(k.clone(), Default::default());
                }
                let stats = self
                    .state
                    .since_t0
                    .get_mut(k.as_str())
                    .expect("inserted above");
                match value {
                    Some(v) => {
                        stats.count += 1;
                        stats.sum += v;
                        stats.min = Some(stats.min.map_or(v, |m| m.min(v)));
                        stats.max = Some(stats.max.map_or(v, |m| m.max(v)));
                    }
                    None => stats.inconclusive += 1,
                }
            }
        }
        self.judge_measured(out, samples, at);
        let plan = Arc::clone(&self.plan);
        let Some(rules) = plan.rules.as_ref() else {
            return;
        };
        let warming_up = self.warming_up(at);
        let interval = self.evaluation_interval_ms();
        for (r, rule) in rules.list.iter().enumerate() {
            if !self.state.rules[r].active {
                continue;
            }
            let version = self.rule_version(rule);
            let Some(sample) = samples
                .iter()
                .find(|s| s.sli == rule.when.sli && s.version == version)
            else {
                continue;
            };
            let observation = match &sample.reading {
                Reading::Value(v) => {
                    if rule.when.comparison.holds(*v, rule.when.threshold.value) {
                        Observation::Holds(*v)
                    } else {
                        Observation::Clear(*v)
                    }
                }
                Reading::NoData { reason } => {
                    Observation::Inconclusive(format!("no data: {reason}"))
                }
                Reading::Error { reason } => {
                    Observation::Inconclusive(format!("source error: {reason}"))
                }
            };
            // Right after a stage's weights change the new version has too few requests
            // in the window: no data then is expected and not acted upon. A value still
            // counts, so a clear breach fires during the warm-up too.
            if warming_up && matches!(observation, Observation::Inconclusive(_)) {
                continue;
            }
            let value = match &observation {
                Observation::Holds(v) | Observation::Clear(v) => Some(*v),
                Observation::Inconclusive(_) => None,
            };
            let for_ms = ms(&rule.for_);
            let timing = Timing {
                for_ms,
                keep_firing_for_ms: rule.keep_firing_for.as_ref().map(|k| ms(k)).unwrap_or(0),
                no_data: rule.no_data.value,
                no_data_after_ms: for_ms.max(interval),
            };
            let transitions = self.state.rules[r].tracker.observe(at, observation, timing);
            let actor = Actor::Rule {
                rule: rule.id.value.clone(),
            };
            let policy = match rule.no_data.value {
                NoData::Pause => "pause",
                NoData::Firing => "firing",
                NoData::KeepState => "keep_state",
            };
            for t in transitions {
                let id = rule.id.value.clone();
                match t {
                    Transition::Pending => {
                        out.decide(actor.clone(), Decision::RulePending { rule: id, value })
                    }
                    Transition::Reset => {
                        out.decide(actor.clone(), Decision::RuleReset { rule: id, value })
                    }
                    Transition::Resolved => {
                        if !self.state.rules[r].alert_firing {
                            out.decide(
                                actor.clone(),
                                Decision::RuleResolved {
                                    rule: id.clone(),
                                    value,
                                },
                            );
                            self.close_pages(
                                out,
                                &actor,
                                &format!("rule:{id}"),
                                &format!("rule `{id}` resolved"),
                            );
                        }
                    }
                    Transition::DataBack => {
                        out.decide(actor.clone(), Decision::RuleDataBack { rule: id })
                    }
                    Transition::Firing => {
                        let already = self.state.rules[r].alert_firing;
                        self.state.rules[r].fired += 1;
                        out.decide(
                            actor.clone(),
                            Decision::RuleFiring {
                                rule: id.clone(),
                                severity: severity_name(rule.severity.value).to_string(),
                                value,
                                source: if value.is_some() {
                                    "metrics"
                                } else {
                                    "no data"
                                }
                                .to_string(),
                            },
                        );
                        if !already {
                            let reason = match value {
                                Some(v) => format!(
                                    "{} is {v}{} (threshold: {})",
                                    rule.when.sli, rule.when.threshold.unit, *rule.when
                                ),
                                None => format!(
                                    "{} has had no data for {} (no_data: firing)",
                                    rule.when.sli,
                                    plan::Dur(for_ms.max(interval))
                                ),
                            };
                            self.run_actions(
                                out,
                                actor.clone(),
                                &rule.actions,
                                &format!("rule {id}"),
                                &reason,
                            );
                        }
                    }
                    Transition::Inconclusive(reason) => {
                        out.decide(
                            actor.clone(),
                            Decision::RuleInconclusive {
                                rule: id.clone(),
                                reason,
                                policy: policy.to_string(),
                                acts_after_ms: for_ms.max(interval),
                            },
                        );
                    }
                    Transition::NoData(reason) => {
                        if rule.no_data.value == NoData::KeepState {
                            // Nothing acts: the first inconclusive record said so.
                            continue;
                        }
                        let blind_ms = self.state.rules[r]
                            .tracker
                            .inconclusive_since
                            .map(|s| ms_between(s, at).max(0) as u64)
                            .unwrap_or(0);
                        out.decide(
                            actor.clone(),
                            Decision::RuleNoData {
                                rule: id.clone(),
                                reason: reason.clone(),
                                policy: policy.to_string(),
                                blind_ms,
                            },
                        );
                        // The page goes with the pause: rules that go blind later in the
                        // same outage find the ramp paused and add nothing.
                        if rule.no_data.value == NoData::Pause
                            && self.ramp_running()
                            && self.state.ramp.paused.is_none()
                        {
                            self.pause_ramp(
                                out,
                                actor.clone(),
                                &format!("rule {id}"),
                                &format!("rule `{id}` cannot be judged: {reason}"),
                            );
                            let mut roles: Vec<String> = rule
                                .actions
                                .iter()
                                .filter_map(|a| match &**a {
                                    Action::Page(role) => Some(role.value.clone()),
                                    _ => None,
                                })
                                .collect();
                            if roles.is_empty() {
                                roles.extend(self.role_with(Authority::Pause));
                            }
                            for role in roles {
                                let text = format!(
                                    "Rules cannot be judged ({reason}); the ramp is paused and will not advance without data."
                                );
                                self.page(out, actor.clone(), &role, &text, None, Some("pause"));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Whether a rule that pauses or rolls back is firing, or is blind under a `pause`
    /// no-data policy: either holds the ramp.
    pub(crate) fn ramp_blocked_by_rules(&self) -> Option<String> {
        let rules = self.plan.rules.as_ref()?;
        for (r, rule) in rules.list.iter().enumerate() {
            let st = &self.state.rules[r];
            let stops = rule
                .actions
                .iter()
                .any(|a| matches!(**a, Action::Pause | Action::Rollback));
            // Alertmanager may say a rule fires before the ramp watches it: that holds too.
            if stops && st.alert_firing {
                return Some(format!("rule `{}` is firing (Alertmanager)", rule.id.value));
            }
            if !st.active {
                continue;
            }
            if stops && st.is_firing() {
                return Some(format!("rule `{}` is firing", rule.id.value));
            }
            if st.tracker.is_inconclusive()
                && matches!(rule.no_data.value, NoData::Pause | NoData::Firing)
            {
                return Some(format!("rule `{}` has no data", rule.id.value));
            }
        }
        None
    }

    fn ramp_blocked(&self) -> Option<String> {
        if let Some(p) = &self.state.ramp.paused {
            return Some(format!("paused by {}: {}", p.by, p.reason));
        }
        if let Some(step) = self.stuck_step() {
            return Some(format!("step `{step}` failed and halts the timeline"));
        }
        self.ramp_blocked_by_rules()
    }

    fn judge_stage_gates(&self, stage: usize) -> (Verdict, Vec<Judgement>) {
        let Some(ramp) = &self.plan.ramp else {
            return (Verdict::Pass, Vec::new());
        };
        // Readings count from the end of the warm-up: before it the window mostly holds
        // the previous weights' requests.
        let entered = self
            .state
            .ramp
            .entered_at
            .map(|e| e.max(self.state.ramp.warmup_until.unwrap_or(e)));
        let mut judgements = Vec::new();
        for gate in &ramp.stages[stage].gates {
            if let Some(condition) = &gate.metric {
                let version = self.canary_group();
                let latest = self.state.latest.get(&key(&condition.sli, version));
                let what = condition.value.to_string();
                let judgement = match latest {
                    Some(l) if entered.is_some_and(|e| l.at >= e) => {
                        let (verdict, detail) = match l.value {
                            Some(v) => (
                                if condition.comparison.holds(v, condition.threshold.value) {
                                    Verdict::Pass
                                } else {
                                    Verdict::Fail
                                },
                                format!("{v}{} at {}", condition.threshold.unit, l.at),
                            ),
                            None => (
                                Verdict::Inconclusive,
                                l.reason.clone().unwrap_or_else(|| "no data".to_string()),
                            ),
                        };
                        Judgement::new(what, verdict, detail)
                    }
                    _ => self
                        .unjudgeable(&what, &condition.sli, version)
                        .unwrap_or_else(|| {
                            Judgement::new(
                                what,
                                Verdict::Inconclusive,
                                "no reading during this stage".to_string(),
                            )
                        }),
                };
                judgements.push(judgement);
            }
            if let Some(checklist) = &gate.checklist {
                let (verdict, detail) = match self.checklist_missing(checklist) {
                    Some(m) if m.is_empty() => (Verdict::Pass, "complete".to_string()),
                    Some(m) => (Verdict::Fail, format!("open: {}", m.join(", "))),
                    None => (Verdict::Fail, "no such checklist".to_string()),
                };
                judgements.push(Judgement::new(
                    format!("checklist {}", checklist.value),
                    verdict,
                    detail,
                ));
            }
        }
        let verdict = if judgements.iter().any(|j| j.verdict == Verdict::Fail) {
            Verdict::Fail
        } else if judgements
            .iter()
            .any(|j| j.verdict == Verdict::Inconclusive)
        {
            Verdict::Inconclusive
        } else {
            Verdict::Pass
        };
        (verdict, judgements)
    }

    pub(crate) fn advance_ramp(&mut self, out: &mut Out) {
        let plan = Arc::clone(&self.plan);
        let Some(ramp) = plan.ramp.as_ref() else {
            return;
        };
        if self.state.status != RunStatus::Running || ramp.stages.is_empty() {
            return;
        }
        let Some(start_at) = self.resolve_after_t0(ramp.start.value) else {
            return;
        };
        match self.state.ramp.status {
            RampStatus::NotStarted => {
                if out.now < start_at || self.ramp_blocked().is_some() {
                    return;
                }
                self.try_enter(out, 0);
            }
            RampStatus::Holding => {
                let Some(stage) = self.state.ramp.stage else {
                    return;
                };
                self.end_warmup(out);
                let weight = ramp.stages[stage].weight.value;
                if !self.state.ramp.hold_over {
                    if self.state.ramp.hold_until.is_some_and(|h| h > out.now) {
                        return;
                    }
                    self.state.ramp.hold_over = true;
                    out.decide(Actor::Schedule, Decision::StageHoldEnded { stage, weight });
                }
                let (mut verdict, judgements) = self.judge_stage_gates(stage);
                if self.state.ramp.gates_waived.contains(&stage) {
                    verdict = Verdict::Pass;
                }
                if self.state.ramp.last_gates != Some(verdict) {
                    self.state.ramp.last_gates = Some(verdict);
                    if verdict == Verdict::Pass {
                        self.close_pages(
                            out,
                            &Actor::Schedule,
                            &format!("gates:{stage}"),
                            &format!("the gates of stage {weight}% pass"),
                        );
                    }
                    out.decide(
                        Actor::Schedule,
                        Decision::StageGates {
                            stage,
                            weight,
                            verdict,
                            judgements: judgements.clone(),
                        },
                    );
                }
                if verdict != Verdict::Pass {
                    self.page_stuck_gates(out, stage, weight, &judgements);
                    return;
                }
                if self.ramp_blocked().is_some() {
                    return;
                }
                if stage + 1 == ramp.stages.len() {
                    self.state.ramp.status = RampStatus::Completed;
                    self.state.ramp.completed_at = Some(out.now);
                    out.decide(Actor::Schedule, Decision::RampCompleted { weight });
                    let text = format!(
                        "The ramp of {} is complete: {weight}% on the new version.",
                        self.state.plan
                    );
                    self.milestone(
                        out,
                        Actor::Schedule,
                        "ramp-complete",
                        "Ramp complete",
                        &text,
                    );
                    return;
                }
                self.try_enter(out, stage + 1);
            }
            RampStatus::Entering | RampStatus::Completed | RampStatus::RolledBack => {}
        }
    }

    /// A stage whose hold is over but whose gates do not pass would wait there unseen:
    /// the holder of `waive` is paged once (until the gates pass, are waived or the ramp
    /// rolls back), naming the gates. A paused ramp has its own page.
    fn page_stuck_gates(
        &mut self,
        out: &mut Out,
        stage: usize,
        weight: u8,
        judgements: &[Judgement],
    ) {
        let about = format!("gates:{stage}");
        let paged = self
            .state
            .pages
            .iter()
            .any(|p| p.closed.is_none() && p.about.as_deref() == Some(about.as_str()));
        if paged || self.ramp_blocked().is_some() {
            return;
        }
        let Some(role) = self.role_with(Authority::Waive) else {
            return;
        };
        let open: Vec<&str> = judgements
            .iter()
            .filter(|j| j.verdict != Verdict::Pass)
            .map(|j| j.what.as_str())
            .collect();
        let text = format!(
            "Stage {weight}% of {} has held its time, but its gates do not pass ({}): the ramp stays at {weight}% until they do, or until its gates are waived (waive stage:{weight}).",
            self.state.plan,
            open.join(", ")
        );
        self.page(out, Actor::Schedule, &role, &text, None, Some(&about));
    }

    fn try_enter(&mut self, out: &mut Out, stage: usize) {
        let plan = Arc::clone(&self.plan);
        let Some(ramp) = plan.ramp.as_ref() else {
            return;
        };
        let def = &ramp.stages[stage];
        if let Some(nb) = &def.not_before
            && self.resolve_after_t0(**nb).is_some_and(|t| t > out.now)
        {
            return;
        }
        let weight = def.weight.value;
        if let Some(role) = &def.approval
            && !self.state.ramp.approvals.contains(&stage)
        {
            if self.state.ramp.awaiting_approval != Some(stage) {
                self.state.ramp.awaiting_approval = Some(stage);
                out.decide(
                    Actor::Schedule,
                    Decision::StageAwaitingApproval {
                        stage,
                        weight,
                        role: role.value.clone(),
                    },
                );
                let text = format!(
                    "Stage {weight}% of {} waits for your approval (promote).",
                    self.state.plan
                );
                self.page(
                    out,
                    Actor::Schedule,
                    &role.value,
                    &text,
                    None,
                    Some(&format!("approval:{stage}")),
                );
            }
            return;
        }
        self.state.ramp.status = RampStatus::Entering;
        self.state.ramp.stage = Some(stage);
        out.decide(Actor::Schedule, Decision::StageEntering { stage, weight });
        let weights = self.weights_for(weight);
        let timeout = self.router_timeout_ms();
        let effect = self.request(
            out,
            Actor::Schedule,
            Effect::SetWeights {
                weights,
                reason: format!("ramp stage {weight}%"),
            },
            true,
            timeout,
            Purpose::StageWeights { stage },
            true,
        );
        self.state.ramp.effect = Some(effect);
    }

    pub(crate) fn stage_weights_result(
        &mut self,
        out: &mut Out,
        id: u64,
        stage: usize,
        outcome: &EffectOutcome,
    ) {
        if self.state.ramp.effect != Some(id) || self.state.ramp.status != RampStatus::Entering {
            return;
        }
        let Some(ramp) = self.plan.ramp.as_ref() else {
            return;
        };
        let def = &ramp.stages[stage];
        let weight = def.weight.value;
        let wanted = self.weights_for(weight);
        match outcome {
            EffectOutcome::Weights { weights } if *weights == wanted => {}
            EffectOutcome::Rehearsed => {}
            EffectOutcome::Weights { weights } => {
                return self.stage_weights_failed(
                    out,
                    id,
                    stage,
                    format!("router reports {weights:?} after setting {wanted:?}"),
                );
            }
            _ => {
                return self.stage_weights_failed(
                    out,
                    id,
                    stage,
                    "router did not report the weights in force".to_string(),
                );
            }
        }
        let warmup_until = (self.warmup_ms > 0).then(|| add_ms(out.now, self.warmup_ms as i64));
        // The hold never ends before the warm-up: gates judge readings after it.
        let hold_until = add_ms(out.now, ms(&def.hold) as i64).max(warmup_until.unwrap_or(out.now));
        self.state.weights = Some(wanted.clone());
        let r = &mut self.state.ramp;
        r.status = RampStatus::Holding;
        r.weight = weight;
        r.entered_at = Some(out.now);
        r.warmup_until = warmup_until;
        r.warmup_over = warmup_until.is_none();
        r.hold_until = Some(hold_until);
        r.hold_over = false;
        r.last_gates = None;
        r.effect = None;
        r.awaiting_approval = None;
        out.decide(
            Actor::Router,
            Decision::WeightsConfirmed { weights: wanted },
        );
        out.decide(
            Actor::Router,
            Decision::StageEntered {
                stage,
                weight,
                hold_until,
                warmup_until,
            },
        );
    }

    pub(crate) fn stage_weights_failed(
        &mut self,
        out: &mut Out,
        id: u64,
        stage: usize,
        reason: String,
    ) {
        if self.state.ramp.effect != Some(id) || self.state.ramp.status != RampStatus::Entering {
            return;
        }
        // Back to where we were; the weights in force are not known to have changed.
        let r = &mut self.state.ramp;
        r.effect = None;
        if stage == 0 {
            r.status = RampStatus::NotStarted;
            r.stage = None;
        } else {
            r.status = RampStatus::Holding;
            r.stage = Some(stage - 1);
        }
        out.decide(
            Actor::Router,
            Decision::WeightChangeFailed {
                reason: reason.clone(),
                attempt: 1,
                retry_at: None,
            },
        );
        self.pause_ramp(
            out,
            Actor::Router,
            "router",
            &format!("weight change failed: {reason}"),
        );
        if let Some(role) = self.role_with(Authority::Rollback) {
            self.page(
                out,
                Actor::Router,
                &role,
                &format!("Weight change failed: {reason}. The ramp is paused."),
                None,
                Some("pause"),
            );
        }
    }

    pub(crate) fn traffic_step_result(
        &mut self,
        out: &mut Out,
        id: u64,
        step: usize,
        outcome: &EffectOutcome,
    ) {
        let Some(st) = self.state.steps.get(step) else {
            return;
        };
        if st.effect != Some(id) || st.status != StepStatus::Running {
            return;
        }
        let w = self
            .order
            .get(step)
            .and_then(|&(p, s)| self.plan.timeline[p].steps[s].traffic.as_ref().map(|t| **t))
            .unwrap_or(0);
        let wanted = self.weights_for(w);
        match outcome {
            EffectOutcome::Weights { weights } if *weights == wanted => {}
            EffectOutcome::Rehearsed => {}
            _ => {
                return self.traffic_step_failed(
                    out,
                    id,
                    step,
                    format!("router did not confirm {wanted:?}"),
                );
            }
        }
        self.state.weights = Some(wanted.clone());
        out.decide(
            Actor::Router,
            Decision::WeightsConfirmed { weights: wanted },
        );
        self.finish_step(out, Actor::Router, false, step, "weights confirmed");
    }

    pub(crate) fn traffic_step_failed(
        &mut self,
        out: &mut Out,
        id: u64,
        step: usize,
        reason: String,
    ) {
        let Some(st) = self.state.steps.get_mut(step) else {
            return;
        };
        if st.effect != Some(id) || st.status != StepStatus::Running {
            return;
        }
        st.effect = None;
        self.fail_step(out, Actor::Router, false, step, reason);
    }

    pub(crate) fn pause_ramp(&mut self, out: &mut Out, actor: Actor, by: &str, reason: &str) {
        if self.state.ramp.paused.is_some()
            || matches!(
                self.state.ramp.status,
                RampStatus::Completed | RampStatus::RolledBack
            )
        {
            return;
        }
        self.state.ramp.paused = Some(PauseState {
            by: by.to_string(),
            reason: reason.to_string(),
            since: out.now,
        });
        out.decide(
            actor,
            Decision::RampPaused {
                reason: reason.to_string(),
            },
        );
    }

    pub(crate) fn on_pause(
        &mut self,
        out: &mut Out,
        person: &str,
        reason: &str,
    ) -> Result<Actor, String> {
        let role = self.authority(person, Authority::Pause)?;
        if self.plan.ramp.is_none() {
            return Err("the plan has no ramp to pause".to_string());
        }
        if self.state.status != RunStatus::Running
            || matches!(
                self.state.ramp.status,
                RampStatus::Completed | RampStatus::RolledBack
            )
        {
            return Err("the ramp is over; nothing to pause".to_string());
        }
        if let Some(p) = &self.state.ramp.paused {
            return Err(format!(
                "the ramp is already paused (by {}: {})",
                p.by, p.reason
            ));
        }
        let actor = person_actor(person, Some(role));
        self.pause_ramp(out, actor.clone(), person, reason);
        Ok(actor)
    }

    pub(crate) fn on_resume(
        &mut self,
        out: &mut Out,
        person: &str,
        reason: &str,
    ) -> Result<Actor, String> {
        let role = self.authority(person, Authority::Pause)?;
        if self.state.ramp.paused.is_none() {
            return Err("the ramp is not paused".to_string());
        }
        if self.state.status != RunStatus::Running {
            return Err(format!("the run is {}", self.state.status.as_str()));
        }
        if let Some(why) = self.ramp_blocked_by_rules() {
            return Err(format!("cannot resume while {why}"));
        }
        self.state.ramp.paused = None;
        let actor = person_actor(person, Some(role));
        out.decide(
            actor.clone(),
            Decision::RampResumed {
                reason: reason.to_string(),
            },
        );
        self.close_pages(out, &actor, "pause", &format!("ramp resumed by {person}"));
        Ok(actor)
    }

    pub(crate) fn on_promote(
        &mut self,
        out: &mut Out,
        person: &str,
        reason: &str,
    ) -> Result<Actor, String> {
        let Some(ramp) = self.plan.ramp.as_ref() else {
            return Err("the plan has no ramp".to_string());
        };
        if self.state.status != RunStatus::Running {
            return Err(format!("the run is {}", self.state.status.as_str()));
        }
        let next = match self.state.ramp.status {
            RampStatus::NotStarted => 0,
            RampStatus::Holding => self.state.ramp.stage.map_or(0, |s| s + 1),
            RampStatus::Entering => {
                return Err("a stage is being entered; wait for the router".to_string());
            }
            _ => return Err("the ramp is over".to_string()),
        };
        let Some(stage) = ramp.stages.get(next) else {
            return Err(
                "the ramp is at its last stage; it completes when the hold ends and gates pass"
                    .to_string(),
            );
        };
        let role = match &stage.approval {
            Some(approver) if self.holds_role(person, approver) => approver.value.clone(),
            _ => self.authority(person, Authority::Approve)?,
        };
        if self.state.ramp.approvals.contains(&next)
            && (self.state.ramp.hold_over || self.state.ramp.status == RampStatus::NotStarted)
        {
            return Err(format!("stage {}% is already approved", stage.weight.value));
        }
        let actor = person_actor(person, Some(role));
        let weight = stage.weight.value;
        self.state.ramp.approvals.insert(next);
        out.decide(
            actor.clone(),
            Decision::StageApproved {
                stage: next,
                weight,
                reason: reason.to_string(),
            },
        );
        self.close_pages(
            out,
            &actor,
            &format!("approval:{next}"),
            &format!("stage {weight}% approved by {person}"),
        );
        let warming = self.state.ramp.status == RampStatus::Holding
            && !self.state.ramp.warmup_over
            && self.state.ramp.warmup_until.is_some_and(|w| w > out.now);
        if warming && !self.state.ramp.hold_over {
            // The hold ends early, but not before the warm-up: then gates have readings.
            self.state.ramp.hold_until = self.state.ramp.warmup_until;
        } else if self.state.ramp.status == RampStatus::Holding && !self.state.ramp.hold_over {
            let current = self.state.ramp.stage.unwrap_or(0);
            self.state.ramp.hold_over = true;
            out.decide(
                actor.clone(),
                Decision::StageHoldEnded {
                    stage: current,
                    weight: self.state.ramp.weight,
                },
            );
        }
        Ok(actor)
    }

    pub(crate) fn waive_stage_gates(
        &mut self,
        out: &mut Out,
        actor: Actor,
        target: &str,
        reason: &str,
    ) -> Result<Actor, String> {
        let Some(stage) = self
            .state
            .ramp
            .stage
            .filter(|_| self.state.ramp.status == RampStatus::Holding)
        else {
            return Err("no stage is holding: no gates to waive".to_string());
        };
        let weight = self.state.ramp.weight;
        if let Some(w) = target.strip_prefix("stage:")
            && w.trim_end_matches('%') != weight.to_string()
        {
            return Err(format!("the current stage is {weight}%, not `{w}`"));
        }
        if !self.state.ramp.gates_waived.insert(stage) {
            return Err(format!("the gates of stage {weight}% are already waived"));
        }
        out.decide(
            actor.clone(),
            Decision::StageGatesWaived {
                stage,
                weight,
                reason: reason.to_string(),
            },
        );
        Ok(actor)
    }

    // === rollback ===

    pub(crate) fn on_manual_rollback(
        &mut self,
        out: &mut Out,
        person: &str,
        reason: &str,
    ) -> Result<Actor, String> {
        let role = self.authority(person, Authority::Rollback)?;
        if reason.trim().is_empty() {
            return Err("a rollback needs a reason".to_string());
        }
        if self.state.rollback.is_some() {
            return Err("a rollback is already under way or done".to_string());
        }
        if self.state.status != RunStatus::Running {
            return Err(format!("the run is {}", self.state.status.as_str()));
        }
        let actor = person_actor(person, Some(role));
        self.start_rollback(out, actor.clone(), &format!("manual by {person}"), reason);
        Ok(actor)
    }

    pub(crate) fn start_rollback(
        &mut self,
        out: &mut Out,
        actor: Actor,
        cause: &str,
        reason: &str,
    ) {
        if self.state.rollback.is_some() || self.state.status != RunStatus::Running {
            return;
        }
        self.note_incident(out.now, cause, reason);
        let budget_ms = self
            .plan
            .ramp
            .as_ref()
            .map(|r| ms(&r.rollback.budget))
            .unwrap_or(DEFAULT_ROLLBACK_BUDGET_MS);
        let steps = self
            .plan
            .ramp
            .as_ref()
            .map(|r| {
                r.rollback
                    .steps
                    .iter()
                    .map(|s| crate::new_step_state(s, None))
                    .collect()
            })
            .unwrap_or_default();
        self.state.rollback = Some(RollbackState {
            cause: cause.to_string(),
            reason: reason.to_string(),
            triggered_at: out.now,
            attempts: 0,
            effect: None,
            retry_at: None,
            confirmed_at: None,
            duration_ms: None,
            budget_ms,
            paged: false,
            steps,
            cursor: 0,
        });
        if let Some(effect) = self.state.ramp.effect.take() {
            self.state.pending.remove(&effect);
        }
        self.state.ramp.status = RampStatus::RolledBack;
        self.state.status = RunStatus::RolledBack;
        self.state.end_reason = Some(format!("rolled back ({cause}): {reason}"));
        out.decide(
            actor.clone(),
            Decision::RollbackStarted {
                cause: cause.to_string(),
                reason: reason.to_string(),
                budget_ms,
            },
        );
        self.request_rollback_weights(out, actor.clone());
        self.close_pages_where(
            out,
            &actor,
            &|about| {
                about == "pause" || about.starts_with("approval:") || about.starts_with("gates:")
            },
            "the ramp is rolled back",
        );
        self.skip_remaining_steps(out, "rolled back");
        for r in 0..self.state.rules.len() {
            self.state.rules[r].active = false;
        }
        if let Some(playbook) = self
            .plan
            .ramp
            .as_ref()
            .and_then(|r| r.rollback.playbook.as_ref().map(|p| p.value.clone()))
        {
            self.start_playbook(out, actor.clone(), &playbook, cause, reason);
        }
        let text = format!(
            "ROLLBACK of {} started ({cause}): {reason}",
            self.state.plan
        );
        self.milestone(out, actor, "rollback", "Rollback started", &text);
    }

    fn request_rollback_weights(&mut self, out: &mut Out, actor: Actor) {
        let weights = self.weights_for(0);
        let timeout = self.router_timeout_ms();
        let effect = self.request(
            out,
            actor,
            Effect::SetWeights {
                weights,
                reason: "rollback".to_string(),
            },
            true,
            timeout,
            Purpose::RollbackWeights,
            true,
        );
        if let Some(rb) = self.state.rollback.as_mut() {
            rb.effect = Some(effect);
            rb.retry_at = None;
            rb.attempts += 1;
        }
    }

    pub(crate) fn rollback_weights_result(
        &mut self,
        out: &mut Out,
        id: u64,
        outcome: &EffectOutcome,
    ) {
        let Some(rb) = self.state.rollback.as_ref() else {
            return;
        };
        if rb.effect != Some(id) || rb.confirmed_at.is_some() {
            return;
        }
        let wanted = self.weights_for(0);
        match outcome {
            EffectOutcome::Weights { weights } if *weights == wanted => {}
            EffectOutcome::Rehearsed => {}
            EffectOutcome::Weights { weights } => {
                return self.rollback_weights_failed(
                    out,
                    id,
                    format!("router reports {weights:?} after setting {wanted:?}"),
                );
            }
            _ => {
                return self.rollback_weights_failed(
                    out,
                    id,
                    "router did not report the weights in force".to_string(),
                );
            }
        }
        let rb = self.state.rollback.as_mut().expect("checked above");
        let duration = ms_between(rb.triggered_at, out.now).max(0) as u64;
        rb.confirmed_at = Some(out.now);
        rb.duration_ms = Some(duration);
        rb.effect = None;
        let budget_ms = rb.budget_ms;
        self.state.weights = Some(wanted.clone());
        self.state.ramp.weight = 0;
        out.decide(
            Actor::Router,
            Decision::WeightsConfirmed { weights: wanted },
        );
        out.decide(
            Actor::Router,
            Decision::RollbackConfirmed {
                duration_ms: duration,
                budget_ms,
                within_budget: duration <= budget_ms,
            },
        );
        self.close_pages(
            out,
            &Actor::Router,
            "rollback-weights",
            "the router confirmed the rollback",
        );
        let text = format!(
            "Rollback of {}: traffic is off the new version, {:.1} s after the trigger (budget {} s).",
            self.state.plan,
            duration as f64 / 1000.0,
            budget_ms / 1000
        );
        self.milestone(
            out,
            Actor::Router,
            "rollback-confirmed",
            "Rollback confirmed",
            &text,
        );
    }

    pub(crate) fn rollback_weights_failed(&mut self, out: &mut Out, id: u64, reason: String) {
        let Some(rb) = self.state.rollback.as_mut() else {
            return;
        };
        if rb.effect != Some(id) || rb.confirmed_at.is_some() {
            return;
        }
        let attempt = rb.attempts;
        let backoff = (1000i64 << (attempt.saturating_sub(1)).min(10)).min(ROLLBACK_BACKOFF_MAX_MS);
        let retry_at = add_ms(out.now, backoff);
        rb.effect = None;
        rb.retry_at = Some(retry_at);
        let first = !rb.paged;
        rb.paged = true;
        out.decide(
            Actor::Router,
            Decision::WeightChangeFailed {
                reason: reason.clone(),
                attempt,
                retry_at: Some(retry_at),
            },
        );
        if first && let Some(role) = self.role_with(Authority::Rollback) {
            let text = format!(
                "ROLLBACK weight change failed: {reason}. Retrying with backoff; check the router now."
            );
            self.page(
                out,
                Actor::Router,
                &role,
                &text,
                None,
                Some("rollback-weights"),
            );
        }
    }

    pub(crate) fn rollback_progress(&mut self, out: &mut Out) {
        let Some(rb) = self.state.rollback.as_ref() else {
            return;
        };
        if rb.confirmed_at.is_none()
            && rb.effect.is_none()
            && rb.retry_at.is_some_and(|t| t <= out.now)
        {
            self.request_rollback_weights(out, Actor::Schedule);
            return;
        }
        self.advance_rollback_steps(out);
    }

    pub(crate) fn ramp_deadlines(&self, consider: &mut impl FnMut(Option<Timestamp>)) {
        consider(self.state.next_evaluation);
        if let Some(rb) = &self.state.rollback {
            consider(
                rb.retry_at
                    .filter(|_| rb.effect.is_none() && rb.confirmed_at.is_none()),
            );
        }
        if self.state.status != RunStatus::Running {
            return;
        }
        let Some(ramp) = &self.plan.ramp else { return };
        match self.state.ramp.status {
            RampStatus::NotStarted => consider(self.resolve_after_t0(ramp.start.value)),
            RampStatus::Holding if !self.state.ramp.hold_over => {
                if !self.state.ramp.warmup_over {
                    consider(self.state.ramp.warmup_until);
                }
                consider(self.state.ramp.hold_until)
            }
            RampStatus::Holding => {
                if let Some(next) = self.state.ramp.stage.and_then(|s| ramp.stages.get(s + 1))
                    && let Some(nb) = &next.not_before
                {
                    consider(self.resolve_after_t0(**nb));
                }
            }
            _ => {}
        }
    }

    // === actions, triggers, alerts ===

    pub(crate) fn run_actions(
        &mut self,
        out: &mut Out,
        actor: Actor,
        actions: &[plan::At<Action>],
        cause: &str,
        reason: &str,
    ) {
        self.note_incident(out.now, cause, reason);
        for action in actions {
            match &**action {
                Action::Rollback => self.start_rollback(out, actor.clone(), cause, reason),
                Action::Pause => self.pause_ramp(out, actor.clone(), cause, reason),
                Action::Page(role) => {
                    let text = format!("{cause}: {reason}");
                    let about = cause.strip_prefix("rule ").map(|id| format!("rule:{id}"));
                    self.page(
                        out,
                        actor.clone(),
                        &role.value,
                        &text,
                        None,
                        about.as_deref(),
                    );
                }
                Action::Notify(notify) => {
                    for audience in &notify.audiences {
                        let key = format!(
                            "action/{cause}/{}/{}",
                            audience.value,
                            out.now.as_millisecond()
                        );
                        self.send_template(
                            out,
                            actor.clone(),
                            audience,
                            &notify.template,
                            &key,
                            None,
                        );
                    }
                }
                Action::Playbook(id) => {
                    self.start_playbook(out, actor.clone(), &id.value, cause, reason)
                }
            }
        }
    }

    /// Remembers what the current incident is, for messages about it.
    pub(crate) fn note_incident(&mut self, now: Timestamp, cause: &str, reason: &str) {
        let id = cause.split_once(' ').map(|(_, id)| id).unwrap_or(cause);
        let title = self
            .plan
            .rules
            .as_ref()
            .and_then(|r| r.list.iter().find(|x| x.id.as_str() == id))
            .map(|r| r.title.clone().unwrap_or_else(|| r.when.value.to_string()))
            .or_else(|| {
                self.plan
                    .triggers
                    .iter()
                    .find(|t| t.id.as_str() == id)
                    .map(|t| t.title.value.clone())
            })
            .unwrap_or_else(|| cause.to_string());
        if self
            .state
            .incident
            .as_ref()
            .is_some_and(|i| i.trigger == id)
        {
            return;
        }
        self.state.incident = Some(Incident {
            trigger: id.to_string(),
            title,
            reason: reason.to_string(),
            started: now,
            impact: format!("{}% of traffic on the new version", self.state.ramp.weight),
        });
    }

    pub(crate) fn on_stop_the_line(
        &mut self,
        out: &mut Out,
        person: &str,
        trigger: &str,
        reason: &str,
    ) -> Result<Actor, String> {
        let plan = Arc::clone(&self.plan);
        let Some(def) = plan.triggers.iter().find(|t| t.id.as_str() == trigger) else {
            let known: Vec<&str> = plan.triggers.iter().map(|t| t.id.as_str()).collect();
            return Err(format!(
                "no manual trigger `{trigger}`; the plan has: {}",
                known.join(", ")
            ));
        };
        let role = if def.who.is_empty() {
            self.authority(person, Authority::StopTheLine)?
        } else {
            let role = self.authority(person, Authority::StopTheLine)?;
            match def.who.iter().find(|w| self.holds_role(person, w)) {
                Some(w) => w.value.clone(),
                None => {
                    let who: Vec<&str> = def.who.iter().map(|w| w.as_str()).collect();
                    return Err(format!(
                        "trigger `{trigger}` may be pulled only by roles {}; `{person}` is {role}",
                        who.join(", ")
                    ));
                }
            }
        };
        if reason.trim().is_empty() {
            return Err("stopping the line needs a reason".to_string());
        }
        if self.state.status != RunStatus::Running {
            return Err(format!("the run is {}", self.state.status.as_str()));
        }
        let actor = person_actor(person, Some(role));
        self.pull_trigger(out, actor.clone(), def, person, reason);
        Ok(actor)
    }

    fn pull_trigger(
        &mut self,
        out: &mut Out,
        actor: Actor,
        def: &plan::ManualTrigger,
        by: &str,
        reason: &str,
    ) {
        self.state.triggers_pulled.push(TriggerPull {
            trigger: def.id.value.clone(),
            by: by.to_string(),
            at: out.now,
            reason: reason.to_string(),
        });
        out.decide(
            actor,
            Decision::TriggerPulled {
                trigger: def.id.value.clone(),
                severity: severity_name(def.severity.value).to_string(),
                reason: reason.to_string(),
            },
        );
        let trigger_actor = Actor::Trigger {
            trigger: def.id.value.clone(),
            person: (by != "alertmanager").then(|| by.to_string()),
        };
        self.run_actions(
            out,
            trigger_actor,
            &def.actions,
            &format!("trigger {}", def.id.value),
            reason,
        );
    }

    pub(crate) fn on_alert(
        &mut self,
        out: &mut Out,
        name: &str,
        labels: &BTreeMap<String, String>,
        status: AlertStatus,
        fingerprint: &str,
    ) -> Result<Actor, String> {
        let label = self.plan.metric_sources.iter().find_map(|m| {
            m.alertmanager
                .as_ref()
                .and_then(|a| a.rule_label.as_ref().map(|l| l.value.clone()))
        });
        let target = label
            .and_then(|l| labels.get(&l).cloned())
            .unwrap_or_else(|| name.to_string());
        let status_name = match status {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        };
        if self
            .state
            .alerts
            .get(fingerprint)
            .is_some_and(|s| s == status_name)
        {
            return Err(format!(
                "duplicate alert: fingerprint {fingerprint} is already {status_name}"
            ));
        }
        if !self.state.alerts.contains_key(fingerprint) && status == AlertStatus::Resolved {
            return Err(format!(
                "alert {fingerprint} resolved, but it was never seen firing"
            ));
        }
        let plan = Arc::clone(&self.plan);
        let rule_index = plan
            .rules
            .as_ref()
            .and_then(|r| r.list.iter().position(|x| x.id.as_str() == target));
        let trigger = plan.triggers.iter().find(|t| t.id.as_str() == target);
        if rule_index.is_none() && trigger.is_none() {
            return Err(format!(
                "alert `{target}` names no rule or manual trigger of the plan"
            ));
        }
        self.state
            .alerts
            .insert(fingerprint.to_string(), status_name.to_string());
        if let Some(r) = rule_index {
            let rule = &plan.rules.as_ref().expect("index found in rules").list[r];
            let actor = Actor::Rule {
                rule: rule.id.value.clone(),
            };
            let was_firing = self.state.rules[r].is_firing();
            self.state.rules[r].alert_firing = status == AlertStatus::Firing;
            match status {
                AlertStatus::Firing if !was_firing => {
                    self.state.rules[r].fired += 1;
                    out.decide(
                        actor.clone(),
                        Decision::RuleFiring {
                            rule: rule.id.value.clone(),
                            severity: severity_name(rule.severity.value).to_string(),
                            value: None,
                            source: "alertmanager".to_string(),
                        },
                    );
                    if self.state.status == RunStatus::Running {
                        let reason = format!("Alertmanager reports `{name}` firing");
                        self.run_actions(
                            out,
                            actor,
                            &rule.actions,
                            &format!("rule {}", rule.id.value),
                            &reason,
                        );
                    }
                }
                AlertStatus::Resolved if !self.state.rules[r].is_firing() && was_firing => {
                    out.decide(
                        actor.clone(),
                        Decision::RuleResolved {
                            rule: rule.id.value.clone(),
                            value: None,
                        },
                    );
                    self.close_pages(
                        out,
                        &actor,
                        &format!("rule:{}", rule.id.value),
                        &format!("rule `{}` resolved (Alertmanager)", rule.id.value),
                    );
                }
                _ => {}
            }
        } else if let Some(def) = trigger
            && status == AlertStatus::Firing
        {
            if self.state.status != RunStatus::Running {
                self.state.alerts.remove(fingerprint);
                return Err(format!("the run is {}", self.state.status.as_str()));
            }
            self.pull_trigger(
                out,
                Actor::Alertmanager,
                def,
                "alertmanager",
                &format!("Alertmanager reports `{name}` firing"),
            );
        }
        Ok(Actor::Alertmanager)
    }
}
