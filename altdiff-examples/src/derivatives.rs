//! `altdiff derivatives`: every way altdiff differentiates a QP, timed side by side on one
//! random problem: full Jacobians wrt `(q, b, h)` by Alt-Diff forward mode and by the KKT
//! method, and one VJP by the unrolled adjoint, the implicit adjoint and the KKT adjoint; and
//! both as the limit of the recursion solved directly ([`Settings::limit`]).

use std::time::Instant;

use altdiff_core::{AltDiff, HostMatrix, LinAlg, Method, Param, Qp, Settings, Tape, VjpMode, Wrt};

use crate::CliError;
use crate::backends::BackendJob;
use crate::demo::{DemoConfig, median};

/// One row of the derivatives table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DerivativeRow {
    /// Backend name.
    pub backend: &'static str,
    /// What was computed.
    pub what: &'static str,
    /// Iterations of the solve it needed.
    pub iterations: usize,
    /// The setup (convexity test, factorization, dual-space operators), seconds (median).
    pub setup_s: f64,
    /// The solve (with whatever it carries or records), seconds (median).
    pub solve_s: f64,
    /// The derivative work after the solve, seconds (median).
    pub after_s: f64,
    /// Relative error of `J'g` wrt `(q, b, h)` against the KKT Jacobians' `J'g`.
    pub rel_err: f64,
}

impl DerivativeRow {
    /// Table header.
    pub fn header() -> String {
        format!(
            "{:<8} {:<40} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "backend",
            "derivative",
            "iters",
            "setup s",
            "solve s",
            "after s",
            "total s",
            "J'g relerr"
        )
    }

    /// Table line.
    pub fn line(&self) -> String {
        format!(
            "{:<8} {:<40} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>10.2e}",
            self.backend,
            self.what,
            self.iterations,
            self.setup_s,
            self.solve_s,
            self.after_s,
            self.setup_s + self.solve_s + self.after_s,
            self.rel_err
        )
    }
}

/// Runs the comparison on one backend.
pub struct DerivativesJob<'a> {
    /// Problem and solver settings.
    pub config: &'a DemoConfig,
    /// The problem.
    pub qp: &'a altdiff_core::HostQp,
}

/// Times `f` `repeats` times; returns its last value and the median time.
fn timed<T>(
    repeats: usize,
    mut f: impl FnMut() -> Result<T, CliError>,
) -> Result<(T, f64), CliError> {
    let mut samples = Vec::new();
    let mut out = None;
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        out = Some(f()?);
        samples.push(started.elapsed());
    }
    Ok((out.expect("ran once"), median(samples).as_secs_f64()))
}

/// `J'g` from host Jacobians, concatenated for q, b, h.
fn jtg(jacobians: &[&HostMatrix], g: &[f64]) -> Vec<f64> {
    jacobians
        .iter()
        .flat_map(|j| {
            (0..j.ncols()).map(move |c| (0..j.nrows()).map(|r| j.get(r, c) * g[r]).sum::<f64>())
        })
        .collect()
}

fn rel_err(got: &[f64], exact: &[f64]) -> f64 {
    let diff: f64 = got.iter().zip(exact).map(|(a, b)| (a - b).powi(2)).sum();
    let norm: f64 = exact.iter().map(|v| v * v).sum();
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
}

impl BackendJob for DerivativesJob<'_> {
    type Output = Vec<DerivativeRow>;

    fn run<B: LinAlg<Real = f64>>(self, backend: B) -> Result<Vec<DerivativeRow>, CliError> {
        let (config, repeats) = (self.config, self.config.repeats);
        let problem = Qp::from_host(&backend, self.qp)?;
        let n = self.qp.q.len();
        let g_host: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37).sin()).collect();
        let g = backend.mat_from_col_major(n, 1, &g_host)?;
        let base = config.settings.clone();
        let solver = |settings: Settings| -> Result<(AltDiff<B>, f64), CliError> {
            timed(repeats, || {
                Ok(AltDiff::new(backend.clone(), &problem, settings.clone())?)
            })
        };
        let host_vjp = |grads: &altdiff_core::Grads<B>| -> Result<Vec<f64>, CliError> {
            let mut v = backend.to_col_major(&grads.q)?;
            v.extend(backend.to_col_major(&grads.b)?);
            v.extend(backend.to_col_major(&grads.h)?);
            Ok(v)
        };
        let name = backend.name();
        let mut rows = Vec::new();

        // exact reference: KKT Jacobians at the solution
        let (kkt, kkt_setup) = solver(
            base.clone()
                .with_wrt(Wrt::vectors())
                .with_method(Method::Kkt),
        )?;
        let (kkt_sol, kkt_s) = timed(repeats, || Ok(kkt.solve(problem.params())?))?;
        let kkt_host = kkt_sol.to_host(&backend)?;
        // an infeasible or unbounded problem (or a numerical failure) has no derivative
        let jac = |sol: &altdiff_core::HostSolution| -> Result<Vec<HostMatrix>, CliError> {
            Param::VECTORS
                .iter()
                .map(|&p| {
                    sol.jacobian(p).cloned().ok_or_else(|| CliError::NotSolved {
                        what: "altdiff derivatives",
                        status: sol.status.as_str().to_string(),
                    })
                })
                .collect()
        };
        if !(kkt_host.status.is_expected() || kkt_host.status.is_truncated()) {
            return Err(CliError::NotSolved {
                what: "altdiff derivatives",
                status: kkt_host.status.as_str().to_string(),
            });
        }
        let kkt_jacs = jac(&kkt_host)?;
        let exact = jtg(&kkt_jacs.iter().collect::<Vec<_>>(), &g_host);

        let (plain, plain_setup) = solver(base.clone())?;
        let (plain_sol, plain_s) = timed(repeats, || Ok(plain.solve(problem.params())?))?;
        rows.push(DerivativeRow {
            backend: name,
            what: "solve only (no derivative)",
            iterations: plain_sol.iterations(),
            setup_s: plain_setup,
            solve_s: plain_s,
            after_s: 0.0,
            rel_err: 0.0,
        });

        for (what, limit) in [
            ("Jacobian q,b,h: Alt-Diff forward", false),
            ("Jacobian q,b,h: Alt-Diff limit", true),
        ] {
            let (forward, setup_s) =
                solver(base.clone().with_wrt(Wrt::vectors()).with_limit(limit))?;
            let (fwd_sol, fwd_s) = timed(repeats, || Ok(forward.solve(problem.params())?))?;
            let fwd_jacs = jac(&fwd_sol.to_host(&backend)?)?;
            rows.push(DerivativeRow {
                backend: name,
                what,
                iterations: fwd_sol.iterations(),
                setup_s,
                solve_s: fwd_s,
                after_s: 0.0,
                rel_err: rel_err(&jtg(&fwd_jacs.iter().collect::<Vec<_>>(), &g_host), &exact),
            });
        }
        rows.push(DerivativeRow {
            backend: name,
            what: "Jacobian q,b,h: KKT",
            iterations: kkt_sol.iterations(),
            setup_s: kkt_setup,
            solve_s: plain_s,
            after_s: (kkt_s - plain_s).max(0.0),
            rel_err: 0.0,
        });

        let (taped, taped_setup) = solver(base.clone().with_tape(Tape::Full))?;
        let (taped_sol, taped_s) = timed(repeats, || Ok(taped.solve(problem.params())?))?;
        let (grads, vjp_s) = timed(repeats, || {
            Ok(taped.vjp(&taped_sol, &g, VjpMode::Unrolled)?)
        })?;
        rows.push(DerivativeRow {
            backend: name,
            what: "VJP: unrolled (tape: masks + x, lam, w)",
            iterations: taped_sol.iterations(),
            setup_s: taped_setup,
            solve_s: taped_s,
            after_s: vjp_s,
            rel_err: rel_err(&host_vjp(&grads)?, &exact),
        });
        let (masks, masks_setup) = solver(base.clone().with_tape(Tape::Masks))?;
        let (masks_sol, masks_s) = timed(repeats, || Ok(masks.solve(problem.params())?))?;
        let (grads, vjp_s) = timed(repeats, || {
            Ok(masks.vjp(&masks_sol, &g, VjpMode::Unrolled)?)
        })?;
        rows.push(DerivativeRow {
            backend: name,
            what: "VJP: unrolled q,b,h (tape: masks)",
            iterations: masks_sol.iterations(),
            setup_s: masks_setup,
            solve_s: masks_s,
            after_s: vjp_s,
            rel_err: rel_err(&host_vjp(&grads)?, &exact),
        });
        for (what, mode) in [
            ("VJP: implicit (fixed-point adjoint)", VjpMode::Implicit),
            ("VJP: KKT adjoint", VjpMode::Kkt),
        ] {
            let (grads, vjp_s) = timed(repeats, || Ok(plain.vjp(&plain_sol, &g, mode)?))?;
            rows.push(DerivativeRow {
                backend: name,
                what,
                iterations: plain_sol.iterations(),
                setup_s: plain_setup,
                solve_s: plain_s,
                after_s: vjp_s,
                rel_err: rel_err(&host_vjp(&grads)?, &exact),
            });
        }
        let (limit, limit_setup) = solver(base.clone().with_limit(true))?;
        let (limit_sol, limit_s) = timed(repeats, || Ok(limit.solve(problem.params())?))?;
        let (grads, vjp_s) = timed(repeats, || Ok(limit.vjp(&limit_sol, &g, VjpMode::Limit)?))?;
        rows.push(DerivativeRow {
            backend: name,
            what: "VJP: limit (polished solve)",
            iterations: limit_sol.iterations(),
            setup_s: limit_setup,
            solve_s: limit_s,
            after_s: vjp_s,
            rel_err: rel_err(&host_vjp(&grads)?, &exact),
        });
        Ok(rows)
    }
}
