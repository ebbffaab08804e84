//! Checklist items and probe steps verified by a metric, judged by the engine on the SLI's
//! readings (never handed to a prober), and the stage warm-up that keeps rules from acting
//! on the empty metric window right after a weight change.

use std::sync::Arc;

use jiff::Timestamp;

use crate::input::{Reading, Sample};
use crate::record::{Actor, Decision, Judgement, Verdict};
use crate::state::*;
use crate::{Engine, Out, add_ms};

/// How long a metric probe step without a `timeout` waits for a conclusive reading.
pub(crate) const DEFAULT_METRIC_STEP_MS: u64 = 300_000;

/// A checklist item verified by a metric, found once when the run is set up.
#[derive(Debug, Clone)]
pub(crate) struct MeasuredItem {
    pub checklist: usize,
    pub item: usize,
    /// The SLI and version it reads, or why this environment cannot read it.
    pub key: Result<(u16, u16), String>,
}

/// What one reading says about a condition.
enum Seen {
    Pass(String),
    Fail(String),
    Inconclusive(String),
}

fn judge(condition: &plan::Condition, reading: &Reading) -> Seen {
    match reading {
        Reading::Value(v) => {
            let text = format!(
                "{} is {v}{} (condition: {condition})",
                condition.sli, condition.threshold.unit
            );
            if condition.comparison.holds(*v, condition.threshold.value) {
                Seen::Pass(text)
            } else {
                Seen::Fail(text)
            }
        }
        Reading::NoData { reason } => Seen::Inconclusive(format!("no data: {reason}")),
        Reading::Error { reason } => Seen::Inconclusive(format!("source error: {reason}")),
    }
}

impl Engine {
    /// The metric check of a plan verification, with the version it judges.
    pub(crate) fn metric_check<'a>(
        &'a self,
        verify: &'a plan::Verify,
    ) -> Option<(&'a plan::Condition, &'a str)> {
        match verify {
            plan::Verify::Metric(m) => Some((
                &m.when,
                m.version
                    .as_ref()
                    .map(|v| v.value.as_str())
                    .unwrap_or(self.canary_group()),
            )),
            _ => None,
        }
    }

    /// Why an SLI cannot be read for a version in this environment, if it cannot.
    pub(crate) fn unmeasurable(&self, sli: &str, version: &str) -> Option<String> {
        match self.queries.get(sli).and_then(|m| m.get(version)) {
            Some(Ok(_)) => None,
            Some(Err(reason)) => Some(format!(
                "cannot be verified in environment `{}`: {reason}",
                self.env
            )),
            None => Some(format!(
                "cannot be verified in environment `{}`: no query for SLI `{sli}` and version `{version}`",
                self.env
            )),
        }
    }

    /// The judgement of a condition on an SLI this environment cannot read, if it cannot:
    /// inconclusive for good.
    pub(crate) fn unjudgeable(&self, what: &str, sli: &str, version: &str) -> Option<Judgement> {
        self.unmeasurable(sli, version).map(|reason| Judgement {
            what: what.to_string(),
            verdict: Verdict::Inconclusive,
            detail: reason.replacen("cannot be verified", "cannot be judged", 1),
            unmeasurable: true,
        })
    }

    /// Starts judging a metric item (at start, and again on `resolve retry`); one that
    /// cannot be measured here fails at once, with the reason.
    pub(crate) fn start_measuring_item(&mut self, out: &mut Out, c: usize, i: usize, actor: Actor) {
        let Some(m) = self
            .measured_items
            .iter()
            .find(|m| m.checklist == c && m.item == i)
        else {
            return;
        };
        match m.key.clone() {
            Ok(_) => {
                let item = &mut self.state.checklists[c].items[i];
                item.status = ItemStatus::Measuring;
                item.reason = None;
                item.inconclusive = false;
            }
            Err(reason) => self.item_measured(out, c, i, actor, Err((reason, true))),
        }
    }

    /// Records the verdict on a metric item: done, or failed (`inconclusive` when no
    /// verdict could be had).
    fn item_measured(
        &mut self,
        out: &mut Out,
        c: usize,
        i: usize,
        actor: Actor,
        verdict: Result<String, (String, bool)>,
    ) {
        let checklist = self.state.checklists[c].id.clone();
        let item = &mut self.state.checklists[c].items[i];
        let id = item.id.clone();
        item.at = Some(out.now);
        match verdict {
            Ok(seen) => {
                item.status = ItemStatus::Done;
                item.reason = Some(seen);
                item.inconclusive = false;
                out.decide(
                    actor.clone(),
                    Decision::ChecklistItemDone {
                        checklist,
                        item: id,
                    },
                );
                self.check_checklist_complete(out, c, actor);
            }
            Err((reason, inconclusive)) => {
                item.status = ItemStatus::Failed;
                item.reason = Some(reason.clone());
                item.inconclusive = inconclusive;
                out.decide(
                    actor,
                    Decision::ChecklistItemFailed {
                        checklist,
                        item: id,
                        reason,
                    },
                );
            }
        }
    }

    /// A measuring item whose checklist is due and that has seen only inconclusive
    /// readings fails as inconclusive. One with no reading yet waits for its first.
    pub(crate) fn fail_inconclusive_items(&mut self, out: &mut Out, c: usize) {
        for i in 0..self.state.checklists[c].items.len() {
            let item = &self.state.checklists[c].items[i];
            if item.status != ItemStatus::Measuring {
                continue;
            }
            let Some(last) = item.reason.clone() else {
                continue;
            };
            let reason = format!("inconclusive until the checklist was due: {last}");
            self.item_measured(out, c, i, Actor::Schedule, Err((reason, true)));
        }
    }

    /// Visits the SLI and version of every metric item being judged and of a running
    /// metric probe step; stops early when `visit` returns true.
    pub(crate) fn visit_measured(&self, visit: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        for m in &self.measured_items {
            let (Ok(_), Some(cl)) = (&m.key, self.state.checklists.get(m.checklist)) else {
                continue;
            };
            if cl.due_at.is_none() || cl.items[m.item].status != ItemStatus::Measuring {
                continue;
            }
            let def = &self.plan.checklists[m.checklist].items[m.item];
            if let Some((condition, version)) = self.metric_check(&def.verify)
                && visit(&condition.sli, version)
            {
                return true;
            }
        }
        for (rollback, i) in self.measuring_steps() {
            let Some(def) = crate::timeline::step_def(&self.plan, &self.order, rollback, i) else {
                continue;
            };
            if let Some((condition, version)) =
                def.probe.as_ref().and_then(|p| self.metric_check(p))
                && visit(&condition.sli, version)
            {
                return true;
            }
        }
        false
    }

    /// Running metric probe steps: the timeline's current step and the rollback's.
    fn measuring_steps(&self) -> impl Iterator<Item = (bool, usize)> + '_ {
        let timeline = self
            .state
            .steps
            .get(self.state.cursor)
            .filter(|s| s.measuring && s.status == StepStatus::Running)
            .map(|_| (false, self.state.cursor));
        let rollback = self.state.rollback.as_ref().and_then(|rb| {
            rb.steps
                .get(rb.cursor)
                .filter(|s| s.measuring && s.status == StepStatus::Running)
                .map(|_| (true, rb.cursor))
        });
        timeline.into_iter().chain(rollback)
    }

    /// Starts a metric probe step: it is judged at the next evaluations until its
    /// `timeout` (default 5 minutes); one that cannot be measured here fails at once.
    pub(crate) fn start_measuring_step(&mut self, out: &mut Out, rollback: bool, i: usize) {
        let plan = Arc::clone(&self.plan);
        let Some(def) = crate::timeline::step_def(&plan, &self.order, rollback, i) else {
            return;
        };
        let Some((condition, version)) = def.probe.as_ref().and_then(|p| self.metric_check(p))
        else {
            return;
        };
        if let Some(reason) = self.unmeasurable(&condition.sli, version) {
            if let Some(st) = self.step_mut(rollback, i) {
                st.inconclusive = true;
            }
            self.fail_step(out, Actor::System, rollback, i, reason);
            return;
        }
        let timeout = def
            .timeout
            .as_ref()
            .map(|t| t.millis())
            .unwrap_or(DEFAULT_METRIC_STEP_MS);
        if let Some(st) = self.step_mut(rollback, i) {
            st.measuring = true;
            st.inconclusive = false;
            st.reason = None;
            st.deadline = Some(add_ms(out.now, timeout as i64));
        }
    }

    /// A metric probe step whose timeout passed with only inconclusive readings.
    pub(crate) fn measuring_step_timed_out(&mut self, out: &mut Out, rollback: bool, i: usize) {
        let Some(st) = self.step_mut(rollback, i) else {
            return;
        };
        st.measuring = false;
        st.inconclusive = true;
        let reason = match st.reason.take() {
            Some(last) => format!("inconclusive until the step's timeout: {last}"),
            None => "no reading before the step's timeout".to_string(),
        };
        self.fail_step(out, Actor::Schedule, rollback, i, reason);
    }

    /// Judges the metric items and metric probe steps on readings taken at `at`.
    pub(crate) fn judge_measured(&mut self, out: &mut Out, samples: &[Sample], at: Timestamp) {
        let plan = Arc::clone(&self.plan);
        for m in 0..self.measured_items.len() {
            let (c, i) = (
                self.measured_items[m].checklist,
                self.measured_items[m].item,
            );
            let cl = &self.state.checklists[c];
            let Some(due) = cl.due_at else { continue };
            if cl.items[i].status != ItemStatus::Measuring {
                continue;
            }
            let def = &plan.checklists[c].items[i];
            let Some((condition, version)) = self.metric_check(&def.verify) else {
                continue;
            };
            let Some(sample) = samples
                .iter()
                .find(|s| s.sli == condition.sli && s.version == version)
            else {
                continue;
            };
            match judge(condition, &sample.reading) {
                Seen::Pass(seen) => self.item_measured(out, c, i, Actor::MetricSource, Ok(seen)),
                Seen::Fail(seen) => {
                    self.item_measured(out, c, i, Actor::MetricSource, Err((seen, false)))
                }
                Seen::Inconclusive(reason) if at >= due => {
                    let reason = format!("inconclusive until the checklist was due: {reason}");
                    self.item_measured(out, c, i, Actor::MetricSource, Err((reason, true)));
                }
                Seen::Inconclusive(reason) => {
                    self.state.checklists[c].items[i].reason = Some(reason);
                }
            }
        }
        let steps: Vec<(bool, usize)> = self.measuring_steps().collect();
        for (rollback, i) in steps {
            let Some(def) = crate::timeline::step_def(&plan, &self.order, rollback, i) else {
                continue;
            };
            let Some((condition, version)) = def.probe.as_ref().and_then(|p| self.metric_check(p))
            else {
                continue;
            };
            let Some(sample) = samples
                .iter()
                .find(|s| s.sli == condition.sli && s.version == version)
            else {
                continue;
            };
            match judge(condition, &sample.reading) {
                Seen::Pass(seen) => {
                    self.finish_step(out, Actor::MetricSource, rollback, i, &seen);
                }
                Seen::Fail(seen) => {
                    if let Some(st) = self.step_mut(rollback, i) {
                        st.measuring = false;
                    }
                    self.fail_step(out, Actor::MetricSource, rollback, i, seen);
                }
                Seen::Inconclusive(reason) => {
                    if let Some(st) = self.step_mut(rollback, i) {
                        st.reason = Some(reason);
                    }
                }
            }
        }
    }

    // === warm-up ===

    /// Whether readings taken at `at` fall in a stage's warm-up (or while its weights are
    /// being set): the window then mostly holds the old weights' requests.
    pub(crate) fn warming_up(&self, at: Timestamp) -> bool {
        match self.state.ramp.status {
            RampStatus::Entering => true,
            RampStatus::Holding => {
                !self.state.ramp.warmup_over && self.state.ramp.warmup_until.is_some_and(|w| at < w)
            }
            _ => false,
        }
    }

    /// Notes the end of the current stage's warm-up once its time has come.
    pub(crate) fn end_warmup(&mut self, out: &mut Out) {
        let ramp = &self.state.ramp;
        if ramp.status != RampStatus::Holding
            || ramp.warmup_over
            || ramp.warmup_until.is_none_or(|w| w > out.now)
        {
            return;
        }
        let (stage, weight) = (ramp.stage.unwrap_or(0), ramp.weight);
        self.state.ramp.warmup_over = true;
        out.decide(Actor::Schedule, Decision::StageWarmedUp { stage, weight });
    }
}
