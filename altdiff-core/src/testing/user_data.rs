//! Problems as users write them: loose ("big-M") bounds, rows and columns scaled over
//! `1e-4 .. 1e4`, LPs, and problems whose solution is not unique, with the judgement of a
//! solution against a reference.
//!
//! Each problem is built around a known primal-dual point, so it is feasible and bounded by
//! construction; the reference is clarabel's solution to 1e-11 ([`reference_solve`]), not the
//! construction (which scaling would blur), certified as an exact KKT point. [`user_data_set`] cycles through the kinds with
//! one seed per problem; [`Judgement::of`] is the rule of the `altdiff trust` report: the
//! objective within `1e-5` (relative, floor 1) and `x` within `1e-3` (inf-norm, relative to
//! `max(1, |x*|)`, not checked where the solution is not unique).

use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

use crate::testing::OracleSolution;
use crate::{HostMatrix, HostQp, HostSolution};

/// What makes a problem of [`user_qp`] hard.
///
/// # Example
/// ```
/// use altdiff_core::testing::UserDataKind;
/// assert_eq!(UserDataKind::ALL.len(), 6);
/// assert_eq!(UserDataKind::LooseBounds.name(), "loose-bounds");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UserDataKind {
    /// Bounds meant as "no bound" or big-M constants: `|x_j| <= U` with `U` in
    /// `{1e3, 1e6, 5e8, 1e10}` on some variables, beside the problem's own rows.
    LooseBounds,
    /// Each row of `A` (with `b`) and of `G` (with `h`) multiplied by `10^u`, `u ~ U(-4, 4)`.
    ScaledRows,
    /// Variables in mixed units: `x = S y` with `S_jj = 10^u`, `u ~ U(-4, 4)`.
    ScaledColumns,
    /// A linear program (`P = 0`) with a unique vertex solution, bounds on every variable.
    Lp,
    /// Loose bounds (`1e4 .. 1e8`), rows and columns scaled over `1e-2 .. 1e2`, at once
    /// (the three at their extremes compound to bounds of 1e18, beyond any solver).
    Mixed,
    /// A QP with `P` singular on the optimal face: a whole segment of solutions (only the
    /// objective is judged).
    NonUnique,
}

impl UserDataKind {
    /// Every kind, in the order [`user_data_set`] cycles through them.
    pub const ALL: [UserDataKind; 6] = [
        UserDataKind::LooseBounds,
        UserDataKind::ScaledRows,
        UserDataKind::ScaledColumns,
        UserDataKind::Lp,
        UserDataKind::Mixed,
        UserDataKind::NonUnique,
    ];

    /// A short name for tables (`"loose-bounds"`, `"scaled-rows"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            UserDataKind::LooseBounds => "loose-bounds",
            UserDataKind::ScaledRows => "scaled-rows",
            UserDataKind::ScaledColumns => "scaled-columns",
            UserDataKind::Lp => "lp",
            UserDataKind::Mixed => "mixed",
            UserDataKind::NonUnique => "non-unique",
        }
    }

    /// Whether the solution `x` is unique (else only the objective is judged).
    pub fn unique(self) -> bool {
        self != UserDataKind::NonUnique
    }
}

/// One generated problem.
#[derive(Clone, Debug)]
pub struct UserProblem {
    /// A name for tables: kind and seed.
    pub name: String,
    /// The kind.
    pub kind: UserDataKind,
    /// The problem.
    pub qp: HostQp,
}

/// Normal draws of a seeded generator.
struct Draws(StdRng);

impl Draws {
    fn normal(&mut self) -> f64 {
        self.0.sample(StandardNormal)
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.0.random_range(lo..hi)
    }

    fn size(&mut self, lo: usize, hi: usize) -> usize {
        self.0.random_range(lo..=hi)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.0.random_bool(p)
    }

    /// `10^u` with `u ~ U(-decades, decades)`.
    fn magnitude(&mut self, decades: f64) -> f64 {
        10f64.powf(self.uniform(-decades, decades))
    }
}

/// A problem of kind `kind` from `seed` (n between 3 and 30).
///
/// # Example
/// ```
/// use altdiff_core::testing::{UserDataKind, user_qp};
/// let qp = user_qp(UserDataKind::LooseBounds, 3);
/// assert!(qp.validate().is_ok());
/// assert!(qp.h.iter().any(|h| h.abs() >= 1e3)); // a loose bound
/// ```
pub fn user_qp(kind: UserDataKind, seed: u64) -> HostQp {
    let mut d = Draws(StdRng::seed_from_u64(seed ^ 0x5EED_DA7A));
    match kind {
        UserDataKind::LooseBounds => loose_bounds(base_qp(&mut d), &mut d, &LOOSE),
        UserDataKind::ScaledRows => scale_rows(base_qp(&mut d), &mut d, 4.0),
        UserDataKind::ScaledColumns => scale_columns(base_qp(&mut d), &mut d, 4.0),
        UserDataKind::Lp => vertex_lp(&mut d),
        UserDataKind::Mixed => {
            let qp = loose_bounds(base_qp(&mut d), &mut d, &[1e4, 1e6, 1e8]);
            let qp = scale_rows(qp, &mut d, 2.0);
            scale_columns(qp, &mut d, 2.0)
        }
        UserDataKind::NonUnique => non_unique(&mut d),
    }
}

/// `count` problems, cycling through [`UserDataKind::ALL`], problem `i` from seed
/// `seed * 1_000_003 + i`.
///
/// # Example
/// ```
/// use altdiff_core::testing::user_data_set;
/// let set = user_data_set(12, 0);
/// assert_eq!(set.len(), 12);
/// assert_eq!(set[1].name, "scaled-rows-1");
/// ```
pub fn user_data_set(count: usize, seed: u64) -> Vec<UserProblem> {
    (0..count)
        .map(|i| {
            let kind = UserDataKind::ALL[i % UserDataKind::ALL.len()];
            let problem_seed = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
            UserProblem {
                name: format!("{}-{i}", kind.name()),
                kind,
                qp: user_qp(kind, problem_seed),
            }
        })
        .collect()
}

/// A well-posed random QP around a known point: `P = W'W / n + 0.05 I`, rows of unit
/// expected norm, `x0 ~ N(0, 1)`, `b = A x0`, `h = G x0 + slack` with about a third of the
/// slacks zero (active at `x0`).
fn base_qp(d: &mut Draws) -> HostQp {
    let n = d.size(3, 30);
    let p = d.size(0, n / 3);
    let m = d.size(1, n);
    let w = HostMatrix::from_fn(n, n, |_, _| d.normal());
    let p_mat = HostMatrix::from_fn(n, n, |i, j| {
        let dot: f64 = (0..n).map(|k| w.get(k, i) * w.get(k, j)).sum();
        dot / n as f64 + if i == j { 0.05 } else { 0.0 }
    });
    let row = 1.0 / (n as f64).sqrt();
    let a = HostMatrix::from_fn(p, n, |_, _| row * d.normal());
    let g = HostMatrix::from_fn(m, n, |_, _| row * d.normal());
    let x0: Vec<f64> = (0..n).map(|_| d.normal()).collect();
    let q = (0..n).map(|_| d.normal()).collect();
    let b = super::mat_vec(&a, &x0);
    let h = super::mat_vec(&g, &x0)
        .into_iter()
        .map(|v| {
            if d.chance(1.0 / 3.0) {
                v
            } else {
                v + d.normal().abs()
            }
        })
        .collect();
    HostQp {
        p: p_mat,
        q,
        a,
        b,
        g,
        h,
    }
}

/// The loose bounds of [`UserDataKind::LooseBounds`].
const LOOSE: [f64; 4] = [1e3, 1e6, 5e8, 1e10];

/// `qp` with bounds `x_j <= U` and `-x_j <= U` (`U` drawn from `bounds`) on some variables
/// (at least one), inserted among the rows of `G`.
fn loose_bounds(qp: HostQp, d: &mut Draws, bounds: &[f64]) -> HostQp {
    let n = qp.q.len();
    let mut rows: Vec<(Vec<f64>, f64)> = (0..qp.g.nrows())
        .map(|i| ((0..n).map(|j| qp.g.get(i, j)).collect(), qp.h[i]))
        .collect();
    let first = d.size(0, n - 1);
    for j in 0..n {
        if j != first && !d.chance(0.3) {
            continue;
        }
        let bound = bounds[d.size(0, bounds.len() - 1)];
        for sign in [1.0, -1.0] {
            let mut e = vec![0.0; n];
            e[j] = sign;
            let at = d.size(0, rows.len());
            rows.insert(at, (e, bound));
        }
    }
    HostQp {
        g: HostMatrix::from_fn(rows.len(), n, |i, j| rows[i].0[j]),
        h: rows.iter().map(|r| r.1).collect(),
        ..qp
    }
}

/// `qp` with each row of `A` / `b` and `G` / `h` multiplied by `10^u`,
/// `u ~ U(-decades, decades)`.
fn scale_rows(qp: HostQp, d: &mut Draws, decades: f64) -> HostQp {
    let n = qp.q.len();
    let ra: Vec<f64> = (0..qp.b.len()).map(|_| d.magnitude(decades)).collect();
    let rg: Vec<f64> = (0..qp.h.len()).map(|_| d.magnitude(decades)).collect();
    HostQp {
        a: HostMatrix::from_fn(qp.a.nrows(), n, |i, j| ra[i] * qp.a.get(i, j)),
        b: qp.b.iter().zip(&ra).map(|(v, r)| v * r).collect(),
        g: HostMatrix::from_fn(qp.g.nrows(), n, |i, j| rg[i] * qp.g.get(i, j)),
        h: qp.h.iter().zip(&rg).map(|(v, r)| v * r).collect(),
        ..qp
    }
}

/// `qp` in the variables `y = S^-1 x`, `S_jj = 10^u`, `u ~ U(-decades, decades)`.
fn scale_columns(qp: HostQp, d: &mut Draws, decades: f64) -> HostQp {
    let n = qp.q.len();
    let s: Vec<f64> = (0..n).map(|_| d.magnitude(decades)).collect();
    HostQp {
        p: HostMatrix::from_fn(n, n, |i, j| s[i] * qp.p.get(i, j) * s[j]),
        q: qp.q.iter().zip(&s).map(|(v, s)| v * s).collect(),
        a: HostMatrix::from_fn(qp.a.nrows(), n, |i, j| qp.a.get(i, j) * s[j]),
        g: HostMatrix::from_fn(qp.g.nrows(), n, |i, j| qp.g.get(i, j) * s[j]),
        ..qp
    }
}

/// An LP with a unique, strictly complementary vertex `x0`: `p` equalities and `n - p`
/// of the inequalities active there (generic rows: linearly independent), `q = -(A'lam0 +
/// G'nu0)` with `nu0 > 0` on the active rows, and bounds `|x_j| <= 10 + |x0_j|` on every
/// variable besides.
fn vertex_lp(d: &mut Draws) -> HostQp {
    let n = d.size(2, 20);
    let p = d.size(0, n / 2);
    let extra = d.size(0, n);
    let m = (n - p) + extra;
    let x0: Vec<f64> = (0..n).map(|_| d.normal()).collect();
    let a = HostMatrix::from_fn(p, n, |_, _| d.normal());
    let g_rows = HostMatrix::from_fn(m, n, |_, _| d.normal());
    let lam0: Vec<f64> = (0..p).map(|_| d.normal()).collect();
    // rows 0 .. n - p are active with nu0 > 0, the others inactive
    let nu0: Vec<f64> = (0..m)
        .map(|i| {
            if i < n - p {
                0.1 + d.normal().abs()
            } else {
                0.0
            }
        })
        .collect();
    let gx0 = super::mat_vec(&g_rows, &x0);
    let h_rows: Vec<f64> = (0..m)
        .map(|i| {
            if i < n - p {
                gx0[i]
            } else {
                gx0[i] + 0.1 + d.normal().abs()
            }
        })
        .collect();
    let q: Vec<f64> = (0..n)
        .map(|j| {
            let from_a: f64 = (0..p).map(|i| a.get(i, j) * lam0[i]).sum();
            let from_g: f64 = (0..m).map(|i| g_rows.get(i, j) * nu0[i]).sum();
            -(from_a + from_g)
        })
        .collect();
    // box rows after the problem's own
    let total = m + 2 * n;
    let g = HostMatrix::from_fn(total, n, |i, j| {
        if i < m {
            g_rows.get(i, j)
        } else {
            let (var, sign) = (
                (i - m) / 2,
                if (i - m).is_multiple_of(2) { 1.0 } else { -1.0 },
            );
            if var == j { sign } else { 0.0 }
        }
    });
    let h = (0..total)
        .map(|i| {
            if i < m {
                h_rows[i]
            } else {
                10.0 + x0[(i - m) / 2].abs()
            }
        })
        .collect();
    HostQp {
        p: HostMatrix::zeros(n, n),
        q,
        b: super::mat_vec(&a, &x0),
        a,
        g,
        h,
    }
}

/// A QP whose solutions form a segment: `P = w w'` of rank one, the variables boxed in
/// `[-1, 1]`, and `q` orthogonal to a box edge direction so that the objective is flat
/// along it at the optimum.
fn non_unique(d: &mut Draws) -> HostQp {
    let n = d.size(2, 12);
    // x_0 free within its box, cost independent of it: P and q zero on row / column 0
    let w: Vec<f64> = (0..n)
        .map(|j| if j == 0 { 0.0 } else { d.normal() })
        .collect();
    let q: Vec<f64> = (0..n)
        .map(|j| if j == 0 { 0.0 } else { 2.0 * d.normal() })
        .collect();
    let p = HostMatrix::from_fn(n, n, |i, j| w[i] * w[j]);
    let g = HostMatrix::from_fn(2 * n, n, |i, j| {
        if i / 2 == j {
            if i % 2 == 0 { 1.0 } else { -1.0 }
        } else {
            0.0
        }
    });
    HostQp {
        p,
        q,
        a: HostMatrix::zeros(0, n),
        b: Vec::new(),
        g,
        h: vec![1.0; 2 * n],
    }
}

/// The reference solution of a generated problem, certified. clarabel runs to 1e-11 (gap
/// and feasibility; its infeasibility tests at 1e-14, since at clarabel's 1e-8 they fire
/// falsely on bounds like 1e10); its point then fixes the active set (`nu_i > h_i - G_i x`,
/// else the rows whose slack is below 1e-7 of their terms) and the KKT system of that set is solved exactly (LU with full pivoting, nalgebra). The
/// result is the reference when it is a KKT point to 1e-9 row by row: each inequality
/// `G_i x - h_i <= 1e-9 max(1, |h_i|, sum_j |G_ij x_j|)`, `nu >= -1e-9 max(1, |nu|)`, and
/// its stationarity and equality residuals as small, each relative to its own row's terms.
/// The tolerances 1e-10 and 1e-9 are tried in turn when clarabel stalls, then the problem
/// without its loose rows (certified on the whole problem). Where no active
/// set is certified (a solution that is not unique: its system is singular) clarabel's
/// point is the reference if clarabel reported it solved. `None` otherwise.
///
/// # Example
/// ```
/// use altdiff_core::testing::{UserDataKind, reference_solve, user_qp};
/// let qp = user_qp(UserDataKind::Lp, 1);
/// assert!(reference_solve(&qp).is_some());
/// ```
pub fn reference_solve(qp: &HostQp) -> Option<OracleSolution> {
    let ladder = |qp: &HostQp| -> Vec<(bool, OracleSolution)> {
        [1e-11, 1e-10, 1e-9]
            .into_iter()
            .filter_map(|tol| super::clarabel_oracle::clarabel_attempt(qp, tol, true))
            .collect()
    };
    let attempts = ladder(qp);
    if let Some(exact) = attempts.iter().find_map(|(_, point)| certify(qp, point)) {
        return Some(exact);
    }
    // clarabel stalls on some problems with big-M rows: solve without the rows whose bound
    // lies 1e3 or more beyond the row's scale, and certify the point on the whole problem
    let (reduced, kept) = without_loose_rows(qp);
    if kept.len() < qp.h.len() {
        let found = ladder(&reduced).into_iter().find_map(|(_, point)| {
            let mut nu = vec![0.0; qp.h.len()];
            kept.iter().zip(&point.nu).for_each(|(&i, v)| nu[i] = *v);
            certify(qp, &OracleSolution { nu, ..point })
        });
        if found.is_some() {
            return found;
        }
    }
    attempts
        .into_iter()
        .find_map(|(solved, point)| solved.then_some(point))
}

/// `qp` without its loose inequalities (`|h_i| >= 1e3 max_j |G_ij|`), and the rows kept.
fn without_loose_rows(qp: &HostQp) -> (HostQp, Vec<usize>) {
    let n = qp.q.len();
    let kept: Vec<usize> = (0..qp.h.len())
        .filter(|&i| {
            let row = (0..n).fold(0.0_f64, |a, j| a.max(qp.g.get(i, j).abs()));
            qp.h[i].abs() < 1e3 * row
        })
        .collect();
    let reduced = HostQp {
        g: HostMatrix::from_fn(kept.len(), n, |i, j| qp.g.get(kept[i], j)),
        h: kept.iter().map(|&i| qp.h[i]).collect(),
        ..qp.clone()
    };
    (reduced, kept)
}

/// The exact KKT point of the active set that `point` suggests, when it is certified: the
/// dual rule `nu_i > h_i - G_i x`, else the rows whose slack is below 1e-7 of their terms.
fn certify(qp: &HostQp, point: &OracleSolution) -> Option<OracleSolution> {
    let by_duals = super::dual_active_set(qp, &point.x, &point.nu);
    let gx = super::mat_vec(&qp.g, &point.x);
    let by_slacks: Vec<bool> = (0..qp.h.len())
        .map(|i| {
            let terms = (0..point.x.len()).map(|j| (qp.g.get(i, j) * point.x[j]).abs());
            let size = terms.fold(qp.h[i].abs().max(1.0), f64::max);
            qp.h[i] - gx[i] <= 1e-7 * size
        })
        .collect();
    [by_duals, by_slacks]
        .iter()
        .find_map(|active| certified_kkt_point(qp, active))
}

/// The KKT point of the active set `active` (inequalities), when it is one to 1e-9 row by
/// row (see [`reference_solve`]).
fn certified_kkt_point(qp: &HostQp, active: &[bool]) -> Option<OracleSolution> {
    let (n, p) = (qp.q.len(), qp.b.len());
    let rows: Vec<usize> = (0..qp.h.len()).filter(|&i| active[i]).collect();
    let r = p + rows.len();
    let c = |i: usize, j: usize| {
        if i < p {
            qp.a.get(i, j)
        } else {
            qp.g.get(rows[i - p], j)
        }
    };
    let k = nalgebra::DMatrix::from_fn(n + r, n + r, |i, j| match (i < n, j < n) {
        (true, true) => qp.p.get(i, j),
        (true, false) => c(j - n, i),
        (false, true) => c(i - n, j),
        (false, false) => 0.0,
    });
    let rhs = nalgebra::DVector::from_fn(n + r, |i, _| {
        if i < n {
            -qp.q[i]
        } else if i < n + p {
            qp.b[i - n]
        } else {
            qp.h[rows[i - n - p]]
        }
    });
    let z = k.full_piv_lu().solve(&rhs)?;
    let x: Vec<f64> = z.iter().take(n).copied().collect();
    let lam: Vec<f64> = z.iter().skip(n).take(p).copied().collect();
    let mut nu = vec![0.0; qp.h.len()];
    for (slot, &i) in rows.iter().enumerate() {
        nu[i] = z[n + p + slot];
    }
    let tol = 1e-9;
    let row_terms = |m: &HostMatrix, i: usize| -> f64 {
        (0..n).map(|j| (m.get(i, j) * x[j]).abs()).sum::<f64>()
    };
    let primal_ok = (0..qp.h.len()).all(|i| {
        let gx: f64 = (0..n).map(|j| qp.g.get(i, j) * x[j]).sum();
        gx - qp.h[i] <= tol * row_terms(&qp.g, i).max(qp.h[i].abs()).max(1.0)
    }) && (0..p).all(|i| {
        let ax: f64 = (0..n).map(|j| qp.a.get(i, j) * x[j]).sum();
        (ax - qp.b[i]).abs() <= tol * row_terms(&qp.a, i).max(qp.b[i].abs()).max(1.0)
    });
    let nu_scale = nu.iter().fold(1.0_f64, |a, v| a.max(v.abs()));
    let dual_ok = nu.iter().all(|v| *v >= -tol * nu_scale)
        && (0..n).all(|j| {
            let terms = (0..n)
                .map(|i| qp.p.get(j, i) * x[i])
                .chain((0..p).map(|i| qp.a.get(i, j) * lam[i]))
                .chain((0..qp.h.len()).map(|i| qp.g.get(i, j) * nu[i]))
                .chain([qp.q[j]]);
            let (sum, size) = terms.fold((0.0, 0.0_f64), |(s, m), t| (s + t, m.max(t.abs())));
            sum.abs() <= tol * size.max(1.0)
        });
    if !(primal_ok && dual_ok) {
        return None;
    }
    let px = super::mat_vec(&qp.p, &x);
    let objective = x
        .iter()
        .zip(&px)
        .zip(&qp.q)
        .map(|((x, px), q)| x * (0.5 * px + q))
        .sum();
    Some(OracleSolution {
        x,
        lam,
        nu,
        objective,
    })
}

/// How a solver's answer compares with the reference.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// Reported solved, and right.
    Right,
    /// Reported solved, and wrong: the failure that must never happen.
    WrongSolved,
    /// Not reported solved (a status, or an error).
    Unsolved,
}

impl Judgement {
    /// Judges `solution` against `reference` for a problem of kind `kind`: the objective
    /// within `1e-5 max(1, |f*|)`, and `x` within `1e-3 max(1, |x*|_inf)` when the solution
    /// is unique.
    ///
    /// # Example
    /// ```
    /// use altdiff_core::testing::{Judgement, UserDataKind, reference_solve, user_qp};
    /// use altdiff_core::{Settings, testing::{RefBackend, solve_host}};
    /// let qp = user_qp(UserDataKind::ScaledRows, 0);
    /// let reference = reference_solve(&qp).unwrap();
    /// let sol = solve_host(&RefBackend, &qp, Settings::default())?;
    /// assert_ne!(Judgement::of(&sol, &reference, UserDataKind::ScaledRows), Judgement::WrongSolved);
    /// # Ok::<(), altdiff_core::Error>(())
    /// ```
    pub fn of(solution: &HostSolution, reference: &OracleSolution, kind: UserDataKind) -> Self {
        if !solution.status.is_solved() {
            return Judgement::Unsolved;
        }
        if objective_right(solution.objective, reference.objective)
            && (!kind.unique() || x_right(&solution.x, &reference.x))
        {
            Judgement::Right
        } else {
            Judgement::WrongSolved
        }
    }
}

/// `|f - f*| <= 1e-5 max(1, |f*|)`.
pub fn objective_right(got: f64, reference: f64) -> bool {
    (got - reference).abs() <= 1e-5 * reference.abs().max(1.0)
}

/// `|x - x*|_inf <= 1e-3 max(1, |x*|_inf)`.
pub fn x_right(got: &[f64], reference: &[f64]) -> bool {
    let scale = reference.iter().fold(1.0_f64, |a, v| a.max(v.abs()));
    got.len() == reference.len()
        && got
            .iter()
            .zip(reference)
            .all(|(a, b)| (a - b).abs() <= 1e-3 * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_valid_and_solved_by_the_reference() {
        for problem in user_data_set(30, 7) {
            problem.qp.validate().unwrap();
            assert!(
                reference_solve(&problem.qp).is_some(),
                "{}: clarabel fails",
                problem.name
            );
        }
    }

    #[test]
    fn the_non_unique_kind_has_a_segment_of_solutions() {
        let qp = user_qp(UserDataKind::NonUnique, 2);
        let reference = reference_solve(&qp).unwrap();
        // x_0 does not enter the cost: moving it inside its box keeps the objective
        let mut moved = reference.x.clone();
        moved[0] = if moved[0] > 0.0 { -0.5 } else { 0.5 };
        let f = |x: &[f64]| {
            let px = super::super::mat_vec(&qp.p, x);
            x.iter()
                .zip(&px)
                .zip(&qp.q)
                .map(|((x, px), q)| x * (0.5 * px + q))
                .sum::<f64>()
        };
        assert!((f(&moved) - reference.objective).abs() < 1e-8);
    }
}
