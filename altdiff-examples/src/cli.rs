//! Command-line options shared by the subcommands of `altdiff`.

use altdiff_core::{AdaptiveRho, Method, Param, Ruiz, Settings, StoppingRule, VjpMode};

/// A parameter named on the command line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ParamArg {
    /// The linear cost `q`.
    #[value(name = "q")]
    Q,
    /// The equality right-hand side `b`.
    #[value(name = "b")]
    B,
    /// The inequality right-hand side `h`.
    #[value(name = "h")]
    H,
    /// The quadratic cost `P` (Jacobian n x n^2).
    #[value(name = "P")]
    P,
    /// The equality matrix `A` (Jacobian n x pn).
    #[value(name = "A")]
    A,
    /// The inequality matrix `G` (Jacobian n x mn).
    #[value(name = "G")]
    G,
}

impl From<ParamArg> for Param {
    fn from(p: ParamArg) -> Self {
        match p {
            ParamArg::Q => Param::Q,
            ParamArg::B => Param::B,
            ParamArg::H => Param::H,
            ParamArg::P => Param::P,
            ParamArg::A => Param::A,
            ParamArg::G => Param::G,
        }
    }
}

/// `--scaling auto|always|off`: Ruiz equilibration of the data.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ScalingArg {
    /// Only when the data are badly scaled (row / column norms spread over 1e3).
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Off,
}

impl ScalingArg {
    /// The library setting.
    pub fn ruiz(self) -> Option<Ruiz> {
        match self {
            ScalingArg::Auto => Some(Ruiz::default()),
            ScalingArg::Always => Some(Ruiz::always()),
            ScalingArg::Off => None,
        }
    }
}

/// `--method altdiff|kkt`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// Alt-Diff: derivatives iterated alongside ADMM.
    Altdiff,
    /// Implicit differentiation of the KKT conditions at the ADMM solution.
    Kkt,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Altdiff => Method::AltDiff,
            MethodArg::Kkt => Method::Kkt,
        }
    }
}

/// `--vjp-mode unrolled|implicit|limit`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VjpModeArg {
    /// The exact adjoint of the iterations run (records a tape; the iterations then run
    /// without the polish).
    Unrolled,
    /// The adjoint of the fixed point at the final active set, by GMRES.
    Implicit,
    /// The adjoint of the limit system at the final active set, solved directly: exact at
    /// the solution, the fastest exact mode (the default).
    Limit,
}

impl VjpModeArg {
    /// The library mode; with `--method kkt` the VJP is the KKT adjoint.
    pub fn mode(self, solver: &SolverArgs) -> VjpMode {
        match (solver.method, self) {
            (MethodArg::Kkt, _) => VjpMode::Kkt,
            (MethodArg::Altdiff, VjpModeArg::Unrolled) => VjpMode::Unrolled,
            (MethodArg::Altdiff, VjpModeArg::Implicit) => VjpMode::Implicit,
            (MethodArg::Altdiff, VjpModeArg::Limit) => VjpMode::Limit,
        }
    }
}

/// `--stop residual|objective:TOL|x:TOL|fixed:K`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum StopArg {
    /// Residuals with `--eps-abs` / `--eps-rel`.
    Residual,
    /// Residuals with `eps_abs = eps_rel = TOL` (`residual:TOL`).
    ResidualTol(f64),
    /// Relative objective change.
    Objective(f64),
    /// Relative change of `x`.
    X(f64),
    /// A fixed number of iterations.
    Fixed(usize),
}

impl std::str::FromStr for StopArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let number = |v: &str| {
            v.parse::<f64>()
                .map_err(|e| format!("bad tolerance {v:?}: {e}"))
        };
        match s.split_once(':') {
            None if s == "residual" => Ok(StopArg::Residual),
            Some(("residual", v)) => number(v).map(StopArg::ResidualTol),
            Some(("objective", v)) => number(v).map(StopArg::Objective),
            Some(("x", v)) => number(v).map(StopArg::X),
            Some(("fixed", v)) => v
                .parse()
                .map(StopArg::Fixed)
                .map_err(|e| format!("bad iteration count {v:?}: {e}")),
            _ => Err(format!(
                "unknown stopping rule {s:?}: use residual, objective:TOL, x:TOL or fixed:K"
            )),
        }
    }
}

/// Anderson acceleration with `memory` (0: none), the command lines' `--anderson`.
///
/// # Example
/// ```
/// use altdiff_examples::cli::anderson;
/// assert!(anderson(0).is_none());
/// assert_eq!(anderson(5).unwrap().memory, 5);
/// ```
pub fn anderson(memory: usize) -> Option<altdiff_core::Anderson> {
    (memory > 0).then(|| altdiff_core::Anderson::default().with_memory(memory))
}

/// The solver options of `solve` and `demo`.
#[derive(Clone, Debug, clap::Args)]
pub struct SolverArgs {
    /// ADMM penalty rho.
    #[arg(long, default_value_t = 1.0)]
    pub rho: f64,
    /// Iteration bound.
    #[arg(long, default_value_t = 10_000)]
    pub max_iter: usize,
    /// Test the stopping rule every this many iterations (default: adaptive, after each of
    /// the first 8 iterations, then after an eighth of the iterations run, at most 25).
    #[arg(long)]
    pub check_every: Option<usize>,
    /// Absolute tolerance of the residual rule.
    #[arg(long, default_value_t = 1e-6)]
    pub eps_abs: f64,
    /// Relative tolerance of the residual rule.
    #[arg(long, default_value_t = 1e-6)]
    pub eps_rel: f64,
    /// Stopping rule: residual, residual:TOL, objective:TOL (the paper's, 1e-3 there), x:TOL,
    /// fixed:K.
    #[arg(long, default_value = "residual")]
    pub stop: StopArg,
    /// How derivatives are computed.
    #[arg(long, value_enum, default_value_t = MethodArg::Altdiff)]
    pub method: MethodArg,
    /// Adapt rho by residual balancing, refactoring H when it moves 5x (the default; the
    /// flag is kept for scripts).
    #[arg(long, overrides_with = "fixed_rho")]
    pub adaptive_rho: bool,
    /// Keep rho fixed (no residual balancing).
    #[arg(long)]
    pub fixed_rho: bool,
    /// Anderson acceleration of the solve with this memory (0: plain ADMM; solves that
    /// carry Jacobians always run plain).
    #[arg(long, default_value_t = 0)]
    pub anderson: usize,
    /// Over-relaxation alpha in (0, 2) (1: none, the paper's plain ADMM).
    #[arg(long, default_value_t = 1.6)]
    pub alpha: f64,
    /// Solve the limit of the recursion directly once the active set settles: an
    /// active-set polish of the solution and the Jacobians / VJP at the final active set,
    /// without iterating them (the default; the flag is kept for scripts).
    #[arg(long, overrides_with = "no_limit")]
    pub limit: bool,
    /// Iterate the Jacobians by the Alt-Diff recursion (the paper's method) and end the
    /// solve by its stopping rule alone, without the active-set polish.
    #[arg(long)]
    pub no_limit: bool,
    /// Ruiz equilibration of the data (10 passes); the results are mapped back exactly.
    #[arg(long, value_enum, default_value_t = ScalingArg::Auto)]
    pub scaling: ScalingArg,
}

impl SolverArgs {
    /// The library settings (validated later, by the solver).
    pub fn settings(&self) -> Settings {
        let stopping = match self.stop {
            StopArg::Residual => StoppingRule::Residual {
                eps_abs: self.eps_abs,
                eps_rel: self.eps_rel,
            },
            StopArg::ResidualTol(tol) => StoppingRule::Residual {
                eps_abs: tol,
                eps_rel: tol,
            },
            StopArg::Objective(tol) => StoppingRule::RelativeObjective(tol),
            StopArg::X(tol) => StoppingRule::RelativeX(tol),
            StopArg::Fixed(k) => StoppingRule::Fixed(k),
        };
        let mut settings = Settings::default()
            .with_rho(self.rho)
            .with_max_iter(self.max_iter)
            .with_stopping(stopping)
            .with_method(self.method.into())
            .with_adaptive_rho((!self.fixed_rho).then(AdaptiveRho::default))
            .with_anderson(anderson(self.anderson))
            .with_alpha(self.alpha)
            .with_limit(!self.no_limit)
            .with_scaling(self.scaling.ruiz());
        settings.check_every = self.check_every;
        settings
    }

    /// Whether the limit is in force (see [`SolverArgs::no_limit`]).
    pub fn limit(&self) -> bool {
        !self.no_limit
    }
}

/// The options of `altdiff classify` (feature `candle`): the network, the data, the
/// optimizer, and where the results go.
#[cfg(feature = "candle")]
#[derive(Clone, Debug, clap::Args)]
pub struct ClassifyArgs {
    /// The data set (digits is embedded; mnist and cifar-10 are read from --data-dir).
    #[arg(long, default_value = "digits",
          value_parser = clap::builder::PossibleValuesParser::new(crate::datasets::NAMES))]
    pub dataset: String,
    /// The directory with the MNIST IDX files or the CIFAR-10 binary batches.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// The network: FC-ReLU-QP-FC with Alt-Diff or KKT gradients, or FC-ReLU-FC.
    #[arg(long, value_enum, default_value_t = crate::classify::Model::Altdiff)]
    pub model: crate::classify::Model,
    /// Passes over the training images.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Images per mini-batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Seed of the weights, the QP's A and G, the digits' split and the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the tensors live (cuda needs the Cargo feature `cuda`).
    #[arg(long, value_enum, default_value_t = crate::backends::DeviceArg::Cpu)]
    pub device: crate::backends::DeviceArg,
    /// Write the report as JSON: model, dataset, final_test_accuracy, epochs.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Plot train loss and test accuracy per epoch (.png or .svg).
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
}

#[cfg(feature = "candle")]
impl ClassifyArgs {
    /// The run these options describe (the QP layer's sizes and tolerances are the defaults
    /// of [`ClassifyConfig`](crate::classify::ClassifyConfig)).
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::classify::Model;
    /// use altdiff_examples::cli::ClassifyArgs;
    /// use clap::Parser;
    ///
    /// #[derive(Parser)]
    /// struct Cli {
    ///     #[command(flatten)]
    ///     args: ClassifyArgs,
    /// }
    /// let cli = Cli::parse_from(["classify", "--model", "kkt", "--epochs", "2"]);
    /// let config = cli.args.config();
    /// assert_eq!((config.model, config.epochs, config.batch_size), (Model::Kkt, 2, 64));
    /// ```
    pub fn config(&self) -> crate::classify::ClassifyConfig {
        crate::classify::ClassifyConfig {
            dataset: self.dataset.clone(),
            data_dir: self.data_dir.clone(),
            model: self.model,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            seed: self.seed,
            device: self.device,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_specs_parse() {
        assert_eq!("residual".parse(), Ok(StopArg::Residual));
        assert_eq!("residual:1e-6".parse(), Ok(StopArg::ResidualTol(1e-6)));
        assert_eq!("objective:1e-3".parse(), Ok(StopArg::Objective(1e-3)));
        assert_eq!("x:0.5".parse(), Ok(StopArg::X(0.5)));
        assert_eq!("fixed:20".parse(), Ok(StopArg::Fixed(20)));
        assert!("fixed:-1".parse::<StopArg>().is_err());
        assert!("bogus".parse::<StopArg>().is_err());
    }
}
