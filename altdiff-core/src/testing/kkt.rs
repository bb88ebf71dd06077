//! The exact oracle: implicit differentiation of the KKT conditions (nalgebra).

use nalgebra::DMatrix;

use crate::testing::problems::mat_vec;
use crate::{HostMatrix, HostQp, Param};

/// The inequalities active at `x`: `G_i x >= h_i - tol * (1 + |h_i|)`.
///
/// # Example
/// ```
/// use altdiff_core::testing::{active_set, tiny_qp};
/// assert_eq!(active_set(&tiny_qp(), &[0.0, 0.5, 0.5], 1e-9), vec![true, false]);
/// ```
pub fn active_set(qp: &HostQp, x: &[f64], tol: f64) -> Vec<bool> {
    mat_vec(&qp.g, x)
        .iter()
        .zip(&qp.h)
        .map(|(gx, h)| *gx >= h - tol * (1.0 + h.abs()))
        .collect()
}

/// The inequalities active at a primal-dual pair: those whose dual exceeds their slack,
/// `nu_i > h_i - G_i x`. Robust for interior-point solutions, where both are small but
/// strictly complementary pairs differ by orders of magnitude.
///
/// # Example
/// ```
/// use altdiff_core::testing::{dual_active_set, tiny_qp};
/// assert_eq!(dual_active_set(&tiny_qp(), &[0.0, 0.5, 0.5], &[1.75, 1e-9]), vec![true, false]);
/// ```
pub fn dual_active_set(qp: &HostQp, x: &[f64], nu: &[f64]) -> Vec<bool> {
    mat_vec(&qp.g, x)
        .iter()
        .zip(&qp.h)
        .zip(nu)
        .map(|((gx, h), nu)| *nu > h - gx)
        .collect()
}

/// The Jacobian `dx/dparam` from the KKT system on the active set,
///
/// ```text
/// [P  A'  Ga'] [dx  ]   [-dq]
/// [A  0   0  ] [dlam] = [ db]
/// [Ga 0   0  ] [dnu ]   [ dh_active]
/// ```
///
/// solved by LU with partial pivoting. Inactive inequalities get zero columns in `dx/dh`.
/// Vector parameters only (see [`kkt_jvp`] for `P`, `A`, `G`). Returns `None` when the KKT
/// matrix is singular (degenerate active set).
///
/// # Example
/// ```
/// use altdiff_core::{Param, testing::{kkt_jacobian, tiny_qp}};
/// let j = kkt_jacobian(&tiny_qp(), &[true, false], Param::B).unwrap();
/// assert!((j.get(2, 0) - 4.0 / 7.0).abs() < 1e-14);
/// ```
pub fn kkt_jacobian(qp: &HostQp, active: &[bool], param: Param) -> Option<HostMatrix> {
    let (n, p) = (qp.q.len(), qp.b.len());
    let rows: Vec<usize> = (0..qp.h.len()).filter(|&i| active[i]).collect();
    let d = match param {
        Param::Q => n,
        Param::B => p,
        Param::H => qp.h.len(),
        _ => return None,
    };
    let mut rhs = DMatrix::<f64>::zeros(n + p + rows.len(), d);
    match param {
        Param::Q => (0..n).for_each(|i| rhs[(i, i)] = -1.0),
        Param::B => (0..p).for_each(|i| rhs[(n + i, i)] = 1.0),
        _ => rows
            .iter()
            .enumerate()
            .for_each(|(r, &i)| rhs[(n + p + r, i)] = 1.0),
    }
    let sol = kkt_matrix(qp, &rows).lu().solve(&rhs)?;
    Some(HostMatrix::from_fn(n, d, |i, j| sol[(i, j)]))
}

/// The directional derivative `dx` of the solution along a direction of all six
/// parameters (written as a problem of the same shape), from the KKT system on the active
/// set at the primal-dual solution `(x, lam, nu)`:
/// `f = dq + dP x + dA'lam + dG'nu`, `e = [db - dA x; (dh - dG x)_active]`,
/// `[P C'; C 0] [dx; dy] = [-f; e]` with `C = [A; G_active]`.
///
/// # Example
/// ```
/// use altdiff_core::testing::{kkt_jvp, tiny_qp, zero_direction};
/// let qp = tiny_qp();
/// let mut dir = zero_direction(&qp);
/// dir.b[0] = 1.0;
/// let dx = kkt_jvp(&qp, &[true, false], [&[0.0, 0.5, 0.5], &[-1.25], &[1.75, 0.0]], &dir).unwrap();
/// assert!((dx[0] - 3.0 / 7.0).abs() < 1e-14);
/// ```
pub fn kkt_jvp(qp: &HostQp, active: &[bool], point: [&[f64]; 3], dir: &HostQp) -> Option<Vec<f64>> {
    let [x, lam, nu] = point;
    let (n, p, m) = (qp.q.len(), qp.b.len(), qp.h.len());
    let rows: Vec<usize> = (0..m).filter(|&i| active[i]).collect();
    let mut rhs = DMatrix::<f64>::zeros(n + p + rows.len(), 1);
    let dpx = mat_vec(&dir.p, x);
    let dax = mat_vec(&dir.a, x);
    let dgx = mat_vec(&dir.g, x);
    for j in 0..n {
        let da_lam: f64 = (0..p).map(|i| dir.a.get(i, j) * lam[i]).sum();
        let dg_nu: f64 = (0..m).map(|i| dir.g.get(i, j) * nu[i]).sum();
        rhs[(j, 0)] = -(dir.q[j] + dpx[j] + da_lam + dg_nu);
    }
    for i in 0..p {
        rhs[(n + i, 0)] = dir.b[i] - dax[i];
    }
    for (r, &i) in rows.iter().enumerate() {
        rhs[(n + p + r, 0)] = dir.h[i] - dgx[i];
    }
    let sol = kkt_matrix(qp, &rows).lu().solve(&rhs)?;
    Some((0..n).map(|i| sol[(i, 0)]).collect())
}

/// `[P A' Ga'; A 0 0; Ga 0 0]` for the inequality rows `rows`.
fn kkt_matrix(qp: &HostQp, rows: &[usize]) -> DMatrix<f64> {
    let (n, p) = (qp.q.len(), qp.b.len());
    let size = n + p + rows.len();
    let mut k = DMatrix::<f64>::zeros(size, size);
    for i in 0..n {
        for j in 0..n {
            k[(i, j)] = qp.p.get(i, j);
        }
    }
    let mut put = |r: usize, j: usize, v: f64| {
        k[(n + r, j)] = v;
        k[(j, n + r)] = v;
    };
    for r in 0..p {
        for j in 0..n {
            put(r, j, qp.a.get(r, j));
        }
    }
    for (r, &i) in rows.iter().enumerate() {
        for j in 0..n {
            put(p + r, j, qp.g.get(i, j));
        }
    }
    k
}

/// The largest absolute difference of two matrices of one shape, relative to
/// `max(1, max|expected|)`.
///
/// # Panics
/// When the shapes differ.
pub fn rel_diff(got: &HostMatrix, expected: &HostMatrix) -> f64 {
    assert_eq!(
        (got.nrows(), got.ncols()),
        (expected.nrows(), expected.ncols()),
        "shapes differ"
    );
    let scale = expected
        .col_major()
        .iter()
        .fold(1.0_f64, |s, v| s.max(v.abs()));
    got.col_major()
        .iter()
        .zip(expected.col_major().iter())
        .fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}
