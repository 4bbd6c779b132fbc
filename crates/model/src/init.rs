//! PyTorch's default initialisation of the U-Net, drawn from a seed (no device RNG):
//!
//! - `Conv2d` / `Linear` weights and biases: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` (kaiming
//!   uniform with `a = sqrt(5)`), `fan_in = in_channels * k * k` or `in_features`;
//! - `MultiheadAttention`: `in_proj_weight` Xavier uniform, `U(-sqrt(6 / (h + 3h)), ...)`, both
//!   projection biases 0, `out_proj.weight` as a `Linear`;
//! - GroupNorm / LayerNorm: weight 1, bias 0.
//!
//! Parameter `k` (in visiting order) draws from `ChaCha8(seed, k)`, so the weights depend on
//! nothing but the seed and the shape.

use crate::UNet;
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Init {
    seed: u64,
    path: Vec<String>,
    index: u64,
    /// fan-in of the last weight seen (its bias comes right after it).
    fan_in: usize,
}

enum Rule {
    Const(f32),
    Uniform(f64),
}

impl Init {
    fn rule(&mut self, shape: &[usize]) -> Rule {
        let name = self.path.last().map(String::as_str).unwrap_or("");
        let parent = self
            .path
            .len()
            .checked_sub(2)
            .map_or("", |i| self.path[i].as_str());
        match (parent, name, shape.len()) {
            (_, "gamma", _) => Rule::Const(1.0),
            (_, "beta", _) => Rule::Const(0.0),
            ("in_proj", "weight", 2) => {
                // burn's Linear weight is [in, out] = [h, 3h]
                self.fan_in = shape[0];
                Rule::Uniform((6.0 / (shape[0] + shape[1]) as f64).sqrt())
            }
            ("in_proj" | "out_proj", "bias", _) => Rule::Const(0.0),
            (_, "weight", 4) => {
                self.fan_in = shape[1] * shape[2] * shape[3];
                Rule::Uniform(1.0 / (self.fan_in as f64).sqrt())
            }
            (_, "weight", 2) => {
                self.fan_in = shape[0];
                Rule::Uniform(1.0 / (self.fan_in as f64).sqrt())
            }
            (_, "bias", _) => Rule::Uniform(1.0 / (self.fan_in.max(1) as f64).sqrt()),
            _ => Rule::Uniform(1.0 / (shape.iter().product::<usize>().max(1) as f64).sqrt()),
        }
    }
}

impl ModuleMapper for Init {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let index = self.index;
        self.index += 1;
        let seed = self.seed;
        param.map(|t| {
            let shape = t.dims();
            let n: usize = shape.iter().product();
            let values: Vec<f32> = match self.rule(&shape) {
                Rule::Const(c) => vec![c; n],
                Rule::Uniform(b) => {
                    let mut rng = ChaCha8Rng::seed_from_u64(
                        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index + 1),
                    );
                    (0..n).map(|_| rng.random_range(-b..b) as f32).collect()
                }
            };
            let grad = t.is_require_grad();
            let new = Tensor::<D>::from_data(TensorData::new(values, shape), &t.device());
            if grad {
                new.require_grad()
            } else {
                new
            }
        })
    }
}

/// Re-initialises every parameter of `model` as PyTorch would, from `seed`.
pub fn pytorch_init(model: UNet, seed: u64) -> UNet {
    let mut m = Init {
        seed,
        path: Vec::new(),
        index: 0,
        fan_in: 1,
    };
    model.map(&mut m)
}
