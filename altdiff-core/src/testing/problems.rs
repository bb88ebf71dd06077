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
        HostMatrix::from_fn(n, n, |i, j| {
            let dot: f64 = (0..n).map(|k| w.get(k, i) * w.get(k, j)).sum();
            scale * dot + if i == j { shift } else { 0.0 }
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

/// `M v` on the host.
pub fn mat_vec(m: &HostMatrix, v: &[f64]) -> Vec<f64> {
    (0..m.nrows())
        .map(|i| (0..m.ncols()).map(|j| m.get(i, j) * v[j]).sum())
        .collect()
}
