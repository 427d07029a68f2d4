//! CIFAR ResNets of depth 6n + 2 (He, Zhang, Ren and Sun, "Deep residual learning for image
//! recognition", CVPR 2016, §4.2).
//!
//! A 3×3 stem conv (16 filters, no bias) with batch norm and ReLU, then three stages of `n`
//! BasicBlocks with 16, 32 and 64 channels at 32×32, 16×16 and 8×8, global average pooling and
//! one FC layer (docs/e2-train.md §2). The first block of stages 2 and 3 has stride 2 and a projection
//! shortcut, a 1×1 stride-2 conv plus batch norm ("option B", as in
//! `xtask/peer/bench_torch.py`); the other shortcuts are identities. ResNet-20, -32, -44,
//! -56, -74 and -110 have n = 3, 5, 7, 9, 12 and 18; ResNet-8 and -14 (n = 1, 2) are small CPU
//! variants.
//!
//! Names follow torchvision-style CIFAR code: `conv1`, `bn1`, `layer{1,2,3}.{i}.conv1`,
//! `.bn1`, `.conv2`, `.bn2`, `.downsample.0` (conv), `.downsample.1` (batch norm), `fc`. The
//! prunable layers are ordered as the forward pass runs them: stem, then per block `conv1`,
//! `conv2`, `downsample.0`, then `fc`.
//!
//! Initialisation ([`ResnetInit`]) as torchvision's ResNet by default: convs `N(0, 2/fan_out)`
//! (He et al. 2015, fan-out), batch norm γ = 1 and β = 0, the FC layer PyTorch's default; or as
//! the E2-Train reference code (docs/e2-train.md §2). Batch norm uses eps 1e-5 and momentum 0.1
//! in PyTorch's convention (`running ← 0.9·running + 0.1·batch`, unbiased batch variance), which
//! is candle-nn's convention too.
//!
//! [`Resnet`] is a [`ResidualNetwork`]: methods that decide per block whether it runs (E2-Train's
//! selective layer update, stochastic depth) drive its stem, blocks and head one at a time; its
//! own forward pass is the same sequence with every block on.

use serde::{Deserialize, Serialize};
use tensor_core::{
    ConvParams, Error, OpsBackend, ResidualNetwork, Result, Taps, Tensor, VarBuilder, ops,
};

use crate::layer::{BatchNorm2d, BiasInit, Layer, LayerStack, Meta, WeightInit, impl_network};
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

/// How a CIFAR ResNet's weights are drawn (biases of the FC layer are PyTorch's default either
/// way; batch norm γ = 1, β = 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResnetInit {
    /// torchvision's: convs `N(0, 2/fan_out)` through the Kaiming initialiser, the FC weight
    /// PyTorch's default `U(±1/√in)`.
    #[default]
    Torchvision,
    /// The E2-Train reference code's (docs/e2-train.md §2): convs `N(0, 2/(k²·C_out))`, the FC
    /// weight `N(0, 2/(out·in))`.
    E2TrainReference,
}

/// Build options of [`resnet_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResnetOptions {
    /// Weight initialisation.
    pub init: ResnetInit,
    /// The ops the convolutions, batch norms and ReLUs run on.
    pub backend: OpsBackend,
}

/// Builds a CIFAR ResNet of `depth` = 6n + 2 ≥ 8 for `in_channels`×32×32 inputs (3 for CIFAR,
/// 1 for MNIST padded to 32×32) and `num_classes` outputs.
pub fn resnet(
    depth: usize,
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
) -> Result<Resnet> {
    resnet_with(
        depth,
        num_classes,
        in_channels,
        vb,
        ResnetOptions::default(),
    )
}

/// [`resnet`](fn@resnet) with its ops on `backend`.
pub(crate) fn resnet_on(
    depth: usize,
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
    backend: OpsBackend,
) -> Result<Resnet> {
    let options = ResnetOptions {
        backend,
        ..ResnetOptions::default()
    };
    resnet_with(depth, num_classes, in_channels, vb, options)
}

/// [`resnet`](fn@resnet) with the given initialisation and ops backend.
pub fn resnet_with(
    depth: usize,
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
    options: ResnetOptions,
) -> Result<Resnet> {
    let backend = options.backend;
    if depth < 8 || !(depth - 2).is_multiple_of(6) {
        return Err(Error::OutOfRange {
            what: "resnet depth",
            value: depth as f64,
            expected: "6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 74, 110, ...)",
        });
    }
    let n = (depth - 2) / 6;
    let mut stack = LayerStack::new(backend);
    let he = |c_out: usize, k: usize| match options.init {
        ResnetInit::Torchvision => WeightInit::HeNormalFanOut,
        // The reference writes the standard deviation out; the same arithmetic keeps the draws
        // bit-identical to it.
        ResnetInit::E2TrainReference => WeightInit::Normal((2.0 / (k * k * c_out) as f64).sqrt()),
    };
    let conv1 = stack.conv(
        vb.pp("conv1"),
        (in_channels, WIDTHS[0]),
        ConvParams::square(3).padding(1),
        he(WIDTHS[0], 3),
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
                (c_in, c),
                ConvParams::square(3).stride(stride).padding(1),
                he(c, 3),
                BiasInit::Absent,
            )?;
            let bn1 = stack.batch_norm(c, vb.pp("bn1"))?;
            let conv2 = stack.conv(
                vb.pp("conv2"),
                (c, c),
                ConvParams::square(3).padding(1),
                he(c, 3),
                BiasInit::Absent,
            )?;
            let bn2 = stack.batch_norm(c, vb.pp("bn2"))?;
            let downsample = if stride != 1 || c_in != c {
                let vb = vb.pp("downsample");
                let conv = stack.conv(
                    vb.pp("0"),
                    (c_in, c),
                    ConvParams::square(1).stride(stride),
                    he(c, 1),
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
    let fc_init = match options.init {
        ResnetInit::Torchvision => WeightInit::Torch,
        ResnetInit::E2TrainReference => {
            WeightInit::Normal((2.0 / (num_classes * WIDTHS[2]) as f64).sqrt())
        }
    };
    let fc = stack.fc(
        vb.pp("fc"),
        WIDTHS[2],
        num_classes,
        fc_init,
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
        let mut xs = self.stem(xs, train, taps)?;
        for block in 0..self.blocks.len() {
            let r = self.residual(block, &xs, train, taps)?;
            let s = self.shortcut(block, &xs, train, taps)?;
            xs = self.merge(&r, &s)?;
        }
        self.head(&xs, taps)
    }

    fn block(&self, block: usize) -> Result<&BasicBlock> {
        self.blocks.get(block).ok_or_else(|| Error::OutOfRange {
            what: "residual block index",
            value: block as f64,
            expected: "an index below the network's block count",
        })
    }
}

impl ResidualNetwork for Resnet {
    fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    fn block_channels(&self, block: usize) -> usize {
        let n = self.blocks.len() / 3;
        WIDTHS[(block / n.max(1)).min(2)]
    }

    fn stem(&self, xs: &Tensor, train: bool, taps: &mut dyn Taps) -> Result<Tensor> {
        self.meta.check_input(xs)?;
        self.bn1.forward_relu(&self.conv1.forward(xs, taps)?, train)
    }

    fn residual(
        &self,
        block: usize,
        xs: &Tensor,
        train: bool,
        taps: &mut dyn Taps,
    ) -> Result<Tensor> {
        let b = self.block(block)?;
        let ys = b.bn1.forward_relu(&b.conv1.forward(xs, taps)?, train)?;
        b.bn2.forward_t(&b.conv2.forward(&ys, taps)?, train)
    }

    fn shortcut(
        &self,
        block: usize,
        xs: &Tensor,
        train: bool,
        taps: &mut dyn Taps,
    ) -> Result<Tensor> {
        match &self.block(block)?.downsample {
            None => Ok(xs.clone()),
            Some((conv, bn)) => bn.forward_t(&conv.forward(xs, taps)?, train),
        }
    }

    fn merge(&self, residual: &Tensor, shortcut: &Tensor) -> Result<Tensor> {
        ops::relu(&(residual + shortcut)?, self.meta.backend)
    }

    fn head(&self, xs: &Tensor, taps: &mut dyn Taps) -> Result<Tensor> {
        self.fc.forward(&global_avg_pool(xs)?, taps)
    }
}

impl_network!(Resnet);
