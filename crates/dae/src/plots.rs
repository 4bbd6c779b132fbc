//! Figures of a `memdiff dae run` (SVG + PNG):
//! - `density_g<G>`: the projected density (2-D histogram) of the target and of generation `G`
//!   at every training time, with the target's modes (red +) and the generated modes (black o);
//! - `skips`: the learned skip connection `c(t)` per training time, beside the optimum `c*(t)`;
//! - `variance_ratio`: generated/target variance per direction against the training time (one
//!   generation) or the generation (several), with ±2 standard-error bands;
//! - `energy_distance`: energy distance to the target against the training time.

use std::path::Path;

use memdiff_plot::{LegendPos, LinePlot, Series};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::closed;
use crate::run::{Kept, Summary};
use crate::stats::Mode;
use crate::DaeError;

fn perr(e: impl std::fmt::Display) -> DaeError {
    DaeError::Io(format!("plot: {e}"))
}

pub fn write_all(
    out: &Path,
    s: &Summary,
    target: &[Vec<f64>],
    kept: &[Kept],
) -> Result<(), DaeError> {
    let gens = s
        .snapshots
        .iter()
        .map(|x| x.generation)
        .max()
        .map_or(0, |g| g + 1);
    for g in 0..gens {
        let mut panels = vec![Panel {
            title: "target".into(),
            points: target.to_vec(),
            modes: s.target_modes.clone(),
        }];
        for (kg, tau, pts) in kept.iter().filter(|k| k.0 == g) {
            let modes = s
                .snapshots
                .iter()
                .find(|x| x.generation == *kg && x.tau == *tau)
                .map(|x| x.modes.clone())
                .unwrap_or_default();
            panels.push(Panel {
                title: format!("generation {g}, τ = {tau}"),
                points: pts.clone(),
                modes,
            });
        }
        density_panels(&out.join(format!("density_g{g}")), &panels, &s.target_modes)?;
    }
    skips_plot(s).save(&out.join("skips")).map_err(perr)?;
    variance_plot(s, gens)
        .save(&out.join("variance_ratio"))
        .map_err(perr)?;
    energy_plot(s, gens)
        .save(&out.join("energy_distance"))
        .map_err(perr)?;
    Ok(())
}

fn skips_plot(s: &Summary) -> LinePlot {
    let mut p = LinePlot::new(
        "skip connection c(t), generation 0",
        "interpolation time t",
        "c",
    );
    p.legend = LegendPos::UpperLeft;
    let nt = s.interpolation_steps;
    for (i, sn) in s.snapshots.iter().filter(|x| x.generation == 0).enumerate() {
        let pts = sn
            .skips
            .iter()
            .enumerate()
            .map(|(n, &c)| (n as f64 / nt as f64, c))
            .collect();
        p.series
            .push(Series::line_and_points(format!("τ = {}", sn.tau), pts).with_color(i));
    }
    let star = (0..nt)
        .map(|n| {
            let t = n as f64 / nt as f64;
            (t, closed::c_star(t, s.target_second_moment))
        })
        .collect();
    p.series.push(
        Series::line("optimum c*(t) (k = 0)", star)
            .dashed()
            .with_color(7),
    );
    p
}

fn variance_plot(s: &Summary, gens: usize) -> LinePlot {
    let by_gen = gens > 1;
    let (title, xl) = if by_gen {
        (
            "generated/target variance per generation (last τ)",
            "generation",
        )
    } else {
        ("generated/target variance over training", "training time τ")
    };
    let mut p = LinePlot::new(title, xl, "variance ratio");
    p.legend = LegendPos::LowerRight;
    let last_tau = s.snapshots.last().map_or(0.0, |x| x.tau);
    let snaps: Vec<_> = s
        .snapshots
        .iter()
        .filter(|x| if by_gen { x.tau == last_tau } else { true })
        .collect();
    let ndir = snaps.first().map_or(0, |x| x.directions.len());
    for j in 0..ndir {
        let xy: Vec<(f64, f64, f64)> = snaps
            .iter()
            .map(|x| {
                let r = x.directions[j].ratio;
                let xv = if by_gen { x.generation as f64 } else { x.tau };
                (xv, r.value, r.se)
            })
            .collect();
        let name = &snaps[0].directions[j].direction;
        let label = if name == "bulk" {
            "bulk (other axes)".to_string()
        } else {
            format!("axis {name}")
        };
        p.series.push(
            Series::line_and_points(label, xy.iter().map(|&(a, b, _)| (a, b)).collect())
                .with_band(
                    xy.iter()
                        .map(|&(a, b, e)| (a, b - 2.0 * e, b + 2.0 * e))
                        .collect(),
                )
                .with_color(j),
        );
    }
    p.log_x = !by_gen;
    p
}

fn energy_plot(s: &Summary, gens: usize) -> LinePlot {
    let mut p = LinePlot::new(
        "energy distance to the target (projection)",
        "training time τ",
        "energy distance",
    );
    p.log_x = true;
    for g in 0..gens {
        let pts = s
            .snapshots
            .iter()
            .filter(|x| x.generation == g)
            .map(|x| (x.tau, x.energy_distance))
            .collect();
        p.series
            .push(Series::line_and_points(format!("generation {g}"), pts).with_color(g));
    }
    p
}

struct Panel {
    title: String,
    points: Vec<Vec<f64>>,
    modes: Vec<Mode>,
}

const BINS: usize = 50;

fn density_panels(base: &Path, panels: &[Panel], target_modes: &[Mode]) -> Result<(), DaeError> {
    memdiff_plot::register_fonts();
    // Common square range over the target's panel (the first), padded.
    let mut lim: f64 = 1.0;
    for r in &panels[0].points {
        lim = lim.max(r[0].abs()).max(r[1].abs());
    }
    let lim = lim * 1.05;
    let cols = panels.len().min(4);
    let rows = panels.len().div_ceil(cols);
    let size = (300 * cols as u32, 320 * rows as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root, panels, target_modes, lim, rows, cols)?;
        root.present().map_err(perr)?;
    }
    let mut buf = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        draw(&root, panels, target_modes, lim, rows, cols)?;
        root.present().map_err(perr)?;
    }
    let img = image_png(size, buf)?;
    let with = |ext: &str| {
        let mut p = base.as_os_str().to_owned();
        p.push(ext);
        std::path::PathBuf::from(p)
    };
    memdiff_data::atomic::write_bytes(&with(".svg"), svg.as_bytes())
        .map_err(|e| DaeError::Io(e.to_string()))?;
    memdiff_data::atomic::write_bytes(&with(".png"), &img)
        .map_err(|e| DaeError::Io(e.to_string()))?;
    Ok(())
}

fn image_png(size: (u32, u32), buf: Vec<u8>) -> Result<Vec<u8>, DaeError> {
    let img = image::RgbImage::from_raw(size.0, size.1, buf)
        .ok_or_else(|| perr("pixel buffer has the wrong size"))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(perr)?;
    Ok(out.into_inner())
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[Panel],
    target_modes: &[Mode],
    lim: f64,
    rows: usize,
    cols: usize,
) -> Result<(), DaeError> {
    root.fill(&WHITE).map_err(perr)?;
    let areas = root.split_evenly((rows, cols));
    for (area, panel) in areas.iter().zip(panels) {
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(34)
            .build_cartesian_2d(-lim..lim, -lim..lim)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(perr)?;
        let mut hist = vec![0usize; BINS * BINS];
        let w = 2.0 * lim / BINS as f64;
        for r in &panel.points {
            let ix = ((r[0] + lim) / w).floor();
            let iy = ((r[1] + lim) / w).floor();
            if ix >= 0.0 && iy >= 0.0 && (ix as usize) < BINS && (iy as usize) < BINS {
                hist[iy as usize * BINS + ix as usize] += 1;
            }
        }
        let top = hist.iter().copied().max().unwrap_or(1).max(1) as f64;
        chart
            .draw_series(
                hist.iter()
                    .enumerate()
                    .filter(|(_, &c)| c > 0)
                    .map(|(i, &c)| {
                        let (ix, iy) = ((i % BINS) as f64, (i / BINS) as f64);
                        let v = (c as f64 / top).sqrt();
                        let col = RGBColor(
                            (255.0 * (1.0 - 0.85 * v)) as u8,
                            (255.0 * (1.0 - 0.6 * v)) as u8,
                            255,
                        );
                        Rectangle::new(
                            [
                                (-lim + ix * w, -lim + iy * w),
                                (-lim + (ix + 1.0) * w, -lim + (iy + 1.0) * w),
                            ],
                            col.filled(),
                        )
                    }),
            )
            .map_err(perr)?;
        chart
            .draw_series(
                target_modes
                    .iter()
                    .map(|m| Cross::new((m.y1, m.y2), 6, RED.stroke_width(2))),
            )
            .map_err(perr)?;
        chart
            .draw_series(
                panel
                    .modes
                    .iter()
                    .map(|m| Circle::new((m.y1, m.y2), 5, BLACK.stroke_width(2))),
            )
            .map_err(perr)?;
    }
    Ok(())
}
