//! Exact counts over operand supports: the unfolded-input nonzeros `U`, per-row input counts and
//! the exact number of MACs that meet a nonzero weight and a real, unmasked input.
//!
//! Everything here works per tap: for each input channel and kernel position, how many output
//! positions read a real (not padding) and unmasked input through it. With that table `U` is its
//! sum and the exact MAC count is a weighted sum over the nonzero weights, so nothing is ever
//! materialised at the size of the im2col matrix.

use tensor_core::{Bitmap, LayerGeometry, LayerKind, Operand, Support};

use crate::error::{Error, Result};

/// An input support reduced to the two forms the exact counts distinguish.
#[derive(Clone, Copy, Debug)]
pub enum InputSupport<'a> {
    /// Every input position is nonzero (no mask; ReLU zeros are not modelled).
    Dense,
    /// Only the set positions of a `c × h × w` mask are nonzero.
    Mask(&'a Bitmap),
}

impl<'a> InputSupport<'a> {
    /// Checks `support` against the layer's input shape `c × h × w`. A density strictly between
    /// 0 and 1 carries no position information, so `model` cannot count taps from it.
    pub fn of(model: &'static str, geometry: &LayerGeometry, support: &'a Support) -> Result<Self> {
        match support {
            Support::Dense => Ok(Self::Dense),
            Support::Density(d) if d.get() == 1.0 => Ok(Self::Dense),
            Support::Density(_) => Err(Error::Support {
                model,
                kind: geometry.kind(),
                operand: Operand::Input,
                given: "density",
                reason: "input sparsity must be a c x h x w mask bitmap (or dense)",
            }),
            Support::Bitmap(b) => {
                if b.len() != geometry.in_features() {
                    return Err(tensor_core::Error::Shape {
                        what: "input mask".into(),
                        expected: vec![geometry.in_channels(), geometry.in_h(), geometry.in_w()],
                        got: b.shape().to_vec(),
                    }
                    .into());
                }
                Ok(Self::Mask(b))
            }
        }
    }

    /// Nonzero input positions `‖X‖₀`.
    pub fn nonzeros(&self, geometry: &LayerGeometry) -> u64 {
        match self {
            Self::Dense => geometry.in_features() as u64,
            Self::Mask(b) => b.count_ones(),
        }
    }

    /// Nonzero values per input row, summed over channels and columns (length `h`).
    pub fn row_counts(&self, geometry: &LayerGeometry) -> Vec<u64> {
        let (c, h, w) = (geometry.in_channels(), geometry.in_h(), geometry.in_w());
        match self {
            Self::Dense => vec![(c * w) as u64; h],
            Self::Mask(b) => {
                let mut rows = vec![0u64; h];
                for ch in 0..c {
                    for (y, row) in rows.iter_mut().enumerate() {
                        let base = (ch * h + y) * w;
                        *row += (0..w).filter(|&x| b.get(base + x)).count() as u64;
                    }
                }
                rows
            }
        }
    }
}

/// For one kernel offset along one axis: how many output coordinates read an in-image input
/// through it (`0 ≤ o·stride − pad + k < size`).
fn axis_hits(size: usize, out: usize, kernel: usize, stride: usize, pad: usize) -> Vec<u64> {
    (0..kernel)
        .map(|k| {
            (0..out)
                .filter(|&o| {
                    let i = (o * stride + k) as isize - pad as isize;
                    i >= 0 && (i as usize) < size
                })
                .count() as u64
        })
        .collect()
}

/// Tap-hit table of a conv layer, laid out `[c][r_h][r_w]`: entry `(ch, kh, kw)` counts the output
/// positions whose tap `(kh, kw)` reads a real, unmasked input of channel `ch`.
pub fn tap_hits(geometry: &LayerGeometry, inputs: InputSupport<'_>) -> Vec<u64> {
    let g = geometry;
    let (kh_n, kw_n) = g.kernel();
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut hits = Vec::with_capacity(g.in_channels() * kh_n * kw_n);
    match inputs {
        InputSupport::Dense => {
            // Separable: a tap hits the image iff its row and its column do.
            let rows = axis_hits(g.in_h(), oh, kh_n, g.stride().0, g.padding().0);
            let cols = axis_hits(g.in_w(), ow, kw_n, g.stride().1, g.padding().1);
            for _ in 0..g.in_channels() {
                for &rh in &rows {
                    hits.extend(cols.iter().map(|&cw| rh * cw));
                }
            }
        }
        InputSupport::Mask(mask) => {
            let (h, w) = (g.in_h() as isize, g.in_w() as isize);
            for ch in 0..g.in_channels() {
                let plane = ch * g.in_h() * g.in_w();
                for kh in 0..kh_n {
                    for kw in 0..kw_n {
                        let mut n = 0u64;
                        for oy in 0..oh {
                            let y = (oy * g.stride().0 + kh) as isize - g.padding().0 as isize;
                            if y < 0 || y >= h {
                                continue;
                            }
                            for ox in 0..ow {
                                let x = (ox * g.stride().1 + kw) as isize - g.padding().1 as isize;
                                if x >= 0 && x < w && mask.get(plane + (y * w + x) as usize) {
                                    n += 1;
                                }
                            }
                        }
                        hits.push(n);
                    }
                }
            }
        }
    }
    hits
}

/// `U`: nonzeros of the im2col matrix of the input support, padding taps excluded
/// (docs/energy-models.md A.2). Dense: `c·T_h·T_w`.
pub fn unfolded_nonzeros(geometry: &LayerGeometry, inputs: InputSupport<'_>) -> u64 {
    tap_hits(geometry, inputs).iter().sum()
}

/// Exact MACs of a conv layer: the number of (nonzero weight, real unmasked input) pairs that
/// meet, with the layer's stride, padding and groups. A density strictly between 0 and 1 does
/// not say which weights survive, so it is an error here.
pub fn exact_conv_macs(
    model: &'static str,
    geometry: &LayerGeometry,
    weights: &Support,
    inputs: InputSupport<'_>,
) -> Result<u64> {
    let g = geometry;
    debug_assert_eq!(g.kind(), LayerKind::Conv);
    let hits = tap_hits(g, inputs);
    let taps = g.kernel().0 * g.kernel().1;
    let cpg = g.channels_per_group();
    let dpg = g.out_channels() / g.groups();
    // Hits of each group's channel block, one slice of `cpg·taps` entries per group.
    let group_hits = |grp: usize| &hits[grp * cpg * taps..(grp + 1) * cpg * taps];
    match weights {
        Support::Dense => Ok(dpg as u64 * hits.iter().sum::<u64>()),
        Support::Density(d) if d.get() == 1.0 => Ok(dpg as u64 * hits.iter().sum::<u64>()),
        Support::Density(d) if d.get() == 0.0 => Ok(0),
        Support::Density(_) => Err(Error::Support {
            model,
            kind: g.kind(),
            operand: Operand::Weight,
            given: "density",
            reason: "the exact evaluator needs a weight bitmap (or dense weights)",
        }),
        Support::Bitmap(b) => {
            if b.len() != g.weights() {
                return Err(tensor_core::Error::Shape {
                    what: "weight support".into(),
                    expected: g.weight_shape(),
                    got: b.shape().to_vec(),
                }
                .into());
            }
            let per_filter = cpg * taps;
            let mut total = 0u64;
            for o in 0..g.out_channels() {
                let gh = group_hits(o / dpg);
                let base = o * per_filter;
                for (j, &hit) in gh.iter().enumerate() {
                    if b.get(base + j) {
                        total += hit;
                    }
                }
            }
            Ok(total)
        }
    }
}
