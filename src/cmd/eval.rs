//! `memdiff eval`: the memorization metric E_TG, E_OG, Δ (docs/METHOD.md §4) and the unbiased Δ_U
//! (docs/METHOD.md §4b) for three sets of images, with optional reference generators, nearest-neighbour
//! audit, quadrature cross-check and quantised-data treatment; `memdiff eval summarize FILE`
//! aggregates a `results.csv`; `memdiff eval --checkpoint DIR` hands over to the audit.
//!
//! Reference generators without a data distribution at hand (`--generator oracle` with files
//! only): G is `g` rows of the original file that are equal to no row of T, and those rows are
//! removed from O before the metric, so G never saw T and is not part of the O it is compared
//! with (`n_original` in the output is then N - g). `copy` / `copy+noise:S` draw rows of T with
//! replacement (`memdiff_data::reference`, as the sweep), after any dequantisation, so that
//! copies are exact copies of the T the metric sees.
//!
//! Sample quality (docs/METHOD.md §4.9): Fréchet distance, KID, k-NN precision / recall /
//! density / coverage of G against rows of O, printed beside the oracle's and the copy
//! generator's on the same sets (`memdiff_diffusion::quality`, the audit's function too).
//!
//! Quantised data: `memdiff_data::quantize`, the policy the audit and the sweep use too (same
//! decision, same noise for the same `--seed`). Values are read and kept in f64: a float64
//! `.npy` reaches the metric unrounded.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use memdiff_data::quantize::{self, Mode, Role};
use memdiff_data::reference::{self, Reference};
use memdiff_data::ImageSet;
use memdiff_diffusion::audit::{self, AuditOptions};
use memdiff_diffusion::quality;
use memdiff_metrics::kde::{Bandwidth, KdeOptions, OriginalSet};
use memdiff_metrics::quality::QualityOptions;
use memdiff_metrics::{nn, quadrature, summary};
use serde_json::{json, Value};

use super::metric_json::result_json;

/// Memorization metric for three sets of images (O, T, G), or a summary of a results table.
///
/// Also prints the sample quality of G (Fréchet distance, KID, k-NN precision / recall /
/// density / coverage with k = 3, against the first 2000 rows of O) beside the oracle's and the
/// copy generator's with as many samples (docs/METHOD.md §4.9); with --checkpoint too.
///
/// Example: memdiff eval --original O.npy --train T.npy --generated G.npy --json
/// Example: memdiff eval --original O.npy --train T.npy --generator oracle --g 10
/// Example: memdiff eval summarize runs/quick/results.csv
/// Example: memdiff eval --checkpoint A --pair-with B --generate 100 --seed 42
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub sub: Option<EvalSub>,
    /// Original set O: a folder of PNG / JPEG images, a .npz (arr_0), .npy or IDX file (gz or
    /// plain): (n, d), (n, h, w), (n, c, h, w) or (n, h, w, c), uint8 or float, grey or RGB.
    #[arg(long, value_name = "PATH", required_unless_present_any = ["checkpoint"])]
    pub original: Option<PathBuf>,
    /// Training set T (same formats).
    #[arg(long, value_name = "PATH", required_unless_present_any = ["checkpoint"])]
    pub train: Option<PathBuf>,
    /// Generated set G (same formats); not needed with --generator or --checkpoint.
    #[arg(long, value_name = "PATH", required_unless_present_any = ["checkpoint", "generator"], conflicts_with = "generator")]
    pub generated: Option<PathBuf>,
    /// How the three sets are read (the same for each).
    #[command(flatten)]
    pub read: super::ReadArgs,
    /// With --fit: the side the images are brought to.
    #[arg(long, value_name = "PX", requires = "fit")]
    pub px: Option<usize>,
    /// Also write the --nn table (g, nearest, d1, d2, d1/d2; with --checkpoint also the second
    /// nearest and d1 in O, in the picture's order) to this CSV file.
    #[arg(long, value_name = "FILE", requires = "nn")]
    pub nn_csv: Option<PathBuf>,
    /// Make G with a reference generator instead: oracle, copy or copy+noise:SIGMA.
    #[arg(long, value_name = "KIND")]
    pub generator: Option<String>,
    /// Number of samples the reference generator makes.
    #[arg(long, default_value_t = 10)]
    pub g: usize,
    /// Bandwidth rule: std-over-n (papers'), std-n-pow-minus-1-over-d, silverman, fixed:VALUE.
    #[arg(long, default_value = "std-over-n")]
    pub bandwidth: String,
    /// Multiply distances by sqrt(2 pi), as the papers' code (default: the true L2 distance).
    #[arg(long)]
    pub paper_scale: bool,
    /// Floor on sigma_i; keeps pixels that are constant over O.
    #[arg(long, value_name = "X")]
    pub min_std: Option<f64>,
    /// Nearest-neighbour audit: d1, d2, d1/d2 and nearest T row for each generated sample (with
    /// --checkpoint: in the order of the picture, d1/d2 ascending).
    #[arg(long)]
    pub nn: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Integrate a few pixels numerically and report the largest relative difference from the
    /// closed form.
    #[arg(long)]
    pub check_quadrature: bool,
    /// Quantised data (docs/METHOD.md §4b): auto (uniform when O or T lies on the k/255 grid or
    /// exact ties dominate its self-term, as for raw, resized or padded MNIST; else none),
    /// uniform (seeded U(0, 1/255) noise on O, T and G alike), floor (bandwidth >= 1/255), none.
    #[arg(long, default_value = "auto", value_name = "MODE")]
    pub dequantize: String,
    /// Same as --dequantize none (keep raw ties; warns when they dominate).
    #[arg(long)]
    pub no_dequantize: bool,
    /// Seed of the reference generator and of the dequantisation noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Evaluate a trained checkpoint: generate from it and compare with its own training set.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// With --checkpoint: number of samples to generate.
    #[arg(long, default_value_t = 10)]
    pub generate: usize,
    /// With --checkpoint: use the EMA weights.
    #[arg(long)]
    pub ema: bool,
    /// With --checkpoint: device (cpu, wgpu, cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// With --checkpoint: sampling batch size.
    #[arg(long, requires = "checkpoint")]
    pub batch: Option<usize>,
    /// With --checkpoint: ddpm (ancestral, all s steps; the default) or ddim.
    #[arg(long, requires = "checkpoint")]
    pub sampler: Option<memdiff_diffusion::sample::Sampler>,
    /// With --checkpoint: DDIM steps K (1..=s; default s).
    #[arg(long, requires = "checkpoint")]
    pub sampling_steps: Option<usize>,
    /// With --checkpoint: DDIM timestep spacing, trailing (default), leading or linspace.
    #[arg(long, requires = "checkpoint")]
    pub spacing: Option<memdiff_diffusion::sample::TimestepSpacing>,
    /// With --checkpoint: DDIM eta in [0, 1] (default 0, deterministic).
    #[arg(long, requires = "checkpoint")]
    pub eta: Option<f64>,
    /// With --checkpoint: clipped-x0 (default: predict x0, clip it to [-1, 1], step from it) or
    /// eps (the seeds' form, no clipping inside the chain).
    #[arg(long, requires = "checkpoint")]
    pub form: Option<memdiff_diffusion::sample::Form>,
    /// With --checkpoint: save the raw sets compared into DIR (train.npy, generated.npy, and
    /// original.npy when O is the default one); `eval` on them with the same --seed and
    /// --dequantize gives the same numbers.
    #[arg(long, value_name = "DIR", requires = "checkpoint")]
    pub save_sets: Option<PathBuf>,
    /// With --checkpoint A: the two-training-sets test (docs/METHOD.md §7b) against checkpoint
    /// B: both generate --generate images from the same noise (--seed); prints their paired
    /// L2 distance and centred cosine similarity (95 % interval), the floor (independent data
    /// pairs from --original or A's default original set) and the copy level.
    #[arg(long, value_name = "DIR", requires = "checkpoint")]
    pub pair_with: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum EvalSub {
    /// Per-group P(Δ>0), P(Δ_U>0) with Wilson intervals, means ± s.e., Ê, η and the
    /// model-vs-oracle verdict, from a results.csv (columns: memdiff_metrics::summary).
    Summarize(SummarizeArgs),
}

#[derive(Args, Debug)]
pub struct SummarizeArgs {
    /// The results table (one row per simulation).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print JSON ({"groups": [...], "eta": [...]}) instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if let Some(EvalSub::Summarize(s)) = &args.sub {
        return run_summarize(s);
    }
    if args.pair_with.is_some() {
        return crate::cmd::pair::run(&args);
    }
    if args.checkpoint.is_some() {
        return crate::cmd::audit::run(
            &audit_options(&args)?,
            args.json,
            args.nn,
            args.nn_csv.as_deref(),
        );
    }
    run_sets(&args)
}

/// Reads a set in f64 (float64 files keep their exact values) with the reading flags.
fn read_set(args: &EvalArgs, path: &Path, role: &str) -> anyhow::Result<ImageSet<f64>> {
    let opts = args.read.options(args.px);
    Ok(memdiff_data::source::read_source_as(path, &opts)
        .with_context(|| format!("reading the {role} set"))?
        .set)
}

/// `--dequantize` / `--no-dequantize` (shared with the audit).
pub fn parse_dequant(args: &EvalArgs) -> anyhow::Result<Mode> {
    if args.no_dequantize {
        return Ok(Mode::None);
    }
    match args.dequantize.parse::<Mode>() {
        Ok(m) => Ok(m),
        Err(_) => bail!(
            "--dequantize {:?}: use auto, uniform, floor or none",
            args.dequantize
        ),
    }
}

/// The options of the metric from the command line (shared with `bench kde`).
pub fn kde_options(
    bandwidth: &str,
    paper_scale: bool,
    min_std: Option<f64>,
) -> anyhow::Result<KdeOptions> {
    let bw: Bandwidth = bandwidth.parse().context("--bandwidth")?;
    if let Some(m) = min_std {
        if !(m.is_finite() && m > 0.0) {
            bail!("--min-std {m}: must be a positive number (e.g. 0.01)");
        }
    }
    Ok(KdeOptions {
        bandwidth: bw,
        paper_scale,
        min_std,
        ..Default::default()
    })
}

fn run_sets(args: &EvalArgs) -> anyhow::Result<()> {
    let (Some(op), Some(tp)) = (&args.original, &args.train) else {
        bail!("--original and --train are required (or give --checkpoint)");
    };
    let mode = parse_dequant(args)?;
    let mut opts = kde_options(&args.bandwidth, args.paper_scale, args.min_std)?;
    let generator: Option<Reference> = match &args.generator {
        Some(s) => Some(s.parse().context("--generator")?),
        None => None,
    };
    if generator.is_some() && args.g == 0 {
        bail!("--g 0: the reference generator needs at least 1 sample");
    }
    let mut o = read_set(args, op, "original")?;
    let t = read_set(args, tp, "train")?;
    let mut g = match &args.generated {
        Some(gp) => Some(read_set(args, gp, "generated")?),
        None => None,
    };
    let d = o.dim();
    let check_dim = |set: &ImageSet<f64>, path: &Path, role: &str| -> anyhow::Result<()> {
        if set.dim() != d {
            bail!(
                "{} ({role} set) has {} pixels per sample ({}x{}x{}) but {} (original set) has {d}; all sets must have the same pixel count",
                path.display(),
                set.dim(),
                set.channels,
                set.h,
                set.w,
                op.display()
            );
        }
        Ok(())
    };
    check_dim(&t, tp, "train")?;
    if let (Some(gs), Some(gp)) = (&g, &args.generated) {
        check_dim(gs, gp, "generated")?;
    }
    // Oracle from files: hold g rows of O (not in T) out as G, before any noise.
    if generator == Some(Reference::Oracle) {
        let seed = reference::generator_seed(args.seed, &Reference::Oracle);
        let (gs, rest) = reference::holdout(&o, &t, args.g, seed)
            .context("--generator oracle (rows of the original file not in the training set)")?;
        g = Some(gs);
        o = rest;
    }
    // Quantised data: the one policy (memdiff_data::quantize), decided on the raw O and T.
    let policy = quantize::decide(mode, args.seed, &o, &t);
    audit::apply_policy(&policy, &mut opts);
    let ties_g = g.as_ref().map(|s| policy.ties_of(s));
    let o = policy.apply(&o, Role::Original);
    let t = policy.apply(&t, Role::Train);
    let g_noised = g.is_some();
    let g = match (g, generator) {
        (Some(g), _) => policy.apply(&g, Role::Generated),
        (None, Some(r @ Reference::Copy)) => {
            reference::copy_rows(&t, args.g, reference::generator_seed(args.seed, &r))?.0
        }
        (None, Some(r @ Reference::CopyNoise(s))) => {
            reference::copy_noise(&t, args.g, s, reference::generator_seed(args.seed, &r))?.0
        }
        _ => bail!("give --generated FILE or --generator KIND"),
    };
    audit::warn_ties(&policy, ties_g);
    let orig = OriginalSet::new(&o.data, o.n, d, &opts)
        .with_context(|| format!("original set {}", op.display()))?;
    let r = orig
        .evaluate(&t.data, t.n, &g.data, g.n)
        .context("evaluating the metric")?;
    let nn_res = if args.nn {
        let nb = nn::nearest_neighbours(&t.data, t.n, &g.data, g.n, d)?;
        Some((nn::summarize(&nb), nb))
    } else {
        None
    };
    // Sample quality beside the oracle's and the copy generator's on the same sets (§4.9).
    let qopts = QualityOptions::default();
    let quality = if g.n > qopts.k {
        Some(quality::quality_beside_nulls(
            &o, &t, &g, args.seed, &qopts,
        )?)
    } else {
        None
    };
    let quad = if args.check_quadrature {
        Some(quadrature::check(&orig, &t.data, t.n, &g.data, g.n, 3)?)
    } else {
        None
    };
    let gen_label = match generator {
        Some(r) => r.to_string(),
        None => "file".into(),
    };
    let mut out = result_json(&r, &opts, &policy, ties_g, g_noised);
    let m = out.as_object_mut().expect("object");
    m.insert("d".into(), json!(d));
    m.insert("generator".into(), json!(gen_label));
    m.insert("seed".into(), json!(args.seed));
    m.insert(
        "files".into(),
        json!({"original": op, "train": tp, "generated": args.generated}),
    );
    if let Some((s, nb)) = &nn_res {
        m.insert("nn_ratio_mean".into(), json!(s.ratio_mean));
        m.insert("nn_frac_memorized".into(), json!(s.frac_memorized));
        m.insert("nn_d1_mean".into(), json!(s.d1_mean));
        m.insert("nn".into(), serde_json::to_value(nb)?);
    }
    m.insert("quality".into(), serde_json::to_value(&quality)?);
    if let Some(q) = &quad {
        m.insert("quadrature_max_rel_diff".into(), json!(q.max_rel_diff));
        m.insert("quadrature".into(), serde_json::to_value(q)?);
    }
    if let (Some(p), Some((_, nb))) = (&args.nn_csv, &nn_res) {
        let mut csv = String::from("g,nearest,d1,d2,ratio\n");
        for (i, x) in nb.iter().enumerate() {
            csv.push_str(&format!(
                "{i},{},{:e},{:e},{:e}\n",
                x.index, x.d1, x.d2, x.ratio
            ));
        }
        memdiff_data::atomic::write_bytes(p, csv.as_bytes())
            .with_context(|| format!("--nn-csv {}", p.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        print_table(&out, nn_res.as_ref().map(|x| &x.1));
        match &quality {
            Some(q) => print!("{}", quality::text(q)),
            None => println!(
                "quality: not computed (k = {} nearest neighbours need more than {} generated samples)",
                qopts.k, qopts.k
            ),
        }
    }
    Ok(())
}

fn fmt_val(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => format!("{x:.10e}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_table(out: &Value, nb: Option<&Vec<nn::Neighbour>>) {
    let m = out.as_object().expect("object");
    let keys = [
        "e_tg",
        "e_og",
        "delta",
        "delta_unbiased",
        "pixels_used",
        "pixels_skipped",
        "n_original",
        "n_train",
        "n_generated",
        "d",
        "bandwidth",
        "scale",
        "dequantized",
        "dequantize_mode",
        "dequantized_sets",
        "raw_tie_share_original",
        "raw_tie_share_train",
        "raw_tie_share_generated",
        "generator",
        "e_tg_error_bound",
        "e_og_error_bound",
        "tie_share_original",
        "tie_share_train",
        "nn_ratio_mean",
        "nn_frac_memorized",
        "nn_d1_mean",
        "quadrature_max_rel_diff",
    ];
    for k in keys {
        if let Some(v) = m.get(k) {
            println!("{k:<26} {}", fmt_val(v));
        }
    }
    if let Some(nb) = nb {
        println!(
            "{:>4} {:>8} {:>14} {:>14} {:>10}",
            "g", "nearest", "d1", "d2", "d1/d2"
        );
        for (i, x) in nb.iter().enumerate() {
            println!(
                "{i:>4} {:>8} {:>14.6e} {:>14.6e} {:>10.4}",
                x.index, x.d1, x.d2, x.ratio
            );
        }
    }
}

/// The audit's settings from `eval`'s arguments (`--checkpoint DIR`).
/// The sampling flags of `--checkpoint` (--batch, --sampler, --sampling-steps, --spacing, --eta,
/// --form) over `base`.
pub(crate) fn sample_options(
    args: &EvalArgs,
    mut base: memdiff_diffusion::sample::SampleOptions,
) -> memdiff_diffusion::sample::SampleOptions {
    if let Some(b) = args.batch {
        base.batch = b;
    }
    if let Some(x) = args.sampler {
        base.sampler = x;
    }
    base.sampling_steps = args.sampling_steps.or(base.sampling_steps);
    if let Some(x) = args.spacing {
        base.spacing = x;
    }
    if let Some(x) = args.eta {
        base.eta = x;
    }
    if let Some(x) = args.form {
        base.form = x;
    }
    base
}

fn audit_options(args: &EvalArgs) -> anyhow::Result<AuditOptions> {
    let Some(ck) = &args.checkpoint else {
        bail!("--checkpoint DIR is required for the audit");
    };
    if args.read.any() {
        bail!("--checkpoint reads its data from the checkpoint's recipe and --original as found: drop --layout / --npz-array / --recursive / --fit");
    }
    if args.train.is_some() || args.generated.is_some() || args.generator.is_some() {
        bail!("--checkpoint rebuilds T from the checkpoint and generates G itself: drop --train / --generated / --generator");
    }
    let mut a = AuditOptions::new(ck.clone());
    a.generate = args.generate;
    a.ema = args.ema;
    a.device = args.device.clone();
    a.seed = args.seed;
    a.original = args.original.clone();
    a.sample = sample_options(args, a.sample);
    a.kde = kde_options(&args.bandwidth, args.paper_scale, args.min_std)?;
    a.dequantize = parse_dequant(args)?;
    a.save_sets = args.save_sets.clone();
    Ok(a)
}

fn run_summarize(a: &SummarizeArgs) -> anyhow::Result<()> {
    let f = std::fs::File::open(&a.file)
        .with_context(|| format!("cannot open {} (check the path)", a.file.display()))?;
    let rows = summary::read_csv(std::io::BufReader::new(f))
        .with_context(|| format!("reading {}", a.file.display()))?;
    if rows.is_empty() {
        bail!("{} has a header but no rows", a.file.display());
    }
    let groups = summary::summarize(&rows);
    let etas = summary::eta(&groups);
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&json!({"groups": groups, "eta": etas}))?
        );
        return Ok(());
    }
    println!(
        "{:<6} {:>3} {:>2} {:>5} {:>4} {:<16} {:<11} {:<8} {:>4} {:>22} {:>22} {:>22} {:>22} {:>16} {:>24}",
        "data",
        "px",
        "C",
        "n",
        "s",
        "generator",
        "protocol",
        "deq",
        "m",
        "P(Δ>0) [95% CI]",
        "P(Δ_U>0) [95% CI]",
        "E_TG ± se",
        "E_OG ± se",
        "Ê_OG ± se",
        "vs oracle (p)"
    );
    for g in &groups {
        let k = &g.key;
        let pr = |p: &memdiff_metrics::stats::Proportion| {
            format!("{:.3} [{:.3},{:.3}]", p.p, p.lo, p.hi)
        };
        let ms = |m: &memdiff_metrics::stats::MeanSe| format!("{:.4e}±{:.1e}", m.mean, m.se);
        let vs = match &g.vs_oracle {
            Some(v) => format!("{} (p={:.2e})", v.verdict, v.test.p),
            None => "-".into(),
        };
        println!(
            "{:<6} {:>3} {:>2} {:>5} {:>4} {:<16} {:<11} {:<8} {:>4} {:>22} {:>22} {:>22} {:>22} {:>16} {:>24}",
            k.data,
            k.px,
            k.components,
            k.n,
            k.steps,
            k.generator,
            k.protocol,
            k.dequantized,
            g.m,
            pr(&g.p_delta),
            pr(&g.p_delta_unbiased),
            ms(&g.e_tg),
            ms(&g.e_og),
            format!("{:.3}±{:.3}", g.ehat_og.mean, g.ehat_og.se),
            vs
        );
    }
    println!();
    println!("eta = -log(1 - E_OG(n_large)/E_OG(n_small)) per setting:");
    for e in &etas {
        let k = &e.key;
        let v = match (e.eta, &e.error) {
            (Some(x), _) => format!("{x:.4}"),
            (None, Some(err)) => format!("undefined: {err}"),
            _ => "-".into(),
        };
        println!(
            "{:<6} px {:>3} C {:>2} s {:>4} {:<16} {:<11} n {}..{}: {v}",
            k.data, k.px, k.components, k.steps, k.generator, k.protocol, e.n_small, e.n_large
        );
    }
    Ok(())
}
