//! Host-side (plain `Vec<f64>`) problem data and its validation.

use crate::{Error, Field, Result};

/// A matrix on the host with the field it stands for: dense (column-major) or sparse
/// (compressed sparse columns, CSC, as scipy's `csc_matrix` and MATLAB's sparse arrays).
///
/// A sparse matrix keeps its pattern: sparse backends take it as is (no dense copy), dense
/// backends expand it.
///
/// # Example
/// ```
/// use altdiff_core::{Field, HostMatrix};
/// let a = HostMatrix::from_rows(Field::A, &[vec![1.0, 2.0, 3.0]])?;
/// assert_eq!((a.nrows(), a.ncols()), (1, 3));
/// assert_eq!(a.get(0, 2), 3.0);
/// // [[1, 0], [0, 2]] as CSC
/// let s = HostMatrix::from_csc(Field::P, 2, 2, vec![0, 1, 2], vec![0, 1], vec![1.0, 2.0])?;
/// assert_eq!((s.nnz(), s.get(1, 1), s.get(0, 1)), (2, 2.0, 0.0));
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HostMatrix {
    nrows: usize,
    ncols: usize,
    storage: Storage,
}

#[derive(Clone, Debug, PartialEq)]
enum Storage {
    Dense(Vec<f64>),
    Csc(Csc),
}

/// A borrowed compressed-sparse-column matrix: column `j` holds the rows
/// `row_idx[col_ptr[j]..col_ptr[j + 1]]` (strictly increasing) with the same `values`.
///
/// # Example
/// ```
/// use altdiff_core::{Field, HostMatrix};
/// let s = HostMatrix::from_triplets(Field::G, 2, 2, &[(1, 0, 3.0), (0, 1, 4.0)])?;
/// let csc = s.csc().unwrap();
/// assert_eq!((csc.col_ptr, csc.row_idx, csc.values), (&[0, 1, 2][..], &[1, 0][..], &[3.0, 4.0][..]));
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct CscRef<'a> {
    /// Column starts, `ncols + 1` entries, from 0 to `nnz`.
    pub col_ptr: &'a [usize],
    /// Row index of every stored entry.
    pub row_idx: &'a [usize],
    /// Value of every stored entry.
    pub values: &'a [f64],
}

#[derive(Clone, Debug, PartialEq)]
struct Csc {
    col_ptr: Vec<usize>,
    row_idx: Vec<usize>,
    values: Vec<f64>,
}

impl Csc {
    fn as_ref(&self) -> CscRef<'_> {
        CscRef {
            col_ptr: &self.col_ptr,
            row_idx: &self.row_idx,
            values: &self.values,
        }
    }
}

impl CscRef<'_> {
    /// The stored entries `(row, col, value)`, column by column.
    pub fn entries(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        self.col_ptr
            .windows(2)
            .enumerate()
            .flat_map(move |(j, w)| (w[0]..w[1]).map(move |k| (self.row_idx[k], j, self.values[k])))
    }
}

impl HostMatrix {
    /// A matrix from column-major data.
    ///
    /// # Errors
    /// [`Error::Dimension`] when `data.len() != nrows * ncols`.
    pub fn from_col_major(
        field: Field,
        nrows: usize,
        ncols: usize,
        data: Vec<f64>,
    ) -> Result<Self> {
        check_len(field, nrows, ncols, data.len())?;
        Ok(Self::dense(nrows, ncols, data))
    }

    fn dense(nrows: usize, ncols: usize, data: Vec<f64>) -> Self {
        Self {
            nrows,
            ncols,
            storage: Storage::Dense(data),
        }
    }

    /// A sparse matrix from compressed sparse columns (see [`CscRef`]).
    ///
    /// # Errors
    /// [`Error::Sparse`] naming the field when the structure is malformed: `col_ptr` not of
    /// length `ncols + 1`, not starting at 0, decreasing, or not ending at the number of
    /// entries; a row index out of range or not strictly increasing within its column;
    /// `row_idx` and `values` of different lengths.
    pub fn from_csc(
        field: Field,
        nrows: usize,
        ncols: usize,
        col_ptr: Vec<usize>,
        row_idx: Vec<usize>,
        values: Vec<f64>,
    ) -> Result<Self> {
        let fail = |reason: String| Err(Error::Sparse { field, reason });
        if col_ptr.len() != ncols + 1 {
            return fail(format!(
                "col_ptr has {} entries, expected ncols + 1 = {}",
                col_ptr.len(),
                ncols + 1
            ));
        }
        if row_idx.len() != values.len() {
            return fail(format!(
                "{} row indices but {} values",
                row_idx.len(),
                values.len()
            ));
        }
        if col_ptr[0] != 0 || col_ptr[ncols] != values.len() {
            return fail(format!(
                "col_ptr must run from 0 to the number of entries {}, got {}..{}",
                values.len(),
                col_ptr[0],
                col_ptr[ncols]
            ));
        }
        // every pointer checked before any is used: with col_ptr monotone and ending at the
        // number of entries, every column's range lies inside row_idx
        if let Some(j) = col_ptr.windows(2).position(|w| w[0] > w[1]) {
            return fail(format!(
                "col_ptr decreases at column {j} ({} then {})",
                col_ptr[j],
                col_ptr[j + 1]
            ));
        }
        for (j, w) in col_ptr.windows(2).enumerate() {
            let rows = &row_idx[w[0]..w[1]];
            if let Some(&i) = rows.iter().find(|&&i| i >= nrows) {
                return fail(format!("row index {i} in column {j} is not below {nrows}"));
            }
            if rows.windows(2).any(|r| r[0] >= r[1]) {
                return fail(format!(
                    "row indices of column {j} are not strictly increasing"
                ));
            }
        }
        Ok(Self {
            nrows,
            ncols,
            storage: Storage::Csc(Csc {
                col_ptr,
                row_idx,
                values,
            }),
        })
    }

    /// A sparse matrix from `(row, col, value)` triplets in any order; duplicates are summed.
    ///
    /// # Errors
    /// [`Error::Sparse`] when an index is out of range.
    pub fn from_triplets(
        field: Field,
        nrows: usize,
        ncols: usize,
        triplets: &[(usize, usize, f64)],
    ) -> Result<Self> {
        if let Some(&(i, j, _)) = triplets.iter().find(|(i, j, _)| *i >= nrows || *j >= ncols) {
            return Err(Error::Sparse {
                field,
                reason: format!("entry ({i}, {j}) is outside {nrows} x {ncols}"),
            });
        }
        let mut sorted = triplets.to_vec();
        sorted.sort_unstable_by_key(|&(i, j, _)| (j, i));
        let mut col_ptr = vec![0; ncols + 1];
        let (mut row_idx, mut values) = (Vec::new(), Vec::<f64>::new());
        let mut last = None;
        for (i, j, v) in sorted {
            if last == Some((i, j)) {
                *values.last_mut().expect("a previous entry") += v;
                continue;
            }
            last = Some((i, j));
            row_idx.push(i);
            values.push(v);
            col_ptr[j + 1] += 1;
        }
        for j in 0..ncols {
            col_ptr[j + 1] += col_ptr[j];
        }
        Self::from_csc(field, nrows, ncols, col_ptr, row_idx, values)
    }

    /// The nonzero entries of a dense matrix as a sparse one (a sparse matrix is kept).
    #[must_use]
    pub fn to_sparse(&self) -> Self {
        match &self.storage {
            Storage::Csc(_) => self.clone(),
            Storage::Dense(data) => {
                let mut col_ptr = vec![0];
                let (mut row_idx, mut values) = (Vec::new(), Vec::new());
                for column in data.chunks_exact(self.nrows.max(1)).take(self.ncols) {
                    for (i, &v) in column.iter().enumerate() {
                        if v != 0.0 {
                            row_idx.push(i);
                            values.push(v);
                        }
                    }
                    col_ptr.push(values.len());
                }
                col_ptr.resize(self.ncols + 1, values.len());
                Self {
                    nrows: self.nrows,
                    ncols: self.ncols,
                    storage: Storage::Csc(Csc {
                        col_ptr,
                        row_idx,
                        values,
                    }),
                }
            }
        }
    }

    /// Whether the matrix is stored sparse.
    pub fn is_sparse(&self) -> bool {
        matches!(self.storage, Storage::Csc(_))
    }

    /// The compressed columns of a sparse matrix (`None` when dense).
    pub fn csc(&self) -> Option<CscRef<'_>> {
        match &self.storage {
            Storage::Csc(csc) => Some(csc.as_ref()),
            Storage::Dense(_) => None,
        }
    }

    /// The number of stored entries (`nrows * ncols` when dense).
    pub fn nnz(&self) -> usize {
        match &self.storage {
            Storage::Dense(data) => data.len(),
            Storage::Csc(csc) => csc.values.len(),
        }
    }

    /// The stored values: column-major entries when dense, the CSC values when sparse.
    pub fn values(&self) -> &[f64] {
        match &self.storage {
            Storage::Dense(data) => data,
            Storage::Csc(csc) => &csc.values,
        }
    }

    /// `y = self * x` (`x` of length `ncols`).
    ///
    /// # Panics
    /// When `x.len() != ncols`.
    pub fn mul_vec(&self, x: &[f64]) -> Vec<f64> {
        assert_eq!(x.len(), self.ncols, "mul_vec: x has the wrong length");
        let mut y = vec![0.0; self.nrows];
        self.for_each_entry(|i, j, v| y[i] += v * x[j]);
        y
    }

    /// Replaces every stored value `v` at `(row, col)` by `f(row, col, v)` (the pattern of a
    /// sparse matrix stays).
    pub fn map_entries(&mut self, mut f: impl FnMut(usize, usize, f64) -> f64) {
        let nrows = self.nrows.max(1);
        match &mut self.storage {
            Storage::Dense(data) => {
                for (k, v) in data.iter_mut().enumerate() {
                    *v = f(k % nrows, k / nrows, *v);
                }
            }
            Storage::Csc(csc) => {
                for j in 0..self.ncols {
                    for k in csc.col_ptr[j]..csc.col_ptr[j + 1] {
                        csc.values[k] = f(csc.row_idx[k], j, csc.values[k]);
                    }
                }
            }
        }
    }

    /// Calls `f(row, col, value)` for every stored entry, column by column.
    pub fn for_each_entry(&self, mut f: impl FnMut(usize, usize, f64)) {
        match &self.storage {
            Storage::Dense(data) => {
                for (k, &v) in data.iter().enumerate() {
                    f(k % self.nrows, k / self.nrows, v);
                }
            }
            Storage::Csc(csc) => csc.as_ref().entries().for_each(|(i, j, v)| f(i, j, v)),
        }
    }

    /// A matrix from row-major data.
    ///
    /// # Errors
    /// [`Error::Dimension`] when `data.len() != nrows * ncols`.
    pub fn from_row_major(field: Field, nrows: usize, ncols: usize, data: &[f64]) -> Result<Self> {
        check_len(field, nrows, ncols, data.len())?;
        Ok(Self::from_fn(nrows, ncols, |i, j| data[i * ncols + j]))
    }

    /// A matrix from its rows (all of one length). No rows gives a `0 x 0` matrix.
    ///
    /// # Errors
    /// [`Error::RaggedRows`] when rows differ in length.
    pub fn from_rows(field: Field, rows: &[Vec<f64>]) -> Result<Self> {
        let ncols = rows.first().map_or(0, Vec::len);
        if let Some((row, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != ncols) {
            return Err(Error::RaggedRows {
                field,
                row,
                expected: ncols,
                got: r.len(),
            });
        }
        Ok(Self::from_fn(rows.len(), ncols, |i, j| rows[i][j]))
    }

    /// A matrix with entries `f(row, col)`.
    pub fn from_fn(nrows: usize, ncols: usize, mut f: impl FnMut(usize, usize) -> f64) -> Self {
        let mut data = Vec::with_capacity(nrows * ncols);
        for j in 0..ncols {
            for i in 0..nrows {
                data.push(f(i, j));
            }
        }
        Self::dense(nrows, ncols, data)
    }

    /// An all-zero (dense) matrix.
    pub fn zeros(nrows: usize, ncols: usize) -> Self {
        Self::dense(nrows, ncols, vec![0.0; nrows * ncols])
    }

    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.nrows
    }

    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// The entry at `(row, col)`.
    ///
    /// # Panics
    /// When the index is out of bounds.
    pub fn get(&self, row: usize, col: usize) -> f64 {
        assert!(row < self.nrows && col < self.ncols, "index out of bounds");
        match &self.storage {
            Storage::Dense(data) => data[col * self.nrows + row],
            Storage::Csc(csc) => {
                let (start, end) = (csc.col_ptr[col], csc.col_ptr[col + 1]);
                csc.row_idx[start..end]
                    .binary_search(&row)
                    .map_or(0.0, |k| csc.values[start + k])
            }
        }
    }

    /// The entries, column-major (a sparse matrix is expanded: `nrows * ncols` values).
    pub fn col_major(&self) -> std::borrow::Cow<'_, [f64]> {
        match &self.storage {
            Storage::Dense(data) => std::borrow::Cow::Borrowed(data),
            Storage::Csc(_) => {
                let mut data = vec![0.0; self.nrows * self.ncols];
                self.for_each_entry(|i, j, v| data[j * self.nrows + i] = v);
                std::borrow::Cow::Owned(data)
            }
        }
    }

    /// The rows, as nested vectors (for JSON output).
    pub fn to_rows(&self) -> Vec<Vec<f64>> {
        (0..self.nrows)
            .map(|i| (0..self.ncols).map(|j| self.get(i, j)).collect())
            .collect()
    }

    /// Resizes an empty matrix (0 rows or no data) to `0 x ncols`, so that an absent block
    /// of constraints fits any `n`.
    #[must_use]
    pub fn or_empty_rows(self, ncols: usize) -> Self {
        if self.nrows == 0 && self.ncols != ncols {
            Self::zeros(0, ncols)
        } else {
            self
        }
    }

    fn check_finite(&self, field: Field) -> Result<()> {
        let mut found = None;
        self.for_each_entry(|i, j, v| {
            if found.is_none() && !v.is_finite() {
                found = Some((i, j, v));
            }
        });
        match found {
            Some((row, col, value)) => Err(Error::NonFinite {
                field,
                row,
                col,
                value,
            }),
            None => Ok(()),
        }
    }
}

fn check_len(field: Field, nrows: usize, ncols: usize, len: usize) -> Result<()> {
    if nrows.checked_mul(ncols) == Some(len) {
        Ok(())
    } else {
        Err(Error::Dimension {
            field,
            expected: (nrows, ncols),
            got: (len, 1),
        })
    }
}

fn check_vector_finite(field: Field, v: &[f64]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(row) => Err(Error::NonFinite {
            field,
            row,
            col: 0,
            value: v[row],
        }),
        None => Ok(()),
    }
}

/// Problem sizes: `n` variables, `p` equalities, `m` inequalities.
///
/// # Example
/// ```
/// use altdiff_core::QpDims;
/// let d = QpDims { n: 3, p: 1, m: 2 };
/// assert_eq!(d.n + d.p + d.m, 6);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct QpDims {
    /// Number of variables.
    pub n: usize,
    /// Number of equality constraints (rows of `A`).
    pub p: usize,
    /// Number of inequality constraints (rows of `G`).
    pub m: usize,
}

/// Tolerance of the symmetry test of `P`: `|P_ij - P_ji| <= SYMMETRY_TOL * max(1, max|P|)`.
pub const SYMMETRY_TOL: f64 = 1e-10;

/// A whole QP on the host: minimize `1/2 x'Px + q'x` s.t. `Ax = b`, `Gx <= h`.
///
/// # Example
/// ```
/// use altdiff_core::{Field, HostMatrix, HostQp};
/// let qp = HostQp {
///     p: HostMatrix::from_rows(Field::P, &[vec![2.0, 0.0], vec![0.0, 2.0]])?,
///     q: vec![-2.0, -4.0],
///     a: HostMatrix::from_rows(Field::A, &[vec![1.0, 1.0]])?,
///     b: vec![1.0],
///     g: HostMatrix::zeros(0, 2),
///     h: vec![],
/// };
/// assert_eq!(qp.validate()?.n, 2);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HostQp {
    /// `P` (n x n), symmetric positive semidefinite.
    pub p: HostMatrix,
    /// `q` (n).
    pub q: Vec<f64>,
    /// `A` (p x n).
    pub a: HostMatrix,
    /// `b` (p).
    pub b: Vec<f64>,
    /// `G` (m x n).
    pub g: HostMatrix,
    /// `h` (m).
    pub h: Vec<f64>,
}

impl HostQp {
    /// Checks shapes, finiteness and the symmetry of `P`; returns the dimensions.
    ///
    /// # Errors
    /// [`Error::Dimension`], [`Error::NonFinite`] or [`Error::NotSymmetric`], naming the
    /// field.
    pub fn validate(&self) -> Result<QpDims> {
        let n = self.p.nrows();
        let dims = QpDims {
            n,
            p: self.a.nrows(),
            m: self.g.nrows(),
        };
        let expect = |field, m: &HostMatrix, shape: (usize, usize)| {
            if (m.nrows(), m.ncols()) == shape {
                Ok(())
            } else {
                Err(Error::Dimension {
                    field,
                    expected: shape,
                    got: (m.nrows(), m.ncols()),
                })
            }
        };
        expect(Field::P, &self.p, (n, n))?;
        expect(Field::A, &self.a, (dims.p, n))?;
        expect(Field::G, &self.g, (dims.m, n))?;
        for (field, v, len) in [
            (Field::Q, &self.q, n),
            (Field::B, &self.b, dims.p),
            (Field::H, &self.h, dims.m),
        ] {
            if v.len() != len {
                return Err(Error::Dimension {
                    field,
                    expected: (len, 1),
                    got: (v.len(), 1),
                });
            }
        }
        self.p.check_finite(Field::P)?;
        self.a.check_finite(Field::A)?;
        self.g.check_finite(Field::G)?;
        check_vector_finite(Field::Q, &self.q)?;
        check_vector_finite(Field::B, &self.b)?;
        check_vector_finite(Field::H, &self.h)?;
        check_symmetric(&self.p)?;
        Ok(dims)
    }

    /// The objective `1/2 x'Px + q'x` at `x`.
    ///
    /// # Panics
    /// When `x.len() != n`.
    pub fn objective(&self, x: &[f64]) -> f64 {
        assert_eq!(x.len(), self.q.len(), "x has the wrong length");
        let px = self.p.mul_vec(x);
        x.iter()
            .zip(px.iter().zip(&self.q))
            .map(|(xi, (pxi, qi))| xi * (0.5 * pxi + qi))
            .sum()
    }
}

/// Checks `P` for symmetry with [`SYMMETRY_TOL`] (entry by entry against the transpose;
/// a sparse `P` in time proportional to its entries).
fn check_symmetric(p: &HostMatrix) -> Result<()> {
    let scale = p.values().iter().fold(1.0_f64, |s, v| s.max(v.abs()));
    let mut worst = (0, 0, 0.0_f64);
    let mut consider = |i: usize, j: usize, d: f64| {
        if d.abs() > worst.2.abs() {
            worst = (i.max(j), i.min(j), if i > j { d } else { -d });
        }
    };
    match p.csc() {
        None => {
            for j in 0..p.ncols() {
                for i in j + 1..p.nrows() {
                    consider(i, j, p.get(i, j) - p.get(j, i));
                }
            }
        }
        Some(_) => {
            // every stored entry against its mirror (absent entries are zero)
            p.for_each_entry(|i, j, v| {
                if i != j {
                    consider(i, j, v - p.get(j, i));
                }
            });
        }
    }
    if worst.2.abs() > SYMMETRY_TOL * scale {
        Err(Error::NotSymmetric {
            row: worst.0,
            col: worst.1,
            difference: worst.2,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sparse_p() -> HostMatrix {
        // [[2, 1, 0], [1, 3, 0], [0, 0, 4]]
        HostMatrix::from_triplets(
            Field::P,
            3,
            3,
            &[
                (0, 0, 2.0),
                (1, 0, 1.0),
                (0, 1, 0.5),
                (0, 1, 0.5),
                (1, 1, 3.0),
                (2, 2, 4.0),
            ],
        )
        .unwrap()
    }

    #[test]
    fn triplets_sum_duplicates_and_match_dense() {
        let p = sparse_p();
        assert_eq!(p.nnz(), 5);
        let dense = HostMatrix::from_rows(
            Field::P,
            &[
                vec![2.0, 1.0, 0.0],
                vec![1.0, 3.0, 0.0],
                vec![0.0, 0.0, 4.0],
            ],
        )
        .unwrap();
        assert_eq!(p.col_major(), dense.col_major());
        assert_eq!(dense.to_sparse(), p);
        assert_eq!(p.mul_vec(&[1.0, 2.0, 3.0]), dense.mul_vec(&[1.0, 2.0, 3.0]));
        assert_eq!(p.mul_vec(&[1.0, 2.0, 3.0]), vec![4.0, 7.0, 12.0]);
    }

    #[test]
    fn malformed_csc_names_the_field_and_the_problem() {
        let bad = |col_ptr: Vec<usize>, rows: Vec<usize>, n_vals: usize| {
            let err =
                HostMatrix::from_csc(Field::G, 2, 2, col_ptr, rows, vec![1.0; n_vals]).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Sparse {
                        field: Field::G,
                        ..
                    }
                ),
                "{err}"
            );
            err.to_string()
        };
        assert!(bad(vec![0, 1], vec![0], 1).contains("col_ptr has 2 entries"));
        assert!(bad(vec![0, 1, 2], vec![0, 2], 2).contains("row index 2"));
        assert!(bad(vec![0, 2, 2], vec![1, 0], 2).contains("strictly increasing"));
        assert!(bad(vec![0, 1, 3], vec![0, 1], 2).contains("from 0 to"));
        assert!(bad(vec![0, 1, 2], vec![0, 1], 1).contains("row indices but"));
        // a pointer beyond the stored entries that comes back down to their number: checked
        // before any column is sliced (this panicked in the slice)
        assert!(bad(vec![0, 5, 2], vec![0, 1], 2).contains("col_ptr decreases at column 1"));
        assert!(bad(vec![0, usize::MAX, 2], vec![0, 1], 2).contains("decreases"));
        let err = HostMatrix::from_triplets(Field::A, 2, 2, &[(0, 2, 1.0)]).unwrap_err();
        assert!(err.to_string().contains("(0, 2)"), "{err}");
    }

    #[test]
    fn sparse_validation_finds_asymmetry_and_nan() {
        let qp = |p: HostMatrix| HostQp {
            p,
            q: vec![0.0; 3],
            a: HostMatrix::zeros(0, 3),
            b: vec![],
            g: HostMatrix::zeros(0, 3),
            h: vec![],
        };
        assert_eq!(qp(sparse_p()).validate().unwrap().n, 3);
        // an entry without its mirror
        let lower_only =
            HostMatrix::from_triplets(Field::P, 3, 3, &[(0, 0, 1.0), (2, 0, 0.5)]).unwrap();
        let err = qp(lower_only).validate().unwrap_err();
        assert!(
            matches!(err, Error::NotSymmetric { row: 2, col: 0, difference } if (difference - 0.5).abs() < 1e-15),
            "{err}"
        );
        let nan = HostMatrix::from_triplets(Field::P, 3, 3, &[(1, 1, f64::NAN)]).unwrap();
        let err = qp(nan).validate().unwrap_err();
        assert!(
            matches!(
                err,
                Error::NonFinite {
                    field: Field::P,
                    row: 1,
                    col: 1,
                    ..
                }
            ),
            "{err}"
        );
        let objective = qp(sparse_p()).objective(&[1.0, 0.0, 1.0]);
        assert!((objective - 3.0).abs() < 1e-15);
    }
}
