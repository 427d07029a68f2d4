use proptest::prelude::*;
use tensor_core::proptest::{bit_width, work_ledger};
use tensor_core::{Gemm, Iteration, LayerGeometry, LayerId, LayerWork, WorkLedger};

use super::*;
use tensor_core::ConvParams;

fn q(macs: u64, a_bits: u8, b_bits: u8) -> Gemm {
    Gemm {
        macs_per_sample: macs,
        a_bits,
        b_bits,
    }
}

/// Default widths of docs/energy-models.md C.3: forward e(8,8), g_x e(8,32), g_W e(8,32); with PSG
/// the predictor e(4,16) and the fallback e(8,32).
fn work(layer: usize, macs: u64, first: bool, psg: Option<f64>) -> LayerWork {
    LayerWork {
        layer: LayerId(layer),
        executed_fraction: 1.0,
        forward: q(macs, 8, 8),
        input_grad: (!first).then(|| q(macs, 8, 32)),
        weight_grad: Some(q(macs, 8, 32)),
        predictor: psg.map(|_| q(macs, 4, 16)),
        fallback_fraction: psg.unwrap_or(0.0),
    }
}

fn ledger_of(iterations: &[Option<Vec<LayerWork>>], batch: usize) -> WorkLedger {
    let mut l = WorkLedger::new();
    for it in iterations {
        match it {
            None => l.record_dropped(),
            Some(w) => l.record_executed(batch, w.clone()).unwrap(),
        }
    }
    l
}

fn total(ledger: &WorkLedger) -> f64 {
    TrainingModel::bit_product_proxy()
        .price(ledger)
        .unwrap()
        .energy
        .total()
}

// docs/energy-models.md C.2: e(16,16) = 1, e(8,8) = 0.25, e(8,32) = 1, e(4,16) = 0.25.
#[test]
fn proxy_values() {
    let t = OpEnergyTable::BitProductProxy;
    assert_eq!(t.energy(16, 16).unwrap(), 1.0);
    assert_eq!(t.energy(8, 8).unwrap(), 0.25);
    assert_eq!(t.energy(8, 32).unwrap(), 1.0);
    assert_eq!(t.energy(4, 16).unwrap(), 0.25);
    assert!(matches!(
        t.energy(0, 16),
        Err(Error::BitWidth { bits: 0, .. })
    ));
}

#[test]
fn proxy_is_labelled_everywhere() {
    let l = ledger_of(&[Some(vec![work(0, 10, true, None)])], 2);
    let m = TrainingModel::bit_product_proxy();
    let r = m.price(&l).unwrap();
    assert!(r.energy.proxy);
    assert_eq!(r.energy.model, "training/bit-product-proxy");
    assert!(r.energy.to_string().contains("proxy"));
    assert!(r.to_string().contains("proxy"));
    assert!(m.name().contains("proxy"));
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"proxy\":true"));
}

// docs/energy-models.md C.3 with the default widths: per sample and MAC, forward 0.25, g_x 1,
// g_W 1 without PSG; with PSG and ρ = 0.1 the weight gradient is 0.25 + 0.1 · 1.
#[test]
fn worked_iteration() {
    let base = ledger_of(
        &[Some(vec![
            work(0, 100, true, None),
            work(1, 100, false, None),
        ])],
        4,
    );
    let r = TrainingModel::bit_product_proxy().price(&base).unwrap();
    assert_eq!(r.energy.forward, 4.0 * 200.0 * 0.25);
    assert_eq!(r.energy.input_grad, 4.0 * 100.0);
    assert_eq!(r.energy.weight_grad, 4.0 * 200.0);
    assert_eq!(r.layers.len(), 2);
    let psg = ledger_of(&[Some(vec![work(0, 100, true, Some(0.5))])], 4);
    let r = TrainingModel::bit_product_proxy().price(&psg).unwrap();
    assert_eq!(r.energy.weight_grad, 4.0 * 100.0 * (0.25 + 0.5));
}

// docs/energy-models.md C.4 example: p = 0.5 dropped, 4/3 iterations, half the blocks, PSG making g_W
// four times cheaper with each GEMM a third of the work: E_run/E_base ≈ 0.25.
#[test]
fn closed_form_example() {
    let full = |psg: bool, fraction: f64| LayerWork {
        layer: LayerId(0),
        executed_fraction: fraction,
        forward: q(1_000, 16, 16),
        input_grad: Some(q(1_000, 16, 16)),
        weight_grad: Some(q(if psg { 250 } else { 1_000 }, 16, 16)),
        predictor: None,
        fallback_fraction: 0.0,
    };
    // Baseline: 300 iterations; run: 400 iterations of which every other one is dropped.
    let base = ledger_of(&vec![Some(vec![full(false, 1.0)]); 300], 8);
    let its: Vec<_> = (0..400)
        .map(|i| (i % 2 == 0).then(|| vec![full(true, 0.5)]))
        .collect();
    let run = ledger_of(&its, 8);
    let m = TrainingModel::bit_product_proxy();
    let (r, b) = (m.price(&run).unwrap(), m.price(&base).unwrap());
    let s = savings(&r.energy, &b.energy).unwrap();
    // Exact: 200/300 · 0.5 · 2.25/3 = 0.25.
    assert!((s - 0.75).abs() < 1e-12, "{s}");
    assert_eq!(r.energy.dropped_iterations, 200);
}

// docs/energy-models.md D.3 T5: ResNet-74 training MACs per 32×32 image ≈ 3 × forward ≈ 0.51 G,
// ResNet-110 ≈ 0.76 G (forward = stem + 3 stages of 2n 3×3 convs + FC; the first layer's g_x is
// not computed). Tolerance 2%: the reference's 0.51 G is itself rounded from ≈ 0.504 G.
#[test]
fn resnet_training_macs() {
    fn forward_layers(n: usize) -> Vec<LayerGeometry> {
        let mut v =
            vec![LayerGeometry::conv([3, 32, 32], 16, ConvParams::square(3).padding(1)).unwrap()];
        let mut c = 16;
        for (stage, (d, size)) in [(16, 32), (32, 16), (64, 8)].into_iter().enumerate() {
            for i in 0..2 * n {
                let (stride, in_size) = if stage > 0 && i == 0 {
                    (2, size * 2)
                } else {
                    (1, size)
                };
                v.push(
                    LayerGeometry::conv(
                        [c, in_size, in_size],
                        d,
                        ConvParams::square(3).stride(stride).padding(1),
                    )
                    .unwrap(),
                );
                c = d;
            }
        }
        v.push(LayerGeometry::fc(64, 1, 1, 10).unwrap());
        v
    }
    for (n, expected) in [(12, 0.51e9), (18, 0.76e9)] {
        let layers: Vec<LayerWork> = forward_layers(n)
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let m = g.macs() as u64;
                LayerWork {
                    layer: LayerId(i),
                    executed_fraction: 1.0,
                    forward: q(m, 16, 16),
                    input_grad: (i > 0).then(|| q(m, 16, 16)),
                    weight_grad: Some(q(m, 16, 16)),
                    predictor: None,
                    fallback_fraction: 0.0,
                }
            })
            .collect();
        let e = total(&ledger_of(&[Some(layers)], 1));
        assert!((e / expected - 1.0).abs() < 0.02, "n = {n}: {e}");
    }
}

#[test]
fn measured_tables() {
    let json = r#"{"name": "example", "entries": [
        {"a_bits": 8, "b_bits": 8, "energy": 0.2, "source": "illustrative"},
        {"a_bits": 32, "b_bits": 8, "energy": 0.9, "source": "illustrative"}]}"#;
    let t = MeasuredTable::from_json(json).unwrap();
    let m = TrainingModel::measured(t).unwrap();
    assert_eq!(m.table().energy(8, 32).unwrap(), 0.9);
    assert!(matches!(
        m.table().energy(4, 16),
        Err(Error::MissingOpEnergy {
            a_bits: 4,
            b_bits: 16,
            ..
        })
    ));
    let l = ledger_of(&[Some(vec![work(0, 10, true, None)])], 1);
    let r = m.price(&l).unwrap();
    assert!(!r.energy.proxy);
    assert_eq!(r.energy.model, "training/measured:example");
    assert!(!r.energy.to_string().contains("proxy"));
    for bad in [
        r#"{"name": "x", "entries": [{"a_bits": 0, "b_bits": 8, "energy": 1, "source": "s"}]}"#,
        r#"{"name": "x", "entries": [{"a_bits": 8, "b_bits": 8, "energy": -1, "source": "s"}]}"#,
        r#"{"name": "x", "entries": [{"a_bits": 8, "b_bits": 8, "energy": 1, "source": " "}]}"#,
        r#"{"name": "x", "entries": [{"a_bits": 8, "b_bits": 4, "energy": 1, "source": "s"},
                                     {"a_bits": 4, "b_bits": 8, "energy": 2, "source": "s"}]}"#,
        r#"{"name": "x"}"#,
    ] {
        assert!(MeasuredTable::from_json(bad).is_err(), "{bad}");
    }
}

#[test]
fn savings_errors() {
    let l = ledger_of(&[Some(vec![work(0, 10, true, None)])], 1);
    let e = TrainingModel::bit_product_proxy().price(&l).unwrap().energy;
    assert_eq!(savings(&e, &e).unwrap(), 0.0);
    let empty = TrainingModel::bit_product_proxy()
        .price(&WorkLedger::new())
        .unwrap()
        .energy;
    assert!(savings(&e, &empty).is_err());
    let other = TrainingEnergy {
        model: "training/measured:x".into(),
        proxy: false,
        ..e.clone()
    };
    assert!(savings(&e, &other).is_err());
}

/// Replaces executed iteration `k` (mod the executed count) by a dropped one.
fn drop_one(ledger: &WorkLedger, k: usize) -> WorkLedger {
    let executed: Vec<usize> = ledger
        .iterations()
        .iter()
        .enumerate()
        .filter(|(_, i)| matches!(i, Iteration::Executed { .. }))
        .map(|(i, _)| i)
        .collect();
    let target = if executed.is_empty() {
        None
    } else {
        Some(executed[k % executed.len()])
    };
    let mut out = WorkLedger::new();
    for (i, it) in ledger.iterations().iter().enumerate() {
        match it {
            Iteration::Executed { batch, layers } if Some(i) != target => {
                out.record_executed(*batch, layers.clone()).unwrap()
            }
            _ => out.record_dropped(),
        }
    }
    out
}

/// Applies `f` to every layer's work.
fn map_work(ledger: &WorkLedger, f: impl Fn(&mut LayerWork)) -> WorkLedger {
    let mut out = WorkLedger::new();
    for it in ledger.iterations() {
        match it {
            Iteration::Dropped => out.record_dropped(),
            Iteration::Executed { batch, layers } => {
                let mut layers = layers.clone();
                layers.iter_mut().for_each(&f);
                out.record_executed(*batch, layers).unwrap();
            }
        }
    }
    out
}

proptest! {
    // T1: more dropped iterations, fewer executed blocks, narrower predictors or a smaller ρ
    // never increase E.
    #[test]
    fn t1_monotone(ledger in work_ledger(6, 3, 1_000), k in 0usize..10, shrink in 0.0f64..=1.0) {
        let e = total(&ledger);
        prop_assert!(total(&drop_one(&ledger, k)) <= e);
        prop_assert!(total(&map_work(&ledger, |w| w.executed_fraction *= shrink)) <= e);
        prop_assert!(total(&map_work(&ledger, |w| w.fallback_fraction *= shrink)) <= e);
        let narrower = map_work(&ledger, |w| {
            if let Some(p) = &mut w.predictor {
                p.a_bits = (p.a_bits / 2).max(1);
            }
        });
        prop_assert!(total(&narrower) <= e);
    }

    // T2: the baseline has savings exactly 0; savings ≤ 1 always and ≥ 0 when the baseline
    // dominates the run entry by entry (here: the run is the baseline with fractions shrunk).
    #[test]
    fn t2_savings_bounds(ledger in work_ledger(6, 3, 1_000), shrink in 0.0f64..=1.0) {
        let m = TrainingModel::bit_product_proxy();
        let base = m.price(&ledger).unwrap().energy;
        prop_assume!(base.total() > 0.0);
        prop_assert_eq!(savings(&base, &base).unwrap(), 0.0);
        let run = m.price(&map_work(&ledger, |w| w.executed_fraction *= shrink)).unwrap().energy;
        let s = savings(&run, &base).unwrap();
        prop_assert!((0.0..=1.0).contains(&s), "{s}");
    }

    // T3: the run's energy is the sum over executed iterations of their own energies; dropped
    // iterations add nothing.
    #[test]
    fn t3_compositional(ledger in work_ledger(6, 3, 1_000)) {
        let mut sum = 0.0;
        for it in ledger.iterations() {
            let mut one = WorkLedger::new();
            match it {
                Iteration::Dropped => one.record_dropped(),
                Iteration::Executed { batch, layers } => one.record_executed(*batch, layers.clone()).unwrap(),
            }
            sum += total(&one);
        }
        let e = total(&ledger);
        // Tolerance: summation order differs; relative 1e-12.
        prop_assert!((e - sum).abs() <= 1e-12 * e.abs().max(1.0), "{e} vs {sum}");
        let mut only_dropped = WorkLedger::new();
        for _ in 0..ledger.iterations().len() { only_dropped.record_dropped(); }
        prop_assert_eq!(total(&only_dropped), 0.0);
    }

    // T4: the proxy is symmetric and linear in each width.
    #[test]
    fn t4_proxy_table(a in bit_width(), b in bit_width()) {
        let t = OpEnergyTable::BitProductProxy;
        prop_assert_eq!(t.energy(a, b).unwrap(), t.energy(b, a).unwrap());
        prop_assert_eq!(t.energy(2 * a, b).unwrap(), 2.0 * t.energy(a, b).unwrap());
    }

    // Bit-width scaling of the inference compute: halving one operand width halves E_comp,
    // halving both quarters it.
    #[test]
    fn bit_width_scaling(w in 1u8..=16, i in 1u8..=16) {
        use tensor_core::{EnergyModel, LayerSparsity, Precision};
        let g = LayerGeometry::conv([2, 6, 6], 3, ConvParams::square(3).padding(1)).unwrap();
        let m = TrainingModel::bit_product_proxy();
        let e = |wb, ib| m.layer_energy(&g, &LayerSparsity::dense(), Precision::new(wb, ib, 16).unwrap()).unwrap().compute;
        prop_assert_eq!(e(2 * w, i), 2.0 * e(w, i));
        prop_assert_eq!(e(2 * w, 2 * i), 4.0 * e(w, i));
    }
}
