//! A deterministic plain-text table of a network's layers, for snapshot tests and reports (plain
//! numbers: rendering with separators is the report writers' job).

use tensor_core::{LayerGeometry, LayerKind, Network};

/// Weight and MAC totals of a network (biases excluded), summed over [`Network::layers`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Totals {
    /// Σ [`LayerGeometry::weights`].
    pub weights: usize,
    /// Σ [`LayerGeometry::macs`]: dense multiply-accumulates for one sample.
    pub macs: usize,
}

impl Totals {
    /// The totals of `net`.
    pub fn of(net: &dyn Network) -> Self {
        net.layers().iter().fold(Self::default(), |t, l| Self {
            weights: t.weights + l.geometry.weights(),
            macs: t.macs + l.geometry.macs(),
        })
    }
}

/// One line per prunable layer (id, name, kind, input c×h×w, output, kernel, stride, padding,
/// groups, weights, MACs) under a header naming the architecture, and a totals line. An FC
/// layer's input is its producer's c×h×w and its kernel covers it ([`LayerGeometry::fc`]).
///
/// ```
/// use cnn_zoo::{lenet5, summary};
/// use tensor_core::{DType, Device, SeededInit};
///
/// let init = SeededInit::new(0);
/// let net = lenet5(10, 1, init.var_builder(DType::F32, &Device::Cpu))?;
/// let table = summary(&net);
/// assert!(table.starts_with("lenet5: input 1x32x32, 10 classes, 5 layers"));
/// assert!(table.ends_with("61470  416520\n"));
/// # Ok::<(), tensor_core::Error>(())
/// ```
pub fn summary(net: &dyn Network) -> String {
    const HEADER: [&str; 11] = [
        "id", "name", "kind", "input", "output", "kernel", "stride", "pad", "groups", "weights",
        "MACs",
    ];
    // Columns aligned right: ids and the two counts.
    const RIGHT: [bool; 11] = [
        true, false, false, false, false, false, false, false, false, true, true,
    ];
    let mut rows: Vec<[String; 11]> = vec![HEADER.map(String::from)];
    for layer in net.layers() {
        let g: &LayerGeometry = &layer.geometry;
        let output = match g.kind() {
            LayerKind::Conv => format!("{}x{}x{}", g.out_channels(), g.out_h(), g.out_w()),
            LayerKind::Fc => g.out_channels().to_string(),
        };
        rows.push([
            layer.id.0.to_string(),
            layer.name.clone(),
            g.kind().to_string(),
            format!("{}x{}x{}", g.in_channels(), g.in_h(), g.in_w()),
            output,
            format!("{}x{}", g.kernel().0, g.kernel().1),
            format!("{}x{}", g.stride().0, g.stride().1),
            format!("{}x{}", g.padding().0, g.padding().1),
            g.groups().to_string(),
            g.weights().to_string(),
            g.macs().to_string(),
        ]);
    }
    let totals = Totals::of(net);
    let mut last: [String; 11] = Default::default();
    last[1] = "total".into();
    last[9] = totals.weights.to_string();
    last[10] = totals.macs.to_string();
    rows.push(last);

    let mut widths = [0usize; 11];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let [c, h, w] = net.input_shape();
    let mut out = format!(
        "{}: input {c}x{h}x{w}, {} classes, {} layers\n",
        net.arch(),
        net.num_classes(),
        net.layers().len()
    );
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .zip(RIGHT)
            .map(|((cell, width), right)| {
                if right {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
