//! Seconds per optimizer step of K networks trained as one ensemble against K × one network
//! (docs/BENCHMARKS.md, "Many small networks at once"): px 8, base 16, s = 100, on flex with
//! the current rayon pool (set RAYON_NUM_THREADS).
//!
//! cargo run --release --example ensemble_step -p memdiff-diffusion --features flex,x86-v4
//!     -- [STEPS] [BATCH,...] [K,...]

use burn::tensor::Device;
use memdiff_data::gmm::GmmSpec;
use memdiff_data::recipe::DataRecipe;
use memdiff_data::ImageSet;
use memdiff_diffusion::train::{EnsembleTrainer, TrainConfig};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let steps: usize = args.get(1).map_or(20, |s| s.parse().expect("STEPS"));
    let list = |i: usize, d: &str| -> Vec<usize> {
        args.get(i)
            .map_or(d, String::as_str)
            .split(',')
            .map(|s| s.parse().expect("a list of numbers"))
            .collect()
    };
    let (batches, ks) = (list(2, "2,8,32"), list(3, "1,2,4,8"));
    let spec = GmmSpec::centred(8, 1, 0.5, 0.1, 0.2).expect("spec");
    // Runs inside the pool, as the memdiff binary does.
    rayon::ThreadPoolBuilder::new()
        .build()
        .expect("pool")
        .install(|| {
            println!("threads {}", rayon::current_num_threads());
            println!("batch\tK\ts/step (K as one)\tms/step/network\tvs K=1");
            for &b in &batches {
                let mut one = f64::NAN;
                for &k in &ks {
                    let cfgs: Vec<TrainConfig> = (0..k)
                        .map(|i| TrainConfig {
                            px: 8,
                            base_channels: 16,
                            diffusion_steps: 100,
                            batch: b,
                            epochs: 1,
                            max_steps: Some(steps + 3),
                            ema: Some(0.999),
                            seed: i as u64 + 1,
                            ..TrainConfig::default()
                        })
                        .collect();
                    let data: Vec<ImageSet> = (0..k)
                        .map(|i| {
                            DataRecipe::Gmm {
                                spec: spec.clone(),
                                n: b,
                                seed: i as u64,
                            }
                            .build()
                            .expect("data")
                        })
                        .collect();
                    let refs: Vec<&ImageSet> = data.iter().collect();
                    let mut tr =
                        EnsembleTrainer::new(&cfgs, &refs, &Device::flex()).expect("ensemble");
                    for _ in 0..3 {
                        tr.step().expect("step");
                    }
                    let t0 = Instant::now();
                    for _ in 0..steps {
                        tr.step().expect("step");
                    }
                    let per = t0.elapsed().as_secs_f64() / steps as f64;
                    if k == 1 {
                        one = per;
                    }
                    println!(
                        "{b}\t{k}\t{per:.4}\t{:.2}\t{:.2}x",
                        1e3 * per / k as f64,
                        one * k as f64 / per
                    );
                }
            }
        });
}
