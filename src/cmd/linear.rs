//! `memdiff linear`: the linear one-step diffusion model of docs/METHOD.md §6 — closed-form theory
//! (Theorem 3.1, t_M, L2-optimal ε), Monte Carlo over simulations (KL, H², P(Δ>0)) and the
//! sweep that reproduces the seeds' linear-model figures (CSV + SVG/PNG plots).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use memdiff_data::atomic;
use memdiff_data::config::{load_toml, RunRecord};
use memdiff_linear::theory;
use memdiff_linear::{
    simulate, DataModel, EpsRule, OriginalSet, Params, Sampler, SimOptions, Summary,
};
use memdiff_plot::{LegendPos, LinePlot, Series};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The linear one-step diffusion model: theory, Monte Carlo and the seeds' figures.
///
/// Example: memdiff linear theory --d 100 --n 1000 --lambda-hat 0.1
/// Example: memdiff linear simulate --data-model reverse --d 100 --n 1000 --lambda-hat 0.1 --sims 500 --seed 1 --json
/// Example: memdiff linear sweep --config configs/linear.toml --out out/linear
#[derive(Args, Debug)]
pub struct LinearArgs {
    #[command(subcommand)]
    pub sub: LinearSub,
}

#[derive(Subcommand, Debug)]
pub enum LinearSub {
    /// Closed forms: Theorem 3.1's <KL_var>, alpha = d/n, mixing time t_M, L2-optimal eps.
    Theory(TheoryArgs),
    /// Monte Carlo over simulations: KL_var (exact and quadratic), KL_mean, H², P(Δ>0).
    Simulate(SimulateArgs),
    /// Sweep n, alpha, lambda_hat for d = 16 and 100: CSV tables and SVG/PNG plots.
    Sweep(SweepArgs),
}

/// The model's settings shared by `theory` and `simulate` (papers: mu 10, sigma 1, T 2).
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Dimension d.
    #[arg(long)]
    pub d: usize,
    /// Training pairs n.
    #[arg(long)]
    pub n: usize,
    /// Noise scale lambda_hat (lambda = lambda_hat sigma^2 e^{-2T}; papers' figures: 1).
    #[arg(long = "lambda-hat", allow_negative_numbers = true)]
    pub lambda_hat: f64,
    /// Diffusion time cut-off T.
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    pub t: f64,
    /// Data mean mu (every coordinate).
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    pub mu: f64,
    /// Data standard deviation sigma.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub sigma: f64,
    /// Ridge R of the least squares ((x^T x + n R)^-1 x^T y); 0 = ridgeless / minimum norm.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub ridge: f64,
}

impl ModelArgs {
    fn params(&self, model: DataModel) -> anyhow::Result<Params> {
        let p = Params {
            d: self.d,
            n: self.n,
            mu: self.mu,
            sigma: self.sigma,
            t: self.t,
            lambda_hat: self.lambda_hat,
            ridge: self.ridge,
            data_model: model,
        };
        p.validate().context("linear model settings")?;
        Ok(p)
    }
}

#[derive(Args, Debug)]
pub struct TheoryArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// forward (the seeds' simulation) or reverse (App. B.1/C.1, what Theorem 3.1 is about).
    #[arg(long = "data-model", default_value = "forward")]
    pub data_model: DataModel,
    /// Number of simulations.
    #[arg(long, default_value_t = 500)]
    pub sims: usize,
    /// Seed (simulation s uses ChaCha8 stream s + 1; the original set stream 0).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Size N of the original set O for E_TG, E_OG, Δ, P(Δ>0) (papers: 10^4); 0 skips Δ.
    #[arg(long = "n-original", default_value_t = 10_000)]
    pub n_original: usize,
    /// Draw T independently of O (default: T is a random subset of O, as in the seeds).
    #[arg(long)]
    pub independent_train: bool,
    /// KDE width: mixing (sigma m^(-1/d), the seeds') or l2-opt (eq. 2.11).
    #[arg(long = "eps-rule", default_value = "mixing")]
    pub eps_rule: EpsRule,
    /// auto (Wishart sufficient statistics when n > 2d and Δ is not needed) or explicit.
    #[arg(long, default_value = "auto")]
    pub sampler: Sampler,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Default output folder of `linear sweep`.
const DEFAULT_OUT: &str = "out/linear";

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Sweep settings (TOML, strict keys).
    #[arg(long, default_value = "configs/linear.toml")]
    pub config: PathBuf,
    /// Output folder (CSV, plots, run.toml), relative to the working folder unless absolute.
    #[arg(long, default_value = DEFAULT_OUT)]
    pub out: PathBuf,
}

pub fn run(args: LinearArgs) -> anyhow::Result<()> {
    match args.sub {
        LinearSub::Theory(a) => run_theory(a),
        LinearSub::Simulate(a) => run_simulate(a),
        LinearSub::Sweep(a) => run_sweep(a),
    }
}

/// Print a JSON object as `key = value` lines, or as one JSON line.
fn print(v: &Value, as_json: bool) {
    if as_json {
        println!("{v}");
        return;
    }
    if let Value::Object(m) = v {
        for (k, x) in m {
            let s = match x {
                Value::Null => "inf / n.a.".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("{k:<28} {s}");
        }
    }
}

fn theory_json(p: &Params) -> Value {
    let th = theory::kl_var_theorem(p.d, p.n, p.lambda_hat, p.t);
    let limit = theory::kl_var_theorem(p.d, usize::MAX, p.lambda_hat, p.t).map(|t| t.total);
    let t_mix = theory::t_mix(p.sigma, p.n, p.d);
    json!({
        "d": p.d,
        "n": p.n,
        "alpha": p.alpha(),
        "lambda_hat": p.lambda_hat,
        "lambda": p.lambda(),
        "t": p.t,
        "delta_t": p.delta_t(),
        "mu": p.mu,
        "sigma": p.sigma,
        "sigma_x2_population": p.sigma_x2_population(),
        "kl_var_theory": th.map(|t| t.total),
        "kl_var_theory_per_d": th.map(|t| t.total / p.d as f64),
        "kl_var_theory_first_order": th.map(|t| t.first_order),
        "kl_var_theory_second_order": th.map(|t| t.second_order),
        "kl_var_theory_alpha0": limit,
        "kl_var_theory_form": "quadratic (1/4)tr((A-I)^2) of the reverse data model, alpha < 1, O(lambda_hat^3) dropped",
        "t_mix": t_mix,
        "sqrt_2_t_mix": (2.0 * t_mix).sqrt(),
        "eps_opt": theory::eps_opt(p.sigma, p.n, p.d),
        "eps_mixing": theory::eps_mixing(p.sigma, p.n, p.d),
    })
}

fn run_theory(a: TheoryArgs) -> anyhow::Result<()> {
    let p = a.model.params(DataModel::Reverse)?;
    print(&theory_json(&p), a.json);
    Ok(())
}

fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {what}  {{msg}}  ETA {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb
}

fn summary_json(p: &Params, s: &Summary) -> Value {
    let pd = s.p_delta_pos;
    json!({
        "data_model": p.data_model.as_str(),
        "sims": s.sims,
        "singular": s.singular,
        "kl_var_mean": s.kl_var.mean,
        "kl_var_se": s.kl_var.se,
        "kl_var_quad_mean": s.kl_var_quad.mean,
        "kl_var_quad_se": s.kl_var_quad.se,
        "kl_mean_mean": s.kl_mean.mean,
        "kl_mean_se": s.kl_mean.se,
        "hellinger2_mean": s.hellinger2.mean,
        "hellinger2_se": s.hellinger2.se,
        "p_delta_pos": pd.map(|x| x.p),
        "p_delta_pos_lo": pd.map(|x| x.lo),
        "p_delta_pos_hi": pd.map(|x| x.hi),
        "delta_pos_count": pd.map(|x| x.k),
        "delta_rel_mean": s.delta_rel.map(|x| x.mean),
        "delta_rel_se": s.delta_rel.map(|x| x.se),
    })
}

fn run_simulate(a: SimulateArgs) -> anyhow::Result<()> {
    let p = a.model.params(a.data_model)?;
    let start = Instant::now();
    let original = if a.n_original > 0 {
        Some(
            OriginalSet::draw(&p, a.n_original, a.eps_rule, a.seed)
                .context("original set (--n-original)")?,
        )
    } else {
        None
    };
    let opts = SimOptions {
        sims: a.sims,
        seed: a.seed,
        train_subset: !a.independent_train,
        sampler: a.sampler,
    };
    let pb = progress_bar(a.sims as u64, "simulations");
    let (_, s) =
        simulate(&p, &opts, original.as_ref(), &|| pb.inc(1)).context("linear simulate")?;
    pb.finish_and_clear();
    let mut v = summary_json(&p, &s);
    let th = theory::kl_var_theorem(p.d, p.n, p.lambda_hat, p.t);
    let o = v.as_object_mut().expect("object");
    let extra = json!({
        "d": p.d,
        "n": p.n,
        "alpha": p.alpha(),
        "lambda_hat": p.lambda_hat,
        "t": p.t,
        "mu": p.mu,
        "sigma": p.sigma,
        "ridge": p.ridge,
        "seed": a.seed,
        "sampler": if opts.uses_wishart(&p, original.is_some()) { "wishart" } else { "explicit" },
        "n_original": a.n_original,
        "train_from": if original.is_none() { "n.a." } else if a.independent_train { "independent" } else { "subset-of-original" },
        "eps_rule": match a.eps_rule { EpsRule::Mixing => "mixing", EpsRule::L2Opt => "l2-opt" },
        "kl_var_theory": th.map(|t| t.total),
        "seconds": start.elapsed().as_secs_f64(),
    });
    for (k, x) in extra.as_object().expect("object") {
        o.insert(k.clone(), x.clone());
    }
    print(&v, a.json);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sweep

/// `configs/linear.toml`. Every section can be switched off with `enabled = false`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweepConfig {
    pub seed: u64,
    pub mu: f64,
    pub sigma: f64,
    pub t: f64,
    /// Dimensions of the H², P(Δ>0) and KL plots.
    pub dims: Vec<usize>,
    pub h2: H2Section,
    pub p_delta: PDeltaSection,
    pub p_delta_large: PDeltaLargeSection,
    pub kl_alpha: KlAlphaSection,
    pub kl_lambda: KlLambdaSection,
}

/// H² (and KL) vs n, seed 001 Fig. 3.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct H2Section {
    pub enabled: bool,
    pub data_model: DataModel,
    pub lambda_hat: f64,
    pub n: Vec<usize>,
    pub sims: usize,
}

/// P(Δ>0) vs n/d, seed 001 Fig. 4 left.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PDeltaSection {
    pub enabled: bool,
    pub data_model: DataModel,
    pub lambda_hat: f64,
    pub n_original: usize,
    pub eps_rule: EpsRule,
    pub n_over_d: Vec<f64>,
    pub sims: usize,
}

/// P(Δ>0) as n approaches N, seed 001 Fig. 4 right (one dimension; same O as `p_delta`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PDeltaLargeSection {
    pub enabled: bool,
    pub d: usize,
    pub n: Vec<usize>,
    pub sims: usize,
}

/// KL_var/d vs alpha = d/n, seed 000 Fig. 2 (theory curve + Monte Carlo).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KlAlphaSection {
    pub enabled: bool,
    pub data_model: DataModel,
    pub lambda_hat: f64,
    pub alpha: Vec<f64>,
    pub sims: usize,
}

/// KL_var/d vs lambda_hat at fixed n (seed 000 Fig. 1 right / seed 001 Fig. 2 right).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KlLambdaSection {
    pub enabled: bool,
    pub data_model: DataModel,
    pub n: usize,
    pub lambda_hat: Vec<f64>,
    pub sims: usize,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            mu: 10.0,
            sigma: 1.0,
            t: 2.0,
            dims: vec![16, 100],
            h2: H2Section::default(),
            p_delta: PDeltaSection::default(),
            p_delta_large: PDeltaLargeSection::default(),
            kl_alpha: KlAlphaSection::default(),
            kl_lambda: KlLambdaSection::default(),
        }
    }
}

impl Default for H2Section {
    fn default() -> Self {
        Self {
            enabled: true,
            data_model: DataModel::Forward,
            lambda_hat: 1.0,
            n: vec![
                4, 8, 12, 16, 24, 32, 50, 75, 100, 150, 200, 300, 500, 1000, 2000, 5000, 10000,
            ],
            sims: 100,
        }
    }
}

impl Default for PDeltaSection {
    fn default() -> Self {
        Self {
            enabled: true,
            data_model: DataModel::Forward,
            lambda_hat: 1.0,
            n_original: 10_000,
            eps_rule: EpsRule::Mixing,
            n_over_d: vec![0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 8.0],
            sims: 100,
        }
    }
}

impl Default for PDeltaLargeSection {
    fn default() -> Self {
        Self {
            enabled: true,
            d: 16,
            n: vec![1000, 3000, 5000, 7000, 9000, 9500, 9900],
            sims: 50,
        }
    }
}

impl Default for KlAlphaSection {
    fn default() -> Self {
        Self {
            enabled: true,
            data_model: DataModel::Reverse,
            lambda_hat: 0.1,
            alpha: vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9],
            sims: 200,
        }
    }
}

impl Default for KlLambdaSection {
    fn default() -> Self {
        Self {
            enabled: true,
            data_model: DataModel::Reverse,
            n: 10_000,
            lambda_hat: vec![0.01, 0.03, 0.1, 0.3, 1.0],
            sims: 100,
        }
    }
}

impl SweepConfig {
    fn validate(&self) -> anyhow::Result<()> {
        let base = Params {
            mu: self.mu,
            sigma: self.sigma,
            t: self.t,
            ..Params::new(2, 2, 0.0)
        };
        base.validate()?;
        if self.dims.is_empty() || self.dims.iter().any(|&d| d == 0 || d > 4096) {
            bail!(
                "dims = {:?}: give one or more dimensions between 1 and 4096",
                self.dims
            );
        }
        let sims = [
            ("h2.sims", self.h2.sims),
            ("p_delta.sims", self.p_delta.sims),
            ("p_delta_large.sims", self.p_delta_large.sims),
            ("kl_alpha.sims", self.kl_alpha.sims),
            ("kl_lambda.sims", self.kl_lambda.sims),
        ];
        for (k, v) in sims {
            if v == 0 {
                bail!("{k} = 0: run at least one simulation");
            }
        }
        if self.h2.n.iter().any(|&n| n < 2) {
            bail!("h2.n = {:?}: every n must be >= 2", self.h2.n);
        }
        if self
            .p_delta
            .n_over_d
            .iter()
            .any(|&r| !(r.is_finite() && r > 0.0))
        {
            bail!(
                "p_delta.n_over_d = {:?}: use ratios > 0",
                self.p_delta.n_over_d
            );
        }
        if self.p_delta.enabled || self.p_delta_large.enabled {
            if self.p_delta.n_original < 2 {
                bail!("p_delta.n_original must be >= 2");
            }
            let too_big = self
                .p_delta_large
                .n
                .iter()
                .any(|&n| n < 2 || n > self.p_delta.n_original);
            if self.p_delta_large.enabled && too_big {
                bail!(
                    "p_delta_large.n = {:?}: each n must be in 2..=p_delta.n_original ({})",
                    self.p_delta_large.n,
                    self.p_delta.n_original
                );
            }
        }
        if self
            .kl_alpha
            .alpha
            .iter()
            .any(|&a| !(a.is_finite() && a > 0.0))
        {
            bail!("kl_alpha.alpha = {:?}: use alpha > 0", self.kl_alpha.alpha);
        }
        if self.kl_lambda.n < 2
            || self
                .kl_lambda
                .lambda_hat
                .iter()
                .any(|&l| !(l.is_finite() && l > 0.0))
        {
            bail!("kl_lambda: n must be >= 2 and every lambda_hat > 0");
        }
        Ok(())
    }

    fn params(&self, d: usize, n: usize, lambda_hat: f64, model: DataModel) -> Params {
        Params {
            d,
            n,
            mu: self.mu,
            sigma: self.sigma,
            t: self.t,
            lambda_hat,
            ridge: 0.0,
            data_model: model,
        }
    }
}

/// A per-point seed from the run seed, a section tag and the point: the one seed derivation
/// (`memdiff_data::seed::derive_seed`). `x` is the point's n, or a float's bits (λ̂), so that
/// close values never share a seed.
fn point_seed(seed: u64, tag: u64, d: usize, x: u64) -> u64 {
    memdiff_data::seed::derive_seed(seed, "linear", &[tag, d as u64, x])
}

/// Writes a CSV table atomically (numbers and plain words only: no quoting needed).
fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut s = header.join(",");
    s.push('\n');
    for r in rows {
        s.push_str(&r.join(","));
        s.push('\n');
    }
    atomic::write_bytes(path, s.as_bytes())?;
    Ok(())
}

fn f(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.8e}")
    } else if x.is_nan() {
        "nan".into()
    } else if x > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

fn n_for_alpha(d: usize, alpha: f64) -> usize {
    ((d as f64 / alpha).round() as usize).max(2)
}

fn run_sweep(a: SweepArgs) -> anyhow::Result<()> {
    let cfg: SweepConfig = load_toml(&a.config)?;
    cfg.validate()
        .with_context(|| format!("config {}", a.config.display()))?;
    let out = &a.out;
    crate::cmd::log_output_folder(out, out.as_os_str() == DEFAULT_OUT);
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create output folder {}", out.display()))?;
    RunRecord::new("linear sweep", "cpu", cfg.seed, &cfg)
        .write(out)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = Instant::now();

    // Progress: total simulations of every enabled section.
    let mut total = 0usize;
    let nd = cfg.dims.len();
    if cfg.h2.enabled {
        total += nd * cfg.h2.n.len() * cfg.h2.sims;
    }
    if cfg.p_delta.enabled {
        total += nd * cfg.p_delta.n_over_d.len() * cfg.p_delta.sims;
    }
    if cfg.p_delta_large.enabled {
        total += cfg.p_delta_large.n.len() * cfg.p_delta_large.sims;
    }
    if cfg.kl_alpha.enabled {
        total += nd * cfg.kl_alpha.alpha.len() * cfg.kl_alpha.sims;
    }
    if cfg.kl_lambda.enabled {
        total += nd * cfg.kl_lambda.lambda_hat.len() * cfg.kl_lambda.sims;
    }
    let pb = progress_bar(total as u64, "simulations");
    let tick = || pb.inc(1);
    let mut written: Vec<PathBuf> = Vec::new();

    // KL_var/d vs alpha: theory curve + Monte Carlo (quadratic and exact forms).
    if cfg.kl_alpha.enabled {
        let s = &cfg.kl_alpha;
        let mut rows = Vec::new();
        let mut plot = LinePlot::new(
            format!(
                "KL_var/d vs α = d/n ({} data model, λ̂ = {})",
                s.data_model, s.lambda_hat
            ),
            "α = d / n",
            "KL_var / d",
        );
        plot.log_x = true;
        plot.log_y = true;
        plot.legend = LegendPos::UpperLeft;
        for (k, &d) in cfg.dims.iter().enumerate() {
            pb.set_message(format!("KL vs alpha, d = {d}"));
            let mut quad = Vec::new();
            let mut exact = Vec::new();
            for &alpha in &s.alpha {
                let n = n_for_alpha(d, alpha);
                let p = cfg.params(d, n, s.lambda_hat, s.data_model);
                let opts = SimOptions::new(s.sims, point_seed(cfg.seed, 1, d, n as u64));
                let (_, sm) = simulate(&p, &opts, None, &tick)
                    .with_context(|| format!("kl_alpha d = {d} n = {n}"))?;
                let th = theory::kl_var_theorem(d, n, s.lambda_hat, cfg.t).map(|t| t.total);
                let df = d as f64;
                let alpha_eff = p.alpha();
                quad.push((alpha_eff, sm.kl_var_quad.mean / df, sm.kl_var_quad.se / df));
                if sm.kl_var.mean.is_finite() {
                    exact.push((alpha_eff, sm.kl_var.mean / df));
                }
                rows.push(vec![
                    d.to_string(),
                    n.to_string(),
                    f(alpha_eff),
                    f(s.lambda_hat),
                    s.data_model.to_string(),
                    s.sims.to_string(),
                    sm.singular.to_string(),
                    f(sm.kl_var_quad.mean),
                    f(sm.kl_var_quad.se),
                    f(sm.kl_var.mean),
                    f(sm.kl_var.se),
                    f(sm.kl_mean.mean),
                    th.map(f).unwrap_or_else(|| "nan".into()),
                ]);
            }
            // Theory curve on a fine alpha grid below 1.
            let curve: Vec<(f64, f64)> = (0..200)
                .map(|i| {
                    let lo = s
                        .alpha
                        .iter()
                        .copied()
                        .fold(f64::INFINITY, f64::min)
                        .min(0.01);
                    let a = (lo.ln() + (0.995f64.ln() - lo.ln()) * i as f64 / 199.0).exp();
                    let th = theory::kl_var_theorem_alpha(d, a, s.lambda_hat, cfg.t)
                        .map_or(f64::NAN, |t| t.total);
                    (a, th / d as f64)
                })
                .collect();
            plot.series.push(
                Series::line(format!("Theorem 3.1, d = {d}"), curve)
                    .dashed()
                    .with_color(2 * k),
            );
            let band: Vec<(f64, f64, f64)> = quad
                .iter()
                .map(|&(x, y, se)| (x, y - 2.0 * se, y + 2.0 * se))
                .collect();
            plot.series.push(
                Series::points(
                    format!("MC quadratic (1/4)tr((A-I)²), d = {d}"),
                    quad.iter().map(|&(x, y, _)| (x, y)).collect(),
                )
                .with_band(band)
                .with_color(2 * k),
            );
            plot.series.push(
                Series::points(format!("MC exact KL_var, d = {d}"), exact).with_color(2 * k + 1),
            );
        }
        let csv = out.join("kl_alpha.csv");
        write_csv(
            &csv,
            &[
                "d",
                "n",
                "alpha",
                "lambda_hat",
                "data_model",
                "sims",
                "singular",
                "kl_var_quad_mean",
                "kl_var_quad_se",
                "kl_var_mean",
                "kl_var_se",
                "kl_mean_mean",
                "kl_var_theory",
            ],
            &rows,
        )?;
        written.push(csv);
        written.extend(plot.save(&out.join("kl_var_vs_alpha"))?);
    }

    // KL_var/d vs lambda_hat at fixed n.
    if cfg.kl_lambda.enabled {
        let s = &cfg.kl_lambda;
        let mut rows = Vec::new();
        let mut plot = LinePlot::new(
            format!("KL_var/d vs λ̂ (n = {}, {} data model)", s.n, s.data_model),
            "λ̂",
            "KL_var / d",
        );
        plot.log_x = true;
        plot.log_y = true;
        plot.legend = LegendPos::UpperLeft;
        for (k, &d) in cfg.dims.iter().enumerate() {
            pb.set_message(format!("KL vs lambda_hat, d = {d}"));
            let mut quad = Vec::new();
            let mut curve = Vec::new();
            for &lh in &s.lambda_hat {
                let p = cfg.params(d, s.n, lh, s.data_model);
                let opts = SimOptions::new(s.sims, point_seed(cfg.seed, 2, d, lh.to_bits()));
                let (_, sm) = simulate(&p, &opts, None, &tick)
                    .with_context(|| format!("kl_lambda d = {d} lambda_hat = {lh}"))?;
                let th = theory::kl_var_theorem(d, s.n, lh, cfg.t).map(|t| t.total);
                quad.push((lh, sm.kl_var_quad.mean / d as f64));
                if let Some(t) = th {
                    curve.push((lh, t / d as f64));
                }
                rows.push(vec![
                    d.to_string(),
                    s.n.to_string(),
                    f(p.alpha()),
                    f(lh),
                    s.data_model.to_string(),
                    s.sims.to_string(),
                    f(sm.kl_var_quad.mean),
                    f(sm.kl_var_quad.se),
                    f(sm.kl_var.mean),
                    f(sm.kl_var.se),
                    f(sm.kl_mean.mean),
                    th.map(f).unwrap_or_else(|| "nan".into()),
                ]);
            }
            plot.series.push(
                Series::line(format!("Theorem 3.1, d = {d}"), curve)
                    .dashed()
                    .with_color(2 * k),
            );
            plot.series
                .push(Series::points(format!("MC quadratic, d = {d}"), quad).with_color(2 * k));
        }
        let csv = out.join("kl_lambda.csv");
        write_csv(
            &csv,
            &[
                "d",
                "n",
                "alpha",
                "lambda_hat",
                "data_model",
                "sims",
                "kl_var_quad_mean",
                "kl_var_quad_se",
                "kl_var_mean",
                "kl_var_se",
                "kl_mean_mean",
                "kl_var_theory",
            ],
            &rows,
        )?;
        written.push(csv);
        written.extend(plot.save(&out.join("kl_var_vs_lambda"))?);
    }

    // H² vs n.
    if cfg.h2.enabled {
        let s = &cfg.h2;
        let mut rows = Vec::new();
        let mut plot = LinePlot::new(
            format!(
                "H² vs n ({} data model, λ̂ = {})",
                s.data_model, s.lambda_hat
            ),
            "n",
            "H²(ρ, ρ_G)",
        );
        plot.log_x = true;
        plot.legend = LegendPos::LowerLeft;
        for (k, &d) in cfg.dims.iter().enumerate() {
            pb.set_message(format!("H2 vs n, d = {d}"));
            let mut pts = Vec::new();
            let mut band = Vec::new();
            for &n in &s.n {
                let p = cfg.params(d, n, s.lambda_hat, s.data_model);
                let opts = SimOptions::new(s.sims, point_seed(cfg.seed, 3, d, n as u64));
                let (_, sm) = simulate(&p, &opts, None, &tick)
                    .with_context(|| format!("h2 d = {d} n = {n}"))?;
                let (m, se) = (sm.hellinger2.mean, sm.hellinger2.se);
                pts.push((n as f64, m));
                let se = if se.is_finite() { se } else { 0.0 };
                band.push((n as f64, m - 2.0 * se, m + 2.0 * se));
                rows.push(vec![
                    d.to_string(),
                    n.to_string(),
                    f(n as f64 / d as f64),
                    f(s.lambda_hat),
                    s.data_model.to_string(),
                    s.sims.to_string(),
                    sm.singular.to_string(),
                    f(m),
                    f(sm.hellinger2.se),
                    f(sm.kl_var.mean),
                    f(sm.kl_var_quad.mean),
                    f(sm.kl_mean.mean),
                ]);
            }
            plot.series.push(
                Series::line_and_points(format!("d = {d}"), pts)
                    .with_band(band)
                    .with_color(2 * k),
            );
            plot.series.push(
                Series::line(
                    format!("n = d = {d}"),
                    vec![(d as f64, 0.0), (d as f64, 1.0)],
                )
                .dashed()
                .with_color(2 * k),
            );
        }
        let csv = out.join("h2.csv");
        write_csv(
            &csv,
            &[
                "d",
                "n",
                "n_over_d",
                "lambda_hat",
                "data_model",
                "sims",
                "singular",
                "hellinger2_mean",
                "hellinger2_se",
                "kl_var_mean",
                "kl_var_quad_mean",
                "kl_mean_mean",
            ],
            &rows,
        )?;
        written.push(csv);
        written.extend(plot.save(&out.join("h2_vs_n"))?);
    }

    // P(Δ>0): one original set per dimension (the seeds' protocol), shared by both sections.
    if cfg.p_delta.enabled || cfg.p_delta_large.enabled {
        let s = &cfg.p_delta;
        let big_n = s.n_original;
        let mut dims: Vec<usize> = Vec::new();
        if s.enabled {
            dims.extend(&cfg.dims);
        }
        if cfg.p_delta_large.enabled && !dims.contains(&cfg.p_delta_large.d) {
            dims.push(cfg.p_delta_large.d);
        }
        let mut originals: Vec<(usize, OriginalSet)> = Vec::new();
        for &d in &dims {
            pb.set_message(format!("original set, d = {d}, N = {big_n}"));
            let p = cfg.params(d, 2, s.lambda_hat, s.data_model);
            let o = OriginalSet::draw(&p, big_n, s.eps_rule, point_seed(cfg.seed, 4, d, 0))
                .with_context(|| format!("original set d = {d}"))?;
            originals.push((d, o));
        }
        let orig = |d: usize| &originals.iter().find(|(x, _)| *x == d).expect("drawn").1;
        let run_point =
            |d: usize, n: usize, sims: usize| -> anyhow::Result<(Summary, Vec<String>)> {
                let p = cfg.params(d, n, s.lambda_hat, s.data_model);
                let opts = SimOptions::new(sims, point_seed(cfg.seed, 5, d, n as u64));
                let (_, sm) = simulate(&p, &opts, Some(orig(d)), &tick)
                    .with_context(|| format!("p_delta d = {d} n = {n}"))?;
                let pd = sm.p_delta_pos.expect("original set given");
                let dr = sm.delta_rel.expect("original set given");
                let row = vec![
                    d.to_string(),
                    n.to_string(),
                    f(n as f64 / d as f64),
                    big_n.to_string(),
                    f(s.lambda_hat),
                    s.data_model.to_string(),
                    sims.to_string(),
                    sm.singular.to_string(),
                    pd.k.to_string(),
                    f(pd.p),
                    f(pd.lo),
                    f(pd.hi),
                    f(dr.mean),
                    f(dr.se),
                    f(sm.hellinger2.mean),
                ];
                Ok((sm, row))
            };
        let header = [
            "d",
            "n",
            "n_over_d",
            "n_original",
            "lambda_hat",
            "data_model",
            "sims",
            "singular",
            "delta_pos",
            "p_delta_pos",
            "p_lo",
            "p_hi",
            "delta_rel_mean",
            "delta_rel_se",
            "hellinger2_mean",
        ];
        if s.enabled {
            let mut rows = Vec::new();
            let mut plot = LinePlot::new(
                format!(
                    "P(Δ>0) vs n/d ({} data model, λ̂ = {}, N = {big_n}, 95% Wilson)",
                    s.data_model, s.lambda_hat
                ),
                "n / d",
                "P(Δ > 0)",
            );
            plot.log_x = true;
            plot.y_range = Some((-0.02, 1.02));
            plot.legend = LegendPos::LowerRight;
            for (k, &d) in cfg.dims.iter().enumerate() {
                pb.set_message(format!("P(Δ>0) vs n/d, d = {d}"));
                let mut pts = Vec::new();
                let mut band = Vec::new();
                for &r in &s.n_over_d {
                    let n = ((r * d as f64).round() as usize).clamp(2, big_n);
                    let (sm, row) = run_point(d, n, s.sims)?;
                    let pd = sm.p_delta_pos.expect("original set given");
                    let x = n as f64 / d as f64;
                    pts.push((x, pd.p));
                    band.push((x, pd.lo, pd.hi));
                    rows.push(row);
                }
                plot.series.push(
                    Series::line_and_points(format!("d = {d}"), pts)
                        .with_band(band)
                        .with_color(2 * k),
                );
            }
            let csv = out.join("p_delta.csv");
            write_csv(&csv, &header, &rows)?;
            written.push(csv);
            written.extend(plot.save(&out.join("p_delta_vs_n_over_d"))?);
        }
        if cfg.p_delta_large.enabled {
            let l = &cfg.p_delta_large;
            let d = l.d;
            pb.set_message(format!("P(Δ>0) as n -> N, d = {d}"));
            let mut rows = Vec::new();
            let mut pts = Vec::new();
            let mut band = Vec::new();
            for &n in &l.n {
                let (sm, row) = run_point(d, n, l.sims)?;
                let pd = sm.p_delta_pos.expect("original set given");
                let x = n as f64 / big_n as f64;
                pts.push((x, pd.p));
                band.push((x, pd.lo, pd.hi));
                rows.push(row);
            }
            let mut plot = LinePlot::new(
                format!("P(Δ>0) as n → N (d = {d}, N = {big_n}, T ⊂ O, 95% Wilson)"),
                "n / N",
                "P(Δ > 0)",
            );
            plot.y_range = Some((-0.02, 1.02));
            plot.legend = LegendPos::LowerLeft;
            plot.series.push(
                Series::line_and_points(format!("d = {d}"), pts)
                    .with_band(band)
                    .with_color(0),
            );
            plot.series.push(
                Series::line("0.5", vec![(0.0, 0.5), (1.0, 0.5)])
                    .dashed()
                    .with_color(7),
            );
            let csv = out.join("p_delta_large.csv");
            write_csv(&csv, &header, &rows)?;
            written.push(csv);
            written.extend(plot.save(&out.join("p_delta_vs_n_over_big_n"))?);
        }
    }

    pb.finish_and_clear();
    eprintln!(
        "linear sweep: {} files in {} ({:.1} s)",
        written.len(),
        out.display(),
        start.elapsed().as_secs_f64()
    );
    for w in &written {
        println!("{}", w.display());
    }
    Ok(())
}
