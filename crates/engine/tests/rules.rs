//! Rule semantics: Prometheus `for` and `keep_firing_for`, resets, and no-data policies
//! that act only once evaluations have been blind for the rule's `for`.

use engine::rules::{Observation, RuleStatus, RuleTracker, Timing, Transition};
use jiff::Timestamp;
use plan::NoData;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_756_000_000 + secs).unwrap()
}

/// A rule evaluated every 15 s: its no-data policy acts after `for`, at least 15 s.
fn timing(for_s: u64, keep_s: u64, no_data: NoData) -> Timing {
    Timing {
        for_ms: for_s * 1000,
        keep_firing_for_ms: keep_s * 1000,
        no_data,
        no_data_after_ms: for_s.max(15) * 1000,
    }
}

/// Feeds observations every 15 s and returns the transitions per evaluation.
fn run(t: Timing, observations: &[Observation]) -> (RuleTracker, Vec<Vec<Transition>>) {
    let mut rule = RuleTracker::default();
    let mut seen = Vec::new();
    for (i, o) in observations.iter().enumerate() {
        seen.push(rule.observe(at(i as i64 * 15), o.clone(), t));
    }
    (rule, seen)
}

use Observation::{Clear, Holds, Inconclusive};

#[test]
fn pending_then_firing_after_for() {
    // for: 30s; true at 0, 15, 30 → firing at the evaluation 30 s after the first.
    let (rule, seen) = run(
        timing(30, 0, NoData::Pause),
        &[Holds(2.0), Holds(2.0), Holds(2.0)],
    );
    assert_eq!(
        seen,
        vec![vec![Transition::Pending], vec![], vec![Transition::Firing]]
    );
    assert_eq!(rule.status, RuleStatus::Firing);
    assert_eq!(rule.active_since, Some(at(0)));
    assert_eq!(rule.firing_since, Some(at(30)));
}

#[test]
fn zero_for_fires_at_once() {
    let (rule, seen) = run(timing(0, 0, NoData::Pause), &[Clear(0.1), Holds(2.0)]);
    assert_eq!(seen, vec![vec![], vec![Transition::Firing]]);
    assert!(rule.is_firing());
}

#[test]
fn one_false_evaluation_resets_pending() {
    let (rule, seen) = run(
        timing(30, 0, NoData::Pause),
        &[
            Holds(2.0),
            Holds(2.0),
            Clear(0.5),
            Holds(2.0),
            Holds(2.0),
            Holds(2.0),
        ],
    );
    assert_eq!(
        seen,
        vec![
            vec![Transition::Pending],
            vec![],
            vec![Transition::Reset],
            vec![Transition::Pending],
            vec![],
            vec![Transition::Firing]
        ]
    );
    // The streak restarted at the fourth evaluation (45 s), so it fired at 75 s.
    assert_eq!(rule.firing_since, Some(at(75)));
}

#[test]
fn resolves_at_once_without_keep_firing_for() {
    let (rule, seen) = run(timing(0, 0, NoData::Pause), &[Holds(2.0), Clear(0.5)]);
    assert_eq!(
        seen,
        vec![vec![Transition::Firing], vec![Transition::Resolved]]
    );
    assert_eq!(rule.status, RuleStatus::Inactive);
}

#[test]
fn keep_firing_for_holds_after_the_condition_clears() {
    // keep_firing_for 30s: first false at 15 s; still firing at 30 s; resolved at 45 s.
    let (_, seen) = run(
        timing(0, 30, NoData::Pause),
        &[Holds(2.0), Clear(0.5), Clear(0.5), Clear(0.5)],
    );
    assert_eq!(
        seen,
        vec![
            vec![Transition::Firing],
            vec![],
            vec![],
            vec![Transition::Resolved]
        ]
    );
}

#[test]
fn keep_firing_for_restarts_when_the_condition_returns() {
    let (rule, seen) = run(
        timing(0, 30, NoData::Pause),
        &[
            Holds(2.0),
            Clear(0.5),
            Holds(2.0),
            Clear(0.5),
            Clear(0.5),
            Clear(0.5),
        ],
    );
    assert_eq!(
        seen[5],
        vec![Transition::Resolved],
        "30 s after the second clear, not the first: {seen:?}"
    );
    assert_eq!(rule.status, RuleStatus::Inactive);
}

#[test]
fn no_data_never_counts_as_a_pass() {
    // A firing rule stays firing through an outage under `pause` and `keep_state`.
    for policy in [NoData::Pause, NoData::KeepState] {
        let (rule, seen) = run(
            timing(0, 0, policy),
            &[
                Holds(2.0),
                Inconclusive("no series".into()),
                Inconclusive("no series".into()),
            ],
        );
        assert_eq!(seen[1], vec![Transition::Inconclusive("no series".into())]);
        assert_eq!(
            seen[2],
            vec![Transition::NoData("no series".into())],
            "inconclusive is reported once per outage; the policy acts after the grace"
        );
        assert!(
            rule.is_firing(),
            "{policy:?}: an outage must not resolve a firing rule"
        );
        assert!(rule.is_inconclusive());
    }
}

#[test]
fn no_data_keeps_pending_without_firing_under_keep_state() {
    let (rule, _) = run(
        timing(30, 0, NoData::KeepState),
        &[
            Holds(2.0),
            Inconclusive("x".into()),
            Inconclusive("x".into()),
            Inconclusive("x".into()),
        ],
    );
    assert_eq!(
        rule.status,
        RuleStatus::Pending,
        "blind evaluations neither fire nor reset"
    );
}

#[test]
fn no_data_fires_under_firing_only_once_blind_for_the_rules_for() {
    let (rule, seen) = run(
        timing(30, 0, NoData::Firing),
        &[
            Inconclusive("down".into()),
            Inconclusive("down".into()),
            Inconclusive("down".into()),
        ],
    );
    assert_eq!(
        seen,
        vec![
            vec![Transition::Inconclusive("down".into())],
            vec![],
            vec![Transition::NoData("down".into()), Transition::Firing]
        ],
        "inconclusive (pending) for 30 s, then the policy acts"
    );
    assert!(rule.is_firing());
    assert!(rule.no_data_acting());
}

#[test]
fn the_no_data_policy_waits_at_least_one_evaluation_interval() {
    // `for: 0`: one blind evaluation is pending; the next one, 15 s later, acts.
    for policy in [NoData::Pause, NoData::KeepState, NoData::Firing] {
        let (rule, seen) = run(
            timing(0, 0, policy),
            &[Inconclusive("x".into()), Inconclusive("x".into())],
        );
        assert_eq!(
            seen[0],
            vec![Transition::Inconclusive("x".into())],
            "{policy:?}"
        );
        assert_eq!(seen[1][0], Transition::NoData("x".into()), "{policy:?}");
        assert!(rule.no_data_acting());
        assert_eq!(rule.is_firing(), policy == NoData::Firing, "{policy:?}");
    }
}

#[test]
fn data_back_during_the_grace_means_the_policy_never_acted() {
    let (rule, seen) = run(
        timing(60, 0, NoData::Pause),
        &[
            Clear(0.1),
            Inconclusive("gap".into()),
            Inconclusive("gap".into()),
            Clear(0.1),
            Inconclusive("gap".into()),
        ],
    );
    assert_eq!(seen[3], vec![Transition::DataBack]);
    assert!(
        !seen
            .iter()
            .flatten()
            .any(|t| matches!(t, Transition::NoData(_))),
        "never blind for 60 s in a row: {seen:?}"
    );
    assert!(rule.is_inconclusive() && !rule.no_data_acting());
    assert_eq!(
        rule.inconclusive_since,
        Some(at(60)),
        "a new blind streak starts after data came back"
    );
}

#[test]
fn a_pending_rule_keeps_its_streak_through_the_grace_and_fires_on_data() {
    // Pending from 0 s (for: 30 s); blind at 15 s (grace 30 s, not reached); true again at
    // 30 s: the streak that began at 0 s has lasted 30 s, so it fires.
    let (rule, seen) = run(
        timing(30, 0, NoData::Pause),
        &[Holds(2.0), Inconclusive("gap".into()), Holds(2.0)],
    );
    assert_eq!(
        seen[2],
        vec![Transition::DataBack, Transition::Firing],
        "{seen:?}"
    );
    assert!(rule.is_firing());
}

#[test]
fn data_coming_back_is_reported_and_judged() {
    let (rule, seen) = run(
        timing(0, 0, NoData::Pause),
        &[Inconclusive("down".into()), Clear(0.1)],
    );
    assert_eq!(seen[1], vec![Transition::DataBack]);
    assert!(!rule.is_inconclusive());
    assert_eq!(rule.last_value, Some(0.1));
}
