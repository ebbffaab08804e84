//! Threshold ladders and the breach-to-rollback time.
//!
//! Rules on the same SLI and direction form a ladder: a milder action (notify < page <
//! pause < rollback) should need a milder-or-equal condition than a harsher one. A milder
//! rule whose condition implies a harsher rule's, with the harsher rule firing no later, can
//! never act first: it is unreachable.

use crate::diagnostic::{Code, Sink};
use crate::model::{Action, Plan, Router, Rule};
use crate::units::{Comparison, Condition, Dur};
use crate::validate::place;

/// How harsh a rule's response is: its harshest action.
fn harshness(rule: &Rule) -> (u8, &'static str) {
    rule.actions
        .iter()
        .map(|a| match &a.value {
            Action::Rollback => (4, "rollback"),
            Action::Pause => (3, "pause"),
            Action::Page(_) => (2, "page"),
            Action::Playbook(_) => (2, "playbook"),
            Action::Notify(_) => (1, "notify"),
        })
        .max()
        .unwrap_or((0, "nothing"))
}

/// Whether `b` holding always means `a` holds too (same SLI and direction assumed).
fn implies(b: &Condition, a: &Condition) -> bool {
    let (tb, ta) = (b.threshold.value, a.threshold.value);
    if b.comparison.is_upper_bound() {
        tb > ta
            || (tb == ta
                && (a.comparison == Comparison::AtLeast || b.comparison == Comparison::Above))
    } else {
        tb < ta
            || (tb == ta
                && (a.comparison == Comparison::AtMost || b.comparison == Comparison::Below))
    }
}

pub fn check(plan: &Plan, sink: &mut Sink<'_>) {
    let Some(rules) = &plan.rules else { return };
    ladders(rules.list.iter().map(|r| &r.value), sink);
    if let Some(ramp) = &plan.ramp {
        budget(plan, &ramp.rollback.budget.value, sink);
    }
}

fn ladders<'a>(rules: impl Iterator<Item = &'a Rule> + Clone, sink: &mut Sink<'_>) {
    let version = |r: &Rule| {
        r.version
            .as_ref()
            .map(|v| v.value.clone())
            .unwrap_or_default()
    };
    for b in rules.clone() {
        let (hb, nb) = harshness(b);
        for a in rules.clone() {
            let (ha, na) = harshness(a);
            let same = a.when.sli == b.when.sli
                && a.when.comparison.is_upper_bound() == b.when.comparison.is_upper_bound()
                && version(a) == version(b);
            if !same || ha <= hb || !implies(&b.when, &a.when) {
                continue;
            }
            let loc = place(b.when.loc, b.id.loc);
            if a.for_.value <= b.for_.value {
                sink.report(
                    Code::RuleUnreachable,
                    loc,
                    format!(
                        "rule `{}` ({nb}) can never act first: whenever `{}` holds for {}, rule `{}` ({na}, `{}` for {}) has already fired",
                        b.id.value, b.when.value, b.for_.value, a.id.value, a.when.value, a.for_.value
                    ),
                    format!(
                        "give `{}` a milder threshold than `{}`, or a shorter `for`",
                        b.id.value, a.id.value
                    ),
                )
                .note(place(a.when.loc, a.id.loc), format!("`{}` is here", a.id.value));
                break;
            }
            if b.when.threshold.value != a.when.threshold.value {
                sink.report(
                    Code::LadderInverted,
                    loc,
                    format!(
                        "rule `{}` ({nb}) needs `{}`, a worse condition than the harsher rule `{}` ({na}) needs: `{}`",
                        b.id.value, b.when.value, a.id.value, a.when.value
                    ),
                    "a milder action should come at a milder threshold; swap the thresholds or the actions",
                )
                .note(place(a.when.loc, a.id.loc), format!("`{}` is here", a.id.value));
                break;
            }
        }
    }
}

/// A duration with a fraction of a second shown as one: `5m15.1s`, not `315100ms`.
fn human(d: Dur) -> String {
    let ms = d.millis();
    if ms < 1000 || ms.is_multiple_of(1000) {
        return d.to_string();
    }
    let whole = Dur(ms / 1000 * 1000).to_string();
    let fraction = format!("{:03}", ms % 1000);
    let fraction = fraction.trim_end_matches('0');
    match whole.strip_suffix('s') {
        Some(rest) => format!("{rest}.{fraction}s"),
        None => format!("{whole}0.{fraction}s"),
    }
}

fn budget(plan: &Plan, budget: &Dur, sink: &mut Sink<'_>) {
    let Some(rules) = &plan.rules else { return };
    let interval = rules.evaluation_interval.value;
    // The routers the environments use; all routers when no environment names one.
    let used: Vec<&Router> = {
        let named: Vec<&str> = plan
            .environments
            .iter()
            .filter_map(|e| e.router.as_ref())
            .map(|r| r.as_str())
            .collect();
        plan.routers
            .iter()
            .filter(|r| named.is_empty() || named.contains(&r.id.as_str()))
            .map(|r| &r.value)
            .collect()
    };
    let slowest = used
        .iter()
        .map(|r| {
            let (d, what) = crate::reaction::actuation(r);
            (d, format!("{} `{}`", what, r.id.value))
        })
        .max_by_key(|(d, _)| *d)
        .unwrap_or((Dur::ZERO, "no router".into()));
    for rule in &rules.list {
        if !rule
            .actions
            .iter()
            .any(|a| matches!(a.value, Action::Rollback))
        {
            continue;
        }
        let worst = Dur(rule.for_.value.millis() + interval.millis() + slowest.0.millis());
        if worst > *budget {
            let loc = if rule.for_.loc.is_known() {
                rule.for_.loc
            } else {
                place(rule.id.loc, rule.loc)
            };
            sink.report(
                Code::RollbackBudget,
                loc,
                format!(
                    "rule `{}` can take {} from breach to rollback (for {} + evaluation every {interval} + {}), more than the {budget} rollback budget",
                    rule.id.value,
                    human(worst),
                    rule.for_.value,
                    slowest.1
                ),
                "shorten `for`, evaluate more often, or raise `ramp.rollback.budget` if the runbook allows",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(text: &str) -> Condition {
        text.parse().unwrap()
    }

    #[test]
    fn fractions_of_seconds() {
        assert_eq!(human(Dur(315_100)), "5m15.1s");
        assert_eq!(human(Dur(300_100)), "5m0.1s");
        assert_eq!(human(Dur(300_000)), "5m");
        assert_eq!(human(Dur(250)), "250ms");
    }

    #[test]
    fn implication_between_conditions() {
        assert!(implies(&c("e > 2%"), &c("e > 1%")));
        assert!(!implies(&c("e > 1%"), &c("e > 2%")));
        assert!(implies(&c("e > 1%"), &c("e > 1%")));
        assert!(implies(&c("e > 1%"), &c("e >= 1%")));
        assert!(!implies(&c("e >= 1%"), &c("e > 1%")));
        assert!(implies(&c("a < 95%"), &c("a < 99%")));
        assert!(!implies(&c("a < 99%"), &c("a < 95%")));
    }
}
