//! The project's experiments as a library: what `cargo xtask` runs, without the terminal.
//!
//! This crate is the composition layer of the workspace: it joins the domain crates (cnn-zoo's
//! models, datasets' data, energy-model's pricing, sparse-proj, e2-train and energy-prune)
//! into the runs that reproduce the papers, and turns their records into the tables and plots
//! under `results/`. The xtask binary parses flags, draws progress and talks to the network;
//! everything else lives here.
//!
//! - The baseline trainer with checkpoints and exact resume ([`train`], [`checkpoint`]),
//!   speaking tensor-core's training vocabulary ([`tensor_core::LrSchedule`],
//!   [`tensor_core::evaluate`] over a [`tensor_core::BatchSource`], the
//!   [`tensor_core::Error::Interrupted`] / [`tensor_core::Error::Diverged`] contract); the data
//!   glue ([`data`]) and the dense-model cache ([`dense`]).
//! - The experiment registry ([`registry`]): each experiment expands to typed run specs per
//!   profile. One module per experiment owns its spec, its run, its typed metrics and its table
//!   section: [`zoo_geometry`], [`energy_validation`], [`baseline`], [`iclr19`], [`e2train`],
//!   [`eap`], [`eap_estimates`]. Adding an experiment touches its module and the registry.
//! - The run loop ([`runner`]): parallel jobs, resume, atomic writes of typed, versioned
//!   records ([`record`]).
//! - The renderers ([`render`]): Markdown and CSV tables, one number formatter, plotters' SVG;
//!   [`tables`] regenerates `results/` and the README section, [`compare`] checks a rerun's
//!   records against the committed ones; [`energy`] is the `energy` command.
//!
//! The library never prints: a run loop reports through a [`Reporter`] (lines, and an
//! [`tensor_core::Observer`] per run), which xtask implements with progress bars.
//!
//! Errors: like the xtask binary, this crate composes others and is not a reusable domain
//! library, so it returns [`anyhow::Error`] with context naming the file, run or step at every
//! boundary. Where callers branch on a cause, the cause stays typed at the root of the chain: a
//! stopped or diverged training run carries the [`tensor_core::Error`] variant
//! (`err.downcast_ref::<tensor_core::Error>()`).

pub mod baseline;
pub mod checkpoint;
pub mod compare;
pub mod data;
pub mod dense;
pub mod deviation;
pub mod e2train;
pub mod eap;
pub mod eap_estimates;
pub mod energy;
pub mod energy_validation;
pub mod iclr19;
pub mod imagenet;
pub mod lock;
pub mod pareto;
pub mod paths;
pub mod pricing;
pub mod record;
pub mod registry;
pub mod render;
pub mod reporter;
pub mod runner;
pub mod tables;
pub mod train;
pub mod verdict;
pub mod zoo_geometry;

pub use record::RunRecord;
pub use registry::{Experiment, Profile, RunContext, RunKind, RunSpec};
pub use reporter::{Reporter, Silent};
