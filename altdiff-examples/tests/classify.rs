//! `altdiff classify`: the network with the QP layer learns the digits, the program writes
//! the JSON report and the plot, and bad data or devices are one-line errors with exit
//! code 2 (never a panic).

use std::process::{Command, Output};

use altdiff_examples::classify::{self, ClassifyConfig, Model};

fn altdiff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_altdiff"))
        .args(args)
        .output()
        .expect("runs")
}

/// Asserts exit code 2 and a one-line error containing every one of `words`.
fn assert_error(out: &Output, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("altdiff: error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    for word in words {
        assert!(line.contains(word), "{word:?} not in {line:?}");
    }
}

#[test]
fn two_epochs_with_the_qp_layer_learn_the_digits() {
    let config = ClassifyConfig {
        model: Model::Altdiff,
        epochs: 2,
        ..Default::default()
    };
    let report = classify::run(&config, false).expect("trains");
    assert_eq!(
        (report.model, report.dataset.as_str()),
        (Model::Altdiff, "digits")
    );
    assert_eq!(report.epochs.len(), 2);
    let [first, second] = [&report.epochs[0], &report.epochs[1]];
    assert!(
        report.final_test_accuracy >= 0.85,
        "test accuracy {} after 2 epochs: {report:?}",
        report.final_test_accuracy
    );
    assert!(
        (report.final_test_accuracy - second.test_accuracy).abs() < 1e-15,
        "{report:?}"
    );
    assert!(second.train_loss < first.train_loss, "{report:?}");
    for epoch in &report.epochs {
        // the layer ran, and converged on every training image
        assert!(epoch.mean_layer_iterations >= 1.0, "{epoch:?}");
        assert_eq!(epoch.layer_unsolved, 0, "{epoch:?}");
        assert!(epoch.seconds > 0.0);
    }
}

#[test]
fn writes_the_json_report_and_the_plot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (json, plot) = (dir.path().join("mlp.json"), dir.path().join("mlp.png"));
    let out = altdiff(&[
        "classify",
        "--model",
        "mlp",
        "--epochs",
        "2",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("epoch ")).count(),
        2,
        "{stdout}"
    );
    let text = std::fs::read_to_string(&json).expect("json written");
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let keys = |v: &serde_json::Value| {
        let mut keys: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(&value),
        ["dataset", "epochs", "final_test_accuracy", "model"]
    );
    assert_eq!(
        (&value["model"], &value["dataset"]),
        (&"mlp".into(), &"digits".into())
    );
    let epochs = value["epochs"].as_array().expect("epochs array");
    assert_eq!(epochs.len(), 2);
    for epoch in epochs {
        assert_eq!(
            keys(epoch),
            [
                "mean_layer_iterations",
                "seconds",
                "test_accuracy",
                "train_loss"
            ]
        );
        assert_eq!(epoch["mean_layer_iterations"].as_f64(), Some(0.0));
    }
    let accuracy = value["final_test_accuracy"].as_f64().expect("a number");
    assert!((0.5..=1.0).contains(&accuracy), "{text}");
    assert_eq!(epochs[1]["test_accuracy"].as_f64(), Some(accuracy));
    let png = std::fs::read(&plot).expect("plot written");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
}

#[test]
fn mnist_without_data_is_an_error() {
    assert_error(
        &altdiff(&["classify", "--dataset", "mnist", "--epochs", "1"]),
        &["mnist", "--data-dir"],
    );
    let empty = tempfile::tempdir().expect("temp dir");
    let out = altdiff(&[
        "classify",
        "--dataset",
        "mnist",
        "--data-dir",
        empty.path().to_str().unwrap(),
    ]);
    assert_error(&out, &["missing"]);
}

#[test]
fn bad_options_fail_before_training() {
    let out = altdiff(&["classify", "--plot", "history.pdf"]);
    assert_error(&out, &["history.pdf", ".svg or .png"]);
    assert_error(&altdiff(&["classify", "--epochs", "0"]), &["--epochs"]);
    let unknown = altdiff(&["classify", "--dataset", "imagenet"]);
    assert_eq!(unknown.status.code(), Some(2), "clap rejects it");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    assert_error(
        &altdiff(&["classify", "--device", "cuda", "--epochs", "1"]),
        &["--device cuda", "--features cuda"],
    );
}
