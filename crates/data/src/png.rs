//! PNG grids of images, upscaled nearest-neighbour so that 8 x 8 images and digits are legible
//! (at least [`MIN_SIDE`] pixels a side by default).
//!
//! Layout: `cols` images per row, every image `scale` times its size, a 1-pixel separator of
//! mid grey (128) between images and around the grid. Pixel values are clamped to `[0, 1]` and
//! mapped to `round(255 v)`. One channel → greyscale; three → RGB; other channel counts show the
//! first channel.

use std::path::Path;

use image::{ImageBuffer, ImageEncoder};

use crate::{DataError, ImageSet};

/// Separator grey level.
pub const SEPARATOR: u8 = 128;

/// Smallest image side of a grid at the default scale, in pixels: an 8 x 8 GMM image or a
/// digit is legible.
pub const MIN_SIDE: usize = 64;

/// The smallest integer scale that makes the longer image side at least [`MIN_SIDE`] pixels
/// (1 for images of 64 or more; 8 for 8 x 8, 4 for 16 x 16, 3 for 28 x 28).
pub fn default_scale(h: usize, w: usize) -> usize {
    let side = h.max(w).max(1);
    MIN_SIDE.div_ceil(side).max(1)
}

/// Renders the grid into raw pixels: `(width, height, channels (1 or 3), bytes)`.
/// `scale = 0` means [`default_scale`]; `cols = 0` means about square.
pub fn render_grid(set: &ImageSet, cols: usize, scale: usize) -> (u32, u32, usize, Vec<u8>) {
    let scale = if scale == 0 {
        default_scale(set.h, set.w)
    } else {
        scale
    };
    let cols = if cols == 0 {
        crate::images::isqrt(set.n.saturating_sub(1)) + 1
    } else {
        cols
    }
    .min(set.n.max(1));
    let rows = set.n.div_ceil(cols).max(1);
    let out_c = if set.channels == 3 { 3 } else { 1 };
    let (cw, ch) = (set.w * scale, set.h * scale);
    let width = cols * (cw + 1) + 1;
    let height = rows * (ch + 1) + 1;
    let mut buf = vec![SEPARATOR; width * height * out_c];
    let plane = set.h * set.w;
    for i in 0..set.n {
        let (gy, gx) = (i / cols, i % cols);
        let (oy, ox) = (1 + gy * (ch + 1), 1 + gx * (cw + 1));
        let img = set.row(i);
        for y in 0..ch {
            for x in 0..cw {
                let (sy, sx) = (y / scale, x / scale);
                for k in 0..out_c {
                    let v = img[k * plane + sy * set.w + sx];
                    let b = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                    buf[((oy + y) * width + ox + x) * out_c + k] = b;
                }
            }
        }
    }
    (width as u32, height as u32, out_c, buf)
}

/// The PNG file bytes of [`render_grid`].
pub fn grid_png_bytes(
    path: &Path,
    set: &ImageSet,
    cols: usize,
    scale: usize,
) -> Result<Vec<u8>, DataError> {
    if set.n == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            shape: vec![0],
        });
    }
    let (w, h, c, pixels) = render_grid(set, cols, scale);
    let color = if c == 3 {
        image::ExtendedColorType::Rgb8
    } else {
        image::ExtendedColorType::L8
    };
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&pixels, w, h, color)
        .map_err(|e| DataError::Png {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    Ok(out)
}

/// Writes a PNG grid of `set` to `path` atomically; `cols = 0` about square, `scale = 0` the
/// [`default_scale`].
pub fn write_grid(path: &Path, set: &ImageSet, cols: usize, scale: usize) -> Result<(), DataError> {
    let bytes = grid_png_bytes(path, set, cols, scale)?;
    crate::atomic::write_bytes(path, &bytes)?;
    Ok(())
}

/// Decodes a greyscale PNG (for tests and checks): `(width, height, bytes)`.
pub fn read_gray_png(path: &Path) -> Result<(u32, u32, Vec<u8>), DataError> {
    let img = image::open(path).map_err(|e| DataError::Png {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let g: ImageBuffer<image::Luma<u8>, Vec<u8>> = img.to_luma8();
    Ok((g.width(), g.height(), g.into_raw()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_layout_and_upscaling() {
        // Two 2x2 images, values 0, 1/3 ..., one row.
        let set = ImageSet::new(2, 1, 2, 2, vec![0.0, 1.0, 0.5, 0.25, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(default_scale(2, 2), 32);
        assert_eq!(default_scale(8, 8), 8);
        assert_eq!(default_scale(16, 16), 4);
        assert_eq!(default_scale(28, 28), 3);
        assert_eq!(default_scale(32, 32), 2);
        assert_eq!(default_scale(64, 64), 1);
        let (w, h, c, px) = render_grid(&set, 2, 3);
        assert_eq!((w, h, c), (2 * 7 + 1, 7 + 1, 1));
        let at = |x: usize, y: usize| px[y * w as usize + x];
        assert_eq!(at(0, 0), SEPARATOR);
        assert_eq!(at(1, 1), 0); // image 0 pixel (0, 0)
        assert_eq!(at(3, 3), 0);
        assert_eq!(at(4, 1), 255); // image 0 pixel (0, 1) starts at x = 1 + 3
        assert_eq!(at(1, 4), 128); // 0.5 → 127.5 → 128
        assert_eq!(at(6, 6), 64); // 0.25 → 63.75 → 64
        assert_eq!(at(7, 3), SEPARATOR);
        assert_eq!(at(8, 1), 255); // image 1
    }

    #[test]
    fn png_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.png");
        let set = ImageSet::new(3, 1, 8, 8, (0..192).map(|i| (i % 7) as f32 / 6.0).collect());
        write_grid(&f, &set, 0, 0).unwrap();
        let (w, h, bytes) = read_gray_png(&f).unwrap();
        // 3 images of 8 x 8 at scale 8, 2 per row: 2 * (64 + 1) + 1 pixels each way.
        assert_eq!((w, h), (2 * 65 + 1, 2 * 65 + 1));
        assert_eq!(bytes, render_grid(&set, 0, 0).3);
    }
}
