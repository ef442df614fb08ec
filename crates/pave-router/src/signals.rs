//! Golden signals per version per minute: requests, server errors (5xx, including the
//! router's own 502/503/504) and a latency sketch (time to the response head).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::sketch::Sketch;

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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    fn of(version: &str, minutes: &[&Minute]) -> Summary {
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

/// The signals of one route. Recording takes one short lock.
#[derive(Debug)]
pub struct Signals {
    keep_minutes: usize,
    by_version: Mutex<HashMap<String, VecDeque<Minute>>>,
}

pub(crate) fn minute_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| (d.as_secs() / 60) as i64)
}

impl Signals {
    pub fn new(keep_minutes: usize) -> Self {
        Signals { keep_minutes: keep_minutes.max(1), by_version: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Minute>>> {
        self.by_version.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one response.
    pub fn record(&self, version: &str, status: u16, micros: u64) {
        self.record_at(SystemTime::now(), version, status, micros);
    }

    pub fn record_at(&self, at: SystemTime, version: &str, status: u16, micros: u64) {
        let minute = minute_of(at);
        let mut all = self.lock();
        let series = match all.get_mut(version) {
            Some(s) => s,
            None => all.entry(version.to_owned()).or_default(),
        };
        if series.back().is_none_or(|m| m.minute < minute) {
            series.push_back(Minute { minute, requests: 0, errors: 0, latency: Sketch::default() });
            while series.len() > self.keep_minutes {
                series.pop_front();
            }
        }
        let m = series.back_mut().expect("just pushed");
        m.requests += 1;
        if status >= 500 {
            m.errors += 1;
        }
        m.latency.add(micros);
    }

    /// Each version's minutes from `since_minute` on.
    pub fn minutes(&self, since_minute: i64) -> Vec<(String, Vec<Minute>)> {
        let all = self.lock();
        let mut out: Vec<(String, Vec<Minute>)> = all
            .iter()
            .map(|(v, s)| (v.clone(), s.iter().filter(|m| m.minute >= since_minute).cloned().collect()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Each version's totals from `since` on (whole minutes: the minute holding `since` counts).
    pub fn summary(&self, since: SystemTime) -> Vec<Summary> {
        let since = minute_of(since);
        let all = self.lock();
        let mut out: Vec<Summary> = all
            .iter()
            .map(|(v, s)| Summary::of(v, &s.iter().filter(|m| m.minute >= since).collect::<Vec<_>>()))
            .collect();
        out.sort_by(|a, b| a.version.cmp(&b.version));
        out
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
        // Two minutes kept: the first one is gone.
        let minutes = s.minutes(0);
        assert_eq!(minutes[0].1.len(), 2);
        s.record_at(t0, "v2", 500, 10);
        let sum = s.summary(t0);
        assert_eq!(sum[0].requests, 2);
        assert_eq!(sum[1].version, "v2");
        assert_eq!(sum[1].error_rate, 1.0);
    }
}
