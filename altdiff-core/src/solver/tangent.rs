//! Tangent directions: what a Jacobian or a JVP differentiates, and the per-iteration data
//! of the tangent recursion.
//!
//! For a direction `(dP, dq, dA, db, dG, dh)` the tangent recursion is the iteration of
//! [`iteration`](super::iteration) run with the *effective data*
//!
//! ```text
//! dq_eff = dq + dP x + dA'u + dG'w      u = lam + rho (Ax - b)        (= lam_{k+1})
//! db_eff = db - dA x                    w = nu + rho (s + Gx - h)     (s, nu of step k)
//! dh_eff = dh - dG x                    x = x_{k+1}
//! ```
//!
//! which follows from differentiating `H x = -[q + A'lam + G'(nu + rho s) - rho A'b - rho G'h]`
//! with `dH = dP + rho (dA'A + A'dA + dG'G + G'dG)`:
//! `dx = -H^-1 [dq + dP x + dA'u + rho A'dA x + dG'w + rho G'dG x - rho A'db - rho G'dh
//! + A'dlam + G'(dnu + rho ds)]`, i.e. the affine term `c = dq_eff - rho A'db_eff - rho G'dh_eff`.
//! The slack and dual updates see `db_eff`, `dh_eff` in place of `db`, `dh`:
//! `ds = 1[s > 0] (-dnu/rho - dG x - G dx + dh)`, `dlam += rho (dA x + A dx - db)`,
//! `dnu += rho (dG x + G dx + ds - dh)`. For `q`, `b`, `h` alone the effective data are
//! constant; for `P`, `A`, `G` they follow the forward iterate and are rebuilt every
//! iteration (on the host: a full Jacobian wrt a matrix is an `n x n^2` object anyway).

use crate::{Error, Field, HostMatrix, LinAlg, Param, QpDims, QpParams, Real, Result};

/// `k` tangent directions for a JVP: any of `(dP, dq, dA, db, dG, dh)`; absent ones are zero.
///
/// Vector parameters are `len x k` blocks (column `j` is direction `j`); matrix parameters
/// are `k` matrices of the parameter's shape (`dP_j` need not be symmetric).
///
/// # Example
/// ```
/// use altdiff_core::{Directions, Field, HostMatrix, QpDims};
/// let dims = QpDims { n: 2, p: 1, m: 0 };
/// let dirs = Directions::new(1)
///     .with_q(HostMatrix::from_rows(Field::Q, &[vec![1.0], vec![0.0]])?)
///     .with_p(vec![HostMatrix::from_rows(Field::P, &[vec![0.0, 1.0], vec![1.0, 0.0]])?]);
/// assert!(dirs.validate(dims).is_ok());
/// # Ok::<(), altdiff_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Directions {
    k: usize,
    q: Option<HostMatrix>,
    b: Option<HostMatrix>,
    h: Option<HostMatrix>,
    p: Vec<HostMatrix>,
    a: Vec<HostMatrix>,
    g: Vec<HostMatrix>,
}

impl Directions {
    /// `k` all-zero directions.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            ..Self::default()
        }
    }

    /// The same directions with every given matrix passed through `f` (with its parameter).
    pub(crate) fn map(&self, f: impl Fn(Param, &HostMatrix) -> HostMatrix) -> Self {
        let one = |param, m: &Option<HostMatrix>| m.as_ref().map(|m| f(param, m));
        let list = |param, l: &Vec<HostMatrix>| l.iter().map(|m| f(param, m)).collect();
        Self {
            k: self.k,
            q: one(Param::Q, &self.q),
            b: one(Param::B, &self.b),
            h: one(Param::H, &self.h),
            p: list(Param::P, &self.p),
            a: list(Param::A, &self.a),
            g: list(Param::G, &self.g),
        }
    }

    /// The number of directions.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Sets `dq` (n x k).
    #[must_use]
    pub fn with_q(mut self, dq: HostMatrix) -> Self {
        self.q = Some(dq);
        self
    }

    /// Sets `db` (p x k).
    #[must_use]
    pub fn with_b(mut self, db: HostMatrix) -> Self {
        self.b = Some(db);
        self
    }

    /// Sets `dh` (m x k).
    #[must_use]
    pub fn with_h(mut self, dh: HostMatrix) -> Self {
        self.h = Some(dh);
        self
    }

    /// Sets `dP_1 .. dP_k` (each n x n).
    #[must_use]
    pub fn with_p(mut self, dp: Vec<HostMatrix>) -> Self {
        self.p = dp;
        self
    }

    /// Sets `dA_1 .. dA_k` (each p x n).
    #[must_use]
    pub fn with_a(mut self, da: Vec<HostMatrix>) -> Self {
        self.a = da;
        self
    }

    /// Sets `dG_1 .. dG_k` (each m x n).
    #[must_use]
    pub fn with_g(mut self, dg: Vec<HostMatrix>) -> Self {
        self.g = dg;
        self
    }

    /// Checks every block's shape against `dims` and its entries for finiteness.
    ///
    /// # Errors
    /// [`Error::Dimension`] or [`Error::NonFinite`] naming the parameter.
    pub fn validate(&self, dims: QpDims) -> Result<()> {
        let check = |field, m: &HostMatrix, shape: (usize, usize)| -> Result<()> {
            if (m.nrows(), m.ncols()) != shape {
                return Err(Error::Dimension {
                    field,
                    expected: shape,
                    got: (m.nrows(), m.ncols()),
                });
            }
            match m.col_major().iter().position(|v| !v.is_finite()) {
                Some(i) => Err(Error::NonFinite {
                    field,
                    row: i % shape.0.max(1),
                    col: i / shape.0.max(1),
                    value: m.col_major()[i],
                }),
                None => Ok(()),
            }
        };
        for (field, block, rows) in [
            (Field::Q, &self.q, dims.n),
            (Field::B, &self.b, dims.p),
            (Field::H, &self.h, dims.m),
        ] {
            if let Some(m) = block {
                check(field, m, (rows, self.k))?;
            }
        }
        for (field, list, rows) in [
            (Field::P, &self.p, dims.n),
            (Field::A, &self.a, dims.p),
            (Field::G, &self.g, dims.m),
        ] {
            if !list.is_empty() && list.len() != self.k {
                return Err(Error::Dimension {
                    field,
                    expected: (self.k, 1),
                    got: (list.len(), 1),
                });
            }
            for m in list {
                check(field, m, (rows, dims.n))?;
            }
        }
        Ok(())
    }
}

/// The directions of one matrix parameter.
#[derive(Clone, Debug)]
pub(crate) enum MatrixDirections {
    /// Every entry on its own (the Jacobian): column `i c + j` is `E_ij`.
    Unit,
    /// Given dense directions.
    Dense(Vec<HostMatrix>),
}

/// What one tangent block differentiates: constant derivatives of `(q, b, h)` and the
/// directions of `P`, `A`, `G`.
#[derive(Debug)]
pub(crate) struct TangentSpec<B: LinAlg> {
    /// Number of columns.
    pub k: usize,
    /// `(dq, db, dh)`: `n x k`, `p x k`, `m x k`.
    pub constant: QpParams<B>,
    /// Directions of `P`, `A`, `G` (in that order); `None` is zero.
    pub matrices: [Option<MatrixDirections>; 3],
}

/// The forward quantities the matrix directions act on, read back to the host.
pub(crate) struct HostPoint {
    pub x: Vec<f64>,
    pub u: Vec<f64>,
    pub w: Vec<f64>,
}

impl<B: LinAlg> TangentSpec<B> {
    /// The Jacobian with respect to `param`: identity directions.
    pub fn jacobian(backend: &B, dims: QpDims, param: Param) -> Result<Self> {
        let k = param.len(dims);
        let mut constant = zero_data(backend, dims, k)?;
        let mut matrices = [None, None, None];
        match param {
            Param::Q => constant.q = identity(backend, k)?,
            Param::B => constant.b = identity(backend, k)?,
            Param::H => constant.h = identity(backend, k)?,
            Param::P => matrices[0] = Some(MatrixDirections::Unit),
            Param::A => matrices[1] = Some(MatrixDirections::Unit),
            Param::G => matrices[2] = Some(MatrixDirections::Unit),
        }
        Ok(Self {
            k,
            constant,
            matrices,
        })
    }

    /// The spec of user directions (validated).
    pub fn from_directions(backend: &B, dims: QpDims, dirs: &Directions) -> Result<Self> {
        dirs.validate(dims)?;
        let k = dirs.k;
        let upload = |m: &Option<HostMatrix>, rows: usize| -> Result<B::Mat> {
            match m {
                Some(m) => {
                    backend.mat_from_col_major(rows, k, &crate::problem::convert(&m.col_major()))
                }
                None => backend.zeros(rows, k),
            }
        };
        let constant = QpParams {
            q: upload(&dirs.q, dims.n)?,
            b: upload(&dirs.b, dims.p)?,
            h: upload(&dirs.h, dims.m)?,
        };
        let dense = |list: &Vec<HostMatrix>| {
            (!list.is_empty()).then(|| MatrixDirections::Dense(list.clone()))
        };
        Ok(Self {
            k,
            constant,
            matrices: [dense(&dirs.p), dense(&dirs.a), dense(&dirs.g)],
        })
    }

    /// Whether the effective data change with the forward iterate.
    pub fn has_matrices(&self) -> bool {
        self.matrices.iter().any(Option::is_some)
    }

    /// The effective data `(dq_eff, db_eff, dh_eff)` at a forward point (see the module docs).
    pub fn effective(&self, backend: &B, dims: QpDims, at: &HostPoint) -> Result<QpParams<B>> {
        let (n, k) = (dims.n, self.k);
        let mut c = vec![0.0; n * k];
        let mut b = vec![0.0; dims.p * k];
        let mut h = vec![0.0; dims.m * k];
        let [p_dirs, a_dirs, g_dirs] = &self.matrices;
        if let Some(d) = p_dirs {
            add_directions(d, n, &at.x, None, &mut c, None);
        }
        if let Some(d) = a_dirs {
            add_directions(d, dims.p, &at.x, Some(&at.u), &mut c, Some(&mut b));
        }
        if let Some(d) = g_dirs {
            add_directions(d, dims.m, &at.x, Some(&at.w), &mut c, Some(&mut h));
        }
        let one = B::Real::one();
        let mut data = self.constant.clone();
        backend.axpby(
            one,
            &backend.mat_from_col_major(n, k, &crate::problem::convert(&c))?,
            one,
            &mut data.q,
        )?;
        backend.axpby(
            -one,
            &backend.mat_from_col_major(dims.p, k, &crate::problem::convert(&b))?,
            one,
            &mut data.b,
        )?;
        backend.axpby(
            -one,
            &backend.mat_from_col_major(dims.m, k, &crate::problem::convert(&h))?,
            one,
            &mut data.h,
        )?;
        Ok(data)
    }
}

/// Adds the terms of one matrix parameter `M` (`rows x n`) for every direction `dM_t`:
/// `c[:, t] += dM_t' y` (when `y` is given; for `P`, `c[:, t] += dP_t x`) and
/// `r[:, t] = dM_t x` (when `r` is given). Blocks are column-major.
fn add_directions(
    dirs: &MatrixDirections,
    rows: usize,
    x: &[f64],
    y: Option<&[f64]>,
    c: &mut [f64],
    mut r: Option<&mut [f64]>,
) {
    let n = x.len();
    match dirs {
        MatrixDirections::Unit => {
            for i in 0..rows {
                for j in 0..n {
                    let t = i * n + j;
                    match y {
                        // dM = E_ij: dM' y = e_j y_i, dM x = e_i x_j
                        Some(y) => {
                            c[t * n + j] += y[i];
                            if let Some(r) = r.as_deref_mut() {
                                r[t * rows + i] = x[j];
                            }
                        }
                        // dP = E_ij: dP x = e_i x_j
                        None => c[t * n + i] += x[j],
                    }
                }
            }
        }
        MatrixDirections::Dense(list) => {
            for (t, m) in list.iter().enumerate() {
                for col in 0..n {
                    for row in 0..rows {
                        let v = m.get(row, col);
                        match y {
                            Some(y) => {
                                c[t * n + col] += v * y[row];
                                if let Some(r) = r.as_deref_mut() {
                                    r[t * rows + row] += v * x[col];
                                }
                            }
                            None => c[t * n + row] += v * x[col],
                        }
                    }
                }
            }
        }
    }
}

/// All-zero data blocks with `k` columns.
pub(crate) fn zero_data<B: LinAlg>(backend: &B, dims: QpDims, k: usize) -> Result<QpParams<B>> {
    Ok(QpParams {
        q: backend.zeros(dims.n, k)?,
        b: backend.zeros(dims.p, k)?,
        h: backend.zeros(dims.m, k)?,
    })
}

/// The `d x d` identity block.
pub(crate) fn identity<B: LinAlg>(backend: &B, d: usize) -> Result<B::Mat> {
    let mut data = vec![B::Real::zero(); d * d];
    for i in 0..d {
        data[i * d + i] = B::Real::one();
    }
    backend.mat_from_col_major(d, d, &data)
}

/// A block read back as `f64`.
pub(crate) fn download<B: LinAlg>(backend: &B, m: &B::Mat) -> Result<Vec<f64>> {
    Ok(backend
        .to_col_major(m)?
        .into_iter()
        .map(Real::to_f64_lossy)
        .collect())
}

use num_traits::{One, Zero};
