//! The [`Network`] trait: what compression and training methods need to see of a model, without
//! knowing its architecture.

use crate::energy::LayerWorkload;
use crate::error::{Error, Result};
use crate::geometry::{ConvParams, LayerGeometry, LayerId, LayerKind};
use crate::tensor::{Tensor, Var};

/// A prunable (conv or FC) layer of a network.
#[derive(Clone, Debug)]
pub struct LayerInfo {
    /// Position in the ordered layer list.
    pub id: LayerId,
    /// Name, equal to the PyTorch `state_dict` prefix (`features.0`, `layer1.0.conv1`).
    pub name: String,
    /// Conv or FC.
    pub kind: LayerKind,
    /// Geometry for batch 1, derived from a real forward pass.
    pub geometry: LayerGeometry,
    /// The weight variable (`[d, c/g, r_h, r_w]` or `[d, in]`).
    pub weight: Var,
    /// The bias variable, if the layer has one.
    pub bias: Option<Var>,
}

/// Hooks around every prunable layer of a forward pass.
///
/// `pre` may replace the layer's input (input masking: `x ↦ x ⊙ M`); `substitute` may compute
/// the layer in its place (a quantised convolution with predicted sign gradients, reading the
/// layer's own weight from [`LayerInfo::weight`]); `post` sees the input the layer actually
/// consumed and its output before any activation (least-squares data, activation densities,
/// geometry extraction). An FC layer's input is passed unflattened when its producer is a
/// feature map, so taps see the producer's `c × h × w`.
pub trait Taps {
    /// Called before layer `id` runs; returning `Some` replaces its input.
    fn pre(&mut self, id: LayerId, input: &Tensor) -> Result<Option<Tensor>> {
        let _ = (id, input);
        Ok(None)
    }

    /// Called in place of layer `id`'s own computation on `input` (after `pre`); returning
    /// `Some` makes that the layer's output.
    fn substitute(&mut self, id: LayerId, input: &Tensor) -> Result<Option<Tensor>> {
        let _ = (id, input);
        Ok(None)
    }

    /// Called after layer `id` ran with its (possibly replaced) input and its output.
    fn post(&mut self, id: LayerId, input: &Tensor, output: &Tensor) -> Result<()> {
        let _ = (id, input, output);
        Ok(())
    }
}

/// Taps that do nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTaps;

impl Taps for NoTaps {}

/// Records the input and output dimensions every layer saw (for geometry extraction).
#[derive(Clone, Debug, Default)]
pub struct ShapeProbe {
    /// `(layer, input dims, output dims)` in call order.
    pub seen: Vec<(LayerId, Vec<usize>, Vec<usize>)>,
}

impl Taps for ShapeProbe {
    fn post(&mut self, id: LayerId, input: &Tensor, output: &Tensor) -> Result<()> {
        self.seen
            .push((id, input.dims().to_vec(), output.dims().to_vec()));
        Ok(())
    }
}

/// The static configuration of a prunable layer, known before any input size is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerConfig {
    /// A convolution.
    Conv {
        /// Filters `d`.
        out_channels: usize,
        /// Kernel, stride, padding and groups.
        params: ConvParams,
    },
    /// A fully connected layer.
    Fc {
        /// Output features.
        out_features: usize,
    },
}

impl LayerConfig {
    /// The layer kind.
    pub fn kind(&self) -> LayerKind {
        match self {
            LayerConfig::Conv { .. } => LayerKind::Conv,
            LayerConfig::Fc { .. } => LayerKind::Fc,
        }
    }

    /// Geometry from the batch-1 input and output dimensions a forward pass observed; the output
    /// must agree with what the configuration predicts.
    pub fn geometry(&self, input: &[usize], output: &[usize]) -> Result<LayerGeometry> {
        let (g, expected) = match (*self, input) {
            (
                LayerConfig::Conv {
                    out_channels,
                    params,
                },
                &[1, c, h, w],
            ) => {
                let g = LayerGeometry::conv([c, h, w], out_channels, params)?;
                (g, vec![1, out_channels, g.out_h(), g.out_w()])
            }
            (LayerConfig::Fc { out_features }, &[1, c, h, w]) => (
                LayerGeometry::fc(c, h, w, out_features)?,
                vec![1, out_features],
            ),
            (LayerConfig::Fc { out_features }, &[1, n]) => (
                LayerGeometry::fc(n, 1, 1, out_features)?,
                vec![1, out_features],
            ),
            _ => {
                return Err(Error::Shape {
                    what: format!("batch-1 {} layer input", self.kind()),
                    expected: match self.kind() {
                        LayerKind::Conv => vec![1, 0, 0, 0],
                        LayerKind::Fc => vec![1, 0],
                    },
                    got: input.to_vec(),
                });
            }
        };
        if output != expected.as_slice() {
            return Err(Error::Shape {
                what: format!("{} layer output", self.kind()),
                expected,
                got: output.to_vec(),
            });
        }
        Ok(g)
    }
}

/// A CNN whose weighted layers can be enumerated, priced and tapped.
///
/// Object safe: methods take `&dyn Network`. Every implementation keeps its layers in forward
/// order, with [`LayerInfo::geometry`] derived from a real batch-1 forward pass.
pub trait Network: Send + Sync {
    /// Architecture name (`lenet5`, `resnet20`, ...).
    fn arch(&self) -> &str;

    /// Expected input `[c, h, w]` for one sample.
    fn input_shape(&self) -> [usize; 3];

    /// Number of output classes.
    fn num_classes(&self) -> usize;

    /// Prunable layers in forward order.
    fn layers(&self) -> &[LayerInfo];

    /// Forward pass with taps around every prunable layer; `train` selects batch statistics and
    /// dropout.
    fn forward_tapped(&self, xs: &Tensor, train: bool, taps: &mut dyn Taps) -> Result<Tensor>;

    /// Forward pass returning logits `[b, classes]`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_tapped(xs, train, &mut NoTaps)
    }

    /// Dense 16-bit workloads of every layer, for pricing.
    fn workloads(&self) -> Vec<LayerWorkload> {
        self.layers()
            .iter()
            .map(|l| LayerWorkload::dense(l.id, l.name.clone(), l.geometry))
            .collect()
    }
}

/// A network built as a stem, a chain of residual blocks `x ↦ merge(F_i(x), S_i(x))` and a head:
/// what methods that decide per block and per sample whether a block runs (selective layer
/// update, stochastic depth) drive one block at a time. Running the stem, every block and the
/// head in order is the network's own forward pass.
pub trait ResidualNetwork: Network {
    /// Residual blocks.
    fn num_blocks(&self) -> usize;

    /// Output channels of block `block`.
    fn block_channels(&self, block: usize) -> usize;

    /// Input to the features the first block reads.
    fn stem(&self, xs: &Tensor, train: bool, taps: &mut dyn Taps) -> Result<Tensor>;

    /// The residual branch `F_i(x)` of block `block`, before the merge.
    fn residual(
        &self,
        block: usize,
        xs: &Tensor,
        train: bool,
        taps: &mut dyn Taps,
    ) -> Result<Tensor>;

    /// The shortcut `S_i(x)` of block `block`: the identity or a projection.
    fn shortcut(
        &self,
        block: usize,
        xs: &Tensor,
        train: bool,
        taps: &mut dyn Taps,
    ) -> Result<Tensor>;

    /// The block's output from its two branches (`ReLU(F + S)` for a basic block).
    fn merge(&self, residual: &Tensor, shortcut: &Tensor) -> Result<Tensor>;

    /// The last block's output to logits `[b, classes]`.
    fn head(&self, xs: &Tensor, taps: &mut dyn Taps) -> Result<Tensor>;
}
