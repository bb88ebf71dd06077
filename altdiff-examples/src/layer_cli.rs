//! `altdiff layer`: the softmax / sparsemax layers of [`altdiff_core::smooth::layers`] from
//! the command line.
//!
//! ```text
//! altdiff layer softmax|sparsemax|csoftmax|csparsemax --y Y.json [--u U.json] [--wrt y,u]
//!               [--vjp G.json] [--rho R] [--max-iter N] [--eps-abs E] [--eps-rel E] ...
//! ```
//!
//! `Y.json`, `U.json` and `G.json` hold JSON arrays of `n` numbers. The result (stdout, or
//! `--out`) is a JSON object: `layer`, `status`, `iterations`, `newton_steps`, `objective`,
//! `primal_residual`, `dual_residual`, `x`, and when asked `dx_dy` / `dx_du` (`n x n`, rows:
//! entry `[i][j]` is `dx_i/dy_j`) and `vjp` (`y`, and `u` for the constrained layers). Exit
//! codes: 0 solved, 1 not converged (the result is still written), 2 bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use altdiff_core::smooth::SmoothSettings;
use altdiff_core::smooth::layers::{Layer, LayerKind, LayerParam};
use altdiff_core::{HostMatrix, LinAlg};
use serde::{Deserialize, Serialize};

use crate::CliError;
use crate::backends::{BackendJob, BackendKind};
use crate::cli::SolverArgs;
use crate::problem_file::read_vector;

/// The layer named on the command line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LayerKindArg {
    /// `softmax(y)`: `min sum x log x - y'x s.t. 1'x = 1`.
    Softmax,
    /// The projection of `y` onto the simplex: `min |x - y|^2 s.t. 1'x = 1, x >= 0`.
    Sparsemax,
    /// The constrained softmax: softmax with `x <= u` (`u > 0`, `sum(u) >= 1`).
    Csoftmax,
    /// The constrained sparsemax: sparsemax with `x <= u` (`u >= 0`, `sum(u) >= 1`).
    Csparsemax,
}

impl From<LayerKindArg> for LayerKind {
    fn from(kind: LayerKindArg) -> Self {
        match kind {
            LayerKindArg::Softmax => LayerKind::Softmax,
            LayerKindArg::Sparsemax => LayerKind::Sparsemax,
            LayerKindArg::Csoftmax => LayerKind::CSoftmax,
            LayerKindArg::Csparsemax => LayerKind::CSparsemax,
        }
    }
}

/// A layer parameter named in `--wrt`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LayerParamArg {
    /// The scores `y`.
    Y,
    /// The upper bounds `u` (constrained layers).
    U,
}

impl From<LayerParamArg> for LayerParam {
    fn from(p: LayerParamArg) -> Self {
        match p {
            LayerParamArg::Y => LayerParam::Y,
            LayerParamArg::U => LayerParam::U,
        }
    }
}

/// The options of `altdiff layer`. Of the solver options, `--rho`, `--max-iter`,
/// `--eps-abs`, `--eps-rel`, `--stop`, `--check-every` and `--method` apply; the layers run
/// plain ADMM with an adaptive penalty (`--alpha`, `--scaling` and `--adaptive-rho` have no
/// effect) and reject `--limit`.
///
/// # Example
/// ```
/// use altdiff_examples::layer_cli::{LayerArgs, LayerKindArg};
/// use clap::Parser;
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     args: LayerArgs,
/// }
/// let cli = Cli::parse_from(["layer", "csoftmax", "--y", "y.json", "--u", "u.json", "--wrt", "y,u"]);
/// assert_eq!(cli.args.layer, LayerKindArg::Csoftmax);
/// assert_eq!(cli.args.wrt.len(), 2);
/// ```
#[derive(Clone, Debug, clap::Args)]
pub struct LayerArgs {
    /// The layer.
    #[arg(value_enum)]
    pub layer: LayerKindArg,
    /// The scores y: a JSON array of n numbers.
    #[arg(long)]
    pub y: PathBuf,
    /// The upper bounds u of csoftmax / csparsemax: a JSON array of n numbers (u >= 0, u > 0
    /// for csoftmax, sum(u) >= 1).
    #[arg(long)]
    pub u: Option<PathBuf>,
    /// Jacobians to compute: y and/or u (n x n each, as "dx_dy", "dx_du").
    #[arg(long, value_enum, value_delimiter = ',')]
    pub wrt: Vec<LayerParamArg>,
    /// A gradient dloss/dx (JSON array of n numbers): adds "vjp" with (dx/dy)'g (and
    /// (dx/du)'g for the constrained layers).
    #[arg(long)]
    pub vjp: Option<PathBuf>,
    /// The backend (those compiled in).
    #[arg(long, value_enum, default_value_t = BackendKind::compiled()[0])]
    pub backend: BackendKind,
    /// The solver options (see the struct's docs for those that apply).
    #[command(flatten)]
    pub solver: SolverArgs,
    /// Write the result here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The result JSON of `altdiff layer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerResult {
    /// The layer's name.
    pub layer: String,
    /// `"solved"`, `"max_iterations"`, `"fixed_iterations"` or `"numerical_error"`.
    pub status: String,
    /// ADMM iterations.
    pub iterations: usize,
    /// Newton steps over all x-updates.
    pub newton_steps: usize,
    /// The objective at `x`.
    pub objective: f64,
    /// `max(|Ax - b|, |Gx + s - h|)`.
    pub primal_residual: f64,
    /// `|grad f(x) + A'lam + G'nu|`.
    pub dual_residual: f64,
    /// The layer's output.
    pub x: Vec<f64>,
    /// `dx/dy` (n x n, rows), with `--wrt y`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dx_dy: Option<Vec<Vec<f64>>>,
    /// `dx/du` (n x n, rows), with `--wrt u`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dx_du: Option<Vec<Vec<f64>>>,
    /// The VJP, with `--vjp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vjp: Option<LayerVjp>,
}

/// The `vjp` of [`LayerResult`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerVjp {
    /// `(dx/dy)' g`.
    pub y: Vec<f64>,
    /// `(dx/du)' g` (constrained layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u: Option<Vec<f64>>,
}

/// The layer settings from the solver options.
///
/// # Errors
/// [`CliError::Usage`] for `--limit`; [`CliError::Core`] for settings out of range.
///
/// # Example
/// ```
/// use altdiff_examples::cli::SolverArgs;
/// use altdiff_examples::layer_cli::settings;
/// use clap::Parser;
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     solver: SolverArgs,
/// }
/// let cli = Cli::parse_from(["layer", "--rho", "2", "--eps-abs", "1e-9"]);
/// assert_eq!(settings(&cli.solver)?.rho, 2.0);
/// let cli = Cli::parse_from(["layer", "--limit"]);
/// assert!(settings(&cli.solver).is_err());
/// # Ok::<(), altdiff_examples::CliError>(())
/// ```
pub fn settings(solver: &SolverArgs) -> Result<SmoothSettings, CliError> {
    if solver.limit {
        return Err(CliError::Usage(
            "--limit is not supported by `altdiff layer` (its derivatives use --method altdiff or kkt)"
                .into(),
        ));
    }
    let settings = SmoothSettings::from_settings(&solver.settings());
    settings.validate().map_err(altdiff_core::Error::from)?;
    Ok(settings)
}

/// Reads a JSON vector file.
fn vector(path: &Path) -> Result<Vec<f64>, CliError> {
    read_vector(path)
}

/// Solves the layer of `args`, writes the result JSON and returns the exit code (0 solved, 1
/// not converged).
///
/// # Errors
/// [`CliError`] for unreadable or malformed files, bad inputs (named with their shapes),
/// bad settings or a backend that was not compiled in.
pub fn run(args: &LayerArgs) -> Result<ExitCode, CliError> {
    let settings = settings(&args.solver)?;
    let y = vector(&args.y)?;
    let u = args.u.as_deref().map(vector).transpose()?;
    let g = args.vjp.as_deref().map(vector).transpose()?;
    let job = LayerJob {
        kind: args.layer.into(),
        y,
        u,
        g,
        wrt: args.wrt.iter().map(|&p| p.into()).collect(),
        settings,
    };
    let result = args.backend.run(job)?;
    let json = serde_json::to_string_pretty(&result).expect("serializable");
    match &args.out {
        Some(path) => std::fs::write(path, json + "\n").map_err(|source| CliError::Io {
            path: path.clone(),
            source,
        })?,
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe is not worth a panic.
            let _ = writeln!(out, "{json}");
        }
    }
    Ok(
        if result.status == "solved" || result.status == "fixed_iterations" {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

/// A layer solve on whichever backend was picked.
struct LayerJob {
    kind: LayerKind,
    y: Vec<f64>,
    u: Option<Vec<f64>>,
    g: Option<Vec<f64>>,
    wrt: Vec<LayerParam>,
    settings: SmoothSettings,
}

impl BackendJob for LayerJob {
    type Output = LayerResult;

    fn run<B: LinAlg<Real = f64>>(self, backend: B) -> Result<LayerResult, CliError> {
        let layer = Layer::new(backend, self.kind, self.y.len(), self.settings)?;
        let out = layer.forward(&self.y, self.u.as_deref(), &self.wrt)?;
        let vjp = match &self.g {
            Some(g) => {
                let grads = layer.vjp(&out, g)?;
                Some(LayerVjp {
                    y: grads.y,
                    u: grads.u,
                })
            }
            None => None,
        };
        let sol = out.solution();
        Ok(LayerResult {
            layer: self.kind.name().to_owned(),
            status: out.status.as_str().to_owned(),
            iterations: out.iterations,
            newton_steps: sol.newton_steps(),
            objective: out.objective,
            primal_residual: sol.primal_residual(),
            dual_residual: sol.dual_residual(),
            x: out.x.clone(),
            dx_dy: out.jacobian(LayerParam::Y).map(HostMatrix::to_rows),
            dx_du: out.jacobian(LayerParam::U).map(HostMatrix::to_rows),
            vjp,
        })
    }
}
