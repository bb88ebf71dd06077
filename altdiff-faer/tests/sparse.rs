//! The sparse backend against the dense one, and its own parts (dense-row split, symbolic
//! reuse, gradients on the patterns).

use altdiff_core::testing::conformance::backends_agree;
use altdiff_core::{
    AltDiff, Field, HostMatrix, HostQp, IterationSpace, LinAlg, Qp, Settings, StoppingRule, VjpMode,
};
use altdiff_faer::{DenseRows, FaerBackend, FaerSparseBackend, SparseCholesky, sparse_from_dense};
use faer::{Mat, Par};

fn tight() -> Settings {
    Settings::default().with_stopping(StoppingRule::Residual {
        eps_abs: 1e-10,
        eps_rel: 1e-10,
    })
}

#[test]
fn sparse_agrees_with_dense_to_1e_10() {
    backends_agree(&FaerSparseBackend::default(), &FaerBackend::default());
    backends_agree(
        &FaerSparseBackend::default().with_dense_rows(DenseRows::Above(2)),
        &FaerBackend::default(),
    );
}

/// A problem with a structurally sparse `P` (tridiagonal), a dense budget row and sparse
/// inequality rows.
fn budget_qp(n: usize) -> HostQp {
    let mut p = Vec::new();
    for i in 0..n {
        p.push((i, i, 2.0 + (i % 3) as f64));
        if i + 1 < n {
            p.push((i, i + 1, -0.5));
            p.push((i + 1, i, -0.5));
        }
    }
    let g: Vec<(usize, usize, f64)> = (0..n - 1)
        .flat_map(|i| [(i, i, 1.0), (i, i + 1, -1.0)])
        .collect();
    HostQp {
        p: HostMatrix::from_triplets(Field::P, n, n, &p).unwrap(),
        q: (0..n).map(|i| ((i as f64) * 0.37).sin()).collect(),
        a: HostMatrix::from_triplets(
            Field::A,
            1,
            n,
            &(0..n).map(|j| (0, j, 1.0)).collect::<Vec<_>>(),
        )
        .unwrap(),
        b: vec![1.0],
        g: HostMatrix::from_triplets(Field::G, n - 1, n, &g).unwrap(),
        h: vec![0.05; n - 1],
    }
}

#[test]
fn dense_rows_are_a_low_rank_correction() {
    let n = 60;
    let host = budget_qp(n);
    let be = FaerSparseBackend::default().with_dense_rows(DenseRows::Above(10));
    let qp = Qp::from_host(&be, &host).unwrap();
    let split = AltDiff::new(be.clone(), &qp, tight()).unwrap();
    assert_eq!(
        split.factor().dense_rows(),
        1,
        "the budget row is split off"
    );
    let plain_be = FaerSparseBackend::default().with_dense_rows(DenseRows::Never);
    let plain = AltDiff::new(
        plain_be.clone(),
        &Qp::from_host(&plain_be, &host).unwrap(),
        tight(),
    )
    .unwrap();
    assert_eq!(plain.factor().dense_rows(), 0);
    // the same H^-1 (to rounding), so the same solution
    let rhs = Mat::<f64>::from_fn(n, 3, |i, j| ((i * 7 + j) as f64).cos());
    let (mut x1, mut x2) = (rhs.clone(), rhs.clone());
    be.solve_in_place(split.factor(), &mut x1).unwrap();
    plain_be.solve_in_place(plain.factor(), &mut x2).unwrap();
    let diff = (&x1 - &x2).norm_max();
    assert!(diff < 1e-12 * x2.norm_max(), "Woodbury vs plain: {diff:e}");
    let dense = FaerBackend::default();
    let reference = AltDiff::new(
        dense.clone(),
        &Qp::from_host(&dense, &host).unwrap(),
        tight(),
    )
    .unwrap()
    .solve(Qp::from_host(&dense, &host).unwrap().params())
    .unwrap();
    let sol = split.solve(qp.params()).unwrap();
    assert_eq!(sol.iterations(), reference.iterations());
    assert!((sol.x() - reference.x()).norm_max() < 1e-10);
}

#[test]
fn refactoring_reuses_the_analysis_and_equals_a_fresh_factor() {
    let host = budget_qp(40);
    let [p, a, g] = [&host.p, &host.a, &host.g].map(|m| sparse_from_dense(dense_of(m).as_ref()));
    for rows in [DenseRows::Never, DenseRows::Above(10)] {
        let first = SparseCholesky::new(&p, &[&a, &g], 1.0, rows, Par::Seq).unwrap();
        let again = first.refactor(7.5, Par::Seq).unwrap();
        let fresh = SparseCholesky::new(&p, &[&a, &g], 7.5, rows, Par::Seq).unwrap();
        assert_eq!((again.rho(), again.nnz_l()), (7.5, fresh.nnz_l()));
        let rhs = Mat::<f64>::from_fn(40, 2, |i, j| (i + 3 * j) as f64);
        let (mut x1, mut x2) = (rhs.clone(), rhs.clone());
        again.solve_in_place(x1.as_mut(), Par::Seq);
        fresh.solve_in_place(x2.as_mut(), Par::Seq);
        assert!((&x1 - &x2).norm_max() < 1e-12 * x2.norm_max());
    }
}

fn dense_of(m: &HostMatrix) -> Mat<f64> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| m.get(i, j))
}

#[test]
fn matrix_gradients_live_on_the_patterns() {
    let host = budget_qp(12);
    let sparse = FaerSparseBackend::default();
    let dense = FaerBackend::default();
    let g_host: Vec<f64> = (0..12).map(|i| (i as f64).sin()).collect();
    let sqp = Qp::from_host(&sparse, &host).unwrap();
    let ssolver = AltDiff::new(sparse.clone(), &sqp, tight()).unwrap();
    let ssol = ssolver.solve(sqp.params()).unwrap();
    let sg = ssolver
        .vjp(
            &ssol,
            &sparse.mat_from_col_major(12, 1, &g_host).unwrap(),
            VjpMode::Kkt,
        )
        .unwrap();
    let dqp = Qp::from_host(&dense, &host).unwrap();
    let dsolver = AltDiff::new(dense.clone(), &dqp, tight()).unwrap();
    let dsol = dsolver.solve(dqp.params()).unwrap();
    let dg = dsolver
        .vjp(
            &dsol,
            &dense.mat_from_col_major(12, 1, &g_host).unwrap(),
            VjpMode::Kkt,
        )
        .unwrap();
    for (field, op, s, d) in [
        (Field::P, &host.p, sg.p.unwrap(), dg.p.unwrap()),
        (Field::A, &host.a, sg.a.unwrap(), dg.a.unwrap()),
        (Field::G, &host.g, sg.g.unwrap(), dg.g.unwrap()),
    ] {
        let s = sparse.grad_to_host(&s, field).unwrap();
        assert!(s.is_sparse());
        assert_eq!(
            s.nnz(),
            op.nnz(),
            "{field}: one gradient entry per stored entry"
        );
        let mut worst = 0.0_f64;
        s.for_each_entry(|i, j, v| {
            assert!(op.get(i, j) != 0.0, "{field}: ({i}, {j}) is on the pattern");
            worst = worst.max((v - d[(i, j)]).abs());
        });
        assert!(worst < 1e-8, "{field}: {worst:e} from the dense gradient");
    }
    // the primal space is what the sparse backend picks by itself
    assert_eq!(ssolver.iteration_space(), IterationSpace::Primal);
}
