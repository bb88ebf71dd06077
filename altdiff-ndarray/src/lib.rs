//! # altdiff-ndarray: the ndarray backend of altdiff (dense CPU)
//!
//! [`NdarrayBackend`] implements [`altdiff_core::LinAlg`] on `ndarray::Array2<f64>`: products
//! by faer's GEMM and the one factorization of `H = P + rho (A'A + G'G)` by faer's Cholesky,
//! both on zero-copy views of the ndarray data ([`altdiff_faer::DenseCholesky`]; products of
//! non-contiguous views by ndarray's `general_mat_mul`), no system BLAS or LAPACK. Blocks are kept in
//! column-major (Fortran) layout, which is what faer's triangular solves like.
//!
//! ## Example
//!
//! ```
//! use altdiff_core::{AltDiff, Param, Qp, Settings, Wrt, testing::tiny_qp};
//! use altdiff_ndarray::NdarrayBackend;
//!
//! let backend = NdarrayBackend::default();
//! let qp = Qp::from_host(&backend, &tiny_qp())?;
//! let settings = Settings::default().with_wrt(Wrt::none().with(Param::B));
//! let sol = AltDiff::new(backend, &qp, settings)?.solve(qp.params())?;
//! let dx_db = sol.jacobian(Param::B).unwrap();            // an ndarray Array2<f64>, 3 x 1
//! assert!((dx_db[[2, 0]] - 4.0 / 7.0).abs() < 1e-4);
//! # Ok::<(), altdiff_core::Error>(())
//! ```

#![warn(missing_docs)]

mod backend;
mod view;

pub use backend::NdarrayBackend;
pub use view::{as_faer, as_faer_mut};
