//! The cost of the differentiability report against the VJP it certifies, at the paper's
//! size: one solve (default settings, the paper's generator), then interleaved rounds of
//! `vjp` (`VjpMode::Limit`, the default) and `differentiability`, medians and their ratio.
//!
//! `cargo run --release -p altdiff-examples --example report_cost [-- N ROUNDS]`

use std::time::Instant;

use altdiff_core::testing::{Generator, random_qp};
use altdiff_core::{AltDiff, LinAlg, Qp, Settings, VjpMode};
use altdiff_faer::FaerBackend;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), altdiff_core::Error> {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (n, rounds) = (arg(1, 1000), arg(2, 31));
    let backend = FaerBackend::default();
    let host = random_qp(Generator::Seed, n, n / 2, n / 5, 0);
    let qp = Qp::from_host(&backend, &host)?;
    let solver = AltDiff::new(backend.clone(), &qp, Settings::default())?;
    let sol = solver.solve(qp.params())?;
    let g = backend.mat_from_col_major(n, 1, &vec![1.0; n])?;
    let (mut vjp, mut report) = (Vec::new(), Vec::new());
    let mut verdict = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let grads = solver.vjp(&sol, &g, VjpMode::Limit)?;
        vjp.push(t.elapsed().as_secs_f64());
        drop(grads);
        let t = Instant::now();
        verdict = Some(solver.differentiability(&sol)?);
        report.push(t.elapsed().as_secs_f64());
    }
    let (vjp, report) = (median(vjp), median(report));
    println!(
        "n = {n}, n_eq = {}, n_ineq = {}, status {}, {rounds} rounds: vjp {:.3} ms, report {:.3} ms ({:.1}% of the VJP)",
        n / 2,
        n / 5,
        sol.status().as_str(),
        vjp * 1e3,
        report * 1e3,
        100.0 * report / vjp
    );
    println!("{:?}", verdict.expect("one round"));
    Ok(())
}
