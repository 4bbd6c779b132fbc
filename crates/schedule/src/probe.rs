//! The denoising loss at fixed noise levels (docs/METHOD.md §7): how well an ε-predictor
//! denoises a given set of images at a few fixed ᾱ, with noise drawn from a fixed seed per
//! level, so that two calls on the same images (two training snapshots) see the same noisy
//! inputs and their losses differ only by the network.
//!
//! Level `ℓ` targets `ᾱ ≈ LEVELS[ℓ]`: its step `t_ℓ` is the schedule step whose `ᾱ_t` is
//! nearest. Image `i` (pixels `v` in `[0, 1]`, network scale `x0 = 2v - 1`) is noised once per
//! level, `x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) ε`, its `ε` drawn from a ChaCha8 stream seeded by
//! `seed` on stream `ℓ` (images in order); its loss is `mean_pixels (ε_θ(x_t, t_ℓ) - ε)²`, the
//! training objective at that one step. The result per level is the mean over images and its
//! standard error (`sd / sqrt(m)`).
//!
//! On the training images against images the network never saw, the gap `held-out - train`
//! opens when the network starts fitting its particular training set (Bonnaire et al. 2025); at
//! small noise (ᾱ ≈ 0.98) it needs no sampling.

use crate::{EpsModel, Indexing, Schedule};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

pub use crate::sampler::BoxError;

/// The target ᾱ of the probe's noise levels: little noise (where a network that memorises
/// denoises its own images far better than others), middling, and much.
pub const LEVELS: [f64; 3] = [0.98, 0.8, 0.5];

/// The denoising loss of one set at one level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelLoss {
    /// The target ᾱ (one of [`LEVELS`]).
    pub target: f64,
    /// The schedule step used and its ᾱ.
    pub t: usize,
    pub alpha_bar: f64,
    /// Mean over images of each image's mean squared ε error, and its standard error.
    pub mean: f64,
    pub se: f64,
    /// Images measured.
    pub images: usize,
}

/// The step of `sched` whose ᾱ is nearest `target` (the smaller t on a tie).
pub fn level_step(sched: &Schedule, target: f64) -> usize {
    (1..=sched.steps)
        .min_by(|&a, &b| {
            let da = (sched.alpha_bar(a) - target).abs();
            let db = (sched.alpha_bar(b) - target).abs();
            da.total_cmp(&db)
        })
        .expect("a schedule has at least one step")
}

/// The denoising loss of `model` on the `m = pixels.len() / dim` images `pixels` (values in
/// `[0, 1]`, row-major) at every level of [`LEVELS`] (module doc), `batch` images per call.
pub fn denoising_loss<M: EpsModel + ?Sized>(
    model: &M,
    sched: &Schedule,
    indexing: Indexing,
    pixels: &[f32],
    dim: usize,
    seed: u64,
    batch: usize,
) -> Result<Vec<LevelLoss>, BoxError> {
    if dim == 0 || !pixels.len().is_multiple_of(dim) || pixels.is_empty() {
        return Err(format!(
            "the loss probe needs whole images: {} values of {dim} pixels each",
            pixels.len()
        )
        .into());
    }
    let m = pixels.len() / dim;
    let batch = batch.max(1);
    let mut out = Vec::with_capacity(LEVELS.len());
    for (l, &target) in LEVELS.iter().enumerate() {
        let t = level_step(sched, target);
        let ab = sched.alpha_bar(t);
        let (ca, cb) = (ab.sqrt() as f32, (1.0 - ab).sqrt() as f32);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(l as u64);
        let mut per_image = Vec::with_capacity(m);
        for start in (0..m).step_by(batch) {
            let b = batch.min(m - start);
            let mut xt = Vec::with_capacity(b * dim);
            let mut eps = Vec::with_capacity(b * dim);
            for &v in &pixels[start * dim..(start + b) * dim] {
                let e: f32 = rng.sample(StandardNormal);
                xt.push(ca * (2.0 * v - 1.0) + cb * e);
                eps.push(e);
            }
            let pred = model.eps(&xt, b, indexing.net_t(t))?;
            if pred.len() != b * dim {
                return Err(format!(
                    "the network returned {} values for {b} images of {dim} pixels",
                    pred.len()
                )
                .into());
            }
            for (p, e) in pred.chunks(dim).zip(eps.chunks(dim)) {
                let sq: f64 = p
                    .iter()
                    .zip(e)
                    .map(|(&a, &b)| {
                        let d = (a - b) as f64;
                        d * d
                    })
                    .sum();
                per_image.push(sq / dim as f64);
            }
        }
        let mean = per_image.iter().sum::<f64>() / m as f64;
        let se = if m > 1 {
            let var = per_image.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m - 1) as f64;
            (var / m as f64).sqrt()
        } else {
            f64::NAN
        };
        out.push(LevelLoss {
            target,
            t,
            alpha_bar: ab,
            mean,
            se,
            images: m,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BetaSchedule;

    fn normal(m: usize, dim: usize, sd: f64, seed: u64) -> Vec<f32> {
        // Pixels v = (x0 + 1) / 2 with x0 ~ N(0, sd²): network scale x0 exactly Gaussian.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..m * dim)
            .map(|_| {
                let z: f64 = rng.sample(StandardNormal);
                ((sd * z + 1.0) / 2.0) as f32
            })
            .collect()
    }

    /// The exact denoiser of Gaussian data x0 ~ N(0, v I): E[ε | x_t] = b / (a² v + b²) x_t.
    fn gaussian_denoiser(
        sched: &Schedule,
        v: f64,
    ) -> impl Fn(&[f32], usize, usize) -> Result<Vec<f32>, BoxError> + '_ {
        move |x: &[f32], _b: usize, t: usize| {
            let ab = sched.alpha_bar(t);
            let k = ((1.0 - ab).sqrt() / (ab * v + 1.0 - ab)) as f32;
            Ok(x.iter().map(|&xi| k * xi).collect())
        }
    }

    /// The exact denoiser of the empirical distribution of `train` (network scale): the ideal
    /// memoriser, ε̂ = (x_t - a Σ w_i x_i) / b with w ∝ exp(-|x_t - a x_i|² / 2b²).
    fn memoriser<'a>(
        sched: &'a Schedule,
        train: &'a [f32],
        dim: usize,
    ) -> impl Fn(&[f32], usize, usize) -> Result<Vec<f32>, BoxError> + 'a {
        move |x: &[f32], _b: usize, t: usize| {
            let ab = sched.alpha_bar(t);
            let (a, b) = (ab.sqrt(), (1.0 - ab).sqrt());
            let mut out = Vec::with_capacity(x.len());
            for xt in x.chunks(dim) {
                let d2: Vec<f64> = train
                    .chunks(dim)
                    .map(|xi| {
                        xt.iter()
                            .zip(xi)
                            .map(|(&p, &q)| {
                                let d = p as f64 - a * (2.0 * q as f64 - 1.0);
                                d * d
                            })
                            .sum::<f64>()
                    })
                    .collect();
                let lo = d2.iter().cloned().fold(f64::INFINITY, f64::min);
                let w: Vec<f64> = d2
                    .iter()
                    .map(|d| (-(d - lo) / (2.0 * b * b)).exp())
                    .collect();
                let z: f64 = w.iter().sum();
                for j in 0..dim {
                    let mean_x0: f64 = train
                        .chunks(dim)
                        .zip(&w)
                        .map(|(xi, wi)| wi * (2.0 * xi[j] as f64 - 1.0))
                        .sum::<f64>()
                        / z;
                    out.push(((xt[j] as f64 - a * mean_x0) / b) as f32);
                }
            }
            Ok(out)
        }
    }

    #[test]
    fn levels_take_the_nearest_step() {
        let s = Schedule::new(BetaSchedule::Cosine, 100).unwrap();
        for &target in &LEVELS {
            let t = level_step(&s, target);
            let brute = (1..=100)
                .map(|u| (s.alpha_bar(u) - target).abs())
                .fold(f64::INFINITY, f64::min);
            assert_eq!((s.alpha_bar(t) - target).abs(), brute);
        }
        // The cosine schedule at s = 100 (computed apart): ᾱ_8 = 0.98146, ᾱ_9 = 0.97701.
        assert_eq!(level_step(&s, 0.98), 8);
    }

    #[test]
    fn the_gaussian_denoiser_loss_matches_its_closed_form() {
        // Per-pixel MSE of the exact denoiser: a² v / (a² v + b²).
        let sched = Schedule::new(BetaSchedule::Cosine, 100).unwrap();
        let (dim, m, v) = (16, 4000, 0.09f64);
        let x = normal(m, dim, v.sqrt(), 1);
        let f = gaussian_denoiser(&sched, v);
        let got = denoising_loss(&f, &sched, Indexing::Standard, &x, dim, 7, 256).unwrap();
        for l in &got {
            let ab = l.alpha_bar;
            let want = ab * v / (ab * v + 1.0 - ab);
            assert!(
                (l.mean - want).abs() < 4.0 * l.se,
                "ᾱ {ab}: {} ± {} vs {want}",
                l.mean,
                l.se
            );
            assert!(l.se < 0.02 * want, "{l:?}");
            assert_eq!(l.images, m);
        }
        // Fixed seeds: the same call gives the same numbers, whatever the batch.
        let again = denoising_loss(&f, &sched, Indexing::Standard, &x, dim, 7, 97).unwrap();
        for (a, b) in got.iter().zip(&again) {
            assert!((a.mean - b.mean).abs() < 1e-12 * a.mean.max(1.0));
        }
    }

    #[test]
    fn the_gap_is_zero_for_a_generaliser_and_positive_for_a_memoriser() {
        let sched = Schedule::new(BetaSchedule::Cosine, 100).unwrap();
        let (dim, v) = (16, 0.09f64);
        let train = normal(20, dim, v.sqrt(), 2);
        let held = normal(400, dim, v.sqrt(), 3);
        let train_many = normal(400, dim, v.sqrt(), 4);
        let gap = |f: &dyn EpsModel, tr: &[f32]| {
            let a = denoising_loss(f, &sched, Indexing::Standard, tr, dim, 11, 64).unwrap();
            let b = denoising_loss(f, &sched, Indexing::Standard, &held, dim, 12, 64).unwrap();
            (a[0].clone(), b[0].clone())
        };
        // The Gaussian denoiser does not know T: train and held-out losses agree within noise.
        let g = gaussian_denoiser(&sched, v);
        let (tr, ho) = gap(&g, &train_many);
        let z = (ho.mean - tr.mean) / (tr.se.powi(2) + ho.se.powi(2)).sqrt();
        assert!(z.abs() < 3.0, "generaliser gap z = {z}: {tr:?} {ho:?}");
        // The memoriser of T denoises T at ᾱ ≈ 0.98 almost perfectly and held-out images badly.
        let mem = memoriser(&sched, &train, dim);
        let (tr, ho) = gap(&mem, &train);
        assert!(tr.mean < 0.05, "{tr:?}");
        assert!(ho.mean > 10.0 * tr.mean, "{tr:?} {ho:?}");
        assert!(ho.mean - tr.mean > 5.0 * (tr.se.powi(2) + ho.se.powi(2)).sqrt());
    }

    #[test]
    fn partial_images_are_refused() {
        let sched = Schedule::new(BetaSchedule::Cosine, 10).unwrap();
        let f = |x: &[f32], _: usize, _: usize| -> Result<Vec<f32>, BoxError> { Ok(x.to_vec()) };
        let e = denoising_loss(&f, &sched, Indexing::Standard, &[0.5; 10], 4, 0, 8).unwrap_err();
        assert!(e.to_string().contains("whole images"), "{e}");
    }
}
