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

/// Exact GELU (PyTorch's default, `0.5 x (1 + erf(x / √2))`): on flex by our vectorised,
/// multi-threaded host kernel ([`crate::host`]), elsewhere by burn's `gelu`.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    return crate::host::gelu(x);
    #[cfg(not(feature = "flex"))]
    burn::tensor::activation::gelu(x)
}

/// GroupNorm with one group: normalise each sample over (C, H, W), then the per-channel affine.
pub(crate) fn group_norm1(x: Tensor<4>, norm: &GroupNorm) -> Tensor<4> {
    norm.forward(x)
}

/// On CPU backends, maps of at most this side go through [`conv3x3_dense`]; larger ones through
/// burn's `conv2d`: from side 4 on the dense product multiplies more zeros (s⁴ products per
/// channel pair against at most 9 s² useful ones) than burn's convolution loses. Measured with
/// `memdiff bench conv` (docs/BENCHMARKS.md, "Figures behind the code's thresholds").
pub const DENSE_MAX_SIDE: usize = 2;

/// On GPU backends, convolutions with at least this many input and output channels on maps of
/// side ≥ [`IM2COL_MIN_SIDE`] go through [`conv3x3_im2col`]: faster than burn's `conv2d` there
/// on wgpu and slower elsewhere (docs/BENCHMARKS.md, "Figures behind the code's thresholds").
pub const IM2COL_MIN_CHANNELS: usize = 256;
/// See [`IM2COL_MIN_CHANNELS`].
pub const IM2COL_MIN_SIDE: usize = 8;

/// Whether `device` (autodiff or not) is a CPU backend (flex or ndarray), as far as this build
/// knows: the crate features `flex` / `ndarray` name the backends it can recognise.
pub fn is_cpu(device: &Device) -> bool {
    let plain = device.clone().inner();
    #[cfg(feature = "flex")]
    if plain == Device::flex() {
        return true;
    }
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    if plain == Device::ndarray() {
        return true;
    }
    let _ = plain;
    false
}

/// On flex, maps of side 2 go through [`conv3x3_dense`] only for batches of at least this
/// many images; smaller batches (sampling) through the host kernel, where building the dense
/// matrix costs more than it saves (`memdiff bench conv`; docs/BENCHMARKS.md, "Figures behind
/// the code's thresholds").
pub const DENSE_MIN_BATCH: usize = 64;

/// The U-Net's 3×3 convolution (padding 1, no bias), by the implementation measured fastest for
/// its backend and shape (`memdiff bench conv`, docs/BENCHMARKS.md):
/// - flex: [`conv3x3_dense`] on 1×1 maps, and on 2×2 maps for batches of at least
///   [`DENSE_MIN_BATCH`]; the host kernel (`host::conv3x3_host`: batched im2col + GEMM, with
///   its own backward) everywhere else;
/// - other CPU backends: [`conv3x3_dense`] for maps of side ≤ [`DENSE_MAX_SIDE`];
/// - GPU backends: [`conv3x3_im2col`] for wide layers on larger maps;
/// - burn's `conv2d` otherwise.
pub(crate) fn conv3x3(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, c, h, w] = x.dims();
    let o = conv.weight.dims()[0];
    let side = h.max(w);
    if conv.bias.is_none() {
        let device = x.device();
        #[cfg(feature = "flex")]
        if crate::host::is_flex(&device) {
            let batch = x.dims()[0];
            return if side == 1 || (side <= DENSE_MAX_SIDE && batch >= DENSE_MIN_BATCH) {
                conv3x3_dense(x, conv.weight.val())
            } else {
                crate::host::conv3x3_host(x, conv.weight.val())
            };
        }
        if is_cpu(&device) {
            if side <= DENSE_MAX_SIDE {
                return conv3x3_dense(x, conv.weight.val());
            }
        } else if c.min(o) >= IM2COL_MIN_CHANNELS && h.min(w) >= IM2COL_MIN_SIDE {
            return conv3x3_im2col(x, conv.weight.val());
        }
    }
    conv.forward(x)
}

/// `(x dims, output channels)` of a 3×3 convolution of `x` by `weight`; panics (naming `what`)
/// when the weight is not `(O, C, 3, 3)` for an input of `C` channels.
fn conv3x3_dims(what: &str, x: &Tensor<4>, weight: &Tensor<4>) -> ([usize; 4], usize) {
    let xd = x.dims();
    let [o, ci, kh, kw] = weight.dims();
    assert!(
        ci == xd[1] && kh == 3 && kw == 3,
        "{what}: weight {:?} for input {xd:?}",
        weight.dims()
    );
    (xd, o)
}

/// The `(9, (h w)²)` 0/1 matrix that places tap `k = 3 ky + kx` of a 3×3 kernel (padding 1) at
/// `(p, q)`, output pixel `p` reading input pixel `q`, column `p · h w + q`.
fn tap_matrix(h: usize, w: usize) -> Vec<f32> {
    let n = h * w;
    let mut t = vec![0f32; 9 * n * n];
    for p in 0..n {
        let (py, px) = (p / w, p % w);
        for q in 0..n {
            let (qy, qx) = (q / w, q % w);
            let (dy, dx) = (qy + 1, qx + 1); // input = output + (k - 1), shifted to stay unsigned
            if dy >= py && dy <= py + 2 && dx >= px && dx <= px + 2 {
                let k = 3 * (dy - py) + (dx - px);
                t[k * n * n + p * n + q] = 1.0;
            }
        }
    }
    t
}

/// 3×3 convolution, stride 1, padding 1, no bias, written as one dense layer per image:
/// `y_b (O·hw) = M x_b (C·hw)` with `M[(o, p), (c, q)] = W[o, c, tap(p, q)]` (zero where `q` is
/// outside `p`'s window), i.e. a single GEMM `(B, C·hw) @ Mᵀ` on the NCHW tensor as it lies, with
/// no patch copies. `M` is built from `W` by a small matmul with [`tap_matrix`], so autodiff
/// carries the weight gradient back through it.
///
/// On tiny maps this is much faster than burn-flex's `conv2d`, which runs one GEMM per image with
/// N = h·w columns (4 at 2×2, 1 at 1×1) and a weight gradient that is itself a convolution; at
/// side 2 every window covers the whole map, so `M` holds exactly the useful products. The same
/// sums as a direct convolution; only the order of float additions differs.
pub fn conv3x3_dense(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    let ([b, c, h, w], o) = conv3x3_dims("conv3x3_dense", &x, &weight);
    let n = h * w;
    let t = Tensor::<1>::from_floats(tap_matrix(h, w).as_slice(), &x.device()).reshape([9, n * n]);
    // (O C, 9) @ (9, n n) -> (O, C, p, q) -> (O, p, C, q)
    let m = weight
        .reshape([o * c, 9])
        .matmul(t)
        .reshape([o, c, n, n])
        .swap_dims(1, 2)
        .reshape([o * n, c * n]);
    x.reshape([b, c * n])
        .matmul(m.transpose())
        .reshape([b, o, h, w])
}

/// 3×3 convolution, stride 1, padding 1, no bias, as im2col + one GEMM over the whole batch:
/// `W (O, 9C) @ cols (9C, B·H·W)`, the patches stacked from 9 shifted slices of the padded input
/// (channels first, so the stack is already the matrix's row-major layout). Not used by the
/// U-Net on the CPU (flex's strided copies make it slower than `conv2d` from side 4 on;
/// docs/BENCHMARKS.md), but on GPU backends for wide layers (see [`conv3x3`]).
pub fn conv3x3_im2col(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    let ([b, c, h, w], o) = conv3x3_dims("conv3x3_im2col", &x, &weight);
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
