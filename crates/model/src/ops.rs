//! Building blocks written out by hand where burn's generic op is slower or missing a piece.

use burn::nn::conv::Conv2d;
use burn::nn::GroupNorm;
use burn::tensor::ops::PadMode;
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

/// Maps of at most this side go through [`conv3x3_im2col`]; larger ones through burn's `conv2d`.
/// Measured per layer (forward + backward, batch 128, `examples/conv_probe.rs`): im2col is
/// 1.2–3.4× faster at side 2 and 8–15× at side 1, but 1.5–4× slower at sides 4 and 8, where
/// its copies (building and scattering the patches) outweigh the better GEMM shape.
pub const IM2COL_MAX_SIDE: usize = 2;

/// The U-Net's 3×3 convolution (padding 1, no bias): [`conv3x3_im2col`] on small maps, burn's
/// `conv2d` on the others.
pub(crate) fn conv3x3(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if h.max(w) <= IM2COL_MAX_SIDE && conv.bias.is_none() {
        conv3x3_im2col(x, conv.weight.val())
    } else {
        conv.forward(x)
    }
}

/// 3×3 convolution, stride 1, padding 1, no bias, as one matrix product over the whole batch:
/// `cols (B·H·W, 9C) @ Wᵀ (9C, O)`, the patches built from 9 shifted slices of the padded input.
///
/// burn-flex's `conv2d` runs one small GEMM per image (N = H·W: 4 columns at a 2×2 map, 1 at
/// 1×1) and its backward runs the weight gradient as a convolution with `H×W` kernels and the
/// input gradient as a transposed convolution. Here autodiff differentiates a matmul, so
/// forward and both gradients are each one large GEMM (docs/BENCHMARKS.md, "U-Net training").
/// The same sums as a direct convolution; only the order of float additions differs.
pub fn conv3x3_im2col(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let [o, ci, kh, kw] = weight.dims();
    assert!(
        ci == c && kh == 3 && kw == 3,
        "conv3x3_im2col: weight {:?} for input {:?}",
        weight.dims(),
        x.dims()
    );
    if h == 1 && w == 1 {
        // On a 1×1 map every tap but the centre one reads padding.
        let wc = weight.slice([0..o, 0..c, 1..2, 1..2]).reshape([o, c]);
        return x
            .reshape([b, c])
            .matmul(wc.transpose())
            .reshape([b, o, 1, 1]);
    }
    // Channels first, (C, B, H, W): the patches then stack into (C, 9, B, H, W), already the
    // row-major layout of the (9C, B·H·W) matrix, and the product lands as (O, B, H, W).
    let xp = x
        .permute([1, 0, 2, 3])
        .pad((1, 1, 1, 1), PadMode::Constant(0.0));
    let mut taps = Vec::with_capacity(9);
    for i in 0..3 {
        for j in 0..3 {
            taps.push(xp.clone().slice([0..c, 0..b, i..i + h, j..j + w]));
        }
    }
    let cols: Tensor<5> = Tensor::stack(taps, 1);
    let cols = cols.reshape([c * 9, b * h * w]);
    let y = weight.reshape([o, c * 9]).matmul(cols);
    y.reshape([o, b, h, w]).permute([1, 0, 2, 3])
}
