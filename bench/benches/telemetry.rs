//! The router's per-request telemetry cost (target: under 100 ns per request), beside a
//! mutex-guarded hdrhistogram as the obvious alternative, and the cost of reading a
//! 600-second window.
//!
//! Costs are CPU time per record (each thread's on-CPU time from
//! `/proc/thread-self/schedstat`, divided by its records), so other load on the machine
//! does not inflate them the way wall time would.
//!
//! `cargo bench -p golive-bench --bench telemetry` (an argument sets the rounds, default 7).

use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use proxy::telemetry::{Outcome, Telemetry};

const RECORDS_PER_ROUND: u64 = 2_000_000;

/// Latencies spread over the histogram's range, so buckets vary as in real traffic.
fn latencies() -> Vec<Duration> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            Duration::from_micros(200 + state % 200_000)
        })
        .collect()
}

fn outcome(i: u64) -> Outcome {
    if i.is_multiple_of(50) {
        Outcome::Response(503)
    } else {
        Outcome::Response(200)
    }
}

/// Nanoseconds this thread has spent on a CPU.
fn thread_cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat is readable on Linux")
}

/// Runs `work(i)` for every i on `threads` threads at once; returns the mean CPU time per
/// call, in nanoseconds.
fn cpu_nanos_per_call(threads: usize, work: &(dyn Fn(u64) + Sync)) -> f64 {
    let barrier = Barrier::new(threads);
    let spent: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let before = thread_cpu_nanos();
                    for i in 0..RECORDS_PER_ROUND {
                        work(i);
                    }
                    thread_cpu_nanos() - before
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("bench threads do not panic"))
            .collect()
    });
    spent.iter().sum::<u64>() as f64 / (threads as u64 * RECORDS_PER_ROUND) as f64
}

/// Counters and an hdrhistogram behind one mutex: the obvious alternative.
type LockedHistogram = Mutex<(u64, u64, hdrhistogram::Histogram<u64>)>;

fn locked_record(locked: &LockedHistogram, i: u64, latency: Duration) {
    let mut guard = locked
        .lock()
        .expect("never poisoned: nothing panics inside");
    let (requests, errors, histogram) = &mut *guard;
    *requests += 1;
    if matches!(outcome(i), Outcome::Response(500..)) {
        *errors += 1;
    }
    histogram.saturating_record(latency.as_micros() as u64);
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(7);
    let latencies = latencies();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "telemetry: median of {rounds} rounds of {RECORDS_PER_ROUND} records per thread \
         ({cores} cores)"
    );

    for threads in [1, 2] {
        let telemetry = Telemetry::new(["stable", "canary"]);
        let id = telemetry.version_id("canary").expect("declared above");
        let locked: LockedHistogram = Mutex::new((
            0,
            0,
            hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 2)
                .expect("valid hdrhistogram bounds"),
        ));
        let latency = |i: u64| latencies[(i % latencies.len() as u64) as usize];
        let measure = |work: &(dyn Fn(u64) + Sync)| {
            median(
                (0..rounds)
                    .map(|_| cpu_nanos_per_call(threads, work))
                    .collect(),
            )
        };
        let clocks = measure(&|i| {
            let started = Instant::now();
            black_box(i);
            black_box(started.elapsed());
        });
        let hot_path = measure(&|i| {
            let started = Instant::now();
            black_box(i);
            telemetry.record(id, outcome(i), started.elapsed());
        });
        let record = measure(&|i| telemetry.record(id, outcome(i), black_box(latency(i))));
        let locked_ns = measure(&|i| locked_record(&locked, i, black_box(latency(i))));
        println!(
            "  {threads} thread(s) recording at once, CPU ns per request: hot path (2 clock \
             reads + record) {hot_path:.1} | the 2 clock reads alone {clocks:.1} | record \
             alone {record:.1} | mutex + hdrhistogram instead {locked_ns:.1}"
        );
    }

    // Reading: a full 600-second window with traffic in every second.
    let telemetry = Telemetry::new(["stable", "canary"]);
    let id = telemetry.version_id("canary").expect("declared above");
    for second in 0..600u64 {
        for i in 0..200 {
            telemetry.record(
                id,
                outcome(i),
                latencies[((second * 200 + i) % 4096) as usize],
            );
        }
        telemetry.tick();
    }
    let reads = median(
        (0..rounds)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..100 {
                    black_box(telemetry.window("canary", Duration::from_secs(600)));
                }
                started.elapsed().as_secs_f64() * 1e6 / 100.0
            })
            .collect(),
    );
    println!("  window(canary, 600 s) over 600 ticked seconds: {reads:.0} µs per call");
}
