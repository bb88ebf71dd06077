//! The sparse backend against the dense one, and its own parts (dense-row split, symbolic
//! reuse, gradients on the patterns).

use altdiff_core::testing::conformance::backends_agree;
use altdiff_core::{
    AltDiff, Field, HostMatrix, HostQp, IterationSpace, LinAlg, Qp, Settings, StoppingRule, VjpMode,
};
use altdiff_faer::{
    DenseRows, FaerBackend, FaerSparseBackend, SparseCholesky, SparseForm, sparse_from_dense,
};
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
    // the polish starts once the mask has settled, which rounding can move by an iteration
    assert!(sol.iterations().abs_diff(reference.iterations()) <= 2);
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

/// The KKT form solves with the same `H^-1` as the normal form (1e-12), also after a new
/// penalty, and the automatic rule takes it where `C'C` would fill: a factor model (the
/// portfolio generator's pattern) in the KKT form, a budget row in the normal one.
#[test]
fn kkt_form_equals_the_normal_form_and_is_chosen_where_c_c_fills() {
    let host = budget_qp(40);
    let [p, a, g] = [&host.p, &host.a, &host.g].map(|m| sparse_from_dense(dense_of(m).as_ref()));
    let rhs = Mat::<f64>::from_fn(40, 3, |i, j| ((i * 5 + j) as f64).sin());
    // factored at rho = 1, then refactored
    let factor = |form, rho| {
        SparseCholesky::with_form(&p, &[&a, &g], 1.0, DenseRows::Never, form, Par::Seq)
            .unwrap()
            .refactor(rho, Par::Seq)
            .unwrap()
    };
    for rho in [1.0, 0.05] {
        let (normal, kkt) = (
            factor(SparseForm::Normal, rho),
            factor(SparseForm::Kkt, rho),
        );
        assert_eq!(
            (normal.form(), kkt.form()),
            (SparseForm::Normal, SparseForm::Kkt)
        );
        let (mut x1, mut x2) = (rhs.clone(), rhs.clone());
        normal.solve_in_place(x1.as_mut(), Par::Seq);
        kkt.solve_in_place(x2.as_mut(), Par::Seq);
        let diff = (&x1 - &x2).norm_max();
        assert!(diff < 1e-12 * x1.norm_max(), "rho {rho}: {diff:e}");
    }
    // a budget row alone: the normal form (with the row split off)
    let auto = SparseCholesky::new(&p, &[&a, &g], 1.0, DenseRows::Auto, Par::Seq).unwrap();
    assert_eq!(auto.form(), SparseForm::Normal);
    // 100 factors over 2000 assets, 10 loadings per asset: factor rows of 200 entries (not
    // dense) whose C'C would hold 100 cliques of 200 assets (2 M entries), the KKT matrix
    // about 26 000
    let portfolio = factor_model(2000, 100);
    let be = FaerSparseBackend::default();
    let qp = Qp::from_host(&be, &portfolio).unwrap();
    let solver = AltDiff::new(be.clone(), &qp, tight()).unwrap();
    assert_eq!(solver.factor().form(), SparseForm::Kkt);
    let sol = solver.solve(qp.params()).unwrap();
    let normal_be = be.clone().with_form(SparseForm::Normal);
    let normal = AltDiff::new(
        normal_be.clone(),
        &Qp::from_host(&normal_be, &portfolio).unwrap(),
        tight(),
    )
    .unwrap()
    .solve(qp.params())
    .unwrap();
    assert_eq!(sol.iterations(), normal.iterations());
    assert!((sol.x() - normal.x()).norm_max() < 1e-9);
}

/// A factor-model portfolio QP: `min x'Dx + y'y - mu'x` s.t. `y = F'x`, `1'x = 1`, `x >= 0`
/// (`assets` x, `factors` y, every asset loading on a tenth of the factors).
fn factor_model(assets: usize, factors: usize) -> HostQp {
    let n = assets + factors;
    let mut p: Vec<(usize, usize, f64)> = (0..assets)
        .map(|i| (i, i, 0.5 + (i as f64 * 0.37).fract()))
        .collect();
    p.extend((assets..n).map(|i| (i, i, 1.0)));
    let mut a = Vec::new();
    for i in 0..assets {
        for f in (0..factors).filter(|f| (i + f) % 10 == 0) {
            a.push((f, i, ((i * 13 + f * 7) as f64).sin()));
        }
        a.push((factors, i, 1.0));
    }
    a.extend((0..factors).map(|f| (f, assets + f, -1.0)));
    let mut b = vec![0.0; factors + 1];
    b[factors] = 1.0;
    let g: Vec<_> = (0..assets).map(|i| (i, i, -1.0)).collect();
    HostQp {
        p: HostMatrix::from_triplets(Field::P, n, n, &p).unwrap(),
        q: (0..n)
            .map(|i| if i < assets { -((i as f64).cos()) } else { 0.0 })
            .collect(),
        a: HostMatrix::from_triplets(Field::A, factors + 1, n, &a).unwrap(),
        b,
        g: HostMatrix::from_triplets(Field::G, assets, n, &g).unwrap(),
        h: vec![0.0; assets],
    }
}
