//! memdiff-linear: the linear one-step diffusion model of docs/METHOD.md §6 (seed 001 §3 + App. B, seed 000
//! §3 + App. C).
//!
//! * [`Params`] and the two named data models ([`DataModel::Forward`], the seeds' simulation, and
//!   [`DataModel::Reverse`], the regression Theorem 3.1 is derived for);
//! * [`fit::fit`]: centred least squares with the minimum-norm (pseudo-inverse) solution for
//!   `n <= d` and an optional ridge, and the Gaussian generator `N(mu_G, Sigma_G)`,
//!   `Sigma_G = sigma_X^2 theta_1 theta_1^T`, as an eigen-decomposition ([`fit::Generator`]);
//! * [`closed`]: Hellinger `H^2`, `KL_mean`, `KL_var` (exact and quadratic), and the
//!   full-dimensional `E_TG`, `E_OG`, `Δ` (log-space, `∫rho_G^2` cancelled in `Δ`);
//! * [`theory`]: Theorem 3.1's `<KL_var>`, the mixing time `t_M` (eq. 2.9) and the L2-optimal
//!   KDE width (eq. 2.11);
//! * [`sim`]: Monte Carlo over simulations (rayon; one ChaCha8 stream per simulation, so results
//!   do not depend on the thread count) with P(Δ>0) and its Wilson interval;
//! * [`sweep`]: the sweep behind the seeds' linear-model figures (`configs/linear.toml`): its
//!   settings, validation and sections, written as CSV tables, and [`plots`], its figures.

pub mod closed;
pub mod fit;
pub mod params;
pub mod plots;
pub mod sim;
pub mod sweep;
pub mod theory;

pub use closed::{DeltaTerms, Kl};
pub use fit::{Fit, Generator};
pub use params::{DataModel, EpsRule, Params};
pub use sim::{simulate, OriginalSet, Sampler, SimOptions, SimRecord, Stat, Summary};

/// Errors of the linear model: invalid settings, named with the field and the fix.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum LinearError {
    #[error("invalid {field} = {value}: {fix}")]
    Invalid {
        field: &'static str,
        value: String,
        fix: &'static str,
    },
    #[error("numerical failure: {0}")]
    Numerical(String),
}

pub type Result<T> = std::result::Result<T, LinearError>;

pub(crate) fn invalid<T: std::fmt::Display>(
    field: &'static str,
    value: T,
    fix: &'static str,
) -> LinearError {
    LinearError::Invalid {
        field,
        value: value.to_string(),
        fix,
    }
}

/// `log(sum(exp(v)))`, `-inf` for an empty slice or all `-inf`.
pub(crate) fn log_sum_exp(v: impl IntoIterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.into_iter().collect();
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    if m == f64::INFINITY {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}
