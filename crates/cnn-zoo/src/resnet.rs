//! CIFAR ResNets of depth 6n + 2 (He, Zhang, Ren and Sun, "Deep residual learning for image
//! recognition", CVPR 2016, §4.2).
//!
//! A 3×3 stem conv (16 filters, no bias) with batch norm and ReLU, then three stages of `n`
//! BasicBlocks with 16, 32 and 64 channels at 32×32, 16×16 and 8×8, global average pooling and
//! one FC layer (e2-train.md §2). The first block of stages 2 and 3 has stride 2 and a projection
//! shortcut, a 1×1 stride-2 conv plus batch norm ("option B", as in
//! `shared/peer-bench/bench_torch.py`); the other shortcuts are identities. ResNet-20, -32, -44,
//! -56, -74 and -110 have n = 3, 5, 7, 9, 12 and 18; ResNet-8 and -14 (n = 1, 2) are small CPU
//! variants.
//!
//! Names follow torchvision-style CIFAR code: `conv1`, `bn1`, `layer{1,2,3}.{i}.conv1`,
//! `.bn1`, `.conv2`, `.bn2`, `.downsample.0` (conv), `.downsample.1` (batch norm), `fc`. The
//! prunable layers are ordered as the forward pass runs them: stem, then per block `conv1`,
//! `conv2`, `downsample.0`, then `fc`.
//!
//! Initialisation as torchvision's ResNet: convs `N(0, 2/fan_out)` (He et al. 2015, fan-out),
//! batch norm γ = 1 and β = 0, the FC layer PyTorch's default. Batch norm uses eps 1e-5 and
//! momentum 0.1 in PyTorch's convention (`running ← 0.9·running + 0.1·batch`, unbiased batch
//! variance), which is candle-nn's convention too.

use tensor_core::{Error, OpsBackend, Result, Taps, Tensor, VarBuilder, ops};

use crate::layer::{
    BatchNorm2d, BiasInit, ConvSpec, Layer, LayerStack, Meta, WeightInit, impl_network,
};
use crate::pool::global_avg_pool;

/// Stage widths of a CIFAR ResNet.
const WIDTHS: [usize; 3] = [16, 32, 64];

/// A CIFAR ResNet of depth 6n + 2 (built by [`resnet`]).
#[derive(Clone, Debug)]
pub struct Resnet {
    meta: Meta,
    conv1: Layer,
    bn1: BatchNorm2d,
    blocks: Vec<BasicBlock>,
    fc: Layer,
}

#[derive(Clone, Debug)]
struct BasicBlock {
    conv1: Layer,
    bn1: BatchNorm2d,
    conv2: Layer,
    bn2: BatchNorm2d,
    downsample: Option<(Layer, BatchNorm2d)>,
}

/// Builds a CIFAR ResNet of `depth` = 6n + 2 ≥ 8 for `in_channels`×32×32 inputs (3 for CIFAR,
/// 1 for MNIST padded to 32×32) and `num_classes` outputs.
pub fn resnet(
    depth: usize,
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
) -> Result<Resnet> {
    resnet_on(depth, num_classes, in_channels, vb, OpsBackend::Fast)
}

/// [`resnet`](fn@resnet) with its ops on `backend`.
pub(crate) fn resnet_on(
    depth: usize,
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
    backend: OpsBackend,
) -> Result<Resnet> {
    if depth < 8 || !(depth - 2).is_multiple_of(6) {
        return Err(Error::OutOfRange {
            what: "resnet depth",
            value: depth as f64,
            expected: "6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 74, 110, ...)",
        });
    }
    let n = (depth - 2) / 6;
    let mut stack = LayerStack::new(backend);
    let he = WeightInit::HeNormalFanOut;
    let conv1 = stack.conv(
        vb.pp("conv1"),
        ConvSpec::new(in_channels, WIDTHS[0], 3).padding(1),
        he,
        BiasInit::Absent,
    )?;
    let bn1 = stack.batch_norm(WIDTHS[0], vb.pp("bn1"))?;
    let mut blocks = Vec::with_capacity(3 * n);
    let mut c_in = WIDTHS[0];
    for (stage, &c) in WIDTHS.iter().enumerate() {
        for i in 0..n {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let vb = vb.pp(format!("layer{}.{i}", stage + 1));
            let conv1 = stack.conv(
                vb.pp("conv1"),
                ConvSpec::new(c_in, c, 3).stride(stride).padding(1),
                he,
                BiasInit::Absent,
            )?;
            let bn1 = stack.batch_norm(c, vb.pp("bn1"))?;
            let conv2 = stack.conv(
                vb.pp("conv2"),
                ConvSpec::new(c, c, 3).padding(1),
                he,
                BiasInit::Absent,
            )?;
            let bn2 = stack.batch_norm(c, vb.pp("bn2"))?;
            let downsample = if stride != 1 || c_in != c {
                let vb = vb.pp("downsample");
                let conv = stack.conv(
                    vb.pp("0"),
                    ConvSpec::new(c_in, c, 1).stride(stride),
                    he,
                    BiasInit::Absent,
                )?;
                Some((conv, stack.batch_norm(c, vb.pp("1"))?))
            } else {
                None
            };
            blocks.push(BasicBlock {
                conv1,
                bn1,
                conv2,
                bn2,
                downsample,
            });
            c_in = c;
        }
    }
    let fc = stack.fc(
        vb.pp("fc"),
        WIDTHS[2],
        num_classes,
        WeightInit::Torch,
        BiasInit::Torch,
    )?;
    let mut net = Resnet {
        meta: Meta::new(format!("resnet{depth}"), [in_channels, 32, 32], num_classes),
        conv1,
        bn1,
        blocks,
        fc,
    };
    net.meta.backend = backend;
    net.meta.layers = stack.finish(&net, &vb)?;
    Ok(net)
}

impl Resnet {
    /// The depth 6n + 2.
    pub fn depth(&self) -> usize {
        2 * self.blocks.len() + 2
    }

    fn body(&self, xs: &Tensor, train: bool, taps: &mut dyn Taps) -> Result<Tensor> {
        let mut xs = self
            .bn1
            .forward_relu(&self.conv1.forward(xs, taps)?, train)?;
        for block in &self.blocks {
            xs = block.forward(&xs, train, taps, self.meta.backend)?;
        }
        let xs = global_avg_pool(&xs)?;
        self.fc.forward(&xs, taps)
    }
}

impl BasicBlock {
    fn forward(
        &self,
        xs: &Tensor,
        train: bool,
        taps: &mut dyn Taps,
        backend: OpsBackend,
    ) -> Result<Tensor> {
        let ys = self
            .bn1
            .forward_relu(&self.conv1.forward(xs, taps)?, train)?;
        let ys = self.bn2.forward_t(&self.conv2.forward(&ys, taps)?, train)?;
        let shortcut = match &self.downsample {
            None => xs.clone(),
            Some((conv, bn)) => bn.forward_t(&conv.forward(xs, taps)?, train)?,
        };
        ops::relu(&(ys + shortcut)?, backend)
    }
}

impl_network!(Resnet);
