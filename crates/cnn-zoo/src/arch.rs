//! [`Arch`], the typed name of every model in the zoo, and [`build`], which constructs one.

use serde::{Deserialize, Serialize};
use tensor_core::{Error, Network, OpsBackend, Result, VarBuilder};

use crate::alexnet::{alexnet_caffe_on, alexnet_on};
use crate::googlenet::googlenet_on;
use crate::lenet5::{lenet5_caffe_on, lenet5_on};
use crate::mobilenet_v2::mobilenet_v2_on;
use crate::resnet::resnet_on;
use crate::squeezenet::squeezenet1_0_on;

/// Every architecture of the zoo. The serde, [`FromStr`](std::str::FromStr) and
/// [`Display`](std::fmt::Display) forms are the names in [`Arch::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Arch {
    /// The ICLR'19 reference LeNet-5 on 1×32×32 (`lenet5`).
    #[serde(rename = "lenet5")]
    Lenet5,
    /// Caffe's 20-50-500-10 LeNet on 1×28×28 (`lenet5-caffe`).
    #[serde(rename = "lenet5-caffe")]
    Lenet5Caffe,
    /// CIFAR ResNet-8 (`resnet8`, n = 1).
    #[serde(rename = "resnet8")]
    Resnet8,
    /// CIFAR ResNet-14 (`resnet14`, n = 2).
    #[serde(rename = "resnet14")]
    Resnet14,
    /// CIFAR ResNet-20 (`resnet20`, n = 3).
    #[serde(rename = "resnet20")]
    Resnet20,
    /// CIFAR ResNet-32 (`resnet32`, n = 5).
    #[serde(rename = "resnet32")]
    Resnet32,
    /// CIFAR ResNet-44 (`resnet44`, n = 7).
    #[serde(rename = "resnet44")]
    Resnet44,
    /// CIFAR ResNet-56 (`resnet56`, n = 9).
    #[serde(rename = "resnet56")]
    Resnet56,
    /// CIFAR ResNet-74 (`resnet74`, n = 12).
    #[serde(rename = "resnet74")]
    Resnet74,
    /// CIFAR ResNet-110 (`resnet110`, n = 18).
    #[serde(rename = "resnet110")]
    Resnet110,
    /// torchvision's AlexNet on 3×224×224 (`alexnet`).
    #[serde(rename = "alexnet")]
    Alexnet,
    /// The original grouped AlexNet on 3×227×227 (`alexnet-caffe`).
    #[serde(rename = "alexnet-caffe")]
    AlexnetCaffe,
    /// SqueezeNet 1.0 on 3×227×227 (`squeezenet1_0`).
    #[serde(rename = "squeezenet1_0")]
    Squeezenet1_0,
    /// GoogLeNet v1 on 3×224×224 (`googlenet`).
    #[serde(rename = "googlenet")]
    Googlenet,
    /// MobileNetV2, width 1.0, on 3×224×224 (`mobilenet_v2`).
    #[serde(rename = "mobilenet_v2")]
    MobilenetV2,
}

impl Arch {
    /// Every architecture, in declaration order.
    pub const ALL: [Arch; 15] = [
        Arch::Lenet5,
        Arch::Lenet5Caffe,
        Arch::Resnet8,
        Arch::Resnet14,
        Arch::Resnet20,
        Arch::Resnet32,
        Arch::Resnet44,
        Arch::Resnet56,
        Arch::Resnet74,
        Arch::Resnet110,
        Arch::Alexnet,
        Arch::AlexnetCaffe,
        Arch::Squeezenet1_0,
        Arch::Googlenet,
        Arch::MobilenetV2,
    ];

    /// The name used by serde, `FromStr`, `Display` and [`Network::arch`].
    pub fn name(self) -> &'static str {
        match self {
            Arch::Lenet5 => "lenet5",
            Arch::Lenet5Caffe => "lenet5-caffe",
            Arch::Resnet8 => "resnet8",
            Arch::Resnet14 => "resnet14",
            Arch::Resnet20 => "resnet20",
            Arch::Resnet32 => "resnet32",
            Arch::Resnet44 => "resnet44",
            Arch::Resnet56 => "resnet56",
            Arch::Resnet74 => "resnet74",
            Arch::Resnet110 => "resnet110",
            Arch::Alexnet => "alexnet",
            Arch::AlexnetCaffe => "alexnet-caffe",
            Arch::Squeezenet1_0 => "squeezenet1_0",
            Arch::Googlenet => "googlenet",
            Arch::MobilenetV2 => "mobilenet_v2",
        }
    }

    /// The depth of a CIFAR ResNet, `None` for the other architectures.
    pub fn resnet_depth(self) -> Option<usize> {
        match self {
            Arch::Resnet8 => Some(8),
            Arch::Resnet14 => Some(14),
            Arch::Resnet20 => Some(20),
            Arch::Resnet32 => Some(32),
            Arch::Resnet44 => Some(44),
            Arch::Resnet56 => Some(56),
            Arch::Resnet74 => Some(74),
            Arch::Resnet110 => Some(110),
            _ => None,
        }
    }

    /// The input `[c, h, w]` of one sample with the channel count of the reference dataset
    /// (1 for the LeNets, 3 otherwise). [`build`] may change `c`, never `h` and `w`.
    pub fn input_shape(self) -> [usize; 3] {
        match self {
            Arch::Lenet5 => [1, 32, 32],
            Arch::Lenet5Caffe => [1, 28, 28],
            Arch::Alexnet | Arch::Googlenet | Arch::MobilenetV2 => [3, 224, 224],
            Arch::AlexnetCaffe | Arch::Squeezenet1_0 => [3, 227, 227],
            _ => [3, 32, 32],
        }
    }

    /// Whether training uses dropout. Dropout masks come from the device generator, which candle
    /// cannot seed on the CPU, so training such a model is not bit-reproducible from a seed.
    pub fn uses_dropout(self) -> bool {
        matches!(
            self,
            Arch::Alexnet
                | Arch::AlexnetCaffe
                | Arch::Squeezenet1_0
                | Arch::Googlenet
                | Arch::MobilenetV2
        )
    }

    /// Output classes of the reference dataset: 10 (MNIST, CIFAR-10) or 1000 (ImageNet).
    pub fn default_classes(self) -> usize {
        match self {
            Arch::Alexnet
            | Arch::AlexnetCaffe
            | Arch::Squeezenet1_0
            | Arch::Googlenet
            | Arch::MobilenetV2 => 1000,
            _ => 10,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| Error::Parse {
                what: "architecture",
                input: s.to_string(),
                expected: "one of lenet5, lenet5-caffe, resnet{8,14,20,32,44,56,74,110}, \
                           alexnet, alexnet-caffe, squeezenet1_0, googlenet, mobilenet_v2",
            })
    }
}

/// Builds `arch` with `num_classes` outputs for `in_channels`×h×w inputs (h and w from
/// [`Arch::input_shape`]), its parameters taken from or created in `vb` under the reference
/// model's `state_dict` names. Its layers run on [`OpsBackend::Fast`] (see [`build_with`]).
pub fn build(
    arch: Arch,
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
) -> Result<Box<dyn Network>> {
    build_with(arch, num_classes, in_channels, vb, OpsBackend::Fast)
}

/// [`build`] with the layer ops (conv, batch norm, ReLU, max-pool) on `backend`: the fast CPU
/// kernels of `tensor_core::ops` or candle's stock ops. Either way CUDA tensors run candle's ops.
pub fn build_with(
    arch: Arch,
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
    backend: OpsBackend,
) -> Result<Box<dyn Network>> {
    let b = backend;
    Ok(match arch {
        Arch::Lenet5 => Box::new(lenet5_on(num_classes, in_channels, vb, b)?),
        Arch::Lenet5Caffe => Box::new(lenet5_caffe_on(num_classes, in_channels, vb, b)?),
        Arch::Resnet8
        | Arch::Resnet14
        | Arch::Resnet20
        | Arch::Resnet32
        | Arch::Resnet44
        | Arch::Resnet56
        | Arch::Resnet74
        | Arch::Resnet110 => {
            let Some(depth) = arch.resnet_depth() else {
                return Err(Error::Unsupported {
                    what: format!("{arch} without a resnet depth"),
                });
            };
            Box::new(resnet_on(depth, num_classes, in_channels, vb, b)?)
        }
        Arch::Alexnet => Box::new(alexnet_on(num_classes, in_channels, vb, b)?),
        Arch::AlexnetCaffe => Box::new(alexnet_caffe_on(num_classes, in_channels, vb, b)?),
        Arch::Squeezenet1_0 => Box::new(squeezenet1_0_on(num_classes, in_channels, vb, b)?),
        Arch::Googlenet => Box::new(googlenet_on(num_classes, in_channels, vb, b)?),
        Arch::MobilenetV2 => Box::new(mobilenet_v2_on(num_classes, in_channels, vb, b)?),
    })
}
