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
    ) -> Result<Solution<B>> {
        let (be, dims) = (&self.backend, self.dims);
        let dk = DualKernel {
            backend: be,
            ops: dual,
            factor: &self.factor,
            rho: self.rho,
            alpha: B::Real::of(self.settings.alpha),
        };
        let ops = Operators {
            backend: be,
            p: &self.p,
            a: &self.a,
            g: &self.g,
        };
        let affine = self.affine(params)?;
        let data = dk.data(&affine.c, &params.b, &params.h)?;
        let mut fwd = DualBlock::from_iterate(be, &iterate)?;
        let iterate_tangents = self.settings.method == Method::AltDiff;
        let mut warm = warm.into_iter();
        let mut tangents = Vec::new();
        if iterate_tangents {
            for (key, spec) in specs {
                let start = match warm.next().flatten() {
                    Some(it) => it,
                    None => Iterate::zeros(be, dims, spec.k)?,
                };
                let aff = self.affine(&spec.constant)?;
                tangents.push((
                    *key,
                    *spec,
                    DualBlock::from_iterate(be, &start)?,
                    dk.data(&aff.c, &aff.b, &aff.h)?,
                ));
            }
        }
        let mut tape = self.new_tape();
        let rule = self.settings.stopping;
        let (limit, mut status) = self.iteration_limit();
        let mut scratch = MeasureScratch::new(be, dims, 1)?;
        let mut iterations = 0;
        let mut monitor = Monitor::new();
        let certifier = self.certifier();
        let mut certificate = None;
        while iterations < limit {
            iterations += 1;
            let check = self.is_check(iterations, limit);
            let s_old: Option<Vec<B::Mat>> = check.then(|| {
                std::iter::once(fwd.s.clone())
                    .chain(tangents.iter().map(|t| t.2.s.clone()))
                    .collect()
            });
            let x_old = match rule {
                StoppingRule::RelativeObjective(_) | StoppingRule::RelativeX(_)
                    if check && iterations > 1 =>
                {
                    Some(dk.x(&fwd, &data)?)
                }
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
            let Some(s_old) = s_old else { continue };
            let (abs, rel) = self.adjoint_tolerance();
            let (small, primal, dual_res) = dk.residuals_small(&fwd, &s_old[0], &data, abs, rel)?;
            if !(primal.is_finite() && dual_res.is_finite()) {
                status = Status::NumericalError;
                break;
            }
            let done = match rule {
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
                StoppingRule::RelativeObjective(tol) => match &x_old {
                    Some(x_old) => {
                        let (f_old, f_new) = (
                            ops.objective(x_old, &params.q, &mut scratch)?,
                            ops.objective(&dk.x(&fwd, &data)?, &params.q, &mut scratch)?,
                        );
                        (f_new - f_old).abs() <= B::Real::of(tol) * f_old.abs()
                    }
                    None => false,
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
        let primal = |blk: &DualBlock<B>, data: &dual::DualData<B>| -> Result<Iterate<B>> {
            let (lam, nu) = unstack(be, &blk.y, dims.p)?;
            let (_, s) = unstack(be, &blk.s, dims.p)?;
            Ok(Iterate {
                x: dk.x(blk, data)?,
                s,
                lam,
                nu,
            })
        };
        let iterate = primal(&fwd, &data)?;
        let tangents = tangents
            .iter()
            .map(|(key, _, blk, tdata)| Ok((*key, primal(blk, tdata)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut ws = Workspace::new(be, dims, 1)?;
        be.apply(
            &mut ws.gx,
            Accum::Replace,
            &self.g,
            Trans::No,
            &iterate.x,
            B::Real::one(),
        )?;
        let measures = ops.measure(&iterate, params, &ws, &mut scratch)?;
        let mut solution =
            self.finish(iterate, tangents, tape, status, iterations, measures, specs)?;
        solution.certificate = certificate;
        Ok(solution)
    }
}
