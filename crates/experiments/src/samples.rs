//! Saved samples: `sim 0` of every model grid point writes `samples/c<C>-n<n>-s<s>.npy` holding
//! up to `save_images` generated images of its last training snapshot, each followed by its
//! nearest training image (ℓ2). The report turns them into one PNG per (C, s)
//! (`memdiff_plot::panels`): a title saying what is shown, one row per n labelled `n = …`, each
//! panel a pair generated | nearest training image, images upscaled to at least 64 pixels a
//! side and the picture to at least 800 pixels wide. A sweep with snapshots (`eval_at`) also
//! saves every snapshot as `c<C>-n<n>-s<s>-t<step>.npy`, and the report draws them as
//! `samples_c<C>_s<s>_snapshots.png`: one row per (n, step), n by n, steps in order.

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

/// File stem of a grid point's saved samples at training step `step` (sweeps with snapshots).
pub fn snapshot_stem(u: &Unit, step: u64) -> String {
    format!("{}-t{step}", stem(u))
}

/// (C, n, s, step) of a stem; the step is `None` for the last snapshot's file.
fn parse_stem(s: &str) -> Option<(usize, usize, usize, Option<u64>)> {
    let p: Vec<&str> = s.split('-').collect();
    if p.len() != 3 && p.len() != 4 {
        return None;
    }
    let step = match p.get(3) {
        Some(t) => Some(t.strip_prefix('t')?.parse().ok()?),
        None => None,
    };
    Some((
        p[0].strip_prefix('c')?.parse().ok()?,
        p[1].strip_prefix('n')?.parse().ok()?,
        p[2].strip_prefix('s')?.parse().ok()?,
        step,
    ))
}

/// Writes `samples_c<C>_s<s>.png` under `out` for every (C, s) found in `dir`.
pub fn grids(dir: &Path, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    // (C, s) -> (n, step) -> file; the last snapshot's file has step None.
    type Files = BTreeMap<(usize, Option<u64>), PathBuf>;
    let mut by: BTreeMap<(usize, usize), Files> = BTreeMap::new();
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let rd = std::fs::read_dir(dir).map_err(|source| crate::store::StoreError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some((c, n, s, t)) = name.strip_suffix(".npy").and_then(parse_stem) {
            by.entry((c, s)).or_default().insert((n, t), e.path());
        }
    }
    let mut files = Vec::new();
    for ((c, s), all) in by {
        for snapshots in [false, true] {
            let picked: Vec<(String, &PathBuf)> = all
                .iter()
                .filter(|((_, t), _)| t.is_some() == snapshots)
                .map(|((n, t), p)| match t {
                    Some(t) => (format!("n = {n}, step {t}"), p),
                    None => (format!("n = {n}"), p),
                })
                .collect();
            let sets: Vec<ImageSet> = picked
                .iter()
                .map(|(_, p)| memdiff_data::npy::read_images(p))
                .collect::<Result<_, _>>()
                .map_err(|e| ReportError::Samples(e.to_string()))?;
            let Some(first) = sets.first() else { continue };
            let d = first.dim();
            if sets.iter().all(|x| x.n == 0) || sets.iter().any(|x| x.dim() != d) {
                continue;
            }
            let (name, which) = if snapshots {
                (
                    format!("samples_c{c}_s{s}_snapshots.png"),
                    "one row per training-set size n and training step",
                )
            } else {
                (
                    format!("samples_c{c}_s{s}.png"),
                    "one row per training-set size n (last training snapshot)",
                )
            };
            let path = out.join(name);
            let labels = picked.into_iter().map(|(l, _)| l);
            grid(c, s, which, labels.zip(&sets))
                .save_png(&path)
                .map_err(|e| ReportError::Samples(e.to_string()))?;
            files.push(path);
        }
    }
    Ok(files)
}

/// The picture of one (C, s): a labelled row per saved set (per n, or per n and step) of
/// (generated | nearest training image) pairs (pairs in the order saved); `which` says what the
/// rows are, in the title.
pub fn grid<'a>(
    c: usize,
    s: usize,
    which: &str,
    sets: impl Iterator<Item = (String, &'a ImageSet)>,
) -> PanelGrid {
    let tile = |x: &ImageSet, i: usize| Tile::new(x.channels, x.h, x.w, x.row(i));
    let rows = sets
        .map(|(label, set)| PanelRow {
            label: Some(label),
            panels: (0..set.n / 2)
                .map(|i| Panel {
                    tiles: vec![Some(tile(set, 2 * i)), Some(tile(set, 2 * i + 1))],
                    ..Panel::default()
                })
                .collect(),
        })
        .collect();
    let title = vec![
        format!("Generated samples, C = {c}, s = {s}: {which} (simulation 0)"),
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
        let g = grid(
            1,
            50,
            "one row per n",
            [("n = 2".to_string(), &a), ("n = 16".to_string(), &b)].into_iter(),
        );
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
        assert!(g.title[0].contains("C = 1, s = 50: one row per n (simulation 0)"));
    }

    #[test]
    fn snapshot_files_make_their_own_grid_in_n_then_step_order() {
        let dir = tempfile::tempdir().unwrap();
        let set = ImageSet::new(2, 1, 8, 8, vec![0.5; 128]);
        let u = |n| Unit {
            components: 1,
            n,
            steps: 50,
            sim: 0,
        };
        for (n, t) in [(2, 500), (2, 12000), (8, 500)] {
            let p = dir.path().join(format!("{}.npy", snapshot_stem(&u(n), t)));
            memdiff_data::npy::write_npy(&p, &set).unwrap();
        }
        memdiff_data::npy::write_npy(&dir.path().join(format!("{}.npy", stem(&u(2)))), &set)
            .unwrap();
        assert_eq!(parse_stem("c1-n8-s50-t500"), Some((1, 8, 50, Some(500))));
        assert_eq!(parse_stem("c1-n8-s50"), Some((1, 8, 50, None)));
        assert_eq!(parse_stem("c1-n8-s50-x5"), None);
        let out = tempfile::tempdir().unwrap();
        let files = grids(dir.path(), out.path()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["samples_c1_s50.png", "samples_c1_s50_snapshots.png"]
        );
    }
}
