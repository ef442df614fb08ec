//! Golden signals per version per minute: requests, server errors (5xx, including the
//! router's own 502/503/504) and a latency sketch (time to the response head).
//!
//! Recording is on every request's path, so it takes no lock: the current minute of each
//! version is a set of atomic counters (the sketch's buckets included), held by the router's
//! table beside the version. When a minute ends, the first request of the next one moves the
//! counters into the version's history under a lock. A request racing that move may be counted
//! in the neighbouring minute; totals are exact.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::sketch::{BUCKETS, Sketch};

/// One version's traffic in one minute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Minute {
    /// Minutes since the Unix epoch.
    pub minute: i64,
    pub requests: u64,
    pub errors: u64,
    #[serde(skip)]
    pub latency: Sketch,
}

/// What a window of minutes adds up to for one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub version: String,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    #[serde(skip)]
    pub latency: Sketch,
}

impl Summary {
    fn of(version: &str, minutes: &[Minute]) -> Summary {
        let mut latency = Sketch::default();
        let (mut requests, mut errors) = (0, 0);
        for m in minutes {
            requests += m.requests;
            errors += m.errors;
            latency.merge(&m.latency);
        }
        let ms = |q| latency.quantile(q).map(|us| us / 1000.0);
        Summary {
            version: version.to_owned(),
            requests,
            errors,
            error_rate: if requests == 0 { 0.0 } else { errors as f64 / requests as f64 },
            p50_ms: ms(0.5),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            latency,
        }
    }
}

pub(crate) fn minute_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| (d.as_secs() / 60) as i64)
}

/// The counters of the minute in progress.
#[derive(Debug)]
struct Current {
    minute: AtomicI64,
    requests: AtomicU64,
    errors: AtomicU64,
    buckets: Box<[AtomicU32]>,
    min: AtomicU64,
    max: AtomicU64,
}

impl Current {
    fn new(minute: i64) -> Self {
        Current {
            minute: AtomicI64::new(minute),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            buckets: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }

    /// The counters as a minute; with `reset`, zeroed as they are read.
    fn read(&self, reset: bool) -> Minute {
        let take32 = |a: &AtomicU32| if reset { a.swap(0, Ordering::AcqRel) } else { a.load(Ordering::Acquire) };
        let take64 =
            |a: &AtomicU64, fresh: u64| if reset { a.swap(fresh, Ordering::AcqRel) } else { a.load(Ordering::Acquire) };
        let counts: Vec<u32> = self.buckets.iter().map(take32).collect();
        let count = counts.iter().map(|&c| u64::from(c)).sum();
        Minute {
            minute: self.minute.load(Ordering::Acquire),
            requests: take64(&self.requests, 0),
            errors: take64(&self.errors, 0),
            latency: Sketch::from_counts(counts, count, take64(&self.min, u64::MAX), take64(&self.max, 0)),
        }
    }
}

/// One version's signals: the minute in progress and the finished ones.
#[derive(Debug)]
pub struct VersionSignals {
    current: Current,
    history: Mutex<VecDeque<Minute>>,
    keep_minutes: usize,
}

impl VersionSignals {
    fn new(keep_minutes: usize, minute: i64) -> Self {
        VersionSignals { current: Current::new(minute), history: Mutex::new(VecDeque::new()), keep_minutes }
    }

    /// Records one response at `minute` (see [`minute_of`]).
    pub fn record(&self, minute: i64, status: u16, micros: u64) {
        let c = &self.current;
        if c.minute.load(Ordering::Acquire) != minute {
            self.roll(minute);
        }
        c.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            c.errors.fetch_add(1, Ordering::Relaxed);
        }
        c.buckets[Sketch::index(micros)].fetch_add(1, Ordering::Relaxed);
        c.min.fetch_min(micros, Ordering::Relaxed);
        c.max.fetch_max(micros, Ordering::Relaxed);
    }

    /// Moves the minute in progress into the history and starts `minute`.
    fn roll(&self, minute: i64) {
        let mut history = pave_sync::lock(&self.history);
        let previous = self.current.minute.load(Ordering::Acquire);
        if previous >= minute {
            return; // another request rolled it already (or `minute` is late: count it here)
        }
        let done = self.current.read(true);
        self.current.minute.store(minute, Ordering::Release);
        if done.requests > 0 {
            history.push_back(done);
            while history.len() > self.keep_minutes {
                history.pop_front();
            }
        }
    }

    /// The minutes from `since_minute` on, the one in progress included.
    pub fn minutes(&self, since_minute: i64) -> Vec<Minute> {
        let history = pave_sync::lock(&self.history);
        let mut out: Vec<Minute> = history.iter().filter(|m| m.minute >= since_minute).cloned().collect();
        let now = self.current.read(false);
        if now.requests > 0 && now.minute >= since_minute {
            out.push(now);
        }
        out
    }
}

/// The signals of one route, by version.
#[derive(Debug)]
pub struct Signals {
    keep_minutes: usize,
    by_version: Mutex<HashMap<String, Arc<VersionSignals>>>,
}

impl Signals {
    pub fn new(keep_minutes: usize) -> Self {
        Signals { keep_minutes: keep_minutes.max(1), by_version: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<VersionSignals>>> {
        pave_sync::lock(&self.by_version)
    }

    /// The series of `version`, created on first use; the router's table holds it so the hot
    /// path never looks it up.
    pub fn series(&self, version: &str) -> Arc<VersionSignals> {
        let mut all = self.lock();
        if let Some(s) = all.get(version) {
            return s.clone();
        }
        let s = Arc::new(VersionSignals::new(self.keep_minutes, 0));
        all.insert(version.to_owned(), s.clone());
        s
    }

    /// Records one response now.
    pub fn record(&self, version: &str, status: u16, micros: u64) {
        self.record_at(SystemTime::now(), version, status, micros);
    }

    pub fn record_at(&self, at: SystemTime, version: &str, status: u16, micros: u64) {
        self.series(version).record(minute_of(at), status, micros);
    }

    /// Each version's minutes from `since_minute` on.
    pub fn minutes(&self, since_minute: i64) -> Vec<(String, Vec<Minute>)> {
        let all: Vec<(String, Arc<VersionSignals>)> = self.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut out: Vec<(String, Vec<Minute>)> = all.into_iter().map(|(v, s)| (v, s.minutes(since_minute))).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Each version's totals from `since` on (whole minutes: the minute holding `since` counts).
    /// Versions without traffic in the window are left out.
    pub fn summary(&self, since: SystemTime) -> Vec<Summary> {
        self.minutes(minute_of(since))
            .into_iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(v, m)| Summary::of(&v, &m))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn minutes_roll_and_summaries_add_up() {
        let s = Signals::new(2);
        let t0 = UNIX_EPOCH + Duration::from_secs(600 * 60);
        for i in 0..100 {
            s.record_at(t0, "v1", if i % 10 == 0 { 503 } else { 200 }, 1000 + i);
        }
        s.record_at(t0 + Duration::from_secs(60), "v1", 200, 2000);
        s.record_at(t0 + Duration::from_secs(120), "v1", 200, 2000);
        s.record_at(t0 + Duration::from_secs(180), "v1", 200, 2000);
        // Two finished minutes are kept, plus the one in progress: the first is gone.
        let minutes = s.minutes(0);
        assert_eq!(minutes[0].1.len(), 3);
        assert!(minutes[0].1.iter().all(|m| m.requests == 1));
        s.record_at(t0, "v2", 500, 10);
        let sum = s.summary(t0);
        assert_eq!(sum[0].requests, 3);
        assert_eq!(sum[1].version, "v2");
        assert_eq!(sum[1].error_rate, 1.0);
    }

    #[test]
    fn one_minute_counts_exactly_across_threads() {
        let s = Arc::new(Signals::new(5));
        let series = s.series("v1");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let series = series.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        series.record(1000, if i % 100 == 0 { 500 } else { 200 }, 100 + t * 10 + i % 7);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let m = &s.minutes(0)[0].1[0];
        assert_eq!((m.requests, m.errors, m.latency.count()), (40_000, 400, 40_000));
    }
}
