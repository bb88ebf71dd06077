//! The conformance checks of what `solved` promises, on data as users write it (loose
//! bounds, scaled rows and columns, LPs, non-unique solutions: [`user_data_set`]), with the
//! default settings. Re-exported by [`conformance`](super::conformance), run by every
//! backend through [`conformance_tests!`](crate::conformance_tests).

use crate::testing::{
    Judgement, UserDataKind, reference_solve, solve_host, tiny_qp, user_data_set, user_qp,
};
use crate::{AltDiff, HostMatrix, HostQp, LinAlg, Qp, QpParams, Settings, Status};

/// `|x - x*|_inf <= tol max(1, |x*|_inf)`.
fn x_within(got: &[f64], expected: &[f64], tol: f64) -> bool {
    let scale = expected.iter().fold(1.0_f64, |a, v| a.max(v.abs()));
    got.iter()
        .zip(expected)
        .all(|(a, b)| (a - b).abs() <= tol * scale)
}

/// Problems of every kind ([`UserDataKind`]), solved with `Settings::default()`: each is
/// solved, and its objective (and `x`, where the solution is unique) equals the certified
/// clarabel reference's to 1e-6; none is marked solved with a wrong answer.
pub fn user_data_is_solved_right<B: LinAlg<Real = f64>>(be: &B) {
    for problem in user_data_set(24, 3) {
        let reference = reference_solve(&problem.qp).expect("a reference");
        let sol = solve_host(be, &problem.qp, Settings::default()).expect("solve");
        let judgement = Judgement::of(&sol, &reference, problem.kind);
        assert_ne!(judgement, Judgement::WrongSolved, "{}", problem.name);
        assert_eq!(sol.status, Status::Solved, "{}", problem.name);
        let objective_error = (sol.objective - reference.objective).abs();
        assert!(
            objective_error <= 1e-6 * reference.objective.abs().max(1.0),
            "{}: objective {} vs {}",
            problem.name,
            sol.objective,
            reference.objective
        );
        if problem.kind.unique() {
            assert!(
                x_within(&sol.x, &reference.x, 1e-6),
                "{}: x {:?} vs {:?}",
                problem.name,
                sol.x,
                reference.x
            );
        }
    }
}

/// The tiny QP with a loose bound `x_0 <= 5e8` (inactive) added: the solution is the tiny
/// QP's, and the residuals reported are those of the user's rows (the bound's magnitude
/// loosens nothing: the old norm-wise tolerance `1e-6 * 5e8 = 500` let an equality off by
/// 20 pass).
pub fn big_m_bound_changes_nothing<B: LinAlg<Real = f64>>(be: &B) {
    let tiny = tiny_qp();
    let n = tiny.q.len();
    let mut g_rows: Vec<Vec<f64>> = (0..tiny.g.nrows())
        .map(|i| (0..n).map(|j| tiny.g.get(i, j)).collect())
        .collect();
    g_rows.push(vec![1.0, 0.0, 0.0]);
    let mut h = tiny.h.clone();
    h.push(5e8);
    let big_m = HostQp {
        g: HostMatrix::from_rows(crate::Field::G, &g_rows).expect("rows"),
        h,
        ..tiny
    };
    let base = solve_host(be, &tiny_qp(), Settings::default()).expect("solve");
    for settings in [Settings::default(), Settings::default().with_scaling(None)] {
        let sol = solve_host(be, &big_m, settings).expect("solve");
        assert_eq!(sol.status, Status::Solved);
        assert!(x_within(&sol.x, &[0.0, 0.5, 0.5], 1e-8), "{:?}", sol.x);
        assert!((sol.objective - base.objective).abs() <= 1e-8);
        assert!(sol.primal_residual <= 1e-6 && sol.duality_gap <= 1e-6);
        assert!(sol.nu[2] == 0.0, "the loose bound's dual is exactly zero");
    }
}

/// Rows of `1e200` and `1e-150` (an active bound written `1e200 x_0 <= -2e200`, an equality
/// `3e-150 x_0 + 1e-150 x_1 = 1e-150`): with the default settings the solution is the
/// well-scaled problem's, `x = (-2, 7)`; without the scaling a backend either solves it or
/// says the rows overflow `rho G'G` ([`Error::Overflow`](crate::Error::Overflow)), never
/// that `P` is not positive semidefinite (ten clamped Ruiz passes left the row at `1e180`
/// and the dense factorization of `H` failed with that message).
pub fn extreme_rows_are_normalized<B: LinAlg<Real = f64>>(be: &B) {
    let qp = HostQp {
        p: HostMatrix::from_rows(crate::Field::P, &[vec![2.0, 0.5], vec![0.5, 1.0]]).expect("P"),
        q: vec![1.0, -1.0],
        a: HostMatrix::from_rows(crate::Field::A, &[vec![3e-150, 1e-150]]).expect("A"),
        b: vec![1e-150],
        g: HostMatrix::from_rows(crate::Field::G, &[vec![1e200, 0.0], vec![0.0, 1e-200]])
            .expect("G"),
        h: vec![-2e200, 1e-199],
    };
    let sol = solve_host(be, &qp, Settings::default()).expect("solve");
    assert_eq!(sol.status, Status::Solved);
    assert!(x_within(&sol.x, &[-2.0, 7.0], 1e-8), "{:?}", sol.x);
    assert!((sol.objective - 12.5).abs() <= 1e-8, "{}", sol.objective);
    match solve_host(be, &qp, Settings::default().with_scaling(None)) {
        Ok(_)
        | Err(crate::Error::Overflow {
            field: crate::Field::G,
            ..
        }) => {}
        Err(other) => panic!("unscaled: {other}"),
    }
}

/// LPs with the default settings: a vertex solution found exactly (the polish), and the
/// LP whose solutions form a face flagged not unique, with the right objective.
pub fn lps_and_non_unique_solutions<B: LinAlg<Real = f64>>(be: &B) {
    for seed in 0..4 {
        let lp = user_qp(UserDataKind::Lp, seed);
        let reference = reference_solve(&lp).expect("a reference");
        let sol = solve_host(be, &lp, Settings::default()).expect("solve");
        assert_eq!(sol.status, Status::Solved, "lp {seed}");
        assert!(
            x_within(&sol.x, &reference.x, 1e-8),
            "lp {seed}: {:?}",
            sol.x
        );
        assert!(sol.unique, "lp {seed}: a vertex is unique");
    }
    for seed in 0..4 {
        let qp = user_qp(UserDataKind::NonUnique, seed);
        let reference = reference_solve(&qp).expect("a reference");
        let sol = solve_host(be, &qp, Settings::default()).expect("solve");
        assert_eq!(sol.status, Status::Solved, "non-unique {seed}");
        assert!(
            (sol.objective - reference.objective).abs()
                <= 1e-8 * reference.objective.abs().max(1.0)
        );
        assert!(!sol.unique, "non-unique {seed}: flagged");
    }
    // P = 0 on a box with a cost along one edge only: a segment of solutions
    let face = HostQp {
        p: HostMatrix::zeros(2, 2),
        q: vec![-1.0, 0.0],
        a: HostMatrix::zeros(0, 2),
        b: vec![],
        g: HostMatrix::from_fn(4, 2, |i, j| match (i, j) {
            (0, 0) | (2, 1) => 1.0,
            (1, 0) | (3, 1) => -1.0,
            _ => 0.0,
        }),
        h: vec![1.0; 4],
    };
    let sol = solve_host(be, &face, Settings::default()).expect("solve");
    assert_eq!(sol.status, Status::Solved);
    assert!((sol.objective + 1.0).abs() <= 1e-9 && (sol.x[0] - 1.0).abs() <= 1e-9);
    assert!(!sol.unique, "x_1 is free in [-1, 1]");
}

/// A batch of one hard problem's data with its `(q, b, h)` varied per element, solved with
/// `Settings::default()` (the per-element polish): every element equals its own reference.
pub fn batch_defaults_on_user_data<B: LinAlg<Real = f64>>(be: &B) {
    for kind in [
        UserDataKind::LooseBounds,
        UserDataKind::ScaledRows,
        UserDataKind::Lp,
    ] {
        let base = user_qp(kind, 11);
        let k = 4;
        let elements: Vec<HostQp> = (0..k)
            .map(|j| {
                let shift = 0.1 * j as f64;
                HostQp {
                    q: base.q.iter().map(|v| v * (1.0 + shift)).collect(),
                    ..base.clone()
                }
            })
            .collect();
        let problem = Qp::from_host(be, &base).expect("problem");
        let solver = AltDiff::new(be.clone(), &problem, Settings::default()).expect("setup");
        let block = |rows: usize, pick: &dyn Fn(&HostQp) -> &Vec<f64>| {
            let data: Vec<f64> = elements.iter().flat_map(|e| pick(e).clone()).collect();
            be.mat_from_col_major(rows, k, &data).expect("block")
        };
        let dims = base.validate().expect("valid");
        let params = QpParams {
            q: block(dims.n, &|e| &e.q),
            b: block(dims.p, &|e| &e.b),
            h: block(dims.m, &|e| &e.h),
        };
        let sol = solver.solve_batch(&params).expect("batch");
        let x = be.to_col_major(sol.x()).expect("x");
        for (j, element) in elements.iter().enumerate() {
            let reference = reference_solve(element).expect("a reference");
            let report = sol.element(j).expect("solved element");
            assert_eq!(report.status, Status::Solved, "{kind:?} element {j}");
            let column = &x[j * dims.n..(j + 1) * dims.n];
            assert!(
                x_within(column, &reference.x, 1e-6),
                "{kind:?} element {j}: {column:?} vs {:?}",
                reference.x
            );
            assert!(report.primal_residual <= 1e-6 && report.duality_gap.is_finite());
        }
    }
}
