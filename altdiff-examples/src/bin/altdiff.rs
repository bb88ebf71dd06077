//! `altdiff`: solve a QP with its Jacobians from a JSON file, or run the demo.
//!
//! Exit codes: 0 solved, 1 not converged (the result is still written), 2 bad input.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use altdiff_core::testing::Generator;
use altdiff_core::{AltDiff, HostQp, HostSolution, LinAlg, Param, Qp, Settings, Wrt};
use altdiff_examples::CliError;
use altdiff_examples::backends::{BackendJob, BackendKind};
use altdiff_examples::cli::{ParamArg, SolverArgs};
use altdiff_examples::demo::{DemoConfig, DemoRow};
use altdiff_examples::problem_file::{ProblemFile, ResultFile};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "altdiff",
    version,
    about = "Differentiable QP layers by Alternating Differentiation (Alt-Diff)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Solve a QP from a JSON file and print the solution (and Jacobians) as JSON.
    Solve(SolveArgs),
    /// Solve a random QP, compare the Jacobian with the exact KKT one, time it.
    Demo(DemoArgs),
}

#[derive(clap::Args, Debug)]
struct SolveArgs {
    /// The problem: JSON with P, q and optionally A, b, G, h (row-major nested arrays).
    problem: PathBuf,
    /// The backend (those compiled in).
    #[arg(long, value_enum, default_value_t = BackendKind::compiled()[0])]
    backend: BackendKind,
    /// Jacobians to compute: any of q,b,h.
    #[arg(long, value_enum, value_delimiter = ',')]
    wrt: Vec<ParamArg>,
    #[command(flatten)]
    solver: SolverArgs,
    /// Write the result here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum GeneratorArg {
    /// P = W'W/n + 0.1 I, b = A x0, h = G x0 + |N(0,1)| (feasible, well conditioned).
    Well,
    /// The paper's: P = W'W, everything else N(0, 1).
    Seed,
}

#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// Variables.
    #[arg(long, default_value_t = 300)]
    n: usize,
    /// Equalities (default n/2, the paper's ratio).
    #[arg(long)]
    n_eq: Option<usize>,
    /// Inequalities (default n/5, the paper's ratio).
    #[arg(long)]
    n_ineq: Option<usize>,
    /// Seed of the generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Backends to run (default: all compiled in).
    #[arg(long, value_enum, value_delimiter = ',')]
    backend: Vec<BackendKind>,
    /// The parameter differentiated (the paper's is b).
    #[arg(long, value_enum, default_value_t = ParamArg::B)]
    wrt: ParamArg,
    /// The random problem generator.
    #[arg(long, value_enum, default_value_t = GeneratorArg::Well)]
    generator: GeneratorArg,
    #[command(flatten)]
    solver: SolverArgs,
    /// Fixed iterations per run when timing one Jacobian iteration.
    #[arg(long, default_value_t = 10)]
    timing_iterations: usize,
    /// Timing repeats (medians are reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Solve(args) => solve(args),
        Command::Demo(args) => demo(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("altdiff: error: {err}");
            ExitCode::from(2)
        }
    }
}

struct SolveJob<'a> {
    qp: &'a HostQp,
    settings: Settings,
}

impl BackendJob for SolveJob<'_> {
    type Output = HostSolution;

    fn run<B: LinAlg<Real = f64>>(self, backend: B) -> Result<HostSolution, CliError> {
        let problem = Qp::from_host(&backend, self.qp)?;
        let solution =
            AltDiff::new(backend.clone(), &problem, self.settings)?.solve(problem.params())?;
        Ok(solution.to_host(&backend)?)
    }
}

fn solve(args: SolveArgs) -> Result<ExitCode, CliError> {
    let qp = ProblemFile::read(&args.problem)?.to_host()?;
    let wrt: Wrt = args.wrt.iter().map(|&p| Param::from(p)).collect();
    let settings = args.solver.settings().with_wrt(wrt);
    let solution = args.backend.run(SolveJob { qp: &qp, settings })?;
    let json = serde_json::to_string_pretty(&ResultFile::from(&solution)).expect("serializable");
    match &args.out {
        Some(path) => std::fs::write(path, json + "\n").map_err(|source| CliError::Io {
            path: path.clone(),
            source,
        })?,
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe is not worth a panic.
            let _ = writeln!(out, "{json}");
        }
    }
    Ok(if solution.status.is_expected() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn demo(args: DemoArgs) -> Result<ExitCode, CliError> {
    let config = DemoConfig {
        n: args.n,
        n_eq: args.n_eq.unwrap_or(args.n / 2),
        n_ineq: args.n_ineq.unwrap_or(args.n / 5),
        seed: args.seed,
        generator: match args.generator {
            GeneratorArg::Well => Generator::WellConditioned,
            GeneratorArg::Seed => Generator::Seed,
        },
        wrt: args.wrt.into(),
        settings: args.solver.settings(),
        timing_iterations: args.timing_iterations,
        repeats: args.repeats,
    };
    if config.n == 0 || config.n_eq >= config.n {
        return Err(CliError::Usage(format!(
            "need 0 < n_eq < n, got n = {}, n_eq = {}",
            config.n, config.n_eq
        )));
    }
    let backends = if args.backend.is_empty() {
        BackendKind::compiled().to_vec()
    } else {
        args.backend
    };
    println!(
        "altdiff demo: {:?} generator, n = {}, n_eq = {}, n_ineq = {}, seed = {}, theta = {}, stop = {:?}, rho = {}",
        config.generator,
        config.n,
        config.n_eq,
        config.n_ineq,
        config.seed,
        config.wrt.name(),
        config.settings.stopping,
        config.settings.rho
    );
    println!(
        "exact Jacobian (kkt s): clarabel solves to 1e-10, then implicit differentiation of the KKT system on its active set (nalgebra LU)"
    );
    println!(
        "J-iter: one Jacobian iteration (median of {} runs of {} iterations, with minus without J); gemm: faer (n x n)(n x d), Par::Seq; ratio = J-iter / gemm\n",
        config.repeats, config.timing_iterations
    );
    let qp = config.problem();
    println!("{}", DemoRow::header());
    for backend in backends {
        let row = config.run_on(backend, &qp)?;
        println!("{}", row.line());
    }
    Ok(ExitCode::SUCCESS)
}
