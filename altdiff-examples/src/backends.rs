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
    /// `altdiff-ndarray`: ndarray arrays, faer factorizations (feature `ndarray`).
    Ndarray,
}

const COMPILED: &[BackendKind] = &[
    #[cfg(feature = "faer")]
    BackendKind::Faer,
    #[cfg(feature = "ndarray")]
    BackendKind::Ndarray,
];

impl BackendKind {
    /// The backends compiled into this build.
    pub fn compiled() -> &'static [BackendKind] {
        COMPILED
    }

    /// The backend's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Faer => "faer",
            BackendKind::Ndarray => "ndarray",
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
            #[cfg(feature = "ndarray")]
            BackendKind::Ndarray => job.run(altdiff_ndarray::NdarrayBackend::with_par(par)),
            _ => Err(CliError::Usage(format!(
                "backend {} was not compiled in (Cargo feature `{}`)",
                self.name(),
                self.name()
            ))),
        }
    }
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
