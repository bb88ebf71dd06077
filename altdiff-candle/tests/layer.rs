//! `QpLayer` in candle autograd: `loss.backward()` against central finite differences of the
//! loss, for `q`, `b`, `h` (per element) and `P`, `A`, `G` (shared), in both VJP modes.

use altdiff_candle::QpLayer;
use altdiff_core::testing::{Generator, random_qp};
use altdiff_core::{HostMatrix, HostQp, Settings, StoppingRule, VjpMode};
use candle_core::{DType, Device, Tensor, Var};

const BATCH: usize = 3;

fn tight() -> Settings {
    Settings::default()
        .with_stopping(StoppingRule::Residual {
            eps_abs: 1e-12,
            eps_rel: 1e-12,
        })
        .with_max_iter(200_000)
}

fn matrix(m: &HostMatrix) -> Tensor {
    let data: Vec<f64> = (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| (i, j)))
        .map(|(i, j)| m.get(i, j))
        .collect();
    Tensor::from_vec(data, (m.nrows(), m.ncols()), &Device::Cpu).unwrap()
}

/// Rows `v + 0.2 j (1 + i)`-ish: one per element.
fn batch_of(v: &[f64]) -> Vec<Vec<f64>> {
    (0..BATCH)
        .map(|j| {
            v.iter()
                .enumerate()
                .map(|(i, x)| x + 0.2 * j as f64 * ((i % 3) as f64 - 1.0))
                .collect()
        })
        .collect()
}

fn tensor(rows: &[Vec<f64>]) -> Tensor {
    let cols = rows[0].len();
    let data: Vec<f64> = rows.iter().flatten().copied().collect();
    Tensor::from_vec(data, (rows.len(), cols), &Device::Cpu).unwrap()
}

/// A nonlinear loss of the layer's output: `sum(w x) + 1/2 sum(x^2)`.
fn loss(x: &Tensor) -> Tensor {
    let (b, n) = x.dims2().unwrap();
    let w: Vec<f64> = (0..b * n).map(|k| ((k * 7) % 5) as f64 - 2.0).collect();
    let w = Tensor::from_vec(w, (b, n), x.device()).unwrap();
    let linear = (x * &w).unwrap().sum_all().unwrap();
    let square = (x.sqr().unwrap().sum_all().unwrap() * 0.5).unwrap();
    (linear + square).unwrap()
}

struct Problem {
    qp: HostQp,
    q: Vec<Vec<f64>>,
    b: Vec<Vec<f64>>,
    h: Vec<Vec<f64>>,
}

impl Problem {
    fn new() -> Self {
        let qp = random_qp(Generator::WellConditioned, 6, 2, 5, 17);
        let (q, b, h) = (batch_of(&qp.q), batch_of(&qp.b), batch_of(&qp.h));
        Self { qp, q, b, h }
    }

    /// The loss at the problem's data (untracked).
    fn loss_at(&self, qp: &HostQp, q: &[Vec<f64>], b: &[Vec<f64>], h: &[Vec<f64>]) -> f64 {
        let layer = QpLayer::new(&matrix(&qp.p), &matrix(&qp.a), &matrix(&qp.g), tight()).unwrap();
        let x = layer.forward(&tensor(q), &tensor(b), &tensor(h)).unwrap();
        loss(&x).to_scalar::<f64>().unwrap()
    }
}

fn assert_close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: backward {got}, finite differences {want}"
    );
}

const STEP: f64 = 1e-6;

/// Central differences of the loss along every entry of one of `q`, `b`, `h`.
fn vector_fd(problem: &Problem, which: usize) -> Vec<Vec<f64>> {
    let data = [&problem.q, &problem.b, &problem.h][which];
    let mut out = vec![vec![0.0; data[0].len()]; BATCH];
    for j in 0..BATCH {
        for i in 0..data[0].len() {
            let at = |delta: f64| {
                let mut blocks = [problem.q.clone(), problem.b.clone(), problem.h.clone()];
                blocks[which][j][i] += delta;
                let [q, b, h] = &blocks;
                problem.loss_at(&problem.qp, q, b, h)
            };
            out[j][i] = (at(STEP) - at(-STEP)) / (2.0 * STEP);
        }
    }
    out
}

#[test]
fn vector_gradients_match_finite_differences() {
    let problem = Problem::new();
    let qp = &problem.qp;
    let expected = [0, 1, 2].map(|which| vector_fd(&problem, which));
    for mode in [VjpMode::Implicit, VjpMode::Kkt] {
        let layer = QpLayer::new(&matrix(&qp.p), &matrix(&qp.a), &matrix(&qp.g), tight())
            .unwrap()
            .with_vjp_mode(mode);
        let vars =
            [&problem.q, &problem.b, &problem.h].map(|d| Var::from_tensor(&tensor(d)).unwrap());
        let x = layer
            .forward(
                vars[0].as_tensor(),
                vars[1].as_tensor(),
                vars[2].as_tensor(),
            )
            .unwrap();
        assert_eq!(layer.last_report().unwrap().solved, BATCH);
        let grads = loss(&x).backward().unwrap();
        for (which, name) in ["q", "b", "h"].iter().enumerate() {
            let got = grads
                .get(vars[which].as_tensor())
                .unwrap()
                .to_vec2::<f64>()
                .unwrap();
            for (j, row) in expected[which].iter().enumerate() {
                for (i, want) in row.iter().enumerate() {
                    assert_close(
                        &format!("{mode:?} d loss / d {name}[{j}][{i}]"),
                        got[j][i],
                        *want,
                        1e-5,
                    );
                }
            }
        }
    }
}

#[test]
fn matrix_gradients_match_finite_differences() {
    let problem = Problem::new();
    let qp = &problem.qp;
    let vars = [&qp.p, &qp.a, &qp.g].map(|m| Var::from_tensor(&matrix(m)).unwrap());
    let layer = QpLayer::new(
        vars[0].as_tensor(),
        vars[1].as_tensor(),
        vars[2].as_tensor(),
        tight(),
    )
    .unwrap();
    let (q, b, h) = (tensor(&problem.q), tensor(&problem.b), tensor(&problem.h));
    let q_var = Var::from_tensor(&q).unwrap();
    let x = layer.forward(q_var.as_tensor(), &b, &h).unwrap();
    let grads = loss(&x).backward().unwrap();
    let got = vars
        .each_ref()
        .map(|v| grads.get(v.as_tensor()).unwrap().to_vec2::<f64>().unwrap());
    assert!(
        grads.get(q_var.as_tensor()).is_some(),
        "q still gets its gradient"
    );
    // P: a symmetric perturbation of entries (i, j) and (j, i)
    for (i, j) in [(0, 0), (1, 3), (4, 2), (5, 5)] {
        let at = |delta: f64| {
            let mut qp = qp.clone();
            let d = if i == j { delta } else { delta / 2.0 };
            qp.p = HostMatrix::from_fn(6, 6, |r, c| {
                qp.p.get(r, c)
                    + if (r, c) == (i, j) || (r, c) == (j, i) {
                        d
                    } else {
                        0.0
                    }
            });
            problem.loss_at(&qp, &problem.q, &problem.b, &problem.h)
        };
        let want = (at(STEP) - at(-STEP)) / (2.0 * STEP);
        let sym = if i == j {
            got[0][i][j]
        } else {
            0.5 * (got[0][i][j] + got[0][j][i])
        };
        assert_close(&format!("d loss / d P[{i}][{j}]"), sym, want, 1e-5);
    }
    for (which, name, entries) in [(1, "A", [(0, 0), (1, 4)]), (2, "G", [(0, 5), (3, 1)])] {
        for (i, j) in entries {
            let at = |delta: f64| {
                let mut qp = qp.clone();
                let m = if which == 1 { &mut qp.a } else { &mut qp.g };
                *m = HostMatrix::from_fn(m.nrows(), m.ncols(), |r, c| {
                    m.get(r, c) + if (r, c) == (i, j) { delta } else { 0.0 }
                });
                problem.loss_at(&qp, &problem.q, &problem.b, &problem.h)
            };
            let want = (at(STEP) - at(-STEP)) / (2.0 * STEP);
            assert_close(
                &format!("d loss / d {name}[{i}][{j}]"),
                got[which][i][j],
                want,
                1e-5,
            );
        }
    }
}

#[test]
fn f32_inputs_give_f32_outputs_and_gradients() {
    let problem = Problem::new();
    let qp = &problem.qp;
    let layer = QpLayer::new(&matrix(&qp.p), &matrix(&qp.a), &matrix(&qp.g), tight()).unwrap();
    let run = |dtype: DType| {
        let q = Var::from_tensor(&tensor(&problem.q).to_dtype(dtype).unwrap()).unwrap();
        let (b, h) = (
            tensor(&problem.b).to_dtype(dtype).unwrap(),
            tensor(&problem.h).to_dtype(dtype).unwrap(),
        );
        let x = layer.forward(q.as_tensor(), &b, &h).unwrap();
        assert_eq!(x.dtype(), dtype);
        let grads = loss(&x.to_dtype(DType::F64).unwrap()).backward().unwrap();
        let g = grads.get(q.as_tensor()).unwrap();
        assert_eq!(g.dtype(), dtype);
        (
            x.to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap(),
            g.to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap(),
        )
    };
    let (x64, g64) = run(DType::F64);
    let (x32, g32) = run(DType::F32);
    for (a, b) in x64.iter().zip(&x32).chain(g64.iter().zip(&g32)) {
        assert!(
            (a - b).abs() < 1e-5 * a.abs().max(1.0),
            "f32 {b} vs f64 {a}"
        );
    }
}

#[test]
fn bad_inputs_are_errors() {
    let problem = Problem::new();
    let qp = &problem.qp;
    let layer = QpLayer::new(&matrix(&qp.p), &matrix(&qp.a), &matrix(&qp.g), tight()).unwrap();
    let (q, b, h) = (tensor(&problem.q), tensor(&problem.b), tensor(&problem.h));
    let err = layer.forward(&q, &h, &h).unwrap_err().to_string();
    assert!(err.contains("input b") && err.contains("(3, 2)"), "{err}");
    let mut bad = problem.q.clone();
    bad[1][2] = f64::NAN;
    let err = layer
        .forward(&tensor(&bad), &b, &h)
        .unwrap_err()
        .to_string();
    assert!(err.contains("element 1") && err.contains("q"), "{err}");
    let mut concave = qp.p.clone();
    concave = HostMatrix::from_fn(6, 6, |i, j| -concave.get(i, j));
    let err = QpLayer::new(&matrix(&concave), &matrix(&qp.a), &matrix(&qp.g), tight()).unwrap_err();
    assert!(err.to_string().contains("convex"), "{err}");
}
