//! The layer procedure and the whole run on a tiny hand-written conv + FC network, synthetic
//! data and a stand-in energy model whose layer energy grows with the weight density. The real
//! model and LeNet-5 run in the integration tests.

use std::ops::ControlFlow;

use tensor_core::tensor::{Device, Tensor, Var};
use tensor_core::{
    BatchSource, BatchStats, ConvParams, Density, EnergyModel, EnergyUnit, LayerEnergy,
    LayerGeometry, LayerId, LayerInfo, LayerKind, LayerSparsity, Network, NoopObserver, Observer,
    Precision, RecordingObserver, SgdConfig, Step, Taps,
};

use crate::prune::{candidate, local_data, snapshot};
use crate::*;

/// conv (c_in → 4, 3×3, given stride/padding/groups) → ReLU → fc (→ 2).
struct Tiny {
    layers: Vec<LayerInfo>,
    stride: usize,
    padding: usize,
    groups: usize,
}

impl Tiny {
    fn new(seed: u64, c_in: usize, stride: usize, padding: usize, groups: usize) -> Self {
        use rand::Rng as _;
        let dev = Device::Cpu;
        let mut rng = tensor_core::rng(seed, "tiny");
        let mut init = |dims: &[usize], scale: f32| {
            let n: usize = dims.iter().product();
            let v: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
            Var::from_tensor(&Tensor::from_vec(v, dims, &dev).unwrap()).unwrap()
        };
        let conv = LayerGeometry::conv(
            [c_in, 6, 6],
            4,
            ConvParams::square(3)
                .stride(stride)
                .padding(padding)
                .groups(groups),
        )
        .unwrap();
        let fc = LayerGeometry::fc(4, conv.out_h(), conv.out_w(), 2).unwrap();
        let layers = vec![
            LayerInfo {
                id: LayerId(0),
                name: "conv".into(),
                kind: LayerKind::Conv,
                geometry: conv,
                weight: init(&conv.weight_shape(), 0.5),
                bias: Some(init(&[4], 0.1)),
            },
            LayerInfo {
                id: LayerId(1),
                name: "fc".into(),
                kind: LayerKind::Fc,
                geometry: fc,
                weight: init(&fc.weight_shape(), 0.2),
                bias: Some(init(&[2], 0.1)),
            },
        ];
        Self {
            layers,
            stride,
            padding,
            groups,
        }
    }

    fn plain(seed: u64) -> Self {
        Self::new(seed, 1, 1, 0, 1)
    }

    fn params(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|l| [Some(l.weight.clone()), l.bias.clone()])
            .flatten()
            .collect()
    }

    fn host(&self) -> Vec<Vec<f32>> {
        self.layers
            .iter()
            .map(|l| {
                l.weight
                    .as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap()
            })
            .collect()
    }
}

impl Network for Tiny {
    fn arch(&self) -> &str {
        "tiny"
    }
    fn input_shape(&self) -> [usize; 3] {
        [self.layers[0].geometry.in_channels(), 6, 6]
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
            let b = l.bias.as_ref().map(|b| b.as_tensor()).unwrap();
            let ys = match l.kind {
                LayerKind::Conv => xs
                    .conv2d(
                        l.weight.as_tensor(),
                        self.padding,
                        self.stride,
                        1,
                        self.groups,
                    )?
                    .broadcast_add(&b.reshape((1, 4, 1, 1))?)?,
                LayerKind::Fc => xs
                    .flatten_from(1)?
                    .matmul(&l.weight.as_tensor().t()?)?
                    .broadcast_add(b)?,
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

/// Energy = 3·(output positions + 1) per nonzero weight + 1 per nonzero input: strictly
/// increasing in the weight density, like model B.
struct Stand;

impl EnergyModel for Stand {
    fn name(&self) -> String {
        "stand-in".into()
    }
    fn unit(&self) -> EnergyUnit {
        EnergyUnit::Mac16
    }
    fn layer_energy(
        &self,
        g: &LayerGeometry,
        s: &LayerSparsity,
        _p: Precision,
    ) -> tensor_core::Result<LayerEnergy> {
        let nz = s.weights.nonzeros(g.weights())?;
        let inputs = s.inputs.nonzeros(g.in_features())?;
        Ok(LayerEnergy {
            compute: 3.0 * (g.out_positions() + 1) as f64 * nz as f64 + inputs as f64,
            nonzero_weights: nz,
            ..LayerEnergy::default()
        })
    }
}

/// Class 1 images are bright in the centre, class 0 in the border; every channel alike.
struct Data {
    xs: Tensor,
    ys: Tensor,
    batch: usize,
}

impl Data {
    fn new(n: usize, channels: usize, seed: u64) -> Self {
        use rand::Rng as _;
        let mut rng = tensor_core::rng(seed, "data");
        let mut xs = Vec::with_capacity(n * 36 * channels);
        let mut ys = Vec::with_capacity(n);
        for i in 0..n {
            let label = (i % 2) as u32;
            for _ in 0..channels {
                for r in 0..6 {
                    for c in 0..6 {
                        let centre = (1..5).contains(&r) && (1..5).contains(&c);
                        let on = centre == (label == 1);
                        xs.push(if on { 1.0 } else { 0.0 } + rng.random_range(-0.4f32..0.4));
                    }
                }
            }
            ys.push(label);
        }
        Self {
            xs: Tensor::from_vec(xs, (n, channels, 6, 6), &Device::Cpu).unwrap(),
            ys: Tensor::from_vec(ys, n, &Device::Cpu).unwrap(),
            batch: 16,
        }
    }

    fn images(&self) -> Vec<Tensor> {
        vec![self.xs.clone()]
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
                .map(|w| {
                    let v: Vec<f32> = w.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
                    v.iter().map(|x| *x != 0.0).collect()
                })
                .collect(),
        );
        ControlFlow::Continue(())
    }
}

fn prune(net: &Tiny, observer: &mut dyn Observer) -> PruneOutcome {
    let (mut cal, mut train, mut val) = (
        Data::new(64, 1, 5),
        Data::new(128, 1, 1),
        Data::new(64, 1, 2),
    );
    prune_energy_aware(
        PruneRun {
            network: net,
            params: net.params(),
            model: &Stand,
            calibration: &mut cal,
            val: &mut val,
            train: &mut train,
        },
        &config(),
        observer,
    )
    .unwrap()
}

#[test]
fn pruned_network_stays_within_budget_and_uses_less_energy() {
    let net = trained(11);
    let mut watch = Watch {
        weights: net.layers.iter().map(|l| l.weight.clone()).collect(),
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

#[test]
fn ratio_zero_without_ridge_reproduces_the_weights() {
    // R9, with strided, padded and grouped convolutions exercising the im2col rows.
    let mut fc_checked = 0;
    for (c_in, stride, padding, groups) in [(1, 1, 0, 1), (2, 2, 1, 2), (2, 1, 1, 1), (2, 2, 0, 1)]
    {
        let net = Tiny::new(9, c_in, stride, padding, groups);
        let original = snapshot(net.layers()).unwrap();
        let cal = Data::new(160, c_in, 7).images();
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
            let w0: Vec<f64> = layer
                .weight
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_dtype(tensor_core::DType::F64)
                .unwrap()
                .to_vec1()
                .unwrap();
            let b0: Vec<f64> = layer
                .bias
                .as_ref()
                .unwrap()
                .as_tensor()
                .to_dtype(tensor_core::DType::F64)
                .unwrap()
                .to_vec1()
                .unwrap();
            let opts = SolveOptions {
                lambda: 0.0,
                max_condition: 1e10,
            };
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
    let original = snapshot(net.layers()).unwrap();
    let cal = Data::new(48, 1, 7).images();
    let cfg = EnergyPruneConfig {
        restore: RestoreConfig {
            threshold: 0.0,
            max_fraction: 0.5,
        },
        ..config()
    };
    let layer = &net.layers()[0];
    let data = local_data(&net, layer, &original, &cal, &cfg).unwrap();
    let w0: Vec<f64> = layer
        .weight
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_dtype(tensor_core::DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap();
    let opts = SolveOptions {
        lambda: 1e-3 * data.rows as f64,
        max_condition: 1e10,
    };
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
    let original = snapshot(net.layers()).unwrap();
    let cal = Data::new(4, 1, 7).images();
    let cfg = EnergyPruneConfig {
        ridge_lambda: 0.0,
        ..config()
    };
    let layer = &net.layers()[1];
    let data = local_data(&net, layer, &original, &cal, &cfg).unwrap();
    let w0 = vec![1.0; 64 * 2];
    let opts = SolveOptions {
        lambda: 0.0,
        max_condition: 1e10,
    };
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
    let (mut train, mut val) = (Data::new(128, 1, 1), Data::new(64, 1, 2));
    let mut cal = Data::new(8, 1, 5);
    let out = prune_magnitude(
        PruneRun {
            network: &net,
            params: net.params(),
            model: &Stand,
            calibration: &mut cal,
            val: &mut val,
            train: &mut train,
        },
        &MagnitudeTarget::Global(Density::new(0.5).unwrap()),
        config().finetune,
        &mut NoopObserver,
    )
    .unwrap();
    let total: usize = net.layers().iter().map(|l| l.weight.elem_count()).sum();
    assert!(out.nonzero_weights() <= (total / 2) as u64);
    assert!(out.energy_after < out.energy_before);
    assert_eq!(out.method, Method::Magnitude);
    let per_layer = MagnitudeTarget::PerLayer(vec![Density::new(0.5).unwrap()]);
    let mut cal = Data::new(8, 1, 5);
    let err = prune_magnitude(
        PruneRun {
            network: &net,
            params: net.params(),
            model: &Stand,
            calibration: &mut cal,
            val: &mut val,
            train: &mut train,
        },
        &per_layer,
        config().finetune,
        &mut NoopObserver,
    );
    assert!(matches!(err, Err(Error::Dimension { .. })));
}

#[test]
fn dense_activation_energies_never_increase_over_the_layer_loop() {
    // R6: with activation densities held fixed, each accepted layer lowers (or keeps) the
    // network energy.
    let net = trained(8);
    let (mut cal, mut train, mut val) = (
        Data::new(64, 1, 5),
        Data::new(128, 1, 1),
        Data::new(64, 1, 2),
    );
    let cfg = EnergyPruneConfig {
        activation_density: ActivationDensity::Dense,
        ratio_search: RatioSearch::Bisection {
            max_ratio: 0.95,
            iterations: 3,
        },
        budget_split: BudgetSplit::EnergyWeighted,
        ..config()
    };
    let out = prune_energy_aware(
        PruneRun {
            network: &net,
            params: net.params(),
            model: &Stand,
            calibration: &mut cal,
            val: &mut val,
            train: &mut train,
        },
        &cfg,
        &mut NoopObserver,
    )
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
    let original = snapshot(net.layers()).unwrap();
    let cal = Data::new(32, 2, 7).images();
    let cfg = config();
    let layer = &net.layers()[0];
    let data = local_data(&net, layer, &original, &cal, &cfg).unwrap();
    let w0: Vec<f64> = layer
        .weight
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_dtype(tensor_core::DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap();
    let opts = SolveOptions {
        lambda: 1e-3 * data.rows as f64,
        max_condition: 1e10,
    };
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
    let fc = &net.layers[1].weight;
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
