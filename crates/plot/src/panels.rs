//! Labelled image grids: small images, upscaled nearest-neighbour, in panels with captions,
//! optional row labels and a title, some panels framed in a highlight colour.
//!
//! The checkpoint audit draws one panel per generated image (generated | nearest training image |
//! second nearest, captioned with d1/d2 and the training index, likely copies framed); the sweep
//! report draws one labelled row per n of (generated | nearest) pairs. Text uses the shipped font.
//!
//! Layout (pixels): a white canvas with a margin of [`MARGIN`]; the title lines; then rows of
//! panels, each row optionally preceded by its label. A panel is a frame band of [`FRAME`]
//! (the highlight colour, or a thin grey line), [`PAD`] of white, its tiles side by side with
//! [`GAP`] between them, and its caption lines below. Every panel of a grid has the same size.

use crate::{encode_png, register_fonts, write_atomic, PlotError, FONT};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Outer margin.
pub const MARGIN: usize = 16;
/// Width of a panel's frame band (the highlight is drawn over all of it).
pub const FRAME: usize = 4;
/// White between the frame and the tiles.
pub const PAD: usize = 4;
/// Between the tiles of a panel.
pub const GAP: usize = 4;
/// Between panels (and rows).
pub const PANEL_GAP: usize = 10;
/// Colour of highlighted panels' frames (Tableau red, the plots' palette colour 3).
pub const HIGHLIGHT: (u8, u8, u8) = (214, 39, 40);
/// Colour of the thin frame of the other panels.
pub const PLAIN_FRAME: (u8, u8, u8) = (190, 190, 190);
/// Fill of an empty tile slot.
pub const EMPTY: (u8, u8, u8) = (232, 232, 232);
/// Smallest image side after upscaling (pixels), so that an 8 x 8 image or a digit is legible.
pub const MIN_SIDE: usize = 64;
/// Largest image side the automatic upscaling goes to when widening a small picture.
pub const MAX_SIDE: usize = 256;

const TITLE_SIZE: u32 = 15;
const TITLE_LINE: usize = 21;
const CAPTION_SIZE: u32 = 13;
const CAPTION_LINE: usize = 17;
const LABEL_SIZE: u32 = 15;

/// One small image, values in `[0, 1]` (clamped), channel-first: 3 channels are drawn as RGB,
/// any other count as grey from the first channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Tile {
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub pixels: Vec<f32>,
}

impl Tile {
    pub fn new(channels: usize, h: usize, w: usize, pixels: &[f32]) -> Self {
        Self {
            channels,
            h,
            w,
            pixels: pixels.to_vec(),
        }
    }

    /// The RGB bytes of pixel `(y, x)`: `round(255 v)` of the clamped value.
    pub fn rgb(&self, y: usize, x: usize) -> (u8, u8, u8) {
        let plane = self.h * self.w;
        let b = |k: usize| {
            (self.pixels[k * plane + y * self.w + x].clamp(0.0, 1.0) * 255.0).round() as u8
        };
        if self.channels == 3 {
            (b(0), b(1), b(2))
        } else {
            let v = b(0);
            (v, v, v)
        }
    }
}

/// A group of tiles drawn side by side with caption lines below; `None` leaves a slot empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Panel {
    pub tiles: Vec<Option<Tile>>,
    pub caption: Vec<String>,
    /// Framed in [`HIGHLIGHT`].
    pub highlight: bool,
}

/// A row of panels with an optional label on its left.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PanelRow {
    pub label: Option<String>,
    pub panels: Vec<Panel>,
}

/// A titled grid of panel rows.
#[derive(Clone, Debug, PartialEq)]
pub struct PanelGrid {
    pub title: Vec<String>,
    pub rows: Vec<PanelRow>,
    /// Integer nearest-neighbour upscaling of every tile.
    pub scale: usize,
}

/// Pixel rectangle `(x, y, width, height)`.
pub type Rect = (usize, usize, usize, usize);

/// Where everything goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    pub width: usize,
    pub height: usize,
    /// Width of the row-label column (0 without labels).
    pub label_width: usize,
    /// Size of every panel.
    pub panel: (usize, usize),
    /// Size of every tile after upscaling.
    pub tile: (usize, usize),
    /// Panel rectangles, per row.
    pub panels: Vec<Vec<Rect>>,
}

impl Geometry {
    /// Top-left corner of tile `k` of the panel at `rect`.
    pub fn tile_origin(&self, rect: Rect, k: usize) -> (usize, usize) {
        (
            rect.0 + FRAME + PAD + k * (self.tile.0 + GAP),
            rect.1 + FRAME + PAD,
        )
    }
}

/// The smallest integer scale that makes the longer side at least `min_side` pixels (1 when it
/// already is).
pub fn scale_for(h: usize, w: usize, min_side: usize) -> usize {
    min_side.div_ceil(h.max(w).max(1)).max(1)
}

/// Width of `text` at font `size` in the shipped font (an estimate of 0.6 em a character if the
/// font cannot measure it).
pub fn text_width(text: &str, size: u32) -> usize {
    register_fonts();
    match (FONT, size).into_font().box_size(text) {
        Ok((w, _)) => w as usize,
        Err(_) => (text.chars().count() as f64 * size as f64 * 0.6).ceil() as usize,
    }
}

impl PanelGrid {
    /// Unlabelled panels wrapped into rows: tiles upscaled to at least [`MIN_SIDE`], as many
    /// panels per row as make the picture at least `min_width` wide (all of them if fewer), and
    /// when even one row of all panels is narrower, tiles upscaled further (up to
    /// [`MAX_SIDE`]).
    pub fn wrap(title: Vec<String>, panels: Vec<Panel>, min_width: usize) -> Self {
        let n = panels.len().max(1);
        let mut g = Self {
            title,
            rows: vec![PanelRow {
                label: None,
                panels: Vec::new(),
            }],
            scale: 1,
        };
        let (h, w) = first_tile(panels.iter());
        g.scale = scale_for(h, w, MIN_SIDE);
        // Widen with all panels in one row if that is still too narrow.
        g.rows[0].panels = panels;
        let max_scale = scale_for(h, w, MAX_SIDE).max(g.scale);
        while g.geometry().width < min_width && g.scale < max_scale {
            g.scale += 1;
        }
        let pw = g.panel_size().0;
        let panels = std::mem::take(&mut g.rows[0].panels);
        let cols = (1..=n)
            .find(|&c| 2 * MARGIN + c * pw + (c - 1) * PANEL_GAP >= min_width)
            .unwrap_or(n);
        let mut rows = Vec::new();
        let mut it = panels.into_iter().peekable();
        while it.peek().is_some() {
            rows.push(PanelRow {
                label: None,
                panels: it.by_ref().take(cols).collect(),
            });
        }
        g.rows = rows;
        g
    }

    /// Labelled rows as given, tiles upscaled to at least [`MIN_SIDE`] and further (up to
    /// [`MAX_SIDE`]) until the picture is at least `min_width` wide.
    pub fn labelled(title: Vec<String>, rows: Vec<PanelRow>, min_width: usize) -> Self {
        let (h, w) = first_tile(rows.iter().flat_map(|r| r.panels.iter()));
        let mut g = Self {
            title,
            rows,
            scale: scale_for(h, w, MIN_SIDE),
        };
        let max_scale = scale_for(h, w, MAX_SIDE).max(g.scale);
        while g.geometry().width < min_width && g.scale < max_scale {
            g.scale += 1;
        }
        g
    }

    fn tile_size(&self) -> (usize, usize) {
        let (h, w) = first_tile(self.rows.iter().flat_map(|r| r.panels.iter()));
        (w * self.scale, h * self.scale)
    }

    fn panel_size(&self) -> (usize, usize) {
        let (tw, th) = self.tile_size();
        let all = || self.rows.iter().flat_map(|r| r.panels.iter());
        let k = all().map(|p| p.tiles.len()).max().unwrap_or(0);
        let lines = all().map(|p| p.caption.len()).max().unwrap_or(0);
        let caption_w = all()
            .flat_map(|p| p.caption.iter())
            .map(|c| text_width(c, CAPTION_SIZE))
            .max()
            .unwrap_or(0);
        let inner = (k * tw + k.saturating_sub(1) * GAP).max(caption_w);
        let caption_h = if lines > 0 {
            4 + lines * CAPTION_LINE
        } else {
            0
        };
        (
            2 * (FRAME + PAD) + inner,
            2 * (FRAME + PAD) + th + caption_h,
        )
    }

    /// The layout in pixels.
    pub fn geometry(&self) -> Geometry {
        let (pw, ph) = self.panel_size();
        let label_width = self
            .rows
            .iter()
            .filter_map(|r| r.label.as_deref())
            .map(|l| text_width(l, LABEL_SIZE) + 12)
            .max()
            .unwrap_or(0);
        let cols = self.rows.iter().map(|r| r.panels.len()).max().unwrap_or(0);
        let title_w = self
            .title
            .iter()
            .map(|t| text_width(t, TITLE_SIZE))
            .max()
            .unwrap_or(0);
        let grid_w = label_width + cols * pw + cols.saturating_sub(1) * PANEL_GAP;
        let width = 2 * MARGIN + grid_w.max(title_w);
        let top =
            MARGIN + self.title.len() * TITLE_LINE + if self.title.is_empty() { 0 } else { 6 };
        let panels = self
            .rows
            .iter()
            .enumerate()
            .map(|(r, row)| {
                (0..row.panels.len())
                    .map(|c| {
                        (
                            MARGIN + label_width + c * (pw + PANEL_GAP),
                            top + r * (ph + PANEL_GAP),
                            pw,
                            ph,
                        )
                    })
                    .collect()
            })
            .collect();
        let rows = self.rows.len();
        let height = top + rows * ph + rows.saturating_sub(1) * PANEL_GAP + MARGIN;
        Geometry {
            width,
            height,
            label_width,
            panel: (pw, ph),
            tile: self.tile_size(),
            panels,
        }
    }

    /// The picture as RGB bytes: `(geometry, pixels)`.
    pub fn render(&self) -> Result<(Geometry, Vec<u8>), PlotError> {
        register_fonts();
        let geo = self.geometry();
        let (w, h) = (geo.width, geo.height);
        let mut buf = vec![255u8; w * h * 3];
        let mut put = |x: usize, y: usize, c: (u8, u8, u8)| {
            if x < w && y < h {
                let i = (y * w + x) * 3;
                buf[i] = c.0;
                buf[i + 1] = c.1;
                buf[i + 2] = c.2;
            }
        };
        for (row, rects) in self.rows.iter().zip(&geo.panels) {
            for (p, &rect) in row.panels.iter().zip(rects) {
                let (x0, y0, pw, ph) = rect;
                // Frame: the whole band in the highlight colour, or a 1-pixel grey line.
                let (band, colour) = if p.highlight {
                    (FRAME, HIGHLIGHT)
                } else {
                    (1, PLAIN_FRAME)
                };
                for y in y0..y0 + ph {
                    for x in x0..x0 + pw {
                        let inside = x >= x0 + band
                            && x < x0 + pw - band
                            && y >= y0 + band
                            && y < y0 + ph - band;
                        if !inside {
                            put(x, y, colour);
                        }
                    }
                }
                for (k, t) in p.tiles.iter().enumerate() {
                    let (ox, oy) = geo.tile_origin(rect, k);
                    for y in 0..geo.tile.1 {
                        for x in 0..geo.tile.0 {
                            let c = match t {
                                Some(t) if t.h * self.scale == geo.tile.1 => {
                                    t.rgb(y / self.scale, x / self.scale)
                                }
                                _ => EMPTY,
                            };
                            put(ox + x, oy + y, c);
                        }
                    }
                }
            }
        }
        {
            let root =
                BitMapBackend::with_buffer(&mut buf, (w as u32, h as u32)).into_drawing_area();
            let err = |e: &dyn std::fmt::Display| PlotError::Draw {
                title: self.title.first().cloned().unwrap_or_default(),
                message: e.to_string(),
            };
            for (i, line) in self.title.iter().enumerate() {
                let style = (FONT, TITLE_SIZE).into_font().color(&BLACK);
                root.draw_text(
                    line,
                    &style,
                    (MARGIN as i32, (MARGIN + i * TITLE_LINE) as i32),
                )
                .map_err(|e| err(&e))?;
            }
            let caption_style = (FONT, CAPTION_SIZE).into_font().color(&BLACK);
            let label_style = (FONT, LABEL_SIZE).into_font().color(&BLACK);
            for (row, rects) in self.rows.iter().zip(&geo.panels) {
                if let (Some(l), Some(first)) = (&row.label, rects.first()) {
                    let y = first.1 + first.3 / 2 - LABEL_SIZE as usize / 2;
                    root.draw_text(l, &label_style, (MARGIN as i32, y as i32))
                        .map_err(|e| err(&e))?;
                }
                for (p, &rect) in row.panels.iter().zip(rects) {
                    let y0 = rect.1 + FRAME + PAD + geo.tile.1 + 4;
                    for (i, line) in p.caption.iter().enumerate() {
                        root.draw_text(
                            line,
                            &caption_style,
                            (
                                (rect.0 + FRAME + PAD) as i32,
                                (y0 + i * CAPTION_LINE) as i32,
                            ),
                        )
                        .map_err(|e| err(&e))?;
                    }
                }
            }
            root.present().map_err(|e| err(&e))?;
        }
        Ok((geo, buf))
    }

    /// The picture as PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>, PlotError> {
        let (geo, buf) = self.render()?;
        let title = self.title.first().cloned().unwrap_or_default();
        encode_png(&title, (geo.width as u32, geo.height as u32), buf)
    }

    /// Writes the PNG to `path` (through a temporary file and a rename).
    pub fn save_png(&self, path: &Path) -> Result<PathBuf, PlotError> {
        write_atomic(path, &self.png()?)?;
        Ok(path.to_path_buf())
    }
}

/// `(h, w)` of the first tile present (1 x 1 if none).
fn first_tile<'a>(mut panels: impl Iterator<Item = &'a Panel>) -> (usize, usize) {
    panels
        .find_map(|p| p.tiles.iter().flatten().next())
        .map_or((1, 1), |t| (t.h, t.w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(v: f32) -> Tile {
        Tile::new(1, 8, 8, &[v; 64])
    }

    #[test]
    fn scale_rule() {
        assert_eq!(scale_for(8, 8, 64), 8);
        assert_eq!(scale_for(28, 28, 64), 3);
        assert_eq!(scale_for(16, 16, 64), 4);
        assert_eq!(scale_for(100, 100, 64), 1);
    }

    #[test]
    fn wrap_layout_frames_and_pixels() {
        // 10 panels of 3 tiles of 8 x 8: scale 8 (64 px); panel 2*(4+4) + 3*64 + 2*4 = 216 px
        // wide; 4 per row reach 2*16 + 4*216 + 3*10 = 926 >= 800, 3 give 710: 3 rows (4, 4, 2).
        let panels: Vec<Panel> = (0..10)
            .map(|i| Panel {
                tiles: vec![
                    Some(tile(1.0)),
                    Some(tile(0.5)),
                    if i == 9 { None } else { Some(tile(0.0)) },
                ],
                caption: vec![format!("d1/d2 0.{i}")],
                highlight: i < 3,
            })
            .collect();
        let g = PanelGrid::wrap(vec!["a title".into()], panels, 800);
        assert_eq!(g.scale, 8);
        assert_eq!(
            g.rows.iter().map(|r| r.panels.len()).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        let (geo, px) = g.render().unwrap();
        assert_eq!(geo.panel.0, 216);
        assert_eq!(geo.width, 926);
        assert_eq!(geo.tile, (64, 64));
        let at = |x: usize, y: usize| {
            let i = (y * geo.width + x) * 3;
            (px[i], px[i + 1], px[i + 2])
        };
        for (r, rects) in geo.panels.iter().enumerate() {
            for (c, &rect) in rects.iter().enumerate() {
                let i = 4 * r + c;
                // The frame band's inner pixel: red for the first three, white for the others.
                let band = at(rect.0 + FRAME - 1, rect.1 + rect.3 / 2);
                assert_eq!(
                    band,
                    if i < 3 { HIGHLIGHT } else { (255, 255, 255) },
                    "panel {i}"
                );
                let edge = at(rect.0, rect.1);
                assert_eq!(edge, if i < 3 { HIGHLIGHT } else { PLAIN_FRAME });
                // Tiles: white, mid grey (0.5 -> 128), black or the empty slot.
                let mid = |k: usize| {
                    let (x, y) = geo.tile_origin(rect, k);
                    at(x + 32, y + 32)
                };
                assert_eq!(mid(0), (255, 255, 255));
                assert_eq!(mid(1), (128, 128, 128));
                assert_eq!(mid(2), if i == 9 { EMPTY } else { (0, 0, 0) });
            }
        }
        // Text was drawn in the title band and under the tiles (some dark pixels there).
        let dark =
            |y0: usize, y1: usize| (y0..y1).any(|y| (0..geo.width).any(|x| at(x, y).0 < 100));
        assert!(dark(MARGIN, MARGIN + TITLE_LINE));
        let r0 = geo.panels[0][0];
        assert!(dark(r0.1 + FRAME + PAD + 64 + 2, r0.1 + r0.3 - FRAME));
        let png = g.png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn few_panels_are_upscaled_to_the_width() {
        // One panel of two 8 x 8 tiles: 2*(4+4) + 2*8s + 4 = 20 + 16 s >= 800 - 32 -> s = 47,
        // but the largest side is 256 px (s = 32).
        let p = Panel {
            tiles: vec![Some(tile(1.0)), Some(tile(0.0))],
            ..Panel::default()
        };
        let g = PanelGrid::wrap(vec![], vec![p], 800);
        assert_eq!(g.scale, 32);
        let rows = vec![
            PanelRow {
                label: Some("n = 2".into()),
                panels: vec![
                    Panel {
                        tiles: vec![Some(tile(1.0)); 2],
                        ..Panel::default()
                    };
                    3
                ],
            },
            PanelRow {
                label: Some("n = 128".into()),
                panels: vec![],
            },
        ];
        let g = PanelGrid::labelled(vec!["t".into()], rows, 800);
        let geo = g.geometry();
        assert!(geo.width >= 800 && geo.label_width > 0);
        // 3 panels of 2 tiles at scale s: 32 + label + 3 (20 + 16 s) + 20 >= 800, the smallest s.
        let s = g.scale;
        let w = |s: usize| 2 * MARGIN + geo.label_width + 3 * (16 + 16 * s + GAP) + 2 * PANEL_GAP;
        assert!(w(s) >= 800 && w(s - 1) < 800, "scale {s}");
        assert_eq!(geo.panels[0][0].0, MARGIN + geo.label_width);
    }
}
