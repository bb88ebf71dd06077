//! [`FaerSparseBackend`]: `LinAlg` with sparse CSC operators and faer's sparse Cholesky.

use altdiff_core::{Accum, Field, HostMatrix, LinAlg, Result, Trans};
use faer::sparse::SymbolicSparseColMat;
use faer::{Mat, Par};

use crate::sparse_cholesky::{SparseMat, sparse_apply, transposed};
use crate::{
    DenseRows, FaerBackend, SparseCholesky, SparseForm, sparse_from_dense, sparse_is_psd_with_shift,
};

/// The faer sparse backend: `P`, `A`, `G` as CSC matrices ([`SparseMat`]), dense `Mat<f64>`
/// blocks for `x`, `s`, `lam`, `nu` and the Jacobian / adjoint blocks, `H` factored by
/// [`SparseCholesky`] (symbolic analysis once per pattern). A step costs
/// `O(nnz(L) + nnz(A, G))` per column; gradients wrt `P`, `A`, `G` live on their patterns.
/// The dense dual space is never formed automatically ([`LinAlg::dense_dual_space`]).
///
/// # Example
/// ```
/// use altdiff_core::{AltDiff, Field, HostMatrix, HostQp, Qp, Settings, VjpMode, LinAlg};
/// use altdiff_faer::FaerSparseBackend;
///
/// // min x0^2 + x1^2 - x0 s.t. x0 + x1 = 1, x1 <= 0.2 (P stored sparse)
/// let host = HostQp {
///     p: HostMatrix::from_triplets(Field::P, 2, 2, &[(0, 0, 2.0), (1, 1, 2.0)])?,
///     q: vec![-1.0, 0.0],
///     a: HostMatrix::from_triplets(Field::A, 1, 2, &[(0, 0, 1.0), (0, 1, 1.0)])?,
///     b: vec![1.0],
///     g: HostMatrix::from_triplets(Field::G, 1, 2, &[(0, 1, 1.0)])?,
///     h: vec![0.2],
/// };
/// let be = FaerSparseBackend::default();
/// let qp = Qp::from_host(&be, &host)?;
/// let solver = AltDiff::new(be.clone(), &qp, Settings::default())?;
/// let sol = solver.solve(qp.params())?;
/// assert!((sol.x()[(0, 0)] - 0.8).abs() < 1e-5); // x1 = 0.2 is active
/// let g = be.mat_from_col_major(2, 1, &[1.0, 0.0])?;
/// let grads = solver.vjp(&sol, &g, VjpMode::Implicit)?;
/// // the gradient wrt P has P's two stored entries only
/// assert_eq!(grads.p.unwrap().compute_nnz(), 2);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FaerSparseBackend {
    dense: FaerBackend,
    dense_rows: DenseRows,
    form: SparseForm,
}

impl Default for FaerSparseBackend {
    fn default() -> Self {
        Self {
            dense: FaerBackend::default(),
            dense_rows: DenseRows::Auto,
            form: SparseForm::Auto,
        }
    }
}

impl FaerSparseBackend {
    /// The backend with the given parallelism (`Par::Seq` by default: the supernodal solve
    /// was 4-5x slower with 2 rayon threads on 2-core machines).
    pub fn with_par(par: Par) -> Self {
        Self {
            dense: FaerBackend::with_par(par),
            ..Self::default()
        }
    }

    /// Sets which rows of `A`, `G` are treated as dense (low-rank correction of `H`).
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{DenseRows, FaerSparseBackend};
    /// let be = FaerSparseBackend::default().with_dense_rows(DenseRows::Never);
    /// assert_eq!(be.dense_rows(), DenseRows::Never);
    /// ```
    #[must_use]
    pub fn with_dense_rows(mut self, dense_rows: DenseRows) -> Self {
        self.dense_rows = dense_rows;
        self
    }

    /// The dense-row rule.
    pub fn dense_rows(&self) -> DenseRows {
        self.dense_rows
    }

    /// Sets which system the factorization of `H` works on (see [`SparseForm`]).
    ///
    /// # Example
    /// ```
    /// use altdiff_faer::{FaerSparseBackend, SparseForm};
    /// let be = FaerSparseBackend::default().with_form(SparseForm::Kkt);
    /// assert_eq!(be.form(), SparseForm::Kkt);
    /// ```
    #[must_use]
    pub fn with_form(mut self, form: SparseForm) -> Self {
        self.form = form;
        self
    }

    /// The factorization's form rule.
    pub fn form(&self) -> SparseForm {
        self.form
    }

    /// The parallelism of products, factorizations and solves.
    pub fn par(&self) -> Par {
        self.dense.par()
    }
}

fn faer_accum(accum: Accum) -> faer::Accum {
    match accum {
        Accum::Replace => faer::Accum::Replace,
        Accum::Add => faer::Accum::Add,
    }
}

/// A CSC matrix from its parts (already valid: sorted, in range).
fn from_parts(
    nrows: usize,
    ncols: usize,
    col_ptr: Vec<usize>,
    row_idx: Vec<usize>,
    values: Vec<f64>,
) -> SparseMat {
    SparseMat::new(
        SymbolicSparseColMat::new_checked(nrows, ncols, col_ptr, None, row_idx),
        values,
    )
}

/// `op` with every stored value replaced by `f(row, col, value)`.
fn map_values(op: &SparseMat, mut f: impl FnMut(usize, usize, f64) -> f64) -> SparseMat {
    let mut out = op.clone();
    let ptr = op.symbolic().col_ptr().to_vec();
    let rows = op.symbolic().row_idx().to_vec();
    let values = out.val_mut();
    for j in 0..op.ncols() {
        for k in ptr[j]..ptr[j + 1] {
            values[k] = f(rows[k], j, values[k]);
        }
    }
    out
}

/// Calls `f(row, col, value)` for every stored entry.
fn for_each(op: &SparseMat, mut f: impl FnMut(usize, usize, f64)) {
    let (ptr, rows, values) = (op.symbolic().col_ptr(), op.symbolic().row_idx(), op.val());
    for j in 0..op.ncols() {
        for k in ptr[j]..ptr[j + 1] {
            f(rows[k], j, values[k]);
        }
    }
}

impl LinAlg for FaerSparseBackend {
    type Real = f64;
    type Mat = Mat<f64>;
    type Op = SparseMat;
    type Factor = SparseCholesky;
    type OpGrad = SparseMat;

    fn name(&self) -> &'static str {
        "faer-sparse"
    }

    // ---- dense blocks: those of the dense faer backend ----

    fn zeros(&self, nrows: usize, ncols: usize) -> Result<Mat<f64>> {
        self.dense.zeros(nrows, ncols)
    }

    fn mat_from_col_major(&self, nrows: usize, ncols: usize, data: &[f64]) -> Result<Mat<f64>> {
        self.dense.mat_from_col_major(nrows, ncols, data)
    }

    fn to_col_major(&self, m: &Mat<f64>) -> Result<Vec<f64>> {
        self.dense.to_col_major(m)
    }

    fn shape(&self, m: &Mat<f64>) -> (usize, usize) {
        self.dense.shape(m)
    }

    fn gemm_nt(
        &self,
        dst: &mut Mat<f64>,
        accum: Accum,
        lhs: &Mat<f64>,
        rhs: &Mat<f64>,
        alpha: f64,
    ) -> Result<()> {
        self.dense.gemm_nt(dst, accum, lhs, rhs, alpha)
    }

    fn symmetric_product_tn(
        &self,
        dst: &mut Mat<f64>,
        accum: Accum,
        lhs: &Mat<f64>,
        rhs: &Mat<f64>,
        alpha: f64,
    ) -> Result<()> {
        self.dense.symmetric_product_tn(dst, accum, lhs, rhs, alpha)
    }

    fn axpby(&self, alpha: f64, x: &Mat<f64>, beta: f64, y: &mut Mat<f64>) -> Result<()> {
        self.dense.axpby(alpha, x, beta, y)
    }

    fn proj_nonneg(&self, x: &mut Mat<f64>) -> Result<()> {
        self.dense.proj_nonneg(x)
    }

    fn dproj_nonneg(&self, at: &Mat<f64>, m: &mut Mat<f64>) -> Result<()> {
        self.dense.dproj_nonneg(at, m)
    }

    fn slack_dual_update(
        &self,
        s: &mut Mat<f64>,
        y: &mut Mat<f64>,
        cx: &Mat<f64>,
        bh: &Mat<f64>,
        mask: &Mat<f64>,
        project: bool,
        rho: f64,
    ) -> Result<()> {
        self.dense
            .slack_dual_update(s, y, cx, bh, mask, project, rho)
    }

    fn norm_inf(&self, x: &Mat<f64>) -> Result<f64> {
        self.dense.norm_inf(x)
    }

    fn dot(&self, x: &Mat<f64>, y: &Mat<f64>) -> Result<f64> {
        self.dense.dot(x, y)
    }

    // ---- sparse operators ----

    fn op_from_col_major(&self, nrows: usize, ncols: usize, data: &[f64]) -> Result<SparseMat> {
        let dense = self.dense.mat_from_col_major(nrows, ncols, data)?;
        Ok(sparse_from_dense(dense.as_ref()))
    }

    fn op_to_col_major(&self, op: &SparseMat) -> Result<Vec<f64>> {
        self.dense.to_col_major(&op.to_dense())
    }

    fn op_shape(&self, op: &SparseMat) -> (usize, usize) {
        (op.nrows(), op.ncols())
    }

    fn op_from_host(&self, m: &HostMatrix) -> Result<SparseMat> {
        let sparse = m.to_sparse();
        let csc = sparse.csc().expect("to_sparse gives a sparse matrix");
        Ok(from_parts(
            m.nrows(),
            m.ncols(),
            csc.col_ptr.to_vec(),
            csc.row_idx.to_vec(),
            csc.values.to_vec(),
        ))
    }

    fn op_to_host(&self, op: &SparseMat, field: Field) -> Result<HostMatrix> {
        let symbolic = op.symbolic();
        HostMatrix::from_csc(
            field,
            op.nrows(),
            op.ncols(),
            symbolic.col_ptr().to_vec(),
            symbolic.row_idx().to_vec(),
            op.val().to_vec(),
        )
    }

    fn op_abs_sums(&self, op: &SparseMat) -> Result<(Vec<f64>, Vec<f64>)> {
        let (mut rows, mut cols) = (vec![0.0; op.nrows()], vec![0.0; op.ncols()]);
        for_each(op, |i, j, v| {
            rows[i] += v.abs();
            cols[j] += v.abs();
        });
        Ok((rows, cols))
    }

    fn op_abs_max(
        &self,
        op: &SparseMat,
        rows: &[f64],
        cols: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let (mut row_max, mut col_max) = (vec![0.0_f64; op.nrows()], vec![0.0_f64; op.ncols()]);
        for_each(op, |i, j, v| {
            let a = (rows[i] * v * cols[j]).abs();
            row_max[i] = row_max[i].max(a);
            col_max[j] = col_max[j].max(a);
        });
        Ok((row_max, col_max))
    }

    fn op_scaled(&self, op: &SparseMat, rows: &[f64], cols: &[f64]) -> Result<SparseMat> {
        // one product of the scales, as the dense backends: diag(d) P diag(d) stays symmetric
        Ok(map_values(op, |i, j, v| v * (rows[i] * cols[j])))
    }

    fn op_stack_rows(&self, top: &SparseMat, bottom: &SparseMat) -> Result<SparseMat> {
        let (p, n) = (top.nrows(), top.ncols());
        altdiff_core::kernels::check_stackable(n, (bottom.nrows(), bottom.ncols()))?;
        let mut col_ptr = vec![0usize];
        let (mut row_idx, mut values) = (Vec::new(), Vec::new());
        for j in 0..n {
            row_idx.extend_from_slice(top.as_ref().row_idx_of_col_raw(j));
            values.extend_from_slice(top.as_ref().val_of_col(j));
            row_idx.extend(bottom.as_ref().row_idx_of_col_raw(j).iter().map(|i| i + p));
            values.extend_from_slice(bottom.as_ref().val_of_col(j));
            col_ptr.push(values.len());
        }
        Ok(from_parts(p + bottom.nrows(), n, col_ptr, row_idx, values))
    }

    fn op_select_rows(&self, op: &SparseMat, rows: &[usize]) -> Result<SparseMat> {
        // the chosen rows are the chosen columns of op'
        let t = transposed(op)?;
        let mut col_ptr = vec![0usize];
        let (mut row_idx, mut values) = (Vec::new(), Vec::new());
        for &r in rows {
            row_idx.extend_from_slice(t.as_ref().row_idx_of_col_raw(r));
            values.extend_from_slice(t.as_ref().val_of_col(r));
            col_ptr.push(values.len());
        }
        transposed(&from_parts(
            op.ncols(),
            rows.len(),
            col_ptr,
            row_idx,
            values,
        ))
    }

    fn apply(
        &self,
        dst: &mut Mat<f64>,
        accum: Accum,
        op: &SparseMat,
        trans: Trans,
        rhs: &Mat<f64>,
        alpha: f64,
    ) -> Result<()> {
        let transpose = trans == Trans::Yes;
        let par = self.par();
        sparse_apply(
            dst.as_mut(),
            faer_accum(accum),
            op,
            transpose,
            rhs.as_ref(),
            alpha,
            par,
        );
        Ok(())
    }

    // ---- the factorization ----

    fn factor(
        &self,
        p: &SparseMat,
        a: &SparseMat,
        g: &SparseMat,
        rho: f64,
    ) -> Result<SparseCholesky> {
        SparseCholesky::with_form(p, &[a, g], rho, self.dense_rows, self.form, self.par())
    }

    fn refactor(
        &self,
        previous: &SparseCholesky,
        _p: &SparseMat,
        _a: &SparseMat,
        _g: &SparseMat,
        rho: f64,
    ) -> Result<SparseCholesky> {
        previous.refactor(rho, self.par())
    }

    fn solve_in_place(&self, factor: &SparseCholesky, rhs: &mut Mat<f64>) -> Result<()> {
        factor.solve_in_place(rhs.as_mut(), self.par());
        Ok(())
    }

    fn is_psd_with_shift(&self, p: &SparseMat, shift: f64) -> Result<bool> {
        sparse_is_psd_with_shift(p, shift, self.par())
    }

    /// `M = C H^-1 C'` by blocks of 256 rows of `C` (the `n x 256` block of `C'` is the
    /// only dense copy of `C`), and `K = H^-1 C'` (dense `n x r`) when asked.
    fn gram_inverse(
        &self,
        factor: &SparseCholesky,
        c: &SparseMat,
        with_k: bool,
    ) -> Result<(Mat<f64>, Option<Mat<f64>>)> {
        const BLOCK: usize = 256;
        let (r, n) = (c.nrows(), c.ncols());
        let ct = transposed(c)?;
        let mut m = Mat::<f64>::zeros(r, r);
        let mut k = with_k.then(|| Mat::<f64>::zeros(n, r));
        for start in (0..r).step_by(BLOCK) {
            let end = (start + BLOCK).min(r);
            let mut block = Mat::<f64>::zeros(n, end - start);
            for (col, row) in (start..end).enumerate() {
                let (idx, val) = (
                    ct.as_ref().row_idx_of_col_raw(row),
                    ct.as_ref().val_of_col(row),
                );
                for (&i, &v) in idx.iter().zip(val) {
                    block[(i, col)] = v;
                }
            }
            factor.solve_in_place(block.as_mut(), self.par());
            let dst = m.as_mut().subcols_mut(start, end - start);
            sparse_apply(
                dst,
                faer::Accum::Replace,
                c,
                false,
                block.as_ref(),
                1.0,
                self.par(),
            );
            if let Some(k) = &mut k {
                k.as_mut().subcols_mut(start, end - start).copy_from(&block);
            }
        }
        Ok((m, k))
    }

    fn dense_dual_space(&self) -> bool {
        false
    }

    // ---- gradients on the patterns ----

    fn grad_zeros(&self, op: &SparseMat) -> Result<SparseMat> {
        Ok(map_values(op, |_, _, _| 0.0))
    }

    fn grad_add_outer(
        &self,
        grad: &mut SparseMat,
        terms: &[(f64, &Mat<f64>, &Mat<f64>)],
    ) -> Result<()> {
        *grad = map_values(grad, |i, j, v| {
            terms.iter().fold(v, |acc, (alpha, lhs, rhs)| {
                let outer: f64 = (0..lhs.ncols()).map(|c| lhs[(i, c)] * rhs[(j, c)]).sum();
                acc + alpha * outer
            })
        });
        Ok(())
    }

    fn grad_to_host(&self, grad: &SparseMat, field: Field) -> Result<HostMatrix> {
        self.op_to_host(grad, field)
    }

    fn grad_from_host(&self, host: &HostMatrix) -> Result<SparseMat> {
        self.op_from_host(host)
    }
}
