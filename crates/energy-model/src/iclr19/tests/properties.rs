//! Invariants A1–A7 of docs/energy-models.md D.1 over random small layers.

use proptest::prelude::*;
use tensor_core::proptest::{conv_geometry, conv_with_supports, fc_geometry, sparse_bitmap};
use tensor_core::{Bitmap, Density, LayerGeometry, LayerSparsity, Support};

use super::super::*;
use crate::hardware::SystolicArrayConfig;
use crate::overlap::row_overlap;

fn sparsity(w: &Bitmap, x: &Bitmap) -> LayerSparsity {
    LayerSparsity {
        weights: Support::Bitmap(w.clone()),
        inputs: Support::Bitmap(x.clone()),
        outputs: Support::Dense,
    }
}

fn exact() -> Iclr19 {
    Iclr19::paper().with_evaluator(Evaluator::Exact)
}

fn relaxed() -> Iclr19 {
    Iclr19::paper()
}

/// Index of the first unset bit, if any.
fn first_zero(b: &Bitmap) -> Option<usize> {
    (0..b.len()).find(|&i| !b.get(i))
}

proptest! {
    // A1: only the support matters. Values with the same nonzero pattern but other magnitudes
    // (and signs) price identically.
    #[test]
    fn a1_support_only(
        (g, w, x) in conv_with_supports(4, 8),
        scale in prop_oneof![Just(-3.5f32), Just(1e-3), Just(7.0)],
    ) {
        let values: Vec<f32> = (0..w.len()).map(|i| if w.get(i) { 1.0 + i as f32 } else { 0.0 }).collect();
        let scaled: Vec<f32> = values.iter().map(|v| v * scale).collect();
        let a = Bitmap::from_values(&g.weight_shape(), &values).unwrap();
        let b = Bitmap::from_values(&g.weight_shape(), &scaled).unwrap();
        for m in [exact(), relaxed()] {
            prop_assert_eq!(m.layer(&g, &sparsity(&a, &x)).unwrap(), m.layer(&g, &sparsity(&b, &x)).unwrap());
        }
    }

    // A2: adding a nonzero weight never lowers E_rel or E_ex.
    #[test]
    fn a2_weight_monotone((g, w, x) in conv_with_supports(4, 8)) {
        if let Some(i) = first_zero(&w) {
            let mut more = w.clone();
            more.set(i, true);
            for m in [exact(), relaxed()] {
                let before = m.layer(&g, &sparsity(&w, &x)).unwrap().total();
                let after = m.layer(&g, &sparsity(&more, &x)).unwrap().total();
                prop_assert!(after >= before, "{after} < {before}");
            }
        }
    }

    // A3: adding a nonzero input never lowers E_X (small layers always fit in s1, O = 0).
    #[test]
    fn a3_input_monotone((g, w, x) in conv_with_supports(4, 8)) {
        if let Some(i) = first_zero(&x) {
            let mut more = x.clone();
            more.set(i, true);
            let before = relaxed().layer(&g, &sparsity(&w, &x)).unwrap();
            let after = relaxed().layer(&g, &sparsity(&w, &more)).unwrap();
            prop_assert_eq!(before.input.overlap, 0);
            prop_assert!(after.input.total() >= before.input.total());
            let (eb, ea) = (
                exact().layer(&g, &sparsity(&w, &x)).unwrap().total(),
                exact().layer(&g, &sparsity(&w, &more)).unwrap().total(),
            );
            prop_assert!(ea >= eb);
        }
    }

    // A4: E_ex ≤ E_rel, with equality without padding and without a mask.
    #[test]
    fn a4_exact_below_relaxed((g, w, x) in conv_with_supports(4, 8)) {
        let s = sparsity(&w, &x);
        let ex = exact().layer(&g, &s).unwrap().total();
        let rel = relaxed().layer(&g, &s).unwrap().total();
        prop_assert!(ex <= rel);
        if g.padding() == (0, 0) {
            let unmasked = LayerSparsity { inputs: Support::Dense, ..s };
            prop_assert_eq!(
                exact().layer(&g, &unmasked).unwrap().total(),
                relaxed().layer(&g, &unmasked).unwrap().total()
            );
        }
    }

    // A5: all-zero weights cost E_X, all-nonzero weights cost E_dense; floor = Σ E_X / E_dense.
    // Density 0 behaves like an empty bitmap.
    #[test]
    fn a5_zero_and_full(g in prop_oneof![conv_geometry(4, 8), fc_geometry(16, 8)]) {
        let zero_d = LayerSparsity::with_weight_density(Density::EMPTY);
        let zero_b = LayerSparsity {
            weights: Support::Bitmap(Bitmap::zeros(&g.weight_shape())),
            ..LayerSparsity::dense()
        };
        for m in [exact(), relaxed()] {
            for s in [&zero_d, &zero_b] {
                let l = m.layer(&g, s).unwrap();
                prop_assert_eq!(l.total(), l.input.total());
                prop_assert_eq!(l.compute, 0.0);
                prop_assert_eq!(l.weight.total(), 0.0);
            }
        }
        let n = relaxed().normalization(&[g]).unwrap();
        let full = relaxed().layer(&g, &LayerSparsity::dense()).unwrap();
        prop_assert_eq!(n.dense, full.total());
        prop_assert_eq!(n.floor(), full.input.total() / full.total());
    }

    // Density monotonicity: a higher weight density never lowers the relaxed energy.
    #[test]
    fn density_monotone(
        g in prop_oneof![conv_geometry(4, 8), fc_geometry(16, 8)],
        a in 0.0f64..=1.0,
        b in 0.0f64..=1.0,
    ) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let e = |d: f64| relaxed()
            .layer(&g, &LayerSparsity::with_weight_density(Density::new(d).unwrap()))
            .unwrap()
            .total();
        prop_assert!(e(lo) <= e(hi));
    }

    // A6: conv E_W is piecewise linear in ‖W‖₀ with slope β_in up to s2 and β_out ≥ β_in after;
    // the linearised costs reproduce the relaxed energy exactly.
    #[test]
    fn a6_piecewise_linear(g in conv_geometry(4, 8), s2 in 0usize..40, k in 0u64..60) {
        let hw = SystolicArrayConfig { weight_cache: s2, ..SystolicArrayConfig::ICLR19 }
            .validate()
            .unwrap();
        let m = Iclr19::new(hw, Evaluator::Relaxed);
        let one = |n: u64| m.weight_energy(&g, n).total();
        let step = one(k + 1) - one(k);
        let p = g.out_positions() as f64;
        let groups = g.out_positions().div_ceil(12) as f64;
        let beta_in = 200.0 + groups * 6.0 + p;
        let beta_out = groups * 200.0 + groups * 6.0 + p;
        prop_assert!(beta_out >= beta_in);
        prop_assert_eq!(step, if (k as usize) < s2 { beta_in } else { beta_out });
        let c = m.costs(&g, &Support::Dense).unwrap();
        prop_assert_eq!(c.kappa_in, beta_in + 3.0 * p);
        prop_assert_eq!(c.kappa_out, beta_out + 3.0 * p);
        let k = k.min(g.weights() as u64);
        let bits: Vec<bool> = (0..g.weights() as u64).map(|i| i < k).collect();
        let s = LayerSparsity {
            weights: Support::Bitmap(Bitmap::from_bools(&g.weight_shape(), &bits).unwrap()),
            ..LayerSparsity::dense()
        };
        let cached = k.min(s2 as u64) as f64;
        let linear = c.fixed + c.kappa_in * cached + c.kappa_out * (k as f64 - cached);
        prop_assert_eq!(m.layer(&g, &s).unwrap().total(), linear);
    }

    // A7: O ≥ 0, O = 0 whenever the padded map fits, and a batch that cannot hold r rows is an
    // error: whenever every window of r consecutive padded rows fits, the simulation succeeds.
    #[test]
    fn a7_overlap(
        rows in proptest::collection::vec(0u64..50, 1..20),
        pad in 0usize..3,
        r in 1usize..5,
        stride in 1usize..4,
        capacity in 1usize..300,
    ) {
        let total: u64 = rows.iter().sum();
        let height = rows.len() + 2 * pad;
        prop_assume!(r <= height);
        let result = row_overlap(&rows, pad, r, stride, capacity);
        if total as usize <= capacity {
            prop_assert_eq!(result.as_ref().ok(), Some(&0));
        }
        let mut padded = vec![0u64; pad];
        padded.extend(&rows);
        padded.extend(vec![0u64; pad]);
        let windows_fit = padded.windows(r).all(|w| w.iter().sum::<u64>() as usize <= capacity);
        if windows_fit {
            prop_assert!(result.is_ok());
        }
        match result {
            Ok(_) => {}
            Err(Error::InputCacheTooSmall { rows, r: rr, .. }) => {
                prop_assert!(rows < r);
                prop_assert_eq!(rr, r);
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    // Cost homogeneity: scaling every unit energy by λ scales every figure by λ (powers of two
    // keep the check exact).
    #[test]
    fn homogeneous((g, w, x) in conv_with_supports(4, 8), e in -3i32..4) {
        let lambda = 2f64.powi(e);
        let hw = SystolicArrayConfig::ICLR19.scaled(lambda).validate().unwrap();
        let s = sparsity(&w, &x);
        for ev in [Evaluator::Exact, Evaluator::Relaxed] {
            let base = Iclr19::paper().with_evaluator(ev).layer(&g, &s).unwrap();
            let scaled = Iclr19::new(hw, ev).layer(&g, &s).unwrap();
            prop_assert_eq!(scaled.total(), lambda * base.total());
            prop_assert_eq!(scaled.to_layer_energy().data_total(), lambda * base.to_layer_energy().data_total());
        }
    }

    // Additivity: a network costs the sum of its layers, in any order.
    #[test]
    fn additive(gs in proptest::collection::vec(prop_oneof![conv_geometry(3, 6), fc_geometry(8, 6)], 1..5)) {
        use tensor_core::{EnergyModel, LayerId, LayerWorkload};
        let mut ws: Vec<LayerWorkload> = gs.iter().enumerate()
            .map(|(i, g)| LayerWorkload::dense(LayerId(i), format!("l{i}"), *g))
            .collect();
        let m = relaxed();
        let sum: f64 = gs.iter().map(|g| m.layer(g, &LayerSparsity::dense()).unwrap().total()).sum();
        prop_assert_eq!(m.network_energy(&ws).unwrap().total(), sum);
        ws.reverse();
        prop_assert_eq!(m.network_energy(&ws).unwrap().total(), sum);
    }

    // The level × operand table sums to the same data energy either way.
    #[test]
    fn breakdown_consistent((g, w, x) in conv_with_supports(4, 8)) {
        use tensor_core::{Level, Operand};
        let e = exact().layer(&g, &sparsity(&w, &x)).unwrap().to_layer_energy();
        let by_level: f64 = Level::ALL.iter().map(|&l| e.by_level(l)).sum();
        let by_operand: f64 = Operand::ALL.iter().map(|&o| e.by_operand(o)).sum();
        prop_assert_eq!(by_level, by_operand);
        prop_assert!(e.data.iter().flatten().all(|&v| v >= 0.0));
    }

    // Masks: an input mask's exact unfolded count never exceeds the dense one.
    #[test]
    fn mask_bounded_by_dense(g in conv_geometry(4, 8).prop_flat_map(|g| (Just(g), sparse_bitmap(vec![g.in_channels(), g.in_h(), g.in_w()])))) {
        let (g, x): (LayerGeometry, Bitmap) = g;
        let masked = relaxed().input_energy(&g, &Support::Bitmap(x)).unwrap();
        let dense = relaxed().input_energy(&g, &Support::Dense).unwrap();
        prop_assert!(masked.unfolded <= dense.unfolded);
        prop_assert!(masked.total() <= dense.total());
    }
}
