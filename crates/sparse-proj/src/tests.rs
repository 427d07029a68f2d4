//! Invariants of `docs/sparse-projection.md` §11 (numbered as there), goldens, and a small
//! end-to-end run of the trainer on a synthetic task.

use proptest::prelude::*;
use tensor_core::WeightCosts;

use crate::*;

/// The crate's own strategy as the tuples the tests below destructure.
fn instance(max: usize) -> impl Strategy<Value = (Vec<f32>, Vec<f64>, f64)> {
    strategies::instance(max).prop_map(|i| (i.values, i.costs, i.capacity))
}

const VARIANTS: [GreedyVariant; 3] = [
    GreedyVariant::Prefix,
    GreedyVariant::PrefixOrBestSingle,
    GreedyVariant::FillOrBestSingle,
];

#[test]
fn worked_example_keeps_the_whole_fitting_prefix() {
    // §12: the reference returns (3, 0, 0, 0) here; the fitting prefix is {0, 2}.
    let mut w = [3.0f32, -1.0, 2.0, 0.5];
    let out =
        project_weighted_l0(&mut w, &[2.0, 1.0, 1.0, 1.0], 3.0, GreedyVariant::Prefix).unwrap();
    assert_eq!(w, [3.0, 0.0, 2.0, 0.0]);
    assert_eq!(out.kept, 2);
    assert_eq!(out.consumed, 3.0);
    assert_eq!(out.kept_value, 13.0);
    assert_eq!(
        invariants::exact_optimum(&[3.0, -1.0, 2.0, 0.5], &[2.0, 1.0, 1.0, 1.0], 3.0).unwrap(),
        13.0
    );
}

#[test]
fn prefix_has_no_multiplicative_bound_but_the_half_variants_do() {
    // §5 counter-example: W² = 1 and 100, costs 0.1 and 11, capacity 11.
    let costs = [0.1, 11.0];
    let mut w = [1.0f32, 10.0];
    project_weighted_l0(&mut w, &costs, 11.0, GreedyVariant::Prefix).unwrap();
    assert_eq!(w, [1.0, 0.0]);
    for variant in [
        GreedyVariant::PrefixOrBestSingle,
        GreedyVariant::FillOrBestSingle,
    ] {
        let mut w = [1.0f32, 10.0];
        project_weighted_l0(&mut w, &costs, 11.0, variant).unwrap();
        assert_eq!(w, [0.0, 10.0], "{variant:?}");
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let mut w = [1.0f32, f32::NAN];
    assert!(matches!(
        project_weighted_l0(&mut w, &[1.0, 1.0], 1.0, GreedyVariant::Prefix),
        Err(Error::NonFinite { index: 1, .. })
    ));
    let mut w = [1.0f32, 2.0];
    assert!(matches!(
        project_weighted_l0(&mut w, &[1.0, 0.0], 1.0, GreedyVariant::Prefix),
        Err(Error::InvalidCost { index: 1, .. })
    ));
    assert!(matches!(
        project_weighted_l0(&mut w, &[1.0], 1.0, GreedyVariant::Prefix),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        project_weighted_l0(&mut w, &[1.0, 1.0], -1.0, GreedyVariant::Prefix),
        Err(Error::InvalidCapacity { .. })
    ));
    let costs = [WeightCosts {
        fixed: 10.0,
        kappa_in: 1.0,
        kappa_out: 1.0,
        cached: 4,
    }];
    let mut a = [1.0f32];
    match project_layers(&mut [&mut a], &costs, 9.5, GreedyVariant::Prefix, &[]) {
        Err(Error::BudgetInfeasible { budget, floor }) => assert_eq!((budget, floor), (9.5, 10.0)),
        other => panic!("expected an infeasible budget, got {other:?}"),
    }
}

#[test]
fn bucketed_prefix_matches_the_sorted_scan_on_large_inputs() {
    // Integer costs keep every sum exact, so both paths must agree bit for bit. Values repeat so
    // that score ties and crowded buckets occur.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (n, levels) in [(5_000usize, 7u64), (40_000, 1000), (20_000, 2)] {
        assert!(n >= crate::projection::BUCKETED_MIN);
        let values: Vec<f32> = (0..n)
            .map(|_| {
                let r = next();
                if r % 10 == 0 {
                    0.0
                } else {
                    ((r >> 8) % levels) as f32 * 0.25 - 1.0
                }
            })
            .collect();
        let costs: Vec<f64> = (0..n)
            .map(|_| [210.0, 654.0, 3732.0][(next() % 3) as usize])
            .collect();
        let total: f64 = costs.iter().sum();
        for frac in [0.0, 0.01, 0.3, 0.5, 0.99, 1.0] {
            let (mut a, mut b) = (values.clone(), values.clone());
            let oa = project_weighted_l0(
                &mut a,
                &costs,
                (total * frac).floor(),
                GreedyVariant::Prefix,
            )
            .unwrap();
            let ob = project_prefix_sorted(&mut b, &costs, (total * frac).floor()).unwrap();
            assert_eq!(a, b, "n {n}, levels {levels}, fraction {frac}");
            assert_eq!(oa, ob, "n {n}, levels {levels}, fraction {frac}");
        }
    }
}

/// A seeded large instance for the bucketed path (`n ≥ BUCKETED_MIN`). Every cost mode keeps all
/// partial sums exact (integers, or multiples of 2⁻¹⁰ below 2⁴³), so the bucketed path and the
/// sorted scan must agree bit for bit.
fn large_instance(seed: u64, n: usize, values_mode: u8, costs_mode: u8) -> (Vec<f32>, Vec<f64>) {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let values = (0..n)
        .map(|_| {
            let r = next();
            match values_mode {
                // Continuous, a tenth zeros.
                0 if r % 10 == 0 => 0.0,
                0 => ((r >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32,
                // Few levels: ties everywhere, the boundary bucket is one crowd of ties.
                1 => ((r >> 8) % 9) as f32 * 0.25 - 1.0,
                // All equal.
                2 => 0.5,
                // One key bucket of distinct scores: they differ only in low mantissa bits.
                3 => 1.0 + ((r >> 8) % 64) as f32 * f32::EPSILON * 4.0,
                // Mostly zeros, signed zeros among them.
                _ if r % 20 > 1 => {
                    if r % 2 == 0 {
                        0.0
                    } else {
                        -0.0
                    }
                }
                _ => ((r >> 8) % 1000) as f32 / 100.0 - 5.0,
            }
        })
        .collect();
    let costs = (0..n)
        .map(|_| {
            let r = next();
            match costs_mode {
                0 => [210.0, 654.0, 3732.0, 13_132.0][(r % 4) as usize],
                // Wildly different magnitudes: 2⁻¹⁰ … 7·2²⁴.
                1 => ((r >> 8) % 4 * 2 + 1) as f64 * 2f64.powi(((r >> 16) % 35) as i32 - 10),
                // Uniform: with values mode 2, all scores are equal.
                _ => 3.0,
            }
        })
        .collect();
    (values, costs)
}

/// Nonzero entries in rank order: score `w²/κ` descending, index ascending.
fn ranked(values: &[f32], costs: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).filter(|&i| values[i] != 0.0).collect();
    let score = |i: usize| f64::from(values[i]) * f64::from(values[i]) / costs[i];
    idx.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
    idx
}

#[test]
fn bucketed_prefix_keeps_extreme_scores_in_order() {
    // Scores that overflow to +∞ (huge weight, tiny cost) or underflow to 0 (tiny weight, huge
    // cost) are valid and rank as their f64 quotients do; neither is an error.
    let n = 6_000;
    let mut values = Vec::with_capacity(n);
    let mut costs = Vec::with_capacity(n);
    for i in 0..n {
        let (v, c) = match i % 5 {
            0 => (1e30f32, 2f64.powi(-1000)),
            1 => (1e-30f32, 2f64.powi(900)),
            2 => (f32::MIN_POSITIVE / 8.0, 1.0),
            3 => (-0.0, 5.0),
            _ => ((i % 97) as f32 - 48.0, (i % 7 + 1) as f64),
        };
        values.push(v);
        costs.push(c);
    }
    let total: f64 = costs.iter().sum();
    for capacity in [0.0, 1.0, 5_000.0, 9_000.0, total] {
        let (mut a, mut b) = (values.clone(), values.clone());
        let oa = project_weighted_l0(&mut a, &costs, capacity, GreedyVariant::Prefix).unwrap();
        let ob = project_prefix_sorted(&mut b, &costs, capacity).unwrap();
        assert_eq!(a, b, "capacity {capacity}");
        assert_eq!(oa, ob, "capacity {capacity}");
    }
}

#[test]
fn bucketed_prefix_reports_the_first_invalid_entry() {
    // Large inputs are validated in blocks; the error still names the first invalid index, a
    // weight before a cost at the same index, and leaves the values untouched.
    let n = 3 * crate::projection::BUCKETED_MIN;
    let (values, costs) = large_instance(3, n, 0, 0);
    let cases: [(usize, f32, usize, f64); 5] = [
        (4_000, f32::NAN, 9_000, -1.0),
        (9_000, f32::INFINITY, 4_000, 0.0),
        (5_000, f32::NEG_INFINITY, 5_000, f64::NAN),
        (n - 1, 1.0, 7_777, f64::INFINITY),
        (12, 0.0, 13, -0.0),
    ];
    for (vi, v, ci, c) in cases {
        let (mut w, mut k) = (values.clone(), costs.clone());
        w[vi] = v;
        k[ci] = c;
        let before = w.clone();
        // The first invalid index, the weight checked before the cost.
        let expect = (0..n).find_map(|i| {
            if !w[i].is_finite() {
                Some((true, i))
            } else if !(k[i].is_finite() && k[i] > 0.0) {
                Some((false, i))
            } else {
                None
            }
        });
        match (
            project_weighted_l0(&mut w, &k, 1e6, GreedyVariant::Prefix),
            expect,
        ) {
            (Err(Error::NonFinite { index, .. }), Some((true, i)))
            | (Err(Error::InvalidCost { index, .. }), Some((false, i))) => assert_eq!(index, i),
            (other, _) => panic!("expected the error of {expect:?}, got {other:?}"),
        }
        assert_eq!(
            w.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            before.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}

proptest! {
    /// The boundary resolution (radix selection over the score bits) finds the same first
    /// rejected item as a sort, also when scores share long bit prefixes and differ only in low
    /// bits, which end-to-end inputs rarely produce.
    #[test]
    fn boundary_resolution_matches_sort(
        digits in proptest::collection::vec((0u64..4, 0u64..4, 1u32..20, 1usize..3), 1..300),
        shifts in (0u32..52, 0u32..52),
        fraction in 0.0f64..1.0,
    ) {
        use crate::projection::{Item, first_rejected_in};
        let base = 1.5f64.to_bits();
        let mut index = 0;
        let items: Vec<Item> = digits
            .iter()
            .map(|&(a, b, cost, gap)| {
                index += gap;
                Item {
                    score: f64::from_bits(base ^ (a << shifts.0) ^ (b << shifts.1)),
                    cost: f64::from(cost),
                    index,
                }
            })
            .collect();
        let total: f64 = items.iter().map(|i| i.cost).sum();
        let remaining = (total * fraction).floor();
        let mut sorted = items.clone();
        sorted.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
        let mut left = remaining;
        let expect = sorted.iter().find(|i| {
            let misfit = i.cost > left;
            left -= i.cost;
            misfit
        });
        let got = first_rejected_in(&items, remaining);
        prop_assert_eq!(Some(got.index), expect.map(|i| i.index));
    }

    /// The bucketed path equals the sorted scan on large inputs: ties at the boundary, all-equal
    /// scores, near-equal scores within one bucket, zeros, costs spanning 2³⁴, and budgets equal
    /// to a prefix sum of the rank order (the next item must then be the first rejected). The
    /// collection window is only a hint: none, a wrong one, or the estimated one agree.
    #[test]
    fn bucketed_prefix_matches_sort_on_large_inputs(
        seed in any::<u64>(),
        extra in 0usize..8_000,
        values_mode in 0u8..5,
        costs_mode in 0u8..3,
        budget_mode in 0u8..3,
        pick in 0.0f64..=1.0,
        window in (0u32..0x8000, 0u32..64),
    ) {
        let n = crate::projection::BUCKETED_MIN + extra;
        let costs_mode = if values_mode == 2 { 2 } else { costs_mode };
        let (values, costs) = large_instance(seed, n, values_mode, costs_mode);
        let order = ranked(&values, &costs);
        let k = ((order.len() as f64) * pick) as usize;
        let prefix: f64 = order[..k].iter().map(|&i| costs[i]).sum();
        let capacity = match budget_mode {
            // Exactly the cost of the first k ranked entries.
            0 => prefix,
            // Just short of fitting entry k too.
            1 => prefix + order.get(k).map_or(1.0, |&i| costs[i] / 2.0),
            _ => costs.iter().sum::<f64>() * pick,
        };
        let mut expect = values.clone();
        let oe = project_prefix_sorted(&mut expect, &costs, capacity).unwrap();
        if budget_mode == 0 {
            prop_assert_eq!(oe.kept, k);
            prop_assert_eq!(oe.first_rejected, order.get(k).copied());
        }
        let mut got = values.clone();
        let og = project_weighted_l0(&mut got, &costs, capacity, GreedyVariant::Prefix).unwrap();
        prop_assert_eq!(&got, &expect);
        prop_assert_eq!(og, oe);
        let (lo, width) = window;
        for w in [None, Some((lo, (lo + width).min(0x7fff)))] {
            let mut got = values.clone();
            let og = crate::projection::prefix_bucketed_with(&mut got, &costs, capacity, w).unwrap();
            prop_assert_eq!(&got, &expect, "window {:?}", w);
            prop_assert_eq!(og, oe, "window {:?}", w);
        }
    }
}

#[test]
fn cache_tail_charges_the_smallest_entries() {
    let costs = WeightCosts {
        fixed: 0.0,
        kappa_in: 5.0,
        kappa_out: 9.0,
        cached: 2,
    };
    let mut out = Vec::new();
    // Squares 1, 9, 0, 9, 4: the two largest (indices 1 and 3) are cached, zeros count too.
    layer_costs(&[1.0, -3.0, 0.0, 3.0, 2.0], &costs, &mut out);
    assert_eq!(out, [9.0, 5.0, 9.0, 5.0, 9.0]);
    // Ties in w² go to the lower index.
    layer_costs(&[1.0, 1.0, 1.0], &costs, &mut out);
    assert_eq!(out, [5.0, 5.0, 9.0]);
    assert_eq!(layer_relaxed_energy(&costs, 3), 5.0 * 2.0 + 9.0);
}

#[test]
fn magnitude_projection_fits_the_budget_with_the_largest_top_k() {
    let costs = [
        WeightCosts {
            fixed: 1.0,
            kappa_in: 2.0,
            kappa_out: 3.0,
            cached: 1,
        },
        WeightCosts {
            fixed: 1.0,
            kappa_in: 1.0,
            kappa_out: 1.0,
            cached: 8,
        },
    ];
    let (mut a, mut b) = ([5.0f32, -4.0, 0.1], [3.0f32, 0.2]);
    // Order by |w|: a0 (2), a1 (3, tail), b0 (1), b1 (1), a2 (3). Budget 2 + 7 = 9.
    let out = project_layers_magnitude(&mut [&mut a, &mut b], &costs, 9.0, &[]).unwrap();
    assert_eq!((a, b), ([5.0, -4.0, 0.0], [3.0, 0.2]));
    assert_eq!(out.kept_per_layer, [2, 2]);
    assert_eq!(out.energy, 9.0);
}

#[test]
fn budget_schedule_descends_to_the_target() {
    // Invariant 22: non-increasing, never below the target, at the target at the end.
    for decay in [BudgetDecay::Linear, BudgetDecay::Exponential] {
        let (epochs, batches, interval) = (3, 25, 4);
        let mut s = BudgetSchedule::new(1000.0, 200.0, decay, epochs, batches, interval).unwrap();
        let mut last = s.current();
        let mut at_end = 0.0;
        for e in 0..epochs {
            for k in 0..batches {
                if projects_at(k, batches - 1, interval) {
                    let c = s.current();
                    assert!(c <= last && c >= 200.0, "{decay:?}: {c} after {last}");
                    last = c;
                    at_end = c;
                    s.after_projection(e + 1 == epochs, k, batches - 1);
                }
            }
        }
        assert_eq!(at_end, 200.0, "{decay:?}");
    }
}

proptest! {
    /// 1, 2: feasible, values preserved, support shrinks; also for the ½ variants. The
    /// outcome's figures are those of the projected vector.
    #[test]
    fn feasible_and_values_preserved((v, c, b) in instance(14)) {
        for variant in VARIANTS {
            let mut p = v.clone();
            let out = project_weighted_l0(&mut p, &c, b, variant).unwrap();
            prop_assert!(invariants::check_within_budget(&v, &p, &c, b).is_ok());
            let kept = || p.iter().zip(&c).filter(|(x, _)| **x != 0.0);
            prop_assert_eq!(out.consumed, kept().map(|(_, c)| c).sum::<f64>());
            prop_assert_eq!(out.kept, kept().count());
            prop_assert_eq!(out.kept_value, p.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>());
        }
    }

    /// The linear-time selection and the sorted scan keep the same entries, the greedy prefix.
    #[test]
    fn selection_matches_sort((v, c, b) in instance(200)) {
        let (mut a, mut s) = (v.clone(), v.clone());
        let oa = project_weighted_l0(&mut a, &c, b, GreedyVariant::Prefix).unwrap();
        let os = project_prefix_sorted(&mut s, &c, b).unwrap();
        prop_assert_eq!(&a, &s);
        prop_assert_eq!(oa, os);
        invariants::check_greedy_prefix(&v, &a, &c, b).unwrap();
    }

    /// 3: idempotent, every variant.
    #[test]
    fn idempotent((v, c, b) in instance(40)) {
        for variant in VARIANTS {
            invariants::check_idempotent(&v, &c, b, variant).unwrap();
        }
    }

    /// 4: monotone in the budget.
    #[test]
    fn monotone_in_budget((v, c, b) in instance(40), extra in 0u32..40) {
        invariants::check_monotone_in_budget(&v, &c, b, b + f64::from(extra)).unwrap();
    }

    /// 5: extremes.
    #[test]
    fn extremes((v, c, _b) in instance(30)) {
        let mut all = v.clone();
        project_weighted_l0(&mut all, &c, c.iter().sum(), GreedyVariant::Prefix).unwrap();
        prop_assert_eq!(&all, &v);
        let min = c.iter().cloned().fold(f64::INFINITY, f64::min);
        let mut none = v.clone();
        project_weighted_l0(&mut none, &c, min - 0.5, GreedyVariant::Prefix).unwrap();
        prop_assert!(none.iter().all(|x| *x == 0.0));
    }

    /// 6: uniform costs give top-⌊B/c⌋ by magnitude.
    #[test]
    fn uniform_costs_are_top_k((v, _c, b) in instance(40), unit in 1u32..5) {
        let unit = f64::from(unit);
        let mut p = v.clone();
        project_weighted_l0(&mut p, &vec![unit; v.len()], b, GreedyVariant::Prefix).unwrap();
        let mut t = v.clone();
        top_k_magnitude(&mut t, (b / unit).floor() as usize, "w").unwrap();
        prop_assert_eq!(p, t);
    }

    /// 7, 8, 9: the prefix is exact at the capacity it consumes and within the first rejected
    /// entry of the optimum; the ½ variants reach half the optimum; the fill dominates the prefix.
    #[test]
    fn optimality_bounds(i in strategies::exact_instance()) {
        for variant in VARIANTS {
            invariants::check_optimality_bound(&i.values, &i.costs, i.capacity, variant).unwrap();
        }
    }

    /// 10: scale and sign.
    #[test]
    fn scale_and_sign((v, c, b) in instance(40), flip in proptest::collection::vec(any::<bool>(), 40)) {
        let mut p = v.clone();
        project_weighted_l0(&mut p, &c, b, GreedyVariant::Prefix).unwrap();
        // Powers of two scale w² exactly, so scores keep their order and ties.
        let mut scaled: Vec<f32> = v.iter().map(|x| x * -4.0).collect();
        project_weighted_l0(&mut scaled, &c, b, GreedyVariant::Prefix).unwrap();
        let expect: Vec<f32> = p.iter().map(|x| x * -4.0).collect();
        prop_assert_eq!(scaled, expect);
        let mut signed: Vec<f32> = v.iter().zip(&flip).map(|(x, f)| if *f { -x } else { *x }).collect();
        project_weighted_l0(&mut signed, &c, b, GreedyVariant::Prefix).unwrap();
        for (s, q) in signed.iter().zip(&p) {
            prop_assert_eq!(*s != 0.0, *q != 0.0);
        }
    }

    /// 11: permutation equivariance on tie-free inputs (distinct scores).
    #[test]
    fn permutation_equivariant(seed in 0u64..1000, n in 2usize..30, b in 0u32..100) {
        let v: Vec<f32> = (0..n).map(|i| 0.5 + i as f32 * 0.37).collect();
        let c: Vec<f64> = (0..n).map(|i| 1.0 + (i % 7) as f64).collect();
        let mut perm: Vec<usize> = (0..n).collect();
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        for i in (1..n).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            perm.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut p = v.clone();
        project_weighted_l0(&mut p, &c, f64::from(b), GreedyVariant::Prefix).unwrap();
        let mut pv: Vec<f32> = perm.iter().map(|&i| v[i]).collect();
        let pc: Vec<f64> = perm.iter().map(|&i| c[i]).collect();
        project_weighted_l0(&mut pv, &pc, f64::from(b), GreedyVariant::Prefix).unwrap();
        for (j, &i) in perm.iter().enumerate() {
            prop_assert_eq!(pv[j], p[i]);
        }
    }

    /// 12: splitting into layers changes nothing when per-entry costs are the same.
    #[test]
    fn layer_grouping_invariant((v, c, b) in instance(40), cut in 0usize..40) {
        let cut = cut.min(v.len());
        let costs_of = |c: f64| WeightCosts { fixed: 0.0, kappa_in: c, kappa_out: c, cached: usize::MAX };
        // One layer per entry: every entry keeps its own cost.
        let mut parts: Vec<Vec<f32>> = v.iter().map(|x| vec![*x]).collect();
        let lc: Vec<WeightCosts> = c.iter().map(|x| costs_of(*x)).collect();
        let mut slices: Vec<&mut [f32]> = parts.iter_mut().map(|p| p.as_mut_slice()).collect();
        project_layers(&mut slices, &lc, b, GreedyVariant::Prefix, &[]).unwrap();
        let split: Vec<f32> = parts.into_iter().flatten().collect();
        let mut flat = v.clone();
        project_weighted_l0(&mut flat, &c, b, GreedyVariant::Prefix).unwrap();
        prop_assert_eq!(&split, &flat);
        // And two uniform-cost layers equal one layer of both.
        let (mut x, mut y) = (v[..cut].to_vec(), v[cut..].to_vec());
        project_layers(&mut [&mut x, &mut y], &[costs_of(3.0), costs_of(3.0)], b, GreedyVariant::Prefix, &[]).unwrap();
        let mut joined = v.clone();
        project_layers(&mut [&mut joined], &[costs_of(3.0)], b, GreedyVariant::Prefix, &[]).unwrap();
        x.extend(y);
        prop_assert_eq!(x, joined);
    }

    /// The cache tail keeps the knapsack an upper bound of the relaxed energy: whatever survives
    /// a network projection has relaxed energy ≤ the budget.
    #[test]
    fn network_projection_respects_relaxed_energy(
        (v, _c, _b) in instance(60),
        cached in 0usize..20,
        tail in 0u32..50,
        b in 0u32..3000,
    ) {
        let costs = [WeightCosts { fixed: 7.0, kappa_in: 10.0, kappa_out: 10.0 + f64::from(tail), cached }];
        let budget = 7.0 + f64::from(b);
        for magnitude in [false, true] {
            let mut w = v.clone();
            let out = if magnitude {
                project_layers_magnitude(&mut [&mut w], &costs, budget, &[]).unwrap()
            } else {
                project_layers(&mut [&mut w], &costs, budget, GreedyVariant::Prefix, &[]).unwrap()
            };
            let relaxed = relaxed_energy(&[&w], &costs);
            prop_assert!(relaxed <= budget);
            prop_assert!(relaxed <= out.energy);
        }
    }

    /// The layer-collapse guard keeps each layer's largest entries and still fits the budget.
    #[test]
    fn guarded_projection_keeps_each_layers_best(
        (v, _c, _b) in instance(40),
        cut in 1usize..39,
        k in 0usize..4,
        b in 0u32..2000,
    ) {
        let cut = cut.min(v.len());
        let costs = [
            WeightCosts { fixed: 5.0, kappa_in: 90.0, kappa_out: 95.0, cached: 3 },
            WeightCosts { fixed: 5.0, kappa_in: 7.0, kappa_out: 7.0, cached: 100 },
        ];
        let budget = 10.0 + f64::from(b);
        for magnitude in [false, true] {
            let (mut x, mut y) = (v[..cut].to_vec(), v[cut..].to_vec());
            let result = if magnitude {
                project_layers_magnitude(&mut [&mut x, &mut y], &costs, budget, &[k, k])
            } else {
                project_layers(&mut [&mut x, &mut y], &costs, budget, GreedyVariant::Prefix, &[k, k])
            };
            match result {
                Ok(out) => {
                    let relaxed = relaxed_energy(&[&x, &y], &costs);
                    prop_assert!(relaxed <= budget);
                    prop_assert!(relaxed <= out.energy);
                    for (orig, now) in [(&v[..cut], &x), (&v[cut..], &y)] {
                        let nz = orig.iter().filter(|a| **a != 0.0).count();
                        prop_assert!(now.iter().filter(|a| **a != 0.0).count() >= k.min(nz));
                        let mut t = orig.to_vec();
                        top_k_magnitude(&mut t, k, "t").unwrap();
                        for (a, b) in t.iter().zip(now.iter()) {
                            prop_assert!(*a == 0.0 || a == b);
                        }
                    }
                }
                Err(Error::BudgetInfeasible { floor, .. }) => prop_assert!(floor > budget),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }

    /// 20 (projection part): top-k keeps at most k entries, the largest ones.
    #[test]
    fn top_k_keeps_the_largest((v, _c, _b) in instance(50), k in 0usize..60) {
        let mut t = v.clone();
        let kept = top_k_magnitude(&mut t, k, "m").unwrap();
        prop_assert!(kept <= k);
        prop_assert_eq!(kept, t.iter().filter(|x| **x != 0.0).count());
        let min_kept = t.iter().filter(|x| **x != 0.0).map(|x| x.abs()).fold(f32::INFINITY, f32::min);
        for (a, b) in t.iter().zip(&v) {
            if *a == 0.0 && *b != 0.0 {
                prop_assert!(b.abs() <= min_kept);
            }
        }
    }
}

mod checkers;
mod trainer;
