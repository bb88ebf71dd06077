//! [`Precision::Single`]: `H` factored, and the dual-space operators formed, in `f32`.
//!
//! The tolerances are the precision's: the single-precision results must agree with the
//! oracles to `1e-4` and must differ from the `f64` ones by more than `f64` rounding (so a
//! silent fallback to `f64` fails), while the `f64` backend agrees to `1e-8`.

use altdiff_core::testing::{
    Generator, clarabel_solve, dual_active_set, kkt_jacobian, masked_qp, random_qp, rel_diff,
    solve_host,
};
use altdiff_core::{
    AltDiff, Error, HostQp, IterationSpace, LinAlg, Param, Qp, Settings, Status, StoppingRule,
    VjpMode, Wrt,
};
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
    // H^-1: exact in f64 (H H^-1 = I, where H = P + rho C'C with P = h, rho = 0.5)
    let (inv_d, inv_s) = (double.inverse(Par::Seq), single.inverse(Par::Seq));
    let full = &h + c.transpose() * &c * 0.5;
    let eye = Mat::<f64>::identity(n, n);
    assert!(relative(&(&full * &inv_d), &eye) < 1e-12);
    check("H^-1", &inv_s, &inv_d);
    // the split solve through the kept half, in f32, against the plain f64 one
    let (mut kept, f) = (factor(Precision::Single), c.transpose() * &y * 3.0);
    check(
        "M kept",
        &kept.gram_inverse_keeping(c.as_ref(), Par::Seq),
        &m_d,
    );
    assert!(kept.keeps_half() && !double.keeps_half());
    let (chf_d, t_d) = double.solve_split(c.as_ref(), f.as_ref(), Par::Seq);
    let (chf_s, t_s) = kept.solve_split(c.as_ref(), f.as_ref(), Par::Seq);
    check("C H^-1 f", &chf_s, &chf_d);
    let (x_d, x_s) = (
        double.solve_join(c.as_ref(), t_d, y.as_ref(), Par::Seq),
        kept.solve_join(c.as_ref(), t_s, y.as_ref(), Par::Seq),
    );
    check("H^-1 (f - C'y)", &x_s, &x_d);
    let mut direct = &f - c.transpose() * &y;
    double.solve_in_place(direct.as_mut(), Par::Seq);
    assert!(relative(&x_d, &direct) < 1e-12);
    // B + X T^-1 X' (here I + C H^-1 C'): in f32 formed and factored in place
    let eye_r = Mat::<f64>::identity(r, r);
    let schur = |t: &DenseCholesky, precision| {
        let schur = Some((t, c.as_ref()));
        DenseCholesky::schur_in(eye_r.as_ref(), (1.0, 0.0), schur, Par::Seq, precision)
            .expect("positive definite")
    };
    let (s_d, s_s) = (
        schur(&double, Precision::Double),
        schur(&single, Precision::Single),
    );
    assert_eq!(s_s.precision(), Precision::Single);
    let (mut z_d, mut z_s, mut z) = (y.clone(), y.clone(), y.clone());
    s_d.solve_in_place(z_d.as_mut(), Par::Seq);
    s_s.solve_in_place(z_s.as_mut(), Par::Seq);
    check("(B + X T^-1 X')^-1 y", &z_s, &z_d);
    let sum = DenseCholesky::new((&eye_r + &m_d).as_ref(), Par::Seq).expect("definite");
    sum.solve_in_place(z.as_mut(), Par::Seq);
    assert!(relative(&z_d, &z) < 1e-12);
    // shift I + alpha B: (2 I - 0.5 I) z = y, and with the term, 0.25 I + 0.5 I + M
    for precision in [Precision::Double, Precision::Single] {
        let s = DenseCholesky::schur_in(eye_r.as_ref(), (-0.5, 2.0), None, Par::Seq, precision)
            .expect("definite");
        let mut z = y.clone();
        s.solve_in_place(z.as_mut(), Par::Seq);
        assert!(relative(&(&z * 1.5), &y) < 1e-6, "{precision:?}");
    }
    let affine = |t: &DenseCholesky, precision| {
        let schur = Some((t, c.as_ref()));
        DenseCholesky::schur_in(eye_r.as_ref(), (0.5, 0.25), schur, Par::Seq, precision)
            .expect("positive definite")
    };
    let (mut z_d, mut z_s, mut z) = (y.clone(), y.clone(), y.clone());
    affine(&double, Precision::Double).solve_in_place(z_d.as_mut(), Par::Seq);
    affine(&single, Precision::Single).solve_in_place(z_s.as_mut(), Par::Seq);
    check("(0.25 I + 0.5 B + X T^-1 X')^-1 y", &z_s, &z_d);
    let sum = &eye_r * 0.75 + &m_d;
    DenseCholesky::new(sum.as_ref(), Par::Seq)
        .expect("definite")
        .solve_in_place(z.as_mut(), Par::Seq);
    assert!(relative(&z_d, &z) < 1e-12);
}

/// `J'g` of the KKT oracle's Jacobian wrt `param` at the active set `active`.
fn oracle_vjp(qp: &HostQp, active: &[bool], param: Param, g: &[f64]) -> Vec<f64> {
    let jac = kkt_jacobian(qp, active, param).expect("non-degenerate");
    (0..jac.ncols())
        .map(|j| (0..jac.nrows()).map(|i| jac.get(i, j) * g[i]).sum())
        .collect()
}

/// The largest entry of `|a - b|` over the largest of `|b|` (at least 1).
/// The VJP's gradients wrt `q`, `b` and `h` within `tol` ([`gap`]) of the KKT oracle's for
/// the seed `g` at the active set `active`.
fn assert_vjp_near_oracle(
    be: &FaerBackend,
    (qp, active, g): (&HostQp, &[bool], &[f64]),
    grads: &altdiff_core::Grads<FaerBackend>,
    tol: f64,
    what: &str,
) {
    for (param, got) in [
        (Param::Q, &grads.q),
        (Param::B, &grads.b),
        (Param::H, &grads.h),
    ] {
        let want = oracle_vjp(qp, active, param, g);
        let err = gap(&be.to_col_major(got).expect("grad"), &want);
        assert!(
            err < tol,
            "{what}: VJP wrt {} off the KKT oracle by {err:e}",
            param.name()
        );
    }
}

fn gap(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / scale
}

/// Under a tight residual rule the single-precision solver still converges (the forward
/// solve ends by its polish, or refines each x-update in the primal space), and the polish,
/// the limit VJP and the KKT VJP are refined (the first two to a thousandth of the rule's
/// tolerance, the KKT VJP to full precision): they agree with the `f64` backend and the KKT
/// oracle to 1e-9, where unrefined single precision is off by about 1e-7.
#[test]
fn single_precision_refines_the_polish_and_the_vjps_to_full_precision() {
    let tight = Settings::default()
        .with_stopping(StoppingRule::Residual {
            eps_abs: 1e-10,
            eps_rel: 1e-10,
        })
        .with_max_iter(20_000);
    for (name, qp) in problems() {
        let oracle = clarabel_solve(&qp).expect("clarabel solves it");
        let active = dual_active_set(&qp, &oracle.x, &oracle.nu);
        let x_double = solve_host(&FaerBackend::default(), &qp, tight.clone().with_limit(true))
            .expect("solves")
            .x;
        let be = single();
        let problem = Qp::from_host(&be, &qp).expect("valid");
        let n = qp.q.len();
        let g_host: Vec<f64> = (0..n).map(|i| 1.0 - 0.1 * i as f64).collect();
        let g = be.mat_from_col_major(n, 1, &g_host).expect("g");
        for (how, settings) in [
            ("limit", tight.clone().with_limit(true)),
            ("forward only", tight.clone()),
            (
                "forward only, primal space",
                tight.clone().with_iteration(IterationSpace::Primal),
            ),
        ] {
            let solver = AltDiff::new(be.clone(), &problem, settings).expect("set up");
            let sol = solver.solve(problem.params()).expect("solves");
            assert_eq!(sol.status(), Status::Solved, "{name}, {how}");
            let x = be.to_col_major(sol.x()).expect("x");
            let err = gap(&x, &x_double);
            assert!(err < 1e-9, "{name}, {how}: x off f64's by {err:e}");
            if how != "limit" {
                continue;
            }
            for mode in [VjpMode::Limit, VjpMode::Kkt] {
                let grads = solver.vjp(&sol, &g, mode).expect("vjp");
                let what = format!("{name}, {mode:?}");
                assert_vjp_near_oracle(&be, (&qp, &active, &g_host), &grads, 1e-9, &what);
            }
        }
    }
}

/// Under the default rule (1e-6) the limit VJP is still refined, to a thousandth of the
/// tolerance: within 1e-8 of the KKT oracle (unrefined single precision is off by about
/// 1e-7), at one correction instead of the rounds that full precision takes.
#[test]
fn single_precision_limit_vjp_is_refined_to_the_tolerance() {
    let settings = Settings::default().with_limit(true);
    for (name, qp) in problems() {
        let oracle = clarabel_solve(&qp).expect("clarabel solves it");
        let active = dual_active_set(&qp, &oracle.x, &oracle.nu);
        let be = single();
        let problem = Qp::from_host(&be, &qp).expect("valid");
        let n = qp.q.len();
        let g_host: Vec<f64> = (0..n).map(|i| 1.0 - 0.1 * i as f64).collect();
        let g = be.mat_from_col_major(n, 1, &g_host).expect("g");
        let solver = AltDiff::new(be.clone(), &problem, settings.clone()).expect("set up");
        let sol = solver.solve(problem.params()).expect("solves");
        assert_eq!(sol.status(), Status::Solved, "{name}");
        let grads = solver.vjp(&sol, &g, VjpMode::Limit).expect("vjp");
        assert_vjp_near_oracle(&be, (&qp, &active, &g_host), &grads, 1e-8, name);
    }
}

/// A batch in single precision: the forward solves refine their x-updates (primal space),
/// and the limit VJP of every element is refined with its own system.
#[test]
fn single_precision_batch_limit_vjps_are_refined() {
    let qp = random_qp(Generator::WellConditioned, 30, 10, 20, 11);
    let (n, k) = (qp.q.len(), 3);
    let be = single();
    let problem = Qp::from_host(&be, &qp).expect("valid");
    let settings = Settings::default().with_stopping(StoppingRule::Residual {
        eps_abs: 1e-10,
        eps_rel: 1e-10,
    });
    let solver = AltDiff::new(be.clone(), &problem, settings).expect("set up");
    // the columns: h, then h loosened and tightened (other active sets)
    let hs: Vec<Vec<f64>> = [0.0, 0.3, -0.05]
        .iter()
        .map(|shift| qp.h.iter().map(|h| h + shift).collect())
        .collect();
    let block = |rows: usize, f: &dyn Fn(usize) -> Vec<f64>| {
        let data: Vec<f64> = (0..k).flat_map(f).collect();
        be.mat_from_col_major(rows, k, &data).expect("block")
    };
    let params = altdiff_core::QpParams {
        q: block(n, &|_| qp.q.clone()),
        b: block(qp.b.len(), &|_| qp.b.clone()),
        h: block(qp.h.len(), &|j| hs[j].clone()),
    };
    let sol = solver.solve_batch(&params).expect("solves");
    for j in 0..k {
        let element = sol.element(j).expect("no error");
        assert_eq!(element.status, Status::Solved, "element {j}");
    }
    let g_host: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).cos()).collect();
    let grads = solver
        .vjp_batch(&sol, &block(n, &|_| g_host.clone()), VjpMode::Limit)
        .expect("vjp");
    let got = be.to_col_major(&grads.h).expect("grad");
    let m = qp.h.len();
    for (j, h) in hs.iter().enumerate() {
        let element = HostQp {
            h: h.clone(),
            ..qp.clone()
        };
        let oracle = clarabel_solve(&element).expect("clarabel solves it");
        let active = dual_active_set(&element, &oracle.x, &oracle.nu);
        let want = oracle_vjp(&element, &active, Param::H, &g_host);
        let err = gap(&got[j * m..(j + 1) * m], &want);
        assert!(
            err < 1e-9,
            "element {j}: dL/dh off the KKT oracle by {err:e}"
        );
    }
}

/// `m v` and `m' v` on the host.
fn host_products(m: &altdiff_core::HostMatrix, v: &[f64], transposed: bool) -> Vec<f64> {
    let (rows, cols) = (m.nrows(), m.ncols());
    if transposed {
        (0..cols)
            .map(|j| (0..rows).map(|i| m.get(i, j) * v[i]).sum())
            .collect()
    } else {
        (0..rows)
            .map(|i| (0..cols).map(|j| m.get(i, j) * v[j]).sum())
            .collect()
    }
}

fn norm_inf(v: impl IntoIterator<Item = f64>) -> f64 {
    v.into_iter().fold(0.0, |a, e| a.max(e.abs()))
}

/// The refined polish measures its iterate from the products of its last refinement round
/// (no new products), and a scaled solve reports the user's residuals from the scaled
/// problem's products: the reported residuals and objective are those of the returned
/// point, recomputed here on the host from the user's data (unscaled: the polish's own
/// measures; scaled: the products mapped to the user's units).
#[test]
fn reported_measures_are_those_of_the_returned_point() {
    let cases = [
        ("f32, unscaled", single(), None),
        ("f32, scaled", single(), Some(altdiff_core::Ruiz::default())),
        (
            "f64, scaled",
            FaerBackend::default(),
            Some(altdiff_core::Ruiz::default()),
        ),
    ];
    // data whose norms spread, so that Ruiz scales it (cost, columns and rows)
    let mut spread = random_qp(Generator::WellConditioned, 50, 10, 20, 8);
    spread.p.map_entries(|_, _, v| 300.0 * v);
    spread.q.iter_mut().for_each(|v| *v *= 300.0);
    spread
        .g
        .map_entries(|i, j, v| v * if i % 2 == 0 { 40.0 } else { 1.0 } * (1.0 + j as f64 / 10.0));
    spread.a.map_entries(|i, _, v| v / (1.0 + i as f64));
    let mut problems = problems();
    problems.push(("spread", spread));
    for ((name, qp), (case, be, scaling)) in problems
        .into_iter()
        .flat_map(|p| cases.clone().map(|c| (p.clone(), c)))
    {
        let name = format!("{name}, {case}");
        let settings = Settings::default()
            .with_scaling(scaling)
            .with_max_iter(100_000);
        let sol = solve_host(&be, &qp, settings).expect("solves");
        assert_eq!(sol.status, Status::Solved, "{name}");
        let px = host_products(&qp.p, &sol.x, false);
        let ax = host_products(&qp.a, &sol.x, false);
        let gx = host_products(&qp.g, &sol.x, false);
        let atl = host_products(&qp.a, &sol.lam, true);
        let gtn = host_products(&qp.g, &sol.nu, true);
        let primal = norm_inf(ax.iter().zip(&qp.b).map(|(a, b)| a - b))
            .max(norm_inf((0..gx.len()).map(|i| gx[i] + sol.s[i] - qp.h[i])));
        let dual = norm_inf((0..px.len()).map(|i| px[i] + qp.q[i] + atl[i] + gtn[i]));
        let objective: f64 = (0..px.len())
            .map(|i| sol.x[i] * (0.5 * px[i] + qp.q[i]))
            .sum();
        let scale = norm_inf(px.iter().chain(&atl).chain(&gtn).chain(&qp.q).copied()).max(1.0);
        for (what, reported, recomputed) in [
            ("primal residual", sol.primal_residual, primal),
            ("dual residual", sol.dual_residual, dual),
            ("objective", sol.objective, objective),
        ] {
            assert!(
                (reported - recomputed).abs() <= 1e-12 * scale.max(objective.abs()),
                "{name}: {what} {reported:e}, recomputed {recomputed:e}"
            );
        }
    }
}

/// The convexity test in single precision runs on the `f32` `M` with `tau >= r * eps32`:
/// on [`masked_qp`]`(-delta)` (`H` positive definite, `rho lambda_max(M) = rho / (rho -
/// delta)`) an indefinite `P` far above that tolerance is rejected (and the exact test
/// confirms), a singular positive semidefinite one passes.
#[test]
fn single_precision_convexity_test_rejects_indefinite_p() {
    let be = single();
    for settings in [
        Settings::default().with_limit(true),
        Settings::default().with_iteration(IterationSpace::Dual),
    ] {
        for delta in [0.5, 1e-3] {
            let qp = Qp::from_host(&be, &masked_qp(-delta)).expect("valid");
            let made = AltDiff::new(be.clone(), &qp, settings.clone());
            assert!(
                matches!(made, Err(Error::NotConvex { .. })),
                "P_33 = -{delta}: {settings:?}"
            );
        }
        let qp = Qp::from_host(&be, &masked_qp(0.0)).expect("valid");
        let solver = AltDiff::new(be.clone(), &qp, settings.clone()).expect("convex");
        let sol = solver.solve(qp.params()).expect("solves");
        assert!(sol.status().is_solved(), "{settings:?}");
    }
}

/// Data as users write it (loose bounds, scaled rows and columns, LPs, non-unique), solved in
/// single precision with the default settings: never a wrong answer marked solved, and the
/// problems with loose bounds all solved right (the polish's refinement measures its
/// residual against the rows it solves: an inactive `h_i = 1e10` in the scale ended it at
/// once, leaving `f32` accuracy).
#[test]
fn single_precision_solves_user_data_right() {
    use altdiff_core::testing::{Judgement, UserDataKind, reference_solve, user_data_set};
    let be = single();
    for problem in user_data_set(60, 0) {
        let reference = reference_solve(&problem.qp).expect("a reference");
        let sol = solve_host(&be, &problem.qp, Settings::default()).expect("solve");
        let judgement = Judgement::of(&sol, &reference, problem.kind);
        assert_ne!(judgement, Judgement::WrongSolved, "{}", problem.name);
        if problem.kind == UserDataKind::LooseBounds {
            assert_eq!(judgement, Judgement::Right, "{}", problem.name);
        }
    }
}
