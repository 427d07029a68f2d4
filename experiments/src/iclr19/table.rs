//! The `iclr19-lenet5` section: one row per budget and method (means over seeds), the
//! accuracy-against-energy plot, and what the rows say.

use std::collections::BTreeMap;

use anyhow::Result;

use super::ConstrainedMetrics;
use crate::deviation::caption;
use crate::record::{RunRecord, seeds_label};
use crate::registry::{RunKind, Typed};
use crate::render::format::{boolean, grouped, mean_sd};
use crate::render::{Section, Table, plot};
use crate::verdict::{Spread, Verdict, at_chance};

/// MNIST's classes, against which chance accuracy is judged.
const CLASSES: usize = 10;

/// Budget and method of a constrained run, ordered by descending budget, projection first.
#[derive(Clone, Debug, PartialEq)]
struct BudgetKey {
    neg_budget: f64,
    masks: bool,
    method: String,
}

impl Eq for BudgetKey {}

impl PartialOrd for BudgetKey {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for BudgetKey {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.neg_budget
            .total_cmp(&o.neg_budget)
            .then(self.masks.cmp(&o.masks))
            .then(self.method.cmp(&o.method))
    }
}

/// Per (budget, method): the means over seeds that the table and the plot show.
struct BudgetRow {
    budget: f64,
    masks: bool,
    method: String,
    exact: f64,
    accuracy: Spread,
    /// Some seed ended at chance accuracy.
    failed: bool,
}

/// The README section.
pub fn section(parsed: &Typed<'_, ConstrainedMetrics>) -> Result<Section> {
    let mut groups: BTreeMap<BudgetKey, Vec<&(&RunRecord, &ConstrainedMetrics)>> = BTreeMap::new();
    for p in parsed {
        groups
            .entry(BudgetKey {
                neg_budget: -p.1.budget,
                masks: p.1.masks,
                method: p.1.method.clone(),
            })
            .or_default()
            .push(p);
    }
    let dense: Vec<f64> = {
        let mut by_seed: BTreeMap<u64, f64> = BTreeMap::new();
        for (r, m) in parsed {
            by_seed.insert(r.seed, m.dense_test_accuracy);
        }
        by_seed.into_values().collect()
    };
    let (dense_mean, dense_sd) = mean_sd(&dense);
    // The records name the evaluator that checked them; both evaluators are reported.
    let energy_model = "iclr19, batch 1".to_string();
    let mut t = Table::new(
        &[
            "budget",
            "masks",
            "method",
            "energy relaxed / exact (max)",
            "nonzero weights (mean)",
            "test accuracy (mean ± sd)",
            "vs dense (points)",
            "meets budget",
            "status",
            "seeds",
        ],
        &[
            "budget",
            "masks",
            "method",
            "relative_energy_relaxed_max",
            "relative_energy_exact_max",
            "nonzero_weights_mean",
            "test_accuracy_mean_percent",
            "test_accuracy_sd_percent",
            "vs_dense_points",
            "meets_budget",
            "status",
            "seeds",
        ],
    );
    let mut rows = Vec::new();
    for (key, g) in &groups {
        let budget = -key.neg_budget;
        let relaxed = g
            .iter()
            .map(|p| p.1.relative_energy_relaxed)
            .fold(0.0, f64::max);
        let exact = g
            .iter()
            .map(|p| p.1.relative_energy_exact)
            .fold(0.0, f64::max);
        let meets = relaxed <= budget * (1.0 + 1e-9) && exact <= budget * (1.0 + 1e-9);
        let nz: Vec<f64> = g.iter().map(|p| p.1.nonzero_weights as f64).collect();
        let nz_mean = mean_sd(&nz).0;
        let acc: Vec<f64> = g.iter().map(|p| p.1.test_accuracy).collect();
        let (am, asd) = mean_sd(&acc);
        let records: Vec<&RunRecord> = g.iter().map(|p| p.0).collect();
        let seeds = seeds_label(&records);
        let vs_dense = 100.0 * (am - dense_mean);
        let chance = acc.iter().filter(|&&a| at_chance(a, CLASSES)).count();
        // A run at chance is no compression result, whatever its energy.
        let status = if chance > 0 {
            format!("failed ({chance} of {} at chance)", acc.len())
        } else {
            "ok".into()
        };
        t.row(
            vec![
                format!("{budget:.2}"),
                if key.masks { "yes" } else { "no" }.into(),
                key.method.clone(),
                format!("{relaxed:.4} / {exact:.4}"),
                grouped(nz_mean.round() as u64),
                format!("{:.2}% ± {:.2}", 100.0 * am, 100.0 * asd),
                format!("{vs_dense:+.2}"),
                if meets { "yes" } else { "no" }.into(),
                status.clone(),
                seeds.clone(),
            ],
            vec![
                format!("{budget:.2}"),
                boolean(key.masks),
                key.method.clone(),
                format!("{relaxed:.6}"),
                format!("{exact:.6}"),
                format!("{nz_mean:.1}"),
                format!("{:.4}", 100.0 * am),
                format!("{:.4}", 100.0 * asd),
                format!("{vs_dense:.4}"),
                boolean(meets),
                status,
                seeds,
            ],
        );
        rows.push(BudgetRow {
            budget,
            masks: key.masks,
            method: key.method.clone(),
            exact,
            accuracy: Spread {
                mean: am,
                sd: asd,
                n: acc.len(),
            },
            failed: chance > 0,
        });
    }
    let mut s = Section::new("Energy-constrained compression of LeNet-5 (`iclr19-lenet5`)");
    s.intro = format!(
        "Energy modelled on {energy_model}, relative to the dense model (the relaxed evaluator \
         constrains, the exact one checks). Dense LeNet-5: {:.2}% ± {:.2} test accuracy over \
         seeds {}. Each budget runs the energy-weighted projection and magnitude pruning in the \
         same trainer at the same energy. The paper's LeNet-5 cells are not quoted (unverified \
         in the spec), so the comparison is between methods and with the dense model. A method \
         is ahead only where the difference of the means exceeds both methods' seed spread; a \
         row with a run at chance accuracy is marked failed.{}\n",
        100.0 * dense_mean,
        100.0 * dense_sd,
        seeds_label(
            &groups
                .values()
                .next()
                .map(|g| g.iter().map(|p| p.0).collect::<Vec<_>>())
                .unwrap_or_default()
        ),
        caption(parsed.iter().flat_map(|(r, _)| match &r.spec.kind {
            RunKind::Constrained(spec) => spec.deviations.as_slice(),
            _ => &[],
        })),
    );
    s.outro = findings(&rows, dense_mean);
    s.tables.push(("iclr19-lenet5".into(), String::new(), t));
    s.plots.push((
        "iclr19-lenet5-accuracy-energy".into(),
        "Test accuracy against relative energy, energy projection and magnitude pruning".into(),
        plot::accuracy_vs_energy(&series(&rows), dense_mean, &energy_model)?,
    ));
    Ok(s)
}

fn series(rows: &[BudgetRow]) -> Vec<plot::Series> {
    let mut series: BTreeMap<String, plot::Series> = BTreeMap::new();
    for r in rows {
        let e = series
            .entry(r.method.clone())
            .or_insert_with(|| plot::Series {
                label: r.method.clone(),
                points: Vec::new(),
            });
        e.points
            .push((r.exact, r.accuracy.mean, r.accuracy.sd, r.masks));
    }
    let mut out: Vec<plot::Series> = series.into_values().collect();
    for s in &mut out {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

fn findings(rows: &[BudgetRow], dense: f64) -> String {
    let find = |b: f64, method: &str| {
        rows.iter()
            .find(|r| (r.budget - b).abs() < 1e-9 && r.method == method)
    };
    let mut lines = Vec::new();
    if let Some(p) = find(0.3, "energy-projection") {
        let gap = 100.0 * (dense - p.accuracy.mean);
        lines.push(format!(
            "- Budget 0.3: the projection reaches {:.2}%, {gap:.2} points below the dense model \
             ({}within 1 point).",
            100.0 * p.accuracy.mean,
            if gap <= 1.0 { "" } else { "not " }
        ));
    }
    let mut budgets: Vec<f64> = rows.iter().map(|r| r.budget).collect();
    budgets.sort_by(|a, b| b.total_cmp(a));
    budgets.dedup();
    for b in budgets.iter().filter(|b| **b <= 0.3 + 1e-9) {
        if let (Some(p), Some(m)) = (find(*b, "energy-projection"), find(*b, "magnitude")) {
            let d = 100.0 * (p.accuracy.mean - m.accuracy.mean);
            let failed = match (p.failed, m.failed) {
                (false, false) => String::new(),
                (true, true) => " (both failed)".into(),
                (true, false) => " (the projection failed)".into(),
                (false, true) => " (magnitude pruning failed)".into(),
            };
            lines.push(format!(
                "- Budget {b:.2}: projection minus magnitude {d:+.2} points, spreads {:.2} and \
                 {:.2}: {}{failed}.",
                100.0 * p.accuracy.sd,
                100.0 * m.accuracy.sd,
                Verdict::of(p.accuracy, m.accuracy).words(),
            ));
        }
    }
    if lines.is_empty() {
        String::new()
    } else {
        format!("{}\n", lines.join("\n"))
    }
}
