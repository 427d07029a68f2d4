use proptest::prelude::*;
use tensor_core::proptest as strategies;
use tensor_core::{
    Bitmap, Density, EnergyModel, LayerGeometry, LayerId, LayerSparsity, LayerWorkload, Level,
    Operand, Precision, Support,
};

use super::blocking::{Blocking, Loop, ORDERS};
use super::*;
use crate::reference;
use tensor_core::ConvParams;

/// [`reference::conv`]'s geometry.
fn conv(c: usize, hw: usize, d: usize, k: usize, s: usize, p: usize, g: usize) -> LayerGeometry {
    reference::conv(c, hw, d, k, s, p, g).geometry().unwrap()
}

/// [`reference::fc`]'s geometry.
fn fc(c: usize, hw: usize, d: usize) -> LayerGeometry {
    reference::fc(c, hw, d).geometry().unwrap()
}

fn isca16(batch: usize) -> Eyeriss {
    Eyeriss::preset(Preset::Isca16, batch).unwrap()
}

fn dense(model: &Eyeriss, g: &LayerGeometry) -> EyerissLayer {
    model
        .price(g, &LayerSparsity::dense(), Precision::FIXED16)
        .unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) + 1e-9
}

// ---------------------------------------------------------------------------------------------
// Fig. 10 of Chen, Emer, Sze, ISCA'16 (docs/energy-models.md B.10): AlexNet, batch 16, Table IV
// costs, dense 16-bit, in 10^9 MAC energies for the whole batch of 16 images.
//
// Fig. 10 prices AlexNet in Krizhevsky's two-tower layout: conv1 is two independent 48-filter
// convolutions that each read the whole 3-channel image (the layout of nn_dataflow's
// `alex_net.py`, which reproduces the figure), while the other layers match the Caffe grouped
// layout of B.10 (conv3 as one 256 → 384 layer and as two 256 → 192 towers price the same).
// ---------------------------------------------------------------------------------------------

/// (layer, geometry, towers) of AlexNet as Fig. 10 prices it (reference::EYERISS_FIG10).
fn alexnet_fig10() -> Vec<(&'static str, LayerGeometry, f64)> {
    reference::EYERISS_FIG10
        .iter()
        .map(|l| (l.name, l.shape.geometry().unwrap(), l.towers))
        .collect()
}

/// Fig. 10 (ALU, DRAM, RF) per layer, 10^9 MAC energies.
fn fig10_cells() -> Vec<(f64, f64, f64)> {
    reference::EYERISS_FIG10
        .iter()
        .map(|l| (l.alu, l.dram, l.rf))
        .collect()
}

fn fig10_ours() -> Vec<(f64, f64, f64)> {
    let model = isca16(16);
    alexnet_fig10()
        .iter()
        .map(|(_, g, towers)| {
            let e = dense(&model, g).energy;
            (
                towers * e.compute / 1e9,
                towers * e.by_level(Level::Dram) / 1e9,
                towers * e.by_level(Level::Rf) / 1e9,
            )
        })
        .collect()
}

#[test]
fn fig10_alu_per_layer() {
    let model = isca16(16);
    for (((name, g, towers), (alu, _, _)), ours) in
        alexnet_fig10().iter().zip(fig10_cells()).zip(fig10_ours())
    {
        assert!(
            reference::within_fig10(ours.0, alu),
            "{name}: ALU {} vs {alu}",
            ours.0
        );
        // ALU = 16 × MACs exactly (dense, 16-bit, e_MAC = 1).
        let e = dense(&model, g).energy;
        assert_eq!(
            towers * e.compute,
            16.0 * towers * g.macs() as f64,
            "{name}"
        );
    }
}

#[test]
fn fig10_dram_per_layer() {
    for (((name, _, _), (_, dram, _)), ours) in
        alexnet_fig10().iter().zip(fig10_cells()).zip(fig10_ours())
    {
        assert!(
            reference::within_fig10(ours.1, dram),
            "{name}: DRAM {} vs {dram}",
            ours.1
        );
        // nn_dataflow's acceptance band of ±0.1 (D.2 B15) holds everywhere but fc6, which is
        // 0.109 under the figure (−1.4%).
        if *name != "fc6" {
            assert!((ours.1 - dram).abs() < 0.1, "{name}");
        }
    }
}

#[test]
fn fig10_rf_per_layer() {
    for (((name, _, _), (_, _, rf)), ours) in
        alexnet_fig10().iter().zip(fig10_cells()).zip(fig10_ours())
    {
        assert!(
            reference::within_fig10(ours.2, rf),
            "{name}: RF {} vs {rf}",
            ours.2
        );
    }
}

/// Exact values of the reproduction, to 10^-3 · 10^9 (a change in the search shows up here).
#[test]
fn fig10_reproduced_values() {
    let expected = [
        (1.687, 2.491, 6.747),
        (3.583, 2.270, 14.333),
        (2.392, 2.021, 9.569),
        (1.794, 1.568, 7.177),
        (1.196, 1.045, 4.785),
        (0.604, 7.671, 2.416),
        (0.268, 3.395, 1.074),
        (0.066, 0.836, 0.262),
    ];
    for (ours, want) in fig10_ours().iter().zip(expected) {
        assert!((ours.0 - want.0).abs() < 1e-3, "{ours:?} vs {want:?}");
        assert!((ours.1 - want.1).abs() < 1e-3, "{ours:?} vs {want:?}");
        assert!((ours.2 - want.2).abs() < 1e-3, "{ours:?} vs {want:?}");
    }
}

/// In the Caffe layout conv1 is one 96-filter layer reading the image once: its DRAM energy is
/// 1.94·10^9, 21% under Fig. 10's 2.46 (the figure's second tower re-reads the image). Kept as a
/// pin of the documented gap.
#[test]
fn caffe_conv1_reads_the_image_once() {
    let e = dense(&isca16(16), &conv(3, 227, 96, 11, 4, 0, 1)).energy;
    let d = e.by_level(Level::Dram) / 1e9;
    assert!((d - 1.941).abs() < 1e-3, "{d}");
}

#[test]
fn whole_alexnet_is_fast_and_deterministic() {
    let layers: Vec<LayerWorkload> = alexnet_fig10()
        .iter()
        .enumerate()
        .map(|(i, (name, g, _))| LayerWorkload::dense(LayerId(i), *name, *g))
        .collect();
    let model = isca16(16);
    let t = std::time::Instant::now();
    let a = model.network_energy(&layers).unwrap();
    let elapsed = t.elapsed();
    // Milliseconds in release; a generous bound for unoptimised test builds on a busy machine.
    assert!(elapsed.as_secs_f64() < 10.0, "{elapsed:?}");
    let b = model.network_energy(&layers).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.model, "eyeriss-isca16 batch 16");
    assert_eq!(a.unit, EnergyUnit::Mac16);
}

#[test]
fn chip_preset_prices_alexnet() {
    let model = Eyeriss::preset(Preset::Chip, 4).unwrap();
    let isca = isca16(4);
    for (name, g, _) in alexnet_fig10() {
        let chip = dense(&model, &g);
        assert!(
            chip.mapping.utilisation > 0.0 && chip.mapping.utilisation <= 1.0,
            "{name}"
        );
        // Compute and register-file energy do not depend on the array.
        let ours = dense(&isca, &g).energy;
        assert_eq!(chip.energy.compute, ours.compute, "{name}");
        assert_eq!(
            chip.energy.by_level(Level::Rf),
            ours.by_level(Level::Rf),
            "{name}"
        );
    }
    assert_eq!(model.name(), "eyeriss-chip batch 4");
}

// ---------------------------------------------------------------------------------------------
// Closed forms (docs/energy-models.md B.6) and the mapping (B.4).
// ---------------------------------------------------------------------------------------------

#[test]
fn rf_is_four_accesses_per_mac() {
    let g = conv(96, 27, 256, 5, 1, 2, 2);
    let l = dense(&isca16(4), &g);
    let macs = 4.0 * g.macs() as f64;
    assert_eq!(l.accesses[3], [macs, macs, 2.0 * macs]);
    assert_eq!(l.dense_macs, 4 * 223_948_800);
}

#[test]
fn reuse_counts() {
    // Each conv weight is used E·F·N times; each FC weight N times, each FC input M times.
    let g = conv(256, 13, 384, 3, 1, 1, 1);
    let n = 16;
    assert_eq!(n * g.macs(), g.weights() * 13 * 13 * n);
    let f = fc(4096, 1, 1000);
    assert_eq!(n * f.macs(), f.weights() * n);
    assert_eq!(f.macs(), f.in_features() * 1000);
}

/// With a buffer that holds everything, DRAM traffic is compulsory: |W|, N·|I|, N·|O|.
#[test]
fn unbounded_buffer_gives_compulsory_traffic() {
    let mut cfg = EyerissConfig::new(Preset::Isca16, 4);
    cfg.hardware.glb_words = 1 << 40;
    let model = cfg.validate().unwrap();
    for g in [
        conv(16, 12, 32, 3, 1, 0, 1),
        fc(64, 2, 100),
        conv(8, 10, 8, 3, 1, 0, 4),
    ] {
        let l = dense(&model, &g);
        assert_eq!(l.mapping.fold_w, 1);
        let d = l.accesses[0];
        assert_eq!(d[Operand::Weight as usize], g.weights() as f64);
        assert_eq!(d[Operand::Input as usize], (4 * g.in_features()) as f64);
        assert_eq!(d[Operand::Output as usize], (4 * g.out_features()) as f64);
    }
}

/// Psum closed form: accumulated over `a` buffer visits, a psum costs 2a − 1 DRAM transfers.
#[test]
fn fetch_rule_by_hand() {
    // Level 0: filters outermost (4), then channels (3), then batch (2).
    let b = Blocking {
        factors: [[2, 3, 4], [1, 1, 1], [1, 1, 1]],
        orders: [[Loop::Filter, Loop::Channel, Loop::Batch], ORDERS[0]],
    };
    // Weights: innermost relevant is channels; batch inside does not refetch.
    assert_eq!(b.fetches(Operand::Weight, 0), 1);
    // Inputs: innermost relevant is batch; filters outside it refetch 4 times.
    assert_eq!(b.fetches(Operand::Input, 0), 4);
    // Outputs: innermost relevant is batch; channels outside it revisit psums 3 times.
    assert_eq!(b.fetches(Operand::Output, 0), 3);
    assert_eq!(b.tile_units(Operand::Weight, 0), 12);
    assert_eq!(b.tile_units(Operand::Input, 1), 1);
}

/// Closed form of B.6 on a layer whose psums must spill: with `f` buffer visits per psum the
/// DRAM count is `N·M·E·F·(2f − 1)`, and weights and inputs follow their fetch counts.
#[test]
fn psum_spill_matches_the_closed_form() {
    let mut cfg = EyerissConfig::new(Preset::Isca16, 2);
    cfg.hardware.glb_words = 2048;
    let model = cfg.validate().unwrap();
    let g = conv(64, 16, 64, 3, 1, 1, 1);
    let l = dense(&model, &g);
    assert_eq!(l.mapping.fold_w, 1);
    let b = l.blocking;
    let f = |t| b.fetches(t, 0) as f64;
    let (wo, out) = (g.weights() as f64, (2 * g.out_features()) as f64);
    assert_eq!(l.accesses[0][0], wo * f(Operand::Weight));
    assert_eq!(
        l.accesses[0][1],
        (2 * 64 * 18 * 18) as f64 * f(Operand::Input)
    );
    assert_eq!(l.accesses[0][2], out * (2.0 * f(Operand::Output) - 1.0));
    // The small buffer forces some re-fetching somewhere.
    assert!(f(Operand::Weight) * f(Operand::Input) * f(Operand::Output) > 1.0);
}

#[test]
fn alexnet_mappings() {
    // conv1: an 11 × 55 set is cut into four 14-row strips reading 63 ifmap rows each.
    let m = mapping::fit(11, 55, 4, 16, 16);
    assert_eq!((m.fold_h, m.fold_w, m.repl_h, m.repl_w), (1, 4, 1, 1));
    assert_eq!((m.strip_rows, m.strip_in_rows), (14, 63));
    // conv2: 5 × 27 folds twice in width, both folds stacked into the spare height.
    let m = mapping::fit(5, 27, 1, 16, 16);
    assert_eq!((m.fold_h, m.fold_w, m.repl_h, m.repl_w), (1, 1, 1, 1));
    assert!((m.utilisation - 135.0 / 256.0).abs() < 1e-12);
    // conv3: 3 × 13 replicated 5 times in height.
    let m = mapping::fit(3, 13, 1, 16, 16);
    assert_eq!((m.repl_h, m.repl_w, m.replicas()), (5, 1, 5));
    // fc7 (1 × 1 set): the whole array is replicas.
    assert_eq!(mapping::fit(1, 1, 1, 16, 16).replicas(), 256);
    // A set taller than the array folds in height.
    let m = mapping::fit(20, 4, 1, 16, 16);
    assert_eq!((m.fold_h, m.repl_h, m.repl_w), (2, 1, 4));
}

// ---------------------------------------------------------------------------------------------
// Configuration and errors.
// ---------------------------------------------------------------------------------------------

#[test]
fn preset_names_round_trip() {
    for p in [Preset::Isca16, Preset::Chip] {
        assert_eq!(p.to_string().parse::<Preset>().unwrap(), p);
    }
    assert!(matches!(
        "eyeriss".parse::<Preset>(),
        Err(Error::Config {
            field: "preset",
            ..
        })
    ));
    assert_eq!(Preset::Chip.hardware().rf_words, 261);
    assert_eq!(Preset::Chip.hardware().glb_words, 55_296);
    assert_eq!(Preset::Isca16.hardware().glb_words, 65_536);
}

#[test]
fn config_serialises_and_validates() {
    let cfg = EyerissConfig::new(Preset::Chip, 4);
    let json = serde_json::to_string(&cfg).unwrap();
    let back: EyerissConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cfg);
    assert!(json.contains("\"preset\":\"chip\""));
    let mut bad = cfg;
    bad.batch = 0;
    assert!(matches!(
        bad.validate(),
        Err(Error::Config { field: "batch", .. })
    ));
    let mut bad = cfg;
    bad.costs.dram = f64::NAN;
    assert!(matches!(
        bad.validate(),
        Err(Error::Config {
            field: "costs.dram",
            ..
        })
    ));
    let mut bad = cfg;
    bad.policy.metadata_overhead = -0.1;
    assert!(bad.validate().is_err());
    let mut bad = cfg;
    bad.hardware.rows = 0;
    assert!(matches!(
        bad.validate(),
        Err(Error::Config {
            field: "hardware.rows",
            ..
        })
    ));
}

#[test]
fn unmappable_layer_is_a_typed_error_naming_the_layer() {
    let mut cfg = EyerissConfig::new(Preset::Isca16, 1);
    cfg.hardware.glb_words = 100;
    let model = cfg.validate().unwrap();
    let g = conv(1, 64, 1, 3, 1, 0, 1);
    let err = model
        .price(&g, &LayerSparsity::dense(), Precision::FIXED16)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Unmappable {
            level: "global buffer",
            capacity: 100,
            ..
        }
    ));
    let layers = [LayerWorkload::dense(LayerId(7), "big", g)];
    match model.network_energy(&layers).unwrap_err() {
        tensor_core::Error::Layer { id, source } => {
            assert_eq!(id, LayerId(7));
            let inner = match *source {
                tensor_core::Error::Model(m) => m,
                other => panic!("unexpected {other:?}"),
            };
            assert!(inner.downcast_ref::<Error>().is_some());
        }
        other => panic!("unexpected {other:?}"),
    }
    let mut cfg = EyerissConfig::new(Preset::Isca16, 1);
    cfg.hardware.rf_words = 6;
    let err = cfg
        .validate()
        .unwrap()
        .price(&g, &LayerSparsity::dense(), Precision::FIXED16)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Unmappable {
            level: "register file",
            needed: 7,
            ..
        }
    ));
}

#[test]
fn bad_inputs_are_errors() {
    let model = isca16(1);
    let g = conv(2, 5, 3, 3, 1, 0, 1);
    let p = Precision {
        weight_bits: 0,
        ..Precision::FIXED16
    };
    assert!(matches!(
        model.price(&g, &LayerSparsity::dense(), p),
        Err(Error::BitWidth {
            bits: 0,
            operand: Operand::Weight,
            ..
        })
    ));
    let sp = LayerSparsity {
        weights: Support::Bitmap(Bitmap::ones(&[5])),
        ..LayerSparsity::dense()
    };
    assert!(model.price(&g, &sp, Precision::FIXED16).is_err());
}

#[test]
fn random_bitmaps_approach_the_density_product() {
    // D.2 B8: i.i.d. bitmaps, ≥ 10^6 MACs, relative error < 1% (a fixed LCG stream).
    let g = conv(32, 28, 64, 3, 1, 1, 1);
    assert!(g.macs() >= 1_000_000);
    let mut state = 12_345u64;
    let mut draw = |n: usize, p: f64| -> Vec<bool> {
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 11) as f64 / (1u64 << 53) as f64) < p
            })
            .collect()
    };
    let w = Bitmap::from_bools(&g.weight_shape(), &draw(g.weights(), 0.4)).unwrap();
    let x = Bitmap::from_bools(&[32, 28, 28], &draw(g.in_features(), 0.6)).unwrap();
    let (dw, dx) = (w.density().unwrap().get(), x.density().unwrap().get());
    let sp = LayerSparsity {
        weights: Support::Bitmap(w),
        inputs: Support::Bitmap(x),
        outputs: Support::Dense,
    };
    let e = isca16(1).price(&g, &sp, Precision::FIXED16).unwrap().energy;
    // Padded taps are never gated, so compare on the real-input MACs only.
    let padded = crate::sparsity::tap_hits(&g, crate::sparsity::InputSupport::Dense)
        .iter()
        .map(|&h| g.out_positions() as u64 - h)
        .sum::<u64>() as f64
        * 64.0
        * dw;
    let product = (g.macs() as f64 - padded / dw) * dw * dx;
    assert!(close(e.effective_macs - padded, product, 0.01));
}

#[test]
fn policy_changes_what_sparsity_saves() {
    let g = conv(16, 14, 32, 3, 1, 1, 1);
    let sp = LayerSparsity::with_weight_density(Density::new(0.25).unwrap());
    let base = isca16(2).price(&g, &sp, Precision::FIXED16).unwrap();
    let mut cfg = EyerissConfig::new(Preset::Isca16, 2);
    cfg.policy.zero_gating = false;
    let ungated = cfg
        .validate()
        .unwrap()
        .price(&g, &sp, Precision::FIXED16)
        .unwrap();
    assert_eq!(ungated.energy.compute, 2.0 * g.macs() as f64);
    assert!(ungated.energy.total() > base.energy.total());
    let mut cfg = EyerissConfig::new(Preset::Isca16, 2);
    cfg.policy.on_chip = OnChipData::Compressed;
    let compressed = cfg
        .validate()
        .unwrap()
        .price(&g, &sp, Precision::FIXED16)
        .unwrap();
    assert!(
        compressed.energy.get(Level::Buffer, Operand::Weight)
            < base.energy.get(Level::Buffer, Operand::Weight)
    );
}

// ---------------------------------------------------------------------------------------------
// Properties (docs/energy-models.md D.2).
// ---------------------------------------------------------------------------------------------

fn layer() -> impl Strategy<Value = LayerGeometry> {
    prop_oneof![
        3 => strategies::conv_geometry(12, 14),
        1 => strategies::fc_geometry(24, 40),
    ]
}

fn with_density(w: Density, i: Density) -> LayerSparsity {
    LayerSparsity {
        weights: Support::Density(w),
        inputs: Support::Density(i),
        outputs: Support::Dense,
    }
}

fn batch() -> impl Strategy<Value = usize> {
    1usize..=4
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// B1, B2: non-negative terms, level and operand sums agree; dense RF = 4 × compute.
    #[test]
    fn structure(g in layer(), n in batch()) {
        let e = dense(&isca16(n), &g).energy;
        prop_assert!(e.compute >= 0.0 && e.data.iter().flatten().all(|&x| x >= 0.0));
        let by_level: f64 = Level::ALL.iter().map(|&v| e.by_level(v)).sum();
        let by_operand: f64 = Operand::ALL.iter().map(|&t| e.by_operand(t)).sum();
        prop_assert!(close(by_level, by_operand, 1e-12));
        prop_assert!(close(by_level, e.data_total(), 1e-12));
        prop_assert_eq!(e.by_level(Level::Rf), 4.0 * e.compute);
        prop_assert_eq!(e.compute, (n * g.macs()) as f64);
    }

    /// B3: DRAM traffic is at least compulsory.
    #[test]
    fn compulsory_traffic(g in layer(), n in batch(), dw in strategies::density(), di in strategies::density()) {
        let l = isca16(n).price(&g, &with_density(dw, di), Precision::FIXED16).unwrap();
        let d = l.accesses[0];
        prop_assert!(d[0] >= g.weights() as f64 * dw.get() * (1.0 - 1e-12));
        // Ifmap rows and columns a stride never reaches are not traffic.
        let used = |size: usize, out: usize, k: usize, s: usize| size.min((out - 1) * s + k);
        let ifmap = g.in_channels()
            * used(g.in_h(), g.out_h(), g.kernel().0, g.stride().0)
            * used(g.in_w(), g.out_w(), g.kernel().1, g.stride().1);
        prop_assert!(d[1] >= (n * ifmap) as f64 * di.get() * (1.0 - 1e-12));
        prop_assert!(d[2] >= (n * g.out_features()) as f64 * (1.0 - 1e-12));
    }

    /// B4: network = Σ layers, in any order; a grouped conv = g × one group.
    #[test]
    fn additivity(a in layer(), b in layer(), n in batch()) {
        let model = isca16(n);
        let ws = [
            LayerWorkload::dense(LayerId(0), "a", a),
            LayerWorkload::dense(LayerId(1), "b", b),
        ];
        let net = model.network_energy(&ws).unwrap();
        let sum = dense(&model, &a).energy.total() + dense(&model, &b).energy.total();
        prop_assert!(close(net.total(), sum, 1e-12));
        let rev = model.network_energy(&[ws[1].clone(), ws[0].clone()]).unwrap();
        prop_assert!(close(rev.total(), net.total(), 1e-12));
    }

    #[test]
    fn groups_are_independent(g in strategies::conv_geometry(12, 14), n in batch()) {
        let one = LayerGeometry::conv([g.channels_per_group(), g.in_h(), g.in_w()], g.out_channels() / g.groups(), ConvParams { kernel: g.kernel(), stride: g.stride(), padding: g.padding(), groups: 1 }).unwrap();
        let model = isca16(n);
        let whole = dense(&model, &g).energy.total();
        let part = dense(&model, &one).energy.total();
        prop_assert!(close(whole, g.groups() as f64 * part, 1e-12));
    }

    /// B6: energy never increases as a density decreases; compute strictly follows MACs.
    #[test]
    fn density_monotone(
        g in layer(), n in batch(),
        a in strategies::density(), b in strategies::density(), di in strategies::density(),
    ) {
        let (lo, hi) = if a.get() <= b.get() { (a, b) } else { (b, a) };
        let model = isca16(n);
        let e_lo = model.price(&g, &with_density(lo, di), Precision::FIXED16).unwrap().energy;
        let e_hi = model.price(&g, &with_density(hi, di), Precision::FIXED16).unwrap().energy;
        prop_assert!(e_lo.total() <= e_hi.total() * (1.0 + 1e-12));
        if e_lo.effective_macs < e_hi.effective_macs {
            prop_assert!(e_lo.compute < e_hi.compute);
        }
        // Same for the input density.
        let e_lo = model.price(&g, &with_density(di, lo), Precision::FIXED16).unwrap().energy;
        let e_hi = model.price(&g, &with_density(di, hi), Precision::FIXED16).unwrap().energy;
        prop_assert!(e_lo.total() <= e_hi.total() * (1.0 + 1e-12));
    }

    /// B7: zero weights leave only metadata weight traffic and the feature-map traffic.
    #[test]
    fn zero_weight_density(g in layer(), n in batch(), mu in 0.0f64..0.5) {
        let mut cfg = EyerissConfig::new(Preset::Isca16, n);
        cfg.policy.metadata_overhead = mu;
        let model = cfg.validate().unwrap();
        let sp = LayerSparsity::with_weight_density(Density::EMPTY);
        let l = model.price(&g, &sp, Precision::FIXED16).unwrap();
        let e = &l.energy;
        prop_assert_eq!(e.effective_macs, 0.0);
        prop_assert_eq!(e.compute, 0.0);
        prop_assert_eq!(e.by_level(Level::Rf), 0.0);
        prop_assert_eq!(e.nonzero_weights, 0);
        prop_assert!(e.get(Level::Dram, Operand::Input) > 0.0);
        prop_assert!(e.get(Level::Dram, Operand::Output) > 0.0);
        // Weight DRAM words are μ × the dense words of the chosen blocking (≥ |W|).
        prop_assert!(l.accesses[0][0] >= mu * g.weights() as f64 * (1.0 - 1e-12));
        if mu == 0.0 {
            prop_assert_eq!(l.accesses[0][0], 0.0);
        }
    }

    /// B9: all densities 1 (or all-ones bitmaps) reproduce the dense model exactly.
    #[test]
    fn full_density_is_dense(g in layer(), n in batch()) {
        let model = isca16(n);
        let d = dense(&model, &g);
        let ones = model.price(&g, &with_density(Density::DENSE, Density::DENSE), Precision::FIXED16).unwrap();
        prop_assert_eq!(&ones, &d);
        let bitmaps = LayerSparsity {
            weights: Support::Bitmap(Bitmap::ones(&g.weight_shape())),
            inputs: Support::Bitmap(Bitmap::ones(&[g.in_channels(), g.in_h(), g.in_w()])),
            outputs: Support::Bitmap(Bitmap::ones(&[g.out_channels(), g.out_h(), g.out_w()])),
        };
        prop_assert_eq!(&model.price(&g, &bitmaps, Precision::FIXED16).unwrap(), &d);
    }

    /// Support-only dependence: exact effective MACs never exceed the dense count and equal the
    /// weighted hit count; a bitmap's energy depends on its set bits only, so an equal bitmap
    /// rebuilt from bools prices identically.
    #[test]
    fn bitmap_supports((g, w, x) in strategies::conv_with_supports(6, 9), n in batch()) {
        let model = isca16(n);
        let sp = LayerSparsity {
            weights: Support::Bitmap(w.clone()),
            inputs: Support::Bitmap(x.clone()),
            outputs: Support::Dense,
        };
        let a = model.price(&g, &sp, Precision::FIXED16).unwrap();
        prop_assert!(a.energy.effective_macs <= (n * g.macs()) as f64);
        let bits: Vec<bool> = (0..w.len()).map(|i| w.get(i)).collect();
        let sp2 = LayerSparsity {
            weights: Support::Bitmap(Bitmap::from_bools(&g.weight_shape(), &bits).unwrap()),
            ..sp.clone()
        };
        prop_assert_eq!(&model.price(&g, &sp2, Precision::FIXED16).unwrap(), &a);
        // Brute-force oracle for the exact count.
        let (oh, ow) = (g.out_h(), g.out_w());
        let cpg = g.channels_per_group();
        let dpg = g.out_channels() / g.groups();
        let mut count = 0u64;
        for o in 0..g.out_channels() {
            for cl in 0..cpg {
                let ch = (o / dpg) * cpg + cl;
                for kh in 0..g.kernel().0 {
                    for kw in 0..g.kernel().1 {
                        if !w.get(((o * cpg + cl) * g.kernel().0 + kh) * g.kernel().1 + kw) {
                            continue;
                        }
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let y = (oy * g.stride().0 + kh) as isize - g.padding().0 as isize;
                                let xx = (ox * g.stride().1 + kw) as isize - g.padding().1 as isize;
                                let inside = y >= 0 && xx >= 0 && (y as usize) < g.in_h() && (xx as usize) < g.in_w();
                                if !inside || x.get((ch * g.in_h() + y as usize) * g.in_w() + xx as usize) {
                                    count += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        prop_assert_eq!(a.energy.effective_macs, (n as u64 * count) as f64);
    }

    /// B6 on supports: setting one more weight bit never lowers the energy.
    #[test]
    fn adding_a_weight_never_lowers_energy(
        (g, w, x) in strategies::conv_with_supports(6, 9), n in batch(), pick in any::<prop::sample::Index>(),
    ) {
        let model = isca16(n);
        let price = |w: Bitmap| {
            let sp = LayerSparsity {
                weights: Support::Bitmap(w),
                inputs: Support::Bitmap(x.clone()),
                outputs: Support::Dense,
            };
            model.price(&g, &sp, Precision::FIXED16).unwrap().energy
        };
        let before = price(w.clone());
        let mut more = w;
        more.set(pick.index(more.len()), true);
        let after = price(more);
        prop_assert!(after.total() >= before.total() * (1.0 - 1e-12));
        prop_assert!(after.effective_macs >= before.effective_macs);
    }

    /// B10: scaling every cost by λ scales E by λ; the optimum is concave in the costs.
    #[test]
    fn cost_scaling(g in layer(), n in batch(), lambda in 0.1f64..10.0, k in 0usize..5) {
        let base = EyerissConfig::new(Preset::Isca16, n);
        let mut scaled = base;
        scaled.costs = base.costs.scaled(lambda);
        let e1 = dense(&base.validate().unwrap(), &g).energy.total();
        let e2 = dense(&scaled.validate().unwrap(), &g).energy.total();
        prop_assert!(close(e2, lambda * e1, 1e-9));
        // Concavity: split Table IV into two cost vectors.
        let mut c1 = base;
        let mut c2 = base;
        let levels = [200.0, 6.0, 2.0, 1.0];
        let part = |v: f64| v * (k as f64) / 4.0;
        c1.costs = UnitCosts { mac: 0.5, dram: part(levels[0]), glb: part(levels[1]), array: part(levels[2]), rf: 0.5 };
        c2.costs = UnitCosts {
            mac: 0.5, dram: levels[0] - part(levels[0]), glb: levels[1] - part(levels[1]),
            array: levels[2] - part(levels[2]), rf: 0.5,
        };
        let s1 = dense(&c1.validate().unwrap(), &g).energy.total();
        let s2 = dense(&c2.validate().unwrap(), &g).energy.total();
        prop_assert!(e1 >= (s1 + s2) * (1.0 - 1e-12));
    }

    /// B11: halving every data width halves E_data; compute follows the width product.
    #[test]
    fn bit_width_scaling(g in layer(), n in batch(), w in 1u8..=16, i in 1u8..=16, o in 1u8..=16) {
        let model = isca16(n);
        let sp = LayerSparsity::dense();
        let half = model.price(&g, &sp, Precision { weight_bits: w, input_bits: i, output_bits: o }).unwrap();
        let full = model.price(&g, &sp, Precision { weight_bits: 2 * w, input_bits: 2 * i, output_bits: 2 * o }).unwrap();
        prop_assert!(close(full.energy.data_total(), 2.0 * half.energy.data_total(), 1e-12));
        prop_assert!(close(full.energy.compute, 4.0 * half.energy.compute, 1e-12));
        let one = model.price(&g, &sp, Precision { weight_bits: 2 * w, input_bits: i, output_bits: o }).unwrap();
        prop_assert!(close(one.energy.compute, 2.0 * half.energy.compute, 1e-12));
    }

    /// B12: compute is linear in the batch; per-image energy does not grow along multiples.
    #[test]
    fn batch_scaling(g in layer(), n in 1usize..=3, k in 2usize..=3) {
        let one = dense(&isca16(1), &g).energy;
        let e_n = dense(&isca16(n), &g).energy;
        let e_kn = dense(&isca16(k * n), &g).energy;
        prop_assert_eq!(e_n.compute, n as f64 * one.compute);
        prop_assert!(e_kn.total() <= k as f64 * e_n.total() * (1.0 + 1e-12));
    }

    /// B13: a larger buffer or register file never costs more.
    #[test]
    fn more_storage_never_costs_more(g in layer(), n in batch(), grow in 1usize..4) {
        let mut small = EyerissConfig::new(Preset::Isca16, n);
        small.hardware.glb_words = 4096;
        small.hardware.rf_words = 64;
        let mut big = small;
        big.hardware.glb_words <<= grow;
        big.hardware.rf_words <<= grow;
        let run = |cfg: EyerissConfig| cfg.validate().unwrap()
            .price(&g, &LayerSparsity::dense(), Precision::FIXED16).map(|l| l.energy.total());
        if let Ok(e_small) = run(small) {
            let e_big = run(big).unwrap();
            prop_assert!(e_big <= e_small * (1.0 + 1e-12));
        }
    }

    /// B14: the searched mapping costs no more than the canonical one (one unit per buffer tile,
    /// default order), priced by the same counts.
    #[test]
    fn search_beats_canonical(g in layer(), n in batch()) {
        let l = dense(&isca16(n), &g);
        let canonical = Blocking {
            factors: [l.blocking.factors.iter().fold([1; 3], |acc, f| {
                [acc[0] * f[0], acc[1] * f[1], acc[2] * f[2]]
            }), [1; 3], [1; 3]],
            orders: [ORDERS[0], ORDERS[0]],
        };
        let searched = l.blocking;
        let cost = |b: &Blocking| -> f64 {
            let p = isca16(n).setup(&g, Precision::FIXED16, [1.0; 3]).problem;
            let a = blocking::accesses(&p, b);
            a.iter().zip(&p.price).map(|(r, c)| r.iter().zip(c).map(|(x, y)| x * y).sum::<f64>()).sum()
        };
        prop_assert!(cost(&searched) <= cost(&canonical) * (1.0 + 1e-12));
    }

    /// B16: identical inputs give identical outputs and mappings.
    #[test]
    fn deterministic(g in layer(), n in batch(), dw in strategies::density(), p in strategies::precision()) {
        let sp = with_density(dw, Density::DENSE);
        let a = isca16(n).price(&g, &sp, p).unwrap();
        let b = isca16(n).price(&g, &sp, p).unwrap();
        prop_assert_eq!(a, b);
    }
}
