//! Errors of altdiff: structured, matchable, `Send + Sync`.

use core::fmt;

/// The result type of altdiff.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// A named piece of the problem data, used in error messages.
///
/// # Example
/// ```
/// use altdiff_core::Field;
/// assert_eq!(Field::G.to_string(), "G");
/// assert_eq!(Field::Q.to_string(), "q");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The quadratic cost matrix `P` (n x n).
    P,
    /// The linear cost `q` (n).
    Q,
    /// The equality matrix `A` (p x n).
    A,
    /// The equality right-hand side `b` (p).
    B,
    /// The inequality matrix `G` (m x n).
    G,
    /// The inequality right-hand side `h` (m).
    H,
    /// A warm-start vector or block.
    WarmStart,
    /// A gradient or tangent supplied by the caller.
    Seed,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::P => "P",
            Field::Q => "q",
            Field::A => "A",
            Field::B => "b",
            Field::G => "G",
            Field::H => "h",
            Field::WarmStart => "warm start",
            Field::Seed => "seed",
        })
    }
}

/// An invalid solver setting.
///
/// # Example
/// ```
/// use altdiff_core::Settings;
/// let err = Settings::default().with_rho(-1.0).validate().unwrap_err();
/// assert!(err.to_string().contains("rho"));
/// ```
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A numeric setting is out of its range.
    #[error("setting {field} must be {requirement}, got {value}")]
    Invalid {
        /// The setting's name.
        field: &'static str,
        /// What it must be, in words.
        requirement: &'static str,
        /// The value given.
        value: f64,
    },
    /// Two settings that do not go together.
    #[error("setting {setting} cannot be combined with {other}")]
    Conflict {
        /// The setting asked for.
        setting: &'static str,
        /// The setting it excludes, with its value.
        other: &'static str,
    },
}

/// Everything that can go wrong in a library call. Non-convergence is not an error: it is a
/// [`Status`](crate::Status) of the [`Solution`](crate::Solution).
///
/// # Example
/// ```
/// use altdiff_core::{Error, Field, HostMatrix};
/// let err = HostMatrix::from_rows(Field::A, &[vec![1.0, 2.0], vec![3.0]]).unwrap_err();
/// assert!(matches!(err, Error::RaggedRows { field: Field::A, row: 1, .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A matrix or vector has the wrong shape.
    #[error("dimension mismatch for {field}: expected {expected:?} (rows, cols), got {got:?}")]
    Dimension {
        /// Which piece of data.
        field: Field,
        /// The shape it must have.
        expected: (usize, usize),
        /// The shape it has.
        got: (usize, usize),
    },
    /// A matrix given as rows has rows of different lengths.
    #[error("ragged rows in {field}: row {row} has {got} entries, row 0 has {expected}")]
    RaggedRows {
        /// Which matrix.
        field: Field,
        /// The first offending row.
        row: usize,
        /// Length of row 0.
        expected: usize,
        /// Length of the offending row.
        got: usize,
    },
    /// A NaN or infinite entry.
    #[error("non-finite value {value} in {field} at ({row}, {col})")]
    NonFinite {
        /// Which piece of data.
        field: Field,
        /// Row of the entry (0 for vectors' only column index).
        row: usize,
        /// Column of the entry (0 for vectors).
        col: usize,
        /// The value found.
        value: f64,
    },
    /// A sparse matrix with a malformed structure.
    #[error("malformed sparse matrix {field}: {reason}")]
    Sparse {
        /// Which matrix.
        field: Field,
        /// What is wrong, with the offending index.
        reason: String,
    },
    /// `P` is not symmetric.
    #[error("P is not symmetric: P[{row}][{col}] - P[{col}][{row}] = {difference:e}")]
    NotSymmetric {
        /// Row of the worst pair.
        row: usize,
        /// Column of the worst pair.
        col: usize,
        /// `P[row][col] - P[col][row]`.
        difference: f64,
    },
    /// `P` has a negative eigenvalue beyond the tolerance: the problem is not convex.
    #[error(
        "P is not positive semidefinite (Cholesky of P + {shift:e} I failed): the QP is not convex"
    )]
    NotConvex {
        /// The diagonal shift used by the test.
        shift: f64,
    },
    /// `H = P + rho (A'A + G'G)` is not positive definite.
    #[error(
        "H = P + rho (A'A + G'G) is not positive definite (pivot {pivot:?}): P is not \
         positive semidefinite, or P is singular on the null space of [A; G] (the problem may \
         be unbounded or its solution not unique)"
    )]
    NotPositiveDefinite {
        /// The failing pivot of the Cholesky factorization, when the backend reports it.
        pivot: Option<usize>,
    },
    /// Entries of `A` or `G` so large that `rho (A'A + G'G)` overflows the backend's
    /// precision (the Ruiz scaling, on by default, normalizes such rows first).
    #[error(
        "entries of {field} as large as {value:e} make rho ({field}'{field}) overflow in this \
         precision: divide those rows (and their right-hand sides), or turn the scaling on"
    )]
    Overflow {
        /// `A` or `G`.
        field: Field,
        /// Its largest absolute entry.
        value: f64,
    },
    /// A VJP asked with [`Settings::require_differentiable`](crate::Settings::require_differentiable)
    /// at a solution whose report is not `differentiable`.
    #[error(
        "the derivative is not certified at this solution: {}",
        describe_report(report)
    )]
    NotDifferentiable {
        /// The report.
        report: Box<crate::Differentiability>,
    },
    /// The reduced KKT system of [`Method::Kkt`](crate::Method::Kkt) is singular: the
    /// equality rows and the active inequality rows are linearly dependent.
    #[error(
        "the reduced KKT system is singular: its {rows} constraint rows (equalities and active \
         inequalities) are linearly dependent (a degenerate active set)"
    )]
    SingularKkt {
        /// Number of rows of `[A; G_active]`.
        rows: usize,
    },
    /// An invalid setting.
    #[error("invalid settings: {0}")]
    Settings(#[from] SettingsError),
    /// A request that does not fit the solution, e.g. a Jacobian that was not computed.
    #[error("invalid request: {0}")]
    Request(&'static str),
    /// An error raised inside a backend (device, allocation, ...).
    #[error("{backend} backend error: {source}")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// The backend's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A bad input of a [`smooth`](crate::smooth) layer or objective (`y`, `u`, a gradient):
    /// its name and what is wrong with it, with the offending index and value.
    #[error("invalid input {name}: {problem}")]
    Input {
        /// The input's name (`"y"`, `"u"`, `"g"`, `"objective"`).
        name: &'static str,
        /// What is wrong.
        problem: crate::smooth::InputProblem,
    },
}

impl Error {
    /// Wraps a backend's own error.
    ///
    /// # Example
    /// ```
    /// use altdiff_core::Error;
    /// let err = Error::backend("mine", std::io::Error::other("device lost"));
    /// assert_eq!(err.to_string(), "mine backend error: device lost");
    /// ```
    pub fn backend(
        backend: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Backend {
            backend,
            source: Box::new(source),
        }
    }
}

/// One line for [`Error::NotDifferentiable`]: the verdict and what made it.
fn describe_report(report: &crate::Differentiability) -> String {
    let mut parts = vec![report.status.as_str().to_owned()];
    if report.licq == Some(false) {
        parts.push("the active rows are dependent (LICQ fails)".into());
    }
    if !report.weakly_active.is_empty() {
        parts.push(format!("weakly active rows {:?}", report.weakly_active));
    }
    if report.min_active_multiplier < report.margin {
        parts.push(format!(
            "smallest active multiplier {:.1e}",
            report.min_active_multiplier
        ));
    }
    if report.min_inactive_slack < report.margin {
        parts.push(format!(
            "smallest inactive slack {:.1e}",
            report.min_inactive_slack
        ));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn errors_are_send_sync() {
        assert_send_sync::<Error>();
        assert_send_sync::<SettingsError>();
    }

    #[test]
    fn dimension_message_names_field_and_shapes() {
        let e = Error::Dimension {
            field: Field::G,
            expected: (2, 3),
            got: (2, 4),
        };
        let s = e.to_string();
        assert!(
            s.contains("G") && s.contains("(2, 3)") && s.contains("(2, 4)"),
            "{s}"
        );
    }
}
