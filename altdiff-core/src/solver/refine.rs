//! Iterative refinement of the active-set solves of the limit system, for backends whose
//! factorization of `H` is coarser than their arithmetic ([`LinAlg::factor_epsilon`]).
//!
//! The limit system (see [`limit`](super::limit)) solves the KKT system of one active set
//! `A` (the equalities and the inequalities with `s = 0`; `y = 0` on the rows `I` of the
//! others):
//!
//! ```text
//! P x + C_A' y_A = f,     C_A x = e_A
//! ```
//!
//! through `H^-1`, `M = C H^-1 C'` and `K`. With `H` factored in single precision, the
//! solution it returns is that of a nearby system: off by about `cond(H) * 6e-8`. Its
//! residuals, computed with the full-precision `P` and `C`, are the right-hand side of a
//! correction solved by the same (coarse) system; each round gains about as many digits as
//! the coarse solve has, so two or three rounds reach full precision
//! (mixed-precision iterative refinement: the `O(n^3)` work in `f32`, `O(n^2)` per round in
//! `f64`). The forward polish (`f = -q`, `e = [b; h]`) and the limit VJP (`f = g`, `e = 0`:
//! the system is symmetric) share it. Under the residual rule the rounds end as soon as the
//! residual is a thousandth of the rule's tolerance (usually after one correction), not at
//! full precision: a round costs about a tenth of the solve's iterations.

use num_traits::{Float, One, Zero};

use crate::solver::AltDiff;
use crate::solver::dual::{DualKernel, DualOps, stack, unstack};
use crate::solver::limit::Limit;
use crate::solver::termination::{Operators, Products};
use crate::{Accum, LinAlg, Real, Result, Trans};

/// The most correction rounds of one refinement.
const MAX_ROUNDS: usize = 5;
/// A residual this far (relative) below its scale is full precision: refinement ends.
const DONE: f64 = 1e-14;
/// Under the residual rule, a residual this far below the rule's tolerance
/// `eps_abs + eps_rel * scale` is accurate enough: refinement ends there too.
const MARGIN: f64 = 1e-3;

/// Whether `backend` factors `H` coarser than it computes (see [`refine`](self)).
pub(crate) fn is_coarse<B: LinAlg>(backend: &B) -> bool {
    backend.factor_epsilon() > 16.0 * <B::Real as Float>::epsilon().to_f64_lossy()
}

/// The rounds of one refinement: a correction while the residual is above [`DONE`] of its
/// scale (and [`MARGIN`] of the tolerance, when one is set) and at most half the last one,
/// at most [`MAX_ROUNDS`] times.
pub(crate) struct Rounds<T> {
    last: T,
    left: usize,
    /// A round must bring the residual below this fraction of the last one (default 1/2).
    progress: T,
    /// `(eps_abs, eps_rel)` of the residual rule.
    tolerance: Option<(T, T)>,
}

impl<T: Real> Rounds<T> {
    pub fn new() -> Self {
        Self {
            last: T::infinity(),
            left: MAX_ROUNDS,
            progress: T::of(0.5),
            tolerance: None,
        }
    }

    /// At most `rounds` corrections (instead of [`MAX_ROUNDS`]), each bringing the residual
    /// below `progress` times the last one (instead of a half).
    pub fn with_rounds(mut self, rounds: usize, progress: f64) -> Self {
        self.left = rounds;
        self.progress = T::of(progress);
        self
    }

    /// Rounds that also end once the residual is [`MARGIN`] below `eps_abs + eps_rel *
    /// scale`: the solver's own tolerance, not full precision.
    pub fn within(mut self, eps_abs: f64, eps_rel: f64) -> Self {
        self.tolerance = Some((T::of(eps_abs), T::of(eps_rel)));
        self
    }

    /// Whether a residual of `size` (inf-norm) at `scale` is worth a correction.
    pub fn go_on(&mut self, size: T, scale: T) -> bool {
        let enough = self
            .tolerance
            .map_or(T::zero(), |(abs, rel)| T::of(MARGIN) * (abs + rel * scale));
        let go = self.left > 0
            && size > T::of(DONE) * scale
            && size > enough
            && size < self.last * self.progress;
        self.last = size;
        self.left = self.left.saturating_sub(1);
        go
    }
}

/// The residuals of a KKT block `[P C'; C 0] [x; y] = [f; e]` in full precision.
pub(crate) struct Residual<B: LinAlg> {
    /// `f - P x - C'y`.
    pub f: B::Mat,
    /// `e - C x` on the rows that are equations.
    pub e: B::Mat,
    /// The larger inf-norm of the two.
    pub size: B::Real,
    /// The largest of `|f|`, `|P x|`, `|e|`, `|C x|` (inf-norms; `e` and `C x` on the rows
    /// that are equations).
    pub scale: B::Real,
}

impl<B: LinAlg> Residual<B> {
    /// The residuals of `(x, y)` for `(f, e)`; `keep` drops the rows of `e - C x` that are
    /// not equations.
    pub fn of(
        backend: &B,
        [p, c]: [&B::Op; 2],
        (f, e): (&B::Mat, &B::Mat),
        (x, y): (&B::Mat, &B::Mat),
        keep: impl Fn(&B::Mat) -> Result<B::Mat>,
    ) -> Result<Self> {
        let one = B::Real::one();
        let (mut px, mut cty, mut cx) = (f.clone(), f.clone(), e.clone());
        backend.apply(&mut px, Accum::Replace, p, Trans::No, x, one)?;
        backend.apply(&mut cty, Accum::Replace, c, Trans::Yes, y, one)?;
        backend.apply(&mut cx, Accum::Replace, c, Trans::No, x, one)?;
        Self::from_products(backend, (f, e), [px, cx, cty], keep)
    }

    /// [`Residual::of`] with `C = [A; G]` in its two blocks, and the products it took: those
    /// of the measures of `(x, y)` ([`measure_products`](crate::solver::termination::measure_products)).
    pub fn of_parts(
        backend: &B,
        [p, a, g]: [&B::Op; 3],
        (f, e): (&B::Mat, &B::Mat),
        (x, y): (&B::Mat, &B::Mat),
        keep: impl Fn(&B::Mat) -> Result<B::Mat>,
    ) -> Result<(Self, Products<B>)> {
        let one = B::Real::one();
        let (lam, nu) = unstack(backend, y, backend.op_shape(a).0)?;
        let ops = Operators { backend, p, a, g };
        let products = ops.products_of(x, &lam, &nu)?;
        let cx = stack(backend, &products.ax, &products.gx)?;
        let mut cty = products.atl.clone();
        backend.axpby(one, &products.gtn, one, &mut cty)?;
        let residual = Self::from_products(backend, (f, e), [products.px.clone(), cx, cty], keep)?;
        Ok((residual, products))
    }

    /// The residuals from `[P x, C x, C'y]`.
    fn from_products(
        backend: &B,
        (f, e): (&B::Mat, &B::Mat),
        [px, cx, cty]: [B::Mat; 3],
        keep: impl Fn(&B::Mat) -> Result<B::Mat>,
    ) -> Result<Self> {
        let one = B::Real::one();
        // the scale of the equations only: the bound of an inactive row (a loose `h_i = 1e10`)
        // would end the refinement at once
        let (e_kept, cx_kept) = (keep(e)?, keep(&cx)?);
        let scale = (backend.norm_inf(&px)?.max(backend.norm_inf(f)?))
            .max(backend.norm_inf(&cx_kept)?)
            .max(backend.norm_inf(&e_kept)?);
        let (mut rf, mut re) = (px, cx_kept);
        backend.axpby(one, f, -one, &mut rf)?;
        backend.axpby(-one, &cty, one, &mut rf)?;
        backend.axpby(one, &e_kept, -one, &mut re)?;
        let size = backend.norm_inf(&rf)?.max(backend.norm_inf(&re)?);
        Ok(Self {
            f: rf,
            e: re,
            size,
            scale,
        })
    }
}

impl<B: LinAlg> AltDiff<B> {
    /// Whether the factorization of `H` is coarse enough for the limit's solves to be
    /// refined (see [`refine`](self)).
    pub(super) fn refines(&self) -> bool {
        is_coarse(&self.backend)
    }

    /// The kernel of the dual-space iteration on `dual`.
    pub(super) fn dual_kernel<'a>(&'a self, dual: &'a DualOps<B>) -> DualKernel<'a, B> {
        DualKernel {
            backend: &self.backend,
            ops: dual,
            factor: &self.factor,
            rho: self.rho,
            alpha: B::Real::of(self.settings.alpha),
        }
    }

    /// `(x, y)` with `P x + C_A' y_A = f`, `C_A x = e_A` and `y_I = 0`, by the limit system
    /// (`f`: `n x k`; `e`: `r x k`, its rows of `I` unused). As ADMM data: `c = q = -f`,
    /// `[b; h] = e`; then `v = -S^-1 (C H^-1 c + (I - D) e)`, `x = -H^-1 (c + C'v) =
    /// H^-1 (f - C'v)` and `y = v + rho e` on `A`: one solve with `H` split around `S`
    /// ([`LinAlg::solve_split`], [`LinAlg::solve_join`]).
    pub(super) fn active_solve(
        &self,
        dk: &DualKernel<'_, B>,
        system: &Limit<B>,
        f: &B::Mat,
        e: &B::Mat,
    ) -> Result<(B::Mat, B::Mat)> {
        let (be, one, rho) = (&self.backend, B::Real::one(), dk.rho);
        let e = system.without_inactive(be, e)?;
        let (chf, t) = be.solve_split(dk.factor, &dk.ops.c, f)?;
        let mut chc = chf.clone();
        be.axpby(-one, &chf, B::Real::zero(), &mut chc)?;
        let v = system.point_of(be, &chc, &e)?;
        let x = be.solve_join(dk.factor, &dk.ops.c, t, &v)?;
        let mut y = v;
        be.axpby(rho, &e, one, &mut y)?;
        Ok((x, system.without_inactive(be, &y)?))
    }

    /// Refines `(x, y)` of [`AltDiff::active_solve`] for `(f, e)`: while the residuals
    /// `f - P x - C'y` and `e_A - C_A x` (in full precision) are worth it ([`Rounds`]), a
    /// correction solved for them is added. Returns the products of the last residual, those
    /// of the refined `(x, y)`.
    pub(super) fn refine(
        &self,
        dk: &DualKernel<'_, B>,
        system: &Limit<B>,
        (f, e): (&B::Mat, &B::Mat),
        (x, y): (&mut B::Mat, &mut B::Mat),
    ) -> Result<Products<B>> {
        let (be, one) = (&self.backend, B::Real::one());
        let mut rounds = match self.settings.stopping {
            crate::StoppingRule::Residual { eps_abs, eps_rel } => {
                Rounds::new().within(eps_abs, eps_rel)
            }
            _ => Rounds::new(),
        };
        loop {
            let (res, products) =
                Residual::of_parts(be, [&self.p, &self.a, &self.g], (f, e), (x, y), |re| {
                    system.without_inactive(be, re)
                })?;
            if !rounds.go_on(res.size, res.scale) {
                return Ok(products);
            }
            let (dx, dy) = self.active_solve(dk, system, &res.f, &res.e)?;
            be.axpby(one, &dx, one, x)?;
            be.axpby(one, &dy, one, y)?;
        }
    }

    /// The limit VJP's adjoints `(J_q'g, J_b'g, J_h'g)` for the seeds `g` refined: they are
    /// `(-u, mu_b, mu_h)` for `P u + C_A' mu_A = g`, `C_A u = 0`, `mu_I = 0`. The start is
    /// the limit system's `(zeta, w)` ([`AltDiff::limit_grads`]): `u = zeta` and `mu_A =
    /// w_A` (the terms `rho C_A zeta` of the unrefined adjoints vanish on `A`, so they are
    /// not formed).
    pub(super) fn refine_grads(
        &self,
        dual: &DualOps<B>,
        system: &Limit<B>,
        g: &B::Mat,
        (zeta, w): (B::Mat, &B::Mat),
    ) -> Result<(B::Mat, B::Mat, B::Mat)> {
        let (be, one, zero) = (&self.backend, B::Real::one(), B::Real::zero());
        let mut u = zeta;
        let mut mu = system.without_inactive(be, w)?;
        let none = be.zeros(be.shape(&mu).0, be.shape(&mu).1)?;
        self.refine(
            &self.dual_kernel(dual),
            system,
            (g, &none),
            (&mut u, &mut mu),
        )?;
        let mut q = u.clone();
        be.axpby(-one, &u, zero, &mut q)?;
        let (b, h) = unstack(be, &mu, self.dims.p)?;
        Ok((q, b, h))
    }
}
