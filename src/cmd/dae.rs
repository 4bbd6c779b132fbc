//! `memdiff dae`: the two-layer denoising-autoencoder generative model (docs/METHOD.md §8):
//! training over time, mode collapse and model collapse, and the skip-only closed forms.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use memdiff_dae::closed;
use memdiff_dae::config::DaeConfig;
use memdiff_dae::Method;
use memdiff_data::config::{load_toml, RunRecord};
use serde_json::json;

/// The two-layer denoising-autoencoder generative model (tied weights, skip connection).
///
/// Example: memdiff dae run --config configs/dae-gmm-relu.toml --out out/dae/gmm-relu
/// Example: memdiff dae closed-form --m 0.3 --steps 20 --json
#[derive(Args, Debug)]
pub struct DaeArgs {
    #[command(subcommand)]
    pub sub: DaeSub,
}

#[derive(Subcommand, Debug)]
pub enum DaeSub {
    /// Train one DAE per interpolation time by SGD, sample it at each training time (and per
    /// generation), write CSVs, plots and summary.json into the run folder.
    Run(RunArgs),
    /// Closed forms of the skip-only model (k = 0): optimal and SGD-trained skip c(t) and the
    /// generated per-coordinate variance.
    ClosedForm(ClosedArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Settings (TOML, strict keys; docs/METHOD.md §8 lists them).
    #[arg(long)]
    pub config: PathBuf,
    /// Run folder (CSV, SVG/PNG plots, summary.json, run.toml).
    #[arg(long)]
    pub out: PathBuf,
    /// Override the config's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the config's dimension d.
    #[arg(long)]
    pub d: Option<usize>,
    /// Override the config's number of generations.
    #[arg(long)]
    pub generations: Option<usize>,
    /// Print summary.json on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ClosedArgs {
    /// Per-coordinate second moment m = E|x0|^2/d of the target (its average eigenvalue).
    #[arg(long, allow_negative_numbers = true)]
    pub m: f64,
    /// Interpolation steps N.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// sde or ode.
    #[arg(long, default_value = "sde")]
    pub method: Method,
    /// SDE diffusion scale eps0.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub eps0: f64,
    /// Training time tau = SGD steps/d (with --lr, --d, --c0); omitted: the optimum c*.
    #[arg(long, allow_negative_numbers = true)]
    pub tau: Option<f64>,
    /// SGD learning rate eta (with --tau).
    #[arg(long, default_value_t = 0.3, allow_negative_numbers = true)]
    pub lr: f64,
    /// Dimension d (with --tau).
    #[arg(long, default_value_t = 1000)]
    pub d: usize,
    /// Skip connection at the start of training (with --tau).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub c0: f64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DaeArgs) -> anyhow::Result<()> {
    match args.sub {
        DaeSub::Run(a) => run_experiment(a),
        DaeSub::ClosedForm(a) => run_closed(a),
    }
}

fn run_experiment(a: RunArgs) -> anyhow::Result<()> {
    let mut cfg: DaeConfig = load_toml(&a.config)?;
    if let Some(s) = a.seed {
        cfg.seed = s;
    }
    if let Some(d) = a.d {
        cfg.d = d;
    }
    if let Some(g) = a.generations {
        cfg.generations = g;
    }
    cfg.validate()
        .with_context(|| format!("config {}", a.config.display()))?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create the run folder {}", a.out.display()))?;
    RunRecord::new("dae run", "cpu", cfg.seed, &cfg)
        .write(&a.out)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let quiet = a.json;
    let s = memdiff_dae::run::run(&cfg, &a.out, &|line| {
        if !quiet {
            eprintln!("{line}");
        }
    })?;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
        return Ok(());
    }
    println!(
        "d = {}, k = {}, {}, N = {}, {} sampler; target m = {:.4}; {:.1} s",
        s.d, s.k, s.activation, s.interpolation_steps, s.sampler, s.target_second_moment, s.seconds
    );
    println!(
        "{:>3} {:>7} {:>6} {:>9} {:>8} {:>7}  variance ratio generated/target (± s.e.)",
        "gen", "tau", "modes", "mode err", "energy", "odd |z|"
    );
    for sn in &s.snapshots {
        let ratios: Vec<String> = sn
            .directions
            .iter()
            .map(|d| format!("{} {:.3}±{:.3}", d.direction, d.ratio.value, d.ratio.se))
            .collect();
        println!(
            "{:>3} {:>7} {:>6} {:>9.3} {:>8.4} {:>7.1}  {}",
            sn.generation,
            sn.tau,
            sn.modes.len(),
            sn.mode_error,
            sn.energy_distance,
            sn.odd_moments.max_abs_z,
            ratios.join(", ")
        );
    }
    println!("wrote {}", a.out.display());
    Ok(())
}

fn run_closed(a: ClosedArgs) -> anyhow::Result<()> {
    if !(a.m.is_finite() && a.m > 0.0) {
        anyhow::bail!("--m must be a finite number > 0, got {}", a.m);
    }
    if a.steps < 2 {
        anyhow::bail!("--steps must be at least 2");
    }
    if !(a.eps0.is_finite() && a.eps0 >= 0.0) {
        anyhow::bail!("--eps0 must be a finite number >= 0, got {}", a.eps0);
    }
    if a.tau.is_some() && (!(a.lr.is_finite() && a.lr > 0.0) || a.d == 0 || !a.c0.is_finite()) {
        anyhow::bail!("--lr must be > 0, --d > 0 and --c0 finite");
    }
    let times: Vec<f64> = (0..a.steps).map(|n| n as f64 / a.steps as f64).collect();
    let c: Vec<f64> = match a.tau {
        None => times.iter().map(|&t| closed::c_star(t, a.m)).collect(),
        Some(tau) => {
            if !(tau.is_finite() && tau >= 0.0) {
                anyhow::bail!("--tau must be a finite number >= 0, got {tau}");
            }
            let steps = (tau * a.d as f64).round() as usize;
            times
                .iter()
                .map(|&t| closed::c_sgd(t, a.m, a.c0, a.lr, a.d, steps))
                .collect()
        }
    };
    let v = closed::generated_variance(&c, a.method, a.eps0);
    let out = json!({
        "m": a.m,
        "steps": a.steps,
        "method": format!("{:?}", a.method).to_lowercase(),
        "tau": a.tau,
        "times": times,
        "skips": c,
        "generated_variance": v,
        "generated_over_m": v / a.m,
    });
    if a.json {
        println!("{out}");
    } else {
        println!("t       c");
        for (t, c) in times.iter().zip(&c) {
            println!("{t:<7.3} {c:.6}");
        }
        println!(
            "generated per-coordinate variance {v:.6} (m = {}; ratio {:.4})",
            a.m,
            v / a.m
        );
    }
    Ok(())
}
