//! The settings of `memdiff dae run` (`configs/dae-*.toml`), strict: an unknown key is an error
//! naming it and its line; a missing key takes the default below.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::Activation;
use crate::sample::Method;
use crate::DaeError;

/// Covariance of every cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Covariance {
    /// `std² I`.
    Isotropic,
    /// `λ_i = power_scale · i^(−power_exponent)`.
    Power,
    /// The spectrum of the empirical covariance of one MNIST digit (`d = 784`).
    MnistDigit,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaeConfig {
    /// Seed of every random stream.
    pub seed: u64,
    /// Dimension `d` (ignored by `covariance = "mnist-digit"`, which has `d = 784`).
    pub d: usize,
    /// Generations: generation `g ≥ 1` trains on samples of generation `g − 1`.
    pub generations: usize,
    pub target: TargetConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub sampling: SamplingConfig,
    pub analysis: AnalysisConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetConfig {
    /// Clusters on a regular polygon in the plane of axes 1–2 (first at 90°); 1 = a Gaussian
    /// centred at the origin.
    pub clusters: usize,
    /// Polygon radius.
    pub radius: f64,
    /// Explicit centroids (latent coordinates on the first axes); overrides clusters/radius.
    pub centroids: Option<Vec<Vec<f64>>>,
    pub covariance: Covariance,
    /// Cluster standard deviation for `isotropic`.
    pub std: f64,
    pub power_scale: f64,
    pub power_exponent: f64,
    /// MNIST IDX images and labels for `mnist-digit` (relative to the working directory).
    pub mnist_images: PathBuf,
    pub mnist_labels: PathBuf,
    pub digit: u8,
    /// The MNIST spectrum is multiplied by this (pixels are in [0, 1]).
    pub mnist_scale: f64,
    /// Rescale the spectrum (power or mnist-digit) to average eigenvalue 1 (`tr Σ/d = 1`).
    pub normalize: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Hidden units `k` (0 = skip only).
    pub k: usize,
    pub activation: Activation,
    /// Standard deviation of the i.i.d. entries of `W` at start.
    pub init_std: f64,
    /// Warm start: overlap of each row of `W` with a random direction of the projection plane.
    pub warm: f64,
    /// Skip connection at start.
    pub c0: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Learning rate `η` (eq. (M4)).
    pub lr: f64,
    /// Weight decay `λ` on `W`.
    pub weight_decay: f64,
    /// Training times `τ = steps/d` at which the model is sampled and measured (increasing).
    pub times: Vec<f64>,
    /// 0 = online SGD (a fresh sample each step); n > 0 = n fixed training samples, reused.
    pub samples: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Interpolation steps `N` (one network per time `t_n = n/N`).
    pub steps: usize,
    pub method: Method,
    /// `ε0` of the SDE's diffusion `ε(t) = ε0 (1 − t)²`.
    pub eps0: f64,
    /// Generated samples per measurement (and the reference sample of the target).
    pub samples: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// Projection dimensions: the first `dims` axes (centroid plane / top principal components).
    pub dims: usize,
    /// KDE bandwidth as a fraction of Scott's rule, for the modes.
    pub kde_bandwidth: f64,
    /// Modes lower than this fraction of the highest are dropped.
    pub mode_threshold: f64,
    /// Projected points kept per measurement in projections.csv.
    pub plot_points: usize,
}

impl Default for DaeConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            d: 1000,
            generations: 1,
            target: TargetConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            sampling: SamplingConfig::default(),
            analysis: AnalysisConfig::default(),
        }
    }
}

impl Default for TargetConfig {
    fn default() -> Self {
        Self {
            clusters: 3,
            radius: 3.0,
            centroids: None,
            covariance: Covariance::Isotropic,
            std: 1.0,
            power_scale: 1.0,
            power_exponent: 1.0,
            mnist_images: PathBuf::from(memdiff_data::mnist::SHIPPED_IMAGES),
            mnist_labels: PathBuf::from(memdiff_data::mnist::SHIPPED_LABELS),
            digit: 7,
            mnist_scale: 1.0,
            normalize: false,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            k: 4,
            activation: Activation::Relu,
            init_std: 1.0,
            warm: 0.0,
            c0: 0.0,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            lr: 0.3,
            weight_decay: 0.0,
            times: vec![1.0, 2.0, 4.0, 8.0, 16.0],
            samples: 0,
        }
    }
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            steps: 20,
            method: Method::Sde,
            eps0: 1.0,
            samples: 2000,
        }
    }
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            dims: 2,
            kde_bandwidth: 1.0,
            mode_threshold: 0.15,
            plot_points: 1500,
        }
    }
}

fn positive(field: &str, v: f64) -> Result<(), DaeError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(DaeError::invalid(
            field,
            format!("must be a finite number > 0, got {v}"),
        ))
    }
}

fn non_negative(field: &str, v: f64) -> Result<(), DaeError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(DaeError::invalid(
            field,
            format!("must be a finite number ≥ 0, got {v}"),
        ))
    }
}

impl DaeConfig {
    /// Checks every setting; the error names the field.
    pub fn validate(&self) -> Result<(), DaeError> {
        if self.d < 2 {
            return Err(DaeError::invalid("d", "must be at least 2"));
        }
        if self.generations == 0 {
            return Err(DaeError::invalid("generations", "must be at least 1"));
        }
        let t = &self.target;
        if t.centroids.is_none() && t.clusters == 0 {
            return Err(DaeError::invalid("target.clusters", "must be at least 1"));
        }
        non_negative("target.radius", t.radius)?;
        positive("target.std", t.std)?;
        positive("target.power_scale", t.power_scale)?;
        non_negative("target.power_exponent", t.power_exponent)?;
        positive("target.mnist_scale", t.mnist_scale)?;
        if t.digit > 9 {
            return Err(DaeError::invalid("target.digit", "must be 0 to 9"));
        }
        let m = &self.model;
        if m.k > crate::model::MAX_K {
            return Err(DaeError::invalid(
                "model.k",
                format!("at most {} hidden units", crate::model::MAX_K),
            ));
        }
        non_negative("model.init_std", m.init_std)?;
        if !m.warm.is_finite() || !m.c0.is_finite() {
            return Err(DaeError::invalid("model", "warm and c0 must be finite"));
        }
        let tr = &self.train;
        positive("train.lr", tr.lr)?;
        non_negative("train.weight_decay", tr.weight_decay)?;
        if tr.times.is_empty() {
            return Err(DaeError::invalid(
                "train.times",
                "give at least one training time",
            ));
        }
        for (i, &x) in tr.times.iter().enumerate() {
            positive("train.times", x)?;
            if i > 0 && x <= tr.times[i - 1] {
                return Err(DaeError::invalid("train.times", "must be increasing"));
            }
        }
        let s = &self.sampling;
        if s.steps < 2 {
            return Err(DaeError::invalid("sampling.steps", "must be at least 2"));
        }
        non_negative("sampling.eps0", s.eps0)?;
        if s.samples < 10 {
            return Err(DaeError::invalid("sampling.samples", "must be at least 10"));
        }
        let a = &self.analysis;
        if a.dims < 2 {
            return Err(DaeError::invalid("analysis.dims", "must be at least 2"));
        }
        positive("analysis.kde_bandwidth", a.kde_bandwidth)?;
        non_negative("analysis.mode_threshold", a.mode_threshold)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memdiff_data::config::parse_toml;

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let e = parse_toml::<DaeConfig>("[model]\nk = 2\nactivaton = \"tanh\"\n").unwrap_err();
        assert!(e.contains("activaton") && e.starts_with("line 3"), "{e}");
        let c: DaeConfig = parse_toml("d = 50\n[model]\nactivation = \"tanh\"\n").unwrap();
        assert_eq!(
            (c.d, c.model.activation, c.model.k),
            (50, Activation::Tanh, 4)
        );
        c.validate().unwrap();
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = DaeConfig::default();
        c.train.times = vec![2.0, 1.0];
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("train.times"));
        let mut c = DaeConfig::default();
        c.train.lr = f64::NAN;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("train.lr"));
    }
}
