//! Test problems: the hand-checked tiny QP and seeded random generators.

use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

use crate::{Field, HostMatrix, HostQp};

/// The tiny QP with hand-derived iterates and limits (n = 3, p = 1, m = 2):
/// `P = [[2, .5, 0], [.5, 1, 0], [0, 0, 1.5]]`, `q = (1, -1, .5)`, `A = [1 1 1]`, `b = 1`,
/// `G = [[0, 1, 0], [-1, 0, 0]]`, `h = (.5, .2)`.
///
/// Its solution is `x* = (0, .5, .5)`, `lam* = -1.25`, `nu* = (1.75, 0)`, with
/// `dx/db = (3/7, 0, 4/7)`.
///
/// # Example
/// ```
/// let qp = altdiff_core::testing::tiny_qp();
/// assert_eq!(qp.validate()?, altdiff_core::QpDims { n: 3, p: 1, m: 2 });
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub fn tiny_qp() -> HostQp {
    let m = |field, rows: &[&[f64]]| {
        HostMatrix::from_rows(field, &rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>())
            .expect("rectangular")
    };
    HostQp {
        p: m(
            Field::P,
            &[&[2.0, 0.5, 0.0], &[0.5, 1.0, 0.0], &[0.0, 0.0, 1.5]],
        ),
        q: vec![1.0, -1.0, 0.5],
        a: m(Field::A, &[&[1.0, 1.0, 1.0]]),
        b: vec![1.0],
        g: m(Field::G, &[&[0.0, 1.0, 0.0], &[-1.0, 0.0, 0.0]]),
        h: vec![0.5, 0.2],
    }
}

/// `P = diag(1, 1, last)` with the equality `x_3 = 0` and the inequality `x_1 <= 1`: with
/// `C = [e3'; e1']`, `H = P + rho C'C` is positive definite for `last > -rho`, and
/// `rho lambda_max(C H^-1 C') = rho / (rho + last)`. So `P` is indefinite for `last < 0`
/// while `H` is not, the case the convexity test on `M = C H^-1 C'` must catch, and
/// positive semidefinite and singular for `last = 0`.
///
/// # Example
/// ```
/// let qp = altdiff_core::testing::masked_qp(-0.1);
/// assert_eq!(qp.p.get(2, 2), -0.1);
/// assert_eq!(qp.validate()?.p, 1);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub fn masked_qp(last: f64) -> HostQp {
    HostQp {
        p: HostMatrix::from_fn(3, 3, |i, j| match (i, j) {
            (2, 2) => last,
            (i, j) if i == j => 1.0,
            _ => 0.0,
        }),
        q: vec![1.0, -1.0, 0.5],
        a: HostMatrix::from_rows(Field::A, &[vec![0.0, 0.0, 1.0]]).expect("one row"),
        b: vec![0.0],
        g: HostMatrix::from_rows(Field::G, &[vec![1.0, 0.0, 0.0]]).expect("one row"),
        h: vec![1.0],
    }
}

/// How [`random_qp`] draws a problem.
///
/// # Example
/// ```
/// use altdiff_core::testing::{Generator, random_qp};
/// let qp = random_qp(Generator::WellConditioned, 10, 3, 4, 7);
/// assert_eq!(qp.validate()?.m, 4);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Generator {
    /// The Alt-Diff reference code's generator: `P = W'W` with `W ~ N(0, 1)` (n x n);
    /// `q`, `A`, `b`, `G`, `h` all `~ N(0, 1)`. Feasibility is likely, not guaranteed, and
    /// `P` is ill-conditioned.
    Seed,
    /// Well conditioned and feasible by construction: `P = W'W/n + 0.1 I` with
    /// `W ~ N(0, 1)`; `A`, `G ~ N(0, 1/n)` (rows of unit expected norm, so that `rho = 1`
    /// suits them); `q`, `x0 ~ N(0, 1)`; `b = A x0`; `h = G x0 + |N(0, 1)|` (so `x0` is
    /// strictly feasible for the inequalities; a good share of them is active at the
    /// solution).
    #[default]
    WellConditioned,
}

/// A seeded random QP with `n` variables, `p` equalities, `m` inequalities.
pub fn random_qp(generator: Generator, n: usize, p: usize, m: usize, seed: u64) -> HostQp {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut normal = move || -> f64 { rng.sample(StandardNormal) };
    let w = HostMatrix::from_fn(n, n, |_, _| normal());
    let gram = |scale: f64, shift: f64| {
        let dots = column_gram(&w.col_major(), n);
        HostMatrix::from_fn(n, n, |i, j| {
            scale * dots[i.max(j) * n + i.min(j)] + if i == j { shift } else { 0.0 }
        })
    };
    match generator {
        Generator::Seed => {
            let p_mat = gram(1.0, 0.0);
            let q = (0..n).map(|_| normal()).collect();
            let a = HostMatrix::from_fn(p, n, |_, _| normal());
            let b = (0..p).map(|_| normal()).collect();
            let g = HostMatrix::from_fn(m, n, |_, _| normal());
            let h = (0..m).map(|_| normal()).collect();
            HostQp {
                p: p_mat,
                q,
                a,
                b,
                g,
                h,
            }
        }
        Generator::WellConditioned => {
            let p_mat = gram(1.0 / n.max(1) as f64, 0.1);
            let q: Vec<f64> = (0..n).map(|_| normal()).collect();
            let x0: Vec<f64> = (0..n).map(|_| normal()).collect();
            let row_scale = 1.0 / (n.max(1) as f64).sqrt();
            let a = HostMatrix::from_fn(p, n, |_, _| row_scale * normal());
            let g = HostMatrix::from_fn(m, n, |_, _| row_scale * normal());
            let b = mat_vec(&a, &x0);
            let h = mat_vec(&g, &x0)
                .into_iter()
                .map(|v| v + normal().abs())
                .collect();
            HostQp {
                p: p_mat,
                q,
                a,
                b,
                g,
                h,
            }
        }
    }
}

/// `W'W` of a square column-major `W` (`n x n`) on its upper triangle (`[j * n + i]`,
/// `i <= j`): each entry the sum over `k = 0, 1, ...` in order, four columns at a time so
/// that the four sums run side by side (the same values as one dot product after another,
/// about 10x faster at n = 3000).
fn column_gram(w: &[f64], n: usize) -> Vec<f64> {
    let column = |j: usize| &w[j * n..(j + 1) * n];
    let mut dots = vec![0.0; n * n];
    for j in 0..n {
        let cj = column(j);
        let mut i = 0;
        while i + 4 <= j + 1 {
            let c = [column(i), column(i + 1), column(i + 2), column(i + 3)];
            let mut acc = [0.0_f64; 4];
            for (k, &wj) in cj.iter().enumerate() {
                for (a, ci) in acc.iter_mut().zip(&c) {
                    *a += ci[k] * wj;
                }
            }
            dots[j * n + i..j * n + i + 4].copy_from_slice(&acc);
            i += 4;
        }
        for i in i..=j {
            dots[j * n + i] = column(i).iter().zip(cj).map(|(a, b)| a * b).sum();
        }
    }
    dots
}

/// A seeded random LP in standard form: `P = 0`, `q ~ U(0.1, 1.1)` (positive, so bounded
/// on `x >= 0`), `A ~ N(0, 1)` (p x n), `b = A x0` with `x0 ~ U(0, 1)`, and `x >= 0` as
/// `G = -I`, `h = 0`.
///
/// # Example
/// ```
/// use altdiff_core::testing::random_lp;
/// let lp = random_lp(12, 4, 1);
/// assert_eq!(lp.validate()?.m, 12);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub fn random_lp(n: usize, p: usize, seed: u64) -> HostQp {
    let mut rng = StdRng::seed_from_u64(seed);
    let x0: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..1.0)).collect();
    let a = HostMatrix::from_fn(p, n, |_, _| rng.sample(StandardNormal));
    let q = (0..n).map(|_| rng.random_range(0.1..1.1)).collect();
    HostQp {
        p: HostMatrix::zeros(n, n),
        q,
        b: mat_vec(&a, &x0),
        a,
        g: HostMatrix::from_fn(n, n, |i, j| if i == j { -1.0 } else { 0.0 }),
        h: vec![0.0; n],
    }
}

/// The QP of the Alt-Diff paper's classification layer: `P = 0.1 I` (n x n), `A` (p x n) and
/// `G` (m x n) with `N(0, 1/n)` entries (rows of unit expected norm), `b = 1`, and
/// `h = G x0 + 1` with `x0 = A'(AA')^-1 b` the least-norm solution of `Ax = b`, so that the
/// feasible set has an interior for any `q`. `q` (the layer's input, the features) is zero
/// here.
///
/// # Example
/// ```
/// use altdiff_core::testing::{classification_qp, mat_vec};
/// let qp = classification_qp(20, 5, 5, 1);
/// assert_eq!(qp.validate()?.n, 20);
/// assert!(qp.b.iter().all(|&b| b == 1.0));
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub fn classification_qp(n: usize, p: usize, m: usize, seed: u64) -> HostQp {
    let mut rng = StdRng::seed_from_u64(seed);
    let scale = 1.0 / (n.max(1) as f64).sqrt();
    let mut normal = move || -> f64 { scale * rng.sample::<f64, _>(StandardNormal) };
    let a = HostMatrix::from_fn(p, n, |_, _| normal());
    let g = HostMatrix::from_fn(m, n, |_, _| normal());
    let b = vec![1.0; p];
    let a_na = nalgebra::DMatrix::from_fn(p, n, |i, j| a.get(i, j));
    let gram = &a_na * a_na.transpose();
    let y = gram
        .cholesky()
        .map(|c| c.solve(&nalgebra::DVector::from_vec(b.clone())))
        .unwrap_or_else(|| nalgebra::DVector::zeros(p));
    let x0: Vec<f64> = (a_na.transpose() * y).iter().copied().collect();
    let h = mat_vec(&g, &x0).into_iter().map(|v| v + 1.0).collect();
    HostQp {
        p: HostMatrix::from_fn(n, n, |i, j| if i == j { 0.1 } else { 0.0 }),
        q: vec![0.0; n],
        a,
        b,
        g,
        h,
    }
}

/// `qp` with badly scaled rows and columns: `x = S y` with `S_jj = 10^(j mod 5 - 2)`, and
/// the rows of `A` and `G` (with `b`, `h`) multiplied by `10^(2 - i mod 4)`; the solution
/// map is the same up to these diagonal maps.
///
/// # Example
/// ```
/// use altdiff_core::testing::{Generator, badly_scaled, random_qp};
/// let qp = badly_scaled(&random_qp(Generator::WellConditioned, 6, 2, 3, 1));
/// assert!(qp.validate().is_ok());
/// ```
pub fn badly_scaled(qp: &HostQp) -> HostQp {
    let n = qp.q.len();
    let col = |j: usize| 10f64.powi(j as i32 % 5 - 2);
    let row = |i: usize| 10f64.powi(2 - (i as i32 % 4));
    HostQp {
        p: HostMatrix::from_fn(n, n, |i, j| qp.p.get(i, j) * col(i) * col(j)),
        q: qp.q.iter().enumerate().map(|(i, v)| v * col(i)).collect(),
        a: HostMatrix::from_fn(qp.a.nrows(), n, |i, j| qp.a.get(i, j) * row(i) * col(j)),
        b: qp.b.iter().enumerate().map(|(i, v)| v * row(i)).collect(),
        g: HostMatrix::from_fn(qp.g.nrows(), n, |i, j| qp.g.get(i, j) * row(i + 1) * col(j)),
        h: qp
            .h
            .iter()
            .enumerate()
            .map(|(i, v)| v * row(i + 1))
            .collect(),
    }
}

/// `M v` on the host.
pub fn mat_vec(m: &HostMatrix, v: &[f64]) -> Vec<f64> {
    (0..m.nrows())
        .map(|i| (0..m.ncols()).map(|j| m.get(i, j) * v[j]).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::column_gram;

    #[test]
    fn column_gram_equals_dot_products_in_order() {
        for n in [1, 3, 4, 7, 9] {
            let w: Vec<f64> = (0..n * n)
                .map(|k| ((k * 37 % 11) as f64 - 5.0) / 3.0 + 1e-3 * k as f64)
                .collect();
            let dots = column_gram(&w, n);
            for j in 0..n {
                for i in 0..=j {
                    let expected: f64 = (0..n).map(|k| w[i * n + k] * w[j * n + k]).sum();
                    assert_eq!(
                        dots[j * n + i].to_bits(),
                        expected.to_bits(),
                        "n {n} ({i}, {j})"
                    );
                }
            }
        }
    }
}
