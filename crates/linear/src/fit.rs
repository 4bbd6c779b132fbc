//! Training pairs, the centred least-squares fit and the Gaussian generator (docs/METHOD.md §6).
//!
//! Layout: a set of `m` points in dimension `d` is a `d x m` matrix, one point per column.

use crate::params::{DataModel, Params};
use crate::{LinearError, Result};
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand::Rng;
use rand_distr::{ChiSquared, StandardNormal};

/// `count` draws of the training `Y`, i.i.d. `N(mu, y_variance)` per coordinate (`d x count`).
pub fn draw_y<R: Rng + ?Sized>(p: &Params, count: usize, rng: &mut R) -> DMatrix<f64> {
    let s = p.y_variance().sqrt();
    DMatrix::from_fn(p.d, count, |_, _| {
        p.mu + s * rng.sample::<f64, _>(StandardNormal)
    })
}

/// The noisy inputs `X_k` for given `Y_k` (same shape), from the data model's `X | Y`.
pub fn draw_x_given_y<R: Rng + ?Sized>(p: &Params, y: &DMatrix<f64>, rng: &mut R) -> DMatrix<f64> {
    let (a, b, c) = p.x_given_y();
    // Column-major iteration: the stream of normals is consumed in storage order.
    let mut x = y.clone();
    for v in x.iter_mut() {
        let z: f64 = rng.sample(StandardNormal);
        *v = a + b * *v + c * z;
    }
    x
}

/// A fitted linear denoiser `Y = theta_0 + theta_1 X` with what the generator needs.
#[derive(Debug, Clone)]
pub struct Fit {
    pub theta0: DVector<f64>,
    /// `d x d`.
    pub theta1: DMatrix<f64>,
    /// Rank of the centred design `x` (= rank of `x^T x`): `min(n - 1, d)` with probability 1.
    pub rank: usize,
    /// Generator input law `X ~ N(mu_X, sigma_X^2 I)`.
    pub mu_x: DVector<f64>,
    pub sigma_x2: f64,
}

/// Least squares of `Y` on `X` (columns are pairs), centred: `theta_1^T = (x^T x + n R)^+ x^T y`,
/// the minimum-norm solution when `x^T x` is singular (`n <= d`); then the generator input law
/// of the data model (forward: sample `mu_X`, `sigma_X^2` of eq. 3.2; reverse: population).
pub fn fit(p: &Params, y: &DMatrix<f64>, x: &DMatrix<f64>) -> Result<Fit> {
    let (d, n) = (p.d, y.ncols());
    if y.nrows() != d || x.nrows() != d || x.ncols() != n || n < 2 {
        return Err(LinearError::Numerical(format!(
            "fit needs two d x n matrices with n >= 2 (got {}x{} and {}x{}, d = {d})",
            y.nrows(),
            y.ncols(),
            x.nrows(),
            x.ncols()
        )));
    }
    fit_stats(p, &Stats::of(y, x))
}

/// The sufficient statistics of a training set for the fit: means and centred cross-products
/// (in the seeds' `n x d` notation `x^T x`, `x^T y`, and `tr(y^T y)`).
#[derive(Debug, Clone)]
pub struct Stats {
    pub n: usize,
    pub ybar: DVector<f64>,
    pub xbar: DVector<f64>,
    pub xx: DMatrix<f64>,
    pub xy: DMatrix<f64>,
    pub yy_trace: f64,
}

impl Stats {
    /// From explicit points (`d x n`, one pair per column).
    pub fn of(y: &DMatrix<f64>, x: &DMatrix<f64>) -> Self {
        let ybar = y.column_mean();
        let xbar = x.column_mean();
        let mut yc = y.clone();
        let mut xc = x.clone();
        for mut c in yc.column_iter_mut() {
            c -= &ybar;
        }
        for mut c in xc.column_iter_mut() {
            c -= &xbar;
        }
        let xx = &xc * xc.transpose();
        let xy = &xc * yc.transpose();
        let yy_trace = yc.iter().map(|v| v * v).sum();
        Stats {
            n: y.ncols(),
            ybar,
            xbar,
            xx,
            xy,
            yy_trace,
        }
    }

    /// Draws the statistics of `n` fresh training pairs directly from their exact law, without
    /// drawing the points: with `X = a + b Y + c Z` per coordinate, the centred scatter of
    /// `(y, z)` is Wishart_{2d}(n - 1, diag(v_Y I, I)) (Bartlett decomposition) and the means are
    /// independent normals. Needs `n - 1 >= 2d`. Cost O(d^3) instead of O(n d^2).
    pub fn draw_wishart<R: Rng + ?Sized>(p: &Params, n: usize, rng: &mut R) -> Result<Self> {
        let d = p.d;
        let q = 2 * d;
        if n < q + 1 {
            return Err(LinearError::Numerical(format!(
                "the Wishart sampler needs n - 1 >= 2d (n = {n}, d = {d})"
            )));
        }
        let k = (n - 1) as f64;
        let mut a = DMatrix::<f64>::zeros(q, q);
        for i in 0..q {
            let chi =
                ChiSquared::new(k - i as f64).map_err(|e| LinearError::Numerical(e.to_string()))?;
            a[(i, i)] = rng.sample(chi).sqrt();
            for j in 0..i {
                a[(i, j)] = rng.sample(StandardNormal);
            }
        }
        let w = &a * a.transpose();
        let vy = p.y_variance();
        let sy = vy.sqrt();
        let syy = w.view((0, 0), (d, d)) * vy;
        let syz = w.view((0, d), (d, d)) * sy;
        let szz = w.view((d, d), (d, d)).into_owned();
        let (ca, cb, cc) = p.x_given_y();
        let szy = syz.transpose();
        let xx = &syy * (cb * cb) + (&syz + &szy) * (cb * cc) + &szz * (cc * cc);
        let xy = &syy * cb + &szy * cc;
        let nf = n as f64;
        let ybar = DVector::from_fn(d, |_, _| {
            p.mu + sy / nf.sqrt() * rng.sample::<f64, _>(StandardNormal)
        });
        let zbar = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal) / nf.sqrt());
        let xbar = ybar.map(|v| ca + cb * v) + zbar * cc;
        Ok(Stats {
            n,
            ybar,
            xbar,
            xx,
            xy,
            yy_trace: syy.trace(),
        })
    }
}

/// The fit from sufficient statistics (see [`fit`]).
pub fn fit_stats(p: &Params, st: &Stats) -> Result<Fit> {
    let (d, n) = (p.d, st.n);
    let xx = st.xx.clone();
    let xy = &st.xy;
    if !xx.iter().all(|v| v.is_finite()) || !xy.iter().all(|v| v.is_finite()) {
        return Err(LinearError::Numerical(
            "non-finite training statistics (check mu, sigma, lambda_hat)".into(),
        ));
    }
    let ybar = &st.ybar;
    let xbar = &st.xbar;
    let nr = n as f64 * p.ridge;
    // Full column rank (n - 1 >= d, with probability 1): Cholesky of x^T x + nR I.
    let chol = if n > d {
        let mut a = xx.clone();
        for i in 0..d {
            a[(i, i)] += nr;
        }
        a.cholesky()
    } else {
        None
    };
    let (m, rank) = match chol {
        Some(c) => (c.solve(xy), d),
        None => pinv_solve(xx, xy, nr, d.max(n))?,
    };
    let theta1 = m.transpose();
    let theta0 = ybar - &theta1 * xbar;
    let e2t = (-2.0 * p.t).exp();
    let (mu_x, sigma_x2) = match p.data_model {
        DataModel::Forward => (
            ybar * (-p.t).exp(),
            e2t * st.yy_trace / (n * d) as f64 + p.delta_t(),
        ),
        DataModel::Reverse => (
            DVector::from_element(d, p.mu * (-p.t).exp()),
            p.sigma_x2_population(),
        ),
    };
    Ok(Fit {
        theta0,
        theta1,
        rank,
        mu_x,
        sigma_x2,
    })
}

/// `(xx + nr)^+ xy` through the eigen-decomposition of `xx`, eigenvalues under a relative
/// tolerance treated as 0 (minimum-norm solution); also returns the rank of `xx`.
fn pinv_solve(
    xx: DMatrix<f64>,
    xy: &DMatrix<f64>,
    nr: f64,
    size: usize,
) -> Result<(DMatrix<f64>, usize)> {
    let eig = SymmetricEigen::new(xx);
    let emax = eig.eigenvalues.iter().copied().fold(0.0f64, f64::max);
    if !emax.is_finite() {
        return Err(LinearError::Numerical(
            "x^T x has non-finite entries".into(),
        ));
    }
    let tol = emax * size as f64 * f64::EPSILON * 16.0;
    let mut rank = 0;
    let inv: Vec<f64> = eig
        .eigenvalues
        .iter()
        .map(|&e| {
            if e > tol && emax > 0.0 {
                rank += 1;
                1.0 / (e + nr)
            } else {
                0.0
            }
        })
        .collect();
    let w = &eig.eigenvectors;
    // M = theta_1^T = W diag(inv) W^T (x^T y)
    let mut wt_xy = w.transpose() * xy;
    for (i, mut row) in wt_xy.row_iter_mut().enumerate() {
        row *= inv[i];
    }
    Ok((w * wt_xy, rank))
}

/// The generated law `N(mu_G, Sigma_G)`, `Sigma_G = sigma_X^2 theta_1 theta_1^T`, as
/// `Sigma_G = P diag(g) P^T` with `g` descending and exactly 0 beyond the fit's rank.
#[derive(Debug, Clone)]
pub struct Generator {
    pub mu: DVector<f64>,
    pub evals: DVector<f64>,
    /// Orthonormal eigenvectors as columns (`d x d`).
    pub evecs: DMatrix<f64>,
    /// Rank of `Sigma_G` (the fit's rank).
    pub rank: usize,
}

impl Generator {
    pub fn d(&self) -> usize {
        self.mu.len()
    }
    /// True when `Sigma_G` is singular (rank < d): `H^2 = 1`, `KL = inf`, `E_TG = E_OG = inf`.
    pub fn singular(&self) -> bool {
        self.rank < self.d()
    }
    /// The dense covariance (for tests and small d).
    pub fn covariance(&self) -> DMatrix<f64> {
        let mut pg = self.evecs.clone();
        for (j, mut c) in pg.column_iter_mut().enumerate() {
            c *= self.evals[j];
        }
        pg * self.evecs.transpose()
    }
}

impl Fit {
    /// `mu_G = theta_0 + theta_1 mu_X`, `Sigma_G = sigma_X^2 theta_1 theta_1^T`.
    pub fn generator(&self) -> Generator {
        let d = self.theta0.len();
        let mu = &self.theta0 + &self.theta1 * &self.mu_x;
        let cov = (&self.theta1 * self.theta1.transpose()) * self.sigma_x2;
        let eig = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let evals = DVector::from_iterator(
            d,
            order.iter().enumerate().map(|(k, &i)| {
                if k < self.rank {
                    eig.eigenvalues[i].max(0.0)
                } else {
                    0.0
                }
            }),
        );
        let evecs = DMatrix::from_fn(d, d, |r, c| eig.eigenvectors[(r, order[c])]);
        Generator {
            mu,
            evals,
            evecs,
            rank: self.rank,
        }
    }
}

/// Builds a generator from an explicit mean and covariance (tests, other callers). `rank` is the
/// number of eigenvalues above `tol * max`.
pub fn generator_from_cov(mu: DVector<f64>, cov: DMatrix<f64>, tol: f64) -> Generator {
    let d = mu.len();
    let eig = SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let emax = eig.eigenvalues.iter().copied().fold(0.0f64, f64::max);
    let rank = eig
        .eigenvalues
        .iter()
        .filter(|&&e| e > tol * emax && e > 0.0)
        .count();
    let evals = DVector::from_iterator(
        d,
        order
            .iter()
            .enumerate()
            .map(|(k, &i)| if k < rank { eig.eigenvalues[i] } else { 0.0 }),
    );
    let evecs = DMatrix::from_fn(d, d, |r, c| eig.eigenvectors[(r, order[c])]);
    Generator {
        mu,
        evals,
        evecs,
        rank,
    }
}
