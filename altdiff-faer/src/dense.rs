//! [`FaerBackend`]: `LinAlg` on faer's dense `Mat<f64>`.

use altdiff_core::{Accum, LinAlg, Result, Trans, kernels};
use faer::linalg::matmul::matmul;
use faer::{Mat, MatRef, Par};

use crate::{DenseCholesky, Precision};

/// The faer dense backend: `Mat<f64>` blocks and operators, faer's Cholesky.
///
/// # Example
/// ```
/// use altdiff_core::LinAlg;
/// use altdiff_faer::{FaerBackend, Par};
/// let be = FaerBackend::default();
/// assert_eq!(be.par(), Par::Seq);
/// let m = be.mat_from_col_major(2, 1, &[1.0, -3.0])?;
/// assert_eq!(be.norm_inf(&m)?, 3.0);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FaerBackend {
    par: Par,
    precision: Precision,
}

impl Default for FaerBackend {
    fn default() -> Self {
        Self::with_par(Par::Seq)
    }
}

impl FaerBackend {
    /// The backend with the given parallelism (`Par::Seq` by default).
    pub fn with_par(par: Par) -> Self {
        Self {
            par,
            precision: Precision::Double,
        }
    }

    /// The backend factoring `H` (and solving with it, and forming the dual-space operators
    /// `M = C H^-1 C'`) in `precision`; everything else stays `f64`. See
    /// [`Precision::Single`] for what single precision trades.
    ///
    /// # Example
    /// ```
    /// use altdiff_core::{AltDiff, Param, Qp, Settings, StoppingRule, Wrt, testing::tiny_qp};
    /// use altdiff_faer::{FaerBackend, Precision};
    /// let be = FaerBackend::default().with_precision(Precision::Single);
    /// let qp = Qp::from_host(&be, &tiny_qp())?;
    /// let settings = Settings::default()
    ///     .with_stopping(StoppingRule::RelativeObjective(1e-4))
    ///     .with_wrt(Wrt::none().with(Param::B))
    ///     .with_limit(true);
    /// let sol = AltDiff::new(be, &qp, settings)?.solve(qp.params())?;
    /// assert!((sol.jacobian(Param::B).unwrap()[(2, 0)] - 4.0 / 7.0).abs() < 1e-4);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The parallelism used by products, the factorization and the solves.
    pub fn par(&self) -> Par {
        self.par
    }

    /// The arithmetic of the factorization and the solves.
    pub fn precision(&self) -> Precision {
        self.precision
    }
}

fn faer_accum(accum: Accum) -> faer::Accum {
    match accum {
        Accum::Replace => faer::Accum::Replace,
        Accum::Add => faer::Accum::Add,
    }
}

fn oriented(op: &Mat<f64>, trans: Trans) -> MatRef<'_, f64> {
    match trans {
        Trans::No => op.as_ref(),
        Trans::Yes => op.transpose(),
    }
}

fn col_major(m: &Mat<f64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(m.nrows() * m.ncols());
    for j in 0..m.ncols() {
        out.extend_from_slice(m.col_as_slice(j));
    }
    out
}

fn from_col_major(nrows: usize, ncols: usize, data: &[f64]) -> Mat<f64> {
    assert_eq!(data.len(), nrows * ncols, "from_col_major: data length");
    MatRef::from_column_major_slice(data, nrows, ncols).to_owned()
}

/// `a l r' + b u v'` (`rows x cols`) written once, column by column.
fn outer_pair(
    rows: usize,
    cols: usize,
    (a, l, r): (f64, &[f64], &[f64]),
    (b, u, v): (f64, &[f64], &[f64]),
) -> Mat<f64> {
    Mat::from_fn(rows, cols, |i, j| a * r[j] * l[i] + b * v[j] * u[i])
}

impl LinAlg for FaerBackend {
    altdiff_core::dense_op_grads!();

    type Real = f64;
    type Mat = Mat<f64>;
    type Op = Mat<f64>;
    type Factor = DenseCholesky;

    fn name(&self) -> &'static str {
        match self.precision {
            Precision::Double => "faer",
            Precision::Single => "faer-f32",
        }
    }

    fn zeros(&self, nrows: usize, ncols: usize) -> Result<Mat<f64>> {
        Ok(Mat::zeros(nrows, ncols))
    }

    fn mat_from_col_major(&self, nrows: usize, ncols: usize, data: &[f64]) -> Result<Mat<f64>> {
        Ok(from_col_major(nrows, ncols, data))
    }

    fn to_col_major(&self, m: &Mat<f64>) -> Result<Vec<f64>> {
        Ok(col_major(m))
    }

    fn shape(&self, m: &Mat<f64>) -> (usize, usize) {
        (m.nrows(), m.ncols())
    }

    fn op_from_col_major(&self, nrows: usize, ncols: usize, data: &[f64]) -> Result<Mat<f64>> {
        Ok(from_col_major(nrows, ncols, data))
    }

    fn op_to_col_major(&self, op: &Mat<f64>) -> Result<Vec<f64>> {
        Ok(col_major(op))
    }

    fn op_from_mat(&self, m: Mat<f64>) -> Result<Mat<f64>> {
        Ok(m)
    }

    fn op_shape(&self, op: &Mat<f64>) -> (usize, usize) {
        (op.nrows(), op.ncols())
    }

    fn op_abs_sums(&self, op: &Mat<f64>) -> Result<(Vec<f64>, Vec<f64>)> {
        let columns = (0..op.ncols()).map(|j| op.col_as_slice(j));
        Ok(altdiff_core::kernels::abs_sums(columns, op.nrows()))
    }

    fn grad_outer(&self, op: &Mat<f64>, terms: &[(f64, &Mat<f64>, &Mat<f64>)]) -> Result<Mat<f64>> {
        let (rows, cols) = op.shape();
        let vectors = terms
            .iter()
            .all(|(_, l, r)| l.shape() == (rows, 1) && r.shape() == (cols, 1));
        match terms {
            [(a, l, r), (b, u, v)] if vectors => {
                let (l, r, u, v) = (
                    l.col_as_slice(0),
                    r.col_as_slice(0),
                    u.col_as_slice(0),
                    v.col_as_slice(0),
                );
                Ok(outer_pair(rows, cols, (*a, l, r), (*b, u, v)))
            }
            _ => {
                let mut grad = Mat::zeros(rows, cols);
                for &(alpha, lhs, rhs) in terms {
                    self.gemm_nt(&mut grad, Accum::Add, lhs, rhs, alpha)?;
                }
                Ok(grad)
            }
        }
    }

    fn op_abs_profile(
        &self,
        op: &Mat<f64>,
        with_rows: bool,
    ) -> Result<altdiff_core::kernels::AbsProfile<f64>> {
        let columns = (0..op.ncols()).map(|j| op.col_as_slice(j));
        Ok(altdiff_core::kernels::abs_profile(
            columns,
            op.nrows(),
            with_rows,
        ))
    }

    fn op_stack_rows(&self, top: &Mat<f64>, bottom: &Mat<f64>) -> Result<Mat<f64>> {
        let (p, n) = (top.nrows(), top.ncols());
        altdiff_core::kernels::check_stackable(n, (bottom.nrows(), bottom.ncols()))?;
        let mut c = Mat::<f64>::zeros(p + bottom.nrows(), n);
        for j in 0..n {
            let column = c.col_as_slice_mut(j);
            column[..p].copy_from_slice(top.col_as_slice(j));
            column[p..].copy_from_slice(bottom.col_as_slice(j));
        }
        Ok(c)
    }

    fn op_abs_max(
        &self,
        op: &Mat<f64>,
        rows: &[f64],
        cols: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        // the columns of a faer Mat are contiguous: no copy
        let columns = (0..op.ncols()).map(|j| op.col_as_slice(j));
        Ok(altdiff_core::kernels::abs_max_scaled(columns, rows, cols))
    }

    fn apply(
        &self,
        dst: &mut Mat<f64>,
        accum: Accum,
        op: &Mat<f64>,
        trans: Trans,
        rhs: &Mat<f64>,
        alpha: f64,
    ) -> Result<()> {
        matmul(
            dst.as_mut(),
            faer_accum(accum),
            oriented(op, trans),
            rhs.as_ref(),
            alpha,
            self.par,
        );
        Ok(())
    }

    fn gemm_nt(
        &self,
        dst: &mut Mat<f64>,
        accum: Accum,
        lhs: &Mat<f64>,
        rhs: &Mat<f64>,
        alpha: f64,
    ) -> Result<()> {
        matmul(
            dst.as_mut(),
            faer_accum(accum),
            lhs.as_ref(),
            rhs.transpose(),
            alpha,
            self.par,
        );
        Ok(())
    }

    fn symmetric_product_tn(
        &self,
        dst: &mut Mat<f64>,
        accum: Accum,
        lhs: &Mat<f64>,
        rhs: &Mat<f64>,
        alpha: f64,
    ) -> Result<()> {
        crate::symmetric_product_tn(
            dst.as_mut(),
            faer_accum(accum),
            lhs.as_ref(),
            rhs.as_ref(),
            alpha,
            self.par,
        );
        Ok(())
    }

    fn factor(&self, p: &Mat<f64>, a: &Mat<f64>, g: &Mat<f64>, rho: f64) -> Result<DenseCholesky> {
        self.factor_shifted(p, a, g, rho, 0.0)
    }

    fn factor_shifted(
        &self,
        p: &Mat<f64>,
        a: &Mat<f64>,
        g: &Mat<f64>,
        rho: f64,
        shift: f64,
    ) -> Result<DenseCholesky> {
        DenseCholesky::penalized_shifted_in(
            p.as_ref(),
            &[a.as_ref(), g.as_ref()],
            (rho, shift),
            self.par,
            self.precision,
        )
    }

    fn cholesky(&self, op: &Mat<f64>) -> Result<DenseCholesky> {
        // the small systems stay f64 whatever the precision of H
        DenseCholesky::new(op.as_ref(), self.par)
    }

    fn cholesky_owned(&self, op: Mat<f64>) -> Result<DenseCholesky> {
        DenseCholesky::from_owned(op, self.par)
    }

    fn cholesky_owned_coarse(&self, op: Mat<f64>) -> Result<DenseCholesky> {
        match self.precision {
            Precision::Double => DenseCholesky::from_owned(op, self.par),
            Precision::Single => {
                DenseCholesky::penalized_in(op.as_ref(), &[], 0.0, self.par, Precision::Single)
            }
        }
    }

    fn cholesky_schur(
        &self,
        a: usize,
        base: &[f64],
        affine: (f64, f64),
        schur: Option<(&DenseCholesky, &Mat<f64>)>,
        coarse: bool,
    ) -> Result<DenseCholesky> {
        let precision = if coarse {
            self.precision
        } else {
            Precision::Double
        };
        DenseCholesky::schur_in(
            MatRef::from_column_major_slice(base, a, a),
            affine,
            schur.map(|(t, x)| (t, x.as_ref())),
            self.par,
            precision,
        )
    }

    fn factor_pivots(&self, factor: &DenseCholesky) -> Result<Option<Vec<f64>>> {
        Ok(Some(factor.pivots()))
    }

    fn factor_epsilon(&self) -> f64 {
        match self.precision {
            Precision::Double => f64::EPSILON,
            Precision::Single => f64::from(f32::EPSILON),
        }
    }

    fn gram_inverse(
        &self,
        factor: &DenseCholesky,
        c: &Mat<f64>,
        with_k: bool,
    ) -> Result<(Mat<f64>, Option<Mat<f64>>)> {
        Ok(factor.gram_inverse(c.as_ref(), with_k, self.par))
    }

    fn gram_inverse_with_half(
        &self,
        factor: &DenseCholesky,
        c: &Mat<f64>,
    ) -> Result<Option<(Mat<f64>, Mat<f64>)>> {
        Ok(Some(factor.gram_inverse_with_half(c.as_ref(), self.par)))
    }

    fn half_product_solve(
        &self,
        factor: &DenseCholesky,
        half: &Mat<f64>,
        rhs: &Mat<f64>,
        alpha: f64,
    ) -> Result<Mat<f64>> {
        Ok(factor.half_product_solve(half.as_ref(), rhs.as_ref(), alpha, self.par))
    }

    fn gram_inverse_keeping(&self, factor: &mut DenseCholesky, c: &Mat<f64>) -> Result<Mat<f64>> {
        Ok(factor.gram_inverse_keeping(c.as_ref(), self.par))
    }

    fn apply_gram(
        &self,
        factor: &DenseCholesky,
        m: &Mat<f64>,
        dst: &mut Mat<f64>,
        accum: Accum,
        v: &Mat<f64>,
        alpha: f64,
    ) -> Result<()> {
        factor.apply_gram(
            m.as_ref(),
            dst.as_mut(),
            faer_accum(accum),
            v.as_ref(),
            alpha,
            self.par,
        );
        Ok(())
    }

    fn solve_split(
        &self,
        factor: &DenseCholesky,
        c: &Mat<f64>,
        f: &Mat<f64>,
    ) -> Result<(Mat<f64>, Mat<f64>)> {
        Ok(factor.solve_split(c.as_ref(), f.as_ref(), self.par))
    }

    fn solve_join(
        &self,
        factor: &DenseCholesky,
        c: &Mat<f64>,
        t: Mat<f64>,
        y: &Mat<f64>,
    ) -> Result<Mat<f64>> {
        Ok(factor.solve_join(c.as_ref(), t, y.as_ref(), self.par))
    }

    fn is_psd_with_shift(&self, p: &Mat<f64>, shift: f64) -> Result<bool> {
        DenseCholesky::is_psd_with_shift(p.as_ref(), shift, self.par)
    }

    fn solve_in_place(&self, factor: &DenseCholesky, rhs: &mut Mat<f64>) -> Result<()> {
        factor.solve_in_place(rhs.as_mut(), self.par);
        Ok(())
    }

    fn factor_inverse(&self, factor: &DenseCholesky, _n: usize) -> Result<Mat<f64>> {
        Ok(factor.inverse(self.par))
    }

    fn axpby(&self, alpha: f64, x: &Mat<f64>, beta: f64, y: &mut Mat<f64>) -> Result<()> {
        assert_eq!(self.shape(x), self.shape(y), "axpby: shapes");
        for j in 0..x.ncols() {
            kernels::axpby(alpha, x.col_as_slice(j), beta, y.col_as_slice_mut(j));
        }
        Ok(())
    }

    fn lincomb<const N: usize>(
        &self,
        terms: [(f64, &Mat<f64>); N],
        delta: f64,
        dst: &mut Mat<f64>,
    ) -> Result<()> {
        for (_, x) in &terms {
            assert_eq!(self.shape(x), self.shape(dst), "lincomb: shapes");
        }
        for j in 0..dst.ncols() {
            let columns = terms.map(|(a, x)| (a, x.col_as_slice(j)));
            kernels::lincomb(columns, delta, dst.col_as_slice_mut(j));
        }
        Ok(())
    }

    fn proj_nonneg(&self, x: &mut Mat<f64>) -> Result<()> {
        for j in 0..x.ncols() {
            kernels::proj_nonneg(x.col_as_slice_mut(j));
        }
        Ok(())
    }

    fn dproj_nonneg(&self, at: &Mat<f64>, m: &mut Mat<f64>) -> Result<()> {
        assert!(
            at.ncols() == 1 || at.ncols() == m.ncols(),
            "dproj_nonneg: columns"
        );
        for j in 0..m.ncols() {
            let mask = at.col_as_slice(if at.ncols() == 1 { 0 } else { j });
            kernels::dproj_nonneg(mask, m.col_as_slice_mut(j));
        }
        Ok(())
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
        assert!(
            mask.ncols() == 1 || mask.ncols() == s.ncols(),
            "slack_dual_update: mask columns"
        );
        for j in 0..s.ncols() {
            kernels::slack_dual_update(
                s.col_as_slice_mut(j),
                y.col_as_slice_mut(j),
                cx.col_as_slice(j),
                bh.col_as_slice(j),
                mask.col_as_slice(if mask.ncols() == 1 { 0 } else { j }),
                project,
                rho,
            );
        }
        Ok(())
    }

    fn norm_inf(&self, x: &Mat<f64>) -> Result<f64> {
        Ok((0..x.ncols()).fold(0.0, |acc, j| {
            kernels::max_abs(acc, kernels::norm_inf(x.col_as_slice(j)))
        }))
    }

    fn dot(&self, x: &Mat<f64>, y: &Mat<f64>) -> Result<f64> {
        assert_eq!(self.shape(x), self.shape(y), "dot: shapes");
        Ok((0..x.ncols())
            .map(|j| kernels::dot(x.col_as_slice(j), y.col_as_slice(j)))
            .sum())
    }
}
