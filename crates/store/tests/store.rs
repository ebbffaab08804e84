//! The store's contract: runs, ordered appends with an expected last sequence number,
//! reads, the export, and the auditors' script from `docs/audit.md` agreeing with it.

use std::process::Command;

use serde_json::json;
use store::{EventStore, NewEvent, NewRun, SqliteStore, StoreError};

fn new_run(id: &str, created: &str) -> NewRun {
    NewRun {
        id: id.to_owned(),
        plan_name: "AIVO platform go-live".into(),
        plan_hash: "cd".repeat(32),
        env: "staging".into(),
        created: created.into(),
    }
}

fn ev(kind: &str, body: serde_json::Value) -> NewEvent {
    NewEvent {
        at: "2025-08-23T06:00:00.000Z".into(),
        actor: json!({"schedule": "T-2:00"}),
        kind: kind.into(),
        body,
    }
}

fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("golive.db")).unwrap();
    (dir, store)
}

#[test]
fn appends_are_numbered_chained_and_read_back() {
    let (_dir, store) = open();
    store
        .create_run(&new_run("r1", "2025-08-16T06:00:00.000Z"))
        .unwrap();
    let first = store
        .append(
            "r1",
            0,
            &[ev("a", json!({"n": 1})), ev("b", json!({"n": 2}))],
        )
        .unwrap();
    assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(first[0].prev_hash, store::GENESIS_HASH);
    assert_eq!(first[1].prev_hash, first[0].hash);
    let second = store.append("r1", 2, &[ev("c", json!({"n": 3}))]).unwrap();
    assert_eq!(second[0].prev_hash, first[1].hash);

    let all = store.read("r1", 1).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[..2], first[..]);
    assert_eq!(store.read("r1", 3).unwrap(), second);
    assert_eq!(store.last("r1").unwrap().unwrap(), second[0]);
    assert_eq!(all[2].body_value().unwrap(), json!({"n": 3}));
    assert_eq!(all[2].actor_value().unwrap(), json!({"schedule": "T-2:00"}));
    let run = store.run("r1").unwrap().unwrap();
    assert_eq!(
        (run.head_seq, run.head_hash.as_str()),
        (3, second[0].hash.as_str())
    );
}

#[test]
fn an_empty_batch_appends_nothing() {
    let (_dir, store) = open();
    store
        .create_run(&new_run("r1", "2025-08-16T06:00:00.000Z"))
        .unwrap();
    assert!(store.append("r1", 0, &[]).unwrap().is_empty());
    assert!(store.last("r1").unwrap().is_none());
}

#[test]
fn a_writer_with_a_stale_view_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("golive.db");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    a.create_run(&new_run("r1", "2025-08-16T06:00:00.000Z"))
        .unwrap();
    a.append("r1", 0, &[ev("a", json!(1))]).unwrap();
    // Both saw event 1; a appends event 2 first.
    a.append("r1", 1, &[ev("from-a", json!(2))]).unwrap();
    match b.append("r1", 1, &[ev("from-b", json!(2))]) {
        Err(StoreError::Conflict {
            expected: 1,
            actual: 2,
            ..
        }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(b.read("r1", 1).unwrap().len(), 2);
    assert!(b.verify("r1").is_ok());
}

#[test]
fn concurrent_writers_never_share_a_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("golive.db");
    SqliteStore::open(&path)
        .unwrap()
        .create_run(&new_run("r1", "2025-08-16T06:00:00.000Z"))
        .unwrap();
    let per_writer = 25;
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = SqliteStore::open(&path).unwrap();
                let mut conflicts = 0;
                let mut done = 0;
                while done < per_writer {
                    let last = store.last("r1").unwrap().map_or(0, |e| e.seq);
                    match store.append("r1", last, &[ev("write", json!({"writer": w, "n": done}))])
                    {
                        Ok(_) => done += 1,
                        Err(StoreError::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                conflicts
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.verify("r1").unwrap().events, 3 * per_writer);
}

#[test]
fn runs_are_listed_oldest_first_and_ids_are_unique() {
    let (_dir, store) = open();
    store
        .create_run(&new_run("second", "2025-08-17T06:00:00.000Z"))
        .unwrap();
    store
        .create_run(&new_run("first", "2025-08-16T06:00:00.000Z"))
        .unwrap();
    let ids: Vec<String> = store
        .list_runs()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["first", "second"]);
    assert!(matches!(
        store.create_run(&new_run("first", "2025-08-18T06:00:00.000Z")),
        Err(StoreError::RunExists(_))
    ));
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let (_dir, store) = open();
    assert!(matches!(
        store.append("nope", 0, &[ev("a", json!(1))]),
        Err(StoreError::UnknownRun(_))
    ));
    store
        .create_run(&new_run("r1", "2025-08-16T06:00:00.000Z"))
        .unwrap();
    let mut late = ev("a", json!(1));
    late.at = "half past two".into();
    let err = store
        .append("r1", 0, &[ev("ok", json!(0)), late])
        .unwrap_err();
    assert!(err.to_string().contains("half past two"), "{err}");
    let err = store
        .append("r1", 0, &[ev("no spaces", json!(0))])
        .unwrap_err();
    assert!(err.to_string().contains("event kind"), "{err}");
    assert!(
        store.last("r1").unwrap().is_none(),
        "a refused batch appends nothing"
    );
    assert!(
        store
            .create_run(&new_run("has/slash", "2025-08-16T06:00:00.000Z"))
            .is_err()
    );
    assert!(SqliteStore::open_read_only("/nonexistent/golive.db").is_err());
}

/// Bodies that stress the canonical encoding: floats of every shape, escapes, non-ASCII,
/// nested objects whose keys arrive unsorted.
fn awkward_bodies() -> Vec<serde_json::Value> {
    vec![
        json!({"z": 1, "a": [0.1, 1.0, -0.0, 1e-7, 1e16, 123456.789, 2.5e-5, 1e300, 5e-324]}),
        json!({"text": "quote \" backslash \\ newline \n tab \t bell \u{7} del \u{7f} é 你好 🚀", "empty": ""}),
        json!({"nested": {"b": {"d": null, "c": true}, "a": [{"y": 2, "x": 1}]}, "big": u64::MAX, "neg": i64::MIN}),
        json!("a bare string"),
        json!([]),
        json!(0.30000000000000004),
    ]
}

#[test]
fn the_export_is_canonical_json_lines_the_auditors_script_accepts() {
    let (dir, store) = open();
    for (run, created) in [
        ("r1", "2025-08-16T06:00:00.000Z"),
        ("r2", "2025-08-17T06:00:00.000Z"),
    ] {
        store.create_run(&new_run(run, created)).unwrap();
        let events: Vec<NewEvent> = awkward_bodies()
            .into_iter()
            .map(|body| NewEvent {
                actor: json!({"person": "ana", "role": "qa_lead"}),
                ..ev("probe.result", body)
            })
            .collect();
        store.append(run, 0, &events).unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(store.export("r1", &mut out).unwrap(), 6);
    assert_eq!(store.export("r2", &mut out).unwrap(), 6);
    let text = String::from_utf8(out).unwrap();
    for (line, stored) in text.lines().zip(store.read("r1", 1).unwrap()) {
        let parsed: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            store::canonical::to_canonical_json(&parsed),
            line,
            "export lines are canonical"
        );
        assert_eq!(parsed["hash"], json!(stored.hash));
        assert_eq!(parsed["seq"], json!(stored.seq));
    }
    let export = dir.path().join("export.jsonl");
    std::fs::write(&export, &text).unwrap();

    let script = audit_script();
    let script_path = dir.path().join("check.py");
    std::fs::write(&script_path, &script).unwrap();
    assert!(
        script.lines().count() <= 25,
        "the script stays short enough to read"
    );
    let output = Command::new("python3")
        .arg(&script_path)
        .arg(&export)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let head = store.run("r1").unwrap().unwrap().head_hash;
    assert!(
        stdout.contains(&format!("run r1: 6 events, head {head}: ok")),
        "{stdout}"
    );

    // The script also notices a change.
    let tampered = text.replacen("qa_lead", "qa_leaf", 1);
    std::fs::write(&export, tampered).unwrap();
    let output = Command::new("python3")
        .arg(&script_path)
        .arg(&export)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("run r1: event 1: content"));
}

/// The script exactly as `docs/audit.md` shows it.
fn audit_script() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit.md"))
        .unwrap();
    let start = doc
        .find("<!-- audit-script:start -->")
        .expect("script start marker");
    let end = doc
        .find("<!-- audit-script:end -->")
        .expect("script end marker");
    let block = &doc[start..end];
    let code_start = block.find("```python\n").expect("python block") + "```python\n".len();
    let code_end = block.rfind("```").unwrap();
    block[code_start..code_end].to_owned()
}

#[test]
fn the_documented_example_hash_input_is_what_the_store_hashes() {
    let (_dir, store) = open();
    store
        .create_run(&new_run("r1", "2025-08-16T06:00:00.000Z"))
        .unwrap();
    let stored = store
        .append(
            "r1",
            0,
            &[NewEvent {
                at: "2025-08-23T06:00:00.000Z".into(),
                actor: json!({"role": "incident_commander", "person": "sarah"}),
                kind: "signoff".into(),
                body: json!({"item": "backups"}),
            }],
        )
        .unwrap();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit.md"))
        .unwrap();
    let example = r#"[1,"r1",1,"2025-08-23T06:00:00.000Z",{"person":"sarah","role":"incident_commander"},"signoff",{"item":"backups"},"0000000000000000000000000000000000000000000000000000000000000000"]"#;
    assert!(doc.contains(example));
    assert_eq!(stored[0].hash, store::canonical::event_hash(example));
}
