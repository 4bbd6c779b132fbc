//! `.npy` arrays (numpy's format), read with the `npyz` crate.
//!
//! Reading accepts float32, float64 and uint8 (as `value / 255`), little- or big-endian, C or
//! Fortran order, shapes `(n, d)`, `(n, h, w)`, `(n, c, h, w)` and `(n, h, w, c)` (see
//! [`read_images`] and [`crate::source::Layout`]). Writing
//! is always float32, C order, shape `(n, c, h, w)`.

use std::io::Write;
use std::path::Path;

use npyz::{DType, NpyFile, NpyHeader, Order, TypeChar, WriterBuilder};

use crate::images::{nchw_from_shape, unravel};
use crate::source::{nhwc_to_nchw, Layout};
use crate::{DataError, ImageSet, Pixel};

/// The six bytes every `.npy` file starts with.
pub const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Reads a set of images from a `.npy` file.
///
/// - dtypes: `float32`, `float64` (rounded to f32; [`read_images_f64`] keeps them exact),
///   `uint8` (as `value / 255` in f32);
/// - shapes: `(n, d)` becomes `sqrt(d) x sqrt(d)` images when `d` is a perfect square and
///   `1 x d` otherwise; `(n, h, w)` one channel; `(n, c, h, w)` as is;
/// - Fortran-order files are transposed to C order;
/// - errors: NaN/inf (naming the first bad index), wrong rank or dtype, `n = 0`, truncation.
pub fn read_images(path: &Path) -> Result<ImageSet, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::read(path, e))?;
    parse_images(path, &bytes)
}

/// [`read_images`] without rounding: float64 files keep their exact values; float32 and uint8
/// give the same values as [`read_images`] (widened exactly). What the metric reads.
pub fn read_images_f64(path: &Path) -> Result<ImageSet<f64>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::read(path, e))?;
    parse_images_as(path, &bytes)
}

/// [`read_images`] on bytes already in memory; `path` only names the source in errors.
pub fn parse_images(path: &Path, bytes: &[u8]) -> Result<ImageSet, DataError> {
    parse_images_as(path, bytes)
}

/// [`parse_images`] into values of type `V`: float64 data is rounded to `V` (an error if it
/// overflows), float32 and uint8 data (`value as f32 / 255`) are widened exactly.
pub fn parse_images_as<V: Pixel>(path: &Path, bytes: &[u8]) -> Result<ImageSet<V>, DataError> {
    parse_images_layout(path, bytes, Layout::Auto)
}

/// [`parse_images_as`] with the layout of a rank-4 array given ([`Layout`]).
pub fn parse_images_layout<V: Pixel>(
    path: &Path,
    bytes: &[u8],
    layout: Layout,
) -> Result<ImageSet<V>, DataError> {
    let fmt = |detail: String| DataError::NpyFormat {
        path: path.to_path_buf(),
        detail,
    };
    if !bytes.starts_with(NPY_MAGIC) {
        return Err(fmt(format!(
            "it does not start with the .npy magic \\x93NUMPY (first bytes {})",
            crate::error::hex4(bytes)
        )));
    }
    let mut rest = bytes;
    let header = NpyHeader::from_reader(&mut rest).map_err(|e| fmt(format!("bad header: {e}")))?;
    let held = rest.len();
    let shape = header.shape().to_vec();
    let order = header.order();
    let dtype = header.dtype();
    let kind = match &dtype {
        DType::Plain(ts) => match (ts.type_char(), ts.size_field()) {
            (TypeChar::Float, 4) => Kind::F32,
            (TypeChar::Float, 8) => Kind::F64,
            (TypeChar::Uint, 1) => Kind::U8,
            _ => {
                return Err(DataError::NpyDtype {
                    path: path.to_path_buf(),
                    dtype: dtype.descr(),
                })
            }
        },
        _ => {
            return Err(DataError::NpyDtype {
                path: path.to_path_buf(),
                dtype: dtype.descr(),
            })
        }
    };
    let ((n, c, h, w), channel_last) = nchw_from_shape(path, &shape, layout)?;
    let total = n * c * h * w;
    // A header may claim far more data than the file holds; check before allocating.
    let item = match kind {
        Kind::F32 => 4,
        Kind::F64 => 8,
        Kind::U8 => 1,
    };
    if (held as u128) < total as u128 * item as u128 {
        return Err(fmt(format!(
            "the header claims shape {shape:?} ({} bytes of data) but the file holds {held}; the file is truncated",
            total as u128 * item as u128
        )));
    }
    let npy = NpyFile::with_header(header, rest);
    let truncated = |e: std::io::Error| fmt(format!("reading the data: {e}"));
    // Values in file order, plus the original value for error messages.
    let file_order: Vec<V> = match kind {
        Kind::F32 => {
            let v: Vec<f32> = npy.into_vec().map_err(truncated)?;
            check_finite(path, &shape, order, v.iter().map(|&x| x as f64))?;
            v.into_iter().map(V::from_f32).collect()
        }
        Kind::F64 => {
            let v: Vec<f64> = npy.into_vec().map_err(truncated)?;
            check_finite(path, &shape, order, v.iter().copied())?;
            // A finite f64 may still overflow f32.
            check_finite(
                path,
                &shape,
                order,
                v.iter().map(|&x| {
                    if V::from_f64(x).into().is_finite() {
                        x
                    } else {
                        f64::INFINITY
                    }
                }),
            )?;
            v.into_iter().map(V::from_f64).collect()
        }
        Kind::U8 => {
            let v: Vec<u8> = npy.into_vec().map_err(truncated)?;
            v.into_iter()
                .map(|x| V::from_f32(x as f32 / 255.0))
                .collect()
        }
    };
    let data = match order {
        Order::C => file_order,
        Order::Fortran => fortran_to_c(&file_order, &shape_usize(&shape)),
    };
    let data = if channel_last {
        nhwc_to_nchw(&data, n, c, h, w)
    } else {
        data
    };
    Ok(ImageSet::new(n, c, h, w, data))
}

#[derive(Clone, Copy)]
enum Kind {
    F32,
    F64,
    U8,
}

fn shape_usize(shape: &[u64]) -> Vec<usize> {
    shape.iter().map(|&s| s as usize).collect()
}

/// Errors on the first non-finite value, naming its index in the file's shape (C-order index,
/// whatever the storage order).
fn check_finite(
    path: &Path,
    shape: &[u64],
    order: Order,
    values: impl Iterator<Item = f64>,
) -> Result<(), DataError> {
    let dims = shape_usize(shape);
    let mut first: Option<(Vec<usize>, f64)> = None;
    for (k, v) in values.enumerate() {
        if !v.is_finite() {
            let index = match order {
                Order::C => unravel(k, &dims),
                Order::Fortran => {
                    let rev: Vec<usize> = dims.iter().rev().copied().collect();
                    let mut i = unravel(k, &rev);
                    i.reverse();
                    i
                }
            };
            // In Fortran order the first in storage is not the first in C order: keep the least.
            match (&first, order) {
                (None, _) => first = Some((index, v)),
                (Some((best, _)), Order::Fortran) if index < *best => first = Some((index, v)),
                _ => {}
            }
            if order == Order::C {
                break;
            }
        }
    }
    match first {
        None => Ok(()),
        Some((index, value)) => Err(DataError::NonFinite {
            path: path.to_path_buf(),
            index,
            shape: dims,
            value,
        }),
    }
}

/// Reorders a Fortran-order (first index fastest) buffer of `shape` into C order.
fn fortran_to_c<V: Copy>(src: &[V], shape: &[usize]) -> Vec<V> {
    let rank = shape.len();
    // Fortran strides: stride[0] = 1, stride[k] = stride[k-1] * shape[k-1].
    let mut fstride = vec![1usize; rank];
    for k in 1..rank {
        fstride[k] = fstride[k - 1] * shape[k - 1];
    }
    let mut out = Vec::with_capacity(src.len());
    let mut idx = vec![0usize; rank];
    for _ in 0..src.len() {
        let off: usize = idx.iter().zip(&fstride).map(|(i, s)| i * s).sum();
        out.push(src[off]);
        // Advance the C-order multi-index (last axis fastest).
        for k in (0..rank).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

/// Writes `set` as a float32 `.npy` of shape `(n, c, h, w)`, C order, atomically.
pub fn write_npy(path: &Path, set: &ImageSet) -> Result<(), DataError> {
    crate::atomic::write_with(path, |w| write_npy_to(w, set))?;
    Ok(())
}

/// The bytes of [`write_npy`]'s file.
pub fn npy_bytes(set: &ImageSet) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128 + set.data.len() * 4);
    write_npy_to(&mut buf, set).expect("writing to a Vec cannot fail");
    buf
}

fn write_npy_to(w: &mut dyn Write, set: &ImageSet) -> std::io::Result<()> {
    let shape = [set.n, set.channels, set.h, set.w].map(|s| s as u64);
    let mut writer = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&shape)
        .writer(w)
        .begin_nd()?;
    writer.extend(set.data.iter().copied())?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built `.npy` (format 1.0) with the given header dict and raw data.
    pub(crate) fn raw_npy(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        // magic(6) + version(2) + len(2) + header + '\n' padded to a multiple of 64.
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = NPY_MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn p() -> &'static Path {
        Path::new("x.npy")
    }

    #[test]
    fn round_trip_f32_is_exact() {
        let data: Vec<f32> = (0..2 * 3 * 4).map(|i| i as f32 * 0.37 - 1.5).collect();
        let set = ImageSet::new(2, 1, 3, 4, data);
        let back = parse_images(p(), &npy_bytes(&set)).unwrap();
        assert_eq!(back, set);
    }

    #[test]
    fn shapes_map_to_images() {
        let d16: Vec<u8> = (0..32).map(|i| i as u8).collect();
        let s = parse_images(
            p(),
            &raw_npy(
                "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 16), }",
                &d16,
            ),
        )
        .unwrap();
        assert_eq!((s.n, s.channels, s.h, s.w), (2, 1, 4, 4));
        assert_eq!(s.data[17], 17.0 / 255.0);
        let d12: Vec<u8> = vec![0; 24];
        let s = parse_images(
            p(),
            &raw_npy(
                "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 12), }",
                &d12,
            ),
        )
        .unwrap();
        assert_eq!((s.n, s.channels, s.h, s.w), (2, 1, 1, 12));
        let s = parse_images(
            p(),
            &raw_npy(
                "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 4), }",
                &d12,
            ),
        )
        .unwrap();
        assert_eq!((s.n, s.channels, s.h, s.w), (2, 1, 3, 4));
        let s = parse_images(
            p(),
            &raw_npy(
                "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 3, 2, 2), }",
                &d12,
            ),
        )
        .unwrap();
        assert_eq!((s.n, s.channels, s.h, s.w), (1, 3, 2, 2));
        // Two channels cannot be told from a side: refused, naming the flag; given, read.
        let raw = raw_npy(
            "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 3, 2), }",
            &d12,
        );
        let e = parse_images(p(), &raw).unwrap_err();
        assert!(e.to_string().contains("--layout nchw"), "{e}");
        let s: ImageSet = parse_images_layout(p(), &raw, Layout::Nchw).unwrap();
        assert_eq!((s.n, s.channels, s.h, s.w), (1, 2, 3, 2));
    }

    #[test]
    fn f64_big_endian_and_fortran_order() {
        // Array a[i][j] = 10 i + j of shape (2, 3), stored Fortran order, big-endian f64:
        // storage order a00 a10 a01 a11 a02 a12.
        let vals = [0.0f64, 10.0, 1.0, 11.0, 2.0, 12.0];
        let data: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
        let s = parse_images(
            p(),
            &raw_npy(
                "{'descr': '>f8', 'fortran_order': True, 'shape': (2, 3), }",
                &data,
            ),
        )
        .unwrap();
        assert_eq!((s.n, s.h, s.w), (2, 1, 3));
        assert_eq!(s.data, vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0]);
    }

    #[test]
    fn fortran_rank4_matches_c() {
        let shape = [2usize, 3, 4, 5];
        let c: Vec<f32> = (0..120).map(|i| i as f32).collect();
        // Build Fortran storage by hand: element (i,j,k,l) at i + 2j + 6k + 24l.
        let mut f = vec![0f32; 120];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    for l in 0..5 {
                        f[i + 2 * j + 6 * k + 24 * l] = c[((i * 3 + j) * 4 + k) * 5 + l];
                    }
                }
            }
        }
        assert_eq!(fortran_to_c(&f, &shape), c);
    }

    #[test]
    fn errors_name_the_problem() {
        let mut vals = [0.5f32; 8];
        vals[5] = f32::NAN;
        let data: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let e = parse_images(
            p(),
            &raw_npy(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }",
                &data,
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&e, DataError::NonFinite { index, .. } if index == &vec![1, 1]),
            "{e}"
        );
        assert!(
            e.to_string().contains("x.npy") && e.to_string().contains("[1, 1]"),
            "{e}"
        );

        let e = parse_images(
            p(),
            &raw_npy(
                "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 1), }",
                &[0; 8],
            ),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("<i4") && e.to_string().contains("float32"),
            "{e}"
        );

        let e = parse_images(
            p(),
            &raw_npy(
                "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }",
                &[0; 4],
            ),
        )
        .unwrap_err();
        assert!(matches!(e, DataError::Shape { .. }), "{e}");

        let e = parse_images(
            p(),
            &raw_npy(
                "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 4), }",
                &[],
            ),
        )
        .unwrap_err();
        assert!(e.to_string().contains("empty set"), "{e}");

        let e = parse_images(
            p(),
            &raw_npy(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 4), }",
                &[0; 12],
            ),
        )
        .unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");

        let e = parse_images(p(), b"hello world").unwrap_err();
        assert!(matches!(e, DataError::NpyFormat { .. }), "{e}");

        let data: Vec<u8> = [1.0f64, 1e300]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let e = parse_images(
            p(),
            &raw_npy(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }",
                &data,
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&e, DataError::NonFinite { index, .. } if index == &vec![0, 1]),
            "{e}"
        );
    }
}
