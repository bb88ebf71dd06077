//! The active-set polish, for every backend: the KKT system of the active set an ADMM
//! iterate suggests, solved to full accuracy, kept only when its point passes the stopping
//! test on the user's problem (see [`termination`](super::termination)).
//!
//! With `A` the equalities and the inequalities whose slack is zero (the mask rule, weakly
//! active rows included) and `C_A` their rows, the point solves
//!
//! ```text
//! [P    C_A'] [x  ]   [-q   ]
//! [C_A  0   ] [y_A] = [b; h]_A          (y = 0 on the other rows)
//! ```
//!
//! A dense backend with the dual-space operators solves it through the limit system
//! ([`limit`](super::limit), no factorization of size `n`). Every other case (sparse
//! backends, `p + m > 2n`, a proximal term, a singular limit system) uses the regularized
//! system of OSQP's polish,
//!
//! ```text
//! K_d = [P + d I    C_A'  ]      factored as   H_d = P + d I + C_A'C_A / d
//!       [C_A       -d I   ]      (x = H_d^-1 (f + C_A'e / d), y = (C_A x - e) / d)
//! ```
//!
//! quasi-definite for any `d > 0` (so dependent active rows and a `P` singular on their
//! null space are fine), with iterative refinement against the exact system from the ADMM
//! point: each round solves `K_d` for the exact residual, a proximal-point step. `d` is
//! `1e-6` times the scale of the data (`max(max|P|, max|C|^2)`; `sqrt` of the unit roundoff
//! of a coarse factorization when larger, four times it).
//!
//! The same factor tells whether the solution is unique: `H_d` has the eigenvalue `d`
//! exactly on the directions `v` with `Pv = 0` and `C_A v = 0`, along which the objective
//! is flat and the active rows stay active. Its smallest eigenvalue is estimated by power
//! iteration on `H_d^-1`; below `2d`, the solution is reported not unique
//! ([`Solution::is_unique`](crate::Solution::is_unique)).

use num_traits::{Float, One, Zero};

use crate::solver::AltDiff;
use crate::solver::iteration::Iterate;
use crate::solver::refine::{Rounds, is_coarse};
use crate::solver::termination::Measures;
use crate::{Accum, Error, LinAlg, QpParams, Real, Result, Trans};

/// When a polish is tried: the forward mask, read at each check; once it has stayed the
/// same for [`PolishSchedule::STABLE`] iterations and was not tried, a polish is due. A
/// polish that fails doubles the stability asked of the next one (each attempt costs a
/// factorization).
#[derive(Clone, Debug)]
pub(crate) struct PolishSchedule {
    current: Vec<u64>,
    since: usize,
    tried: Vec<Vec<u64>>,
    stable: usize,
}

impl Default for PolishSchedule {
    fn default() -> Self {
        Self {
            current: Vec::new(),
            since: 0,
            tried: Vec::new(),
            stable: Self::STABLE,
        }
    }
}

impl PolishSchedule {
    /// Iterations with the same mask before the first polish.
    pub const STABLE: usize = 5;
    /// Masks remembered as tried.
    const MEMORY: usize = 16;

    /// Records the mask seen at iteration `iteration`; true when a polish is due.
    pub fn due(&mut self, mask: Vec<u64>, iteration: usize) -> bool {
        if mask != self.current || iteration == 0 {
            self.current = mask;
            self.since = iteration;
            return false;
        }
        iteration - self.since >= self.stable && !self.was_tried()
    }

    /// Whether the current mask was tried.
    pub fn was_tried(&self) -> bool {
        self.tried.contains(&self.current)
    }

    /// Records a polish of the current mask and whether it was accepted.
    pub fn record(&mut self, accepted: bool) {
        if self.tried.len() == Self::MEMORY {
            self.tried.remove(0);
        }
        self.tried.push(self.current.clone());
        if !accepted {
            self.stable = self.stable.saturating_mul(2);
        }
    }

    /// Records a mask without the iteration count (the end of a solve): true when it was
    /// not tried.
    pub fn untried(&mut self, mask: Vec<u64>) -> bool {
        if mask != self.current {
            self.current = mask;
        }
        !self.was_tried()
    }
}

/// A point of the active-set polish, before it is judged.
pub(crate) struct Candidate<B: LinAlg> {
    /// `(x, s, lam, nu)` in the iterated problem's units.
    pub iterate: Iterate<B>,
    /// Whether the solution is not unique (see [`polish`](self)).
    pub non_unique: bool,
}

/// An accepted polish.
pub(crate) struct Polished<B: LinAlg> {
    pub iterate: Iterate<B>,
    pub measures: Measures,
    pub non_unique: bool,
    /// The limit system of the mask, when the dual-space polish made it.
    pub limit: Option<crate::solver::limit::Limit<B>>,
}

/// The regularization of the polish and the proximal term: `1e-6` of the data's scale.
const DELTA: f64 = 1e-6;

/// The regularization `d` of the polish's KKT system, and the proximal term `sigma` of a
/// solver whose `H` is singular: [`DELTA`] (or four times the square root of a coarse
/// factorization's unit roundoff, when larger) times the data's scale
/// `max(max|P_ij|, max|C_ij|^2)` (1 when zero).
pub(crate) fn regularization<B: LinAlg>(backend: &B, [p, a, g]: [&B::Op; 3]) -> Result<f64> {
    let largest = |op: &B::Op| -> Result<f64> {
        let (r, c) = backend.op_shape(op);
        let ones = vec![B::Real::one(); r.max(c)];
        let (_, cols) = backend.op_abs_max(op, &ones[..r], &ones[..c])?;
        Ok(cols.iter().fold(0.0_f64, |a, v| a.max(v.to_f64_lossy())))
    };
    let c_max = largest(a)?.max(largest(g)?);
    let scale = largest(p)?.max(c_max * c_max);
    let scale = if scale > 0.0 && scale.is_finite() {
        scale
    } else {
        1.0
    };
    let unit = if is_coarse(backend) {
        (4.0 * backend.factor_epsilon().sqrt()).max(DELTA)
    } else {
        DELTA
    };
    Ok(unit * scale)
}
/// Power iterations of the uniqueness test.
const POWER_ITERATIONS: usize = 30;

impl<B: LinAlg> AltDiff<B> {
    /// `d` of the regularized polish for the iterated problem ([`regularization`]).
    pub(super) fn polish_delta(&self) -> Result<f64> {
        if let Some(d) = self.polish_delta.get() {
            return Ok(*d);
        }
        let d = regularization(&self.backend, [&self.p, &self.a, &self.g])?;
        Ok(*self.polish_delta.get_or_init(|| d))
    }

    /// The regularized polish of the column `it` (iterated units) for `params`, refined
    /// against the exact KKT system; `None` when its factorization fails.
    pub(super) fn polish_primal(
        &self,
        it: &Iterate<B>,
        params: &QpParams<B>,
    ) -> Result<Option<Candidate<B>>> {
        let (be, dims) = (&self.backend, self.dims);
        let (one, zero) = (B::Real::one(), B::Real::zero());
        let s = be.to_col_major(&it.s)?;
        let active = crate::solver::kkt::active_indices(&s);
        let g_act = be.op_select_rows(&self.g, &active)?;
        let c_a = be.op_stack_rows(&self.a, &g_act)?;
        let d = self.polish_delta()?;
        let (rd, inv_d) = (B::Real::of(d), B::Real::of(1.0 / d));
        let factor = match be.factor_shifted(&self.p, &self.a, &g_act, inv_d, rd) {
            Ok(f) => f,
            Err(Error::NotPositiveDefinite { .. }) => return Ok(None),
            Err(other) => return Err(other),
        };
        let r = dims.p + active.len();
        // f = -q, e = [b; h_A], from the ADMM point
        let mut f = params.q.clone();
        be.axpby(-one, &params.q, zero, &mut f)?;
        let h = be.to_col_major(&params.h)?;
        let mut e_host = be.to_col_major(&params.b)?;
        e_host.extend(active.iter().map(|&i| h[i]));
        let e = be.mat_from_col_major(r, 1, &e_host)?;
        let nu = be.to_col_major(&it.nu)?;
        let mut y_host = be.to_col_major(&it.lam)?;
        y_host.extend(active.iter().map(|&i| nu[i]));
        let mut y = be.mat_from_col_major(r, 1, &y_host)?;
        let mut x = it.x.clone();
        // to full precision (a correction costs two products and a solve with the factor
        // at hand): the point's relative accuracy does not depend on the data's units
        let mut rounds = Rounds::new().with_rounds(20);
        let (mut rf, mut re, mut t) = (x.clone(), e.clone(), x.clone());
        loop {
            // rf = f - P x - C_A'y, re = e - C_A x
            be.apply(&mut rf, Accum::Replace, &self.p, Trans::No, &x, -one)?;
            let px = be.norm_inf(&rf)?;
            be.apply(&mut t, Accum::Replace, &c_a, Trans::Yes, &y, one)?;
            let cty = be.norm_inf(&t)?;
            be.axpby(one, &f, one, &mut rf)?;
            be.axpby(-one, &t, one, &mut rf)?;
            be.apply(&mut re, Accum::Replace, &c_a, Trans::No, &x, -one)?;
            let cx = be.norm_inf(&re)?;
            be.axpby(one, &e, one, &mut re)?;
            let size = be.norm_inf(&rf)?.max(be.norm_inf(&re)?);
            let scale = px
                .max(cty)
                .max(cx)
                .max(be.norm_inf(&f)?)
                .max(be.norm_inf(&e)?);
            if !size.is_finite() {
                return Ok(None);
            }
            if !rounds.go_on(size, scale) {
                break;
            }
            // K_d [dx; dy] = [rf; re]
            be.copy_from(&mut t, &rf)?;
            be.apply(&mut t, Accum::Add, &c_a, Trans::Yes, &re, inv_d)?;
            be.solve_in_place(&factor, &mut t)?;
            let mut dy = re.clone();
            be.apply(&mut dy, Accum::Replace, &c_a, Trans::No, &t, inv_d)?;
            be.axpby(-inv_d, &re, one, &mut dy)?;
            be.axpby(one, &t, one, &mut x)?;
            be.axpby(one, &dy, one, &mut y)?;
        }
        let iterate = self.point_of_active(x, &y, &active, params)?;
        let non_unique = self.flat_directions(&factor, d)?;
        Ok(Some(Candidate {
            iterate,
            non_unique,
        }))
    }

    /// The iterate of a polished `(x, y_A)`: `lam` and `nu` on the active rows from `y`
    /// (zero elsewhere), `s = 0` there and `max(h - Gx, 0)` on the others.
    fn point_of_active(
        &self,
        x: B::Mat,
        y: &B::Mat,
        active: &[usize],
        params: &QpParams<B>,
    ) -> Result<Iterate<B>> {
        let (be, dims) = (&self.backend, self.dims);
        let y = be.to_col_major(y)?;
        let mut nu = vec![B::Real::zero(); dims.m];
        for (slot, &i) in active.iter().enumerate() {
            nu[i] = y[dims.p + slot];
        }
        let mut gx = be.zeros(dims.m, 1)?;
        be.apply(
            &mut gx,
            Accum::Replace,
            &self.g,
            Trans::No,
            &x,
            B::Real::one(),
        )?;
        let (gx, h) = (be.to_col_major(&gx)?, be.to_col_major(&params.h)?);
        let mut s: Vec<B::Real> = h
            .iter()
            .zip(&gx)
            .map(|(&h, &gx)| (h - gx).max(B::Real::zero()))
            .collect();
        active.iter().for_each(|&i| s[i] = B::Real::zero());
        Ok(Iterate {
            x,
            s: be.mat_from_col_major(dims.m, 1, &s)?,
            lam: be.mat_from_col_major(dims.p, 1, &y[..dims.p])?,
            nu: be.mat_from_col_major(dims.m, 1, &nu)?,
        })
    }

    /// Whether `H_d` (factored) has an eigenvalue below `2d`: power iteration on `H_d^-1`
    /// from a fixed start, its Rayleigh quotient against `1 / (2d)`.
    fn flat_directions(&self, factor: &B::Factor, d: f64) -> Result<bool> {
        let be = &self.backend;
        let n = self.dims.n;
        let start: Vec<B::Real> = (0..n)
            .map(|i| B::Real::of(1.0 + ((i * 7919) % 13) as f64 / 13.0))
            .collect();
        let mut v = be.mat_from_col_major(n, 1, &start)?;
        let mut quotient = 0.0;
        for _ in 0..POWER_ITERATIONS {
            let norm = be.dot(&v, &v)?.to_f64_lossy().sqrt();
            if !(norm > 0.0 && norm.is_finite()) {
                return Ok(false);
            }
            be.axpby(B::Real::zero(), &v.clone(), B::Real::of(1.0 / norm), &mut v)?;
            let mut w = v.clone();
            be.solve_in_place(factor, &mut w)?;
            quotient = be.dot(&v, &w)?.to_f64_lossy();
            v = w;
            if quotient * 2.0 * d >= 1.0 {
                return Ok(true);
            }
        }
        Ok(quotient * 2.0 * d >= 1.0)
    }
}
