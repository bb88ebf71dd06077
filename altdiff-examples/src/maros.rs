//! The Maros-Meszaros test set: MAT-files read with the `matrw` crate into our QP form.
//!
//! Each file (as converted by the qpbenchmark project) holds
//! `minimize 1/2 x'Px + q'x + r  subject to  l <= Ax <= u` with `P` (n x n, sparse, both
//! triangles), `q` (n), `r` (1 x 1), `A` (rows x n, sparse; variable bounds are rows of it),
//! `l`, `u` (rows), and optionally `n`, `m` (1 x 1, checked when present). A bound of
//! magnitude `1e19` or more ([`INFINITE_BOUND`]) is absent.
//!
//! The mapping to `Ax = b`, `Gx <= h`, row by row in the file's order:
//!
//! | file row | becomes |
//! |---|---|
//! | `l == u` (both finite) | a row of `Ax = b` with `b = u` |
//! | finite `u` | a row of `Gx <= h`: `a_i x <= u_i` |
//! | finite `l` | a row of `Gx <= h`: `-a_i x <= -l_i` |
//! | both absent | dropped (a free row) |
//!
//! A row with both bounds finite and `l < u` gives two rows of `G` (upper first). Sparse
//! columns with unsorted row indices (scipy's non-canonical matrices, written as they are)
//! are sorted, duplicate entries summed. `P` stays sparse, whole; its symmetry and the finiteness of everything are checked by
//! [`HostQp::validate`]. Every numeric MAT class (`double`, `single`, the integer classes)
//! is accepted, dense or sparse, compressed or not; logical, character, cell, structure and
//! complex arrays are [`MatError::WrongClass`].

use std::path::{Path, PathBuf};

use altdiff_core::{Field, HostMatrix, HostQp};
use matrw::{MatFile, MatVariable, MatlabType};

/// Bounds of this magnitude or more are absent (the files hold values near `+-1e20`).
pub const INFINITE_BOUND: f64 = 1e19;

/// A problem of the test set in our form.
#[derive(Clone, Debug, PartialEq)]
pub struct MarosProblem {
    /// The file name without `.mat` (e.g. `HS21`).
    pub name: String,
    /// `P`, `q`, `A`, `b`, `G`, `h`; the matrices sparse.
    pub qp: HostQp,
    /// The constant of the objective.
    pub r: f64,
    /// Rows of the file's `A` (before the mapping).
    pub file_rows: usize,
    /// Rows of the file's `A` with neither bound (dropped).
    pub free_rows: usize,
}

impl MarosProblem {
    /// The file's objective `1/2 x'Px + q'x + r` at `x`.
    ///
    /// # Panics
    /// When `x.len() != n`.
    pub fn objective(&self, x: &[f64]) -> f64 {
        self.qp.objective(x) + self.r
    }

    /// `n + n_eq + n_ineq`: the size of the KKT system of our form.
    pub fn dim(&self) -> usize {
        self.qp.q.len() + self.qp.b.len() + self.qp.h.len()
    }
}

/// Why a MAT-file could not be read as a QP. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a MAT-file `matrw` can parse (truncated, corrupt, version 7.3...).
    #[error("{path}: malformed MAT-file: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A variable the problem needs is absent.
    #[error("{path}: variable `{name}` is missing")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The variable.
        name: &'static str,
    },
    /// A variable is of a class that cannot hold the data (not a real numeric array).
    #[error("{path}: variable `{name}` is {found}, expected {expected}")]
    WrongClass {
        /// The file.
        path: PathBuf,
        /// The variable.
        name: &'static str,
        /// What it should be.
        expected: &'static str,
        /// What it is.
        found: String,
    },
    /// A variable has the wrong shape.
    #[error("{path}: variable `{name}` is {found}, expected {expected}")]
    BadShape {
        /// The file.
        path: PathBuf,
        /// The variable.
        name: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape found (`rows x cols`, or the dimensions of an N-d array).
        found: String,
    },
    /// A variable's values are unusable (NaN bounds, `l > u`, a malformed sparse pattern).
    #[error("{path}: variable `{name}`: {message}")]
    BadValue {
        /// The file.
        path: PathBuf,
        /// The variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The mapped problem was rejected by [`HostQp::validate`] (e.g. `P` not symmetric, a
    /// NaN in `P`, `q` or `A`).
    #[error("{path}: {source}")]
    Problem {
        /// The file.
        path: PathBuf,
        /// The library's reason.
        #[source]
        source: altdiff_core::Error,
    },
}

/// Reads one problem from a MAT-file.
///
/// # Errors
/// A [`MatError`] naming the file and, where it applies, the variable.
///
/// # Example
/// ```
/// use altdiff_examples::maros::read_maros;
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/maros_meszaros");
/// let hs21 = read_maros(format!("{dir}/HS21.mat"))?;
/// // 10 x1 - x2 >= 10, 2 <= x1 <= 50, -50 <= x2 <= 50: five rows of G, no equality
/// assert_eq!((hs21.qp.q.len(), hs21.qp.b.len(), hs21.qp.h.len()), (2, 0, 5));
/// assert!((hs21.objective(&[2.0, 0.0]) + 99.96).abs() < 1e-12);
/// # Ok::<(), altdiff_examples::maros::MatError>(())
/// ```
pub fn read_maros(path: impl AsRef<Path>) -> Result<MarosProblem, MatError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| MatError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    parse_maros(&name, path, &bytes)
}

/// Parses the bytes of a MAT-file (`path` only names it in errors).
///
/// `matrw` panics on some malformed input (an `unwrap` or `panic!` in its conversions);
/// the panic is caught, without printing, and reported as [`MatError::Malformed`].
///
/// # Errors
/// As [`read_maros`].
pub fn parse_maros(name: &str, path: &Path, bytes: &[u8]) -> Result<MarosProblem, MatError> {
    let malformed = |message: String| MatError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    // the 128-byte header ends with the endian indicator "IM" (little) or "MI" (big)
    if bytes.len() < 128 {
        return Err(malformed(format!(
            "{} bytes, shorter than the 128-byte MAT-file header",
            bytes.len()
        )));
    }
    if !matches!(&bytes[126..128], b"IM" | b"MI") {
        return Err(malformed(
            "no endian indicator (IM or MI) at byte 126: not a MAT-file".into(),
        ));
    }
    if bytes.starts_with(b"MATLAB 7.3 MAT-file") {
        return Err(malformed(
            "a version 7.3 (HDF5) MAT-file: save it as version 5 or 7 (MATLAB `save -v7`, \
             scipy.io.savemat)"
                .into(),
        ));
    }
    let bytes = canonical_header(bytes);
    let file = quietly(|| matrw::load_matfile_from_u8(&bytes))
        .map_err(|panic| malformed(format!("the reader panicked: {}", one_line(&panic))))?
        .map_err(|e| malformed(one_line(&e.to_string())))?;
    Reader { path, file }.problem(name)
}

/// The bytes with the header's descriptive text replaced by MATLAB's
/// `"MATLAB 5.0 MAT-file, "`: the level-5 format leaves the text free (scipy writes
/// `"MATLAB 5.0 MAT-file Platform: posix, ..."`, Octave its own), but `matrw` insists on
/// MATLAB's words. The version and endian fields (bytes 124..128) are kept.
fn canonical_header(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const TEXT: &[u8] = b"MATLAB 5.0 MAT-file, ";
    if bytes.starts_with(TEXT) {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut owned = bytes.to_vec();
    owned[..TEXT.len()].copy_from_slice(TEXT);
    std::borrow::Cow::Owned(owned)
}

/// A reader's message on one line: ANSI colour codes dropped, lines and runs of spaces
/// joined, at most 300 characters (`binrw` prints a coloured, indented backtrace).
fn one_line(message: &str) -> String {
    let mut plain = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // an escape sequence: up to its final letter
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let joined = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &joined[..cut]),
        None => joined,
    }
}

/// Runs `f`, catching a panic as its message, with the panic hook silenced meanwhile (the
/// message goes into the error instead of stderr). The swap of the process-wide hook is
/// serialized, so concurrent calls restore the original hook.
fn quietly<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T, String> {
    static HOOK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = HOOK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(f);
    std::panic::set_hook(previous);
    result.map_err(|panic| panic_message(&panic))
}

/// The message of a caught panic.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// A numeric variable as `f64`: its shape and its values (column-major when dense).
enum Numeric {
    Dense {
        rows: usize,
        cols: usize,
        values: Vec<f64>,
    },
    Sparse {
        rows: usize,
        cols: usize,
        col_ptr: Vec<usize>,
        row_idx: Vec<usize>,
        values: Vec<f64>,
    },
}

impl Numeric {
    fn shape(&self) -> (usize, usize) {
        match self {
            Numeric::Dense { rows, cols, .. } | Numeric::Sparse { rows, cols, .. } => {
                (*rows, *cols)
            }
        }
    }
}

struct Reader<'a> {
    path: &'a Path,
    file: MatFile,
}

impl Reader<'_> {
    fn problem(mut self, name: &str) -> Result<MarosProblem, MatError> {
        let p = self.matrix("P", Field::P)?;
        let n = p.nrows();
        if p.ncols() != n {
            return Err(self.bad_shape("P", "square".into(), (p.nrows(), p.ncols())));
        }
        let q = self.vector("q", n)?;
        let a = self.matrix("A", Field::A)?;
        if a.ncols() != n {
            return Err(self.bad_shape("A", format!("? x {n}"), (a.nrows(), a.ncols())));
        }
        let rows = a.nrows();
        let l = self.vector("l", rows)?;
        let u = self.vector("u", rows)?;
        let r = match self.take("r")? {
            Some(v) => self.scalar("r", v)?,
            None => 0.0,
        };
        for (var, expected) in [("n", n), ("m", rows)] {
            if let Some(v) = self.take(var)? {
                let value = self.scalar(var, v)?;
                if (value - expected as f64).abs() > 0.5 {
                    return Err(MatError::BadValue {
                        path: self.path.to_path_buf(),
                        name: var,
                        message: format!("is {value}, but the matrices give {expected}"),
                    });
                }
            }
        }
        let (qp, free_rows) = self.map_bounds(p, q, &a, &l, &u)?;
        qp.validate().map_err(|source| MatError::Problem {
            path: self.path.to_path_buf(),
            source,
        })?;
        Ok(MarosProblem {
            name: name.to_string(),
            qp,
            r,
            file_rows: rows,
            free_rows,
        })
    }

    /// `l <= Ax <= u` as `Ax = b`, `Gx <= h` (see the module docs).
    fn map_bounds(
        &self,
        p: HostMatrix,
        q: Vec<f64>,
        a: &HostMatrix,
        l: &[f64],
        u: &[f64],
    ) -> Result<(HostQp, usize), MatError> {
        let n = q.len();
        let bad = |name: &'static str, message: String| MatError::BadValue {
            path: self.path.to_path_buf(),
            name,
            message,
        };
        // per file row: its row in A (equality) or its rows in G (upper, lower)
        let (mut eq_row, mut upper_row, mut lower_row) = (
            vec![usize::MAX; l.len()],
            vec![usize::MAX; l.len()],
            vec![usize::MAX; l.len()],
        );
        let (mut b, mut h, mut free) = (Vec::new(), Vec::new(), 0);
        for (i, (&lo, &up)) in l.iter().zip(u).enumerate() {
            if lo.is_nan() {
                return Err(bad("l", format!("NaN in row {i}")));
            }
            if up.is_nan() {
                return Err(bad("u", format!("NaN in row {i}")));
            }
            let (has_lo, has_up) = (lo.abs() < INFINITE_BOUND, up.abs() < INFINITE_BOUND);
            if has_lo && has_up && lo > up {
                return Err(bad("l", format!("l = {lo} > u = {up} in row {i}")));
            }
            if has_lo && has_up && up - lo <= 0.0 {
                eq_row[i] = b.len();
                b.push(up);
                continue;
            }
            if has_up {
                upper_row[i] = h.len();
                h.push(up);
            }
            if has_lo {
                lower_row[i] = h.len();
                h.push(-lo);
            }
            if !has_lo && !has_up {
                free += 1;
            }
        }
        let (mut a_eq, mut g) = (Vec::new(), Vec::new());
        a.for_each_entry(|i, j, v| {
            if eq_row[i] != usize::MAX {
                a_eq.push((eq_row[i], j, v));
            }
            if upper_row[i] != usize::MAX {
                g.push((upper_row[i], j, v));
            }
            if lower_row[i] != usize::MAX {
                g.push((lower_row[i], j, -v));
            }
        });
        let matrix = |field, rows, entries: &[(usize, usize, f64)]| {
            HostMatrix::from_triplets(field, rows, n, entries).map_err(|source| MatError::Problem {
                path: self.path.to_path_buf(),
                source,
            })
        };
        let qp = HostQp {
            p,
            q,
            a: matrix(Field::A, b.len(), &a_eq)?,
            b,
            g: matrix(Field::G, h.len(), &g)?,
            h,
        };
        Ok((qp, free))
    }

    fn take(&mut self, name: &'static str) -> Result<Option<Numeric>, MatError> {
        let Some(mut var) = self.file.take(name) else {
            return Ok(None);
        };
        while let MatVariable::Compressed(inner) = var {
            var = *inner.value;
        }
        let wrong = |found: &str| MatError::WrongClass {
            path: self.path.to_path_buf(),
            name,
            expected: "a real numeric array",
            found: found.to_string(),
        };
        match var {
            MatVariable::NumericArray(array) => {
                if array.value_cmp.is_some() {
                    return Err(wrong("complex"));
                }
                if array.dim.len() != 2 {
                    return Err(MatError::BadShape {
                        path: self.path.to_path_buf(),
                        name,
                        expected: "a matrix (2 dimensions)".into(),
                        found: format!("{:?}", array.dim),
                    });
                }
                let (rows, cols) = (array.dim[0], array.dim[1]);
                let values = to_f64(array.value).map_err(&wrong)?;
                Ok(Some(Numeric::Dense { rows, cols, values }))
            }
            MatVariable::SparseArray(array) => {
                if array.is_complex() {
                    return Err(wrong("complex sparse"));
                }
                let (rows, cols) = (array.dim[0], array.dim[1]);
                let values =
                    to_f64(array.value).map_err(|class| wrong(&format!("sparse {class}")))?;
                // MATLAB stores room for more entries than used: the pattern ends at jc[cols]
                let mut row_idx = array.ir;
                let col_ptr = array.jc;
                let nnz = col_ptr.last().copied().unwrap_or(0);
                if col_ptr.len() != cols + 1 || nnz > row_idx.len() || nnz > values.len() {
                    return Err(MatError::BadValue {
                        path: self.path.to_path_buf(),
                        name,
                        message: format!(
                            "sparse pattern of {} column pointers, {} row indices and {} values for {cols} columns",
                            col_ptr.len(),
                            row_idx.len(),
                            values.len()
                        ),
                    });
                }
                row_idx.truncate(nnz);
                let mut values = values;
                values.truncate(nnz);
                Ok(Some(Numeric::Sparse {
                    rows,
                    cols,
                    col_ptr,
                    row_idx,
                    values,
                }))
            }
            MatVariable::CellArray(_) => Err(wrong("a cell array")),
            MatVariable::Structure(_) | MatVariable::StructureArray(_) => Err(wrong("a structure")),
            _ => Err(wrong("an object")),
        }
    }

    fn require(&mut self, name: &'static str) -> Result<Numeric, MatError> {
        self.take(name)?.ok_or_else(|| MatError::Missing {
            path: self.path.to_path_buf(),
            name,
        })
    }

    /// A matrix, dense or sparse, kept (or made) sparse.
    fn matrix(&mut self, name: &'static str, field: Field) -> Result<HostMatrix, MatError> {
        let matrix = match self.require(name)? {
            Numeric::Dense { rows, cols, values } => {
                HostMatrix::from_col_major(field, rows, cols, values).map(|m| m.to_sparse())
            }
            Numeric::Sparse {
                rows,
                cols,
                col_ptr,
                row_idx,
                values,
            } => canonical_csc(field, rows, cols, &col_ptr, &row_idx, &values),
        };
        matrix.map_err(|e| MatError::BadValue {
            path: self.path.to_path_buf(),
            name,
            message: e.to_string(),
        })
    }

    /// A vector of `len` entries, stored as a column or a row, dense or sparse.
    fn vector(&mut self, name: &'static str, len: usize) -> Result<Vec<f64>, MatError> {
        let numeric = self.require(name)?;
        let shape = numeric.shape();
        if !(shape == (len, 1) || shape == (1, len) || (len == 0 && shape.0 * shape.1 == 0)) {
            return Err(self.bad_shape(name, format!("{len} x 1"), shape));
        }
        Ok(match numeric {
            Numeric::Dense { values, .. } => values,
            Numeric::Sparse {
                rows,
                row_idx,
                col_ptr,
                values,
                ..
            } => {
                let mut dense = vec![0.0; len];
                for (j, w) in col_ptr.windows(2).enumerate() {
                    for k in w[0]..w[1] {
                        // a column (j = 0) or a row (row_idx = 0)
                        let at = if rows == 1 { j } else { row_idx[k] };
                        if let Some(slot) = dense.get_mut(at) {
                            *slot += values[k];
                        }
                    }
                }
                dense
            }
        })
    }

    fn scalar(&self, name: &'static str, numeric: Numeric) -> Result<f64, MatError> {
        let shape = numeric.shape();
        match numeric {
            Numeric::Dense { values, .. } if values.len() == 1 => Ok(values[0]),
            Numeric::Sparse { values, .. } if shape == (1, 1) => {
                Ok(values.first().copied().unwrap_or(0.0))
            }
            _ => Err(self.bad_shape(name, "1 x 1".into(), shape)),
        }
    }

    fn bad_shape(&self, name: &'static str, expected: String, found: (usize, usize)) -> MatError {
        MatError::BadShape {
            path: self.path.to_path_buf(),
            name,
            expected,
            found: format!("{} x {}", found.0, found.1),
        }
    }
}

/// A CSC matrix from a pattern whose columns may be unsorted or hold duplicates (scipy
/// writes its non-canonical matrices as they are: 35 files of the test set have unsorted
/// columns): each column sorted by row, duplicates summed (scipy's meaning).
fn canonical_csc(
    field: Field,
    rows: usize,
    cols: usize,
    col_ptr: &[usize],
    row_idx: &[usize],
    values: &[f64],
) -> altdiff_core::Result<HostMatrix> {
    let well_formed = col_ptr.len() == cols + 1
        && col_ptr.first() == Some(&0)
        && col_ptr.windows(2).all(|w| w[0] <= w[1])
        && col_ptr
            .last()
            .is_some_and(|&nnz| nnz <= row_idx.len() && nnz <= values.len());
    if !well_formed {
        // let the library say what is wrong
        return HostMatrix::from_csc(
            field,
            rows,
            cols,
            col_ptr.to_vec(),
            row_idx.to_vec(),
            values.to_vec(),
        );
    }
    let (mut ptr, mut idx, mut val) = (
        Vec::with_capacity(cols + 1),
        Vec::with_capacity(row_idx.len()),
        Vec::with_capacity(values.len()),
    );
    ptr.push(0);
    let mut column: Vec<(usize, f64)> = Vec::new();
    for w in col_ptr.windows(2) {
        column.clear();
        column.extend((w[0]..w[1]).map(|k| (row_idx[k], values[k])));
        column.sort_by_key(|&(i, _)| i);
        for &(i, v) in &column {
            if idx.len() > *ptr.last().expect("a start") && idx.last() == Some(&i) {
                *val.last_mut().expect("an entry") += v;
            } else {
                idx.push(i);
                val.push(v);
            }
        }
        ptr.push(idx.len());
    }
    HostMatrix::from_csc(field, rows, cols, ptr, idx, val)
}

/// Every numeric class as `f64`; the class name when not numeric.
fn to_f64(value: MatlabType) -> Result<Vec<f64>, &'static str> {
    fn cast<T: Copy + Into<f64>>(v: Vec<T>) -> Vec<f64> {
        v.into_iter().map(Into::into).collect()
    }
    Ok(match value {
        MatlabType::F64(v) => v,
        MatlabType::F32(v) => cast(v),
        MatlabType::U8(v) => cast(v),
        MatlabType::I8(v) => cast(v),
        MatlabType::U16(v) => cast(v),
        MatlabType::I16(v) => cast(v),
        MatlabType::U32(v) => cast(v),
        MatlabType::I32(v) => cast(v),
        // 64-bit integers beyond 2^53 round, as in MATLAB's double()
        MatlabType::U64(v) => v.into_iter().map(|x| x as f64).collect(),
        MatlabType::I64(v) => v.into_iter().map(|x| x as f64).collect(),
        MatlabType::UTF8(_) | MatlabType::UTF16(_) => return Err("a character array"),
        MatlabType::BOOL(_) => return Err("a logical array"),
    })
}

/// The `.mat` files of `dir`, sorted by name.
///
/// # Errors
/// [`MatError::Io`] when the directory cannot be listed.
pub fn list_mat_files(dir: &Path) -> Result<Vec<PathBuf>, MatError> {
    let io = |source| MatError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("mat"))
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
