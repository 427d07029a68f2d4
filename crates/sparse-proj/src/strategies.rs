//! Proptest strategies (feature `proptest`) that generate valid projection instances, for
//! property tests of [`crate::invariants`] on a user's side as on ours.
//!
//! Costs are small integers, as the ICLR'19 model's per-weight costs are integers, so every sum
//! is exact; values mix exact zeros (never kept), small integers (ties in score) and continuous
//! draws; capacities range from nothing to a little more than the total cost.
//!
//! ```
//! use proptest::prelude::*;
//! use sparse_proj::invariants::check_all;
//! use sparse_proj::strategies::instance;
//! proptest!(|(i in instance(30))| {
//!     prop_assert!(check_all(&i.values, &i.costs, i.capacity, i.capacity + 5.0).is_ok());
//! });
//! ```

use proptest::prelude::*;

use crate::invariants::EXACT_MAX;

/// One projection input: values, their costs and a capacity.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// The weights to project.
    pub values: Vec<f32>,
    /// One positive cost per weight.
    pub costs: Vec<f64>,
    /// The knapsack capacity, in the costs' unit.
    pub capacity: f64,
}

/// Instances of 1 to `max_len` entries (`max_len ≥ 1`).
pub fn instance(max_len: usize) -> impl Strategy<Value = Instance> {
    (1..=max_len.max(1)).prop_flat_map(|n| {
        (
            proptest::collection::vec(
                prop_oneof![Just(0.0f32), -4.0f32..4.0, (-3i8..=3).prop_map(f32::from)],
                n,
            ),
            proptest::collection::vec((1u32..20).prop_map(f64::from), n),
            0u32..=110,
        )
            .prop_map(|(values, costs, percent)| {
                // A whole number, so that capacities stay exact like the costs.
                let total: f64 = costs.iter().sum();
                let capacity = (total * f64::from(percent) / 100.0).floor();
                Instance {
                    values,
                    costs,
                    capacity,
                }
            })
    })
}

/// Instances small enough for [`crate::invariants::exact_optimum`] to search quickly (at most
/// 12 entries, well under [`EXACT_MAX`]).
pub fn exact_instance() -> impl Strategy<Value = Instance> {
    instance(12.min(EXACT_MAX))
}
