//! `altdiff trust`: problems as users write them (loose bounds, scaled rows and columns,
//! LPs, non-unique solutions; [`altdiff_core::testing::user_data_set`]) solved with the
//! given settings (the defaults unless flags say otherwise) and judged against clarabel at
//! 1e-11 (or the tightest tolerance it reaches, see
//! [`reference_solve`]): right, wrong but marked solved, or not solved.
//!
//! `--export DIR` also writes each problem as `NAME.json` (the `altdiff solve` format) with
//! its reference in `NAME.ref.json` (`x`, `objective`, `unique`), for other solvers
//! (`scripts/trust_osqp.py` runs OSQP and Clarabel from PyPI on them and judges them by the
//! same rule).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use altdiff_core::testing::{Judgement, UserProblem, reference_solve, user_data_set};
use altdiff_core::{AltDiff, LinAlg, Qp, Settings};
use serde::Serialize;

use crate::CliError;
use crate::backends::{BackendJob, BackendKind};
use crate::cli::SolverArgs;
use crate::problem_file::ProblemFile;

/// The options of `altdiff trust`.
#[derive(Clone, Debug, clap::Args)]
pub struct TrustArgs {
    /// Problems (cycling through the kinds).
    #[arg(long, default_value_t = 120)]
    pub count: usize,
    /// Seed of the set.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The backend.
    #[arg(long, value_enum, default_value_t = BackendKind::compiled()[0])]
    pub backend: BackendKind,
    /// The solver's settings (the library's defaults unless given).
    #[command(flatten)]
    pub solver: SolverArgs,
    /// Write the problems and their references here (JSON).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Write one JSON object per problem here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// List every problem, not only the wrong and unsolved ones.
    #[arg(long)]
    pub verbose: bool,
}

/// One problem's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct TrustRow {
    /// Kind and index.
    pub name: String,
    /// The kind.
    pub kind: &'static str,
    /// `n`, `p`, `m`.
    pub dims: [usize; 3],
    /// `right`, `wrong-solved` or `unsolved`.
    pub judgement: &'static str,
    /// The status (or the error).
    pub status: String,
    /// Iterations.
    pub iterations: usize,
    /// The objective.
    pub objective: f64,
    /// The reference objective.
    pub reference_objective: f64,
    /// `|x - x*|_inf / max(1, |x*|_inf)`.
    pub x_error: f64,
    /// Setup and solve, seconds.
    pub time_s: f64,
}

/// The reference's fields in the export.
#[derive(Serialize)]
struct ReferenceFile<'a> {
    x: &'a [f64],
    objective: f64,
    unique: bool,
}

/// The judgement's name in tables.
fn judgement_name(j: Judgement) -> &'static str {
    match j {
        Judgement::Right => "right",
        Judgement::WrongSolved => "wrong-solved",
        Judgement::Unsolved => "unsolved",
    }
}

/// Solves the problems with `settings` on a backend.
struct TrustJob<'a> {
    problems: &'a [(UserProblem, altdiff_core::testing::OracleSolution)],
    settings: Settings,
}

impl BackendJob for TrustJob<'_> {
    type Output = Vec<TrustRow>;

    fn run<B: LinAlg<Real = f64>>(self, backend: B) -> Result<Vec<TrustRow>, CliError> {
        Ok(self
            .problems
            .iter()
            .map(|(problem, reference)| judge(&backend, problem, reference, &self.settings))
            .collect())
    }
}

/// One problem solved and judged.
fn judge<B: LinAlg<Real = f64>>(
    backend: &B,
    problem: &UserProblem,
    reference: &altdiff_core::testing::OracleSolution,
    settings: &Settings,
) -> TrustRow {
    let dims = problem.qp.validate().expect("generated problems are valid");
    let start = Instant::now();
    let solved = Qp::from_host(backend, &problem.qp).and_then(|qp| {
        AltDiff::new(backend.clone(), &qp, settings.clone())?
            .solve(qp.params())?
            .to_host(backend)
    });
    let time_s = start.elapsed().as_secs_f64();
    let scale = reference.x.iter().fold(1.0_f64, |a, v| a.max(v.abs()));
    let (judgement, status, iterations, objective, x_error) = match &solved {
        Ok(sol) => (
            Judgement::of(sol, reference, problem.kind),
            sol.status.to_string(),
            sol.iterations,
            sol.objective,
            sol.x
                .iter()
                .zip(&reference.x)
                .fold(0.0_f64, |a, (x, r)| a.max((x - r).abs()))
                / scale,
        ),
        Err(err) => (
            Judgement::Unsolved,
            format!("error: {err}"),
            0,
            f64::NAN,
            f64::NAN,
        ),
    };
    TrustRow {
        name: problem.name.clone(),
        kind: problem.kind.name(),
        dims: [dims.n, dims.p, dims.m],
        judgement: judgement_name(judgement),
        status,
        iterations,
        objective,
        reference_objective: reference.objective,
        x_error,
        time_s,
    }
}

/// The set with its references (problems clarabel does not solve are left out; none are,
/// in the seeds tried).
fn problems_with_references(
    count: usize,
    seed: u64,
) -> Vec<(UserProblem, altdiff_core::testing::OracleSolution)> {
    user_data_set(count, seed)
        .into_iter()
        .filter_map(|p| reference_solve(&p.qp).map(|r| (p, r)))
        .collect()
}

/// Counts per kind: `(problems, right, wrong-solved, unsolved)`.
pub fn counts(rows: &[TrustRow], kind: Option<&str>) -> [usize; 4] {
    let of = |j: &str| {
        rows.iter()
            .filter(|r| kind.is_none_or(|k| r.kind == k) && r.judgement == j)
            .count()
    };
    let total = rows
        .iter()
        .filter(|r| kind.is_none_or(|k| r.kind == k))
        .count();
    [total, of("right"), of("wrong-solved"), of("unsolved")]
}

/// Runs `altdiff trust`: 0 when no answer is wrong and marked solved, 1 otherwise.
///
/// # Errors
/// [`CliError`] for bad options or files that cannot be written.
pub fn run_cli(args: &TrustArgs) -> Result<ExitCode, CliError> {
    let problems = problems_with_references(args.count, args.seed);
    if let Some(dir) = &args.export {
        export(dir, &problems)?;
    }
    let settings = args.solver.settings();
    let rows = args.backend.run(TrustJob {
        problems: &problems,
        settings,
    })?;
    println!(
        "altdiff trust: {} problems (seed {}), backend {}, judged against clarabel at 1e-11",
        rows.len(),
        args.seed,
        args.backend.name()
    );
    println!(
        "{:<16} {:>8} {:>8} {:>13} {:>9} {:>12}",
        "kind", "problems", "right", "wrong-solved", "unsolved", "mean iters"
    );
    let mut kinds: Vec<&str> = rows.iter().map(|r| r.kind).collect();
    kinds.dedup();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds.iter().map(|k| Some(*k)).chain([None]) {
        let [total, right, wrong, unsolved] = counts(&rows, kind);
        let iters: Vec<usize> = rows
            .iter()
            .filter(|r| kind.is_none_or(|k| r.kind == k))
            .map(|r| r.iterations)
            .collect();
        let mean = iters.iter().sum::<usize>() as f64 / iters.len().max(1) as f64;
        println!(
            "{:<16} {total:>8} {right:>8} {wrong:>13} {unsolved:>9} {mean:>12.1}",
            kind.unwrap_or("all")
        );
    }
    println!(
        "shifted geometric mean of the solve times (shift 1 ms): {:.3} ms",
        1e3 * shifted_geometric_mean(rows.iter().map(|r| r.time_s), 1e-3)
    );
    for row in rows
        .iter()
        .filter(|r| args.verbose || r.judgement != "right")
    {
        println!(
            "  {:<20} {:<13} {:<24} iters {:>6}  f {:.9e}  f* {:.9e}  x err {:.1e}",
            row.name,
            row.judgement,
            row.status,
            row.iterations,
            row.objective,
            row.reference_objective,
            row.x_error
        );
    }
    if let Some(path) = &args.json {
        let text: Vec<String> = rows
            .iter()
            .map(|r| serde_json::to_string(r).expect("rows serialize"))
            .collect();
        write(path, &(text.join("\n") + "\n"))?;
    }
    let [_, _, wrong, _] = counts(&rows, None);
    Ok(if wrong == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `exp(mean(ln(t + shift))) - shift`.
pub fn shifted_geometric_mean(times: impl Iterator<Item = f64>, shift: f64) -> f64 {
    let (sum, count) = times.fold((0.0, 0usize), |(s, c), t| (s + (t + shift).ln(), c + 1));
    if count == 0 {
        return 0.0;
    }
    (sum / count as f64).exp() - shift
}

/// Writes the problems and references as JSON files in `dir`.
fn export(
    dir: &std::path::Path,
    problems: &[(UserProblem, altdiff_core::testing::OracleSolution)],
) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for (problem, reference) in problems {
        let file = ProblemFile::from_host(&problem.qp);
        let text = serde_json::to_string(&file).expect("problems serialize");
        write(&dir.join(format!("{}.json", problem.name)), &text)?;
        let reference = ReferenceFile {
            x: &reference.x,
            objective: reference.objective,
            unique: problem.kind.unique(),
        };
        let text = serde_json::to_string(&reference).expect("references serialize");
        write(&dir.join(format!("{}.ref.json", problem.name)), &text)?;
    }
    Ok(())
}

/// Writes `text` to `path`.
fn write(path: &std::path::Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|source| CliError::Io {
        path: path.to_path_buf(),
        source,
    })
}
