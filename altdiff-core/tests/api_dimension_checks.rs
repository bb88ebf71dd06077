//! Every malformed input to the public API gets its typed error naming the field and the
//! shapes (Clarabel's `api_dimension_checks.rs` is the model). The backend-generic part runs
//! for every backend in the conformance suite (`bad_inputs_are_errors`); this file covers
//! the host types, the native constructor `Qp::new` and the settings.
#![cfg(feature = "testing")]

use altdiff_core::testing::{RefBackend, tiny_qp};
use altdiff_core::{
    AltDiff, Error, Field, HostMatrix, HostQp, LinAlg, Qp, QpDims, QpParams, Settings,
    SettingsError, StoppingRule,
};

fn op(rows: usize, cols: usize) -> <RefBackend as LinAlg>::Op {
    RefBackend
        .op_from_col_major(rows, cols, &vec![0.0; rows * cols])
        .unwrap()
}

fn vector(values: &[f64]) -> <RefBackend as LinAlg>::Mat {
    RefBackend
        .mat_from_col_major(values.len(), 1, values)
        .unwrap()
}

fn identity(n: usize) -> <RefBackend as LinAlg>::Op {
    let data: Vec<f64> = (0..n * n)
        .map(|k| if k % (n + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    RefBackend.op_from_col_major(n, n, &data).unwrap()
}

fn params(n: usize, p: usize, m: usize) -> QpParams<RefBackend> {
    QpParams {
        q: vector(&vec![0.0; n]),
        b: vector(&vec![0.0; p]),
        h: vector(&vec![1.0; m]),
    }
}

fn assert_dimension(
    result: Result<Qp<RefBackend>, Error>,
    field: Field,
    expected: (usize, usize),
    got: (usize, usize),
) {
    match result {
        Err(Error::Dimension {
            field: f,
            expected: e,
            got: g,
        }) => {
            assert_eq!((f, e, g), (field, expected, got), "wrong dimension error");
        }
        other => panic!("expected a dimension error on {field}, got {other:?}"),
    }
}

#[test]
fn native_constructor_checks_every_shape() {
    let be = RefBackend;
    assert!(Qp::new(&be, identity(3), op(1, 3), op(2, 3), params(3, 1, 2)).is_ok());
    assert_dimension(
        Qp::new(&be, op(3, 2), op(1, 3), op(2, 3), params(3, 1, 2)),
        Field::P,
        (3, 3),
        (3, 2),
    );
    assert_dimension(
        Qp::new(&be, identity(3), op(1, 4), op(2, 3), params(3, 1, 2)),
        Field::A,
        (1, 3),
        (1, 4),
    );
    assert_dimension(
        Qp::new(&be, identity(3), op(1, 3), op(2, 2), params(3, 1, 2)),
        Field::G,
        (2, 3),
        (2, 2),
    );
    assert_dimension(
        Qp::new(&be, identity(3), op(1, 3), op(2, 3), params(4, 1, 2)),
        Field::Q,
        (3, 1),
        (4, 1),
    );
    assert_dimension(
        Qp::new(&be, identity(3), op(1, 3), op(2, 3), params(3, 2, 2)),
        Field::B,
        (1, 1),
        (2, 1),
    );
    assert_dimension(
        Qp::new(&be, identity(3), op(1, 3), op(2, 3), params(3, 1, 3)),
        Field::H,
        (2, 1),
        (3, 1),
    );
    let wide_q = QpParams {
        q: be.mat_from_col_major(3, 2, &[0.0; 6]).unwrap(),
        ..params(3, 1, 2)
    };
    assert_dimension(
        Qp::new(&be, identity(3), op(1, 3), op(2, 3), wide_q),
        Field::Q,
        (3, 1),
        (3, 2),
    );
    // constraint blocks with zero rows but the wrong width are accepted as "absent"
    let absent = Qp::new(&be, identity(3), op(0, 0), op(0, 5), params(3, 0, 0)).unwrap();
    let sol = AltDiff::new(be, &absent, Settings::default())
        .unwrap()
        .solve(absent.params())
        .unwrap();
    assert!(sol.status().is_solved());
}

#[test]
fn native_constructor_checks_values() {
    let be = RefBackend;
    let nan_g = be
        .op_from_col_major(2, 3, &[0.0, 0.0, 0.0, f64::NAN, 0.0, 0.0])
        .unwrap();
    match Qp::new(&be, identity(3), op(1, 3), nan_g, params(3, 1, 2)) {
        Err(Error::NonFinite {
            field: Field::G,
            row: 1,
            col: 1,
            ..
        }) => {}
        other => panic!("expected NaN in G at (1, 1), got {other:?}"),
    }
    let skew = be.op_from_col_major(2, 2, &[1.0, 0.5, 0.0, 1.0]).unwrap();
    match Qp::new(&be, skew, op(0, 2), op(0, 2), params(2, 0, 0)) {
        Err(Error::NotSymmetric {
            row: 1,
            col: 0,
            difference,
        }) => assert!((difference - 0.5).abs() < 1e-15),
        other => panic!("expected NotSymmetric, got {other:?}"),
    }
    let inf_h = QpParams {
        h: vector(&[1.0, f64::INFINITY]),
        ..params(3, 1, 2)
    };
    assert!(matches!(
        Qp::new(&be, identity(3), op(1, 3), op(2, 3), inf_h),
        Err(Error::NonFinite {
            field: Field::H,
            row: 1,
            ..
        })
    ));
}

#[test]
fn host_matrices_report_ragged_rows_and_lengths() {
    let err = HostMatrix::from_rows(Field::P, &[vec![1.0, 0.0], vec![0.0]]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::RaggedRows {
                field: Field::P,
                row: 1,
                expected: 2,
                got: 1
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("ragged rows in P"), "{err}");
    let err = HostMatrix::from_col_major(Field::A, 2, 3, vec![0.0; 5]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Dimension {
                field: Field::A,
                expected: (2, 3),
                got: (5, 1)
            }
        ),
        "{err}"
    );
    assert!(HostMatrix::from_row_major(Field::G, 2, 2, &[0.0; 3]).is_err());
}

#[test]
fn host_problem_names_the_field_and_both_shapes() {
    let mut qp = tiny_qp();
    qp.g = HostMatrix::zeros(2, 4);
    let message = qp.validate().unwrap_err().to_string();
    assert!(
        message.contains("for G") && message.contains("(2, 3)") && message.contains("(2, 4)"),
        "{message}"
    );
    let huge = HostQp {
        q: vec![1e150, -1e-150, 0.0],
        ..tiny_qp()
    };
    assert!(
        huge.validate().is_ok(),
        "huge and tiny magnitudes are finite, hence valid"
    );
}

#[test]
fn empty_problem_is_valid_and_solves() {
    let empty = HostQp {
        p: HostMatrix::zeros(0, 0),
        q: vec![],
        a: HostMatrix::zeros(0, 0),
        b: vec![],
        g: HostMatrix::zeros(0, 0),
        h: vec![],
    };
    assert_eq!(empty.validate().unwrap(), QpDims::default());
    let qp = Qp::from_host(&RefBackend, &empty).unwrap();
    let sol = AltDiff::new(RefBackend, &qp, Settings::default())
        .unwrap()
        .solve(qp.params())
        .unwrap();
    assert!(sol.status().is_solved());
}

#[test]
fn settings_errors_name_the_setting() {
    let qp = Qp::from_host(&RefBackend, &tiny_qp()).unwrap();
    let cases = [
        (Settings::default().with_rho(-1.0), "rho"),
        (Settings::default().with_max_iter(0), "max_iter"),
        (
            Settings::default().with_stopping(StoppingRule::RelativeObjective(f64::NAN)),
            "tolerance",
        ),
    ];
    for (settings, field) in cases {
        match AltDiff::new(RefBackend, &qp, settings) {
            Err(Error::Settings(SettingsError::Invalid { field: f, .. })) => assert_eq!(f, field),
            other => panic!("expected an invalid {field}, got {other:?}"),
        }
    }
}

#[test]
fn warm_start_of_another_size_is_rejected() {
    let small = Qp::from_host(&RefBackend, &tiny_qp()).unwrap();
    let other = altdiff_core::testing::random_qp(
        altdiff_core::testing::Generator::WellConditioned,
        4,
        1,
        1,
        3,
    );
    let big = Qp::from_host(&RefBackend, &other).unwrap();
    let solver = AltDiff::new(RefBackend, &big, Settings::default()).unwrap();
    let previous = AltDiff::new(RefBackend, &small, Settings::default())
        .unwrap()
        .solve(small.params())
        .unwrap();
    assert!(matches!(
        solver.solve_warm(big.params(), &previous),
        Err(Error::Dimension {
            field: Field::WarmStart,
            ..
        })
    ));
}
