//! Energy-efficient training of CNNs: stochastic mini-batch dropping, selective layer update and
//! predictive sign gradients, after Wang, Jiang, Chen, Xu, Zhao, Lin and Wang, "E2-Train:
//! Training State-of-the-art CNNs with Over 80% Energy Savings", NeurIPS 2019
//! (arXiv 1910.13349), and its reference code (GATECH-EIC/E2Train).
//!
//! - [`minibatch_drop`] (SMD): [`MinibatchDrop`] skips each iteration with probability `p` from
//!   a seeded generator; the learning rate is the workspace's [`tensor_core::LrSchedule`] on the
//!   global iteration index, [`paper_smd_schedule`] the paper's stretched one.
//! - [`selective_update`] (SLU): the shared [`RecurrentGate`], the straight-through hard gate,
//!   the executed percentage and compute regulariser; the stochastic-depth baseline.
//! - [`sign_gradient`] (PSG) and [`quantize`]: 8-bit fake quantisation, MSB extraction and the
//!   custom ops [`psg_conv2d`] / [`psg_linear`] whose backward pass predicts the weight gradient's
//!   sign and leaves the input gradient exact.
//! - [`gated_resnet`](mod@gated_resnet): a CIFAR ResNet backbone of depth 6n + 2 (any
//!   [`tensor_core::ResidualNetwork`]) driven block by block, with gates and quantised, sign-
//!   predicting convs computed in place of the backbone's; a [`tensor_core::Network`] whose
//!   layers are the backbone's.
//! - [`trainer`]: [`train`] combines the enabled mechanisms over [`tensor_core::BatchSource`]s
//!   and records a [`tensor_core::WorkLedger`] (forward, input-gradient and weight-gradient MACs
//!   per layer with operand widths, executed fractions, predictor work and fallback fractions,
//!   dropped iterations). It speaks the workspace's training contract: an observer's `Break` is
//!   [`tensor_core::Error::Interrupted`], a NaN or infinite loss [`tensor_core::Error::Diverged`]
//!   (both wrapped in [`Error::Core`]), and [`evaluate`] is [`tensor_core::evaluate`] with the
//!   gated forward pass. Pricing is energy-model's job; [`baseline_ledger`] gives the
//!   standard-training ledger savings are measured against.
//!
//! The gated network wraps a backbone: any [`tensor_core::ResidualNetwork`] of the config's
//! depth, classes and input, such as cnn-zoo's CIFAR ResNet (`cnn_zoo::resnet_with` with
//! `ResnetInit::E2TrainReference` draws the reference initialisation):
//!
//! ```text
//! let backbone = cnn_zoo::resnet_with(8, 10, 3, vb.clone(), options)?;
//! let net = e2_train::gated_resnet(config, Box::new(backbone), vb)?;
//! ```
//!
//! Everything else needs no network:
//!
//! ```
//! use e2_train::{E2TrainConfig, MinibatchDrop, SmdConfig};
//!
//! // SMD: each iteration is dropped with probability p from the run's own stream.
//! let mut drops = MinibatchDrop::new(SmdConfig { p: 0.5 }, tensor_core::rng(1, "smd"))?;
//! let dropped = (0..1000).filter(|_| drops.next_dropped()).count();
//! assert!((400..600).contains(&dropped));
//!
//! // Iteration i of a run trains at `lr.at(sgd.lr, i, iterations)`: 0.1, ×0.1 at 100 and 150.
//! let run = E2TrainConfig::quick_cpu_resnet8().validate()?;
//! let lr = |i| run.lr.at(run.sgd.lr, i, run.iterations);
//! assert_eq!((lr(0), lr(99)), (0.1, 0.1));
//! assert!((lr(100) - 0.01).abs() < 1e-15 && (lr(150) - 0.001).abs() < 1e-15);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Decisions on the reference code's pitfalls (numbers refer to `docs/e2-train.md` §7):
//! 1. No default SLU target: presets take it as an argument (the reference's 100 saves nothing).
//! 2. The paper presets run 85,333 iterations so both learning-rate decays (42,666 and 64,000)
//!    fire; the baseline is priced on the same nominal schedule.
//! 3. A dropped iteration is a true skip: parameters and momentum untouched, the learning-rate
//!    index advances, the batch is still pulled.
//! 4. `L_g = blocks − 1` gates with uniform weights and per-depth costs (no hard-coded 35-entry
//!    vector, no 0.51 G constant).
//! 5. The regulariser is the reference's sum over samples with a bang-bang sign. Its strength β
//!    is a setting: the paper presets keep the reference's 1e-5; the CPU preset
//!    ([`E2TrainConfig::quick_cpu_resnet20`]) uses 1e-2, because at batch 16 and a few
//!    thousand iterations 1e-5 does not hold the executed share near its target.
//! 6. Evaluation uses deterministic gates (`π > 0.5`), every sample, and the training `cp`
//!    formula.
//! 7. The running activation scale for evaluation keeps the reference's reversed momentum
//!    (`0.1·running + 0.9·new`).
//! 8. Activation quantisers are signed for a block's first conv, its shortcut conv, the stem and
//!    the gate embeddings (their input may be a batch-norm output), unsigned for the second conv.
//! 9. Threshold absolute (default 5e-5) or relative, selection `|G_m| ≥ τ`. The paper presets
//!    keep the absolute 5e-5; the CPU preset uses the relative rule (it falls back on about 2% of
//!    the entries of a ResNet-20 on MNIST, where the absolute one falls back on 60–80% and PSG
//!    then costs more than the training it replaces).
//! 10. MSB codes keep the clamp to the top code (17 levels at 8/4 bits).
//! 11. Sign-updated weights have their own learning rate, `sign_lr_scale` times the others'
//!     (a separate optimiser over the PSG convs' weights). The paper presets keep the reference's
//!     shared rate (scale 1); the CPU preset uses 0.01, because a sign step of 0.1 per element
//!     upsets the gate embedding convs (no batch norm after them) within a short schedule.
//! 12. Evaluation runs on the global iteration index, independent of dropped iterations.
//! 13. Both presets train as the reference does: every gated block on every sample, masked
//!     (the straight-through gradient of a gate that is off needs the block's output).
//!     [`SkipExecution::Gather`] runs a block only on the samples whose gate is on, which is
//!     where wall-clock savings come from, but a gate that is off then hears only the
//!     regulariser: with SMD, PSG and a warm-up, gathered gates of a ResNet-20 on MNIST closed
//!     to a third of the blocks in training and at most an eighth at test (seeds 1 to 3, 600
//!     iterations of batch 32), where masked ones stayed near the target. The reproduction's
//!     SLU-alone row gathers, to measure the wall-clock saving. Evaluation always skips for
//!     real. The ledger prices what ran: a masked block as executed on every sample (its
//!     output for a closed gate is computed, then blended away), a gathered block on the
//!     samples whose gate is on. So only gathering saves energy. The gate after the last block,
//!     whose decision
//!     the reference discards, is not built.
//! 14. No gradient with respect to the images; devices are explicit.
//! 15. Class count comes from the caller's dataset through [`GatedResnetConfig::num_classes`].
//!
//! 16. Not in the reference: an optional gate warm-up ([`SluConfig::warmup`], global
//!     iterations). Gates trained from the first iteration learn to skip blocks that have not
//!     learned anything yet, and in a short schedule those blocks rarely recover. During the
//!     warm-up every block runs on every sample, the gates are not computed (so they neither
//!     train nor cost anything) and the regulariser is off; the ledger prices exactly that, so
//!     the warm-up's full cost counts against the saving. The paper presets keep 0; the CPU
//!     preset warms up for its first tenth.
//!
//! Also: the output gradient's quantisation (`grad_bits`) applies to the accurate weight
//! gradient only, so the input gradient passed on is the plain 8-bit op's for every setting.
//!
//! Other crates in this workspace: `tensor-core` (the shared vocabulary: `WorkLedger`, `Network`,
//! `MomentumSgd`, `BatchSource`, `LrSchedule`, `evaluate`), `energy-model` (prices the ledger), `cnn-zoo` (the plain ResNet whose geometry
//! the gated one matches), `sparse-proj`, `energy-prune`, `datasets`.
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod gated_resnet;
#[doc(alias = "SMD")]
pub mod minibatch_drop;
pub mod quantize;
#[doc(alias = "SLU")]
pub mod selective_update;
#[doc(alias = "PSG")]
pub mod sign_gradient;
pub mod trainer;

pub use config::E2TrainConfig;
pub use error::{Error, Result};
pub use gated_resnet::{
    ConvMode, ForwardOptions, GatedForward, GatedResnet, GatedResnetConfig, Gating, SkipExecution,
    gated_resnet,
};
pub use minibatch_drop::{MinibatchDrop, SmdConfig, paper_smd_schedule};
pub use quantize::{QuantGrid, TensorGrid};
pub use selective_update::{
    GateMode, RecurrentGate, SluConfig, StochasticDepthConfig, compute_regulariser,
    executed_percentage, regulariser_sign, straight_through_gate,
};
pub use sign_gradient::{
    PsgConfig, PsgOperands, Threshold, psg_conv2d, psg_linear, select_gradient,
};
pub use trainer::{
    Checkpoint, Checkpointing, E2TrainOutcome, EvalLog, IterationLog, TrainRun, TrainState,
    baseline_ledger, evaluate, executed_macs, train, train_resumable,
};

#[cfg(test)]
mod tests;

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
