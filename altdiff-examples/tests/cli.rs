//! End-to-end tests of the `altdiff` program: results, exit codes, and one-line errors
//! (never a panic) for bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

use altdiff_examples::problem_file::{ProblemFile, ResultFile};

const TINY: &str = r#"{
  "P": [[2, 0.5, 0], [0.5, 1, 0], [0, 0, 1.5]], "q": [1, -1, 0.5],
  "A": [[1, 1, 1]], "b": [1],
  "G": [[0, 1, 0], [-1, 0, 0]], "h": [0.5, 0.2],
  "comment": "other keys are ignored"
}"#;

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("altdiff-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn altdiff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_altdiff"))
        .args(args)
        .output()
        .expect("runs")
}

fn solve_json(args: &[&str]) -> (i32, ResultFile) {
    let out = altdiff(args);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    (
        out.status.code().expect("exit code"),
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

#[test]
fn solves_the_tiny_qp_with_jacobians_on_every_backend() {
    // faer-sparse: the same iterates from CSC operators and the sparse Cholesky
    let path = write("tiny.json", TINY);
    let mut results = Vec::new();
    for backend in ["faer", "faer-sparse", "ndarray", "candle"] {
        let (code, r) = solve_json(&[
            "solve",
            path.to_str().unwrap(),
            "--backend",
            backend,
            "--wrt",
            "q,b,h",
            "--eps-abs",
            "1e-10",
            "--eps-rel",
            "1e-10",
        ]);
        assert_eq!(code, 0);
        assert_eq!(r.status, "solved");
        for (got, want) in r.x.iter().zip([0.0, 0.5, 0.5]) {
            assert!((got - want).abs() < 1e-8, "x = {:?}", r.x);
        }
        let dx_db = r.dx_db.clone().expect("dx_db");
        for (row, want) in dx_db.iter().zip([3.0 / 7.0, 0.0, 4.0 / 7.0]) {
            assert_eq!(row.len(), 1, "dx_db is n x p");
            assert!((row[0] - want).abs() < 1e-7, "dx_db = {dx_db:?}");
        }
        let dx_dh = r.dx_dh.clone().expect("dx_dh");
        assert!(
            (dx_dh[1][0] - 1.0).abs() < 1e-7 && dx_dh[1][1].abs() < 1e-7,
            "dx_dh = {dx_dh:?}"
        );
        assert_eq!(
            r.dx_dq.as_ref().map(|m| (m.len(), m[0].len())),
            Some((3, 3))
        );
        results.push(r);
    }
    let faer = &results[0];
    for other in &results[1..] {
        // the polish starts once the slack's mask has settled, which rounding can move by an
        // iteration
        assert!(faer.iterations.abs_diff(other.iterations) <= 2);
        for (a, b) in faer.x.iter().zip(&other.x) {
            assert!((a - b).abs() < 1e-10, "backends agree");
        }
    }
}

#[test]
fn candle_on_cuda_is_a_clear_error_without_the_feature() {
    let path = write("tiny-cuda.json", TINY);
    let out = altdiff(&[
        "solve",
        path.to_str().unwrap(),
        "--backend",
        "faer",
        "--device",
        "cuda",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("--backend candle") && !err.contains("panicked"),
        "{err}"
    );
    if !cfg!(feature = "cuda") {
        let out = altdiff(&[
            "solve",
            path.to_str().unwrap(),
            "--backend",
            "candle",
            "--device",
            "cuda",
        ]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("cuda") && !err.contains("panicked"), "{err}");
    }
}

#[test]
fn batch_bench_compares_batched_and_looped_solves() {
    let json = write("batch.json", "");
    let out = altdiff(&[
        "batch-bench",
        "--batch",
        "6",
        "--n",
        "24",
        "--n-eq",
        "6",
        "--n-ineq",
        "6",
        "--repeats",
        "1",
        "--backend",
        "faer,candle",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("batched is"), "{stdout}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), 4, "batched and loop on two backends");
    for row in &rows {
        assert_eq!(row["solved"], 6, "{row}");
        assert!(
            row["max_x_diff"].as_f64().unwrap() < 1e-8,
            "every way agrees: {row}"
        );
        assert!(row["total_s"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn fixed_iterations_give_the_known_first_iterate() {
    let path = write("tiny-fixed.json", TINY);
    let (code, r) = solve_json(&[
        "solve",
        path.to_str().unwrap(),
        "--stop",
        "fixed:1",
        "--alpha",
        "1",
        "--wrt",
        "b",
    ]);
    assert_eq!(
        (code, r.status.as_str(), r.iterations),
        (0, "fixed_iterations", 1)
    );
    assert!(
        (r.x[0] + 0.3067484663).abs() < 1e-9 && (r.lam[0] + 0.490797546).abs() < 1e-9,
        "{r:?}"
    );
    assert!(
        r.dx_dq.is_none() && r.dx_dh.is_none(),
        "only what --wrt asked"
    );
}

#[test]
fn not_converged_exits_1_with_the_result_written() {
    let path = write("tiny-cap.json", TINY);
    let out_path = write("result.json", "");
    let out = altdiff(&[
        "solve",
        path.to_str().unwrap(),
        "--max-iter",
        "2",
        "--no-limit",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r: ResultFile = serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    assert_eq!((r.status.as_str(), r.iterations), ("max_iterations", 2));
}

#[test]
fn paper_stopping_rule_and_x_rule_are_accepted() {
    let path = write("tiny-rules.json", TINY);
    for stop in ["objective:1e-3", "x:1e-6", "residual"] {
        let (code, r) = solve_json(&["solve", path.to_str().unwrap(), "--stop", stop]);
        assert_eq!((code, r.status.as_str()), (0, "solved"), "--stop {stop}");
    }
}

#[test]
fn constraint_blocks_may_be_absent_or_empty() {
    let unconstrained = write(
        "free.json",
        r#"{"P": [[2, 0], [0, 4]], "q": [-2, -4], "A": [], "b": []}"#,
    );
    let (code, r) = solve_json(&["solve", unconstrained.to_str().unwrap(), "--wrt", "q"]);
    assert_eq!(code, 0);
    assert!(
        (r.x[0] - 1.0).abs() < 1e-6 && (r.x[1] - 1.0).abs() < 1e-6,
        "{r:?}"
    );
    assert!(
        (r.dx_dq.unwrap()[1][1] + 0.25).abs() < 1e-6,
        "dx/dq = -P^-1"
    );
    let empty = write("empty.json", r#"{"P": [], "q": []}"#);
    let (code, r) = solve_json(&["solve", empty.to_str().unwrap()]);
    assert_eq!((code, r.x.len()), (0, 0));
}

#[test]
fn bad_input_exits_2_with_one_line_and_no_panic() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "truncated",
            r#"{"P": [[1, 0], [0, 1]], "q": [1"#,
            "malformed",
        ),
        (
            "string for number",
            r#"{"P": [[1]], "q": ["1"]}"#,
            "malformed",
        ),
        ("missing P", r#"{"q": [1]}"#, "missing field `P`"),
        ("not an object", "[1, 2, 3]", "malformed"),
        ("huge number", r#"{"P": [[1e999]], "q": [1]}"#, "malformed"),
        (
            "ragged rows",
            r#"{"P": [[1, 0], [0]], "q": [1, 1]}"#,
            "ragged rows in P",
        ),
        (
            "wrong q length",
            r#"{"P": [[1, 0], [0, 1]], "q": [1]}"#,
            "dimension mismatch for q",
        ),
        (
            "wrong A width",
            r#"{"P": [[1, 0], [0, 1]], "q": [1, 1], "A": [[1, 1, 1]], "b": [1]}"#,
            "dimension mismatch for A",
        ),
        (
            "wrong h length",
            r#"{"P": [[1]], "q": [1], "G": [[1]], "h": [1, 2]}"#,
            "dimension mismatch for h",
        ),
        (
            "b without A",
            r#"{"P": [[1]], "q": [1], "b": [1]}"#,
            "dimension mismatch for b",
        ),
        (
            "non-symmetric P",
            r#"{"P": [[1, 2], [0, 1]], "q": [1, 1]}"#,
            "not symmetric",
        ),
        (
            "indefinite P",
            r#"{"P": [[1, 0], [0, -1]], "q": [1, 1]}"#,
            "not positive semidefinite",
        ),
    ];
    for (name, text, message) in cases {
        let path = write(&format!("bad-{}.json", name.replace(' ', "-")), text);
        let out = altdiff(&["solve", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(message),
            "{name}: expected {message:?} in {stderr:?}"
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{name}: one line, got {stderr:?}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name}: no result on stdout");
    }
    let missing = altdiff(&["solve", "/nonexistent/problem.json"]);
    assert_eq!(missing.status.code(), Some(2));
    let path = write("tiny-settings.json", TINY);
    for args in [
        ["--rho", "0"],
        ["--max-iter", "0"],
        ["--stop", "fixed:0"],
        ["--stop", "bogus"],
    ] {
        let out = altdiff(&["solve", path.to_str().unwrap(), args[0], args[1]]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn demo_prints_a_table_row_per_backend() {
    let stdout = succeeds(&[
        "demo",
        "--n",
        "40",
        "--repeats",
        "1",
        "--timing-iterations",
        "2",
    ]);
    for backend in ["faer", "ndarray"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(backend))
            .unwrap_or_else(|| panic!("no {backend} row in {stdout}"));
        assert!(row.contains("solved"), "{row}");
        let cosine: f64 = row.split_whitespace().nth(10).unwrap().parse().unwrap();
        assert!(cosine > 0.9999, "cosine {cosine} in {row}");
    }
}

#[test]
fn problem_file_round_trips() {
    let qp = altdiff_core::testing::tiny_qp();
    let file = ProblemFile::from_host(&qp);
    let text = serde_json::to_string(&file).unwrap();
    assert_eq!(
        ProblemFile::parse(&text, "x".as_ref())
            .unwrap()
            .to_host()
            .unwrap(),
        qp
    );
}

#[test]
fn kkt_method_matrix_jacobians_and_vjps() {
    let path = write("tiny-vjp.json", TINY);
    let grad = write("grad.json", "[1, 0, 0]");
    let tight = ["--eps-abs", "1e-10", "--eps-rel", "1e-10"];
    let mut vjps = Vec::new();
    for (method, mode) in [
        ("altdiff", "unrolled"),
        ("altdiff", "implicit"),
        ("kkt", "unrolled"),
    ] {
        let mut args = vec![
            "solve",
            path.to_str().unwrap(),
            "--method",
            method,
            "--vjp",
            grad.to_str().unwrap(),
            "--vjp-mode",
            mode,
            "--wrt",
            "b,P,G",
        ];
        args.extend(tight);
        let (code, r) = solve_json(&args);
        assert_eq!((code, r.status.as_str()), (0, "solved"), "{method} {mode}");
        let dx_dp = r.dx_dp.as_ref().expect("dx_dP");
        assert_eq!((dx_dp.len(), dx_dp[0].len()), (3, 9), "dx/dP is n x n^2");
        assert_eq!(
            r.dx_dg.as_ref().map(|m| m[0].len()),
            Some(6),
            "dx/dG is n x mn"
        );
        let vjp = r.vjp.clone().expect("vjp");
        // g = e_0: J_b'g = dx0/db = 3/7
        assert!(
            (vjp.b[0] - 3.0 / 7.0).abs() < 1e-7,
            "{method} {mode}: {vjp:?}"
        );
        let p = vjp.p.clone().expect("grad P");
        assert!((p[0][1] - p[1][0]).abs() < 1e-12, "grad P is symmetric");
        // grad G = nu d' - (J_h'g) x': row 0 with nu0 = 1.75, d = J_q'g = (-2/7, 0, 2/7)
        let g = vjp.g.clone().expect("grad G");
        assert!(
            (g[0][0] - 1.75 * (-2.0 / 7.0)).abs() < 1e-6,
            "{method} {mode}: {g:?}"
        );
        vjps.push(vjp);
    }
    for v in &vjps[1..] {
        for (a, b) in v.q.iter().zip(&vjps[0].q) {
            assert!(
                (a - b).abs() < 1e-7,
                "unrolled, implicit and KKT agree at convergence"
            );
        }
    }
    let short = write("grad-short.json", "[1, 0]");
    let out = altdiff(&[
        "solve",
        path.to_str().unwrap(),
        "--vjp",
        short.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let bad = write("grad-bad.json", "{\"g\": 1}");
    let out = altdiff(&[
        "solve",
        path.to_str().unwrap(),
        "--vjp",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("malformed"));
}

/// `altdiff derivatives` on `problem` (the arguments choosing it), 1 repeat on faer to 1e-9:
/// its stdout, after checking the exit code.
fn derivatives(problem: &[&str]) -> String {
    let mut args = vec!["derivatives"];
    args.extend_from_slice(problem);
    args.extend([
        "--repeats",
        "1",
        "--backend",
        "faer",
        "--eps-abs",
        "1e-9",
        "--eps-rel",
        "1e-9",
    ]);
    succeeds(&args)
}

/// The stdout of `altdiff args`, after checking that it exits with 0.
fn succeeds(args: &[&str]) -> String {
    let out = altdiff(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The J'g error (last column) of the `derivatives` row containing `what`.
fn row_error(stdout: &str, what: &str) -> f64 {
    let row = stdout
        .lines()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no {what} row in {stdout}"));
    row.split_whitespace().last().unwrap().parse().unwrap()
}

#[test]
fn derivatives_table_lists_every_mode_with_small_errors() {
    let stdout = derivatives(&["--n", "30"]);
    for what in [
        "Alt-Diff forward",
        "Jacobian q,b,h: KKT",
        "VJP: unrolled",
        "VJP: implicit",
        "VJP: KKT adjoint",
        "Alt-Diff limit",
        "VJP: limit",
    ] {
        let err = row_error(&stdout, what);
        assert!(err < 1e-5, "{what}: J'g error {err}");
    }
}

#[test]
fn bench_writes_table_json_csv_and_plot() {
    let json = write("bench.json", "");
    let csv = write("bench.csv", "");
    let svg = write("bench.svg", "");
    let out = altdiff(&[
        "bench",
        "--n",
        "30,40",
        "--repeats",
        "2",
        "--stop",
        "residual:1e-8",
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), 2 * 2 * 5, "sizes x backends x methods");
    let keys = [
        "backend",
        "method",
        "n",
        "n_eq",
        "n_ineq",
        "wrt",
        "iterations",
        "time_median_s",
        "time_min_s",
        "time_max_s",
        "jac_rel_err",
        "cosine",
        "objective_gap",
    ];
    for row in &rows {
        let mut got: Vec<&str> = row.keys().map(String::as_str).collect();
        let mut want = keys.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "exactly these keys");
        assert!(row["jac_rel_err"].as_f64().unwrap() < 1e-5, "{row:?}");
        assert!(row["cosine"].as_f64().unwrap() > 0.99999, "{row:?}");
        assert!(row["time_min_s"].as_f64().unwrap() <= row["time_median_s"].as_f64().unwrap());
    }
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv_text.lines().next().unwrap(), keys.join(","));
    assert_eq!(csv_text.lines().count(), 1 + rows.len());
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg_text.starts_with("<svg") && svg_text.contains("Jacobian relative error"),
        "an SVG plot with its legend"
    );
    let png = write("bench.png", "");
    let out = altdiff(&[
        "bench",
        "--n",
        "30",
        "--repeats",
        "1",
        "--methods",
        "altdiff-limit",
        "--plot",
        png.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "a PNG plot");
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
    assert_eq!(&bytes[16..24], &[0, 0, 3, 0xc0, 0, 0, 2, 0x58], "960 x 600");
    let out = altdiff(&["bench", "--n", "30", "--plot", "/tmp/x.gif"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "other formats are refused with a message"
    );
}

#[test]
fn bench_measures_the_single_precision_backend_against_an_f64_reference() {
    let json = write("bench-f32.json", "");
    succeeds(&[
        "bench",
        "--n",
        "40",
        "--repeats",
        "1",
        "--backend",
        "faer-f32",
        "--methods",
        "altdiff-limit,altdiff-vjp-limit,kkt",
        "--json",
        json.to_str().unwrap(),
    ]);
    let rows: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(row["backend"], "faer-f32");
        let err = row["jac_rel_err"].as_f64().unwrap();
        if row["method"] == "altdiff-limit" {
            // the Jacobian keeps single precision's error, measured against the f64
            // reference (not against itself)
            assert!(err < 1e-4 && err > 1e-12, "{row:?}");
        } else {
            // the VJP and the KKT solves are refined to full precision
            assert!(err < 1e-10, "{row:?}");
        }
    }
}

#[test]
fn bench_reads_a_problem_file() {
    let path = write("bench-tiny.json", TINY);
    let out = altdiff(&[
        "bench",
        "--problem",
        path.to_str().unwrap(),
        "--repeats",
        "1",
        "--stop",
        "residual:1e-9",
        "--backend",
        "faer",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("faer") && l.contains("3/1/2")),
        "{stdout}"
    );
}

#[test]
fn derivatives_and_demo_read_a_problem_file() {
    let path = write("derivatives-tiny.json", TINY);
    let path = path.to_str().unwrap();
    let stdout = derivatives(&["--problem", path]);
    assert!(stdout.contains("n = 3, n_eq = 1, n_ineq = 2"), "{stdout}");
    // the header names the file, not a generator it did not use
    let header = stdout.lines().next().unwrap_or_default();
    assert!(
        header.contains("derivatives-tiny.json") && !header.contains("generator"),
        "{header}"
    );
    let err = row_error(&stdout, "Jacobian q,b,h: Alt-Diff limit");
    assert!(err < 1e-8, "J'g error {err}");
    let stdout = succeeds(&[
        "demo",
        "--problem",
        path,
        "--backend",
        "faer",
        "--repeats",
        "1",
    ]);
    assert!(stdout.contains("n = 3, n_eq = 1, n_ineq = 2"), "{stdout}");
    assert!(stdout.contains("problem ") && !stdout.contains("generator, seed"));
    // a file and generated sizes together are a usage error
    let out = altdiff(&["derivatives", "--problem", path, "--n", "30"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn infeasible_and_unbounded_exit_1_with_their_status() {
    let infeasible = write(
        "infeasible.json",
        r#"{"P": [[1, 0], [0, 1]], "q": [0, 0], "A": [[1, 1]], "b": [1], "G": [[1, 1]], "h": [0]}"#,
    );
    let (code, r) = solve_json(&["solve", infeasible.to_str().unwrap(), "--wrt", "b"]);
    assert_eq!((code, r.status.as_str()), (1, "primal_infeasible"));
    let unbounded = write(
        "unbounded.json",
        r#"{"P": [[0, 0], [0, 1]], "q": [-1, 0], "G": [[-1, 0]], "h": [0]}"#,
    );
    let (code, r) = solve_json(&["solve", unbounded.to_str().unwrap()]);
    assert_eq!((code, r.status.as_str()), (1, "dual_infeasible"));
    // P = 0 without constraints: H is singular, the proximal term iterates and certifies
    let free_lp = write("free-lp.json", r#"{"P": [[0, 0], [0, 0]], "q": [1, 1]}"#);
    let (code, r) = solve_json(&["solve", free_lp.to_str().unwrap()]);
    assert_eq!((code, r.status.as_str()), (1, "dual_infeasible"));
}

#[test]
fn method_and_adaptive_rho_options_take_effect() {
    let path = write("tiny-method.json", TINY);
    let tight = ["--eps-abs", "1e-10", "--eps-rel", "1e-10", "--wrt", "q,b,h"];
    let run = |extra: &[&str]| {
        let mut args = vec!["solve", path.to_str().unwrap()];
        args.extend(tight);
        args.extend(extra);
        solve_json(&args).1
    };
    let (alt, kkt) = (run(&[]), run(&["--method", "kkt"]));
    // the KKT method's Jacobian is exact at the active set: 3/7 to rounding
    assert!((kkt.dx_db.unwrap()[0][0] - 3.0 / 7.0).abs() < 1e-12);
    assert!(
        kkt.iterations <= alt.iterations,
        "no tangent convergence to wait for"
    );
    let (fixed, adaptive) = (
        run(&["--rho", "0.01", "--fixed-rho", "--no-limit"]),
        run(&["--rho", "0.01", "--no-limit"]),
    );
    assert_eq!(
        (fixed.status.as_str(), adaptive.status.as_str()),
        ("solved", "solved")
    );
    assert!(
        adaptive.iterations < fixed.iterations,
        "adaptive {} vs fixed {}",
        adaptive.iterations,
        fixed.iterations
    );
}

#[test]
fn solves_a_maros_meszaros_file_on_the_sparse_and_dense_backends() {
    // HS21: min 0.01 x1^2 + x2^2 - 100 s.t. 10 x1 - x2 >= 10, 2 <= x1 <= 50, -50 <= x2 <= 50;
    // x* = (2, 0), objective -99.96 (the constant -100 is not part of the QP)
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/maros_meszaros/HS21.mat"
    );
    let mut iterations = Vec::new();
    for backend in ["faer-sparse", "faer"] {
        let (code, r) = solve_json(&[
            "solve",
            path,
            "--backend",
            backend,
            "--eps-abs",
            "1e-9",
            "--eps-rel",
            "1e-9",
        ]);
        assert_eq!((code, r.status.as_str()), (0, "solved"), "{backend}");
        assert!(
            (r.x[0] - 2.0).abs() < 1e-6 && r.x[1].abs() < 1e-6,
            "{backend}: {:?}",
            r.x
        );
        assert!(
            (r.objective - 0.04).abs() < 1e-6,
            "{backend}: {}",
            r.objective
        );
        iterations.push(r.iterations);
    }
    assert_eq!(iterations[0], iterations[1], "the same iterates");
}

/// A file of `tests/data/savemat` (written by `scipy.io.savemat`, whose header text reads
/// "MATLAB 5.0 MAT-file Platform: posix, ..." without MATLAB's comma).
fn savemat(name: &str) -> String {
    format!("{}/tests/data/savemat/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// One line on stderr, exit code 2, naming the file once.
fn one_line_error(out: &Output, file: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(err.matches(file).count(), 1, "the path once: {err}");
    assert!(!err.contains('\u{1b}'), "no colour codes: {err}");
    err
}

#[test]
fn mat_files_written_by_scipy_load_sparse_dense_and_compressed() {
    // HS21 (x* = (2, 0)) as scipy writes it: sparse, compressed, dense arrays
    for file in [
        "hs21_scipy.mat",
        "hs21_scipy_compressed.mat",
        "hs21_scipy_dense.mat",
    ] {
        for backend in ["faer-sparse", "faer"] {
            let (code, r) = solve_json(&["solve", &savemat(file), "--backend", backend]);
            assert_eq!((code, r.status.as_str()), (0, "solved"), "{file} {backend}");
            assert!(
                (r.x[0] - 2.0).abs() < 1e-6 && r.x[1].abs() < 1e-6,
                "{file} {backend}: {:?}",
                r.x
            );
        }
    }
}

#[test]
fn inconsistent_column_pointers_are_one_line_errors_and_the_suite_goes_on() {
    // A's column pointers 0 9 4 over 4 stored entries: a slice panicked in host.rs
    let out = altdiff(&["solve", &savemat("bad_column_pointers.mat")]);
    let err = one_line_error(&out, "bad_column_pointers.mat");
    assert!(err.contains("col_ptr"), "{err}");
    // the suite reports it as that problem's error and solves the others
    let json = std::env::temp_dir().join(format!("altdiff-savemat-{}.json", std::process::id()));
    let out = altdiff(&[
        "suite",
        "--dir",
        &savemat(""),
        "--json",
        json.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&json).expect("the suite's JSON");
    let rows: Vec<serde_json::Value> = match serde_json::from_str(&text) {
        Ok(serde_json::Value::Array(all)) => all,
        _ => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect(),
    };
    let status = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .and_then(|r| r["status"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("{name} missing: {text}"))
    };
    assert!(status("bad_column_pointers").starts_with("error"), "{text}");
    assert_eq!(status("hs21_scipy"), "solved", "{text}");
    assert_eq!(status("hs21_scipy_compressed"), "solved", "{text}");
    assert!(
        out.status.code().is_some(),
        "the suite ends normally: {out:?}"
    );
}

#[test]
fn derivatives_of_an_infeasible_problem_is_a_status() {
    // x <= -1 and x >= 1: primal infeasible; the program panicked here
    let path = write(
        "infeasible.json",
        r#"{"P": [[1]], "q": [0], "G": [[1], [-1]], "h": [-1, -1]}"#,
    );
    let out = altdiff(&["derivatives", "--problem", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("primal_infeasible"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_fixed_count_above_max_iter_is_refused() {
    let path = write("tiny-fixed.json", TINY);
    let out = altdiff(&[
        "solve",
        path.to_str().unwrap(),
        "--stop",
        "fixed:1000000000",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("max_iter"), "{err}");
    let (code, r) = solve_json(&[
        "solve",
        path.to_str().unwrap(),
        "--stop",
        "fixed:20",
        "--max-iter",
        "20",
    ]);
    assert_eq!((code, r.iterations), (0, 20));
}

#[test]
fn an_overflowing_vjp_is_an_error_not_null() {
    let path = write("tiny-vjp.json", TINY);
    let grad = write("huge-grad.json", "[1.7e308, -1.7e308, 1.7e308]");
    let out = altdiff(&[
        "solve",
        path.to_str().unwrap(),
        "--vjp",
        grad.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("vjp.") && err.contains("beyond f64"), "{err}");
    assert!(out.stdout.is_empty(), "no result with nulls");
}

#[test]
fn negative_numbers_reach_the_value_check_and_a_bom_is_accepted() {
    let path = write("tiny-neg.json", TINY);
    let out = altdiff(&["solve", path.to_str().unwrap(), "--rho", "-1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("rho") && err.contains("-1"), "{err}");
    let bom = write("tiny-bom.json", &format!("\u{feff}{TINY}"));
    let (code, r) = solve_json(&["solve", bom.to_str().unwrap()]);
    assert_eq!((code, r.status.as_str()), (0, "solved"));
    let out = altdiff(&["bench", "--repeats", "0"]);
    assert_eq!(out.status.code(), Some(2), "--repeats 0 is refused");
}

#[test]
fn a_problem_too_large_for_a_dense_backend_is_refused_or_goes_sparse() {
    // n = 100 000 would need 240 GB dense: the generators are refused before allocating
    for args in [
        &["demo", "--n", "100000"][..],
        &["bench", "--n", "100000"][..],
    ] {
        let out = altdiff(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("GB") && err.contains("n = 100000"), "{err}");
    }
    // a sparse problem file (n = 2000, a bound per variable) with 50 MB available (the
    // dense backend needs 192 MB): the default backend is then sparse, said on stderr; a
    // dense one named explicitly is refused
    let mat = std::env::temp_dir().join(format!("altdiff-big-{}.mat", std::process::id()));
    write_diagonal_mat(&mat, 2000);
    let limited = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_altdiff"))
            .args(args)
            .env("ALTDIFF_MEMORY_LIMIT", "5e7")
            .output()
            .expect("runs")
    };
    let out = limited(&["solve", mat.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("using faer-sparse"), "{err}");
    let r: ResultFile = serde_json::from_slice(&out.stdout).expect("a result");
    assert!(r.x.iter().all(|v| (v - 1.0).abs() < 1e-6), "x = 1");
    let out = limited(&["solve", mat.to_str().unwrap(), "--backend", "faer"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("--backend faer-sparse") && err.contains("MB"),
        "{err}"
    );
    // without the limit the dense backend takes it
    let (code, r) = solve_json(&["solve", mat.to_str().unwrap()]);
    assert_eq!((code, r.status.as_str()), (0, "solved"));
}

/// `min 1/2 |x|^2 - 1'x` s.t. `0 <= x <= 2` in the Maros-Meszaros layout, sparse.
fn write_diagonal_mat(path: &std::path::Path, n: usize) {
    use matrw::{MatFile, MatVariable, MatlabType, NumericArray, SparseArray, save_matfile_v7};
    let diagonal = || {
        MatVariable::SparseArray(
            SparseArray::new(
                n,
                n,
                (0..n).collect(),
                (0..=n).collect(),
                MatlabType::F64(vec![1.0; n]),
                None,
            )
            .expect("a sparse array"),
        )
    };
    let column = |value: f64, rows: usize| {
        MatVariable::NumericArray(
            NumericArray::new(vec![rows, 1], MatlabType::F64(vec![value; rows]), None)
                .expect("a column"),
        )
    };
    let mut file = MatFile::new();
    file.insert("P", diagonal());
    file.insert("q", column(-1.0, n));
    file.insert("A", diagonal());
    file.insert("l", column(0.0, n));
    file.insert("u", column(2.0, n));
    file.insert("r", column(0.0, 1));
    save_matfile_v7(path.to_str().expect("utf-8"), file, false).expect("save");
}

#[test]
fn an_unbounded_lp_with_a_vjp_reports_its_status() {
    // min -x0 - x1 s.t. x0 - x1 <= 1, -x0 <= 0, -x1 <= 0: unbounded along (1, 1)
    let path = write(
        "unbounded.json",
        r#"{"P": [[0, 0], [0, 0]], "q": [-1, -1], "G": [[1, -1], [-1, 0], [0, -1]], "h": [1, 0, 0]}"#,
    );
    let grad = write("unbounded-grad.json", "[1, 0]");
    for mode in ["limit", "implicit"] {
        let (code, r) = solve_json(&[
            "solve",
            path.to_str().unwrap(),
            "--vjp",
            grad.to_str().unwrap(),
            "--vjp-mode",
            mode,
        ]);
        assert_eq!((code, r.status.as_str()), (1, "dual_infeasible"), "{mode}");
        assert!(
            r.vjp.is_none(),
            "{mode}: no derivative of an unbounded problem"
        );
    }
}
