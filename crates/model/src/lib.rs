//! The papers' DDPM U-Net (docs/METHOD.md §3) in burn, module for module the network of
//! `../shared/bench/torch_ref.py`: `DoubleConv`, `Down`, `Up` (bilinear ×2, align corners),
//! 4-head self-attention with no dropout, and the sinusoidal time encoding added per resolution.
//!
//! ```text
//! x1 = inc(x)                                   DoubleConv(c, b)
//! x2 = down1(x1) + pos(t, 2b, px/2)             Down(b, 2b)
//! x3 = sa1(down2(x2) + pos(t, 4b, px/4))        Down(2b, 4b), SA(4b)
//! x4 = sa2(down3(x3) + pos(t, 4b, px/8))        Down(4b, 4b), SA(4b)
//! y  = sa3(up1(x4, x3) + pos(t, 2b, px/4))      Up(8b, 2b),  SA(2b)
//! y  = up2(y, x2) + pos(t, b, px/2)             Up(4b, b)
//! y  = up3(y, x1) + pos(t, b, px)               Up(2b, b)
//! out = outc(y)                                 Conv1x1(b -> c), bias
//! ```
//! With `b = 64` and one image channel this has 12,919,041 trainable parameters at every `px`.
//!
//! Field names follow torch_ref.py's module names (`inc.conv1.weight`, `down2.conv_b.norm2.gamma`,
//! ...); `memdiff export` maps the few that differ (`gamma`/`beta`, the attention projections, the
//! feed-forward `Sequential` indices) to PyTorch's names.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::nn::{GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::module::{interpolate, max_pool2d};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, MaxPoolOptions};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

pub mod ensemble;
pub mod fastmath;
#[cfg(feature = "flex")]
pub mod host;
pub mod init;
mod ops;
pub use ensemble::{conv3x3_stacked, EnsembleUNet};
pub use ops::{
    conv3x3_dense, conv3x3_im2col, gelu, is_cpu, upsample_matrix, DENSE_MAX_SIDE, DENSE_MIN_BATCH,
    IM2COL_MIN_CHANNELS, IM2COL_MIN_SIDE,
};

/// Why a U-Net cannot be built with the asked shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("image side px = {0} is not a positive multiple of 8 (the U-Net halves it three times; use 8, 16, 32, ... or resize/pad the data)")]
    BadPx(usize),
    #[error("base_channels = {0} must be an even number >= 2 (the attention blocks split 2 x base_channels over 4 heads)")]
    BadBase(usize),
    #[error("image channels = {0} must be >= 1")]
    BadChannels(usize),
}

/// Shape of the U-Net. `UNetConfig { px: 8, channels: 1, base_channels: 64 }` is the papers'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetConfig {
    /// Image side (a multiple of 8).
    pub px: usize,
    /// Image channels (1 for MNIST and the GMMs).
    pub channels: usize,
    /// Base width `b` (64 in the papers).
    pub base_channels: usize,
}

impl Default for UNetConfig {
    fn default() -> Self {
        Self {
            px: 8,
            channels: 1,
            base_channels: 64,
        }
    }
}

impl UNetConfig {
    pub fn new(px: usize, channels: usize, base_channels: usize) -> Self {
        Self {
            px,
            channels,
            base_channels,
        }
    }

    /// Checks the shape without building anything.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.px == 0 || !self.px.is_multiple_of(8) {
            return Err(ModelError::BadPx(self.px));
        }
        // 4 heads over b channels (up2/up3 have no attention, but sa3 runs on 2b, sa1/sa2 on 4b);
        // an odd b would give an odd time-encoding width b at up2/up3.
        if self.base_channels < 2 || !self.base_channels.is_multiple_of(2) {
            return Err(ModelError::BadBase(self.base_channels));
        }
        if self.channels == 0 {
            return Err(ModelError::BadChannels(self.channels));
        }
        Ok(())
    }

    /// Builds a U-Net on `device` with PyTorch's default initialisation drawn from `seed`
    /// alone (see [`init::pytorch_init`]): the same seed gives the same weights on every
    /// backend and whatever else uses the device's RNG at the same time.
    pub fn init_seeded(&self, device: &Device, seed: u64) -> Result<UNet, ModelError> {
        Ok(init::pytorch_init(self.init(device)?, seed))
    }

    /// Builds a U-Net on `device` initialised by burn's device RNG (`device.seed(..)`, global
    /// state shared by everything on the device). Prefer [`UNetConfig::init_seeded`].
    pub fn init(&self, device: &Device) -> Result<UNet, ModelError> {
        self.validate()?;
        let b = self.base_channels;
        let c = self.channels;
        let px = self.px;
        Ok(UNet {
            inc: DoubleConv::new(c, b, b, false, device),
            down1: Down::new(b, 2 * b, device),
            down2: Down::new(2 * b, 4 * b, device),
            sa1: SelfAttention::new(4 * b, device),
            down3: Down::new(4 * b, 4 * b, device),
            sa2: SelfAttention::new(4 * b, device),
            up1: Up::new(8 * b, 2 * b, px / 8, device),
            sa3: SelfAttention::new(2 * b, device),
            up2: Up::new(4 * b, b, px / 4, device),
            up3: Up::new(2 * b, b, px / 2, device),
            outc: Conv2dConfig::new([b, c], [1, 1])
                .with_bias(true)
                .init(device),
            base_channels: b,
            channels: c,
            px,
        })
    }
}

/// `DoubleConv(i, o, m, residual)`: Conv3x3(i→m, no bias) → GroupNorm(1, m) → GELU →
/// Conv3x3(m→o, no bias) → GroupNorm(1, o); residual: `gelu(x + that)`.
#[derive(Module, Debug)]
pub struct DoubleConv {
    pub conv1: Conv2d,
    pub norm1: GroupNorm,
    pub conv2: Conv2d,
    pub norm2: GroupNorm,
    pub residual: bool,
}

fn conv3x3(i: usize, o: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}

impl DoubleConv {
    fn new(i: usize, o: usize, m: usize, residual: bool, device: &Device) -> Self {
        Self {
            conv1: conv3x3(i, m, device),
            norm1: GroupNormConfig::new(1, m).init(device),
            conv2: conv3x3(m, o, device),
            norm2: GroupNormConfig::new(1, o).init(device),
            residual,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = ops::group_norm1(ops::conv3x3(&self.conv1, x.clone()), &self.norm1);
        let h = gelu(h);
        let h = ops::group_norm1(ops::conv3x3(&self.conv2, h), &self.norm2);
        if self.residual {
            gelu(x + h)
        } else {
            h
        }
    }
}

/// `Down(i, o)`: MaxPool 2 → DoubleConv(i, i, residual) → DoubleConv(i, o).
#[derive(Module, Debug)]
pub struct Down {
    pub conv_a: DoubleConv,
    pub conv_b: DoubleConv,
}

impl Down {
    fn new(i: usize, o: usize, device: &Device) -> Self {
        Self {
            conv_a: DoubleConv::new(i, i, i, true, device),
            conv_b: DoubleConv::new(i, o, o, false, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = max_pool2d(x, MaxPoolOptions::new([2, 2]));
        self.conv_b.forward(self.conv_a.forward(x))
    }
}

/// `Up(i, o)`: bilinear ×2 upsampling (align corners) of the deeper input, `cat([skip, up])` on
/// channels, DoubleConv(i, i, residual) → DoubleConv(i, o, m = i / 2).
#[derive(Module, Debug)]
pub struct Up {
    pub conv_a: DoubleConv,
    pub conv_b: DoubleConv,
    /// Side of the deeper input (the upsampled map has twice this side).
    pub side_in: usize,
}

impl Up {
    fn new(i: usize, o: usize, side_in: usize, device: &Device) -> Self {
        Self {
            conv_a: DoubleConv::new(i, i, i, true, device),
            conv_b: DoubleConv::new(i, o, i / 2, false, device),
            side_in,
        }
    }

    pub fn forward(&self, deep: Tensor<4>, skip: Tensor<4>) -> Tensor<4> {
        let up = upsample2x(deep);
        let x = Tensor::cat(vec![skip, up], 1);
        self.conv_b.forward(self.conv_a.forward(x))
    }
}

/// Bilinear ×2 upsampling with `align_corners = true` (PyTorch `nn.Upsample(scale_factor=2,
/// mode="bilinear", align_corners=True)`).
pub fn upsample2x(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if ops::USE_MATMUL_UPSAMPLE {
        ops::upsample2x_matmul(x)
    } else {
        interpolate(
            x,
            InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(true)
                .with_output_size([2 * h, 2 * w]),
        )
    }
}

/// Multi-head attention as PyTorch's `nn.MultiheadAttention(h, 4, batch_first=True)`: one input
/// projection for q, k, v (`in_proj`, h → 3h, bias), scores scaled by `1/sqrt(head_dim)`,
/// softmax, no dropout, output projection (`out_proj`, bias).
#[derive(Module, Debug)]
pub struct Mha {
    pub in_proj: Linear,
    pub out_proj: Linear,
    pub heads: usize,
}

impl Mha {
    fn new(h: usize, heads: usize, device: &Device) -> Self {
        Self {
            in_proj: LinearConfig::new(h, 3 * h).init(device),
            out_proj: LinearConfig::new(h, h).init(device),
            heads,
        }
    }

    /// `x`: tokens `(B, L, h)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.out_proj
            .forward(attend(self.in_proj.forward(x), self.heads))
    }
}

/// The attention of `heads` heads given the input projection `qkv` `(B, L, 3h)` of tokens: the
/// context `(B, L, h)`, before the output projection (scores scaled by `1/sqrt(head_dim)`,
/// softmax, no dropout).
pub(crate) fn attend(qkv: Tensor<3>, heads: usize) -> Tensor<3> {
    let [b, l, h3] = qkv.dims();
    let h = h3 / 3;
    if l == 1 {
        // One key: its softmax weight is exactly 1, so the context is v (bitwise the same
        // result as the general path, without the score matmuls).
        return qkv.slice([0..b, 0..1, 2 * h..3 * h]);
    }
    let dk = h / heads;
    // (B, L, 3, nh, dk) -> (3, B, nh, L, dk)
    let qkv = qkv.reshape([b, l, 3, heads, dk]).permute([2, 0, 3, 1, 4]);
    let q: Tensor<4> = qkv.clone().narrow(0, 0, 1).reshape([b, heads, l, dk]);
    let k: Tensor<4> = qkv.clone().narrow(0, 1, 1).reshape([b, heads, l, dk]);
    let v: Tensor<4> = qkv.narrow(0, 2, 1).reshape([b, heads, l, dk]);
    let scores = q
        .mul_scalar(1.0 / (dk as f64).sqrt())
        .matmul(k.swap_dims(2, 3));
    let w = softmax(scores, 3);
    w.matmul(v).swap_dims(1, 2).reshape([b, l, h])
}

/// `SelfAttention(h)`: on tokens `(B, H*W, h)`: `a = MHA(LN(x)) + x`;
/// `out = (LN → Linear → GELU → Linear)(a) + a`.
#[derive(Module, Debug)]
pub struct SelfAttention {
    pub ln: LayerNorm,
    pub mha: Mha,
    pub ff_ln: LayerNorm,
    pub ff_1: Linear,
    pub ff_2: Linear,
}

impl SelfAttention {
    fn new(h: usize, device: &Device) -> Self {
        Self {
            ln: LayerNormConfig::new(h).init(device),
            mha: Mha::new(h, 4, device),
            ff_ln: LayerNormConfig::new(h).init(device),
            ff_1: LinearConfig::new(h, h).init(device),
            ff_2: LinearConfig::new(h, h).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, hh, ww] = x.dims();
        let tok = x.reshape([b, c, hh * ww]).swap_dims(1, 2);
        let a = self.mha.forward(self.ln.forward(tok.clone())) + tok;
        let f = self
            .ff_2
            .forward(gelu(self.ff_1.forward(self.ff_ln.forward(a.clone()))));
        let out = f + a;
        out.swap_dims(1, 2).reshape([b, c, hh, ww])
    }
}

/// The network (docs/METHOD.md §3).
#[derive(Module, Debug)]
pub struct UNet {
    pub inc: DoubleConv,
    pub down1: Down,
    pub down2: Down,
    pub sa1: SelfAttention,
    pub down3: Down,
    pub sa2: SelfAttention,
    pub up1: Up,
    pub sa3: SelfAttention,
    pub up2: Up,
    pub up3: Up,
    pub outc: Conv2d,
    pub base_channels: usize,
    pub channels: usize,
    pub px: usize,
}

/// Time encoding `pos(t, C)`: `[sin(t inv_freq), cos(t inv_freq)]`, `inv_freq_k = 1/10000^(2k/C)`,
/// `k = 0..C/2-1`, shaped `(B, C, 1, 1)` so that adding it broadcasts over the `S x S` map.
pub fn pos_encoding(t: Tensor<1>, channels: usize) -> Tensor<4> {
    let [b] = t.dims();
    let half = channels / 2;
    let inv: Vec<f32> = (0..half)
        .map(|k| (1.0 / 10000f64.powf(2.0 * k as f64 / channels as f64)) as f32)
        .collect();
    let inv = Tensor::<1>::from_floats(inv.as_slice(), &t.device()).reshape([1, half]);
    let arg = t.reshape([b, 1]).mul(inv);
    Tensor::cat(vec![arg.clone().sin(), arg.cos()], 1).reshape([b, channels, 1, 1])
}

impl UNet {
    /// Trainable parameters (12,919,041 at base 64, one channel).
    pub fn num_params(&self) -> usize {
        <Self as Module>::num_params(self)
    }

    pub fn config(&self) -> UNetConfig {
        UNetConfig {
            px: self.px,
            channels: self.channels,
            base_channels: self.base_channels,
        }
    }

    /// `x`: `(B, C, px, px)` in `[-1, 1]`; `t`: the integer step per image. Returns the predicted
    /// noise, same shape as `x`.
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1, Int>) -> Tensor<4> {
        let t = t.float();
        self.forward_float_t(x, t)
    }

    /// As [`UNet::forward`] with the step already as floats.
    pub fn forward_float_t(&self, x: Tensor<4>, t: Tensor<1>) -> Tensor<4> {
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

/// `(c_in, c_out, side)` of every 3×3 convolution of the U-Net of `cfg`, in forward order
/// (each DoubleConv gives two; each is followed by a GroupNorm(1, c_out)).
pub fn conv3x3_shapes(cfg: &UNetConfig) -> Vec<(usize, usize, usize)> {
    let (b, c, p) = (cfg.base_channels, cfg.channels, cfg.px);
    // DoubleConv(i, o, m) on an s x s map
    let dc = |i, o, m, s| [(i, m, s), (m, o, s)];
    let mut v = Vec::new();
    v.extend(dc(c, b, b, p));
    // Down(i, o): DoubleConv(i, i, i), DoubleConv(i, o, o)
    for (i, o, s) in [
        (b, 2 * b, p / 2),
        (2 * b, 4 * b, p / 4),
        (4 * b, 4 * b, p / 8),
    ] {
        v.extend(dc(i, i, i, s));
        v.extend(dc(i, o, o, s));
    }
    // Up(i, o): DoubleConv(i, i, i), DoubleConv(i, o, i / 2)
    for (i, o, s) in [(8 * b, 2 * b, p / 4), (4 * b, b, p / 2), (2 * b, b, p)] {
        v.extend(dc(i, i, i, s));
        v.extend(dc(i, o, i / 2, s));
    }
    v
}

/// Trainable parameters of the U-Net of `cfg`, counted from the architecture (no tensors are
/// built): 12,919,041 for `b = 64`, one channel, any `px`.
pub fn param_count(cfg: &UNetConfig) -> u64 {
    let b = cfg.base_channels as u64;
    let c = cfg.channels as u64;
    // each 3x3 convolution (no bias) and its GroupNorm's gamma and beta
    let convs: u64 = conv3x3_shapes(cfg)
        .iter()
        .map(|&(i, o, _)| 9 * i as u64 * o as u64 + 2 * o as u64)
        .sum();
    let sa = |h: u64| 2 * h + (3 * h * h + 3 * h) + (h * h + h) + 2 * h + 2 * (h * h + h);
    convs + 2 * sa(4 * b) + sa(2 * b) + (b * c + c)
}

/// Estimated multiply-adds of one forward pass for one image: convolutions, linear layers and
/// the two attention matmuls (what torch's FLOP counter counts, halved); norms, activations,
/// pooling and upsampling are left out. 0.092 G at px 8, 0.37 G at px 16 for `b = 64`.
pub fn macs_per_image(cfg: &UNetConfig) -> u64 {
    let b = cfg.base_channels as u64;
    let c = cfg.channels as u64;
    let p = cfg.px as u64;
    let convs: u64 = conv3x3_shapes(cfg)
        .iter()
        .map(|&(i, o, s)| 9 * i as u64 * o as u64 * (s * s) as u64)
        .sum();
    // attention on L = s^2 tokens of width h: in_proj 3h^2 L, scores and context 2 L^2 h,
    // out_proj h^2 L, feed-forward 2 h^2 L.
    let sa = |h: u64, s: u64| {
        let l = s * s;
        6 * h * h * l + 2 * l * l * h
    };
    convs + sa(4 * b, p / 4) + sa(4 * b, p / 8) + sa(2 * b, p / 4) + b * c * p * p
}
