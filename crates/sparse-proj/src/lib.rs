//! Energy-constrained compression by weighted sparse projection and layer input masking
//! (Yang, Zhu, Liu, "Energy-Constrained Compression for Deep Neural Networks via Weighted Sparse
//! Projection and Layer Input Masking", ICLR 2019).
//!
//! With input masks fixed, a network's relaxed modelled energy is linear in which weights are
//! nonzero, so "energy ≤ budget" is a weighted L0 ball and projecting onto it is a 0/1 knapsack
//! (value `w²`, cost `κ`). This crate holds:
//!
//! - [`project_weighted_l0`]: the greedy projection kernel over plain slices (prefix rule by
//!   default, two ½-approximate variants), in expected linear time;
//! - [`project_layers`]: the network-level projection with the cache-tail costs of
//!   [`layer_costs`], ranking all layers at once; [`project_layers_magnitude`], the magnitude
//!   pruning baseline at equal energy;
//! - [`InputMasks`]: trainable conv input masks applied through the network's taps;
//! - [`BudgetSchedule`]: the linear or exponential descent of the budget to the target;
//! - [`train_constrained`]: the W-phase / M-phase trainer whose result is guaranteed within the
//!   budget under the energy model that priced it;
//! - [`invariants`]: the projection's invariants as checkers for a user's own inputs, and, with
//!   the `proptest` feature, `strategies` that generate valid instances for property tests.
//!
//! Everything is spoken in tensor-core's vocabulary. The energy model arrives as
//! `&dyn WeightCostModel`: its per-weight costs drive the projection and its `EnergyModel`
//! supertrait prices the result. The trainer reads [`tensor_core::BatchSource`]s, evaluates with
//! [`tensor_core::evaluate`], takes its target as a [`tensor_core::RelativeBudget`] (the initial
//! mask density as a [`tensor_core::Density`]), and stops with tensor-core's
//! [`Diverged`](tensor_core::Error::Diverged), [`Interrupted`](tensor_core::Error::Interrupted)
//! and [`EmptyEvaluation`](tensor_core::Error::EmptyEvaluation) errors, wrapped in
//! [`Error::Core`]. The projection kernels keep absolute budgets in the model's unit.
//!
//! Deviations from the reference code (an off-by-one that drops one fitting weight, a crash when
//! nothing fits, a silent clamp of infeasible budgets) are listed in
//! `docs/sparse-projection.md` §4 and are not reproduced.
//!
//! ```
//! use sparse_proj::{project_layers, GreedyVariant};
//! use tensor_core::WeightCosts;
//! // Two layers; the first pays 2 per weight, the second 1; 5 units are fixed.
//! let costs = [
//!     WeightCosts { fixed: 3.0, kappa_in: 2.0, kappa_out: 2.0, cached: 16 },
//!     WeightCosts { fixed: 2.0, kappa_in: 1.0, kappa_out: 1.0, cached: 16 },
//! ];
//! let (mut a, mut b) = ([3.0f32, -1.0], [2.0f32, 0.5]);
//! let out = project_layers(&mut [&mut a, &mut b], &costs, 8.0, GreedyVariant::Prefix, &[])?;
//! assert_eq!((a, b), ([3.0, 0.0], [2.0, 0.0]));
//! assert_eq!(out.energy, 8.0);
//! # Ok::<(), sparse_proj::Error>(())
//! ```
//!
//! A trainer configuration states its ranges in its types; what they cannot say,
//! [`ConstrainedConfig::validate`] checks:
//!
//! ```
//! use sparse_proj::{ConstrainedConfig, MaskConfig};
//! use tensor_core::{Density, RelativeBudget};
//! let masked = ConstrainedConfig {
//!     relative_budget: RelativeBudget::new(0.3)?,
//!     masks: Some(MaskConfig { initial_density: Density::new(0.8)?, ..MaskConfig::default() }),
//!     ..ConstrainedConfig::default()
//! };
//! assert!(masked.clone().validate().is_ok());
//! // A budget of nothing is not a budget, and an empty first mask is refused.
//! assert!(RelativeBudget::new(0.0).is_err());
//! let empty = MaskConfig { initial_density: Density::EMPTY, ..MaskConfig::default() };
//! assert!(ConstrainedConfig { masks: Some(empty), ..masked }.validate().is_err());
//! # Ok::<(), sparse_proj::Error>(())
//! ```
//!
//! Other crates in this workspace: `tensor-core` (the shared vocabulary), `energy-model` (the
//! ICLR'19 model that supplies the costs), `cnn-zoo` (the networks), `energy-prune`, `e2-train`.

#![warn(missing_docs)]

pub mod config;
pub mod cost;
pub mod error;
pub mod input_mask;
pub mod invariants;
pub mod projection;
pub mod schedule;
#[cfg(any(test, feature = "proptest"))]
pub mod strategies;
pub mod trainer;

pub use config::{ConstrainedConfig, MaskConfig, Projection};
pub use cost::{
    NetworkProjection, floor_energy, layer_costs, layer_relaxed_energy, project_layers,
    project_layers_magnitude, relaxed_energy,
};
pub use error::{Error, Result};
pub use input_mask::InputMasks;
pub use projection::{
    GreedyVariant, ProjectionOutcome, project_prefix_sorted, project_weighted_l0, top_k_magnitude,
};
pub use schedule::{BudgetDecay, BudgetSchedule, projects_at};
pub use trainer::{
    ConstrainedOutcome, ConstrainedRun, EnergyPoint, EpochLog, Trained, reserved_counts,
    train_constrained, weight_costs,
};

#[cfg(test)]
mod tests;

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
