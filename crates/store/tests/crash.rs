//! Crash safety: a child process appends batches as fast as it can and is killed with
//! SIGKILL at random moments, many times. After every kill the store must reopen, verify,
//! hold every batch the child was told was durable, and hold no part of a batch.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use store::{EventStore, NewEvent, NewRun, SqliteStore};

const RUN: &str = "crash";
const BATCH: u64 = 3;
const KILLS: u32 = 40;
const CHILD_ENV: &str = "GOLIVE_STORE_CRASH_CHILD";

#[test]
fn sigkill_at_random_points_loses_nothing_acknowledged_and_leaves_no_half_batch() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        append_forever(&path);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("golive.db");
    SqliteStore::open(&path)
        .unwrap()
        .create_run(&NewRun {
            id: RUN.into(),
            plan_name: "crash".into(),
            plan_hash: "00".repeat(32),
            env: "test".into(),
            created: "2025-08-16T06:00:00.000Z".into(),
        })
        .unwrap();

    let seed = std::env::var("GOLIVE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15);
    println!("seed {seed} (set GOLIVE_CRASH_SEED to repeat)");
    let mut rng = seed;
    let mut kills_while_appending = 0;
    let mut last_events = 0;
    for kill in 0..KILLS {
        let delay = Duration::from_millis(5 + next(&mut rng) % 60);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sigkill_at_random_points_loses_nothing_acknowledged_and_leaves_no_half_batch",
            ])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let mut acked = 0u64;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            if let Some(seq) = line.unwrap().strip_prefix("acked ") {
                acked = seq.parse().unwrap();
            }
        }

        let store = SqliteStore::open(&path).unwrap();
        let report = store
            .verify(RUN)
            .unwrap_or_else(|e| panic!("kill {kill} (seed {seed}, after {delay:?}): {e}"));
        assert!(
            report.events >= acked,
            "kill {kill}: acknowledged event {acked} lost; log ends at {}",
            report.events
        );
        assert_eq!(
            report.events % BATCH,
            0,
            "kill {kill}: half a batch in the log ({} events)",
            report.events
        );
        for event in store.read(RUN, last_events + 1).unwrap() {
            let body = event.body_value().unwrap();
            assert_eq!(
                body["i"],
                json!((event.seq - 1) % BATCH),
                "kill {kill}: event {} out of its batch",
                event.seq
            );
        }
        if report.events > last_events {
            kills_while_appending += 1;
        }
        last_events = report.events;
    }
    println!(
        "{KILLS} kills, {kills_while_appending} of them after the child had appended; {last_events} events in the log"
    );
    assert!(last_events > 0, "the child never appended anything");
}

/// The child: appends batches until it is killed, printing each durable sequence number.
fn append_forever(path: &str) -> ! {
    let store = SqliteStore::open(path).unwrap();
    let mut last = store.last(RUN).unwrap().map_or(0, |e| e.seq);
    let padding = "x".repeat(2000);
    let stdout = std::io::stdout();
    loop {
        let batch: Vec<NewEvent> = (0..BATCH)
            .map(|i| NewEvent {
                at: store::at_from_unix_millis(1_755_928_800_000 + (last + i) as i64).unwrap(),
                actor: json!({"process": std::process::id()}),
                kind: "tick".into(),
                body: json!({"i": i, "padding": padding}),
            })
            .collect();
        last = store.append(RUN, last, &batch).unwrap().last().unwrap().seq;
        let mut out = stdout.lock();
        writeln!(out, "acked {last}").unwrap();
        out.flush().unwrap();
    }
}

fn next(state: &mut u64) -> u64 {
    // xorshift64: enough to spread the kill moments; no dependency for it.
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
