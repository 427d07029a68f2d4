//! The per-layer text format of the MIT energy-estimation tool (docs/energy-models.md B.9), read and
//! written, for exchanging layer tables.
//!
//! Yang, Chen, Emer, Sze, "A Method to Estimate the Energy Consumption of Deep Neural Networks",
//! Asilomar 2017, describes the web tool; its input is one line per conv or FC layer:
//!
//! ```text
//! index  ifmap(h w c maps zeros bits)  filter(h w c filters zeros bits)  ofmap(h w c maps zeros bits)  sy sx  top bottom left right
//! ```
//!
//! 25 whitespace-separated integers, `index` counting layers from 1. The filter's channel count is
//! per group, so a grouped conv has `groups = ifmap channels / filter channels`. A layer whose
//! ofmap is 1×1 and whose filter covers the unpadded ifmap is read as an FC layer. Zero counts map
//! to densities (`1 − zeros/entries`) and bit-widths to [`Precision`]. Malformed input is an
//! [`Error::ToolFormat`] naming the line and the field.

use serde::{Deserialize, Serialize};
use tensor_core::{
    Density, LayerGeometry, LayerId, LayerKind, LayerSparsity, LayerWorkload, Precision, Support,
};

use crate::error::{Error, Result};
use tensor_core::ConvParams;

/// One operand block of a line: `height width channels maps zero_entries bitwidth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ToolTensor {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Channels (per group for the filter).
    pub channels: usize,
    /// Feature maps (ifmap, ofmap: images, 1 by default) or filters (filter).
    pub maps: usize,
    /// Entries that are zero.
    pub zero_entries: u64,
    /// Bits per entry.
    pub bitwidth: u8,
}

impl ToolTensor {
    /// `height·width·channels·maps`, saturating at `u64::MAX` (never reached by a parsed line:
    /// [`parse`] rejects sizes whose product overflows).
    pub fn entries(&self) -> u64 {
        self.checked_entries().unwrap_or(u64::MAX)
    }

    fn checked_entries(&self) -> Option<u64> {
        [self.height, self.width, self.channels, self.maps]
            .into_iter()
            .try_fold(1u64, |n, v| n.checked_mul(u64::try_from(v).ok()?))
    }

    /// Nonzero fraction as a support: dense when nothing is zero.
    pub fn support(&self) -> Result<Support> {
        if self.zero_entries == 0 {
            return Ok(Support::Dense);
        }
        let n = self.entries();
        Ok(Support::Density(Density::from_counts(
            n - self.zero_entries.min(n),
            n,
        )?))
    }
}

/// One layer line of the tool's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ToolLayer {
    /// 1-based layer number, equal to its position in the file.
    pub index: usize,
    /// Input feature map.
    pub ifmap: ToolTensor,
    /// Filters.
    pub filter: ToolTensor,
    /// Output feature map.
    pub ofmap: ToolTensor,
    /// `(sy, sx)`.
    pub stride: (usize, usize),
    /// `[top, bottom, left, right]`.
    pub padding: [usize; 4],
}

const FIELDS: [&str; 6] = [
    "height",
    "width",
    "channels",
    "maps",
    "zero_entries",
    "bitwidth",
];

fn bad(line: usize, field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::ToolFormat {
        line,
        field: field.into(),
        reason: reason.into(),
    }
}

/// Zero entries of `n` under a support.
fn zeros(support: &Support, n: usize) -> Result<u64> {
    Ok(n as u64 - support.nonzeros(n)?)
}

impl ToolLayer {
    /// The line for one workload at position `index` (1-based): maps = 1, zero counts from the
    /// supports (densities rounded to whole entries), bit-widths from the precision.
    pub fn from_workload(index: usize, workload: &LayerWorkload) -> Result<Self> {
        let g = &workload.geometry;
        let p = workload.precision;
        let s = &workload.sparsity;
        Ok(Self {
            index,
            ifmap: ToolTensor {
                height: g.in_h(),
                width: g.in_w(),
                channels: g.in_channels(),
                maps: 1,
                zero_entries: zeros(&s.inputs, g.in_features())?,
                bitwidth: p.input_bits,
            },
            filter: ToolTensor {
                height: g.kernel().0,
                width: g.kernel().1,
                channels: g.channels_per_group(),
                maps: g.out_channels(),
                zero_entries: zeros(&s.weights, g.weights())?,
                bitwidth: p.weight_bits,
            },
            ofmap: ToolTensor {
                height: g.out_h(),
                width: g.out_w(),
                channels: g.out_channels(),
                maps: 1,
                zero_entries: zeros(&s.outputs, g.out_features())?,
                bitwidth: p.output_bits,
            },
            stride: g.stride(),
            padding: [g.padding().0, g.padding().0, g.padding().1, g.padding().1],
        })
    }

    /// The layer's geometry; inconsistent sizes are errors naming the field.
    pub fn geometry(&self) -> Result<LayerGeometry> {
        let line = self.index;
        let [top, bottom, left, right] = self.padding;
        if top != bottom {
            return Err(bad(
                line,
                "padding.bottom",
                format!("asymmetric padding {top}/{bottom} is not supported"),
            ));
        }
        if left != right {
            return Err(bad(
                line,
                "padding.right",
                format!("asymmetric padding {left}/{right} is not supported"),
            ));
        }
        let (i, f, o) = (&self.ifmap, &self.filter, &self.ofmap);
        if f.channels == 0 || !i.channels.is_multiple_of(f.channels) {
            return Err(bad(
                line,
                "filter.channels",
                format!(
                    "{} does not divide the ifmap's {} channels",
                    f.channels, i.channels
                ),
            ));
        }
        let groups = i.channels / f.channels;
        if o.channels != f.maps {
            return Err(bad(
                line,
                "ofmap.channels",
                format!("{} but there are {} filters", o.channels, f.maps),
            ));
        }
        let fc = o.height == 1
            && o.width == 1
            && (f.height, f.width) == (i.height, i.width)
            && self.padding == [0; 4]
            && groups == 1;
        let g = if fc {
            LayerGeometry::fc(i.channels, i.height, i.width, f.maps)
        } else {
            LayerGeometry::conv(
                [i.channels, i.height, i.width],
                f.maps,
                ConvParams {
                    kernel: (f.height, f.width),
                    stride: self.stride,
                    padding: (top, left),
                    groups,
                },
            )
        }
        .map_err(|e| bad(line, "filter", e.to_string()))?;
        if (g.out_h(), g.out_w()) != (o.height, o.width) {
            return Err(bad(
                line,
                "ofmap.height",
                format!(
                    "{}x{} but the ifmap, filter, stride and padding give {}x{}",
                    o.height,
                    o.width,
                    g.out_h(),
                    g.out_w()
                ),
            ));
        }
        Ok(g)
    }

    /// Operand widths.
    pub fn precision(&self) -> Result<Precision> {
        Precision::new(
            self.filter.bitwidth,
            self.ifmap.bitwidth,
            self.ofmap.bitwidth,
        )
        .map_err(|e| bad(self.index, "bitwidth", e.to_string()))
    }

    /// Densities from the zero counts.
    pub fn sparsity(&self) -> Result<LayerSparsity> {
        let s = |t: &ToolTensor, what: &str| {
            t.support()
                .map_err(|e| bad(self.index, format!("{what}.zero_entries"), e.to_string()))
        };
        Ok(LayerSparsity {
            weights: s(&self.filter, "filter")?,
            inputs: s(&self.ifmap, "ifmap")?,
            outputs: s(&self.ofmap, "ofmap")?,
        })
    }

    /// The workload this line describes, named `name`, with id `index − 1`.
    pub fn to_workload(&self, name: impl Into<String>) -> Result<LayerWorkload> {
        Ok(LayerWorkload {
            id: LayerId(self.index.saturating_sub(1)),
            name: name.into(),
            geometry: self.geometry()?,
            sparsity: self.sparsity()?,
            precision: self.precision()?,
        })
    }

    /// Whether the line describes an FC layer.
    pub fn kind(&self) -> Result<LayerKind> {
        Ok(self.geometry()?.kind())
    }
}

impl std::fmt::Display for ToolLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.index)?;
        for t in [&self.ifmap, &self.filter, &self.ofmap] {
            write!(
                f,
                " {} {} {} {} {} {}",
                t.height, t.width, t.channels, t.maps, t.zero_entries, t.bitwidth
            )?;
        }
        let [top, bottom, left, right] = self.padding;
        write!(
            f,
            " {} {} {top} {bottom} {left} {right}",
            self.stride.0, self.stride.1
        )
    }
}

/// Renders layers one per line, in order.
pub fn write(layers: &[ToolLayer]) -> String {
    layers.iter().map(|l| format!("{l}\n")).collect()
}

/// The lines for a list of workloads, numbered from 1.
pub fn from_workloads(workloads: &[LayerWorkload]) -> Result<Vec<ToolLayer>> {
    workloads
        .iter()
        .enumerate()
        .map(|(i, w)| ToolLayer::from_workload(i + 1, w))
        .collect()
}

/// Parses a tool file. Blank lines are skipped; every other line must hold 25 integers, its index
/// must count the layers from 1, zero counts must not exceed the entries, bit-widths lie in
/// `1..=64`, strides are at least 1, and the sizes must describe a valid layer.
pub fn parse(text: &str) -> Result<Vec<ToolLayer>> {
    let mut layers = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let tokens: Vec<&str> = raw.split_whitespace().collect();
        if tokens.is_empty() {
            continue;
        }
        if tokens.len() != 25 {
            return Err(bad(
                line,
                "line",
                format!("expected 25 fields, found {}", tokens.len()),
            ));
        }
        let num = |i: usize, field: &str| -> Result<u64> {
            tokens[i].parse::<u64>().map_err(|_| {
                bad(
                    line,
                    field,
                    format!("expected a non-negative integer, found {:?}", tokens[i]),
                )
            })
        };
        let size = |i: usize, field: &str| -> Result<usize> {
            usize::try_from(num(i, field)?).map_err(|_| bad(line, field, "too large"))
        };
        let index = size(0, "index")?;
        if index != layers.len() + 1 {
            return Err(bad(
                line,
                "index",
                format!("{index} but this is layer {}", layers.len() + 1),
            ));
        }
        let mut tensors = Vec::with_capacity(3);
        for (b, block) in ["ifmap", "filter", "ofmap"].into_iter().enumerate() {
            let at = 1 + 6 * b;
            let field = |k: usize| format!("{block}.{}", FIELDS[k]);
            let bits = num(at + 5, &field(5))?;
            if !(1..=64).contains(&bits) {
                return Err(bad(line, field(5), format!("{bits} is not in 1..=64")));
            }
            let t = ToolTensor {
                height: size(at, &field(0))?,
                width: size(at + 1, &field(1))?,
                channels: size(at + 2, &field(2))?,
                maps: size(at + 3, &field(3))?,
                zero_entries: num(at + 4, &field(4))?,
                bitwidth: bits as u8,
            };
            for (k, v) in [t.height, t.width, t.channels, t.maps]
                .into_iter()
                .enumerate()
            {
                if v == 0 {
                    return Err(bad(line, field(k), "must be at least 1"));
                }
            }
            if t.checked_entries().is_none() {
                return Err(bad(
                    line,
                    field(0),
                    format!(
                        "{}x{}x{}x{} entries overflow a 64-bit count",
                        t.height, t.width, t.channels, t.maps
                    ),
                ));
            }
            if t.zero_entries > t.entries() {
                return Err(bad(
                    line,
                    field(4),
                    format!("{} zeros in {} entries", t.zero_entries, t.entries()),
                ));
            }
            tensors.push(t);
        }
        let stride = (size(19, "stride.y")?, size(20, "stride.x")?);
        for (v, field) in [(stride.0, "stride.y"), (stride.1, "stride.x")] {
            if v == 0 {
                return Err(bad(line, field, "must be at least 1"));
            }
        }
        let layer = ToolLayer {
            index,
            ifmap: tensors[0],
            filter: tensors[1],
            ofmap: tensors[2],
            stride,
            padding: [
                size(21, "padding.top")?,
                size(22, "padding.bottom")?,
                size(23, "padding.left")?,
                size(24, "padding.right")?,
            ],
        };
        // Report the physical line, which differs from the index when blank lines precede it.
        layer.geometry().map_err(|e| relocate(e, line))?;
        layers.push(layer);
    }
    Ok(layers)
}

fn relocate(e: Error, line: usize) -> Error {
    match e {
        Error::ToolFormat { field, reason, .. } => Error::ToolFormat {
            line,
            field,
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests;
