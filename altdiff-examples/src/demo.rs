//! `altdiff demo`: a random feasible QP solved by Alt-Diff on each backend, its Jacobian
//! checked against the exact KKT Jacobian (at clarabel's solution), and the cost of one Jacobian iteration measured
//! against a plain faer GEMM of the same shape.
//!
//! The problem comes from [`altdiff_core::testing::random_qp`] (by default the
//! well-conditioned generator: `P = W'W/n + 0.1 I`, `b = A x0`, `h = G x0 + |N(0,1)|`, all
//! else `N(0, 1)`).

use std::time::{Duration, Instant};

use altdiff_core::testing::{Generator, clarabel_solve, dual_active_set, kkt_jacobian, random_qp};
use altdiff_core::{
    AltDiff, HostMatrix, HostQp, IterationSpace, LinAlg, Param, Qp, Settings, StoppingRule, Wrt,
};

use crate::CliError;
use crate::backends::{BackendJob, BackendKind};

/// What to run.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Variables.
    pub n: usize,
    /// Equalities.
    pub n_eq: usize,
    /// Inequalities.
    pub n_ineq: usize,
    /// Seed of the generator.
    pub seed: u64,
    /// The generator.
    pub generator: Generator,
    /// The parameter differentiated.
    pub wrt: Param,
    /// Solver settings (`wrt` is overwritten).
    pub settings: Settings,
    /// Fixed iterations per timing run of the throughput measurement.
    pub timing_iterations: usize,
    /// Timing runs (the median is reported).
    pub repeats: usize,
}

/// One line of the demo table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DemoRow {
    /// Backend name.
    pub backend: &'static str,
    /// Variables, equalities, inequalities.
    pub dims: (usize, usize, usize),
    /// Parameter differentiated.
    pub wrt: &'static str,
    /// Solver status.
    pub status: &'static str,
    /// Iterations run.
    pub iterations: usize,
    /// Setup (factorization of H, convexity test) in seconds.
    pub setup_s: f64,
    /// Solve with the Jacobian, in seconds.
    pub solve_s: f64,
    /// The exact Jacobian (clarabel's solution to 1e-10, then nalgebra LU of the KKT system
    /// on its active set), in seconds.
    pub kkt_s: f64,
    /// `|J - J*|_F / |J*|_F`.
    pub jac_rel_err: f64,
    /// Cosine similarity of `d(sum x)/d theta` with the exact one.
    pub cosine: f64,
    /// One Jacobian iteration (median over repeats), in milliseconds.
    pub jac_iter_ms: f64,
    /// One faer GEMM of the iteration's main product (median), in milliseconds:
    /// `(n x n)(n x d)` in the primal space, `(r x r)(r x d)` in the dual space.
    pub gemm_ms: f64,
    /// The median over repeats of one Jacobian iteration's time over the GEMM's, each pair
    /// timed side by side in the same repeat (this machine's speed drifts between repeats).
    pub ratio: f64,
    /// Where the iteration ran (`primal` or `dual`).
    pub space: &'static str,
}

impl DemoRow {
    /// The header of [`DemoRow::line`].
    pub fn header() -> String {
        format!(
            "{:<8} {:>6} {:>17} {:>3} {:>10} {:>6} {:>9} {:>9} {:>9} {:>10} {:>9} {:>11} {:>9} {:>7}",
            "backend",
            "space",
            "n/n_eq/n_ineq",
            "wrt",
            "status",
            "iters",
            "setup s",
            "solve+J s",
            "kkt s",
            "jac relerr",
            "cosine",
            "J-iter ms",
            "gemm ms",
            "ratio"
        )
    }

    /// The row as a table line.
    pub fn line(&self) -> String {
        let (n, p, m) = self.dims;
        format!(
            "{:<8} {:>6} {:>17} {:>3} {:>10} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>10.2e} {:>9.6} {:>11.3} {:>9.3} {:>7.2}",
            self.backend,
            self.space,
            format!("{n}/{p}/{m}"),
            self.wrt,
            self.status,
            self.iterations,
            self.setup_s,
            self.solve_s,
            self.kkt_s,
            self.jac_rel_err,
            self.cosine,
            self.jac_iter_ms,
            self.gemm_ms,
            self.ratio
        )
    }
}

impl DemoConfig {
    /// The problem of this configuration.
    pub fn problem(&self) -> HostQp {
        random_qp(self.generator, self.n, self.n_eq, self.n_ineq, self.seed)
    }

    /// Runs the demo on one backend.
    ///
    /// # Errors
    /// A library error, or [`CliError::Usage`] when the exact Jacobian is undefined.
    pub fn run_on(&self, backend: BackendKind, qp: &HostQp) -> Result<DemoRow, CliError> {
        backend.run(DemoJob { config: self, qp })
    }
}

struct DemoJob<'a> {
    config: &'a DemoConfig,
    qp: &'a HostQp,
}

impl BackendJob for DemoJob<'_> {
    type Output = DemoRow;

    fn run<B: LinAlg<Real = f64>>(self, backend: B) -> Result<DemoRow, CliError> {
        let (config, qp) = (self.config, self.qp);
        let problem = Qp::from_host(&backend, qp)?;
        let settings = config
            .settings
            .clone()
            .with_wrt(Wrt::none().with(config.wrt));
        let started = Instant::now();
        let solver = AltDiff::new(backend.clone(), &problem, settings.clone())?;
        let setup_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let sol = solver.solve(problem.params())?;
        backend.synchronize()?;
        let solve_s = started.elapsed().as_secs_f64();
        let host = sol.to_host(&backend)?;
        let jac = host.jacobian(config.wrt).expect("requested");

        let (exact, kkt_s) = exact_jacobian(qp, config.wrt)?;

        // the shape of the iteration's main product: (n x n)(n x d) in the primal space,
        // (r x r)(r x d) with r = p + m in the dual space
        let rows = match solver.iteration_space() {
            IterationSpace::Dual => config.n_eq + config.n_ineq,
            _ => qp.q.len(),
        };
        let timing = jacobian_iteration_time(&backend, &problem, &settings, config, || {
            gemm_time(rows, jac.ncols(), 3)
        })?;
        Ok(DemoRow {
            backend: backend.name(),
            dims: (config.n, config.n_eq, config.n_ineq),
            wrt: config.wrt.name(),
            status: host.status.as_str(),
            iterations: host.iterations,
            setup_s,
            solve_s,
            kkt_s,
            jac_rel_err: frobenius_rel_err(jac, &exact),
            cosine: cosine(&column_sums(jac), &column_sums(&exact)),
            jac_iter_ms: timing.iteration.as_secs_f64() * 1e3,
            gemm_ms: timing.gemm.as_secs_f64() * 1e3,
            ratio: timing.ratio,
            space: if rows == qp.q.len() && solver.iteration_space() != IterationSpace::Dual {
                "primal"
            } else {
                "dual"
            },
        })
    }
}

/// The exact Jacobian and the time it took: clarabel solves the problem to 1e-10, the
/// active set is read off its primal-dual pair, and the KKT system is solved by nalgebra.
fn exact_jacobian(qp: &HostQp, wrt: Param) -> Result<(HostMatrix, f64), CliError> {
    let started = Instant::now();
    let reference = clarabel_solve(qp)
        .ok_or_else(|| CliError::Usage("clarabel did not solve the problem".into()))?;
    let active = dual_active_set(qp, &reference.x, &reference.nu);
    let exact = kkt_jacobian(qp, &active, wrt).ok_or_else(|| {
        CliError::Usage("the KKT matrix is singular at the solution (degenerate active set)".into())
    })?;
    Ok((exact, started.elapsed().as_secs_f64()))
}

/// One Jacobian iteration against a GEMM, medians over repeats.
struct IterationTiming {
    iteration: Duration,
    gemm: Duration,
    /// The median of the per-repeat ratios.
    ratio: f64,
}

/// One Jacobian iteration: the marginal time of an iteration with the Jacobian minus one
/// without, from runs of `K` and `2K` fixed iterations (`((with(2K) - with(K)) - (without(2K)
/// - without(K))) / K`), so the one-time work of a solve (its tangent data, `x` formed at the
/// end) is not counted as iteration time; `gemm` is timed in every repeat, right after.
fn jacobian_iteration_time<B: LinAlg<Real = f64>>(
    backend: &B,
    problem: &Qp<B>,
    settings: &Settings,
    config: &DemoConfig,
    gemm: impl Fn() -> Duration,
) -> Result<IterationTiming, CliError> {
    let k = config.timing_iterations.max(1);
    let solvers = |iterations: usize| -> Result<[AltDiff<B>; 2], CliError> {
        let fixed = settings
            .clone()
            .with_stopping(StoppingRule::Fixed(iterations));
        let with = AltDiff::new(backend.clone(), problem, fixed.clone())?;
        let space = with.iteration_space();
        let without = fixed.with_wrt(Wrt::none()).with_iteration(space);
        Ok([with, AltDiff::new(backend.clone(), problem, without)?])
    };
    let (short, long) = (solvers(k)?, solvers(2 * k)?);
    let time = |solver: &AltDiff<B>| -> Result<f64, CliError> {
        let started = Instant::now();
        let _ = solver.solve(problem.params())?;
        backend.synchronize()?;
        Ok(started.elapsed().as_secs_f64())
    };
    let (mut iterations, mut gemms, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..config.repeats.max(1) {
        let with = time(&long[0])? - time(&short[0])?;
        let without = time(&long[1])? - time(&short[1])?;
        let iteration = Duration::from_secs_f64(((with - without) / k as f64).max(0.0));
        let product = gemm();
        ratios.push(iteration.as_secs_f64() / product.as_secs_f64());
        iterations.push(iteration);
        gemms.push(product);
    }
    ratios.sort_by(f64::total_cmp);
    Ok(IterationTiming {
        iteration: median(iterations),
        gemm: median(gemms),
        ratio: ratios[ratios.len() / 2],
    })
}

/// A plain faer GEMM `(n x n) (n x d)`, sequential: median over `repeats` runs after one
/// untimed run (its page faults and cold caches are not the GEMM's).
fn gemm_time(n: usize, d: usize, repeats: usize) -> Duration {
    let a = faer::Mat::<f64>::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
    let b = faer::Mat::<f64>::from_fn(n, d, |i, j| ((i + 2 * j) % 5) as f64 - 2.0);
    let mut c = faer::Mat::<f64>::zeros(n, d);
    let samples = (0..=repeats.max(1))
        .map(|_| {
            let started = Instant::now();
            faer::linalg::matmul::matmul(
                c.as_mut(),
                faer::Accum::Replace,
                a.as_ref(),
                b.as_ref(),
                1.0,
                faer::Par::Seq,
            );
            started.elapsed()
        })
        .skip(1)
        .collect();
    std::hint::black_box(&c);
    median(samples)
}

/// The median of some durations.
///
/// # Panics
/// On an empty list.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// `|J - J*|_F / |J*|_F`.
pub fn frobenius_rel_err(got: &HostMatrix, exact: &HostMatrix) -> f64 {
    let diff: f64 = got
        .col_major()
        .iter()
        .zip(exact.col_major().iter())
        .map(|(a, b)| (a - b).powi(2))
        .sum();
    let norm: f64 = exact.col_major().iter().map(|v| v * v).sum();
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
}

/// `J' 1`: the gradient of `sum x` with respect to the parameter.
pub fn column_sums(j: &HostMatrix) -> Vec<f64> {
    (0..j.ncols())
        .map(|c| (0..j.nrows()).map(|r| j.get(r, c)).sum())
        .collect()
}

/// Cosine similarity of two vectors (0 when one is zero).
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_on_known_vectors() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - 0.5_f64.sqrt()).abs() < 1e-15);
        let a = HostMatrix::from_fn(2, 1, |i, _| i as f64 + 1.0);
        let b = HostMatrix::from_fn(2, 1, |i, _| if i == 0 { 1.0 } else { 2.5 });
        assert!((frobenius_rel_err(&b, &a) - (0.25_f64 / 5.0).sqrt()).abs() < 1e-15);
        assert_eq!(column_sums(&a), vec![3.0]);
    }
}
