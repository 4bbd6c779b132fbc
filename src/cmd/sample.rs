//! `memdiff sample`: images from a trained checkpoint (ancestral DDPM or DDIM), as a float32
//! `.npy` `(n, channels, px, px)` in `[0, 1]`, an optional PNG grid, a folder of one PNG per
//! image and a `.npz` (`arr_0`, `(n, h, w, c)` uint8) for the FID tools, and `<out>.run.toml`.
use anyhow::{bail, Context};
use clap::Args;
use memdiff_data::config::RunRecord;
use memdiff_data::progress;
use memdiff_diffusion::backend;
use memdiff_diffusion::sample::{self, Form, SampleOptions, Sampler, TimestepSpacing};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Sample images from a trained checkpoint (docs/METHOD.md §2).
///
/// `ddpm` (default) runs ancestral sampling over all s steps the model was trained with, in
/// the indexing it was trained with; `ddim` runs K <= s steps (--sampling-steps, default s) with
/// a timestep spacing and eta (0: deterministic). Every step predicts x0, clips it to [-1, 1]
/// and steps from it (--form clipped-x0, the default; --form eps keeps the seeds' unclipped
/// form, docs/METHOD.md §2). Images are clamped to [-1, 1] and mapped to [0, 1]. The same
/// --seed gives the same images on one backend, whatever --batch.
///
/// Examples:
///   memdiff sample --checkpoint checkpoints/gmm8 --n 64 --out G.npy --png G.png
///   memdiff sample --checkpoint run --n 1000 --out G.npy --png-dir G-png --npz G.npz
///   memdiff sample --checkpoint checkpoints/gmm8 --sampler ddim --sampling-steps 50 --out G.npy
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Folder of a `memdiff train` run (its checkpoint.toml).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// ddpm (ancestral, all s steps) or ddim.
    #[arg(long, default_value = "ddpm")]
    pub sampler: Sampler,
    /// DDIM steps K (1..=s; default s). Not allowed with ddpm unless equal to s.
    #[arg(long)]
    pub sampling_steps: Option<usize>,
    /// DDIM timestep spacing: trailing, leading or linspace (as in diffusers).
    #[arg(long, default_value = "trailing")]
    pub spacing: TimestepSpacing,
    /// DDIM eta in [0, 1]: 0 deterministic, 1 the posterior variance.
    #[arg(long, default_value_t = 0.0)]
    pub eta: f64,
    /// clipped-x0 (predict x0, clip to [-1, 1], step from it) or eps (the seeds' form).
    #[arg(long, default_value = "clipped-x0")]
    pub form: Form,
    /// Seed of the noise (image i uses the ChaCha8 stream (seed, i)).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images per network call.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Use the checkpoint's EMA weights (the run must have been trained with --ema).
    #[arg(long)]
    pub ema: bool,
    /// Do not clamp to [-1, 1] before mapping to [0, 1] (values may leave [0, 1]).
    #[arg(long)]
    pub no_clamp: bool,
    /// cpu (flex), wgpu, cuda or ndarray.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Output .npy (float32, (n, channels, px, px), values in [0, 1]).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write a PNG grid of the images here (each image at least 64 px a side).
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Images per row of the PNG grid (0: about square).
    #[arg(long, default_value_t = 0, requires = "png")]
    pub png_cols: usize,
    /// Also write one PNG per image into this new (or empty) folder, 00000.png, 00001.png, ...
    /// (bytes round(255 v), greyscale or RGB): what clean-fid, torch-fidelity and pytorch-fid
    /// read.
    #[arg(long, value_name = "DIR")]
    pub png_dir: Option<PathBuf>,
    /// Also write the images as a .npz with arr_0 of shape (n, h, w, c), uint8 (the FID tools'
    /// array form).
    #[arg(long, value_name = "FILE")]
    pub npz: Option<PathBuf>,
}

/// What `<out>.run.toml` records.
#[derive(Debug, Serialize)]
struct Settings<'a> {
    checkpoint: String,
    checkpoint_step: usize,
    n: usize,
    ema: bool,
    diffusion_steps: usize,
    schedule: String,
    sample: &'a SampleOptions,
    out: String,
    png: Option<String>,
    png_dir: Option<String>,
    npz: Option<String>,
    device: String,
}

/// Checks that `path`'s folder exists, so that a bad --out fails before minutes of sampling.
pub fn check_out_dir(flag: &str, path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "{flag} {}: folder {} does not exist (create it first)",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

pub fn run(a: SampleArgs) -> anyhow::Result<()> {
    if a.n == 0 {
        bail!("--n 0: ask for at least one image");
    }
    check_out_dir("--out", &a.out)?;
    if let Some(p) = &a.png {
        check_out_dir("--png", p)?;
    }
    if let Some(p) = &a.npz {
        check_out_dir("--npz", p)?;
    }
    if let Some(d) = &a.png_dir {
        check_out_dir("--png-dir", d)?;
        if d.is_file() || std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some()) {
            bail!(
                "--png-dir {}: it exists and is not an empty folder; give a new or empty folder",
                d.display()
            );
        }
    }
    let ck = memdiff_diffusion::audit::open_checkpoint(&a.checkpoint, &a.device, a.ema)?;
    let (kind, device, model, meta, schedule) =
        (ck.kind, ck.device, ck.model, ck.meta, ck.schedule);
    let opts = SampleOptions {
        sampler: a.sampler,
        sampling_steps: a.sampling_steps,
        spacing: a.spacing,
        eta: a.eta,
        batch: a.batch,
        indexing: meta.train.indexing,
        clamp: !a.no_clamp,
        form: a.form,
    };
    // Validate the options before loading anything else or starting the bar.
    sample::plan(&schedule, &opts)?;

    let pb = progress::bar(sample::evaluations(a.n, &schedule, &opts), "network evals");
    let start = Instant::now();
    let images = sample::sample(&model, &schedule, a.n, &opts, a.seed, &device, Some(&pb));
    pb.finish_and_clear();
    let images = images.with_context(|| format!("sampling {}", a.checkpoint.display()))?;
    let seconds = start.elapsed().as_secs_f64();

    memdiff_data::npy::write_npy(&a.out, &images)
        .with_context(|| format!("writing --out {}", a.out.display()))?;
    if let Some(p) = &a.png {
        memdiff_data::png::write_grid(p, &images, a.png_cols, 0)
            .with_context(|| format!("writing --png {}", p.display()))?;
    }
    if let Some(d) = &a.png_dir {
        memdiff_data::export::write_png_dir(d, &images)
            .with_context(|| format!("writing --png-dir {}", d.display()))?;
    }
    if let Some(p) = &a.npz {
        memdiff_data::export::write_npz(p, &images)
            .with_context(|| format!("writing --npz {}", p.display()))?;
    }
    let settings = Settings {
        checkpoint: a.checkpoint.display().to_string(),
        checkpoint_step: meta.step,
        n: a.n,
        ema: a.ema,
        diffusion_steps: schedule.steps,
        schedule: schedule.kind.to_string(),
        sample: &opts,
        out: a.out.display().to_string(),
        png: a.png.as_ref().map(|p| p.display().to_string()),
        png_dir: a.png_dir.as_ref().map(|p| p.display().to_string()),
        npz: a.npz.as_ref().map(|p| p.display().to_string()),
        device: kind.to_string(),
    };
    let record = RunRecord::new("sample", backend::backend_name(kind), a.seed, &settings);
    let text = toml::to_string_pretty(&record).context("serialising run.toml")?;
    let rt = memdiff_data::config::record_path(&a.out);
    memdiff_data::atomic::write_bytes(&rt, text.as_bytes())
        .with_context(|| format!("writing {}", rt.display()))?;

    println!(
        "{}",
        serde_json::json!({
            "out": a.out.display().to_string(),
            "n": images.n,
            "shape": [images.n, images.channels, images.h, images.w],
            "sampler": a.sampler.to_string(),
            "form": a.form.to_string(),
            "network_steps": sample::plan(&schedule, &opts)?.len(),
            "diffusion_steps": schedule.steps,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "img_per_s": (a.n as f64 / seconds * 100.0).round() / 100.0,
            "backend": backend::backend_name(kind),
        })
    );
    Ok(())
}
