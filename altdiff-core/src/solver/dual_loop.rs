//! The iteration loop of [`AltDiff`] in the dual space (see [`dual`](super::dual)).

#[allow(clippy::wildcard_imports)]
use super::*;

impl<B: LinAlg> AltDiff<B> {
    /// The loop of [`AltDiff::run`] in the dual space (see [`dual`]): forward block and
    /// constant tangent blocks on `p + m` rows, `x` formed at the end. With adaptive rho a
    /// new penalty refactors `H` and forms `M` again.
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
        // the penalty, factor and operators in force (adaptive rho replaces them)
        let mut penalty: Option<(B::Real, B::Factor, DualOps<B>)> = None;
        let mut fwd = DualBlock::from_iterate(be, &iterate)?;
        let iterate_tangents = self.settings.method == Method::AltDiff && !use_limit;
        let mut warm = warm.into_iter();
        let mut tangents = Vec::new();
        let rule = self.settings.stopping;
        let criterion = Criterion::of(rule);
        // the polish ends forward solves of a coarse factorization too: they cannot meet the
        // residual rule by iterating
        let polishing = (use_limit
            || (self.refines() && specs.is_empty() && self.settings.tape == Tape::Off))
            && criterion.is_some()
            && self.settings.tape == Tape::Off;
        // a polish's limit system that no tangent reuses may take H's arithmetic: its solves
        // are refined
        let coarse_limit = specs.is_empty();
        let mut schedule = PolishSchedule::default();
        let mut polished: Option<Polished<B>> = None;
        let mut tape = self.new_tape();
        let carried = if iterate_tangents {
            specs.iter().map(|(_, spec)| spec.k).sum()
        } else {
            0
        };
        let mut checks = self.checks(true, carried);
        let (limit, mut status) = self.iteration_limit();
        let deadline = self.deadline();
        let mut iterations = 0;
        let mut last_change = 0;
        let mut changes = 0;
        let mut monitor = Monitor::new();
        let certifier = self.certifier();
        let mut certificate = None;
        let mut last: Option<Measures> = None;
        // the first iteration at which residual balancing is due
        let mut next_balance = self.settings.adaptive_rho.map_or(usize::MAX, |a| a.every);
        'penalty: loop {
            let dk = match &penalty {
                Some((rho, factor, ops)) => DualKernel {
                    backend: be,
                    ops,
                    factor,
                    rho: *rho,
                    alpha: B::Real::of(self.settings.alpha),
                },
                None => self.dual_kernel(dual),
            };
            let affine = self.affine(params)?;
            let data = dk.data(&affine.c, &params.b, &params.h)?;
            let host = dk.host_data(&params.q, true, &data.bh)?;
            if iterate_tangents && tangents.is_empty() {
                for (key, spec) in specs {
                    let start = match warm.next().flatten() {
                        Some(it) => it,
                        None => Iterate::zeros(be, dims, spec.k)?,
                    };
                    let block = DualBlock::from_iterate(be, &start)?;
                    let (tdata, thost) = self.tangent_terms(&dk, *key, spec)?;
                    tangents.push((*key, *spec, block, tdata, thost));
                }
            } else {
                // a new penalty: the tangents' constant terms follow it, their state carries over
                for (key, spec, _, tdata, thost) in &mut tangents {
                    (*tdata, *thost) = self.tangent_terms(&dk, *key, spec)?;
                }
            }
            while iterations < limit {
                if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                    status = Status::TimeLimit;
                    break;
                }
                iterations += 1;
                let check = checks.due(iterations, limit);
                let prev = Previous {
                    x: match rule {
                        StoppingRule::RelativeX(_) if check => Some(dk.x(&fwd, &data)?),
                        _ => None,
                    },
                    objective: match rule {
                        StoppingRule::RelativeObjective(_) if check && iterations > 1 => {
                            Some(dk.objectives(&fwd, &host)?[0] * self.units.cost)
                        }
                        _ => None,
                    },
                };
                dk.step(&mut fwd, &data, None)?;
                if let Some(tape) = &mut tape {
                    tape.masks
                        .push(mask_bits(&be.to_col_major(&fwd.s)?[dims.p..]));
                }
                for (_, _, blk, tdata, _) in &mut tangents {
                    dk.step(blk, tdata, Some(&fwd.s))?;
                }
                if !check {
                    continue;
                }
                // the other rules need no residuals: their finite objective and iterate
                // the whole test (two products with C') when the primal rows pass, the
                // penalty is due for balancing, or the iterate is not finite
                let balance_due = self.settings.adaptive_rho.is_some()
                    && tape.is_none()
                    && iterations >= next_balance;
                let (now, mut done) = match criterion {
                    Some(c)
                        if !balance_due
                            && be.norm_inf(&fwd.cx)?.is_finite()
                            && !dk.primal_passes(&fwd, &host, &c, &self.units, dims.p)?[0] =>
                    {
                        (None, false)
                    }
                    Some(c) => {
                        let now = dk.columns(&fwd, &host, true, dims.p, |col| {
                            c.point(col, dims.p, &self.units)
                        })?[0];
                        (Some(now), now.passes)
                    }
                    None => {
                        let objective = dk.objectives(&fwd, &host)?[0] * self.units.cost;
                        let finite = objective.is_finite()
                            && be.norm_inf(&fwd.y)?.is_finite()
                            && be.norm_inf(&fwd.cx)?.is_finite();
                        if !finite {
                            status = Status::NumericalError;
                            break;
                        }
                        let x = match rule {
                            StoppingRule::RelativeX(_) => dk.x(&fwd, &data)?,
                            _ => fwd.y.clone(),
                        };
                        (None, changes_small(be, rule, objective, &x, &prev)?)
                    }
                };
                if let Some(now) = now {
                    last = Some(now);
                    if !now.is_finite() {
                        status = Status::NumericalError;
                        break;
                    }
                }
                if polishing {
                    let mask = mask_bits(&be.to_col_major(&fwd.s)?);
                    let due = schedule.due_or_converged(mask, iterations, done);
                    if due {
                        let iterate = dk.primal(&fwd, &data, dims.p)?;
                        let found = self.corrected_polish(&iterate.s, params, |mask| {
                            self.polish_candidate(
                                Some((&dk, &data)),
                                &iterate,
                                mask,
                                params,
                                true,
                                coarse_limit,
                            )
                        })?;
                        schedule.record(found.is_some());
                        if found.is_some() {
                            polished = found;
                            status = Status::Solved;
                            break 'penalty;
                        }
                    }
                }
                if let Some(c) = criterion
                    && done
                {
                    for (_, _, blk, _, thost) in &tangents {
                        let tangent =
                            dk.columns(blk, thost, false, dims.p, |col| c.tangent(col, dims.p))?;
                        done = done && tangent.into_iter().all(|ok| ok);
                    }
                    if done && self.refines() {
                        // a coarse factorization iterates a nearby problem, whose residuals
                        // these are: the true residuals decide
                        done = self
                            .measure(&dk.primal(&fwd, &data, dims.p)?, params)?
                            .passes;
                    }
                }
                if done {
                    status = Status::Solved;
                    break 'penalty;
                }
                if let Some(adaptive) = self.settings.adaptive_rho
                    && balance_due
                    && now.is_some()
                {
                    next_balance = iterations + adaptive.every;
                }
                if let Some(adaptive) = self.settings.adaptive_rho
                    && let Some(now) = now
                    && tape.is_none()
                    && changes < adaptive.max_updates
                    && iterations - last_change >= adaptive.every
                    && let Some(proposal) = balanced_rho(dk.rho, &now, adaptive.factor)
                {
                    // a penalty whose H does not factor is not taken, nor any after it
                    let mut factor = match self.refactor_with(dk.factor, proposal) {
                        Ok(factor) => factor,
                        Err(Error::NotPositiveDefinite { .. }) => {
                            changes = adaptive.max_updates;
                            continue;
                        }
                        Err(other) => return Err(other),
                    };
                    let ops = DualOps::keeping(be, &self.a, &self.g, &mut factor, dims)?;
                    // v = y + rho s: the state carries over to the new penalty
                    penalty = Some((proposal, factor, ops));
                    last_change = iterations;
                    changes += 1;
                    continue 'penalty;
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
            break;
        }
        let dk = match &penalty {
            Some((rho, factor, ops)) => DualKernel {
                backend: be,
                ops,
                factor,
                rho: *rho,
                alpha: B::Real::of(self.settings.alpha),
            },
            None => self.dual_kernel(dual),
        };
        let affine = self.affine(params)?;
        let data = dk.data(&affine.c, &params.b, &params.h)?;
        // out of iterations or time: the last mask's polish, if it was not tried
        if polishing
            && polished.is_none()
            && matches!(status, Status::MaxIterations | Status::TimeLimit)
            && schedule.untried(mask_bits(&be.to_col_major(&fwd.s)?))
        {
            polished = self.try_polish(&dk.primal(&fwd, &data, dims.p)?, params, true)?;
            if polished.is_some() {
                status = Status::Solved;
            }
        }
        // back to the primal iterate: x from the last v, lam / nu / s unstacked
        let (iterate, measures, non_unique, limit_system) = match polished {
            Some(p) => (p.iterate, p.measures, p.non_unique, p.limit),
            None => {
                let iterate = dk.primal(&fwd, &data, dims.p)?;
                let measures = match last {
                    Some(m) if !self.refines() => m,
                    _ => self.measure(&iterate, params)?,
                };
                (iterate, measures, false, None)
            }
        };
        let tangents = tangents
            .iter()
            .map(|(key, _, blk, tdata, _)| Ok((*key, dk.primal(blk, tdata, dims.p)?)))
            .collect::<Result<Vec<_>>>()?;
        // a system made at another penalty than the solver's does not serve its VJPs
        let same_penalty = penalty.is_none();
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
        let mut solution = if limit_tangents {
            let mut stacked = vec![B::Real::zero(); dims.p];
            stacked.extend(be.to_col_major(&iterate.s)?);
            let system = match limit_system {
                Some(system) => Ok(system),
                None => Limit::new(be, dk.ops, &stacked, dims.p, dk.rho, false),
            };
            match system {
                Ok(system) => {
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
                    solution.limit = same_penalty.then(|| std::sync::Arc::new(system));
                    solution
                }
                // a degenerate mask: iterate the tangents from the solution instead
                Err(Error::SingularKkt { .. }) => {
                    let mut solution =
                        self.run_in(params, iterate, specs, Vec::new(), None, false)?;
                    solution.iterations += iterations;
                    return Ok(solution);
                }
                Err(other) => return Err(other),
            }
        } else {
            let mut solution =
                self.finish(iterate, tangents, tape, status, iterations, measures, specs)?;
            solution.limit = limit_system
                .filter(|_| same_penalty)
                .map(std::sync::Arc::new);
            solution
        };
        solution.certificate = certificate;
        solution.rho = dk.rho;
        solution.non_unique = non_unique;
        Ok(solution)
    }

    /// The constant terms of a tangent block and their host data (for its residuals).
    fn tangent_terms(
        &self,
        dk: &DualKernel<'_, B>,
        key: TangentKey,
        spec: &TangentSpec<B>,
    ) -> Result<(DualData<B>, DualHost)> {
        let data = self.tangent_data(dk, key, &spec.constant)?;
        let host = dk.host_data(&spec.constant.q, false, &data.bh)?;
        Ok((data, host))
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

    /// The forward polish by the limit system of the stacked slack `stacked`'s mask: its
    /// fixed point with its system ([`LimitPolish::Point`]): the residual rule judges it
    /// next, and a multiplier of the wrong sign or a violated row corrects the mask
    /// ([`AltDiff::corrected_polish`]). With a coarse factorization ([`AltDiff::refines`])
    /// the point is refined first (see [`refine`](super::refine)); then the system may be
    /// factored coarsely too (`coarse`, [`Limit::new`]) when it serves only refined solves.
    pub(super) fn polish_limit(
        &self,
        dk: &DualKernel<'_, B>,
        dual: &DualOps<B>,
        stacked: &[B::Real],
        data: &DualData<B>,
        params: &QpParams<B>,
        coarse: bool,
    ) -> Result<LimitPolish<B>> {
        let (be, dims, rho) = (&self.backend, self.dims, dk.rho);
        let (one, zero) = (B::Real::one(), B::Real::zero());
        let system = match Limit::new(be, dual, stacked, dims.p, rho, coarse) {
            Ok(system) => system,
            Err(Error::SingularKkt { .. }) => return Ok(LimitPolish::Singular),
            Err(other) => return Err(other),
        };
        // v = y + rho (s - [b; h]) at the fixed point; the old variable y + rho s below
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
            (Some(x), v)
        } else {
            let mut shifted = point.clone();
            be.axpby(rho, &data.bh, B::Real::one(), &mut shifted)?;
            (None, be.to_col_major(&shifted)?)
        };
        // the multipliers as they are (a negative one tells the caller to drop its row), the
        // slacks of the other rows clipped at zero (a violated row shows as active)
        let (mut y, mut s) = (vec![zero; v.len()], vec![zero; v.len()]);
        for (i, &vi) in v.iter().enumerate() {
            if system.is_inactive(i) {
                s[i] = vi.max(zero) / rho;
            } else {
                y[i] = vi;
            }
        }
        // x of the point itself (refined, or of its v)
        let x = match refined {
            Some(x) => x,
            None => dk.x_of(&point, data)?,
        };
        let (lam, nu) = unstack(be, &be.mat_from_col_major(y.len(), 1, &y)?, dims.p)?;
        let (_, slack) = unstack(be, &be.mat_from_col_major(s.len(), 1, &s)?, dims.p)?;
        let iterate = Iterate {
            x,
            s: slack,
            lam,
            nu,
        };
        Ok(LimitPolish::Point(iterate, system))
    }
}

/// What the limit system's polish made of a mask.
pub(super) enum LimitPolish<B: LinAlg> {
    /// The system is singular (dependent active rows, or `P` singular on their null space):
    /// the regularized polish may still solve it.
    Singular,
    /// The KKT point of the mask (its multipliers as they are), and the factored system.
    Point(Iterate<B>, Limit<B>),
}
