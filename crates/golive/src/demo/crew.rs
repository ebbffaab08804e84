//! The people of the plan, played by the demo through `engine::crew` (the same policy the
//! rehearsal uses): they answer roll calls, decide "go", approve stages, acknowledge pages
//! and tasks, sign off what they own when it is due, and waive what this machine cannot
//! check. Every action goes through the same door as a real person's (an input the engine
//! may refuse), and is logged with their name.

use std::sync::Arc;

use engine::crew::{CrewOptions, Planned};
use engine::state::RunState;
use engine::{Input, Record, RecordBody};
use jiff::Timestamp;
use plan::Plan;
use tokio::sync::{mpsc, oneshot};

use crate::shell::Msg;

/// How long before a checklist or the success check is due its owners sign off.
const SIGN_OFF_LEAD_MS: u64 = 30 * 60_000;

pub struct Crew {
    crew: engine::crew::Crew,
    tx: mpsc::UnboundedSender<Msg>,
    /// Records not yet answered: they are answered with the state that follows them.
    records: Vec<Record>,
    /// Inputs whose time has not come yet.
    later: Vec<Planned>,
    /// Refusals the engine gave the crew, to show in the report.
    pub refusals: Vec<String>,
}

impl Crew {
    pub fn new(plan: Arc<Plan>, tx: mpsc::UnboundedSender<Msg>) -> Crew {
        let options = CrewOptions {
            ack_after_ms: 0,
            sign_off_lead_ms: SIGN_OFF_LEAD_MS,
            go_reason: "all checklists complete; the leads are ready".to_owned(),
            approve_reason: "metrics green; approved".to_owned(),
            waive_unverifiable: Some("on this demo machine".to_owned()),
            retry_unknown: true,
            ..CrewOptions::default()
        };
        Crew {
            crew: engine::crew::Crew::new(plan, options),
            tx,
            records: Vec::new(),
            later: Vec::new(),
            refusals: Vec::new(),
        }
    }

    fn send(&self, input: Input) {
        let (reply, _answer) = oneshot::channel();
        // The run may have ended; then there is nobody to answer.
        let _ = self.tx.send(Msg::Act { input, reply });
    }

    /// Takes note of what the engine just decided or asked for; answered at the next
    /// [`Crew::on_state`], with the state after it.
    pub fn on_record(&mut self, record: &Record) {
        if let RecordBody::Refused { reason, .. } = &record.body {
            self.refusals.push(reason.clone());
        }
        self.records.push(record.clone());
    }

    /// Answers the records seen since the last state, gives what has come due, and signs
    /// off what is due soon.
    pub fn on_state(&mut self, state: &RunState, now: Timestamp) {
        for record in std::mem::take(&mut self.records) {
            let planned = self.crew.answer(&record, state, record.at);
            self.later.extend(planned);
        }
        let (due, later): (Vec<Planned>, Vec<Planned>) = std::mem::take(&mut self.later)
            .into_iter()
            .partition(|p| p.at <= now);
        self.later = later;
        for planned in due {
            if self.crew.still_wanted(&planned.input, state) {
                self.send(planned.input);
            }
        }
        for input in self.crew.due(state, now) {
            self.send(input);
        }
    }
}
