//! [`CandleOp`] and [`CandleFactor`]: the operators and the factorization of the candle
//! backend, each a device tensor with the host data it came from.

use altdiff_faer::DenseCholesky;
use candle_core::Tensor;
use faer::Mat;

/// An operator (`P`, `A`, `G`) of [`CandleBackend`](crate::CandleBackend): the device tensor
/// the products use, and an `f64` copy on the host, from which `H` is formed and factored (candle
/// has no factorization) and which validation and equilibration read without a transfer.
///
/// The host copy holds the same values as the tensor (exactly: `f32` values are exact in
/// `f64`).
///
/// # Example
/// ```
/// use altdiff_candle::CandleBackend;
/// use altdiff_core::LinAlg;
/// let be = CandleBackend::<f32>::cpu();
/// let op = be.op_from_col_major(2, 3, &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0])?;
/// assert_eq!(op.shape(), (2, 3));
/// assert_eq!(op.tensor().to_vec2::<f32>().unwrap(), [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CandleOp {
    pub(crate) tensor: Tensor,
    pub(crate) host: Mat<f64>,
}

impl CandleOp {
    /// The operator on the device: a `(rows, cols)` tensor in the backend's dtype.
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::CandleBackend;
    /// use altdiff_core::LinAlg;
    /// let be = CandleBackend::<f64>::cpu();
    /// let op = be.op_from_col_major(1, 2, &[1.0, 2.0])?;
    /// assert_eq!(op.tensor().dims(), &[1, 2]);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn tensor(&self) -> &Tensor {
        &self.tensor
    }

    /// `(rows, cols)`.
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::CandleBackend;
    /// use altdiff_core::LinAlg;
    /// let be = CandleBackend::<f64>::cpu();
    /// assert_eq!(be.op_from_col_major(0, 4, &[])?.shape(), (0, 4));
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn shape(&self) -> (usize, usize) {
        (self.host.nrows(), self.host.ncols())
    }
}

/// The factorization of `H = P + rho (A'A + G'G)` held by
/// [`CandleBackend`](crate::CandleBackend): the explicit inverse `H^-1` on the device (every
/// solve is one product with it) and the host Cholesky factor it was formed from, which
/// [`LinAlg::gram_inverse`](altdiff_core::LinAlg::gram_inverse) reuses (nothing is
/// factored twice).
///
/// # Example
/// ```
/// use altdiff_candle::CandleBackend;
/// use altdiff_core::LinAlg;
/// let be = CandleBackend::<f64>::cpu();
/// let p = be.op_from_col_major(2, 2, &[4.0, 0.0, 0.0, 16.0])?;
/// let none = be.op_from_col_major(0, 2, &[])?;
/// let factor = be.factor(&p, &none, &none, 1.0)?;
/// assert_eq!(factor.dim(), 2);
/// assert_eq!(factor.inverse().to_vec2::<f64>().unwrap(), [[0.25, 0.0], [0.0, 0.0625]]);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Debug)]
pub struct CandleFactor {
    pub(crate) inverse: Tensor,
    pub(crate) cholesky: DenseCholesky,
}

impl CandleFactor {
    /// `H^-1` on the device: an `(n, n)` symmetric tensor in the backend's dtype.
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::CandleBackend;
    /// use altdiff_core::LinAlg;
    /// let be = CandleBackend::<f32>::cpu();
    /// let p = be.op_from_col_major(1, 1, &[4.0])?;
    /// let none = be.op_from_col_major(0, 1, &[])?;
    /// let inverse = be.factor(&p, &none, &none, 1.0)?.inverse().to_vec2::<f32>().unwrap();
    /// assert_eq!(inverse, [[0.25]]);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn inverse(&self) -> &Tensor {
        &self.inverse
    }

    /// The host Cholesky factor of `H`, in `f64`.
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::CandleBackend;
    /// use altdiff_core::LinAlg;
    /// let be = CandleBackend::<f64>::cpu();
    /// let p = be.op_from_col_major(1, 1, &[4.0])?;
    /// let none = be.op_from_col_major(0, 1, &[])?;
    /// let factor = be.factor(&p, &none, &none, 1.0)?;
    /// let mut x = faer::mat![[8.0]];
    /// factor.cholesky().solve_in_place(x.as_mut(), altdiff_faer::Par::Seq);
    /// assert_eq!(x[(0, 0)], 2.0);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn cholesky(&self) -> &DenseCholesky {
        &self.cholesky
    }

    /// The order `n` of `H`.
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::CandleBackend;
    /// use altdiff_core::LinAlg;
    /// let be = CandleBackend::<f64>::cpu();
    /// let p = be.op_from_col_major(1, 1, &[4.0])?;
    /// let none = be.op_from_col_major(0, 1, &[])?;
    /// assert_eq!(be.factor(&p, &none, &none, 1.0)?.dim(), 1);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn dim(&self) -> usize {
        self.cholesky.dim()
    }
}
