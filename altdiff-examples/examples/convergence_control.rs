//! Iteration counts with and without Ruiz equilibration (forced on) and adaptive rho, at three
//! penalties, on the demo's random QPs, LPs in standard form and a badly scaled QP (dx/db
//! carried, residual rule 1e-6, at most 20 000 iterations).
//!
//! `cargo run --release -p altdiff-examples --example convergence_control [-- N ...]`
//! (default sizes of the demo problems: 300 1000)

use altdiff_core::testing::{Generator, badly_scaled, random_lp, random_qp};
use altdiff_core::{AdaptiveRho, AltDiff, HostQp, Param, Qp, Ruiz, Settings, Wrt};
use altdiff_faer::FaerBackend;

/// The configurations compared (before rho, the iteration bound and `wrt`): none, forced
/// equilibration alone, adaptive rho alone, both, and the library's default (equilibration
/// and adaptive rho only for badly scaled data).
fn configs() -> Vec<(&'static str, Settings)> {
    let off = Settings::default().with_scaling(None);
    let scaling = Some(Ruiz::always().with_adaptive_rho(false));
    let adaptive = Some(AdaptiveRho::default());
    vec![
        ("plain", off.clone()),
        ("scaling", off.clone().with_scaling(scaling)),
        ("adaptive", off.clone().with_adaptive_rho(adaptive)),
        (
            "both",
            off.with_scaling(scaling).with_adaptive_rho(adaptive),
        ),
        ("default", Settings::default()),
    ]
}

fn main() -> Result<(), altdiff_core::Error> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![300, 1000]
    } else {
        sizes
    };
    let mut problems: Vec<(String, HostQp)> = Vec::new();
    for &n in &sizes {
        for (name, generator) in [
            ("well", Generator::WellConditioned),
            ("seed", Generator::Seed),
        ] {
            let qp = random_qp(generator, n, n / 2, n / 5, 0);
            problems.push((format!("demo {name} n={n}"), qp));
        }
    }
    problems.push(("LP n=12 p=4".into(), random_lp(12, 4, 7)));
    problems.push(("LP n=200 p=50".into(), random_lp(200, 50, 7)));
    let bad = badly_scaled(&random_qp(Generator::WellConditioned, 100, 30, 40, 7));
    problems.push(("badly scaled n=100".into(), bad));
    let names: Vec<&str> = configs().iter().map(|c| c.0).collect();
    println!("| problem | rho | {} |", names.join(" | "));
    println!("|---|---|{}", "---|".repeat(names.len()));
    let backend = FaerBackend::default();
    for (name, host) in &problems {
        let qp = Qp::from_host(&backend, host)?;
        let wrt = if host.b.is_empty() {
            Wrt::none()
        } else {
            Wrt::none().with(Param::B)
        };
        for rho in [0.1, 1.0, 10.0] {
            let mut cells = Vec::new();
            for (_, settings) in configs() {
                let settings = settings.with_rho(rho).with_max_iter(20_000).with_wrt(wrt);
                let sol = AltDiff::new(backend.clone(), &qp, settings)?.solve(qp.params())?;
                cells.push(if sol.status().is_solved() {
                    sol.iterations().to_string()
                } else {
                    format!("{} ({})", sol.iterations(), sol.status().as_str())
                });
            }
            println!("| {name} | {rho} | {} |", cells.join(" | "));
        }
    }
    Ok(())
}
