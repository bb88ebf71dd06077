//! Batches: many parameter sets `(q, b, h)` for one `(P, A, G)`, iterated as blocks.
//!
//! The mapping, kept in this one place: element `j` of a batch of `k` is column `j` of every
//! block, `q` (n x k), `b` (p x k), `h` (m x k), and of the iterate `x`, `s`, `lam`, `nu`.
//! The ADMM map acts on each column alone (its only nonlinearity, the projection of the
//! slack, is elementwise, and `rho` stays fixed), so
//!
//! * one factorization of `H` serves the whole batch, and every step is one multi-column
//!   solve and products of the operators with `k`-column blocks (GEMM, not GEMVs);
//! * element `j` has its own active-set mask, column `j` of `1[s > 0]`, and its adjoint is
//!   column `j` of the reverse iteration run with that mask block;
//! * convergence is tested per column every `check_every` iterations on the host; elements
//!   that finish (solved, out of iterations, non-finite) leave the block, which is compacted,
//!   so they stop changing and cost nothing more; one element's failure never touches
//!   another's column.

use num_traits::{Float, One, Zero};

use crate::solver::adjoint::mask_bits;
use crate::solver::adjoint::{Grads, closed_forms};
use crate::solver::dual::{DualBlock, DualData, DualKernel, DualOps};
use crate::solver::dual::{DualHost, select_columns};
use crate::solver::iteration::{Affine, Iterate, Kernel, Slack, Workspace};
use crate::solver::limit::Limit;
use crate::solver::polish::PolishSchedule;
use crate::solver::polish::Polished;
use crate::solver::status::Status;
use crate::solver::termination::{Criterion, Measures};
use crate::{
    AltDiff, Error, Field, LinAlg, QpDims, QpParams, QpProblem, Real, Result, Settings,
    StoppingRule, VjpMode,
};

/// How one element of a batch ended (see [`AltDiff::solve_batch`]).
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{AltDiff, LinAlg, Qp, QpParams, Settings, testing::{RefBackend, tiny_qp}};
/// let be = RefBackend;
/// let qp = Qp::from_host(&be, &tiny_qp())?;
/// let solver = AltDiff::new(be, &qp, Settings::default())?;
/// let sol = solver.solve_batch(qp.params())?;
/// let element = sol.element(0).unwrap();
/// assert!(element.status.is_solved() && element.primal_residual < 1e-5);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Copy, Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Element {
    /// How its iteration ended.
    pub status: Status,
    /// Iterations it ran before it left the block.
    pub iterations: usize,
    /// `1/2 x'Px + q'x` on the user's problem.
    pub objective: f64,
    /// `max(|Ax - b|, |Gx + s - h|)` on the user's problem.
    pub primal_residual: f64,
    /// `|Px + q + A'lam + G'nu|` on the user's problem.
    pub dual_residual: f64,
    /// `|x'Px + q'x + b'lam + h'nu|` on the user's problem.
    pub duality_gap: f64,
}

/// The solutions of a batch: column `j` of [`BatchSolution::x`] (n x k) is element `j`'s
/// solution, and [`BatchSolution::element`] says how it ended.
///
/// An element whose data were rejected (a NaN in its column of `q`, `b` or `h`) has an
/// [`Error`] instead, and NaN in its columns; an element that ended in
/// [`Status::NumericalError`] keeps its last columns. Neither affects the other columns.
///
/// # Example
/// See [`AltDiff::solve_batch`].
#[derive(Debug)]
pub struct BatchSolution<B: LinAlg> {
    iterate: Iterate<B>,
    /// The iterate of the equilibrated problem, when the solver scales (for VJPs).
    inner: Option<Iterate<B>>,
    elements: Vec<core::result::Result<Element, Error>>,
}

impl<B: LinAlg> BatchSolution<B> {
    /// The number of elements `k`.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// `x` (n x k): one column per element.
    pub fn x(&self) -> &B::Mat {
        &self.iterate.x
    }

    /// The slack `s` (m x k).
    pub fn s(&self) -> &B::Mat {
        &self.iterate.s
    }

    /// The equality duals `lam` (p x k).
    pub fn lam(&self) -> &B::Mat {
        &self.iterate.lam
    }

    /// The inequality duals `nu` (m x k).
    pub fn nu(&self) -> &B::Mat {
        &self.iterate.nu
    }

    /// The whole iterate, `k` columns.
    pub fn iterate(&self) -> &Iterate<B> {
        &self.iterate
    }

    /// Every element's outcome, in column order.
    pub fn elements(&self) -> &[core::result::Result<Element, Error>] {
        &self.elements
    }

    /// Element `j`'s outcome, `None` when its data were rejected (see
    /// [`BatchSolution::error`]) or `j >= k`.
    pub fn element(&self, j: usize) -> Option<&Element> {
        self.elements.get(j).and_then(|e| e.as_ref().ok())
    }

    /// Why element `j`'s data were rejected, if they were.
    pub fn error(&self, j: usize) -> Option<&Error> {
        self.elements.get(j).and_then(|e| e.as_ref().err())
    }

    /// The mean iteration count over the elements that ran (0 when none did).
    pub fn mean_iterations(&self) -> f64 {
        let ran: Vec<usize> = self
            .elements
            .iter()
            .filter_map(|e| e.as_ref().ok().map(|e| e.iterations))
            .collect();
        if ran.is_empty() {
            0.0
        } else {
            ran.iter().sum::<usize>() as f64 / ran.len() as f64
        }
    }

    /// Whether element `j` has a usable solution (its data were accepted and its iterate is
    /// finite); the VJP gives zero gradients for the others.
    fn usable(&self, j: usize) -> bool {
        self.element(j)
            .is_some_and(|e| e.status != Status::NumericalError)
    }
}

/// The columns of a block on the host, one `Vec` per column.
fn host_columns<B: LinAlg>(backend: &B, m: &B::Mat) -> Result<Vec<Vec<B::Real>>> {
    let (rows, cols) = backend.shape(m);
    let data = backend.to_col_major(m)?;
    Ok((0..cols)
        .map(|j| data[j * rows..(j + 1) * rows].to_vec())
        .collect())
}

/// A block from host columns of `rows` entries.
fn from_columns<B: LinAlg>(backend: &B, rows: usize, columns: &[Vec<B::Real>]) -> Result<B::Mat> {
    let data: Vec<B::Real> = columns.iter().flatten().copied().collect();
    backend.mat_from_col_major(rows, columns.len(), &data)
}

/// The blocks `(q, b, h)` with their columns `positions` replaced by those of `with`.
fn replace_columns<B: LinAlg>(
    backend: &B,
    (q, b, h): (B::Mat, B::Mat, B::Mat),
    positions: &[usize],
    (wq, wb, wh): (B::Mat, B::Mat, B::Mat),
) -> Result<(B::Mat, B::Mat, B::Mat)> {
    let patch = |block: B::Mat, with: B::Mat| -> Result<B::Mat> {
        let rows = backend.shape(&block).0;
        let mut columns = host_columns(backend, &block)?;
        for (position, column) in host_columns(backend, &with)?.into_iter().enumerate() {
            columns[positions[position]] = column;
        }
        from_columns(backend, rows, &columns)
    };
    Ok((patch(q, wq)?, patch(b, wb)?, patch(h, wh)?))
}

/// The columns `keep` of every block of an iterate.
fn select_iterate<B: LinAlg>(backend: &B, it: &Iterate<B>, keep: &[usize]) -> Result<Iterate<B>> {
    Ok(Iterate {
        x: select_columns(backend, &it.x, keep)?,
        s: select_columns(backend, &it.s, keep)?,
        lam: select_columns(backend, &it.lam, keep)?,
        nu: select_columns(backend, &it.nu, keep)?,
    })
}

/// The columns `keep` of `(q, b, h)`.
fn select_params<B: LinAlg>(
    backend: &B,
    params: &QpParams<B>,
    keep: &[usize],
) -> Result<QpParams<B>> {
    Ok(QpParams {
        q: select_columns(backend, &params.q, keep)?,
        b: select_columns(backend, &params.b, keep)?,
        h: select_columns(backend, &params.h, keep)?,
    })
}

/// The largest absolute entry of each of `k` columns (NaN-propagating).
fn column_norms(data: &[f64], rows: usize, k: usize) -> Vec<f64> {
    (0..k)
        .map(|j| {
            data[j * rows..(j + 1) * rows]
                .iter()
                .fold(0.0, |acc, v| crate::kernels::max_abs(acc, *v))
        })
        .collect()
}

/// A batch's iteration state: primal blocks, or dual-space blocks with `x` formed on demand.
enum Stepper<'a, B: LinAlg> {
    Primal {
        kernel: Kernel<'a, B>,
        it: Iterate<B>,
        ws: Workspace<B>,
        data: Affine<B>,
        solver: &'a AltDiff<B>,
    },
    Dual {
        kernel: DualKernel<'a, B>,
        blk: DualBlock<B>,
        data: DualData<B>,
        /// The host data of the residuals.
        host: DualHost,
        solver: &'a AltDiff<B>,
    },
}

impl<B: LinAlg> Stepper<'_, B> {
    /// One iteration of every column.
    fn step(&mut self) -> Result<()> {
        match self {
            Stepper::Primal {
                kernel,
                it,
                ws,
                data,
                ..
            } => kernel.step(it, data, Slack::Project, ws),
            Stepper::Dual {
                kernel, blk, data, ..
            } => kernel.step(blk, data, None),
        }
    }

    /// The measures of every column on the user's problem (`params`: the block's data, in
    /// the iterated units), judged by the residual rule (the default one for the others).
    fn measures(&self, params: &QpParams<B>) -> Result<Vec<Measures>> {
        match self {
            Stepper::Primal { it, solver, .. } => Ok(solver
                .operators()
                .host_point(it, params)?
                .measures(&solver.criterion(), &solver.units)),
            Stepper::Dual {
                kernel,
                blk,
                host,
                solver,
                ..
            } => {
                let (criterion, p) = (solver.criterion(), solver.dims().p);
                // no column passes on its primal rows (and all are finite): the products
                // with C' are not needed
                let finite = solver.backend().norm_inf(&blk.cx)?.is_finite();
                let primal = kernel.primal_passes(blk, host, &criterion, &solver.units, p)?;
                if finite && primal.iter().all(|ok| !ok) {
                    return Ok(primal.iter().map(|_| Measures::unfinished()).collect());
                }
                kernel.columns(blk, host, true, p, |column| {
                    criterion.point(column, p, &solver.units)
                })
            }
        }
    }

    /// The objectives `1/2 x'Px + q'x` of every column in the user's units.
    fn objectives(&self, params: &QpParams<B>) -> Result<Vec<f64>> {
        match self {
            Stepper::Dual {
                kernel,
                blk,
                host,
                solver,
                ..
            } => Ok(kernel
                .objectives(blk, host)?
                .into_iter()
                .map(|f| f * solver.units.cost)
                .collect()),
            Stepper::Primal { .. } => Ok(self
                .measures(params)?
                .into_iter()
                .map(|m| m.objective)
                .collect()),
        }
    }

    /// The slack of every column on the host (`m x k`).
    fn slacks(&self) -> Result<Vec<Vec<B::Real>>> {
        match self {
            Stepper::Primal { it, solver, .. } => host_columns(solver.backend(), &it.s),
            Stepper::Dual { blk, solver, .. } => {
                let p = solver.dims().p;
                Ok(host_columns(solver.backend(), &blk.s)?
                    .into_iter()
                    .map(|column| column[p..].to_vec())
                    .collect())
            }
        }
    }

    /// `x` of the last step.
    fn x(&self) -> Result<B::Mat> {
        match self {
            Stepper::Primal { it, .. } => Ok(it.x.clone()),
            Stepper::Dual {
                kernel, blk, data, ..
            } => kernel.x(blk, data),
        }
    }

    /// The primal iterate `(x, s, lam, nu)` of the last step.
    fn iterate(&self) -> Result<Iterate<B>> {
        match self {
            Stepper::Primal { it, .. } => Ok(it.clone()),
            Stepper::Dual {
                kernel,
                blk,
                data,
                solver,
                ..
            } => kernel.primal(blk, data, solver.dims().p),
        }
    }

    /// Keeps the columns `keep` (positions in the block), whose data are now `params`.
    fn keep(&mut self, keep: &[usize], params: &QpParams<B>) -> Result<()> {
        match self {
            Stepper::Primal {
                it,
                ws,
                data,
                solver,
                ..
            } => {
                let be = solver.backend();
                *it = select_iterate(be, it, keep)?;
                *ws = Workspace::new(be, solver.dims(), keep.len())?;
                *data = solver.affine(params)?;
            }
            Stepper::Dual {
                blk,
                data,
                host,
                solver,
                ..
            } => {
                let be = solver.backend();
                *blk = blk.select(be, keep)?;
                // the constant terms are column by column: selected, not solved again
                *data = data.select(be, keep)?;
                *host = host.select(keep);
            }
        }
        Ok(())
    }

    /// A polish of the block's column `position` (see [`AltDiff::try_polish`]) with its
    /// data `params`: in the dual space through the limit system of its mask, with the
    /// column's constant terms (no solve with `H`, no `x` of the other columns).
    fn polish(&self, position: usize, params: &QpParams<B>) -> Result<Option<Polished<B>>> {
        match self {
            Stepper::Primal { it, solver, .. } => {
                let column = select_iterate(solver.backend(), it, &[position])?;
                solver.try_polish(&column, params, false)
            }
            Stepper::Dual {
                kernel,
                blk,
                data,
                solver,
                ..
            } => {
                let be = solver.backend();
                let block = blk.select(be, &[position])?;
                let data = data.select(be, &[position])?;
                let column = kernel.primal(&block, &data, solver.dims().p)?;
                solver.corrected_polish(&column.s, params, |mask| {
                    solver.polish_candidate(
                        Some((kernel, &data)),
                        &column,
                        mask,
                        params,
                        false,
                        true,
                    )
                })
            }
        }
    }
}

/// The accepted columns of a batch's data, and the errors of the rejected ones.
struct Screened<B: LinAlg> {
    params: QpParams<B>,
    errors: Vec<Option<Error>>,
}

/// Checks the shapes of a batch's blocks (`k` columns each) and screens every column for
/// non-finite entries; rejected columns are zeroed.
fn screen<B: LinAlg>(backend: &B, dims: QpDims, params: &QpParams<B>) -> Result<Screened<B>> {
    let k = backend.shape(&params.q).1;
    let blocks = [
        (Field::Q, &params.q, dims.n),
        (Field::B, &params.b, dims.p),
        (Field::H, &params.h, dims.m),
    ];
    for (field, block, rows) in blocks {
        let got = backend.shape(block);
        if got != (rows, k) {
            return Err(Error::Dimension {
                field,
                expected: (rows, k),
                got,
            });
        }
    }
    let mut errors: Vec<Option<Error>> = (0..k).map(|_| None).collect();
    let mut host = Vec::with_capacity(3);
    for (field, block, rows) in blocks {
        let columns = host_columns(backend, block)?;
        for (j, column) in columns.iter().enumerate() {
            if errors[j].is_none()
                && let Some(row) = column.iter().position(|v| !v.is_finite())
            {
                errors[j] = Some(Error::NonFinite {
                    field,
                    row,
                    col: j,
                    value: column[row].to_f64_lossy(),
                });
            }
        }
        host.push((rows, columns));
    }
    if errors.iter().all(Option::is_none) {
        return Ok(Screened {
            params: params.clone(),
            errors,
        });
    }
    let mut blocks = host.into_iter().map(|(rows, mut columns)| {
        for (j, column) in columns.iter_mut().enumerate() {
            if errors[j].is_some() {
                column.fill(B::Real::zero());
            }
        }
        from_columns(backend, rows, &columns)
    });
    let (q, b, h) = (
        blocks.next().expect("q")?,
        blocks.next().expect("b")?,
        blocks.next().expect("h")?,
    );
    Ok(Screened {
        params: QpParams { q, b, h },
        errors,
    })
}

/// The finished columns of a batch solve, on the host, in element order.
struct Finished<T> {
    columns: [Vec<Vec<T>>; 4],
    status: Vec<Option<(Status, usize)>>,
}

impl<T: Real> Finished<T> {
    fn new(dims: QpDims, k: usize) -> Self {
        let nan = |rows: usize| vec![vec![T::nan(); rows]; k];
        Self {
            columns: [nan(dims.n), nan(dims.m), nan(dims.p), nan(dims.m)],
            status: vec![None; k],
        }
    }

    /// Records the columns `positions` of the block `it` as elements `active[position]`.
    fn record<B: LinAlg<Real = T>>(
        &mut self,
        backend: &B,
        it: &Iterate<B>,
        active: &[usize],
        done: &[(usize, Status)],
        iterations: usize,
    ) -> Result<()> {
        let blocks = [&it.x, &it.s, &it.lam, &it.nu].map(|m| host_columns(backend, m));
        for (slot, block) in self.columns.iter_mut().zip(blocks) {
            let block = block?;
            for &(position, _) in done {
                slot[active[position]].clone_from(&block[position]);
            }
        }
        for &(position, status) in done {
            self.status[active[position]] = Some((status, iterations));
        }
        Ok(())
    }

    /// Records a one-column iterate (a polished element) as element `element`.
    fn record_column<B: LinAlg<Real = T>>(
        &mut self,
        backend: &B,
        it: &Iterate<B>,
        element: usize,
        status: Status,
        iterations: usize,
    ) -> Result<()> {
        let blocks = [&it.x, &it.s, &it.lam, &it.nu].map(|m| backend.to_col_major(m));
        for (slot, column) in self.columns.iter_mut().zip(blocks) {
            slot[element] = column?;
        }
        self.status[element] = Some((status, iterations));
        Ok(())
    }

    fn iterate<B: LinAlg<Real = T>>(&self, backend: &B, dims: QpDims) -> Result<Iterate<B>> {
        let [x, s, lam, nu] = &self.columns;
        Ok(Iterate {
            x: from_columns(backend, dims.n, x)?,
            s: from_columns(backend, dims.m, s)?,
            lam: from_columns(backend, dims.p, lam)?,
            nu: from_columns(backend, dims.m, nu)?,
        })
    }
}

impl<B: LinAlg> AltDiff<B> {
    /// Solves a batch of `k` problems that share `P`, `A`, `G` (and so this solver's one
    /// factorization): `params` holds `q` (n x k), `b` (p x k), `h` (m x k), element `j` in
    /// column `j`. The whole batch iterates as blocks; each element is tested for
    /// convergence on its own (every `check_every` iterations, by the stopping rule of the
    /// settings), leaves the block when it finishes, and gets its own [`Element`] report.
    ///
    /// Batches run the primal iteration with the settings' fixed `rho` (adaptive rho would
    /// couple the elements), without Jacobians or infeasibility certificates (an infeasible
    /// element ends with [`Status::MaxIterations`]); differentiate with
    /// [`AltDiff::vjp_batch`].
    ///
    /// # Errors
    /// [`Error::Dimension`] when the blocks do not have `k` columns of the right heights, or
    /// a backend error. A non-finite entry is not an error of the call: that element gets an
    /// [`Error::NonFinite`] (with `col` = its index) in [`BatchSolution::elements`].
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{AltDiff, LinAlg, Qp, QpParams, Settings, testing::{RefBackend, tiny_qp}};
    /// let be = RefBackend;
    /// let qp = Qp::from_host(&be, &tiny_qp())?;
    /// let solver = AltDiff::new(be, &qp, Settings::default())?;
    /// // two elements: the tiny QP, and the same with q = (NaN, 0, 0)
    /// let q = be.mat_from_col_major(3, 2, &[0.0, 0.0, 0.0, f64::NAN, 0.0, 0.0])?;
    /// let b = be.mat_from_col_major(1, 2, &[1.0, 1.0])?;
    /// let h = be.mat_from_col_major(2, 2, &[0.0, 0.0, 0.0, 0.0])?;
    /// let sol = solver.solve_batch(&QpParams { q, b, h })?;
    /// assert!(sol.element(0).unwrap().status.is_solved());
    /// assert!(sol.error(1).is_some()); // the NaN element, and only it
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn solve_batch(&self, params: &QpParams<B>) -> Result<BatchSolution<B>> {
        let (be, dims) = (&self.backend, self.dims);
        let Screened { params, errors } = screen(be, dims, params)?;
        let inner = self.scaled_params(&params)?;
        let data = inner.as_ref().unwrap_or(&params);
        let k = errors.len();
        let active: Vec<usize> = (0..k).filter(|&j| errors[j].is_none()).collect();
        let finished = self.iterate_batch(data, active)?;
        let scaled = finished.iterate(be, dims)?;
        // the measures on the user's problem, from the iterated one's
        let measures = self
            .operators()
            .host_point(&scaled, data)?
            .measures(&self.criterion(), &self.units);
        let (iterate, inner) = match &self.scaling {
            Some(s) => (s.unscale_iterate(be, &scaled, None)?, Some(scaled)),
            None => (scaled, None),
        };
        let elements = errors
            .into_iter()
            .zip(finished.status)
            .zip(measures)
            .map(|((error, status), m)| match (error, status) {
                (Some(error), _) => Err(error),
                (None, Some((status, iterations))) => Ok(Element {
                    status: if m.is_finite() {
                        status
                    } else {
                        Status::NumericalError
                    },
                    iterations,
                    objective: m.objective,
                    primal_residual: m.primal,
                    dual_residual: m.dual,
                    duality_gap: m.gap,
                }),
                (None, None) => Err(Error::Request("a batch element was never finished")),
            })
            .collect();
        Ok(BatchSolution {
            iterate,
            inner,
            elements,
        })
    }

    /// The batch iteration on the solver's (possibly scaled) problem for the elements
    /// `active` of `params`: each element tested on its own, and polished on its own
    /// (with [`Settings::limit`](crate::Settings::limit)) when its mask settles.
    fn iterate_batch(
        &self,
        params: &QpParams<B>,
        mut active: Vec<usize>,
    ) -> Result<Finished<B::Real>> {
        let (be, dims) = (&self.backend, self.dims);
        let k = be.shape(&params.q).1;
        let mut finished = Finished::new(dims, k);
        let mut sub = select_params(be, params, &active)?;
        let mut stepper = self.stepper(&sub)?;
        let rule = self.settings.stopping;
        let criterion = Criterion::of(rule);
        let polishing = self.settings.limit && criterion.is_some();
        let mut schedules = vec![PolishSchedule::default(); active.len()];
        let mut checks = self.checks(matches!(stepper, Stepper::Dual { .. }), 0);
        let (limit, out_of_iterations) = self.iteration_limit();
        let mut iterations = 0;
        while iterations < limit && !active.is_empty() {
            iterations += 1;
            let check = checks.due(iterations, limit);
            let x_before = match rule {
                StoppingRule::RelativeX(_) if check => {
                    Some(crate::solver::tangent::download(be, &stepper.x()?)?)
                }
                _ => None,
            };
            let before = match rule {
                StoppingRule::RelativeObjective(_) if check && iterations > 1 => {
                    Some(stepper.objectives(&sub)?)
                }
                _ => None,
            };
            stepper.step()?;
            if !check {
                continue;
            }
            let measures = match criterion {
                Some(_) => stepper.measures(&sub)?,
                None => Vec::new(),
            };
            let now = match rule {
                StoppingRule::RelativeObjective(_) => stepper.objectives(&sub)?,
                _ => Vec::new(),
            };
            let x_now = match &x_before {
                Some(_) => crate::solver::tangent::download(be, &stepper.x()?)?,
                None => Vec::new(),
            };
            // the elements that end, recorded from the block, and those recorded polished
            let mut done: Vec<(usize, Status)> = Vec::new();
            let mut polished_now: Vec<usize> = Vec::new();
            let mut due = Vec::new();
            let slacks = if polishing {
                stepper.slacks()?
            } else {
                Vec::new()
            };
            for position in 0..active.len() {
                let column = |v: &[f64]| v[position * dims.n..(position + 1) * dims.n].to_vec();
                let (finite, converged) = match rule {
                    StoppingRule::Residual { .. } => {
                        let m = &measures[position];
                        (m.is_finite(), m.passes)
                    }
                    StoppingRule::RelativeObjective(tol) => {
                        let f = now[position];
                        let close = before
                            .as_ref()
                            .is_some_and(|b| (f - b[position]).abs() <= tol * b[position].abs());
                        (f.is_finite(), close)
                    }
                    StoppingRule::RelativeX(tol) => {
                        let (old, new) = (
                            column(x_before.as_deref().unwrap_or_default()),
                            column(&x_now),
                        );
                        let change = column_norms(
                            &old.iter().zip(&new).map(|(a, b)| b - a).collect::<Vec<_>>(),
                            dims.n,
                            1,
                        )[0];
                        let scale = column_norms(&old, dims.n, 1)[0];
                        (change.is_finite(), change <= tol * scale.max(1.0))
                    }
                    StoppingRule::Fixed(_) => (true, false),
                };
                if !finite {
                    done.push((position, Status::NumericalError));
                    continue;
                }
                if polishing {
                    let mask = mask_bits(&slacks[position]);
                    let schedule = &mut schedules[position];
                    if schedule.due_or_converged(mask, iterations, converged) {
                        due.push(position);
                        continue;
                    }
                }
                if converged {
                    done.push((position, Status::Solved));
                } else if iterations == limit {
                    done.push((position, out_of_iterations));
                }
            }
            if !due.is_empty() {
                for &position in &due {
                    let data = select_params(be, &sub, &[position])?;
                    let found = stepper.polish(position, &data)?;
                    schedules[position].record(found.is_some());
                    match found {
                        Some(polished) => {
                            finished.record_column(
                                be,
                                &polished.iterate,
                                active[position],
                                Status::Solved,
                                iterations,
                            )?;
                            polished_now.push(position);
                        }
                        None => {
                            let m = measures.get(position);
                            if m.is_some_and(|m| m.passes) {
                                done.push((position, Status::Solved));
                            } else if iterations == limit {
                                done.push((position, out_of_iterations));
                            }
                        }
                    }
                }
            }
            if done.is_empty() && polished_now.is_empty() {
                continue;
            }
            if !done.is_empty() {
                finished.record(be, &stepper.iterate()?, &active, &done, iterations)?;
            }
            let keep: Vec<usize> = (0..active.len())
                .filter(|position| {
                    done.iter().all(|(d, _)| d != position) && !polished_now.contains(position)
                })
                .collect();
            active = keep.iter().map(|&position| active[position]).collect();
            schedules = keep
                .iter()
                .map(|&position| schedules[position].clone())
                .collect();
            if active.is_empty() {
                break;
            }
            sub = select_params(be, &sub, &keep)?;
            stepper.keep(&keep, &sub)?;
        }
        let it = stepper.iterate()?;
        // a fixed count (or a limit without checks) ends every element still in the block;
        // with the polish, each gets a last try on its final mask
        let mut rest = Vec::new();
        let slacks = if polishing {
            stepper.slacks()?
        } else {
            Vec::new()
        };
        for position in 0..active.len() {
            let tried = polishing && {
                let mask = mask_bits(&slacks[position]);
                match schedules[position].untried(mask) {
                    true => {
                        let data = select_params(be, &sub, &[position])?;
                        match stepper.polish(position, &data)? {
                            Some(polished) => {
                                finished.record_column(
                                    be,
                                    &polished.iterate,
                                    active[position],
                                    Status::Solved,
                                    iterations,
                                )?;
                                true
                            }
                            None => false,
                        }
                    }
                    false => false,
                }
            };
            if !tried {
                rest.push((position, out_of_iterations));
            }
        }
        finished.record(be, &it, &active, &rest, iterations)?;
        Ok(finished)
    }

    /// The iteration of a batch: in the dual space (see [`dual`](super::dual)) when the
    /// settings ask for it or, by default, when `p + m <= n` (then a step costs
    /// `O((p + m)^2 k)` instead of `O(n^2 k)`: the same iterates) and the factorization is
    /// not coarse ([`LinAlg::factor_epsilon`]), in the primal space otherwise.
    fn stepper(&self, params: &QpParams<B>) -> Result<Stepper<'_, B>> {
        let (be, dims) = (&self.backend, self.dims);
        let k = be.shape(&params.q).1;
        let alpha = B::Real::of(self.settings.alpha);
        let r = dims.p + dims.m;
        let dual = self.sigma == B::Real::zero()
            && match self.settings.iteration {
                crate::IterationSpace::Primal => false,
                crate::IterationSpace::Dual => true,
                // a coarse factorization iterates a nearby problem in the dual space; in the
                // primal space each x-update is refined
                crate::IterationSpace::Auto => {
                    r > 0 && r <= dims.n && be.dense_dual_space() && !self.refines()
                }
            };
        if dual {
            let kernel = DualKernel {
                backend: be,
                ops: self.dual_ops()?,
                factor: &self.factor,
                rho: self.rho,
                alpha,
            };
            let affine = self.affine(params)?;
            let data = kernel.data(&affine.c, &params.b, &params.h)?;
            let host = kernel.host_data(&params.q, true, &data.bh)?;
            let blk = DualBlock::from_iterate(be, &self.cold_start(params, &[])?.0)?;
            return Ok(Stepper::Dual {
                kernel,
                blk,
                data,
                host,
                solver: self,
            });
        }
        Ok(Stepper::Primal {
            kernel: Kernel {
                backend: be,
                a: &self.a,
                g: &self.g,
                factor: &self.factor,
                rho: self.rho,
                sigma: self.sigma,
                alpha,
                refine_with: self.refines().then_some(&self.p),
            },
            it: self.cold_start(params, &[])?.0,
            ws: Workspace::new(be, dims, k)?,
            data: self.affine(params)?,
            solver: self,
        })
    }

    /// `J'g` for every element of a batch: `g` (n x k) holds one seed `dloss/dx_j` per
    /// column. The returned [`Grads`] has `q` (n x k), `b` (p x k), `h` (m x k), column `j`
    /// element `j`'s own gradients, and `P`, `A`, `G` summed over the elements (they are
    /// shared: the gradient of a loss over the whole batch).
    ///
    /// Modes: [`VjpMode::Implicit`] runs the reverse iteration for the whole batch as one
    /// block, each column with its element's mask; [`VjpMode::Limit`] solves each element's
    /// limit system directly (the same fixed point: the solves with `H` and the products
    /// for the whole block, one factorization of blocks of `M = C H^-1 C'`, at most `p + m`
    /// rows, per element); [`VjpMode::Kkt`] factors each element's reduced KKT system (an
    /// element whose active set is degenerate falls back to the implicit adjoint in both). The other modes need per-solve state and are a
    /// [`Error::Request`]. Elements without a usable solution (rejected data,
    /// [`Status::NumericalError`]) get zero gradients and add nothing to the sums.
    ///
    /// # Errors
    /// [`Error::Dimension`] / [`Error::NonFinite`] for a bad `g`, [`Error::Request`] for an
    /// unsupported mode, or a backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{AltDiff, LinAlg, Qp, Settings, VjpMode, testing::{RefBackend, tiny_qp}};
    /// let be = RefBackend;
    /// let qp = Qp::from_host(&be, &tiny_qp())?;
    /// let solver = AltDiff::new(be, &qp, Settings::default())?;
    /// let sol = solver.solve_batch(qp.params())?;
    /// let g = be.mat_from_col_major(3, 1, &[1.0, 0.0, 0.0])?;
    /// let grads = solver.vjp_batch(&sol, &g, VjpMode::Kkt)?;
    /// assert!((be.to_col_major(&grads.b)?[0] - 3.0 / 7.0).abs() < 1e-4); // d x_0 / d b
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn vjp_batch(
        &self,
        solution: &BatchSolution<B>,
        g: &B::Mat,
        mode: VjpMode,
    ) -> Result<Grads<B>> {
        let (be, dims, k) = (&self.backend, self.dims, solution.len());
        crate::problem::check_block(be, Field::Seed, g, (dims.n, k))?;
        if !matches!(mode, VjpMode::Implicit | VjpMode::Kkt | VjpMode::Limit) {
            return Err(Error::Request(
                "a batch VJP is VjpMode::Implicit, VjpMode::Limit or VjpMode::Kkt",
            ));
        }
        let usable: Vec<bool> = (0..k).map(|j| solution.usable(j)).collect();
        let zero_unusable = |m: &B::Mat| -> Result<B::Mat> {
            let rows = be.shape(m).0;
            let mut columns = host_columns(be, m)?;
            for (column, ok) in columns.iter_mut().zip(&usable) {
                if !ok {
                    column.fill(B::Real::zero());
                }
            }
            from_columns(be, rows, &columns)
        };
        let it = solution.inner.as_ref().unwrap_or(&solution.iterate);
        let point = [&it.x, &it.lam, &it.nu].map(zero_unusable);
        let [x, lam, nu] = point;
        let (x, lam, nu) = (x?, lam?, nu?);
        let seed = zero_unusable(g)?;
        let seed = match &self.scaling {
            Some(s) => s.seed(be, &seed)?,
            None => seed,
        };
        let (q, b, h) = match mode {
            VjpMode::Kkt => self.kkt_adjoints(&it.s, &seed, &usable)?,
            // without a dense dual space (sparse backends) the limit is iterated instead
            // (the dual space has no proximal term)
            VjpMode::Limit
                if self.sigma == B::Real::zero()
                    && (self.dual.is_some() || be.dense_dual_space()) =>
            {
                self.limit_adjoints(&it.s, &seed, &usable)?
            }
            _ => self.implicit_adjoint(&self.batch_mask(&it.s)?, &seed)?,
        };
        let [p, a, gm] = closed_forms(
            be,
            [&self.p, &self.a, &self.g],
            [&x, &lam, &nu],
            [&q, &b, &h],
        )?;
        let grads = Grads {
            q,
            b,
            h,
            p: Some(p),
            a: Some(a),
            g: Some(gm),
        };
        match &self.scaling {
            Some(s) => s.grads(be, grads),
            None => Ok(grads),
        }
    }

    /// The masks `1[s > 0]` of every column of `s` (m x k).
    fn batch_mask(&self, s: &B::Mat) -> Result<B::Mat> {
        let be = &self.backend;
        let keeps: Vec<B::Real> = be
            .to_col_major(s)?
            .into_iter()
            .map(|v| {
                if crate::kernels::keeps(v) {
                    B::Real::one()
                } else {
                    B::Real::zero()
                }
            })
            .collect();
        let (m, k) = be.shape(s);
        be.mat_from_col_major(m, k, &keeps)
    }

    /// The KKT adjoints `(J_q'g, J_b'g, J_h'g)` of every usable column, one reduced KKT
    /// system per element; degenerate elements by the implicit adjoint.
    fn kkt_adjoints(
        &self,
        s: &B::Mat,
        seed: &B::Mat,
        usable: &[bool],
    ) -> Result<(B::Mat, B::Mat, B::Mat)> {
        let (be, dims) = (&self.backend, self.dims);
        let (s_cols, g_cols) = (host_columns(be, s)?, host_columns(be, seed)?);
        let k = g_cols.len();
        let zero = |rows: usize| vec![vec![B::Real::zero(); rows]; k];
        let (mut q, mut b, mut h) = (zero(dims.n), zero(dims.p), zero(dims.m));
        let mut degenerate = Vec::new();
        for j in (0..k).filter(|&j| usable[j]) {
            let kkt = match self.kkt_system_at(&s_cols[j]) {
                Ok(kkt) => kkt,
                Err(Error::SingularKkt { .. }) => {
                    degenerate.push(j);
                    continue;
                }
                Err(other) => return Err(other),
            };
            let minus_g: Vec<B::Real> = g_cols[j].iter().map(|v| -*v).collect();
            let minus_g = be.mat_from_col_major(dims.n, 1, &minus_g)?;
            let r = dims.p + kkt.active().len();
            let (u, v) = kkt.solve(be, &minus_g, &be.zeros(r, 1)?)?;
            let (bj, hj) = kkt.split(be, &v, dims)?;
            q[j] = be.to_col_major(&u)?.into_iter().map(|v| -v).collect();
            b[j] = be.to_col_major(&bj)?;
            h[j] = be.to_col_major(&hj)?;
        }
        let blocks = (
            from_columns(be, dims.n, &q)?,
            from_columns(be, dims.p, &b)?,
            from_columns(be, dims.m, &h)?,
        );
        self.patch_implicit(s, seed, &degenerate, blocks)
    }

    /// The columns `degenerate` of the adjoints `(q, b, h)` replaced by the implicit
    /// adjoint (for elements whose active set is degenerate).
    fn patch_implicit(
        &self,
        s: &B::Mat,
        seed: &B::Mat,
        degenerate: &[usize],
        blocks: (B::Mat, B::Mat, B::Mat),
    ) -> Result<(B::Mat, B::Mat, B::Mat)> {
        if degenerate.is_empty() {
            return Ok(blocks);
        }
        let be = &self.backend;
        let mask = select_columns(be, &self.batch_mask(s)?, degenerate)?;
        let g = select_columns(be, seed, degenerate)?;
        let (dq, db, dh) = self.implicit_adjoint(&mask, &g)?;
        replace_columns(be, blocks, degenerate, (dq, db, dh))
    }

    /// The dual-space operators (`C`, `M = C H^-1 C'`): the solver's own, or formed once
    /// from the setup's factor on the first polish or batch VJP that needs them.
    pub(super) fn dual_ops(&self) -> Result<&DualOps<B>> {
        if let Some(dual) = self.dual.as_ref().or_else(|| self.lazy_dual.get()) {
            return Ok(dual);
        }
        let dual = DualOps::new(
            &self.backend,
            &self.a,
            &self.g,
            &self.factor,
            self.dims,
            false,
            false,
        )?;
        Ok(self.lazy_dual.get_or_init(|| dual))
    }

    /// The adjoints `(J_q'g, J_b'g, J_h'g)` of every usable column from the limit system of
    /// its mask (see [`VjpMode::Limit`]): the solves with `H` and the products with `C` for
    /// the whole block, one factorization of blocks of `M` (at most `p + m` rows) per
    /// element; degenerate elements by the implicit adjoint.
    fn limit_adjoints(
        &self,
        s: &B::Mat,
        seed: &B::Mat,
        usable: &[bool],
    ) -> Result<(B::Mat, B::Mat, B::Mat)> {
        let (be, dims) = (&self.backend, self.dims);
        let zero = B::Real::zero();
        let dual = self.dual_ops()?;
        let (r, k) = (dims.p + dims.m, usable.len());
        // C H^-1 g for the whole block, and its intermediate t for H^-1 (g - C'w)
        let (cz, t) = be.solve_split(&self.factor, &dual.c, seed)?;
        let (cz, s_columns) = (host_columns(be, &cz)?, host_columns(be, s)?);
        let mut w = vec![vec![zero; r]; k];
        let mut degenerate = Vec::new();
        // with a coarse factorization, each element's adjoints refined with its own system
        let mut refined = Vec::new();
        let mut refined_columns: [Vec<Vec<B::Real>>; 3] = Default::default();
        for j in (0..k).filter(|&j| usable[j]) {
            let mut stacked = vec![zero; dims.p];
            stacked.extend_from_slice(&s_columns[j]);
            match Limit::new(be, dual, &stacked, dims.p, self.rho, false) {
                Ok(system) => {
                    let u = be.mat_from_col_major(r, 1, &cz[j])?;
                    let w_j = system.solve(be, &u)?;
                    if self.refines() {
                        let g_j = select_columns(be, seed, &[j])?;
                        let t_j = select_columns(be, &t, &[j])?;
                        let zeta = be.solve_join(&self.factor, &dual.c, t_j, &w_j)?;
                        refined.push(j);
                        let (q, b, h) = self.refine_grads(dual, &system, &g_j, (zeta, &w_j))?;
                        for (columns, block) in refined_columns.iter_mut().zip([&q, &b, &h]) {
                            columns.push(be.to_col_major(block)?);
                        }
                    }
                    w[j] = be.to_col_major(&w_j)?;
                }
                Err(Error::SingularKkt { .. }) => degenerate.push(j),
                Err(other) => return Err(other),
            }
        }
        let w = from_columns(be, r, &w)?;
        let mut grads = self.limit_grads(dual, t, &w)?;
        if !refined.is_empty() {
            let [q, b, h] = &refined_columns;
            let with = (
                from_columns(be, dims.n, q)?,
                from_columns(be, dims.p, b)?,
                from_columns(be, dims.m, h)?,
            );
            grads = replace_columns(be, grads, &refined, with)?;
        }
        // a degenerate element's seed went through with w = 0: replaced
        self.patch_implicit(s, seed, &degenerate, grads)
    }

    /// Solves problems with their own `P`, `A`, `G` one after the other (one factorization
    /// each), so that a batch never has to be padded to a common structure. Each element
    /// gets its own solver (for its VJPs) or its own error: one bad element (say a
    /// non-convex `P`) does not stop the others.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{AltDiff, Qp, QpProblem, Settings, testing::{RefBackend, tiny_qp}};
    /// let qp = Qp::from_host(&RefBackend, &tiny_qp())?;
    /// let results = AltDiff::solve_each(&RefBackend, [(&qp, qp.params())], &Settings::default());
    /// let (_solver, sol) = results[0].as_ref().unwrap();
    /// assert!(sol.status().is_solved());
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn solve_each<'p, P: QpProblem<B> + 'p>(
        backend: &B,
        elements: impl IntoIterator<Item = (&'p P, &'p QpParams<B>)>,
        settings: &Settings,
    ) -> Vec<Result<(Self, crate::Solution<B>)>> {
        elements
            .into_iter()
            .map(|(problem, params)| {
                let solver = Self::new(backend.clone(), problem, settings.clone())?;
                let solution = solver.solve(params)?;
                Ok((solver, solution))
            })
            .collect()
    }
}
