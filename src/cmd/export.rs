//! `memdiff export`: a checkpoint's weights as safetensors with PyTorch's tensor names.
use anyhow::Context;
use clap::Args;
use memdiff_diffusion::{backend, checkpoint, export};
use std::path::PathBuf;

/// Export a checkpoint's weights as safetensors (PyTorch names and layouts).
///
/// The tensor names are those of `torch_ref.py`'s U-Net (`inc.conv1.weight`,
/// `sa1.mha.in_proj_weight`, `sa1.ff.1.weight`, ...), so in PyTorch:
/// `model.load_state_dict(safetensors.torch.load_file("model.safetensors"))`.
///
/// Example: memdiff export --checkpoint checkpoints/gmm8 --out gmm8.safetensors
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Folder of a `memdiff train` run.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// Export the EMA weights instead of the raw ones.
    #[arg(long)]
    ema: bool,
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    let device = backend::device(Default::default()).context("export needs the cpu backend")?;
    let (model, meta) = checkpoint::load(&a.checkpoint, &device, a.ema)
        .with_context(|| format!("loading {}", a.checkpoint.display()))?;
    let cfg = meta.train.unet();
    let md = [
        ("memdiff_version", meta.memdiff_version.clone()),
        ("step", meta.step.to_string()),
        ("px", cfg.px.to_string()),
        ("channels", cfg.channels.to_string()),
        ("base_channels", cfg.base_channels.to_string()),
        ("weights", if a.ema { "ema" } else { "raw" }.to_string()),
    ];
    export::export_safetensors(&model, &a.out, &md)?;
    println!(
        "{}",
        serde_json::json!({
            "out": a.out.display().to_string(),
            "params": model.num_params(),
            "step": meta.step,
            "ema": a.ema,
        })
    );
    Ok(())
}
