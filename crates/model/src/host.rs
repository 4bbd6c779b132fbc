//! Operations that flex (burn's CPU backend) runs through our own host kernels, registered
//! with burn's backend-extension mechanism (`#[backend_extension]`) and given hand-written
//! backward passes for training (`Autodiff<Flex>`).
//!
//! Other backends never reach these: [`gelu`] checks the device first and otherwise calls
//! burn's own op.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{binary, unary, Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ActivationOps, FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::TensorMetadata;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, Shape, Tensor, TensorData};
use rayon::prelude::*;

use crate::fastmath;

#[backend_extension(Flex, Autodiff)]
pub trait HostKernels: Backend {
    /// Exact GELU, `0.5 x (1 + erf(x / √2))`.
    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `grad · gelu'(x)`.
    fn gelu_exact_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    /// 3×3 convolution, stride 1, zero padding 1, no bias: `x (B, C, h, w)`, `weight (O, C, 3, 3)`.
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Gradient of [`HostKernels::conv3x3`] with respect to `x`, for upstream gradient `grad`.
    fn conv3x3_input_grad(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Gradient of [`HostKernels::conv3x3`] with respect to the weight.
    fn conv3x3_weight_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    /// K stacked 3×3 convolutions (padding 1, no bias): `x (K·B, C, h, w)`, network `k` owning
    /// images `k·B .. (k+1)·B`, by `weight (K, O, 9C)` (`weight[k]` is `(O, C, 3, 3)` row-major).
    fn conv3x3_stacked(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Gradient of [`HostKernels::conv3x3_stacked`] with respect to `x`.
    fn conv3x3_stacked_input_grad(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// Gradient of [`HostKernels::conv3x3_stacked`] with respect to the weight (`weight` gives
    /// only the shape).
    fn conv3x3_stacked_weight_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weight: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// The values of a contiguous f32 flex tensor (make it so with `to_contiguous`, which copies
/// only a tensor that is not).
fn f32s(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous f32 tensor")
}

fn f32_tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl HostKernels for Flex {
    fn gelu_exact(x: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return <Flex as ActivationOps<Flex>>::gelu(x);
        }
        let x = x.to_contiguous();
        let mut y = vec![0f32; x.shape().num_elements()];
        fastmath::gelu_slice(f32s(&x), &mut y);
        f32_tensor(y, x.shape())
    }

    fn gelu_exact_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 || grad.dtype() != DType::F32 {
            return <Flex as ActivationOps<Flex>>::gelu_backward(x, grad);
        }
        let (x, g) = (x.to_contiguous(), grad.to_contiguous());
        let mut out = vec![0f32; x.shape().num_elements()];
        fastmath::gelu_backward_slice(f32s(&x), f32s(&g), &mut out);
        f32_tensor(out, x.shape())
    }

    fn conv3x3(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
            return <Flex as ModuleOps<Flex>>::conv2d(x, weight, None, pad1());
        }
        let [b, c, h, w] = dims4(&x);
        let o = dims4(&weight)[0];
        let (x, wt) = (x.to_contiguous(), weight.to_contiguous());
        let y = conv3x3_f32(f32s(&x), f32s(&wt), [b, c, h, w], o, FORWARD_COLS);
        f32_tensor(y, Shape::new([b, o, h, w]))
    }

    fn conv3x3_input_grad(weight: FlexTensor, grad: FlexTensor) -> FlexTensor {
        // dx = conv3x3(grad, W') with W'[c, o, ky, kx] = W[o, c, 2 - ky, 2 - kx]
        if weight.dtype() != DType::F32 || grad.dtype() != DType::F32 {
            // Other dtypes: the same identity through flex's own ops (as the forward falls back).
            let flipped = Flex::float_swap_dims(Flex::float_flip(weight, &[2, 3]), 0, 1);
            return <Flex as ModuleOps<Flex>>::conv2d(grad, flipped, None, pad1());
        }
        let [o, c, _, _] = dims4(&weight);
        let wt = weight.to_contiguous();
        let flipped = f32_tensor(flip_weight(f32s(&wt), o, c), Shape::new([c, o, 3, 3]));
        Self::conv3x3(grad, flipped)
    }

    fn conv3x3_weight_grad(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 || grad.dtype() != DType::F32 {
            // Other dtypes through flex's own ops: dW[o, c] = conv(x[:, c] as a batch of C
            // images of B channels, grad[:, o] as O kernels of B channels and size h x w, pad 1)
            // (the output is 3 x 3), dims 0 and 1 swapped back.
            let xt = Flex::float_swap_dims(x, 0, 1);
            let gt = Flex::float_swap_dims(grad, 0, 1);
            let dw = <Flex as ModuleOps<Flex>>::conv2d(xt, gt, None, pad1());
            return Flex::float_swap_dims(dw, 0, 1);
        }
        let [b, c, h, w] = dims4(&x);
        let o = dims4(&grad)[1];
        let (x, g) = (x.to_contiguous(), grad.to_contiguous());
        let dw = conv3x3_weight_grad_f32(f32s(&x), f32s(&g), [b, c, h, w], o, WEIGHT_GRAD_COLS);
        f32_tensor(dw, Shape::new([o, c, 3, 3]))
    }

    fn conv3x3_stacked(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        assert!(
            x.dtype() == DType::F32 && weight.dtype() == DType::F32,
            "conv3x3_stacked: f32 only"
        );
        conv3x3_stacked_f32(x, weight)
    }

    fn conv3x3_stacked_input_grad(weight: FlexTensor, grad: FlexTensor) -> FlexTensor {
        // per network: dx = conv3x3(grad, W') with the flipped kernel (see conv3x3_input_grad)
        let o = dims4(&grad)[1];
        let s = weight.shape();
        let (k, c) = (s[0], s[2] / 9);
        assert_eq!(
            s[1], o,
            "conv3x3_stacked_input_grad: weight {s:?}, gradient of {o} channels"
        );
        let wt = weight.to_contiguous();
        let ws = f32s(&wt);
        let wi = o * c * 9;
        let mut flipped = Vec::with_capacity(ws.len());
        for g in 0..k {
            flipped.extend(flip_weight(&ws[g * wi..][..wi], o, c));
        }
        conv3x3_stacked_f32(grad, f32_tensor(flipped, Shape::new([k, c, 9 * o])))
    }

    fn conv3x3_stacked_weight_grad(
        x: FlexTensor,
        grad: FlexTensor,
        weight: FlexTensor,
    ) -> FlexTensor {
        let [n, c, h, w] = dims4(&x);
        let ([k, o, _], b) = stacked_dims("conv3x3_stacked_weight_grad", n, c, &weight);
        let (x, g) = (x.to_contiguous(), grad.to_contiguous());
        let (xs, gs) = (f32s(&x), f32s(&g));
        let (xi, gi) = (b * c * h * w, b * o * h * w);
        let mut dw = Vec::with_capacity(k * o * c * 9);
        for net in 0..k {
            dw.extend(conv3x3_weight_grad_f32(
                &xs[net * xi..][..xi],
                &gs[net * gi..][..gi],
                [b, c, h, w],
                o,
                WEIGHT_GRAD_COLS,
            ));
        }
        f32_tensor(dw, Shape::new([k, o, 9 * c]))
    }
}

/// `weight (K, O, 9C)` as `[K, O, C]`, checked against `x (K·B, C, h, w)`; and `B`.
fn stacked_dims(what: &str, n: usize, c: usize, weight: &FlexTensor) -> ([usize; 3], usize) {
    let s = weight.shape();
    assert_eq!(s.num_dims(), 3, "{what}: weight {s:?} is not (K, O, 9C)");
    let (k, o, c9) = (s[0], s[1], s[2]);
    assert!(
        c9 == 9 * c && k > 0 && n.is_multiple_of(k),
        "{what}: weight {s:?} for {n} images of {c} channels"
    );
    ([k, o, c], n / k)
}

/// An `(O, C, 3, 3)` weight flipped for the input gradient: `(C, O, 3, 3)` with
/// `W'[c, o, ky, kx] = W[o, c, 2 - ky, 2 - kx]`.
fn flip_weight(ws: &[f32], o: usize, c: usize) -> Vec<f32> {
    let mut flipped = vec![0f32; ws.len()];
    for oi in 0..o {
        for ci in 0..c {
            for k in 0..9 {
                flipped[(ci * o + oi) * 9 + 8 - k] = ws[(oi * c + ci) * 9 + k];
            }
        }
    }
    flipped
}

fn conv3x3_stacked_f32(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
    let [n, c, h, w] = dims4(&x);
    let ([k, o, _], b) = stacked_dims("conv3x3_stacked", n, c, &weight);
    let (x, wt) = (x.to_contiguous(), weight.to_contiguous());
    let (xs, ws) = (f32s(&x), f32s(&wt));
    let (xi, wi) = (b * c * h * w, o * c * 9);
    let mut y = Vec::with_capacity(n * o * h * w);
    for g in 0..k {
        y.extend(conv3x3_f32(
            &xs[g * xi..][..xi],
            &ws[g * wi..][..wi],
            [b, c, h, w],
            o,
            FORWARD_COLS,
        ));
    }
    f32_tensor(y, Shape::new([n, o, h, w]))
}

fn pad1() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], 1)
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.shape();
    assert_eq!(s.num_dims(), 4, "expected a 4-d tensor, got {s:?}");
    [s[0], s[1], s[2], s[3]]
}

/// The zero-padded 3×3 patches of images `b0..b1` of `x (B, C, h, w)` as a `(9 C, (b1 - b0) h w)`
/// row-major matrix: `cols[c·9 + ky·3 + kx][(b - b0)·hw + y·w + x] = x[b, c, y + ky - 1, x + kx - 1]`,
/// 0 outside the image.
fn im2col3x3(x: &[f32], [c, h, w]: [usize; 3], (b0, b1): (usize, usize), cols: &mut [f32]) {
    let n = h * w;
    let nb = b1 - b0;
    cols.par_chunks_mut(nb * n)
        .enumerate()
        .for_each(|(r, row)| {
            let (ci, ky, kx) = (r / 9, r % 9 / 3, r % 3);
            // within one image plane, tap (ky, kx) reads the pixel `off` places away; what falls
            // outside the plane is zero, and so is the column that wraps around (x + kx - 1 < 0
            // or >= w), fixed up afterwards.
            let off = (ky * w + kx) as isize - (w + 1) as isize;
            let lo = (-off).clamp(0, n as isize) as usize; // first i with i + off >= 0
            let hi = (n as isize - off).clamp(0, n as isize) as usize; // first i with i + off >= n
            for bi in 0..nb {
                let src = &x[((b0 + bi) * c + ci) * n..][..n];
                let dst = &mut row[bi * n..][..n];
                dst[..lo].fill(0.0);
                if hi > lo {
                    let s0 = (lo as isize + off) as usize;
                    dst[lo..hi].copy_from_slice(&src[s0..s0 + (hi - lo)]);
                }
                dst[hi.max(lo)..].fill(0.0);
                match kx {
                    0 => dst.iter_mut().step_by(w).for_each(|v| *v = 0.0),
                    2 => dst[w - 1..].iter_mut().step_by(w).for_each(|v| *v = 0.0),
                    _ => {}
                }
            }
        });
}

thread_local! {
    /// Patch matrix and second buffer of [`for_each_patch_chunk`], kept between calls:
    /// a fresh 40 MB buffer per call spent more time in page faults than in copying.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// Splits the batch of `x (B, C, h, w)` into chunks of whole images, about `cols_per_chunk`
/// pixels each (at least one image), and calls `f((b0, b1), cols, other)` for each: `cols` holds
/// the chunk's `(9C, (b1 - b0)·hw)` patch matrix ([`im2col3x3`]), `other` is scratch space of
/// `other_per_image · (b1 - b0)` floats. Both live in [`SCRATCH`], reused between calls.
fn for_each_patch_chunk(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    cols_per_chunk: usize,
    other_per_image: usize,
    mut f: impl FnMut((usize, usize), &[f32], &mut [f32]),
) {
    let n = h * w;
    let chunk = (cols_per_chunk / n).clamp(1, b);
    SCRATCH.with_borrow_mut(|(cols, other)| {
        grow(cols, 9 * c * n * chunk);
        grow(other, other_per_image * chunk);
        for b0 in (0..b).step_by(chunk) {
            let b1 = (b0 + chunk).min(b);
            let cols = &mut cols[..9 * c * n * (b1 - b0)];
            im2col3x3(x, [c, h, w], (b0, b1), cols);
            f((b0, b1), cols, &mut other[..other_per_image * (b1 - b0)]);
        }
    });
}

/// GEMM columns (images × pixels) per batch chunk of [`conv3x3_f32`]: at about 1024 the
/// patch matrix stays in cache and the `gemm` crate ran at 97–130 GFLOP/s on the 2-core
/// development machine, against 36–99 GFLOP/s with the whole batch (8192 columns) in one call.
const FORWARD_COLS: usize = 1024;
/// The same for the reduction length of [`conv3x3_weight_grad_f32`].
const WEIGHT_GRAD_COLS: usize = 1024;

/// `dW[o, c, ky, kx] = Σ_{b, y, x} g[b, o, y, x] · x[b, c, y + ky - 1, x + kx - 1]` as one GEMM per
/// batch chunk, `(O, B·hw) @ (B·hw, 9C)`, over the zero-padded patches of `x`
/// (burn-flex computes this gradient as a convolution with `h×w` kernels, one image at a time).
/// `y[b, o] = Σ_c W[o, c] ⋆ x[b, c]` (3×3, zero padding 1) as one GEMM per batch chunk,
/// `W (O, 9C) @ cols (9C, B·hw)`, then a copy into NCHW order. burn-flex's `conv2d` runs one GEMM
/// per image, whose `hw` columns (16 at 4×4) are too few for the GEMM kernel to run at speed.
/// `x (B, C, h, w)` and `weight (O, C, 3, 3)` row-major; each GEMM covers about `cols` columns
/// (whole images, at least one).
fn conv3x3_f32(
    x: &[f32],
    weight: &[f32],
    [b, c, h, w]: [usize; 4],
    o: usize,
    cols_per_chunk: usize,
) -> Vec<f32> {
    let n = h * w;
    assert_eq!(x.len(), b * c * n, "conv3x3: input size");
    assert_eq!(weight.len(), o * c * 9, "conv3x3: weight size");
    let mut y = vec![0f32; b * o * n];
    if b * c * n * o == 0 {
        return y;
    }
    for_each_patch_chunk(
        x,
        [b, c, h, w],
        cols_per_chunk,
        o * n,
        |(b0, b1), cols, yt| {
            let k = (b1 - b0) * n;
            // SAFETY: dst is O x k (row stride k), lhs the O x 9C weight (row stride 9C), rhs the
            // 9C x k patch matrix (row stride k); all three buffers have exactly these sizes.
            unsafe {
                gemm::gemm(
                    o,
                    k,
                    9 * c,
                    yt.as_mut_ptr(),
                    1,
                    k as isize,
                    false,
                    weight.as_ptr(),
                    1,
                    (9 * c) as isize,
                    cols.as_ptr(),
                    1,
                    k as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(0),
                );
            }
            // (O, nb, hw) -> images b0..b1 of (B, O, hw)
            let yt = &*yt;
            y[b0 * o * n..b1 * o * n]
                .par_chunks_mut(o * n)
                .enumerate()
                .for_each(|(bi, img)| {
                    for (oi, row) in img.chunks_mut(n).enumerate() {
                        row.copy_from_slice(&yt[oi * k + bi * n..][..n]);
                    }
                });
        },
    );
    y
}

/// Each GEMM sums over about `cols_per_chunk` columns (whole images, at least one).
fn conv3x3_weight_grad_f32(
    x: &[f32],
    g: &[f32],
    [b, c, h, w]: [usize; 4],
    o: usize,
    cols_per_chunk: usize,
) -> Vec<f32> {
    let n = h * w;
    assert_eq!(x.len(), b * c * n, "conv3x3_weight_grad: input size");
    assert_eq!(g.len(), b * o * n, "conv3x3_weight_grad: gradient size");
    let mut dw = vec![0f32; o * 9 * c];
    if b * c * n * o == 0 {
        return dw;
    }
    for_each_patch_chunk(
        x,
        [b, c, h, w],
        cols_per_chunk,
        o * n,
        |(b0, b1), cols, gt| {
            let k = (b1 - b0) * n;
            // g's images b0..b1, (nb, O, hw) -> (O, nb·hw)
            gt.par_chunks_mut(k).enumerate().for_each(|(oi, row)| {
                for bi in 0..b1 - b0 {
                    row[bi * n..][..n].copy_from_slice(&g[((b0 + bi) * o + oi) * n..][..n]);
                }
            });
            // SAFETY: dst is O x 9C (row stride 9C), lhs O x k (row stride k), rhs k x 9C read from
            // the 9C x k patch matrix (column stride k); all three buffers have exactly these sizes.
            unsafe {
                gemm::gemm(
                    o,
                    9 * c,
                    k,
                    dw.as_mut_ptr(),
                    1,
                    (9 * c) as isize,
                    b0 > 0,
                    gt.as_ptr(),
                    1,
                    k as isize,
                    cols.as_ptr(),
                    k as isize,
                    1,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(0),
                );
            }
        },
    );
    dw
}

impl<B: HostKernels, C: CheckpointStrategy> HostKernels for Autodiff<B, C> {
    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct GeluExact;

        impl<B: HostKernels> Backward<B, 1> for GeluExact {
            // the input, kept for the derivative
            type State = FloatTensor<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let x = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::gelu_exact_backward(x, grad)
                });
            }
        }

        let (x, node) = x.into_parts();
        match GeluExact.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(x.clone(), B::gelu_exact(x)),
            OpsKind::UnTracked(prep) => prep.finish(B::gelu_exact(x)),
        }
    }

    fn gelu_exact_backward(_x: FloatTensor<Self>, _grad: FloatTensor<Self>) -> FloatTensor<Self> {
        unreachable!("gelu_exact_backward is only called on the inner backend")
    }

    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Conv3x3;

        impl<B: HostKernels> Backward<B, 2> for Conv3x3 {
            // the input and the weight
            type State = (FloatTensor<B>, FloatTensor<B>);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let (x, w) = ops.state;
                binary::<B, _, _>(
                    ops.parents,
                    ops.node,
                    grads,
                    |grad| B::conv3x3_input_grad(w, grad),
                    |grad| B::conv3x3_weight_grad(x, grad),
                );
            }
        }

        let (x, x_node) = x.into_parts();
        let (w, w_node) = weight.into_parts();
        match Conv3x3
            .prepare::<C>([x_node, w_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x.clone(), w.clone()), B::conv3x3(x, w)),
            OpsKind::UnTracked(prep) => prep.finish(B::conv3x3(x, w)),
        }
    }

    fn conv3x3_input_grad(_w: FloatTensor<Self>, _grad: FloatTensor<Self>) -> FloatTensor<Self> {
        unreachable!("conv3x3_input_grad is only called on the inner backend")
    }

    fn conv3x3_weight_grad(_x: FloatTensor<Self>, _grad: FloatTensor<Self>) -> FloatTensor<Self> {
        unreachable!("conv3x3_weight_grad is only called on the inner backend")
    }

    fn conv3x3_stacked(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Conv3x3Stacked;

        impl<B: HostKernels> Backward<B, 2> for Conv3x3Stacked {
            // the input and the weight
            type State = (FloatTensor<B>, FloatTensor<B>);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let (x, w) = ops.state;
                let w2 = w.clone();
                binary::<B, _, _>(
                    ops.parents,
                    ops.node,
                    grads,
                    |grad| B::conv3x3_stacked_input_grad(w, grad),
                    |grad| B::conv3x3_stacked_weight_grad(x, grad, w2),
                );
            }
        }

        let (x, x_node) = x.into_parts();
        let (w, w_node) = weight.into_parts();
        match Conv3x3Stacked
            .prepare::<C>([x_node, w_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x.clone(), w.clone()), B::conv3x3_stacked(x, w)),
            OpsKind::UnTracked(prep) => prep.finish(B::conv3x3_stacked(x, w)),
        }
    }

    fn conv3x3_stacked_input_grad(
        _w: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        unreachable!("conv3x3_stacked_input_grad is only called on the inner backend")
    }

    fn conv3x3_stacked_weight_grad(
        _x: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
        _w: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        unreachable!("conv3x3_stacked_weight_grad is only called on the inner backend")
    }
}

/// Whether `device` (autodiff or not) is flex, the backend these kernels serve.
pub fn is_flex(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

/// 3×3 convolution (stride 1, zero padding 1, no bias) on flex, `x (B, C, h, w)` by
/// `weight (O, C, 3, 3)`, through [`HostKernels::conv3x3`]: forward, input gradient (the
/// convolution of the upstream gradient with the flipped kernel) and weight gradient as batched
/// im2col + GEMM on the host. Panics on other backends.
pub fn conv3x3_host(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    assert!(is_flex(&x.device()), "conv3x3_host runs on flex only");
    Tensor::from_dispatch(<Dispatch as HostKernels>::conv3x3(
        x.into_dispatch(),
        weight.into_dispatch(),
    ))
}

/// K stacked 3×3 convolutions on flex through [`HostKernels::conv3x3_stacked`]: `x (K·B, C, h,
/// w)` by `weight (K, O, 9C)`, one im2col + GEMM per network (forward and both gradients), each
/// the very computation [`conv3x3_host`] does for that network alone.
pub fn conv3x3_stacked_host(x: Tensor<4>, weight: Tensor<3>) -> Tensor<4> {
    assert!(
        is_flex(&x.device()),
        "conv3x3_stacked_host runs on flex only"
    );
    Tensor::from_dispatch(<Dispatch as HostKernels>::conv3x3_stacked(
        x.into_dispatch(),
        weight.into_dispatch(),
    ))
}

/// Exact GELU: on flex through [`HostKernels::gelu_exact`] (vectorised, multi-threaded), on
/// every other backend burn's `gelu`. The same function either way.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if is_flex(&x.device()) {
        Tensor::from_dispatch(<Dispatch as HostKernels>::gelu_exact(x.into_dispatch()))
    } else {
        burn::tensor::activation::gelu(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: FlexTensor) -> Vec<f64> {
        let d = t.into_data();
        match d.dtype() {
            DType::F64 => d.try_to_vec::<f64>().unwrap(),
            _ => d
                .try_to_vec::<f32>()
                .unwrap()
                .into_iter()
                .map(|v| v as f64)
                .collect(),
        }
    }

    /// The backward kernels fall back for dtypes other than f32 (as the forward does) and give
    /// the f32 host kernels' numbers.
    #[test]
    fn backward_falls_back_for_f64() {
        let (b, c, o, h, w) = (2, 3, 4, 5, 4);
        let x: Vec<f64> = (0..b * c * h * w)
            .map(|i| (i * 37 % 101) as f64 / 50.0 - 1.0)
            .collect();
        let wt: Vec<f64> = (0..o * c * 9)
            .map(|i| (i * 53 % 89) as f64 / 44.0 - 1.0)
            .collect();
        let g: Vec<f64> = (0..b * o * h * w)
            .map(|i| (i * 29 % 97) as f64 / 48.0 - 1.0)
            .collect();
        let t64 = |v: &[f64], s: [usize; 4]| {
            FlexTensor::from_data(TensorData::new(v.to_vec(), Shape::new(s)))
        };
        let t32 = |v: &[f64], s: [usize; 4]| {
            let v: Vec<f32> = v.iter().map(|&a| a as f32).collect();
            f32_tensor(v, Shape::new(s))
        };
        let (xs, ws, gs) = ([b, c, h, w], [o, c, 3, 3], [b, o, h, w]);
        let pairs = [
            (
                Flex::conv3x3_input_grad(t64(&wt, ws), t64(&g, gs)),
                Flex::conv3x3_input_grad(t32(&wt, ws), t32(&g, gs)),
            ),
            (
                Flex::conv3x3_weight_grad(t64(&x, xs), t64(&g, gs)),
                Flex::conv3x3_weight_grad(t32(&x, xs), t32(&g, gs)),
            ),
        ];
        for (k, (a, f)) in pairs.into_iter().enumerate() {
            assert_eq!(a.dtype(), DType::F64);
            assert_eq!(a.shape(), f.shape(), "kernel {k}");
            for (p, q) in values(a).iter().zip(values(f)) {
                assert!(
                    (p - q).abs() < 1e-4 * (1.0 + q.abs()),
                    "kernel {k}: {p} vs {q}"
                );
            }
        }
    }

    /// The convolution equals the direct f64 sum, whole batch at once or in chunks.
    #[test]
    fn convolution_is_the_direct_sum_in_any_chunking() {
        let (b, c, o, h, w) = (5, 3, 4, 4, 3);
        let x: Vec<f32> = (0..b * c * h * w)
            .map(|i| (i * 37 % 101) as f32 / 50.0 - 1.0)
            .collect();
        let wt: Vec<f32> = (0..o * c * 9)
            .map(|i| (i * 53 % 89) as f32 / 44.0 - 1.0)
            .collect();
        let mut want = vec![0f64; b * o * h * w];
        for bi in 0..b {
            for oi in 0..o {
                for y in 0..h {
                    for xx in 0..w {
                        let mut acc = 0f64;
                        for ci in 0..c {
                            for k in 0..9 {
                                let (yy, xi) = (y + k / 3, xx + k % 3);
                                if yy < 1 || xi < 1 || yy > h || xi > w {
                                    continue;
                                }
                                acc += wt[(oi * c + ci) * 9 + k] as f64
                                    * x[((bi * c + ci) * h + yy - 1) * w + xi - 1] as f64;
                            }
                        }
                        want[((bi * o + oi) * h + y) * w + xx] = acc;
                    }
                }
            }
        }
        // whole batch, one image per chunk, two per chunk (the last one shorter)
        for cols in [usize::MAX, 1, 2 * h * w] {
            let got = conv3x3_f32(&x, &wt, [b, c, h, w], o, cols);
            for (p, q) in got.iter().zip(&want) {
                assert!((*p as f64 - q).abs() < 1e-5, "{cols} columns: {p} vs {q}");
            }
        }
    }

    /// The weight gradient equals the direct f64 sum, whole batch at once or one image per chunk.
    #[test]
    fn weight_gradient_is_the_direct_sum_in_any_chunking() {
        let (b, c, o, h, w) = (5, 3, 4, 4, 3);
        let x: Vec<f32> = (0..b * c * h * w)
            .map(|i| (i * 37 % 101) as f32 / 50.0 - 1.0)
            .collect();
        let g: Vec<f32> = (0..b * o * h * w)
            .map(|i| (i * 53 % 89) as f32 / 44.0 - 1.0)
            .collect();
        let mut want = vec![0f64; o * c * 9];
        for bi in 0..b {
            for oi in 0..o {
                for ci in 0..c {
                    for k in 0..9 {
                        let (ky, kx) = (k / 3, k % 3);
                        for y in 0..h {
                            for xx in 0..w {
                                let (yy, xi) = (y + ky, xx + kx);
                                if yy < 1 || xi < 1 || yy > h || xi > w {
                                    continue;
                                }
                                want[(oi * c + ci) * 9 + k] += g[((bi * o + oi) * h + y) * w + xx]
                                    as f64
                                    * x[((bi * c + ci) * h + yy - 1) * w + xi - 1] as f64;
                            }
                        }
                    }
                }
            }
        }
        for cols in [usize::MAX, 1, 2 * h * w] {
            let got = conv3x3_weight_grad_f32(&x, &g, [b, c, h, w], o, cols);
            for (p, q) in got.iter().zip(&want) {
                assert!((*p as f64 - q).abs() < 1e-5, "{cols} columns: {p} vs {q}");
            }
        }
    }
}
