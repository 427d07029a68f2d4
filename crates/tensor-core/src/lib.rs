//! The shared vocabulary of the energy-aware deep learning workspace.
//!
//! Every crate of the workspace speaks in these types and nothing else ties them together:
//!
//! - [`tensor`]: the tensor backend (candle) re-exported, so only this crate names its version;
//! - [`LayerGeometry`], [`LayerKind`], [`LayerId`]: what a conv or FC layer looks like;
//! - [`Density`], [`Support`], [`LayerSparsity`], [`Precision`]: what is nonzero and how wide;
//! - [`EnergyModel`] and its reports ([`LayerEnergy`], [`NetworkEnergy`], [`WeightCosts`],
//!   [`TrainingEnergy`]): how layers are priced;
//! - [`WorkLedger`]: what a training run executed, for pricing training energy;
//! - [`Network`], [`LayerInfo`], [`Taps`]: the model interface compression methods work through;
//! - [`Mask`], [`Observer`], [`DeviceSpec`], [`MomentumSgd`], [`SeededInit`] and [`Error`].
//!
//! It holds no algorithms, no IO, no training loops and no logging.
//!
//! ```
//! use tensor_core::{LayerGeometry, LayerKind};
//!
//! // LeNet-5's first conv on a 32x32 image: 6 filters of 5x5.
//! let conv1 = LayerGeometry::conv(1, 32, 32, 6, (5, 5), (1, 1), (0, 0), 1)?;
//! assert_eq!((conv1.out_h(), conv1.out_w()), (28, 28));
//! assert_eq!(conv1.weights(), 150);
//! assert_eq!(conv1.macs(), 150 * 784);
//!
//! // An FC layer keeps its producer's c x h x w.
//! let fc6 = LayerGeometry::fc(256, 6, 6, 4096)?;
//! assert_eq!(fc6.kind, LayerKind::Fc);
//! assert_eq!(fc6.weights(), 37_748_736);
//! # Ok::<(), tensor_core::Error>(())
//! ```
//!
//! Other crates in this workspace: `energy-model` (prices layers and training work),
//! `sparse-proj` (energy-constrained projection, ICLR'19), `e2-train` (energy-efficient training,
//! NeurIPS'19), `energy-prune` (energy-aware pruning, CVPR'17), `cnn-zoo` (the models),
//! `datasets` (parsers and embedded data).
#![warn(missing_docs)]

pub mod device;
pub mod energy;
pub mod error;
pub mod geometry;
pub mod ledger;
pub mod mask;
pub mod network;
pub mod observe;
pub mod ops;
pub mod optim;
#[cfg(feature = "proptest-support")]
pub mod proptest;
pub mod seed;
pub mod sparsity;
pub mod tensor;
#[cfg(feature = "testing")]
pub mod testing;

pub use device::DeviceSpec;
pub use energy::{
    EnergyModel, EnergyUnit, LayerEnergy, LayerWorkload, Level, NetworkEnergy, Operand,
    TrainingEnergy, WeightCosts,
};
pub use error::{Error, Result};
pub use geometry::{LayerGeometry, LayerId, LayerKind};
pub use ledger::{Gemm, Iteration, LayerWork, WorkLedger};
pub use mask::Mask;
pub use network::{LayerConfig, LayerInfo, Network, NoTaps, ShapeProbe, Taps};
pub use observe::{
    BatchStats, EvalStats, Event, NoopObserver, Observer, ProjectionStats, RecordingObserver,
    RunStart,
};
pub use ops::OpsBackend;
pub use optim::{MomentumSgd, SgdConfig};
pub use seed::{Rng, SeededInit, rng, seed_device};
pub use sparsity::{Bitmap, Density, LayerSparsity, Precision, Support};
pub use tensor::{DType, Device, GradStore, Module, ModuleT, Tensor, Var, VarBuilder, VarMap};

#[cfg(test)]
mod tests;
