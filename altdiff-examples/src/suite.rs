//! `altdiff suite`: every problem of a directory of Maros-Meszaros MAT-files solved with a
//! time limit, with a derivative check, summarized as markdown and JSON.
//!
//! Per problem: read and map the file ([`crate::maros`]), solve with the residual rule at
//! `eps` (absolute and relative), the time limit and the iteration bound, and for a solved
//! problem check the derivatives against finite differences of the forward solve, an
//! oracle that shares nothing with the derivative code:
//!
//! * the differentiability report ([`AltDiff::differentiability`]) of the solution;
//! * a random seed `g` (uniform in [-1, 1], seeded by `--seed` and the problem's name)
//!   pulled back by the default VJP (`VjpMode::Limit`), giving `(g_q, g_b, g_h)`;
//! * a random direction `d = (d_q, d_b, d_h)` (entries uniform in [-1, 1] times
//!   `max(1, |theta_i|)`), and the directional derivative of `g'x` along it by central
//!   differences of re-solves at `eps = 1e-10` (each warm-started from the solution, with
//!   the suite's time limit; the stopping test judges the re-solved point alone; where a
//!   pair of them does not solve, clarabel's certified solutions of the two perturbed
//!   problems, `testing::reference_solve`), at the
//!   steps `t = 1e-5` and `1e-7`; the error is the smaller of the two
//!
//! ```text
//! |fd(t) - <(g_q, g_b, h_h), d>| / max(|fd(t)|, |<(g_q, g_b, g_h), d>|, 1e-8)
//! ```
//!
//! (`x` is piecewise linear in `(q, b, h)`: both steps are exact while the active set holds,
//! the larger one is less sensitive to the re-solves' accuracy). The verdict
//! ([`DerivativeCheck`]): `right` when the report says `differentiable` and the error is at
//! most `1e-4`, `wrong` when it says `differentiable` and the error is above (a wrong
//! derivative without a flag: the failure the report exists to prevent), `flagged` when the
//! report says anything else (the error is recorded all the same). Problems with
//! `n + n_eq + n_ineq` above `--check-max-dim`, unsolved problems and those whose re-solves
//! do not solve are `skipped`.
//!
//! Nothing a problem does stops the run: an unreadable or malformed file, a rejected
//! problem (e.g. `P` not positive semidefinite) or a failed solve is a row whose status is
//! `error: ...`; problems over the size cap (`--max-n`, by default 3000 variables on the
//! dense backends, none on a sparse one) are rows with status `skipped: ...`.
//!
//! The time limit bounds the iterations ([`Settings::time_limit`]); the setup (Ruiz
//! equilibration, the factorization, the convexity test) is not interrupted but is counted
//! in `time_s`. The derivative check (four re-solves) is timed apart.

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use altdiff_core::testing::reference_solve;
use altdiff_core::{
    AdaptiveRho, AltDiff, Differentiability, HostQp, LinAlg, Qp, QpParams, QpProblem, Settings,
    Solution, Status, StoppingRule, VjpMode,
};

use crate::CliError;
use crate::backends::{BackendJob, BackendKind};
use crate::cli::anderson;
use crate::maros::{MarosProblem, list_mat_files, panic_message, read_maros};

/// The options of `altdiff suite`.
#[derive(Clone, Debug, clap::Args)]
pub struct SuiteArgs {
    /// The directory of the `.mat` files (the qpbenchmark conversion of the test set).
    #[arg(long)]
    pub dir: PathBuf,
    /// Only these problems: comma-separated names, `*` matches any run of characters
    /// (case-insensitive; e.g. `HS21,QP*`).
    #[arg(long)]
    pub filter: Option<String>,
    /// Time limit per problem, in seconds (on the iterations).
    #[arg(long, default_value_t = 10.0)]
    pub time_limit: f64,
    /// Tolerance of the residual rule (absolute and relative; the library's default).
    #[arg(long, default_value_t = 1e-6)]
    pub eps: f64,
    /// Iteration bound per problem (the time limit comes first on all but the smallest
    /// problems; `scripts/maros_compare.py` gives OSQP the same bound); also bounds the
    /// implicit VJP's adjoint iteration.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_iter: usize,
    /// The backend (default: faer-sparse, the first sparse backend compiled in; else the
    /// first compiled in).
    #[arg(long, value_enum, default_value_t = default_backend())]
    pub backend: BackendKind,
    /// Skip problems with more variables (default: 3000 on the dense backends, none on a
    /// sparse one).
    #[arg(long)]
    pub max_n: Option<usize>,
    /// Check derivatives only where n + n_eq + n_ineq is at most this (the check re-solves
    /// the problem four times).
    #[arg(long, default_value_t = 3000)]
    pub check_max_dim: usize,
    /// Seed of the derivative check's random g and direction.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// ADMM penalty rho (the start, when adapted).
    #[arg(long, default_value_t = 1.0)]
    pub rho: f64,
    /// Keep rho fixed (default: residual balancing, as OSQP on this test set).
    #[arg(long)]
    pub no_adaptive_rho: bool,
    /// Anderson acceleration of the solves with this memory (0: plain ADMM).
    #[arg(long, default_value_t = 0)]
    pub anderson: usize,
    /// Ruiz equilibration of the data (the library's default: where badly scaled).
    #[arg(long, value_enum, default_value_t = crate::cli::ScalingArg::Auto)]
    pub scaling: crate::cli::ScalingArg,
    /// Write one JSON object per problem: name, n, n_eq, n_ineq, status, iterations, time_s,
    /// objective (with the constant r), primal_residual, dual_residual, duality_gap (on the
    /// problem as given), unique, derivative_check.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the markdown report here (the summary still goes to stdout).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// The suite's default backend: the first sparse one compiled in (`faer-sparse`), else the
/// first compiled in.
///
/// # Example
/// ```
/// use altdiff_examples::{backends::BackendKind, suite::default_backend};
/// assert!(BackendKind::compiled().contains(&default_backend()));
/// ```
pub fn default_backend() -> BackendKind {
    BackendKind::compiled()
        .iter()
        .copied()
        .find(|b| !is_dense(*b))
        .unwrap_or(BackendKind::compiled()[0])
}

/// Whether the backend stores the matrices dense (their size grows with `n^2`).
fn is_dense(backend: BackendKind) -> bool {
    matches!(
        backend,
        BackendKind::Faer
            | BackendKind::FaerF32
            | BackendKind::Ndarray
            | BackendKind::Candle
            | BackendKind::CandleCuda
    )
}

/// The default `--max-n` of a backend: 3000 when dense, none when sparse.
pub fn default_max_n(backend: BackendKind) -> Option<usize> {
    is_dense(backend).then_some(3000)
}

/// What the suite runs, and how.
#[derive(Clone, Debug)]
pub struct SuiteConfig {
    /// The directory of `.mat` files.
    pub dir: PathBuf,
    /// Name patterns (`*` wildcards, case-insensitive); empty: every file.
    pub filter: Vec<String>,
    /// Time limit of each solve's iterations.
    pub time_limit: Duration,
    /// Residual tolerance, absolute and relative.
    pub eps: f64,
    /// Iteration bound.
    pub max_iter: usize,
    /// The backend.
    pub backend: BackendKind,
    /// Problems with more variables are skipped.
    pub max_n: Option<usize>,
    /// Derivatives are checked up to this `n + n_eq + n_ineq`.
    pub check_max_dim: usize,
    /// Seed of the derivative check.
    pub seed: u64,
    /// Initial penalty.
    pub rho: f64,
    /// Residual balancing of the penalty.
    pub adaptive_rho: bool,
    /// Anderson acceleration memory (0: off).
    pub anderson: usize,
    /// Ruiz equilibration.
    pub scaling: crate::cli::ScalingArg,
}

impl SuiteConfig {
    /// The defaults of the command line for `dir`.
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::suite::SuiteConfig;
    /// let c = SuiteConfig::new("data");
    /// assert_eq!(c.eps, 1e-6);
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let backend = default_backend();
        Self {
            dir: dir.into(),
            filter: Vec::new(),
            time_limit: Duration::from_secs(10),
            eps: 1e-6,
            max_iter: 1_000_000,
            backend,
            max_n: default_max_n(backend),
            check_max_dim: 3000,
            seed: 0,
            rho: 1.0,
            adaptive_rho: true,
            anderson: 0,
            scaling: crate::cli::ScalingArg::Auto,
        }
    }

    /// The configuration of the command-line options.
    ///
    /// # Errors
    /// [`CliError::Usage`] for a non-positive time limit or tolerance, an empty filter, a
    /// directory that does not exist.
    pub fn from_args(args: &SuiteArgs) -> Result<Self, CliError> {
        if !(args.time_limit.is_finite() && args.time_limit > 0.0) {
            return Err(CliError::Usage(format!(
                "--time-limit must be a positive number of seconds, got {}",
                args.time_limit
            )));
        }
        if !(args.eps.is_finite() && args.eps > 0.0) {
            return Err(CliError::Usage(format!(
                "--eps must be positive, got {}",
                args.eps
            )));
        }
        if args.max_iter == 0 {
            return Err(CliError::Usage("--max-iter must be at least 1".into()));
        }
        if !args.dir.is_dir() {
            return Err(CliError::Usage(format!(
                "--dir {}: no such directory",
                args.dir.display()
            )));
        }
        let filter: Vec<String> = match &args.filter {
            Some(f) => f
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            None => Vec::new(),
        };
        if args.filter.is_some() && filter.is_empty() {
            return Err(CliError::Usage("--filter names no problem".into()));
        }
        Ok(Self {
            dir: args.dir.clone(),
            filter,
            time_limit: Duration::from_secs_f64(args.time_limit),
            eps: args.eps,
            max_iter: args.max_iter,
            backend: args.backend,
            max_n: args.max_n.or(default_max_n(args.backend)),
            check_max_dim: args.check_max_dim,
            seed: args.seed,
            rho: args.rho,
            adaptive_rho: !args.no_adaptive_rho,
            anderson: args.anderson,
            scaling: args.scaling,
        })
    }

    /// The solver settings: the residual rule at `eps`, the bounds, the penalty; Ruiz
    /// equilibration where the data are badly scaled (the library's default).
    pub fn settings(&self) -> Settings {
        Settings::default()
            .with_rho(self.rho)
            .with_stopping(StoppingRule::Residual {
                eps_abs: self.eps,
                eps_rel: self.eps,
            })
            .with_max_iter(self.max_iter)
            .with_time_limit(self.time_limit)
            .with_adaptive_rho(self.adaptive_rho.then(AdaptiveRho::default))
            .with_anderson(anderson(self.anderson))
            .with_scaling(self.scaling.ruiz())
    }

    /// Whether `name` passes the filter.
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::suite::SuiteConfig;
    /// let mut c = SuiteConfig::new("data");
    /// c.filter = vec!["hs2*".into(), "TAME".into()];
    /// assert!(c.selects("HS21") && c.selects("tame") && !c.selects("HS35") && !c.selects("TAMEX"));
    /// ```
    pub fn selects(&self, name: &str) -> bool {
        self.filter.is_empty()
            || self
                .filter
                .iter()
                .any(|p| glob(&p.to_ascii_lowercase(), &name.to_ascii_lowercase()))
    }
}

/// `*`-wildcard match of the whole text.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(mut tail) = text.strip_prefix(head) else {
                return false;
            };
            loop {
                if glob(rest, tail) {
                    return true;
                }
                let mut chars = tail.chars();
                if chars.next().is_none() {
                    return false;
                }
                tail = chars.as_str();
            }
        }
    }
}

/// The outcome of the derivative check (see the [module docs](self)).
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DerivativeCheck {
    /// Reported differentiable, and finite differences agree to [`FD_TOLERANCE`].
    Right,
    /// Reported `near_degenerate`, `degenerate` or `not_unique`: the user is warned.
    Flagged,
    /// Reported differentiable, and finite differences disagree.
    Wrong,
    /// Not checked: not solved, above `--check-max-dim`, or a re-solve did not solve.
    Skipped,
}

impl DerivativeCheck {
    /// `right`, `flagged`, `wrong` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            DerivativeCheck::Right => "right",
            DerivativeCheck::Flagged => "flagged",
            DerivativeCheck::Wrong => "wrong",
            DerivativeCheck::Skipped => "skipped",
        }
    }
}

/// The relative error of the finite-difference check above which a derivative is wrong.
pub const FD_TOLERANCE: f64 = 1e-4;

/// One problem's result. The JSON output has exactly the serialized fields; the others are
/// for the tables.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SuiteRecord {
    /// The problem (file name without `.mat`).
    pub name: String,
    /// Variables (null when the file could not be read).
    pub n: Option<usize>,
    /// Equalities after the mapping.
    pub n_eq: Option<usize>,
    /// Inequalities after the mapping.
    pub n_ineq: Option<usize>,
    /// The solver's status (`solved`, `time_limit`, `max_iterations`, ...), `error: ...` or
    /// `skipped: ...`.
    pub status: String,
    /// Iterations run (null without a solve).
    pub iterations: Option<usize>,
    /// Seconds of setup and solve (reading the file and the derivative check excluded).
    pub time_s: f64,
    /// `1/2 x'Px + q'x + r` at the returned `x` (null without a solve).
    pub objective: Option<f64>,
    /// The largest equality residual or inequality violation on the problem as given
    /// (`max(|Ax - b|_inf, |max(Gx - h, 0)|_inf)`).
    pub primal_residual: Option<f64>,
    /// `|Px + q + A'lam + G'nu|_inf` on the problem as given.
    pub dual_residual: Option<f64>,
    /// `|x'Px + q'x + b'lam + h'nu|` on the problem as given.
    pub duality_gap: Option<f64>,
    /// Whether the solution is unique as far as the solve found out
    /// ([`Solution::is_unique`](altdiff_core::Solution::is_unique)).
    pub unique: Option<bool>,
    /// The derivative check.
    pub derivative_check: DerivativeCheck,
    /// The differentiability report's verdict (`differentiable`, `near_degenerate`,
    /// `degenerate`, `not_unique`; null when not checked).
    pub differentiability: Option<String>,
    /// The finite-difference check's relative error.
    pub derivative_error: Option<f64>,
    /// The report's smallest relative multiplier of an active inequality (null: none).
    pub min_active_multiplier: Option<f64>,
    /// The report's smallest relative slack of an inactive inequality (null: none).
    pub min_inactive_slack: Option<f64>,
    /// The report's LICQ (null: not known).
    pub licq: Option<bool>,
    /// Why the check failed or was skipped, when not obvious.
    #[serde(skip)]
    pub note: Option<String>,
    /// Seconds of the derivative check.
    #[serde(skip)]
    pub check_s: f64,
}

impl SuiteRecord {
    fn empty(name: &str, status: String) -> Self {
        Self {
            name: name.to_string(),
            n: None,
            n_eq: None,
            n_ineq: None,
            status,
            iterations: None,
            time_s: 0.0,
            objective: None,
            derivative_check: DerivativeCheck::Skipped,
            differentiability: None,
            min_active_multiplier: None,
            min_inactive_slack: None,
            licq: None,
            primal_residual: None,
            dual_residual: None,
            duality_gap: None,
            unique: None,
            derivative_error: None,
            note: None,
            check_s: 0.0,
        }
    }

    fn of_problem(problem: &MarosProblem, status: String) -> Self {
        let mut record = Self::empty(&problem.name, status);
        record.n = Some(problem.qp.q.len());
        record.n_eq = Some(problem.qp.b.len());
        record.n_ineq = Some(problem.qp.h.len());
        record
    }

    /// Whether the solver met the stopping rule.
    pub fn is_solved(&self) -> bool {
        self.status == Status::Solved.as_str()
    }

    /// `n + n_eq + n_ineq` (0 when unknown).
    pub fn dim(&self) -> usize {
        self.n.unwrap_or(0) + self.n_eq.unwrap_or(0) + self.n_ineq.unwrap_or(0)
    }

    /// One line for the progress output.
    pub fn line(&self) -> String {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.2e}"));
        let dims = match (self.n, self.n_eq, self.n_ineq) {
            (Some(n), Some(p), Some(m)) => format!("{n}/{p}/{m}"),
            _ => "-".into(),
        };
        let check = match (self.derivative_check, self.derivative_error) {
            (c, Some(e)) => format!("{} ({e:.1e})", c.as_str()),
            (c, None) => c.as_str().to_string(),
        };
        let mut line = format!(
            "{:<10} {:>17} {:<16} it {:>7} {:>8.3} s  res {}/{}/{}  obj {:>13}  deriv {check}",
            self.name,
            dims,
            self.status,
            self.iterations
                .map_or_else(|| "-".into(), |i| i.to_string()),
            self.time_s,
            opt(self.primal_residual),
            opt(self.dual_residual),
            opt(self.duality_gap),
            self.objective
                .map_or_else(|| "-".into(), |v| format!("{v:.7e}")),
        );
        if let Some(note) = &self.note {
            line.push_str(&format!(" ({note})"));
        }
        line
    }
}

/// Runs the suite on every selected file of `config.dir`, in name order; `progress` shows
/// a progress bar and one line per problem on stderr.
///
/// # Errors
/// [`CliError::Usage`] when the directory cannot be listed or the filter selects nothing.
/// Problems never fail the run: see the module docs.
pub fn run_suite(config: &SuiteConfig, progress: bool) -> Result<Vec<SuiteRecord>, CliError> {
    let files = list_mat_files(&config.dir).map_err(|e| CliError::Usage(e.to_string()))?;
    let files: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| config.selects(&stem(p)))
        .collect();
    if files.is_empty() {
        return Err(CliError::Usage(format!(
            "no .mat file in {}{}",
            config.dir.display(),
            if config.filter.is_empty() {
                String::new()
            } else {
                format!(" matches --filter {}", config.filter.join(","))
            }
        )));
    }
    let bar = if progress {
        indicatif::ProgressBar::new(files.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} problems, {elapsed} {msg}")
            .expect("template"),
    );
    let mut records = Vec::with_capacity(files.len());
    for path in &files {
        bar.set_message(stem(path));
        let record = run_file(path, config);
        if progress {
            bar.suspend(|| eprintln!("{}", record.line()));
        }
        records.push(record);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(records)
}

fn stem(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

/// One file: read, size cap, solve and check.
pub fn run_file(path: &Path, config: &SuiteConfig) -> SuiteRecord {
    let problem = match read_maros(path) {
        Ok(problem) => problem,
        Err(e) => return SuiteRecord::empty(&stem(path), format!("error: {e}")),
    };
    let n = problem.qp.q.len();
    if let Some(max_n) = config.max_n.filter(|&max| n > max) {
        return SuiteRecord::of_problem(
            &problem,
            format!(
                "skipped: n = {n} > --max-n {max_n} on {}",
                config.backend.name()
            ),
        );
    }
    solve_problem(&problem, config)
}

/// Solves one problem on `config.backend` and checks its derivatives; any failure
/// (including a panic) is the record's status.
pub fn solve_problem(problem: &MarosProblem, config: &SuiteConfig) -> SuiteRecord {
    let start = Instant::now();
    let job = SolveJob { problem, config };
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| config.backend.run(job)));
    match outcome {
        Ok(Ok(record)) => record,
        Ok(Err(e)) => {
            let mut record = SuiteRecord::of_problem(problem, format!("error: {e}"));
            record.time_s = start.elapsed().as_secs_f64();
            record
        }
        Err(panic) => {
            let mut record = SuiteRecord::of_problem(
                problem,
                format!("error: panic: {}", panic_message(&panic)),
            );
            record.time_s = start.elapsed().as_secs_f64();
            record
        }
    }
}

struct SolveJob<'a> {
    problem: &'a MarosProblem,
    config: &'a SuiteConfig,
}

impl BackendJob for SolveJob<'_> {
    type Output = SuiteRecord;

    fn run<B: LinAlg<Real = f64>>(self, backend: B) -> Result<SuiteRecord, CliError> {
        let (problem, config) = (self.problem, self.config);
        let start = Instant::now();
        let qp = Qp::from_host(&backend, &problem.qp)?;
        let solver = AltDiff::new(backend.clone(), &qp, config.settings())?;
        let solution = solver.solve(qp.params())?;
        let mut record = SuiteRecord::of_problem(problem, solution.status().as_str().into());
        record.time_s = start.elapsed().as_secs_f64();
        record.iterations = Some(solution.iterations());
        let x = backend.to_col_major(solution.x())?;
        record.objective = Some(problem.objective(&x));
        record.primal_residual = Some(solution.primal_residual());
        record.dual_residual = Some(solution.dual_residual());
        record.duality_gap = Some(solution.duality_gap());
        record.unique = Some(solution.is_unique());
        if !solution.status().is_solved() {
            return Ok(record);
        }
        if problem.dim() > config.check_max_dim {
            record.note = Some(format!(
                "check skipped: n + n_eq + n_ineq = {} > --check-max-dim {}",
                problem.dim(),
                config.check_max_dim
            ));
            return Ok(record);
        }
        let check_start = Instant::now();
        let check = check_derivative(&backend, (problem, &qp), config, &solver, &solution);
        record.check_s = check_start.elapsed().as_secs_f64();
        match check {
            Ok(Some((report, error))) => {
                let finite = |v: f64| v.is_finite().then_some(v);
                record.differentiability = Some(report.status.as_str().into());
                record.derivative_error = Some(error);
                record.min_active_multiplier = finite(report.min_active_multiplier);
                record.min_inactive_slack = finite(report.min_inactive_slack);
                record.licq = report.licq;
                let certified = report.status.is_differentiable();
                record.derivative_check = match (certified, error <= FD_TOLERANCE) {
                    (true, true) => DerivativeCheck::Right,
                    (true, false) => DerivativeCheck::Wrong,
                    (false, _) => DerivativeCheck::Flagged,
                };
            }
            Ok(None) => record.note = Some("check skipped: a re-solve did not solve".into()),
            Err(e) => record.note = Some(format!("check skipped: {e}")),
        }
        Ok(record)
    }
}

/// The report's verdict and the finite-difference error of the default VJP (see the
/// [module docs](self)); `None` when a re-solve does not solve.
fn check_derivative<B: LinAlg<Real = f64>>(
    backend: &B,
    (problem, qp_device): (&MarosProblem, &Qp<B>),
    config: &SuiteConfig,
    solver: &AltDiff<B>,
    solution: &Solution<B>,
) -> Result<Option<(Differentiability, f64)>, CliError> {
    let report = solver.differentiability(solution)?;
    let qp = &problem.qp;
    let n = qp.q.len();
    let mut rng = crate::rng::SplitMix64(config.seed ^ name_hash(&problem.name));
    let mut uniform =
        |len: usize| -> Vec<f64> { (0..len).map(|_| 2.0 * rng.uniform() - 1.0).collect() };
    let g = uniform(n);
    let grads = solver.vjp(
        solution,
        &backend.mat_from_col_major(n, 1, &g)?,
        VjpMode::Limit,
    )?;
    let direction = |theta: &[f64], u: Vec<f64>| -> Vec<f64> {
        theta
            .iter()
            .zip(u)
            .map(|(t, u)| u * t.abs().max(1.0))
            .collect()
    };
    let d = [
        direction(&qp.q, uniform(n)),
        direction(&qp.b, uniform(qp.b.len())),
        direction(&qp.h, uniform(qp.h.len())),
    ];
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let pulled = [&grads.q, &grads.b, &grads.h]
        .into_iter()
        .zip(&d)
        .map(|(m, d)| Ok(dot(&backend.to_col_major(m)?, d)))
        .sum::<Result<f64, CliError>>()?;
    let tight = config.settings().with_stopping(StoppingRule::Residual {
        eps_abs: 1e-10,
        eps_rel: 1e-10,
    });
    let oracle = AltDiff::new(backend.clone(), qp_device, tight)?;
    // g'x at theta + t d
    let shifted = |t: f64| -> HostQp {
        let shift = |theta: &[f64], d: &[f64]| -> Vec<f64> {
            theta.iter().zip(d).map(|(a, b)| a + t * b).collect()
        };
        HostQp {
            q: shift(&qp.q, &d[0]),
            b: shift(&qp.b, &d[1]),
            h: shift(&qp.h, &d[2]),
            ..qp.clone()
        }
    };
    // g'x at theta + t d by a tight re-solve (warm-started from the solution)
    let by_altdiff = |t: f64| -> Result<Option<f64>, CliError> {
        let moved = shifted(t);
        let params = QpParams::from_host(backend, qp_device.dims(), &moved.q, &moved.b, &moved.h)?;
        let sol = oracle.solve_warm(&params, solution)?;
        if !sol.status().is_solved() {
            return Ok(None);
        }
        Ok(Some(dot(&g, &backend.to_col_major(sol.x())?)))
    };
    // ... or, where that does not reach 1e-10, by clarabel's certified reference
    let by_clarabel = |t: f64| reference_solve(&shifted(t)).map(|r| dot(&g, &r.x));
    let pair = |t: f64| -> Result<Option<(f64, f64)>, CliError> {
        if let (Some(plus), Some(minus)) = (by_altdiff(t)?, by_altdiff(-t)?) {
            return Ok(Some((plus, minus)));
        }
        Ok(by_clarabel(t).zip(by_clarabel(-t)))
    };
    let mut best = f64::INFINITY;
    for t in [1e-5, 1e-7] {
        let Some((plus, minus)) = pair(t)? else {
            return Ok(None);
        };
        let fd = (plus - minus) / (2.0 * t);
        let error = (fd - pulled).abs() / fd.abs().max(pulled.abs()).max(1e-8);
        best = best.min(error);
    }
    Ok(Some((report, best)))
}

/// FNV-1a of the name: each problem's seed `g` does not depend on which others run.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The size classes of the summary, by `n + n_eq + n_ineq`.
pub const SIZE_CLASSES: [(&str, usize); 3] = [
    ("small (n + rows <= 1e3)", 1_000),
    ("medium (<= 1e4)", 10_000),
    ("large (> 1e4)", usize::MAX),
];

/// The markdown report: settings, a summary table by size class, the problems not solved,
/// and (with `with_problems`) one row per problem.
pub fn markdown(records: &[SuiteRecord], config: &SuiteConfig, with_problems: bool) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "## altdiff suite: {}\n\nbackend {}, residual rule eps = {:e}, time limit {} s, max_iter {}, rho {}{}; derivative check: the differentiability report, and the default VJP of a random g against central differences of re-solves at eps 1e-10 along a random direction (wrong above {:e}), for solved problems with n + n_eq + n_ineq <= {}.\n\n",
        config.dir.display(),
        config.backend.name(),
        config.eps,
        config.time_limit.as_secs_f64(),
        config.max_iter,
        config.rho,
        match (config.adaptive_rho, config.anderson) {
            (true, 0) => " (adaptive)".to_string(),
            (false, 0) => String::new(),
            (adaptive, memory) => format!(
                "{}, Anderson acceleration (memory {memory})",
                if adaptive { " (adaptive)" } else { "" }
            ),
        },
        FD_TOLERANCE,
        config.check_max_dim,
    ));
    out.push_str("| size class | problems | solved | time limit | max iter | other status | errors | skipped | derivative right | flagged | wrong, unflagged | time s |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut lower = 0;
    let mut rows: Vec<(&str, Vec<&SuiteRecord>)> = SIZE_CLASSES
        .iter()
        .map(|&(label, upper)| {
            let members = records
                .iter()
                .filter(|r| r.n.is_some() && r.dim() > lower && r.dim() <= upper)
                .collect();
            lower = upper;
            (label, members)
        })
        .collect();
    let unread: Vec<&SuiteRecord> = records.iter().filter(|r| r.n.is_none()).collect();
    if !unread.is_empty() {
        rows.push(("unreadable", unread));
    }
    rows.push(("all", records.iter().collect()));
    for (label, members) in rows {
        let count = |f: &dyn Fn(&SuiteRecord) -> bool| members.iter().filter(|r| f(r)).count();
        let solved = count(&|r| r.is_solved());
        let time_limit = count(&|r| r.status == Status::TimeLimit.as_str());
        let max_iter = count(&|r| r.status == Status::MaxIterations.as_str());
        let errors = count(&|r| r.status.starts_with("error"));
        let skipped = count(&|r| r.status.starts_with("skipped"));
        let other = members.len() - solved - time_limit - max_iter - errors - skipped;
        let right = count(&|r| r.derivative_check == DerivativeCheck::Right);
        let flagged = count(&|r| r.derivative_check == DerivativeCheck::Flagged);
        let wrong = count(&|r| r.derivative_check == DerivativeCheck::Wrong);
        let time = members.iter().fold(0.0, |t, r| t + r.time_s + r.check_s);
        out.push_str(&format!(
            "| {label} | {} | {solved} | {time_limit} | {max_iter} | {other} | {errors} | {skipped} | {right} | {flagged} | {wrong} | {time:.1} |\n",
            members.len()
        ));
    }
    let unsolved: Vec<String> = records
        .iter()
        .filter(|r| !r.is_solved() && !r.status.starts_with("skipped"))
        .map(|r| format!("{} ({})", r.name, r.status))
        .collect();
    if !unsolved.is_empty() {
        out.push_str(&format!("\nNot solved: {}.\n", unsolved.join(", ")));
    }
    let skipped: Vec<&str> = records
        .iter()
        .filter(|r| r.status.starts_with("skipped"))
        .map(|r| r.name.as_str())
        .collect();
    if !skipped.is_empty() {
        let cap = config.max_n.map_or_else(|| "-".into(), |m| m.to_string());
        out.push_str(&format!(
            "\nSkipped (n > --max-n {cap}): {}.\n",
            skipped.join(", ")
        ));
    }
    let listed = |check: DerivativeCheck| -> Vec<String> {
        records
            .iter()
            .filter(|r| r.derivative_check == check)
            .map(|r| {
                let verdict = r.differentiability.as_deref().unwrap_or("-");
                let error = r
                    .derivative_error
                    .map_or_else(|| "-".into(), |e| format!("{e:.1e}"));
                format!("{} ({verdict}, {error})", r.name)
            })
            .collect()
    };
    for (check, title) in [
        (
            DerivativeCheck::Wrong,
            "Wrong derivatives reported differentiable",
        ),
        (
            DerivativeCheck::Flagged,
            "Flagged derivatives (report, finite-difference error)",
        ),
    ] {
        let names = listed(check);
        if !names.is_empty() {
            out.push_str(&format!("\n{title}: {}.\n", names.join(", ")));
        }
    }
    let not_checked: Vec<String> = records
        .iter()
        .filter_map(|r| {
            let note = r.note.as_deref()?.strip_prefix("check skipped: ")?;
            Some(format!("{} ({note})", r.name))
        })
        .collect();
    if !not_checked.is_empty() {
        out.push_str(&format!(
            "\nDerivative check skipped ({}): {}.\n",
            not_checked.len(),
            not_checked.join(", ")
        ));
    }
    if with_problems {
        out.push_str("\n| problem | n | n_eq | n_ineq | status | iterations | time s | primal res | dual res | gap | objective | derivative check |\n");
        out.push_str("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|\n");
        let opt = |v: Option<usize>| v.map_or_else(|| "-".into(), |v| v.to_string());
        let sci = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "-".into(), |v| format!("{v:.digits$e}"))
        };
        for r in records {
            let check = match r.derivative_error {
                Some(e) => format!("{} ({e:.1e})", r.derivative_check.as_str()),
                None => r.derivative_check.as_str().into(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {:.3} | {} | {} | {} | {} | {check} |\n",
                r.name,
                opt(r.n),
                opt(r.n_eq),
                opt(r.n_ineq),
                r.status.replace('|', "/"),
                opt(r.iterations),
                r.time_s,
                sci(r.primal_residual, 1),
                sci(r.dual_residual, 1),
                sci(r.duality_gap, 1),
                sci(r.objective, 7),
            ));
        }
    }
    out
}

/// `altdiff suite`: runs, prints the markdown (the summary only when `--markdown` takes the
/// report), writes the JSON. Exit code 0 whatever the problems' statuses.
///
/// # Errors
/// [`CliError::Usage`] for bad options or a missing directory, [`CliError::Io`] when an
/// output cannot be written.
pub fn run_cli(args: &SuiteArgs) -> Result<ExitCode, CliError> {
    let config = SuiteConfig::from_args(args)?;
    let started = Instant::now();
    let records = run_suite(&config, true)?;
    eprintln!(
        "{} problems in {:.1} s",
        records.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.json {
        crate::bench::write_json(path, &records)?;
    }
    let mut stdout = std::io::stdout().lock();
    match &args.markdown {
        Some(path) => {
            std::fs::write(path, markdown(&records, &config, true)).map_err(|source| {
                CliError::Io {
                    path: path.clone(),
                    source,
                }
            })?;
            // A closed pipe is not worth a panic.
            let _ = write!(stdout, "{}", markdown(&records, &config, false));
        }
        None => {
            let _ = write!(stdout, "{}", markdown(&records, &config, true));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_whole_names() {
        assert!(glob("hs21", "hs21"));
        assert!(!glob("hs2", "hs21"));
        assert!(glob("hs2*", "hs21"));
        assert!(glob("*21", "hs21"));
        assert!(glob("h*2*", "hs21"));
        assert!(glob("*", ""));
        assert!(!glob("q*x", "qpcblend"));
    }

    #[test]
    fn the_hash_is_stable() {
        assert_eq!(name_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(name_hash("HS21"), name_hash("HS35"));
    }
}
