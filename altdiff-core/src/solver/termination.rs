//! Residuals, objective and the stopping test.

use num_traits::{Float, One};

use crate::solver::iteration::{Iterate, Workspace};
use crate::{Accum, LinAlg, QpDims, QpParams, Real, Result, StoppingRule, Trans};

/// Residuals and objective of the forward iterate.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Measures<T> {
    /// `max(|Ax - b|, |Gx + s - h|)`.
    pub primal: T,
    /// `|Px + q + A'lam + G'nu|`.
    pub dual: T,
    /// `max(|Ax|, |b|, |Gx|, |s|, |h|)`.
    pub primal_scale: T,
    /// `max(|Px|, |q|, |A'lam|, |G'nu|)`.
    pub dual_scale: T,
    /// `1/2 x'Px + q'x`.
    pub objective: T,
}

impl<T: Real> Measures<T> {
    pub fn is_finite(&self) -> bool {
        [self.primal, self.dual, self.objective]
            .iter()
            .all(|v| v.is_finite())
    }
}

/// Scratch of [`Operators::measure`] for blocks of `k` columns.
#[derive(Debug)]
pub(crate) struct MeasureScratch<B: LinAlg> {
    ax: B::Mat,
    px: B::Mat,
    atl: B::Mat,
    gtn: B::Mat,
    ineq: B::Mat,
    grad: B::Mat,
}

impl<B: LinAlg> MeasureScratch<B> {
    pub fn new(backend: &B, dims: QpDims, k: usize) -> Result<Self> {
        Ok(Self {
            ax: backend.zeros(dims.p, k)?,
            px: backend.zeros(dims.n, k)?,
            atl: backend.zeros(dims.n, k)?,
            gtn: backend.zeros(dims.n, k)?,
            ineq: backend.zeros(dims.m, k)?,
            grad: backend.zeros(dims.n, k)?,
        })
    }
}

/// The products of a primal-dual point that its measures need: `Px`, `Ax`, `Gx`, `A'lam`
/// and `G'nu` (the refinement of the polish computes them too; in the user's units they
/// follow from the scaled problem's by diagonal scalings).
#[derive(Clone, Debug)]
pub(crate) struct Products<B: LinAlg> {
    pub px: B::Mat,
    pub ax: B::Mat,
    pub gx: B::Mat,
    pub atl: B::Mat,
    pub gtn: B::Mat,
}

/// The operators the residuals need.
pub(crate) struct Operators<'a, B: LinAlg> {
    pub backend: &'a B,
    pub p: &'a B::Op,
    pub a: &'a B::Op,
    pub g: &'a B::Op,
}

impl<B: LinAlg> Operators<'_, B> {
    /// `P x` into `dst`.
    pub fn p_times(&self, dst: &mut B::Mat, x: &B::Mat) -> Result<()> {
        self.backend
            .apply(dst, Accum::Replace, self.p, Trans::No, x, B::Real::one())
    }

    /// Residuals and objective of `it` (whose `Gx` is in `ws.gx`) for the data `(q, b, h)`.
    ///
    /// For a tangent block, `(q, b, h)` are the derivatives of the data `(dq, db, dh)` and
    /// the residuals are those of the differentiated KKT conditions (the "objective" is
    /// then meaningless and unused).
    pub fn measure(
        &self,
        it: &Iterate<B>,
        params: &QpParams<B>,
        ws: &Workspace<B>,
        sc: &mut MeasureScratch<B>,
    ) -> Result<Measures<B::Real>> {
        let (be, one) = (self.backend, B::Real::one());
        be.apply(&mut sc.ax, Accum::Replace, self.a, Trans::No, &it.x, one)?;
        self.p_times(&mut sc.px, &it.x)?;
        be.apply(
            &mut sc.atl,
            Accum::Replace,
            self.a,
            Trans::Yes,
            &it.lam,
            one,
        )?;
        be.apply(&mut sc.gtn, Accum::Replace, self.g, Trans::Yes, &it.nu, one)?;
        measures_of(be, it, params, &ws.gx, sc)
    }

    /// The products of `it` (`x` and `(lam, nu)`, blocks of any width).
    pub fn products(&self, it: &Iterate<B>) -> Result<Products<B>> {
        self.products_of(&it.x, &it.lam, &it.nu)
    }

    /// The products of `x` and `(lam, nu)` (blocks of any width).
    pub fn products_of(&self, x: &B::Mat, lam: &B::Mat, nu: &B::Mat) -> Result<Products<B>> {
        let be = self.backend;
        let k = be.shape(x).1;
        let product = |op: &B::Op, trans: Trans, rhs: &B::Mat| -> Result<B::Mat> {
            let (rows, cols) = be.op_shape(op);
            let mut out = be.zeros(if trans == Trans::No { rows } else { cols }, k)?;
            be.apply(&mut out, Accum::Replace, op, trans, rhs, B::Real::one())?;
            Ok(out)
        };
        Ok(Products {
            px: product(self.p, Trans::No, x)?,
            ax: product(self.a, Trans::No, x)?,
            gx: product(self.g, Trans::No, x)?,
            atl: product(self.a, Trans::Yes, lam)?,
            gtn: product(self.g, Trans::Yes, nu)?,
        })
    }

    /// The objective `1/2 x'Px + q'x` alone.
    pub fn objective(&self, x: &B::Mat, q: &B::Mat, sc: &mut MeasureScratch<B>) -> Result<B::Real> {
        self.p_times(&mut sc.px, x)?;
        objective_from_px(self.backend, x, q, sc)
    }
}

/// [`Operators::measure`] of a point `it` (one column) whose products are known: no product
/// with an operator.
pub(crate) fn measure_products<B: LinAlg>(
    backend: &B,
    it: &Iterate<B>,
    params: &QpParams<B>,
    products: Products<B>,
) -> Result<Measures<B::Real>> {
    let Products {
        px,
        ax,
        gx,
        atl,
        gtn,
    } = products;
    let ((m, k), n) = (backend.shape(&gx), backend.shape(&px).0);
    let (ineq, grad) = (backend.zeros(m, k)?, backend.zeros(n, k)?);
    let mut sc = MeasureScratch {
        ax,
        px,
        atl,
        gtn,
        ineq,
        grad,
    };
    measures_of(backend, it, params, &gx, &mut sc)
}

/// The measures from the products in `sc` (`Ax`, `Px`, `A'lam`, `G'nu`) and `gx`.
fn measures_of<B: LinAlg>(
    be: &B,
    it: &Iterate<B>,
    params: &QpParams<B>,
    gx: &B::Mat,
    sc: &mut MeasureScratch<B>,
) -> Result<Measures<B::Real>> {
    let one = B::Real::one();
    let norm = |m: &B::Mat| be.norm_inf(m);
    // primal: Ax - b and Gx + s - h
    let primal_scale = max_of([
        norm(&sc.ax)?,
        norm(&params.b)?,
        norm(gx)?,
        norm(&it.s)?,
        norm(&params.h)?,
    ]);
    be.axpby(-one, &params.b, one, &mut sc.ax)?;
    let eq = norm(&sc.ax)?;
    be.copy_from(&mut sc.ineq, gx)?;
    be.axpby(one, &it.s, one, &mut sc.ineq)?;
    be.axpby(-one, &params.h, one, &mut sc.ineq)?;
    let ineq = norm(&sc.ineq)?;
    // dual: Px + q + A'lam + G'nu
    let dual_scale = max_of([
        norm(&sc.px)?,
        norm(&params.q)?,
        norm(&sc.atl)?,
        norm(&sc.gtn)?,
    ]);
    let objective = objective_from_px(be, &it.x, &params.q, sc)?;
    // finish the dual residual in px
    be.axpby(one, &params.q, one, &mut sc.px)?;
    be.axpby(one, &sc.atl, one, &mut sc.px)?;
    be.axpby(one, &sc.gtn, one, &mut sc.px)?;
    let dual = norm(&sc.px)?;
    Ok(Measures {
        primal: max_of([eq, ineq]),
        dual,
        primal_scale,
        dual_scale,
        objective,
    })
}

/// `x'(Px/2 + q)` with `Px` already in `sc.px`.
fn objective_from_px<B: LinAlg>(
    be: &B,
    x: &B::Mat,
    q: &B::Mat,
    sc: &mut MeasureScratch<B>,
) -> Result<B::Real> {
    be.copy_from(&mut sc.grad, q)?;
    be.axpby(B::Real::of(0.5), &sc.px, B::Real::one(), &mut sc.grad)?;
    be.dot(x, &sc.grad)
}

/// The largest of some norms, NaN-propagating.
pub(crate) fn max_of<T: Real, const K: usize>(values: [T; K]) -> T {
    values.into_iter().fold(T::zero(), crate::kernels::max_abs)
}

/// What the previous iterate looked like, for the rules that compare successive iterates.
pub(crate) struct Previous<B: LinAlg> {
    /// `x_{k-1}` (for [`StoppingRule::RelativeX`]).
    pub x: Option<B::Mat>,
    /// `f(x_{k-1})` (for [`StoppingRule::RelativeObjective`]).
    pub objective: Option<B::Real>,
}

/// The residual test of [`StoppingRule::Residual`] on one block's measures.
pub(crate) fn residuals_small<T: Real>(m: &Measures<T>, eps_abs: f64, eps_rel: f64) -> bool {
    let (abs, rel) = (T::of(eps_abs), T::of(eps_rel));
    m.primal <= abs + rel * m.primal_scale && m.dual <= abs + rel * m.dual_scale
}

/// The stopping test of the forward iterate, given its measures and the previous iterate.
pub(crate) fn converged<B: LinAlg>(
    backend: &B,
    rule: StoppingRule,
    now: &Measures<B::Real>,
    x: &B::Mat,
    prev: &Previous<B>,
) -> Result<bool> {
    let of = B::Real::of;
    Ok(match rule {
        StoppingRule::Residual { eps_abs, eps_rel } => residuals_small(now, eps_abs, eps_rel),
        StoppingRule::RelativeObjective(tol) => match prev.objective {
            Some(f_prev) => (now.objective - f_prev).abs() <= of(tol) * f_prev.abs(),
            None => false,
        },
        StoppingRule::RelativeX(tol) => match &prev.x {
            Some(x_prev) => {
                change(backend, x, x_prev)?
                    <= of(tol) * backend.norm_inf(x_prev)?.max(B::Real::one())
            }
            None => false,
        },
        StoppingRule::Fixed(_) => false,
    })
}

/// `|a - b|_inf`.
fn change<B: LinAlg>(backend: &B, a: &B::Mat, b: &B::Mat) -> Result<B::Real> {
    let mut d = a.clone();
    backend.axpby(-B::Real::one(), b, B::Real::one(), &mut d)?;
    backend.norm_inf(&d)
}
