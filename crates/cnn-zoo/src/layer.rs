//! The tapped layer: the one place where a conv or FC layer of any model runs, and where its
//! geometry is derived from a real batch-1 forward pass.
//!
//! Every model builds its prunable layers through a [`LayerStack`], which hands out [`LayerId`]s
//! in construction order, and runs them through [`Layer::forward`], which calls the pre-tap
//! (which may replace the input), the layer, then the post-tap with the layer's output before any
//! activation. [`LayerStack::finish`] runs the finished model once on a batch-1 zero input under
//! a [`ShapeProbe`] and turns what it saw into [`LayerInfo`]s.

use tensor_core::ops;
use tensor_core::tensor::nn::init::{FanInOut, NonLinearity, NormalOrUniform};
use tensor_core::tensor::nn::{self, BatchNormConfig, Init};
use tensor_core::{
    ConvParams, Error, LayerConfig, LayerId, LayerInfo, ModuleT, Network, OpsBackend, Result,
    ShapeProbe, Taps, Tensor, Var, VarBuilder,
};

use crate::pool::window_views;

/// How a layer's weight is initialised (biases excluded).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum WeightInit {
    /// PyTorch's default for `Conv2d` and `Linear` (`kaiming_uniform_(a = √5)`):
    /// `U(−1/√fan_in, 1/√fan_in)`.
    Torch,
    /// He et al. 2015, uniform, fan-in, ReLU gain (torchvision SqueezeNet).
    HeUniform,
    /// He et al. 2015, normal, fan-in, ReLU gain: `N(0, 2/fan_in)`.
    HeNormal,
    /// He et al. 2015, normal, fan-out, ReLU gain: `N(0, 2/fan_out)` (torchvision ResNet and
    /// MobileNetV2).
    HeNormalFanOut,
    /// `N(0, std²)`.
    Normal(f64),
}

/// Whether a layer has a bias and how it is initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum BiasInit {
    /// No bias (convs followed by batch norm).
    Absent,
    /// PyTorch's default: `U(−1/√fan_in, 1/√fan_in)`.
    Torch,
    /// Zeros.
    Zero,
}

impl WeightInit {
    fn init(self, fan_in: usize) -> Init {
        let kaiming = |dist, fan| Init::Kaiming {
            dist,
            fan,
            non_linearity: NonLinearity::ReLU,
        };
        match self {
            WeightInit::Torch => torch_uniform(fan_in),
            WeightInit::HeUniform => kaiming(NormalOrUniform::Uniform, FanInOut::FanIn),
            WeightInit::HeNormal => kaiming(NormalOrUniform::Normal, FanInOut::FanIn),
            WeightInit::HeNormalFanOut => kaiming(NormalOrUniform::Normal, FanInOut::FanOut),
            WeightInit::Normal(stdev) => Init::Randn { mean: 0.0, stdev },
        }
    }
}

fn torch_uniform(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// Rejects zero channel counts, kernels, strides or groups before candle sees them.
fn check_sizes(vb: &VarBuilder, sizes: &[usize]) -> Result<()> {
    if sizes.contains(&0) {
        return Err(Error::Geometry {
            reason: format!("layer {} has a zero size in {sizes:?}", vb.prefix()),
        });
    }
    Ok(())
}

/// A conv or FC layer that runs between taps.
#[derive(Clone, Debug)]
pub(crate) struct Layer {
    id: LayerId,
    config: LayerConfig,
    weight: Var,
    bias: Option<Var>,
    backend: OpsBackend,
}

impl Layer {
    /// Runs the layer between the taps: `pre` may replace the input (same shape only),
    /// `substitute` may compute the layer in its place, `post` sees the input actually consumed
    /// and the output before any activation. An FC layer takes
    /// a `[b, n]` or an unflattened `[b, c, h, w]` input and flattens it itself.
    pub(crate) fn forward(&self, xs: &Tensor, taps: &mut dyn Taps) -> Result<Tensor> {
        let input = match taps.pre(self.id, xs)? {
            None => xs.clone(),
            Some(replaced) => {
                if replaced.dims() != xs.dims() {
                    return Err(Error::Shape {
                        what: format!("pre-tap replacement of layer {} input", self.id),
                        expected: xs.dims().to_vec(),
                        got: replaced.dims().to_vec(),
                    });
                }
                replaced
            }
        };
        let ys = match taps.substitute(self.id, &input)? {
            Some(ys) => ys,
            None => self.apply(&input).map_err(|e| e.in_layer(self.id))?,
        };
        taps.post(self.id, &input, &ys)?;
        Ok(ys)
    }

    fn apply(&self, xs: &Tensor) -> Result<Tensor> {
        let w = self.weight.as_tensor();
        let ys = match self.config {
            LayerConfig::Conv { params, .. } => {
                let (_, c, _, _) = xs.dims4()?;
                let bias = self.bias.as_ref().map(Var::as_tensor);
                let groups = params.groups;
                if self.backend == OpsBackend::Candle && groups > 1 && groups == c && w.dim(0)? == c
                {
                    let ys = depthwise_conv2d(xs, w, params.padding.0, params.stride.0)?;
                    match bias {
                        None => ys,
                        Some(b) => ys.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
                    }
                } else {
                    ops::conv2d(xs, w, bias, params, self.backend)?
                }
            }
            LayerConfig::Fc { .. } => {
                let ys = xs.flatten_from(1)?.matmul(&w.t()?)?;
                match &self.bias {
                    None => ys,
                    Some(b) => ys.broadcast_add(b.as_tensor())?,
                }
            }
        };
        Ok(ys)
    }
}

/// A depthwise convolution (`groups == c == d`, weight `[c, 1, k, k]`) as a sum of `k²` shifted
/// views scaled per channel. Same result as `conv2d` with `groups = c`, which candle computes as
/// `c` separate convolutions and differentiates very slowly.
pub(crate) fn depthwise_conv2d(
    xs: &Tensor,
    w: &Tensor,
    padding: usize,
    stride: usize,
) -> Result<Tensor> {
    let (_, c, h, wd) = xs.dims4()?;
    let (_, _, kh, kw) = w.dims4()?;
    let xs = xs
        .pad_with_zeros(2, padding, padding)?
        .pad_with_zeros(3, padding, padding)?;
    let out_h = (h + 2 * padding - kh) / stride + 1;
    let out_w = (wd + 2 * padding - kw) / stride + 1;
    let views = window_views(&xs, (kh, kw), stride, (out_h, out_w))?;
    let mut acc: Option<Tensor> = None;
    for (k, view) in views.into_iter().enumerate() {
        let tap = w
            .narrow(2, k / kw, 1)?
            .narrow(3, k % kw, 1)?
            .reshape((1, c, 1, 1))?;
        let term = view.broadcast_mul(&tap)?;
        acc = Some(match acc {
            None => term,
            Some(acc) => (acc + term)?,
        });
    }
    acc.ok_or_else(|| Error::Geometry {
        reason: "depthwise convolution with an empty kernel".into(),
    })
}

/// Builds a model's prunable layers in forward order and derives their geometry.
#[derive(Debug, Default)]
pub(crate) struct LayerStack {
    built: Vec<(String, Layer)>,
    backend: OpsBackend,
}

impl LayerStack {
    /// An empty stack whose layers run on `backend`.
    pub(crate) fn new(backend: OpsBackend) -> Self {
        Self {
            built: Vec::new(),
            backend,
        }
    }

    /// Batch norm with PyTorch's defaults (eps 1e-5, momentum 0.1, γ = 1, β = 0) on the
    /// stack's backend.
    pub(crate) fn batch_norm(&self, channels: usize, vb: VarBuilder) -> Result<BatchNorm2d> {
        BatchNorm2d::new(channels, vb, self.backend)
    }

    /// A convolution from `c` to `d` channels named after `vb`'s prefix, with `weight`
    /// `[d, c/g, k_h, k_w]` and an optional `bias` `[d]`.
    pub(crate) fn conv(
        &mut self,
        vb: VarBuilder,
        (in_channels, out_channels): (usize, usize),
        params: ConvParams,
        weight: WeightInit,
        bias: BiasInit,
    ) -> Result<Layer> {
        let ConvParams { kernel, groups, .. } = params;
        check_sizes(
            &vb,
            &[
                in_channels,
                out_channels,
                kernel.0,
                kernel.1,
                params.stride.0,
                params.stride.1,
                groups,
            ],
        )?;
        if !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
            return Err(Error::Geometry {
                reason: format!(
                    "{in_channels} input and {out_channels} output channels are not divisible \
                     by {groups} groups"
                ),
            });
        }
        let fan_in = in_channels / groups * kernel.0 * kernel.1;
        let w = vb.get_with_hints(
            (out_channels, in_channels / groups, kernel.0, kernel.1),
            "weight",
            weight.init(fan_in),
        )?;
        let config = LayerConfig::Conv {
            out_channels,
            params,
        };
        self.push(vb, config, w, out_channels, fan_in, bias)
    }

    /// A fully connected layer named after `vb`'s prefix, with `weight` `[out, in]`.
    pub(crate) fn fc(
        &mut self,
        vb: VarBuilder,
        in_features: usize,
        out_features: usize,
        weight: WeightInit,
        bias: BiasInit,
    ) -> Result<Layer> {
        check_sizes(&vb, &[in_features, out_features])?;
        let w = vb.get_with_hints(
            (out_features, in_features),
            "weight",
            weight.init(in_features),
        )?;
        let config = LayerConfig::Fc { out_features };
        self.push(vb, config, w, out_features, in_features, bias)
    }

    fn push(
        &mut self,
        vb: VarBuilder,
        config: LayerConfig,
        weight: Tensor,
        out: usize,
        fan_in: usize,
        bias: BiasInit,
    ) -> Result<Layer> {
        let bias = match bias {
            BiasInit::Absent => None,
            BiasInit::Torch => Some(vb.get_with_hints(out, "bias", torch_uniform(fan_in))?),
            BiasInit::Zero => Some(vb.get_with_hints(out, "bias", Init::Const(0.0))?),
        };
        let layer = Layer {
            id: LayerId(self.built.len()),
            config,
            // A tensor that already is a variable (SeededInit, VarMap) gives back that variable;
            // any other (loaded weights) becomes a new one, which the forward pass then uses.
            weight: Var::from_tensor(&weight)?,
            bias: bias.as_ref().map(Var::from_tensor).transpose()?,
            backend: self.backend,
        };
        self.built.push((vb.prefix(), layer.clone()));
        Ok(layer)
    }

    /// Runs `net` once on a batch-1 zero input in evaluation mode (running statistics stay
    /// untouched) and derives every layer's geometry from the shapes it saw. Fails unless every
    /// layer ran exactly once, in construction order, and the logits are `[1, classes]`.
    pub(crate) fn finish(self, net: &dyn Network, vb: &VarBuilder) -> Result<Vec<LayerInfo>> {
        let [c, h, w] = net.input_shape();
        let xs = Tensor::zeros((1, c, h, w), vb.dtype(), vb.device())?;
        let mut probe = ShapeProbe::default();
        let logits = net.forward_tapped(&xs, false, &mut probe)?;
        if logits.dims() != [1, net.num_classes()] {
            return Err(Error::Shape {
                what: format!("{} logits", net.arch()),
                expected: vec![1, net.num_classes()],
                got: logits.dims().to_vec(),
            });
        }
        let order: Vec<usize> = probe.seen.iter().map(|(id, _, _)| id.0).collect();
        let expected: Vec<usize> = (0..self.built.len()).collect();
        if order != expected {
            return Err(Error::Shape {
                what: format!("{} layer call order", net.arch()),
                expected,
                got: order,
            });
        }
        self.built
            .into_iter()
            .zip(probe.seen)
            .map(|((name, layer), (id, input, output))| {
                let geometry = layer
                    .config
                    .geometry(&input, &output)
                    .map_err(|e| e.in_layer(id))?;
                Ok(LayerInfo {
                    id,
                    name,
                    kind: layer.config.kind(),
                    geometry,
                    weight: layer.weight,
                    bias: layer.bias,
                })
            })
            .collect()
    }
}

/// Batch norm over `[b, c, h, w]` with PyTorch's defaults: eps 1e-5, momentum 0.1, affine,
/// γ = 1 and β = 0, parameters `weight`, `bias`, `running_mean`, `running_var`.
///
/// PyTorch's (and candle-nn's) convention: `running ← (1 − m)·running + m·batch` with the
/// unbiased batch variance; training normalises with batch statistics. On the `Candle` backend
/// it is candle-nn's `BatchNorm`; on `Fast` one fused op (with the following ReLU where the model
/// has one) that updates the same running-statistics variables.
#[derive(Clone, Debug)]
pub(crate) struct BatchNorm2d {
    stock: nn::BatchNorm,
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    backend: OpsBackend,
}

impl BatchNorm2d {
    const EPS: f64 = 1e-5;
    const MOMENTUM: f64 = 0.1;

    fn new(channels: usize, vb: VarBuilder, backend: OpsBackend) -> Result<Self> {
        let stock = nn::batch_norm(channels, BatchNormConfig::default(), vb.clone())?;
        // The same names give back the variables candle-nn's layer holds (a variable-backed
        // builder), so both paths read and update one set of parameters.
        let get = |name, init| vb.get_with_hints(channels, name, init);
        Ok(Self {
            weight: get("weight", Init::Const(1.0))?,
            bias: get("bias", Init::Const(0.0))?,
            running_mean: Var::from_tensor(&get("running_mean", Init::Const(0.0))?)?,
            running_var: Var::from_tensor(&get("running_var", Init::Const(1.0))?)?,
            stock,
            backend,
        })
    }

    /// Batch norm; `train` normalises with batch statistics and updates the running ones.
    pub(crate) fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward(xs, train, false)
    }

    /// Batch norm followed by a ReLU (fused on the `Fast` backend).
    pub(crate) fn forward_relu(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward(xs, train, true)
    }

    fn forward(&self, xs: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        if self.backend == OpsBackend::Candle {
            let ys = self.stock.forward_t(xs, train)?;
            return Ok(if relu { ys.relu()? } else { ys });
        }
        if train {
            let (ys, stats) =
                ops::batch_norm_train(xs, &self.weight, &self.bias, Self::EPS, relu, self.backend)?;
            let m = Self::MOMENTUM;
            for (running, batch) in [
                (&self.running_mean, &stats.mean),
                (&self.running_var, &stats.var),
            ] {
                let updated = ((running.as_tensor() * (1.0 - m))? + (batch * m)?)?;
                running.set(&updated)?;
            }
            return Ok(ys);
        }
        let running = (self.running_mean.as_tensor(), self.running_var.as_tensor());
        ops::batch_norm_eval(
            xs,
            &self.weight,
            &self.bias,
            running,
            Self::EPS,
            relu,
            self.backend,
        )
    }
}

/// What every model holds besides its layers: the [`Network`] metadata.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub(crate) arch: String,
    pub(crate) input_shape: [usize; 3],
    pub(crate) num_classes: usize,
    pub(crate) layers: Vec<LayerInfo>,
    /// The backend of the activations and pooling a model runs between its layers.
    pub(crate) backend: OpsBackend,
}

impl Meta {
    /// Metadata with the layer list still empty (filled by [`LayerStack::finish`]).
    pub(crate) fn new(
        arch: impl Into<String>,
        input_shape: [usize; 3],
        num_classes: usize,
    ) -> Self {
        Self {
            arch: arch.into(),
            input_shape,
            num_classes,
            layers: Vec::new(),
            backend: OpsBackend::Fast,
        }
    }

    /// Checks that `xs` is a batch `[b, c, h, w]` of the model's input shape.
    pub(crate) fn check_input(&self, xs: &Tensor) -> Result<()> {
        let dims = xs.dims();
        if dims.len() != 4 || dims[1..] != self.input_shape {
            let b = dims.first().copied().unwrap_or(0);
            let [c, h, w] = self.input_shape;
            return Err(Error::Shape {
                what: format!("{} input batch", self.arch),
                expected: vec![b, c, h, w],
                got: dims.to_vec(),
            });
        }
        Ok(())
    }
}

/// Implements [`Network`] for a model struct with a `meta: Meta` field and a
/// `fn body(&self, xs: &Tensor, train: bool, taps: &mut dyn Taps) -> Result<Tensor>` method.
macro_rules! impl_network {
    ($ty:ty) => {
        impl tensor_core::Network for $ty {
            fn arch(&self) -> &str {
                &self.meta.arch
            }

            fn input_shape(&self) -> [usize; 3] {
                self.meta.input_shape
            }

            fn num_classes(&self) -> usize {
                self.meta.num_classes
            }

            fn layers(&self) -> &[tensor_core::LayerInfo] {
                &self.meta.layers
            }

            fn forward_tapped(
                &self,
                xs: &tensor_core::Tensor,
                train: bool,
                taps: &mut dyn tensor_core::Taps,
            ) -> tensor_core::Result<tensor_core::Tensor> {
                self.meta.check_input(xs)?;
                self.body(xs, train, taps)
            }
        }
    };
}

pub(crate) use impl_network;
