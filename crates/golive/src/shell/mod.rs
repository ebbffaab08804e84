//! The shell: the async loop around the pure engine.
//!
//! It is the one writer to a run's log. For every input (time, an operator's action, an
//! effect's result, an alert) it asks the engine what follows, appends every resulting
//! record to the store durably, and only then starts the effects those records request.
//! Results come back into the same loop as inputs. After a crash it rebuilds the engine by
//! replaying the log, retries the idempotent effects that have no result, and reports the
//! others as "outcome unknown" for a person to settle — they never run twice by themselves.

pub mod alerts;
pub mod clock;
pub mod control;
pub mod executor;
pub mod log;
pub mod status;
pub mod wiring;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use engine::{Engine, Input, Record, RecordBody};
use plan::Plan;
use store::{EventStore, NewRun};
use tokio::sync::{mpsc, oneshot, watch};

use self::clock::Clock;
use self::executor::EffectExecutor;
use self::status::StatusSnapshot;

/// What reaches the loop from outside.
pub enum Msg {
    /// An operator's action through the API; the reply says whether it was accepted.
    Act {
        input: Input,
        reply: oneshot::Sender<Result<server::ActionAccepted, server::ApiError>>,
    },
    /// An effect's result, metric samples, or an alert.
    Input(Input),
}

/// Everything a run needs to start or resume.
pub struct RunSetup {
    pub plan: Arc<Plan>,
    /// SHA-256 of the plan file's bytes, recorded with the run and checked on resume.
    pub plan_hash: String,
    pub env: String,
    pub run_id: String,
    pub store: Arc<dyn EventStore>,
    pub clock: Arc<dyn Clock>,
    pub executor: Arc<dyn EffectExecutor>,
}

/// How a run loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The engine has nothing more scheduled.
    Finished { status: String },
    /// Asked to stop (signal); the run can be resumed with the same command.
    Stopped,
}

/// Sees each event as it is stored.
pub type Observer = Box<dyn FnMut(&store::Event, &Record) + Send>;

pub struct Shell {
    engine: Engine,
    setup: RunSetup,
    last_seq: u64,
    /// The latest time handed to the engine: a clock that steps back (NTP) is held here,
    /// because the engine refuses inputs dated before its last record.
    last_now: Option<jiff::Timestamp>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    status: watch::Sender<StatusSnapshot>,
    in_flight: usize,
    /// Called with each stored event, for a person watching (the console, the demo).
    observer: Option<Observer>,
    /// The engine's whole state after each input, for those who asked for it.
    state: Option<watch::Sender<Arc<engine::RunState>>>,
}

impl Shell {
    /// Opens the run: resumes it from the log when it exists, or creates it.
    pub fn open(
        setup: RunSetup,
    ) -> anyhow::Result<(Shell, Vec<Input>, Vec<engine::EffectRequest>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let existing = setup.store.run(&setup.run_id)?;
        let (engine, last_seq, last_now, resumed) = match existing {
            Some(run) => {
                if run.plan_hash != setup.plan_hash {
                    bail!(
                        "run `{}` was started with a different plan file (hash {} then, {} now); \
                         a run continues on the plan it started with — restore that file, or start a new run with --run",
                        setup.run_id,
                        short(&run.plan_hash),
                        short(&setup.plan_hash)
                    );
                }
                if run.env != setup.env {
                    bail!(
                        "run `{}` runs in environment `{}`, not `{}`",
                        setup.run_id,
                        run.env,
                        setup.env
                    );
                }
                let events = setup.store.read(&setup.run_id, 1)?;
                let records = events
                    .iter()
                    .map(log::to_record)
                    .collect::<Result<Vec<_>, _>>()?;
                let engine =
                    Engine::replay(setup.plan.clone(), &setup.env, &setup.run_id, &records)
                        .with_context(|| format!("replaying the log of run `{}`", setup.run_id))?;
                let last_now = records.last().map(|r| r.at);
                (engine, run.head_seq, last_now, true)
            }
            None => {
                setup.store.create_run(&NewRun {
                    id: setup.run_id.clone(),
                    plan_name: setup.plan.meta.name.value.clone(),
                    plan_hash: setup.plan_hash.clone(),
                    env: setup.env.clone(),
                    created: format!("{:.3}", setup.clock.now()),
                })?;
                let engine = Engine::new(setup.plan.clone(), &setup.env, &setup.run_id)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                (engine, 0, None, false)
            }
        };
        let snapshot = StatusSnapshot::build(&engine, &setup.plan, last_seq);
        let (status, _) = watch::channel(snapshot);
        let mut first_inputs = Vec::new();
        let mut retries = Vec::new();
        if resumed {
            for pending in engine.pending_effects() {
                if pending.idempotent {
                    retries.push(pending);
                } else {
                    first_inputs.push(Input::EffectOutcomeUnknown { id: pending.id });
                }
            }
        } else {
            first_inputs.push(Input::Start);
        }
        let shell = Shell {
            engine,
            setup,
            last_seq,
            last_now,
            tx,
            rx,
            status,
            in_flight: 0,
            observer: None,
            state: None,
        };
        Ok((shell, first_inputs, retries))
    }

    pub fn sender(&self) -> mpsc::UnboundedSender<Msg> {
        self.tx.clone()
    }

    pub fn status(&self) -> watch::Receiver<StatusSnapshot> {
        self.status.subscribe()
    }

    /// The engine's state after every input (a copy each time: for the demo, not the hot path).
    pub fn watch_state(&mut self) -> watch::Receiver<Arc<engine::RunState>> {
        let (tx, rx) = watch::channel(Arc::new(self.engine.state().clone()));
        self.state = Some(tx);
        rx
    }

    pub fn observe(&mut self, observer: impl FnMut(&store::Event, &Record) + Send + 'static) {
        self.observer = Some(Box::new(observer));
    }

    /// Runs until the engine has nothing left to do or `shutdown` resolves.
    pub async fn run(
        mut self,
        first_inputs: Vec<Input>,
        retries: Vec<engine::EffectRequest>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<Ending> {
        for input in first_inputs {
            self.apply(input)?;
        }
        for request in retries {
            self.start_effect(request);
        }
        tokio::pin!(shutdown);
        loop {
            if self.finished() {
                return Ok(Ending::Finished {
                    status: self.engine.state().status.as_str().to_owned(),
                });
            }
            let deadline = self.engine.poll_timeout();
            // Never sleep long: a scaled clock and a suspended machine both drift.
            let wait = deadline
                .map(|at| self.setup.clock.real_wait_until(at))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_millis(500));
            tokio::select! {
                biased;
                _ = &mut shutdown => return Ok(Ending::Stopped),
                msg = self.rx.recv() => {
                    // The loop holds a sender itself, so the channel never closes.
                    let Some(msg) = msg else { return Ok(Ending::Stopped) };
                    self.on_message(msg)?;
                }
                _ = tokio::time::sleep(wait) => {
                    if deadline.is_some_and(|at| self.setup.clock.now() >= at) {
                        self.apply(Input::Tick)?;
                    }
                }
            }
        }
    }

    /// The run has ended and nothing it started is still out. A run that waits for a
    /// person (a halted step, an open gate) has not ended: it keeps serving the API.
    fn finished(&self) -> bool {
        self.in_flight == 0
            && self.engine.state().ended_at.is_some()
            && self.engine.poll_timeout().is_none()
            && self.engine.pending_effects().is_empty()
    }

    fn on_message(&mut self, msg: Msg) -> anyhow::Result<()> {
        match msg {
            Msg::Act { input, reply } => {
                let stored = self.apply(input)?;
                let answer = match stored.first() {
                    Some((event, record)) => match &record.body {
                        RecordBody::Refused { reason, .. } => Err(control::refusal_error(reason)),
                        _ => Ok(server::ActionAccepted {
                            seq: event.seq,
                            message: control::summary(&stored),
                        }),
                    },
                    None => Err(server::ApiError::Internal(
                        "the engine recorded nothing".into(),
                    )),
                };
                // The client may have gone away; the action is recorded either way.
                let _ = reply.send(answer);
            }
            Msg::Input(input) => {
                if matches!(
                    input,
                    Input::EffectResult { .. } | Input::MetricSamples { query: Some(_), .. }
                ) {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.setup.clock.release();
                }
                self.apply(input)?;
            }
        }
        Ok(())
    }

    /// Hands one input to the engine, stores every record durably, then starts the effects.
    /// A store failure stops the run: nothing is executed that the log does not hold.
    fn apply(&mut self, input: Input) -> anyhow::Result<Vec<(store::Event, Record)>> {
        let clock = self.setup.clock.clone();
        clock.hold();
        let applied = self.apply_held(input);
        clock.release();
        applied
    }

    fn apply_held(&mut self, input: Input) -> anyhow::Result<Vec<(store::Event, Record)>> {
        let now = match self.last_now {
            Some(last) => self.setup.clock.now().max(last),
            None => self.setup.clock.now(),
        };
        self.last_now = Some(now);
        let records = self.engine.handle(now, input);
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let new_events = records
            .iter()
            .map(log::to_new_event)
            .collect::<Result<Vec<_>, _>>()?;
        let store = self.setup.store.clone();
        let run_id = self.setup.run_id.clone();
        let after = self.last_seq;
        let stored = tokio::task::block_in_place(|| store.append(&run_id, after, &new_events))
            .context("writing the run log; the run stops here and resumes from the log with the same command")?;
        if let Some(last) = stored.last() {
            self.last_seq = last.seq;
        }
        let pairs: Vec<(store::Event, Record)> = stored.into_iter().zip(records).collect();
        for (event, record) in &pairs {
            if let Some(observer) = self.observer.as_mut() {
                observer(event, record);
            }
        }
        for (_, record) in &pairs {
            if let RecordBody::Effect(request) = &record.body {
                self.start_effect(request.clone());
            }
        }
        self.status.send_replace(StatusSnapshot::build(
            &self.engine,
            &self.setup.plan,
            self.last_seq,
        ));
        if let Some(state) = &self.state {
            state.send_replace(Arc::new(self.engine.state().clone()));
        }
        Ok(pairs)
    }

    fn start_effect(&mut self, request: engine::EffectRequest) {
        self.in_flight += 1;
        self.setup.clock.hold();
        let executor = self.setup.executor.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let input = executor.execute(request).await;
            // The loop owns the receiver for as long as it runs; after it stops, a result
            // that cannot be delivered is settled on resume (retry or "outcome unknown").
            let _ = tx.send(Msg::Input(input));
        });
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// The run id a plan gets by default: its name, environment and planned T0 date, so the
/// same command resumes the same run.
pub fn default_run_id(plan: &Plan, env: &str) -> String {
    let slug: String = plan
        .meta
        .name
        .value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let slug = slug
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let date = plan.t0.value.0.date();
    format!("{slug}-{env}-{date}")
}
