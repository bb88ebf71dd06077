//! The backends compiled into this build, and running generic code on one of them.

use altdiff_core::LinAlg;

use crate::CliError;

/// A backend the program can run on. Only those compiled in (Cargo features) are offered.
///
/// # Example
/// ```
/// use altdiff_examples::backends::BackendKind;
/// assert!(!BackendKind::compiled().is_empty());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// `altdiff-faer`: dense faer matrices (feature `faer`).
    Faer,
    /// `altdiff-faer`'s dense backend with `H` factored, its solves and the dual-space
    /// operators in `f32` ([`altdiff_faer::Precision::Single`]; feature `faer`): about twice
    /// as fast; the polish, the limit and KKT VJPs and the KKT Jacobians refined to `f64`
    /// accuracy, the other Jacobians accurate to about `6e-8 cond(H)`.
    FaerF32,
    /// `altdiff-faer`'s sparse backend: CSC operators, sparse Cholesky (feature `faer`).
    FaerSparse,
    /// `altdiff-ndarray`: ndarray arrays, faer factorizations (feature `ndarray`).
    Ndarray,
    /// `altdiff-candle`: candle tensors in `f64` on the CPU device (feature `candle`).
    Candle,
    /// `altdiff-candle`: candle tensors in `f64` on CUDA device 0 (feature `cuda`).
    CandleCuda,
}

const COMPILED: &[BackendKind] = &[
    #[cfg(feature = "faer")]
    BackendKind::Faer,
    #[cfg(feature = "faer")]
    BackendKind::FaerF32,
    #[cfg(feature = "faer")]
    BackendKind::FaerSparse,
    #[cfg(feature = "ndarray")]
    BackendKind::Ndarray,
    #[cfg(feature = "candle")]
    BackendKind::Candle,
    #[cfg(feature = "cuda")]
    BackendKind::CandleCuda,
];

impl BackendKind {
    /// The backends compiled into this build.
    pub fn compiled() -> &'static [BackendKind] {
        COMPILED
    }

    /// The backends `demo`, `derivatives` and `bench` run when none is named: the dense CPU
    /// ones (faer, ndarray) that are compiled in.
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::backends::BackendKind;
    /// assert!(BackendKind::defaults().iter().all(|b| BackendKind::compiled().contains(b)));
    /// ```
    pub fn defaults() -> Vec<BackendKind> {
        COMPILED
            .iter()
            .copied()
            .filter(|b| matches!(b, BackendKind::Faer | BackendKind::Ndarray))
            .collect()
    }

    /// The backend's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Faer => "faer",
            BackendKind::FaerF32 => "faer-f32",
            BackendKind::FaerSparse => "faer-sparse",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Candle => "candle",
            BackendKind::CandleCuda => "candle-cuda",
        }
    }

    /// The Cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            BackendKind::Faer | BackendKind::FaerF32 | BackendKind::FaerSparse => "faer",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Candle => "candle",
            BackendKind::CandleCuda => "cuda",
        }
    }

    /// The same backend on `device`: `candle` on `cuda` is `candle-cuda`; the CPU backends
    /// only run on the CPU.
    ///
    /// # Errors
    /// [`CliError::Usage`] for a CPU-only backend asked to run on CUDA.
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::backends::{BackendKind, DeviceArg};
    /// assert!(BackendKind::Faer.on(DeviceArg::Cuda).is_err());
    /// assert_eq!(BackendKind::Faer.on(DeviceArg::Cpu).unwrap(), BackendKind::Faer);
    /// ```
    pub fn on(self, device: DeviceArg) -> Result<Self, CliError> {
        match (self, device) {
            (_, DeviceArg::Cpu) => Ok(self),
            (BackendKind::Candle | BackendKind::CandleCuda, DeviceArg::Cuda) => {
                Ok(BackendKind::CandleCuda)
            }
            (other, DeviceArg::Cuda) => Err(CliError::Usage(format!(
                "backend {} runs on the CPU only; --device cuda needs --backend candle",
                other.name()
            ))),
        }
    }

    /// The same backend at full (`f64`) precision: `faer-f32` is `faer`; the others are
    /// themselves (references are computed there).
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::backends::BackendKind;
    /// assert_eq!(BackendKind::FaerF32.full_precision(), BackendKind::Faer);
    /// assert_eq!(BackendKind::Ndarray.full_precision(), BackendKind::Ndarray);
    /// ```
    pub fn full_precision(self) -> Self {
        match self {
            BackendKind::FaerF32 => BackendKind::Faer,
            other => other,
        }
    }

    /// Runs `job` on this backend, sequential (`faer::Par::Seq`, the default: on 2-core
    /// machines threads often cost more than they give).
    ///
    /// # Errors
    /// [`CliError::Usage`] when the backend was not compiled in; otherwise the job's.
    pub fn run<J: BackendJob>(self, job: J) -> Result<J::Output, CliError> {
        self.run_with_threads(1, job)
    }

    /// Runs `job` on this backend with `threads` rayon threads for faer's products,
    /// factorizations and solves (1: sequential; more needs the Cargo feature `rayon`).
    ///
    /// # Errors
    /// As [`BackendKind::run`].
    pub fn run_with_threads<J: BackendJob>(
        self,
        threads: usize,
        job: J,
    ) -> Result<J::Output, CliError> {
        let par = par_of(threads)?;
        #[allow(unreachable_patterns)]
        match self {
            #[cfg(feature = "faer")]
            BackendKind::Faer => job.run(altdiff_faer::FaerBackend::with_par(par)),
            #[cfg(feature = "faer")]
            BackendKind::FaerF32 => job.run(
                altdiff_faer::FaerBackend::with_par(par)
                    .with_precision(altdiff_faer::Precision::Single),
            ),
            #[cfg(feature = "faer")]
            BackendKind::FaerSparse => job.run(altdiff_faer::FaerSparseBackend::with_par(par)),
            #[cfg(feature = "ndarray")]
            BackendKind::Ndarray => job.run(altdiff_ndarray::NdarrayBackend::with_par(par)),
            #[cfg(feature = "candle")]
            BackendKind::Candle => job.run(altdiff_candle::CandleBackend::<f64>::cpu()),
            #[cfg(feature = "cuda")]
            BackendKind::CandleCuda => job.run(altdiff_candle::CandleBackend::<f64>::cuda(0)?),
            _ => Err(CliError::Usage(format!(
                "backend {} was not compiled in (Cargo feature `{}`)",
                self.name(),
                self.feature()
            ))),
        }
    }
}

/// Where a candle backend runs.
///
/// # Example
/// ```
/// use altdiff_examples::backends::DeviceArg;
/// assert_eq!(DeviceArg::default(), DeviceArg::Cpu);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    /// The CPU.
    #[default]
    Cpu,
    /// CUDA device 0 (needs the Cargo feature `cuda`).
    Cuda,
}

/// faer's parallelism for `threads` threads.
fn par_of(threads: usize) -> Result<faer::Par, CliError> {
    if threads <= 1 {
        return Ok(faer::Par::Seq);
    }
    #[cfg(feature = "rayon")]
    return Ok(faer::Par::rayon(threads));
    #[cfg(not(feature = "rayon"))]
    Err(CliError::Usage(format!(
        "{threads} threads need the Cargo feature `rayon` (build with --features rayon)"
    )))
}

impl clap::ValueEnum for BackendKind {
    fn value_variants<'a>() -> &'a [Self] {
        COMPILED
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

/// Generic work to run on whichever backend was picked at run time.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs the job on `backend`.
    ///
    /// # Errors
    /// Whatever the job fails with.
    fn run<B: LinAlg<Real = f64>>(self, backend: B) -> Result<Self::Output, CliError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_need_the_rayon_feature() {
        assert!(matches!(par_of(1), Ok(faer::Par::Seq)));
        assert_eq!(par_of(2).is_ok(), cfg!(feature = "rayon"));
    }
}
