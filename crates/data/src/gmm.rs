//! Isotropic Gaussian mixtures on `px x px` images (docs/METHOD.md §1).
//!
//! A sample picks component `c` with probability `w_c / sum(w)`, then draws every pixel
//! independently from `N(mu_c, sigma_c^2)`. Values are not clipped unless `clip` is set.
//!
//! Sampling is deterministic for a seed whatever the thread count: samples are made in chunks of
//! [`CHUNK`], chunk `k` by its own `ChaCha8Rng::seed_from_u64(seed)` on stream `k`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{DataError, ImageSet};

/// Samples per independently seeded chunk (part of the output's definition: changing it
/// changes every sample for a seed).
pub const CHUNK: usize = 256;

/// One mixture component: pixel mean, pixel standard deviation, (unnormalised) weight.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GmmComponent {
    pub mean: f64,
    pub std: f64,
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// A Gaussian mixture over `px x px` one-channel images.
///
/// In TOML:
/// ```toml
/// px = 8
/// clip = false
/// components = [ { mean = 0.4, std = 0.1 }, { mean = 0.6, std = 0.1, weight = 2.0 } ]
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GmmSpec {
    /// Image side; `d = px * px` pixels.
    pub px: usize,
    pub components: Vec<GmmComponent>,
    /// Clip samples to `[0, 1]` (default off: docs/METHOD.md §1).
    #[serde(default)]
    pub clip: bool,
}

impl GmmSpec {
    /// The papers' "centred" layout: `mu_c = mu0 + (c - (C - 1) / 2) * spacing`, every
    /// `sigma_c = sigma`, equal weights. `C = 3, mu0 = 0.5, spacing = 0.1` gives means
    /// `(0.4, 0.5, 0.6)`. Defaults in the papers: `mu0 = 0.5, spacing = 0.1, sigma = 0.1`.
    pub fn centred(
        px: usize,
        c: usize,
        mu0: f64,
        spacing: f64,
        sigma: f64,
    ) -> Result<Self, DataError> {
        if c == 0 {
            return Err(DataError::invalid(
                "components",
                "a mixture needs at least one component",
            ));
        }
        let means = (0..c)
            .map(|k| mu0 + (k as f64 - (c as f64 - 1.0) / 2.0) * spacing)
            .collect::<Vec<_>>();
        Self::new(px, &means, &vec![sigma; c], &vec![1.0; c])
    }

    /// Explicit means, stds and weights (equal lengths), validated: see [`GmmSpec::validate`].
    pub fn new(px: usize, means: &[f64], stds: &[f64], weights: &[f64]) -> Result<Self, DataError> {
        if means.len() != stds.len() || means.len() != weights.len() {
            return Err(DataError::invalid(
                "components",
                format!(
                    "{} means, {} stds and {} weights; give one of each per component",
                    means.len(),
                    stds.len(),
                    weights.len()
                ),
            ));
        }
        let spec = GmmSpec {
            px,
            components: means
                .iter()
                .zip(stds)
                .zip(weights)
                .map(|((&mean, &std), &weight)| GmmComponent { mean, std, weight })
                .collect(),
            clip: false,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks: `px > 0`, at least one component, finite means, finite stds > 0, finite weights
    /// ≥ 0 with a positive sum. (The U-Net's multiple-of-8 rule is checked by the commands.)
    pub fn validate(&self) -> Result<(), DataError> {
        if self.px == 0 {
            return Err(DataError::invalid("px", "the image side must be positive"));
        }
        if self.components.is_empty() {
            return Err(DataError::invalid(
                "components",
                "a mixture needs at least one component",
            ));
        }
        for (k, c) in self.components.iter().enumerate() {
            if !c.mean.is_finite() {
                return Err(DataError::invalid(
                    format!("components[{k}].mean"),
                    format!("{} is not finite", c.mean),
                ));
            }
            if !(c.std.is_finite() && c.std > 0.0) {
                return Err(DataError::invalid(
                    format!("components[{k}].std"),
                    format!("{} must be finite and > 0", c.std),
                ));
            }
            if !(c.weight.is_finite() && c.weight >= 0.0) {
                return Err(DataError::invalid(
                    format!("components[{k}].weight"),
                    format!("{} must be finite and >= 0", c.weight),
                ));
            }
        }
        if self.total_weight() <= 0.0 {
            return Err(DataError::invalid(
                "components.weight",
                "the weights sum to 0; give at least one positive weight",
            ));
        }
        Ok(())
    }

    /// Pixels per image, `px * px`.
    pub fn dim(&self) -> usize {
        self.px * self.px
    }

    fn total_weight(&self) -> f64 {
        self.components.iter().map(|c| c.weight).sum()
    }

    /// Normalised weights `w_c / sum(w)`.
    pub fn probabilities(&self) -> Vec<f64> {
        let t = self.total_weight();
        self.components.iter().map(|c| c.weight / t).collect()
    }

    /// The density of one pixel (every pixel has the same marginal, unclipped):
    /// `p(x) = sum_c w_c N(x | mu_c, sigma_c^2)`.
    pub fn pixel_pdf(&self, x: f64) -> f64 {
        self.probabilities()
            .iter()
            .zip(&self.components)
            .map(|(w, c)| w * gauss(x - c.mean, c.std * c.std))
            .sum()
    }

    /// `∫ p(x)^2 dx` of one pixel's marginal (unclipped), in closed form:
    /// `sum_c sum_c' w_c w_c' N(mu_c - mu_c' | 0, sigma_c^2 + sigma_c'^2)`. This is the
    /// per-pixel offset of docs/METHOD.md §4b (`E[Δ] ≈ -(1/n - 1/N) ∫p^2`).
    pub fn pixel_sq_integral(&self) -> f64 {
        let p = self.probabilities();
        let mut s = 0.0;
        for (wa, a) in p.iter().zip(&self.components) {
            for (wb, b) in p.iter().zip(&self.components) {
                s += wa * wb * gauss(a.mean - b.mean, a.std * a.std + b.std * b.std);
            }
        }
        s
    }

    /// `n` samples and their component labels, seeded. Deterministic whatever the thread count
    /// (chunks of [`CHUNK`] samples, chunk `k` from `ChaCha8Rng::seed_from_u64(seed)` on stream
    /// `k`). Errors if the spec is invalid or `n = 0`.
    pub fn sample(&self, n: usize, seed: u64) -> Result<(ImageSet, Vec<usize>), DataError> {
        self.validate()?;
        if n == 0 {
            return Err(DataError::invalid("n", "asked for 0 samples (empty set)"));
        }
        let d = self.dim();
        let total = n.checked_mul(d).ok_or_else(|| {
            DataError::invalid(
                "n",
                format!("{n} samples of {d} pixels do not fit in memory"),
            )
        })?;
        let cum: Vec<f64> = self
            .probabilities()
            .iter()
            .scan(0.0, |acc, p| {
                *acc += p;
                Some(*acc)
            })
            .collect();
        let mut data = vec![0f32; total];
        let mut labels = vec![0usize; n];
        data.par_chunks_mut(CHUNK * d)
            .zip(labels.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(k, (xs, ls))| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(k as u64);
                for (x, l) in xs.chunks_mut(d).zip(ls.iter_mut()) {
                    let u: f64 = rng.random();
                    let c = cum.iter().position(|&q| u < q).unwrap_or(cum.len() - 1);
                    // Skip zero-weight components that float rounding might land on.
                    let c = if self.components[c].weight > 0.0 {
                        c
                    } else {
                        (0..=c)
                            .rev()
                            .find(|&j| self.components[j].weight > 0.0)
                            .unwrap_or(c)
                    };
                    *l = c;
                    let comp = self.components[c];
                    for v in x.iter_mut() {
                        let z: f64 = rng.sample(StandardNormal);
                        let mut y = comp.mean + comp.std * z;
                        if self.clip {
                            y = y.clamp(0.0, 1.0);
                        }
                        *v = y as f32;
                    }
                }
            });
        Ok((ImageSet::new(n, 1, self.px, self.px, data), labels))
    }
}

/// `N(u | 0, v)`, the Gaussian density of variance `v`.
fn gauss(u: f64, v: f64) -> f64 {
    (-u * u / (2.0 * v)).exp() / (2.0 * std::f64::consts::PI * v).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centred_layout_matches_spec() {
        let s = GmmSpec::centred(8, 3, 0.5, 0.1, 0.1).unwrap();
        let m: Vec<f64> = s.components.iter().map(|c| c.mean).collect();
        for (a, b) in m.iter().zip([0.4, 0.5, 0.6]) {
            assert!((a - b).abs() < 1e-12, "{m:?}");
        }
        let s = GmmSpec::centred(8, 2, 0.5, 0.1, 0.1).unwrap();
        assert!((s.components[0].mean - 0.45).abs() < 1e-12);
        assert!((s.components[1].mean - 0.55).abs() < 1e-12);
    }

    #[test]
    fn validation_rejects_bad_parameters() {
        assert!(GmmSpec::new(8, &[0.5], &[0.0], &[1.0]).is_err());
        assert!(GmmSpec::new(8, &[f64::NAN], &[0.1], &[1.0]).is_err());
        assert!(GmmSpec::new(8, &[0.5], &[0.1], &[-1.0]).is_err());
        assert!(GmmSpec::new(8, &[0.5, 0.6], &[0.1, 0.1], &[0.0, 0.0]).is_err());
        assert!(GmmSpec::new(8, &[0.5, 0.6], &[0.1], &[1.0, 1.0]).is_err());
        assert!(GmmSpec::new(0, &[0.5], &[0.1], &[1.0]).is_err());
        assert!(GmmSpec::centred(8, 0, 0.5, 0.1, 0.1).is_err());
        let e = GmmSpec::new(8, &[0.5], &[-0.1], &[1.0]).unwrap_err();
        assert!(e.to_string().contains("components[0].std"), "{e}");
    }

    /// n = 10^5 samples: per component, the fraction of samples, the pixel mean and the pixel
    /// std are within 3 standard errors of the spec.
    #[test]
    fn moments_within_three_standard_errors() {
        let spec = GmmSpec::new(4, &[0.2, 0.5, 0.9], &[0.05, 0.1, 0.2], &[1.0, 2.0, 1.0]).unwrap();
        let n = 100_000;
        let (set, labels) = spec.sample(n, 42).unwrap();
        let d = spec.dim();
        let probs = spec.probabilities();
        for (c, comp) in spec.components.iter().enumerate() {
            let rows: Vec<usize> = (0..n).filter(|&i| labels[i] == c).collect();
            let nc = rows.len() as f64;
            let p = probs[c];
            let se_frac = (p * (1.0 - p) / n as f64).sqrt();
            assert!(
                (nc / n as f64 - p).abs() < 3.0 * se_frac,
                "component {c} fraction"
            );
            // All pixels of a component's samples are iid N(mu, sigma^2).
            let m = nc * d as f64;
            let vals = rows
                .iter()
                .flat_map(|&i| set.row(i).iter().map(|&v| v as f64));
            let (s1, s2) = vals.fold((0.0, 0.0), |(a, b), v| (a + v, b + v * v));
            let mean = s1 / m;
            let var = s2 / m - mean * mean;
            let sd = var.sqrt();
            let se_mean = comp.std / m.sqrt();
            // sd of the sample std of a Gaussian: sigma / sqrt(2 (m - 1)).
            let se_sd = comp.std / (2.0 * (m - 1.0)).sqrt();
            assert!((mean - comp.mean).abs() < 3.0 * se_mean, "c{c} mean {mean}");
            assert!((sd - comp.std).abs() < 3.0 * se_sd, "c{c} sd {sd}");
        }
    }

    #[test]
    fn same_seed_same_bytes_any_thread_count() {
        let spec = GmmSpec::centred(8, 3, 0.5, 0.1, 0.1).unwrap();
        let run = |threads: usize, seed: u64| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| spec.sample(1000, seed).unwrap())
        };
        let a = run(1, 5);
        let b = run(4, 5);
        assert_eq!(a, b);
        assert_ne!(a.0.data, run(1, 6).0.data);
        // The first chunk does not depend on n.
        let short = spec.sample(10, 5).unwrap();
        assert_eq!(short.0.data[..], a.0.data[..10 * 64]);
    }

    #[test]
    fn clip_keeps_values_in_unit_interval() {
        let mut spec = GmmSpec::centred(4, 1, 0.5, 0.0, 0.5).unwrap();
        let (raw, _) = spec.sample(500, 1).unwrap();
        assert!(raw.data.iter().any(|&v| !(0.0..=1.0).contains(&v)));
        spec.clip = true;
        let (c, _) = spec.sample(500, 1).unwrap();
        assert!(c.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }

    #[test]
    fn sq_integral_matches_numerical_integral() {
        let spec = GmmSpec::new(1, &[0.3, 0.7], &[0.05, 0.1], &[1.0, 3.0]).unwrap();
        let h = 1e-4;
        let num: f64 = (0..20_000)
            .map(|k| {
                let x = -0.5 + k as f64 * h;
                spec.pixel_pdf(x).powi(2) * h
            })
            .sum();
        assert!((num - spec.pixel_sq_integral()).abs() < 1e-6 * num, "{num}");
    }

    #[test]
    fn toml_round_trip_and_unknown_key() {
        let spec = GmmSpec::centred(8, 2, 0.5, 0.1, 0.1).unwrap();
        let text = toml::to_string(&spec).unwrap();
        let back: GmmSpec = toml::from_str(&text).unwrap();
        assert_eq!(back, spec);
        let e = toml::from_str::<GmmSpec>("px = 8\ncomponents = []\nclipp = true\n").unwrap_err();
        assert!(e.to_string().contains("clipp"), "{e}");
    }
}
