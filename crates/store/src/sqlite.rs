//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so a committed
//! append has reached the disk before `append` returns.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::canonical::{self, GENESIS_HASH};
use crate::{Event, EventStore, FORMAT, NewEvent, NewRun, Run, StoreError};

/// `PRAGMA user_version` of the schema below.
const SCHEMA_VERSION: i64 = 1;

/// STRICT tables: a value of the wrong type cannot be written, even by hand.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id         TEXT NOT NULL PRIMARY KEY,
    plan_name  TEXT NOT NULL,
    plan_hash  TEXT NOT NULL,
    env        TEXT NOT NULL,
    created    TEXT NOT NULL,
    head_seq   INTEGER NOT NULL,
    head_hash  TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS events (
    run_id     TEXT NOT NULL REFERENCES runs(id),
    seq        INTEGER NOT NULL,
    format     INTEGER NOT NULL,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    body       TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT, WITHOUT ROWID;
";

const EVENT_COLUMNS: &str = "seq, run_id, format, at, actor, kind, body, prev_hash, hash";

/// The event log in one SQLite file. One connection, shared behind a lock; other processes
/// may open the same file (SQLite serialises the writers; the expected-sequence check in
/// `append` keeps the chain whole).
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens the store at `path`, creating the file and its tables when missing.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        let open_err = |e: rusqlite::Error| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: path.display().to_string(),
                reason: format!(
                    "the file system does not support WAL mode (journal mode stays `{mode}`)"
                ),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(open_err)?;
        match version {
            0 => {
                conn.execute_batch(&format!(
                    "BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                ))
                .map_err(open_err)?;
            }
            SCHEMA_VERSION => {}
            other => {
                return Err(StoreError::Open {
                    path: path.display().to_string(),
                    reason: format!(
                        "store schema version {other} is newer than this release reads ({SCHEMA_VERSION})"
                    ),
                });
            }
        }
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    /// Opens an existing store without writing to it, for verifying and exporting.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        if !path.is_file() {
            return Err(open_err("no such store file".into()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| open_err(e.to_string()))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| open_err(format!("not a golive store: {e}")))?;
        if version != SCHEMA_VERSION {
            return Err(open_err(format!(
                "not a golive store this release reads (schema version {version}, expected {SCHEMA_VERSION})"
            )));
        }
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done transaction behind
        // (rusqlite rolls back on drop), so the connection is still usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: row.get(0)?,
        plan_name: row.get(1)?,
        plan_hash: row.get(2)?,
        env: row.get(3)?,
        created: row.get(4)?,
        head_seq: row.get::<_, i64>(5)? as u64,
        head_hash: row.get(6)?,
    })
}

fn event_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        seq: row.get::<_, i64>(0)? as u64,
        run_id: row.get(1)?,
        format: row.get::<_, i64>(2)? as u32,
        at: row.get(3)?,
        actor: row.get(4)?,
        kind: row.get(5)?,
        body: row.get(6)?,
        prev_hash: row.get(7)?,
        hash: row.get(8)?,
    })
}

const RUN_COLUMNS: &str = "id, plan_name, plan_hash, env, created, head_seq, head_hash";

fn to_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Invalid {
        what: "sequence number",
        reason: format!("{seq} is too large"),
    })
}

impl EventStore for SqliteStore {
    fn create_run(&self, run: &NewRun) -> Result<Run, StoreError> {
        crate::check_run_id(&run.id)?;
        crate::check_at(&run.created)?;
        let conn = self.lock();
        let inserted = conn
            .execute(
                "INSERT INTO runs (id, plan_name, plan_hash, env, created, head_seq, head_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6) ON CONFLICT(id) DO NOTHING",
                params![
                    run.id,
                    run.plan_name,
                    run.plan_hash,
                    run.env,
                    run.created,
                    GENESIS_HASH
                ],
            )
            .map_err(db)?;
        if inserted == 0 {
            return Err(StoreError::RunExists(run.id.clone()));
        }
        Ok(Run {
            id: run.id.clone(),
            plan_name: run.plan_name.clone(),
            plan_hash: run.plan_hash.clone(),
            env: run.env.clone(),
            created: run.created.clone(),
            head_seq: 0,
            head_hash: GENESIS_HASH.to_owned(),
        })
    }

    fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        let conn = self.lock();
        conn.query_row(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
            [id],
            run_from_row,
        )
        .optional()
        .map_err(db)
    }

    fn list_runs(&self) -> Result<Vec<Run>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY created, id"
            ))
            .map_err(db)?;
        let runs = stmt.query_map([], run_from_row).map_err(db)?;
        runs.collect::<rusqlite::Result<Vec<Run>>>().map_err(db)
    }

    fn append(
        &self,
        run: &str,
        after_seq: u64,
        events: &[NewEvent],
    ) -> Result<Vec<Event>, StoreError> {
        // Everything that can be refused is refused before the transaction starts.
        let mut prepared = Vec::with_capacity(events.len());
        for event in events {
            crate::check_at(&event.at)?;
            crate::check_kind(&event.kind)?;
            prepared.push((
                canonical::to_canonical_json(&event.actor),
                canonical::to_canonical_json(&event.body),
            ));
        }
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let (head_seq, head_hash): (i64, String) = tx
            .query_row(
                "SELECT head_seq, head_hash FROM runs WHERE id = ?1",
                [run],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(db)?
            .ok_or_else(|| StoreError::UnknownRun(run.to_owned()))?;
        let head_seq = head_seq as u64;
        if head_seq != after_seq {
            return Err(StoreError::Conflict {
                run: run.to_owned(),
                expected: after_seq,
                actual: head_seq,
            });
        }
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM events WHERE run_id = ?1 ORDER BY seq DESC LIMIT 1",
                [run],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let (last_seq, last_hash) = last
            .map(|(s, h)| (s as u64, h))
            .unwrap_or((0, GENESIS_HASH.to_owned()));
        if last_seq != head_seq || last_hash != head_hash {
            // Appending onto a log that no longer matches its head would bless the damage.
            return Err(StoreError::Corrupt {
                run: run.to_owned(),
                reason: format!(
                    "the log ends at event {last_seq} but the run's record says it ends at event {head_seq}, or their hashes differ"
                ),
            });
        }
        let mut stored = Vec::with_capacity(events.len());
        {
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO events ({EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ))
                .map_err(db)?;
            let mut prev_hash = last_hash;
            let mut seq = last_seq;
            for (event, (actor, body)) in events.iter().zip(prepared) {
                seq += 1;
                let input = canonical::hash_input(
                    FORMAT,
                    run,
                    seq,
                    &event.at,
                    &actor,
                    &event.kind,
                    &body,
                    &prev_hash,
                );
                let hash = canonical::event_hash(&input);
                insert
                    .execute(params![
                        to_i64(seq)?,
                        run,
                        FORMAT,
                        event.at,
                        actor,
                        event.kind,
                        body,
                        prev_hash,
                        hash
                    ])
                    .map_err(db)?;
                stored.push(Event {
                    seq,
                    run_id: run.to_owned(),
                    format: FORMAT,
                    at: event.at.clone(),
                    actor,
                    kind: event.kind.clone(),
                    body,
                    prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                    hash,
                });
            }
            if let Some(last) = stored.last() {
                tx.execute(
                    "UPDATE runs SET head_seq = ?1, head_hash = ?2 WHERE id = ?3",
                    params![to_i64(last.seq)?, last.hash, run],
                )
                .map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(stored)
    }

    fn scan(
        &self,
        run: &str,
        from_seq: u64,
        visit: &mut dyn FnMut(Event) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE run_id = ?1 AND seq >= ?2 ORDER BY seq"
            ))
            .map_err(db)?;
        let mut rows = stmt.query(params![run, to_i64(from_seq)?]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            let event = event_from_row(row).map_err(db)?;
            if visit(event).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn last(&self, run: &str) -> Result<Option<Event>, StoreError> {
        let conn = self.lock();
        conn.query_row(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE run_id = ?1 ORDER BY seq DESC LIMIT 1"
            ),
            [run],
            event_from_row,
        )
        .optional()
        .map_err(db)
    }
}
