//! Hostile input: every case gets a typed error or the right status, never a panic or a
//! hang (the loop is always bounded). What each case gives is the documented behaviour.
#![cfg(feature = "testing")]

use altdiff_core::testing::{RefBackend, tiny_qp};
use altdiff_core::{
    AltDiff, Error, Field, HostMatrix, HostQp, Method, Param, Qp, Settings, Status, Wrt,
};

fn solve(qp: &HostQp, settings: Settings) -> Result<altdiff_core::HostSolution, Error> {
    let problem = Qp::from_host(&RefBackend, qp)?;
    AltDiff::new(RefBackend, &problem, settings)?
        .solve(problem.params())?
        .to_host(&RefBackend)
}

fn eye(n: usize) -> HostMatrix {
    HostMatrix::from_fn(n, n, |i, j| if i == j { 1.0 } else { 0.0 })
}

fn rows(field: Field, rows: &[&[f64]]) -> HostMatrix {
    HostMatrix::from_rows(field, &rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>()).unwrap()
}

#[test]
fn nan_or_inf_anywhere_is_a_typed_error() {
    let base = tiny_qp();
    for (field, qp) in [
        (
            Field::P,
            HostQp {
                p: HostMatrix::from_fn(3, 3, |i, j| {
                    if (i, j) == (2, 2) {
                        f64::NAN
                    } else {
                        base.p.get(i, j)
                    }
                }),
                ..base.clone()
            },
        ),
        (
            Field::A,
            HostQp {
                a: rows(Field::A, &[&[1.0, f64::INFINITY, 1.0]]),
                ..base.clone()
            },
        ),
        (
            Field::Q,
            HostQp {
                q: vec![1.0, -1.0, f64::NEG_INFINITY],
                ..base.clone()
            },
        ),
    ] {
        match solve(&qp, Settings::default()) {
            Err(Error::NonFinite { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected NonFinite, got {other:?}"),
        }
    }
}

#[test]
fn rank_deficient_equalities() {
    // duplicate consistent rows: solvable by Alt-Diff; the KKT method reports the degeneracy
    let consistent = HostQp {
        a: rows(Field::A, &[&[1.0, 1.0, 1.0], &[1.0, 1.0, 1.0]]),
        b: vec![1.0, 1.0],
        ..tiny_qp()
    };
    let wrt_q_h = Wrt::none().with(Param::Q).with(Param::H);
    let sol = solve(&consistent, Settings::default().with_wrt(wrt_q_h)).unwrap();
    assert_eq!(sol.status, Status::Solved);
    assert!((sol.x[1] - 0.5).abs() < 1e-4);
    assert!(
        sol.jacobian(Param::Q)
            .unwrap()
            .col_major()
            .iter()
            .all(|v| v.is_finite())
    );
    // dx/db does not exist (moving one duplicate row alone makes the problem infeasible):
    // its recursion never settles, so the solve ends at max_iter with x still right
    let sol = solve(
        &consistent,
        Settings::default()
            .with_wrt(Wrt::none().with(Param::B))
            .with_max_iter(3_000),
    )
    .unwrap();
    assert_eq!(sol.status, Status::MaxIterations);
    assert!((sol.x[1] - 0.5).abs() < 1e-4);
    let kkt = solve(
        &consistent,
        Settings::default()
            .with_wrt(Wrt::vectors())
            .with_method(Method::Kkt),
    );
    assert!(
        matches!(kkt, Err(Error::SingularKkt { rows: 3 })),
        "{kkt:?}"
    );
    // contradictory rows: x0 + x1 + x2 = 1 and = 2
    let contradictory = HostQp {
        b: vec![1.0, 2.0],
        ..consistent
    };
    assert_eq!(
        solve(&contradictory, Settings::default()).unwrap().status,
        Status::PrimalInfeasible
    );
}

#[test]
fn zero_rows_in_g() {
    let harmless = HostQp {
        g: rows(Field::G, &[&[0.0, 0.0, 0.0], &[-1.0, 0.0, 0.0]]),
        h: vec![1.0, 0.2],
        ..tiny_qp()
    };
    assert_eq!(
        solve(&harmless, Settings::default()).unwrap().status,
        Status::Solved
    );
    let impossible = HostQp {
        h: vec![-1.0, 0.2],
        ..harmless
    };
    assert_eq!(
        solve(&impossible, Settings::default()).unwrap().status,
        Status::PrimalInfeasible
    );
}

#[test]
fn extreme_magnitudes_end_with_a_status() {
    for scale in [1e150, 1e-150] {
        let qp = HostQp {
            q: tiny_qp().q.iter().map(|v| v * scale).collect(),
            h: tiny_qp().h.iter().map(|v| v * scale).collect(),
            b: vec![scale],
            ..tiny_qp()
        };
        // a purely relative tolerance: the absolute one (1e-6) would take any point at the
        // scale 1e-150 (the iterates scale with the data, the test is then scale-free)
        let sol = solve(
            &qp,
            Settings::default()
                .with_max_iter(2_000)
                .with_stopping(altdiff_core::StoppingRule::Residual {
                    eps_abs: 0.0,
                    eps_rel: 1e-6,
                })
                .with_wrt(Wrt::vectors()),
        )
        .unwrap();
        assert!(
            matches!(
                sol.status,
                Status::Solved | Status::MaxIterations | Status::NumericalError
            ),
            "{scale}: {:?}",
            sol.status
        );
        if sol.status == Status::Solved {
            assert!(
                (sol.x[2] / scale - 0.5).abs() < 1e-3,
                "{scale}: x scales with the data"
            );
        }
    }
    let huge_p = HostQp {
        p: HostMatrix::from_fn(3, 3, |i, j| tiny_qp().p.get(i, j) * 1e150),
        ..tiny_qp()
    };
    let sol = solve(&huge_p, Settings::default().with_max_iter(2_000));
    assert!(
        sol.is_ok()
            || matches!(
                sol,
                Err(Error::NotPositiveDefinite { .. } | Error::NotConvex { .. })
            ),
        "{sol:?}"
    );
}

#[test]
fn empty_and_unconstrained_problems() {
    let empty = HostQp {
        p: HostMatrix::zeros(0, 0),
        q: vec![],
        a: HostMatrix::zeros(0, 0),
        b: vec![],
        g: HostMatrix::zeros(0, 0),
        h: vec![],
    };
    assert_eq!(
        solve(&empty, Settings::default().with_wrt(Wrt::all()))
            .unwrap()
            .status,
        Status::Solved
    );
    let free = HostQp {
        p: eye(2),
        q: vec![1.0, -2.0],
        a: HostMatrix::zeros(0, 2),
        b: vec![],
        g: HostMatrix::zeros(0, 2),
        h: vec![],
    };
    let sol = solve(&free, Settings::default().with_wrt(Wrt::all())).unwrap();
    assert_eq!(sol.status, Status::Solved);
    assert!((sol.x[0] + 1.0).abs() < 1e-6 && (sol.x[1] - 2.0).abs() < 1e-6);
}

#[test]
fn unbounded_problems() {
    // P = 0 and no constraints: H is singular; the proximal term iterates anyway and
    // certifies the descent direction -x0
    let lp = HostQp {
        p: HostMatrix::zeros(2, 2),
        q: vec![1.0, 0.0],
        a: HostMatrix::zeros(0, 2),
        b: vec![],
        g: HostMatrix::zeros(0, 2),
        h: vec![],
    };
    let sol = solve(&lp, Settings::default()).unwrap();
    assert_eq!(sol.status, Status::DualInfeasible);
    assert!(sol.x[0] < 0.0 && sol.x[1] == 0.0, "{:?}", sol.x);
    // H positive definite but the objective unbounded on the feasible set: a certificate
    let ray = HostQp {
        p: HostMatrix::zeros(1, 1),
        q: vec![-1.0],
        a: HostMatrix::zeros(0, 1),
        b: vec![],
        g: rows(Field::G, &[&[-1.0]]),
        h: vec![0.0],
    };
    assert_eq!(
        solve(&ray, Settings::default()).unwrap().status,
        Status::DualInfeasible
    );
}
