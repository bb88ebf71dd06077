//! Criterion benchmarks of the kernels on the faer backend, n = 300, 1000, 3000
//! (n_eq = n/2, n_ineq = n/5, the paper's generator, theta = b):
//!
//! * `factor`: setup of a solver, i.e. the Cholesky factorization of `H = P + rho(A'A + G'G)`
//!   (convexity test off);
//! * `jacobian_iteration`: `K` fixed iterations carrying `dx/db`, throughput in iterations
//!   (includes the forward step: compare with `forward_iteration`);
//! * `forward_iteration`: `K` fixed iterations without derivatives;
//! * `vjp_iteration`: the unrolled VJP of a `K`-iteration tape (reverse iterations only).
//!
//! `cargo bench -p altdiff-examples --bench kernels` (CI only compiles it).

use std::hint::black_box;

use altdiff_core::testing::{Generator, random_qp};
use altdiff_core::{AltDiff, LinAlg, Param, Qp, Settings, StoppingRule, Tape, VjpMode, Wrt};
use altdiff_faer::FaerBackend;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SIZES: [usize; 3] = [300, 1000, 3000];

fn iterations(n: usize) -> usize {
    if n >= 3000 { 2 } else { 10 }
}

fn kernels(c: &mut Criterion) {
    let backend = FaerBackend::default();
    let mut group = c.benchmark_group("kernels");
    group.sample_size(10);
    for n in SIZES {
        let qp = random_qp(Generator::Seed, n, n / 2, n / 5, 0);
        let problem = Qp::from_host(&backend, &qp).expect("valid");
        let k = iterations(n);
        let fixed = Settings::default()
            .with_check_convexity(false)
            .with_stopping(StoppingRule::Fixed(k));
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("factor", n), &n, |b, _| {
            b.iter(|| {
                black_box(AltDiff::new(backend.clone(), &problem, fixed.clone()).expect("factor"))
            })
        });
        group.throughput(Throughput::Elements(k as u64));
        let forward = AltDiff::new(backend.clone(), &problem, fixed.clone()).expect("setup");
        group.bench_with_input(BenchmarkId::new("forward_iteration", n), &n, |b, _| {
            b.iter(|| black_box(forward.solve(problem.params()).expect("solve")))
        });
        let jacobian = AltDiff::new(
            backend.clone(),
            &problem,
            fixed.clone().with_wrt(Wrt::none().with(Param::B)),
        )
        .expect("setup");
        group.bench_with_input(BenchmarkId::new("jacobian_iteration", n), &n, |b, _| {
            b.iter(|| black_box(jacobian.solve(problem.params()).expect("solve")))
        });
        let taped = AltDiff::new(
            backend.clone(),
            &problem,
            fixed.clone().with_tape(Tape::Full),
        )
        .expect("setup");
        let solution = taped.solve(problem.params()).expect("solve");
        let g = backend.mat_from_col_major(n, 1, &vec![1.0; n]).expect("g");
        group.bench_with_input(BenchmarkId::new("vjp_iteration", n), &n, |b, _| {
            b.iter(|| black_box(taped.vjp(&solution, &g, VjpMode::Unrolled).expect("vjp")))
        });
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
