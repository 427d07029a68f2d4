//! MobileNetV2 (Sandler, Howard, Zhu, Zhmoginov and Chen, "MobileNetV2: Inverted residuals and
//! linear bottlenecks", CVPR 2018, Table 2) in torchvision's layout, width 1.0, 3×224×224 input.
//!
//! A 3×3/2 stem conv (32 filters), seventeen inverted-residual blocks with settings (expansion
//! t, channels c, repeats n, first stride s) = (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2),
//! (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1), a 1×1 conv to 1280 channels,
//! global average pooling, dropout 0.2 and one FC layer. A block expands with a 1×1 conv (absent
//! when t = 1), filters with a 3×3 depthwise conv (groups = channels) carrying the stride, and
//! projects with a linear 1×1 conv; every conv is bias-free and followed by batch norm, with
//! ReLU6 except after the projection. A block whose stride is 1 and whose input and output
//! widths agree adds its input.
//!
//! Names are torchvision's: `features.0.0` (stem conv), `features.0.1` (its batch norm);
//! `features.{1..17}.conv.{..}` (for t = 1: `conv.0.0` depthwise, `conv.0.1`, `conv.1`
//! projection, `conv.2`; otherwise `conv.0.0` expansion, `conv.0.1`, `conv.1.0` depthwise,
//! `conv.1.1`, `conv.2` projection, `conv.3`); `features.18.0`, `features.18.1`;
//! `classifier.1` (FC).
//!
//! Initialisation as torchvision: convs `N(0, 2/fan_out)` (He et al. 2015, fan-out), batch norm
//! γ = 1 and β = 0 (eps 1e-5, momentum 0.1), the FC layer `N(0, 0.01²)` with zero bias.

use tensor_core::ConvParams;
use tensor_core::{OpsBackend, Result, Taps, Tensor, VarBuilder};

use crate::layer::{BatchNorm2d, BiasInit, Layer, LayerStack, Meta, WeightInit, impl_network};
use crate::pool::{dropout, global_avg_pool};

/// Dropout probability before the FC layer.
const DROPOUT: f32 = 0.2;

/// `(t, c, n, s)` per stage (paper Table 2).
const SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Width of the stem and of the last conv.
const STEM: usize = 32;
const LAST: usize = 1280;

/// MobileNetV2 (built by [`mobilenet_v2`]).
#[derive(Clone, Debug)]
pub struct MobilenetV2 {
    meta: Meta,
    stem: ConvBn,
    blocks: Vec<InvertedResidual>,
    last: ConvBn,
    fc: Layer,
}

/// A bias-free conv followed by batch norm.
#[derive(Clone, Debug)]
struct ConvBn {
    conv: Layer,
    bn: BatchNorm2d,
}

#[derive(Clone, Debug)]
struct InvertedResidual {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

impl ConvBn {
    /// Conv `conv_name` and batch norm `bn_name` under `vb`.
    fn new(
        stack: &mut LayerStack,
        vb: &VarBuilder,
        (conv_name, bn_name): (&str, &str),
        channels: (usize, usize),
        params: ConvParams,
    ) -> Result<Self> {
        Ok(Self {
            conv: stack.conv(
                vb.pp(conv_name),
                channels,
                params,
                WeightInit::HeNormalFanOut,
                BiasInit::Absent,
            )?,
            bn: stack.batch_norm(channels.1, vb.pp(bn_name))?,
        })
    }

    fn forward(&self, xs: &Tensor, train: bool, taps: &mut dyn Taps) -> Result<Tensor> {
        self.bn.forward_t(&self.conv.forward(xs, taps)?, train)
    }

    /// Conv, batch norm, ReLU6.
    fn forward_relu6(&self, xs: &Tensor, train: bool, taps: &mut dyn Taps) -> Result<Tensor> {
        Ok(self.forward(xs, train, taps)?.clamp(0f32, 6f32)?)
    }
}

/// Builds MobileNetV2 (width 1.0) for `in_channels`×224×224 inputs and `num_classes` outputs.
pub fn mobilenet_v2(num_classes: usize, in_channels: usize, vb: VarBuilder) -> Result<MobilenetV2> {
    mobilenet_v2_on(num_classes, in_channels, vb, OpsBackend::Fast)
}

/// [`mobilenet_v2`](fn@mobilenet_v2) with its ops on `backend`.
pub(crate) fn mobilenet_v2_on(
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
    backend: OpsBackend,
) -> Result<MobilenetV2> {
    let mut stack = LayerStack::new(backend);
    let features = vb.pp("features");
    let stem = ConvBn::new(
        &mut stack,
        &features.pp("0"),
        ("0", "1"),
        (in_channels, STEM),
        ConvParams::square(3).stride(2).padding(1),
    )?;
    let mut blocks = Vec::new();
    let mut c_in = STEM;
    for (t, c, n, s) in SETTINGS {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let vb = features.pp(blocks.len() + 1).pp("conv");
            let hidden = c_in * t;
            let depthwise = ConvParams::square(3)
                .stride(stride)
                .padding(1)
                .groups(hidden);
            let (expand, depthwise, project) = if t == 1 {
                let dw = ConvBn::new(&mut stack, &vb, ("0.0", "0.1"), (hidden, hidden), depthwise)?;
                let pw = ConvBn::new(
                    &mut stack,
                    &vb,
                    ("1", "2"),
                    (hidden, c),
                    ConvParams::square(1),
                )?;
                (None, dw, pw)
            } else {
                let ex = ConvBn::new(
                    &mut stack,
                    &vb,
                    ("0.0", "0.1"),
                    (c_in, hidden),
                    ConvParams::square(1),
                )?;
                let dw = ConvBn::new(&mut stack, &vb, ("1.0", "1.1"), (hidden, hidden), depthwise)?;
                let pw = ConvBn::new(
                    &mut stack,
                    &vb,
                    ("2", "3"),
                    (hidden, c),
                    ConvParams::square(1),
                )?;
                (Some(ex), dw, pw)
            };
            blocks.push(InvertedResidual {
                expand,
                depthwise,
                project,
                residual: stride == 1 && c_in == c,
            });
            c_in = c;
        }
    }
    let last = ConvBn::new(
        &mut stack,
        &features.pp(blocks.len() + 1),
        ("0", "1"),
        (c_in, LAST),
        ConvParams::square(1),
    )?;
    let fc = stack.fc(
        vb.pp("classifier.1"),
        LAST,
        num_classes,
        WeightInit::Normal(0.01),
        BiasInit::Zero,
    )?;
    let mut net = MobilenetV2 {
        meta: Meta::new("mobilenet_v2", [in_channels, 224, 224], num_classes),
        stem,
        blocks,
        last,
        fc,
    };
    net.meta.layers = stack.finish(&net, &vb)?;
    Ok(net)
}

impl MobilenetV2 {
    fn body(&self, xs: &Tensor, train: bool, taps: &mut dyn Taps) -> Result<Tensor> {
        let mut xs = self.stem.forward_relu6(xs, train, taps)?;
        for block in &self.blocks {
            xs = block.forward(&xs, train, taps)?;
        }
        let xs = self.last.forward_relu6(&xs, train, taps)?;
        let xs = global_avg_pool(&xs)?;
        let xs = dropout(&xs, DROPOUT, train)?;
        self.fc.forward(&xs, taps)
    }
}

impl InvertedResidual {
    fn forward(&self, xs: &Tensor, train: bool, taps: &mut dyn Taps) -> Result<Tensor> {
        let ys = match &self.expand {
            None => xs.clone(),
            Some(expand) => expand.forward_relu6(xs, train, taps)?,
        };
        let ys = self.depthwise.forward_relu6(&ys, train, taps)?;
        let ys = self.project.forward(&ys, train, taps)?;
        if self.residual {
            Ok((ys + xs)?)
        } else {
            Ok(ys)
        }
    }
}

impl_network!(MobilenetV2);
