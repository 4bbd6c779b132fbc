//! The training-step benchmark behind `memdiff bench train`: the same work as
//! `../shared/bench/torch_ref.py train` (one fixed batch of the one-component GMM mapped to
//! [-1, 1], `t` uniform in 1..=s with the linear schedule, s = 1000, forward, MSE, backward,
//! Adam lr 2e-4 eps 1e-8), timed step by step.

use crate::train::{StepTimes, TrainConfig, TrainError, Trainer};
use burn::tensor::{Device, Tensor};
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

/// One 3×3 convolution of the U-Net timed up to four ways (forward, or forward + both gradients).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConvTiming {
    pub c_in: usize,
    pub c_out: usize,
    pub side: usize,
    /// burn's `conv2d` (seconds, best of the repeats).
    pub burn: f64,
    /// [`memdiff_model::conv3x3_dense`]; `None` above side 4, where its `(O s², C s²)` matrix
    /// grows as s⁴.
    pub dense: Option<f64>,
    /// [`memdiff_model::conv3x3_im2col`].
    pub im2col: f64,
    /// `memdiff_model::host::conv3x3_host` (flex only: batched im2col + GEMM on the host, with
    /// its own backward); `None` on other backends.
    pub host: Option<f64>,
    /// Largest difference of any output or gradient to burn's, relative to burn's largest value.
    pub max_rel_err: f32,
}

/// Times burn's `conv2d`, the dense product, im2col and (on flex) the host kernel on every 3×3
/// convolution of the U-Net at `px` with batch `batch` on `device` (a plain device; wrapped with
/// autodiff unless `forward_only`), and checks that they all agree.
pub fn bench_conv(
    px: usize,
    batch: usize,
    base: usize,
    device: &Device,
    forward_only: bool,
    repeat: usize,
) -> Vec<ConvTiming> {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::Distribution;
    let dev = if forward_only {
        device.clone()
    } else {
        device.clone().autodiff()
    };
    // 0: burn, 1: dense, 2: im2col, 3: host. Returns the output and, with autodiff, both
    // gradients.
    let run = |x: &Tensor<4>, w: &Tensor<4>, how: usize| -> Vec<Tensor<4>> {
        let conv = |x: Tensor<4>, w: Tensor<4>| match how {
            0 => conv2d(x, w, None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
            1 => memdiff_model::conv3x3_dense(x, w),
            2 => memdiff_model::conv3x3_im2col(x, w),
            #[cfg(feature = "flex")]
            _ => memdiff_model::host::conv3x3_host(x, w),
            #[cfg(not(feature = "flex"))]
            _ => unreachable!("the host convolution needs the flex feature"),
        };
        if forward_only {
            return vec![conv(x.clone(), w.clone())];
        }
        let (x, w) = (x.clone().require_grad(), w.clone().require_grad());
        let y = conv(x.clone(), w.clone());
        // upstream gradient y: d/dy sum(y^2 / 2)
        let g = (y.clone() * y.clone()).sum().mul_scalar(0.5).backward();
        let gx = x.grad(&g).map(Tensor::from_inner).expect("input gradient");
        let gw = w.grad(&g).map(Tensor::from_inner).expect("weight gradient");
        vec![y, gx, gw]
    };
    let finish = |outs: Vec<Tensor<4>>| -> f32 {
        outs.into_iter()
            .map(|t| t.sum())
            .reduce(|a, b| a + b)
            .expect("one output")
            .into_scalar::<f32>()
    };
    #[cfg(feature = "flex")]
    let host = memdiff_model::host::is_flex(device);
    #[cfg(not(feature = "flex"))]
    let host = false;
    let mut rows = Vec::new();
    for (ci, co, s) in memdiff_model::conv3x3_shapes(&memdiff_model::UNetConfig::new(px, 1, base)) {
        let x = Tensor::<4>::random([batch, ci, s, s], Distribution::Normal(0.0, 1.0), &dev);
        let w = Tensor::<4>::random([co, ci, 3, 3], Distribution::Normal(0.0, 0.05), &dev);
        let mut ways: Vec<usize> = if s <= 4 { vec![0, 1, 2] } else { vec![0, 2] };
        if host {
            ways.push(3);
        }
        let reference = run(&x, &w, 0);
        let mut err = 0f32;
        for &how in &ways[1..] {
            for (a, b) in run(&x, &w, how).into_iter().zip(&reference) {
                let scale: f32 = b.clone().abs().max().into_scalar();
                let d: f32 = (a - b.clone()).abs().max().into_scalar();
                err = err.max(d / scale.max(1e-30));
            }
        }
        let mut best = [f64::MAX; 4];
        for _ in 0..repeat {
            for &how in &ways {
                let t0 = Instant::now();
                finish(run(&x, &w, how));
                best[how] = best[how].min(t0.elapsed().as_secs_f64());
            }
        }
        rows.push(ConvTiming {
            c_in: ci,
            c_out: co,
            side: s,
            burn: best[0],
            dense: (s <= 4).then_some(best[1]),
            im2col: best[2],
            host: host.then_some(best[3]),
            max_rel_err: err,
        });
    }
    rows
}
