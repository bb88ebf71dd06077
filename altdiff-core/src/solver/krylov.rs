//! Restarted GMRES for the fixed point of a linear iteration, matrix-free over backend
//! blocks.
//!
//! The reverse iteration at a fixed mask is linear and homogeneous in its state
//! `z = (L, N, S)`: `z_{k+1} = T z_k`. Its implicit adjoint sums `z_1 + z_2 + ... =
//! (I - T)^-1 z_1`; repeated steps converge at the rate of the spectral radius of `T`, which
//! is the slow linear rate of ADMM itself (hundreds of steps on large sparse problems).
//! GMRES solves `(I - T) Z = z_1` over the Krylov space of the same steps: every one of its
//! iterations costs one application of `T` (one solve with `H`, products with `A` and `G`),
//! and with full memory its residual after `j` iterations is never larger than that of `j`
//! plain steps (the partial sums lie in the same Krylov space).
//!
//! Vectors are slices of backend blocks (the state's `L`, `N`, `S`, each with one column
//! per seed); the inner product sums over all blocks and columns. The small Hessenberg
//! least-squares problem lives on the host.

use crate::{LinAlg, Real, Result};

/// How far a restarted GMRES solve went.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) struct KrylovOutcome {
    /// Applications of the operator (GMRES iterations plus one per restart).
    pub applications: usize,
    /// The final residual norm relative to the right-hand side's.
    pub relative_residual: f64,
}

/// Restarted GMRES for `(I - T) z = rhs`.
pub(crate) struct Gmres {
    /// Krylov vectors kept before a restart, `>= 1`.
    pub restart: usize,
    /// Stop when `||rhs - (I - T) z|| <= tol ||rhs||`.
    pub tol: f64,
    /// Bound on the operator applications.
    pub max_applications: usize,
}

/// `sum_i <x_i, y_i>` over the blocks of two vectors.
fn dot<B: LinAlg>(be: &B, x: &[B::Mat], y: &[B::Mat]) -> Result<f64> {
    x.iter().zip(y).try_fold(
        0.0,
        |acc, (xi, yi)| Ok(acc + be.dot(xi, yi)?.to_f64_lossy()),
    )
}

/// `y = a x + b y`, block by block.
fn axpby<B: LinAlg>(be: &B, a: f64, x: &[B::Mat], b: f64, y: &mut [B::Mat]) -> Result<()> {
    x.iter()
        .zip(y.iter_mut())
        .try_for_each(|(xi, yi)| be.axpby(B::Real::of(a), xi, B::Real::of(b), yi))
}

/// A zero vector shaped like `like`.
fn zeros_like<B: LinAlg>(be: &B, like: &[B::Mat]) -> Result<Vec<B::Mat>> {
    like.iter()
        .map(|m| {
            let (r, c) = be.shape(m);
            be.zeros(r, c)
        })
        .collect()
}

/// The Givens rotation `(c, s)` that zeroes `b` in `(a, b)`.
fn givens(a: f64, b: f64) -> (f64, f64) {
    if b == 0.0 {
        (1.0, 0.0)
    } else {
        let r = a.hypot(b);
        (a / r, b / r)
    }
}

impl Gmres {
    /// Solves `(I - T) z = rhs`, where `apply(v, out)` writes `T v` into `out` (same
    /// shapes as `rhs`). Returns `z` and how far the solve went; a solve that hits
    /// [`Gmres::max_applications`] returns its best iterate.
    ///
    /// # Errors
    /// Backend errors of `apply` or of the block arithmetic.
    pub fn solve<B: LinAlg>(
        &self,
        be: &B,
        rhs: &[B::Mat],
        mut apply: impl FnMut(&[B::Mat], &mut [B::Mat]) -> Result<()>,
    ) -> Result<(Vec<B::Mat>, KrylovOutcome)> {
        let restart = self.restart.max(1);
        let mut z = zeros_like(be, rhs)?;
        let rhs_norm = dot(be, rhs, rhs)?.sqrt();
        let mut outcome = KrylovOutcome {
            applications: 0,
            relative_residual: 0.0,
        };
        if !rhs_norm.is_finite() || rhs_norm == 0.0 {
            outcome.relative_residual = if rhs_norm == 0.0 { 0.0 } else { f64::NAN };
            return Ok((z, outcome));
        }
        let target = self.tol * rhs_norm;
        let mut tz = zeros_like(be, rhs)?;
        // the residual of the current iterate; starts as rhs (z = 0)
        let mut r: Vec<B::Mat> = rhs.to_vec();
        let mut beta = rhs_norm;
        loop {
            // one cycle: Arnoldi with modified Gram-Schmidt, Givens on the fly
            let mut basis: Vec<Vec<B::Mat>> = Vec::with_capacity(restart + 1);
            let mut v0 = r.clone();
            axpby(be, 0.0, &r, 1.0 / beta, &mut v0)?;
            basis.push(v0);
            let mut hess: Vec<Vec<f64>> = Vec::with_capacity(restart);
            let mut rotations: Vec<(f64, f64)> = Vec::with_capacity(restart);
            let mut e = vec![beta];
            let mut residual = beta;
            while hess.len() < restart && outcome.applications < self.max_applications {
                let j = hess.len();
                // w = (I - T) v_j
                apply(&basis[j], &mut tz)?;
                outcome.applications += 1;
                let mut w = basis[j].clone();
                axpby(be, -1.0, &tz, 1.0, &mut w)?;
                let mut column = vec![0.0; j + 2];
                for (i, v) in basis.iter().enumerate() {
                    let h = dot(be, &w, v)?;
                    column[i] = h;
                    axpby(be, -h, v, 1.0, &mut w)?;
                }
                let norm = dot(be, &w, &w)?.sqrt();
                column[j + 1] = norm;
                for (i, &(c, s)) in rotations.iter().enumerate() {
                    let (a, b) = (column[i], column[i + 1]);
                    column[i] = c * a + s * b;
                    column[i + 1] = -s * a + c * b;
                }
                let (c, s) = givens(column[j], column[j + 1]);
                column[j] = c * column[j] + s * column[j + 1];
                column[j + 1] = 0.0;
                rotations.push((c, s));
                e.push(-s * e[j]);
                e[j] *= c;
                residual = e[j + 1].abs();
                hess.push(column);
                if !residual.is_finite() {
                    break;
                }
                let breakdown = norm <= f64::EPSILON * beta;
                if residual <= target || breakdown {
                    break;
                }
                axpby(be, 0.0, &tz, 1.0 / norm, &mut w)?;
                basis.push(w);
            }
            // z += V y with H y = e (upper triangular after the rotations)
            let k = hess.len();
            let mut y = vec![0.0; k];
            for i in (0..k).rev() {
                let tail: f64 = (i + 1..k).map(|l| hess[l][i] * y[l]).sum();
                y[i] = (e[i] - tail) / hess[i][i];
            }
            if y.iter().all(|v| v.is_finite()) {
                for (yi, v) in y.iter().zip(&basis) {
                    axpby(be, *yi, v, 1.0, &mut z)?;
                }
            }
            // the true residual rhs - (I - T) z
            apply(&z, &mut tz)?;
            outcome.applications += 1;
            r.clone_from_slice(rhs);
            axpby(be, -1.0, &z, 1.0, &mut r)?;
            axpby(be, 1.0, &tz, 1.0, &mut r)?;
            beta = dot(be, &r, &r)?.sqrt();
            outcome.relative_residual = beta / rhs_norm;
            let stalled = !residual.is_finite() || k == 0;
            if beta <= target
                || stalled
                || !beta.is_finite()
                || outcome.applications >= self.max_applications
            {
                return Ok((z, outcome));
            }
        }
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::RefBackend;

    /// `T` = a fixed non-symmetric contraction on two blocks; GMRES recovers
    /// `(I - T)^-1 rhs` exactly, and the plain Neumann series agrees.
    #[test]
    fn solves_a_nonsymmetric_fixed_point() -> Result<()> {
        let be = RefBackend;
        // T = [[0.9, 0.3, 0], [-0.2, 0.8, 0.1], [0, 0.05, 0.95]] acting on (2-block, 1-block)
        let t = [[0.9, 0.3, 0.0], [-0.2, 0.8, 0.1], [0.0, 0.05, 0.95]];
        let apply = |v: &[Vec<f64>]| -> Vec<f64> {
            let x = [v[0][0], v[0][1], v[1][0]];
            (0..3)
                .map(|i| (0..3).map(|j| t[i][j] * x[j]).sum())
                .collect()
        };
        let rhs = vec![
            be.mat_from_col_major(2, 1, &[1.0, -2.0])?,
            be.mat_from_col_major(1, 1, &[0.5])?,
        ];
        let solve = |restart: usize| {
            let gmres = Gmres {
                restart,
                tol: 1e-12,
                max_applications: 2000,
            };
            gmres.solve(&be, &rhs, |v, out| {
                let host: Vec<Vec<f64>> = v.iter().map(|m| be.to_col_major(m).unwrap()).collect();
                let tv = apply(&host);
                out[0] = be.mat_from_col_major(2, 1, &tv[..2])?;
                out[1] = be.mat_from_col_major(1, 1, &tv[2..])?;
                Ok(())
            })
        };
        // full memory on a 3-dimensional problem: one cycle and the true residual
        let (full, outcome) = solve(3)?;
        assert!(outcome.relative_residual <= 1e-12, "{outcome:?}");
        assert!(outcome.applications <= 4, "{outcome:?}");
        // memory 2: several cycles
        let (z, outcome) = solve(2)?;
        assert!(outcome.relative_residual <= 1e-12, "{outcome:?}");
        assert!(outcome.applications > 4, "{outcome:?}");
        // the Neumann series sum_k T^k rhs
        let mut term = vec![1.0, -2.0, 0.5];
        let mut sum = term.clone();
        for _ in 0..5000 {
            term = apply(&[term[..2].to_vec(), term[2..].to_vec()]);
            for (s, v) in sum.iter_mut().zip(&term) {
                *s += v;
            }
        }
        for z in [full, z] {
            let got = [be.to_col_major(&z[0])?, be.to_col_major(&z[1])?].concat();
            for (g, s) in got.iter().zip(&sum) {
                assert!((g - s).abs() < 1e-9, "{got:?} vs {sum:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn zero_right_hand_side_is_zero() -> Result<()> {
        let be = RefBackend;
        let rhs = vec![be.zeros(3, 2)?];
        let gmres = Gmres {
            restart: 5,
            tol: 1e-10,
            max_applications: 10,
        };
        let (z, outcome) = gmres.solve(&be, &rhs, |_, _| unreachable!("no application"))?;
        assert_eq!(outcome.applications, 0);
        assert!(be.norm_inf(&z[0])? <= 0.0);
        Ok(())
    }
}
