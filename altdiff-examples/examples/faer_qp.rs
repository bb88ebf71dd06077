//! The faer backend on a small QP built from faer matrices: solution and Jacobians.
//!
//! `cargo run --release -p altdiff-examples --example faer_qp`

use altdiff_core::{AltDiff, Param, Qp, QpParams, Settings, Wrt};
use altdiff_faer::FaerBackend;
use faer::mat;

fn main() -> Result<(), altdiff_core::Error> {
    let backend = FaerBackend::default();
    // minimize 1/2 x'Px + q'x  s.t.  x0 + x1 + x2 = 1,  x1 <= 0.5,  -x0 <= 0.2
    let p = mat![[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.5]];
    let a = mat![[1.0, 1.0, 1.0]];
    let g = mat![[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]];
    let params = QpParams {
        q: mat![[1.0], [-1.0], [0.5]],
        b: mat![[1.0]],
        h: mat![[0.5], [0.2]],
    };
    let qp = Qp::new(&backend, p, a, g, params)?;

    let solver = AltDiff::new(backend, &qp, Settings::default().with_wrt(Wrt::vectors()))?;
    let sol = solver.solve(qp.params())?;
    println!(
        "status {} after {} iterations",
        sol.status(),
        sol.iterations()
    );
    println!("x      = {:?}", sol.x().col_as_slice(0));
    let dx_db = sol.jacobian(Param::B).expect("requested");
    println!(
        "dx/db  = {:?}   (exact: 3/7, 0, 4/7)",
        dx_db.col_as_slice(0)
    );
    let dx_dh = sol.jacobian(Param::H).expect("requested");
    println!(
        "dx/dh1 = {:?}   (exact: -4/7, 1, -3/7)",
        dx_dh.col_as_slice(0)
    );
    assert!(
        (dx_db[(2, 0)] - 4.0 / 7.0).abs() < 1e-4,
        "dx/db matches the exact value"
    );
    Ok(())
}
