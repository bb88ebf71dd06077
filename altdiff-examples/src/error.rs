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
    /// The problem or settings were rejected by the library.
    #[error(transparent)]
    Core(#[from] altdiff_core::Error),
    /// A bad combination of command-line options.
    #[error("{0}")]
    Usage(String),
    /// A data set could not be loaded (`altdiff classify`).
    #[error(transparent)]
    Dataset(#[from] crate::datasets::DatasetError),
    /// A candle tensor operation or the QP layer failed (`altdiff classify`).
    #[cfg(feature = "candle")]
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}
