//! The operator commands on a live `golive run`, as a person at a terminal uses them: the
//! run drives golive's built-in router in front of two real backends and judges them on
//! the router's own telemetry.
//!
//! `golive status` (for people and `--json`) shows the phase, the next items with
//! countdowns, the ramp, rule states and open actions; `decide`, `signoff`, `pause`,
//! `resume`, `stop-the-line` and `ack` work for the people allowed to use them and are
//! refused — exit 1, a message naming what is missing — for the others, for unknown people
//! and unknown items; every refusal is in the run log as `refused.*`.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;

const STAGES: &str = r#"    - weight: 5
      hold: 3s
    - weight: 25
      hold: 60s
    - weight: 50
      hold: 60s
    - weight: 100
      hold: 60s
"#;

const RULES: &str = r#"rules:
  evaluation_interval: 1s
  list:
    - id: canary_errors
      title: Canary error rate above 5 %
      when: error_rate > 5%
      for: 1s
      severity: critical
      actions: [rollback, { page: sre }]
"#;

const EXTRA: &str = r#"checklists:
  - id: pre_go_live
    title: Pre-go-live checks
    due: T-1s
    items:
      - id: smoke_tests
        title: Smoke tests passed on the new version
        owner: release
triggers:
  - id: security_incident
    title: Security incident
    severity: critical
    actions: [rollback, { page: sre }]
    who: [sre]
"#;

/// A command that must be refused: exit 1, every `needles` in its message; returns the
/// message.
async fn refused(golive: &Golive, args: &[&str], needles: &[&str]) -> String {
    let out = golive.cli(args).await;
    assert_eq!(out.code, Some(1), "expected a refusal: {out}");
    let message = out.stderr.trim().to_string();
    assert!(message.starts_with("refused: "), "{out}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "the refusal does not say `{needle}`: {out}"
        );
    }
    message
}

fn rule_state<'a>(status: &'a Value, rule: &str) -> &'a Value {
    status["rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["id"] == rule))
        .unwrap_or_else(|| panic!("no rule {rule} in the status: {status:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_act_with_authority_and_every_refusal_is_logged() {
    let dir = scratch();
    let stable = Backend::start("stable", dir.path())
        .await
        .expect("stable backend");
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");
    let router_port = free_port();
    let mut parts = PlanParts::new("E2E operator commands");
    parts.t0 = t0_in(6);
    parts.vars = vec![
        ("router_port", router_port.to_string()),
        ("stable_addr", stable.addr.to_string()),
        ("canary_addr", canary.addr.to_string()),
    ];
    parts.router = Some("local");
    parts.metric_source = Some("builtin");
    parts.routers = BUILTIN_ROUTER;
    parts.metric_sources = BUILTIN_METRICS;
    parts.slis = ERROR_RATE_ON_BUILTIN;
    parts.stages = STAGES;
    parts.rules = RULES;
    parts.extra = EXTRA;
    parts.gate_requires = "[pre_go_live]";
    let mut golive = Golive::start(dir.path(), &plan_yaml(&parts)).await;
    let load = steady_load(std::net::SocketAddr::from(([127, 0, 0, 1], router_port)));
    let mut refusals = 0;

    // Before go: the gate is open, the checklist is due, nothing is on the new version.
    let status = golive
        .wait_for_status("the go/no-go gate open", Duration::from_secs(10), |s| {
            s["open_actions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["id"] == "go_no_go"))
        })
        .await;
    assert_eq!(status["state"], "running", "{status:#}");
    assert_eq!(status["ramp"]["weight"], 0, "{status:#}");
    assert_eq!(status["ramp"]["stages"], 4, "{status:#}");
    for (what, offset) in [
        ("decision due: Go/no-go", "T-0:00"),
        ("checklist due: Pre-go-live checks", "T-0:00:01"),
    ] {
        let item = status["next"]
            .as_array()
            .and_then(|next| next.iter().find(|n| n["what"] == what))
            .unwrap_or_else(|| panic!("`{what}` is not among the next items: {status:#}"));
        assert!(
            item["in_seconds"]
                .as_i64()
                .is_some_and(|s| (0..=6).contains(&s)),
            "countdown to T0: {item}"
        );
        assert_eq!(item["offset"], offset, "{item}");
    }
    let human = golive.act(&["status"]).await.stdout;
    for needle in [
        "E2E operator commands — run ",
        "state: running",
        "ramp: stage 0/4, 0 % on the new version",
        "next:",
        "T-0:00  decision due: Go/no-go",
        "checklist due: Pre-go-live checks",
        "rules:",
        "canary_errors",
        "open:",
        "go_no_go",
    ] {
        assert!(
            human.contains(needle),
            "`golive status` lacks `{needle}`:\n{human}"
        );
    }
    assert!(
        human.lines().any(|l| l.trim_start().starts_with("in ")),
        "no countdown in `golive status`:\n{human}"
    );

    // The go/no-go decision: only go_no_go holders, only with the checklist complete.
    refused(
        &golive,
        &["decide", "go", "--reason", "ship it", "--as", SRE],
        &["`sam`", "lacks the `go_no_go` authority", "release"],
    )
    .await;
    refused(
        &golive,
        &["decide", "go", "--as", "nobody"],
        &["no person `nobody`"],
    )
    .await;
    refused(
        &golive,
        &["decide", "go", "--as", RELEASE_MANAGER],
        &["required checklists are not complete", "smoke_tests"],
    )
    .await;
    refused(
        &golive,
        &["signoff", "smoke_tests", "--as", OBSERVER],
        &["does not hold role `release`"],
    )
    .await;
    refused(
        &golive,
        &["signoff", "smoke_test", "--as", RELEASE_MANAGER],
        &["no checklist item", "`smoke_test`"],
    )
    .await;
    refusals += 5;
    golive
        .act(&["signoff", "smoke_tests", "--as", RELEASE_MANAGER])
        .await;
    refused(
        &golive,
        &["signoff", "smoke_tests", "--as", RELEASE_MANAGER],
        &["already done"],
    )
    .await;
    refusals += 1;
    let go = golive
        .act(&[
            "decide",
            "go",
            "--reason",
            "all green",
            "--as",
            RELEASE_MANAGER,
        ])
        .await;
    assert!(go.stdout.starts_with("accepted (event "), "{go}");

    // Stage 1: a person pauses; the hold ends, nothing advances; a person resumes.
    golive
        .wait_for(
            "stage 1 (5 %) entered",
            Duration::from_secs(10),
            stage_entered(5),
        )
        .await;
    refused(
        &golive,
        &["pause", "--reason", "curious", "--as", OBSERVER],
        &["`vic`", "lacks the `pause` authority"],
    )
    .await;
    refusals += 1;
    golive
        .act(&["pause", "--reason", "watching the dashboards", "--as", SRE])
        .await;
    let status = golive
        .wait_for_status("the ramp paused at 5 %", Duration::from_secs(5), |s| {
            s["ramp"]["state"]
                .as_str()
                .is_some_and(|st| st.starts_with("paused"))
        })
        .await;
    assert_eq!(status["ramp"]["weight"], 5, "{status:#}");
    assert_eq!(status["ramp"]["stage"], 1, "{status:#}");
    assert_eq!(status["phase"], "cutover", "{status:#}");
    assert!(
        rule_state(&status, "canary_errors")["state"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{status:#}"
    );
    let hold = golive
        .wait_for(
            "the 5 % hold to end while paused",
            Duration::from_secs(10),
            |e| decision(e, "stage_hold_ended").is_some_and(|d| d["weight"] == 5),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = golive.events().await;
    assert!(
        !events
            .iter()
            .any(|e| seq(e) > seq(&hold) && decision(e, "stage_entering").is_some()),
        "the ramp advanced while paused:\n{}",
        summarize(&events)
    );
    golive
        .act(&["resume", "--reason", "dashboards look fine", "--as", SRE])
        .await;
    golive
        .wait_for(
            "stage 2 (25 %) entered after the resume",
            Duration::from_secs(10),
            stage_entered(25),
        )
        .await;
    let status = golive.status().await;
    assert_eq!(status["ramp"]["weight"], 25, "{status:#}");
    let hold_item = status["next"]
        .as_array()
        .and_then(|next| next.iter().find(|n| n["what"] == "hold ends at 25 %"))
        .unwrap_or_else(|| panic!("the hold's end is not among the next items: {status:#}"));
    assert!(
        hold_item["in_seconds"]
            .as_i64()
            .is_some_and(|s| (50..=60).contains(&s)),
        "{hold_item}"
    );
    let rule = rule_state(&status, "canary_errors");
    assert_eq!(
        rule["value"], 0.0,
        "the healthy canary's error rate: {status:#}"
    );

    // Stop the line: only the trigger's roles, only a trigger the plan has.
    refused(
        &golive,
        &[
            "stop-the-line",
            "--trigger",
            "security_incident",
            "--reason",
            "token leak",
            "--as",
            OBSERVER,
        ],
        &["lacks the `stop_the_line` authority"],
    )
    .await;
    refused(
        &golive,
        &[
            "stop-the-line",
            "--trigger",
            "security_incident",
            "--reason",
            "token leak",
            "--as",
            RELEASE_MANAGER,
        ],
        &["may be pulled only by roles sre"],
    )
    .await;
    refused(
        &golive,
        &[
            "stop-the-line",
            "--trigger",
            "data_breach",
            "--reason",
            "token leak",
            "--as",
            SRE,
        ],
        &["no manual trigger `data_breach`", "security_incident"],
    )
    .await;
    refusals += 3;
    let hits_before = canary.hit_count();
    golive
        .act(&[
            "stop-the-line",
            "--trigger",
            "security_incident",
            "--reason",
            "token leak in the new version's logs",
            "--as",
            SRE,
        ])
        .await;
    let confirmed = golive
        .wait_for(
            "the rollback confirmed by the built-in router",
            Duration::from_secs(10),
            is_decision("rollback_confirmed"),
        )
        .await;
    assert!(hits_before > 0, "the canary got no traffic before the stop");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let late = hits_after_confirmation(&canary.log_path, at(&confirmed));
    assert!(
        late.is_empty(),
        "the canary received {} requests after the rollback: {:?}",
        late.len(),
        &late[..late.len().min(5)]
    );

    // The trigger paged the SRE: only the paged person acknowledges.
    let status = golive
        .wait_for_status("an open page after the stop", Duration::from_secs(5), |s| {
            s["open_actions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["kind"] == "page"))
        })
        .await;
    assert_eq!(status["ramp"]["weight"], 0, "{status:#}");
    assert_eq!(status["state"], "rolled_back", "{status:#}");
    assert!(
        status["ramp"]["rollback_duration_ms"].is_u64(),
        "{status:#}"
    );
    // Nothing holds any more: no hold ends, neither in the ramp nor among the next items.
    assert!(status["ramp"]["hold_ends"].is_null(), "{status:#}");
    assert!(
        !status["next"].to_string().contains("hold ends"),
        "{status:#}"
    );
    let page = status["open_actions"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["kind"] == "page"))
        .expect("found above")["id"]
        .as_str()
        .expect("a page id")
        .to_string();
    let human = golive.act(&["status"]).await.stdout;
    assert!(
        human.contains(&page) && human.contains("rolled back in "),
        "`golive status` after the rollback:\n{human}"
    );
    refused(
        &golive,
        &["ack", &page, "--as", OBSERVER],
        &["`vic` is not among those paged"],
    )
    .await;
    refused(&golive, &["ack", "page-999", "--as", SRE], &["page-999"]).await;
    refusals += 2;
    golive.act(&["ack", &page, "--as", SRE]).await;

    // Settled, the run is over; the built-in router in golive goes on serving stable.
    golive
        .wait_for_output("the built-in router keeps serving", Duration::from_secs(10))
        .await;
    let stable_before = stable.hit_count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        stable.hit_count() > stable_before + 20,
        "stable stopped serving when the run ended:\n{}",
        golive.output()
    );
    let stats = load.stop();
    assert_eq!(stats.lost, 0, "requests lost: {:?}", stats.lost_at);

    // Every refusal above is in the log, with the person and the same reason.
    let events = golive.events().await;
    let refused_events: Vec<&Value> = events
        .iter()
        .filter(|e| kind(e).starts_with("refused."))
        .collect();
    assert_eq!(
        refused_events.len(),
        refusals,
        "refusals in the log:\n{}",
        summarize(&events)
    );
    let kinds: Vec<&str> = refused_events.iter().map(|e| kind(e)).collect();
    for expected in [
        "refused.decide",
        "refused.sign_off",
        "refused.pause",
        "refused.stop_the_line",
        "refused.ack",
    ] {
        assert!(kinds.contains(&expected), "no {expected} in {kinds:?}");
    }
    let sam_go = refused_events
        .iter()
        .find(|e| kind(e) == "refused.decide" && e["body"]["refused"]["input"]["person"] == SRE)
        .unwrap_or_else(|| panic!("sam's refused go is not in the log"));
    assert!(
        sam_go["body"]["refused"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("lacks the `go_no_go` authority")),
        "{sam_go}"
    );
    assert!(
        events.iter().any(|e| decision(e, "trigger_pulled")
            .is_some_and(|d| d["trigger"] == "security_incident")
            && e["actor"]["person"] == SRE),
        "{}",
        summarize(&events)
    );
    assert_eq!(
        stages_entered(&events),
        vec![5, 25],
        "{}",
        summarize(&events)
    );

    golive.stop().await;
    golive.verify_audit().await;
}
