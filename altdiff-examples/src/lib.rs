//! # altdiff-examples: the `altdiff` command-line program and shared example helpers
//!
//! * [`problem_file`]: the JSON problem format (`P`, `q`, `A`, `b`, `G`, `h`, row-major
//!   nested arrays) read into an [`altdiff_core::HostQp`], and the result JSON.
//! * [`backends`]: the backends compiled in (Cargo features `faer`, `ndarray`) and a
//!   dispatcher that runs generic code on the one picked at run time.
//! * [`demo`]: the main job: a random QP solved by Alt-Diff, checked against the exact KKT
//!   Jacobian, timed, with the Jacobian iteration's throughput against a plain GEMM.
//! * [`batch_bench`]: a batch of the classification layer's QP, solved as one block against a
//!   loop of single solves, per backend.
//! * [`datasets`]: image classification data: the embedded UCI digits (offline default),
//!   MNIST (IDX files) and CIFAR-10 (binary batches), as train / test splits of `f32` pixels.
//! * [`classify`] (feature `candle`): the paper's classification experiment, FC - ReLU -
//!   QP layer - FC trained with Adam on digits, MNIST or CIFAR-10 (`altdiff classify`).
//! * [`maros`]: the Maros-Meszaros test set, MAT-files (read with `matrw`) mapped to
//!   `Ax = b`, `Gx <= h` with sparse matrices; [`suite`] runs a directory of them
//!   (`altdiff suite`) with a time limit and a derivative check.
//! * [`sparse_gen`]: seeded sparse generators (random of a given density, Lasso,
//!   portfolio with a factor model) for sizes up to 1e5.
//! * [`layer_cli`]: `altdiff layer`, the softmax / sparsemax layers (and their constrained
//!   variants) of `altdiff_core::smooth` with Jacobians or a VJP, as JSON.
//! * [`trust`]: `altdiff trust`, problems as users write them (loose bounds, scaled rows and
//!   columns, LPs, non-unique solutions) judged against clarabel.
//! * [`CliError`]: every failure of the program, printed as one line (exit code 2).

#![warn(missing_docs)]

pub mod backends;
pub mod batch_bench;
pub mod bench;
#[cfg(feature = "candle")]
pub mod classify;
pub mod cli;
pub mod datasets;
pub mod demo;
pub mod derivatives;
mod error;
pub mod layer_cli;
pub mod maros;
pub mod memory;
pub mod npz_file;
pub mod plot;
pub mod problem_file;
mod rng;
pub mod sparse_gen;
pub mod suite;
pub mod trust;

pub use error::CliError;

/// The README's code, compiled and run as a doctest.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
