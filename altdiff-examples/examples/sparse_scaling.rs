//! Sparse problems at scale: setup (symbolic + numeric factorization), solve and one VJP on
//! the faer sparse backend, optionally against the dense faer backend (the crossover).
//!
//! ```text
//! cargo run --release -p altdiff-examples --example sparse_scaling -- --kind random --n 100000
//! /usr/bin/time -v target/release/examples/sparse_scaling --kind portfolio --n 100000
//! cargo run --release -p altdiff-examples --example sparse_scaling -- --n 500,1000,2000 --dense
//! ```
//!
//! One line per (problem, backend): setup, solve and VJP times, iterations, status, the
//! residuals, `nnz(L)` of the sparse factor and the peak resident memory of the process so
//! far (VmHWM, Linux).

use std::time::Instant;

use altdiff_core::{AltDiff, HostQp, LinAlg, Qp, Settings, StoppingRule, VjpMode};
use altdiff_examples::cli::anderson;
use altdiff_examples::sparse_gen::SparseKind;
use altdiff_faer::{DenseRows, FaerBackend, FaerSparseBackend};
use clap::Parser;

/// Options.
#[derive(Parser, Debug)]
struct Args {
    /// The problem family.
    #[arg(long, value_enum, default_value_t = SparseKind::Random)]
    kind: SparseKind,
    /// Variable counts (comma separated).
    #[arg(long, value_delimiter = ',', default_values_t = [10_000usize])]
    n: Vec<usize>,
    /// Entries per row of the random matrices.
    #[arg(long, default_value_t = 10)]
    nnz_per_row: usize,
    /// Also run the dense faer backend (the crossover).
    #[arg(long)]
    dense: bool,
    /// Residual tolerance (absolute and relative).
    #[arg(long, default_value_t = 1e-4)]
    eps: f64,
    /// Iteration bound.
    #[arg(long, default_value_t = 4000)]
    max_iter: usize,
    /// ADMM penalty.
    #[arg(long, default_value_t = 1.0)]
    rho: f64,
    /// Adaptive penalty (residual balancing, refactoring with the kept symbolic analysis).
    #[arg(long)]
    adaptive: bool,
    /// Anderson acceleration of the solve with this memory (0: plain ADMM).
    #[arg(long, default_value_t = 0)]
    anderson: usize,
    /// Iterations between convergence checks (each check costs four products).
    #[arg(long, default_value_t = 1)]
    check_every: usize,
    /// Memory of the GMRES that solves the implicit adjoint (0: repeat the reverse step).
    #[arg(long, default_value_t = 30)]
    krylov_restart: usize,
    /// Rows of `A`, `G` with more entries than this are split off `H` as a low-rank
    /// correction (default: `max(100, 10 sqrt(n))`).
    #[arg(long)]
    dense_rows: Option<usize>,
    /// Seed of the generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Peak resident memory of this process in MiB (0 where /proc is not available).
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Setup, solve and one implicit VJP on `backend`; prints one line.
fn run<B: LinAlg<Real = f64>>(
    backend: B,
    host: &HostQp,
    args: &Args,
    extra: impl Fn(&AltDiff<B>) -> String,
) -> altdiff_core::Result<()> {
    let settings = Settings::default()
        .with_stopping(StoppingRule::Residual {
            eps_abs: args.eps,
            eps_rel: args.eps,
        })
        .with_max_iter(args.max_iter)
        .with_rho(args.rho)
        .with_adaptive_rho(args.adaptive.then(altdiff_core::AdaptiveRho::default))
        .with_anderson(anderson(args.anderson))
        .with_check_every(args.check_every)
        .with_krylov_restart(args.krylov_restart);
    let start = Instant::now();
    let qp = Qp::from_host(&backend, host)?;
    let solver = AltDiff::new(backend.clone(), &qp, settings)?;
    let setup = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let sol = solver.solve(qp.params())?;
    let solve = start.elapsed().as_secs_f64();
    let n = host.q.len();
    let g = backend.mat_from_col_major(n, 1, &vec![1.0; n])?;
    let start = Instant::now();
    let grads = solver.vjp(&sol, &g, VjpMode::Implicit)?;
    let vjp = start.elapsed().as_secs_f64();
    let grad_norm = backend.norm_inf(&grads.b)?;
    println!(
        "| {} | {} | {n} | {} | {} | {:.3} | {:.3} | {:.3} | {} | {} | {:.1e} | {:.1e} | {:.1e} | {} | {:.0} |",
        args.kind.name(),
        backend.name(),
        host.b.len(),
        host.h.len(),
        setup,
        solve,
        vjp,
        sol.iterations(),
        sol.status(),
        sol.primal_residual(),
        sol.dual_residual(),
        grad_norm,
        extra(&solver),
        peak_mib()
    );
    Ok(())
}

fn main() -> altdiff_core::Result<()> {
    let args = Args::parse();
    println!(
        "| problem | backend | n | n_eq | n_ineq | setup s | solve s | vjp s | iterations | status | primal res | dual res | max abs J_b'1 | nnz(L) | peak MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in &args.n {
        let start = Instant::now();
        let host = args.kind.generate(n, args.nnz_per_row, args.seed);
        eprintln!(
            "generated n = {n} in {:.2} s",
            start.elapsed().as_secs_f64()
        );
        let dense_rows = args.dense_rows.map_or(DenseRows::Auto, DenseRows::Above);
        let sparse = FaerSparseBackend::default().with_dense_rows(dense_rows);
        run(sparse, &host, &args, |s| {
            format!(
                "{} ({:?}, +{} dense rows)",
                s.factor().nnz_l(),
                s.factor().form(),
                s.factor().dense_rows()
            )
        })?;
        if args.dense {
            run(FaerBackend::default(), &host, &args, |_| {
                "dense".to_string()
            })?;
        }
    }
    Ok(())
}
