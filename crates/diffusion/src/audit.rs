//! The memorization audit of a trained checkpoint (`memdiff eval --checkpoint DIR`).
//!
//! Generates `g` images from the checkpoint, rebuilds the exact training set T it was trained on
//! (`CheckpointMeta.data`, the first `n_train` images of it), takes an original set O (a file, or
//! by default: GMM → a fresh draw of 10^4 from the same spec with another seed; MNIST / .npy /
//! your own images → the images of the same file or folder that are not in T), and reports E_TG, E_OG, Δ, Δ_U (docs/METHOD.md §4,
//! §4b) and the nearest-neighbour ratios of every generated image. It writes a picture
//! ([`picture`]) and `<png>.run.toml` beside it.
//!
//! The picture and the printed table come from one computation: the rows of
//! [`AuditReport::generated`] (d1, d2, d1/d2 and the training indices of
//! `memdiff_metrics::nn::nearest_neighbours`), put in [`order`] (d1/d2 ascending, likely copies
//! first); the panels below 1/3 ([`GeneratedRow::is_copy`]) are framed.
//!
//! Quantised data: `memdiff_data::quantize`, the policy of `eval` on files and of the sweep
//! (same decision, same noise for the same seed): the audit's numbers equal `eval` on the
//! saved O, T and G.

use crate::backend::{self, DeviceKind};
use crate::checkpoint::{self, CheckpointMeta};
use crate::sample::{self, SampleOptions, Schedule};
use anyhow::{bail, Context};
use memdiff_data::quantize::{self, Decision, Mode, Role};
use memdiff_data::{gmm::GmmSpec, recipe::DataRecipe, ImageSet};
use memdiff_metrics::kde::{self, KdeOptions, KdeResult};
use memdiff_metrics::nn::{self, Neighbour, NnSummary, MEMORIZED_RATIO};
use memdiff_plot::panels::{Panel, PanelGrid, Tile};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Smallest width of the audit picture, in pixels.
pub const PICTURE_MIN_WIDTH: usize = 800;

/// Size of the default original set for GMM checkpoints (docs/METHOD.md §1: N = 10^4).
pub const GMM_ORIGINAL_N: usize = 10_000;

/// Everything the audit needs.
#[derive(Debug, Clone, Serialize)]
pub struct AuditOptions {
    pub checkpoint: PathBuf,
    /// Generated images g.
    pub generate: usize,
    /// The EMA weights instead of the raw ones.
    pub ema: bool,
    /// cpu (flex), wgpu, cuda, ndarray.
    pub device: String,
    /// Seed of the sampling noise (and of the default GMM original set, mixed with T's seed).
    pub seed: u64,
    /// Sampler settings (the indexing is always the checkpoint's).
    pub sample: SampleOptions,
    /// O from this file or folder (anything `memdiff_data::source` reads, values in [0, 1])
    /// instead of the default.
    pub original: Option<PathBuf>,
    /// The picture: generated | nearest | second-nearest training image, captioned and ordered by
    /// d1/d2 (default `<checkpoint>/audit.png`).
    pub png: Option<PathBuf>,
    /// Save the raw sets the metric compared into this folder: `train.npy`, `generated.npy`,
    /// and `original.npy` when O is the default one (a given O is already a file), so that
    /// `eval` on them with the same `--seed` gives the same numbers.
    pub save_sets: Option<PathBuf>,
    /// Metric options (bandwidth rule, floors, scale).
    #[serde(skip)]
    pub kde: KdeOptions,
    /// Quantised sets, as `eval --dequantize` (`memdiff_data::quantize`: auto, uniform, floor,
    /// none). The nearest-neighbour search and the picture use the raw images.
    pub dequantize: Mode,
    /// Settings of the quality measures (k, KID subsets), computed when `generate > k`.
    pub quality: memdiff_metrics::quality::QualityOptions,
}

impl AuditOptions {
    pub fn new(checkpoint: PathBuf) -> Self {
        Self {
            checkpoint,
            generate: 10,
            ema: false,
            device: "cpu".into(),
            seed: 0,
            sample: SampleOptions::default(),
            original: None,
            png: None,
            save_sets: None,
            kde: KdeOptions::default(),
            dequantize: Mode::Auto,
            quality: Default::default(),
        }
    }

    /// Where the picture goes: `png`, or `<checkpoint>/audit.png`.
    pub fn png_path(&self) -> PathBuf {
        self.png
            .clone()
            .unwrap_or_else(|| self.checkpoint.join("audit.png"))
    }
}

/// One generated image's neighbours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneratedRow {
    /// Row of the nearest training image in T.
    pub nearest_train: usize,
    /// Row of the second-nearest training image in T (none when T has one image).
    pub second_train: Option<usize>,
    pub d1_train: f64,
    pub d2_train: f64,
    /// `d1 / d2` in T (< 1/3: a likely copy, Carlini et al. 2023).
    pub ratio_train: f64,
    /// Distance to the nearest image of O (a copy of T sits much closer to T than to O).
    pub d1_original: f64,
}

impl GeneratedRow {
    /// A likely copy: `d1 / d2 < 1/3` (Carlini et al. 2023; NaN is not).
    pub fn is_copy(&self) -> bool {
        self.ratio_train < MEMORIZED_RATIO
    }
}

/// The per-image rows from the neighbours of G in T (`nb_t`) and in O (`nb_o`), in generation
/// order.
pub fn rows(nb_t: &[Neighbour], nb_o: &[Neighbour]) -> Vec<GeneratedRow> {
    nb_t.iter()
        .zip(nb_o)
        .map(|(a, b)| GeneratedRow {
            nearest_train: a.index,
            second_train: a.second,
            d1_train: a.d1,
            d2_train: a.d2,
            ratio_train: a.ratio,
            d1_original: b.d1,
        })
        .collect()
}

/// The order of the picture and of the printed table: generated images by d1/d2 ascending
/// (likely copies first), NaN ratios last, ties by generation index.
pub fn order(rows: &[GeneratedRow]) -> Vec<usize> {
    let mut ix: Vec<usize> = (0..rows.len()).collect();
    ix.sort_by(|&a, &b| {
        let (ra, rb) = (rows[a].ratio_train, rows[b].ratio_train);
        ra.is_nan()
            .cmp(&rb.is_nan())
            .then(ra.total_cmp(&rb))
            .then(a.cmp(&b))
    });
    ix
}

/// The caption lines of generated image `i`'s panel.
pub fn caption(i: usize, r: &GeneratedRow) -> Vec<String> {
    vec![
        format!("#{i}  d1/d2 = {:.3}", r.ratio_train),
        format!(
            "T {} · 2nd T {}",
            r.nearest_train,
            r.second_train.map_or("–".into(), |s| s.to_string())
        ),
    ]
}

/// The title lines of the picture.
pub fn title(r: &AuditReport) -> Vec<String> {
    let finite = r
        .generated
        .iter()
        .filter(|g| g.ratio_train.is_finite())
        .count();
    let copies = r.generated.iter().filter(|g| g.is_copy()).count();
    vec![
        format!(
            "Memorization audit of {} (step {}{}), {} sampler, {} of {} steps",
            r.checkpoint,
            r.checkpoint_step,
            if r.ema { ", EMA weights" } else { "" },
            r.sampler,
            r.network_steps,
            r.diffusion_steps
        ),
        format!(
            "{copies} of {finite} generated images ({:.0} %) have d1/d2 < 1/3, likely copies: framed in red, first",
            100.0 * r.nn_train.frac_memorized
        ),
        "Each panel: generated | nearest training image | second nearest; #generation index, d1/d2, rows of T"
            .to_string(),
    ]
}

/// The audit picture: one panel per generated image in [`order`], from the report's rows and
/// the raw images (G, T), wrapped to at least [`PICTURE_MIN_WIDTH`] pixels.
pub fn picture(r: &AuditReport, g: &ImageSet, t: &ImageSet) -> PanelGrid {
    let tile = |s: &ImageSet, i: usize| Tile::new(s.channels, s.h, s.w, s.row(i));
    let panels = order(&r.generated)
        .into_iter()
        .map(|i| {
            let row = &r.generated[i];
            Panel {
                tiles: vec![
                    Some(tile(g, i)),
                    Some(tile(t, row.nearest_train)),
                    row.second_train.map(|k| tile(t, k)),
                ],
                caption: caption(i, row),
                highlight: row.is_copy(),
            }
        })
        .collect();
    PanelGrid::wrap(title(r), panels, PICTURE_MIN_WIDTH)
}

/// The audit's result.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub checkpoint: String,
    pub checkpoint_step: usize,
    pub ema: bool,
    pub sampler: String,
    pub network_steps: usize,
    pub diffusion_steps: usize,
    pub original_source: String,
    /// The metric, with the same fields as `eval`'s JSON.
    #[serde(skip)]
    pub kde: KdeResult,
    #[serde(skip)]
    pub kde_options: KdeOptions,
    /// The quantised-data policy's decision (treatment, tie shares of the raw O and T).
    #[serde(skip)]
    pub policy: Decision,
    /// Tie share of the raw generated images.
    #[serde(skip)]
    pub ties_generated: f64,
    pub nn_train: NnSummary,
    /// Mean distance from a generated image to its nearest image of O.
    pub d1_original_mean: f64,
    /// Sample quality of G beside the oracle's and the copy generator's (`crate::quality`);
    /// `None` when G has no more than k images.
    pub quality: Option<crate::quality::QualityBeside>,
    pub generated: Vec<GeneratedRow>,
    pub png: String,
    pub seconds_sampling: f64,
    pub backend: String,
}

/// The training set the checkpoint saw: the first `n_train` images of its recipe.
pub fn training_set(meta: &CheckpointMeta) -> anyhow::Result<ImageSet> {
    let all = meta
        .data
        .build()
        .context("rebuilding the training set from the checkpoint's data recipe")?;
    if meta.n_train == 0 || meta.n_train > all.n {
        bail!(
            "the checkpoint says it trained on {} images but its data recipe makes {}: the data file changed since training",
            meta.n_train,
            all.n
        );
    }
    let idx: Vec<usize> = (0..meta.n_train).collect();
    Ok(if meta.n_train == all.n {
        all
    } else {
        all.select(&idx)
    })
}

/// A seed for the default GMM original set that differs from T's:
/// `derive_seed(seed, "audit-original", [train_seed])`.
pub fn original_seed(train_seed: u64, seed: u64) -> u64 {
    let z = memdiff_data::seed::derive_seed(seed, "audit-original", &[train_seed]);
    if z == train_seed {
        z ^ 1
    } else {
        z
    }
}

/// The default original set O for a checkpoint, and a line saying what it is.
pub fn default_original(meta: &CheckpointMeta, seed: u64) -> anyhow::Result<(ImageSet, String)> {
    match &meta.data {
        DataRecipe::Gmm {
            spec, seed: tseed, ..
        } => {
            let s = original_seed(*tseed, seed);
            let o = gmm_draw(spec, s)?;
            Ok((
                o,
                format!("fresh GMM draw, N = {GMM_ORIGINAL_N}, seed {s} (T's seed {tseed})"),
            ))
        }
        DataRecipe::Mnist {
            images,
            resize,
            indices,
        } => {
            let all = memdiff_data::mnist::load_images(images)
                .with_context(|| format!("loading {} for the original set", images.display()))?;
            let used = &indices[..meta.n_train.min(indices.len())];
            let rest = outside_training(all.n, used, images, "")?;
            let o = resize.apply(&all.select(&rest))?;
            Ok((
                o,
                format!("the {} images of {} not in T", rest.len(), images.display()),
            ))
        }
        DataRecipe::Images { path, .. } => {
            let (all, indices) = meta
                .data
                .pool()
                .with_context(|| format!("loading {} for the original set", path.display()))?
                .expect("an images recipe has a pool");
            let used = &indices[..meta.n_train.min(indices.len())];
            let rest = outside_training(
                all.n,
                used,
                path,
                " (or train with --n below the number of images)",
            )?;
            Ok((
                all.select(&rest),
                format!("the {} images of {} not in T", rest.len(), path.display()),
            ))
        }
        DataRecipe::Npy { path, indices } => {
            let all = memdiff_data::read_images_any(path)
                .with_context(|| format!("loading {} for the original set", path.display()))?;
            let first: Vec<usize>;
            let used = match indices {
                Some(ix) => &ix[..meta.n_train.min(ix.len())],
                None => {
                    first = (0..meta.n_train).collect();
                    &first
                }
            };
            let rest = outside_training(all.n, used, path, "")?;
            Ok((
                all.select(&rest),
                format!("the {} images of {} not in T", rest.len(), path.display()),
            ))
        }
    }
}

/// The rows of a source of `n` images that are not among the training rows `used`; an error
/// naming the source (with `hint` after its advice) when there are none.
fn outside_training(
    n: usize,
    used: &[usize],
    source: &Path,
    hint: &str,
) -> anyhow::Result<Vec<usize>> {
    let used: std::collections::HashSet<usize> = used.iter().copied().collect();
    let rest: Vec<usize> = (0..n).filter(|i| !used.contains(i)).collect();
    if rest.is_empty() {
        bail!(
            "every image of {} is in the training set: pass --original FILE{hint}",
            source.display()
        );
    }
    Ok(rest)
}

fn gmm_draw(spec: &GmmSpec, seed: u64) -> anyhow::Result<ImageSet> {
    Ok(spec
        .sample(GMM_ORIGINAL_N, seed)
        .context("drawing the original GMM set")?
        .0)
}

fn same_shape<V: Copy>(
    what: &str,
    a: &ImageSet<V>,
    g: (usize, usize, usize),
) -> anyhow::Result<()> {
    if (a.channels, a.h, a.w) != g {
        bail!(
            "the {what} images are {} x {} x {} but the model generates {} x {} x {}: give an original set of the checkpoint's size",
            a.channels,
            a.h,
            a.w,
            g.0,
            g.1,
            g.2
        );
    }
    Ok(())
}

/// Puts the quantised-data policy's bandwidth floor and pixel exclusion into the metric's
/// options (`eval` on files and the audit).
pub fn apply_policy(policy: &Decision, opts: &mut KdeOptions) {
    if let Some(f) = policy.min_bandwidth() {
        opts.min_bandwidth = Some(f);
    }
    opts.exclude = policy.exclude(opts.keeps_constant_pixels());
}

/// Logs the policy's warning (ties dominate, nothing treats them) through `tracing`.
pub fn warn_ties(policy: &Decision, ties_g: Option<f64>) {
    if let Some(w) = policy.warning(ties_g) {
        tracing::warn!("{w}");
    }
}

/// A checkpoint opened for sampling: the backend, the network (EMA weights if asked), its
/// metadata and its noise schedule.
pub struct OpenCheckpoint {
    pub kind: DeviceKind,
    pub device: backend::Device,
    pub model: memdiff_model::UNet,
    pub meta: CheckpointMeta,
    pub schedule: Schedule,
}

/// Opens the checkpoint folder `dir` on `device` (cpu, wgpu, cuda, ndarray; `sample` and the
/// audit).
pub fn open_checkpoint(dir: &Path, device: &str, ema: bool) -> anyhow::Result<OpenCheckpoint> {
    let kind: DeviceKind = device.parse().context("--device")?;
    let device = backend::device(kind).context("--device")?;
    let (model, meta) = checkpoint::load(dir, &device, ema)
        .with_context(|| format!("loading --checkpoint {}", dir.display()))?;
    let schedule = Schedule::new(meta.train.schedule, meta.train.diffusion_steps)
        .with_context(|| format!("the schedule of {}", dir.display()))?;
    Ok(OpenCheckpoint {
        kind,
        device,
        model,
        meta,
        schedule,
    })
}

/// Runs the audit (no printing).
pub fn audit(
    a: &AuditOptions,
    progress: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<AuditReport> {
    if a.generate == 0 {
        bail!("--generate 0: generate at least one image");
    }
    let png = a.png_path();
    let ck = open_checkpoint(&a.checkpoint, &a.device, a.ema)?;
    let (kind, device, model, meta, schedule) =
        (ck.kind, ck.device, ck.model, ck.meta, ck.schedule);
    let opts = SampleOptions {
        indexing: meta.train.indexing,
        ..a.sample.clone()
    };
    let steps = sample::plan(&schedule, &opts)?.len();

    // Data first: a bad recipe or --original fails before minutes of sampling.
    let t = training_set(&meta)?;
    // O in f64 (a float64 file keeps its exact values, as in `eval`).
    let mut default_o = None;
    let (o, original_source) = match &a.original {
        Some(p) => (
            memdiff_data::read_images_any_f64(p)
                .with_context(|| format!("--original {}", p.display()))?,
            p.display().to_string(),
        ),
        None => {
            let (o, src) = default_original(&meta, a.seed)?;
            let o64 = o.to_f64();
            default_o = Some(o);
            (o64, src)
        }
    };

    let shape = (model.channels, model.px, model.px);
    same_shape("training", &t, shape)?;
    same_shape("original", &o, shape)?;
    if let Some(pb) = progress {
        pb.set_length(sample::evaluations(a.generate, &schedule, &opts));
    }
    let start = std::time::Instant::now();
    let g = sample::sample(
        &model, &schedule, a.generate, &opts, a.seed, &device, progress,
    )
    .with_context(|| format!("sampling {}", a.checkpoint.display()))?;
    let seconds_sampling = start.elapsed().as_secs_f64();

    // Quantised data: the one policy, decided on the raw O and T, noise on O, T and G.
    let mut kopts = a.kde.clone();
    let policy = quantize::decide(a.dequantize, a.seed, &o, &t.to_f64());
    apply_policy(&policy, &mut kopts);
    let ties_generated = policy.ties_of(&g);
    warn_ties(&policy, Some(ties_generated));
    let ko = policy.apply(&o, Role::Original);
    let kt = policy.apply(&t, Role::Train);
    let kg = policy.apply(&g, Role::Generated);
    let d = g.dim();
    let res = kde::evaluate(&ko.data, ko.n, &kt.data, kt.n, &kg.data, kg.n, d, &kopts)
        .context("evaluating the KDE metric")?;
    let quality = if kg.n > a.quality.k {
        Some(crate::quality::quality_beside_nulls(
            &ko,
            &kt.to_f64(),
            &kg,
            a.seed,
            &a.quality,
        )?)
    } else {
        None
    };
    let nb_t = nn::nearest_neighbours(&t.data, t.n, &g.data, g.n, d)?;
    let nb_o = nn::nearest_neighbours(&o.data, o.n, &g.data, g.n, d)?;

    if let Some(dir) = &a.save_sets {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--save-sets: cannot create {}", dir.display()))?;
        let mut sets = vec![("train.npy", &t), ("generated.npy", &g)];
        if let Some(o) = &default_o {
            sets.push(("original.npy", o));
        }
        for (name, set) in sets {
            let p = dir.join(name);
            memdiff_data::npy::write_npy(&p, set)
                .with_context(|| format!("writing {}", p.display()))?;
        }
    }
    #[derive(Serialize)]
    struct Settings<'a> {
        audit: &'a AuditOptions,
        indexing: String,
        bandwidth: String,
        min_bandwidth: Option<f64>,
        min_std: Option<f64>,
        paper_scale: bool,
    }
    let settings = Settings {
        audit: a,
        indexing: opts.indexing.to_string(),
        bandwidth: kopts.bandwidth.to_string(),
        min_bandwidth: kopts.min_bandwidth,
        min_std: kopts.min_std,
        paper_scale: kopts.paper_scale,
    };
    let record = memdiff_data::config::RunRecord::new(
        "eval --checkpoint",
        backend::backend_name(kind),
        a.seed,
        &settings,
    );
    let text = toml::to_string_pretty(&record).context("serialising run.toml")?;

    let generated = rows(&nb_t, &nb_o);
    let report = AuditReport {
        checkpoint: a.checkpoint.display().to_string(),
        checkpoint_step: meta.step,
        ema: a.ema,
        sampler: opts.sampler.to_string(),
        network_steps: steps,
        diffusion_steps: schedule.steps,
        original_source,
        kde: res,
        kde_options: kopts,
        policy,
        ties_generated,
        nn_train: nn::summarize(&nb_t),
        d1_original_mean: nb_o.iter().map(|n| n.d1).sum::<f64>() / nb_o.len() as f64,
        quality,
        generated,
        png: png.display().to_string(),
        seconds_sampling,
        backend: backend::backend_name(kind).to_string(),
    };
    // The picture and its run record: both or neither.
    let bytes = picture(&report, &g, &t)
        .png()
        .with_context(|| format!("drawing {}", png.display()))?;
    let rt = memdiff_data::config::record_path(&png);
    memdiff_data::atomic::write_all_or_none(&[
        (png.as_path(), bytes.as_slice()),
        (rt.as_path(), text.as_bytes()),
    ])
    .with_context(|| format!("writing {} and {}", png.display(), rt.display()))?;
    Ok(report)
}
