//! Zero-copy views of ndarray arrays as faer matrices (safe code: contiguous layouts).

use faer::{MatMut, MatRef};
use ndarray::{ArrayView2, ArrayViewMut2};

/// A faer view of a contiguous ndarray matrix (row- or column-major), without a copy.
/// Returns `None` for other layouts (slices with steps).
///
/// # Example
/// ```
/// let a = ndarray::array![[1.0, 2.0], [3.0, 4.0]];
/// let v = altdiff_ndarray::as_faer(a.view()).unwrap();
/// assert_eq!(v[(1, 0)], 3.0);
/// ```
pub fn as_faer(a: ArrayView2<'_, f64>) -> Option<MatRef<'_, f64>> {
    let (r, c) = a.dim();
    if a.is_standard_layout() {
        a.to_slice().map(|s| MatRef::from_row_major_slice(s, r, c))
    } else if a.t().is_standard_layout() {
        a.reborrow()
            .reversed_axes()
            .to_slice()
            .map(|s| MatRef::from_column_major_slice(s, r, c))
    } else {
        None
    }
}

/// A mutable faer view of a contiguous ndarray matrix, without a copy (see [`as_faer`]).
///
/// # Example
/// ```
/// use ndarray::ShapeBuilder;
/// let mut a = ndarray::Array2::<f64>::zeros((2, 3).f());
/// altdiff_ndarray::as_faer_mut(a.view_mut()).unwrap()[(1, 2)] = 5.0;
/// assert_eq!(a[[1, 2]], 5.0);
/// ```
pub fn as_faer_mut(a: ArrayViewMut2<'_, f64>) -> Option<MatMut<'_, f64>> {
    let (r, c) = a.dim();
    if a.is_standard_layout() {
        a.into_slice()
            .map(|s| MatMut::from_row_major_slice_mut(s, r, c))
    } else if a.t().is_standard_layout() {
        a.reversed_axes()
            .into_slice()
            .map(|s| MatMut::from_column_major_slice_mut(s, r, c))
    } else {
        None
    }
}
