//! The `memdiff dae run` experiment: for each generation, train the `N` denoisers by SGD and, at
//! every training time `τ` of the config, sample them and measure the projected density, the
//! per-direction variance ratios, the skip connections and the modes. Writes CSVs, plots and
//! `summary.json` into the run folder and returns the [`Summary`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::closed;
use crate::config::{Covariance, DaeConfig};
use crate::model::Sgd;
use crate::sample::{self, SampleOpts};
use crate::stats::{self, Est, Mode, ModeOpts, OddMoments};
use crate::target::{self, Mixture, Source};
use crate::train::{self, Denoisers, NetSettings, KIND_POOL, KIND_REFERENCE};
use crate::DaeError;

/// Generated and target variance along one direction, and their ratio.
#[derive(Clone, Debug, Serialize)]
pub struct DirStat {
    /// "1", "2", … for the projection axes, "bulk" for the mean over the other axes.
    pub direction: String,
    pub generated: Est,
    /// Variance of the original (generation-0) target along the direction.
    pub target: f64,
    /// generated / target, with its standard error.
    pub ratio: Est,
}

/// One measurement: generation `g`, training time `τ`.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub generation: usize,
    pub tau: f64,
    pub steps: usize,
    /// Mean per-coordinate training loss over the steps since the previous snapshot, averaged
    /// over the times.
    pub train_loss: f64,
    /// Skip connections `c(t_n)` of the `N` networks.
    pub skips: Vec<f64>,
    /// Their closed form for the skip-only part (eq. (M7)) at this many steps.
    pub skips_closed_form: Vec<f64>,
    pub directions: Vec<DirStat>,
    /// The skip-only prediction (eq. (M8)) of the generated variance orthogonal to `W`, from the
    /// learned skips.
    pub bulk_variance_k0: f64,
    pub odd_moments: OddMoments,
    pub modes: Vec<Mode>,
    /// Mean distance from each target mode to the nearest generated mode.
    pub mode_error: f64,
    /// Energy distance between the projected generated and target samples.
    pub energy_distance: f64,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub d: usize,
    pub k: usize,
    pub activation: String,
    pub interpolation_steps: usize,
    pub sampler: String,
    /// `E‖x0‖²/d` of the generation-0 target (the average eigenvalue of its second moment).
    pub target_second_moment: f64,
    /// Target variance along the projection axes and the mean over the others.
    pub target_variances: Vec<f64>,
    pub target_bulk_variance: f64,
    pub target_modes: Vec<Mode>,
    /// The target's odd moments (for comparison with the generated ones).
    pub target_odd_moments: OddMoments,
    /// How many training images the MNIST spectrum came from (0 otherwise).
    pub mnist_digits: usize,
    pub snapshots: Vec<Snapshot>,
    pub seconds: f64,
}

/// The generation-0 target of a config, and how many MNIST digits it came from.
pub fn build_target(cfg: &DaeConfig) -> Result<(Mixture, usize), DaeError> {
    let t = &cfg.target;
    let (std, d, digits) = match t.covariance {
        Covariance::Isotropic => (vec![t.std; cfg.d], cfg.d, 0),
        Covariance::Power => (
            target::power_law_std(cfg.d, t.power_scale, t.power_exponent),
            cfg.d,
            0,
        ),
        Covariance::MnistDigit => {
            let (ev, n) = target::mnist_digit_spectrum(
                &t.mnist_images,
                &t.mnist_labels,
                t.digit,
                t.mnist_scale,
            )?;
            let d = ev.len();
            (ev.iter().map(|v| v.sqrt()).collect(), d, n)
        }
    };
    let std = if t.normalize && t.covariance != Covariance::Isotropic {
        let mean = std.iter().map(|s| s * s).sum::<f64>() / d as f64;
        if mean <= 0.0 {
            return Err(DaeError::invalid(
                "target.normalize",
                "the spectrum is zero",
            ));
        }
        std.iter().map(|s| s / mean.sqrt()).collect()
    } else {
        std
    };
    let centroids = match &t.centroids {
        Some(c) => c.clone(),
        None if t.clusters <= 1 => vec![vec![0.0]],
        None => Mixture::polygon(t.clusters, t.radius),
    };
    Ok((Mixture::new(d, centroids, std)?, digits))
}

fn check_finite(den: &Denoisers, g: usize, tau: f64) -> Result<(), DaeError> {
    let bad = den
        .nets
        .iter()
        .any(|n| !n.c.is_finite() || n.w.iter().any(|w| !w.is_finite()));
    if bad {
        return Err(DaeError::invalid(
            "train.lr",
            format!("SGD diverged (non-finite weights) in generation {g} by τ = {tau}; lower the learning rate or model.warm"),
        ));
    }
    Ok(())
}

/// Runs the experiment of `cfg`, writing into `out` (created). `progress` receives one line per
/// measurement.
pub fn run(cfg: &DaeConfig, out: &Path, progress: &dyn Fn(&str)) -> Result<Summary, DaeError> {
    cfg.validate()?;
    let start = Instant::now();
    let (mix, digits) = build_target(cfg)?;
    let d = mix.d;
    let p = cfg.analysis.dims.min(d);
    let nt = cfg.sampling.steps;
    let m = cfg.sampling.samples;
    let seed = cfg.seed;
    let opts = SampleOpts {
        method: cfg.sampling.method,
        eps0: cfg.sampling.eps0,
    };
    let mode_opts = ModeOpts {
        bandwidth: cfg.analysis.kde_bandwidth,
        grid: 80,
        threshold: cfg.analysis.mode_threshold,
    };
    let sgd = Sgd {
        lr: cfg.train.lr,
        weight_decay: cfg.train.weight_decay,
    };
    let settings = NetSettings {
        k: cfg.model.k,
        act: cfg.model.activation,
        init_std: cfg.model.init_std,
        warm: cfg.model.warm,
        warm_dims: p,
        c0: cfg.model.c0,
        sgd,
    };

    // Reference sample of the target.
    let mut r = train::rng(seed, train::stream(KIND_REFERENCE, 0, 0));
    let mut reference = vec![0.0; m * d];
    for row in reference.chunks_mut(d) {
        mix.sample_into(&mut r, row);
    }
    let ref_proj = stats::project(&reference, d, p);
    let target_modes = stats::modes_2d(&ref_proj, mode_opts);
    let target_mode_pts: Vec<(f64, f64)> = target_modes.iter().map(|m| (m.y1, m.y2)).collect();
    let target_variances: Vec<f64> = (0..p).map(|i| mix.variance(i)).collect();
    let target_bulk = (p..d).map(|i| mix.variance(i)).sum::<f64>() / (d - p).max(1) as f64;
    let n_energy = m.min(1000);

    let mut snapshots = Vec::new();
    let mut kept: Vec<Kept> = Vec::new();
    let mut prev: Option<Denoisers> = None;
    let last_steps = (cfg.train.times.last().copied().unwrap_or(1.0) * d as f64).round() as usize;
    for g in 0..cfg.generations {
        let source = match (&prev, cfg.train.samples) {
            (None, 0) => Source::Fresh(mix.clone()),
            (None, n) => {
                let mut r = train::rng(seed, train::stream(KIND_POOL, g, 0));
                let mut rows = vec![0.0f32; n * d];
                let mut x = vec![0.0; d];
                for row in rows.chunks_mut(d) {
                    mix.sample_into(&mut r, &mut x);
                    for (o, v) in row.iter_mut().zip(&x) {
                        *o = *v as f32;
                    }
                }
                Source::Pool {
                    d,
                    rows: Arc::new(rows),
                    uniform: true,
                }
            }
            (Some(den), n) => {
                let size = if n == 0 { last_steps.max(1) } else { n };
                progress(&format!(
                    "generation {g}: sampling {size} training points from generation {}",
                    g - 1
                ));
                let x = sample::generate(&den.nets, &den.times, size, opts, seed, g, 1 << 15);
                Source::Pool {
                    d,
                    rows: Arc::new(x.iter().map(|&v| v as f32).collect()),
                    uniform: n != 0,
                }
            }
        };
        let m_source = source.second_moment();
        let mut den = Denoisers::new(d, nt, &settings, seed, g);
        for (si, &tau) in cfg.train.times.iter().enumerate() {
            let t0 = Instant::now();
            let steps = (tau * d as f64).round() as usize;
            let losses = den.train_to(&source, steps, sgd);
            check_finite(&den, g, tau)?;
            let x = sample::generate(&den.nets, &den.times, m, opts, seed, g, si as u64);
            if x.iter().any(|v| !v.is_finite()) {
                return Err(DaeError::invalid(
                    "train.lr",
                    format!("generated samples are not finite (generation {g}, τ = {tau}); lower the learning rate"),
                ));
            }
            let proj = stats::project(&x, d, p);
            let mut directions: Vec<DirStat> = (0..p)
                .map(|i| {
                    let v = stats::variance(&stats::column(&x, d, i));
                    dir_stat(format!("{}", i + 1), v, target_variances[i])
                })
                .collect();
            let bulk = stats::bulk_variance(&x, d, p);
            directions.push(dir_stat("bulk".into(), bulk, target_bulk));
            let skips = den.skips();
            let skips_closed_form: Vec<f64> = den
                .times
                .iter()
                .map(|&t| closed::c_sgd(t, m_source, cfg.model.c0, sgd.lr, d, steps))
                .collect();
            let modes = stats::modes_2d(&proj, mode_opts);
            let snap = Snapshot {
                generation: g,
                tau,
                steps,
                train_loss: losses.iter().sum::<f64>() / losses.len() as f64,
                bulk_variance_k0: closed::generated_variance(&skips, opts.method, opts.eps0),
                skips,
                skips_closed_form,
                directions,
                odd_moments: stats::odd_moments(&proj),
                mode_error: stats::mode_error(&modes, &target_mode_pts),
                modes,
                energy_distance: stats::energy_distance(&proj[..n_energy], &ref_proj[..n_energy]),
                seconds: t0.elapsed().as_secs_f64(),
            };
            progress(&format!(
                "generation {g} τ = {tau}: {} modes, energy distance {:.3}, variance ratio {}, {:.1} s",
                snap.modes.len(),
                snap.energy_distance,
                snap.directions
                    .iter()
                    .map(|s| format!("{} {:.3}±{:.3}", s.direction, s.ratio.value, s.ratio.se))
                    .collect::<Vec<_>>()
                    .join(", "),
                snap.seconds
            ));
            kept.push((
                g,
                tau,
                proj.into_iter().take(cfg.analysis.plot_points).collect(),
            ));
            snapshots.push(snap);
        }
        prev = Some(den);
    }
    let summary = Summary {
        d,
        k: cfg.model.k,
        activation: cfg.model.activation.name().into(),
        interpolation_steps: nt,
        sampler: format!("{:?}", cfg.sampling.method).to_lowercase(),
        target_second_moment: mix.second_moment(),
        target_variances,
        target_bulk_variance: target_bulk,
        target_modes,
        target_odd_moments: stats::odd_moments(&ref_proj),
        mnist_digits: digits,
        snapshots,
        seconds: start.elapsed().as_secs_f64(),
    };
    write_outputs(out, &summary, &ref_proj, &kept, cfg.analysis.plot_points)?;
    Ok(summary)
}

fn dir_stat(direction: String, v: Est, target: f64) -> DirStat {
    DirStat {
        direction,
        generated: v,
        target,
        ratio: Est {
            value: v.value / target,
            se: v.se / target,
        },
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> DaeError {
    DaeError::Io(format!("cannot write {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), DaeError> {
    memdiff_data::atomic::write_bytes(path, text.as_bytes())
        .map_err(|e| DaeError::Io(e.to_string()))
}

/// Projected points kept for the CSV and the plots: (generation, τ, points).
pub type Kept = (usize, f64, Vec<Vec<f64>>);

fn write_outputs(
    out: &Path,
    s: &Summary,
    ref_proj: &[Vec<f64>],
    kept: &[Kept],
    keep: usize,
) -> Result<(), DaeError> {
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let mut snap = String::from("generation,tau,steps,train_loss,n_modes,mode_error,energy_distance,odd_moment_max_abs_z,bulk_variance,bulk_variance_k0,seconds\n");
    let mut dirs = String::from("generation,tau,direction,generated_variance,generated_variance_se,target_variance,ratio,ratio_se\n");
    let mut skips = String::from("generation,tau,t,c,c_closed_form_k0,c_star\n");
    let mut modes = String::from("generation,tau,y1,y2,height\n");
    for m in &s.target_modes {
        let _ = writeln!(modes, "target,,{:.6},{:.6},{:.6}", m.y1, m.y2, m.height);
    }
    let nt = s.interpolation_steps;
    for sn in &s.snapshots {
        let bulk = sn.directions.last().map_or(f64::NAN, |d| d.generated.value);
        let _ = writeln!(
            snap,
            "{},{},{},{:.6},{},{:.6},{:.6},{:.3},{:.6},{:.6},{:.3}",
            sn.generation,
            sn.tau,
            sn.steps,
            sn.train_loss,
            sn.modes.len(),
            sn.mode_error,
            sn.energy_distance,
            sn.odd_moments.max_abs_z,
            bulk,
            sn.bulk_variance_k0,
            sn.seconds
        );
        for dd in &sn.directions {
            let _ = writeln!(
                dirs,
                "{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6}",
                sn.generation,
                sn.tau,
                dd.direction,
                dd.generated.value,
                dd.generated.se,
                dd.target,
                dd.ratio.value,
                dd.ratio.se
            );
        }
        for (n, (c, cc)) in sn.skips.iter().zip(&sn.skips_closed_form).enumerate() {
            let t = n as f64 / nt as f64;
            let _ = writeln!(
                skips,
                "{},{},{t},{c:.6},{cc:.6},{:.6}",
                sn.generation,
                sn.tau,
                closed::c_star(t, s.target_second_moment)
            );
        }
        for m in &sn.modes {
            let _ = writeln!(
                modes,
                "{},{},{:.6},{:.6},{:.6}",
                sn.generation, sn.tau, m.y1, m.y2, m.height
            );
        }
    }
    let mut tp = String::from("y1,y2\n");
    for r in ref_proj.iter().take(keep) {
        let _ = writeln!(tp, "{:.6},{:.6}", r[0], r[1]);
    }
    let mut pr = String::from("generation,tau,y1,y2\n");
    for (g, tau, pts) in kept {
        for r in pts {
            let _ = writeln!(pr, "{g},{tau},{:.6},{:.6}", r[0], r[1]);
        }
    }
    write(&out.join("projections.csv"), &pr)?;
    write(&out.join("snapshots.csv"), &snap)?;
    write(&out.join("directions.csv"), &dirs)?;
    write(&out.join("skips.csv"), &skips)?;
    write(&out.join("modes.csv"), &modes)?;
    write(&out.join("target_projection.csv"), &tp)?;
    let json = serde_json::to_string_pretty(s).map_err(|e| DaeError::Io(e.to_string()))?;
    write(&out.join("summary.json"), &json)?;
    crate::plots::write_all(out, s, &ref_proj[..keep.min(ref_proj.len())], kept)?;
    Ok(())
}

/// The files a run writes (besides plots), for listing.
pub fn output_files(out: &Path) -> Vec<PathBuf> {
    [
        "summary.json",
        "snapshots.csv",
        "directions.csv",
        "skips.csv",
        "modes.csv",
        "projections.csv",
        "target_projection.csv",
    ]
    .iter()
    .map(|f| out.join(f))
    .collect()
}
