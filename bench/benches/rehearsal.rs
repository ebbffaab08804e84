//! Rehearses the whole AIVO plan (T-7 days to T+1 month, every cadence) against its clean
//! scenario and prints the median time and the size of the log.
//!
//! `cargo bench -p golive-bench --bench rehearsal` (target: under 200 ms per rehearsal).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::rehearsal::{Scenario, rehearse};

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let plan_path = root.join("examples/aivo/plan.yaml");
    let bytes = std::fs::read(&plan_path).expect("examples/aivo/plan.yaml is readable");
    let loaded = plan::load("examples/aivo/plan.yaml", &bytes);
    let plan = Arc::new(loaded.plan.expect("the AIVO plan loads"));
    let scenario_file = "examples/aivo/scenarios/clean.yaml";
    let text = std::fs::read_to_string(root.join(scenario_file)).unwrap_or_default();
    let scenario = Scenario::parse(scenario_file, &text).expect("the clean scenario parses");

    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(21);
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut records = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let rehearsal = rehearse(Arc::clone(&plan), &scenario, scenario_file, None)
            .expect("the rehearsal runs");
        // The rehearsal is done when its log and report are; freeing them is not part of it.
        times.push(start.elapsed());
        records = rehearsal.log.len();
        drop(std::hint::black_box(rehearsal));
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "rehearsal of examples/aivo/plan.yaml with {scenario_file}: median {:.1} ms over {runs} runs (min {:.1} ms, max {:.1} ms), {records} log records",
        median.as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0,
    );
}
