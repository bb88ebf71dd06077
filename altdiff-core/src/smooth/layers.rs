//! Ready-made objectives ([`Entropy`], [`SquaredDistance`], [`Quadratic`]) and layers
//! ([`Layer`]: softmax, sparsemax and their constrained variants) with their constraints.
//!
//! | layer | objective | constraints | closed form |
//! |---|---|---|---|
//! | [`LayerKind::Softmax`] | `sum x_i log x_i - y'x` | `1'x = 1` | `softmax(y)`, Jacobian `diag(s) - s s'` |
//! | [`LayerKind::CSoftmax`] | `sum x_i log x_i - y'x` | `1'x = 1`, `x <= u` (`x > 0` is the domain) | none |
//! | [`LayerKind::Sparsemax`] | `|x - y|^2` | `1'x = 1`, `x >= 0` | projection onto the simplex, Jacobian `diag(1_S) - 1_S 1_S'/|S|` |
//! | [`LayerKind::CSparsemax`] | `|x - y|^2` | `1'x = 1`, `0 <= x <= u` | none |
//!
//! The parameter `y` is the objective's (`theta`); `u` is the right-hand side of the
//! upper-bound rows of `G` (`dx/du` is those columns of `dx/dh`). The sparsemax objective is
//! quadratic: its `H` is factored once per solve.

use std::sync::Arc;

use num_traits::{Float, One, Zero};

use crate::smooth::{
    Hessian, InputProblem, SmoothGrads, SmoothObjective, SmoothParam, SmoothSettings,
    SmoothSolution, SmoothSolver, check_vector, to_real,
};
use crate::{Accum, Error, Field, HostMatrix, LinAlg, Real, Result, Status, Trans};

/// The first problem of `y` as a vector parameter: empty or non-finite.
fn check_parameter(name: &'static str, y: &[f64]) -> Result<()> {
    if y.is_empty() {
        return Err(Error::Input {
            name,
            problem: InputProblem::Empty,
        });
    }
    check_vector(name, y, y.len())
}

/// `y - max(y)` (saturating at `-f64::MAX`): every layer has `1'x = 1`, on which `y` and
/// `y + c 1` give the same solution (the objective moves by the constant `c`) and the same
/// derivatives. The sparsemax layers solve on these scores; the entropic ones on
/// [`water_level`]'s.
fn shifted(y: &[f64]) -> Vec<f64> {
    let top = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    y.iter().map(|v| (v - top).max(-f64::MAX)).collect()
}

/// The sparsemax scores (no caps): `y - max(y)`, raised to `-2` where below. The level
/// `tau` of `x = max(y - tau, 0)` is at least `max(y) - 1` (`x_max <= 1`), so such an entry
/// stays strictly at zero (`x_i = 0`, multiplier at least 2): neither `x` nor a derivative
/// moves, and scores `1e300` apart keep `|x - y|^2` finite.
fn sparsemax_scores(y: &[f64]) -> Vec<f64> {
    shifted(y).into_iter().map(|v| v.max(-2.0)).collect()
}

/// `log(sum_i exp(v_i))` without overflow (`-inf` for no entries).
fn log_sum_exp(v: impl Iterator<Item = f64> + Clone) -> f64 {
    let top = v.clone().fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        return top;
    }
    top + v.map(|x| (x - top).exp()).sum::<f64>().ln()
}

/// The level `tau` with `sum_i min(u_i, exp(y_i - tau)) = 1` (no caps without `u`): the
/// entropic layers' solution is `x_i = min(u_i, exp(y_i - tau))`, so on the scores `y - tau`
/// the equality's multiplier is `-1` and the free entries are `exp(score)` whatever the
/// magnitude or spread of `y`, or how far the caps push the mass down the ranking (`y`
/// near 25 with a cap, or a capped top entry 1000 above the rest, made `1/x` of the
/// iterates overflow when the scores were only shifted by their maximum).
///
/// Exact, by the breakpoints `c_i = y_i - log u_i` (entry `i` is capped when `tau <= c_i`):
/// with the `k` largest breakpoints capped, `tau = logsumexp(rest) - log(1 - U_k)`.
fn water_level(y: &[f64], u: Option<&[f64]>) -> f64 {
    let Some(u) = u else {
        return log_sum_exp(y.iter().copied());
    };
    let mut order: Vec<usize> = (0..y.len()).collect();
    let breakpoint = |i: usize| y[i] - u[i].ln();
    order.sort_by(|&i, &j| breakpoint(j).total_cmp(&breakpoint(i)));
    // free[k] = logsumexp of y over order[k..]
    let mut free = vec![f64::NEG_INFINITY; y.len() + 1];
    for k in (0..y.len()).rev() {
        free[k] = log_sum_exp([free[k + 1], y[order[k]]].into_iter());
    }
    let mut capped = 0.0;
    for (k, &i) in order.iter().enumerate() {
        if capped < 1.0 {
            let tau = free[k] - (1.0 - capped).ln();
            if tau > breakpoint(i) {
                return tau;
            }
        }
        capped += u[i];
    }
    // every entry capped (sum(u) = 1): any level below the smallest breakpoint
    order.last().map_or(0.0, |&i| breakpoint(i))
}

/// How far above its cap (`log u_i`) an entropic score may stay: a capped entry's multiplier
/// is `score_i - log u_i`, and the ADMM iterates swing as `exp` of its error (scores
/// hundreds above the cap drove `x_i` to `1e-309`). Measured on 120 random csoftmax layers
/// (`docs/defaults.md`): a margin of 20 left one of 30 at scale 1000 unsolved, 8 and 4
/// solve all with the same median iteration count.
const CAP_MARGIN: f64 = 8.0;

/// Lowers each score more than [`CAP_MARGIN`] above `log u_i` to that margin: the entry
/// stays strictly capped (`x_i = u_i`, `x_i < exp(score_i)`), so `x` is unchanged, as is
/// every derivative (`dx/dy_i` is zero on both sides of the clamp, the others do not see
/// `y_i`); only the reported multiplier of that cap and the internal objective move.
fn clamp_capped(scores: &mut [f64], u: &[f64]) {
    for (score, &u) in scores.iter_mut().zip(u) {
        *score = score.min(u.ln() + CAP_MARGIN);
    }
}

/// Half of `-log` of the smallest positive normal number of `R` (about 354 in `f64`, 44 in
/// `f32`): an entropic entry whose score `y_i - tau` is below minus this has `x_i` below
/// `1e-153` (`f64`; `1e-19` in `f32`), and the iterates, which swing as `exp` of the
/// multipliers' error, would take it past the range where the Hessian `1/x` is finite.
fn negligible_exponent<R: Real>() -> f64 {
    -0.5 * R::min_positive_value().to_f64_lossy().ln()
}

/// The entries an entropic layer keeps on the scores `y - tau`: all but the free ones
/// (score below `-cut` and cap `u_i` above `exp(score)`) whose `x_i = exp(score)` is
/// negligible; `None` when it keeps them all.
fn kept_entries(scores: &[f64], u: Option<&[f64]>, cut: f64) -> Option<Vec<usize>> {
    let negligible = |i: usize| scores[i] < -cut && u.is_none_or(|u| u[i].ln() > scores[i] + 1.0);
    let kept: Vec<usize> = (0..scores.len()).filter(|&i| !negligible(i)).collect();
    (kept.len() < scores.len() && !kept.is_empty()).then_some(kept)
}

/// The entropy objective `f(x) = sum_i x_i log x_i - y'x` on the domain `x > 0`, with
/// parameter `y` (`E = d_y grad f = -I`).
///
/// Its Hessian is `diag(1/x)`; `log` and `1/x` go through the host (`O(n)` per call).
/// With the constraint `1'x = 1` alone the minimizer is `softmax(y)`.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{LinAlg, smooth::{SmoothObjective, layers::Entropy}, testing::RefBackend};
/// let be = RefBackend;
/// let f = Entropy::new(vec![1.0, 0.0])?;
/// let x = be.mat_from_col_major(2, 1, &[1.0, 0.5])?;
/// let mut g = be.zeros(2, 1)?;
/// f.gradient(&be, &x, &mut g)?;                                 // 1 + log x - y
/// let g = be.to_col_major(&g)?;
/// assert!(g[0].abs() < 1e-15 && (g[1] - (1.0 + 0.5_f64.ln())).abs() < 1e-15);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Entropy {
    y: Vec<f64>,
}

impl Entropy {
    /// The entropy objective with parameter `y` (its length is `n`).
    ///
    /// # Errors
    /// [`Error::Input`] naming `y` when it is empty or has a NaN or infinite entry.
    ///
    /// # Example
    /// ```
    /// use altdiff_core::{Error, smooth::layers::Entropy};
    /// assert_eq!(Entropy::new(vec![1.0, 2.0])?.y(), &[1.0, 2.0]);
    /// assert!(matches!(Entropy::new(vec![f64::NAN]), Err(Error::Input { name: "y", .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(y: Vec<f64>) -> Result<Self> {
        check_parameter("y", &y)?;
        Ok(Self { y })
    }

    /// The parameter `y`.
    pub fn y(&self) -> &[f64] {
        &self.y
    }
}

impl<B: LinAlg> SmoothObjective<B> for Entropy {
    fn dim(&self) -> usize {
        self.y.len()
    }

    fn n_params(&self) -> usize {
        self.y.len()
    }

    fn value(&self, be: &B, x: &B::Mat) -> Result<B::Real> {
        let x = be.to_col_major(x)?;
        let mut sum = B::Real::zero();
        for (&xi, &yi) in x.iter().zip(&self.y) {
            if xi.is_nan() || xi < B::Real::zero() {
                return Ok(B::Real::infinity());
            }
            let entropy = if xi > B::Real::zero() {
                xi * xi.ln()
            } else {
                B::Real::zero()
            };
            sum = sum + entropy - B::Real::of(yi) * xi;
        }
        Ok(sum)
    }

    fn gradient(&self, be: &B, x: &B::Mat, out: &mut B::Mat) -> Result<()> {
        let x = be.to_col_major(x)?;
        let g: Vec<B::Real> = x
            .iter()
            .zip(&self.y)
            .map(|(&xi, &yi)| B::Real::one() + xi.ln() - B::Real::of(yi))
            .collect();
        *out = be.mat_from_col_major(g.len(), 1, &g)?;
        Ok(())
    }

    fn hessian(&self, be: &B, x: &B::Mat) -> Result<Hessian<B>> {
        let x = be.to_col_major(x)?;
        // 1/x bounded by 1/(smallest normal): an iterate swung to a subnormal x_i keeps a
        // finite Hessian (and a Newton step back) instead of an infinite pivot
        let floor = B::Real::min_positive_value();
        Ok(Hessian::Diagonal(
            x.iter().map(|&xi| B::Real::one() / xi.max(floor)).collect(),
        ))
    }

    fn mixed_apply(&self, be: &B, _x: &B::Mat, v: &B::Mat, out: &mut B::Mat) -> Result<()> {
        be.axpby(-B::Real::one(), v, B::Real::zero(), out)
    }

    fn mixed_apply_t(&self, be: &B, _x: &B::Mat, w: &B::Mat, out: &mut B::Mat) -> Result<()> {
        be.axpby(-B::Real::one(), w, B::Real::zero(), out)
    }

    fn max_step(&self, be: &B, x: &B::Mat, dx: &B::Mat) -> Result<B::Real> {
        let (x, dx) = (be.to_col_major(x)?, be.to_col_major(dx)?);
        Ok(x.iter()
            .zip(&dx)
            .filter(|(_, d)| **d < B::Real::zero())
            .map(|(&xi, &di)| -xi / di)
            .fold(B::Real::infinity(), B::Real::min))
    }

    fn initial_point(&self, be: &B) -> Result<B::Mat> {
        let n = self.y.len();
        be.mat_from_col_major(n, 1, &vec![B::Real::of(1.0 / n as f64); n])
    }
}

/// The sparsemax objective `f(x) = |x - y|^2` with parameter `y` (`E = -2 I`): quadratic,
/// Hessian `2 I`, no domain.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{LinAlg, smooth::{SmoothObjective, layers::SquaredDistance}, testing::RefBackend};
/// let be = RefBackend;
/// let f = SquaredDistance::new(vec![1.0, 2.0])?;
/// let x = be.mat_from_col_major(2, 1, &[0.0, 0.0])?;
/// assert_eq!(SmoothObjective::<RefBackend>::value(&f, &be, &x)?, 5.0);
/// assert!(SmoothObjective::<RefBackend>::is_quadratic(&f));
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SquaredDistance {
    y: Vec<f64>,
}

impl SquaredDistance {
    /// The objective `|x - y|^2` (its length is `n`).
    ///
    /// # Errors
    /// [`Error::Input`] naming `y` when it is empty or has a NaN or infinite entry.
    ///
    /// # Example
    /// ```
    /// use altdiff_core::{Error, smooth::layers::SquaredDistance};
    /// assert_eq!(SquaredDistance::new(vec![0.5])?.y(), &[0.5]);
    /// assert!(matches!(SquaredDistance::new(vec![]), Err(Error::Input { name: "y", .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(y: Vec<f64>) -> Result<Self> {
        check_parameter("y", &y)?;
        Ok(Self { y })
    }

    /// The parameter `y`.
    pub fn y(&self) -> &[f64] {
        &self.y
    }
}

impl<B: LinAlg> SmoothObjective<B> for SquaredDistance {
    fn dim(&self) -> usize {
        self.y.len()
    }

    fn n_params(&self) -> usize {
        self.y.len()
    }

    fn value(&self, be: &B, x: &B::Mat) -> Result<B::Real> {
        let x = be.to_col_major(x)?;
        Ok(x.iter()
            .zip(&self.y)
            .fold(B::Real::zero(), |acc, (&xi, &yi)| {
                let d = xi - B::Real::of(yi);
                acc + d * d
            }))
    }

    fn gradient(&self, be: &B, x: &B::Mat, out: &mut B::Mat) -> Result<()> {
        let y = be.mat_from_col_major(self.y.len(), 1, &to_real::<B::Real>(&self.y))?;
        let two = B::Real::of(2.0);
        be.copy_from(out, &y)?;
        be.axpby(two, x, -two, out)
    }

    fn hessian(&self, _be: &B, _x: &B::Mat) -> Result<Hessian<B>> {
        Ok(Hessian::Diagonal(vec![B::Real::of(2.0); self.y.len()]))
    }

    fn is_quadratic(&self) -> bool {
        true
    }

    fn mixed_apply(&self, be: &B, _x: &B::Mat, v: &B::Mat, out: &mut B::Mat) -> Result<()> {
        be.axpby(B::Real::of(-2.0), v, B::Real::zero(), out)
    }

    fn mixed_apply_t(&self, be: &B, _x: &B::Mat, w: &B::Mat, out: &mut B::Mat) -> Result<()> {
        be.axpby(B::Real::of(-2.0), w, B::Real::zero(), out)
    }
}

/// The QP objective `f(x) = 1/2 x'Px + q'x` with parameter `q` (`E = I`): the QP as a
/// special case of [`SmoothSolver`] (constant Hessian, factored once per solve). For QPs the
/// dedicated [`AltDiff`](crate::AltDiff) has more: scaling, infeasibility detection,
/// batches, derivatives wrt `P`, `A`, `G`.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::{LinAlg, smooth::{SmoothObjective, layers::Quadratic}, testing::RefBackend};
/// let be = RefBackend;
/// let p = be.op_from_col_major(1, 1, &[2.0])?;
/// let f = Quadratic::<RefBackend>::new(&be, p, &[-2.0])?;           // x^2 - 2x
/// let x = be.mat_from_col_major(1, 1, &[1.0])?;
/// assert_eq!(f.value(&be, &x)?, -1.0);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Quadratic<B: LinAlg> {
    n: usize,
    p: B::Op,
    q: B::Mat,
}

impl<B: LinAlg> Quadratic<B> {
    /// `1/2 x'Px + q'x` for a symmetric positive semidefinite `P` (n x n).
    ///
    /// # Errors
    /// [`Error::Dimension`] when `P` is not `n x n` for `n = q.len()`, [`Error::NonFinite`]
    /// for a NaN or infinite entry of `q`, or a backend error.
    pub fn new(backend: &B, p: B::Op, q: &[f64]) -> Result<Self> {
        let n = q.len();
        let got = backend.op_shape(&p);
        if got != (n, n) {
            return Err(Error::Dimension {
                field: Field::P,
                expected: (n, n),
                got,
            });
        }
        if let Some(row) = q.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                field: Field::Q,
                row,
                col: 0,
                value: q[row],
            });
        }
        let q = backend.mat_from_col_major(n, 1, &to_real::<B::Real>(q))?;
        Ok(Self { n, p, q })
    }
}

impl<B: LinAlg> SmoothObjective<B> for Quadratic<B> {
    fn dim(&self) -> usize {
        self.n
    }

    fn n_params(&self) -> usize {
        self.n
    }

    fn value(&self, be: &B, x: &B::Mat) -> Result<B::Real> {
        let mut px = be.zeros(self.n, 1)?;
        be.apply(
            &mut px,
            Accum::Replace,
            &self.p,
            Trans::No,
            x,
            B::Real::one(),
        )?;
        Ok(B::Real::of(0.5) * be.dot(&px, x)? + be.dot(&self.q, x)?)
    }

    fn gradient(&self, be: &B, x: &B::Mat, out: &mut B::Mat) -> Result<()> {
        be.copy_from(out, &self.q)?;
        be.apply(out, Accum::Add, &self.p, Trans::No, x, B::Real::one())
    }

    fn hessian(&self, _be: &B, _x: &B::Mat) -> Result<Hessian<B>> {
        Ok(Hessian::Matrix(self.p.clone()))
    }

    fn is_quadratic(&self) -> bool {
        true
    }

    fn mixed_apply(&self, be: &B, _x: &B::Mat, v: &B::Mat, out: &mut B::Mat) -> Result<()> {
        be.copy_from(out, v)
    }

    fn mixed_apply_t(&self, be: &B, _x: &B::Mat, w: &B::Mat, out: &mut B::Mat) -> Result<()> {
        be.copy_from(out, w)
    }
}

/// A ready-made layer. See the [module docs](self) for the table.
///
/// # Example
/// ```
/// use altdiff_core::smooth::layers::LayerKind;
/// assert_eq!(LayerKind::CSparsemax.name(), "csparsemax");
/// assert!(LayerKind::CSoftmax.has_upper_bound() && !LayerKind::Sparsemax.has_upper_bound());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LayerKind {
    /// `min sum x log x - y'x s.t. 1'x = 1`: `softmax(y)`.
    Softmax,
    /// `min |x - y|^2 s.t. 1'x = 1, x >= 0`: the projection onto the simplex.
    Sparsemax,
    /// The constrained softmax: the entropy layer with `x <= u`.
    CSoftmax,
    /// The constrained sparsemax: sparsemax with `x <= u`.
    CSparsemax,
}

impl LayerKind {
    /// Every layer.
    pub const ALL: [LayerKind; 4] = [
        LayerKind::Softmax,
        LayerKind::Sparsemax,
        LayerKind::CSoftmax,
        LayerKind::CSparsemax,
    ];

    /// The layer's name (`"softmax"`, `"sparsemax"`, `"csoftmax"`, `"csparsemax"`).
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Softmax => "softmax",
            LayerKind::Sparsemax => "sparsemax",
            LayerKind::CSoftmax => "csoftmax",
            LayerKind::CSparsemax => "csparsemax",
        }
    }

    /// Whether the layer takes upper bounds `u`.
    pub fn has_upper_bound(self) -> bool {
        matches!(self, LayerKind::CSoftmax | LayerKind::CSparsemax)
    }

    /// Whether the objective is the entropy (domain `x > 0`).
    pub fn is_entropic(self) -> bool {
        matches!(self, LayerKind::Softmax | LayerKind::CSoftmax)
    }

    /// The constraints of the layer with `n` variables: `A = 1'` (1 x n) and `G`: none
    /// (softmax), `I` (csoftmax: `x <= u`), `-I` (sparsemax: `x >= 0`) or `[-I; I]`
    /// (csparsemax), stored sparse (dense backends expand them, sparse ones keep the
    /// pattern). The right-hand sides are `b = 1` and [`LayerKind::h`].
    ///
    /// # Example
    /// ```
    /// use altdiff_core::smooth::layers::LayerKind;
    /// let (a, g) = LayerKind::CSparsemax.constraints(3);
    /// assert_eq!((a.nrows(), g.nrows(), g.get(4, 1)), (1, 6, 1.0));
    /// ```
    pub fn constraints(self, n: usize) -> (HostMatrix, HostMatrix) {
        let sparse = |rows: usize, entries: Vec<(usize, usize, f64)>, field| {
            HostMatrix::from_triplets(field, rows, n, &entries).expect("indices in range")
        };
        let a = sparse(1, (0..n).map(|j| (0, j, 1.0)).collect(), Field::A);
        let diagonal = |offset: usize, v: f64| (0..n).map(move |i| (offset + i, i, v));
        let g = match self {
            LayerKind::Softmax => sparse(0, Vec::new(), Field::G),
            LayerKind::CSoftmax => sparse(n, diagonal(0, 1.0).collect(), Field::G),
            LayerKind::Sparsemax => sparse(n, diagonal(0, -1.0).collect(), Field::G),
            LayerKind::CSparsemax => sparse(
                2 * n,
                diagonal(0, -1.0).chain(diagonal(n, 1.0)).collect(),
                Field::G,
            ),
        };
        (a, g)
    }

    /// The inequality right-hand side for the upper bounds `u` (ignored by the layers
    /// without): none, `u`, `0` or `[0; u]`.
    ///
    /// # Example
    /// ```
    /// use altdiff_core::smooth::layers::LayerKind;
    /// assert_eq!(LayerKind::CSparsemax.h(2, Some(&[0.7, 0.8])), vec![0.0, 0.0, 0.7, 0.8]);
    /// assert_eq!(LayerKind::Sparsemax.h(2, None), vec![0.0, 0.0]);
    /// ```
    pub fn h(self, n: usize, u: Option<&[f64]>) -> Vec<f64> {
        let u = || u.map_or_else(|| vec![0.0; n], <[f64]>::to_vec);
        match self {
            LayerKind::Softmax => Vec::new(),
            LayerKind::CSoftmax => u(),
            LayerKind::Sparsemax => vec![0.0; n],
            LayerKind::CSparsemax => {
                let mut h = vec![0.0; n];
                h.extend(u());
                h
            }
        }
    }

    /// The layer's objective at `x` for the scores `y`: `sum x_i log x_i - y'x` (with
    /// `0 log 0 = 0`) or `|x - y|^2`.
    ///
    /// # Example
    /// ```
    /// use altdiff_core::smooth::layers::LayerKind;
    /// assert_eq!(LayerKind::Sparsemax.objective(&[1.0, 0.0], &[1.0, 2.0]), 4.0);
    /// assert_eq!(LayerKind::Softmax.objective(&[1.0, 0.0], &[3.0, 0.0]), -3.0);
    /// ```
    pub fn objective(self, x: &[f64], y: &[f64]) -> f64 {
        let entropy = |x: f64| if x > 0.0 { x * x.ln() } else { 0.0 };
        x.iter()
            .zip(y)
            .map(|(&x, &y)| {
                if self.is_entropic() {
                    entropy(x) - y * x
                } else {
                    (x - y) * (x - y)
                }
            })
            .sum()
    }

    /// The first row of `G` holding the upper bounds `u`.
    fn upper_offset(self, n: usize) -> usize {
        match self {
            LayerKind::CSparsemax => n,
            _ => 0,
        }
    }
}

/// A parameter of a [`Layer`].
///
/// # Example
/// ```
/// use altdiff_core::smooth::layers::LayerParam;
/// assert_eq!(LayerParam::U.name(), "u");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LayerParam {
    /// The scores `y` (Jacobian `n x n`).
    Y,
    /// The upper bounds `u` of the constrained layers (Jacobian `n x n`).
    U,
}

impl LayerParam {
    /// The name (`"y"`, `"u"`).
    pub fn name(self) -> &'static str {
        match self {
            LayerParam::Y => "y",
            LayerParam::U => "u",
        }
    }
}

/// A softmax / sparsemax layer of fixed width `n` on a backend: the constraints are set up
/// once, each [`Layer::forward`] solves for its `y` (and `u`), with Jacobians, and
/// [`Layer::vjp`] pulls a gradient back.
///
/// # Example
/// ```
/// # #[cfg(feature = "testing")] {
/// use altdiff_core::smooth::{SmoothSettings, layers::{Layer, LayerKind, LayerParam}};
/// use altdiff_core::testing::RefBackend;
/// let layer = Layer::new(RefBackend, LayerKind::Sparsemax, 3, SmoothSettings::default())?;
/// let out = layer.forward(&[1.0, 0.8, -1.0], None, &[LayerParam::Y])?;
/// // the projection of y onto the simplex: (0.6, 0.4, 0), support {0, 1} (residuals 1e-6)
/// assert!((out.x[0] - 0.6).abs() < 1e-5 && (out.x[1] - 0.4).abs() < 1e-5 && out.x[2].abs() < 1e-5);
/// let j = out.jacobian(LayerParam::Y).unwrap();              // diag(1_S) - 1_S 1_S'/2
/// assert!((j.get(0, 0) - 0.5).abs() < 1e-5 && (j.get(0, 1) + 0.5).abs() < 1e-5);
/// let grads = layer.vjp(&out, &[1.0, 0.0, 0.0])?;             // row 0 of that Jacobian
/// assert!((grads.y[0] - 0.5).abs() < 1e-9 && grads.y[2].abs() < 1e-9);
/// # }
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Layer<B: LinAlg> {
    kind: LayerKind,
    n: usize,
    solver: SmoothSolver<B>,
}

/// The result of [`Layer::forward`]: `x` on the host, the status, the Jacobians asked for,
/// and the solver's solution (for [`Layer::vjp`]).
#[derive(Clone, Debug)]
pub struct LayerOutput<B: LinAlg> {
    /// The layer's output.
    pub x: Vec<f64>,
    /// How the iteration ended.
    pub status: Status,
    /// ADMM iterations run.
    pub iterations: usize,
    /// The Jacobians asked for (`n x n` each).
    pub jacobians: Vec<(LayerParam, HostMatrix)>,
    /// The objective at `x` with the caller's `y` (the solver's
    /// [`SmoothSolution::objective`] is that of the shifted scores it solved on).
    pub objective: f64,
    y: Vec<f64>,
    solution: SmoothSolution<B>,
    reduced: Option<Reduced<B>>,
}

/// A forward pass solved on the entries `kept` by a narrower layer (the others' `x_i` are
/// negligible: see [`Layer::forward`]); `y` and `solution` of the output are that layer's.
#[derive(Clone, Debug)]
struct Reduced<B: LinAlg> {
    kept: Vec<usize>,
    layer: Arc<Layer<B>>,
}

impl<B: LinAlg> LayerOutput<B> {
    /// `dx/dparam`, when it was asked for.
    pub fn jacobian(&self, param: LayerParam) -> Option<&HostMatrix> {
        self.jacobians
            .iter()
            .find(|(p, _)| *p == param)
            .map(|(_, j)| j)
    }

    /// The solver's solution (duals, residuals, Newton counts).
    pub fn solution(&self) -> &SmoothSolution<B> {
        &self.solution
    }
}

/// The gradients of [`Layer::vjp`]: `(dx/dy)'g` and, for the constrained layers,
/// `(dx/du)'g`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerGrads {
    /// `(dx/dy)' g`.
    pub y: Vec<f64>,
    /// `(dx/du)' g` (constrained layers only).
    pub u: Option<Vec<f64>>,
}

impl<B: LinAlg> Layer<B> {
    /// A layer of width `n`.
    ///
    /// # Errors
    /// [`Error::Input`] naming `y` when `n == 0`, [`Error::Settings`], or a backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::smooth::{SmoothSettings, layers::{Layer, LayerKind}};
    /// use altdiff_core::testing::RefBackend;
    /// let layer = Layer::new(RefBackend, LayerKind::CSoftmax, 4, SmoothSettings::default())?;
    /// assert_eq!((layer.n(), layer.kind()), (4, LayerKind::CSoftmax));
    /// assert_eq!(layer.solver().dims().m, 4);                     // x <= u
    /// assert!(Layer::new(RefBackend, LayerKind::Softmax, 0, SmoothSettings::default()).is_err());
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn new(backend: B, kind: LayerKind, n: usize, settings: SmoothSettings) -> Result<Self> {
        if n == 0 {
            return Err(Error::Input {
                name: "y",
                problem: InputProblem::Empty,
            });
        }
        let (a, g) = kind.constraints(n);
        let a = backend.op_from_host(&a)?;
        let g = backend.op_from_host(&g)?;
        Ok(Self {
            kind,
            n,
            solver: SmoothSolver::new(backend, a, g, settings)?,
        })
    }

    /// The layer's kind.
    pub fn kind(&self) -> LayerKind {
        self.kind
    }

    /// The width `n`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The solver (for its settings and dims).
    pub fn solver(&self) -> &SmoothSolver<B> {
        &self.solver
    }

    /// Checks `u` for this layer: present exactly for the constrained layers, length `n`,
    /// finite, `u >= 0` (`u > 0` for the entropy, whose domain is `x > 0`), `sum(u) >= 1`.
    fn check_u(&self, u: Option<&[f64]>) -> Result<()> {
        match (self.kind.has_upper_bound(), u) {
            (false, None) => Ok(()),
            (false, Some(_)) => Err(Error::Request(
                "softmax and sparsemax take no upper bounds u (use csoftmax or csparsemax)",
            )),
            (true, None) => Err(Error::Request(
                "csoftmax and csparsemax need the upper bounds u",
            )),
            (true, Some(u)) => {
                check_vector("u", u, self.n)?;
                let entropic = self.kind.is_entropic();
                let bad = |v: f64| if entropic { v <= 0.0 } else { v < 0.0 };
                if let Some(index) = u.iter().position(|&v| bad(v)) {
                    return Err(Error::Input {
                        name: "u",
                        problem: InputProblem::OutOfRange {
                            index,
                            value: u[index],
                            requirement: if entropic {
                                "> 0 (the entropy's domain is x > 0)"
                            } else {
                                ">= 0"
                            },
                        },
                    });
                }
                let sum: f64 = u.iter().sum();
                if sum < 1.0 - 1e-12 {
                    return Err(Error::Input {
                        name: "u",
                        problem: InputProblem::Infeasible { sum },
                    });
                }
                Ok(())
            }
        }
    }

    /// Solves the layer for `y` (and `u` for the constrained layers), with the Jacobians
    /// `dx/dparam` for `wrt`. Not converging is a [`Status`], not an error.
    ///
    /// Any finite `y` is solved (csparsemax: up to spreads of about `1e150`, beyond which
    /// `|x - y|^2` overflows and the status says so): the solution depends on `y` up to a
    /// constant, so the sparsemax layers solve on `y - max(y)` (sparsemax: raised to `-2`
    /// where below, entries that stay at zero) and the entropic ones on `y - tau` with the
    /// level `tau` where `sum_i min(u_i, exp(y_i - tau)) = 1` (the closed form's, found
    /// exactly by sorting), the scores of strictly capped entries lowered to 8 above
    /// `log u_i` (which changes neither `x` nor a derivative), and the free entries whose
    /// `x_i` is below about `1e-153` (`1e-19` in `f32`) left out of the iteration: their
    /// `x_i = exp(y_i - tau - 1 - lam)` comes from the multiplier of the others' solve and
    /// their Jacobian rows and columns (below `x_i`) are zero.
    ///
    /// # Errors
    /// [`Error::Input`] naming `y` or `u` (wrong length, NaN, `u` out of range,
    /// `sum(u) < 1`); [`Error::Request`] when `u` is missing or not expected, or `dx/du` is
    /// asked of a layer without `u`; a backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::smooth::{SmoothSettings, layers::{Layer, LayerKind, LayerParam}};
    /// use altdiff_core::testing::RefBackend;
    /// let settings = SmoothSettings::default().with_tolerances(1e-9, 1e-9);
    /// let layer = Layer::new(RefBackend, LayerKind::CSoftmax, 3, settings)?;
    /// // softmax(0, 0, 0) = 1/3 each, but x_0 <= 0.2: x = (0.2, 0.4, 0.4)
    /// let out = layer.forward(&[0.0, 0.0, 0.0], Some(&[0.2, 1.0, 1.0]), &[LayerParam::U])?;
    /// assert!((out.x[0] - 0.2).abs() < 1e-7 && (out.x[1] - 0.4).abs() < 1e-7);
    /// let j = out.jacobian(LayerParam::U).unwrap();              // x_1 = x_2 = (1 - u_0)/2
    /// assert!((j.get(0, 0) - 1.0).abs() < 1e-6 && (j.get(1, 0) + 0.5).abs() < 1e-6);
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn forward(
        &self,
        y: &[f64],
        u: Option<&[f64]>,
        wrt: &[LayerParam],
    ) -> Result<LayerOutput<B>> {
        check_vector("y", y, self.n)?;
        self.check_u(u)?;
        if wrt.contains(&LayerParam::U) && !self.kind.has_upper_bound() {
            return Err(Error::Request(
                "dx/du needs a layer with upper bounds (csoftmax, csparsemax)",
            ));
        }
        let mut out = match self.kind {
            LayerKind::Softmax | LayerKind::CSoftmax => self.forward_entropic(y, u, wrt)?,
            LayerKind::Sparsemax => self.solve_scores(sparsemax_scores(y), u, wrt)?,
            LayerKind::CSparsemax => self.solve_scores(shifted(y), u, wrt)?,
        };
        out.objective = self.kind.objective(&out.x, y);
        Ok(out)
    }

    /// The entropic layers' forward pass: on the scores `y - tau` of [`water_level`], capped
    /// scores clamped ([`clamp_capped`]), negligible free entries left out
    /// ([`Layer::forward_reduced`]).
    fn forward_entropic(
        &self,
        y: &[f64],
        u: Option<&[f64]>,
        wrt: &[LayerParam],
    ) -> Result<LayerOutput<B>> {
        let level = water_level(y, u);
        let mut scores: Vec<f64> = y.iter().map(|v| v - level).collect();
        if let Some(u) = u {
            clamp_capped(&mut scores, u);
        }
        if let Some(kept) = kept_entries(&scores, u, negligible_exponent::<B::Real>())
            && let Some(out) = self.forward_reduced(&scores, u, wrt, kept)?
        {
            return Ok(out);
        }
        self.solve_scores(scores, u, wrt)
    }

    /// Solves on scores already shifted, every entry.
    fn solve_scores(
        &self,
        scores: Vec<f64>,
        u: Option<&[f64]>,
        wrt: &[LayerParam],
    ) -> Result<LayerOutput<B>> {
        let be = self.solver.backend();
        let b = be.mat_from_col_major(1, 1, &[B::Real::one()])?;
        let h = self.kind.h(self.n, u);
        let h = be.mat_from_col_major(h.len(), 1, &to_real::<B::Real>(&h))?;
        let params: Vec<SmoothParam> = wrt
            .iter()
            .map(|p| match p {
                LayerParam::Y => SmoothParam::Theta,
                LayerParam::U => SmoothParam::H,
            })
            .collect();
        let solution = if self.kind.is_entropic() {
            let f = Entropy::new(scores.clone())?;
            self.solver.solve(&f, &b, &h, &params)?
        } else {
            let f = SquaredDistance::new(scores.clone())?;
            self.solver.solve(&f, &b, &h, &params)?
        };
        let n = self.n;
        let mut wrt = wrt.to_vec();
        wrt.sort_unstable();
        wrt.dedup();
        let mut jacobians = Vec::with_capacity(wrt.len());
        for param in wrt {
            let (smooth, offset) = match param {
                LayerParam::Y => (SmoothParam::Theta, 0),
                LayerParam::U => (SmoothParam::H, self.kind.upper_offset(n)),
            };
            let j = solution
                .jacobian(smooth)
                .ok_or(Error::Request("internal: a Jacobian was not computed"))?;
            let data = self.to_host(j)?;
            let cols = data[offset * n..(offset + n) * n].to_vec();
            jacobians.push((param, HostMatrix::from_col_major(Field::Q, n, n, cols)?));
        }
        Ok(LayerOutput {
            x: self.to_host(solution.x())?,
            status: solution.status(),
            iterations: solution.iterations(),
            jacobians,
            objective: f64::NAN,
            y: scores,
            solution,
            reduced: None,
        })
    }

    /// Solves an entropic layer on the entries `kept` alone (the scores `y - tau` of
    /// [`water_level`]); the others are free entries far below the rest, whose
    /// `x_i = exp(score_i - 1 - lam)` the narrower solve's multiplier `lam` then gives (their
    /// rows and columns of the Jacobians are below that `x_i` and left zero). `None` when the
    /// narrower solve contradicts the premise (an `x_i` not negligible, or caps of the kept
    /// entries below 1): the caller solves on every entry.
    fn forward_reduced(
        &self,
        scores: &[f64],
        u: Option<&[f64]>,
        wrt: &[LayerParam],
        kept: Vec<usize>,
    ) -> Result<Option<LayerOutput<B>>> {
        let pick = |v: &[f64]| -> Vec<f64> { kept.iter().map(|&i| v[i]).collect() };
        let kept_u = u.map(pick);
        if kept_u.as_ref().is_some_and(|u| u.iter().sum::<f64>() < 1.0) {
            return Ok(None);
        }
        let layer = Layer::new(
            self.solver.backend().clone(),
            self.kind,
            kept.len(),
            self.solver.settings().clone(),
        )?;
        let inner = layer.solve_scores(pick(scores), kept_u.as_deref(), wrt)?;
        let lam = self.to_host(inner.solution.lam())?[0];
        let mut x: Vec<f64> = scores.iter().map(|s| (s - 1.0 - lam).exp()).collect();
        if let Some(u) = u {
            x.iter_mut().zip(u).for_each(|(x, &u)| *x = x.min(u));
        }
        let dropped_mass: f64 = x.iter().sum::<f64>() - pick(&x).iter().sum::<f64>();
        if dropped_mass.is_nan() || dropped_mass > f64::EPSILON * 1e-3 {
            return Ok(None);
        }
        for (&i, &xi) in kept.iter().zip(&inner.x) {
            x[i] = xi;
        }
        let embed = |j: &HostMatrix| -> Result<HostMatrix> {
            let mut data = vec![0.0; self.n * self.n];
            for (c, &jc) in kept.iter().enumerate() {
                for (r, &ir) in kept.iter().enumerate() {
                    data[jc * self.n + ir] = j.get(r, c);
                }
            }
            HostMatrix::from_col_major(Field::Q, self.n, self.n, data)
        };
        let jacobians = inner
            .jacobians
            .iter()
            .map(|(p, j)| Ok((*p, embed(j)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(LayerOutput {
            x,
            status: inner.status,
            iterations: inner.iterations,
            jacobians,
            objective: f64::NAN,
            y: inner.y,
            solution: inner.solution,
            reduced: Some(Reduced {
                kept,
                layer: Arc::new(layer),
            }),
        }))
    }

    /// A backend block on the host, in `f64`.
    fn to_host(&self, m: &B::Mat) -> Result<Vec<f64>> {
        Ok(self
            .solver
            .backend()
            .to_col_major(m)?
            .into_iter()
            .map(Real::to_f64_lossy)
            .collect())
    }

    /// The gradients `(dx/dy)'g` (and `(dx/du)'g`) of a loss with `dloss/dx = g` at a
    /// forward result, by the KKT adjoint at its active set.
    ///
    /// # Errors
    /// [`Error::Input`] naming `g` (wrong length, NaN); [`Error::SingularKkt`] at a
    /// degenerate active set (e.g. `sum(u) = 1`: every bound active); a backend error.
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use altdiff_core::smooth::{SmoothSettings, layers::{Layer, LayerKind}};
    /// use altdiff_core::testing::RefBackend;
    /// let layer = Layer::new(RefBackend, LayerKind::CSoftmax, 3, SmoothSettings::default())?;
    /// let out = layer.forward(&[0.0, 0.0, 0.0], Some(&[0.2, 1.0, 1.0]), &[])?;
    /// let grads = layer.vjp(&out, &[0.0, 1.0, 0.0])?;             // d x_1 / d (y, u)
    /// let gu = grads.u.unwrap();
    /// assert!((gu[0] + 0.5).abs() < 1e-9 && gu[1].abs() < 1e-9);
    /// assert!((grads.y[1] - 0.2).abs() < 1e-5);                    // x_1 x_2 / (x_1 + x_2)
    /// # }
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn vjp(&self, output: &LayerOutput<B>, g: &[f64]) -> Result<LayerGrads> {
        check_vector("g", g, self.n)?;
        let Some(reduced) = &output.reduced else {
            return self.pull_back(output, g);
        };
        let kept_g: Vec<f64> = reduced.kept.iter().map(|&i| g[i]).collect();
        let inner = reduced.layer.pull_back(output, &kept_g)?;
        let embed = |v: &[f64]| {
            let mut full = vec![0.0; self.n];
            reduced
                .kept
                .iter()
                .zip(v)
                .for_each(|(&i, &vi)| full[i] = vi);
            full
        };
        Ok(LayerGrads {
            y: embed(&inner.y),
            u: inner.u.as_deref().map(embed),
        })
    }

    /// [`Layer::vjp`] on an output of this layer's width.
    fn pull_back(&self, output: &LayerOutput<B>, g: &[f64]) -> Result<LayerGrads> {
        let be = self.solver.backend();
        let seed = be.mat_from_col_major(self.n, 1, &to_real::<B::Real>(g))?;
        let grads: SmoothGrads<B> = if self.kind.is_entropic() {
            let f = Entropy::new(output.y.clone())?;
            self.solver.vjp(&f, &output.solution, &seed)?
        } else {
            let f = SquaredDistance::new(output.y.clone())?;
            self.solver.vjp(&f, &output.solution, &seed)?
        };
        let u = if self.kind.has_upper_bound() {
            let offset = self.kind.upper_offset(self.n);
            Some(self.to_host(&grads.h)?[offset..offset + self.n].to_vec())
        } else {
            None
        };
        Ok(LayerGrads {
            y: self.to_host(&grads.theta)?,
            u,
        })
    }
}
