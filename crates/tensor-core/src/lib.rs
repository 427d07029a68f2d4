//! The shared vocabulary of the energy-aware deep learning workspace.
//!
//! Every crate of the workspace speaks in these types and nothing else ties them together:
//!
//! - [`LayerGeometry`], [`ConvParams`], [`LayerKind`], [`LayerId`]: what a conv or FC layer looks
//!   like;
//! - [`Density`], [`RelativeBudget`], [`Support`], [`LayerSparsity`], [`Precision`]: what is
//!   nonzero, how wide, and how much energy is allowed;
//! - the energy-model capabilities [`EnergyModel`] (prices layers), [`WeightCostModel`]
//!   (per-weight costs for the projection) and [`TrainingEnergyModel`] (prices training work),
//!   with their reports ([`LayerEnergy`], [`NetworkEnergy`], [`WeightCosts`],
//!   [`TrainingEnergy`]);
//! - [`WorkLedger`]: what a training run executed, for pricing training energy;
//! - the training vocabulary: [`LrSchedule`], [`Observer`] events, the [`Step`] that
//!   [`Error::Diverged`] and [`Error::Interrupted`] name, and with the `candle` feature
//!   [`BatchSource`] (served a batch ahead on a worker thread by [`prefetch::with_prefetch`])
//!   and the one [`evaluate`];
//! - with the `candle` feature (default): [`tensor`] (candle re-exported, so only this crate names
//!   its version), the [`Network`] trait with [`LayerInfo`] and [`Taps`], [`ResidualNetwork`]
//!   (stem, blocks and head driven one block at a time), [`Mask`],
//!   [`MomentumSgd`], [`SeededInit`], [`ops`] (the fast CPU layer ops).
//!
//! It holds no algorithms, no IO, no training loops and no logging. Without the `candle`
//! feature it builds with serde, thiserror and rand alone: enough to price a network.
//!
//! ```
//! use tensor_core::{ConvParams, LayerGeometry, LayerKind};
//!
//! // LeNet-5's first conv on a 32x32 image: 6 filters of 5x5.
//! let conv1 = LayerGeometry::conv([1, 32, 32], 6, ConvParams::square(5))?;
//! assert_eq!((conv1.out_h(), conv1.out_w()), (28, 28));
//! assert_eq!(conv1.weights(), 150);
//! assert_eq!(conv1.macs(), 150 * 784);
//!
//! // An FC layer keeps its producer's c x h x w.
//! let fc6 = LayerGeometry::fc(256, 6, 6, 4096)?;
//! assert_eq!(fc6.kind(), LayerKind::Fc);
//! assert_eq!(fc6.weights(), 37_748_736);
//! # Ok::<(), tensor_core::Error>(())
//! ```
//!
//! Other crates in this workspace: `cpu-kernels` (the slice kernels behind `ops` and
//! `MomentumSgd`),
//! `energy-model` (prices layers and training work), `sparse-proj` (energy-constrained
//! projection, ICLR'19), `e2-train` (energy-efficient training, NeurIPS'19), `energy-prune`
//! (energy-aware pruning, CVPR'17), `cnn-zoo` (the models), `datasets` (parsers and embedded
//! data).
#![warn(missing_docs)]

pub mod device;
pub mod energy;
pub mod error;
pub mod geometry;
pub mod ledger;
#[cfg(feature = "candle")]
pub mod mask;
#[cfg(feature = "candle")]
pub mod network;
pub mod observe;
#[cfg(feature = "candle")]
pub mod ops;
#[cfg(feature = "candle")]
pub mod optim;
#[cfg(feature = "candle")]
pub mod prefetch;
#[cfg(feature = "proptest")]
pub mod proptest;
pub mod schedule;
pub mod seed;
pub mod sgd;
pub mod sparsity;
#[cfg(feature = "candle")]
pub mod tensor;
#[cfg(any(feature = "testing", all(test, feature = "candle")))]
pub mod testing;
#[cfg(feature = "candle")]
pub mod train;

pub use device::{DeviceKind, DeviceSpec};
pub use energy::{
    EnergyModel, EnergyUnit, LayerEnergy, LayerWorkload, Level, NetworkEnergy, Operand,
    TrainingEnergy, TrainingEnergyModel, WeightCostModel, WeightCosts,
};
pub use error::{Error, Result, Step, finite_loss};
pub use geometry::{ConvParams, LayerGeometry, LayerId, LayerKind};
pub use ledger::{Gemm, Iteration, LayerWork, WorkLedger};
pub use observe::{
    BatchStats, EvalStats, Event, NoopObserver, Observer, ProjectionStats, RecordingObserver,
    RunStart,
};
pub use schedule::{LrDecay, LrSchedule, Warmup};
pub use seed::{Rng, rng};
pub use sgd::SgdConfig;
pub use sparsity::{Bitmap, Density, LayerSparsity, Precision, RelativeBudget, Support};

#[cfg(feature = "candle")]
pub use mask::Mask;
#[cfg(feature = "candle")]
pub use network::{LayerConfig, LayerInfo, Network, NoTaps, ResidualNetwork, ShapeProbe, Taps};
#[cfg(feature = "candle")]
pub use ops::OpsBackend;
#[cfg(feature = "candle")]
pub use optim::MomentumSgd;
#[cfg(feature = "candle")]
pub use seed::{SeededInit, seed_device};
#[cfg(feature = "candle")]
pub use tensor::{DType, Device, GradStore, Module, ModuleT, Tensor, Var, VarBuilder, VarMap};
#[cfg(feature = "candle")]
pub use train::{BatchSource, Evaluation, evaluate};

#[cfg(all(test, feature = "candle"))]
mod tests;

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
