//! Sampling a trained U-Net (docs/METHOD.md §2): ancestral DDPM with the `s` the model was trained with,
//! or DDIM with `K <= s` steps, a timestep spacing and `eta`.
//!
//! The chain itself (step coefficients, noise, batching) is [`memdiff_schedule::sampler`], plain
//! Rust over any [`EpsModel`]; this module plugs the burn U-Net into it and returns an
//! [`ImageSet`] in `[0, 1]`. Noise is drawn on the host from one ChaCha8 stream per image
//! (`seed`, image index), so the same seed gives the same images on one backend whatever the
//! batch size, and sampling never touches the device RNG.
//!
//! ```ignore
//! let (model, meta) = memdiff_diffusion::checkpoint::load(dir, &device, false)?;
//! let schedule = Schedule::new(meta.train.schedule, meta.train.diffusion_steps)?;
//! let opts = SampleOptions { indexing: meta.train.indexing, ..Default::default() };
//! let images = sample(&model, &schedule, 10, &opts, seed, &device, None)?; // (10, 1, px, px)
//! ```

use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::ProgressBar;
use memdiff_data::ImageSet;
use memdiff_model::UNet;
use memdiff_schedule::sampler::{self, BoxError};
pub use memdiff_schedule::sampler::{
    ddim_step, ddpm_step, plan, EpsModel, Form, SampleOptions, Sampler, SamplerError, Step,
};
pub use memdiff_schedule::{Indexing, Schedule, TimestepSpacing};

/// Why sampling failed.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    #[error("--n 0: ask for at least one image")]
    NoImages,
}

/// The burn U-Net as an [`EpsModel`] on `device` (a plain device: no autodiff graph is built).
pub struct UNetEps<'a> {
    pub model: &'a UNet,
    pub device: Device,
}

impl EpsModel for UNetEps<'_> {
    fn eps(&self, x_t: &[f32], batch: usize, net_t: usize) -> Result<Vec<f32>, BoxError> {
        let (c, px) = (self.model.channels, self.model.px);
        let x = Tensor::<4>::from_data(
            TensorData::new(x_t.to_vec(), [batch, c, px, px]),
            &self.device,
        );
        let t = Tensor::<1, Int>::from_data(
            TensorData::new(vec![net_t as i64; batch], [batch]),
            &self.device,
        );
        let eps = self.model.forward(x, t);
        let data = eps.into_data().convert::<f32>();
        data.try_into_vec::<f32>()
            .map_err(|e| format!("reading the network output: {e:?}").into())
    }
}

/// The denoising loss of `model` on `images` (pixels in [0, 1]) at the loss probe's fixed noise
/// levels, with the noise of `seed` (`memdiff_schedule::probe::denoising_loss`, 256 images per
/// forward pass): what a training snapshot measures on its training images and on held-out ones.
pub fn denoising_loss(
    model: &UNet,
    schedule: &Schedule,
    indexing: Indexing,
    images: &ImageSet,
    seed: u64,
    device: &Device,
) -> Result<Vec<memdiff_schedule::probe::LevelLoss>, BoxError> {
    let eps = UNetEps {
        model,
        device: device.clone(),
    };
    memdiff_schedule::probe::denoising_loss(
        &eps,
        schedule,
        indexing,
        &images.data,
        images.dim(),
        seed,
        256,
    )
}

/// The sampler in a few characters, as the `sampler` column of results.csv and the run records
/// write it: `ddpm/clipped-x0`, `ddim:50:trailing:eta0/clipped-x0`, `ddpm/eps`.
pub fn describe(opts: &SampleOptions, schedule: &Schedule) -> String {
    match opts.sampler {
        Sampler::Ddpm => format!("ddpm/{}", opts.form),
        Sampler::Ddim => format!(
            "ddim:{}:{}:eta{}/{}",
            opts.sampling_steps.unwrap_or(schedule.steps),
            opts.spacing,
            opts.eta,
            opts.form
        ),
    }
}

/// Network evaluations of one [`sample`] call (the length of its progress bar).
pub fn evaluations(n: usize, schedule: &Schedule, opts: &SampleOptions) -> u64 {
    let k = match opts.sampler {
        Sampler::Ddpm => schedule.steps,
        Sampler::Ddim => opts.sampling_steps.unwrap_or(schedule.steps),
    };
    (n.div_ceil(opts.batch.max(1)) * k) as u64
}

/// `n` images `(n, channels, px, px)` in `[0, 1]` from `model` on `device`.
///
/// `opts.indexing` must be the one the model was trained with (`CheckpointMeta.train.indexing`).
/// `progress`, if given, is advanced by one per network evaluation ([`evaluations`] in all).
pub fn sample(
    model: &UNet,
    schedule: &Schedule,
    n: usize,
    opts: &SampleOptions,
    seed: u64,
    device: &Device,
    progress: Option<&ProgressBar>,
) -> Result<ImageSet, SampleError> {
    let eps = UNetEps {
        model,
        device: device.clone(),
    };
    sample_with(
        &eps,
        [model.channels, model.px, model.px],
        schedule,
        n,
        opts,
        seed,
        progress,
    )
}

/// As [`sample`] for any ε-predictor of images of shape `[channels, h, w]`.
pub fn sample_with<M: EpsModel + ?Sized>(
    model: &M,
    shape: [usize; 3],
    schedule: &Schedule,
    n: usize,
    opts: &SampleOptions,
    seed: u64,
    progress: Option<&ProgressBar>,
) -> Result<ImageSet, SampleError> {
    if n == 0 {
        return Err(SampleError::NoImages);
    }
    let [c, h, w] = shape;
    let mut tick = || {
        if let Some(pb) = progress {
            pb.inc(1);
        }
    };
    let mut x = sampler::run_chain(model, schedule, c * h * w, n, opts, seed, &mut tick)?;
    sampler::to_pixels(&mut x, opts.clamp);
    Ok(ImageSet::new(n, c, h, w, x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use memdiff_model::UNetConfig;
    use memdiff_schedule::BetaSchedule;

    #[cfg(feature = "flex")]
    #[test]
    fn unet_sampling_is_deterministic_in_range_and_batch_independent() {
        let device = Device::flex();
        device.seed(3);
        let model = UNetConfig::new(8, 1, 4).init(&device).unwrap();
        let sch = Schedule::new(BetaSchedule::Linear, 6).unwrap();
        let run = |batch: usize, seed: u64| {
            let opts = SampleOptions {
                batch,
                ..Default::default()
            };
            sample(&model, &sch, 5, &opts, seed, &device, None).unwrap()
        };
        let a = run(2, 11);
        assert_eq!((a.n, a.channels, a.h, a.w), (5, 1, 8, 8));
        assert!(a.data.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(a, run(2, 11));
        assert_ne!(a, run(2, 12));
        // Batch size only changes how the network is called: equal to f32 round-off.
        let b = run(5, 11);
        let worst = a
            .data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "batch 2 vs 5 differ by {worst}");
    }

    #[test]
    fn zero_images_is_an_error() {
        let zero = |x: &[f32], _b: usize, _t: usize| -> Result<Vec<f32>, BoxError> {
            Ok(vec![0.0; x.len()])
        };
        let sch = Schedule::new(BetaSchedule::Linear, 4).unwrap();
        let e = sample_with(
            &zero,
            [1, 2, 2],
            &sch,
            0,
            &SampleOptions::default(),
            0,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("--n 0"), "{e}");
        let ok = sample_with(
            &zero,
            [1, 2, 2],
            &sch,
            3,
            &SampleOptions::default(),
            0,
            None,
        )
        .unwrap();
        assert_eq!(ok.data.len(), 12);
        assert_eq!(evaluations(3, &sch, &SampleOptions::default()), 4);
    }
}
