//! The quasi-definite (KKT) form of the x-update: `H = P + rho C'C` is never formed.
//!
//! `H x = r` is the first block of
//!
//! ```text
//! [ P + sigma I    C'     ] [x]   [r]
//! [ C           -I / rho  ] [z] = [0]      (z = rho C x)
//! ```
//!
//! whose matrix `K` has `nnz(P) + nnz(C) + n + r` entries: a row of `C` with many entries
//! is one node of `K` instead of a dense block of `C'C`, so problems whose `C'C` fills
//! (factor models, budget rows, many dense-ish rows) keep a sparse factor. `K` is
//! quasi-definite for `sigma > 0`, so its `LDL'` exists for any (fill-reducing) ordering;
//! its symbolic analysis runs once per pattern and a new penalty only changes the `-1/rho`
//! diagonal (a new numeric factorization). The small `sigma` (OSQP's role for it) is
//! removed by iterative refinement against the exact `H`, applied as
//! `P x + rho C'(C x)` until the residual stops shrinking: solves are exact to rounding.

use std::sync::Arc;

use altdiff_core::{Error, Result};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::ldlt::factor::LdltRegularization;
use faer::prelude::{Reborrow, ReborrowMut};
use faer::sparse::linalg::cholesky::{
    CholeskySymbolicParams, LdltRef, SymbolicCholesky, SymmetricOrdering,
    factorize_symbolic_cholesky,
};
use faer::sparse::linalg::matmul::sparse_dense_matmul;
use faer::sparse::{SparseColMatRef, Triplet};
use faer::{Conj, Mat, MatMut, MatRef, Par, Side};

use crate::sparse_cholesky::{SparseMat, lower_entries, transposed};

/// At most this many refinement steps per solve.
const MAX_REFINEMENT: usize = 10;

/// Refinement stops at this residual relative to the right-hand side (`max |r - H x| <=
/// REFINED max |r|`).
const REFINED: f64 = 1e-13;

/// The factorization of `K` for one penalty.
#[derive(Clone, Debug)]
pub(crate) struct KktFactor {
    pattern: Arc<KktPattern>,
    rho: f64,
    l_values: Vec<f64>,
}

/// What stays the same for every penalty.
#[derive(Debug)]
struct KktPattern {
    n: usize,
    /// `K`'s lower triangle with the `(2, 2)` diagonal set to 0.
    k: SparseMat,
    /// Positions of the `(2, 2)` diagonal in `k`'s values.
    dual_diagonal: Vec<usize>,
    symbolic: SymbolicCholesky<usize>,
    /// `+1` for the `x` pivots, `-1` for the `z` pivots.
    signs: Vec<i8>,
    /// `P` (both triangles), `C` (r x n) and `C'` for the exact `H`.
    p: SparseMat,
    c: SparseMat,
    c_t: SparseMat,
}

impl KktFactor {
    /// Assembles `K` for the rows `rows` (`C'`, the rows as the columns of an `n x r`
    /// matrix), analyses its pattern (AMD) and factors it.
    ///
    /// # Errors
    /// [`Error::NotPositiveDefinite`] when `K` has no quasi-definite `LDL'` (`P` not
    /// positive semidefinite); a backend error when faer cannot allocate.
    pub fn new(p: &SparseMat, rows: &SparseMat, rho: f64, par: Par) -> Result<Self> {
        let backend = |e: faer::sparse::FaerError| Error::backend("faer-sparse", e);
        let n = p.nrows();
        let r = rows.ncols();
        let diag_max = lower_entries(p.as_ref())
            .filter(|(i, j, _)| i == j)
            .fold(0.0f64, |m, (_, _, v)| m.max(v.abs()));
        let sigma = 1e-10 * diag_max.max(1.0);
        let mut triplets: Vec<Triplet<usize, usize, f64>> =
            (0..n).map(|j| Triplet::new(j, j, sigma)).collect();
        triplets.extend(lower_entries(p.as_ref()).map(|(i, j, v)| Triplet::new(i, j, v)));
        for row in 0..r {
            let cols = rows.as_ref().row_idx_of_col_raw(row);
            let vals = rows.as_ref().val_of_col(row);
            triplets.extend(
                cols.iter()
                    .zip(vals)
                    .map(|(&j, &v)| Triplet::new(n + row, j, v)),
            );
            triplets.push(Triplet::new(n + row, n + row, 0.0));
        }
        let k = SparseMat::try_new_from_triplets(n + r, n + r, &triplets)
            .map_err(|e| Error::backend("faer-sparse", std::io::Error::other(format!("{e:?}"))))?;
        // the lower triangle is sorted: the diagonal opens each column
        let dual_diagonal = (n..n + r).map(|j| k.symbolic().col_ptr()[j]).collect();
        let symbolic = factorize_symbolic_cholesky(
            k.symbolic(),
            Side::Lower,
            SymmetricOrdering::Amd,
            CholeskySymbolicParams::default(),
        )
        .map_err(backend)?;
        let mut signs = vec![1i8; n];
        signs.resize(n + r, -1);
        let c = transposed(rows)?;
        let pattern = Arc::new(KktPattern {
            n,
            k,
            dual_diagonal,
            symbolic,
            signs,
            p: p.clone(),
            c,
            c_t: rows.clone(),
        });
        Self::numeric(pattern, rho, par)
    }

    /// The factor for a new penalty (same pattern and analysis).
    ///
    /// # Errors
    /// As [`KktFactor::new`].
    pub fn refactor(&self, rho: f64, par: Par) -> Result<Self> {
        Self::numeric(self.pattern.clone(), rho, par)
    }

    pub fn rho(&self) -> f64 {
        self.rho
    }

    /// Stored entries of the `LDL'` factor of `K`.
    pub fn nnz_l(&self) -> usize {
        self.l_values.len()
    }

    fn numeric(pattern: Arc<KktPattern>, rho: f64, par: Par) -> Result<Self> {
        let mut values = pattern.k.val().to_vec();
        for &at in &pattern.dual_diagonal {
            values[at] = -1.0 / rho;
        }
        let k = SparseColMatRef::new(pattern.k.symbolic(), &values);
        let symbolic = &pattern.symbolic;
        let mut l_values = vec![0.0; symbolic.len_val()];
        let mut mem =
            MemBuffer::new(symbolic.factorize_numeric_ldlt_scratch::<f64>(par, Default::default()));
        // a pivot of the wrong sign (P not positive semidefinite, or lost to rounding) is
        // replaced by an infinite one, which the test below turns into the error
        let regularization = LdltRegularization {
            dynamic_regularization_signs: Some(&pattern.signs),
            dynamic_regularization_delta: f64::INFINITY,
            dynamic_regularization_epsilon: 0.0,
        };
        symbolic
            .factorize_numeric_ldlt(
                &mut l_values,
                k,
                Side::Lower,
                regularization,
                par,
                MemStack::new(&mut mem),
                Default::default(),
            )
            .map_err(|_| Error::NotPositiveDefinite { pivot: None })?;
        if l_values.iter().any(|v| !v.is_finite()) {
            return Err(Error::NotPositiveDefinite { pivot: None });
        }
        let factor = Self {
            pattern,
            rho,
            l_values,
        };
        factor.verify(par)?;
        Ok(factor)
    }

    /// `sigma` keeps `K` regular even where `H` is singular (`P = 0` without constraints, or
    /// `P` singular on the null space of `C`): a test solve of a fixed right-hand side must
    /// reach a small residual against the exact `H`.
    fn verify(&self, par: Par) -> Result<()> {
        let n = self.pattern.n;
        let b = Mat::<f64>::from_fn(n, 1, |i, _| 1.0 + (i as f64 * 0.618_034).fract());
        let mut x = b.clone();
        self.solve_in_place(x.as_mut(), par);
        let mut residual = b.clone();
        self.apply_h(x.as_ref(), residual.as_mut(), -1.0, par);
        if residual.norm_max() <= 1e-8 * b.norm_max() {
            Ok(())
        } else {
            Err(Error::NotPositiveDefinite { pivot: None })
        }
    }

    /// `rhs = H^-1 rhs`: a solve with `K`, refined against the exact `H` until the residual
    /// stops shrinking (at most [`MAX_REFINEMENT`] steps).
    pub fn solve_in_place(&self, mut rhs: MatMut<'_, f64>, par: Par) {
        let b = rhs.rb().to_owned();
        let b_norm = b.norm_max();
        let mut x = self.solve_k(b.as_ref(), par);
        let mut residual = b.clone();
        self.apply_h(x.as_ref(), residual.as_mut(), -1.0, par);
        let mut norm = residual.norm_max();
        for _ in 0..MAX_REFINEMENT {
            if norm <= REFINED * b_norm {
                break;
            }
            let dx = self.solve_k(residual.as_ref(), par);
            let candidate = &x + &dx;
            let mut next = b.clone();
            self.apply_h(candidate.as_ref(), next.as_mut(), -1.0, par);
            let next_norm = next.norm_max();
            if next_norm.is_nan() || next_norm >= norm {
                break;
            }
            (x, residual, norm) = (candidate, next, next_norm);
        }
        rhs.copy_from(&x);
    }

    /// The first block of `K^-1 [r; 0]`.
    fn solve_k(&self, r: MatRef<'_, f64>, par: Par) -> Mat<f64> {
        let (n, rows) = (self.pattern.n, self.pattern.k.nrows());
        let mut full = Mat::<f64>::zeros(rows, r.ncols());
        full.as_mut().subrows_mut(0, n).copy_from(r);
        let symbolic = &self.pattern.symbolic;
        let ldlt = LdltRef::new(symbolic, &self.l_values);
        let mut mem = MemBuffer::new(symbolic.solve_in_place_scratch::<f64>(r.ncols(), par));
        ldlt.solve_in_place_with_conj(Conj::No, full.as_mut(), par, MemStack::new(&mut mem));
        full.subrows(0, n).to_owned()
    }

    /// `dst += alpha H x`, `H x = P x + rho C'(C x)`.
    fn apply_h(&self, x: MatRef<'_, f64>, mut dst: MatMut<'_, f64>, alpha: f64, par: Par) {
        let pat = &self.pattern;
        sparse_dense_matmul(
            dst.rb_mut(),
            faer::Accum::Add,
            pat.p.as_ref(),
            x,
            alpha,
            par,
        );
        let mut cx = Mat::<f64>::zeros(pat.c.nrows(), x.ncols());
        sparse_dense_matmul(
            cx.as_mut(),
            faer::Accum::Replace,
            pat.c.as_ref(),
            x,
            1.0,
            par,
        );
        sparse_dense_matmul(
            dst,
            faer::Accum::Add,
            pat.c_t.as_ref(),
            cx.as_ref(),
            alpha * self.rho,
            par,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse_from_dense;

    #[test]
    fn indefinite_p_is_refused() {
        let neg = sparse_from_dense(faer::mat![[-1.0, 0.0], [0.0, -1.0]].as_ref());
        let rows = sparse_from_dense(faer::Mat::<f64>::zeros(2, 0).as_ref());
        let got = KktFactor::new(&neg, &rows, 1.0, Par::Seq);
        assert!(matches!(got, Err(Error::NotPositiveDefinite { .. })));
    }
}
