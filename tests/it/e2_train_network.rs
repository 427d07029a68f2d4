//! E2-Train's gated network over cnn-zoo's CIFAR ResNet: the forward pass under every gating
//! and skipping mode, the invariants of docs/e2-train.md §8 that need a network (S2, S3, G3–G5,
//! P5, E1–E3), short training runs and the workspace's stop and divergence contract.

use std::ops::ControlFlow;

use e2_train::*;
use integration_tests::gated;
use tensor_core::tensor::{Device, Tensor, Var};
use tensor_core::testing::{assert_tensor_close, host, max_abs_diff, random};
use tensor_core::{
    BatchSource, BatchStats, Iteration, Network, NoTaps, Observer, RecordingObserver, SeededInit,
    SgdConfig, Step,
};

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn cpu() -> Device {
    Device::Cpu
}

fn tiny(conv: ConvMode, gates: bool, seed: u64) -> (GatedResnet, SeededInit) {
    let init = SeededInit::new(seed);
    let config = GatedResnetConfig {
        depth: 8,
        num_classes: 3,
        in_channels: 3,
        conv,
        gates,
    };
    let net = gated(config, &init).expect("net");
    (net, init)
}

#[test]
fn backbone_layers_and_names() {
    let (net, _) = tiny(ConvMode::quantized8(), true, 0);
    let names: Vec<_> = net.layers().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv1",
            "layer1.0.conv1",
            "layer1.0.conv2",
            "layer2.0.conv1",
            "layer2.0.conv2",
            "layer2.0.downsample.0",
            "layer3.0.conv1",
            "layer3.0.conv2",
            "layer3.0.downsample.0",
            "fc"
        ]
    );
    let ids: Vec<_> = net.layers().iter().map(|l| l.id.0).collect();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
    assert_eq!(net.layers()[3].geometry.in_h(), 32);
    assert_eq!(net.layers()[3].geometry.out_h(), 16);
    // G3: #gates = #blocks − 1.
    assert_eq!(net.num_gates(), net.num_blocks() - 1);
    assert_eq!(net.gate_layers()[0].name, "layer1.0.gate");
    assert_eq!(net.gate_layers()[0].id.0, 10);
}

fn opts(train: bool, gating: Gating, skip: SkipExecution) -> ForwardOptions {
    ForwardOptions {
        train,
        gating,
        skip,
    }
}

#[test]
fn all_on_gates_reproduce_the_plain_resnet() -> TestResult {
    // G3: π ≡ 1 gives the plain network's output exactly (same seed, same names).
    let xs = random(&[4, 3, 32, 32], 3, 1.0);
    let (gated, _) = tiny(ConvMode::quantized8(), true, 7);
    let (plain, _) = tiny(ConvMode::quantized8(), false, 7);
    let mut rng = tensor_core::rng(0, "g");
    let on = Gating::Gates {
        mode: GateMode::AllOn,
    };
    let a = gated.forward_gated(
        &xs,
        &opts(false, on, SkipExecution::Gather),
        &mut rng,
        &mut NoTaps,
    )?;
    let b = plain.forward_t(&xs, false)?;
    assert_eq!(host(&a.logits), host(&b));
    assert_eq!(a.executed, vec![1.0; 3]);
    Ok(())
}

#[test]
fn real_skipping_matches_masking_in_evaluation() -> TestResult {
    let xs = random(&[6, 3, 32, 32], 4, 1.0);
    let (net, _) = tiny(ConvMode::Float, true, 11);
    let mut rng = tensor_core::rng(0, "g");
    // Stochastic gates with a shared seed give both executions the same decisions.
    let g = Gating::Gates {
        mode: GateMode::Stochastic,
    };
    let a = net.forward_gated(
        &xs,
        &opts(false, g, SkipExecution::Masked),
        &mut rng,
        &mut NoTaps,
    )?;
    let mut rng = tensor_core::rng(0, "g");
    let b = net.forward_gated(
        &xs,
        &opts(false, g, SkipExecution::Gather),
        &mut rng,
        &mut NoTaps,
    )?;
    assert_eq!(a.decisions, b.decisions);
    assert_tensor_close(&a.logits, &b.logits, 1e-4);
    for d in a.decisions.iter().flatten() {
        assert!(*d == 0.0 || *d == 1.0);
    }
    Ok(())
}

#[test]
fn deterministic_masks_are_per_sample() -> TestResult {
    // G5: in evaluation, sample 1's input cannot change sample 0's gates.
    let (net, _) = tiny(ConvMode::Float, true, 5);
    let xs = random(&[2, 3, 32, 32], 8, 1.0);
    let other = Tensor::cat(&[xs.narrow(0, 0, 1)?, random(&[1, 3, 32, 32], 9, 2.0)], 0)?;
    let g = Gating::Gates {
        mode: GateMode::Deterministic,
    };
    let mut rng = tensor_core::rng(0, "g");
    let o = opts(false, g, SkipExecution::Gather);
    let a = net.forward_gated(&xs, &o, &mut rng, &mut NoTaps)?;
    let b = net.forward_gated(&other, &o, &mut rng, &mut NoTaps)?;
    for (pa, pb) in a.probabilities.iter().zip(&b.probabilities) {
        assert!((pa[0] - pb[0]).abs() < 1e-6);
    }
    Ok(())
}

#[test]
fn dropped_block_gets_no_gradient() -> TestResult {
    // G2: with m = 0 the block's parameters get zero gradient (stochastic depth with a
    // vanishing survival drops the last block).
    let (net, init) = tiny(ConvMode::Float, false, 2);
    let sd = Gating::StochasticDepth(StochasticDepthConfig {
        final_survival: 1e-9,
    });
    let xs = random(&[4, 3, 32, 32], 1, 1.0);
    let mut rng = tensor_core::rng(3, "sd");
    let out = net.forward_gated(
        &xs,
        &opts(true, sd, SkipExecution::Masked),
        &mut rng,
        &mut NoTaps,
    )?;
    assert_eq!(out.executed[2], 0.0);
    let grads = out.logits.sqr()?.sum_all()?.backward()?;
    let w = init
        .named_vars()
        .into_iter()
        .find(|(n, _)| n == "layer3.0.conv1.weight")
        .map(|(_, v)| v)
        .expect("var");
    if let Some(g) = grads.get(&w) {
        assert_eq!(max_abs_diff(g, &g.zeros_like()?)?, 0.0);
    }
    Ok(())
}

// ---------------------------------------------------------------- ledger and training

/// Two-class synthetic images: a fixed pattern added (class 0) or subtracted (class 1).
struct Synthetic {
    images: Tensor,
    labels: Tensor,
    batch: usize,
    /// Batches served so far.
    pulled: usize,
}

impl Synthetic {
    fn new(n: usize, batch: usize, seed: u64) -> Self {
        let pattern = random(&[1, 3, 32, 32], seed, 1.0);
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
        let sign: Vec<f32> = labels
            .iter()
            .map(|&l| if l == 0 { 1.0 } else { -1.0 })
            .collect();
        let sign = Tensor::from_vec(sign, (n, 1, 1, 1), &cpu()).expect("sign");
        let noise = (random(&[n, 3, 32, 32], seed + 1, 1.0) * 0.5).expect("noise");
        let images = (sign.broadcast_mul(&pattern).expect("mul") + noise).expect("add");
        Self {
            images,
            labels: Tensor::new(labels.as_slice(), &cpu()).expect("labels"),
            batch,
            pulled: 0,
        }
    }
}

impl BatchSource for Synthetic {
    fn batches_per_epoch(&self) -> usize {
        self.labels.dim(0).unwrap_or(0) / self.batch
    }
    fn batch(&mut self, _epoch: usize, index: usize) -> tensor_core::Result<(Tensor, Tensor)> {
        let s = index * self.batch;
        self.pulled += 1;
        Ok((
            self.images.narrow(0, s, self.batch)?,
            self.labels.narrow(0, s, self.batch)?,
        ))
    }
}

fn quick_config(conv: ConvMode, iterations: usize) -> E2TrainConfig {
    let mut c = E2TrainConfig::quick_cpu_resnet8();
    c.model.num_classes = 2;
    c.model.conv = conv;
    c.iterations = iterations;
    c.lr = tensor_core::LrSchedule::new(tensor_core::LrDecay::Constant);
    c.sgd = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-4,
    };
    c.eval_every = 0;
    c
}

fn run(config: &E2TrainConfig, data: &mut dyn BatchSource) -> (E2TrainOutcome, Vec<Vec<f32>>) {
    let init = SeededInit::new(config.seed);
    let net = gated(config.model, &init).expect("net");
    let params: Vec<Var> = init.named_vars().into_iter().map(|(_, v)| v).collect();
    let out = train(
        TrainRun {
            net: &net,
            params: params.clone(),
            train: data,
            eval: None,
        },
        config,
        &mut RecordingObserver::default(),
    )
    .expect("train");
    let values = params.iter().map(|v| host(v.as_tensor())).collect();
    (out, values)
}

#[test]
fn fully_dropped_run_does_nothing() {
    // S2/S3 with p = 1: no MACs, parameters (and batch-norm statistics) bit-identical.
    let mut config = quick_config(ConvMode::quantized8(), 4);
    config.smd = Some(SmdConfig { p: 1.0 });
    let init = SeededInit::new(config.seed);
    let net = gated(config.model, &init).expect("net");
    let before: Vec<_> = init
        .named_vars()
        .iter()
        .map(|(_, v)| host(v.as_tensor()))
        .collect();
    let mut data = Synthetic::new(8, 4, 1);
    let (out, after) = run(&config, &mut data);
    drop(net);
    assert_eq!(out.ledger.dropped(), 4);
    // A dropped iteration costs its draw only: no batch is prepared for it.
    assert_eq!(data.pulled, 0);
    assert_eq!(executed_macs(&out.ledger), 0.0);
    assert_eq!(before, after);
    assert_eq!(
        out.history.iter().map(|h| h.lr).collect::<Vec<_>>(),
        vec![0.05; 4]
    );
}

#[test]
fn sign_learning_rate_scales_only_sign_updated_weights() {
    // Decision 11: one step from the same start with sign_lr_scale 1 and 1/4. Momentum starts at
    // the first gradient, so a conv weight moves by exactly a quarter (up to rounding) and every
    // other parameter (batch norm, FC, gate LSTM) moves identically.
    let mut config = quick_config(ConvMode::Psg(PsgConfig::reference()), 1);
    config.model.gates = true;
    config.smd = None;
    let start = {
        let init = SeededInit::new(config.seed);
        let _net = gated(config.model, &init).expect("net");
        let mut vars = init.named_vars();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars.into_iter()
            .map(|(n, v)| (n, host(v.as_tensor())))
            .collect::<Vec<_>>()
    };
    let step = |scale: f64| {
        let mut c = config.clone();
        c.sign_lr_scale = scale;
        let init = SeededInit::new(c.seed);
        let net = gated(c.model, &init).expect("net");
        let conv_ids: Vec<_> = net.conv_weights().iter().map(|w| w.id()).collect();
        let mut vars = init.named_vars();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let params = vars.iter().map(|(_, v)| v.clone()).collect();
        let run = TrainRun {
            net: &net,
            params,
            train: &mut Synthetic::new(8, 4, 3),
            eval: None,
        };
        train(run, &c, &mut RecordingObserver::default()).expect("train");
        vars.iter()
            .map(|(n, v)| {
                let conv = conv_ids.contains(&v.as_tensor().id());
                (n.clone(), conv, host(v.as_tensor()))
            })
            .collect::<Vec<_>>()
    };
    let (unit, quarter) = (step(1.0), step(0.25));
    let mut convs = 0;
    for ((s, (name, conv, a)), (_, _, b)) in start.iter().zip(&unit).zip(&quarter) {
        assert_eq!(&s.0, name);
        if !conv {
            assert_eq!(a, b, "{name} is not sign-updated and must step as before");
            continue;
        }
        convs += 1;
        let mut moved = false;
        for ((w0, w1), wq) in s.1.iter().zip(a).zip(b) {
            let (d1, dq) = (w1 - w0, wq - w0);
            moved |= d1 != 0.0;
            assert!(
                (dq - 0.25 * d1).abs() <= 1e-5 * d1.abs() + 1e-7,
                "{name}: step {dq} is not a quarter of {d1}"
            );
        }
        assert!(moved, "{name} did not move");
    }
    // Stem, 3 blocks x 2, 2 projection shortcuts, 2 gate embeddings.
    assert_eq!(convs, 11);
}

#[test]
fn zero_drop_probability_is_standard_training() {
    // S3: p = 0 reproduces training without SMD exactly.
    let mut config = quick_config(ConvMode::quantized8(), 3);
    config.slu = None;
    config.smd = Some(SmdConfig { p: 0.0 });
    let (a, wa) = run(&config, &mut Synthetic::new(8, 4, 2));
    config.smd = None;
    let (b, wb) = run(&config, &mut Synthetic::new(8, 4, 2));
    assert_eq!(a, b);
    assert_eq!(wa, wb);
}

#[test]
fn a_source_served_ahead_trains_bit_for_bit_alike() {
    // SMD skips iterations, so the batch prepared ahead is often not the one asked for next.
    let mut config = quick_config(ConvMode::quantized8(), 6);
    config.smd = Some(SmdConfig { p: 0.5 });
    let (a, wa) = run(&config, &mut Synthetic::new(16, 4, 3));
    let mut data = Synthetic::new(16, 4, 3);
    let (b, wb) = tensor_core::prefetch::with_prefetch(&mut data, |p| run(&config, p));
    assert!(a.ledger.dropped() > 0 && a.ledger.dropped() < 6);
    assert_eq!(a, b);
    assert_eq!(wa, wb);
}

#[test]
fn skipped_blocks_add_no_work() -> TestResult {
    let (net, _) = tiny(ConvMode::Psg(PsgConfig::reference()), true, 0);
    let all = net.layer_work(&[1.0, 1.0, 1.0], true)?;
    let some = net.layer_work(&[1.0, 0.0, 0.5], true)?;
    let mut l = tensor_core::WorkLedger::new();
    l.record_executed(8, all)?;
    let full = executed_macs(&l);
    let mut l = tensor_core::WorkLedger::new();
    l.record_executed(8, some.clone())?;
    let part = executed_macs(&l);
    assert!(part < full);
    // The skipped block's convs record fraction 0.
    assert_eq!(some[3].executed_fraction, 0.0);
    assert_eq!(some[4].executed_fraction, 0.0);
    assert_eq!(some[5].executed_fraction, 1.0); // the shortcut always runs
    assert!(some[0].input_grad.is_none()); // no gradient with respect to the images
    assert!(some[1].predictor.is_some());
    Ok(())
}

#[test]
fn end_to_end_loss_decreases_and_saves_work() {
    // SMD + SLU on the 8-bit backbone: the loss falls and the ledger holds less work than the
    // standard-training baseline on the same schedule.
    let mut config = quick_config(ConvMode::quantized8(), 16);
    config.slu = Some(SluConfig {
        target: 50.0,
        beta: 1e-3,
        warmup: 0,
    });
    let mut data = Synthetic::new(8, 4, 3);
    let (out, _) = run(&config, &mut data);
    let losses: Vec<f64> = out.history.iter().filter_map(|h| h.loss).collect();
    assert!(losses.len() >= 6, "{} executed iterations", losses.len());
    assert!(out.ledger.dropped() > 0);
    let head: f64 = losses[..3].iter().sum::<f64>() / 3.0;
    let tail: f64 = losses[losses.len() - 3..].iter().sum::<f64>() / 3.0;
    assert!(tail < head, "loss {head} -> {tail}");
    let (net, _) = tiny(config.model.conv, false, 0);
    let mut base_config = config.clone();
    base_config.model.num_classes = 3;
    let base = baseline_ledger(&net, &base_config, &|_| 4).expect("baseline");
    assert_eq!(base.executed(), 16);
    assert!(executed_macs(&out.ledger) < executed_macs(&base));
    for it in out.ledger.iterations() {
        if let Iteration::Executed { layers, .. } = it {
            assert!(
                layers
                    .iter()
                    .all(|l| (0.0..=1.0).contains(&l.executed_fraction))
            );
        }
    }
}

#[test]
fn gates_engage_after_the_warmup() -> TestResult {
    // During the warm-up every block runs, the ledger holds no gate work and the gates keep
    // their initial values (no gradient reaches them: they are not computed); afterwards the
    // gates decide and are priced.
    let mut config = quick_config(ConvMode::quantized8(), 3);
    config.smd = None;
    config.skip = SkipExecution::Masked;
    config.slu = Some(SluConfig {
        target: 50.0,
        beta: 1e-2,
        warmup: 3,
    });
    let init = SeededInit::new(config.seed);
    let _net = gated(config.model, &init)?;
    let (names, fresh): (Vec<String>, Vec<Vec<f32>>) = init
        .named_vars()
        .into_iter()
        .map(|(n, v)| (n, host(v.as_tensor())))
        .unzip();
    let gates = |values: Vec<Vec<f32>>| -> Vec<Vec<f32>> {
        names
            .iter()
            .zip(values)
            .filter(|(n, _)| n.starts_with("control.") || n.contains(".gate."))
            .map(|(_, v)| v)
            .collect()
    };
    let (out, trained) = run(&config, &mut Synthetic::new(8, 4, 6));
    assert_eq!(out.ledger.executed(), config.iterations as u64);
    let fresh = gates(fresh);
    assert!(!fresh.is_empty());
    assert_eq!(gates(trained), fresh);

    config.iterations = 5;
    let (out, _) = run(&config, &mut Synthetic::new(8, 4, 6));
    let layers = |i: usize| match &out.ledger.iterations()[i] {
        Iteration::Executed { layers, .. } => layers.clone(),
        Iteration::Dropped => panic!("iteration {i} was dropped"),
    };
    let (net, _) = tiny(config.model.conv, true, 0);
    for i in 0..3 {
        assert_eq!(out.history[i].executed_percentage, Some(100.0));
        let l = layers(i);
        assert_eq!(l.len(), net.layers().len(), "iteration {i}: no gate work");
        assert!(l.iter().all(|w| w.executed_fraction == 1.0));
    }
    for i in 3..5 {
        assert_eq!(layers(i).len(), net.layers().len() + net.num_gates() + 1);
    }
    Ok(())
}

#[test]
fn psg_run_records_predictor_work() {
    let mut config = quick_config(ConvMode::Psg(PsgConfig::reference()), 4);
    config.smd = None;
    let mut data = Synthetic::new(8, 4, 4);
    let (out, _) = run(&config, &mut data);
    assert_eq!(out.ledger.executed(), 4);
    let Iteration::Executed { layers, .. } = &out.ledger.iterations()[0] else {
        panic!("executed iteration expected");
    };
    let psg: Vec<_> = layers.iter().filter(|l| l.predictor.is_some()).collect();
    assert!(psg.len() >= 9);
    assert!(psg.iter().any(|l| l.fallback_fraction > 0.0));
    assert!(
        out.history
            .iter()
            .all(|h| h.loss.is_some_and(f64::is_finite))
    );
}

#[test]
fn training_macs_per_image_match_the_spec_constants() {
    // docs/e2-train.md §8 E3 / docs/energy-models.md C.4: ResNet-74 training ≈ 3 × forward ≈ 0.51 G MACs
    // per 32×32 image, ResNet-110 ≈ 0.76 G (backbone convs and FC, gates excluded); 2% tolerance.
    for (depth, expected) in [(74, 0.51e9), (110, 0.76e9)] {
        let init = SeededInit::new(0);
        let config = GatedResnetConfig {
            depth,
            num_classes: 10,
            in_channels: 3,
            conv: ConvMode::Float,
            gates: false,
        };
        let net = gated(config, &init).expect("net");
        let forward: usize = net.layers().iter().map(|l| l.geometry.macs()).sum();
        let training = 3.0 * forward as f64;
        assert!(
            (training / expected - 1.0).abs() < 0.02,
            "resnet{depth}: {training}"
        );
    }
}

#[test]
fn trained_baseline_ledger_equals_the_nominal_one() {
    // Standard training recorded by the trainer is exactly the nominal baseline ledger, so the
    // baseline configuration prices to savings 0.
    let config = quick_config(ConvMode::Psg(PsgConfig::reference()), 2).baseline();
    let (out, _) = run(&config, &mut Synthetic::new(8, 4, 5));
    let (net, _) = tiny(config.model.conv, false, 0);
    let mut c3 = config.clone();
    c3.model.num_classes = 3;
    let nominal = baseline_ledger(&net, &c3, &|_| 4).expect("baseline");
    // Only the FC layer differs between 2 and 3 classes; compare the convs.
    let convs = |l: &tensor_core::WorkLedger| -> Vec<tensor_core::LayerWork> {
        match &l.iterations()[1] {
            Iteration::Executed { layers, .. } => layers[..layers.len() - 1].to_vec(),
            Iteration::Dropped => Vec::new(),
        }
    };
    assert_eq!(convs(&out.ledger), convs(&nominal));
    assert_eq!(out.ledger.executed(), nominal.executed());
}

#[test]
fn evaluating_nothing_is_an_error() {
    let mut config = quick_config(ConvMode::Float, 1);
    config.model.num_classes = 3;
    let (net, _) = tiny(ConvMode::Float, true, 0);
    let mut empty = Synthetic::new(0, 4, 1);
    let err = evaluate(&net, &config, &mut empty, 0).expect_err("no samples");
    assert!(
        matches!(err, Error::Core(tensor_core::Error::EmptyEvaluation { .. })),
        "{err}"
    );
}

#[test]
fn a_batch_the_network_cannot_take_keeps_its_type_through_evaluation() {
    let mut config = quick_config(ConvMode::Float, 1);
    config.model.num_classes = 3;
    let (net, _) = tiny(ConvMode::Float, true, 0);
    let mut wrong = Synthetic::new(8, 4, 1);
    wrong.images = wrong.images.narrow(3, 0, 16).expect("narrow");
    let err = evaluate(&net, &config, &mut wrong, 0).expect_err("16 columns");
    assert!(matches!(err, Error::BadBatch { .. }), "{err}");
}

/// Breaks after the `n`-th executed batch.
struct BreakAfter(usize);

impl Observer for BreakAfter {
    fn on_batch_end(&mut self, _stats: &BatchStats) -> ControlFlow<()> {
        self.0 -= 1;
        if self.0 == 0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

#[test]
fn an_observer_break_is_interrupted_at_its_step() -> TestResult {
    // Two batches per epoch, every iteration executed: the third is epoch 1, batch 0.
    let mut config = quick_config(ConvMode::quantized8(), 6);
    config.smd = None;
    let init = tensor_core::SeededInit::new(config.seed);
    let net = gated(config.model, &init)?;
    let run = TrainRun {
        net: &net,
        params: init.named_vars().into_iter().map(|(_, v)| v).collect(),
        train: &mut Synthetic::new(8, 4, 2),
        eval: None,
    };
    let err = train(run, &config, &mut BreakAfter(3)).expect_err("interrupted");
    match err {
        Error::Core(tensor_core::Error::Interrupted { at }) => {
            assert_eq!(at, Step::new("training", 1, 0));
        }
        other => panic!("{other}"),
    }
    Ok(())
}

#[test]
fn a_nan_loss_is_diverged_at_its_step() -> TestResult {
    let mut config = quick_config(ConvMode::Float, 3);
    config.smd = None;
    let init = tensor_core::SeededInit::new(config.seed);
    let net = gated(config.model, &init)?;
    // A NaN classifier: the ReLUs before it would turn NaN images into zeros.
    let params: Vec<_> = init.named_vars().into_iter().collect();
    let fc = params.iter().find(|(n, _)| n == "fc.weight").expect("fc");
    fc.1.set(&(fc.1.as_tensor().zeros_like()? + f64::NAN)?)?;
    let run = TrainRun {
        net: &net,
        params: params.into_iter().map(|(_, v)| v).collect(),
        train: &mut Synthetic::new(8, 4, 2),
        eval: None,
    };
    let err = train(run, &config, &mut tensor_core::NoopObserver).expect_err("diverged");
    match err {
        Error::Core(tensor_core::Error::Diverged { loss, at }) => {
            assert!(loss.is_nan());
            assert_eq!(at, Step::new("training", 0, 0));
        }
        other => panic!("{other}"),
    }
    Ok(())
}

type Finished = (E2TrainOutcome, Vec<Vec<f32>>);

fn values(params: &[Var]) -> Vec<Vec<f32>> {
    params.iter().map(|v| host(v.as_tensor())).collect()
}

/// `config` trained uninterrupted from a fresh network, with a checkpoint every `every`
/// iterations: the outcome, final parameter values and the checkpoints.
fn with_checkpoints(config: &E2TrainConfig, every: usize) -> (Finished, Vec<Checkpoint>) {
    let init = SeededInit::new(config.seed);
    let net = gated(config.model, &init).expect("net");
    let params: Vec<Var> = init.named_vars().into_iter().map(|(_, v)| v).collect();
    let mut saved = Vec::new();
    let mut save = |c: &Checkpoint| {
        saved.push(c.clone());
        Ok(())
    };
    let run = TrainRun {
        net: &net,
        params: params.clone(),
        train: &mut Synthetic::new(8, 4, 3),
        eval: None,
    };
    let checkpointing = Checkpointing {
        every,
        save: &mut save,
    };
    let observer = &mut RecordingObserver::default();
    let out = train_resumable(run, config, observer, None, Some(checkpointing)).expect("train");
    ((out, values(&params)), saved)
}

/// `config` continued from `checkpoint` in a network of another seed, so that every value it
/// continues from must come from the checkpoint.
fn resumed(config: &E2TrainConfig, checkpoint: Checkpoint) -> e2_train::Result<Finished> {
    let init = SeededInit::new(config.seed + 100);
    let net = gated(config.model, &init).expect("net");
    let params: Vec<Var> = init.named_vars().into_iter().map(|(_, v)| v).collect();
    let run = TrainRun {
        net: &net,
        params: params.clone(),
        train: &mut Synthetic::new(8, 4, 3),
        eval: None,
    };
    let observer = &mut RecordingObserver::default();
    let out = train_resumable(run, config, observer, Some(checkpoint), None)?;
    Ok((out, values(&params)))
}

#[test]
fn a_run_resumed_from_any_checkpoint_ends_bit_for_bit_where_it_would_have() {
    // SMD, SLU gates past their warm-up and PSG with its sign-updated weights: every piece of
    // state a checkpoint carries (generators, both optimisers' momentum, ledger) is exercised.
    let mut config = quick_config(ConvMode::Psg(PsgConfig::reference()), 12);
    config.slu = Some(SluConfig {
        target: 50.0,
        beta: 1e-3,
        warmup: 3,
    });
    config.sign_lr_scale = 0.5;
    let (reference, checkpoints) = with_checkpoints(&config, 4);
    let done: Vec<usize> = checkpoints.iter().map(|c| c.state.done).collect();
    assert_eq!(done, [4, 8], "none after the last iteration");
    assert!(reference.0.ledger.dropped() > 0);
    for checkpoint in checkpoints {
        let after = checkpoint.state.done;
        let (out, values) = resumed(&config, checkpoint).expect("resume");
        assert_eq!(out, reference.0, "outcome resumed after {after} iterations");
        assert_eq!(
            values, reference.1,
            "parameters resumed after {after} iterations"
        );
    }
}

#[test]
fn a_checkpoint_of_another_run_is_refused() {
    let config = quick_config(ConvMode::quantized8(), 8);
    let (_, checkpoints) = with_checkpoints(&config, 4);
    let mut shorter = config.clone();
    shorter.iterations = 4;
    let err = resumed(&shorter, checkpoints[0].clone())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not continue a run of 4 iterations with SMD"),
        "{err}"
    );
    let mut without_smd = config.clone();
    without_smd.smd = None;
    let err = resumed(&without_smd, checkpoints[0].clone())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("after 4 iterations with SMD does not continue"),
        "{err}"
    );
}
