//! Layer geometry: the plain-data description of a conv or fully connected layer that energy
//! models price and compression methods constrain.

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

/// Geometry of one conv or FC layer, for batch 1.
///
/// A fully connected layer keeps its producer's `c × h × w` as its input and is described as a
/// convolution whose kernel covers the whole input (`kernel = (h, w)`, stride 1, no padding, one
/// group), so that a row-stationary model can map AlexNet's `fc6` as a 6×6 conv over 256 channels
/// while an FC-only model uses [`LayerGeometry::in_features`]. A depthwise conv has
/// `groups == in_channels == out_channels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerGeometry {
    /// Conv or FC.
    pub kind: LayerKind,
    /// Input channels `c` (all groups together).
    pub in_channels: usize,
    /// Input height `h` (before padding).
    pub in_h: usize,
    /// Input width `w` (before padding).
    pub in_w: usize,
    /// Output channels `d` (filters, all groups together).
    pub out_channels: usize,
    /// Kernel `(rows, cols)`.
    pub kernel: (usize, usize),
    /// Stride `(rows, cols)`.
    pub stride: (usize, usize),
    /// Zero padding on each side `(rows, cols)`.
    pub padding: (usize, usize),
    /// Channel groups `g`; `in_channels` and `out_channels` are multiples of it.
    pub groups: usize,
}

impl LayerGeometry {
    /// A convolution with square-or-not kernel, stride and padding; checked.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        in_channels: usize,
        in_h: usize,
        in_w: usize,
        out_channels: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        groups: usize,
    ) -> Result<Self> {
        let g = Self {
            kind: LayerKind::Conv,
            in_channels,
            in_h,
            in_w,
            out_channels,
            kernel,
            stride,
            padding,
            groups,
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
            kernel: (in_h, in_w),
            stride: (1, 1),
            padding: (0, 0),
            groups: 1,
        };
        g.validate()?;
        Ok(g)
    }

    /// Checks the invariants every constructor promises.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::Geometry { reason });
        let sizes = [
            ("in_channels", self.in_channels),
            ("in_h", self.in_h),
            ("in_w", self.in_w),
            ("out_channels", self.out_channels),
            ("kernel rows", self.kernel.0),
            ("kernel cols", self.kernel.1),
            ("stride rows", self.stride.0),
            ("stride cols", self.stride.1),
            ("groups", self.groups),
        ];
        for (name, v) in sizes {
            if v == 0 {
                return bad(format!("{name} is 0"));
            }
        }
        if !self.in_channels.is_multiple_of(self.groups)
            || !self.out_channels.is_multiple_of(self.groups)
        {
            return bad(format!(
                "{} input and {} output channels are not divisible by {} groups",
                self.in_channels, self.out_channels, self.groups
            ));
        }
        // Checked: sizes come from files (MIT tool lines, checkpoints) and must not wrap.
        let padded = |size: usize, pad: usize| pad.checked_mul(2)?.checked_add(size);
        let (Some(ph), Some(pw)) = (
            padded(self.in_h, self.padding.0),
            padded(self.in_w, self.padding.1),
        ) else {
            return bad(format!(
                "padding {:?} of a {}x{} input overflows",
                self.padding, self.in_h, self.in_w
            ));
        };
        if self.kernel.0 > ph || self.kernel.1 > pw {
            return bad(format!(
                "kernel {}x{} is larger than the padded input {ph}x{pw}",
                self.kernel.0, self.kernel.1
            ));
        }
        if self.kind == LayerKind::Fc
            && (self.kernel != (self.in_h, self.in_w)
                || self.stride != (1, 1)
                || self.padding != (0, 0)
                || self.groups != 1)
        {
            return bad(
                "an FC layer's kernel must cover its whole input, stride 1, no padding, one group"
                    .into(),
            );
        }
        // Every count the methods below return must fit in a usize, so none of them can wrap
        // (or panic in a debug build) on a geometry that validated.
        let positions = ((ph - self.kernel.0) / self.stride.0 + 1)
            .checked_mul((pw - self.kernel.1) / self.stride.1 + 1);
        let weights = self
            .out_channels
            .checked_mul(self.in_channels / self.groups)
            .and_then(|v| v.checked_mul(self.kernel.0))
            .and_then(|v| v.checked_mul(self.kernel.1));
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
                self.in_channels,
                self.in_h,
                self.in_w,
                self.out_channels,
                self.kernel.0,
                self.kernel.1
            ));
        }
        Ok(())
    }

    /// Output height `h' = ⌊(h + 2p − r)/ξ⌋ + 1`.
    pub fn out_h(&self) -> usize {
        (self.in_h + 2 * self.padding.0 - self.kernel.0) / self.stride.0 + 1
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        (self.in_w + 2 * self.padding.1 - self.kernel.1) / self.stride.1 + 1
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
        self.in_channels / self.groups
    }

    /// Weights (biases excluded) `d·(c/g)·r_h·r_w`.
    pub fn weights(&self) -> usize {
        self.out_channels * self.channels_per_group() * self.kernel.0 * self.kernel.1
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
                self.kernel.0,
                self.kernel.1,
            ],
            LayerKind::Fc => vec![self.out_channels, self.in_features()],
        }
    }

    /// Whether this is a depthwise convolution (`g = c = d`).
    pub fn is_depthwise(&self) -> bool {
        self.kind == LayerKind::Conv
            && self.groups > 1
            && self.groups == self.in_channels
            && self.groups == self.out_channels
    }
}
