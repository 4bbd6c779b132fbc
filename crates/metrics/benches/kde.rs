//! Criterion benchmark of the exact KDE metric: preparing O (sort, sigma, S_OO) and evaluating
//! (T, G) against it, on one-component GMM data (every pixel N(0.5, 0.1²), f32), at a
//! moderate size (N 20000, n 2000, g 10, d 64) so that a run takes seconds. The full-size
//! timing (N 1e5, n 1e4, g 10, d 256) is `memdiff bench kde` (docs/BENCHMARKS.md).
use criterion::{criterion_group, criterion_main, Criterion};
use memdiff_metrics::kde::{KdeOptions, OriginalSet};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

fn sets(big_n: usize, n: usize, g: usize, d: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let nd = Normal::new(0.5f32, 0.1).unwrap();
    let mut draw = |m: usize| -> Vec<f32> { (0..m * d).map(|_| nd.sample(&mut rng)).collect() };
    (draw(big_n), draw(n), draw(g))
}

fn bench(c: &mut Criterion) {
    let (big_n, n, g, d) = (20_000, 2_000, 10, 64);
    let (o, t, gen) = sets(big_n, n, g, d);
    let opts = KdeOptions::default();
    let mut grp = c.benchmark_group("kde");
    grp.sample_size(10);
    grp.bench_function("prepare_original_N20000_d64", |b| {
        b.iter(|| OriginalSet::new(&o, big_n, d, &opts).unwrap())
    });
    let orig = OriginalSet::new(&o, big_n, d, &opts).unwrap();
    grp.bench_function("evaluate_n2000_g10_d64", |b| {
        b.iter(|| orig.evaluate(&t, n, &gen, g).unwrap())
    });
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
