//! The [`LinAlg`] trait: the few operations of a backend that Alt-Diff needs.

use num_traits::{One, Zero};

use crate::{HostMatrix, Real, Result};

/// Whether an operator is applied as is or transposed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Trans {
    /// `op * rhs`.
    No,
    /// `op' * rhs`.
    Yes,
}

/// Whether a product overwrites its destination or adds to it.
///
/// `Replace` never reads the destination (so a destination holding NaN is harmless).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Accum {
    /// `dst = result`.
    Replace,
    /// `dst += result`.
    Add,
}

/// Dense and operator linear algebra needed by Alt-Diff.
///
/// Every dense object is a column-major `rows x cols` block ([`LinAlg::Mat`]): a vector is an
/// `n x 1` block, a Jacobian block an `n x d` one, so the solution and its derivatives run
/// through the same code. `P`, `A`, `G` are opaque operators ([`LinAlg::Op`]): the algorithm
/// only applies them and factors `H = P + rho (A'A + G'G)` once.
///
/// Shapes are validated once at setup; inside these methods a shape mismatch is a bug of the
/// caller, and implementations may panic on it (document it under `# Panics`). Every method
/// returns [`Result`] because device backends can fail for real (memory, driver).
///
/// See the crate docs, "Writing a backend", and `altdiff_core::testing` (feature `testing`) for
/// the reference implementation and the conformance suite every backend must pass.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{Accum, LinAlg, Trans, testing::RefBackend};
/// let be = RefBackend;
/// let g = be.op_from_col_major(2, 2, &[1.0, 3.0, 2.0, 4.0])?; // [[1, 2], [3, 4]]
/// let x = be.mat_from_col_major(2, 1, &[1.0, 1.0])?;
/// let mut y = be.zeros(2, 1)?;
/// be.apply(&mut y, Accum::Replace, &g, Trans::Yes, &x, 2.0)?;  // y = 2 G' x
/// assert_eq!(be.to_col_major(&y)?, vec![8.0, 12.0]);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub trait LinAlg: Clone + Send + Sync + core::fmt::Debug + 'static {
    /// The scalar type.
    type Real: Real;
    /// A dense column-major block.
    type Mat: Clone + Send + Sync + core::fmt::Debug;
    /// A matrix operator (`P`, `A`, `G`): dense or sparse, as the backend likes.
    type Op: Clone + Send + Sync + core::fmt::Debug;
    /// The factorization of `H = P + rho (A'A + G'G)`.
    type Factor: Send + Sync + core::fmt::Debug;
    /// A gradient wrt an operator (`P`, `A`, `G`): a dense block of the operator's shape for
    /// dense backends ([`dense_op_grads!`](crate::dense_op_grads) declares it), values on
    /// the operator's sparsity pattern for sparse ones (never an `n x n` dense array).
    type OpGrad: Clone + Send + Sync + core::fmt::Debug;

    /// A short name for messages and tables (`"faer"`, `"ndarray"`).
    fn name(&self) -> &'static str;

    // ---- creation and transfer ----

    /// An all-zero `nrows x ncols` block.
    fn zeros(&self, nrows: usize, ncols: usize) -> Result<Self::Mat>;
    /// A block from column-major data (`data.len() == nrows * ncols`).
    fn mat_from_col_major(
        &self,
        nrows: usize,
        ncols: usize,
        data: &[Self::Real],
    ) -> Result<Self::Mat>;
    /// The block's entries in column-major order.
    fn to_col_major(&self, m: &Self::Mat) -> Result<Vec<Self::Real>>;
    /// `(rows, cols)` of a block.
    fn shape(&self, m: &Self::Mat) -> (usize, usize);
    /// An operator from dense column-major data.
    fn op_from_col_major(
        &self,
        nrows: usize,
        ncols: usize,
        data: &[Self::Real],
    ) -> Result<Self::Op>;
    /// The operator's entries as a dense column-major array (used for validation and
    /// oracles; sparse backends may override the validation instead).
    fn op_to_col_major(&self, op: &Self::Op) -> Result<Vec<Self::Real>>;
    /// A dense block as an operator. The default copies through the host; a backend whose
    /// blocks and operators are the same type overrides it with a move.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let op = be.op_from_mat(be.mat_from_col_major(2, 1, &[1.0, 2.0])?)?;
    /// assert_eq!(be.op_to_col_major(&op)?, vec![1.0, 2.0]);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn op_from_mat(&self, m: Self::Mat) -> Result<Self::Op> {
        let (rows, cols) = self.shape(&m);
        self.op_from_col_major(rows, cols, &self.to_col_major(&m)?)
    }
    /// `(rows, cols)` of an operator.
    fn op_shape(&self, op: &Self::Op) -> (usize, usize);

    /// An operator from a host matrix, dense or sparse. The default expands a sparse matrix
    /// ([`HostMatrix::col_major`]); sparse backends keep its pattern.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{Field, HostMatrix, LinAlg, testing::RefBackend};
    /// let m = HostMatrix::from_triplets(Field::A, 1, 2, &[(0, 1, 5.0)])?;
    /// let op = RefBackend.op_from_host(&m)?;
    /// assert_eq!(RefBackend.op_to_col_major(&op)?, vec![0.0, 5.0]);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn op_from_host(&self, m: &HostMatrix) -> Result<Self::Op> {
        let data: Vec<Self::Real> = m.col_major().iter().map(|&v| Self::Real::of(v)).collect();
        self.op_from_col_major(m.nrows(), m.ncols(), &data)
    }

    /// The operator as a host matrix (for validation and output), named `field` in errors.
    /// The default is dense ([`LinAlg::op_to_col_major`]); sparse backends keep the pattern.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{Field, LinAlg, testing::RefBackend};
    /// let op = RefBackend.op_from_col_major(1, 2, &[1.0, 2.0])?;
    /// assert_eq!(RefBackend.op_to_host(&op, Field::A)?.get(0, 1), 2.0);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn op_to_host(&self, op: &Self::Op, field: crate::Field) -> Result<HostMatrix> {
        let (r, c) = self.op_shape(op);
        let data = self.op_to_col_major(op)?;
        HostMatrix::from_col_major(
            field,
            r,
            c,
            data.into_iter().map(Real::to_f64_lossy).collect(),
        )
    }

    // ---- operators and the one factorization ----

    /// `dst = [dst +] alpha * op(') * rhs`.
    fn apply(
        &self,
        dst: &mut Self::Mat,
        accum: Accum,
        op: &Self::Op,
        trans: Trans,
        rhs: &Self::Mat,
        alpha: Self::Real,
    ) -> Result<()>;
    /// `dst = [dst +] alpha * lhs * rhs'` for two dense blocks with the same number of
    /// columns (outer products: the gradients wrt `P`, `A`, `G`).
    fn gemm_nt(
        &self,
        dst: &mut Self::Mat,
        accum: Accum,
        lhs: &Self::Mat,
        rhs: &Self::Mat,
        alpha: Self::Real,
    ) -> Result<()>;
    /// `dst = [dst +] alpha lhs' rhs` for two blocks with the same number of rows whose
    /// product is known to be symmetric (`lhs' T^-1 lhs` with `rhs = T^-1 lhs`, say), and
    /// `dst` symmetric when accumulating. A dense backend forms one triangle and mirrors it
    /// (half the multiplications); the default forms the whole product.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{Accum, LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let u = be.mat_from_col_major(1, 2, &[1.0, 2.0])?;
    /// let v = be.mat_from_col_major(1, 2, &[3.0, 6.0])?; // 3 u: u'v is symmetric
    /// let mut dst = be.zeros(2, 2)?;
    /// be.symmetric_product_tn(&mut dst, Accum::Replace, &u, &v, 1.0)?;
    /// assert_eq!(be.to_col_major(&dst)?, vec![3.0, 6.0, 6.0, 12.0]);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn symmetric_product_tn(
        &self,
        dst: &mut Self::Mat,
        accum: Accum,
        lhs: &Self::Mat,
        rhs: &Self::Mat,
        alpha: Self::Real,
    ) -> Result<()> {
        let (k, n) = self.shape(lhs);
        let lhs = self.op_from_col_major(k, n, &self.to_col_major(lhs)?)?;
        self.apply(dst, accum, &lhs, Trans::Yes, rhs, alpha)
    }
    /// Factors `H = P + rho (A'A + G'G)` (Cholesky). `A` or `G` may have zero rows.
    ///
    /// # Errors
    /// [`Error::NotPositiveDefinite`](crate::Error::NotPositiveDefinite) when `H` is not
    /// positive definite.
    fn factor(
        &self,
        p: &Self::Op,
        a: &Self::Op,
        g: &Self::Op,
        rho: Self::Real,
    ) -> Result<Self::Factor>;
    /// Factors `H = P + shift I + rho (A'A + G'G)`: the proximal term of ADMM when `P` is
    /// singular on the null space of the constraints, and the regularized KKT system of the
    /// active-set polish. The default stacks the rows `sqrt(shift / rho) I` under `G`
    /// (sparse: `n` entries) and calls [`LinAlg::factor`]; dense backends add the shift to
    /// the diagonal.
    ///
    /// # Errors
    /// Those of [`LinAlg::factor`].
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let p = be.op_from_col_major(2, 2, &[0.0; 4])?;
    /// let a = be.op_from_col_major(1, 2, &[1.0, 1.0])?;
    /// let none = be.op_from_col_major(0, 2, &[])?;
    /// assert!(be.factor(&p, &a, &none, 1.0).is_err()); // H = [[1, 1], [1, 1]]
    /// let f = be.factor_shifted(&p, &a, &none, 1.0, 0.5)?;
    /// let mut x = be.mat_from_col_major(2, 1, &[2.5, 2.5])?;
    /// be.solve_in_place(&f, &mut x)?;
    /// assert!((be.to_col_major(&x)?[0] - 1.0).abs() < 1e-12);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn factor_shifted(
        &self,
        p: &Self::Op,
        a: &Self::Op,
        g: &Self::Op,
        rho: Self::Real,
        shift: Self::Real,
    ) -> Result<Self::Factor> {
        if shift == Self::Real::zero() {
            return self.factor(p, a, g, rho);
        }
        let n = self.op_shape(p).0;
        let root = (shift.to_f64_lossy() / rho.to_f64_lossy()).sqrt();
        let diagonal: Vec<(usize, usize, f64)> = (0..n).map(|i| (i, i, root)).collect();
        let rows = HostMatrix::from_triplets(crate::Field::G, n, n, &diagonal)?;
        let stacked = self.op_stack_rows(g, &self.op_from_host(&rows)?)?;
        self.factor(p, a, &stacked, rho)
    }
    /// `rhs = H^-1 rhs` with the factorization of [`LinAlg::factor`].
    fn solve_in_place(&self, factor: &Self::Factor, rhs: &mut Self::Mat) -> Result<()>;
    /// `H^-1` (`n x n`, `n` the dimension of `H`) from the factorization of
    /// [`LinAlg::factor`] (the Jacobian wrt `q` starts from it). The default solves with the identity (`n^3` multiplications); a
    /// dense backend inverts `L` instead (`n^3 / 3`).
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let h = be.op_from_col_major(2, 2, &[4.0, 2.0, 2.0, 3.0])?;
    /// let inv = be.factor_inverse(&be.cholesky(&h)?, 2)?;
    /// assert!((be.to_col_major(&inv)?[1] + 0.25).abs() < 1e-12);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn factor_inverse(&self, factor: &Self::Factor, n: usize) -> Result<Self::Mat> {
        let mut identity = vec![Self::Real::zero(); n * n];
        (0..n).for_each(|i| identity[i * n + i] = Self::Real::one());
        let mut inverse = self.mat_from_col_major(n, n, &identity)?;
        self.solve_in_place(factor, &mut inverse)?;
        Ok(inverse)
    }
    /// The Cholesky factorization of a small symmetric positive definite operator (the
    /// limit system, the convexity test on `M`, the KKT Schur complement), at the backend's
    /// full precision even when [`LinAlg::factor`] trades precision for speed. The default
    /// is [`LinAlg::factor`] with no constraint blocks and `rho = 0`.
    ///
    /// # Errors
    /// [`Error::NotPositiveDefinite`](crate::Error::NotPositiveDefinite) when `op` is not
    /// positive definite.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let s = be.op_from_col_major(2, 2, &[4.0, 2.0, 2.0, 3.0])?;
    /// let f = be.cholesky(&s)?;
    /// let mut x = be.mat_from_col_major(2, 1, &[6.0, 5.0])?;
    /// be.solve_in_place(&f, &mut x)?;
    /// assert!((be.to_col_major(&x)?[0] - 1.0).abs() < 1e-12);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn cholesky(&self, op: &Self::Op) -> Result<Self::Factor> {
        let none = self.op_from_col_major(0, self.op_shape(op).1, &[])?;
        self.factor(op, &none, &none, Self::Real::zero())
    }

    /// [`LinAlg::cholesky`] of an operator that is not needed afterwards: a backend whose
    /// factor can take the operator's storage overrides it to factor in place, without a
    /// copy (the default borrows).
    ///
    /// # Errors
    /// As [`LinAlg::cholesky`].
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let f = be.cholesky_owned(be.op_from_col_major(1, 1, &[4.0])?)?;
    /// let mut x = be.mat_from_col_major(1, 1, &[2.0])?;
    /// be.solve_in_place(&f, &mut x)?;
    /// assert_eq!(be.to_col_major(&x)?, vec![0.5]);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn cholesky_owned(&self, op: Self::Op) -> Result<Self::Factor> {
        self.cholesky(&op)
    }

    /// [`LinAlg::cholesky_owned`] in the arithmetic of [`LinAlg::factor`]
    /// ([`LinAlg::factor_epsilon`]), for systems whose solves are refined against residuals
    /// in full precision (the limit system of a coarse `H`): a backend that factors `H` in
    /// a shorter type overrides it to do the same here (the default is
    /// [`LinAlg::cholesky_owned`]).
    ///
    /// # Errors
    /// As [`LinAlg::cholesky`].
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let f = be.cholesky_owned_coarse(be.op_from_col_major(1, 1, &[4.0])?)?;
    /// let mut x = be.mat_from_col_major(1, 1, &[2.0])?;
    /// be.solve_in_place(&f, &mut x)?;
    /// assert_eq!(be.to_col_major(&x)?, vec![0.5]);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn cholesky_owned_coarse(&self, op: Self::Op) -> Result<Self::Factor> {
        self.cholesky_owned(op)
    }

    /// The Cholesky factor of `S = shift I + alpha B + X T^-1 X'`: `B` (`a x a`, column-major
    /// on the host, symmetric), `(alpha, shift)` and, when given, the factor of `T` (`i x i`)
    /// and `X` (`a x i`); in the arithmetic of [`LinAlg::factor`] when `coarse` (as
    /// [`LinAlg::cholesky_owned_coarse`]). The limit system's
    /// `Sigma = M_AA + M_AI T^-1 M_IA` and the convexity test's `(1 + tau)/rho I - M`. The
    /// default forms `X T^-1 X'` by [`LinAlg::gram_inverse`] (in `T`'s arithmetic), adds
    /// the rest and factors the sum; a backend may form and factor it in place.
    ///
    /// # Errors
    /// As [`LinAlg::cholesky`]: [`crate::Error::NotPositiveDefinite`] when `S` is not.
    ///
    /// # Panics
    /// When `base` does not hold `a * a` values or `X` is not `a x i` (the shapes are the
    /// caller's, as for [`LinAlg::apply`]).
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let t = be.cholesky_owned(be.op_from_col_major(1, 1, &[2.0])?)?;
    /// let x = be.op_from_col_major(1, 1, &[2.0])?;
    /// // S = 1 + 1 + 2 * 2 / 2 = 4
    /// let s = be.cholesky_schur(1, &[1.0], (1.0, 1.0), Some((&t, &x)), false)?;
    /// let mut y = be.mat_from_col_major(1, 1, &[4.0])?;
    /// be.solve_in_place(&s, &mut y)?;
    /// assert!((be.to_col_major(&y)?[0] - 1.0).abs() < 1e-15);
    /// // 1 - B: not positive definite
    /// assert!(be.cholesky_schur(1, &[1.0], (-1.0, 1.0), None, false).is_err());
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn cholesky_schur(
        &self,
        a: usize,
        base: &[Self::Real],
        (alpha, shift): (Self::Real, Self::Real),
        schur: Option<(&Self::Factor, &Self::Op)>,
        coarse: bool,
    ) -> Result<Self::Factor> {
        let mut s: Vec<Self::Real> = base.iter().map(|&v| alpha * v).collect();
        (0..a).for_each(|i| s[i * a + i] = s[i * a + i] + shift);
        let mut s = self.mat_from_col_major(a, a, &s)?;
        if let Some((t, x)) = schur {
            let (xtx, _) = self.gram_inverse(t, x, false)?;
            self.axpby(Self::Real::one(), &xtx, Self::Real::one(), &mut s)?;
        }
        let s = self.op_from_mat(s)?;
        if coarse {
            self.cholesky_owned_coarse(s)
        } else {
            self.cholesky_owned(s)
        }
    }

    /// The pivots of a Cholesky factorization (`L_ii^2`), for the condition estimate of the
    /// differentiability report ([`AltDiff::differentiability`](crate::AltDiff::differentiability));
    /// `None` (the default) when the backend does not keep them.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let f = be.cholesky(&be.op_from_col_major(2, 2, &[4.0, 2.0, 2.0, 3.0])?)?;
    /// let pivots = be.factor_pivots(&f)?.unwrap();
    /// assert!((pivots[0] - 4.0).abs() < 1e-14 && (pivots[1] - 2.0).abs() < 1e-14);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn factor_pivots(&self, factor: &Self::Factor) -> Result<Option<Vec<f64>>> {
        let _ = factor;
        Ok(None)
    }

    /// The unit roundoff of [`LinAlg::factor`] and its solves: the precision of
    /// `Self::Real` (the default), or a coarser one when the backend factors `H` in a
    /// shorter type to save time (faer's `Precision::Single`: `f32::EPSILON`). Above
    /// `Self::Real`'s own, the active-set solves of the limit (the forward polish, the limit
    /// VJP) are refined against residuals in full precision, so their results keep it.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// assert_eq!(RefBackend.factor_epsilon(), f64::EPSILON);
    /// # }
    /// ```
    fn factor_epsilon(&self) -> f64 {
        <Self::Real as num_traits::Float>::epsilon().to_f64_lossy()
    }

    // ---- gradients wrt the operators ----

    /// An all-zero gradient for the operator `op`: its shape (dense) or its pattern (sparse).
    ///
    /// # Errors
    /// A backend error.
    fn grad_zeros(&self, op: &Self::Op) -> Result<Self::OpGrad>;
    /// `grad += sum_t alpha_t lhs_t rhs_t'` on the gradient's pattern (each `lhs_t` has the
    /// gradient's rows, each `rhs_t` its columns, both the same number of columns: a batch
    /// of outer products is summed).
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{Field, LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let op = be.op_from_col_major(1, 2, &[0.0, 0.0])?;
    /// let (u, v) = (be.mat_from_col_major(1, 1, &[2.0])?, be.mat_from_col_major(2, 1, &[1.0, 3.0])?);
    /// let mut grad = be.grad_zeros(&op)?;
    /// be.grad_add_outer(&mut grad, &[(0.5, &u, &v)])?;
    /// assert_eq!(be.grad_to_host(&grad, Field::A)?.col_major().to_vec(), vec![1.0, 3.0]);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn grad_add_outer(
        &self,
        grad: &mut Self::OpGrad,
        terms: &[(Self::Real, &Self::Mat, &Self::Mat)],
    ) -> Result<()>;
    /// A new gradient `sum_t alpha_t lhs_t rhs_t'` on the pattern of `op` (the closed forms
    /// of the VJPs). The default is [`LinAlg::grad_zeros`] then [`LinAlg::grad_add_outer`]; a
    /// dense backend writes each entry once (an `n x n` gradient is memory-bound: one pass
    /// instead of a zero fill and a read-modify-write per term).
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{Field, LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let op = be.op_from_col_major(1, 2, &[0.0, 0.0])?;
    /// let (u, v) = (be.mat_from_col_major(1, 1, &[2.0])?, be.mat_from_col_major(2, 1, &[1.0, 3.0])?);
    /// let grad = be.grad_outer(&op, &[(0.5, &u, &v), (1.0, &u, &v)])?;
    /// assert_eq!(be.grad_to_host(&grad, Field::A)?.col_major().to_vec(), vec![3.0, 9.0]);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn grad_outer(
        &self,
        op: &Self::Op,
        terms: &[(Self::Real, &Self::Mat, &Self::Mat)],
    ) -> Result<Self::OpGrad> {
        let mut grad = self.grad_zeros(op)?;
        self.grad_add_outer(&mut grad, terms)?;
        Ok(grad)
    }
    /// The gradient on the host (dense, or sparse on the pattern), named `field`.
    ///
    /// # Errors
    /// A backend error.
    fn grad_to_host(&self, grad: &Self::OpGrad, field: crate::Field) -> Result<HostMatrix>;
    /// A gradient from a host matrix given by [`LinAlg::grad_to_host`] (same shape and
    /// pattern; the values changed).
    ///
    /// # Errors
    /// A backend error.
    fn grad_from_host(&self, host: &HostMatrix) -> Result<Self::OpGrad>;

    // ---- elementwise and cone operations ----

    /// `y = alpha x + beta y`; when `beta == 0`, `y` is not read (BLAS convention).
    fn axpby(
        &self,
        alpha: Self::Real,
        x: &Self::Mat,
        beta: Self::Real,
        y: &mut Self::Mat,
    ) -> Result<()>;
    /// `dst = delta dst + a_1 x_1 + ... + a_N x_N`, summed in that order (`dst` not read when
    /// `delta == 0`). The default chains [`LinAlg::axpby`], one pass per term; a backend with
    /// host slices overrides it with one pass ([`kernels::lincomb`](crate::kernels::lincomb)),
    /// with the same values.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let x = be.mat_from_col_major(2, 1, &[1.0, 1.0])?;
    /// let z = be.mat_from_col_major(2, 1, &[0.5, 0.0])?;
    /// let mut y = be.mat_from_col_major(2, 1, &[1.0, 2.0])?;
    /// be.lincomb([(2.0, &x), (-1.0, &z)], 1.0, &mut y)?;
    /// assert_eq!(be.to_col_major(&y)?, vec![2.5, 4.0]);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn lincomb<const N: usize>(
        &self,
        terms: [(Self::Real, &Self::Mat); N],
        delta: Self::Real,
        dst: &mut Self::Mat,
    ) -> Result<()> {
        lincomb_by_axpby(self, terms, delta, dst)
    }

    /// `x = max(x, 0)` elementwise: the projection onto the nonnegative orthant.
    fn proj_nonneg(&self, x: &mut Self::Mat) -> Result<()>;
    /// The derivative of [`LinAlg::proj_nonneg`] applied to a block: zeroes row `i` of `m`
    /// wherever `at[i] <= 0` (the mask rule `1[at > 0]`, strict). `at` has one column, which
    /// masks every column of `m`, or as many columns as `m`, masking column by column.
    fn dproj_nonneg(&self, at: &Self::Mat, m: &mut Self::Mat) -> Result<()>;
    /// The slack and dual updates of a dual-space iteration
    /// ([`kernels::slack_dual_one`](crate::kernels::slack_dual_one) on every entry):
    /// `s = keep(bh - cx - y/rho)`, then `y = y + rho (cx + s - bh)`, where `keep` zeroes the
    /// rows with `mask <= 0` (`mask` has one column, or as many as the block) and, when
    /// `project`, clips the others at 0. A CPU backend makes one pass over the block; the
    /// default chains [`LinAlg::lincomb`], [`LinAlg::proj_nonneg`] and
    /// [`LinAlg::dproj_nonneg`] (the same values, four passes).
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let (mut s, mut y) = (be.zeros(2, 1)?, be.mat_from_col_major(2, 1, &[0.0, 2.0])?);
    /// let cx = be.zeros(2, 1)?;
    /// let bh = be.mat_from_col_major(2, 1, &[1.0, 1.0])?;
    /// let mask = be.mat_from_col_major(2, 1, &[1.0, 1.0])?;
    /// be.slack_dual_update(&mut s, &mut y, &cx, &bh, &mask, true, 1.0)?;
    /// assert_eq!(be.to_col_major(&s)?, vec![1.0, 0.0]); // 1 - 0 - 0, max(1 - 0 - 2, 0)
    /// assert_eq!(be.to_col_major(&y)?, vec![0.0, 1.0]); // y + (0 + s - 1)
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    fn slack_dual_update(
        &self,
        s: &mut Self::Mat,
        y: &mut Self::Mat,
        cx: &Self::Mat,
        bh: &Self::Mat,
        mask: &Self::Mat,
        project: bool,
        rho: Self::Real,
    ) -> Result<()> {
        let (one, zero) = (Self::Real::one(), Self::Real::zero());
        self.lincomb([(one, bh), (-one, cx), (-one / rho, &*y)], zero, s)?;
        if project {
            self.proj_nonneg(s)?;
        }
        self.dproj_nonneg(mask, s)?;
        self.lincomb([(rho, cx), (rho, &*s), (-rho, bh)], one, y)
    }

    // ---- reductions (host reads: a device backend synchronizes here) ----

    /// The largest absolute entry (0 for an empty block). NaN when any entry is NaN.
    fn norm_inf(&self, x: &Self::Mat) -> Result<Self::Real>;
    /// The sum of the elementwise products of two blocks of the same shape.
    fn dot(&self, x: &Self::Mat, y: &Self::Mat) -> Result<Self::Real>;

    // ---- provided ----

    /// `dst = src`.
    fn copy_from(&self, dst: &mut Self::Mat, src: &Self::Mat) -> Result<()> {
        self.axpby(Self::Real::one(), src, Self::Real::zero(), dst)
    }

    /// Factors `P + shift I` to test that `P` is positive semidefinite up to `shift`.
    /// Returns `Ok(false)` when the factorization fails. The default forms `P + shift I`
    /// through the host (one copy of `P`) and factors it with empty `A`, `G`.
    fn is_psd_with_shift(&self, p: &Self::Op, shift: Self::Real) -> Result<bool> {
        let (n, _) = self.op_shape(p);
        let mut data = self.op_to_col_major(p)?;
        for i in 0..n {
            data[i * n + i] = data[i * n + i] + shift;
        }
        let shifted = self.op_from_col_major(n, n, &data)?;
        let no_rows = self.op_from_col_major(0, n, &[])?;
        match self.factor(&shifted, &no_rows, &no_rows, Self::Real::zero()) {
            Ok(_) => Ok(true),
            Err(crate::Error::NotPositiveDefinite { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// `M = C H^-1 C'` (r x r) for `C` (r x n) and the factor of `H`, and `K = H^-1 C'`
    /// (n x r) when `with_k`. The default solves and multiplies; a backend holding
    /// `H = L L'` forms `W = L^-1 C'`, `M = W'W` (half the work) and `K = L^-T W`.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let h = be.op_from_col_major(2, 2, &[2.0, 0.0, 0.0, 4.0])?;
    /// let none = be.op_from_col_major(0, 2, &[])?;
    /// let factor = be.factor(&h, &none, &none, 0.0)?;
    /// let c = be.op_from_col_major(1, 2, &[1.0, 2.0])?;
    /// let (m, k) = be.gram_inverse(&factor, &c, true)?;
    /// assert!((be.to_col_major(&m)?[0] - 1.5).abs() < 1e-12); // 1/2 + 4/4
    /// assert!(be.to_col_major(&k.unwrap())?.iter().all(|v| (v - 0.5).abs() < 1e-12));
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn gram_inverse(
        &self,
        factor: &Self::Factor,
        c: &Self::Op,
        with_k: bool,
    ) -> Result<(Self::Mat, Option<Self::Mat>)> {
        let (r, n) = self.op_shape(c);
        let c_host = self.op_to_col_major(c)?;
        let ct: Vec<Self::Real> = (0..r)
            .flat_map(|i| c_host.iter().skip(i).step_by(r).copied())
            .collect();
        let mut k = self.mat_from_col_major(n, r, &ct)?;
        self.solve_in_place(factor, &mut k)?;
        let mut m = self.zeros(r, r)?;
        self.apply(
            &mut m,
            crate::Accum::Replace,
            c,
            crate::Trans::No,
            &k,
            Self::Real::one(),
        )?;
        Ok((m, with_k.then_some(k)))
    }

    /// [`LinAlg::gram_inverse`] for a factor `H = L L'` that keeps its half `W = L^-1 C'`
    /// (n x r): returns `(M, W)`. Then `K y = H^-1 C' y = L^-T (W y)`
    /// ([`LinAlg::half_product_solve`]) costs one product and one triangular solve per
    /// block instead of a product with `C'` and two triangular solves (the Jacobians wrt `b`
    /// and `h` of the dual space are such blocks). `None`, the default, where the factor is
    /// not of that form; then [`LinAlg::half_product_solve`] is never called.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let h = be.op_from_col_major(1, 1, &[4.0])?;
    /// let none = be.op_from_col_major(0, 1, &[])?;
    /// let factor = be.factor(&h, &none, &none, 0.0)?;
    /// let c = be.op_from_col_major(1, 1, &[2.0])?;
    /// assert!(be.gram_inverse_with_half(&factor, &c)?.is_none()); // the reference keeps none
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn gram_inverse_with_half(
        &self,
        factor: &Self::Factor,
        c: &Self::Op,
    ) -> Result<Option<(Self::Mat, Self::Op)>> {
        let _ = (factor, c);
        Ok(None)
    }

    /// `alpha L^-T (W rhs)` for the factor `H = L L'` and the half `W = L^-1 C'` kept by
    /// [`LinAlg::gram_inverse_with_half`] (so `alpha H^-1 C' rhs`: one product and one
    /// triangular solve). The default is an error: a backend without halves is never asked.
    ///
    /// # Errors
    /// [`crate::Error::Request`] by default; a backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let h = be.op_from_col_major(1, 1, &[4.0])?;
    /// let factor = be.cholesky(&h)?;
    /// let w = be.op_from_col_major(1, 1, &[0.5])?;
    /// let rhs = be.mat_from_col_major(1, 1, &[1.0])?;
    /// assert!(be.half_product_solve(&factor, &w, &rhs, 1.0).is_err());
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn half_product_solve(
        &self,
        factor: &Self::Factor,
        half: &Self::Op,
        rhs: &Self::Mat,
        alpha: Self::Real,
    ) -> Result<Self::Mat> {
        let _ = (factor, half, rhs, alpha);
        Err(crate::Error::Request(
            "this backend keeps no half L of H = LL' (gram_inverse_with_half is None)",
        ))
    }

    /// `M = C H^-1 C'` ([`LinAlg::gram_inverse`] without `K`) for a factor that may keep what
    /// it formed `M` from for later solves through this `C` ([`LinAlg::solve_split`],
    /// [`LinAlg::solve_join`]): a factor `H = L L'` keeps `W = L^-1 C'`. The default keeps
    /// nothing.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let h = be.op_from_col_major(2, 2, &[2.0, 0.0, 0.0, 4.0])?;
    /// let none = be.op_from_col_major(0, 2, &[])?;
    /// let mut factor = be.factor(&h, &none, &none, 0.0)?;
    /// let c = be.op_from_col_major(1, 2, &[1.0, 2.0])?;
    /// let m = be.gram_inverse_keeping(&mut factor, &c)?;
    /// assert!((be.to_col_major(&m)?[0] - 1.5).abs() < 1e-12); // 1/2 + 4/4
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn gram_inverse_keeping(&self, factor: &mut Self::Factor, c: &Self::Op) -> Result<Self::Mat> {
        Ok(self.gram_inverse(factor, c, false)?.0)
    }

    /// `dst = [dst +] alpha M v` for the `M` (`m`) of [`LinAlg::gram_inverse_keeping`]: a
    /// factor that kept `M` in its own, coarser arithmetic (the one `m` was converted from)
    /// applies that copy, at a fraction of the memory traffic (the products of the
    /// dual-space iteration). The default applies `m`.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{Accum, LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let h = be.op_from_col_major(1, 1, &[4.0])?;
    /// let none = be.op_from_col_major(0, 1, &[])?;
    /// let mut factor = be.factor(&h, &none, &none, 0.0)?;
    /// let m = be.gram_inverse_keeping(&mut factor, &be.op_from_col_major(1, 1, &[2.0])?)?;
    /// let m = be.op_from_mat(m)?; // M = 2 * 2 / 4
    /// let mut dst = be.mat_from_col_major(1, 1, &[0.0])?;
    /// be.apply_gram(&factor, &m, &mut dst, Accum::Replace, &be.mat_from_col_major(1, 1, &[3.0])?, 2.0)?;
    /// assert!((be.to_col_major(&dst)?[0] - 6.0).abs() < 1e-12);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn apply_gram(
        &self,
        factor: &Self::Factor,
        m: &Self::Op,
        dst: &mut Self::Mat,
        accum: crate::Accum,
        v: &Self::Mat,
        alpha: Self::Real,
    ) -> Result<()> {
        let _ = factor;
        self.apply(dst, accum, m, crate::Trans::No, v, alpha)
    }

    /// `(C H^-1 f, t)`: a solve with `H` seen through `C`, and the intermediate `t` that
    /// [`LinAlg::solve_join`] finishes `H^-1 (f - C'y)` from, with the same `C` (what `t`
    /// holds is the backend's: the default's `t` is `H^-1 f`; a factor `H = L L'` that kept
    /// `W = L^-1 C'` ([`LinAlg::gram_inverse_keeping`]) returns `t = L^-1 f` and
    /// `C H^-1 f = W't`, half the triangular solves and no product with `C`).
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let h = be.op_from_col_major(2, 2, &[2.0, 0.0, 0.0, 4.0])?;
    /// let none = be.op_from_col_major(0, 2, &[])?;
    /// let factor = be.factor(&h, &none, &none, 0.0)?;
    /// let c = be.op_from_col_major(1, 2, &[1.0, 2.0])?;
    /// let f = be.mat_from_col_major(2, 1, &[2.0, 4.0])?;
    /// let (chf, t) = be.solve_split(&factor, &c, &f)?;
    /// assert!((be.to_col_major(&chf)?[0] - 3.0).abs() < 1e-12); // C H^-1 f = 1 + 2
    /// let y = be.mat_from_col_major(1, 1, &[1.0])?;
    /// let x = be.solve_join(&factor, &c, t, &y)?; // H^-1 (f - C'y) = [1/2, 1/2]
    /// assert!(be.to_col_major(&x)?.iter().all(|v| (v - 0.5).abs() < 1e-12));
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn solve_split(
        &self,
        factor: &Self::Factor,
        c: &Self::Op,
        f: &Self::Mat,
    ) -> Result<(Self::Mat, Self::Mat)> {
        let mut t = f.clone();
        self.solve_in_place(factor, &mut t)?;
        let mut chf = self.zeros(self.op_shape(c).0, self.shape(f).1)?;
        self.apply(
            &mut chf,
            crate::Accum::Replace,
            c,
            crate::Trans::No,
            &t,
            Self::Real::one(),
        )?;
        Ok((chf, t))
    }

    /// `H^-1 (f - C'y)` from the `t` of [`LinAlg::solve_split`] of `f` with the same `C`.
    /// The default solves for `C'y` and subtracts.
    ///
    /// # Errors
    /// A backend error.
    fn solve_join(
        &self,
        factor: &Self::Factor,
        c: &Self::Op,
        t: Self::Mat,
        y: &Self::Mat,
    ) -> Result<Self::Mat> {
        let one = Self::Real::one();
        let mut cty = self.zeros(self.op_shape(c).1, self.shape(y).1)?;
        self.apply(
            &mut cty,
            crate::Accum::Replace,
            c,
            crate::Trans::Yes,
            y,
            one,
        )?;
        self.solve_in_place(factor, &mut cty)?;
        let mut x = t;
        self.axpby(-one, &cty, one, &mut x)?;
        Ok(x)
    }

    /// `diag(rows) m diag(cols)` in place; `None` leaves that side alone. The default goes
    /// through the host (one copy each way).
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let mut m = be.mat_from_col_major(2, 2, &[1.0, 1.0, 1.0, 1.0])?;
    /// be.scale_rows_cols(&mut m, Some(&[2.0, 3.0]), Some(&[1.0, 10.0]))?;
    /// assert_eq!(be.to_col_major(&m)?, vec![2.0, 3.0, 20.0, 30.0]);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn scale_rows_cols(
        &self,
        m: &mut Self::Mat,
        rows: Option<&[Self::Real]>,
        cols: Option<&[Self::Real]>,
    ) -> Result<()> {
        let (r, c) = self.shape(m);
        let mut data = self.to_col_major(m)?;
        scale_col_major(&mut data, r, rows, cols);
        *m = self.mat_from_col_major(r, c, &data)?;
        Ok(())
    }

    /// `diag(rows) op diag(cols)`, a new operator. The default goes through the host.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let op = be.op_from_col_major(1, 2, &[1.0, 1.0])?;
    /// let scaled = be.op_scaled(&op, &[2.0], &[3.0, 5.0])?;
    /// assert_eq!(be.op_to_col_major(&scaled)?, vec![6.0, 10.0]);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn op_scaled(
        &self,
        op: &Self::Op,
        rows: &[Self::Real],
        cols: &[Self::Real],
    ) -> Result<Self::Op> {
        let (r, c) = self.op_shape(op);
        let mut data = self.op_to_col_major(op)?;
        scale_col_major(&mut data, r, Some(rows), Some(cols));
        self.op_from_col_major(r, c, &data)
    }

    /// The largest absolute entry of every row and every column of
    /// `diag(rows) op diag(cols)` (for equilibration). The default goes through the host.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let op = be.op_from_col_major(2, 2, &[1.0, -4.0, 0.0, 2.0])?;
    /// let (r, c) = be.op_abs_max(&op, &[1.0, 0.5], &[1.0, 1.0])?;
    /// assert_eq!((r, c), (vec![1.0, 2.0], vec![2.0, 1.0]));
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    #[allow(clippy::type_complexity)]
    fn op_abs_max(
        &self,
        op: &Self::Op,
        rows: &[Self::Real],
        cols: &[Self::Real],
    ) -> Result<(Vec<Self::Real>, Vec<Self::Real>)> {
        let (r, _) = self.op_shape(op);
        let data = self.op_to_col_major(op)?;
        let columns = data.chunks_exact(r.max(1));
        Ok(crate::kernels::abs_max_scaled(columns, rows, cols))
    }

    /// `[top; bottom]`: the rows of `top` over those of `bottom` (same column count). The
    /// default goes through the host.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let top = be.op_from_col_major(1, 2, &[1.0, 2.0])?;
    /// let bottom = be.op_from_col_major(1, 2, &[3.0, 4.0])?;
    /// let c = be.op_stack_rows(&top, &bottom)?;
    /// assert_eq!(be.op_to_col_major(&c)?, vec![1.0, 3.0, 2.0, 4.0]);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn op_stack_rows(&self, top: &Self::Op, bottom: &Self::Op) -> Result<Self::Op> {
        let ((p, n), (m, n_bottom)) = (self.op_shape(top), self.op_shape(bottom));
        crate::kernels::check_stackable(n, (m, n_bottom))?;
        let (top_data, bottom_data) = (self.op_to_col_major(top)?, self.op_to_col_major(bottom)?);
        let mut data = Vec::with_capacity((p + m) * n);
        for col in 0..n {
            data.extend_from_slice(&top_data[col * p..(col + 1) * p]);
            data.extend_from_slice(&bottom_data[col * m..(col + 1) * m]);
        }
        self.op_from_col_major(p + m, n, &data)
    }

    /// The sums of `|op|` over every row and every column, in `f64` (for norm bounds). The
    /// default goes through the host.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let op = be.op_from_col_major(2, 2, &[1.0, -4.0, 0.0, 2.0])?;
    /// assert_eq!(be.op_abs_sums(&op)?, (vec![1.0, 6.0], vec![5.0, 2.0]));
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    #[allow(clippy::type_complexity)]
    fn op_abs_sums(&self, op: &Self::Op) -> Result<(Vec<f64>, Vec<f64>)> {
        let (r, c) = self.op_shape(op);
        if r == 0 {
            return Ok((Vec::new(), vec![0.0; c]));
        }
        let data = self.op_to_col_major(op)?;
        Ok(crate::kernels::abs_sums(data.chunks_exact(r), r))
    }

    /// The largest `|op_ij|` and the sums of `|op_ij|` of every column and, `with_rows`, of
    /// every row ([`kernels::AbsProfile`](crate::kernels::AbsProfile)): the first pass of the
    /// Ruiz equilibration, whose sums also bound `|H|` for the convexity test. The default
    /// calls [`LinAlg::op_abs_max`] (unit scales) and [`LinAlg::op_abs_sums`]; a backend with
    /// host columns measures both in one pass
    /// ([`kernels::abs_profile`](crate::kernels::abs_profile)).
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let op = be.op_from_col_major(2, 2, &[1.0, -4.0, 0.0, 2.0])?;
    /// let profile = be.op_abs_profile(&op, true)?;
    /// assert_eq!((profile.row_max, profile.col_sums), (vec![1.0, 4.0], vec![5.0, 2.0]));
    /// assert!(be.op_abs_profile(&op, false)?.row_sums.is_empty());
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn op_abs_profile(
        &self,
        op: &Self::Op,
        with_rows: bool,
    ) -> Result<crate::kernels::AbsProfile<Self::Real>> {
        let (r, c) = self.op_shape(op);
        let ones = vec![Self::Real::one(); r.max(c)];
        let (mut row_max, col_max) = self.op_abs_max(op, &ones[..r], &ones[..c])?;
        let (mut row_sums, col_sums) = self.op_abs_sums(op)?;
        if !with_rows {
            (row_max, row_sums) = (Vec::new(), Vec::new());
        }
        Ok(crate::kernels::AbsProfile {
            row_max,
            col_max,
            row_sums,
            col_sums,
        })
    }

    /// Whether the dense `(p + m) x (p + m)` dual-space operator `M = C H^-1 C'` is worth
    /// forming automatically ([`IterationSpace::Auto`](crate::IterationSpace::Auto), the
    /// active-set polish, the limit VJP of batches). Dense backends: yes; sparse ones: no
    /// (it would be dense; they iterate in the primal space, where a step costs
    /// `O(nnz(L) + nnz(A, G))`).
    fn dense_dual_space(&self) -> bool {
        true
    }

    /// Factors `H` for a new penalty `rho` after `previous` (adaptive rho). The default
    /// factors afresh; a sparse backend reuses the symbolic analysis of `previous`.
    ///
    /// # Errors
    /// Those of [`LinAlg::factor`].
    fn refactor(
        &self,
        previous: &Self::Factor,
        p: &Self::Op,
        a: &Self::Op,
        g: &Self::Op,
        rho: Self::Real,
    ) -> Result<Self::Factor> {
        let _ = previous;
        self.factor(p, a, g, rho)
    }

    /// The rows `rows` of `op`, a new operator. The default goes through the host.
    ///
    /// # Errors
    /// A backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{LinAlg, testing::RefBackend};
    /// let be = RefBackend;
    /// let op = be.op_from_col_major(3, 1, &[1.0, 2.0, 3.0])?;
    /// let picked = be.op_select_rows(&op, &[2, 0])?;
    /// assert_eq!(be.op_to_col_major(&picked)?, vec![3.0, 1.0]);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn op_select_rows(&self, op: &Self::Op, rows: &[usize]) -> Result<Self::Op> {
        let (r, c) = self.op_shape(op);
        let data = self.op_to_col_major(op)?;
        let picked: Vec<Self::Real> = (0..c)
            .flat_map(|j| rows.iter().map(move |&i| (i, j)))
            .map(|(i, j)| data[j * r + i])
            .collect();
        self.op_from_col_major(rows.len(), c, &picked)
    }

    /// Waits for queued device work (for benchmarks); CPU backends return at once.
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
}

/// Declares [`LinAlg::OpGrad`] as the backend's dense block and implements the gradient
/// methods with [`LinAlg::gemm_nt`] and the host transfers: for dense backends, inside their
/// `impl LinAlg`.
///
/// # Example
/// ```ignore
/// impl LinAlg for MyDenseBackend {
///     type Mat = MyMat;
///     altdiff_core::dense_op_grads!();
///     // ...
/// }
/// ```
#[macro_export]
macro_rules! dense_op_grads {
    () => {
        type OpGrad = <Self as $crate::LinAlg>::Mat;

        fn grad_zeros(&self, op: &Self::Op) -> $crate::Result<Self::OpGrad> {
            let (rows, cols) = $crate::LinAlg::op_shape(self, op);
            $crate::LinAlg::zeros(self, rows, cols)
        }

        fn grad_add_outer(
            &self,
            grad: &mut Self::OpGrad,
            terms: &[(Self::Real, &Self::Mat, &Self::Mat)],
        ) -> $crate::Result<()> {
            for &(alpha, lhs, rhs) in terms {
                $crate::LinAlg::gemm_nt(self, grad, $crate::Accum::Add, lhs, rhs, alpha)?;
            }
            Ok(())
        }

        fn grad_to_host(
            &self,
            grad: &Self::OpGrad,
            field: $crate::Field,
        ) -> $crate::Result<$crate::HostMatrix> {
            let (rows, cols) = $crate::LinAlg::shape(self, grad);
            let data = $crate::LinAlg::to_col_major(self, grad)?;
            $crate::HostMatrix::from_col_major(
                field,
                rows,
                cols,
                data.into_iter().map($crate::Real::to_f64_lossy).collect(),
            )
        }

        fn grad_from_host(&self, host: &$crate::HostMatrix) -> $crate::Result<Self::OpGrad> {
            let data: Vec<Self::Real> = host
                .col_major()
                .iter()
                .map(|&v| <Self::Real as $crate::Real>::of(v))
                .collect();
            $crate::LinAlg::mat_from_col_major(self, host.nrows(), host.ncols(), &data)
        }
    };
}

/// `diag(rows) data diag(cols)` for column-major `data` with `r` rows.
fn scale_col_major<T: Real>(data: &mut [T], r: usize, rows: Option<&[T]>, cols: Option<&[T]>) {
    for (j, column) in data.chunks_exact_mut(r.max(1)).enumerate() {
        let cj = cols.map_or(T::one(), |c| c[j]);
        for (i, v) in column.iter_mut().enumerate() {
            // one product of the scales: diag(d) P diag(d) stays exactly symmetric
            *v = *v * (rows.map_or(T::one(), |d| d[i]) * cj);
        }
    }
}

/// [`LinAlg::lincomb`] by [`LinAlg::axpby`], one pass per term (the trait's default, for
/// backends that override it only for some layouts).
///
/// # Errors
/// A backend error.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{LinAlg, lincomb_by_axpby, testing::RefBackend};
/// let be = RefBackend;
/// let x = be.mat_from_col_major(1, 1, &[3.0])?;
/// let mut y = be.mat_from_col_major(1, 1, &[1.0])?;
/// lincomb_by_axpby(&be, [(2.0, &x)], 0.0, &mut y)?;
/// assert_eq!(be.to_col_major(&y)?, vec![6.0]);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub fn lincomb_by_axpby<B: LinAlg, const N: usize>(
    backend: &B,
    terms: [(B::Real, &B::Mat); N],
    delta: B::Real,
    dst: &mut B::Mat,
) -> Result<()> {
    let (zero, one) = (B::Real::zero(), B::Real::one());
    let mut rest = terms.iter();
    if delta == zero {
        match rest.next() {
            Some(&(a, x)) => backend.axpby(a, x, zero, dst)?,
            None => *dst = backend.zeros(backend.shape(dst).0, backend.shape(dst).1)?,
        }
    } else if delta != one {
        let copy = dst.clone();
        backend.axpby(delta, &copy, zero, dst)?;
    }
    for &(a, x) in rest {
        backend.axpby(a, x, one, dst)?;
    }
    Ok(())
}
