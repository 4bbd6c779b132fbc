//! Settings of the linear model and the two data models (docs/METHOD.md §6).

use crate::{invalid, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which joint law of the training pairs `(X_k, Y_k)` is simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DataModel {
    /// The seeds' simulation: `Y ~ N(mu 1, sigma^2 I)`, `X = e^{-T} Y + sqrt(Delta_T) Z`; the
    /// generator uses the sample mean and the sample variance estimate of eq. 3.2.
    #[default]
    Forward,
    /// App. B.1 / C.1 (what Theorem 3.1 is derived for): `X ~ N(mu_X 1, sigma_X^2 I)`,
    /// `Y = e^T X + Z`, `Z ~ N(0, Delta_T I)`; the generator uses the population `mu_X`,
    /// `sigma_X^2 = e^{-2T} sigma^2 + Delta_T` (eq. C.7).
    Reverse,
}

impl DataModel {
    pub fn as_str(&self) -> &'static str {
        match self {
            DataModel::Forward => "forward",
            DataModel::Reverse => "reverse",
        }
    }
}

impl fmt::Display for DataModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DataModel {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "forward" => Ok(DataModel::Forward),
            "reverse" => Ok(DataModel::Reverse),
            _ => Err(format!(
                "unknown data model `{s}` (expected `forward` or `reverse`)"
            )),
        }
    }
}

/// KDE width of the full-dimensional `E_TG`, `E_OG` (docs/METHOD.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EpsRule {
    /// `eps = sigma m^(-1/d)` for a set of m points (seed 001 Fig. 4; the large-d form of 2.9/2.11).
    #[default]
    Mixing,
    /// The L2-optimal width of eq. 2.11, `(4/(d+2))^(1/(d+4)) sigma m^(-1/(d+4))`.
    L2Opt,
}

impl EpsRule {
    /// The width for a set of `m` points in dimension `d` of a law with scale `sigma`.
    pub fn eps(&self, sigma: f64, m: usize, d: usize) -> f64 {
        match self {
            EpsRule::Mixing => sigma * (m as f64).powf(-1.0 / d as f64),
            EpsRule::L2Opt => crate::theory::eps_opt(sigma, m, d),
        }
    }
}

impl FromStr for EpsRule {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "mixing" => Ok(EpsRule::Mixing),
            "l2-opt" => Ok(EpsRule::L2Opt),
            _ => Err(format!(
                "unknown eps rule `{s}` (expected `mixing` or `l2-opt`)"
            )),
        }
    }
}

/// The linear model's settings. Papers: `mu = 10`, `sigma = 1`, `t = 2`, `lambda_hat = 1`
/// (`lambda = e^-4`), `d = 16` or `100`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub d: usize,
    pub n: usize,
    pub mu: f64,
    pub sigma: f64,
    /// Diffusion time cut-off `T`.
    pub t: f64,
    /// `lambda_hat`, with `lambda = lambda_hat sigma^2 e^{-2T}`.
    pub lambda_hat: f64,
    /// Ridge `R`: `theta_1^T = (x^T x + n R I)^-1 x^T y` (seed 000 eq. C.2). 0 = ridgeless.
    pub ridge: f64,
    pub data_model: DataModel,
}

impl Params {
    /// Papers' defaults at a given `d`, `n`, `lambda_hat`.
    pub fn new(d: usize, n: usize, lambda_hat: f64) -> Self {
        Self {
            d,
            n,
            mu: 10.0,
            sigma: 1.0,
            t: 2.0,
            lambda_hat,
            ridge: 0.0,
            data_model: DataModel::Forward,
        }
    }

    pub fn with_model(mut self, m: DataModel) -> Self {
        self.data_model = m;
        self
    }

    /// Checks every field; the error names the field and the fix.
    pub fn validate(&self) -> Result<()> {
        if self.d == 0 || self.d > 4096 {
            return Err(invalid("d", self.d, "use a dimension between 1 and 4096"));
        }
        if self.n < 2 {
            return Err(invalid(
                "n",
                self.n,
                "the centred least squares needs at least 2 training pairs",
            ));
        }
        if !self.mu.is_finite() {
            return Err(invalid("mu", self.mu, "use a finite mean"));
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return Err(invalid("sigma", self.sigma, "use a finite sigma > 0"));
        }
        if !(self.t.is_finite() && self.t > 0.0 && self.t < 50.0) {
            return Err(invalid("t", self.t, "use a diffusion time 0 < T < 50"));
        }
        if !(self.lambda_hat.is_finite() && self.lambda_hat >= 0.0) {
            return Err(invalid(
                "lambda_hat",
                self.lambda_hat,
                "use a finite lambda_hat >= 0",
            ));
        }
        if !(self.ridge.is_finite() && self.ridge >= 0.0) {
            return Err(invalid("ridge", self.ridge, "use a finite ridge >= 0"));
        }
        Ok(())
    }

    /// `lambda = lambda_hat sigma^2 e^{-2T}`.
    pub fn lambda(&self) -> f64 {
        self.lambda_hat * self.sigma * self.sigma * (-2.0 * self.t).exp()
    }

    /// `Delta_T = lambda (1 - e^{-2T})`.
    pub fn delta_t(&self) -> f64 {
        self.lambda() * (-(-2.0 * self.t).exp_m1())
    }

    /// `alpha = d / n`.
    pub fn alpha(&self) -> f64 {
        self.d as f64 / self.n as f64
    }

    /// The population `sigma_X^2 = e^{-2T} sigma^2 + Delta_T` (eq. B.1 / C.1 / C.7).
    pub fn sigma_x2_population(&self) -> f64 {
        (-2.0 * self.t).exp() * self.sigma * self.sigma + self.delta_t()
    }

    /// Per-coordinate variance of the training `Y` under the data model: `sigma^2` (forward),
    /// `sigma^2 + (e^{2T} + 1) Delta_T` (reverse).
    pub fn y_variance(&self) -> f64 {
        let s2 = self.sigma * self.sigma;
        match self.data_model {
            DataModel::Forward => s2,
            DataModel::Reverse => s2 + ((2.0 * self.t).exp() + 1.0) * self.delta_t(),
        }
    }

    /// `X | Y = a + b Y + c Z` per coordinate, the same joint law as the data model's definition.
    /// Forward: `a = 0, b = e^{-T}, c^2 = Delta_T`. Reverse: regression of `X` on `Y` when
    /// `X ~ N(mu_X, sigma_X^2)`, `Y = e^T X + Z`.
    pub fn x_given_y(&self) -> (f64, f64, f64) {
        let et = self.t.exp();
        match self.data_model {
            DataModel::Forward => (0.0, 1.0 / et, self.delta_t().sqrt()),
            DataModel::Reverse => {
                let sx2 = self.sigma_x2_population();
                let vy = self.y_variance();
                let b = et * sx2 / vy;
                let mu_x = self.mu / et;
                let a = mu_x - b * self.mu;
                let c2 = sx2 * self.delta_t() / vy;
                (a, b, c2.max(0.0).sqrt())
            }
        }
    }
}
