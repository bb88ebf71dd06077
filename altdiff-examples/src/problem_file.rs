//! The JSON problem file and the JSON result.
//!
//! Problem: an object with `P` (n x n), `q` (n), and optionally `A` (p x n), `b` (p),
//! `G` (m x n), `h` (m); matrices are row-major nested arrays; `A`/`b` and `G`/`h` may be
//! empty arrays or absent; other keys are ignored.
//!
//! ```json
//! {"P": [[2, 0.5], [0.5, 1]], "q": [1, -1], "A": [[1, 1]], "b": [1], "G": [], "h": []}
//! ```

use std::path::Path;

use altdiff_core::{Field, HostMatrix, HostQp, HostSolution, Param};
use serde::{Deserialize, Serialize};

use crate::CliError;

/// The problem file as written (before validation).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ProblemFile {
    /// `P`, rows.
    #[serde(rename = "P")]
    pub p: Vec<Vec<f64>>,
    /// `q`.
    pub q: Vec<f64>,
    /// `A`, rows (absent: no equalities).
    #[serde(rename = "A", default)]
    pub a: Vec<Vec<f64>>,
    /// `b`.
    #[serde(default)]
    pub b: Vec<f64>,
    /// `G`, rows (absent: no inequalities).
    #[serde(rename = "G", default)]
    pub g: Vec<Vec<f64>>,
    /// `h`.
    #[serde(default)]
    pub h: Vec<f64>,
}

impl ProblemFile {
    /// Parses a problem from JSON text; `path` names the source in errors.
    ///
    /// # Errors
    /// [`CliError::Json`] for malformed JSON, wrong types or a missing `P` or `q`.
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::problem_file::ProblemFile;
    /// let f = ProblemFile::parse(r#"{"P": [[1]], "q": [2]}"#, "inline".as_ref())?;
    /// assert_eq!(f.to_host()?.validate()?.n, 1);
    /// assert!(ProblemFile::parse(r#"{"P": [[1]], "q": ["2"]}"#, "inline".as_ref()).is_err());
    /// # Ok::<(), altdiff_examples::CliError>(())
    /// ```
    pub fn parse(text: &str, path: &Path) -> Result<Self, CliError> {
        parse_json(text, path)
    }

    /// Reads and parses a problem file.
    ///
    /// # Errors
    /// [`CliError::Io`] or [`CliError::Json`].
    pub fn read(path: &Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// The problem as host matrices, validated (shapes, finiteness, symmetry of `P`).
    ///
    /// # Errors
    /// [`CliError::Core`] naming the field and the shapes.
    pub fn to_host(&self) -> Result<HostQp, CliError> {
        let p = HostMatrix::from_rows(Field::P, &self.p)?;
        let n = p.nrows();
        let qp = HostQp {
            q: self.q.clone(),
            a: HostMatrix::from_rows(Field::A, &self.a)?.or_empty_rows(n),
            b: self.b.clone(),
            g: HostMatrix::from_rows(Field::G, &self.g)?.or_empty_rows(n),
            h: self.h.clone(),
            p,
        };
        qp.validate()?;
        Ok(qp)
    }

    /// The file form of a host problem (for writing examples and tests).
    pub fn from_host(qp: &HostQp) -> Self {
        Self {
            p: qp.p.to_rows(),
            q: qp.q.clone(),
            a: qp.a.to_rows(),
            b: qp.b.clone(),
            g: qp.g.to_rows(),
            h: qp.h.clone(),
        }
    }
}

/// Reads a problem from a `.json`, `.npz` or `.mat` file (by extension; JSON otherwise). A
/// `.mat` file is a Maros-Meszaros problem ([`crate::maros`]: sparse matrices, the constant
/// `r` of its objective dropped).
///
/// # Errors
/// As [`ProblemFile::read`], [`crate::npz_file::read_npz`] and
/// [`crate::maros::read_maros`] (a format error naming the file), then validation.
pub fn read_problem(path: &Path) -> Result<HostQp, CliError> {
    let extension = |ext: &str| {
        path.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(ext))
    };
    if extension("npz") {
        crate::npz_file::read_npz(path)
    } else if extension("mat") {
        Ok(crate::maros::read_maros(path)?.qp)
    } else {
        ProblemFile::read(path)?.to_host()
    }
}

/// The result JSON of `altdiff solve`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ResultFile {
    /// `"solved"`, `"max_iterations"`, `"fixed_iterations"`, `"numerical_error"`.
    pub status: String,
    /// Iterations run.
    pub iterations: usize,
    /// `1/2 x'Px + q'x`.
    pub objective: f64,
    /// Primal solution.
    pub x: Vec<f64>,
    /// Equality duals.
    pub lam: Vec<f64>,
    /// Inequality duals.
    pub nu: Vec<f64>,
    /// Slack `h - Gx`.
    pub s: Vec<f64>,
    /// `max(|Ax - b|, |max(Gx - h, 0)|)`.
    pub primal_residual: f64,
    /// `|Px + q + A'lam + G'nu|`.
    pub dual_residual: f64,
    /// `|x'Px + q'x + b'lam + h'nu|` (the residuals and the gap are those of the problem as
    /// given, which the stopping test judged).
    #[serde(default)]
    pub duality_gap: f64,
    /// Whether the solution is unique as far as the solve found out (`false`: a face of
    /// solutions, this is one of them; its derivatives are that point's).
    #[serde(default = "unique_by_default")]
    pub unique: bool,
    /// `dx/dq` (n x n, row-major), when asked.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dx_dq: Option<Vec<Vec<f64>>>,
    /// `dx/db` (n x p), when asked.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dx_db: Option<Vec<Vec<f64>>>,
    /// `dx/dh` (n x m), when asked.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dx_dh: Option<Vec<Vec<f64>>>,
    /// `dx/dP` (n x n^2, column `i n + j` for `P_ij`), when asked.
    #[serde(rename = "dx_dP", skip_serializing_if = "Option::is_none", default)]
    pub dx_dp: Option<Vec<Vec<f64>>>,
    /// `dx/dA` (n x pn), when asked.
    #[serde(rename = "dx_dA", skip_serializing_if = "Option::is_none", default)]
    pub dx_da: Option<Vec<Vec<f64>>>,
    /// `dx/dG` (n x mn), when asked.
    #[serde(rename = "dx_dG", skip_serializing_if = "Option::is_none", default)]
    pub dx_dg: Option<Vec<Vec<f64>>>,
    /// Inequalities with slack and dual both zero within the tolerance.
    #[serde(default)]
    pub weakly_active: Vec<usize>,
    /// `J'g` for `--vjp GRAD.json`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vjp: Option<VjpFile>,
    /// The differentiability report, with every derivative of a solved problem.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub differentiability: Option<DifferentiabilityFile>,
}

/// The JSON form of [`altdiff_core::Differentiability`] (key `"differentiability"`; an
/// infinite margin, where no row is active or inactive, is `null`).
///
/// # Example
/// ```
/// use altdiff_examples::problem_file::DifferentiabilityFile;
/// let f: DifferentiabilityFile = serde_json::from_str(r#"{"status": "degenerate",
///     "licq": false, "min_active_multiplier": 0.5, "min_inactive_slack": null,
///     "kkt_condition": 1e17, "weakly_active": [], "active": 2, "margin": 0.001}"#).unwrap();
/// assert_eq!((f.status.as_str(), f.licq), ("degenerate", Some(false)));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DifferentiabilityFile {
    /// `"differentiable"`, `"near_degenerate"`, `"degenerate"` or `"not_unique"`.
    pub status: String,
    /// Whether the active rows are independent (`null`: not known on this backend).
    pub licq: Option<bool>,
    /// The smallest relative multiplier of an active inequality.
    pub min_active_multiplier: Option<f64>,
    /// The smallest relative slack of an inactive inequality.
    pub min_inactive_slack: Option<f64>,
    /// The condition estimate of the active set's KKT Schur complement.
    pub kkt_condition: Option<f64>,
    /// Active inequalities with a multiplier below the tolerance.
    pub weakly_active: Vec<usize>,
    /// Active inequalities.
    pub active: usize,
    /// The margin below which the report says `near_degenerate`.
    pub margin: f64,
}

impl From<&altdiff_core::Differentiability> for DifferentiabilityFile {
    fn from(d: &altdiff_core::Differentiability) -> Self {
        let finite = |v: f64| v.is_finite().then_some(v);
        Self {
            status: d.status.as_str().to_owned(),
            licq: d.licq,
            min_active_multiplier: finite(d.min_active_multiplier),
            min_inactive_slack: finite(d.min_inactive_slack),
            kkt_condition: d.kkt_condition.and_then(finite),
            weakly_active: d.weakly_active.clone(),
            active: d.active,
            margin: d.margin,
        }
    }
}

impl ResultFile {
    /// The first derivative entry (Jacobian or VJP) that is not finite, as (its name, the
    /// entry's row-major index, its value): JSON would write it as `null`.
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::problem_file::{ResultFile, VjpFile};
    /// let mut r: ResultFile = serde_json::from_str(r#"{"status": "solved", "iterations": 1,
    ///     "objective": 0, "x": [0], "lam": [], "nu": [], "s": [], "primal_residual": 0,
    ///     "dual_residual": 0}"#).unwrap();
    /// assert_eq!(r.non_finite_derivative(), None);
    /// r.vjp = Some(VjpFile { q: vec![1.0, f64::INFINITY], b: vec![], h: vec![], p: None, a: None, g: None });
    /// assert_eq!(r.non_finite_derivative(), Some(("vjp.q", 1, f64::INFINITY)));
    /// ```
    #[must_use]
    pub fn non_finite_derivative(&self) -> Option<(&'static str, usize, f64)> {
        let rows = |m: &Option<Vec<Vec<f64>>>| m.iter().flatten().flatten().copied().collect();
        let mut fields: Vec<(&'static str, Vec<f64>)> = vec![
            ("dx_dq", rows(&self.dx_dq)),
            ("dx_db", rows(&self.dx_db)),
            ("dx_dh", rows(&self.dx_dh)),
            ("dx_dP", rows(&self.dx_dp)),
            ("dx_dA", rows(&self.dx_da)),
            ("dx_dG", rows(&self.dx_dg)),
        ];
        if let Some(v) = &self.vjp {
            fields.push(("vjp.q", v.q.clone()));
            fields.push(("vjp.b", v.b.clone()));
            fields.push(("vjp.h", v.h.clone()));
            fields.push(("vjp.P", rows(&v.p)));
            fields.push(("vjp.A", rows(&v.a)));
            fields.push(("vjp.G", rows(&v.g)));
        }
        fields.into_iter().find_map(|(name, values)| {
            let (i, &v) = values.iter().enumerate().find(|(_, v)| !v.is_finite())?;
            Some((name, i, v))
        })
    }
}

/// `true` (results written before the field existed).
fn unique_by_default() -> bool {
    true
}

/// The `"vjp"` object of the result: the gradient wrt every parameter, in its shape.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VjpFile {
    /// wrt `q`.
    pub q: Vec<f64>,
    /// wrt `b`.
    pub b: Vec<f64>,
    /// wrt `h`.
    pub h: Vec<f64>,
    /// wrt `P` (symmetric), rows.
    #[serde(rename = "P", skip_serializing_if = "Option::is_none", default)]
    pub p: Option<Vec<Vec<f64>>>,
    /// wrt `A`, rows.
    #[serde(rename = "A", skip_serializing_if = "Option::is_none", default)]
    pub a: Option<Vec<Vec<f64>>>,
    /// wrt `G`, rows.
    #[serde(rename = "G", skip_serializing_if = "Option::is_none", default)]
    pub g: Option<Vec<Vec<f64>>>,
}

/// Reads a JSON array of numbers (a gradient `dloss/dx`).
///
/// # Errors
/// [`CliError::Io`] or [`CliError::Json`].
///
/// # Example
/// ```
/// let path = std::env::temp_dir().join("altdiff-doc-grad.json");
/// std::fs::write(&path, "[1, 0.5]").unwrap();
/// assert_eq!(altdiff_examples::problem_file::read_vector(&path)?, vec![1.0, 0.5]);
/// # Ok::<(), altdiff_examples::CliError>(())
/// ```
pub fn read_vector(path: &Path) -> Result<Vec<f64>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_json(&text, path)
}

/// Parses JSON text, a UTF-8 byte-order mark (as some Windows editors write) skipped;
/// `path` names the source in errors.
fn parse_json<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, CliError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str(text).map_err(|source| CliError::Json {
        path: path.to_path_buf(),
        source,
    })
}

impl From<&HostSolution> for ResultFile {
    fn from(sol: &HostSolution) -> Self {
        let jac = |param| sol.jacobian(param).map(HostMatrix::to_rows);
        Self {
            status: sol.status.as_str().to_owned(),
            iterations: sol.iterations,
            objective: sol.objective,
            x: sol.x.clone(),
            lam: sol.lam.clone(),
            nu: sol.nu.clone(),
            s: sol.s.clone(),
            primal_residual: sol.primal_residual,
            dual_residual: sol.dual_residual,
            duality_gap: sol.duality_gap,
            unique: sol.unique,
            dx_dq: jac(Param::Q),
            dx_db: jac(Param::B),
            dx_dh: jac(Param::H),
            dx_dp: jac(Param::P),
            dx_da: jac(Param::A),
            dx_dg: jac(Param::G),
            weakly_active: sol.weakly_active.clone(),
            vjp: None,
            differentiability: None,
        }
    }
}
