//! `memdiff sweep`: grids over n, s, C and simulations, resumable and sharded; `memdiff sweep
//! merge` joins shard folders. The work is in `memdiff_experiments`; this file supplies the
//! network (training + sampling over burn) as a `ModelRunner`.

use anyhow::Context;
use clap::{Args, Subcommand};
use memdiff_data::ImageSet;
use memdiff_diffusion::backend::{self, DeviceKind};
use memdiff_diffusion::sample::{sample, SampleOptions};
use memdiff_diffusion::train::{
    ensemble_key, train_ensemble_with_snapshots, EnsembleTrainer, TrainConfig,
};
use memdiff_experiments::batch::{BatchRunner, Ensembler, Member};
use memdiff_experiments::config::{Dequantize, Protocol, SweepConfig};
use memdiff_experiments::grid::Shard;
use memdiff_experiments::sim::BoxError;
use memdiff_experiments::sim::{ProbeLosses, Snapshot};
use memdiff_experiments::{ModelJob, ModelOutput, ModelRunner, RunOptions, SweepDir};
use memdiff_schedule::{Form, Indexing, Schedule};
use std::path::{Path, PathBuf};

/// Run (or resume) a sweep: every simulation trains a fresh model on a fresh T and is measured
/// beside the reference generators (oracle, copy, copy+noise) on the same O and T. With
/// `pair = true` in the config, a second network trains on an independent T' of the same n and
/// both sample from the same noise: OUT/pairs.csv and the report's "Two training sets" table.
///
/// Running the same command again skips finished simulations (one file per finished unit under
/// OUT/sims/). `--shard i/k` runs every k-th unit (i from 0: a SLURM array task id or a
/// Kubernetes completion index); `memdiff sweep merge A B … --out DIR` joins the shard folders.
///
/// Example: memdiff sweep --config configs/quick.toml
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub action: Option<SweepAction>,
    /// The sweep settings (TOML; unknown keys are errors).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output folder (default: out/sweeps/<config name>[-papers-code], relative to the working
    /// folder; the first log line names it).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run only the units j with j % k == i (i counts from 0).
    #[arg(long, value_name = "i/k")]
    pub shard: Option<Shard>,
    /// cpu (burn flex), wgpu, cuda (the last two need the matching cargo feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Recompute one unit (e.g. c1-n100-s50-sim3, the file name under OUT/sims/) and print its
    /// rows as CSV on stdout; no folder is touched.
    #[arg(long, value_name = "UNIT")]
    pub only: Option<String>,
    /// Override the config's protocol: default or papers-code (docs/METHOD.md §5).
    #[arg(long)]
    pub protocol: Option<Protocol>,
    /// Leave out the reference generators (oracle, copy, copy+noise): model rows only.
    #[arg(long)]
    pub no_reference: bool,
    /// Override the config's treatment of quantised data: auto, uniform, floor or none.
    #[arg(long)]
    pub dequantize: Option<Dequantize>,
    /// Leave out the model: reference generators only (no training; rows get s = 0).
    #[arg(long, conflicts_with = "no_reference")]
    pub no_model: bool,
    /// Same as --dequantize none (raw u8 values; exact ties dominate, docs/METHOD.md §4b).
    #[arg(long, conflicts_with = "dequantize")]
    pub no_dequantize: bool,
    /// Use one O for all simulations (the papers' protocol) instead of a fresh O per simulation.
    #[arg(long)]
    pub fixed_original: bool,
    /// Stop after this many units (time-boxed runs; rerun to continue).
    #[arg(long, value_name = "N")]
    pub max_units: Option<usize>,
    /// Work on K units at once: their networks are trained together, every group of compatible
    /// networks (same shape, settings, budget and batch size) as one batched ensemble of up to K
    /// networks, the groups side by side on min(K, threads) lanes. The rows are the same for
    /// every K (each network trains as it would alone, bit for bit).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Do not write the report at the end.
    #[arg(long)]
    pub no_report: bool,
}

#[derive(Subcommand, Debug)]
pub enum SweepAction {
    /// Join shard folders of one sweep into one folder (results.csv, samples, report).
    ///
    /// Example: memdiff sweep merge out/s0 out/s1 out/s2 --out out/all
    Merge {
        /// The shard folders.
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// The merged folder (may be one of the inputs).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Do not write the report.
        #[arg(long)]
        no_report: bool,
    },
}

fn set(t: &mut toml::Table, k: &str, v: impl Into<toml::Value>) {
    t.insert(k.to_string(), v.into());
}

/// The resolved training config of one job: the `[train]` table plus px, s, seed (and the
/// shifted indexing under papers-code).
fn train_config(job: &ModelJob) -> Result<TrainConfig, BoxError> {
    let mut cfg = train_table(&job.train, job.px, job.steps, job.papers_code)?;
    cfg.seed = job.train_seed;
    Ok(cfg)
}

/// The `[train]` table with the sweep's per-run keys set (px, s, seed 0; the shifted indexing
/// under papers-code), read as a training config.
fn train_table(
    train: &toml::Table,
    px: usize,
    steps: usize,
    papers_code: bool,
) -> Result<TrainConfig, String> {
    let mut t = train.clone();
    set(&mut t, "px", px as i64);
    set(&mut t, "diffusion_steps", steps as i64);
    set(&mut t, "seed", 0i64);
    if papers_code {
        set(&mut t, "indexing", "papers-shifted");
    }
    toml::Value::Table(t)
        .try_into()
        .map_err(|e| format!("[train] table: {e}"))
}

fn sample_options(job: &ModelJob, indexing: Indexing) -> Result<SampleOptions, BoxError> {
    let mut opts: SampleOptions = toml::Value::Table(job.sample.clone())
        .try_into()
        .map_err(|e| format!("[sample] table: {e}"))?;
    opts.indexing = indexing;
    if job.papers_code {
        // The seeds' code draws the g samples one at a time, in the eps-form.
        opts.batch = 1;
        opts.form = Form::Eps;
    }
    Ok(opts)
}

/// The resolved training config of a job with its budget: a budget in optimizer steps gives as
/// many epochs as it takes, then stops.
fn budgeted_config(job: &ModelJob, train: &ImageSet) -> Result<TrainConfig, BoxError> {
    let mut cfg = train_config(job)?;
    if let Some(budget) = job.train_steps {
        let (n_train, _) = cfg.split(train.n);
        cfg.epochs = budget.div_ceil(cfg.steps_per_epoch(n_train.max(1)));
        cfg.max_steps = Some(budget);
    }
    Ok(cfg)
}

/// The sweep's networks over burn: every call trains its jobs as one ensemble
/// (`memdiff_diffusion::train::EnsembleTrainer`) and samples each network at its snapshots.
struct BurnBatch {
    device: backend::Device,
}

impl BatchRunner for BurnBatch {
    fn key(&self, job: &ModelJob, train: &ImageSet) -> Result<String, BoxError> {
        let cfg = budgeted_config(job, train)?;
        Ok(format!(
            "{}|{:?}|{:?}",
            ensemble_key(&cfg, cfg.split(train.n).0),
            job.snapshots,
            job.sample
        ))
    }

    fn train_many(&self, jobs: &[(&ModelJob, &ImageSet)]) -> Vec<Result<ModelOutput, BoxError>> {
        match self.train_ensemble(jobs) {
            Ok(outs) => outs.into_iter().map(Ok).collect(),
            Err(e) => {
                let msg = e.to_string();
                jobs.iter().map(|_| Err(msg.clone().into())).collect()
            }
        }
    }
}

impl BurnBatch {
    fn train_ensemble(
        &self,
        jobs: &[(&ModelJob, &ImageSet)],
    ) -> Result<Vec<ModelOutput>, BoxError> {
        let cfgs: Vec<TrainConfig> = jobs
            .iter()
            .map(|(j, t)| budgeted_config(j, t))
            .collect::<Result<_, _>>()?;
        let data: Vec<&ImageSet> = jobs.iter().map(|(_, t)| *t).collect();
        let (job0, train0) = jobs[0];
        let cfg0 = &cfgs[0];
        let schedule = Schedule::new(cfg0.schedule, cfg0.diffusion_steps)?;
        let opts = sample_options(job0, cfg0.indexing)?;
        // Epoch-based training is measured once, at its last step.
        let at = if job0.snapshots.is_empty() {
            vec![cfg0.total_steps(cfg0.split(train0.n).0)]
        } else {
            job0.snapshots.clone()
        };
        let mut snapshots: Vec<Vec<Snapshot>> = vec![Vec::new(); jobs.len()];
        let t0 = std::time::Instant::now();
        let mut sampling = 0.0;
        let device = &self.device;
        train_ensemble_with_snapshots(
            &cfgs,
            &data,
            device,
            None,
            &at,
            &mut |tr: &EnsembleTrainer| {
                let s0 = std::time::Instant::now();
                let train_seconds = t0.elapsed().as_secs_f64() - sampling;
                for (k, (job, train)) in jobs.iter().enumerate() {
                    let model = tr.sampling_model(k);
                    let probe = match &job.held_out {
                        Some(h) => Some(loss_probe(
                            &model,
                            &schedule,
                            cfgs[k].indexing,
                            [train, h],
                            job.probe_seed,
                            device,
                        )?),
                        None => None,
                    };
                    let generated = sample(
                        &model,
                        &schedule,
                        job.generated,
                        &opts,
                        job.sample_seed,
                        device,
                        None,
                    )?;
                    snapshots[k].push(Snapshot {
                        step: tr.step,
                        generated,
                        train_seconds,
                        loss: tr.recent_loss(k),
                        probe,
                    });
                }
                sampling += s0.elapsed().as_secs_f64();
                Ok(())
            },
        )?;
        let sampler = memdiff_diffusion::sample::describe(&opts, &schedule);
        Ok(snapshots
            .into_iter()
            .zip(&cfgs)
            .zip(&data)
            .map(|((snapshots, cfg), d)| ModelOutput {
                snapshots,
                sampler: sampler.clone(),
                train_batch: cfg.batch.min(cfg.split(d.n).0),
            })
            .collect())
    }
}

/// The loss probe of one snapshot: the denoising loss of `model` on the training images and on
/// the held-out ones (`memdiff_diffusion::sample::denoising_loss`), each set with its own noise.
fn loss_probe(
    model: &memdiff_diffusion::UNet,
    schedule: &Schedule,
    indexing: Indexing,
    sets: [&ImageSet; 2],
    seed: u64,
    device: &backend::Device,
) -> Result<ProbeLosses, BoxError> {
    let mut out = sets.into_iter().enumerate().map(|(k, set)| {
        let seed = memdiff_data::seed::derive_seed(seed, "set", &[k as u64]);
        memdiff_diffusion::sample::denoising_loss(model, schedule, indexing, set, seed, device)
            .map(|v| v.into_iter().map(|l| (l.mean, l.se)).collect::<Vec<_>>())
    });
    Ok(ProbeLosses {
        train: out.next().expect("two sets")?,
        held_out: out.next().expect("two sets")?,
    })
}

/// `workers` runners sharing one [`Ensembler`]: up to `workers` networks trained per call, on
/// as many lanes as there are threads (at most `workers`), the threads split between them.
fn burn_members(kind: DeviceKind, workers: usize) -> anyhow::Result<Vec<Member>> {
    let device = backend::device(kind)?;
    let threads = rayon::current_num_threads();
    let lanes = workers.min(threads).max(1);
    Ensembler::members(
        Box::new(BurnBatch { device }),
        workers,
        workers,
        lanes,
        threads / lanes,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

fn load_config(args: &SweepArgs) -> anyhow::Result<(SweepConfig, PathBuf)> {
    let path = args
        .config
        .as_ref()
        .context("give --config configs/X.toml (or `memdiff sweep merge`)")?;
    let mut cfg: SweepConfig = memdiff_data::config::load_toml(path)?;
    if let Some(p) = args.protocol {
        cfg.protocol = p;
    }
    if args.no_reference {
        cfg.generators.retain(|g| g == "model");
    }
    if args.no_model {
        cfg.generators.retain(|g| g != "model");
        // No network, no pair of networks.
        cfg.pair = false;
    }
    if let Some(d) = args.dequantize {
        cfg.dequantize = d;
    }
    if args.no_dequantize {
        cfg.dequantize = Dequantize::None;
    }
    if args.fixed_original {
        cfg.fresh_original = false;
    }
    cfg.validate()
        .with_context(|| format!("config {}", path.display()))?;
    // The [train] table is read per network; check it here, before anything is written.
    if cfg.has_model() {
        let papers = cfg.protocol == Protocol::PapersCode;
        for &s in &cfg.steps {
            let context = || format!("config {}", path.display());
            train_table(&cfg.train, cfg.px, s, papers)
                .map_err(anyhow::Error::msg)
                .with_context(context)?
                .validate()
                .with_context(context)?;
        }
    }
    let out = match &args.out {
        Some(o) => o.clone(),
        None => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "sweep".into());
            let suffix = if cfg.protocol == Protocol::PapersCode {
                "-papers-code"
            } else {
                ""
            };
            PathBuf::from("out/sweeps").join(format!("{stem}{suffix}"))
        }
    };
    Ok((cfg, out))
}

fn write_report(dir: &SweepDir) -> anyhow::Result<()> {
    let (md, files) = memdiff_experiments::report_dir(dir)
        .with_context(|| format!("writing the report of {}", dir.root.display()))?;
    println!("{md}");
    eprintln!(
        "report: {} files in {}",
        files.len(),
        dir.report_dir().display()
    );
    Ok(())
}

pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    if let Some(SweepAction::Merge {
        dirs,
        out,
        no_report,
    }) = &args.action
    {
        let (_, rows) = memdiff_experiments::store::merge(dirs, out)
            .with_context(|| format!("merging into {}", out.display()))?;
        eprintln!(
            "merged {} folders: {} rows in {}",
            dirs.len(),
            rows.len(),
            out.join("results.csv").display()
        );
        if !no_report && !rows.is_empty() {
            write_report(&SweepDir::new(out))?;
        }
        return Ok(());
    }
    let (cfg, out) = load_config(&args)?;
    let kind: DeviceKind = args.device.parse()?;
    if let Some(id) = &args.only {
        let mut runner = burn_members(kind, 1)?.remove(0);
        let rows = memdiff_experiments::run_one(cfg, id, &mut runner)?;
        let mut buf = Vec::new();
        memdiff_metrics::summary::write_csv(&mut buf, &rows)?;
        print!("{}", String::from_utf8_lossy(&buf));
        return Ok(());
    }
    crate::cmd::log_output_folder(&out, args.out.is_none());
    let dir = SweepDir::new(&out);
    let opts = RunOptions {
        shard: args.shard.unwrap_or(Shard::ALL),
        max_units: args.max_units,
        progress: true,
        threads_per_job: None,
    };
    memdiff_data::config::RunRecord::new("sweep", backend::backend_name(kind), cfg.seed, &cfg)
        .write(Path::new(&out))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let t0 = std::time::Instant::now();
    let mut runners: Vec<Box<dyn ModelRunner + Send>> = burn_members(kind, args.jobs as usize)?
        .into_iter()
        .map(|m| Box::new(m) as Box<dyn ModelRunner + Send>)
        .collect();
    let o = memdiff_experiments::run_sweep_concurrent(cfg, &dir, &opts, &mut runners)
        .with_context(|| format!("sweep into {}", out.display()))?;
    eprintln!(
        "sweep: {} units in the grid, {} in this shard, {} already done, {} computed in {:.1} s; {} rows in {}",
        o.total,
        o.in_shard,
        o.skipped,
        o.computed,
        t0.elapsed().as_secs_f64(),
        o.rows,
        dir.results().display()
    );
    if opts.shard.count > 1 {
        eprintln!(
            "shard {}/{} done; join the shard folders with `memdiff sweep merge DIR… --out DIR`",
            opts.shard.index, opts.shard.count
        );
    } else if !args.no_report && o.rows > 0 {
        write_report(&dir)?;
    }
    if !o.complete && opts.shard.count == 1 {
        eprintln!("the sweep is not complete: run the same command again to continue");
    }
    Ok(())
}
