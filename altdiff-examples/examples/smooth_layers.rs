//! Smooth layers on faer: the seed's entropy-layer grid (`test_bfgs`), and the softmax /
//! sparsemax closed-form checks, with times and errors.
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p altdiff-examples --example smooth_layers
//! [-- --sizes 1000,3000] [--jacobian-y-up-to N] [--only softmax|sparsemax|entropy]`
//!
//! 1. Entropy grid: `min sum x log x - y'x s.t. Ax = b, Gx <= h`, `n_eq = n/10`,
//!    `n_ineq = 0.3 n`, `A` uniform in (0, 1), `b = A x0`, `G` normal, `h = G x0 + margin` (half
//!    of the rows tight at `x0`) with `x0` in the simplex interior, `y` normal. Forward solve
//!    (Woodbury and, up to n = 1000, the full Newton system), Alt-Diff `dx/db` against the KKT
//!    Jacobian, `dx/dy` by KKT (and Alt-Diff up to `--jacobian-y-up-to`), the VJP against
//!    `g'J`.
//! 2. Softmax: `x` and `dx/dy` (Alt-Diff) against `softmax(y)` and `diag(s) - s s'`, the VJP
//!    against the closed form.
//! 3. Sparsemax: `x` against the projection onto the simplex (by sorting), `dx/dy` (KKT, and
//!    Alt-Diff up to `--jacobian-y-up-to`) and the VJP against `diag(1_S) - 1_S 1_S'/|S|`, at
//!    the residual tolerances 1e-6 and 1e-9, on faer and on faer's sparse backend.
//!
//! Residual rule 1e-6 (the library default) for every solve.

use altdiff_core::testing::{simplex_projection, softmax};
use std::time::Instant;

use altdiff_core::smooth::layers::{Entropy, Layer, LayerKind, LayerParam};
use altdiff_core::smooth::{NewtonSystem, SmoothParam, SmoothSettings, SmoothSolver};
use altdiff_core::{HostMatrix, LinAlg, Method};
use altdiff_faer::{FaerBackend, FaerSparseBackend};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

type Error = Box<dyn std::error::Error>;

/// Options: `--sizes N,..`, `--jacobian-y-up-to N`, `--only softmax|sparsemax|entropy`.
struct Options {
    sizes: Vec<usize>,
    /// Run one section only.
    only: Option<String>,
    /// Largest n for the Alt-Diff `dx/dy` of the entropy and sparsemax layers (an `n x n`
    /// block per iteration: `O(n^2 (n_eq + n_ineq))` with Woodbury, `O(n^3)` for sparsemax's
    /// dense `x >= 0` rows).
    jacobian_y_up_to: usize,
}

fn options() -> Result<Options, Error> {
    let mut opts = Options {
        sizes: vec![1000, 3000],
        only: None,
        jacobian_y_up_to: 300,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).ok_or("missing value")?;
        match args[i].as_str() {
            "--sizes" => opts.sizes = value.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--jacobian-y-up-to" => opts.jacobian_y_up_to = value.parse()?,
            "--only" => opts.only = Some(value.clone()),
            other => return Err(format!("unknown option {other}").into()),
        }
        i += 2;
    }
    Ok(opts)
}

/// `max |got - want| / max(1, max |want|)`.
fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1.0_f64, |s, v| s.max(v.abs()));
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / scale
}

fn normal(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.sample(StandardNormal)).collect()
}

/// `J'g` for a column-major `rows x cols` Jacobian.
fn jt_g(j: &[f64], rows: usize, g: &[f64]) -> Vec<f64> {
    j.chunks_exact(rows)
        .map(|col| col.iter().zip(g).map(|(a, b)| a * b).sum())
        .collect()
}

/// Runs `f` and returns its result with the seconds it took.
fn timed<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<(T, f64), Error> {
    let start = Instant::now();
    let out = f()?;
    Ok((out, start.elapsed().as_secs_f64()))
}

/// The seed's entropy-layer problem (see the module docs).
struct EntropyProblem {
    a: HostMatrix,
    b: Vec<f64>,
    g: HostMatrix,
    h: Vec<f64>,
    y: Vec<f64>,
}

fn entropy_problem(n: usize, seed: u64) -> EntropyProblem {
    let (p, m) = (n / 10, 3 * n / 10);
    let mut rng = StdRng::seed_from_u64(seed);
    let x0: Vec<f64> = (0..n).map(|_| rng.random_range(0.5..1.5)).collect();
    let total: f64 = x0.iter().sum();
    let x0: Vec<f64> = x0.iter().map(|v| v / total).collect();
    let a = HostMatrix::from_fn(p, n, |_, _| rng.random_range(0.0..1.0));
    let g = HostMatrix::from_fn(m, n, |_, _| rng.sample(StandardNormal));
    let b = a.mul_vec(&x0);
    let scale = 1.0 / (n as f64).sqrt();
    let h = g
        .mul_vec(&x0)
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v + if i % 2 == 0 {
                0.0
            } else {
                scale * rng.random_range(0.1..1.0)
            }
        })
        .collect();
    let y = normal(&mut rng, n);
    EntropyProblem { a, b, g, h, y }
}

fn entropy_grid(opts: &Options) -> Result<(), Error> {
    let be = FaerBackend::default();
    println!("## 1. Entropy layer grid (the seed's test_bfgs): n_eq = n/10, n_ineq = 0.3 n\n");
    println!(
        "| n | what | time s | iterations | Newton steps | factorizations | result |\n|---|---|---|---|---|---|---|"
    );
    for &n in &opts.sizes {
        let prob = entropy_problem(n, 0);
        let (p, m) = (prob.b.len(), prob.h.len());
        let f = Entropy::new(prob.y.clone())?;
        let bm = be.mat_from_col_major(p, 1, &prob.b)?;
        let hm = be.mat_from_col_major(m, 1, &prob.h)?;
        let solver = |system, reuse| -> Result<SmoothSolver<FaerBackend>, Error> {
            Ok(SmoothSolver::new(
                be.clone(),
                be.op_from_host(&prob.a)?,
                be.op_from_host(&prob.g)?,
                SmoothSettings::default()
                    .with_newton_system(system)
                    .with_hessian_reuse(reuse),
            )?)
        };
        let woodbury = solver(NewtonSystem::Woodbury, 0.1)?;
        let row = |what: &str,
                   t: f64,
                   sol: &altdiff_core::smooth::SmoothSolution<FaerBackend>,
                   result: String| {
            println!(
                "| {n} | {what} | {t:.3} | {} | {} | {} | {result} |",
                sol.iterations(),
                sol.newton_steps(),
                sol.factorizations()
            );
        };
        let (sol, t) = timed(|| Ok(woodbury.solve(&f, &bm, &hm, &[])?))?;
        let s = be.to_col_major(sol.s())?;
        let active = s.iter().filter(|&&v| v <= 0.0).count();
        row(
            "forward, Woodbury (r x r), Hessian reuse 0.1 (default)",
            t,
            &sol,
            format!(
                "{}, {active}/{m} inequalities active, residuals {:.1e} / {:.1e}, rho {:.2}",
                sol.status(),
                sol.primal_residual(),
                sol.dual_residual(),
                sol.rho()
            ),
        );
        let x = be.to_col_major(sol.x())?;
        // the comparisons without reuse: up to n = 1000 (at 3000 a Woodbury factorization
        // takes about 0.3 s, the full one about 1 s, 567 of them)
        let mut systems = Vec::new();
        if n <= 1000 {
            systems.push(("Woodbury (r x r)", NewtonSystem::Woodbury));
            systems.push(("full n x n system", NewtonSystem::Full));
        }
        for (name, system) in systems {
            let every = solver(system, 0.0)?;
            let (every_sol, t) = timed(|| Ok(every.solve(&f, &bm, &hm, &[])?))?;
            let dx = rel_err(&be.to_col_major(every_sol.x())?, &x);
            row(
                &format!("forward, {name}, a factorization every Newton step"),
                t,
                &every_sol,
                format!("{}, x vs the first {dx:.1e}", every_sol.status()),
            );
        }
        // dx/db: Alt-Diff against KKT
        let (jac_sol, t) = timed(|| Ok(woodbury.solve(&f, &bm, &hm, &[SmoothParam::B])?))?;
        let (kkt_b, t_kkt) = timed(|| Ok(woodbury.kkt_jacobian(&f, &jac_sol, SmoothParam::B)?))?;
        let alt_b = be.to_col_major(jac_sol.jacobian(SmoothParam::B).ok_or("no dx/db")?)?;
        let kkt_b = be.to_col_major(&kkt_b)?;
        row(
            "forward + Alt-Diff dx/db (n x n_eq)",
            t,
            &jac_sol,
            format!(
                "{}, rel. error vs KKT {:.1e}",
                jac_sol.status(),
                rel_err(&alt_b, &kkt_b)
            ),
        );
        println!("| {n} | KKT dx/db at that solution | {t_kkt:.3} | | | 1 | |");
        let (kkt_y, t_kkt_y) =
            timed(|| Ok(woodbury.kkt_jacobian(&f, &jac_sol, SmoothParam::Theta)?))?;
        let kkt_y = be.to_col_major(&kkt_y)?;
        println!("| {n} | KKT dx/dy (n x n) | {t_kkt_y:.3} | | | 1 | |");
        let mut rng = StdRng::seed_from_u64(1);
        let gseed = normal(&mut rng, n);
        let gm = be.mat_from_col_major(n, 1, &gseed)?;
        let (grads, t_vjp) = timed(|| Ok(woodbury.vjp(&f, &jac_sol, &gm)?))?;
        let vjp_b = be.to_col_major(&grads.b)?;
        let vjp_y = be.to_col_major(&grads.theta)?;
        println!(
            "| {n} | VJP wrt y, b, h (KKT adjoint) | {t_vjp:.3} | | | 1 | vs g'J: y {:.1e} (KKT J), b {:.1e} (Alt-Diff J) |",
            rel_err(&vjp_y, &jt_g(&kkt_y, n, &gseed)),
            rel_err(&vjp_b, &jt_g(&alt_b, n, &gseed))
        );
        if n <= opts.jacobian_y_up_to {
            let (sol_y, t) = timed(|| Ok(woodbury.solve(&f, &bm, &hm, &[SmoothParam::Theta])?))?;
            let alt_y = be.to_col_major(sol_y.jacobian(SmoothParam::Theta).ok_or("no dx/dy")?)?;
            row(
                "forward + Alt-Diff dx/dy (n x n)",
                t,
                &sol_y,
                format!(
                    "{}, rel. error vs KKT {:.1e}",
                    sol_y.status(),
                    rel_err(&alt_y, &kkt_y)
                ),
            );
        }
    }
    println!();
    Ok(())
}

fn softmax_checks(opts: &Options) -> Result<(), Error> {
    println!("## 2. Softmax layer (1'x = 1) against softmax(y), diag(s) - s s'\n");
    println!(
        "| n | what | time s | iterations | Newton steps | error |\n|---|---|---|---|---|---|"
    );
    for &n in &opts.sizes {
        let mut rng = StdRng::seed_from_u64(2);
        let y: Vec<f64> = normal(&mut rng, n).iter().map(|v| 2.0 * v).collect();
        let g = normal(&mut rng, n);
        let layer = Layer::new(
            FaerBackend::default(),
            LayerKind::Softmax,
            n,
            SmoothSettings::default(),
        )?;
        let s = softmax(&y);
        let (out, t) = timed(|| Ok(layer.forward(&y, None, &[])?))?;
        println!(
            "| {n} | forward | {t:.3} | {} | {} | x: {:.1e} |",
            out.iterations,
            out.solution().newton_steps(),
            rel_err(&out.x, &s)
        );
        let (out, t) = timed(|| Ok(layer.forward(&y, None, &[LayerParam::Y])?))?;
        let j = out.jacobian(LayerParam::Y).ok_or("no dx/dy")?;
        let exact = HostMatrix::from_fn(n, n, |i, k| if i == k { s[i] } else { 0.0 } - s[i] * s[k]);
        println!(
            "| {n} | forward + Alt-Diff dx/dy | {t:.3} | {} | {} | x: {:.1e}, J: {:.1e} |",
            out.iterations,
            out.solution().newton_steps(),
            rel_err(&out.x, &s),
            rel_err(&j.col_major(), &exact.col_major())
        );
        let (grads, t) = timed(|| Ok(layer.vjp(&out, &g)?))?;
        let sg: f64 = s.iter().zip(&g).map(|(a, b)| a * b).sum();
        let vjp: Vec<f64> = (0..n).map(|k| s[k] * (g[k] - sg)).collect();
        println!(
            "| {n} | VJP wrt y | {t:.3} | | | {:.1e} |",
            rel_err(&grads.y, &vjp)
        );
    }
    println!();
    Ok(())
}

fn sparsemax_checks(opts: &Options) -> Result<(), Error> {
    println!("## 3. Sparsemax layer against the projection onto the simplex (sorting)\n");
    println!(
        "| n | eps | what | time s | iterations | factorizations | error |\n|---|---|---|---|---|---|---|"
    );
    for &n in &opts.sizes {
        let mut rng = StdRng::seed_from_u64(3);
        // scores with a support of a few dozen entries
        let y: Vec<f64> = normal(&mut rng, n).iter().map(|v| 0.1 * v).collect();
        let g = normal(&mut rng, n);
        let x = simplex_projection(&y);
        let support: Vec<bool> = x.iter().map(|&v| v > 0.0).collect();
        let size = support.iter().filter(|&&s| s).count();
        // the threshold tau and the closest score to it: entries closer than the solve's
        // accuracy cannot be told in or out of the support
        let tau = (0..n).find(|&i| support[i]).map_or(0.0, |i| y[i] - x[i]);
        let gap = y
            .iter()
            .map(|v| (v - tau).abs())
            .fold(f64::INFINITY, f64::min);
        let exact = HostMatrix::from_fn(n, n, |i, k| {
            let both = if support[i] && support[k] { 1.0 } else { 0.0 };
            (if i == k { both } else { 0.0 }) - both / size as f64
        });
        let mean: f64 = (0..n).filter(|&i| support[i]).map(|i| g[i]).sum::<f64>() / size as f64;
        let vjp: Vec<f64> = (0..n)
            .map(|k| if support[k] { g[k] - mean } else { 0.0 })
            .collect();
        let be = FaerBackend::default();
        for eps in [1e-6, 1e-9] {
            let settings = SmoothSettings::default().with_tolerances(eps, eps);
            let layer = Layer::new(be.clone(), LayerKind::Sparsemax, n, settings.clone())?;
            let (out, t) = timed(|| Ok(layer.forward(&y, None, &[])?))?;
            let found = out.x.iter().filter(|&&v| v > 1e-12).count();
            println!(
                "| {n} | {eps:.0e} | forward (\\|S\\| = {size}, found {found}; min \\|y_i - tau\\| = {gap:.1e}) | {t:.3} | {} | {} | x: {:.1e} |",
                out.iterations,
                out.solution().factorizations(),
                rel_err(&out.x, &x)
            );
            let (grads, t) = timed(|| Ok(layer.vjp(&out, &g)?))?;
            println!(
                "| {n} | {eps:.0e} | VJP wrt y (KKT adjoint) | {t:.3} | | 1 | {:.1e} |",
                rel_err(&grads.y, &vjp)
            );
            // the same layer with sparse operators (x >= 0 is -I: O(n) products)
            let sparse = Layer::new(
                FaerSparseBackend::default(),
                LayerKind::Sparsemax,
                n,
                settings.clone(),
            )?;
            let (out_sparse, t) = timed(|| Ok(sparse.forward(&y, None, &[])?))?;
            let (grads, t_vjp) = timed(|| Ok(sparse.vjp(&out_sparse, &g)?))?;
            println!(
                "| {n} | {eps:.0e} | forward / VJP on faer-sparse | {t:.3} / {t_vjp:.3} | {} | {} | x: {:.1e}, VJP: {:.1e} |",
                out_sparse.iterations,
                out_sparse.solution().factorizations(),
                rel_err(&out_sparse.x, &x),
                rel_err(&grads.y, &vjp)
            );
            let kkt_layer = Layer::new(
                be.clone(),
                LayerKind::Sparsemax,
                n,
                settings.clone().with_method(Method::Kkt),
            )?;
            let (out, t) = timed(|| Ok(kkt_layer.forward(&y, None, &[LayerParam::Y])?))?;
            let j = out.jacobian(LayerParam::Y).ok_or("no dx/dy")?;
            println!(
                "| {n} | {eps:.0e} | forward + KKT dx/dy | {t:.3} | {} | {} | J: {:.1e} |",
                out.iterations,
                out.solution().factorizations() + 1,
                rel_err(&j.col_major(), &exact.col_major())
            );
            if n <= opts.jacobian_y_up_to {
                let (out, t) = timed(|| Ok(layer.forward(&y, None, &[LayerParam::Y])?))?;
                let j = out.jacobian(LayerParam::Y).ok_or("no dx/dy")?;
                println!(
                    "| {n} | {eps:.0e} | forward + Alt-Diff dx/dy | {t:.3} | {} | {} | J: {:.1e} |",
                    out.iterations,
                    out.solution().factorizations(),
                    rel_err(&j.col_major(), &exact.col_major())
                );
            }
        }
    }
    println!();
    Ok(())
}

fn main() -> Result<(), Error> {
    let opts = options()?;
    println!(
        "smooth layers on faer (sequential), residual rule 1e-6, rho = 1 with residual balancing\n"
    );
    let run = |name: &str| opts.only.as_deref().is_none_or(|only| only == name);
    if run("softmax") {
        softmax_checks(&opts)?;
    }
    if run("sparsemax") {
        sparsemax_checks(&opts)?;
    }
    if run("entropy") {
        entropy_grid(&opts)?;
    }
    Ok(())
}
