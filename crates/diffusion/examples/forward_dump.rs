//! Cross-check against PyTorch: loads a checkpoint, runs the U-Net on a fixed input and prints
//! the output as JSON (compare with `torch_ref.py`'s UNet loaded from `memdiff export`).
//!
//! cargo run --release -p memdiff-diffusion --features flex --example forward_dump -- DIR
use burn::tensor::{Device, Int, Tensor, TensorData};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: forward_dump CHECKPOINT_DIR");
    let dev = Device::flex();
    let (m, meta) = memdiff_diffusion::checkpoint::load(dir.as_ref(), &dev, false).unwrap();
    let px = meta.train.px;
    let n = 2 * px * px;
    let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    let xt = Tensor::<4>::from_data(TensorData::new(x, [2, 1, px, px]), &dev);
    let t = Tensor::<1, Int>::from_data(TensorData::new(vec![3i64, 40], [2]), &dev);
    let y: Vec<f32> = m
        .forward(xt, t)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    println!("{}", serde_json::to_string(&y).unwrap());
}
