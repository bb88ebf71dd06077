//! [`SparseCholesky`]: the sparse factorization of `H = P + rho (A'A + G'G)`.
//!
//! `H` is assembled once on the union pattern of `P` and `C'C` (`C = [A; G]`, the product
//! formed by faer's sparse-sparse product), the fill-reducing symbolic analysis (AMD, or
//! the natural order where that fills less) runs once per pattern, and a new penalty only
//! redoes the numeric factorization ([`SparseCholesky::refactor`]). Rows of `C` with many
//! entries (a budget row `1'x = 1`, a dense row of a Maros-Meszaros problem) would make
//! `C'C` dense: they are kept out of the sparse part and added back as a low-rank
//! correction (Woodbury): `H^-1 = Hs^-1 - W (I/rho + D W)^-1 W'` with `Hs` the sparse part,
//! `D` the dense rows and `W = Hs^-1 D'` (`n x k`).

use std::sync::Arc;

use altdiff_core::{Error, Result};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::LltRegularization;
use faer::linalg::matmul::matmul;
use faer::prelude::{Reborrow, ReborrowMut};
use faer::sparse::linalg::cholesky::{
    CholeskySymbolicParams, LltRef, SymbolicCholesky, SymmetricOrdering,
    factorize_symbolic_cholesky,
};
use faer::sparse::linalg::matmul::{sparse_dense_matmul, sparse_sparse_matmul};
use faer::sparse::{SparseColMat, SparseColMatRef, SymbolicSparseColMat, Triplet};
use faer::{Conj, Mat, MatMut, Par, Side};

use crate::DenseCholesky;
use crate::sparse_kkt::KktFactor;

/// A sparse matrix of the backend: CSC with `usize` indices.
pub type SparseMat = SparseColMat<usize, f64>;

/// Where dense rows of `A`, `G` are split off `H` (see the module docs).
///
/// # Example
/// ```
/// use altdiff_faer::DenseRows;
/// assert_eq!(DenseRows::default().threshold(10_000), 1_000);
/// assert_eq!(DenseRows::Never.threshold(10_000), usize::MAX);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum DenseRows {
    /// Rows with more than `max(100, 10 sqrt(n))` entries (the default).
    #[default]
    Auto,
    /// Rows with more than this many entries.
    Above(usize),
    /// Never: every row goes into the sparse `C'C`.
    Never,
}

impl DenseRows {
    /// The entry count above which a row of `n` columns is dense.
    pub fn threshold(self, n: usize) -> usize {
        match self {
            DenseRows::Auto => 100.max((10.0 * (n as f64).sqrt()) as usize),
            DenseRows::Above(t) => t,
            DenseRows::Never => usize::MAX,
        }
    }
}

/// At most this many dense rows are split off (their `W` is `n x k` dense).
const MAX_DENSE_ROWS: usize = 256;

/// The sparse `LL'` of `H = P + rho C'C`, with dense rows of `C` as a low-rank correction.
///
/// # Example
/// ```
/// use altdiff_faer::{DenseRows, SparseCholesky, sparse_from_dense};
/// use faer::Par;
/// let p = sparse_from_dense(faer::mat![[2.0, 0.0], [0.0, 2.0]].as_ref());
/// let a = sparse_from_dense(faer::mat![[1.0, 1.0]].as_ref());
/// let g = sparse_from_dense(faer::Mat::<f64>::zeros(0, 2).as_ref());
/// let chol = SparseCholesky::new(&p, &[&a, &g], 1.0, DenseRows::Auto, Par::Seq)?;
/// let mut x = faer::mat![[4.0], [4.0]]; // H = [[3, 1], [1, 3]]
/// chol.solve_in_place(x.as_mut(), Par::Seq);
/// assert!((x[(0, 0)] - 1.0).abs() < 1e-12);
/// let again = chol.refactor(3.0, Par::Seq)?; // H = [[5, 3], [3, 5]]
/// let mut y = faer::mat![[8.0], [8.0]];
/// again.solve_in_place(y.as_mut(), Par::Seq);
/// assert!((y[(1, 0)] - 1.0).abs() < 1e-12);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SparseCholesky {
    inner: Inner,
}

/// The two forms of the factorization.
#[derive(Clone, Debug)]
enum Inner {
    Normal(Normal),
    Kkt(KktFactor),
}

/// Which system [`SparseCholesky`] factors.
///
/// # Example
/// ```
/// use altdiff_faer::SparseForm;
/// assert_eq!(SparseForm::default(), SparseForm::Auto);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum SparseForm {
    /// The normal form unless `C'C` would have more than 8 times the entries of the KKT
    /// matrix (estimated from the row lengths, before forming it), or more rows are dense
    /// than the low-rank correction takes (the default).
    #[default]
    Auto,
    /// `LL'` of `H = P + rho C'C` (dense rows as a low-rank correction).
    Normal,
    /// `LDL'` of the quasi-definite `[P + sigma I, C'; C, -I/rho]`, refined against `H`
    /// (see the module `sparse_kkt`).
    Kkt,
}

/// The normal-form factor: `LL'` of `H_s` and the low-rank correction.
#[derive(Clone, Debug)]
struct Normal {
    pattern: Arc<Pattern>,
    rho: f64,
    /// The values of `H_s` on its lower pattern.
    h_values: Vec<f64>,
    l_values: Vec<f64>,
    low_rank: Option<LowRank>,
}

/// What stays the same for every penalty: `H`'s lower pattern, the values of `P` and of the
/// sparse `C_s'C_s` on it, the symbolic factorization, the dense rows.
#[derive(Debug)]
struct Pattern {
    h: SymbolicSparseColMat<usize>,
    p_values: Vec<f64>,
    ctc_values: Vec<f64>,
    symbolic: SymbolicCholesky<usize>,
    dense_rows: Option<Mat<f64>>,
}

/// `W = Hs^-1 D'` and the factor of `I/rho + D W`.
#[derive(Clone, Debug)]
struct LowRank {
    w: Mat<f64>,
    capacitance: DenseCholesky,
}

impl SparseCholesky {
    /// Assembles and factors `H = P + rho sum_i C_i'C_i` in the [`SparseForm::Auto`] form;
    /// see [`SparseCholesky::with_form`].
    ///
    /// # Errors
    /// As [`SparseCholesky::with_form`].
    pub fn new(
        p: &SparseMat,
        blocks: &[&SparseMat],
        rho: f64,
        dense_rows: DenseRows,
        par: Par,
    ) -> Result<Self> {
        Self::with_form(p, blocks, rho, dense_rows, SparseForm::Auto, par)
    }

    /// Factors `H = P + rho sum_i C_i'C_i` (`P` with both triangles stored, only the lower
    /// one read) in the given form.
    ///
    /// # Errors
    /// [`Error::NotPositiveDefinite`] when `H` is not positive definite (the KKT form:
    /// when `K` has no quasi-definite `LDL'`); a backend error when faer cannot allocate.
    ///
    /// # Panics
    /// When the shapes disagree.
    pub fn with_form(
        p: &SparseMat,
        blocks: &[&SparseMat],
        rho: f64,
        dense_rows: DenseRows,
        form: SparseForm,
        par: Par,
    ) -> Result<Self> {
        let n = p.nrows();
        assert_eq!(p.ncols(), n, "P must be square");
        let rows = constraint_rows(blocks, n)?;
        let threshold = dense_rows.threshold(n);
        let kkt = match form {
            SparseForm::Normal => false,
            SparseForm::Kkt => true,
            SparseForm::Auto => prefers_kkt(p, &rows, threshold),
        };
        let inner = if kkt {
            Inner::Kkt(KktFactor::new(p, &rows, rho, par)?)
        } else {
            Inner::Normal(Normal::new(p, &rows, threshold, rho, par)?)
        };
        Ok(Self { inner })
    }

    /// The factor for a new penalty: the same pattern and symbolic analysis, a new numeric
    /// factorization (and low-rank correction).
    ///
    /// # Errors
    /// [`Error::NotPositiveDefinite`].
    pub fn refactor(&self, rho: f64, par: Par) -> Result<Self> {
        let inner = match &self.inner {
            Inner::Normal(f) => Inner::Normal(f.refactor(rho, par)?),
            Inner::Kkt(f) => Inner::Kkt(f.refactor(rho, par)?),
        };
        Ok(Self { inner })
    }

    /// The penalty of this factorization.
    pub fn rho(&self) -> f64 {
        match &self.inner {
            Inner::Normal(f) => f.rho,
            Inner::Kkt(f) => f.rho(),
        }
    }

    /// The form in use ([`SparseForm::Normal`] or [`SparseForm::Kkt`]).
    pub fn form(&self) -> SparseForm {
        match &self.inner {
            Inner::Normal(_) => SparseForm::Normal,
            Inner::Kkt(_) => SparseForm::Kkt,
        }
    }

    /// The number of stored entries of the factor (`L` of the sparse part of `H`, or of
    /// the `LDL'` of the KKT matrix).
    pub fn nnz_l(&self) -> usize {
        match &self.inner {
            Inner::Normal(f) => f.l_values.len(),
            Inner::Kkt(f) => f.nnz_l(),
        }
    }

    /// The number of dense rows handled by the low-rank correction (0 in the KKT form).
    pub fn dense_rows(&self) -> usize {
        match &self.inner {
            Inner::Normal(f) => f.pattern.dense_rows.as_ref().map_or(0, Mat::nrows),
            Inner::Kkt(_) => 0,
        }
    }

    /// `rhs = H^-1 rhs` for a block of right-hand sides. With dense rows split off, the
    /// Woodbury solve is followed by one step of iterative refinement (the low-rank
    /// correction loses digits when `rho |D|^2` dominates `H_s`); the KKT form refines
    /// until the residual stops shrinking.
    ///
    /// # Panics
    /// When `rhs` does not have `n` rows.
    pub fn solve_in_place(&self, rhs: MatMut<'_, f64>, par: Par) {
        match &self.inner {
            Inner::Normal(f) => f.solve_in_place(rhs, par),
            Inner::Kkt(f) => f.solve_in_place(rhs, par),
        }
    }
}

/// Whether the KKT form is the better one: `C'C` (its sparse rows) would hold more than 8
/// times the entries of `K`, estimated from the row lengths (`len (len + 1) / 2` each, an
/// upper bound), or more rows are dense than the low-rank correction takes.
fn prefers_kkt(p: &SparseMat, rows: &SparseMat, threshold: usize) -> bool {
    let lengths = (0..rows.ncols()).map(|r| row_len(rows, r));
    let dense = lengths.clone().filter(|&len| len > threshold).count();
    let ctc: usize = lengths
        .filter(|&len| len <= threshold)
        .map(|len| len * (len + 1) / 2)
        .sum();
    let k = p.compute_nnz() / 2 + rows.compute_nnz() + p.nrows() + rows.ncols();
    dense > MAX_DENSE_ROWS || ctc > 8 * k
}

impl Normal {
    /// Assembles `H = P + rho C'C` (lower triangle) from `P` and the rows `rows` (`C'`,
    /// `n x r`), rows with more than `threshold` entries split off, analyses its pattern
    /// and factors it.
    fn new(p: &SparseMat, rows: &SparseMat, threshold: usize, rho: f64, par: Par) -> Result<Self> {
        let dense: Vec<usize> = (0..rows.ncols())
            .filter(|&r| row_len(rows, r) > threshold)
            .take(MAX_DENSE_ROWS)
            .collect();
        if !dense.is_empty() {
            match Self::assemble(p, rows, &dense, rho, par) {
                Err(Error::NotPositiveDefinite { .. }) => {}
                other => return other,
            }
        }
        // without a split (or when the sparse part alone is singular)
        Self::assemble(p, rows, &[], rho, par)
    }

    fn refactor(&self, rho: f64, par: Par) -> Result<Self> {
        Self::numeric(self.pattern.clone(), rho, par)
    }

    /// `rhs = H^-1 rhs` (see [`SparseCholesky::solve_in_place`]).
    fn solve_in_place(&self, mut rhs: MatMut<'_, f64>, par: Par) {
        if self.low_rank.is_none() {
            self.solve_sparse(rhs, par);
            return;
        }
        let original = rhs.rb().to_owned();
        self.solve_woodbury(rhs.rb_mut(), par);
        // r = b - H x, x += H^-1 r
        let mut residual = original;
        self.apply_h(rhs.rb(), residual.as_mut(), -1.0, par);
        self.solve_woodbury(residual.as_mut(), par);
        rhs.copy_from(&(rhs.rb() + &residual));
    }

    fn solve_woodbury(&self, mut rhs: MatMut<'_, f64>, par: Par) {
        self.solve_sparse(rhs.rb_mut(), par);
        if let (Some(low), Some(d)) = (&self.low_rank, &self.pattern.dense_rows) {
            // rhs -= W (I/rho + D W)^-1 D rhs
            let mut t = Mat::<f64>::zeros(d.nrows(), rhs.ncols());
            matmul(t.as_mut(), faer::Accum::Replace, d, rhs.rb(), 1.0, par);
            low.capacitance.solve_in_place(t.as_mut(), par);
            matmul(rhs, faer::Accum::Add, &low.w, &t, -1.0, par);
        }
    }

    /// `dst += alpha H x` with `H = H_s + rho D'D` (`H_s` from its lower triangle).
    fn apply_h(&self, x: faer::MatRef<'_, f64>, mut dst: MatMut<'_, f64>, alpha: f64, par: Par) {
        let h = SparseColMatRef::new(self.pattern.h.as_ref(), &self.h_values);
        sparse_dense_matmul(dst.rb_mut(), faer::Accum::Add, h, x, alpha, par);
        sparse_dense_matmul(dst.rb_mut(), faer::Accum::Add, h.transpose(), x, alpha, par);
        // the diagonal was added twice
        let ptr = self.pattern.h.col_ptr();
        for j in 0..h.ncols() {
            let rows = &self.pattern.h.row_idx()[ptr[j]..ptr[j + 1]];
            if let Ok(k) = rows.binary_search(&j) {
                let diag = self.h_values[ptr[j] + k];
                for c in 0..x.ncols() {
                    dst[(j, c)] -= alpha * diag * x[(j, c)];
                }
            }
        }
        if let Some(d) = &self.pattern.dense_rows {
            let mut t = Mat::<f64>::zeros(d.nrows(), x.ncols());
            matmul(t.as_mut(), faer::Accum::Replace, d, x, 1.0, par);
            matmul(
                dst,
                faer::Accum::Add,
                d.transpose(),
                &t,
                alpha * self.rho,
                par,
            );
        }
    }

    fn solve_sparse(&self, rhs: MatMut<'_, f64>, par: Par) {
        let symbolic = &self.pattern.symbolic;
        let llt = LltRef::new(symbolic, &self.l_values);
        let mut mem = MemBuffer::new(symbolic.solve_in_place_scratch::<f64>(rhs.ncols(), par));
        llt.solve_in_place_with_conj(Conj::No, rhs, par, MemStack::new(&mut mem));
    }

    /// The pattern of `H_s = P + rho C_s'C_s` (without the rows `dense`), its symbolic
    /// analysis, then the numeric factorization.
    fn assemble(
        p: &SparseMat,
        rows: &SparseMat,
        dense: &[usize],
        rho: f64,
        par: Par,
    ) -> Result<Self> {
        let n = p.nrows();
        let sparse_rows = drop_columns(rows, dense)?;
        // C_s'C_s with C_s (r x n) and C_s' (n x r) both in CSC
        let cs_t = transposed(&sparse_rows)?;
        let ctc = sparse_sparse_matmul(cs_t.as_ref(), sparse_rows.as_ref(), 1.0, par)
            .map_err(|e| Error::backend("faer-sparse", e))?;
        let mut triplets: Vec<Triplet<usize, usize, f64>> =
            (0..n).map(|j| Triplet::new(j, j, 0.0)).collect();
        for m in [p, &ctc] {
            triplets.extend(lower_entries(m.as_ref()).map(|(i, j, _)| Triplet::new(i, j, 0.0)));
        }
        let h = SparseMat::try_new_from_triplets(n, n, &triplets)
            .map_err(|e| Error::backend("faer-sparse", std::io::Error::other(format!("{e:?}"))))?;
        let h = h
            .symbolic()
            .to_owned()
            .map_err(|e| Error::backend("faer-sparse", e))?;
        let p_values = scatter(&h, p.as_ref());
        let ctc_values = scatter(&h, ctc.as_ref());
        let symbolic = symbolic_with_least_fill(h.as_ref())?;
        let dense_rows = (!dense.is_empty()).then(|| dense_block(rows, dense, n));
        let pattern = Arc::new(Pattern {
            h,
            p_values,
            ctc_values,
            symbolic,
            dense_rows,
        });
        Self::numeric(pattern, rho, par)
    }

    fn numeric(pattern: Arc<Pattern>, rho: f64, par: Par) -> Result<Self> {
        let values: Vec<f64> = pattern
            .p_values
            .iter()
            .zip(&pattern.ctc_values)
            .map(|(p, c)| p + rho * c)
            .collect();
        let h = SparseColMatRef::new(pattern.h.as_ref(), &values);
        let symbolic = &pattern.symbolic;
        let mut l_values = vec![0.0; symbolic.len_val()];
        let mut mem =
            MemBuffer::new(symbolic.factorize_numeric_llt_scratch::<f64>(par, Default::default()));
        symbolic
            .factorize_numeric_llt(
                &mut l_values,
                h,
                Side::Lower,
                LltRegularization::default(),
                par,
                MemStack::new(&mut mem),
                Default::default(),
            )
            .map_err(|_| Error::NotPositiveDefinite { pivot: None })?;
        let mut factor = Self {
            pattern,
            rho,
            h_values: values,
            l_values,
            low_rank: None,
        };
        if let Some(d) = &factor.pattern.dense_rows {
            let mut w = d.transpose().to_owned();
            factor.solve_sparse(w.as_mut(), par);
            let mut cap = Mat::<f64>::identity(d.nrows(), d.nrows()) * (1.0 / rho);
            matmul(cap.as_mut(), faer::Accum::Add, d, &w, 1.0, par);
            let capacitance = DenseCholesky::new(cap.as_ref(), par)?;
            factor.low_rank = Some(LowRank { w, capacitance });
        }
        Ok(factor)
    }
}

/// The symbolic factorization of `H` (lower triangle stored) under the ordering with the
/// least fill: AMD, or the natural order when its factor has fewer than 0.9 times AMD's
/// entries (banded and other profile matrices, where AMD's local choices fill more than the
/// band; CHOLMOD likewise tries several orderings and keeps the least fill). The natural
/// order's fill is counted from its elimination tree and column counts, `O(nnz(H))`,
/// without building its structure.
fn symbolic_with_least_fill(
    h: faer::sparse::SymbolicSparseColMatRef<'_, usize>,
) -> Result<SymbolicCholesky<usize>> {
    let backend = |e| Error::backend("faer-sparse", e);
    let amd = factorize_symbolic_cholesky(
        h,
        Side::Lower,
        SymmetricOrdering::Amd,
        CholeskySymbolicParams::default(),
    )
    .map_err(backend)?;
    if (natural_fill(h)? as f64) >= 0.9 * amd.len_val() as f64 {
        return Ok(amd);
    }
    let identity: Vec<usize> = (0..h.nrows()).collect();
    factorize_symbolic_cholesky(
        h,
        Side::Lower,
        SymmetricOrdering::Custom(faer::perm::PermRef::new_checked(
            &identity,
            &identity,
            h.nrows(),
        )),
        CholeskySymbolicParams::default(),
    )
    .map_err(backend)
}

/// The entries of the Cholesky factor of `H` (lower triangle stored) in its natural order.
fn natural_fill(h: faer::sparse::SymbolicSparseColMatRef<'_, usize>) -> Result<usize> {
    use faer::sparse::linalg::cholesky::simplicial::{
        prefactorize_symbolic_cholesky, prefactorize_symbolic_cholesky_scratch,
    };
    let n = h.nrows();
    // the analysis reads the upper triangle: the transpose of the stored lower one
    let upper = h
        .transpose()
        .to_col_major()
        .map_err(|e| Error::backend("faer-sparse", e))?;
    let mut etree = vec![0isize; n];
    let mut counts = vec![0usize; n];
    let mut mem = MemBuffer::new(prefactorize_symbolic_cholesky_scratch::<usize>(
        n,
        upper.compute_nnz(),
    ));
    prefactorize_symbolic_cholesky(
        &mut etree,
        &mut counts,
        upper.as_ref(),
        MemStack::new(&mut mem),
    );
    Ok(counts.iter().sum())
}

/// Tests that `P + shift I` has a sparse Cholesky factor (lower triangle of `P` read).
///
/// # Errors
/// A backend error when faer cannot allocate.
///
/// # Example
/// ```
/// use altdiff_faer::{sparse_from_dense, sparse_is_psd_with_shift};
/// use faer::Par;
/// let p = sparse_from_dense(faer::mat![[1.0, 1.0], [1.0, 1.0]].as_ref()); // PSD, singular
/// assert!(sparse_is_psd_with_shift(&p, 1e-8, Par::Seq)?);
/// let q = sparse_from_dense(faer::mat![[1.0, 2.0], [2.0, 1.0]].as_ref()); // eigenvalue -1
/// assert!(!sparse_is_psd_with_shift(&q, 1e-8, Par::Seq)?);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub fn sparse_is_psd_with_shift(p: &SparseMat, shift: f64, par: Par) -> Result<bool> {
    let n = p.nrows();
    let no_rows = SparseMat::try_new_from_triplets(0, n, &[])
        .map_err(|e| Error::backend("faer-sparse", std::io::Error::other(format!("{e:?}"))))?;
    let mut shifted: Vec<Triplet<usize, usize, f64>> =
        (0..n).map(|j| Triplet::new(j, j, shift)).collect();
    shifted.extend(lower_entries(p.as_ref()).map(|(i, j, v)| Triplet::new(i, j, v)));
    let shifted = SparseMat::try_new_from_triplets(n, n, &shifted)
        .map_err(|e| Error::backend("faer-sparse", std::io::Error::other(format!("{e:?}"))))?;
    match SparseCholesky::new(&shifted, &[&no_rows], 0.0, DenseRows::Never, par) {
        Ok(_) => Ok(true),
        Err(Error::NotPositiveDefinite { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// A sparse matrix holding the nonzero entries of a dense one.
///
/// # Example
/// ```
/// let s = altdiff_faer::sparse_from_dense(faer::mat![[1.0, 0.0], [0.0, 2.0]].as_ref());
/// assert_eq!(s.compute_nnz(), 2);
/// ```
pub fn sparse_from_dense(m: faer::MatRef<'_, f64>) -> SparseMat {
    let triplets: Vec<Triplet<usize, usize, f64>> = (0..m.ncols())
        .flat_map(|j| (0..m.nrows()).map(move |i| (i, j)))
        .filter(|&(i, j)| m[(i, j)] != 0.0)
        .map(|(i, j)| Triplet::new(i, j, m[(i, j)]))
        .collect();
    SparseMat::try_new_from_triplets(m.nrows(), m.ncols(), &triplets)
        .expect("indices of a dense matrix are in range")
}

/// `A'` in CSC (a new matrix).
pub(crate) fn transposed(m: &SparseMat) -> Result<SparseMat> {
    m.as_ref()
        .transpose()
        .to_col_major()
        .map_err(|e| Error::backend("faer-sparse", e))
}

/// The rows of every block as the columns of one `n x r` CSC matrix (`[A; G]'`).
fn constraint_rows(blocks: &[&SparseMat], n: usize) -> Result<SparseMat> {
    let mut col_ptr = vec![0usize];
    let (mut row_idx, mut values) = (Vec::new(), Vec::new());
    for block in blocks {
        assert_eq!(block.ncols(), n, "constraint block width");
        let t = transposed(block)?;
        for j in 0..t.ncols() {
            row_idx.extend_from_slice(t.as_ref().row_idx_of_col_raw(j));
            values.extend_from_slice(t.as_ref().val_of_col(j));
            col_ptr.push(values.len());
        }
    }
    let r = col_ptr.len() - 1;
    let symbolic = SymbolicSparseColMat::new_checked(n, r, col_ptr, None, row_idx);
    Ok(SparseMat::new(symbolic, values))
}

fn row_len(rows: &SparseMat, r: usize) -> usize {
    let ptr = rows.symbolic().col_ptr();
    ptr[r + 1] - ptr[r]
}

/// The columns of `m` except `drop` (sorted), transposed back: the `C_s` rows as CSC
/// `(r - k) x n`.
fn drop_columns(m: &SparseMat, drop: &[usize]) -> Result<SparseMat> {
    let mut col_ptr = vec![0usize];
    let (mut row_idx, mut values) = (Vec::new(), Vec::new());
    for j in (0..m.ncols()).filter(|j| drop.binary_search(j).is_err()) {
        row_idx.extend_from_slice(m.as_ref().row_idx_of_col_raw(j));
        values.extend_from_slice(m.as_ref().val_of_col(j));
        col_ptr.push(values.len());
    }
    let kept = col_ptr.len() - 1;
    let symbolic = SymbolicSparseColMat::new_checked(m.nrows(), kept, col_ptr, None, row_idx);
    transposed(&SparseMat::new(symbolic, values))
}

/// The columns `dense` of `m` (`n x r`) as the rows of a dense `k x n` block.
fn dense_block(m: &SparseMat, dense: &[usize], n: usize) -> Mat<f64> {
    let mut d = Mat::<f64>::zeros(dense.len(), n);
    for (row, &j) in dense.iter().enumerate() {
        let (idx, val) = (m.as_ref().row_idx_of_col_raw(j), m.as_ref().val_of_col(j));
        for (&i, &v) in idx.iter().zip(val) {
            d[(row, i)] = v;
        }
    }
    d
}

/// The entries `(row, col, value)` with `row >= col`.
pub(crate) fn lower_entries(
    m: SparseColMatRef<'_, usize, f64>,
) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
    (0..m.ncols()).flat_map(move |j| {
        m.row_idx_of_col_raw(j)
            .iter()
            .zip(m.val_of_col(j))
            .filter(move |(i, _)| **i >= j)
            .map(move |(&i, &v)| (i, j, v))
    })
}

/// The lower-triangle values of `m` placed on the pattern `h` (which contains them).
fn scatter(h: &SymbolicSparseColMat<usize>, m: SparseColMatRef<'_, usize, f64>) -> Vec<f64> {
    let mut out = vec![0.0; h.row_idx().len()];
    let ptr = h.col_ptr();
    for (i, j, v) in lower_entries(m) {
        let rows = &h.row_idx()[ptr[j]..ptr[j + 1]];
        let k = rows
            .binary_search(&i)
            .expect("the pattern holds every entry");
        out[ptr[j] + k] += v;
    }
    out
}

/// `dst = [dst +] alpha op(') rhs` for a sparse operator.
pub(crate) fn sparse_apply(
    dst: MatMut<'_, f64>,
    accum: faer::Accum,
    op: &SparseMat,
    transpose: bool,
    rhs: faer::MatRef<'_, f64>,
    alpha: f64,
    par: Par,
) {
    if transpose {
        sparse_dense_matmul(dst, accum, op.as_ref().transpose(), rhs, alpha, par);
    } else {
        sparse_dense_matmul(dst, accum, op.as_ref(), rhs, alpha, par);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lower-triangle pattern of the `n x n` matrix with entries at `entries` (and the
    /// diagonal).
    fn pattern(
        n: usize,
        entries: impl Iterator<Item = (usize, usize)>,
    ) -> SymbolicSparseColMat<usize> {
        let mut triplets: Vec<Triplet<usize, usize, f64>> =
            (0..n).map(|j| Triplet::new(j, j, 1.0)).collect();
        triplets.extend(entries.map(|(i, j)| Triplet::new(i.max(j), i.min(j), 1.0)));
        SparseMat::try_new_from_triplets(n, n, &triplets)
            .unwrap()
            .symbolic()
            .to_owned()
            .unwrap()
    }

    #[test]
    fn natural_fill_counts_the_factor() {
        let n = 40;
        // an arrow with its dense row first fills completely in the natural order
        let arrow = pattern(n, (1..n).map(|i| (i, 0)));
        assert_eq!(natural_fill(arrow.as_ref()).unwrap(), n * (n + 1) / 2);
        // tridiagonal: no fill
        let tri = pattern(n, (1..n).map(|i| (i, i - 1)));
        assert_eq!(natural_fill(tri.as_ref()).unwrap(), 2 * n - 1);
    }

    #[test]
    fn least_fill_keeps_the_better_ordering() {
        let n = 40;
        // the arrow: AMD moves the dense node last (no fill); the natural order is refused
        let arrow = pattern(n, (1..n).map(|i| (i, 0)));
        let chosen = symbolic_with_least_fill(arrow.as_ref()).unwrap();
        assert!(chosen.len_val() <= 2 * n, "{}", chosen.len_val());
        // C'C of rows with 10 random columns within sliding windows of 100 (the pattern of
        // the banded QP generator): AMD's local choices fill 2.0 M entries, the natural
        // order 1.4 M, and the natural order is kept
        let (n, window): (usize, usize) = (20_000, 100);
        let mut state = 7u64;
        let mut next = move |k: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % k
        };
        let mut entries = Vec::new();
        for r in 0..n / 2 {
            let start = (2 * r).saturating_sub(window / 2).min(n - window);
            let cols: Vec<usize> = (0..10).map(|_| start + next(window)).collect();
            entries.extend(
                cols.iter()
                    .flat_map(|&a| cols.iter().map(move |&b| (a, b)))
                    .filter(|(a, b)| a != b),
            );
        }
        let local = pattern(n, entries.into_iter());
        let amd = factorize_symbolic_cholesky(
            local.as_ref(),
            Side::Lower,
            SymmetricOrdering::Amd,
            CholeskySymbolicParams::default(),
        )
        .unwrap();
        let natural = natural_fill(local.as_ref()).unwrap();
        assert!(
            (natural as f64) < 0.9 * amd.len_val() as f64,
            "natural {natural}, AMD {}",
            amd.len_val()
        );
        let chosen = symbolic_with_least_fill(local.as_ref()).unwrap();
        assert!(
            chosen.len_val() < amd.len_val() && chosen.len_val() >= natural,
            "kept {}, natural {natural}, AMD {}",
            chosen.len_val(),
            amd.len_val()
        );
    }
}
