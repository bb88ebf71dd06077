//! [`DenseCholesky`]: faer's LL' of a dense symmetric positive definite matrix.

use altdiff_core::{Error, Result};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::{Mat, MatMut, MatRef, Par};

/// The lower Cholesky factor `L` of `H = L L'`, computed once and reused for every solve.
///
/// # Example
/// ```
/// use altdiff_faer::{DenseCholesky, Par};
/// let h = faer::mat![[4.0, 2.0], [2.0, 3.0]];
/// let chol = DenseCholesky::new(h.as_ref(), Par::Seq)?;
/// let mut x = faer::mat![[6.0], [5.0]];
/// chol.solve_in_place(x.as_mut(), Par::Seq);
/// assert!((x[(0, 0)] - 1.0).abs() < 1e-12 && (x[(1, 0)] - 1.0).abs() < 1e-12);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct DenseCholesky {
    l: Mat<f64>,
}

impl DenseCholesky {
    /// Factors `h` (only its lower triangle is read).
    ///
    /// # Errors
    /// [`Error::NotPositiveDefinite`] with the failing pivot.
    ///
    /// # Panics
    /// When `h` is not square.
    pub fn new(h: MatRef<'_, f64>, par: Par) -> Result<Self> {
        assert_eq!(h.nrows(), h.ncols(), "DenseCholesky: H must be square");
        let n = h.nrows();
        let mut l = h.to_owned();
        let mut mem = MemBuffer::new(llt::factor::cholesky_in_place_scratch::<f64>(
            n,
            par,
            Default::default(),
        ));
        llt::factor::cholesky_in_place(
            l.as_mut(),
            Default::default(),
            par,
            MemStack::new(&mut mem),
            Default::default(),
        )
        .map_err(|llt::factor::LltError::NonPositivePivot { index }| {
            Error::NotPositiveDefinite { pivot: Some(index) }
        })?;
        Ok(Self { l })
    }

    /// The order `n` of `H`.
    pub fn dim(&self) -> usize {
        self.l.nrows()
    }

    /// `rhs = H^-1 rhs` (two triangular solves, any number of columns).
    ///
    /// # Panics
    /// When `rhs` does not have `n` rows.
    pub fn solve_in_place(&self, rhs: MatMut<'_, f64>, par: Par) {
        assert_eq!(rhs.nrows(), self.dim(), "DenseCholesky: rhs rows");
        let mut mem = MemBuffer::new(llt::solve::solve_in_place_scratch::<f64>(
            self.dim(),
            rhs.ncols(),
            par,
        ));
        llt::solve::solve_in_place(self.l.as_ref(), rhs, par, MemStack::new(&mut mem));
    }
}
