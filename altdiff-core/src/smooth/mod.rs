//! Beyond quadratics: smooth convex objectives with linear constraints, and ready-made layers
//! (constrained softmax, sparsemax).
//!
//! ## The problem
//!
//! ```text
//! minimize    f(x; theta)
//! subject to  Ax = b     (p rows)
//!             Gx <= h    (m rows)
//! ```
//!
//! `f` is convex and twice differentiable on an open domain (e.g. `x > 0` for the entropy),
//! with parameters `theta` of its own (`y` for the layers). The paper's Alt-Diff covers this
//! case; QP-only layers (qpth, QPLayer, SCQPTH) cannot, and cvxpylayers needs an
//! exponential-cone reformulation for the entropy.
//!
//! ## The iteration: ADMM with a Newton x-update
//!
//! The same ADMM as the QP solver ([`AltDiff`](crate::AltDiff)), slack `s >= 0` with
//! `Gx + s = h`, penalty `rho` (adapted by residual balancing by default,
//! [`SmoothSettings::adaptive_rho`]), order x -> s -> lam -> nu (no over-relaxation):
//!
//! ```text
//! x   solves  grad f(x) + A'lam + G'nu + rho A'(Ax - b) + rho G'(Gx + s - h) = 0
//! s   = max(0, -nu/rho - (Gx - h))
//! lam = lam + rho (Ax - b)
//! nu  = nu + rho (Gx + s - h)
//! ```
//!
//! The x-update is an inner Newton solve, warm-started at the previous `x`, with the system
//! matrix `H(x) = hess f(x) + rho (A'A + G'G)` and a backtracking (Armijo) line search on the
//! penalized Lagrangian that first cuts the step to a fraction of the distance to the
//! boundary of the domain ([`SmoothObjective::max_step`], "fraction to the boundary"), so
//! every iterate stays in the domain. A quadratic objective ([`SmoothObjective::is_quadratic`])
//! is the special case with a constant `H`: it is factored once per solve and every x-update
//! is one exact Newton step, the QP solver's fast path.
//!
//! For a diagonal Hessian `D` (the entropy: `D = diag(1/x)`) and `r = p + m < n` constraint
//! rows, the Newton system is solved through the Woodbury form
//! `H^-1 = D^-1 - D^-1 C'(I/rho + C D^-1 C')^-1 C D^-1` with `C = [A; G]`: one `r x r`
//! factorization per Newton step instead of `n x n` ([`NewtonSystem`]). A factorization is
//! reused (chord steps) while the diagonal Hessian moved by at most 10% since it was formed
//! ([`SmoothSettings::hessian_reuse`]).
//!
//! Measured on the seed's entropy problem (n = 1000, 100 equalities, 300 inequalities, faer,
//! one thread, example `smooth_layers`): the forward solve takes 18.1 s with the full
//! `n x n` system, 4.4 s with Woodbury (567 factorizations each) and 1.0 s with Woodbury and
//! reuse (24 factorizations); at n = 3000, 20 s (22 factorizations).
//!
//! ## Derivatives
//!
//! Alt-Diff differentiates each iteration, for `theta`, `b` or `h`:
//!
//! ```text
//! J_x   = -H(x_{k+1})^-1 [E + A'J_lam + G'(J_nu + rho J_s) - rho A' db - rho G' dh]
//! J_s   = -1[s > 0] (J_nu/rho + G J_x - dh)
//! J_lam = J_lam + rho (A J_x - db)
//! J_nu  = J_nu + rho (G J_x + J_s - dh)
//! ```
//!
//! with `E = d_theta grad f(x_{k+1})` (zero for `b`, `h`; `db = I` for `b`, `dh = I` for
//! `h`). `H(x_{k+1})` is factored at `x_{k+1}` itself whenever the x-update moved `x` (that
//! factorization then starts the next x-update's Newton solve). The fixed point of the
//! recursion is
//! implicit differentiation of the KKT conditions; the solve is reported solved only when the
//! Jacobians also pass the residual rule on the differentiated KKT conditions. Reverse mode
//! ([`SmoothSolver::vjp`]) is the adjoint of the converged fixed-mask map, computed in closed
//! form: one solve of the KKT system `[hess f  C_a'; C_a  0]` at the final active set
//! (`C_a = [A; G_active]`: the rows with `s = 0`, and the weakly active ones with `s` and
//! `nu` both within the tolerance, as the QP solver does); the same system gives forward
//! Jacobians with [`Method::Kkt`]. Near-ties (a score within the solve's accuracy of the
//! sparsemax threshold) cannot be resolved at that accuracy: the Jacobian is that of the
//! support found.
//!
//! ## Why the objective is a backend-level trait
//!
//! [`SmoothObjective<B>`] is generic over the backend: `x`, gradients and the mixed
//! derivative are backend blocks ([`LinAlg::Mat`]), and the Hessian is a backend operator or
//! a host diagonal ([`Hessian`]). The algorithm is then written once, runs on every backend,
//! and an objective whose maps are linear algebra (a quadratic) never leaves the device.
//! The [`LinAlg`] trait has no elementwise nonlinear maps (`log`, `1/x`): objectives that
//! need them (the entropy) copy the `n`-vector to the host and back, `O(n)` per Newton step,
//! far below the cost of the Newton system itself.
//!
//! ## Example
//!
//! ```
//! # #[cfg(feature = "testing")] {
//! use altdiff_core::smooth::layers::{Layer, LayerKind, LayerParam};
//! use altdiff_core::smooth::SmoothSettings;
//! use altdiff_core::testing::RefBackend;
//! let y = [1.0, 2.0, 0.5];
//! let layer = Layer::new(RefBackend, LayerKind::Softmax, 3, SmoothSettings::default())?;
//! let out = layer.forward(&y, None, &[LayerParam::Y])?;
//! let z: f64 = y.iter().map(|v: &f64| v.exp()).sum();
//! assert!((out.x[1] - 2.0_f64.exp() / z).abs() < 1e-6);           // softmax(y)
//! let j = out.jacobian(LayerParam::Y).unwrap();                      // diag(s) - s s'
//! assert!((j.get(1, 1) - out.x[1] * (1.0 - out.x[1])).abs() < 1e-5);
//! # }
//! # Ok::<(), altdiff_core::Error>(())
//! ```

use core::fmt;

use num_traits::{Float, One, Zero};

use crate::{
    Accum, AdaptiveRho, LinAlg, Method, Real, Result, Settings, SettingsError, StoppingRule, Trans,
};

pub mod layers;
mod solver;

pub use solver::{SmoothGrads, SmoothSolution, SmoothSolver};

/// The Hessian of a [`SmoothObjective`] at a point.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{LinAlg, smooth::Hessian, testing::RefBackend};
/// let be = RefBackend;
/// let h: Hessian<RefBackend> = Hessian::Diagonal(vec![2.0, 3.0]);
/// let v = be.mat_from_col_major(2, 1, &[1.0, 1.0])?;
/// assert_eq!(be.to_col_major(&h.apply(&be, &v)?)?, vec![2.0, 3.0]);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub enum Hessian<B: LinAlg> {
    /// `diag(d)` with the `n` diagonal entries on the host. With all entries positive and
    /// fewer constraint rows than variables, the Newton system goes through the Woodbury
    /// form (see [`NewtonSystem`]).
    Diagonal(Vec<B::Real>),
    /// A symmetric positive semidefinite `n x n` operator.
    Matrix(B::Op),
}

impl<B: LinAlg> Hessian<B> {
    /// `hess v` for a block `v` (n x k).
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, smooth::Hessian, testing::RefBackend};
    /// let be = RefBackend;
    /// let h: Hessian<RefBackend> = Hessian::Matrix(be.op_from_col_major(2, 2, &[2.0, 1.0, 1.0, 2.0])?);
    /// let v = be.mat_from_col_major(2, 1, &[1.0, 0.0])?;
    /// assert_eq!(be.to_col_major(&h.apply(&be, &v)?)?, vec![2.0, 1.0]);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn apply(&self, backend: &B, v: &B::Mat) -> Result<B::Mat> {
        match self {
            Hessian::Diagonal(d) => {
                let mut out = v.clone();
                backend.scale_rows_cols(&mut out, Some(d), None)?;
                Ok(out)
            }
            Hessian::Matrix(op) => {
                let (n, k) = backend.shape(v);
                let mut out = backend.zeros(n, k)?;
                backend.apply(&mut out, Accum::Replace, op, Trans::No, v, B::Real::one())?;
                Ok(out)
            }
        }
    }
}

/// A twice-differentiable convex objective `f(x; theta)` on a backend, with parameters
/// `theta` of its own (`d` of them), for [`SmoothSolver`].
///
/// Blocks are column-major backend blocks: `x` is `n x 1`; the mixed derivative
/// `E = d_theta grad f(x)` (`n x d`) is applied to blocks rather than formed, so that a
/// structured `E` (the entropy's `-I`) costs `O(n k)`. The solver only calls the methods at
/// points of the domain: [`SmoothObjective::initial_point`] must lie in it, and the line
/// search keeps every iterate inside through [`SmoothObjective::max_step`].
/// [`SmoothObjective::value`] may return `+inf` (or NaN) outside the domain.
///
/// See the [module docs](self) for why this is a backend-level trait. Ready-made objectives
/// are in [`layers`]: [`Entropy`](layers::Entropy),
/// [`SquaredDistance`](layers::SquaredDistance), [`Quadratic`](layers::Quadratic).
///
/// # Example
/// A custom objective, `f(x) = 1/2 |x|^2 - theta'x` with `theta` stored on the host:
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{LinAlg, Result};
/// use altdiff_core::smooth::{Hessian, SmoothObjective, SmoothSettings, SmoothSolver};
/// use altdiff_core::testing::RefBackend;
///
/// #[derive(Debug)]
/// struct HalfNorm { theta: Vec<f64> }
///
/// impl<B: LinAlg<Real = f64>> SmoothObjective<B> for HalfNorm {
///     fn dim(&self) -> usize { self.theta.len() }
///     fn n_params(&self) -> usize { self.theta.len() }
///     fn value(&self, be: &B, x: &B::Mat) -> Result<f64> {
///         let x = be.to_col_major(x)?;
///         Ok(x.iter().zip(&self.theta).map(|(x, t)| 0.5 * x * x - t * x).sum())
///     }
///     fn gradient(&self, be: &B, x: &B::Mat, out: &mut B::Mat) -> Result<()> {
///         let theta = be.mat_from_col_major(self.theta.len(), 1, &self.theta)?;
///         be.copy_from(out, x)?;
///         be.axpby(-1.0, &theta, 1.0, out)
///     }
///     fn hessian(&self, _: &B, _: &B::Mat) -> Result<Hessian<B>> {
///         Ok(Hessian::Diagonal(vec![1.0; self.theta.len()]))
///     }
///     fn is_quadratic(&self) -> bool { true }
///     fn mixed_apply(&self, be: &B, _: &B::Mat, v: &B::Mat, out: &mut B::Mat) -> Result<()> {
///         be.axpby(-1.0, v, 0.0, out)                       // E = -I
///     }
///     fn mixed_apply_t(&self, be: &B, _: &B::Mat, w: &B::Mat, out: &mut B::Mat) -> Result<()> {
///         be.axpby(-1.0, w, 0.0, out)
///     }
/// }
///
/// // min 1/2 |x|^2 - theta'x  s.t.  x_0 + x_1 = 1:  x = theta + (1 - sum theta)/2
/// let be = RefBackend;
/// let a = be.op_from_col_major(1, 2, &[1.0, 1.0])?;
/// let g = be.op_from_col_major(0, 2, &[])?;
/// let solver = SmoothSolver::new(be, a, g, SmoothSettings::default())?;
/// let (b, h) = (be.mat_from_col_major(1, 1, &[1.0])?, be.zeros(0, 1)?);
/// let sol = solver.solve(&HalfNorm { theta: vec![1.0, 0.0] }, &b, &h, &[])?;
/// let x = be.to_col_major(sol.x())?;
/// assert!((x[0] - 1.0).abs() < 1e-6 && x[1].abs() < 1e-6);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub trait SmoothObjective<B: LinAlg>: fmt::Debug {
    /// The number of variables `n`.
    fn dim(&self) -> usize;

    /// The number of the objective's own parameters `d` (the columns of `dx/dtheta`).
    fn n_params(&self) -> usize;

    /// `f(x)`; `+inf` or NaN outside the domain.
    ///
    /// # Errors
    /// A backend error.
    fn value(&self, backend: &B, x: &B::Mat) -> Result<B::Real>;

    /// `out = grad f(x)` (`out` is `n x 1`).
    ///
    /// # Errors
    /// A backend error.
    fn gradient(&self, backend: &B, x: &B::Mat, out: &mut B::Mat) -> Result<()>;

    /// `hess f(x)`, dense or diagonal.
    ///
    /// # Errors
    /// A backend error.
    fn hessian(&self, backend: &B, x: &B::Mat) -> Result<Hessian<B>>;

    /// Whether `f` is quadratic (a constant Hessian, an affine gradient, no domain): the
    /// solver then factors `H` once per solve and takes one exact Newton step per iteration.
    /// The default is `false`.
    fn is_quadratic(&self) -> bool {
        false
    }

    /// `out = E v` with the mixed derivative `E = d_theta grad f(x)` (`n x d`), for a block
    /// `v` (`d x k`; `out` is `n x k`).
    ///
    /// # Errors
    /// A backend error.
    fn mixed_apply(&self, backend: &B, x: &B::Mat, v: &B::Mat, out: &mut B::Mat) -> Result<()>;

    /// `out = E' w` for a block `w` (`n x k`; `out` is `d x k`).
    ///
    /// # Errors
    /// A backend error.
    fn mixed_apply_t(&self, backend: &B, x: &B::Mat, w: &B::Mat, out: &mut B::Mat) -> Result<()>;

    /// The largest `t >= 0` such that `x + t dx` is still in the closure of the domain
    /// (`x` in the domain, `dx` a direction, both `n x 1`); `+inf` when the whole ray is in
    /// it. The default (no domain) is `+inf`.
    ///
    /// # Errors
    /// A backend error.
    fn max_step(&self, backend: &B, x: &B::Mat, dx: &B::Mat) -> Result<B::Real> {
        let _ = (backend, x, dx);
        Ok(B::Real::infinity())
    }

    /// A point of the domain to start from (`n x 1`). The default is zero.
    ///
    /// # Errors
    /// A backend error.
    fn initial_point(&self, backend: &B) -> Result<B::Mat> {
        backend.zeros(self.dim(), 1)
    }

    /// The mixed derivative `E = d_theta grad f(x)` formed densely (`n x d`), through
    /// [`SmoothObjective::mixed_apply`] on the identity.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, smooth::{SmoothObjective, layers::Entropy}, testing::RefBackend};
    /// let be = RefBackend;
    /// let f = Entropy::new(vec![0.0, 1.0])?;
    /// let x = be.mat_from_col_major(2, 1, &[0.5, 0.5])?;
    /// let e = SmoothObjective::<RefBackend>::mixed(&f, &be, &x)?;
    /// assert_eq!(be.to_col_major(&e)?, vec![-1.0, 0.0, 0.0, -1.0]); // -I
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn mixed(&self, backend: &B, x: &B::Mat) -> Result<B::Mat> {
        let d = self.n_params();
        let eye = identity(backend, d)?;
        let mut out = backend.zeros(self.dim(), d)?;
        self.mixed_apply(backend, x, &eye, &mut out)?;
        Ok(out)
    }
}

/// The `d x d` identity block.
pub(crate) fn identity<B: LinAlg>(backend: &B, d: usize) -> Result<B::Mat> {
    let mut data = vec![B::Real::zero(); d * d];
    (0..d).for_each(|i| data[i * d + i] = B::Real::one());
    backend.mat_from_col_major(d, d, &data)
}

/// A parameter of a smooth problem that derivatives can be taken with respect to.
///
/// # Example
/// ```
/// use altdiff_core::smooth::SmoothParam;
/// assert_eq!(SmoothParam::Theta.name(), "theta");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SmoothParam {
    /// The objective's own parameters (`d` of them; `y` for the layers).
    Theta,
    /// The equality right-hand side `b` (`p`).
    B,
    /// The inequality right-hand side `h` (`m`).
    H,
}

impl SmoothParam {
    /// The parameter's name (`"theta"`, `"b"`, `"h"`).
    pub fn name(self) -> &'static str {
        match self {
            SmoothParam::Theta => "theta",
            SmoothParam::B => "b",
            SmoothParam::H => "h",
        }
    }
}

/// How the Newton system `(hess f + rho C'C) dx = -F` is solved (`C = [A; G]`, `r` rows).
///
/// # Example
/// ```
/// use altdiff_core::smooth::{NewtonSystem, SmoothSettings};
/// assert_eq!(SmoothSettings::default().newton_system, NewtonSystem::Auto);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NewtonSystem {
    /// Woodbury for a positive diagonal Hessian when `r < n`, the full system otherwise.
    #[default]
    Auto,
    /// Always the `n x n` Cholesky factorization of `hess f + rho C'C`.
    Full,
    /// The `r x r` Woodbury form whenever the Hessian is a positive diagonal.
    Woodbury,
}

/// Settings of [`SmoothSolver`].
///
/// # Example
/// ```
/// use altdiff_core::{Settings, smooth::SmoothSettings};
/// let s = SmoothSettings::from_settings(&Settings::default().with_rho(2.0));
/// assert_eq!(s.rho, 2.0);
/// assert!(s.validate().is_ok());
/// assert!(SmoothSettings::default().with_boundary_fraction(1.5).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SmoothSettings {
    /// ADMM penalty `rho > 0` (default 1).
    pub rho: f64,
    /// Iteration bound of ADMM (default 10 000).
    pub max_iter: usize,
    /// When ADMM stops (default: residuals 1e-6, see [`StoppingRule::Residual`]; the
    /// dual residual is `|grad f(x) + A'lam + G'nu|`).
    pub stopping: StoppingRule,
    /// Test the stopping rule every this many iterations; `None` (the default) adapts the
    /// interval as the QP solver's [`Settings::check_every`].
    pub check_every: Option<usize>,
    /// Forward Jacobians by the Alt-Diff recursion or by KKT at the solution.
    pub method: Method,
    /// The inner Newton solve stops when `|F|_inf <= newton_tol * max(1, |grad f|_inf)`
    /// (default 1e-10), tightened to a tenth of the residual rule's dual tolerance (the
    /// x-update's error enters the dual residual), or when a full step stops halving `|F|`
    /// (rounding).
    pub newton_tol: f64,
    /// Newton steps per x-update at most (default 50).
    pub max_newton: usize,
    /// Fraction of the distance to the domain's boundary a Newton step may go, in (0, 1)
    /// (default 0.99).
    pub boundary_fraction: f64,
    /// How the Newton system is solved.
    pub newton_system: NewtonSystem,
    /// Reuse the last factorization of the Newton system (a chord step) while the
    /// Hessian's largest relative change since it was formed is at most this (default 0.1;
    /// 0 refactors every step); diagonal Hessians only. A reused step that does not halve
    /// `|F|` triggers a new factorization. Derivatives stay exact: with Alt-Diff Jacobians
    /// the system is refactored at `x_{k+1}` itself for the tangent step (and that
    /// factorization starts the next x-update), and [`SmoothSolver::vjp`] / KKT Jacobians
    /// factor the Hessian at the solution.
    pub hessian_reuse: f64,
    /// Residual balancing of the penalty within `[1e-6, 1e6]` ([`AdaptiveRho`], on by
    /// default: the Newton
    /// system of a non-quadratic objective is refactored every step anyway, so a change of
    /// `rho` costs nothing extra; a quadratic one pays one factorization per change). The
    /// converged Jacobians do not depend on `rho`. `None` keeps `rho` fixed.
    pub adaptive_rho: Option<AdaptiveRho>,
}

impl Default for SmoothSettings {
    fn default() -> Self {
        Self {
            rho: 1.0,
            max_iter: 10_000,
            stopping: StoppingRule::default(),
            check_every: None,
            method: Method::AltDiff,
            newton_tol: 1e-10,
            max_newton: 50,
            boundary_fraction: 0.99,
            newton_system: NewtonSystem::Auto,
            hessian_reuse: 0.1,
            adaptive_rho: Some(AdaptiveRho::default()),
        }
    }
}

impl SmoothSettings {
    /// The settings shared with the QP solver's: `rho`, `max_iter`, `stopping`,
    /// `check_every`, `method`; the others keep their defaults (adaptive rho stays on,
    /// whatever [`Settings::adaptive_rho`] says: it is the QP solver's opt-in).
    ///
    /// # Example
    /// ```
    /// use altdiff_core::{Settings, StoppingRule, smooth::SmoothSettings};
    /// let s = SmoothSettings::from_settings(&Settings::default().with_stopping(StoppingRule::Fixed(5)));
    /// assert_eq!(s.stopping, StoppingRule::Fixed(5));
    /// ```
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            rho: settings.rho,
            max_iter: settings.max_iter,
            stopping: settings.stopping,
            check_every: settings.check_every,
            method: settings.method,
            ..Self::default()
        }
    }

    /// Sets [`SmoothSettings::rho`].
    ///
    /// # Example
    /// ```
    /// assert_eq!(altdiff_core::smooth::SmoothSettings::default().with_rho(3.0).rho, 3.0);
    /// ```
    #[must_use]
    pub fn with_rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    /// Sets [`SmoothSettings::max_iter`].
    ///
    /// # Example
    /// ```
    /// assert_eq!(altdiff_core::smooth::SmoothSettings::default().with_max_iter(7).max_iter, 7);
    /// ```
    #[must_use]
    pub fn with_max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// Sets [`SmoothSettings::stopping`].
    ///
    /// # Example
    /// ```
    /// use altdiff_core::{StoppingRule, smooth::SmoothSettings};
    /// let s = SmoothSettings::default().with_stopping(StoppingRule::Fixed(3));
    /// assert_eq!(s.stopping, StoppingRule::Fixed(3));
    /// ```
    #[must_use]
    pub fn with_stopping(mut self, stopping: StoppingRule) -> Self {
        self.stopping = stopping;
        self
    }

    /// Sets the residual rule's tolerances ([`StoppingRule::Residual`]).
    ///
    /// # Example
    /// ```
    /// use altdiff_core::{StoppingRule, smooth::SmoothSettings};
    /// let s = SmoothSettings::default().with_tolerances(1e-9, 1e-8);
    /// assert_eq!(s.stopping, StoppingRule::Residual { eps_abs: 1e-9, eps_rel: 1e-8 });
    /// ```
    #[must_use]
    pub fn with_tolerances(mut self, eps_abs: f64, eps_rel: f64) -> Self {
        self.stopping = StoppingRule::Residual { eps_abs, eps_rel };
        self
    }

    /// Sets [`SmoothSettings::method`].
    ///
    /// # Example
    /// ```
    /// use altdiff_core::{Method, smooth::SmoothSettings};
    /// assert_eq!(SmoothSettings::default().with_method(Method::Kkt).method, Method::Kkt);
    /// ```
    #[must_use]
    pub fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Sets [`SmoothSettings::newton_tol`].
    ///
    /// # Example
    /// ```
    /// let s = altdiff_core::smooth::SmoothSettings::default().with_newton_tol(1e-12);
    /// assert_eq!(s.newton_tol, 1e-12);
    /// ```
    #[must_use]
    pub fn with_newton_tol(mut self, newton_tol: f64) -> Self {
        self.newton_tol = newton_tol;
        self
    }

    /// Sets [`SmoothSettings::boundary_fraction`].
    ///
    /// # Example
    /// ```
    /// let s = altdiff_core::smooth::SmoothSettings::default().with_boundary_fraction(0.9);
    /// assert_eq!(s.boundary_fraction, 0.9);
    /// ```
    #[must_use]
    pub fn with_boundary_fraction(mut self, fraction: f64) -> Self {
        self.boundary_fraction = fraction;
        self
    }

    /// Sets [`SmoothSettings::adaptive_rho`].
    ///
    /// # Example
    /// ```
    /// let s = altdiff_core::smooth::SmoothSettings::default().with_adaptive_rho(None);
    /// assert!(s.adaptive_rho.is_none());
    /// ```
    #[must_use]
    pub fn with_adaptive_rho(mut self, adaptive: Option<AdaptiveRho>) -> Self {
        self.adaptive_rho = adaptive;
        self
    }

    /// Sets [`SmoothSettings::hessian_reuse`].
    ///
    /// # Example
    /// ```
    /// let s = altdiff_core::smooth::SmoothSettings::default().with_hessian_reuse(0.0);
    /// assert_eq!(s.hessian_reuse, 0.0);
    /// ```
    #[must_use]
    pub fn with_hessian_reuse(mut self, tolerance: f64) -> Self {
        self.hessian_reuse = tolerance;
        self
    }

    /// Sets [`SmoothSettings::newton_system`].
    ///
    /// # Example
    /// ```
    /// use altdiff_core::smooth::{NewtonSystem, SmoothSettings};
    /// let s = SmoothSettings::default().with_newton_system(NewtonSystem::Full);
    /// assert_eq!(s.newton_system, NewtonSystem::Full);
    /// ```
    #[must_use]
    pub fn with_newton_system(mut self, system: NewtonSystem) -> Self {
        self.newton_system = system;
        self
    }

    /// Checks every setting's range (the stopping rule as [`Settings::validate`] does).
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] naming the first bad setting.
    ///
    /// # Example
    /// ```
    /// let err = altdiff_core::smooth::SmoothSettings::default().with_newton_tol(0.0).validate();
    /// assert!(err.unwrap_err().to_string().contains("newton_tol"));
    /// ```
    pub fn validate(&self) -> core::result::Result<(), SettingsError> {
        let invalid = |field, requirement, value| {
            Err(SettingsError::Invalid {
                field,
                requirement,
                value,
            })
        };
        if !(self.newton_tol.is_finite() && self.newton_tol > 0.0) {
            return invalid("newton_tol", "finite and > 0", self.newton_tol);
        }
        if self.max_newton == 0 {
            return invalid("max_newton", ">= 1", 0.0);
        }
        if !(self.hessian_reuse.is_finite() && self.hessian_reuse >= 0.0) {
            return invalid("hessian_reuse", "finite and >= 0", self.hessian_reuse);
        }
        if !(self.boundary_fraction > 0.0 && self.boundary_fraction < 1.0) {
            return invalid("boundary_fraction", "in (0, 1)", self.boundary_fraction);
        }
        let mut settings = Settings::default()
            .with_rho(self.rho)
            .with_max_iter(self.max_iter)
            .with_stopping(self.stopping)
            .with_adaptive_rho(self.adaptive_rho);
        settings.check_every = self.check_every;
        settings.validate()
    }
}

/// What is wrong with an input of a layer or objective ([`Error::Input`](crate::Error::Input)).
///
/// # Example
/// ```
/// use altdiff_core::{Error, smooth::InputProblem};
/// let err = Error::Input { name: "y", problem: InputProblem::Length { expected: 3, got: 2 } };
/// assert_eq!(err.to_string(), "invalid input y: has 2 entries, expected 3");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum InputProblem {
    /// The vector has the wrong length.
    Length {
        /// The length it must have.
        expected: usize,
        /// The length it has.
        got: usize,
    },
    /// The vector is empty (a layer needs `n >= 1`).
    Empty,
    /// A NaN or infinite entry.
    NonFinite {
        /// The entry's index.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// An entry below its lower limit (`u >= 0`; `u > 0` for the entropy's domain).
    OutOfRange {
        /// The entry's index.
        index: usize,
        /// Its value.
        value: f64,
        /// What it must be, in words.
        requirement: &'static str,
    },
    /// The constraints have no (interior) solution: `sum(u) < 1`.
    Infeasible {
        /// `sum(u)`.
        sum: f64,
    },
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputProblem::Length { expected, got } => {
                write!(f, "has {got} entries, expected {expected}")
            }
            InputProblem::Empty => f.write_str("is empty"),
            InputProblem::NonFinite { index, value } => {
                write!(f, "non-finite value {value} at index {index}")
            }
            InputProblem::OutOfRange {
                index,
                value,
                requirement,
            } => write!(f, "entry {index} is {value}, must be {requirement}"),
            InputProblem::Infeasible { sum } => write!(
                f,
                "sum of the upper bounds is {sum} < 1: no point of the simplex satisfies x <= u"
            ),
        }
    }
}

/// Checks a host vector's length and finiteness, naming it `name`.
///
/// # Errors
/// [`Error::Input`](crate::Error::Input) with [`InputProblem::Length`] or
/// [`InputProblem::NonFinite`].
///
/// # Example
/// ```
/// use altdiff_core::{Error, smooth::{InputProblem, check_vector}};
/// assert!(check_vector("y", &[1.0, 2.0], 2).is_ok());
/// let err = check_vector("y", &[1.0, f64::NAN], 2).unwrap_err();
/// assert!(matches!(err, Error::Input { name: "y", problem: InputProblem::NonFinite { index: 1, .. } }));
/// ```
pub fn check_vector(name: &'static str, v: &[f64], len: usize) -> Result<()> {
    if v.len() != len {
        return Err(crate::Error::Input {
            name,
            problem: InputProblem::Length {
                expected: len,
                got: v.len(),
            },
        });
    }
    if let Some(index) = v.iter().position(|x| !x.is_finite()) {
        return Err(crate::Error::Input {
            name,
            problem: InputProblem::NonFinite {
                index,
                value: v[index],
            },
        });
    }
    Ok(())
}

/// Host `f64` data in the backend's scalar.
pub(crate) fn to_real<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::of(x)).collect()
}
