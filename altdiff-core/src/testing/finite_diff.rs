//! Central finite differences of the solution map.

use crate::{HostMatrix, HostQp, Param};

/// `qp + t dir`, entry by entry (a direction is written as a problem of the same shape).
///
/// # Panics
/// When the shapes differ.
pub fn perturbed(qp: &HostQp, dir: &HostQp, t: f64) -> HostQp {
    let mat = |m: &HostMatrix, d: &HostMatrix| {
        assert_eq!(
            (m.nrows(), m.ncols()),
            (d.nrows(), d.ncols()),
            "direction shape"
        );
        HostMatrix::from_fn(m.nrows(), m.ncols(), |i, j| m.get(i, j) + t * d.get(i, j))
    };
    let vec = |v: &[f64], d: &[f64]| v.iter().zip(d).map(|(a, b)| a + t * b).collect::<Vec<_>>();
    HostQp {
        p: mat(&qp.p, &dir.p),
        q: vec(&qp.q, &dir.q),
        a: mat(&qp.a, &dir.a),
        b: vec(&qp.b, &dir.b),
        g: mat(&qp.g, &dir.g),
        h: vec(&qp.h, &dir.h),
    }
}

/// The all-zero direction of `qp`'s shape.
pub fn zero_direction(qp: &HostQp) -> HostQp {
    perturbed(qp, qp, -1.0)
}

/// `(x(qp + step dir) - x(qp - step dir)) / (2 step)`, where `solve` maps a problem to `x`.
///
/// # Example
/// ```
/// use altdiff_core::testing::{central_diff_along, tiny_qp, zero_direction};
/// let mut dir = zero_direction(&tiny_qp());
/// dir.b[0] = 1.0;
/// let d = central_diff_along(&tiny_qp(), &dir, 1e-6, |qp| vec![3.0 * qp.b[0]]);
/// assert!((d[0] - 3.0).abs() < 1e-8);
/// ```
pub fn central_diff_along(
    qp: &HostQp,
    dir: &HostQp,
    step: f64,
    mut solve: impl FnMut(&HostQp) -> Vec<f64>,
) -> Vec<f64> {
    let plus = solve(&perturbed(qp, dir, step));
    let minus = solve(&perturbed(qp, dir, -step));
    plus.iter()
        .zip(&minus)
        .map(|(a, b)| (a - b) / (2.0 * step))
        .collect()
}

/// `dx/dparam` by central differences, column by column, with step `step`. For `P` the
/// column `(i, j)` perturbs `P_ij` and `P_ji` together (P must stay symmetric), so for
/// `i != j` it equals the sum of the columns `ij` and `ji` of the entrywise Jacobian.
///
/// # Example
/// ```
/// use altdiff_core::{HostQp, Param, testing::{central_diff, tiny_qp}};
/// // a toy map: x = (b, 2b)
/// let j = central_diff(&tiny_qp(), Param::B, 1e-6, |qp: &HostQp| vec![qp.b[0], 2.0 * qp.b[0]]);
/// assert!((j.get(1, 0) - 2.0).abs() < 1e-8);
/// ```
pub fn central_diff(
    qp: &HostQp,
    param: Param,
    step: f64,
    mut solve: impl FnMut(&HostQp) -> Vec<f64>,
) -> HostMatrix {
    let dims = qp.validate().expect("a valid problem");
    let (rows, cols) = param.shape(dims);
    let mut columns = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        for j in 0..cols {
            let mut dir = zero_direction(qp);
            let unit = |r: usize, c: usize| {
                HostMatrix::from_fn(rows, cols, |a, b| {
                    if (a, b) == (r, c) || (param == Param::P && (a, b) == (c, r)) {
                        1.0
                    } else {
                        0.0
                    }
                })
            };
            match param {
                Param::Q => dir.q[i] = 1.0,
                Param::B => dir.b[i] = 1.0,
                Param::H => dir.h[i] = 1.0,
                Param::P => dir.p = unit(i, j),
                Param::A => dir.a = unit(i, j),
                Param::G => dir.g = unit(i, j),
            }
            columns.push(central_diff_along(qp, &dir, step, &mut solve));
        }
    }
    let n = columns.first().map_or(qp.q.len(), Vec::len);
    HostMatrix::from_fn(n, rows * cols, |i, j| columns[j][i])
}
