//! K networks trained as one (`EnsembleTrainer`): each network's numbers do not depend on K or on
//! its companions (bit for bit), and one network of an ensemble trains as `Trainer` trains it
//! alone, up to float rounding.

use burn::tensor::Device;
use memdiff_data::gmm::GmmSpec;
use memdiff_data::recipe::DataRecipe;
use memdiff_data::ImageSet;
use memdiff_diffusion::train::{ensemble_key, EnsembleTrainer, TrainConfig, TrainError, Trainer};

fn dev() -> Device {
    Device::flex()
}

fn cfg(seed: u64) -> TrainConfig {
    TrainConfig {
        px: 8,
        base_channels: 4,
        diffusion_steps: 20,
        batch: 4,
        epochs: 1,
        max_steps: Some(3),
        checkpoint_every: 0,
        ema: Some(0.9),
        seed,
        ..TrainConfig::default()
    }
}

fn gmm(n: usize, seed: u64) -> ImageSet {
    let spec = GmmSpec::centred(8, 2, 0.5, 0.1, 0.1).unwrap();
    DataRecipe::Gmm { spec, n, seed }.build().unwrap()
}

/// Runs an ensemble to its end; returns each network's losses and final state.
fn run(
    cfgs: &[TrainConfig],
    data: &[&ImageSet],
) -> Vec<(Vec<f32>, memdiff_diffusion::checkpoint::TrainingState)> {
    let mut tr = EnsembleTrainer::new(cfgs, data, &dev()).unwrap();
    while !tr.is_done() {
        tr.step().unwrap();
    }
    (0..tr.k())
        .map(|k| (tr.losses[k].clone(), tr.state(k)))
        .collect()
}

#[test]
fn a_network_trains_the_same_alone_or_with_any_companions() {
    let cfgs = [cfg(3), cfg(4), cfg(5)];
    // three training sets of different sizes, every batch full
    let data = [gmm(8, 1), gmm(4, 2), gmm(12, 3)];
    let refs: Vec<&ImageSet> = data.iter().collect();
    let together = run(&cfgs, &refs);
    assert_eq!(together.len(), 3);
    for k in 0..3 {
        let alone = run(&cfgs[k..k + 1], &refs[k..k + 1]);
        assert_eq!(alone[0].0.len(), 3);
        assert_eq!(together[k].0, alone[0].0, "network {k}: losses");
        assert_eq!(together[k].1, alone[0].1, "network {k}: weights, Adam, EMA");
    }
    // another order and another companion
    let other = run(&[cfgs[2].clone(), cfgs[0].clone()], &[refs[2], refs[0]]);
    assert_eq!(other[0], together[2]);
    assert_eq!(other[1], together[0]);
    // the networks did train apart: different seeds, different numbers
    assert_ne!(together[0].0, together[1].0);
}

#[test]
fn one_network_of_an_ensemble_trains_as_the_trainer_alone() {
    let c = cfg(7);
    let d = gmm(8, 4);
    let mut single = Trainer::new(&c, &d, &dev()).unwrap();
    let mut ens = EnsembleTrainer::new(std::slice::from_ref(&c), &[&d], &dev()).unwrap();
    // the same initial weights, bit for bit
    assert_eq!(ens.state(0).params, single.state().params);
    let mut losses = Vec::new();
    for _ in 0..3 {
        let a = single.step().unwrap();
        let b = ens.step().unwrap()[0];
        losses.push((a, b));
    }
    for (a, b) in &losses {
        // forward: the same loss up to float rounding (summation order of the norms)
        assert!(
            ((a - b) / a).abs() < 2e-6,
            "losses {losses:?} differ beyond rounding"
        );
    }
    // optimizer: Adam's first steps move every weight by about lr (its update is
    // lr · m̂ / (√v̂ + eps)), so weights agree to a small fraction of lr where gradients agree
    let (p1, p2) = (single.state().params, ens.state(0).params);
    let lr = c.lr as f32;
    let mut worst = 0f32;
    let mut close = 0usize;
    let mut total = 0usize;
    for (a, b) in p1.iter().zip(&p2) {
        for (x, y) in a.iter().zip(b) {
            let d = (x - y).abs();
            worst = worst.max(d);
            close += usize::from(d <= 1e-2 * lr);
            total += 1;
        }
    }
    assert!(worst <= 6.0 * lr, "a weight moved {worst} apart (lr {lr})");
    assert!(
        close as f64 >= 0.99 * total as f64,
        "only {close} of {total} weights agree to 1 % of lr"
    );
    // EMA: the same update of weights that agree that closely
    let (e1, e2) = (single.state().ema.unwrap(), ens.state(0).ema.unwrap());
    let ema_worst = e1
        .iter()
        .flatten()
        .zip(e2.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(ema_worst <= worst, "EMA {ema_worst} apart, weights {worst}");
    assert!(ema_worst > 0.0 || worst == 0.0);
}

#[test]
fn trainings_that_cannot_share_a_step_are_refused() {
    let mut other = cfg(4);
    other.lr = 2e-3;
    let d = gmm(8, 1);
    let e = EnsembleTrainer::new(&[cfg(3), other], &[&d, &d], &dev())
        .err()
        .unwrap();
    assert!(matches!(e, TrainError::Setting { .. }), "{e}");
    assert!(e.to_string().contains("ensemble"), "{e}");
    // batch sizes: 8 images in batches of 4 (full) against 6 (a short last batch)
    assert_ne!(ensemble_key(&cfg(3), 8), ensemble_key(&cfg(3), 6));
    assert_eq!(ensemble_key(&cfg(3), 8), ensemble_key(&cfg(9), 12));
    // a budget in epochs and the same budget in steps share
    let mut epochs = cfg(3);
    epochs.max_steps = None;
    epochs.epochs = 3;
    assert_eq!(ensemble_key(&epochs, 4), ensemble_key(&cfg(3), 4));
}
