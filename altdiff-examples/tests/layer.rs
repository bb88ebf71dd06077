//! End-to-end tests of `altdiff layer`: the softmax and sparsemax closed forms, the
//! constrained layers' Jacobians and VJPs, exit codes, and one-line errors (exit code 2,
//! never a panic) for bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

use altdiff_examples::layer_cli::LayerResult;

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("altdiff-layer-{}", std::process::id()));
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

fn layer_json(args: &[&str]) -> (i32, LayerResult) {
    let out = altdiff(args);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let stderr = String::from_utf8_lossy(&out.stderr);
    (
        out.status.code().expect("exit code"),
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text} {stderr}")),
    )
}

fn softmax(y: &[f64]) -> Vec<f64> {
    let m = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = y.iter().map(|v| (v - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|v| v / z).collect()
}

const TIGHT: [&str; 4] = ["--eps-abs", "1e-10", "--eps-rel", "1e-10"];

#[test]
fn softmax_is_the_closed_form_with_its_jacobian_and_vjp() {
    let y = [0.3, -1.0, 2.0, 0.5, 0.0];
    let y_path = write("softmax_y.json", "[0.3, -1.0, 2.0, 0.5, 0.0]");
    let g_path = write("softmax_g.json", "[1, 0, 0, 0, -1]");
    let mut args = vec![
        "layer",
        "softmax",
        "--y",
        y_path.to_str().unwrap(),
        "--wrt",
        "y",
        "--vjp",
        g_path.to_str().unwrap(),
    ];
    args.extend(TIGHT);
    let (code, r) = layer_json(&args);
    assert_eq!(
        (code, r.status.as_str(), r.layer.as_str()),
        (0, "solved", "softmax")
    );
    let s = softmax(&y);
    for (got, want) in r.x.iter().zip(&s) {
        assert!((got - want).abs() < 1e-8, "x = {:?}, softmax = {s:?}", r.x);
    }
    let j = r.dx_dy.expect("dx_dy");
    assert_eq!((j.len(), j[0].len()), (5, 5));
    for i in 0..5 {
        for k in 0..5 {
            let want = if i == k { s[i] } else { 0.0 } - s[i] * s[k];
            assert!((j[i][k] - want).abs() < 1e-7, "dx_dy[{i}][{k}]");
        }
    }
    let vjp = r.vjp.expect("vjp");
    for (k, got) in vjp.y.iter().enumerate() {
        assert!((got - (j[0][k] - j[4][k])).abs() < 1e-7);
    }
    assert!(vjp.u.is_none() && r.dx_du.is_none());
}

#[test]
fn sparsemax_on_a_known_point() {
    let y = write("sparsemax_y.json", "[0.5, 1.2, -0.3, 0.9]");
    let mut args = vec![
        "layer",
        "sparsemax",
        "--y",
        y.to_str().unwrap(),
        "--wrt",
        "y",
    ];
    args.extend(TIGHT);
    let (code, r) = layer_json(&args);
    assert_eq!(code, 0);
    // tau = (1.2 + 0.9 - 1) / 2 = 0.55: x = (0, 0.65, 0, 0.35), support {1, 3}
    for (got, want) in r.x.iter().zip([0.0, 0.65, 0.0, 0.35]) {
        assert!((got - want).abs() < 1e-8, "x = {:?}", r.x);
    }
    let j = r.dx_dy.expect("dx_dy");
    let expected = [
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.5, 0.0, -0.5],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, -0.5, 0.0, 0.5],
    ];
    for i in 0..4 {
        for k in 0..4 {
            assert!((j[i][k] - expected[i][k]).abs() < 1e-7, "{j:?}");
        }
    }
}

#[test]
fn constrained_layers_give_jacobians_wrt_y_and_u_on_every_backend() {
    let y = write("c_y.json", "[1.0, 0.5, -0.2, 2.0]");
    let u = write("c_u.json", "[0.3, 0.45, 0.5, 0.3]");
    let g = write("c_g.json", "[1, 0, 0, 0]");
    for layer in ["csoftmax", "csparsemax"] {
        let mut first: Option<Vec<f64>> = None;
        for backend in ["faer", "ndarray"] {
            let mut args = vec![
                "layer",
                layer,
                "--y",
                y.to_str().unwrap(),
                "--u",
                u.to_str().unwrap(),
                "--wrt",
                "y,u",
                "--vjp",
                g.to_str().unwrap(),
                "--backend",
                backend,
            ];
            args.extend(TIGHT);
            let (code, r) = layer_json(&args);
            assert_eq!(
                (code, r.status.as_str()),
                (0, "solved"),
                "{layer} {backend}"
            );
            assert!((r.x.iter().sum::<f64>() - 1.0).abs() < 1e-8);
            assert!(
                r.x.iter()
                    .zip([0.3, 0.45, 0.5, 0.3])
                    .all(|(x, u)| *x <= u + 1e-8)
            );
            // x_0 and x_3 sit at their bounds, no sum of bounds is 1 (degenerate): dx_0/du_0 = 1
            let ju = r.dx_du.expect("dx_du");
            assert!((ju[0][0] - 1.0).abs() < 1e-6, "{layer}: {ju:?}");
            let vjp = r.vjp.expect("vjp");
            let gu = vjp.u.expect("vjp u");
            for k in 0..4 {
                assert!((gu[k] - ju[0][k]).abs() < 1e-6);
                assert!((vjp.y[k] - r.dx_dy.as_ref().unwrap()[0][k]).abs() < 1e-6);
            }
            match &first {
                None => first = Some(r.x),
                Some(x) => {
                    for (a, b) in x.iter().zip(&r.x) {
                        assert!((a - b).abs() < 1e-9, "backends disagree");
                    }
                }
            }
        }
    }
}

#[test]
fn not_converging_exits_1_with_the_result() {
    let y = write("slow_y.json", "[1.0, 0.5, -0.2, 2.0]");
    let (code, r) = layer_json(&[
        "layer",
        "sparsemax",
        "--y",
        y.to_str().unwrap(),
        "--max-iter",
        "2",
    ]);
    assert_eq!(
        (code, r.status.as_str(), r.iterations),
        (1, "max_iterations", 2)
    );
}

/// Exit code 2 and a one-line message on stderr containing every word of `needles`.
fn fails_with(args: &[&str], needles: &[&str]) {
    let out = altdiff(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{args:?}: {stderr} lacks {needle}");
    }
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let y = write("bad_y.json", "[1.0, 0.5, -0.2]");
    let y = y.to_str().unwrap();
    let short = write("bad_short.json", "[1.0, 0.5]");
    let short = short.to_str().unwrap();
    let negative = write("bad_negative.json", "[0.5, -0.1, 1.0]");
    let infeasible = write("bad_infeasible.json", "[0.2, 0.2, 0.2]");
    let zero = write("bad_zero.json", "[0.5, 0.0, 1.0]");
    let text = write("bad_text.json", r#"["a", 1, 2]"#);
    let empty = write("bad_empty.json", "[]");
    let ok_u = write("bad_ok_u.json", "[0.5, 0.5, 0.5]");
    let ok_u = ok_u.to_str().unwrap();
    fails_with(
        &[
            "layer",
            "csparsemax",
            "--y",
            y,
            "--u",
            negative.to_str().unwrap(),
        ],
        &["u", "entry 1", "-0.1"],
    );
    fails_with(
        &[
            "layer",
            "csparsemax",
            "--y",
            y,
            "--u",
            infeasible.to_str().unwrap(),
        ],
        &["u", "sum", "< 1"],
    );
    fails_with(
        &["layer", "csoftmax", "--y", y, "--u", zero.to_str().unwrap()],
        &["u", "entry 1", "> 0"],
    );
    fails_with(
        &["layer", "csoftmax", "--y", y, "--u", short],
        &["u", "2 entries", "expected 3"],
    );
    fails_with(
        &["layer", "csoftmax", "--y", y],
        &["need the upper bounds u"],
    );
    fails_with(
        &["layer", "softmax", "--y", y, "--u", ok_u],
        &["no upper bounds"],
    );
    fails_with(&["layer", "softmax", "--y", y, "--wrt", "u"], &["dx/du"]);
    fails_with(
        &["layer", "softmax", "--y", y, "--vjp", short],
        &["g", "2 entries", "expected 3"],
    );
    fails_with(
        &["layer", "softmax", "--y", text.to_str().unwrap()],
        &["malformed JSON"],
    );
    fails_with(
        &["layer", "softmax", "--y", empty.to_str().unwrap()],
        &["y", "empty"],
    );
    fails_with(
        &["layer", "softmax", "--y", "/nonexistent/y.json"],
        &["/nonexistent/y.json"],
    );
    fails_with(&["layer", "softmax", "--y", y, "--limit"], &["--limit"]);
    fails_with(&["layer", "softmax", "--y", y, "--rho=-1"], &["rho"]);
}

#[test]
fn large_scores_solve_and_match_the_closed_form() {
    // scores near 25 (the entropy's first iterates overflowed 1/x: "H is not positive
    // definite" for a problem without P); the result is softmax's, shift-invariant
    let y = [21.0, 25.0, 23.5, 20.0, 24.0];
    let y_path = write("large_y.json", "[21.0, 25.0, 23.5, 20.0, 24.0]");
    let mut args = vec!["layer", "softmax", "--y", y_path.to_str().unwrap()];
    args.extend(TIGHT);
    let (code, r) = layer_json(&args);
    assert_eq!((code, r.status.as_str()), (0, "solved"));
    for (got, want) in r.x.iter().zip(softmax(&y)) {
        assert!((got - want).abs() < 1e-8, "{:?}", r.x);
    }
    // a cap on the largest: x_1 = u_1 = 0.3, the rest softmax of the others scaled to 0.7
    let u_path = write("large_u.json", "[1, 0.3, 1, 1, 1]");
    let mut args = vec![
        "layer",
        "csoftmax",
        "--y",
        y_path.to_str().unwrap(),
        "--u",
        u_path.to_str().unwrap(),
    ];
    args.extend(TIGHT);
    let (code, r) = layer_json(&args);
    assert_eq!((code, r.status.as_str()), (0, "solved"));
    let others = softmax(&[21.0, 23.5, 20.0, 24.0]);
    let want = [
        0.7 * others[0],
        0.3,
        0.7 * others[1],
        0.7 * others[2],
        0.7 * others[3],
    ];
    for (got, want) in r.x.iter().zip(want) {
        assert!((got - want).abs() < 1e-7, "{:?} vs {want:?}", r.x);
    }
}

#[test]
fn scores_far_apart_solve_and_match_the_closed_form() {
    // y 745 apart: exit 2 with "H = P + rho (A'A + G'G) is not positive definite"; now the
    // far entry is 0 (exp(-745) underflows) and the rest is softmax's
    let y = [0.0, -745.0, -1.0];
    let y_path = write("far_y.json", "[0, -745, -1]");
    let (code, r) = layer_json(&[
        "layer",
        "softmax",
        "--y",
        y_path.to_str().unwrap(),
        "--wrt",
        "y",
    ]);
    assert_eq!((code, r.status.as_str()), (0, "solved"));
    for (got, want) in r.x.iter().zip(softmax(&y)) {
        assert!((got - want).abs() < 1e-6, "{:?}", r.x);
    }
    // a capped top entry 1000 above the others: x = (0.3, 0.4, 0.3)
    let y_path = write("far_capped_y.json", "[0, -1000, -1]");
    let u_path = write("far_capped_u.json", "[0.3, 1, 0.3]");
    let (code, r) = layer_json(&[
        "layer",
        "csoftmax",
        "--y",
        y_path.to_str().unwrap(),
        "--u",
        u_path.to_str().unwrap(),
    ]);
    assert_eq!((code, r.status.as_str()), (0, "solved"));
    for (got, want) in r.x.iter().zip([0.3, 0.4, 0.3]) {
        assert!((got - want).abs() < 1e-6, "{:?}", r.x);
    }
}
