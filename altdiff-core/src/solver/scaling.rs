//! Ruiz equilibration (see [`Ruiz`]) and the exact maps between the scaled problem the
//! solver iterates and the user's problem.
//!
//! With `x = D x_bar`, rows of `A` scaled by `E_A`, of `G` by `E_G`, and the cost by `c`:
//!
//! ```text
//! P_bar = c D P D   q_bar = c D q   A_bar = E_A A D   b_bar = E_A b   G_bar = E_G G D   h_bar = E_G h
//! x = D x_bar       s = s_bar / e_G   lam = E_A lam_bar / c   nu = E_G nu_bar / c   f = f_bar / c
//! ```
//!
//! A derivative of `x` wrt a parameter `theta` is `D J_bar R`, with `R = d theta_bar / d theta`
//! diagonal ([`Scaling::param_scale`]); a gradient is `R J_bar' D g`.

use crate::solver::iteration::Iterate;
use crate::solver::solution::{Certificate, Derivative, Solution, TangentKey};
use crate::solver::termination::Units;
use crate::solver::{Directions, Grads, SumBounds};
use crate::{HostMatrix, LinAlg, Param, QpDims, QpParams, Real, Result, Ruiz};

/// The bounds a row or column norm is clamped to in one Ruiz pass (OSQP's): a pass scales
/// by at most `1 / sqrt(MIN_SCALE) = 100` up and `100` down.
const MIN_SCALE: f64 = 1e-4;
/// See [`MIN_SCALE`].
const MAX_SCALE: f64 = 1e4;

/// The scaling of one problem.
#[derive(Debug)]
pub(crate) struct Scaling<B: LinAlg> {
    /// `x = D x_bar` (n).
    d: Vec<f64>,
    /// Row scales of `A` (p) and `G` (m).
    e_a: Vec<f64>,
    e_g: Vec<f64>,
    /// The cost scale.
    c: f64,
    /// The scaling maps the backend's blocks (the user's operators are not kept: the
    /// residuals in the user's units follow from the scaled problem's products).
    backend: std::marker::PhantomData<fn() -> B>,
}

/// `1 / sqrt(norm)`, with the norm clamped to the scaling bounds; a zero row or column stays
/// as it is. A row of norm `1e-6` is scaled up by `100` per pass until it is near 1 (OSQP
/// leaves rows below `1e-4` alone, and its iteration then stalls on them: measured on the
/// rows scaled over `1e-4 .. 1e4` of `altdiff trust`).
fn ruiz_factor(norm: f64) -> f64 {
    if norm == 0.0 || !norm.is_finite() {
        return 1.0;
    }
    1.0 / norm.clamp(MIN_SCALE, MAX_SCALE).sqrt()
}

/// Row norms beyond which a row is normalized outright before the Ruiz passes
/// (`MIN_SCALE^2 .. MAX_SCALE^2`): a pass moves a norm by at most 100, so ten passes leave a
/// row of `G` of `1e200` at `1e180`, whose square in `rho G'G` overflows (the dense backends
/// then failed the factorization of `H` with a message blaming `P`).
const EXTREME: (f64, f64) = (MIN_SCALE * MIN_SCALE, MAX_SCALE * MAX_SCALE);

/// Sets the scale of each row whose norm is outside [`EXTREME`] to `1 / norm` rounded to a
/// power of two (exact in floating point); whether there was one.
fn normalize_extreme(scales: &mut [f64], norms: &[f64]) -> bool {
    let mut any = false;
    for (scale, &norm) in scales.iter_mut().zip(norms) {
        if norm > 0.0 && norm.is_finite() && !(EXTREME.0..=EXTREME.1).contains(&norm) {
            *scale = (-norm.log2().round()).exp2();
            any = true;
        }
    }
    any
}

/// What [`Scaling::ruiz`] made of the data.
pub(crate) enum Ruized<B: LinAlg> {
    /// The scaling and the scaled `(P, A, G)`.
    Scaled(Scaling<B>, [B::Op; 3]),
    /// The norms spread less than the threshold: the data stays as it is. `sums` are the
    /// sums bounding `|H|` (and `|P|`), which the first pass measured.
    Unscaled { sums: SumBounds },
}

impl<B: LinAlg> Scaling<B> {
    /// Equilibrates `(P, A, G)` by `ruiz.iterations` passes over the columns and rows of the
    /// KKT matrix, then scales the cost by the mean column norm of the scaled `P`; returns
    /// the scaling and the scaled operators, or [`Ruized::Unscaled`] when the norms of the
    /// data spread less than `ruiz.threshold`.
    pub fn ruiz(backend: &B, ops: [&B::Op; 3], dims: QpDims, ruiz: Ruiz) -> Result<Ruized<B>> {
        let [p, a, g] = ops;
        let mut d = vec![1.0; dims.n];
        let mut e_a = vec![1.0; dims.p];
        let mut e_g = vec![1.0; dims.m];
        let real = |v: &[f64]| -> Vec<B::Real> { crate::problem::convert(v) };
        let f64s =
            |v: Vec<B::Real>| -> Vec<f64> { v.into_iter().map(Real::to_f64_lossy).collect() };
        for pass in 0..ruiz.iterations {
            let dr = real(&d);
            // the first pass (unit scales) also sums |P|, |A|, |G|: the bound on |H| of the
            // convexity test, when the data stays unscaled
            let (p_cols, a_rows, a_cols, g_rows, g_cols, sums) = if pass == 0 {
                // P is symmetric: its columns' maxima and sums are its rows'
                let pp = backend.op_abs_profile(p, false)?;
                let (ap, gp) = (
                    backend.op_abs_profile(a, true)?,
                    backend.op_abs_profile(g, true)?,
                );
                let sums = SumBounds::of(&pp.col_sums, [&ap, &gp]);
                (
                    pp.col_max, ap.row_max, ap.col_max, gp.row_max, gp.col_max, sums,
                )
            } else {
                let (_, p_cols) = backend.op_abs_max(p, &dr, &dr)?;
                let (a_rows, a_cols) = backend.op_abs_max(a, &real(&e_a), &dr)?;
                let (g_rows, g_cols) = backend.op_abs_max(g, &real(&e_g), &dr)?;
                (p_cols, a_rows, a_cols, g_rows, g_cols, SumBounds::default())
            };
            let p_cols = f64s(p_cols);
            let columns: Vec<f64> = p_cols
                .iter()
                .zip(f64s(a_cols))
                .zip(f64s(g_cols))
                .map(|((&pj, aj), gj)| pj.max(aj).max(gj))
                .collect();
            let (a_rows, g_rows) = (f64s(a_rows), f64s(g_rows));
            if pass == 0 && spread(columns.iter().chain(&a_rows).chain(&g_rows)) <= ruiz.threshold {
                return Ok(Ruized::Unscaled { sums });
            }
            if pass == 0
                && normalize_extreme(&mut e_a, &a_rows) | normalize_extreme(&mut e_g, &g_rows)
            {
                // the columns' norms were measured on the rows as given: next pass
                continue;
            }
            for (dj, norm) in d.iter_mut().zip(columns) {
                *dj *= ruiz_factor(norm);
            }
            for (e, rows) in [(&mut e_a, a_rows), (&mut e_g, g_rows)] {
                for (ei, norm) in e.iter_mut().zip(rows) {
                    *ei *= ruiz_factor(norm);
                }
            }
        }
        let dr = real(&d);
        let (_, p_cols) = backend.op_abs_max(p, &dr, &dr)?;
        let mean = f64s(p_cols).iter().sum::<f64>() / dims.n.max(1) as f64;
        let c = ruiz_factor(mean).powi(2);
        let scaling = Self {
            d,
            e_a,
            e_g,
            c,
            backend: std::marker::PhantomData,
        };
        let root_c = real(&scaling.root_c_d());
        let scaled = [
            backend.op_scaled(p, &root_c, &root_c)?,
            backend.op_scaled(a, &real(&scaling.e_a), &dr)?,
            backend.op_scaled(g, &real(&scaling.e_g), &dr)?,
        ];
        Ok(Ruized::Scaled(scaling, scaled))
    }

    /// `sqrt(c) D`: both sides of `c D P D` (one product per entry keeps it symmetric).
    fn root_c_d(&self) -> Vec<f64> {
        self.d.iter().map(|v| v * self.c.sqrt()).collect()
    }

    /// `R`: the diagonal of `d theta_bar / d theta` for the entries of `param` (column order
    /// of its Jacobian: row-major entries for the matrices).
    pub fn param_scale(&self, param: Param) -> Vec<f64> {
        let outer = |rows: &[f64], cols: &[f64], c: f64| -> Vec<f64> {
            rows.iter()
                .flat_map(|ri| cols.iter().map(move |cj| c * ri * cj))
                .collect()
        };
        match param {
            Param::Q => self.d.iter().map(|v| self.c * v).collect(),
            Param::B => self.e_a.clone(),
            Param::H => self.e_g.clone(),
            Param::P => outer(&self.d, &self.d, self.c),
            Param::A => outer(&self.e_a, &self.d, 1.0),
            Param::G => outer(&self.e_g, &self.d, 1.0),
        }
    }

    /// `(c D q, E_A b, E_G h)`.
    pub fn params(&self, backend: &B, params: &QpParams<B>) -> Result<QpParams<B>> {
        let mut scaled = params.clone();
        rows(backend, &mut scaled.q, &self.param_scale(Param::Q))?;
        rows(backend, &mut scaled.b, &self.e_a)?;
        rows(backend, &mut scaled.h, &self.e_g)?;
        Ok(scaled)
    }

    /// The directions of the scaled parameters (`dirs` validated).
    pub fn directions(&self, dirs: &Directions) -> Directions {
        dirs.map(|param, m| {
            let (rows, cols): (Vec<f64>, Option<&[f64]>) = match param {
                Param::Q => (self.param_scale(Param::Q), None),
                Param::B => (self.e_a.clone(), None),
                Param::H => (self.e_g.clone(), None),
                Param::P => (self.d.iter().map(|v| self.c * v).collect(), Some(&self.d)),
                Param::A => (self.e_a.clone(), Some(&self.d)),
                Param::G => (self.e_g.clone(), Some(&self.d)),
            };
            HostMatrix::from_fn(m.nrows(), m.ncols(), |i, j| {
                m.get(i, j) * rows[i] * cols.map_or(1.0, |c| c[j])
            })
        })
    }

    /// The row scales of `(x, s, lam, nu)` from the scaled iterate to the user's.
    fn iterate_scales(&self) -> [Vec<f64>; 4] {
        [
            self.d.clone(),
            self.e_g.iter().map(|v| 1.0 / v).collect(),
            self.e_a.iter().map(|v| v / self.c).collect(),
            self.e_g.iter().map(|v| v / self.c).collect(),
        ]
    }

    /// An iterate (or a tangent block, with column scales `cols`) in the user's units.
    pub(crate) fn unscale_iterate(
        &self,
        backend: &B,
        it: &Iterate<B>,
        cols: Option<&[f64]>,
    ) -> Result<Iterate<B>> {
        map_iterate(backend, it, &self.iterate_scales(), cols)
    }

    /// The user's iterate in the scaled units (for a warm start).
    pub fn scale_iterate(&self, backend: &B, it: &Iterate<B>) -> Result<Iterate<B>> {
        let inverse = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|x| 1.0 / x).collect() };
        map_iterate(backend, it, &self.iterate_scales().map(inverse), None)
    }

    /// The maps of the scaled problem's residuals to the user's units: `1 / e` per row,
    /// `1 / (c d)` per variable, `1 / c` for the gap and the objective.
    pub fn units(&self) -> Units {
        Units {
            rows: self.e_a.iter().chain(&self.e_g).map(|e| 1.0 / e).collect(),
            cols: self.d.iter().map(|d| 1.0 / (self.c * d)).collect(),
            cost: 1.0 / self.c,
        }
    }

    /// The solution of the scaled problem in the user's units, keeping the scaled one
    /// inside (for VJPs and warm starts). Its measures are already the user's (the
    /// stopping test maps them, [`Units`]).
    pub fn solution(&self, backend: &B, inner: Solution<B>) -> Result<Solution<B>> {
        let iterate = self.unscale_iterate(backend, &inner.iterate, None)?;
        let tangents = inner
            .tangents
            .iter()
            .map(|(key, derivative)| {
                let cols = match key {
                    TangentKey::Jacobian(param) => Some(self.param_scale(*param)),
                    TangentKey::Jvp => None,
                };
                let cols = cols.as_deref();
                let derivative = match derivative {
                    Derivative::Tangent(it) => {
                        Derivative::Tangent(self.unscale_iterate(backend, it, cols)?)
                    }
                    Derivative::Kkt(dx) => Derivative::Kkt(scaled(backend, dx, &self.d, cols)?),
                };
                Ok((*key, derivative))
            })
            .collect::<Result<_>>()?;
        let certificate = match &inner.certificate {
            Some(Certificate::PrimalInfeasible { lam, nu }) => {
                Some(Certificate::PrimalInfeasible {
                    lam: scaled(backend, lam, &self.e_a, None)?,
                    nu: scaled(backend, nu, &self.e_g, None)?,
                })
            }
            Some(Certificate::DualInfeasible { x }) => Some(Certificate::DualInfeasible {
                x: scaled(backend, x, &self.d, None)?,
            }),
            None => None,
        };
        Ok(Solution {
            iterate,
            rho: inner.rho,
            certificate,
            tangents,
            tape: None,
            limit: None,
            weakly_active: inner.weakly_active.clone(),
            status: inner.status,
            iterations: inner.iterations,
            objective: inner.objective,
            primal_residual: inner.primal_residual,
            dual_residual: inner.dual_residual,
            duality_gap: inner.duality_gap,
            non_unique: inner.non_unique,
            inner: Some(Box::new(inner)),
        })
    }

    /// `D g`: the seed of the scaled problem's VJP.
    pub fn seed(&self, backend: &B, g: &B::Mat) -> Result<B::Mat> {
        scaled(backend, g, &self.d, None)
    }

    /// The gradients of the scaled parameters mapped to the user's: `R grad_bar`.
    pub fn grads(&self, backend: &B, grads: Grads<B>) -> Result<Grads<B>> {
        let root_c = self.root_c_d();
        let matrix =
            |m: &Option<B::OpGrad>, rows: &[f64], cols: &[f64]| -> Result<Option<B::OpGrad>> {
                m.as_ref()
                    .map(|m| {
                        let mut host = backend.grad_to_host(m, crate::Field::P)?;
                        host.map_entries(|i, j, v| rows[i] * v * cols[j]);
                        backend.grad_from_host(&host)
                    })
                    .transpose()
            };
        Ok(Grads {
            q: scaled(backend, &grads.q, &self.param_scale(Param::Q), None)?,
            b: scaled(backend, &grads.b, &self.e_a, None)?,
            h: scaled(backend, &grads.h, &self.e_g, None)?,
            p: matrix(&grads.p, &root_c, &root_c)?,
            a: matrix(&grads.a, &self.e_a, &self.d)?,
            g: matrix(&grads.g, &self.e_g, &self.d)?,
        })
    }
}

/// `(x, s, lam, nu)` with their rows scaled by `rows` and their columns by `cols`.
fn map_iterate<B: LinAlg>(
    backend: &B,
    it: &Iterate<B>,
    rows: &[Vec<f64>; 4],
    cols: Option<&[f64]>,
) -> Result<Iterate<B>> {
    let [x, s, lam, nu] = rows;
    Ok(Iterate {
        x: scaled(backend, &it.x, x, cols)?,
        s: scaled(backend, &it.s, s, cols)?,
        lam: scaled(backend, &it.lam, lam, cols)?,
        nu: scaled(backend, &it.nu, nu, cols)?,
    })
}

/// The largest norm over the smallest nonzero one (1 when all are zero).
fn spread<'a>(norms: impl Iterator<Item = &'a f64>) -> f64 {
    let (lo, hi) = norms
        .filter(|v| **v > 0.0)
        .fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    if hi > 0.0 { hi / lo } else { 1.0 }
}

/// `diag(rows) m diag(cols)`, a new block.
fn scaled<B: LinAlg>(
    backend: &B,
    m: &B::Mat,
    rows: &[f64],
    cols: Option<&[f64]>,
) -> Result<B::Mat> {
    let mut out = m.clone();
    let cols: Option<Vec<B::Real>> = cols.map(crate::problem::convert);
    backend.scale_rows_cols(
        &mut out,
        Some(&crate::problem::convert(rows)),
        cols.as_deref(),
    )?;
    Ok(out)
}

/// `diag(scale) m` in place.
fn rows<B: LinAlg>(backend: &B, m: &mut B::Mat, scale: &[f64]) -> Result<()> {
    backend.scale_rows_cols(m, Some(&crate::problem::convert(scale)), None)
}
