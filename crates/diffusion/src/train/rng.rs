//! Seeds: every draw of a run (batch order, each image's `t` and `eps`) is a pure function of
//! `(seed, what, index)`, so a resumed run draws what the uninterrupted one would have.

use memdiff_schedule::{Indexing, Schedule};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

pub(crate) const TAG_PERM: u64 = 0x7065_726d; // "perm"
pub(crate) const TAG_STEP: u64 = 0x7374_6570; // "step"
pub(crate) const TAG_VAL: u64 = 0x0076_616c; // "val"

// The mixer of the one seed derivation (`memdiff_data::seed`); the training draws keep their
// own composition of it so that every published run draws what it drew.
use memdiff_data::seed::mix as splitmix;

/// The RNG of draw `index` of kind `tag` in a run seeded `seed`.
pub fn derived_rng(seed: u64, tag: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix(splitmix(seed ^ splitmix(tag)) ^ index))
}

/// The order of the training images in `epoch`.
pub fn epoch_order(seed: u64, epoch: usize, n_train: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n_train).collect();
    idx.shuffle(&mut derived_rng(seed, TAG_PERM, epoch as u64));
    idx
}

/// A batch ready for the network: `x_t`, `eps` (row-major `(B, C, px, px)`) and the step
/// labels the network sees.
pub(crate) struct NoisyBatch {
    pub(crate) xt: Vec<f32>,
    pub(crate) eps: Vec<f32>,
    pub(crate) t_net: Vec<i64>,
    pub(crate) b: usize,
}

/// `x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps` for the images `rows` of `x0` (already in [-1, 1]),
/// with `t` and `eps` drawn from `rng` image by image.
pub(crate) fn noisy_batch(
    x0: &[f32],
    dim: usize,
    rows: &[usize],
    sched: &Schedule,
    indexing: Indexing,
    rng: &mut ChaCha8Rng,
) -> NoisyBatch {
    let b = rows.len();
    let s = sched.steps;
    let mut xt = Vec::with_capacity(b * dim);
    let mut eps = Vec::with_capacity(b * dim);
    let mut t_net = Vec::with_capacity(b);
    for &r in rows {
        let t = rng.random_range(1..=s);
        let ab = sched.alpha_bar(t);
        let (ca, cb) = (ab.sqrt() as f32, (1.0 - ab).sqrt() as f32);
        t_net.push(indexing.net_t(t) as i64);
        for &x in &x0[r * dim..(r + 1) * dim] {
            let e: f32 = rng.sample(StandardNormal);
            xt.push(ca * x + cb * e);
            eps.push(e);
        }
    }
    NoisyBatch { xt, eps, t_net, b }
}
