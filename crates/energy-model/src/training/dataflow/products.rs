//! The three GEMMs of one layer's training step written as the convolutions the Eyeriss model
//! maps (docs/training-energy-dataflow.md, "The three products of one conv layer").
//!
//! Layer: input X (N, C, H, W), weights Wt (M, C/g, R, S), stride U, padding P, output
//! Y (N, M, E, F), `g` groups. Each product is a [`ProductConv`]: a [`LayerGeometry`] priced at an
//! Eyeriss batch, a number of identical copies, the support that marks the zeros a dilation
//! inserts, and the operand whose data does not grow with the samples.
//!
//! | product | Eyeriss batch | geometry | zeros inserted by the stride |
//! |---|---|---|---|
//! | forward | N | the layer itself | none |
//! | input gradient | N | `conv([M, Ê, F̂], C, R×S, stride 1, padding (R−1−P, S−1−P), g groups)` | input density `E·F/(Ê·F̂)` |
//! | weight gradient | C/g, `g` copies | `conv([N, H̃, W̃], M/g, Ê×F̂, stride 1, padding P)` | weight density `E·F/(Ê·F̂)` |
//!
//! with the dilated extents `Ê = (E−1)·U + 1`, `F̂ = (F−1)·U + 1` and the used input extents
//! `H̃ = (E−1)·U + R − 2P`, `W̃ = (F−1)·U + S − 2P`.
//!
//! **Dilation, the equivalent geometry.** tensor-core's [`LayerGeometry`] has no dilation and no
//! zero insertion (its [`ConvParams`] fix dilation at 1). The doc's dilated operands (dY with
//! `U − 1` zeros inserted between its elements for the input gradient; dY as a filter with
//! dilation U for the weight gradient) are therefore written as dense geometries of the dilated
//! extent `Ê × F̂`, and the inserted zeros as the operand's density `E·F/(Ê·F̂)` (1 at stride 1,
//! where the geometry is exact). Under the Eyeriss sparsity rules (docs/energy-models.md B.7)
//! this gates the MACs on inserted zeros (so the MACs count only the entries that were not
//! inserted, as the doc's table says, provided zero gating is on, the default) and keeps them
//! out of DRAM (inserted zeros are never stored), while on chip they move like any value under
//! the default [`OnChipData::Dense`](crate::eyeriss::OnChipData::Dense) policy (the zeros are
//! inserted at the buffer).
//!
//! MAC counts: the weight gradient always has exactly the forward product's MACs
//! `N·M·(C/g)·R·S·E·F` (padded taps included, as the Eyeriss model counts them for the
//! forward). The input gradient has them exactly whenever the padding is "same" per dimension
//! (`R − 1 = 2P`, any stride: every ResNet and VGG conv); with other paddings it counts the
//! padded taps of its own padding `R − 1 − P` instead of the forward's, as Eyeriss does for any
//! convolution.
//!
//! **Used extent.** `H̃ = (E−1)·U + R − 2P` is the input extent the forward reads once the
//! padded rows the last window never reaches are dropped; `H̃ + 2P` padded rows are read, which
//! is the forward's count (a bottom padding row stands in for an input row when the rows the
//! stride skips sit inside the padding). With it the weight-gradient product's output is exactly
//! `R × S` and the input gradient's `H̃ × W̃` (`H × W` whenever U divides `H + 2P − R`).
//!
//! An FC layer (R = S = E = F = 1 with its producer's `c·h·w` inputs flattened) gives the three
//! products `(N×C_in)·(C_in×C_out)`, `(N×C_out)·(C_out×C_in)` and `(C_in×N)·(N×C_out)`, i.e.
//! `fc(C_in → M)` at batch N (the layer itself), `fc(M → C_in)` at batch N and `fc(N → M)` at
//! batch `C_in`.
//!
//! What cannot be written this way is returned as [`Expressed::Fallback`] with its reason: an
//! input gradient whose padding exceeds `R − 1` (the transposed convolution would need negative
//! padding) and a weight gradient whose used extent `H̃` is not positive.

use tensor_core::{ConvParams, Density, LayerGeometry, LayerKind, LayerSparsity, Operand, Support};

use crate::error::Result;

/// One GEMM of a layer's training step.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Product {
    /// Forward pass `Y = X ⊛ Wt` (ledger widths: activations, weights).
    Forward,
    /// Input gradient `dX` (ledger widths: output gradient, weights).
    InputGrad,
    /// Full-precision weight gradient `dWt`, also the PSG fallback (ledger widths: activations,
    /// output gradient).
    WeightGrad,
    /// PSG's low-precision weight-gradient predictor: the weight-gradient product at the
    /// predictor's widths.
    Predictor,
}

impl Product {
    /// Every product, in report order.
    pub const ALL: [Product; 4] = [
        Product::Forward,
        Product::InputGrad,
        Product::WeightGrad,
        Product::Predictor,
    ];
}

impl std::fmt::Display for Product {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Product::Forward => "forward",
            Product::InputGrad => "input gradient",
            Product::WeightGrad => "weight gradient",
            Product::Predictor => "weight-gradient predictor",
        })
    }
}

/// A product as one Eyeriss layer: `copies` identical instances of `geometry` at Eyeriss batch
/// `batch` with the support `sparsity`.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductConv {
    /// The convolution the product is (batch 1, like every [`LayerGeometry`]).
    pub geometry: LayerGeometry,
    /// Eyeriss batch: the samples for the forward and input gradient, the input channels per
    /// group for the weight gradient.
    pub batch: usize,
    /// Identical instances priced once and multiplied (the groups of a grouped weight
    /// gradient, whose groups share the samples as channels but not the batch).
    pub copies: usize,
    /// Dense, except for the zeros a stride-`U` dilation inserts (module docs).
    pub sparsity: LayerSparsity,
    /// The Eyeriss operand whose data does not grow with the samples (Wt for the forward and
    /// input gradient, the gradient dWt for the weight gradient): its traffic above the
    /// register files is paid per mapped batch, not per sample.
    pub per_step: Operand,
}

/// A product written as a convolution, or why it cannot be.
#[derive(Clone, Debug, PartialEq)]
pub enum Expressed {
    /// The equivalent convolution.
    Conv(Box<ProductConv>),
    /// No geometry expresses the product; the reason names what is missing.
    Fallback(String),
}

/// `product` of `layer` for `samples` samples (≥ 1) as a convolution.
pub fn product_conv(layer: &LayerGeometry, product: Product, samples: usize) -> Result<Expressed> {
    match product {
        Product::Forward => Ok(Expressed::Conv(Box::new(forward(layer, samples)))),
        Product::InputGrad => input_grad(layer, samples),
        Product::WeightGrad | Product::Predictor => weight_grad(layer, samples),
    }
}

/// The forward product of `layer` for `samples` samples: the layer itself.
pub fn forward(layer: &LayerGeometry, samples: usize) -> ProductConv {
    ProductConv {
        geometry: *layer,
        batch: samples,
        copies: 1,
        sparsity: LayerSparsity::dense(),
        per_step: Operand::Weight,
    }
}

/// Per dimension `(R, U, P, E)`: kernel, stride, padding, output extent.
fn dims(layer: &LayerGeometry) -> [(usize, usize, usize, usize); 2] {
    let (r, s) = layer.kernel();
    let (uh, uw) = layer.stride();
    let (ph, pw) = layer.padding();
    [(r, uh, ph, layer.out_h()), (s, uw, pw, layer.out_w())]
}

/// `(E − 1)·U + 1`, the extent of an `E`-long operand with `U − 1` zeros between its elements.
fn dilated(e: usize, u: usize) -> usize {
    (e - 1) * u + 1
}

/// The share of a dilated `Ê × F̂` operand that is real data, as a support.
fn inserted_zeros(layer: &LayerGeometry) -> Result<Support> {
    let [(_, uh, _, e), (_, uw, _, f)] = dims(layer);
    let real = (e * f) as u64;
    let all = (dilated(e, uh) * dilated(f, uw)) as u64;
    Ok(if real == all {
        Support::Dense
    } else {
        Support::Density(Density::from_counts(real, all)?)
    })
}

fn input_grad(layer: &LayerGeometry, samples: usize) -> Result<Expressed> {
    let (c, m, g) = (layer.in_channels(), layer.out_channels(), layer.groups());
    if layer.kind() == LayerKind::Fc {
        return Ok(Expressed::Conv(Box::new(ProductConv {
            geometry: LayerGeometry::fc(m, 1, 1, layer.in_features())?,
            batch: samples,
            copies: 1,
            sparsity: LayerSparsity::dense(),
            per_step: Operand::Weight,
        })));
    }
    let [(r, uh, ph, e), (s, uw, pw, f)] = dims(layer);
    if ph > r - 1 || pw > s - 1 {
        return Ok(Expressed::Fallback(format!(
            "padding {ph}x{pw} exceeds kernel {r}x{s} minus 1: the transposed convolution would \
             need negative padding"
        )));
    }
    let geometry = LayerGeometry::conv(
        [m, dilated(e, uh), dilated(f, uw)],
        c,
        ConvParams {
            kernel: (r, s),
            stride: (1, 1),
            padding: (r - 1 - ph, s - 1 - pw),
            groups: g,
        },
    )?;
    Ok(Expressed::Conv(Box::new(ProductConv {
        geometry,
        batch: samples,
        copies: 1,
        sparsity: LayerSparsity {
            inputs: inserted_zeros(layer)?,
            ..LayerSparsity::dense()
        },
        per_step: Operand::Weight,
    })))
}

fn weight_grad(layer: &LayerGeometry, samples: usize) -> Result<Expressed> {
    let (c, m, g) = (layer.in_channels(), layer.out_channels(), layer.groups());
    if layer.kind() == LayerKind::Fc {
        return Ok(Expressed::Conv(Box::new(ProductConv {
            geometry: LayerGeometry::fc(samples, 1, 1, m)?,
            batch: layer.in_features(),
            copies: 1,
            sparsity: LayerSparsity::dense(),
            per_step: Operand::Output,
        })));
    }
    let [(r, uh, ph, e), (s, uw, pw, f)] = dims(layer);
    // Used extent (E − 1)·U + R − 2P; positive unless the padding is most of the window.
    let used = |e: usize, u: usize, r: usize, p: usize| ((e - 1) * u + r).checked_sub(2 * p);
    let (Some(hh @ 1..), Some(ww @ 1..)) = (used(e, uh, r, ph), used(f, uw, s, pw)) else {
        return Ok(Expressed::Fallback(format!(
            "padding {ph}x{pw} covers the whole {r}x{s} window of a {e}x{f} output: no input \
             extent is left to convolve"
        )));
    };
    let geometry = LayerGeometry::conv(
        [samples, hh, ww],
        m / g,
        ConvParams {
            kernel: (dilated(e, uh), dilated(f, uw)),
            stride: (1, 1),
            padding: (ph, pw),
            groups: 1,
        },
    )?;
    debug_assert_eq!((geometry.out_h(), geometry.out_w()), (r, s));
    Ok(Expressed::Conv(Box::new(ProductConv {
        geometry,
        batch: c / g,
        copies: g,
        sparsity: LayerSparsity {
            weights: inserted_zeros(layer)?,
            ..LayerSparsity::dense()
        },
        per_step: Operand::Output,
    })))
}
