//! [`DenseCholesky`]: faer's LL' of a dense symmetric positive definite matrix, in `f64` or,
//! with [`Precision::Single`], in `f32`.

use altdiff_core::{Error, Result};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::triangular_solve;
use faer::traits::ComplexField;
use faer::{Mat, MatMut, MatRef, Par};

/// `dst += alpha W'W` on the lower triangle of `dst` only (a symmetric rank-k update).
fn lower_gram<T: ComplexField>(dst: MatMut<'_, T>, w: MatRef<'_, T>, alpha: T, par: Par) {
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

/// `dst = [dst +] alpha lhs' rhs` for a product known to be symmetric (and `dst` symmetric
/// when accumulating): the lower triangle by one triangular-output product, then mirrored, half
/// the multiplications of a full product (the backends' `LinAlg::symmetric_product_tn`).
///
/// # Panics
/// When `lhs` and `rhs` differ in shape or `dst` is not square of their column count.
///
/// # Example
/// ```
/// use altdiff_faer::{Par, symmetric_product_tn};
/// let u = faer::mat![[1.0, 2.0]];
/// let mut dst = faer::Mat::<f64>::zeros(2, 2);
/// symmetric_product_tn(dst.as_mut(), faer::Accum::Replace, u.as_ref(), (&u * 3.0).as_ref(), 1.0, Par::Seq);
/// assert_eq!(dst, faer::mat![[3.0, 6.0], [6.0, 12.0]]);
/// ```
pub fn symmetric_product_tn(
    mut dst: MatMut<'_, f64>,
    accum: faer::Accum,
    lhs: MatRef<'_, f64>,
    rhs: MatRef<'_, f64>,
    alpha: f64,
    par: Par,
) {
    assert_eq!(lhs.shape(), rhs.shape(), "symmetric_product_tn: shapes");
    assert_eq!(
        dst.shape(),
        (lhs.ncols(), lhs.ncols()),
        "symmetric_product_tn: destination"
    );
    triangular::matmul(
        dst.as_mut(),
        BlockStructure::TriangularLower,
        accum,
        lhs.transpose(),
        BlockStructure::Rectangular,
        rhs,
        BlockStructure::Rectangular,
        alpha,
        par,
    );
    mirror_lower(dst);
}

/// `dst = [dst +] alpha src` for an `f32` block `src` of `dst`'s shape.
fn accumulate_widened(
    mut dst: MatMut<'_, f64>,
    accum: faer::Accum,
    alpha: f64,
    src: MatRef<'_, f32>,
) {
    for j in 0..dst.ncols() {
        for i in 0..dst.nrows() {
            let product = alpha * f64::from(src[(i, j)]);
            dst[(i, j)] = match accum {
                faer::Accum::Replace => product,
                faer::Accum::Add => dst[(i, j)] + product,
            };
        }
    }
}

/// Copies the strict lower triangle onto the upper one.
pub(crate) fn mirror_lower<T: Copy>(mut m: MatMut<'_, T>) {
    for j in 0..m.ncols() {
        for i in 0..j {
            m[(i, j)] = m[(j, i)];
        }
    }
}

/// `(L L')^-1` from the lower factor `l`: `L^-1`, then `L^-T L^-1` on one triangle.
fn inverse_of<T: ComplexField + Copy>(l: MatRef<'_, T>, par: Par) -> Mat<T> {
    let n = l.nrows();
    let mut out = Mat::<T>::zeros(n, n);
    let mut mem = MemBuffer::new(llt::inverse::inverse_scratch::<T>(n, par));
    llt::inverse::inverse(out.as_mut(), l, par, MemStack::new(&mut mem));
    mirror_lower(out.as_mut());
    out
}

/// Factors `l` in place (its lower triangle): `L` with `H = L L'`.
fn cholesky_in_place<T: ComplexField>(mut l: MatMut<'_, T>, par: Par) -> Result<()> {
    let n = l.nrows();
    let mut mem = MemBuffer::new(llt::factor::cholesky_in_place_scratch::<T>(
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
    .map(|_| ())
    .map_err(
        |llt::factor::LltError::NonPositivePivot { index }| Error::NotPositiveDefinite {
            pivot: Some(index),
        },
    )
}

/// `W = L^-1 C'` and the lower half of `M = W'W`, mirrored, from `C'` (`ct`, n x r, in the
/// factor's precision).
fn gram_with_half<T: ComplexField + Copy>(
    l: MatRef<'_, T>,
    ct: Mat<T>,
    par: Par,
) -> (Mat<T>, Mat<T>) {
    let mut m = Mat::zeros(ct.ncols(), ct.ncols());
    let w = add_lower_gram_inverse(m.as_mut(), l, ct, par);
    mirror_lower(m.as_mut());
    (m, w)
}

/// `W = L^-1 C'` from `C'` (`ct`), with the lower triangle of `W'W = C (L L')^-1 C'` added
/// to `dst`.
fn add_lower_gram_inverse<T: ComplexField + Copy>(
    dst: MatMut<'_, T>,
    l: MatRef<'_, T>,
    ct: Mat<T>,
    par: Par,
) -> Mat<T> {
    let mut w = ct;
    triangular_solve::solve_lower_triangular_in_place(l, w.as_mut(), par);
    lower_gram(dst, w.as_ref(), T::one_impl(), par);
    w
}

/// `M = C H^-1 C'` and, when `with_k`, `K = L^-T W` ([`gram_with_half`]), in the factor's
/// precision.
fn gram_and_k<T: ComplexField + Copy>(
    l: MatRef<'_, T>,
    ct: Mat<T>,
    with_k: bool,
    par: Par,
) -> (Mat<T>, Option<Mat<T>>) {
    let (m, mut w) = gram_with_half(l, ct, par);
    let k = with_k.then(|| {
        triangular_solve::solve_upper_triangular_in_place(l.transpose(), w.as_mut(), par);
        w
    });
    (m, k)
}

/// `alpha L^-T (W rhs)`.
fn product_solve<T: ComplexField>(
    l: MatRef<'_, T>,
    w: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    alpha: T,
    par: Par,
) -> Mat<T> {
    let mut x = Mat::zeros(w.nrows(), rhs.ncols());
    faer::linalg::matmul::matmul(x.as_mut(), faer::Accum::Replace, w, rhs, alpha, par);
    triangular_solve::solve_upper_triangular_in_place(l.transpose(), x.as_mut(), par);
    x
}

/// `(C H^-1 f, L^-1 f)` from the half `W = L^-1 C'`: one triangular solve, one product.
fn split_by_half<T: ComplexField>(
    l: MatRef<'_, T>,
    w: MatRef<'_, T>,
    f: Mat<T>,
    par: Par,
) -> (Mat<T>, Mat<T>) {
    let mut t = f;
    triangular_solve::solve_lower_triangular_in_place(l, t.as_mut(), par);
    let mut chf = Mat::zeros(w.ncols(), t.ncols());
    faer::linalg::matmul::matmul(
        chf.as_mut(),
        faer::Accum::Replace,
        w.transpose(),
        t.as_ref(),
        T::one_impl(),
        par,
    );
    (chf, t)
}

/// `H^-1 (f - C'y) = L^-T (t - W y)` from `t = L^-1 f`: one product, one triangular solve.
fn join_by_half<T: ComplexField + std::ops::Neg<Output = T>>(
    l: MatRef<'_, T>,
    w: MatRef<'_, T>,
    t: Mat<T>,
    y: MatRef<'_, T>,
    par: Par,
) -> Mat<T> {
    let mut x = t;
    faer::linalg::matmul::matmul(x.as_mut(), faer::Accum::Add, w, y, -T::one_impl(), par);
    triangular_solve::solve_upper_triangular_in_place(l.transpose(), x.as_mut(), par);
    x
}

/// A copy of `m` with every entry converted by `convert`, column by column (contiguous
/// columns as slices, so that the conversion vectorizes).
fn converted<S: Copy, T: Copy + ComplexField>(
    m: MatRef<'_, S>,
    convert: impl Fn(S) -> T,
) -> Mat<T> {
    converted_from(m, convert, |_| 0)
}

/// [`converted`] of the lower triangle only (the upper one is left zero): for the matrices
/// a Cholesky factorization reads no more of (`P` in `H = P + rho C'C`).
fn converted_lower<S: Copy, T: Copy + ComplexField>(
    m: MatRef<'_, S>,
    convert: impl Fn(S) -> T,
) -> Mat<T> {
    converted_from(m, convert, |j| j)
}

/// [`converted`] of the rows `first(j)..` of every column `j` (the others left zero).
fn converted_from<S: Copy, T: Copy + ComplexField>(
    m: MatRef<'_, S>,
    convert: impl Fn(S) -> T,
    first: impl Fn(usize) -> usize,
) -> Mat<T> {
    let mut out = Mat::<T>::zeros(m.nrows(), m.ncols());
    for j in 0..m.ncols() {
        let i0 = first(j).min(m.nrows());
        let dst = &mut out.col_as_slice_mut(j)[i0..];
        match m.col(j).try_as_col_major() {
            Some(col) => {
                for (d, &v) in dst.iter_mut().zip(&col.as_slice()[i0..]) {
                    *d = convert(v);
                }
            }
            None => {
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = convert(m[(i0 + i, j)]);
                }
            }
        }
    }
    out
}

/// The number of source columns [`transposed`] reads together.
const PANEL: usize = 8;

/// The transpose of `m` with every entry converted by `convert`: `PANEL` source columns at
/// a time, so that each destination column gets `PANEL` contiguous values per visit (a
/// plain strided copy misses on every write). Columns that are not contiguous are read by
/// index.
fn transposed<S: Copy, T: Copy + ComplexField>(
    m: MatRef<'_, S>,
    convert: impl Fn(S) -> T,
) -> Mat<T> {
    let (rows, cols) = m.shape();
    let mut out = Mat::<T>::zeros(cols, rows);
    let contiguous: Option<Vec<&[S]>> = (0..cols)
        .map(|j| m.col(j).try_as_col_major().map(|c| c.as_slice()))
        .collect();
    let Some(columns) = contiguous else {
        for i in 0..rows {
            for (j, d) in out.col_as_slice_mut(i).iter_mut().enumerate() {
                *d = convert(m[(i, j)]);
            }
        }
        return out;
    };
    let full = cols / PANEL * PANEL;
    for (k, panel) in columns.chunks_exact(PANEL).enumerate() {
        let j0 = k * PANEL;
        let panel: [&[S]; PANEL] = std::array::from_fn(|p| &panel[p][..rows]);
        // indices, not iterators: the fixed panel unrolls and its bounds checks fold away
        #[allow(clippy::needless_range_loop)]
        for i in 0..rows {
            let dst = &mut out.col_as_slice_mut(i)[j0..j0 + PANEL];
            for p in 0..PANEL {
                dst[p] = convert(panel[p][i]);
            }
        }
    }
    for (j, column) in columns.iter().enumerate().skip(full) {
        for (i, &v) in column.iter().enumerate() {
            out.col_as_slice_mut(i)[j] = convert(v);
        }
    }
    out
}

/// `f64` to `f32`, rounded to nearest.
#[allow(clippy::cast_possible_truncation)] // the point: single precision
fn single(v: f64) -> f32 {
    v as f32
}

/// The `f32` copy of an `f64` matrix.
fn narrow(m: MatRef<'_, f64>) -> Mat<f32> {
    converted(m, single)
}

/// The `f64` copy of an `f32` matrix.
fn widen(m: MatRef<'_, f32>) -> Mat<f64> {
    converted(m, f64::from)
}

/// Runs `solve` on an `f32` copy of `rhs` and writes the result back.
fn through_single(mut rhs: MatMut<'_, f64>, solve: impl FnOnce(MatMut<'_, f32>)) {
    let mut single = narrow(rhs.as_ref());
    solve(single.as_mut());
    rhs.copy_from(widen(single.as_ref()));
}

/// The arithmetic of a [`DenseCholesky`] (and so of [`FaerBackend`](crate::FaerBackend)'s
/// factorization, its solves and the dual-space operators formed from it).
///
/// # Example
/// ```
/// use altdiff_faer::{DenseCholesky, Par, Precision};
/// let p = faer::mat![[4.0, 2.0], [2.0, 3.0]];
/// let chol = DenseCholesky::penalized_in(p.as_ref(), &[], 0.0, Par::Seq, Precision::Single)?;
/// let mut x = faer::mat![[6.0], [5.0]];
/// chol.solve_in_place(x.as_mut(), Par::Seq);
/// assert!((x[(0, 0)] - 1.0).abs() < 1e-5 && (x[(1, 0)] - 1.0).abs() < 1e-5);
/// assert_eq!(chol.precision(), Precision::Single);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// `f64` throughout (the default).
    #[default]
    Double,
    /// `H` formed and factored in `f32`, and the solves, `W = L^-1 C'` and `M = W'W` run in
    /// `f32`, about twice the throughput of `f64` (AVX2 holds 8 `f32` per register, 4 `f64`);
    /// inputs and outputs stay `f64`. A solve is then accurate to about
    /// `cond(H) * 6e-8` relative, not to `1e-15`
    /// ([`LinAlg::factor_epsilon`](altdiff_core::LinAlg::factor_epsilon) says so), and the
    /// solver makes up for it where it can at `O(n^2)` cost:
    ///
    /// * refined to full precision (mixed-precision iterative refinement against `f64`
    ///   residuals): the forward polish of [`Settings::limit`](altdiff_core::Settings::limit),
    ///   which also ends forward-only solves under the residual rule; the x-updates of the
    ///   primal-space iteration; the VJPs [`VjpMode::Limit`](altdiff_core::VjpMode::Limit)
    ///   (single and batched) and [`VjpMode::Kkt`](altdiff_core::VjpMode::Kkt); the KKT
    ///   Jacobians ([`Method::Kkt`](altdiff_core::Method::Kkt));
    /// * left at single precision's accuracy (refining them costs more than an `f64`
    ///   factorization saves): Jacobians and JVPs of the limit or of the iteration, and the
    ///   unrolled and implicit VJPs.
    ///
    /// What is formed from the `f32` factor stays `f32` where only refined solves read it:
    /// the half `W = L^-1 C'` and `M = W'W` that the factor keeps
    /// ([`DenseCholesky::gram_inverse_keeping`]) serve the dual-space iteration's products
    /// ([`DenseCholesky::apply_gram`]) and the solves through `C`
    /// ([`DenseCholesky::solve_split`]), and the limit system of a refined solve is formed
    /// and factored in `f32` ([`LinAlg::cholesky_owned_coarse`](altdiff_core::LinAlg::cholesky_owned_coarse),
    /// [`LinAlg::cholesky_schur`](altdiff_core::LinAlg::cholesky_schur)). So is the convexity
    /// test on `M`, as `M` is only known to `f32` precision: it accepts `P` when
    /// `x'Px >= -tau x'Hx` with `tau` at least `r * f32::EPSILON` (`r = p + m`; about `8e-5`
    /// at `r = 700`), where `f64` asks `tau = sqrt(f64::EPSILON) max|P| / |H|`. Where that
    /// test fails, the solver runs the exact `f64` test on `P`. The limit system of
    /// Jacobians ([`LinAlg::cholesky`](altdiff_core::LinAlg::cholesky)) stays `f64`.
    Single,
}

/// A matrix in the factor's precision: the factor `L` itself, or the half `W = L^-1 C'` it
/// keeps ([`DenseCholesky::gram_inverse_keeping`]).
#[derive(Clone, Debug)]
enum Lower {
    Double(Mat<f64>),
    Single(Mat<f32>),
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
    l: Lower,
    /// `W = L^-1 C'` (n x r) for the `C` of [`DenseCholesky::gram_inverse_keeping`], in the
    /// factor's precision (boxed: the factor stays small inside other types).
    half: Option<Box<Lower>>,
    /// `M = W'W` in `f32`, kept with a single-precision half for [`DenseCholesky::apply_gram`].
    gram: Option<Box<Mat<f32>>>,
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
        Self::penalized_in(p, blocks, rho, par, Precision::Double)
    }

    /// [`DenseCholesky::penalized`] in the given [`Precision`]: with
    /// [`Precision::Single`], `H` is formed from `f32` copies of `P` and the blocks and
    /// factored in `f32`.
    ///
    /// # Errors
    /// [`Error::NotPositiveDefinite`] with the failing pivot.
    ///
    /// # Panics
    /// When the shapes disagree.
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par, Precision};
    /// let p = faer::mat![[1.0, 0.0], [0.0, 1.0]];
    /// let a = faer::mat![[1.0, 1.0]];
    /// let chol = DenseCholesky::penalized_in(p.as_ref(), &[a.as_ref()], 2.0, Par::Seq, Precision::Single)?;
    /// let mut x = faer::mat![[3.0], [3.0]];
    /// chol.solve_in_place(x.as_mut(), Par::Seq);
    /// assert!((x[(0, 0)] - 0.6).abs() < 1e-6);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn penalized_in(
        p: MatRef<'_, f64>,
        blocks: &[MatRef<'_, f64>],
        rho: f64,
        par: Par,
        precision: Precision,
    ) -> Result<Self> {
        Self::penalized_shifted_in(p, blocks, (rho, 0.0), par, precision)
    }

    /// [`DenseCholesky::penalized_in`] of `H = P + shift I + rho sum_i C_i'C_i` (the
    /// proximal term of ADMM, and the regularized KKT system of the active-set polish),
    /// `(rho, shift)`.
    ///
    /// # Errors
    /// [`Error::NotPositiveDefinite`] with the failing pivot.
    ///
    /// # Panics
    /// When the shapes disagree.
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par, Precision};
    /// let p = faer::mat![[0.0, 0.0], [0.0, 0.0]];
    /// let a = faer::mat![[1.0, 1.0]];
    /// // singular without the shift: H = [[1.5, 1], [1, 1.5]]
    /// let chol = DenseCholesky::penalized_shifted_in(p.as_ref(), &[a.as_ref()], (1.0, 0.5), Par::Seq, Precision::Double)?;
    /// let mut x = faer::mat![[2.5], [2.5]];
    /// chol.solve_in_place(x.as_mut(), Par::Seq);
    /// assert!((x[(0, 0)] - 1.0).abs() < 1e-12);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn penalized_shifted_in(
        p: MatRef<'_, f64>,
        blocks: &[MatRef<'_, f64>],
        (rho, shift): (f64, f64),
        par: Par,
        precision: Precision,
    ) -> Result<Self> {
        // the factorization reads the lower triangle only
        match precision {
            Precision::Double => {
                let mut h = converted_lower(p, |v| v);
                (0..h.nrows()).for_each(|i| h[(i, i)] += shift);
                for block in blocks {
                    lower_gram(h.as_mut(), *block, rho, par);
                }
                Self::from_owned(h, par)
            }
            Precision::Single => {
                let mut h = converted_lower(p, single);
                (0..h.nrows()).for_each(|i| h[(i, i)] += single(shift));
                for block in blocks {
                    lower_gram(h.as_mut(), narrow(*block).as_ref(), single(rho), par);
                }
                cholesky_in_place(h.as_mut(), par)?;
                Ok(Self {
                    l: Lower::Single(h),
                    half: None,
                    gram: None,
                })
            }
        }
    }

    /// Factors `S = shift I + alpha B + X T^-1 X'` in `precision`: `B` (`a x a`, symmetric,
    /// its lower triangle read), `(alpha, shift)` and, when given, `T`'s factor and `X`
    /// (`a x i`). The lower triangle of `shift I + alpha B` is formed in one pass (the
    /// diagonal in `f64`, then rounded); in single precision with a single-precision `T`,
    /// the rest in `f32` and in place: `Y = L_T^-1 X'`, the lower triangle of `Y'Y` added,
    /// and the Cholesky (the limit system's `Sigma` and the convexity test,
    /// [`LinAlg::cholesky_schur`](altdiff_core::LinAlg::cholesky_schur)).
    ///
    /// # Errors
    /// [`Error::NotPositiveDefinite`] with the failing pivot.
    ///
    /// # Panics
    /// When the shapes disagree.
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par, Precision};
    /// let t = DenseCholesky::new(faer::mat![[2.0]].as_ref(), Par::Seq)?;
    /// let x = faer::mat![[2.0], [0.0]];
    /// let b = faer::mat![[1.0, 0.0], [0.0, 1.0]];
    /// // S = B + X T^-1 X' = [[3, 0], [0, 1]]
    /// let s = DenseCholesky::schur_in(b.as_ref(), (1.0, 0.0), Some((&t, x.as_ref())), Par::Seq, Precision::Single)?;
    /// let mut y = faer::mat![[3.0], [1.0]];
    /// s.solve_in_place(y.as_mut(), Par::Seq);
    /// assert!((y[(0, 0)] - 1.0).abs() < 1e-6 && (y[(1, 0)] - 1.0).abs() < 1e-6);
    /// // 2 I - B is positive definite, I - 2 B is not
    /// assert!(DenseCholesky::schur_in(b.as_ref(), (-1.0, 2.0), None, Par::Seq, Precision::Double).is_ok());
    /// assert!(DenseCholesky::schur_in(b.as_ref(), (-2.0, 1.0), None, Par::Seq, Precision::Single).is_err());
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn schur_in(
        b: MatRef<'_, f64>,
        (alpha, shift): (f64, f64),
        schur: Option<(&DenseCholesky, MatRef<'_, f64>)>,
        par: Par,
        precision: Precision,
    ) -> Result<Self> {
        assert_eq!(b.nrows(), b.ncols(), "DenseCholesky: B must be square");
        if let Some((t, x)) = schur {
            assert_eq!(x.shape(), (b.nrows(), t.dim()), "DenseCholesky: X shape");
        }
        let diagonal = |i: usize| shift + alpha * b[(i, i)];
        let l = match precision {
            Precision::Double => {
                let mut s = converted_lower(b, |v| alpha * v);
                (0..s.nrows()).for_each(|i| s[(i, i)] = diagonal(i));
                if let Some((t, x)) = schur {
                    s += t.gram_inverse(x, false, par).0;
                }
                cholesky_in_place(s.as_mut(), par)?;
                Lower::Double(s)
            }
            Precision::Single => {
                let mut s = converted_lower(b, |v| single(alpha * v));
                (0..s.nrows()).for_each(|i| s[(i, i)] = single(diagonal(i)));
                match schur.map(|(t, x)| (&t.l, t, x)) {
                    Some((Lower::Single(l), _, x)) => {
                        add_lower_gram_inverse(s.as_mut(), l.as_ref(), transposed(x, single), par);
                    }
                    Some((Lower::Double(_), t, x)) => {
                        s += narrow(t.gram_inverse(x, false, par).0.as_ref());
                    }
                    None => {}
                }
                cholesky_in_place(s.as_mut(), par)?;
                Lower::Single(s)
            }
        };
        Ok(Self {
            l,
            half: None,
            gram: None,
        })
    }

    /// The arithmetic of the factor.
    pub fn precision(&self) -> Precision {
        match self.l {
            Lower::Double(_) => Precision::Double,
            Lower::Single(_) => Precision::Single,
        }
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
        let mut l = h;
        cholesky_in_place(l.as_mut(), par)?;
        Ok(Self {
            l: Lower::Double(l),
            half: None,
            gram: None,
        })
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
        assert_eq!(c.ncols(), self.dim(), "DenseCholesky: C columns");
        match &self.l {
            Lower::Double(l) => gram_and_k(l.as_ref(), transposed(c, |v| v), with_k, par),
            Lower::Single(l) => {
                let (m, k) = gram_and_k(l.as_ref(), transposed(c, single), with_k, par);
                (widen(m.as_ref()), k.map(|k| widen(k.as_ref())))
            }
        }
    }

    /// `M = C H^-1 C'` (r x r) for `C` (r x n), keeping the half `W = L^-1 C'` it is formed
    /// from in the factor, in its precision: then [`DenseCholesky::solve_split`] and
    /// [`DenseCholesky::solve_join`] with the same `C` take products with `W` and one
    /// triangular solve each instead of products with `C` and two. Any half kept before is
    /// replaced.
    ///
    /// # Panics
    /// When `C` does not have `n` columns.
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par};
    /// let mut chol = DenseCholesky::new(faer::mat![[4.0, 0.0], [0.0, 1.0]].as_ref(), Par::Seq)?;
    /// let c = faer::mat![[2.0, 1.0]];
    /// let m = chol.gram_inverse_keeping(c.as_ref(), Par::Seq);
    /// assert!((m[(0, 0)] - 2.0).abs() < 1e-12); // 4/4 + 1/1
    /// assert!(chol.keeps_half());
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn gram_inverse_keeping(&mut self, c: MatRef<'_, f64>, par: Par) -> Mat<f64> {
        assert_eq!(c.ncols(), self.dim(), "DenseCholesky: C columns");
        self.gram = None;
        let (m, half) = match &self.l {
            Lower::Double(l) => {
                let (m, w) = gram_with_half(l.as_ref(), transposed(c, |v| v), par);
                (m, Lower::Double(w))
            }
            Lower::Single(l) => {
                let (m, w) = gram_with_half(l.as_ref(), transposed(c, single), par);
                let wide = widen(m.as_ref());
                self.gram = Some(Box::new(m));
                (wide, Lower::Single(w))
            }
        };
        self.half = Some(Box::new(half));
        m
    }

    /// `dst = [dst +] alpha M v` for the `M` (`m`, r x r) of
    /// [`DenseCholesky::gram_inverse_keeping`]: with a single-precision factor, by the `f32`
    /// copy of `M` it kept (the one `m` was widened from: half the memory traffic, and no
    /// accuracy that `m` has lost), else by `m`.
    ///
    /// # Panics
    /// When the shapes disagree.
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par, Precision};
    /// let h = faer::mat![[4.0, 0.0], [0.0, 1.0]];
    /// let mut chol = DenseCholesky::penalized_in(h.as_ref(), &[], 0.0, Par::Seq, Precision::Single)?;
    /// let m = chol.gram_inverse_keeping(faer::mat![[2.0, 1.0]].as_ref(), Par::Seq);
    /// let mut dst = faer::mat![[1.0]];
    /// chol.apply_gram(m.as_ref(), dst.as_mut(), faer::Accum::Add, faer::mat![[3.0]].as_ref(), -1.0, Par::Seq);
    /// assert!((dst[(0, 0)] + 5.0).abs() < 1e-6); // 1 - 2 * 3
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn apply_gram(
        &self,
        m: MatRef<'_, f64>,
        dst: MatMut<'_, f64>,
        accum: faer::Accum,
        v: MatRef<'_, f64>,
        alpha: f64,
        par: Par,
    ) {
        assert_eq!(m.ncols(), v.nrows(), "DenseCholesky: M columns");
        assert_eq!(
            dst.shape(),
            (m.nrows(), v.ncols()),
            "DenseCholesky: M v shape"
        );
        let Some(gram) = self.gram.as_deref().filter(|g| g.shape() == m.shape()) else {
            faer::linalg::matmul::matmul(dst, accum, m, v, alpha, par);
            return;
        };
        let mut mv = Mat::<f32>::zeros(gram.nrows(), v.ncols());
        faer::linalg::matmul::matmul(
            mv.as_mut(),
            faer::Accum::Replace,
            gram.as_ref(),
            narrow(v).as_ref(),
            1.0,
            par,
        );
        accumulate_widened(dst, accum, alpha, mv.as_ref());
    }

    /// Whether the factor keeps a half `W = L^-1 C'` ([`DenseCholesky::gram_inverse_keeping`]).
    pub fn keeps_half(&self) -> bool {
        self.half.is_some()
    }

    /// The kept half when it is for a `C` of `r` rows.
    fn half_for(&self, r: usize) -> Option<&Lower> {
        self.half.as_deref().filter(|half| match half {
            Lower::Double(w) => w.ncols() == r,
            Lower::Single(w) => w.ncols() == r,
        })
    }

    /// `(C H^-1 f, t)`: the product through `C` of the solve with `H`, and the intermediate
    /// `t` that [`DenseCholesky::solve_join`] finishes from. With a half kept for this `C`,
    /// `t = L^-1 f` and `C H^-1 f = W' t` (one triangular solve, one product with `W`, in the
    /// factor's precision); without, `t = H^-1 f` and a product with `C`.
    ///
    /// # Panics
    /// When the shapes disagree.
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par};
    /// let mut chol = DenseCholesky::new(faer::mat![[4.0, 0.0], [0.0, 1.0]].as_ref(), Par::Seq)?;
    /// let c = faer::mat![[2.0, 1.0]];
    /// chol.gram_inverse_keeping(c.as_ref(), Par::Seq);
    /// let (chf, t) = chol.solve_split(c.as_ref(), faer::mat![[4.0], [1.0]].as_ref(), Par::Seq);
    /// assert!((chf[(0, 0)] - 3.0).abs() < 1e-12); // C H^-1 f = 2 * 1 + 1 * 1
    /// // H^-1 (f - C' 1) = [2/4, 0]
    /// let x = chol.solve_join(c.as_ref(), t, faer::mat![[1.0]].as_ref(), Par::Seq);
    /// assert!((x[(0, 0)] - 0.5).abs() < 1e-12 && x[(1, 0)].abs() < 1e-12);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn solve_split(
        &self,
        c: MatRef<'_, f64>,
        f: MatRef<'_, f64>,
        par: Par,
    ) -> (Mat<f64>, Mat<f64>) {
        assert_eq!(c.ncols(), self.dim(), "DenseCholesky: C columns");
        assert_eq!(f.nrows(), self.dim(), "DenseCholesky: rhs rows");
        match (&self.l, self.half_for(c.nrows())) {
            (Lower::Double(l), Some(Lower::Double(w))) => {
                split_by_half(l.as_ref(), w.as_ref(), f.to_owned(), par)
            }
            (Lower::Single(l), Some(Lower::Single(w))) => {
                let (chf, t) = split_by_half(l.as_ref(), w.as_ref(), narrow(f), par);
                (widen(chf.as_ref()), widen(t.as_ref()))
            }
            _ => {
                let mut t = f.to_owned();
                self.solve_in_place(t.as_mut(), par);
                let mut chf = Mat::zeros(c.nrows(), f.ncols());
                faer::linalg::matmul::matmul(
                    chf.as_mut(),
                    faer::Accum::Replace,
                    c,
                    t.as_ref(),
                    1.0,
                    par,
                );
                (chf, t)
            }
        }
    }

    /// `H^-1 (f - C'y)` from the `t` of [`DenseCholesky::solve_split`] of `f` with the same
    /// `C`: `L^-T (t - W y)` with a kept half, else `t - H^-1 C'y`.
    ///
    /// # Panics
    /// When the shapes disagree.
    pub fn solve_join(
        &self,
        c: MatRef<'_, f64>,
        t: Mat<f64>,
        y: MatRef<'_, f64>,
        par: Par,
    ) -> Mat<f64> {
        assert_eq!(c.ncols(), self.dim(), "DenseCholesky: C columns");
        assert_eq!(t.nrows(), self.dim(), "DenseCholesky: t rows");
        assert_eq!(y.nrows(), c.nrows(), "DenseCholesky: y rows");
        match (&self.l, self.half_for(c.nrows())) {
            (Lower::Double(l), Some(Lower::Double(w))) => {
                join_by_half(l.as_ref(), w.as_ref(), t, y, par)
            }
            (Lower::Single(l), Some(Lower::Single(w))) => {
                // t widened from f32 narrows back exactly
                let x = join_by_half(
                    l.as_ref(),
                    w.as_ref(),
                    narrow(t.as_ref()),
                    narrow(y).as_ref(),
                    par,
                );
                widen(x.as_ref())
            }
            _ => {
                let mut cty = Mat::zeros(c.ncols(), y.ncols());
                faer::linalg::matmul::matmul(
                    cty.as_mut(),
                    faer::Accum::Replace,
                    c.transpose(),
                    y,
                    1.0,
                    par,
                );
                self.solve_in_place(cty.as_mut(), par);
                t - cty
            }
        }
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
        match &self.l {
            Lower::Double(l) => gram_with_half(l.as_ref(), transposed(c, |v| v), par),
            Lower::Single(l) => {
                let (m, w) = gram_with_half(l.as_ref(), transposed(c, single), par);
                (widen(m.as_ref()), widen(w.as_ref()))
            }
        }
    }

    /// `alpha L^-T (W rhs)` (n x k) for a half `W` (n x r) of
    /// [`DenseCholesky::gram_inverse_with_half`]: one product and one triangular solve, in
    /// the factor's precision.
    ///
    /// # Panics
    /// When `W` does not have `n` rows or `rhs` does not have `W`'s columns as rows.
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par};
    /// let chol = DenseCholesky::new(faer::mat![[4.0, 0.0], [0.0, 1.0]].as_ref(), Par::Seq)?;
    /// let c = faer::mat![[2.0, 1.0]];
    /// let (_, w) = chol.gram_inverse_with_half(c.as_ref(), Par::Seq);
    /// let x = chol.half_product_solve(w.as_ref(), faer::mat![[2.0]].as_ref(), 1.0, Par::Seq);
    /// // H^-1 C' 2 = [2/4, 1/1] 2
    /// assert!((x[(0, 0)] - 1.0).abs() < 1e-12 && (x[(1, 0)] - 2.0).abs() < 1e-12);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn half_product_solve(
        &self,
        w: MatRef<'_, f64>,
        rhs: MatRef<'_, f64>,
        alpha: f64,
        par: Par,
    ) -> Mat<f64> {
        assert_eq!(w.nrows(), self.dim(), "DenseCholesky: W rows");
        assert_eq!(w.ncols(), rhs.nrows(), "DenseCholesky: rhs rows");
        match &self.l {
            Lower::Double(l) => product_solve(l.as_ref(), w, rhs, alpha, par),
            Lower::Single(l) => {
                #[allow(clippy::cast_possible_truncation)] // single precision
                let alpha = alpha as f32;
                let x = product_solve(
                    l.as_ref(),
                    narrow(w).as_ref(),
                    narrow(rhs).as_ref(),
                    alpha,
                    par,
                );
                widen(x.as_ref())
            }
        }
    }

    /// `rhs = L^-T rhs` (one triangular solve, any number of columns).
    ///
    /// # Panics
    /// When `rhs` does not have `n` rows.
    pub fn solve_lower_transposed_in_place(&self, rhs: MatMut<'_, f64>, par: Par) {
        assert_eq!(rhs.nrows(), self.dim(), "DenseCholesky: rhs rows");
        match &self.l {
            Lower::Double(l) => {
                triangular_solve::solve_upper_triangular_in_place(l.transpose(), rhs, par);
            }
            Lower::Single(l) => through_single(rhs, |rhs| {
                triangular_solve::solve_upper_triangular_in_place(l.transpose(), rhs, par);
            }),
        }
    }

    /// The pivots `L_ii^2` of `H = L L'` (their spread bounds the condition number of `H`
    /// from below: a tiny one marks a matrix singular to working precision).
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par};
    /// let h = faer::mat![[4.0, 2.0], [2.0, 3.0]];
    /// let pivots = DenseCholesky::new(h.as_ref(), Par::Seq)?.pivots();
    /// assert!((pivots[0] - 4.0).abs() < 1e-14 && (pivots[1] - 2.0).abs() < 1e-14);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn pivots(&self) -> Vec<f64> {
        match &self.l {
            Lower::Double(l) => (0..l.nrows()).map(|i| l[(i, i)] * l[(i, i)]).collect(),
            Lower::Single(l) => (0..l.nrows())
                .map(|i| f64::from(l[(i, i)]) * f64::from(l[(i, i)]))
                .collect(),
        }
    }

    /// The order `n` of `H`.
    pub fn dim(&self) -> usize {
        match &self.l {
            Lower::Double(l) => l.nrows(),
            Lower::Single(l) => l.nrows(),
        }
    }

    /// `H^-1` (symmetric, both triangles): `L^-1` and `L^-T L^-1`, `n^3 / 3` multiplications
    /// against `n^3` for two triangular solves with the identity.
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseCholesky, Par};
    /// let h = faer::mat![[4.0, 2.0], [2.0, 3.0]];
    /// let inv = DenseCholesky::new(h.as_ref(), Par::Seq)?.inverse(Par::Seq);
    /// assert!((inv[(0, 1)] + 0.25).abs() < 1e-15 && (inv[(1, 0)] + 0.25).abs() < 1e-15);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn inverse(&self, par: Par) -> Mat<f64> {
        match &self.l {
            Lower::Double(l) => inverse_of(l.as_ref(), par),
            Lower::Single(l) => widen(inverse_of(l.as_ref(), par).as_ref()),
        }
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
        let stack = MemStack::new(&mut mem);
        match &self.l {
            Lower::Double(l) => llt::solve::solve_in_place(l.as_ref(), rhs, par, stack),
            Lower::Single(l) => through_single(rhs, |rhs| {
                llt::solve::solve_in_place(l.as_ref(), rhs, par, stack);
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the conversions compared are exact
mod tests {
    use super::*;

    #[test]
    fn transposed_matches_indexing() {
        // column counts around the panel width, empty shapes, and a strided view
        for (r, c) in [(0, 3), (3, 0), (1, 1), (5, 7), (4, 8), (6, 9), (33, 17)] {
            let m = Mat::<f64>::from_fn(r, c, |i, j| (i * 100 + j) as f64 + 0.25);
            for view in [m.as_ref(), m.transpose()] {
                let t = transposed(view, single);
                assert_eq!(t.shape(), (view.ncols(), view.nrows()));
                for i in 0..view.nrows() {
                    for j in 0..view.ncols() {
                        assert_eq!(t[(j, i)], single(view[(i, j)]), "({r}, {c}) at ({i}, {j})");
                    }
                }
            }
        }
    }
}
