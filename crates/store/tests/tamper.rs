//! Tampering with the SQLite file behind the store's back: every change, removal,
//! insertion and reordering is caught at the exact first bad sequence number.

use rusqlite::{Connection, params};
use serde_json::json;
use store::canonical::{event_hash, hash_input};
use store::{EventStore, NewEvent, NewRun, SqliteStore, VerifyError};

const RUN: &str = "aivo-2025-08-23";
const EVENTS: u64 = 10;

fn new_run(id: &str) -> NewRun {
    NewRun {
        id: id.to_owned(),
        plan_name: "AIVO platform go-live".into(),
        plan_hash: "ab".repeat(32),
        env: "production".into(),
        created: "2025-08-16T06:00:00.000Z".into(),
    }
}

fn event(i: u64) -> NewEvent {
    NewEvent {
        at: store::at_from_unix_millis(1_755_928_800_000 + i as i64 * 1500).unwrap(),
        actor: json!({"person": "sarah", "role": "incident_commander"}),
        kind: "signoff".into(),
        body: json!({"item": format!("item-{i}"), "note": "ok", "value": i as f64 / 3.0}),
    }
}

/// A store with one run of `EVENTS` events appended in three batches; returns its path.
fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("golive.db");
    let store = SqliteStore::open(&path).unwrap();
    store.create_run(&new_run(RUN)).unwrap();
    let batches: [&[u64]; 3] = [&[1, 2, 3], &[4], &[5, 6, 7, 8, 9, 10]];
    let mut last = 0;
    for batch in batches {
        let events: Vec<NewEvent> = batch.iter().map(|&i| event(i)).collect();
        let stored = store.append(RUN, last, &events).unwrap();
        last = stored.last().unwrap().seq;
    }
    assert_eq!(last, EVENTS);
    (dir, path)
}

fn tamper(path: &std::path::Path, sql: &str) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

fn first_bad(path: &std::path::Path) -> (u64, String) {
    let store = SqliteStore::open(path).unwrap();
    match store.verify(RUN) {
        Ok(report) => panic!("tampering went unnoticed: {report:?}"),
        Err(VerifyError::Broken(broken)) => (broken.first_bad_seq, broken.reason),
        Err(VerifyError::Store(e)) => panic!("store error instead of a verdict: {e}"),
    }
}

#[test]
fn an_untouched_chain_verifies() {
    let (_dir, path) = fixture();
    let store = SqliteStore::open(&path).unwrap();
    let report = store.verify(RUN).unwrap();
    assert_eq!(report.events, EVENTS);
    assert_eq!(report.head_hash, store.last(RUN).unwrap().unwrap().hash);
    let read_only = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(read_only.verify(RUN).unwrap(), report);
}

#[test]
fn a_changed_body_is_named() {
    let (_dir, path) = fixture();
    tamper(
        &path,
        "UPDATE events SET body = replace(body, 'item-4', 'item-X') WHERE seq = 4",
    );
    let (seq, reason) = first_bad(&path);
    assert_eq!(seq, 4);
    assert!(reason.contains("does not match its hash"), "{reason}");
}

#[test]
fn a_reformatted_body_is_a_change_too() {
    let (_dir, path) = fixture();
    // Same JSON value, different bytes: the hash covers the canonical bytes.
    tamper(
        &path,
        "UPDATE events SET body = replace(body, ',', ', ') WHERE seq = 7",
    );
    assert_eq!(first_bad(&path).0, 7);
}

#[test]
fn changed_time_kind_or_actor_is_named() {
    for (column, seq) in [("at", 2), ("kind", 9), ("actor", 1)] {
        let (_dir, path) = fixture();
        let value = match column {
            "at" => "'2025-08-23T05:00:00.000Z'",
            "kind" => "'waiver'",
            _ => "'{\"person\":\"mallory\"}'",
        };
        tamper(
            &path,
            &format!("UPDATE events SET {column} = {value} WHERE seq = {seq}"),
        );
        assert_eq!(first_bad(&path).0, seq, "{column}");
    }
}

#[test]
fn a_removed_event_is_named() {
    let (_dir, path) = fixture();
    tamper(&path, "DELETE FROM events WHERE seq = 6");
    let (seq, reason) = first_bad(&path);
    assert_eq!(seq, 6);
    assert!(reason.starts_with("missing"), "{reason}");
}

#[test]
fn a_removed_first_event_is_named() {
    let (_dir, path) = fixture();
    tamper(&path, "DELETE FROM events WHERE seq = 1");
    assert_eq!(first_bad(&path).0, 1);
}

#[test]
fn a_removed_last_event_is_named() {
    let (_dir, path) = fixture();
    tamper(&path, "DELETE FROM events WHERE seq = 10");
    let (seq, reason) = first_bad(&path);
    assert_eq!(seq, 10);
    assert!(
        reason.contains("record says it ends at event 10"),
        "{reason}"
    );
}

#[test]
fn swapped_events_are_named() {
    let (_dir, path) = fixture();
    tamper(
        &path,
        "UPDATE events SET seq = -1 WHERE seq = 3;
         UPDATE events SET seq = 3 WHERE seq = 7;
         UPDATE events SET seq = 7 WHERE seq = -1;",
    );
    let (seq, reason) = first_bad(&path);
    assert_eq!(seq, 3);
    assert!(reason.contains("prev_hash"), "{reason}");
}

#[test]
fn a_changed_hash_is_named() {
    let (_dir, path) = fixture();
    tamper(
        &path,
        &format!(
            "UPDATE events SET hash = '{}' WHERE seq = 5",
            "f".repeat(64)
        ),
    );
    assert_eq!(first_bad(&path).0, 5);
}

#[test]
fn a_changed_prev_hash_is_named() {
    let (_dir, path) = fixture();
    tamper(
        &path,
        &format!(
            "UPDATE events SET prev_hash = '{}' WHERE seq = 8",
            "0".repeat(64)
        ),
    );
    assert_eq!(first_bad(&path).0, 8);
}

#[test]
fn an_event_appended_behind_the_stores_back_is_named() {
    let (_dir, path) = fixture();
    // A well-formed event 11 chained to event 10, but the run's head was not moved.
    let conn = Connection::open(&path).unwrap();
    let prev: String = conn
        .query_row("SELECT hash FROM events WHERE seq = 10", [], |r| r.get(0))
        .unwrap();
    insert_hashed(&conn, 11, &prev);
    drop(conn);
    let (seq, reason) = first_bad(&path);
    assert_eq!(seq, 11);
    assert!(reason.contains("not part of the run"), "{reason}");
}

#[test]
fn an_event_inserted_in_the_middle_is_named() {
    let (_dir, path) = fixture();
    // Make room at seq 5 (moving 5..=10 up by one), then put a copy of event 2 there.
    tamper(
        &path,
        "UPDATE events SET seq = -seq WHERE seq >= 5;
         UPDATE events SET seq = 1 - seq WHERE seq < 0;
         INSERT INTO events SELECT run_id, 5, format, at, actor, kind, body, prev_hash, hash
           FROM events WHERE seq = 2;
         UPDATE runs SET head_seq = 11;",
    );
    assert_eq!(first_bad(&path).0, 5);
}

#[test]
fn a_correctly_hashed_insertion_breaks_the_next_link() {
    let (_dir, path) = fixture();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE events SET seq = -seq WHERE seq >= 5;
         UPDATE events SET seq = 1 - seq WHERE seq < 0;
         UPDATE runs SET head_seq = 11;",
    )
    .unwrap();
    let prev: String = conn
        .query_row("SELECT hash FROM events WHERE seq = 4", [], |r| r.get(0))
        .unwrap();
    insert_hashed(&conn, 5, &prev);
    drop(conn);
    // Event 5 proves itself; the old event 5, now 6, still points at the old event 4.
    let (seq, reason) = first_bad(&path);
    assert_eq!(seq, 6);
    assert!(reason.contains("prev_hash"), "{reason}");
}

#[test]
fn a_rewritten_tail_is_caught_by_the_recorded_head() {
    let (_dir, path) = fixture();
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE events SET body = '{\"forged\":true}' WHERE seq = 3",
        [],
    )
    .unwrap();
    rehash_from(&conn, 3);
    drop(conn);
    let (seq, reason) = first_bad(&path);
    assert_eq!(seq, EVENTS);
    assert!(reason.contains("recorded head hash"), "{reason}");
}

#[test]
fn a_run_with_no_events_verifies_and_others_are_untouched() {
    let (_dir, path) = fixture();
    let store = SqliteStore::open(&path).unwrap();
    store.create_run(&new_run("empty")).unwrap();
    let report = store.verify("empty").unwrap();
    assert_eq!(report.events, 0);
    assert_eq!(report.head_hash, store::GENESIS_HASH);
    drop(store);
    tamper(&path, "UPDATE events SET body = '{}' WHERE seq = 2");
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.verify("empty").is_ok());
    assert_eq!(first_bad(&path).0, 2);
}

/// Inserts a correctly hashed event (as a forger with the format description would).
fn insert_hashed(conn: &Connection, seq: u64, prev: &str) {
    let (at, actor, kind, body) = (
        "2025-08-23T06:30:00.000Z",
        r#"{"person":"mallory"}"#,
        "waiver",
        r#"{"item":"x"}"#,
    );
    let hash = event_hash(&hash_input(1, RUN, seq, at, actor, kind, body, prev));
    conn.execute(
        "INSERT INTO events VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![RUN, seq as i64, at, actor, kind, body, prev, hash],
    )
    .unwrap();
}

/// Recomputes every hash from `seq` on, so the chain is consistent with itself again.
fn rehash_from(conn: &Connection, from: u64) {
    let mut prev: String = conn
        .query_row(
            "SELECT hash FROM events WHERE seq = ?1",
            [from as i64 - 1],
            |r| r.get(0),
        )
        .unwrap();
    for seq in from..=EVENTS {
        let (at, actor, kind, body): (String, String, String, String) = conn
            .query_row(
                "SELECT at, actor, kind, body FROM events WHERE seq = ?1",
                [seq as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        let hash = event_hash(&hash_input(1, RUN, seq, &at, &actor, &kind, &body, &prev));
        conn.execute(
            "UPDATE events SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            params![prev, hash, seq as i64],
        )
        .unwrap();
        prev = hash;
    }
}
