//! [`SmoothSolver`]: ADMM with a Newton x-update for smooth convex objectives, the Alt-Diff
//! Jacobians carried alongside, and the KKT adjoint (VJP) at the solution.

use num_traits::{Float, One, Zero};

use crate::smooth::{
    Hessian, InputProblem, NewtonSystem, SmoothObjective, SmoothParam, SmoothSettings, identity,
};
use crate::solver::{
    Checks, Criterion, HostBlock, Measures, Operators, Units, balanced_rho, clean_duals,
    download_block,
};
use crate::{
    Accum, Error, Field, HostMatrix, Iterate, LinAlg, Method, QpDims, Real, Result, Status,
    StoppingRule, Trans,
};

/// Armijo's sufficient-decrease constant of the line search.
const ARMIJO: f64 = 1e-4;
/// Halvings of the step before the line search gives up.
const MAX_HALVINGS: usize = 60;

/// ADMM for `min f(x; theta) s.t. Ax = b, Gx <= h` with an inner Newton solve for `x`, the
/// Jacobians of the solution by Alt-Diff (or KKT), and VJPs by the KKT adjoint.
///
/// Set up once for the constraint matrices `A` (p x n) and `G` (m x n); then
/// [`SmoothSolver::solve`] takes any objective ([`SmoothObjective`]) and right-hand sides
/// `b`, `h`. See the [module docs](crate::smooth) for the iteration and its derivatives.
///
/// | derivative | call | cost |
/// |---|---|---|
/// | Jacobian wrt theta, b, h (Alt-Diff) | [`SmoothSolver::solve`] with `wrt` | one solve with `H(x)` of an `n x d` block per iteration |
/// | Jacobian wrt theta, b, h (KKT) | [`SmoothSolver::kkt_jacobian`], or [`Method::Kkt`] | one factorization of the KKT system at the solution |
/// | VJP wrt theta, b, h | [`SmoothSolver::vjp`] | the same factorization, one column per seed |
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{LinAlg, testing::RefBackend};
/// use altdiff_core::smooth::{SmoothParam, SmoothSettings, SmoothSolver, layers::Entropy};
/// let be = RefBackend;
/// // the softmax of y as min sum x log x - y'x s.t. 1'x = 1
/// let a = be.op_from_col_major(1, 2, &[1.0, 1.0])?;
/// let g = be.op_from_col_major(0, 2, &[])?;
/// let solver = SmoothSolver::new(be, a, g, SmoothSettings::default())?;
/// let (b, h) = (be.mat_from_col_major(1, 1, &[1.0])?, be.zeros(0, 1)?);
/// let f = Entropy::new(vec![0.0, 1.0_f64.ln()])?;
/// let sol = solver.solve(&f, &b, &h, &[SmoothParam::Theta])?;
/// let x = be.to_col_major(sol.x())?;
/// assert!((x[0] - 0.5).abs() < 1e-6 && (x[1] - 0.5).abs() < 1e-6);
/// let j = be.to_col_major(sol.jacobian(SmoothParam::Theta).unwrap())?; // diag(x) - x x'
/// assert!((j[0] - 0.25).abs() < 1e-5 && (j[1] + 0.25).abs() < 1e-5);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Debug)]
pub struct SmoothSolver<B: LinAlg> {
    backend: B,
    dims: QpDims,
    a: B::Op,
    g: B::Op,
    /// `C = [A; G]` (r x n).
    c: B::Op,
    /// `C'` (n x r), for the Woodbury form.
    ct: Option<B::Op>,
    settings: SmoothSettings,
}

/// The result of [`SmoothSolver::solve`]: the primal-dual point, how the iteration ended,
/// and the Jacobians asked for.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{LinAlg, testing::RefBackend};
/// use altdiff_core::smooth::{SmoothSettings, SmoothSolver, layers::SquaredDistance};
/// let be = RefBackend;
/// let none = be.op_from_col_major(0, 2, &[])?;
/// let solver = SmoothSolver::new(be, none.clone(), none, SmoothSettings::default())?;
/// let f = SquaredDistance::new(vec![1.0, 2.0])?;                 // unconstrained: x = y
/// let sol = solver.solve(&f, &be.zeros(0, 1)?, &be.zeros(0, 1)?, &[])?;
/// assert!(sol.status().is_solved());
/// assert_eq!(sol.factorizations(), 1);                           // constant Hessian
/// assert!((be.to_col_major(sol.x())?[1] - 2.0).abs() < 1e-9);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SmoothSolution<B: LinAlg> {
    iterate: Iterate<B>,
    status: Status,
    iterations: usize,
    newton_steps: usize,
    factorizations: usize,
    rho: B::Real,
    rho_updates: usize,
    objective: B::Real,
    primal_residual: B::Real,
    dual_residual: B::Real,
    duality_gap: B::Real,
    jacobians: Vec<(SmoothParam, B::Mat)>,
}

impl<B: LinAlg> SmoothSolution<B> {
    /// How the iteration ended.
    pub fn status(&self) -> Status {
        self.status
    }

    /// ADMM iterations run.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// Newton steps taken over all x-updates.
    pub fn newton_steps(&self) -> usize {
        self.newton_steps
    }

    /// Factorizations of the Newton system (for a quadratic objective: one, plus one per
    /// change of the adaptive penalty).
    pub fn factorizations(&self) -> usize {
        self.factorizations
    }

    /// The penalty in force at the end (see [`SmoothSettings::adaptive_rho`]).
    pub fn rho(&self) -> B::Real {
        self.rho
    }

    /// How many times the adaptive penalty changed.
    pub fn rho_updates(&self) -> usize {
        self.rho_updates
    }

    /// `f(x)` at the solution.
    pub fn objective(&self) -> B::Real {
        self.objective
    }

    /// `max(|Ax - b|, |max(Gx - h, 0)|)` at the last check (judged row by row, as the QP
    /// solver's [`Solution::primal_residual`](crate::Solution::primal_residual)).
    pub fn primal_residual(&self) -> B::Real {
        self.primal_residual
    }

    /// `|grad f(x) + A'lam + G'nu|` at the last check.
    pub fn dual_residual(&self) -> B::Real {
        self.dual_residual
    }

    /// `|x'grad f(x) + b'lam + h'nu|` at the last check: the duality gap of the
    /// linearization at `x`, zero at a KKT point.
    pub fn duality_gap(&self) -> B::Real {
        self.duality_gap
    }

    /// The primal solution (n x 1).
    pub fn x(&self) -> &B::Mat {
        &self.iterate.x
    }

    /// The slack `s = h - Gx >= 0` (m x 1).
    pub fn s(&self) -> &B::Mat {
        &self.iterate.s
    }

    /// The duals of the equalities (p x 1).
    pub fn lam(&self) -> &B::Mat {
        &self.iterate.lam
    }

    /// The duals of the inequalities, `nu >= 0` (m x 1).
    pub fn nu(&self) -> &B::Mat {
        &self.iterate.nu
    }

    /// The whole iterate `(x, s, lam, nu)`.
    pub fn iterate(&self) -> &Iterate<B> {
        &self.iterate
    }

    /// `dx/dparam` (n x size of the parameter), when it was asked for.
    pub fn jacobian(&self, param: SmoothParam) -> Option<&B::Mat> {
        self.jacobians
            .iter()
            .find(|(p, _)| *p == param)
            .map(|(_, j)| j)
    }
}

/// The gradients `J'g` of [`SmoothSolver::vjp`] for a seed `g` (n x k).
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{LinAlg, testing::RefBackend};
/// use altdiff_core::smooth::{SmoothSettings, SmoothSolver, layers::Entropy};
/// let be = RefBackend;
/// let a = be.op_from_col_major(1, 2, &[1.0, 1.0])?;
/// let g = be.op_from_col_major(0, 2, &[])?;
/// let solver = SmoothSolver::new(be, a, g, SmoothSettings::default().with_tolerances(1e-10, 1e-10))?;
/// let (b, h) = (be.mat_from_col_major(1, 1, &[1.0])?, be.zeros(0, 1)?);
/// let f = Entropy::new(vec![0.0, 0.0])?;                    // x = (1/2, 1/2)
/// let sol = solver.solve(&f, &b, &h, &[])?;
/// let seed = be.mat_from_col_major(2, 1, &[1.0, 0.0])?;
/// let grads = solver.vjp(&f, &sol, &seed)?;
/// let gy = be.to_col_major(&grads.theta)?;                   // row 0 of diag(x) - x x'
/// assert!((gy[0] - 0.25).abs() < 1e-8 && (gy[1] + 0.25).abs() < 1e-8);
/// assert!((be.to_col_major(&grads.b)?[0] - 0.5).abs() < 1e-8); // dx_0/db = x_0
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SmoothGrads<B: LinAlg> {
    /// `(dx/dtheta)' g` (d x k).
    pub theta: B::Mat,
    /// `(dx/db)' g` (p x k).
    pub b: B::Mat,
    /// `(dx/dh)' g` (m x k); zero on the inactive rows.
    pub h: B::Mat,
}

/// `(hess f + shift C'C)^-1` for the constraint rows `C` it was built with.
#[derive(Debug)]
enum NewtonFactor<B: LinAlg> {
    /// The `n x n` Cholesky factorization.
    Full(B::Factor),
    /// `D^-1` alone (no rows, or no shift).
    Diagonal(Vec<B::Real>),
    /// `D^-1 - D^-1 C' M^-1 C D^-1` with `M = I/shift + C D^-1 C'` factored (r x r).
    Woodbury { dinv: Vec<B::Real>, m: B::Factor },
}

impl<B: LinAlg> NewtonFactor<B> {
    /// Factors `hess + shift C'C` for `C` (r x n, `ct` its transpose when available).
    fn new(
        be: &B,
        hess: &Hessian<B>,
        c: &B::Op,
        ct: Option<&B::Op>,
        shift: B::Real,
        system: NewtonSystem,
    ) -> Result<Self> {
        let (r, n) = be.op_shape(c);
        if let Hessian::Diagonal(d) = hess
            && d.len() == n
            && d.iter().all(|&v| v.is_finite() && v > B::Real::zero())
        {
            let dinv: Vec<B::Real> = d.iter().map(|&v| B::Real::one() / v).collect();
            if r == 0 || shift == B::Real::zero() {
                return Ok(NewtonFactor::Diagonal(dinv));
            }
            let woodbury = match system {
                NewtonSystem::Auto => r < n,
                NewtonSystem::Woodbury => true,
                NewtonSystem::Full => false,
            };
            if woodbury && let Some(ct) = ct {
                // M = I/shift + W'W with W = D^-1/2 C' (n x r): "P" = I/shift, "A" = W
                let sqrt: Vec<B::Real> = dinv.iter().map(|v| v.sqrt()).collect();
                let w = be.op_scaled(ct, &sqrt, &vec![B::Real::one(); r])?;
                let mut eye = vec![B::Real::zero(); r * r];
                (0..r).for_each(|i| eye[i * r + i] = B::Real::one() / shift);
                let eye = be.op_from_col_major(r, r, &eye)?;
                let none = be.op_from_col_major(0, r, &[])?;
                let m = be.factor(&eye, &w, &none, B::Real::one())?;
                return Ok(NewtonFactor::Woodbury { dinv, m });
            }
        }
        let none = be.op_from_col_major(0, n, &[])?;
        let factor = match hess {
            Hessian::Matrix(op) => be.factor(op, c, &none, shift)?,
            Hessian::Diagonal(d) => {
                // a sparse host diagonal: dense backends expand it, sparse ones keep it
                let entries: Vec<(usize, usize, f64)> = d
                    .iter()
                    .enumerate()
                    .take(n)
                    .map(|(i, v)| (i, i, v.to_f64_lossy()))
                    .collect();
                let op = be.op_from_host(&HostMatrix::from_triplets(Field::P, n, n, &entries)?)?;
                be.factor(&op, c, &none, shift)?
            }
        };
        Ok(NewtonFactor::Full(factor))
    }

    /// `v = (hess + shift C'C)^-1 v` with the rows `c` of construction.
    fn solve(&self, be: &B, c: &B::Op, v: &mut B::Mat) -> Result<()> {
        match self {
            NewtonFactor::Full(f) => be.solve_in_place(f, v),
            NewtonFactor::Diagonal(dinv) => be.scale_rows_cols(v, Some(dinv), None),
            NewtonFactor::Woodbury { dinv, m } => {
                let one = B::Real::one();
                let (r, n) = be.op_shape(c);
                let k = be.shape(v).1;
                be.scale_rows_cols(v, Some(dinv), None)?;
                let mut u = be.zeros(r, k)?;
                be.apply(&mut u, Accum::Replace, c, Trans::No, v, one)?;
                be.solve_in_place(m, &mut u)?;
                let mut w = be.zeros(n, k)?;
                be.apply(&mut w, Accum::Replace, c, Trans::Yes, &u, one)?;
                be.scale_rows_cols(&mut w, Some(dinv), None)?;
                be.axpby(-one, &w, one, v)
            }
        }
    }
}

/// The Newton state of a solve: the Hessian and factorization last formed.
struct Newton<B: LinAlg> {
    /// Whether the objective is quadratic (one exact step, one factorization per penalty).
    quadratic: bool,
    /// Whether the factorization was formed at the current `x`.
    fresh: bool,
    /// The penalty in force (adaptive rho moves it).
    rho: B::Real,
    hess: Option<Hessian<B>>,
    factor: Option<NewtonFactor<B>>,
    steps: usize,
    factorizations: usize,
}

/// A Jacobian block being iterated.
struct TangentRun<B: LinAlg> {
    param: SmoothParam,
    it: Iterate<B>,
    /// The identity of the parameter's size (`dtheta`, `db` or `dh`).
    eye: B::Mat,
    /// `-rho A'` (b) or `-rho G'` (h), n x d; `None` for theta.
    c: Option<B::Mat>,
    /// `E = d_theta grad f(x)` at the current iterate (theta only).
    e: Option<B::Mat>,
    /// `G J_x` (m x d).
    gx: B::Mat,
}

/// What a stopping rule compares with: `x` or `f(x)` before the step.
struct Snapshot<B: LinAlg> {
    x: Option<B::Mat>,
    objective: Option<B::Real>,
}

/// The KKT system `[hess f  C_a'; C_a  0]` at a point, `C_a = [A; G_active]`, factored.
struct Kkt<B: LinAlg> {
    ca: B::Op,
    active: Vec<usize>,
    factor: NewtonFactor<B>,
    shift: B::Real,
    /// `K = H^-1 C_a'` (n x r_a) as an operator, and the Cholesky factor of
    /// `S = C_a H^-1 C_a'`; `None` without active rows.
    schur: Option<(B::Op, B::Factor)>,
}

impl<B: LinAlg> SmoothSolver<B> {
    /// A solver for the constraints `A` (p x n) and `G` (m x n); either may have zero rows.
    ///
    /// # Errors
    /// [`Error::Settings`] for bad settings, [`Error::Dimension`] when `G` and `A` have
    /// different numbers of columns, [`Error::NonFinite`] for a NaN or infinite entry, or a
    /// backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{Error, Field, LinAlg, testing::RefBackend};
    /// use altdiff_core::smooth::{SmoothSettings, SmoothSolver};
    /// let be = RefBackend;
    /// let a = be.op_from_col_major(1, 2, &[1.0, 1.0])?;
    /// let g = be.op_from_col_major(1, 3, &[1.0, 1.0, 1.0])?;
    /// let err = SmoothSolver::new(be, a, g, SmoothSettings::default()).unwrap_err();
    /// assert!(matches!(err, Error::Dimension { field: Field::G, .. }));
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn new(backend: B, a: B::Op, g: B::Op, settings: SmoothSettings) -> Result<Self> {
        settings.validate()?;
        let (p, n) = backend.op_shape(&a);
        let (m, n_g) = backend.op_shape(&g);
        if n_g != n {
            return Err(Error::Dimension {
                field: Field::G,
                expected: (m, n),
                got: (m, n_g),
            });
        }
        for (field, op, rows) in [(Field::A, &a, p), (Field::G, &g, m)] {
            let data = backend.op_to_col_major(op)?;
            if let Some(k) = data.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    field,
                    row: k % rows.max(1),
                    col: k / rows.max(1),
                    value: data[k].to_f64_lossy(),
                });
            }
        }
        let c = backend.op_stack_rows(&a, &g)?;
        let r = p + m;
        let ct = if r > 0 && settings.newton_system != NewtonSystem::Full {
            Some(transposed_op(&backend, &c)?)
        } else {
            None
        };
        Ok(Self {
            backend,
            dims: QpDims { n, p, m },
            a,
            g,
            c,
            ct,
            settings,
        })
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The sizes `n`, `p`, `m`.
    pub fn dims(&self) -> QpDims {
        self.dims
    }

    /// The settings.
    pub fn settings(&self) -> &SmoothSettings {
        &self.settings
    }

    fn rho(&self) -> B::Real {
        B::Real::of(self.settings.rho)
    }

    /// Solves `min f(x) s.t. Ax = b, Gx <= h` from `f`'s initial point, with the Jacobians
    /// `dx/dparam` for every parameter in `wrt` (by Alt-Diff, or by KKT at the solution with
    /// [`Method::Kkt`]). Not converging within `max_iter` is [`Status::MaxIterations`].
    ///
    /// # Errors
    /// [`Error::Input`] when `f` has another dimension than the constraints or its initial
    /// point has the wrong shape; [`Error::Dimension`] / [`Error::NonFinite`] for `b` (p x 1)
    /// or `h` (m x 1); [`Error::NotPositiveDefinite`] when `hess f + rho (A'A + G'G)` is
    /// singular; [`Error::SingularKkt`] for KKT Jacobians at a degenerate active set; a
    /// backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, Status, testing::RefBackend};
    /// use altdiff_core::smooth::{SmoothParam, SmoothSettings, SmoothSolver, layers::Entropy};
    /// let be = RefBackend;
    /// // min sum x log x s.t. x_0 + x_1 = 1, x_0 <= h: x = (h, 1 - h) for h < 1/2
    /// let a = be.op_from_col_major(1, 2, &[1.0, 1.0])?;
    /// let g = be.op_from_col_major(1, 2, &[1.0, 0.0])?;
    /// let solver = SmoothSolver::new(be, a, g, SmoothSettings::default().with_tolerances(1e-9, 1e-9))?;
    /// let (b, h) = (be.mat_from_col_major(1, 1, &[1.0])?, be.mat_from_col_major(1, 1, &[0.3])?);
    /// let sol = solver.solve(&Entropy::new(vec![0.0, 0.0])?, &b, &h, &[SmoothParam::H])?;
    /// assert_eq!(sol.status(), Status::Solved);
    /// let dx_dh = be.to_col_major(sol.jacobian(SmoothParam::H).unwrap())?;
    /// assert!((dx_dh[0] - 1.0).abs() < 1e-6 && (dx_dh[1] + 1.0).abs() < 1e-6);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn solve<F: SmoothObjective<B> + ?Sized>(
        &self,
        f: &F,
        b: &B::Mat,
        h: &B::Mat,
        wrt: &[SmoothParam],
    ) -> Result<SmoothSolution<B>> {
        let be = &self.backend;
        let QpDims { n, p, m } = self.dims;
        self.check_objective(f)?;
        check_block(be, Field::B, b, p)?;
        check_block(be, Field::H, h, m)?;
        let mut wrt = wrt.to_vec();
        wrt.sort_unstable();
        wrt.dedup();
        let one = B::Real::one();
        let x0 = f.initial_point(be)?;
        if be.shape(&x0) != (n, 1) {
            return Err(Error::Input {
                name: "initial point",
                problem: InputProblem::Length {
                    expected: n,
                    got: be.shape(&x0).0,
                },
            });
        }
        let mut it = Iterate::zeros(be, self.dims, 1)?;
        it.x = x0;
        let mut newton: Newton<B> = Newton {
            quadratic: f.is_quadratic(),
            fresh: false,
            rho: self.rho(),
            hess: None,
            factor: None,
            steps: 0,
            factorizations: 0,
        };
        let (mut changes, mut last_change) = (0, 0);
        let mut runs = if self.settings.method == Method::AltDiff {
            self.tangent_runs(f, &wrt, newton.rho)?
        } else {
            Vec::new()
        };
        let mut grad = be.zeros(n, 1)?;
        let mut lin = be.zeros(n, 1)?;
        let mut gx = be.zeros(m, 1)?;
        let (limit, mut status) = match self.settings.stopping {
            StoppingRule::Fixed(k) => (k, Status::FixedIterations),
            _ => (self.settings.max_iter, Status::MaxIterations),
        };
        let mut iterations = 0;
        let mut last: Option<Measures> = None;
        let mut checks = Checks::new(self.settings.check_every, self.settings.stopping, 1.0);
        while iterations < limit {
            iterations += 1;
            let check = checks.due(iterations, limit);
            let prev = if check {
                Some(self.snapshot(f, &it.x)?)
            } else {
                None
            };
            let rho: B::Real = newton.rho;
            // lin = A'(lam - rho b) + G'(nu + rho (s - h)): grad phi = grad f + lin + rho C'Cx
            let mut u = it.lam.clone();
            be.axpby(-rho, b, one, &mut u)?;
            be.apply(&mut lin, Accum::Replace, &self.a, Trans::Yes, &u, one)?;
            let mut w = it.nu.clone();
            be.axpby(rho, &it.s, one, &mut w)?;
            be.axpby(-rho, h, one, &mut w)?;
            be.apply(&mut lin, Accum::Add, &self.g, Trans::Yes, &w, one)?;
            if !self.newton(f, &mut it.x, &lin, &mut newton, &mut grad)? {
                status = Status::NumericalError;
                break;
            }
            if !runs.is_empty() && !newton.quadratic && !newton.fresh {
                // the tangent step needs H(x_{k+1}); it also starts the next x-update
                self.refactor(f, &it.x, &mut newton)?;
            }
            // s = max(0, -nu/rho - (Gx - h)); lam += rho (Ax - b); nu += rho (Gx + s - h)
            be.apply(&mut gx, Accum::Replace, &self.g, Trans::No, &it.x, one)?;
            be.copy_from(&mut it.s, h)?;
            be.axpby(-one, &gx, one, &mut it.s)?;
            be.axpby(-one / rho, &it.nu, one, &mut it.s)?;
            be.proj_nonneg(&mut it.s)?;
            be.apply(&mut it.lam, Accum::Add, &self.a, Trans::No, &it.x, rho)?;
            be.axpby(-rho, b, one, &mut it.lam)?;
            be.axpby(rho, &gx, one, &mut it.nu)?;
            be.axpby(rho, &it.s, one, &mut it.nu)?;
            be.axpby(-rho, h, one, &mut it.nu)?;
            if !runs.is_empty() && newton.factor.is_none() {
                // no Newton step was needed yet (x0 solves the x-update): factor at x now
                self.refactor(f, &it.x, &mut newton)?;
            }
            if let Some(factor) = &newton.factor {
                for run in &mut runs {
                    self.tangent_step(f, &it, run, factor, rho)?;
                }
            }
            if !check {
                continue;
            }
            let now = self.measure(&it, b, h, &grad)?;
            let finite = now.is_finite() && tangents_finite(be, &runs)?;
            last = Some(now);
            if !finite {
                status = Status::NumericalError;
                break;
            }
            let now = last.as_ref().expect("just set");
            if !self.converged(f, now, &it.x, prev.as_ref())? {
                if let Some(adaptive) = self.settings.adaptive_rho
                    && changes < adaptive.max_updates
                    && iterations - last_change >= adaptive.every
                    && let Some(proposal) = balanced_rho(rho, now, adaptive.factor)
                {
                    // the factorization and the tangents' constant terms follow the penalty
                    newton.rho = proposal;
                    self.refactor(f, &it.x, &mut newton)?;
                    for run in &mut runs {
                        run.c = self.tangent_constant(run.param, proposal)?;
                    }
                    (changes, last_change) = (changes + 1, iterations);
                }
                continue;
            }
            if let (Some(c), Some(hess)) = (Criterion::of(self.settings.stopping), &newton.hess) {
                let mut all = true;
                for run in &runs {
                    if !self.tangent_passes(run, hess, c)? {
                        all = false;
                        break;
                    }
                }
                if !all {
                    continue;
                }
            }
            status = Status::Solved;
            break;
        }
        let measures = match last {
            Some(m) if status != Status::FixedIterations => m,
            _ => {
                be.apply(&mut gx, Accum::Replace, &self.g, Trans::No, &it.x, one)?;
                self.measure(&it, b, h, &grad)?
            }
        };
        let objective = f.value(be, &it.x)?;
        if !measures.is_finite() || !objective.is_finite() {
            status = Status::NumericalError;
        }
        let mut jacobians: Vec<(SmoothParam, B::Mat)> =
            runs.into_iter().map(|r| (r.param, r.it.x)).collect();
        for (_, j) in &jacobians {
            if !be.norm_inf(j)?.is_finite() {
                status = Status::NumericalError;
            }
        }
        let mut solution = SmoothSolution {
            iterate: it,
            status,
            iterations,
            newton_steps: newton.steps,
            factorizations: newton.factorizations,
            rho: newton.rho,
            rho_updates: changes,
            objective,
            primal_residual: B::Real::of(measures.primal),
            dual_residual: B::Real::of(measures.dual),
            duality_gap: B::Real::of(measures.gap),
            jacobians: Vec::new(),
        };
        if self.settings.method == Method::Kkt
            && !wrt.is_empty()
            && status != Status::NumericalError
        {
            let kkt = self.kkt(f, &solution.iterate)?;
            jacobians = wrt
                .iter()
                .map(|&param| Ok((param, self.kkt_jacobian_with(f, &kkt, &solution, param)?)))
                .collect::<Result<_>>()?;
        }
        solution.jacobians = jacobians;
        Ok(solution)
    }

    /// `dx/dparam` at `solution` by implicit differentiation of the KKT conditions at its
    /// active set (`s_i = 0`): one factorization of the KKT system, for any parameter (the
    /// exact limit of the Alt-Diff recursion with the final mask).
    ///
    /// # Errors
    /// [`Error::SingularKkt`] when the active constraint rows are dependent;
    /// [`Error::Request`] for a solution with non-finite entries; a backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// use altdiff_core::smooth::{SmoothParam, SmoothSettings, SmoothSolver, layers::Entropy};
    /// let be = RefBackend;
    /// let a = be.op_from_col_major(1, 2, &[1.0, 1.0])?;
    /// let solver = SmoothSolver::new(be, a, be.op_from_col_major(0, 2, &[])?, SmoothSettings::default())?;
    /// let (b, h) = (be.mat_from_col_major(1, 1, &[1.0])?, be.zeros(0, 1)?);
    /// let f = Entropy::new(vec![0.0, 0.0])?;
    /// let sol = solver.solve(&f, &b, &h, &[])?;
    /// let j = be.to_col_major(&solver.kkt_jacobian(&f, &sol, SmoothParam::B)?)?;
    /// assert!((j[0] - 0.5).abs() < 1e-6);                       // x = b (1/2, 1/2)
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn kkt_jacobian<F: SmoothObjective<B> + ?Sized>(
        &self,
        f: &F,
        solution: &SmoothSolution<B>,
        param: SmoothParam,
    ) -> Result<B::Mat> {
        self.check_objective(f)?;
        self.check_usable(solution)?;
        let kkt = self.kkt(f, &solution.iterate)?;
        self.kkt_jacobian_with(f, &kkt, solution, param)
    }

    /// The VJP `J'g` for a seed `g` (n x k: one gradient `dloss/dx` per column) wrt theta,
    /// `b` and `h`, without forming a Jacobian: the adjoint of the converged Alt-Diff map
    /// with the final mask, solved in closed form as the KKT system at the active set
    /// (`s_i = 0`, and the weakly active rows).
    ///
    /// # Errors
    /// [`Error::Dimension`] / [`Error::NonFinite`] naming [`Field::Seed`] for a bad `g`,
    /// [`Error::SingularKkt`] at a degenerate active set, [`Error::Request`] for a solution
    /// with non-finite entries, or a backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// use altdiff_core::smooth::{SmoothSettings, SmoothSolver, layers::Entropy};
    /// let be = RefBackend;
    /// let a = be.op_from_col_major(1, 2, &[1.0, 1.0])?;
    /// let g = be.op_from_col_major(1, 2, &[1.0, 0.0])?;
    /// let solver = SmoothSolver::new(be, a, g, SmoothSettings::default())?;
    /// let (b, h) = (be.mat_from_col_major(1, 1, &[1.0])?, be.mat_from_col_major(1, 1, &[0.3])?);
    /// let f = Entropy::new(vec![0.0, 0.0])?;
    /// let sol = solver.solve(&f, &b, &h, &[])?;
    /// // two seeds at once: dx_0 and dx_1; x = (h, b - h)
    /// let seeds = be.mat_from_col_major(2, 2, &[1.0, 0.0, 0.0, 1.0])?;
    /// let grads = solver.vjp(&f, &sol, &seeds)?;
    /// assert_eq!(be.shape(&grads.h), (1, 2));
    /// let gh = be.to_col_major(&grads.h)?;
    /// assert!((gh[0] - 1.0).abs() < 1e-9 && (gh[1] + 1.0).abs() < 1e-9);
    /// let gb = be.to_col_major(&grads.b)?;
    /// assert!(gb[0].abs() < 1e-9 && (gb[1] - 1.0).abs() < 1e-9);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn vjp<F: SmoothObjective<B> + ?Sized>(
        &self,
        f: &F,
        solution: &SmoothSolution<B>,
        g: &B::Mat,
    ) -> Result<SmoothGrads<B>> {
        let be = &self.backend;
        let QpDims { n, p, m } = self.dims;
        self.check_objective(f)?;
        let (rows, k) = be.shape(g);
        if rows != n || k == 0 {
            return Err(Error::Dimension {
                field: Field::Seed,
                expected: (n, k.max(1)),
                got: (rows, k),
            });
        }
        check_finite(be, Field::Seed, g)?;
        self.check_usable(solution)?;
        let kkt = self.kkt(f, &solution.iterate)?;
        let ra = p + kkt.active.len();
        let zero_rhs = be.zeros(ra, k)?;
        let (z, w) = self.kkt_solve(&kkt, g.clone(), &zero_rhs)?;
        let mut theta = be.zeros(f.n_params(), k)?;
        f.mixed_apply_t(be, &solution.iterate.x, &z, &mut theta)?;
        be.axpby(-B::Real::one(), &theta.clone(), B::Real::zero(), &mut theta)?;
        let w = be.to_col_major(&w)?;
        let mut gb = Vec::with_capacity(p * k);
        let mut gh = vec![B::Real::zero(); m * k];
        for j in 0..k {
            let col = &w[j * ra..(j + 1) * ra];
            gb.extend_from_slice(&col[..p]);
            for (r, &i) in kkt.active.iter().enumerate() {
                gh[j * m + i] = col[p + r];
            }
        }
        Ok(SmoothGrads {
            theta,
            b: be.mat_from_col_major(p, k, &gb)?,
            h: be.mat_from_col_major(m, k, &gh)?,
        })
    }

    /// Refuses to differentiate a solution with NaN or infinite entries.
    fn check_usable(&self, solution: &SmoothSolution<B>) -> Result<()> {
        if solution.status == Status::NumericalError
            || !self.backend.norm_inf(&solution.iterate.x)?.is_finite()
        {
            return Err(Error::Request(
                "the solution has non-finite entries (status numerical_error): nothing to differentiate",
            ));
        }
        Ok(())
    }

    fn check_objective<F: SmoothObjective<B> + ?Sized>(&self, f: &F) -> Result<()> {
        if f.dim() != self.dims.n {
            return Err(Error::Input {
                name: "objective",
                problem: InputProblem::Length {
                    expected: self.dims.n,
                    got: f.dim(),
                },
            });
        }
        Ok(())
    }

    /// The inner Newton solve of the x-update, warm-started at `x`:
    /// `F(x) = grad f(x) + lin + rho C'C x = 0`. Leaves `grad f(x)` of the returned `x` in
    /// `grad`. Returns `false` when a NaN appeared.
    fn newton<F: SmoothObjective<B> + ?Sized>(
        &self,
        f: &F,
        x: &mut B::Mat,
        lin: &B::Mat,
        state: &mut Newton<B>,
        grad: &mut B::Mat,
    ) -> Result<bool> {
        let be = &self.backend;
        let quadratic = state.quadratic;
        let (one, zero, rho) = (B::Real::one(), B::Real::zero(), state.rho);
        let (n, r) = (self.dims.n, self.dims.p + self.dims.m);
        let fraction = B::Real::of(self.settings.boundary_fraction);
        let mut cx = be.zeros(r, 1)?;
        let mut residual = be.zeros(n, 1)?;
        // (previous |F|, whether the last step was a full one, whether it reused an older
        // factorization): a full step that does not halve |F| is in the rounding regime, or,
        // with an older factorization, calls for a new one
        let mut last: Option<(B::Real, bool, bool)> = None;
        let mut force = false;
        for step in 0..=self.settings.max_newton {
            f.gradient(be, x, grad)?;
            be.apply(&mut cx, Accum::Replace, &self.c, Trans::No, x, one)?;
            be.copy_from(&mut residual, grad)?;
            be.axpby(one, lin, one, &mut residual)?;
            be.apply(&mut residual, Accum::Add, &self.c, Trans::Yes, &cx, rho)?;
            let norm = be.norm_inf(&residual)?;
            if !norm.is_finite() {
                return Ok(false);
            }
            if quadratic {
                // one exact step (taken even when |F| is small: it costs one solve)
                if step == 1 {
                    break;
                }
            } else {
                let scale = one.max(be.norm_inf(grad)?);
                if norm <= self.newton_tolerance(scale) || step == self.settings.max_newton {
                    break;
                }
                if let Some((prev, true, reused)) = last
                    && norm > B::Real::of(0.5) * prev
                {
                    if !reused {
                        break;
                    }
                    force = true;
                }
            }
            let reused = if quadratic {
                if state.factor.is_none() {
                    self.refactor(f, x, state)?;
                }
                false
            } else {
                let hess = f.hessian(be, x)?;
                let reuse = !force
                    && state.factor.is_some()
                    && state.hess.as_ref().is_some_and(|old| {
                        hessian_change(old, &hess) <= B::Real::of(self.settings.hessian_reuse)
                    });
                if !reuse {
                    self.factor_with(hess, state)?;
                }
                reuse
            };
            let factor = state.factor.as_ref().expect("factored");
            let mut dx = residual.clone();
            factor.solve(be, &self.c, &mut dx)?;
            be.axpby(-one, &dx.clone(), zero, &mut dx)?;
            let max = f.max_step(be, x, &dx)?;
            let mut t = if max.is_finite() {
                one.min(fraction * max)
            } else {
                one
            };
            if t.is_nan() || t <= zero {
                break;
            }
            let mut trial = x.clone();
            if quadratic && max.is_infinite() {
                be.axpby(t, &dx, one, &mut trial)?;
            } else {
                // Armijo on phi(x) = f(x) + lin'x + rho/2 |Cx|^2, whose gradient is F
                let slope = be.dot(&residual, &dx)?;
                let phi0 = self.phi(f, x, lin, &cx, rho)?;
                let slack = B::Real::of(1e-12) * (one + phi0.abs());
                let mut accepted = false;
                let mut trial_cx = be.zeros(r, 1)?;
                for _ in 0..MAX_HALVINGS {
                    be.copy_from(&mut trial, x)?;
                    be.axpby(t, &dx, one, &mut trial)?;
                    be.apply(
                        &mut trial_cx,
                        Accum::Replace,
                        &self.c,
                        Trans::No,
                        &trial,
                        one,
                    )?;
                    let phi = self.phi(f, &trial, lin, &trial_cx, rho)?;
                    if phi.is_finite() && phi <= phi0 + B::Real::of(ARMIJO) * t * slope + slack {
                        accepted = true;
                        break;
                    }
                    t = t * B::Real::of(0.5);
                }
                if !accepted {
                    break;
                }
            }
            *x = trial;
            state.steps += 1;
            state.fresh = false;
            last = Some((norm, t == one, reused));
        }
        Ok(true)
    }

    /// The inner solve's tolerance on `|F|_inf` for the scale `max(1, |grad f|)`:
    /// `newton_tol * scale`, at most a tenth of the residual rule's dual tolerance (the
    /// x-update's error enters the dual residual), at least the rounding level.
    fn newton_tolerance(&self, scale: B::Real) -> B::Real {
        let mut tol = B::Real::of(self.settings.newton_tol) * scale;
        if let StoppingRule::Residual { eps_abs, eps_rel } = self.settings.stopping {
            tol = tol.min(B::Real::of(0.1) * (B::Real::of(eps_abs) + B::Real::of(eps_rel) * scale));
        }
        tol.max(B::Real::of(16.0) * B::Real::epsilon() * scale)
    }

    /// Forms `hess f(x)` and factors the Newton system with it.
    fn refactor<F: SmoothObjective<B> + ?Sized>(
        &self,
        f: &F,
        x: &B::Mat,
        state: &mut Newton<B>,
    ) -> Result<()> {
        let hess = f.hessian(&self.backend, x)?;
        self.factor_with(hess, state)
    }

    /// Factors the Newton system with the Hessian `hess`.
    fn factor_with(&self, hess: Hessian<B>, state: &mut Newton<B>) -> Result<()> {
        let factor = NewtonFactor::new(
            &self.backend,
            &hess,
            &self.c,
            self.ct.as_ref(),
            state.rho,
            self.settings.newton_system,
        )?;
        state.hess = Some(hess);
        state.factor = Some(factor);
        state.factorizations += 1;
        state.fresh = true;
        Ok(())
    }

    /// `f(x) + lin'x + rho/2 |Cx|^2`.
    fn phi<F: SmoothObjective<B> + ?Sized>(
        &self,
        f: &F,
        x: &B::Mat,
        lin: &B::Mat,
        cx: &B::Mat,
        rho: B::Real,
    ) -> Result<B::Real> {
        let be = &self.backend;
        let half = B::Real::of(0.5);
        Ok(f.value(be, x)? + be.dot(lin, x)? + half * rho * be.dot(cx, cx)?)
    }

    /// The Jacobian blocks to iterate, from zero.
    fn tangent_runs<F: SmoothObjective<B> + ?Sized>(
        &self,
        f: &F,
        wrt: &[SmoothParam],
        rho: B::Real,
    ) -> Result<Vec<TangentRun<B>>> {
        let be = &self.backend;
        wrt.iter()
            .map(|&param| {
                let d = self.param_len(f, param);
                Ok(TangentRun {
                    param,
                    it: Iterate::zeros(be, self.dims, d)?,
                    eye: identity(be, d)?,
                    c: self.tangent_constant(param, rho)?,
                    e: None,
                    gx: be.zeros(self.dims.m, d)?,
                })
            })
            .collect()
    }

    /// The constant term of a tangent's x-update: `-rho A'` (b), `-rho G'` (h), none
    /// (theta, whose `E` depends on `x`).
    fn tangent_constant(&self, param: SmoothParam, rho: B::Real) -> Result<Option<B::Mat>> {
        Ok(match param {
            SmoothParam::Theta => None,
            SmoothParam::B => Some(scaled_transpose(&self.backend, &self.a, -rho)?),
            SmoothParam::H => Some(scaled_transpose(&self.backend, &self.g, -rho)?),
        })
    }

    fn param_len<F: SmoothObjective<B> + ?Sized>(&self, f: &F, param: SmoothParam) -> usize {
        match param {
            SmoothParam::Theta => f.n_params(),
            SmoothParam::B => self.dims.p,
            SmoothParam::H => self.dims.m,
        }
    }

    /// One Alt-Diff step of a Jacobian block at the new forward iterate `fwd`:
    /// `J_x = -H^-1 [E + A'J_lam + G'(J_nu + rho J_s) - rho A'db - rho G'dh]`, then the
    /// masked slack and the dual updates.
    fn tangent_step<F: SmoothObjective<B> + ?Sized>(
        &self,
        f: &F,
        fwd: &Iterate<B>,
        run: &mut TangentRun<B>,
        factor: &NewtonFactor<B>,
        rho: B::Real,
    ) -> Result<()> {
        let be = &self.backend;
        let (one, zero) = (B::Real::one(), B::Real::zero());
        let d = be.shape(&run.eye).0;
        let mut v = match &run.c {
            Some(c) => c.clone(),
            None => {
                let mut e = match run.e.take() {
                    Some(e) => e,
                    None => be.zeros(self.dims.n, d)?,
                };
                f.mixed_apply(be, &fwd.x, &run.eye, &mut e)?;
                let v = e.clone();
                run.e = Some(e);
                v
            }
        };
        let t = &mut run.it;
        be.apply(&mut v, Accum::Add, &self.a, Trans::Yes, &t.lam, one)?;
        let mut w = t.nu.clone();
        be.axpby(rho, &t.s, one, &mut w)?;
        be.apply(&mut v, Accum::Add, &self.g, Trans::Yes, &w, one)?;
        factor.solve(be, &self.c, &mut v)?;
        be.axpby(-one, &v, zero, &mut t.x)?;
        be.apply(&mut run.gx, Accum::Replace, &self.g, Trans::No, &t.x, one)?;
        // J_s = 1[s > 0] (-J_nu/rho - G J_x + dh)
        be.axpby(-one / rho, &t.nu, zero, &mut t.s)?;
        be.axpby(-one, &run.gx, one, &mut t.s)?;
        if run.param == SmoothParam::H {
            be.axpby(one, &run.eye, one, &mut t.s)?;
        }
        be.dproj_nonneg(&fwd.s, &mut t.s)?;
        be.apply(&mut t.lam, Accum::Add, &self.a, Trans::No, &t.x, rho)?;
        if run.param == SmoothParam::B {
            be.axpby(-rho, &run.eye, one, &mut t.lam)?;
        }
        be.axpby(rho, &run.gx, one, &mut t.nu)?;
        be.axpby(rho, &t.s, one, &mut t.nu)?;
        if run.param == SmoothParam::H {
            be.axpby(-rho, &run.eye, one, &mut t.nu)?;
        }
        Ok(())
    }

    /// Whether a Jacobian block passes the residual rule on the differentiated KKT
    /// conditions `A J_x - db`, `G J_x + J_s - dh`, `hess J_x + E + A'J_lam + G'J_nu`
    /// (the QP solver's test, [`termination`](crate::solver)).
    fn tangent_passes(&self, run: &TangentRun<B>, hess: &Hessian<B>, c: Criterion) -> Result<bool> {
        let be = &self.backend;
        let t = &run.it;
        let d = be.shape(&run.eye).0;
        let zeros = |rows: usize| be.zeros(rows, d);
        let data = crate::QpParams {
            q: match &run.e {
                Some(e) => e.clone(),
                None => zeros(self.dims.n)?,
            },
            b: if run.param == SmoothParam::B {
                run.eye.clone()
            } else {
                zeros(self.dims.p)?
            },
            h: if run.param == SmoothParam::H {
                run.eye.clone()
            } else {
                zeros(self.dims.m)?
            },
        };
        let block = self.host_block(t, &data, &hess.apply(be, &t.x)?)?;
        Ok(block.tangents_pass(&c))
    }

    /// The measures of the forward iterate on the QP solver's test (see
    /// [`termination`](crate::solver)), with `grad = grad f(x)` in the place of `Px + q`
    /// (so the gap is `x'grad f(x) + b'lam + h'nu`): the residuals and their verdict.
    fn measure(&self, it: &Iterate<B>, b: &B::Mat, h: &B::Mat, grad: &B::Mat) -> Result<Measures> {
        let be = &self.backend;
        let cleaned = Iterate {
            nu: clean_duals(be, &it.s, &it.nu)?,
            ..it.clone()
        };
        let data = crate::QpParams {
            q: be.zeros(self.dims.n, 1)?,
            b: b.clone(),
            h: h.clone(),
        };
        let block = self.host_block(&cleaned, &data, grad)?;
        let criterion = Criterion::of(self.settings.stopping).unwrap_or(Criterion {
            eps_abs: 1e-6,
            eps_rel: 1e-6,
        });
        Ok(criterion.point(&block.column(0), self.dims.p, &Units::identity()))
    }

    /// The host block of the residuals of `it` with data `data`, `grad` standing for `Px`.
    fn host_block(
        &self,
        it: &Iterate<B>,
        data: &crate::QpParams<B>,
        grad: &B::Mat,
    ) -> Result<HostBlock> {
        let ops = Operators {
            backend: &self.backend,
            p: &self.a,
            a: &self.a,
            g: &self.g,
        };
        let mut products = ops.products(it)?;
        products.px = grad.clone();
        download_block(&self.backend, it, &products, data)
    }

    /// What the stopping rule compares with: `x` or `f(x)` before the step.
    fn snapshot<F: SmoothObjective<B> + ?Sized>(&self, f: &F, x: &B::Mat) -> Result<Snapshot<B>> {
        Ok(match self.settings.stopping {
            StoppingRule::RelativeX(_) => Snapshot {
                x: Some(x.clone()),
                objective: None,
            },
            StoppingRule::RelativeObjective(_) => Snapshot {
                x: None,
                objective: Some(f.value(&self.backend, x)?),
            },
            _ => Snapshot {
                x: None,
                objective: None,
            },
        })
    }

    fn converged<F: SmoothObjective<B> + ?Sized>(
        &self,
        f: &F,
        now: &Measures,
        x: &B::Mat,
        prev: Option<&Snapshot<B>>,
    ) -> Result<bool> {
        let be = &self.backend;
        Ok(match (self.settings.stopping, prev) {
            (StoppingRule::Residual { .. }, _) => now.passes,
            (StoppingRule::RelativeX(tol), Some(Snapshot { x: Some(old), .. })) => {
                let mut diff = x.clone();
                be.axpby(-B::Real::one(), old, B::Real::one(), &mut diff)?;
                be.norm_inf(&diff)? <= B::Real::of(tol) * be.norm_inf(old)?.max(B::Real::one())
            }
            (
                StoppingRule::RelativeObjective(tol),
                Some(Snapshot {
                    objective: Some(old),
                    ..
                }),
            ) => {
                let value = f.value(be, x)?;
                (value - *old).abs() <= B::Real::of(tol) * old.abs()
            }
            _ => false,
        })
    }

    /// The KKT system at the iterate's active set (`s_i <= 0`).
    fn kkt<F: SmoothObjective<B> + ?Sized>(&self, f: &F, it: &Iterate<B>) -> Result<Kkt<B>> {
        let be = &self.backend;
        let QpDims { n, p, m } = self.dims;
        let active = self.active_rows(it)?;
        let ra = p + active.len();
        // C_a = [A; G_active] on the host (column-major, ra x n)
        let a = be.op_to_col_major(&self.a)?;
        let g = be.op_to_col_major(&self.g)?;
        let mut ca = Vec::with_capacity(ra * n);
        for j in 0..n {
            ca.extend_from_slice(&a[j * p..(j + 1) * p]);
            ca.extend(active.iter().map(|&i| g[j * m + i]));
        }
        let ca_t: Vec<B::Real> = (0..ra)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .map(|(i, j)| ca[j * ra + i])
            .collect();
        let ca_op = be.op_from_col_major(ra, n, &ca)?;
        let hess = f.hessian(be, &it.x)?;
        let shift = match &hess {
            Hessian::Diagonal(d) if d.iter().all(|&v| v.is_finite() && v > B::Real::zero()) => {
                B::Real::zero()
            }
            _ => self.rho(),
        };
        let cat_op = if self.settings.newton_system != NewtonSystem::Full && ra > 0 {
            Some(be.op_from_col_major(n, ra, &ca_t)?)
        } else {
            None
        };
        let factor = NewtonFactor::new(
            be,
            &hess,
            &ca_op,
            cat_op.as_ref(),
            shift,
            self.settings.newton_system,
        )?;
        let schur = if ra > 0 {
            let mut k = be.mat_from_col_major(n, ra, &ca_t)?;
            factor.solve(be, &ca_op, &mut k)?;
            let mut s = be.zeros(ra, ra)?;
            be.apply(
                &mut s,
                Accum::Replace,
                &ca_op,
                Trans::No,
                &k,
                B::Real::one(),
            )?;
            let s = be.op_from_col_major(ra, ra, &be.to_col_major(&s)?)?;
            let s_factor = match be.cholesky(&s) {
                Err(Error::NotPositiveDefinite { .. }) => {
                    return Err(Error::SingularKkt { rows: ra });
                }
                other => other?,
            };
            let k_op = be.op_from_col_major(n, ra, &be.to_col_major(&k)?)?;
            Some((k_op, s_factor))
        } else {
            None
        };
        Ok(Kkt {
            ca: ca_op,
            active,
            factor,
            shift,
            schur,
        })
    }

    /// The inequalities treated as active at an iterate: `s_i = 0`, and the weakly active
    /// ones, `s_i <= tol` with `nu_i <= tol`, where `tol` is the residual rule's
    /// `eps_abs + eps_rel max(1, |s|, |nu|)` (`1e-6 max(1, |s|, |nu|)` for the other rules),
    /// as the QP solver does: rows the iteration has not yet settled on the boundary.
    fn active_rows(&self, it: &Iterate<B>) -> Result<Vec<usize>> {
        let be = &self.backend;
        let s = be.to_col_major(&it.s)?;
        let nu = be.to_col_major(&it.nu)?;
        let scale = s
            .iter()
            .chain(&nu)
            .fold(1.0_f64, |a, v| a.max(v.to_f64_lossy().abs()));
        let tol = match self.settings.stopping {
            StoppingRule::Residual { eps_abs, eps_rel } => eps_abs + eps_rel * scale,
            _ => 1e-6 * scale,
        };
        Ok((0..s.len())
            .filter(|&i| {
                let (si, ni) = (s[i].to_f64_lossy(), nu[i].to_f64_lossy());
                si <= 0.0 || (si <= tol && ni <= tol)
            })
            .collect())
    }

    /// Solves `[H C_a'; C_a 0] [dx; mu] = [r1; r2]` (`H = hess f`, through
    /// `hess f + shift C_a'C_a` when the Hessian is not a positive diagonal).
    fn kkt_solve(&self, kkt: &Kkt<B>, mut r1: B::Mat, r2: &B::Mat) -> Result<(B::Mat, B::Mat)> {
        let be = &self.backend;
        let one = B::Real::one();
        if kkt.shift != B::Real::zero() {
            be.apply(&mut r1, Accum::Add, &kkt.ca, Trans::Yes, r2, kkt.shift)?;
        }
        kkt.factor.solve(be, &kkt.ca, &mut r1)?;
        let Some((k, s)) = &kkt.schur else {
            return Ok((r1, r2.clone()));
        };
        // mu = S^-1 (C_a H^-1 r1 - r2), dx = H^-1 r1 - K mu
        let mut mu = r2.clone();
        be.apply(&mut mu, Accum::Replace, &kkt.ca, Trans::No, &r1, one)?;
        be.axpby(-one, r2, one, &mut mu)?;
        be.solve_in_place(s, &mut mu)?;
        be.apply(&mut r1, Accum::Add, k, Trans::No, &mu, -one)?;
        Ok((r1, mu))
    }

    fn kkt_jacobian_with<F: SmoothObjective<B> + ?Sized>(
        &self,
        f: &F,
        kkt: &Kkt<B>,
        solution: &SmoothSolution<B>,
        param: SmoothParam,
    ) -> Result<B::Mat> {
        let be = &self.backend;
        let (n, p) = (self.dims.n, self.dims.p);
        let d = self.param_len(f, param);
        let ra = p + kkt.active.len();
        let mut r1 = be.zeros(n, d)?;
        let mut r2 = vec![B::Real::zero(); ra * d];
        match param {
            SmoothParam::Theta => {
                let eye = identity(be, d)?;
                f.mixed_apply(be, &solution.iterate.x, &eye, &mut r1)?;
                be.axpby(-B::Real::one(), &r1.clone(), B::Real::zero(), &mut r1)?;
            }
            SmoothParam::B => (0..p).for_each(|i| r2[i * ra + i] = B::Real::one()),
            SmoothParam::H => kkt
                .active
                .iter()
                .enumerate()
                .for_each(|(r, &i)| r2[i * ra + p + r] = B::Real::one()),
        }
        let r2 = be.mat_from_col_major(ra, d, &r2)?;
        Ok(self.kkt_solve(kkt, r1, &r2)?.0)
    }
}

/// The largest relative change of a diagonal Hessian, `max_i |d_i - o_i| / |o_i|`; `+inf`
/// for a matrix Hessian (never reused).
fn hessian_change<B: LinAlg>(old: &Hessian<B>, new: &Hessian<B>) -> B::Real {
    match (old, new) {
        (Hessian::Diagonal(o), Hessian::Diagonal(d)) if o.len() == d.len() => o
            .iter()
            .zip(d)
            .map(|(&o, &d)| (d - o).abs() / o.abs())
            .fold(
                B::Real::zero(),
                |acc, v| if v.is_nan() { v } else { acc.max(v) },
            ),
        _ => B::Real::infinity(),
    }
}

/// Whether every Jacobian block is finite.
fn tangents_finite<B: LinAlg>(be: &B, runs: &[TangentRun<B>]) -> Result<bool> {
    for run in runs {
        if !be.norm_inf(&run.it.x)?.is_finite() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `alpha op'` as a dense block (n x rows).
fn scaled_transpose<B: LinAlg>(be: &B, op: &B::Op, alpha: B::Real) -> Result<B::Mat> {
    let (r, n) = be.op_shape(op);
    let data = be.op_to_col_major(op)?;
    let t: Vec<B::Real> = (0..r)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| alpha * data[j * r + i])
        .collect();
    be.mat_from_col_major(n, r, &t)
}

/// `op'` as an operator.
fn transposed_op<B: LinAlg>(be: &B, op: &B::Op) -> Result<B::Op> {
    let (r, n) = be.op_shape(op);
    let data = be.op_to_col_major(op)?;
    let t: Vec<B::Real> = (0..r)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| data[j * r + i])
        .collect();
    be.op_from_col_major(n, r, &t)
}

/// Checks a right-hand side: `rows x 1`, finite.
fn check_block<B: LinAlg>(be: &B, field: Field, m: &B::Mat, rows: usize) -> Result<()> {
    let got = be.shape(m);
    if got != (rows, 1) {
        return Err(Error::Dimension {
            field,
            expected: (rows, 1),
            got,
        });
    }
    check_finite(be, field, m)
}

/// The first non-finite entry of a block as [`Error::NonFinite`].
fn check_finite<B: LinAlg>(be: &B, field: Field, m: &B::Mat) -> Result<()> {
    if be.norm_inf(m)?.is_finite() {
        return Ok(());
    }
    let rows = be.shape(m).0.max(1);
    let data = be.to_col_major(m)?;
    match data.iter().position(|v| !v.is_finite()) {
        Some(k) => Err(Error::NonFinite {
            field,
            row: k % rows,
            col: k / rows,
            value: data[k].to_f64_lossy(),
        }),
        None => Ok(()),
    }
}
