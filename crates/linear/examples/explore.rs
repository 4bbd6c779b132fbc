//! Quick look at the Monte Carlo: `cargo run --release -p memdiff-linear --example explore -- d N lambda_hat model sims n1 n2 ...`
use memdiff_linear::{simulate, DataModel, EpsRule, OriginalSet, Params, SimOptions};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let d: usize = a[0].parse().unwrap();
    let big_n: usize = a[1].parse().unwrap();
    let lh: f64 = a[2].parse().unwrap();
    let model: DataModel = a[3].parse().unwrap();
    let sims: usize = a[4].parse().unwrap();
    let p0 = Params::new(d, 2, lh).with_model(model);
    let t0 = std::time::Instant::now();
    let o = if big_n > 0 {
        Some(OriginalSet::draw(&p0, big_n, EpsRule::Mixing, 7).unwrap())
    } else {
        None
    };
    eprintln!("O built in {:.2}s", t0.elapsed().as_secs_f64());
    for n in a[5..].iter().map(|s| s.parse::<usize>().unwrap()) {
        let p = Params { n, ..p0 };
        let mut opts = SimOptions::new(sims, 1);
        if std::env::var("EXPLICIT").is_ok() {
            opts.sampler = memdiff_linear::Sampler::Explicit;
        }
        let t0 = std::time::Instant::now();
        let (recs, s) = simulate(&p, &opts, o.as_ref(), &|| {}).unwrap();
        let th = memdiff_linear::theory::kl_var_theorem(d, n, lh, 2.0).map(|t| t.total);
        println!(
            "n={n} t={:.2}s kl_var={:.4e} quad={:.4e}±{:.2e} th={:?} klmean={:.3e} H2={:.4} P={:?} drel={:?} ex={:?}",
            t0.elapsed().as_secs_f64(),
            s.kl_var.mean, s.kl_var_quad.mean, s.kl_var_quad.se, th, s.kl_mean.mean, s.hellinger2.mean,
            s.p_delta_pos.map(|p| (p.p, p.lo, p.hi)), s.delta_rel.map(|x| x.mean),
            recs[0].delta.map(|t| (t.log_s_tg, t.log_s_og, t.log_s_tt_off, t.log_s_oo_off, t.log_s_tt_diag)),
        );
    }
}
