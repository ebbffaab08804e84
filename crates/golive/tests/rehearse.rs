//! `golive rehearse` as a person and a machine use it: the shipped scenarios of the AIVO
//! plan, a scenario with a mistake, and byte-identical output on a second run.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golive(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_golive"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("golive runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_breach_at_25_percent_is_rehearsed_for_a_person() {
    let (code, out, err) = golive(&[
        "rehearse",
        "examples/aivo/plan.yaml",
        "--scenario",
        "examples/aivo/scenarios/error-rate-25.yaml",
    ]);
    assert_eq!(code, 0, "{err}");
    for expected in [
        "no command or probe was executed",
        "Outcome:    ROLLED_BACK — rolled back (rule stop_error_rate): error_rate is 8% (threshold: error_rate > 5%)",
        "Progress by phase",
        "Ramp: 5% at T+2:00:00.8 → 25% at T+4:00:01.6 → 50% not reached",
        "T+4:22:15        stop_error_rate (critical, value 8% from metrics)",
        "confirmed T+4:22:15.8: traffic off the new version in 0.8 s (budget 5m00s, within budget)",
        "Messages that would have been sent:",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
}

#[test]
fn json_output_is_for_machines_and_identical_on_a_second_run() {
    let args = [
        "rehearse",
        "examples/aivo/plan.yaml",
        "--scenario",
        "examples/aivo/scenarios/no-go.yaml",
        "--json",
    ];
    let (code, first, err) = golive(&args);
    assert_eq!(code, 0, "{err}");
    let (_, second, _) = golive(&args);
    assert!(
        first == second,
        "two rehearsals of the same scenario differ"
    );
    let report: serde_json::Value = serde_json::from_str(&first).expect("--json prints JSON");
    assert_eq!(report["outcome"], "aborted");
    assert_eq!(report["t0_actual"], serde_json::Value::Null);
    assert_eq!(report["refused"].as_array().map(Vec::len), Some(1));
}

#[test]
fn the_log_can_be_written_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.jsonl");
    let (code, _, err) = golive(&[
        "rehearse",
        "examples/aivo/plan.yaml",
        "--scenario",
        "examples/aivo/scenarios/no-go.yaml",
        "--log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["body"]["input"]["kind"], "start");
    assert!(text.lines().count() > 100);
}

#[test]
fn a_scenario_with_a_mistake_is_refused_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("typo.yaml");
    std::fs::write(
        &scenario,
        "name: typo\noutcomes:\n  smoke_tset: { fail: boom }\n",
    )
    .unwrap();
    let (code, out, err) = golive(&[
        "rehearse",
        "examples/aivo/plan.yaml",
        "--scenario",
        scenario.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains(
            "typo.yaml:3:15: no step, checklist item or playbook action `smoke_tset` in the plan"
        ),
        "{err}"
    );
}
