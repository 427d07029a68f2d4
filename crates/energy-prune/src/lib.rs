//! Energy-aware pruning (Yang, Chen, Sze, "Designing Energy-Efficient Convolutional Neural
//! Networks using Energy-Aware Pruning", CVPR 2017, arXiv 1611.05128).
//!
//! Layers are pruned one at a time, the one with the highest modelled energy first; each layer's
//! weights are removed by magnitude, some are restored where they matter jointly, and the
//! survivors are refitted in closed form so the layer's output feature maps match the original
//! network's; a global fine-tuning with frozen masks ends the run.
//!
//! - [`restore`]: pure f64 least squares on plain matrices ([`Matrix`], [`LeastSquares`]): the
//!   ridge fit on a support (Cholesky with a Householder-QR fallback, [`Singular`] systems
//!   reported) and the greedy restoration;
//! - [`schedule`]: the energy order ([`next_layer`]) and the accuracy-budget split
//!   ([`BudgetSplit`]);
//! - [`prune_energy_aware`]: the whole procedure on a [`tensor_core::Network`], its layers priced
//!   by a [`tensor_core::EnergyModel`] (layer pricing is all it needs), fed by
//!   [`tensor_core::BatchSource`]s and judged by [`tensor_core::evaluate`] in evaluation mode;
//!   [`prune_magnitude`]: the magnitude baseline at [`MagnitudeTarget`] densities
//!   ([`tensor_core::Density`]) with the same fine-tuning; both return a [`PruneOutcome`] with
//!   per-layer masks, energies, accuracies and the processing order. The fine-tuning stops with
//!   tensor-core's [`Error::Diverged`](tensor_core::Error::Diverged) or
//!   [`Error::Interrupted`](tensor_core::Error::Interrupted) at a `fine-tuning`
//!   [`Step`](tensor_core::Step), carried in [`Error::Core`];
//! - [`prune_to_energy`]: the same procedure driven to an energy level ([`EnergyTarget`]: a
//!   [`tensor_core::RelativeBudget`] under a second, measuring model) by a bisection on the
//!   accuracy budget δ ([`DropSearch`]) with one fine-tuning at the end; levels under the
//!   measuring model's [`weight_floor`] and levels the largest δ misses are typed errors
//!   ([`Error::TargetBelowFloor`], [`Error::TargetUnreached`]); returns a [`TargetedOutcome`]
//!   wrapping the [`PruneOutcome`] with every [`SearchStep`];
//! - [`EnergyPruneConfig`]: every parameter, validated once, with the named preset
//!   [`EnergyPruneConfig::reconstruction_lenet5_mnist`].
//!
//! ```
//! use energy_prune::restore::{Matrix, SolveOptions, fit_support};
//! // y = 2·x0 − x2 + 0.5 on four samples; column 1 is pruned.
//! let x = Matrix::new(4, 3, vec![
//!     1.0, 5.0, 0.0,
//!     0.0, 1.0, 1.0,
//!     2.0, 0.0, 1.0,
//!     1.0, 2.0, 3.0,
//! ])?;
//! let y = [2.5, -0.5, 3.5, -0.5];
//! let opts = SolveOptions { lambda: 0.0, max_condition: 1e10 };
//! let fit = fit_support(&x, &y, &[true, false, true], true, opts)?.expect("well posed");
//! assert_eq!(fit.weights[1], 0.0);
//! assert!((fit.weights[0] - 2.0).abs() < 1e-9 && (fit.weights[2] + 1.0).abs() < 1e-9);
//! assert!((fit.bias - 0.5).abs() < 1e-9 && fit.sq_error < 1e-18);
//!
//! // The magnitude baseline's densities are checked when they are made, not when a run starts.
//! use energy_prune::MagnitudeTarget;
//! use tensor_core::Density;
//! let half = MagnitudeTarget::Global(Density::new(0.5)?);
//! assert_eq!(half, MagnitudeTarget::Global(Density::try_from(0.5)?));
//! assert!(Density::new(1.5).is_err());
//! # Ok::<(), energy_prune::Error>(())
//! ```
//!
//! # Reconstruction choices
//!
//! The paper publishes the outline only (`docs/energy-aware-pruning.md` §1); each of the
//! following is a choice of this implementation, exposed in [`EnergyPruneConfig`] or documented
//! where it is made, and none of its outcomes is the paper's:
//!
//! - targets from the original weights, inputs from the current partly pruned network;
//! - conv data: `positions_per_image` random output positions per calibration image (im2col rows
//!   per group, stride, padding and groups respected); FC data: one row per image;
//! - removal by magnitude within the layer, ρ searched by steps or bisection
//!   ([`RatioSearch`]);
//! - restoration: greedy by the one-coordinate residual correlation, each admission refitted
//!   jointly, stopping at a threshold relative to `‖y‖²` or a fraction of the removed weights
//!   ([`RestoreConfig`]);
//! - local fit: ridge λ per equation on the weights, bias refitted unregularised
//!   (`ridge_lambda`, `fit_bias`), condition limit `max_condition`;
//! - accuracy budget split [`BudgetSplit`] (default of the preset: cumulative);
//! - energy order recomputed after every layer, with measured or dense input densities
//!   ([`ActivationDensity`]);
//! - global fine-tuning: momentum SGD with the masks re-applied after every step
//!   ([`FineTuneConfig`]); the procedure does not iterate.
//!
//! Other crates in this workspace: `tensor-core` (the shared vocabulary: `Network`,
//! `EnergyModel`, `BatchSource`, `evaluate`, `Density`, `Mask`, `Observer`), `energy-model` (the Eyeriss row-stationary model that
//! prices the layers), `cnn-zoo` (the networks), `sparse-proj` (energy-constrained projection,
//! ICLR'19), `e2-train` (energy-efficient training, NeurIPS'19), `datasets`.

#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod prune;
pub mod restore;
pub mod schedule;

pub use config::{
    ActivationDensity, DropSearch, EnergyPruneConfig, FineTuneConfig, RatioSearch, RestoreConfig,
};
pub use error::{Error, Result};
pub use prune::{
    EnergyTarget, LayerOutcome, MagnitudeTarget, Method, ProcessedLayer, PruneOutcome, PruneRun,
    RatioTrial, SearchStep, TargetLayerEnergy, TargetedOutcome, fine_tune, layer_energies,
    prune_energy_aware, prune_magnitude, prune_to_energy, weight_floor,
};
pub use restore::{
    Fit, LeastSquares, Matrix, RestoreRule, Singular, SolveOptions, Solver, fit_support,
};
pub use schedule::{BudgetSplit, energy_order, next_layer};

#[cfg(test)]
mod tests;

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
