//! Smooth objectives and layers on the reference backend (feature `testing`): closed forms
//! (softmax, the projection onto the simplex computed by sorting), finite differences for
//! the constrained layers wrt `y` and `u`, the KKT cross-check of the VJP (a full KKT matrix
//! solved by nalgebra's LU, independent of the solver), forward / reverse consistency, the
//! QP special case against `AltDiff`, and bad inputs.
#![cfg(feature = "testing")]

use altdiff_core::smooth::layers::{Entropy, Layer, LayerKind, LayerParam, Quadratic};
use altdiff_core::smooth::{
    InputProblem, NewtonSystem, SmoothParam, SmoothSettings, SmoothSolution, SmoothSolver,
};
use altdiff_core::testing::{RefBackend, tiny_qp};
use altdiff_core::testing::{max_abs_diff, simplex_projection, softmax};
use altdiff_core::{
    AltDiff, Error, Field, HostMatrix, LinAlg, Method, Param, Qp, Settings, Status, StoppingRule,
    Wrt,
};
use nalgebra::DMatrix;

fn tight() -> SmoothSettings {
    SmoothSettings::default().with_tolerances(1e-11, 1e-11)
}

/// A small deterministic generator (xorshift64*), uniform in [0, 1).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    fn vec(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| scale * self.normal()).collect()
    }
}

fn jac_diff(j: &HostMatrix, expected: impl Fn(usize, usize) -> f64) -> f64 {
    let mut worst = 0.0_f64;
    for i in 0..j.nrows() {
        for k in 0..j.ncols() {
            worst = worst.max((j.get(i, k) - expected(i, k)).abs());
        }
    }
    worst
}

/// `J'g` on the host.
fn jt_g(j: &HostMatrix, g: &[f64]) -> Vec<f64> {
    (0..j.ncols())
        .map(|k| (0..j.nrows()).map(|i| j.get(i, k) * g[i]).sum())
        .collect()
}

fn layer(kind: LayerKind, n: usize) -> Layer<RefBackend> {
    Layer::new(RefBackend, kind, n, tight()).expect("layer")
}

#[test]
fn smooth_softmax_layer_is_softmax_with_its_jacobian() {
    let mut rng = Rng(7);
    for n in [1, 2, 5, 12] {
        let y = rng.vec(n, 1.5);
        let out = layer(LayerKind::Softmax, n)
            .forward(&y, None, &[LayerParam::Y])
            .unwrap();
        assert_eq!(out.status, Status::Solved);
        let s = softmax(&y);
        assert!(max_abs_diff(&out.x, &s) < 1e-9, "{:?} vs {s:?}", out.x);
        let j = out.jacobian(LayerParam::Y).unwrap();
        let err = jac_diff(j, |i, k| if i == k { s[i] } else { 0.0 } - s[i] * s[k]);
        assert!(err < 1e-8, "n = {n}: Jacobian error {err}");
    }
}

#[test]
fn smooth_sparsemax_layer_is_the_simplex_projection_with_its_jacobian() {
    let mut rng = Rng(11);
    for (n, scale) in [(3, 1.0), (6, 0.4), (10, 2.0), (10, 0.05)] {
        let y = rng.vec(n, scale);
        let out = layer(LayerKind::Sparsemax, n)
            .forward(&y, None, &[LayerParam::Y])
            .unwrap();
        assert_eq!(out.status, Status::Solved);
        let x = simplex_projection(&y);
        assert!(max_abs_diff(&out.x, &x) < 1e-9, "{:?} vs {x:?}", out.x);
        // constant Hessian: one factorization, and one per change of the penalty
        let sol = out.solution();
        assert_eq!(sol.factorizations(), 1 + sol.rho_updates());
        let support: Vec<bool> = x.iter().map(|&v| v > 0.0).collect();
        let size = support.iter().filter(|&&s| s).count() as f64;
        let j = out.jacobian(LayerParam::Y).unwrap();
        let err = jac_diff(j, |i, k| {
            let both = if support[i] && support[k] { 1.0 } else { 0.0 };
            (if i == k { both } else { 0.0 }) - both / size
        });
        assert!(
            err < 1e-7,
            "n = {n}: Jacobian error {err}, support {support:?}"
        );
    }
}

#[test]
fn smooth_sparsemax_on_a_known_point() {
    let out = layer(LayerKind::Sparsemax, 4)
        .forward(&[0.5, 1.2, -0.3, 0.9], None, &[])
        .unwrap();
    // tau = (1.2 + 0.9 - 1)/2 = 0.55
    assert!(
        max_abs_diff(&out.x, &[0.0, 0.65, 0.0, 0.35]) < 1e-9,
        "{:?}",
        out.x
    );
}

/// Central differences of a layer's `x` wrt `y` or `u`, column by column.
fn finite_diff(
    layer: &Layer<RefBackend>,
    y: &[f64],
    u: Option<&[f64]>,
    param: LayerParam,
) -> HostMatrix {
    let n = y.len();
    let step = 1e-6;
    let mut cols = Vec::with_capacity(n * n);
    for k in 0..n {
        let run = |t: f64| {
            let (mut y, mut u) = (y.to_vec(), u.map(<[f64]>::to_vec));
            match param {
                LayerParam::Y => y[k] += t,
                _ => u.as_mut().unwrap()[k] += t,
            }
            let out = layer.forward(&y, u.as_deref(), &[]).unwrap();
            assert_eq!(out.status, Status::Solved);
            out.x
        };
        let (plus, minus) = (run(step), run(-step));
        cols.extend(plus.iter().zip(&minus).map(|(a, b)| (a - b) / (2.0 * step)));
    }
    HostMatrix::from_col_major(Field::Q, n, n, cols).unwrap()
}

/// A csoftmax / csparsemax instance with some active upper bounds (and, for sparsemax,
/// some zeros), none of them weakly active.
fn constrained_instance(kind: LayerKind) -> (Vec<f64>, Vec<f64>) {
    match kind {
        LayerKind::CSoftmax => (
            vec![1.5, 0.2, -0.4, 1.1, 0.0, -1.0],
            vec![0.25, 0.5, 0.5, 0.2, 0.5, 0.5],
        ),
        _ => (
            vec![0.9, 0.1, -0.5, 0.7, 0.3, -0.2],
            vec![0.3, 0.5, 0.5, 0.25, 0.6, 0.5],
        ),
    }
}

#[test]
fn smooth_constrained_layers_match_finite_differences_wrt_y_and_u() {
    for kind in [LayerKind::CSoftmax, LayerKind::CSparsemax] {
        let (y, u) = constrained_instance(kind);
        let layer = layer(kind, y.len());
        let out = layer
            .forward(&y, Some(&u), &[LayerParam::Y, LayerParam::U])
            .unwrap();
        assert_eq!(out.status, Status::Solved, "{kind:?}");
        // the instance has active and inactive bounds
        let active = out.x.iter().zip(&u).filter(|(x, u)| (*x - *u).abs() < 1e-8);
        assert!(
            (1..y.len()).contains(&active.count()),
            "{kind:?}: {:?}",
            out.x
        );
        assert!((out.x.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        for param in [LayerParam::Y, LayerParam::U] {
            let fd = finite_diff(&layer, &y, Some(&u), param);
            let j = out.jacobian(param).unwrap();
            let err = jac_diff(j, |i, k| fd.get(i, k));
            assert!(err < 1e-5, "{kind:?} d x/d {}: error {err}", param.name());
        }
    }
}

/// `dx/dy` and `dx/du` of a constrained layer from the full KKT system at the active set of
/// `x`, `[Hf C'; C 0]` with `Hf = diag(1/x)` (entropy) or `2 I` (sparsemax), solved by LU.
fn kkt_oracle(kind: LayerKind, x: &[f64], u: &[f64]) -> (DMatrix<f64>, DMatrix<f64>) {
    let n = x.len();
    // active rows as (index, sign): +1 for x_i <= u_i, -1 for -x_i <= 0
    let mut rows: Vec<(usize, f64)> = (0..n)
        .filter(|&i| (x[i] - u[i]).abs() < 1e-7)
        .map(|i| (i, 1.0))
        .collect();
    if kind == LayerKind::CSparsemax {
        rows.extend((0..n).filter(|&i| x[i].abs() < 1e-7).map(|i| (i, -1.0)));
    }
    let size = n + 1 + rows.len();
    let mut k = DMatrix::<f64>::zeros(size, size);
    for i in 0..n {
        k[(i, i)] = if kind == LayerKind::CSoftmax {
            1.0 / x[i]
        } else {
            2.0
        };
        k[(n, i)] = 1.0;
        k[(i, n)] = 1.0;
    }
    for (r, &(i, sign)) in rows.iter().enumerate() {
        k[(n + 1 + r, i)] = sign;
        k[(i, n + 1 + r)] = sign;
    }
    let e = if kind == LayerKind::CSoftmax {
        1.0
    } else {
        2.0
    }; // -E
    let mut rhs_y = DMatrix::<f64>::zeros(size, n);
    (0..n).for_each(|i| rhs_y[(i, i)] = e);
    let mut rhs_u = DMatrix::<f64>::zeros(size, n);
    for (r, &(i, sign)) in rows.iter().enumerate() {
        if sign > 0.0 {
            rhs_u[(n + 1 + r, i)] = 1.0;
        }
    }
    let lu = k.lu();
    let jy = lu.solve(&rhs_y).expect("nonsingular KKT");
    let ju = lu.solve(&rhs_u).expect("nonsingular KKT");
    (jy.rows(0, n).into_owned(), ju.rows(0, n).into_owned())
}

#[test]
fn smooth_vjp_matches_the_kkt_oracle_and_the_forward_jacobians() {
    let mut rng = Rng(3);
    for kind in [LayerKind::CSoftmax, LayerKind::CSparsemax] {
        let (y, u) = constrained_instance(kind);
        let n = y.len();
        let layer = layer(kind, n);
        let out = layer
            .forward(&y, Some(&u), &[LayerParam::Y, LayerParam::U])
            .unwrap();
        let (jy, ju) = kkt_oracle(kind, &out.x, &u);
        for _ in 0..3 {
            let g = rng.vec(n, 1.0);
            let grads = layer.vjp(&out, &g).unwrap();
            let oracle_y: Vec<f64> = (0..n)
                .map(|k| (0..n).map(|i| jy[(i, k)] * g[i]).sum())
                .collect();
            let oracle_u: Vec<f64> = (0..n)
                .map(|k| (0..n).map(|i| ju[(i, k)] * g[i]).sum())
                .collect();
            assert!(
                max_abs_diff(&grads.y, &oracle_y) < 1e-8,
                "{kind:?} y: {:?} vs {oracle_y:?}",
                grads.y
            );
            let gu = grads.u.as_ref().unwrap();
            assert!(
                max_abs_diff(gu, &oracle_u) < 1e-8,
                "{kind:?} u: {gu:?} vs {oracle_u:?}"
            );
            // reverse = transposed forward (Alt-Diff)
            let fy = jt_g(out.jacobian(LayerParam::Y).unwrap(), &g);
            let fu = jt_g(out.jacobian(LayerParam::U).unwrap(), &g);
            assert!(max_abs_diff(&grads.y, &fy) < 1e-7, "{kind:?}: g'J != VJP");
            assert!(max_abs_diff(gu, &fu) < 1e-7, "{kind:?}: g'J_u != VJP");
        }
    }
}

#[test]
fn smooth_vjp_of_the_unconstrained_layers_matches_the_closed_forms() {
    let mut rng = Rng(5);
    let n = 7;
    let y = rng.vec(n, 1.0);
    let g = rng.vec(n, 1.0);
    let out = layer(LayerKind::Softmax, n).forward(&y, None, &[]).unwrap();
    let grads = layer(LayerKind::Softmax, n).vjp(&out, &g).unwrap();
    let s = softmax(&y);
    let sg: f64 = s.iter().zip(&g).map(|(a, b)| a * b).sum();
    let expected: Vec<f64> = (0..n).map(|k| s[k] * (g[k] - sg)).collect();
    assert!(max_abs_diff(&grads.y, &expected) < 1e-9);
    assert!(grads.u.is_none());

    let y = [0.4, 0.35, -0.2, 0.1, 0.3, -1.0, 0.05];
    let sparse = layer(LayerKind::Sparsemax, n);
    let out = sparse.forward(&y, None, &[]).unwrap();
    let x = simplex_projection(&y);
    let support: Vec<usize> = (0..n).filter(|&i| x[i] > 0.0).collect();
    let mean: f64 = support.iter().map(|&i| g[i]).sum::<f64>() / support.len() as f64;
    let expected: Vec<f64> = (0..n)
        .map(|k| {
            if support.contains(&k) {
                g[k] - mean
            } else {
                0.0
            }
        })
        .collect();
    let grads = sparse.vjp(&out, &g).unwrap();
    assert!(
        max_abs_diff(&grads.y, &expected) < 1e-9,
        "{:?} vs {expected:?}",
        grads.y
    );
}

/// A random entropy problem in the style of the seed's `test_bfgs`: `A` positive, `b = A x0`,
/// `h = G x0 + margin` with `x0` in the interior of the simplex.
fn entropy_problem(
    n: usize,
    p: usize,
    m: usize,
    seed: u64,
) -> (HostMatrix, Vec<f64>, HostMatrix, Vec<f64>, Vec<f64>) {
    let mut rng = Rng(seed);
    let x0: Vec<f64> = (0..n).map(|_| 0.5 + rng.uniform()).collect();
    let total: f64 = x0.iter().sum();
    let x0: Vec<f64> = x0.iter().map(|v| v / total).collect();
    let a = HostMatrix::from_fn(p, n, |_, _| rng.uniform());
    let g = HostMatrix::from_fn(m, n, |_, _| rng.normal());
    let b = a.mul_vec(&x0);
    // half of the inequalities tight at x0 (they may become active), half with a margin
    let h: Vec<f64> = g
        .mul_vec(&x0)
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v + if i % 2 == 0 {
                0.0
            } else {
                0.05 + 0.1 * rng.uniform()
            }
        })
        .collect();
    let y = rng.vec(n, 2.0);
    (a, b, g, h, y)
}

fn entropy_solver(
    a: &HostMatrix,
    g: &HostMatrix,
    settings: SmoothSettings,
) -> SmoothSolver<RefBackend> {
    let be = RefBackend;
    SmoothSolver::new(
        be,
        be.op_from_host(a).unwrap(),
        be.op_from_host(g).unwrap(),
        settings,
    )
    .unwrap()
}

fn host(m: &<RefBackend as LinAlg>::Mat) -> Vec<f64> {
    RefBackend.to_col_major(m).unwrap()
}

#[test]
fn smooth_general_entropy_problem_altdiff_kkt_woodbury_and_full_agree() {
    let (n, p, m) = (12, 2, 4);
    let (a, b, g, h, y) = entropy_problem(n, p, m, 42);
    let be = RefBackend;
    let (bm, hm) = (
        be.mat_from_col_major(p, 1, &b).unwrap(),
        be.mat_from_col_major(m, 1, &h).unwrap(),
    );
    let f = Entropy::new(y).unwrap();
    let wrt = [SmoothParam::Theta, SmoothParam::B, SmoothParam::H];
    let mut solutions: Vec<SmoothSolution<RefBackend>> = Vec::new();
    for system in [NewtonSystem::Woodbury, NewtonSystem::Full] {
        let solver = entropy_solver(&a, &g, tight().with_newton_system(system));
        let sol = solver.solve(&f, &bm, &hm, &wrt).unwrap();
        assert_eq!(sol.status(), Status::Solved, "{system:?}");
        let x = host(sol.x());
        assert!(x.iter().all(|&v| v > 0.0));
        let s = host(sol.s());
        let active = s.iter().filter(|&&v| v <= 0.0).count();
        assert!(
            active > 0 && active < m,
            "{system:?}: want a mixed active set, s = {s:?}"
        );
        // Alt-Diff Jacobians = KKT Jacobians
        for &param in &wrt {
            let kkt = solver.kkt_jacobian(&f, &sol, param).unwrap();
            let err = max_abs_diff(&host(sol.jacobian(param).unwrap()), &host(&kkt));
            assert!(err < 1e-7, "{system:?} {param:?}: {err}");
        }
        // VJP = g'J for every parameter
        let gseed = Rng(9).vec(n, 1.0);
        let grads = solver
            .vjp(&f, &sol, &be.mat_from_col_major(n, 1, &gseed).unwrap())
            .unwrap();
        let as_host = |param| {
            let j = sol.jacobian(param).unwrap();
            let (r, c) = be.shape(j);
            HostMatrix::from_col_major(Field::Q, r, c, host(j)).unwrap()
        };
        for (param, got) in [
            (SmoothParam::Theta, &grads.theta),
            (SmoothParam::B, &grads.b),
            (SmoothParam::H, &grads.h),
        ] {
            let err = max_abs_diff(&host(got), &jt_g(&as_host(param), &gseed));
            assert!(err < 1e-7, "{system:?} VJP {param:?}: {err}");
        }
        solutions.push(sol);
    }
    assert!(max_abs_diff(&host(solutions[0].x()), &host(solutions[1].x())) < 1e-9);
    let j = |s: &SmoothSolution<RefBackend>| host(s.jacobian(SmoothParam::B).unwrap());
    assert!(max_abs_diff(&j(&solutions[0]), &j(&solutions[1])) < 1e-8);
}

#[test]
fn smooth_method_kkt_gives_the_kkt_jacobians() {
    let (y, u) = constrained_instance(LayerKind::CSoftmax);
    let n = y.len();
    let altdiff = layer(LayerKind::CSoftmax, n)
        .forward(&y, Some(&u), &[LayerParam::Y, LayerParam::U])
        .unwrap();
    let kkt_layer = Layer::new(
        RefBackend,
        LayerKind::CSoftmax,
        n,
        tight().with_method(Method::Kkt),
    )
    .unwrap();
    let kkt = kkt_layer
        .forward(&y, Some(&u), &[LayerParam::Y, LayerParam::U])
        .unwrap();
    for param in [LayerParam::Y, LayerParam::U] {
        let (a, b) = (
            altdiff.jacobian(param).unwrap(),
            kkt.jacobian(param).unwrap(),
        );
        assert!(jac_diff(a, |i, k| b.get(i, k)) < 1e-7, "{param:?}");
    }
}

#[test]
fn smooth_the_qp_special_case_matches_altdiff() {
    let be = RefBackend;
    let qp = tiny_qp();
    let settings =
        Settings::default()
            .with_wrt(Wrt::vectors())
            .with_stopping(StoppingRule::Residual {
                eps_abs: 1e-11,
                eps_rel: 1e-11,
            });
    let problem = Qp::from_host(&be, &qp).unwrap();
    let reference = AltDiff::new(be, &problem, settings.clone())
        .unwrap()
        .solve(problem.params())
        .unwrap()
        .to_host(&be)
        .unwrap();
    let smooth_settings = SmoothSettings::from_settings(&settings);
    let solver = SmoothSolver::new(
        be,
        be.op_from_host(&qp.a).unwrap(),
        be.op_from_host(&qp.g).unwrap(),
        smooth_settings,
    )
    .unwrap();
    let f = Quadratic::new(&be, be.op_from_host(&qp.p).unwrap(), &qp.q).unwrap();
    let b = be.mat_from_col_major(qp.b.len(), 1, &qp.b).unwrap();
    let h = be.mat_from_col_major(qp.h.len(), 1, &qp.h).unwrap();
    let sol = solver
        .solve(
            &f,
            &b,
            &h,
            &[SmoothParam::Theta, SmoothParam::B, SmoothParam::H],
        )
        .unwrap();
    assert_eq!(sol.status(), Status::Solved);
    assert_eq!(
        sol.factorizations(),
        1,
        "a constant Hessian is factored once"
    );
    assert!(max_abs_diff(&host(sol.x()), &reference.x) < 1e-9);
    for (smooth, param) in [
        (SmoothParam::Theta, Param::Q),
        (SmoothParam::B, Param::B),
        (SmoothParam::H, Param::H),
    ] {
        let expected = reference.jacobian(param).unwrap();
        let got = host(sol.jacobian(smooth).unwrap());
        assert!(
            max_abs_diff(&got, &expected.col_major()) < 1e-8,
            "{param:?}"
        );
    }
}

#[test]
fn smooth_entropy_hessian_is_refactored_and_the_iterates_stay_in_the_domain() {
    let y = [3.0, -3.0, 0.0, 8.0];
    let out = layer(LayerKind::Softmax, 4).forward(&y, None, &[]).unwrap();
    assert!(out.solution().factorizations() > 1);
    assert!(out.x.iter().all(|&v| v > 0.0));
    assert!(max_abs_diff(&out.x, &softmax(&y)) < 1e-9);
}

#[test]
fn smooth_non_convergence_is_a_status() {
    let settings = SmoothSettings::default().with_max_iter(2);
    let layer = Layer::new(RefBackend, LayerKind::CSparsemax, 4, settings).unwrap();
    let out = layer
        .forward(
            &[1.0, 0.5, 0.2, 0.0],
            Some(&[0.4, 0.4, 0.4, 0.4]),
            &[LayerParam::Y],
        )
        .unwrap();
    assert_eq!(out.status, Status::MaxIterations);
    assert_eq!(out.iterations, 2);
    let settings = SmoothSettings::default().with_stopping(StoppingRule::Fixed(5));
    let layer = Layer::new(RefBackend, LayerKind::Softmax, 3, settings).unwrap();
    let out = layer.forward(&[1.0, 0.5, 0.2], None, &[]).unwrap();
    assert_eq!((out.status, out.iterations), (Status::FixedIterations, 5));
}

#[test]
fn smooth_other_stopping_rules_stop() {
    for rule in [
        StoppingRule::RelativeX(1e-9),
        StoppingRule::RelativeObjective(1e-12),
    ] {
        let settings = SmoothSettings::default().with_stopping(rule);
        let out = Layer::new(RefBackend, LayerKind::Softmax, 3, settings)
            .unwrap()
            .forward(&[1.0, 0.5, 0.2], None, &[])
            .unwrap();
        assert_eq!(out.status, Status::Solved, "{rule:?}");
        assert!(
            max_abs_diff(&out.x, &softmax(&[1.0, 0.5, 0.2])) < 1e-5,
            "{rule:?}"
        );
    }
}

fn input_error(err: Error) -> (&'static str, InputProblem) {
    match err {
        Error::Input { name, problem } => (name, problem),
        other => panic!("expected an input error, got {other:?}"),
    }
}

#[test]
fn smooth_bad_inputs_are_typed_errors_naming_the_input() {
    let soft = layer(LayerKind::Softmax, 3);
    let (name, problem) = input_error(soft.forward(&[1.0, 2.0], None, &[]).unwrap_err());
    assert_eq!(
        (name, problem),
        (
            "y",
            InputProblem::Length {
                expected: 3,
                got: 2
            }
        )
    );
    let (name, problem) = input_error(soft.forward(&[1.0, f64::NAN, 0.0], None, &[]).unwrap_err());
    assert!(name == "y" && matches!(problem, InputProblem::NonFinite { index: 1, .. }));
    assert!(matches!(
        soft.forward(&[1.0, 2.0, 3.0], Some(&[1.0; 3]), &[]),
        Err(Error::Request(_))
    ));
    assert!(matches!(
        soft.forward(&[1.0, 2.0, 3.0], None, &[LayerParam::U]),
        Err(Error::Request(_))
    ));

    let csoft = layer(LayerKind::CSoftmax, 3);
    let y = [0.1, 0.2, 0.3];
    assert!(matches!(
        csoft.forward(&y, None, &[]),
        Err(Error::Request(_))
    ));
    let (name, problem) = input_error(csoft.forward(&y, Some(&[0.5, -0.1, 0.9]), &[]).unwrap_err());
    assert!(name == "u" && matches!(problem, InputProblem::OutOfRange { index: 1, .. }));
    // the entropy's domain is x > 0: u_i = 0 is rejected for csoftmax, fine for csparsemax
    let (name, problem) = input_error(csoft.forward(&y, Some(&[0.5, 0.0, 0.9]), &[]).unwrap_err());
    assert!(name == "u" && matches!(problem, InputProblem::OutOfRange { index: 1, .. }));
    let csparse = layer(LayerKind::CSparsemax, 3);
    assert!(csparse.forward(&y, Some(&[0.5, 0.0, 0.9]), &[]).is_ok());
    let (name, problem) = input_error(
        csparse
            .forward(&y, Some(&[0.3, 0.3, 0.3]), &[])
            .unwrap_err(),
    );
    assert!(name == "u" && matches!(problem, InputProblem::Infeasible { .. }));
    let (name, problem) = input_error(csparse.forward(&y, Some(&[0.3, 0.3]), &[]).unwrap_err());
    assert_eq!(
        (name, problem),
        (
            "u",
            InputProblem::Length {
                expected: 3,
                got: 2
            }
        )
    );
    let (name, _) = input_error(
        csparse
            .forward(&y, Some(&[0.3, f64::INFINITY, 1.0]), &[])
            .unwrap_err(),
    );
    assert_eq!(name, "u");

    let out = csparse.forward(&y, Some(&[0.5, 0.5, 0.5]), &[]).unwrap();
    let (name, problem) = input_error(csparse.vjp(&out, &[1.0]).unwrap_err());
    assert_eq!(
        (name, problem),
        (
            "g",
            InputProblem::Length {
                expected: 3,
                got: 1
            }
        )
    );
    let (name, _) = input_error(csparse.vjp(&out, &[1.0, f64::NAN, 0.0]).unwrap_err());
    assert_eq!(name, "g");

    let (name, problem) =
        input_error(Layer::new(RefBackend, LayerKind::Softmax, 0, tight()).unwrap_err());
    assert_eq!((name, problem), ("y", InputProblem::Empty));
    assert!(matches!(
        Layer::new(RefBackend, LayerKind::Softmax, 2, tight().with_rho(-1.0)),
        Err(Error::Settings(_))
    ));
    assert!(matches!(
        Entropy::new(vec![]),
        Err(Error::Input { name: "y", .. })
    ));
    // the message names the input and the shapes
    let msg = soft.forward(&[1.0], None, &[]).unwrap_err().to_string();
    assert!(
        msg.contains('y') && msg.contains('3') && msg.contains('1'),
        "{msg}"
    );
}

#[test]
fn smooth_bad_solver_inputs_are_typed_errors() {
    let be = RefBackend;
    let (a, b, g, h, y) = entropy_problem(5, 1, 2, 1);
    let solver = entropy_solver(&a, &g, tight());
    let f = Entropy::new(y).unwrap();
    let bm = be.mat_from_col_major(1, 1, &b).unwrap();
    let hm = be.mat_from_col_major(2, 1, &h).unwrap();
    let bad_b = be.mat_from_col_major(2, 1, &[1.0, 1.0]).unwrap();
    assert!(matches!(
        solver.solve(&f, &bad_b, &hm, &[]),
        Err(Error::Dimension {
            field: Field::B,
            ..
        })
    ));
    let nan_h = be.mat_from_col_major(2, 1, &[h[0], f64::NAN]).unwrap();
    assert!(matches!(
        solver.solve(&f, &bm, &nan_h, &[]),
        Err(Error::NonFinite {
            field: Field::H,
            row: 1,
            ..
        })
    ));
    let wrong = Entropy::new(vec![0.0; 4]).unwrap();
    assert!(matches!(
        solver.solve(&wrong, &bm, &hm, &[]),
        Err(Error::Input {
            name: "objective",
            ..
        })
    ));
    let sol = solver.solve(&f, &bm, &hm, &[]).unwrap();
    let seed = be.mat_from_col_major(4, 1, &[1.0; 4]).unwrap();
    assert!(matches!(
        solver.vjp(&f, &sol, &seed),
        Err(Error::Dimension {
            field: Field::Seed,
            ..
        })
    ));
    let nan_a = be
        .op_from_col_major(1, 5, &[1.0, f64::NAN, 1.0, 1.0, 1.0])
        .unwrap();
    let none = be.op_from_col_major(0, 5, &[]).unwrap();
    assert!(matches!(
        SmoothSolver::new(be, nan_a, none, tight()),
        Err(Error::NonFinite {
            field: Field::A,
            row: 0,
            col: 1,
            ..
        })
    ));
}

#[test]
fn smooth_a_degenerate_active_set_is_a_typed_error_in_reverse_mode() {
    // the equality 1'x = 1 twice: the forward solve is fine, the KKT system is singular
    let be = RefBackend;
    let a = HostMatrix::from_fn(2, 3, |_, _| 1.0);
    let solver = entropy_solver(&a, &HostMatrix::zeros(0, 3), tight());
    let f = Entropy::new(vec![0.5, 0.0, -0.5]).unwrap();
    let b = be.mat_from_col_major(2, 1, &[1.0, 1.0]).unwrap();
    let sol = solver
        .solve(&f, &b, &be.zeros(0, 1).unwrap(), &[SmoothParam::Theta])
        .unwrap();
    assert_eq!(sol.status(), Status::Solved);
    assert!(max_abs_diff(&host(sol.x()), &softmax(&[0.5, 0.0, -0.5])) < 1e-8);
    let seed = be.mat_from_col_major(3, 1, &[1.0, 0.0, 0.0]).unwrap();
    assert!(matches!(
        solver.vjp(&f, &sol, &seed),
        Err(Error::SingularKkt { rows: 2 })
    ));
    // Alt-Diff still converges to a Jacobian (the recursion does not need independent rows)
    let s = softmax(&[0.5, 0.0, -0.5]);
    let j = host(sol.jacobian(SmoothParam::Theta).unwrap());
    let expected: Vec<f64> = (0..9)
        .map(|k| (if k % 3 == k / 3 { s[k % 3] } else { 0.0 }) - s[k % 3] * s[k / 3])
        .collect();
    assert!(max_abs_diff(&j, &expected) < 1e-7);
}

#[test]
fn smooth_hessian_reuse_saves_factorizations_and_keeps_the_solution() {
    let (n, p, m) = (15, 2, 5);
    let (a, b, g, h, y) = entropy_problem(n, p, m, 17);
    let be = RefBackend;
    let bm = be.mat_from_col_major(p, 1, &b).unwrap();
    let hm = be.mat_from_col_major(m, 1, &h).unwrap();
    let f = Entropy::new(y).unwrap();
    let every = entropy_solver(&a, &g, tight().with_hessian_reuse(0.0))
        .solve(&f, &bm, &hm, &[])
        .unwrap();
    let reuse = entropy_solver(&a, &g, tight())
        .solve(&f, &bm, &hm, &[])
        .unwrap();
    assert_eq!(
        (every.status(), reuse.status()),
        (Status::Solved, Status::Solved)
    );
    assert_eq!(every.factorizations(), every.newton_steps());
    assert!(
        reuse.factorizations() * 3 < every.factorizations(),
        "{} vs {}",
        reuse.factorizations(),
        every.factorizations()
    );
    assert!(max_abs_diff(&host(reuse.x()), &host(every.x())) < 1e-9);
    // with Jacobians, H is refactored at x_{k+1} for the tangent step: exact derivatives
    let solver = entropy_solver(&a, &g, tight());
    let with_j = solver.solve(&f, &bm, &hm, &[SmoothParam::B]).unwrap();
    assert_eq!(with_j.status(), Status::Solved);
    assert!(with_j.factorizations() <= with_j.iterations() + every.factorizations());
    let kkt = solver.kkt_jacobian(&f, &with_j, SmoothParam::B).unwrap();
    let err = max_abs_diff(&host(with_j.jacobian(SmoothParam::B).unwrap()), &host(&kkt));
    assert!(err < 1e-8, "{err}");
}

#[test]
fn smooth_vjp_takes_several_seeds_at_once() {
    let (n, p, m) = (10, 2, 4);
    let (a, b, g, h, y) = entropy_problem(n, p, m, 23);
    let be = RefBackend;
    let solver = entropy_solver(&a, &g, tight());
    let f = Entropy::new(y).unwrap();
    let bm = be.mat_from_col_major(p, 1, &b).unwrap();
    let hm = be.mat_from_col_major(m, 1, &h).unwrap();
    let sol = solver.solve(&f, &bm, &hm, &[]).unwrap();
    let mut rng = Rng(29);
    let (g1, g2) = (rng.vec(n, 1.0), rng.vec(n, 1.0));
    let both: Vec<f64> = g1.iter().chain(&g2).copied().collect();
    let together = solver
        .vjp(&f, &sol, &be.mat_from_col_major(n, 2, &both).unwrap())
        .unwrap();
    for (col, seed) in [g1, g2].iter().enumerate() {
        let alone = solver
            .vjp(&f, &sol, &be.mat_from_col_major(n, 1, seed).unwrap())
            .unwrap();
        for (got, one, len) in [
            (&together.theta, &alone.theta, n),
            (&together.b, &alone.b, p),
            (&together.h, &alone.h, m),
        ] {
            let got = host(got);
            assert!(max_abs_diff(&got[col * len..(col + 1) * len], &host(one)) < 1e-12);
        }
    }
}

/// The constrained softmax in closed form, independent of the layer's own level search:
/// `x = min(u, exp(y - tau))` with `tau` by bisection on `sum x = 1`, and its Jacobians
/// from the free / capped split (free `F` with mass `S`: `dx_F/dy_F = diag(x_F) -
/// x_F x_F'/S`; a capped `k` gives `dx_k/du_k = 1`, `dx_F/du_k = -x_F/S`).
fn csoftmax_closed_form(y: &[f64], u: &[f64]) -> (Vec<f64>, DMatrix<f64>, DMatrix<f64>) {
    let n = y.len();
    let mass = |tau: f64| -> f64 { (0..n).map(|i| u[i].min((y[i] - tau).exp())).sum() };
    let top = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut lo, mut hi) = (top - 1e4, top + (n as f64).ln() + 1.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mass(mid) > 1.0 { lo = mid } else { hi = mid }
    }
    let tau = 0.5 * (lo + hi);
    let capped: Vec<bool> = (0..n).map(|i| (y[i] - tau).exp() >= u[i]).collect();
    let x: Vec<f64> = (0..n).map(|i| u[i].min((y[i] - tau).exp())).collect();
    let free = |i: usize| if capped[i] { 0.0 } else { x[i] };
    let s: f64 = (0..n).map(free).sum();
    let jy = DMatrix::from_fn(
        n,
        n,
        |i, j| { if i == j { free(i) } else { 0.0 } } - free(i) * free(j) / s,
    );
    let ju = DMatrix::from_fn(n, n, |i, k| match (capped[k], i == k) {
        (true, true) => 1.0,
        (true, false) => -free(i) / s,
        (false, _) => 0.0,
    });
    (x, jy, ju)
}

#[test]
fn smooth_entropic_layers_solve_scores_of_any_spread() {
    // scores 745 apart made 1/x of the free entries overflow ("H is not positive definite"
    // for a layer without P), as did a capped entry hundreds above the rest
    let check = |kind: LayerKind, y: &[f64], u: &[f64]| {
        let n = y.len();
        let layer = Layer::new(RefBackend, kind, n, SmoothSettings::default()).unwrap();
        let caps = kind.has_upper_bound().then_some(u);
        let wrt: &[LayerParam] = if caps.is_some() {
            &[LayerParam::Y, LayerParam::U]
        } else {
            &[LayerParam::Y]
        };
        let out = layer
            .forward(y, caps, wrt)
            .unwrap_or_else(|e| panic!("{y:?} {u:?}: {e}"));
        assert_eq!(out.status, Status::Solved, "{y:?} {u:?}");
        let (x, jy, ju) = csoftmax_closed_form(y, u);
        assert!(max_abs_diff(&out.x, &x) < 1e-5, "{:?} vs {x:?}", out.x);
        // tiny entries come out at their closed-form magnitude, not as an iterate's noise
        for (got, want) in out.x.iter().zip(&x) {
            if *want < 1e-100 {
                assert!(*got <= 1e3 * want + 1e-300, "{got} vs {want}");
            }
        }
        let want_objective = kind.objective(&x, y);
        assert!((out.objective - want_objective).abs() < 1e-4 * (1.0 + want_objective.abs()));
        let err = jac_diff(out.jacobian(LayerParam::Y).unwrap(), |i, j| jy[(i, j)]);
        assert!(err < 1e-4, "{y:?}: dx/dy error {err}");
        if caps.is_some() {
            let err = jac_diff(out.jacobian(LayerParam::U).unwrap(), |i, j| ju[(i, j)]);
            assert!(err < 1e-4, "{y:?}: dx/du error {err}");
        }
        // the reverse mode agrees with the forward Jacobians
        let g: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
        let grads = layer.vjp(&out, &g).unwrap();
        let want = jt_g(out.jacobian(LayerParam::Y).unwrap(), &g);
        assert!(
            max_abs_diff(&grads.y, &want) < 1e-5,
            "{:?} vs {want:?}",
            grads.y
        );
        if let Some(gu) = grads.u {
            let want = jt_g(out.jacobian(LayerParam::U).unwrap(), &g);
            assert!(max_abs_diff(&gu, &want) < 1e-5, "{gu:?} vs {want:?}");
        }
    };
    let no_caps = |n: usize| vec![f64::INFINITY; n];
    for y in [
        vec![0.0, -745.0, -1.0],
        vec![0.0, -2000.0, -1.0, -600.0],
        vec![1e4, 0.0, 1e4 - 0.5],
    ] {
        check(LayerKind::Softmax, &y, &no_caps(y.len()));
    }
    // a capped top entry 1000 above the others
    check(LayerKind::CSoftmax, &[0.0, -1000.0, -1.0], &[0.3, 1.0, 0.3]);
    let mut rng = Rng(11);
    for scale in [1.0, 100.0, 1000.0] {
        for n in [3, 10, 40] {
            let y = rng.vec(n, scale);
            check(LayerKind::Softmax, &y, &no_caps(n));
            let mut u: Vec<f64> = (0..n).map(|_| 0.02 + 0.58 * rng.uniform()).collect();
            let total: f64 = u.iter().sum();
            if total < 1.05 {
                u.iter_mut().for_each(|v| *v *= 1.05 / total);
            }
            check(LayerKind::CSoftmax, &y, &u);
        }
    }
}

#[test]
fn smooth_entropy_hessian_stays_finite_at_a_subnormal_iterate() {
    // an iterate swung to x_i = 1e-320 gave 1/x = inf and a Cholesky failure blamed on P
    use altdiff_core::smooth::{Hessian, SmoothObjective};
    let be = RefBackend;
    let f = Entropy::new(vec![0.0, 0.0]).unwrap();
    let x = be.mat_from_col_major(2, 1, &[1e-320, 0.5]).unwrap();
    match SmoothObjective::<RefBackend>::hessian(&f, &be, &x).unwrap() {
        Hessian::Diagonal(d) => assert!(d.iter().all(|v| v.is_finite()), "{d:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn smooth_sparsemax_solves_scores_of_any_spread() {
    // y = (1e300, -1e300, 0): |x - y|^2 overflowed (numerical_error), and y - max(y) = -inf
    // for 1e308 was reported as a non-finite input
    let cases = [
        (vec![1e300, -1e300, 0.0], [1.0, 0.0, 0.0]),
        (vec![1e308, -1e308, 0.0], [1.0, 0.0, 0.0]),
        (vec![0.5, -1e9, 0.2], [0.65, 0.0, 0.35]),
    ];
    for (y, x) in cases {
        let out = layer(LayerKind::Sparsemax, 3)
            .forward(&y, None, &[LayerParam::Y])
            .unwrap_or_else(|e| panic!("{y:?}: {e}"));
        assert_eq!(out.status, Status::Solved, "{y:?}");
        assert!(max_abs_diff(&out.x, &x) < 1e-8, "{:?} vs {x:?}", out.x);
        let support: Vec<usize> = (0..3).filter(|&i| x[i] > 0.0).collect();
        let k = support.len() as f64;
        let err = jac_diff(out.jacobian(LayerParam::Y).unwrap(), |i, j| {
            let (si, sj) = (support.contains(&i), support.contains(&j));
            f64::from(u8::from(si && sj)) * (f64::from(u8::from(i == j)) - 1.0 / k)
        });
        assert!(err < 1e-8, "{y:?}: dx/dy error {err}");
    }
}
