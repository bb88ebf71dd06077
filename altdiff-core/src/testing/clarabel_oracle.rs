//! An independent forward oracle: the interior-point solver clarabel.

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};

use crate::{HostMatrix, HostQp};

/// clarabel's solution in altdiff's names (`lam` for `Ax = b`, `nu` for `Gx <= h`).
#[derive(Clone, Debug, PartialEq)]
pub struct OracleSolution {
    /// Primal solution.
    pub x: Vec<f64>,
    /// Equality duals.
    pub lam: Vec<f64>,
    /// Inequality duals.
    pub nu: Vec<f64>,
    /// Objective value.
    pub objective: f64,
}

/// Solves `qp` with clarabel to tolerance 1e-10 (presolve off, so duals line up).
/// Returns `None` unless clarabel reports `Solved`.
///
/// # Example
/// ```
/// use altdiff_core::testing::{clarabel_solve, tiny_qp};
/// let sol = clarabel_solve(&tiny_qp()).unwrap();
/// assert!((sol.x[1] - 0.5).abs() < 1e-8 && (sol.lam[0] + 1.25).abs() < 1e-7);
/// ```
pub fn clarabel_solve(qp: &HostQp) -> Option<OracleSolution> {
    clarabel_solve_to(qp, 1e-10)
}

/// [`clarabel_solve`] to the tolerance `tol` (gap, absolute and relative, and feasibility).
pub(crate) fn clarabel_solve_to(qp: &HostQp, tol: f64) -> Option<OracleSolution> {
    match clarabel_attempt(qp, tol, false)? {
        (true, solution) => Some(solution),
        (false, _) => None,
    }
}

/// clarabel at `tol`: `(whether it reported Solved, its last iterate)`, `None` when it
/// fails to set up or ends without an iterate worth refining (infeasible, numerical
/// error). With `strict_infeasibility` the infeasibility tolerances are 1e-14 instead of
/// clarabel's 1e-8, which its certificates pass falsely on bounds like 1e10.
pub(crate) fn clarabel_attempt(
    qp: &HostQp,
    tol: f64,
    strict_infeasibility: bool,
) -> Option<(bool, OracleSolution)> {
    let (n, p, m) = (qp.q.len(), qp.b.len(), qp.h.len());
    let p_upper = csc(&qp.p, |i, j| i <= j);
    let stacked = HostMatrix::from_fn(p + m, n, |i, j| {
        if i < p {
            qp.a.get(i, j)
        } else {
            qp.g.get(i - p, j)
        }
    });
    let rhs: Vec<f64> = qp.b.iter().chain(&qp.h).copied().collect();
    let cones = [
        SupportedConeT::ZeroConeT(p),
        SupportedConeT::NonnegativeConeT(m),
    ];
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .presolve_enable(false)
        .tol_gap_abs(tol)
        .tol_gap_rel(tol)
        .tol_feas(tol)
        .tol_infeas_abs(if strict_infeasibility { 1e-14 } else { 1e-8 })
        .tol_infeas_rel(if strict_infeasibility { 1e-14 } else { 1e-8 })
        .build()
        .ok()?;
    let mut solver = DefaultSolver::new(
        &p_upper,
        &qp.q,
        &csc(&stacked, |_, _| true),
        &rhs,
        &cones,
        settings,
    )
    .ok()?;
    solver.solve();
    let sol = &solver.solution;
    let usable = matches!(
        sol.status,
        SolverStatus::Solved
            | SolverStatus::AlmostSolved
            | SolverStatus::InsufficientProgress
            | SolverStatus::MaxIterations
    );
    usable.then(|| {
        (
            sol.status == SolverStatus::Solved,
            OracleSolution {
                x: sol.x.clone(),
                lam: sol.z[..p].to_vec(),
                nu: sol.z[p..].to_vec(),
                objective: sol.obj_val,
            },
        )
    })
}

/// The nonzeros of `m` kept by `keep(row, col)`, as a clarabel CSC matrix.
fn csc(m: &HostMatrix, keep: impl Fn(usize, usize) -> bool) -> CscMatrix<f64> {
    let (mut rows, mut cols, mut vals) = (Vec::new(), Vec::new(), Vec::new());
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            let v = m.get(i, j);
            if v != 0.0 && keep(i, j) {
                rows.push(i);
                cols.push(j);
                vals.push(v);
            }
        }
    }
    CscMatrix::new_from_triplets(m.nrows(), m.ncols(), rows, cols, vals)
}
