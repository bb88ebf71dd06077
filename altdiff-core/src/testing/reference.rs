//! [`RefBackend`]: the naive reference implementation of [`LinAlg`].

use crate::{Accum, Error, LinAlg, Result, Trans, kernels};

/// A dense column-major `f64` matrix of the reference backend.
///
/// # Example
/// ```
/// use altdiff_core::testing::RefMat;
/// let m = RefMat::from_col_major(2, 1, vec![1.0, 2.0]);
/// assert_eq!(m.get(1, 0), 2.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RefMat {
    nrows: usize,
    ncols: usize,
    data: Vec<f64>,
}

impl RefMat {
    /// A matrix from column-major data.
    ///
    /// # Panics
    /// When `data.len() != nrows * ncols`.
    pub fn from_col_major(nrows: usize, ncols: usize, data: Vec<f64>) -> Self {
        assert_eq!(data.len(), nrows * ncols, "data length");
        Self { nrows, ncols, data }
    }

    /// The entry at `(i, j)`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[j * self.nrows + i]
    }

    fn at(&mut self, i: usize, j: usize) -> &mut f64 {
        &mut self.data[j * self.nrows + i]
    }
}

/// The lower Cholesky factor `L` of `H = L L'`.
#[derive(Clone, Debug)]
pub struct RefFactor {
    l: RefMat,
}

/// The reference backend: textbook loops, no blocking, no dependencies. It is the oracle of
/// the conformance suite and the worked example of "Writing a backend".
///
/// # Example
/// ```
/// use altdiff_core::{LinAlg, testing::RefBackend};
/// let be = RefBackend;
/// let h = be.op_from_col_major(2, 2, &[4.0, 2.0, 2.0, 3.0])?;
/// let empty = be.op_from_col_major(0, 2, &[])?;
/// let f = be.factor(&h, &empty, &empty, 1.0)?;
/// let mut x = be.mat_from_col_major(2, 1, &[6.0, 5.0])?;
/// be.solve_in_place(&f, &mut x)?;
/// assert!((be.to_col_major(&x)?[0] - 1.0).abs() < 1e-12);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RefBackend;

impl LinAlg for RefBackend {
    crate::dense_op_grads!();

    type Real = f64;
    type Mat = RefMat;
    type Op = RefMat;
    type Factor = RefFactor;

    fn name(&self) -> &'static str {
        "reference"
    }

    fn zeros(&self, nrows: usize, ncols: usize) -> Result<RefMat> {
        Ok(RefMat::from_col_major(
            nrows,
            ncols,
            vec![0.0; nrows * ncols],
        ))
    }

    fn mat_from_col_major(&self, nrows: usize, ncols: usize, data: &[f64]) -> Result<RefMat> {
        Ok(RefMat::from_col_major(nrows, ncols, data.to_vec()))
    }

    fn to_col_major(&self, m: &RefMat) -> Result<Vec<f64>> {
        Ok(m.data.clone())
    }

    fn shape(&self, m: &RefMat) -> (usize, usize) {
        (m.nrows, m.ncols)
    }

    fn op_from_col_major(&self, nrows: usize, ncols: usize, data: &[f64]) -> Result<RefMat> {
        self.mat_from_col_major(nrows, ncols, data)
    }

    fn op_to_col_major(&self, op: &RefMat) -> Result<Vec<f64>> {
        self.to_col_major(op)
    }

    fn op_shape(&self, op: &RefMat) -> (usize, usize) {
        self.shape(op)
    }

    fn apply(
        &self,
        dst: &mut RefMat,
        accum: Accum,
        op: &RefMat,
        trans: Trans,
        rhs: &RefMat,
        alpha: f64,
    ) -> Result<()> {
        let (rows, inner) = match trans {
            Trans::No => (op.nrows, op.ncols),
            Trans::Yes => (op.ncols, op.nrows),
        };
        assert_eq!(
            (dst.nrows, dst.ncols),
            (rows, rhs.ncols),
            "apply: dst shape"
        );
        assert_eq!(rhs.nrows, inner, "apply: rhs rows");
        for j in 0..rhs.ncols {
            for i in 0..rows {
                let mut sum = 0.0;
                for l in 0..inner {
                    let o = match trans {
                        Trans::No => op.get(i, l),
                        Trans::Yes => op.get(l, i),
                    };
                    sum += o * rhs.get(l, j);
                }
                let d = dst.at(i, j);
                *d = match accum {
                    Accum::Replace => alpha * sum,
                    Accum::Add => *d + alpha * sum,
                };
            }
        }
        Ok(())
    }

    fn gemm_nt(
        &self,
        dst: &mut RefMat,
        accum: Accum,
        lhs: &RefMat,
        rhs: &RefMat,
        alpha: f64,
    ) -> Result<()> {
        assert_eq!(lhs.ncols, rhs.ncols, "gemm_nt: inner dimensions");
        let rhs_t = RefMat::from_col_major(
            rhs.ncols,
            rhs.nrows,
            (0..rhs.nrows)
                .flat_map(|i| (0..rhs.ncols).map(move |l| (i, l)))
                .map(|(i, l)| rhs.get(i, l))
                .collect(),
        );
        self.apply(dst, accum, lhs, Trans::No, &rhs_t, alpha)
    }

    fn factor(&self, p: &RefMat, a: &RefMat, g: &RefMat, rho: f64) -> Result<RefFactor> {
        self.factor_shifted(p, a, g, rho, 0.0)
    }

    fn factor_shifted(
        &self,
        p: &RefMat,
        a: &RefMat,
        g: &RefMat,
        rho: f64,
        shift: f64,
    ) -> Result<RefFactor> {
        let n = p.nrows;
        let mut h = p.clone();
        (0..n).for_each(|i| h.data[i * n + i] += shift);
        for op in [a, g] {
            let mut gram = self.zeros(n, n)?;
            self.apply(&mut gram, Accum::Replace, op, Trans::Yes, op, rho)?;
            for (hv, gv) in h.data.iter_mut().zip(&gram.data) {
                *hv += gv;
            }
        }
        cholesky(&h).map(|l| RefFactor { l })
    }

    fn factor_pivots(&self, factor: &RefFactor) -> Result<Option<Vec<f64>>> {
        let l = &factor.l;
        Ok(Some(
            (0..l.nrows)
                .map(|i| l.data[i * l.nrows + i] * l.data[i * l.nrows + i])
                .collect(),
        ))
    }

    fn solve_in_place(&self, factor: &RefFactor, rhs: &mut RefMat) -> Result<()> {
        let l = &factor.l;
        let n = l.nrows;
        for j in 0..rhs.ncols {
            for i in 0..n {
                let mut v = rhs.get(i, j);
                for k in 0..i {
                    v -= l.get(i, k) * rhs.get(k, j);
                }
                *rhs.at(i, j) = v / l.get(i, i);
            }
            for i in (0..n).rev() {
                let mut v = rhs.get(i, j);
                for k in i + 1..n {
                    v -= l.get(k, i) * rhs.get(k, j);
                }
                *rhs.at(i, j) = v / l.get(i, i);
            }
        }
        Ok(())
    }

    fn axpby(&self, alpha: f64, x: &RefMat, beta: f64, y: &mut RefMat) -> Result<()> {
        assert_eq!((x.nrows, x.ncols), (y.nrows, y.ncols), "axpby: shapes");
        kernels::axpby(alpha, &x.data, beta, &mut y.data);
        Ok(())
    }

    fn proj_nonneg(&self, x: &mut RefMat) -> Result<()> {
        kernels::proj_nonneg(&mut x.data);
        Ok(())
    }

    fn dproj_nonneg(&self, at: &RefMat, m: &mut RefMat) -> Result<()> {
        assert_eq!(at.nrows, m.nrows, "dproj_nonneg: rows");
        assert!(
            at.ncols == 1 || at.ncols == m.ncols,
            "dproj_nonneg: columns"
        );
        let rows = m.nrows;
        for (j, col) in m.data.chunks_exact_mut(rows.max(1)).enumerate() {
            let jc = if at.ncols == 1 { 0 } else { j };
            kernels::dproj_nonneg(&at.data[jc * rows..(jc + 1) * rows], col);
        }
        Ok(())
    }

    fn norm_inf(&self, x: &RefMat) -> Result<f64> {
        Ok(kernels::norm_inf(&x.data))
    }

    fn dot(&self, x: &RefMat, y: &RefMat) -> Result<f64> {
        assert_eq!((x.nrows, x.ncols), (y.nrows, y.ncols), "dot: shapes");
        Ok(kernels::dot(&x.data, &y.data))
    }
}

/// Textbook Cholesky `H = L L'` (lower), failing on a non-positive pivot.
fn cholesky(h: &RefMat) -> Result<RefMat> {
    let n = h.nrows;
    let mut l = RefMat::from_col_major(n, n, vec![0.0; n * n]);
    for j in 0..n {
        let mut d = h.get(j, j);
        for k in 0..j {
            d -= l.get(j, k) * l.get(j, k);
        }
        if d.is_nan() || d <= 0.0 {
            return Err(Error::NotPositiveDefinite { pivot: Some(j) });
        }
        let djj = d.sqrt();
        *l.at(j, j) = djj;
        for i in j + 1..n {
            let mut v = h.get(i, j);
            for k in 0..j {
                v -= l.get(i, k) * l.get(j, k);
            }
            *l.at(i, j) = v / djj;
        }
    }
    Ok(l)
}
