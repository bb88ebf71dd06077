//! # altdiff-faer: the faer backends of altdiff (dense and sparse CPU)
//!
//! [`FaerBackend`] implements [`altdiff_core::LinAlg`] on faer's `Mat<f64>`: products with
//! faer's `matmul`, `H = P + rho (A'A + G'G)` factored once by faer's Cholesky (LL'), and
//! solves with the factor. Parallelism is a setting of the backend value
//! ([`FaerBackend::with_par`]); the default is [`Par::Seq`], which is fastest on small
//! machines (rayon threads are available with this crate's `rayon` feature).
//!
//! [`FaerSparseBackend`] is the sparse peer: `P`, `A`, `G` in CSC, `H` factored by faer's
//! sparse Cholesky ([`SparseCholesky`]: AMD or the natural order, whichever fills less,
//! symbolic analysis once per pattern, dense rows as a low-rank correction; or the
//! quasi-definite KKT form where `C'C` would fill, [`SparseForm`]), gradients wrt `P`, `A`,
//! `G` on their patterns; it scales to problems with 100 000 variables.
//!
//! [`DenseCholesky`] is the factorization on faer views; the ndarray backend reuses it on
//! zero-copy views of its arrays. [`FaerBackend::with_precision`] with [`Precision::Single`]
//! forms and factors `H`, and forms the dual-space operators, in `f32`: about twice as
//! fast, for loose tolerances (the paper's stopping rule, Jacobians to about `1e-4`).
//!
//! ## Example
//!
//! ```
//! use altdiff_core::{AltDiff, Param, Qp, Settings, Wrt, testing::tiny_qp};
//! use altdiff_faer::FaerBackend;
//!
//! let backend = FaerBackend::default();
//! let qp = Qp::from_host(&backend, &tiny_qp())?;
//! let settings = Settings::default().with_wrt(Wrt::none().with(Param::B));
//! let sol = AltDiff::new(backend, &qp, settings)?.solve(qp.params())?;
//! let dx_db = sol.jacobian(Param::B).unwrap();            // a faer Mat<f64>, 3 x 1
//! assert!((dx_db[(2, 0)] - 4.0 / 7.0).abs() < 1e-4);
//! # Ok::<(), altdiff_core::Error>(())
//! ```

#![warn(missing_docs)]

mod cholesky;
mod dense;
mod sparse;
mod sparse_cholesky;
mod sparse_kkt;

pub use cholesky::{DenseCholesky, Precision, symmetric_product_tn};
pub use dense::FaerBackend;
pub use faer::Par;
pub use sparse::FaerSparseBackend;
pub use sparse_cholesky::{
    DenseRows, SparseCholesky, SparseForm, SparseMat, sparse_from_dense, sparse_is_psd_with_shift,
};
