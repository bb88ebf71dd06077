//! The differentiability report ([`AltDiff::differentiability`]): whether the derivative of
//! the solution exists at the active set every VJP mode differentiates on, and how close
//! the active set is to changing.
//!
//! **The active-set rule, one for every mode** (limit, implicit, KKT, and the unrolled
//! adjoint at convergence): an inequality is active when its slack is exactly zero in the
//! solver's final iterate (`s_i = 0`, what the ADMM projection and the polish produce). At
//! a weakly active row (`s_i = 0` and `nu_i = 0`) the derivative returned is the one-sided
//! derivative that keeps the row binding; the report then says `degenerate`.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The verdict of a [`Differentiability`] report.
///
/// # Example
/// ```
/// use altdiff_core::DerivativeStatus;
/// assert_eq!(DerivativeStatus::NearDegenerate.as_str(), "near_degenerate");
/// assert!(DerivativeStatus::Differentiable.is_differentiable());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DerivativeStatus {
    /// The solution is unique, the active rows are independent (LICQ), strictly
    /// complementary, and every margin is comfortable: the derivative exists and is the one
    /// returned.
    Differentiable,
    /// The derivative exists at the active set found, but an active multiplier or an
    /// inactive slack is below the margin ([`Differentiability::margin`]): a solve a little
    /// less accurate could have found another active set and another derivative.
    NearDegenerate,
    /// The derivative does not exist as a two-sided derivative: the active rows are
    /// dependent (LICQ fails: the multipliers, and the derivatives wrt `b` and `h`, are not
    /// unique), or a row is weakly active (the one-sided derivative is returned).
    Degenerate,
    /// The solution is not unique (`P` singular on the null space of the active rows): a
    /// derivative of one solution among many.
    NotUnique,
}

impl DerivativeStatus {
    /// `"differentiable"`, `"near_degenerate"`, `"degenerate"` or `"not_unique"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DerivativeStatus::Differentiable => "differentiable",
            DerivativeStatus::NearDegenerate => "near_degenerate",
            DerivativeStatus::Degenerate => "degenerate",
            DerivativeStatus::NotUnique => "not_unique",
        }
    }

    /// Whether this is [`DerivativeStatus::Differentiable`].
    pub fn is_differentiable(self) -> bool {
        self == DerivativeStatus::Differentiable
    }
}

/// Whether the derivative at a solution exists and how far it is from changing: see
/// [`AltDiff::differentiability`]. Margins are relative, in the units the solver iterates
/// in (the equilibrated problem when it scales).
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{AltDiff, DerivativeStatus, Qp, Settings, testing::{RefBackend, tiny_qp}};
/// let qp = Qp::from_host(&RefBackend, &tiny_qp())?;
/// let solver = AltDiff::new(RefBackend, &qp, Settings::default())?;
/// let sol = solver.solve(qp.params())?;
/// let report = solver.differentiability(&sol)?;
/// assert_eq!(report.status, DerivativeStatus::Differentiable);
/// assert_eq!(report.licq, Some(true));
/// assert!(report.weakly_active.is_empty() && report.min_active_multiplier > 1e-3);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Differentiability {
    /// The verdict.
    pub status: DerivativeStatus,
    /// Whether the active rows (equalities and active inequalities) are linearly
    /// independent, from the pivots of their KKT Schur complement; `None` when that would
    /// take a dense factorization of more than 2000 rows the derivative does not use
    /// (unless there are more active rows than variables).
    pub licq: Option<bool>,
    /// The smallest multiplier of an active inequality over `max(1, |nu|, |lam|)` (`inf`
    /// when none is active).
    pub min_active_multiplier: f64,
    /// The smallest slack of an inactive inequality over `max(1, |(Gx)_i|, |h_i|)` (`inf`
    /// when none is inactive).
    pub min_inactive_slack: f64,
    /// An estimate of the condition number of the KKT Schur complement
    /// `C_A (P + rho C_A'C_A)^-1 C_A'` on the active rows: the spread of its Cholesky pivots
    /// (a lower bound of its condition number), from the factorization the limit VJP uses
    /// (dense backends), else from `C_A H^-1 C_A'` factored on the host; `inf` when singular,
    /// `None` where [`Differentiability::licq`] is.
    pub kkt_condition: Option<f64>,
    /// Active inequalities whose multiplier is below the solve's tolerance.
    pub weakly_active: Vec<usize>,
    /// The number of active inequalities.
    pub active: usize,
    /// The margin below which a multiplier or slack makes the report `near_degenerate`:
    /// `10 tol`, `tol = eps_abs + eps_rel` the solve's tolerance (`2e-5` at the defaults;
    /// chosen on Maros-Meszaros against finite differences: `docs/defaults.md`).
    pub margin: f64,
}

/// [`Differentiability::margin`] over the solve's tolerance. On the 50 Maros-Meszaros
/// problems with `n + rows <= 2500` checked against finite differences: `sqrt(tol)`
/// flagged 33 (17 right), `10 tol` 23 (27 right, none wrong unflagged), `0.5 tol` 21 with
/// one wrong derivative unflagged (KSIP, slack `1.7e-6`); see `docs/defaults.md`.
const MARGIN_OVER_TOL: f64 = 10.0;

/// The condition estimate above which the active rows count as dependent:
/// `eps^(-3/4)` of the factorization's precision (`5e11` in `f64`).
fn licq_limit(epsilon: f64) -> f64 {
    epsilon.powf(-0.75)
}

/// What the report is computed from, on the host.
pub(crate) struct Margins<'a> {
    /// The slacks and multipliers of the inequalities, and `Gx`.
    pub s: &'a [f64],
    pub nu: &'a [f64],
    pub gx: &'a [f64],
    /// `|lam|_inf`.
    pub lam_max: f64,
    /// The solve's relative tolerance.
    pub tol: f64,
    /// Variables and equalities.
    pub n: usize,
    pub p: usize,
}

impl Margins<'_> {
    /// The report for a solution that is `unique` or not, with the pivots of the Schur
    /// complement when there is one (`Err(())` when its factorization failed: dependent
    /// rows) and the factorization's unit roundoff.
    pub fn report(
        &self,
        unique: bool,
        pivots: Option<Result<Vec<f64>, ()>>,
        epsilon: f64,
    ) -> Differentiability {
        let scale = self
            .nu
            .iter()
            .fold(self.lam_max.max(1.0), |m, v| m.max(v.abs()));
        let tol = self.tol;
        let mut min_active_multiplier = f64::INFINITY;
        let mut min_inactive_slack = f64::INFINITY;
        let mut weakly_active = Vec::new();
        let mut active = 0;
        for (i, ((&s, &nu), &gx)) in self.s.iter().zip(self.nu).zip(self.gx).enumerate() {
            if crate::kernels::keeps(s) {
                let row = 1.0_f64.max(gx.abs()).max((gx + s).abs());
                min_inactive_slack = min_inactive_slack.min(s / row);
            } else {
                active += 1;
                let multiplier = nu / scale;
                min_active_multiplier = min_active_multiplier.min(multiplier);
                if multiplier <= tol {
                    weakly_active.push(i);
                }
            }
        }
        let kkt_condition = match &pivots {
            Some(Ok(pivots)) => Some(spread(pivots)),
            Some(Err(())) => Some(f64::INFINITY),
            None => None,
        };
        let licq = if active + self.p > self.n {
            Some(false)
        } else {
            match &pivots {
                Some(Ok(pivots)) => Some(spread_is_regular(pivots, epsilon)),
                Some(Err(())) => Some(false),
                None => None,
            }
        };
        let margin = MARGIN_OVER_TOL * tol;
        let status = if !unique {
            DerivativeStatus::NotUnique
        } else if licq == Some(false) || !weakly_active.is_empty() {
            DerivativeStatus::Degenerate
        } else if min_active_multiplier < margin || min_inactive_slack < margin {
            DerivativeStatus::NearDegenerate
        } else {
            DerivativeStatus::Differentiable
        };
        Differentiability {
            status,
            licq,
            min_active_multiplier,
            min_inactive_slack,
            kkt_condition,
            weakly_active,
            active,
            margin,
        }
    }
}

/// The most active rows whose independence [`AltDiff::differentiability`] tests on the host
/// (a dense factorization of that order) when the backend gives no pivots.
const HOST_LICQ_ROWS: usize = 2000;

/// The pivots of the Cholesky factorization of the symmetric `a` (`n x n`, column-major,
/// its lower triangle read), or `Err(())` at a pivot that is not positive.
fn cholesky_pivots(mut a: Vec<f64>, n: usize) -> Result<Vec<f64>, ()> {
    let mut pivots = Vec::with_capacity(n);
    for j in 0..n {
        for k in 0..j {
            let ljk = a[k * n + j];
            if ljk != 0.0 {
                for i in j..n {
                    a[j * n + i] -= a[k * n + i] * ljk;
                }
            }
        }
        let d = a[j * n + j];
        if !(d > 0.0 && d.is_finite()) {
            return Err(());
        }
        pivots.push(d);
        let l = d.sqrt();
        a[j * n + j..(j + 1) * n].iter_mut().for_each(|v| *v /= l);
    }
    Ok(pivots)
}

/// Whether the symmetric `gram` (`n x n`, column-major) of `n` rows is positive definite
/// with pivots spread less than the LICQ limit at unit roundoff `epsilon`: the rows it is
/// the Gram matrix of (through `H^-1`) are independent.
pub(crate) fn independent_rows(gram: Vec<f64>, n: usize, epsilon: f64) -> bool {
    cholesky_pivots(gram, n).is_ok_and(|p| spread_is_regular(&p, epsilon))
}

/// Whether Cholesky pivots spread less than the LICQ limit at unit roundoff `epsilon`.
pub(crate) fn spread_is_regular(pivots: &[f64], epsilon: f64) -> bool {
    spread(pivots) < licq_limit(epsilon)
}

/// The largest pivot over the smallest (`inf` when one is not positive; 1 for none).
fn spread(pivots: &[f64]) -> f64 {
    let (lo, hi) = pivots
        .iter()
        .fold((f64::INFINITY, 0.0_f64), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    match pivots.len() {
        0 => 1.0,
        _ if lo > 0.0 && lo.is_finite() => hi / lo,
        _ => f64::INFINITY,
    }
}

impl<B: LinAlg> AltDiff<B> {
    /// The differentiability report of a solution: the active set (the rows with `s = 0`,
    /// the rule of every VJP mode), its margins, whether its rows are independent (from the
    /// pivots of the limit system's Schur complement, the factorization the default VJP uses:
    /// kept from the polish, or formed here on the dense backends), and the verdict
    /// ([`DerivativeStatus`]). With [`Settings::require_differentiable`], [`AltDiff::vjp`]
    /// returns [`Error::NotDifferentiable`] unless the verdict is `differentiable`.
    ///
    /// # Errors
    /// [`Error::Request`] for a solution that is not solved; a backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::{AltDiff, DerivativeStatus, Field, HostMatrix, HostQp, Qp, Settings};
    /// use altdiff_core::testing::RefBackend;
    /// // min x0^2 + x1^2 - 2 x0 s.t. x0 <= 1 twice: the same row active twice (LICQ fails)
    /// let qp = HostQp {
    ///     p: HostMatrix::from_fn(2, 2, |i, j| if i == j { 2.0 } else { 0.0 }),
    ///     q: vec![-4.0, 0.0],
    ///     a: HostMatrix::zeros(0, 2),
    ///     b: vec![],
    ///     g: HostMatrix::from_rows(Field::G, &[vec![1.0, 0.0], vec![1.0, 0.0]])?,
    ///     h: vec![1.0, 1.0],
    /// };
    /// let qp = Qp::from_host(&RefBackend, &qp)?;
    /// let solver = AltDiff::new(RefBackend, &qp, Settings::default())?;
    /// let report = solver.differentiability(&solver.solve(qp.params())?)?;
    /// assert_eq!((report.status, report.licq), (DerivativeStatus::Degenerate, Some(false)));
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn differentiability(&self, solution: &Solution<B>) -> Result<Differentiability> {
        if !solution.status().is_solved() {
            return Err(Error::Request(
                "a differentiability report needs a solved problem",
            ));
        }
        match (&self.scaling, solution.inner.as_deref()) {
            (Some(_), Some(inner)) => self.differentiability_in(inner, solution.is_unique()),
            _ => self.differentiability_in(solution, solution.is_unique()),
        }
    }

    /// [`AltDiff::differentiability`] in the units the solver iterates in.
    fn differentiability_in(
        &self,
        solution: &Solution<B>,
        unique: bool,
    ) -> Result<Differentiability> {
        let be = &self.backend;
        let s = download(be, solution.s())?;
        let nu = download(be, solution.nu())?;
        let lam = download(be, solution.lam())?;
        let mut gx = be.zeros(self.dims.m, 1)?;
        be.apply(
            &mut gx,
            Accum::Replace,
            &self.g,
            Trans::No,
            solution.x(),
            B::Real::one(),
        )?;
        let gx = download(be, &gx)?;
        let tol = match self.settings.stopping {
            StoppingRule::Residual { eps_abs, eps_rel } => eps_abs + eps_rel,
            _ => 2e-6,
        };
        let margins = Margins {
            s: &s,
            nu: &nu,
            gx: &gx,
            lam_max: lam.iter().fold(0.0, |m, v| m.max(v.abs())),
            tol,
            n: self.dims.n,
            p: self.dims.p,
        };
        let (pivots, epsilon) = match self.schur_pivots(solution)? {
            Some(pivots) => (Some(pivots), be.factor_epsilon()),
            None => (self.host_pivots(&s)?, f64::EPSILON),
        };
        Ok(margins.report(unique, pivots, epsilon))
    }

    /// Without the limit system's pivots (sparse backends, `p + m > 2n`): the pivots of
    /// `C_A H^-1 C_A'` (singular exactly when the active rows are dependent) from the
    /// solver's own factor of `H` and a Cholesky factorization on the host, when the active
    /// rows number at most [`HOST_LICQ_ROWS`]; `None` above.
    fn host_pivots(&self, s: &[f64]) -> Result<Option<Result<Vec<f64>, ()>>> {
        let be = &self.backend;
        let active: Vec<usize> = (0..s.len())
            .filter(|&i| !crate::kernels::keeps(s[i]))
            .collect();
        let rows = self.dims.p + active.len();
        if rows == 0 {
            return Ok(Some(Ok(Vec::new())));
        }
        if rows > HOST_LICQ_ROWS {
            return Ok(None);
        }
        let g_active = be.op_select_rows(&self.g, &active)?;
        let c = be.op_stack_rows(&self.a, &g_active)?;
        let (gram, _) = be.gram_inverse(&self.factor, &c, false)?;
        Ok(Some(cholesky_pivots(download(be, &gram)?, rows)))
    }

    /// The pivots of the limit system's Schur complement at the solution's active set:
    /// the system kept by the polish, or one formed here when the backend has a dense dual
    /// space (`Err(())` when it is singular); `None` without one.
    fn schur_pivots(&self, solution: &Solution<B>) -> Result<Option<Result<Vec<f64>, ()>>> {
        let be = &self.backend;
        let mut stacked = vec![B::Real::zero(); self.dims.p];
        stacked.extend(be.to_col_major(solution.s())?);
        if let Some(system) = &solution.limit
            && system.is_for(&stacked)
        {
            return system.schur_pivots(be).map(|p| p.map(Ok));
        }
        let Some(dual) = self.polish_dual_ops()? else {
            return Ok(None);
        };
        match Limit::new(be, dual, &stacked, self.dims.p, self.rho, self.refines()) {
            Ok(system) => system.schur_pivots(be).map(|p| p.map(Ok)),
            Err(Error::SingularKkt { .. }) => Ok(Some(Err(()))),
            Err(other) => Err(other),
        }
    }
}
