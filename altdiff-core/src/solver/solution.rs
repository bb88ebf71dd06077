//! [`Solution`]: the iterate, its Jacobians, residuals and status.

use crate::solver::iteration::Iterate;
use crate::{Error, HostMatrix, LinAlg, Param, Real, Result, Status};

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
    pub(crate) tangents: Vec<(Param, Iterate<B>)>,
    pub(crate) status: Status,
    pub(crate) iterations: usize,
    pub(crate) objective: B::Real,
    pub(crate) primal_residual: B::Real,
    pub(crate) dual_residual: B::Real,
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

    /// `max(|Ax - b|_inf, |Gx + s - h|_inf)`.
    pub fn primal_residual(&self) -> B::Real {
        self.primal_residual
    }

    /// `|Px + q + A'lam + G'nu|_inf`.
    pub fn dual_residual(&self) -> B::Real {
        self.dual_residual
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
        self.tangent(param).map(|t| &t.x)
    }

    /// The Jacobians of the whole iterate with respect to `param`, when requested.
    pub fn tangent(&self, param: Param) -> Option<&Iterate<B>> {
        self.tangents
            .iter()
            .find(|(p, _)| *p == param)
            .map(|(_, t)| t)
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
        let jacobians = self
            .tangents
            .iter()
            .map(|(param, t)| {
                let (r, c) = backend.shape(&t.x);
                Ok((
                    *param,
                    HostMatrix::from_col_major(crate::Field::Seed, r, c, vector(&t.x)?)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
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
            jacobians,
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
    /// Primal residual.
    pub primal_residual: f64,
    /// Dual residual.
    pub dual_residual: f64,
    /// The requested Jacobians `dx/dparam`, in the order q, b, h.
    pub jacobians: Vec<(Param, HostMatrix)>,
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
