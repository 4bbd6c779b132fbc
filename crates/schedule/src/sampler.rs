//! The reverse chain (docs/METHOD.md §2) as plain coefficients, and a host-side driver over any
//! ε-predictor.
//!
//! Every step, ancestral or DDIM, is the same affine rule
//! `x_prev = c_x · x_t + c_eps · eps_theta(x_t, t) + sigma · z`, `z ~ N(0, I)`:
//! - ancestral DDPM (Ho et al. 2020, docs/METHOD.md §2): `c_x = 1 / sqrt(alpha_t)`,
//!   `c_eps = -beta_t / (sqrt(alpha_t) sqrt(1 - alpha_bar_t))`, `sigma = sqrt(beta_t)` for `t > 1`,
//!   `0` at `t = 1`;
//! - DDIM (Song et al. 2021, eq. 12) from `t` to the previous kept step `p` (`alpha_bar_0 = 1`):
//!   `x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)`,
//!   `sigma = eta sqrt((1 - ab_p) / (1 - ab_t)) sqrt(1 - ab_t / ab_p)`,
//!   `x_p = sqrt(ab_p) x0 + sqrt(1 - ab_p - sigma^2) eps + sigma z`.
//!
//! The **clipped-x0 form** ([`Form::ClippedX0`], the default; Ho et al.'s released code,
//! diffusers' `clip_sample`, lucidrains) writes the same step as
//! `x_prev = c_x0 · clip(x0) + c_xt · x_t + sigma z` with the prediction
//! `x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)` clipped to `[-1, 1]`:
//! - ancestral: the posterior mean of `q(x_{t-1} | x_t, x0)`,
//!   `c_x0 = sqrt(ab_{t-1}) beta_t / (1 - ab_t)`, `c_xt = sqrt(alpha_t) (1 - ab_{t-1}) / (1 - ab_t)`;
//! - DDIM: `eps` re-derived from the clipped `x0` (`eps' = (x_t - sqrt(ab_t) clip(x0)) /
//!   sqrt(1 - ab_t)`), so `c_x0 = sqrt(ab_p) - dir sqrt(ab_t) / sqrt(1 - ab_t)`,
//!   `c_xt = dir / sqrt(1 - ab_t)`, `dir = sqrt(1 - ab_p - sigma^2)`.
//!
//! Where the clip does not bind, both forms are the same affine map of `(x_t, eps)` (tested to
//! 1e-12); where it binds, the ε-form multiplies the network's error by `1 / sqrt(ab_t)` (31 at a
//! cosine schedule's last step), which saturates samples. [`Form::Eps`] keeps the seeds' form.
//!
//! The driver keeps the images on the host as `f32` (network scale `[-1, 1]`) and draws all
//! noise there: image `i` of a call owns the ChaCha8 stream `(seed, stream = i)`; it draws `x_s`
//! first, then each step's `z` (only for steps with `sigma > 0`). An image's noise therefore does
//! not depend on the batch size, the order of batches, the thread count or any device RNG.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::spacing::{timesteps, SpacingError, TimestepSpacing};
use crate::{Indexing, Schedule};

/// Boxed error from an ε-predictor (a network forward pass can fail on a device).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which reverse chain to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Sampler {
    /// Ancestral sampling with every one of the `s` trained steps (docs/METHOD.md §2): "diffusion steps
    /// s" in the papers.
    #[default]
    Ddpm,
    /// DDIM with `K <= s` steps, a timestep spacing and `eta` (0: deterministic).
    Ddim,
}

impl std::str::FromStr for Sampler {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ddpm" => Ok(Self::Ddpm),
            "ddim" => Ok(Self::Ddim),
            _ => Err(format!("unknown sampler `{s}`: use ddpm or ddim")),
        }
    }
}

impl std::fmt::Display for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ddpm => "ddpm",
            Self::Ddim => "ddim",
        })
    }
}

/// How the reverse step uses the network's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// Predict `x0`, clip it to `[-1, 1]`, take the posterior mean from it (DDIM: re-derive `eps`
    /// from the clipped `x0`). Works with every schedule.
    #[default]
    ClippedX0,
    /// The seeds' ε-form `x_prev = c_x x_t + c_eps eps + sigma z`, no clipping inside the chain.
    Eps,
}

impl std::str::FromStr for Form {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "clipped-x0" => Ok(Self::ClippedX0),
            "eps" => Ok(Self::Eps),
            _ => Err(format!("unknown sampler form `{s}`: use clipped-x0 or eps")),
        }
    }
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ClippedX0 => "clipped-x0",
            Self::Eps => "eps",
        })
    }
}

/// How to sample. `Default`: ancestral DDPM over all `s` steps in the clipped-x0 form, standard
/// indexing, batch 64, output clamped to `[-1, 1]` before mapping to `[0, 1]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampleOptions {
    pub sampler: Sampler,
    /// DDIM only: `K` steps (default `s`). Must be `s` (or unset) for `ddpm`.
    pub sampling_steps: Option<usize>,
    /// DDIM only: which `K` of the `s` steps.
    pub spacing: TimestepSpacing,
    /// DDIM only: `0` deterministic, `1` the posterior variance (DDPM-like); in `[0, 1]`.
    pub eta: f64,
    /// Images per network call.
    pub batch: usize,
    /// Which step label the network sees; must be what the model was trained with.
    pub indexing: Indexing,
    /// Clamp to `[-1, 1]` before mapping to `[0, 1]` (docs/METHOD.md §1). `false` only maps.
    pub clamp: bool,
    /// Clipped-x0 (default) or the seeds' ε-form of each step.
    pub form: Form,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            sampler: Sampler::Ddpm,
            sampling_steps: None,
            spacing: TimestepSpacing::Trailing,
            eta: 0.0,
            batch: 64,
            indexing: Indexing::Standard,
            clamp: true,
            form: Form::ClippedX0,
        }
    }
}

/// Why sampling could not run.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    #[error(transparent)]
    Spacing(#[from] SpacingError),
    #[error("--sampling-steps {k} with the ddpm sampler: ancestral sampling uses all s = {s} trained steps (drop --sampling-steps, or use --sampler ddim for fewer)")]
    DdpmSteps { k: usize, s: usize },
    #[error("--eta {0}: must be a number in [0, 1]")]
    Eta(f64),
    #[error("--batch 0: need a batch of at least 1 image")]
    Batch,
    #[error("image size 0: need at least one pixel per image")]
    Dim,
    #[error("network output at step t = {t} has {got} values, expected {want} (batch x pixels)")]
    OutputLen { t: usize, got: usize, want: usize },
    #[error("network output at step t = {t} is not finite (NaN or inf): the model has diverged; retrain or use an earlier checkpoint")]
    NonFinite { t: usize },
    #[error("network forward pass failed at step t = {t}: {source}")]
    Model {
        t: usize,
        #[source]
        source: BoxError,
    },
}

/// One reverse step: `x_prev = c_x x_t + c_eps eps_theta(x_t, net_t) + sigma z` (ε-form), or
/// with [`Step::x0`] set, `x_prev = c_x0 clip(x0) + c_xt x_t + sigma z`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Chain step `t` in `1..=s` (standard numbering).
    pub t: usize,
    /// The step this one lands on (`0`: the data end).
    pub t_prev: usize,
    /// The integer given to the network ([`Indexing::net_t`]).
    pub net_t: usize,
    pub c_x: f64,
    pub c_eps: f64,
    pub sigma: f64,
    /// The clipped-x0 coefficients, when the step runs in that form.
    pub x0: Option<X0Coef>,
}

/// Coefficients of a clipped-x0 step: `x0 = (x_t - sqrt_1m_ab eps) / sqrt_ab`, clipped to
/// `[-1, 1]`, then `x_prev = c_x0 x0 + c_xt x_t + sigma z`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct X0Coef {
    pub sqrt_ab: f64,
    pub sqrt_1m_ab: f64,
    pub c_x0: f64,
    pub c_xt: f64,
}

impl X0Coef {
    /// One pixel's update before noise.
    #[inline]
    pub fn apply(&self, x: f64, eps: f64) -> f64 {
        let x0 = ((x - self.sqrt_1m_ab * eps) / self.sqrt_ab).clamp(-1.0, 1.0);
        self.c_x0 * x0 + self.c_xt * x
    }
}

/// The ancestral step at `t` in the clipped-x0 form (posterior mean of `q(x_{t-1} | x_t, x0)`),
/// `sigma_t^2 = beta_t` as in [`ddpm_step`].
pub fn ddpm_step_x0(schedule: &Schedule, t: usize, indexing: Indexing) -> Step {
    let (a, b, ab) = (schedule.alpha(t), schedule.beta(t), schedule.alpha_bar(t));
    let ab_p = schedule.alpha_bar(t - 1);
    Step {
        x0: Some(X0Coef {
            sqrt_ab: ab.sqrt(),
            sqrt_1m_ab: (1.0 - ab).sqrt(),
            c_x0: ab_p.sqrt() * b / (1.0 - ab),
            c_xt: a.sqrt() * (1.0 - ab_p) / (1.0 - ab),
        }),
        ..ddpm_step(schedule, t, indexing)
    }
}

/// The DDIM step from `t` to `t_prev` in the clipped-x0 form (`eps` re-derived from the clipped
/// `x0`).
pub fn ddim_step_x0(
    schedule: &Schedule,
    t: usize,
    t_prev: usize,
    eta: f64,
    indexing: Indexing,
) -> Step {
    let st = ddim_step(schedule, t, t_prev, eta, indexing);
    let (ab_t, ab_p) = (schedule.alpha_bar(t), schedule.alpha_bar(t_prev));
    let dir = (1.0 - ab_p - st.sigma * st.sigma).max(0.0).sqrt();
    let s1 = (1.0 - ab_t).sqrt();
    Step {
        x0: Some(X0Coef {
            sqrt_ab: ab_t.sqrt(),
            sqrt_1m_ab: s1,
            c_x0: ab_p.sqrt() - dir * ab_t.sqrt() / s1,
            c_xt: dir / s1,
        }),
        ..st
    }
}

/// Ancestral DDPM step at `t` (docs/METHOD.md §2), `sigma_t^2 = beta_t`, no noise at `t = 1`.
pub fn ddpm_step(schedule: &Schedule, t: usize, indexing: Indexing) -> Step {
    let (a, b, ab) = (schedule.alpha(t), schedule.beta(t), schedule.alpha_bar(t));
    Step {
        t,
        t_prev: t - 1,
        net_t: indexing.net_t(t),
        c_x: 1.0 / a.sqrt(),
        c_eps: -b / (a.sqrt() * (1.0 - ab).sqrt()),
        sigma: if t > 1 { b.sqrt() } else { 0.0 },
        x0: None,
    }
}

/// DDIM step from `t` to `t_prev < t` (Song et al. 2021, eq. 12 with `sigma(eta)` of eq. 16).
pub fn ddim_step(
    schedule: &Schedule,
    t: usize,
    t_prev: usize,
    eta: f64,
    indexing: Indexing,
) -> Step {
    let ab_t = schedule.alpha_bar(t);
    let ab_p = schedule.alpha_bar(t_prev);
    let var = (1.0 - ab_p) / (1.0 - ab_t) * (1.0 - ab_t / ab_p);
    let sigma = eta * var.max(0.0).sqrt();
    let dir = (1.0 - ab_p - sigma * sigma).max(0.0).sqrt();
    let r = (ab_p / ab_t).sqrt();
    Step {
        t,
        t_prev,
        net_t: indexing.net_t(t),
        c_x: r,
        c_eps: dir - r * (1.0 - ab_t).sqrt(),
        sigma,
        x0: None,
    }
}

/// The steps `opts` asks for, noisiest first.
pub fn plan(schedule: &Schedule, opts: &SampleOptions) -> Result<Vec<Step>, SamplerError> {
    let s = schedule.steps;
    if opts.batch == 0 {
        return Err(SamplerError::Batch);
    }
    match opts.sampler {
        Sampler::Ddpm => {
            if let Some(k) = opts.sampling_steps {
                if k != s {
                    return Err(SamplerError::DdpmSteps { k, s });
                }
            }
            Ok((1..=s)
                .rev()
                .map(|t| match opts.form {
                    Form::Eps => ddpm_step(schedule, t, opts.indexing),
                    Form::ClippedX0 => ddpm_step_x0(schedule, t, opts.indexing),
                })
                .collect())
        }
        Sampler::Ddim => {
            if !(opts.eta.is_finite() && (0.0..=1.0).contains(&opts.eta)) {
                return Err(SamplerError::Eta(opts.eta));
            }
            let ts = timesteps(s, opts.sampling_steps.unwrap_or(s), opts.spacing)?;
            Ok(ts
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    let p = ts.get(i + 1).copied().unwrap_or(0);
                    match opts.form {
                        Form::Eps => ddim_step(schedule, t, p, opts.eta, opts.indexing),
                        Form::ClippedX0 => ddim_step_x0(schedule, t, p, opts.eta, opts.indexing),
                    }
                })
                .collect())
        }
    }
}

/// An ε-predictor: the trained network, or a closed form in tests.
pub trait EpsModel {
    /// `eps_theta(x_t, net_t)` for `batch` images `x_t` (row-major `(batch, pixels)`, network
    /// scale), all at network step `net_t`. Returns `batch * pixels` values.
    fn eps(&self, x_t: &[f32], batch: usize, net_t: usize) -> Result<Vec<f32>, BoxError>;
}

impl<F> EpsModel for F
where
    F: Fn(&[f32], usize, usize) -> Result<Vec<f32>, BoxError>,
{
    fn eps(&self, x_t: &[f32], batch: usize, net_t: usize) -> Result<Vec<f32>, BoxError> {
        self(x_t, batch, net_t)
    }
}

/// The noise stream of image `index` under `seed`.
pub fn image_rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

/// Runs the reverse chain for `n` images of `dim` pixels and returns them in network scale
/// (row-major `(n, dim)`, before clamping). `progress` is called once per network evaluation
/// (`ceil(n / batch) * steps` calls in all).
pub fn run_chain<M: EpsModel + ?Sized>(
    model: &M,
    schedule: &Schedule,
    dim: usize,
    n: usize,
    opts: &SampleOptions,
    seed: u64,
    progress: &mut dyn FnMut(),
) -> Result<Vec<f32>, SamplerError> {
    if dim == 0 {
        return Err(SamplerError::Dim);
    }
    let steps = plan(schedule, opts)?;
    let mut out = Vec::with_capacity(n * dim);
    for start in (0..n).step_by(opts.batch) {
        let b = opts.batch.min(n - start);
        let mut rngs: Vec<ChaCha8Rng> = (start..start + b)
            .map(|i| image_rng(seed, i as u64))
            .collect();
        let mut x: Vec<f32> = Vec::with_capacity(b * dim);
        for rng in rngs.iter_mut() {
            x.extend((0..dim).map(|_| {
                let z: f64 = StandardNormal.sample(rng);
                z as f32
            }));
        }
        for st in &steps {
            let eps = model
                .eps(&x, b, st.net_t)
                .map_err(|source| SamplerError::Model { t: st.t, source })?;
            if eps.len() != x.len() {
                return Err(SamplerError::OutputLen {
                    t: st.t,
                    got: eps.len(),
                    want: x.len(),
                });
            }
            if eps.iter().any(|v| !v.is_finite()) {
                return Err(SamplerError::NonFinite { t: st.t });
            }
            match &st.x0 {
                None => {
                    for (xi, ei) in x.iter_mut().zip(&eps) {
                        *xi = (st.c_x * *xi as f64 + st.c_eps * *ei as f64) as f32;
                    }
                }
                Some(c) => {
                    for (xi, ei) in x.iter_mut().zip(&eps) {
                        *xi = c.apply(*xi as f64, *ei as f64) as f32;
                    }
                }
            }
            if st.sigma > 0.0 {
                for (row, rng) in x.chunks_mut(dim).zip(rngs.iter_mut()) {
                    for xi in row {
                        let z: f64 = StandardNormal.sample(rng);
                        *xi = (*xi as f64 + st.sigma * z) as f32;
                    }
                }
            }
            progress();
        }
        out.extend_from_slice(&x);
    }
    Ok(out)
}

/// Network scale to pixel scale, in place: clamp to `[-1, 1]` (if `clamp`), then `(x + 1) / 2`.
pub fn to_pixels(x: &mut [f32], clamp: bool) {
    for v in x {
        let c = if clamp { v.clamp(-1.0, 1.0) } else { *v };
        *v = (c + 1.0) * 0.5;
    }
}

#[cfg(test)]
mod tests;
