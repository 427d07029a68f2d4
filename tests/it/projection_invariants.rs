//! The projection's invariants property-tested from outside the crate, through its public
//! checkers and strategies only, as a downstream user would (docs/sparse-projection.md §11); and
//! the same checkers on the per-weight costs the ICLR'19 model gives LeNet-5, a vector large
//! enough for the kernel's streaming path.

use cnn_zoo::Arch;
use energy_model::iclr19::Iclr19;
use proptest::prelude::*;
use sparse_proj::invariants::{
    check_all, check_greedy_prefix, check_idempotent, check_monotone_in_budget,
    check_optimality_bound, check_within_budget,
};
use sparse_proj::strategies::{exact_instance, instance};
use sparse_proj::{GreedyVariant, layer_costs, project_weighted_l0, weight_costs};
use tensor_core::testing::layer_weights;

use integration_tests::seeded_model;

const VARIANTS: [GreedyVariant; 3] = [
    GreedyVariant::Prefix,
    GreedyVariant::PrefixOrBestSingle,
    GreedyVariant::FillOrBestSingle,
];

proptest! {
    #[test]
    fn every_invariant_holds_on_generated_instances(i in instance(60), extra in 0u32..50) {
        let larger = i.capacity + f64::from(extra);
        prop_assert!(
            check_all(&i.values, &i.costs, i.capacity, larger).is_ok(),
            "{:?}",
            check_all(&i.values, &i.costs, i.capacity, larger)
        );
    }

    #[test]
    fn every_variant_meets_its_bound_against_the_exact_optimum(i in exact_instance()) {
        for variant in VARIANTS {
            let checked = check_optimality_bound(&i.values, &i.costs, i.capacity, variant);
            prop_assert!(checked.is_ok(), "{:?}: {:?}", variant, checked);
        }
    }
}

#[test]
fn lenet5_under_the_iclr19_costs_keeps_the_greedy_prefix() {
    let (net, _init) = seeded_model(Arch::Lenet5, 10, 1, 7).unwrap();
    let costs = weight_costs(&Iclr19::paper(), net.as_ref(), None).unwrap();
    let layers = layer_weights(net.as_ref());
    let (mut values, mut per_entry, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    for (w, c) in layers.iter().zip(&costs) {
        layer_costs(w, c, &mut scratch);
        values.extend_from_slice(w);
        per_entry.extend_from_slice(&scratch);
    }
    assert_eq!(values.len(), 61_470);
    let total: f64 = per_entry.iter().sum();
    for share in [0.9, 0.5, 0.2, 0.05] {
        let capacity = (total * share).floor();
        let mut after = values.clone();
        project_weighted_l0(&mut after, &per_entry, capacity, GreedyVariant::Prefix).unwrap();
        check_within_budget(&values, &after, &per_entry, capacity).unwrap();
        check_greedy_prefix(&values, &after, &per_entry, capacity).unwrap();
        check_idempotent(&values, &per_entry, capacity, GreedyVariant::Prefix).unwrap();
        check_monotone_in_budget(&values, &per_entry, capacity, (total * 0.95).floor()).unwrap();
    }
}
