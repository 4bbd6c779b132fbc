//! Building blocks written out by hand where burn's generic op is slower or missing a piece.

use burn::nn::GroupNorm;
use burn::tensor::{Device, Tensor};

/// Upsample with two small matmuls instead of burn's `interpolate` (whose ndarray backward
/// panics, and which is a gather on flex). Same numbers up to float rounding.
pub(crate) const USE_MATMUL_UPSAMPLE: bool = true;

/// The `(2n, n)` matrix of bilinear ×2 interpolation with `align_corners = true` along one axis:
/// output `i` reads source position `i (n - 1) / (2n - 1)`. For `n = 1` every output copies the
/// input.
pub fn upsample_matrix(n: usize) -> Vec<f32> {
    let m = 2 * n;
    let mut a = vec![0f32; m * n];
    for i in 0..m {
        if n == 1 {
            a[i] = 1.0;
            continue;
        }
        let src = i as f64 * (n - 1) as f64 / (m - 1) as f64;
        let i0 = (src.floor() as usize).min(n - 1);
        let i1 = (i0 + 1).min(n - 1);
        let f = src - i0 as f64;
        a[i * n + i0] += (1.0 - f) as f32;
        a[i * n + i1] += f as f32;
    }
    a
}

fn upsample_matrix_t(n: usize, device: &Device) -> Tensor<2> {
    // (n, 2n): the transpose, so that rows @ it interpolates along the last axis.
    let a = upsample_matrix(n);
    Tensor::<1>::from_floats(a.as_slice(), device)
        .reshape([2 * n, n])
        .transpose()
}

/// `(B, C, n, n) -> (B, C, 2n, 2n)`, bilinear, align corners: `A x A^T` per map.
pub(crate) fn upsample2x_matmul(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let aw = upsample_matrix_t(w, &device); // (w, 2w)
    let ah = if h == w {
        aw.clone()
    } else {
        upsample_matrix_t(h, &device)
    };
    // along w
    let y = x.reshape([b * c * h, w]).matmul(aw); // (bch, 2w)
                                                  // along h: bring h last
    let y = y
        .reshape([b * c, h, 2 * w])
        .swap_dims(1, 2)
        .reshape([b * c * 2 * w, h])
        .matmul(ah); // (bc 2w, 2h)
    y.reshape([b * c, 2 * w, 2 * h])
        .swap_dims(1, 2)
        .reshape([b, c, 2 * h, 2 * w])
}

/// GroupNorm with one group: normalise each sample over (C, H, W), then the per-channel affine.
pub(crate) fn group_norm1(x: Tensor<4>, norm: &GroupNorm) -> Tensor<4> {
    norm.forward(x)
}
