//! Times burn's `conv2d` against `memdiff_model::conv3x3_dense` for the U-Net's 3×3
//! convolutions and checks both give the same numbers (docs/BENCHMARKS.md, "U-Net training").
//!
//! cargo run --release -p memdiff-diffusion --features flex --example conv_probe -- \
//!     [REPS] [--px 8] [--batch 128] [--forward-only] [--side S]
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use std::time::Instant;

fn conv(x: Tensor<4>, w: Tensor<4>, dense: bool) -> Tensor<4> {
    if dense {
        memdiff_model::conv3x3_dense(x, w)
    } else {
        conv2d(x, w, None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1))
    }
}

/// Output, input gradient and weight gradient (the last two empty when forward-only).
fn run(x: &Tensor<4>, w: &Tensor<4>, dense: bool, fwd: bool) -> Vec<Tensor<4>> {
    if fwd {
        return vec![conv(x.clone(), w.clone(), dense)];
    }
    // PROBE_GRAD=x or w: only that input requires a gradient (to split the backward's cost)
    let which = std::env::var("PROBE_GRAD").unwrap_or_default();
    let x = if which != "w" {
        x.clone().require_grad()
    } else {
        x.clone()
    };
    let w = if which != "x" {
        w.clone().require_grad()
    } else {
        w.clone()
    };
    let y = conv(x.clone(), w.clone(), dense);
    // a fixed upstream gradient: d/dy of sum(y * y / 2) = y
    let g = (y.clone() * y.clone()).sum().mul_scalar(0.5).backward();
    let mut out = vec![y.inner()];
    out.extend(x.grad(&g).map(Tensor::from_inner));
    out.extend(w.grad(&g).map(Tensor::from_inner));
    out
}

fn max_rel(a: Tensor<4>, b: Tensor<4>) -> f32 {
    let scale: f32 = b.clone().abs().max().into_scalar();
    let d: f32 = (a - b).abs().max().into_scalar();
    d / scale.max(1e-30)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].parse::<usize>().unwrap())
    };
    let reps = args.first().and_then(|a| a.parse().ok()).unwrap_or(3);
    let px = opt("--px").unwrap_or(8);
    let b = opt("--batch").unwrap_or(128);
    let only = opt("--side");
    let fwd = args.iter().any(|a| a == "--forward-only");
    let dev = if fwd {
        Device::flex()
    } else {
        Device::flex().autodiff()
    };
    let c = 64;
    // (c_in, c_out, side) of every 3x3 convolution of the base-64 U-Net
    let dc = |i, o, m, s| [(i, m, s), (m, o, s)];
    let mut shapes = Vec::new();
    shapes.extend(dc(1, c, c, px));
    for (i, o, s) in [
        (c, 2 * c, px / 2),
        (2 * c, 4 * c, px / 4),
        (4 * c, 4 * c, px / 8),
    ] {
        shapes.extend(dc(i, i, i, s));
        shapes.extend(dc(i, o, o, s));
    }
    for (i, o, s) in [(8 * c, 2 * c, px / 4), (4 * c, c, px / 2), (2 * c, c, px)] {
        shapes.extend(dc(i, i, i, s));
        shapes.extend(dc(i, o, i / 2, s));
    }
    let (mut tb, mut ti) = (0.0, 0.0);
    for (ci, co, s) in shapes {
        if only.is_some_and(|o| o != s) {
            continue;
        }
        let x = Tensor::<4>::random([b, ci, s, s], Distribution::Normal(0.0, 1.0), &dev);
        let w = Tensor::<4>::random([co, ci, 3, 3], Distribution::Normal(0.0, 0.05), &dev);
        let err: Vec<f32> = run(&x, &w, false, fwd)
            .into_iter()
            .zip(run(&x, &w, true, fwd))
            .map(|(a, b)| max_rel(b, a))
            .collect();
        let mut best = [f64::MAX; 2];
        for _ in 0..reps {
            for (k, im) in [false, true].into_iter().enumerate() {
                let t0 = Instant::now();
                let outs = run(&x, &w, im, fwd);
                let _: f32 = outs
                    .into_iter()
                    .map(|t| t.sum())
                    .reduce(|a, b| a + b)
                    .unwrap()
                    .into_scalar();
                best[k] = best[k].min(t0.elapsed().as_secs_f64());
            }
        }
        tb += best[0];
        ti += best[1];
        println!(
            "c_in {ci:4} c_out {co:4} side {s:2}: burn {:8.2} ms  dense {:8.2} ms  x{:5.2}  max rel err {:.1e}",
            best[0] * 1e3,
            best[1] * 1e3,
            best[0] / best[1],
            err.iter().fold(0f32, |a, &e| a.max(e)),
        );
    }
    println!(
        "total: burn {:.1} ms, dense {:.1} ms, x{:.2}",
        tb * 1e3,
        ti * 1e3,
        tb / ti
    );
}
