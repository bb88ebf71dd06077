//! Sparse QP generators: a random sparse QP of a given density, a Lasso QP and a portfolio
//! QP with a factor model (the families of OSQP's benchmark suite, sized for `n` up to
//! 1e5), returned as [`HostQp`]s with sparse matrices.
//!
//! All are seeded (the crate's SplitMix64, normals by Box-Muller: a seed gives the same
//! problem on every platform), convex, and feasible by construction:
//!
//! * [`random_sparse_qp`]: `P = M'M + 1e-2 I` with `M` (n x n) of `round(sqrt(density n))`
//!   N(0, 1) entries per row (so about `density n` entries per row of `P`); `q`, `x0` ~
//!   N(0, 1); `A` (n_eq x n) and `G` (n_ineq x n) of `max(1, round(density n))` N(0, 1)
//!   entries per row at distinct random columns; `b = A x0`, `h = G x0 + s0` with `s0_i = 0`
//!   (tight at `x0`) or U(0, 1), each with probability 1/2. Strictly convex.
//! * [`lasso_qp`]: `minimize 1/2 |F x - d|^2 + lambda |x|_1` as a QP in `(x, y, t)` (k
//!   features, r data rows, `n = 2k + r`): `minimize 1/2 y'y + lambda 1't` s.t.
//!   `F x - y = d` (r equalities), `x - t <= 0`, `-x - t <= 0` (2k inequalities). `F` has
//!   `max(1, round(density k))` N(0, 1) entries per row, `d = F x_true + N(0, 1)` noise with
//!   `x_true` half zeros, half N(0, 1/k), and `lambda = |F'd|_inf / 5` (OSQP's choice).
//!   Feasible at `x = t = 0`, `y = -d`; bounded below by 0.
//! * [`portfolio_qp`]: `minimize x'Dx + y'y - mu'x` in `(x, y)` (k assets, f factors,
//!   `n = k + f`) s.t. `y = F'x` (f equalities), `1'x = 1` (one equality), `x >= 0` (k
//!   inequalities): `P = diag(2D, 2I)`, `D_ii` ~ U(0, sqrt(f)), `mu` ~ N(0, 1), the factor
//!   loadings `F` (k x f) with `max(1, round(density f))` N(0, 1) entries per asset (OSQP's
//!   model with `gamma = 1`). Feasible at `x = 1/k`.
//! * [`banded_qp`]: as [`random_sparse_qp`], with every row's columns inside a window that
//!   slides along the diagonal (local coupling: the Cholesky factor of `H` stays sparse).
//!
//! [`SparseKind::generate`] sizes each family to about `n` variables with a target number
//! of entries per row. At `n = 1e5` and 10 entries per row each builds in a fraction of a
//! second (the triplets are sorted once per matrix).
//!
//! # Example
//! ```
//! use altdiff_examples::sparse_gen::SparseKind;
//! let qp = SparseKind::Portfolio.generate(1000, 10, 0);
//! let dims = qp.validate()?;
//! assert!(qp.p.is_sparse() && qp.a.is_sparse() && dims.n == 1000);
//! # Ok::<(), altdiff_core::Error>(())
//! ```

use altdiff_core::{Field, HostMatrix, HostQp};

use crate::rng::SplitMix64;

/// A family of generated sparse problems.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum SparseKind {
    /// [`random_sparse_qp`] with `n_eq = n / 4`, `n_ineq = n / 2`.
    Random,
    /// [`lasso_qp`] with `k = n / 3` features and `r = n - 2k` data rows.
    Lasso,
    /// [`portfolio_qp`] with `f = max(1, n / 101)` factors and `k = n - f` assets.
    Portfolio,
    /// [`banded_qp`] with `n_eq = n / 4`, `n_ineq = n / 2` and a band of 100 columns.
    Banded,
}

impl SparseKind {
    /// Every family.
    pub const ALL: [SparseKind; 4] = [
        SparseKind::Random,
        SparseKind::Lasso,
        SparseKind::Portfolio,
        SparseKind::Banded,
    ];

    /// The family's name.
    pub fn name(self) -> &'static str {
        match self {
            SparseKind::Random => "random",
            SparseKind::Lasso => "lasso",
            SparseKind::Portfolio => "portfolio",
            SparseKind::Banded => "banded",
        }
    }

    /// A problem of about `n` variables (exactly `n` for `n >= 3`) whose random matrices
    /// (`A`, `G` and `M` of [`random_sparse_qp`], `F` of the others) have about
    /// `nnz_per_row` entries per row.
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::sparse_gen::SparseKind;
    /// for kind in SparseKind::ALL {
    ///     let qp = kind.generate(300, 10, 7);
    ///     assert_eq!(qp.validate()?.n, 300);
    /// }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn generate(self, n: usize, nnz_per_row: usize, seed: u64) -> HostQp {
        let n = n.max(3);
        let density = |cols: usize| nnz_per_row as f64 / cols.max(1) as f64;
        match self {
            SparseKind::Random => random_sparse_qp(n, n / 4, n / 2, density(n), seed),
            SparseKind::Lasso => {
                let k = n / 3;
                lasso_qp(k, n - 2 * k, density(k), seed)
            }
            SparseKind::Portfolio => {
                let f = (n / 101).max(1);
                portfolio_qp(n - f, f, density(f), seed)
            }
            SparseKind::Banded => banded_qp(n, n / 4, n / 2, nnz_per_row, 100, seed),
        }
    }
}

/// Entries per row for a density: `max(1, round(density cols))`, at most `cols`.
///
/// # Example
/// ```
/// use altdiff_examples::sparse_gen::entries_per_row;
/// assert_eq!(entries_per_row(0.01, 1000), 10);
/// assert_eq!(entries_per_row(1e-9, 1000), 1);
/// assert_eq!(entries_per_row(2.0, 5), 5);
/// ```
pub fn entries_per_row(density: f64, cols: usize) -> usize {
    ((density * cols as f64).round() as usize).clamp(1, cols.max(1))
}

/// The random sparse QP of the module docs: `n` variables, `n_eq` equalities, `n_ineq`
/// inequalities, matrices of the given `density` (fraction of entries per row).
///
/// # Example
/// ```
/// use altdiff_examples::sparse_gen::random_sparse_qp;
/// let qp = random_sparse_qp(1000, 250, 500, 0.01, 0);
/// qp.validate()?;
/// assert_eq!((qp.a.nnz(), qp.g.nnz()), (250 * 10, 500 * 10)); // 10 per row
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub fn random_sparse_qp(n: usize, n_eq: usize, n_ineq: usize, density: f64, seed: u64) -> HostQp {
    let mut rng = SplitMix64(seed ^ 0x5eed_0001);
    let mut columns = ColumnSampler::new(n);
    // P = M'M + 1e-2 I: every row of M adds the outer product of its entries
    let per_m_row = ((density * n as f64).sqrt().round() as usize).clamp(1, n.max(1));
    let mut p = Vec::with_capacity(n * (per_m_row * per_m_row + 1));
    for _ in 0..n {
        let row: Vec<(usize, f64)> = columns
            .sample(&mut rng, per_m_row)
            .iter()
            .map(|&j| (j, normal(&mut rng)))
            .collect();
        for &(j, u) in &row {
            for &(l, v) in &row {
                p.push((j, l, u * v));
            }
        }
    }
    p.extend((0..n).map(|i| (i, i, 1e-2)));
    let q = normals(&mut rng, n);
    let x0 = normals(&mut rng, n);
    let per_row = entries_per_row(density, n);
    let a = random_rows(&mut rng, &mut columns, Field::A, n_eq, n, per_row);
    let g = random_rows(&mut rng, &mut columns, Field::G, n_ineq, n, per_row);
    feasible_at(&mut rng, triplets(Field::P, n, n, &p), q, a, g, &x0)
}

/// A QP with local coupling (the structure of control, time-series and discretized
/// problems): like [`random_sparse_qp`], but every row of `M` (3 entries), `A` and `G`
/// (`per_row` entries) picks its columns at random inside a window of `band` columns that
/// slides along the diagonal (row `i` of an `r`-row block centred on column `i n / r`).
/// A fill-reducing ordering then keeps the Cholesky factor of `H` at `O(n band)` entries,
/// where uniformly random columns (an expander graph) fill it almost completely, for any
/// ordering: at `n = 1e4` and 10 entries per row [`random_sparse_qp`]'s `H` did not factor
/// within 5 minutes. `b = A x0`, `h = G x0 + s0` as there; strictly convex.
///
/// # Example
/// ```
/// use altdiff_examples::sparse_gen::banded_qp;
/// let qp = banded_qp(1000, 250, 500, 10, 50, 0);
/// qp.validate()?;
/// assert_eq!((qp.a.nnz(), qp.g.nnz()), (250 * 10, 500 * 10));
/// let mut widest = 0;
/// qp.g.for_each_entry(|i, j, _| widest = widest.max((2 * i).abs_diff(j)));
/// assert!(widest <= 50);
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub fn banded_qp(
    n: usize,
    n_eq: usize,
    n_ineq: usize,
    per_row: usize,
    band: usize,
    seed: u64,
) -> HostQp {
    let mut rng = SplitMix64(seed ^ 0x5eed_0004);
    let band = band.clamp(1, n.max(1));
    let mut window = ColumnSampler::new(band);
    // `rows` rows whose entries lie in a window of `band` columns centred on i n / rows
    let mut local_rows = |rng: &mut SplitMix64, rows: usize, per_row: usize| {
        let mut entries = Vec::with_capacity(rows * per_row);
        for i in 0..rows {
            let centre = i * n / rows.max(1);
            let start = centre.saturating_sub(band / 2).min(n - band);
            for j in window.sample(rng, per_row.min(band)) {
                entries.push((i, start + j, normal(rng)));
            }
        }
        entries
    };
    let mut p = Vec::with_capacity(n * 10);
    for row in local_rows(&mut rng, n, 3).chunks(3) {
        for &(_, j, u) in row {
            for &(_, l, v) in row {
                p.push((j, l, u * v));
            }
        }
    }
    p.extend((0..n).map(|i| (i, i, 1e-2)));
    let q = normals(&mut rng, n);
    let x0 = normals(&mut rng, n);
    let a = triplets(Field::A, n_eq, n, &local_rows(&mut rng, n_eq, per_row));
    let g = triplets(Field::G, n_ineq, n, &local_rows(&mut rng, n_ineq, per_row));
    feasible_at(&mut rng, triplets(Field::P, n, n, &p), q, a, g, &x0)
}

/// The Lasso QP of the module docs: `n_features` features (`x`, `t`), `n_data` data rows
/// (`y`), `F` of the given `density`; `n = 2 n_features + n_data` variables.
///
/// # Example
/// ```
/// use altdiff_examples::sparse_gen::lasso_qp;
/// let qp = lasso_qp(100, 50, 0.1, 0);
/// let dims = qp.validate()?;
/// assert_eq!((dims.n, dims.p, dims.m), (250, 50, 200));
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub fn lasso_qp(n_features: usize, n_data: usize, density: f64, seed: u64) -> HostQp {
    let (k, r) = (n_features, n_data);
    let n = 2 * k + r;
    let mut rng = SplitMix64(seed ^ 0x5eed_0002);
    let mut columns = ColumnSampler::new(k);
    let f = random_rows(
        &mut rng,
        &mut columns,
        Field::A,
        r,
        k,
        entries_per_row(density, k),
    );
    let x_true: Vec<f64> = (0..k)
        .map(|_| {
            if rng.uniform() < 0.5 {
                0.0
            } else {
                normal(&mut rng) / (k as f64).sqrt()
            }
        })
        .collect();
    let d: Vec<f64> = f
        .mul_vec(&x_true)
        .into_iter()
        .map(|v| v + normal(&mut rng))
        .collect();
    // lambda = |F'd|_inf / 5
    let mut ftd = vec![0.0; k];
    f.for_each_entry(|i, j, v| ftd[j] += v * d[i]);
    let lambda = ftd.iter().fold(0.0_f64, |m, v| m.max(v.abs())) / 5.0;
    // variables: x = 0..k, y = k..k+r, t = k+r..n
    let (y0, t0) = (k, k + r);
    let p: Vec<_> = (0..r).map(|i| (y0 + i, y0 + i, 1.0)).collect();
    let mut q = vec![0.0; n];
    q[t0..].fill(lambda);
    let mut a = Vec::with_capacity(f.nnz() + r);
    f.for_each_entry(|i, j, v| a.push((i, j, v)));
    a.extend((0..r).map(|i| (i, y0 + i, -1.0)));
    let mut g = Vec::with_capacity(4 * k);
    for j in 0..k {
        // x_j - t_j <= 0, -x_j - t_j <= 0
        g.extend([(j, j, 1.0), (j, t0 + j, -1.0)]);
        g.extend([(k + j, j, -1.0), (k + j, t0 + j, -1.0)]);
    }
    HostQp {
        p: triplets(Field::P, n, n, &p),
        q,
        a: triplets(Field::A, r, n, &a),
        b: d,
        g: triplets(Field::G, 2 * k, n, &g),
        h: vec![0.0; 2 * k],
    }
}

/// The portfolio QP of the module docs: `n_assets` assets (`x`), `n_factors` factors
/// (`y`), loadings `F` of the given `density`; `n = n_assets + n_factors` variables,
/// `n_factors + 1` equalities, `n_assets` inequalities.
///
/// # Example
/// ```
/// use altdiff_examples::sparse_gen::portfolio_qp;
/// let qp = portfolio_qp(990, 10, 0.5, 0);
/// let dims = qp.validate()?;
/// assert_eq!((dims.n, dims.p, dims.m), (1000, 11, 990));
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub fn portfolio_qp(n_assets: usize, n_factors: usize, density: f64, seed: u64) -> HostQp {
    let (k, f) = (n_assets, n_factors);
    let n = k + f;
    let mut rng = SplitMix64(seed ^ 0x5eed_0003);
    let mut columns = ColumnSampler::new(f);
    // loadings: row i of F (asset i) becomes column i of F' in the equalities y = F'x
    let loadings = random_rows(
        &mut rng,
        &mut columns,
        Field::A,
        k,
        f,
        entries_per_row(density, f),
    );
    let sqrt_f = (f as f64).sqrt();
    let mut p: Vec<_> = (0..k)
        .map(|i| (i, i, 2.0 * rng.uniform() * sqrt_f))
        .collect();
    p.extend((k..n).map(|i| (i, i, 2.0)));
    let mut q: Vec<f64> = (0..k).map(|_| -normal(&mut rng)).collect();
    q.resize(n, 0.0);
    // F'x - y = 0 (rows 0..f), 1'x = 1 (row f)
    let mut a = Vec::with_capacity(loadings.nnz() + f + k);
    loadings.for_each_entry(|asset, factor, v| a.push((factor, asset, v)));
    a.extend((0..f).map(|j| (j, k + j, -1.0)));
    a.extend((0..k).map(|i| (f, i, 1.0)));
    let mut b = vec![0.0; f + 1];
    b[f] = 1.0;
    let g: Vec<_> = (0..k).map(|i| (i, i, -1.0)).collect();
    HostQp {
        p: triplets(Field::P, n, n, &p),
        q,
        a: triplets(Field::A, f + 1, n, &a),
        b,
        g: triplets(Field::G, k, n, &g),
        h: vec![0.0; k],
    }
}

/// A standard normal (Box-Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    let u = 1.0 - rng.uniform(); // (0, 1]
    let v = rng.uniform();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn normals(rng: &mut SplitMix64, len: usize) -> Vec<f64> {
    (0..len).map(|_| normal(rng)).collect()
}

/// The QP with `b = A x0` and `h = G x0 + s0`, `s0_i` 0 (tight) or U(0, 1) with probability
/// 1/2 each: feasible at `x0`.
fn feasible_at(
    rng: &mut SplitMix64,
    p: HostMatrix,
    q: Vec<f64>,
    a: HostMatrix,
    g: HostMatrix,
    x0: &[f64],
) -> HostQp {
    let b = a.mul_vec(x0);
    let h = g
        .mul_vec(x0)
        .into_iter()
        .map(|gx| {
            if rng.uniform() < 0.5 {
                gx
            } else {
                gx + rng.uniform()
            }
        })
        .collect();
    HostQp { p, q, a, b, g, h }
}

/// `rows` rows of `per_row` N(0, 1) entries at distinct random columns.
fn random_rows(
    rng: &mut SplitMix64,
    columns: &mut ColumnSampler,
    field: Field,
    rows: usize,
    cols: usize,
    per_row: usize,
) -> HostMatrix {
    let per_row = per_row.min(cols);
    let mut entries = Vec::with_capacity(rows * per_row);
    for i in 0..rows {
        for j in columns.sample(rng, per_row) {
            entries.push((i, j, normal(rng)));
        }
    }
    triplets(field, rows, cols, &entries)
}

/// A sparse matrix of in-range triplets.
fn triplets(field: Field, rows: usize, cols: usize, entries: &[(usize, usize, f64)]) -> HostMatrix {
    HostMatrix::from_triplets(field, rows, cols, entries).expect("generated indices are in range")
}

/// Distinct columns by Floyd's algorithm, with a stamped marker array (no hashing, no
/// per-row allocation but the result).
struct ColumnSampler {
    stamp: Vec<u32>,
    round: u32,
    picked: Vec<usize>,
}

impl ColumnSampler {
    fn new(cols: usize) -> Self {
        Self {
            stamp: vec![0; cols],
            round: 0,
            picked: Vec::new(),
        }
    }

    /// `k` distinct columns (`k <= cols`), in random order.
    fn sample(&mut self, rng: &mut SplitMix64, k: usize) -> Vec<usize> {
        let cols = self.stamp.len();
        let k = k.min(cols);
        self.round = self.round.wrapping_add(1);
        if self.round == 0 {
            self.stamp.fill(0);
            self.round = 1;
        }
        self.picked.clear();
        for j in cols - k..cols {
            let t = rng.below(j + 1);
            let pick = if self.stamp[t] == self.round { j } else { t };
            self.stamp[pick] = self.round;
            self.picked.push(pick);
        }
        self.picked.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampled_columns_are_distinct_and_cover_everything_when_k_is_cols() {
        let mut rng = SplitMix64(3);
        let mut sampler = ColumnSampler::new(50);
        for k in [1, 10, 49, 50] {
            let mut cols = sampler.sample(&mut rng, k);
            cols.sort_unstable();
            cols.dedup();
            assert_eq!(cols.len(), k);
            assert!(cols.iter().all(|&c| c < 50));
        }
    }

    #[test]
    fn normals_have_unit_variance() {
        let mut rng = SplitMix64(1);
        let v = normals(&mut rng, 20_000);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
