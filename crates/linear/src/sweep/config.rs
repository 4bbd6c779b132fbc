//! The sweep's settings (`configs/linear.toml`, strict keys) and their validation.

use serde::{Deserialize, Serialize};

use super::SweepError;
use crate::{DataModel, EpsRule, Params};

/// `configs/linear.toml`. Every section can be switched off with `enabled = false`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweepConfig {
    pub seed: u64,
    pub mu: f64,
    pub sigma: f64,
    pub t: f64,
    /// Dimensions of the H², P(Δ>0) and KL plots.
    pub dims: Vec<usize>,
    pub h2: H2Section,
    pub p_delta: PDeltaSection,
    pub p_delta_large: PDeltaLargeSection,
    pub kl_alpha: KlAlphaSection,
    pub kl_lambda: KlLambdaSection,
}

/// H² (and KL) vs n, seed 001 Fig. 3.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct H2Section {
    pub enabled: bool,
    pub data_model: DataModel,
    pub lambda_hat: f64,
    pub n: Vec<usize>,
    pub sims: usize,
}

/// P(Δ>0) vs n/d, seed 001 Fig. 4 left.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PDeltaSection {
    pub enabled: bool,
    pub data_model: DataModel,
    pub lambda_hat: f64,
    pub n_original: usize,
    pub eps_rule: EpsRule,
    pub n_over_d: Vec<f64>,
    pub sims: usize,
}

/// P(Δ>0) as n approaches N, seed 001 Fig. 4 right (one dimension; same O as `p_delta`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PDeltaLargeSection {
    pub enabled: bool,
    pub d: usize,
    pub n: Vec<usize>,
    pub sims: usize,
}

/// KL_var/d vs alpha = d/n, seed 000 Fig. 2 (theory curve + Monte Carlo).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KlAlphaSection {
    pub enabled: bool,
    pub data_model: DataModel,
    pub lambda_hat: f64,
    pub alpha: Vec<f64>,
    pub sims: usize,
}

/// KL_var/d vs lambda_hat at fixed n (seed 000 Fig. 1 right / seed 001 Fig. 2 right).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KlLambdaSection {
    pub enabled: bool,
    pub data_model: DataModel,
    pub n: usize,
    pub lambda_hat: Vec<f64>,
    pub sims: usize,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            mu: 10.0,
            sigma: 1.0,
            t: 2.0,
            dims: vec![16, 100],
            h2: H2Section::default(),
            p_delta: PDeltaSection::default(),
            p_delta_large: PDeltaLargeSection::default(),
            kl_alpha: KlAlphaSection::default(),
            kl_lambda: KlLambdaSection::default(),
        }
    }
}

impl Default for H2Section {
    fn default() -> Self {
        Self {
            enabled: true,
            data_model: DataModel::Forward,
            lambda_hat: 1.0,
            n: vec![
                4, 8, 12, 16, 24, 32, 50, 75, 100, 150, 200, 300, 500, 1000, 2000, 5000, 10000,
            ],
            sims: 100,
        }
    }
}

impl Default for PDeltaSection {
    fn default() -> Self {
        Self {
            enabled: true,
            data_model: DataModel::Forward,
            lambda_hat: 1.0,
            n_original: 10_000,
            eps_rule: EpsRule::Mixing,
            n_over_d: vec![0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 8.0],
            sims: 100,
        }
    }
}

impl Default for PDeltaLargeSection {
    fn default() -> Self {
        Self {
            enabled: true,
            d: 16,
            n: vec![1000, 3000, 5000, 7000, 9000, 9500, 9900],
            sims: 50,
        }
    }
}

impl Default for KlAlphaSection {
    fn default() -> Self {
        Self {
            enabled: true,
            data_model: DataModel::Reverse,
            lambda_hat: 0.1,
            alpha: vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9],
            sims: 200,
        }
    }
}

impl Default for KlLambdaSection {
    fn default() -> Self {
        Self {
            enabled: true,
            data_model: DataModel::Reverse,
            n: 10_000,
            lambda_hat: vec![0.01, 0.03, 0.1, 0.3, 1.0],
            sims: 100,
        }
    }
}

impl SweepConfig {
    /// Checks every setting; the error names the key (`h2.sims = 0: ...`).
    pub fn validate(&self) -> Result<(), SweepError> {
        let base = Params {
            mu: self.mu,
            sigma: self.sigma,
            t: self.t,
            ..Params::new(2, 2, 0.0)
        };
        base.validate()
            .map_err(|e| SweepError::Config(e.to_string()))?;
        if self.dims.is_empty() || self.dims.iter().any(|&d| d == 0 || d > 4096) {
            return Err(SweepError::Config(format!(
                "dims = {:?}: give one or more dimensions between 1 and 4096",
                self.dims
            )));
        }
        let sims = [
            ("h2.sims", self.h2.sims),
            ("p_delta.sims", self.p_delta.sims),
            ("p_delta_large.sims", self.p_delta_large.sims),
            ("kl_alpha.sims", self.kl_alpha.sims),
            ("kl_lambda.sims", self.kl_lambda.sims),
        ];
        for (k, v) in sims {
            if v == 0 {
                return Err(SweepError::Config(format!(
                    "{k} = 0: run at least one simulation"
                )));
            }
        }
        if self.h2.n.iter().any(|&n| n < 2) {
            return Err(SweepError::Config(format!(
                "h2.n = {:?}: every n must be >= 2",
                self.h2.n
            )));
        }
        if self
            .p_delta
            .n_over_d
            .iter()
            .any(|&r| !(r.is_finite() && r > 0.0))
        {
            return Err(SweepError::Config(format!(
                "p_delta.n_over_d = {:?}: use ratios > 0",
                self.p_delta.n_over_d
            )));
        }
        if self.p_delta.enabled || self.p_delta_large.enabled {
            if self.p_delta.n_original < 2 {
                return Err(SweepError::Config("p_delta.n_original must be >= 2".into()));
            }
            let too_big = self
                .p_delta_large
                .n
                .iter()
                .any(|&n| n < 2 || n > self.p_delta.n_original);
            if self.p_delta_large.enabled && too_big {
                return Err(SweepError::Config(format!(
                    "p_delta_large.n = {:?}: each n must be in 2..=p_delta.n_original ({})",
                    self.p_delta_large.n, self.p_delta.n_original
                )));
            }
        }
        if self
            .kl_alpha
            .alpha
            .iter()
            .any(|&a| !(a.is_finite() && a > 0.0))
        {
            return Err(SweepError::Config(format!(
                "kl_alpha.alpha = {:?}: use alpha > 0",
                self.kl_alpha.alpha
            )));
        }
        if self.kl_lambda.n < 2
            || self
                .kl_lambda
                .lambda_hat
                .iter()
                .any(|&l| !(l.is_finite() && l > 0.0))
        {
            return Err(SweepError::Config(
                "kl_lambda: n must be >= 2 and every lambda_hat > 0".into(),
            ));
        }
        Ok(())
    }

    /// The model at one point of the grid (ridgeless, as the seeds).
    pub fn params(&self, d: usize, n: usize, lambda_hat: f64, model: DataModel) -> Params {
        Params {
            d,
            n,
            mu: self.mu,
            sigma: self.sigma,
            t: self.t,
            lambda_hat,
            ridge: 0.0,
            data_model: model,
        }
    }

    /// Simulations of every enabled section (the progress bar's length).
    pub fn simulations(&self) -> u64 {
        let mut total = 0usize;
        let nd = self.dims.len();
        if self.h2.enabled {
            total += nd * self.h2.n.len() * self.h2.sims;
        }
        if self.p_delta.enabled {
            total += nd * self.p_delta.n_over_d.len() * self.p_delta.sims;
        }
        if self.p_delta_large.enabled {
            total += self.p_delta_large.n.len() * self.p_delta_large.sims;
        }
        if self.kl_alpha.enabled {
            total += nd * self.kl_alpha.alpha.len() * self.kl_alpha.sims;
        }
        if self.kl_lambda.enabled {
            total += nd * self.kl_lambda.lambda_hat.len() * self.kl_lambda.sims;
        }
        total as u64
    }
}
