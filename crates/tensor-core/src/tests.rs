use crate::tensor::{DType, Device, Tensor, Var};
use crate::*;

#[test]
fn conv_geometry_sizes() {
    // AlexNet (Caffe) conv2: 256 x 48 x 5 x 5, two groups, pad 2 on 27x27 (docs/energy-models.md B.10).
    let g = LayerGeometry::conv(
        [96, 27, 27],
        256,
        ConvParams::square(5).padding(2).groups(2),
    )
    .unwrap();
    assert_eq!((g.out_h(), g.out_w()), (27, 27));
    assert_eq!(g.weights(), 307_200);
    assert_eq!(g.macs(), 223_948_800);
    assert_eq!(g.weight_shape(), vec![256, 48, 5, 5]);
    assert!(!g.is_depthwise());
    let dw =
        LayerGeometry::conv([32, 8, 8], 32, ConvParams::square(3).padding(1).groups(32)).unwrap();
    assert!(dw.is_depthwise());
    assert_eq!(dw.weights(), 32 * 9);
}

#[test]
fn fc_geometry_keeps_producer_shape() {
    let g = LayerGeometry::fc(256, 6, 6, 4096).unwrap();
    assert_eq!(g.in_features(), 9216);
    assert_eq!(g.out_positions(), 1);
    assert_eq!(g.macs(), 37_748_736);
    assert_eq!(g.weight_shape(), vec![4096, 9216]);
}

#[test]
fn invalid_geometry_is_an_error() {
    assert!(LayerGeometry::conv([3, 4, 4], 8, ConvParams::square(5)).is_err());
    assert!(LayerGeometry::conv([3, 8, 8], 8, ConvParams::square(3).groups(2)).is_err());
    assert!(LayerGeometry::conv([0, 8, 8], 8, ConvParams::square(3)).is_err());
}

/// Deserialisation goes through the same checks as the constructors, so a geometry read from a
/// record or a file is valid too; the serialised form stays flat.
#[test]
fn deserialised_geometry_is_checked() {
    let fc = LayerGeometry::fc(4, 2, 2, 3).unwrap();
    let json = serde_json::to_value(fc).unwrap();
    assert_eq!(json["stride"], serde_json::json!([1, 1]));
    assert_eq!(json["in_channels"], 4);
    let back: LayerGeometry = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, fc);
    let mut strided = json;
    strided["stride"] = serde_json::json!([2, 2]);
    let err = serde_json::from_value::<LayerGeometry>(strided).unwrap_err();
    assert!(err.to_string().contains("FC layer"), "{err}");
}

/// Sizes read from a file (an MIT tool line) used to overflow `in_h + 2·padding` and the MAC
/// product: a panic in debug builds, a wrapped count in release.
#[test]
fn geometry_whose_counts_overflow_is_an_error() {
    let huge = usize::MAX / 2 + 1;
    for g in [
        LayerGeometry::conv(
            [1, 8, 8],
            1,
            ConvParams {
                kernel: (3, 3),
                stride: (1, 1),
                padding: (huge, 0),
                groups: 1,
            },
        ),
        LayerGeometry::conv([1, 8, 8], huge, ConvParams::square(3)),
        LayerGeometry::conv([1 << 20, 1 << 20, 1 << 20], 1 << 20, ConvParams::square(1)),
        LayerGeometry::fc(1 << 22, 1 << 22, 1 << 22, 1),
    ] {
        match g {
            Err(Error::Geometry { reason }) => assert!(reason.contains("overflow"), "{reason}"),
            other => panic!("expected a geometry error, got {other:?}"),
        }
    }
    // The largest real layer (AlexNet fc6 as a conv) still validates.
    assert!(LayerGeometry::fc(256, 6, 6, 4096).is_ok());
}

#[test]
fn layer_config_checks_observed_output() {
    let cfg = LayerConfig::Conv {
        out_channels: 6,
        params: ConvParams::square(5),
    };
    let g = cfg.geometry(&[1, 1, 32, 32], &[1, 6, 28, 28]).unwrap();
    assert_eq!(g.weights(), 150);
    assert!(matches!(
        cfg.geometry(&[1, 1, 32, 32], &[1, 6, 27, 27]),
        Err(Error::Shape { .. })
    ));
    let fc = LayerConfig::Fc { out_features: 10 };
    assert_eq!(
        fc.geometry(&[1, 16, 5, 5], &[1, 10]).unwrap().in_features(),
        400
    );
    assert_eq!(fc.geometry(&[1, 84], &[1, 10]).unwrap().in_channels(), 84);
    assert!(fc.geometry(&[2, 84], &[2, 10]).is_err());
}

#[test]
fn density_is_checked() {
    assert!(Density::new(-0.1).is_err());
    assert!(Density::new(1.5).is_err());
    assert!(Density::new(f64::NAN).is_err());
    assert_eq!(Density::from_counts(3, 4).unwrap().get(), 0.75);
    assert!(Density::from_counts(1, 0).is_err());
    let parsed: std::result::Result<Density, _> = serde_json::from_str("1.2");
    assert!(parsed.is_err());
}

#[test]
fn precision_rejects_zero_bits() {
    assert!(Precision::new(0, 8, 8).is_err());
    assert_eq!(Precision::default(), Precision::new(16, 16, 16).unwrap());
}

#[test]
fn support_nonzeros() {
    let b = Bitmap::from_values(&[2, 3], &[0.0f32, 1.0, 0.0, 2.0, 3.0, 0.0]).unwrap();
    assert_eq!(b.count_ones(), 3);
    assert!(b.get(1) && !b.get(2));
    assert_eq!(Support::Bitmap(b.clone()).nonzeros(6).unwrap(), 3);
    assert!(Support::Bitmap(b).nonzeros(5).is_err());
    assert_eq!(Support::Dense.nonzeros(7).unwrap(), 7);
    let half = Support::Density(Density::new(0.5).unwrap());
    assert_eq!(half.nonzeros(10).unwrap(), 5);
}

#[test]
fn layer_energy_level_and_operand_sums_agree() {
    let mut e = LayerEnergy {
        compute: 3.0,
        ..Default::default()
    };
    e.add(Level::Dram, Operand::Input, 200.0);
    e.add(Level::Rf, Operand::Weight, 4.0);
    e.add(Level::Buffer, Operand::Output, 6.0);
    let by_level: f64 = Level::ALL.iter().map(|&l| e.by_level(l)).sum();
    let by_operand: f64 = Operand::ALL.iter().map(|&o| e.by_operand(o)).sum();
    assert_eq!(by_level, by_operand);
    assert_eq!(e.total(), 213.0);
}

crate::linear_energy_model!(
    /// The MACs of the nonzero weights.
    MacCount,
    "mac-count",
    EnergyUnit::Mac16,
    |g| g.out_positions() as f64,
    0.0
);

#[test]
fn default_network_energy_sums_layers_and_names_failures() {
    let a = LayerGeometry::conv([1, 8, 8], 2, ConvParams::square(3)).unwrap();
    let b = LayerGeometry::fc(2, 6, 6, 3).unwrap();
    let mut layers = vec![
        LayerWorkload::dense(LayerId(0), "a", a),
        LayerWorkload::dense(LayerId(1), "b", b),
    ];
    let e = MacCount.network_energy(&layers).unwrap();
    assert_eq!(e.total(), (a.macs() + b.macs()) as f64);
    assert_eq!(e.model, "mac-count");
    layers[1].sparsity.weights = Support::Bitmap(Bitmap::zeros(&[0]));
    match MacCount.network_energy(&layers) {
        Err(Error::Layer { id, .. }) => assert_eq!(id, LayerId(1)),
        other => panic!("expected a layer error, got {other:?}"),
    }
}

#[test]
fn ledger_counts_and_checks_fractions() {
    let mut l = WorkLedger::new();
    l.record_dropped();
    let gemm = Gemm {
        macs_per_sample: 10,
        a_bits: 8,
        b_bits: 8,
    };
    let work = LayerWork {
        layer: LayerId(0),
        executed_fraction: 0.5,
        forward: gemm,
        input_grad: None,
        weight_grad: Some(gemm),
        predictor: None,
        fallback_fraction: 0.0,
    };
    l.record_executed(4, vec![work.clone()]).unwrap();
    assert_eq!((l.executed(), l.dropped()), (1, 1));
    let bad = LayerWork {
        executed_fraction: 1.5,
        ..work
    };
    assert!(l.record_executed(4, vec![bad]).is_err());
    assert_eq!(l.iterations().len(), 2);
}

#[test]
fn device_spec_parses() {
    assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
    assert_eq!("cuda:1".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(1));
    assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
    assert!("gpu".parse::<DeviceSpec>().is_err());
    assert!("cuda:x".parse::<DeviceSpec>().is_err());
    assert_eq!(DeviceSpec::Cuda(2).to_string(), "cuda:2");
    // Specs record the kind alone: any GPU is `cuda`; a CPU spec keeps its `cpu` form.
    assert_eq!(DeviceSpec::Cuda(2).kind(), crate::DeviceKind::Cuda);
    assert_eq!(
        serde_json::to_string(&crate::DeviceKind::Cuda).unwrap(),
        "\"cuda\""
    );
    assert_eq!(
        serde_json::to_string(&DeviceSpec::Cpu.kind()).unwrap(),
        serde_json::to_string(&DeviceSpec::Cpu).unwrap()
    );
    assert_eq!(crate::DeviceKind::Cuda.first(), DeviceSpec::Cuda(0));
    if !cfg!(feature = "cuda") {
        assert!(matches!(
            DeviceSpec::Cuda(0).to_device(),
            Err(Error::Unsupported { .. })
        ));
    }
}

#[test]
fn mask_apply_density_and_shape_check() {
    let dev = Device::Cpu;
    let m = Mask::new(Tensor::new(&[[1f32, 0.0], [0.0, 1.0]], &dev).unwrap());
    assert_eq!(m.nonzero_count().unwrap(), 2);
    assert_eq!(m.density().unwrap().get(), 0.5);
    let xs = Tensor::ones((3, 2, 2), DType::F32, &dev).unwrap();
    let ys = m.apply(&xs).unwrap();
    assert_eq!(ys.sum_all().unwrap().to_scalar::<f32>().unwrap(), 6.0);
    let wrong = Tensor::ones((3, 3), DType::F32, &dev).unwrap();
    assert!(matches!(m.apply(&wrong), Err(Error::Shape { .. })));
}

#[test]
fn seeded_init_is_reproducible_and_name_keyed() {
    let dev = Device::Cpu;
    let make = |seed, order_ab: bool| {
        let init = SeededInit::new(seed);
        let vb = init.var_builder(DType::F32, &dev);
        let (a, b) = if order_ab {
            let a = vb.get_with_hints((4, 3), "a", crate::tensor::nn::init::DEFAULT_KAIMING_NORMAL);
            let b = vb.get_with_hints(5, "b", crate::tensor::nn::Init::Uniform { lo: -1., up: 1. });
            (a.unwrap(), b.unwrap())
        } else {
            let b = vb.get_with_hints(5, "b", crate::tensor::nn::Init::Uniform { lo: -1., up: 1. });
            let a = vb.get_with_hints((4, 3), "a", crate::tensor::nn::init::DEFAULT_KAIMING_NORMAL);
            (a.unwrap(), b.unwrap())
        };
        (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.to_vec1::<f32>().unwrap(),
        )
    };
    assert_eq!(make(7, true), make(7, false));
    assert_ne!(make(7, true), make(8, true));
    let (_, b) = make(7, true);
    assert!(b.iter().all(|v| (-1.0..1.0).contains(v)));
    let init = SeededInit::new(1);
    let vb = init.var_builder(DType::F32, &dev);
    vb.get_with_hints(3, "x", crate::tensor::nn::Init::Const(0.5))
        .unwrap();
    assert!(
        vb.get_with_hints(4, "x", crate::tensor::nn::Init::Const(0.5))
            .is_err()
    );
    assert_eq!(init.named_vars().len(), 1);
}

/// PyTorch reference (torch.optim.SGD, lr 0.1, momentum 0.9, weight_decay 0.01) on w = [1, -2]
/// with constant gradient g = [0.5, 0.5]:
/// step 1: d = g + 0.01 w = [0.51, 0.48], buf = d, w = [0.949, -2.048]
/// step 2: d = [0.50949, 0.47952], buf = 0.9 buf + d = [0.96849, 0.91152], w = [0.852151, -2.139152]
#[test]
fn momentum_sgd_matches_pytorch_semantics() {
    let dev = Device::Cpu;
    let w = Var::new(&[1f64, -2.0], &dev).unwrap();
    let cfg = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 0.01,
    };
    let mut opt = MomentumSgd::with_config(vec![w.clone()], cfg).unwrap();
    for _ in 0..2 {
        // loss = 0.5 * sum(w): gradient 0.5 everywhere.
        let loss = (w.as_tensor().sum_all().unwrap() * 0.5).unwrap();
        let grads = loss.backward().unwrap();
        opt.step_grads(&grads).unwrap();
    }
    let got = w.as_tensor().to_vec1::<f64>().unwrap();
    let want = [0.852151, -2.139152];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
    }
    assert!(opt.buffers()[0].is_some());
}

#[test]
fn momentum_sgd_skips_vars_without_gradient_and_validates() {
    let dev = Device::Cpu;
    let w = Var::new(&[1f32], &dev).unwrap();
    let other = Var::new(&[3f32], &dev).unwrap();
    let cfg = SgdConfig {
        lr: 0.5,
        momentum: 0.9,
        weight_decay: 0.1,
    };
    let mut opt = MomentumSgd::with_config(vec![w.clone(), other.clone()], cfg).unwrap();
    let grads = w.as_tensor().sum_all().unwrap().backward().unwrap();
    opt.step_grads(&grads).unwrap();
    assert_eq!(other.as_tensor().to_vec1::<f32>().unwrap(), vec![3.0]);
    assert!(opt.buffers()[1].is_none());
    for bad in [
        SgdConfig { lr: 0.0, ..cfg },
        SgdConfig {
            momentum: 1.0,
            ..cfg
        },
        SgdConfig {
            weight_decay: -1.0,
            ..cfg
        },
    ] {
        assert!(MomentumSgd::with_config(vec![], bad).is_err());
    }
}

#[test]
fn permutation_is_a_permutation() {
    let mut r = rng(3, "shuffle");
    let mut p = seed::permutation(100, &mut r);
    let mut r2 = rng(3, "shuffle");
    assert_eq!(p, seed::permutation(100, &mut r2));
    p.sort_unstable();
    assert_eq!(p, (0..100).collect::<Vec<_>>());
}

/// Batch `(e, i)` is the one value `100·e + i`; batch 3 of epoch 1 is an error.
struct Numbered;

impl BatchSource for Numbered {
    fn batches_per_epoch(&self) -> usize {
        5
    }
    fn batch(&mut self, epoch: usize, index: usize) -> Result<(Tensor, Tensor)> {
        if (epoch, index) == (1, 3) {
            return Err(Error::EmptyEvaluation {
                what: format!("batch {epoch}/{index}"),
            });
        }
        let x = (100 * epoch + index) as f32;
        Ok((
            Tensor::new(&[x], &Device::Cpu)?,
            Tensor::new(&[index as u32], &Device::Cpu)?,
        ))
    }
}

/// What `source` serves for `keys`, in order: the value, or the error's text.
fn served(source: &mut dyn BatchSource, keys: &[(usize, usize)]) -> Vec<String> {
    keys.iter()
        .map(|&(e, i)| match source.batch(e, i) {
            Ok((x, y)) => format!("{:?} {:?}", x.to_vec1::<f32>(), y.to_vec1::<u32>()),
            Err(err) => err.to_string(),
        })
        .collect()
}

#[test]
fn prefetching_serves_the_sources_batches_in_any_order() {
    // In order, across an epoch boundary and into the erroneous batch; then skips, repeats
    // and going back.
    let keys = [
        (0, 0),
        (0, 1),
        (0, 2),
        (0, 3),
        (0, 4),
        (1, 0),
        (1, 2),
        (1, 3),
        (1, 4),
        (1, 4),
        (0, 1),
        (2, 0),
    ];
    let plain = served(&mut Numbered, &keys);
    let ahead = prefetch::with_prefetch(&mut Numbered, |p| {
        assert_eq!(p.batches_per_epoch(), 5);
        served(p, &keys)
    });
    assert_eq!(plain, ahead);
    assert!(ahead[7].contains("batch 1/3"), "{}", ahead[7]);
}

#[test]
fn a_prefetch_that_is_never_used_ends_cleanly() {
    let n = prefetch::with_prefetch(&mut Numbered, |_| 7);
    assert_eq!(n, 7);
}

#[test]
fn in_order_keeps_a_random_streams_sequence() {
    use rand::Rng as _;
    let draws = |rng: &mut Rng| -> Vec<u32> { (0..50).map(|_| rng.random()).collect() };
    let plain = draws(&mut crate::rng(5, "augment/0"));
    let mut stream = crate::rng(5, "augment/0");
    let ahead: Vec<u32> = prefetch::in_order((0..50).map(|_| stream.random::<u32>()), |items| {
        items.collect()
    });
    assert_eq!(plain, ahead);
    // A consumer that stops early ends the worker too.
    let first: Vec<u32> = prefetch::in_order(0..u32::MAX, |items| items.take(3).collect());
    assert_eq!(first, [0, 1, 2]);
}

#[test]
#[should_panic(expected = "item 3 cannot be made")]
fn in_order_hands_a_producers_panic_to_the_consumer() {
    let items = (0..10).inspect(|&i| assert!(i != 3, "item {i} cannot be made"));
    let _: Vec<i32> = prefetch::in_order(items, |items| items.collect());
}

// The strategies live behind the `proptest` feature; a workspace test run enables it
// through integration-tests.
#[cfg(feature = "proptest")]
mod properties {
    use ::proptest::prelude::*;

    ::proptest::proptest! {
        #[test]
        fn prefetching_changes_no_batch(
            keys in ::proptest::collection::vec((0usize..3, 0usize..5), 1..40),
        ) {
            let plain = super::served(&mut super::Numbered, &keys);
            let ahead = crate::prefetch::with_prefetch(&mut super::Numbered, |p| {
                super::served(p, &keys)
            });
            prop_assert_eq!(plain, ahead);
        }

        #[test]
        fn conv_geometry_invariants(g in crate::proptest::conv_geometry(8, 12)) {
                        prop_assert_eq!(g.macs(), g.weights() * g.out_positions());
            prop_assert_eq!(g.weight_shape().iter().product::<usize>(), g.weights());
            prop_assert!(g.out_h() >= 1 && g.out_w() >= 1);
            // The last window must start inside the padded input.
            prop_assert!((g.out_h() - 1) * g.stride().0 + g.kernel().0 <= g.in_h() + 2 * g.padding().0);
        }

        #[test]
        fn fc_geometry_is_a_full_window_conv(g in crate::proptest::fc_geometry(16, 16)) {
            prop_assert_eq!(g.out_positions(), 1);
            prop_assert_eq!(g.macs(), g.in_features() * g.out_channels());
        }

        #[test]
        fn bitmap_count_matches_density(s in crate::proptest::bitmap(vec![3, 5, 7])) {
            let ones = (0..s.len()).filter(|&i| s.get(i)).count() as u64;
            prop_assert_eq!(s.count_ones(), ones);
            prop_assert!((s.density().unwrap().get() - ones as f64 / 105.0).abs() < 1e-15);
        }

        #[test]
        fn support_density_in_unit_interval(s in crate::proptest::support(vec![4, 4])) {
            let d = s.density().unwrap().get();
            prop_assert!((0.0..=1.0).contains(&d));
        }
    }
}

/// Serves fixed logits as the "images" (the evaluation's forward pass is the identity).
struct Logits(Vec<(Vec<f32>, Vec<u32>)>, usize);

impl BatchSource for Logits {
    fn batches_per_epoch(&self) -> usize {
        self.0.len()
    }
    fn batch(&mut self, _: usize, index: usize) -> Result<(Tensor, Tensor)> {
        let (x, y) = &self.0[index];
        Ok((
            Tensor::from_vec(x.clone(), (y.len(), self.1), &Device::Cpu)?,
            Tensor::from_vec(y.clone(), y.len(), &Device::Cpu)?,
        ))
    }
}

/// Top-5 by rank on the host: fewer than five classes strictly above the label's score.
fn top5_by_rank(batches: &[(Vec<f32>, Vec<u32>)], classes: usize) -> f64 {
    let (mut hits, mut n) = (0, 0);
    for (x, y) in batches {
        for (row, &label) in x.chunks(classes).zip(y) {
            let own = row[label as usize];
            hits += usize::from(row.iter().filter(|&&v| v > own).count() < 5);
            n += 1;
        }
    }
    hits as f64 / n as f64
}

#[test]
fn evaluation_counts_top1_and_top5() {
    // Six classes; sample 0 is a top-1 hit, sample 1 ranks fifth (a top-5 hit only), sample
    // 2 ranks sixth (neither).
    let rows = vec![
        0.9, 0.1, 0.2, 0.3, 0.4, 0.5, //
        0.6, 0.5, 0.4, 0.3, 0.2, 0.1, //
        0.6, 0.5, 0.4, 0.3, 0.2, 0.1,
    ];
    let mut source = Logits(vec![(rows, vec![0, 4, 5])], 6);
    let e = evaluate("fixed logits", &mut source, |xs| Ok(xs.clone())).unwrap();
    assert_eq!(e.samples, 3);
    assert_eq!((e.accuracy, e.top5), (1.0 / 3.0, 2.0 / 3.0));
}

mod top5 {
    use ::proptest::prelude::*;
    use rand::Rng as _;

    use super::*;

    ::proptest::proptest! {
        #[test]
        fn top5_is_the_rank_of_the_label(
            classes in 1usize..12,
            seed in 0u64..1000,
            sizes in ::proptest::collection::vec(1usize..6, 1..4),
        ) {
            let mut r = rng(seed, "logits");
            let batches: Vec<(Vec<f32>, Vec<u32>)> = sizes
                .iter()
                .map(|&b| {
                    // Scores from a few levels, so ties with the label's score happen.
                    let x = (0..b * classes).map(|_| f32::from(r.random_range(0u8..4))).collect();
                    let y = (0..b).map(|_| r.random_range(0..classes as u32)).collect();
                    (x, y)
                })
                .collect();
            let expected = top5_by_rank(&batches, classes);
            let e = evaluate("random logits", &mut Logits(batches, classes), |xs| Ok(xs.clone()))
                .unwrap();
            prop_assert_eq!(e.top5, expected);
            prop_assert!(e.accuracy <= e.top5);
            if classes <= 5 {
                prop_assert_eq!(e.top5, 1.0);
            }
        }
    }
}
