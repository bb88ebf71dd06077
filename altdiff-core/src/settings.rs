//! Solver settings: penalty, iteration bound, stopping rule, what to differentiate.

use crate::SettingsError;

/// When the ADMM iteration stops.
///
/// # Example
/// ```
/// use altdiff_core::StoppingRule;
/// let paper = StoppingRule::RelativeObjective(1e-3); // the Alt-Diff reference code's rule
/// assert_ne!(paper, StoppingRule::default());
/// ```
#[derive(Copy, Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum StoppingRule {
    /// OSQP-style residuals (the default):
    /// `r_prim = max(|Ax - b|, |Gx + s - h|) <= eps_abs + eps_rel * max(|Ax|, |b|, |Gx|, |s|, |h|)`
    /// and `r_dual = |Px + q + A'lam + G'nu| <= eps_abs + eps_rel * max(|Px|, |q|, |A'lam|, |G'nu|)`
    /// (infinity norms). When Jacobians are requested, each Jacobian block must pass the same
    /// test on the differentiated KKT conditions (`A J_x - db`, `G J_x + J_s - dh`,
    /// `P J_x + dq + A'J_lam + G'J_nu`), checked once the solution passes: a solution that
    /// converged with Jacobians still far off is not reported as solved.
    Residual {
        /// Absolute tolerance.
        eps_abs: f64,
        /// Relative tolerance.
        eps_rel: f64,
    },
    /// Relative change of the objective between checks, `|f_k - f_prev| <= tol * |f_prev|`
    /// (the rule of the Alt-Diff reference code, with `tol = 1e-3` there).
    RelativeObjective(f64),
    /// Change of the primal iterate, `|x_k - x_prev|_inf <= tol * max(|x_prev|_inf, 1)`.
    RelativeX(f64),
    /// Exactly this many iterations, no convergence test (truncated Alt-Diff).
    Fixed(usize),
}

impl Default for StoppingRule {
    fn default() -> Self {
        StoppingRule::Residual {
            eps_abs: 1e-6,
            eps_rel: 1e-6,
        }
    }
}

/// A parameter of the QP that derivatives can be taken with respect to.
///
/// The Jacobian with respect to a vector parameter is `n x (its length)`; with respect to a
/// matrix parameter `M` (`r x c`) it is `n x (r c)`, column `i c + j` holding `dx/dM_ij`
/// (row-major order of `M`; each entry perturbed on its own, so `dx/dP` is not symmetrized).
///
/// # Example
/// ```
/// use altdiff_core::Param;
/// assert_eq!(Param::ALL.len(), 6);
/// assert_eq!(Param::VECTORS, [Param::Q, Param::B, Param::H]);
/// assert!(Param::P.is_matrix());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Param {
    /// The linear cost `q` (Jacobian `n x n`).
    Q,
    /// The equality right-hand side `b` (Jacobian `n x p`).
    B,
    /// The inequality right-hand side `h` (Jacobian `n x m`).
    H,
    /// The quadratic cost `P` (Jacobian `n x n^2`).
    P,
    /// The equality matrix `A` (Jacobian `n x pn`).
    A,
    /// The inequality matrix `G` (Jacobian `n x mn`).
    G,
}

impl Param {
    /// Every parameter: q, b, h, P, A, G.
    pub const ALL: [Param; 6] = [Param::Q, Param::B, Param::H, Param::P, Param::A, Param::G];
    /// The vector parameters q, b, h.
    pub const VECTORS: [Param; 3] = [Param::Q, Param::B, Param::H];
    /// The matrix parameters P, A, G.
    pub const MATRICES: [Param; 3] = [Param::P, Param::A, Param::G];

    /// The parameter's name as in the problem (`"q"`, `"b"`, `"h"`, `"P"`, `"A"`, `"G"`).
    pub fn name(self) -> &'static str {
        match self {
            Param::Q => "q",
            Param::B => "b",
            Param::H => "h",
            Param::P => "P",
            Param::A => "A",
            Param::G => "G",
        }
    }

    /// Whether the parameter is a matrix (`P`, `A`, `G`).
    pub fn is_matrix(self) -> bool {
        matches!(self, Param::P | Param::A | Param::G)
    }

    /// `(rows, cols)` of the parameter for problem sizes `dims` (vectors are `len x 1`).
    pub fn shape(self, dims: crate::QpDims) -> (usize, usize) {
        match self {
            Param::Q => (dims.n, 1),
            Param::B => (dims.p, 1),
            Param::H => (dims.m, 1),
            Param::P => (dims.n, dims.n),
            Param::A => (dims.p, dims.n),
            Param::G => (dims.m, dims.n),
        }
    }

    /// The number of entries, i.e. the number of columns of `dx/dparam`.
    pub fn len(self, dims: crate::QpDims) -> usize {
        let (r, c) = self.shape(dims);
        r * c
    }
}

/// The set of parameters whose Jacobians the solver carries (empty: no derivative work).
///
/// # Example
/// ```
/// use altdiff_core::{Param, Wrt};
/// let wrt = Wrt::none().with(Param::B);
/// assert!(wrt.contains(Param::B) && !wrt.contains(Param::Q));
/// assert_eq!(Wrt::vectors().iter().count(), 3);
/// assert_eq!(Wrt::all().iter().count(), 6);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Wrt {
    bits: u8,
}

impl Wrt {
    /// No Jacobians.
    pub fn none() -> Self {
        Self { bits: 0 }
    }

    /// Jacobians with respect to every parameter (the matrix ones cost `n^2`, `pn`, `mn`
    /// columns: prefer a VJP for those).
    pub fn all() -> Self {
        Param::ALL.into_iter().collect()
    }

    /// Jacobians with respect to q, b and h.
    pub fn vectors() -> Self {
        Param::VECTORS.into_iter().collect()
    }

    /// This set and `param`.
    #[must_use]
    pub fn with(self, param: Param) -> Self {
        Self {
            bits: self.bits | (1 << param as u8),
        }
    }

    /// Whether `param` is in the set.
    pub fn contains(self, param: Param) -> bool {
        self.bits & (1 << param as u8) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.bits == 0
    }

    /// The parameters in the set, in the order of [`Param::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Param> {
        Param::ALL.into_iter().filter(move |&p| self.contains(p))
    }
}

impl FromIterator<Param> for Wrt {
    fn from_iter<I: IntoIterator<Item = Param>>(iter: I) -> Self {
        iter.into_iter().fold(Self::none(), Self::with)
    }
}

/// How derivatives are computed.
///
/// # Example
/// ```
/// use altdiff_core::{Method, Settings};
/// assert_eq!(Settings::default().method, Method::AltDiff);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Method {
    /// Alt-Diff: the Jacobians are iterated alongside ADMM (the default).
    #[default]
    AltDiff,
    /// Implicit differentiation of the KKT conditions on the active set of the ADMM
    /// solution, by one factorization of the reduced KKT system (exact at the solution).
    Kkt,
}

/// Adaptive penalty: residual balancing (OSQP's rule). At a convergence check the solver
/// proposes `rho' = rho sqrt((r_prim / scale_prim) / (r_dual / scale_dual))` (the ADMM
/// residuals of the iterated problem over OSQP's scales `max(|Cx|, |z|)`, `z` the projected
/// iterate, and `max(|Px|, |q|, |C'y|)`; within `[1e-6, 1e6]`) and, when it differs from
/// `rho` by more than `factor` either way and at least `every` iterations passed since the
/// last change, refactors `H` with `rho'` (in the dual space it forms `M` again). On by
/// default: LPs and badly scaled problems need it (see the `altdiff trust` figures in the
/// README), and the paper's problems, whose residuals balance at `rho = 1`, never trigger
/// it. Derivatives stay exact: the tangents iterate with the penalty of each iteration, the
/// tape records it for the unrolled VJP (primal space; a solve that records a tape in the
/// dual space keeps its penalty), and the converged Jacobians do not depend on `rho`.
///
/// # Example
/// ```
/// use altdiff_core::{AdaptiveRho, Settings};
/// let s = Settings::default().with_adaptive_rho(Some(AdaptiveRho::default()));
/// assert!(s.validate().is_ok());
/// ```
#[derive(Copy, Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AdaptiveRho {
    /// Refactor only when the proposal is more than this factor away (default 5).
    pub factor: f64,
    /// At least this many iterations between two changes (default 25).
    pub every: usize,
    /// At most this many changes per solve (default 20).
    pub max_updates: usize,
}

/// Anderson acceleration (type II, Walker and Ni) of the forward ADMM map on its state
/// `z = (s, lam, nu)`: after each plain step `F(z_k)` (the iterate that is measured and
/// returned), the next state is `F(z_k) - (dZ + dF) gamma`, with `gamma` the least-squares
/// fit of the last `memory` residual differences `dF` to the residual `F(z_k) - z_k` (a
/// small regularized normal-equations solve on the host). Safeguard: when a residual comes
/// out larger than [`Anderson::safeguard`] times the smallest seen since the last restart,
/// the memory is cleared and that step stays plain; a new penalty (adaptive rho) clears it
/// as well. The fixed point, hence the solution, the implicit / KKT / limit derivatives and
/// the stopping rule, are those of plain ADMM; solves that carry forward-mode Jacobians or a
/// tape, and the dual-space iteration, run plain.
///
/// # Example
/// ```
/// use altdiff_core::{Anderson, Settings};
/// let s = Settings::default().with_anderson(Some(Anderson::default().with_memory(5)));
/// assert!(s.validate().is_ok());
/// ```
#[derive(Copy, Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Anderson {
    /// Residual differences kept, `>= 1` (default 10).
    pub memory: usize,
    /// Restart when a residual exceeds this factor times the best since the last restart
    /// (default 2, `>= 1`).
    pub safeguard: f64,
    /// Tikhonov term of the least-squares fit, relative to its scale (default 1e-10).
    pub regularization: f64,
}

impl Default for Anderson {
    fn default() -> Self {
        Self {
            memory: 10,
            safeguard: 2.0,
            regularization: 1e-10,
        }
    }
}

impl Anderson {
    /// Sets [`Anderson::memory`].
    #[must_use]
    pub fn with_memory(mut self, memory: usize) -> Self {
        self.memory = memory;
        self
    }

    /// Sets [`Anderson::safeguard`].
    #[must_use]
    pub fn with_safeguard(mut self, safeguard: f64) -> Self {
        self.safeguard = safeguard;
        self
    }
}

/// Ruiz equilibration of the data (as OSQP): `x = D x_bar`, the constraint rows scaled by
/// `E`, the cost by `c`, chosen so that the rows and columns of the KKT matrix
/// `[P C'; C 0]` (`C = [A; G]`) have infinity norms near 1. The solver iterates on the
/// scaled problem `(c D P D, c D q, E_A A D, E_A b, E_G G D, E_G h)` and maps everything it
/// returns back exactly: `x = D x_bar`, `s = E_G^-1 s_bar`, duals `E y_bar / c`, Jacobians
/// `J = D J_bar R` (`R` the scaling of the parameter: `c D` for `q`, `E_A` for `b`, `E_G` for
/// `h`, `c d_i d_j` / `e_i d_j` per entry of `P` / `A`, `G`), gradients `R J_bar' D g`.
/// Scaling only changes the path: the stopping test is decided on the original problem,
/// row by row, so `solved` means the same with and without it (see `docs/defaults.md`).
///
/// By default it runs only where it helps: when the data are badly scaled, i.e. the
/// largest row or column norm of the KKT matrix exceeds the smallest nonzero one by more than
/// [`Ruiz::threshold`] (1e3). Measured (example `convergence_control`, n = 300): on a problem
/// with rows and columns scaled by 1e-2 .. 1e2 it cuts the iterations from 22 686 / over
/// 100 000 / over 100 000 to 36 / 354 / 2 976 at rho = 0.1 / 1 / 10; on the demo's well
/// scaled problems (spread below 10; the paper's generator: about n) it would only move the effective penalty (96 -> 377
/// iterations at rho = 1), so it stays off there.
///
/// # Example
/// ```
/// use altdiff_core::{Ruiz, Settings};
/// let s = Settings::default().with_scaling(Some(Ruiz::always().with_iterations(5)));
/// assert!(s.validate().is_ok());
/// ```
#[derive(Copy, Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Ruiz {
    /// Equilibration passes, `>= 1` (default 10).
    pub iterations: usize,
    /// Equilibrate only when the largest row / column infinity norm of `[P C'; C 0]` is
    /// more than this times the smallest nonzero one (default 1e3; 1 = always).
    pub threshold: f64,
    /// When the data are equilibrated and [`Settings::adaptive_rho`] is `None`, adapt rho
    /// with [`AdaptiveRho::default`] all the same (default true): equilibration moves the
    /// penalty's natural scale (the cost scale `c` acts as `rho / c`), and residual
    /// balancing finds it again (measured: 157 / 126 instead of 354 / 2 976 iterations at
    /// rho = 1 / 10 on the badly scaled problem above).
    /// [`AltDiff::settings`](crate::AltDiff::settings) shows the settings in force.
    pub adaptive_rho: bool,
}

impl Default for Ruiz {
    fn default() -> Self {
        Self {
            iterations: 10,
            threshold: 1e3,
            adaptive_rho: true,
        }
    }
}

impl Ruiz {
    /// Equilibration whatever the data (threshold 1).
    pub fn always() -> Self {
        Self {
            threshold: 1.0,
            ..Self::default()
        }
    }

    /// Sets [`Ruiz::adaptive_rho`].
    #[must_use]
    pub fn with_adaptive_rho(mut self, adaptive_rho: bool) -> Self {
        self.adaptive_rho = adaptive_rho;
        self
    }

    /// Sets [`Ruiz::threshold`].
    #[must_use]
    pub fn with_threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets [`Ruiz::iterations`].
    #[must_use]
    pub fn with_iterations(mut self, iterations: usize) -> Self {
        self.iterations = iterations;
        self
    }
}

impl Default for AdaptiveRho {
    fn default() -> Self {
        Self {
            factor: 5.0,
            every: 25,
            max_updates: 20,
        }
    }
}

impl AdaptiveRho {
    /// Sets [`AdaptiveRho::every`].
    #[must_use]
    pub fn with_every(mut self, every: usize) -> Self {
        self.every = every;
        self
    }
}

/// Where the iteration runs (the map and its iterates are the same; the cost differs).
///
/// # Example
/// ```
/// use altdiff_core::{IterationSpace, Settings};
/// let s = Settings::default().with_iteration(IterationSpace::Dual);
/// assert_eq!(s.iteration, IterationSpace::Dual);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IterationSpace {
    /// Dual space on dense backends when `0 < p + m <= 2n` and either
    /// [`Settings::limit`] (its polish forms `M` anyway) or Alt-Diff carries Jacobians of
    /// `q`, `b`, `h`; primal space otherwise (the default).
    #[default]
    Auto,
    /// The primal iteration: a solve with `H` per iteration, `O(n^2 k + n (p + m) k)`.
    Primal,
    /// The dual-space iteration on `p + m` rows: `M = C H^-1 C'` formed once per penalty
    /// (`O(n^2 (p + m))` setup, `(p + m)^2` memory), then `O((p + m)^2 k)` per iteration.
    /// Matrix-parameter tangents, full tapes, observed solves and a proximal term run in the
    /// primal space; a solve that records a tape keeps its penalty.
    Dual,
}

/// What the forward solve records for an [`VjpMode::Unrolled`](crate::VjpMode::Unrolled)
/// VJP, the exact adjoint of the iterations run.
///
/// # Example
/// ```
/// use altdiff_core::{Settings, Tape};
/// let s = Settings::default().with_tape(Tape::Masks);
/// assert_eq!(s.tape, Tape::Masks);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Tape {
    /// Nothing (the default): only the implicit VJP is available.
    #[default]
    Off,
    /// The slack's mask of every iteration (`m` bits each): VJPs wrt `q`, `b`, `h`.
    Masks,
    /// The masks and the iterates `x`, `lam` and the dual argument of every iteration
    /// (`n + p + m` numbers each): VJPs wrt all six parameters.
    Full,
}

/// Settings of [`AltDiff`](crate::AltDiff). Plain fields with defaults, `with_*` setters,
/// checked by [`Settings::validate`] at setup.
///
/// # Example
/// ```
/// use altdiff_core::{Param, Settings, StoppingRule, Wrt};
/// let s = Settings::default()
///     .with_rho(2.0)
///     .with_stopping(StoppingRule::Fixed(50))
///     .with_wrt(Wrt::none().with(Param::B));
/// assert!(s.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Settings {
    /// ADMM penalty `rho > 0` (default 1.0, as in the reference code). Changing it changes
    /// `H`: build a new solver.
    pub rho: f64,
    /// Iteration bound, `>= 1` (default 10 000); it bounds every loop: a
    /// [`StoppingRule::Fixed`] count above it is an invalid setting.
    pub max_iter: usize,
    /// Wall-clock bound on a solve's iterations (default none): when it passes, the solve
    /// ends with [`Status::TimeLimit`](crate::Status::TimeLimit) and its last iterate. Setup
    /// (factorization) is not counted; batches ignore it.
    pub time_limit: Option<std::time::Duration>,
    /// The stopping rule (default [`StoppingRule::Residual`] with 1e-6, 1e-6).
    pub stopping: StoppingRule,
    /// Iterations between convergence checks, `>= 1`; `None` (the default) adapts them:
    /// a check after each of the first 8 iterations, then after `iterations / 8` more, at
    /// most 25 (so a solve overshoots its convergence by at most an eighth, and small
    /// problems still stop at once). Each check reads the residual vectors back to the host
    /// (`O(n + p + m)` numbers per column), which synchronizes a device backend.
    pub check_every: Option<usize>,
    /// Which Jacobians to carry (default none).
    pub wrt: Wrt,
    /// How derivatives are computed (default [`Method::AltDiff`]).
    pub method: Method,
    /// What the solve records for the unrolled VJP (default [`Tape::Off`]).
    pub tape: Tape,
    /// Where the iteration runs (default [`IterationSpace::Auto`]).
    pub iteration: IterationSpace,
    /// Adaptive penalty (default [`AdaptiveRho::default`]; `None` keeps `rho` fixed).
    pub adaptive_rho: Option<AdaptiveRho>,
    /// Over-relaxation `alpha` in (0, 2) (default 1.6, as OSQP; 1 is the paper's plain
    /// ADMM): `Gx` and `Ax` in the slack and dual updates become
    /// `alpha Gx + (1 - alpha)(h - s)` and `alpha Ax + (1 - alpha) b`. The derivatives follow
    /// the relaxed map exactly. Measured on the demo problem (n = 300): 96 instead of 156
    /// iterations at rho = 1, 955 instead of 1531 at rho = 0.1.
    pub alpha: f64,
    /// Test at setup that `P` is positive semidefinite to `1e-5` relative (one extra
    /// factorization of `P + shift I`, shift = `1e-5 max(1, |P|_inf)`, `|P|_inf` the largest
    /// row sum of `|P|`: data rounded in their last digits pass); default true. When the
    /// dual-space operators are formed, the test runs on `M = C H^-1 C'` instead
    /// (`P` is PSD iff `rho lambda_max(M) <= 1`: a factorization of `p + m` rows, not `n`),
    /// falling back to the test on `P` when it fails.
    pub check_convexity: bool,
    /// Solve the limit of the recursion directly (default true; false iterates it, as the
    /// paper). Two things follow, for single solves and batches alike:
    ///
    /// * **The active-set polish.** At a check where the forward mask (the inequalities
    ///   with `s = 0`) has stayed the same for 5 iterations (10, 20, ... after a failed
    ///   try), and at the check where the residual rule first passes, the KKT system of that
    ///   active set is solved to full accuracy; its point ends the solve when it passes the
    ///   residual rule on the user's problem, else the iteration goes on. A last try follows
    ///   an iteration or time bound. Dense backends with `p + m <= 2n` solve it through the
    ///   limit system below (the iteration then runs in the dual space,
    ///   [`IterationSpace::Auto`]); the others (sparse backends, a proximal term, a singular
    ///   limit system) by OSQP's regularized KKT system with iterative refinement, which
    ///   also finds out whether the solution is unique
    ///   ([`Solution::is_unique`](crate::Solution::is_unique)).
    /// * **The derivatives at the final active set.** The Jacobians (`q`, `b`, `h`, and `P`,
    ///   `A`, `G` through their effective data at the solution) and
    ///   [`VjpMode::Limit`](crate::VjpMode::Limit) are the fixed point of the tangent
    ///   recursion for the final mask, the values the iterated Jacobians converge to, without
    ///   iterating them: exact at the solution. For a fixed mask `D` (1 on the inequalities
    ///   with `s > 0`) that fixed point solves `(M - D/rho) v = -(C H^-1 c + (I - D)[b; h])`
    ///   in the `p + m` stacked duals (`M = C H^-1 C'`, `C = [A; G]`); eliminating the
    ///   inactive rows leaves the KKT Schur complement of the active set, two Cholesky
    ///   factorizations of blocks of `M`. Without `M` the KKT system of the active set gives
    ///   them. A degenerate mask (dependent active rows) falls back to iterating.
    ///
    /// [`StoppingRule::Fixed`] (truncated Alt-Diff) and a [`Tape`] (the unrolled VJP is the
    /// adjoint of the iterations run) iterate the Jacobians whatever this says, and observed
    /// solves ([`AltDiff::solve_observed`](crate::AltDiff::solve_observed)) run in the
    /// primal space.
    pub limit: bool,
    /// Equilibration of the data (default [`Ruiz::default`]: where the data are badly
    /// scaled; `None` never; see [`Ruiz`]).
    pub scaling: Option<Ruiz>,
    /// Memory of the restarted GMRES that solves the implicit adjoint
    /// ([`VjpMode::Implicit`](crate::VjpMode::Implicit), and the sparse backends'
    /// [`VjpMode::Limit`](crate::VjpMode::Limit)): the fixed point of the reverse iteration
    /// at the final mask, whose plain repetition converges only at ADMM's linear rate
    /// (default 30; lowered so that the Krylov vectors hold at most 2^25 numbers). 0 repeats
    /// the reverse step until its sums settle, as the forward recursion would. Measured
    /// (example `sparse_scaling`, banded QP, n = 1e4, eps 1e-4): one VJP 0.17 s instead of
    /// 0.33 s, relative error 3.5e-4 instead of 5.6e-4 (against a converged GMRES).
    pub krylov_restart: usize,
    /// Anderson acceleration of the forward iteration (default off; see [`Anderson`]).
    pub anderson: Option<Anderson>,
    /// Refuse a VJP whose derivative is not certified: [`AltDiff::vjp`](crate::AltDiff::vjp)
    /// returns [`Error::NotDifferentiable`](crate::Error::NotDifferentiable) with the report
    /// unless [`AltDiff::differentiability`](crate::AltDiff::differentiability) says
    /// `differentiable` (default false: the derivative is returned and the report, asked
    /// apart, flags it).
    pub require_differentiable: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rho: 1.0,
            max_iter: 10_000,
            time_limit: None,
            stopping: StoppingRule::default(),
            check_every: None,
            wrt: Wrt::none(),
            method: Method::AltDiff,
            tape: Tape::Off,
            iteration: IterationSpace::Auto,
            adaptive_rho: Some(AdaptiveRho::default()),
            alpha: 1.6,
            check_convexity: true,
            limit: true,
            scaling: Some(Ruiz::default()),
            krylov_restart: 30,
            anderson: None,
            require_differentiable: false,
        }
    }
}

impl Settings {
    /// Sets [`Settings::rho`].
    #[must_use]
    pub fn with_rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    /// Sets [`Settings::max_iter`].
    #[must_use]
    pub fn with_max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// Sets [`Settings::time_limit`].
    ///
    /// # Example
    /// ```
    /// use altdiff_core::Settings;
    /// let s = Settings::default().with_time_limit(std::time::Duration::from_secs(10));
    /// assert_eq!(s.time_limit, Some(std::time::Duration::from_secs(10)));
    /// ```
    #[must_use]
    pub fn with_time_limit(mut self, limit: std::time::Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// Sets [`Settings::stopping`].
    #[must_use]
    pub fn with_stopping(mut self, stopping: StoppingRule) -> Self {
        self.stopping = stopping;
        self
    }

    /// Sets [`Settings::anderson`].
    #[must_use]
    pub fn with_anderson(mut self, anderson: Option<Anderson>) -> Self {
        self.anderson = anderson;
        self
    }

    /// Sets [`Settings::krylov_restart`].
    #[must_use]
    pub fn with_krylov_restart(mut self, krylov_restart: usize) -> Self {
        self.krylov_restart = krylov_restart;
        self
    }

    /// Sets [`Settings::check_every`] to every `check_every` iterations.
    #[must_use]
    pub fn with_check_every(mut self, check_every: usize) -> Self {
        self.check_every = Some(check_every);
        self
    }

    /// Sets [`Settings::wrt`].
    #[must_use]
    pub fn with_wrt(mut self, wrt: Wrt) -> Self {
        self.wrt = wrt;
        self
    }

    /// Sets [`Settings::method`].
    #[must_use]
    pub fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Sets [`Settings::tape`].
    #[must_use]
    pub fn with_tape(mut self, tape: Tape) -> Self {
        self.tape = tape;
        self
    }

    /// Sets [`Settings::iteration`].
    #[must_use]
    pub fn with_iteration(mut self, iteration: IterationSpace) -> Self {
        self.iteration = iteration;
        self
    }

    /// Sets [`Settings::adaptive_rho`].
    #[must_use]
    pub fn with_adaptive_rho(mut self, adaptive: Option<AdaptiveRho>) -> Self {
        self.adaptive_rho = adaptive;
        self
    }

    /// Sets [`Settings::scaling`].
    #[must_use]
    pub fn with_scaling(mut self, scaling: Option<Ruiz>) -> Self {
        self.scaling = scaling;
        self
    }

    /// Sets [`Settings::alpha`].
    #[must_use]
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Sets [`Settings::check_convexity`].
    #[must_use]
    pub fn with_check_convexity(mut self, check: bool) -> Self {
        self.check_convexity = check;
        self
    }

    /// Sets [`Settings::require_differentiable`].
    ///
    /// # Example
    /// ```
    /// use altdiff_core::Settings;
    /// assert!(Settings::default().with_require_differentiable(true).require_differentiable);
    /// ```
    #[must_use]
    pub fn with_require_differentiable(mut self, require: bool) -> Self {
        self.require_differentiable = require;
        self
    }

    /// Sets [`Settings::limit`].
    ///
    /// # Example
    /// ```
    /// use altdiff_core::Settings;
    /// assert!(Settings::default().with_limit(true).limit);
    /// ```
    #[must_use]
    pub fn with_limit(mut self, limit: bool) -> Self {
        self.limit = limit;
        self
    }

    /// Checks every setting's range.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |field, requirement, value| {
            Err(SettingsError::Invalid {
                field,
                requirement,
                value,
            })
        };
        if !(self.rho.is_finite() && self.rho > 0.0) {
            return invalid("rho", "finite and > 0", self.rho);
        }
        if self.max_iter == 0 {
            return invalid("max_iter", ">= 1", 0.0);
        }
        if let Some(anderson) = self.anderson {
            if anderson.memory == 0 {
                return invalid("anderson.memory", ">= 1", 0.0);
            }
            if anderson.safeguard.is_nan() || anderson.safeguard < 1.0 {
                return invalid("anderson.safeguard", ">= 1", anderson.safeguard);
            }
            if !(anderson.regularization >= 0.0 && anderson.regularization.is_finite()) {
                return invalid(
                    "anderson.regularization",
                    "finite and >= 0",
                    anderson.regularization,
                );
            }
        }
        if self.check_every == Some(0) {
            return invalid("check_every", ">= 1", 0.0);
        }
        let tolerance = |field, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                invalid(field, "finite and >= 0", v)
            }
        };
        if !(self.alpha > 0.0 && self.alpha < 2.0) {
            return invalid("alpha", "in (0, 2)", self.alpha);
        }
        if let Some(ruiz) = self.scaling {
            if ruiz.iterations == 0 {
                return invalid("scaling.iterations", ">= 1", 0.0);
            }
            if !(ruiz.threshold.is_finite() && ruiz.threshold >= 1.0) {
                return invalid("scaling.threshold", "finite and >= 1", ruiz.threshold);
            }
        }
        if let Some(adaptive) = self.adaptive_rho {
            if !(adaptive.factor.is_finite() && adaptive.factor > 1.0) {
                return invalid("adaptive_rho.factor", "finite and > 1", adaptive.factor);
            }
            if adaptive.every == 0 {
                return invalid("adaptive_rho.every", ">= 1", 0.0);
            }
        }
        match self.stopping {
            StoppingRule::Residual { eps_abs, eps_rel } => {
                tolerance("eps_abs", eps_abs)?;
                tolerance("eps_rel", eps_rel)?;
                if eps_abs == 0.0 && eps_rel == 0.0 {
                    return invalid("eps_abs + eps_rel", "> 0", 0.0);
                }
            }
            StoppingRule::RelativeObjective(tol) | StoppingRule::RelativeX(tol) => {
                tolerance("tolerance", tol)?;
            }
            StoppingRule::Fixed(k) => {
                if k == 0 {
                    return invalid("fixed iterations", ">= 1", 0.0);
                }
                // max_iter bounds every loop, a fixed count included
                if k > self.max_iter {
                    return invalid(
                        "fixed iterations",
                        "<= max_iter (raise max_iter to run more)",
                        k as f64,
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Settings::default().validate(), Ok(()));
    }

    #[test]
    fn each_bad_setting_is_named() {
        let cases = [
            (Settings::default().with_rho(0.0), "rho"),
            (Settings::default().with_rho(f64::NAN), "rho"),
            (Settings::default().with_max_iter(0), "max_iter"),
            (Settings::default().with_check_every(0), "check_every"),
            (
                Settings::default().with_stopping(StoppingRule::Fixed(0)),
                "fixed",
            ),
            (
                Settings::default()
                    .with_max_iter(100)
                    .with_stopping(StoppingRule::Fixed(101)),
                "fixed",
            ),
            (
                Settings::default().with_stopping(StoppingRule::RelativeX(-1.0)),
                "tolerance",
            ),
            (
                Settings::default().with_stopping(StoppingRule::Residual {
                    eps_abs: 0.0,
                    eps_rel: 0.0,
                }),
                "eps_abs",
            ),
            (
                Settings::default().with_stopping(StoppingRule::Residual {
                    eps_abs: f64::INFINITY,
                    eps_rel: 0.0,
                }),
                "eps_abs",
            ),
        ];
        for (settings, name) in cases {
            let err = settings.validate().unwrap_err();
            assert!(err.to_string().contains(name), "{err} should name {name}");
        }
    }

    #[test]
    fn wrt_set_operations() {
        let w: Wrt = [Param::G, Param::H, Param::Q].into_iter().collect();
        assert_eq!(
            w.iter().collect::<Vec<_>>(),
            vec![Param::Q, Param::H, Param::G]
        );
        assert!(Wrt::none().is_empty());
    }
}
