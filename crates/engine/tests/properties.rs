//! Property test: random sequences of inputs never break the engine's invariants.
//!
//! - weights are only ever set to a stage's weight of the plan, or 0;
//! - no stage is entered while the ramp is paused or a pausing or rolling-back rule fires;
//! - every decision that needs an authority was taken by a person holding it;
//! - replaying the log gives the same state as the live engine, and an engine rebuilt
//!   from any prefix of the log goes on to write exactly the rest of it;
//! - record times never go backwards, and nothing panics.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use engine::{
    Actor, AlertStatus, Decision, Effect, EffectOutcome, Engine, Input, Reading, Record,
    RecordBody, Resolution, Sample,
};
use jiff::Timestamp;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Tick,
    /// Answer every pending effect as a healthy world would.
    AnswerAll,
    /// Answer one pending effect (by position) with an outcome.
    Answer(usize, u8),
    Unknown(usize),
    /// Answer a pending metrics query with one value for every SLI (or no data/error).
    Metrics(u8),
    SignAll,
    Person(usize, u8, usize),
    Alert(usize, bool, u8),
    /// The shell restarts: what `Engine::restart_inputs` says to hand it.
    Restart,
}

const PEOPLE: &[&str] = &[
    "sarah", "david", "marcus", "emily", "robert", "vp", "nobody",
];
const TARGETS: &[&str] = &[
    "security_audit",
    "backups",
    "tls_valid",
    "snapshot",
    "readiness",
    "go_no_go",
    "deploy",
    "smoke",
    "restore_dns",
    "security_incident",
    "stage",
    "stage:50",
    "page-1",
    "page-2",
    "stop_the_line#1/brief_support",
    "support_ok",
    "low_errors",
    "retro",
    "bogus",
];
const ALERTS: &[&str] = &[
    "critical_errors",
    "slow",
    "cpu_hot",
    "security_incident",
    "unknown_alert",
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Tick),
        6 => Just(Step::AnswerAll),
        2 => (0usize..8, 0u8..5).prop_map(|(i, o)| Step::Answer(i, o)),
        1 => (0usize..8).prop_map(Step::Unknown),
        3 => (0u8..6).prop_map(Step::Metrics),
        3 => Just(Step::SignAll),
        6 => (0..PEOPLE.len(), 0u8..11, 0..TARGETS.len()).prop_map(|(p, k, t)| Step::Person(p, k, t)),
        1 => (0..ALERTS.len(), any::<bool>(), 0u8..3).prop_map(|(a, f, n)| Step::Alert(a, f, n)),
        1 => Just(Step::Restart),
    ]
}

/// Seconds to move the clock before a step: often nothing, sometimes a lot.
fn delay() -> impl Strategy<Value = i64> {
    prop_oneof![4 => Just(0), 2 => Just(1), 4 => Just(15), 4 => Just(300), 3 => Just(1800), 1 => Just(7200), 1 => Just(43_200)]
}

fn input_for(engine: &Engine, step: &Step) -> Vec<Input> {
    let state = engine.state();
    let pending: Vec<&engine::state::PendingEffect> = state.pending.values().collect();
    let person = |i: usize| PEOPLE[i % PEOPLE.len()].to_string();
    match step {
        Step::Tick => vec![Input::Tick],
        Step::Restart => engine.restart_inputs(),
        Step::AnswerAll => {
            let mut inputs: Vec<Input> = pending
                .iter()
                .map(|p| answer(&p.request.id, &p.request.effect, 0))
                .collect();
            for s in state
                .steps
                .iter()
                .filter(|s| s.kind == "roll_call" && s.status == engine::state::StepStatus::Running)
            {
                for person in ["sarah", "marcus"] {
                    inputs.push(Input::RollCallAnswer {
                        person: person.into(),
                        step: s.id.clone(),
                    });
                }
            }
            inputs
        }
        Step::Answer(i, o) => pending
            .get(*i % pending.len().max(1))
            .map(|p| vec![answer(&p.request.id, &p.request.effect, *o)])
            .unwrap_or_default(),
        Step::Unknown(i) => pending
            .get(*i % pending.len().max(1))
            .map(|p| vec![Input::EffectOutcomeUnknown { id: p.request.id }])
            .unwrap_or_default(),
        Step::Metrics(v) => pending
            .iter()
            .filter_map(|p| match &p.request.effect {
                Effect::QueryMetrics { slis } => Some(Input::MetricSamples {
                    query: Some(p.request.id),
                    samples: slis
                        .iter()
                        .map(|q| Sample {
                            sli: q.sli.clone(),
                            version: q.version.clone(),
                            reading: match v {
                                0 => Reading::Value(0.05),
                                1 => Reading::Value(if q.sli == "p95_latency" {
                                    1500.0
                                } else {
                                    3.0
                                }),
                                2 => Reading::Value(95.0),
                                3 => Reading::NoData {
                                    reason: "none".into(),
                                },
                                4 => Reading::Error {
                                    reason: "down".into(),
                                },
                                _ => Reading::Value(f64::NAN),
                            },
                        })
                        .collect(),
                }),
                _ => None,
            })
            .collect(),
        Step::SignAll => {
            let owner = |role: &str| match role {
                "security_lead" => "robert",
                "sre_lead" => "marcus",
                _ => "sarah",
            };
            let mut inputs: Vec<Input> = state
                .checklists
                .iter()
                .flat_map(|c| c.items.iter())
                .filter(|i| i.manual)
                .map(|i| Input::SignOff {
                    person: owner(&i.owner).into(),
                    item: i.id.clone(),
                })
                .collect();
            inputs.push(Input::RollCallAnswer {
                person: "sarah".into(),
                step: "readiness".into(),
            });
            inputs.push(Input::RollCallAnswer {
                person: "marcus".into(),
                step: "readiness".into(),
            });
            inputs.push(Input::Decide {
                person: "sarah".into(),
                gate: "go_no_go".into(),
                go: true,
                reason: "green".into(),
            });
            inputs
        }
        Step::Person(p, kind, t) => {
            let person = person(*p);
            let target = TARGETS[*t].to_string();
            let reason = "because".to_string();
            vec![match kind {
                0 => Input::SignOff {
                    person,
                    item: target,
                },
                1 => Input::Waive {
                    person,
                    item: target,
                    reason,
                },
                2 => Input::RollCallAnswer {
                    person,
                    step: target,
                },
                3 => Input::Decide {
                    person,
                    gate: target,
                    go: t % 3 != 0,
                    reason,
                },
                // Stopping the line ends the ramp: rare, so most runs get deep into it.
                4 if *t < 2 => Input::StopTheLine {
                    person,
                    trigger: target,
                    reason,
                },
                4 => Input::Tick,
                5 => Input::Pause { person, reason },
                6 => Input::Resume { person, reason },
                7 => Input::Promote { person, reason },
                8 if *t < 2 => Input::Rollback { person, reason },
                8 => Input::Tick,
                9 => Input::Ack { person, target },
                _ => Input::Resolve {
                    person,
                    target,
                    outcome: [Resolution::Done, Resolution::Failed, Resolution::Retry][t % 3],
                },
            }]
        }
        Step::Alert(a, firing, n) => vec![Input::Alert {
            name: ALERTS[*a].to_string(),
            labels: Default::default(),
            status: if *firing {
                AlertStatus::Firing
            } else {
                AlertStatus::Resolved
            },
            fingerprint: format!("fp-{a}-{n}"),
        }],
    }
}

fn feed(
    engine: &mut Engine,
    log: &mut Vec<Record>,
    fed: &mut Vec<(Timestamp, Input, usize)>,
    t: Timestamp,
    input: Input,
) {
    log.extend(engine.handle(t, input.clone()));
    fed.push((t, input, log.len()));
}

fn answer(id: &u64, effect: &Effect, outcome: u8) -> Input {
    let outcome = match (effect, outcome) {
        (Effect::SetWeights { weights, .. }, 0 | 1) => EffectOutcome::Weights {
            weights: weights.clone(),
        },
        (Effect::SetWeights { .. }, 2) => EffectOutcome::Weights {
            weights: [("stable".to_string(), 60), ("canary".to_string(), 40)].into(),
        },
        (Effect::QueryMetrics { .. }, 0) => {
            return Input::MetricSamples {
                query: Some(*id),
                samples: Vec::new(),
            };
        }
        (_, 0) => EffectOutcome::Done { output: None },
        (_, 1) => EffectOutcome::Rehearsed,
        _ => EffectOutcome::Failed {
            reason: "boom".into(),
            output: None,
        },
    };
    Input::EffectResult { id: *id, outcome }
}

/// Roles holding each authority in the fixture plan.
fn holds(plan: &plan::Plan, role: &str, authority: plan::Authority) -> bool {
    plan.roles
        .iter()
        .any(|r| r.id.as_str() == role && r.authorities.iter().any(|a| **a == authority))
}

fn check_log(plan: &plan::Plan, log: &[Record]) -> Result<(), TestCaseError> {
    let stage_weights: BTreeSet<u32> = plan
        .ramp
        .iter()
        .flat_map(|r| r.stages.iter().map(|s| u32::from(s.weight.value)))
        .chain([0])
        .collect();
    let stops: BTreeSet<&str> = plan
        .rules
        .iter()
        .flat_map(|r| r.list.iter())
        .filter(|r| {
            r.actions
                .iter()
                .any(|a| matches!(**a, plan::Action::Pause | plan::Action::Rollback))
        })
        .map(|r| r.id.as_str())
        .collect();
    let mut firing: BTreeSet<String> = BTreeSet::new();
    let mut paused = false;
    let mut last = None::<Timestamp>;
    for (n, r) in log.iter().enumerate() {
        prop_assert!(
            last.is_none_or(|l| l <= r.at),
            "record {n} goes back in time"
        );
        last = Some(r.at);
        match &r.body {
            RecordBody::Effect(e) => {
                if let Effect::SetWeights { weights, .. } = &e.effect {
                    let canary = weights.get("canary").copied().unwrap_or(0);
                    prop_assert!(
                        stage_weights.contains(&canary),
                        "record {n}: weight {canary} is not a stage weight"
                    );
                    prop_assert_eq!(weights.values().sum::<u32>(), 100);
                }
            }
            RecordBody::Decision(d) => {
                let person_role = match &r.actor {
                    Actor::Person {
                        role: Some(role), ..
                    } => Some(role.as_str()),
                    _ => None,
                };
                let need = |authority: plan::Authority| -> Result<(), TestCaseError> {
                    if let Actor::Person { .. } = &r.actor {
                        let role = person_role.unwrap_or("");
                        prop_assert!(
                            holds(plan, role, authority),
                            "record {n}: {d:?} by {:?} without {authority:?}",
                            r.actor
                        );
                    }
                    Ok(())
                };
                match d {
                    Decision::Go { .. } | Decision::NoGo { .. } => {
                        prop_assert!(
                            person_role.is_some(),
                            "record {n}: a gate decided by {:?}",
                            r.actor
                        );
                        need(plan::Authority::GoNoGo)?;
                    }
                    Decision::ChecklistItemWaived { .. }
                    | Decision::StepWaived { .. }
                    | Decision::StageGatesWaived { .. } => need(plan::Authority::Waive)?,
                    Decision::RampResumed { .. } => need(plan::Authority::Pause)?,
                    Decision::RampPaused { .. } => {
                        need(plan::Authority::Pause)?;
                        paused = true;
                    }
                    Decision::RollbackStarted { .. } => need(plan::Authority::Rollback)?,
                    Decision::TriggerPulled { .. } => need(plan::Authority::StopTheLine)?,
                    Decision::RuleFiring { rule, .. } if stops.contains(rule.as_str()) => {
                        firing.insert(rule.clone());
                    }
                    Decision::RuleResolved { rule, .. } | Decision::RuleDeactivated { rule } => {
                        firing.remove(rule);
                    }
                    Decision::StageEntering { stage, .. } => {
                        prop_assert!(
                            !paused,
                            "record {n}: stage {stage} entered while the ramp is paused"
                        );
                        prop_assert!(
                            firing.is_empty(),
                            "record {n}: stage {stage} entered while {firing:?} fire"
                        );
                    }
                    _ => {}
                }
                if matches!(d, Decision::RampResumed { .. }) {
                    paused = false;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_inputs_keep_the_invariants(
        steps in proptest::collection::vec((delay(), step(), prop::bool::weighted(0.8)), 1..90),
        cut in 0.0f64..1.0,
    ) {
        let plan = common::small_plan();
        let mut engine = Engine::new(Arc::clone(&plan), "staging", "prop").unwrap();
        let mut now: Timestamp = "2025-08-23T04:50:00Z".parse().unwrap();
        let mut log: Vec<Record> = Vec::new();
        // Every input given, with the log's length after it: to restart from any point.
        let mut fed: Vec<(Timestamp, Input, usize)> = Vec::new();
        feed(&mut engine, &mut log, &mut fed, now, Input::Start);
        for (seconds, step, responsive) in &steps {
            now = now.checked_add(jiff::SignedDuration::from_secs(*seconds)).unwrap();
            // Time passes through every deadline on the way, as a live shell would; a
            // responsive world answers each effect at once.
            while let Some(t) = engine.poll_timeout().filter(|t| *t <= now) {
                feed(&mut engine, &mut log, &mut fed, t, Input::Tick);
                if *responsive {
                    for input in input_for(&engine, &Step::AnswerAll) {
                        feed(&mut engine, &mut log, &mut fed, t, input);
                    }
                }
            }
            for input in input_for(&engine, step) {
                feed(&mut engine, &mut log, &mut fed, now, input);
            }
            if *responsive {
                for input in input_for(&engine, &Step::AnswerAll) {
                    feed(&mut engine, &mut log, &mut fed, now, input);
                }
            }
        }
        // A crash at any point: rebuild from the log so far, give the same inputs again,
        // and the engine writes exactly what the live one wrote.
        let at = ((fed.len() as f64) * cut) as usize;
        let kept = fed[at].2;
        let mut resumed = Engine::replay(Arc::clone(&plan), "staging", "prop", &log[..kept]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut again = log[..kept].to_vec();
        for (t, input, _) in &fed[at + 1..] {
            again.extend(resumed.handle(*t, input.clone()));
        }
        prop_assert!(again == log, "the resumed engine wrote another log");
        check_log(&plan, &log)?;
        let replayed = Engine::replay(Arc::clone(&plan), "staging", "prop", &log).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(serde_json::to_string(replayed.state()).unwrap(), serde_json::to_string(engine.state()).unwrap());
        prop_assert_eq!(replayed.pending_effects(), engine.pending_effects());
        // What a restarted shell retries is the whole request, queries included.
        for request in engine.pending_effects() {
            if let Effect::QueryMetrics { slis } = &request.effect {
                prop_assert!(!slis.is_empty(), "pending metrics query {} lost its queries", request.id);
                let logged = log.iter().find_map(|r| match &r.body {
                    RecordBody::Effect(e) if e.id == request.id => Some(e.clone()),
                    _ => None,
                });
                prop_assert_eq!(logged, Some(request.clone()));
            }
        }
    }
}

#[test]
fn a_changed_log_does_not_replay() {
    let plan = common::small_plan();
    let r = common::rehearse_text(&plan, "env: staging\n");
    let mut log = r.log.clone();
    // Someone edits a decision in the middle of the log.
    let n = log
        .iter()
        .position(|x| matches!(&x.body, RecordBody::Decision(Decision::Go { .. })))
        .unwrap();
    if let RecordBody::Decision(Decision::Go { reason, .. }) = &mut log[n].body {
        *reason = "nobody said that".to_string();
    }
    let err = Engine::replay(
        Arc::clone(&plan),
        "staging",
        engine::rehearsal::REHEARSAL_RUN_ID,
        &log,
    )
    .err()
    .expect("a mismatch");
    assert!(
        err.to_string()
            .starts_with(&format!("record {} differs", n + 1)),
        "{err}"
    );
    // A removed record is found too.
    let mut log = r.log.clone();
    log.remove(n);
    assert!(
        Engine::replay(
            Arc::clone(&plan),
            "staging",
            engine::rehearsal::REHEARSAL_RUN_ID,
            &log
        )
        .is_err()
    );
}
