//! U-Net facts: parameter count, shapes, seeding, the upsampling and time-encoding pieces.

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};
use memdiff_model::{
    macs_per_image, param_count, pos_encoding, upsample2x, upsample_matrix, ModelError, UNetConfig,
};

fn dev() -> Device {
    Device::flex()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

#[test]
fn papers_width_has_12_919_041_parameters_at_every_px() {
    for px in [8, 16, 32] {
        let cfg = UNetConfig::new(px, 1, 64);
        assert_eq!(param_count(&cfg), 12_919_041, "formula at px {px}");
    }
    // Built, once (the count does not depend on px: same modules).
    let m = UNetConfig::new(8, 1, 64).init(&dev()).unwrap();
    assert_eq!(m.num_params(), 12_919_041);
    // A tiny width: the formula and the built network agree too.
    let cfg = UNetConfig::new(16, 3, 6);
    assert_eq!(
        cfg.init(&dev()).unwrap().num_params() as u64,
        param_count(&cfg)
    );
}

#[test]
fn multiply_adds_match_torch_flop_counter() {
    // torch_ref.py / torch.utils.flop_counter: 0.184, 0.737, 2.95 GFLOP per image forward.
    let g = |px| 2.0 * macs_per_image(&UNetConfig::new(px, 1, 64)) as f64 / 1e9;
    assert!((g(8) - 0.184).abs() < 0.001, "{}", g(8));
    assert!((g(16) - 0.737).abs() < 0.001, "{}", g(16));
    assert!((g(32) - 2.95).abs() < 0.01, "{}", g(32));
}

#[test]
fn bad_shapes_are_typed_errors() {
    for px in [0, 4, 12, 28] {
        let e = UNetConfig::new(px, 1, 64).init(&dev()).unwrap_err();
        assert_eq!(e, ModelError::BadPx(px));
        assert!(e.to_string().contains("multiple of 8"));
    }
    assert_eq!(
        UNetConfig::new(8, 1, 3).validate().unwrap_err(),
        ModelError::BadBase(3)
    );
    assert_eq!(
        UNetConfig::new(8, 0, 4).validate().unwrap_err(),
        ModelError::BadChannels(0)
    );
}

#[test]
fn output_has_the_input_shape_at_px_8_16_32() {
    let d = dev();
    for px in [8, 16, 32] {
        let m = UNetConfig::new(px, 1, 4).init(&d).unwrap();
        let x = Tensor::<4>::zeros([3, 1, px, px], &d);
        let t = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 50, 200], [3]), &d);
        let y = m.forward(x, t);
        assert_eq!(y.dims(), [3, 1, px, px]);
        assert!(values(y).iter().all(|v| v.is_finite()));
    }
}

#[test]
fn same_seed_same_network_other_seed_other_network() {
    let d = dev();
    let out = |seed: u64| {
        // The device RNG is global state; init_seeded must not depend on it.
        d.seed(seed ^ 0xdead);
        let m = UNetConfig::new(8, 1, 4).init_seeded(&d, seed).unwrap();
        let x = Tensor::<4>::from_data(
            TensorData::new(
                (0..128).map(|i| (i as f32 * 0.37).sin()).collect(),
                [2, 1, 8, 8],
            ),
            &d,
        );
        let t = Tensor::<1, Int>::from_data(TensorData::new(vec![3i64, 7], [2]), &d);
        values(m.forward(x, t))
    };
    let a = out(5);
    assert_eq!(a, out(5));
    assert_ne!(a, out(6));
}

#[test]
fn upsampling_matrix_is_pytorch_align_corners() {
    // n = 2 -> 4: sources at 0, 1/3, 2/3, 1.
    let a = upsample_matrix(2);
    let want = [
        1.0,
        0.0,
        2.0 / 3.0,
        1.0 / 3.0,
        1.0 / 3.0,
        2.0 / 3.0,
        0.0,
        1.0,
    ];
    for (x, y) in a.iter().zip(want) {
        assert!((x - y).abs() < 1e-7, "{a:?}");
    }
    // n = 1: every output copies the input (PyTorch: scale 0).
    assert_eq!(upsample_matrix(1), vec![1.0, 1.0]);
}

#[test]
fn matmul_upsampling_equals_burn_interpolate() {
    let d = dev();
    for n in [1usize, 2, 4] {
        let x = Tensor::<4>::from_data(
            TensorData::new(
                (0..2 * 3 * n * n)
                    .map(|i| (i as f32 * 0.71).cos())
                    .collect(),
                [2, 3, n, n],
            ),
            &d,
        );
        let ours = values(upsample2x(x.clone()));
        let burn = values(interpolate(
            x,
            InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(true)
                .with_output_size([2 * n, 2 * n]),
        ));
        for (a, b) in ours.iter().zip(&burn) {
            assert!((a - b).abs() < 1e-5, "n {n}: {a} vs {b}");
        }
    }
}

#[test]
fn time_encoding_is_sin_then_cos() {
    let d = dev();
    let t = Tensor::<1>::from_floats([3.0, 0.0], &d);
    let e = pos_encoding(t, 4);
    assert_eq!(e.dims(), [2, 4, 1, 1]);
    // inv_freq = [1, 1/100]
    let want = [
        3f32.sin(),
        0.03f32.sin(),
        3f32.cos(),
        0.03f32.cos(),
        0.0,
        0.0,
        1.0,
        1.0,
    ];
    for (a, b) in values(e).iter().zip(want) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn seeded_init_follows_pytorch_defaults() {
    let m = UNetConfig::new(8, 1, 64).init_seeded(&dev(), 1).unwrap();
    let w = values(m.down2.conv_a.conv1.weight.val()); // Conv2d(128, 128, 3): bound 1/sqrt(1152)
    let b = 1.0 / (128.0f32 * 9.0).sqrt();
    assert!(w.iter().all(|x| x.abs() <= b));
    // uniform variance b^2 / 3, 147456 draws: relative standard error about 0.4 %
    let var = w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32;
    assert!((var / (b * b / 3.0) - 1.0).abs() < 0.02, "{var}");
    let ip = values(m.sa1.mha.in_proj.weight.val()); // Xavier: sqrt(6 / (256 + 768))
    let xb = (6.0f32 / 1024.0).sqrt();
    assert!(ip.iter().all(|x| x.abs() <= xb) && ip.iter().any(|x| x.abs() > 0.9 * xb));
    assert!(values(m.sa1.mha.in_proj.bias.clone().unwrap().val())
        .iter()
        .all(|&x| x == 0.0));
    let ff = values(m.sa1.ff_1.bias.clone().unwrap().val()); // Linear(256, 256) bias
    assert!(ff.iter().all(|x| x.abs() <= 1.0 / 16.0) && ff.iter().any(|&x| x != 0.0));
    assert!(values(m.inc.norm1.gamma.clone().unwrap().val())
        .iter()
        .all(|&x| x == 1.0));
    assert!(values(m.sa2.ln.beta.clone().unwrap().val())
        .iter()
        .all(|&x| x == 0.0));
}

/// `conv3x3_dense` (the small-map path on CPU backends) and `conv3x3_im2col` (wide layers on
/// GPU backends) compute the same convolution as a direct sum in f64, and autodiff gives them
/// the same input and weight gradients as burn's `conv2d`, on square and non-square maps.
#[test]
fn dense_im2col_and_host_convolutions_equal_direct_sum_and_burn_gradients() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use memdiff_model::{conv3x3_dense, conv3x3_im2col};
    let ad = Device::flex().autodiff();
    let (b, c, o) = (3, 5, 7);
    for (h, w) in [(1, 1), (2, 2), (3, 2), (4, 4), (5, 3)] {
        let xs: Vec<f32> = (0..b * c * h * w)
            .map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * 1.3)
            .collect();
        let ws: Vec<f32> = (0..o * c * 9)
            .map(|i| ((i * 53 % 97) as f32 / 48.0 - 1.0) * 0.4)
            .collect();
        // direct sum, zero padding 1
        let mut want = vec![0f64; b * o * h * w];
        for bi in 0..b {
            for oi in 0..o {
                for y in 0..h {
                    for x in 0..w {
                        let mut s = 0f64;
                        for ci in 0..c {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (yy, xx) = (y + ky, x + kx);
                                    if yy < 1 || xx < 1 || yy > h || xx > w {
                                        continue;
                                    }
                                    let xv = xs[((bi * c + ci) * h + yy - 1) * w + xx - 1];
                                    let wv = ws[((oi * c + ci) * 3 + ky) * 3 + kx];
                                    s += xv as f64 * wv as f64;
                                }
                            }
                        }
                        want[((bi * o + oi) * h + y) * w + x] = s;
                    }
                }
            }
        }
        let xt = || Tensor::<4>::from_data(TensorData::new(xs.clone(), [b, c, h, w]), &ad);
        let wt = || Tensor::<4>::from_data(TensorData::new(ws.clone(), [o, c, 3, 3]), &ad);
        let mut convs: Vec<fn(Tensor<4>, Tensor<4>) -> Tensor<4>> =
            vec![conv3x3_dense, conv3x3_im2col];
        #[cfg(feature = "flex")]
        convs.push(memdiff_model::host::conv3x3_host);
        for conv in convs {
            let (x1, w1) = (xt().require_grad(), wt().require_grad());
            let y1 = conv(x1.clone(), w1.clone());
            assert_eq!(y1.dims(), [b, o, h, w]);
            let got = values(y1.clone().inner());
            for (g, e) in got.iter().zip(&want) {
                assert!((*g as f64 - e).abs() < 1e-5, "{h}x{w}: {g} vs {e}");
            }
            let (x0, w0) = (xt().require_grad(), wt().require_grad());
            let y0 = conv2d(
                x0.clone(),
                w0.clone(),
                None,
                ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            );
            // upstream gradient: d/dy sum(y^2 / 2) = y
            let g1 = (y1.clone() * y1).sum().mul_scalar(0.5).backward();
            let g0 = (y0.clone() * y0).sum().mul_scalar(0.5).backward();
            for (a, e, what) in [
                (
                    values(x1.grad(&g1).unwrap()),
                    values(x0.grad(&g0).unwrap()),
                    "dx",
                ),
                (
                    values(w1.grad(&g1).unwrap()),
                    values(w0.grad(&g0).unwrap()),
                    "dw",
                ),
            ] {
                assert_eq!(a.len(), e.len());
                let scale = e.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(scale > 0.1, "{what} {h}x{w}: gradient vanished");
                for (p, q) in a.iter().zip(&e) {
                    assert!((p - q).abs() <= 1e-5 * scale, "{what} {h}x{w}: {p} vs {q}");
                }
            }
        }
    }
}

/// flex, plain or under autodiff, is recognised as a CPU backend: that picks the dense small-map
/// convolutions here and the host optimizer in training (off the CPU both change).
#[test]
#[cfg_attr(
    not(feature = "flex"),
    ignore = "needs the crate feature `flex` (on in the workspace build)"
)]
fn flex_is_recognised_as_a_cpu_backend() {
    assert!(memdiff_model::is_cpu(&Device::flex()));
    assert!(memdiff_model::is_cpu(&Device::flex().autodiff()));
}

/// The host GELU that flex uses (forward and the hand-written backward) gives burn's `gelu`
/// values and gradients, on a non-contiguous (transposed) input, under autodiff and without.
#[test]
#[cfg_attr(
    not(feature = "flex"),
    ignore = "needs the crate feature `flex` (on in the workspace build)"
)]
fn host_gelu_equals_burn_gelu_and_its_gradient() {
    let ad = Device::flex().autodiff();
    let (r, c) = (37, 29);
    let xs: Vec<f32> = (0..r * c)
        .map(|i| ((i * 7919 % 1009) as f32 / 1009.0 - 0.5) * 14.0)
        .collect();
    let x = || Tensor::<2>::from_data(TensorData::new(xs.clone(), [r, c]), &ad);
    let up: Vec<f32> = (0..r * c).map(|i| 1.0 + (i % 5) as f32 * 0.25).collect();
    let up = Tensor::<2>::from_data(TensorData::new(up, [c, r]), &ad);

    let (x1, x0) = (x().require_grad(), x().require_grad());
    let y1 = memdiff_model::gelu(x1.clone().transpose());
    let y0 = burn::tensor::activation::gelu(x0.clone().transpose());
    let g1 = (y1.clone() * up.clone()).sum().backward();
    let g0 = (y0.clone() * up).sum().backward();
    let (v1, v0) = (values(y1.inner()), values(y0.inner()));
    let (d1, d0) = (values(x1.grad(&g1).unwrap()), values(x0.grad(&g0).unwrap()));
    for i in 0..v0.len() {
        let scale = v0[i].abs().max(1.0);
        assert!(
            (v1[i] - v0[i]).abs() <= 1e-6 * scale,
            "gelu: {} vs {}",
            v1[i],
            v0[i]
        );
        assert!(
            (d1[i] - d0[i]).abs() <= 2e-6 * scale,
            "gelu': {} vs {}",
            d1[i],
            d0[i]
        );
    }
    // plain flex (no autodiff): the same forward values, bit for bit
    let plain = memdiff_model::gelu(
        Tensor::<2>::from_data(TensorData::new(xs.clone(), [r, c]), &Device::flex()).transpose(),
    );
    assert_eq!(values(plain), v1);
    // a value known in closed form: gelu(1) = Φ(1) = 0.841344746...
    let one = memdiff_model::gelu(Tensor::<1>::from_floats([1.0f32, 0.0, -10.0], &ad));
    let v = values(one);
    assert!(
        (v[0] as f64 - 0.841_344_746_068_543).abs() < 1e-7,
        "{}",
        v[0]
    );
    assert_eq!(v[1], 0.0);
    assert!(v[2].abs() < 1e-20, "{}", v[2]);
}
