//! The equal-energy table of a `pareto-*` experiment: per level, the projection (with masks
//! below the floor), magnitude pruning and energy-aware pruning, their test accuracy over seeds,
//! both models' energies, the failed runs, the layer order energy-aware pruning chose, the
//! answer per level, and the Pareto plot.

use std::collections::BTreeMap;

use anyhow::Result;

use super::LEVELS;
use crate::deviation::{Deviation, caption};
use crate::eap::EapMetrics;
use crate::iclr19::ConstrainedMetrics;
use crate::record::RunRecord;
use crate::registry::{Experiment, Metrics, RunKind};
use crate::render::format::{boolean, grouped};
use crate::render::{Section, Table, plot};
use crate::verdict::{Spread, Verdict, at_chance};

/// The methods in table order.
const METHODS: [&str; 3] = ["energy-projection", "magnitude", "energy-aware"];

/// One finished run, whatever its kind.
struct Point {
    seed: u64,
    level: f64,
    method: &'static str,
    masks: bool,
    accuracy: f64,
    dense_accuracy: f64,
    iclr19_relaxed: f64,
    iclr19_exact: f64,
    eyeriss: f64,
    nonzero: u64,
    /// Energy-aware runs: the layers in the order processed.
    order: Vec<String>,
}

fn points(records: &[RunRecord]) -> (Vec<Point>, Vec<&Deviation>) {
    let mut out = Vec::new();
    let mut deviations = Vec::new();
    for r in records {
        match (&r.spec.kind, &r.metrics) {
            (RunKind::Constrained(spec), Metrics::Constrained(m)) => {
                deviations.extend(&spec.deviations);
                out.push(constrained(r.seed, m));
            }
            (RunKind::Eap(spec), Metrics::Eap(m)) => {
                deviations.extend(&spec.deviations);
                if let Some(p) = eap(r.seed, m) {
                    out.push(p);
                }
            }
            _ => {}
        }
    }
    (out, deviations)
}

fn constrained(seed: u64, m: &ConstrainedMetrics) -> Point {
    let priced = m.priced.as_ref();
    Point {
        seed,
        level: m.budget,
        method: if m.method == "magnitude" {
            "magnitude"
        } else {
            "energy-projection"
        },
        masks: m.masks,
        accuracy: m.test_accuracy,
        dense_accuracy: m.dense_test_accuracy,
        iclr19_relaxed: m.relative_energy_relaxed,
        iclr19_exact: m.relative_energy_exact,
        eyeriss: priced.map_or(f64::NAN, |p| p.eyeriss),
        nonzero: m.nonzero_weights,
        order: Vec::new(),
    }
}

fn eap(seed: u64, m: &EapMetrics) -> Option<Point> {
    let t = m.targeted.as_ref()?;
    let priced = m.priced.as_ref();
    Some(Point {
        seed,
        level: t.level.get(),
        method: "energy-aware",
        masks: false,
        accuracy: m.test_accuracy,
        dense_accuracy: m.dense_test_accuracy,
        iclr19_relaxed: priced.map_or(f64::NAN, |p| p.iclr19_relaxed),
        iclr19_exact: priced.map_or(f64::NAN, |p| p.iclr19_exact),
        eyeriss: priced.map_or(f64::NAN, |p| p.eyeriss),
        nonzero: m.nonzero_weights,
        order: t.order.iter().map(|l| l.name.clone()).collect(),
    })
}

/// Per (level, method): the runs of every seed.
struct Row<'a> {
    level: f64,
    method: &'static str,
    runs: Vec<&'a Point>,
}

impl Row<'_> {
    fn accuracy(&self) -> Spread {
        Spread::of(&self.runs.iter().map(|p| p.accuracy).collect::<Vec<_>>())
    }

    fn max(&self, f: fn(&Point) -> f64) -> f64 {
        self.runs.iter().map(|p| f(p)).fold(f64::NAN, f64::max)
    }

    fn failed(&self, classes: usize) -> bool {
        self.runs.iter().any(|p| at_chance(p.accuracy, classes))
    }
}

/// The section of `experiment`, whose dataset has `classes` classes.
pub fn section(experiment: Experiment, classes: usize, records: &[RunRecord]) -> Result<Section> {
    let (points, deviations) = points(records);
    let mut rows: Vec<Row<'_>> = Vec::new();
    for level in LEVELS {
        for method in METHODS {
            let runs: Vec<&Point> = points
                .iter()
                .filter(|p| (p.level - level).abs() < 1e-9 && p.method == method)
                .collect();
            if !runs.is_empty() {
                rows.push(Row {
                    level,
                    method,
                    runs,
                });
            }
        }
    }
    let dense: BTreeMap<u64, f64> = points.iter().map(|p| (p.seed, p.dense_accuracy)).collect();
    let dense_seeds = dense
        .keys()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let dense = Spread::of(&dense.values().copied().collect::<Vec<_>>());
    let name = experiment.name();
    let eyeriss_model = "eyeriss/chip batch 16";

    let mut t = Table::new(
        &[
            "level",
            "method",
            "masks",
            "test accuracy (mean ± sd)",
            "vs dense (points)",
            "iclr19 relaxed / exact (max)",
            "eyeriss (max)",
            "nonzero weights (mean)",
            "status",
            "seeds",
        ],
        &[
            "level",
            "method",
            "masks",
            "test_accuracy_mean_percent",
            "test_accuracy_sd_percent",
            "vs_dense_points",
            "iclr19_relaxed_relative_max",
            "iclr19_exact_relative_max",
            "eyeriss_chip_b16_relative_max",
            "nonzero_weights_mean",
            "status",
            "seeds",
        ],
    );
    t.row(
        vec![
            "1.00".into(),
            "dense".into(),
            "no".into(),
            dense.percent(),
            "+0.00".into(),
            "1.0000 / 1.0000".into(),
            "1.0000".into(),
            String::new(),
            status_word(at_chance(dense.mean, classes), true).into(),
            dense_seeds.clone(),
        ],
        vec![
            "1.0".into(),
            "dense".into(),
            boolean(false),
            format!("{:.4}", 100.0 * dense.mean),
            dense.sd_percent_csv(),
            "0".into(),
            "1".into(),
            "1".into(),
            "1".into(),
            String::new(),
            status_word(at_chance(dense.mean, classes), true).into(),
            dense_seeds.clone(),
        ],
    );
    for r in &rows {
        let acc = r.accuracy();
        let failed = r.failed(classes);
        let meets = r.max(|p| p.iclr19_relaxed) <= r.level * (1.0 + 1e-6);
        let seeds: Vec<String> = r.runs.iter().map(|p| p.seed.to_string()).collect();
        let nz = r.runs.iter().map(|p| p.nonzero as f64).sum::<f64>() / r.runs.len() as f64;
        let masks = r.runs.iter().any(|p| p.masks);
        t.row(
            vec![
                format!("{:.2}", r.level),
                r.method.into(),
                if masks { "yes" } else { "no" }.into(),
                acc.percent(),
                format!("{:+.2}", 100.0 * (acc.mean - dense.mean)),
                format!(
                    "{:.4} / {:.4}",
                    r.max(|p| p.iclr19_relaxed),
                    r.max(|p| p.iclr19_exact)
                ),
                format!("{:.4}", r.max(|p| p.eyeriss)),
                grouped(nz.round() as u64),
                status_word(failed, meets).into(),
                seeds.join(", "),
            ],
            vec![
                format!("{}", r.level),
                r.method.into(),
                boolean(masks),
                format!("{:.4}", 100.0 * acc.mean),
                acc.sd_percent_csv(),
                format!("{:.4}", 100.0 * (acc.mean - dense.mean)),
                format!("{:.6}", r.max(|p| p.iclr19_relaxed)),
                format!("{:.6}", r.max(|p| p.iclr19_exact)),
                format!("{:.6}", r.max(|p| p.eyeriss)),
                format!("{nz:.1}"),
                status_word(failed, meets).into(),
                seeds.join(", "),
            ],
        );
    }

    let mut s = Section::new(format!("Equal-energy comparison (`{name}`)"));
    s.intro = format!(
        "Each level is a relative energy under the ICLR'19 model (iclr19, batch 1, RF-access \
         units; the relaxed evaluator is the constrained one). The projection and magnitude \
         pruning run in the same trainer at the same budget, with input masks below the \
         unmasked floor; energy-aware pruning orders layers by the Eyeriss model \
         ({eyeriss_model}) and has its accuracy budget searched until it meets the level, with \
         no masks (below the floor it cannot). Every final model is also priced by the Eyeriss \
         model, relative to the dense network under the same model (16-bit-MAC units); the two \
         models' figures share no column. Test accuracy over seeds; a method is ahead only \
         beyond both methods' seed spread. Runs at chance accuracy are marked failed.{}\n",
        caption(deviations.iter().copied())
    );
    s.outro = findings(&rows, dense, classes);
    s.tables.push((name.into(), String::new(), t));
    if let Some(order) = order_table(&points) {
        s.tables.push((
            format!("{name}-eap-order"),
            "The layer order energy-aware pruning processed, per run (highest Eyeriss energy \
             first, re-measured after every layer)."
                .into(),
            order,
        ));
    }
    s.plots.push((
        format!("{name}-pareto"),
        "Test accuracy against relative energy (iclr19), projection, magnitude and energy-aware \
         pruning"
            .into(),
        plot::accuracy_vs_energy(&series(&rows), dense.mean, "iclr19 relaxed, batch 1")?,
    ));
    Ok(s)
}

fn status_word(failed: bool, meets: bool) -> &'static str {
    match (failed, meets) {
        (true, _) => "failed (chance accuracy)",
        (false, true) => "ok",
        (false, false) => "over the level",
    }
}

fn order_table(points: &[Point]) -> Option<Table> {
    let mut t = Table::new(&["run", "order"], &["level", "seed", "order"]);
    let mut any = false;
    for p in points.iter().filter(|p| !p.order.is_empty()) {
        any = true;
        t.row(
            vec![
                format!("level {:.2}, seed {}", p.level, p.seed),
                p.order.join(" → "),
            ],
            vec![
                format!("{}", p.level),
                p.seed.to_string(),
                p.order.join(" "),
            ],
        );
    }
    any.then_some(t)
}

fn series(rows: &[Row<'_>]) -> Vec<plot::Series> {
    METHODS
        .iter()
        .filter_map(|&method| {
            let mut points: Vec<(f64, f64, f64, bool)> = rows
                .iter()
                .filter(|r| r.method == method)
                .map(|r| {
                    let acc = r.accuracy();
                    let energy =
                        r.runs.iter().map(|p| p.iclr19_relaxed).sum::<f64>() / r.runs.len() as f64;
                    (energy, acc.mean, acc.sd, r.runs.iter().any(|p| p.masks))
                })
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (!points.is_empty()).then(|| plot::Series {
                label: method.into(),
                points,
            })
        })
        .collect()
}

fn findings(rows: &[Row<'_>], dense: Spread, classes: usize) -> String {
    let find = |level: f64, method: &str| {
        rows.iter()
            .find(|r| (r.level - level).abs() < 1e-9 && r.method == method)
    };
    let mut lines = Vec::new();
    for level in LEVELS {
        let Some(p) = find(level, "energy-projection") else {
            continue;
        };
        let pa = p.accuracy();
        let mut parts = vec![format!(
            "projection {:.2}% ({:+.2} points vs dense{})",
            100.0 * pa.mean,
            100.0 * (pa.mean - dense.mean),
            if p.failed(classes) { ", failed" } else { "" }
        )];
        for other in ["energy-aware", "magnitude"] {
            match find(level, other) {
                Some(o) => {
                    let oa = o.accuracy();
                    parts.push(format!(
                        "vs {other} {:.2}% at relative energy {:.4}: {:+.2} points, {}",
                        100.0 * oa.mean,
                        o.max(|p| p.iclr19_relaxed),
                        100.0 * (pa.mean - oa.mean),
                        Verdict::of(pa, oa).words()
                    ));
                }
                // Below the floor the projection needs masks, which energy-aware pruning has not;
                // above it, a missing row means every energy-aware run failed to get there.
                None if other == "energy-aware" => parts.push(
                    if p.runs.iter().any(|r| r.masks) {
                        "energy-aware pruning cannot reach the level (below the floor without \
                         input masks)"
                    } else {
                        "no energy-aware run reached the level (listed under failed runs)"
                    }
                    .into(),
                ),
                None => {}
            }
        }
        lines.push(format!("- Level {level:.2}: {}.", parts.join("; ")));
    }
    if lines.is_empty() {
        String::new()
    } else {
        format!("{}\n", lines.join("\n"))
    }
}
