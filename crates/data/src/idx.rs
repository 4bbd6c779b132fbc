//! IDX files (the MNIST format), gzipped or plain, and [`read_images_any`], which reads any
//! supported image file by its content.
//!
//! An IDX file is a big-endian `u32` magic `00 00 TT NN` (`TT` the element type, `NN` the number
//! of dimensions), `NN` big-endian `u32` dimensions, then the elements. Only unsigned bytes
//! (`TT = 0x08`, as MNIST) are read. Whether a file is gzipped is decided by its first two bytes
//! (`1f 8b`), never by its name.
//!
//! We do not use the `mnist` crate: it panics on malformed files and expects the four standard
//! files at full length, so it can neither report these errors nor read the 10k subset.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;

use crate::error::hex4;
use crate::images::nchw_from_shape;
use crate::{DataError, ImageSet, Pixel};

/// The two bytes every gzip stream starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An IDX array of unsigned bytes: its dimensions and its elements in row-major order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file (gzipped or plain) of unsigned bytes.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::read(path, e))?;
    let bytes = gunzip_if_gzip(path, &raw)?;
    parse_idx(path, &bytes)
}

/// Decompresses `raw` if it starts with the gzip magic; returns it unchanged otherwise.
pub fn gunzip_if_gzip<'a>(path: &Path, raw: &'a [u8]) -> Result<Cow<'a, [u8]>, DataError> {
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    let mut dec = flate2::read::MultiGzDecoder::new(raw);
    match dec.read_to_end(&mut out) {
        Ok(_) => Ok(Cow::Owned(out)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(DataError::GzipTruncated {
            path: path.to_path_buf(),
            detail: format!("{e} after {} decompressed bytes", out.len()),
        }),
        Err(e) => Err(DataError::GzipCorrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
    }
}

fn type_name(code: u8) -> Option<(&'static str, u64)> {
    Some(match code {
        0x08 => ("unsigned byte", 1),
        0x09 => ("signed byte", 1),
        0x0B => ("short", 2),
        0x0C => ("int", 4),
        0x0D => ("float", 4),
        0x0E => ("double", 8),
        _ => return None,
    })
}

/// Parses IDX bytes (already decompressed); `path` only names the source in errors.
pub fn parse_idx(path: &Path, bytes: &[u8]) -> Result<IdxArray, DataError> {
    let magic_err = || DataError::IdxMagic {
        path: path.to_path_buf(),
        magic: hex4(bytes),
    };
    if bytes.len() < 4 {
        return Err(if bytes.iter().all(|&b| b == 0) && !bytes.is_empty() {
            DataError::HeaderShort {
                path: path.to_path_buf(),
                what: "IDX",
                len: bytes.len(),
            }
        } else {
            magic_err()
        });
    }
    let (code, ndims) = (bytes[2], bytes[3] as usize);
    if bytes[0] != 0 || bytes[1] != 0 || ndims == 0 {
        return Err(magic_err());
    }
    let Some((name, item_bytes)) = type_name(code) else {
        return Err(magic_err());
    };
    if code != 0x08 {
        return Err(DataError::IdxType {
            path: path.to_path_buf(),
            code,
            name,
        });
    }
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(DataError::HeaderShort {
            path: path.to_path_buf(),
            what: "IDX",
            len: bytes.len(),
        });
    }
    let dims: Vec<u64> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64)
        .collect();
    // At most 255 factors below 2^32: the product can overflow u64, so saturate.
    let items = dims.iter().fold(1u64, |a, &d| a.saturating_mul(d));
    let claimed = items.saturating_mul(item_bytes);
    let held = (bytes.len() - header_len) as u64;
    if claimed > held {
        return Err(DataError::IdxShort {
            path: path.to_path_buf(),
            claimed_items: dims[0],
            item_bytes: claimed / dims[0].max(1),
            claimed_bytes: claimed,
            held_bytes: held,
        });
    }
    if claimed < held {
        return Err(DataError::IdxTrailing {
            path: path.to_path_buf(),
            dims,
            extra: held - claimed,
        });
    }
    Ok(IdxArray {
        dims: dims.iter().map(|&d| d as usize).collect(),
        data: bytes[header_len..].to_vec(),
    })
}

/// The bytes of a plain (uncompressed) IDX file of unsigned bytes.
///
/// Errors if `dims` does not match `data.len()`, is empty or has more than 255 entries, or a
/// dimension does not fit in a `u32`.
pub fn idx_u8_bytes(dims: &[usize], data: &[u8]) -> Result<Vec<u8>, DataError> {
    let product = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if dims.is_empty() || dims.len() > 255 || product != Some(data.len()) {
        return Err(DataError::invalid(
            "IDX dimensions",
            format!(
                "{dims:?} do not describe {} bytes (1 to 255 dimensions whose product is the data length)",
                data.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, 0x08, dims.len() as u8]);
    for &d in dims {
        let d = u32::try_from(d)
            .map_err(|_| DataError::invalid("IDX dimensions", format!("{d} exceeds u32")))?;
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    Ok(out)
}

/// Gzip-compresses `bytes` (default level), as [`write_idx_u8`] does with `gzip = true`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// Writes an IDX file of unsigned bytes atomically; gzipped when `gzip` is true.
pub fn write_idx_u8(path: &Path, dims: &[usize], data: &[u8], gzip: bool) -> Result<(), DataError> {
    let bytes = idx_u8_bytes(dims, data)?;
    let bytes = if gzip { self::gzip(&bytes) } else { bytes };
    crate::atomic::write_bytes(path, &bytes)?;
    Ok(())
}

/// Pixels in `[0, 1]` as bytes, `round(v * 255)` clamped to `0..=255`. Exact for values of the
/// form `k / 255` (as read from u8 data); lossy otherwise.
pub fn to_u8(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect()
}

/// Writes `set` as an IDX file of shape `(n, h, w)` (one channel) or `(n, c, h, w)`, pixels
/// quantised by [`to_u8`].
pub fn write_images_idx(path: &Path, set: &ImageSet, gzip: bool) -> Result<(), DataError> {
    let dims: Vec<usize> = if set.channels == 1 {
        vec![set.n, set.h, set.w]
    } else {
        vec![set.n, set.channels, set.h, set.w]
    };
    write_idx_u8(path, &dims, &to_u8(&set.data), gzip)
}

/// An IDX array of unsigned bytes as images (`value / 255`), with the shape rules of
/// [`crate::npy::read_images`].
pub fn idx_to_images(path: &Path, arr: &IdxArray) -> Result<ImageSet, DataError> {
    idx_to_images_as(path, arr)
}

/// [`idx_to_images`] into values of type `V` (`value as f32 / 255`, widened exactly).
pub fn idx_to_images_as<V: Pixel>(path: &Path, arr: &IdxArray) -> Result<ImageSet<V>, DataError> {
    idx_to_images_layout(path, arr, crate::source::Layout::Auto)
}

/// [`idx_to_images_as`] with the layout of a rank-4 array given.
pub fn idx_to_images_layout<V: Pixel>(
    path: &Path,
    arr: &IdxArray,
    layout: crate::source::Layout,
) -> Result<ImageSet<V>, DataError> {
    let shape: Vec<u64> = arr.dims.iter().map(|&d| d as u64).collect();
    let ((n, c, h, w), channel_last) = nchw_from_shape(path, &shape, layout)?;
    let data: Vec<V> = arr
        .data
        .iter()
        .map(|&b| V::from_f32(b as f32 / 255.0))
        .collect();
    let data = if channel_last {
        crate::source::nhwc_to_nchw(&data, n, c, h, w)
    } else {
        data
    };
    Ok(ImageSet::new(n, c, h, w, data))
}

/// Reads a set of images from any source [`crate::source::read_source`] reads (a folder of
/// PNG / JPEG files, `.npz`, `.npy`, IDX gzipped or plain; files decided by their first bytes,
/// not their name), with the default options (layout inferred, `arr_0`, no fit).
/// [`crate::mnist::SHIPPED`] gives the shipped MNIST subset.
pub fn read_images_any(path: &Path) -> Result<ImageSet, DataError> {
    read_images_any_as(path)
}

/// [`read_images_any`] without rounding float64 `.npy` data to f32 (the metric's reader: every
/// other format gives the same values as [`read_images_any`], widened exactly).
pub fn read_images_any_f64(path: &Path) -> Result<ImageSet<f64>, DataError> {
    read_images_any_as(path)
}

/// [`read_images_any`] into values of type `V`.
pub fn read_images_any_as<V: Pixel>(path: &Path) -> Result<ImageSet<V>, DataError> {
    Ok(crate::source::read_source_as(path, &Default::default())?.set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("f.idx")
    }

    #[test]
    fn round_trip_plain_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..2 * 3 * 5).map(|i| (i * 37 % 256) as u8).collect();
        for gz in [false, true] {
            let f = dir.path().join(format!("a{gz}"));
            write_idx_u8(&f, &[2, 3, 5], &data, gz).unwrap();
            let raw = std::fs::read(&f).unwrap();
            assert_eq!(raw.starts_with(&GZIP_MAGIC), gz);
            let a = read_idx(&f).unwrap();
            assert_eq!(a.dims, vec![2, 3, 5]);
            assert_eq!(a.data, data);
        }
    }

    #[test]
    fn header_layout_is_big_endian() {
        let b = idx_u8_bytes(&[2, 1], &[7, 9]).unwrap();
        assert_eq!(b, vec![0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 1, 7, 9]);
    }

    #[test]
    fn malformed_files_give_typed_errors() {
        let good = idx_u8_bytes(&[3, 2, 2], &[1; 12]).unwrap();
        let e = parse_idx(p(), &good[..good.len() - 1]).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::IdxShort {
                    claimed_bytes: 12,
                    held_bytes: 11,
                    ..
                }
            ),
            "{e}"
        );
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            parse_idx(p(), &long).unwrap_err(),
            DataError::IdxTrailing { extra: 1, .. }
        ));
        let mut bad = good.clone();
        bad[0] = 0x12;
        let e = parse_idx(p(), &bad).unwrap_err();
        assert!(e.to_string().contains("wrong IDX magic 12 00 08 03"), "{e}");
        let mut float = good.clone();
        float[2] = 0x0D;
        assert!(matches!(
            parse_idx(p(), &float).unwrap_err(),
            DataError::IdxType { code: 0x0D, .. }
        ));
        assert!(matches!(
            parse_idx(p(), &good[..9]).unwrap_err(),
            DataError::HeaderShort { .. }
        ));
    }

    #[test]
    fn truncated_and_corrupt_gzip() {
        let data = vec![5u8; 5000];
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&idx_u8_bytes(&[5000], &data).unwrap())
            .unwrap();
        let gz = enc.finish().unwrap();
        let e = gunzip_if_gzip(p(), &gz[..gz.len() / 2]).unwrap_err();
        assert!(matches!(e, DataError::GzipTruncated { .. }), "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");
        let mut crc = gz.clone();
        let k = crc.len() - 6;
        crc[k] ^= 0xff; // inside the CRC32 trailer
        let e = gunzip_if_gzip(p(), &crc).unwrap_err();
        assert!(matches!(e, DataError::GzipCorrupt { .. }), "{e}");
    }

    #[test]
    fn to_u8_inverts_division_by_255() {
        let all: Vec<u8> = (0..=255).collect();
        let f: Vec<f32> = all.iter().map(|&b| b as f32 / 255.0).collect();
        assert_eq!(to_u8(&f), all);
    }
}
