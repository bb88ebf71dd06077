//! [`QpProblem`]: the matrices of a QP on a backend, and [`Qp`], its validated owner.

use std::sync::Arc;

use num_traits::Float;

use crate::{Error, Field, HostMatrix, HostQp, LinAlg, QpDims, Real, Result};

/// The fixed part of a QP on a backend: `P`, `A`, `G` and the sizes.
///
/// The solver factors `H = P + rho (A'A + G'G)` once from these, then solves for any number
/// of parameter sets `(q, b, h)` ([`QpParams`]). [`Qp`] is the ready-made implementation.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{QpProblem, testing::{RefBackend, tiny_qp}};
/// let qp = altdiff_core::Qp::from_host(&RefBackend, &tiny_qp())?;
/// assert_eq!(qp.dims().m, 2);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
pub trait QpProblem<B: LinAlg> {
    /// The sizes `n`, `p`, `m`.
    fn dims(&self) -> QpDims;
    /// `P` (n x n).
    fn p(&self) -> &B::Op;
    /// `A` (p x n); zero rows when there are no equalities.
    fn a(&self) -> &B::Op;
    /// `G` (m x n); zero rows when there are no inequalities.
    fn g(&self) -> &B::Op;
    /// `[P, A, G]` behind shared pointers, when the problem keeps them so: a solver then
    /// holds them without a copy ([`Qp`] does). `None` by default: the solver copies them.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{QpProblem, testing::{RefBackend, tiny_qp}};
    /// let qp = altdiff_core::Qp::from_host(&RefBackend, &tiny_qp())?;
    /// let [p, _, _] = qp.shared().expect("a Qp shares its matrices");
    /// assert!(std::ptr::eq(&*p, qp.p()));
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    fn shared(&self) -> Option<[Arc<B::Op>; 3]> {
        None
    }
}

/// The parameters of a QP on a backend: `q` (n x k), `b` (p x k), `h` (m x k), with `k = 1`
/// for one problem.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{QpParams, QpDims, testing::RefBackend};
/// let params = QpParams::from_host(&RefBackend, QpDims { n: 2, p: 0, m: 1 }, &[1.0, 2.0], &[], &[0.5])?;
/// assert_eq!(params.dims(&RefBackend), QpDims { n: 2, p: 0, m: 1 });
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct QpParams<B: LinAlg> {
    /// The linear cost.
    pub q: B::Mat,
    /// The equality right-hand side.
    pub b: B::Mat,
    /// The inequality right-hand side.
    pub h: B::Mat,
}

impl<B: LinAlg> QpParams<B> {
    /// Parameters from host vectors, checked against `dims` and for finiteness.
    ///
    /// # Errors
    /// [`Error::Dimension`] or [`Error::NonFinite`], naming the field.
    pub fn from_host(backend: &B, dims: QpDims, q: &[f64], b: &[f64], h: &[f64]) -> Result<Self> {
        let upload = |field, v: &[f64], len: usize| -> Result<B::Mat> {
            if v.len() != len {
                return Err(Error::Dimension {
                    field,
                    expected: (len, 1),
                    got: (v.len(), 1),
                });
            }
            if let Some(row) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::NonFinite {
                    field,
                    row,
                    col: 0,
                    value: v[row],
                });
            }
            backend.mat_from_col_major(len, 1, &convert::<B::Real>(v))
        };
        Ok(Self {
            q: upload(Field::Q, q, dims.n)?,
            b: upload(Field::B, b, dims.p)?,
            h: upload(Field::H, h, dims.m)?,
        })
    }

    /// The sizes implied by the blocks' rows.
    pub fn dims(&self, backend: &B) -> QpDims {
        QpDims {
            n: backend.shape(&self.q).0,
            p: backend.shape(&self.b).0,
            m: backend.shape(&self.h).0,
        }
    }

    /// Checks the shapes against `dims` (one column each) and the entries for finiteness.
    ///
    /// # Errors
    /// [`Error::Dimension`] or [`Error::NonFinite`], naming the field.
    pub fn validate(&self, backend: &B, dims: QpDims) -> Result<()> {
        for (field, m, rows) in [
            (Field::Q, &self.q, dims.n),
            (Field::B, &self.b, dims.p),
            (Field::H, &self.h, dims.m),
        ] {
            check_block(backend, field, m, (rows, 1))?;
        }
        Ok(())
    }
}

/// Checks one block's shape and entries.
pub(crate) fn check_block<B: LinAlg>(
    backend: &B,
    field: Field,
    m: &B::Mat,
    shape: (usize, usize),
) -> Result<()> {
    let got = backend.shape(m);
    if got != shape {
        return Err(Error::Dimension {
            field,
            expected: shape,
            got,
        });
    }
    let values = backend.to_col_major(m)?;
    if let Some(k) = values.iter().position(|v| !v.is_finite()) {
        let rows = shape.0.max(1);
        return Err(Error::NonFinite {
            field,
            row: k % rows,
            col: k / rows,
            value: values[k].to_f64_lossy(),
        });
    }
    Ok(())
}

/// A validated QP on a backend: owns `P`, `A`, `G` (shared: a clone of the `Qp` or a
/// solver made from it reads the same matrices, [`QpProblem::shared`]) and one parameter set
/// `(q, b, h)`.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{Qp, QpProblem, testing::{RefBackend, tiny_qp}};
/// let qp = Qp::from_host(&RefBackend, &tiny_qp())?;
/// assert_eq!(qp.dims().n, 3);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Qp<B: LinAlg> {
    dims: QpDims,
    p: Arc<B::Op>,
    a: Arc<B::Op>,
    g: Arc<B::Op>,
    params: QpParams<B>,
}

impl<B: LinAlg> Qp<B> {
    /// Uploads and validates a host problem.
    ///
    /// # Errors
    /// Those of [`HostQp::validate`], or a backend error.
    pub fn from_host(backend: &B, host: &HostQp) -> Result<Self> {
        let dims = host.validate()?;
        let op = |m: &HostMatrix| backend.op_from_host(m).map(Arc::new);
        let params = QpParams::from_host(backend, dims, &host.q, &host.b, &host.h)?;
        Ok(Self {
            dims,
            p: op(&host.p)?,
            a: op(&host.a)?,
            g: op(&host.g)?,
            params,
        })
    }

    /// Validates a problem given in the backend's own types (shapes, finiteness, symmetry of
    /// `P`; the data are read back to the host once for that).
    ///
    /// # Errors
    /// [`Error::Dimension`], [`Error::NonFinite`] or [`Error::NotSymmetric`], naming the
    /// field.
    pub fn new(backend: &B, p: B::Op, a: B::Op, g: B::Op, params: QpParams<B>) -> Result<Self> {
        let host = |field, op: &B::Op| backend.op_to_host(op, field);
        let vector = |m: &B::Mat| -> Result<Vec<f64>> {
            Ok(backend
                .to_col_major(m)?
                .into_iter()
                .map(Real::to_f64_lossy)
                .collect())
        };
        let n = backend.op_shape(&p).0;
        for (field, m) in [
            (Field::Q, &params.q),
            (Field::B, &params.b),
            (Field::H, &params.h),
        ] {
            let (_, cols) = backend.shape(m);
            if cols != 1 {
                return Err(Error::Dimension {
                    field,
                    expected: (backend.shape(m).0, 1),
                    got: backend.shape(m),
                });
            }
        }
        let host_qp = HostQp {
            p: host(Field::P, &p)?,
            q: vector(&params.q)?,
            a: host(Field::A, &a)?.or_empty_rows(n),
            b: vector(&params.b)?,
            g: host(Field::G, &g)?.or_empty_rows(n),
            h: vector(&params.h)?,
        };
        let dims = host_qp.validate()?;
        // An absent block (zero rows) of any width stands for `0 x n`.
        let fit = |op: B::Op| -> Result<B::Op> {
            match backend.op_shape(&op) {
                (0, cols) if cols != n => backend.op_from_col_major(0, n, &[]),
                _ => Ok(op),
            }
        };
        Ok(Self {
            dims,
            p: Arc::new(p),
            a: Arc::new(fit(a)?),
            g: Arc::new(fit(g)?),
            params,
        })
    }

    /// The parameters `(q, b, h)`.
    pub fn params(&self) -> &QpParams<B> {
        &self.params
    }
}

impl<B: LinAlg> QpProblem<B> for Qp<B> {
    fn dims(&self) -> QpDims {
        self.dims
    }
    fn p(&self) -> &B::Op {
        &self.p
    }
    fn a(&self) -> &B::Op {
        &self.a
    }
    fn g(&self) -> &B::Op {
        &self.g
    }
    fn shared(&self) -> Option<[Arc<B::Op>; 3]> {
        Some([self.p.clone(), self.a.clone(), self.g.clone()])
    }
}

/// Converts host `f64` data to a backend scalar.
pub(crate) fn convert<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::of(x)).collect()
}
