//! `memdiff train`: train a DDPM U-Net into an output folder (checkpoints, metrics.csv, run.toml,
//! the recipe of the training set).
use anyhow::{bail, Context};
use clap::Args;
use memdiff_data::config::{load_toml, RunRecord};
use memdiff_data::gmm::GmmSpec;
use memdiff_data::mnist::Resize;
use memdiff_data::progress::ProgressBar;
use memdiff_data::recipe::DataRecipe;
use memdiff_diffusion::backend::{self, DeviceKind};
use memdiff_diffusion::checkpoint;
use memdiff_diffusion::sample::{describe, sample};
use memdiff_diffusion::train::{train_run_with_snapshots, RunOptions, TrainConfig, Trainer};
use memdiff_experiments::config::EvalAt;
use memdiff_experiments::probe::{self, Probe, ProbeSettings};
use memdiff_schedule::Schedule;
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
    /// recipe: kind = "gmm" | "mnist" | "npy" | "images").
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Training data: `gmm` (the centred mixture of docs/METHOD.md §1), `mnist` (the shipped 10k subset,
    /// embedded in the binary, or the full files of --mnist-dir / $MEMDIFF_MNIST_DIR; resized to
    /// --px, padded at 32) or your own images: a folder of PNG / JPEG files, a .npz, .npy or
    /// IDX file (greyscale or RGB; the network takes the data's channels). The recipe in
    /// checkpoint.toml names a file or folder by its absolute path and its content hash, so it
    /// rebuilds the set from any working folder and refuses a changed one.
    #[arg(long)]
    pub data: Option<String>,
    #[command(flatten)]
    pub read: super::ReadArgs,
    /// With --data mnist: folder with the full MNIST files (its train-images-idx3-ubyte[.gz],
    /// 60,000 digits) instead of the shipped subset. Default: $MEMDIFF_MNIST_DIR if set.
    #[arg(long, value_name = "DIR")]
    pub mnist_dir: Option<PathBuf>,
    /// GMM components (centred layout, sigma 0.1, spacing 0.1). Default 1.
    #[arg(long)]
    pub components: Option<usize>,
    /// Number of training images drawn (gmm, mnist, your own images: a seeded draw, the rest
    /// held out for --eval-at and the audit's O). Default 1000 (gmm, mnist), all the images of
    /// a file or folder.
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
    /// Measure the network along training at these optimizer steps: "log:A..B:K" (K steps
    /// evenly spaced in log) or a list "500,1000,4000"; the last step is always added. Each
    /// snapshot samples the current weights (the EMA weights with --ema) and writes a row of
    /// trajectory.csv: f_mem (d1/d2 < 1/3) with its Wilson interval, E_TG, E_OG, Δ, Δ_U, E_OG
    /// against the oracle's on the same held-out O, and the verdict (docs/METHOD.md §7). Needs
    /// held-out data (O is drawn from the mixture, or from the images of the file or folder
    /// that are not trained on: give --n below their number).
    /// Also `[eval] at` in --config.
    #[arg(long, value_name = "STEPS")]
    pub eval_at: Option<String>,
    /// Samples generated at each snapshot. Default 100.
    #[arg(long, value_name = "G")]
    pub eval_generate: Option<usize>,
    /// Size of the held-out reference set O. Default 1000.
    #[arg(long, value_name = "N")]
    pub eval_original: Option<usize>,
    /// Keep the weights of every snapshot as a checkpoint folder under
    /// OUT/snapshots/step-SSSSSSSS/ (`memdiff eval --checkpoint` audits it). Off by default.
    #[arg(long)]
    pub keep_snapshots: bool,
}

/// A train config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainFile {
    pub train: TrainConfig,
    pub data: Option<DataRecipe>,
    /// Measuring along training (`memdiff_experiments::probe::ProbeSettings`).
    pub eval: ProbeSettings,
}

/// The resolved measuring settings of a run, kept in OUT/eval.toml so that --resume measures
/// the rest of the run as the start did.
const EVAL_FILE: &str = "eval.toml";

/// The settings recorded in run.toml.
#[derive(Debug, Serialize)]
struct Settings<'a> {
    train: &'a TrainConfig,
    data: &'a DataRecipe,
    eval: Option<&'a ProbeSettings>,
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
    if a.read.any() && matches!(kind, "gmm" | "mnist") {
        bail!("--layout / --npz-array / --recursive / --fit read image files: they do not apply to --data {kind}");
    }
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
                bail!("--data {path}: no such file or folder (use gmm, mnist, a folder of PNG / JPEG images, or a .npz / .npy / IDX file)");
            }
            DataRecipe::images_subset(&p, a.read.options(Some(cfg.px)), a.n, seed)
                .with_context(|| format!("--data {path}"))?
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
        DataRecipe::Images { .. } => "images".into(),
    };
    PathBuf::from(format!(
        "checkpoints/train-{kind}-px{}-s{}-seed{}",
        cfg.px, cfg.diffusion_steps, cfg.seed
    ))
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let kind: DeviceKind = a.device.parse().context("--device")?;
    let device = backend::device(kind).context("--device")?;

    let (mut cfg, recipe, out, mut eval, resumed_at) = if a.resume {
        let out = a
            .out
            .clone()
            .context("--resume needs --out DIR (the folder of the run to continue)")?;
        let meta =
            checkpoint::load_meta(&out).with_context(|| format!("--resume {}", out.display()))?;
        let mut cfg = meta.train.clone();
        apply_flags(&mut cfg, &a);
        if a.config.is_some() || a.data.is_some() || a.mnist_dir.is_some() || a.read.any() {
            bail!("--resume takes the settings and data from {}/checkpoint.toml: drop --config / --data / --mnist-dir / the reading flags (only --epochs, --max-steps and --checkpoint-every may change)", out.display());
        }
        check_resume_data(&a, &meta.data, &out)?;
        if a.eval_at.is_some()
            || a.eval_generate.is_some()
            || a.eval_original.is_some()
            || a.keep_snapshots
        {
            bail!("--resume measures the rest of the run as its start did ({}/{EVAL_FILE}): drop --eval-at / --eval-generate / --eval-original / --keep-snapshots", out.display());
        }
        let eval_path = out.join(EVAL_FILE);
        let eval = if eval_path.exists() {
            load_toml::<ProbeSettings>(&eval_path)?
        } else {
            ProbeSettings::default()
        };
        (cfg, meta.data, out, eval, Some(meta.step))
    } else {
        let file: TrainFile = match &a.config {
            Some(p) => load_toml(p)?,
            None => TrainFile::default(),
        };
        let mut cfg = file.train;
        apply_flags(&mut cfg, &a);
        let mut eval = file.eval;
        apply_eval_flags(&mut eval, &a)?;
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
        (cfg, recipe, out, eval, None)
    };
    cfg.validate().context("training settings")?;
    crate::cmd::log_output_folder(&out, a.out.is_none());
    if let DataRecipe::Mnist { images, .. } = &recipe {
        tracing::info!("MNIST digits from {}", images.display());
    }

    let data = recipe.build().context("building the training set")?;
    if matches!(recipe, DataRecipe::Images { .. } | DataRecipe::Npy { .. }) && !a.resume {
        // Your own images: the network takes their channels (1 greyscale, 3 RGB).
        cfg.channels = data.channels;
    }
    check_data(&data, &cfg)?;
    let snapshots = eval
        .steps(cfg.total_steps(cfg.split(data.n).0))
        .context("measuring along training")?;
    // Recorded resolved: the seed, and the step labels the network was trained with.
    eval.seed = Some(eval.seed.unwrap_or(cfg.seed));
    eval.sample.indexing = cfg.indexing;

    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let settings = Settings {
        train: &cfg,
        data: &recipe,
        eval: snapshots.as_ref().map(|_| &eval),
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
    let mut watch = match &snapshots {
        Some(at) => Some(Watch::new(
            &eval, &cfg, &recipe, &data, &out, resumed_at, at,
        )?),
        None => None,
    };
    let pb = memdiff_data::progress::bar(0, "steps");
    let opts = RunOptions {
        out: out.clone(),
        resume: a.resume,
        device: kind,
        recipe,
    };
    let at = snapshots.unwrap_or_default();
    let summary = train_run_with_snapshots(
        &cfg,
        &data,
        &device,
        &opts,
        Some(&pb),
        &at,
        eval.keep_weights,
        &mut |tr: &Trainer| match watch.as_mut() {
            Some(w) => w.measure(tr, &device, &pb),
            None => Ok(()),
        },
    );
    pb.finish_and_clear();
    let summary = summary.with_context(|| format!("training into {}", out.display()))?;
    let last = watch.as_ref().and_then(|w| w.rows.last());
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
            "trajectory": watch.as_ref().map(|w| w.path.display().to_string()),
            "f_mem": last.map(|r| r.f_mem),
            "e_og_vs_oracle": last.map(|r| r.e_og_vs_oracle),
            "verdict": last.map(|r| r.verdict.clone()),
        })
    );
    Ok(())
}

fn check_data(data: &memdiff_data::ImageSet, cfg: &TrainConfig) -> anyhow::Result<()> {
    if data.h != cfg.px || data.w != cfg.px || data.channels != cfg.channels {
        bail!(
            "the training images are {} x {} x {} but --px is {} with {} channel(s): pass --px {} (a multiple of 8), or bring your own images to --px with --fit resize|crop",
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

/// The `--eval-*` flags over the `[eval]` table.
fn apply_eval_flags(e: &mut ProbeSettings, a: &TrainArgs) -> anyhow::Result<()> {
    if let Some(t) = &a.eval_at {
        e.at = Some(parse_eval_at(t)?);
    }
    if let Some(g) = a.eval_generate {
        e.generated = g;
    }
    if let Some(n) = a.eval_original {
        e.n_original = n;
    }
    if a.keep_snapshots {
        e.keep_weights = true;
    }
    if e.at.is_none()
        && (a.eval_generate.is_some() || a.eval_original.is_some() || a.keep_snapshots)
    {
        bail!("--eval-generate / --eval-original / --keep-snapshots measure along training: add --eval-at STEPS");
    }
    Ok(())
}

/// `--eval-at`: "log:A..B:K" or a comma-separated list of optimizer steps.
fn parse_eval_at(t: &str) -> anyhow::Result<EvalAt> {
    if t.trim_start().starts_with("log:") {
        return Ok(EvalAt::Text(t.trim().to_string()));
    }
    t.split(',')
        .map(|x| x.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map(EvalAt::List)
        .map_err(|_| anyhow::anyhow!("--eval-at \"{t}\" is not a schedule: write \"log:A..B:K\" (e.g. log:100..20000:10) or a list of optimizer steps (e.g. 500,1000,4000)"))
}

/// The measuring side of a run: the probe (held-out O, oracle), the sampler and the rows of
/// trajectory.csv so far.
struct Watch {
    probe: Probe,
    schedule: Schedule,
    sample: memdiff_schedule::SampleOptions,
    sampler: String,
    generated: usize,
    seed: u64,
    path: PathBuf,
    rows: Vec<probe::ProbeRow>,
    start: std::time::Instant,
    measuring: f64,
}

impl Watch {
    fn new(
        eval: &ProbeSettings,
        cfg: &TrainConfig,
        recipe: &DataRecipe,
        data: &memdiff_data::ImageSet,
        out: &std::path::Path,
        resumed_at: Option<usize>,
        at: &[usize],
    ) -> anyhow::Result<Self> {
        let seed = eval.seed.unwrap_or(cfg.seed);
        let (o, oracle) = probe::reference_sets(recipe, eval.n_original, eval.generated, seed)
            .context("measuring along training")?;
        let probe =
            Probe::new(&o, data, &oracle, eval, seed).context("measuring along training")?;
        let schedule = Schedule::new(cfg.schedule, cfg.diffusion_steps)?;
        let sample = eval.sample.clone();
        let path = out.join("trajectory.csv");
        // A resumed run keeps the rows up to its checkpoint and measures the rest again.
        let rows = match resumed_at {
            Some(step) => probe::rows_up_to(&path, step)?,
            None => {
                memdiff_data::atomic::write_bytes(
                    &out.join(EVAL_FILE),
                    toml::to_string_pretty(eval)?.as_bytes(),
                )
                .with_context(|| format!("writing {}/{EVAL_FILE}", out.display()))?;
                Vec::new()
            }
        };
        probe::write_rows(&path, &rows)?;
        tracing::info!(
            "measuring at {} snapshots ({} samples each, O of {} held-out images, oracle E_OG {:.4}) into {}",
            at.len(),
            eval.generated,
            o.n,
            probe.e_og_oracle(),
            path.display()
        );
        Ok(Self {
            sampler: describe(&sample, &schedule),
            probe,
            schedule,
            sample,
            generated: eval.generated,
            seed: memdiff_data::seed::derive_seed(seed, "probe-sample", &[]),
            path,
            rows,
            start: std::time::Instant::now(),
            measuring: 0.0,
        })
    }

    fn measure(
        &mut self,
        tr: &Trainer,
        device: &backend::Device,
        pb: &ProgressBar,
    ) -> Result<(), memdiff_diffusion::train::SnapshotError> {
        let s0 = std::time::Instant::now();
        let trained = s0.duration_since(self.start).as_secs_f64() - self.measuring;
        let model = tr.sampling_model();
        let g = sample(
            &model,
            &self.schedule,
            self.generated,
            &self.sample,
            self.seed,
            device,
            None,
        )?;
        let row = self
            .probe
            .measure(tr.step, &g, &self.sampler, tr.recent_loss(), trained)?;
        pb.suspend(|| {
            tracing::info!(
                "step {}: f_mem {:.2} [{:.2}, {:.2}], E_OG / oracle {:.2}, {}",
                row.train_step,
                row.f_mem,
                row.f_mem_lo,
                row.f_mem_hi,
                row.e_og_vs_oracle,
                row.verdict
            )
        });
        self.rows.push(row);
        probe::write_rows(&self.path, &self.rows)?;
        self.measuring += s0.elapsed().as_secs_f64();
        Ok(())
    }
}
