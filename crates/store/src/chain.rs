//! Checking a run's hash chain, event by event, independent of where the events are stored.

use crate::{ChainBroken, Event, FORMAT, GENESIS_HASH, VerifyReport};

/// Walks a run's events in stored order and remembers the first one that breaks the chain.
///
/// Per event, in this order: the sequence number is the next one (a gap means events were
/// removed), it is within the run's recorded head, the format is known, `prev_hash` is the
/// previous event's hash, and `hash` is the hash of the content. At the end the last event
/// must be the recorded head, so removing or adding events at the end is caught too.
pub struct ChainChecker {
    run_id: String,
    head_seq: u64,
    last_seq: u64,
    last_hash: String,
    broken: Option<ChainBroken>,
}

impl ChainChecker {
    /// `head_seq` is the number of events the run's record says were appended.
    pub fn new(run_id: &str, head_seq: u64) -> ChainChecker {
        ChainChecker {
            run_id: run_id.to_owned(),
            head_seq,
            last_seq: 0,
            last_hash: GENESIS_HASH.to_owned(),
            broken: None,
        }
    }

    /// Checks the next stored event. After the first break every call returns it again.
    pub fn push(&mut self, event: &Event) -> Result<(), ChainBroken> {
        if let Some(broken) = &self.broken {
            return Err(broken.clone());
        }
        match self.check(event) {
            Ok(()) => {
                self.last_seq = event.seq;
                self.last_hash.clone_from(&event.hash);
                Ok(())
            }
            Err(broken) => {
                self.broken = Some(broken.clone());
                Err(broken)
            }
        }
    }

    fn check(&self, event: &Event) -> Result<(), ChainBroken> {
        let expected = self.last_seq + 1;
        let bad = |seq: u64, reason: String| {
            Err(ChainBroken {
                first_bad_seq: seq,
                reason,
            })
        };
        if event.run_id != self.run_id {
            return bad(
                event.seq,
                format!("belongs to run `{}`, not `{}`", event.run_id, self.run_id),
            );
        }
        if event.seq > expected {
            return bad(
                expected,
                format!(
                    "missing: the log goes from event {} to event {}",
                    self.last_seq, event.seq
                ),
            );
        }
        if event.seq < expected {
            return bad(
                event.seq,
                format!("out of order: stored after event {}", self.last_seq),
            );
        }
        if event.seq > self.head_seq {
            return bad(
                event.seq,
                format!(
                    "not part of the run: the run's record says the log ends at event {}",
                    self.head_seq
                ),
            );
        }
        if event.format != FORMAT {
            return bad(
                event.seq,
                format!(
                    "unknown format {} (this release reads {FORMAT})",
                    event.format
                ),
            );
        }
        if event.prev_hash != self.last_hash {
            let previous = if self.last_seq == 0 {
                "the genesis value (64 zeros)".to_owned()
            } else {
                format!("the hash of event {}", self.last_seq)
            };
            return bad(
                event.seq,
                format!(
                    "prev_hash {} is not {previous} ({}): an event before it was changed, removed, inserted or moved",
                    short(&event.prev_hash),
                    short(&self.last_hash)
                ),
            );
        }
        let computed = event.computed_hash();
        if computed != event.hash {
            return bad(
                event.seq,
                format!(
                    "content does not match its hash: stored {}, computed {}",
                    short(&event.hash),
                    short(&computed)
                ),
            );
        }
        Ok(())
    }

    /// Ends the walk: the chain must reach the run's recorded head, with its hash.
    pub fn finish(self, head_hash: &str) -> Result<VerifyReport, ChainBroken> {
        if let Some(broken) = self.broken {
            return Err(broken);
        }
        if self.last_seq < self.head_seq {
            return Err(ChainBroken {
                first_bad_seq: self.last_seq + 1,
                reason: format!(
                    "missing: the log ends at event {} but the run's record says it ends at event {}",
                    self.last_seq, self.head_seq
                ),
            });
        }
        if self.last_hash != head_hash {
            return Err(ChainBroken {
                first_bad_seq: self.last_seq,
                reason: format!(
                    "hash {} is not the run's recorded head hash {}",
                    short(&self.last_hash),
                    short(head_hash)
                ),
            });
        }
        Ok(VerifyReport {
            run_id: self.run_id,
            events: self.last_seq,
            head_hash: self.last_hash,
        })
    }
}

/// The first 12 hex digits: enough to tell hashes apart in a message.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
