//! # altdiff-examples: the `altdiff` command-line program and shared example helpers
//!
//! * [`problem_file`]: the JSON problem format (`P`, `q`, `A`, `b`, `G`, `h`, row-major
//!   nested arrays) read into an [`altdiff_core::HostQp`], and the result JSON.
//! * [`backends`]: the backends compiled in (Cargo features `faer`, `ndarray`) and a
//!   dispatcher that runs generic code on the one picked at run time.
//! * [`demo`]: the main job: a random QP solved by Alt-Diff, checked against the exact KKT
//!   Jacobian, timed, with the Jacobian iteration's throughput against a plain GEMM.
//! * [`CliError`]: every failure of the program, printed as one line (exit code 2).

#![warn(missing_docs)]

pub mod backends;
pub mod bench;
pub mod cli;
pub mod demo;
pub mod derivatives;
mod error;
pub mod npz_file;
pub mod plot;
pub mod problem_file;

pub use error::CliError;

/// The README's code, compiled and run as a doctest.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
