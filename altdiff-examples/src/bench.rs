//! `altdiff bench`: the numerical experiment of the Alt-Diff paper as a command.
//!
//! For each problem (a generated size or a file), backend and method, the whole pipeline
//! (setup with the factorization, solve, derivative) is timed over repeats, and the
//! derivative is compared with the exact one: KKT implicit differentiation at a tight
//! (residual 1e-9) ADMM solution. Methods:
//!
//! * `altdiff`: the Jacobian `dx/dtheta` by Alt-Diff forward mode;
//! * `altdiff-vjp`: one unrolled VJP with `g = 1` (the gradient of `sum x`), tape of masks;
//!   its error columns compare `J'1` with the exact `J'1`;
//! * `altdiff-limit`, `altdiff-vjp-limit`: the same derivatives as the limit of the recursion
//!   for the final mask, solved directly ([`Settings::limit`], [`VjpMode::Limit`]);
//! * `kkt`: the Jacobian by [`Method::Kkt`] at the ADMM solution.
//!
//! Columns: `jac_rel_err = |J - J*|_F / |J*|_F`, `cosine` of `d(sum x)/dtheta = J'1` with the
//! exact one (the paper's accuracy measure), `objective_gap = |f - f*| / max(1, |f*|)`.

use std::time::Instant;

use altdiff_core::{
    AltDiff, HostMatrix, HostQp, IterationSpace, LinAlg, Method, Param, Qp, Settings, StoppingRule,
    Tape, VjpMode, Wrt,
};

use crate::CliError;
use crate::backends::{BackendJob, BackendKind};
use crate::demo::{column_sums, cosine, frobenius_rel_err};

/// A method compared by the bench.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BenchMethod {
    /// Alt-Diff forward mode: the full Jacobian.
    Altdiff,
    /// Alt-Diff reverse mode: one unrolled VJP (`g = 1`).
    AltdiffVjp,
    /// Alt-Diff with the limit of the recursion solved directly ([`Settings::limit`]):
    /// the forward iteration in the dual space (polished under the residual rule), then
    /// the Jacobian's limit for the final mask.
    AltdiffLimit,
    /// The VJP of the limit ([`VjpMode::Limit`]) after the forward solve of `altdiff-limit`.
    AltdiffVjpLimit,
    /// KKT implicit differentiation at the ADMM solution.
    Kkt,
}

impl BenchMethod {
    /// The method's name in tables and files.
    pub fn name(self) -> &'static str {
        match self {
            BenchMethod::Altdiff => "altdiff",
            BenchMethod::AltdiffVjp => "altdiff-vjp",
            BenchMethod::AltdiffLimit => "altdiff-limit",
            BenchMethod::AltdiffVjpLimit => "altdiff-vjp-limit",
            BenchMethod::Kkt => "kkt",
        }
    }
}

/// One row of the bench: exactly the keys of the JSON / CSV output.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchRow {
    /// Backend name.
    pub backend: String,
    /// Method name.
    pub method: String,
    /// Variables.
    pub n: usize,
    /// Equalities.
    pub n_eq: usize,
    /// Inequalities.
    pub n_ineq: usize,
    /// The parameter differentiated.
    pub wrt: String,
    /// Iterations of the (last) solve.
    pub iterations: usize,
    /// Median wall time over the repeats (setup + solve + derivative), seconds.
    pub time_median_s: f64,
    /// Fastest repeat, seconds.
    pub time_min_s: f64,
    /// Slowest repeat, seconds.
    pub time_max_s: f64,
    /// `|J - J*|_F / |J*|_F` (for `altdiff-vjp`: of `J'1`).
    pub jac_rel_err: f64,
    /// Cosine similarity of `J'1` with the exact `J*'1`.
    pub cosine: f64,
    /// `|f - f*| / max(1, |f*|)`.
    pub objective_gap: f64,
}

impl BenchRow {
    /// Table header.
    pub fn header() -> String {
        format!(
            "{:<8} {:<17} {:>17} {:>3} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}",
            "backend",
            "method",
            "n/n_eq/n_ineq",
            "wrt",
            "iters",
            "median s",
            "min s",
            "max s",
            "jac relerr",
            "cosine",
            "obj gap"
        )
    }

    /// Table line.
    pub fn line(&self) -> String {
        format!(
            "{:<8} {:<17} {:>17} {:>3} {:>6} {:>10.4} {:>10.4} {:>10.4} {:>10.2e} {:>10.6} {:>9.1e}",
            self.backend,
            self.method,
            format!("{}/{}/{}", self.n, self.n_eq, self.n_ineq),
            self.wrt,
            self.iterations,
            self.time_median_s,
            self.time_min_s,
            self.time_max_s,
            self.jac_rel_err,
            self.cosine,
            self.objective_gap
        )
    }
}

/// The exact reference of one problem.
#[derive(Clone, Debug)]
pub struct Reference {
    /// `dx/dtheta` by KKT at a tight solution.
    pub jacobian: HostMatrix,
    /// The objective there.
    pub objective: f64,
}

/// The reference: [`Method::Kkt`] on `backend` at a residual-1e-9 solution (dual space).
struct ReferenceJob<'a> {
    qp: &'a HostQp,
    wrt: Param,
    rho: f64,
}

impl BackendJob for ReferenceJob<'_> {
    type Output = Reference;

    fn run<B: LinAlg<Real = f64>>(self, backend: B) -> Result<Reference, CliError> {
        let problem = Qp::from_host(&backend, self.qp)?;
        let settings = Settings::default()
            .with_rho(self.rho)
            .with_stopping(StoppingRule::Residual {
                eps_abs: 1e-9,
                eps_rel: 1e-9,
            })
            .with_max_iter(200_000)
            .with_method(Method::Kkt)
            .with_iteration(IterationSpace::Dual)
            .with_wrt(Wrt::none().with(self.wrt));
        let sol = AltDiff::new(backend.clone(), &problem, settings)?
            .solve(problem.params())?
            .to_host(&backend)?;
        if !sol.status.is_solved() {
            return Err(CliError::Usage(format!(
                "the reference solve did not converge ({})",
                sol.status
            )));
        }
        Ok(Reference {
            jacobian: sol.jacobian(self.wrt).expect("requested").clone(),
            objective: sol.objective,
        })
    }
}

/// Computes the reference of `qp` on `backend`.
///
/// # Errors
/// A library error, or [`CliError::Usage`] when the tight solve does not converge.
pub fn reference(
    backend: BackendKind,
    qp: &HostQp,
    wrt: Param,
    rho: f64,
) -> Result<Reference, CliError> {
    backend.run(ReferenceJob { qp, wrt, rho })
}

/// One (backend, method) measurement: `repeats` timed runs, then the comparison.
pub struct BenchJob<'a> {
    /// The problem.
    pub qp: &'a HostQp,
    /// The parameter differentiated.
    pub wrt: Param,
    /// The method.
    pub method: BenchMethod,
    /// Settings (stopping rule, rho, ...).
    pub settings: Settings,
    /// Timed runs.
    pub repeats: usize,
    /// The exact reference.
    pub reference: &'a Reference,
    /// Called after each timed run (progress).
    pub tick: &'a dyn Fn(),
}

/// What one timed run produced: iterations, objective, the derivative (Jacobian or `J'1`).
struct Outcome {
    iterations: usize,
    objective: f64,
    derivative: Derivative,
}

enum Derivative {
    Jacobian(HostMatrix),
    Vjp(Vec<f64>),
}

impl BenchJob<'_> {
    fn once<B: LinAlg<Real = f64>>(
        &self,
        backend: &B,
        problem: &Qp<B>,
    ) -> Result<Outcome, CliError> {
        let wrt = Wrt::none().with(self.wrt);
        match self.method {
            BenchMethod::Altdiff | BenchMethod::AltdiffLimit | BenchMethod::Kkt => {
                let method = if self.method == BenchMethod::Kkt {
                    Method::Kkt
                } else {
                    Method::AltDiff
                };
                let solver = AltDiff::new(
                    backend.clone(),
                    problem,
                    self.settings
                        .clone()
                        .with_wrt(wrt)
                        .with_method(method)
                        .with_limit(self.method == BenchMethod::AltdiffLimit),
                )?;
                let sol = solver.solve(problem.params())?;
                let jac = sol.to_host(backend)?;
                Ok(Outcome {
                    iterations: jac.iterations,
                    objective: jac.objective,
                    derivative: Derivative::Jacobian(
                        jac.jacobian(self.wrt).expect("requested").clone(),
                    ),
                })
            }
            BenchMethod::AltdiffVjp | BenchMethod::AltdiffVjpLimit => {
                let (settings, mode) = if self.method == BenchMethod::AltdiffVjpLimit {
                    (self.settings.clone().with_limit(true), VjpMode::Limit)
                } else {
                    (
                        self.settings.clone().with_tape(Tape::Masks),
                        VjpMode::Unrolled,
                    )
                };
                let solver = AltDiff::new(backend.clone(), problem, settings)?;
                let sol = solver.solve(problem.params())?;
                let n = self.qp.q.len();
                let ones = backend.mat_from_col_major(n, 1, &vec![1.0; n])?;
                let grads = solver.vjp(&sol, &ones, mode)?;
                let grad = match self.wrt {
                    Param::Q => &grads.q,
                    Param::B => &grads.b,
                    Param::H => &grads.h,
                    other => {
                        return Err(CliError::Usage(format!(
                            "bench differentiates q, b or h, not {}",
                            other.name()
                        )));
                    }
                };
                Ok(Outcome {
                    iterations: sol.iterations(),
                    objective: sol.objective(),
                    derivative: Derivative::Vjp(backend.to_col_major(grad)?),
                })
            }
        }
    }
}

impl BackendJob for BenchJob<'_> {
    type Output = BenchRow;

    fn run<B: LinAlg<Real = f64>>(self, backend: B) -> Result<BenchRow, CliError> {
        let problem = Qp::from_host(&backend, self.qp)?;
        let mut times = Vec::with_capacity(self.repeats);
        let mut last = None;
        for _ in 0..self.repeats.max(1) {
            let started = Instant::now();
            let outcome = self.once(&backend, &problem)?;
            backend.synchronize()?;
            times.push(started.elapsed().as_secs_f64());
            last = Some(outcome);
            (self.tick)();
        }
        let outcome = last.expect("ran once");
        times.sort_by(f64::total_cmp);
        let exact = &self.reference.jacobian;
        let exact_sums = column_sums(exact);
        let (jac_rel_err, cosine) = match &outcome.derivative {
            Derivative::Jacobian(j) => (
                frobenius_rel_err(j, exact),
                cosine(&column_sums(j), &exact_sums),
            ),
            Derivative::Vjp(v) => {
                let m = HostMatrix::from_fn(v.len(), 1, |i, _| v[i]);
                let e = HostMatrix::from_fn(exact_sums.len(), 1, |i, _| exact_sums[i]);
                (frobenius_rel_err(&m, &e), cosine(v, &exact_sums))
            }
        };
        let dims = self.qp.validate()?;
        let f_ref = self.reference.objective;
        Ok(BenchRow {
            backend: backend.name().to_owned(),
            method: self.method.name().to_owned(),
            n: dims.n,
            n_eq: dims.p,
            n_ineq: dims.m,
            wrt: self.wrt.name().to_owned(),
            iterations: outcome.iterations,
            time_median_s: times[times.len() / 2],
            time_min_s: times[0],
            time_max_s: times[times.len() - 1],
            jac_rel_err,
            cosine,
            objective_gap: (outcome.objective - f_ref).abs() / f_ref.abs().max(1.0),
        })
    }
}

/// Writes rows as a JSON array.
///
/// # Errors
/// [`CliError::Io`].
pub fn write_json<T: serde::Serialize>(path: &std::path::Path, rows: &[T]) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(rows).expect("serializable");
    std::fs::write(path, text + "\n").map_err(|source| CliError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes rows as CSV with a header line.
///
/// # Errors
/// [`CliError::Io`].
pub fn write_csv(path: &std::path::Path, rows: &[BenchRow]) -> Result<(), CliError> {
    let io = |source: std::io::Error| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = csv::Writer::from_path(path).map_err(|e| io(e.into()))?;
    for row in rows {
        writer.serialize(row).map_err(|e| io(e.into()))?;
    }
    writer.flush().map_err(io)
}
