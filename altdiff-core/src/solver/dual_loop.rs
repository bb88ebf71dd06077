//! The iteration loop of [`AltDiff`] in the dual space (see [`dual`](super::dual)).

#[allow(clippy::wildcard_imports)]
use super::*;

impl<B: LinAlg> AltDiff<B> {
    /// The loop of [`AltDiff::run`] in the dual space (see [`dual`]): forward block and
    /// constant tangent blocks on `p + m` rows, `x` formed at the end.
    pub(super) fn run_dual(
        &self,
        dual: &DualOps<B>,
        params: &QpParams<B>,
        iterate: Iterate<B>,
        specs: &[(TangentKey, &TangentSpec<B>)],
        warm: Vec<Option<Iterate<B>>>,
        use_limit: bool,
    ) -> Result<Solution<B>> {
        let (be, dims) = (&self.backend, self.dims);
        let dk = self.dual_kernel(dual);
        let affine = self.affine(params)?;
        let data = dk.data(&affine.c, &params.b, &params.h)?;
        let mut fwd = DualBlock::from_iterate(be, &iterate)?;
        let iterate_tangents = self.settings.method == Method::AltDiff && !use_limit;
        let mut warm = warm.into_iter();
        let mut tangents = Vec::new();
        if iterate_tangents {
            for (key, spec) in specs {
                let start = match warm.next().flatten() {
                    Some(it) => it,
                    None => Iterate::zeros(be, dims, spec.k)?,
                };
                tangents.push((
                    *key,
                    *spec,
                    DualBlock::from_iterate(be, &start)?,
                    self.tangent_data(&dk, *key, &spec.constant)?,
                ));
            }
        }
        let objective = match self.settings.stopping {
            StoppingRule::RelativeObjective(_) => Some(dk.objective_data(&params.q, &data)?),
            _ => None,
        };
        // the polish ends forward solves of a coarse factorization too: they cannot meet the
        // residual rule by iterating
        let polishing = (use_limit
            || (self.refines() && specs.is_empty() && self.settings.tape == Tape::Off))
            && matches!(self.settings.stopping, StoppingRule::Residual { .. });
        // a polish's limit system that no tangent reuses may take H's arithmetic: its solves
        // are refined
        let coarse_limit = specs.is_empty();
        let mut masks = MaskHistory::default();
        let mut limit_system = None;
        let mut polished = None;
        let mut tape = self.new_tape();
        let rule = self.settings.stopping;
        let (limit, mut status) = self.iteration_limit();
        let deadline = self.deadline();
        let mut iterations = 0;
        let mut monitor = Monitor::new();
        let certifier = self.certifier();
        let mut certificate = None;
        while iterations < limit {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                status = Status::TimeLimit;
                break;
            }
            iterations += 1;
            // with the polish on, the residual test (two products with C') runs every few
            // iterations only: the polish, tried once the mask settles, usually ends first
            let check = self.is_check(iterations, limit)
                && (!polishing
                    || iterations.is_multiple_of(MaskHistory::STABLE)
                    || iterations == limit);
            let s_old: Option<Vec<B::Mat>> = check.then(|| {
                std::iter::once(fwd.s.clone())
                    .chain(tangents.iter().map(|t| t.2.s.clone()))
                    .collect()
            });
            let x_old = match rule {
                StoppingRule::RelativeX(_) if check && iterations > 1 => Some(dk.x(&fwd, &data)?),
                _ => None,
            };
            let f_old = match &objective {
                Some(obj) if check && iterations > 1 => Some(dk.objective(&fwd, obj)?),
                _ => None,
            };
            dk.step(&mut fwd, &data, None)?;
            if let Some(tape) = &mut tape {
                tape.masks
                    .push(mask_bits(&be.to_col_major(&fwd.s)?[dims.p..]));
            }
            for (_, _, blk, tdata) in &mut tangents {
                dk.step(blk, tdata, Some(&fwd.s))?;
            }
            if polishing
                && masks.settled(mask_bits(&be.to_col_major(&fwd.s)?), iterations)
                && let Some((iterate, system, measures, products)) =
                    self.polish(&dk, dual, &fwd, &data, params, coarse_limit)?
            {
                polished = Some((iterate, measures, products));
                limit_system = Some(system);
                status = Status::Solved;
                break;
            }
            let Some(s_old) = s_old else { continue };
            let (abs, rel) = self.adjoint_tolerance();
            // the residuals (two products with C') only for the residual rule; the other
            // rules need finite iterates
            let (small, primal, dual_res) = if matches!(rule, StoppingRule::Residual { .. }) {
                dk.residuals_small(&fwd, &s_old[0], &data, abs, rel)?
            } else {
                (false, be.norm_inf(&fwd.cx)?, be.norm_inf(&fwd.y)?)
            };
            if !(primal.is_finite() && dual_res.is_finite()) {
                status = Status::NumericalError;
                break;
            }
            let mut done = match rule {
                StoppingRule::Residual { eps_abs, eps_rel } => {
                    let (abs, rel) = (B::Real::of(eps_abs), B::Real::of(eps_rel));
                    let mut ok = small;
                    for ((_, _, blk, tdata), old) in tangents.iter().zip(&s_old[1..]) {
                        if !ok {
                            break;
                        }
                        let (t_small, tp, td) = dk.residuals_small(blk, old, tdata, abs, rel)?;
                        if !(tp.is_finite() && td.is_finite()) {
                            status = Status::NumericalError;
                        }
                        ok = t_small;
                    }
                    ok
                }
                StoppingRule::RelativeObjective(tol) => match (f_old, &objective) {
                    (Some(f_old), Some(obj)) => {
                        let f_new = dk.objective(&fwd, obj)?;
                        (f_new - f_old).abs() <= B::Real::of(tol) * f_old.abs()
                    }
                    _ => false,
                },
                StoppingRule::RelativeX(tol) => match &x_old {
                    Some(x_old) => {
                        let mut d = dk.x(&fwd, &data)?;
                        be.axpby(-B::Real::one(), x_old, B::Real::one(), &mut d)?;
                        be.norm_inf(&d)?
                            <= B::Real::of(tol) * be.norm_inf(x_old)?.max(B::Real::one())
                    }
                    None => false,
                },
                StoppingRule::Fixed(_) => false,
            };
            if status == Status::NumericalError {
                break;
            }
            if let StoppingRule::Residual { eps_abs, eps_rel } = rule
                && done
                && polishing
                && self.refines()
            {
                // a coarse factorization iterates a nearby problem, whose residuals these
                // are: the refined polish (once per mask) or the true residuals decide
                if masks.claim()
                    && let Some((iterate, system, measures, products)) =
                        self.polish(&dk, dual, &fwd, &data, params, coarse_limit)?
                {
                    polished = Some((iterate, measures, products));
                    limit_system = Some(system);
                    status = Status::Solved;
                    break;
                }
                let measures = self.measure_iterate(&dk.primal(&fwd, &data, dims.p)?, params)?;
                done = residuals_small(&measures, eps_abs, eps_rel);
            }
            if done {
                status = Status::Solved;
                break;
            }
            if monitor.due() {
                let (lam, nu) = unstack(be, &fwd.y, dims.p)?;
                if let Some(found) =
                    monitor.look(&certifier, params, &dk.x(&fwd, &data)?, &lam, &nu)?
                {
                    (status, certificate) = found.status();
                    break;
                }
            }
        }
        // back to the primal iterate: x from the last v, lam / nu / s unstacked
        let primal = |blk: &DualBlock<B>, data: &dual::DualData<B>| dk.primal(blk, data, dims.p);
        // the polish measured its iterate already
        let (iterate, measures, products) = match polished {
            Some(polished) => polished,
            None => {
                let iterate = primal(&fwd, &data)?;
                let measures = self.measure_iterate(&iterate, params)?;
                (iterate, measures, None)
            }
        };
        let tangents = tangents
            .iter()
            .map(|(key, _, blk, tdata)| Ok((*key, primal(blk, tdata)?)))
            .collect::<Result<Vec<_>>>()?;
        let limit_tangents = use_limit
            && self.settings.method == Method::AltDiff
            && !specs.is_empty()
            && matches!(
                status,
                Status::Solved
                    | Status::MaxIterations
                    | Status::TimeLimit
                    | Status::FixedIterations
            );
        if limit_tangents {
            let system = match limit_system {
                Some(system) => Ok(system),
                None => Limit::new(be, dual, &be.to_col_major(&fwd.s)?, dims.p, self.rho, false),
            };
            let system = match system {
                Ok(system) => system,
                // a degenerate mask: iterate the tangents from the solution instead
                Err(Error::SingularKkt { .. }) => {
                    let mut solution =
                        self.run_in(params, iterate, specs, Vec::new(), None, false)?;
                    solution.iterations += iterations;
                    return Ok(solution);
                }
                Err(other) => return Err(other),
            };
            let limits = self.limit_tangents(&dk, &system, &iterate, specs)?;
            let mut solution = self.finish(
                iterate,
                Vec::new(),
                tape,
                status,
                iterations,
                measures,
                specs,
            )?;
            solution.tangents = limits;
            solution.certificate = certificate;
            solution.limit = Some(std::sync::Arc::new(system));
            solution.products = products;
            return Ok(solution);
        }
        let mut solution =
            self.finish(iterate, tangents, tape, status, iterations, measures, specs)?;
        solution.certificate = certificate;
        solution.limit = limit_system.map(std::sync::Arc::new);
        solution.products = products;
        Ok(solution)
    }

    /// The constant terms of a tangent block in the dual space: read off `K` and `M` for
    /// the Jacobians wrt `b` and `h`, by a solve with `H` (and `K'` when formed) for the one
    /// wrt `q`, by a solve with `H` and a product with `C` otherwise.
    fn tangent_data(
        &self,
        dk: &DualKernel<'_, B>,
        key: TangentKey,
        data: &QpParams<B>,
    ) -> Result<DualData<B>> {
        let (p, r) = (self.dims.p, self.dims.p + self.dims.m);
        match key {
            TangentKey::Jacobian(Param::B) => dk.data_of_rows(0..p),
            TangentKey::Jacobian(Param::H) => dk.data_of_rows(p..r),
            TangentKey::Jacobian(Param::Q) => dk.data_of_q(),
            _ => {
                let aff = self.affine(data)?;
                dk.data(&aff.c, &aff.b, &aff.h)
            }
        }
    }

    /// The tangents as limits of the recursion for the final mask (matrix parameters
    /// through their effective data at the solution).
    fn limit_tangents(
        &self,
        dk: &DualKernel<'_, B>,
        system: &Limit<B>,
        iterate: &Iterate<B>,
        specs: &[(TangentKey, &TangentSpec<B>)],
    ) -> Result<Vec<(TangentKey, Derivative<B>)>> {
        let point = if specs.iter().any(|(_, s)| s.has_matrices()) {
            Some(self.host_point(iterate)?)
        } else {
            None
        };
        // the limit wrt q leaves the ones wrt b and h as a by-product
        let (mut q_x, q_z) = match specs
            .iter()
            .any(|(key, _)| *key == TangentKey::Jacobian(Param::Q))
        {
            true => {
                let q = system.q_tangent(dk.backend, &dk.data_of_q()?)?;
                (Some(q.x), Some(q.z))
            }
            false => (None, None),
        };
        let (p, r, n) = (self.dims.p, self.dims.p + self.dims.m, self.dims.n);
        specs
            .iter()
            .map(|(key, spec)| {
                let rows = match key {
                    TangentKey::Jacobian(Param::B) => Some(0..p),
                    TangentKey::Jacobian(Param::H) => Some(p..r),
                    _ => None,
                };
                if *key == TangentKey::Jacobian(Param::Q)
                    && let Some(x) = q_x.take()
                {
                    return Ok((*key, Derivative::Kkt(x)));
                }
                if let (Some(z), Some(rows)) = (&q_z, rows) {
                    let columns = system.unit_columns(dk.backend, z.as_ref(), rows, n)?;
                    return Ok((*key, Derivative::Kkt(columns)));
                }
                let data = match &point {
                    Some(point) if spec.has_matrices() => {
                        self.tangent_data(dk, *key, &spec.effective(dk.backend, self.dims, point)?)?
                    }
                    _ => self.tangent_data(dk, *key, &spec.constant)?,
                };
                Ok((*key, Derivative::Kkt(system.tangent(dk, &data)?)))
            })
            .collect()
    }

    /// The forward polish: the fixed point of the map for the current mask, accepted when it
    /// is a KKT point (`y >= 0` on the active inequalities, `s >= 0` on the others, up to the
    /// residual tolerance) whose residuals pass the rule, with its system and measures. With
    /// a coarse factorization ([`AltDiff::refines`]) the point is refined first (see
    /// [`refine`](super::refine)); then the system may be factored coarsely too (`coarse`,
    /// [`Limit::new`]) when it serves only refined solves.
    fn polish(
        &self,
        dk: &DualKernel<'_, B>,
        dual: &DualOps<B>,
        fwd: &DualBlock<B>,
        data: &DualData<B>,
        params: &QpParams<B>,
        coarse: bool,
    ) -> Result<Option<Polished<B>>> {
        let (be, dims, rho) = (&self.backend, self.dims, self.rho);
        let (one, zero) = (B::Real::one(), B::Real::zero());
        let StoppingRule::Residual { eps_abs, eps_rel } = self.settings.stopping else {
            return Ok(None);
        };
        let system = match Limit::new(be, dual, &be.to_col_major(&fwd.s)?, dims.p, rho, coarse) {
            Ok(system) => system,
            Err(Error::SingularKkt { .. }) => return Ok(None),
            Err(other) => return Err(other),
        };
        let point = system.point(be, data)?;
        let (refined, v) = if self.refines() {
            let (mut x, mut y) = (dk.x_of(&point, data)?, system.without_inactive(be, &point)?);
            let mut f = params.q.clone();
            be.axpby(-one, &params.q, zero, &mut f)?;
            let products = self.refine(dk, &system, (&f, &data.bh), (&mut x, &mut y))?;
            // v = y on A and rho s = rho ([b; h] - Cx) on I
            let mut slack = data.bh.clone();
            let cx = stack(be, &products.ax, &products.gx)?;
            be.axpby(-one, &cx, one, &mut slack)?;
            let (y, slack) = (be.to_col_major(&y)?, be.to_col_major(&slack)?);
            let v = (0..y.len())
                .map(|i| {
                    if system.is_inactive(i) {
                        rho * slack[i]
                    } else {
                        y[i]
                    }
                })
                .collect();
            (Some((x, products)), v)
        } else {
            (None, be.to_col_major(&point)?)
        };
        let scale = v.iter().fold(1.0_f64, |a, e| a.max(e.to_f64_lossy().abs()));
        let tol = B::Real::of(eps_abs + eps_rel * scale);
        let (mut y, mut s) = (vec![zero; v.len()], vec![zero; v.len()]);
        // whether a multiplier was clipped to zero (then y is not the refined one)
        let mut clipped = false;
        for (i, &vi) in v.iter().enumerate() {
            let inequality = i >= dims.p;
            if inequality && vi < -tol {
                return Ok(None);
            }
            if system.is_inactive(i) {
                s[i] = vi.max(zero) / rho;
            } else if inequality {
                clipped |= vi < zero;
                y[i] = vi.max(zero);
            } else {
                y[i] = vi;
            }
        }
        let (x, products) = match refined {
            Some((x, products)) => (x, (!clipped).then_some(products)),
            None => {
                let v: Vec<B::Real> = y.iter().zip(&s).map(|(&y, &s)| y + rho * s).collect();
                (
                    dk.x_of(&be.mat_from_col_major(v.len(), 1, &v)?, data)?,
                    None,
                )
            }
        };
        let (lam, nu) = unstack(be, &be.mat_from_col_major(y.len(), 1, &y)?, dims.p)?;
        let (_, slack) = unstack(be, &be.mat_from_col_major(s.len(), 1, &s)?, dims.p)?;
        let iterate = Iterate {
            x,
            s: slack,
            lam,
            nu,
        };
        // the refinement's last products are those of the iterate, unless y was clipped
        let measures = match &products {
            Some(products) => measure_products(be, &iterate, params, products.clone())?,
            None => self.measure_iterate(&iterate, params)?,
        };
        Ok(residuals_small(&measures, eps_abs, eps_rel)
            .then_some((iterate, system, measures, products)))
    }

    /// The residuals and objective of a primal iterate (one-off: fresh workspace).
    fn measure_iterate(
        &self,
        iterate: &Iterate<B>,
        params: &QpParams<B>,
    ) -> Result<Measures<B::Real>> {
        let products = self.operators().products(iterate)?;
        measure_products(&self.backend, iterate, params, products)
    }
}

/// An accepted polish: the iterate, the limit system of its mask, its measures and its
/// products (when the refinement left them).
type Polished<B> = (
    Iterate<B>,
    Limit<B>,
    Measures<<B as LinAlg>::Real>,
    Option<Products<B>>,
);

/// The forward mask over the iterations: when it has stayed the same for
/// [`MaskHistory::STABLE`] iterations, and was not tried before, a polish is due.
#[derive(Default)]
struct MaskHistory {
    current: Vec<u64>,
    since: usize,
    tried: Option<Vec<u64>>,
}

impl MaskHistory {
    /// Iterations with the same mask before a polish.
    const STABLE: usize = 5;

    /// True, once, for the current mask unless it was tried: a polish may run on it.
    fn claim(&mut self) -> bool {
        if self.tried.as_ref() == Some(&self.current) {
            return false;
        }
        self.tried = Some(self.current.clone());
        true
    }

    /// Records the mask of iteration `iteration`; true when a polish is due.
    fn settled(&mut self, mask: Vec<u64>, iteration: usize) -> bool {
        if mask != self.current {
            self.current = mask;
            self.since = iteration;
            return false;
        }
        if iteration - self.since >= Self::STABLE && self.tried.as_ref() != Some(&self.current) {
            self.tried = Some(self.current.clone());
            return true;
        }
        false
    }
}
