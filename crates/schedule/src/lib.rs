//! DDPM noise schedules as plain values (docs/METHOD.md §2). No deep-learning dependency: the schedule is
//! data, the network is a function, the sampler is a loop over both.
//!
//! Steps are numbered `t = 1..=s` (standard indexing, Ho et al. 2020):
//! `alpha_t = 1 - beta_t`, `alpha_bar_t = prod_{j=1..t} alpha_j`.
//!
//! - [`Schedule`]: `beta_t`, `alpha_t`, `alpha_bar_t` for `linear`, `scaled-linear`, `cosine`.
//! - [`Indexing`]: which integer the network is told (standard `t`, or the papers' `t - 1`).
//! - [`spacing`]: the DDIM timestep subsets `trailing | leading | linspace` (as in diffusers).
//! - [`sampler`]: the reverse-chain step rules (ancestral DDPM, DDIM with eta) as coefficients,
//!   and a host-side driver over any ε-predictor ([`sampler::EpsModel`]), seeded per image.

use serde::{Deserialize, Serialize};

pub mod probe;
pub mod sampler;
pub mod spacing;

pub use sampler::{EpsModel, Form, SampleOptions, Sampler, SamplerError, Step};
pub use spacing::TimestepSpacing;

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

/// Which integer the network is told for chain step `t` (docs/METHOD.md §2, §3). `Standard` is the
/// default everywhere; the papers' shift is only ever used when named.
///
/// Both variants run the *same* chain (`beta_t`, `alpha_t`, `alpha_bar_t` of the standard
/// indexing for `t = s..1` when sampling, `t` uniform in `1..=s` when training); they differ
/// only in the step label fed to the network's time encoding:
/// - `Standard`: the network sees `t` (`1..=s`).
/// - `PapersShifted`: the network sees `t - 1` (`0..=s-1`). This is the seeds' code, which keeps
///   0-based arrays (`beta[i]`, `alpha_hat[i] = cumprod(alpha)[i]`, the product over the
///   0-based `j < i + 1`) and passes the array index `i = t - 1` to the network. Trainer and
///   sampler must use the same variant: always go through [`Indexing::net_t`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Indexing {
    /// The network sees `t` in `1..=s`.
    #[default]
    Standard,
    /// The network sees `t - 1` in `0..=s-1` (the seeds' code).
    PapersShifted,
}

impl Indexing {
    /// The integer given to the network for chain step `t` in `1..=s` (training and sampling).
    pub fn net_t(self, t: usize) -> usize {
        match self {
            Self::Standard => t,
            Self::PapersShifted => t - 1,
        }
    }
}

impl std::str::FromStr for Indexing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "standard" => Ok(Self::Standard),
            "papers-shifted" => Ok(Self::PapersShifted),
            _ => Err(format!(
                "unknown indexing `{s}`: use standard or papers-shifted"
            )),
        }
    }
}

impl std::fmt::Display for Indexing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Standard => "standard",
            Self::PapersShifted => "papers-shifted",
        })
    }
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

#[cfg(test)]
mod goldens;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn betas_and_alpha_bars_match_numpy_goldens() {
        let mut checked = 0;
        for &(name, s, t, beta, alpha_bar) in goldens::SCHEDULES {
            let sch = Schedule::new(name.parse().unwrap(), s).unwrap();
            let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
            assert!(
                rel(sch.beta(t), beta) < 1e-12,
                "{name} s={s} t={t}: beta {} vs {beta}",
                sch.beta(t)
            );
            assert!(
                rel(sch.alpha_bar(t), alpha_bar) < 1e-12,
                "{name} s={s} t={t}: alpha_bar {} vs {alpha_bar}",
                sch.alpha_bar(t)
            );
            assert_eq!(sch.alpha(t), 1.0 - sch.beta(t));
            checked += 1;
        }
        assert_eq!(checked, goldens::SCHEDULES.len());
        assert!(checked >= 3 * 3 * 7);
    }

    #[test]
    fn spec_facts() {
        // docs/METHOD.md §2: linear with s = 10 does not reach noise (alpha_bar_s ~ 0.90), s = 100 ~ 0.36.
        let s10 = Schedule::new(BetaSchedule::Linear, 10).unwrap();
        assert!((s10.alpha_bar(10) - 0.90).abs() < 0.005);
        let s100 = Schedule::new(BetaSchedule::Linear, 100).unwrap();
        assert!((s100.alpha_bar(100) - 0.36).abs() < 0.005);
        // Scaled-linear discretises about the same total noise for every s.
        let a = Schedule::new(BetaSchedule::ScaledLinear, 100).unwrap();
        let b = Schedule::new(BetaSchedule::ScaledLinear, 1000).unwrap();
        assert!(a.alpha_bar(100) < 1e-3 && b.alpha_bar(1000) < 1e-3);
        assert_eq!(s10.alpha_bar(0), 1.0);
        assert_eq!(s10.betas.len(), 10);
    }

    #[test]
    fn too_few_steps_is_an_error() {
        let e = Schedule::new(BetaSchedule::Cosine, 1).unwrap_err();
        assert_eq!(e, ScheduleError::TooFewSteps(1));
        assert!(e.to_string().contains("--steps 2 or more"));
        assert!("quadratic".parse::<BetaSchedule>().is_err());
        for name in ["linear", "scaled-linear", "cosine"] {
            assert_eq!(name.parse::<BetaSchedule>().unwrap().to_string(), name);
        }
    }
}
