//! One denoiser per time of the discretised interpolant, each trained by its own online SGD
//! (the denoising objective separates over time, docs/METHOD.md §8 eq. (M3)).
//!
//! Time grid: `t_n = n/N`, `n = 0 … N−1` (the sampler steps from `t_n` to `t_{n+1}`, the last
//! step ends at `t = 1`). Network `n` at generation `g` draws everything (its initial weights,
//! its `x0`, its noise `z`) from `ChaCha8Rng::seed_from_u64(seed)` on stream
//! [`stream`]`(KIND_TRAIN, g, n)`, and keeps that generator between training snapshots, so the
//! numbers do not depend on the thread count.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::model::{Activation, Dae, Sgd};
use crate::target::Source;

pub const KIND_TRAIN: u64 = 1;
pub const KIND_SAMPLE: u64 = 2;
pub const KIND_POOL: u64 = 3;
pub const KIND_REFERENCE: u64 = 4;

/// The ChaCha stream of a (kind, generation, index) triple; distinct triples never share one.
pub fn stream(kind: u64, generation: usize, index: u64) -> u64 {
    (kind << 56) | ((generation as u64) << 40) | (index & ((1 << 40) - 1))
}

pub fn rng(seed: u64, stream_id: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream_id);
    r
}

/// The interpolation times `t_n = n/N`, `n = 0 … N−1`.
pub fn time_grid(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 / n as f64).collect()
}

/// The architecture and optimiser shared by every time's network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetSettings {
    pub k: usize,
    pub act: Activation,
    /// Standard deviation of the i.i.d. Gaussian entries of `W` at start.
    pub init_std: f64,
    /// Warm start: every row `w_j` also gets `√d · warm · u_j`, `u_j` a random unit vector in the
    /// span of the first `warm_dims` axes (the centroid plane / top principal components);
    /// `warm = 0` is a cold (purely random) start.
    pub warm: f64,
    pub warm_dims: usize,
    /// Skip connection at start.
    pub c0: f64,
    pub sgd: Sgd,
}

/// The `N` denoisers of one generation, with their generators and the SGD steps done so far.
#[derive(Clone, Debug)]
pub struct Denoisers {
    pub times: Vec<f64>,
    pub nets: Vec<Dae>,
    rngs: Vec<ChaCha8Rng>,
    pub steps_done: usize,
}

impl Denoisers {
    pub fn new(d: usize, n_times: usize, s: &NetSettings, seed: u64, generation: usize) -> Self {
        let times = time_grid(n_times);
        let mut rngs: Vec<ChaCha8Rng> = (0..n_times)
            .map(|n| rng(seed, stream(KIND_TRAIN, generation, n as u64)))
            .collect();
        let nets = rngs
            .iter_mut()
            .map(|r| {
                let mut net = Dae::random(d, s.k, s.act, s.init_std, s.c0, r);
                let p = s.warm_dims.min(d);
                if s.warm != 0.0 && p > 0 {
                    for j in 0..s.k {
                        let u: Vec<f64> = (0..p).map(|_| r.sample(StandardNormal)).collect();
                        let norm = u.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
                        let scale = (d as f64).sqrt() * s.warm / norm;
                        for (w, v) in net.w[j * d..j * d + p].iter_mut().zip(&u) {
                            *w += scale * v;
                        }
                    }
                }
                net
            })
            .collect();
        Self {
            times,
            nets,
            rngs,
            steps_done: 0,
        }
    }

    /// Continues every network's SGD until it has taken `total_steps` steps (in parallel over
    /// the times). Returns the mean per-coordinate loss of each network over the new steps.
    pub fn train_to(&mut self, source: &Source, total_steps: usize, sgd: Sgd) -> Vec<f64> {
        let from = self.steps_done;
        if total_steps <= from {
            return vec![f64::NAN; self.nets.len()];
        }
        let d = source.d();
        let losses = self
            .nets
            .par_iter_mut()
            .zip(self.rngs.par_iter_mut())
            .zip(self.times.par_iter())
            .map(|((net, rng), &t)| {
                let (mut x0, mut xt, mut r) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
                let mut sum = 0.0;
                for step in from..total_steps {
                    source.draw(rng, step, &mut x0);
                    for (o, &a) in xt.iter_mut().zip(&x0) {
                        let z: f64 = rng.sample(StandardNormal);
                        *o = t * a + (1.0 - t) * z;
                    }
                    sum += net.sgd_step(&x0, &xt, sgd, &mut r);
                }
                sum / (total_steps - from) as f64
            })
            .collect();
        self.steps_done = total_steps;
        losses
    }

    pub fn skips(&self) -> Vec<f64> {
        self.nets.iter().map(|n| n.c).collect()
    }
}
