//! The smooth solver and layers of `altdiff_core::smooth` on the faer backend: closed forms,
//! forward / reverse consistency, Woodbury against the full Newton system, and agreement with
//! the reference backend.

use altdiff_core::smooth::layers::{Entropy, Layer, LayerKind, LayerParam};
use altdiff_core::smooth::{NewtonSystem, SmoothParam, SmoothSettings, SmoothSolver};
use altdiff_core::testing::RefBackend;
use altdiff_core::testing::{max_abs_diff, simplex_projection, softmax};
use altdiff_core::{HostMatrix, LinAlg, Status};
use altdiff_faer::{FaerBackend, FaerSparseBackend};

fn tight() -> SmoothSettings {
    SmoothSettings::default().with_tolerances(1e-11, 1e-11)
}

/// Deterministic data without a generator crate.
fn data(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 + 1.0) * seed).sin() * 1.5)
        .collect()
}

/// Uniform numbers in [0, 1) from a xorshift generator (rows built from it are in general
/// position, unlike sines of one frequency, which span two dimensions).
fn uniform(count: usize, mut state: u64) -> Vec<f64> {
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

#[test]
fn smooth_softmax_and_sparsemax_match_their_closed_forms() {
    let n = 9;
    let y = data(n, 0.7);
    let be = FaerBackend::default();
    let out = Layer::new(be.clone(), LayerKind::Softmax, n, tight())
        .unwrap()
        .forward(&y, None, &[LayerParam::Y])
        .unwrap();
    assert_eq!(out.status, Status::Solved);
    let s = softmax(&y);
    assert!(max_abs_diff(&out.x, &s) < 1e-9);
    let j = out.jacobian(LayerParam::Y).unwrap();
    for i in 0..n {
        for k in 0..n {
            let expected = if i == k { s[i] } else { 0.0 } - s[i] * s[k];
            assert!((j.get(i, k) - expected).abs() < 1e-8);
        }
    }
    let y: Vec<f64> = data(n, 1.3).iter().map(|v| v * 0.3).collect();
    let out = Layer::new(be, LayerKind::Sparsemax, n, tight())
        .unwrap()
        .forward(&y, None, &[LayerParam::Y])
        .unwrap();
    let x = simplex_projection(&y);
    assert!(max_abs_diff(&out.x, &x) < 1e-9, "{:?} vs {x:?}", out.x);
    let sol = out.solution();
    assert_eq!(sol.factorizations(), 1 + sol.rho_updates());
    let support: Vec<bool> = x.iter().map(|&v| v > 0.0).collect();
    let size = support.iter().filter(|&&s| s).count() as f64;
    let j = out.jacobian(LayerParam::Y).unwrap();
    for i in 0..n {
        for k in 0..n {
            let both = if support[i] && support[k] { 1.0 } else { 0.0 };
            let expected = (if i == k { both } else { 0.0 }) - both / size;
            assert!((j.get(i, k) - expected).abs() < 1e-7);
        }
    }
}

#[test]
fn smooth_constrained_layers_agree_with_the_reference_backend_and_reverse_mode() {
    let n = 8;
    let y = data(n, 0.9);
    // no sum of bounds equals 1 (that would be a degenerate, non-differentiable point)
    let u = vec![0.23; n];
    let g = data(n, 2.1);
    for kind in [LayerKind::CSoftmax, LayerKind::CSparsemax] {
        let wrt = [LayerParam::Y, LayerParam::U];
        let faer = Layer::new(FaerBackend::default(), kind, n, tight()).unwrap();
        let reference = Layer::new(RefBackend, kind, n, tight()).unwrap();
        let (a, b) = (
            faer.forward(&y, Some(&u), &wrt).unwrap(),
            reference.forward(&y, Some(&u), &wrt).unwrap(),
        );
        assert_eq!(a.status, Status::Solved);
        assert!(max_abs_diff(&a.x, &b.x) < 1e-9, "{kind:?}");
        for param in wrt {
            let (ja, jb) = (a.jacobian(param).unwrap(), b.jacobian(param).unwrap());
            assert!(max_abs_diff(&ja.col_major(), &jb.col_major()) < 1e-8);
        }
        let grads = faer.vjp(&a, &g).unwrap();
        let jt_g = |j: &HostMatrix| -> Vec<f64> {
            (0..n)
                .map(|k| (0..n).map(|i| j.get(i, k) * g[i]).sum())
                .collect()
        };
        assert!(max_abs_diff(&grads.y, &jt_g(a.jacobian(LayerParam::Y).unwrap())) < 1e-7);
        let gu = grads.u.unwrap();
        assert!(max_abs_diff(&gu, &jt_g(a.jacobian(LayerParam::U).unwrap())) < 1e-7);
    }
}

#[test]
fn smooth_woodbury_and_the_full_newton_system_agree() {
    let (n, p, m) = (30, 3, 9);
    let x0: Vec<f64> = (0..n)
        .map(|i| 1.0 + 0.5 * ((i as f64) * 0.37).sin())
        .collect();
    let total: f64 = x0.iter().sum();
    let x0: Vec<f64> = x0.iter().map(|v| v / total).collect();
    let (ua, ug) = (uniform(p * n, 11), uniform(m * n, 12));
    let a = HostMatrix::from_fn(p, n, |i, j| ua[i * n + j]);
    let g = HostMatrix::from_fn(m, n, |i, j| 2.0 * ug[i * n + j] - 1.0);
    let b = a.mul_vec(&x0);
    let h: Vec<f64> = g
        .mul_vec(&x0)
        .iter()
        .enumerate()
        .map(|(i, v)| v + if i % 3 == 0 { 0.0 } else { 0.1 })
        .collect();
    let f = Entropy::new(data(n, 0.41)).unwrap();
    let be = FaerBackend::default();
    let bm = be.mat_from_col_major(p, 1, &b).unwrap();
    let hm = be.mat_from_col_major(m, 1, &h).unwrap();
    let mut results = Vec::new();
    for system in [NewtonSystem::Woodbury, NewtonSystem::Full] {
        let solver = SmoothSolver::new(
            be.clone(),
            be.op_from_host(&a).unwrap(),
            be.op_from_host(&g).unwrap(),
            tight().with_newton_system(system),
        )
        .unwrap();
        let sol = solver.solve(&f, &bm, &hm, &[SmoothParam::B]).unwrap();
        assert_eq!(sol.status(), Status::Solved, "{system:?}");
        let active = be
            .to_col_major(sol.s())
            .unwrap()
            .iter()
            .filter(|&&v| v <= 0.0)
            .count();
        assert!(
            active > 0 && active < m,
            "want a mixed active set, {active} of {m}"
        );
        let kkt = solver.kkt_jacobian(&f, &sol, SmoothParam::B).unwrap();
        let jac = be
            .to_col_major(sol.jacobian(SmoothParam::B).unwrap())
            .unwrap();
        assert!(max_abs_diff(&jac, &be.to_col_major(&kkt).unwrap()) < 1e-7);
        results.push((be.to_col_major(sol.x()).unwrap(), jac));
    }
    assert!(max_abs_diff(&results[0].0, &results[1].0) < 1e-9);
    assert!(max_abs_diff(&results[0].1, &results[1].1) < 1e-8);
}

#[test]
fn smooth_the_layers_run_on_the_sparse_backend() {
    let n = 12;
    let y = data(n, 0.77);
    let u = vec![0.15; n];
    let g = data(n, 1.9);
    for kind in LayerKind::ALL {
        let u = kind.has_upper_bound().then_some(&u[..]);
        let wrt: &[LayerParam] = if u.is_some() {
            &[LayerParam::Y, LayerParam::U]
        } else {
            &[LayerParam::Y]
        };
        let dense = Layer::new(FaerBackend::default(), kind, n, tight()).unwrap();
        let sparse = Layer::new(FaerSparseBackend::default(), kind, n, tight()).unwrap();
        let (a, b) = (
            dense.forward(&y, u, wrt).unwrap(),
            sparse.forward(&y, u, wrt).unwrap(),
        );
        assert_eq!(b.status, Status::Solved, "{kind:?}");
        assert!(max_abs_diff(&a.x, &b.x) < 1e-9, "{kind:?}");
        for &param in wrt {
            let (ja, jb) = (a.jacobian(param).unwrap(), b.jacobian(param).unwrap());
            assert!(
                max_abs_diff(&ja.col_major(), &jb.col_major()) < 1e-8,
                "{kind:?}"
            );
        }
        let (ga, gb) = (dense.vjp(&a, &g).unwrap(), sparse.vjp(&b, &g).unwrap());
        assert!(max_abs_diff(&ga.y, &gb.y) < 1e-8, "{kind:?}");
    }
}
