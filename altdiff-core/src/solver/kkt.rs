//! Implicit differentiation of the KKT conditions on the active set ([`Method::Kkt`](crate::Method::Kkt)).
//!
//! With `C = [A; G_act]` (the equalities and the active inequalities, `r` rows), the
//! derivative `(dx, dy)` of the solution and of the active duals solves
//!
//! ```text
//! [P  C'] [dx]   [-f]      f = dq_eff = dq + dP x + dA'lam + dG'nu
//! [C  0 ] [dy] = [ e]      e = [db - dA x; (dh - dG x)_act]
//! ```
//!
//! It is solved with the backend's own operations: `H_C = P + rho C'C` (positive definite
//! when `P` is on the null space of `C`) factored once, the Schur complement
//! `S = C H_C^-1 C'` (`r x r`, positive definite when `C` has full row rank) factored once,
//! then `dy = S^-1 (C H_C^-1 f' - e)` and `dx = H_C^-1 (f' - C'dy)` with `f' = -f + rho C'e`.
//! The adjoint uses the same factors, since the KKT matrix is symmetric.

use num_traits::{One, Zero};

use crate::solver::refine::{Residual, Rounds, is_coarse};
use crate::{Accum, Error, LinAlg, QpDims, Real, Result, Trans};

/// The factored reduced KKT system at an active set.
pub(crate) struct KktSystem<B: LinAlg> {
    c: B::Op,
    h_c: B::Factor,
    schur: B::Factor,
    active: Vec<usize>,
    rho: B::Real,
    /// `P`, kept when the backend's factorization is coarse: the solves are then refined
    /// against the full-precision residual (see [`refine`](super::refine)).
    refine_with: Option<B::Op>,
}

impl<B: LinAlg> KktSystem<B> {
    /// Factors the system for the inequalities `active` (indices).
    ///
    /// # Errors
    /// [`Error::SingularKkt`] when the rows of `C` are linearly dependent.
    pub fn new(
        backend: &B,
        ops: [&B::Op; 3],
        active: Vec<usize>,
        rho: B::Real,
        dims: QpDims,
    ) -> Result<Self> {
        let [p, a, g] = ops;
        let r = dims.p + active.len();
        // C = [A; G_act] and H_C stay in the backend's operator format (sparse stays sparse)
        let g_act = backend.op_select_rows(g, &active)?;
        let c = backend.op_stack_rows(a, &g_act)?;
        let h_c = backend.factor(p, a, &g_act, rho)?;
        // S = C H_C^-1 C' (r x r, dense)
        let (s, _) = backend.gram_inverse(&h_c, &c, false)?;
        let host = backend.to_col_major(&s)?;
        let s_op = backend.op_from_col_major(r, r, &host)?;
        let schur = backend.cholesky(&s_op).map_err(|err| match err {
            Error::NotPositiveDefinite { .. } => Error::SingularKkt { rows: r },
            other => other,
        })?;
        // dependent rows leave S singular to rounding, which a Cholesky factorization may
        // still pass with a tiny pivot (the sparse backend did, on CVXQP2_S): the pivots'
        // spread decides, the same rule for every backend (the factor's own pivots, or a
        // factorization on the host where the backend keeps none)
        let independent = match backend.factor_pivots(&schur)? {
            Some(pivots) => {
                super::differentiability::spread_is_regular(&pivots, backend.factor_epsilon())
            }
            None => {
                let gram = host.iter().map(|v| v.to_f64_lossy()).collect();
                super::differentiability::independent_rows(gram, r, backend.factor_epsilon())
            }
        };
        if !independent {
            return Err(Error::SingularKkt { rows: r });
        }
        Ok(Self {
            c,
            h_c,
            schur,
            active,
            rho,
            refine_with: is_coarse(backend).then(|| p.clone()),
        })
    }

    /// The active inequalities.
    pub fn active(&self) -> &[usize] {
        &self.active
    }

    /// Solves `[P C'; C 0] [dx; dy] = [-f; e]` for blocks `f` (n x k), `e` (r x k), refined
    /// to full precision when the factorization is coarse.
    pub fn solve(&self, backend: &B, f: &B::Mat, e: &B::Mat) -> Result<(B::Mat, B::Mat)> {
        let (mut dx, mut dy) = self.solve_once(backend, f, e)?;
        let Some(p) = &self.refine_with else {
            return Ok((dx, dy));
        };
        let one = B::Real::one();
        // [P C'; C 0] [dx; dy] = [-f; e]: the residual of -f, negated for solve_once
        let mut minus_f = f.clone();
        backend.axpby(-one, f, B::Real::zero(), &mut minus_f)?;
        let mut rounds = Rounds::new();
        loop {
            let mut res = Residual::of(backend, [p, &self.c], (&minus_f, e), (&dx, &dy), |re| {
                Ok(re.clone())
            })?;
            if !rounds.go_on(res.size, res.scale) {
                return Ok((dx, dy));
            }
            backend.axpby(B::Real::zero(), &minus_f, -one, &mut res.f)?;
            let (cx, cy) = self.solve_once(backend, &res.f, &res.e)?;
            backend.axpby(one, &cx, one, &mut dx)?;
            backend.axpby(one, &cy, one, &mut dy)?;
        }
    }

    /// One solve of [`KktSystem::solve`] with the factors as they are.
    fn solve_once(&self, backend: &B, f: &B::Mat, e: &B::Mat) -> Result<(B::Mat, B::Mat)> {
        let (one, zero) = (B::Real::one(), B::Real::zero());
        let mut fp = f.clone();
        backend.axpby(-one, f, zero, &mut fp)?;
        backend.apply(&mut fp, Accum::Add, &self.c, Trans::Yes, e, self.rho)?;
        let mut t = fp.clone();
        backend.solve_in_place(&self.h_c, &mut t)?;
        let mut dy = e.clone();
        backend.apply(&mut dy, Accum::Replace, &self.c, Trans::No, &t, one)?;
        backend.axpby(-one, e, one, &mut dy)?;
        backend.solve_in_place(&self.schur, &mut dy)?;
        backend.apply(&mut fp, Accum::Add, &self.c, Trans::Yes, &dy, -one)?;
        backend.solve_in_place(&self.h_c, &mut fp)?;
        Ok((fp, dy))
    }

    /// Stacks `[b; h_act]` (r x k) from `b` (p x k) and `h` (m x k).
    pub fn stack(&self, backend: &B, b: &B::Mat, h: &B::Mat) -> Result<B::Mat> {
        let (p, k) = backend.shape(b);
        let m = backend.shape(h).0;
        let (bv, hv) = (backend.to_col_major(b)?, backend.to_col_major(h)?);
        let r = p + self.active.len();
        let mut e = Vec::with_capacity(r * k);
        for col in 0..k {
            e.extend_from_slice(&bv[col * p..(col + 1) * p]);
            e.extend(self.active.iter().map(|&i| hv[col * m + i]));
        }
        backend.mat_from_col_major(r, k, &e)
    }

    /// Splits `dy` (r x 1) into the equality part (p x 1) and the inequality part scattered
    /// to all `m` rows (zero on the inactive ones).
    pub fn split(&self, backend: &B, dy: &B::Mat, dims: QpDims) -> Result<(B::Mat, B::Mat)> {
        let v = backend.to_col_major(dy)?;
        let mut h = vec![B::Real::zero(); dims.m];
        for (slot, &i) in self.active.iter().enumerate() {
            h[i] = v[dims.p + slot];
        }
        Ok((
            backend.mat_from_col_major(dims.p, 1, &v[..dims.p])?,
            backend.mat_from_col_major(dims.m, 1, &h)?,
        ))
    }
}

/// The `0/1`-free helper: indices `i` with `s_i <= 0` (the mask rule's active set).
pub(crate) fn active_indices<T: Real>(s: &[T]) -> Vec<usize> {
    s.iter()
        .enumerate()
        .filter(|(_, v)| !crate::kernels::keeps(**v))
        .map(|(i, _)| i)
        .collect()
}
