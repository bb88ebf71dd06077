//! Reverse mode: vector-Jacobian products without forming a Jacobian.
//!
//! The tangent recursion is linear in the tangents once the masks `D_k = 1[s_{k+1} > 0]`
//! are known, so its adjoint runs backwards through the same operators. With adjoints
//! `L, N, S` of `dlam, dnu, ds` (zero after the last iteration) and `X = g` at the last
//! iteration, each iteration `k = K-1 .. 0` is reversed as
//!
//! ```text
//! t  = D_k (S + rho N)                   (the slack's mask)
//! r  = rho N - t                         (the adjoint of the relaxed Gx)
//! X += alpha (G'r + rho A'L)             (the dual and slack updates)
//! y  = -H^-1 X                           (the x-update; H is symmetric)
//! db_eff gets -rho alpha L,  dh_eff gets -alpha r,  c gets y
//! L += A y,  N += G y - t/rho,  S = rho G y - (1 - alpha) r
//! ```
//!
//! and since `c = dq_eff - rho A'db_eff - rho G'dh_eff`, the gradients are
//! `q = sum y`, `b = sum db_bar - rho A (sum y)`, `h = sum dh_bar - rho G (sum y)`. For the
//! matrices (with `dq_eff = dP x + dA'u + dG'w`, `db_eff = db - dA x`, `dh_eff = dh - dG x`
//! at the forward `x_{k+1}`, `u_k`, `w_k` of each iteration):
//! `P += y x'`, `A += u y' + (rho A y - db_bar) x'`, `G += w y' + (rho G y - dh_bar) x'`.
//!
//! * [`VjpMode::Unrolled`]: the exact adjoint of the iterations run, from the tape.
//! * [`VjpMode::Implicit`]: the fixed point of the same reverse iteration at the final
//!   mask (by GMRES over its steps, see `krylov.rs`, or by repeating it): the adjoint of the
//!   fixed point, with the OptNet closed forms for `P`, `A`, `G` (`P: (d x' + x d')/2`, `A: lam d' - (J_b'g) x'`, `G: nu d' - (J_h'g) x'`,
//!   `d = J_q'g`).
//! * [`VjpMode::Kkt`]: the adjoint of the reduced KKT system (see [`Method::Kkt`](crate::Method::Kkt)).
//! * [`VjpMode::Limit`]: the adjoint of the limit system of `solver/limit.rs`, solved directly.

use num_traits::{Float, One, Zero};

use crate::{Accum, LinAlg, Real, Result, Trans};

/// How [`AltDiff::vjp`](crate::AltDiff::vjp) computes `J'g`.
///
/// # Example
/// ```
/// use altdiff_core::VjpMode;
/// assert_ne!(VjpMode::Unrolled, VjpMode::Implicit);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VjpMode {
    /// The exact adjoint of the iterations run (needs [`Tape::Masks`](crate::Tape::Masks),
    /// or [`Tape::Full`](crate::Tape::Full) for `P`, `A`, `G`); equals `J'g` of forward mode
    /// for the same iterations, truncated or not. The start is treated as constant.
    Unrolled,
    /// The adjoint of the fixed point at the final active set (no tape): the fixed point of
    /// the reverse iteration at the final mask, solved by restarted GMRES over its steps
    /// ([`Settings::krylov_restart`](crate::Settings::krylov_restart); one step, `O(n^2)`
    /// dense or `O(nnz(L) + nnz(A, G))` sparse, per GMRES iteration).
    Implicit,
    /// The adjoint of the KKT conditions on the final active set, by one factorization of
    /// the reduced KKT system.
    Kkt,
    /// The adjoint of the limit of the recursion for the final mask (see
    /// [`Settings::limit`](crate::Settings::limit)): one solve with `H`, one with the limit
    /// system (blocks of `M = C H^-1 C'`, at most `p + m` rows). The default: exact at the
    /// solution and the fastest of the exact modes. Uses the dual-space operators (formed
    /// once when the solver has none, on dense backends with `p + m <= 2n`); without them
    /// it is [`VjpMode::Kkt`] (dense) or [`VjpMode::Implicit`] (sparse). A degenerate mask
    /// falls back to [`VjpMode::Implicit`].
    Limit,
}

impl Default for VjpMode {
    /// [`VjpMode::Limit`].
    ///
    /// # Example
    /// ```
    /// assert_eq!(altdiff_core::VjpMode::default(), altdiff_core::VjpMode::Limit);
    /// ```
    fn default() -> Self {
        VjpMode::Limit
    }
}

/// The gradients `J'g` of a scalar loss with `dloss/dx = g`, one per parameter, in the
/// parameter's shape. The matrix ones are absent when the mode cannot give them.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{AltDiff, Qp, Settings, VjpMode, testing::{RefBackend, tiny_qp}};
/// use altdiff_core::LinAlg;
/// let qp = Qp::from_host(&RefBackend, &tiny_qp())?;
/// let solver = AltDiff::new(RefBackend, &qp, Settings::default())?;
/// let sol = solver.solve(qp.params())?;
/// let g = RefBackend.mat_from_col_major(3, 1, &[1.0, 0.0, 0.0])?;
/// let grads = solver.vjp(&sol, &g, VjpMode::Implicit)?;
/// // d x_0 / d b = 3/7
/// assert!((RefBackend.to_col_major(&grads.b)?[0] - 3.0 / 7.0).abs() < 1e-4);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Grads<B: LinAlg> {
    /// `J_q'g` (n x 1).
    pub q: B::Mat,
    /// `J_b'g` (p x 1).
    pub b: B::Mat,
    /// `J_h'g` (m x 1).
    pub h: B::Mat,
    /// Gradient wrt `P` (n x n, symmetric; on `P`'s pattern for a sparse backend).
    pub p: Option<B::OpGrad>,
    /// Gradient wrt `A` (p x n; on `A`'s pattern for a sparse backend).
    pub a: Option<B::OpGrad>,
    /// Gradient wrt `G` (m x n; on `G`'s pattern for a sparse backend).
    pub g: Option<B::OpGrad>,
}

/// What the forward solve recorded for the unrolled VJP.
#[derive(Debug)]
pub(crate) struct TapeData<B: LinAlg> {
    /// `1[s_{k+1} > 0]` of every iteration, as bits.
    pub masks: Vec<Vec<u64>>,
    /// `(x_{k+1}, u_k, w_k)` of every iteration ([`Tape::Full`](crate::Tape::Full)).
    pub points: Vec<[B::Mat; 3]>,
    /// Penalty changes: from iteration index `k` on, `rho` and the factor of its `H`.
    pub segments: Vec<(usize, B::Real, std::sync::Arc<B::Factor>)>,
    /// `1[h > 0]` (m x 1) when the solve started cold (`s_0 = max(h, 0)` depends on `h`).
    pub start: Option<B::Mat>,
}

impl<B: LinAlg> Clone for TapeData<B> {
    fn clone(&self) -> Self {
        Self {
            masks: self.masks.clone(),
            points: self.points.clone(),
            segments: self.segments.clone(),
            start: self.start.clone(),
        }
    }
}

/// Packs `1[v > 0]` into bits.
pub(crate) fn mask_bits<T: Real>(values: &[T]) -> Vec<u64> {
    let mut bits = vec![0u64; values.len().div_ceil(64)];
    for (i, v) in values.iter().enumerate() {
        if crate::kernels::keeps(*v) {
            bits[i / 64] |= 1 << (i % 64);
        }
    }
    bits
}

/// Unpacks mask bits into a `0/1` vector of length `m` (`1` keeps).
pub(crate) fn mask_values<T: Real>(bits: &[u64], m: usize) -> Vec<T> {
    (0..m)
        .map(|i| {
            if bits[i / 64] >> (i % 64) & 1 == 1 {
                T::one()
            } else {
                T::zero()
            }
        })
        .collect()
}

/// The operators of the reverse iteration.
pub(crate) struct Reverse<'a, B: LinAlg> {
    pub backend: &'a B,
    pub a: &'a B::Op,
    pub g: &'a B::Op,
    pub factor: &'a B::Factor,
    pub rho: B::Real,
    /// Over-relaxation of the forward iteration (1 = none).
    pub alpha: B::Real,
    /// The proximal term of the forward x-update (0 = none): `x_{k+1}` depends on `x_k`
    /// through `sigma H^-1`, and the state carries the adjoint of `x` as well.
    pub sigma: B::Real,
}

/// The adjoint state and the accumulated data adjoints.
pub(crate) struct Adjoint<B: LinAlg> {
    l: B::Mat,
    n: B::Mat,
    s: B::Mat,
    /// The adjoint of `x` through the proximal term of the next x-update (`-sigma y`;
    /// stays zero without one).
    xs: B::Mat,
    /// Whether the proximal term is on (then `xs` is part of the state).
    proximal: bool,
    /// `sum y` (the adjoint of `c`, hence of `dq_eff`).
    pub c_sum: B::Mat,
    /// `sum rho_k y` (the penalty of each iteration: for `b` and `h`).
    pub c_rho_sum: B::Mat,
    /// `sum` of the adjoints of `db_eff`.
    pub b_sum: B::Mat,
    /// `sum` of the adjoints of `dh_eff`.
    pub h_sum: B::Mat,
    // scratch
    x: B::Mat,
    t: B::Mat,
    gbar: B::Mat,
    /// The last `y` and data adjoints (for the matrix gradients and convergence tests).
    pub y: B::Mat,
    pub b_bar: B::Mat,
    pub h_bar: B::Mat,
}

impl<B: LinAlg> Adjoint<B> {
    /// The zero adjoint of blocks of `k` columns (one per seed); `proximal` when the
    /// forward iteration has a proximal term.
    pub fn new(backend: &B, dims: crate::QpDims, k: usize, proximal: bool) -> Result<Self> {
        let (n, p, m) = (dims.n, dims.p, dims.m);
        Ok(Self {
            l: backend.zeros(p, k)?,
            n: backend.zeros(m, k)?,
            s: backend.zeros(m, k)?,
            xs: backend.zeros(n, k)?,
            proximal,
            c_sum: backend.zeros(n, k)?,
            c_rho_sum: backend.zeros(n, k)?,
            b_sum: backend.zeros(p, k)?,
            h_sum: backend.zeros(m, k)?,
            x: backend.zeros(n, k)?,
            t: backend.zeros(m, k)?,
            gbar: backend.zeros(m, k)?,
            y: backend.zeros(n, k)?,
            b_bar: backend.zeros(p, k)?,
            h_bar: backend.zeros(m, k)?,
        })
    }
}

impl<B: LinAlg> Adjoint<B> {
    /// The state `(L, N, S)` the reverse iteration carries (copies), and the adjoint of
    /// `x` with a proximal term.
    pub fn state(&self) -> Vec<B::Mat> {
        let mut state = vec![self.l.clone(), self.n.clone(), self.s.clone()];
        if self.proximal {
            state.push(self.xs.clone());
        }
        state
    }

    /// Replaces the state by `z` (the shapes of [`Adjoint::state`]).
    pub fn set_state(&mut self, backend: &B, z: &[B::Mat]) -> Result<()> {
        backend.copy_from(&mut self.l, &z[0])?;
        backend.copy_from(&mut self.n, &z[1])?;
        backend.copy_from(&mut self.s, &z[2])?;
        if self.proximal {
            backend.copy_from(&mut self.xs, &z[3])?;
        }
        Ok(())
    }

    /// Writes the state into `out` (the shapes of [`Adjoint::state`]).
    pub fn write_state(&self, backend: &B, out: &mut [B::Mat]) -> Result<()> {
        backend.copy_from(&mut out[0], &self.l)?;
        backend.copy_from(&mut out[1], &self.n)?;
        backend.copy_from(&mut out[2], &self.s)?;
        if self.proximal {
            backend.copy_from(&mut out[3], &self.xs)?;
        }
        Ok(())
    }

    /// The adjoint of the slack the reverse iteration has reached (after the first
    /// iteration's step: of the start `s_0`).
    pub fn slack(&self) -> &B::Mat {
        &self.s
    }

    /// Adds the accumulated sums of `other` to these.
    pub fn add_sums(&mut self, backend: &B, other: &Self) -> Result<()> {
        let one = B::Real::one();
        backend.axpby(one, &other.c_sum, one, &mut self.c_sum)?;
        backend.axpby(one, &other.c_rho_sum, one, &mut self.c_rho_sum)?;
        backend.axpby(one, &other.b_sum, one, &mut self.b_sum)?;
        backend.axpby(one, &other.h_sum, one, &mut self.h_sum)
    }
}

impl<B: LinAlg> Reverse<'_, B> {
    /// Reverses one iteration with mask `mask` (`0/1`, m x 1); `seed` is `g` for the last
    /// iteration of an unrolled run, `None` otherwise.
    pub fn step(&self, adj: &mut Adjoint<B>, mask: &B::Mat, seed: Option<&B::Mat>) -> Result<()> {
        let (be, one, zero, rho, alpha) = (
            self.backend,
            B::Real::one(),
            B::Real::zero(),
            self.rho,
            self.alpha,
        );
        // t = D (S + rho N): the adjoint of the slack's argument
        be.copy_from(&mut adj.t, &adj.s)?;
        be.axpby(rho, &adj.n, one, &mut adj.t)?;
        be.dproj_nonneg(mask, &mut adj.t)?;
        // gbar = rho N - t: the adjoint of the (relaxed) Gx
        be.copy_from(&mut adj.gbar, &adj.t)?;
        be.axpby(rho, &adj.n, -one, &mut adj.gbar)?;
        // X = g (or 0) + alpha (G' gbar + rho A'L)
        match seed {
            Some(g) => be.copy_from(&mut adj.x, g)?,
            None => be.axpby(zero, &adj.y, zero, &mut adj.x)?,
        }
        be.apply(&mut adj.x, Accum::Add, self.g, Trans::Yes, &adj.gbar, alpha)?;
        be.apply(
            &mut adj.x,
            Accum::Add,
            self.a,
            Trans::Yes,
            &adj.l,
            rho * alpha,
        )?;
        // and x_{k+1}'s share in the next x-update, through the proximal term
        if adj.proximal {
            be.axpby(one, &adj.xs, one, &mut adj.x)?;
        }
        // data adjoints: db_eff gets -rho alpha L, dh_eff gets -alpha gbar
        be.axpby(-rho * alpha, &adj.l, zero, &mut adj.b_bar)?;
        be.axpby(-alpha, &adj.gbar, zero, &mut adj.h_bar)?;
        // y = -H^-1 X
        be.axpby(-one, &adj.x, zero, &mut adj.y)?;
        be.solve_in_place(self.factor, &mut adj.y)?;
        // x_k enters x_{k+1} = -H^-1 (... - sigma x_k)
        if adj.proximal {
            be.axpby(-self.sigma, &adj.y, zero, &mut adj.xs)?;
        }
        // new state: L += A y; N += G y - t/rho; S = rho G y - (1 - alpha) gbar
        be.apply(&mut adj.l, Accum::Add, self.a, Trans::No, &adj.y, one)?;
        be.apply(&mut adj.n, Accum::Add, self.g, Trans::No, &adj.y, one)?;
        be.axpby(-one / rho, &adj.t, one, &mut adj.n)?;
        be.apply(&mut adj.s, Accum::Replace, self.g, Trans::No, &adj.y, rho)?;
        be.axpby(alpha - one, &adj.gbar, one, &mut adj.s)?;
        // sums
        be.axpby(one, &adj.y, one, &mut adj.c_sum)?;
        be.axpby(rho, &adj.y, one, &mut adj.c_rho_sum)?;
        be.axpby(one, &adj.b_bar, one, &mut adj.b_sum)?;
        be.axpby(one, &adj.h_bar, one, &mut adj.h_sum)
    }

    /// Adds one iteration's matrix gradients at the forward point `(x, u, w)`:
    /// `P += y x'`, `A += u y' + (rho A y - b_bar) x'`, `G += w y' + (rho G y - h_bar) x'`
    /// (the adjoints of `dq_eff = dP x + dA'u + dG'w`, of `db_eff = -dA x`, `dh_eff = -dG x`,
    /// and of their `-rho A'db_eff`, `-rho G'dh_eff` inside `c`).
    pub fn matrices(
        &self,
        adj: &Adjoint<B>,
        point: [&B::Mat; 3],
        grads: &mut [B::OpGrad; 3],
        work: &mut [B::Mat; 2],
    ) -> Result<()> {
        let (be, one, rho) = (self.backend, B::Real::one(), self.rho);
        let [x, u, w] = point;
        let [gp, ga, gg] = grads;
        be.grad_add_outer(gp, &[(one, &adj.y, x)])?;
        let [ay, gy] = work;
        // A: u y' + (rho A y - b_bar) x'
        be.apply(ay, Accum::Replace, self.a, Trans::No, &adj.y, rho)?;
        be.axpby(-one, &adj.b_bar, one, ay)?;
        be.grad_add_outer(ga, &[(one, u, &adj.y), (one, ay, x)])?;
        // G: w y' + (rho G y - h_bar) x'
        be.apply(gy, Accum::Replace, self.g, Trans::No, &adj.y, rho)?;
        be.axpby(-one, &adj.h_bar, one, gy)?;
        be.grad_add_outer(gg, &[(one, w, &adj.y), (one, gy, x)])
    }

    /// The vector gradients from the sums: `q = sum y`, `b = sum b_bar - A sum rho_k y`,
    /// `h = sum h_bar - G sum rho_k y`.
    pub fn vector_grads(&self, adj: &Adjoint<B>) -> Result<(B::Mat, B::Mat, B::Mat)> {
        let (be, one) = (self.backend, B::Real::one());
        let mut b = adj.b_sum.clone();
        be.apply(&mut b, Accum::Add, self.a, Trans::No, &adj.c_rho_sum, -one)?;
        let mut h = adj.h_sum.clone();
        be.apply(&mut h, Accum::Add, self.g, Trans::No, &adj.c_rho_sum, -one)?;
        Ok((adj.c_sum.clone(), b, h))
    }

    /// Whether the last reverse step changed the sums by at most `tol` (relative).
    pub fn settled(&self, adj: &Adjoint<B>, abs: B::Real, rel: B::Real) -> Result<bool> {
        let be = self.backend;
        let small = |step: &B::Mat, sum: &B::Mat| -> Result<bool> {
            let d = be.norm_inf(step)?;
            Ok(d.is_finite() && d <= abs + rel * be.norm_inf(sum)?)
        };
        Ok(small(&adj.y, &adj.c_sum)?
            && small(&adj.b_bar, &adj.b_sum)?
            && small(&adj.h_bar, &adj.h_sum)?)
    }
}

/// The OptNet closed forms at a solution `(x, lam, nu)` from the vector gradients:
/// `P = (d x' + x d')/2`, `A = lam d' - gb x'`, `G = nu d' - gh x'` with `d = gq`, on the
/// patterns of the operators `ops = [P, A, G]`. Blocks of `k` columns sum `k` elements.
pub(crate) fn closed_forms<B: LinAlg>(
    backend: &B,
    ops: [&B::Op; 3],
    point: [&B::Mat; 3],
    grads: [&B::Mat; 3],
) -> Result<[B::OpGrad; 3]> {
    let (be, one, half) = (backend, B::Real::one(), B::Real::of(0.5));
    let [x, lam, nu] = point;
    let [d, gb, gh] = grads;
    let [p_op, a_op, g_op] = ops;
    Ok([
        be.grad_outer(p_op, &[(half, d, x), (half, x, d)])?,
        be.grad_outer(a_op, &[(one, lam, d), (-one, gb, x)])?,
        be.grad_outer(g_op, &[(one, nu, d), (-one, gh, x)])?,
    ])
}

/// `(M + M')/2` of a square gradient, on the host (a sparse one on its pattern: an entry
/// whose mirror is not stored is halved).
pub(crate) fn symmetrize<B: LinAlg>(backend: &B, m: &B::OpGrad) -> Result<B::OpGrad> {
    let host = backend.grad_to_host(m, crate::Field::P)?;
    let mut sym = host.clone();
    sym.map_entries(|i, j, v| 0.5 * (v + host.get(j, i)));
    backend.grad_from_host(&sym)
}
