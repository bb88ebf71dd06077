//! # altdiff-candle: the candle backend of altdiff (tensors on CPU or CUDA)
//!
//! [`CandleBackend<T>`] implements [`altdiff_core::LinAlg`] on candle [`Tensor`]s, in `f64`
//! or `f32` ([`CandleReal`]), on any candle [`Device`]: `Device::Cpu` always, `Device::Cuda`
//! with the feature `cuda`. A block ([`LinAlg::Mat`](altdiff_core::LinAlg::Mat)) is a plain
//! 2-D tensor of shape `(rows, cols)`, so solutions and Jacobians go straight into candle code.
//!
//! ## Design
//!
//! * **One factorization, on the host.** candle has no Cholesky, triangular solve or
//!   inverse. `H = P + rho (A'A + G'G)` is constant through the iterations, so
//!   [`LinAlg::factor`](altdiff_core::LinAlg::factor) forms and factors it once on the host, in
//!   `f64`, with faer ([`altdiff_faer::DenseCholesky`]), from the `f64` host copies every
//!   operator keeps ([`CandleOp`]).
//! * **Upload what the iterations need: the explicit inverse.** The factor forms `H^-1`
//!   (symmetrized) and uploads it once ([`CandleFactor`]); every
//!   [`solve_in_place`](altdiff_core::LinAlg::solve_in_place) is then one product on the
//!   device. The alternative, uploading `L^-1` and `L^-T` (`H = LL'`) and solving by two
//!   products, does twice the work, as candle has no triangular product. Measured with
//!   `cargo run --release -p altdiff-candle --example factor_upload` (the CPU device, 2
//!   cores, default threads; median time of one solve of `k` columns as plain candle
//!   products):
//!
//!   | dtype | `n` | `k` | `H^-1` (one product) | `L^-T`, `L^-1` (two products) | ratio |
//!   |---|---|---|---|---|---|
//!   | f64 | 200 | 1 | 43 us | 99 us | 2.3 |
//!   | f64 | 200 | 64 | 204 us | 451 us | 2.2 |
//!   | f64 | 1000 | 1 | 310 us | 610 us | 2.0 |
//!   | f64 | 1000 | 64 | 2.06 ms | 3.79 ms | 1.8 |
//!   | f32 | 200 | 1 | 39 us | 79 us | 2.0 |
//!   | f32 | 200 | 64 | 189 us | 348 us | 1.8 |
//!   | f32 | 1000 | 1 | 117 us | 238 us | 2.0 |
//!   | f32 | 1000 | 64 | 1.12 ms | 2.29 ms | 2.0 |
//!
//!   So the explicit inverse it is: twice as fast, and as accurate (solves within 2e-15
//!   relative of faer's triangular solves in `f64`, 1e-6 in `f32`, for both). Forming it on
//!   the host costs about the same as `L^-1` (one solve with `n` columns: 1 ms for
//!   `n = 200`, 65 ms for `n = 1000`), once per factorization. (Timings on this 2-core
//!   machine vary by up to 1.7x between runs; the ratio stayed between 1.6 and 3.4.)
//! * **Host-side reuse.** The factor keeps its host Cholesky factor, so
//!   [`gram_inverse`](altdiff_core::LinAlg::gram_inverse) (`M = C H^-1 C'` of the dual-space
//!   iteration and of the limit solve) runs on the host with faer (`W = L^-1 C'`, `M = W'W`)
//!   and uploads `M` (and `K`), and
//!   [`is_psd_with_shift`](altdiff_core::LinAlg::is_psd_with_shift) factors the host copy of
//!   `P`: nothing is downloaded or factored twice.
//! * **Everything else on the device**: products (transposed operands as views),
//!   `axpby`, the projection (`relu`), its derivative (`where_cond` on `at > 0`), and the
//!   reductions, which are the only host reads (`norm_inf` reads the maximum and the sum of
//!   `|x|` in one transfer, the sum to detect NaN, which candle's `max` skips).
//!   Every candle error (device, memory, a tensor of another dtype or device) is an
//!   [`Error::Backend`](altdiff_core::Error::Backend) named `"candle"`.
//!
//! ## Precision
//!
//! `CandleBackend<f64>` passes altdiff's conformance suite and agrees with the faer backend to
//! 1e-10 (iterates and Jacobians, same iteration counts).
//!
//! `CandleBackend<f32>` factors in `f64` and iterates in `f32`. Solved with the default
//! stopping rule (residuals below 1e-6), its solution, duals and Jacobians wrt `q`, `b`, `h`
//! are within **5e-5** (relative to the largest entry) of faer's `f64` results solved to 1e-9,
//! on the conformance problems (`tiny_qp` and seeded `random_qp` up to 200 variables, and `x`
//! of a batch of 16; the tests check this bound, and the largest difference seen is 5e-6). That
//! difference comes from stopping at 1e-6, not from `f32`: faer in `f64`, stopped at the same
//! tolerance, is as far off. The `f32` round-off floor is about 1e-6 (what the limit solve,
//! `Settings::with_limit`, reaches). Stopping tolerances much below 1e-6 are under that floor
//! and may not be reached; 1e-4 .. 1e-6 work.
//!
//! ## Performance notes (CPU)
//!
//! * candle runs every CPU product on its rayon pool (as many threads as cores, unless
//!   `RAYON_NUM_THREADS` says otherwise), which costs about 35 us per product here even for
//!   a 3 x 3 matrix. On small problems `RAYON_NUM_THREADS=1` is much faster (`n = 200`, one
//!   column: 5.6 us instead of 43 us per solve; this crate's conformance tests: 53 s instead
//!   of 8 min on 2 cores). For small problems on the CPU the faer backend is the better
//!   choice anyway.
//! * Products of one column are made batch-invariant by default, at a cost (see
//!   [`CandleBackend::with_batch_invariance`]).
//!
//! ## Features
//!
//! | Feature | Default | Comment |
//! |---|---|---|
//! | `cuda` | no | CUDA tensors through `candle-core/cuda`; needs nvcc and the CUDA libraries at build time (`scripts/gpu-check.sh` runs the CUDA tests) |
//!
//! Without `cuda`, [`CandleBackend::cuda`] still compiles and returns an error, so code that
//! picks its device at run time builds the same either way.
//!
//! ## Example
//!
//! ```
//! use altdiff_candle::CandleBackend;
//! use altdiff_core::{AltDiff, Param, Qp, Settings, Wrt, testing::tiny_qp};
//!
//! let backend = CandleBackend::<f64>::cpu();
//! let qp = Qp::from_host(&backend, &tiny_qp())?;
//! let settings = Settings::default().with_wrt(Wrt::none().with(Param::B));
//! let sol = AltDiff::new(backend, &qp, settings)?.solve(qp.params())?;
//! let dx_db = sol.jacobian(Param::B).unwrap();            // a candle Tensor, 3 x 1
//! let dx_db = dx_db.to_vec2::<f64>().unwrap();
//! assert!((dx_db[2][0] - 4.0 / 7.0).abs() < 1e-4);
//! # Ok::<(), altdiff_core::Error>(())
//! ```
//!
//! The same in `f32`, on a CUDA device when one is available:
//!
//! ```
//! use altdiff_candle::CandleBackend;
//! use altdiff_core::{AltDiff, Qp, Settings, StoppingRule, testing::tiny_qp};
//!
//! let backend = CandleBackend::<f32>::cuda_if_available(0)?;
//! let qp = Qp::from_host(&backend, &tiny_qp())?;
//! let settings = Settings::default()
//!     .with_stopping(StoppingRule::Residual { eps_abs: 1e-5, eps_rel: 1e-5 });
//! let sol = AltDiff::new(backend.clone(), &qp, settings)?.solve(qp.params())?;
//! let x = sol.to_host(&backend)?.x;                        // (0, 0.5, 0.5)
//! assert!((x[1] - 0.5).abs() < 1e-4 && (x[2] - 0.5).abs() < 1e-4);
//! # Ok::<(), altdiff_core::Error>(())
//! ```

#![warn(missing_docs)]

mod backend;
mod error;
mod layer;
mod op;
mod real;

pub use backend::CandleBackend;
pub use candle_core::{DType, Device, Tensor};
pub use layer::{LayerReport, QpLayer};
pub use op::{CandleFactor, CandleOp};
pub use real::CandleReal;

/// The backend-independent API of altdiff.
pub use altdiff_core as core;
