//! The stopping test, written once for every loop (the single solve in the primal and the
//! dual space, batches, the active-set polish, the smooth solver): what "solved" means.
//!
//! A point `(x, lam, nu)` passes the residual rule at `(eps_abs, eps_rel)` when, **on the
//! user's problem** (the data as given, whatever equilibration the iteration runs on) and
//! **row by row** (one row's magnitude never loosens the test of another):
//!
//! ```text
//! equality i:     |A_i x - b_i|        <= eps_abs + eps_rel max(|A_i x|, |b_i|)
//! inequality i:   max(G_i x - h_i, 0)  <= eps_abs + eps_rel max(|G_i x|, |h_i|)
//! variable j:     |(Px + q + A'lam + G'nu)_j| <= eps_abs + eps_rel max(|Px|_j, |q_j|, |A'lam|_j, |G'nu|_j)
//! duality gap:    |x'Px + q'x + b'lam + h'nu| <= eps_abs + eps_rel max(|x'Px|, |q'x|, |b'lam + h'nu|)
//! ```
//!
//! with `nu` the iterate's inequality duals clipped at zero and set to zero on the rows
//! whose slack is positive (the ADMM update leaves there only the rounding of `h - Gx`,
//! which times a bound like `1e10` would swamp the gap). The gap makes a passing objective
//! right: `f(x) - d(lam, nu)` is the gap up to the residuals, so a point cannot pass with
//! its residuals small only because the rows are scaled. The test reads host copies of the
//! residual vectors: a check downloads `O(n + p + m)` numbers per column.

use num_traits::One;

use crate::solver::iteration::Iterate;
use crate::{Accum, LinAlg, QpDims, QpParams, Real, Result, StoppingRule, Trans};

/// The residual rule's tolerances.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) struct Criterion {
    pub eps_abs: f64,
    pub eps_rel: f64,
}

impl Criterion {
    /// The criterion of `rule` when it is the residual rule.
    pub fn of(rule: StoppingRule) -> Option<Self> {
        match rule {
            StoppingRule::Residual { eps_abs, eps_rel } => Some(Self { eps_abs, eps_rel }),
            _ => None,
        }
    }

    /// The bound `eps_abs + eps_rel scale`.
    fn bound(&self, scale: f64) -> f64 {
        self.eps_abs + self.eps_rel * scale
    }

    /// The measures of a solution column (in the iterated problem's units) on the user's
    /// problem (`units` maps them there) and whether they pass: one pass over its rows and
    /// variables, `p` equalities first.
    pub fn point(&self, c: &Column<'_>, p: usize, units: &Units) -> Measures {
        let factor = |f: &[f64], i: usize| f.get(i).copied().unwrap_or(1.0);
        let mut rows = Rows::default();
        let (mut consistency, mut consistency_scale) = (0.0, 0.0_f64);
        for i in 0..c.cx.len() {
            let (cx, bh) = (c.cx[i], c.bh[i]);
            let s = if i < p { 0.0 } else { c.s[i - p] };
            let residual = if i < p { cx - bh } else { (cx - bh).max(0.0) };
            rows.add(
                self,
                residual,
                cx.abs().max(bh.abs()),
                factor(&units.rows, i),
            );
            consistency = crate::kernels::max_abs(consistency, cx + s - bh);
            consistency_scale = consistency_scale.max(cx.abs()).max((bh - s).abs());
        }
        let mut vars = Rows::default();
        let (mut dual_iterated, mut dual_scale) = (0.0, 0.0_f64);
        for j in 0..c.px.len() {
            let (sum, scale) = dual_terms(c, j);
            vars.add(self, sum, scale, factor(&units.cols, j));
            dual_iterated = crate::kernels::max_abs(dual_iterated, sum);
            dual_scale = dual_scale.max(scale);
        }
        let bhy: f64 = c.bh.iter().zip(c.y).map(|(a, b)| a * b).sum();
        let gap = (c.xpx + c.qx + bhy).abs() * units.cost;
        let gap_scale = c.xpx.abs().max(c.qx.abs()).max(bhy.abs()) * units.cost;
        Measures {
            primal: rows.worst,
            dual: vars.worst,
            gap,
            objective: (0.5 * c.xpx + c.qx) * units.cost,
            passes: rows.pass && vars.pass && gap <= self.bound(gap_scale),
            balance: [
                consistency / consistency_scale.max(1e-30),
                dual_iterated / dual_scale.max(1e-30),
            ],
        }
    }

    /// Whether the primal rows of a solution column pass (`cx`, `bh`: its `Cx` and
    /// `[b; h]`, `p` equalities first): the part of [`Criterion::point`] that needs no
    /// product with `C'` in the dual space (a check whose primal rows fail skips them).
    pub fn primal_passes(&self, cx: &[f64], bh: &[f64], p: usize, units: &Units) -> bool {
        let factor = |i: usize| units.rows.get(i).copied().unwrap_or(1.0);
        let mut rows = Rows::default();
        for i in 0..cx.len() {
            let residual = if i < p {
                cx[i] - bh[i]
            } else {
                (cx[i] - bh[i]).max(0.0)
            };
            rows.add(self, residual, cx[i].abs().max(bh[i].abs()), factor(i));
        }
        rows.pass
    }

    /// Whether a tangent column passes the test on the differentiated KKT conditions
    /// `C J_x + J_s - d[b; h]` and `P J_x + E + C'J_y` (no gap; the iterated units).
    pub fn tangent(&self, c: &Column<'_>, p: usize) -> bool {
        let mut rows = Rows::default();
        for i in 0..c.cx.len() {
            let s = if i < p { 0.0 } else { c.s[i - p] };
            let scale = c.cx[i].abs().max(c.bh[i].abs()).max(s.abs());
            rows.add(self, c.cx[i] + s - c.bh[i], scale, 1.0);
        }
        for j in 0..c.px.len() {
            let (sum, scale) = dual_terms(c, j);
            rows.add(self, sum, scale, 1.0);
        }
        rows.pass
    }
}

/// `(Px + q + C'y)_j` and its scale `max(|Px|_j, |q_j|, |C'y|_j)`.
fn dual_terms(c: &Column<'_>, j: usize) -> (f64, f64) {
    let terms = [c.px[j], c.q[j], c.cty[j]];
    let scale = terms.iter().fold(0.0, |a: f64, t| a.max(t.abs()));
    (terms.iter().sum(), scale)
}

/// The largest residual of some rows in the user's units, and whether every row passes.
struct Rows {
    worst: f64,
    pass: bool,
}

impl Default for Rows {
    fn default() -> Self {
        Self {
            worst: 0.0,
            pass: true,
        }
    }
}

impl Rows {
    /// A row with `residual` and `scale` (iterated units) and the unit factor `f`; NaN fails.
    fn add(&mut self, criterion: &Criterion, residual: f64, scale: f64, f: f64) {
        let (r, s) = (residual.abs() * f, scale * f);
        self.worst = crate::kernels::max_abs(self.worst, r);
        self.pass = self.pass && r <= criterion.bound(s);
    }
}

/// The diagonal maps from the iterated problem's residuals to the user's: `user = factor
/// iterated`, per stacked row (`1 / e_i`), per variable (`1 / (c d_j)`) and for the gap and
/// objective (`1 / c`). Empty factors are ones (no equilibration).
#[derive(Clone, Debug)]
pub(crate) struct Units {
    pub rows: Vec<f64>,
    pub cols: Vec<f64>,
    pub cost: f64,
}

impl Units {
    /// The identity (the solver iterates on the user's problem).
    pub fn identity() -> Self {
        Self {
            rows: Vec::new(),
            cols: Vec::new(),
            cost: 1.0,
        }
    }
}

/// What a check measured on the user's problem.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Measures {
    /// The largest equality residual or inequality violation.
    pub primal: f64,
    /// `|Px + q + A'lam + G'nu|_inf`.
    pub dual: f64,
    /// `|x'Px + q'x + b'lam + h'nu|`.
    pub gap: f64,
    /// `1/2 x'Px + q'x`.
    pub objective: f64,
    /// Whether the residual rule passes.
    pub passes: bool,
    /// The ADMM residuals `|Cx + s - [b; h]|` and `|Px + q + C'y|` over their scales, in the
    /// iterated problem's units (residual balancing of the penalty).
    pub balance: [f64; 2],
}

impl Measures {
    /// The measures of a check that found the primal rows failing and measured no more:
    /// not passing, finite (the caller checked; the primal residual is only known to be
    /// too large: `f64::MAX`), nothing to report or balance.
    pub fn unfinished() -> Self {
        Self {
            primal: f64::MAX,
            dual: 0.0,
            gap: 0.0,
            objective: 0.0,
            passes: false,
            balance: [1.0, 1.0],
        }
    }

    /// Whether the measures are finite.
    pub fn is_finite(&self) -> bool {
        self.primal.is_finite() && self.dual.is_finite() && self.objective.is_finite()
    }
}

/// One column of a point on the host: the inequality slack `s`, the stacked duals `y`
/// (`nu` cleaned), `Cx = [Ax; Gx]`, `[b; h]`, `Px`, `q`, `C'y = A'lam + G'nu`, and the
/// products `x'Px`, `q'x` (the dual-space iteration forms them without `x`).
pub(crate) struct Column<'a> {
    pub s: &'a [f64],
    pub y: &'a [f64],
    pub cx: &'a [f64],
    pub bh: &'a [f64],
    pub px: &'a [f64],
    pub q: &'a [f64],
    pub cty: &'a [f64],
    pub xpx: f64,
    pub qx: f64,
}

/// A block of `k` points on the host (column-major, one column per point), with its data.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostBlock {
    pub dims: QpDims,
    pub k: usize,
    pub s: Vec<f64>,
    /// Stacked `[lam; nu]` (`r x k`).
    pub y: Vec<f64>,
    /// Stacked `[Ax; Gx]`.
    pub cx: Vec<f64>,
    /// Stacked `[b; h]`.
    pub bh: Vec<f64>,
    pub px: Vec<f64>,
    pub q: Vec<f64>,
    /// `C'y = A'lam + G'nu`.
    pub cty: Vec<f64>,
    /// `x'Px` and `q'x` per column.
    pub xpx: Vec<f64>,
    pub qx: Vec<f64>,
}

impl HostBlock {
    /// Column `j`.
    pub fn column(&self, j: usize) -> Column<'_> {
        let QpDims { n, p, m } = self.dims;
        let r = p + m;
        let col = |v: &'_ [f64], rows: usize| -> std::ops::Range<usize> {
            debug_assert!(v.len() >= (j + 1) * rows);
            j * rows..(j + 1) * rows
        };
        Column {
            s: &self.s[col(&self.s, m)],
            y: &self.y[col(&self.y, r)],
            cx: &self.cx[col(&self.cx, r)],
            bh: &self.bh[col(&self.bh, r)],
            px: &self.px[col(&self.px, n)],
            q: &self.q[col(&self.q, n)],
            cty: &self.cty[col(&self.cty, n)],
            xpx: self.xpx.get(j).copied().unwrap_or(0.0),
            qx: self.qx.get(j).copied().unwrap_or(0.0),
        }
    }

    /// The measures of every column of a solution block (see [`Criterion::point`]).
    pub fn measures(&self, criterion: &Criterion, units: &Units) -> Vec<Measures> {
        (0..self.k)
            .map(|j| criterion.point(&self.column(j), self.dims.p, units))
            .collect()
    }

    /// Whether every column of a tangent block passes (see [`Criterion::tangent`]).
    pub fn tangents_pass(&self, criterion: &Criterion) -> bool {
        (0..self.k).all(|j| criterion.tangent(&self.column(j), self.dims.p))
    }
}

/// Stacks the host columns of `top` (`p x k`) over those of `bottom` (`m x k`).
pub(crate) fn stack_host(top: &[f64], bottom: &[f64], p: usize, m: usize, k: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity((p + m) * k);
    for j in 0..k {
        out.extend_from_slice(&top[j * p..(j + 1) * p]);
        out.extend_from_slice(&bottom[j * m..(j + 1) * m]);
    }
    out
}

/// The products of a primal-dual point that its measures need: `Px`, `Ax`, `Gx`, `A'lam`
/// and `G'nu`.
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
    pub fn objective(&self, x: &B::Mat, q: &B::Mat) -> Result<B::Real> {
        let be = self.backend;
        let mut grad = q.clone();
        self.p_times(&mut grad, x)?;
        be.axpby(B::Real::one(), q, B::Real::of(0.5), &mut grad)?;
        be.dot(x, &grad)
    }

    /// The iterate `it` (k columns) with its duals cleaned ([`clean_duals`]), its products
    /// and the data `params`, on the host: what the residuals of a solution need.
    pub fn host_point(&self, it: &Iterate<B>, params: &QpParams<B>) -> Result<HostBlock> {
        let nu = clean_duals(self.backend, &it.s, &it.nu)?;
        let products = self.products_of(&it.x, &it.lam, &nu)?;
        let cleaned = Iterate {
            x: it.x.clone(),
            s: it.s.clone(),
            lam: it.lam.clone(),
            nu,
        };
        download_block(self.backend, &cleaned, &products, params)
    }

    /// A tangent block (k columns) and the derivatives of the data `(dq, db, dh)` on the
    /// host: what the residuals of the differentiated KKT conditions need.
    pub fn host_tangent(&self, it: &Iterate<B>, data: &QpParams<B>) -> Result<HostBlock> {
        let products = self.products(it)?;
        download_block(self.backend, it, &products, data)
    }
}

/// The host copies of a block, its products and its data.
pub(crate) fn download_block<B: LinAlg>(
    backend: &B,
    it: &Iterate<B>,
    products: &Products<B>,
    params: &QpParams<B>,
) -> Result<HostBlock> {
    let down = |m: &B::Mat| crate::solver::tangent::download(backend, m);
    let (n, k) = backend.shape(&it.x);
    let (p, m) = (backend.shape(&it.lam).0, backend.shape(&it.s).0);
    let dims = QpDims { n, p, m };
    let (x, px, q) = (down(&it.x)?, down(&products.px)?, down(&params.q)?);
    let mut cty = down(&products.atl)?;
    cty.iter_mut()
        .zip(down(&products.gtn)?)
        .for_each(|(a, g)| *a += g);
    let dots = |u: &[f64]| -> Vec<f64> {
        (0..k)
            .map(|j| {
                let column = j * n..(j + 1) * n;
                x[column.clone()]
                    .iter()
                    .zip(&u[column])
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect()
    };
    Ok(HostBlock {
        dims,
        k,
        xpx: dots(&px),
        qx: dots(&q),
        s: down(&it.s)?,
        y: stack_host(&down(&it.lam)?, &down(&it.nu)?, p, m, k),
        cx: stack_host(&down(&products.ax)?, &down(&products.gx)?, p, m, k),
        bh: stack_host(&down(&params.b)?, &down(&params.h)?, p, m, k),
        px,
        q,
        cty,
    })
}

/// The inequality duals `nu` clipped at zero and zeroed where the slack `s` is positive:
/// there the ADMM update leaves only rounding (see the module docs).
pub(crate) fn clean_duals<B: LinAlg>(backend: &B, s: &B::Mat, nu: &B::Mat) -> Result<B::Mat> {
    let one = B::Real::one();
    let mut on_inactive = nu.clone();
    backend.dproj_nonneg(s, &mut on_inactive)?;
    let mut cleaned = nu.clone();
    backend.axpby(-one, &on_inactive, one, &mut cleaned)?;
    backend.proj_nonneg(&mut cleaned)?;
    Ok(cleaned)
}

/// What the previous iterate looked like, for the rules that compare successive iterates.
pub(crate) struct Previous<B: LinAlg> {
    /// `x_{k-1}` (for [`StoppingRule::RelativeX`]).
    pub x: Option<B::Mat>,
    /// `f(x_{k-1})` (for [`StoppingRule::RelativeObjective`]).
    pub objective: Option<f64>,
}

/// The test of the rules that compare successive iterates ([`StoppingRule::RelativeObjective`],
/// [`StoppingRule::RelativeX`]); `Fixed` never passes and the residual rule is judged by
/// [`Criterion`].
pub(crate) fn changes_small<B: LinAlg>(
    backend: &B,
    rule: StoppingRule,
    objective: f64,
    x: &B::Mat,
    prev: &Previous<B>,
) -> Result<bool> {
    Ok(match rule {
        StoppingRule::RelativeObjective(tol) => match prev.objective {
            Some(f_prev) => (objective - f_prev).abs() <= tol * f_prev.abs(),
            None => false,
        },
        StoppingRule::RelativeX(tol) => match &prev.x {
            Some(x_prev) => {
                let mut d = x.clone();
                backend.axpby(-B::Real::one(), x_prev, B::Real::one(), &mut d)?;
                backend.norm_inf(&d)?.to_f64_lossy()
                    <= tol * backend.norm_inf(x_prev)?.to_f64_lossy().max(1.0)
            }
            None => false,
        },
        StoppingRule::Residual { .. } | StoppingRule::Fixed(_) => false,
    })
}

/// When the stopping test runs: every `every` iterations when fixed, else adaptively
/// ([`Checks::ADAPTIVE`]); always at the last iteration; never for a fixed count.
#[derive(Clone, Debug)]
pub(crate) struct Checks {
    every: Option<usize>,
    next: usize,
    never: bool,
    /// What a check costs in iterations (at least 1): the shortest adaptive interval.
    cost: usize,
    /// An iteration's cost in forward iterations (`1 +` the tangent columns it carries).
    weight: usize,
}

impl Checks {
    /// The adaptive schedule: a check after the first iteration, then after
    /// `max(iterations / 8, cost)` more (at most [`Checks::MAX_INTERVAL`]), `cost` being
    /// what a check costs in iterations: a solve that converges in `k` iterations runs at
    /// most `max(k / 8, cost)` (and 25) too many, and its checks cost at most about as much
    /// again as the iterations.
    pub const ADAPTIVE: usize = 8;
    /// The longest adaptive interval (OSQP checks every 25 iterations).
    pub const MAX_INTERVAL: usize = 25;

    /// The schedule of the settings `every` (`None`: adaptive) for the rule `rule`, where
    /// a check costs `cost` iterations (rounded, at least 1).
    pub fn new(every: Option<usize>, rule: StoppingRule, cost: f64) -> Self {
        Self {
            every,
            next: 1,
            never: matches!(rule, StoppingRule::Fixed(_)),
            cost: Self::interval_of(cost),
            weight: 1,
        }
    }

    /// The schedule of an iteration that carries `columns` tangent columns besides the
    /// forward one: an iteration then costs about `1 + columns` forward iterations while a
    /// check costs the same, so the adaptive interval (the iterations a solve may run too
    /// many) shrinks by that factor, and the check's cost in iterations with it.
    pub fn carrying(mut self, columns: usize, cost: f64) -> Self {
        self.weight = 1 + columns;
        self.cost = Self::interval_of(cost / self.weight as f64);
        self
    }

    /// A cost in iterations as an interval: rounded, within `1 ..= MAX_INTERVAL`.
    fn interval_of(cost: f64) -> usize {
        cost.round().clamp(1.0, Self::MAX_INTERVAL as f64) as usize
    }

    /// What a check costs in iterations of the dual-space iteration with `n` variables and
    /// `r` stacked rows: two products with `C'` and `O(n + r)` host work against a product
    /// with `M`.
    pub fn dual_cost(n: usize, r: usize) -> f64 {
        let (n, r) = (n as f64, r.max(1) as f64);
        (2.0 * n * r + 10.0 * (n + r)) / (r * r + 5.0 * r)
    }

    /// Whether iteration `iteration` (1-based) of at most `limit` runs the test.
    pub fn due(&mut self, iteration: usize, limit: usize) -> bool {
        if self.never {
            return false;
        }
        if iteration == limit {
            return true;
        }
        match self.every {
            Some(every) => iteration.is_multiple_of(every),
            None => {
                if iteration < self.next {
                    return false;
                }
                let interval = (iteration / (Self::ADAPTIVE * self.weight))
                    .max(self.cost)
                    .clamp(1, Self::MAX_INTERVAL);
                self.next = iteration + interval;
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One column with `n = 1`, one equality and one inequality.
    struct Point {
        x: [f64; 1],
        s: [f64; 1],
        y: [f64; 2],
        cx: [f64; 2],
        bh: [f64; 2],
        px: [f64; 1],
        q: [f64; 1],
        /// `C'y`.
        cty: [f64; 1],
    }

    impl Point {
        fn column(&self) -> Column<'_> {
            Column {
                s: &self.s,
                y: &self.y,
                cx: &self.cx,
                bh: &self.bh,
                px: &self.px,
                q: &self.q,
                cty: &self.cty,
                xpx: self.x[0] * self.px[0],
                qx: self.q[0] * self.x[0],
            }
        }
    }

    /// `min x^2/2 - x` s.t. `x = 1`, `x <= h` at `x = 1` (stationary with lam = 0).
    fn exact(h: f64) -> Point {
        Point {
            x: [1.0],
            s: [h - 1.0],
            y: [0.0, 0.0],
            cx: [1.0, 1.0],
            bh: [1.0, h],
            px: [1.0],
            q: [-1.0],
            cty: [0.0],
        }
    }

    const RULE: Criterion = Criterion {
        eps_abs: 1e-6,
        eps_rel: 1e-6,
    };

    #[test]
    fn a_loose_bound_does_not_loosen_the_other_rows() {
        // an exact point passes, whatever the loose bound
        for h in [2.0, 5e8, 1e10] {
            let m = RULE.point(&exact(h).column(), 1, &Units::identity());
            assert!(m.passes, "h = {h}: {m:?}");
        }
        // the equality off by 20 fails next to a bound of 5e8 (the old norm-wise scale,
        // max(|b|, |h|, |s|) = 5e8, let it pass)
        let mut off = exact(5e8);
        off.cx[0] = 21.0;
        let m = RULE.point(&off.column(), 1, &Units::identity());
        assert!(!m.passes && (m.primal - 20.0).abs() < 1e-12, "{m:?}");
    }

    #[test]
    fn a_large_row_does_not_loosen_a_small_one() {
        // the inequality is a row of magnitude 1e4 and exact; the equality is off by 1e-3
        let mut p = exact(1e4);
        p.cx[1] = 1e4;
        p.s[0] = 0.0;
        p.cx[0] = 1.001;
        let m = RULE.point(&p.column(), 1, &Units::identity());
        assert!(!m.passes);
    }

    #[test]
    fn the_test_is_made_in_the_users_units() {
        // an equality row that is zero at the solution (b = 0) with a residual of 1e-7 in
        // the iterated units passes by eps_abs; it is 1e-3 for the user when the row was
        // scaled by e = 1e-4, and fails
        let mut p = exact(2.0);
        p.bh[0] = 0.0;
        p.cx[0] = 1e-7;
        assert!(RULE.point(&p.column(), 1, &Units::identity()).passes);
        let units = Units {
            rows: vec![1e4, 1.0],
            cols: vec![1.0],
            cost: 1.0,
        };
        let m = RULE.point(&p.column(), 1, &units);
        assert!(!m.passes && (m.primal - 1e-3).abs() < 1e-9, "{m:?}");
    }

    #[test]
    fn the_gap_catches_a_wrong_objective() {
        // min x^2/2 s.t. -x <= 0 (optimum 0 at x = 0), at x = 1 with nu = 1 on the bound
        // and the slack claimed zero: feasible and stationary, but not complementary
        let p = Point {
            x: [1.0],
            s: [0.0],
            y: [0.0, 1.0],
            cx: [0.0, -1.0],
            bh: [0.0, 0.0],
            px: [1.0],
            q: [0.0],
            cty: [-1.0],
        };
        let m = RULE.point(&p.column(), 1, &Units::identity());
        assert!(m.primal == 0.0 && m.dual == 0.0, "{m:?}");
        assert!(!m.passes && (m.gap - 1.0).abs() < 1e-12, "{m:?}");
    }

    #[test]
    fn a_residual_of_twenty_never_passes() {
        for scale in [1e-4_f64, 1.0, 1e4, 1e10] {
            let mut p = exact(scale.max(2.0));
            p.px = [scale];
            p.q = [-scale];
            p.cx[0] = 21.0;
            let m = RULE.point(&p.column(), 1, &Units::identity());
            assert!(!m.passes, "scale {scale}");
        }
    }

    #[test]
    fn adaptive_checks_thin_out() {
        let mut checks = Checks::new(None, StoppingRule::default(), 1.0);
        let due: Vec<usize> = (1..=400).filter(|&i| checks.due(i, 400)).collect();
        assert_eq!(due[..9], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let gaps: Vec<usize> = due.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g <= Checks::MAX_INTERVAL));
        assert_eq!(*due.last().unwrap(), 400);
        assert!(due.len() < 60, "{}", due.len());
        // a check that costs four iterations comes every four at least
        let mut costly = Checks::new(None, StoppingRule::default(), 4.0);
        let due: Vec<usize> = (1..=40).filter(|&i| costly.due(i, 40)).collect();
        assert_eq!(due[..4], [1, 5, 9, 13]);
        // with 7 tangent columns an iteration costs 8: a check after each until 8 * 8 * 2
        let mut carrying = Checks::new(None, StoppingRule::default(), 1.0).carrying(7, 1.0);
        let due: Vec<usize> = (1..=400).filter(|&i| carrying.due(i, 400)).collect();
        assert_eq!(due[..127], (1..=127).collect::<Vec<_>>()[..]);
        assert!(due.len() < 300, "{}", due.len());
        let mut fixed = Checks::new(None, StoppingRule::Fixed(10), 1.0);
        assert!((1..=10).all(|i| !fixed.due(i, 10)));
    }
}
