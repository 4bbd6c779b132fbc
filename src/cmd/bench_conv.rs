//! `memdiff bench conv`: every 3×3 convolution of the U-Net timed several ways on one backend.
use anyhow::Context;
use clap::Args;
use memdiff_diffusion::backend::{self, DeviceKind};
use memdiff_diffusion::bench::bench_conv;

/// Times each 3×3 convolution of the U-Net (forward + both gradients, or forward only) with
/// burn's `conv2d`, the dense product used on maps of side ≤ 2 (`conv3x3_dense`, sides ≤ 4
/// only), im2col + one GEMM from tensor ops (`conv3x3_im2col`) and, on the CPU, the host kernel
/// the U-Net uses from side 4 on (`host`: batched im2col + GEMM with its own backward); checks
/// that all agree. One line per layer, then a JSON line with the totals.
///
/// Example: memdiff bench conv --px 8 --batch 128
#[derive(Args, Debug)]
pub struct BenchConvArgs {
    /// Image side of the U-Net (multiple of 8).
    #[arg(long, default_value_t = 8)]
    pub px: usize,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    #[arg(long, default_value_t = 64)]
    pub base_channels: usize,
    /// Forward pass only (as in sampling); otherwise forward + input and weight gradients.
    #[arg(long)]
    pub forward_only: bool,
    /// Timed runs per layer and way; the fastest counts.
    #[arg(long, default_value_t = 2)]
    pub repeat: usize,
    /// cpu (flex), wgpu, cuda or ndarray.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(a: BenchConvArgs) -> anyhow::Result<()> {
    if a.px == 0 || !a.px.is_multiple_of(8) || a.batch == 0 || a.repeat == 0 || a.base_channels == 0
    {
        anyhow::bail!(
            "--px must be a multiple of 8; --batch, --repeat, --base-channels at least 1"
        );
    }
    let kind: DeviceKind = a.device.parse().context("--device")?;
    let device = backend::device(kind).context("--device")?;
    let rows = bench_conv(
        a.px,
        a.batch,
        a.base_channels,
        &device,
        a.forward_only,
        a.repeat,
    );
    let ms = |s: f64| s * 1e3;
    let (mut tb, mut td, mut ti, mut tbest) = (0.0, 0.0, 0.0, 0.0);
    let opt = |t: Option<f64>| t.map_or("       —".to_string(), |d| format!("{:8.2}", ms(d)));
    for r in &rows {
        println!(
            "c_in {:4} c_out {:4} side {:2}: burn {:8.2} ms  dense {} ms  im2col {:8.2} ms  host {} ms  max rel err {:.1e}",
            r.c_in, r.c_out, r.side, ms(r.burn), opt(r.dense), ms(r.im2col), opt(r.host), r.max_rel_err
        );
        tb += r.burn;
        ti += r.im2col;
        td += r.dense.unwrap_or(r.burn);
        tbest += r
            .burn
            .min(r.im2col)
            .min(r.dense.unwrap_or(f64::MAX))
            .min(r.host.unwrap_or(f64::MAX));
    }
    // None on backends without the host kernel
    let th: Option<f64> = rows.iter().map(|r| r.host).sum();
    println!(
        "{}",
        serde_json::json!({
            "backend": backend::backend_name(kind),
            "px": a.px, "batch": a.batch, "base": a.base_channels, "forward_only": a.forward_only,
            "total_ms": {"burn": ms(tb), "dense_else_burn": ms(td), "im2col": ms(ti), "host": th.map(ms), "best_per_layer": ms(tbest)},
        })
    );
    Ok(())
}
