use tensor_core::{
    Bitmap, Density, EnergyModel, LayerGeometry, LayerSparsity, Level, Operand, Precision, Support,
};

use super::*;
use crate::hardware::SystolicArrayConfig;
use crate::reference;
use tensor_core::ConvParams;

/// LeNet-5 of docs/energy-models.md A.7.
fn lenet5() -> Vec<LayerGeometry> {
    reference::LENET5
        .iter()
        .map(|s| s.geometry().unwrap())
        .collect()
}

fn tiny(p: usize) -> LayerGeometry {
    LayerGeometry::conv([1, 4, 4], 2, ConvParams::square(3).padding(p)).unwrap()
}

fn model() -> Iclr19 {
    Iclr19::paper()
}

// docs/energy-models.md A.7, LeNet-5 table: per layer E_X, E_W (dense), E_C (dense), κ_in, all exact
// integers (hand check of conv1: U = 19,600, cache 117,600, RF 117,600, DRAM 1,145,600).
#[test]
fn lenet5_layer_table() {
    for (g, row) in lenet5().iter().zip(reference::LENET5_A7) {
        for m in [model(), model().with_evaluator(Evaluator::Exact)] {
            let l = m.layer(g, &LayerSparsity::dense()).unwrap();
            assert_eq!(l.nonzero_weights, row.weights, "{}", row.name);
            assert_eq!(l.input.total(), row.e_x);
            assert_eq!(l.weight.total(), row.e_w);
            assert_eq!(l.compute, row.e_c);
            assert_eq!(l.input.overlap, 0);
        }
        let c = model().costs(g, &Support::Dense).unwrap();
        assert_eq!(c.kappa_in, row.kappa_in);
        assert_eq!(c.fixed, row.e_x);
    }
    let conv1 = model()
        .layer(&lenet5()[0], &LayerSparsity::dense())
        .unwrap();
    assert_eq!(conv1.input.unfolded, 19_600);
    assert_eq!((conv1.input.cache, conv1.input.rf), (117_600.0, 117_600.0));
    assert_eq!(
        conv1.input.dram_reads + conv1.input.output_write,
        1_145_600.0
    );
}

// docs/energy-models.md A.7: E_dense 17,107,544, Σ E_X 2,604,944, floor 0.15227.
#[test]
fn lenet5_dense_total_and_floor() {
    let n = model().normalization(&lenet5()).unwrap();
    assert_eq!(n.dense, reference::LENET5_DENSE_ENERGY);
    assert_eq!(n.floor_energy, reference::LENET5_FLOOR_ENERGY);
    // Tolerance: the spec rounds the floor to five decimals.
    assert!(
        (n.floor() - reference::LENET5_FLOOR).abs() < 5e-6,
        "{}",
        n.floor()
    );
}

// docs/energy-models.md A.7 budget example: b = 0.20 gives 3,421,508.8, leaving 816,564.8 for weights.
#[test]
fn lenet5_budget_example() {
    let n = model().normalization(&lenet5()).unwrap();
    let b = n.absolute_budget(0.20).unwrap();
    // Tolerance: 0.2 is not exact in binary; 1e-6 absolute on a 7-digit figure.
    assert!((b - 3_421_508.8).abs() < 1e-6);
    assert!((b - n.floor_energy - 816_564.8).abs() < 1e-6);
    match n.absolute_budget(0.15) {
        Err(Error::BudgetInfeasible { budget, floor }) => {
            assert_eq!(budget, 0.15);
            assert_eq!(floor, n.floor());
        }
        other => panic!("expected BudgetInfeasible, got {other:?}"),
    }
    assert!(matches!(
        n.absolute_budget(f64::NAN),
        Err(Error::Config { .. })
    ));
}

// docs/energy-models.md A.7 tiny unit vectors.
#[test]
fn tiny_layers() {
    let dense = LayerSparsity::dense();
    let p0 = model().layer(&tiny(0), &dense).unwrap();
    assert_eq!(p0.input.unfolded, 36);
    assert_eq!(
        (p0.input.total(), p0.weight.total(), p0.compute),
        (5_088.0, 3_780.0, 216.0)
    );
    assert_eq!(p0.total(), 9_084.0);
    let exact0 = model()
        .with_evaluator(Evaluator::Exact)
        .layer(&tiny(0), &dense)
        .unwrap();
    assert_eq!(exact0.compute, 216.0);
    assert_eq!(
        model().costs(&tiny(0), &Support::Dense).unwrap().kappa_in,
        222.0
    );

    let p1 = model().layer(&tiny(1), &dense).unwrap();
    assert_eq!(p1.input.unfolded, 100);
    assert_eq!(
        (p1.input.total(), p1.weight.total(), p1.compute),
        (10_400.0, 4_104.0, 864.0)
    );
    assert_eq!(p1.total(), 15_368.0);
    let exact1 = model()
        .with_evaluator(Evaluator::Exact)
        .layer(&tiny(1), &dense)
        .unwrap();
    assert_eq!(exact1.compute, 600.0);
    assert_eq!(
        model().costs(&tiny(1), &Support::Dense).unwrap().kappa_in,
        276.0
    );

    let fc = LayerGeometry::fc(100, 1, 1, 20).unwrap();
    let f = model().layer(&fc, &dense).unwrap();
    assert_eq!(
        (f.input.total(), f.weight.total(), f.compute, f.total()),
        (27_200.0, 414_000.0, 6_000.0, 447_200.0)
    );
    let c = model().costs(&fc, &Support::Dense).unwrap();
    assert_eq!((c.kappa_in, c.kappa_out), (210.0, 210.0));
}

#[test]
fn breakdown_sums_match() {
    for g in lenet5().iter().chain([&tiny(1)]) {
        let e = model()
            .layer_energy(g, &LayerSparsity::dense(), Precision::default())
            .unwrap();
        let by_level: f64 = Level::ALL.iter().map(|&l| e.by_level(l)).sum();
        let by_operand: f64 = Operand::ALL.iter().map(|&o| e.by_operand(o)).sum();
        assert_eq!(by_level, by_operand);
        assert_eq!(e.by_level(Level::Array), 0.0);
        let l = model().layer(g, &LayerSparsity::dense()).unwrap();
        assert_eq!(e.total(), l.total());
    }
}

#[test]
fn network_energy_names_model_and_sums() {
    use tensor_core::{LayerId, LayerWorkload};
    let layers: Vec<LayerWorkload> = lenet5()
        .into_iter()
        .enumerate()
        .map(|(i, g)| LayerWorkload::dense(LayerId(i), format!("l{i}"), g))
        .collect();
    let n = model().network_energy(&layers).unwrap();
    assert_eq!(n.model, "iclr19/relaxed batch 1");
    assert_eq!(n.total(), reference::LENET5_DENSE_ENERGY);
    assert_eq!(
        model().with_evaluator(Evaluator::Exact).name(),
        "iclr19/exact batch 1"
    );
}

#[test]
fn cache_tail_costs_beta_out() {
    // 8 × 8 × 3 × 3 = 576 weights with a 100-value weight cache: 476 weights in the tail.
    let hw = SystolicArrayConfig {
        weight_cache: 100,
        ..SystolicArrayConfig::ICLR19
    }
    .validate()
    .unwrap();
    let m = Iclr19::new(hw, Evaluator::Relaxed);
    let g = LayerGeometry::conv([8, 10, 10], 8, ConvParams::square(3).padding(1)).unwrap();
    let c = m.costs(&g, &Support::Dense).unwrap();
    // P = 100, ⌈P/m⌉ = 9: κ_out − κ_in = 8 · 200.
    assert_eq!(c.kappa_out - c.kappa_in, 1_600.0);
    assert_eq!(c.cached, 100);
    let l = m.layer(&g, &LayerSparsity::dense()).unwrap();
    assert_eq!(
        l.total(),
        c.fixed + 100.0 * c.kappa_in + 476.0 * c.kappa_out
    );
}

#[test]
fn grouped_and_depthwise() {
    // Depthwise 4 channels, 3x3, 6x6, pad 1: each channel feeds one filter.
    let g = LayerGeometry::conv([4, 6, 6], 4, ConvParams::square(3).padding(1).groups(4)).unwrap();
    let l = model()
        .with_evaluator(Evaluator::Exact)
        .layer(&g, &LayerSparsity::dense())
        .unwrap();
    // U per channel: T = 4+6·... rows: 2,3,3,3,3,2 = 16, so U = 4 · 16 · 16 = 1,024.
    assert_eq!(l.input.unfolded, 1_024);
    assert_eq!(l.macs, 1_024);
    assert_eq!(l.input.rf, 1_024.0);
    assert_eq!(l.input.cache, 1_024.0 * 6.0);
    // Exact with a full bitmap equals dense.
    let full = LayerSparsity {
        weights: Support::Bitmap(Bitmap::ones(&g.weight_shape())),
        ..LayerSparsity::dense()
    };
    let lb = model()
        .with_evaluator(Evaluator::Exact)
        .layer(&g, &full)
        .unwrap();
    assert_eq!(lb, l);
}

#[test]
fn exact_macs_brute_force() {
    // Brute force over every (output, tap, channel) triple on a small grouped, strided, padded
    // layer with random-ish supports.
    let g = LayerGeometry::conv(
        [4, 7, 6],
        6,
        ConvParams {
            kernel: (3, 2),
            stride: (2, 1),
            padding: (1, 1),
            groups: 2,
        },
    )
    .unwrap();
    let wbits: Vec<bool> = (0..g.weights()).map(|i| (i * 7 + 3) % 5 < 3).collect();
    let xbits: Vec<bool> = (0..g.in_features())
        .map(|i| (i * 11 + 1) % 4 != 0)
        .collect();
    let w = Bitmap::from_bools(&g.weight_shape(), &wbits).unwrap();
    let x = Bitmap::from_bools(&[4, 7, 6], &xbits).unwrap();
    let mut expected = 0u64;
    let mut unfolded = 0u64;
    let (cpg, dpg) = (2, 3);
    for o in 0..6 {
        for oy in 0..g.out_h() {
            for ox in 0..g.out_w() {
                for ci in 0..cpg {
                    let ch = (o / dpg) * cpg + ci;
                    for kh in 0..3 {
                        for kw in 0..2 {
                            let y = (oy * 2 + kh) as isize - 1;
                            let xx = (ox + kw) as isize - 1;
                            if !(0..7).contains(&y) || !(0..6).contains(&xx) {
                                continue;
                            }
                            let xi = (ch * 7 + y as usize) * 6 + xx as usize;
                            let wi = ((o * cpg + ci) * 3 + kh) * 2 + kw;
                            if xbits[xi] && wbits[wi] {
                                expected += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    for ch in 0..4 {
        for oy in 0..g.out_h() {
            for ox in 0..g.out_w() {
                for kh in 0..3 {
                    for kw in 0..2 {
                        let y = (oy * 2 + kh) as isize - 1;
                        let xx = (ox + kw) as isize - 1;
                        if (0..7).contains(&y) && (0..6).contains(&xx) {
                            unfolded += u64::from(xbits[(ch * 7 + y as usize) * 6 + xx as usize]);
                        }
                    }
                }
            }
        }
    }
    let s = LayerSparsity {
        weights: Support::Bitmap(w),
        inputs: Support::Bitmap(x),
        outputs: Support::Dense,
    };
    let l = model()
        .with_evaluator(Evaluator::Exact)
        .layer(&g, &s)
        .unwrap();
    assert_eq!(l.macs, expected);
    assert_eq!(l.input.unfolded, unfolded);
}

#[test]
fn overflowing_map_counts_overlap() {
    // 64 channels of 32x32 = 65,536 values > 51,200: rows hold 64·32 = 2,048 values, 25 rows per
    // batch, kernel 3 stride 1: the first batch covers output rows 0..23, the next starts at
    // row 23 and re-reads rows 23 and 24.
    let g = LayerGeometry::conv([64, 32, 32], 8, ConvParams::square(3)).unwrap();
    let l = model().layer(&g, &LayerSparsity::dense()).unwrap();
    assert_eq!(l.input.overlap, 2 * 2_048);
}

// AlexNet conv1 (3×227×227, k 11, stride 4): rows of 681 values, 75 rows per batch, four batches
// sharing 7 rows each time. The paper's closed form (docs/energy-models.md A.6) gives the same
// k·(r − ξ)·(⌈h/(⌊s1/k⌋ − r + ξ)⌉ − 1) = 681·7·3 = 14,301 here.
#[test]
fn alexnet_conv1_overlap_matches_closed_form() {
    let g = LayerGeometry::conv([3, 227, 227], 96, ConvParams::square(11).stride(4)).unwrap();
    let l = model().layer(&g, &LayerSparsity::dense()).unwrap();
    let k = 681u64;
    let closed = k * (11 - 4) * ((227u64).div_ceil(51_200 / k - 11 + 4) - 1);
    assert_eq!(l.input.overlap, 14_301);
    assert_eq!(l.input.overlap, closed);
    assert_eq!(l.input.dram_reads, (154_587.0 + 14_301.0) * 200.0);
}

#[test]
fn errors_not_clamps() {
    // One row of 1,024 channels × 64 columns exceeds the cache: cannot hold r rows.
    let g = LayerGeometry::conv([1_024, 8, 64], 4, ConvParams::square(3)).unwrap();
    let err = model().layer(&g, &LayerSparsity::dense()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InputCacheTooSmall {
                rows: 0,
                r: 3,
                capacity: 51_200
            }
        ),
        "{err:?}"
    );
    // Through the trait the typed error survives, boxed in tensor-core's Model variant.
    let via_trait = model()
        .layer_energy(&g, &LayerSparsity::dense(), Precision::default())
        .unwrap_err();
    match via_trait {
        tensor_core::Error::Model(e) => assert!(e.downcast_ref::<Error>().is_some()),
        other => panic!("expected a model error, got {other:?}"),
    }
    // 8-bit operands are not priced by this model.
    let p8 = Precision::new(8, 16, 16).unwrap();
    assert!(
        model()
            .layer_energy(&tiny(0), &LayerSparsity::dense(), p8)
            .is_err()
    );
    // A fractional input density has no positions.
    let half = LayerSparsity {
        inputs: Support::Density(Density::new(0.5).unwrap()),
        ..LayerSparsity::dense()
    };
    assert!(matches!(
        model().layer(&tiny(0), &half),
        Err(Error::Support { .. })
    ));
    // A wrong-sized mask is a shape error.
    let bad = LayerSparsity {
        inputs: Support::Bitmap(Bitmap::ones(&[1, 3, 3])),
        ..LayerSparsity::dense()
    };
    assert!(model().layer(&tiny(0), &bad).is_err());
    // The exact evaluator cannot place a fractional weight density.
    let wd = LayerSparsity::with_weight_density(Density::new(0.5).unwrap());
    assert!(model().layer(&tiny(0), &wd).is_ok());
    assert!(
        model()
            .with_evaluator(Evaluator::Exact)
            .layer(&tiny(0), &wd)
            .is_err()
    );
    // Invalid hardware.
    let hw = SystolicArrayConfig {
        e_mem: -1.0,
        ..SystolicArrayConfig::ICLR19
    };
    assert!(hw.validate().is_err());
}

mod properties;
