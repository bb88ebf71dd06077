//! [`DenseCholesky`]: faer's LL' of a dense symmetric positive definite matrix.

use altdiff_core::{Error, Result};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::triangular_solve;
use faer::{Mat, MatMut, MatRef, Par};

/// `dst += alpha W'W` on the lower triangle of `dst` only (a symmetric rank-k update).
fn lower_gram(dst: MatMut<'_, f64>, w: MatRef<'_, f64>, alpha: f64, par: Par) {
    triangular::matmul(
        dst,
        BlockStructure::TriangularLower,
        faer::Accum::Add,
        w.transpose(),
        BlockStructure::Rectangular,
        w,
        BlockStructure::Rectangular,
        alpha,
        par,
    );
}

/// Copies the strict lower triangle onto the upper one.
pub(crate) fn mirror_lower(mut m: MatMut<'_, f64>) {
    for j in 0..m.ncols() {
        for i in 0..j {
            m[(i, j)] = m[(j, i)];
        }
    }
}

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
        Self::from_owned(h.to_owned(), par)
    }

    /// Forms the lower triangle of `H = P + rho sum_i C_i'C_i` (a symmetric rank-k update per
    /// `C_i`) and factors it: the penalized Hessian of ADMM from `P` and the constraint
    /// blocks.
    ///
    /// # Errors
    /// [`Error::NotPositiveDefinite`] with the failing pivot.
    ///
    /// # Panics
    /// When the shapes disagree.
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par};
    /// let p = faer::mat![[1.0, 0.0], [0.0, 1.0]];
    /// let a = faer::mat![[1.0, 1.0]];
    /// let chol = DenseCholesky::penalized(p.as_ref(), &[a.as_ref()], 2.0, Par::Seq)?;
    /// let mut x = faer::mat![[3.0], [3.0]]; // H = [[3, 2], [2, 3]], H [0.6, 0.6]' = [3, 3]'
    /// chol.solve_in_place(x.as_mut(), Par::Seq);
    /// assert!((x[(0, 0)] - 0.6).abs() < 1e-12);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn penalized(
        p: MatRef<'_, f64>,
        blocks: &[MatRef<'_, f64>],
        rho: f64,
        par: Par,
    ) -> Result<Self> {
        let mut h = p.to_owned();
        for block in blocks {
            lower_gram(h.as_mut(), *block, rho, par);
        }
        Self::from_owned(h, par)
    }

    /// Whether `p + shift I` has a Cholesky factor (the convexity test of
    /// [`LinAlg::is_psd_with_shift`](altdiff_core::LinAlg::is_psd_with_shift), for every
    /// backend that keeps `P` as a faer matrix on the host).
    ///
    /// # Errors
    /// Only for other failures than a non-positive pivot.
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par};
    /// let p = faer::mat![[1.0, 0.0], [0.0, 0.0]];
    /// assert!(DenseCholesky::is_psd_with_shift(p.as_ref(), 1e-8, Par::Seq)?);
    /// assert!(!DenseCholesky::is_psd_with_shift((-&p).as_ref(), 1e-8, Par::Seq)?);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn is_psd_with_shift(p: MatRef<'_, f64>, shift: f64, par: Par) -> Result<bool> {
        let mut shifted = p.to_owned();
        for i in 0..shifted.nrows().min(shifted.ncols()) {
            shifted[(i, i)] += shift;
        }
        match Self::from_owned(shifted, par) {
            Ok(_) => Ok(true),
            Err(Error::NotPositiveDefinite { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Factors `h` in place, without a copy (only its lower triangle is read).
    ///
    /// # Errors
    /// [`Error::NotPositiveDefinite`] with the failing pivot.
    ///
    /// # Panics
    /// When `h` is not square.
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par};
    /// let chol = DenseCholesky::from_owned(faer::mat![[4.0, 2.0], [2.0, 3.0]], Par::Seq)?;
    /// assert_eq!(chol.dim(), 2);
    /// assert!(DenseCholesky::from_owned(faer::mat![[1.0, 2.0], [2.0, 1.0]], Par::Seq).is_err());
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn from_owned(h: Mat<f64>, par: Par) -> Result<Self> {
        assert_eq!(h.nrows(), h.ncols(), "DenseCholesky: H must be square");
        let n = h.nrows();
        let mut l = h;
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

    /// `M = C H^-1 C'` (r x r) for `C` (r x n), and `K = H^-1 C'` when `with_k`:
    /// `W = L^-1 C'` by one triangular solve, the lower half of `W'W` and its mirror, then
    /// `K = L^-T W` (half the work of a solve and a product for `M`).
    ///
    /// # Panics
    /// When `C` does not have `n` columns.
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par};
    /// let chol = DenseCholesky::new(faer::mat![[2.0, 0.0], [0.0, 4.0]].as_ref(), Par::Seq)?;
    /// let (m, k) = chol.gram_inverse(faer::mat![[1.0, 2.0]].as_ref(), true, Par::Seq);
    /// assert!((m[(0, 0)] - 1.5).abs() < 1e-12); // 1/2 + 4/4
    /// assert!((k.unwrap()[(1, 0)] - 0.5).abs() < 1e-12);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn gram_inverse(
        &self,
        c: MatRef<'_, f64>,
        with_k: bool,
        par: Par,
    ) -> (Mat<f64>, Option<Mat<f64>>) {
        let (m, mut w) = self.gram_inverse_with_half(c, par);
        let k = with_k.then(|| {
            self.solve_lower_transposed_in_place(w.as_mut(), par);
            w
        });
        (m, k)
    }

    /// `M = C H^-1 C'` and the half `W = L^-1 C'` (n x r) it is formed from: `K = H^-1 C'` is
    /// `L^-T W` ([`DenseCholesky::solve_lower_transposed_in_place`]).
    ///
    /// # Panics
    /// When `C` does not have `n` columns.
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par};
    /// let chol = DenseCholesky::new(faer::mat![[4.0, 0.0], [0.0, 1.0]].as_ref(), Par::Seq)?;
    /// let (m, mut w) = chol.gram_inverse_with_half(faer::mat![[2.0, 1.0]].as_ref(), Par::Seq);
    /// assert!((m[(0, 0)] - 2.0).abs() < 1e-12); // 4/4 + 1/1
    /// chol.solve_lower_transposed_in_place(w.as_mut(), Par::Seq); // K = H^-1 C'
    /// assert!((w[(0, 0)] - 0.5).abs() < 1e-12 && (w[(1, 0)] - 1.0).abs() < 1e-12);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn gram_inverse_with_half(&self, c: MatRef<'_, f64>, par: Par) -> (Mat<f64>, Mat<f64>) {
        assert_eq!(c.ncols(), self.dim(), "DenseCholesky: C columns");
        let mut w = c.transpose().to_owned();
        triangular_solve::solve_lower_triangular_in_place(self.l.as_ref(), w.as_mut(), par);
        let r = c.nrows();
        let mut m = Mat::zeros(r, r);
        lower_gram(m.as_mut(), w.as_ref(), 1.0, par);
        mirror_lower(m.as_mut());
        (m, w)
    }

    /// `rhs = L^-T rhs` (one triangular solve, any number of columns).
    ///
    /// # Panics
    /// When `rhs` does not have `n` rows.
    pub fn solve_lower_transposed_in_place(&self, rhs: MatMut<'_, f64>, par: Par) {
        assert_eq!(rhs.nrows(), self.dim(), "DenseCholesky: rhs rows");
        triangular_solve::solve_upper_triangular_in_place(self.l.transpose(), rhs, par);
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
