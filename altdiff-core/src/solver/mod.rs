//! [`AltDiff`]: set up once (one factorization), solve for many parameter sets, and
//! differentiate: Jacobians (forward mode), JVPs, VJPs (reverse mode), by Alt-Diff or KKT.

mod adjoint;
mod anderson;
mod batch;
mod differentiability;
mod dual;
mod dual_loop;
mod infeasibility;
mod iteration;
mod kkt;
mod krylov;
mod limit;
mod polish;
mod refine;
mod scaling;
mod solution;
mod status;
mod tangent;
mod termination;
mod vjp;

pub use adjoint::{Grads, VjpMode};
pub use batch::{BatchSolution, Element};
pub use differentiability::{DerivativeStatus, Differentiability};
pub use iteration::Iterate;
pub use solution::{Certificate, HostSolution, Solution, TangentKey};
pub use status::Status;
pub use tangent::Directions;
pub(crate) use termination::{
    Checks, Criterion, HostBlock, Measures, Operators, Units, clean_duals, download_block,
};

use std::sync::Arc;

use num_traits::{Float, One, Zero};

use crate::solver::adjoint::{
    Adjoint, Reverse, TapeData, closed_forms, mask_bits, mask_values, symmetrize,
};
use crate::solver::anderson::Accelerator;
use crate::solver::dual::{DualBlock, DualData, DualHost, DualKernel, DualOps, stack, unstack};
use crate::solver::dual_loop::LimitPolish;
use crate::solver::infeasibility::{Certifier, Monitor};
use crate::solver::iteration::{Affine, Kernel, Slack, Workspace};
use crate::solver::kkt::{KktSystem, active_indices};
use crate::solver::krylov::Gmres;
use crate::solver::limit::Limit;
use crate::solver::polish::{PolishSchedule, Polished};
use crate::solver::scaling::{Ruized, Scaling};
use crate::solver::solution::Derivative;
use crate::solver::tangent::{HostPoint, TangentSpec, download};
use crate::solver::termination::{Previous, changes_small};
use crate::{
    Accum, Error, Field, IterationSpace, LinAlg, Method, Param, QpDims, QpParams, QpProblem, Real,
    Result, Settings, StoppingRule, Tape, Trans,
};

/// The Alt-Diff solver for one `(P, A, G, rho)`: `H = P + rho (A'A + G'G)` is factored once
/// in [`AltDiff::new`], then [`AltDiff::solve`] runs ADMM for any `(q, b, h)` and carries the
/// Jacobians chosen in [`Settings::wrt`] alongside ([`Method::AltDiff`]) or computes them
/// at the solution ([`Method::Kkt`]). [`AltDiff::solve_jvp`] pushes given directions
/// forward; [`AltDiff::vjp`] pulls a gradient back without forming any Jacobian.
///
/// | derivative | cost per iteration (dense) | memory |
/// |---|---|---|
/// | Jacobian wrt q, b, h (forward) | `O(n^2 d)`, `d` = parameter size | `n d` |
/// | JVP, `k` directions | `O(n^2 k)` | `n k` |
/// | VJP unrolled (reverse) | `O(n^2)` (+ `O(n^2)` for P, A, G) | tape: `m` bits (+ `n + p + m` numbers) per iteration |
/// | VJP implicit | `O(n^2)` per GMRES iteration over the reverse step | `O(n)` per Krylov vector ([`Settings::krylov_restart`]) |
/// | KKT (Jacobian or VJP) | one factorization of the reduced KKT system, then `O(n^2)` per column | `O(n^2)` |
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{AltDiff, Param, Settings, Wrt, testing::{RefBackend, tiny_qp}};
/// let qp = altdiff_core::Qp::from_host(&RefBackend, &tiny_qp())?;
/// let solver = AltDiff::new(RefBackend, &qp, Settings::default().with_wrt(Wrt::vectors()))?;
/// let sol = solver.solve(qp.params())?.to_host(&RefBackend)?;
/// // x* = (0, 0.5, 0.5) and dx/db = (3/7, 0, 4/7)
/// assert!((sol.x[2] - 0.5).abs() < 1e-4);
/// assert!((sol.jacobian(Param::B).unwrap().get(2, 0) - 4.0 / 7.0).abs() < 1e-4);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Debug)]
pub struct AltDiff<B: LinAlg> {
    backend: B,
    dims: QpDims,
    /// `P`, `A`, `G`: the problem's own when it shares them ([`QpProblem::shared`]) and the
    /// data stay unscaled, else the solver's copies.
    p: Arc<B::Op>,
    a: Arc<B::Op>,
    g: Arc<B::Op>,
    factor: B::Factor,
    rho: B::Real,
    settings: Settings,
    /// What each requested Jacobian differentiates.
    specs: Vec<(Param, TangentSpec<B>)>,
    /// The operators of the dual-space iteration, when it is used.
    dual: Option<DualOps<B>>,
    /// The equilibration, when [`Settings::scaling`] asks for it (`p`, `a`, `g` are then
    /// the scaled operators).
    scaling: Option<Scaling<B>>,
    /// The dual-space operators formed on demand (the polish, batch VJPs with
    /// [`VjpMode::Limit`]) when the solver has none.
    lazy_dual: std::sync::OnceLock<DualOps<B>>,
    /// The maps of the residuals to the user's units (the identity without scaling).
    units: Units,
    /// The proximal term `sigma` of `H = P + sigma I + rho (A'A + G'G)`: zero unless `P` is
    /// singular on the null space of the constraints.
    sigma: B::Real,
    /// The regularization of the polish's KKT system (see [`polish`]), computed once.
    polish_delta: std::sync::OnceLock<f64>,
}

/// The start of a solve and of its tangent blocks ([`AltDiff::cold_start`]).
type ColdStart<B> = (Iterate<B>, Vec<Option<Iterate<B>>>);

/// What [`AltDiff::solve_observed`] shows its observer after an iteration.
#[derive(Debug)]
#[non_exhaustive]
pub struct Observation<'a, B: LinAlg> {
    /// Iterations run so far.
    pub iteration: usize,
    /// `max(|Ax - b|, |Gx + s - h|)`.
    pub primal_residual: B::Real,
    /// `|Px + q + A'lam + G'nu|`.
    pub dual_residual: B::Real,
    /// `1/2 x'Px + q'x`.
    pub objective: B::Real,
    /// The iterate.
    pub iterate: &'a Iterate<B>,
    /// The tangent blocks being iterated (Alt-Diff only), their `x` is the current `J_x`.
    pub tangents: Vec<(TangentKey, &'a Iterate<B>)>,
}

/// The callback of [`AltDiff::solve_observed`].
pub type Observer<'o, B> = dyn FnMut(&Observation<'_, B>) + 'o;

/// A tangent block being iterated.
struct TangentRun<'s, B: LinAlg> {
    key: TangentKey,
    spec: &'s TangentSpec<B>,
    iterate: Iterate<B>,
    ws: Workspace<B>,
    /// The effective data and their affine terms (rebuilt per iteration for P, A, G).
    data: QpParams<B>,
    affine: Affine<B>,
}

impl<B: LinAlg> AltDiff<B> {
    /// Validates the settings, tests the convexity of `P` (unless disabled) and factors `H`.
    ///
    /// # Errors
    /// [`Error::Settings`], [`Error::NotConvex`], [`Error::NotPositiveDefinite`], or a
    /// backend error.
    pub fn new(backend: B, problem: &impl QpProblem<B>, mut settings: Settings) -> Result<Self> {
        settings.validate()?;
        let dims = problem.dims();
        let ops = [problem.p(), problem.a(), problem.g()];
        // the problem's matrices without a copy when it shares them
        let unscaled = || {
            problem
                .shared()
                .unwrap_or_else(|| ops.map(|op| Arc::new(op.clone())))
        };
        // the sums bounding |P| and |H|, when a scaling pass measured them on
        // the data as it stays
        let (scaling, [p, a, g], measured) = match settings.scaling {
            Some(ruiz) => match Scaling::ruiz(&backend, ops, dims, ruiz)? {
                Ruized::Scaled(scaling, scaled) => (Some(scaling), scaled.map(Arc::new), None),
                Ruized::Unscaled { sums } => (None, unscaled(), Some(sums)),
            },
            None => (None, unscaled(), None),
        };
        let sums = measured;
        if let Some(ruiz) = settings.scaling
            && scaling.is_some()
            && ruiz.adaptive_rho
            && settings.adaptive_rho.is_none()
        {
            settings.adaptive_rho = Some(crate::AdaptiveRho::default());
        }
        let rho = B::Real::of(settings.rho);
        let specs: Vec<(Param, TangentSpec<B>)> = settings
            .wrt
            .iter()
            .map(|param| Ok((param, TangentSpec::jacobian(&backend, dims, param)?)))
            .collect::<Result<_>>()?;
        let r = dims.p + dims.m;
        let mut use_dual = match settings.iteration {
            IterationSpace::Primal => false,
            IterationSpace::Dual => true,
            // the polish forms M anyway (r x r factorizations instead of n x n ones): worth
            // iterating on it when r is not much above n
            IterationSpace::Auto if settings.limit => {
                r > 0
                    && r <= 2 * dims.n
                    && backend.dense_dual_space()
                    && settings.tape != Tape::Full
            }
            // a coarse factorization (single precision) ends forward solves by the refined
            // polish, which the dual space has
            IterationSpace::Auto => {
                backend.dense_dual_space()
                    && settings.method == Method::AltDiff
                    && (!specs.is_empty() || refine::is_coarse(&backend))
                    && specs.iter().all(|(_, s)| !s.has_matrices())
                    && settings.tape != Tape::Full
                    && r > 0
                    && r <= 2 * dims.n
            }
        };
        // with M formed, the convexity test runs on it (r x r) after the factorization
        let test_on_gram = settings.check_convexity && use_dual;
        if settings.check_convexity && !test_on_gram {
            check_convexity(&backend, &p)?;
        }
        let (mut factor, sigma) = match backend.factor(&p, &a, &g, rho) {
            Ok(factor) => (factor, B::Real::zero()),
            // P is singular on the null space of [A; G] (a convex P, tested), or indefinite
            Err(Error::NotPositiveDefinite { .. }) => {
                overflow_of(&backend, [&a, &g], dims, rho)?;
                if test_on_gram {
                    check_convexity(&backend, &p)?;
                }
                let sigma = B::Real::of(polish::regularization(&backend, [&p, &a, &g])?);
                // the dual space eliminates x, which the proximal term keeps in the state
                use_dual = false;
                let factor = backend.factor_shifted(&p, &a, &g, rho, sigma)?;
                (factor, sigma)
            }
            Err(other) => return Err(other),
        };
        let dual = if use_dual {
            // K pays for itself when x is formed every iteration (the x rule) or for
            // Jacobian columns at least as many as C has rows
            let columns: usize = specs.iter().map(|(_, s)| s.k).sum();
            let with_k = matches!(settings.stopping, StoppingRule::RelativeX(_)) || columns >= r;
            // the Jacobians wrt b and h then take a product with W and one triangular solve
            // instead of a product with C' and a solve with H
            let keep_half = specs.iter().any(|(p, _)| matches!(p, Param::B | Param::H));
            Some(if with_k || keep_half {
                DualOps::new(&backend, &a, &g, &factor, dims, with_k, keep_half)?
            } else {
                // the limit system's solves through C (the polish, the limit VJP) use it
                DualOps::keeping(&backend, &a, &g, &mut factor, dims)?
            })
        } else {
            None
        };
        if test_on_gram
            && use_dual
            && let Some(dual) = &dual
            && !convex_by_gram(&backend, dual, &p, sums, rho)?
        {
            check_convexity(&backend, &p)?;
        }
        let units = scaling
            .as_ref()
            .map_or_else(Units::identity, Scaling::units);
        Ok(Self {
            dual,
            dims,
            p,
            a,
            g,
            factor,
            rho,
            settings,
            specs,
            backend,
            scaling,
            lazy_dual: std::sync::OnceLock::new(),
            units,
            sigma,
            polish_delta: std::sync::OnceLock::new(),
        })
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The factorization of `H = P + rho (A'A + G'G)` made at setup (of the scaled problem
    /// when scaling is on).
    pub fn factor(&self) -> &B::Factor {
        &self.factor
    }

    /// The problem sizes.
    pub fn dims(&self) -> QpDims {
        self.dims
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Where solves iterate: [`IterationSpace::Dual`] when the dual-space operators were
    /// formed (see [`IterationSpace`]), [`IterationSpace::Primal`] otherwise.
    pub fn iteration_space(&self) -> IterationSpace {
        if self.dual.is_some() {
            IterationSpace::Dual
        } else {
            IterationSpace::Primal
        }
    }

    /// Whether the solver iterates on an equilibrated problem (see [`Settings::scaling`]).
    pub fn is_scaled(&self) -> bool {
        self.scaling.is_some()
    }

    /// Solves from the zero iterate, with the Jacobians of [`Settings::wrt`].
    ///
    /// # Errors
    /// [`Error::Dimension`] or [`Error::NonFinite`] for bad parameters, [`Error::SingularKkt`]
    /// for [`Method::Kkt`] at a degenerate active set, or a backend error.
    pub fn solve(&self, params: &QpParams<B>) -> Result<Solution<B>> {
        self.solve_cold(params, None)
    }

    /// A solve from the cold start with the Jacobians of the settings.
    fn solve_cold(
        &self,
        params: &QpParams<B>,
        observer: Option<&mut Observer<'_, B>>,
    ) -> Result<Solution<B>> {
        params.validate(&self.backend, self.dims)?;
        let inner = self.scaled_params(params)?;
        let data = inner.as_ref().unwrap_or(params);
        let specs = self.jacobian_specs();
        let (iterate, warm) = self.cold_start(data, &specs)?;
        let mut solution = self.run(data, iterate, &specs, warm, observer)?;
        if let Some(tape) = &mut solution.tape {
            let mut start = data.h.clone();
            self.backend.copy_from(&mut start, &data.h)?;
            let ones = vec![B::Real::one(); self.dims.m];
            let mut mask = self.backend.mat_from_col_major(self.dims.m, 1, &ones)?;
            self.backend.dproj_nonneg(&start, &mut mask)?;
            tape.start = Some(mask);
        }
        self.unscaled(solution)
    }

    /// The cold start of a solve for `params` (iterated units, `k` columns): `x`, `lam`,
    /// `nu` zero and `s = max(h, 0)`, OSQP's start `z = min(h, 0)` in the slack form (the
    /// constraints held at zero, not at their bounds: a loose bound such as `1e10` would
    /// pull the first `x` out to it); and the tangent blocks' starts, which follow it
    /// (`J_s = 1[h > 0] dh`).
    pub(super) fn cold_start(
        &self,
        params: &QpParams<B>,
        specs: &[(TangentKey, &TangentSpec<B>)],
    ) -> Result<ColdStart<B>> {
        let be = &self.backend;
        let k = be.shape(&params.q).1;
        let mut iterate = Iterate::zeros(be, self.dims, k)?;
        be.copy_from(&mut iterate.s, &params.h)?;
        be.proj_nonneg(&mut iterate.s)?;
        let tangents = specs
            .iter()
            .map(|(_, spec)| {
                let mut start = Iterate::zeros(be, self.dims, spec.k)?;
                be.copy_from(&mut start.s, &spec.constant.h)?;
                be.dproj_nonneg(&params.h, &mut start.s)?;
                Ok(Some(start))
            })
            .collect::<Result<_>>()?;
        Ok((iterate, tangents))
    }

    /// The parameters of the scaled problem, when the solver equilibrates.
    fn scaled_params(&self, params: &QpParams<B>) -> Result<Option<QpParams<B>>> {
        self.scaling
            .as_ref()
            .map(|s| s.params(&self.backend, params))
            .transpose()
    }

    /// A solution of the scaled problem in the user's units.
    fn unscaled(&self, solution: Solution<B>) -> Result<Solution<B>> {
        match &self.scaling {
            Some(s) => s.solution(&self.backend, solution),
            None => Ok(solution),
        }
    }

    /// The tangent blocks of the Jacobians of [`Settings::wrt`].
    fn jacobian_specs(&self) -> Vec<(TangentKey, &TangentSpec<B>)> {
        self.specs
            .iter()
            .map(|(p, s)| (TangentKey::Jacobian(*p), s))
            .collect()
    }

    /// [`AltDiff::solve`], calling `observer` after every iteration with the residuals, the
    /// objective, the iterate and the tangent blocks (for traces and plots; the residuals
    /// are then computed every iteration). With [`Settings::scaling`] the observations are
    /// those of the scaled problem.
    ///
    /// # Errors
    /// As [`AltDiff::solve`].
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{AltDiff, Qp, Settings, testing::{RefBackend, tiny_qp}};
    /// let qp = Qp::from_host(&RefBackend, &tiny_qp())?;
    /// let solver = AltDiff::new(RefBackend, &qp, Settings::default())?;
    /// let mut residuals = Vec::new();
    /// let sol = solver.solve_observed(qp.params(), &mut |o| residuals.push(o.primal_residual))?;
    /// assert_eq!(residuals.len(), sol.iterations());
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn solve_observed(
        &self,
        params: &QpParams<B>,
        observer: &mut dyn FnMut(&Observation<'_, B>),
    ) -> Result<Solution<B>> {
        self.solve_cold(params, Some(observer))
    }

    /// Solves and pushes `directions` forward: [`Solution::jvp`] is `J d` (n x k) for the
    /// directions `d` of any of `(P, q, A, b, G, h)`. The Jacobians of [`Settings::wrt`] are
    /// not computed.
    ///
    /// # Errors
    /// As [`AltDiff::solve`], and [`Error::Dimension`] / [`Error::NonFinite`] for bad
    /// directions.
    pub fn solve_jvp(&self, params: &QpParams<B>, directions: &Directions) -> Result<Solution<B>> {
        params.validate(&self.backend, self.dims)?;
        directions.validate(self.dims)?;
        let spec = match &self.scaling {
            Some(s) => {
                TangentSpec::from_directions(&self.backend, self.dims, &s.directions(directions))?
            }
            None => TangentSpec::from_directions(&self.backend, self.dims, directions)?,
        };
        let inner = self.scaled_params(params)?;
        let data = inner.as_ref().unwrap_or(params);
        let specs = [(TangentKey::Jvp, &spec)];
        let (iterate, warm) = self.cold_start(data, &specs)?;
        let solution = self.run(data, iterate, &specs, warm, None)?;
        self.unscaled(solution)
    }

    /// Solves starting from a previous solution's iterate (`s`, `lam`, `nu`) and, for the
    /// Jacobians it carries, their state; other Jacobians start from zero.
    ///
    /// # Errors
    /// As [`AltDiff::solve`]; [`Error::Dimension`] when `start` has other sizes.
    pub fn solve_warm(&self, params: &QpParams<B>, start: &Solution<B>) -> Result<Solution<B>> {
        params.validate(&self.backend, self.dims)?;
        let be = &self.backend;
        let got = QpDims {
            n: be.shape(start.x()).0,
            p: be.shape(start.lam()).0,
            m: be.shape(start.nu()).0,
        };
        if got != self.dims {
            return Err(Error::Dimension {
                field: Field::WarmStart,
                expected: (self.dims.n, 1),
                got: (got.n, 1),
            });
        }
        let specs = self.jacobian_specs();
        // the scaled solution inside a scaled solve; a start in the user's units is scaled
        // (without its derivative state)
        let (iterate, start) = match (&self.scaling, start.inner.as_deref()) {
            (Some(_), Some(inner)) => (inner.iterate.clone(), Some(inner)),
            (Some(s), None) => (s.scale_iterate(be, &start.iterate)?, None),
            (None, _) => (start.iterate.clone(), Some(start)),
        };
        let warm = specs
            .iter()
            .map(|(key, _)| start.and_then(|s| s.tangent_key(*key).cloned()))
            .collect();
        let inner = self.scaled_params(params)?;
        let solution = self.run(
            inner.as_ref().unwrap_or(params),
            iterate,
            &specs,
            warm,
            None,
        )?;
        self.unscaled(solution)
    }

    /// The KKT system at the solution's active set: the rows with `s_i = 0` and the weakly
    /// active ones (convention: weakly active rows are treated as active).
    fn kkt_system(&self, solution: &Solution<B>) -> Result<KktSystem<B>> {
        let s = self.backend.to_col_major(solution.s())?;
        self.kkt_system_at(&s)
    }

    /// The KKT system for the slack `s` (host, one column), on the active set of every
    /// mode: the rows with `s = 0` (weakly active ones included: the derivative returned
    /// there is the one-sided derivative that holds the row active; the report says so).
    fn kkt_system_at(&self, s: &[B::Real]) -> Result<KktSystem<B>> {
        let active = active_indices(s);
        KktSystem::new(
            &self.backend,
            [&self.p, &self.a, &self.g],
            active,
            self.rho,
            self.dims,
        )
    }

    /// The forward point `(x, lam, nu)` on the host.
    fn host_point(&self, iterate: &Iterate<B>) -> Result<HostPoint> {
        let be = &self.backend;
        Ok(HostPoint {
            x: download(be, &iterate.x)?,
            u: download(be, &iterate.lam)?,
            w: download(be, &iterate.nu)?,
        })
    }

    /// The affine terms of data `(q, b, h)`: `c = q`, `b`, `h` (the iteration subtracts
    /// `rho b` and `rho h` from its duals and slacks row by row, see
    /// [`iteration`](self::iteration): a loose bound never enters a sum). For derivatives of
    /// the data this gives `E = I` for `q` and `c = 0` for `b`, `h`.
    fn affine(&self, data: &QpParams<B>) -> Result<Affine<B>> {
        Ok(Affine {
            c: data.q.clone(),
            b: data.b.clone(),
            h: data.h.clone(),
        })
    }

    /// The iteration loop: forward step, then every tangent step with the new slack's mask,
    /// a convergence check every `check_every` iterations. With [`Method::Kkt`] the tangents
    /// are computed once at the end instead.
    fn run(
        &self,
        params: &QpParams<B>,
        iterate: Iterate<B>,
        specs: &[(TangentKey, &TangentSpec<B>)],
        warm: Vec<Option<Iterate<B>>>,
        observer: Option<&mut Observer<'_, B>>,
    ) -> Result<Solution<B>> {
        // a fixed count is truncated Alt-Diff, and a tape records the iterations for their
        // adjoint: the Jacobians of the iterations run
        let use_limit = self.settings.limit
            && !matches!(self.settings.stopping, StoppingRule::Fixed(_))
            && self.settings.tape == Tape::Off;
        self.run_in(params, iterate, specs, warm, observer, use_limit)
    }

    /// [`AltDiff::run`], solving the limit of the recursion when `use_limit` (the forward
    /// solve polished, the derivatives at the final active set) or iterating it.
    fn run_in(
        &self,
        params: &QpParams<B>,
        mut iterate: Iterate<B>,
        specs: &[(TangentKey, &TangentSpec<B>)],
        warm: Vec<Option<Iterate<B>>>,
        mut observer: Option<&mut Observer<'_, B>>,
        use_limit: bool,
    ) -> Result<Solution<B>> {
        if let Some(dual) = &self.dual
            && observer.is_none()
            && self.settings.tape != Tape::Full
            && (use_limit || specs.iter().all(|(_, s)| !s.has_matrices()))
        {
            return self.run_dual(dual, params, iterate, specs, warm, use_limit);
        }
        let be = &self.backend;
        // the penalty and the factor of H in force (adaptive rho replaces them)
        let mut rho = self.rho;
        let mut refactored: Option<std::sync::Arc<B::Factor>> = None;
        let mut last_change = 0;
        let mut changes = 0;
        let ops = self.operators();
        let mut data = self.affine(params)?;
        let mut ws = Workspace::new(be, self.dims, 1)?;
        // with the limit the tangents are computed at the end, at the final active set
        let iterate_tangents = self.settings.method == Method::AltDiff && !use_limit;
        let mut runs = if iterate_tangents {
            self.tangent_runs(specs, warm)?
        } else {
            Vec::new()
        };
        let mut tape = self.new_tape();
        let needs_point =
            runs.iter().any(|r| r.spec.has_matrices()) || self.settings.tape == Tape::Full;
        let mut w_arg = be.zeros(self.dims.m, 1)?;
        let mut u_arg = be.zeros(self.dims.p, 1)?;
        let alpha = B::Real::of(self.settings.alpha);
        let rule = self.settings.stopping;
        let criterion = Criterion::of(rule);
        // the polish ends the iterations: not when a tape records them
        let polishing = use_limit && criterion.is_some() && tape.is_none();
        let mut schedule = PolishSchedule::default();
        let mut polished: Option<Polished<B>> = None;
        let mut checks = self.checks(false, runs.iter().map(|r| r.spec.k).sum());
        let (limit, mut status) = self.iteration_limit();
        let deadline = self.deadline();
        let mut iterations = 0;
        let mut last: Option<Measures> = None;
        let mut monitor = Monitor::new();
        let certifier = self.certifier();
        let mut certificate = None;
        // Anderson acceleration moves the state off the plain map: not with tangents or tapes
        let mut accelerator = match self.settings.anderson {
            Some(anderson) if runs.is_empty() && tape.is_none() => Some(Accelerator::new(anderson)),
            _ => None,
        };
        while iterations < limit {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                status = Status::TimeLimit;
                break;
            }
            iterations += 1;
            if let Some(accelerator) = &mut accelerator {
                accelerator.next(be, &mut iterate)?;
            }
            let check = checks.due(iterations, limit);
            let prev = if check {
                Some(self.snapshot(rule, &ops, &iterate, params)?)
            } else {
                None
            };
            let kernel = Kernel {
                backend: be,
                a: &self.a,
                g: &self.g,
                factor: refactored.as_deref().unwrap_or(&self.factor),
                rho,
                sigma: self.sigma,
                alpha,
                refine_with: self.refines().then_some(&self.p),
            };
            if needs_point && alpha != B::Real::one() {
                be.copy_from(&mut u_arg, &iterate.lam)?;
            }
            kernel.step(&mut iterate, &data, Slack::Project, &mut ws)?;
            if needs_point {
                let one = B::Real::one();
                // w_k = nu_k + rho s_k + rho (G x_{k+1} - h): ws.w still holds
                // nu_k + rho (s_k - h)
                be.copy_from(&mut w_arg, &ws.w)?;
                be.axpby(rho, &ws.gx, one, &mut w_arg)?;
                // u_k = lam_k + rho (A x_{k+1} - b): lam_{k+1} itself unless relaxed
                if alpha == one {
                    be.copy_from(&mut u_arg, &iterate.lam)?;
                } else {
                    be.apply(&mut u_arg, Accum::Add, &self.a, Trans::No, &iterate.x, rho)?;
                    be.axpby(-rho, &params.b, one, &mut u_arg)?;
                }
            }
            if let Some(tape) = &mut tape {
                tape.masks.push(mask_bits(&be.to_col_major(&iterate.s)?));
                if self.settings.tape == Tape::Full {
                    tape.points
                        .push([iterate.x.clone(), u_arg.clone(), w_arg.clone()]);
                }
            }
            if runs.iter().any(|r| r.spec.has_matrices()) {
                let point = HostPoint {
                    x: download(be, &iterate.x)?,
                    u: download(be, &u_arg)?,
                    w: download(be, &w_arg)?,
                };
                for run in runs.iter_mut().filter(|r| r.spec.has_matrices()) {
                    run.data = run.spec.effective(be, self.dims, &point)?;
                    run.affine = self.affine(&run.data)?;
                }
            }
            for run in &mut runs {
                kernel.step(
                    &mut run.iterate,
                    &run.affine,
                    Slack::Mask(&iterate.s),
                    &mut run.ws,
                )?;
            }
            last = None;
            if let Some(observer) = observer.as_deref_mut() {
                let now = self.measure(&iterate, params)?;
                last = Some(now);
                observer(&Observation {
                    iteration: iterations,
                    primal_residual: B::Real::of(now.primal),
                    dual_residual: B::Real::of(now.dual),
                    objective: B::Real::of(now.objective),
                    iterate: &iterate,
                    tangents: runs.iter().map(|r| (r.key, &r.iterate)).collect(),
                });
            }
            let Some(prev) = prev else { continue };
            let now = match last {
                Some(now) => now,
                None => self.measure(&iterate, params)?,
            };
            last = Some(now);
            if !now.is_finite() || !tangents_finite(be, &runs)? {
                status = Status::NumericalError;
                break;
            }
            let done = match criterion {
                Some(_) => now.passes,
                None => changes_small(be, rule, now.objective, &iterate.x, &prev)?,
            };
            if polishing {
                let mask = mask_bits(&be.to_col_major(&iterate.s)?);
                let due = schedule.due_or_converged(mask, iterations, done);
                if due {
                    let found = self.try_polish(&iterate, params, true)?;
                    schedule.record(found.is_some());
                    if found.is_some() {
                        polished = found;
                        status = Status::Solved;
                        break;
                    }
                }
            }
            if done {
                if let Some(c) = criterion
                    && !self.tangents_converged(&ops, &mut runs, c)?
                {
                    continue;
                }
                status = Status::Solved;
                break;
            }
            if let Some(adaptive) = self.settings.adaptive_rho
                && changes < adaptive.max_updates
                && iterations - last_change >= adaptive.every
                && let Some(proposal) = balanced_rho(rho, &now, adaptive.factor)
            {
                // refactor H with the new penalty (a penalty whose H does not factor is
                // not taken, nor any after it)
                let previous = refactored.as_deref().unwrap_or(&self.factor);
                let factor = match self.refactor_with(previous, proposal) {
                    Ok(factor) => factor,
                    Err(Error::NotPositiveDefinite { .. }) => {
                        changes = adaptive.max_updates;
                        continue;
                    }
                    Err(other) => return Err(other),
                };
                rho = proposal;
                let factor = std::sync::Arc::new(factor);
                if let Some(tape) = &mut tape {
                    tape.segments.push((iterations, rho, factor.clone()));
                }
                refactored = Some(factor);
                data = self.affine(params)?;
                for run in &mut runs {
                    run.affine = self.affine(&run.data)?;
                }
                last_change = iterations;
                changes += 1;
                if let Some(accelerator) = &mut accelerator {
                    accelerator.clear();
                }
            }
            if monitor.due()
                && let Some(found) =
                    monitor.look(&certifier, params, &iterate.x, &iterate.lam, &iterate.nu)?
            {
                (status, certificate) = found.status();
                break;
            }
        }
        // out of iterations or time: the last mask's polish, if it was not tried
        if polishing
            && matches!(status, Status::MaxIterations | Status::TimeLimit)
            && schedule.untried(mask_bits(&be.to_col_major(&iterate.s)?))
            && let Some(found) = self.try_polish(&iterate, params, true)?
        {
            polished = Some(found);
            status = Status::Solved;
        }
        let (iterate, measures, non_unique, system) = match polished {
            Some(p) => (p.iterate, p.measures, p.non_unique, p.limit),
            None => {
                let measures = match last {
                    Some(m) => m,
                    None => self.measure(&iterate, params)?,
                };
                (iterate, measures, false, None)
            }
        };
        if !measures.is_finite() {
            status = Status::NumericalError;
        }
        let tangents = runs.into_iter().map(|r| (r.key, r.iterate)).collect();
        let mut solution =
            self.finish(iterate, tangents, tape, status, iterations, measures, specs)?;
        if use_limit && self.settings.method == Method::AltDiff && solution.tangents.is_empty() {
            match self.final_tangents(&solution, specs) {
                Ok(tangents) => solution.tangents = tangents,
                // a degenerate active set: iterate the tangents from the solution instead
                Err(Error::SingularKkt { .. }) => {
                    let start = solution.iterate.clone();
                    let mut iterated =
                        self.run_in(params, start, specs, Vec::new(), None, false)?;
                    iterated.iterations += iterations;
                    return Ok(iterated);
                }
                Err(other) => return Err(other),
            }
        }
        solution.certificate = certificate;
        solution.rho = rho;
        solution.non_unique = non_unique;
        solution.limit = system.map(std::sync::Arc::new);
        Ok(solution)
    }

    /// The iterations' stopping-test schedule of the settings, for an iteration that carries
    /// `tangent_columns` tangent columns besides the forward one.
    fn checks(&self, dual: bool, tangent_columns: usize) -> Checks {
        let cost = if dual {
            Checks::dual_cost(self.dims.n, self.dims.p + self.dims.m)
        } else {
            1.0
        };
        Checks::new(self.settings.check_every, self.settings.stopping, cost)
            .carrying(tangent_columns, cost)
    }

    /// The measures of a primal iterate (one column, the iterated problem's units) on the
    /// user's problem, judged by the residual rule (by the default rule for the others,
    /// whose verdict is then unused).
    pub(super) fn measure(&self, it: &Iterate<B>, params: &QpParams<B>) -> Result<Measures> {
        let block = self.operators().host_point(it, params)?;
        Ok(self
            .criterion()
            .point(&block.column(0), self.dims.p, &self.units))
    }

    /// The residual rule of the settings, or the default one for the other rules.
    pub(super) fn criterion(&self) -> Criterion {
        Criterion::of(self.settings.stopping).unwrap_or(Criterion {
            eps_abs: 1e-6,
            eps_rel: 1e-6,
        })
    }

    /// `H` refactored for the penalty `rho` after `previous` (with the proximal term when
    /// the solver has one).
    fn refactor_with(&self, previous: &B::Factor, rho: B::Real) -> Result<B::Factor> {
        if self.sigma == B::Real::zero() {
            self.backend
                .refactor(previous, &self.p, &self.a, &self.g, rho)
        } else {
            self.backend
                .factor_shifted(&self.p, &self.a, &self.g, rho, self.sigma)
        }
    }

    /// The tangents of a solve with the limit that did not iterate them: the limit system
    /// of the final mask when the solve left one (or the dual-space operators are formed),
    /// else the KKT system of the final active set.
    fn final_tangents(
        &self,
        solution: &Solution<B>,
        specs: &[(TangentKey, &TangentSpec<B>)],
    ) -> Result<Vec<(TangentKey, Derivative<B>)>> {
        if specs.is_empty()
            || !matches!(
                solution.status,
                Status::Solved | Status::MaxIterations | Status::TimeLimit
            )
        {
            return Ok(Vec::new());
        }
        self.kkt_tangents(solution, specs)
    }

    /// A polish of the column `it` (the iterated problem's units) for `params`, accepted
    /// when its point passes the residual rule on the user's problem: through the limit
    /// system when the dual-space operators serve (dense backends, `p + m <= 2n`, no
    /// proximal term), else (or when that system is singular) by the regularized KKT
    /// system (see [`polish`]). With `uniqueness` the point is tested for being the only
    /// solution ([`Solution::is_unique`]).
    pub(super) fn try_polish(
        &self,
        it: &Iterate<B>,
        params: &QpParams<B>,
        uniqueness: bool,
    ) -> Result<Option<Polished<B>>> {
        let dual = match self.polish_dual_ops()? {
            Some(ops) => {
                let dk = self.dual_kernel(ops);
                let affine = self.affine(params)?;
                let data = dk.data(&affine.c, &params.b, &params.h)?;
                Some((dk, data))
            }
            None => None,
        };
        let dual = dual.as_ref().map(|(dk, data)| (dk, data));
        self.corrected_polish(&it.s, params, |mask| {
            self.polish_candidate(dual, it, mask, params, uniqueness, true)
        })
    }

    /// The polish's point for the inequality mask `mask` (zero: active): by the limit
    /// system of the dual-space kernel and data `dual` when given and not singular (in the
    /// arithmetic of a coarse factor when `coarse` allows it: no tangent reuses the
    /// system), else by the regularized KKT system from the ADMM point `it`.
    pub(super) fn polish_candidate(
        &self,
        dual: Option<(&DualKernel<'_, B>, &DualData<B>)>,
        it: &Iterate<B>,
        mask: &[B::Real],
        params: &QpParams<B>,
        uniqueness: bool,
        coarse: bool,
    ) -> Result<Option<polish::Candidate<B>>> {
        if let Some((dk, data)) = dual {
            let mut stacked = vec![B::Real::zero(); self.dims.p];
            stacked.extend_from_slice(mask);
            if let LimitPolish::Point(iterate, system) =
                self.polish_limit(dk, dk.ops, &stacked, data, params, coarse && self.refines())?
            {
                let non_unique = uniqueness && system.flat(&self.backend, dk.rho)?;
                return Ok(Some(polish::Candidate {
                    iterate,
                    non_unique,
                    limit: Some(system),
                }));
            }
        }
        self.polish_primal(it, mask, params, uniqueness)
    }

    /// The dual-space operators a polish may use: the solver's own, or formed once from
    /// the setup's factor when the backend is dense, `p + m <= 2n` and there is no
    /// proximal term.
    pub(super) fn polish_dual_ops(&self) -> Result<Option<&DualOps<B>>> {
        let r = self.dims.p + self.dims.m;
        if self.dual.is_none()
            && !(self.backend.dense_dual_space()
                && r > 0
                && r <= 2 * self.dims.n
                && self.sigma == B::Real::zero())
        {
            return Ok(None);
        }
        self.dual_ops().map(Some)
    }

    /// The operators of the problem the solver iterates on (the scaled one when it scales).
    fn operators(&self) -> Operators<'_, B> {
        Operators {
            backend: &self.backend,
            p: &self.p,
            a: &self.a,
            g: &self.g,
        }
    }

    /// The penalty in force at the end of a solve's iterations is reported by
    /// [`Solution::rho`].
    fn certifier(&self) -> Certifier<'_, B> {
        Certifier {
            backend: &self.backend,
            p: &self.p,
            a: &self.a,
            g: &self.g,
        }
    }

    /// The solution, its weakly active rows and (for [`Method::Kkt`]) its tangents.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        iterate: Iterate<B>,
        tangents: Vec<(TangentKey, Iterate<B>)>,
        tape: Option<TapeData<B>>,
        status: Status,
        iterations: usize,
        measures: Measures,
        specs: &[(TangentKey, &TangentSpec<B>)],
    ) -> Result<Solution<B>> {
        // a NaN never leaves silently: neither in the solution nor in a Jacobian
        let mut finite = measures.is_finite();
        for (_, t) in &tangents {
            finite = finite && self.backend.norm_inf(&t.x)?.is_finite();
        }
        let status = if finite {
            status
        } else {
            Status::NumericalError
        };
        let mut solution = Solution {
            rho: self.rho,
            certificate: None,
            iterate,
            tangents: tangents
                .into_iter()
                .map(|(key, it)| (key, Derivative::Tangent(it)))
                .collect(),
            tape,
            limit: None,
            inner: None,
            weakly_active: Vec::new(),
            status,
            iterations,
            objective: B::Real::of(measures.objective),
            primal_residual: B::Real::of(measures.primal),
            dual_residual: B::Real::of(measures.dual),
            duality_gap: B::Real::of(measures.gap),
            non_unique: false,
        };
        solution.weakly_active = self.weakly_active(&solution)?;
        if self.settings.method == Method::Kkt
            && !specs.is_empty()
            && matches!(
                status,
                Status::Solved
                    | Status::MaxIterations
                    | Status::TimeLimit
                    | Status::FixedIterations
            )
        {
            solution.tangents = self.kkt_tangents(&solution, specs)?;
        }
        Ok(solution)
    }

    /// The iteration bound and the status when the loop runs out: `Fixed(k)` runs `k`
    /// iterations (`FixedIterations`), every other rule at most `max_iter` (`MaxIterations`).
    fn iteration_limit(&self) -> (usize, Status) {
        match self.settings.stopping {
            StoppingRule::Fixed(k) => (k, Status::FixedIterations),
            _ => (self.settings.max_iter, Status::MaxIterations),
        }
    }

    /// When the iterations must stop ([`Settings::time_limit`] from now).
    fn deadline(&self) -> Option<std::time::Instant> {
        self.settings
            .time_limit
            .map(|limit| std::time::Instant::now() + limit)
    }

    /// An empty tape when the settings ask for one.
    fn new_tape(&self) -> Option<TapeData<B>> {
        (self.settings.tape != Tape::Off).then(|| TapeData {
            masks: Vec::new(),
            points: Vec::new(),
            segments: Vec::new(),
            start: None,
        })
    }

    /// The tangent blocks to iterate, zero or from a warm start.
    fn tangent_runs<'s>(
        &self,
        specs: &[(TangentKey, &'s TangentSpec<B>)],
        warm: Vec<Option<Iterate<B>>>,
    ) -> Result<Vec<TangentRun<'s, B>>> {
        let be = &self.backend;
        let mut warm = warm.into_iter();
        specs
            .iter()
            .map(|(key, spec)| {
                let iterate = match warm.next().flatten() {
                    Some(it) => it,
                    None => Iterate::zeros(be, self.dims, spec.k)?,
                };
                Ok(TangentRun {
                    key: *key,
                    spec,
                    iterate,
                    ws: Workspace::new(be, self.dims, spec.k)?,
                    data: spec.constant.clone(),
                    affine: self.affine(&spec.constant)?,
                })
            })
            .collect()
    }

    /// The residuals of the differentiated KKT conditions of every tangent block, measured
    /// once the solution itself passes: a solution that converged with Jacobians still far
    /// off is not reported as solved.
    fn tangents_converged(
        &self,
        ops: &Operators<'_, B>,
        runs: &mut [TangentRun<'_, B>],
        criterion: Criterion,
    ) -> Result<bool> {
        for run in runs {
            if !ops
                .host_tangent(&run.iterate, &run.data)?
                .tangents_pass(&criterion)
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The tangents by the KKT method at the solution.
    fn kkt_tangents(
        &self,
        solution: &Solution<B>,
        specs: &[(TangentKey, &TangentSpec<B>)],
    ) -> Result<Vec<(TangentKey, Derivative<B>)>> {
        let be = &self.backend;
        let kkt = self.kkt_system(solution)?;
        let point = self.host_point(&solution.iterate)?;
        specs
            .iter()
            .map(|(key, spec)| {
                let data = if spec.has_matrices() {
                    spec.effective(be, self.dims, &point)?
                } else {
                    spec.constant.clone()
                };
                let e = kkt.stack(be, &data.b, &data.h)?;
                let (dx, _) = kkt.solve(be, &data.q, &e)?;
                Ok((*key, Derivative::Kkt(dx)))
            })
            .collect()
    }

    /// Inequalities with both `s_i <= tol` and `nu_i <= tol`, where `tol` is the residual
    /// rule's `eps_abs + eps_rel max(1, |s|, |nu|)` (1e-6 relative for the other rules).
    fn weakly_active(&self, solution: &Solution<B>) -> Result<Vec<usize>> {
        let s = download(&self.backend, solution.s())?;
        let nu = download(&self.backend, solution.nu())?;
        Ok(self.weak_rows(&s, &nu))
    }

    /// [`AltDiff::weakly_active`] of one column `(s, nu)` on the host.
    fn weak_rows(&self, s: &[f64], nu: &[f64]) -> Vec<usize> {
        // s is zero on the active rows of an ADMM iterate and of the order of its row's
        // terms elsewhere: one loose bound must not make every row look weakly active
        let scale = nu.iter().fold(1.0_f64, |a, v| a.max(v.abs()));
        let tol = match self.settings.stopping {
            StoppingRule::Residual { eps_abs, eps_rel } => eps_abs + eps_rel * scale,
            _ => 1e-6 * scale,
        };
        s.iter()
            .zip(nu)
            .enumerate()
            .filter(|(_, (s, nu))| **s <= tol && **nu <= tol)
            .map(|(i, _)| i)
            .collect()
    }

    /// What the stopping rule needs of the iterate before a step.
    fn snapshot(
        &self,
        rule: StoppingRule,
        ops: &Operators<'_, B>,
        iterate: &Iterate<B>,
        params: &QpParams<B>,
    ) -> Result<Previous<B>> {
        let mut prev = Previous {
            x: None,
            objective: None,
        };
        match rule {
            StoppingRule::RelativeObjective(_) => {
                let f = ops.objective(&iterate.x, &params.q)?.to_f64_lossy();
                prev.objective = Some(f * self.units.cost);
            }
            StoppingRule::RelativeX(_) => prev.x = Some(iterate.x.clone()),
            StoppingRule::Residual { .. } | StoppingRule::Fixed(_) => {}
        }
        Ok(prev)
    }
}

/// The range of the adaptive penalty (OSQP's).
pub(crate) const RHO_RANGE: (f64, f64) = (1e-6, 1e6);

/// Residual balancing: `rho sqrt((r_p / scale_p) / (r_d / scale_d))` (the ADMM residuals
/// in the iterated problem's units, [`Measures::balance`]) within [`RHO_RANGE`], when it is
/// more than `factor` away from `rho` (and finite), `None` otherwise.
pub(crate) fn balanced_rho<T: Real>(rho: T, m: &Measures, factor: f64) -> Option<T> {
    let tiny = 1e-30;
    let [primal, dual] = m.balance;
    let rho_f = rho.to_f64_lossy();
    let proposal = (rho_f * (primal / dual.max(tiny)).sqrt()).clamp(RHO_RANGE.0, RHO_RANGE.1);
    let ratio = proposal / rho_f;
    (proposal.is_finite() && proposal > 0.0 && (ratio > factor || ratio < 1.0 / factor))
        .then(|| T::of(proposal))
}

/// Whether every tangent block is finite.
fn tangents_finite<B: LinAlg>(backend: &B, runs: &[TangentRun<'_, B>]) -> Result<bool> {
    for run in runs {
        if !backend.norm_inf(&run.iterate.x)?.is_finite() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The relative tolerance of the convexity test: `P` is accepted as positive semidefinite
/// when `P + 1e-5 max(1, |P|_inf) I` is positive definite. Data rounded in their last
/// digits are not exactly PSD: `P` of VALUES (Maros-Meszaros, solved by OSQP and Clarabel)
/// has eigenvalues `-1.27e-5`, `1.2e-6 |P|_inf`; the test of `sqrt(eps)` rejected it.
pub(crate) const CONVEXITY_TOLERANCE: f64 = 1e-5;

/// The shift of the convexity test: [`CONVEXITY_TOLERANCE`] `* max(1, |P|_inf)` (the
/// largest row sum of `|P|`, a bound on its spectral radius).
fn convexity_shift<B: LinAlg>(backend: &B, p: &B::Op) -> Result<f64> {
    let (rows, _) = backend.op_abs_sums(p)?;
    Ok(CONVEXITY_TOLERANCE * largest(&rows).max(1.0))
}

/// The largest entry (0 when empty).
fn largest(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

/// The largest row sum of `|P|`, and the largest row and column sums of `|C|`
/// (`C = [A; G]`): `|H|_inf <= p_rows + rho c_cols c_rows` in the convexity test.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SumBounds {
    pub p_rows: f64,
    pub c_rows: f64,
    pub c_cols: f64,
}

impl SumBounds {
    /// The bounds from the row (or, as `P` is symmetric, column) sums of `|P|` and the
    /// profiles of `A` and `G`.
    pub fn of<T>(p_rows: &[f64], blocks: [&crate::kernels::AbsProfile<T>; 2]) -> Self {
        let [a, g] = blocks;
        let c_cols = a.col_sums.iter().zip(&g.col_sums).map(|(x, y)| x + y);
        Self {
            p_rows: largest(p_rows),
            c_rows: largest(&a.row_sums).max(largest(&g.row_sums)),
            c_cols: c_cols.fold(0.0, f64::max),
        }
    }
}

/// [`Error::Overflow`] when the largest entry `c` of `A` or `G` makes `rho c^2 (p + m)`, a
/// bound on the entries of `rho C'C`, overflow the backend's scalar: a failed factorization
/// of `H` then says so instead of blaming `P`.
fn overflow_of<B: LinAlg>(backend: &B, ops: [&B::Op; 2], dims: QpDims, rho: B::Real) -> Result<()> {
    let limit = B::Real::max_value().to_f64_lossy();
    for (field, op) in [Field::A, Field::G].into_iter().zip(ops) {
        let largest = backend
            .op_abs_profile(op, false)?
            .col_max
            .into_iter()
            .map(Real::to_f64_lossy)
            .fold(0.0, f64::max);
        let bound = rho.to_f64_lossy() * largest * largest * (dims.p + dims.m) as f64;
        if bound.is_nan() || bound >= limit {
            return Err(Error::Overflow {
                field,
                value: largest,
            });
        }
    }
    Ok(())
}

/// The convexity test on `M = C H^-1 C'` (r x r) instead of `P` (n x n). With `H = L L'`
/// and `W = L^-1 C'`, `P = H - rho C'C = L (I - rho W W') L'`, and `W W'` has the nonzero
/// eigenvalues of `W'W = M`: `P` is positive semidefinite iff `rho lambda_max(M) <= 1`.
/// The test passes when `(1 + tau)/rho I - M` has a Cholesky factor, with
/// `tau = shift / |H|_inf` (`|H|_inf <= |P|_inf + rho |C|_1 |C|_inf`) and the shift of
/// [`check_convexity`]: then `x'Px >= -tau x'Hx >= -shift |x|^2`, the same guarantee as
/// that test. A failure is not conclusive (the bound on `|H|` may be loose): the caller then
/// runs [`check_convexity`].
///
/// A coarse factor ([`refine::is_coarse`], e.g. single precision) knows `M` only to its own
/// precision: its `M` is `C H~^-1 C'` for an `H~` within rounding of `H`, so no test on it
/// resolves `P` beyond that. The test is then made in the factor's arithmetic
/// ([`LinAlg::cholesky_owned_coarse`]), with `tau` at least `r` times the factor's unit
/// roundoff (what a Cholesky of `r` rows in it may lose): `x'Px >= -tau x'Hx` to the
/// factor's precision.
fn convex_by_gram<B: LinAlg>(
    backend: &B,
    dual: &DualOps<B>,
    p: &B::Op,
    sums: Option<SumBounds>,
    rho: B::Real,
) -> Result<bool> {
    let r = backend.op_shape(&dual.c).0;
    let sums = match sums {
        Some(sums) => sums,
        None => {
            let (p_rows, _) = backend.op_abs_sums(p)?;
            let (c_rows, c_cols) = backend.op_abs_sums(&dual.c)?;
            SumBounds {
                p_rows: largest(&p_rows),
                c_rows: largest(&c_rows),
                c_cols: largest(&c_cols),
            }
        }
    };
    let rho_f = rho.to_f64_lossy();
    let h_norm = sums.p_rows + rho_f * sums.c_cols * sums.c_rows;
    let coarse = refine::is_coarse(backend);
    let rounding = if coarse {
        r as f64 * backend.factor_epsilon()
    } else {
        0.0
    };
    let shift = CONVEXITY_TOLERANCE * sums.p_rows.max(1.0);
    let tau = (shift / h_norm.max(f64::MIN_POSITIVE)).max(rounding);
    let diagonal = B::Real::of((1.0 + tau) / rho_f);
    let affine = (-B::Real::one(), diagonal);
    match backend.cholesky_schur(r, &dual.m_host, affine, None, coarse) {
        Ok(_) => Ok(true),
        Err(Error::NotPositiveDefinite { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Tests that `P` is positive semidefinite: Cholesky of `P + shift I` with
/// `shift` of [`convexity_shift`].
fn check_convexity<B: LinAlg>(backend: &B, p: &B::Op) -> Result<()> {
    let shift = convexity_shift(backend, p)?;
    if backend.is_psd_with_shift(p, B::Real::of(shift))? {
        Ok(())
    } else {
        Err(Error::NotConvex { shift })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels;

    /// A column-major `r x c` block of small integers and halves (sums exact in `f64`).
    fn block(r: usize, c: usize, seed: usize) -> Vec<f64> {
        (0..r * c)
            .map(|k| ((k * 7 + seed * 13) % 11) as f64 / 2.0 - 2.5)
            .collect()
    }

    #[test]
    fn sum_bounds_equal_the_sums_of_the_stacked_blocks() {
        // more rows than the kernels' lanes, and a tail; P symmetric
        let (n, p, m) = (11, 9, 3);
        let w = block(n, n, 1);
        let pm: Vec<f64> = (0..n * n).map(|k| w[k] + w[(k % n) * n + k / n]).collect();
        let (a, g) = (block(p, n, 2), block(m, n, 3));
        let profile = |d: &[f64], r: usize, rows| kernels::abs_profile(d.chunks_exact(r), r, rows);
        let (pp, ap, gp) = (
            profile(&pm, n, false),
            profile(&a, p, true),
            profile(&g, m, true),
        );
        // the one-pass profile is the two-pass maxima and sums
        for (d, r, got) in [(&a, p, &ap), (&g, m, &gp)] {
            let ones = vec![1.0; n.max(r)];
            let (row_max, col_max) =
                kernels::abs_max_scaled(d.chunks_exact(r), &ones[..r], &ones[..n]);
            let (row_sums, col_sums) = kernels::abs_sums(d.chunks_exact(r), r);
            assert_eq!((&got.row_max, &got.col_max), (&row_max, &col_max));
            assert_eq!((&got.row_sums, &got.col_sums), (&row_sums, &col_sums));
        }
        // P by columns only
        let ones = vec![1.0; n];
        let (_, col_max) = kernels::abs_max_scaled(pm.chunks_exact(n), &ones, &ones);
        let (_, col_sums) = kernels::abs_sums(pm.chunks_exact(n), n);
        assert_eq!((&pp.col_max, &pp.col_sums), (&col_max, &col_sums));
        assert!(pp.row_max.is_empty() && pp.row_sums.is_empty());
        // the bounds are those of P and of the stacked C = [A; G]
        let c: Vec<f64> = (0..n)
            .flat_map(|j| a[j * p..(j + 1) * p].iter().chain(&g[j * m..(j + 1) * m]))
            .copied()
            .collect();
        let (c_rows, c_cols) = kernels::abs_sums(c.chunks_exact(p + m), p + m);
        let (p_rows, _) = kernels::abs_sums(pm.chunks_exact(n), n);
        assert_eq!(
            SumBounds::of(&pp.col_sums, [&ap, &gp]),
            SumBounds {
                p_rows: largest(&p_rows),
                c_rows: largest(&c_rows),
                c_cols: largest(&c_cols),
            }
        );
    }
}

#[cfg(all(test, feature = "testing"))]
mod sharing_tests {
    use super::*;
    use crate::testing::{RefBackend, tiny_qp};
    use crate::{Qp, Ruiz};

    fn shares(solver: &AltDiff<RefBackend>, qp: &Qp<RefBackend>) -> [bool; 3] {
        let theirs = qp.shared().expect("a Qp shares its matrices");
        let ours = [&solver.p, &solver.a, &solver.g];
        std::array::from_fn(|i| Arc::ptr_eq(ours[i], &theirs[i]))
    }

    #[test]
    fn a_solver_shares_the_matrices_it_leaves_unscaled() -> Result<()> {
        let be = RefBackend;
        let qp = Qp::from_host(&be, &tiny_qp())?;
        // no scaling, and a scaling pass that finds the data well scaled: no copy
        for scaling in [None, Some(Ruiz::default())] {
            let solver = AltDiff::new(be, &qp, Settings::default().with_scaling(scaling))?;
            assert_eq!(shares(&solver, &qp), [true; 3], "{scaling:?}");
        }
        // always equilibrated: the solver's own scaled copies, the problem's untouched
        let always = Ruiz {
            threshold: 1.0,
            ..Ruiz::default()
        };
        let solver = AltDiff::new(be, &qp, Settings::default().with_scaling(Some(always)))?;
        assert_eq!(shares(&solver, &qp), [false; 3]);
        let p = be.op_to_col_major(qp.p())?;
        assert_eq!(p[..3], [2.0, 0.5, 0.0]);
        assert_ne!(be.op_to_col_major(&solver.p)?, p);
        Ok(())
    }
}
