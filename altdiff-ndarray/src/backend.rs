//! [`NdarrayBackend`]: `LinAlg` on `Array2<f64>`.

use altdiff_core::{Accum, LinAlg, Result, Trans, kernels};
use altdiff_faer::{DenseCholesky, Par};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ShapeBuilder, Zip};

use crate::{as_faer, as_faer_mut};

/// The ndarray backend: `Array2<f64>` blocks (column-major) and operators; products and the
/// Cholesky factorization by faer on zero-copy views (products of non-contiguous views by
/// ndarray's own).
///
/// # Example
/// ```
/// use altdiff_core::LinAlg;
/// use altdiff_ndarray::NdarrayBackend;
/// let be = NdarrayBackend::default();
/// let m = be.mat_from_col_major(2, 2, &[1.0, 2.0, 3.0, 4.0])?;
/// assert_eq!(m, ndarray::array![[1.0, 3.0], [2.0, 4.0]]);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NdarrayBackend {
    par: FactorPar,
}

/// The parallelism of faer's products, factorization and solves.
#[derive(Clone, Debug, PartialEq)]
struct FactorPar(Par);

impl Default for FactorPar {
    fn default() -> Self {
        Self(Par::Seq)
    }
}

impl NdarrayBackend {
    /// The backend with the given parallelism for the products, the factorization and solves.
    pub fn with_par(par: Par) -> Self {
        Self {
            par: FactorPar(par),
        }
    }
}

fn oriented(op: &Array2<f64>, trans: Trans) -> ArrayView2<'_, f64> {
    match trans {
        Trans::No => op.view(),
        Trans::Yes => op.t(),
    }
}

fn from_col_major(nrows: usize, ncols: usize, data: &[f64]) -> Array2<f64> {
    Array2::from_shape_vec((nrows, ncols).f(), data.to_vec()).expect("from_col_major: data length")
}

fn col_major(m: &Array2<f64>) -> Vec<f64> {
    m.t().iter().copied().collect()
}

/// faer's name for an [`Accum`].
fn faer_accum(accum: Accum) -> faer::Accum {
    match accum {
        Accum::Replace => faer::Accum::Replace,
        Accum::Add => faer::Accum::Add,
    }
}

/// `dst = [dst +] alpha lhs rhs`; `Replace` never reads `dst`. By faer's GEMM on zero-copy
/// views when the operands are contiguous (row- or column-major), else by ndarray's.
fn gemm(
    dst: &mut Array2<f64>,
    accum: Accum,
    lhs: ArrayView2<'_, f64>,
    rhs: ArrayView2<'_, f64>,
    alpha: f64,
    par: Par,
) {
    if let (Some(l), Some(r)) = (as_faer(lhs.view()), as_faer(rhs.view())) {
        let accum = faer_accum(accum);
        in_place(dst, |d| {
            faer::linalg::matmul::matmul(d, accum, l, r, alpha, par)
        });
        return;
    }
    let beta = match accum {
        Accum::Replace => {
            dst.fill(0.0);
            0.0
        }
        Accum::Add => 1.0,
    };
    general_mat_mul(alpha, &lhs, &rhs, beta, dst);
}

/// A column-major copy unless `m` already is one (so faer gets a contiguous view).
fn fortran(m: &Array2<f64>) -> std::borrow::Cow<'_, Array2<f64>> {
    if m.t().is_standard_layout() {
        std::borrow::Cow::Borrowed(m)
    } else {
        let mut f = Array2::zeros(m.dim().f());
        f.assign(m);
        std::borrow::Cow::Owned(f)
    }
}

/// A column-major `Array2` copy of a faer matrix.
fn from_faer(m: &faer::Mat<f64>) -> Array2<f64> {
    Array2::from_shape_fn((m.nrows(), m.ncols()).f(), |(i, j)| m[(i, j)])
}

/// Runs `f` on `rhs` as a faer view: in place when its layout allows, else on a
/// column-major copy written back.
fn in_place(rhs: &mut Array2<f64>, f: impl Fn(faer::MatMut<'_, f64>)) {
    match as_faer_mut(rhs.view_mut()) {
        Some(view) => f(view),
        None => {
            let mut copy = fortran(rhs).into_owned();
            f(as_faer_mut(copy.view_mut()).expect("contiguous"));
            rhs.assign(&copy);
        }
    }
}

/// The faer view of a column-major matrix (see [`fortran`]).
fn column_major_view(m: &Array2<f64>) -> faer::MatRef<'_, f64> {
    as_faer(m.view()).expect("column-major")
}

/// Runs `f` on a faer view of `m`: without a copy when `m` is contiguous in either order.
fn viewed<R>(m: &Array2<f64>, f: impl FnOnce(faer::MatRef<'_, f64>) -> R) -> R {
    match as_faer(m.view()) {
        Some(view) => f(view),
        None => f(column_major_view(&fortran(m))),
    }
}

impl LinAlg for NdarrayBackend {
    altdiff_core::dense_op_grads!();

    type Real = f64;
    type Mat = Array2<f64>;
    type Op = Array2<f64>;
    type Factor = DenseCholesky;

    fn name(&self) -> &'static str {
        "ndarray"
    }

    fn zeros(&self, nrows: usize, ncols: usize) -> Result<Array2<f64>> {
        Ok(Array2::zeros((nrows, ncols).f()))
    }

    fn mat_from_col_major(&self, nrows: usize, ncols: usize, data: &[f64]) -> Result<Array2<f64>> {
        Ok(from_col_major(nrows, ncols, data))
    }

    fn to_col_major(&self, m: &Array2<f64>) -> Result<Vec<f64>> {
        Ok(col_major(m))
    }

    fn shape(&self, m: &Array2<f64>) -> (usize, usize) {
        m.dim()
    }

    fn op_from_col_major(&self, nrows: usize, ncols: usize, data: &[f64]) -> Result<Array2<f64>> {
        Ok(from_col_major(nrows, ncols, data))
    }

    fn op_to_col_major(&self, op: &Array2<f64>) -> Result<Vec<f64>> {
        Ok(col_major(op))
    }

    fn op_from_mat(&self, m: Array2<f64>) -> Result<Array2<f64>> {
        Ok(m)
    }

    fn op_shape(&self, op: &Array2<f64>) -> (usize, usize) {
        op.dim()
    }

    fn apply(
        &self,
        dst: &mut Array2<f64>,
        accum: Accum,
        op: &Array2<f64>,
        trans: Trans,
        rhs: &Array2<f64>,
        alpha: f64,
    ) -> Result<()> {
        gemm(
            dst,
            accum,
            oriented(op, trans),
            rhs.view(),
            alpha,
            self.par.0,
        );
        Ok(())
    }

    fn gemm_nt(
        &self,
        dst: &mut Array2<f64>,
        accum: Accum,
        lhs: &Array2<f64>,
        rhs: &Array2<f64>,
        alpha: f64,
    ) -> Result<()> {
        gemm(dst, accum, lhs.view(), rhs.t(), alpha, self.par.0);
        Ok(())
    }

    fn symmetric_product_tn(
        &self,
        dst: &mut Array2<f64>,
        accum: Accum,
        lhs: &Array2<f64>,
        rhs: &Array2<f64>,
        alpha: f64,
    ) -> Result<()> {
        let (lhs, rhs) = (fortran(lhs), fortran(rhs));
        let accum = faer_accum(accum);
        in_place(dst, |dst| {
            altdiff_faer::symmetric_product_tn(
                dst,
                accum,
                column_major_view(&lhs),
                column_major_view(&rhs),
                alpha,
                self.par.0,
            );
        });
        Ok(())
    }

    fn factor(
        &self,
        p: &Array2<f64>,
        a: &Array2<f64>,
        g: &Array2<f64>,
        rho: f64,
    ) -> Result<DenseCholesky> {
        self.factor_shifted(p, a, g, rho, 0.0)
    }

    fn factor_shifted(
        &self,
        p: &Array2<f64>,
        a: &Array2<f64>,
        g: &Array2<f64>,
        rho: f64,
        shift: f64,
    ) -> Result<DenseCholesky> {
        // H = P + shift I + rho (A'A + G'G) on one triangle, by faer on zero-copy views
        let [p, a, g] = [p, a, g].map(fortran);
        DenseCholesky::penalized_shifted_in(
            column_major_view(&p),
            &[column_major_view(&a), column_major_view(&g)],
            (rho, shift),
            self.par.0,
            altdiff_faer::Precision::Double,
        )
    }

    fn gram_inverse(
        &self,
        factor: &DenseCholesky,
        c: &Array2<f64>,
        with_k: bool,
    ) -> Result<(Array2<f64>, Option<Array2<f64>>)> {
        let c = fortran(c);
        let (m, k) = factor.gram_inverse(column_major_view(&c), with_k, self.par.0);
        Ok((from_faer(&m), k.as_ref().map(from_faer)))
    }

    fn gram_inverse_with_half(
        &self,
        factor: &DenseCholesky,
        c: &Array2<f64>,
    ) -> Result<Option<(Array2<f64>, Array2<f64>)>> {
        let c = fortran(c);
        let (m, w) = factor.gram_inverse_with_half(column_major_view(&c), self.par.0);
        Ok(Some((from_faer(&m), from_faer(&w))))
    }

    fn gram_inverse_keeping(
        &self,
        factor: &mut DenseCholesky,
        c: &Array2<f64>,
    ) -> Result<Array2<f64>> {
        let m = viewed(c, |c| factor.gram_inverse_keeping(c, self.par.0));
        Ok(from_faer(&m))
    }

    fn solve_split(
        &self,
        factor: &DenseCholesky,
        c: &Array2<f64>,
        f: &Array2<f64>,
    ) -> Result<(Array2<f64>, Array2<f64>)> {
        let (chf, t) = viewed(c, |c| viewed(f, |f| factor.solve_split(c, f, self.par.0)));
        Ok((from_faer(&chf), from_faer(&t)))
    }

    fn solve_join(
        &self,
        factor: &DenseCholesky,
        c: &Array2<f64>,
        t: Array2<f64>,
        y: &Array2<f64>,
    ) -> Result<Array2<f64>> {
        let t = viewed(&t, |t| t.to_owned());
        let x = viewed(c, |c| viewed(y, |y| factor.solve_join(c, t, y, self.par.0)));
        Ok(from_faer(&x))
    }

    fn half_product_solve(
        &self,
        factor: &DenseCholesky,
        half: &Array2<f64>,
        rhs: &Array2<f64>,
        alpha: f64,
    ) -> Result<Array2<f64>> {
        let [half, rhs] = [half, rhs].map(fortran);
        let x = factor.half_product_solve(
            column_major_view(&half),
            column_major_view(&rhs),
            alpha,
            self.par.0,
        );
        Ok(from_faer(&x))
    }

    fn factor_pivots(&self, factor: &DenseCholesky) -> Result<Option<Vec<f64>>> {
        Ok(Some(factor.pivots()))
    }

    fn solve_in_place(&self, factor: &DenseCholesky, rhs: &mut Array2<f64>) -> Result<()> {
        in_place(rhs, |view| factor.solve_in_place(view, self.par.0));
        Ok(())
    }

    fn factor_inverse(&self, factor: &DenseCholesky, _n: usize) -> Result<Array2<f64>> {
        let inverse = factor.inverse(self.par.0);
        let n = inverse.nrows();
        Ok(Array2::from_shape_fn((n, n), |(i, j)| inverse[(i, j)]))
    }

    fn axpby(&self, alpha: f64, x: &Array2<f64>, beta: f64, y: &mut Array2<f64>) -> Result<()> {
        Zip::from(y)
            .and(x)
            .for_each(|y, &x| *y = kernels::axpby_one(alpha, x, beta, *y));
        Ok(())
    }

    fn lincomb<const N: usize>(
        &self,
        terms: [(f64, &Array2<f64>); N],
        delta: f64,
        dst: &mut Array2<f64>,
    ) -> Result<()> {
        // one pass over flat slices when every block has dst's contiguous layout
        let flat = terms.iter().all(|(_, x)| {
            x.shape() == dst.shape()
                && x.strides() == dst.strides()
                && x.as_slice_memory_order().is_some()
        });
        match dst.as_slice_memory_order_mut() {
            Some(out) if flat => {
                let slices = terms.map(|(a, x)| (a, x.as_slice_memory_order().expect("flat")));
                kernels::lincomb(slices, delta, out);
                Ok(())
            }
            _ => altdiff_core::lincomb_by_axpby(self, terms, delta, dst),
        }
    }

    fn proj_nonneg(&self, x: &mut Array2<f64>) -> Result<()> {
        x.mapv_inplace(kernels::proj_nonneg_one);
        Ok(())
    }

    fn slack_dual_update(
        &self,
        s: &mut Array2<f64>,
        y: &mut Array2<f64>,
        cx: &Array2<f64>,
        bh: &Array2<f64>,
        mask: &Array2<f64>,
        project: bool,
        rho: f64,
    ) -> Result<()> {
        // column by column on slices when every block is column-major (the usual layout)
        let column_major = |m: &Array2<f64>| m.t().is_standard_layout();
        if [&*s, &*y, cx, bh, mask].into_iter().all(column_major) {
            let one_mask = mask.ncols() == 1;
            for j in 0..s.ncols() {
                let (mut sj, mut yj) = (s.column_mut(j), y.column_mut(j));
                kernels::slack_dual_update(
                    sj.as_slice_mut().expect("column-major"),
                    yj.as_slice_mut().expect("column-major"),
                    cx.column(j).as_slice().expect("column-major"),
                    bh.column(j).as_slice().expect("column-major"),
                    mask.column(if one_mask { 0 } else { j })
                        .as_slice()
                        .expect("column-major"),
                    project,
                    rho,
                );
            }
            return Ok(());
        }
        let mask = mask
            .broadcast(s.dim())
            .expect("slack_dual_update: mask shape");
        Zip::from(s)
            .and(y)
            .and(cx)
            .and(bh)
            .and(&mask)
            .for_each(|s, y, &cx, &bh, &m| {
                (*s, *y) = kernels::slack_dual_one(bh, cx, *y, m, project, rho);
            });
        Ok(())
    }

    fn dproj_nonneg(&self, at: &Array2<f64>, m: &mut Array2<f64>) -> Result<()> {
        assert!(
            at.ncols() == 1 || at.ncols() == m.ncols(),
            "dproj_nonneg: columns"
        );
        let mask = at.broadcast(m.dim()).expect("dproj_nonneg: mask shape");
        Zip::from(m).and(&mask).for_each(|v, &a| {
            if !kernels::keeps(a) {
                *v = 0.0;
            }
        });
        Ok(())
    }

    fn norm_inf(&self, x: &Array2<f64>) -> Result<f64> {
        Ok(x.fold(0.0, |acc, &v| kernels::max_abs(acc, v)))
    }

    fn dot(&self, x: &Array2<f64>, y: &Array2<f64>) -> Result<f64> {
        Ok(Zip::from(x).and(y).fold(0.0, |acc, &a, &b| acc + a * b))
    }
}
