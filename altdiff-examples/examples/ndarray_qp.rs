//! The ndarray backend on a small QP built from ndarray arrays, re-solved for a new `b`
//! with the same factorization (set up once, solve many times).
//!
//! `cargo run --release -p altdiff-examples --example ndarray_qp`

use altdiff_core::{AltDiff, Param, Qp, QpParams, Settings, Wrt};
use altdiff_ndarray::NdarrayBackend;
use ndarray::array;

fn main() -> Result<(), altdiff_core::Error> {
    let backend = NdarrayBackend::default();
    let p = array![[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.5]];
    let a = array![[1.0, 1.0, 1.0]];
    let g = array![[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]];
    let params = QpParams {
        q: array![[1.0], [-1.0], [0.5]],
        b: array![[1.0]],
        h: array![[0.5], [0.2]],
    };
    let qp = Qp::new(&backend, p, a, g, params)?;

    let settings = Settings::default().with_wrt(Wrt::none().with(Param::B));
    let solver = AltDiff::new(backend, &qp, settings)?; // H factored once, here
    for b in [1.0, 1.1] {
        let params = QpParams {
            b: array![[b]],
            ..qp.params().clone()
        };
        let sol = solver.solve(&params)?;
        let dx_db = sol.jacobian(Param::B).expect("requested");
        println!(
            "b = {b}: status {}, x = {}, dx/db = {}",
            sol.status(),
            sol.x().column(0),
            dx_db.column(0)
        );
        assert!(
            (dx_db[[0, 0]] - 3.0 / 7.0).abs() < 1e-4,
            "the active set does not change: dx/db = (3/7, 0, 4/7)"
        );
    }
    Ok(())
}
