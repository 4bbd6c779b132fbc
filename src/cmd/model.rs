//! `memdiff model info`: facts about the U-Net of docs/METHOD.md §3.
use anyhow::Context;
use clap::{Args, Subcommand};
use memdiff_model::{macs_per_image, param_count, UNetConfig};

/// Facts about the U-Net (parameter count, multiply-adds).
#[derive(Args, Debug)]
pub struct ModelArgs {
    #[command(subcommand)]
    what: ModelWhat,
}

#[derive(Subcommand, Debug)]
enum ModelWhat {
    /// Parameter count and estimated multiply-adds per image.
    ///
    /// Example: memdiff model info --px 8 --base-channels 64
    Info(InfoArgs),
}

#[derive(Args, Debug)]
struct InfoArgs {
    /// Image side (a multiple of 8).
    #[arg(long, default_value_t = 8)]
    px: usize,
    /// Base width b (64 in the papers).
    #[arg(long, default_value_t = 64)]
    base_channels: usize,
    /// Image channels.
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ModelArgs) -> anyhow::Result<()> {
    let ModelWhat::Info(a) = args.what;
    let cfg = UNetConfig::new(a.px, a.channels, a.base_channels);
    cfg.validate().context("U-Net shape")?;
    let params = param_count(&cfg);
    // Cross-check the closed-form count against a built network where a CPU backend exists.
    let built = memdiff_diffusion::backend::device(Default::default())
        .ok()
        .map(|d| cfg.init(&d).map(|m| m.num_params() as u64))
        .transpose()?;
    if let Some(b) = built {
        anyhow::ensure!(
            b == params,
            "internal: built U-Net has {b} parameters, formula {params}"
        );
    }
    let macs = macs_per_image(&cfg);
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "px": a.px, "channels": a.channels, "base_channels": a.base_channels,
                "params": params, "macs_per_image": macs,
                "gflop_per_image_forward": 2.0 * macs as f64 / 1e9,
            })
        );
    } else {
        println!(
            "U-Net px {} x {}, {} channel(s), base width {}",
            a.px, a.px, a.channels, a.base_channels
        );
        println!("trainable parameters: {}", group(params));
        println!(
            "multiply-adds per image (forward): {} ({:.3} G; {:.3} GFLOP; a training step costs about 3x)",
            group(macs),
            macs as f64 / 1e9,
            2.0 * macs as f64 / 1e9
        );
    }
    Ok(())
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
