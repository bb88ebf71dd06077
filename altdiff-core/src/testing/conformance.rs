//! The conformance suite, written once and run by every backend through
//! [`conformance_tests!`](crate::conformance_tests).
//!
//! Each function panics with a message on the first failed check; the macro wraps each in a
//! `#[test]`. Backends must compute in `f64`.

use rand::{Rng, SeedableRng, rngs::StdRng};

pub use crate::testing::differentiability_checks::derivatives_are_certified;
pub use crate::testing::trust_checks::{
    batch_defaults_on_user_data, big_m_bound_changes_nothing, extreme_rows_are_normalized,
    lps_and_non_unique_solutions, user_data_is_solved_right,
};

use crate::testing::{
    Generator, RefBackend, active_set, badly_scaled, central_diff, central_diff_along,
    clarabel_solve, dual_active_set, kkt_jacobian, kkt_jvp, masked_qp, perturbed, random_qp,
    rel_diff, solve_host, tiny_qp, zero_direction,
};
use crate::{
    Accum, AltDiff, Anderson, Directions, Error, Field, HostMatrix, HostQp, HostSolution,
    IterationSpace, LinAlg, Method, Param, Qp, QpDims, QpParams, QpProblem, Settings, Status,
    StoppingRule, Tape, Trans, VjpMode, Wrt,
};

/// Runs the whole suite as `#[test]`s in a module `altdiff_conformance`, for the backend
/// built by the expression (evaluated once per test). `except [names]` leaves tests out
/// (say why where it is used).
///
/// # Example
/// ```ignore
/// // tests/conformance.rs of a backend crate (with altdiff-core's feature `testing`)
/// altdiff_core::conformance_tests!(altdiff_faer::FaerBackend::default());
/// altdiff_core::conformance_tests!(my_backend(), except [scaling_keeps_derivatives_exact]);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::conformance_tests!($backend, except []);
    };
    ($backend:expr, except [$($skip:ident),* $(,)?]) => {
        $crate::conformance_tests!(@dollar ($) $backend; [$($skip),*]);
    };
    // `$d` is a `$` for the inner macro, whose literal rules drop the skipped names
    (@dollar ($d:tt) $backend:expr; [$($skip:ident),*]) => {
        mod altdiff_conformance {
            #[allow(unused_imports)]
            use super::*;
            macro_rules! conformance_test {
                $( ($skip) => {}; )*
                ($d name:ident) => {
                    #[test]
                    fn $d name() {
                        $crate::testing::conformance::$d name(&$backend);
                    }
                };
            }
            conformance_test!(ops_match_reference);
            conformance_test!(known_iterates);
            conformance_test!(tiny_limit_is_exact);
            conformance_test!(unconstrained_is_exact);
            conformance_test!(jacobians_match_kkt);
            conformance_test!(jacobians_match_finite_differences);
            conformance_test!(solutions_match_clarabel);
            conformance_test!(limit_does_not_depend_on_rho);
            conformance_test!(jvp_matches_finite_differences_and_kkt);
            conformance_test!(matrix_jacobians_match_kkt);
            conformance_test!(vjp_unrolled_is_the_adjoint_of_forward);
            conformance_test!(vjp_implicit_matches_kkt_and_closed_forms);
            conformance_test!(kkt_method_matches_altdiff);
            conformance_test!(degenerate_problem_reports_weakly_active);
            conformance_test!(dual_space_matches_primal);
            conformance_test!(infeasible_and_unbounded_are_certified);
            conformance_test!(adaptive_rho_keeps_derivatives_exact);
            conformance_test!(over_relaxation_keeps_derivatives_exact);
            conformance_test!(limit_solve_matches_kkt_and_clarabel);
            conformance_test!(lp_gradients_are_exact);
            conformance_test!(scaling_keeps_derivatives_exact);
            conformance_test!(agrees_with_reference);
            conformance_test!(stopping_rules_behave);
            conformance_test!(warm_start_helps);
            conformance_test!(bad_inputs_are_errors);
            conformance_test!(batch_matches_single_solves);
            conformance_test!(batch_elements_are_independent);
            conformance_test!(batch_of_scaled_and_different_problems);
            conformance_test!(krylov_adjoint_matches_repetition);
            conformance_test!(anderson_keeps_the_fixed_point);
            conformance_test!(user_data_is_solved_right);
            conformance_test!(big_m_bound_changes_nothing);
            conformance_test!(extreme_rows_are_normalized);
            conformance_test!(derivatives_are_certified);
            conformance_test!(lps_and_non_unique_solutions);
            conformance_test!(batch_defaults_on_user_data);
        }
    };
}

type F<B> = <B as LinAlg>::Real;

fn host<B: LinAlg<Real = f64>>(be: &B, m: &B::Mat) -> Vec<f64> {
    be.to_col_major(m).expect("to_col_major")
}

fn assert_close(what: &str, got: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(got.len(), expected.len(), "{what}: lengths differ");
    let scale = expected.iter().fold(1.0_f64, |s, v| s.max(v.abs()));
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (g - e).abs() <= tol * scale,
            "{what}[{i}]: got {g}, expected {e} (tol {tol})"
        );
    }
}

fn random_block(rng: &mut StdRng, r: usize, c: usize) -> Vec<f64> {
    (0..r * c).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Every operation equals the reference backend's on edge shapes (0 rows, 0 columns, 1 x 1,
/// several columns), both [`Trans`] and both [`Accum`] values.
pub fn ops_match_reference<B: LinAlg<Real = f64>>(be: &B) {
    let rf = RefBackend;
    let mut rng = StdRng::seed_from_u64(11);
    // creation and transfer
    let data = random_block(&mut rng, 3, 2);
    let m = be.mat_from_col_major(3, 2, &data).expect("from_col_major");
    assert_eq!(be.shape(&m), (3, 2));
    assert_eq!(host(be, &m), data, "from/to_col_major roundtrip");
    assert_eq!(host(be, &be.zeros(2, 3).expect("zeros")), vec![0.0; 6]);
    assert_eq!(be.shape(&be.zeros(0, 4).expect("zeros")), (0, 4));
    let op = be
        .op_from_col_major(3, 2, &data)
        .expect("op_from_col_major");
    assert_eq!(be.op_shape(&op), (3, 2));
    assert_eq!(be.op_to_col_major(&op).expect("op_to_col_major"), data);
    let moved = be.op_from_mat(m.clone()).expect("op_from_mat");
    assert_eq!(be.op_shape(&moved), (3, 2));
    assert_eq!(be.op_to_col_major(&moved).unwrap(), data, "op_from_mat");
    // apply
    for (r, c) in [(0, 3), (3, 0), (1, 1), (4, 3), (3, 4)] {
        for k in [0, 1, 3] {
            for trans in [Trans::No, Trans::Yes] {
                for accum in [Accum::Replace, Accum::Add] {
                    let (out, inner) = if trans == Trans::No { (r, c) } else { (c, r) };
                    let op_data = random_block(&mut rng, r, c);
                    let rhs_data = random_block(&mut rng, inner, k);
                    let dst_data = random_block(&mut rng, out, k);
                    let case = ApplyCase {
                        shape: (r, c),
                        k,
                        trans,
                        accum,
                        op: &op_data,
                        rhs: &rhs_data,
                        dst: &dst_data,
                    };
                    let (got, expected) = (case.run(be), case.run(&rf));
                    assert_close(
                        &format!("apply {r}x{c} k={k} {trans:?} {accum:?}"),
                        &got,
                        &expected,
                        1e-12,
                    );
                }
            }
        }
    }
    // gemm_nt: outer products of blocks, including empty inner dimension
    for (r, c, k) in [(3, 4, 1), (2, 5, 3), (3, 2, 0), (0, 2, 1)] {
        for accum in [Accum::Replace, Accum::Add] {
            let (lhs, rhs, dst) = (
                random_block(&mut rng, r, k),
                random_block(&mut rng, c, k),
                random_block(&mut rng, r, c),
            );
            let run = |be_lhs: &[f64]| {
                let mut d = be.mat_from_col_major(r, c, &dst).unwrap();
                let l = be.mat_from_col_major(r, k, be_lhs).unwrap();
                let x = be.mat_from_col_major(c, k, &rhs).unwrap();
                be.gemm_nt(&mut d, accum, &l, &x, -1.5).unwrap();
                host(be, &d)
            };
            let expected: Vec<f64> = (0..r * c)
                .map(|idx| {
                    let (i, j) = (idx % r.max(1), idx / r.max(1));
                    let prod: f64 = (0..k).map(|l| lhs[l * r + i] * rhs[l * c + j]).sum();
                    -1.5 * prod + if accum == Accum::Add { dst[idx] } else { 0.0 }
                })
                .collect();
            assert_close(
                &format!("gemm_nt {r}x{c} k={k} {accum:?}"),
                &run(&lhs),
                &expected,
                1e-12,
            );
        }
    }
    // symmetric_product_tn: lhs' rhs with rhs = lhs T (T symmetric), including k = 0 rows
    for (k, n) in [(3, 4), (1, 1), (0, 2), (5, 3)] {
        for accum in [Accum::Replace, Accum::Add] {
            let lhs = random_block(&mut rng, k, n);
            let t = random_block(&mut rng, k, k);
            let rhs: Vec<f64> = (0..k * n)
                .map(|idx| {
                    let (i, j) = (idx % k, idx / k);
                    (0..k)
                        .map(|l| (t[l * k + i] + t[i * k + l]) * lhs[j * k + l])
                        .sum()
                })
                .collect();
            let sym = random_block(&mut rng, n, n);
            let dst: Vec<f64> = (0..n * n)
                .map(|idx| sym[idx] + sym[(idx % n) * n + idx / n])
                .collect();
            let mut d = be.mat_from_col_major(n, n, &dst).unwrap();
            let (l, x) = (
                be.mat_from_col_major(k, n, &lhs).unwrap(),
                be.mat_from_col_major(k, n, &rhs).unwrap(),
            );
            be.symmetric_product_tn(&mut d, accum, &l, &x, -0.5)
                .unwrap();
            let expected: Vec<f64> = (0..n * n)
                .map(|idx| {
                    let (i, j) = (idx % n, idx / n);
                    let prod: f64 = (0..k).map(|l| lhs[i * k + l] * rhs[j * k + l]).sum();
                    -0.5 * prod + if accum == Accum::Add { dst[idx] } else { 0.0 }
                })
                .collect();
            assert_close(
                &format!("symmetric_product_tn k={k} n={n} {accum:?}"),
                &host(be, &d),
                &expected,
                1e-12,
            );
        }
    }
    // slack_dual_update: the same values as the reference's chained default, bit for bit
    for (r, k, mask_cols) in [(5, 3, 1), (4, 2, 2), (0, 2, 1), (3, 0, 1)] {
        for project in [true, false] {
            let mut data: Vec<Vec<f64>> = (0..4).map(|_| random_block(&mut rng, r, k)).collect();
            // exact zeros in the mask and in the value test the strict rule and the clip
            let mut mask = random_block(&mut rng, r, mask_cols);
            if let Some(first) = mask.first_mut() {
                *first = 0.0;
            }
            if r > 1 && k > 0 {
                data[2][1] = 0.0;
                data[3][1] = 0.0;
                data[0][1] = 0.0;
            }
            let [mut s, mut y, cx, bh] =
                [0, 1, 2, 3].map(|i| be.mat_from_col_major(r, k, &data[i]).unwrap());
            let m = be.mat_from_col_major(r, mask_cols, &mask).unwrap();
            be.slack_dual_update(&mut s, &mut y, &cx, &bh, &m, project, 1.7)
                .unwrap();
            let got = [host(be, &s), host(be, &y)].concat();
            // the reference runs the chained default
            let [mut s, mut y, cx, bh] =
                [0, 1, 2, 3].map(|i| rf.mat_from_col_major(r, k, &data[i]).unwrap());
            let m = rf.mat_from_col_major(r, mask_cols, &mask).unwrap();
            rf.slack_dual_update(&mut s, &mut y, &cx, &bh, &m, project, 1.7)
                .unwrap();
            let expected = [rf.to_col_major(&s).unwrap(), rf.to_col_major(&y).unwrap()].concat();
            assert!(
                got.iter()
                    .zip(&expected)
                    .all(|(g, e)| g.to_bits() == e.to_bits()),
                "slack_dual_update {r}x{k} mask columns {mask_cols} project {project}: {got:?} != {expected:?}"
            );
        }
    }
    // factor and solve, with empty and non-empty constraint blocks
    for (n, p, m, k) in [(1, 0, 0, 1), (5, 2, 0, 3), (5, 0, 3, 1), (6, 2, 3, 4)] {
        let w = random_block(&mut rng, n, n);
        let mut pm = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                pm[j * n + i] = (0..n).map(|l| w[i * n + l] * w[j * n + l]).sum::<f64>()
                    + if i == j { 0.5 } else { 0.0 };
            }
        }
        let a = random_block(&mut rng, p, n);
        let g = random_block(&mut rng, m, n);
        let rhs = random_block(&mut rng, n, k);
        let f = be
            .factor(
                &be.op_from_col_major(n, n, &pm).unwrap(),
                &be.op_from_col_major(p, n, &a).unwrap(),
                &be.op_from_col_major(m, n, &g).unwrap(),
                1.3,
            )
            .expect("factor");
        let mut x = be.mat_from_col_major(n, k, &rhs).unwrap();
        be.solve_in_place(&f, &mut x).expect("solve");
        let rff = rf
            .factor(
                &rf.op_from_col_major(n, n, &pm).unwrap(),
                &rf.op_from_col_major(p, n, &a).unwrap(),
                &rf.op_from_col_major(m, n, &g).unwrap(),
                1.3,
            )
            .unwrap();
        let mut xr = rf.mat_from_col_major(n, k, &rhs).unwrap();
        rf.solve_in_place(&rff, &mut xr).unwrap();
        assert_close(
            &format!("solve n={n} p={p} m={m} k={k}"),
            &host(be, &x),
            &rf.to_col_major(&xr).unwrap(),
            1e-10,
        );
        split_solves_match_reference(be, &mut rng, (n, k), &pm, (&a, &g));
        // the small factorizations: borrowed and owned alike at full precision, the coarse
        // one in the precision of H's factor
        let mut xr = rf.mat_from_col_major(n, k, &rhs).unwrap();
        let pf = rf
            .cholesky(&rf.op_from_col_major(n, n, &pm).unwrap())
            .unwrap();
        rf.solve_in_place(&pf, &mut xr).unwrap();
        let expected = rf.to_col_major(&xr).unwrap();
        for how in ["borrowed", "owned", "coarse"] {
            let op = be.op_from_col_major(n, n, &pm).unwrap();
            let (f, tol) = match how {
                "borrowed" => (be.cholesky(&op), 1e-12),
                "owned" => (be.cholesky_owned(op), 1e-12),
                _ => (
                    be.cholesky_owned_coarse(op),
                    1e4 * be.factor_epsilon().max(1e-16),
                ),
            };
            let f = f.expect("cholesky");
            let mut x = be.mat_from_col_major(n, k, &rhs).unwrap();
            be.solve_in_place(&f, &mut x).unwrap();
            assert_close(
                &format!("cholesky ({how}) n={n} k={k}"),
                &host(be, &x),
                &expected,
                tol,
            );
        }
        schur_cholesky_matches_reference(be, &mut rng, (n, k), &pm, &rhs);
    }
    let neg = be.op_from_col_major(2, 2, &[-1.0, 0.0, 0.0, -1.0]).unwrap();
    let none = be.op_from_col_major(0, 2, &[]).unwrap();
    assert!(
        matches!(
            be.factor(&neg, &none, &none, 1.0),
            Err(Error::NotPositiveDefinite { .. })
        ),
        "factor of -I must fail with NotPositiveDefinite"
    );
    assert!(!be.is_psd_with_shift(&neg, 1e-8).unwrap(), "-I is not PSD");
    assert!(
        matches!(
            be.cholesky_owned(neg.clone()),
            Err(Error::NotPositiveDefinite { .. })
        ),
        "cholesky_owned of -I must fail with NotPositiveDefinite"
    );
    assert!(
        matches!(
            be.cholesky_owned_coarse(neg.clone()),
            Err(Error::NotPositiveDefinite { .. })
        ),
        "cholesky_owned_coarse of -I must fail with NotPositiveDefinite"
    );
    // axpby: beta = 0 does not read y
    let x = be.mat_from_col_major(2, 2, &[1.0, -2.0, 3.0, 0.5]).unwrap();
    let mut y = be.mat_from_col_major(2, 2, &[f64::NAN; 4]).unwrap();
    be.axpby(2.0, &x, 0.0, &mut y).unwrap();
    assert_eq!(
        host(be, &y),
        vec![2.0, -4.0, 6.0, 1.0],
        "axpby with beta = 0 must not read y"
    );
    be.axpby(1.0, &x, -1.0, &mut y).unwrap();
    assert_eq!(host(be, &y), vec![-1.0, 2.0, -3.0, -0.5], "axpby");
    be.copy_from(&mut y, &x).unwrap();
    assert_eq!(host(be, &y), host(be, &x), "copy_from");
    // cone ops
    let mut v = be.mat_from_col_major(4, 1, &[1.0, -2.0, 0.0, 3.0]).unwrap();
    be.proj_nonneg(&mut v).unwrap();
    assert_eq!(host(be, &v), vec![1.0, 0.0, 0.0, 3.0], "proj_nonneg");
    let at = be.mat_from_col_major(3, 1, &[1.0, 0.0, -1.0]).unwrap();
    let mut j = be
        .mat_from_col_major(3, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .unwrap();
    be.dproj_nonneg(&at, &mut j).unwrap();
    assert_eq!(
        host(be, &j),
        vec![1.0, 0.0, 0.0, 4.0, 0.0, 0.0],
        "dproj_nonneg with one mask column (strict: 0 is masked)"
    );
    let at2 = be.mat_from_col_major(2, 2, &[1.0, 0.0, 0.0, 2.0]).unwrap();
    let mut j2 = be.mat_from_col_major(2, 2, &[1.0, 2.0, 3.0, 4.0]).unwrap();
    be.dproj_nonneg(&at2, &mut j2).unwrap();
    assert_eq!(
        host(be, &j2),
        vec![1.0, 0.0, 0.0, 4.0],
        "dproj_nonneg column by column"
    );
    // reductions
    assert_eq!(
        be.norm_inf(&be.mat_from_col_major(3, 1, &[1.0, -4.0, 2.0]).unwrap())
            .unwrap()
            .to_bits(),
        4.0_f64.to_bits()
    );
    assert_eq!(
        be.norm_inf(&be.zeros(0, 1).unwrap()).unwrap().to_bits(),
        0.0_f64.to_bits(),
        "norm of empty"
    );
    assert!(
        be.norm_inf(&be.mat_from_col_major(3, 1, &[1.0, f64::NAN, 2.0]).unwrap())
            .unwrap()
            .is_nan(),
        "norm_inf must propagate NaN"
    );
    let d = be
        .dot(
            &x,
            &be.mat_from_col_major(2, 2, &[1.0, 1.0, 1.0, 2.0]).unwrap(),
        )
        .unwrap();
    assert!((d - 3.0).abs() < 1e-15, "dot: {d}");
    diagonal_scalings_match_reference(be, &mut rng);
    outer_gradients_match_reference(be, &mut rng);
}

/// `grad_outer` (the closed forms' gradients, written at once) equals the reference's zeros
/// plus `grad_add_outer`: pairs of vector terms, one term, blocks of two columns, empty shapes.
fn outer_gradients_match_reference<B: LinAlg<Real = f64>>(be: &B, rng: &mut StdRng) {
    let rf = RefBackend;
    for (r, c) in [(3, 4), (4, 4), (1, 1), (0, 2), (2, 0)] {
        for (terms, k) in [(2, 1), (1, 1), (2, 2)] {
            let op = random_block(rng, r, c);
            let blocks: Vec<OuterTerm> = (0..terms)
                .map(|t| {
                    let (l, rr) = (random_block(rng, r, k), random_block(rng, c, k));
                    (0.5 - t as f64, l, rr)
                })
                .collect();
            let mats = outer_terms(be, (r, c, k), &blocks);
            let refs: Vec<_> = mats.iter().map(|(a, l, rr)| (*a, l, rr)).collect();
            let got = be
                .grad_outer(&be.op_from_col_major(r, c, &op).unwrap(), &refs)
                .expect("grad_outer");
            let mut expected = rf
                .grad_zeros(&rf.op_from_col_major(r, c, &op).unwrap())
                .unwrap();
            let rmats = outer_terms(&rf, (r, c, k), &blocks);
            let rrefs: Vec<_> = rmats.iter().map(|(a, l, rr)| (*a, l, rr)).collect();
            rf.grad_add_outer(&mut expected, &rrefs).unwrap();
            let got = be.grad_to_host(&got, crate::Field::A).unwrap();
            let expected = rf.grad_to_host(&expected, crate::Field::A).unwrap();
            assert_close(
                &format!("grad_outer {r}x{c}, {terms} terms of {k} columns"),
                &got.col_major(),
                &expected.col_major(),
                1e-14,
            );
        }
    }
}

/// A term `alpha l r'` of an outer-product gradient, its blocks column-major on the host.
type OuterTerm = (f64, Vec<f64>, Vec<f64>);

/// The terms on backend `be`: `l` is `rows x k`, `r` is `cols x k`.
fn outer_terms<L: LinAlg<Real = f64>>(
    be: &L,
    (rows, cols, k): (usize, usize, usize),
    terms: &[OuterTerm],
) -> Vec<(f64, L::Mat, L::Mat)> {
    terms
        .iter()
        .map(|(a, l, r)| {
            let lhs = be.mat_from_col_major(rows, k, l).unwrap();
            (*a, lhs, be.mat_from_col_major(cols, k, r).unwrap())
        })
        .collect()
}

/// `solve_split` / `solve_join` equal the reference's `C H^-1 f` and `H^-1 (f - C'y)` for
/// a factor that kept what `gram_inverse_keeping` formed `M` from and for one that did not,
/// and `gram_inverse_keeping`'s `M` equals the reference's (to the factor's precision).
fn split_solves_match_reference<B: LinAlg<Real = f64>>(
    be: &B,
    rng: &mut StdRng,
    (n, k): (usize, usize),
    pm: &[f64],
    (a, g): (&[f64], &[f64]),
) {
    let rf = RefBackend;
    let (p, m) = (a.len() / n, g.len() / n);
    let r = p + m;
    let c: Vec<f64> = (0..n)
        .flat_map(|j| a[j * p..(j + 1) * p].iter().chain(&g[j * m..(j + 1) * m]))
        .copied()
        .collect();
    let (f, y) = (random_block(rng, n, k), random_block(rng, r, k));
    let rho = 1.3;
    let factor_of = |be: &B| {
        be.factor(
            &be.op_from_col_major(n, n, pm).unwrap(),
            &be.op_from_col_major(p, n, a).unwrap(),
            &be.op_from_col_major(m, n, g).unwrap(),
            rho,
        )
        .expect("factor")
    };
    let rff = rf
        .factor(
            &rf.op_from_col_major(n, n, pm).unwrap(),
            &rf.op_from_col_major(p, n, a).unwrap(),
            &rf.op_from_col_major(m, n, g).unwrap(),
            rho,
        )
        .unwrap();
    let rc = rf.op_from_col_major(r, n, &c).unwrap();
    let (m_ref, _) = rf.gram_inverse(&rff, &rc, false).unwrap();
    let (chf_ref, t_ref) = rf
        .solve_split(&rff, &rc, &rf.mat_from_col_major(n, k, &f).unwrap())
        .unwrap();
    let x_ref = rf
        .solve_join(&rff, &rc, t_ref, &rf.mat_from_col_major(r, k, &y).unwrap())
        .unwrap();
    let tol = 1e4 * be.factor_epsilon().max(1e-16);
    let bc = be.op_from_col_major(r, n, &c).unwrap();
    let mut kept = factor_of(be);
    let m_kept = be
        .gram_inverse_keeping(&mut kept, &bc)
        .expect("gram_inverse_keeping");
    assert_close(
        &format!("gram_inverse_keeping n={n} r={r}"),
        &host(be, &m_kept),
        &rf.to_col_major(&m_ref).unwrap(),
        tol,
    );
    for (how, factor) in [("kept", kept), ("plain", factor_of(be))] {
        let (chf, t) = be
            .solve_split(&factor, &bc, &be.mat_from_col_major(n, k, &f).unwrap())
            .expect("solve_split");
        assert_close(
            &format!("solve_split ({how}) n={n} r={r} k={k}"),
            &host(be, &chf),
            &rf.to_col_major(&chf_ref).unwrap(),
            tol,
        );
        let x = be
            .solve_join(&factor, &bc, t, &be.mat_from_col_major(r, k, &y).unwrap())
            .expect("solve_join");
        assert_close(
            &format!("solve_join ({how}) n={n} r={r} k={k}"),
            &host(be, &x),
            &rf.to_col_major(&x_ref).unwrap(),
            tol,
        );
    }
}

/// `cholesky_schur` of `0.25 I + 0.5 B` (`B = pm`) plus `X T^-1 X'` (`T` positive definite
/// of `i` rows, `X` random; the term absent for `i = 0`) solves like the reference's
/// Cholesky of the sum formed densely, at full precision and at the factor's (`coarse`, with
/// a coarse `T`); `shift I - B` factors for `B = I` when `shift > 1` and fails below.
fn schur_cholesky_matches_reference<B: LinAlg<Real = f64>>(
    be: &B,
    rng: &mut StdRng,
    (n, k): (usize, usize),
    pm: &[f64],
    rhs: &[f64],
) {
    let rf = RefBackend;
    for i in [0, 1, 3] {
        let w = random_block(rng, i, i);
        let t: Vec<f64> = (0..i * i)
            .map(|e| {
                let (r, c) = (e % i, e / i);
                (0..i).map(|l| w[r * i + l] * w[c * i + l]).sum::<f64>()
                    + if r == c { 1.0 } else { 0.0 }
            })
            .collect();
        let x = random_block(rng, n, i);
        // B + X T^-1 X' on the host: T^-1 X' by the reference
        let t_ref = rf
            .cholesky(&rf.op_from_col_major(i, i, &t).unwrap())
            .unwrap();
        let mut tix = rf
            .mat_from_col_major(i, n, &crate::kernels::transpose(&x, n))
            .unwrap();
        rf.solve_in_place(&t_ref, &mut tix).unwrap();
        let tix = rf.to_col_major(&tix).unwrap();
        let s: Vec<f64> = (0..n * n)
            .map(|e| {
                let (r, c) = (e % n, e / n);
                let shift = if r == c { 0.25 } else { 0.0 };
                shift + 0.5 * pm[e] + (0..i).map(|l| x[l * n + r] * tix[c * i + l]).sum::<f64>()
            })
            .collect();
        let s_ref = rf
            .cholesky(&rf.op_from_col_major(n, n, &s).unwrap())
            .unwrap();
        let mut expected = rf.mat_from_col_major(n, k, rhs).unwrap();
        rf.solve_in_place(&s_ref, &mut expected).unwrap();
        let expected = rf.to_col_major(&expected).unwrap();
        for coarse in [false, true] {
            let t_op = be.op_from_col_major(i, i, &t).unwrap();
            let t_factor = if coarse {
                be.cholesky_owned_coarse(t_op)
            } else {
                be.cholesky_owned(t_op)
            }
            .expect("cholesky of T");
            let x_op = be.op_from_col_major(n, i, &x).unwrap();
            let schur = (i > 0).then_some((&t_factor, &x_op));
            let f = be
                .cholesky_schur(n, pm, (0.5, 0.25), schur, coarse)
                .expect("cholesky_schur");
            let mut got = be.mat_from_col_major(n, k, rhs).unwrap();
            be.solve_in_place(&f, &mut got).unwrap();
            let tol = if coarse {
                1e4 * be.factor_epsilon().max(1e-16)
            } else {
                1e-10
            };
            assert_close(
                &format!("cholesky_schur n={n} i={i} k={k} coarse={coarse}"),
                &host(be, &got),
                &expected,
                tol,
            );
            let identity = [1.0, 0.0, 0.0, 1.0];
            assert!(
                be.cholesky_schur(2, &identity, (-1.0, 1.5), None, coarse)
                    .is_ok(),
                "cholesky_schur of 0.5 I (coarse={coarse})"
            );
            assert!(
                matches!(
                    be.cholesky_schur(2, &identity, (-1.0, 0.5), None, coarse),
                    Err(Error::NotPositiveDefinite { .. })
                ),
                "cholesky_schur of -0.5 I (coarse={coarse}) must fail"
            );
        }
    }
}

/// `scale_rows_cols`, `op_scaled`, `op_abs_max`, `op_abs_sums` and `op_stack_rows`
/// (provided methods a backend may override) equal the reference's, empty shapes included.
fn diagonal_scalings_match_reference<B: LinAlg<Real = f64>>(be: &B, rng: &mut StdRng) {
    let rf = RefBackend;
    for (r, c) in [(3, 4), (0, 2), (2, 0), (1, 1)] {
        let data = random_block(rng, r, c);
        let rows: Vec<f64> = (0..r).map(|i| 0.5 + i as f64).collect();
        let cols: Vec<f64> = (0..c).map(|j| 2.0 - 0.3 * j as f64).collect();
        let what = format!("{r}x{c}");
        let op = be.op_from_col_major(r, c, &data).unwrap();
        let op_ref = rf.op_from_col_major(r, c, &data).unwrap();
        let (got_rows, got_cols) = be.op_abs_max(&op, &rows, &cols).unwrap();
        let (ref_rows, ref_cols) = rf.op_abs_max(&op_ref, &rows, &cols).unwrap();
        assert_close(
            &format!("op_abs_max rows {what}"),
            &got_rows,
            &ref_rows,
            1e-15,
        );
        assert_close(
            &format!("op_abs_max cols {what}"),
            &got_cols,
            &ref_cols,
            1e-15,
        );
        let scaled = be.op_scaled(&op, &rows, &cols).unwrap();
        let scaled_ref = rf.op_scaled(&op_ref, &rows, &cols).unwrap();
        assert_close(
            &format!("op_scaled {what}"),
            &be.op_to_col_major(&scaled).unwrap(),
            &rf.op_to_col_major(&scaled_ref).unwrap(),
            1e-15,
        );
        let (got_rows, got_cols) = be.op_abs_sums(&op).unwrap();
        let (ref_rows, ref_cols) = rf.op_abs_sums(&op_ref).unwrap();
        assert_close(
            &format!("op_abs_sums rows {what}"),
            &got_rows,
            &ref_rows,
            1e-14,
        );
        assert_close(
            &format!("op_abs_sums cols {what}"),
            &got_cols,
            &ref_cols,
            1e-14,
        );
        let lower = random_block(rng, 2, c);
        let stacked = be
            .op_stack_rows(&op, &be.op_from_col_major(2, c, &lower).unwrap())
            .unwrap();
        let stacked_ref = rf
            .op_stack_rows(&op_ref, &rf.op_from_col_major(2, c, &lower).unwrap())
            .unwrap();
        assert_eq!(be.op_shape(&stacked), (r + 2, c), "op_stack_rows {what}");
        assert_close(
            &format!("op_stack_rows {what}"),
            &be.op_to_col_major(&stacked).unwrap(),
            &rf.op_to_col_major(&stacked_ref).unwrap(),
            0.0,
        );
        let wrong = be.op_from_col_major(1, c + 1, &vec![0.0; c + 1]).unwrap();
        assert!(
            matches!(be.op_stack_rows(&op, &wrong), Err(Error::Dimension { .. })),
            "op_stack_rows {what}: column counts differ"
        );
        let mut m = be.mat_from_col_major(r, c, &data).unwrap();
        be.scale_rows_cols(&mut m, Some(&rows), None).unwrap();
        be.scale_rows_cols(&mut m, None, Some(&cols)).unwrap();
        assert_close(
            &format!("scale_rows_cols {what}"),
            &host(be, &m),
            &rf.op_to_col_major(&scaled_ref).unwrap(),
            1e-15,
        );
    }
}

/// One `apply` call on given data, to run on two backends.
struct ApplyCase<'a> {
    shape: (usize, usize),
    k: usize,
    trans: Trans,
    accum: Accum,
    op: &'a [f64],
    rhs: &'a [f64],
    dst: &'a [f64],
}

impl ApplyCase<'_> {
    fn run<B: LinAlg<Real = f64>>(&self, be: &B) -> Vec<f64> {
        let (r, c) = self.shape;
        let (out, inner) = if self.trans == Trans::No {
            (r, c)
        } else {
            (c, r)
        };
        let op = be.op_from_col_major(r, c, self.op).unwrap();
        let x = be.mat_from_col_major(inner, self.k, self.rhs).unwrap();
        let mut d = be.mat_from_col_major(out, self.k, self.dst).unwrap();
        be.apply(&mut d, self.accum, &op, self.trans, &x, 0.7)
            .unwrap();
        host(be, &d)
    }
}

fn settings_fixed(k: usize) -> Settings {
    Settings::default()
        .with_stopping(StoppingRule::Fixed(k))
        .with_wrt(Wrt::vectors())
}

fn tight() -> Settings {
    Settings::default()
        .with_stopping(StoppingRule::Residual {
            eps_abs: 1e-12,
            eps_rel: 1e-12,
        })
        .with_max_iter(200_000)
        .with_wrt(Wrt::vectors())
}

fn solve<B: LinAlg<Real = f64>>(be: &B, qp: &HostQp, settings: Settings) -> HostSolution {
    solve_host(be, qp, settings).expect("solve")
}

fn column(sol: &HostSolution, param: Param) -> Vec<f64> {
    sol.jacobian(param)
        .expect("jacobian requested")
        .col_major()
        .to_vec()
}

/// Gradients of all six parameters (in [`Param::ALL`] order) equal the expected ones to
/// `tol` (relative, Frobenius).
fn assert_grads_agree(what: &str, got: &[HostMatrix], expected: &[HostMatrix], tol: f64) {
    for ((param, e), g) in Param::ALL.iter().zip(expected).zip(got) {
        let err = rel_diff(g, &on_pattern_of(e, g));
        assert!(err < tol, "{what} wrt {}: differs by {err:e}", param.name());
    }
}

/// `expected` restricted to the pattern of `like` when `like` is sparse (a sparse backend's
/// gradient wrt a matrix lives on the matrix's pattern).
fn on_pattern_of(expected: &HostMatrix, like: &HostMatrix) -> HostMatrix {
    if like.is_sparse() {
        let mut restricted = like.clone();
        restricted.map_entries(|i, j, _| expected.get(i, j));
        restricted
    } else {
        expected.clone()
    }
}

/// The Jacobians wrt `params` of `got` equal those of `expected` to `tol` (relative,
/// Frobenius).
fn assert_jacobians_agree(
    what: &str,
    params: &[Param],
    got: &HostSolution,
    expected: &HostSolution,
    tol: f64,
) {
    for &param in params {
        let err = rel_diff(
            got.jacobian(param).expect("requested"),
            expected.jacobian(param).expect("requested"),
        );
        assert!(err < tol, "{what}: dx/d{} differs by {err:e}", param.name());
    }
}

/// The JVP `got` along `dir` equals the KKT oracle's at `sol` (its dual active set) to 1e-8.
fn assert_jvp_is_kkt(what: &str, qp: &HostQp, sol: &HostSolution, dir: &HostQp, got: &[f64]) {
    let active = dual_active_set(qp, &sol.x, &sol.nu);
    let exact = kkt_jvp(qp, &active, [&sol.x, &sol.lam, &sol.nu], dir).expect("non-degenerate");
    assert_close(&format!("{what} vs KKT"), got, &exact, 1e-8);
}

/// The limit solve (`Settings::limit`) on `on`, in the dual space it needs (a sparse backend
/// does not choose that space by itself).
fn limited(settings: Settings, on: bool) -> Settings {
    if on {
        settings
            .with_limit(true)
            .with_iteration(IterationSpace::Dual)
    } else {
        settings.with_limit(false)
    }
}

/// `sol` is solved, in no more iterations than `baseline`, with `x` within 1e-7 of
/// `x_oracle`.
fn assert_solved_sooner(what: &str, sol: &HostSolution, baseline: &HostSolution, x_oracle: &[f64]) {
    assert_eq!(sol.status, Status::Solved, "{what}");
    assert!(
        sol.iterations <= baseline.iterations,
        "{what}: {} iterations, {} without",
        sol.iterations,
        baseline.iterations
    );
    assert_close(&format!("{what}: x"), &sol.x, x_oracle, 1e-7);
}

/// The Jacobians of `sol` wrt q, b, h equal the nalgebra KKT oracle's on `active` to `tol`.
fn assert_kkt_jacobians(what: &str, qp: &HostQp, active: &[bool], sol: &HostSolution, tol: f64) {
    for param in Param::VECTORS {
        let exact = kkt_jacobian(qp, active, param).expect("non-degenerate");
        let err = rel_diff(sol.jacobian(param).expect("requested"), &exact);
        assert!(
            err < tol,
            "{what}: dx/d{} differs from KKT by {err:e}",
            param.name()
        );
    }
}

/// The tiny QP's iterates 1, 2 and 5 (rho = 1, alpha = 1: the paper's plain ADMM, from the
/// cold start `s = max(h, 0)`) match the values of a direct NumPy transcription of the
/// iteration (`x_1 = -H^-1 (q - A'b)`, as `s_0 - h = 0`).
pub fn known_iterates<B: LinAlg<Real = f64>>(be: &B) {
    let qp = tiny_qp();
    let s1 = solve(be, &qp, settings_fixed(1).with_alpha(1.0));
    assert_eq!((s1.status, s1.iterations), (Status::FixedIterations, 1));
    assert_close(
        "x after 1",
        &s1.x,
        &[-0.3067484663, 0.8220858896, -0.0061349693],
        1e-9,
    );
    assert_close("s after 1", &s1.s, &[0.0, 0.0], 1e-12);
    assert_close("lam after 1", &s1.lam, &[-0.490797546], 1e-9);
    assert_close("nu after 1", &s1.nu, &[0.3220858896, 0.1067484663], 1e-9);
    assert_close(
        "dx_db after 1",
        &column(&s1, Param::B),
        &[0.1104294479, 0.1840490798, 0.2822085890],
        1e-9,
    );
    let s2 = solve(be, &qp, settings_fixed(2).with_alpha(1.0));
    assert_close(
        "x after 2",
        &s2.x,
        &[-0.3063118672, 1.0035906508, 0.117407505],
        1e-9,
    );
    assert_close("lam after 2", &s2.lam, &[-0.6761112575], 1e-9);
    assert_close(
        "dx_db after 2",
        &column(&s2, Param::B),
        &[0.1467876096, 0.1955662614, 0.4323836050],
        1e-9,
    );
    let s5 = solve(be, &qp, settings_fixed(5).with_alpha(1.0));
    assert_close(
        "x after 5",
        &s5.x,
        &[-0.1122331107, 0.6436395227, 0.371488109],
        1e-9,
    );
    assert_close(
        "dx_db after 5",
        &column(&s5, Param::B),
        &[0.1283648856, 0.1192320978, 0.6636297550],
        1e-9,
    );
}

/// The tiny QP's limit equals the exact fractions: x*, lam*, nu* and the three Jacobians.
pub fn tiny_limit_is_exact<B: LinAlg<Real = f64>>(be: &B) {
    let sol = solve(be, &tiny_qp(), tight());
    assert_eq!(sol.status, Status::Solved);
    let sev = 1.0 / 7.0;
    assert_close("x*", &sol.x, &[0.0, 0.5, 0.5], 1e-9);
    assert_close("lam*", &sol.lam, &[-1.25], 1e-9);
    assert_close("nu*", &sol.nu, &[1.75, 0.0], 1e-9);
    // column-major: dx_dq = [[-2/7,0,2/7],[0,0,0],[2/7,0,-2/7]]
    assert_close(
        "dx_dq",
        &column(&sol, Param::Q),
        &[
            -2.0 * sev,
            0.0,
            2.0 * sev,
            0.0,
            0.0,
            0.0,
            2.0 * sev,
            0.0,
            -2.0 * sev,
        ],
        1e-8,
    );
    assert_close(
        "dx_db",
        &column(&sol, Param::B),
        &[3.0 * sev, 0.0, 4.0 * sev],
        1e-8,
    );
    // dx_dh = [[-4/7,0],[1,0],[-3/7,0]]
    assert_close(
        "dx_dh",
        &column(&sol, Param::H),
        &[-4.0 * sev, 1.0, -3.0 * sev, 0.0, 0.0, 0.0],
        1e-8,
    );
}

/// With no constraints, `x = -P^-1 q` and `dx/dq = -P^-1` (checked by `P dx/dq = -I`).
pub fn unconstrained_is_exact<B: LinAlg<Real = f64>>(be: &B) {
    let mut qp = random_qp(Generator::WellConditioned, 6, 0, 0, 5);
    qp.a = HostMatrix::zeros(0, 6);
    qp.g = HostMatrix::zeros(0, 6);
    let sol = solve(be, &qp, tight().with_wrt(Wrt::none().with(Param::Q)));
    assert_eq!(sol.status, Status::Solved);
    let j = sol.jacobian(Param::Q).expect("dx/dq");
    for i in 0..6 {
        let px: f64 = (0..6).map(|l| qp.p.get(i, l) * sol.x[l]).sum();
        assert!((px + qp.q[i]).abs() < 1e-9, "P x + q = 0 at row {i}");
        for c in 0..6 {
            let pj: f64 = (0..6).map(|l| qp.p.get(i, l) * j.get(l, c)).sum();
            let expected = if i == c { -1.0 } else { 0.0 };
            assert!(
                (pj - expected).abs() < 1e-8,
                "P dx/dq = -I at ({i}, {c}): {pj}"
            );
        }
    }
}

/// The problems of the oracle tests: equalities only, inequalities only, both.
fn oracle_problems() -> Vec<(&'static str, HostQp)> {
    vec![
        (
            "equalities only",
            random_qp(Generator::WellConditioned, 8, 3, 0, 1),
        ),
        (
            "inequalities only",
            random_qp(Generator::WellConditioned, 8, 0, 6, 2),
        ),
        ("both", random_qp(Generator::WellConditioned, 10, 3, 6, 3)),
        (
            "both, more inequalities",
            random_qp(Generator::WellConditioned, 6, 2, 9, 4),
        ),
    ]
}

/// Converged Jacobians wrt q, b, h equal implicit differentiation of the KKT system (1e-8).
pub fn jacobians_match_kkt<B: LinAlg<Real = f64>>(be: &B) {
    for (name, qp) in oracle_problems() {
        let sol = solve(be, &qp, tight());
        assert_eq!(sol.status, Status::Solved, "{name}");
        let active = active_set(&qp, &sol.x, 1e-7);
        assert_kkt_jacobians(name, &qp, &active, &sol, 1e-8);
    }
}

/// Other penalties (`rho` = 0.3, 4) converge to the same solution and KKT Jacobians.
pub fn limit_does_not_depend_on_rho<B: LinAlg<Real = f64>>(be: &B) {
    let qp = random_qp(Generator::WellConditioned, 8, 2, 6, 13);
    let oracle = clarabel_solve(&qp).expect("clarabel solves it");
    let active = crate::testing::dual_active_set(&qp, &oracle.x, &oracle.nu);
    for rho in [0.3, 4.0] {
        let sol = solve(be, &qp, tight().with_rho(rho));
        assert_eq!(sol.status, Status::Solved, "rho = {rho}");
        assert_close(&format!("rho = {rho}: x"), &sol.x, &oracle.x, 1e-6);
        assert_close(&format!("rho = {rho}: nu"), &sol.nu, &oracle.nu, 1e-5);
        assert_kkt_jacobians(&format!("rho = {rho}"), &qp, &active, &sol, 1e-8);
    }
}

/// Converged Jacobians equal central finite differences of the solution map.
pub fn jacobians_match_finite_differences<B: LinAlg<Real = f64>>(be: &B) {
    let qp = random_qp(Generator::WellConditioned, 7, 2, 5, 9);
    let sol = solve(be, &qp, tight());
    let forward_only = tight().with_wrt(Wrt::none());
    for param in Param::VECTORS {
        let fd = central_diff(&qp, param, 1e-6, |shifted| {
            solve(be, shifted, forward_only.clone()).x
        });
        let err = rel_diff(sol.jacobian(param).expect("requested"), &fd);
        assert!(
            err < 1e-5,
            "dx/d{} differs from finite differences by {err:e}",
            param.name()
        );
    }
}

/// Solutions and duals equal clarabel's on random problems (both generators).
pub fn solutions_match_clarabel<B: LinAlg<Real = f64>>(be: &B) {
    let mut problems = oracle_problems();
    problems.push(("seed generator", random_qp(Generator::Seed, 12, 4, 5, 21)));
    for (name, qp) in problems {
        let oracle = clarabel_solve(&qp).expect("clarabel solves it");
        let sol = solve(
            be,
            &qp,
            tight().with_wrt(Wrt::none()).with_max_iter(1_000_000),
        );
        assert_eq!(sol.status, Status::Solved, "{name}");
        assert_close(&format!("{name}: x"), &sol.x, &oracle.x, 1e-6);
        assert_close(&format!("{name}: lam"), &sol.lam, &oracle.lam, 1e-5);
        assert_close(&format!("{name}: nu"), &sol.nu, &oracle.nu, 1e-5);
        assert!(
            (sol.objective - oracle.objective).abs() <= 1e-6 * (1.0 + oracle.objective.abs()),
            "{name}: objective"
        );
    }
}

/// The same problem on this backend and on the reference backend gives the same iterates
/// and Jacobians to 1e-10, truncated and converged.
pub fn agrees_with_reference<B: LinAlg<Real = f64>>(be: &B) {
    backends_agree(be, &RefBackend);
}

/// Two backends give the same iterates, iteration counts and Jacobians to 1e-10 on one
/// problem, truncated (30 iterations) and converged (in the primal space when one of them
/// has no dense dual space: the spaces check convergence at different points).
pub fn backends_agree<B1: LinAlg<Real = f64>, B2: LinAlg<Real = f64>>(one: &B1, other: &B2) {
    let qp = random_qp(Generator::WellConditioned, 9, 3, 5, 17);
    let space = if one.dense_dual_space() && other.dense_dual_space() {
        IterationSpace::Auto
    } else {
        IterationSpace::Primal
    };
    for settings in [settings_fixed(30), tight()].map(|s| s.with_iteration(space)) {
        let got = solve(one, &qp, settings.clone());
        let expected = solve(other, &qp, settings);
        let names = format!("{} vs {}", one.name(), other.name());
        assert_eq!(
            got.iterations, expected.iterations,
            "{names}: iteration counts"
        );
        for (what, g, e) in [
            ("x", &got.x, &expected.x),
            ("s", &got.s, &expected.s),
            ("lam", &got.lam, &expected.lam),
            ("nu", &got.nu, &expected.nu),
        ] {
            assert_close(&format!("{names}: {what}"), g, e, 1e-10);
        }
        for param in Param::VECTORS {
            assert_close(
                &format!("{names}: dx/d{}", param.name()),
                &column(&got, param),
                &column(&expected, param),
                1e-10,
            );
        }
    }
}

/// Each stopping rule ends with the right status and iteration count (the iterations
/// alone: without the limit's polish, which the last lines check).
pub fn stopping_rules_behave<B: LinAlg<Real = f64>>(be: &B) {
    let qp = random_qp(Generator::WellConditioned, 10, 3, 6, 3);
    let base = Settings::default()
        .with_wrt(Wrt::none().with(Param::B))
        .with_limit(false);
    let residual = solve(be, &qp, base.clone());
    assert_eq!(residual.status, Status::Solved);
    assert!(
        residual.primal_residual <= 1e-6 * 50.0 && residual.dual_residual <= 1e-6 * 50.0,
        "residuals"
    );
    let capped = solve(be, &qp, base.clone().with_max_iter(3));
    assert_eq!(
        (capped.status, capped.iterations),
        (Status::MaxIterations, 3)
    );
    // with the limit (the default) the polish of the last mask may still end it solved, and
    // only when its point passes the residual rule
    let polished = solve(be, &qp, base.clone().with_limit(true).with_max_iter(3));
    assert_eq!(polished.iterations, 3);
    if polished.status == Status::Solved {
        assert!(polished.primal_residual <= 1e-6 && polished.dual_residual <= 1e-6);
    } else {
        assert_eq!(polished.status, Status::MaxIterations);
    }
    // a time limit already passed ends every solve before its first iteration, in the
    // primal and in the dual space
    for space in [IterationSpace::Primal, IterationSpace::Dual] {
        let timed = solve(
            be,
            &qp,
            base.clone()
                .with_iteration(space)
                .with_time_limit(std::time::Duration::ZERO),
        );
        assert_eq!((timed.status, timed.iterations), (Status::TimeLimit, 0));
    }
    let roomy = solve(
        be,
        &qp,
        base.clone()
            .with_time_limit(std::time::Duration::from_secs(3600)),
    );
    assert_eq!(
        (roomy.status, roomy.iterations),
        (residual.status, residual.iterations)
    );
    let fixed = solve(be, &qp, base.clone().with_stopping(StoppingRule::Fixed(7)));
    assert_eq!(
        (fixed.status, fixed.iterations),
        (Status::FixedIterations, 7)
    );
    let objective = solve(
        be,
        &qp,
        base.clone()
            .with_stopping(StoppingRule::RelativeObjective(1e-3)),
    );
    assert_eq!(objective.status, Status::Solved);
    assert!(
        objective.iterations < residual.iterations,
        "the paper's loose rule stops earlier"
    );
    let x_rule = solve(
        be,
        &qp,
        base.clone().with_stopping(StoppingRule::RelativeX(1e-4)),
    );
    assert_eq!(x_rule.status, Status::Solved);
    let every5 = solve(be, &qp, base.with_check_every(5));
    assert_eq!(every5.status, Status::Solved);
    assert_eq!(every5.iterations % 5, 0, "checks only every 5 iterations");
}

/// A warm start from the converged solution (with its Jacobian state) converges at once to
/// the same solution and Jacobians.
pub fn warm_start_helps<B: LinAlg<Real = f64>>(be: &B) {
    let host_qp = random_qp(Generator::WellConditioned, 10, 3, 6, 3);
    let qp = Qp::from_host(be, &host_qp).unwrap();
    let solver = AltDiff::new(
        be.clone(),
        &qp,
        Settings::default().with_wrt(Wrt::vectors()),
    )
    .unwrap();
    let cold = solver.solve(qp.params()).unwrap();
    let warm = solver.solve_warm(qp.params(), &cold).unwrap();
    assert_eq!(warm.status(), Status::Solved);
    assert!(
        warm.iterations() * 5 <= cold.iterations(),
        "warm {} vs cold {}",
        warm.iterations(),
        cold.iterations()
    );
    let (c, w) = (cold.to_host(be).unwrap(), warm.to_host(be).unwrap());
    assert_close("warm x", &w.x, &c.x, 1e-5);
    assert_close(
        "warm dx/dh",
        &column(&w, Param::H),
        &column(&c, Param::H),
        1e-4,
    ); // A warm start with a converged solution but no Jacobian state must still iterate until
    // the Jacobians converge (their own residuals), not stop at once with zero Jacobians.
    let forward_only = AltDiff::new(be.clone(), &qp, Settings::default())
        .unwrap()
        .solve(qp.params())
        .unwrap();
    let from_forward = solver
        .solve_warm(qp.params(), &forward_only)
        .unwrap()
        .to_host(be)
        .unwrap();
    assert_eq!(from_forward.status, Status::Solved);
    assert_close(
        "dx/db from a forward-only start",
        &column(&from_forward, Param::B),
        &column(&c, Param::B),
        1e-4,
    );
}

/// Every bad input gets its typed error, naming the field and the shapes; no panic.
pub fn bad_inputs_are_errors<B: LinAlg<Real = f64>>(be: &B) {
    let good = tiny_qp();
    let dimension = |qp: &HostQp, field: Field| {
        let err = Qp::from_host(be, qp).unwrap_err();
        assert!(
            matches!(err, Error::Dimension { field: f, .. } if f == field),
            "expected a dimension error on {field}, got {err}"
        );
    };
    let mut bad = good.clone();
    bad.q.push(1.0);
    dimension(&bad, Field::Q);
    let mut bad = good.clone();
    bad.b.clear();
    dimension(&bad, Field::B);
    let mut bad = good.clone();
    bad.h.push(0.0);
    dimension(&bad, Field::H);
    let mut bad = good.clone();
    bad.a = HostMatrix::zeros(1, 4);
    dimension(&bad, Field::A);
    let mut bad = good.clone();
    bad.g = HostMatrix::zeros(2, 2);
    dimension(&bad, Field::G);
    let mut bad = good.clone();
    bad.p = HostMatrix::zeros(3, 2);
    dimension(&bad, Field::P);
    // non-finite values name the field and the entry
    for (field, qp) in [
        (
            Field::Q,
            HostQp {
                q: vec![1.0, f64::NAN, 0.0],
                ..good.clone()
            },
        ),
        (
            Field::H,
            HostQp {
                h: vec![0.5, f64::INFINITY],
                ..good.clone()
            },
        ),
        (
            Field::B,
            HostQp {
                b: vec![f64::NEG_INFINITY],
                ..good.clone()
            },
        ),
        (
            Field::G,
            HostQp {
                g: HostMatrix::from_fn(2, 3, |i, j| if (i, j) == (1, 2) { f64::NAN } else { 0.0 }),
                ..good.clone()
            },
        ),
    ] {
        let err = Qp::from_host(be, &qp).unwrap_err();
        assert!(
            matches!(err, Error::NonFinite { field: f, .. } if f == field),
            "expected non-finite {field}, got {err}"
        );
    }
    // P not symmetric
    let bad = HostQp {
        p: HostMatrix::from_fn(
            3,
            3,
            |i, j| {
                if (i, j) == (0, 1) || i == j { 1.0 } else { 0.0 }
            },
        ),
        ..good.clone()
    };
    assert!(
        matches!(Qp::from_host(be, &bad), Err(Error::NotSymmetric { .. })),
        "non-symmetric P"
    );
    // P indefinite: not convex
    let indefinite = HostQp {
        p: HostMatrix::from_fn(3, 3, |i, j| if i == j { -1.0 } else { 0.0 }),
        ..good.clone()
    };
    let qp = Qp::from_host(be, &indefinite).unwrap();
    assert!(
        matches!(
            AltDiff::new(be.clone(), &qp, Settings::default()),
            Err(Error::NotConvex { .. })
        ),
        "indefinite P"
    );
    // P indefinite but H = P + rho C'C positive definite: in the dual space the test runs
    // on M = C H^-1 C' (rho lambda_max(M) > 1) and the exact test confirms; a singular
    // positive semidefinite P (rho lambda_max(M) = 1) passes
    for settings in [
        Settings::default(),
        Settings::default().with_limit(true),
        Settings::default().with_iteration(crate::IterationSpace::Dual),
    ] {
        let qp = Qp::from_host(be, &masked_qp(-0.1)).unwrap();
        assert!(
            matches!(
                AltDiff::new(be.clone(), &qp, settings.clone()),
                Err(Error::NotConvex { .. })
            ),
            "indefinite P, positive definite H: {settings:?}"
        );
        let qp = Qp::from_host(be, &masked_qp(0.0)).unwrap();
        let solver = AltDiff::new(be.clone(), &qp, settings.clone());
        assert!(solver.is_ok(), "singular PSD P: {settings:?}");
    }
    // P = 0 and no constraints: H singular, the proximal term takes over and the solve
    // certifies that the objective is unbounded
    let unbounded = HostQp {
        p: HostMatrix::zeros(2, 2),
        q: vec![1.0, 1.0],
        a: HostMatrix::zeros(0, 2),
        b: vec![],
        g: HostMatrix::zeros(0, 2),
        h: vec![],
    };
    let qp = Qp::from_host(be, &unbounded).unwrap();
    let sol = AltDiff::new(be.clone(), &qp, Settings::default())
        .unwrap()
        .solve(qp.params())
        .unwrap();
    assert_eq!(sol.status(), Status::DualInfeasible, "singular H");
    // invalid settings
    let qp = Qp::from_host(be, &good).unwrap();
    assert!(
        matches!(
            AltDiff::new(be.clone(), &qp, Settings::default().with_rho(0.0)),
            Err(Error::Settings(_))
        ),
        "rho = 0"
    );
    // parameters of the wrong size at solve time
    let solver = AltDiff::new(be.clone(), &qp, Settings::default()).unwrap();
    let wrong = QpParams::<B>::from_host(
        be,
        QpDims { n: 2, p: 1, m: 2 },
        &[0.0, 0.0],
        &[1.0],
        &[0.0, 0.0],
    )
    .unwrap();
    assert!(
        matches!(
            solver.solve(&wrong),
            Err(Error::Dimension {
                field: Field::Q,
                expected: (3, 1),
                got: (2, 1)
            })
        ),
        "q of the wrong size"
    );
    let nan_params = QpParams {
        q: be
            .mat_from_col_major(3, 1, &[0.0, F::<B>::NAN, 0.0])
            .unwrap(),
        ..qp.params().clone()
    };
    assert!(
        matches!(
            solver.solve(&nan_params),
            Err(Error::NonFinite {
                field: Field::Q,
                row: 1,
                ..
            })
        ),
        "NaN in q"
    );
}

/// A random direction of all six parameters (`dP` symmetric), as a problem-shaped struct.
fn random_direction(qp: &HostQp, seed: u64) -> HostQp {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut dir = zero_direction(qp);
    let n = qp.q.len();
    let w = HostMatrix::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0));
    dir.p = HostMatrix::from_fn(n, n, |i, j| w.get(i, j) + w.get(j, i));
    dir.a = HostMatrix::from_fn(qp.a.nrows(), n, |_, _| rng.random_range(-1.0..1.0));
    dir.g = HostMatrix::from_fn(qp.g.nrows(), n, |_, _| rng.random_range(-1.0..1.0));
    for v in [&mut dir.q, &mut dir.b, &mut dir.h] {
        v.iter_mut().for_each(|x| *x = rng.random_range(-1.0..1.0));
    }
    dir
}

/// Several problem-shaped directions as [`Directions`] columns.
fn as_directions(dirs: &[HostQp]) -> Directions {
    let k = dirs.len();
    let block = |f: &dyn Fn(&HostQp) -> &Vec<f64>| {
        let len = f(&dirs[0]).len();
        HostMatrix::from_fn(len, k, |i, j| f(&dirs[j])[i])
    };
    Directions::new(k)
        .with_q(block(&|d| &d.q))
        .with_b(block(&|d| &d.b))
        .with_h(block(&|d| &d.h))
        .with_p(dirs.iter().map(|d| d.p.clone()).collect())
        .with_a(dirs.iter().map(|d| d.a.clone()).collect())
        .with_g(dirs.iter().map(|d| d.g.clone()).collect())
}

fn host_of<B: LinAlg<Real = f64>>(be: &B, m: &B::Mat) -> HostMatrix {
    let (r, c) = be.shape(m);
    HostMatrix::from_col_major(Field::Seed, r, c, host(be, m)).expect("shape")
}

/// JVPs along random directions of all six parameters equal central finite differences of
/// the solution map and the KKT oracle, on several seeds.
pub fn jvp_matches_finite_differences_and_kkt<B: LinAlg<Real = f64>>(be: &B) {
    for seed in [31, 32, 33] {
        let qp = random_qp(Generator::WellConditioned, 7, 2, 5, seed);
        let dirs = [
            random_direction(&qp, seed + 100),
            random_direction(&qp, seed + 200),
        ];
        let problem = Qp::from_host(be, &qp).unwrap();
        let solver = AltDiff::new(be.clone(), &problem, tight()).unwrap();
        let sol = solver
            .solve_jvp(problem.params(), &as_directions(&dirs))
            .unwrap();
        assert_eq!(sol.status(), Status::Solved, "seed {seed}");
        let jvp = host_of(be, sol.jvp().expect("jvp"));
        let host_sol = sol.to_host(be).unwrap();
        let forward_only = tight().with_wrt(Wrt::none());
        for (j, dir) in dirs.iter().enumerate() {
            let got: Vec<f64> = (0..qp.q.len()).map(|i| jvp.get(i, j)).collect();
            let fd = central_diff_along(&qp, dir, 1e-6, |shifted| {
                solve(be, shifted, forward_only.clone()).x
            });
            assert_close(
                &format!("seed {seed}: JVP {j} vs finite differences"),
                &got,
                &fd,
                1e-5,
            );
            assert_jvp_is_kkt(&format!("seed {seed}: JVP {j}"), &qp, &host_sol, dir, &got);
        }
    }
}

/// The Jacobians wrt `P`, `A`, `G` (entrywise, row-major columns) equal the KKT oracle's
/// unit-direction derivatives.
pub fn matrix_jacobians_match_kkt<B: LinAlg<Real = f64>>(be: &B) {
    let qp = random_qp(Generator::WellConditioned, 5, 2, 4, 41);
    let sol = solve(be, &qp, tight().with_wrt(Wrt::all()));
    assert_eq!(sol.status, Status::Solved);
    let active = dual_active_set(&qp, &sol.x, &sol.nu);
    let dims = qp.validate().unwrap();
    for param in Param::MATRICES {
        let jac = sol.jacobian(param).expect("requested");
        let (rows, cols) = param.shape(dims);
        assert_eq!((jac.nrows(), jac.ncols()), (dims.n, rows * cols));
        for i in 0..rows {
            for j in 0..cols {
                let mut dir = zero_direction(&qp);
                let unit =
                    HostMatrix::from_fn(
                        rows,
                        cols,
                        |a, b| if (a, b) == (i, j) { 1.0 } else { 0.0 },
                    );
                match param {
                    Param::P => dir.p = unit,
                    Param::A => dir.a = unit,
                    _ => dir.g = unit,
                }
                let exact = kkt_jvp(&qp, &active, [&sol.x, &sol.lam, &sol.nu], &dir).unwrap();
                let got: Vec<f64> = (0..dims.n).map(|r| jac.get(r, i * cols + j)).collect();
                assert_close(
                    &format!("dx/d{}[{i}][{j}]", param.name()),
                    &got,
                    &exact,
                    1e-8,
                );
            }
        }
    }
}

/// `J'g` from forward-mode Jacobians of all six parameters, reshaped like the parameters
/// (`P` symmetrized).
fn forward_vjp(sol: &HostSolution, g: &[f64], dims: QpDims) -> Vec<HostMatrix> {
    Param::ALL
        .iter()
        .map(|&param| {
            let jac = sol.jacobian(param).expect("requested");
            let jtg: Vec<f64> = (0..jac.ncols())
                .map(|c| (0..jac.nrows()).map(|r| jac.get(r, c) * g[r]).sum())
                .collect();
            let (rows, cols) = param.shape(dims);
            let m = HostMatrix::from_fn(rows, cols, |i, j| jtg[i * cols + j]);
            if param == Param::P {
                HostMatrix::from_fn(rows, cols, |i, j| 0.5 * (m.get(i, j) + m.get(j, i)))
            } else {
                m
            }
        })
        .collect()
}

fn grads_host<B: LinAlg<Real = f64>>(be: &B, grads: &crate::Grads<B>) -> Vec<HostMatrix> {
    let [p, a, g] = [
        (&grads.p, Field::P),
        (&grads.a, Field::A),
        (&grads.g, Field::G),
    ]
    .map(|(m, field)| {
        be.grad_to_host(m.as_ref().expect("matrix gradient"), field)
            .expect("grad_to_host")
    });
    vec![
        host_of(be, &grads.q),
        host_of(be, &grads.b),
        host_of(be, &grads.h),
        p,
        a,
        g,
    ]
}

/// The unrolled VJP equals `J'g` of forward mode for the same iterations to 1e-10, for all
/// six parameters, truncated (Fixed(5), Fixed(50)) and with a loose tolerance.
pub fn vjp_unrolled_is_the_adjoint_of_forward<B: LinAlg<Real = f64>>(be: &B) {
    let qp = random_qp(Generator::WellConditioned, 6, 2, 4, 51);
    let problem = Qp::from_host(be, &qp).unwrap();
    let dims = problem.dims();
    let g_host: Vec<f64> = (0..dims.n).map(|i| (i as f64 * 0.7).sin() + 0.3).collect();
    let g = be.mat_from_col_major(dims.n, 1, &g_host).unwrap();
    for stopping in [
        StoppingRule::Fixed(5),
        StoppingRule::Fixed(50),
        StoppingRule::Residual {
            eps_abs: 1e-3,
            eps_rel: 1e-3,
        },
    ] {
        let settings = Settings::default()
            .with_stopping(stopping)
            .with_wrt(Wrt::all())
            .with_tape(Tape::Full);
        let solver = AltDiff::new(be.clone(), &problem, settings.clone()).unwrap();
        let sol = solver.solve(problem.params()).unwrap();
        assert_eq!(sol.tape_len(), sol.iterations());
        let expected = forward_vjp(&sol.to_host(be).unwrap(), &g_host, dims);
        let got = grads_host(be, &solver.vjp(&sol, &g, VjpMode::Unrolled).unwrap());
        assert_grads_agree(
            &format!("{stopping:?}: unrolled VJP"),
            &got,
            &expected,
            1e-10,
        );
        // with a mask-only tape the vector gradients are the same and the matrix ones absent
        let light = AltDiff::new(
            be.clone(),
            &problem,
            settings.clone().with_tape(Tape::Masks),
        )
        .unwrap();
        let light_sol = light.solve(problem.params()).unwrap();
        let grads = light.vjp(&light_sol, &g, VjpMode::Unrolled).unwrap();
        assert!(grads.p.is_none() && grads.a.is_none() && grads.g.is_none());
        assert_close(
            "mask tape: grad q",
            &host(be, &grads.q),
            &expected[0].col_major(),
            1e-10,
        );
    }
    let untaped = AltDiff::new(be.clone(), &problem, Settings::default()).unwrap();
    let sol = untaped.solve(problem.params()).unwrap();
    assert!(
        matches!(
            untaped.vjp(&sol, &g, VjpMode::Unrolled),
            Err(Error::Request(_))
        ),
        "no tape, no unrolled VJP"
    );
}

/// At convergence the implicit VJP equals the KKT VJP and `J'g` of the KKT Jacobians, and
/// the matrix gradients are the OptNet closed forms.
pub fn vjp_implicit_matches_kkt_and_closed_forms<B: LinAlg<Real = f64>>(be: &B) {
    let qp = random_qp(Generator::WellConditioned, 6, 2, 5, 61);
    let problem = Qp::from_host(be, &qp).unwrap();
    let dims = problem.dims();
    let solver = AltDiff::new(
        be.clone(),
        &problem,
        tight().with_wrt(Wrt::all()).with_method(Method::Kkt),
    )
    .unwrap();
    let sol = solver.solve(problem.params()).unwrap();
    let g_host: Vec<f64> = (0..dims.n).map(|i| 1.0 - 0.3 * i as f64).collect();
    let g = be.mat_from_col_major(dims.n, 1, &g_host).unwrap();
    let expected = forward_vjp(&sol.to_host(be).unwrap(), &g_host, dims);
    for mode in [VjpMode::Implicit, VjpMode::Kkt] {
        let got = grads_host(be, &solver.vjp(&sol, &g, mode).unwrap());
        assert_grads_agree(&format!("{mode:?} VJP"), &got, &expected, 1e-8);
    }
    let bad = be
        .mat_from_col_major(dims.n + 1, 1, &vec![0.0; dims.n + 1])
        .unwrap();
    assert!(matches!(
        solver.vjp(&sol, &bad, VjpMode::Implicit),
        Err(Error::Dimension {
            field: Field::Seed,
            ..
        })
    ));
}

/// The implicit adjoint by restarted GMRES (memory 30, the default, and 2: restarts on
/// every problem) equals the plain repetition of the reverse step (memory 0) and the
/// forward Jacobians' `J'g` (1e-8) on every oracle problem, for a block of two seeds too.
pub fn krylov_adjoint_matches_repetition<B: LinAlg<Real = f64>>(be: &B) {
    for (name, qp) in oracle_problems() {
        let problem = Qp::from_host(be, &qp).unwrap();
        let dims = problem.dims();
        let settings = tight().with_wrt(Wrt::all()).with_method(Method::Kkt);
        let sol = AltDiff::new(be.clone(), &problem, settings.clone())
            .unwrap()
            .solve(problem.params())
            .unwrap();
        let g_host: Vec<f64> = (0..dims.n).map(|i| 0.7 - 0.2 * i as f64).collect();
        let g = be.mat_from_col_major(dims.n, 1, &g_host).unwrap();
        let expected = forward_vjp(&sol.to_host(be).unwrap(), &g_host, dims);
        for restart in [0, 2, 30] {
            let solver = AltDiff::new(
                be.clone(),
                &problem,
                settings.clone().with_krylov_restart(restart),
            )
            .unwrap();
            let got = grads_host(be, &solver.vjp(&sol, &g, VjpMode::Implicit).unwrap());
            assert_grads_agree(&format!("{name}: memory {restart}"), &got, &expected, 1e-8);
        }
    }
}

/// Anderson acceleration (primal space, rho = 0.1 where plain ADMM is slow) reaches the
/// same fixed point: the solution of clarabel (1e-7) in fewer iterations in total, and an
/// implicit VJP equal to the KKT VJP there (1e-7). A solve that carries Jacobians runs plain:
/// the same iterations and Jacobians as without it.
pub fn anderson_keeps_the_fixed_point<B: LinAlg<Real = f64>>(be: &B) {
    // the iterations alone (no polish), at a fixed penalty
    let base = tight()
        .with_wrt(Wrt::none())
        .with_rho(0.1)
        .with_adaptive_rho(None)
        .with_limit(false)
        .with_iteration(IterationSpace::Primal);
    let accelerated = base.clone().with_anderson(Some(Anderson::default()));
    let (mut plain_total, mut fast_total) = (0, 0);
    for (name, qp) in oracle_problems() {
        let oracle = clarabel_solve(&qp).expect("clarabel solves it");
        let problem = Qp::from_host(be, &qp).unwrap();
        let dims = problem.dims();
        let plain = solve(be, &qp, base.clone());
        let solver = AltDiff::new(be.clone(), &problem, accelerated.clone()).unwrap();
        let sol = solver.solve(problem.params()).unwrap();
        let fast = sol.to_host(be).unwrap();
        assert_eq!(fast.status, Status::Solved, "{name}");
        assert_close(&format!("{name}: x"), &fast.x, &oracle.x, 1e-7);
        (plain_total, fast_total) = (plain_total + plain.iterations, fast_total + fast.iterations);
        let g_host: Vec<f64> = (0..dims.n).map(|i| (i as f64).sin()).collect();
        let g = be.mat_from_col_major(dims.n, 1, &g_host).unwrap();
        let implicit = grads_host(be, &solver.vjp(&sol, &g, VjpMode::Implicit).unwrap());
        let kkt = grads_host(be, &solver.vjp(&sol, &g, VjpMode::Kkt).unwrap());
        assert_grads_agree(&format!("{name}: implicit VJP"), &implicit, &kkt, 1e-7);
        // with Jacobians the iteration stays plain
        let with_wrt = |s: Settings| s.with_wrt(Wrt::vectors());
        let jac_plain = solve(be, &qp, with_wrt(base.clone()));
        let jac_fast = solve(be, &qp, with_wrt(accelerated.clone()));
        assert_eq!(jac_plain.iterations, jac_fast.iterations, "{name}");
        assert_jacobians_agree(
            &format!("{name}: Jacobians"),
            &Param::VECTORS,
            &jac_fast,
            &jac_plain,
            1e-14,
        );
    }
    assert!(
        fast_total < plain_total,
        "Anderson: {fast_total} iterations in total, plain {plain_total}"
    );
    let bad = Settings::default().with_anderson(Some(Anderson::default().with_memory(0)));
    assert!(matches!(
        AltDiff::new(be.clone(), &Qp::from_host(be, &tiny_qp()).unwrap(), bad),
        Err(Error::Settings(_))
    ));
}

/// `Method::Kkt` gives the converged Alt-Diff Jacobians (all six parameters) and agrees with
/// the nalgebra oracle.
pub fn kkt_method_matches_altdiff<B: LinAlg<Real = f64>>(be: &B) {
    let qp = random_qp(Generator::WellConditioned, 6, 2, 5, 71);
    let alt = solve(be, &qp, tight().with_wrt(Wrt::all()));
    let kkt = solve(
        be,
        &qp,
        tight().with_wrt(Wrt::all()).with_method(Method::Kkt),
    );
    assert!(
        kkt.iterations <= alt.iterations,
        "no tangent work slows KKT's forward solve"
    );
    assert_jacobians_agree("KKT vs Alt-Diff", &Param::ALL, &kkt, &alt, 1e-8);
    let active = dual_active_set(&qp, &kkt.x, &kkt.nu);
    assert_kkt_jacobians("KKT method", &qp, &active, &kkt, 1e-9);
}

/// A weakly active constraint (the unconstrained minimizer on the boundary: `s = 0`,
/// `nu = 0`) is reported, and every derivative stays finite.
pub fn degenerate_problem_reports_weakly_active<B: LinAlg<Real = f64>>(be: &B) {
    // minimize 1/2 |x|^2 - x0 - x1  s.t.  x0 <= 1 (weakly active), x1 <= 0.5 (active)
    let qp = HostQp {
        p: HostMatrix::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 0.0 }),
        q: vec![-1.0, -1.0],
        a: HostMatrix::zeros(0, 2),
        b: vec![],
        g: HostMatrix::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 0.0 }),
        h: vec![1.0, 0.5],
    };
    let mut dx0_dh0 = Vec::new();
    for method in [Method::AltDiff, Method::Kkt] {
        let sol = solve(be, &qp, tight().with_method(method));
        assert_eq!(sol.status, Status::Solved, "{method:?}");
        assert_eq!(sol.weakly_active, vec![0], "{method:?}: weakly active rows");
        for (param, j) in &sol.jacobians {
            assert!(
                j.col_major().iter().all(|v| v.is_finite()),
                "{method:?}: dx/d{} finite",
                param.name()
            );
        }
        dx0_dh0.push(sol.jacobian(Param::H).unwrap().get(0, 0));
    }
    // each a one-sided derivative: 1 (row held active) or 0 (row left inactive)
    for d in &dx0_dh0 {
        assert!(d.abs() < 1e-9 || (d - 1.0).abs() < 1e-9, "{dx0_dh0:?}");
    }
    // one active-set rule (the final iterate's s = 0): at one solution every VJP mode
    // returns the same one-sided derivative, and the report does not certify it
    let problem = Qp::from_host(be, &qp).unwrap();
    let solver = AltDiff::new(be.clone(), &problem, tight()).unwrap();
    let sol = solver.solve(problem.params()).unwrap();
    let g = be.mat_from_col_major(2, 1, &[1.0, 0.0]).unwrap();
    let dh0: Vec<f64> = [VjpMode::Limit, VjpMode::Implicit, VjpMode::Kkt]
        .into_iter()
        .map(|mode| host(be, &solver.vjp(&sol, &g, mode).unwrap().h)[0])
        .collect();
    assert!(
        dh0.iter().all(|d| (d - dh0[0]).abs() < 1e-6),
        "modes disagree: {dh0:?}"
    );
    let report = solver.differentiability(&sol).unwrap();
    assert!(!report.status.is_differentiable(), "{report:?}");
    let moved = perturbed(&qp, &zero_direction(&qp), 0.0);
    assert_eq!(moved, qp);
}

/// The dual-space iteration gives the primal iteration's iterates, Jacobians and unrolled
/// VJPs (same iteration counts when truncated), under every stopping rule.
pub fn dual_space_matches_primal<B: LinAlg<Real = f64>>(be: &B) {
    let qp = random_qp(Generator::WellConditioned, 9, 3, 5, 81);
    let problem = Qp::from_host(be, &qp).unwrap();
    let g = be
        .mat_from_col_major(9, 1, &[1.0, -1.0, 0.5, 0.0, 2.0, 1.0, -0.5, 0.3, 0.1])
        .unwrap();
    let rules = [
        StoppingRule::Fixed(25),
        StoppingRule::Residual {
            eps_abs: 1e-11,
            eps_rel: 1e-11,
        },
        StoppingRule::RelativeObjective(1e-6),
        StoppingRule::RelativeX(1e-8),
    ];
    for rule in rules {
        let run = |space| {
            let settings = Settings::default()
                .with_stopping(rule)
                .with_wrt(Wrt::vectors())
                .with_iteration(space)
                .with_tape(Tape::Masks);
            let solver = AltDiff::new(be.clone(), &problem, settings).unwrap();
            let sol = solver.solve(problem.params()).unwrap();
            let grads = solver.vjp(&sol, &g, VjpMode::Unrolled).unwrap();
            (sol.to_host(be).unwrap(), host(be, &grads.b))
        };
        let ((primal, vjp_p), (dual, vjp_d)) =
            (run(IterationSpace::Primal), run(IterationSpace::Dual));
        assert_eq!(primal.status, dual.status, "{rule:?}");
        if let StoppingRule::Fixed(_) = rule {
            assert_eq!(primal.iterations, dual.iterations);
            assert_close(&format!("{rule:?}: x"), &dual.x, &primal.x, 1e-9);
            assert_close(&format!("{rule:?}: nu"), &dual.nu, &primal.nu, 1e-9);
            assert_close(&format!("{rule:?}: VJP b"), &vjp_d, &vjp_p, 1e-9);
        } else {
            assert_close(&format!("{rule:?}: x"), &dual.x, &primal.x, 1e-5);
        }
        let tol = if matches!(rule, StoppingRule::Residual { .. } | StoppingRule::Fixed(_)) {
            1e-9
        } else {
            1e-3
        };
        assert_jacobians_agree(
            &format!("{rule:?}: dual vs primal"),
            &Param::VECTORS,
            &dual,
            &primal,
            tol,
        );
    }
}

/// An infeasible problem ends `PrimalInfeasible` with a Farkas certificate, an unbounded
/// one `DualInfeasible` with a descent direction, in the primal and the dual space.
pub fn infeasible_and_unbounded_are_certified<B: LinAlg<Real = f64>>(be: &B) {
    let eye = |n: usize| HostMatrix::from_fn(n, n, |i, j| if i == j { 1.0 } else { 0.0 });
    // x0 + x1 + x2 = 1 and x0 + x1 + x2 <= 0
    let infeasible = HostQp {
        p: eye(3),
        q: vec![0.5, -1.0, 0.0],
        a: HostMatrix::from_fn(1, 3, |_, _| 1.0),
        b: vec![1.0],
        g: HostMatrix::from_fn(2, 3, |i, j| {
            if i == 0 {
                1.0
            } else if j == 1 {
                -1.0
            } else {
                0.0
            }
        }),
        h: vec![0.0, 5.0],
    };
    // minimize x1^2/2 - x0 subject to x0 >= 0: unbounded along x0
    let unbounded = HostQp {
        p: HostMatrix::from_fn(2, 2, |i, j| if (i, j) == (1, 1) { 1.0 } else { 0.0 }),
        q: vec![-1.0, 0.0],
        a: HostMatrix::zeros(0, 2),
        b: vec![],
        g: HostMatrix::from_fn(1, 2, |_, j| if j == 0 { -1.0 } else { 0.0 }),
        h: vec![0.0],
    };
    for space in [IterationSpace::Primal, IterationSpace::Dual] {
        let settings = Settings::default()
            .with_wrt(Wrt::vectors())
            .with_iteration(space);
        let problem = Qp::from_host(be, &infeasible).unwrap();
        let sol = AltDiff::new(be.clone(), &problem, settings.clone())
            .unwrap()
            .solve(problem.params())
            .unwrap();
        assert_eq!(sol.status(), Status::PrimalInfeasible, "{space:?}");
        assert!(
            sol.iterations() < 5_000,
            "{space:?}: detected early, after {}",
            sol.iterations()
        );
        let Some(crate::Certificate::PrimalInfeasible { lam, nu }) = sol.certificate() else {
            panic!("a Farkas certificate")
        };
        let (lam, nu) = (host(be, lam), host(be, nu));
        let scale = lam.iter().chain(&nu).fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(nu.iter().all(|v| *v >= -1e-5 * scale), "nu >= 0: {nu:?}");
        let support = infeasible.b[0] * lam[0]
            + infeasible
                .h
                .iter()
                .zip(&nu)
                .map(|(h, v)| h * v)
                .sum::<f64>();
        assert!(support < 0.0, "b'lam + h'nu < 0: {support}");
        for j in 0..3 {
            let r = infeasible.a.get(0, j) * lam[0]
                + (0..2).map(|i| infeasible.g.get(i, j) * nu[i]).sum::<f64>();
            assert!(r.abs() <= 1e-4 * scale, "A'lam + G'nu = 0 at {j}: {r}");
        }
        let problem = Qp::from_host(be, &unbounded).unwrap();
        let sol = AltDiff::new(be.clone(), &problem, settings)
            .unwrap()
            .solve(problem.params())
            .unwrap();
        assert_eq!(sol.status(), Status::DualInfeasible, "{space:?}");
        let Some(crate::Certificate::DualInfeasible { x }) = sol.certificate() else {
            panic!("a direction")
        };
        let x = host(be, x);
        assert!(
            x[0] > 0.0 && x[1].abs() <= 1e-4 * x[0],
            "direction along x0: {x:?}"
        );
    }
}

/// With a badly chosen penalty (rho = 100), adaptive rho converges in fewer iterations to the
/// same Jacobians (1e-8), and the unrolled VJP stays the exact adjoint of the iterations run
/// across the penalty changes (1e-10).
pub fn adaptive_rho_keeps_derivatives_exact<B: LinAlg<Real = f64>>(be: &B) {
    let qp = random_qp(Generator::WellConditioned, 9, 3, 5, 91);
    let problem = Qp::from_host(be, &qp).unwrap();
    let adaptive = Some(crate::AdaptiveRho::default().with_every(10));
    let base = tight()
        .with_rho(100.0)
        .with_adaptive_rho(None)
        .with_limit(false)
        .with_iteration(IterationSpace::Primal);
    let fixed = solve(be, &qp, base.clone());
    let adapted = solve(be, &qp, base.clone().with_adaptive_rho(adaptive));
    assert_eq!(
        (fixed.status, adapted.status),
        (Status::Solved, Status::Solved)
    );
    assert!(
        adapted.iterations < fixed.iterations,
        "adaptive {} vs fixed {}",
        adapted.iterations,
        fixed.iterations
    );
    assert_jacobians_agree(
        "adaptive vs fixed rho",
        &Param::VECTORS,
        &adapted,
        &fixed,
        1e-8,
    );
    let settings = Settings::default()
        .with_rho(100.0)
        .with_stopping(StoppingRule::Residual {
            eps_abs: 1e-9,
            eps_rel: 1e-9,
        })
        .with_adaptive_rho(Some(crate::AdaptiveRho::default().with_every(5)))
        .with_wrt(Wrt::all())
        .with_tape(Tape::Full);
    let solver = AltDiff::new(be.clone(), &problem, settings).unwrap();
    let sol = solver.solve(problem.params()).unwrap();
    assert!(
        (sol.rho() - 100.0).abs() > 1.0,
        "the penalty changed: {} after {} iterations ({:?})",
        sol.rho(),
        sol.iterations(),
        sol.status()
    );
    let dims = problem.dims();
    let g_host: Vec<f64> = (0..dims.n).map(|i| (i as f64 * 0.3).cos()).collect();
    let g = be.mat_from_col_major(dims.n, 1, &g_host).unwrap();
    let expected = forward_vjp(&sol.to_host(be).unwrap(), &g_host, dims);
    let got = grads_host(be, &solver.vjp(&sol, &g, VjpMode::Unrolled).unwrap());
    assert_grads_agree("adaptive rho: unrolled VJP", &got, &expected, 1e-10);
}

/// Over-relaxation (alpha = 1.6): the limit and its Jacobians are unchanged (KKT oracle,
/// 1e-8), primal and dual spaces agree on truncated runs (1e-9), and the unrolled VJP is
/// the exact adjoint of the relaxed iterations (1e-10) for all six parameters.
pub fn over_relaxation_keeps_derivatives_exact<B: LinAlg<Real = f64>>(be: &B) {
    let qp = random_qp(Generator::WellConditioned, 9, 3, 5, 95);
    let problem = Qp::from_host(be, &qp).unwrap();
    let relaxed = solve(be, &qp, tight().with_alpha(1.6));
    assert_eq!(relaxed.status, Status::Solved);
    let active = dual_active_set(&qp, &relaxed.x, &relaxed.nu);
    assert_kkt_jacobians("alpha 1.6", &qp, &active, &relaxed, 1e-8);
    let fixed = |space| {
        solve(
            be,
            &qp,
            settings_fixed(20).with_alpha(1.6).with_iteration(space),
        )
    };
    let (primal, dual) = (fixed(IterationSpace::Primal), fixed(IterationSpace::Dual));
    assert_close("alpha 1.6, Fixed(20): x", &dual.x, &primal.x, 1e-9);
    assert_close(
        "alpha 1.6, Fixed(20): dx/dh",
        &column(&dual, Param::H),
        &column(&primal, Param::H),
        1e-9,
    );
    let dims = problem.dims();
    let g_host: Vec<f64> = (0..dims.n).map(|i| 0.5 - (i as f64 * 0.9).sin()).collect();
    let g = be.mat_from_col_major(dims.n, 1, &g_host).unwrap();
    for stopping in [
        StoppingRule::Fixed(7),
        StoppingRule::Residual {
            eps_abs: 1e-4,
            eps_rel: 1e-4,
        },
    ] {
        let settings = Settings::default()
            .with_alpha(1.6)
            .with_stopping(stopping)
            .with_wrt(Wrt::all())
            .with_tape(Tape::Full);
        let solver = AltDiff::new(be.clone(), &problem, settings).unwrap();
        let sol = solver.solve(problem.params()).unwrap();
        let expected = forward_vjp(&sol.to_host(be).unwrap(), &g_host, dims);
        let got = grads_host(be, &solver.vjp(&sol, &g, VjpMode::Unrolled).unwrap());
        assert_grads_agree(
            &format!("alpha 1.6, {stopping:?}: unrolled VJP"),
            &got,
            &expected,
            1e-10,
        );
    }
    assert!(matches!(
        Settings::default().with_alpha(2.0).validate(),
        Err(crate::SettingsError::Invalid { field: "alpha", .. })
    ));
}

/// [`Settings::limit`](crate::Settings::limit): the polished solution equals clarabel's,
/// in fewer iterations than the plain iteration needs; the Jacobians of all six
/// parameters equal the KKT oracle's and the iterated ones; [`VjpMode::Limit`] equals
/// `J'g`; JVPs equal the KKT oracle's; an infeasible problem is certified; a degenerate mask
/// (a duplicated active row) falls back to iterating.
pub fn limit_solve_matches_kkt_and_clarabel<B: LinAlg<Real = f64>>(be: &B) {
    let mut problems = oracle_problems();
    problems.push(("seed generator", random_qp(Generator::Seed, 12, 4, 5, 21)));
    let loose = tight()
        .with_stopping(StoppingRule::Residual {
            eps_abs: 1e-9,
            eps_rel: 1e-9,
        })
        .with_max_iter(1_000_000);
    for (name, qp) in problems {
        let oracle = clarabel_solve(&qp).expect("clarabel solves it");
        let plain = solve(be, &qp, loose.clone().with_limit(false));
        let sol = solve(
            be,
            &qp,
            loose
                .clone()
                .with_limit(true)
                .with_iteration(IterationSpace::Dual),
        );
        assert_solved_sooner(name, &sol, &plain, &oracle.x);
        assert_close(&format!("{name}: nu"), &sol.nu, &oracle.nu, 1e-6);
        let active = dual_active_set(&qp, &sol.x, &sol.nu);
        assert_kkt_jacobians(&format!("{name}, limit"), &qp, &active, &sol, 1e-8);
        // dx/db or dx/dh alone (fewer columns than C has rows): the backend's kept half of
        // K = H^-1 C' where it has one (x = -L^-T W (v + z)), else a solve with H
        for param in [Param::B, Param::H] {
            let alone = solve(
                be,
                &qp,
                loose
                    .clone()
                    .with_limit(true)
                    .with_iteration(IterationSpace::Dual)
                    .with_wrt(Wrt::none().with(param)),
            );
            let exact = kkt_jacobian(&qp, &active, param).expect("non-degenerate");
            let err = rel_diff(alone.jacobian(param).expect("requested"), &exact);
            assert!(
                err < 1e-8,
                "{name}: dx/d{} alone differs from KKT by {err:e}",
                param.name()
            );
        }
    }
    // all six parameters, against the iterated Jacobians, and the VJP
    let qp = random_qp(Generator::WellConditioned, 6, 2, 5, 61);
    let iterated = solve(be, &qp, tight().with_wrt(Wrt::all()));
    let problem = Qp::from_host(be, &qp).unwrap();
    let dims = problem.dims();
    let solver = AltDiff::new(
        be.clone(),
        &problem,
        loose
            .clone()
            .with_wrt(Wrt::all())
            .with_limit(true)
            .with_iteration(IterationSpace::Dual),
    )
    .unwrap();
    let sol = solver.solve(problem.params()).unwrap();
    let sol_host = sol.to_host(be).unwrap();
    assert_jacobians_agree("limit vs iterated", &Param::ALL, &sol_host, &iterated, 1e-8);
    let g_host: Vec<f64> = (0..dims.n).map(|i| 1.0 - 0.3 * i as f64).collect();
    let g = be.mat_from_col_major(dims.n, 1, &g_host).unwrap();
    let expected = forward_vjp(&iterated, &g_host, dims);
    let got = grads_host(be, &solver.vjp(&sol, &g, VjpMode::Limit).unwrap());
    assert_grads_agree("limit VJP", &got, &expected, 1e-8);
    // JVPs along directions of all six parameters: the limit equals the KKT oracle
    let dirs = [random_direction(&qp, 161), random_direction(&qp, 162)];
    let jvp_sol = solver
        .solve_jvp(problem.params(), &as_directions(&dirs))
        .unwrap();
    assert_eq!(jvp_sol.status(), Status::Solved, "limit JVP");
    let jvp = host_of(be, jvp_sol.jvp().expect("jvp"));
    let jvp_host = jvp_sol.to_host(be).unwrap();
    for (j, dir) in dirs.iter().enumerate() {
        let got: Vec<f64> = (0..dims.n).map(|i| jvp.get(i, j)).collect();
        assert_jvp_is_kkt(&format!("limit JVP {j}"), &qp, &jvp_host, dir, &got);
    }
    // no equalities and every inequality slack (A of the limit system empty): dx/dh = 0
    let slack = HostQp {
        p: HostMatrix::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 0.0 }),
        q: vec![0.5, -0.5],
        a: HostMatrix::from_fn(0, 2, |_, _| 0.0),
        b: vec![],
        g: HostMatrix::from_rows(Field::G, &[vec![1.0, 0.0], vec![0.0, 1.0]]).unwrap(),
        h: vec![1.0, 1.0],
    };
    let sol = solve(
        be,
        &slack,
        loose
            .clone()
            .with_limit(true)
            .with_iteration(IterationSpace::Dual)
            .with_wrt(Wrt::none().with(Param::H)),
    );
    assert_close("all slack: x", &sol.x, &[-0.5, 0.5], 1e-8);
    let dx_dh = sol.jacobian(Param::H).expect("requested");
    assert_eq!(
        (dx_dh.nrows(), dx_dh.ncols()),
        (2, 2),
        "all slack: dx/dh shape"
    );
    assert!(
        (0..2).all(|i| (0..2).all(|j| dx_dh.get(i, j) == 0.0)),
        "all slack: dx/dh = 0"
    );
    // an infeasible problem is certified, never polished into a "solution"
    let infeasible = HostQp {
        p: HostMatrix::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 0.0 }),
        q: vec![0.0, 0.0],
        a: HostMatrix::from_rows(Field::A, &[vec![1.0, 1.0]]).unwrap(),
        b: vec![1.0],
        g: HostMatrix::from_rows(Field::G, &[vec![1.0, 1.0]]).unwrap(),
        h: vec![0.0],
    };
    let sol = solve(
        be,
        &infeasible,
        loose
            .clone()
            .with_limit(true)
            .with_iteration(IterationSpace::Dual),
    );
    assert_eq!(sol.status, Status::PrimalInfeasible, "limit: infeasible");
    // a duplicated active row: the limit system is singular, the tangents are iterated;
    // dx/dq and dx/db stay those of the problem without the copy
    let base = random_qp(Generator::WellConditioned, 6, 1, 4, 5);
    let base_sol = solve(be, &base, tight());
    let active = dual_active_set(&base, &base_sol.x, &base_sol.nu);
    let row = active.iter().position(|&a| a).expect("an active row");
    let mut dup = base.clone();
    let rows: Vec<Vec<f64>> = (0..4)
        .chain([row])
        .map(|i| (0..6).map(|j| base.g.get(i, j)).collect())
        .collect();
    dup.g = HostMatrix::from_rows(Field::G, &rows).unwrap();
    dup.h.push(base.h[row]);
    let fallback = solve(
        be,
        &dup,
        loose
            .with_limit(true)
            .with_iteration(IterationSpace::Dual)
            .with_max_iter(20_000),
    );
    assert!(
        matches!(fallback.status, Status::Solved | Status::MaxIterations),
        "degenerate mask: {:?}",
        fallback.status
    );
    assert_close("degenerate mask: x", &fallback.x, &base_sol.x, 1e-7);
    for param in [Param::Q, Param::B] {
        let exact = kkt_jacobian(&base, &active, param).unwrap();
        let err = rel_diff(fallback.jacobian(param).unwrap(), &exact);
        assert!(err < 1e-6, "degenerate mask: dx/d{} {err:e}", param.name());
    }
}

/// An LP (`P = 0`, equalities, `x >= 0`) at a nondegenerate vertex: the solution equals
/// clarabel's, `dx/dq` is exactly 0 (x is piecewise constant in the cost) and `dx/db` is
/// the KKT oracle's. The limit gets there to rounding in a few dozen iterations; the
/// iterated Jacobian (the paper's method) is already small at convergence, never
/// "confident garbage".
pub fn lp_gradients_are_exact<B: LinAlg<Real = f64>>(be: &B) {
    let (n, p) = (12, 4);
    let mut rng = StdRng::seed_from_u64(3);
    let a = HostMatrix::from_fn(p, n, |_, _| rng.random_range(-1.0..1.0));
    let x0: Vec<f64> = (0..n)
        .map(|i| {
            if i < p {
                rng.random_range(0.5..1.5)
            } else {
                0.0
            }
        })
        .collect();
    let lp = HostQp {
        p: HostMatrix::zeros(n, n),
        q: (0..n).map(|_| rng.random_range(0.5..2.5)).collect(),
        b: (0..p)
            .map(|i| (0..n).map(|j| a.get(i, j) * x0[j]).sum())
            .collect(),
        a,
        g: HostMatrix::from_fn(n, n, |i, j| if i == j { -1.0 } else { 0.0 }),
        h: vec![0.0; n],
    };
    let oracle = clarabel_solve(&lp).expect("clarabel solves the LP");
    let active = dual_active_set(&lp, &oracle.x, &oracle.nu);
    let exact_db = kkt_jacobian(&lp, &active, Param::B).expect("a nondegenerate vertex");
    let settings = tight()
        .with_stopping(StoppingRule::Residual {
            eps_abs: 1e-9,
            eps_rel: 1e-9,
        })
        .with_wrt(Wrt::none().with(Param::Q).with(Param::B));
    for (limit, tol_q) in [(true, 1e-10), (false, 1e-3)] {
        let sol = solve(be, &lp, limited(settings.clone(), limit));
        assert_eq!(sol.status, Status::Solved, "limit {limit}");
        assert_close(&format!("limit {limit}: x"), &sol.x, &oracle.x, 1e-6);
        let dq = sol.jacobian(Param::Q).unwrap().col_major();
        let norm = dq.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(norm < tol_q, "limit {limit}: |dx/dq| = {norm:e}, exactly 0");
        let err = rel_diff(sol.jacobian(Param::B).unwrap(), &exact_db);
        assert!(err < tol_q.max(1e-8), "limit {limit}: dx/db {err:e}");
    }
}

/// Ruiz equilibration maps everything back exactly: on a badly scaled problem the scaled
/// solve (alone and with adaptive rho) needs fewer iterations and returns the same solution
/// (clarabel, 1e-7), duals and Jacobians of all six parameters (1e-8) as the unscaled solve;
/// JVPs (1e-8) and the limit, implicit and KKT VJPs (1e-7) equal the unscaled ones; the
/// unrolled VJP is the exact adjoint of the scaled iterations run (1e-10); a warm start
/// from its own solution converges at once; an infeasible problem is still certified.
pub fn scaling_keeps_derivatives_exact<B: LinAlg<Real = f64>>(be: &B) {
    let qp = badly_scaled(&random_qp(Generator::WellConditioned, 9, 3, 5, 97));
    let problem = Qp::from_host(be, &qp).unwrap();
    let dims = problem.dims();
    let ruiz = Some(crate::Ruiz::always().with_adaptive_rho(false));
    let base = tight().with_wrt(Wrt::all()).with_scaling(None);
    let plain = solve(be, &qp, base.clone());
    let scaled = solve(be, &qp, base.clone().with_scaling(ruiz));
    let adaptive = Some(crate::AdaptiveRho::default().with_every(10));
    let both = solve(
        be,
        &qp,
        base.clone().with_scaling(ruiz).with_adaptive_rho(adaptive),
    );
    // by default only badly scaled data are equilibrated
    let by_default = |qp: &HostQp| {
        let problem = Qp::from_host(be, qp).unwrap();
        let solver = AltDiff::new(be.clone(), &problem, Settings::default()).unwrap();
        solver.is_scaled()
    };
    assert!(
        by_default(&qp),
        "badly scaled data are equilibrated by default"
    );
    let well = random_qp(Generator::WellConditioned, 9, 3, 5, 97);
    assert!(!by_default(&well), "well scaled data are left alone");
    let oracle = clarabel_solve(&qp).expect("clarabel solves it");
    for (what, sol) in [("scaled", &scaled), ("scaled + adaptive", &both)] {
        assert_solved_sooner(what, sol, &plain, &oracle.x);
        assert_close(&format!("{what}: lam"), &sol.lam, &plain.lam, 1e-7);
        assert_close(&format!("{what}: nu"), &sol.nu, &plain.nu, 1e-7);
        assert_close(&format!("{what}: s"), &sol.s, &plain.s, 1e-7);
        assert_close(
            &format!("{what}: objective"),
            &[sol.objective],
            &[plain.objective],
            1e-8,
        );
        assert!(
            sol.primal_residual < 1e-8 && sol.dual_residual < 1e-8,
            "{what}"
        );
        assert_jacobians_agree(what, &Param::ALL, sol, &plain, 1e-8);
    }
    // JVPs
    let dirs = [random_direction(&qp, 197), random_direction(&qp, 297)];
    let jvp = |settings: Settings| {
        let solver = AltDiff::new(be.clone(), &problem, settings.with_wrt(Wrt::none())).unwrap();
        let sol = solver
            .solve_jvp(problem.params(), &as_directions(&dirs))
            .unwrap();
        host(be, sol.jvp().expect("jvp"))
    };
    assert_close(
        "scaled JVP",
        &jvp(base.clone().with_scaling(ruiz)),
        &jvp(base.clone()),
        1e-8,
    );
    // VJPs at convergence against J'g of the unscaled Jacobians
    let g_host: Vec<f64> = (0..dims.n).map(|i| (i as f64 * 0.9).sin() + 0.2).collect();
    let g = be.mat_from_col_major(dims.n, 1, &g_host).unwrap();
    let expected = forward_vjp(&plain, &g_host, dims);
    let limit = tight()
        .with_wrt(Wrt::none())
        .with_scaling(ruiz)
        .with_limit(true)
        .with_iteration(IterationSpace::Dual);
    let solver = AltDiff::new(be.clone(), &problem, limit).unwrap();
    let sol = solver.solve(problem.params()).unwrap();
    for mode in [VjpMode::Limit, VjpMode::Implicit, VjpMode::Kkt] {
        let got = grads_host(be, &solver.vjp(&sol, &g, mode).unwrap());
        assert_grads_agree(&format!("scaled {mode:?} VJP"), &got, &expected, 1e-7);
    }
    // the unrolled VJP of a truncated scaled solve is the adjoint of its forward mode
    let truncated = Settings::default()
        .with_stopping(StoppingRule::Fixed(20))
        .with_wrt(Wrt::all())
        .with_tape(Tape::Full)
        .with_scaling(ruiz);
    let solver = AltDiff::new(be.clone(), &problem, truncated).unwrap();
    let sol = solver.solve(problem.params()).unwrap();
    assert_eq!(sol.tape_len(), 20);
    let expected = forward_vjp(&sol.to_host(be).unwrap(), &g_host, dims);
    let got = grads_host(be, &solver.vjp(&sol, &g, VjpMode::Unrolled).unwrap());
    assert_grads_agree("scaled unrolled VJP", &got, &expected, 1e-10);
    // warm start from its own solution
    let solver = AltDiff::new(be.clone(), &problem, base.with_scaling(ruiz)).unwrap();
    let first = solver.solve(problem.params()).unwrap();
    let again = solver.solve_warm(problem.params(), &first).unwrap();
    assert_eq!(again.status(), Status::Solved);
    assert!(again.iterations() <= 2, "warm: {}", again.iterations());
    assert_close("warm x", &host(be, again.x()), &scaled.x, 1e-9);
    // infeasible: x0 + x1 = 1 and 1000 (x0 + x1) <= 0
    let infeasible = HostQp {
        p: HostMatrix::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 0.0 }),
        q: vec![0.0, 0.0],
        a: HostMatrix::from_fn(1, 2, |_, _| 1.0),
        b: vec![1.0],
        g: HostMatrix::from_fn(1, 2, |_, _| 1000.0),
        h: vec![0.0],
    };
    let sol = solve(be, &infeasible, Settings::default().with_scaling(ruiz));
    assert_eq!(sol.status, Status::PrimalInfeasible);
}

/// `k` columns of host vectors as one block.
fn columns_block<B: LinAlg<Real = f64>>(be: &B, rows: usize, columns: &[&[f64]]) -> B::Mat {
    let data: Vec<f64> = columns.iter().flat_map(|c| c.iter().copied()).collect();
    be.mat_from_col_major(rows, columns.len(), &data)
        .expect("block")
}

/// The parameters of host problems (sharing `P`, `A`, `G`) as one batch.
fn batch_params<B: LinAlg<Real = f64>>(be: &B, elements: &[HostQp]) -> QpParams<B> {
    let block = |f: fn(&HostQp) -> &[f64]| {
        let columns: Vec<&[f64]> = elements.iter().map(f).collect();
        columns_block(be, f(&elements[0]).len(), &columns)
    };
    QpParams {
        q: block(|qp| &qp.q),
        b: block(|qp| &qp.b),
        h: block(|qp| &qp.h),
    }
}

/// Column `j` of a host column-major block with `rows` rows.
fn block_column(data: &[f64], rows: usize, j: usize) -> &[f64] {
    &data[j * rows..(j + 1) * rows]
}

/// `base` with its `q`, `b`, `h` perturbed by `N(0, scale^2)`-ish uniform noise.
fn perturbed_params(base: &HostQp, rng: &mut StdRng, scale: f64) -> HostQp {
    let mut qp = base.clone();
    for v in qp.q.iter_mut().chain(&mut qp.b).chain(&mut qp.h) {
        *v += scale * rng.random_range(-1.0..1.0);
    }
    qp
}

/// A batch sharing `P`, `A`, `G` is its elements solved one by one: in the primal space the
/// same iterations (every element stops on its own) and `x` to 1e-10, clarabel's `x` to
/// 1e-6; its VJPs (implicit and KKT) are the single solves' KKT VJPs column by column, with
/// the gradients of `P`, `A`, `G` summed over the elements.
pub fn batch_matches_single_solves<B: LinAlg<Real = f64>>(be: &B) {
    let base = random_qp(Generator::WellConditioned, 8, 2, 6, 91);
    let mut rng = StdRng::seed_from_u64(92);
    let k = 5;
    let elements: Vec<HostQp> = (0..k)
        .map(|j| perturbed_params(&base, &mut rng, 0.3 * j as f64))
        .collect();
    let problem = Qp::from_host(be, &base).unwrap();
    let dims = problem.dims();
    let settings = tight()
        .with_wrt(Wrt::none())
        .with_iteration(IterationSpace::Primal);
    let solver = AltDiff::new(be.clone(), &problem, settings.clone()).unwrap();
    // the batch in the dual space gives the primal iterates (r = 8 <= n = 8), compared at a
    // fixed count: at eps 1e-12 whether a check passes depends on the last bits
    let plain = settings
        .clone()
        .with_limit(false)
        .with_stopping(StoppingRule::Fixed(60));
    let in_space = |space| {
        let solver = AltDiff::new(be.clone(), &problem, plain.clone().with_iteration(space));
        solver
            .unwrap()
            .solve_batch(&batch_params(be, &elements))
            .unwrap()
    };
    let (in_dual, in_primal) = (
        in_space(IterationSpace::Dual),
        in_space(IterationSpace::Primal),
    );
    assert_close(
        "dual-space batch x",
        &host(be, in_dual.x()),
        &host(be, in_primal.x()),
        1e-10,
    );
    let batch = solver.solve_batch(&batch_params(be, &elements)).unwrap();
    for j in 0..k {
        let (d, p) = (in_dual.element(j).unwrap(), in_primal.element(j).unwrap());
        assert_eq!(
            (d.status, d.iterations),
            (p.status, p.iterations),
            "element {j}"
        );
    }
    assert_eq!(batch.len(), k);
    let x = host(be, batch.x());
    let g_host = random_block(&mut rng, dims.n, k);
    let g = be.mat_from_col_major(dims.n, k, &g_host).unwrap();
    let mut expected_sums: Option<Vec<HostMatrix>> = None;
    let mut singles = Vec::new();
    for (j, qp) in elements.iter().enumerate() {
        let params = QpParams::from_host(be, dims, &qp.q, &qp.b, &qp.h).unwrap();
        let single = solver.solve(&params).unwrap();
        let element = batch.element(j).expect("accepted");
        assert_eq!(element.status, Status::Solved, "element {j}");
        assert_eq!(element.iterations, single.iterations(), "element {j}");
        assert_close(
            "batch x",
            block_column(&x, dims.n, j),
            &host(be, single.x()),
            1e-10,
        );
        let oracle = clarabel_solve(qp).expect("clarabel");
        assert_close(
            "batch x vs clarabel",
            block_column(&x, dims.n, j),
            &oracle.x,
            1e-6,
        );
        assert!(
            (element.objective - oracle.objective).abs() < 1e-6 * oracle.objective.abs().max(1.0)
        );
        let seed = be
            .mat_from_col_major(dims.n, 1, block_column(&g_host, dims.n, j))
            .unwrap();
        let grads = grads_host(be, &solver.vjp(&single, &seed, VjpMode::Kkt).unwrap());
        expected_sums = Some(match expected_sums {
            None => grads.clone(),
            Some(sums) => sums
                .iter()
                .zip(&grads)
                .map(|(s, g)| {
                    HostMatrix::from_fn(s.nrows(), s.ncols(), |r, c| s.get(r, c) + g.get(r, c))
                })
                .collect(),
        });
        singles.push(grads);
    }
    let expected_sums = expected_sums.unwrap();
    for mode in [VjpMode::Implicit, VjpMode::Limit, VjpMode::Kkt] {
        let got = grads_host(be, &solver.vjp_batch(&batch, &g, mode).unwrap());
        for (j, single) in singles.iter().enumerate() {
            for (what, (all, one)) in ["q", "b", "h"].iter().zip(got.iter().zip(single)) {
                let col: Vec<f64> = (0..all.nrows()).map(|r| all.get(r, j)).collect();
                let one: Vec<f64> = (0..one.nrows()).map(|r| one.get(r, 0)).collect();
                assert_close(&format!("{mode:?} batch VJP {what}[{j}]"), &col, &one, 1e-7);
            }
        }
        for (what, (all, sum)) in ["P", "A", "G"]
            .iter()
            .zip(got[3..].iter().zip(&expected_sums[3..]))
        {
            let err = rel_diff(all, sum);
            assert!(
                err < 1e-7,
                "{mode:?} batch VJP wrt {what}: differs by {err:e}"
            );
        }
    }
    assert!(matches!(
        solver.vjp_batch(&batch, &be.zeros(dims.n, k - 1).unwrap(), VjpMode::Kkt),
        Err(Error::Dimension {
            field: Field::Seed,
            ..
        })
    ));
    assert!(matches!(
        solver.vjp_batch(&batch, &g, VjpMode::Unrolled),
        Err(Error::Request(_))
    ));
}

/// One bad element never spoils the others: in a batch of a feasible element, an
/// infeasible one (`x_0 <= -1` and `x_0 >= 1`), one with a NaN in `h` and a second feasible
/// one, the NaN element is an error naming `h` and its column, the infeasible one runs out
/// of iterations, and the feasible ones get exactly what a batch of them alone gets
/// (solution, status, iterations and VJPs, which are zero for the NaN element).
pub fn batch_elements_are_independent<B: LinAlg<Real = f64>>(be: &B) {
    let rows = |r: &[&[f64]]| r.iter().map(|v| v.to_vec()).collect::<Vec<_>>();
    let qp = |h: Vec<f64>, q: Vec<f64>| HostQp {
        p: HostMatrix::from_rows(
            Field::P,
            &rows(&[&[2.0, 0.5, 0.0], &[0.5, 1.0, 0.0], &[0.0, 0.0, 1.5]]),
        )
        .unwrap(),
        q,
        a: HostMatrix::from_rows(Field::A, &rows(&[&[1.0, 1.0, 1.0]])).unwrap(),
        b: vec![1.0],
        g: HostMatrix::from_rows(
            Field::G,
            &rows(&[
                &[1.0, 0.0, 0.0],
                &[-1.0, 0.0, 0.0],
                &[0.0, -1.0, 0.0],
                &[0.0, 0.0, -1.0],
            ]),
        )
        .unwrap(),
        h,
    };
    let good = qp(vec![2.0, 0.0, 0.0, 0.0], vec![1.0, -1.0, 0.5]);
    let other = qp(vec![0.5, 0.5, 0.0, 0.2], vec![-1.0, 2.0, 0.0]);
    let infeasible = qp(vec![-1.0, -1.0, 0.0, 0.0], vec![1.0, -1.0, 0.5]);
    let nan = qp(vec![2.0, 0.0, f64::NAN, 0.0], vec![1.0, -1.0, 0.5]);
    let problem = Qp::from_host(be, &good).unwrap();
    let dims = problem.dims();
    let settings = tight().with_wrt(Wrt::none()).with_max_iter(3000);
    let solver = AltDiff::new(be.clone(), &problem, settings).unwrap();
    let mixed = solver
        .solve_batch(&batch_params(
            be,
            &[good.clone(), infeasible, nan, other.clone()],
        ))
        .unwrap();
    let alone = solver
        .solve_batch(&batch_params(be, &[good, other]))
        .unwrap();
    assert!(matches!(
        mixed.error(2),
        Some(Error::NonFinite {
            field: Field::H,
            row: 2,
            col: 2,
            ..
        })
    ));
    assert!(mixed.element(2).is_none());
    assert_eq!(mixed.element(1).unwrap().status, Status::MaxIterations);
    assert_eq!(mixed.element(1).unwrap().iterations, 3000);
    let (x_mixed, x_alone) = (host(be, mixed.x()), host(be, alone.x()));
    assert!(block_column(&x_mixed, dims.n, 2).iter().all(|v| v.is_nan()));
    for (m, a) in [(0, 0), (3, 1)] {
        // the same element in another batch: the same iterations, and the same numbers up to
        // the rounding of products with another column count
        let (got, want) = (mixed.element(m).unwrap(), alone.element(a).unwrap());
        assert!(got.status.is_solved(), "element {m}");
        assert_eq!(
            (got.status, got.iterations),
            (want.status, want.iterations),
            "element {m}"
        );
        assert_close("objective", &[got.objective], &[want.objective], 1e-12);
        assert_close(
            "x",
            block_column(&x_mixed, dims.n, m),
            block_column(&x_alone, dims.n, a),
            1e-12,
        );
    }
    let seeds = [[1.0, -2.0, 0.5], [0.3, 0.0, 1.0]];
    let g_mixed = columns_block(be, dims.n, &[&seeds[0], &[1.0; 3], &[1.0; 3], &seeds[1]]);
    let g_alone = columns_block(be, dims.n, &[&seeds[0], &seeds[1]]);
    for mode in [VjpMode::Kkt, VjpMode::Limit] {
        let got = solver.vjp_batch(&mixed, &g_mixed, mode).unwrap();
        let want = solver.vjp_batch(&alone, &g_alone, mode).unwrap();
        for (got, want, rows) in [
            (&got.q, &want.q, dims.n),
            (&got.b, &want.b, dims.p),
            (&got.h, &want.h, dims.m),
        ] {
            let (got, want) = (host(be, got), host(be, want));
            assert_close(
                "VJP",
                block_column(&got, rows, 0),
                block_column(&want, rows, 0),
                1e-10,
            );
            assert_close(
                "VJP",
                block_column(&got, rows, 3),
                block_column(&want, rows, 1),
                1e-10,
            );
            assert!(
                block_column(&got, rows, 2).iter().all(|v| *v == 0.0),
                "NaN element: zero gradient"
            );
        }
    }
}

/// A batch of an equilibrated solver (badly scaled data, default settings) is solved in the
/// user's units: every element's `x` matches clarabel to 1e-6 and its KKT VJP the single
/// solve's; problems with their own `P` are solved one by one, a non-convex one being that
/// element's error only.
pub fn batch_of_scaled_and_different_problems<B: LinAlg<Real = f64>>(be: &B) {
    let base = badly_scaled(&random_qp(Generator::WellConditioned, 6, 1, 4, 95));
    let mut rng = StdRng::seed_from_u64(96);
    let elements: Vec<HostQp> = (0..3)
        .map(|_| perturbed_params(&base, &mut rng, 0.1))
        .collect();
    let problem = Qp::from_host(be, &base).unwrap();
    let dims = problem.dims();
    let settings = tight().with_wrt(Wrt::none());
    let solver = AltDiff::new(be.clone(), &problem, settings.clone()).unwrap();
    assert!(solver.is_scaled());
    let batch = solver.solve_batch(&batch_params(be, &elements)).unwrap();
    let x = host(be, batch.x());
    let g_host = random_block(&mut rng, dims.n, 3);
    let grads = solver
        .vjp_batch(
            &batch,
            &be.mat_from_col_major(dims.n, 3, &g_host).unwrap(),
            VjpMode::Kkt,
        )
        .unwrap();
    let q_grads = host(be, &grads.q);
    for (j, qp) in elements.iter().enumerate() {
        assert!(batch.element(j).unwrap().status.is_solved());
        let oracle = clarabel_solve(qp).expect("clarabel");
        assert_close(
            "scaled batch x",
            block_column(&x, dims.n, j),
            &oracle.x,
            1e-6,
        );
        let params = QpParams::from_host(be, dims, &qp.q, &qp.b, &qp.h).unwrap();
        let single = solver.solve(&params).unwrap();
        let seed = be
            .mat_from_col_major(dims.n, 1, block_column(&g_host, dims.n, j))
            .unwrap();
        let one = solver.vjp(&single, &seed, VjpMode::Kkt).unwrap();
        assert_close(
            "scaled batch VJP q",
            block_column(&q_grads, dims.n, j),
            &host(be, &one.q),
            1e-6,
        );
    }
    let mut concave = elements[0].clone();
    concave.p = HostMatrix::from_fn(dims.n, dims.n, |i, j| if i == j { -1.0 } else { 0.0 });
    let problems = [
        Qp::from_host(be, &elements[1]).unwrap(),
        Qp::from_host(be, &concave).unwrap(),
    ];
    let results = AltDiff::solve_each(be, problems.iter().map(|p| (p, p.params())), &settings);
    let (_, first) = results[0].as_ref().expect("convex element");
    assert_close(
        "solve_each x",
        &host(be, first.x()),
        &clarabel_solve(&elements[1]).unwrap().x,
        1e-6,
    );
    assert!(matches!(results[1], Err(Error::NotConvex { .. })));
}
