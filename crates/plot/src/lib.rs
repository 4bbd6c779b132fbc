//! memdiff-plot: small line/point plots with interval bands and log axes, written as SVG and PNG.
//!
//! Text is rendered with the DejaVu Sans font shipped in `fonts/` (through plotters' `ab_glyph`
//! feature), so building and rendering need no system fonts and no C font libraries.
//!
//! ```no_run
//! use memdiff_plot::{LinePlot, Series};
//! let mut p = LinePlot::new("P(Δ>0) vs n/d", "n/d", "P(Δ>0)");
//! p.log_x = true;
//! p.series.push(Series::line("d = 16", vec![(0.5, 0.1), (1.0, 0.6), (2.0, 0.9)]));
//! p.save(std::path::Path::new("out/p_delta")).unwrap(); // writes out/p_delta.svg and .png
//! ```

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The font family name the shipped font is registered under.
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the shipped font with plotters (idempotent). Every render here calls it; code that
/// draws with plotters directly (in this workspace, plotters is built with `ab_glyph` and no
/// system-font lookup) must call it before drawing any text.
pub fn register_fonts() {
    REGISTER.call_once(|| {
        // The bytes are a valid TrueType file compiled into the crate; a failure here would be a
        // packaging bug, reported later as a font error when text is drawn.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// An error while drawing or writing a plot.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot draw plot `{title}`: {message}")]
    Draw { title: String, message: String },
    #[error("cannot encode PNG for plot `{title}`: {message}")]
    Encode { title: String, message: String },
    #[error("cannot write {path}: {source} (check that the folder exists and is writable)")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("plot `{title}`: {message}")]
    Invalid { title: String, message: String },
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    #[default]
    Line,
    Points,
    LineAndPoints,
}

/// Where the legend box goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegendPos {
    UpperLeft,
    #[default]
    UpperRight,
    LowerLeft,
    LowerRight,
}

/// One named curve: points, an optional shaded band `(x, lo, hi)`, a style.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub band: Option<Vec<(f64, f64, f64)>>,
    pub style: Style,
    pub dashed: bool,
    /// Palette index; `None` takes the series' position in the plot.
    pub color: Option<usize>,
}

impl Series {
    /// A solid line.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            ..Self::default()
        }
    }
    /// Markers only.
    pub fn points(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            style: Style::Points,
            ..Self::line(name, points)
        }
    }
    /// A line with markers.
    pub fn line_and_points(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            style: Style::LineAndPoints,
            ..Self::line(name, points)
        }
    }
    /// Adds a shaded band `(x, lo, hi)` (e.g. a confidence interval).
    pub fn with_band(mut self, band: Vec<(f64, f64, f64)>) -> Self {
        self.band = Some(band);
        self
    }
    /// Draws the line dashed.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
    /// Picks the palette colour explicitly (to match colours across series).
    pub fn with_color(mut self, index: usize) -> Self {
        self.color = Some(index);
        self
    }
}

/// A 2-D plot of several series with a legend, optional log axes and fixed or automatic ranges.
#[derive(Debug, Clone)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Fixed axis ranges; `None` fits the data (with a small margin).
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    pub legend: LegendPos,
    /// Pixel size of the PNG and SVG canvas.
    pub size: (u32, u32),
}

/// An axis range `(lo, hi)`.
type Range = (f64, f64);

/// Tableau-10 palette: distinct, colour-blind-friendlier than the primaries.
const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// The palette colour `i` (wraps around).
pub fn palette(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

impl LinePlot {
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            series: Vec::new(),
            x_range: None,
            y_range: None,
            legend: LegendPos::default(),
            size: (800, 560),
        }
    }

    /// Writes `<path>.svg` and `<path>.png` (each through a temporary file and a rename) and
    /// returns both paths.
    pub fn save(&self, path_without_ext: &Path) -> Result<Vec<PathBuf>, PlotError> {
        write_pair(path_without_ext, &self.render_svg()?, &self.render_png()?)
    }

    /// The plot as an SVG document.
    pub fn render_svg(&self) -> Result<String, PlotError> {
        let mut s = String::new();
        {
            let root = SVGBackend::with_string(&mut s, self.size).into_drawing_area();
            self.draw_on(&root)?;
            root.present().map_err(|e| self.draw_err(e))?;
        }
        Ok(s)
    }

    /// The plot as PNG bytes.
    pub fn render_png(&self) -> Result<Vec<u8>, PlotError> {
        let (w, h) = self.size;
        let mut buf = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut buf, self.size).into_drawing_area();
            self.draw_on(&root)?;
            root.present().map_err(|e| self.draw_err(e))?;
        }
        encode_png(&self.title, self.size, buf)
    }

    fn draw_err(&self, e: impl std::fmt::Display) -> PlotError {
        PlotError::Draw {
            title: self.title.clone(),
            message: e.to_string(),
        }
    }

    /// Points that can be drawn on the chosen axes (finite; positive on a log axis).
    fn keep(&self, x: f64, y: f64) -> bool {
        x.is_finite() && y.is_finite() && (!self.log_x || x > 0.0) && (!self.log_y || y > 0.0)
    }

    /// The data ranges over points and bands, with a margin (multiplicative on log axes).
    fn ranges(&self) -> Result<(Range, Range), PlotError> {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for s in &self.series {
            for &(x, y) in &s.points {
                if self.keep(x, y) {
                    xs.push(x);
                    ys.push(y);
                }
            }
            for &(x, lo, hi) in s.band.iter().flatten() {
                for y in [lo, hi] {
                    if self.keep(x, y) {
                        xs.push(x);
                        ys.push(y);
                    }
                }
            }
        }
        let fit = |v: &[f64], log: bool| -> (f64, f64) {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if !lo.is_finite() {
                return if log { (1.0, 10.0) } else { (0.0, 1.0) };
            }
            if log {
                let (a, b) = (lo.ln(), hi.ln());
                let m = ((b - a) * 0.05).max(0.05);
                ((a - m).exp(), (b + m).exp())
            } else {
                let span = hi - lo;
                let m = if span > 0.0 {
                    span * 0.05
                } else {
                    lo.abs().max(1.0) * 0.05
                };
                (lo - m, hi + m)
            }
        };
        let xr = self.x_range.unwrap_or_else(|| fit(&xs, self.log_x));
        let yr = self.y_range.unwrap_or_else(|| fit(&ys, self.log_y));
        for (name, (a, b), log) in [("x", xr, self.log_x), ("y", yr, self.log_y)] {
            let ok = a.is_finite() && b.is_finite() && a < b && (!log || a > 0.0);
            if !ok {
                return Err(PlotError::Invalid {
                    title: self.title.clone(),
                    message: format!(
                        "{name} range ({a}, {b}) is empty or not positive on a log axis"
                    ),
                });
            }
        }
        Ok((xr, yr))
    }

    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        register_fonts();
        root.fill(&WHITE).map_err(|e| self.draw_err(e))?;
        let ((x0, x1), (y0, y1)) = self.ranges()?;
        // Log axes get their ticks from `log_ticks` (always some inside the data's range).
        let lx = || (x0..x1).log_scale().with_key_points(log_ticks(x0, x1));
        let ly = || (y0..y1).log_scale().with_key_points(log_ticks(y0, y1));
        match (self.log_x, self.log_y) {
            (false, false) => self.draw_chart(root, x0..x1, y0..y1),
            (true, false) => self.draw_chart(root, lx(), y0..y1),
            (false, true) => self.draw_chart(root, x0..x1, ly()),
            (true, true) => self.draw_chart(root, lx(), ly()),
        }
    }

    fn draw_chart<DB, XR, YR>(
        &self,
        root: &DrawingArea<DB, Shift>,
        xr: XR,
        yr: YR,
    ) -> Result<(), PlotError>
    where
        DB: DrawingBackend,
        XR: AsRangedCoord<Value = f64>,
        YR: AsRangedCoord<Value = f64>,
        XR::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
        YR::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let e = |e: &dyn std::fmt::Display| self.draw_err(e);
        let mut chart = ChartBuilder::on(root)
            .caption(
                &self.title,
                (FONT, caption_size(&self.title, self.size.0, 22)),
            )
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(xr, yr)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .light_line_style(RGBColor(238, 238, 238))
            .max_light_lines(3)
            .x_label_formatter(&|v| fmt_tick(*v))
            .y_label_formatter(&|v| fmt_tick(*v))
            .draw()
            .map_err(|x| e(&x))?;

        for (i, s) in self.series.iter().enumerate() {
            let color = palette(s.color.unwrap_or(i));
            if let Some(band) = &s.band {
                let band: Vec<_> = band
                    .iter()
                    .copied()
                    .filter(|&(x, lo, hi)| self.keep(x, lo) && self.keep(x, hi))
                    .collect();
                if band.len() >= 2 {
                    let mut poly: Vec<(f64, f64)> =
                        band.iter().map(|&(x, lo, _)| (x, lo)).collect();
                    poly.extend(band.iter().rev().map(|&(x, _, hi)| (x, hi)));
                    chart
                        .draw_series(std::iter::once(Polygon::new(
                            poly,
                            color.mix(0.18).filled(),
                        )))
                        .map_err(|x| e(&x))?;
                } else {
                    // A lone interval: an error bar.
                    for &(x, lo, hi) in &band {
                        chart
                            .draw_series(std::iter::once(PathElement::new(
                                vec![(x, lo), (x, hi)],
                                color.stroke_width(1),
                            )))
                            .map_err(|x| e(&x))?;
                    }
                }
            }
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|&(x, y)| self.keep(x, y))
                .collect();
            let line_style = color.stroke_width(2);
            let with_line = matches!(s.style, Style::Line | Style::LineAndPoints);
            let with_marks = matches!(s.style, Style::Points | Style::LineAndPoints);
            let dashed = s.dashed;
            // The first drawn element of the series carries the legend entry.
            let anno = if with_line && dashed {
                chart
                    .draw_series(DashedLineSeries::new(pts.clone(), 8, 5, line_style))
                    .map_err(|x| e(&x))?
            } else if with_line {
                chart
                    .draw_series(LineSeries::new(pts.clone(), line_style))
                    .map_err(|x| e(&x))?
            } else {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(|x| e(&x))?
            };
            if !s.name.is_empty() {
                // Legend glyph, in coordinates relative to the entry's anchor.
                anno.label(s.name.clone()).legend(move |(x, y)| {
                    let seg = if with_line && dashed {
                        vec![(0, 0), (8, 0)]
                    } else if with_line {
                        vec![(0, 0), (20, 0)]
                    } else {
                        vec![]
                    };
                    let dash2 = if with_line && dashed {
                        vec![(12, 0), (20, 0)]
                    } else {
                        vec![]
                    };
                    EmptyElement::at((x, y))
                        + PathElement::new(seg, color.stroke_width(2))
                        + PathElement::new(dash2, color.stroke_width(2))
                        + Circle::new((10, 0), if with_marks { 3 } else { 0 }, color.filled())
                });
            }
            if with_line && with_marks {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(|x| e(&x))?;
            }
        }
        if self.series.iter().any(|s| !s.name.is_empty()) {
            let pos = match self.legend {
                LegendPos::UpperLeft => SeriesLabelPosition::UpperLeft,
                LegendPos::UpperRight => SeriesLabelPosition::UpperRight,
                LegendPos::LowerLeft => SeriesLabelPosition::LowerLeft,
                LegendPos::LowerRight => SeriesLabelPosition::LowerRight,
            };
            chart
                .configure_series_labels()
                .position(pos)
                .label_font((FONT, 14))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .draw()
                .map_err(|x| e(&x))?;
        }
        Ok(())
    }
}

/// A grid of cells coloured by a value in `[0, 1]` (white to dark red), each with a short text,
/// and categorical axes: the phase diagram of f_mem over (training step, n).
#[derive(Debug, Clone)]
pub struct HeatMap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Column and row names, left to right and bottom to top.
    pub x_ticks: Vec<String>,
    pub y_ticks: Vec<String>,
    /// `(column, row, value in [0, 1] or NaN for none, text)`.
    pub cells: Vec<(usize, usize, f64, String)>,
    /// Cells drawn with a thick black frame (e.g. those read as copying).
    pub framed: Vec<(usize, usize)>,
    pub size: (u32, u32),
}

impl HeatMap {
    /// Writes `<path>.svg` and `<path>.png`; returns both paths.
    pub fn save(&self, path_without_ext: &Path) -> Result<Vec<PathBuf>, PlotError> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, self.size).into_drawing_area();
            self.draw_on(&root)?;
            root.present().map_err(|e| self.err(e))?;
        }
        let (w, h) = self.size;
        let mut buf = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut buf, self.size).into_drawing_area();
            self.draw_on(&root)?;
            root.present().map_err(|e| self.err(e))?;
        }
        let png = encode_png(&self.title, self.size, buf)?;
        write_pair(path_without_ext, &svg, &png)
    }

    fn err(&self, e: impl std::fmt::Display) -> PlotError {
        PlotError::Draw {
            title: self.title.clone(),
            message: e.to_string(),
        }
    }

    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        register_fonts();
        let e = |x: &dyn std::fmt::Display| self.err(x);
        let (nx, ny) = (self.x_ticks.len(), self.y_ticks.len());
        if nx == 0 || ny == 0 {
            return Err(PlotError::Invalid {
                title: self.title.clone(),
                message: "no rows or columns".into(),
            });
        }
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(root)
            .caption(
                &self.title,
                (FONT, caption_size(&self.title, self.size.0, 20)),
            )
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..nx as f64, 0f64..ny as f64)
            .map_err(|x| e(&x))?;
        let xt = self.x_ticks.clone();
        let yt = self.y_ticks.clone();
        let pick = |ticks: &[String], v: f64| -> String {
            let i = (v - 0.5).round();
            if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < ticks.len() {
                ticks[i as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 15))
            .x_labels(2 * nx + 1)
            .y_labels(2 * ny + 1)
            .x_label_formatter(&|v| pick(&xt, *v))
            .y_label_formatter(&|v| pick(&yt, *v))
            .draw()
            .map_err(|x| e(&x))?;
        for (cx, cy, v, text) in &self.cells {
            let (x, y) = (*cx as f64, *cy as f64);
            let fill = if v.is_finite() {
                let t = v.clamp(0.0, 1.0);
                let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
                RGBColor(lerp(255.0, 165.0), lerp(255.0, 15.0), lerp(255.0, 21.0))
            } else {
                RGBColor(230, 230, 230)
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    fill.filled(),
                )))
                .map_err(|x| e(&x))?;
            let ink = if v.is_finite() && *v > 0.55 {
                WHITE
            } else {
                BLACK
            };
            let style = TextStyle::from((FONT, 13).into_font()).color(&ink).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ),
            );
            for (k, line) in text.lines().enumerate() {
                let dy = (k as f64 - (text.lines().count() as f64 - 1.0) / 2.0) * 0.22;
                chart
                    .draw_series(std::iter::once(Text::new(
                        line.to_string(),
                        (x + 0.5, y + 0.5 - dy),
                        style.clone(),
                    )))
                    .map_err(|x| e(&x))?;
            }
        }
        for (cx, cy) in &self.framed {
            let (x, y) = (*cx as f64, *cy as f64);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x + 0.03, y + 0.03), (x + 0.97, y + 0.97)],
                    BLACK.stroke_width(3),
                )))
                .map_err(|x| e(&x))?;
        }
        Ok(())
    }
}

/// Several plots side by side in one figure (each panel drawn at its own `size`; the figure is
/// as wide as their sum and as tall as the tallest), written as `<path>.svg` and `<path>.png`.
pub fn save_row(panels: &[LinePlot], path_without_ext: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let first = panels.first().ok_or_else(|| PlotError::Invalid {
        title: path_without_ext.display().to_string(),
        message: "a figure needs at least one panel".into(),
    })?;
    let w: u32 = panels.iter().map(|p| p.size.0).sum();
    let h: u32 = panels.iter().map(|p| p.size.1).max().unwrap_or(1);
    fn draw<DB: DrawingBackend>(
        panels: &[LinePlot],
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), PlotError> {
        root.fill(&WHITE).map_err(|e| panels[0].draw_err(e))?;
        let mut x = 0i32;
        for p in panels {
            let area = root.clone().shrink((x, 0), p.size);
            p.draw_on(&area)?;
            x += p.size.0 as i32;
        }
        root.present().map_err(|e| panels[0].draw_err(e))
    }
    let mut svg = String::new();
    draw(
        panels,
        &SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area(),
    )?;
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    draw(
        panels,
        &BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area(),
    )?;
    let png = encode_png(&first.title, (w, h), buf)?;
    write_pair(path_without_ext, &svg, &png)
}
/// The largest font size up to `size` at which `title` fits in a canvas `width` pixels wide
/// (with a 12-pixel margin each side; no smaller than 11): long titles are not cut off.
fn caption_size(title: &str, width: u32, size: u32) -> u32 {
    let room = (width as usize).saturating_sub(24);
    (11..=size)
        .rev()
        .find(|&s| panels::text_width(title, s) <= room)
        .unwrap_or(11)
}

/// An RGB pixel buffer of `size` as PNG bytes.
fn encode_png(title: &str, size: (u32, u32), buf: Vec<u8>) -> Result<Vec<u8>, PlotError> {
    let enc = |message: String| PlotError::Encode {
        title: title.to_string(),
        message,
    };
    let img = image::RgbImage::from_raw(size.0, size.1, buf)
        .ok_or_else(|| enc("pixel buffer has the wrong size".into()))?;
    let mut out = io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| enc(e.to_string()))?;
    Ok(out.into_inner())
}

/// Writes `<path>.svg` and `<path>.png` (each through a temporary file and a rename).
fn write_pair(path_without_ext: &Path, svg: &str, png: &[u8]) -> Result<Vec<PathBuf>, PlotError> {
    let base = path_without_ext.as_os_str().to_owned();
    let mut out = Vec::new();
    for (ext, bytes) in [("svg", svg.as_bytes()), ("png", png)] {
        let mut p = base.clone();
        p.push(".");
        p.push(ext);
        let p = PathBuf::from(p);
        write_atomic(&p, bytes)?;
        out.push(p);
    }
    Ok(out)
}

/// Tick positions of a log axis over `[lo, hi]` (0 < lo < hi), every one labelled: the
/// 1, 2, 5 × 10^k inside the range (only the powers of ten when that gives more than 8); when
/// fewer than 2 of them fall inside, 1..9 × 10^k; when still fewer than 2 (a range inside one
/// step, e.g. 1.3 to 1.9), the widest of 1, 2, 5 × 10^k spacings that puts 3 round values inside. plotters' own log ticks
/// can leave a narrow range without a single label.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let inside = |mants: &[f64]| -> Vec<f64> {
        let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        let mut v = Vec::new();
        for k in k0..=k1 {
            for &m in mants {
                // Round through the decimal string: 0.3 rather than 0.30000000000000004.
                let t: f64 = format!("{m}e{k}").parse().unwrap_or(f64::NAN);
                if t >= lo * (1.0 - 1e-12) && t <= hi * (1.0 + 1e-12) {
                    v.push(t);
                }
            }
        }
        v
    };
    let v = inside(&[1.0, 2.0, 5.0]);
    if v.len() > 8 {
        let dec = inside(&[1.0]);
        let step = dec.len().div_ceil(8);
        return dec.into_iter().step_by(step).collect();
    }
    if v.len() >= 2 {
        return v;
    }
    let v = inside(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    if v.len() >= 2 {
        return v;
    }
    // Linear round steps: the largest of 1, 2, 5 × 10^k giving at least 3 ticks inside.
    let span = hi - lo;
    let mut step = 10f64.powf(span.log10().ceil());
    let first_last = |step: f64| ((lo / step - 1e-9).ceil(), (hi / step + 1e-9).floor());
    for _ in 0..9 {
        let (a, b) = first_last(step);
        let n = (b - a) as i64 + 1;
        if n >= 3 {
            break;
        }
        step /= if (step / 10f64.powf(step.log10().floor()) - 5.0).abs() < 1e-9 {
            2.5
        } else {
            2.0
        };
    }
    let (a, b) = first_last(step);
    (a as i64..=b as i64)
        .map(|i| {
            let t = i as f64 * step;
            format!("{t:.10e}").parse().unwrap_or(t)
        })
        .filter(|&t| t >= lo * (1.0 - 1e-12) && t <= hi * (1.0 + 1e-12))
        .collect()
}

/// Tick labels: plain for moderate magnitudes, scientific otherwise; no float noise.
fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.0e}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

/// Temporary file in the same folder, then rename; the temporary file is removed on failure.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    use std::io::Write;
    let err = |source| PlotError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map_err(err)
}

pub mod panels;

#[cfg(test)]
mod tests;
