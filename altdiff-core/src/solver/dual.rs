//! The dual-space iteration: the same ADMM and Alt-Diff map, run on the stacked duals.
//!
//! With `C = [A; G]` (`r = p + m` rows), `K = H^-1 C'` and `M = C H^-1 C'` (`r x r`, formed
//! once per solver), the x-update `x = -H^-1 (c + C'v)` with `v = [lam; nu + rho s]` is only
//! ever needed through `Cx = -C H^-1 c - M v`. So each iteration, for the solution and for
//! every tangent block alike, works on `r`-row blocks:
//!
//! ```text
//! v  = y + rho s              y = [lam; nu], s = [0; s] (the first p rows stay 0)
//! Cx = -C H^-1 c - M v
//! s  = max(0, -y/rho - Cx + [b; h])        (tangents: the forward mask, strict)
//! y  = y + rho (Cx + s - [b; h])
//! ```
//!
//! and `x = -H^-1 (c + C'v)` is formed once at the end. An iteration costs `O(r^2 k)`
//! instead of `O(n^2 k + n r k)`, a large saving when `r` is below `n` (the paper's grid has
//! `r = 0.7 n`). Residuals: `Cx + s - [b; h]` is the primal residual; the dual residual is
//! `rho C'(s_{k+1} - s_k)` (the standard ADMM identity `Px + q + C'y = rho C'(s_{k+1} - s_k)`).

use num_traits::{Float, One, Zero};

use crate::solver::iteration::Iterate;
use crate::{Accum, Error, LinAlg, QpDims, Result, Trans};

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
    /// `|c|_inf` (the scale of the dual residual).
    pub c_norm: B::Real,
    /// `z` with `c = C' z`, when known (the Jacobians wrt `b` and `h`).
    pub cz: Option<B::Mat>,
    /// The stacked rows whose identity `[b; h]` is (the Jacobians wrt `b` and `h`: then
    /// `c = -rho C_rows'` and `z = -rho [b; h]`).
    pub rows: Option<std::ops::Range<usize>>,
}

/// The constants of the dual-space objective (see [`DualKernel::objective`]).
#[derive(Clone, Debug)]
pub(crate) struct DualObjective<B: LinAlg> {
    /// `-c'z` with `z = H^-1 (q - c/2)`.
    pub offset: B::Real,
    /// `u = C z`.
    pub u: B::Mat,
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
            c_norm: be.norm_inf(c)?,
            cz: None,
            rows: None,
        })
    }

    /// The constant terms of the Jacobian wrt `b` (`rows = 0..p`) or `h` (`rows = p..r`),
    /// read off `C` and `M`: there `c = -rho C_rows'`, so `C H^-1 c = -rho M[:, rows]`, and
    /// `[b; h]` is the identity on `rows`. No solve, and `c` itself is never formed: `x` is
    /// `-K (v + z)` ([`DualKernel::x_of`]).
    pub fn data_of_rows(&self, rows: std::ops::Range<usize>) -> Result<DualData<B>> {
        let be = self.backend;
        let (r, n) = be.op_shape(&self.ops.c);
        let (d, minus_rho) = (rows.len(), -self.rho);
        let ones = vec![B::Real::one(); r.max(n)];
        let (row_max, _) = be.op_abs_max(&self.ops.c, &ones[..r], &ones[..n])?;
        let c_norm = row_max[rows.clone()]
            .iter()
            .fold(B::Real::zero(), |m, &v| m.max(v))
            * self.rho;
        let chc: Vec<B::Real> = self.ops.m_host[rows.start * r..rows.end * r]
            .iter()
            .map(|&e| minus_rho * e)
            .collect();
        let mut bh = vec![B::Real::zero(); r * d];
        (0..d).for_each(|j| bh[j * r + rows.start + j] = B::Real::one());
        let cz: Vec<B::Real> = bh.iter().map(|&e| minus_rho * e).collect();
        Ok(DualData {
            hc: None,
            split: None,
            chc: be.mat_from_col_major(r, d, &chc)?,
            bh: be.mat_from_col_major(r, d, &bh)?,
            c: None,
            c_norm,
            cz: Some(be.mat_from_col_major(r, d, &cz)?),
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
            c_norm: one,
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
        // v = y + rho s
        be.lincomb([(one, &blk.y), (rho, &blk.s)], zero, &mut blk.v)?;
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

    /// What [`DualKernel::objective`] needs of data `(q, c)`: `z = H^-1 (q - c/2)`, `u = Cz`
    /// and `-c'z` (one solve, once per solve).
    pub fn objective_data(&self, q: &B::Mat, data: &DualData<B>) -> Result<DualObjective<B>> {
        let (be, one) = (self.backend, B::Real::one());
        let half = one / (one + one);
        let c = data
            .c
            .as_ref()
            .ok_or(Error::Request("the objective needs c"))?;
        let mut z = q.clone();
        be.axpby(-half, c, one, &mut z)?;
        be.solve_in_place(self.factor, &mut z)?;
        let mut u = be.zeros(be.op_shape(&self.ops.c).0, 1)?;
        be.apply(&mut u, Accum::Replace, &self.ops.c, Trans::No, &z, one)?;
        Ok(DualObjective {
            offset: -be.dot(c, &z)?,
            u,
        })
    }

    /// `1/2 x'Px + q'x` of the block's `x = -H^-1 (c + C'v)` without forming it: with
    /// `Px = Hx - rho C'Cx = -(c + C'v) - rho C'(Cx)`,
    /// `f = x'(q - c/2) - v'Cx/2 - rho |Cx|^2/2 = -c'z - u'v - v'Cx/2 - rho |Cx|^2/2`.
    pub fn objective(&self, blk: &DualBlock<B>, obj: &DualObjective<B>) -> Result<B::Real> {
        let be = self.backend;
        let half = B::Real::one() / (B::Real::one() + B::Real::one());
        Ok(obj.offset
            - be.dot(&obj.u, &blk.v)?
            - half * be.dot(&blk.cx, &blk.v)?
            - half * self.rho * be.dot(&blk.cx, &blk.cx)?)
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

    /// The residual test of the last step, given the slack before it:
    /// `|Cx + s - bh| <= abs + rel max(|Cx|, |bh|, |s|)` and
    /// `rho |C'(s - s_old)| <= abs + rel max(|C'y|, |c|)`: `(small, primal, dual)`, the
    /// products with `C'` only as far as the test needs them (`dual = 0` when the primal
    /// residual fails it, `|C'y|` only when `|c|` alone does not pass it).
    pub fn residuals_small(
        &self,
        blk: &DualBlock<B>,
        s_old: &B::Mat,
        data: &DualData<B>,
        abs: B::Real,
        rel: B::Real,
    ) -> Result<(bool, B::Real, B::Real)> {
        let (be, one) = (self.backend, B::Real::one());
        let norm = |m: &B::Mat| be.norm_inf(m);
        let mut r = blk.cx.clone();
        be.axpby(one, &blk.s, one, &mut r)?;
        be.axpby(-one, &data.bh, one, &mut r)?;
        let primal = norm(&r)?;
        let primal_scale = norm(&blk.cx)?.max(norm(&data.bh)?).max(norm(&blk.s)?);
        let primal_small = primal <= abs + rel * primal_scale;
        if !primal_small {
            // the test fails already: no products with C'
            return Ok((false, primal, B::Real::zero()));
        }
        // dual residual rho C'(s - s_old + (1 - alpha)(bh - s_old - Cx))
        let mut ds = blk.s.clone();
        be.axpby(-one, s_old, one, &mut ds)?;
        if self.alpha != one {
            let mut relax = data.bh.clone();
            be.axpby(-one, s_old, one, &mut relax)?;
            be.axpby(-one, &blk.cx, one, &mut relax)?;
            be.axpby(one - self.alpha, &relax, one, &mut ds)?;
        }
        let n = be.op_shape(&self.ops.c).1;
        let k = be.shape(&ds).1;
        let mut d = be.zeros(n, k)?;
        be.apply(
            &mut d,
            Accum::Replace,
            &self.ops.c,
            Trans::Yes,
            &ds,
            self.rho,
        )?;
        let dual = norm(&d)?;
        if dual <= abs + rel * data.c_norm {
            // the scale is at least |c|: small whatever |C'y|
            return Ok((true, primal, dual));
        }
        be.apply(&mut d, Accum::Replace, &self.ops.c, Trans::Yes, &blk.y, one)?;
        let dual_scale = norm(&d)?.max(data.c_norm);
        Ok((dual <= abs + rel * dual_scale, primal, dual))
    }
}
