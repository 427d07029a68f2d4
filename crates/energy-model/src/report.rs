//! Per-layer energy reports rendered as an aligned text table, JSON, CSV or an SVG stacked bar
//! chart. Every rendering names the model and preset that priced it and the unit, so a number
//! never travels without them (energy-models.md B.8).
//!
//! ```
//! use energy_model::iclr19::Iclr19;
//! use energy_model::report::{EnergyReport, Stack};
//! use tensor_core::{EnergyModel, LayerGeometry, LayerId, LayerWorkload};
//!
//! let layers = vec![
//!     LayerWorkload::dense(LayerId(0), "conv", LayerGeometry::conv(1, 4, 4, 2, (3, 3), (1, 1), (0, 0), 1)?),
//!     LayerWorkload::dense(LayerId(1), "fc", LayerGeometry::fc(100, 1, 1, 20)?),
//! ];
//! let model = Iclr19::paper();
//! let energy = model.network_energy(&layers)?;
//! let report = EnergyReport::new("tiny", &layers, &energy, 1)?
//!     .with_normalization(model.normalization(&[layers[0].geometry, layers[1].geometry])?);
//! assert_eq!(report.total(), 9_084.0 + 447_200.0);
//! assert!(report.to_table().contains("modelled on iclr19/relaxed batch 1"));
//! assert!(report.to_svg(Stack::ByLevel).starts_with("<?xml"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use tensor_core::{
    EnergyUnit, LayerEnergy, LayerKind, LayerWorkload, Level, NetworkEnergy, Operand,
};

use crate::error::{Error, Result};
use crate::iclr19::Normalization;

/// One layer of a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerRow {
    /// Layer name.
    pub name: String,
    /// Conv or FC.
    pub kind: LayerKind,
    /// Dense MACs of one sample (geometry).
    pub macs: u64,
    /// Weights of the layer.
    pub weights: u64,
    /// The energy as priced (nonzero weights and effective MACs inside).
    pub energy: LayerEnergy,
}

/// A priced network with what is needed to render it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyReport {
    /// What was priced, e.g. the architecture `lenet5`.
    pub subject: String,
    /// The model and preset, as [`NetworkEnergy::model`] names it.
    pub model: String,
    /// Unit of every energy.
    pub unit: EnergyUnit,
    /// Batch size the estimate is for.
    pub batch: usize,
    /// Layers in network order.
    pub layers: Vec<LayerRow>,
    /// ICLR'19 model only: `E_dense` and `Σ E_X`, for the normalised floor.
    pub normalization: Option<Normalization>,
}

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

impl EnergyReport {
    /// Joins the workloads (geometry) with their priced energies; the two must list the same
    /// layers in the same order.
    pub fn new(
        subject: impl Into<String>,
        workloads: &[LayerWorkload],
        energy: &NetworkEnergy,
        batch: usize,
    ) -> Result<Self> {
        if workloads.len() != energy.layers.len() {
            return Err(Error::Config {
                field: "report layers",
                reason: format!(
                    "{} workloads but {} priced layers",
                    workloads.len(),
                    energy.layers.len()
                ),
            });
        }
        let layers = workloads
            .iter()
            .zip(&energy.layers)
            .map(|(w, (id, name, e))| {
                if w.id != *id {
                    return Err(Error::Config {
                        field: "report layers",
                        reason: format!("workload {} ({}) priced as {id} ({name})", w.id, w.name),
                    });
                }
                Ok(LayerRow {
                    name: name.clone(),
                    kind: w.geometry.kind,
                    macs: w.geometry.macs() as u64,
                    weights: w.geometry.weights() as u64,
                    energy: e.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            subject: subject.into(),
            model: energy.model.clone(),
            unit: energy.unit,
            batch,
            layers,
            normalization: None,
        })
    }

    /// Attaches the ICLR'19 normalisation (dense energy and floor).
    pub fn with_normalization(mut self, normalization: Normalization) -> Self {
        self.normalization = Some(normalization);
        self
    }

    /// Network totals.
    pub fn totals(&self) -> LayerEnergy {
        let mut t = LayerEnergy::default();
        for l in &self.layers {
            t.accumulate(&l.energy);
        }
        t
    }

    /// Total energy.
    pub fn total(&self) -> f64 {
        self.layers.iter().map(|l| l.energy.total()).sum()
    }

    /// `Σ E_X / E_dense` when a normalisation is attached.
    pub fn normalized_floor(&self) -> Option<f64> {
        self.normalization.map(|n| n.floor())
    }

    /// "modelled on `model`, batch N" (the batch is not repeated when the model name has it).
    pub fn provenance(&self) -> String {
        if self.model.contains("batch") {
            format!("modelled on {}", self.model)
        } else {
            format!("modelled on {}, batch {}", self.model, self.batch)
        }
    }

    /// One line naming subject, model, batch and unit.
    pub fn caption(&self) -> String {
        format!(
            "{}: energy {}, in {}",
            self.subject,
            self.provenance(),
            self.unit
        )
    }

    /// Aligned plain-text table: one row per layer, then the totals, then the floor if any.
    pub fn to_table(&self) -> String {
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
        let total = self.total();
        let row = |name: &str, kind: &str, macs: String, e: &LayerEnergy| -> Vec<String> {
            let mut r = vec![
                name.to_string(),
                kind.to_string(),
                macs,
                thousands(e.nonzero_weights as f64),
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
        for l in &self.layers {
            rows.push(row(
                &l.name,
                &l.kind.to_string(),
                thousands(l.macs as f64),
                &l.energy,
            ));
        }
        let macs: u64 = self.layers.iter().map(|l| l.macs).sum();
        rows.push(row("total", "", thousands(macs as f64), &self.totals()));

        let mut widths = vec![0usize; header.len()];
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = format!("{}\n", self.caption());
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
        if let Some(n) = self.normalization {
            let _ = writeln!(
                out,
                "dense energy {} and floor {} ({}): normalized floor {:.5}",
                number(n.dense),
                number(n.floor_energy),
                self.provenance(),
                n.floor()
            );
        }
        out
    }

    /// JSON: `subject`, `model`, `unit`, `batch`, one object per layer (`name`, `kind`, `macs`
    /// (dense, one sample), `weights`, `weights_nonzero`, `effective_macs`, `compute`, `data` with `by_level`,
    /// `by_type` and the full `table`, `total`), `totals`, `total` and, for the ICLR'19 model,
    /// `dense_total` and `normalized_floor`.
    pub fn to_json(&self) -> serde_json::Value {
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
        let layers: Vec<serde_json::Value> = self
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
        let t = self.totals();
        let mut v = serde_json::json!({
            "subject": self.subject,
            "model": self.model,
            "unit": self.unit,
            "unit_name": self.unit.to_string(),
            "batch": self.batch,
            "layers": layers,
            "totals": {
                "macs": self.layers.iter().map(|l| l.macs).sum::<u64>(),
                "weights_nonzero": t.nonzero_weights,
                "effective_macs": t.effective_macs,
                "compute": t.compute,
                "data": data(&t),
            },
            "total": self.total(),
        });
        if let (Some(n), Some(obj)) = (self.normalization, v.as_object_mut()) {
            obj.insert("dense_total".into(), n.dense.into());
            obj.insert("normalized_floor".into(), n.floor().into());
        }
        v
    }

    /// CSV with a header row, one row per layer and a `total` row; every row repeats the model,
    /// unit and batch.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "subject,model,unit,batch,layer,kind,macs,weights_nonzero,effective_macs,compute,\
             dram,buffer,array,rf,weight,input,output,total\n",
        );
        let mut line = |name: &str, kind: &str, macs: u64, e: &LayerEnergy| {
            let mut cells = vec![
                csv_cell(&self.subject),
                csv_cell(&self.model),
                csv_cell(&self.unit.to_string()),
                self.batch.to_string(),
                csv_cell(name),
                kind.to_string(),
                macs.to_string(),
                e.nonzero_weights.to_string(),
                e.effective_macs.to_string(),
                e.compute.to_string(),
            ];
            cells.extend(Level::ALL.iter().map(|&l| e.by_level(l).to_string()));
            cells.extend(Operand::ALL.iter().map(|&o| e.by_operand(o).to_string()));
            cells.push(e.total().to_string());
            out.push_str(&cells.join(","));
            out.push('\n');
        };
        for l in &self.layers {
            line(&l.name, &l.kind.to_string(), l.macs, &l.energy);
        }
        let macs = self.layers.iter().map(|l| l.macs).sum();
        line("total", "", macs, &self.totals());
        out
    }

    /// A stacked bar chart, one bar per layer, as a standalone SVG document: title naming the
    /// subject, model, preset and batch; a y axis with ticks in the report's unit; layer names
    /// under the bars; a legend.
    pub fn to_svg(&self, stack: Stack) -> String {
        let series: Vec<Series> = match stack {
            Stack::ByLevel => vec![
                ("compute", "#4c72b0", |e: &LayerEnergy| e.compute),
                ("DRAM", "#c44e52", |e: &LayerEnergy| e.by_level(Level::Dram)),
                ("buffer", "#dd8452", |e: &LayerEnergy| {
                    e.by_level(Level::Buffer)
                }),
                ("array", "#8172b3", |e: &LayerEnergy| {
                    e.by_level(Level::Array)
                }),
                ("RF", "#55a868", |e: &LayerEnergy| e.by_level(Level::Rf)),
            ],
            Stack::ByOperand => vec![
                ("compute", "#4c72b0", |e: &LayerEnergy| e.compute),
                ("weights", "#c44e52", |e: &LayerEnergy| {
                    e.by_operand(Operand::Weight)
                }),
                ("inputs", "#dd8452", |e: &LayerEnergy| {
                    e.by_operand(Operand::Input)
                }),
                ("outputs", "#55a868", |e: &LayerEnergy| {
                    e.by_operand(Operand::Output)
                }),
            ],
        };
        // Only series that carry energy somewhere get a colour in the legend.
        let series: Vec<_> = series
            .into_iter()
            .filter(|(_, _, f)| self.layers.iter().any(|l| f(&l.energy) > 0.0))
            .collect();

        let n = self.layers.len().max(1);
        // Room under the axis for the longest rotated layer name (about 6 px per character at
        // 45 degrees) plus the axis title.
        let longest = self
            .layers
            .iter()
            .map(|l| l.name.chars().count())
            .max()
            .unwrap_or(0);
        let bottom = (longest as f64 * 4.5 + 50.0).max(90.0);
        let (left, right, top) = (90.0, 150.0, 70.0);
        let plot_w = (n as f64 * 36.0).clamp(360.0, 1400.0);
        let plot_h = 360.0;
        let (width, height) = (left + plot_w + right, top + plot_h + bottom);
        let max = self
            .layers
            .iter()
            .map(|l| l.energy.total())
            .fold(0.0, f64::max);
        let (step, ticks) = nice_ticks(max);
        let y_max = step * ticks as f64;
        let y = |v: f64| top + plot_h - plot_h * v / y_max;
        let slot = plot_w / n as f64;
        let bar = (slot * 0.7).min(48.0);
        // Label every k-th bar when the bars are too narrow for one label each.
        let label_every = (14.0 / slot).ceil().max(1.0) as usize;

        let mut s = String::new();
        let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            s,
            r#"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="white"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="28" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
            width / 2.0,
            xml(&format!("{}: energy per layer", self.subject))
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="48" text-anchor="middle">{}</text>"#,
            width / 2.0,
            xml(&format!(
                "{}, total {} {}",
                self.provenance(),
                number(self.total()),
                self.unit
            ))
        );
        // Y axis, grid and ticks.
        for k in 0..=ticks {
            let v = step * k as f64;
            let yy = y(v);
            let _ = writeln!(
                s,
                r##"<line x1="{left:.1}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#dddddd"/>"##,
                left + plot_w
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                left - 6.0,
                yy + 4.0,
                short(v)
            );
        }
        let _ = writeln!(
            s,
            r#"<line x1="{left:.1}" y1="{top:.1}" x2="{left:.1}" y2="{:.1}" stroke="black"/>"#,
            top + plot_h
        );
        let _ = writeln!(
            s,
            r#"<line x1="{left:.1}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="black"/>"#,
            top + plot_h,
            left + plot_w
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(22 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            top + plot_h / 2.0,
            xml(&format!("energy ({})", self.unit))
        );
        // Bars, bottom to top in series order, each segment with a tooltip.
        for (i, l) in self.layers.iter().enumerate() {
            let x = left + slot * i as f64 + (slot - bar) / 2.0;
            let mut base = 0.0;
            for (label, colour, f) in &series {
                let v = f(&l.energy);
                if v <= 0.0 {
                    continue;
                }
                let (y0, y1) = (y(base), y(base + v));
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.1}" y="{y1:.1}" width="{bar:.1}" height="{:.2}" fill="{colour}"><title>{}</title></rect>"#,
                    y0 - y1,
                    xml(&format!("{} {label}: {} {}", l.name, number(v), self.unit))
                );
                base += v;
            }
            if i % label_every != 0 {
                continue;
            }
            let lx = left + slot * (i as f64 + 0.5);
            let ly = top + plot_h + 12.0;
            let _ = writeln!(
                s,
                r#"<text transform="translate({lx:.1} {ly:.1}) rotate(-45)" text-anchor="end" font-size="10">{}</text>"#,
                xml(&l.name)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">layer</text>"#,
            left + plot_w / 2.0,
            height - 10.0
        );
        // Legend, top to bottom in the order the segments stack from the top.
        let lx = left + plot_w + 20.0;
        for (k, (label, colour, _)) in series.iter().rev().enumerate() {
            let ly = top + 20.0 * k as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{lx:.1}" y="{ly:.1}" width="14" height="14" fill="{colour}"/>"#
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}">{label}</text>"#,
                lx + 20.0,
                ly + 11.0
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// A stacked series: legend label, fill colour, value per layer.
type Series = (&'static str, &'static str, fn(&LayerEnergy) -> f64);

/// Tick step and count for an axis from 0 to at least `max`: steps of 1, 2 or 5 times a power of
/// ten, about five ticks.
fn nice_ticks(max: f64) -> (f64, usize) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 1);
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let ticks = (max / step).ceil().max(1.0) as usize;
    (step, ticks)
}

/// Tick labels: `0`, `500`, `1.5k`, `20M`, `2.5G`.
fn short(v: f64) -> String {
    let (div, suffix) = match v.abs() {
        a if a >= 1e12 => (1e12, "T"),
        a if a >= 1e9 => (1e9, "G"),
        a if a >= 1e6 => (1e6, "M"),
        a if a >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let x = v / div;
    let text = format!("{x:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

/// Integers with thousands separators; other values with four significant decimals.
fn number(v: f64) -> String {
    if v.fract() == 0.0 || v.abs() >= 1000.0 {
        thousands(v.round())
    } else {
        format!("{v:.4}")
    }
}

fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0.0 {
        out.insert(0, '-');
    }
    out
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests;
