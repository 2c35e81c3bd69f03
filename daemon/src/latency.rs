//! Request latency: one histogram per command family in each worker thread, for `stats
//! latency` and the metrics endpoint's `ferrocache_request_duration_seconds`.
//!
//! Owns: the command families, the bucket bounds, recording (each thread's histograms have one
//! writer, the worker serving the request, so recording is plain loads and stores, no locked
//! instruction), and summed snapshots with percentiles and `stats reset`'s baseline. Must not
//! touch: which request belongs to which family (each protocol front maps its own requests
//! onto [`Family`]) or any output format.
//!
//! A request's latency is its service time: from when the server starts on it (its bytes were
//! read, or the request before it in the same read was answered) until its reply is encoded.
//! Time in the kernel's socket queues and the write of the reply are outside it.
//!
//! `--no-latency-histograms` turns recording off: no clock is read and each request only
//! counts towards its thread's total (`ferrocache_thread_requests`), so an operator can
//! measure what recording costs against the same build.

use crate::counters::Counter;
use parking_lot::Mutex;

/// The command families latency is kept for, as the text and binary fronts map their
/// requests onto them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `get`, `gets` (binary: get, getq, getk, getkq).
    Get,
    /// `set`, `add`, `replace`, `append`, `prepend`, `cas` (binary: the same and their quiet
    /// forms).
    Set,
    /// `delete` (binary: delete, deleteq).
    Delete,
    /// `incr`, `decr` (binary: increment, decrement and their quiet forms).
    Arith,
    /// `touch`, `gat`, `gats` (binary: touch, gat, gatq, gatk, gatkq): memcached counts them
    /// as touches.
    Touch,
    /// The meta commands: `mg`, `ms`, `md`, `ma`, `mn`, `me`.
    Meta,
    /// Everything else: `stats`, `version`, `flush_all`, `verbosity`, `quit`, refused or
    /// malformed requests, ...
    Other,
}

impl Family {
    pub const ALL: [Family; 7] = [
        Family::Get,
        Family::Set,
        Family::Delete,
        Family::Arith,
        Family::Touch,
        Family::Meta,
        Family::Other,
    ];

    /// The family's name in `stats latency` and in the metrics' `family` label.
    pub const fn name(self) -> &'static str {
        match self {
            Family::Get => "get",
            Family::Set => "set",
            Family::Delete => "delete",
            Family::Arith => "arith",
            Family::Touch => "touch",
            Family::Meta => "meta",
            Family::Other => "other",
        }
    }
}

const FAMILIES: usize = Family::ALL.len();

/// Leading digits of the bucket bounds in each decade: about 12% apart, so a percentile read
/// from the buckets is within a few percent of the true one.
const MANTISSAS: [u32; 21] = [
    10, 11, 12, 13, 14, 15, 16, 18, 20, 22, 25, 28, 30, 35, 40, 45, 50, 60, 70, 80, 90,
];

/// Decades covered: 100 ns up to 1 s.
const DECADES: usize = 7;

/// Inclusive upper bounds of the buckets, in nanoseconds: [`MANTISSAS`] in every decade from
/// 100 ns, then 1 s. A last bucket beyond them holds everything slower than 1 s.
pub const BOUNDS_NS: [u32; DECADES * MANTISSAS.len() + 1] = bounds();

/// Buckets per histogram: one per bound and the overflow bucket.
pub const BUCKETS: usize = BOUNDS_NS.len() + 1;

const fn bounds() -> [u32; DECADES * MANTISSAS.len() + 1] {
    let mut bounds = [0u32; DECADES * MANTISSAS.len() + 1];
    let mut scale = 10u32;
    let mut decade = 0;
    while decade < DECADES {
        let mut digit = 0;
        while digit < MANTISSAS.len() {
            bounds[decade * MANTISSAS.len() + digit] = MANTISSAS[digit] * scale;
            digit += 1;
        }
        scale *= 10;
        decade += 1;
    }
    bounds[DECADES * MANTISSAS.len()] = 1_000_000_000;
    bounds
}

/// The bounds the metrics endpoint exposes (seconds), from 10 us to 1 s: Prometheus's usual
/// 1-2.5-5 steps. Each is one of [`BOUNDS_NS`], so its cumulative count is exact.
pub const EXPOSED_BOUNDS_NS: [u32; 16] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
];

/// Bits of a latency after its leading one that pick its slot in [`FIRST_CANDIDATE`]: 16 slots
/// per power of two, each narrower (at most 6.25%) than the gap between two bounds, so a slot
/// holds at most one bound and the lookup below steps at most once.
const SLOT_BITS: u32 = 4;

/// Slots: 16 per bit length of a `u32` from 5 (values below 16 are all in bucket 0) to 32.
const SLOTS: usize = (32 - SLOT_BITS as usize) << SLOT_BITS;

/// The slot of a latency of at least 16 ns: its bit length and the 4 bits after its leading one.
#[inline]
const fn slot_of(nanos: u32) -> usize {
    let length = 32 - nanos.leading_zeros();
    let fraction = (nanos >> (length - 1 - SLOT_BITS)) & ((1 << SLOT_BITS) - 1);
    (((length - 1 - SLOT_BITS) << SLOT_BITS) | fraction) as usize
}

/// For each slot, the first bucket whose bound is at least the slot's smallest value.
const FIRST_CANDIDATE: [u8; SLOTS] = first_candidates();

const fn first_candidates() -> [u8; SLOTS] {
    let mut table = [0u8; SLOTS];
    let mut slot = 0;
    while slot < SLOTS {
        let shift = (slot >> SLOT_BITS) as u32;
        let fraction = (slot & ((1 << SLOT_BITS) - 1)) as u64;
        let smallest = ((1 << SLOT_BITS) | fraction) << shift;
        let mut bucket = 0;
        while bucket < BOUNDS_NS.len() && (BOUNDS_NS[bucket] as u64) < smallest {
            bucket += 1;
        }
        table[slot] = bucket as u8;
        slot += 1;
    }
    table
}

/// [`BOUNDS_NS`] and then `u32::MAX` for the overflow bucket, so the one step below needs no
/// check of its own for running off the end.
const STEP_BOUNDS: [u32; BUCKETS] = step_bounds();

const fn step_bounds() -> [u32; BUCKETS] {
    let mut bounds = [u32::MAX; BUCKETS];
    let mut bucket = 0;
    while bucket < BOUNDS_NS.len() {
        bounds[bucket] = BOUNDS_NS[bucket];
        bucket += 1;
    }
    bounds
}

/// The bucket a latency of `nanos` falls in: the first whose bound is at least `nanos`. A
/// table lookup and one branch-free step (a slot holds at most one bound), not a search:
/// this runs for every request.
#[inline]
fn bucket_of(nanos: u64) -> usize {
    let nanos = u32::try_from(nanos).unwrap_or(u32::MAX);
    if nanos < 1 << SLOT_BITS {
        return 0;
    }
    let first = usize::from(FIRST_CANDIDATE[slot_of(nanos)]);
    // A latency clamped to u32::MAX is not below the sentinel, so it stays in the overflow
    // bucket.
    first + usize::from(STEP_BOUNDS[first] < nanos)
}

/// One family's histogram in one thread.
#[derive(Debug)]
struct Histogram {
    buckets: [Counter; BUCKETS],
    sum_nanos: Counter,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| Counter::default()),
            sum_nanos: Counter::default(),
        }
    }
}

/// One worker thread's histograms; aligned to keep threads off each other's lines.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ThreadLatency {
    families: [Histogram; FAMILIES],
    /// Requests served while recording is off: counted without a time, so the per-thread
    /// request totals stay right either way.
    untimed: Counter,
}

impl ThreadLatency {
    /// Records a request of `family` that took `nanos`; only the owning worker may call it.
    #[inline]
    pub fn record(&self, family: Family, nanos: u64) {
        let histogram = &self.families[family as usize];
        // bucket_of is always below BUCKETS; `get` keeps a panic path off the request path.
        if let Some(bucket) = histogram.buckets.get(bucket_of(nanos)) {
            bucket.incr();
        }
        histogram.sum_nanos.add(nanos);
    }

    /// Counts a request served while recording is off; only the owning worker may call it.
    #[inline]
    pub fn count_untimed(&self) {
        self.untimed.incr();
    }

    /// Requests this thread has served, timed or not, of every family.
    pub fn requests(&self) -> u64 {
        self.families
            .iter()
            .flat_map(|h| h.buckets.iter())
            .map(Counter::get)
            .fold(self.untimed.get(), u64::wrapping_add)
    }

    fn add_to(&self, snapshot: &mut LatencySnapshot) {
        for (histogram, into) in self.families.iter().zip(snapshot.families.iter_mut()) {
            for (bucket, count) in histogram.buckets.iter().zip(into.buckets.iter_mut()) {
                *count = count.wrapping_add(bucket.get());
            }
            into.sum_nanos = into.sum_nanos.wrapping_add(histogram.sum_nanos.get());
        }
    }
}

/// One family's histogram, summed over threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Requests per bucket of [`BOUNDS_NS`], the overflow bucket last.
    pub buckets: [u64; BUCKETS],
    pub sum_nanos: u64,
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        HistogramSnapshot {
            buckets: [0; BUCKETS],
            sum_nanos: 0,
        }
    }
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The latency (ns) below which a `quantile` (0..1) of the requests fall, interpolated
    /// within its bucket; 0 when nothing was recorded, 1 s when it lies beyond 1 s.
    pub fn quantile_nanos(&self, quantile: f64) -> f64 {
        let count = self.count();
        if count == 0 {
            return 0.0;
        }
        // The rank of the request at that quantile, 1-based.
        let rank = ((quantile * count as f64).ceil() as u64).clamp(1, count);
        let mut below = 0u64;
        for (index, &in_bucket) in self.buckets.iter().enumerate() {
            if in_bucket == 0 || below + in_bucket < rank {
                below += in_bucket;
                continue;
            }
            let Some(&upper) = BOUNDS_NS.get(index) else {
                break; // The overflow bucket: reported as its lower bound.
            };
            let lower = if index == 0 { 0 } else { BOUNDS_NS[index - 1] };
            let within = (rank - below) as f64 / in_bucket as f64;
            return f64::from(lower) + within * f64::from(upper - lower);
        }
        f64::from(BOUNDS_NS[BOUNDS_NS.len() - 1])
    }

    /// Requests per exposed bucket (not cumulative) for [`EXPOSED_BOUNDS_NS`], then the
    /// requests slower than the last bound.
    pub fn exposed_buckets(&self) -> [u64; EXPOSED_BOUNDS_NS.len() + 1] {
        let mut exposed = [0u64; EXPOSED_BOUNDS_NS.len() + 1];
        let mut target = 0;
        for (index, &in_bucket) in self.buckets.iter().enumerate() {
            let bound = BOUNDS_NS.get(index).copied().unwrap_or(u32::MAX);
            while target < EXPOSED_BOUNDS_NS.len() && bound > EXPOSED_BOUNDS_NS[target] {
                target += 1;
            }
            exposed[target] += in_bucket;
        }
        exposed
    }

    fn subtract(&mut self, baseline: &HistogramSnapshot) {
        for (count, base) in self.buckets.iter_mut().zip(baseline.buckets.iter()) {
            *count = count.wrapping_sub(*base);
        }
        self.sum_nanos = self.sum_nanos.wrapping_sub(baseline.sum_nanos);
    }
}

/// Every family's histogram, summed over threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencySnapshot {
    families: [HistogramSnapshot; FAMILIES],
}

impl LatencySnapshot {
    pub fn family(&self, family: Family) -> &HistogramSnapshot {
        &self.families[family as usize]
    }
}

/// The latency histograms of every worker thread, and what `stats reset` last saw.
#[derive(Debug)]
pub struct Latency {
    threads: Box<[ThreadLatency]>,
    baseline: Mutex<LatencySnapshot>,
    /// Whether requests are timed (`--no-latency-histograms` turns it off); fixed at start.
    recording: bool,
    /// The request clock: the TSC read directly (quanta), scaled to nanoseconds only for a
    /// difference. A vDSO `clock_gettime` costs about 2.5x as long per read and, under
    /// callgrind, some 15 more instructions; quanta falls back to the monotonic clock where
    /// the TSC is not invariant.
    clock: quanta::Clock,
}

impl Latency {
    pub fn new(threads: usize, recording: bool) -> Self {
        Latency {
            threads: (0..threads).map(|_| ThreadLatency::default()).collect(),
            baseline: Mutex::new(LatencySnapshot::default()),
            recording,
            clock: quanta::Clock::new(),
        }
    }

    /// The clock requests are timed with: [`quanta::Clock::raw`] readings, turned into
    /// nanoseconds by [`quanta::Clock::delta_as_nanos`].
    pub fn clock(&self) -> &quanta::Clock {
        &self.clock
    }

    /// Whether requests are timed into the histograms.
    pub fn recording(&self) -> bool {
        self.recording
    }

    /// Worker `worker`'s histograms, for it to record into.
    pub fn thread(&self, worker: usize) -> &ThreadLatency {
        &self.threads[worker]
    }

    pub fn threads(&self) -> &[ThreadLatency] {
        &self.threads
    }

    /// Everything recorded since the server started (what Prometheus wants: never reset).
    pub fn since_start(&self) -> LatencySnapshot {
        let mut snapshot = LatencySnapshot::default();
        for thread in self.threads.iter() {
            thread.add_to(&mut snapshot);
        }
        snapshot
    }

    /// Everything recorded since the last `stats reset` (what `stats latency` shows).
    pub fn since_reset(&self) -> LatencySnapshot {
        let mut snapshot = self.since_start();
        let baseline = self.baseline.lock();
        for (family, base) in snapshot.families.iter_mut().zip(baseline.families.iter()) {
            family.subtract(base);
        }
        snapshot
    }

    /// `stats reset`: `stats latency` starts again from nothing.
    pub fn reset(&self) {
        let now = self.since_start();
        *self.baseline.lock() = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_rise_and_hold_every_exposed_bound() {
        assert!(BOUNDS_NS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            (BOUNDS_NS[0], BOUNDS_NS[BOUNDS_NS.len() - 1]),
            (100, 1_000_000_000)
        );
        for bound in EXPOSED_BOUNDS_NS {
            assert!(
                BOUNDS_NS.contains(&bound),
                "{bound} ns is not a bucket bound"
            );
        }
    }

    #[test]
    fn the_lookup_agrees_with_a_search_and_steps_at_most_once() {
        let search = |nanos: u32| BOUNDS_NS.partition_point(|&bound| bound < nanos);
        let mut values: Vec<u32> = (0..100_000).collect();
        for &bound in &BOUNDS_NS {
            values.extend([bound - 1, bound, bound + 1]);
        }
        let mut value = 100_000u64;
        while value < u64::from(u32::MAX) {
            values.push(value as u32);
            value = value * 1_001 / 1_000 + 1;
        }
        values.push(u32::MAX);
        for nanos in values {
            assert_eq!(bucket_of(u64::from(nanos)), search(nanos), "{nanos} ns");
            if nanos >= 16 {
                let first = usize::from(FIRST_CANDIDATE[slot_of(nanos)]);
                assert!(
                    search(nanos) - first <= 1,
                    "{nanos} ns: {} steps",
                    search(nanos) - first
                );
            }
        }
    }

    #[test]
    fn a_latency_lands_in_the_first_bucket_whose_bound_holds_it() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(100), 0);
        assert_eq!(bucket_of(101), 1);
        assert_eq!(BOUNDS_NS[bucket_of(10_000)], 10_000);
        assert_eq!(BOUNDS_NS[bucket_of(10_001)], 11_000);
        assert_eq!(bucket_of(1_000_000_000), BOUNDS_NS.len() - 1);
        assert_eq!(bucket_of(1_000_000_001), BUCKETS - 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    fn recorded(latencies: impl IntoIterator<Item = u64>) -> HistogramSnapshot {
        let latency = Latency::new(2, true);
        for (i, nanos) in latencies.into_iter().enumerate() {
            latency.thread(i % 2).record(Family::Get, nanos);
        }
        latency.since_start().family(Family::Get).clone()
    }

    #[test]
    fn quantiles_are_within_a_bucket_of_the_truth() {
        // 1..=10,000 us: the true p50 is 5,000 us, p99 9,900 us, p99.9 9,990 us.
        let histogram = recorded((1..=10_000u64).map(|us| us * 1_000));
        assert_eq!(histogram.count(), 10_000);
        for (quantile, truth) in [
            (0.5, 5_000e3),
            (0.9, 9_000e3),
            (0.99, 9_900e3),
            (0.999, 9_990e3),
        ] {
            let got = histogram.quantile_nanos(quantile);
            assert!(
                (got - truth).abs() <= truth * 0.12,
                "p{quantile}: {got} ns, truly {truth} ns"
            );
        }
        assert_eq!(recorded([]).quantile_nanos(0.5), 0.0);
        assert_eq!(recorded([5_000_000_000]).quantile_nanos(0.5), 1e9);
    }

    #[test]
    fn exposed_buckets_count_each_latency_once_at_its_bound() {
        let histogram = recorded([5_000, 10_000, 10_001, 30_000, 999_999_999, 2_000_000_000]);
        let exposed = histogram.exposed_buckets();
        assert_eq!(exposed.iter().sum::<u64>(), 6);
        assert_eq!(exposed[0], 2, "<= 10 us");
        assert_eq!(exposed[1], 1, "<= 25 us");
        assert_eq!(exposed[2], 1, "<= 50 us");
        assert_eq!(exposed[15], 1, "<= 1 s");
        assert_eq!(exposed[16], 1, "> 1 s");
        assert_eq!(histogram.sum_nanos, 3_000_055_000);
    }

    #[test]
    fn reset_starts_stats_latency_afresh_but_not_the_totals() {
        let latency = Latency::new(1, true);
        latency.thread(0).record(Family::Set, 1_000);
        latency.reset();
        latency.thread(0).record(Family::Set, 2_000);
        assert_eq!(latency.since_reset().family(Family::Set).count(), 1);
        assert_eq!(latency.since_start().family(Family::Set).count(), 2);
        assert_eq!(latency.thread(0).requests(), 2);
        assert_eq!(latency.since_reset().family(Family::Get).count(), 0);
    }

    #[test]
    fn untimed_requests_count_towards_the_thread_but_no_histogram() {
        let latency = Latency::new(1, false);
        assert!(!latency.recording());
        latency.thread(0).count_untimed();
        latency.thread(0).record(Family::Get, 1_000);
        assert_eq!(latency.thread(0).requests(), 2);
        assert_eq!(latency.since_start().family(Family::Get).count(), 1);
    }
}
