//! [`AltDiff`]: set up once (one factorization), solve for many parameter sets.

mod iteration;
mod solution;
mod status;
mod termination;

pub use iteration::Iterate;
pub use solution::{HostSolution, Solution};
pub use status::Status;

use num_traits::{Float, One, Zero};

use crate::solver::iteration::{Affine, Kernel, Slack, Workspace};
use crate::solver::termination::{
    MeasureScratch, Measures, Operators, Previous, converged, residuals_small,
};
use crate::{
    Accum, Error, Field, LinAlg, Param, QpDims, QpParams, QpProblem, Real, Result, Settings,
    StoppingRule, Trans,
};

/// The Alt-Diff solver for one `(P, A, G, rho)`: `H = P + rho (A'A + G'G)` is factored once
/// in [`AltDiff::new`], then [`AltDiff::solve`] runs ADMM for any `(q, b, h)` and carries the
/// Jacobians chosen in [`Settings::wrt`] alongside.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{AltDiff, Param, Settings, Wrt, testing::{RefBackend, tiny_qp}};
/// let qp = altdiff_core::Qp::from_host(&RefBackend, &tiny_qp())?;
/// let solver = AltDiff::new(RefBackend, &qp, Settings::default().with_wrt(Wrt::all()))?;
/// let sol = solver.solve(qp.params())?.to_host(&RefBackend)?;
/// // x* = (0, 0.5, 0.5) and dx/db = (3/7, 0, 4/7)
/// assert!((sol.x[2] - 0.5).abs() < 1e-4);
/// assert!((sol.jacobian(Param::B).unwrap().get(2, 0) - 4.0 / 7.0).abs() < 1e-4);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Debug)]
pub struct AltDiff<B: LinAlg> {
    backend: B,
    dims: QpDims,
    p: B::Op,
    a: B::Op,
    g: B::Op,
    factor: B::Factor,
    rho: B::Real,
    settings: Settings,
    /// The constant tangent data of each requested parameter.
    seeds: Vec<(Param, Seed<B>)>,
}

impl<B: LinAlg> AltDiff<B> {
    /// Validates the settings, tests the convexity of `P` (unless disabled) and factors `H`.
    ///
    /// # Errors
    /// [`Error::Settings`], [`Error::NotConvex`], [`Error::NotPositiveDefinite`], or a
    /// backend error.
    pub fn new(backend: B, problem: &impl QpProblem<B>, settings: Settings) -> Result<Self> {
        settings.validate()?;
        let dims = problem.dims();
        let rho = B::Real::of(settings.rho);
        if settings.check_convexity {
            check_convexity(&backend, problem.p())?;
        }
        let factor = backend.factor(problem.p(), problem.a(), problem.g(), rho)?;
        let mut solver = Self {
            dims,
            p: problem.p().clone(),
            a: problem.a().clone(),
            g: problem.g().clone(),
            factor,
            rho,
            settings,
            seeds: Vec::new(),
            backend,
        };
        solver.seeds = solver
            .settings
            .wrt
            .iter()
            .map(|param| Ok((param, solver.seed(param)?)))
            .collect::<Result<_>>()?;
        Ok(solver)
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The problem sizes.
    pub fn dims(&self) -> QpDims {
        self.dims
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Solves from the zero iterate.
    ///
    /// # Errors
    /// [`Error::Dimension`] or [`Error::NonFinite`] for bad parameters, or a backend error.
    pub fn solve(&self, params: &QpParams<B>) -> Result<Solution<B>> {
        params.validate(&self.backend, self.dims)?;
        let iterate = Iterate::zeros(&self.backend, self.dims, 1)?;
        let tangents = self.zero_tangents()?;
        self.run(params, iterate, tangents)
    }

    /// Solves starting from a previous solution's iterate (`s`, `lam`, `nu`) and, for the
    /// parameters it carries, its Jacobian state; other Jacobians start from zero.
    ///
    /// # Errors
    /// As [`AltDiff::solve`]; [`Error::Dimension`] when `start` has other sizes.
    pub fn solve_warm(&self, params: &QpParams<B>, start: &Solution<B>) -> Result<Solution<B>> {
        params.validate(&self.backend, self.dims)?;
        let be = &self.backend;
        let got = QpDims {
            n: be.shape(start.x()).0,
            p: be.shape(start.lam()).0,
            m: be.shape(start.nu()).0,
        };
        if got != self.dims {
            return Err(Error::Dimension {
                field: Field::WarmStart,
                expected: (self.dims.n, 1),
                got: (got.n, 1),
            });
        }
        let mut tangents = self.zero_tangents()?;
        for (param, t) in &mut tangents {
            if let Some(prev) = start.tangent(*param) {
                *t = prev.clone();
            }
        }
        self.run(params, start.iterate.clone(), tangents)
    }

    fn zero_tangents(&self) -> Result<Vec<(Param, Iterate<B>)>> {
        self.seeds
            .iter()
            .map(|(param, _)| {
                Ok((
                    *param,
                    Iterate::zeros(&self.backend, self.dims, self.param_len(*param))?,
                ))
            })
            .collect()
    }

    /// The size of a parameter.
    fn param_len(&self, param: Param) -> usize {
        match param {
            Param::Q => self.dims.n,
            Param::B => self.dims.p,
            Param::H => self.dims.m,
        }
    }

    /// The constant tangent data of `param`: the derivatives `(dq, db, dh)` of the data,
    /// one of them the identity, and the affine terms they give.
    fn seed(&self, param: Param) -> Result<Seed<B>> {
        let (be, dims, d) = (&self.backend, self.dims, self.param_len(param));
        let identity = identity(be, d)?;
        let mut data = QpParams {
            q: be.zeros(dims.n, d)?,
            b: be.zeros(dims.p, d)?,
            h: be.zeros(dims.m, d)?,
        };
        match param {
            Param::Q => be.copy_from(&mut data.q, &identity)?,
            Param::B => be.copy_from(&mut data.b, &identity)?,
            Param::H => be.copy_from(&mut data.h, &identity)?,
        }
        Ok(Seed {
            affine: self.affine(&data)?,
            data,
        })
    }

    /// The affine terms of data `(q, b, h)`: `c = q - rho A'b - rho G'h`, `b`, `h`.
    /// For derivatives of the data this gives `E = I`, `-rho A'` or `-rho G'`.
    fn affine(&self, data: &QpParams<B>) -> Result<Affine<B>> {
        let be = &self.backend;
        let mut c = data.q.clone();
        be.apply(&mut c, Accum::Add, &self.a, Trans::Yes, &data.b, -self.rho)?;
        be.apply(&mut c, Accum::Add, &self.g, Trans::Yes, &data.h, -self.rho)?;
        Ok(Affine {
            c,
            b: data.b.clone(),
            h: data.h.clone(),
        })
    }

    /// The iteration loop: forward step, then every tangent step with the new slack's mask,
    /// a convergence check every `check_every` iterations.
    fn run(
        &self,
        params: &QpParams<B>,
        mut iterate: Iterate<B>,
        mut tangents: Vec<(Param, Iterate<B>)>,
    ) -> Result<Solution<B>> {
        let be = &self.backend;
        let kernel = Kernel {
            backend: be,
            a: &self.a,
            g: &self.g,
            factor: &self.factor,
            rho: self.rho,
        };
        let ops = Operators {
            backend: be,
            p: &self.p,
            a: &self.a,
            g: &self.g,
        };
        let data = self.affine(params)?;
        let mut ws = Workspace::new(be, self.dims, 1)?;
        let mut tangent_ws = tangents
            .iter()
            .map(|(_, t)| Workspace::new(be, self.dims, t.ncols(be)))
            .collect::<Result<Vec<_>>>()?;
        let mut scratch = MeasureScratch::new(be, self.dims, 1)?;
        let mut tangent_scratch: Vec<Option<MeasureScratch<B>>> =
            tangents.iter().map(|_| None).collect();
        let rule = self.settings.stopping;
        let limit = match rule {
            StoppingRule::Fixed(k) => k,
            _ => self.settings.max_iter,
        };
        let mut status = match rule {
            StoppingRule::Fixed(_) => Status::FixedIterations,
            _ => Status::MaxIterations,
        };
        let mut iterations = 0;
        let mut last: Option<Measures<B::Real>> = None;
        while iterations < limit {
            iterations += 1;
            let check = !matches!(rule, StoppingRule::Fixed(_))
                && (iterations % self.settings.check_every == 0 || iterations == limit);
            let prev = if check {
                Some(self.snapshot(rule, &ops, &iterate, params, &mut scratch)?)
            } else {
                None
            };
            kernel.step(&mut iterate, &data, Slack::Project, &mut ws)?;
            for (((_, tangent), (_, seed)), tws) in
                tangents.iter_mut().zip(&self.seeds).zip(&mut tangent_ws)
            {
                kernel.step(tangent, &seed.affine, Slack::Mask(&iterate.s), tws)?;
            }
            last = None;
            let Some(prev) = prev else { continue };
            let now = ops.measure(&iterate, params, &ws, &mut scratch)?;
            last = Some(now);
            if !now.is_finite() || !tangents_finite(be, &tangents)? {
                status = Status::NumericalError;
                break;
            }
            if !converged(be, rule, &now, &iterate.x, &prev)? {
                continue;
            }
            // The Jacobians must have converged too: the residuals of the differentiated
            // KKT conditions, measured once the solution itself passes.
            if let StoppingRule::Residual { eps_abs, eps_rel } = rule {
                let mut all_small = true;
                for (i, ((_, tangent), (_, seed))) in tangents.iter().zip(&self.seeds).enumerate() {
                    let sc = match &mut tangent_scratch[i] {
                        Some(sc) => sc,
                        slot => slot.insert(MeasureScratch::new(be, self.dims, tangent.ncols(be))?),
                    };
                    let m = ops.measure(tangent, &seed.data, &tangent_ws[i], sc)?;
                    if !residuals_small(&m, eps_abs, eps_rel) {
                        all_small = false;
                        break;
                    }
                }
                if !all_small {
                    continue;
                }
            }
            status = Status::Solved;
            break;
        }
        // After at least one step `ws.gx` holds `Gx` of the final iterate.
        let measures = match last {
            Some(m) => m,
            None => ops.measure(&iterate, params, &ws, &mut scratch)?,
        };
        if !measures.is_finite() {
            status = Status::NumericalError;
        }
        Ok(Solution {
            iterate,
            tangents,
            status,
            iterations,
            objective: measures.objective,
            primal_residual: measures.primal,
            dual_residual: measures.dual,
        })
    }

    /// What the stopping rule needs of the iterate before a step.
    fn snapshot(
        &self,
        rule: StoppingRule,
        ops: &Operators<'_, B>,
        iterate: &Iterate<B>,
        params: &QpParams<B>,
        scratch: &mut MeasureScratch<B>,
    ) -> Result<Previous<B>> {
        let mut prev = Previous {
            x: None,
            objective: None,
        };
        match rule {
            StoppingRule::Residual { .. } => {}
            StoppingRule::RelativeObjective(_) => {
                prev.objective = Some(ops.objective(&iterate.x, &params.q, scratch)?)
            }
            StoppingRule::RelativeX(_) => prev.x = Some(iterate.x.clone()),
            StoppingRule::Fixed(_) => {}
        }
        Ok(prev)
    }
}

/// The constant data of one tangent block: the derivatives of `(q, b, h)` with respect to
/// the parameter, and the affine terms `(E, db, dh)` of the iteration they give.
#[derive(Debug)]
struct Seed<B: LinAlg> {
    data: QpParams<B>,
    affine: Affine<B>,
}

/// Whether every Jacobian block is finite.
fn tangents_finite<B: LinAlg>(backend: &B, tangents: &[(Param, Iterate<B>)]) -> Result<bool> {
    for (_, t) in tangents {
        if !backend.norm_inf(&t.x)?.is_finite() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The `d x d` identity block.
fn identity<B: LinAlg>(backend: &B, d: usize) -> Result<B::Mat> {
    let mut data = vec![B::Real::zero(); d * d];
    for i in 0..d {
        data[i * d + i] = B::Real::one();
    }
    backend.mat_from_col_major(d, d, &data)
}

/// Tests that `P` is positive semidefinite: Cholesky of `P + shift I` with
/// `shift = sqrt(eps) * max(1, max|P|)`.
fn check_convexity<B: LinAlg>(backend: &B, p: &B::Op) -> Result<()> {
    let scale = backend
        .op_to_col_major(p)?
        .into_iter()
        .fold(1.0_f64, |s, v| s.max(v.to_f64_lossy().abs()));
    let shift = f64::EPSILON.sqrt() * scale;
    if backend.is_psd_with_shift(p, B::Real::of(shift))? {
        Ok(())
    } else {
        Err(Error::NotConvex { shift })
    }
}
