//! The sweep's figures ([`crate::sweep`]), one [`LinePlot`] per section from its curves; the
//! caller saves them (SVG and PNG, `memdiff_plot`).

use memdiff_plot::{LegendPos, LinePlot, Series};

use crate::sweep::{
    BandCurve, H2Section, KlAlphaCurves, KlAlphaSection, KlLambdaCurves, KlLambdaSection,
    PDeltaSection,
};

/// KL_var/d vs α = d/n (log-log): per dimension, Theorem 3.1 (dashed), the Monte Carlo
/// quadratic form with a band of 2 standard errors, and the exact KL_var.
pub fn kl_alpha(s: &KlAlphaSection, curves: &[KlAlphaCurves]) -> LinePlot {
    let mut plot = LinePlot::new(
        format!(
            "KL_var/d vs α = d/n ({} data model, λ̂ = {})",
            s.data_model, s.lambda_hat
        ),
        "α = d / n",
        "KL_var / d",
    );
    plot.log_x = true;
    plot.log_y = true;
    plot.legend = LegendPos::UpperLeft;
    for (k, c) in curves.iter().enumerate() {
        let d = c.d;
        plot.series.push(
            Series::line(format!("Theorem 3.1, d = {d}"), c.theory.clone())
                .dashed()
                .with_color(2 * k),
        );
        let band: Vec<(f64, f64, f64)> = c
            .quad
            .iter()
            .map(|&(x, y, se)| (x, y - 2.0 * se, y + 2.0 * se))
            .collect();
        plot.series.push(
            Series::points(
                format!("MC quadratic (1/4)tr((A-I)²), d = {d}"),
                c.quad.iter().map(|&(x, y, _)| (x, y)).collect(),
            )
            .with_band(band)
            .with_color(2 * k),
        );
        plot.series.push(
            Series::points(format!("MC exact KL_var, d = {d}"), c.exact.clone())
                .with_color(2 * k + 1),
        );
    }
    plot
}

/// KL_var/d vs λ̂ at fixed n (log-log): per dimension, Theorem 3.1 (dashed) and the Monte Carlo
/// quadratic form.
pub fn kl_lambda(s: &KlLambdaSection, curves: &[KlLambdaCurves]) -> LinePlot {
    let mut plot = LinePlot::new(
        format!("KL_var/d vs λ̂ (n = {}, {} data model)", s.n, s.data_model),
        "λ̂",
        "KL_var / d",
    );
    plot.log_x = true;
    plot.log_y = true;
    plot.legend = LegendPos::UpperLeft;
    for (k, c) in curves.iter().enumerate() {
        let d = c.d;
        plot.series.push(
            Series::line(format!("Theorem 3.1, d = {d}"), c.theory.clone())
                .dashed()
                .with_color(2 * k),
        );
        plot.series.push(
            Series::points(format!("MC quadratic, d = {d}"), c.quad.clone()).with_color(2 * k),
        );
    }
    plot
}

/// H² vs n (log x): per dimension, the Monte Carlo mean with its band and a dashed line at n = d.
pub fn h2(s: &H2Section, curves: &[BandCurve]) -> LinePlot {
    let mut plot = LinePlot::new(
        format!(
            "H² vs n ({} data model, λ̂ = {})",
            s.data_model, s.lambda_hat
        ),
        "n",
        "H²(ρ, ρ_G)",
    );
    plot.log_x = true;
    plot.legend = LegendPos::LowerLeft;
    for (k, c) in curves.iter().enumerate() {
        let d = c.d;
        plot.series.push(
            Series::line_and_points(format!("d = {d}"), c.points.clone())
                .with_band(c.band.clone())
                .with_color(2 * k),
        );
        plot.series.push(
            Series::line(
                format!("n = d = {d}"),
                vec![(d as f64, 0.0), (d as f64, 1.0)],
            )
            .dashed()
            .with_color(2 * k),
        );
    }
    plot
}

/// P(Δ>0) vs n/d (log x) with the 95% Wilson band, per dimension.
pub fn p_delta(s: &PDeltaSection, curves: &[BandCurve]) -> LinePlot {
    let mut plot = LinePlot::new(
        format!(
            "P(Δ>0) vs n/d ({} data model, λ̂ = {}, N = {}, 95% Wilson)",
            s.data_model, s.lambda_hat, s.n_original
        ),
        "n / d",
        "P(Δ > 0)",
    );
    plot.log_x = true;
    plot.y_range = Some((-0.02, 1.02));
    plot.legend = LegendPos::LowerRight;
    for (k, c) in curves.iter().enumerate() {
        plot.series.push(
            Series::line_and_points(format!("d = {}", c.d), c.points.clone())
                .with_band(c.band.clone())
                .with_color(2 * k),
        );
    }
    plot
}

/// P(Δ>0) vs n/N (T ⊂ O of N = `big_n` points) with the 95% Wilson band and a line at 0.5.
pub fn p_delta_large(big_n: usize, c: &BandCurve) -> LinePlot {
    let d = c.d;
    let mut plot = LinePlot::new(
        format!("P(Δ>0) as n → N (d = {d}, N = {big_n}, T ⊂ O, 95% Wilson)"),
        "n / N",
        "P(Δ > 0)",
    );
    plot.y_range = Some((-0.02, 1.02));
    plot.legend = LegendPos::LowerLeft;
    plot.series.push(
        Series::line_and_points(format!("d = {d}"), c.points.clone())
            .with_band(c.band.clone())
            .with_color(0),
    );
    plot.series.push(
        Series::line("0.5", vec![(0.0, 0.5), (1.0, 0.5)])
            .dashed()
            .with_color(7),
    );
    plot
}
