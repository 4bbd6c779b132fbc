//! Cost of the sample-quality measures (docs/BENCHMARKS.md "Sample quality"): preparing the
//! reference once and evaluating one generated set, as at every sweep snapshot:
//! `cargo run --release -p memdiff-metrics --example quality_timing -- R g d [repeats]`
use std::time::Instant;

use memdiff_metrics::quality::{QualityOptions, Reference};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let (r, g, d, reps) = match a.as_slice() {
        [a, b, c] => (*a, *b, *c, 5),
        [a, b, c, e] => (*a, *b, *c, *e),
        _ => (2000, 30, 256, 5),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let nd = Normal::new(0.5f32, 0.2).unwrap();
    let mut draw = |m: usize| -> Vec<f32> { (0..m * d).map(|_| nd.sample(&mut rng)).collect() };
    let (o, gen) = (draw(r), draw(g));
    let t0 = Instant::now();
    let rf = Reference::new(&o, r, d, &QualityOptions::default()).unwrap();
    let prep = t0.elapsed().as_secs_f64();
    let mut best = f64::INFINITY;
    let mut v = None;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        v = Some(rf.evaluate(&gen, g).unwrap());
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "R {r} g {g} d {d}: prepare reference {prep:.3} s, evaluate one G {best:.4} s (best of {reps}); {:?}",
        v.unwrap()
    );
}
