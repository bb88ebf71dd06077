//! [`CliError`]: what the command-line program can fail with.

use std::path::PathBuf;

/// A failure of the `altdiff` program: bad input, a file, a library error. Printed as one
/// line; the program exits with code 2.
///
/// # Example
/// ```
/// use altdiff_examples::CliError;
/// let e = CliError::Usage("--stop fixed:0 needs K >= 1".into());
/// assert_eq!(e.to_string(), "--stop fixed:0 needs K >= 1");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid JSON of the expected shape.
    #[error("{path}: malformed JSON input: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A file's content is malformed (other than JSON).
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A MAT-file could not be read as a QP (the error names the file).
    #[error(transparent)]
    Mat(#[from] crate::maros::MatError),
    /// The problem or settings were rejected by the library.
    #[error(transparent)]
    Core(#[from] altdiff_core::Error),
    /// A bad combination of command-line options.
    #[error("{0}")]
    Usage(String),
    /// A derivative overflowed (or is NaN): JSON cannot hold it, and a `null` would pass
    /// for a number.
    #[error(
        "{what}[{index}] is {value}: the derivative is beyond f64 (a gradient or data of \
         extreme magnitude; scale it down)"
    )]
    Overflow {
        /// Which derivative (`vjp.q`, `dx_db`, ...).
        what: &'static str,
        /// The entry's row-major index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// The problem did not solve (infeasible, unbounded, out of iterations), so there is
    /// nothing to go on with: a status, not bad input (exit code 1).
    #[error("{what}: the problem ended {status}, not solved")]
    NotSolved {
        /// What needed the solution.
        what: &'static str,
        /// The solver's status (its JSON name).
        status: String,
    },
    /// A data set could not be loaded (`altdiff classify`).
    #[error(transparent)]
    Dataset(#[from] crate::datasets::DatasetError),
    /// A candle tensor operation or the QP layer failed (`altdiff classify`).
    #[cfg(feature = "candle")]
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

impl CliError {
    /// The program's exit code for this failure: 1 for [`CliError::NotSolved`] and a
    /// derivative refused as not certified (statuses), 2 for everything else (bad input, a
    /// file, a library error).
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::CliError;
    /// assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
    /// let e = CliError::NotSolved { what: "derivatives", status: "primal_infeasible".into() };
    /// assert_eq!(e.exit_code(), 1);
    /// ```
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::NotSolved { .. }
            | CliError::Core(altdiff_core::Error::NotDifferentiable { .. }) => 1,
            _ => 2,
        }
    }
}
