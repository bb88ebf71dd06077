//! The limit of the Alt-Diff recursion at a fixed mask, solved directly
//! ([`Settings::limit`](crate::Settings::limit)).
//!
//! In the dual space (see [`dual`](super::dual)) a block with constant terms `c` and
//! `[b; h]` iterated with a fixed mask splits the `r = p + m` rows into the set `A` (the
//! equalities and the inequalities with `s = 0`) and the set `I` (the inequalities with
//! `s > 0`, the strict mask rule). Its fixed point follows from
//! `y = y + rho (Cx + s - [b; h])`, the slack update and `v = y + rho (s - [b; h])`:
//!
//! ```text
//! rows in A:  s = 0,                   y = v + rho [b; h]_A,   (Cx)_A = [b; h]_A
//! rows in I:  s = [b; h]_I + v_I/rho,  y = 0,                  (Cx)_I = -v_I/rho
//! and Cx = -C H^-1 c - M v, so    (M - D/rho) v = -f,   f = C H^-1 c + (I - D)[b; h]
//! ```
//!
//! (`D = 1` on `I`): the bounds of the inactive rows, loose ones included, drop out.
//!
//! `S = M - D/rho` is symmetric and indefinite: `M_AA` is positive semidefinite and
//! `T = I/rho - M_II` positive definite (`M <= I/rho`; by Woodbury
//! `T = (I + rho N)^-1 / rho` with `N = C_I (P + rho C_A'C_A)^-1 C_I'`). Eliminating `I`,
//!
//! ```text
//! Sigma = M_AA + M_AI T^-1 M_IA     (= C_A (P + rho C_A'C_A)^-1 C_A', the KKT Schur complement)
//! S w = u:   Sigma w_A = u_A + M_AI T^-1 u_I,   w_I = T^-1 (M_IA w_A - u_I)
//! ```
//!
//! two Cholesky factorizations of at most `p + m` rows and no new factorization of size `n`;
//! then `x = -H^-1 (c + C'v)`. The limit is the KKT derivative on the active set `{s = 0}`
//! (weakly active rows included, as the mask rule has it). With the data's own `(c, [b; h])`
//! it is the forward polish: `v` is a KKT point when `y >= 0` on the active inequalities and
//! `s_I >= 0`. The adjoint: `g'x_theta = -zeta'c_theta + ((I - D) w)'[b; h]_theta` with
//! `z = H^-1 g`, `w = S^-1 C z` and `zeta = H^-1 (g - C'w)`; as `rho C zeta = -D w`, that is
//! `w + rho C zeta` on the rows of `[b; h]`.

use num_traits::{One, Zero};

use crate::solver::dual::{DualData, DualKernel, DualOps};
use crate::{Accum, Error, LinAlg, Real, Result, Trans};

/// A block split into its rows of `A` and of `I` (each absent when the set is empty).
type Split<B> = (Option<<B as LinAlg>::Mat>, Option<<B as LinAlg>::Mat>);

/// The limit wrt `q` and the block its solve leaves for those wrt `b` and `h`
/// ([`Limit::q_tangent`]).
pub(crate) struct QLimit<B: LinAlg> {
    /// The Jacobian of `x` wrt `q` at the limit (`n x n`).
    pub x: B::Mat,
    /// `Z = Sigma^-1 U'` (`|A| x n`; absent when `A` is empty).
    pub z: Option<B::Mat>,
}

/// The factored limit system `S = M - D/rho` of one mask.
pub(crate) struct Limit<B: LinAlg> {
    /// Rows of `A`: the equalities and the inequalities with `s = 0`.
    active: Vec<usize>,
    /// Rows of `I`: the inequalities with `s > 0`.
    inactive: Vec<usize>,
    r: usize,
    /// `T = I/rho - M_II` (absent when `I` is empty).
    t: Option<B::Factor>,
    /// `Sigma = M_AA + M_AI T^-1 M_IA` (absent when `A` is empty).
    sigma: Option<B::Factor>,
    /// `M_AI` and `M_IA` (present when both sets are non-empty).
    coupling: Option<(B::Op, B::Op)>,
}

impl<B: LinAlg> std::fmt::Debug for Limit<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limit")
            .field("active", &self.active.len())
            .field("inactive", &self.inactive.len())
            .finish_non_exhaustive()
    }
}

impl<B: LinAlg> Limit<B> {
    /// Factors the system for the stacked slack `s` (`r` values, the first `p` the
    /// equalities); `T` and `Sigma` in the arithmetic of `H`'s factor when `coarse` (for
    /// solves that are refined, [`LinAlg::cholesky_owned_coarse`]).
    ///
    /// # Errors
    /// [`Error::SingularKkt`] when `T` or `Sigma` is not positive definite (dependent
    /// active rows), or a backend error.
    pub fn new(
        backend: &B,
        ops: &DualOps<B>,
        s: &[B::Real],
        p: usize,
        rho: B::Real,
        coarse: bool,
    ) -> Result<Self> {
        let r = s.len();
        let (active, inactive): (Vec<usize>, Vec<usize>) =
            (0..r).partition(|&i| i < p || !crate::kernels::keeps(s[i]));
        let block = |rows: &[usize], cols: &[usize]| -> Vec<B::Real> {
            crate::kernels::gather_block(&ops.m_host, r, rows, cols.iter().copied())
        };
        // a system that is not positive definite has dependent active rows
        let singular = |k: usize| {
            move |err| match err {
                Error::NotPositiveDefinite { .. } => Error::SingularKkt { rows: k },
                other => other,
            }
        };
        let (a, i) = (active.len(), inactive.len());
        let t = if i > 0 {
            let mut t = block(&inactive, &inactive);
            t.iter_mut().for_each(|e| *e = -*e);
            (0..i).for_each(|d| t[d * i + d] = t[d * i + d] + B::Real::one() / rho);
            let t = backend.op_from_col_major(i, i, &t)?;
            let t = if coarse {
                backend.cholesky_owned_coarse(t)
            } else {
                backend.cholesky_owned(t)
            };
            Some(t.map_err(singular(i))?)
        } else {
            None
        };
        let coupling = if a > 0 && i > 0 {
            Some((
                backend.op_from_col_major(a, i, &block(&active, &inactive))?,
                backend.op_from_col_major(i, a, &block(&inactive, &active))?,
            ))
        } else {
            None
        };
        let sigma = if a > 0 {
            // Sigma = M_AA + M_AI T^-1 M_IA, formed and factored in the arithmetic asked
            let schur = t.as_ref().zip(coupling.as_ref().map(|(m_ai, _)| m_ai));
            let (one, zero) = (B::Real::one(), B::Real::zero());
            let base = block(&active, &active);
            let sigma = backend.cholesky_schur(a, &base, (one, zero), schur, coarse);
            Some(sigma.map_err(singular(a))?)
        } else {
            None
        };
        Ok(Self {
            active,
            inactive,
            r,
            t,
            sigma,
            coupling,
        })
    }

    /// Whether the solution of the mask's KKT system is not unique: `P + rho C_A'C_A =
    /// L (I - rho W_I W_I') L'` (`W = L^-1 C'`, `H = L L'`) is singular exactly when
    /// `T = I/rho - M_II` is, i.e. when a direction `v` has `P v = 0` and `C_A v = 0`. The
    /// smallest eigenvalue of `T` (in `(0, 1/rho]`) is estimated by power iteration on
    /// `T^-1`; below `1e-6 / rho` the solution is reported not unique (the primal polish's
    /// threshold, relative to the data).
    pub fn flat(&self, backend: &B, rho: B::Real) -> Result<bool> {
        let Some(t) = &self.t else {
            return Ok(false);
        };
        let i = self.inactive.len();
        let start: Vec<B::Real> = (0..i)
            .map(|k| B::Real::of(1.0 + ((k * 7919) % 13) as f64 / 13.0))
            .collect();
        let mut v = backend.mat_from_col_major(i, 1, &start)?;
        let threshold = 1e6 / rho.to_f64_lossy();
        for _ in 0..30 {
            let norm = backend.dot(&v, &v)?.to_f64_lossy().sqrt();
            if !(norm > 0.0 && norm.is_finite()) {
                return Ok(false);
            }
            let mut w = v.clone();
            backend.axpby(B::Real::of(1.0 / norm), &v, B::Real::zero(), &mut w)?;
            v = w.clone();
            backend.solve_in_place(t, &mut v)?;
            // the Rayleigh quotient of T^-1 at the unit w
            if backend.dot(&w, &v)?.to_f64_lossy() >= threshold {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The pivots of `Sigma`'s Cholesky factor (empty without active rows), when the
    /// backend keeps them ([`LinAlg::factor_pivots`]).
    pub fn schur_pivots(&self, backend: &B) -> Result<Option<Vec<f64>>> {
        match &self.sigma {
            Some(sigma) => backend.factor_pivots(sigma),
            None => Ok(Some(Vec::new())),
        }
    }

    /// Whether the system is the one of the stacked slack `s`'s mask.
    pub fn is_for(&self, s: &[B::Real]) -> bool {
        s.len() == self.r
            && self.inactive.len() == s.iter().filter(|v| crate::kernels::keeps(**v)).count()
            && self.inactive.iter().all(|&i| crate::kernels::keeps(s[i]))
    }

    /// Whether inequality `i` (0-based among the stacked rows) is in `I`.
    pub fn is_inactive(&self, row: usize) -> bool {
        self.inactive.binary_search(&row).is_ok()
    }

    /// `u` (`r x k`) with its rows of `I` set to zero.
    pub fn without_inactive(&self, backend: &B, u: &B::Mat) -> Result<B::Mat> {
        let (r, k) = backend.shape(u);
        debug_assert_eq!(r, self.r, "limit: rows");
        let mut host = backend.to_col_major(u)?;
        for j in 0..k {
            self.inactive
                .iter()
                .for_each(|&i| host[j * r + i] = B::Real::zero());
        }
        backend.mat_from_col_major(r, k, &host)
    }

    /// `S^-1 u` for a block `u` (`r x k`).
    pub fn solve(&self, backend: &B, u: &B::Mat) -> Result<B::Mat> {
        let k = backend.shape(u).1;
        let (u_a, u_i) = self.split(backend, u)?;
        let (w_a, w_i) = self.solve_split(backend, k, u_a, u_i.as_ref())?;
        self.scatter(backend, k, &w_a, &w_i)
    }

    /// A block `u` (`r x k`) split into its rows of `A` and of `I`.
    fn split(&self, backend: &B, u: &B::Mat) -> Result<Split<B>> {
        let (r, k) = backend.shape(u);
        debug_assert_eq!(r, self.r, "limit: rows");
        let host = &backend.to_col_major(u)?;
        let gather = |rows: &[usize]| -> Result<Option<B::Mat>> {
            if rows.is_empty() {
                return Ok(None);
            }
            let data = crate::kernels::gather_rows(host, r, rows);
            backend.mat_from_col_major(rows.len(), k, &data).map(Some)
        };
        Ok((gather(&self.active)?, gather(&self.inactive)?))
    }

    /// The limit wrt `q` (`data` of [`DualKernel::data_of_q`]: `c = I`, `[b; h] = 0`,
    /// `H^-1` and `u = C H^-1` known) in symmetric form, with the block `Z` that the limits
    /// wrt `b` and `h` read off ([`Limit::unit_columns`]).
    ///
    /// The limit is `x = -H^-1 + K S^-1 K'` (`K' = u`). With `u` split into `u_A`, `u_I`,
    /// `Q = T^-1 u_I`, `U' = u_A + M_AI Q` and `Z = Sigma^-1 U'` (the block inverse of `S`
    /// through `Sigma`),
    ///
    /// ```text
    /// x = -H^-1 + U Z - u_I' Q
    /// ```
    ///
    /// two products whose results are symmetric, one triangle each
    /// ([`LinAlg::symmetric_product_tn`]), where `x = -H^-1 - K v` forms all of `K v`.
    pub fn q_tangent(&self, backend: &B, data: &DualData<B>) -> Result<QLimit<B>> {
        let one = B::Real::one();
        let hc = (data.hc.as_ref()).ok_or(Error::Request("the limit wrt q needs H^-1"))?;
        let mut x = hc.clone();
        backend.axpby(-one, hc, B::Real::zero(), &mut x)?;
        let (u_a, u_i) = self.split(backend, &data.chc)?;
        let q = match (&u_i, &self.t) {
            (Some(u_i), Some(t)) => {
                let mut q = u_i.clone();
                backend.solve_in_place(t, &mut q)?;
                backend.symmetric_product_tn(&mut x, Accum::Add, u_i, &q, -one)?;
                Some(q)
            }
            _ => None,
        };
        let z = match (u_a, &self.sigma) {
            (Some(mut u), Some(sigma)) => {
                if let (Some(q), Some((m_ai, _))) = (&q, &self.coupling) {
                    backend.apply(&mut u, Accum::Add, m_ai, Trans::No, q, one)?;
                }
                let mut z = u.clone();
                backend.solve_in_place(sigma, &mut z)?;
                backend.symmetric_product_tn(&mut x, Accum::Add, &u, &z, one)?;
                Some(z)
            }
            _ => None,
        };
        Ok(QLimit { x, z })
    }

    /// The limit wrt the stacked `[b; h]` rows `rows` from the block `Z` of
    /// [`Limit::q_tangent`] (`n` columns): `H^-1 C' S^-1 (I - D) E = U Sigma^-1 E_A`, so
    /// column `j` is row `j` of `Z` for an active row `j` and zero for an inactive one.
    pub fn unit_columns(
        &self,
        backend: &B,
        z: Option<&B::Mat>,
        rows: std::ops::Range<usize>,
        n: usize,
    ) -> Result<B::Mat> {
        let mut out = vec![B::Real::zero(); n * rows.len()];
        if let Some(z) = z {
            let (a, host) = (self.active.len(), backend.to_col_major(z)?);
            for (j, row) in rows.clone().enumerate() {
                if let Ok(slot) = self.active.binary_search(&row) {
                    let column = &mut out[j * n..(j + 1) * n];
                    column
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, e)| *e = host[i * a + slot]);
                }
            }
        }
        backend.mat_from_col_major(n, rows.len(), &out)
    }

    /// `S^-1 u` on the split rows of a `k`-column block: `u_A` (solved in place) and `u_I`
    /// (`None`: zero, and the terms with it are skipped). Returns `(w_A, w_I)`.
    fn solve_split(
        &self,
        backend: &B,
        k: usize,
        mut w_a: Option<B::Mat>,
        u_i: Option<&B::Mat>,
    ) -> Result<Split<B>> {
        let one = B::Real::one();
        // Sigma w_A = u_A + M_AI T^-1 u_I
        if let (Some(w_a), Some(u_i), Some(t), Some((m_ai, _))) =
            (&mut w_a, u_i, &self.t, &self.coupling)
        {
            let mut tu = u_i.clone();
            backend.solve_in_place(t, &mut tu)?;
            backend.apply(w_a, Accum::Add, m_ai, Trans::No, &tu, one)?;
        }
        if let (Some(w_a), Some(sigma)) = (&mut w_a, &self.sigma) {
            backend.solve_in_place(sigma, w_a)?;
        }
        // w_I = T^-1 (M_IA w_A - u_I)
        let Some(t) = &self.t else {
            return Ok((w_a, None));
        };
        let mut w_i = match u_i {
            Some(u_i) => {
                let mut w_i = u_i.clone();
                backend.axpby(-one, u_i, B::Real::zero(), &mut w_i)?;
                w_i
            }
            None => backend.zeros(self.inactive.len(), k)?,
        };
        if let (Some(w_a), Some((_, m_ia))) = (&w_a, &self.coupling) {
            backend.apply(&mut w_i, Accum::Add, m_ia, Trans::No, w_a, one)?;
        }
        backend.solve_in_place(t, &mut w_i)?;
        Ok((w_a, Some(w_i)))
    }

    /// The `r x k` block with `w_A` on the rows of `A` and `w_I` on those of `I`.
    fn scatter(
        &self,
        backend: &B,
        k: usize,
        w_a: &Option<B::Mat>,
        w_i: &Option<B::Mat>,
    ) -> Result<B::Mat> {
        let r = self.r;
        let mut out = vec![B::Real::zero(); r * k];
        for (rows, block) in [(&self.active, w_a), (&self.inactive, w_i)] {
            if let Some(block) = block {
                let values = backend.to_col_major(block)?;
                for j in 0..k {
                    for (slot, &i) in rows.iter().enumerate() {
                        out[j * r + i] = values[j * rows.len() + slot];
                    }
                }
            }
        }
        backend.mat_from_col_major(r, k, &out)
    }

    /// The fixed point `v = -S^-1 (C H^-1 c + (I - D) [b; h])` of a block with constant
    /// terms `data` (`v = y + rho (s - [b; h])`: the bounds of the rows of `I` drop out).
    pub fn point(&self, backend: &B, data: &DualData<B>) -> Result<B::Mat> {
        self.point_of(backend, &data.chc, &data.bh)
    }

    /// [`Limit::point`] from `C H^-1 c` (`chc`) and `[b; h]` (`bh`).
    pub fn point_of(&self, backend: &B, chc: &B::Mat, bh: &B::Mat) -> Result<B::Mat> {
        let mut f = self.without_inactive(backend, bh)?;
        backend.axpby(-B::Real::one(), chc, -B::Real::one(), &mut f)?;
        self.solve(backend, &f)
    }

    /// The limit `x = -H^-1 (c + C'v)` of a tangent block with constant terms `data`.
    ///
    /// For the Jacobians wrt `b` and `h` (`data.rows`: `[b; h] = E`, the identity on those
    /// rows, `c = 0`), `v = -S^-1 (I - D) E` and `x = -H^-1 C'v = H^-1 C' w` with
    /// `w = S^-1 (I - D) E`: a right-hand side that is zero on `I`, so the coupling through
    /// `T^-1 u_I` is skipped.
    pub fn tangent(&self, kernel: &DualKernel<'_, B>, data: &DualData<B>) -> Result<B::Mat> {
        if let Some(rows) = &data.rows {
            let w = self.unit_solve(kernel.backend, rows.clone())?;
            return kernel.k_times(&w);
        }
        let v = self.point(kernel.backend, data)?;
        kernel.x_of(&v, data)
    }

    /// `S^-1 (I - D) E` for `E` the identity columns of the stacked rows `rows`.
    fn unit_solve(&self, backend: &B, rows: std::ops::Range<usize>) -> Result<B::Mat> {
        let (a, k) = (self.active.len(), rows.len());
        let w_a = if a > 0 {
            let mut u = vec![B::Real::zero(); a * k];
            for (j, row) in rows.enumerate() {
                if let Ok(slot) = self.active.binary_search(&row) {
                    u[j * a + slot] = B::Real::one();
                }
            }
            Some(backend.mat_from_col_major(a, k, &u)?)
        } else {
            None
        };
        let (w_a, w_i) = self.solve_split(backend, k, w_a, None)?;
        self.scatter(backend, k, &w_a, &w_i)
    }
}
