//! MNIST: the shipped 10k subset (embedded in the binary), the one lookup of where MNIST images
//! come from ([`locate`]), loading IDX image and label files, choosing a seeded subset, and
//! bringing the 28 x 28 digits to a side the U-Net takes (bilinear resize to 8 / 16 / 32, or
//! zero padding to 32).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::idx::{gunzip_if_gzip, idx_to_images, parse_idx, read_idx, IdxArray};
use crate::{DataError, ImageSet};

/// The name under which recipes, configs and run records refer to the shipped 10,000-digit
/// subset. It is embedded in the binary, so it is found from any working folder.
pub const SHIPPED: &str = "shipped:mnist-10k";
/// Where the shipped images live in the repository. Recipes and configs written before the
/// subset was embedded name this relative path; it is read as [`SHIPPED`] (the same bytes) from
/// any folder.
pub const SHIPPED_IMAGES: &str = "data/mnist/mnist-10k-images-idx3-ubyte.gz";
/// Labels of [`SHIPPED_IMAGES`] in the repository (read as the embedded labels, as above).
pub const SHIPPED_LABELS: &str = "data/mnist/mnist-10k-labels-idx1-ubyte.gz";
/// Environment variable naming a folder with the full MNIST files (as `--mnist-dir`).
pub const ENV_DIR: &str = "MEMDIFF_MNIST_DIR";
/// File names of the full MNIST training images (60,000 digits) looked for in an MNIST folder,
/// in this order.
pub const FULL_TRAIN_IMAGES: [&str; 3] = [
    "train-images-idx3-ubyte.gz",
    "train-images-idx3-ubyte",
    "train-images.idx3-ubyte",
];

/// The shipped images, gzipped IDX (1.6 MB), as in the repository's `data/mnist/`.
pub static SHIPPED_IMAGES_GZ: &[u8] =
    include_bytes!("../../../data/mnist/mnist-10k-images-idx3-ubyte.gz");
/// The shipped labels, gzipped IDX.
pub static SHIPPED_LABELS_GZ: &[u8] =
    include_bytes!("../../../data/mnist/mnist-10k-labels-idx1-ubyte.gz");
/// Provenance and attribution of the shipped subset (the repository's `data/mnist/README.md`);
/// keep it with any copy of the data (`memdiff data mnist --about` prints it).
pub const SHIPPED_ABOUT: &str = include_str!("../../../data/mnist/README.md");

/// Whether `path` names the shipped subset: [`SHIPPED`] or its repository path
/// [`SHIPPED_IMAGES`] (also `./data/mnist/...`).
pub fn is_shipped(path: &Path) -> bool {
    let p = path.strip_prefix(".").unwrap_or(path);
    p == Path::new(SHIPPED) || p == Path::new(SHIPPED_IMAGES)
}

fn parse_embedded(name: &str, gz: &[u8]) -> Result<IdxArray, DataError> {
    let path = Path::new(name);
    let bytes = gunzip_if_gzip(path, gz)?;
    parse_idx(path, &bytes)
}

/// The shipped 10,000 digits, 28 x 28, values `byte / 255`.
pub fn shipped_images() -> ImageSet {
    let arr = parse_embedded(SHIPPED, SHIPPED_IMAGES_GZ).expect("the embedded MNIST images parse");
    idx_to_images(Path::new(SHIPPED), &arr).expect("the embedded MNIST images are images")
}

/// The labels (0–9) of [`shipped_images`].
pub fn shipped_labels() -> Vec<u8> {
    parse_embedded(SHIPPED, SHIPPED_LABELS_GZ)
        .expect("the embedded MNIST labels parse")
        .data
}

/// Where MNIST images come from: the one lookup behind `memdiff data mnist`, `train --data
/// mnist`, the sweep's `[mnist]` table and (through [`load_images`]) every rebuild of a recipe.
///
/// In order: `file` (an IDX images file named by the user), else the full training images in
/// `dir` (`--mnist-dir`, or the sweep's `mnist.dir`), else in the folder named by the
/// environment variable [`ENV_DIR`], else the shipped subset. Returns what a recipe stores:
/// [`SHIPPED`], or the absolute path of the file (so the recipe rebuilds the same set from any
/// working folder). A relative `file` or `dir` is taken relative to the working folder; the
/// repository path of the shipped images maps to [`SHIPPED`].
pub fn locate(file: Option<&Path>, dir: Option<&Path>) -> Result<PathBuf, DataError> {
    locate_with(file, dir, std::env::var_os(ENV_DIR))
}

/// [`locate`] with the value of [`ENV_DIR`] given (`None`: unset).
pub fn locate_with(
    file: Option<&Path>,
    dir: Option<&Path>,
    env_dir: Option<OsString>,
) -> Result<PathBuf, DataError> {
    if let Some(f) = file {
        if is_shipped(f) {
            return Ok(PathBuf::from(SHIPPED));
        }
        let abs = absolute(f)?;
        if !abs.is_file() {
            return Err(DataError::Read {
                path: f.to_path_buf(),
                err: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        return Ok(abs);
    }
    let (dir, what) = match (dir, env_dir.filter(|v| !v.is_empty())) {
        (Some(d), _) => (d.to_path_buf(), "--mnist-dir".to_string()),
        (None, Some(e)) => (PathBuf::from(e), format!("${ENV_DIR}")),
        (None, None) => return Ok(PathBuf::from(SHIPPED)),
    };
    let abs = absolute(&dir)?;
    if !abs.is_dir() {
        return Err(DataError::invalid(
            format!("{what} {}", dir.display()),
            "no such folder (give the folder that holds the full MNIST files)",
        ));
    }
    FULL_TRAIN_IMAGES
        .iter()
        .map(|name| abs.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            DataError::invalid(
                format!("{what} {}", dir.display()),
                format!(
                    "no MNIST training images in it (looked for {}); unset it to use the shipped 10k subset",
                    FULL_TRAIN_IMAGES.join(", ")
                ),
            )
        })
}

fn absolute(p: &Path) -> Result<PathBuf, DataError> {
    std::path::absolute(p).map_err(|e| DataError::read(p, e))
}

/// Loads an IDX image file (gzipped or plain) of shape `(n, h, w)` as one-channel images with
/// values `byte / 255` in `[0, 1]` (28 x 28 for MNIST). [`SHIPPED`] (or the repository path of
/// the shipped images) gives the embedded subset, from any working folder.
pub fn load_images(path: &Path) -> Result<ImageSet, DataError> {
    if is_shipped(path) {
        return Ok(shipped_images());
    }
    let arr = read_idx(path)?;
    if arr.dims.len() != 3 {
        return Err(DataError::Shape {
            path: path.to_path_buf(),
            shape: arr.dims.iter().map(|&d| d as u64).collect(),
        });
    }
    idx_to_images(path, &arr)
}

/// Loads an IDX label file (gzipped or plain) of shape `(n,)`; [`SHIPPED`] or
/// [`SHIPPED_LABELS`] give the embedded labels.
pub fn load_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let p = path.strip_prefix(".").unwrap_or(path);
    if p == Path::new(SHIPPED) || p == Path::new(SHIPPED_LABELS) {
        return Ok(shipped_labels());
    }
    let arr = read_idx(path)?;
    if arr.dims.len() != 1 {
        return Err(DataError::Mismatch {
            path: path.to_path_buf(),
            detail: format!(
                "a label file has one dimension, this one has shape {:?}; did you swap the image and label files?",
                arr.dims
            ),
        });
    }
    Ok(arr.data)
}

/// How MNIST digits are brought to the network's side.
///
/// In TOML: `resize = { bilinear = 16 }` or `resize = "pad32"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resize {
    /// Bilinear resize to `px x px` with PyTorch's `F.interpolate(mode="bilinear",
    /// align_corners=False, antialias=False)` convention (see [`resize_bilinear`]).
    Bilinear(usize),
    /// Zero padding, centred, to 32 x 32 (28 → 32 adds 2 pixels on every side).
    Pad32,
}

impl Resize {
    /// The image side this produces.
    pub fn side(&self) -> usize {
        match *self {
            Resize::Bilinear(px) => px,
            Resize::Pad32 => 32,
        }
    }

    /// Applies the resize to every image; the side must be a positive multiple of 8.
    pub fn apply(&self, set: &ImageSet) -> Result<ImageSet, DataError> {
        crate::check_side(self.side())?;
        match *self {
            Resize::Bilinear(px) => Ok(resize_bilinear(set, px, px)),
            Resize::Pad32 => pad_to(set, 32),
        }
    }
}

/// Source coordinate and weights along one axis, PyTorch's `align_corners=False` rule:
/// `src = (o + 0.5) * in / out - 0.5`, clamped below at 0; `i0 = floor(src)`,
/// `i1 = min(i0 + 1, in - 1)`, weight `l = src - i0` on `i1` and `1 - l` on `i0`.
/// No antialiasing: downscaling reads only the two nearest source pixels.
fn axis_weights(inp: usize, out: usize) -> Vec<(usize, usize, f32)> {
    let scale = inp as f64 / out as f64;
    (0..out)
        .map(|o| {
            let src = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(inp - 1);
            let i1 = (i0 + 1).min(inp - 1);
            let l = (src - i0 as f64) as f32;
            (i0, i1, l)
        })
        .collect()
}

/// Bilinear resize of every channel of every image to `oh x ow`, with PyTorch's
/// `F.interpolate(mode="bilinear", align_corners=False, antialias=False)` semantics.
/// Computed in f32 as PyTorch's CPU kernel does (results agree to about 1e-7).
pub fn resize_bilinear(set: &ImageSet, oh: usize, ow: usize) -> ImageSet {
    let ys = axis_weights(set.h, oh);
    let xs = axis_weights(set.w, ow);
    let planes = set.n * set.channels;
    let mut data = Vec::with_capacity(planes * oh * ow);
    for p in 0..planes {
        let src = &set.data[p * set.h * set.w..(p + 1) * set.h * set.w];
        let at = |y: usize, x: usize| src[y * set.w + x];
        for &(y0, y1, ly) in &ys {
            for &(x0, x1, lx) in &xs {
                let top = (1.0 - lx) * at(y0, x0) + lx * at(y0, x1);
                let bot = (1.0 - lx) * at(y1, x0) + lx * at(y1, x1);
                data.push((1.0 - ly) * top + ly * bot);
            }
        }
    }
    ImageSet::new(set.n, set.channels, oh, ow, data)
}

/// Zero-pads every image, centred, to `side x side` (extra odd pixel at the bottom/right).
pub fn pad_to(set: &ImageSet, side: usize) -> Result<ImageSet, DataError> {
    if set.h > side || set.w > side {
        return Err(DataError::invalid(
            "resize",
            format!(
                "cannot zero-pad {}x{} images to {side}x{side}; use a bilinear resize instead",
                set.h, set.w
            ),
        ));
    }
    let (top, left) = ((side - set.h) / 2, (side - set.w) / 2);
    let planes = set.n * set.channels;
    let mut data = vec![0f32; planes * side * side];
    for p in 0..planes {
        for y in 0..set.h {
            let s = p * set.h * set.w + y * set.w;
            let d = p * side * side + (y + top) * side + left;
            data[d..d + set.w].copy_from_slice(&set.data[s..s + set.w]);
        }
    }
    Ok(ImageSet::new(set.n, set.channels, side, side, data))
}

/// A uniform integer in `0..n` (`n > 0`) from 64-bit words, by Lemire's multiply-and-reject
/// method: exact, and fixed by this code rather than by the `rand` version.
pub fn uniform_below(rng: &mut impl RngCore, n: u64) -> u64 {
    assert!(n > 0, "uniform_below(0)");
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = rng.next_u64() as u128 * n as u128;
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

/// `n` distinct indices out of `0..total`, chosen uniformly by a partial Fisher–Yates shuffle
/// driven by `ChaCha8Rng::seed_from_u64(seed)`; returned in the order drawn (so a prefix is itself
/// a uniform subset). Errors when `n > total`, naming both numbers.
pub fn subset_indices(total: usize, n: usize, seed: u64) -> Result<Vec<usize>, DataError> {
    if n > total {
        return Err(DataError::TooFew {
            what: "subset".into(),
            requested: n,
            available: total,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut perm: Vec<usize> = (0..total).collect();
    for i in 0..n {
        let j = i + uniform_below(&mut rng, (total - i) as u64) as usize;
        perm.swap(i, j);
    }
    perm.truncate(n);
    Ok(perm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(h: usize, w: usize, data: Vec<f32>) -> ImageSet {
        ImageSet::new(1, 1, h, w, data)
    }

    /// Goldens computed independently with Python's gzip module from the repository files:
    /// the byte sum of all pixels, of the first digit, the first ten labels, and the label
    /// counts given in data/mnist/README.md.
    #[test]
    fn shipped_subset_is_embedded_whole() {
        let set = shipped_images();
        assert_eq!((set.n, set.channels, set.h, set.w), (10_000, 1, 28, 28));
        let bytes = |v: &[f32]| v.iter().map(|&x| (x * 255.0).round() as u64).sum::<u64>();
        assert_eq!(bytes(&set.data), 262_146_600);
        assert_eq!(bytes(&set.data[..784]), 17_886);
        let labels = shipped_labels();
        assert_eq!(labels[..10], [2, 9, 7, 7, 8, 5, 9, 1, 9, 5]);
        let mut counts = [0usize; 10];
        labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(
            counts,
            [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
        );
        assert!(SHIPPED_ABOUT.contains("CC BY-SA 3.0"));
        // The shipped name, its repository path (also with ./) and the file itself: one set.
        for name in [
            SHIPPED,
            SHIPPED_IMAGES,
            "./data/mnist/mnist-10k-images-idx3-ubyte.gz",
        ] {
            assert_eq!(load_images(Path::new(name)).unwrap(), set, "{name}");
        }
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(SHIPPED_IMAGES);
        assert_eq!(load_images(&file).unwrap(), set);
        assert_eq!(crate::read_images_any(Path::new(SHIPPED)).unwrap(), set);
        assert_eq!(load_labels(Path::new(SHIPPED_LABELS)).unwrap(), labels);
    }

    #[test]
    fn locate_prefers_file_then_dir_then_env_then_shipped() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        // a holds the plain training file, b the gzipped one (looked for first) and the plain.
        std::fs::write(a.join("train-images-idx3-ubyte"), b"x").unwrap();
        std::fs::write(b.join("train-images-idx3-ubyte"), b"x").unwrap();
        std::fs::write(b.join("train-images-idx3-ubyte.gz"), b"x").unwrap();
        let f = a.join("train-images-idx3-ubyte");
        let env = Some(OsString::from(b.as_os_str()));
        assert_eq!(locate_with(Some(&f), Some(&b), env.clone()).unwrap(), f);
        assert_eq!(locate_with(None, Some(&a), env.clone()).unwrap(), f);
        assert_eq!(
            locate_with(None, None, env).unwrap(),
            b.join("train-images-idx3-ubyte.gz")
        );
        let shipped = PathBuf::from(SHIPPED);
        assert_eq!(locate_with(None, None, None).unwrap(), shipped);
        assert_eq!(locate_with(None, None, Some("".into())).unwrap(), shipped);
        let legacy = Path::new(SHIPPED_IMAGES);
        assert_eq!(locate_with(Some(legacy), Some(&a), None).unwrap(), shipped);
        // A relative file becomes absolute (relative to the working folder).
        let rel = Path::new("Cargo.toml");
        let got = locate_with(Some(rel), None, None).unwrap();
        assert!(got.is_absolute() && got.ends_with("Cargo.toml"), "{got:?}");
        // Errors name the flag or variable and the path.
        let e = locate_with(None, Some(&tmp.path().join("none")), None).unwrap_err();
        assert!(
            e.to_string().contains("--mnist-dir") && e.to_string().contains("none"),
            "{e}"
        );
        let e = locate_with(None, None, Some(tmp.path().into())).unwrap_err();
        assert!(
            e.to_string().contains("$MEMDIFF_MNIST_DIR")
                && e.to_string().contains("train-images-idx3-ubyte.gz"),
            "{e}"
        );
        let e = locate_with(Some(&a.join("missing.gz")), None, None).unwrap_err();
        assert!(e.to_string().contains("missing.gz"), "{e}");
    }

    #[test]
    fn bilinear_downscale_4_to_2_averages_centre_pairs() {
        // scale 2: src = 2o + 0.5 → o=0: between 0 and 1 at 0.5; o=1: between 2 and 3 at 0.5.
        let img = one(4, 4, (0..16).map(|v| v as f32).collect());
        let r = resize_bilinear(&img, 2, 2);
        // (rows 0,1 x cols 0,1) mean = (0+1+4+5)/4 = 2.5; etc.
        assert_eq!(r.data, vec![2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn bilinear_upscale_2_to_4_hand_values() {
        // 1-D row [0, 4] → 4: src = (o + 0.5)/2 - 0.5 = -0.25, 0.25, 0.75, 1.25
        // → clamp 0 → 0; 0.25 → 1; 0.75 → 3; 1.25 → i0 = 1, i1 = 1 → 4.
        let r = resize_bilinear(&one(1, 2, vec![0.0, 4.0]), 1, 4);
        assert_eq!(r.data, vec![0.0, 1.0, 3.0, 4.0]);
    }

    #[test]
    fn bilinear_28_to_8_and_28_to_32_weights() {
        // 28 → 8: scale 3.5, src = 3.5 o + 1.25: o=0 → 1.25 (i0=1, l=.25), o=7 → 25.75.
        let w = axis_weights(28, 8);
        assert_eq!(w[0], (1, 2, 0.25));
        assert_eq!(w[7], (25, 26, 0.75));
        // 28 → 32: scale 0.875, src = 0.875 o - 0.0625: o=0 → clamp 0; o=31 → 27.0625
        // (i0 = 27, i1 clamped to 27).
        let w = axis_weights(28, 32);
        assert_eq!(w[0], (0, 1, 0.0));
        assert_eq!((w[31].0, w[31].1), (27, 27));
        assert!((w[31].2 - 0.0625).abs() < 1e-6);
        // A ramp v = x is reproduced exactly where no clamping happens.
        let ramp = one(1, 28, (0..28).map(|v| v as f32).collect());
        let r = resize_bilinear(&ramp, 1, 8);
        let want: Vec<f32> = (0..8).map(|o| 3.5 * o as f32 + 1.25).collect();
        assert_eq!(r.data, want);
    }

    #[test]
    fn bilinear_2d_hand_value() {
        // 3x3 → 2x2: scale 1.5, src = 1.5 o + 0.25 → (0, 1, .25) and (1.75: 1, 2, .75).
        let img = one(3, 3, vec![0., 1., 2., 3., 4., 5., 6., 7., 8.]);
        let r = resize_bilinear(&img, 2, 2);
        // value = 3 y + x at (y, x) = (0.25, 0.25) → 1.0; (0.25, 1.75) → 2.5; (1.75, .25) → 5.5.
        let want = [1.0, 2.5, 5.5, 7.0];
        for (a, b) in r.data.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{:?}", r.data);
        }
    }

    /// Goldens from PyTorch 2.15 (CPU, float32): `F.interpolate(x, size=(px, px),
    /// mode="bilinear", align_corners=False, antialias=False)` of the 28 x 28 pattern below.
    #[test]
    fn bilinear_matches_pytorch_goldens() {
        let pattern: Vec<f32> = (0..28 * 28)
            .map(|k| {
                let (y, x) = (k / 28, k % 28);
                ((7 * y + 3 * x + (x * y) % 5) % 11) as f32 / 10.0
            })
            .collect();
        let img = one(28, 28, pattern);
        let want8 = [
            0.2375, 0.19375, 0.2625, 0.425, 0.6, 0.45, 0.71875, 0.71875, 0.49375, 0.63125, 0.55,
            0.4, 0.43125, 0.45625, 0.375, 0.19375, 0.65625, 0.4375, 0.58125, 0.41875, 0.4625,
            0.4125, 0.275, 0.54375, 0.29375, 0.10625, 0.7875, 0.4375, 0.5375, 0.3125, 0.075, 0.75,
            0.7, 0.85, 0.58125, 0.76875, 0.68125, 0.71875, 0.63125, 0.54375, 0.64375, 0.55625,
            0.41875, 0.70625, 0.4, 0.48125, 0.45625, 0.7125, 0.525, 0.3625, 0.375, 0.49375, 0.3375,
            0.34375, 0.46875, 0.36875, 0.6875, 0.61875, 0.11875, 0.23125, 0.4125, 0.28125, 0.66875,
            0.575,
        ];
        let r8 = resize_bilinear(&img, 8, 8);
        for (k, (a, b)) in r8.data.iter().zip(want8).enumerate() {
            assert!((a - b).abs() < 1e-6, "px 8, pixel {k}: {a} vs {b}");
        }
        // px 16 and 32: the sums and a few pixels.
        let r16 = resize_bilinear(&img, 16, 16);
        let sum16: f64 = r16.data.iter().map(|&v| v as f64).sum();
        assert!((sum16 - 127.775).abs() < 1e-4, "{sum16}");
        for (k, b) in [(0, 0.234375), (1, 0.567188), (2, 0.195312), (255, 0.64375)] {
            assert!((r16.data[k] - b).abs() < 1e-6, "px 16, pixel {k}");
        }
        let r32 = resize_bilinear(&img, 32, 32);
        let sum32: f64 = r32.data.iter().map(|&v| v as f64).sum();
        assert!((sum32 - 509.98398).abs() < 1e-3, "{sum32}");
        for (k, b) in [
            (1, 0.24375),
            (4, 0.55),
            (8, 0.98125),
            (1021, 0.15625),
            (1023, 1.0),
        ] {
            assert!((r32.data[k] - b).abs() < 1e-6, "px 32, pixel {k}");
        }
    }

    #[test]
    fn pad_centres_and_zero_fills() {
        let img = one(28, 28, vec![1.0; 784]);
        let p = pad_to(&img, 32).unwrap();
        assert_eq!((p.h, p.w), (32, 32));
        assert_eq!(p.data.iter().sum::<f32>(), 784.0);
        assert_eq!(p.data[2 * 32 + 2], 1.0);
        assert_eq!(p.data[2 * 32 + 1], 0.0);
        assert_eq!(p.data[29 * 32 + 29], 1.0);
        assert_eq!(p.data[30 * 32 + 29], 0.0);
        assert!(pad_to(&one(33, 1, vec![0.0; 33]), 32).is_err());
    }

    #[test]
    fn subset_is_distinct_seeded_and_bounded() {
        let a = subset_indices(100, 30, 7).unwrap();
        assert_eq!(a, subset_indices(100, 30, 7).unwrap());
        assert_ne!(a, subset_indices(100, 30, 8).unwrap());
        let mut s = a.clone();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), 30);
        assert!(s.iter().all(|&i| i < 100));
        // A prefix of a longer draw with the same seed is the shorter draw.
        assert_eq!(subset_indices(100, 10, 7).unwrap(), a[..10]);
        let e = subset_indices(10, 11, 1).unwrap_err();
        assert!(
            e.to_string().contains("11") && e.to_string().contains("10"),
            "{e}"
        );
    }

    #[test]
    fn subset_is_uniform() {
        // Each index should be picked with probability n / total = 0.3: over 4000 draws the
        // count per index is Binomial(4000, 0.3): mean 1200, sd ≈ 29. 5 sd bounds.
        let mut counts = [0usize; 10];
        for seed in 0..4000 {
            for i in subset_indices(10, 3, seed).unwrap() {
                counts[i] += 1;
            }
        }
        for c in counts {
            assert!((1055..=1345).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn uniform_below_is_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in [1u64, 2, 3, 7, 1 << 40, u64::MAX] {
            for _ in 0..100 {
                assert!(uniform_below(&mut rng, n) < n);
            }
        }
    }
}
