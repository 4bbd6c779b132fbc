//! memdiff-dae: the generative model of seed 002 — a tied two-layer denoising autoencoder
//! `f(x) = c x + Wᵀ σ(W x/√d)/√d` per time of the linear stochastic interpolant
//! `x_t = t x0 + (1 − t) z`, trained by online SGD on a Gaussian mixture (or a Gaussian with a
//! given covariance spectrum) in dimension `d`, and sampled by the generative SDE or ODE.
//!
//! The equations, and why these ones, are in docs/METHOD.md §8 (eqs. (M1)–(M8)).
//!
//! - [`model`]: the denoiser and its SGD step;
//! - [`target`]: target mixtures, MNIST spectra, pools of generated samples;
//! - [`train`]: one network per interpolation time, trained in parallel;
//! - [`sample`]: Euler–Maruyama sampling of the SDE / Euler of the ODE;
//! - [`closed`]: closed forms of the skip-only (`k = 0`) model;
//! - [`stats`]: projections, variances, odd moments, modes, energy distance;
//! - [`config`] / [`run`]: the `memdiff dae run` experiment (training times × generations),
//!   its CSVs, plots and summary; [`plots`]: its figures.
//!
//! Same seed ⇒ same numbers, whatever the thread count: every network and every chunk of samples
//! draws from its own ChaCha8 stream ([`train::stream`]).

pub mod closed;
pub mod config;
pub mod model;
pub mod plots;
pub mod run;
pub mod sample;
pub mod stats;
pub mod target;
pub mod train;

pub use config::DaeConfig;
pub use model::{Activation, Dae, Sgd};
pub use sample::{Method, SampleOpts};
pub use target::{Mixture, Source};

/// Errors of this crate; every message names the setting or file.
#[derive(Debug, thiserror::Error)]
pub enum DaeError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Data(String),
    #[error("{0}")]
    Io(String),
}

impl DaeError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DaeError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
