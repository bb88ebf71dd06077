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

    /// [`PolishSchedule::due`], or the iterate passed the stopping test on a mask not tried
    /// yet (its polish makes the answer exact): the one rule of every loop.
    pub fn due_or_converged(&mut self, mask: Vec<u64>, iteration: usize, converged: bool) -> bool {
        self.due(mask, iteration) || (converged && !self.was_tried())
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
        self.current = mask;
        !self.was_tried()
    }
}

/// A point of the active-set polish, before it is judged.
pub(crate) struct Candidate<B: LinAlg> {
    /// `(x, s, lam, nu)` in the iterated problem's units, the multipliers as they came.
    pub iterate: Iterate<B>,
    /// Whether the solution is not unique (see [`polish`](self)).
    pub non_unique: bool,
    /// The limit system of the mask, when the dual-space polish made it.
    pub limit: Option<crate::solver::limit::Limit<B>>,
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

/// The factor a polish widens its regularization by when the factorization with
/// [`DELTA`] fails (measured on the Maros-Meszaros LPs: QBEACONF's sparse Cholesky fails at
/// `1e-6`, and `1e-4` everywhere converges too slowly in its refinement, PRIMALC1).
const WIDEN: f64 = 100.0;

/// The factor a polish shrinks its regularization by when its refinement stalls short of
/// [`SETTLED`] (scaled-rows-13 of `user_data_set(24, 3)`: `d = 0.18` against curvatures
/// near 1 gains 22% a round and stops at `3e-7` of the scale; `d / 1000` reaches rounding).
const SHRINK: f64 = 1e3;

/// A polish whose residual ends below this fraction of its scale is settled: rounding.
const SETTLED: f64 = 1e-11;

/// The KKT system of a polish, `P x + C_A'y = f`, `C_A x = e`.
struct PolishSystem<B: LinAlg> {
    c_a: B::Op,
    f: B::Mat,
    e: B::Mat,
}

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

/// Corrections of the active set a polish tries after its first point fails.
const CORRECTIONS: usize = 2;

/// Refinement rounds of the regularized polish at most (each a solve with its factor; they
/// go on while the residual falls by 10% or more: near-degenerate active sets converge at
/// the rate `d / (d + lambda)` of their smallest curvature `lambda`).
const ROUNDS: usize = 50;

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
    /// against the exact KKT system (and, with `uniqueness`, tested for other solutions);
    /// `None` when its factorization fails.
    pub(super) fn polish_primal(
        &self,
        it: &Iterate<B>,
        mask: &[B::Real],
        params: &QpParams<B>,
        uniqueness: bool,
    ) -> Result<Option<Candidate<B>>> {
        let (be, dims) = (&self.backend, self.dims);
        let (one, zero) = (B::Real::one(), B::Real::zero());
        let active = crate::solver::kkt::active_indices(mask);
        let g_act = be.op_select_rows(&self.g, &active)?;
        let c_a = be.op_stack_rows(&self.a, &g_act)?;
        let delta = self.polish_delta()?;
        // the smallest regularization whose factorization succeeds (rounding fails the
        // Cholesky of H_d first where the active rows are dependent and d is tiny)
        let Some((mut factor, mut d)) = self.factor_polish(&g_act, &[delta, delta * WIDEN])? else {
            return Ok(None);
        };
        let r = dims.p + active.len();
        // f = -q, e = [b; h_A], from the ADMM point
        let mut f = params.q.clone();
        be.axpby(-one, &params.q, zero, &mut f)?;
        let h = be.to_col_major(&params.h)?;
        let mut e_host = be.to_col_major(&params.b)?;
        e_host.extend(active.iter().map(|&i| h[i]));
        let system = PolishSystem {
            c_a,
            f,
            e: be.mat_from_col_major(r, 1, &e_host)?,
        };
        let nu = be.to_col_major(&it.nu)?;
        let mut y_host = be.to_col_major(&it.lam)?;
        y_host.extend(active.iter().map(|&i| nu[i]));
        let mut point = (it.x.clone(), be.mat_from_col_major(r, 1, &y_host)?);
        let mut settled = self.refine_polish(&system, &factor, d, &mut point)?;
        if settled.is_none() {
            return Ok(None);
        }
        // refinement converges at the rate d / (d + lambda) of the smallest curvature: where
        // it stalls short of full precision (d large against the curvature, data whose
        // columns' magnitudes differ), once more from there with a smaller d
        if settled == Some(false)
            && let Some((finer, fine_d)) = self.factor_polish(&g_act, &[d / SHRINK])?
        {
            (factor, d) = (finer, fine_d);
            settled = self.refine_polish(&system, &factor, d, &mut point)?;
            if settled.is_none() {
                return Ok(None);
            }
        }
        let (x, y) = point;
        let iterate = self.point_of_active(x, &y, &active, params)?;
        let non_unique = uniqueness && self.flat_directions(&factor, d)?;
        Ok(Some(Candidate {
            iterate,
            non_unique,
            limit: None,
        }))
    }

    /// The factorization of `H_d = P + d I + C_A'C_A / d` with the first `d` of `deltas`
    /// for which it succeeds, and that `d`; `None` when every one fails as not positive
    /// definite.
    fn factor_polish(&self, g_act: &B::Op, deltas: &[f64]) -> Result<Option<(B::Factor, f64)>> {
        for &d in deltas {
            let (rd, inv_d) = (B::Real::of(d), B::Real::of(1.0 / d));
            match self
                .backend
                .factor_shifted(&self.p, &self.a, g_act, inv_d, rd)
            {
                Ok(factor) => return Ok(Some((factor, d))),
                Err(Error::NotPositiveDefinite { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(None)
    }

    /// Iterative refinement of `point = (x, y)` against the exact KKT system of `system`,
    /// each correction solved with the regularized `factor` (`H_d`, regularization `d`), to
    /// full precision or until a round gains less than 10% ([`ROUNDS`] at most): `Some(true)`
    /// when the residual ends below [`SETTLED`] of its scale, `Some(false)` when it stalls
    /// above, `None` when it is not finite.
    fn refine_polish(
        &self,
        system: &PolishSystem<B>,
        factor: &B::Factor,
        d: f64,
        (x, y): &mut (B::Mat, B::Mat),
    ) -> Result<Option<bool>> {
        let be = &self.backend;
        let one = B::Real::one();
        let inv_d = B::Real::of(1.0 / d);
        let PolishSystem { c_a, f, e } = system;
        // the point's relative accuracy does not depend on the data's units
        let mut rounds = Rounds::new().with_rounds(ROUNDS, 0.9);
        let (mut rf, mut re, mut t) = (x.clone(), e.clone(), x.clone());
        loop {
            // rf = f - P x - C_A'y, re = e - C_A x
            be.apply(&mut rf, Accum::Replace, &self.p, Trans::No, x, -one)?;
            let px = be.norm_inf(&rf)?;
            be.apply(&mut t, Accum::Replace, c_a, Trans::Yes, y, one)?;
            let cty = be.norm_inf(&t)?;
            be.axpby(one, f, one, &mut rf)?;
            be.axpby(-one, &t, one, &mut rf)?;
            be.apply(&mut re, Accum::Replace, c_a, Trans::No, x, -one)?;
            let cx = be.norm_inf(&re)?;
            be.axpby(one, e, one, &mut re)?;
            let size = be.norm_inf(&rf)?.max(be.norm_inf(&re)?);
            let scale = px
                .max(cty)
                .max(cx)
                .max(be.norm_inf(f)?)
                .max(be.norm_inf(e)?);
            if !size.is_finite() {
                return Ok(None);
            }
            if !rounds.go_on(size, scale) {
                return Ok(Some(size <= B::Real::of(SETTLED) * scale));
            }
            // K_d [dx; dy] = [rf; re]
            be.copy_from(&mut t, &rf)?;
            be.apply(&mut t, Accum::Add, c_a, Trans::Yes, &re, inv_d)?;
            be.solve_in_place(factor, &mut t)?;
            let mut dy = re.clone();
            be.apply(&mut dy, Accum::Replace, c_a, Trans::No, &t, inv_d)?;
            be.axpby(-inv_d, &re, one, &mut dy)?;
            be.axpby(one, &t, one, x)?;
            be.axpby(one, &dy, one, y)?;
        }
    }

    /// The polish of the mask of the slack `s` (`m x 1`, zero on the active rows) by
    /// `solve`, judged by the residual rule on the user's problem; a point that fails is
    /// corrected up to [`CORRECTIONS`] times, as a primal-dual active-set step: the active
    /// rows whose multiplier came out negative leave the set, the rows the point violates
    /// join it (an ADMM iterate near convergence misses such rows, weakly active ones on
    /// degenerate LPs first of all). A correction that changes nothing ends it.
    pub(super) fn corrected_polish(
        &self,
        s: &B::Mat,
        params: &QpParams<B>,
        mut solve: impl FnMut(&[B::Real]) -> Result<Option<Candidate<B>>>,
    ) -> Result<Option<Polished<B>>> {
        let be = &self.backend;
        let (zero, one) = (B::Real::zero(), B::Real::one());
        let mut mask = be.to_col_major(s)?;
        for _ in 0..=CORRECTIONS {
            let Some(candidate) = solve(&mask)? else {
                return Ok(None);
            };
            let measures = self.measure(&candidate.iterate, params)?;
            if measures.passes {
                return Ok(Some(Polished {
                    iterate: candidate.iterate,
                    measures,
                    non_unique: candidate.non_unique,
                    limit: candidate.limit,
                }));
            }
            let slack = be.to_col_major(&candidate.iterate.s)?;
            let nu = be.to_col_major(&candidate.iterate.nu)?;
            let next: Vec<B::Real> = slack
                .iter()
                .zip(&nu)
                .map(|(&s, &nu)| if s <= zero && nu < zero { one } else { s })
                .collect();
            let active = |m: &[B::Real]| crate::solver::kkt::active_indices(m);
            if active(&next) == active(&mask) {
                return Ok(None);
            }
            mask = next;
        }
        Ok(None)
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
