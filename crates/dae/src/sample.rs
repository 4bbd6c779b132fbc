//! Sampling with the learned denoisers: Euler(–Maruyama) steps of the generative ODE or SDE of
//! the linear interpolant `x_t = t x0 + (1 − t) z` (docs/METHOD.md §8 eq. (M5)):
//!
//! ```text
//! ODE: x ← x + Δt (f_n(x) − x)/(1 − t_n)
//! SDE: x ← x + Δt [(f_n(x) − x)/(1 − t_n) − ε0 (x − t_n f_n(x))] + √(2 ε0 Δt) (1 − t_n) ξ
//! ```
//!
//! from `x(0) ~ N(0, I_d)`, `t_n = n/N`, `Δt = 1/N`; the SDE's diffusion is `ε(t) = ε0 (1 − t)²`.
//! The last step (from `t = 1 − 1/N`) of the ODE returns `f(x)` itself. Samples are made in chunks
//! of [`CHUNK`], chunk `i` from its own ChaCha stream, so the output does not depend on the
//! thread count.

use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::Dae;
use crate::train::{rng, stream, KIND_SAMPLE};

pub const CHUNK: usize = 64;

/// A denoiser `denoise(n, x, out)` for the time `t_n`.
pub type Denoiser<'a> = dyn Fn(usize, &[f64], &mut [f64]) + Sync + 'a;

/// Generative process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Sde,
    Ode,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sde" => Ok(Self::Sde),
            "ode" => Ok(Self::Ode),
            _ => Err(format!("unknown sampler `{s}`: use sde or ode")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleOpts {
    pub method: Method,
    /// `ε0` of the SDE's diffusion `ε(t) = ε0 (1 − t)²` (ignored by the ODE).
    pub eps0: f64,
}

/// `m` samples (row-major `m x d`) from the networks `nets` at times `times` (`t_n = n/N`).
/// `index` picks the ChaCha streams (one per snapshot) within `generation`.
pub fn generate(
    nets: &[Dae],
    times: &[f64],
    m: usize,
    opts: SampleOpts,
    seed: u64,
    generation: usize,
    index: u64,
) -> Vec<f64> {
    let d = nets.first().map_or(0, |n| n.d);
    let denoise = |n: usize, x: &[f64], f: &mut [f64]| nets[n].apply(x, f);
    generate_with(&denoise, d, times, m, opts, seed, generation, index)
}

/// [`generate`] with any denoiser `denoise(n, x, out)` for time `times[n]` (e.g. the exact
/// posterior mean [`crate::target::Mixture::posterior_mean`]).
#[allow(clippy::too_many_arguments)]
pub fn generate_with(
    denoise: &Denoiser,
    d: usize,
    times: &[f64],
    m: usize,
    opts: SampleOpts,
    seed: u64,
    generation: usize,
    index: u64,
) -> Vec<f64> {
    let mut out = vec![0.0; m * d];
    out.par_chunks_mut(CHUNK * d.max(1))
        .enumerate()
        .for_each(|(ci, chunk)| {
            let mut r = rng(
                seed,
                stream(KIND_SAMPLE, generation, (index << 24) | ci as u64),
            );
            let mut f = vec![0.0; d];
            for x in chunk.chunks_mut(d) {
                for v in x.iter_mut() {
                    *v = r.sample(StandardNormal);
                }
                for (n, &t) in times.iter().enumerate() {
                    let dt = times.get(n + 1).copied().unwrap_or(1.0) - t;
                    denoise(n, x, &mut f);
                    let a = dt / (1.0 - t);
                    match opts.method {
                        Method::Ode => {
                            for (xi, &fi) in x.iter_mut().zip(&f) {
                                *xi += a * (fi - *xi);
                            }
                        }
                        Method::Sde => {
                            let e = opts.eps0 * dt;
                            let s = (2.0 * opts.eps0 * dt).sqrt() * (1.0 - t);
                            for (xi, &fi) in x.iter_mut().zip(&f) {
                                let xi0 = *xi;
                                let xi_noise: f64 = r.sample(StandardNormal);
                                *xi = xi0 + a * (fi - xi0) - e * (xi0 - t * fi) + s * xi_noise;
                            }
                        }
                    }
                }
            }
        });
    out
}
