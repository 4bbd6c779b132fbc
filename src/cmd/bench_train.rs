//! `memdiff bench train`.
use anyhow::{ensure, Context};
use clap::Args;
use memdiff_diffusion::{backend, bench};

/// Training steps of the U-Net per second, as `torch_ref.py train` measures them.
///
/// Prints one JSON line. Compare with, right before or after on the same idle machine:
/// `~/.venvs/torchref/bin/python ../shared/bench/torch_ref.py train --px 8 --batch 128
/// --steps 5 --warmup 1 --threads 2`.
///
/// Example: memdiff bench train --px 8 --batch 128 --base-channels 64
#[derive(Args, Debug)]
pub struct BenchTrainArgs {
    #[arg(long, default_value_t = 8)]
    px: usize,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    #[arg(long, default_value_t = 64)]
    base_channels: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Diffusion steps of the schedule.
    #[arg(long, default_value_t = 1000)]
    s: usize,
    /// cpu (flex), wgpu, cuda or ndarray.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print every timed step's seconds on stderr.
    #[arg(long)]
    step_times: bool,
}

pub fn run(a: BenchTrainArgs) -> anyhow::Result<()> {
    ensure!(a.steps >= 1, "--steps must be >= 1");
    ensure!(a.batch >= 1, "--batch must be >= 1");
    let kind: backend::DeviceKind = a.device.parse().context("--device")?;
    let device = backend::device(kind).context("--device")?;
    let r = bench::bench_train(
        a.px,
        a.batch,
        a.base_channels,
        a.steps,
        a.warmup,
        a.s,
        &device,
    )
    .context("bench train")?;
    if let Some(b) = r.cpu_busy_before {
        if b > 0.25 {
            eprintln!(
                "warning: {:.0}% of the CPU was busy with other work just before timing; the figures will be distorted",
                100.0 * b
            );
        }
    }
    if a.step_times {
        let s: Vec<String> = r.step_seconds.iter().map(|x| format!("{x:.4}")).collect();
        eprintln!("step seconds (timed): {}", s.join(" "));
        for (i, p) in r.phases.iter().enumerate() {
            eprintln!(
                "step {i}: forward+loss {:.4} s, backward {:.4} s, optimizer (Adam + EMA; on the host for CPU backends) {:.4} s",
                p.forward, p.backward, p.optimizer
            );
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "px": r.px, "batch": r.batch, "base": r.base, "steps": r.steps, "warmup": r.warmup,
            "s_per_step": (r.s_per_step * 1e6).round() / 1e6,
            "s_per_step_min": (r.s_per_step_min * 1e6).round() / 1e6,
            "img_per_s": (r.img_per_s * 1e3).round() / 1e3,
            "params": r.params, "backend": backend::backend_name(kind),
            "threads": rayon::current_num_threads(),
            "cpu_busy_before": r.cpu_busy_before,
        })
    );
    Ok(())
}
