//! The training-step benchmark behind `memdiff bench train`: the same work as
//! `../shared/bench/torch_ref.py train` (one fixed batch of the one-component GMM mapped to
//! [-1, 1], `t` uniform in 1..=s with the linear schedule, s = 1000, forward, MSE, backward,
//! Adam lr 2e-4 eps 1e-8), timed step by step.

use crate::train::{StepTimes, TrainConfig, TrainError, Trainer};
use burn::tensor::Device;
use memdiff_data::ImageSet;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use std::time::Instant;

/// What was measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    pub px: usize,
    pub batch: usize,
    pub base: usize,
    pub steps: usize,
    pub warmup: usize,
    /// Median seconds per timed step.
    pub s_per_step: f64,
    pub s_per_step_min: f64,
    pub img_per_s: f64,
    pub params: usize,
    /// Every timed step's seconds.
    pub step_seconds: Vec<f64>,
    /// Every timed step's seconds by phase.
    pub phases: Vec<StepTimes>,
    /// Fraction of all cores busy with other work in a 0.5 s wait before timing (Linux).
    pub cpu_busy_before: Option<f64>,
}

/// Times `warmup + steps` training steps; the median and minimum of the timed ones.
pub fn bench_train(
    px: usize,
    batch: usize,
    base: usize,
    steps: usize,
    warmup: usize,
    s: usize,
    device: &Device,
) -> Result<BenchResult, TrainError> {
    let cfg = TrainConfig {
        px,
        base_channels: base,
        diffusion_steps: s,
        batch,
        epochs: 1,
        max_steps: Some(warmup + steps),
        checkpoint_every: 0,
        ..TrainConfig::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let normal = Normal::new(0.5f32, 0.1).expect("valid normal");
    let data: Vec<f32> = (0..batch * px * px)
        .map(|_| normal.sample(&mut rng))
        .collect();
    let set = ImageSet::new(batch, 1, px, px, data);
    let mut tr = Trainer::new(&cfg, &set, device)?;
    let params = tr.model().num_params();
    let busy = cpu_busy_before();
    let mut times = Vec::with_capacity(steps);
    let mut phases = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let t0 = Instant::now();
        tr.step()?;
        let dt = t0.elapsed().as_secs_f64();
        if i >= warmup {
            times.push(dt);
            phases.push(tr.last_times);
        }
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let m = sorted.len();
    let med = if m % 2 == 1 {
        sorted[m / 2]
    } else {
        0.5 * (sorted[m / 2 - 1] + sorted[m / 2])
    };
    Ok(BenchResult {
        px,
        batch,
        base,
        steps,
        warmup,
        s_per_step: med,
        s_per_step_min: sorted[0],
        img_per_s: batch as f64 / med,
        params,
        step_seconds: times,
        phases,
        cpu_busy_before: busy,
    })
}

/// Fraction of all cores busy over a 0.5 s idle wait (as torch_ref.py measures it).
pub fn cpu_busy_before() -> Option<f64> {
    fn read() -> Option<(u64, u64)> {
        let s = std::fs::read_to_string("/proc/stat").ok()?;
        let v: Vec<u64> = s
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|x| x.parse().ok())
            .collect();
        let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
        Some((v.iter().sum(), idle))
    }
    let (t0, i0) = read()?;
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (t1, i1) = read()?;
    if t1 <= t0 {
        return None;
    }
    let busy = 1.0 - (i1 - i0) as f64 / (t1 - t0) as f64;
    Some((busy * 1000.0).round() / 1000.0)
}
