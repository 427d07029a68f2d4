//! The trainer end to end on a synthetic two-class task with a tiny conv net and a stand-in
//! energy model whose costs follow the ICLR'19 shape (a fixed input side plus per-weight costs).
//! The real model and LeNet-5 run in the integration tests.

use tensor_core::tensor::{DType, Device, Tensor, Var};
use tensor_core::{
    BatchSource, ConvParams, Density, EnergyModel, EnergyUnit, LayerEnergy, LayerGeometry, LayerId,
    LayerInfo, LayerKind, LayerSparsity, Network, NoopObserver, Precision, RelativeBudget,
    SgdConfig, Support, Taps, WeightCostModel, WeightCosts,
};

use crate::*;

struct Tiny {
    layers: Vec<LayerInfo>,
}

impl Tiny {
    fn new(seed: u64) -> Self {
        let dev = Device::Cpu;
        let mut rng = tensor_core::rng(seed, "tiny");
        let mut init = |dims: &[usize], scale: f32| {
            use rand::Rng as _;
            let n: usize = dims.iter().product();
            let v: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
            Var::from_tensor(&Tensor::from_vec(v, dims, &dev).unwrap()).unwrap()
        };
        let conv = LayerGeometry::conv([1, 6, 6], 4, ConvParams::square(3)).unwrap();
        let fc = LayerGeometry::fc(4, 4, 4, 2).unwrap();
        let layers = vec![
            LayerInfo {
                id: LayerId(0),
                name: "conv".into(),
                kind: LayerKind::Conv,
                geometry: conv,
                weight: init(&[4, 1, 3, 3], 0.5),
                bias: Some(init(&[4], 0.1)),
            },
            LayerInfo {
                id: LayerId(1),
                name: "fc".into(),
                kind: LayerKind::Fc,
                geometry: fc,
                weight: init(&[2, 64], 0.2),
                bias: Some(init(&[2], 0.1)),
            },
        ];
        Self { layers }
    }

    fn params(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|l| [Some(l.weight.clone()), l.bias.clone()])
            .flatten()
            .collect()
    }
}

impl Network for Tiny {
    fn arch(&self) -> &str {
        "tiny"
    }
    fn input_shape(&self) -> [usize; 3] {
        [1, 6, 6]
    }
    fn num_classes(&self) -> usize {
        2
    }
    fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }
    fn forward_tapped(
        &self,
        xs: &Tensor,
        _train: bool,
        taps: &mut dyn Taps,
    ) -> tensor_core::Result<Tensor> {
        let mut xs = xs.clone();
        for l in &self.layers {
            if let Some(r) = taps.pre(l.id, &xs)? {
                xs = r;
            }
            let input = xs.clone();
            let b = l.bias.as_ref().map(|b| b.as_tensor());
            let ys = match l.kind {
                LayerKind::Conv => {
                    let ys = xs.conv2d(l.weight.as_tensor(), 0, 1, 1, 1)?;
                    ys.broadcast_add(&b.unwrap().reshape((1, 4, 1, 1))?)?
                }
                LayerKind::Fc => xs
                    .flatten_from(1)?
                    .matmul(&l.weight.as_tensor().t()?)?
                    .broadcast_add(b.unwrap())?,
            };
            taps.post(l.id, &input, &ys)?;
            xs = if l.kind == LayerKind::Conv {
                ys.relu()?
            } else {
                ys
            };
        }
        Ok(xs)
    }
}

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

/// Class 1 images are bright in the centre, class 0 in the border.
struct Data {
    xs: Tensor,
    ys: Tensor,
    batch: usize,
}

impl Data {
    fn new(n: usize, seed: u64) -> Self {
        use rand::Rng as _;
        let mut rng = tensor_core::rng(seed, "data");
        let mut xs = Vec::with_capacity(n * 36);
        let mut ys = Vec::with_capacity(n);
        for i in 0..n {
            let label = (i % 2) as u32;
            for r in 0..6 {
                for c in 0..6 {
                    let centre = (1..5).contains(&r) && (1..5).contains(&c);
                    let on = centre == (label == 1);
                    xs.push(if on { 1.0 } else { 0.0 } + rng.random_range(-0.3f32..0.3));
                }
            }
            ys.push(label);
        }
        Self {
            xs: Tensor::from_vec(xs, (n, 1, 6, 6), &Device::Cpu).unwrap(),
            ys: Tensor::from_vec(ys, n, &Device::Cpu).unwrap(),
            batch: 16,
        }
    }
}

impl BatchSource for Data {
    fn batches_per_epoch(&self) -> usize {
        self.xs.dim(0).unwrap().div_ceil(self.batch)
    }
    fn batch(&mut self, _epoch: usize, index: usize) -> tensor_core::Result<(Tensor, Tensor)> {
        let n = self.xs.dim(0)?;
        let start = index * self.batch;
        let len = self.batch.min(n - start);
        Ok((
            self.xs.narrow(0, start, len)?,
            self.ys.narrow(0, start, len)?,
        ))
    }
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

fn run(net: &Tiny, cfg: &ConstrainedConfig) -> Result<ConstrainedOutcome> {
    let (mut train, mut val) = (Data::new(96, 1), Data::new(64, 2));
    train_constrained(
        ConstrainedRun {
            student: net,
            params: net.params(),
            teacher: None,
            model: &Stand,
            train: &mut train,
            val: &mut val,
        },
        cfg,
        &mut NoopObserver,
    )
    .map(|t| t.outcome)
}

#[test]
fn final_model_is_within_budget_and_learns() {
    for projection in [
        Projection::Weighted {
            variant: GreedyVariant::Prefix,
        },
        Projection::Magnitude,
    ] {
        let net = Tiny::new(3);
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
    let a = run(&Tiny::new(5), &config(0.5)).unwrap();
    let b = run(&Tiny::new(5), &config(0.5)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn budget_below_the_floor_is_an_error_naming_it() {
    // Floor: input side 10·36 + 10·64 = 1000 of the dense energy.
    match run(&Tiny::new(1), &config(0.05)) {
        Err(Error::BudgetInfeasible { budget, floor }) => {
            assert_eq!(budget, 0.05);
            assert!(floor > 0.05 && floor < 1.0, "{floor}");
        }
        other => panic!("expected an infeasible budget, got {other:?}"),
    }
}

#[test]
fn masks_lower_the_floor_and_end_binary() {
    let net = Tiny::new(7);
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
    let mut masks_seen = None;
    let out = {
        let (mut train, mut val) = (Data::new(96, 1), Data::new(64, 2));
        let run = ConstrainedRun {
            student: &net,
            params: net.params(),
            teacher: None,
            model: &Stand,
            train: &mut train,
            val: &mut val,
        };
        let out = train_constrained(run, &cfg, &mut NoopObserver)
            .unwrap()
            .outcome;
        masks_seen.replace(out.energy.nonzero_inputs);
        out
    };
    assert!(out.within_budget);
    assert!(out.energy.relaxed <= b);
    // Invariant 20: binary masks at most ⌊ρ·N⌋ entries (N = 36 conv inputs).
    assert!(masks_seen.unwrap() <= 21, "{masks_seen:?}");
    assert!(out.history.iter().any(|h| h.phase == 'M'));
    let _ = DType::F32;
}

#[test]
fn input_masks_clamp_project_and_round() {
    let net = Tiny::new(2);
    let masks = InputMasks::ones(net.layers(), &Device::Cpu).unwrap();
    assert_eq!(masks.len(), 36);
    let m = masks.get(LayerId(0)).unwrap();
    let v: Vec<f32> = (0..36).map(|i| i as f32 / 20.0 - 0.4).collect();
    m.set(&Tensor::from_vec(v, (1, 6, 6), &Device::Cpu).unwrap())
        .unwrap();
    masks.clamp_unit().unwrap();
    let host: Vec<f32> = m.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    assert!(host.iter().all(|x| (0.0..=1.0).contains(x)));
    assert_eq!(masks.project(0.5).unwrap(), 18);
    assert!(masks.nonzero().unwrap() <= 18);
    masks.round().unwrap();
    let host: Vec<f32> = m.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    assert!(host.iter().all(|x| *x == 0.0 || *x == 1.0));
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
    net: &Tiny,
    cfg: &ConstrainedConfig,
    (mut train, mut val): (Data, Data),
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
    let data = || (Data::new(96, 1), Data::new(64, 2));
    let err = run_on(&Tiny::new(3), &config(0.6), data(), &mut StopAt(1)).unwrap_err();
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
    let err = run_on(&Tiny::new(3), &masked, data(), &mut StopAt(2)).unwrap_err();
    assert!(
        err.to_string()
            .contains("interrupted after M-phase of round 1, epoch 1 batch 3"),
        "{err}"
    );
}

#[test]
fn a_non_finite_loss_is_a_divergence_at_its_step() {
    let net = Tiny::new(3);
    // A NaN bias makes every logit NaN (a NaN input would not do: the ReLU maps it to 0).
    let bias = net.layers[1].bias.as_ref().unwrap();
    bias.set(&(bias.as_tensor() * f64::NAN).unwrap()).unwrap();
    let data = (Data::new(96, 1), Data::new(64, 2));
    let err = run_on(&net, &config(0.6), data, &mut NoopObserver).unwrap_err();
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
    let data = (Data::new(96, 1), Data::new(0, 2));
    let err = run_on(&Tiny::new(3), &config(0.6), data, &mut NoopObserver).unwrap_err();
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

    let out = run(&Tiny::new(5), &config(0.5)).unwrap();
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["relative_budget"], 0.5);
    let back: ConstrainedOutcome = serde_json::from_value(json).unwrap();
    assert_eq!(back, out);
}
