//! The dual-space iteration: the same ADMM and Alt-Diff map, run on the stacked duals.
//!
//! With `C = [A; G]` (`r = p + m` rows), `K = H^-1 C'` and `M = C H^-1 C'` (`r x r`, formed
//! once per solver), the x-update `x = -H^-1 (c + C'v)` with `v = [lam - rho b; nu + rho
//! (s - h)]` and `c = q` is only ever needed through `Cx = -C H^-1 c - M v`. So each
//! iteration, for the solution and for every tangent block alike, works on `r`-row blocks:
//!
//! ```text
//! v  = y + rho (s - [b; h])   y = [lam; nu], s = [0; s] (the first p rows stay 0)
//! Cx = -C H^-1 c - M v
//! s  = max(0, -y/rho - Cx + [b; h])        (tangents: the forward mask, strict)
//! y  = y + rho (Cx + s - [b; h])
//! ```
//!
//! and `x = -H^-1 (c + C'v)` is formed once at the end. An iteration costs `O(r^2 k)`
//! instead of `O(n^2 k + n r k)`, a large saving when `r` is below `n` (the paper's grid has
//! `r = 0.7 n`). The bounds enter `v` row by row (see [`iteration`](super::iteration)): a
//! loose bound never reaches `C H^-1 c` or a product with `M`.

use num_traits::{One, Zero};

use crate::solver::iteration::Iterate;
use crate::solver::termination::{Column, Criterion, Units};
use crate::{Accum, Error, LinAlg, QpDims, Real, Result, Trans};

/// The operators of the dual-space iteration, formed once per solver.
#[derive(Debug)]
pub(crate) struct DualOps<B: LinAlg> {
    /// `C = [A; G]`.
    pub c: B::Op,
    /// `M = C H^-1 C'`.
    pub m: B::Op,
    /// `M` on the host, column-major (for the blocks of the limit system).
    pub m_host: Vec<B::Real>,
    /// `K = H^-1 C'` (n x r), when formed: then `x = -H^-1 c - K v`, a product instead of
    /// a solve (worth its `O(n^2 r)` when `x` is needed often or for many columns).
    pub k: Option<B::Op>,
    /// The half `W = L^-1 C'` of `K = L^-T W` (`H = L L'`), when kept
    /// ([`LinAlg::gram_inverse_with_half`]): for blocks whose `c` is `C' z`,
    /// `x = -K (v + z) = -L^-T (W (v + z))`.
    pub half: Option<B::Op>,
    /// `[0_p; 1_m]`: the rows that are slacks.
    pub slack_rows: B::Mat,
}

impl<B: LinAlg> DualOps<B> {
    /// Forms `C`, `M = C H^-1 C'` and, when `with_k`, `K` ([`LinAlg::gram_inverse`]), or
    /// else, when `keep_half` and the backend keeps one, the half of `K`
    /// ([`LinAlg::gram_inverse_with_half`]).
    pub fn new(
        backend: &B,
        a: &B::Op,
        g: &B::Op,
        factor: &B::Factor,
        dims: QpDims,
        with_k: bool,
        keep_half: bool,
    ) -> Result<Self> {
        let c = backend.op_stack_rows(a, g)?;
        let kept = if keep_half && !with_k {
            backend.gram_inverse_with_half(factor, &c)?
        } else {
            None
        };
        let (m, k, half) = match kept {
            Some((m, w)) => (m, None, Some(w)),
            None => {
                let (m, k) = backend.gram_inverse(factor, &c, with_k)?;
                (m, k, None)
            }
        };
        Self::from_parts(backend, c, m, k, half, dims)
    }

    /// Forms `C` and `M = C H^-1 C'`, and lets the factor keep what it formed `M` from
    /// ([`LinAlg::gram_inverse_keeping`]): the solves through `C` of the limit system
    /// ([`LinAlg::solve_split`]) then take fewer triangular solves and no products with `C`.
    pub fn keeping(
        backend: &B,
        a: &B::Op,
        g: &B::Op,
        factor: &mut B::Factor,
        dims: QpDims,
    ) -> Result<Self> {
        let c = backend.op_stack_rows(a, g)?;
        let m = backend.gram_inverse_keeping(factor, &c)?;
        Self::from_parts(backend, c, m, None, None, dims)
    }

    /// The operators from `C`, `M` and, when formed, `K` or the half of `K`.
    fn from_parts(
        backend: &B,
        c: B::Op,
        m: B::Mat,
        k: Option<B::Mat>,
        half: Option<B::Op>,
        dims: QpDims,
    ) -> Result<Self> {
        let (n, r) = (dims.n, dims.p + dims.m);
        let m_host = backend.to_col_major(&m)?;
        let m = backend.op_from_mat(m)?;
        let k = match k {
            Some(k) => Some(backend.op_from_col_major(n, r, &backend.to_col_major(&k)?)?),
            None => None,
        };
        let rows: Vec<B::Real> = (0..r)
            .map(|i| {
                if i < dims.p {
                    B::Real::zero()
                } else {
                    B::Real::one()
                }
            })
            .collect();
        Ok(Self {
            c,
            m,
            m_host,
            k,
            half,
            slack_rows: backend.mat_from_col_major(r, 1, &rows)?,
        })
    }
}

/// A block in the dual space: `y = [lam; nu]`, `s = [0; s]`, the last `v` and `Cx`, and the
/// relaxed `Cx` (when `alpha != 1`).
#[derive(Clone, Debug)]
pub(crate) struct DualBlock<B: LinAlg> {
    pub y: B::Mat,
    pub s: B::Mat,
    pub v: B::Mat,
    pub cx: B::Mat,
    pub cr: B::Mat,
}

/// The constant terms of a block: `C H^-1 c`, `[b; h]`, `c` itself and `H^-1 c` when known
/// (for `x`).
#[derive(Clone, Debug)]
pub(crate) struct DualData<B: LinAlg> {
    pub hc: Option<B::Mat>,
    /// The intermediate of `c`'s [`LinAlg::solve_split`] (when `chc` was formed by it).
    pub split: Option<B::Mat>,
    pub chc: B::Mat,
    pub bh: B::Mat,
    /// `c`, unless it is `C'z` (then `cz` is known and `c` is never formed).
    pub c: Option<B::Mat>,
    /// `z` with `c = C' z`, when known (the Jacobians wrt `b` and `h`).
    pub cz: Option<B::Mat>,
    /// The stacked rows whose identity `[b; h]` is (the Jacobians wrt `b` and `h`: then
    /// `c = -rho C_rows'` and `z = -rho [b; h]`).
    pub rows: Option<std::ops::Range<usize>>,
}

impl<B: LinAlg> DualData<B> {
    /// The columns `keep` (a batch's elements that go on).
    pub fn select(&self, backend: &B, keep: &[usize]) -> Result<Self> {
        let pick = |m: &B::Mat| select_columns(backend, m, keep);
        let maybe = |m: &Option<B::Mat>| m.as_ref().map(pick).transpose();
        Ok(Self {
            hc: maybe(&self.hc)?,
            split: maybe(&self.split)?,
            chc: pick(&self.chc)?,
            bh: pick(&self.bh)?,
            c: maybe(&self.c)?,
            cz: maybe(&self.cz)?,
            rows: self.rows.clone(),
        })
    }
}

/// The columns `keep` of a block (through the host).
pub(crate) fn select_columns<B: LinAlg>(backend: &B, m: &B::Mat, keep: &[usize]) -> Result<B::Mat> {
    let (rows, _) = backend.shape(m);
    let data = backend.to_col_major(m)?;
    let kept: Vec<B::Real> = keep
        .iter()
        .flat_map(|&j| data[j * rows..(j + 1) * rows].iter().copied())
        .collect();
    backend.mat_from_col_major(rows, keep.len(), &kept)
}

/// What the residuals of a block's columns need of its data, on the host (see
/// [`DualKernel::residuals`]).
#[derive(Clone, Debug)]
pub(crate) struct DualHost {
    /// Columns.
    pub k: usize,
    /// `[b; h]` (`r x k`, column-major).
    pub bh: Vec<f64>,
    /// `q` (`n x k`).
    pub q: Vec<f64>,
    /// For a solution block: `q'x = off - u'v` per column, with `z = H^-1 q`, `u = C z`
    /// (`r x k`) and `off = -c'z` (`k`).
    pub linear: Option<(Vec<f64>, Vec<f64>)>,
}

impl DualHost {
    /// The columns `keep` (a batch's elements that go on).
    pub fn select(&self, keep: &[usize]) -> Self {
        let pick = |v: &[f64], rows: usize| -> Vec<f64> {
            keep.iter()
                .flat_map(|&j| v[j * rows..(j + 1) * rows].iter().copied())
                .collect()
        };
        let k = self.k.max(1);
        let (r, n) = (self.bh.len() / k, self.q.len() / k);
        Self {
            k: keep.len(),
            bh: pick(&self.bh, r),
            q: pick(&self.q, n),
            linear: self
                .linear
                .as_ref()
                .map(|(off, u)| (pick(off, 1), pick(u, r))),
        }
    }
}

/// Stacks `top` (p x k) over `bottom` (m x k).
pub(crate) fn stack<B: LinAlg>(backend: &B, top: &B::Mat, bottom: &B::Mat) -> Result<B::Mat> {
    let ((p, k), (m, _)) = (backend.shape(top), backend.shape(bottom));
    let (t, b) = (backend.to_col_major(top)?, backend.to_col_major(bottom)?);
    let mut data = Vec::with_capacity((p + m) * k);
    for j in 0..k {
        data.extend_from_slice(&t[j * p..(j + 1) * p]);
        data.extend_from_slice(&b[j * m..(j + 1) * m]);
    }
    backend.mat_from_col_major(p + m, k, &data)
}

/// Splits a stacked block into its first `p` rows and the rest.
pub(crate) fn unstack<B: LinAlg>(
    backend: &B,
    stacked: &B::Mat,
    p: usize,
) -> Result<(B::Mat, B::Mat)> {
    let (r, k) = backend.shape(stacked);
    let v = backend.to_col_major(stacked)?;
    let (mut top, mut bottom) = (Vec::with_capacity(p * k), Vec::with_capacity((r - p) * k));
    for column in v.chunks_exact(r.max(1)) {
        top.extend_from_slice(&column[..p]);
        bottom.extend_from_slice(&column[p..]);
    }
    Ok((
        backend.mat_from_col_major(p, k, &top)?,
        backend.mat_from_col_major(r - p, k, &bottom)?,
    ))
}

impl<B: LinAlg> DualBlock<B> {
    /// The columns `keep` (a batch's elements that go on).
    pub fn select(&self, backend: &B, keep: &[usize]) -> Result<Self> {
        let pick = |m: &B::Mat| select_columns(backend, m, keep);
        Ok(Self {
            y: pick(&self.y)?,
            s: pick(&self.s)?,
            v: pick(&self.v)?,
            cx: pick(&self.cx)?,
            cr: pick(&self.cr)?,
        })
    }

    /// The block of a primal iterate (its `x` is not needed).
    pub fn from_iterate(backend: &B, it: &Iterate<B>) -> Result<Self> {
        let y = stack(backend, &it.lam, &it.nu)?;
        let zeros = backend.zeros(backend.shape(&it.lam).0, backend.shape(&it.lam).1)?;
        let s = stack(backend, &zeros, &it.s)?;
        let (v, cx, cr) = (y.clone(), y.clone(), y.clone());
        Ok(Self { y, s, v, cx, cr })
    }
}

/// The dual-space step and its measurements.
pub(crate) struct DualKernel<'a, B: LinAlg> {
    pub backend: &'a B,
    pub ops: &'a DualOps<B>,
    pub factor: &'a B::Factor,
    pub rho: B::Real,
    /// Over-relaxation (1 = none): `Cx` becomes `alpha Cx + (1 - alpha)([b; h] - s)`.
    pub alpha: B::Real,
}

impl<B: LinAlg> DualKernel<'_, B> {
    /// The constant terms for data `(c, b, h)` of `k` columns: `C H^-1 c` by
    /// [`LinAlg::solve_split`], whose intermediate finishes `x` ([`DualKernel::x_of`]), or,
    /// when `K` is formed, with `H^-1 c` itself (`x = -H^-1 c - K v`).
    pub fn data(&self, c: &B::Mat, b: &B::Mat, h: &B::Mat) -> Result<DualData<B>> {
        let be = self.backend;
        let (chc, hc, split) = if self.ops.k.is_some() {
            let mut hc = c.clone();
            be.solve_in_place(self.factor, &mut hc)?;
            let (r, k) = (be.op_shape(&self.ops.c).0, be.shape(c).1);
            let mut chc = be.zeros(r, k)?;
            be.apply(
                &mut chc,
                Accum::Replace,
                &self.ops.c,
                Trans::No,
                &hc,
                B::Real::one(),
            )?;
            (chc, Some(hc), None)
        } else {
            let (chc, t) = be.solve_split(self.factor, &self.ops.c, c)?;
            (chc, None, Some(t))
        };
        Ok(DualData {
            hc,
            split,
            chc,
            bh: stack(be, b, h)?,
            c: Some(c.clone()),
            cz: None,
            rows: None,
        })
    }

    /// The constant terms of the Jacobian wrt `b` (`rows = 0..p`) or `h` (`rows = p..r`):
    /// `c = 0` and `[b; h]` the identity on `rows`. No solve: `C H^-1 c = 0` and `x` is
    /// `-K v` ([`DualKernel::x_of`]).
    pub fn data_of_rows(&self, rows: std::ops::Range<usize>) -> Result<DualData<B>> {
        let be = self.backend;
        let r = be.op_shape(&self.ops.c).0;
        let d = rows.len();
        let mut bh = vec![B::Real::zero(); r * d];
        (0..d).for_each(|j| bh[j * r + rows.start + j] = B::Real::one());
        Ok(DualData {
            hc: None,
            split: None,
            chc: be.zeros(r, d)?,
            bh: be.mat_from_col_major(r, d, &bh)?,
            c: None,
            cz: Some(be.zeros(r, d)?),
            rows: Some(rows),
        })
    }

    /// The constant terms of the Jacobian wrt `q` (`c = I`, `[b; h] = 0`): `H^-1`
    /// ([`LinAlg::factor_inverse`]) and, when `K` is formed, `C H^-1 = K'` read off it instead of a
    /// product with `C` (`n^2 (p + m)` multiplications saved).
    pub fn data_of_q(&self) -> Result<DualData<B>> {
        let (be, one) = (self.backend, B::Real::one());
        let (r, n) = be.op_shape(&self.ops.c);
        let hc = be.factor_inverse(self.factor, n)?;
        // c = I is only needed for x without K (x_of)
        let c = match &self.ops.k {
            Some(_) => None,
            None => Some(crate::solver::tangent::identity(be, n)?),
        };
        let chc = match &self.ops.k {
            Some(k) => {
                // K is n x r, column-major; K' is r x n
                let kt = crate::kernels::transpose(&be.op_to_col_major(k)?, n);
                be.mat_from_col_major(r, n, &kt)?
            }
            None => {
                let mut chc = be.zeros(r, n)?;
                be.apply(&mut chc, Accum::Replace, &self.ops.c, Trans::No, &hc, one)?;
                chc
            }
        };
        Ok(DualData {
            hc: Some(hc),
            split: None,
            chc,
            bh: be.zeros(r, n)?,
            c,
            cz: None,
            rows: None,
        })
    }

    /// One iteration; `mask` is the forward block's new `s` for a tangent, `None` for the
    /// forward block itself (which is projected).
    pub fn step(
        &self,
        blk: &mut DualBlock<B>,
        data: &DualData<B>,
        mask: Option<&B::Mat>,
    ) -> Result<()> {
        let (be, one, zero, rho) = (self.backend, B::Real::one(), B::Real::zero(), self.rho);
        // v = y + rho (s - [b; h]): the bounds row by row
        be.lincomb(
            [(rho, &blk.s), (-rho, &data.bh), (one, &blk.y)],
            zero,
            &mut blk.v,
        )?;
        // Cx = -C H^-1 c - M v
        be.axpby(-one, &data.chc, zero, &mut blk.cx)?;
        be.apply_gram(
            self.factor,
            &self.ops.m,
            &mut blk.cx,
            Accum::Add,
            &blk.v,
            -one,
        )?;
        // the relaxed Cx, with the slack before the step
        let relaxed = self.alpha != one;
        if relaxed {
            be.lincomb([(one, &data.bh), (-one, &blk.s)], zero, &mut blk.cr)?;
            be.axpby(self.alpha, &blk.cx, one - self.alpha, &mut blk.cr)?;
        }
        let cr = if relaxed { &blk.cr } else { &blk.cx };
        // s = P(-y/rho - Cx + bh) (the forward block projected on its slack rows, a tangent
        // masked by the forward s), then y += rho (Cx + s - bh)
        let (mask, project) = match mask {
            None => (&self.ops.slack_rows, true),
            Some(forward_s) => (forward_s, false),
        };
        be.slack_dual_update(&mut blk.s, &mut blk.y, cr, &data.bh, mask, project, rho)
    }

    /// The host data of [`DualKernel::residuals`] for `q` (`linear`: a solution block, then
    /// `z = H^-1 q` is solved once) and `[b; h]`, `k` columns.
    pub fn host_data(&self, q: &B::Mat, linear: bool, bh: &B::Mat) -> Result<DualHost> {
        let be = self.backend;
        let down = |m: &B::Mat| crate::solver::tangent::download(be, m);
        let k = be.shape(q).1;
        let linear = match linear.then_some(q) {
            Some(c) => {
                let mut z = q.clone();
                be.solve_in_place(self.factor, &mut z)?;
                let mut u = be.zeros(be.op_shape(&self.ops.c).0, k)?;
                be.apply(
                    &mut u,
                    Accum::Replace,
                    &self.ops.c,
                    Trans::No,
                    &z,
                    B::Real::one(),
                )?;
                let (c, z) = (down(c)?, down(&z)?);
                let n = c.len() / k.max(1);
                let off = (0..k)
                    .map(|j| {
                        let col = j * n..(j + 1) * n;
                        -c[col.clone()]
                            .iter()
                            .zip(&z[col])
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                    })
                    .collect();
                Some((off, down(&u)?))
            }
            None => None,
        };
        Ok(DualHost {
            k,
            bh: down(bh)?,
            q: down(q)?,
            linear,
        })
    }

    /// Whether the primal rows of each column of a solution block pass
    /// ([`Criterion::primal_passes`]): `Cx` alone, no product with `C'`.
    pub fn primal_passes(
        &self,
        blk: &DualBlock<B>,
        host: &DualHost,
        criterion: &Criterion,
        units: &Units,
        p: usize,
    ) -> Result<Vec<bool>> {
        let cx = crate::solver::tangent::download(self.backend, &blk.cx)?;
        let r = cx.len() / host.k.max(1);
        Ok((0..host.k)
            .map(|j| {
                let rows = j * r..(j + 1) * r;
                criterion.primal_passes(&cx[rows.clone()], &host.bh[rows], p, units)
            })
            .collect())
    }

    /// `1/2 x'Px + q'x` of the `k` columns of a solution block (host data with `linear`)
    /// without forming `x`: `x'Px + q'x = -(Cx)'(v + rho Cx)` (see
    /// [`DualKernel::residuals`]) and `q'x = -q'z - u'v`.
    pub fn objectives(&self, blk: &DualBlock<B>, host: &DualHost) -> Result<Vec<f64>> {
        let be = self.backend;
        let down = |m: &B::Mat| crate::solver::tangent::download(be, m);
        let (r, k) = be.shape(&blk.v);
        let rho = self.rho.to_f64_lossy();
        let (cx, v) = (down(&blk.cx)?, down(&blk.v)?);
        let (off, u) = host
            .linear
            .as_ref()
            .ok_or(Error::Request("the objective needs the linear term"))?;
        Ok((0..k)
            .map(|j| {
                let rows = j * r..(j + 1) * r;
                let total: f64 = rows.clone().map(|i| -cx[i] * (v[i] + rho * cx[i])).sum();
                let qx = off[j] - rows.map(|i| u[i] * v[i]).sum::<f64>();
                0.5 * (total + qx)
            })
            .collect())
    }

    /// `judge` of every column of a block after a step (see
    /// [`termination`](super::termination)), without forming `x`: with `v` the step's `y + rho (s - [b; h])` and the
    /// stacked duals `y` (cleaned for a solution), `x = -H^-1 (q + C'v)` gives
    /// `Px + q + C'y = C'w` with `w = y - v - rho Cx`, so two products with `C'` give the
    /// dual residual, `Px` and `C'y`; `x'Px + q'x = (Cx)'(w - y)` and, for a solution,
    /// `q'x = -q'z - u'v` ([`DualKernel::host_data`]). `p` equalities lead.
    pub fn columns<T>(
        &self,
        blk: &DualBlock<B>,
        host: &DualHost,
        point: bool,
        p: usize,
        mut judge: impl FnMut(&Column<'_>) -> T,
    ) -> Result<Vec<T>> {
        let be = self.backend;
        let down = |m: &B::Mat| crate::solver::tangent::download(be, m);
        let (r, k) = be.shape(&blk.y);
        let n = be.op_shape(&self.ops.c).1;
        let rho = self.rho.to_f64_lossy();
        let (cx, s, mut y, v) = (down(&blk.cx)?, down(&blk.s)?, down(&blk.y)?, down(&blk.v)?);
        if point {
            // nu clipped at zero, and zero where the slack is positive
            for (i, e) in y.iter_mut().enumerate() {
                if i % r >= p {
                    *e = if s[i] > 0.0 { 0.0 } else { e.max(0.0) };
                }
            }
        }
        let w: Vec<f64> = (0..r * k).map(|i| y[i] - v[i] - rho * cx[i]).collect();
        let product = |u: &[f64]| -> Result<Vec<f64>> {
            let u: Vec<B::Real> = crate::problem::convert(u);
            let u = be.mat_from_col_major(r, k, &u)?;
            let mut out = be.zeros(n, k)?;
            be.apply(
                &mut out,
                Accum::Replace,
                &self.ops.c,
                Trans::Yes,
                &u,
                B::Real::one(),
            )?;
            down(&out)
        };
        let (ctw, cty) = (product(&w)?, product(&y)?);
        let px: Vec<f64> = (0..n * k).map(|i| ctw[i] - host.q[i] - cty[i]).collect();
        Ok((0..k)
            .map(|j| {
                let (rows, vars) = (j * r..(j + 1) * r, j * n..(j + 1) * n);
                let dot =
                    |a: &[f64], b: &[f64]| -> f64 { a.iter().zip(b).map(|(a, b)| a * b).sum() };
                let w_minus_y: Vec<f64> = w[rows.clone()]
                    .iter()
                    .zip(&y[rows.clone()])
                    .map(|(w, y)| w - y)
                    .collect();
                let total = dot(&cx[rows.clone()], &w_minus_y);
                let qx = match &host.linear {
                    Some((off, u)) => off[j] - dot(&u[rows.clone()], &v[rows.clone()]),
                    None => 0.0,
                };
                let column = Column {
                    s: &s[rows.start + p..rows.end],
                    y: &y[rows.clone()],
                    cx: &cx[rows.clone()],
                    bh: &host.bh[rows.clone()],
                    px: &px[vars.clone()],
                    q: &host.q[vars.clone()],
                    cty: &cty[vars],
                    xpx: total - qx,
                    qx,
                };
                judge(&column)
            })
            .collect())
    }

    /// The primal iterate `(x, s, lam, nu)` of a block after a step (`p` equalities).
    pub fn primal(&self, blk: &DualBlock<B>, data: &DualData<B>, p: usize) -> Result<Iterate<B>> {
        let (lam, nu) = unstack(self.backend, &blk.y, p)?;
        let (_, s) = unstack(self.backend, &blk.s, p)?;
        Ok(Iterate {
            x: self.x(blk, data)?,
            s,
            lam,
            nu,
        })
    }

    /// `x = -H^-1 (c + C'v)` of the last step.
    pub fn x(&self, blk: &DualBlock<B>, data: &DualData<B>) -> Result<B::Mat> {
        self.x_of(&blk.v, data)
    }

    /// `x = -H^-1 (c + C'v)` for a given `v`: `-H^-1 c - K v` when `K` and `H^-1 c` are
    /// known, the join of `c`'s split solve ([`LinAlg::solve_join`]) when the data kept one,
    /// `-K (v + z)` for `c = C'z` ([`DualKernel::k_times`]), else a product with `C'` and a
    /// solve with `H`.
    pub fn x_of(&self, v: &B::Mat, data: &DualData<B>) -> Result<B::Mat> {
        let (be, one) = (self.backend, B::Real::one());
        if let (Some(k), Some(hc)) = (&self.ops.k, &data.hc) {
            let mut x = hc.clone();
            be.axpby(-one, hc, B::Real::zero(), &mut x)?;
            be.apply(&mut x, Accum::Add, k, Trans::No, v, -one)?;
            return Ok(x);
        }
        if let Some(t) = &data.split {
            // -H^-1 (c - C'(-v))
            let mut minus_v = v.clone();
            be.axpby(-one, v, B::Real::zero(), &mut minus_v)?;
            let x = be.solve_join(self.factor, &self.ops.c, t.clone(), &minus_v)?;
            let mut minus_x = x.clone();
            be.axpby(-one, &x, B::Real::zero(), &mut minus_x)?;
            return Ok(minus_x);
        }
        if let Some(z) = &data.cz {
            let mut minus_vz = z.clone();
            be.axpby(-one, v, -one, &mut minus_vz)?;
            return self.k_times(&minus_vz);
        }
        let c = data
            .c
            .as_ref()
            .ok_or(Error::Request("x needs c or z with c = C'z"))?;
        let mut x = c.clone();
        be.axpby(-one, c, B::Real::zero(), &mut x)?;
        be.apply(&mut x, Accum::Add, &self.ops.c, Trans::Yes, v, -one)?;
        be.solve_in_place(self.factor, &mut x)?;
        Ok(x)
    }

    /// `K w = H^-1 C' w`: a product with `K` when formed, with the kept half and one
    /// triangular solve, or else a product with `C'` and a solve with `H`.
    pub fn k_times(&self, w: &B::Mat) -> Result<B::Mat> {
        let (be, one) = (self.backend, B::Real::one());
        if let Some(half) = &self.ops.half {
            return be.half_product_solve(self.factor, half, w, one);
        }
        let n = be.op_shape(&self.ops.c).1;
        let mut x = be.zeros(n, be.shape(w).1)?;
        match &self.ops.k {
            Some(k) => be.apply(&mut x, Accum::Replace, k, Trans::No, w, one)?,
            None => {
                be.apply(&mut x, Accum::Replace, &self.ops.c, Trans::Yes, w, one)?;
                be.solve_in_place(self.factor, &mut x)?;
            }
        }
        Ok(x)
    }
}
