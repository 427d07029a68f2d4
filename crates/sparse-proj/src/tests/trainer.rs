//! The trainer end to end on tensor-core's synthetic two-class task and tiny conv net, with a
//! stand-in energy model whose costs follow the ICLR'19 shape (a fixed input side plus
//! per-weight costs). The real model and LeNet-5 run in the integration tests.

use tensor_core::tensor::{Device, Tensor};
use tensor_core::testing::{TinyNet, TwoClassImages, host};
use tensor_core::{
    Density, EnergyModel, EnergyUnit, LayerEnergy, LayerGeometry, LayerId, LayerSparsity, Network,
    NoopObserver, Precision, RelativeBudget, SgdConfig, Support, WeightCostModel, WeightCosts,
};

use crate::*;

/// Costs shaped like ICLR'19: a fixed input side proportional to the input support, a weight cost
/// growing with the output positions, and a relaxed layer energy that matches them.
struct Stand;

impl Stand {
    fn fixed(g: &LayerGeometry, inputs: &Support) -> f64 {
        let n = g.in_channels() * g.in_h() * g.in_w();
        let nz = inputs.nonzeros(n).unwrap_or(n as u64);
        10.0 * nz as f64
    }
    fn kappa(g: &LayerGeometry) -> f64 {
        3.0 * g.out_positions() as f64 + 20.0
    }
}

impl EnergyModel for Stand {
    fn name(&self) -> String {
        "stand-in".into()
    }
    fn unit(&self) -> EnergyUnit {
        EnergyUnit::RfAccess
    }
    fn layer_energy(
        &self,
        g: &LayerGeometry,
        s: &LayerSparsity,
        _p: Precision,
    ) -> tensor_core::Result<LayerEnergy> {
        let nz = s.weights.nonzeros(g.weights())?;
        Ok(LayerEnergy {
            compute: layer_relaxed_energy(&self.weight_costs(g, &s.inputs)?, nz as usize),
            nonzero_weights: nz,
            ..LayerEnergy::default()
        })
    }
}

impl WeightCostModel for Stand {
    fn weight_costs(
        &self,
        g: &LayerGeometry,
        inputs: &Support,
    ) -> tensor_core::Result<WeightCosts> {
        Ok(WeightCosts {
            fixed: Self::fixed(g, inputs),
            kappa_in: Self::kappa(g),
            kappa_out: Self::kappa(g) + 5.0,
            cached: 20,
        })
    }
}

/// tensor-core's two-class images, one channel, with noise in `[−0.3, 0.3)`.
fn data(n: usize, seed: u64) -> TwoClassImages {
    TwoClassImages::with_noise(n, 1, 0.3, seed)
}

fn config(b: f64) -> ConstrainedConfig {
    ConstrainedConfig {
        relative_budget: RelativeBudget::new(b).unwrap(),
        epochs: 2,
        sgd: SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 1e-4,
        },
        projection_interval: 3,
        distillation: 0.0,
        ..ConstrainedConfig::default()
    }
}

fn run(net: &TinyNet, cfg: &ConstrainedConfig) -> Result<ConstrainedOutcome> {
    run_on(net, cfg, (data(96, 1), data(64, 2)), &mut NoopObserver).map(|t| t.outcome)
}

#[test]
fn final_model_is_within_budget_and_learns() {
    for projection in [
        Projection::Weighted {
            variant: GreedyVariant::Prefix,
        },
        Projection::Magnitude,
    ] {
        let net = TinyNet::plain(3);
        let cfg = ConstrainedConfig {
            projection,
            ..config(0.6)
        };
        let out = run(&net, &cfg).unwrap();
        // Invariant 21.
        assert!(out.within_budget, "{projection:?}: {}", out.energy.relaxed);
        assert!(out.energy.relaxed <= 0.6);
        // The stand-in's own evaluation equals the relaxed one.
        assert!((out.energy.modelled - out.energy.relaxed).abs() < 1e-12);
        assert!(
            out.val_accuracy > 0.9,
            "{projection:?}: {}",
            out.val_accuracy
        );
        assert_eq!(out.history.len(), 2);
        let nz: usize = out.kept_per_layer.iter().sum();
        assert_eq!(nz as u64, out.energy.nonzero_weights);
        assert!(nz < 4 * 9 + 128);
    }
}

#[test]
fn runs_are_deterministic() {
    let a = run(&TinyNet::plain(5), &config(0.5)).unwrap();
    let b = run(&TinyNet::plain(5), &config(0.5)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn budget_below_the_floor_is_an_error_naming_it() {
    // Floor: input side 10·36 + 10·64 = 1000 of the dense energy.
    match run(&TinyNet::plain(1), &config(0.05)) {
        Err(Error::BudgetInfeasible { budget, floor }) => {
            assert_eq!(budget, 0.05);
            assert!(floor > 0.05 && floor < 1.0, "{floor}");
        }
        other => panic!("expected an infeasible budget, got {other:?}"),
    }
}

#[test]
fn masks_lower_the_floor_and_end_binary() {
    let net = TinyNet::plain(7);
    let dense = {
        let costs = weight_costs(&Stand, &net, None).unwrap();
        let e: f64 = net
            .layers()
            .iter()
            .zip(&costs)
            .map(|(l, c)| layer_relaxed_energy(c, l.weight.elem_count()))
            .sum();
        floor_energy(&costs) / e
    };
    // Below the unmasked floor: only reachable after mask rounds shrink the conv input side.
    let b = dense - 0.02;
    let cfg = ConstrainedConfig {
        masks: Some(MaskConfig {
            initial_density: Density::new(0.6).unwrap(),
            density_step: 0.2,
            lr: 0.05,
            max_rounds: 4,
            ..MaskConfig::default()
        }),
        skip_first_w_phase: true,
        ..config(b)
    };
    let out = run(&net, &cfg).unwrap();
    assert!(out.within_budget);
    assert!(out.energy.relaxed <= b);
    // Invariant 20: binary masks at most ⌊ρ·N⌋ entries (N = 36 conv inputs).
    let masks_seen = out.energy.nonzero_inputs;
    assert!(masks_seen <= 21, "{masks_seen}");
    assert!(out.history.iter().any(|h| h.phase == 'M'));
}

#[test]
fn input_masks_clamp_project_and_round() {
    let net = TinyNet::plain(2);
    let masks = InputMasks::ones(net.layers(), &Device::Cpu).unwrap();
    assert_eq!(masks.len(), 36);
    let m = masks.get(LayerId(0)).unwrap();
    let v: Vec<f32> = (0..36).map(|i| i as f32 / 20.0 - 0.4).collect();
    m.set(&Tensor::from_vec(v, (1, 6, 6), &Device::Cpu).unwrap())
        .unwrap();
    masks.clamp_unit().unwrap();
    assert!(host(m.as_tensor()).iter().all(|x| (0.0..=1.0).contains(x)));
    assert_eq!(masks.project(0.5).unwrap(), 18);
    assert!(masks.nonzero().unwrap() <= 18);
    masks.round().unwrap();
    assert!(host(m.as_tensor()).iter().all(|x| *x == 0.0 || *x == 1.0));
    assert!(masks.get(LayerId(1)).is_none());
    assert_eq!(masks.supports().unwrap()[1], Support::Dense);
}

/// Stops the run at the end of batch `at` of the first epoch.
struct StopAt(usize);

impl tensor_core::Observer for StopAt {
    fn on_batch_end(&mut self, stats: &tensor_core::BatchStats) -> std::ops::ControlFlow<()> {
        if stats.batch == self.0 {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    }
}

fn run_on(
    net: &TinyNet,
    cfg: &ConstrainedConfig,
    (mut train, mut val): (TwoClassImages, TwoClassImages),
    observer: &mut dyn tensor_core::Observer,
) -> Result<Trained> {
    let run = ConstrainedRun {
        student: net,
        params: net.params(),
        teacher: None,
        model: &Stand,
        train: &mut train,
        val: &mut val,
    };
    train_constrained(run, cfg, observer)
}

#[test]
fn an_observer_stop_names_the_phase_round_epoch_and_batch() {
    let sets = || (data(96, 1), data(64, 2));
    let err = run_on(&TinyNet::plain(3), &config(0.6), sets(), &mut StopAt(1)).unwrap_err();
    match err {
        Error::Core(tensor_core::Error::Interrupted { at }) => {
            assert_eq!(at, tensor_core::Step::new("W-phase of round 1", 0, 1));
        }
        other => panic!("expected an interruption, got {other:?}"),
    }
    let masked = ConstrainedConfig {
        masks: Some(MaskConfig::default()),
        skip_first_w_phase: true,
        ..config(0.6)
    };
    let err = run_on(&TinyNet::plain(3), &masked, sets(), &mut StopAt(2)).unwrap_err();
    assert!(
        err.to_string()
            .contains("interrupted after M-phase of round 1, epoch 1 batch 3"),
        "{err}"
    );
}

#[test]
fn a_non_finite_loss_is_a_divergence_at_its_step() {
    let net = TinyNet::plain(3);
    // A NaN bias makes every logit NaN (a NaN input would not do: the ReLU maps it to 0).
    let bias = net.layers()[1].bias.as_ref().unwrap();
    bias.set(&(bias.as_tensor() * f64::NAN).unwrap()).unwrap();
    let sets = (data(96, 1), data(64, 2));
    let err = run_on(&net, &config(0.6), sets, &mut NoopObserver).unwrap_err();
    match err {
        Error::Core(tensor_core::Error::Diverged { loss, at }) => {
            assert!(loss.is_nan());
            assert_eq!(at, tensor_core::Step::new("W-phase of round 1", 0, 0));
        }
        other => panic!("expected a divergence, got {other:?}"),
    }
}

#[test]
fn an_empty_validation_set_is_an_error_not_accuracy_zero() {
    let sets = (data(96, 1), data(0, 2));
    let err = run_on(&TinyNet::plain(3), &config(0.6), sets, &mut NoopObserver).unwrap_err();
    assert!(
        matches!(err, Error::Core(tensor_core::Error::EmptyEvaluation { .. })),
        "{err:?}"
    );
}

#[test]
fn configs_and_outcomes_keep_their_json_shape() {
    let cfg = ConstrainedConfig {
        masks: Some(MaskConfig::default()),
        ..ConstrainedConfig::default()
    };
    let json = serde_json::to_value(&cfg).unwrap();
    assert_eq!(json["relative_budget"], 0.2);
    assert_eq!(json["masks"]["initial_density"], 0.9);
    let back: ConstrainedConfig = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, cfg);
    // Out-of-range values are refused while reading, not at run time.
    for (field, value) in [("relative_budget", 0.0), ("relative_budget", 1.5)] {
        let mut bad = json.clone();
        bad[field] = value.into();
        assert!(
            serde_json::from_value::<ConstrainedConfig>(bad).is_err(),
            "{value}"
        );
    }
    let mut bad = json.clone();
    bad["masks"]["initial_density"] = 1.5.into();
    assert!(serde_json::from_value::<ConstrainedConfig>(bad).is_err());
    // An empty first mask passes the density's range but not the config's.
    let mut empty = json;
    empty["masks"]["initial_density"] = 0.0.into();
    let empty: ConstrainedConfig = serde_json::from_value(empty).unwrap();
    assert!(matches!(
        empty.validate(),
        Err(Error::Config {
            field: "masks.initial_density",
            ..
        })
    ));

    let out = run(&TinyNet::plain(5), &config(0.5)).unwrap();
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["relative_budget"], 0.5);
    let back: ConstrainedOutcome = serde_json::from_value(json).unwrap();
    assert_eq!(back, out);
}

/// Records the budget of every projection.
#[derive(Default)]
struct Budgets(Vec<(usize, f64)>);

impl tensor_core::Observer for Budgets {
    fn on_projection(&mut self, stats: &tensor_core::ProjectionStats) {
        self.0.push((stats.epoch, stats.relative_budget));
    }
}

#[test]
fn settling_epochs_project_at_the_target_throughout() {
    let net = TinyNet::plain(3);
    let cfg = ConstrainedConfig {
        epochs: 3,
        settle_epochs: 1,
        ..config(0.5)
    };
    let mut budgets = Budgets::default();
    run_on(&net, &cfg, (data(96, 1), data(64, 2)), &mut budgets).unwrap();
    let at = |epoch: usize| -> Vec<f64> {
        budgets
            .0
            .iter()
            .filter(|(e, _)| *e == epoch)
            .map(|p| p.1)
            .collect()
    };
    // The descent ends with epoch 1 at the target; epoch 2 holds it from its first projection.
    assert!(at(0).iter().all(|&b| b > 0.5 + 1e-9), "{:?}", at(0));
    assert!((at(1).last().unwrap() - 0.5).abs() < 1e-6);
    assert!(!at(2).is_empty());
    assert!(at(2).iter().all(|&b| (b - 0.5).abs() < 1e-6), "{:?}", at(2));
}

#[test]
fn settling_every_epoch_is_rejected() {
    let cfg = ConstrainedConfig {
        settle_epochs: 2,
        ..config(0.5)
    };
    assert!(matches!(
        cfg.validate(),
        Err(Error::Config {
            field: "settle_epochs",
            ..
        })
    ));
}
