//! Saved samples: `sim 0` of every model grid point writes `samples/c<C>-n<n>-s<s>.npy` holding
//! up to `save_images` generated images of its last training snapshot, each followed by its
//! nearest training image (ℓ2). The report turns them into one PNG per (C, s)
//! (`memdiff_plot::panels`): a title saying what is shown, one row per n labelled `n = …`, each
//! panel a pair generated | nearest training image, images upscaled to at least 64 pixels a
//! side and the picture to at least 800 pixels wide. (Earlier snapshots save no images, so the
//! grid shows the last one only.)

use crate::grid::Unit;
use crate::report::ReportError;
use memdiff_data::ImageSet;
use memdiff_plot::panels::{Panel, PanelGrid, PanelRow, Tile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File stem of a grid point's saved samples.
pub fn stem(u: &Unit) -> String {
    format!("c{}-n{}-s{}", u.components, u.n, u.steps)
}

fn parse_stem(s: &str) -> Option<(usize, usize, usize)> {
    let p: Vec<&str> = s.split('-').collect();
    if p.len() != 3 {
        return None;
    }
    Some((
        p[0].strip_prefix('c')?.parse().ok()?,
        p[1].strip_prefix('n')?.parse().ok()?,
        p[2].strip_prefix('s')?.parse().ok()?,
    ))
}

/// Writes `samples_c<C>_s<s>.png` under `out` for every (C, s) found in `dir`.
pub fn grids(dir: &Path, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut by: BTreeMap<(usize, usize), BTreeMap<usize, PathBuf>> = BTreeMap::new();
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let rd = std::fs::read_dir(dir).map_err(|source| crate::store::StoreError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some((c, n, s)) = name.strip_suffix(".npy").and_then(parse_stem) {
            by.entry((c, s)).or_default().insert(n, e.path());
        }
    }
    let mut files = Vec::new();
    for ((c, s), rows) in by {
        let sets: Vec<ImageSet> = rows
            .values()
            .map(|p| memdiff_data::npy::read_images(p))
            .collect::<Result<_, _>>()
            .map_err(|e| ReportError::Samples(e.to_string()))?;
        let first = &sets[0];
        let d = first.dim();
        if sets.iter().all(|x| x.n == 0) || sets.iter().any(|x| x.dim() != d) {
            continue;
        }
        let path = out.join(format!("samples_c{c}_s{s}.png"));
        grid(c, s, rows.keys().copied().zip(&sets))
            .save_png(&path)
            .map_err(|e| ReportError::Samples(e.to_string()))?;
        files.push(path);
    }
    Ok(files)
}

/// The picture of one (C, s): a row per n of (generated | nearest training image) pairs, from
/// the saved sets (pairs in the order saved).
pub fn grid<'a>(
    c: usize,
    s: usize,
    sets: impl Iterator<Item = (usize, &'a ImageSet)>,
) -> PanelGrid {
    let tile = |x: &ImageSet, i: usize| Tile::new(x.channels, x.h, x.w, x.row(i));
    let rows = sets
        .map(|(n, set)| PanelRow {
            label: Some(format!("n = {n}")),
            panels: (0..set.n / 2)
                .map(|i| Panel {
                    tiles: vec![Some(tile(set, 2 * i)), Some(tile(set, 2 * i + 1))],
                    ..Panel::default()
                })
                .collect(),
        })
        .collect();
    let title = vec![
        format!(
            "Generated samples, C = {c}, s = {s}: one row per training-set size n (simulation 0, last training snapshot)"
        ),
        "Each pair: generated image (left) | its nearest training image in ℓ2 (right)".to_string(),
    ];
    PanelGrid::labelled(title, rows, 800)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_labelled_row_per_n_of_pairs() {
        // n = 2: 2 pairs; n = 16: 3 pairs; the pixel values tell the images apart.
        let set = |k: usize, base: f32| {
            ImageSet::new(
                2 * k,
                1,
                8,
                8,
                (0..2 * k * 64)
                    .map(|i| base + (i / 64) as f32 * 0.01)
                    .collect(),
            )
        };
        let a = set(2, 0.1);
        let b = set(3, 0.5);
        let g = grid(1, 50, [(2usize, &a), (16, &b)].into_iter());
        let labels: Vec<_> = g.rows.iter().map(|r| r.label.clone().unwrap()).collect();
        assert_eq!(labels, vec!["n = 2", "n = 16"]);
        assert_eq!(g.rows[0].panels.len(), 2);
        assert_eq!(g.rows[1].panels.len(), 3);
        // Pair 1 of n = 16: generated image 2, nearest image 3 of the saved set.
        let p = &g.rows[1].panels[1];
        assert_eq!(p.tiles[0].as_ref().unwrap().pixels, b.row(2));
        assert_eq!(p.tiles[1].as_ref().unwrap().pixels, b.row(3));
        assert!(g.title[1].contains("generated image (left)"));
        assert!(g.geometry().width >= 800);
    }
}
