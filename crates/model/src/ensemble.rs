//! K independent U-Nets run as one network ([`EnsembleUNet`]): every layer holds the K networks'
//! parameters stacked on a leading axis and runs all K in one call, so a step of K tiny networks
//! pays the per-op overhead once instead of K times (the field's `vmap` over stacked module
//! states).
//!
//! Layout: the K networks' batches are stacked on the batch axis, `(K·B, C, h, w)`, network `k`
//! owning images `k·B .. (k+1)·B`; every network sees the same batch size `B`. Parameter `i` of
//! the ensemble has shape `(K, ...)` and its `k`-th slice holds, in the same row-major order, the
//! values of parameter `i` of network `k` as a [`UNet`] (same visiting order; convolution weights
//! `(O, C, 3, 3)` stored as `(K, O, 9C)`, the output 1×1 convolution `(c, b, 1, 1)` as `(K, c, b)`).
//!
//! Every operation treats network `k`'s slice the same way whatever K is (per-network GEMMs of the
//! same shapes, per-image or per-token norms, per-network reductions), so network `k`'s numbers do
//! not depend on K or on which networks share its batch. They match a [`UNet`] run alone up to
//! float rounding: the norms and the affine layers are written here (burn's fused `layer_norm` and
//! `GroupNorm` differ in summation order) and the deepest 3×3 convolutions go through the im2col
//! kernel where the single network multiplies by the centre tap.

use crate::{gelu, pos_encoding, upsample2x, ModelError, UNetConfig};
use burn::module::{Module, Param};
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Int, Tensor};

const NORM_EPS: f64 = 1e-5;

fn zeros<const D: usize>(shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::zeros(shape, device))
}

/// K stacked 3×3 convolutions (padding 1, no bias), weight `(K, O, 9C)`.
#[derive(Module, Debug)]
pub struct EConv3 {
    pub weight: Param<Tensor<3>>,
}

impl EConv3 {
    fn new(k: usize, i: usize, o: usize, device: &Device) -> Self {
        Self {
            weight: zeros([k, o, 9 * i], device),
        }
    }

    /// `x (K·B, C, h, w)` → `(K·B, O, h, w)`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv3x3_stacked(x, self.weight.val())
    }
}

/// Network `k` of `x (K·B, C, h, w)` convolved with `weight[k] (O, C, 3, 3)` (stored `(K, O, 9C)`):
/// on flex the host kernel, one im2col + GEMM per network; elsewhere burn's grouped `conv2d`.
pub fn conv3x3_stacked(x: Tensor<4>, weight: Tensor<3>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if crate::host::is_flex(&x.device()) {
        return crate::host::conv3x3_stacked_host(x, weight);
    }
    let [n, c, h, w] = x.dims();
    let [k, o, _] = weight.dims();
    let b = n / k;
    let xg = x
        .reshape([k, b, c, h, w])
        .swap_dims(0, 1)
        .reshape([b, k * c, h, w]);
    let wg = weight.reshape([k * o, c, 3, 3]);
    let y = burn::tensor::module::conv2d(xg, wg, None, ConvOptions::new([1, 1], [1, 1], [1, 1], k));
    y.reshape([b, k, o, h, w])
        .swap_dims(0, 1)
        .reshape([n, o, h, w])
}

/// `(x − mean) / √(var + ε)` along the last axis (biased variance), by burn's fused layer norm
/// with unit weight and no bias: one op forward and one backward, row by row.
fn normalise_rows<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let d = x.dims()[D - 1];
    let ones = Tensor::<1>::ones([d], &x.device());
    burn::tensor::module::layer_norm(x, ones, None, NORM_EPS)
}

/// K stacked GroupNorm(1, C): each image normalised over (C, h, w), then network `k`'s
/// per-channel affine.
#[derive(Module, Debug)]
pub struct EGroupNorm1 {
    pub gamma: Param<Tensor<2>>,
    pub beta: Param<Tensor<2>>,
}

impl EGroupNorm1 {
    fn new(k: usize, c: usize, device: &Device) -> Self {
        Self {
            gamma: zeros([k, c], device),
            beta: zeros([k, c], device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let k = self.gamma.dims()[0];
        let xhat = normalise_rows(x.reshape([n, c * h * w]));
        let g = self.gamma.val().reshape([k, 1, c, 1]);
        let bta = self.beta.val().reshape([k, 1, c, 1]);
        (xhat.reshape([k, n / k, c, h * w]) * g + bta).reshape([n, c, h, w])
    }
}

/// K stacked LayerNorms over the last axis of tokens `(K·B, L, h)`.
#[derive(Module, Debug)]
pub struct ELayerNorm {
    pub gamma: Param<Tensor<2>>,
    pub beta: Param<Tensor<2>>,
}

impl ELayerNorm {
    fn new(k: usize, h: usize, device: &Device) -> Self {
        Self {
            gamma: zeros([k, h], device),
            beta: zeros([k, h], device),
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [n, l, h] = x.dims();
        let k = self.gamma.dims()[0];
        let xhat = normalise_rows(x);
        let g = self.gamma.val().reshape([k, 1, h]);
        let bta = self.beta.val().reshape([k, 1, h]);
        (xhat.reshape([k, n / k * l, h]) * g + bta).reshape([n, l, h])
    }
}

/// K stacked linear layers, weight `(K, in, out)`, bias `(K, out)`, on tokens `(K·B, L, in)`.
#[derive(Module, Debug)]
pub struct ELinear {
    pub weight: Param<Tensor<3>>,
    pub bias: Param<Tensor<2>>,
}

impl ELinear {
    fn new(k: usize, i: usize, o: usize, device: &Device) -> Self {
        Self {
            weight: zeros([k, i, o], device),
            bias: zeros([k, o], device),
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [n, l, i] = x.dims();
        let [k, _, o] = self.weight.dims();
        let y = x.reshape([k, n / k * l, i]).matmul(self.weight.val())
            + self.bias.val().reshape([k, 1, o]);
        y.reshape([n, l, o])
    }
}

/// `DoubleConv` of K networks (see [`crate::DoubleConv`]).
#[derive(Module, Debug)]
pub struct EDoubleConv {
    pub conv1: EConv3,
    pub norm1: EGroupNorm1,
    pub conv2: EConv3,
    pub norm2: EGroupNorm1,
    pub residual: bool,
}

impl EDoubleConv {
    fn new(k: usize, i: usize, o: usize, m: usize, residual: bool, device: &Device) -> Self {
        Self {
            conv1: EConv3::new(k, i, m, device),
            norm1: EGroupNorm1::new(k, m, device),
            conv2: EConv3::new(k, m, o, device),
            norm2: EGroupNorm1::new(k, o, device),
            residual,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = gelu(self.norm1.forward(self.conv1.forward(x.clone())));
        let h = self.norm2.forward(self.conv2.forward(h));
        if self.residual {
            gelu(x + h)
        } else {
            h
        }
    }
}

/// `Down` of K networks.
#[derive(Module, Debug)]
pub struct EDown {
    pub conv_a: EDoubleConv,
    pub conv_b: EDoubleConv,
}

impl EDown {
    fn new(k: usize, i: usize, o: usize, device: &Device) -> Self {
        Self {
            conv_a: EDoubleConv::new(k, i, i, i, true, device),
            conv_b: EDoubleConv::new(k, i, o, o, false, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = max_pool2d(x, MaxPoolOptions::new([2, 2]));
        self.conv_b.forward(self.conv_a.forward(x))
    }
}

/// `Up` of K networks.
#[derive(Module, Debug)]
pub struct EUp {
    pub conv_a: EDoubleConv,
    pub conv_b: EDoubleConv,
}

impl EUp {
    fn new(k: usize, i: usize, o: usize, device: &Device) -> Self {
        Self {
            conv_a: EDoubleConv::new(k, i, i, i, true, device),
            conv_b: EDoubleConv::new(k, i, o, i / 2, false, device),
        }
    }

    pub fn forward(&self, deep: Tensor<4>, skip: Tensor<4>) -> Tensor<4> {
        let x = Tensor::cat(vec![skip, upsample2x(deep)], 1);
        self.conv_b.forward(self.conv_a.forward(x))
    }
}

/// 4-head self-attention of K networks (see [`crate::Mha`]).
#[derive(Module, Debug)]
pub struct EMha {
    pub in_proj: ELinear,
    pub out_proj: ELinear,
    pub heads: usize,
}

impl EMha {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.out_proj
            .forward(crate::attend(self.in_proj.forward(x), self.heads))
    }
}

/// `SelfAttention` of K networks (see [`crate::SelfAttention`]).
#[derive(Module, Debug)]
pub struct ESelfAttention {
    pub ln: ELayerNorm,
    pub mha: EMha,
    pub ff_ln: ELayerNorm,
    pub ff_1: ELinear,
    pub ff_2: ELinear,
}

impl ESelfAttention {
    fn new(k: usize, h: usize, device: &Device) -> Self {
        Self {
            ln: ELayerNorm::new(k, h, device),
            mha: EMha {
                in_proj: ELinear::new(k, h, 3 * h, device),
                out_proj: ELinear::new(k, h, h, device),
                heads: 4,
            },
            ff_ln: ELayerNorm::new(k, h, device),
            ff_1: ELinear::new(k, h, h, device),
            ff_2: ELinear::new(k, h, h, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, hh, ww] = x.dims();
        let tok = x.reshape([b, c, hh * ww]).swap_dims(1, 2);
        let a = self.mha.forward(self.ln.forward(tok.clone())) + tok;
        let f = self
            .ff_2
            .forward(gelu(self.ff_1.forward(self.ff_ln.forward(a.clone()))));
        (f + a).swap_dims(1, 2).reshape([b, c, hh, ww])
    }
}

/// The output 1×1 convolution with bias of K networks: weight `(K, c, b)`, bias `(K, c)`.
#[derive(Module, Debug)]
pub struct EConv1 {
    pub weight: Param<Tensor<3>>,
    pub bias: Param<Tensor<2>>,
}

impl EConv1 {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, ci, h, w] = x.dims();
        let [k, co, _] = self.weight.dims();
        let b = n / k;
        let y = self
            .weight
            .val()
            .reshape([k, 1, co, ci])
            .matmul(x.reshape([k, b, ci, h * w]))
            + self.bias.val().reshape([k, 1, co, 1]);
        y.reshape([n, co, h, w])
    }
}

/// K U-Nets of one shape as one network (module docs).
#[derive(Module, Debug)]
pub struct EnsembleUNet {
    pub inc: EDoubleConv,
    pub down1: EDown,
    pub down2: EDown,
    pub sa1: ESelfAttention,
    pub down3: EDown,
    pub sa2: ESelfAttention,
    pub up1: EUp,
    pub sa3: ESelfAttention,
    pub up2: EUp,
    pub up3: EUp,
    pub outc: EConv1,
    pub base_channels: usize,
    pub channels: usize,
    pub px: usize,
    pub k: usize,
}

impl EnsembleUNet {
    /// K networks of shape `cfg`, every parameter zero (fill them with the K networks' values).
    pub fn zeros(cfg: &UNetConfig, k: usize, device: &Device) -> Result<Self, ModelError> {
        cfg.validate()?;
        assert!(k >= 1, "an ensemble needs at least one network");
        let (b, c, px) = (cfg.base_channels, cfg.channels, cfg.px);
        Ok(Self {
            inc: EDoubleConv::new(k, c, b, b, false, device),
            down1: EDown::new(k, b, 2 * b, device),
            down2: EDown::new(k, 2 * b, 4 * b, device),
            sa1: ESelfAttention::new(k, 4 * b, device),
            down3: EDown::new(k, 4 * b, 4 * b, device),
            sa2: ESelfAttention::new(k, 4 * b, device),
            up1: EUp::new(k, 8 * b, 2 * b, device),
            sa3: ESelfAttention::new(k, 2 * b, device),
            up2: EUp::new(k, 4 * b, b, device),
            up3: EUp::new(k, 2 * b, b, device),
            outc: EConv1 {
                weight: zeros([k, c, b], device),
                bias: zeros([k, c], device),
            },
            base_channels: b,
            channels: c,
            px,
            k,
        })
    }

    pub fn config(&self) -> UNetConfig {
        UNetConfig::new(self.px, self.channels, self.base_channels)
    }

    /// `x (K·B, C, px, px)`, network `k` owning images `k·B .. (k+1)·B`; `t` the step per image.
    /// Returns the predicted noise, same shape as `x`.
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1, Int>) -> Tensor<4> {
        let n = x.dims()[0];
        assert!(
            n.is_multiple_of(self.k),
            "ensemble of {} networks: batch of {n} images is not K equal batches",
            self.k
        );
        let t = t.float();
        let b = self.base_channels;
        let x1 = self.inc.forward(x);
        let x2 = self.down1.forward(x1.clone()) + pos_encoding(t.clone(), 2 * b);
        let x3 = self
            .sa1
            .forward(self.down2.forward(x2.clone()) + pos_encoding(t.clone(), 4 * b));
        let x4 = self
            .sa2
            .forward(self.down3.forward(x3.clone()) + pos_encoding(t.clone(), 4 * b));
        let y = self
            .sa3
            .forward(self.up1.forward(x4, x3) + pos_encoding(t.clone(), 2 * b));
        let y = self.up2.forward(y, x2) + pos_encoding(t.clone(), b);
        let y = self.up3.forward(y, x1) + pos_encoding(t, b);
        self.outc.forward(y)
    }
}
