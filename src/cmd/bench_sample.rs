//! `memdiff bench sample`: wall time of batched ancestral DDPM sampling with an untrained U-Net,
//! the same measurement as `../shared/bench/torch_ref.py sample` (linear schedule, standard
//! indexing, one untimed forward pass first, the timed part from drawing `x_s` to the clamped
//! images).
use anyhow::Context;
use clap::Args;
use memdiff_diffusion::backend::{self, DeviceKind};
use memdiff_diffusion::sample::{self, SampleOptions, Schedule};
use memdiff_model::UNetConfig;
use memdiff_schedule::BetaSchedule;
use std::time::Instant;

/// Batched ancestral sampling of an untrained U-Net: prints one JSON line (seconds, img/s,
/// s_per_net_eval). Compare with `torch_ref.py sample` run right before or after on the same
/// idle machine (`cpu_busy_before` near 0 in both).
///
/// Example: memdiff bench sample --px 16 --n 10 --steps 100
#[derive(Args, Debug)]
pub struct BenchSampleArgs {
    /// Image side (multiple of 8).
    #[arg(long, default_value_t = 16)]
    pub px: usize,
    /// Images, all in one batch.
    #[arg(long, default_value_t = 10)]
    pub n: usize,
    /// Diffusion steps s (network evaluations).
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// U-Net base width.
    #[arg(long, default_value_t = 64)]
    pub base_channels: usize,
    /// Seed of the weights and the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Timed runs; the JSON reports the fastest and every run's seconds.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// cpu (flex), wgpu, cuda or ndarray.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(a: BenchSampleArgs) -> anyhow::Result<()> {
    if a.n == 0 || a.repeat == 0 {
        anyhow::bail!("--n and --repeat must be at least 1");
    }
    let kind: DeviceKind = a.device.parse().context("--device")?;
    let device = backend::device(kind).context("--device")?;
    device.seed(a.seed);
    let cfg = UNetConfig::new(a.px, 1, a.base_channels);
    let model = cfg.init(&device).context("building the U-Net")?;
    let schedule = Schedule::new(BetaSchedule::Linear, a.steps).context("--steps")?;
    let opts = SampleOptions {
        batch: a.n,
        ..Default::default()
    };
    sample::plan(&schedule, &opts)?;
    let busy = memdiff_diffusion::bench::cpu_busy_before();
    // Untimed warm-up: one forward pass at the sampling batch size.
    let warm = sample::UNetEps {
        model: &model,
        device: device.clone(),
    };
    memdiff_schedule::EpsModel::eps(&warm, &vec![0.0; a.n * a.px * a.px], a.n, a.steps)
        .map_err(|e| anyhow::anyhow!("warm-up forward pass: {e}"))?;
    let mut times = Vec::with_capacity(a.repeat);
    for _ in 0..a.repeat {
        let start = Instant::now();
        let images = sample::sample(&model, &schedule, a.n, &opts, a.seed, &device, None)?;
        times.push(start.elapsed().as_secs_f64());
        std::hint::black_box(images);
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    let r6 = |x: f64| (x * 1e6).round() / 1e6;
    println!(
        "{}",
        serde_json::json!({
            "px": a.px, "n": a.n, "steps": a.steps, "base": a.base_channels,
            "seconds": r6(best),
            "img_per_s": (a.n as f64 / best * 1e4).round() / 1e4,
            "s_per_net_eval": r6(best / a.steps as f64),
            "runs_seconds": times.iter().map(|&t| r6(t)).collect::<Vec<_>>(),
            "params": model.num_params(),
            "backend": backend::backend_name(kind),
            "threads": rayon::current_num_threads(),
            "cpu_busy_before": busy,
        })
    );
    Ok(())
}
