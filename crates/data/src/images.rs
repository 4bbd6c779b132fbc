//! [`ImageSet`]: the one in-memory layout every crate passes around.

/// A pixel value type: `f32` (the default, what the network and the files of this project use)
/// or `f64` (kept when a `.npy` file holds float64, so that the metric sees the exact values).
pub trait Pixel: Copy + Into<f64> + PartialEq + Send + Sync + std::fmt::Debug + 'static {
    /// The nearest value of this type (for `f32`: rounds).
    fn from_f64(x: f64) -> Self;
    /// The value of an `f32` (exact for both types).
    fn from_f32(x: f32) -> Self;
}

impl Pixel for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn from_f32(x: f32) -> Self {
        x
    }
}

impl Pixel for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn from_f32(x: f32) -> Self {
        x as f64
    }
}

/// `n` single- or multi-channel images, row-major `(n, channels, h, w)`, values as `f32` (or
/// `f64`: [`ImageSet<f64>`], the metric's exact input).
///
/// The pixel count `d = channels * h * w` is what the KDE metric averages over.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet<V = f32> {
    pub n: usize,
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<V>,
}

impl<V: Copy> ImageSet<V> {
    /// Wraps `data` of length `n * channels * h * w`; panics if the length does not match
    /// (a programming error, never a user input: readers validate before calling this).
    pub fn new(n: usize, channels: usize, h: usize, w: usize, data: Vec<V>) -> Self {
        assert_eq!(
            data.len(),
            n * channels * h * w,
            "ImageSet::new: data length"
        );
        Self {
            n,
            channels,
            h,
            w,
            data,
        }
    }

    /// Pixels per image, `channels * h * w`.
    pub fn dim(&self) -> usize {
        self.channels * self.h * self.w
    }

    /// Image `i` as a slice of `dim()` values.
    pub fn row(&self, i: usize) -> &[V] {
        let d = self.dim();
        &self.data[i * d..(i + 1) * d]
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> ImageSet<V> {
        let d = self.dim();
        let mut data = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        ImageSet::new(indices.len(), self.channels, self.h, self.w, data)
    }

    /// The same images with every value mapped by `f` (same shape).
    pub fn map<W: Copy>(&self, f: impl Fn(V) -> W) -> ImageSet<W> {
        ImageSet::new(
            self.n,
            self.channels,
            self.h,
            self.w,
            self.data.iter().map(|&v| f(v)).collect(),
        )
    }
}

impl<V: Pixel> ImageSet<V> {
    /// All pixel values as `f64` (exact), same shape: the metric's input.
    pub fn to_f64(&self) -> ImageSet<f64> {
        self.map(|v| v.into())
    }
}

/// Interprets an array shape as `(n, channels, h, w)`:
/// `(n, d)` → a square `sqrt(d) x sqrt(d)` image when `d` is a perfect square, else `1 x d`;
/// `(n, h, w)` → one channel; rank 4 by `layout` ([`crate::source::Layout`]: `(n, c, h, w)`
/// or `(n, h, w, c)`, inferred only where one side alone is 1 or 3). Any zero dimension is an
/// empty set. The flag says whether the data is channel-last (to reorder with
/// [`crate::source`]'s `nhwc_to_nchw`).
pub(crate) fn nchw_from_shape(
    path: &std::path::Path,
    shape: &[u64],
    layout: crate::source::Layout,
) -> Result<crate::source::Nchw, crate::DataError> {
    use crate::DataError;
    let bad = || DataError::Shape {
        path: path.to_path_buf(),
        shape: shape.to_vec(),
    };
    if !(2..=4).contains(&shape.len()) {
        return Err(bad());
    }
    if shape.contains(&0) {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            shape: shape.to_vec(),
        });
    }
    let dims: Vec<usize> = shape
        .iter()
        .map(|&s| usize::try_from(s).map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    // The total must fit in memory-addressable sizes.
    dims.iter()
        .try_fold(1usize, |acc, &s| acc.checked_mul(s))
        .ok_or_else(bad)?;
    Ok(match *dims.as_slice() {
        [n, d] => {
            let side = isqrt(d);
            if side * side == d {
                ((n, 1, side, side), false)
            } else {
                ((n, 1, 1, d), false)
            }
        }
        [n, h, w] => ((n, 1, h, w), false),
        [n, a, b, c] => crate::source::rank4_layout(path, [n, a, b, c], layout)?,
        _ => unreachable!("rank checked above"),
    })
}

/// Integer square root (floor).
pub(crate) fn isqrt(d: usize) -> usize {
    let mut r = (d as f64).sqrt() as usize;
    while r * r > d {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= d {
        r += 1;
    }
    r
}

/// The C-order multi-index of flat position `flat` in an array of `shape`.
pub(crate) fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (k, &s) in shape.iter().enumerate().rev() {
        if s > 0 {
            idx[k] = flat % s;
            flat /= s;
        }
    }
    idx
}
