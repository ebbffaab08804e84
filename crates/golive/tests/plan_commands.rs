//! `golive validate`, `golive schema` and `golive timeline` as a user runs them: exit codes,
//! human output and JSON.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golive() -> Command {
    let mut command = Command::cargo_bin("golive").expect("the golive binary is built");
    command.current_dir(repo());
    command
}

fn json(output: &[u8]) -> Value {
    serde_json::from_slice(output).expect("the output is JSON")
}

const AIVO: &str = "examples/aivo/plan.yaml";

#[test]
fn validate_accepts_the_aivo_plan() {
    let output = golive()
        .args(["validate", AIVO, "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report = json(&output);
    assert_eq!(report["ok"], true);
    assert_eq!(report["errors"], 0);
    let summary = &report["summary"];
    for key in [
        "checklist_items",
        "timeline_steps",
        "ramp_stages",
        "rules",
        "manual_triggers",
        "playbook_actions",
        "roles",
        "people",
        "audiences",
        "dated_messages",
        "cadences",
        "templates",
        "success_criteria",
        "followup_tasks",
    ] {
        assert!(
            summary[key].as_u64().is_some_and(|n| n > 0),
            "summary.{key} = {}",
            summary[key]
        );
    }
    assert_eq!(summary["ramp_stages"], 5);
    golive().args(["validate", AIVO]).assert().success().stdout(
        predicate::str::contains("The plan holds")
            .and(predicate::str::contains("the plan is usable")),
    );
}

#[test]
fn validate_fails_on_errors_with_places_and_help() {
    let plan = "crates/plan/tests/broken/unknown_comms.yaml";
    let output = golive()
        .args(["validate", plan, "--json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let report = json(&output);
    assert_eq!(report["ok"], false);
    assert_eq!(report["errors"], 4);
    let diagnostics = report["diagnostics"]
        .as_array()
        .expect("a list of diagnostics");
    let first = &diagnostics[0];
    assert_eq!(first["severity"], "error");
    assert_eq!(first["code"], "unknown-audience");
    assert_eq!(first["file"], plan);
    assert_eq!(first["line"], 28);
    assert_eq!(first["column"], 23);
    assert_eq!(first["source_line"], "          audiences: [executive]");
    assert_eq!(first["help"], "did you mean `executives`?");
    golive().args(["validate", plan]).assert().code(1).stdout(
        predicate::str::contains(format!("--> {plan}:28:23")).and(predicate::str::contains(
            "= help: did you mean `executives`?",
        )),
    );
}

#[test]
fn validate_passes_with_warnings_only() {
    let plan = "crates/plan/tests/broken/seed_no_backup.yaml";
    let output = golive()
        .args(["validate", plan, "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report = json(&output);
    assert_eq!(report["ok"], true);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["warnings"], 4);
}

#[test]
fn validate_reports_syntax_errors_and_unreadable_files() {
    let output = golive()
        .args([
            "validate",
            "crates/plan/tests/broken/malformed.yaml",
            "--json",
        ])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let report = json(&output);
    assert_eq!(report["diagnostics"][0]["code"], "yaml-syntax");
    assert!(report["summary"].is_null());

    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("missing.yaml");
    let output = golive()
        .arg("validate")
        .arg(&missing)
        .arg("--json")
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json(&output)["diagnostics"][0]["code"], "unreadable-file");
    golive()
        .arg("validate")
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains("unreadable-file"));
}

#[test]
fn usage_errors_exit_2() {
    golive().arg("validate").assert().code(2);
    golive().args(["validate", AIVO, "--jsn"]).assert().code(2);
    golive()
        .args(["timeline", AIVO, "--env", "nowhere"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("production, staging, local"));
}

#[test]
fn schema_is_the_committed_file() {
    let committed =
        std::fs::read(repo().join("docs/plan.schema.json")).expect("docs/plan.schema.json");
    let output = golive()
        .arg("schema")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(
        output == committed,
        "docs/plan.schema.json differs from `golive schema`"
    );
    let schema = json(&output);
    assert_eq!(schema["title"], "Plan");
}

#[test]
fn timeline_lists_items_in_time_order() {
    let output = golive()
        .args(["timeline", AIVO, "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report = json(&output);
    assert_eq!(report["timezone"], "America/New_York");
    let items = report["items"].as_array().expect("items");
    let times: Vec<jiff::Timestamp> = items
        .iter()
        .map(|i| {
            i["time"]
                .as_str()
                .expect("time")
                .parse::<jiff::ZonedDateTime>()
                .expect("a zoned time")
                .timestamp()
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "items are not in time order"
    );
    let kinds: std::collections::BTreeSet<&str> = items
        .iter()
        .map(|i| i["kind"].as_str().expect("kind"))
        .collect();
    for kind in [
        "checklist_due",
        "step",
        "ramp_stage",
        "message",
        "cadence",
        "success",
        "follow_up",
    ] {
        assert!(kinds.contains(kind), "no {kind} in the timeline");
    }
    let first = &items[0];
    assert_eq!(first["at"], "T-7d");
    assert_eq!(first["local"], "Saturday, August 16, 2025 at 2:00 AM EDT");
    let month = items
        .iter()
        .find(|i| i["at"] == "T+1 month")
        .expect("a T+1 month item");
    assert_eq!(month["local"], "Tuesday, September 23, 2025 at 2:00 AM EDT");

    let all = golive()
        .args(["timeline", AIVO, "--json", "--all"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let all_items = json(&all)["items"].as_array().expect("items").len();
    assert!(
        all_items > items.len() + 100,
        "--all lists each cadence occurrence"
    );

    let human = golive()
        .args(["timeline", AIVO])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let human = String::from_utf8(human).expect("UTF-8");
    assert!(
        human.contains("T+0:05      Sat Aug 23 2025  2:05 AM EDT"),
        "{human}"
    );
}

#[test]
fn timeline_marks_rehearsed_steps_and_refuses_broken_plans() {
    let output = golive()
        .args(["timeline", AIVO, "--json", "--env", "local"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report = json(&output);
    assert_eq!(report["env"], "local");
    assert!(
        report["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|i| i["rehearsed"] == true)
    );
    golive()
        .args(["timeline", "crates/plan/tests/broken/unknown_comms.yaml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown-audience"));
}
