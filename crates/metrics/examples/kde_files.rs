//! Times the metric on three files (what `memdiff bench kde --inputs DIR` does, without the
//! binary): `cargo run --release -p memdiff-metrics --example kde_files -- DIR [repeat]`
//! reads DIR/O.npy, DIR/T.npy, DIR/G.npy and prints one JSON line.
use std::path::Path;
use std::time::Instant;

use memdiff_metrics::kde::{KdeOptions, OriginalSet};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(&args[0]);
    let repeat: usize = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(3);
    let rd = |f: &str| memdiff_data::read_images_any(&dir.join(f)).unwrap();
    let (o, t, g) = (rd("O.npy"), rd("T.npy"), rd("G.npy"));
    let d = o.dim();
    let opts = KdeOptions::default();
    let (mut best, mut res) = (f64::INFINITY, None);
    for _ in 0..repeat {
        let t0 = Instant::now();
        let orig = OriginalSet::new(&o.data, o.n, d, &opts).unwrap();
        let r = orig.evaluate(&t.data, t.n, &g.data, g.n).unwrap();
        best = best.min(t0.elapsed().as_secs_f64());
        res = Some(r);
    }
    let r = res.unwrap();
    println!(
        "{{\"e_tg\": {:?}, \"e_og\": {:?}, \"delta\": {:?}, \"seconds\": {best:.6}, \"N\": {}, \"n\": {}, \"g\": {}, \"d\": {d}, \"pixels_used\": {}, \"threads\": {}}}",
        r.e_tg, r.e_og, r.delta, o.n, t.n, g.n, r.pixels_used, rayon::current_num_threads()
    );
}
