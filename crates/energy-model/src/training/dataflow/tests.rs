//! The sanity checks of docs/training-energy-dataflow.md ("Sanity checks that a test can hold"),
//! the fallbacks, and the cross-check against the bit-product proxy of part C.

use tensor_core::{
    ConvParams, EnergyModel, Gemm, LayerGeometry, LayerId, LayerSparsity, LayerWork, Level,
    Operand, Precision, TrainingEnergyModel, WorkLedger,
};

use super::*;
use crate::eyeriss::{ArrayHardware, Preset};
use crate::training::{TrainingModel, savings};

fn conv(c: usize, hw: usize, m: usize, k: usize, stride: usize, pad: usize) -> LayerGeometry {
    LayerGeometry::conv(
        [c, hw, hw],
        m,
        ConvParams::square(k).stride(stride).padding(pad),
    )
    .unwrap()
}

fn gemm(g: &LayerGeometry, a_bits: u8, b_bits: u8) -> Gemm {
    Gemm {
        macs_per_sample: g.macs() as u64,
        a_bits,
        b_bits,
    }
}

/// One layer's work at the default widths of docs/energy-models.md C.3 (forward 8×8, gradients
/// 32×8 and 8×32; with PSG a 4×16 predictor and the fallback share `rho`).
fn work(id: usize, g: &LayerGeometry, first: bool, fraction: f64, psg: Option<f64>) -> LayerWork {
    LayerWork {
        layer: LayerId(id),
        executed_fraction: fraction,
        forward: gemm(g, 8, 8),
        input_grad: (!first).then(|| gemm(g, 32, 8)),
        weight_grad: Some(gemm(g, 8, 32)),
        predictor: psg.map(|_| gemm(g, 4, 16)),
        fallback_fraction: psg.unwrap_or(0.0),
    }
}

/// All three products at 16 × 16 bits.
fn work16(id: usize, g: &LayerGeometry, fraction: f64) -> LayerWork {
    LayerWork {
        layer: LayerId(id),
        executed_fraction: fraction,
        forward: gemm(g, 16, 16),
        input_grad: Some(gemm(g, 16, 16)),
        weight_grad: Some(gemm(g, 16, 16)),
        predictor: None,
        fallback_fraction: 0.0,
    }
}

fn ledger(iterations: &[Option<Vec<LayerWork>>], batch: usize) -> WorkLedger {
    let mut l = WorkLedger::new();
    for it in iterations {
        match it {
            None => l.record_dropped(),
            Some(w) => l.record_executed(batch, w.clone()).unwrap(),
        }
    }
    l
}

fn model(batch: usize, layers: &[LayerGeometry]) -> DataflowTraining {
    DataflowTraining::new(
        Eyeriss::preset(Preset::Chip, batch).unwrap(),
        layers.iter().enumerate().map(|(i, g)| (LayerId(i), *g)),
    )
    .unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

/// The CIFAR ResNet-20 layer list (stem, 3 stages of 3 blocks of two 3×3 convs, 1×1 stride-2
/// shortcuts where a stage starts, FC), in cnn-zoo's order: each block's convs, then its
/// shortcut.
pub(super) fn resnet20() -> Vec<LayerGeometry> {
    let mut v = vec![conv(3, 32, 16, 3, 1, 1)];
    let mut c = 16;
    for (stage, (d, size)) in [(16, 32), (32, 16), (64, 8)].into_iter().enumerate() {
        for block in 0..3 {
            let down = stage > 0 && block == 0;
            let (stride, in_size) = if down { (2, size * 2) } else { (1, size) };
            v.push(conv(c, in_size, d, 3, stride, 1));
            v.push(conv(d, size, d, 3, 1, 1));
            if down {
                v.push(conv(c, in_size, d, 1, 2, 0));
            }
            c = d;
        }
    }
    v.push(LayerGeometry::fc(64, 1, 1, 10).unwrap());
    v
}

// Sanity check 1: one layer, stride 1, "same" padding: the three products have equal MACs and
// the forward product priced along this path is the inference pricing of the layer, exactly.
#[test]
fn forward_is_the_inference_pricing_and_macs_agree() {
    let g = conv(16, 8, 32, 3, 1, 1);
    let m = model(4, &[g]);
    for (a, b) in [(16, 16), (8, 8), (8, 4)] {
        let w = LayerWork {
            forward: gemm(&g, a, b),
            ..work16(0, &g, 1.0)
        };
        let r = m.price(&ledger(&[Some(vec![w])], 4)).unwrap();
        let precision = Precision::new(b, a, a.max(b)).unwrap();
        let inference = m
            .eyeriss()
            .layer_energy(&g, &LayerSparsity::dense(), precision)
            .unwrap();
        let fwd = &r.products.forward;
        assert_eq!(fwd.compute, inference.compute);
        assert_eq!(fwd.data, inference.data);
        assert_eq!(fwd.effective_macs, inference.effective_macs);
        assert_eq!(r.energy.forward, inference.total());
        assert_eq!(fwd.effective_macs, 4.0 * g.macs() as f64);
        assert_eq!(r.products.input_grad.effective_macs, fwd.effective_macs);
        assert_eq!(r.products.weight_grad.effective_macs, fwd.effective_macs);
        assert_eq!(r.macs.forward, fwd.effective_macs);
    }
    // The trait's layer pricing is the same inference pricing.
    assert_eq!(
        m.layer_energy(&g, &LayerSparsity::dense(), Precision::FIXED16)
            .unwrap(),
        m.eyeriss()
            .layer_energy(&g, &LayerSparsity::dense(), Precision::FIXED16)
            .unwrap()
    );
}

// The doc's MAC counts hold beyond stride 1: strided "same" convs (3×3/2/1 and the 1×1/2
// shortcut, whose dilated operands carry the inserted zeros as density), grouped and depthwise
// convs, and FC layers.
#[test]
fn every_product_keeps_the_forward_macs() {
    let layers = [
        conv(16, 32, 32, 3, 2, 1),
        conv(16, 32, 32, 1, 2, 0),
        conv(8, 15, 8, 5, 3, 2),
        LayerGeometry::conv([8, 12, 12], 16, ConvParams::square(3).padding(1).groups(4)).unwrap(),
        LayerGeometry::conv(
            [8, 12, 12],
            8,
            ConvParams::square(3).stride(2).padding(1).groups(8),
        )
        .unwrap(),
        LayerGeometry::fc(16, 3, 3, 10).unwrap(),
    ];
    let m = model(4, &layers);
    for (i, g) in layers.iter().enumerate() {
        let w = gemm(g, 16, 16);
        let fwd = m.product(LayerId(i), Product::Forward, &w).unwrap();
        assert_eq!(fwd.energy.effective_macs, 4.0 * g.macs() as f64);
        for p in [Product::InputGrad, Product::WeightGrad, Product::Predictor] {
            let e = m.product(LayerId(i), p, &w).unwrap();
            assert!(e.fallback.is_none(), "layer {i} {p}: {:?}", e.fallback);
            assert!(
                close(e.energy.effective_macs, fwd.energy.effective_macs, 1e-12),
                "layer {i} {p}: {} vs {}",
                e.energy.effective_macs,
                fwd.energy.effective_macs
            );
            // Dense RS: four register-file accesses per MAC in every product (B.2).
            assert!(close(
                e.energy.by_level(Level::Rf),
                4.0 * e.energy.compute,
                1e-12
            ));
        }
    }
}

// Sanity check 2: half the executed samples halve computation and per-sample data movement and
// leave the per-step weight traffic (the weights above the register files, the weight-gradient
// output, the update) unchanged.
#[test]
fn half_the_samples_halve_the_per_sample_energy() {
    let layers = [conv(16, 8, 16, 3, 1, 1), conv(16, 8, 32, 3, 2, 1)];
    let m = model(8, &layers);
    let full: Vec<_> = (0..2)
        .map(|i| work(i, &layers[i], false, 1.0, None))
        .collect();
    let half: Vec<_> = (0..2)
        .map(|i| work(i, &layers[i], false, 0.5, None))
        .collect();
    let a = m.price(&ledger(&[Some(full.clone())], 8)).unwrap();
    let b = m.price(&ledger(&[Some(half)], 8)).unwrap();
    // The same samples as a batch of 4 at fraction 1.
    let c = m.price(&ledger(&[Some(full)], 4)).unwrap();
    for r in [&b, &c] {
        assert_eq!(r.products.update, a.products.update);
        assert_eq!(r.macs.total(), a.macs.total() / 2.0);
        for (x, y, per_step) in [
            (&a.products.forward, &r.products.forward, Operand::Weight),
            (
                &a.products.input_grad,
                &r.products.input_grad,
                Operand::Weight,
            ),
            (
                &a.products.weight_grad,
                &r.products.weight_grad,
                Operand::Output,
            ),
        ] {
            assert_eq!(y.compute, x.compute / 2.0);
            assert_eq!(y.effective_macs, x.effective_macs / 2.0);
            for level in Level::ALL {
                for operand in Operand::ALL {
                    let (vx, vy) = (x.get(level, operand), y.get(level, operand));
                    if operand == per_step && level != Level::Rf {
                        assert_eq!(vy, vx, "{level:?} {operand:?}");
                    } else {
                        assert_eq!(vy, vx / 2.0, "{level:?} {operand:?}");
                    }
                }
            }
        }
    }
    // Twice the mapping batch is two passes: the products of two steps of the mapping batch.
    let two = m
        .price(&ledger(
            &[Some(vec![work(0, &layers[0], false, 1.0, None)])],
            16,
        ))
        .unwrap();
    let one = m
        .price(&ledger(
            &[Some(vec![work(0, &layers[0], false, 1.0, None)])],
            8,
        ))
        .unwrap();
    assert_eq!(two.energy.forward, 2.0 * one.energy.forward);
    assert_eq!(two.energy.input_grad, 2.0 * one.energy.input_grad);
    assert_eq!(two.products.update, one.products.update);
}

// Sanity check 3: skipping a block (executed fraction 0) removes exactly its products and its
// update traffic.
#[test]
fn a_skipped_block_removes_its_products_and_update() {
    let layers = [
        conv(16, 8, 16, 3, 1, 1),
        conv(16, 8, 16, 3, 1, 1),
        conv(16, 8, 32, 3, 2, 1),
    ];
    let m = model(8, &layers);
    let run = |skip: bool| {
        let w = (0..3)
            .map(|i| {
                work(
                    i,
                    &layers[i],
                    i == 0,
                    if skip && i == 1 { 0.0 } else { 1.0 },
                    None,
                )
            })
            .collect();
        m.price(&ledger(&[Some(w)], 8)).unwrap()
    };
    let (all, skipped) = (run(false), run(true));
    let (_, block) = &all.layers[1];
    assert!(block.update.energy > 0.0 && block.forward.total() > 0.0);
    assert_eq!(skipped.layers[1], (LayerId(1), ProductEnergy::default()));
    assert_eq!(skipped.layers[0], all.layers[0]);
    assert_eq!(skipped.layers[2], all.layers[2]);
    assert!(close(
        all.products.total() - skipped.products.total(),
        block.total(),
        1e-12
    ));
    assert_eq!(
        all.products.update.words - skipped.products.update.words,
        block.update.words
    );
}

// A dropped iteration costs 0; the trait's total is the report's.
#[test]
fn dropped_iterations_cost_nothing() {
    let layers = resnet20();
    let m = model(4, &layers);
    let step: Vec<_> = (0..layers.len())
        .map(|i| work(i, &layers[i], i == 0, 1.0, None))
        .collect();
    let one = m.price(&ledger(&[Some(step.clone())], 4)).unwrap();
    let with_dropped = m.price(&ledger(&[None, Some(step), None], 4)).unwrap();
    assert_eq!(with_dropped.products, one.products);
    assert_eq!(with_dropped.energy.dropped_iterations, 2);
    assert_eq!(with_dropped.energy.total(), one.energy.total());
    let nothing = m.price(&ledger(&[None, None], 4)).unwrap();
    assert_eq!(nothing.energy.total(), 0.0);
    assert_eq!(nothing.products.total(), 0.0);
    // The trait view folds the update into the weight gradient.
    let e = m.price_work(&ledger(
        &[Some(vec![work(1, &layers[1], false, 1.0, None)])],
        4,
    ));
    let e = e.unwrap();
    let r = m
        .price(&ledger(
            &[Some(vec![work(1, &layers[1], false, 1.0, None)])],
            4,
        ))
        .unwrap();
    assert_eq!(e, r.energy);
    assert_eq!(
        e.weight_grad,
        r.products.weight_grad.total() + r.products.update.energy
    );
    assert!(close(e.total(), r.products.total(), 1e-12));
}

// A ledger naming a layer without geometry is an error naming it; so is a ledger whose MACs
// disagree with the geometry.
#[test]
fn unknown_layers_and_foreign_geometry_are_errors() {
    let g = conv(4, 6, 4, 3, 1, 1);
    let m = model(2, &[g]);
    let err = m
        .price(&ledger(&[Some(vec![work(7, &g, false, 1.0, None)])], 2))
        .unwrap_err();
    assert!(
        matches!(err, Error::MissingGeometry { layer: LayerId(7) }),
        "{err}"
    );
    assert!(err.to_string().contains("#7"), "{err}");
    let mut w = work(0, &g, false, 1.0, None);
    w.input_grad = Some(Gemm {
        macs_per_sample: 5,
        a_bits: 32,
        b_bits: 8,
    });
    let err = m.price(&ledger(&[Some(vec![w])], 2)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LedgerMismatch {
                layer: LayerId(0),
                product: Product::InputGrad,
                ledger: 5,
                ..
            }
        ),
        "{err}"
    );
    let twice = DataflowTraining::new(
        Eyeriss::preset(Preset::Chip, 2).unwrap(),
        [(LayerId(0), g), (LayerId(0), g)],
    );
    assert!(twice.is_err());
    assert!(model(2, &[g]).with_master_bits(0).is_err());
}

// Products the mapping cannot place, or no geometry expresses, use the fallback and say so.
#[test]
fn unmappable_products_fall_back_visibly() {
    // Output rows of 132 columns: the weight gradient's "filter" rows need 2·132 + 1 register
    // words, more than the chip's 261; the forward maps (3-wide filter rows).
    let wide = conv(1, 132, 2, 3, 1, 1);
    // Padding 1 on a 1×1 kernel: the transposed convolution would need padding −1.
    let padded = conv(4, 6, 4, 1, 1, 1);
    let layers = [wide, padded];
    let m = model(2, &layers);
    let w: Vec<_> = (0..2)
        .map(|i| work(i, &layers[i], false, 1.0, Some(0.25)))
        .collect();
    let r = m.price(&ledger(&[Some(w.clone()), Some(w)], 2)).unwrap();
    let used: Vec<_> = r.fallbacks.iter().map(|u| (u.layer, u.product)).collect();
    assert_eq!(
        used,
        [
            (LayerId(0), Product::Predictor),
            (LayerId(0), Product::WeightGrad),
            (LayerId(1), Product::InputGrad),
        ]
    );
    assert!(
        r.fallbacks[0].reason.contains("register file"),
        "{}",
        r.fallbacks[0].reason
    );
    assert!(r.fallbacks[2].reason.contains("negative padding"));
    let shown = r.to_string();
    assert!(
        shown.contains("fallback: layer #0 weight-gradient predictor"),
        "{shown}"
    );
    assert!(
        shown.contains("fallback: layer #1 input gradient"),
        "{shown}"
    );
    // The fallback is the forward geometry at the product's widths.
    let g = gemm(&wide, 8, 32);
    let fb = m.product(LayerId(0), Product::WeightGrad, &g).unwrap();
    let fwd = m.product(LayerId(0), Product::Forward, &g).unwrap();
    assert_eq!(fb.energy, fwd.energy);
    assert_eq!(fb.per_step, Operand::Weight);
    // A forward product that cannot be mapped has nothing to fall back on: a register file of 4
    // words cannot hold a 3-wide filter row, an ifmap window and a psum.
    let tiny = EyerissConfig {
        hardware: ArrayHardware {
            rf_words: 4,
            ..Preset::Chip.hardware()
        },
        ..*Eyeriss::preset(Preset::Chip, 2).unwrap().config()
    }
    .validate()
    .unwrap();
    let plain = conv(4, 6, 4, 3, 1, 1);
    let m = DataflowTraining::new(tiny, [(LayerId(0), plain)]).unwrap();
    assert!(m.name().contains("(custom array)"));
    let err = m
        .price(&ledger(&[Some(vec![work(0, &plain, false, 1.0, None)])], 2))
        .unwrap_err();
    assert!(err.to_string().contains("#0"), "{err}");
}

// A CIFAR ResNet-20 at batch 16 maps every product (the tall weight-gradient filters fold over
// the array, B.4): no fallback.
#[test]
fn resnet20_maps_every_product() {
    let layers = resnet20();
    assert_eq!(layers.len(), 22);
    let m = model(16, &layers);
    let step: Vec<_> = (0..layers.len())
        .map(|i| work(i, &layers[i], i == 0, 1.0, Some(0.1)))
        .collect();
    let r = m.price(&ledger(&[Some(step)], 16)).unwrap();
    assert!(r.fallbacks.is_empty(), "{:?}", r.fallbacks);
    assert!(r.to_string().contains("fallbacks: none"));
}

// Cross-check against the bit-product proxy (docs/energy-models.md C.3): with Table IV's MAC
// cost 1, Eyeriss prices computation as b_W·b_I/256 per MAC (B.7), so the dataflow estimate's
// computation equals the proxy class by class, and both scale with the same executed MACs.
#[test]
fn computation_is_the_bit_product_proxy() {
    let layers = resnet20();
    let m = model(16, &layers);
    let proxy = TrainingModel::bit_product_proxy();
    let mut its = Vec::new();
    for k in 0..6 {
        let step = (0..layers.len())
            .map(|i| {
                let block = (i > 0 && i < layers.len() - 1 && (i + k) % 3 == 0) as u8;
                let fraction = [1.0, 0.5][block as usize];
                let psg = (k % 2 == 1).then_some(0.125 * k as f64);
                work(i, &layers[i], i == 0, fraction, psg)
            })
            .collect();
        its.push(if k == 4 { None } else { Some(step) });
    }
    let l = ledger(&its, 16);
    let d = m.price(&l).unwrap();
    let p = proxy.price(&l).unwrap().energy;
    for (x, y) in [
        (d.products.forward.compute, p.forward),
        (d.products.input_grad.compute, p.input_grad),
        (d.products.weight_grad.compute, p.weight_grad),
    ] {
        assert!(close(x, y, 1e-12), "{x} vs {y}");
    }
    for (x, y) in [
        (d.products.forward.effective_macs, d.macs.forward),
        (d.products.input_grad.effective_macs, d.macs.input_grad),
        (d.products.weight_grad.effective_macs, d.macs.weight_grad),
    ] {
        assert!(close(x, y, 1e-12), "{x} vs {y}");
    }
    // Dropping every other iteration of a run of identical steps saves half under every
    // measure.
    let step = its[1].clone();
    let base = ledger(&vec![step.clone(); 4], 16);
    let halved = ledger(&[step.clone(), None, step, None], 16);
    let (dh, db) = (m.price(&halved).unwrap(), m.price(&base).unwrap());
    assert!(close(savings(&dh.energy, &db.energy).unwrap(), 0.5, 1e-12));
    assert!(close(dh.macs.total() / db.macs.total(), 0.5, 1e-12));
    let (ph, pb) = (proxy.price(&halved).unwrap(), proxy.price(&base).unwrap());
    assert!(close(savings(&ph.energy, &pb.energy).unwrap(), 0.5, 1e-12));
}

// Labels: the name carries preset and mapping batch, the figures are not a proxy, and a report
// is deterministic.
#[test]
fn labels_and_determinism() {
    let layers = resnet20();
    let m = DataflowTraining::new(
        Eyeriss::preset(Preset::Isca16, 8).unwrap(),
        layers.iter().enumerate().map(|(i, g)| (LayerId(i), *g)),
    )
    .unwrap();
    assert_eq!(m.name(), "training/eyeriss-isca16 dataflow batch 8");
    assert_eq!(m.unit(), tensor_core::EnergyUnit::Mac16);
    let step: Vec<_> = (0..3)
        .map(|i| work(i, &layers[i], i == 0, 1.0, None))
        .collect();
    let l = ledger(&[Some(step)], 8);
    let r = m.price(&l).unwrap();
    assert_eq!(r.energy.model, m.name());
    assert!(!r.energy.proxy);
    assert!(!r.to_string().contains("(a proxy"));
    assert!(
        r.to_string()
            .contains("neither measured nor the bit-product proxy")
    );
    assert_eq!(m.price(&l).unwrap(), r);
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<DataflowReport>(&json).unwrap(), r);
    // 16-bit master weights halve the update traffic.
    let m16 = m.clone().with_master_bits(16).unwrap();
    let r16 = m16.price(&l).unwrap();
    assert_eq!(r16.products.update.energy, r.products.update.energy / 2.0);
}
