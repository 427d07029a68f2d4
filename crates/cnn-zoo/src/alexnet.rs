//! AlexNet (Krizhevsky, Sutskever and Hinton, "ImageNet classification with deep convolutional
//! neural networks", NeurIPS 2012) in two layouts.
//!
//! - [`alexnet`]: torchvision's single-tower model-zoo form on 3×224×224 (the teacher and student
//!   of the ICLR'19 reference, docs/sparse-projection.md §8): conv 64-192-384-256-256 without groups,
//!   max-pool 3/2 after conv 1, 2 and 5, adaptive average pooling to 6×6 (the identity at 224),
//!   dropout 0.5 before FC 9216→4096, 4096→4096, then 4096→classes. Names are torchvision's
//!   `features.{0,3,6,8,10}` and `classifier.{1,4,6}`.
//! - [`alexnet_caffe`]: the original two-tower layout (Caffe's `bvlc_alexnet`) on 3×227×227, the
//!   network that Eyeriss (docs/energy-models.md B.10) and CVPR'17 energy-aware pruning price: conv1
//!   96×3×11×11 stride 4, conv2 256×48×5×5 in 2 groups, conv3 384×256×3×3, conv4 and conv5 in 2
//!   groups, max-pool 3/2 after conv 1, 2 and 5, FC 9216 (256×6×6) → 4096 → 4096 → classes with
//!   dropout 0.5 after fc6 and fc7: 60,954,656 weights and 724,406,816 MACs. Names are Caffe's
//!   `conv1`..`conv5`, `fc6`..`fc8`. **Local response normalisation is omitted**: it has no
//!   weights and no MACs, so geometry, weight counts and energy do not change, but accuracy
//!   after training may differ slightly from the original.
//!
//! Initialisation: PyTorch's defaults for `Conv2d` and `Linear` (torchvision's AlexNet keeps
//! them), i.e. weights and biases `U(−1/√fan_in, 1/√fan_in)`.

use tensor_core::ConvParams;
use tensor_core::{OpsBackend, Result, Taps, Tensor, VarBuilder};

use crate::layer::{BiasInit, Layer, LayerStack, Meta, WeightInit, impl_network};
use crate::pool::{adaptive_avg_pool2d, dropout, max_pool2d};

/// Dropout probability before (torchvision) or after (Caffe) the first two FC layers.
const DROPOUT: f32 = 0.5;

/// torchvision's AlexNet (built by [`alexnet`]).
#[derive(Clone, Debug)]
pub struct Alexnet {
    meta: Meta,
    convs: [Layer; 5],
    fcs: [Layer; 3],
}

/// Builds torchvision's AlexNet for `in_channels`×224×224 inputs and `num_classes` outputs.
pub fn alexnet(num_classes: usize, in_channels: usize, vb: VarBuilder) -> Result<Alexnet> {
    alexnet_on(num_classes, in_channels, vb, OpsBackend::Fast)
}

/// [`alexnet`](fn@alexnet) with its ops on `backend`.
pub(crate) fn alexnet_on(
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
    backend: OpsBackend,
) -> Result<Alexnet> {
    let mut stack = LayerStack::new(backend);
    let (w, b) = (WeightInit::Torch, BiasInit::Torch);
    let f = vb.pp("features");
    let convs = [
        stack.conv(
            f.pp("0"),
            (in_channels, 64),
            ConvParams::square(11).stride(4).padding(2),
            w,
            b,
        )?,
        stack.conv(f.pp("3"), (64, 192), ConvParams::square(5).padding(2), w, b)?,
        stack.conv(
            f.pp("6"),
            (192, 384),
            ConvParams::square(3).padding(1),
            w,
            b,
        )?,
        stack.conv(
            f.pp("8"),
            (384, 256),
            ConvParams::square(3).padding(1),
            w,
            b,
        )?,
        stack.conv(
            f.pp("10"),
            (256, 256),
            ConvParams::square(3).padding(1),
            w,
            b,
        )?,
    ];
    let c = vb.pp("classifier");
    let fcs = [
        stack.fc(c.pp("1"), 256 * 6 * 6, 4096, w, b)?,
        stack.fc(c.pp("4"), 4096, 4096, w, b)?,
        stack.fc(c.pp("6"), 4096, num_classes, w, b)?,
    ];
    let mut net = Alexnet {
        meta: Meta::new("alexnet", [in_channels, 224, 224], num_classes),
        convs,
        fcs,
    };
    net.meta.layers = stack.finish(&net, &vb)?;
    Ok(net)
}

impl Alexnet {
    fn body(&self, xs: &Tensor, train: bool, taps: &mut dyn Taps) -> Result<Tensor> {
        let [c1, c2, c3, c4, c5] = &self.convs;
        let [f1, f2, f3] = &self.fcs;
        let xs = c1.forward(xs, taps)?.relu()?;
        let xs = max_pool2d(&xs, 3, 2, 0, false)?;
        let xs = c2.forward(&xs, taps)?.relu()?;
        let xs = max_pool2d(&xs, 3, 2, 0, false)?;
        let xs = c3.forward(&xs, taps)?.relu()?;
        let xs = c4.forward(&xs, taps)?.relu()?;
        let xs = c5.forward(&xs, taps)?.relu()?;
        let xs = max_pool2d(&xs, 3, 2, 0, false)?;
        let xs = adaptive_avg_pool2d(&xs, 6, 6)?;
        let xs = dropout(&xs, DROPOUT, train)?;
        let xs = f1.forward(&xs, taps)?.relu()?;
        let xs = dropout(&xs, DROPOUT, train)?;
        let xs = f2.forward(&xs, taps)?.relu()?;
        f3.forward(&xs, taps)
    }
}

impl_network!(Alexnet);

/// The original grouped (two-tower) AlexNet (built by [`alexnet_caffe`]).
#[derive(Clone, Debug)]
pub struct AlexnetCaffe {
    meta: Meta,
    convs: [Layer; 5],
    fcs: [Layer; 3],
}

/// Builds the original grouped AlexNet for `in_channels`×227×227 inputs and `num_classes`
/// outputs (LRN omitted, see the module docs).
pub fn alexnet_caffe(
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
) -> Result<AlexnetCaffe> {
    alexnet_caffe_on(num_classes, in_channels, vb, OpsBackend::Fast)
}

/// [`alexnet_caffe`](fn@alexnet_caffe) with its ops on `backend`.
pub(crate) fn alexnet_caffe_on(
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
    backend: OpsBackend,
) -> Result<AlexnetCaffe> {
    let mut stack = LayerStack::new(backend);
    let (w, b) = (WeightInit::Torch, BiasInit::Torch);
    let convs = [
        stack.conv(
            vb.pp("conv1"),
            (in_channels, 96),
            ConvParams::square(11).stride(4),
            w,
            b,
        )?,
        stack.conv(
            vb.pp("conv2"),
            (96, 256),
            ConvParams::square(5).padding(2).groups(2),
            w,
            b,
        )?,
        stack.conv(
            vb.pp("conv3"),
            (256, 384),
            ConvParams::square(3).padding(1),
            w,
            b,
        )?,
        stack.conv(
            vb.pp("conv4"),
            (384, 384),
            ConvParams::square(3).padding(1).groups(2),
            w,
            b,
        )?,
        stack.conv(
            vb.pp("conv5"),
            (384, 256),
            ConvParams::square(3).padding(1).groups(2),
            w,
            b,
        )?,
    ];
    let fcs = [
        stack.fc(vb.pp("fc6"), 256 * 6 * 6, 4096, w, b)?,
        stack.fc(vb.pp("fc7"), 4096, 4096, w, b)?,
        stack.fc(vb.pp("fc8"), 4096, num_classes, w, b)?,
    ];
    let mut net = AlexnetCaffe {
        meta: Meta::new("alexnet-caffe", [in_channels, 227, 227], num_classes),
        convs,
        fcs,
    };
    net.meta.layers = stack.finish(&net, &vb)?;
    Ok(net)
}

impl AlexnetCaffe {
    fn body(&self, xs: &Tensor, train: bool, taps: &mut dyn Taps) -> Result<Tensor> {
        let [c1, c2, c3, c4, c5] = &self.convs;
        let [f6, f7, f8] = &self.fcs;
        // Caffe pools round up; at 227 every pool divides evenly, so floor and ceil agree.
        let xs = c1.forward(xs, taps)?.relu()?;
        let xs = max_pool2d(&xs, 3, 2, 0, true)?;
        let xs = c2.forward(&xs, taps)?.relu()?;
        let xs = max_pool2d(&xs, 3, 2, 0, true)?;
        let xs = c3.forward(&xs, taps)?.relu()?;
        let xs = c4.forward(&xs, taps)?.relu()?;
        let xs = c5.forward(&xs, taps)?.relu()?;
        let xs = max_pool2d(&xs, 3, 2, 0, true)?;
        let xs = f6.forward(&xs, taps)?.relu()?;
        let xs = dropout(&xs, DROPOUT, train)?;
        let xs = f7.forward(&xs, taps)?.relu()?;
        let xs = dropout(&xs, DROPOUT, train)?;
        f8.forward(&xs, taps)
    }
}

impl_network!(AlexnetCaffe);
