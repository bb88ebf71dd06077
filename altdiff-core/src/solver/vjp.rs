//! Reverse mode on [`AltDiff`]: [`AltDiff::vjp`] in its three modes (see [`adjoint`]).

#[allow(clippy::wildcard_imports)]
use super::*;

impl<B: LinAlg> AltDiff<B> {
    /// `J'g`: the gradients of a loss with `dloss/dx = g` (n x 1) wrt every parameter, without
    /// forming a Jacobian. See [`VjpMode`] for the modes; the matrix gradients are absent for
    /// an unrolled VJP recorded with [`Tape::Masks`].
    ///
    /// # Errors
    /// [`Error::Dimension`] for `g` of the wrong shape, [`Error::Request`] for an unrolled VJP
    /// of a solve without a tape, [`Error::SingularKkt`] for the KKT mode at a degenerate
    /// active set, [`Error::NotDifferentiable`] with
    /// [`Settings::require_differentiable`](crate::Settings::require_differentiable).
    pub fn vjp(&self, solution: &Solution<B>, g: &B::Mat, mode: VjpMode) -> Result<Grads<B>> {
        crate::problem::check_block(&self.backend, Field::Seed, g, (self.dims.n, 1))?;
        if self.settings.require_differentiable {
            let report = self.differentiability(solution)?;
            if !report.status.is_differentiable() {
                return Err(Error::NotDifferentiable {
                    report: Box::new(report),
                });
            }
        }
        let Some(scaling) = &self.scaling else {
            return self.vjp_in(solution, g, mode);
        };
        let inner = solution.inner.as_deref().ok_or(Error::Request(
            "a VJP of a scaled solver needs a solution of that solver",
        ))?;
        let grads = self.vjp_in(inner, &scaling.seed(&self.backend, g)?, mode)?;
        scaling.grads(&self.backend, grads)
    }

    /// [`AltDiff::vjp`] in the units the solver iterates in.
    fn vjp_in(&self, solution: &Solution<B>, g: &B::Mat, mode: VjpMode) -> Result<Grads<B>> {
        match mode {
            VjpMode::Unrolled => self.vjp_unrolled(solution, g),
            VjpMode::Implicit => self.vjp_implicit(solution, g),
            VjpMode::Kkt => self.vjp_kkt(solution, g),
            VjpMode::Limit => self.vjp_limit(solution, g),
        }
    }

    fn reverse(&self) -> Reverse<'_, B> {
        Reverse {
            backend: &self.backend,
            a: &self.a,
            g: &self.g,
            factor: &self.factor,
            rho: self.rho,
            alpha: B::Real::of(self.settings.alpha),
            sigma: self.sigma,
        }
    }

    /// A zero adjoint of `k` columns for the reverse iteration of this solver.
    pub(super) fn new_adjoint(&self, k: usize) -> Result<Adjoint<B>> {
        Adjoint::new(&self.backend, self.dims, k, self.sigma != B::Real::zero())
    }

    fn vjp_unrolled(&self, solution: &Solution<B>, g: &B::Mat) -> Result<Grads<B>> {
        let tape = solution.tape.as_ref().ok_or(Error::Request(
            "an unrolled VJP needs a tape: solve with Settings::tape = Tape::Masks or Tape::Full",
        ))?;
        let (be, dims) = (&self.backend, self.dims);
        let rev = self.reverse();
        let mut adj = self.new_adjoint(1)?;
        let full = !tape.points.is_empty();
        let mut mats = if full {
            Some([
                be.grad_zeros(&self.p)?,
                be.grad_zeros(&self.a)?,
                be.grad_zeros(&self.g)?,
            ])
        } else {
            None
        };
        let mut work = [be.zeros(dims.p, 1)?, be.zeros(dims.m, 1)?];
        let last = tape.masks.len();
        for k in (0..last).rev() {
            // the penalty and factor of iteration k (index 0-based; a change recorded at
            // iteration count i applies from index i on)
            let (rho, factor) = match tape.segments.iter().rev().find(|(start, _, _)| *start <= k) {
                Some((_, rho, factor)) => (*rho, &**factor),
                None => (self.rho, &self.factor),
            };
            let rev = Reverse {
                rho,
                factor,
                ..self.reverse()
            };
            let mask = be.mat_from_col_major(dims.m, 1, &mask_values(&tape.masks[k], dims.m))?;
            rev.step(&mut adj, &mask, (k + 1 == last).then_some(g))?;
            if let Some(mats) = &mut mats {
                let [x, u, w] = &tape.points[k];
                rev.matrices(&adj, [x, u, w], mats, &mut work)?;
            }
        }
        let (q, b, mut h) = rev.vector_grads(&adj)?;
        // the cold start s_0 = max(h, 0)
        if let Some(start) = &tape.start {
            let mut through_start = adj.slack().clone();
            be.dproj_nonneg(start, &mut through_start)?;
            be.axpby(B::Real::one(), &through_start, B::Real::one(), &mut h)?;
        }
        let (p, a, gm) = match mats {
            Some([p, a, gm]) => (Some(symmetrize(be, &p)?), Some(a), Some(gm)),
            None => (None, None, None),
        };
        Ok(Grads {
            q,
            b,
            h,
            p,
            a,
            g: gm,
        })
    }

    fn vjp_implicit(&self, solution: &Solution<B>, g: &B::Mat) -> Result<Grads<B>> {
        let be = &self.backend;
        let bits = mask_bits(&be.to_col_major(solution.s())?);
        let mask = be.mat_from_col_major(self.dims.m, 1, &mask_values(&bits, self.dims.m))?;
        let (q, b, h) = self.implicit_adjoint(&mask, g)?;
        self.with_closed_forms(solution, q, b, h)
    }

    /// The fixed point of the reverse iteration at the fixed mask (`0/1`, m x 1, or m x k
    /// with one column per seed): `(J_q'g, J_b'g, J_h'g)` for the seeds `g` (n x k). After
    /// the seeded first step the iteration is linear in its state, `z_{k+1} = T z_k`, and
    /// the adjoint sums `z_1 + z_2 + ... = (I - T)^-1 z_1`: solved by restarted GMRES
    /// ([`Settings::krylov_restart`](crate::Settings::krylov_restart) vectors, see
    /// [`krylov`](super::krylov)), or with memory 0 by repeating the step until its sums
    /// settle.
    pub(super) fn implicit_adjoint(
        &self,
        mask: &B::Mat,
        g: &B::Mat,
    ) -> Result<(B::Mat, B::Mat, B::Mat)> {
        let be = &self.backend;
        let rev = self.reverse();
        let k = be.shape(g).1;
        let mut adj = self.new_adjoint(k)?;
        let (abs, rel) = self.adjoint_tolerance();
        rev.step(&mut adj, mask, Some(g))?;
        let memory = self.krylov_memory(k);
        if memory == 0 {
            for _ in 1..self.settings.max_iter.max(1) {
                rev.step(&mut adj, mask, None)?;
                if rev.settled(&adj, abs, rel)? {
                    break;
                }
            }
            return rev.vector_grads(&adj);
        }
        let gmres = Gmres {
            restart: memory,
            tol: (0.5 * rel.to_f64_lossy()).max(1e-13),
            max_applications: self.settings.max_iter.max(1),
        };
        let mut scratch = self.new_adjoint(k)?;
        let (z, _) = gmres.solve(be, &adj.state(), |v, out| {
            scratch.set_state(be, v)?;
            rev.step(&mut scratch, mask, None)?;
            scratch.write_state(be, out)
        })?;
        // the sums of every step after the first: one step from their state sum
        let mut tail = self.new_adjoint(k)?;
        tail.set_state(be, &z)?;
        rev.step(&mut tail, mask, None)?;
        adj.add_sums(be, &tail)?;
        rev.vector_grads(&adj)
    }

    /// The GMRES memory of an implicit adjoint with `k` seeds: the setting, lowered so that
    /// the Krylov vectors hold at most 2^25 numbers.
    fn krylov_memory(&self, k: usize) -> usize {
        let state = ((self.dims.p + 2 * self.dims.m) * k).max(1);
        match self.settings.krylov_restart {
            0 => 0,
            restart => restart.min((1 << 25) / state).max(2),
        }
    }

    fn vjp_kkt(&self, solution: &Solution<B>, g: &B::Mat) -> Result<Grads<B>> {
        let (be, dims) = (&self.backend, self.dims);
        let kkt = self.kkt_system(solution)?;
        let r = dims.p + kkt.active().len();
        let mut minus_g = g.clone();
        be.axpby(-B::Real::one(), g, B::Real::zero(), &mut minus_g)?;
        let (u, v) = kkt.solve(be, &minus_g, &be.zeros(r, 1)?)?;
        let mut q = u.clone();
        be.axpby(-B::Real::one(), &u, B::Real::zero(), &mut q)?;
        let (b, h) = kkt.split(be, &v, dims)?;
        self.with_closed_forms(solution, q, b, h)
    }

    /// `J'g` from the limit system: `z = H^-1 g`, `w = S^-1 C z`, `zeta = H^-1 (g - C'w)`, then
    /// `q: -zeta`, `b: rho A zeta + w_b`, `h: rho G zeta + w_h` (see [`limit`](super::limit)).
    fn vjp_limit(&self, solution: &Solution<B>, g: &B::Mat) -> Result<Grads<B>> {
        let Some(dual) = self.polish_dual_ops()? else {
            // a sparse backend has no dense dual space: the limit by iteration
            if !self.backend.dense_dual_space() {
                return self.vjp_implicit(solution, g);
            }
            return self.vjp_kkt(solution, g);
        };
        let (be, dims) = (&self.backend, self.dims);
        let mut stacked = vec![B::Real::zero(); dims.p];
        stacked.extend(be.to_col_major(solution.s())?);
        let built;
        let system = match &solution.limit {
            Some(system) if system.is_for(&stacked) => &**system,
            _ => match Limit::new(be, dual, &stacked, dims.p, self.rho, self.refines()) {
                Ok(system) => {
                    built = system;
                    &built
                }
                Err(Error::SingularKkt { .. }) => return self.vjp_implicit(solution, g),
                Err(other) => return Err(other),
            },
        };
        let (cz, t) = be.solve_split(&self.factor, &dual.c, g)?;
        let w = system.solve(be, &cz)?;
        let (q, b, h) = if self.refines() {
            let zeta = be.solve_join(&self.factor, &dual.c, t, &w)?;
            self.refine_grads(dual, system, g, (zeta, &w))?
        } else {
            self.limit_grads(dual, t, &w)?
        };
        self.with_closed_forms(solution, q, b, h)
    }

    /// The adjoints from the limit system's `w = S^-1 C H^-1 g` (blocks of any width), with
    /// `t` the intermediate of `g`'s [`LinAlg::solve_split`]: `zeta = H^-1 (g - C'w)`
    /// ([`LinAlg::solve_join`]), then `q: -zeta`, `b: w_b + rho A zeta`,
    /// `h: w_h + rho G zeta`.
    pub(super) fn limit_grads(
        &self,
        dual: &DualOps<B>,
        t: B::Mat,
        w: &B::Mat,
    ) -> Result<(B::Mat, B::Mat, B::Mat)> {
        let (be, one) = (&self.backend, B::Real::one());
        let zeta = be.solve_join(&self.factor, &dual.c, t, w)?;
        let (mut b, mut h) = unstack(be, w, self.dims.p)?;
        be.apply(&mut b, Accum::Add, &self.a, Trans::No, &zeta, self.rho)?;
        be.apply(&mut h, Accum::Add, &self.g, Trans::No, &zeta, self.rho)?;
        let mut q = zeta.clone();
        be.axpby(-one, &zeta, B::Real::zero(), &mut q)?;
        Ok((q, b, h))
    }

    fn with_closed_forms(
        &self,
        solution: &Solution<B>,
        q: B::Mat,
        b: B::Mat,
        h: B::Mat,
    ) -> Result<Grads<B>> {
        let [p, a, g] = closed_forms(
            &self.backend,
            [&self.p, &self.a, &self.g],
            [solution.x(), solution.lam(), solution.nu()],
            [&q, &b, &h],
        )?;
        Ok(Grads {
            q,
            b,
            h,
            p: Some(p),
            a: Some(a),
            g: Some(g),
        })
    }

    /// The tolerance of adjoint convergence: the residual rule's, or 1e-10.
    pub(super) fn adjoint_tolerance(&self) -> (B::Real, B::Real) {
        match self.settings.stopping {
            StoppingRule::Residual { eps_abs, eps_rel } => {
                (B::Real::of(eps_abs), B::Real::of(eps_rel))
            }
            _ => (B::Real::of(1e-10), B::Real::of(1e-10)),
        }
    }
}
