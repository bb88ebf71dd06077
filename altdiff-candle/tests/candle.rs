//! The candle backend against the faer backend (f64 to 1e-10, f32 to a stated tolerance),
//! its error mapping and its edge cases, on every device: each test is written once, for a
//! `Device`, and `test_device!` makes a `_cpu` test and, with the feature `cuda`, a `_cuda` one
//! (candle's own pattern).

use altdiff_candle::{CandleBackend, CandleReal, Device, Tensor};
use altdiff_core::testing::{
    Generator, conformance, random_lp, random_qp, rel_diff, solve_host, tiny_qp,
};
use altdiff_core::{
    Accum, AltDiff, Error, HostQp, HostSolution, LinAlg, Param, Qp, QpParams, Settings,
    StoppingRule, Trans, Wrt,
};
use altdiff_faer::FaerBackend;

type TestResult = Result<(), Error>;

/// `$name_cpu` always, `$name_cuda` on CUDA device 0 with the feature `cuda`.
macro_rules! test_device {
    ($fn_name:ident, $test_cpu:ident, $test_cuda:ident) => {
        #[test]
        fn $test_cpu() -> TestResult {
            $fn_name(&Device::Cpu)
        }

        #[cfg(feature = "cuda")]
        #[test]
        fn $test_cuda() -> TestResult {
            $fn_name(&Device::new_cuda(0).expect("CUDA device 0"))
        }
    };
}

/// The tolerance of `f32` results against faer's `f64` ones, relative to the largest entry
/// (the crate docs state it): at the default stopping rule (residuals below 1e-6), the
/// error is that of the stopping rule (`f64` at 1e-6 is as far), at most 1e-5 here.
const F32_TOLERANCE: f64 = 5e-5;

/// The settings of the `f32` runs: the default stopping rule, Jacobians wrt q, b, h.
fn f32_settings() -> Settings {
    Settings::default().with_wrt(Wrt::vectors())
}

fn f64_reference(qp: &HostQp) -> HostSolution {
    let settings = Settings::default()
        .with_stopping(StoppingRule::Residual {
            eps_abs: 1e-9,
            eps_rel: 1e-9,
        })
        .with_max_iter(200_000)
        .with_wrt(Wrt::vectors());
    let sol = solve_host(&FaerBackend::default(), qp, settings).expect("faer solve");
    assert!(sol.status.is_solved(), "faer reference: {:?}", sol.status);
    sol
}

fn max_rel(got: &[f64], expected: &[f64]) -> f64 {
    assert_eq!(got.len(), expected.len());
    let scale = expected.iter().fold(1.0_f64, |s, v| s.max(v.abs()));
    got.iter()
        .zip(expected)
        .fold(0.0_f64, |m, (g, e)| m.max((g - e).abs()))
        / scale
}

/// The largest relative difference of `x`, the duals and the Jacobians wrt q, b, h.
fn worst_difference(got: &HostSolution, expected: &HostSolution) -> f64 {
    let vectors = [
        max_rel(&got.x, &expected.x),
        max_rel(&got.lam, &expected.lam),
        max_rel(&got.nu, &expected.nu),
    ];
    let jacobians = Param::VECTORS.map(|param| {
        rel_diff(
            got.jacobian(param).expect("requested"),
            expected.jacobian(param).expect("requested"),
        )
    });
    vectors.into_iter().chain(jacobians).fold(0.0, f64::max)
}

fn conformance_problems() -> Vec<(&'static str, HostQp)> {
    vec![
        ("tiny", tiny_qp()),
        (
            "random 9x3x5",
            random_qp(Generator::WellConditioned, 9, 3, 5, 17),
        ),
        (
            "random 30x10x15",
            random_qp(Generator::WellConditioned, 30, 10, 15, 3),
        ),
        (
            "random 60x0x40",
            random_qp(Generator::WellConditioned, 60, 0, 40, 5),
        ),
        (
            "random 200x50x100",
            random_qp(Generator::WellConditioned, 200, 50, 100, 1),
        ),
    ]
}

fn agrees_with_faer(device: &Device) -> TestResult {
    conformance::backends_agree(
        &CandleBackend::<f64>::new(device.clone()),
        &FaerBackend::default(),
    );
    Ok(())
}
test_device!(
    agrees_with_faer,
    agrees_with_faer_cpu,
    agrees_with_faer_cuda
);

fn agrees_with_faer_without_batch_invariance(device: &Device) -> TestResult {
    conformance::backends_agree(
        &CandleBackend::<f64>::new(device.clone()).with_batch_invariance(false),
        &FaerBackend::default(),
    );
    Ok(())
}
test_device!(
    agrees_with_faer_without_batch_invariance,
    agrees_with_faer_without_batch_invariance_cpu,
    agrees_with_faer_without_batch_invariance_cuda
);

/// On the CPU, a one-column product equals, bit for bit, the first column of the same
/// product with more columns (the batch solver relies on it), for both `Trans` and the solve.
#[test]
fn one_column_products_are_batch_invariant_on_the_cpu() -> TestResult {
    let be = CandleBackend::<f64>::cpu();
    let (n, k) = (40, 6);
    let data: Vec<f64> = (0..n * n)
        .map(|i| ((i * 7919 % 101) as f64 / 37.0).sin())
        .collect();
    let op = be.op_from_col_major(n, n, &data)?;
    let wide: Vec<f64> = (0..n * k)
        .map(|i| ((i * 31 % 17) as f64 / 3.0).cos())
        .collect();
    let (x_wide, x_one) = (
        be.mat_from_col_major(n, k, &wide)?,
        be.mat_from_col_major(n, 1, &wide[..n])?,
    );
    for trans in [Trans::No, Trans::Yes] {
        let (mut y_wide, mut y_one) = (be.zeros(n, k)?, be.zeros(n, 1)?);
        be.apply(&mut y_wide, Accum::Replace, &op, trans, &x_wide, 1.0)?;
        be.apply(&mut y_one, Accum::Replace, &op, trans, &x_one, 1.0)?;
        let (wide, one) = (be.to_col_major(&y_wide)?, be.to_col_major(&y_one)?);
        assert!(
            wide[..n]
                .iter()
                .zip(&one)
                .all(|(w, o)| w.to_bits() == o.to_bits()),
            "{trans:?}"
        );
    }
    let spd: Vec<f64> = (0..n * n)
        .map(|idx| {
            let (i, j) = (idx % n, idx / n);
            (0..n)
                .map(|l| data[l * n + i] * data[l * n + j])
                .sum::<f64>()
                + if i == j { 1.0 } else { 0.0 }
        })
        .collect();
    let none = be.op_from_col_major(0, n, &[])?;
    let factor = be.factor(&be.op_from_col_major(n, n, &spd)?, &none, &none, 1.0)?;
    let (mut y_wide, mut y_one) = (x_wide.clone(), x_one.clone());
    be.solve_in_place(&factor, &mut y_wide)?;
    be.solve_in_place(&factor, &mut y_one)?;
    let (wide, one) = (be.to_col_major(&y_wide)?, be.to_col_major(&y_one)?);
    assert!(
        wide[..n]
            .iter()
            .zip(&one)
            .all(|(w, o)| w.to_bits() == o.to_bits()),
        "solve"
    );
    Ok(())
}

fn f32_matches_faer_f64(device: &Device) -> TestResult {
    let be = CandleBackend::<f32>::new(device.clone());
    for (what, qp) in conformance_problems() {
        let expected = f64_reference(&qp);
        let got = solve_host(&be, &qp, f32_settings())?;
        assert!(
            got.status.is_solved(),
            "{what}: f32 status {:?}",
            got.status
        );
        let err = worst_difference(&got, &expected);
        println!(
            "{what}: f32 vs faer f64 {err:.1e} ({} iterations)",
            got.iterations
        );
        assert!(
            err < F32_TOLERANCE,
            "{what}: f32 differs from faer f64 by {err:e}"
        );
    }
    Ok(())
}
test_device!(
    f32_matches_faer_f64,
    f32_matches_faer_f64_cpu,
    f32_matches_faer_f64_cuda
);

/// A batch of 16 problems sharing `P`, `A`, `G` (different `q`) in `f32`: every column of
/// `x` within the `f32` tolerance of faer's `f64` solve of that element alone.
fn f32_batch_matches_faer_f64(device: &Device) -> TestResult {
    let be = CandleBackend::<f32>::new(device.clone());
    let base = random_qp(Generator::WellConditioned, 30, 10, 15, 3);
    let k = 16;
    let elements: Vec<HostQp> = (0..k)
        .map(|j| {
            let mut qp = base.clone();
            for (i, q) in qp.q.iter_mut().enumerate() {
                *q += 0.2 * j as f64 * ((i * 7 + j) as f64).sin();
            }
            qp
        })
        .collect();
    let qp = Qp::from_host(&be, &base)?;
    let solver = AltDiff::new(be.clone(), &qp, Settings::default())?;
    let block = |f: fn(&HostQp) -> &[f64]| {
        let rows = f(&elements[0]).len();
        let data: Vec<f32> = elements
            .iter()
            .flat_map(|e| f(e).iter().map(|&v| v as f32))
            .collect();
        be.mat_from_col_major(rows, k, &data)
    };
    let params = QpParams {
        q: block(|qp| &qp.q)?,
        b: block(|qp| &qp.b)?,
        h: block(|qp| &qp.h)?,
    };
    let sol = solver.solve_batch(&params)?;
    let x: Vec<f64> = be
        .to_col_major(sol.x())?
        .into_iter()
        .map(f64::from)
        .collect();
    for (j, element) in elements.iter().enumerate() {
        assert!(
            sol.element(j).expect("ran").status.is_solved(),
            "element {j}"
        );
        let expected = f64_reference(element);
        let err = max_rel(&x[j * 30..(j + 1) * 30], &expected.x);
        assert!(err < F32_TOLERANCE, "element {j}: x differs by {err:e}");
    }
    Ok(())
}
test_device!(
    f32_batch_matches_faer_f64,
    f32_batch_matches_faer_f64_cpu,
    f32_batch_matches_faer_f64_cuda
);

fn f32_limit_matches_faer_f64(device: &Device) -> TestResult {
    // the limit solve uses gram_inverse (host faer) and the polish: an LP and a QP
    let be = CandleBackend::<f32>::new(device.clone());
    for (what, qp) in [("lp", random_lp(12, 4, 1)), ("tiny", tiny_qp())] {
        let expected = f64_reference(&qp);
        let got = solve_host(&be, &qp, f32_settings().with_limit(true))?;
        assert!(
            got.status.is_solved(),
            "{what}: f32 limit status {:?}",
            got.status
        );
        let err = max_rel(&got.x, &expected.x);
        assert!(
            err < F32_TOLERANCE,
            "{what}: f32 limit x differs by {err:e}"
        );
    }
    Ok(())
}
test_device!(
    f32_limit_matches_faer_f64,
    f32_limit_matches_faer_f64_cpu,
    f32_limit_matches_faer_f64_cuda
);

/// The `f32` operations equal the `f64` ones to `f32` round-off, edge shapes included.
fn f32_ops_match_f64(device: &Device) -> TestResult {
    let (b32, b64) = (
        CandleBackend::<f32>::new(device.clone()),
        CandleBackend::<f64>::new(device.clone()),
    );
    for (r, c, k) in [(0, 3, 2), (3, 0, 2), (4, 3, 0), (5, 4, 3)] {
        let op: Vec<f64> = (0..r * c)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let rhs: Vec<f64> = (0..r * k)
            .map(|i| ((i * 5 % 7) as f64 - 3.0) / 2.0)
            .collect();
        let run = |trans| -> Result<(Vec<f64>, Vec<f64>), Error> {
            let o32 =
                b32.op_from_col_major(r, c, &op.iter().map(|&v| v as f32).collect::<Vec<_>>())?;
            let x32 =
                b32.mat_from_col_major(r, k, &rhs.iter().map(|&v| v as f32).collect::<Vec<_>>())?;
            let mut d32 = b32.zeros(c, k)?;
            b32.apply(&mut d32, Accum::Replace, &o32, trans, &x32, 0.5)?;
            let o64 = b64.op_from_col_major(r, c, &op)?;
            let x64 = b64.mat_from_col_major(r, k, &rhs)?;
            let mut d64 = b64.zeros(c, k)?;
            b64.apply(&mut d64, Accum::Replace, &o64, trans, &x64, 0.5)?;
            Ok((
                b32.to_col_major(&d32)?.into_iter().map(f64::from).collect(),
                b64.to_col_major(&d64)?,
            ))
        };
        let (got, expected) = run(Trans::Yes)?;
        assert!(max_rel(&got, &expected) < 1e-6, "{r}x{c} k={k}");
    }
    Ok(())
}
test_device!(
    f32_ops_match_f64,
    f32_ops_match_f64_cpu,
    f32_ops_match_f64_cuda
);

/// Column-major transfers are transposed correctly, empty shapes included.
fn layout_is_column_major(device: &Device) -> TestResult {
    let be = CandleBackend::<f64>::new(device.clone());
    let m = be.mat_from_col_major(2, 3, &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0])?;
    assert_eq!(
        m.to_vec2::<f64>().expect("2-D"),
        [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    );
    assert_eq!(be.to_col_major(&m)?, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    for (r, c) in [(0, 0), (0, 3), (3, 0)] {
        let empty = be.mat_from_col_major(r, c, &[])?;
        assert_eq!(be.shape(&empty), (r, c));
        assert!(be.to_col_major(&empty)?.is_empty());
        assert_eq!(be.norm_inf(&empty)?.to_bits(), 0.0_f64.to_bits());
        assert_eq!(be.dot(&empty, &empty)?.to_bits(), 0.0_f64.to_bits());
        let op = be.op_from_col_major(r, c, &[])?;
        assert_eq!(be.op_shape(&op), (r, c));
        assert!(be.op_to_col_major(&op)?.is_empty());
    }
    // a tensor made by candle code, transposed (not contiguous): the ops accept it
    let t = Tensor::new(&[[1.0_f64, 2.0], [3.0, 4.0]], device)
        .and_then(|t| t.t())
        .expect("tensor");
    assert_eq!(be.to_col_major(&t)?, [1.0, 2.0, 3.0, 4.0]);
    Ok(())
}
test_device!(
    layout_is_column_major,
    layout_is_column_major_cpu,
    layout_is_column_major_cuda
);

/// `norm_inf` propagates NaN wherever it is, also next to infinities; `Replace` and
/// `beta = 0` never read a NaN destination.
fn nan_handling(device: &Device) -> TestResult {
    let be = CandleBackend::<f32>::new(device.clone());
    for data in [
        [f32::NAN, 1.0, 2.0, 3.0],
        [1.0, 2.0, 3.0, f32::NAN],
        [f32::INFINITY, f32::NAN, f32::NEG_INFINITY, 0.0],
    ] {
        let x = be.mat_from_col_major(2, 2, &data)?;
        assert!(be.norm_inf(&x)?.is_nan(), "{data:?}");
    }
    let inf = be.mat_from_col_major(2, 1, &[f32::NEG_INFINITY, 1.0])?;
    assert_eq!(be.norm_inf(&inf)?.to_bits(), f32::INFINITY.to_bits());
    let op = be.op_from_col_major(1, 1, &[2.0])?;
    let x = be.mat_from_col_major(1, 1, &[3.0])?;
    let mut dst = be.mat_from_col_major(1, 1, &[f32::NAN])?;
    be.apply(&mut dst, Accum::Replace, &op, Trans::No, &x, 1.0)?;
    assert_eq!(be.to_col_major(&dst)?, [6.0]);
    let mut dst = be.mat_from_col_major(1, 1, &[f32::NAN])?;
    be.gemm_nt(&mut dst, Accum::Replace, &x, &x, 2.0)?;
    assert_eq!(be.to_col_major(&dst)?, [18.0]);
    let mut y = be.mat_from_col_major(1, 1, &[f32::NAN])?;
    be.axpby(-1.0, &x, 0.0, &mut y)?;
    assert_eq!(be.to_col_major(&y)?, [-3.0]);
    // dproj: a NaN or zero `at` masks, a NaN in m is zeroed where masked
    let at = be.mat_from_col_major(3, 1, &[f32::NAN, 0.0, 1.0])?;
    let mut m = be.mat_from_col_major(3, 1, &[1.0, f32::NAN, 2.0])?;
    be.dproj_nonneg(&at, &mut m)?;
    assert_eq!(be.to_col_major(&m)?, [0.0, 0.0, 2.0]);
    Ok(())
}
test_device!(nan_handling, nan_handling_cpu, nan_handling_cuda);

/// The host-side overrides equal the generic path: `gram_inverse` against solves and a
/// product on the device, `is_psd_with_shift` on a PSD and an indefinite matrix.
fn host_overrides_match(device: &Device) -> TestResult {
    let be = CandleBackend::<f64>::new(device.clone());
    let qp = random_qp(Generator::WellConditioned, 8, 2, 3, 9);
    let op =
        |m: &altdiff_core::HostMatrix| be.op_from_col_major(m.nrows(), m.ncols(), &m.col_major());
    let (p, a, g) = (op(&qp.p)?, op(&qp.a)?, op(&qp.g)?);
    let factor = be.factor(&p, &a, &g, 1.7)?;
    let c = be.op_stack_rows(&a, &g)?;
    let (m, k) = be.gram_inverse(&factor, &c, true)?;
    // the provided method, through solve_in_place and apply
    let ct: Vec<f64> = {
        let (r, n) = be.op_shape(&c);
        let host = be.op_to_col_major(&c)?;
        (0..n * r)
            .map(|idx| host[(idx / n) + (idx % n) * r])
            .collect()
    };
    let mut k_ref = be.mat_from_col_major(8, 5, &ct)?;
    be.solve_in_place(&factor, &mut k_ref)?;
    let mut m_ref = be.zeros(5, 5)?;
    be.apply(&mut m_ref, Accum::Replace, &c, Trans::No, &k_ref, 1.0)?;
    assert!(max_rel(&be.to_col_major(&m)?, &be.to_col_major(&m_ref)?) < 1e-12);
    let k = k.expect("with_k");
    assert!(max_rel(&be.to_col_major(&k)?, &be.to_col_major(&k_ref)?) < 1e-12);
    assert!(be.is_psd_with_shift(&p, 0.0)?);
    let indefinite = be.op_from_col_major(2, 2, &[1.0, 2.0, 2.0, 1.0])?;
    assert!(!be.is_psd_with_shift(&indefinite, 1e-8)?);
    assert!(be.is_psd_with_shift(&indefinite, 1.5)?);
    Ok(())
}
test_device!(
    host_overrides_match,
    host_overrides_match_cpu,
    host_overrides_match_cuda
);

/// candle's errors are `Error::Backend { backend: "candle" }`: a block of the wrong dtype.
fn candle_errors_are_backend_errors(device: &Device) -> TestResult {
    let be = CandleBackend::<f64>::new(device.clone());
    let wrong_dtype = Tensor::zeros((2, 1), altdiff_candle::DType::F32, device).expect("zeros");
    let op = be.op_from_col_major(2, 2, &[1.0, 0.0, 0.0, 1.0])?;
    let mut dst = be.zeros(2, 1)?;
    let err = be
        .apply(&mut dst, Accum::Replace, &op, Trans::No, &wrong_dtype, 1.0)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Backend {
                backend: "candle",
                ..
            }
        ),
        "{err}"
    );
    Ok(())
}
test_device!(
    candle_errors_are_backend_errors,
    candle_errors_are_backend_errors_cpu,
    candle_errors_are_backend_errors_cuda
);

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_is_an_error() {
    assert!(matches!(
        CandleBackend::<f64>::cuda(0),
        Err(Error::Backend {
            backend: "candle",
            ..
        })
    ));
    assert!(
        CandleBackend::<f32>::cuda_if_available(0)
            .expect("cpu")
            .device()
            .is_cpu()
    );
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<CandleBackend<f64>>();
    check::<CandleBackend<f32>>();
    check::<altdiff_candle::CandleOp>();
    check::<altdiff_candle::CandleFactor>();
    fn real<T: CandleReal>() {}
    real::<f32>();
    real::<f64>();
}
