//! Closed-form oracles of the smooth layers, independent of the solver.

/// `softmax(y)`, computed stably (the maximum subtracted first).
///
/// # Example
/// ```
/// let s = altdiff_core::testing::softmax(&[0.0, 0.0]);
/// assert!((s[0] - 0.5).abs() < 1e-15);
/// ```
pub fn softmax(y: &[f64]) -> Vec<f64> {
    let m = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = y.iter().map(|v| (v - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|v| v / z).collect()
}

/// The Euclidean projection of `y` onto the simplex, by sorting (Held, Wolfe, Crowder;
/// Duchi et al.): `sparsemax(y)`.
///
/// # Example
/// ```
/// let x = altdiff_core::testing::simplex_projection(&[1.0, 0.5, -1.0]);
/// assert!((x[0] - 0.75).abs() < 1e-15 && (x[1] - 0.25).abs() < 1e-15 && x[2] == 0.0);
/// ```
pub fn simplex_projection(y: &[f64]) -> Vec<f64> {
    let mut sorted = y.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let (mut cumsum, mut tau) = (0.0, 0.0);
    for (j, v) in sorted.iter().enumerate() {
        cumsum += v;
        let t = (cumsum - 1.0) / (j + 1) as f64;
        if v - t > 0.0 {
            tau = t;
        }
    }
    y.iter().map(|v| (v - tau).max(0.0)).collect()
}

/// The largest absolute difference of two slices of one length.
///
/// # Panics
/// When the lengths differ.
///
/// # Example
/// ```
/// assert_eq!(altdiff_core::testing::max_abs_diff(&[1.0, 2.0], &[1.5, 2.0]), 0.5);
/// ```
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "max_abs_diff: lengths");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
