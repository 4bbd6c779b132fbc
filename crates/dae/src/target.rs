//! Target densities (docs/METHOD-dae.md, eq. (M1)): a Gaussian mixture in dimension `d` whose `C`
//! centroids lie in the span of the first `r` coordinate axes, every cluster with the same
//! diagonal covariance `diag(λ_1, …, λ_d)` (isotropic `σ² I`, a power law, or the spectrum of the
//! empirical covariance of the MNIST sevens); `C = 1` with a zero centroid is a centred Gaussian.
//!
//! Working in the eigenbasis (and putting the centroids on the first axes) loses nothing: the
//! model's law is rotation-invariant (i.i.d. Gaussian `W` at start, isotropic noise), so a
//! rotated target gives the same law of every projection.
//!
//! Later generations train on a pool of samples of the previous generation ([`Source::Pool`]).

use std::path::Path;
use std::sync::Arc;

use nalgebra::DMatrix;
use rand::Rng;
use rand_distr::StandardNormal;

use crate::DaeError;

/// A Gaussian mixture with equal weights and a shared diagonal covariance.
#[derive(Clone, Debug, PartialEq)]
pub struct Mixture {
    pub d: usize,
    /// Centroids in latent coordinates (each of length `r ≤ d`; coordinate `a` is axis `a`).
    pub centroids: Vec<Vec<f64>>,
    /// Per-coordinate standard deviation `√λ_i` (length `d`).
    pub std: Vec<f64>,
}

impl Mixture {
    /// `C` centroids on a regular polygon of radius `radius` in the plane of axes 1 and 2, the
    /// first at angle 90° (`C = 3`: a triangle, not symmetric under `x → −x`).
    pub fn polygon(c: usize, radius: f64) -> Vec<Vec<f64>> {
        (0..c)
            .map(|i| {
                let a =
                    std::f64::consts::FRAC_PI_2 + 2.0 * std::f64::consts::PI * i as f64 / c as f64;
                vec![radius * a.cos(), radius * a.sin()]
            })
            .collect()
    }

    pub fn new(d: usize, centroids: Vec<Vec<f64>>, std: Vec<f64>) -> Result<Self, DaeError> {
        if centroids.is_empty() {
            return Err(DaeError::invalid(
                "target.centroids",
                "need at least one centroid",
            ));
        }
        if std.len() != d {
            return Err(DaeError::invalid(
                "target",
                format!("covariance spectrum has {} values for d = {d}", std.len()),
            ));
        }
        for (i, c) in centroids.iter().enumerate() {
            if c.len() > d {
                return Err(DaeError::invalid(
                    "target.centroids",
                    format!(
                        "centroid {i} has {} coordinates, more than d = {d}",
                        c.len()
                    ),
                ));
            }
            if c.iter().any(|v| !v.is_finite()) {
                return Err(DaeError::invalid(
                    "target.centroids",
                    format!("centroid {i} is not finite"),
                ));
            }
        }
        if std.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(DaeError::invalid(
                "target",
                "covariance eigenvalues must be finite and ≥ 0",
            ));
        }
        Ok(Self { d, centroids, std })
    }

    /// Draws one sample into `out` (length `d`).
    pub fn sample_into(&self, rng: &mut impl Rng, out: &mut [f64]) {
        let c = if self.centroids.len() == 1 {
            0
        } else {
            rng.random_range(0..self.centroids.len())
        };
        for (o, s) in out.iter_mut().zip(&self.std) {
            *o = s * rng.sample::<f64, _>(StandardNormal);
        }
        for (o, m) in out.iter_mut().zip(&self.centroids[c]) {
            *o += m;
        }
    }

    /// The exact denoiser `E[x0 | x_t = x]` of the interpolant `x_t = t x0 + (1 − t) z` (the
    /// optimum of the denoising loss over all functions): given cluster `c`,
    /// `x_t ~ N(t μ_c, S)`, `S = t² Λ + (1 − t)² I`, and `E[x0 | x_t, c] = μ_c + t Λ S⁻¹ (x − t μ_c)`;
    /// the clusters are weighted by their posterior probabilities.
    pub fn posterior_mean(&self, t: f64, x: &[f64], out: &mut [f64]) {
        let s: Vec<f64> = self
            .std
            .iter()
            .map(|sd| t * t * sd * sd + (1.0 - t) * (1.0 - t))
            .collect();
        let logp: Vec<f64> = self
            .centroids
            .iter()
            .map(|mu| {
                mu.iter()
                    .enumerate()
                    .map(|(i, m)| -0.5 * ((x[i] - t * m).powi(2) - x[i] * x[i]) / s[i])
                    .sum::<f64>()
            })
            .collect();
        let top = logp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = logp.iter().map(|l| (l - top).exp()).collect();
        let z: f64 = w.iter().sum();
        for (i, o) in out.iter_mut().enumerate() {
            let lam = self.std[i] * self.std[i];
            let mut v = 0.0;
            for (mu, wc) in self.centroids.iter().zip(&w) {
                let m = mu.get(i).copied().unwrap_or(0.0);
                v += wc / z * (m + t * lam / s[i] * (x[i] - t * m));
            }
            *o = v;
        }
    }

    /// `m = E‖x0‖²/d`, the per-coordinate second moment (the average eigenvalue `λ̄` of the
    /// second-moment matrix) that fixes the optimal skip connection (eq. (M6)).
    pub fn second_moment(&self) -> f64 {
        let tr: f64 = self.std.iter().map(|s| s * s).sum();
        let mu: f64 = self
            .centroids
            .iter()
            .map(|c| c.iter().map(|v| v * v).sum::<f64>())
            .sum::<f64>()
            / self.centroids.len() as f64;
        (tr + mu) / self.d as f64
    }

    /// Variance of coordinate `i`: `λ_i` plus the spread of the centroids along axis `i`.
    pub fn variance(&self, i: usize) -> f64 {
        let c = self.centroids.len() as f64;
        let coord = |m: &Vec<f64>| m.get(i).copied().unwrap_or(0.0);
        let mean = self.centroids.iter().map(coord).sum::<f64>() / c;
        let spread = self
            .centroids
            .iter()
            .map(|m| (coord(m) - mean).powi(2))
            .sum::<f64>()
            / c;
        self.std[i] * self.std[i] + spread
    }
}

/// Where a generation's training samples `x0` come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Fresh samples of the target at every step (online SGD).
    Fresh(Mixture),
    /// Rows of a fixed pool (`n x d`, f32): `Sequential` takes row `step mod n` (a pool as large
    /// as the number of steps is online SGD on the pool's law), `Uniform` a uniformly random row
    /// (finite data: `n` fixed samples, reused).
    Pool {
        d: usize,
        rows: Arc<Vec<f32>>,
        uniform: bool,
    },
}

impl Source {
    pub fn d(&self) -> usize {
        match self {
            Source::Fresh(m) => m.d,
            Source::Pool { d, .. } => *d,
        }
    }

    /// Sample `x0` for SGD step `step` of one network.
    pub fn draw(&self, rng: &mut impl Rng, step: usize, out: &mut [f64]) {
        match self {
            Source::Fresh(m) => m.sample_into(rng, out),
            Source::Pool { d, rows, uniform } => {
                let n = rows.len() / d;
                let i = if *uniform {
                    rng.random_range(0..n)
                } else {
                    step % n
                };
                for (o, &v) in out.iter_mut().zip(&rows[i * d..(i + 1) * d]) {
                    *o = v as f64;
                }
            }
        }
    }

    /// `m = E‖x0‖²/d` of the source (of the pool's rows for a pool).
    pub fn second_moment(&self) -> f64 {
        match self {
            Source::Fresh(m) => m.second_moment(),
            Source::Pool { d, rows, .. } => {
                let n = rows.len() / d;
                rows.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / (n * d) as f64
            }
        }
    }
}

/// A power-law spectrum `λ_i = scale · i^(−exponent)`, `i = 1..d`, as standard deviations.
pub fn power_law_std(d: usize, scale: f64, exponent: f64) -> Vec<f64> {
    (1..=d)
        .map(|i| (scale * (i as f64).powf(-exponent)).sqrt())
        .collect()
}

/// The eigenvalues (descending) of the empirical covariance of the digits `digit` of an MNIST IDX
/// image/label pair: pixels `byte/255` in `[0, 1]`, flattened (`d = 784`), centred, covariance with
/// `1/n`, times `scale`. Returns `(eigenvalues, number of digits)`.
pub fn mnist_digit_spectrum(
    images: &Path,
    labels: &Path,
    digit: u8,
    scale: f64,
) -> Result<(Vec<f64>, usize), DaeError> {
    let set =
        memdiff_data::mnist::load_images(images).map_err(|e| DaeError::Data(e.to_string()))?;
    let lab =
        memdiff_data::mnist::load_labels(labels).map_err(|e| DaeError::Data(e.to_string()))?;
    if lab.len() != set.n {
        return Err(DaeError::Data(format!(
            "{} has {} images but {} has {} labels",
            images.display(),
            set.n,
            labels.display(),
            lab.len()
        )));
    }
    let d = set.dim();
    let rows: Vec<usize> = (0..set.n).filter(|&i| lab[i] == digit).collect();
    if rows.len() < 2 {
        return Err(DaeError::Data(format!(
            "{} holds {} images of the digit {digit}; need at least 2",
            labels.display(),
            rows.len()
        )));
    }
    let n = rows.len();
    let mut x = DMatrix::<f64>::zeros(n, d);
    for (r, &i) in rows.iter().enumerate() {
        for (j, &v) in set.row(i).iter().enumerate() {
            x[(r, j)] = v as f64;
        }
    }
    for j in 0..d {
        let mean = x.column(j).sum() / n as f64;
        x.column_mut(j).add_scalar_mut(-mean);
    }
    let cov = (x.transpose() * &x) * (scale / n as f64);
    let eig = nalgebra::SymmetricEigen::new(cov);
    let mut ev: Vec<f64> = eig.eigenvalues.iter().map(|&v| v.max(0.0)).collect();
    ev.sort_by(|a, b| b.total_cmp(a));
    Ok((ev, n))
}
