//! Anderson acceleration of the forward iteration (see [`Anderson`](crate::Anderson)).
//!
//! The state of the ADMM map is `z = (s, lam, nu)`: the x-update reads only these. With
//! `F` one plain step and `f_k = F(z_k) - z_k` its residual, type-II Anderson acceleration
//! takes `z_{k+1} = F(z_k) - (dZ + dF) gamma`, where the columns of `dZ` and `dF` are the
//! last differences `z_i - z_{i-1}`, `f_i - f_{i-1}` and `gamma` minimizes
//! `|f_k - dF gamma|`. The solver measures and returns the plain iterate `F(z_k)`, so its
//! stopping rule and its solution are those of ADMM.

use std::collections::VecDeque;

use num_traits::One;

use crate::solver::iteration::Iterate;
use crate::{Anderson, LinAlg, Real, Result};

/// A state `(s, lam, nu)`.
type State<B> = [<B as LinAlg>::Mat; 3];

fn state<B: LinAlg>(it: &Iterate<B>) -> State<B> {
    [it.s.clone(), it.lam.clone(), it.nu.clone()]
}

fn dot<B: LinAlg>(be: &B, x: &State<B>, y: &State<B>) -> Result<f64> {
    x.iter().zip(y).try_fold(
        0.0,
        |acc, (xi, yi)| Ok(acc + be.dot(xi, yi)?.to_f64_lossy()),
    )
}

/// `a - b`, block by block.
fn difference<B: LinAlg>(be: &B, a: &State<B>, b: &State<B>) -> Result<State<B>> {
    let mut out = a.clone();
    for (o, bi) in out.iter_mut().zip(b) {
        be.axpby(-B::Real::one(), bi, B::Real::one(), o)?;
    }
    Ok(out)
}

/// The accelerator of one solve.
pub(crate) struct Accelerator<B: LinAlg> {
    settings: Anderson,
    /// The state the last plain step started from.
    from: Option<State<B>>,
    /// `(z_{k-1}, f_{k-1})` of the step before it.
    last: Option<(State<B>, State<B>)>,
    /// `(dz, df)` pairs, oldest first, and the Gram matrix of the `df`.
    history: VecDeque<(State<B>, State<B>)>,
    gram: VecDeque<VecDeque<f64>>,
    /// The smallest residual norm since the last restart.
    best: f64,
    /// Restarts by the safeguard (for tests and reports).
    pub restarts: usize,
}

impl<B: LinAlg> Accelerator<B> {
    pub fn new(settings: Anderson) -> Self {
        Self {
            settings,
            from: None,
            last: None,
            history: VecDeque::new(),
            gram: VecDeque::new(),
            best: f64::INFINITY,
            restarts: 0,
        }
    }

    /// Forgets the differences (a new map: adaptive rho changed the penalty).
    pub fn clear(&mut self) {
        self.history.clear();
        self.gram.clear();
        self.last = None;
        self.best = f64::INFINITY;
    }

    /// Called before each step with the iterate `F(z_{k-1})` (or the start): records the
    /// residual of the last step and replaces the iterate's state by the accelerated one.
    pub fn next(&mut self, be: &B, it: &mut Iterate<B>) -> Result<()> {
        let image = state(it);
        let Some(from) = self.from.take() else {
            self.from = Some(image);
            return Ok(());
        };
        let f = difference(be, &image, &from)?;
        let norm = dot(be, &f, &f)?.sqrt();
        if !norm.is_finite() || norm > self.settings.safeguard * self.best {
            // the last extrapolation made things worse: this step stays plain
            self.restarts += usize::from(norm.is_finite());
            self.clear();
            self.best = norm;
            self.last = Some((from, f));
            self.from = Some(image);
            return Ok(());
        }
        self.best = self.best.min(norm);
        if let Some((z_prev, f_prev)) = self.last.take() {
            self.push(
                be,
                difference(be, &from, &z_prev)?,
                difference(be, &f, &f_prev)?,
            )?;
        }
        let next = match self.coefficients(be, &f)? {
            Some(gamma) => self.extrapolate(be, &image, &gamma)?,
            None => image,
        };
        let [s, lam, nu] = next.clone();
        (it.s, it.lam, it.nu) = (s, lam, nu);
        self.last = Some((from, f));
        self.from = Some(next);
        Ok(())
    }

    /// Adds a difference pair, dropping the oldest beyond the memory.
    fn push(&mut self, be: &B, dz: State<B>, df: State<B>) -> Result<()> {
        if self.history.len() == self.settings.memory {
            self.history.pop_front();
            self.gram.pop_front();
            for row in &mut self.gram {
                row.pop_front();
            }
        }
        let mut row = VecDeque::with_capacity(self.history.len() + 1);
        for (i, (_, other)) in self.history.iter().enumerate() {
            let v = dot(be, &df, other)?;
            self.gram[i].push_back(v);
            row.push_back(v);
        }
        row.push_back(dot(be, &df, &df)?);
        self.gram.push_back(row);
        self.history.push_back((dz, df));
        Ok(())
    }

    /// `gamma = argmin |f - dF gamma|` by the regularized normal equations, `None` without
    /// history or when they are not positive definite.
    fn coefficients(&self, be: &B, f: &State<B>) -> Result<Option<Vec<f64>>> {
        let k = self.history.len();
        if k == 0 {
            return Ok(None);
        }
        let rhs = self
            .history
            .iter()
            .map(|(_, df)| dot(be, df, f))
            .collect::<Result<Vec<f64>>>()?;
        let scale = (0..k).map(|i| self.gram[i][i]).fold(0.0, f64::max);
        let shift = self.settings.regularization * scale;
        let gram: Vec<Vec<f64>> = (0..k)
            .map(|i| {
                (0..k)
                    .map(|j| self.gram[i][j] + if i == j { shift } else { 0.0 })
                    .collect()
            })
            .collect();
        Ok(cholesky_solve(&gram, &rhs))
    }

    /// `image - sum_i gamma_i (dz_i + df_i)`.
    fn extrapolate(&self, be: &B, image: &State<B>, gamma: &[f64]) -> Result<State<B>> {
        let mut out = image.clone();
        for (g, (dz, df)) in gamma.iter().zip(&self.history) {
            let g = B::Real::of(-*g);
            for ((o, z), f) in out.iter_mut().zip(dz).zip(df) {
                be.axpby(g, z, B::Real::one(), o)?;
                be.axpby(g, f, B::Real::one(), o)?;
            }
        }
        Ok(out)
    }
}

/// Solves `M x = b` for a small symmetric positive definite `M` (rows), `None` when it is
/// not (numerically) positive definite or the result is not finite.
fn cholesky_solve(m: &[Vec<f64>], b: &[f64]) -> Option<Vec<f64>> {
    let k = b.len();
    let mut l = vec![vec![0.0; k]; k];
    for i in 0..k {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|t| l[i][t] * l[j][t]).sum();
            if i == j {
                let d = m[i][i] - sum;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[i][i] = d.sqrt();
            } else {
                l[i][j] = (m[i][j] - sum) / l[j][j];
            }
        }
    }
    let mut y = vec![0.0; k];
    for i in 0..k {
        y[i] = (b[i] - (0..i).map(|t| l[i][t] * y[t]).sum::<f64>()) / l[i][i];
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        x[i] = (y[i] - (i + 1..k).map(|t| l[t][i] * x[t]).sum::<f64>()) / l[i][i];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::cholesky_solve;

    #[test]
    fn small_cholesky_solves_and_refuses_indefinite() {
        let m = vec![vec![4.0, 2.0], vec![2.0, 3.0]];
        let x = cholesky_solve(&m, &[2.0, 1.0]).unwrap();
        // 4 x0 + 2 x1 = 2, 2 x0 + 3 x1 = 1  ->  x = (1/2, 0)
        assert!((x[0] - 0.5).abs() < 1e-15 && x[1].abs() < 1e-15, "{x:?}");
        assert!(cholesky_solve(&[vec![1.0, 2.0], vec![2.0, 1.0]], &[1.0, 1.0]).is_none());
    }
}
