//! `altdiff batch-bench`: a batch of the classification layer's QP, forward and VJP, solved
//! as one block ([`AltDiff::solve_batch`], [`AltDiff::vjp_batch`]) against a loop of single
//! solves ([`AltDiff::solve`], [`AltDiff::vjp`]), on every backend asked for.

use std::time::Instant;

use altdiff_core::testing::classification_qp;
use altdiff_core::{AltDiff, HostQp, LinAlg, Qp, QpParams, Settings, VjpMode};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;

use crate::CliError;
use crate::backends::BackendJob;

/// What to measure.
///
/// # Example
/// ```
/// use altdiff_examples::batch_bench::BatchBenchConfig;
/// let config = BatchBenchConfig::default();
/// assert_eq!((config.n, config.n_eq, config.n_ineq, config.batch), (200, 50, 50, 64));
/// ```
#[derive(Clone, Debug)]
pub struct BatchBenchConfig {
    /// Variables (the layer's width).
    pub n: usize,
    /// Equalities.
    pub n_eq: usize,
    /// Inequalities.
    pub n_ineq: usize,
    /// Elements per batch.
    pub batch: usize,
    /// Timed runs; the table gives their median.
    pub repeats: usize,
    /// Seed of the problem and of the batch's `q` and seeds.
    pub seed: u64,
    /// The solver settings (the layer's).
    pub settings: Settings,
    /// Whether to time the loop of single solves too.
    pub with_loop: bool,
    /// How the VJPs are computed (the loop uses the same mode per element).
    pub vjp_mode: VjpMode,
}

impl Default for BatchBenchConfig {
    fn default() -> Self {
        Self {
            n: 200,
            n_eq: 50,
            n_ineq: 50,
            batch: 64,
            repeats: 5,
            seed: 0,
            settings: Settings::default(),
            with_loop: true,
            vjp_mode: VjpMode::default(),
        }
    }
}

/// One line of the table: a backend and a way of solving the batch.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BatchBenchRow {
    /// The backend's name.
    pub backend: String,
    /// `"batched"` or `"loop"`.
    pub mode: &'static str,
    /// Elements per batch.
    pub batch: usize,
    /// Median seconds of the forward solve of the whole batch (setup excluded: one
    /// factorization shared by all runs).
    pub forward_s: f64,
    /// Median seconds of the VJP of the whole batch.
    pub vjp_s: f64,
    /// Median seconds of forward + VJP.
    pub total_s: f64,
    /// Mean iterations per element.
    pub mean_iterations: f64,
    /// Elements solved (of `batch`).
    pub solved: usize,
    /// The largest difference of `x` from the first row's (0 on that row): the backends
    /// and the two ways agree.
    pub max_x_diff: f64,
}

/// The data of one run: the problem and the batch's `q` and VJP seeds (column-major).
#[derive(Clone, Debug)]
pub struct BatchData {
    qp: HostQp,
    q: Vec<f64>,
    g: Vec<f64>,
    batch: usize,
}

impl BatchData {
    /// The classification QP and a seeded batch of `q ~ N(0, 1)` (features) and seeds.
    pub fn new(config: &BatchBenchConfig) -> Self {
        let qp = classification_qp(config.n, config.n_eq, config.n_ineq, config.seed);
        let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(1));
        let mut normal = || -> f64 { rng.sample(rand_distr::StandardNormal) };
        let len = config.n * config.batch;
        let q = (0..len).map(|_| normal()).collect();
        let g = (0..len).map(|_| normal()).collect();
        Self {
            qp,
            q,
            g,
            batch: config.batch,
        }
    }
}

/// The median of some seconds.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Times the batched and the looped forward + VJP on one backend; `x` of the batched run is
/// returned for the cross-checks.
#[derive(Debug)]
pub struct BatchBenchJob<'a> {
    /// What to run.
    pub config: &'a BatchBenchConfig,
    /// The data.
    pub data: &'a BatchData,
}

impl BackendJob for BatchBenchJob<'_> {
    type Output = Vec<(BatchBenchRow, Vec<f64>)>;

    fn run<B: LinAlg<Real = f64>>(self, be: B) -> Result<Self::Output, CliError> {
        let (config, data) = (self.config, self.data);
        let qp = Qp::from_host(&be, &data.qp)?;
        let solver = AltDiff::new(be.clone(), &qp, config.settings.clone())?;
        let (n, k) = (config.n, data.batch);
        let column_block = |rows: usize, column: &[f64]| -> Result<B::Mat, CliError> {
            let data: Vec<f64> = (0..k).flat_map(|_| column.iter().copied()).collect();
            Ok(be.mat_from_col_major(rows, k, &data)?)
        };
        let params = QpParams {
            q: be.mat_from_col_major(n, k, &data.q)?,
            b: column_block(config.n_eq, &data.qp.b)?,
            h: column_block(config.n_ineq, &data.qp.h)?,
        };
        let g = be.mat_from_col_major(n, k, &data.g)?;
        let mut rows = Vec::new();
        let (mut forward, mut vjp) = (Vec::new(), Vec::new());
        let mut last = None;
        for _ in 0..config.repeats.max(1) {
            let start = Instant::now();
            let sol = solver.solve_batch(&params)?;
            be.synchronize()?;
            forward.push(start.elapsed().as_secs_f64());
            let start = Instant::now();
            let grads = solver.vjp_batch(&sol, &g, config.vjp_mode)?;
            be.synchronize()?;
            vjp.push(start.elapsed().as_secs_f64());
            drop(grads);
            last = Some(sol);
        }
        let sol = last.expect("one run");
        let solved = (0..k)
            .filter(|&j| sol.element(j).is_some_and(|e| e.status.is_solved()))
            .count();
        let x = be.to_col_major(sol.x())?;
        let total: Vec<f64> = forward.iter().zip(&vjp).map(|(f, v)| f + v).collect();
        rows.push((
            BatchBenchRow {
                backend: be.name().to_string(),
                mode: "batched",
                batch: k,
                forward_s: median(forward),
                vjp_s: median(vjp),
                total_s: median(total),
                mean_iterations: sol.mean_iterations(),
                solved,
                max_x_diff: 0.0,
            },
            x,
        ));
        if config.with_loop {
            rows.push(self.looped(&be, &solver)?);
        }
        Ok(rows)
    }
}

impl BatchBenchJob<'_> {
    /// The loop of single solves and VJPs over the batch's elements.
    fn looped<B: LinAlg<Real = f64>>(
        &self,
        be: &B,
        solver: &AltDiff<B>,
    ) -> Result<(BatchBenchRow, Vec<f64>), CliError> {
        let (config, data) = (self.config, self.data);
        let (n, k) = (config.n, data.batch);
        let dims = solver.dims();
        let (mut forward, mut vjp, mut total) = (Vec::new(), Vec::new(), Vec::new());
        let mut x = vec![0.0; n * k];
        let (mut iterations, mut solved) = (0, 0);
        for _ in 0..config.repeats.max(1) {
            let (mut f, mut v) = (0.0, 0.0);
            (iterations, solved) = (0, 0);
            for j in 0..k {
                let q = &data.q[j * n..(j + 1) * n];
                let params = QpParams::from_host(be, dims, q, &data.qp.b, &data.qp.h)?;
                let seed = be.mat_from_col_major(n, 1, &data.g[j * n..(j + 1) * n])?;
                let start = Instant::now();
                let sol = solver.solve(&params)?;
                be.synchronize()?;
                f += start.elapsed().as_secs_f64();
                let start = Instant::now();
                let grads = solver.vjp(&sol, &seed, config.vjp_mode)?;
                be.synchronize()?;
                v += start.elapsed().as_secs_f64();
                drop(grads);
                iterations += sol.iterations();
                solved += usize::from(sol.status().is_solved());
                x[j * n..(j + 1) * n].copy_from_slice(&be.to_col_major(sol.x())?);
            }
            forward.push(f);
            vjp.push(v);
            total.push(f + v);
        }
        Ok((
            BatchBenchRow {
                backend: be.name().to_string(),
                mode: "loop",
                batch: k,
                forward_s: median(forward),
                vjp_s: median(vjp),
                total_s: median(total),
                mean_iterations: iterations as f64 / k.max(1) as f64,
                solved,
                max_x_diff: 0.0,
            },
            x,
        ))
    }
}

/// Fills [`BatchBenchRow::max_x_diff`] against the first row's solutions.
pub fn cross_check(rows: Vec<(BatchBenchRow, Vec<f64>)>) -> Vec<BatchBenchRow> {
    let first = rows.first().map(|(_, x)| x.clone()).unwrap_or_default();
    rows.into_iter()
        .map(|(mut row, x)| {
            row.max_x_diff = x
                .iter()
                .zip(&first)
                .fold(0.0, |m, (a, b)| f64::max(m, (a - b).abs()));
            row
        })
        .collect()
}

/// The table, one line per row, with the loop / batched ratio of each backend.
pub fn table(rows: &[BatchBenchRow]) -> String {
    let mut out = format!(
        "{:<12} {:<8} {:>6} {:>11} {:>11} {:>11} {:>8} {:>7} {:>10}\n",
        "backend", "mode", "batch", "forward s", "vjp s", "total s", "iters", "solved", "max |dx|"
    );
    for row in rows {
        out += &format!(
            "{:<12} {:<8} {:>6} {:>11.4} {:>11.4} {:>11.4} {:>8.1} {:>7} {:>10.1e}\n",
            row.backend,
            row.mode,
            row.batch,
            row.forward_s,
            row.vjp_s,
            row.total_s,
            row.mean_iterations,
            row.solved,
            row.max_x_diff
        );
    }
    let first = rows.iter().find(|r| r.mode == "batched");
    for batched in rows.iter().filter(|r| r.mode == "batched") {
        if let Some(first) = first.filter(|f| f.backend != batched.backend) {
            out += &format!(
                "{} batched vs {} batched: {:.2}x (forward + VJP)\n",
                batched.backend,
                first.backend,
                first.total_s / batched.total_s
            );
        }
        if let Some(looped) = rows
            .iter()
            .find(|r| r.mode == "loop" && r.backend == batched.backend)
        {
            out += &format!(
                "{}: batched is {:.1}x faster than the loop (forward + VJP)\n",
                batched.backend,
                looped.total_s / batched.total_s
            );
        }
    }
    out
}
