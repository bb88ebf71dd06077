//! Certificates of primal infeasibility and unboundedness from the ADMM iterates (OSQP's
//! test, in altdiff's form `Ax = b`, `Gx <= h`).
//!
//! Every few convergence checks the monitor compares the iterate with the one of its
//! previous look. When ADMM diverges the differences converge to a direction:
//!
//! * primal infeasible (`Ax = b, Gx <= h` has no solution) when `dy = (dlam, dnu)` has
//!   `dnu >= -eps |dy|`, `|A'dlam + G'dnu| <= eps |dy|` and `b'dlam + h'dnu < -eps |dy|`
//!   (Farkas: no `x` can satisfy the constraints), and the certificate is strong: with
//!   `r = A'dlam + G'dnu` and `t = -(b'dlam + h'dnu)`, every feasible `x` has
//!   `r'x <= -t`, so none lies within `|x|_inf < t / |r|_1`; that radius must exceed
//!   [`RADIUS`] times `max(1, |x|_inf)` of the iterate (a slowly converging iteration on
//!   badly scaled data passes the first three tests with a weak certificate, of radius
//!   about `1 / n`);
//! * dual infeasible (the objective is unbounded below) when `dx` has `|P dx| <= eps |dx|`,
//!   `q'dx < -eps |dx|`, `|A dx| <= eps |dx|` and `G dx <= eps |dx|`.
//!
//! Norms are infinity norms and `eps = 1e-5`; the direction is returned as the certificate.

use num_traits::{Float, One};

use crate::{Accum, LinAlg, QpParams, Real, Result, Trans};

/// How many convergence checks pass between two looks of the monitor.
pub(crate) const CHECKS_PER_LOOK: usize = 10;

/// The tolerance of the certificates.
const EPS: f64 = 1e-5;

/// How far beyond the iterate a primal infeasibility certificate must rule out feasible
/// points (see the module docs).
const RADIUS: f64 = 1e3;

/// Which certificate was found, with its direction.
#[derive(Clone, Debug)]
pub(crate) enum Finding<B: LinAlg> {
    /// `(dlam, dnu)`: the constraints are infeasible.
    Primal(B::Mat, B::Mat),
    /// `dx`: the objective decreases without bound along it.
    Dual(B::Mat),
}

impl<B: LinAlg> Finding<B> {
    /// The status and the public certificate.
    pub fn status(self) -> (crate::Status, Option<crate::Certificate<B>>) {
        match self {
            Finding::Primal(lam, nu) => (
                crate::Status::PrimalInfeasible,
                Some(crate::Certificate::PrimalInfeasible { lam, nu }),
            ),
            Finding::Dual(x) => (
                crate::Status::DualInfeasible,
                Some(crate::Certificate::DualInfeasible { x }),
            ),
        }
    }
}

/// The iterate of the previous look.
pub(crate) struct Monitor<B: LinAlg> {
    prev: Option<[B::Mat; 3]>,
    checks: usize,
}

/// The operators the tests need.
pub(crate) struct Certifier<'a, B: LinAlg> {
    pub backend: &'a B,
    pub p: &'a B::Op,
    pub a: &'a B::Op,
    pub g: &'a B::Op,
}

impl<B: LinAlg> Monitor<B> {
    pub fn new() -> Self {
        Self {
            prev: None,
            checks: 0,
        }
    }

    /// Whether this convergence check is one where the monitor looks.
    pub fn due(&mut self) -> bool {
        self.checks += 1;
        self.checks.is_multiple_of(CHECKS_PER_LOOK)
    }

    /// Compares `(x, lam, nu)` with the previous look and remembers it.
    pub fn look(
        &mut self,
        cert: &Certifier<'_, B>,
        params: &QpParams<B>,
        x: &B::Mat,
        lam: &B::Mat,
        nu: &B::Mat,
    ) -> Result<Option<Finding<B>>> {
        let finding = match &self.prev {
            Some([px, plam, pnu]) => {
                let be = cert.backend;
                let one = B::Real::one();
                let diff = |now: &B::Mat, before: &B::Mat| -> Result<B::Mat> {
                    let mut d = now.clone();
                    be.axpby(-one, before, one, &mut d)?;
                    Ok(d)
                };
                let (dx, dlam, dnu) = (diff(x, px)?, diff(lam, plam)?, diff(nu, pnu)?);
                if cert.primal_infeasible(params, &dlam, &dnu, cert.backend.norm_inf(x)?)? {
                    Some(Finding::Primal(dlam, dnu))
                } else if cert.dual_infeasible(params, &dx)? {
                    Some(Finding::Dual(dx))
                } else {
                    None
                }
            }
            None => None,
        };
        self.prev = Some([x.clone(), lam.clone(), nu.clone()]);
        Ok(finding)
    }
}

impl<B: LinAlg> Certifier<'_, B> {
    fn eps() -> B::Real {
        B::Real::of(EPS)
    }

    /// The primal infeasibility test on `(dlam, dnu)`.
    pub fn primal_infeasible(
        &self,
        params: &QpParams<B>,
        dlam: &B::Mat,
        dnu: &B::Mat,
        x_norm: B::Real,
    ) -> Result<bool> {
        let be = self.backend;
        let scale = be.norm_inf(dlam)?.max(be.norm_inf(dnu)?);
        if !(scale.is_finite() && scale > B::Real::zero()) {
            return Ok(false);
        }
        let tol = Self::eps() * scale;
        let min_nu = be
            .to_col_major(dnu)?
            .into_iter()
            .fold(B::Real::zero(), |m, v| m.min(v));
        if min_nu < -tol {
            return Ok(false);
        }
        let n = be.op_shape(self.a).1;
        let mut r = be.zeros(n, 1)?;
        be.apply(
            &mut r,
            Accum::Replace,
            self.a,
            Trans::Yes,
            dlam,
            B::Real::one(),
        )?;
        be.apply(&mut r, Accum::Add, self.g, Trans::Yes, dnu, B::Real::one())?;
        let support = be.dot(&params.b, dlam)? + be.dot(&params.h, dnu)?;
        if !(be.norm_inf(&r)? <= tol && support < -tol) {
            return Ok(false);
        }
        let r1 = be
            .to_col_major(&r)?
            .into_iter()
            .fold(B::Real::zero(), |a, v| a + v.abs());
        let radius = -support / r1.max(B::Real::min_positive_value());
        Ok(radius > B::Real::of(RADIUS) * x_norm.max(B::Real::one()))
    }

    /// The unboundedness test on `dx`.
    pub fn dual_infeasible(&self, params: &QpParams<B>, dx: &B::Mat) -> Result<bool> {
        let be = self.backend;
        let scale = be.norm_inf(dx)?;
        if !(scale.is_finite() && scale > B::Real::zero()) {
            return Ok(false);
        }
        let tol = Self::eps() * scale;
        if be.dot(&params.q, dx)? >= -tol {
            return Ok(false);
        }
        let (n, p, m) = (be.shape(dx).0, be.op_shape(self.a).0, be.op_shape(self.g).0);
        let mut pdx = be.zeros(n, 1)?;
        be.apply(
            &mut pdx,
            Accum::Replace,
            self.p,
            Trans::No,
            dx,
            B::Real::one(),
        )?;
        let mut adx = be.zeros(p, 1)?;
        be.apply(
            &mut adx,
            Accum::Replace,
            self.a,
            Trans::No,
            dx,
            B::Real::one(),
        )?;
        let mut gdx = be.zeros(m, 1)?;
        be.apply(
            &mut gdx,
            Accum::Replace,
            self.g,
            Trans::No,
            dx,
            B::Real::one(),
        )?;
        let max_gdx = be
            .to_col_major(&gdx)?
            .into_iter()
            .fold(B::Real::neg_infinity(), |a, v| a.max(v));
        Ok(be.norm_inf(&pdx)? <= tol && be.norm_inf(&adx)? <= tol && max_gdx <= tol)
    }
}

use num_traits::Zero;
