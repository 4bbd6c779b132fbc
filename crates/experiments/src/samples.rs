//! Saved samples: `sim 0` of every model grid point writes `samples/c<C>-n<n>-s<s>.npy` holding
//! up to `save_images` generated images, each followed by its nearest training image (ℓ2).
//! The report turns them into one PNG per (C, s): one row per n, pairs side by side.

use crate::grid::Unit;
use crate::report::ReportError;
use memdiff_data::ImageSet;
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
        let cols = sets.iter().map(|x| x.n).max().unwrap_or(0);
        let first = &sets[0];
        let d = first.dim();
        if cols == 0 || sets.iter().any(|x| x.dim() != d) {
            continue;
        }
        let mut data = Vec::with_capacity(cols * sets.len() * d);
        for set in &sets {
            data.extend_from_slice(&set.data);
            data.resize(data.len() + (cols - set.n) * d, 0.0);
        }
        let grid = ImageSet::new(cols * sets.len(), first.channels, first.h, first.w, data);
        let path = out.join(format!("samples_c{c}_s{s}.png"));
        let scale = memdiff_data::png::default_scale(first.h, first.w);
        memdiff_data::png::write_grid(&path, &grid, cols, scale)
            .map_err(|e| ReportError::Samples(e.to_string()))?;
        files.push(path);
    }
    Ok(files)
}
