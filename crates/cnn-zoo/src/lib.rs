//! The CNN architectures of the energy-aware deep learning workspace.
//!
//! Each model is a free function taking a `VarBuilder` and returning a struct that implements
//! [`tensor_core::Network`]: [`lenet5`](fn@lenet5), [`lenet5_caffe`], [`resnet`](fn@resnet)
//! (CIFAR, depth 6n + 2), [`alexnet`](fn@alexnet), [`alexnet_caffe`], [`squeezenet1_0`],
//! [`googlenet`](fn@googlenet) and [`mobilenet_v2`](fn@mobilenet_v2). Each lives in a module of
//! the same name that cites its paper and documents names, layout and initialisation. [`Arch`]
//! names the models as typed data and [`build`] constructs any of them behind a
//! `Box<dyn Network>`; [`summary`] renders a per-layer table and [`Totals`] sums weights and MACs.
//! [`load_state_dict`] starts any model from a PyTorch `state_dict` (safetensors or `.pth`).
//!
//! Invariants every model keeps:
//!
//! - Parameter names are the reference PyTorch model's `state_dict` keys (`features.0.weight`,
//!   `layer1.0.bn1.running_mean`, ...), so weights compare one to one.
//! - Every conv and FC layer runs through one tapped helper: the pre-tap may replace its input,
//!   the post-tap sees the input actually used and the output before any activation. An FC
//!   layer fed by a feature map receives it unflattened (`[b, c, h, w]`).
//! - [`LayerInfo::geometry`](tensor_core::LayerInfo::geometry) is derived from a real batch-1
//!   forward pass at construction, never typed by hand; [`summary`] tabulates it and the tests
//!   snapshot it and check the totals of docs/energy-models.md B.10 exactly.
//! - With [`SeededInit`](tensor_core::SeededInit) the parameters depend only on the seed and
//!   their names. Dropout masks (AlexNet, SqueezeNet, GoogLeNet, MobileNetV2 in training) come
//!   from the device generator, which candle cannot seed on the CPU.
//!
//! ```
//! use cnn_zoo::{Arch, Totals, build};
//! use tensor_core::{DType, Device, Network, SeededInit, Tensor};
//!
//! let init = SeededInit::new(117);
//! let vb = init.var_builder(DType::F32, &Device::Cpu);
//! let net = build(Arch::Lenet5, 10, 1, vb)?;
//! assert_eq!(net.layers().len(), 5);
//! assert_eq!(net.layers()[0].name, "features.0");
//! assert_eq!(Totals::of(net.as_ref()).weights, 61_470);
//!
//! let xs = Tensor::zeros((4, 1, 32, 32), DType::F32, &Device::Cpu)?;
//! assert_eq!(net.forward_t(&xs, false)?.dims(), &[4, 10]);
//! # Ok::<(), tensor_core::Error>(())
//! ```
//!
//! Papers: LeCun et al. 1998 (LeNet-5), He et al. 2016 (ResNet), Krizhevsky et al. 2012
//! (AlexNet), Iandola et al. 2016 (SqueezeNet), Szegedy et al. 2015 (GoogLeNet), Sandler et al.
//! 2018 (MobileNetV2); each model module cites its own.
//!
//! Other crates in this workspace: `tensor-core` (the shared vocabulary this crate implements),
//! `energy-model` (prices the geometry), `sparse-proj` (energy-constrained projection, ICLR'19),
//! `e2-train` (energy-efficient training, NeurIPS'19), `energy-prune` (energy-aware pruning,
//! CVPR'17), `datasets` (parsers and embedded data).
#![warn(missing_docs)]

pub mod alexnet;
mod arch;
pub mod googlenet;
mod layer;
pub mod lenet5;
pub mod mobilenet_v2;
mod pool;
pub mod resnet;
pub mod squeezenet;
mod summary;
mod weights;

pub use alexnet::{Alexnet, AlexnetCaffe, alexnet, alexnet_caffe};
pub use arch::{Arch, build, build_with};
pub use googlenet::{Googlenet, googlenet};
pub use lenet5::{Lenet5, Lenet5Caffe, lenet5, lenet5_caffe};
pub use mobilenet_v2::{MobilenetV2, mobilenet_v2};
pub use resnet::{Resnet, ResnetInit, ResnetOptions, resnet, resnet_with};
pub use squeezenet::{Squeezenet, squeezenet1_0};
pub use summary::{Totals, summary};
pub use weights::load_state_dict;

#[cfg(test)]
mod tests;

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
