//! Order statistics over durations and rates.

/// Median (mean of the two middle values for an even count) and 90th percentile (nearest
/// rank: the smallest value with at least 90 % of values at or below it). Sorts in place.
pub fn median_p90(values: &mut [f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = values.len();
    let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
    let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
    Some((median, values[rank - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p90() {
        assert_eq!(median_p90(&mut []), None);
        assert_eq!(median_p90(&mut [5.0]), Some((5.0, 5.0)));
        assert_eq!(median_p90(&mut [4.0, 1.0, 3.0, 2.0]), Some((2.5, 4.0)));
        let mut v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(median_p90(&mut v), Some((5.5, 9.0)));
        let mut v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(median_p90(&mut v), Some((10.5, 18.0)));
    }
}
