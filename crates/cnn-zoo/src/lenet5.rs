//! LeNet-5 (LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document
//! recognition", Proc. IEEE 86(11), 1998) in two modern variants.
//!
//! - [`lenet5`]: the network of the ICLR'19 energy-constrained compression reference
//!   (`MyLeNet5` in hyang1990/model_based_energy_constrained_compression, `models.py`; see
//!   docs/sparse-projection.md §8): a 1×32×32 input, conv 1→6 k5, ReLU, max-pool 2, conv 6→16 k5,
//!   ReLU, max-pool 2, FC 400→120→84→10 with ReLU, biases on, no padding: 61,470 weights.
//!   Parameter names are that reference's `state_dict` keys: `features.0`, `features.3`,
//!   `classifier.0`, `classifier.2`, `classifier.4`, so its shipped MNIST checkpoint compares one
//!   to one.
//! - [`lenet5_caffe`]: Caffe's 20-50-500-10 LeNet on 1×28×28 (conv 1→20 k5, max-pool 2, conv
//!   20→50 k5, max-pool 2, FC 800→500→10), as in `xtask/peer/bench_torch.py`, with its
//!   names `c1`, `c2`, `f1`, `f2`. As there, ReLU follows both convs and `f1`.
//!
//! Initialisation: PyTorch's defaults for `Conv2d` and `Linear` (weights and biases
//! `U(−1/√fan_in, 1/√fan_in)`), which is what both references train from.

use tensor_core::ConvParams;
use tensor_core::{OpsBackend, Result, Taps, Tensor, VarBuilder, ops};

use crate::layer::{BiasInit, Layer, LayerStack, Meta, WeightInit, impl_network};

/// The ICLR'19 reference LeNet-5 (built by [`lenet5`]).
#[derive(Clone, Debug)]
pub struct Lenet5 {
    meta: Meta,
    conv1: Layer,
    conv2: Layer,
    fc1: Layer,
    fc2: Layer,
    fc3: Layer,
}

/// Builds the ICLR'19 reference LeNet-5 for `in_channels`×32×32 inputs and `num_classes`
/// outputs (the reference: 1 channel, 10 classes).
pub fn lenet5(num_classes: usize, in_channels: usize, vb: VarBuilder) -> Result<Lenet5> {
    lenet5_on(num_classes, in_channels, vb, OpsBackend::Fast)
}

/// [`lenet5`](fn@lenet5) with its ops on `backend`.
pub(crate) fn lenet5_on(
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
    backend: OpsBackend,
) -> Result<Lenet5> {
    let mut stack = LayerStack::new(backend);
    let (w, b) = (WeightInit::Torch, BiasInit::Torch);
    let conv1 = stack.conv(
        vb.pp("features.0"),
        (in_channels, 6),
        ConvParams::square(5),
        w,
        b,
    )?;
    let conv2 = stack.conv(vb.pp("features.3"), (6, 16), ConvParams::square(5), w, b)?;
    let fc1 = stack.fc(vb.pp("classifier.0"), 16 * 5 * 5, 120, w, b)?;
    let fc2 = stack.fc(vb.pp("classifier.2"), 120, 84, w, b)?;
    let fc3 = stack.fc(vb.pp("classifier.4"), 84, num_classes, w, b)?;
    let mut net = Lenet5 {
        meta: Meta::new("lenet5", [in_channels, 32, 32], num_classes),
        conv1,
        conv2,
        fc1,
        fc2,
        fc3,
    };
    net.meta.backend = backend;
    net.meta.layers = stack.finish(&net, &vb)?;
    Ok(net)
}

impl Lenet5 {
    fn body(&self, xs: &Tensor, _train: bool, taps: &mut dyn Taps) -> Result<Tensor> {
        let be = self.meta.backend;
        let xs = ops::relu(&self.conv1.forward(xs, taps)?, be)?;
        let xs = ops::max_pool2d(&xs, 2, be)?;
        let xs = ops::relu(&self.conv2.forward(&xs, taps)?, be)?;
        let xs = ops::max_pool2d(&xs, 2, be)?;
        let xs = ops::relu(&self.fc1.forward(&xs, taps)?, be)?;
        let xs = ops::relu(&self.fc2.forward(&xs, taps)?, be)?;
        self.fc3.forward(&xs, taps)
    }
}

impl_network!(Lenet5);

/// Caffe's 20-50-500-10 LeNet (built by [`lenet5_caffe`]).
#[derive(Clone, Debug)]
pub struct Lenet5Caffe {
    meta: Meta,
    c1: Layer,
    c2: Layer,
    f1: Layer,
    f2: Layer,
}

/// Builds Caffe's 20-50-500-10 LeNet for `in_channels`×28×28 inputs and `num_classes` outputs.
pub fn lenet5_caffe(num_classes: usize, in_channels: usize, vb: VarBuilder) -> Result<Lenet5Caffe> {
    lenet5_caffe_on(num_classes, in_channels, vb, OpsBackend::Fast)
}

/// [`lenet5_caffe`](fn@lenet5_caffe) with its ops on `backend`.
pub(crate) fn lenet5_caffe_on(
    num_classes: usize,
    in_channels: usize,
    vb: VarBuilder,
    backend: OpsBackend,
) -> Result<Lenet5Caffe> {
    let mut stack = LayerStack::new(backend);
    let (w, b) = (WeightInit::Torch, BiasInit::Torch);
    let c1 = stack.conv(vb.pp("c1"), (in_channels, 20), ConvParams::square(5), w, b)?;
    let c2 = stack.conv(vb.pp("c2"), (20, 50), ConvParams::square(5), w, b)?;
    let f1 = stack.fc(vb.pp("f1"), 50 * 4 * 4, 500, w, b)?;
    let f2 = stack.fc(vb.pp("f2"), 500, num_classes, w, b)?;
    let mut net = Lenet5Caffe {
        meta: Meta::new("lenet5-caffe", [in_channels, 28, 28], num_classes),
        c1,
        c2,
        f1,
        f2,
    };
    net.meta.backend = backend;
    net.meta.layers = stack.finish(&net, &vb)?;
    Ok(net)
}

impl Lenet5Caffe {
    fn body(&self, xs: &Tensor, _train: bool, taps: &mut dyn Taps) -> Result<Tensor> {
        let be = self.meta.backend;
        let xs = ops::relu(&self.c1.forward(xs, taps)?, be)?;
        let xs = ops::max_pool2d(&xs, 2, be)?;
        let xs = ops::relu(&self.c2.forward(&xs, taps)?, be)?;
        let xs = ops::max_pool2d(&xs, 2, be)?;
        let xs = ops::relu(&self.f1.forward(&xs, taps)?, be)?;
        self.f2.forward(&xs, taps)
    }
}

impl_network!(Lenet5Caffe);
