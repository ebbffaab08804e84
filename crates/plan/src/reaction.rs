//! How fast each environment takes traffic off the new version after a breach, at worst:
//! the time a rollback rule needs to see the breach (its metric window filling, its `for`,
//! one evaluation interval) plus the time the environment's router needs to apply weight 0.
//!
//! `golive validate` prints it per environment and stage, beside the rollback budget.

use serde::Serialize;

use crate::model::{Action, Plan, Router};
use crate::units::{Comparison, Dur, Unit};

/// One environment's worst cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reaction {
    pub env: String,
    pub router: Option<String>,
    /// How long the router takes to apply a weight, at worst, and why.
    pub actuation_ms: u64,
    pub actuation: String,
    pub budget_ms: Option<u64>,
    /// The ramp's stage weights, each watched by every rule below.
    pub stages: Vec<u8>,
    pub rules: Vec<RuleReaction>,
}

/// One rollback rule's worst case in one environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleReaction {
    pub rule: String,
    pub condition: String,
    /// False when the environment's metric source has no query for the rule's SLI: the
    /// rule cannot see a breach there at all.
    pub judged_here: bool,
    pub for_ms: u64,
    pub interval_ms: u64,
    /// For a ratio over a window W, the time a total failure needs to move the ratio past
    /// the threshold θ: about W·θ/100.
    pub window_lag_ms: u64,
    pub worst_ms: u64,
    pub within_budget: Option<bool>,
}

/// How long a router takes to apply a weight, at worst, and how that was estimated.
pub fn actuation(router: &Router) -> (Dur, String) {
    let timeout = router.timeout.as_ref().map(|t| t.value);
    if router.builtin.is_some() {
        (Dur(100), "built-in router 100ms".into())
    } else if router.haproxy.is_some() {
        (Dur(1000), "HAProxy runtime API 1s".into())
    } else if router.nginx.is_some() {
        (Dur(2000), "nginx reload 2s".into())
    } else {
        let t = timeout.unwrap_or(Dur(30_000));
        let note = if timeout.is_some() {
            "its timeout"
        } else {
            "no timeout set, 30s assumed"
        };
        (t, format!("command router {t} ({note})"))
    }
}

pub fn of(plan: &Plan) -> Vec<Reaction> {
    let Some(rules) = &plan.rules else {
        return Vec::new();
    };
    let interval = rules.evaluation_interval.value.millis();
    let budget_ms = plan.ramp.as_ref().map(|r| r.rollback.budget.value.millis());
    let stages: Vec<u8> = plan
        .ramp
        .iter()
        .flat_map(|r| r.stages.iter().map(|s| s.weight.value))
        .collect();
    plan.environments
        .iter()
        .map(|env| {
            let router = env
                .router
                .as_ref()
                .and_then(|id| plan.routers.iter().find(|r| r.id.as_str() == id.as_str()));
            let (actuation_dur, actuation_text) = router
                .map(|r| actuation(r))
                .unwrap_or((Dur::ZERO, "no router".into()));
            let source_of_env = plan.metric_source_of(env);
            let source = source_of_env.map(|s| s.id.value.clone());
            // The window a ratio's lag is computed over: the built-in source's, when the
            // plan sets it.
            let window = source_of_env
                .and_then(|s| s.builtin.as_ref())
                .and_then(|b| b.window.as_ref().map(|w| w.value));
            let rules = rules
                .list
                .iter()
                .filter(|rule| {
                    rule.actions
                        .iter()
                        .any(|a| matches!(a.value, Action::Rollback))
                })
                .map(|rule| {
                    let sli = plan.slis.iter().find(|s| s.id.as_str() == rule.when.sli);
                    let judged_here = match (&source, sli) {
                        (Some(source), Some(sli)) => sli.queries.contains_key(source),
                        _ => false,
                    };
                    let window_lag_ms = match (sli, window) {
                        (Some(sli), Some(window)) if sli.ratio && *sli.unit == Unit::Percent => {
                            let threshold = rule.when.threshold.value;
                            let error_share = match rule.when.comparison {
                                Comparison::Above | Comparison::AtLeast => threshold,
                                Comparison::Below | Comparison::AtMost => 100.0 - threshold,
                            };
                            (window.millis() as f64 * error_share.clamp(0.0, 100.0) / 100.0) as u64
                        }
                        _ => 0,
                    };
                    let for_ms = rule.for_.value.millis();
                    let worst_ms = window_lag_ms + for_ms + interval + actuation_dur.millis();
                    RuleReaction {
                        rule: rule.id.value.clone(),
                        condition: rule.when.value.to_string(),
                        judged_here,
                        for_ms,
                        interval_ms: interval,
                        window_lag_ms,
                        worst_ms,
                        within_budget: budget_ms.map(|b| worst_ms <= b),
                    }
                })
                .collect();
            Reaction {
                env: env.id.value.clone(),
                router: router.map(|r| r.id.value.clone()),
                actuation_ms: actuation_dur.millis(),
                actuation: actuation_text,
                budget_ms,
                stages: stages.clone(),
                rules,
            }
        })
        .collect()
}

/// The table `golive validate` prints.
pub fn render(reactions: &[Reaction]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for reaction in reactions {
        if reaction.rules.is_empty() {
            continue;
        }
        let stages: Vec<String> = reaction.stages.iter().map(|w| format!("{w} %")).collect();
        let _ = writeln!(
            out,
            "breach to traffic off the new version, worst case, environment `{}` ({}), at every stage ({}):",
            reaction.env,
            reaction.actuation,
            stages.join(", ")
        );
        for rule in &reaction.rules {
            let verdict = match (rule.judged_here, rule.within_budget, reaction.budget_ms) {
                (false, _, _) => {
                    "NOT WATCHED here: the metric source has no query for its SLI".to_owned()
                }
                (true, Some(true), Some(budget)) => format!("within the {} budget", Dur(budget)),
                (true, Some(false), Some(budget)) => format!("OVER the {} budget", Dur(budget)),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {:<30} {:<28} {:>8} = window {} + for {} + every {} + router {}   {verdict}",
                rule.rule,
                rule.condition,
                Dur(rule.worst_ms).to_string(),
                Dur(rule.window_lag_ms),
                Dur(rule.for_ms),
                Dur(rule.interval_ms),
                Dur(reaction.actuation_ms),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"
golive: 1
meta: {name: R, owner: ops}
t0: "2025-08-23T02:00:00-04:00[America/New_York]"
people: [{id: p, name: P}]
roles: [{id: ops, title: Ops, primary: p, backup: p, authorities: [go_no_go]}]
environments:
  - {id: local, router: local, metric_source: builtin}
  - {id: prod, router: alb, metric_source: prom}
routers:
  - id: local
    builtin: {listen: "127.0.0.1:1", groups: [{name: stable, backends: ["127.0.0.1:2"]}, {name: canary, backends: ["127.0.0.1:3"]}]}
  - id: alb
    command: {set: "true", get: "true"}
    timeout: 1m
metric_sources:
  - {id: builtin, builtin: {window: 1m}}
  - {id: prom, prometheus: {url: "http://127.0.0.1:9090"}}
slis:
  - {id: error_rate, unit: percent, ratio: true, queries: {builtin: error_rate, prom: "x"}}
  - {id: cpu, unit: percent, queries: {prom: "y"}}
ramp:
  start: T+0:00
  stages: [{weight: 5, hold: 1h}, {weight: 100, hold: 1h}]
  rollback: {budget: 5m}
rules:
  evaluation_interval: 15s
  list:
    - {id: stop_errors, when: error_rate > 5%, for: 2m, severity: critical, actions: [rollback]}
    - {id: stop_cpu, when: cpu > 95%, for: 5m, severity: critical, actions: [rollback]}
    - {id: page_only, when: error_rate > 1%, severity: warning, actions: [pause]}
"#;

    #[test]
    fn worst_case_per_environment_adds_window_for_interval_and_router() {
        let plan = crate::from_yaml(PLAN).unwrap();
        let reactions = of(&plan);
        assert_eq!(reactions.len(), 2);
        let local = &reactions[0];
        assert_eq!(local.stages, vec![5, 100]);
        assert_eq!(local.rules.len(), 2, "only rollback rules");
        let errors = &local.rules[0];
        // 1m window × 5 % = 3s, + 2m + 15s + 100ms.
        assert_eq!(errors.window_lag_ms, 3_000);
        assert_eq!(errors.worst_ms, 3_000 + 120_000 + 15_000 + 100);
        assert_eq!(errors.within_budget, Some(true));
        assert!(
            !local.rules[1].judged_here,
            "the built-in source cannot see CPU"
        );
        let prod = &reactions[1];
        let cpu = &prod.rules[1];
        assert!(cpu.judged_here);
        assert_eq!(cpu.worst_ms, 300_000 + 15_000 + 60_000);
        assert_eq!(cpu.within_budget, Some(false));
        let text = render(&reactions);
        assert!(text.contains("OVER the 5m budget"), "{text}");
        assert!(text.contains("NOT WATCHED here"), "{text}");
    }

    #[test]
    fn an_environment_naming_no_source_is_judged_by_the_plans_only_one() {
        let plan = PLAN
            .replace("router: local, metric_source: builtin}", "router: local}")
            .replace("  - {id: prod, router: alb, metric_source: prom}\n", "")
            .replace(
                "  - {id: prom, prometheus: {url: \"http://127.0.0.1:9090\"}}\n",
                "",
            )
            .replace(
                "queries: {builtin: error_rate, prom: \"x\"}",
                "queries: {builtin: error_rate}",
            )
            .replace("queries: {prom: \"y\"}", "queries: {builtin: error_rate}");
        let plan = crate::from_yaml(&plan).unwrap();
        assert_eq!(plan.metric_sources.len(), 1);
        let reactions = of(&plan);
        assert_eq!(reactions.len(), 1);
        let errors = &reactions[0].rules[0];
        assert!(
            errors.judged_here,
            "the only source judges what it can read"
        );
        assert_eq!(errors.window_lag_ms, 3_000, "and its window counts");
        assert!(!render(&reactions).contains("NOT WATCHED"));
    }
}
