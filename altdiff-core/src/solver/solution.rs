//! [`Solution`]: the iterate, its Jacobians, residuals and status.

use crate::solver::adjoint::TapeData;
use crate::solver::iteration::Iterate;
use crate::{Error, HostMatrix, LinAlg, Param, Real, Result, Status};

/// Which derivative a tangent block holds.
///
/// # Example
/// ```
/// use altdiff_core::{Param, TangentKey};
/// assert_ne!(TangentKey::Jacobian(Param::B), TangentKey::Jvp);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TangentKey {
    /// `dx/dparam`.
    Jacobian(Param),
    /// `J d` for the directions of [`AltDiff::solve_jvp`](crate::AltDiff::solve_jvp).
    Jvp,
}

/// Why a problem has no solution: the direction found by the solver.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{AltDiff, Certificate, Field, HostMatrix, HostQp, Qp, Settings, Status};
/// use altdiff_core::testing::RefBackend;
/// // x0 + x1 = 1 and x0 + x1 <= 0: infeasible
/// let qp = HostQp {
///     p: HostMatrix::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 0.0 }),
///     q: vec![0.0, 0.0],
///     a: HostMatrix::from_rows(Field::A, &[vec![1.0, 1.0]])?,
///     b: vec![1.0],
///     g: HostMatrix::from_rows(Field::G, &[vec![1.0, 1.0]])?,
///     h: vec![0.0],
/// };
/// let qp = Qp::from_host(&RefBackend, &qp)?;
/// let sol = AltDiff::new(RefBackend, &qp, Settings::default())?.solve(qp.params())?;
/// assert_eq!(sol.status(), Status::PrimalInfeasible);
/// assert!(matches!(sol.certificate(), Some(Certificate::PrimalInfeasible { .. })));
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Certificate<B: LinAlg> {
    /// `(lam, nu)` with `nu >= 0`, `A'lam + G'nu = 0` and `b'lam + h'nu < 0` (Farkas).
    PrimalInfeasible {
        /// Multipliers of the equalities.
        lam: B::Mat,
        /// Multipliers of the inequalities.
        nu: B::Mat,
    },
    /// `x` with `Px = 0`, `Ax = 0`, `Gx <= 0` and `q'x < 0`: a direction of unbounded descent.
    DualInfeasible {
        /// The direction.
        x: B::Mat,
    },
}

/// A derivative of the solution: a tangent iterate (Alt-Diff) or `dx` alone (KKT).
#[derive(Clone, Debug)]
pub(crate) enum Derivative<B: LinAlg> {
    Tangent(Iterate<B>),
    Kkt(B::Mat),
}

impl<B: LinAlg> Derivative<B> {
    fn dx(&self) -> &B::Mat {
        match self {
            Derivative::Tangent(it) => &it.x,
            Derivative::Kkt(dx) => dx,
        }
    }
}

/// The result of a solve: `x, s, lam, nu`, the requested Jacobians, residuals and status.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{AltDiff, Param, Settings, Wrt, testing::{RefBackend, tiny_qp}};
/// let qp = altdiff_core::Qp::from_host(&RefBackend, &tiny_qp())?;
/// let settings = Settings::default().with_wrt(Wrt::none().with(Param::B));
/// let sol = AltDiff::new(RefBackend, &qp, settings)?.solve(qp.params())?;
/// assert!(sol.status().is_solved());
/// let host = sol.to_host(&RefBackend)?;
/// assert!((host.x[1] - 0.5).abs() < 1e-4);
/// assert!(host.jacobian(Param::B).is_some() && host.jacobian(Param::Q).is_none());
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "check the status: a solve that did not converge still returns a Solution"]
pub struct Solution<B: LinAlg> {
    pub(crate) iterate: Iterate<B>,
    pub(crate) rho: B::Real,
    pub(crate) certificate: Option<Certificate<B>>,
    pub(crate) tangents: Vec<(TangentKey, Derivative<B>)>,
    pub(crate) tape: Option<TapeData<B>>,
    /// The factored limit system of the final mask ([`Settings::limit`](crate::Settings::limit)),
    /// kept for [`VjpMode::Limit`](crate::VjpMode::Limit).
    pub(crate) limit: Option<std::sync::Arc<crate::solver::limit::Limit<B>>>,
    pub(crate) weakly_active: Vec<usize>,
    pub(crate) status: Status,
    pub(crate) iterations: usize,
    pub(crate) objective: B::Real,
    pub(crate) primal_residual: B::Real,
    pub(crate) dual_residual: B::Real,
    pub(crate) duality_gap: B::Real,
    /// Whether the polish found the solution not unique.
    pub(crate) non_unique: bool,
    /// The solution of the scaled problem, when the solver equilibrates
    /// ([`Settings::scaling`](crate::Settings::scaling)): VJPs and warm starts use it.
    pub(crate) inner: Option<Box<Solution<B>>>,
}

impl<B: LinAlg> Solution<B> {
    /// How the solve ended.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Iterations run.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// `1/2 x'Px + q'x` at the returned `x`.
    pub fn objective(&self) -> B::Real {
        self.objective
    }

    /// The largest equality residual or inequality violation on the user's problem,
    /// `max(|Ax - b|_inf, |max(Gx - h, 0)|_inf)`: what the stopping test judged (row by row,
    /// see [`StoppingRule::Residual`](crate::StoppingRule::Residual)).
    pub fn primal_residual(&self) -> B::Real {
        self.primal_residual
    }

    /// `|Px + q + A'lam + G'nu|_inf` on the user's problem.
    pub fn dual_residual(&self) -> B::Real {
        self.dual_residual
    }

    /// The duality gap `|x'Px + q'x + b'lam + h'nu|` on the user's problem.
    pub fn duality_gap(&self) -> B::Real {
        self.duality_gap
    }

    /// Whether the solution is unique, as far as the solve found out: `false` when the
    /// active-set polish found directions along which the objective is flat and the active
    /// constraints stay active (`P v = 0`, `A v = 0`, `G_i v = 0` on the active rows), so
    /// that a whole face of points is optimal. The solution returned is then the one the
    /// polish reached from the ADMM iterate (the nearest in its proximal sense), and its
    /// derivatives are those of that point with the active rows held (one of many, not the
    /// derivative of a set-valued map).
    pub fn is_unique(&self) -> bool {
        !self.non_unique
    }

    /// The primal solution (n x 1).
    pub fn x(&self) -> &B::Mat {
        &self.iterate.x
    }

    /// The slack `h - Gx` (m x 1), `s >= 0`.
    pub fn s(&self) -> &B::Mat {
        &self.iterate.s
    }

    /// The equality duals (p x 1).
    pub fn lam(&self) -> &B::Mat {
        &self.iterate.lam
    }

    /// The inequality duals (m x 1), `nu >= 0`.
    pub fn nu(&self) -> &B::Mat {
        &self.iterate.nu
    }

    /// The whole iterate (x, s, lam, nu).
    pub fn iterate(&self) -> &Iterate<B> {
        &self.iterate
    }

    /// `dx/dparam` (n x size of the parameter), when it was requested.
    pub fn jacobian(&self, param: Param) -> Option<&B::Mat> {
        self.derivative(TangentKey::Jacobian(param))
    }

    /// `J d` (n x k) of a solve with [`AltDiff::solve_jvp`](crate::AltDiff::solve_jvp).
    pub fn jvp(&self) -> Option<&B::Mat> {
        self.derivative(TangentKey::Jvp)
    }

    fn derivative(&self, key: TangentKey) -> Option<&B::Mat> {
        self.tangents
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, d)| d.dx())
    }

    /// The Jacobians of the whole iterate (`x`, `s`, `lam`, `nu`) with respect to `param`,
    /// when requested and computed by Alt-Diff.
    pub fn tangent(&self, param: Param) -> Option<&Iterate<B>> {
        self.tangent_key(TangentKey::Jacobian(param))
    }

    pub(crate) fn tangent_key(&self, key: TangentKey) -> Option<&Iterate<B>> {
        self.tangents
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, d)| match d {
                Derivative::Tangent(it) => Some(it),
                Derivative::Kkt(_) => None,
            })
    }

    /// The weakly active inequalities: slack `s_i` and dual `nu_i` both zero within the
    /// tolerance (the residual rule's `eps_abs + eps_rel max(1, |s|, |nu|)`). The solution
    /// map is not differentiable there; only one-sided derivatives exist. Every derivative
    /// mode follows the mask of the final iterate (`s > 0` strictly is inactive, `s = 0`
    /// active), which may fall on either side; the differentiability report
    /// ([`AltDiff::differentiability`](crate::AltDiff::differentiability)) flags both.
    pub fn weakly_active(&self) -> &[usize] {
        &self.weakly_active
    }

    /// The penalty in force at the end (differs from [`Settings::rho`](crate::Settings::rho)
    /// after adaptive changes).
    pub fn rho(&self) -> B::Real {
        self.rho
    }

    /// The certificate of a [`Status::PrimalInfeasible`] or [`Status::DualInfeasible`] solve.
    pub fn certificate(&self) -> Option<&Certificate<B>> {
        self.certificate.as_ref()
    }

    /// Iterations recorded for the unrolled VJP (0 without a tape).
    pub fn tape_len(&self) -> usize {
        match &self.inner {
            Some(inner) => inner.tape_len(),
            None => self.tape.as_ref().map_or(0, |t| t.masks.len()),
        }
    }

    /// Returns `self` when solved, an error otherwise (for callers who want `?`).
    ///
    /// # Errors
    /// [`Error::Request`] when the status is not [`Status::Solved`].
    pub fn ensure_solved(self) -> Result<Self> {
        if self.status.is_solved() {
            Ok(self)
        } else {
            Err(Error::Request("the solve did not converge"))
        }
    }

    /// Copies everything to the host as `f64`.
    ///
    /// # Errors
    /// A backend error.
    pub fn to_host(&self, backend: &B) -> Result<HostSolution> {
        let vector = |m: &B::Mat| -> Result<Vec<f64>> {
            Ok(backend
                .to_col_major(m)?
                .into_iter()
                .map(Real::to_f64_lossy)
                .collect())
        };
        let host = |m: &B::Mat| -> Result<HostMatrix> {
            let (r, c) = backend.shape(m);
            HostMatrix::from_col_major(crate::Field::Seed, r, c, vector(m)?)
        };
        let mut jacobians = Vec::new();
        let mut jvp = None;
        for (key, d) in &self.tangents {
            match key {
                TangentKey::Jacobian(param) => jacobians.push((*param, host(d.dx())?)),
                TangentKey::Jvp => jvp = Some(host(d.dx())?),
            }
        }
        Ok(HostSolution {
            x: vector(&self.iterate.x)?,
            s: vector(&self.iterate.s)?,
            lam: vector(&self.iterate.lam)?,
            nu: vector(&self.iterate.nu)?,
            status: self.status,
            iterations: self.iterations,
            objective: self.objective.to_f64_lossy(),
            primal_residual: self.primal_residual.to_f64_lossy(),
            dual_residual: self.dual_residual.to_f64_lossy(),
            duality_gap: self.duality_gap.to_f64_lossy(),
            unique: !self.non_unique,
            jacobians,
            jvp,
            weakly_active: self.weakly_active.clone(),
        })
    }
}

/// A [`Solution`] copied to the host, in `f64`.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{AltDiff, Settings, testing::{RefBackend, tiny_qp}};
/// let qp = altdiff_core::Qp::from_host(&RefBackend, &tiny_qp())?;
/// let host = AltDiff::new(RefBackend, &qp, Settings::default())?.solve(qp.params())?.to_host(&RefBackend)?;
/// assert_eq!(host.x.len(), 3);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HostSolution {
    /// Primal solution.
    pub x: Vec<f64>,
    /// Slack `h - Gx`.
    pub s: Vec<f64>,
    /// Equality duals.
    pub lam: Vec<f64>,
    /// Inequality duals.
    pub nu: Vec<f64>,
    /// How the solve ended.
    pub status: Status,
    /// Iterations run.
    pub iterations: usize,
    /// Objective at `x`.
    pub objective: f64,
    /// Primal residual (see [`Solution::primal_residual`]).
    pub primal_residual: f64,
    /// Dual residual.
    pub dual_residual: f64,
    /// Duality gap (see [`Solution::duality_gap`]).
    pub duality_gap: f64,
    /// Whether the solution is unique (see [`Solution::is_unique`]).
    pub unique: bool,
    /// The requested Jacobians `dx/dparam`, in the order of [`Param::ALL`].
    pub jacobians: Vec<(Param, HostMatrix)>,
    /// `J d` of a JVP solve.
    pub jvp: Option<HostMatrix>,
    /// The weakly active inequalities (see [`Solution::weakly_active`]).
    pub weakly_active: Vec<usize>,
}

impl HostSolution {
    /// `dx/dparam`, when it was requested.
    pub fn jacobian(&self, param: Param) -> Option<&HostMatrix> {
        self.jacobians
            .iter()
            .find(|(p, _)| *p == param)
            .map(|(_, j)| j)
    }
}
