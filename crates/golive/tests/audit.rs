//! `golive audit verify|export` against real store files: exit codes and messages.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::json;
use store::{EventStore, NewEvent, NewRun, SqliteStore};

fn store_with_runs(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("golive.db");
    let store = SqliteStore::open(&path).unwrap();
    for (run, created) in [
        ("first", "2025-08-16T06:00:00.000Z"),
        ("second", "2025-08-17T06:00:00.000Z"),
    ] {
        store
            .create_run(&NewRun {
                id: run.into(),
                plan_name: "AIVO platform go-live".into(),
                plan_hash: "ef".repeat(32),
                env: "staging".into(),
                created: created.into(),
            })
            .unwrap();
        let events: Vec<NewEvent> = (0..5)
            .map(|i| NewEvent {
                at: store::at_from_unix_millis(1_755_928_800_000 + i * 1000).unwrap(),
                actor: json!({"rule": "error_rate_critical"}),
                kind: "rule.state".into(),
                body: json!({"i": i, "state": "pending"}),
            })
            .collect();
        store.append(run, 0, &events).unwrap();
    }
    path
}

fn golive() -> Command {
    Command::cargo_bin("golive").unwrap()
}

#[test]
fn verify_passes_on_a_whole_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_with_runs(dir.path());
    golive()
        .args(["audit", "verify", "--store"])
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::contains("run first: 5 events, head "))
        .stdout(predicate::str::contains("run second: 5 events, head "));
}

#[test]
fn verify_names_the_first_bad_event_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_with_runs(dir.path());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE events SET body = '{\"i\":2,\"state\":\"firing\"}' WHERE run_id = 'second' AND seq = 3", [])
        .unwrap();
    golive()
        .args(["audit", "verify", "--store"])
        .arg(&path)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("run first: 5 events"))
        .stderr(predicate::str::contains(
            "run second: event 3: content does not match its hash",
        ));
    golive()
        .args(["audit", "verify", "--run", "first", "--store"])
        .arg(&path)
        .assert()
        .success();
}

#[test]
fn verify_without_a_store_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    golive()
        .args(["audit", "verify", "--store"])
        .arg(dir.path().join("missing.db"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no such store file"));
    let path = store_with_runs(dir.path());
    golive()
        .args(["audit", "verify", "--run", "third", "--store"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no run `third` in the store; runs: first, second",
        ));
}

#[test]
fn export_writes_one_line_per_event_with_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_with_runs(dir.path());
    let out = dir.path().join("second.jsonl");
    golive()
        .args(["audit", "export", "--run", "second", "--store"])
        .arg(&path)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let text = std::fs::read_to_string(&out).unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let stored = store.read("second", 1).unwrap();
    assert_eq!(text.lines().count(), stored.len());
    for (line, event) in text.lines().zip(&stored) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["run"], "second");
        assert_eq!(value["seq"], event.seq);
        assert_eq!(value["hash"], event.hash.as_str());
    }

    let all = golive()
        .args(["audit", "export", "--store"])
        .arg(&path)
        .assert()
        .success();
    let stdout = String::from_utf8(all.get_output().stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 10);
    assert!(stdout.lines().next().unwrap().contains("\"run\":\"first\""));
}
