//! [`Status`]: how a solve ended.

use core::fmt;

/// How a solve ended. Non-convergence is a status, not an error.
///
/// # Example
/// ```
/// use altdiff_core::Status;
/// assert_eq!(Status::MaxIterations.as_str(), "max_iterations");
/// assert!(Status::Solved.is_solved());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// The stopping rule was met.
    Solved,
    /// `max_iter` iterations ran without meeting the stopping rule.
    MaxIterations,
    /// [`StoppingRule::Fixed`](crate::StoppingRule::Fixed): the requested number of
    /// iterations ran (truncated Alt-Diff; convergence not tested).
    FixedIterations,
    /// A NaN or infinity appeared in the iterates; the result is not usable.
    NumericalError,
    /// The constraints `Ax = b`, `Gx <= h` have no solution; see
    /// [`Solution::certificate`](crate::Solution::certificate).
    PrimalInfeasible,
    /// The objective is unbounded below on the feasible set; see
    /// [`Solution::certificate`](crate::Solution::certificate).
    DualInfeasible,
    /// [`Settings::time_limit`](crate::Settings::time_limit) passed before the stopping rule
    /// was met (the last iterate is returned, as for [`Status::MaxIterations`]).
    TimeLimit,
}

impl Status {
    /// The status in snake case, as the CLI writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Solved => "solved",
            Status::MaxIterations => "max_iterations",
            Status::FixedIterations => "fixed_iterations",
            Status::NumericalError => "numerical_error",
            Status::PrimalInfeasible => "primal_infeasible",
            Status::DualInfeasible => "dual_infeasible",
            Status::TimeLimit => "time_limit",
        }
    }

    /// Whether the iteration was cut short by a bound (iterations or time): the last iterate
    /// is usable, but not converged.
    pub fn is_truncated(self) -> bool {
        matches!(self, Status::MaxIterations | Status::TimeLimit)
    }

    /// Whether the stopping rule was met.
    pub fn is_solved(self) -> bool {
        self == Status::Solved
    }

    /// Whether the iteration ended the way the settings asked ([`Status::Solved`], or
    /// [`Status::FixedIterations`] for a fixed count).
    pub fn is_expected(self) -> bool {
        matches!(self, Status::Solved | Status::FixedIterations)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
