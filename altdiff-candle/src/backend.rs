//! [`CandleBackend`]: `LinAlg` on candle tensors, with the one factorization on the host.

use core::marker::PhantomData;

use altdiff_core::{Accum, LinAlg, Result, Trans};
use altdiff_faer::{DenseCholesky, Par};
use candle_core::{DType, Device, Tensor};
use faer::Mat;

use crate::error::IntoCore;
use crate::{CandleFactor, CandleOp, CandleReal};

/// The candle backend: blocks are 2-D [`Tensor`]s of shape `(rows, cols)` on one candle
/// [`Device`] (CPU, or CUDA with the feature `cuda`), in the dtype of `T` (`f64` by default,
/// or `f32`).
///
/// Products, the solves with the uploaded inverse of `H` and the elementwise operations run on
/// the device; `H = P + rho (A'A + G'G)` is factored once on the host, in `f64`, by faer
/// (see the crate docs). Cloning is cheap (a candle `Device` is a handle).
///
/// # Panics
/// Like every backend, the [`LinAlg`] methods may panic on a shape mismatch between their
/// arguments (a bug of the caller: shapes are validated at setup), and on a block that is not
/// a 2-D tensor. Everything candle reports (a device error, a tensor of the wrong dtype or on
/// another device) is an [`Error::Backend`](altdiff_core::Error::Backend) instead.
///
/// # Example
/// ```
/// use altdiff_candle::CandleBackend;
/// use altdiff_core::{Accum, LinAlg, Trans};
/// let be = CandleBackend::<f64>::cpu();
/// let g = be.op_from_col_major(2, 2, &[1.0, 3.0, 2.0, 4.0])?; // [[1, 2], [3, 4]]
/// let x = be.mat_from_col_major(2, 1, &[1.0, 1.0])?;
/// let mut y = be.zeros(2, 1)?;
/// be.apply(&mut y, Accum::Replace, &g, Trans::Yes, &x, 2.0)?; // y = 2 G' x
/// assert_eq!(be.to_col_major(&y)?, vec![8.0, 12.0]);
/// assert_eq!(y.dims(), &[2, 1]);                               // a plain candle Tensor
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CandleBackend<T: CandleReal = f64> {
    device: Device,
    batch_invariant: bool,
    scalar: PhantomData<fn() -> T>,
}

impl<T: CandleReal> Default for CandleBackend<T> {
    fn default() -> Self {
        Self::cpu()
    }
}

impl<T: CandleReal> CandleBackend<T> {
    /// The backend on the given candle device.
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::CandleBackend;
    /// use candle_core::{DType, Device};
    /// let be = CandleBackend::<f32>::new(Device::Cpu);
    /// assert!(be.device().is_cpu());
    /// assert_eq!(be.dtype(), DType::F32);
    /// ```
    pub fn new(device: Device) -> Self {
        Self {
            device,
            batch_invariant: true,
            scalar: PhantomData,
        }
    }

    /// Whether the products round every column the same way whatever the number of columns
    /// of the block (on by default; it only acts on the CPU).
    ///
    /// candle's CPU product (the gemm crate) takes a matrix-vector path for a one-column
    /// right-hand side, which rounds differently from its path for several columns. The
    /// batch solver of altdiff-core promises that an element of a batch gets exactly what it
    /// gets alone, also once the batch has shrunk to that element, so by default this
    /// backend multiplies a one-column block as two copies of itself. That costs a second
    /// column: measured with the example `factor_upload`, a solve with `n = 1000` and one
    /// column takes 0.42 ms instead of 0.31 ms in `f64`, 0.39 ms instead of 0.12 ms in
    /// `f32`. Turn it off for single solves where only speed matters: results then agree with
    /// the batched ones to rounding instead of bit for bit.
    ///
    /// On CUDA, cuBLAS chooses its kernels by shape, and no such guarantee is made.
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::CandleBackend;
    /// let be = CandleBackend::<f32>::cpu();
    /// assert!(be.batch_invariance());
    /// assert!(!be.with_batch_invariance(false).batch_invariance());
    /// ```
    pub fn with_batch_invariance(mut self, on: bool) -> Self {
        self.batch_invariant = on;
        self
    }

    /// See [`CandleBackend::with_batch_invariance`].
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::CandleBackend;
    /// assert!(CandleBackend::<f64>::cpu().batch_invariance());
    /// ```
    pub fn batch_invariance(&self) -> bool {
        self.batch_invariant
    }

    /// The backend on the CPU.
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::CandleBackend;
    /// use altdiff_core::LinAlg;
    /// let be = CandleBackend::<f64>::cpu();
    /// assert_eq!(be.norm_inf(&be.mat_from_col_major(2, 1, &[1.0, -3.0])?)?, 3.0);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn cpu() -> Self {
        Self::new(Device::Cpu)
    }

    /// The backend on the CUDA device `ordinal`.
    ///
    /// The constructor exists with and without the feature `cuda`, so that code choosing the
    /// device at run time compiles the same either way (candle's own design).
    ///
    /// # Errors
    /// [`Error::Backend`](altdiff_core::Error::Backend) when the device cannot be opened, and
    /// always when this crate is built without the feature `cuda` (candle's
    /// `NotCompiledWithCudaSupport`).
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::CandleBackend;
    /// let gpu = CandleBackend::<f32>::cuda(0);
    /// # #[cfg(not(feature = "cuda"))]
    /// assert!(matches!(gpu, Err(altdiff_core::Error::Backend { backend: "candle", .. })));
    /// ```
    pub fn cuda(ordinal: usize) -> Result<Self> {
        Device::new_cuda(ordinal).into_core().map(Self::new)
    }

    /// The backend on the CUDA device `ordinal` when this crate is built with the feature
    /// `cuda` and a CUDA device is present, on the CPU otherwise.
    ///
    /// # Errors
    /// [`Error::Backend`](altdiff_core::Error::Backend) when a CUDA device is present but
    /// cannot be opened.
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::CandleBackend;
    /// let be = CandleBackend::<f64>::cuda_if_available(0)?;
    /// # #[cfg(not(feature = "cuda"))]
    /// assert!(be.device().is_cpu());
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn cuda_if_available(ordinal: usize) -> Result<Self> {
        Device::cuda_if_available(ordinal)
            .into_core()
            .map(Self::new)
    }

    /// The device every tensor of this backend lives on.
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::CandleBackend;
    /// assert!(CandleBackend::<f64>::cpu().device().is_cpu());
    /// ```
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype of this backend's tensors: `T::DTYPE`.
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::CandleBackend;
    /// assert_eq!(CandleBackend::<f64>::cpu().dtype(), candle_core::DType::F64);
    /// ```
    pub fn dtype(&self) -> DType {
        T::DTYPE
    }

    /// A `(nrows, ncols)` tensor on the device with entries `f(i, j)` (one upload).
    fn tensor_from_fn(
        &self,
        nrows: usize,
        ncols: usize,
        f: impl Fn(usize, usize) -> T,
    ) -> Result<Tensor> {
        let row_major: Vec<T> = (0..nrows)
            .flat_map(|i| (0..ncols).map(move |j| (i, j)))
            .map(|(i, j)| f(i, j))
            .collect();
        Tensor::from_vec(row_major, (nrows, ncols), &self.device).into_core()
    }

    /// `lhs * rhs` on the device; on the CPU with batch invariance (see
    /// [`CandleBackend::with_batch_invariance`]), a one-column `rhs` is multiplied as two
    /// copies of itself, so that it takes gemm's path for several columns.
    fn product(&self, lhs: &Tensor, rhs: &Tensor) -> Result<Tensor> {
        let (inner, cols) = dims2(rhs);
        if cols == 1 && self.batch_invariant && self.device.is_cpu() {
            let doubled = Tensor::cat(&[rhs, rhs], 1).into_core()?;
            debug_assert_eq!(dims2(&doubled), (inner, 2));
            lhs.matmul(&doubled)
                .and_then(|p| p.narrow(1, 0, 1))
                .and_then(|p| p.contiguous())
                .into_core()
        } else {
            lhs.matmul(rhs).into_core()
        }
    }

    /// A host `f64` matrix uploaded in the backend's dtype.
    fn upload(&self, m: &Mat<f64>) -> Result<Tensor> {
        self.tensor_from_fn(m.nrows(), m.ncols(), |i, j| T::of(m[(i, j)]))
    }
}

/// `(rows, cols)` of a 2-D tensor.
///
/// # Panics
/// When the tensor is not 2-D.
fn dims2(t: &Tensor) -> (usize, usize) {
    match *t.dims() {
        [r, c] => (r, c),
        ref dims => panic!("candle backend: expected a 2-D tensor, got shape {dims:?}"),
    }
}

fn scaled<T: CandleReal>(t: Tensor, alpha: T) -> Result<Tensor> {
    if alpha.is_one() {
        Ok(t)
    } else {
        t.affine(alpha.to_f64_lossy(), 0.0).into_core()
    }
}

/// `dst = [dst +] alpha * product` (`Replace` never reads `dst`).
fn accumulate<T: CandleReal>(
    dst: &mut Tensor,
    accum: Accum,
    product: Tensor,
    alpha: T,
) -> Result<()> {
    assert_eq!(
        dims2(dst),
        dims2(&product),
        "candle backend: destination shape"
    );
    let product = scaled(product, alpha)?;
    *dst = match accum {
        Accum::Replace => product,
        Accum::Add => (&*dst + product).into_core()?,
    };
    Ok(())
}

impl<T: CandleReal> LinAlg for CandleBackend<T> {
    altdiff_core::dense_op_grads!();

    type Real = T;
    type Mat = Tensor;
    type Op = CandleOp;
    type Factor = CandleFactor;

    fn name(&self) -> &'static str {
        "candle"
    }

    fn zeros(&self, nrows: usize, ncols: usize) -> Result<Tensor> {
        Tensor::zeros((nrows, ncols), T::DTYPE, &self.device).into_core()
    }

    /// # Panics
    /// When `data.len() != nrows * ncols`.
    fn mat_from_col_major(&self, nrows: usize, ncols: usize, data: &[T]) -> Result<Tensor> {
        assert_eq!(data.len(), nrows * ncols, "mat_from_col_major: data length");
        self.tensor_from_fn(nrows, ncols, |i, j| data[j * nrows + i])
    }

    fn to_col_major(&self, m: &Tensor) -> Result<Vec<T>> {
        let (r, c) = dims2(m);
        let row_major = m.flatten_all().into_core()?.to_vec1::<T>().into_core()?;
        Ok((0..r * c).map(|k| row_major[(k % r) * c + k / r]).collect())
    }

    fn shape(&self, m: &Tensor) -> (usize, usize) {
        dims2(m)
    }

    /// # Panics
    /// When `data.len() != nrows * ncols`.
    fn op_from_col_major(&self, nrows: usize, ncols: usize, data: &[T]) -> Result<CandleOp> {
        assert_eq!(data.len(), nrows * ncols, "op_from_col_major: data length");
        let host = Mat::from_fn(nrows, ncols, |i, j| data[j * nrows + i].to_f64_lossy());
        let tensor = self.upload(&host)?;
        Ok(CandleOp { tensor, host })
    }

    fn op_to_col_major(&self, op: &CandleOp) -> Result<Vec<T>> {
        // the host copy holds the values of T exactly: no device read
        let (r, c) = op.shape();
        Ok((0..r * c).map(|k| T::of(op.host[(k % r, k / r)])).collect())
    }

    fn op_shape(&self, op: &CandleOp) -> (usize, usize) {
        op.shape()
    }

    fn op_abs_sums(&self, op: &CandleOp) -> Result<(Vec<f64>, Vec<f64>)> {
        let columns = (0..op.host.ncols()).map(|j| op.host.col_as_slice(j));
        Ok(altdiff_core::kernels::abs_sums(columns, op.host.nrows()))
    }

    /// # Panics
    /// When the shapes of `dst`, `op(')` and `rhs` do not fit.
    fn apply(
        &self,
        dst: &mut Tensor,
        accum: Accum,
        op: &CandleOp,
        trans: Trans,
        rhs: &Tensor,
        alpha: T,
    ) -> Result<()> {
        let lhs = match trans {
            Trans::No => op.tensor.clone(),
            // a transposed view: candle's matmul (gemm on CPU, cuBLAS) reads it in place
            Trans::Yes => op.tensor.t().into_core()?,
        };
        assert_eq!(dims2(&lhs).1, dims2(rhs).0, "apply: inner dimensions");
        let product = self.product(&lhs, rhs)?;
        accumulate(dst, accum, product, alpha)
    }

    /// # Panics
    /// When `lhs` and `rhs` have different column counts or `dst` is not
    /// `lhs.rows x rhs.rows`.
    fn gemm_nt(
        &self,
        dst: &mut Tensor,
        accum: Accum,
        lhs: &Tensor,
        rhs: &Tensor,
        alpha: T,
    ) -> Result<()> {
        assert_eq!(dims2(lhs).1, dims2(rhs).1, "gemm_nt: inner dimensions");
        let product = lhs.matmul(&rhs.t().into_core()?).into_core()?;
        accumulate(dst, accum, product, alpha)
    }

    /// Factors `H` on the host in `f64` (faer's Cholesky, from the host copies of `P`, `A`,
    /// `G`), then forms `H^-1` from the factor, symmetrizes it and uploads it once.
    ///
    /// # Panics
    /// When the shapes of `P`, `A`, `G` disagree.
    fn factor(&self, p: &CandleOp, a: &CandleOp, g: &CandleOp, rho: T) -> Result<CandleFactor> {
        self.factor_shifted(p, a, g, rho, T::zero())
    }

    fn factor_shifted(
        &self,
        p: &CandleOp,
        a: &CandleOp,
        g: &CandleOp,
        rho: T,
        shift: T,
    ) -> Result<CandleFactor> {
        let cholesky = DenseCholesky::penalized_shifted_in(
            p.host.as_ref(),
            &[a.host.as_ref(), g.host.as_ref()],
            (rho.to_f64_lossy(), shift.to_f64_lossy()),
            Par::Seq,
            altdiff_faer::Precision::Double,
        )?;
        let n = cholesky.dim();
        let mut inverse = Mat::<f64>::identity(n, n);
        cholesky.solve_in_place(inverse.as_mut(), Par::Seq);
        let inverse = self.tensor_from_fn(n, n, |i, j| {
            T::of(0.5 * (inverse[(i, j)] + inverse[(j, i)]))
        })?;
        Ok(CandleFactor { inverse, cholesky })
    }

    /// `rhs = H^-1 rhs`: one product with the uploaded inverse on the device.
    ///
    /// # Panics
    /// When `rhs` does not have `n` rows.
    fn factor_pivots(&self, factor: &CandleFactor) -> Result<Option<Vec<f64>>> {
        Ok(Some(factor.cholesky.pivots()))
    }

    fn solve_in_place(&self, factor: &CandleFactor, rhs: &mut Tensor) -> Result<()> {
        assert_eq!(dims2(rhs).0, factor.dim(), "solve_in_place: rhs rows");
        *rhs = self.product(&factor.inverse, rhs)?;
        Ok(())
    }

    /// On the host from the factor's Cholesky (faer: `W = L^-1 C'`, `M = W'W`,
    /// `K = L^-T W`), then uploaded.
    ///
    /// # Panics
    /// When `C` does not have `n` columns.
    fn gram_inverse(
        &self,
        factor: &CandleFactor,
        c: &CandleOp,
        with_k: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (m, k) = factor
            .cholesky
            .gram_inverse(c.host.as_ref(), with_k, Par::Seq);
        Ok((self.upload(&m)?, k.map(|k| self.upload(&k)).transpose()?))
    }

    /// On the host: faer's Cholesky of `P + shift I` from the host copy of `P`.
    fn is_psd_with_shift(&self, p: &CandleOp, shift: T) -> Result<bool> {
        DenseCholesky::is_psd_with_shift(p.host.as_ref(), shift.to_f64_lossy(), Par::Seq)
    }

    /// On the device: `m * (rows cols')`, one product of the two scales per entry, as the
    /// provided method computes it.
    ///
    /// # Panics
    /// When the scales do not match the shape of `m`.
    fn scale_rows_cols(
        &self,
        m: &mut Tensor,
        rows: Option<&[T]>,
        cols: Option<&[T]>,
    ) -> Result<()> {
        let (r, c) = dims2(m);
        let rows = rows
            .map(|d| {
                assert_eq!(d.len(), r, "scale_rows_cols: row scales");
                self.tensor_from_fn(r, 1, |i, _| d[i])
            })
            .transpose()?;
        let cols = cols
            .map(|d| {
                assert_eq!(d.len(), c, "scale_rows_cols: column scales");
                self.tensor_from_fn(1, c, |_, j| d[j])
            })
            .transpose()?;
        let scales = match (rows, cols) {
            (None, None) => return Ok(()),
            (Some(one), None) | (None, Some(one)) => one,
            (Some(rows), Some(cols)) => rows.broadcast_mul(&cols).into_core()?,
        };
        *m = m.broadcast_mul(&scales).into_core()?;
        Ok(())
    }

    /// `y = alpha x + beta y` on the device; `y` is not read when `beta == 0`.
    ///
    /// # Panics
    /// When the shapes differ.
    fn axpby(&self, alpha: T, x: &Tensor, beta: T, y: &mut Tensor) -> Result<()> {
        assert_eq!(dims2(x), dims2(y), "axpby: shapes");
        let ax = scaled(x.clone(), alpha)?;
        *y = if beta.is_zero() {
            ax
        } else if beta.is_one() {
            (ax + &*y).into_core()?
        } else {
            (ax + y.affine(beta.to_f64_lossy(), 0.0).into_core()?).into_core()?
        };
        Ok(())
    }

    /// `dst = src` without a copy: the tensors share storage, which is safe because this
    /// backend never writes into a tensor (every operation makes a new one).
    ///
    /// # Panics
    /// When the shapes differ.
    fn copy_from(&self, dst: &mut Tensor, src: &Tensor) -> Result<()> {
        assert_eq!(dims2(dst), dims2(src), "copy_from: shapes");
        *dst = src.clone();
        Ok(())
    }

    /// `x = relu(x)` on the device (a NaN entry becomes 0; the NaN still shows in the other
    /// iterates, which the solver checks).
    fn proj_nonneg(&self, x: &mut Tensor) -> Result<()> {
        *x = x.relu().into_core()?;
        Ok(())
    }

    /// `m = where(at > 0, m, 0)` on the device, `at` broadcast over the columns of `m` when it
    /// has one column (NaN in `at` masks, as in the reference).
    ///
    /// # Panics
    /// When `at` has other than `m`'s rows, or neither one column nor `m`'s columns.
    fn dproj_nonneg(&self, at: &Tensor, m: &mut Tensor) -> Result<()> {
        let ((ra, ca), (r, c)) = (dims2(at), dims2(m));
        assert_eq!(ra, r, "dproj_nonneg: rows");
        assert!(ca == 1 || ca == c, "dproj_nonneg: columns");
        let zeros = m.zeros_like().into_core()?;
        let keep = at.gt(&at.zeros_like().into_core()?).into_core()?;
        let keep = if ca == c {
            keep
        } else {
            keep.broadcast_as((r, c)).into_core()?
        };
        *m = keep.where_cond(m, &zeros).into_core()?;
        Ok(())
    }

    /// The largest absolute entry, read back together with the sum of the absolute values in
    /// one transfer: candle's `max` skips NaN, the sum does not, so a NaN sum makes the result
    /// NaN.
    fn norm_inf(&self, x: &Tensor) -> Result<T> {
        if x.elem_count() == 0 {
            return Ok(T::zero());
        }
        let abs = x.abs().into_core()?;
        let both = Tensor::stack(&[abs.max_all().into_core()?, abs.sum_all().into_core()?], 0)
            .into_core()?
            .to_vec1::<T>()
            .into_core()?;
        Ok(if both[1].is_nan() { T::nan() } else { both[0] })
    }

    /// # Panics
    /// When the shapes differ.
    fn dot(&self, x: &Tensor, y: &Tensor) -> Result<T> {
        assert_eq!(dims2(x), dims2(y), "dot: shapes");
        if x.elem_count() == 0 {
            return Ok(T::zero());
        }
        (x * y)
            .into_core()?
            .sum_all()
            .into_core()?
            .to_scalar::<T>()
            .into_core()
    }

    /// Waits for the device's queued work (`Device::synchronize`).
    fn synchronize(&self) -> Result<()> {
        self.device.synchronize().into_core()
    }
}
