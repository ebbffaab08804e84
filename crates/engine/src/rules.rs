//! Rule state with Prometheus alerting semantics, one evaluation at a time.
//!
//! inactive → pending when the condition first holds; pending → firing once it has held
//! for `for` (at an evaluation at least `for` after the first true one); one false
//! evaluation resets pending to inactive; a firing rule whose condition stops holding
//! keeps firing for `keep_firing_for` after the first false evaluation. An inconclusive
//! evaluation (no data, source error) is never a "false". Like a condition, missing data
//! is judged over time: the rule is "inconclusive (pending)" from the first blind
//! evaluation, and its `no_data` policy acts only once evaluations have been blind for the
//! rule's `for` (at least one evaluation interval). Until then the rule keeps its state.

use jiff::Timestamp;
use plan::NoData;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    Inactive,
    Pending,
    Firing,
}

/// What one evaluation saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The condition holds for this value.
    Holds(f64),
    /// The condition does not hold for this value.
    Clear(f64),
    /// No data or a source error.
    Inconclusive(String),
}

/// A change worth recording.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Pending,
    Firing,
    Resolved,
    Reset,
    /// The first blind evaluation: inconclusive (pending); the policy does not act yet.
    Inconclusive(String),
    /// Blind for the grace: the `no_data` policy acts from now on.
    NoData(String),
    DataBack,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleTracker {
    pub status: RuleStatus,
    /// First evaluation of the current true streak (Prometheus `ActiveAt`).
    pub active_since: Option<Timestamp>,
    pub firing_since: Option<Timestamp>,
    /// First false evaluation while firing with `keep_firing_for`.
    pub keep_firing_since: Option<Timestamp>,
    /// Set while evaluations are inconclusive.
    pub inconclusive_since: Option<Timestamp>,
    /// Blind for the grace: the `no_data` policy is in force.
    #[serde(default)]
    pub no_data_acting: bool,
    pub last_value: Option<f64>,
}

impl Default for RuleTracker {
    fn default() -> Self {
        RuleTracker {
            status: RuleStatus::Inactive,
            active_since: None,
            firing_since: None,
            keep_firing_since: None,
            inconclusive_since: None,
            no_data_acting: false,
            last_value: None,
        }
    }
}

/// The rule's timing, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub for_ms: u64,
    pub keep_firing_for_ms: u64,
    pub no_data: NoData,
    /// How long evaluations must be blind before the `no_data` policy acts: the rule's
    /// `for`, at least one evaluation interval.
    pub no_data_after_ms: u64,
}

fn elapsed_ms(from: Timestamp, to: Timestamp) -> i64 {
    to.duration_since(from).as_millis() as i64
}

impl RuleTracker {
    pub fn is_firing(&self) -> bool {
        self.status == RuleStatus::Firing
    }

    pub fn is_inconclusive(&self) -> bool {
        self.inconclusive_since.is_some()
    }

    /// Blind for the grace: the `no_data` policy acts.
    pub fn no_data_acting(&self) -> bool {
        self.no_data_acting
    }

    /// Applies one evaluation at `now` and returns the transitions it caused, in order.
    pub fn observe(
        &mut self,
        now: Timestamp,
        observation: Observation,
        timing: Timing,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let holds = match observation {
            Observation::Holds(v) => {
                self.last_value = Some(v);
                self.data_back(&mut out);
                Some(true)
            }
            Observation::Clear(v) => {
                self.last_value = Some(v);
                self.data_back(&mut out);
                Some(false)
            }
            Observation::Inconclusive(reason) => {
                self.last_value = None;
                let since = match self.inconclusive_since {
                    Some(since) => since,
                    None => {
                        self.inconclusive_since = Some(now);
                        out.push(Transition::Inconclusive(reason.clone()));
                        now
                    }
                };
                if !self.no_data_acting && elapsed_ms(since, now) >= timing.no_data_after_ms as i64
                {
                    self.no_data_acting = true;
                    out.push(Transition::NoData(reason));
                }
                match timing.no_data {
                    // Blind for the grace counts as the condition having held for `for`.
                    NoData::Firing if self.no_data_acting => {
                        self.keep_firing_since = None;
                        if self.status != RuleStatus::Firing {
                            self.active_since.get_or_insert(since);
                            self.fire(now, &mut out);
                        }
                        None
                    }
                    NoData::Firing | NoData::Pause | NoData::KeepState => None,
                }
            }
        };
        match holds {
            None => {}
            Some(true) => {
                self.keep_firing_since = None;
                match self.status {
                    RuleStatus::Inactive => {
                        self.active_since = Some(now);
                        if timing.for_ms == 0 {
                            self.fire(now, &mut out);
                        } else {
                            self.status = RuleStatus::Pending;
                            out.push(Transition::Pending);
                        }
                    }
                    RuleStatus::Pending => {
                        let since = self.active_since.unwrap_or(now);
                        if elapsed_ms(since, now) >= timing.for_ms as i64 {
                            self.fire(now, &mut out);
                        }
                    }
                    RuleStatus::Firing => {}
                }
            }
            Some(false) => match self.status {
                RuleStatus::Inactive => {}
                RuleStatus::Pending => {
                    self.status = RuleStatus::Inactive;
                    self.active_since = None;
                    out.push(Transition::Reset);
                }
                RuleStatus::Firing => {
                    let since = *self.keep_firing_since.get_or_insert(now);
                    if elapsed_ms(since, now) >= timing.keep_firing_for_ms as i64 {
                        self.resolve();
                        out.push(Transition::Resolved);
                    }
                }
            },
        }
        out
    }

    fn fire(&mut self, now: Timestamp, out: &mut Vec<Transition>) {
        self.status = RuleStatus::Firing;
        self.firing_since = Some(now);
        out.push(Transition::Firing);
    }

    fn data_back(&mut self, out: &mut Vec<Transition>) {
        self.no_data_acting = false;
        if self.inconclusive_since.take().is_some() {
            out.push(Transition::DataBack);
        }
    }

    /// Back to inactive (resolved, or the rule stopped being active).
    pub fn resolve(&mut self) {
        self.status = RuleStatus::Inactive;
        self.active_since = None;
        self.firing_since = None;
        self.keep_firing_since = None;
    }

    pub fn reset(&mut self) {
        *self = RuleTracker::default();
    }
}
