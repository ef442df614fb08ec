//! A mergeable latency sketch with a bounded relative error (the DDSketch idea): values fall
//! into logarithmic buckets, so any quantile is within 1 % of the truth, two sketches merge by
//! adding counts, and memory is fixed whatever the traffic. Per-minute sketches merge into
//! any window without keeping a single raw sample.

use serde::{Deserialize, Serialize};

/// Relative accuracy of every quantile.
pub const ACCURACY: f64 = 0.01;
/// Buckets cover 1 µs to about 100 s; larger values land in the last one.
pub(crate) const BUCKETS: usize = 1024;

fn gamma() -> f64 {
    (1.0 + ACCURACY) / (1.0 - ACCURACY)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sketch {
    counts: Vec<u32>,
    count: u64,
    /// Exact extremes, in microseconds.
    min: u64,
    max: u64,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch { counts: Vec::new(), count: 0, min: u64::MAX, max: 0 }
    }
}

impl Sketch {
    /// A sketch from bucket counts (as atomically collected by the signals).
    pub(crate) fn from_counts(counts: Vec<u32>, count: u64, min: u64, max: u64) -> Sketch {
        if count == 0 {
            return Sketch::default();
        }
        Sketch { counts, count, min, max }
    }

    pub(crate) fn index(micros: u64) -> usize {
        if micros <= 1 {
            return 0;
        }
        (((micros as f64).ln() / gamma().ln()).ceil() as usize).min(BUCKETS - 1)
    }

    /// Records one value in microseconds.
    pub fn add(&mut self, micros: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        let i = Self::index(micros);
        self.counts[i] = self.counts[i].saturating_add(1);
        self.count += 1;
        self.min = self.min.min(micros);
        self.max = self.max.max(micros);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds another sketch's values to this one.
    pub fn merge(&mut self, other: &Sketch) {
        if other.count == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The non-empty buckets in latency order, `(bucket, count)`: a histogram for rank tests
    /// (values in one bucket count as ties).
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| (i as u64, u64::from(*c))).collect()
    }

    /// The `q` quantile (0.0–1.0) in microseconds, `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.count - 1) as f64).floor() as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen > rank {
                if i == 0 {
                    return Some(self.min as f64);
                }
                // The bucket's midpoint in relative terms: within ACCURACY of any value in it.
                let value = 2.0 * gamma().powi(i as i32) / (gamma() + 1.0);
                return Some(value.clamp(self.min as f64, self.max as f64));
            }
        }
        Some(self.max as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_the_accuracy() {
        let mut s = Sketch::default();
        let values: Vec<u64> = (1..=10_000).map(|i| i * 37 % 100_000 + 50).collect();
        for &v in &values {
            s.add(v);
        }
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for q in [0.5, 0.9, 0.95, 0.99] {
            let truth = sorted[(q * (sorted.len() - 1) as f64).floor() as usize] as f64;
            let got = s.quantile(q).unwrap();
            assert!((got - truth).abs() / truth <= ACCURACY + 1e-9, "q{q}: {got} vs {truth}");
        }
        assert_eq!(s.count(), 10_000);
    }

    #[test]
    fn merging_equals_adding_everything_to_one() {
        let (mut a, mut b, mut all) = (Sketch::default(), Sketch::default(), Sketch::default());
        for v in 1..5000u64 {
            if v % 3 == 0 {
                a.add(v * 10)
            } else {
                b.add(v * 7)
            }
            all.add(if v % 3 == 0 { v * 10 } else { v * 7 });
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(Sketch::default().quantile(0.5), None);
    }
}
