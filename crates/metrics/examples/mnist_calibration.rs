//! docs/METHOD.md §4b / issue 9 on the shipped MNIST subset: P(Δ > 0) and P(Δ_U > 0) of the oracle and the
//! copy generator, raw u8 vs dequantised (U(0, 1/255), memdiff_data::quantize) vs bandwidth
//! floor (eps >= 1/255).
//!
//! Protocol (the papers' MNIST one, no network): the 10,000 digits are shuffled with the seed;
//! the last 1,000 are the oracle's pool (never in O or T), the first 9,000 are O; each simulation
//! draws T as a random n-subset of O, G_oracle as 10 pool rows, G_copy as 10 rows of T.
//! Dequantisation noise is drawn once per file (so T's rows equal their O rows).
//!
//! With `disjoint` as third argument, O is the first 4,500 rows and T is drawn from the next
//! 4,500 (T independent of O, as for the GMM), so that copies of T are not rows of O.
//!
//! `cargo run --release -p memdiff-metrics --example mnist_calibration -- [sims] [seed] [disjoint]`
use memdiff_data::{mnist, quantize, ImageSet};
use memdiff_metrics::kde::{KdeOptions, OriginalSet};
use memdiff_metrics::stats::{mean_se, wilson, Z95};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn constant_pixels(set: &ImageSet, rows: usize) -> Vec<bool> {
    let d = set.dim();
    (0..d)
        .map(|i| (0..rows).all(|k| set.data[k * d + i] == set.data[i]))
        .collect()
}

fn main() {
    let a: Vec<u64> = std::env::args()
        .skip(1)
        .take(2)
        .map(|s| s.parse().unwrap())
        .collect();
    let sims = a.first().copied().unwrap_or(50) as usize;
    let seed = a.get(1).copied().unwrap_or(0);
    let disjoint = std::env::args().nth(3).as_deref() == Some("disjoint");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let all = mnist::load_images(&root.join("data/mnist/mnist-10k-images-idx3-ubyte.gz")).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let perm = sample(&mut rng, all.n, all.n).into_vec();
    let all = all.select(&perm);
    let d = all.dim();
    let (g, n_pool) = (10usize, 1000usize);
    let n_rest = all.n - n_pool;
    let n_o = if disjoint { n_rest / 2 } else { n_rest };
    println!("MNIST 10k subset: N = {n_o}, pool {n_pool}, g = {g}, d = {d}, {sims} simulations per n, seed {seed}, T {}", if disjoint { "from 4500 rows disjoint from O" } else { "a subset of O" });
    println!("| treatment | n | generator | P(Δ>0) [95% CI] | P(Δ_U>0) [95% CI] | mean Δ ± se | mean Δ_U ± se | E_OG |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for treatment in ["raw", "uniform", "floor"] {
        let mut file: ImageSet = all.clone();
        // Pixels constant over the raw O are left out in every treatment (as `memdiff eval`).
        let mut opts = KdeOptions {
            exclude: Some(constant_pixels(&all, n_o)),
            ..Default::default()
        };
        match treatment {
            "uniform" => quantize::dequantize_uniform(&mut file, seed ^ 0xD0),
            "floor" => opts.min_bandwidth = Some(quantize::QUANT_STEP),
            _ => {}
        }
        let o = file.select(&(0..n_o).collect::<Vec<_>>());
        let pool = file.select(&(n_rest..file.n).collect::<Vec<_>>());
        let t_src = if disjoint {
            file.select(&(n_o..n_rest).collect::<Vec<_>>())
        } else {
            o.clone()
        };
        let orig = OriginalSet::new(&o.data, o.n, d, &opts).unwrap();
        for n in [10usize, 100, 1000] {
            for gen in ["oracle", "copy"] {
                let (mut dl, mut du, mut eog) = (vec![], vec![], vec![]);
                for s in 0..sims {
                    let mut r = ChaCha8Rng::seed_from_u64(
                        seed.wrapping_mul(1_000_003) + (n * 1000 + s) as u64,
                    );
                    let t = t_src.select(&sample(&mut r, t_src.n, n).into_vec());
                    let gs = if gen == "oracle" {
                        pool.select(&sample(&mut r, n_pool, g).into_vec())
                    } else {
                        t.select(&sample(&mut r, n, g.min(n)).into_vec())
                    };
                    let res = orig.evaluate(&t.data, t.n, &gs.data, gs.n).unwrap();
                    dl.push(res.delta);
                    du.push(res.delta_unbiased);
                    eog.push(res.e_og);
                }
                let k = dl.iter().filter(|x| **x > 0.0).count() as u64;
                let ku = du.iter().filter(|x| **x > 0.0).count() as u64;
                let (p, pu) = (wilson(k, sims as u64, Z95), wilson(ku, sims as u64, Z95));
                let (m, mu, me) = (mean_se(&dl), mean_se(&du), mean_se(&eog));
                println!(
                    "| {treatment} | {n} | {gen} | {:.2} [{:.2}, {:.2}] | {:.2} [{:.2}, {:.2}] | {:.3e} ± {:.1e} | {:.3e} ± {:.1e} | {:.3e} |",
                    p.p, p.lo, p.hi, pu.p, pu.lo, pu.hi, m.mean, m.se, mu.mean, mu.se, me.mean
                );
            }
        }
    }
}
