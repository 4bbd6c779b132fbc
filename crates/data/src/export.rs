//! Images out, as the FID tools (clean-fid, torch-fidelity, pytorch-fid) read them: a folder
//! with one PNG per image ([`write_png_dir`]) and a `.npz` whose `arr_0` is `(n, h, w, c)`
//! uint8 ([`write_npz`]). Pixels are `round(255 v)` of the values clamped to [0, 1]
//! ([`crate::idx::to_u8`]), so images read from 8-bit files come back to the same bytes.
//! One channel → greyscale PNGs, three → RGB.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use image::ImageEncoder;
use npyz::WriterBuilder;

use crate::atomic::WriteError;
use crate::{DataError, ImageSet};

/// The file name of image `i` of `n` in a PNG folder: zero-padded to at least 5 digits, so that
/// sorting by name keeps the order (`00000.png`, `00001.png`, ...).
pub fn png_name(i: usize, n: usize) -> String {
    let digits = n.saturating_sub(1).to_string().len().max(5);
    format!("{i:0digits$}.png")
}

/// The image's bytes in `(h, w, c)` order.
fn hwc_bytes(set: &ImageSet, i: usize) -> Vec<u8> {
    let b = crate::idx::to_u8(set.row(i));
    let plane = set.h * set.w;
    let mut out = Vec::with_capacity(b.len());
    for p in 0..plane {
        for ch in 0..set.channels {
            out.push(b[ch * plane + p]);
        }
    }
    out
}

fn check_channels(path: &Path, set: &ImageSet) -> Result<(), DataError> {
    if set.n == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            shape: vec![0],
        });
    }
    if set.channels != 1 && set.channels != 3 {
        return Err(DataError::invalid(
            path.display().to_string(),
            format!(
                "{} channels: image files hold 1 (greyscale) or 3 (RGB)",
                set.channels
            ),
        ));
    }
    Ok(())
}

/// The PNG file bytes of image `i`.
pub fn png_bytes(path: &Path, set: &ImageSet, i: usize) -> Result<Vec<u8>, DataError> {
    check_channels(path, set)?;
    let color = if set.channels == 3 {
        image::ExtendedColorType::Rgb8
    } else {
        image::ExtendedColorType::L8
    };
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&hwc_bytes(set, i), set.w as u32, set.h as u32, color)
        .map_err(|e| DataError::Png {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    Ok(out)
}

/// Writes one PNG per image into the folder `dir` ([`png_name`]s), all or nothing: the files go
/// into a hidden folder beside `dir` that is renamed to `dir` at the end. `dir` must not exist
/// or be empty (so that no image of an earlier run is mixed in). Returns the file paths.
pub fn write_png_dir(dir: &Path, set: &ImageSet) -> Result<Vec<PathBuf>, DataError> {
    check_channels(dir, set)?;
    let werr = |path: &Path, source: std::io::Error| {
        DataError::Write(WriteError {
            path: path.to_path_buf(),
            source,
        })
    };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|e| DataError::read(dir, e))?;
        if entries.next().is_some() {
            return Err(DataError::invalid(
                format!("PNG folder {}", dir.display()),
                "it already holds files; give a new or empty folder (images of an earlier run would be mixed in)",
            ));
        }
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "png".into());
    let tmp = dir.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| {
        std::fs::create_dir_all(&tmp).map_err(|e| werr(&tmp, e))?;
        let mut names = Vec::with_capacity(set.n);
        for i in 0..set.n {
            let fname = png_name(i, set.n);
            let bytes = png_bytes(&dir.join(&fname), set, i)?;
            let p = tmp.join(&fname);
            std::fs::File::create(&p)
                .and_then(|mut f| f.write_all(&bytes))
                .map_err(|e| werr(&dir.join(&fname), e))?;
            names.push(dir.join(fname));
        }
        // Renaming over an empty folder replaces it.
        std::fs::rename(&tmp, dir).map_err(|e| werr(dir, e))?;
        Ok(names)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// The bytes of an `.npz` holding `arr_0`: the images as `(n, h, w, c)` uint8, stored
/// uncompressed (as `numpy.savez`).
pub fn npz_bytes(path: &Path, set: &ImageSet) -> Result<Vec<u8>, DataError> {
    check_channels(path, set)?;
    let io = |e: std::io::Error| DataError::Npz {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let mut npy = Vec::with_capacity(128 + set.data.len());
    let shape = [set.n, set.h, set.w, set.channels].map(|s| s as u64);
    let mut w = npyz::WriteOptions::<u8>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut npy)
        .begin_nd()
        .map_err(io)?;
    for i in 0..set.n {
        w.extend(hwc_bytes(set, i)).map_err(io)?;
    }
    w.finish().map_err(io)?;
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::FileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(npy.len() as u64 >= u32::MAX as u64);
    let zerr = |e: zip::result::ZipError| DataError::Npz {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    zw.start_file(npyz::npz::file_name_from_index(0), opts)
        .map_err(zerr)?;
    zw.write_all(&npy).map_err(io)?;
    Ok(zw.finish().map_err(zerr)?.into_inner())
}

/// Writes [`npz_bytes`] to `path` atomically.
pub fn write_npz(path: &Path, set: &ImageSet) -> Result<(), DataError> {
    let bytes = npz_bytes(path, set)?;
    crate::atomic::write_bytes(path, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_dir_round_trips_bytes_and_refuses_a_full_folder() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("out");
        let set = ImageSet::new(
            3,
            3,
            4,
            5,
            (0..180).map(|i| (i * 7 % 256) as f32 / 255.0).collect(),
        );
        let files = write_png_dir(&d, &set).unwrap();
        assert_eq!(files.len(), 3);
        assert!(files[2].ends_with("00002.png"));
        for (i, f) in files.iter().enumerate() {
            let img = image::open(f).unwrap().to_rgb8();
            assert_eq!((img.width(), img.height()), (5, 4));
            assert_eq!(img.into_raw(), hwc_bytes(&set, i));
        }
        // No temporary folder is left beside it.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
        let e = write_png_dir(&d, &set).unwrap_err().to_string();
        assert!(
            e.contains("already holds files") && e.contains("out"),
            "{e}"
        );
        // An existing empty folder is fine.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert_eq!(write_png_dir(&empty, &set).unwrap().len(), 3);
        assert_eq!(png_name(7, 200_000), "000007.png");
        let two = ImageSet::new(1, 2, 1, 1, vec![0.0, 1.0]);
        assert!(write_png_dir(&dir.path().join("x"), &two).is_err());
    }

    #[test]
    fn values_are_clamped_and_rounded() {
        let set = ImageSet::new(1, 1, 1, 4, vec![-0.5, 0.5, 1.5, 0.2]);
        let dir = tempfile::tempdir().unwrap();
        let files = write_png_dir(&dir.path().join("p"), &set).unwrap();
        let img = image::open(&files[0]).unwrap().to_luma8();
        assert_eq!(img.into_raw(), vec![0, 128, 255, 51]);
    }
}
