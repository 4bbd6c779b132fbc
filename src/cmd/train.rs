//! `memdiff train`: train a DDPM U-Net into an output folder (checkpoints, metrics.csv, run.toml,
//! the recipe of the training set).
use anyhow::{bail, Context};
use clap::Args;
use memdiff_data::config::{load_toml, RunRecord};
use memdiff_data::gmm::GmmSpec;
use memdiff_data::mnist::Resize;
use memdiff_data::recipe::DataRecipe;
use memdiff_diffusion::backend::{self, DeviceKind};
use memdiff_diffusion::checkpoint;
use memdiff_diffusion::train::{train_run, RunOptions, TrainConfig};
use memdiff_schedule::{BetaSchedule, Indexing};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Train a DDPM U-Net (docs/METHOD.md §2, §3).
///
/// Settings come from the defaults, then `--config`, then the flags. The output folder gets
/// `metrics.csv` (every step's loss), `val.csv` (with --val-fraction), checkpoints every
/// --checkpoint-every steps and at the end, `run.toml`, and the recipe of the training set in
/// `checkpoint.toml`.
///
/// Examples:
///   memdiff train --data gmm --components 2 --n 1000 --px 8 --steps 200 --epochs 10
///   memdiff train --config configs/train-gmm8.toml --out checkpoints/gmm8
///   memdiff train --out checkpoints/gmm8 --resume
#[derive(Args, Debug, Default)]
pub struct TrainArgs {
    /// TOML with a `[train]` table (TrainConfig keys) and an optional `[data]` table (a data
    /// recipe: kind = "gmm" | "mnist" | "npy").
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Training data: `gmm` (the centred mixture of docs/METHOD.md §1), `mnist` (the shipped 10k subset,
    /// embedded in the binary, or the full files of --mnist-dir / $MEMDIFF_MNIST_DIR; resized to
    /// --px, padded at 32) or a .npy file of images in [0, 1]. The recipe in checkpoint.toml
    /// names a file by its absolute path, so it rebuilds the set from any working folder.
    #[arg(long)]
    pub data: Option<String>,
    /// With --data mnist: folder with the full MNIST files (its train-images-idx3-ubyte[.gz],
    /// 60,000 digits) instead of the shipped subset. Default: $MEMDIFF_MNIST_DIR if set.
    #[arg(long, value_name = "DIR")]
    pub mnist_dir: Option<PathBuf>,
    /// GMM components (centred layout, sigma 0.1, spacing 0.1). Default 1.
    #[arg(long)]
    pub components: Option<usize>,
    /// Number of training images drawn (gmm, mnist), or the first N rows of a .npy. Default 1000.
    #[arg(long)]
    pub n: Option<usize>,
    /// Seed of the data draw (default: --seed).
    #[arg(long)]
    pub data_seed: Option<u64>,
    /// Image side, a multiple of 8. Default 8.
    #[arg(long)]
    pub px: Option<usize>,
    /// Diffusion steps s. Default 200.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Beta schedule: linear, scaled-linear, cosine. Default linear.
    #[arg(long)]
    pub schedule: Option<BetaSchedule>,
    /// Step labels: standard, or papers-shifted (the seeds' code). Default standard.
    #[arg(long)]
    pub indexing: Option<Indexing>,
    /// Epochs. Default 10.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size. Default 128.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Adam learning rate. Default 2e-4.
    #[arg(long)]
    pub lr: Option<f64>,
    /// U-Net base width. Default 64.
    #[arg(long)]
    pub base_channels: Option<usize>,
    /// Seed of the weights and of every draw of the run. Default 0.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep an EMA of the weights with this decay (e.g. 0.999).
    #[arg(long)]
    pub ema: Option<f64>,
    /// Hold out this fraction of the images for a validation loss (papers: 0.1).
    #[arg(long)]
    pub val_fraction: Option<f64>,
    /// Checkpoint every K optimizer steps (0: only at the end). Default 500.
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Stop after this many optimizer steps in total.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Output folder. Default checkpoints/train-<data>-px<px>-s<steps>-seed<seed>, relative to
    /// the working folder (the first log line names it).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// cpu (flex), wgpu, cuda or ndarray.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Continue the run in --out from its checkpoint (settings and data come from it).
    #[arg(long)]
    pub resume: bool,
}

/// A train config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainFile {
    pub train: TrainConfig,
    pub data: Option<DataRecipe>,
}

/// The settings recorded in run.toml.
#[derive(Debug, Serialize)]
struct Settings<'a> {
    train: &'a TrainConfig,
    data: &'a DataRecipe,
    out: String,
    device: String,
    resume: bool,
}

fn apply_flags(cfg: &mut TrainConfig, a: &TrainArgs) {
    macro_rules! set {
        ($($f:ident => $g:ident),*) => { $( if let Some(v) = a.$f.clone() { cfg.$g = v; } )* };
    }
    set!(px => px, steps => diffusion_steps, schedule => schedule, indexing => indexing,
         epochs => epochs, batch => batch, lr => lr, base_channels => base_channels,
         seed => seed, val_fraction => val_fraction, checkpoint_every => checkpoint_every);
    if a.ema.is_some() {
        cfg.ema = a.ema;
    }
    if a.max_steps.is_some() {
        cfg.max_steps = a.max_steps;
    }
}

/// The data recipe the flags ask for (`None`: no data flag given).
fn recipe_from_flags(a: &TrainArgs, cfg: &TrainConfig) -> anyhow::Result<Option<DataRecipe>> {
    let Some(kind) = a.data.as_deref() else {
        if a.components.is_some() || a.n.is_some() || a.data_seed.is_some() {
            // --n / --components without --data mean the default GMM.
            return recipe_for("gmm", a, cfg).map(Some);
        }
        return Ok(None);
    };
    recipe_for(kind, a, cfg).map(Some)
}

fn recipe_for(kind: &str, a: &TrainArgs, cfg: &TrainConfig) -> anyhow::Result<DataRecipe> {
    let n = a.n.unwrap_or(1000);
    let seed = a.data_seed.unwrap_or(cfg.seed);
    Ok(match kind {
        "gmm" => {
            let spec = GmmSpec::centred(cfg.px, a.components.unwrap_or(1), 0.5, 0.1, 0.1)
                .context("--components")?;
            DataRecipe::Gmm { spec, n, seed }
        }
        "mnist" => {
            let resize = if cfg.px == 32 {
                Resize::Pad32
            } else {
                Resize::Bilinear(cfg.px)
            };
            let images = memdiff_data::mnist::locate(None, a.mnist_dir.as_deref())
                .context("--data mnist")?;
            DataRecipe::mnist_subset(images.clone(), resize, n, seed)
                .with_context(|| format!("--data mnist (reading {})", images.display()))?
        }
        path => {
            let p = PathBuf::from(path);
            if !p.exists() {
                bail!("--data {path}: no such file (use gmm, mnist or a .npy of images in [0, 1])");
            }
            DataRecipe::Npy {
                path: p,
                indices: a.n.map(|n| (0..n).collect()),
            }
        }
    })
}

/// `--n`, `--components`, `--data-seed` under `--resume`: the data is the checkpoint's, so a
/// value that differs from it (or that the recipe cannot confirm) is an error naming the flag.
fn check_resume_data(
    a: &TrainArgs,
    data: &DataRecipe,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let drop = |flag: &str, what: String| {
        anyhow::anyhow!(
            "{flag} under --resume: {what}; --resume continues with the data in {}/checkpoint.toml (drop {flag})",
            out.display()
        )
    };
    if let Some(n) = a.n {
        if data.len() != Some(n) {
            let had = match data.len() {
                Some(k) => format!("{k} images"),
                None => "every row of its file".into(),
            };
            return Err(drop("--n", format!("the run trained on {had}, not {n}")));
        }
    }
    if let Some(c) = a.components {
        match data {
            DataRecipe::Gmm { spec, .. } if spec.components.len() == c => {}
            DataRecipe::Gmm { spec, .. } => {
                return Err(drop(
                    "--components",
                    format!(
                        "the run's mixture has {} components, not {c}",
                        spec.components.len()
                    ),
                ))
            }
            _ => {
                return Err(drop(
                    "--components",
                    "the run's data is not a mixture".into(),
                ))
            }
        }
    }
    if let Some(s) = a.data_seed {
        match data {
            DataRecipe::Gmm { seed, .. } if *seed == s => {}
            DataRecipe::Gmm { seed, .. } => {
                return Err(drop(
                    "--data-seed",
                    format!("the run's data seed is {seed}, not {s}"),
                ))
            }
            _ => {
                return Err(drop(
                    "--data-seed",
                    "the run's recipe records its image indices, not a seed".into(),
                ))
            }
        }
    }
    Ok(())
}

fn default_out(recipe: &DataRecipe, cfg: &TrainConfig) -> PathBuf {
    let kind = match recipe {
        DataRecipe::Gmm { spec, .. } => format!("gmm{}", spec.components.len()),
        DataRecipe::Mnist { .. } => "mnist".into(),
        DataRecipe::Npy { .. } => "npy".into(),
    };
    PathBuf::from(format!(
        "checkpoints/train-{kind}-px{}-s{}-seed{}",
        cfg.px, cfg.diffusion_steps, cfg.seed
    ))
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let kind: DeviceKind = a.device.parse().context("--device")?;
    let device = backend::device(kind).context("--device")?;

    let (cfg, recipe, out) = if a.resume {
        let out = a
            .out
            .clone()
            .context("--resume needs --out DIR (the folder of the run to continue)")?;
        let meta =
            checkpoint::load_meta(&out).with_context(|| format!("--resume {}", out.display()))?;
        let mut cfg = meta.train.clone();
        apply_flags(&mut cfg, &a);
        if a.config.is_some() || a.data.is_some() || a.mnist_dir.is_some() {
            bail!("--resume takes the settings and data from {}/checkpoint.toml: drop --config / --data / --mnist-dir (only --epochs, --max-steps and --checkpoint-every may change)", out.display());
        }
        check_resume_data(&a, &meta.data, &out)?;
        (cfg, meta.data, out)
    } else {
        let file: TrainFile = match &a.config {
            Some(p) => load_toml(p)?,
            None => TrainFile::default(),
        };
        let mut cfg = file.train;
        apply_flags(&mut cfg, &a);
        let recipe = match recipe_from_flags(&a, &cfg)? {
            Some(r) => r,
            None => match file.data {
                Some(r) => r,
                None => recipe_for("gmm", &a, &cfg)?,
            },
        };
        if a.mnist_dir.is_some() && a.data.as_deref() != Some("mnist") {
            bail!("--mnist-dir applies to --data mnist only");
        }
        let recipe = recipe.with_absolute_paths().context("training data")?;
        let out = a.out.clone().unwrap_or_else(|| default_out(&recipe, &cfg));
        if checkpoint::latest_step(&out).is_some() {
            bail!(
                "{} already holds a checkpoint: add --resume to continue it, or choose another --out",
                out.display()
            );
        }
        (cfg, recipe, out)
    };
    cfg.validate().context("training settings")?;
    crate::cmd::log_output_folder(&out, a.out.is_none());
    if let DataRecipe::Mnist { images, .. } = &recipe {
        tracing::info!("MNIST digits from {}", images.display());
    }

    let data = recipe.build().context("building the training set")?;
    check_data(&data, &cfg)?;

    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let settings = Settings {
        train: &cfg,
        data: &recipe,
        out: out.display().to_string(),
        device: kind.to_string(),
        resume: a.resume,
    };
    RunRecord::new("train", backend::backend_name(kind), cfg.seed, &settings)
        .write(&out)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("writing run.toml")?;

    tracing::info!(
        "training {} images ({} x {} x {}) for {} epochs on {} into {}",
        data.n,
        data.channels,
        data.h,
        data.w,
        cfg.epochs,
        backend::backend_name(kind),
        out.display()
    );
    let pb = memdiff_data::progress::bar(0, "steps");
    let opts = RunOptions {
        out: out.clone(),
        resume: a.resume,
        device: kind,
        recipe,
    };
    let summary = train_run(&cfg, &data, &device, &opts, Some(&pb));
    pb.finish_and_clear();
    let summary = summary.with_context(|| format!("training into {}", out.display()))?;
    println!(
        "{}",
        serde_json::json!({
            "out": out.display().to_string(),
            "steps": summary.steps,
            "epochs": summary.epochs,
            "final_loss": summary.final_loss,
            "seconds": (summary.seconds * 1000.0).round() / 1000.0,
            "img_per_s": (summary.img_per_s * 10.0).round() / 10.0,
            "resumed_from": summary.resumed_from,
            "backend": backend::backend_name(kind),
        })
    );
    Ok(())
}

fn check_data(data: &memdiff_data::ImageSet, cfg: &TrainConfig) -> anyhow::Result<()> {
    if data.h != cfg.px || data.w != cfg.px || data.channels != cfg.channels {
        bail!(
            "the training images are {} x {} x {} but --px is {} with {} channel(s): pass --px {} (a multiple of 8) or resize the data",
            data.channels,
            data.h,
            data.w,
            cfg.px,
            cfg.channels,
            data.h
        );
    }
    Ok(())
}
