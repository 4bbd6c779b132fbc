//! Reading your own images: one loader ([`read_source`]) for a folder of PNG / JPEG files, a
//! `.npz` archive, a `.npy` array and an IDX file (gzipped or not), with the options of
//! [`ReadOptions`]: the array layout, the `.npz` member, recursion into subfolders, and an
//! explicit fit to `px x px`.
//!
//! - **Folders**: files ending in `.png`, `.jpg` or `.jpeg` (any case), sorted by their path
//!   relative to the folder (byte order); names starting with `.` are skipped, and so are
//!   subfolders unless `recursive` (links to folders always). 8-bit pixels are `byte / 255`, 16-bit `value / 65535`;
//!   greyscale files give 1 channel, RGB files 3. An alpha channel must be fully opaque (it is
//!   then dropped). Every image must have the size and channel count of the first, unless a fit
//!   brings each to `px x px`.
//! - **Arrays** (`.npy`, `.npz`, IDX): `(n, d)`, `(n, h, w)`, `(n, c, h, w)` or `(n, h, w, c)`,
//!   uint8 (`/ 255`) or float. A rank-4 shape's layout is [`Layout::Nchw`] / [`Layout::Nhwc`]
//!   when given, else inferred only where one side alone has 1 or 3 entries:
//!   `(n, 3, 32, 32)` is NCHW, `(n, 32, 32, 3)` NHWC, `(n, 3, 8, 3)` or `(n, 4, 8, 8)` an error
//!   that names the layout flag. A `.npz` gives its member `array`, else `arr_0`, else its only
//!   array.
//! - **Fit** ([`Fit`]): `resize` scales every image to `px x px` (aspect not kept); `crop` takes
//!   the centred square of side `min(h, w)` and scales it to `px x px`. The filter is the `image`
//!   crate's `Triangle` (bilinear, widened by the scale factor when shrinking, so that it
//!   averages rather than aliases: PIL's `Image.resize(..., BILINEAR)` convention), per channel
//!   in f32; values are clamped to [0, 1]. Without a fit, a given `px` must be the images' size.
//! - **Content hash** ([`Source::hash`]): SHA-256 of the bytes read, in reading order (for a
//!   folder each file's relative path, its length and its bytes), written `sha256:<hex>`. A
//!   recipe records it, so that a changed source is refused rather than silently rebuilt.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{DataError, ImageSet, Pixel};

/// The first bytes of a zip archive (an `.npz`).
pub const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// The order of the axes of a rank-4 array.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `(n, c, h, w)` or `(n, h, w, c)`, whichever alone has c in {1, 3}; else an error.
    #[default]
    Auto,
    /// `(n, c, h, w)` (PyTorch's).
    Nchw,
    /// `(n, h, w, c)` (TensorFlow's, numpy image stacks, the FID tools' `.npz`).
    Nhwc,
}

impl std::str::FromStr for Layout {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        match s {
            "auto" => Ok(Layout::Auto),
            "nchw" => Ok(Layout::Nchw),
            "nhwc" => Ok(Layout::Nhwc),
            _ => Err(DataError::invalid(
                format!("layout {s:?}"),
                "use auto, nchw or nhwc",
            )),
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Auto => "auto",
            Layout::Nchw => "nchw",
            Layout::Nhwc => "nhwc",
        })
    }
}

/// How images are brought to `px x px` (see the module documentation for the filter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// No change: the images must already be `px x px` when `px` is given.
    #[default]
    None,
    /// Scale the whole image to `px x px` (triangle filter).
    Resize,
    /// Centre-crop to a square, then scale it to `px x px` (triangle filter).
    Crop,
}

impl std::str::FromStr for Fit {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        match s {
            "none" => Ok(Fit::None),
            "resize" => Ok(Fit::Resize),
            "crop" => Ok(Fit::Crop),
            _ => Err(DataError::invalid(
                format!("fit {s:?}"),
                "use none, resize or crop",
            )),
        }
    }
}

impl std::fmt::Display for Fit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fit::None => "none",
            Fit::Resize => "resize",
            Fit::Crop => "crop",
        })
    }
}

/// How a source is read. All defaults: infer the layout, `arr_0`, no recursion, no fit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadOptions {
    /// Layout of a rank-4 array (`--layout`).
    pub layout: Layout,
    /// Member of a `.npz` (`--npz-array`); default `arr_0`, else the only array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub array: Option<String>,
    /// Read the subfolders of a folder too (`--recursive`).
    pub recursive: bool,
    /// Bring every image to `px x px` (`--fit`).
    pub fit: Fit,
    /// The side the images must have (checked, or made by `fit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub px: Option<usize>,
}

/// A set read from a source, with the hash of what was read.
#[derive(Clone, Debug, PartialEq)]
pub struct Source<V = f32> {
    pub set: ImageSet<V>,
    /// `sha256:<hex>` of the bytes read (module documentation).
    pub hash: String,
    /// Number of files read (1 for an array file).
    pub files: usize,
}

/// Reads a folder, `.npz`, `.npy` or IDX file (decided by what `path` is and by the content's
/// first bytes, not by the name) with `opts`.
pub fn read_source(path: &Path, opts: &ReadOptions) -> Result<Source, DataError> {
    read_source_as(path, opts)
}

/// [`read_source`] into values of type `V` (float64 arrays keep their values in `f64`).
pub fn read_source_as<V: Pixel>(path: &Path, opts: &ReadOptions) -> Result<Source<V>, DataError> {
    if opts.fit != Fit::None && opts.px.is_none() {
        return Err(DataError::invalid(
            format!("fit {}", opts.fit),
            "needs the side to bring the images to (--px P; px = P in a config)",
        ));
    }
    if let Some(px) = opts.px {
        crate::check_side(px)?;
    }
    if crate::mnist::is_shipped(path) {
        let s = crate::mnist::shipped_images();
        let set = finish(path, s, opts)?;
        return Ok(Source {
            set: set.map(V::from_f32),
            hash: hash_parts([("", crate::mnist::SHIPPED_IMAGES_GZ)]),
            files: 1,
        });
    }
    let meta = std::fs::metadata(path).map_err(|e| DataError::read(path, e))?;
    if meta.is_dir() {
        let (set, hash, files) = read_folder(path, opts)?;
        return Ok(Source {
            set: set.map(V::from_f32),
            hash,
            files,
        });
    }
    let raw = std::fs::read(path).map_err(|e| DataError::read(path, e))?;
    let hash = hash_parts([("", raw.as_slice())]);
    let set: ImageSet<V> = parse_array_file(path, &raw, opts)?;
    let set = if opts.fit == Fit::None {
        check_px(path, &set, opts)?;
        set
    } else {
        let f = set.map(|v| Into::<f64>::into(v) as f32);
        finish(path, f, opts)?.map(V::from_f32)
    };
    Ok(Source {
        set,
        hash,
        files: 1,
    })
}

/// An array file's bytes (npz, npy, gzip, IDX) as images, with `opts.layout` and `opts.array`.
fn parse_array_file<V: Pixel>(
    path: &Path,
    raw: &[u8],
    opts: &ReadOptions,
) -> Result<ImageSet<V>, DataError> {
    if raw.starts_with(ZIP_MAGIC) {
        let (name, bytes) = npz_member(path, raw, opts.array.as_deref())?;
        if !bytes.starts_with(crate::npy::NPY_MAGIC) {
            return Err(DataError::Npz {
                path: path.to_path_buf(),
                detail: format!("member {name} is not a .npy array"),
            });
        }
        return crate::npy::parse_images_layout(path, &bytes, opts.layout);
    }
    if let Some(a) = &opts.array {
        return Err(DataError::invalid(
            format!("array {a:?}"),
            format!(
                "{} is not a .npz archive (drop the array name)",
                path.display()
            ),
        ));
    }
    let bytes = crate::idx::gunzip_if_gzip(path, raw)?;
    if bytes.starts_with(crate::npy::NPY_MAGIC) {
        return crate::npy::parse_images_layout(path, &bytes, opts.layout);
    }
    if bytes.len() >= 2 && bytes[0] == 0 && bytes[1] == 0 {
        let arr = crate::idx::parse_idx(path, &bytes)?;
        return crate::idx::idx_to_images_layout(path, &arr, opts.layout);
    }
    Err(DataError::UnknownFormat {
        path: path.to_path_buf(),
        magic: crate::error::hex4(&bytes),
    })
}

/// The member of an `.npz` to read: `want`, else `arr_0`, else the only `.npy` in it.
fn npz_member(path: &Path, raw: &[u8], want: Option<&str>) -> Result<(String, Vec<u8>), DataError> {
    let bad = |detail: String| DataError::Npz {
        path: path.to_path_buf(),
        detail,
    };
    let mut zip =
        zip::ZipArchive::new(Cursor::new(raw)).map_err(|e| bad(format!("not a valid zip: {e}")))?;
    let arrays: Vec<String> = zip
        .file_names()
        .filter_map(npyz::npz::array_name_from_file_name)
        .map(str::to_string)
        .collect();
    let name = match want {
        Some(w) if arrays.iter().any(|a| a == w) => w.to_string(),
        Some(w) => {
            return Err(bad(format!(
                "no array {w:?} in it (it holds {arrays:?}); pass one of these names"
            )))
        }
        None if arrays.iter().any(|a| a == "arr_0") => "arr_0".to_string(),
        None if arrays.len() == 1 => arrays[0].clone(),
        None if arrays.is_empty() => return Err(bad("it holds no arrays".into())),
        None => {
            return Err(bad(format!(
                "it holds {arrays:?} and no arr_0: name the array with --npz-array NAME (array = \"NAME\" in a config)"
            )))
        }
    };
    let mut f = zip
        .by_name(&npyz::npz::file_name_from_array_name(&name))
        .map_err(|e| bad(format!("array {name}: {e}")))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .map_err(|e| bad(format!("array {name}: {e}")))?;
    Ok((name, bytes))
}

/// SHA-256 of `(name, bytes)` parts, each as name, 0, length (u64 LE), bytes.
fn hash_parts<'a>(parts: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = Sha256::new();
    for (name, bytes) in parts {
        h.update(name.as_bytes());
        h.update([0u8]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    let d = h.finalize();
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Whether a file name is an image this loader reads (by extension, any case).
fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".png") || lower.ends_with(".jpg") || lower.ends_with(".jpeg")
}

/// The image files of `dir` (recursively when asked), as (relative name, path), sorted by name;
/// also whether a subfolder was skipped.
fn list_folder(dir: &Path, recursive: bool) -> Result<(Vec<(String, PathBuf)>, bool), DataError> {
    let mut out = Vec::new();
    let mut skipped_dir = false;
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, d)) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| DataError::read(&d, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| DataError::read(&d, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let p = entry.path();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            // Linked files are followed; linked folders are not (no loops).
            let ft = entry.file_type().map_err(|e| DataError::read(&p, e))?;
            if ft.is_dir() {
                if recursive {
                    stack.push((rel, p));
                } else {
                    skipped_dir = true;
                }
            } else if is_image_name(&name) && p.is_file() {
                out.push((rel, p));
            }
        }
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok((out, skipped_dir))
}

/// One decoded image: channels (1 or 3), h, w and planar values in [0, 1].
struct Decoded {
    c: usize,
    h: usize,
    w: usize,
    planes: Vec<f32>,
}

/// Decodes PNG / JPEG bytes; `path` names the file in errors.
fn decode_image(path: &Path, bytes: &[u8]) -> Result<Decoded, DataError> {
    use image::DynamicImage as D;
    let bad = |detail: String| DataError::Decode {
        path: path.to_path_buf(),
        detail,
    };
    let img = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?
        .decode()
        .map_err(|e| bad(e.to_string()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    // Interleaved values, channels with alpha, and the value of an opaque alpha.
    let (vals, k, has_alpha): (Vec<f32>, usize, bool) = match &img {
        D::ImageLuma8(b) => (u8s(b.as_raw()), 1, false),
        D::ImageLumaA8(b) => (u8s(b.as_raw()), 2, true),
        D::ImageRgb8(b) => (u8s(b.as_raw()), 3, false),
        D::ImageRgba8(b) => (u8s(b.as_raw()), 4, true),
        D::ImageLuma16(b) => (u16s(b.as_raw()), 1, false),
        D::ImageLumaA16(b) => (u16s(b.as_raw()), 2, true),
        D::ImageRgb16(b) => (u16s(b.as_raw()), 3, false),
        D::ImageRgba16(b) => (u16s(b.as_raw()), 4, true),
        other => {
            return Err(bad(format!(
                "unsupported pixel type {:?}; save it as 8- or 16-bit greyscale or RGB",
                other.color()
            )))
        }
    };
    let c = if has_alpha { k - 1 } else { k };
    if has_alpha && vals.chunks_exact(k).any(|p| p[k - 1] != 1.0) {
        return Err(bad(
            "it has transparent pixels; save it without an alpha channel (greyscale or RGB)".into(),
        ));
    }
    let mut planes = vec![0f32; c * h * w];
    for (i, p) in vals.chunks_exact(k).enumerate() {
        for ch in 0..c {
            planes[ch * h * w + i] = p[ch];
        }
    }
    Ok(Decoded { c, h, w, planes })
}

fn u8s(b: &[u8]) -> Vec<f32> {
    b.iter().map(|&v| v as f32 / 255.0).collect()
}

fn u16s(b: &[u16]) -> Vec<f32> {
    b.iter().map(|&v| v as f32 / 65535.0).collect()
}

/// Reads every image of a folder: the set (before any fit of the whole), hash, file count.
fn read_folder(dir: &Path, opts: &ReadOptions) -> Result<(ImageSet, String, usize), DataError> {
    if opts.array.is_some() {
        return Err(DataError::invalid(
            "array",
            format!("{} is a folder, not a .npz archive", dir.display()),
        ));
    }
    let (files, skipped_dir) = list_folder(dir, opts.recursive)?;
    if files.is_empty() {
        let hint = if skipped_dir {
            "; it has subfolders: add --recursive (recursive = true in a config) to read them"
        } else {
            ""
        };
        return Err(DataError::Folder {
            path: dir.to_path_buf(),
            detail: format!("no .png, .jpg or .jpeg files in it{hint}"),
        });
    }
    // Read and decode in parallel (in order); the first error in name order is reported.
    use rayon::prelude::*;
    let decoded: Vec<Result<(Vec<u8>, Decoded), DataError>> = files
        .par_iter()
        .map(|(_, p)| {
            let bytes = std::fs::read(p).map_err(|e| DataError::read(p, e))?;
            let img = decode_image(p, &bytes)?;
            Ok((bytes, fit_one(img, opts)))
        })
        .collect();
    let mut hasher_parts: Vec<(String, Vec<u8>)> = Vec::with_capacity(files.len());
    let mut data: Vec<f32> = Vec::new();
    let mut shape: Option<(usize, usize, usize, PathBuf)> = None;
    for ((rel, p), r) in files.iter().zip(decoded) {
        let (bytes, img) = r?;
        match &shape {
            None => shape = Some((img.c, img.h, img.w, p.clone())),
            Some((c, h, w, first)) => {
                if img.c != *c {
                    return Err(DataError::Folder {
                        path: p.clone(),
                        detail: format!(
                            "{} channel(s) but {} has {c}; every image of a folder must be greyscale, or every one RGB",
                            img.c,
                            first.display()
                        ),
                    });
                }
                if (img.h, img.w) != (*h, *w) {
                    return Err(DataError::Folder {
                        path: p.clone(),
                        detail: format!(
                            "{}x{} pixels (w x h) but {} is {w}x{h}; give images of one size, or bring them to one side with --px P --fit resize|crop",
                            img.w,
                            img.h,
                            first.display()
                        ),
                    });
                }
            }
        }
        data.extend_from_slice(&img.planes);
        hasher_parts.push((rel.clone(), bytes));
    }
    let (c, h, w, _) = shape.expect("at least one file");
    let set = ImageSet::new(files.len(), c, h, w, data);
    check_px(dir, &set, opts)?;
    let hash = hash_parts(hasher_parts.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    Ok((set, hash, files.len()))
}

/// A fit applied to one decoded image (identity without a fit).
fn fit_one(img: Decoded, opts: &ReadOptions) -> Decoded {
    let (Some(px), fit) = (opts.px, opts.fit) else {
        return img;
    };
    if fit == Fit::None {
        return img;
    }
    let planes = fit_planes(&img.planes, img.c, img.h, img.w, fit, px);
    Decoded {
        c: img.c,
        h: px,
        w: px,
        planes,
    }
}

/// The fit of every image of a set (arrays) and the px check.
fn finish(path: &Path, set: ImageSet, opts: &ReadOptions) -> Result<ImageSet, DataError> {
    let set = match (opts.fit, opts.px) {
        (Fit::None, _) | (_, None) => set,
        (fit, Some(px)) => {
            let mut data = Vec::with_capacity(set.n * set.channels * px * px);
            for i in 0..set.n {
                data.extend(fit_planes(set.row(i), set.channels, set.h, set.w, fit, px));
            }
            ImageSet::new(set.n, set.channels, px, px, data)
        }
    };
    check_px(path, &set, opts)?;
    Ok(set)
}

/// Errors when `px` is given and the images are not `px x px`.
fn check_px<V>(path: &Path, set: &ImageSet<V>, opts: &ReadOptions) -> Result<(), DataError> {
    match opts.px {
        Some(px) if (set.h, set.w) != (px, px) => Err(DataError::Folder {
            path: path.to_path_buf(),
            detail: format!(
                "the images are {}x{} (h x w), not {px}x{px}; bring them to {px}x{px} with --fit resize or --fit crop (fit = \"resize\" | \"crop\" in a config), or give their own side",
                set.h, set.w
            ),
        }),
        _ => Ok(()),
    }
}

/// `c` planes of `h x w` fitted to `px x px`.
fn fit_planes(planes: &[f32], c: usize, h: usize, w: usize, fit: Fit, px: usize) -> Vec<f32> {
    let (top, left, sh, sw) = match fit {
        Fit::Crop => {
            let s = h.min(w);
            ((h - s) / 2, (w - s) / 2, s, s)
        }
        _ => (0, 0, h, w),
    };
    let mut out = Vec::with_capacity(c * px * px);
    for ch in 0..c {
        let plane = &planes[ch * h * w..(ch + 1) * h * w];
        let mut cut = Vec::with_capacity(sh * sw);
        for y in top..top + sh {
            cut.extend_from_slice(&plane[y * w + left..y * w + left + sw]);
        }
        if (sh, sw) == (px, px) {
            out.extend(cut);
            continue;
        }
        let buf =
            image::ImageBuffer::<image::Luma<f32>, Vec<f32>>::from_raw(sw as u32, sh as u32, cut)
                .expect("plane size matches");
        let r = image::imageops::resize(
            &buf,
            px as u32,
            px as u32,
            image::imageops::FilterType::Triangle,
        );
        out.extend(r.into_raw().into_iter().map(|v| v.clamp(0.0, 1.0)));
    }
    out
}

/// `(n, c, h, w)` and whether the data is stored channel-last.
pub(crate) type Nchw = ((usize, usize, usize, usize), bool);

/// Interprets a rank-4 shape `(n, a, b, d)` with `layout`: `(n, c, h, w)` and whether the data
/// is channel-last. Errors name the layout flag.
pub(crate) fn rank4_layout(
    path: &Path,
    dims: [usize; 4],
    layout: Layout,
) -> Result<Nchw, DataError> {
    let [n, a, b, d] = dims;
    let is_c = |x: usize| x == 1 || x == 3;
    match layout {
        Layout::Nchw => Ok(((n, a, b, d), false)),
        Layout::Nhwc => Ok(((n, d, a, b), true)),
        Layout::Auto => match (is_c(a), is_c(d)) {
            (true, false) => Ok(((n, a, b, d), false)),
            (false, true) => Ok(((n, d, a, b), true)),
            _ if a == 1 && b == 1 && d == 1 => Ok(((n, 1, 1, 1), false)),
            (both, _) => Err(DataError::Layout {
                path: path.to_path_buf(),
                shape: dims.iter().map(|&x| x as u64).collect(),
                detail: if both {
                    format!("both axis 1 ({a}) and axis 3 ({d}) could be the channels")
                } else {
                    format!("neither axis 1 ({a}) nor axis 3 ({d}) has 1 or 3 channels")
                },
            }),
        },
    }
}

/// Reorders channel-last `(n, h, w, c)` data into `(n, c, h, w)`.
pub(crate) fn nhwc_to_nchw<V: Copy>(src: &[V], n: usize, c: usize, h: usize, w: usize) -> Vec<V> {
    let mut out = Vec::with_capacity(src.len());
    let plane = h * w;
    for i in 0..n {
        let img = &src[i * c * plane..(i + 1) * c * plane];
        for ch in 0..c {
            out.extend((0..plane).map(|p| img[p * c + ch]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export;
    use npyz::WriterBuilder;

    /// n images of c channels, `h x w`, with distinct byte values.
    fn bytes_set(n: usize, c: usize, h: usize, w: usize) -> ImageSet {
        ImageSet::new(
            n,
            c,
            h,
            w,
            (0..n * c * h * w)
                .map(|i| ((i * 37 + 11) % 256) as f32 / 255.0)
                .collect(),
        )
    }

    fn opts() -> ReadOptions {
        ReadOptions::default()
    }

    /// A .npy of u8 values in the given shape (C order).
    fn npy_u8(shape: &[u64], data: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = npyz::WriteOptions::<u8>::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut buf)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
        buf
    }

    /// NHWC bytes of a set.
    fn nhwc_bytes(s: &ImageSet) -> Vec<u8> {
        let b = crate::idx::to_u8(&s.data);
        let plane = s.h * s.w;
        let mut out = Vec::new();
        for i in 0..s.n {
            for p in 0..plane {
                for ch in 0..s.channels {
                    out.push(b[i * s.dim() + ch * plane + p]);
                }
            }
        }
        out
    }

    #[test]
    fn folder_npz_npy_nchw_nhwc_give_one_set() {
        let dir = tempfile::tempdir().unwrap();
        for c in [1usize, 3] {
            let set = bytes_set(5, c, 8, 6);
            let sub = dir.path().join(format!("png{c}"));
            export::write_png_dir(&sub, &set).unwrap();
            let from_png = read_source(&sub, &opts()).unwrap();
            assert_eq!(from_png.set, set, "c = {c}");
            assert_eq!(from_png.files, 5);
            let b = crate::idx::to_u8(&set.data);
            let nchw = dir.path().join(format!("a{c}.npy"));
            std::fs::write(&nchw, npy_u8(&[5, c as u64, 8, 6], &b)).unwrap();
            assert_eq!(read_source(&nchw, &opts()).unwrap().set, set);
            let nhwc = dir.path().join(format!("b{c}.npy"));
            std::fs::write(&nhwc, npy_u8(&[5, 8, 6, c as u64], &nhwc_bytes(&set))).unwrap();
            assert_eq!(read_source(&nhwc, &opts()).unwrap().set, set);
            let npz = dir.path().join(format!("s{c}.npz"));
            export::write_npz(&npz, &set).unwrap();
            assert_eq!(read_source(&npz, &opts()).unwrap().set, set);
            // The .npz holds arr_0 as (n, h, w, c) u8, as the FID tools expect.
            let raw = std::fs::read(&npz).unwrap();
            let (name, member) = npz_member(&npz, &raw, None).unwrap();
            assert_eq!(name, "arr_0");
            let f = npyz::NpyFile::new(&member[..]).unwrap();
            assert_eq!(f.shape(), &[5, 8, 6, c as u64]);
            assert_eq!(f.dtype().descr(), "'|u1'");
            assert_eq!(f.into_vec::<u8>().unwrap(), nhwc_bytes(&set));
        }
    }

    #[test]
    fn channel_last_32x32x3_is_read_as_rgb_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let set = bytes_set(2, 3, 32, 32);
        let f = dir.path().join("cl.npy");
        std::fs::write(&f, npy_u8(&[2, 32, 32, 3], &nhwc_bytes(&set))).unwrap();
        let got = read_source(&f, &opts()).unwrap().set;
        assert_eq!((got.channels, got.h, got.w), (3, 32, 32));
        assert_eq!(got, set);
        // The flag overrides: read as NCHW it is 32 channels of 32 x 3, as asked.
        let o = ReadOptions {
            layout: Layout::Nchw,
            ..opts()
        };
        let as_nchw = read_source(&f, &o).unwrap().set;
        assert_eq!((as_nchw.channels, as_nchw.h, as_nchw.w), (32, 32, 3));
        // Ambiguous and unknowable shapes are refused with the flag named.
        for shape in [[2u64, 3, 32, 3], [2, 4, 8, 8], [2, 1, 8, 3]] {
            let g = dir.path().join("amb.npy");
            let n: u64 = shape.iter().product();
            std::fs::write(&g, npy_u8(&shape, &vec![0; n as usize])).unwrap();
            let e = read_source(&g, &opts()).unwrap_err().to_string();
            assert!(
                e.contains("--layout nchw") && e.contains("--layout nhwc") && e.contains("amb.npy"),
                "{e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn npz_members_by_name_or_arr_0() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("two.npz");
        let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let fo = zip::write::FileOptions::default();
        for (name, v) in [("x", 10u8), ("y", 20u8)] {
            zw.start_file(format!("{name}.npy"), fo).unwrap();
            std::io::Write::write_all(&mut zw, &npy_u8(&[2, 2, 2], &[v; 8])).unwrap();
        }
        std::fs::write(&f, zw.finish().unwrap().into_inner()).unwrap();
        let e = read_source(&f, &opts()).unwrap_err().to_string();
        assert!(e.contains("--npz-array") && e.contains("\"x\""), "{e}");
        let o = ReadOptions {
            array: Some("y".into()),
            ..opts()
        };
        assert_eq!(read_source(&f, &o).unwrap().set.data[0], 20.0 / 255.0);
        let o = ReadOptions {
            array: Some("z".into()),
            ..opts()
        };
        let e = read_source(&f, &o).unwrap_err().to_string();
        assert!(e.contains("no array \"z\"") && e.contains("two.npz"), "{e}");
    }

    #[test]
    fn folder_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        // Empty folder; a folder whose images are in a subfolder.
        let e = read_source(p, &opts()).unwrap_err().to_string();
        assert!(e.contains("no .png, .jpg or .jpeg"), "{e}");
        export::write_png_dir(&p.join("sub"), &bytes_set(2, 1, 8, 8)).unwrap();
        let e = read_source(p, &opts()).unwrap_err().to_string();
        assert!(e.contains("--recursive"), "{e}");
        let o = ReadOptions {
            recursive: true,
            ..opts()
        };
        assert_eq!(read_source(p, &o).unwrap().set.n, 2);
        // Mismatched size, names both files.
        let d = p.join("mix");
        export::write_png_dir(&d, &bytes_set(2, 1, 8, 8)).unwrap();
        let other = p.join("other");
        export::write_png_dir(&other, &bytes_set(1, 1, 8, 16)).unwrap();
        std::fs::copy(other.join("00000.png"), d.join("z.png")).unwrap();
        let e = read_source(&d, &opts()).unwrap_err().to_string();
        assert!(
            e.contains("z.png") && e.contains("00000.png") && e.contains("--fit"),
            "{e}"
        );
        // With a fit the sizes may differ.
        let o = ReadOptions {
            px: Some(8),
            fit: Fit::Crop,
            ..opts()
        };
        let s = read_source(&d, &o).unwrap().set;
        assert_eq!((s.n, s.h, s.w), (3, 8, 8));
        // Mixed channel counts.
        std::fs::remove_file(d.join("z.png")).unwrap();
        let rgb = p.join("rgb");
        export::write_png_dir(&rgb, &bytes_set(1, 3, 8, 8)).unwrap();
        std::fs::copy(rgb.join("00000.png"), d.join("y.png")).unwrap();
        let e = read_source(&d, &opts()).unwrap_err().to_string();
        assert!(e.contains("y.png") && e.contains("channel"), "{e}");
        // An unreadable file.
        std::fs::write(d.join("y.png"), b"not a png").unwrap();
        let e = read_source(&d, &opts()).unwrap_err().to_string();
        assert!(e.contains("y.png") && e.contains("cannot decode"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn folder_is_sorted_by_name_and_skips_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let set = bytes_set(3, 1, 8, 8);
        let src = dir.path().join("src");
        export::write_png_dir(&src, &set).unwrap();
        let d = dir.path().join("d");
        std::fs::create_dir(&d).unwrap();
        // Names out of creation order; a text file and a hidden file are skipped.
        std::fs::copy(src.join("00002.png"), d.join("a.png")).unwrap();
        std::fs::copy(src.join("00000.png"), d.join("c.PNG")).unwrap();
        std::fs::copy(src.join("00001.png"), d.join("b.png")).unwrap();
        std::fs::write(d.join("notes.txt"), b"x").unwrap();
        std::fs::write(d.join(".hidden.png"), b"x").unwrap();
        let got = read_source(&d, &opts()).unwrap().set;
        assert_eq!(got, set.select(&[2, 1, 0]));
    }

    #[test]
    fn fit_resize_and_crop() {
        // A 4 x 8 image: left half 0, right half 1. Crop keeps the centre 4 x 4 (cols 2..6),
        // half dark, half light; resize to 8 x 8 keeps the halves.
        let mut planes = vec![0f32; 32];
        for y in 0..4 {
            for x in 4..8 {
                planes[y * 8 + x] = 1.0;
            }
        }
        let set = ImageSet::new(1, 1, 4, 8, planes);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.npy");
        crate::npy::write_npy(&f, &set).unwrap();
        let crop = read_source(
            &f,
            &ReadOptions {
                px: Some(8),
                fit: Fit::Crop,
                ..opts()
            },
        )
        .unwrap()
        .set;
        assert_eq!((crop.h, crop.w), (8, 8));
        // Row 0 of the crop: cols 2, 3 dark, 4, 5 light, upscaled 2x: 0 0 . . . . 1 1.
        let r0 = &crop.data[..8];
        assert_eq!((r0[0], r0[7]), (0.0, 1.0), "{r0:?}");
        let mean: f32 = crop.data.iter().sum::<f32>() / 64.0;
        assert!((mean - 0.5).abs() < 1e-6, "{mean}");
        let rs = read_source(
            &f,
            &ReadOptions {
                px: Some(8),
                fit: Fit::Resize,
                ..opts()
            },
        )
        .unwrap()
        .set;
        // Width stays 8 (no change across x), height 4 → 8: every column constant.
        assert_eq!(&rs.data[..8], &[0., 0., 0., 0., 1., 1., 1., 1.]);
        assert_eq!(&rs.data[56..], &[0., 0., 0., 0., 1., 1., 1., 1.]);
        // Without a fit a wrong size names --fit.
        let e = read_source(
            &f,
            &ReadOptions {
                px: Some(8),
                ..opts()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--fit resize") && e.contains("4x8"), "{e}");
        // Downscaling averages (antialiased): a 16 x 16 checkerboard to 8 x 8 is grey.
        let cb = ImageSet::new(
            1,
            1,
            16,
            16,
            (0..256).map(|i| ((i / 16 + i % 16) % 2) as f32).collect(),
        );
        let g = dir.path().join("cb.npy");
        crate::npy::write_npy(&g, &cb).unwrap();
        let small = read_source(
            &g,
            &ReadOptions {
                px: Some(8),
                fit: Fit::Resize,
                ..opts()
            },
        )
        .unwrap()
        .set;
        for v in &small.data {
            assert!((v - 0.5).abs() < 0.15, "{:?}", small.data);
        }
    }

    #[test]
    fn hash_changes_with_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        export::write_png_dir(&d, &bytes_set(3, 3, 8, 8)).unwrap();
        let h0 = read_source(&d, &opts()).unwrap().hash;
        assert!(h0.starts_with("sha256:") && h0.len() == 7 + 64, "{h0}");
        assert_eq!(read_source(&d, &opts()).unwrap().hash, h0);
        std::fs::rename(d.join("00002.png"), d.join("00009.png")).unwrap();
        let h1 = read_source(&d, &opts()).unwrap().hash;
        assert_ne!(h1, h0, "a renamed file changes the hash");
        std::fs::remove_file(d.join("00009.png")).unwrap();
        assert_ne!(read_source(&d, &opts()).unwrap().hash, h1);
    }

    #[test]
    fn sixteen_bit_and_alpha() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.png");
        let img = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_raw(
            8,
            8,
            (0..64).map(|i| i * 1000).collect(),
        )
        .unwrap();
        img.save(&f).unwrap();
        let s = read_source(dir.path(), &opts()).unwrap().set;
        assert_eq!(s.data[1], 1000.0 / 65535.0);
        let rgba = image::RgbaImage::from_pixel(8, 8, image::Rgba([1, 2, 3, 200]));
        rgba.save(&f).unwrap();
        let e = read_source(dir.path(), &opts()).unwrap_err().to_string();
        assert!(e.contains("a.png") && e.contains("transparent"), "{e}");
        let rgba = image::RgbaImage::from_pixel(8, 8, image::Rgba([1, 2, 3, 255]));
        rgba.save(&f).unwrap();
        let s = read_source(dir.path(), &opts()).unwrap().set;
        assert_eq!(
            (s.channels, s.data[0], s.data[64]),
            (3, 1.0 / 255.0, 2.0 / 255.0)
        );
    }

    #[test]
    fn jpeg_is_read() {
        // A flat grey JPEG decodes to (about) its grey: lossy, but flat blocks are exact here.
        let dir = tempfile::tempdir().unwrap();
        let img = image::RgbImage::from_pixel(16, 16, image::Rgb([100, 150, 200]));
        img.save(dir.path().join("a.JPG")).unwrap();
        let s = read_source(dir.path(), &opts()).unwrap().set;
        assert_eq!((s.n, s.channels, s.h, s.w), (1, 3, 16, 16));
        for (ch, want) in [100f32, 150., 200.].into_iter().enumerate() {
            let v = s.data[ch * 256] * 255.0;
            assert!((v - want).abs() <= 2.0, "channel {ch}: {v}");
        }
    }
}
