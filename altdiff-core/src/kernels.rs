//! Elementwise kernels on slices and scalars, shared by the CPU backends so that each
//! formula (BLAS `beta == 0` rule, strict mask rule, NaN-propagating norm) is written once.
//!
//! # Example
//! ```
//! use altdiff_core::kernels;
//! let mut y = [f64::NAN, f64::NAN];
//! kernels::axpby(2.0, &[1.0, -1.0], 0.0, &mut y);   // beta = 0: y is not read
//! assert_eq!(y, [2.0, -2.0]);
//! assert_eq!(kernels::norm_inf(&y), 2.0);
//! ```

use crate::Real;

/// `alpha x + beta y` for one entry; `y` is not read when `beta == 0`.
#[inline]
pub fn axpby_one<T: Real>(alpha: T, x: T, beta: T, y: T) -> T {
    if beta == T::zero() {
        alpha * x
    } else {
        alpha * x + beta * y
    }
}

/// `y = alpha x + beta y` on slices of one length.
///
/// # Panics
/// When the lengths differ.
pub fn axpby<T: Real>(alpha: T, x: &[T], beta: T, y: &mut [T]) {
    assert_eq!(x.len(), y.len(), "axpby: lengths differ");
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv = axpby_one(alpha, xv, beta, *yv);
    }
}

/// `dst = delta dst + a_1 x_1 + ... + a_N x_N` on slices of one length, in one pass over
/// `dst` (in chunks that stay in cache); summed in that order, so the values equal those of
/// [`axpby`] chained term by term. `dst` is not read when `delta == 0`.
///
/// # Panics
/// When the lengths differ.
///
/// # Example
/// ```
/// use altdiff_core::kernels;
/// let mut y = [1.0, 2.0];
/// kernels::lincomb([(2.0, &[1.0, 1.0][..]), (-1.0, &[0.5, 0.0][..])], 1.0, &mut y);
/// assert_eq!(y, [2.5, 4.0]);
/// ```
pub fn lincomb<T: Real, const N: usize>(terms: [(T, &[T]); N], delta: T, dst: &mut [T]) {
    const CHUNK: usize = 256;
    for (_, x) in &terms {
        assert_eq!(x.len(), dst.len(), "lincomb: lengths differ");
    }
    for (c, d) in dst.chunks_mut(CHUNK).enumerate() {
        let start = c * CHUNK;
        let mut rest = terms.iter();
        if delta == T::zero() {
            match rest.next() {
                Some(&(a, x)) => d
                    .iter_mut()
                    .zip(&x[start..])
                    .for_each(|(dv, &xv)| *dv = a * xv),
                None => d.fill(T::zero()),
            }
        } else if delta != T::one() {
            d.iter_mut().for_each(|v| *v = delta * *v);
        }
        for &(a, x) in rest {
            d.iter_mut()
                .zip(&x[start..])
                .for_each(|(dv, &xv)| *dv = a * xv + *dv);
        }
    }
}

/// `max(x, 0)` for one entry.
#[inline]
pub fn proj_nonneg_one<T: Real>(x: T) -> T {
    if x < T::zero() { T::zero() } else { x }
}

/// `x = max(x, 0)` on a slice.
pub fn proj_nonneg<T: Real>(x: &mut [T]) {
    x.iter_mut().for_each(|v| *v = proj_nonneg_one(*v));
}

/// The mask rule of the slack's derivative: an entry survives only where `at > 0`
/// (strictly; NaN masks too).
#[inline]
pub fn keeps<T: Real>(at: T) -> bool {
    at > T::zero()
}

/// Zeroes `m[i]` wherever `at[i] <= 0`: one column of `dproj_nonneg`.
///
/// # Panics
/// When the lengths differ.
pub fn dproj_nonneg<T: Real>(at: &[T], m: &mut [T]) {
    assert_eq!(at.len(), m.len(), "dproj_nonneg: lengths differ");
    for (v, &a) in m.iter_mut().zip(at) {
        if !keeps(a) {
            *v = T::zero();
        }
    }
}

/// The slack and dual updates of one dual-space iteration for one entry: returns
/// `(s, y')` with `s = keep(bh - cx - y/rho)` and `y' = y + rho (cx + s - bh)`, where `keep`
/// zeroes `s` unless `mask > 0` (strict: the mask rule) and, when `project`, clips it at 0
/// first. The operations and their order are those of [`lincomb`], [`proj_nonneg`] and
/// [`dproj_nonneg`] chained, so the values are the same.
///
/// # Example
/// ```
/// use altdiff_core::kernels;
/// // bh - cx - y/rho = 1 - 0.5 - 0.5 = 0 is kept at 0; y' = 1 + 2 (0.5 + 0 - 1) = 0
/// assert_eq!(kernels::slack_dual_one(1.0, 0.5, 1.0, 1.0, true, 2.0), (0.0, 0.0));
/// // masked: s = 0 whatever the value
/// assert_eq!(kernels::slack_dual_one(3.0, 0.0, 0.0, 0.0, false, 1.0).0, 0.0);
/// ```
#[inline]
pub fn slack_dual_one<T: Real>(bh: T, cx: T, y: T, mask: T, project: bool, rho: T) -> (T, T) {
    let one = T::one();
    let mut s = -one * cx + bh;
    s = (-one / rho) * y + s;
    if project {
        s = proj_nonneg_one(s);
    }
    if !keeps(mask) {
        s = T::zero();
    }
    let y = rho * cx + y;
    let y = rho * s + y;
    (s, -rho * bh + y)
}

/// [`slack_dual_one`] over one column: `s` and `y` updated in place from `cx`, `bh` and
/// `mask`.
///
/// # Panics
/// When the lengths differ.
pub fn slack_dual_update<T: Real>(
    s: &mut [T],
    y: &mut [T],
    cx: &[T],
    bh: &[T],
    mask: &[T],
    project: bool,
    rho: T,
) {
    let n = s.len();
    assert!(
        y.len() == n && cx.len() == n && bh.len() == n && mask.len() == n,
        "slack_dual_update: lengths differ"
    );
    for i in 0..n {
        (s[i], y[i]) = slack_dual_one(bh[i], cx[i], y[i], mask[i], project, rho);
    }
}

/// `max(acc, |v|)`, NaN-propagating.
#[inline]
pub fn max_abs<T: Real>(acc: T, v: T) -> T {
    if acc.is_nan() || v.is_nan() {
        T::nan()
    } else {
        acc.max(v.abs())
    }
}

/// The largest absolute entry; 0 for an empty slice, NaN when any entry is NaN.
pub fn norm_inf<T: Real>(x: &[T]) -> T {
    x.iter().fold(T::zero(), |acc, &v| max_abs(acc, v))
}

/// `sum x_i y_i`.
///
/// # Panics
/// When the lengths differ.
pub fn dot<T: Real>(x: &[T], y: &[T]) -> T {
    assert_eq!(x.len(), y.len(), "dot: lengths differ");
    x.iter().zip(y).fold(T::zero(), |acc, (&a, &b)| acc + a * b)
}

/// The largest `|rows_i v_ij cols_j|` of every row and every column of a matrix given by its
/// columns: `(row maxima, column maxima)`.
///
/// # Example
/// ```
/// use altdiff_core::kernels;
/// let columns = [[1.0, -4.0], [0.0, 2.0]];
/// let (r, c) = kernels::abs_max_scaled(columns.iter().map(|c| &c[..]), &[1.0, 1.0], &[1.0, 2.0]);
/// assert_eq!((r, c), (vec![1.0, 4.0], vec![4.0, 4.0]));
/// ```
pub fn abs_max_scaled<'a, T: Real>(
    columns: impl IntoIterator<Item = &'a [T]>,
    rows: &[T],
    cols: &[T],
) -> (Vec<T>, Vec<T>) {
    let mut row_max = vec![T::zero(); rows.len()];
    let mut col_max = vec![T::zero(); cols.len()];
    for ((column, &cj), col) in columns.into_iter().zip(cols).zip(&mut col_max) {
        let len = column.len().min(rows.len());
        *col = abs_max_column(&column[..len], &rows[..len], cj, &mut row_max[..len]);
    }
    (row_max, col_max)
}

/// One column of [`abs_max_scaled`]: raises `row_max` to `|rows_i v_i cj|` and returns the
/// column's largest. The column maximum runs in [`MAX_LANES`] independent lanes, so that the
/// loop vectorizes; `m = if a > m { a } else { m }` is the same maximum as `f64::max` from 0
/// (a NaN entry is skipped by both), and as a select (every `m` written) it compiles to
/// vector maxima, where a conditional store does not.
fn abs_max_column<T: Real>(column: &[T], rows: &[T], cj: T, row_max: &mut [T]) -> T {
    let mut lanes = [T::zero(); MAX_LANES];
    let raise = |m: &mut T, a: T| {
        *m = if a > *m { a } else { *m };
    };
    let chunks = column
        .chunks_exact(MAX_LANES)
        .zip(rows.chunks_exact(MAX_LANES))
        .zip(row_max.chunks_exact_mut(MAX_LANES));
    for ((v, r), m) in chunks {
        for k in 0..MAX_LANES {
            let a = (v[k] * r[k] * cj).abs();
            raise(&mut m[k], a);
            raise(&mut lanes[k], a);
        }
    }
    let tail = column.len() - column.len() % MAX_LANES;
    for i in tail..column.len() {
        let a = (column[i] * rows[i] * cj).abs();
        raise(&mut row_max[i], a);
        raise(&mut lanes[0], a);
    }
    lanes.into_iter().fold(T::zero(), |acc, a| acc.max(a))
}

/// The independent lanes of the column maximum in [`abs_max_scaled`].
const MAX_LANES: usize = 8;

/// The largest `|v_ij|` and the sums of `|v_ij|` (in `f64`) of every row and every column
/// of a matrix, measured in one pass ([`abs_profile`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AbsProfile<T> {
    /// The largest `|v_ij|` of every row.
    pub row_max: Vec<T>,
    /// The largest `|v_ij|` of every column.
    pub col_max: Vec<T>,
    /// The sum of `|v_ij|` of every row.
    pub row_sums: Vec<f64>,
    /// The sum of `|v_ij|` of every column.
    pub col_sums: Vec<f64>,
}

/// [`abs_max_scaled`] with unit scales and [`abs_sums`] in one pass over the columns of a
/// matrix with `nrows` rows; the row maxima and sums only `with_rows` (else left empty: the
/// column reductions alone stream, the rows' cost a read and a write per entry).
///
/// # Example
/// ```
/// use altdiff_core::kernels;
/// let columns = [[1.0, -4.0], [0.0, 2.0]];
/// let profile = kernels::abs_profile(columns.iter().map(|c| &c[..]), 2, true);
/// assert_eq!((profile.row_max, profile.col_max), (vec![1.0, 4.0], vec![4.0, 2.0]));
/// assert_eq!((profile.row_sums, profile.col_sums), (vec![1.0, 6.0], vec![5.0, 2.0]));
/// let columns_only = kernels::abs_profile(columns.iter().map(|c| &c[..]), 2, false);
/// assert!(columns_only.row_max.is_empty() && columns_only.col_sums == vec![5.0, 2.0]);
/// ```
pub fn abs_profile<'a, T: Real>(
    columns: impl IntoIterator<Item = &'a [T]>,
    nrows: usize,
    with_rows: bool,
) -> AbsProfile<T> {
    let rows = if with_rows { nrows } else { 0 };
    let mut out = AbsProfile {
        row_max: vec![T::zero(); rows],
        row_sums: vec![0.0; rows],
        ..AbsProfile::default()
    };
    for column in columns {
        let column = &column[..column.len().min(nrows)];
        let (col_max, col_sum) = if with_rows {
            abs_profile_column(column, &mut out.row_max, &mut out.row_sums)
        } else {
            abs_column(column)
        };
        out.col_max.push(col_max);
        out.col_sums.push(col_sum);
    }
    out
}

/// The largest `|v_i|` of a column and its sum of `|v_i|`, in independent lanes.
fn abs_column<T: Real>(column: &[T]) -> (T, f64) {
    let (mut max_lanes, mut sum_lanes) = ([T::zero(); MAX_LANES], [0.0; MAX_LANES]);
    for v in column.chunks_exact(MAX_LANES) {
        for k in 0..MAX_LANES {
            let a = v[k].abs();
            max_lanes[k] = if a > max_lanes[k] { a } else { max_lanes[k] };
            sum_lanes[k] += a.to_f64_lossy();
        }
    }
    for &v in &column[column.len() - column.len() % MAX_LANES..] {
        let a = v.abs();
        max_lanes[0] = if a > max_lanes[0] { a } else { max_lanes[0] };
        sum_lanes[0] += a.to_f64_lossy();
    }
    let max = max_lanes.into_iter().fold(T::zero(), |acc, a| acc.max(a));
    (max, sum_lanes.iter().sum())
}

/// [`abs_column`] that also raises `row_max` and adds to `row_sums` (as long as `column`).
fn abs_profile_column<T: Real>(column: &[T], row_max: &mut [T], row_sums: &mut [f64]) -> (T, f64) {
    let (mut max_lanes, mut sum_lanes) = ([T::zero(); MAX_LANES], [0.0; MAX_LANES]);
    let chunks = column
        .chunks_exact(MAX_LANES)
        .zip(row_max.chunks_exact_mut(MAX_LANES))
        .zip(row_sums.chunks_exact_mut(MAX_LANES));
    for ((v, row_max), row_sums) in chunks {
        for k in 0..MAX_LANES {
            let a = v[k].abs();
            row_max[k] = if a > row_max[k] { a } else { row_max[k] };
            max_lanes[k] = if a > max_lanes[k] { a } else { max_lanes[k] };
            let a = a.to_f64_lossy();
            row_sums[k] += a;
            sum_lanes[k] += a;
        }
    }
    let tail = column.len() - column.len() % MAX_LANES;
    for (i, &v) in column.iter().enumerate().skip(tail) {
        let a = v.abs();
        row_max[i] = if a > row_max[i] { a } else { row_max[i] };
        max_lanes[0] = if a > max_lanes[0] { a } else { max_lanes[0] };
        row_sums[i] += a.to_f64_lossy();
        sum_lanes[0] += a.to_f64_lossy();
    }
    let max = max_lanes.into_iter().fold(T::zero(), |acc, a| acc.max(a));
    (max, sum_lanes.iter().sum())
}

/// The sums of `|v_ij|` over every row and every column of a matrix with `nrows` rows given
/// by its columns, in `f64`: `(row sums, column sums)`.
///
/// # Example
/// ```
/// use altdiff_core::kernels;
/// let columns = [[1.0, -4.0], [0.0, 2.0]];
/// let (r, c) = kernels::abs_sums(columns.iter().map(|c| &c[..]), 2);
/// assert_eq!((r, c), (vec![1.0, 6.0], vec![5.0, 2.0]));
/// ```
pub fn abs_sums<'a, T: Real>(
    columns: impl IntoIterator<Item = &'a [T]>,
    nrows: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut row_sums = vec![0.0; nrows];
    let mut col_sums = Vec::new();
    for column in columns {
        // the column sum in independent lanes (a single running sum waits on every add)
        let mut lanes = [0.0; MAX_LANES];
        let chunks = column
            .chunks_exact(MAX_LANES)
            .zip(row_sums.chunks_exact_mut(MAX_LANES));
        for (v, rows) in chunks {
            for k in 0..MAX_LANES {
                let a = v[k].to_f64_lossy().abs();
                rows[k] += a;
                lanes[k] += a;
            }
        }
        let tail = column.len().min(nrows) - column.len().min(nrows) % MAX_LANES;
        for (v, row) in column[tail..].iter().zip(&mut row_sums[tail..]) {
            let a = v.to_f64_lossy().abs();
            *row += a;
            lanes[0] += a;
        }
        col_sums.push(lanes.iter().sum());
    }
    (row_sums, col_sums)
}

/// The lower block of [`LinAlg::op_stack_rows`](crate::LinAlg::op_stack_rows) (shape
/// `bottom`) has the upper block's `n` columns.
///
/// # Errors
/// [`crate::Error::Dimension`] naming `G` (the lower block of `[A; G]`) otherwise.
///
/// # Example
/// ```
/// use altdiff_core::kernels;
/// assert!(kernels::check_stackable(3, (2, 3)).is_ok());
/// assert!(kernels::check_stackable(3, (2, 4)).is_err());
/// ```
pub fn check_stackable(n: usize, bottom: (usize, usize)) -> crate::Result<()> {
    if bottom.1 == n {
        Ok(())
    } else {
        Err(crate::Error::Dimension {
            field: crate::Field::G,
            expected: (bottom.0, n),
            got: bottom,
        })
    }
}

/// The rows `rows` (in that order) of a column-major block with `nrows` rows, gathered
/// into a new column-major block of `rows.len()` rows and as many columns.
///
/// # Example
/// ```
/// use altdiff_core::kernels;
/// let block = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 3 x 2
/// assert_eq!(kernels::gather_rows(&block, 3, &[2, 0]), vec![3.0, 1.0, 6.0, 4.0]);
/// ```
pub fn gather_rows<T: Copy>(block: &[T], nrows: usize, rows: &[usize]) -> Vec<T> {
    let ncols = block.len() / nrows.max(1);
    gather_block(block, nrows, rows, 0..ncols)
}

/// The submatrix `block[rows, cols]` of a column-major block with `nrows` rows, column-major
/// (`rows.len() x cols.len()`): runs of consecutive `rows` are copied as slices.
///
/// # Panics
/// When an index is out of range.
///
/// # Example
/// ```
/// use altdiff_core::kernels;
/// let block = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 3 x 2
/// assert_eq!(kernels::gather_block(&block, 3, &[0, 1], [1]), vec![4.0, 5.0]);
/// ```
pub fn gather_block<T: Copy>(
    block: &[T],
    nrows: usize,
    rows: &[usize],
    cols: impl IntoIterator<Item = usize>,
) -> Vec<T> {
    // (first row, length) of each run of consecutive rows
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &i in rows {
        match runs.last_mut() {
            Some((start, len)) if *start + *len == i => *len += 1,
            _ => runs.push((i, 1)),
        }
    }
    let cols = cols.into_iter();
    let mut out = Vec::with_capacity(rows.len() * cols.size_hint().0);
    for j in cols {
        let column = &block[j * nrows..(j + 1) * nrows];
        for &(start, len) in &runs {
            out.extend_from_slice(&column[start..start + len]);
        }
    }
    out
}

/// The side of the square tiles of [`transpose`].
const TILE: usize = 32;

/// The transpose (`ncols x nrows`, column-major) of a column-major block with `nrows` rows,
/// tile by tile: a tile's reads and writes stay in cache, where a plain strided copy
/// misses on every write.
///
/// # Example
/// ```
/// use altdiff_core::kernels;
/// let block = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 3 x 2
/// assert_eq!(kernels::transpose(&block, 3), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// ```
pub fn transpose<T: Copy + Default>(block: &[T], nrows: usize) -> Vec<T> {
    let ncols = block.len() / nrows.max(1);
    let mut out = vec![T::default(); block.len()];
    for j0 in (0..ncols).step_by(TILE) {
        let j1 = (j0 + TILE).min(ncols);
        for i0 in (0..nrows).step_by(TILE) {
            let i1 = (i0 + TILE).min(nrows);
            for j in j0..j1 {
                let column = &block[j * nrows + i0..j * nrows + i1];
                for (i, &v) in (i0..i1).zip(column) {
                    out[i * ncols + j] = v;
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the values compared are exact
mod tests {
    use super::*;

    #[test]
    fn gather_and_transpose_match_indexing() {
        // shapes around the tile side, empty ones included
        for (r, c) in [(0, 3), (3, 0), (1, 1), (5, 3), (33, 65), (64, 31)] {
            let block: Vec<f64> = (0..r * c).map(|v| v as f64).collect();
            let t = transpose(&block, r);
            for i in 0..r {
                for j in 0..c {
                    assert_eq!(
                        t[i * c + j],
                        block[j * r + i],
                        "transpose {r}x{c} ({i}, {j})"
                    );
                }
            }
            // reversed rows (no runs), and runs of consecutive rows between gaps
            let reversed: Vec<usize> = (0..r).rev().step_by(2).collect();
            let runs: Vec<usize> = (0..r).filter(|i| i % 5 != 3).collect();
            for rows in [reversed, runs] {
                let g = gather_rows(&block, r, &rows);
                assert_eq!(g.len(), rows.len() * c);
                for j in 0..c {
                    for (k, &i) in rows.iter().enumerate() {
                        assert_eq!(g[j * rows.len() + k], block[j * r + i], "gather {r}x{c}");
                    }
                }
                let cols: Vec<usize> = (0..c).rev().step_by(3).collect();
                let sub = gather_block(&block, r, &rows, cols.iter().copied());
                assert_eq!(sub.len(), rows.len() * cols.len());
                for (l, &j) in cols.iter().enumerate() {
                    for (k, &i) in rows.iter().enumerate() {
                        assert_eq!(sub[l * rows.len() + k], block[j * r + i], "block {r}x{c}");
                    }
                }
            }
        }
    }

    #[test]
    fn norms_match_the_plain_loops() {
        // lengths around the lanes, a NaN entry skipped by the maxima
        for len in [0, 1, 7, 8, 9, 17] {
            let columns: Vec<Vec<f64>> = (0..3)
                .map(|j| {
                    (0..len)
                        .map(|i| (i as f64 - 4.5) * (j as f64 + 1.0))
                        .collect()
                })
                .collect();
            let (rows, cols) = abs_sums(columns.iter().map(|c| &c[..]), len);
            for i in 0..len {
                let expected: f64 = columns.iter().map(|c| c[i].abs()).sum();
                assert_eq!(rows[i], expected, "row sum {i} of {len}");
            }
            for (j, c) in columns.iter().enumerate() {
                let expected: f64 = c.iter().map(|v| v.abs()).sum();
                assert!(
                    (cols[j] - expected).abs() <= 1e-12 * expected,
                    "column sum {j}"
                );
            }
            let mut with_nan = columns.clone();
            if len > 0 {
                with_nan[1][len - 1] = f64::NAN;
            }
            let ones = vec![1.0; len];
            let (row_max, col_max) =
                abs_max_scaled(with_nan.iter().map(|c| &c[..]), &ones, &[1.0, 1.0, 2.0]);
            for i in 0..len {
                let expected = (0..3)
                    .map(|j| (with_nan[j][i] * if j == 2 { 2.0 } else { 1.0 }).abs())
                    .fold(0.0, f64::max);
                assert_eq!(row_max[i], expected, "row max {i} of {len}");
            }
            for j in 0..3 {
                let scale = if j == 2 { 2.0 } else { 1.0 };
                let expected = with_nan[j]
                    .iter()
                    .map(|v| (v * scale).abs())
                    .fold(0.0, f64::max);
                assert_eq!(col_max[j], expected, "column max {j} of {len}");
            }
        }
    }

    #[test]
    fn mask_is_strict_and_masks_nan() {
        let mut m = [1.0, 2.0, 3.0, 4.0];
        dproj_nonneg(&[1.0, 0.0, -1.0, f64::NAN], &mut m);
        assert_eq!(m, [1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn lincomb_equals_chained_axpby_bit_for_bit() {
        // longer than one chunk, with a ragged tail
        let len = 600;
        let seq = |k: usize| -> Vec<f64> {
            (0..len)
                .map(|i| ((i * 31 + k * 17) % 23) as f64 / 7.0 - 1.3)
                .collect()
        };
        let (x, y, z, d0) = (seq(1), seq(2), seq(3), seq(4));
        for delta in [0.0, 1.0, -0.7] {
            let mut chained = d0.clone();
            if delta != 1.0 {
                let copy = chained.clone();
                axpby(delta, &copy, 0.0, &mut chained);
                if delta == 0.0 {
                    axpby(0.3, &x, 0.0, &mut chained);
                } else {
                    axpby(0.3, &x, 1.0, &mut chained);
                }
            } else {
                axpby(0.3, &x, 1.0, &mut chained);
            }
            axpby(-1.1, &y, 1.0, &mut chained);
            axpby(1.0 / 3.0, &z, 1.0, &mut chained);
            let mut fused = d0.clone();
            lincomb(
                [(0.3, &x[..]), (-1.1, &y[..]), (1.0 / 3.0, &z[..])],
                delta,
                &mut fused,
            );
            let bits = |v: &[f64]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fused), bits(&chained), "delta {delta}");
        }
        let mut none = d0.clone();
        lincomb::<f64, 0>([], 0.0, &mut none);
        assert!(none.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn abs_max_lanes_equal_the_plain_maximum() {
        // rows not a multiple of the lanes, a NaN entry (skipped), a column of zeros
        let (nr, nc) = (19, 4);
        let mut data: Vec<f64> = (0..nr * nc)
            .map(|i| ((i * 37 + 5) % 29) as f64 / 3.0 - 4.5)
            .collect();
        data[2 * nr + 17] = f64::NAN;
        data[3 * nr..].iter_mut().for_each(|v| *v = 0.0);
        let rows: Vec<f64> = (0..nr).map(|i| 0.5 + i as f64 / 10.0).collect();
        let cols = [1.0, 2.5, 0.25, 3.0];
        let (mut want_rows, mut want_cols) = (vec![0.0_f64; nr], vec![0.0_f64; nc]);
        for j in 0..nc {
            for i in 0..nr {
                let a = (data[j * nr + i] * rows[i] * cols[j]).abs();
                want_rows[i] = want_rows[i].max(a);
                want_cols[j] = want_cols[j].max(a);
            }
        }
        let (got_rows, got_cols) = abs_max_scaled(data.chunks_exact(nr), &rows, &cols);
        assert_eq!(got_rows, want_rows);
        assert_eq!(got_cols, want_cols);
        assert_eq!(got_cols[3], 0.0);
    }

    #[test]
    fn norm_propagates_nan_and_empty_is_zero() {
        assert!(norm_inf(&[1.0, f64::NAN, 3.0]).is_nan());
        assert!(norm_inf(&[f64::NAN, 1.0]).is_nan());
        assert_eq!(norm_inf::<f64>(&[]).to_bits(), 0.0_f64.to_bits());
    }
}
