//! Warm starts for a layer whose data changes a little between calls: the solution, the
//! duals and the Jacobian state of the previous call start the next one. Prints the
//! iterations of cold and warm solves for perturbations of q of relative size 1e-3 .. 1e-1.
//!
//! `cargo run --release -p altdiff-examples --example warm_start [-- N]`

use altdiff_core::testing::{Generator, random_qp};
use altdiff_core::{AltDiff, LinAlg, Param, Qp, QpParams, Settings, Wrt};
use altdiff_faer::FaerBackend;

fn main() -> Result<(), altdiff_core::Error> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let backend = FaerBackend::default();
    let host = random_qp(Generator::WellConditioned, n, n / 2, n / 5, 3);
    let qp = Qp::from_host(&backend, &host)?;
    let solver = AltDiff::new(
        backend.clone(),
        &qp,
        Settings::default().with_wrt(Wrt::none().with(Param::B)),
    )?;
    let first = solver.solve(qp.params())?;
    println!(
        "n = {n}, n_eq = {}, n_ineq = {}, dx/db carried, residual 1e-6",
        n / 2,
        n / 5
    );
    println!(
        "{:>10} {:>12} {:>12} {:>9}",
        "rel. step", "cold iters", "warm iters", "saving"
    );
    for step in [1e-3, 1e-2, 1e-1] {
        let q: Vec<f64> = host
            .q
            .iter()
            .enumerate()
            .map(|(i, v)| v + step * v.abs().max(1.0) * ((i as f64) * 0.7).sin())
            .collect();
        let params = QpParams {
            q: backend.mat_from_col_major(n, 1, &q)?,
            ..qp.params().clone()
        };
        let cold = solver.solve(&params)?;
        let warm = solver.solve_warm(&params, &first)?;
        assert!(cold.status().is_solved() && warm.status().is_solved());
        let saving = 1.0 - warm.iterations() as f64 / cold.iterations() as f64;
        println!(
            "{step:>10.0e} {:>12} {:>12} {:>8.0}%",
            cold.iterations(),
            warm.iterations(),
            100.0 * saving
        );
    }
    Ok(())
}
