//! Test support (feature `testing`): the reference backend, test problems, the oracles and
//! the conformance suite every backend runs.
//!
//! * [`RefBackend`]: naive column-major `Vec<f64>` backend with a textbook Cholesky.
//! * [`tiny_qp`], [`random_qp`]: the hand-checked QP and seeded random generators.
//! * [`kkt_jacobian`]: exact Jacobians by implicit differentiation of the KKT conditions on
//!   the active set (nalgebra LU), independent of the ADMM code.
//! * [`clarabel_solve`]: solutions and duals from the interior-point solver clarabel.
//! * [`central_diff`]: central finite differences of any solution map.
//! * [`softmax`], [`simplex_projection`]: the closed forms of the smooth layers.
//! * [`user_data_set`]: problems as users write them (loose bounds, scaled rows and columns,
//!   LPs, non-unique solutions) and [`Judgement`], the rule a solve is judged by.
//! * [`conformance`] and [`conformance_tests!`](crate::conformance_tests): the suite.

mod clarabel_oracle;
mod closed_forms;
pub mod conformance;
mod differentiability_checks;
mod finite_diff;
mod kkt;
mod problems;
mod reference;
mod trust_checks;
mod user_data;

pub use clarabel_oracle::{OracleSolution, clarabel_solve};
pub use closed_forms::{max_abs_diff, simplex_projection, softmax};
pub use finite_diff::{central_diff, central_diff_along, perturbed, zero_direction};
pub use kkt::{active_set, dual_active_set, kkt_jacobian, kkt_jvp, rel_diff};
pub use problems::{
    Generator, badly_scaled, classification_qp, masked_qp, mat_vec, random_lp, random_qp, tiny_qp,
};
pub use reference::{RefBackend, RefFactor, RefMat};
pub use user_data::{
    Judgement, UserDataKind, UserProblem, objective_right, reference_solve, user_data_set, user_qp,
    x_right,
};

use crate::{AltDiff, HostQp, HostSolution, LinAlg, Qp, Result, Settings};

/// Uploads `qp` to `backend`, solves it with `settings` and copies the solution back.
///
/// # Errors
/// Any error of validation, setup or the solve.
///
/// # Example
/// ```
/// use altdiff_core::{Settings, testing::{RefBackend, solve_host, tiny_qp}};
/// let sol = solve_host(&RefBackend, &tiny_qp(), Settings::default())?;
/// assert!(sol.status.is_solved());
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub fn solve_host<B: LinAlg>(backend: &B, qp: &HostQp, settings: Settings) -> Result<HostSolution> {
    let problem = Qp::from_host(backend, qp)?;
    AltDiff::new(backend.clone(), &problem, settings)?
        .solve(problem.params())?
        .to_host(backend)
}
