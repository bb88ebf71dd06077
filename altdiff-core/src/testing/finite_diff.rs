//! Central finite differences of the solution map.

use crate::{HostMatrix, HostQp, Param};

/// `dx/dparam` by central differences with step `step`, where `solve` maps a problem to its
/// solution `x`.
///
/// # Example
/// ```
/// use altdiff_core::{HostQp, Param, testing::{central_diff, tiny_qp}};
/// // unconstrained-in-b toy map: x = (b, 2b)
/// let j = central_diff(&tiny_qp(), Param::B, 1e-6, |qp: &HostQp| vec![qp.b[0], 2.0 * qp.b[0]]);
/// assert!((j.get(1, 0) - 2.0).abs() < 1e-8);
/// ```
pub fn central_diff(
    qp: &HostQp,
    param: Param,
    step: f64,
    mut solve: impl FnMut(&HostQp) -> Vec<f64>,
) -> HostMatrix {
    let d = match param {
        Param::Q => qp.q.len(),
        Param::B => qp.b.len(),
        Param::H => qp.h.len(),
    };
    let mut columns = Vec::with_capacity(d);
    for j in 0..d {
        let mut shifted = |delta: f64| {
            let mut qp = qp.clone();
            let v = match param {
                Param::Q => &mut qp.q,
                Param::B => &mut qp.b,
                Param::H => &mut qp.h,
            };
            v[j] += delta;
            solve(&qp)
        };
        let (plus, minus) = (shifted(step), shifted(-step));
        columns.push(
            plus.iter()
                .zip(&minus)
                .map(|(a, b)| (a - b) / (2.0 * step))
                .collect::<Vec<_>>(),
        );
    }
    let n = columns.first().map_or(qp.q.len(), Vec::len);
    HostMatrix::from_fn(n, d, |i, j| columns[j][i])
}
