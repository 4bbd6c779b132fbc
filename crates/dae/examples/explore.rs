//! Calibration run: prints modes, energy distance and odd moments over training time, and the
//! same sampler with the exact denoiser, for a 3-cluster mixture.
//!
//! cargo run --release -p memdiff-dae --example explore -- ACT D LR WD INIT_STD RADIUS K N WARM
//! (e.g. `relu 500 0.3 0.0 0.1 3.0 4 20 1.0`; training times from TAUS=0.5,1,2).
use memdiff_dae::stats::*;
use memdiff_dae::train::*;
use memdiff_dae::*;
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let act: Activation = a.get(1).map_or("relu", |s| s).parse().unwrap();
    let d: usize = a.get(2).map_or(500, |s| s.parse().unwrap());
    let lr: f64 = a.get(3).map_or(1.0, |s| s.parse().unwrap());
    let wd: f64 = a.get(4).map_or(0.1, |s| s.parse().unwrap());
    let init: f64 = a.get(5).map_or(1.0, |s| s.parse().unwrap());
    let radius: f64 = a.get(6).map_or(3.0, |s| s.parse().unwrap());
    let k: usize = a.get(7).map_or(4, |s| s.parse().unwrap());
    let nt: usize = a.get(8).map_or(20, |s| s.parse().unwrap());
    let mix = Mixture::new(d, Mixture::polygon(3, radius), vec![1.0; d]).unwrap();
    let src = Source::Fresh(mix.clone());
    let warm: f64 = a.get(9).map_or(0.0, |s| s.parse().unwrap());
    let s = NetSettings {
        k,
        act,
        init_std: init,
        warm,
        warm_dims: 2,
        c0: 0.0,
        sgd: Sgd {
            lr,
            weight_decay: wd,
        },
    };
    let mut den = Denoisers::new(d, nt, &s, 1, 0);
    let cents: Vec<(f64, f64)> = mix.centroids.iter().map(|c| (c[0], c[1])).collect();
    let mut r = rng(1, 99);
    let mut tg = vec![0.0; d];
    let tpts: Vec<Vec<f64>> = (0..1000)
        .map(|_| {
            mix.sample_into(&mut r, &mut tg);
            tg[..2].to_vec()
        })
        .collect();
    let taus: Vec<f64> = std::env::var("TAUS")
        .unwrap_or("0.25,0.5,1,2,4,8,16".into())
        .split(",")
        .map(|v| v.parse().unwrap())
        .collect();
    println!("target modes {:?}", modes_2d(&tpts, ModeOpts::default()));
    let ex = sample::generate_with(
        &|n, x, f| mix.posterior_mean(n as f64 / nt as f64, x, f),
        d,
        &den.times.clone(),
        2000,
        SampleOpts {
            method: Method::Sde,
            eps0: 1.0,
        },
        1,
        0,
        7,
    );
    let ye = project(&ex, d, 2);
    println!(
        "exact denoiser: modes {:?} energy {:.3} var1 {:.2} bulk {:.3}",
        modes_2d(&ye, ModeOpts::default()).len(),
        energy_distance(&ye[..1000], &tpts),
        variance(&column(&ex, d, 0)).value,
        bulk_variance(&ex, d, 2).value
    );
    for tau in taus {
        let t0 = Instant::now();
        den.train_to(&src, (tau * d as f64) as usize, s.sgd);
        let tt = t0.elapsed().as_secs_f64();
        let x = sample::generate(
            &den.nets,
            &den.times,
            2000,
            SampleOpts {
                method: Method::Sde,
                eps0: 1.0,
            },
            1,
            0,
            (tau * 100.0) as u64,
        );
        let y = project(&x, d, 2);
        let modes = modes_2d(&y, ModeOpts::default());
        let e = energy_distance(&y[..1000], &tpts);
        let om = odd_moments(&y);
        let bulk = bulk_variance(&x, d, 2);
        let v1 = variance(&column(&x, d, 0));
        let v2 = variance(&column(&x, d, 1));
        println!("tau {tau:5} train {tt:.2}s c[mid]={:.3} c[last]={:.3} modes {} err {:.2} energy {:.3} oddz {:.1} var1 {:.2} var2 {:.2} bulk {:.3} Q {:?}",
            den.nets[nt/2].c, den.nets[nt-1].c, modes.len(), mode_error(&modes, &cents), e, om.max_abs_z, v1.value, v2.value, bulk.value,
            [nt/4, nt/2, 3*nt/4].iter().map(|&i| { let q = den.nets[i].overlap(); (0..k).map(|j| q[j*k+j]).sum::<f64>() }).collect::<Vec<_>>());
        for m in modes.iter().take(6) {
            print!("  ({:.2},{:.2};{:.2})", m.y1, m.y2, m.height);
        }
        println!();
    }
}
