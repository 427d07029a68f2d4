//! The layer procedure and the whole run on tensor-core's tiny conv + FC test network, its
//! synthetic two-class images and a stand-in energy model whose layer energy grows with the
//! weight density. The real model and LeNet-5 run in the integration tests.

use std::ops::ControlFlow;

use tensor_core::tensor::{Device, Tensor, Var};
use tensor_core::testing::{TinyNet as Tiny, TwoClassImages as Data, host, host_f64};
use tensor_core::{
    BatchSource, BatchStats, Density, EnergyUnit, LayerId, LayerKind, Network, NoopObserver,
    Observer, RecordingObserver, SgdConfig, Step,
};

use crate::prune::{candidate, local_data, snapshot};
use crate::*;

tensor_core::linear_energy_model!(
    /// Energy = 3·(output positions + 1) per nonzero weight + 1 per nonzero input: strictly
    /// increasing in the weight density, like model B.
    Stand,
    "stand-in",
    EnergyUnit::Mac16,
    |g| 3.0 * (g.out_positions() + 1) as f64,
    1.0
);

fn config() -> EnergyPruneConfig {
    EnergyPruneConfig {
        calibration_images: 64,
        positions_per_image: 6,
        ratio_search: RatioSearch::Step {
            step: 0.1,
            max_ratio: 0.9,
        },
        restore: RestoreConfig {
            threshold: 1e-4,
            max_fraction: 0.25,
        },
        ridge_lambda: 1e-3,
        fit_bias: true,
        max_condition: 1e10,
        budget_split: BudgetSplit::Cumulative,
        max_accuracy_drop: 0.05,
        activation_density: ActivationDensity::Measured,
        finetune: FineTuneConfig {
            epochs: 1,
            sgd: SgdConfig {
                lr: 0.01,
                momentum: 0.9,
                weight_decay: 0.0,
            },
        },
        seed: 3,
    }
}

/// A trained tiny network (dense fine-tuning is plain training).
fn trained(seed: u64) -> Tiny {
    let net = Tiny::plain(seed);
    let (mut train, mut val) = (Data::new(128, 1, 1), Data::new(64, 1, 2));
    let cfg = FineTuneConfig {
        epochs: 6,
        sgd: SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 0.0,
        },
    };
    let acc = fine_tune(
        &net,
        &net.params(),
        &mut train,
        &mut val,
        cfg,
        &mut NoopObserver,
    )
    .unwrap();
    assert!(acc > 0.9, "training the tiny network reached only {acc}");
    net
}

/// Records which weights are nonzero after every fine-tuning step.
struct Watch {
    weights: Vec<Var>,
    seen: Vec<Vec<Vec<bool>>>,
}

impl Observer for Watch {
    fn on_batch_end(&mut self, _stats: &BatchStats) -> ControlFlow<()> {
        self.seen.push(
            self.weights
                .iter()
                .map(|w| host(w.as_tensor()).iter().map(|x| *x != 0.0).collect())
                .collect(),
        );
        ControlFlow::Continue(())
    }
}

/// `method` on `net` under the stand-in model, with `cal_images` calibration images and the
/// training and validation sets `trained` uses.
fn with_run<T>(net: &Tiny, cal_images: usize, method: impl FnOnce(PruneRun<'_>) -> T) -> T {
    with_run_on(net, cal_images, Data::new(64, 1, 2), method)
}

/// [`with_run`] with the validation set `val`.
fn with_run_on<T>(
    net: &Tiny,
    cal_images: usize,
    mut val: Data,
    method: impl FnOnce(PruneRun<'_>) -> T,
) -> T {
    let (mut cal, mut train) = (Data::new(cal_images, 1, 5), Data::new(128, 1, 1));
    method(PruneRun {
        network: net,
        params: net.params(),
        model: &Stand,
        calibration: &mut cal,
        val: &mut val,
        train: &mut train,
    })
}

fn prune(net: &Tiny, observer: &mut dyn Observer) -> PruneOutcome {
    with_run(net, 64, |run| prune_energy_aware(run, &config(), observer)).unwrap()
}

#[test]
fn pruned_network_stays_within_budget_and_uses_less_energy() {
    let net = trained(11);
    let mut watch = Watch {
        weights: net.layers().iter().map(|l| l.weight.clone()).collect(),
        seen: Vec::new(),
    };
    let out = prune(&net, &mut watch);
    // R7.
    assert!(out.within_budget);
    assert!(
        out.accuracy_original - out.accuracy_final <= 0.05 + 1e-12,
        "{out:?}"
    );
    assert!(out.energy_after < out.energy_before, "{out:?}");
    assert_eq!(out.energy_model, "stand-in");
    assert_eq!(out.layers.len(), 2);
    // R5: with every layer unprocessed the first pick had the highest energy.
    let first = out.order[0].0;
    assert!(
        out.layers
            .iter()
            .all(|l| l.energy_before <= out.layers[first].energy_before)
    );
    assert_eq!(
        out.layers[first].energy_at_selection,
        Some(out.layers[first].energy_before)
    );
    let mut order = out.order.clone();
    order.sort();
    assert_eq!(order, vec![LayerId(0), LayerId(1)]);
    // Something was pruned, and the masks describe the final weights.
    assert!(out.layers.iter().any(|l| l.ratio > 0.0));
    for (l, w) in out.layers.iter().zip(net.host()) {
        assert_eq!(
            l.mask.count_ones(),
            w.iter().filter(|v| **v != 0.0).count() as u64
        );
        assert!(l.energy_after <= l.energy_before);
    }
    // R4: no pruned weight came back during any fine-tuning step.
    assert!(!watch.seen.is_empty());
    for step in &watch.seen {
        for (bits, l) in step.iter().zip(&out.layers) {
            for (i, &b) in bits.iter().enumerate() {
                assert!(
                    !b || l.mask.get(i),
                    "pruned weight {i} of {} revived",
                    l.name
                );
            }
        }
    }
}

#[test]
fn runs_are_deterministic() {
    // R8.
    let (a, b) = (trained(4), trained(4));
    let (oa, ob) = (prune(&a, &mut NoopObserver), prune(&b, &mut NoopObserver));
    assert_eq!(oa, ob);
    let bits = |n: &Tiny| -> Vec<Vec<u32>> {
        n.host()
            .iter()
            .map(|w| w.iter().map(|v| v.to_bits()).collect())
            .collect()
    };
    assert_eq!(bits(&a), bits(&b));
}

/// `net`'s weights as they are (the refit targets) and `n` calibration images of its input
/// channels.
fn calibration(net: &Tiny, n: usize) -> (Vec<(Tensor, Option<Tensor>)>, Vec<Tensor>) {
    let images = Data::new(n, net.input_shape()[0], 7).images();
    (snapshot(net.layers()).unwrap(), images)
}

fn solve_options(lambda: f64) -> SolveOptions {
    SolveOptions {
        lambda,
        max_condition: 1e10,
    }
}

#[test]
fn ratio_zero_without_ridge_reproduces_the_weights() {
    // R9, with strided, padded and grouped convolutions exercising the im2col rows.
    let mut fc_checked = 0;
    for (c_in, stride, padding, groups) in [(1, 1, 0, 1), (2, 2, 1, 2), (2, 1, 1, 1), (2, 2, 0, 1)]
    {
        let net = Tiny::new(9, c_in, stride, padding, groups);
        let (original, cal) = calibration(&net, 160);
        let cfg = EnergyPruneConfig {
            ridge_lambda: 0.0,
            positions_per_image: 64,
            restore: RestoreConfig {
                threshold: 0.0,
                max_fraction: 0.0,
            },
            ..config()
        };
        for layer in net.layers() {
            let data = local_data(&net, layer, &original, &cal, &cfg).unwrap();
            let w0 = host_f64(layer.weight.as_tensor());
            let b0 = host_f64(layer.bias.as_ref().unwrap().as_tensor());
            let opts = solve_options(0.0);
            let c = match candidate(&data, layer, &w0, Some(&b0), 0.0, &cfg, opts) {
                Ok(c) => c,
                // The FC layer sees 4·h'·w' ReLU outputs of at most 2·36 pixels: its `X` need not
                // have full column rank, and then the system is reported, not solved.
                Err(Error::SingularSystem { layer: id, .. }) if layer.kind == LayerKind::Fc => {
                    assert_eq!(id, layer.id);
                    continue;
                }
                Err(e) => panic!("{} ({c_in},{stride},{padding},{groups}): {e}", layer.name),
            };
            if layer.kind == LayerKind::Fc {
                fc_checked += 1;
            }
            for (i, (a, b)) in c.weights.iter().zip(&w0).enumerate() {
                assert!(
                    (a - b).abs() < 1e-3,
                    "{} ({c_in},{stride},{padding},{groups}) weight {i}: {a} vs {b}",
                    layer.name
                );
            }
            for (a, b) in c.bias.unwrap().iter().zip(&b0) {
                assert!((a - b).abs() < 1e-3, "{} bias: {a} vs {b}", layer.name);
            }
        }
    }
    // The stride-2 unpadded conv leaves 2·2·4 = 16 FC inputs from 72 pixels: full rank.
    assert!(fc_checked >= 1);
}

#[test]
fn removed_weights_are_exactly_zero_and_restoration_is_bounded() {
    // R4 for removal, restoration and the local fit.
    let net = Tiny::plain(2);
    let (original, cal) = calibration(&net, 48);
    let cfg = EnergyPruneConfig {
        restore: RestoreConfig {
            threshold: 0.0,
            max_fraction: 0.5,
        },
        ..config()
    };
    let layer = &net.layers()[0];
    let data = local_data(&net, layer, &original, &cal, &cfg).unwrap();
    let w0 = host_f64(layer.weight.as_tensor());
    let opts = solve_options(1e-3 * data.rows as f64);
    let c = candidate(&data, layer, &w0, None, 0.5, &cfg, opts).unwrap();
    let removed = (0.5 * w0.len() as f64).round() as u64;
    let zeros = c.weights.iter().filter(|v| **v == 0.0).count() as u64;
    assert_eq!(zeros, removed - c.restored);
    assert!(c.restored <= 4 * (removed / 4).div_ceil(2));
    // The smallest-magnitude weight of the layer is always a removal candidate; with no
    // restoration at all it stays exactly zero.
    let none = EnergyPruneConfig {
        restore: RestoreConfig {
            threshold: 0.0,
            max_fraction: 0.0,
        },
        ..cfg
    };
    let c = candidate(&data, layer, &w0, None, 0.5, &none, opts).unwrap();
    let smallest = (0..w0.len())
        .min_by(|&a, &b| w0[a].abs().total_cmp(&w0[b].abs()))
        .unwrap();
    assert_eq!(c.weights[smallest].to_bits(), 0.0f64.to_bits());
    assert_eq!(c.restored, 0);
}

#[test]
fn underdetermined_layer_is_a_singular_system_error() {
    // 4 calibration images for an FC layer with 64 inputs and a bias, no ridge.
    let net = Tiny::plain(2);
    let (original, cal) = calibration(&net, 4);
    let cfg = EnergyPruneConfig {
        ridge_lambda: 0.0,
        ..config()
    };
    let layer = &net.layers()[1];
    let data = local_data(&net, layer, &original, &cal, &cfg).unwrap();
    let w0 = vec![1.0; 64 * 2];
    let opts = solve_options(0.0);
    match candidate(&data, layer, &w0, Some(&[0.0, 0.0]), 0.0, &cfg, opts) {
        Err(Error::SingularSystem {
            layer,
            filter,
            cond,
        }) => {
            assert_eq!((layer, filter), (LayerId(1), 0));
            assert!(cond > 1e10);
        }
        other => panic!(
            "expected a singular system, got {:?}",
            other.map(|c| c.restored)
        ),
    }
}

#[test]
fn magnitude_baseline_keeps_the_requested_density() {
    let net = trained(6);
    let magnitude = |target: &MagnitudeTarget| {
        with_run(&net, 8, |run| {
            prune_magnitude(run, target, config().finetune, &mut NoopObserver)
        })
    };
    let out = magnitude(&MagnitudeTarget::Global(Density::new(0.5).unwrap())).unwrap();
    let total: usize = net.layers().iter().map(|l| l.weight.elem_count()).sum();
    assert!(out.nonzero_weights() <= (total / 2) as u64);
    assert!(out.energy_after < out.energy_before);
    assert_eq!(out.method, Method::Magnitude);
    let per_layer = MagnitudeTarget::PerLayer(vec![Density::new(0.5).unwrap()]);
    let err = magnitude(&per_layer);
    assert!(matches!(err, Err(Error::Dimension { .. })));
}

#[test]
fn dense_activation_energies_never_increase_over_the_layer_loop() {
    // R6: with activation densities held fixed, each accepted layer lowers (or keeps) the
    // network energy.
    let net = trained(8);
    let cfg = EnergyPruneConfig {
        activation_density: ActivationDensity::Dense,
        ratio_search: RatioSearch::Bisection {
            max_ratio: 0.95,
            iterations: 3,
        },
        budget_split: BudgetSplit::EnergyWeighted,
        ..config()
    };
    let out = with_run(&net, 64, |run| {
        prune_energy_aware(run, &cfg, &mut NoopObserver)
    })
    .unwrap();
    let mut previous = out.energy_before;
    for id in &out.order {
        let e = out.layers[id.0].network_energy_after.unwrap();
        assert!(e <= previous, "{e} > {previous}");
        previous = e;
        // Dense activations: the energy at selection is the unpruned layer's.
        assert_eq!(
            out.layers[id.0].energy_at_selection,
            Some(out.layers[id.0].energy_before)
        );
    }
    assert_eq!(out.budget_split, Some(BudgetSplit::EnergyWeighted));
}

#[test]
fn filter_parallelism_does_not_change_the_result() {
    // R8 across thread counts: filters are solved independently and collected in order.
    let net = Tiny::new(3, 2, 1, 1, 2);
    let (original, cal) = calibration(&net, 32);
    let cfg = config();
    let layer = &net.layers()[0];
    let data = local_data(&net, layer, &original, &cal, &cfg).unwrap();
    let w0 = host_f64(layer.weight.as_tensor());
    let opts = solve_options(1e-3 * data.rows as f64);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| candidate(&data, layer, &w0, Some(&[0.0; 4]), 0.6, &cfg, opts).unwrap())
    };
    let (a, b) = (run(1), run(3));
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.weights), bits(&b.weights));
    assert_eq!(bits(&a.bias.unwrap()), bits(&b.bias.unwrap()));
    assert_eq!(a.restored, b.restored);
}

fn finetune_config(epochs: usize) -> FineTuneConfig {
    FineTuneConfig {
        epochs,
        ..config().finetune
    }
}

#[test]
fn an_observer_stop_is_interrupted_at_the_last_finished_step() {
    // 128 samples in batches of 16: the tenth batch is the second of epoch 2.
    let net = Tiny::plain(5);
    let (mut train, mut val) = (Data::new(128, 1, 1), Data::new(32, 1, 2));
    let mut observer = RecordingObserver {
        stop_after_batches: Some(10),
        ..RecordingObserver::default()
    };
    let err = fine_tune(
        &net,
        &net.params(),
        &mut train,
        &mut val,
        finetune_config(3),
        &mut observer,
    )
    .unwrap_err();
    match err {
        Error::Core(tensor_core::Error::Interrupted { at }) => {
            assert_eq!(at, Step::new("fine-tuning", 1, 1));
        }
        other => panic!("expected an interruption, got {other}"),
    }
}

#[test]
fn a_non_finite_loss_is_diverged_at_its_step() {
    // A NaN FC weight makes every logit NaN (a NaN input could be cut off by the ReLU).
    let net = Tiny::plain(5);
    let fc = &net.layers()[1].weight;
    fc.set(&Tensor::full(f32::NAN, fc.dims(), &Device::Cpu).unwrap())
        .unwrap();
    let (mut train, mut val) = (Data::new(32, 1, 1), Data::new(32, 1, 2));
    let err = fine_tune(
        &net,
        &net.params(),
        &mut train,
        &mut val,
        finetune_config(1),
        &mut NoopObserver,
    )
    .unwrap_err();
    match err {
        Error::Core(tensor_core::Error::Diverged { loss, at }) => {
            assert!(loss.is_nan());
            assert_eq!(at, Step::new("fine-tuning", 0, 0));
        }
        other => panic!("expected divergence, got {other}"),
    }
}

#[test]
fn an_empty_validation_source_is_an_empty_evaluation() {
    let net = Tiny::plain(5);
    let (mut train, mut val) = (Data::new(32, 1, 1), Data::new(0, 1, 2));
    let err = fine_tune(
        &net,
        &net.params(),
        &mut train,
        &mut val,
        finetune_config(0),
        &mut NoopObserver,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Core(tensor_core::Error::EmptyEvaluation { .. })),
        "{err}"
    );
}

mod targeted;
