//! The conformance checks of the differentiability report
//! ([`AltDiff::differentiability`](crate::AltDiff::differentiability)) on problems built to
//! be comfortable, degenerate (dependent active rows, a weakly active row), near-degenerate
//! (margins of `1e-5`) and not unique, and of the default VJP against finite differences of
//! the forward solve where the report says `differentiable`. Re-exported by
//! [`conformance`](super::conformance).

use crate::testing::{UserDataKind, central_diff, solve_host, tiny_qp, user_qp};
use crate::{
    AltDiff, DerivativeStatus, Differentiability, Error, HostMatrix, HostQp, LinAlg, Param, Qp,
    Settings, StoppingRule, VjpMode,
};

/// The report of a problem solved with the default settings.
fn report_of<B: LinAlg<Real = f64>>(be: &B, qp: &HostQp) -> Differentiability {
    let problem = Qp::from_host(be, qp).expect("problem");
    let solver = AltDiff::new(be.clone(), &problem, Settings::default()).expect("setup");
    let sol = solver.solve(problem.params()).expect("solve");
    solver.differentiability(&sol).expect("report")
}

/// `min |x - c|^2` over `x0 <= 1` (and a second copy of that row when `twice`): the
/// minimizer `c` decides the active set and its margins.
fn bounded(c: [f64; 2], twice: bool) -> HostQp {
    let rows = if twice { 2 } else { 1 };
    HostQp {
        p: HostMatrix::from_fn(2, 2, |i, j| if i == j { 2.0 } else { 0.0 }),
        q: vec![-2.0 * c[0], -2.0 * c[1]],
        a: HostMatrix::zeros(0, 2),
        b: vec![],
        g: HostMatrix::from_fn(rows, 2, |_, j| if j == 0 { 1.0 } else { 0.0 }),
        h: vec![1.0; rows],
    }
}

/// The comfortable tiny QP is `differentiable` and its default VJP (`VjpMode::Limit`)
/// matches central differences of tight forward solves, wrt `q`, `b` and `h`; the same row
/// active twice is `degenerate` (LICQ fails), the VJP refuses it under
/// `require_differentiable` and the KKT VJP is `SingularKkt`; margins of `1e-5` are `near_degenerate`; a
/// weakly active row is flagged; a face of solutions is `not_unique`.
pub fn derivatives_are_certified<B: LinAlg<Real = f64>>(be: &B) {
    let tiny = tiny_qp();
    let report = report_of(be, &tiny);
    assert_eq!(
        report.status,
        DerivativeStatus::Differentiable,
        "{report:?}"
    );
    assert_eq!(report.licq, Some(true));
    assert_eq!(report.active, 1, "{report:?}");
    // the VJP of the certified derivative against finite differences
    let problem = Qp::from_host(be, &tiny).expect("problem");
    let solver = AltDiff::new(be.clone(), &problem, Settings::default()).expect("setup");
    let sol = solver.solve(problem.params()).expect("solve");
    let g = [0.3, -0.7, 0.4];
    let seed = be.mat_from_col_major(3, 1, &g).expect("seed");
    let grads = solver.vjp(&sol, &seed, VjpMode::default()).expect("vjp");
    let tight = Settings::default().with_stopping(StoppingRule::Residual {
        eps_abs: 1e-12,
        eps_rel: 1e-12,
    });
    for (param, got) in [
        (Param::Q, &grads.q),
        (Param::B, &grads.b),
        (Param::H, &grads.h),
    ] {
        let jac = central_diff(&tiny, param, 1e-6, |qp| {
            solve_host(be, qp, tight.clone()).expect("solve").x
        });
        let got = be.to_col_major(got).expect("host");
        for (k, value) in got.iter().enumerate() {
            let fd: f64 = (0..3).map(|i| jac.get(i, k) * g[i]).sum();
            assert!((value - fd).abs() < 1e-6, "{param:?}[{k}]: {value} vs {fd}");
        }
    }

    // the bound x0 <= 1 twice, both active: dependent rows
    let twice = bounded([2.0, 0.0], true);
    let report = report_of(be, &twice);
    assert_eq!(report.licq, Some(false), "{report:?}");
    assert_eq!(report.status, DerivativeStatus::Degenerate);
    let problem = Qp::from_host(be, &twice).expect("problem");
    let strict = Settings::default().with_require_differentiable(true);
    let solver = AltDiff::new(be.clone(), &problem, strict).expect("setup");
    let sol = solver.solve(problem.params()).expect("solve");
    let seed = be.mat_from_col_major(2, 1, &[1.0, 0.0]).expect("seed");
    let err = solver.vjp(&sol, &seed, VjpMode::default()).unwrap_err();
    assert!(
        matches!(&err, Error::NotDifferentiable { .. }) && err.to_string().contains("LICQ"),
        "{err}"
    );
    // rows dependent to working precision ([1, 0] and [1, 3e-7], both active): the report
    // and the KKT mode say so on every backend (the sparse KKT mode solved such systems)
    let mut near = twice.clone();
    near.g = HostMatrix::from_rows(crate::Field::G, &[vec![1.0, 0.0], vec![1.0, 3e-7]]).expect("G");
    let report = report_of(be, &near);
    assert_eq!((report.licq, report.active), (Some(false), 2), "{report:?}");
    let problem = Qp::from_host(be, &near).expect("problem");
    let solver = AltDiff::new(be.clone(), &problem, Settings::default()).expect("setup");
    let sol = solver.solve(problem.params()).expect("solve");
    let err = solver.vjp(&sol, &seed, VjpMode::Kkt).unwrap_err();
    assert!(matches!(err, Error::SingularKkt { .. }), "{err}");

    // an active multiplier of 1e-5 and an inactive slack of 1e-5 (relative; the margin
    // is 2e-5 at the default tolerance): near
    let report = report_of(be, &bounded([1.0 + 5e-6, 0.0], false));
    assert_eq!(
        report.status,
        DerivativeStatus::NearDegenerate,
        "{report:?}"
    );
    assert!(report.min_active_multiplier < 1e-4, "{report:?}");
    let report = report_of(be, &bounded([1.0 - 1e-5, 0.0], false));
    assert_eq!(
        report.status,
        DerivativeStatus::NearDegenerate,
        "{report:?}"
    );
    assert!(
        report.min_inactive_slack < 1e-4 && report.active == 0,
        "{report:?}"
    );
    // the minimizer on the bound: weakly active, or an inactive slack of zero
    let report = report_of(be, &bounded([1.0, 0.0], false));
    assert!(
        matches!(
            report.status,
            DerivativeStatus::Degenerate | DerivativeStatus::NearDegenerate
        ),
        "{report:?}"
    );
    // comfortable margins either side
    for c in [[3.0, 1.0], [-1.0, 1.0]] {
        let report = report_of(be, &bounded(c, false));
        assert_eq!(
            report.status,
            DerivativeStatus::Differentiable,
            "{c:?}: {report:?}"
        );
    }
    // P = 0 with a face of solutions
    let report = report_of(be, &user_qp(UserDataKind::NonUnique, 0));
    assert_eq!(report.status, DerivativeStatus::NotUnique, "{report:?}");
}
