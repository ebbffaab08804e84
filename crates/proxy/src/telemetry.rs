//! Per-version request telemetry: lock-free counters and latency histograms on the hot path,
//! a one-second ring of deltas for windowed rates and quantiles, read by the metric source.
//!
//! Each recording thread leases a slot index for its lifetime and writes only its own
//! cells, so recording a request is three plain additions (a load and a store each, no
//! atomic read-modify-write, no cache line shared with another writer). Readers sum the
//! slots. Nothing on the recording path takes a lock; a thread allocates its cells once,
//! on its first record. Past [`THREAD_SLOTS`] live recording threads, the rest share one
//! slot with atomic additions.
//!
//! History is kept as one delta per second (taken by [`Telemetry::tick`], which the router
//! calls every second) in a ring of [`HISTORY_SECONDS`] entries. The histogram part of each
//! delta is sparse, so the ring costs memory in proportion to the latencies actually seen.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How far back [`Telemetry::window`] can look.
pub const HISTORY_SECONDS: usize = 600;

/// Sub-buckets per power of two in the latency histogram: 32 gives a bucket width of at
/// most 1/32 of its value, so a reported quantile (the bucket's midpoint) is within ±1.6 %.
const SUB_BUCKET_BITS: u32 = 5;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;
/// Latencies are recorded in microseconds and clamped to 2^32-1 µs (about 71 minutes).
const MAX_MICROS: u64 = (1 << 32) - 1;
/// Number of histogram buckets needed to cover 0..=MAX_MICROS.
pub const HISTOGRAM_BUCKETS: usize = bucket_index(MAX_MICROS) + 1;

/// Recording threads that get cells of their own; more share one extra slot.
pub const THREAD_SLOTS: usize = 64;
const SHARED_SLOT: usize = THREAD_SLOTS;

/// Index of the latency bucket that holds `micros`: exact below 64 µs, then 32 linear
/// sub-buckets per power of two.
pub const fn bucket_index(micros: u64) -> usize {
    let micros = if micros > MAX_MICROS {
        MAX_MICROS
    } else {
        micros
    };
    if micros < 2 * SUB_BUCKETS {
        return micros as usize;
    }
    let highest_bit = 63 - micros.leading_zeros();
    let shift = highest_bit - SUB_BUCKET_BITS;
    let sub_bucket = micros >> shift; // in SUB_BUCKETS..2*SUB_BUCKETS
    (shift as u64 * SUB_BUCKETS + sub_bucket) as usize
}

/// The smallest value (µs) that falls into bucket `index`, and the bucket's width.
pub const fn bucket_bounds(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < 2 * SUB_BUCKETS {
        return (index, 1);
    }
    let shift = index / SUB_BUCKETS - 1;
    let sub_bucket = index % SUB_BUCKETS + SUB_BUCKETS;
    (sub_bucket << shift, 1 << shift)
}

/// What happened to one proxied request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The backend answered with this status code; or 499 when the client left before its
    /// request body was whole (nginx's "client closed request"), which is not the version's
    /// failure.
    Response(u16),
    /// The router answered on the backend's behalf (502, 503 or 504).
    ProxyError(ProxyErrorKind),
}

/// Why the router could not get a response from a backend. Each is answered with a 5xx
/// and counted apart from the backends' own 5xx responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyErrorKind {
    /// Connecting to the backend failed or timed out (502).
    Connect,
    /// The backend did not send response headers within the request timeout (504).
    Timeout,
    /// The version's group had no healthy backend (503).
    NoHealthyBackend,
    /// The connection to the backend broke or the backend spoke invalid HTTP (502).
    Backend,
}

impl ProxyErrorKind {
    pub const ALL: [ProxyErrorKind; 4] = [
        ProxyErrorKind::Connect,
        ProxyErrorKind::Timeout,
        ProxyErrorKind::NoHealthyBackend,
        ProxyErrorKind::Backend,
    ];

    /// The label used in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyErrorKind::Connect => "connect",
            ProxyErrorKind::Timeout => "timeout",
            ProxyErrorKind::NoHealthyBackend => "no_healthy_backend",
            ProxyErrorKind::Backend => "backend",
        }
    }

    fn index(self) -> usize {
        match self {
            ProxyErrorKind::Connect => 0,
            ProxyErrorKind::Timeout => 1,
            ProxyErrorKind::NoHealthyBackend => 2,
            ProxyErrorKind::Backend => 3,
        }
    }
}

/// Status classes counted per version: 1xx..5xx (index 0..=4); anything else lands in 5xx's
/// neighbour "other" (index 5), which only a broken backend produces.
const STATUS_CLASSES: usize = 6;
const CLASS_LABELS: [&str; STATUS_CLASSES] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

fn status_class_index(status: u16) -> usize {
    match status {
        100..=599 => (status / 100 - 1) as usize,
        _ => 5,
    }
}

/// Counter slots in one shard: status classes, then proxy error kinds, then the latency sum.
const CLASS_BASE: usize = 0;
const PROXY_ERROR_BASE: usize = STATUS_CLASSES;
const LATENCY_SUM_SLOT: usize = PROXY_ERROR_BASE + ProxyErrorKind::ALL.len();
const COUNTER_SLOTS: usize = LATENCY_SUM_SLOT + 1;

/// One slot's cells for one version. Aligned to two cache lines so cells of different
/// slots never share a line (adjacent-line prefetch included).
#[repr(align(128))]
struct Shard {
    counters: [AtomicU64; COUNTER_SLOTS],
    buckets: Box<[AtomicU64]>,
}

impl Shard {
    fn new() -> Self {
        Shard {
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: (0..HISTOGRAM_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// Index of a version inside one [`Telemetry`], from [`Telemetry::version_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionId(pub(crate) usize);

struct VersionCells {
    name: String,
    /// Indexed by slot; allocated on a slot's first record.
    slots: Box<[OnceLock<Box<Shard>>]>,
}

/// A slot index held by one thread while it lives; `None` when all are taken.
struct SlotLease(Option<usize>);

static FREE_SLOTS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static NEVER_LEASED: AtomicUsize = AtomicUsize::new(0);

impl SlotLease {
    fn acquire() -> Self {
        let mut free = FREE_SLOTS
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(index) = free.pop() {
            return SlotLease(Some(index));
        }
        drop(free);
        let index = NEVER_LEASED.fetch_add(1, Ordering::Relaxed);
        SlotLease((index < THREAD_SLOTS).then_some(index))
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        // Handing the index over through the mutex orders this thread's last writes
        // before the next owner's first read of the same cells.
        if let Some(index) = self.0 {
            FREE_SLOTS
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .push(index);
        }
    }
}

/// Totals for one version: plain numbers, cumulative since start or over a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Backend responses by class: 1xx, 2xx, 3xx, 4xx, 5xx, other.
    pub responses_by_class: [u64; STATUS_CLASSES],
    /// Proxy errors by kind, in [`ProxyErrorKind::ALL`] order.
    pub proxy_errors: [u64; 4],
    /// Sum of all latencies in microseconds.
    pub latency_sum_micros: u64,
    /// Latency histogram, [`HISTOGRAM_BUCKETS`] buckets (see [`bucket_bounds`]).
    pub latency_buckets: Vec<u64>,
}

impl Totals {
    fn zero() -> Self {
        Totals {
            responses_by_class: [0; STATUS_CLASSES],
            proxy_errors: [0; 4],
            latency_sum_micros: 0,
            latency_buckets: vec![0; HISTOGRAM_BUCKETS],
        }
    }

    /// Status class labels, in the order of `responses_by_class`.
    pub const CLASS_LABELS: [&'static str; STATUS_CLASSES] = CLASS_LABELS;

    /// Requests completed: every backend response plus every proxy error.
    pub fn requests(&self) -> u64 {
        self.responses_by_class.iter().sum::<u64>() + self.proxy_errors.iter().sum::<u64>()
    }

    /// Requests the client saw as a server error: backend 5xx plus proxy errors.
    pub fn errors_5xx(&self) -> u64 {
        self.responses_by_class[4] + self.proxy_errors.iter().sum::<u64>()
    }

    /// The latency (ms) below which a fraction `q` (0..=1) of requests fall, or `None`
    /// when nothing was recorded. Reports the midpoint of the bucket holding that rank.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let count: u64 = self.latency_buckets.iter().sum();
        if count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &n) in self.latency_buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, width) = bucket_bounds(index);
                let micros = low as f64 + (width - 1) as f64 / 2.0;
                return Some(micros / 1000.0);
            }
        }
        None
    }

    fn saturating_sub(&self, earlier: &Totals) -> Totals {
        let mut out = self.clone();
        for (a, b) in out
            .responses_by_class
            .iter_mut()
            .zip(earlier.responses_by_class)
        {
            *a = a.saturating_sub(b);
        }
        for (a, b) in out.proxy_errors.iter_mut().zip(earlier.proxy_errors) {
            *a = a.saturating_sub(b);
        }
        out.latency_sum_micros = out
            .latency_sum_micros
            .saturating_sub(earlier.latency_sum_micros);
        for (a, b) in out.latency_buckets.iter_mut().zip(&earlier.latency_buckets) {
            *a = a.saturating_sub(*b);
        }
        out
    }
}

/// Rates and quantiles for one version over a recent window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowStats {
    /// The window actually covered: shorter than asked when the router is younger.
    pub covered: Duration,
    /// Requests completed in the window.
    pub requests: u64,
    /// Backend 5xx responses plus proxy errors (what clients saw as 5xx).
    pub errors_5xx: u64,
    /// Of `errors_5xx`, those the router produced itself (connect, timeout, no backend).
    pub proxy_errors: u64,
    /// `errors_5xx / requests × 100`; `None` with no requests (nothing to judge).
    pub error_rate_percent: Option<f64>,
    /// `100 − error_rate_percent`; `None` with no requests.
    pub availability_percent: Option<f64>,
    /// Latency quantiles in milliseconds; `None` with no requests.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// A one-second delta, histogram kept sparse as (bucket, count) pairs.
struct SecondDelta {
    taken_at: Instant,
    responses_by_class: [u64; STATUS_CLASSES],
    proxy_errors: [u64; 4],
    latency_sum_micros: u64,
    buckets: Vec<(u16, u64)>,
}

struct History {
    /// Cumulative totals at the last tick, per version.
    at_last_tick: Vec<Totals>,
    /// Newest at the back, per version.
    deltas: Vec<VecDeque<SecondDelta>>,
}

/// Telemetry for a fixed set of versions. Cheap to share behind an `Arc`.
pub struct Telemetry {
    versions: Box<[VersionCells]>,
    started: Instant,
    history: Mutex<History>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("versions", &self.version_names().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

thread_local! {
    static SLOT_OF_THIS_THREAD: SlotLease = SlotLease::acquire();
}

/// Adds to a cell that only this thread writes: no atomic read-modify-write needed.
#[inline]
fn add_single_writer(cell: &AtomicU64, amount: u64) {
    cell.store(
        cell.load(Ordering::Relaxed).wrapping_add(amount),
        Ordering::Relaxed,
    );
}

impl Telemetry {
    /// Telemetry for these version names, in this order.
    pub fn new<S: Into<String>>(versions: impl IntoIterator<Item = S>) -> Self {
        let versions: Box<[VersionCells]> = versions
            .into_iter()
            .map(|name| VersionCells {
                name: name.into(),
                slots: (0..=THREAD_SLOTS).map(|_| OnceLock::new()).collect(),
            })
            .collect();
        let count = versions.len();
        Telemetry {
            versions,
            started: Instant::now(),
            history: Mutex::new(History {
                at_last_tick: (0..count).map(|_| Totals::zero()).collect(),
                deltas: (0..count).map(|_| VecDeque::new()).collect(),
            }),
        }
    }

    /// The id to record under, or `None` for an unknown version.
    pub fn version_id(&self, version: &str) -> Option<VersionId> {
        self.versions
            .iter()
            .position(|cells| cells.name == version)
            .map(VersionId)
    }

    pub fn version_names(&self) -> impl Iterator<Item = &str> {
        self.versions.iter().map(|cells| cells.name.as_str())
    }

    /// Records one finished request. Lock-free and allocation-free: the hot path.
    #[inline]
    pub fn record(&self, version: VersionId, outcome: Outcome, latency: Duration) {
        let slot_index = SLOT_OF_THIS_THREAD
            .try_with(|lease| lease.0)
            .ok()
            .flatten()
            .unwrap_or(SHARED_SLOT);
        let shard =
            self.versions[version.0].slots[slot_index].get_or_init(|| Box::new(Shard::new()));
        let counter = match outcome {
            Outcome::Response(status) => CLASS_BASE + status_class_index(status),
            Outcome::ProxyError(kind) => PROXY_ERROR_BASE + kind.index(),
        };
        let micros = latency.as_micros().min(MAX_MICROS as u128) as u64;
        let bucket = bucket_index(micros);
        if slot_index == SHARED_SLOT {
            shard.counters[counter].fetch_add(1, Ordering::Relaxed);
            shard.counters[LATENCY_SUM_SLOT].fetch_add(micros, Ordering::Relaxed);
            shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        } else {
            add_single_writer(&shard.counters[counter], 1);
            add_single_writer(&shard.counters[LATENCY_SUM_SLOT], micros);
            add_single_writer(&shard.buckets[bucket], 1);
        }
    }

    /// Cumulative totals for one version since start.
    pub fn totals(&self, version: VersionId) -> Totals {
        let mut totals = Totals::zero();
        for shard in self.versions[version.0]
            .slots
            .iter()
            .filter_map(OnceLock::get)
        {
            for (class, counter) in totals.responses_by_class.iter_mut().enumerate() {
                *counter += shard.counters[CLASS_BASE + class].load(Ordering::Relaxed);
            }
            for (kind, counter) in totals.proxy_errors.iter_mut().enumerate() {
                *counter += shard.counters[PROXY_ERROR_BASE + kind].load(Ordering::Relaxed);
            }
            totals.latency_sum_micros += shard.counters[LATENCY_SUM_SLOT].load(Ordering::Relaxed);
            for (sum, bucket) in totals.latency_buckets.iter_mut().zip(shard.buckets.iter()) {
                *sum += bucket.load(Ordering::Relaxed);
            }
        }
        totals
    }

    /// Closes the current second: stores the delta since the last tick in the ring.
    /// The router calls this once a second; call it yourself when using `Telemetry` alone.
    pub fn tick(&self) {
        let now = Instant::now();
        let current: Vec<Totals> = (0..self.versions.len())
            .map(|index| self.totals(VersionId(index)))
            .collect();
        let mut history = self
            .history
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let History {
            at_last_tick,
            deltas,
        } = &mut *history;
        for ((now_totals, before), ring) in current.into_iter().zip(at_last_tick).zip(deltas) {
            let delta = now_totals.saturating_sub(before);
            ring.push_back(SecondDelta {
                taken_at: now,
                responses_by_class: delta.responses_by_class,
                proxy_errors: delta.proxy_errors,
                latency_sum_micros: delta.latency_sum_micros,
                buckets: delta
                    .latency_buckets
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    // HISTOGRAM_BUCKETS is under 1000, so every index fits in u16.
                    .map(|(index, n)| (index as u16, *n))
                    .collect(),
            });
            while ring.len() > HISTORY_SECONDS {
                ring.pop_front();
            }
            *before = now_totals;
        }
    }

    /// Totals for one version over (about) the last `window`, with one-second resolution:
    /// the requests since the last tick plus every one-second delta that ends inside the
    /// window. At most [`HISTORY_SECONDS`] back.
    pub fn window_totals(&self, version: VersionId, window: Duration) -> (Totals, Duration) {
        let now = Instant::now();
        let current = self.totals(version);
        let history = self
            .history
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut sum = current.saturating_sub(&history.at_last_tick[version.0]);
        let window_start = now.checked_sub(window);
        for delta in history.deltas[version.0].iter().rev() {
            if let Some(start) = window_start
                && delta.taken_at <= start
            {
                break;
            }
            for (a, b) in sum
                .responses_by_class
                .iter_mut()
                .zip(delta.responses_by_class)
            {
                *a += b;
            }
            for (a, b) in sum.proxy_errors.iter_mut().zip(delta.proxy_errors) {
                *a += b;
            }
            sum.latency_sum_micros += delta.latency_sum_micros;
            for (index, n) in &delta.buckets {
                sum.latency_buckets[*index as usize] += n;
            }
        }
        let covered = now.duration_since(self.started).min(window);
        (sum, covered)
    }

    /// Rates and quantiles for `version` over the last `window`; `None` for an unknown
    /// version.
    pub fn window(&self, version: &str, window: Duration) -> Option<WindowStats> {
        let id = self.version_id(version)?;
        let (totals, covered) = self.window_totals(id, window);
        let requests = totals.requests();
        let errors_5xx = totals.errors_5xx();
        let error_rate_percent =
            (requests > 0).then(|| errors_5xx as f64 * 100.0 / requests as f64);
        Some(WindowStats {
            covered,
            requests,
            errors_5xx,
            proxy_errors: totals.proxy_errors.iter().sum(),
            error_rate_percent,
            availability_percent: error_rate_percent.map(|rate| 100.0 - rate),
            p50_ms: totals.quantile_ms(0.50),
            p95_ms: totals.quantile_ms(0.95),
            p99_ms: totals.quantile_ms(0.99),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_index_and_bounds_agree_everywhere_that_matters() {
        let mut previous = 0;
        for micros in (0..100_000u64).chain([MAX_MICROS - 1, MAX_MICROS, u64::MAX]) {
            let index = bucket_index(micros);
            assert!(index >= previous, "buckets are monotonic at {micros}");
            previous = index;
            let (low, width) = bucket_bounds(index);
            let clamped = micros.min(MAX_MICROS);
            assert!(
                low <= clamped && clamped < low + width,
                "{micros} in bucket {index} = [{low}, {})",
                low + width
            );
            assert!(width * SUB_BUCKETS <= low.max(SUB_BUCKETS * 2));
        }
        assert_eq!(bucket_index(u64::MAX), HISTOGRAM_BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_two_percent_of_known_latencies() {
        let telemetry = Telemetry::new(["stable"]);
        let id = telemetry.version_id("stable").unwrap();
        for millis in 1..=1000u64 {
            telemetry.record(id, Outcome::Response(200), Duration::from_millis(millis));
        }
        let stats = telemetry.window("stable", Duration::from_secs(60)).unwrap();
        assert_eq!(stats.requests, 1000);
        for (got, want) in [
            (stats.p50_ms, 500.0),
            (stats.p95_ms, 950.0),
            (stats.p99_ms, 990.0),
        ] {
            let got = got.unwrap();
            assert!((got - want).abs() / want < 0.02, "got {got}, want {want}");
        }
    }

    #[test]
    fn window_includes_ticked_seconds_and_the_current_one() {
        let telemetry = Telemetry::new(["stable", "canary"]);
        let canary = telemetry.version_id("canary").unwrap();
        telemetry.record(canary, Outcome::Response(200), Duration::from_millis(5));
        telemetry.tick();
        telemetry.record(canary, Outcome::Response(503), Duration::from_millis(5));
        telemetry.record(
            canary,
            Outcome::ProxyError(ProxyErrorKind::Timeout),
            Duration::from_millis(5),
        );
        telemetry.tick();
        telemetry.record(canary, Outcome::Response(404), Duration::from_millis(5));
        let stats = telemetry.window("canary", Duration::from_secs(60)).unwrap();
        assert_eq!(stats.requests, 4);
        assert_eq!(stats.errors_5xx, 2);
        assert_eq!(stats.proxy_errors, 1);
        assert_eq!(stats.error_rate_percent, Some(50.0));
        assert_eq!(stats.availability_percent, Some(50.0));
        let stable = telemetry.window("stable", Duration::from_secs(60)).unwrap();
        assert_eq!(stable.requests, 0);
        assert_eq!(stable.error_rate_percent, None);
        assert_eq!(stable.p99_ms, None);
        assert!(telemetry.window("nope", Duration::from_secs(1)).is_none());
    }

    #[test]
    fn counts_are_exact_with_more_threads_than_slots_and_with_thread_churn() {
        let telemetry = Telemetry::new(["stable"]);
        let id = telemetry.version_id("stable").unwrap();
        let threads = THREAD_SLOTS + 36;
        let barrier = std::sync::Barrier::new(threads);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    barrier.wait();
                    for i in 0..1000u64 {
                        telemetry.record(id, Outcome::Response(200), Duration::from_micros(i));
                    }
                });
            }
        });
        // Short-lived threads hand their slots on; nothing recorded before is lost.
        for _ in 0..200 {
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    telemetry.record(id, Outcome::Response(500), Duration::from_millis(1));
                });
            });
        }
        let totals = telemetry.totals(id);
        assert_eq!(totals.responses_by_class[1], threads as u64 * 1000);
        assert_eq!(totals.responses_by_class[4], 200);
        assert_eq!(
            totals.latency_buckets.iter().sum::<u64>(),
            threads as u64 * 1000 + 200
        );
        assert_eq!(
            totals.latency_sum_micros,
            threads as u64 * (999 * 1000 / 2) + 200 * 1000
        );
    }

    #[test]
    fn window_leaves_out_seconds_older_than_the_window() {
        let telemetry = Telemetry::new(["stable"]);
        let id = telemetry.version_id("stable").unwrap();
        telemetry.record(id, Outcome::Response(500), Duration::from_millis(1));
        telemetry.tick();
        std::thread::sleep(Duration::from_millis(300));
        telemetry.record(id, Outcome::Response(200), Duration::from_millis(1));
        telemetry.tick();
        let recent = telemetry
            .window("stable", Duration::from_millis(150))
            .unwrap();
        assert_eq!(recent.requests, 1);
        assert_eq!(recent.errors_5xx, 0);
        let all = telemetry.window("stable", Duration::from_secs(10)).unwrap();
        assert_eq!(all.requests, 2);
    }
}
