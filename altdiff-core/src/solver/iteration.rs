//! One Alt-Diff iteration, written once for the solution and for its Jacobians.
//!
//! The ADMM map is affine in the data once the slack's projection is fixed, so the tangent
//! recursion is the same code run on `d`-column blocks with the data replaced by their
//! derivatives:
//!
//! | | forward (`k = 1`) | tangent wrt `theta` (`d` columns) |
//! |---|---|---|
//! | `c` | `q` | `I` for `q`, else 0 |
//! | `b` | `b` | `db` = `I` for `b`, else 0 |
//! | `h` | `h` | `dh` = `I` for `h`, else 0 |
//! | slack | `s = max(0, w)` | `J_s = 1[s > 0] w` (forward `s`, strict) |
//!
//! with, in order x -> s -> lam -> nu,
//! `x = -H^-1 [c + A'(lam - rho b) + G'(nu + rho (s - h))]`, `w = -nu/rho - (Gx - h)`,
//! `lam += rho (Ax - b)`, `nu += rho (Gx + s - h)`.
//!
//! `b` and `h` enter the x-update through `lam - rho b` and `nu + rho (s - h)`, formed row
//! by row: on a row whose bound is loose (`h_i = 1e10`, `s_i = h_i - G_i x`) the difference
//! `s_i - h_i` is of the size of `G_i x`, where a constant `q - rho G'h` would carry `1e10`
//! into every sum and lose the solution's digits to cancellation.
//!
//! With over-relaxation `alpha` (1 = none), `Gx` in the slack and dual updates is replaced by
//! `alpha Gx + (1 - alpha)(h - s_old)` and `Ax` by `alpha Ax + (1 - alpha) b` (OSQP's
//! relaxation in the slack form); the map stays affine in the data, so tangents follow.

use num_traits::{One, Zero};

use crate::{Accum, LinAlg, QpDims, Result, Trans};

/// The iterate of a block: `x` (n x k), `s` (m x k), `lam` (p x k), `nu` (m x k).
///
/// For the solution `k = 1`; for the Jacobian with respect to a parameter of size `d`,
/// `k = d` and the blocks are `J_x`, `J_s`, `J_lam`, `J_nu`.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{Iterate, LinAlg, QpDims, testing::RefBackend};
/// let it = Iterate::zeros(&RefBackend, QpDims { n: 3, p: 1, m: 2 }, 4)?;
/// assert_eq!(RefBackend.shape(&it.nu), (2, 4));
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Iterate<B: LinAlg> {
    /// Primal variable (or its Jacobian).
    pub x: B::Mat,
    /// Slack of the inequalities, `Gx + s = h`, `s >= 0`.
    pub s: B::Mat,
    /// Duals of the equalities.
    pub lam: B::Mat,
    /// Duals of the inequalities, `nu >= 0`.
    pub nu: B::Mat,
}

impl<B: LinAlg> Iterate<B> {
    /// The all-zero iterate with `k` columns.
    ///
    /// # Errors
    /// A backend error.
    pub fn zeros(backend: &B, dims: QpDims, k: usize) -> Result<Self> {
        Ok(Self {
            x: backend.zeros(dims.n, k)?,
            s: backend.zeros(dims.m, k)?,
            lam: backend.zeros(dims.p, k)?,
            nu: backend.zeros(dims.m, k)?,
        })
    }

    /// Number of columns.
    pub fn ncols(&self, backend: &B) -> usize {
        backend.shape(&self.x).1
    }
}

/// The constant terms of the affine map (see the module docs): forward data or derivatives.
#[derive(Clone, Debug)]
pub(crate) struct Affine<B: LinAlg> {
    /// `c` (n x k).
    pub c: B::Mat,
    /// `b` or `db` (p x k).
    pub b: B::Mat,
    /// `h` or `dh` (m x k).
    pub h: B::Mat,
}

/// What the slack update does after the affine part.
pub(crate) enum Slack<'a, B: LinAlg> {
    /// `s = max(0, w)`.
    Project,
    /// `J_s = 1[s > 0] w` with the forward slack `s`.
    Mask(&'a B::Mat),
}

/// Scratch blocks of one iterate's width.
#[derive(Debug)]
pub(crate) struct Workspace<B: LinAlg> {
    /// `G x` of the current iteration (m x k).
    pub gx: B::Mat,
    /// `nu + rho (s - h)` (m x k).
    pub w: B::Mat,
    /// `lam - rho b` (p x k).
    pub u: B::Mat,
    /// The slack before the step and the relaxed `Gx` (m x k; used when `alpha != 1`).
    pub s_old: B::Mat,
    pub gr: B::Mat,
    /// The right-hand side of the x-update and `A x` (n x k, p x k), for its refinement
    /// with a coarse factorization (formed on first use).
    pub refine: Option<[B::Mat; 2]>,
}

impl<B: LinAlg> Workspace<B> {
    pub fn new(backend: &B, dims: QpDims, k: usize) -> Result<Self> {
        Ok(Self {
            gx: backend.zeros(dims.m, k)?,
            w: backend.zeros(dims.m, k)?,
            u: backend.zeros(dims.p, k)?,
            s_old: backend.zeros(dims.m, k)?,
            gr: backend.zeros(dims.m, k)?,
            refine: None,
        })
    }
}

/// The operators and the factorization one iteration uses.
pub(crate) struct Kernel<'a, B: LinAlg> {
    pub backend: &'a B,
    pub a: &'a B::Op,
    pub g: &'a B::Op,
    pub factor: &'a B::Factor,
    pub rho: B::Real,
    /// The proximal term `sigma` (0: none): `H = P + sigma I + rho (A'A + G'G)` and the
    /// x-update adds `sigma x_k` to its right-hand side.
    pub sigma: B::Real,
    /// Over-relaxation, in (0, 2); 1 is none.
    pub alpha: B::Real,
    /// `P`, when the factorization is coarse: each x-update is then refined once against
    /// `H = P + rho (A'A + G'G)` in full precision (see [`refine`](super::refine)).
    pub refine_with: Option<&'a B::Op>,
}

impl<B: LinAlg> Kernel<'_, B> {
    fn relaxed(&self) -> bool {
        self.alpha != B::Real::one()
    }

    /// The relaxed `Gx`: `ws.gx` itself, or `alpha Gx + (1 - alpha)(h - s_old)` in `ws.gr`.
    fn relaxed_gx<'w>(&self, data: &Affine<B>, ws: &'w mut Workspace<B>) -> Result<&'w B::Mat> {
        if !self.relaxed() {
            return Ok(&ws.gx);
        }
        let (be, one, alpha) = (self.backend, B::Real::one(), self.alpha);
        be.copy_from(&mut ws.gr, &data.h)?;
        be.axpby(-one, &ws.s_old, one, &mut ws.gr)?;
        be.axpby(alpha, &ws.gx, one - alpha, &mut ws.gr)?;
        Ok(&ws.gr)
    }

    /// One iteration x -> s -> lam -> nu of a forward or tangent block.
    pub fn step(
        &self,
        it: &mut Iterate<B>,
        data: &Affine<B>,
        slack: Slack<'_, B>,
        ws: &mut Workspace<B>,
    ) -> Result<()> {
        self.update_x(it, data, ws)?;
        self.update_slack(it, data, slack, ws)?;
        self.update_duals(it, data, ws)
    }

    /// `x = -H^-1 [c + A'(lam - rho b) + G'(nu + rho (s - h)) - sigma x]`.
    fn update_x(&self, it: &mut Iterate<B>, data: &Affine<B>, ws: &mut Workspace<B>) -> Result<()> {
        let (be, one, rho) = (self.backend, B::Real::one(), self.rho);
        if self.relaxed() {
            be.copy_from(&mut ws.s_old, &it.s)?;
        }
        be.lincomb(
            [(rho, &it.s), (-rho, &data.h), (one, &it.nu)],
            B::Real::zero(),
            &mut ws.w,
        )?;
        be.lincomb(
            [(one, &it.lam), (-rho, &data.b)],
            B::Real::zero(),
            &mut ws.u,
        )?;
        be.axpby(-one, &data.c, self.sigma, &mut it.x)?;
        be.apply(&mut it.x, Accum::Add, self.a, Trans::Yes, &ws.u, -one)?;
        be.apply(&mut it.x, Accum::Add, self.g, Trans::Yes, &ws.w, -one)?;
        let Some(p) = self.refine_with else {
            return be.solve_in_place(self.factor, &mut it.x);
        };
        let [rhs, ax] = match &mut ws.refine {
            Some(buffers) => buffers,
            empty => empty.insert([it.x.clone(), it.lam.clone()]),
        };
        be.copy_from(rhs, &it.x)?;
        be.solve_in_place(self.factor, &mut it.x)?;
        // one round: x += H^-1 (rhs - P x - sigma x - rho A'(A x) - rho G'(G x)), Gx in
        // ws.gx (the slack update forms it again)
        be.apply(rhs, Accum::Add, p, Trans::No, &it.x, -one)?;
        be.axpby(-self.sigma, &it.x, one, rhs)?;
        be.apply(ax, Accum::Replace, self.a, Trans::No, &it.x, one)?;
        be.apply(rhs, Accum::Add, self.a, Trans::Yes, ax, -self.rho)?;
        be.apply(&mut ws.gx, Accum::Replace, self.g, Trans::No, &it.x, one)?;
        be.apply(rhs, Accum::Add, self.g, Trans::Yes, &ws.gx, -self.rho)?;
        be.solve_in_place(self.factor, rhs)?;
        be.axpby(one, rhs, one, &mut it.x)
    }

    /// `s = max(0, w)` or `J_s = 1[s > 0] w`, with `w = -nu/rho - (Gx_relaxed - h)`; keeps
    /// `Gx` (unrelaxed) in `ws.gx`.
    fn update_slack(
        &self,
        it: &mut Iterate<B>,
        data: &Affine<B>,
        slack: Slack<'_, B>,
        ws: &mut Workspace<B>,
    ) -> Result<()> {
        let (be, one) = (self.backend, B::Real::one());
        be.apply(&mut ws.gx, Accum::Replace, self.g, Trans::No, &it.x, one)?;
        let gx = self.relaxed_gx(data, ws)?;
        be.copy_from(&mut it.s, &data.h)?;
        be.axpby(-one, gx, one, &mut it.s)?;
        be.axpby(-one / self.rho, &it.nu, one, &mut it.s)?;
        match slack {
            Slack::Project => be.proj_nonneg(&mut it.s),
            Slack::Mask(forward_s) => be.dproj_nonneg(forward_s, &mut it.s),
        }
    }

    /// `lam += rho alpha (Ax - b)`, `nu += rho (Gx_relaxed + s - h)`.
    fn update_duals(&self, it: &mut Iterate<B>, data: &Affine<B>, ws: &Workspace<B>) -> Result<()> {
        let (be, one, rho) = (self.backend, B::Real::one(), self.rho);
        let ra = rho * self.alpha;
        be.apply(&mut it.lam, Accum::Add, self.a, Trans::No, &it.x, ra)?;
        be.axpby(-ra, &data.b, one, &mut it.lam)?;
        let gx = if self.relaxed() { &ws.gr } else { &ws.gx };
        be.axpby(rho, gx, one, &mut it.nu)?;
        be.axpby(rho, &it.s, one, &mut it.nu)?;
        be.axpby(-rho, &data.h, one, &mut it.nu)
    }
}
