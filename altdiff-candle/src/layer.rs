//! [`QpLayer`]: a quadratic program as a layer of a candle network, differentiable in
//! candle's autograd.
//!
//! ## How the gradient gets into autograd
//!
//! The layer is a candle `CustomOp3` on `(q, b, h)` whose backward pass is altdiff's batched
//! reverse mode ([`AltDiff::vjp_batch`]): `loss.backward()` hands it `dloss/dx` (B x n) and
//! gets `J_q'g`, `J_b'g`, `J_h'g` back, one row per element, without any Jacobian formed. The
//! solve itself runs before the op is applied, as tensor work on the inputs' device (the
//! candle backend iterates there; see the crate docs), and the op's forward only hands the
//! finished `x` to the graph (`cpu_fwd` and `cuda_fwd` both clone its storage), so the same
//! code serves every device. The alternatives were worse: the "linearisation trick"
//! (`x* + (theta - theta.detach()) J'`) needs the Jacobians (`B n^2` numbers, and `O(n^3)`
//! work per element), and a `cpu_fwd` that solves inside the op would tie the layer to the
//! host.
//!
//! When `P`, `A` or `G` are tracked by autograd (a `Var`, or computed from one), a second op
//! on `(P, A, G)` adds a zero to the output and, in its backward pass, returns the gradients
//! of the matrices (summed over the batch, `P`'s symmetric) from the same VJP, which is
//! computed once per backward pass and shared by the two ops.

use std::sync::{Arc, Mutex};

use altdiff_core::{
    AltDiff, BatchSolution, Field, Grads, HostMatrix, HostQp, Qp, QpDims, QpParams, Settings,
    VjpMode,
};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CudaStorage, CustomOp3, DType, Layout, Shape, Storage, Tensor};

use crate::CandleBackend;

/// How one forward pass of a [`QpLayer`] went.
///
/// # Example
/// See [`QpLayer::last_report`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LayerReport {
    /// The batch size.
    pub batch: usize,
    /// How many elements met the stopping rule.
    pub solved: usize,
    /// The mean iteration count over the batch.
    pub mean_iterations: f64,
}

/// A quadratic program `min 1/2 x'Px + q'x s.t. Ax = b, Gx <= h` as a candle layer: inputs
/// `q` (B x n), `b` (B x p), `h` (B x m), output the solutions `x` (B x n), one row per
/// element, differentiable wrt `q`, `b`, `h` and, when they are tracked, `P`, `A`, `G`.
///
/// `P`, `A`, `G` are read when the layer is built and `H = P + rho (A'A + G'G)` is factored
/// once then (on the host, in `f64`); every batch is solved in `f64` on the inputs' device
/// with that one factorization, and the output has the dtype of `q`. For learnable matrices
/// build a new layer from their current values at every step (the factorization has to be
/// redone anyway when they change).
///
/// The backward pass is [`VjpMode::Limit`] (the adjoint of the limit of the Alt-Diff
/// recursion at the solution's active set, exact there; the default), [`VjpMode::Implicit`]
/// (the same fixed point by GMRES) or [`VjpMode::Kkt`] (the KKT method, for comparison): see
/// [`QpLayer::with_vjp_mode`].
///
/// # Example
/// ```
/// use altdiff_candle::QpLayer;
/// use altdiff_core::Settings;
/// use candle_core::{Device, Tensor, Var};
///
/// let dev = Device::Cpu;
/// // min 1/2 |x|^2 + q'x  s.t.  x_0 + x_1 = 1,  x >= 0
/// let p = Tensor::new(&[[1.0f64, 0.0], [0.0, 1.0]], &dev)?;
/// let a = Tensor::new(&[[1.0f64, 1.0]], &dev)?;
/// let g = Tensor::new(&[[-1.0f64, 0.0], [0.0, -1.0]], &dev)?;
/// let layer = QpLayer::new(&p, &a, &g, Settings::default())?;
/// let q = Var::new(&[[0.0f64, 0.0], [0.0, 4.0]], &dev)?;      // two elements
/// let b = Tensor::new(&[[1.0f64], [1.0]], &dev)?;
/// let h = Tensor::zeros((2, 2), candle_core::DType::F64, &dev)?;
/// let x = layer.forward(q.as_tensor(), &b, &h)?;
/// let x = x.to_vec2::<f64>()?;
/// assert!((x[0][0] - 0.5).abs() < 1e-4 && (x[1][0] - 1.0).abs() < 1e-4);
/// // d x_00 / d q_00 = -1/2 (the first element has both coordinates free)
/// let xs = layer.forward(q.as_tensor(), &b, &h)?;
/// let grads = xs.narrow(0, 0, 1)?.narrow(1, 0, 1)?.sum_all()?.backward()?;
/// let dq = grads.get(q.as_tensor()).unwrap().to_vec2::<f64>()?;
/// assert!((dq[0][0] + 0.5).abs() < 1e-4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct QpLayer {
    solver: Arc<AltDiff<CandleBackend<f64>>>,
    matrices: [Tensor; 3],
    mode: VjpMode,
    last: Mutex<Option<LayerReport>>,
}

/// `t` as a host matrix of `f64`.
fn host_matrix(t: &Tensor, field: Field) -> candle_core::Result<HostMatrix> {
    let rows = t.detach().to_dtype(DType::F64)?.to_vec2::<f64>()?;
    let (r, c) = t.dims2()?;
    if r == 0 {
        return HostMatrix::from_col_major(field, 0, c, Vec::new())
            .map_err(candle_core::Error::wrap);
    }
    HostMatrix::from_rows(field, &rows).map_err(candle_core::Error::wrap)
}

impl QpLayer {
    /// The layer for `P` (n x n), `A` (p x n, p may be 0), `G` (m x n): validates them
    /// (shapes, finiteness, symmetry and convexity of `P`) and factors `H` once.
    ///
    /// # Errors
    /// The typed errors of [`Qp::from_host`] and [`AltDiff::new`] (wrapped in a candle error),
    /// or a candle error.
    pub fn new(
        p: &Tensor,
        a: &Tensor,
        g: &Tensor,
        settings: Settings,
    ) -> candle_core::Result<Self> {
        let backend = CandleBackend::<f64>::new(p.device().clone());
        let (p_host, a_host, g_host) = (
            host_matrix(p, Field::P)?,
            host_matrix(a, Field::A)?,
            host_matrix(g, Field::G)?,
        );
        let host = HostQp {
            q: vec![0.0; p_host.ncols()],
            b: vec![0.0; a_host.nrows()],
            h: vec![0.0; g_host.nrows()],
            p: p_host,
            a: a_host,
            g: g_host,
        };
        let qp = Qp::from_host(&backend, &host).map_err(candle_core::Error::wrap)?;
        let solver = AltDiff::new(backend, &qp, settings).map_err(candle_core::Error::wrap)?;
        Ok(Self {
            solver: Arc::new(solver),
            matrices: [p.clone(), a.clone(), g.clone()],
            mode: VjpMode::default(),
            last: Mutex::new(None),
        })
    }

    /// The backward pass: [`VjpMode::Limit`] (the default: exact at the solution's active
    /// set, the fastest exact mode), [`VjpMode::Implicit`] or [`VjpMode::Kkt`]; the unrolled
    /// mode makes `backward` fail.
    pub fn with_vjp_mode(mut self, mode: VjpMode) -> Self {
        self.mode = mode;
        self
    }

    /// The sizes `n`, `p`, `m`.
    pub fn dims(&self) -> QpDims {
        self.solver.dims()
    }

    /// The solver (its settings, its backend).
    pub fn solver(&self) -> &AltDiff<CandleBackend<f64>> {
        &self.solver
    }

    /// How the last [`QpLayer::forward`] went (`None` before the first).
    ///
    /// # Example
    /// ```
    /// use altdiff_candle::QpLayer;
    /// use candle_core::{DType, Device, Tensor};
    /// let dev = Device::Cpu;
    /// let p = Tensor::eye(2, DType::F64, &dev)?;
    /// let none = Tensor::zeros((0, 2), DType::F64, &dev)?;
    /// let layer = QpLayer::new(&p, &none, &none, Default::default())?;
    /// let q = Tensor::ones((4, 2), DType::F32, &dev)?;
    /// let empty = Tensor::zeros((4, 0), DType::F32, &dev)?;
    /// let x = layer.forward(&q, &empty, &empty)?;                 // x = -q
    /// assert_eq!(x.dtype(), DType::F32);
    /// let report = layer.last_report().unwrap();
    /// assert_eq!((report.batch, report.solved), (4, 4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_report(&self) -> Option<LayerReport> {
        self.last.lock().ok().and_then(|r| r.clone())
    }

    /// Solves the batch: `q` (B x n), `b` (B x p), `h` (B x m) give `x` (B x n), in `q`'s
    /// dtype, tracked by autograd when any input (or `P`, `A`, `G`) is.
    ///
    /// An element that does not converge within the settings' `max_iter` still gives its
    /// last iterate (and its truncated-Alt-Diff gradient); see [`QpLayer::last_report`].
    ///
    /// # Errors
    /// A shape mismatch (naming the input and the shapes), a non-finite input (naming the
    /// element), or a candle error.
    pub fn forward(&self, q: &Tensor, b: &Tensor, h: &Tensor) -> candle_core::Result<Tensor> {
        let dims = self.dims();
        let batch = q.dims2()?.0;
        for (name, t, cols) in [("q", q, dims.n), ("b", b, dims.p), ("h", h, dims.m)] {
            if t.dims() != [batch, cols] {
                candle_core::bail!(
                    "QpLayer input {name}: expected shape ({batch}, {cols}), got {:?}",
                    t.dims()
                );
            }
        }
        // detached: the iterations must not enter the autograd graph
        let block = |t: &Tensor| t.detach().to_dtype(DType::F64)?.t()?.contiguous();
        let params = QpParams {
            q: block(q)?,
            b: block(b)?,
            h: block(h)?,
        };
        let solution = self
            .solver
            .solve_batch(&params)
            .map_err(candle_core::Error::wrap)?;
        if let Some((j, err)) = (0..solution.len()).find_map(|j| solution.error(j).map(|e| (j, e)))
        {
            candle_core::bail!("QpLayer element {j}: {err}");
        }
        self.record(&solution);
        let x = solution.x().t()?.contiguous()?.to_dtype(q.dtype())?;
        let matrices_tracked = self.matrices.iter().any(Tensor::track_op);
        let state = Arc::new(State {
            solver: self.solver.clone(),
            solution,
            mode: self.mode,
            x,
            shared: matrices_tracked,
            grads: Mutex::new(None),
        });
        let out = q.apply_op3(b, h, SolveOp(state.clone()))?;
        if !matrices_tracked {
            return Ok(out);
        }
        let [p, a, g] = &self.matrices;
        let zero = p.apply_op3(a, g, MatrixOp(state))?;
        let zero = zero.to_dtype(out.dtype())?;
        out + zero
    }

    fn record(&self, solution: &BatchSolution<CandleBackend<f64>>) {
        let report = LayerReport {
            batch: solution.len(),
            solved: (0..solution.len())
                .filter(|&j| solution.element(j).is_some_and(|e| e.status.is_solved()))
                .count(),
            mean_iterations: solution.mean_iterations(),
        };
        if let Ok(mut last) = self.last.lock() {
            *last = Some(report);
        }
    }
}

/// What a forward pass leaves for its backward pass.
struct State {
    solver: Arc<AltDiff<CandleBackend<f64>>>,
    solution: BatchSolution<CandleBackend<f64>>,
    mode: VjpMode,
    /// The output `x` (B x n), contiguous, in the output dtype.
    x: Tensor,
    /// Whether the matrices' op is in the graph too (then the two ops share one VJP).
    shared: bool,
    /// The VJP of the current backward pass, shared by the two ops.
    grads: Mutex<Option<Grads<CandleBackend<f64>>>>,
}

impl State {
    /// The VJP for the seed `grad_res` (B x n). With both ops in the graph, the first one
    /// to ask computes it and leaves it for the second, which takes it.
    fn grads(&self, grad_res: &Tensor) -> candle_core::Result<Grads<CandleBackend<f64>>> {
        let mut slot = self
            .grads
            .lock()
            .map_err(|_| candle_core::Error::Msg("QpLayer: poisoned gradient cache".into()))?;
        if let Some(grads) = slot.take() {
            return Ok(grads);
        }
        let g = grad_res.detach().to_dtype(DType::F64)?.t()?.contiguous()?;
        let grads = self
            .solver
            .vjp_batch(&self.solution, &g, self.mode)
            .map_err(candle_core::Error::wrap)?;
        if self.shared {
            *slot = Some(grads.clone());
        }
        Ok(grads)
    }
}

/// A copy of a contiguous tensor's storage, for an op's forward pass.
fn storage_of(t: &Tensor) -> candle_core::Result<(Storage, Shape)> {
    let (storage, layout) = t.storage_and_layout();
    let copy = match &*storage {
        Storage::Cpu(s) => Storage::Cpu(s.try_clone(layout)?),
        Storage::Cuda(s) => Storage::Cuda(s.try_clone(layout)?),
        Storage::Metal(_) => candle_core::bail!("QpLayer: Metal is not supported"),
    };
    Ok((copy, t.shape().clone()))
}

/// The CPU storage of `t`.
fn cpu_storage(t: &Tensor) -> candle_core::Result<(CpuStorage, Shape)> {
    match storage_of(t)? {
        (Storage::Cpu(s), shape) => Ok((s, shape)),
        _ => candle_core::bail!("QpLayer: the output is not on the CPU"),
    }
}

/// The CUDA storage of `t`.
fn cuda_storage(t: &Tensor) -> candle_core::Result<(CudaStorage, Shape)> {
    match storage_of(t)? {
        (Storage::Cuda(s), shape) => Ok((s, shape)),
        _ => candle_core::bail!("QpLayer: the output is not on the CUDA device"),
    }
}

/// `block` (rows x B, f64) as a (B x rows) tensor of `dtype`.
fn rows_of(block: &Tensor, dtype: DType) -> candle_core::Result<Tensor> {
    block.t()?.contiguous()?.to_dtype(dtype)
}

/// The op on `(q, b, h)`: forward `x`, backward the batched VJP.
struct SolveOp(Arc<State>);

impl CustomOp3 for SolveOp {
    fn name(&self) -> &'static str {
        "altdiff-qp-layer"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu_storage(&self.0.x)
    }

    fn cuda_fwd(
        &self,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        cuda_storage(&self.0.x)
    }

    fn bwd(
        &self,
        q: &Tensor,
        b: &Tensor,
        h: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grads = self.0.grads(grad_res)?;
        Ok((
            Some(rows_of(&grads.q, q.dtype())?),
            Some(rows_of(&grads.b, b.dtype())?),
            Some(rows_of(&grads.h, h.dtype())?),
        ))
    }
}

/// The op on `(P, A, G)`: forward zero (B x n), backward the matrices' gradients.
struct MatrixOp(Arc<State>);

impl CustomOp3 for MatrixOp {
    fn name(&self) -> &'static str {
        "altdiff-qp-layer-matrices"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu_storage(&self.0.x.zeros_like()?)
    }

    fn cuda_fwd(
        &self,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        cuda_storage(&self.0.x.zeros_like()?)
    }

    fn bwd(
        &self,
        p: &Tensor,
        a: &Tensor,
        g: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grads = self.0.grads(grad_res)?;
        let matrix = |m: &Option<Tensor>, like: &Tensor| -> candle_core::Result<Option<Tensor>> {
            m.as_ref().map(|m| m.to_dtype(like.dtype())).transpose()
        };
        Ok((
            matrix(&grads.p, p)?,
            matrix(&grads.a, a)?,
            matrix(&grads.g, g)?,
        ))
    }
}
