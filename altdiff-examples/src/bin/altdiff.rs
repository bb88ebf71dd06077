//! `altdiff`: solve a QP with its Jacobians from a JSON file, or run the demo.
//!
//! Exit codes: 0 solved, 1 not converged (the result is still written), 2 bad input.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use altdiff_core::testing::{Generator, random_qp};
use altdiff_core::{
    AltDiff, HostQp, HostSolution, LinAlg, Param, Qp, Settings, Tape, VjpMode, Wrt,
};
use altdiff_examples::CliError;
use altdiff_examples::backends::{BackendJob, BackendKind, DeviceArg};
use altdiff_examples::batch_bench::{BatchBenchConfig, BatchBenchJob, BatchData};
use altdiff_examples::bench::{BenchJob, BenchMethod, BenchRow, reference, write_csv, write_json};
use altdiff_examples::cli::{ParamArg, SolverArgs, VjpModeArg};
use altdiff_examples::demo::{DemoConfig, DemoRow};
use altdiff_examples::derivatives::{DerivativeRow, DerivativesJob};
use altdiff_examples::plot::{TraceJob, plot_trace};
use altdiff_examples::problem_file::{
    DifferentiabilityFile, ResultFile, VjpFile, read_problem, read_vector,
};
use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc keeps freed blocks for reuse: the solver's large blocks (n x n and n x (p + m),
/// for every setup) then skip the fresh pages, and their page faults, that the system
/// allocator maps and unmaps for each (measured: forward + VJP at (1000, 500, 200) in
/// single precision 0.12-0.13 s with glibc's allocator, 0.08-0.10 s with mimalloc).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// The paper's numerical experiment: time and accuracy of Alt-Diff (forward, VJP) and
    /// KKT on generated or given problems, as a table, JSON, CSV and a plot.
    Bench(BenchArgs),
    /// Time every derivative mode (forward Jacobians, KKT, unrolled / implicit / KKT VJPs)
    /// on one random QP (same options as demo).
    Derivatives(DemoArgs),
    /// A batch of the classification layer's QP (shared P, A, G; one q per element): forward
    /// + VJP solved as one block against a loop of single solves, per backend.
    BatchBench(BatchBenchArgs),
    /// The Maros-Meszaros test set (a directory of MAT-files): every problem solved with a
    /// time limit, a derivative check (the differentiability report, finite differences of re-solves), a markdown summary and JSON.
    Suite(altdiff_examples::suite::SuiteArgs),
    /// A softmax / sparsemax layer (or their constrained variants, x <= u) solved by
    /// Newton-ADMM, with the Jacobians wrt y (and u) or a VJP, as JSON.
    Layer(altdiff_examples::layer_cli::LayerArgs),
    /// Problems as users write them (loose bounds, rows and columns scaled over 1e-4 .. 1e4,
    /// LPs, non-unique solutions) solved with the given settings and judged against clarabel:
    /// right, wrong but marked solved, not solved (exit 1 when any is wrong).
    Trust(altdiff_examples::trust::TrustArgs),
    /// The paper's classification experiment: FC - ReLU - QP layer - FC (or without the QP
    /// layer) trained with Adam on digits, MNIST or CIFAR-10; per-epoch loss and accuracy.
    #[cfg(feature = "candle")]
    Classify(altdiff_examples::cli::ClassifyArgs),
}

#[derive(clap::Args, Debug)]
struct SolveArgs {
    /// The problem: JSON with P, q and optionally A, b, G, h (row-major nested arrays), or
    /// a NumPy .npz from numpy.savez(FILE, P=P, q=q, A=A, b=b, G=G, h=h).
    problem: PathBuf,
    /// The backend (those compiled in; default: faer, or faer-sparse when a dense backend
    /// would not fit the problem in memory).
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// Where the candle backend runs (cuda needs the Cargo feature `cuda`).
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// Jacobians to compute: any of q,b,h,P,A,G (a matrix M gives n x (rows*cols), column
    /// i*cols + j for M_ij).
    #[arg(long, value_enum, value_delimiter = ',')]
    wrt: Vec<ParamArg>,
    /// A gradient dloss/dx (JSON array of n numbers): adds "vjp" with J'g for every
    /// parameter to the result.
    #[arg(long)]
    vjp: Option<PathBuf>,
    /// How the VJP is computed (with --method kkt it is the KKT adjoint).
    #[arg(long, value_enum, default_value_t = VjpModeArg::Limit)]
    vjp_mode: VjpModeArg,
    /// Refuse a VJP whose differentiability report is not "differentiable" (exit code 1,
    /// the report's reasons on one line) instead of returning it flagged.
    #[arg(long)]
    require_differentiable: bool,
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
    /// A problem file (.json or .npz) instead of a generated problem: its sizes replace
    /// --n, --n-eq and --n-ineq.
    #[arg(long, conflicts_with_all = ["n", "n_eq", "n_ineq", "seed", "generator"])]
    problem: Option<PathBuf>,
    /// Backends to run (default: the dense CPU ones compiled in, faer and ndarray).
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
    #[arg(long, default_value_t = 20)]
    timing_iterations: usize,
    /// Timing repeats (medians are reported).
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    repeats: usize,
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// Variables, one or more sizes (comma separated). Default: the paper's 1000.
    #[arg(long, value_delimiter = ',', conflicts_with = "problem")]
    n: Vec<usize>,
    /// Equalities per size (default n/2).
    #[arg(long, value_delimiter = ',')]
    n_eq: Vec<usize>,
    /// Inequalities per size (default n/5).
    #[arg(long, value_delimiter = ',')]
    n_ineq: Vec<usize>,
    /// A problem file (.json or .npz) instead of generated problems.
    #[arg(long)]
    problem: Option<PathBuf>,
    /// The parameter differentiated (the paper's is b).
    #[arg(long, value_enum, default_value_t = ParamArg::B)]
    wrt: ParamArg,
    /// Methods to compare.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [BenchMethod::Altdiff, BenchMethod::AltdiffLimit, BenchMethod::AltdiffVjp, BenchMethod::AltdiffVjpLimit, BenchMethod::Kkt])]
    methods: Vec<BenchMethod>,
    /// Backends (default: the dense CPU ones compiled in, faer and ndarray).
    #[arg(long, value_enum, value_delimiter = ',')]
    backend: Vec<BackendKind>,
    /// Stopping rule (the paper's: objective:1e-3), residual or residual:TOL, x:TOL, fixed:K.
    #[arg(long, default_value = "objective:1e-3")]
    stop: altdiff_examples::cli::StopArg,
    /// ADMM penalty rho.
    #[arg(long, default_value_t = 1.0)]
    rho: f64,
    /// Iteration bound.
    #[arg(long, default_value_t = 10_000)]
    max_iter: usize,
    /// Timed runs per (size, backend, method).
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    repeats: usize,
    /// Threads for faer's products, factorizations and solves (1: sequential; more needs
    /// the Cargo feature `rayon`).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The generator (default: the paper's).
    #[arg(long, value_enum, default_value_t = GeneratorArg::Seed)]
    generator: GeneratorArg,
    /// Write the rows as a JSON array.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the rows as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Plot residuals and Jacobian error against the iteration (first problem and backend).
    #[arg(long)]
    plot: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct BatchBenchArgs {
    /// Elements per batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Variables (the layer's width).
    #[arg(long, default_value_t = 200)]
    n: usize,
    /// Equalities.
    #[arg(long, default_value_t = 50)]
    n_eq: usize,
    /// Inequalities.
    #[arg(long, default_value_t = 50)]
    n_ineq: usize,
    /// Backends to compare (default: faer and candle, when compiled in).
    #[arg(long, value_enum, value_delimiter = ',')]
    backend: Vec<BackendKind>,
    /// Where the candle backend runs (the CPU backends stay on the CPU, for the ratio).
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// Timed runs (the table gives medians).
    #[arg(long, default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    repeats: usize,
    /// Skip the loop of single solves.
    #[arg(long)]
    no_loop: bool,
    /// How the VJPs are computed (with --method kkt: the KKT adjoint).
    #[arg(long, value_enum, default_value_t = VjpModeArg::Limit)]
    vjp_mode: VjpModeArg,
    /// Seed of the problem and the batch.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    solver: SolverArgs,
    /// Write the rows as a JSON array.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn batch_bench(args: BatchBenchArgs) -> Result<ExitCode, CliError> {
    let config = BatchBenchConfig {
        n: args.n,
        n_eq: args.n_eq,
        n_ineq: args.n_ineq,
        batch: args.batch,
        repeats: args.repeats,
        seed: args.seed,
        settings: args.solver.settings(),
        with_loop: !args.no_loop,
        vjp_mode: args.vjp_mode.mode(&args.solver),
    };
    println!(
        "altdiff batch-bench: classification QP n = {}, n_eq = {}, n_ineq = {}, batch = {}, forward + VJP ({:?}), checks {}, median of {} runs",
        config.n,
        config.n_eq,
        config.n_ineq,
        config.batch,
        config.vjp_mode,
        config
            .settings
            .check_every
            .map_or("adaptive".to_string(), |k| format!("every {k}")),
        config.repeats
    );
    let data = BatchData::new(&config);
    let backends = if args.backend.is_empty() {
        BackendKind::compiled()
            .iter()
            .copied()
            .filter(|b| matches!(b, BackendKind::Faer | BackendKind::Candle))
            .collect()
    } else {
        args.backend.clone()
    };
    let mut rows = Vec::new();
    for &backend in &backends {
        // the device moves the candle backend; the CPU backends stay as the reference
        let backend = match backend {
            BackendKind::Candle | BackendKind::CandleCuda => backend.on(args.device)?,
            cpu => cpu,
        };
        let mut measured = backend.run(BatchBenchJob {
            config: &config,
            data: &data,
        })?;
        for (row, _) in &mut measured {
            row.backend = backend.name().to_string();
        }
        rows.extend(measured);
    }
    let rows = altdiff_examples::batch_bench::cross_check(rows);
    print!("{}", altdiff_examples::batch_bench::table(&rows));
    if let Some(path) = &args.json {
        write_json(path, &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "candle")]
fn classify(args: altdiff_examples::cli::ClassifyArgs) -> Result<ExitCode, CliError> {
    use altdiff_examples::classify;
    let config = args.config();
    if let Some(path) = &args.plot {
        classify::check_plot_path(path)?;
    }
    if config.dataset != "digits" && config.data_dir.is_none() {
        return Err(CliError::Usage(format!(
            "--dataset {} is read from its files: give their directory with --data-dir DIR",
            config.dataset
        )));
    }
    let report = classify::run(&config, true)?;
    if let Some(path) = &args.json {
        report.write_json(path)?;
    }
    if let Some(path) = &args.plot {
        classify::plot_history(path, &report)?;
    }
    println!("final test accuracy {:.4}", report.final_test_accuracy);
    Ok(ExitCode::SUCCESS)
}

/// The environment variable of mimalloc's purge delay.
const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";

/// Runs the program again with mimalloc's purging off (`MIMALLOC_PURGE_DELAY=-1`), unless
/// the variable is set already.
///
/// mimalloc hands memory back to the system about a second after it is freed, and takes
/// fresh ranges for new large blocks: a solver set up again and again (the repeats of
/// `bench`, `derivatives`, `demo`) then faults in and zeroes fresh pages for its `n x n`
/// blocks every time, about a tenth of a forward + VJP at (1000, 500, 200) on a 2-core VM
/// (measured: 0.076 s against 0.067 s, medians of six alternating runs). The option is read
/// from the environment once, before `main`, so only a new process can set it; freed
/// memory then stays with the process until it exits. When the program cannot run itself
/// again it goes on as it is.
#[cfg(unix)]
fn keep_freed_memory() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(PURGE_DELAY).is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let (Some(arg0), Ok(exe)) = (args.next(), std::env::current_exe()) else {
        return;
    };
    // exec returns only when it fails: then this process goes on
    let _failed = std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env(PURGE_DELAY, "-1")
        .exec();
}

/// Elsewhere the allocator keeps its defaults.
#[cfg(not(unix))]
fn keep_freed_memory() {}

/// The command line, negative numbers taken as values (`--rho -1` reaches the check of the
/// value, which names it, instead of clap's "unexpected argument").
fn parse_cli() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let command = Cli::command().mut_subcommands(|sub| sub.allow_negative_numbers(true));
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = parse_cli();
    let result = match cli.command {
        Command::Solve(args) => solve(args),
        Command::Demo(args) => demo(args),
        Command::Derivatives(args) => derivatives(args),
        Command::Bench(args) => bench(args),
        Command::BatchBench(args) => batch_bench(args),
        Command::Suite(args) => altdiff_examples::suite::run_cli(&args),
        Command::Trust(args) => altdiff_examples::trust::run_cli(&args),
        Command::Layer(args) => altdiff_examples::layer_cli::run(&args),
        #[cfg(feature = "candle")]
        Command::Classify(args) => classify(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("altdiff: error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

struct SolveJob<'a> {
    qp: &'a HostQp,
    settings: Settings,
    vjp: Option<(&'a [f64], VjpMode)>,
}

impl BackendJob for SolveJob<'_> {
    type Output = (HostSolution, Option<VjpFile>, Option<DifferentiabilityFile>);

    fn run<B: LinAlg<Real = f64>>(self, backend: B) -> Result<Self::Output, CliError> {
        let problem = Qp::from_host(&backend, self.qp)?;
        let solver = AltDiff::new(backend.clone(), &problem, self.settings)?;
        let solution = solver.solve(problem.params())?;
        // an infeasible or unbounded problem has no derivative: its status is the answer
        let status = solution.status();
        let differentiable = status.is_expected() || status.is_truncated();
        let vjp = match self.vjp {
            Some((g, mode)) if differentiable => {
                let n = g.len();
                let g = backend.mat_from_col_major(n, 1, g)?;
                let grads = solver.vjp(&solution, &g, mode)?;
                let vector = |m: &B::Mat| backend.to_col_major(m);
                // matrix gradients as rows (a sparse backend's: zero off the pattern)
                let rows =
                    |m: &Option<B::OpGrad>, field| -> Result<Option<Vec<Vec<f64>>>, CliError> {
                        let Some(m) = m else { return Ok(None) };
                        Ok(Some(backend.grad_to_host(m, field)?.to_rows()))
                    };
                Some(VjpFile {
                    q: vector(&grads.q)?,
                    b: vector(&grads.b)?,
                    h: vector(&grads.h)?,
                    p: rows(&grads.p, altdiff_core::Field::P)?,
                    a: rows(&grads.a, altdiff_core::Field::A)?,
                    g: rows(&grads.g, altdiff_core::Field::G)?,
                })
            }
            _ => None,
        };
        // the report comes with every derivative of a solved problem
        let derivatives = vjp.is_some() || !solver.settings().wrt.is_empty();
        let report = if derivatives && status.is_solved() {
            Some(DifferentiabilityFile::from(
                &solver.differentiability(&solution)?,
            ))
        } else {
            None
        };
        Ok((solution.to_host(&backend)?, vjp, report))
    }
}

fn solve(args: SolveArgs) -> Result<ExitCode, CliError> {
    let qp = read_problem(&args.problem)?;
    let wrt: Wrt = args.wrt.iter().map(|&p| Param::from(p)).collect();
    let mode = args.vjp_mode.mode(&args.solver);
    let mut settings = args
        .solver
        .settings()
        .with_wrt(wrt)
        .with_require_differentiable(args.require_differentiable);
    let grad = match &args.vjp {
        Some(path) => {
            let g = read_vector(path)?;
            if g.len() != qp.q.len() {
                return Err(CliError::Usage(format!(
                    "{}: the gradient has {} entries, x has {}",
                    path.display(),
                    g.len(),
                    qp.q.len()
                )));
            }
            if mode == VjpMode::Unrolled {
                settings = settings.with_tape(Tape::Full);
            }
            Some(g)
        }
        None => None,
    };
    let job = SolveJob {
        qp: &qp,
        settings,
        vjp: grad.as_deref().map(|g| (g, mode)),
    };
    let backend = altdiff_examples::memory::backend_that_fits(
        args.backend.unwrap_or(BackendKind::compiled()[0]),
        args.backend.is_some(),
        qp.q.len(),
        qp.b.len() + qp.h.len(),
    )?;
    let (solution, vjp, report) = backend.on(args.device)?.run(job)?;
    let mut result = ResultFile::from(&solution);
    result.vjp = vjp;
    result.differentiability = report;
    if let Some((what, index, value)) = result.non_finite_derivative() {
        return Err(CliError::Overflow { what, index, value });
    }
    let json = serde_json::to_string_pretty(&result).expect("serializable");
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

fn derivatives(args: DemoArgs) -> Result<ExitCode, CliError> {
    let backends = backends_of(&args);
    let (config, qp, source) = demo_config(args)?;
    println!(
        "altdiff derivatives: {source}, n = {}, n_eq = {}, n_ineq = {}, stop = {:?}, rho = {}, median of {} runs",
        config.n,
        config.n_eq,
        config.n_ineq,
        config.settings.stopping,
        config.settings.rho,
        config.repeats
    );
    println!(
        "setup s: AltDiff::new (convexity test, factorization, dual-space operators); solve s: the solve with what it carries (Jacobians) or records (tape); after s: the derivative work after it; J'g relerr: vs the KKT Jacobians' J'g on (q, b, h)\n"
    );
    println!("{}", DerivativeRow::header());
    for backend in backends {
        for row in backend.run(DerivativesJob {
            config: &config,
            qp: &qp,
        })? {
            println!("{}", row.line());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bench(args: BenchArgs) -> Result<ExitCode, CliError> {
    let wrt = Param::from(args.wrt);
    if wrt.is_matrix() {
        return Err(CliError::Usage("bench differentiates q, b or h".into()));
    }
    let generator = match args.generator {
        GeneratorArg::Well => Generator::WellConditioned,
        GeneratorArg::Seed => Generator::Seed,
    };
    let problems: Vec<(String, HostQp)> = match &args.problem {
        Some(path) => vec![(path.display().to_string(), read_problem(path)?)],
        None => {
            let sizes = if args.n.is_empty() {
                vec![1000]
            } else {
                args.n.clone()
            };
            sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let n_eq = args.n_eq.get(i).copied().unwrap_or(n / 2);
                    let n_ineq = args.n_ineq.get(i).copied().unwrap_or(n / 5);
                    if n == 0 || n_eq >= n {
                        return Err(CliError::Usage(format!(
                            "need 0 < n_eq < n, got n = {n}, n_eq = {n_eq}"
                        )));
                    }
                    altdiff_examples::memory::generated_fits(n, n_eq + n_ineq)?;
                    Ok((
                        format!("{generator:?} {n}/{n_eq}/{n_ineq} seed {}", args.seed),
                        random_qp(generator, n, n_eq, n_ineq, args.seed),
                    ))
                })
                .collect::<Result<_, CliError>>()?
        }
    };
    let solver_args = SolverArgs {
        rho: args.rho,
        max_iter: args.max_iter,
        check_every: None,
        eps_abs: 1e-6,
        eps_rel: 1e-6,
        stop: args.stop,
        method: altdiff_examples::cli::MethodArg::Altdiff,
        adaptive_rho: false,
        fixed_rho: false,
        anderson: 0,
        alpha: 1.6,
        limit: false,
        no_limit: false,
        scaling: altdiff_examples::cli::ScalingArg::Auto,
    };
    let settings = solver_args.settings();
    settings.validate().map_err(altdiff_core::Error::from)?;
    let backends = if args.backend.is_empty() {
        BackendKind::defaults()
    } else {
        args.backend.clone()
    };
    let total = problems.len() * backends.len() * args.methods.len() * args.repeats.max(1);
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} timed runs, {elapsed} {msg}")
            .expect("template"),
    );
    println!(
        "altdiff bench: theta = {}, stop = {:?}, rho = {}, {} repeats; exact = KKT at a residual-1e-9 ADMM solution\n",
        wrt.name(),
        settings.stopping,
        settings.rho,
        args.repeats
    );
    println!("{}", BenchRow::header());
    let mut rows = Vec::new();
    for (index, (name, qp)) in problems.iter().enumerate() {
        bar.set_message(format!("reference of {name}"));
        // the exact reference at full precision, whatever the backends measured
        let reference = reference(backends[0].full_precision(), qp, wrt, settings.rho)?;
        for &backend in &backends {
            for &method in &args.methods {
                bar.set_message(format!("{} {} on {name}", backend.name(), method.name()));
                let tick = || bar.inc(1);
                let row = backend.run_with_threads(
                    args.threads,
                    BenchJob {
                        qp,
                        wrt,
                        method,
                        settings: settings.clone(),
                        repeats: args.repeats,
                        reference: &reference,
                        tick: &tick,
                    },
                )?;
                bar.suspend(|| println!("{}", row.line()));
                rows.push(row);
            }
        }
        if index == 0
            && let Some(path) = &args.plot
        {
            bar.set_message("trace for the plot");
            let trace = backends[0].run(TraceJob {
                qp,
                wrt,
                settings: settings.clone(),
                exact: &reference.jacobian,
            })?;
            plot_trace(
                path,
                &trace,
                &format!("Alt-Diff on {name}: residuals and dx/d{} error", wrt.name()),
            )?;
        }
    }
    bar.finish_and_clear();
    if let Some(path) = &args.json {
        write_json(path, &rows)?;
    }
    if let Some(path) = &args.csv {
        write_csv(path, &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn backends_of(args: &DemoArgs) -> Vec<BackendKind> {
    if args.backend.is_empty() {
        BackendKind::defaults()
    } else {
        args.backend.clone()
    }
}

/// The configuration of `demo` / `derivatives`, its problem (the file of `--problem`, whose
/// sizes replace `--n`, `--n-eq`, `--n-ineq`, or the generated one) and where the problem
/// came from, for the header (the file, or the generator and its seed).
fn demo_config(args: DemoArgs) -> Result<(DemoConfig, HostQp, String), CliError> {
    let file = match &args.problem {
        Some(path) => {
            let qp = read_problem(path)?;
            let dims = qp.validate()?;
            Some((qp, dims))
        }
        None => None,
    };
    let (n, n_eq, n_ineq) = match &file {
        Some((_, dims)) => (dims.n, dims.p, dims.m),
        None => (
            args.n,
            args.n_eq.unwrap_or(args.n / 2),
            args.n_ineq.unwrap_or(args.n / 5),
        ),
    };
    let config = DemoConfig {
        n,
        n_eq,
        n_ineq,
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
    if config.wrt.is_matrix() {
        return Err(CliError::Usage(
            "demo differentiates q, b or h (see `altdiff solve --wrt` for P, A, G)".into(),
        ));
    }
    altdiff_examples::memory::generated_fits(config.n, config.n_eq + config.n_ineq)?;
    if config.n == 0 || config.n_eq >= config.n {
        return Err(CliError::Usage(format!(
            "need 0 < n_eq < n, got n = {}, n_eq = {}",
            config.n, config.n_eq
        )));
    }
    let (qp, source) = match (file, &args.problem) {
        (Some((qp, _)), Some(path)) => (qp, format!("problem {}", path.display())),
        _ => (
            config.problem(),
            format!("{:?} generator, seed = {}", config.generator, config.seed),
        ),
    };
    Ok((config, qp, source))
}

fn demo(args: DemoArgs) -> Result<ExitCode, CliError> {
    let backends = backends_of(&args);
    let (config, qp, source) = demo_config(args)?;
    println!(
        "altdiff demo: {source}, n = {}, n_eq = {}, n_ineq = {}, theta = {}, stop = {:?}, rho = {}",
        config.n,
        config.n_eq,
        config.n_ineq,
        config.wrt.name(),
        config.settings.stopping,
        config.settings.rho
    );
    println!(
        "exact Jacobian (kkt s): clarabel solves to 1e-10, then implicit differentiation of the KKT system on its active set (nalgebra LU)"
    );
    println!(
        "J-iter: one Jacobian iteration, marginal (median of {} runs of {k} and {} iterations: the time an iteration with J adds over one without); gemm: faer GEMM of the iteration's main product, (n x n)(n x d) in the primal space, (r x r)(r x d) with r = n_eq + n_ineq in the dual space, Par::Seq; ratio = J-iter / gemm\n",
        config.repeats,
        2 * config.timing_iterations,
        k = config.timing_iterations,
    );
    println!("{}", DemoRow::header());
    for backend in backends {
        let row = config.run_on(backend, &qp)?;
        println!("{}", row.line());
    }
    Ok(ExitCode::SUCCESS)
}
