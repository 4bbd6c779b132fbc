//! Training: Adam against its closed form, one step changes the weights, a tiny model overfits
//! four images, a saved-and-restored run continues bit for bit, NaN stops with the last good
//! checkpoint kept, checkpoints round-trip and reject corrupt files.

use burn::tensor::Device;
use memdiff_data::gmm::GmmSpec;
use memdiff_data::recipe::DataRecipe;
use memdiff_data::ImageSet;
use memdiff_diffusion::backend::DeviceKind;
use memdiff_diffusion::checkpoint;
use memdiff_diffusion::train::{
    params_to_host, train_in_memory, train_run, HostAdam, RunOptions, TrainConfig, TrainError,
    Trainer,
};

fn dev() -> Device {
    Device::flex()
}

fn tiny(base: usize) -> TrainConfig {
    TrainConfig {
        px: 8,
        base_channels: base,
        diffusion_steps: 20,
        batch: 4,
        epochs: 2,
        checkpoint_every: 0,
        seed: 3,
        ..TrainConfig::default()
    }
}

fn gmm(n: usize, seed: u64) -> (ImageSet, DataRecipe) {
    let spec = GmmSpec::centred(8, 2, 0.5, 0.1, 0.1).unwrap();
    let recipe = DataRecipe::Gmm { spec, n, seed };
    (recipe.build().unwrap(), recipe)
}

#[test]
fn adam_matches_pytorch_formula() {
    // Independent f64 evaluation of torch.optim.Adam for three steps on two scalars.
    let cfg = TrainConfig {
        lr: 0.1,
        ..TrainConfig::default()
    };
    let mut params = vec![(vec![2], vec![1.0f32, -2.0])];
    let mut adam = HostAdam::new(&params);
    let grads = [[0.5f64, -3.0], [0.1, 1.0], [-0.2, 0.0]];
    let (mut p, mut m, mut v) = ([1.0f64, -2.0], [0.0f64; 2], [0.0f64; 2]);
    #[allow(clippy::needless_range_loop)]
    for (k, g) in grads.iter().enumerate() {
        let t = (k + 1) as i32;
        for i in 0..2 {
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
            let mh = m[i] / (1.0 - 0.9f64.powi(t));
            let vh = v[i] / (1.0 - 0.999f64.powi(t));
            p[i] -= 0.1 * mh / (vh.sqrt() + 1e-8);
        }
        let g32 = vec![Some(g.iter().map(|&x| x as f32).collect::<Vec<_>>())];
        adam.update(&cfg, &mut params, &g32, None);
        for i in 0..2 {
            assert!(
                (params[0].1[i] as f64 - p[i]).abs() < 1e-6,
                "step {t} param {i}: {} vs {}",
                params[0].1[i],
                p[i]
            );
        }
    }
}

#[test]
fn sgd_with_momentum_matches_pytorch_by_hand() {
    // torch.optim.SGD(lr=0.1, momentum=0.95) on two scalars, three steps, worked by hand:
    // buf1 = g1; buf_t = 0.95 buf_{t-1} + g_t; p -= 0.1 buf_t.
    //   p0 = (1, -2); g = (0.5, -3), (0.1, 1), (-0.2, 0)
    //   buf1 = (0.5, -3)         p1 = (0.95, -1.7)
    //   buf2 = (0.575, -1.85)    p2 = (0.8925, -1.515)
    //   buf3 = (0.34625, -1.7575) p3 = (0.857875, -1.33925)
    let cfg = TrainConfig {
        optimizer: memdiff_diffusion::train::Optimizer::Sgd,
        lr: 0.1,
        momentum: 0.95,
        ..TrainConfig::default()
    };
    let mut params = vec![(vec![2], vec![1.0f32, -2.0])];
    let mut opt = HostAdam::new(&params);
    let want = [[0.95, -1.7], [0.8925, -1.515], [0.857875, -1.33925]];
    for (g, w) in [[0.5f32, -3.0], [0.1, 1.0], [-0.2, 0.0]].iter().zip(want) {
        opt.update(&cfg, &mut params, &[Some(g.to_vec())], None);
        for i in 0..2 {
            assert!(
                (params[0].1[i] as f64 - w[i]).abs() < 1e-6,
                "step {}: {:?} vs {w:?}",
                opt.step,
                params[0].1
            );
        }
    }
    for (m, w) in opt.m[0].iter().zip([0.34625, -1.7575]) {
        assert!((*m as f64 - w).abs() < 1e-6, "buffer {m} vs {w}");
    }
    // A momentum outside [0, 1) is refused, naming the key.
    let bad = TrainConfig {
        momentum: 1.0,
        ..cfg
    };
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("`momentum`"), "{e}");
}

#[test]
fn ema_follows_its_recursion() {
    let cfg = TrainConfig {
        lr: 0.01,
        ..TrainConfig::default()
    };
    let mut params = vec![(vec![1], vec![1.0f32])];
    let mut adam = HostAdam::new(&params);
    let mut ema = vec![vec![1.0f32]];
    adam.update(&cfg, &mut params, &[Some(vec![1.0])], Some((&mut ema, 0.9)));
    // p = 1 - 0.01 = 0.99; ema = 0.9 * 1 + 0.1 * 0.99
    assert!((params[0].1[0] - 0.99).abs() < 1e-6);
    assert!((ema[0][0] - 0.999).abs() < 1e-6);
}

#[test]
fn one_step_changes_every_trained_weight() {
    let (data, _) = gmm(8, 1);
    let mut tr = Trainer::new(&tiny(4), &data, &dev()).unwrap();
    let before = params_to_host(&tr.model());
    let loss = tr.step().unwrap();
    assert!(loss.is_finite() && loss > 0.0);
    let after = params_to_host(&tr.model());
    assert_eq!(before.len(), after.len());
    let changed = before
        .iter()
        .zip(&after)
        .filter(|((_, a), (_, b))| a != b)
        .count();
    // Every parameter gets a gradient (Adam's first step moves each by about lr).
    assert_eq!(changed, before.len());
    let (_, a) = &before[0];
    let (_, b) = &after[0];
    let max = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(max <= 2.1e-4 && max > 1e-5, "{max}");
}

#[test]
fn a_tiny_model_overfits_four_images() {
    // Four cosine steps: noise std 0.39, 0.71, 0.92, 1.0, never so small that eps needs x_0 to
    // many digits, and the four images stay tellable apart, so a net that has learnt them can
    // name the noise: the loss must fall far below its start (1.0, the loss of predicting 0).
    let (data, _) = gmm(4, 9);
    let cfg = TrainConfig {
        px: 8,
        base_channels: 8,
        diffusion_steps: 4,
        schedule: memdiff_schedule::BetaSchedule::Cosine,
        batch: 4,
        epochs: 400,
        lr: 3e-3,
        seed: 1,
        checkpoint_every: 0,
        ..TrainConfig::default()
    };
    let t = train_in_memory(&cfg, &data, &dev(), None).unwrap();
    let first: f32 = t.losses[..10].iter().sum::<f32>() / 10.0;
    let last: f32 = t.losses[t.losses.len() - 20..].iter().sum::<f32>() / 20.0;
    assert!(first > 0.5, "start {first}");
    assert!(
        last < 0.1 && last < first / 10.0,
        "start {first}, end {last}"
    );
}

#[test]
fn same_seed_same_losses_and_resumed_run_continues_exactly() {
    // Adam, and SGD with momentum (its buffer is the checkpoint's first moment).
    for cfg in both_optimizers(TrainConfig {
        ema: Some(0.9),
        val_fraction: 0.2,
        ..tiny(4)
    }) {
        resumes_exactly(&cfg);
    }
}

/// `cfg` with Adam, and with SGD (lr 0.01, momentum 0.95).
fn both_optimizers(cfg: TrainConfig) -> [TrainConfig; 2] {
    let sgd = TrainConfig {
        optimizer: memdiff_diffusion::train::Optimizer::Sgd,
        lr: 0.01,
        momentum: 0.95,
        ..cfg.clone()
    };
    [cfg, sgd]
}

fn resumes_exactly(cfg: &TrainConfig) {
    let cfg = cfg.clone();
    let (data, _) = gmm(10, 2);
    // 8 training images, batch 4: 2 steps per epoch, 2 epochs.
    let a = train_in_memory(&cfg, &data, &dev(), None).unwrap();
    assert_eq!(a.losses.len(), 4);
    assert_eq!(a.val_losses.len(), 2);
    let b = train_in_memory(&cfg, &data, &dev(), None).unwrap();
    assert_eq!(a.losses, b.losses);

    // Stop after 3 steps, save, restore into a fresh trainer, finish.
    let dir = tempfile::tempdir().unwrap();
    let mut tr = Trainer::new(&cfg, &data, &dev()).unwrap();
    for _ in 0..3 {
        tr.step().unwrap();
    }
    let (_, recipe) = gmm(10, 2);
    let meta = checkpoint::CheckpointMeta {
        train: cfg.clone(),
        data: recipe,
        step: tr.step,
        epoch: 1,
        n_train: 8,
        backend: "flex".into(),
        memdiff_version: "test".into(),
        rng: checkpoint::RngState {
            scheme: "test".into(),
            seed: cfg.seed,
            next_step: tr.step,
        },
        finished: false,
    };
    let shapes: Vec<Vec<usize>> = params_to_host(&tr.model())
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    checkpoint::save(dir.path(), &meta, &tr.state(), &shapes).unwrap();
    let (meta2, state) = checkpoint::load_state(dir.path()).unwrap();
    assert_eq!(meta2, meta);
    assert_eq!(state, tr.state());
    let mut tr2 = Trainer::from_state(
        &cfg,
        &data,
        &dev(),
        state,
        tr.losses.clone(),
        tr.val_losses.clone(),
    )
    .unwrap();
    tr2.step().unwrap();
    assert_eq!(tr2.losses, a.losses);
    assert_eq!(tr2.val_losses, a.val_losses);
    let ema_a = params_to_host(&a.ema.unwrap());
    let ema_b = params_to_host(&tr2.ema_model().unwrap());
    assert_eq!(ema_a, ema_b);
}

#[test]
fn checkpoint_load_gives_the_trained_model_and_rejects_damage() {
    let (data, recipe) = gmm(8, 4);
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        checkpoint_every: 1,
        ..tiny(4)
    };
    let opts = RunOptions {
        out: dir.path().to_path_buf(),
        resume: false,
        device: DeviceKind::Cpu,
        recipe: recipe.clone(),
    };
    let s = train_run(&cfg, &data, &dev(), &opts, None).unwrap();
    assert_eq!(s.steps, 4);
    let (model, meta) = checkpoint::load(dir.path(), &dev(), false).unwrap();
    assert_eq!(meta.step, 4);
    assert!(meta.finished);
    assert_eq!(meta.data, recipe);
    assert_eq!(meta.train, cfg);
    // the same weights as an in-memory run
    let t = train_in_memory(&cfg, &data, &dev(), None).unwrap();
    assert_eq!(params_to_host(&model), params_to_host(&t.model));
    // metrics.csv: header + one row per step, same numbers
    let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    let losses: Vec<f32> = csv
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(losses, t.losses);
    // only the last step's files are left
    let bins = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".bin")
        })
        .count();
    assert_eq!(bins, 2);
    // no EMA in this run
    let e = checkpoint::load(dir.path(), &dev(), true).unwrap_err();
    assert!(e.to_string().contains("no EMA"), "{e}");
    // truncated weights
    let w = dir.path().join("weights-00000004.bin");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() - 10]).unwrap();
    let e = checkpoint::load(dir.path(), &dev(), false).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    // a fresh run into a folder with a different config refuses to resume
    let other = TrainConfig {
        lr: 1e-3,
        ..cfg.clone()
    };
    let opts = RunOptions {
        resume: true,
        ..opts
    };
    let e = train_run(&other, &data, &dev(), &opts, None).unwrap_err();
    assert!(e.to_string().contains("lr"), "{e}");
}

#[test]
fn a_diverging_run_stops_and_keeps_the_last_good_checkpoint() {
    let (data, recipe) = gmm(8, 5);
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        lr: 1e30,
        checkpoint_every: 1,
        epochs: 50,
        ..tiny(4)
    };
    let opts = RunOptions {
        out: dir.path().to_path_buf(),
        resume: false,
        device: DeviceKind::Cpu,
        recipe,
    };
    let e = train_run(&cfg, &data, &dev(), &opts, None).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, TrainError::NonFinite { .. }), "{msg}");
    assert!(msg.contains("last good checkpoint"), "{msg}");
    let meta = checkpoint::load_meta(dir.path()).unwrap();
    let (model, _) = checkpoint::load(dir.path(), &dev(), false).unwrap();
    assert!(params_to_host(&model)
        .iter()
        .all(|(_, v)| v.iter().all(|x| x.is_finite())));
    assert!(meta.step >= 1 && !meta.finished);
}

#[test]
fn bad_settings_name_the_field() {
    let (data, _) = gmm(8, 1);
    let cfg = TrainConfig { px: 12, ..tiny(4) };
    let e = Trainer::new(&cfg, &data, &dev()).err().unwrap();
    assert!(e.to_string().contains("multiple of 8"), "{e}");
    let cfg = TrainConfig { px: 16, ..tiny(4) };
    let e = Trainer::new(&cfg, &data, &dev()).err().unwrap();
    assert!(e.to_string().contains("1 x 8 x 8"), "{e}");
    let e = TrainConfig {
        val_fraction: 1.0,
        ..tiny(4)
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("val_fraction"), "{e}");
    let t: Result<TrainConfig, _> = memdiff_data::config::parse_toml("epochz = 3");
    assert!(t.unwrap_err().contains("epochz"));
}

/// The device-side optimizer (the default on GPU backends) gives the same losses, weights, Adam
/// moments and EMA as the host one, up to float rounding, and its state saved mid-run and
/// restored continues exactly as the run that kept going.
#[test]
fn device_optimizer_matches_the_host_one_and_resumes_exactly() {
    for cfg in both_optimizers(TrainConfig {
        ema: Some(0.9),
        ..tiny(4)
    }) {
        device_matches_host(&cfg);
    }
}

fn device_matches_host(cfg: &TrainConfig) {
    let cfg = cfg.clone();
    let (data, _) = gmm(10, 2);
    let mut host = Trainer::new(&cfg, &data, &dev()).unwrap();
    let mut device = Trainer::new(&cfg, &data, &dev())
        .unwrap()
        .with_device_optimizer(true);
    for _ in 0..4 {
        host.step().unwrap();
        device.step().unwrap();
    }
    for (a, b) in host.losses.iter().zip(&device.losses) {
        assert!((a - b).abs() <= 1e-5 * a.abs(), "loss {a} vs {b}");
    }
    let (h, d) = (host.state(), device.state());
    assert_eq!(d.adam.step, 4);
    let close = |what: &str, x: &[Vec<f32>], y: &[Vec<f32>]| {
        assert_eq!(x.len(), y.len());
        let mut moved = 0usize;
        for (u, v) in x.iter().zip(y) {
            for (p, q) in u.iter().zip(v) {
                assert!(
                    (p - q).abs() <= 1e-5 * (1.0 + p.abs()),
                    "{what}: {p} vs {q}"
                );
                moved += (p != &0.0) as usize;
            }
        }
        assert!(moved > 1000, "{what}: only {moved} nonzero values");
    };
    close("weights", &h.params, &d.params);
    close("adam m", &h.adam.m, &d.adam.m);
    if cfg.optimizer == memdiff_diffusion::train::Optimizer::Sgd {
        // SGD keeps no second moment.
        assert!(h
            .adam
            .v
            .iter()
            .chain(&d.adam.v)
            .flatten()
            .all(|&v| v == 0.0));
    } else {
        close("adam v", &h.adam.v, &d.adam.v);
    }
    close("ema", h.ema.as_ref().unwrap(), d.ema.as_ref().unwrap());

    // Restored from its own state, the device-optimizer run continues bit for bit.
    let mut resumed = Trainer::from_state(&cfg, &data, &dev(), d, device.losses.clone(), vec![])
        .unwrap()
        .with_device_optimizer(true);
    device.step().unwrap();
    resumed.step().unwrap();
    assert_eq!(device.losses, resumed.losses);
    assert_eq!(device.state(), resumed.state());
}

#[test]
fn snapshots_never_change_the_training_trajectory() {
    use memdiff_diffusion::sample::{sample, SampleOptions, Schedule};
    use memdiff_diffusion::train::train_in_memory_with_snapshots;
    let (data, _) = gmm(12, 4);
    let cfg = TrainConfig {
        ema: Some(0.9),
        epochs: 4,
        ..tiny(4)
    };
    let plain = train_in_memory(&cfg, &data, &dev(), None).unwrap();
    let sch = Schedule::new(cfg.schedule, cfg.diffusion_steps).unwrap();
    let mut seen = Vec::new();
    let with = train_in_memory_with_snapshots(
        &cfg,
        &data,
        &dev(),
        None,
        &[1, 5, 12],
        &mut |tr: &Trainer| {
            // Sample from the current (EMA) weights as the sweep does.
            let m = tr.ema_model().unwrap();
            let g = sample(&m, &sch, 3, &SampleOptions::default(), 9, &dev(), None)?;
            seen.push((tr.step, g.data.len()));
            Ok(())
        },
    )
    .unwrap();
    // Bit for bit: every loss of the run (12 steps: 4 epochs of 3 batches).
    assert_eq!(plain.losses.len(), 12);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&plain.losses), bits(&with.losses));
    assert_eq!(seen, vec![(1, 192), (5, 192), (12, 192)]);
    let w = |m: &memdiff_model::UNet| params_to_host(m);
    assert_eq!(w(&plain.model), w(&with.model));
}
