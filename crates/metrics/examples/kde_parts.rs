//! Timing of the parts of the metric on one pixel column (diagnostics).
/// CPU time of this thread in ns (from /proc/thread-self/schedstat; unaffected by other load).
#[derive(Clone, Copy)]
struct Instant(f64);
impl Instant {
    fn now() -> Self {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
        Instant(s.split_whitespace().next().unwrap().parse::<f64>().unwrap())
    }
}
impl std::ops::Sub for Instant {
    type Output = std::time::Duration;
    fn sub(self, o: Self) -> std::time::Duration {
        std::time::Duration::from_nanos((self.0 - o.0) as u64)
    }
}

use memdiff_metrics::kde::{cross_term, self_term, Column};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let nd = Normal::new(0.5f64, 0.1).unwrap();
    let big_n = 100_000;
    let v: Vec<f64> = (0..big_n)
        .map(|_| nd.sample(&mut rng) as f32 as f64)
        .collect();
    let g: Vec<f64> = (0..10).map(|_| nd.sample(&mut rng)).collect();
    let reps = 20;
    let a = Instant::now();
    for _ in 0..reps {
        let mut w = v.clone();
        memdiff_metrics::kde::radix_sort_f64(&mut w);
        std::hint::black_box(&w);
    }
    let b = Instant::now();
    for _ in 0..reps {
        let mut w = v.clone();
        w.sort_unstable_by(f64::total_cmp);
        std::hint::black_box(&w);
    }
    let c = Instant::now();
    let mut acc = 0.0f64;
    for i in 0..10_000_000 {
        acc += (i as f64 * 1e-7).sqrt();
    }
    let e = Instant::now();
    println!(
        "radix {:.2} ms, pdq {:.2} ms, 1e7 sqrt {:.2} ms ({acc})",
        (b - a).as_secs_f64() * 1e3 / reps as f64,
        (c - b).as_secs_f64() * 1e3 / reps as f64,
        (e - c).as_secs_f64() * 1e3
    );
    let t0 = Instant::now();
    let mut cols = Vec::new();
    for _ in 0..reps {
        cols.push(Column::from_values(v.clone()));
    }
    let t1 = Instant::now();
    let c = &cols[0];
    let mut s = 0.0;
    for _ in 0..reps {
        s += self_term(c, 0.1 / big_n as f64, None).s;
    }
    let t2 = Instant::now();
    let eps = 0.1 / big_n as f64;
    let ps = memdiff_metrics::kde::self_offdiag_sum(
        c,
        2.0 * eps * eps,
        memdiff_metrics::kde::auto_cutoff(big_n, big_n),
    );
    println!(
        "self kept pairs per sample {:.2}",
        ps.kept_pairs / big_n as f64
    );
    let gc = Column::from_values(g);
    for _ in 0..reps {
        s += cross_term(c, 0.1 / big_n as f64, &gc, 0.01, None).0;
    }
    let t3 = Instant::now();
    let per = |a: Instant, b: Instant| (b - a).as_secs_f64() / reps as f64 * 1e3;
    println!(
        "sort+rle {:.2} ms, self {:.2} ms, cross O-G {:.2} ms per column ({s})",
        per(t0, t1),
        per(t1, t2),
        per(t2, t3)
    );
}
