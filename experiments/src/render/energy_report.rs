//! Renderings of energy-model's per-layer [`EnergyReport`]: an aligned text table, JSON, CSV and
//! an SVG stacked bar chart (`cargo xtask energy --format table|json|csv|svg`). Every rendering
//! names the model and preset that priced it and the unit, so a number never travels without
//! them (docs/energy-models.md B.8).

use std::fmt::Write as _;

use anyhow::{Context, Result};
use energy_model::report::EnergyReport;
use serde::{Deserialize, Serialize};
use tensor_core::{LayerEnergy, Level, Operand};

use super::format::{grouped_f64, number};
use super::plot::{self, Segment};

/// Which breakdown the bar chart stacks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stack {
    /// Compute plus data movement per memory level.
    #[default]
    ByLevel,
    /// Compute plus data movement per operand (weights, inputs, outputs).
    ByOperand,
}

const LEVEL_NAMES: [&str; 4] = ["dram", "buffer", "array", "rf"];
const OPERAND_NAMES: [&str; 3] = ["weight", "input", "output"];

/// Aligned plain-text table: one row per layer, then the totals, then the floor if any.
pub fn table(report: &EnergyReport) -> String {
    let header = [
        "layer",
        "kind",
        "MACs/sample",
        "nonzero W",
        "eff. MACs",
        "compute",
        "DRAM",
        "buffer",
        "array",
        "RF",
        "weights",
        "inputs",
        "outputs",
        "total",
        "share",
    ];
    let total = report.total();
    let row = |name: &str, kind: &str, macs: String, e: &LayerEnergy| -> Vec<String> {
        let mut r = vec![
            name.to_string(),
            kind.to_string(),
            macs,
            grouped_f64(e.nonzero_weights as f64),
            number(e.effective_macs),
            number(e.compute),
        ];
        r.extend(Level::ALL.iter().map(|&l| number(e.by_level(l))));
        r.extend(Operand::ALL.iter().map(|&o| number(e.by_operand(o))));
        r.push(number(e.total()));
        r.push(if total > 0.0 {
            format!("{:.1}%", 100.0 * e.total() / total)
        } else {
            "-".into()
        });
        r
    };
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for l in &report.layers {
        rows.push(row(
            &l.name,
            &l.kind.to_string(),
            grouped_f64(l.macs as f64),
            &l.energy,
        ));
    }
    let macs: u64 = report.layers.iter().map(|l| l.macs).sum();
    rows.push(row("total", "", grouped_f64(macs as f64), &report.totals()));

    let mut widths = vec![0usize; header.len()];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!("{}\n", report.caption());
    for (i, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (k, (c, w)) in r.iter().zip(&widths).enumerate() {
            if k > 0 {
                line.push_str("  ");
            }
            // Names left-aligned, numbers right-aligned.
            if k < 2 {
                let _ = write!(line, "{c:<w$}");
            } else {
                let _ = write!(line, "{c:>w$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 || i == rows.len() - 2 {
            let rule: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            out.push_str(&"-".repeat(rule));
            out.push('\n');
        }
    }
    if let Some(n) = report.normalization {
        let _ = writeln!(
            out,
            "dense energy {} and floor {} ({}): normalized floor {:.5}",
            number(n.dense),
            number(n.floor_energy),
            report.provenance(),
            n.floor()
        );
    }
    if !report.unpriced.is_empty() {
        let _ = writeln!(
            out,
            "not priced (operators without weights, zero energy in the model): {}",
            unpriced(report)
        );
    }
    out
}

/// `Add ×10, Clip ×35, ...`
fn unpriced(report: &EnergyReport) -> String {
    report
        .unpriced
        .iter()
        .map(|(op, n)| format!("{op} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// JSON: `subject`, `model`, `unit`, `batch`, one object per layer (`name`, `kind`, `macs`
/// (dense, one sample), `weights`, `weights_nonzero`, `effective_macs`, `compute`, `data` with
/// `by_level`, `by_type` and the full `table`, `total`), `totals`, `total` and, for the ICLR'19
/// model, `dense_total` and `normalized_floor`; `unpriced_operators` (type → count) when the
/// model has operators without weights that are not priced.
pub fn json(report: &EnergyReport) -> serde_json::Value {
    let data = |e: &LayerEnergy| {
        let by_level: serde_json::Map<String, serde_json::Value> = Level::ALL
            .iter()
            .zip(LEVEL_NAMES)
            .map(|(&l, n)| (n.to_string(), e.by_level(l).into()))
            .collect();
        let by_type: serde_json::Map<String, serde_json::Value> = Operand::ALL
            .iter()
            .zip(OPERAND_NAMES)
            .map(|(&o, n)| (n.to_string(), e.by_operand(o).into()))
            .collect();
        let table: serde_json::Map<String, serde_json::Value> = Level::ALL
            .iter()
            .zip(LEVEL_NAMES)
            .map(|(&l, ln)| {
                let row: serde_json::Map<String, serde_json::Value> = Operand::ALL
                    .iter()
                    .zip(OPERAND_NAMES)
                    .map(|(&o, on)| (on.to_string(), e.get(l, o).into()))
                    .collect();
                (ln.to_string(), row.into())
            })
            .collect();
        serde_json::json!({
            "by_level": by_level,
            "by_type": by_type,
            "table": table,
            "total": e.data_total(),
        })
    };
    let layers: Vec<serde_json::Value> = report
        .layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "name": l.name,
                "kind": l.kind,
                "macs": l.macs,
                "weights": l.weights,
                "weights_nonzero": l.energy.nonzero_weights,
                "effective_macs": l.energy.effective_macs,
                "compute": l.energy.compute,
                "data": data(&l.energy),
                "total": l.energy.total(),
            })
        })
        .collect();
    let t = report.totals();
    let mut v = serde_json::json!({
        "subject": report.subject,
        "model": report.model,
        "unit": report.unit,
        "unit_name": report.unit.to_string(),
        "batch": report.batch,
        "layers": layers,
        "totals": {
            "macs": report.layers.iter().map(|l| l.macs).sum::<u64>(),
            "weights_nonzero": t.nonzero_weights,
            "effective_macs": t.effective_macs,
            "compute": t.compute,
            "data": data(&t),
        },
        "total": report.total(),
    });
    if let (Some(n), Some(obj)) = (report.normalization, v.as_object_mut()) {
        obj.insert("dense_total".into(), n.dense.into());
        obj.insert("normalized_floor".into(), n.floor().into());
    }
    if let (false, Some(obj)) = (report.unpriced.is_empty(), v.as_object_mut()) {
        obj.insert(
            "unpriced_operators".into(),
            serde_json::json!(report.unpriced),
        );
    }
    v
}

/// CSV with a header row, one row per layer and a `total` row; every row repeats the model,
/// unit and batch.
pub fn csv(report: &EnergyReport) -> Result<String> {
    let header = [
        "subject",
        "model",
        "unit",
        "batch",
        "layer",
        "kind",
        "macs",
        "weights_nonzero",
        "effective_macs",
        "compute",
        "dram",
        "buffer",
        "array",
        "rf",
        "weight",
        "input",
        "output",
        "total",
    ]
    .map(String::from);
    let row = |name: &str, kind: &str, macs: u64, e: &LayerEnergy| {
        let mut cells = vec![
            report.subject.clone(),
            report.model.clone(),
            report.unit.to_string(),
            report.batch.to_string(),
            name.to_string(),
            kind.to_string(),
            macs.to_string(),
            e.nonzero_weights.to_string(),
            e.effective_macs.to_string(),
            e.compute.to_string(),
        ];
        cells.extend(Level::ALL.iter().map(|&l| e.by_level(l).to_string()));
        cells.extend(Operand::ALL.iter().map(|&o| e.by_operand(o).to_string()));
        cells.push(e.total().to_string());
        cells
    };
    let mut rows: Vec<Vec<String>> = report
        .layers
        .iter()
        .map(|l| row(&l.name, &l.kind.to_string(), l.macs, &l.energy))
        .collect();
    let macs = report.layers.iter().map(|l| l.macs).sum();
    rows.push(row("total", "", macs, &report.totals()));
    super::csv_document(&header, &rows).context("the energy report's CSV")
}

/// A stacked bar chart, one bar per layer, as a standalone SVG document: a title naming the
/// subject, a subtitle naming model, preset, batch and total, a y axis in the report's unit,
/// layer names under the bars, and a legend of the series that carry energy.
pub fn svg(report: &EnergyReport, stack: Stack) -> Result<String> {
    type Part = (&'static str, fn(&LayerEnergy) -> f64);
    let parts: Vec<Part> = match stack {
        Stack::ByLevel => vec![
            ("compute", |e| e.compute),
            ("DRAM", |e| e.by_level(Level::Dram)),
            ("buffer", |e| e.by_level(Level::Buffer)),
            ("array", |e| e.by_level(Level::Array)),
            ("RF", |e| e.by_level(Level::Rf)),
        ],
        Stack::ByOperand => vec![
            ("compute", |e| e.compute),
            ("weights", |e| e.by_operand(Operand::Weight)),
            ("inputs", |e| e.by_operand(Operand::Input)),
            ("outputs", |e| e.by_operand(Operand::Output)),
        ],
    };
    // Only series that carry energy somewhere get a colour in the legend.
    let segments: Vec<Segment> = parts
        .into_iter()
        .map(|(label, f)| Segment {
            label: label.into(),
            values: report.layers.iter().map(|l| f(&l.energy)).collect(),
        })
        .filter(|s| s.values.iter().any(|&v| v > 0.0))
        .collect();
    let names: Vec<String> = report.layers.iter().map(|l| l.name.clone()).collect();
    plot::stacked_layers(
        &format!("{}: energy per layer", report.subject),
        &format!(
            "{}, total {} {}",
            report.provenance(),
            number(report.total()),
            report.unit
        ),
        &format!("energy ({})", report.unit),
        &names,
        &segments,
    )
}

#[cfg(test)]
mod tests;
