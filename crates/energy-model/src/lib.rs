//! Hardware energy models behind tensor-core's `EnergyModel` trait: the ICLR'19 systolic-array
//! model (Yang, Zhu, Liu, ICLR 2019), the Eyeriss row-stationary model (Chen, Emer, Sze, ISCA 2016;
//! Yang, Chen, Sze, CVPR 2017) and the pricing of training-work ledgers (Wang et al., NeurIPS 2019).
//!
//! Every model prices plain data from tensor-core (a [`LayerGeometry`](tensor_core::LayerGeometry),
//! a [`LayerSparsity`](tensor_core::LayerSparsity), a [`Precision`](tensor_core::Precision)) and
//! labels its results with its name and unit, so figures of different models never mix.
//!
//! - [`iclr19`]: [`Iclr19`](iclr19::Iclr19), the systolic-array model used as the energy
//!   constraint of ICLR'19 compression, in register-file-access units; exact and relaxed
//!   evaluators, input masks, the dense normaliser and floor, and the per-weight costs the
//!   projection needs ([`WeightCosts`](tensor_core::WeightCosts)). Its parts:
//!   [`hardware`] (the checked array parameters), [`overlap`] (input-cache row batching) and
//!   [`sparsity`] (exact counts over supports).
//! - [`eyeriss`]: [`Eyeriss`](eyeriss::Eyeriss), the row-stationary model of CVPR'17
//!   energy-aware pruning in 16-bit-MAC units, with the ISCA'16 and chip presets, a deterministic
//!   mapping search ([`eyeriss::mapping`], [`eyeriss::blocking`]), batch size, bit-widths and
//!   weight/activation sparsity; reproduces ISCA'16 Fig. 10.
//! - [`training`]: prices a [`WorkLedger`](tensor_core::WorkLedger) per GEMM class and operand
//!   widths; the default bit-product table is a labelled proxy, measured tables load from JSON.
//!   [`training::dataflow`] prices the same ledger with the Eyeriss model, data movement
//!   included: each training GEMM as the convolution it is, plus the weight-update traffic.
//! - [`mit_format`]: reads and writes the per-layer text format of the MIT estimation tool.
//! - `onnx` (feature `onnx`, on by default): reads an ONNX model's conv and FC layers, with
//!   the zeros of its weights, into the workloads the models price.
//! - [`report`]: a priced network joined with its geometry as plain data, naming model, preset,
//!   batch and unit (rendering is the caller's).
//! - [`reference`](mod@reference): the published numbers the models reproduce (A.7 goldens, Fig. 10 of ISCA'16,
//!   the B.10 network totals) and Han et al.'s AlexNet densities, for tests and experiments.
//!
//! Infeasible cases are [`Error`] variants, never clamps: an input cache that cannot hold a
//! kernel's rows, a budget below the floor, an unsupported bit-width or support. Through the
//! trait they arrive boxed in [`tensor_core::Error::Model`].
//!
//! ```
//! use energy_model::iclr19::Iclr19;
//! use tensor_core::{ConvParams, EnergyModel, LayerGeometry, LayerId, LayerWorkload};
//!
//! // LeNet-5 (docs/energy-models.md A.7): dense energy 17,107,544 RF accesses, floor 0.15227.
//! let geometry = [
//!     LayerGeometry::conv([1, 32, 32], 6, ConvParams::square(5))?,
//!     LayerGeometry::conv([6, 14, 14], 16, ConvParams::square(5))?,
//!     LayerGeometry::fc(16, 5, 5, 120)?,
//!     LayerGeometry::fc(120, 1, 1, 84)?,
//!     LayerGeometry::fc(84, 1, 1, 10)?,
//! ];
//! let layers: Vec<LayerWorkload> = geometry
//!     .iter()
//!     .enumerate()
//!     .map(|(i, g)| LayerWorkload::dense(LayerId(i), format!("layer{i}"), *g))
//!     .collect();
//! let model = Iclr19::paper();
//! let energy = model.network_energy(&layers)?;
//! assert_eq!(energy.total(), 17_107_544.0);
//! assert_eq!(energy.model, "iclr19/relaxed batch 1");
//! let norm = model.normalization(&geometry)?;
//! assert!((norm.floor() - 0.15227).abs() < 5e-6);
//! // A budget below the floor is an error, not a silent raise.
//! assert!(norm.absolute_budget(0.1).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Scope and formulas: `docs/energy-models.md`.
//!
//! Other crates in this workspace: `tensor-core` (the vocabulary and the `EnergyModel` trait),
//! `sparse-proj` (consumes the ICLR'19 per-weight costs), `energy-prune` (consumes the Eyeriss
//! model), `e2-train` (writes the ledgers priced here), `cnn-zoo` (the geometry), `datasets`.
#![warn(missing_docs)]

pub mod error;
pub mod eyeriss;
pub mod hardware;
pub mod iclr19;
pub mod mit_format;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod overlap;
pub mod reference;
pub mod report;
pub mod sparsity;
pub mod training;

pub use error::{Error, Result};

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
