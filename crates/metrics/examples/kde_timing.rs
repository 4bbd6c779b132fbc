//! Quick timing of the metric at a given size:
//! `cargo run --release -p memdiff-metrics --example kde_timing -- N n g d`
use std::time::Instant;

use memdiff_metrics::kde::{KdeOptions, OriginalSet};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let (big_n, n, g, d) = match a.as_slice() {
        [a, b, c, e] => (*a, *b, *c, *e),
        _ => (100_000, 10_000, 10, 256),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let nd = Normal::new(0.5f32, 0.1).unwrap();
    let mut draw = |m: usize| -> Vec<f32> { (0..m * d).map(|_| nd.sample(&mut rng)).collect() };
    let (o, t, gen) = (draw(big_n), draw(n), draw(g));
    let t0 = Instant::now();
    let orig = OriginalSet::new(&o, big_n, d, &KdeOptions::default()).unwrap();
    let t1 = Instant::now();
    let r = orig.evaluate(&t, n, &gen, g).unwrap();
    let t2 = Instant::now();
    println!(
        "N {big_n} n {n} g {g} d {d}: prepare O {:.3} s, evaluate {:.3} s, total {:.3} s; e_tg {} e_og {} bound {:e} {:e}",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        (t2 - t0).as_secs_f64(),
        r.e_tg,
        r.e_og,
        r.e_tg_error_bound,
        r.e_og_error_bound
    );
}
