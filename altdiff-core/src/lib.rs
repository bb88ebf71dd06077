//! # altdiff-core: Alt-Diff, written once
//!
//! Solves a convex quadratic program by ADMM and computes the Jacobians of its solution with
//! the Alt-Diff recursion (Sun et al., *Alternating Differentiation for Optimization
//! Layers*, ICLR 2023), generic over a linear-algebra backend ([`LinAlg`]). Backends live in
//! their own crates: `altdiff-faer` (dense CPU), `altdiff-ndarray` (dense CPU, factorizations
//! through faer), `altdiff-candle` (tensors; later).
//!
//! ## The problem and conventions
//!
//! ```text
//! minimize    1/2 x'Px + q'x
//! subject to  Ax = b     (p rows: the equalities)
//!             Gx <= h    (m rows: the inequalities)
//! ```
//!
//! `n` variables, **`p` equalities, `m` inequalities** (the reference code of the paper uses
//! `m` and `p` the other way round). `P` is symmetric positive semidefinite; either
//! constraint block may be empty. The Lagrangian is
//! `L = 1/2 x'Px + q'x + lam'(Ax - b) + nu'(Gx - h)`, `nu >= 0`.
//! Jacobians are `n x (size of the parameter)`: `dx/dq` is `n x n`, `dx/db` is `n x p`,
//! `dx/dh` is `n x m`, and entry `[i][j]` is `d x_i / d theta_j`.
//!
//! ## The iteration
//!
//! ADMM with a slack `s >= 0`, `Gx + s = h`, penalty `rho`, in the order x -> s -> lam -> nu:
//!
//! ```text
//! H   = P + rho (A'A + G'G)                          factored ONCE (Cholesky)
//! x   = -H^-1 [q + A'lam + G'nu - rho A'b + rho G'(s - h)]
//! s   = max(0, -nu/rho - (Gx - h))
//! lam = lam + rho (Ax - b)
//! nu  = nu + rho (Gx + s - h)
//! ```
//!
//! Alt-Diff differentiates each step alongside, for any of `theta` in `{q, b, h}`:
//!
//! ```text
//! J_x   = -H^-1 [E + A'J_lam + G'J_nu + rho G'J_s]   E = I (q), -rho A' (b), -rho G' (h)
//! J_s   = -1[s > 0] (J_nu/rho + G J_x - dh)           mask rule: s > 0 strictly
//! J_lam = J_lam + rho (A J_x - db)
//! J_nu  = J_nu + rho (G J_x + J_s - dh)
//! ```
//!
//! (`db = I` for `theta = b`, `dh = I` for `theta = h`, zero otherwise.) The map is affine
//! once the mask is known, so one function runs both the solution (`n x 1` blocks) and the
//! Jacobians (`n x d` blocks). At convergence the Jacobians equal implicit differentiation
//! of the KKT conditions; truncated early, their error is of the order of the solution's.
//!
//! ## Example
//!
//! ```
//! # #[cfg(feature = "testing")] {
//! use altdiff_core::{AltDiff, Param, Qp, Settings, Wrt, testing::{RefBackend, tiny_qp}};
//! let qp = Qp::from_host(&RefBackend, &tiny_qp())?;            // n = 3, p = 1, m = 2
//! let settings = Settings::default().with_wrt(Wrt::none().with(Param::B));
//! let solver = AltDiff::new(RefBackend, &qp, settings)?;     // factors H once
//! let sol = solver.solve(qp.params())?.to_host(&RefBackend)?;
//! assert!(sol.status.is_solved());
//! let dx_db = sol.jacobian(Param::B).unwrap();               // n x p = 3 x 1
//! assert!((dx_db.get(0, 0) - 3.0 / 7.0).abs() < 1e-4);
//! # }
//! # Ok::<(), altdiff_core::Error>(())
//! ```
//!
//! ## Stopping rules
//!
//! [`StoppingRule::Residual`] (OSQP-style primal and dual residuals; the default),
//! [`StoppingRule::RelativeObjective`] (the paper code's rule), [`StoppingRule::RelativeX`],
//! [`StoppingRule::Fixed`] (truncated Alt-Diff). `max_iter` always bounds the loop;
//! not converging is a [`Status`], never an error. Infeasible and unbounded problems end
//! with [`Status::PrimalInfeasible`] / [`Status::DualInfeasible`] and a [`Certificate`].
//! [`AdaptiveRho`] (opt-in) balances the residuals by refactoring `H` when the penalty should
//! move more than 5x; derivatives stay exact.
//!
//! ## Every derivative
//!
//! | what | API | cost per iteration (dense) |
//! |---|---|---|
//! | Jacobian wrt q, b, h, P, A, G | [`Settings::wrt`], [`Solution::jacobian`] | `O(n^2 d)`, `d` = parameter size |
//! | JVP along `k` directions of all six | [`AltDiff::solve_jvp`], [`Directions`] | `O(n^2 k)` |
//! | VJP, exact adjoint of the iterations run | [`Tape`], [`AltDiff::vjp`] with [`VjpMode::Unrolled`] | `O(n^2)` |
//! | VJP at the fixed point | [`VjpMode::Implicit`] | `O(n^2)` per adjoint iteration |
//! | KKT implicit differentiation | [`Method::Kkt`], [`VjpMode::Kkt`] | one factorization of the reduced KKT system |
//!
//! For a direction `(dP, dq, dA, db, dG, dh)` the recursion runs with the effective data
//! `dq + dP x + dA'u + dG'w`, `db - dA x`, `dh - dG x` at the forward iterate (this is where
//! `dH = dP + rho (dA'A + A'dA + dG'G + G'dG)` goes; derivation in the solver's `tangent`
//! module). Jacobians of `q`, `b`, `h` iterate in the dual space by default
//! ([`IterationSpace`]): with `M = C H^-1 C'`, `C = [A; G]`, formed once, an iteration costs
//! `O((p + m)^2 d)`; the iterates are the same.
//!
//! ## Writing a backend
//!
//! Implement [`LinAlg`] for a cheap `Clone` handle: about a dozen methods (creation and
//! transfer, `apply` of an operator plain or transposed, `factor` of
//! `H = P + rho (A'A + G'G)` and `solve_in_place` with it, `axpby`, the projection
//! `proj_nonneg` and its derivative `dproj_nonneg`, `norm_inf` and `dot`). Then run the
//! public conformance suite from your crate's `tests/`, with the feature `testing`:
//!
//! ```ignore
//! // tests/conformance.rs of a backend crate
//! altdiff_core::conformance_tests!(my_backend::MyBackend::default());
//! ```
//!
//! It compares every operation with the reference backend
//! (`testing::RefBackend`, the worked example: column-major `Vec<f64>` and a textbook
//! Cholesky) on edge shapes, and checks end-to-end solutions against known iterates, the KKT
//! oracle, finite differences and clarabel.
//!
//! ## Beyond quadratics
//!
//! [`smooth`]: any twice-differentiable convex objective with linear constraints
//! ([`SmoothObjective`]), solved by ADMM with a Newton x-update ([`SmoothSolver`]) and
//! differentiated the same way; ready-made entropy (constrained softmax) and sparsemax layers
//! in [`smooth::layers`].
//!
//! ## Features
//!
//! | Feature | Default | Comment |
//! |---|---|---|
//! | `testing` | no | reference backend, conformance suite, problem generators, KKT (nalgebra) and clarabel oracles |

#![warn(missing_docs)]

mod error;
mod host;
pub mod kernels;
mod linalg;
mod problem;
mod real;
mod settings;
pub mod smooth;
mod solver;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Error, Field, Result, SettingsError};
pub use host::{CscRef, HostMatrix, HostQp, QpDims, SYMMETRY_TOL};
pub use linalg::{Accum, LinAlg, Trans, lincomb_by_axpby};
pub use problem::{Qp, QpParams, QpProblem};
pub use real::Real;
pub use settings::{
    AdaptiveRho, Anderson, IterationSpace, Method, Param, Ruiz, Settings, StoppingRule, Tape, Wrt,
};
pub use smooth::{SmoothObjective, SmoothSolver};
pub use solver::{
    AltDiff, BatchSolution, Certificate, DerivativeStatus, Differentiability, Directions, Element,
    Grads, HostSolution, Iterate, Observation, Observer, Solution, Status, TangentKey, VjpMode,
};
