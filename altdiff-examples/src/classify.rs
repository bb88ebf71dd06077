//! `altdiff classify`: the Alt-Diff paper's classification experiment (its
//! `classification/train.py`, model `Alt-Diff`): a small network with a QP layer in the
//! middle, trained on images with Adam.
//!
//! ## The network
//!
//! ```text
//! image (dim) -> FC(dim -> 200) -> ReLU -> QP layer (n = 200) -> FC(200 -> 10) -> cross-entropy
//! ```
//!
//! The QP layer solves, for every image, with the 200 features `z` as the linear cost,
//!
//! ```text
//! x*(z) = argmin 1/2 x'Px + z'x   s.t.  Ax = b  (50 rows),  Gx <= h  (50 rows)
//! ```
//!
//! with `P = 0.1 I` and `b = 1` as in the paper, and `A`, `G` fixed random matrices drawn
//! from [`ClassifyConfig::seed`] by [`classification_qp`] (the problem `altdiff batch-bench`
//! times): entries `N(0, 1/n)`, so rows of unit expected norm. Two departures from the
//! paper's `models.AltDiff`, both for the solver's sake:
//!
//! * The paper draws `A`, `G` (and `h`) uniform in `[0, 1)`: rows nearly parallel (they
//!   share the mean 1/2), so `AA'` has one eigenvalue far above the others. ADMM then needed
//!   about 1600 iterations per QP at the tolerance below (measured on digits over 2 epochs,
//!   a few QPs per epoch stopping at a cap of 2000), against about 60 with the scaled normal
//!   rows, for the same test accuracy (0.92 after 2 epochs either way).
//! * The paper's `h` is random and does not make the QP feasible. Here `h = G x0 + 1`, where
//!   `x0 = A'(AA')^-1 b` is the least-norm solution of `Ax = b`: `x0` satisfies every
//!   inequality with a margin of 1, so the QP is strictly feasible for every `z` (and, `P`
//!   being positive definite, has a unique solution).
//!
//! Only `z` varies; `P, A, G` are factored once, when the layer is built
//! ([`altdiff_candle::QpLayer`]).
//!
//! | [`Model`] | the middle | the layer's backward pass |
//! |---|---|---|
//! | `altdiff` | the QP layer | the adjoint of Alt-Diff's limit at the solution ([`VjpMode::Limit`]) |
//! | `kkt` | the QP layer | implicit differentiation of the KKT system ([`VjpMode::Kkt`]) |
//! | `mlp` | nothing (FC - ReLU - FC) | none |
//!
//! The layer's solver stops on the residuals, `eps_abs = eps_rel = 1e-5`
//! ([`ClassifyConfig::tolerance`]), after at most 1000 ADMM iterations
//! ([`ClassifyConfig::max_iter`]; an element that hits the cap still gives its last iterate
//! and is counted in [`EpochReport::layer_unsolved`]); otherwise the defaults of
//! [`Settings`] (`rho = 1`, over-relaxation 1.6). It solves in `f64`; the fully connected
//! layers compute in `f32` (the layer casts).
//!
//! ## Training
//!
//! Pixels are standardized with the mean and standard deviation of the training images (one
//! number each, as the paper's `Normalize` for MNIST). The fully connected layers start as
//! PyTorch's do (weights and biases uniform in `+-1/sqrt(fan_in)`), drawn from
//! [`ClassifyConfig::seed`], which also fixes the QP's `A`, `G`, the digits' train / test
//! split and the order of the mini-batches (reshuffled every epoch): a run is reproducible.
//! The optimizer is Adam (candle-nn's `AdamW` with no weight decay), learning rate
//! [`ClassifyConfig::lr`] (the paper's `1e-3`), mini-batches of 64, loss the mean
//! cross-entropy. After each epoch the whole test split is classified.
//!
//! # Example
//! ```no_run
//! use altdiff_examples::classify::{self, ClassifyConfig, Model};
//!
//! let config = ClassifyConfig { model: Model::Altdiff, epochs: 2, ..Default::default() };
//! let report = classify::run(&config, false)?;
//! assert_eq!(report.epochs.len(), 2);
//! assert!(report.final_test_accuracy > 0.85);
//! # Ok::<(), altdiff_examples::CliError>(())
//! ```

use crate::rng::SplitMix64;
use std::path::{Path, PathBuf};
use std::time::Instant;

use altdiff_candle::QpLayer;
use altdiff_core::testing::classification_qp;
use altdiff_core::{HostMatrix, Settings, StoppingRule, VjpMode};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Linear, Module, Optimizer, ParamsAdamW};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::CliError;
use crate::backends::DeviceArg;
use crate::datasets::{self, Dataset, Split};
use crate::plot::{SIZE, register_font, write_png};

/// The network: which middle layer, and how its gradient is computed.
///
/// # Example
/// ```
/// use altdiff_examples::classify::Model;
/// assert_eq!(Model::default(), Model::Altdiff);
/// assert_eq!(Model::Kkt.name(), "kkt");
/// assert_eq!(serde_json::to_string(&Model::Mlp).unwrap(), "\"mlp\"");
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// FC - ReLU - QP layer - FC, the layer's gradient by Alt-Diff (the adjoint of its
    /// limit at the solution, `VjpMode::Limit`).
    #[default]
    Altdiff,
    /// The same network, the layer's gradient through its KKT system (`VjpMode::Kkt`).
    Kkt,
    /// FC - ReLU - FC: the same network without the QP layer.
    Mlp,
}

impl Model {
    /// The name on the command line and in the JSON report.
    ///
    /// # Example
    /// ```
    /// assert_eq!(altdiff_examples::classify::Model::Altdiff.name(), "altdiff");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Model::Altdiff => "altdiff",
            Model::Kkt => "kkt",
            Model::Mlp => "mlp",
        }
    }

    /// The QP layer's backward pass (`None`: no QP layer).
    fn vjp_mode(self) -> Option<VjpMode> {
        match self {
            Model::Altdiff => Some(VjpMode::Limit),
            Model::Kkt => Some(VjpMode::Kkt),
            Model::Mlp => None,
        }
    }
}

/// The candle device for `device`: the CPU, or CUDA device 0 (with the Cargo feature `cuda`;
/// without it, asking for CUDA is an error, not a fallback).
fn candle_device(device: DeviceArg) -> Result<Device, CliError> {
    match device {
        DeviceArg::Cpu => Ok(Device::Cpu),
        #[cfg(feature = "cuda")]
        DeviceArg::Cuda => Ok(Device::new_cuda(0)?),
        #[cfg(not(feature = "cuda"))]
        DeviceArg::Cuda => Err(CliError::Usage(
            "--device cuda: this altdiff was built without CUDA support; rebuild with \
             `--features cuda` (needs the CUDA toolkit, nvcc) or use --device cpu"
                .into(),
        )),
    }
}

/// One training run: the data, the network, the optimizer. [`Default`] is the paper's setup
/// on the embedded digits, 5 epochs.
///
/// # Example
/// ```
/// use altdiff_examples::classify::{ClassifyConfig, Model};
/// let config = ClassifyConfig { model: Model::Mlp, epochs: 1, ..Default::default() };
/// assert_eq!((config.dataset.as_str(), config.batch_size, config.hidden), ("digits", 64, 200));
/// assert_eq!((config.n_eq, config.n_ineq), (50, 50));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifyConfig {
    /// The data set: one of [`datasets::NAMES`].
    pub dataset: String,
    /// Where the files of `mnist` and `cifar-10` are (ignored for `digits`).
    pub data_dir: Option<PathBuf>,
    /// The network.
    pub model: Model,
    /// Passes over the training split (at least 1).
    pub epochs: usize,
    /// Images per mini-batch (at least 1).
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seeds the weights, the QP's `A` and `G`, the digits' split and the batch order.
    pub seed: u64,
    /// Where the tensors live: the CPU, or CUDA device 0 (needs the Cargo feature `cuda`;
    /// without it [`run`] fails with [`CliError::Usage`]).
    pub device: DeviceArg,
    /// Width of the hidden layer, the QP's `n` (the paper's 200).
    pub hidden: usize,
    /// Equality constraints of the QP (the paper's 50; fewer than `hidden`).
    pub n_eq: usize,
    /// Inequality constraints of the QP (the paper's 50).
    pub n_ineq: usize,
    /// The layer's residual tolerance, absolute and relative.
    pub tolerance: f64,
    /// The layer's iteration cap.
    pub max_iter: usize,
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        Self {
            dataset: "digits".into(),
            data_dir: None,
            model: Model::Altdiff,
            epochs: 5,
            batch_size: 64,
            lr: 1e-3,
            seed: 0,
            device: DeviceArg::Cpu,
            hidden: 200,
            n_eq: 50,
            n_ineq: 50,
            tolerance: 1e-5,
            max_iter: 1000,
        }
    }
}

impl ClassifyConfig {
    /// The QP layer's solver settings: residual stopping at [`ClassifyConfig::tolerance`],
    /// at most [`ClassifyConfig::max_iter`] iterations, tested every 5, the rest default.
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::classify::ClassifyConfig;
    /// assert_eq!(ClassifyConfig::default().layer_settings().max_iter, 1000);
    /// ```
    pub fn layer_settings(&self) -> Settings {
        Settings::default()
            .with_stopping(StoppingRule::Residual {
                eps_abs: self.tolerance,
                eps_rel: self.tolerance,
            })
            .with_max_iter(self.max_iter)
            // per-element convergence tests cost about an iteration of the whole batch:
            // every 5 iterations (measured with `altdiff batch-bench --check-every`)
            .with_check_every(5)
    }

    /// One line: the network, the optimizer and, with the QP layer, its sizes and stopping
    /// rule.
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::classify::{ClassifyConfig, Model};
    /// let config = ClassifyConfig { model: Model::Mlp, ..Default::default() };
    /// assert_eq!(config.summary(), "mlp on digits, 5 epochs, batch 64, Adam lr 0.001, seed 0");
    /// ```
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} on {}, {} epochs, batch {}, Adam lr {}, seed {}",
            self.model.name(),
            self.dataset,
            self.epochs,
            self.batch_size,
            self.lr,
            self.seed
        );
        if self.model != Model::Mlp {
            line += &format!(
                "; QP layer n = {}, n_eq = {}, n_ineq = {}, residual tolerance {:e}, max_iter {}",
                self.hidden, self.n_eq, self.n_ineq, self.tolerance, self.max_iter
            );
        }
        line
    }

    /// Checks the numbers that have to be positive.
    fn validate(&self) -> Result<(), CliError> {
        let bad = |what: String| Err(CliError::Usage(what));
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr must be positive, got {}", self.lr));
        }
        if self.hidden == 0 || self.n_eq >= self.hidden {
            return bad(format!(
                "the QP layer needs 0 <= n_eq < n, got n = {}, n_eq = {}",
                self.hidden, self.n_eq
            ));
        }
        Ok(())
    }
}

/// How one epoch went.
///
/// # Example
/// ```
/// use altdiff_examples::classify::EpochReport;
/// let e = EpochReport { train_loss: 0.5, test_accuracy: 0.9, seconds: 1.5,
///                       mean_layer_iterations: 80.0, layer_unsolved: 0 };
/// let json = serde_json::to_value(&e).unwrap();
/// assert_eq!(json.as_object().unwrap().len(), 4);          // layer_unsolved is not written
/// assert!(e.line(1, 5).starts_with("epoch 1/5"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// The mean cross-entropy over the epoch's training images (as they were trained on).
    pub train_loss: f64,
    /// The fraction of test images classified right after the epoch.
    pub test_accuracy: f64,
    /// Wall time of the epoch's training pass (the test pass excluded).
    pub seconds: f64,
    /// The QP layer's mean ADMM iteration count per training image (0 for `mlp`).
    pub mean_layer_iterations: f64,
    /// Training images whose QP stopped at the iteration cap (not in the JSON).
    #[serde(skip)]
    pub layer_unsolved: usize,
}

impl EpochReport {
    /// The line printed after epoch `epoch` (1-based) of `epochs`.
    ///
    /// # Example
    /// See [`EpochReport`].
    pub fn line(&self, epoch: usize, epochs: usize) -> String {
        let mut line = format!(
            "epoch {epoch}/{epochs}  train loss {:.4}  test accuracy {:.4}  {:.2} s  mean layer iterations {:.1}",
            self.train_loss, self.test_accuracy, self.seconds, self.mean_layer_iterations
        );
        if self.layer_unsolved > 0 {
            line += &format!("  ({} QPs hit max_iter)", self.layer_unsolved);
        }
        line
    }
}

/// The result of [`run`], written by `altdiff classify --json` as
/// `{"model", "dataset", "final_test_accuracy", "epochs": [{"train_loss", "test_accuracy",
/// "seconds", "mean_layer_iterations"}, ...]}`.
///
/// # Example
/// ```
/// use altdiff_examples::classify::{ClassifyReport, EpochReport, Model};
/// let epoch = EpochReport { train_loss: 0.5, test_accuracy: 0.9, seconds: 1.5,
///                           mean_layer_iterations: 0.0, layer_unsolved: 0 };
/// let report = ClassifyReport { model: Model::Mlp, dataset: "digits".into(),
///                               final_test_accuracy: 0.9, epochs: vec![epoch] };
/// let json = serde_json::to_value(&report).unwrap();
/// assert_eq!(json["model"], "mlp");
/// assert_eq!(json["epochs"][0]["test_accuracy"], 0.9);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifyReport {
    /// The network.
    pub model: Model,
    /// The data set's name.
    pub dataset: String,
    /// The test accuracy after the last epoch.
    pub final_test_accuracy: f64,
    /// One entry per epoch, in order.
    pub epochs: Vec<EpochReport>,
}

impl ClassifyReport {
    /// Writes the report as pretty JSON.
    ///
    /// # Errors
    /// [`CliError::Io`] when the file cannot be written.
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::classify::{ClassifyReport, Model};
    /// let report = ClassifyReport { model: Model::Kkt, dataset: "digits".into(),
    ///                               final_test_accuracy: 0.0, epochs: vec![] };
    /// let path = std::env::temp_dir().join("altdiff-classify-doc.json");
    /// report.write_json(&path)?;
    /// assert!(std::fs::read_to_string(&path)?.contains("\"model\": \"kkt\""));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_json(&self, path: &Path) -> Result<(), CliError> {
        let json = serde_json::to_string_pretty(self).expect("serializable");
        std::fs::write(path, json + "\n").map_err(|source| CliError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Trains and tests the network of `config`. With `progress`, prints the run
/// ([`ClassifyConfig::summary`]) and the data set once the data are loaded, a progress bar
/// over the batches (on stderr, hidden when it is not a terminal) and one line per epoch
/// ([`EpochReport::line`]); silent otherwise.
///
/// # Errors
/// [`CliError::Usage`] for a bad configuration (no epochs, an empty batch, a non-positive
/// learning rate, `n_eq >= hidden`) or `--device cuda` without CUDA support;
/// [`CliError::Dataset`] when the data cannot be loaded; [`CliError::Candle`] when a tensor
/// operation or the QP layer fails.
///
/// # Example
/// ```
/// use altdiff_examples::classify::{self, ClassifyConfig, Model};
/// let config = ClassifyConfig { model: Model::Mlp, epochs: 1, ..Default::default() };
/// let report = classify::run(&config, false)?;
/// assert_eq!(report.dataset, "digits");
/// assert_eq!(report.epochs[0].mean_layer_iterations, 0.0);
/// assert!(report.final_test_accuracy > 0.5);
/// # Ok::<(), altdiff_examples::CliError>(())
/// ```
pub fn run(config: &ClassifyConfig, progress: bool) -> Result<ClassifyReport, CliError> {
    config.validate()?;
    let device = candle_device(config.device)?;
    let mut data = datasets::load(&config.dataset, config.data_dir.as_deref(), config.seed)?;
    standardize(&mut data);
    let mut rng = SplitMix64(config.seed ^ 0x636c_6173_7369_6679);
    let net = Net::new(config, data.train.dim, data.classes, &device, &mut rng)?;
    if progress {
        println!("altdiff classify: {}", config.summary());
        println!("data: {data}");
    }
    let mut optimizer = AdamW::new(
        net.vars.clone(),
        ParamsAdamW {
            lr: config.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut epochs = Vec::with_capacity(config.epochs);
    for epoch in 0..config.epochs {
        let batches = data.train.batches(config.batch_size, Some(rng.next_u64()));
        let bar = if progress {
            indicatif::ProgressBar::new(batches.len() as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "epoch {prefix} {bar:40} {pos}/{len} batches, {elapsed} {msg}",
            )
            .expect("template"),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, config.epochs));
        let start = Instant::now();
        let (mut loss_sum, mut iterations_sum, mut unsolved) = (0.0, 0.0, 0);
        for (images, labels) in batches {
            let rows = labels.len();
            let (x, y) = batch_tensors(images, &labels, data.train.dim, &device)?;
            let (logits, report) = net.forward(&x)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            optimizer.backward_step(&loss)?;
            let loss = f64::from(loss.to_scalar::<f32>()?);
            loss_sum += loss * rows as f64;
            if let Some(report) = report {
                iterations_sum += report.mean_iterations * rows as f64;
                unsolved += report.batch - report.solved;
            }
            bar.set_message(format!("loss {loss:.4}"));
            bar.inc(1);
        }
        let seconds = start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let n = data.train.len().max(1) as f64;
        let report = EpochReport {
            train_loss: loss_sum / n,
            test_accuracy: net.accuracy(&data.test, config.batch_size, &device)?,
            seconds,
            mean_layer_iterations: iterations_sum / n,
            layer_unsolved: unsolved,
        };
        if progress {
            println!("{}", report.line(epoch + 1, config.epochs));
        }
        epochs.push(report);
    }
    Ok(ClassifyReport {
        model: config.model,
        dataset: data.name.clone(),
        final_test_accuracy: epochs.last().map_or(0.0, |e| e.test_accuracy),
        epochs,
    })
}

/// The network: two fully connected layers and, between them, the QP layer with its
/// constant `b` and `h` (one row each, `f64`).
struct Net {
    fc1: Linear,
    fc2: Linear,
    qp: Option<(QpLayer, Tensor, Tensor)>,
    /// The trainable parameters (the two layers' weights and biases).
    vars: Vec<Var>,
}

impl Net {
    fn new(
        config: &ClassifyConfig,
        dim: usize,
        classes: usize,
        device: &Device,
        rng: &mut SplitMix64,
    ) -> Result<Self, CliError> {
        let mut vars = Vec::new();
        let fc1 = linear(dim, config.hidden, device, rng, &mut vars)?;
        let fc2 = linear(config.hidden, classes, device, rng, &mut vars)?;
        let qp = match config.model.vjp_mode() {
            Some(mode) => Some(qp_layer(config, device, mode)?),
            None => None,
        };
        Ok(Self { fc1, fc2, qp, vars })
    }

    /// The logits (B x classes) of a batch of images (B x dim, `f32`), and how the QP layer
    /// went.
    fn forward(
        &self,
        x: &Tensor,
    ) -> Result<(Tensor, Option<altdiff_candle::LayerReport>), CliError> {
        let z = self.fc1.forward(x)?.relu()?;
        let (z, report) = match &self.qp {
            Some((layer, b, h)) => {
                let rows = z.dims2()?.0;
                let b = b.broadcast_as((rows, b.dims2()?.1))?;
                let h = h.broadcast_as((rows, h.dims2()?.1))?;
                let x = layer.forward(&z, &b, &h)?;
                (x, layer.last_report())
            }
            None => (z, None),
        };
        Ok((self.fc2.forward(&z)?, report))
    }

    /// The fraction of `split` classified right.
    fn accuracy(&self, split: &Split, batch_size: usize, device: &Device) -> Result<f64, CliError> {
        let mut right = 0.0;
        for (images, labels) in split.batches(batch_size, None) {
            let (x, y) = batch_tensors(images, &labels, split.dim, device)?;
            let (logits, _) = self.forward(&x.detach())?;
            let predicted = logits.detach().argmax(1)?;
            right += f64::from(
                predicted
                    .eq(&y)?
                    .to_dtype(DType::F32)?
                    .sum_all()?
                    .to_scalar::<f32>()?,
            );
        }
        Ok(right / split.len().max(1) as f64)
    }
}

/// A batch as tensors: images (B x dim, `f32`) and labels (B, `u32`).
fn batch_tensors(
    images: Vec<f32>,
    labels: &[u8],
    dim: usize,
    device: &Device,
) -> Result<(Tensor, Tensor), CliError> {
    let rows = labels.len();
    let x = Tensor::from_vec(images, (rows, dim), device)?;
    let y = Tensor::from_vec(
        labels.iter().map(|&l| u32::from(l)).collect::<Vec<_>>(),
        rows,
        device,
    )?;
    Ok((x, y))
}

/// A fully connected layer `inputs -> outputs` initialized as PyTorch's `nn.Linear`
/// (uniform in `+-1/sqrt(inputs)`), its parameters appended to `vars`.
fn linear(
    inputs: usize,
    outputs: usize,
    device: &Device,
    rng: &mut SplitMix64,
    vars: &mut Vec<Var>,
) -> Result<Linear, CliError> {
    let bound = 1.0 / (inputs as f64).sqrt();
    let mut uniform = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32)
            .collect()
    };
    let weight = Var::from_tensor(&Tensor::from_vec(
        uniform(inputs * outputs),
        (outputs, inputs),
        device,
    )?)?;
    let bias = Var::from_tensor(&Tensor::from_vec(uniform(outputs), outputs, device)?)?;
    let layer = Linear::new(weight.as_tensor().clone(), Some(bias.as_tensor().clone()));
    vars.extend([weight, bias]);
    Ok(layer)
}

/// The QP layer of the module docs with its `b` (1 x n_eq) and `h` (1 x n_ineq).
fn qp_layer(
    config: &ClassifyConfig,
    device: &Device,
    mode: VjpMode,
) -> Result<(QpLayer, Tensor, Tensor), CliError> {
    let qp = classification_qp(config.hidden, config.n_eq, config.n_ineq, config.seed);
    let tensor = |m: &HostMatrix| -> candle_core::Result<Tensor> {
        let (rows, cols) = (m.nrows(), m.ncols());
        let data: Vec<f64> = (0..rows)
            .flat_map(|i| (0..cols).map(move |j| m.get(i, j)))
            .collect();
        Tensor::from_vec(data, (rows, cols), device)
    };
    let layer = QpLayer::new(
        &tensor(&qp.p)?,
        &tensor(&qp.a)?,
        &tensor(&qp.g)?,
        config.layer_settings(),
    )?
    .with_vjp_mode(mode);
    let b = Tensor::from_vec(qp.b.clone(), (1, qp.b.len()), device)?;
    let h = Tensor::from_vec(qp.h.clone(), (1, qp.h.len()), device)?;
    Ok((layer, b, h))
}

/// Standardizes both splits' pixels with the training images' mean and standard deviation.
fn standardize(data: &mut Dataset) {
    let pixels = &data.train.images;
    let count = pixels.len().max(1) as f64;
    let mean = pixels.iter().map(|&v| f64::from(v)).sum::<f64>() / count;
    let var = pixels
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / count;
    let std = if var > 0.0 { var.sqrt() } else { 1.0 };
    for v in data
        .train
        .images
        .iter_mut()
        .chain(data.test.images.iter_mut())
    {
        *v = ((f64::from(*v) - mean) / std) as f32;
    }
}

/// Draws train loss and test accuracy per epoch, side by side, as an SVG or a PNG file
/// (by the path's extension), with the embedded DejaVu Sans font.
///
/// # Errors
/// [`CliError::Usage`] for another extension than `.svg` or `.png`, [`CliError::Format`]
/// when drawing fails, [`CliError::Io`] when the file cannot be written.
///
/// # Example
/// ```
/// use altdiff_examples::classify::{plot_history, ClassifyReport, EpochReport, Model};
/// let epoch = |loss, acc| EpochReport { train_loss: loss, test_accuracy: acc, seconds: 1.0,
///                                       mean_layer_iterations: 50.0, layer_unsolved: 0 };
/// let report = ClassifyReport { model: Model::Altdiff, dataset: "digits".into(),
///                               final_test_accuracy: 0.93,
///                               epochs: vec![epoch(1.2, 0.8), epoch(0.4, 0.93)] };
/// let path = std::env::temp_dir().join("altdiff-classify-doc.svg");
/// plot_history(&path, &report)?;
/// assert!(std::fs::read_to_string(&path)?.contains("<svg"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn plot_history(path: &Path, report: &ClassifyReport) -> Result<(), CliError> {
    let fail = |e: String| CliError::Format {
        path: path.to_path_buf(),
        message: format!("plot: {e}"),
    };
    register_font().map_err(fail)?;
    match plot_extension(path).as_deref() {
        Some("svg") => {
            let root = SVGBackend::new(path, SIZE).into_drawing_area();
            draw_history(&root, report).map_err(fail)
        }
        Some("png") => {
            let mut rgb = vec![0_u8; (SIZE.0 * SIZE.1 * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
                draw_history(&root, report).map_err(fail)?;
            }
            write_png(path, &rgb).map_err(|e| match e {
                png::EncodingError::IoError(source) => CliError::Io {
                    path: path.to_path_buf(),
                    source,
                },
                other => fail(other.to_string()),
            })
        }
        _ => check_plot_path(path),
    }
}

/// Checks that [`plot_history`] can draw to `path` by its extension (`.svg` or `.png`, any
/// case), so that a run can fail before training rather than after.
///
/// # Errors
/// [`CliError::Usage`] for another extension.
///
/// # Example
/// ```
/// use altdiff_examples::classify::check_plot_path;
/// use std::path::Path;
/// assert!(check_plot_path(Path::new("history.PNG")).is_ok());
/// assert!(check_plot_path(Path::new("history.pdf")).is_err());
/// ```
pub fn check_plot_path(path: &Path) -> Result<(), CliError> {
    match plot_extension(path).as_deref() {
        Some("svg" | "png") => Ok(()),
        _ => Err(CliError::Usage(format!(
            "{}: plots are written as .svg or .png",
            path.display()
        ))),
    }
}

/// The extension of `path`, lower case.
fn plot_extension(path: &Path) -> Option<String> {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// A panel of the history plot: title, colour, value.
type Panel = (&'static str, RGBColor, fn(&EpochReport) -> f64);

/// Draws the two panels on any plotters backend.
fn draw_history<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    report: &ClassifyReport,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let title = format!(
        "altdiff classify: {} on {}",
        report.model.name(),
        report.dataset
    );
    let root = root.titled(&title, ("sans-serif", 22)).map_err(err)?;
    let panels: [Panel; 2] = [
        ("train loss", BLUE, |e| e.train_loss),
        ("test accuracy", RED, |e| e.test_accuracy),
    ];
    let epochs = report.epochs.len();
    let x_range = 0.5..(epochs.max(1) as f64 + 0.5);
    for (area, (label, color, value)) in root.split_evenly((1, 2)).iter().zip(panels) {
        let values: Vec<f64> = report
            .epochs
            .iter()
            .map(value)
            .filter(|v| v.is_finite())
            .collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() {
            let pad = ((hi - lo) * 0.1).max(1e-3);
            (lo - pad, hi + pad)
        } else {
            (0.0, 1.0)
        };
        let mut chart = ChartBuilder::on(area)
            .caption(label, ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_range.clone(), lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels(epochs.clamp(2, 10))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.3}"))
            .draw()
            .map_err(err)?;
        let points: Vec<(f64, f64)> = report
            .epochs
            .iter()
            .enumerate()
            .map(|(i, e)| ((i + 1) as f64, value(e)))
            .filter(|(_, v)| v.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&point| Circle::new(point, 4, color.filled())),
            )
            .map_err(err)?;
    }
    root.present().map_err(err)
}
