//! What the metric is asked: the value types it reads, the bandwidth rule ([`Bandwidth`]), its
//! options ([`KdeOptions`]) and the automatic cut-off of the pair sums.

use std::fmt;
use std::str::FromStr;

use crate::error::{MetricsError, Result};

/// A value type the metric accepts (`f32`, `f64`, `u8`, ...).
pub trait Value: Copy + Into<f64> + Send + Sync {}
impl<T: Copy + Into<f64> + Send + Sync> Value for T {}

/// Bandwidth rule `eps_{A,i} = rule(sigma_i, n_A)` (docs/METHOD.md §4). Parses from / prints as
/// `std-over-n`, `std-n-pow-minus-1-over-d`, `silverman`, `fixed:VALUE`.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Bandwidth {
    /// `sigma_i / n_A`: the papers' rule for the neural model (default).
    #[default]
    StdOverN,
    /// `sigma_i * n_A^(-1/d)`, `d` the pixel count: the linear model's rule (docs/METHOD.md §6).
    StdNPowMinus1OverD,
    /// Silverman's `1.06 sigma_i n_A^(-1/5)`.
    Silverman,
    /// The same fixed `eps` for every set and pixel (constant pixels are then kept).
    Fixed(f64),
}

impl Bandwidth {
    /// `eps` for a pixel with standard deviation `sigma`, set size `n`, pixel count `d`.
    pub fn eps(&self, sigma: f64, n: usize, d: usize) -> f64 {
        let n = n as f64;
        match *self {
            Bandwidth::StdOverN => sigma / n,
            Bandwidth::StdNPowMinus1OverD => sigma * n.powf(-1.0 / d as f64),
            Bandwidth::Silverman => 1.06 * sigma * n.powf(-0.2),
            Bandwidth::Fixed(v) => v,
        }
    }

    /// Whether the rule uses `sigma_i` (all but `fixed`).
    pub fn uses_sigma(&self) -> bool {
        !matches!(self, Bandwidth::Fixed(_))
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bandwidth::StdOverN => f.write_str("std-over-n"),
            Bandwidth::StdNPowMinus1OverD => f.write_str("std-n-pow-minus-1-over-d"),
            Bandwidth::Silverman => f.write_str("silverman"),
            Bandwidth::Fixed(v) => write!(f, "fixed:{v}"),
        }
    }
}

impl FromStr for Bandwidth {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        match t {
            "std-over-n" => Ok(Bandwidth::StdOverN),
            "std-n-pow-minus-1-over-d" => Ok(Bandwidth::StdNPowMinus1OverD),
            "silverman" => Ok(Bandwidth::Silverman),
            _ => {
                let v = t
                    .strip_prefix("fixed:")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .ok_or_else(|| MetricsError::Bandwidth(s.to_string()))?;
                if v.is_finite() && v > 0.0 {
                    Ok(Bandwidth::Fixed(v))
                } else {
                    Err(MetricsError::Bandwidth(s.to_string()))
                }
            }
        }
    }
}

/// How the metric is evaluated. `Default` is the docs/METHOD.md §4 default (std-over-n, true L2).
#[derive(Clone, Debug, PartialEq)]
pub struct KdeOptions {
    /// Bandwidth rule.
    pub bandwidth: Bandwidth,
    /// Multiply every reported term by `sqrt(2 pi)` (the seeds' code convention).
    pub paper_scale: bool,
    /// Floor on `sigma_i` (after `sigma_scale`); with it constant pixels are kept.
    pub min_std: Option<f64>,
    /// Floor on every `eps` (e.g. the quantisation step 1/255, docs/METHOD.md §4b).
    pub min_bandwidth: Option<f64>,
    /// `sigma_i = std_i(O) * sigma_scale` (1; the papers' code: 1/255 with O ×255).
    pub sigma_scale: f64,
    /// Explicit `sigma_i` per pixel, instead of O's (pixels with `sigma_i <= 0` are skipped).
    pub sigma: Option<Vec<f64>>,
    /// Cut-off `R` in kernel widths; `None` chooses it from the error bound (module doc);
    /// `Some(f64::INFINITY)` visits every pair.
    pub cutoff: Option<f64>,
    /// Pixels to leave out (`true`), counted as skipped whatever the other options say; e.g.
    /// the pixels that were constant over O *before* dequantisation noise.
    pub exclude: Option<Vec<bool>>,
}

impl Default for KdeOptions {
    fn default() -> Self {
        Self {
            bandwidth: Bandwidth::StdOverN,
            paper_scale: false,
            min_std: None,
            min_bandwidth: None,
            sigma_scale: 1.0,
            sigma: None,
            cutoff: None,
            exclude: None,
        }
    }
}

impl KdeOptions {
    /// The factor applied to every reported term: `sqrt(2 pi)` with `paper_scale`, else 1.
    pub fn scale(&self) -> f64 {
        if self.paper_scale {
            (2.0 * std::f64::consts::PI).sqrt()
        } else {
            1.0
        }
    }

    /// Whether a pixel constant over O is used anyway: under a `min_std` floor, explicit
    /// `sigma`, or a bandwidth rule without `sigma` (`fixed:`). Otherwise it has no bandwidth and
    /// is skipped.
    pub fn keeps_constant_pixels(&self) -> bool {
        self.min_std.is_some() || self.sigma.is_some() || !self.bandwidth.uses_sigma()
    }

    pub(super) fn validate(&self, d: usize) -> Result<()> {
        if let Bandwidth::Fixed(v) = self.bandwidth {
            if !(v.is_finite() && v > 0.0) {
                return Err(MetricsError::Bandwidth(format!("fixed:{v}")));
            }
        }
        let pos = |name: &str, v: Option<f64>| match v {
            Some(x) if !(x.is_finite() && x > 0.0) => Err(MetricsError::Invalid(format!(
                "{name} must be a positive finite number, got {x}"
            ))),
            _ => Ok(()),
        };
        pos("min_std", self.min_std)?;
        pos("min_bandwidth", self.min_bandwidth)?;
        pos("sigma_scale", Some(self.sigma_scale))?;
        if let Some(c) = self.cutoff {
            if c.is_nan() || c <= 0.0 {
                return Err(MetricsError::Invalid(format!(
                    "cutoff must be > 0 kernel widths, got {c}"
                )));
            }
        }
        if let Some(x) = &self.exclude {
            if x.len() != d {
                return Err(MetricsError::Invalid(format!(
                    "exclude mask has {} values but the sets have {d} pixels",
                    x.len()
                )));
            }
        }
        if let Some(s) = &self.sigma {
            if s.len() != d {
                return Err(MetricsError::Invalid(format!(
                    "explicit sigma has {} values but the sets have {d} pixels",
                    s.len()
                )));
            }
        }
        Ok(())
    }

    pub(super) fn eps(&self, sigma: f64, n: usize, d: usize) -> f64 {
        let e = self.bandwidth.eps(sigma, n, d);
        match self.min_bandwidth {
            Some(f) => e.max(f),
            None => e,
        }
    }
}

/// The automatic cut-off in kernel widths for a pair sum of sets of sizes `na`, `nb`.
pub fn auto_cutoff(na: usize, nb: usize) -> f64 {
    let n = na.max(nb).max(1) as f64;
    (2.0 * (n.ln() + 36.0)).sqrt()
}
