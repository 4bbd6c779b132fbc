//! [`ImageSet`]: the one in-memory layout every crate passes around.

/// `n` single- or multi-channel images, row-major `(n, channels, h, w)`, values as `f32`.
///
/// The pixel count `d = channels * h * w` is what the KDE metric averages over.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    pub n: usize,
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl ImageSet {
    /// Wraps `data` of length `n * channels * h * w`; panics if the length does not match
    /// (a programming error, never a user input: readers validate before calling this).
    pub fn new(n: usize, channels: usize, h: usize, w: usize, data: Vec<f32>) -> Self {
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
    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.dim();
        &self.data[i * d..(i + 1) * d]
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let d = self.dim();
        let mut data = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        ImageSet::new(indices.len(), self.channels, self.h, self.w, data)
    }

    /// All pixel values as `f64`, row-major `(n, d)`: the metric crate's input.
    pub fn to_f64(&self) -> Vec<f64> {
        self.data.iter().map(|&v| v as f64).collect()
    }
}
