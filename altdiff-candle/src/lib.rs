//! # altdiff-candle: the candle backend of altdiff (skeleton)
//!
//! This crate will implement [`altdiff_core::LinAlg`] on candle `Tensor`s (f32 and f64, on
//! `Device::Cpu` and `Device::Cuda`), and a QP layer for candle's autograd. Its design,
//! fixed now so that the rest of the workspace can rely on it:
//!
//! * candle has no factorization: `H = P + rho (A'A + G'G)` is factored once on the host in
//!   `f64` with faer (`altdiff_faer::DenseCholesky`), and what the iterations need (an
//!   explicit inverse or the triangular factors, whichever measures faster) is uploaded;
//!   every iteration then runs on the device as batched matmuls and elementwise ops, with
//!   host reads only every `check_every` iterations.
//! * The feature `cuda` forwards to `candle-core/cuda`. It needs nvcc at build time, so it is
//!   never a default feature and the workspace is never built with `--all-features`.
//!
//! Until the backend lands, this crate only re-exports the core API so that downstream code
//! can already name it; the `altdiff` program does not list a candle backend.
//!
//! ```
//! use altdiff_candle::core::Settings;
//! assert_eq!(Settings::default().rho, 1.0);
//! ```

#![warn(missing_docs)]

/// The backend-independent API of altdiff.
pub use altdiff_core as core;
