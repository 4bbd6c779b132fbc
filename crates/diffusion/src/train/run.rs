//! Runs: in memory with snapshots (the sweep) and into an output folder with metrics.csv,
//! checkpoints, snapshots and exact resume (`memdiff train`).

use super::*;
use crate::backend::{backend_name, DeviceKind};
use crate::checkpoint::{self, CheckpointMeta};
use burn::tensor::Device;
use indicatif::ProgressBar;
use memdiff_data::recipe::DataRecipe;
use memdiff_data::ImageSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn img_per_s(imgs: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        imgs as f64 / secs
    } else {
        0.0
    }
}

fn show(pb: Option<&ProgressBar>, tr: &Trainer, loss: f32, rate: f64) {
    if let Some(pb) = pb {
        pb.set_position(tr.step as u64);
        pb.set_message(format!(
            "epoch {} loss {loss:.4} {rate:.0} img/s",
            tr.epoch().min(tr.cfg.epochs.max(1) - 1) + 1
        ));
    }
}

/// Trains a fresh model on `data` (pixels in `[0, 1]`) with no files written. `device` is a
/// plain device ([`crate::backend::device`]).
pub fn train_in_memory(
    cfg: &TrainConfig,
    data: &ImageSet,
    device: &Device,
    progress: Option<&ProgressBar>,
) -> Result<Trained, TrainError> {
    train_in_memory_with_snapshots(cfg, data, device, progress, &[], &mut |_| Ok(()))
}

/// A non-finite loss of an in-memory training says that no weights were kept.
pub(crate) fn nothing_kept(e: TrainError) -> TrainError {
    match e {
        TrainError::NonFinite {
            loss,
            step,
            epoch,
            kept,
        } => TrainError::NonFinite {
            loss,
            step,
            epoch,
            kept: if kept.is_empty() {
                "no weights were kept (in-memory training)".into()
            } else {
                format!("{kept}; no weights were kept (in-memory training)")
            },
        },
        e => e,
    }
}

/// Error of a snapshot callback.
pub type SnapshotError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// [`train_in_memory`], calling `on_snapshot` with the trainer right after each optimizer step
/// listed in `at` (sorted; steps beyond the run are never reached). The callback may read the
/// weights ([`Trainer::model`], [`Trainer::ema_model`]) but cannot change them, and it draws
/// no randomness from the training streams, so the loss trace is the same with or without
/// snapshots (tested bit for bit).
pub fn train_in_memory_with_snapshots(
    cfg: &TrainConfig,
    data: &ImageSet,
    device: &Device,
    progress: Option<&ProgressBar>,
    at: &[usize],
    on_snapshot: &mut dyn FnMut(&Trainer) -> Result<(), SnapshotError>,
) -> Result<Trained, TrainError> {
    let mut tr = Trainer::new(cfg, data, device)?;
    if let Some(pb) = progress {
        pb.set_length(tr.total_steps() as u64);
    }
    let t0 = Instant::now();
    let mut imgs = 0;
    let mut snaps = Snapshots::new(at);
    while !tr.is_done() {
        let loss = tr.step().map_err(nothing_kept)?;
        imgs += cfg.batch.min(tr.n_train);
        show(
            progress,
            &tr,
            loss,
            img_per_s(imgs, t0.elapsed().as_secs_f64() - snaps.seconds),
        );
        snaps.at_step(tr.step, || snapshot(on_snapshot, &tr))?;
    }
    let seconds = t0.elapsed().as_secs_f64() - snaps.seconds;
    Ok(Trained {
        model: tr.model(),
        ema: tr.ema_model(),
        losses: tr.losses,
        val_losses: tr.val_losses,
        seconds,
    })
}

/// The snapshot steps as training passes them, and the time spent at them (left out of the
/// training rates).
pub(crate) struct Snapshots<'a> {
    at: &'a [usize],
    next: usize,
    seconds: f64,
}

impl<'a> Snapshots<'a> {
    pub(crate) fn new(at: &'a [usize]) -> Self {
        Self {
            at,
            next: 0,
            seconds: 0.0,
        }
    }

    /// Runs `f` if the trainer's step is listed (listed steps already passed, such as those
    /// before a resumed checkpoint, are skipped), timing it.
    pub(crate) fn at_step(
        &mut self,
        step: usize,
        f: impl FnOnce() -> Result<(), TrainError>,
    ) -> Result<(), TrainError> {
        while self.at.get(self.next).is_some_and(|&s| s < step) {
            self.next += 1;
        }
        if self.at.get(self.next) == Some(&step) {
            self.next += 1;
            let s0 = Instant::now();
            f()?;
            self.seconds += s0.elapsed().as_secs_f64();
        }
        Ok(())
    }
}

fn snapshot(
    on_snapshot: &mut dyn FnMut(&Trainer) -> Result<(), SnapshotError>,
    tr: &Trainer,
) -> Result<(), TrainError> {
    on_snapshot(tr).map_err(|e| TrainError::Snapshot {
        step: tr.step,
        message: e.to_string(),
    })
}

/// Where and how [`train_run`] writes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder (created).
    pub out: PathBuf,
    /// Continue from the checkpoint in `out`.
    pub resume: bool,
    pub device: DeviceKind,
    /// How to rebuild the training set (recorded in every checkpoint).
    pub recipe: DataRecipe,
}

/// What [`train_run`] did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub steps: usize,
    pub epochs: usize,
    pub final_loss: Option<f32>,
    pub seconds: f64,
    pub img_per_s: f64,
    pub resumed_from: Option<usize>,
}

/// Test hook: sleep this many milliseconds after every step (lets a test kill the process in
/// the middle of a run).
const DELAY_ENV: &str = "MEMDIFF_TRAIN_STEP_DELAY_MS";

/// The checkpointed run behind `memdiff train`: `metrics.csv` (one row per optimizer step,
/// appended as it goes), `val.csv` with a validation split, a checkpoint every
/// `checkpoint_every` steps and at the end. With `resume`, continues from the checkpoint in
/// `out` so that the loss trace equals the uninterrupted run's exactly (same backend).
pub fn train_run(
    cfg: &TrainConfig,
    data: &ImageSet,
    device: &Device,
    opts: &RunOptions,
    progress: Option<&ProgressBar>,
) -> Result<RunSummary, TrainError> {
    train_run_with_snapshots(cfg, data, device, opts, progress, &[], false, &mut |_| {
        Ok(())
    })
}

/// Folder of the checkpoint kept at snapshot `step` by [`train_run_with_snapshots`] (a complete
/// checkpoint folder: `memdiff eval --checkpoint` and `memdiff sample` read it).
pub fn snapshot_dir(out: &Path, step: usize) -> PathBuf {
    out.join("snapshots").join(format!("step-{step:08}"))
}

/// [`train_run`], calling `on_snapshot` with the trainer right after each optimizer step listed
/// in `at` (sorted; steps at or before a resumed checkpoint are skipped), before that step's
/// checkpoint is written: a run killed after measuring a snapshot but before checkpointing it
/// measures it again on resume. With `keep_weights`, each snapshot's weights are also saved as a
/// checkpoint in [`snapshot_dir`]. As with [`train_in_memory_with_snapshots`], the callback
/// cannot change the weights or the training streams; its time is left out of the rates.
#[allow(clippy::too_many_arguments)]
pub fn train_run_with_snapshots(
    cfg: &TrainConfig,
    data: &ImageSet,
    device: &Device,
    opts: &RunOptions,
    progress: Option<&ProgressBar>,
    at: &[usize],
    keep_weights: bool,
    on_snapshot: &mut dyn FnMut(&Trainer) -> Result<(), SnapshotError>,
) -> Result<RunSummary, TrainError> {
    cfg.validate()?;
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|source| TrainError::Io {
        path: out.clone(),
        source,
    })?;
    let metrics = out.join("metrics.csv");
    let val_path = out.join("val.csv");
    let mut tr = if opts.resume {
        let meta = checkpoint::load_meta(out)?;
        // Only how long to train and how often to checkpoint may change on resume.
        let mut saved = meta.train.clone();
        saved.epochs = cfg.epochs;
        saved.max_steps = cfg.max_steps;
        saved.checkpoint_every = cfg.checkpoint_every;
        if &saved != cfg {
            return Err(TrainError::Resume(format!(
                "--resume: the settings differ from the checkpoint's in {} ({}); resume with the same settings (they are in {}/checkpoint.toml) or start a new --out",
                out.display(),
                checkpoint::diff_fields(&saved, cfg),
                out.display()
            )));
        }
        if meta.backend != backend_name(opts.device) {
            tracing::warn!(
                "resuming a {} checkpoint on {}: the loss trace will not match the uninterrupted run bit for bit",
                meta.backend,
                backend_name(opts.device)
            );
        }
        let (_, state) = checkpoint::load_state(out)?;
        let losses = read_losses(&metrics, state.step)?;
        let (n_train, _) = cfg.split(data.n);
        let per_epoch = cfg.steps_per_epoch(n_train);
        let val = if val_path.exists() {
            read_losses(&val_path, state.step / per_epoch)?
        } else {
            Vec::new()
        };
        Trainer::from_state(cfg, data, device, state, losses, val)?
    } else {
        Trainer::new(cfg, data, device)?
    };
    let resumed_from = opts.resume.then_some(tr.step);
    // metrics.csv holds exactly the steps done so far, then grows line by line.
    let spe = tr.steps_per_epoch();
    write_losses(&metrics, &tr.losses, Some(spe))?;
    if tr.n_val > 0 {
        write_losses(&val_path, &tr.val_losses, None)?;
    }
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&metrics)
        .map_err(|source| TrainError::Io {
            path: metrics.clone(),
            source,
        })?;
    let delay = std::env::var(DELAY_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let meta_for = |tr: &Trainer| CheckpointMeta {
        train: cfg.clone(),
        data: opts.recipe.clone(),
        step: tr.step,
        epoch: tr.step / tr.steps_per_epoch(),
        n_train: tr.n_train,
        backend: backend_name(opts.device).to_string(),
        memdiff_version: env!("CARGO_PKG_VERSION").to_string(),
        rng: checkpoint::RngState {
            scheme: "chacha8 per (seed, epoch) batch order and per (seed, step) t and eps".into(),
            seed: cfg.seed,
            next_step: tr.step,
        },
        finished: tr.is_done(),
    };
    if let Some(pb) = progress {
        pb.set_length(tr.total_steps() as u64);
        pb.set_position(tr.step as u64);
    }
    let t0 = Instant::now();
    let start_step = tr.step;
    let mut imgs = 0usize;
    let mut last_ckpt = checkpoint::latest_step(out);
    let mut snaps = Snapshots::new(at);
    while !tr.is_done() {
        let loss = match tr.step() {
            Ok(l) => l,
            Err(TrainError::NonFinite {
                loss, step, epoch, ..
            }) => {
                let kept = match last_ckpt {
                    Some(s) => format!(
                        "the last good checkpoint (step {s}) is kept in {}",
                        out.display()
                    ),
                    None => "no checkpoint had been written yet".to_string(),
                };
                return Err(TrainError::NonFinite {
                    loss,
                    step,
                    epoch,
                    kept,
                });
            }
            Err(e) => return Err(e),
        };
        writeln!(log, "{},{},{}", tr.step, (tr.step - 1) / spe + 1, loss)
            .and_then(|_| log.flush())
            .map_err(|source| TrainError::Io {
                path: metrics.clone(),
                source,
            })?;
        if tr.n_val > 0 && tr.step.is_multiple_of(spe) {
            write_losses(&val_path, &tr.val_losses, None)?;
        }
        imgs += cfg.batch.min(tr.n_train);
        show(
            progress,
            &tr,
            loss,
            img_per_s(imgs, t0.elapsed().as_secs_f64() - snaps.seconds),
        );
        snaps.at_step(tr.step, || {
            if keep_weights {
                let dir = snapshot_dir(out, tr.step);
                std::fs::create_dir_all(&dir).map_err(|source| TrainError::Io {
                    path: dir.clone(),
                    source,
                })?;
                checkpoint::save(&dir, &meta_for(&tr), &tr.state(), &tr.shapes())?;
            }
            snapshot(on_snapshot, &tr)
        })?;
        let due = cfg.checkpoint_every > 0 && tr.step.is_multiple_of(cfg.checkpoint_every);
        if due && !tr.is_done() {
            checkpoint::save(out, &meta_for(&tr), &tr.state(), &tr.shapes())?;
            last_ckpt = Some(tr.step);
        }
        if let Some(ms) = delay {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
    let seconds = t0.elapsed().as_secs_f64() - snaps.seconds;
    if last_ckpt != Some(tr.step) {
        checkpoint::save(out, &meta_for(&tr), &tr.state(), &tr.shapes())?;
    }
    // The final file, complete and written atomically.
    write_losses(&metrics, &tr.losses, Some(spe))?;
    Ok(RunSummary {
        steps: tr.step,
        epochs: tr.step.div_ceil(tr.steps_per_epoch()),
        final_loss: tr.losses.last().copied(),
        seconds,
        img_per_s: img_per_s(imgs, seconds),
        resumed_from: resumed_from.filter(|_| start_step > 0),
    })
}

/// Writes the loss file atomically: `step,epoch,loss` rows (1-based step and epoch) with
/// `per_epoch` steps per epoch, or `epoch,val_loss` rows when `per_epoch` is `None`. Losses are
/// in Rust's shortest round-trip form, so the file compares exactly.
fn write_losses(path: &Path, losses: &[f32], per_epoch: Option<usize>) -> Result<(), TrainError> {
    memdiff_data::atomic::write_with(path, |w| {
        match per_epoch {
            Some(spe) => {
                writeln!(w, "step,epoch,loss")?;
                for (i, l) in losses.iter().enumerate() {
                    writeln!(w, "{},{},{}", i + 1, i / spe + 1, l)?;
                }
            }
            None => {
                writeln!(w, "epoch,val_loss")?;
                for (i, l) in losses.iter().enumerate() {
                    writeln!(w, "{},{}", i + 1, l)?;
                }
            }
        }
        Ok(())
    })
    .map_err(|e| TrainError::Io {
        path: path.to_path_buf(),
        source: e.source,
    })
}

/// The first `keep` losses of a metrics file (a torn last line after a kill is dropped).
fn read_losses(path: &Path, keep: usize) -> Result<Vec<f32>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::with_capacity(keep);
    for line in text.lines().skip(1) {
        if out.len() == keep {
            break;
        }
        let loss = line.rsplit(',').next().and_then(|v| v.parse::<f32>().ok());
        match loss {
            Some(l) => out.push(l),
            None => break,
        }
    }
    if out.len() < keep {
        return Err(TrainError::Resume(format!(
            "{} holds {} losses but the checkpoint is at step {keep}; the folder was edited by hand — start a new --out",
            path.display(),
            out.len()
        )));
    }
    Ok(out)
}
