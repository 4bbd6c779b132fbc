//! `memdiff linear`: the linear one-step diffusion model of docs/METHOD.md §6 — closed-form theory
//! (Theorem 3.1, t_M, L2-optimal ε), Monte Carlo over simulations (KL, H², P(Δ>0)) and the
//! sweep that reproduces the seeds' linear-model figures (CSV + SVG/PNG plots).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use memdiff_data::config::load_toml;
use memdiff_data::progress;
use memdiff_linear::sweep::{self, SweepConfig};
use memdiff_linear::theory;
use memdiff_linear::{
    simulate, DataModel, EpsRule, OriginalSet, Params, Sampler, SimOptions, Summary,
};
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
    let pb = progress::bar(a.sims as u64, "simulations");
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

fn run_sweep(a: SweepArgs) -> anyhow::Result<()> {
    let cfg: SweepConfig = load_toml(&a.config)?;
    cfg.validate()
        .with_context(|| format!("config {}", a.config.display()))?;
    let out = &a.out;
    crate::cmd::log_output_folder(out, out.as_os_str() == DEFAULT_OUT);
    let start = Instant::now();
    let pb = progress::bar(cfg.simulations(), "simulations");
    let written = sweep::run(&cfg, out, &pb)?;
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
