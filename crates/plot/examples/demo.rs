//! Renders a demo plot: `cargo run --release -p memdiff-plot --example demo -- /tmp/demo`.
use memdiff_plot::{LinePlot, Series};

fn main() {
    let out = std::env::args().nth(1).unwrap_or_else(|| "demo".into());
    let mut p = LinePlot::new("Demo: KL_var/d vs α", "α = d/n", "KL_var / d");
    p.log_x = true;
    p.log_y = true;
    let theory: Vec<_> = (1..60)
        .map(|i| {
            let a = i as f64 / 60.0;
            (a, 0.01 * a / (1.0 - a) + 1e-4)
        })
        .collect();
    p.series.push(Series::line("theory", theory).dashed());
    let mc: Vec<_> = [0.05, 0.1, 0.3, 0.5, 0.8]
        .iter()
        .map(|&a: &f64| (a, 0.011 * a / (1.0 - a) + 1e-4))
        .collect();
    let band: Vec<_> = mc.iter().map(|&(a, y)| (a, y * 0.8, y * 1.2)).collect();
    p.series
        .push(Series::line_and_points("Monte Carlo", mc).with_band(band));
    p.series.push(Series::points(
        "points only",
        vec![(0.2, 1e-3), (0.4, 3e-3)],
    ));
    for f in p.save(std::path::Path::new(&out)).expect("plot") {
        println!("{}", f.display());
    }
}
