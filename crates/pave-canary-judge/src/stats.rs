//! The statistical judge. Both tests are one-sided — the question is only ever "is the canary
//! worse than stable?" — and use normal approximations, which are accurate at the sample
//! sizes a judge waits for (`minSamples`, 50 by default, per version).
//!
//! - **Latency: Mann–Whitney U** on the two latency distributions. It needs no threshold and
//!   no assumption about the distribution's shape, and it works on binned data: the router
//!   keeps log-bucketed sketches, whose bucket order is the latency order, so each bucket is a
//!   group of ties (with the tie-corrected variance). A p-value below `alpha` alone would flag
//!   differences too small to matter once samples are in the tens of thousands, so the canary
//!   also has to be slower with a probability above [`MIN_EFFECT`] (the Vargha–Delaney A, the
//!   chance that a canary request is slower than a stable one; 0.5 means no difference).
//! - **Errors: two-proportion z-test** (pooled) on the 5xx rates.

/// Smallest Vargha–Delaney A (probability that the canary is slower) that fails a canary: 0.56
/// is the conventional bound of a "small" effect.
pub const MIN_EFFECT: f64 = 0.56;

/// What a test found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    /// Probability of a difference at least this large in the canary's disfavour if the
    /// versions were the same.
    pub p_value: f64,
    /// The test's statistic (z).
    pub z: f64,
    /// Latency: the Vargha–Delaney A; errors: the canary's rate minus stable's.
    pub effect: f64,
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, fractional error below
/// 1.2e-7 everywhere).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// P(Z > z) for a standard normal Z.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Is the canary's error rate (`canary_errors` of `canary_n`) higher than stable's?
/// `None` when either version has no requests.
pub fn two_proportion(canary_errors: u64, canary_n: u64, stable_errors: u64, stable_n: u64) -> Option<TestResult> {
    if canary_n == 0 || stable_n == 0 {
        return None;
    }
    let (n1, n2) = (canary_n as f64, stable_n as f64);
    let (p1, p2) = (canary_errors as f64 / n1, stable_errors as f64 / n2);
    let pooled = (canary_errors + stable_errors) as f64 / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        // No errors at all (or nothing but errors): no evidence either way.
        return Some(TestResult { p_value: 1.0, z: 0.0, effect: p1 - p2 });
    }
    let z = (p1 - p2) / se;
    Some(TestResult { p_value: normal_sf(z), z, effect: p1 - p2 })
}

/// Is the canary slower? Both inputs are histograms: `(bucket, count)` pairs sorted by bucket,
/// where a higher bucket means a higher latency. `None` when either side is empty.
pub fn mann_whitney(canary: &[(u64, u64)], stable: &[(u64, u64)]) -> Option<TestResult> {
    let n1: u64 = canary.iter().map(|(_, c)| c).sum();
    let n2: u64 = stable.iter().map(|(_, c)| c).sum();
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (mut i, mut j) = (0, 0);
    let mut below = 0.0; // items ranked before the current tie group
    let mut rank_sum = 0.0; // the canary's ranks
    let mut ties = 0.0; // Σ (t³ − t)
    while i < canary.len() || j < stable.len() {
        let key = match (canary.get(i), stable.get(j)) {
            (Some(a), Some(b)) => a.0.min(b.0),
            (Some(a), None) => a.0,
            (None, Some(b)) => b.0,
            (None, None) => break,
        };
        let c1 = match canary.get(i) {
            Some(&(k, c)) if k == key => {
                i += 1;
                c as f64
            }
            _ => 0.0,
        };
        let c2 = match stable.get(j) {
            Some(&(k, c)) if k == key => {
                j += 1;
                c as f64
            }
            _ => 0.0,
        };
        let t = c1 + c2;
        let mid_rank = below + (t + 1.0) / 2.0;
        rank_sum += c1 * mid_rank;
        ties += t * t * t - t;
        below += t;
    }
    let (n1, n2) = (n1 as f64, n2 as f64);
    let n = n1 + n2;
    let u = rank_sum - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)).max(1.0));
    let effect = u / (n1 * n2);
    if var <= 0.0 {
        // Every request in one bucket: no difference to find.
        return Some(TestResult { p_value: 1.0, z: 0.0, effect });
    }
    // Continuity correction towards the null.
    let z = (u - mean - 0.5) / var.sqrt();
    Some(TestResult { p_value: normal_sf(z), z, effect })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_tail_matches_tables() {
        for (z, p) in [(0.0, 0.5), (1.0, 0.158_655_25), (1.644_853_6, 0.05), (2.326_347_9, 0.01), (-1.0, 0.841_344_75)]
        {
            assert!((normal_sf(z) - p).abs() < 1e-6, "sf({z}) = {} not {p}", normal_sf(z));
        }
    }

    #[test]
    fn two_proportions_find_a_worse_canary_and_not_a_better_one() {
        // 5 % against 1 % over 1,000 requests each: clear.
        let r = two_proportion(50, 1000, 10, 1000).unwrap();
        assert!(r.p_value < 1e-6, "{r:?}");
        // The other way round is no evidence against the canary.
        assert!(two_proportion(10, 1000, 50, 1000).unwrap().p_value > 0.99);
        // 1 error in 100 against 0 in 100: could be chance.
        assert!(two_proportion(1, 100, 0, 100).unwrap().p_value > 0.1);
        assert_eq!(two_proportion(0, 100, 0, 100).unwrap().p_value, 1.0);
        assert_eq!(two_proportion(0, 0, 0, 100), None);
        // A known value: z = (0.12 − 0.08) / sqrt(0.1·0.9·(2/500)) = 2.108, p = 0.0175.
        let r = two_proportion(60, 500, 40, 500).unwrap();
        assert!((r.z - 2.1082).abs() < 1e-3 && (r.p_value - 0.0175).abs() < 1e-3, "{r:?}");
    }

    fn hist(samples: &[u64]) -> Vec<(u64, u64)> {
        let mut m = std::collections::BTreeMap::new();
        for s in samples {
            *m.entry(*s).or_insert(0u64) += 1;
        }
        m.into_iter().collect()
    }

    #[test]
    fn mann_whitney_agrees_with_a_textbook_example() {
        // Canary 4 5 6 7 8 vs stable 1 2 3 4 5: the canary's mid-ranks are 4.5 6.5 8 9 10,
        // R = 38, U = 38 − 15 = 23; tie-corrected variance 25/12·(11 − 12/90) = 22.64, so with
        // the continuity correction z = (23 − 12.5 − 0.5)/4.758 = 2.1017, p = 0.0178.
        let r = mann_whitney(&hist(&[4, 5, 6, 7, 8]), &hist(&[1, 2, 3, 4, 5])).unwrap();
        assert!((r.effect - 23.0 / 25.0).abs() < 1e-9, "{r:?}");
        assert!((r.z - 2.1017).abs() < 1e-3 && (r.p_value - 0.0178).abs() < 5e-4, "{r:?}");
        // Identical samples: nothing to find.
        let same = mann_whitney(&hist(&[1, 2, 3, 4, 5]), &hist(&[1, 2, 3, 4, 5])).unwrap();
        assert!(same.p_value > 0.4 && (same.effect - 0.5).abs() < 1e-9, "{same:?}");
        assert!(mann_whitney(&[], &hist(&[1])).is_none());
    }

    /// Latencies of a service around `base_us` with a long-ish tail, in 1 % log buckets as the
    /// router keeps them.
    fn latencies(rng: &mut fastrand::Rng, n: usize, base_us: f64) -> Vec<(u64, u64)> {
        let bucket = |us: f64| (us.ln() / (1.01f64 / 0.99).ln()).ceil() as u64;
        let samples: Vec<u64> = (0..n)
            .map(|_| {
                // Log-normal-ish: base × e^(0.3·N(0,1)), N from twelve uniforms.
                let z: f64 = (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0;
                bucket(base_us * (0.3 * z).exp())
            })
            .collect();
        hist(&samples)
    }

    #[test]
    fn a_twenty_percent_latency_regression_is_caught_where_a_2x_threshold_is_not() {
        let mut rng = fastrand::Rng::with_seed(7);
        let stable = latencies(&mut rng, 2000, 5000.0);
        let canary = latencies(&mut rng, 200, 6000.0);
        let r = mann_whitney(&canary, &stable).unwrap();
        assert!(r.p_value < 0.01 && r.effect > MIN_EFFECT, "the judge fails it: {r:?}");
        // The fixed threshold "p99 below 2x stable's" passes the same canary.
        let p99 = |h: &[(u64, u64)]| {
            let n: u64 = h.iter().map(|x| x.1).sum();
            let mut seen = 0;
            h.iter()
                .find(|(_, c)| {
                    seen += c;
                    seen * 100 >= n * 99
                })
                .map(|(b, _)| (1.01f64 / 0.99).powi(*b as i32))
                .unwrap()
        };
        assert!(p99(&canary) < 2.0 * p99(&stable), "a 2x threshold would have missed it");
        // And a canary as fast as stable is not failed (false positives at alpha over many
        // seeds stay near alpha).
        let mut false_alarms = 0;
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let s = latencies(&mut rng, 2000, 5000.0);
            let c = latencies(&mut rng, 200, 5000.0);
            let r = mann_whitney(&c, &s).unwrap();
            if r.p_value < 0.01 && r.effect > MIN_EFFECT {
                false_alarms += 1;
            }
        }
        assert!(false_alarms <= 4, "{false_alarms} false alarms in 200 same-version runs");
    }
}
