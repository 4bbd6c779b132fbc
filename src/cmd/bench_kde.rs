//! `memdiff bench kde`: times the exact KDE metric (E_TG and E_OG) on synthetic one-component
//! GMM sets (every pixel N(0.5, 0.1²), float32, seeded) and can write the three inputs as .npy
//! so that `../shared/bench/torch_ref.py kde` runs on the same files.
//!
//! Example: memdiff bench kde --n-original 1000 --n-train 100 --g 10 --d 256 --write-inputs /tmp/kde
//! then: python torch_ref.py kde --original /tmp/kde/O.npy --train /tmp/kde/T.npy --generated /tmp/kde/G.npy

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use memdiff_data::ImageSet;
use memdiff_metrics::kde::OriginalSet;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde_json::json;

/// Time the exact KDE metric on synthetic sets (prints one JSON line).
#[derive(Args, Debug)]
pub struct BenchKdeArgs {
    /// N, size of the original set.
    #[arg(long, default_value_t = 100_000)]
    pub n_original: usize,
    /// n, size of the training set.
    #[arg(long, default_value_t = 10_000)]
    pub n_train: usize,
    /// g, size of the generated set.
    #[arg(long, default_value_t = 10)]
    pub g: usize,
    /// Pixels per sample.
    #[arg(long, default_value_t = 256)]
    pub d: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Timed repetitions (the best is reported as `seconds`).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Write O.npy, T.npy, G.npy (shape (n, 1, 1, d)) into this folder.
    #[arg(long, value_name = "DIR")]
    pub write_inputs: Option<PathBuf>,
    /// Read O.npy, T.npy, G.npy from this folder instead of generating them.
    #[arg(long, value_name = "DIR", conflicts_with = "write_inputs")]
    pub inputs: Option<PathBuf>,
    /// Bandwidth rule (as for eval).
    #[arg(long, default_value = "std-over-n")]
    pub bandwidth: String,
    /// sqrt(2 pi) scale, as the papers' code.
    #[arg(long)]
    pub paper_scale: bool,
}

fn synth(n: usize, d: usize, seed: u64, stream: u64) -> ImageSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let nd = Normal::new(0.5f64, 0.1).expect("valid normal");
    let data = (0..n * d).map(|_| nd.sample(&mut rng) as f32).collect();
    ImageSet::new(n, 1, 1, d, data)
}

pub fn run(a: BenchKdeArgs) -> anyhow::Result<()> {
    if a.repeat == 0 {
        bail!("--repeat 0: time at least once");
    }
    let opts = super::eval::kde_options(&a.bandwidth, a.paper_scale, None)?;
    let (o, t, g) = match &a.inputs {
        Some(dir) => {
            let rd = |f: &str| {
                memdiff_data::read_images_any(&dir.join(f))
                    .with_context(|| format!("reading {}", dir.join(f).display()))
            };
            (rd("O.npy")?, rd("T.npy")?, rd("G.npy")?)
        }
        None => {
            for (name, v) in [
                ("--n-original", a.n_original),
                ("--n-train", a.n_train),
                ("--g", a.g),
                ("--d", a.d),
            ] {
                if v == 0 {
                    bail!("{name} 0: must be at least 1");
                }
            }
            (
                synth(a.n_original, a.d, a.seed, 0),
                synth(a.n_train, a.d, a.seed, 1),
                synth(a.g, a.d, a.seed, 2),
            )
        }
    };
    let d = o.dim();
    if t.dim() != d || g.dim() != d {
        bail!("pixel counts differ: O {d}, T {}, G {}", t.dim(), g.dim());
    }
    if let Some(dir) = &a.write_inputs {
        for (f, s) in [("O.npy", &o), ("T.npy", &t), ("G.npy", &g)] {
            memdiff_data::npy::write_npy(&dir.join(f), s)
                .with_context(|| format!("writing {}", dir.join(f).display()))?;
        }
    }
    let mut best = f64::INFINITY;
    let (mut best_prep, mut best_eval) = (0.0, 0.0);
    let mut res = None;
    for _ in 0..a.repeat {
        let t0 = Instant::now();
        let orig = OriginalSet::new(&o.data, o.n, d, &opts)?;
        let t1 = Instant::now();
        let r = orig.evaluate(&t.data, t.n, &g.data, g.n)?;
        let t2 = Instant::now();
        let total = (t2 - t0).as_secs_f64();
        if total < best {
            best = total;
            best_prep = (t1 - t0).as_secs_f64();
            best_eval = (t2 - t1).as_secs_f64();
        }
        res = Some(r);
    }
    let r = res.expect("at least one repetition");
    let mut out = super::metric_json::metric_json(&r, &opts);
    let m = out.as_object_mut().expect("object");
    m.insert("dequantized".into(), json!("none"));
    m.insert("seconds".into(), json!(best));
    m.insert("prepare_original_seconds".into(), json!(best_prep));
    m.insert("evaluate_seconds".into(), json!(best_eval));
    m.insert("repeat".into(), json!(a.repeat));
    m.insert("threads".into(), json!(rayon::current_num_threads()));
    m.insert("d".into(), json!(d));
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
