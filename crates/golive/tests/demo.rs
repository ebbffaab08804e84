//! `golive demo` end to end: real services, the built-in router, simulated users, the AIVO
//! plan live on a scaled clock. A clean run completes the ramp; `--fault` rolls back by
//! itself within the plan's budget and takes no new request to the new version after.

use std::process::Command;

/// One demo at a time: each drives real traffic against a scaled clock, and two at once on
/// a small machine would judge each other's load.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn demo(extra: &[&str]) -> serde_json::Value {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let store = dir.path().join("demo.db");
    let output = Command::new(env!("CARGO_BIN_EXE_golive"))
        .args(["demo"])
        .args([
            "--report-json",
            report.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "golive demo {extra:?} failed\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("golive demo report"), "{stdout}");
    let verify = Command::new(env!("CARGO_BIN_EXE_golive"))
        .args(["audit", "verify", "--store", store.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
}

#[test]
fn clean_demo_ramps_to_all_users_on_real_traffic() {
    let report = demo(&[]);
    assert_eq!(report["outcome"], "reached 100 %", "{report:#}");
    let weights: Vec<String> = report["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_owned())
        .collect();
    for stage in ["5 %", "25 %", "50 %", "75 %", "100 %"] {
        assert!(
            weights.iter().any(|w| w.ends_with(stage)),
            "no {stage} in {weights:?}"
        );
    }
    assert!(report["requests"].as_u64().unwrap() > 1000, "{report:#}");
    assert!(report["served_by_new_version"].as_u64().unwrap() > 0);
    assert_eq!(
        report["without_answer"], 0,
        "no user request may be lost: {report:#}"
    );
    assert!(
        report["steps_rehearsed"].as_u64().unwrap() > 0,
        "infrastructure steps are rehearsed"
    );
}

#[test]
fn faulty_demo_rolls_back_within_budget() {
    let report = demo(&["--fault"]);
    assert_eq!(report["outcome"], "rolled back", "{report:#}");
    let took = report["rollback_plan_ms"]
        .as_u64()
        .expect("a rollback duration");
    let budget = report["rollback_budget_ms"].as_u64().unwrap();
    assert!(
        took <= budget,
        "rollback took {took} ms of plan time, budget {budget}"
    );
    assert!(
        report["rollback_real_ms_from_fault"].as_f64().is_some(),
        "{report:#}"
    );
    let last = report["weights"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        last.ends_with("→ 0 %"),
        "traffic ends off the new version: {last}"
    );
    // At most the requests already in flight when the router switched (one per user).
    let after = report["new_version_requests_after_rollback"]
        .as_u64()
        .expect("counted");
    assert!(
        after <= 40,
        "{after} requests reached the new version after the rollback"
    );
}
