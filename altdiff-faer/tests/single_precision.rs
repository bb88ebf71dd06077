//! [`Precision::Single`]: `H` factored, and the dual-space operators formed, in `f32`.
//!
//! The tolerances are the precision's: the single-precision results must agree with the
//! oracles to `1e-4` and must differ from the `f64` ones by more than `f64` rounding (so a
//! silent fallback to `f64` fails), while the `f64` backend agrees to `1e-8`.

use altdiff_core::testing::{
    Generator, clarabel_solve, dual_active_set, kkt_jacobian, random_qp, rel_diff, solve_host,
};
use altdiff_core::{HostQp, IterationSpace, LinAlg, Param, Settings, StoppingRule, Wrt};
use altdiff_faer::{DenseCholesky, FaerBackend, Par, Precision};
use faer::Mat;

fn single() -> FaerBackend {
    FaerBackend::default().with_precision(Precision::Single)
}

/// The limit Jacobian wrt `param` alone (through the kept half of `K`), to residuals 1e-5.
fn limit_settings(param: Param) -> Settings {
    Settings::default()
        .with_stopping(StoppingRule::Residual {
            eps_abs: 1e-5,
            eps_rel: 1e-5,
        })
        .with_max_iter(100_000)
        .with_limit(true)
        .with_iteration(IterationSpace::Dual)
        .with_wrt(Wrt::none().with(param))
}

fn problems() -> Vec<(&'static str, HostQp)> {
    vec![
        (
            "well-conditioned",
            random_qp(Generator::WellConditioned, 60, 20, 30, 3),
        ),
        ("seed generator", random_qp(Generator::Seed, 40, 15, 10, 5)),
    ]
}

#[test]
fn single_precision_limit_jacobians_match_the_kkt_oracle() {
    assert_eq!(single().name(), "faer-f32");
    for (name, qp) in problems() {
        let oracle = clarabel_solve(&qp).expect("clarabel solves it");
        let active = dual_active_set(&qp, &oracle.x, &oracle.nu);
        for param in [Param::B, Param::H] {
            let exact = kkt_jacobian(&qp, &active, param).expect("non-degenerate");
            let run = |be: &FaerBackend| {
                let sol = solve_host(be, &qp, limit_settings(param)).expect("solves");
                assert!(sol.status.is_solved(), "{name}: {:?}", sol.status);
                let x_err = sol
                    .x
                    .iter()
                    .zip(&oracle.x)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                let jac_err = rel_diff(sol.jacobian(param).expect("requested"), &exact);
                (x_err, jac_err)
            };
            let (x_single, jac_single) = run(&single());
            let (_, jac_double) = run(&FaerBackend::default());
            let what = format!("{name}, dx/d{}", param.name());
            assert!(jac_double < 1e-8, "{what}: f64 error {jac_double:e}");
            assert!(jac_single < 1e-4, "{what}: f32 error {jac_single:e}");
            assert!(
                jac_single > 1e-12,
                "{what}: f32 error {jac_single:e}, is single precision in use?"
            );
            assert!(x_single < 1e-4, "{what}: x off clarabel's by {x_single:e}");
        }
    }
}

/// An SPD matrix with condition number about 10, a constraint block and a right-hand side.
fn small_system(n: usize, r: usize) -> (Mat<f64>, Mat<f64>, Mat<f64>) {
    let w = Mat::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.5);
    let mut h = w.transpose() * &w;
    for i in 0..n {
        h[(i, i)] += 1.0;
    }
    let c = Mat::from_fn(r, n, |i, j| ((i * 5 + j * 2) % 7) as f64 / 7.0 - 0.4);
    let y = Mat::from_fn(r, 2, |i, j| (i + 3 * j) as f64 / 5.0 - 1.0);
    (h, c, y)
}

/// The largest entry of `|a - b|` over the largest of `|b|`.
fn relative(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let diff = (a - b).norm_max();
    diff / b.norm_max()
}

#[test]
fn single_precision_factor_operations_match_double() {
    let (n, r) = (40, 15);
    let (h, c, y) = small_system(n, r);
    let factor = |precision| {
        DenseCholesky::penalized_in(h.as_ref(), &[c.as_ref()], 0.5, Par::Seq, precision)
            .expect("positive definite")
    };
    let (double, single) = (factor(Precision::Double), factor(Precision::Single));
    assert_eq!(
        (double.precision(), single.precision()),
        (Precision::Double, Precision::Single)
    );
    let check = |what: &str, got: &Mat<f64>, want: &Mat<f64>| {
        let err = relative(got, want);
        assert!(err < 1e-5 && err > 1e-12, "{what}: {err:e}");
    };
    let ((m_d, w_d), (m_s, w_s)) = (
        double.gram_inverse_with_half(c.as_ref(), Par::Seq),
        single.gram_inverse_with_half(c.as_ref(), Par::Seq),
    );
    check("M", &m_s, &m_d);
    check("W", &w_s, &w_d);
    let (x_d, x_s) = (
        double.half_product_solve(w_d.as_ref(), y.as_ref(), -2.0, Par::Seq),
        single.half_product_solve(w_s.as_ref(), y.as_ref(), -2.0, Par::Seq),
    );
    check("L^-T W y", &x_s, &x_d);
    // H^-1 C' y by a plain solve, against the product through the half
    let mut k_y = c.transpose() * &y * -2.0;
    double.solve_in_place(k_y.as_mut(), Par::Seq);
    assert!(relative(&x_d, &k_y) < 1e-12);
    let mut solved = c.transpose() * &y;
    let mut solved_single = solved.clone();
    double.solve_in_place(solved.as_mut(), Par::Seq);
    single.solve_in_place(solved_single.as_mut(), Par::Seq);
    check("H^-1 rhs", &solved_single, &solved);
    let mut lt = c.transpose() * &y;
    let mut lt_single = lt.clone();
    double.solve_lower_transposed_in_place(lt.as_mut(), Par::Seq);
    single.solve_lower_transposed_in_place(lt_single.as_mut(), Par::Seq);
    check("L^-T rhs", &lt_single, &lt);
}
