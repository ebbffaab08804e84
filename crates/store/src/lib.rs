//! The durable, append-only, hash-chained event log of a run.
//!
//! Every event of a run carries the hash of the event before it, so changing, removing,
//! inserting or reordering an event breaks the chain at a sequence number `verify` names.
//! The store is behind the [`EventStore`] trait so a database shared by several replicas can
//! stand in for the embedded SQLite file ([`SqliteStore`]). The store never reads a clock:
//! every timestamp it records is given by the caller. `docs/audit.md` describes the format.

pub mod canonical;
mod chain;
mod sqlite;

use std::io::Write;
use std::ops::ControlFlow;

pub use canonical::GENESIS_HASH;
pub use chain::ChainChecker;
pub use sqlite::SqliteStore;

/// Version of the event encoding this release writes and verifies.
pub const FORMAT: u32 = 1;

/// Longest accepted `kind`.
pub const MAX_KIND_LEN: usize = 64;
/// Longest accepted run id.
pub const MAX_RUN_ID_LEN: usize = 128;

/// A run as created: who asks for it supplies every field, including `created`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    pub id: String,
    pub plan_name: String,
    /// Hash of the plan file the run executes (hex), so an auditor can tie the log to it.
    pub plan_hash: String,
    pub env: String,
    /// RFC 3339 timestamp.
    pub created: String,
}

/// A run as stored, with the head of its log (0 and [`GENESIS_HASH`] while it is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: String,
    pub plan_name: String,
    pub plan_hash: String,
    pub env: String,
    pub created: String,
    pub head_seq: u64,
    pub head_hash: String,
}

/// An event to append. The store assigns `seq`, `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// RFC 3339 timestamp with milliseconds, e.g. from [`at_from_unix_millis`].
    pub at: String,
    /// Who or what caused it: a person and role, a rule, a schedule.
    pub actor: serde_json::Value,
    /// Short name of the kind of record, e.g. `signoff` or `effect.intent`.
    pub kind: String,
    /// The record itself; opaque to the store.
    pub body: serde_json::Value,
}

/// An event as stored. `actor` and `body` are canonical JSON text (see [`canonical`]),
/// exactly the bytes that were hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    pub run_id: String,
    pub format: u32,
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

impl Event {
    /// The body read into the caller's record type.
    pub fn body_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, StoreError> {
        serde_json::from_str(&self.body).map_err(|e| StoreError::Corrupt {
            run: self.run_id.clone(),
            reason: format!("event {}: body does not read back: {e}", self.seq),
        })
    }

    pub fn actor_value(&self) -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(&self.actor).map_err(|e| StoreError::Corrupt {
            run: self.run_id.clone(),
            reason: format!("event {}: actor is not JSON: {e}", self.seq),
        })
    }

    pub fn body_value(&self) -> Result<serde_json::Value, StoreError> {
        self.body_as()
    }

    /// The hash this event's content gives; equal to `hash` unless it was tampered with.
    pub fn computed_hash(&self) -> String {
        canonical::event_hash(&canonical::hash_input(
            self.format,
            &self.run_id,
            self.seq,
            &self.at,
            &self.actor,
            &self.kind,
            &self.body,
            &self.prev_hash,
        ))
    }

    /// One line of the auditors' export: a canonical JSON object (keys sorted) without the
    /// line break.
    pub fn export_line(&self) -> Result<String, StoreError> {
        // The stored text goes out as it is (so the hash can be recomputed from the line),
        // but only if it is JSON at all; otherwise the line itself would not be.
        self.actor_value()?;
        self.body_value()?;
        let mut out = String::with_capacity(self.actor.len() + self.body.len() + 300);
        out.push_str("{\"actor\":");
        out.push_str(&self.actor);
        out.push_str(",\"at\":");
        canonical::write_string(&mut out, &self.at);
        out.push_str(",\"body\":");
        out.push_str(&self.body);
        out.push_str(&format!(",\"format\":{},\"hash\":", self.format));
        canonical::write_string(&mut out, &self.hash);
        out.push_str(",\"kind\":");
        canonical::write_string(&mut out, &self.kind);
        out.push_str(",\"prev_hash\":");
        canonical::write_string(&mut out, &self.prev_hash);
        out.push_str(",\"run\":");
        canonical::write_string(&mut out, &self.run_id);
        out.push_str(&format!(",\"seq\":{}}}", self.seq));
        Ok(out)
    }
}

/// What a verified chain looks like: its length and the hash of its last event, which an
/// auditor can note down (or publish) to detect a later rewrite of the whole tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub run_id: String,
    pub events: u64,
    pub head_hash: String,
}

/// The first place where the log stops proving itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {first_bad_seq}: {reason}")]
pub struct ChainBroken {
    pub first_bad_seq: u64,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Broken(#[from] ChainBroken),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no run `{0}` in the store")]
    UnknownRun(String),
    #[error("run `{0}` already exists")]
    RunExists(String),
    #[error(
        "run `{run}`: expected the log to end at event {expected}, but it ends at {actual}; another writer appended first"
    )]
    Conflict {
        run: String,
        expected: u64,
        actual: u64,
    },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("run `{run}`: {reason}; run `golive audit verify`")]
    Corrupt { run: String, reason: String },
    #[error("{path}: {reason}")]
    Open { path: String, reason: String },
    #[error("database: {0}")]
    Database(String),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

/// The log of every run. Appends are all-or-nothing and durable when `append` returns.
///
/// `append` names the sequence number the caller believes is last: of two writers that
/// both saw event N, only one appends N+1; the other gets [`StoreError::Conflict`]. That is
/// what lets several replicas share one database safely.
pub trait EventStore: Send + Sync {
    fn create_run(&self, run: &NewRun) -> Result<Run, StoreError>;
    fn run(&self, id: &str) -> Result<Option<Run>, StoreError>;
    /// Every run, oldest first.
    fn list_runs(&self) -> Result<Vec<Run>, StoreError>;

    /// Appends `events` after event `after_seq` (0 for an empty log) in one transaction and
    /// returns them as stored. Nothing is appended on any error.
    fn append(
        &self,
        run: &str,
        after_seq: u64,
        events: &[NewEvent],
    ) -> Result<Vec<Event>, StoreError>;

    /// Visits the stored events with `seq >= from_seq` in sequence order, as they are
    /// stored (nothing checked), until `visit` breaks. The store may hold a lock while
    /// visiting: `visit` must not call back into the same store.
    fn scan(
        &self,
        run: &str,
        from_seq: u64,
        visit: &mut dyn FnMut(Event) -> ControlFlow<()>,
    ) -> Result<(), StoreError>;

    /// The stored event with the highest sequence number.
    fn last(&self, run: &str) -> Result<Option<Event>, StoreError>;

    /// The events with `seq >= from_seq`, in order.
    fn read(&self, run: &str, from_seq: u64) -> Result<Vec<Event>, StoreError> {
        let mut events = Vec::new();
        self.scan(run, from_seq, &mut |event| {
            events.push(event);
            ControlFlow::Continue(())
        })?;
        Ok(events)
    }

    /// Checks the whole chain of a run against itself and against the run's recorded head.
    fn verify(&self, run: &str) -> Result<VerifyReport, VerifyError> {
        let head = self
            .run(run)?
            .ok_or_else(|| StoreError::UnknownRun(run.to_owned()))?;
        let mut checker = ChainChecker::new(run, head.head_seq);
        self.scan(run, 1, &mut |event| match checker.push(&event) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        })?;
        Ok(checker.finish(&head.head_hash)?)
    }

    /// Writes the run's events as JSON lines (see [`Event::export_line`]); returns how many.
    fn export(&self, run: &str, out: &mut dyn Write) -> Result<u64, StoreError> {
        if self.run(run)?.is_none() {
            return Err(StoreError::UnknownRun(run.to_owned()));
        }
        let mut written = 0;
        let mut failure = None;
        self.scan(run, 1, &mut |event| {
            let line = match event.export_line() {
                Ok(line) => line,
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            };
            if let Err(e) = writeln!(out, "{line}") {
                failure = Some(StoreError::Io(e));
                return ControlFlow::Break(());
            }
            written += 1;
            ControlFlow::Continue(())
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }
}

/// `at` for an instant given as milliseconds since the Unix epoch:
/// `2025-08-23T06:00:00.000Z`.
pub fn at_from_unix_millis(millis: i64) -> Result<String, StoreError> {
    let ts = jiff::Timestamp::from_millisecond(millis).map_err(|e| StoreError::Invalid {
        what: "timestamp",
        reason: e.to_string(),
    })?;
    Ok(format!("{ts:.3}"))
}

pub(crate) fn check_at(at: &str) -> Result<(), StoreError> {
    at.parse::<jiff::Timestamp>().map(|_| ()).map_err(|e| StoreError::Invalid {
        what: "event time",
        reason: format!("`{at}` is not an RFC 3339 timestamp ({e}); write it like `2025-08-23T06:00:00.000Z`"),
    })
}

pub(crate) fn check_kind(kind: &str) -> Result<(), StoreError> {
    let ok = !kind.is_empty()
        && kind.len() <= MAX_KIND_LEN
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            what: "event kind",
            reason: format!("`{kind}`: use 1 to {MAX_KIND_LEN} letters, digits, `.`, `_` or `-`"),
        })
    }
}

pub(crate) fn check_run_id(id: &str) -> Result<(), StoreError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_RUN_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            what: "run id",
            reason: format!(
                "`{id}`: use 1 to {MAX_RUN_ID_LEN} letters, digits, `.`, `_`, `-` or `:`"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_has_milliseconds_and_utc() {
        assert_eq!(
            at_from_unix_millis(1_755_928_800_000).unwrap(),
            "2025-08-23T06:00:00.000Z"
        );
        assert_eq!(
            at_from_unix_millis(1_755_928_800_042).unwrap(),
            "2025-08-23T06:00:00.042Z"
        );
        assert!(check_at("2025-08-23T06:00:00.000Z").is_ok());
        assert!(check_at("yesterday").is_err());
    }

    #[test]
    fn kinds_and_run_ids_are_short_words() {
        assert!(check_kind("effect.intent").is_ok());
        assert!(check_kind("").is_err());
        assert!(check_kind("has space").is_err());
        assert!(check_run_id("aivo-2025-08-23").is_ok());
        assert!(check_run_id("a/b").is_err());
    }
}
