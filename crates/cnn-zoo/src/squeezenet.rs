//! SqueezeNet 1.0 (Iandola, Han, Moskewicz, Ashraf, Dally and Keutzer, "SqueezeNet:
//! AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size", arXiv:1602.07360,
//! 2016) in torchvision's layout, on 3×227×227 as in docs/energy-models.md B.10.
//!
//! conv1 96×3×7×7 stride 2 (→ 111×111), max-pool 3/2 in ceil mode (→ 55), fire2–4, max-pool
//! (→ 27), fire5–8, max-pool (→ 13), fire9, dropout 0.5, conv10 1×1 512 → classes, ReLU, global
//! average pooling. A fire module squeezes with `s` 1×1 filters, then concatenates `e` 1×1 and `e`
//! 3×3 (padding 1) expand filters, ReLU after each: s/e = 16/64, 16/64, 32/128, 32/128, 48/192,
//! 48/192, 64/256, 64/256. For 1000 classes: 1,244,448 weights and 832,667,936 MACs (biases
//! excluded).
//!
//! Names are torchvision's: `features.0` (conv1), `features.{3,4,5,7,8,9,10,12}.{squeeze,
//! expand1x1,expand3x3}` (fire2–9), `classifier.1` (conv10). Initialisation as torchvision:
//! convs He-uniform (fan-in, ReLU gain), conv10 `N(0, 0.01²)`, biases zero.

use tensor_core::ConvParams;
use tensor_core::{OpsBackend, Result, Taps, Tensor, VarBuilder};

use crate::layer::{BiasInit, Layer, LayerStack, Meta, WeightInit, impl_network};
use crate::pool::{dropout, global_avg_pool, max_pool2d};

/// Dropout probability before conv10.
const DROPOUT: f32 = 0.5;

/// `(torchvision index, squeeze, expand)` of fire2–9; a max-pool precedes indices 7 and 12.
const FIRES: [(usize, usize, usize); 8] = [
    (3, 16, 64),
    (4, 16, 64),
    (5, 32, 128),
    (7, 32, 128),
    (8, 48, 192),
    (9, 48, 192),
    (10, 64, 256),
    (12, 64, 256),
];

/// SqueezeNet 1.0 (built by [`squeezenet1_0`]).
#[derive(Clone, Debug)]
pub struct Squeezenet {
    meta: Meta,
    conv1: Layer,
    fires: Vec<Fire>,
    conv10: Layer,
}

#[derive(Clone, Debug)]
struct Fire {
    /// A max-pool 3/2 (ceil mode) runs before this module.
    pooled: bool,
    squeeze: Layer,
    expand1x1: Layer,
    expand3x3: Layer,
}

/// Builds SqueezeNet 1.0 for `in_channels`×227×227 inputs and `num_classes` outputs.
pub fn squeezenet1_0(num_classes: usize, in_channels: usize, vb: VarBuilder) -> Result<Squeezenet> {
    squeezenet1_0_on(num_classes, in_channels, vb, OpsBackend::Fast)
}

/// [`squeezenet1_0`](fn@squeezenet1_0) with its ops on `backend`.
pub(crate) fn squeezenet1_0_on(
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
    backend: OpsBackend,
) -> Result<Squeezenet> {
    let mut stack = LayerStack::new(backend);
    let (w, b) = (WeightInit::HeUniform, BiasInit::Zero);
    let features = vb.pp("features");
    let conv1 = stack.conv(
        features.pp("0"),
        (in_channels, 96),
        ConvParams::square(7).stride(2),
        w,
        b,
    )?;
    let mut c_in = 96;
    let mut fires = Vec::with_capacity(FIRES.len());
    for (index, s, e) in FIRES {
        let vb = features.pp(index);
        fires.push(Fire {
            pooled: index == 7 || index == 12,
            squeeze: stack.conv(vb.pp("squeeze"), (c_in, s), ConvParams::square(1), w, b)?,
            expand1x1: stack.conv(vb.pp("expand1x1"), (s, e), ConvParams::square(1), w, b)?,
            expand3x3: stack.conv(
                vb.pp("expand3x3"),
                (s, e),
                ConvParams::square(3).padding(1),
                w,
                b,
            )?,
        });
        c_in = 2 * e;
    }
    let conv10 = stack.conv(
        vb.pp("classifier.1"),
        (c_in, num_classes),
        ConvParams::square(1),
        WeightInit::Normal(0.01),
        b,
    )?;
    let mut net = Squeezenet {
        meta: Meta::new("squeezenet1_0", [in_channels, 227, 227], num_classes),
        conv1,
        fires,
        conv10,
    };
    net.meta.layers = stack.finish(&net, &vb)?;
    Ok(net)
}

impl Squeezenet {
    fn body(&self, xs: &Tensor, train: bool, taps: &mut dyn Taps) -> Result<Tensor> {
        let mut xs = self.conv1.forward(xs, taps)?.relu()?;
        xs = max_pool2d(&xs, 3, 2, 0, true)?;
        for fire in &self.fires {
            if fire.pooled {
                xs = max_pool2d(&xs, 3, 2, 0, true)?;
            }
            xs = fire.forward(&xs, taps)?;
        }
        let xs = dropout(&xs, DROPOUT, train)?;
        let xs = self.conv10.forward(&xs, taps)?.relu()?;
        Ok(global_avg_pool(&xs)?.flatten_from(1)?)
    }
}

impl Fire {
    fn forward(&self, xs: &Tensor, taps: &mut dyn Taps) -> Result<Tensor> {
        let s = self.squeeze.forward(xs, taps)?.relu()?;
        let e1 = self.expand1x1.forward(&s, taps)?.relu()?;
        let e3 = self.expand3x3.forward(&s, taps)?.relu()?;
        Ok(Tensor::cat(&[e1, e3], 1)?)
    }
}

impl_network!(Squeezenet);
