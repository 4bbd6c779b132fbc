//! DDPM noise schedules as plain values (SPEC §2). No deep-learning dependency: the schedule is
//! data, the network is a function, the sampler is a loop over both.
//!
//! Steps are numbered `t = 1..=s` (standard indexing, Ho et al. 2020):
//! `alpha_t = 1 - beta_t`, `alpha_bar_t = prod_{j=1..t} alpha_j`.

use serde::{Deserialize, Serialize};

/// How `beta_t` is laid out over `t = 1..=s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BetaSchedule {
    /// `beta_t = beta_1 + (t-1)/(s-1) (beta_s - beta_1)`, `beta_1 = 1e-4`, `beta_s = 0.02`
    /// whatever `s` is (the papers' code).
    #[default]
    Linear,
    /// The linear range multiplied by `1000 / s` (capped at 0.999), so every `s` discretises
    /// about the same total noise.
    ScaledLinear,
    /// Nichol & Dhariwal (2021): `alpha_bar(t) = f(t)/f(0)`, `f(t) = cos^2((t/s + 0.008)/1.008 · π/2)`,
    /// `beta_t = min(1 - alpha_bar_t / alpha_bar_{t-1}, 0.999)`.
    Cosine,
}

impl std::str::FromStr for BetaSchedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "linear" => Ok(Self::Linear),
            "scaled-linear" => Ok(Self::ScaledLinear),
            "cosine" => Ok(Self::Cosine),
            _ => Err(format!(
                "unknown schedule `{s}`: use linear, scaled-linear or cosine"
            )),
        }
    }
}

impl std::fmt::Display for BetaSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Linear => "linear",
            Self::ScaledLinear => "scaled-linear",
            Self::Cosine => "cosine",
        })
    }
}

/// How the papers' code numbers steps. `Standard` is the default everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Indexing {
    /// `alpha_bar_t = prod_{j<=t}`, trained on `t in 1..=s`, network sees `t`.
    #[default]
    Standard,
    /// The seeds' code (SPEC §2): `alpha_bar` is the product over `j < t`, training draws
    /// `t in 0..s-1`, sampling runs `t = s-1..0`, the network sees that shifted `t`.
    PapersShifted,
}

/// Error for an impossible schedule.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    #[error("diffusion steps s = {0}: need s >= 2 (use --steps 2 or more)")]
    TooFewSteps(usize),
}

/// A schedule with `s` steps; vectors are indexed by `t - 1`.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub kind: BetaSchedule,
    pub steps: usize,
    pub betas: Vec<f64>,
    pub alphas: Vec<f64>,
    pub alpha_bars: Vec<f64>,
}

pub const BETA_1: f64 = 1e-4;
pub const BETA_S: f64 = 0.02;
const MAX_BETA: f64 = 0.999;

impl Schedule {
    pub fn new(kind: BetaSchedule, steps: usize) -> Result<Self, ScheduleError> {
        if steps < 2 {
            return Err(ScheduleError::TooFewSteps(steps));
        }
        let s = steps as f64;
        let linear = |t: usize| BETA_1 + (t as f64 - 1.0) / (s - 1.0) * (BETA_S - BETA_1);
        let betas: Vec<f64> = match kind {
            BetaSchedule::Linear => (1..=steps).map(linear).collect(),
            BetaSchedule::ScaledLinear => (1..=steps)
                .map(|t| (linear(t) * 1000.0 / s).min(MAX_BETA))
                .collect(),
            BetaSchedule::Cosine => {
                let f = |t: f64| {
                    let x = (t / s + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2;
                    x.cos().powi(2)
                };
                (1..=steps)
                    .map(|t| (1.0 - f(t as f64) / f(t as f64 - 1.0)).min(MAX_BETA))
                    .collect()
            }
        };
        let alphas: Vec<f64> = betas.iter().map(|b| 1.0 - b).collect();
        let mut alpha_bars = Vec::with_capacity(steps);
        let mut acc = 1.0;
        for a in &alphas {
            acc *= a;
            alpha_bars.push(acc);
        }
        Ok(Self {
            kind,
            steps,
            betas,
            alphas,
            alpha_bars,
        })
    }

    /// `beta_t`, `t` in `1..=s`.
    pub fn beta(&self, t: usize) -> f64 {
        self.betas[t - 1]
    }
    /// `alpha_t = 1 - beta_t`, `t` in `1..=s`.
    pub fn alpha(&self, t: usize) -> f64 {
        self.alphas[t - 1]
    }
    /// `alpha_bar_t`, `t` in `0..=s` (`alpha_bar_0 = 1`).
    pub fn alpha_bar(&self, t: usize) -> f64 {
        if t == 0 {
            1.0
        } else {
            self.alpha_bars[t - 1]
        }
    }
}
