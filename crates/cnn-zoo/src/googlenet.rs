//! GoogLeNet, Inception v1 (Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke and
//! Rabinovich, "Going deeper with convolutions", CVPR 2015, Table 1), as priced by nn_dataflow
//! (`nn_dataflow/nns/googlenet.py`, docs/energy-models.md B.10).
//!
//! 3×224×224 input; conv1 7×7/2 (padding 3, → 112), max-pool 3/2, conv2 1×1 reduce and conv3
//! 3×3 (192 filters), max-pool 3/2, inception 3a–3b, max-pool 3/2, inception 4a–4e, max-pool 3/2,
//! inception 5a–5b, 7×7 average pooling, dropout 0.4 and a 1000-way FC layer. Max-pools round up
//! (Caffe's and torchvision's ceil mode): 112 → 56 → 28 → 14 → 7. Each inception module has four
//! branches concatenated in this order: 1×1; 1×1 reduce then 3×3; 1×1 reduce then **5×5** (the
//! paper's; torchvision's `googlenet` uses a 3×3 there); 3×3/1 max-pool then 1×1 projection.
//! ReLU follows every conv. For 1000 classes: 6,990,272 weights and 1,582,671,872 MACs (biases
//! excluded). No auxiliary classifiers and no local response normalisation: neither carries
//! weights of the deployed network, and LRN has no MACs (nn_dataflow ignores it too).
//!
//! Names follow torchvision's module tree without its batch-norm wrappers: `conv1`, `conv2`
//! (nn_dataflow's `conv2_3x3_reduce`), `conv3` (`conv2_3x3`), `inception{3a,..,5b}.branch1`
//! (`1x1`), `.branch2.0` (`3x3_reduce`), `.branch2.1` (`3x3`), `.branch3.0` (`5x5_reduce`),
//! `.branch3.1` (`5x5`), `.branch4.1` (`pool_proj`), `fc`.
//!
//! Initialisation: convs `N(0, 2/fan_in)` (He et al. 2015; the network has no batch norm, so the
//! variance-preserving choice matters), conv biases zero, the FC layer PyTorch's default.

use tensor_core::ConvParams;
use tensor_core::{OpsBackend, Result, Taps, Tensor, VarBuilder};

use crate::layer::{BiasInit, Layer, LayerStack, Meta, WeightInit, impl_network};
use crate::pool::{dropout, global_avg_pool, max_pool2d};

/// Dropout probability before the FC layer.
const DROPOUT: f32 = 0.4;

/// An inception module's widths: 1×1, 3×3 reduce, 3×3, 5×5 reduce, 5×5, pool projection.
type Widths = (usize, usize, usize, usize, usize, usize);

/// `(name, widths, max-pool before)` of the nine inception modules (paper Table 1).
const INCEPTIONS: [(&str, Widths, bool); 9] = [
    ("3a", (64, 96, 128, 16, 32, 32), false),
    ("3b", (128, 128, 192, 32, 96, 64), false),
    ("4a", (192, 96, 208, 16, 48, 64), true),
    ("4b", (160, 112, 224, 24, 64, 64), false),
    ("4c", (128, 128, 256, 24, 64, 64), false),
    ("4d", (112, 144, 288, 32, 64, 64), false),
    ("4e", (256, 160, 320, 32, 128, 128), false),
    ("5a", (256, 160, 320, 32, 128, 128), true),
    ("5b", (384, 192, 384, 48, 128, 128), false),
];

/// GoogLeNet v1 (built by [`googlenet`]).
#[derive(Clone, Debug)]
pub struct Googlenet {
    meta: Meta,
    conv1: Layer,
    conv2: Layer,
    conv3: Layer,
    inceptions: Vec<Inception>,
    fc: Layer,
}

#[derive(Clone, Debug)]
struct Inception {
    /// A max-pool 3/2 runs before this module.
    pooled: bool,
    branch1: Layer,
    branch2: [Layer; 2],
    branch3: [Layer; 2],
    branch4: Layer,
}

/// Builds GoogLeNet v1 for `in_channels`×224×224 inputs and `num_classes` outputs.
pub fn googlenet(num_classes: usize, in_channels: usize, vb: VarBuilder) -> Result<Googlenet> {
    googlenet_on(num_classes, in_channels, vb, OpsBackend::Fast)
}

/// [`googlenet`](fn@googlenet) with its ops on `backend`.
pub(crate) fn googlenet_on(
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
    backend: OpsBackend,
) -> Result<Googlenet> {
    let mut stack = LayerStack::new(backend);
    let (w, b) = (WeightInit::HeNormal, BiasInit::Zero);
    let conv1 = stack.conv(
        vb.pp("conv1"),
        (in_channels, 64),
        ConvParams::square(7).stride(2).padding(3),
        w,
        b,
    )?;
    let conv2 = stack.conv(vb.pp("conv2"), (64, 64), ConvParams::square(1), w, b)?;
    let conv3 = stack.conv(
        vb.pp("conv3"),
        (64, 192),
        ConvParams::square(3).padding(1),
        w,
        b,
    )?;
    let mut c_in = 192;
    let mut inceptions = Vec::with_capacity(INCEPTIONS.len());
    for (name, (n1, n3r, n3, n5r, n5, np), pooled) in INCEPTIONS {
        let vb = vb.pp(format!("inception{name}"));
        inceptions.push(Inception {
            pooled,
            branch1: stack.conv(vb.pp("branch1"), (c_in, n1), ConvParams::square(1), w, b)?,
            branch2: [
                stack.conv(vb.pp("branch2.0"), (c_in, n3r), ConvParams::square(1), w, b)?,
                stack.conv(
                    vb.pp("branch2.1"),
                    (n3r, n3),
                    ConvParams::square(3).padding(1),
                    w,
                    b,
                )?,
            ],
            branch3: [
                stack.conv(vb.pp("branch3.0"), (c_in, n5r), ConvParams::square(1), w, b)?,
                stack.conv(
                    vb.pp("branch3.1"),
                    (n5r, n5),
                    ConvParams::square(5).padding(2),
                    w,
                    b,
                )?,
            ],
            branch4: stack.conv(vb.pp("branch4.1"), (c_in, np), ConvParams::square(1), w, b)?,
        });
        c_in = n1 + n3 + n5 + np;
    }
    let fc = stack.fc(
        vb.pp("fc"),
        c_in,
        num_classes,
        WeightInit::Torch,
        BiasInit::Torch,
    )?;
    let mut net = Googlenet {
        meta: Meta::new("googlenet", [in_channels, 224, 224], num_classes),
        conv1,
        conv2,
        conv3,
        inceptions,
        fc,
    };
    net.meta.layers = stack.finish(&net, &vb)?;
    Ok(net)
}

impl Googlenet {
    fn body(&self, xs: &Tensor, train: bool, taps: &mut dyn Taps) -> Result<Tensor> {
        let xs = self.conv1.forward(xs, taps)?.relu()?;
        let xs = max_pool2d(&xs, 3, 2, 0, true)?;
        let xs = self.conv2.forward(&xs, taps)?.relu()?;
        let xs = self.conv3.forward(&xs, taps)?.relu()?;
        let mut xs = max_pool2d(&xs, 3, 2, 0, true)?;
        for inception in &self.inceptions {
            if inception.pooled {
                xs = max_pool2d(&xs, 3, 2, 0, true)?;
            }
            xs = inception.forward(&xs, taps)?;
        }
        let xs = global_avg_pool(&xs)?;
        let xs = dropout(&xs, DROPOUT, train)?;
        self.fc.forward(&xs, taps)
    }
}

impl Inception {
    fn forward(&self, xs: &Tensor, taps: &mut dyn Taps) -> Result<Tensor> {
        let chain = |layers: &[Layer; 2], taps: &mut dyn Taps| -> Result<Tensor> {
            let ys = layers[0].forward(xs, taps)?.relu()?;
            Ok(layers[1].forward(&ys, taps)?.relu()?)
        };
        let y1 = self.branch1.forward(xs, taps)?.relu()?;
        let y2 = chain(&self.branch2, taps)?;
        let y3 = chain(&self.branch3, taps)?;
        let pooled = max_pool2d(xs, 3, 1, 1, true)?;
        let y4 = self.branch4.forward(&pooled, taps)?.relu()?;
        Ok(Tensor::cat(&[y1, y2, y3, y4], 1)?)
    }
}

impl_network!(Googlenet);
