//! The Maros-Meszaros reader and mapping, `altdiff suite`, and the sparse generators.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use altdiff_examples::backends::BackendKind;
use altdiff_examples::maros::{MarosProblem, MatError, read_maros};
use altdiff_examples::sparse_gen::{SparseKind, lasso_qp, portfolio_qp, random_sparse_qp};
use altdiff_examples::suite::{DerivativeCheck, SuiteConfig, run_suite, solve_problem};
use matrw::{MatFile, MatVariable, MatlabType, NumericArray, SparseArray, save_matfile_v7};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/maros_meszaros")
}

fn config(dir: &Path) -> SuiteConfig {
    let mut config = SuiteConfig::new(dir);
    config.backend = BackendKind::Faer;
    config.max_n = None;
    config.eps = 1e-6;
    config.time_limit = Duration::from_secs(30);
    config
}

fn dense(values: MatlabType, rows: usize, cols: usize) -> MatVariable {
    MatVariable::NumericArray(NumericArray::new(vec![rows, cols], values, None).unwrap())
}

/// A MATLAB sparse matrix from its (row, col, value) entries in column order.
fn sparse(rows: usize, cols: usize, entries: &[(usize, usize, f64)]) -> MatVariable {
    let mut jc = vec![0; cols + 1];
    for &(_, j, _) in entries {
        jc[j + 1] += 1;
    }
    for j in 0..cols {
        jc[j + 1] += jc[j];
    }
    let ir = entries.iter().map(|e| e.0).collect();
    let values = entries.iter().map(|e| e.2).collect();
    MatVariable::SparseArray(
        SparseArray::new(rows, cols, ir, jc, MatlabType::F64(values), None).unwrap(),
    )
}

fn save(path: &Path, vars: Vec<(&str, MatVariable)>, compress: bool) {
    let mut file = MatFile::new();
    for (name, var) in vars {
        file.insert(name, var);
    }
    save_matfile_v7(path.to_str().unwrap(), file, compress).unwrap();
    assert!(path.exists());
}

/// min 1/2 x'Px + q'x + r with five rows of l <= Ax <= u: an equality, an upper bound, a
/// lower bound, a free row and a two-sided row.
fn hand_made(path: &Path, compress: bool) {
    let p = sparse(
        3,
        3,
        &[
            (0, 0, 2.0),
            (1, 0, 0.5),
            (0, 1, 0.5),
            (1, 1, 1.0),
            (2, 2, 3.0),
        ],
    );
    // A = [[1, 1, 0], [0, 2, 0], [0, 0, -1], [1, 0, 1], [1, -1, 0]], by columns; as scipy
    // may write it: rows unsorted within a column, a duplicate entry (summed)
    let a = sparse(
        5,
        3,
        &[
            (3, 0, 1.0),
            (0, 0, 1.0),
            (4, 0, 1.0),
            (1, 1, 1.5),
            (0, 1, 1.0),
            (1, 1, 0.5),
            (4, 1, -1.0),
            (2, 2, -1.0),
            (3, 2, 1.0),
        ],
    );
    let inf = 1.0e20;
    save(
        path,
        vec![
            ("P", p),
            // an integer class, as some files store q
            ("q", dense(MatlabType::I8(vec![1, -2, 3]), 3, 1)),
            ("r", dense(MatlabType::F64(vec![5.0]), 1, 1)),
            ("A", a),
            (
                "l",
                dense(MatlabType::F64(vec![1.0, -inf, 2.0, -inf, 0.0]), 5, 1),
            ),
            (
                "u",
                dense(MatlabType::F64(vec![1.0, 4.0, inf, 1.5e19, 3.0]), 5, 1),
            ),
            ("n", dense(MatlabType::F64(vec![3.0]), 1, 1)),
            ("m", dense(MatlabType::U8(vec![5]), 1, 1)),
        ],
        compress,
    );
}

fn rows(m: &altdiff_core::HostMatrix) -> Vec<Vec<f64>> {
    m.to_rows()
}

#[test]
fn a_hand_made_file_maps_equalities_bounds_and_free_rows() {
    let dir = tempfile::tempdir().unwrap();
    for compress in [false, true] {
        let path = dir.path().join(format!("HAND{}.mat", u8::from(compress)));
        hand_made(&path, compress);
        let problem = read_maros(&path).unwrap();
        assert_eq!(problem.name, format!("HAND{}", u8::from(compress)));
        let qp = &problem.qp;
        assert!(qp.p.is_sparse() && qp.a.is_sparse() && qp.g.is_sparse());
        assert_eq!(
            qp.validate().unwrap(),
            altdiff_core::QpDims { n: 3, p: 1, m: 4 }
        );
        assert_eq!((problem.file_rows, problem.free_rows), (5, 1));
        assert_eq!(qp.q, vec![1.0, -2.0, 3.0]);
        assert!((problem.r - 5.0).abs() < 1e-15);
        assert_eq!(rows(&qp.a), vec![vec![1.0, 1.0, 0.0]]);
        assert_eq!(qp.b, vec![1.0]);
        // row 1: upper; row 2: lower (negated); row 4: upper then lower
        assert_eq!(
            rows(&qp.g),
            vec![
                vec![0.0, 2.0, 0.0],
                vec![0.0, 0.0, 1.0],
                vec![1.0, -1.0, 0.0],
                vec![-1.0, 1.0, 0.0],
            ]
        );
        let expected_h = [4.0, -2.0, 3.0, 0.0];
        assert!(
            qp.h.iter()
                .zip(expected_h)
                .all(|(h, e)| (h - e).abs() < 1e-15)
        );
        assert!((problem.objective(&[1.0, 0.0, 0.0]) - (1.0 + 1.0 + 5.0)).abs() < 1e-14);
    }
}

#[test]
fn hs21_is_the_known_problem() {
    // min 0.01 x1^2 + x2^2 - 100 s.t. 10 x1 - x2 >= 10, 2 <= x1 <= 50, -50 <= x2 <= 50
    let problem = read_maros(data_dir().join("HS21.mat")).unwrap();
    let qp = &problem.qp;
    assert_eq!((qp.q.len(), qp.b.len(), qp.h.len()), (2, 0, 5));
    assert_eq!(rows(&qp.p), vec![vec![0.02, 0.0], vec![0.0, 2.0]]);
    assert_eq!(qp.q, vec![0.0, 0.0]);
    assert!((problem.r + 100.0).abs() < 1e-12);
    let mut found: Vec<(Vec<f64>, f64)> = rows(&qp.g).into_iter().zip(qp.h.clone()).collect();
    found.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut expected = vec![
        (vec![-10.0, 1.0], -10.0),
        (vec![1.0, 0.0], 50.0),
        (vec![-1.0, 0.0], -2.0),
        (vec![0.0, 1.0], 50.0),
        (vec![0.0, -1.0], 50.0),
    ];
    expected.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(found, expected);
    assert!((problem.objective(&[2.0, 0.0]) + 99.96).abs() < 1e-12);
}

#[test]
fn tame_has_an_equality() {
    let problem = read_maros(data_dir().join("TAME.mat")).unwrap();
    let dims = problem.qp.validate().unwrap();
    assert_eq!((dims.n, dims.p), (2, 1));
    assert!(dims.m >= 2, "x >= 0 gives inequalities");
}

/// The test set's reference objectives (qpbenchmark).
const REFERENCE: [(&str, f64); 3] = [("HS21", -99.96), ("TAME", 0.0), ("ZECEVIC2", -4.125)];

#[test]
fn the_suite_solves_the_small_files_to_the_reference_objectives() {
    let records = run_suite(&config(&data_dir()), false).unwrap();
    assert_eq!(records.len(), 3);
    for (record, (name, objective)) in records.iter().zip(REFERENCE) {
        assert_eq!(record.name, name);
        assert!(record.is_solved(), "{}", record.line());
        let found = record.objective.unwrap();
        assert!(
            (found - objective).abs() <= 1e-3 * objective.abs().max(1.0),
            "{name}: objective {found}, reference {objective}"
        );
        assert!(record.iterations.unwrap() > 0 && record.time_s > 0.0);
        assert!(record.primal_residual.unwrap() < 1e-4, "{}", record.line());
        assert_eq!(
            record.derivative_check,
            DerivativeCheck::Right,
            "{}",
            record.line()
        );
    }
    let markdown = altdiff_examples::suite::markdown(&records, &config(&data_dir()), true);
    assert!(markdown.contains("| all | 3 | 3 |"), "{markdown}");
    assert!(
        markdown.contains("| HS21 | 2 | 0 | 5 | solved |"),
        "{markdown}"
    );
}

#[test]
fn the_filter_and_the_size_cap_select_problems() {
    let mut config = config(&data_dir());
    config.filter = vec!["hs*".into(), "zecevic2".into()];
    let records = run_suite(&config, false).unwrap();
    let names: Vec<_> = records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["HS21", "ZECEVIC2"]);
    config.max_n = Some(1);
    let records = run_suite(&config, false).unwrap();
    assert!(
        records
            .iter()
            .all(|r| r.status.starts_with("skipped: n = 2 > --max-n 1"))
    );
    config.filter = vec!["NOPE".into()];
    assert!(run_suite(&config, false).is_err());
}

#[test]
fn the_derivative_check_is_skipped_above_its_cap() {
    let mut config = config(&data_dir());
    config.check_max_dim = 3;
    let records = run_suite(&config, false).unwrap();
    assert!(records.iter().all(|r| r.is_solved()));
    assert!(
        records
            .iter()
            .all(|r| r.derivative_check == DerivativeCheck::Skipped)
    );
}

#[test]
fn json_rows_have_exactly_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("suite.json");
    let records = run_suite(&config(&data_dir()), false).unwrap();
    altdiff_examples::bench::write_json(&out, &records).unwrap();
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let rows = value.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let mut expected = [
        "name",
        "n",
        "n_eq",
        "n_ineq",
        "status",
        "iterations",
        "time_s",
        "objective",
        "primal_residual",
        "dual_residual",
        "duality_gap",
        "unique",
        "derivative_check",
        "differentiability",
        "derivative_error",
        "min_active_multiplier",
        "min_inactive_slack",
        "licq",
    ];
    expected.sort_unstable();
    for row in rows {
        let mut keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(row["status"], "solved");
        assert_eq!(row["derivative_check"], "right");
        assert_eq!(row["differentiability"], "differentiable");
    }
    assert_eq!(rows[0]["name"], "HS21");
    assert_eq!(rows[0]["n_ineq"], 5);
    assert!((rows[0]["objective"].as_f64().unwrap() + 99.96).abs() < 0.1);
    // the residuals and the gap are those of the problem as given, within the rule's eps
    for key in ["primal_residual", "dual_residual", "duality_gap"] {
        let v = rows[0][key].as_f64().unwrap();
        assert!((0.0..1e-4).contains(&v), "{key}: {v}");
    }
}

/// A directory with HS21 and five bad files.
fn bad_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let hs21 = std::fs::read(data_dir().join("HS21.mat")).unwrap();
    std::fs::write(dir.path().join("HS21.mat"), &hs21).unwrap();
    std::fs::write(dir.path().join("GARBAGE.mat"), b"not a MAT-file at all").unwrap();
    std::fs::write(dir.path().join("TRUNCATED.mat"), &hs21[..200]).unwrap();
    std::fs::write(dir.path().join("EMPTY.mat"), b"").unwrap();
    // no P
    save(
        &dir.path().join("NOP.mat"),
        vec![("q", dense(MatlabType::F64(vec![1.0]), 1, 1))],
        false,
    );
    // P = diag(-1, 1): not convex
    save(
        &dir.path().join("NONCONVEX.mat"),
        vec![
            ("P", sparse(2, 2, &[(0, 0, -1.0), (1, 1, 1.0)])),
            ("q", dense(MatlabType::F64(vec![0.0, 0.0]), 2, 1)),
            ("A", sparse(1, 2, &[(0, 0, 1.0)])),
            ("l", dense(MatlabType::F64(vec![-1.0]), 1, 1)),
            ("u", dense(MatlabType::F64(vec![1.0]), 1, 1)),
        ],
        false,
    );
    // q of the wrong length, a character array for l
    save(
        &dir.path().join("SHAPE.mat"),
        vec![
            ("P", sparse(2, 2, &[(0, 0, 1.0), (1, 1, 1.0)])),
            ("q", dense(MatlabType::F64(vec![0.0, 0.0, 0.0]), 3, 1)),
        ],
        false,
    );
    save(
        &dir.path().join("CHARS.mat"),
        vec![
            ("P", sparse(1, 1, &[(0, 0, 1.0)])),
            ("q", dense(MatlabType::F64(vec![0.0]), 1, 1)),
            ("A", sparse(1, 1, &[(0, 0, 1.0)])),
            ("l", dense(MatlabType::UTF8(vec!['x']), 1, 1)),
            ("u", dense(MatlabType::F64(vec![1.0]), 1, 1)),
        ],
        false,
    );
    dir
}

#[test]
fn bad_files_are_error_rows_with_typed_reasons() {
    let dir = bad_dir();
    let err = |name: &str| read_maros(dir.path().join(format!("{name}.mat"))).unwrap_err();
    assert!(matches!(err("GARBAGE"), MatError::Malformed { .. }));
    assert!(matches!(err("TRUNCATED"), MatError::Malformed { .. }));
    assert!(matches!(err("EMPTY"), MatError::Malformed { .. }));
    assert!(matches!(err("NOP"), MatError::Missing { name: "P", .. }));
    assert!(matches!(err("SHAPE"), MatError::BadShape { name: "q", .. }));
    assert!(matches!(
        err("CHARS"),
        MatError::WrongClass { name: "l", .. }
    ));
    assert!(matches!(err("ABSENT"), MatError::Io { .. }));
    assert!(err("NOP").to_string().contains("NOP.mat"));

    let records = run_suite(&config(dir.path()), false).unwrap();
    assert_eq!(records.len(), 8);
    for record in &records {
        match record.name.as_str() {
            "HS21" => assert!(record.is_solved(), "{}", record.line()),
            "NONCONVEX" => {
                // read fine, rejected by the solver's convexity test
                assert_eq!(record.n, Some(2));
                assert!(record.status.starts_with("error: "), "{}", record.line());
            }
            _ => {
                assert!(record.status.starts_with("error: "), "{}", record.line());
                assert!(record.n.is_none() && record.objective.is_none());
                assert_eq!(record.derivative_check, DerivativeCheck::Skipped);
            }
        }
    }
    let markdown = altdiff_examples::suite::markdown(&records, &config(dir.path()), false);
    assert!(markdown.contains("| unreadable | 6 |"), "{markdown}");
}

fn generated(name: &str, qp: altdiff_core::HostQp) -> MarosProblem {
    MarosProblem {
        name: name.into(),
        qp,
        r: 0.0,
        file_rows: 0,
        free_rows: 0,
    }
}

#[test]
fn generated_problems_are_feasible_and_solved() {
    let mut config = config(Path::new("."));
    config.eps = 1e-6;
    for kind in SparseKind::ALL {
        let qp = kind.generate(300, 10, 1);
        let dims = qp.validate().unwrap();
        assert_eq!(dims.n, 300);
        let record = solve_problem(&generated(kind.name(), qp), &config);
        assert!(record.is_solved(), "{}", record.line());
        assert!(record.primal_residual.unwrap() < 1e-4, "{}", record.line());
        assert_eq!(
            record.derivative_check,
            DerivativeCheck::Right,
            "{}",
            record.line()
        );
    }
}

#[test]
fn generators_have_the_requested_density_and_are_seeded() {
    let qp = random_sparse_qp(1000, 250, 500, 0.01, 3);
    assert_eq!(qp.a.nnz(), 250 * 10);
    assert_eq!(qp.g.nnz(), 500 * 10);
    // P = M'M + 1e-2 I, 3 entries per row of M: at most 9 per row, about 8 on average
    let per_row = qp.p.nnz() as f64 / 1000.0;
    assert!((6.0..=10.0).contains(&per_row), "{per_row}");
    assert_eq!(qp, random_sparse_qp(1000, 250, 500, 0.01, 3));
    assert_ne!(qp, random_sparse_qp(1000, 250, 500, 0.01, 4));

    let lasso = lasso_qp(200, 100, 0.05, 0);
    // F: 10 per row, and the -I of y
    assert_eq!(lasso.a.nnz(), 100 * 10 + 100);
    assert_eq!(lasso.g.nnz(), 4 * 200);
    let portfolio = portfolio_qp(1000, 20, 0.25, 0);
    // F': 5 loadings per asset, -I of y, the budget row
    assert_eq!(portfolio.a.nnz(), 1000 * 5 + 20 + 1000);
    // x0 = 1/k is feasible for the portfolio: F'x0 = y0, 1'x0 = 1
    let k = 1000;
    let mut x0 = vec![1.0 / k as f64; k];
    let loadings: Vec<f64> = (0..20)
        .map(|f| (0..k).map(|i| portfolio.a.get(f, i) * x0[i]).sum())
        .collect();
    x0.extend(loadings);
    let ax = portfolio.a.mul_vec(&x0);
    assert!(
        ax.iter()
            .zip(&portfolio.b)
            .all(|(a, b)| (a - b).abs() < 1e-12)
    );
}

#[test]
fn generators_build_n_1e5_quickly() {
    for kind in SparseKind::ALL {
        let start = Instant::now();
        let qp = kind.generate(100_000, 10, 0);
        let elapsed = start.elapsed();
        let dims = qp.validate().unwrap();
        eprintln!(
            "{}: n = {}, {} + {} rows, nnz P/A/G = {}/{}/{}, built in {elapsed:?}",
            kind.name(),
            dims.n,
            dims.p,
            dims.m,
            qp.p.nnz(),
            qp.a.nnz(),
            qp.g.nnz()
        );
        assert_eq!(dims.n, 100_000);
        let nnz = qp.p.nnz() + qp.a.nnz() + qp.g.nnz();
        assert!(
            nnz < 40 * (dims.n + dims.p + dims.m),
            "{kind:?}: {nnz} entries"
        );
        // a generous bound for an unoptimized test build (release: well under a second)
        assert!(elapsed < Duration::from_secs(20), "{kind:?}: {elapsed:?}");
    }
}

#[test]
fn the_cli_runs_the_suite_and_rejects_a_missing_directory() {
    let bin = env!("CARGO_BIN_EXE_altdiff");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let markdown = dir.path().join("out.md");
    let out = Command::new(bin)
        .args(["suite", "--backend", "faer", "--eps", "1e-6", "--dir"])
        .arg(data_dir())
        .arg("--json")
        .arg(&json)
        .arg("--markdown")
        .arg(&markdown)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| all | 3 | 3 |"), "{stdout}");
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    assert!(
        std::fs::read_to_string(&markdown)
            .unwrap()
            .contains("| TAME |")
    );

    let out = Command::new(bin)
        .args(["suite", "--dir"])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such directory"));
    let out = Command::new(bin)
        .args(["suite", "--time-limit", "0", "--dir"])
        .arg(data_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
