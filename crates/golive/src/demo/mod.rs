//! `golive demo`: the seed's go-live on this machine, with real HTTP traffic.
//!
//! Two versions of a small service (stable and canary) run on loopback behind golive's
//! built-in router; simulated users send requests through it; the AIVO plan's `local`
//! environment runs live with its clock scaled so the ramp takes about a minute. The plan's
//! people are played by a crew that signs off, answers roll calls, decides "go" and
//! approves stages. Steps that need infrastructure this machine lacks are rehearsed, never
//! executed. With `--fault` the canary starts failing at the 25 % stage, the rules roll
//! back by themselves, and the demo prints how long it took.

pub mod crew;
pub mod load;
pub mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use engine::{Decision, Record, RecordBody};
use jiff::{SignedDuration, Timestamp};
use proxy::demo_service::{Degradation, DemoConfig, DemoService};

use crate::shell::clock::{Clock, ScaledClock};
use crate::shell::executor::{Announcer, LiveExecutor};
use crate::shell::{Ending, RunSetup, Shell, wiring};

/// The plan the demo runs when given none: the seed runbook as a plan.
pub const AIVO_PLAN: &str = include_str!("../../../../examples/aivo/plan.yaml");

#[derive(clap::Args)]
pub struct Args {
    /// Make the new version fail at the 25 % stage, and watch the automatic rollback.
    #[arg(long)]
    pub fault: bool,
    /// Real seconds the ramp from 5 % to 100 % takes; the plan's clock is scaled to fit.
    #[arg(long, default_value_t = 60.0)]
    pub ramp_seconds: f64,
    /// Simulated users sending requests through the router (10 requests/s each). At 5 %
    /// a few of them use the new version: enough to judge it over two seconds.
    #[arg(long, default_value_t = 150)]
    pub users: usize,
    /// Keep the run's log in this SQLite file (default: a temporary file, removed after).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Run this plan instead of the built-in AIVO plan.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// The plan environment (it must use the built-in router on loopback).
    #[arg(long, default_value = "local")]
    pub env: String,
    /// Write the report as JSON here too.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
}

/// What the demo saw, in real time, for the report.
#[derive(Default)]
pub struct Observed {
    pub timeline: Vec<(Timestamp, String)>,
    pub weights: Vec<(Timestamp, u32)>,
    pub messages: u64,
    pub pages: u64,
    pub rules_fired: Vec<(Timestamp, String, Option<f64>)>,
    pub rollback_plan_ms: Option<u64>,
    pub rollback_budget_ms: Option<u64>,
    pub rollback_decided_real: Option<Instant>,
    pub rollback_confirmed_real: Option<Instant>,
    pub fault_injected_real: Option<Instant>,
    /// The last stage (all users on the new version) was entered.
    pub reached_full: bool,
    pub success_verdict: Option<String>,
    pub rehearsed: u64,
    pub executed: u64,
    pub ended: Option<String>,
    /// User requests the new version had served when the router confirmed the rollback.
    pub canary_served_at_rollback: Option<u64>,
    pub canary_served_after_rollback: Option<u64>,
}

fn free_loopback_port() -> anyhow::Result<SocketAddr> {
    // Bound and released at once, so the service can take it.
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Prints nothing: the demo shows messages as counts and the last subject.
struct QuietAnnouncer;

impl Announcer for QuietAnnouncer {
    fn announce(&self, _effect: &engine::Effect) {}
}

pub async fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    let (text, file_name) = match &args.plan {
        Some(path) => (
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            AIVO_PLAN.as_bytes().to_vec(),
            "examples/aivo/plan.yaml".to_owned(),
        ),
    };
    let loaded = plan::load(&file_name, &text);
    if loaded.errors() > 0 {
        eprint!("{}", loaded.render());
        anyhow::bail!("{file_name} has errors");
    }
    let mut plan = loaded.plan.context("the plan did not parse")?;

    // Real services on free loopback ports, and the environment pointed at them.
    let router_addr = free_loopback_port()?;
    let stable = DemoService::start(DemoConfig::new(free_loopback_port()?, "stable")).await?;
    let canary = DemoService::start(DemoConfig::new(free_loopback_port()?, "canary")).await?;
    let environment = plan
        .environments
        .iter_mut()
        .find(|e| e.id.as_str() == args.env)
        .ok_or_else(|| anyhow!("the plan has no environment `{}`", args.env))?;
    let router_url = format!("http://{router_addr}");
    for (name, value) in [
        ("router_listen", router_addr.to_string()),
        ("stable_addr", stable.addr().to_string()),
        ("canary_addr", canary.addr().to_string()),
        ("api_url", router_url.clone()),
        ("staging_api_url", router_url.clone()),
        ("app_url", router_url.clone()),
    ] {
        if let Some(var) = environment.value.vars.get_mut(name) {
            var.value = value;
        }
    }
    // The clock: from just before the first timeline step, scaled so the ramp's holds up to
    // the last stage take `ramp_seconds`.
    let ramp_plan_ms: u64 = plan
        .ramp
        .as_ref()
        .ok_or_else(|| anyhow!("the plan has no ramp to demonstrate"))?
        .stages
        .iter()
        .rev()
        .skip(1)
        .map(|s| s.hold.millis())
        .sum();
    // The router's telemetry judges over whole real seconds; every hold must outlast its
    // warm-up (the metric window) with room to judge, so the clock is never faster than
    // the shortest hold over three windows.
    let shortest_hold_ms = plan
        .ramp
        .iter()
        .flat_map(|r| r.stages.iter().map(|s| s.hold.millis()))
        .min()
        .unwrap_or(0);
    let fastest = shortest_hold_ms as f64 / (3.0 * wiring::MIN_BUILTIN_WINDOW.as_millis() as f64);
    let wanted = ramp_plan_ms as f64 / 1000.0 / args.ramp_seconds.max(1.0);
    let scale = wanted.min(fastest).max(1.0);
    if scale < wanted {
        eprintln!(
            "golive demo: the ramp takes {:.0} s instead of {:.0} s: a faster clock would end a stage before the router's telemetry could judge it",
            ramp_plan_ms as f64 / 1000.0 / scale,
            args.ramp_seconds
        );
    }
    // The router's telemetry counts whole real seconds; its shortest window, scaled, is what
    // the plan's built-in source judges over (and what the engine's warm-up waits for).
    let window = plan::Dur((wiring::MIN_BUILTIN_WINDOW.as_millis() as f64 * scale) as u64);
    for source in plan.metric_sources.iter_mut() {
        if let Some(builtin) = source.value.builtin.as_mut() {
            builtin.value.window = Some(plan::At::bare(window));
        }
    }
    let plan = Arc::new(plan);
    let ramp = plan
        .ramp
        .as_ref()
        .ok_or_else(|| anyhow!("the plan has no ramp"))?;
    let t0 = plan.t0.value.0.timestamp();
    let first_step = plan
        .timeline
        .iter()
        .flat_map(|phase| phase.steps.iter().map(|s| s.at.value.approx_millis()))
        .min()
        .unwrap_or(0);
    let start = t0 + SignedDuration::from_millis(first_step) - SignedDuration::from_mins(30);
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(start, scale));

    let wiring::Wired {
        router,
        metric_sources,
        proxy,
    } = wiring::build(&plan, &args.env, scale).await?;
    let proxy = proxy.ok_or_else(|| {
        anyhow!(
            "environment `{}` does not use the built-in router",
            args.env
        )
    })?;
    let load = load::Load::start(
        format!("{router_url}/"),
        args.users,
        Duration::from_millis(100),
    )?;

    let temp = tempfile::tempdir()?;
    let store_path = args
        .store
        .clone()
        .unwrap_or_else(|| temp.path().join("demo.db"));
    let store: Arc<dyn store::EventStore> = Arc::new(store::SqliteStore::open(&store_path)?);
    let executor = Arc::new(LiveExecutor {
        router,
        metric_sources,
        ratio_slis: crate::shell::executor::ratio_slis(&plan),
        announcer: Arc::new(QuietAnnouncer),
    });
    use sha2::Digest as _;
    let setup = RunSetup {
        plan: plan.clone(),
        plan_hash: hex::encode(sha2::Sha256::digest(&text)),
        env: args.env.clone(),
        run_id: format!("demo-{}", if args.fault { "fault" } else { "clean" }),
        store: store.clone(),
        clock: clock.clone(),
        executor,
    };
    let (mut shell, first_inputs, retries) = Shell::open(setup)?;
    let state = shell.watch_state();
    let observed = Arc::new(Mutex::new(Observed::default()));
    let (records_tx, mut records_rx) = tokio::sync::mpsc::unbounded_channel::<Record>();
    let ui = Arc::new(ui::Ui::new(plan.clone(), scale));
    {
        let observed = observed.clone();
        let ui = ui.clone();
        let canary_served = canary.requests_served_reader();
        shell.observe(move |_event, record| {
            // A poisoned lock only means an earlier observer call panicked; keep counting.
            let mut seen = observed.lock().unwrap_or_else(|p| p.into_inner());
            note(&mut seen, record);
            // Read as the router's confirmation is logged, not later: the run may end
            // within milliseconds of it.
            if seen.rollback_confirmed_real.is_some() && seen.canary_served_at_rollback.is_none() {
                seen.canary_served_at_rollback = Some(canary_served());
            }
            ui.on_record(record);
            let _ = records_tx.send(record.clone());
        });
    }

    // The crew answers records and signs off what comes due.
    let mut crew = crew::Crew::new(plan.clone(), shell.sender());
    let crew_clock = clock.clone();
    let mut crew_state = state.clone();
    let crew_task = tokio::spawn(async move {
        loop {
            tokio::select! {
                record = records_rx.recv() => match record {
                    Some(record) => crew.on_record(&record),
                    None => break,
                },
                changed = crew_state.changed() => {
                    if changed.is_err() { break; }
                    // The records of an input are sent before its state: answer them all
                    // with the state that follows them.
                    while let Ok(record) = records_rx.try_recv() {
                        crew.on_record(&record);
                    }
                    let snapshot = crew_state.borrow_and_update().clone();
                    crew.on_state(&snapshot, crew_clock.now());
                }
            }
        }
        crew
    });

    // The fault: a share of the canary's answers turn to 500 a little into the 25 % stage.
    let fault_stage_weight = ramp.stages.get(1).map(|s| s.weight.value).unwrap_or(25);
    let fault_delay =
        Duration::from_millis(ramp.stages.get(1).map(|s| s.hold.millis()).unwrap_or(0) / 5)
            .div_f64(scale);

    // The display refreshes from the router's telemetry and the engine's state.
    let ui_task = {
        let ui = ui.clone();
        let telemetry = proxy.telemetry().clone();
        let counters = load.counters.clone();
        let clock = clock.clone();
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                ui.refresh(&state.borrow(), clock.now(), &telemetry, &counters);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs_f64(args.ramp_seconds * 3.0 + 120.0);
    let stop_when_done = {
        let state = state.clone();
        let observed = observed.clone();
        let canary_handle = &canary;
        let fault = args.fault;
        let fault_clock = clock.clone();
        async move {
            let mut state = state;
            let mut fault_at: Option<Instant> = None;
            loop {
                {
                    let snapshot = state.borrow_and_update().clone();
                    let mut seen = observed.lock().unwrap_or_else(|p| p.into_inner());
                    if fault && fault_at.is_none() && snapshot.ramp.weight == fault_stage_weight {
                        fault_at = Some(Instant::now() + fault_delay);
                    }
                    if let Some(at) = fault_at
                        && seen.fault_injected_real.is_none()
                        && Instant::now() >= at
                    {
                        canary_handle.degrade(Degradation {
                            error_percent: 30,
                            ..Degradation::default()
                        });
                        seen.fault_injected_real = Some(Instant::now());
                        seen.timeline.push((
                            fault_clock.now(),
                            "FAULT: 30 % of the new version's answers turn to 500".to_owned(),
                        ));
                    }
                    let rolled_back_and_settled = snapshot
                        .rollback
                        .as_ref()
                        .is_some_and(|r| r.confirmed_at.is_some() && r.cursor >= r.steps.len());
                    let succeeded = seen.reached_full && snapshot.success.evaluated;
                    if rolled_back_and_settled
                        || succeeded
                        || snapshot.ended_at.is_some()
                        || Instant::now() > deadline
                    {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    ui.start(&router_url, &store_path, scale, args.fault, window);
    let ending = shell.run(first_inputs, retries, stop_when_done).await;
    ui_task.abort();
    let counters = load.counters.clone();
    load.stop().await;
    crew_task.abort();
    ui.finish();
    let ending = ending?;

    let final_state = state.borrow().clone();
    let report = {
        let mut seen = observed.lock().unwrap_or_else(|p| p.into_inner());
        seen.canary_served_after_rollback = seen
            .canary_served_at_rollback
            .map(|at| canary.requests_served().saturating_sub(at));
        ui::Report::build(
            &plan,
            &final_state,
            &seen,
            &counters,
            scale,
            &store_path,
            args.fault,
            &ending,
        )
    };
    print!("{}", report.render());
    if let Some(path) = &args.report_json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    if let Ok(handle) = Arc::try_unwrap(proxy) {
        handle.shutdown().await;
    }
    stable.shutdown().await;
    canary.shutdown().await;
    if args.store.is_some() {
        println!(
            "The run's log stays in {}; check it with `golive audit verify --store {}`.",
            store_path.display(),
            store_path.display()
        );
    }
    let ok = match ending {
        Ending::Finished { .. } | Ending::Stopped => report.outcome_ok(args.fault),
    };
    Ok(if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

/// Keeps what the report needs from each record.
fn note(seen: &mut Observed, record: &Record) {
    let at = record.at;
    match &record.body {
        RecordBody::Decision(decision) => match decision {
            Decision::WeightsConfirmed { weights } => {
                let canary = weights
                    .iter()
                    .filter(|(g, _)| g.as_str() != "stable")
                    .map(|(_, w)| *w)
                    .sum();
                if seen.weights.last().is_none_or(|(_, w)| *w != canary) {
                    seen.weights.push((at, canary));
                }
                if seen.rollback_decided_real.is_some()
                    && canary == 0
                    && seen.rollback_confirmed_real.is_none()
                {
                    seen.rollback_confirmed_real = Some(Instant::now());
                }
            }
            Decision::RuleFiring { rule, value, .. } => {
                seen.rules_fired.push((at, rule.clone(), *value));
            }
            Decision::RollbackStarted { .. } if seen.rollback_decided_real.is_none() => {
                seen.rollback_decided_real = Some(Instant::now());
            }
            Decision::RollbackConfirmed {
                duration_ms,
                budget_ms,
                ..
            } => {
                seen.rollback_plan_ms = Some(*duration_ms);
                seen.rollback_budget_ms = Some(*budget_ms);
            }
            Decision::StageEntered { weight: 100, .. } => seen.reached_full = true,
            Decision::SuccessEvaluated { verdict, .. } => {
                seen.success_verdict = Some(format!("{verdict:?}").to_lowercase())
            }
            Decision::StepDone { outcome, .. } => {
                if outcome.contains("rehearsed") {
                    seen.rehearsed += 1;
                } else {
                    seen.executed += 1;
                }
            }
            Decision::RunEnded { status, reason } => {
                seen.ended = Some(format!("{status}: {reason}"))
            }
            _ => {}
        },
        RecordBody::Effect(request) => match &request.effect {
            engine::Effect::SendMessage { .. } => seen.messages += 1,
            engine::Effect::Page { .. } => seen.pages += 1,
            _ => {}
        },
        _ => {}
    }
    if let Some(line) = ui::headline(record) {
        seen.timeline.push((at, line));
    }
}

/// Plan time → offset from T0, for the report.
pub fn offset_of(at: Timestamp, t0: Timestamp) -> String {
    let ms = at.duration_since(t0).as_millis() as i64;
    plan::Offset::from_millis(ms - ms.rem_euclid(60_000)).to_string()
}
