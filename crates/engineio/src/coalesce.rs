//! Coalescing writes: the scope that holds write-through while a batch of messages is handled,
//! and the pacing that, when large batches keep the server busy, defers their writes a little so
//! that several leave in one write per recipient.
//!
//! A lone message on an idle server is never held: it is written by its sender at once.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::session::Session;

/// What an open scope holds.
#[derive(Default)]
struct Scope {
    /// The sessions whose write-through is held until the scope ends.
    held: Vec<Weak<Session>>,
    /// Sends to sessions already held by a deferred flush: they count towards the batch.
    joined: usize,
}

thread_local! {
    /// Inside [`coalesce_writes`]: what the scope holds.
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Runs `f`, holding back the writes that senders on this thread would make to idle
/// WebSockets right away (write-through), and makes them when `f` returns: one write per
/// client for everything `f` queued for it. For a burst of broadcasts handled together (a
/// cluster adapter's backlog), each recipient then costs one `sendto`, not one per message; a
/// lone message costs what it did. `f` must not await (the scope is this thread's); nested
/// scopes join the outer one.
///
/// When large batches (many recipients) come so often that writing them takes most of the
/// time between them, their writes are deferred by about that time (at most 10 ms), so that the
/// next batch joins them: the same deliveries in fewer writes, which is what lets a saturated
/// server keep up. Order per client is kept either way.
///
/// ```
/// let n = engineio::coalesce_writes(|| 1 + 1);
/// assert_eq!(n, 2);
/// ```
pub fn coalesce_writes<R>(f: impl FnOnce() -> R) -> R {
    let outer = SCOPE.with(|scope| {
        let mut scope = scope.borrow_mut();
        match *scope {
            Some(_) => true,
            None => {
                *scope = Some(Scope::default());
                false
            }
        }
    });
    if outer {
        return f();
    }
    /// Makes the held writes even if `f` panics.
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            let scope = SCOPE
                .with(|scope| scope.borrow_mut().take())
                .unwrap_or_default();
            release(scope);
        }
    }
    let _release = Release;
    f()
}

/// Adds `session` to this thread's open scope; false when there is none (write now).
pub(crate) fn hold(session: &Weak<Session>) -> bool {
    SCOPE.with(|scope| {
        scope
            .borrow_mut()
            .as_mut()
            .map(|scope| scope.held.push(session.clone()))
            .is_some()
    })
}

/// A send found its session already held: counted in this thread's open scope, if any.
pub(crate) fn joined_held() {
    SCOPE.with(|scope| {
        if let Some(scope) = scope.borrow_mut().as_mut() {
            scope.joined += 1;
        }
    });
}

/// A batch with at least this many recipients counts for pacing.
const LARGE_BATCH: usize = 64;
/// A deferred flush is made as soon as it carries this many batches.
const MERGE: usize = 2;
/// The longest a batch's writes are deferred.
const MAX_DEFER: Duration = Duration::from_millis(10);
/// Deferral starts when writing batches takes this share of the time between them...
const ENTER_LOAD: f64 = 0.9;
/// ...and stops when it falls below this one.
const LEAVE_LOAD: f64 = 0.5;
/// Weight of the newest sample in the running averages.
const ALPHA: f64 = 0.2;
/// A deferred flush this late (its timer lost with its runtime) is made by the next batch.
const STALE: Duration = Duration::from_millis(50);

/// The pacing decision, from how often large batches come and what writing one costs. Pure:
/// the caller gives the times.
#[derive(Debug)]
pub(crate) struct Pacing {
    last_batch: Option<Instant>,
    /// Running average of the time between large batches, in seconds.
    interval: Option<f64>,
    /// Running average of the write time per batch, in seconds.
    cost: Option<f64>,
    /// Running average of the share of time the thread waited for a CPU (another process, or
    /// another server on the same core, holding it): time that is as busy as writing.
    contention: f64,
    deferring: bool,
}

fn average(old: Option<f64>, sample: f64) -> f64 {
    old.map_or(sample, |old| old + ALPHA * (sample - old))
}

impl Pacing {
    /// Nothing seen yet: no deferral until there is an interval and a cost to compare.
    pub(crate) const fn new() -> Pacing {
        Pacing {
            last_batch: None,
            interval: None,
            cost: None,
            contention: 0.0,
            deferring: false,
        }
    }

    /// A large batch is ready at `now`: how long to defer its writes (`None`: write now).
    /// `contention` is the share of the time since the thread's last batch that it spent
    /// waiting for a CPU, when the system tells (see [`run_queue`]).
    pub(crate) fn on_batch(&mut self, now: Instant, contention: Option<f64>) -> Option<Duration> {
        if let Some(last) = self.last_batch {
            let gap = now.saturating_duration_since(last).as_secs_f64();
            self.interval = Some(average(self.interval, gap));
        }
        if let Some(share) = contention {
            self.contention = average(Some(self.contention), share.clamp(0.0, 1.0));
        }
        self.last_batch = Some(now);
        let (Some(interval), Some(cost)) = (self.interval, self.cost) else {
            return None;
        };
        let load = cost / interval.max(1e-6) + self.contention;
        self.deferring = load
            > if self.deferring {
                LEAVE_LOAD
            } else {
                ENTER_LOAD
            };
        // Long enough for the next batch to come (it ends the wait), bounded.
        self.deferring
            .then(|| Duration::from_secs_f64(interval * 2.0).min(MAX_DEFER))
    }

    /// Writing `batches` large batches together took `took`.
    pub(crate) fn on_flush(&mut self, took: Duration, batches: usize) {
        let per_batch = took.as_secs_f64() / batches.max(1) as f64;
        self.cost = Some(average(self.cost, per_batch));
    }
}

/// The process's pacing, and the deferred writes waiting for their flush.
struct Deferral {
    pacing: Pacing,
    /// The deferred writes waiting for their flush.
    waiting: Option<Waiting>,
    /// Numbers the deferrals, so that a timer flushes only its own.
    generation: u64,
}

struct Waiting {
    /// The sessions whose held writes wait.
    held: Vec<Weak<Session>>,
    /// How many batches they carry.
    batches: usize,
    /// When the flush is due.
    due: Instant,
    generation: u64,
}

static DEFERRAL: Mutex<Deferral> = Mutex::new(Deferral {
    pacing: Pacing::new(),
    waiting: None,
    generation: 0,
});

fn deferral() -> MutexGuard<'static, Deferral> {
    DEFERRAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_all(held: &[Weak<Session>]) {
    for session in held.iter().filter_map(Weak::upgrade) {
        session.write_held();
    }
}

/// The end of a scope: writes what it held, now or deferred.
fn release(scope: Scope) {
    let held = scope.held;
    if held.len() + scope.joined < LARGE_BATCH {
        return write_all(&held);
    }
    let now = Instant::now();
    let contention = run_queue::waiting_share(now);
    let mut state = deferral();
    let wait = state.pacing.on_batch(now, contention);
    if let Some(waiting) = state.waiting.as_mut() {
        waiting.held.extend(held);
        waiting.batches += 1;
        // Two batches in one write halve the writes; waiting for more would only add delay
        // (what arrives while this flush runs is merged into the next one anyway).
        if waiting.batches >= MERGE || now > waiting.due + STALE {
            let generation = waiting.generation;
            drop(state);
            flush_deferred(generation);
        }
        return;
    }
    let runtime = tokio::runtime::Handle::try_current();
    match (wait, runtime) {
        (Some(wait), Ok(runtime)) => {
            state.generation += 1;
            let generation = state.generation;
            state.waiting = Some(Waiting {
                held,
                batches: 1,
                due: now + wait,
                generation,
            });
            drop(state);
            runtime.spawn(async move {
                // Dropped without running to the end (its runtime shut down), it still flushes.
                let _flush = FlushOnDrop(generation);
                tokio::time::sleep(wait).await;
            });
        }
        _ => {
            drop(state);
            timed_flush(&held, 1);
        }
    }
}

/// Flushes the deferral it was armed for, unless that one is already written.
struct FlushOnDrop(u64);

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        flush_deferred(self.0);
    }
}

fn flush_deferred(generation: u64) {
    let waiting = {
        let mut state = deferral();
        match &state.waiting {
            Some(w) if w.generation == generation => state.waiting.take(),
            _ => None,
        }
    };
    if let Some(waiting) = waiting {
        DEFERRED_FLUSHES.fetch_add(1, Ordering::Relaxed);
        timed_flush(&waiting.held, waiting.batches);
    }
}

static DEFERRED_FLUSHES: AtomicU64 = AtomicU64::new(0);

/// How many times this process deferred the writes of large batches because writing them kept
/// it busy (see [`coalesce_writes`]): a sign of a server near saturation, where messages wait up
/// to an interval between broadcasts (at most 10 ms) to leave with the next ones.
///
/// ```
/// let before = engineio::deferred_flushes();
/// assert!(engineio::deferred_flushes() >= before);
/// ```
pub fn deferred_flushes() -> u64 {
    DEFERRED_FLUSHES.load(Ordering::Relaxed)
}

fn timed_flush(held: &[Weak<Session>], batches: usize) {
    let start = Instant::now();
    write_all(held);
    let took = start.elapsed();
    tracing::trace!(batches, sessions = held.len(), ?took, "large batch written");
    deferral().pacing.on_flush(took, batches);
}

/// How much of its time a thread spends runnable but waiting for a CPU. Two servers sharing a
/// core each see their own writes take half the time between batches, yet the core is full: the
/// wait is what shows it. Linux reports it per thread in `/proc/thread-self/schedstat` (the
/// second field, in nanoseconds); elsewhere, or when the file cannot be read, nothing is known
/// and pacing goes by the write time alone.
mod run_queue {
    use std::cell::RefCell;
    use std::fs::File;
    use std::time::Instant;

    /// This thread's probe: the open file and the previous reading.
    struct Probe {
        file: File,
        last: Option<(u64, Instant)>,
    }

    thread_local! {
        /// `None` until first used; `Some(None)` when the file cannot be opened.
        static PROBE: RefCell<Option<Option<Probe>>> = const { RefCell::new(None) };
    }

    /// The wait (ns) in a `schedstat` line: "<on cpu ns> <waiting ns> <timeslices>".
    pub(super) fn parse(line: &[u8]) -> Option<u64> {
        let text = std::str::from_utf8(line).ok()?;
        text.split_ascii_whitespace().nth(1)?.parse().ok()
    }

    /// The share of `elapsed` spent waiting, from two readings of the wait.
    pub(super) fn share(before_ns: u64, now_ns: u64, elapsed: std::time::Duration) -> Option<f64> {
        let elapsed = elapsed.as_nanos() as f64;
        (elapsed > 0.0).then(|| (now_ns.saturating_sub(before_ns) as f64 / elapsed).min(1.0))
    }

    #[cfg(target_os = "linux")]
    fn read(file: &File) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 64];
        let n = file.read_at(&mut buf, 0).ok()?;
        parse(&buf[..n])
    }

    #[cfg(not(target_os = "linux"))]
    fn read(_: &File) -> Option<u64> {
        None
    }

    /// The share of the time since this thread's previous call that it spent waiting for a
    /// CPU; `None` on its first call or when the system does not tell.
    pub(super) fn waiting_share(now: Instant) -> Option<f64> {
        PROBE.with(|probe| {
            let mut probe = probe.borrow_mut();
            let probe = probe
                .get_or_insert_with(|| {
                    let file = File::open("/proc/thread-self/schedstat").ok()?;
                    Some(Probe { file, last: None })
                })
                .as_mut()?;
            let waited = read(&probe.file)?;
            let last = probe.last.replace((waited, now));
            let (before, at) = last?;
            share(before, waited, now.saturating_duration_since(at))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const MICROS: Duration = Duration::from_micros(1);

    /// Feeds batches every `every`, each costing `cost` to write alone (or `merged_cost` per
    /// batch when deferred), and returns the decisions.
    fn run(every: Duration, cost: Duration, merged_cost: Duration, n: u32) -> Vec<bool> {
        run_contended(every, cost, merged_cost, None, n)
    }

    /// As [`run`], the thread also waiting for a CPU for the share `contention` of the time.
    fn run_contended(
        every: Duration,
        cost: Duration,
        merged_cost: Duration,
        contention: Option<f64>,
        n: u32,
    ) -> Vec<bool> {
        let mut pacing = Pacing::new();
        let start = Instant::now();
        (0..n)
            .map(|i| {
                let wait = pacing.on_batch(start + every * i, contention);
                match wait {
                    Some(_) => pacing.on_flush(merged_cost, 1),
                    None => pacing.on_flush(cost, 1),
                }
                wait.is_some()
            })
            .collect()
    }

    #[test]
    fn an_idle_or_moderately_loaded_server_never_defers() {
        // 50/s and 100/s, writes taking 5 ms: at most half the time.
        assert!(run(20 * MS, 5 * MS, 3 * MS, 200).iter().all(|d| !d));
        assert!(run(10 * MS, 5 * MS, 3 * MS, 200).iter().all(|d| !d));
        // The first batch has nothing to compare with.
        assert_eq!(Pacing::new().on_batch(Instant::now(), None), None);
    }

    #[test]
    fn a_saturated_server_defers_and_keeps_deferring_while_busy() {
        // 200/s, 5 ms of writes each: the core is full.
        let decisions = run(5 * MS, 5 * MS, 3 * MS, 200);
        let first = decisions.iter().position(|d| *d).expect("deferral starts");
        assert!(first < 10, "starts after {first} batches");
        // Deferred batches cost 3 ms each (60% of the interval): above the exit threshold.
        assert!(decisions[first..].iter().all(|d| *d));
    }

    #[test]
    fn a_server_waiting_for_a_shared_core_defers() {
        // 200/s, writes taking half the interval, and the other half spent waiting for the
        // core another server holds: as full as one server writing all the time.
        let decisions = run_contended(5 * MS, 2500 * MICROS, 1600 * MICROS, Some(0.45), 200);
        assert!(decisions.iter().skip(10).all(|d| *d));
        // The same writes on a core of its own: no deferral.
        let decisions = run_contended(5 * MS, 2500 * MICROS, 1600 * MICROS, Some(0.0), 200);
        assert!(decisions.iter().all(|d| !d));
    }

    #[test]
    fn the_run_queue_wait_is_read_as_a_share_of_the_time() {
        assert_eq!(run_queue::parse(b"351734612 345581 25\n"), Some(345581));
        assert_eq!(run_queue::parse(b"garbage"), None);
        assert_eq!(run_queue::parse(b""), None);
        assert_eq!(run_queue::share(1_000, 3_000, 4 * MICROS), Some(0.5));
        // Clamped, and no share of no time.
        assert_eq!(run_queue::share(0, 9_000, 4 * MICROS), Some(1.0));
        assert_eq!(run_queue::share(5, 1, 4 * MICROS), Some(0.0));
        assert_eq!(run_queue::share(0, 1, Duration::ZERO), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_run_queue_wait_is_known_on_linux() {
        if !std::path::Path::new("/proc/thread-self/schedstat").exists() {
            eprintln!("skipped: this kernel has no per-thread schedstat");
            return;
        }
        let start = Instant::now();
        assert_eq!(run_queue::waiting_share(start), None, "no earlier reading");
        std::thread::sleep(2 * MS);
        let share = run_queue::waiting_share(Instant::now()).expect("a second reading");
        assert!((0.0..=1.0).contains(&share), "{share}");
    }

    #[test]
    fn deferral_stops_when_the_load_falls_and_is_bounded() {
        let mut pacing = Pacing::new();
        let start = Instant::now();
        let mut at = start;
        for _ in 0..50 {
            at += 40 * MS;
            pacing.on_batch(at, None);
            pacing.on_flush(45 * MS, 1);
        }
        // Batches 40 ms apart: deferred by at most 10 ms.
        assert_eq!(pacing.on_batch(at + 40 * MS, None), Some(MAX_DEFER));
        at += 40 * MS;
        for _ in 0..50 {
            at += 40 * MS;
            pacing.on_flush(MS, 1);
            pacing.on_batch(at, None);
        }
        assert_eq!(pacing.on_batch(at + 40 * MS, None), None);
    }
}
