//! Layer geometry: the plain-data description of a conv or fully connected layer that energy
//! models price and compression methods constrain, and [`ConvParams`], the one description of how
//! a convolution slides over its input.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Position of a prunable layer in a network's ordered layer list (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LayerId(pub usize);

impl std::fmt::Display for LayerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What kind of weighted layer a geometry describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// 2-D convolution (grouped and depthwise included).
    Conv,
    /// Fully connected layer.
    Fc,
}

impl std::fmt::Display for LayerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LayerKind::Conv => "conv",
            LayerKind::Fc => "fc",
        })
    }
}

/// How a convolution slides over its input: kernel, stride and zero padding as `(rows, cols)`,
/// and channel groups. PyTorch's `Conv2d` defaults apart from the kernel (stride 1, no padding,
/// one group); dilation is always 1.
///
/// ```
/// use tensor_core::ConvParams;
/// let p = ConvParams::square(3).stride(2).padding(1);
/// assert_eq!((p.kernel, p.stride, p.padding, p.groups), ((3, 3), (2, 2), (1, 1), 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConvParams {
    /// Kernel `(rows, cols)`, each ≥ 1.
    pub kernel: (usize, usize),
    /// Stride `(rows, cols)`, each ≥ 1.
    pub stride: (usize, usize),
    /// Zero padding on each side `(rows, cols)`.
    pub padding: (usize, usize),
    /// Channel groups `g` ≥ 1 (`g = c = d` is depthwise).
    pub groups: usize,
}

impl ConvParams {
    /// A `k × k` kernel, stride 1, no padding, one group.
    pub fn square(k: usize) -> Self {
        Self {
            kernel: (k, k),
            stride: (1, 1),
            padding: (0, 0),
            groups: 1,
        }
    }

    /// The same with stride `s` in both directions.
    pub fn stride(self, s: usize) -> Self {
        Self {
            stride: (s, s),
            ..self
        }
    }

    /// The same with padding `p` on every side.
    pub fn padding(self, p: usize) -> Self {
        Self {
            padding: (p, p),
            ..self
        }
    }

    /// The same with `g` channel groups.
    pub fn groups(self, g: usize) -> Self {
        Self { groups: g, ..self }
    }

    /// The stride and padding as single numbers, when both directions agree (what the fast CPU
    /// kernels and candle's convolutions accept).
    pub fn symmetric(&self) -> Option<(usize, usize)> {
        (self.stride.0 == self.stride.1 && self.padding.0 == self.padding.1)
            .then_some((self.stride.0, self.padding.0))
    }

    /// Output size `(⌊(h + 2p − r)/ξ⌋ + 1, ...)` of an `h × w` input, or `None` when the kernel
    /// is larger than the padded input or a size is zero.
    pub fn output_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let one = |size: usize, k: usize, s: usize, p: usize| {
            let padded = p.checked_mul(2)?.checked_add(size)?;
            (k >= 1 && s >= 1 && padded >= k).then(|| (padded - k) / s + 1)
        };
        Some((
            one(h, self.kernel.0, self.stride.0, self.padding.0)?,
            one(w, self.kernel.1, self.stride.1, self.padding.1)?,
        ))
    }
}

/// Geometry of one conv or FC layer, for batch 1. Always valid: built through
/// [`LayerGeometry::conv`] or [`LayerGeometry::fc`] (deserialisation goes through the same
/// checks), so every count its methods return fits in a `usize`.
///
/// A fully connected layer keeps its producer's `c × h × w` as its input and is described as a
/// convolution whose kernel covers the whole input (`kernel = (h, w)`, stride 1, no padding, one
/// group), so that a row-stationary model can map AlexNet's `fc6` as a 6×6 conv over 256 channels
/// while an FC-only model uses [`LayerGeometry::in_features`]. A depthwise conv has
/// `groups == in_channels == out_channels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawGeometry", into = "RawGeometry")]
pub struct LayerGeometry {
    kind: LayerKind,
    in_channels: usize,
    in_h: usize,
    in_w: usize,
    out_channels: usize,
    conv: ConvParams,
}

/// The serialised form (flat, as records and tool files have always stored it); checked on the
/// way in.
#[derive(Serialize, Deserialize)]
struct RawGeometry {
    kind: LayerKind,
    in_channels: usize,
    in_h: usize,
    in_w: usize,
    out_channels: usize,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    groups: usize,
}

impl TryFrom<RawGeometry> for LayerGeometry {
    type Error = Error;
    fn try_from(r: RawGeometry) -> Result<Self> {
        let g = LayerGeometry {
            kind: r.kind,
            in_channels: r.in_channels,
            in_h: r.in_h,
            in_w: r.in_w,
            out_channels: r.out_channels,
            conv: ConvParams {
                kernel: r.kernel,
                stride: r.stride,
                padding: r.padding,
                groups: r.groups,
            },
        };
        g.validate()?;
        Ok(g)
    }
}

impl From<LayerGeometry> for RawGeometry {
    fn from(g: LayerGeometry) -> Self {
        RawGeometry {
            kind: g.kind,
            in_channels: g.in_channels,
            in_h: g.in_h,
            in_w: g.in_w,
            out_channels: g.out_channels,
            kernel: g.conv.kernel,
            stride: g.conv.stride,
            padding: g.conv.padding,
            groups: g.conv.groups,
        }
    }
}

impl LayerGeometry {
    /// A convolution of a `[c, h, w]` input to `out_channels` filters; checked.
    pub fn conv(input: [usize; 3], out_channels: usize, params: ConvParams) -> Result<Self> {
        let [in_channels, in_h, in_w] = input;
        let g = Self {
            kind: LayerKind::Conv,
            in_channels,
            in_h,
            in_w,
            out_channels,
            conv: params,
        };
        g.validate()?;
        Ok(g)
    }

    /// A fully connected layer fed by a `c × h × w` producer (`h = w = 1` for a flat vector).
    pub fn fc(in_channels: usize, in_h: usize, in_w: usize, out_features: usize) -> Result<Self> {
        let g = Self {
            kind: LayerKind::Fc,
            in_channels,
            in_h,
            in_w,
            out_channels: out_features,
            conv: ConvParams {
                kernel: (in_h, in_w),
                stride: (1, 1),
                padding: (0, 0),
                groups: 1,
            },
        };
        g.validate()?;
        Ok(g)
    }

    fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::Geometry { reason });
        let ConvParams {
            kernel,
            stride,
            padding,
            groups,
        } = self.conv;
        let sizes = [
            ("in_channels", self.in_channels),
            ("in_h", self.in_h),
            ("in_w", self.in_w),
            ("out_channels", self.out_channels),
            ("kernel rows", kernel.0),
            ("kernel cols", kernel.1),
            ("stride rows", stride.0),
            ("stride cols", stride.1),
            ("groups", groups),
        ];
        for (name, v) in sizes {
            if v == 0 {
                return bad(format!("{name} is 0"));
            }
        }
        if !self.in_channels.is_multiple_of(groups) || !self.out_channels.is_multiple_of(groups) {
            return bad(format!(
                "{} input and {} output channels are not divisible by {} groups",
                self.in_channels, self.out_channels, groups
            ));
        }
        // Checked: sizes come from files (MIT tool lines, checkpoints) and must not wrap.
        let padded = |size: usize, pad: usize| pad.checked_mul(2)?.checked_add(size);
        let (Some(ph), Some(pw)) = (padded(self.in_h, padding.0), padded(self.in_w, padding.1))
        else {
            return bad(format!(
                "padding {:?} of a {}x{} input overflows",
                padding, self.in_h, self.in_w
            ));
        };
        if kernel.0 > ph || kernel.1 > pw {
            return bad(format!(
                "kernel {}x{} is larger than the padded input {ph}x{pw}",
                kernel.0, kernel.1
            ));
        }
        if self.kind == LayerKind::Fc
            && (kernel != (self.in_h, self.in_w)
                || stride != (1, 1)
                || padding != (0, 0)
                || groups != 1)
        {
            return bad(
                "an FC layer's kernel must cover its whole input, stride 1, no padding, one group"
                    .into(),
            );
        }
        // Every count the methods below return must fit in a usize, so none of them can wrap
        // (or panic in a debug build) on a geometry that validated.
        let positions =
            ((ph - kernel.0) / stride.0 + 1).checked_mul((pw - kernel.1) / stride.1 + 1);
        let weights = self
            .out_channels
            .checked_mul(self.in_channels / groups)
            .and_then(|v| v.checked_mul(kernel.0))
            .and_then(|v| v.checked_mul(kernel.1));
        let counts = [
            self.in_channels
                .checked_mul(self.in_h)
                .and_then(|v| v.checked_mul(self.in_w)),
            positions.and_then(|p| p.checked_mul(self.out_channels)),
            weights.zip(positions).and_then(|(w, p)| w.checked_mul(p)),
        ];
        if counts.iter().any(Option::is_none) {
            return bad(format!(
                "{}x{}x{} input to {} channels with kernel {}x{}: the element or MAC count \
                 overflows",
                self.in_channels, self.in_h, self.in_w, self.out_channels, kernel.0, kernel.1
            ));
        }
        Ok(())
    }

    /// Conv or FC.
    pub fn kind(&self) -> LayerKind {
        self.kind
    }

    /// Input channels `c` (all groups together).
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Input height `h` (before padding).
    pub fn in_h(&self) -> usize {
        self.in_h
    }

    /// Input width `w` (before padding).
    pub fn in_w(&self) -> usize {
        self.in_w
    }

    /// Output channels `d` (filters, all groups together).
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Kernel, stride, padding and groups.
    pub fn conv_params(&self) -> ConvParams {
        self.conv
    }

    /// Kernel `(rows, cols)`.
    pub fn kernel(&self) -> (usize, usize) {
        self.conv.kernel
    }

    /// Stride `(rows, cols)`.
    pub fn stride(&self) -> (usize, usize) {
        self.conv.stride
    }

    /// Zero padding on each side `(rows, cols)`.
    pub fn padding(&self) -> (usize, usize) {
        self.conv.padding
    }

    /// Channel groups `g`.
    pub fn groups(&self) -> usize {
        self.conv.groups
    }

    /// Output height `h' = ⌊(h + 2p − r)/ξ⌋ + 1`.
    pub fn out_h(&self) -> usize {
        (self.in_h + 2 * self.conv.padding.0 - self.conv.kernel.0) / self.conv.stride.0 + 1
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        (self.in_w + 2 * self.conv.padding.1 - self.conv.kernel.1) / self.conv.stride.1 + 1
    }

    /// Output positions per channel `P = h'·w'` (1 for FC).
    pub fn out_positions(&self) -> usize {
        self.out_h() * self.out_w()
    }

    /// Input values per sample `c·h·w` (FC: `in_features`).
    pub fn in_features(&self) -> usize {
        self.in_channels * self.in_h * self.in_w
    }

    /// Output values per sample `d·h'·w'`.
    pub fn out_features(&self) -> usize {
        self.out_channels * self.out_positions()
    }

    /// Input channels seen by one filter `c/g`.
    pub fn channels_per_group(&self) -> usize {
        self.in_channels / self.conv.groups
    }

    /// Weights (biases excluded) `d·(c/g)·r_h·r_w`.
    pub fn weights(&self) -> usize {
        self.out_channels * self.channels_per_group() * self.conv.kernel.0 * self.conv.kernel.1
    }

    /// Dense multiply-accumulates per sample, padding taps included: `weights · P`.
    pub fn macs(&self) -> usize {
        self.weights() * self.out_positions()
    }

    /// Shape of the weight tensor `[d, c/g, r_h, r_w]` (conv) or `[d, c·h·w]` (FC).
    pub fn weight_shape(&self) -> Vec<usize> {
        match self.kind {
            LayerKind::Conv => vec![
                self.out_channels,
                self.channels_per_group(),
                self.conv.kernel.0,
                self.conv.kernel.1,
            ],
            LayerKind::Fc => vec![self.out_channels, self.in_features()],
        }
    }

    /// Whether this is a depthwise convolution (`g = c = d`).
    pub fn is_depthwise(&self) -> bool {
        self.kind == LayerKind::Conv
            && self.conv.groups > 1
            && self.conv.groups == self.in_channels
            && self.conv.groups == self.out_channels
    }
}
