//! What the candle backend uploads after factoring `H` on the host: the explicit inverse
//! `H^-1` (a solve is one product) or the inverses of the Cholesky factors `L^-1`, `L^-T`
//! (a solve is two products; candle has no triangular product or solve).
//!
//! Prints, for `n` = 200 and 1000 and `k` = 1 and 64 right-hand sides, the median time of one
//! solve on the device by each (and by the backend's `solve_in_place`, which doubles a
//! one-column right-hand side on the CPU), the host time to form what is uploaded, and the
//! error of each solve against faer's two triangular solves. `RAYON_NUM_THREADS=1` shows the
//! products without candle's thread pool.
//!
//! ```sh
//! cargo run --release -p altdiff-candle --example factor_upload          # CPU
//! cargo run --release -p altdiff-candle --features cuda --example factor_upload -- cuda
//! ```

use std::time::{Duration, Instant};

use altdiff_candle::{CandleBackend, CandleReal, Device, Tensor};
use altdiff_core::{LinAlg, Real};
use altdiff_faer::{DenseCholesky, Par};
use faer::Mat;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A small deterministic generator (xorshift), uniform in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

fn upload<T: CandleReal>(m: &Mat<f64>, device: &Device) -> AnyResult<Tensor> {
    let data: Vec<T> = (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| T::of(m[(i, j)])))
        .collect();
    Ok(Tensor::from_vec(data, (m.nrows(), m.ncols()), device)?)
}

/// The median over `rounds` of the mean time of `f` over a batch sized to ~20 ms.
fn median_time(device: &Device, mut f: impl FnMut() -> AnyResult<Tensor>) -> AnyResult<Duration> {
    let start = Instant::now();
    f()?;
    device.synchronize()?;
    let once = start.elapsed().max(Duration::from_micros(1));
    let batch = (Duration::from_millis(20).as_secs_f64() / once.as_secs_f64()).ceil() as u32;
    let batch = batch.clamp(1, 10_000);
    let mut times = Vec::new();
    for _ in 0..15 {
        let start = Instant::now();
        for _ in 0..batch {
            f()?;
        }
        device.synchronize()?;
        times.push(start.elapsed() / batch);
    }
    times.sort();
    Ok(times[times.len() / 2])
}

fn max_rel(got: &[f64], expected: &[f64]) -> f64 {
    let scale = expected.iter().fold(1.0_f64, |s, v| s.max(v.abs()));
    got.iter()
        .zip(expected)
        .fold(0.0_f64, |m, (g, e)| m.max((g - e).abs()))
        / scale
}

fn host_of<T: CandleReal>(t: &Tensor) -> AnyResult<Vec<f64>> {
    Ok(t.flatten_all()?
        .to_vec1::<T>()?
        .into_iter()
        .map(Real::to_f64_lossy)
        .collect())
}

fn run<T: CandleReal>(device: &Device, n: usize, k: usize) -> AnyResult<()> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (n as u64) << 8 ^ k as u64);
    let w = Mat::from_fn(n, n, |_, _| rng.next());
    let h = Mat::from_fn(n, n, |i, j| {
        (0..n).map(|l| w[(l, i)] * w[(l, j)]).sum::<f64>() / n as f64
            + if i == j { 0.1 } else { 0.0 }
    });
    let b = Mat::from_fn(n, k, |_, _| rng.next());

    // host: the factor, then what each variant uploads
    let chol = DenseCholesky::new(h.as_ref(), Par::Seq)?;
    let start = Instant::now();
    let mut inverse = Mat::<f64>::identity(n, n);
    chol.solve_in_place(inverse.as_mut(), Par::Seq);
    let inverse = Mat::from_fn(n, n, |i, j| 0.5 * (inverse[(i, j)] + inverse[(j, i)]));
    let host_inverse = start.elapsed();
    let start = Instant::now();
    let llt = h.llt(faer::Side::Lower).map_err(|e| format!("{e:?}"))?;
    let mut l_inv = Mat::<f64>::identity(n, n);
    faer::linalg::triangular_solve::solve_lower_triangular_in_place(
        llt.L(),
        l_inv.as_mut(),
        Par::Seq,
    );
    let l_inv_t = l_inv.transpose().to_owned();
    let host_triangular = start.elapsed();
    let mut exact = b.clone();
    chol.solve_in_place(exact.as_mut(), Par::Seq);
    let exact: Vec<f64> = (0..n)
        .flat_map(|i| (0..k).map(move |j| (i, j)))
        .map(|(i, j)| exact[(i, j)])
        .collect();

    let (inv, li, lit, rhs) = (
        upload::<T>(&inverse, device)?,
        upload::<T>(&l_inv, device)?,
        upload::<T>(&l_inv_t, device)?,
        upload::<T>(&b, device)?,
    );
    let one = || -> AnyResult<Tensor> { Ok(inv.matmul(&rhs)?) };
    let two = || -> AnyResult<Tensor> { Ok(lit.matmul(&li.matmul(&rhs)?)?) };
    // what the backend does: the same product (a one-column rhs doubled on the CPU)
    let backend = CandleBackend::<T>::new(device.clone());
    let none = backend.op_from_col_major(0, n, &[])?;
    let h_col_major: Vec<T> = (0..n * n).map(|idx| T::of(h[(idx % n, idx / n)])).collect();
    let factor = backend.factor(
        &backend.op_from_col_major(n, n, &h_col_major)?,
        &none,
        &none,
        T::of(1.0),
    )?;
    let solve = || -> AnyResult<Tensor> {
        let mut x = rhs.clone();
        backend.solve_in_place(&factor, &mut x)?;
        Ok(x)
    };
    let err_one = max_rel(&host_of::<T>(&one()?)?, &exact);
    let err_two = max_rel(&host_of::<T>(&two()?)?, &exact);
    let (t_one, t_two) = (median_time(device, one)?, median_time(device, two)?);
    let t_solve = median_time(device, solve)?;
    println!(
        "| {:>4} | {n:>4} | {k:>2} | {:>9.1} | {:>9.1} | {:>5.2} | {:>9.1} | {:>7.2} | {:>7.2} | {err_one:.1e} | {err_two:.1e} |",
        format!("{:?}", T::DTYPE),
        t_one.as_secs_f64() * 1e6,
        t_two.as_secs_f64() * 1e6,
        t_two.as_secs_f64() / t_one.as_secs_f64(),
        t_solve.as_secs_f64() * 1e6,
        host_inverse.as_secs_f64() * 1e3,
        host_triangular.as_secs_f64() * 1e3,
    );
    Ok(())
}

fn main() -> AnyResult<()> {
    let device = if std::env::args().any(|a| a == "cuda") {
        Device::cuda_if_available(0)?
    } else {
        Device::Cpu
    };
    println!("device: {device:?}");
    println!(
        "| dtype | n | k | H^-1 (us) | L^-T L^-1 (us) | ratio | solve_in_place (us) | host H^-1 (ms) | host L^-1 (ms) | err H^-1 | err L^-T L^-1 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (n, k) in [(200, 1), (200, 64), (1000, 1), (1000, 64)] {
        run::<f64>(&device, n, k)?;
    }
    for (n, k) in [(200, 1), (200, 64), (1000, 1), (1000, 64)] {
        run::<f32>(&device, n, k)?;
    }
    Ok(())
}
