//! Host-side (plain `Vec<f64>`) problem data and its validation.

use crate::{Error, Field, Result};

/// A dense matrix on the host, column-major, with the field it stands for.
///
/// # Example
/// ```
/// use altdiff_core::{Field, HostMatrix};
/// let a = HostMatrix::from_rows(Field::A, &[vec![1.0, 2.0, 3.0]])?;
/// assert_eq!((a.nrows(), a.ncols()), (1, 3));
/// assert_eq!(a.get(0, 2), 3.0);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HostMatrix {
    nrows: usize,
    ncols: usize,
    data: Vec<f64>,
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
        Ok(Self { nrows, ncols, data })
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
        Self { nrows, ncols, data }
    }

    /// An all-zero matrix.
    pub fn zeros(nrows: usize, ncols: usize) -> Self {
        Self {
            nrows,
            ncols,
            data: vec![0.0; nrows * ncols],
        }
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
        self.data[col * self.nrows + row]
    }

    /// The entries, column-major.
    pub fn col_major(&self) -> &[f64] {
        &self.data
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
        if self.nrows == 0 {
            Self::zeros(0, ncols)
        } else {
            self
        }
    }

    fn check_finite(&self, field: Field) -> Result<()> {
        for j in 0..self.ncols {
            for i in 0..self.nrows {
                let value = self.get(i, j);
                if !value.is_finite() {
                    return Err(Error::NonFinite {
                        field,
                        row: i,
                        col: j,
                        value,
                    });
                }
            }
        }
        Ok(())
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
        let n = self.q.len();
        assert_eq!(x.len(), n, "x has the wrong length");
        (0..n)
            .map(|j| {
                let px: f64 = x
                    .iter()
                    .enumerate()
                    .map(|(i, xi)| self.p.get(i, j) * xi)
                    .sum();
                x[j] * (0.5 * px + self.q[j])
            })
            .sum()
    }
}

/// Checks `P` for symmetry with [`SYMMETRY_TOL`].
fn check_symmetric(p: &HostMatrix) -> Result<()> {
    let n = p.nrows();
    let scale = p.col_major().iter().fold(1.0_f64, |s, v| s.max(v.abs()));
    let mut worst = (0, 0, 0.0_f64);
    for j in 0..n {
        for i in j + 1..n {
            let d = p.get(i, j) - p.get(j, i);
            if d.abs() > worst.2.abs() {
                worst = (i, j, d);
            }
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
