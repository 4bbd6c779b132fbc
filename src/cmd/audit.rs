//! `memdiff eval --checkpoint DIR`: the one-command memorization audit of a checkpoint (issue 6).
//!
//! Generates `g` images from the checkpoint, rebuilds the exact training set T it was trained on
//! (`CheckpointMeta.data`, the first `n_train` images of it), takes an original set O (a file, or
//! by default: GMM → a fresh draw of 10^4 from the same spec with another seed; MNIST / .npy → the
//! images of the same file that are not in T), and reports E_TG, E_OG, Δ, Δ_U (docs/METHOD.md §4, §4b) and
//! the nearest-neighbour ratios of every generated image. It writes a PNG in which each generated
//! image stands beside its nearest training image (2 columns: generated | nearest in T), and
//! `<png>.run.toml` beside it.
//!
//! Quantised data: `memdiff_data::quantize`, the policy of `eval` on files and of the sweep
//! (same decision, same noise for the same `--seed`): the audit's numbers equal `eval` on the
//! saved O, T and G. It prints the tie shares of the raw sets and the treatment, and warns when
//! ties dominate untreated.
//!
//! The arguments are `eval`'s ([`super::eval::EvalArgs`], owned by the metric); [`AuditOptions`]
//! is the plain form this module works on.

use anyhow::{bail, Context};
use memdiff_data::quantize::{self, Decision, Mode, Role};
use memdiff_data::{gmm::GmmSpec, recipe::DataRecipe, ImageSet};
use memdiff_diffusion::backend;
use memdiff_diffusion::checkpoint::CheckpointMeta;
use memdiff_diffusion::sample::{self, SampleOptions};
use memdiff_metrics::kde::{self, KdeOptions, KdeResult};
use memdiff_metrics::nn::{self, Neighbour, NnSummary};
use serde::Serialize;
use std::path::PathBuf;

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
    /// O from this file (.npy or IDX, values in [0, 1]) instead of the default.
    pub original: Option<PathBuf>,
    /// The PNG of generated | nearest training image (default `<checkpoint>/audit.png`).
    pub png: Option<PathBuf>,
    /// Save the raw sets the metric compared into this folder: `train.npy`, `generated.npy`,
    /// and `original.npy` when O is the default one (a given O is already a file), so that
    /// `eval` on them with the same `--seed` gives the same numbers.
    pub save_sets: Option<PathBuf>,
    /// Metric options (bandwidth rule, floors, scale).
    #[serde(skip)]
    pub kde: KdeOptions,
    /// Quantised sets, as `eval --dequantize` (`memdiff_data::quantize`: auto, uniform, floor,
    /// none). The nearest-neighbour search and the PNG use the raw images.
    pub dequantize: Mode,
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
        }
    }
}

/// One generated image's neighbours.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratedRow {
    /// Row of the nearest training image in T.
    pub nearest_train: usize,
    pub d1_train: f64,
    pub d2_train: f64,
    /// `d1 / d2` in T (< 1/3: a likely copy, Carlini et al. 2023).
    pub ratio_train: f64,
    /// Distance to the nearest image of O (a copy of T sits much closer to T than to O).
    pub d1_original: f64,
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
            let used: std::collections::HashSet<usize> = indices[..meta.n_train.min(indices.len())]
                .iter()
                .copied()
                .collect();
            let rest: Vec<usize> = (0..all.n).filter(|i| !used.contains(i)).collect();
            if rest.is_empty() {
                bail!(
                    "every image of {} is in the training set: pass --original FILE",
                    images.display()
                );
            }
            let o = resize.apply(&all.select(&rest))?;
            Ok((
                o,
                format!("the {} images of {} not in T", rest.len(), images.display()),
            ))
        }
        DataRecipe::Npy { path, indices } => {
            let all = memdiff_data::read_images_any(path)
                .with_context(|| format!("loading {} for the original set", path.display()))?;
            let used: std::collections::HashSet<usize> = match indices {
                Some(ix) => ix[..meta.n_train.min(ix.len())].iter().copied().collect(),
                None => (0..meta.n_train).collect(),
            };
            let rest: Vec<usize> = (0..all.n).filter(|i| !used.contains(i)).collect();
            if rest.is_empty() {
                bail!(
                    "every image of {} is in the training set: pass --original FILE",
                    path.display()
                );
            }
            Ok((
                all.select(&rest),
                format!("the {} images of {} not in T", rest.len(), path.display()),
            ))
        }
    }
}

fn gmm_draw(spec: &GmmSpec, seed: u64) -> anyhow::Result<ImageSet> {
    Ok(spec
        .sample(GMM_ORIGINAL_N, seed)
        .context("drawing the original GMM set")?
        .0)
}

/// Images `g_0, nn_0, g_1, nn_1, ...` (each generated image, then its nearest training image).
pub fn side_by_side(g: &ImageSet, t: &ImageSet, nb: &[Neighbour]) -> ImageSet {
    let d = g.dim();
    let mut data = Vec::with_capacity(2 * g.n * d);
    for (i, n) in nb.iter().enumerate() {
        data.extend_from_slice(g.row(i));
        data.extend_from_slice(t.row(n.index));
    }
    ImageSet::new(2 * g.n, g.channels, g.h, g.w, data)
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

/// Runs the audit (no printing).
pub fn audit(
    a: &AuditOptions,
    progress: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<AuditReport> {
    if a.generate == 0 {
        bail!("--generate 0: generate at least one image");
    }
    let png = a
        .png
        .clone()
        .unwrap_or_else(|| a.checkpoint.join("audit.png"));
    super::sample::check_out_dir("--png", &png)?;
    let ck = super::sample::open_checkpoint(&a.checkpoint, &a.device, a.ema)?;
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
    super::eval::apply_policy(&policy, &mut kopts);
    let ties_generated = policy.ties_of(&g);
    super::eval::warn_ties(&policy, Some(ties_generated));
    let ko = policy.apply(&o, Role::Original);
    let kt = policy.apply(&t, Role::Train);
    let kg = policy.apply(&g, Role::Generated);
    let d = g.dim();
    let res = kde::evaluate(&ko.data, ko.n, &kt.data, kt.n, &kg.data, kg.n, d, &kopts)
        .context("evaluating the KDE metric")?;
    let nb_t = nn::nearest_neighbours(&t.data, t.n, &g.data, g.n, d)?;
    let nb_o = nn::nearest_neighbours(&o.data, o.n, &g.data, g.n, d)?;

    let pair = side_by_side(&g, &t, &nb_t);
    memdiff_data::png::write_grid(&png, &pair, 2, 0)
        .with_context(|| format!("writing {}", png.display()))?;
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
    let rt = super::sample::run_toml_path(&png);
    memdiff_data::atomic::write_bytes(&rt, text.as_bytes())
        .with_context(|| format!("writing {}", rt.display()))?;

    let generated = nb_t
        .iter()
        .zip(&nb_o)
        .map(|(a, b)| GeneratedRow {
            nearest_train: a.index,
            d1_train: a.d1,
            d2_train: a.d2,
            ratio_train: a.ratio,
            d1_original: b.d1,
        })
        .collect::<Vec<_>>();
    Ok(AuditReport {
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
        generated,
        png: png.display().to_string(),
        seconds_sampling,
        backend: backend::backend_name(kind).to_string(),
    })
}

/// The report as one JSON object: `eval`'s metric fields plus the audit's.
pub fn report_json(r: &AuditReport) -> anyhow::Result<serde_json::Value> {
    let mut out = super::eval::result_json(
        &r.kde,
        &r.kde_options,
        &r.policy,
        Some(r.ties_generated),
        true,
    );
    let extra = serde_json::to_value(r)?;
    let m = out.as_object_mut().expect("object");
    if let serde_json::Value::Object(e) = extra {
        for (k, v) in e {
            m.insert(k, v);
        }
    }
    m.insert(
        "nn_ratio_mean".into(),
        serde_json::json!(r.nn_train.ratio_mean),
    );
    m.insert(
        "nn_frac_memorized".into(),
        serde_json::json!(r.nn_train.frac_memorized),
    );
    m.insert("nn_d1_mean".into(), serde_json::json!(r.nn_train.d1_mean));
    Ok(out)
}

/// Prints the report: one JSON line, or a short human-readable summary (`per_sample`: one line
/// per generated image).
pub fn print(r: &AuditReport, json: bool, per_sample: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(&report_json(r)?)?);
        return Ok(());
    }
    let k = &r.kde;
    println!(
        "checkpoint {} (step {}{}), {} x {} steps ({} trained)",
        r.checkpoint,
        r.checkpoint_step,
        if r.ema { ", EMA" } else { "" },
        r.sampler,
        r.network_steps,
        r.diffusion_steps
    );
    println!(
        "sets: O = {} ({}), T = {} (the checkpoint's training set), G = {} generated",
        k.n_original, r.original_source, k.n_train, k.n_generated
    );
    println!(
        "E_TG = {:.6e}  E_OG = {:.6e}  Δ = {:+.6e}  Δ_U = {:+.6e}",
        k.e_tg, k.e_og, k.delta, k.delta_unbiased
    );
    println!(
        "  {} pixels used, {} constant over O left out; bandwidth {}{}",
        k.pixels_used,
        k.pixels_skipped,
        r.kde_options.bandwidth,
        r.kde_options
            .min_bandwidth
            .map(|f| format!(" (floor {f:.5})"))
            .unwrap_or_default(),
    );
    println!("  {}", r.policy.summary(Some(r.ties_generated), true));
    println!(
        "nearest training image: mean d1/d2 = {:.3}, {:.0} % below 1/3 (likely copies); mean d1 to T = {:.4}, to O = {:.4}",
        r.nn_train.ratio_mean,
        100.0 * r.nn_train.frac_memorized,
        r.nn_train.d1_mean,
        r.d1_original_mean
    );
    if per_sample {
        println!("  i  nearest_T        d1        d2   d1/d2   d1_to_O");
        for (i, g) in r.generated.iter().enumerate() {
            println!(
                "{i:3}  {:9}  {:8.4}  {:8.4}  {:6.3}  {:8.4}",
                g.nearest_train, g.d1_train, g.d2_train, g.ratio_train, g.d1_original
            );
        }
    }
    println!(
        "Δ < 0 alone does not show memorization: read it against an oracle on the same sets (docs/METHOD.md §4b)."
    );
    println!("side by side (generated | nearest in T): {}", r.png);
    Ok(())
}

/// Entry point from `memdiff eval --checkpoint`.
pub fn run(args: &super::eval::EvalArgs) -> anyhow::Result<()> {
    let Some(ck) = &args.checkpoint else {
        bail!("--checkpoint DIR is required for the audit");
    };
    if args.train.is_some() || args.generated.is_some() || args.generator.is_some() {
        bail!("--checkpoint rebuilds T from the checkpoint and generates G itself: drop --train / --generated / --generator");
    }
    let mut a = AuditOptions::new(ck.clone());
    a.generate = args.generate;
    a.ema = args.ema;
    a.device = args.device.clone();
    a.seed = args.seed;
    a.original = args.original.clone();
    if let Some(b) = args.batch {
        a.sample.batch = b;
    }
    if let Some(x) = args.sampler {
        a.sample.sampler = x;
    }
    a.sample.sampling_steps = args.sampling_steps.or(a.sample.sampling_steps);
    if let Some(x) = args.spacing {
        a.sample.spacing = x;
    }
    if let Some(x) = args.eta {
        a.sample.eta = x;
    }
    if let Some(x) = args.form {
        a.sample.form = x;
    }
    a.kde = super::eval::kde_options(&args.bandwidth, args.paper_scale, args.min_std)?;
    a.dequantize = super::eval::parse_dequant(args)?;
    a.save_sets = args.save_sets.clone();
    let pb = memdiff_data::progress::bar(0, "network evals");
    let r = audit(&a, Some(&pb));
    pb.finish_and_clear();
    print(&r?, args.json, args.nn)
}
