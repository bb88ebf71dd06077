//! The conformance suite, written once and run by every backend through
//! [`conformance_tests!`](crate::conformance_tests).
//!
//! Each function panics with a message on the first failed check; the macro wraps each in a
//! `#[test]`. Backends must compute in `f64`.

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::testing::{
    Generator, RefBackend, active_set, central_diff, clarabel_solve, kkt_jacobian, random_qp,
    rel_diff, solve_host, tiny_qp,
};
use crate::{
    Accum, AltDiff, Error, Field, HostMatrix, HostQp, HostSolution, LinAlg, Param, Qp, QpDims,
    QpParams, Settings, Status, StoppingRule, Trans, Wrt,
};

/// Runs the whole suite as `#[test]`s in a module `altdiff_conformance`, for the backend
/// built by the expression (evaluated once per test).
///
/// # Example
/// ```ignore
/// // tests/conformance.rs of a backend crate (with altdiff-core's feature `testing`)
/// altdiff_core::conformance_tests!(altdiff_faer::FaerBackend::default());
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        mod altdiff_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::conformance_tests!(@tests $backend;
                ops_match_reference, known_iterates, tiny_limit_is_exact,
                unconstrained_is_exact, jacobians_match_kkt,
                jacobians_match_finite_differences, solutions_match_clarabel,
                limit_does_not_depend_on_rho,
                agrees_with_reference, stopping_rules_behave, warm_start_helps,
                bad_inputs_are_errors);
        }
    };
    (@tests $backend:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::conformance::$name(&$backend);
            }
        )*
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
        .with_wrt(Wrt::all())
}

fn tight() -> Settings {
    Settings::default()
        .with_stopping(StoppingRule::Residual {
            eps_abs: 1e-12,
            eps_rel: 1e-12,
        })
        .with_max_iter(200_000)
        .with_wrt(Wrt::all())
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

/// The tiny QP's iterates 1, 2 and 5 (rho = 1, zero start) match the hand-computed values.
pub fn known_iterates<B: LinAlg<Real = f64>>(be: &B) {
    let qp = tiny_qp();
    let s1 = solve(be, &qp, settings_fixed(1));
    assert_eq!((s1.status, s1.iterations), (Status::FixedIterations, 1));
    assert_close(
        "x after 1",
        &s1.x,
        &[-0.4380368098, 1.0699386503, -0.0527607362],
        1e-9,
    );
    assert_close("s after 1", &s1.s, &[0.0, 0.0], 1e-12);
    assert_close("lam after 1", &s1.lam, &[-0.4208588957], 1e-9);
    assert_close("nu after 1", &s1.nu, &[0.5699386503, 0.2380368098], 1e-9);
    assert_close(
        "dx_db after 1",
        &column(&s1, Param::B),
        &[0.1104294479, 0.1840490798, 0.2822085890],
        1e-9,
    );
    let s2 = solve(be, &qp, settings_fixed(2));
    assert_close(
        "x after 2",
        &s2.x,
        &[-0.2386992360, 0.8635176333, 0.1184161993],
        1e-9,
    );
    assert_close("lam after 2", &s2.lam, &[-0.6776242990], 1e-9);
    assert_close(
        "dx_db after 2",
        &column(&s2, Param::B),
        &[0.1467876096, 0.1955662614, 0.4323836050],
        1e-9,
    );
    let s5 = solve(be, &qp, settings_fixed(5));
    assert_close(
        "x after 5",
        &s5.x,
        &[-0.1036633067, 0.6322004081, 0.3774646762],
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
        for param in Param::ALL {
            let exact = kkt_jacobian(&qp, &active, param).expect("non-degenerate");
            let err = rel_diff(sol.jacobian(param).expect("requested"), &exact);
            assert!(
                err < 1e-8,
                "{name}: dx/d{} differs from KKT by {err:e}",
                param.name()
            );
        }
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
        for param in Param::ALL {
            let exact = kkt_jacobian(&qp, &active, param).expect("non-degenerate");
            let err = rel_diff(sol.jacobian(param).expect("requested"), &exact);
            assert!(
                err < 1e-8,
                "rho = {rho}: dx/d{} differs from KKT by {err:e}",
                param.name()
            );
        }
    }
}

/// Converged Jacobians equal central finite differences of the solution map.
pub fn jacobians_match_finite_differences<B: LinAlg<Real = f64>>(be: &B) {
    let qp = random_qp(Generator::WellConditioned, 7, 2, 5, 9);
    let sol = solve(be, &qp, tight());
    let forward_only = tight().with_wrt(Wrt::none());
    for param in Param::ALL {
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
/// problem, truncated (30 iterations) and converged.
pub fn backends_agree<B1: LinAlg<Real = f64>, B2: LinAlg<Real = f64>>(one: &B1, other: &B2) {
    let qp = random_qp(Generator::WellConditioned, 9, 3, 5, 17);
    for settings in [settings_fixed(30), tight()] {
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
        for param in Param::ALL {
            assert_close(
                &format!("{names}: dx/d{}", param.name()),
                &column(&got, param),
                &column(&expected, param),
                1e-10,
            );
        }
    }
}

/// Each stopping rule ends with the right status and iteration count.
pub fn stopping_rules_behave<B: LinAlg<Real = f64>>(be: &B) {
    let qp = random_qp(Generator::WellConditioned, 10, 3, 6, 3);
    let base = Settings::default().with_wrt(Wrt::none().with(Param::B));
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
    let solver = AltDiff::new(be.clone(), &qp, Settings::default().with_wrt(Wrt::all())).unwrap();
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
    // P = 0 and no constraints: H singular
    let unbounded = HostQp {
        p: HostMatrix::zeros(2, 2),
        q: vec![1.0, 1.0],
        a: HostMatrix::zeros(0, 2),
        b: vec![],
        g: HostMatrix::zeros(0, 2),
        h: vec![],
    };
    let qp = Qp::from_host(be, &unbounded).unwrap();
    assert!(
        matches!(
            AltDiff::new(be.clone(), &qp, Settings::default()),
            Err(Error::NotPositiveDefinite { .. })
        ),
        "singular H"
    );
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
