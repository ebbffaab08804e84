//! `golive run PLAN --env NAME`: a live run in the foreground. Durable and resumable: run
//! the same command after a crash or a kill and it continues from its log.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use sha2::Digest as _;

use crate::shell::clock::{Clock, WallClock};
use crate::shell::control::Control;
use crate::shell::executor::{ConsoleAnnouncer, LiveExecutor};
use crate::shell::{Ending, RunSetup, Shell, default_run_id, wiring};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7450";

#[derive(clap::Args)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// The plan environment to run against.
    #[arg(long)]
    pub env: String,
    /// The SQLite file that holds the run's log.
    #[arg(long, default_value = "golive.db")]
    pub store: PathBuf,
    /// Address of the run's API (loopback only: the API has no authentication).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Run id; default: the plan's name, the environment and T0's date.
    #[arg(long)]
    pub run: Option<String>,
    /// Print every log event as it is written.
    #[arg(long)]
    pub verbose: bool,
}

/// Reads and validates a plan; prints diagnostics; returns the plan and its file's hash.
pub fn load_plan(path: &std::path::Path) -> anyhow::Result<(plan::Plan, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let loaded = plan::load(&path.display().to_string(), &bytes);
    if loaded.errors() > 0 {
        eprint!("{}", loaded.render());
        bail!(
            "{}: {} error(s); fix them first (`golive validate` shows them all)",
            path.display(),
            loaded.errors()
        );
    }
    let hash = hex::encode(sha2::Sha256::digest(&bytes));
    // usable() is Some when there are no errors, which was just checked.
    let plan = loaded.plan.context("the plan did not parse")?;
    Ok((plan, hash))
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.listen.ip().is_loopback() {
        bail!(
            "--listen {}: the API has no authentication yet, so it only listens on loopback (127.0.0.1 or ::1)",
            args.listen
        );
    }
    let (plan, plan_hash) = load_plan(&args.plan)?;
    let plan = Arc::new(plan);
    let run_id = args
        .run
        .clone()
        .unwrap_or_else(|| default_run_id(&plan, &args.env));
    let store: Arc<dyn store::EventStore> = Arc::new(
        store::SqliteStore::open(&args.store)
            .with_context(|| format!("opening the store {}", args.store.display()))?,
    );
    let wiring::Wired {
        router,
        metric_sources,
        proxy,
    } = wiring::build(&plan, &args.env, 1.0).await?;
    let clock: Arc<dyn Clock> = Arc::new(WallClock);
    let executor = Arc::new(LiveExecutor {
        router,
        metric_sources,
        ratio_slis: crate::shell::executor::ratio_slis(&plan),
        announcer: Arc::new(ConsoleAnnouncer),
    });
    let setup = RunSetup {
        plan: plan.clone(),
        plan_hash,
        env: args.env.clone(),
        run_id: run_id.clone(),
        store: store.clone(),
        clock: clock.clone(),
        executor,
    };
    let (mut shell, first_inputs, retries) = Shell::open(setup)?;
    if let Some(proxy) = &proxy {
        restore_builtin_split(&plan, proxy, shell.status().borrow().view.ramp.weight)?;
    }
    let verbose = args.verbose;
    shell.observe(move |event, record| {
        if verbose || crate::report::is_notable(record) {
            println!("{}", crate::report::event_line(event, record));
        }
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "listening on {} (is another run using it? --listen)",
                args.listen
            )
        })?;
    let control = Arc::new(Control {
        tx: shell.sender(),
        status: shell.status(),
        clock: clock.clone(),
        store: store.clone(),
        run_id: run_id.clone(),
    });
    let app = server::router(control, crate::shell::alerts::routes(shell.sender(), &plan));
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listener, app, async {
        let _ = server_stopped.await;
    }));
    println!(
        "golive: run {run_id} of {} in environment {}; API on http://{}; log in {}",
        plan.meta.name.value,
        args.env,
        args.listen,
        args.store.display()
    );
    if let Some(proxy) = &proxy {
        println!("golive: built-in router on http://{}", proxy.local_addr());
    }
    let ending = shell.run(first_inputs, retries, shutdown_signal()).await;
    // The built-in router carries the users' traffic: a run that ends (completed, or
    // rolled back and settled) must not take it down with the process. It keeps serving
    // the final split, and the API its status, until the operator stops golive.
    if let (Some(proxy), Ok(Ending::Finished { status })) = (&proxy, &ending) {
        println!(
            "golive: run {run_id} is over ({status}); the built-in router keeps serving {:?} on http://{} until golive is stopped (Ctrl-C)",
            proxy.weights(),
            proxy.local_addr()
        );
        shutdown_signal().await;
    }
    let _ = stop_server.send(());
    let _ = server.await;
    // The last effects may still hold the router; then the process exit closes it.
    if let Some(proxy) = proxy.and_then(|handle| Arc::try_unwrap(handle).ok()) {
        proxy.shutdown().await;
    }
    match ending? {
        Ending::Finished { status } => {
            println!("golive: run {run_id} finished: {status}");
            Ok(ExitCode::SUCCESS)
        }
        Ending::Stopped => {
            println!("golive: stopped; run the same command to resume run {run_id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The built-in router lives in this process and starts with everything on the stable
/// version. A resumed run gives it back the split the run last confirmed, before any
/// request can see another one; the engine does not ask again for weights it believes in.
fn restore_builtin_split(
    plan: &plan::Plan,
    proxy: &proxy::RouterHandle,
    canary_percent: u32,
) -> anyhow::Result<()> {
    if canary_percent == 0 {
        return Ok(());
    }
    let ramp = plan.ramp.as_ref();
    let stable = ramp
        .and_then(|r| r.stable.as_ref().map(|s| s.value.clone()))
        .unwrap_or_else(|| "stable".to_owned());
    let canary = ramp
        .and_then(|r| r.canary.as_ref().map(|c| c.value.clone()))
        .unwrap_or_else(|| "canary".to_owned());
    let split = std::collections::BTreeMap::from([
        (stable, 100 - canary_percent.min(100)),
        (canary, canary_percent.min(100)),
    ]);
    let in_force = proxy.set_weights(&split).map_err(|e| {
        anyhow::anyhow!("restoring the split {split:?} on the built-in router: {e}")
    })?;
    println!("golive: the built-in router resumes the split the run last confirmed: {in_force:?}");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
