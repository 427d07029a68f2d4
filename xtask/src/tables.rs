//! `cargo xtask tables`: turns run records into the tables (Markdown and CSV) and plots (SVG) a
//! reader compares with the papers, and the README's results section between its markers.
//! Everything is a pure function of the records, so `--check` can regenerate it in memory and
//! fail when a committed file is stale.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::constrained::ConstrainedMetrics;
use crate::e2train::E2TrainMetrics;
use crate::eap::{EapMetrics, EstimateMetrics, EstimateRow};
use crate::experiments::RunKind;
use crate::flags::TablesArgs;
use crate::paths::{files_under, project_root, write_atomic};
use crate::reproduce::RunRecord;
use crate::train::TrainOutcome;
use crate::validation::ValidationMetrics;

mod plot;

/// Where the committed results live, relative to the project root.
pub const RESULTS_DIR: &str = "results";
const BEGIN: &str = "<!-- results:begin -->";
const END: &str = "<!-- results:end -->";

/// `cargo xtask tables`.
pub fn run(args: &TablesArgs) -> Result<()> {
    let root = project_root();
    let records_dir = root.join(RESULTS_DIR).join("records");
    if let Some(from) = &args.import {
        let n = import(from, &records_dir)?;
        eprintln!(
            "imported {n} records from {} into {}",
            from.display(),
            records_dir.display()
        );
    }
    let records = load(&records_dir)?;
    let runs: usize = records.values().map(Vec::len).sum();
    let mut files = generate(&records)?;
    let readme_path = root.join("README.md");
    let readme = fs::read_to_string(&readme_path)
        .with_context(|| format!("cannot read {}", readme_path.display()))?;
    let section = files
        .iter()
        .position(|f| f.path == Path::new(README_SECTION))
        .map(|i| files.remove(i).content)
        .context("no README section generated")?;
    files.push(Generated {
        path: "README.md".into(),
        content: splice(&readme, &section).context("README.md")?,
    });
    // Files under the generated folders that this run would not write are stale too.
    let mut extra = Vec::new();
    for dir in ["tables", "plots"] {
        let dir = root.join(RESULTS_DIR).join(dir);
        for path in list_files(&dir)? {
            let rel = path.strip_prefix(&root).unwrap_or(&path).to_path_buf();
            if !files.iter().any(|f| f.path == rel) {
                extra.push(rel);
            }
        }
    }
    let stale: Vec<&Generated> = files
        .iter()
        .filter(|f| fs::read_to_string(root.join(&f.path)).ok().as_deref() != Some(&f.content))
        .collect();
    if args.check {
        if stale.is_empty() && extra.is_empty() {
            eprintln!(
                "tables: {} files up to date with {runs} records",
                files.len(),
            );
            return Ok(());
        }
        let mut names: Vec<String> = stale.iter().map(|f| f.path.display().to_string()).collect();
        names.extend(
            extra
                .iter()
                .map(|p| format!("{} (not generated)", p.display())),
        );
        bail!(
            "stale generated results: {}; run `cargo xtask tables` and commit the result",
            names.join(", ")
        );
    }
    for f in &stale {
        write_atomic(&root.join(&f.path), f.content.as_bytes())?;
        eprintln!("wrote {}", f.path.display());
    }
    for p in &extra {
        fs::remove_file(root.join(p)).with_context(|| format!("cannot remove {}", p.display()))?;
        eprintln!("removed {}", p.display());
    }
    eprintln!(
        "tables: {} of {} files changed, from {runs} records in {}",
        stale.len(),
        files.len(),
        records_dir.display()
    );
    Ok(())
}

/// A generated file, relative to the project root.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// Path relative to the project root.
    pub path: PathBuf,
    /// Its whole content.
    pub content: String,
}

/// Pseudo-path of the README section among the generated files.
const README_SECTION: &str = "<README section>";

/// Copies every record of a `reproduce` output (`DIR/records/...` or `DIR` itself) into
/// `records_dir`, replacing records of the same experiment and run. Returns how many.
pub fn import(from: &Path, records_dir: &Path) -> Result<usize> {
    let src = if from.join("records").is_dir() {
        from.join("records")
    } else {
        from.to_path_buf()
    };
    let mut n = 0;
    for path in list_files(&src)? {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let record: RunRecord = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a run record", path.display()))?;
        let dest = records_dir
            .join(&record.experiment)
            .join(format!("{}.json", record.run));
        write_atomic(&dest, text.as_bytes())?;
        n += 1;
    }
    if n == 0 {
        bail!("no run records under {}", src.display());
    }
    Ok(n)
}

/// Every file under `dir` but hidden ones (the atomic writer's temporary files), sorted.
fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(files_under(dir)?
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect())
}

/// Records by experiment name, each experiment's runs ordered by run id.
pub type Records = BTreeMap<String, Vec<RunRecord>>;

/// Loads every record under `dir`.
pub fn load(dir: &Path) -> Result<Records> {
    let mut records = Records::new();
    for path in list_files(dir)? {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let record: RunRecord = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a run record", path.display()))?;
        records
            .entry(record.experiment.clone())
            .or_default()
            .push(record);
    }
    for runs in records.values_mut() {
        runs.sort_by(|a, b| a.run.cmp(&b.run));
    }
    Ok(records)
}

/// Replaces the text between the README's result markers.
pub fn splice(readme: &str, section: &str) -> Result<String> {
    let begin = readme
        .find(BEGIN)
        .with_context(|| format!("no {BEGIN} marker"))?;
    let end = readme
        .find(END)
        .with_context(|| format!("no {END} marker"))?;
    if end < begin {
        bail!("{END} comes before {BEGIN}");
    }
    Ok(format!(
        "{}{BEGIN}\n{section}{}",
        &readme[..begin],
        &readme[end..]
    ))
}

/// A table with a Markdown face (formatted cells) and a CSV face (plain numbers).
#[derive(Clone, Debug, Default)]
pub struct Table {
    md_header: Vec<String>,
    csv_header: Vec<String>,
    md_rows: Vec<Vec<String>>,
    csv_rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns: `(Markdown header, CSV header)`.
    pub fn new(columns: &[(&str, &str)]) -> Self {
        Self {
            md_header: columns.iter().map(|c| c.0.to_string()).collect(),
            csv_header: columns.iter().map(|c| c.1.to_string()).collect(),
            ..Default::default()
        }
    }

    /// Appends a row of `(Markdown cell, CSV cell)`.
    pub fn row(&mut self, cells: Vec<(String, String)>) {
        let (md, csv) = cells.into_iter().unzip();
        self.md_rows.push(md);
        self.csv_rows.push(csv);
    }

    /// Markdown.
    pub fn to_markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut s = line(&self.md_header);
        s.push_str(&line(&vec!["---".to_string(); self.md_header.len()]));
        for r in &self.md_rows {
            s.push_str(&line(r));
        }
        s
    }

    /// CSV (RFC 4180 quoting where a cell needs it).
    pub fn to_csv(&self) -> String {
        let quote = |c: &String| {
            if c.contains([',', '"', '\n']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        };
        let line = |cells: &[String]| {
            let mut l = cells.iter().map(quote).collect::<Vec<_>>().join(",");
            l.push('\n');
            l
        };
        let mut s = line(&self.csv_header);
        for r in &self.csv_rows {
            s.push_str(&line(r));
        }
        s
    }
}

/// One README subsection: a title, text, tables and plots.
struct Section {
    title: String,
    intro: String,
    /// `(file stem, caption printed above it, table)`.
    tables: Vec<(String, String, Table)>,
    plots: Vec<(String, String, String)>,
    outro: String,
}

impl Section {
    fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            intro: String::new(),
            tables: Vec::new(),
            plots: Vec::new(),
            outro: String::new(),
        }
    }
}

/// Everything `tables` writes (the README section under [`README_SECTION`]).
pub fn generate(records: &Records) -> Result<Vec<Generated>> {
    let mut sections = Vec::new();
    for (name, runs) in records {
        let section = match name.as_str() {
            "zoo-geometry" => geometry(runs)?,
            "energy-validation" => validation(runs)?,
            "baseline-lenet5" => baseline(runs)?,
            "iclr19-lenet5" => iclr19(runs)?,
            "eap-lenet5" => eap(runs)?,
            "eap-estimates" => estimates(runs)?,
            "e2train-mnist" | "e2train-cifar10-resnet74" | "e2train-cifar100-resnet110" => {
                e2train(name, runs)?
            }
            other => bail!("records of unknown experiment {other}"),
        };
        sections.push((order(name), section));
    }
    sections.sort_by_key(|(o, _)| *o);
    let mut files = Vec::new();
    let mut readme = format!(
        "Generated by `cargo xtask tables` from the run records in `{RESULTS_DIR}/records/` \
         (quick profile, CPU; code revisions {}); edit the generator, not this text. Tables as \
         Markdown and CSV are in `{RESULTS_DIR}/tables/`, plots in `{RESULTS_DIR}/plots/`.\n",
        revisions(records)
    );
    for (_, s) in &sections {
        readme.push_str(&format!("\n### {}\n\n", s.title));
        if !s.intro.is_empty() {
            readme.push_str(&s.intro);
            readme.push('\n');
        }
        for (name, caption, t) in &s.tables {
            let md = t.to_markdown();
            if !caption.is_empty() {
                readme.push_str(caption);
                readme.push_str("\n\n");
            }
            readme.push_str(&md);
            readme.push_str(&format!(
                "\n([{name}.csv]({RESULTS_DIR}/tables/{name}.csv))\n\n"
            ));
            files.push(Generated {
                path: Path::new(RESULTS_DIR)
                    .join("tables")
                    .join(format!("{name}.md")),
                content: if caption.is_empty() {
                    format!("# {}\n\n{md}", s.title)
                } else {
                    format!("# {}\n\n{caption}\n\n{md}", s.title)
                },
            });
            files.push(Generated {
                path: Path::new(RESULTS_DIR)
                    .join("tables")
                    .join(format!("{name}.csv")),
                content: t.to_csv(),
            });
        }
        for (name, alt, svg) in &s.plots {
            readme.push_str(&format!("![{alt}]({RESULTS_DIR}/plots/{name}.svg)\n\n"));
            files.push(Generated {
                path: Path::new(RESULTS_DIR)
                    .join("plots")
                    .join(format!("{name}.svg")),
                content: svg.clone(),
            });
        }
        if !s.outro.is_empty() {
            readme.push_str(&s.outro);
            readme.push('\n');
        }
    }
    files.push(Generated {
        path: README_SECTION.into(),
        content: readme,
    });
    Ok(files)
}

/// Reading order of the experiments in the README.
fn order(name: &str) -> usize {
    [
        "energy-validation",
        "zoo-geometry",
        "baseline-lenet5",
        "iclr19-lenet5",
        "eap-lenet5",
        "eap-estimates",
        "e2train-mnist",
        "e2train-cifar10-resnet74",
        "e2train-cifar100-resnet110",
    ]
    .iter()
    .position(|n| *n == name)
    .unwrap_or(usize::MAX)
}

fn revisions(records: &Records) -> String {
    let mut revs: Vec<&str> = records
        .values()
        .flatten()
        .map(|r| r.git_revision.as_str())
        .collect();
    revs.sort_unstable();
    revs.dedup();
    revs.join(", ")
}

fn metrics<T: serde::de::DeserializeOwned>(r: &RunRecord) -> Result<T> {
    serde_json::from_value(r.metrics.clone())
        .with_context(|| format!("record {}/{} has unexpected metrics", r.experiment, r.run))
}

/// Thousands separators: 1234567 → 1,234,567.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn pct_sd(xs: &[f64]) -> (String, String) {
    let (m, sd) = mean_sd(xs);
    (
        format!("{:.2}% ± {:.2}", 100.0 * m, 100.0 * sd),
        format!("{:.4}", 100.0 * m),
    )
}

fn plain(s: impl Into<String>) -> (String, String) {
    let s = s.into();
    (s.clone(), s)
}

/// A run id without its seed part: `b0.3-proj-seed1` → `b0.3-proj`, `seed1-eap` → `eap`.
fn without_seed(id: &str) -> String {
    id.split('-')
        .filter(|p| {
            !(p.starts_with("seed") && p.len() > 4 && p[4..].chars().all(|c| c.is_ascii_digit()))
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Groups runs by their id without the seed, keeping first-appearance order of `key`.
fn by_variant<K: Ord + Clone>(
    runs: &[RunRecord],
    key: impl Fn(&RunRecord) -> K,
) -> Vec<(K, Vec<&RunRecord>)> {
    let mut groups: BTreeMap<K, Vec<&RunRecord>> = BTreeMap::new();
    for r in runs {
        groups.entry(key(r)).or_default().push(r);
    }
    let mut out: Vec<_> = groups.into_iter().collect();
    for (_, g) in &mut out {
        g.sort_by_key(|r| r.seed);
    }
    out
}

fn seeds_label(runs: &[&RunRecord]) -> String {
    runs.iter()
        .map(|r| r.seed.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// zoo-geometry
// ---------------------------------------------------------------------------------------------

fn geometry(runs: &[RunRecord]) -> Result<Section> {
    let mut t = Table::new(&[
        ("model", "model"),
        ("weights", "weights"),
        ("MACs (batch 1)", "macs"),
        ("spec weights / MACs", "spec_weights_macs"),
        ("matches spec", "matches_spec"),
    ]);
    for r in runs {
        let m = &r.metrics;
        let w = m["total_weights"].as_u64().context("total_weights")?;
        let macs = m["total_macs"].as_u64().context("total_macs")?;
        let (spec, ok) = match m.get("expected").filter(|e| !e.is_null()) {
            Some(e) => {
                let (ew, em) = (
                    e["weights"].as_u64().context("expected weights")?,
                    e["macs"].as_u64().context("expected macs")?,
                );
                (
                    (
                        format!("{} / {}", group(ew), group(em)),
                        format!("{ew} {em}"),
                    ),
                    plain(if (ew, em) == (w, macs) { "yes" } else { "no" }),
                )
            }
            None => (plain("-"), plain("-")),
        };
        t.row(vec![
            plain(m["arch"].as_str().unwrap_or(&r.run)),
            (group(w), w.to_string()),
            (group(macs), macs.to_string()),
            spec,
            ok,
        ]);
    }
    let mut s = Section::new("Model geometry (`zoo-geometry`)");
    s.intro = "Weights and multiply-accumulates of every zoo model (conv and FC layers, biases \
               excluded), against the exact totals of energy-models.md B.10 where it gives them.\n"
        .into();
    s.tables.push(("zoo-geometry".into(), String::new(), t));
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// energy-validation
// ---------------------------------------------------------------------------------------------

fn validation(runs: &[RunRecord]) -> Result<Section> {
    let mut s = Section::new("Energy models against published numbers (`energy-validation`)");
    for r in runs {
        let m: ValidationMetrics = metrics(r)?;
        let quantities: Vec<String> = m
            .layers
            .first()
            .map(|l| l.cells.iter().map(|c| c.quantity.clone()).collect())
            .unwrap_or_default();
        let mut columns: Vec<(String, String)> = vec![("layer".into(), "layer".into())];
        for q in &quantities {
            let k = q.to_lowercase();
            columns.push((format!("{q} paper"), format!("{k}_paper")));
            columns.push((format!("{q} ours"), format!("{k}_ours")));
            columns.push((format!("{q} diff"), format!("{k}_diff_percent")));
        }
        let cols: Vec<(&str, &str)> = columns
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let mut t = Table::new(&cols);
        let exact = m.tolerance == "exact";
        for l in &m.layers {
            let mut row = vec![plain(l.name.clone())];
            for c in &l.cells {
                let fmt = |v: f64| {
                    if exact {
                        group(v.round() as u64)
                    } else {
                        format!("{v:.3}")
                    }
                };
                let diff = if c.reference == 0.0 {
                    0.0
                } else {
                    100.0 * (c.ours - c.reference) / c.reference
                };
                row.push((
                    if exact {
                        fmt(c.reference)
                    } else {
                        format!("{:.2}", c.reference)
                    },
                    c.reference.to_string(),
                ));
                row.push((fmt(c.ours), c.ours.to_string()));
                row.push((
                    if diff == 0.0 {
                        "0".into()
                    } else {
                        format!("{diff:+.1}%")
                    },
                    format!("{diff:.4}"),
                ));
            }
            t.row(row);
        }
        let caption = format!(
            "**{}** ({}; {}; modelled on {}): {} of {} cells {}.",
            r.run, m.source, m.unit, m.energy_model, m.cells_within, m.cells, m.tolerance
        );
        s.tables.push((format!("energy-{}", r.run), caption, t));
    }
    s.outro =
        "Fig. 10 prices AlexNet with Krizhevsky's two-tower conv1 (two 48-filter convolutions \
               that each read the image); the single 96-filter conv1 of the Caffe layout reads the \
               image once and costs 21% less DRAM energy. fc8's ALU is 16 × 4,096,000 MACs = \
               0.0655·10⁹, printed in the figure as 0.07.\n"
            .into();
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// baseline-lenet5
// ---------------------------------------------------------------------------------------------

fn baseline(runs: &[RunRecord]) -> Result<Section> {
    let mut t = Table::new(&[
        ("seed", "seed"),
        ("epochs", "epochs"),
        ("training images", "train_images"),
        ("test images", "test_images"),
        ("test accuracy", "test_accuracy_percent"),
    ]);
    let mut accs = Vec::new();
    for r in runs {
        let m: TrainOutcome = metrics(r)?;
        accs.push(m.final_accuracy);
        t.row(vec![
            plain(r.seed.to_string()),
            plain(m.history.len().to_string()),
            plain(group(m.train_samples as u64)),
            plain(group(m.test_samples as u64)),
            (
                format!("{:.2}%", 100.0 * m.final_accuracy),
                format!("{:.4}", 100.0 * m.final_accuracy),
            ),
        ]);
    }
    let (mean, sd) = mean_sd(&accs);
    t.row(vec![
        plain("mean ± sd"),
        plain(""),
        plain(""),
        plain(""),
        (
            format!("{:.2}% ± {:.2}", 100.0 * mean, 100.0 * sd),
            format!("{:.4}", 100.0 * mean),
        ),
    ]);
    let mut s = Section::new("Dense LeNet-5 on MNIST (`baseline-lenet5`)");
    s.intro = "LeNet-5 (32x32 input) trained on the embedded MNIST training images with the \
               baseline recipe, tested on the full 10,000-image test set. The spec expects \
               97-98% from the 10k subset (sparse-projection.md §10).\n"
        .into();
    s.tables.push(("baseline-lenet5".into(), String::new(), t));
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// iclr19-lenet5
// ---------------------------------------------------------------------------------------------

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
    accuracy: (f64, f64),
}

fn iclr19(runs: &[RunRecord]) -> Result<Section> {
    let parsed: Vec<(&RunRecord, ConstrainedMetrics)> = runs
        .iter()
        .map(|r| Ok((r, metrics::<ConstrainedMetrics>(r)?)))
        .collect::<Result<_>>()?;
    let mut groups: BTreeMap<BudgetKey, Vec<&(&RunRecord, ConstrainedMetrics)>> = BTreeMap::new();
    for p in &parsed {
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
        for (r, m) in &parsed {
            by_seed.insert(r.seed, m.dense_test_accuracy);
        }
        by_seed.into_values().collect()
    };
    let (dense_mean, dense_sd) = mean_sd(&dense);
    // The records name the evaluator that checked them; both evaluators are reported.
    let energy_model = "iclr19, batch 1".to_string();
    let mut t = Table::new(&[
        ("budget", "budget"),
        ("masks", "masks"),
        ("method", "method"),
        (
            "energy relaxed / exact (max)",
            "relative_energy_relaxed_max",
        ),
        ("nonzero weights (mean)", "nonzero_weights_mean"),
        ("test accuracy (mean ± sd)", "test_accuracy_mean_percent"),
        ("vs dense (points)", "vs_dense_points"),
        ("meets budget", "meets_budget"),
        ("seeds", "seeds"),
    ]);
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
        let acc: Vec<f64> = g.iter().map(|p| p.1.test_accuracy).collect();
        let (am, asd) = mean_sd(&acc);
        let records: Vec<&RunRecord> = g.iter().map(|p| p.0).collect();
        t.row(vec![
            plain(format!("{budget:.2}")),
            plain(if key.masks { "yes" } else { "no" }),
            plain(key.method.clone()),
            (
                format!("{relaxed:.4} / {exact:.4}"),
                format!("{relaxed:.6}"),
            ),
            (
                group(mean_sd(&nz).0.round() as u64),
                format!("{:.1}", mean_sd(&nz).0),
            ),
            pct_sd(&acc),
            (
                format!("{:+.2}", 100.0 * (am - dense_mean)),
                format!("{:.4}", 100.0 * (am - dense_mean)),
            ),
            plain(if meets { "yes" } else { "no" }),
            plain(seeds_label(&records)),
        ]);
        rows.push(BudgetRow {
            budget,
            masks: key.masks,
            method: key.method.clone(),
            exact,
            accuracy: (am, asd),
        });
    }
    let mut s = Section::new("Energy-constrained compression of LeNet-5 (`iclr19-lenet5`)");
    s.intro = format!(
        "Energy modelled on {energy_model}, relative to the dense model (the relaxed evaluator \
         constrains, the exact one checks). Dense LeNet-5: {:.2}% ± {:.2} test accuracy over \
         seeds {}. Each budget runs the energy-weighted projection and magnitude pruning in the \
         same trainer at the same energy. The paper's LeNet-5 cells are not quoted (unverified \
         in the spec), so the comparison is between methods and with the dense model.\n",
        100.0 * dense_mean,
        100.0 * dense_sd,
        seeds_label(
            &groups
                .values()
                .next()
                .map(|g| g.iter().map(|p| p.0).collect::<Vec<_>>())
                .unwrap_or_default()
        ),
    );
    s.outro = iclr19_findings(&rows, dense_mean);
    s.tables.push(("iclr19-lenet5".into(), String::new(), t));
    s.plots.push((
        "iclr19-lenet5-accuracy-energy".into(),
        "Test accuracy against relative energy, energy projection and magnitude pruning".into(),
        plot::accuracy_vs_energy(&rows_for_plot(&rows), dense_mean, &energy_model)?,
    ));
    Ok(s)
}

fn rows_for_plot(rows: &[BudgetRow]) -> Vec<plot::Series> {
    let mut series: BTreeMap<String, plot::Series> = BTreeMap::new();
    for r in rows {
        let e = series
            .entry(r.method.clone())
            .or_insert_with(|| plot::Series {
                label: r.method.clone(),
                points: Vec::new(),
            });
        e.points
            .push((r.exact, r.accuracy.0, r.accuracy.1, r.masks));
    }
    let mut out: Vec<plot::Series> = series.into_values().collect();
    for s in &mut out {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

fn iclr19_findings(rows: &[BudgetRow], dense: f64) -> String {
    let find = |b: f64, method: &str| {
        rows.iter()
            .find(|r| (r.budget - b).abs() < 1e-9 && r.method == method)
    };
    let mut lines = Vec::new();
    if let Some(p) = find(0.3, "energy-projection") {
        let gap = 100.0 * (dense - p.accuracy.0);
        lines.push(format!(
            "- Budget 0.3: the projection reaches {:.2}%, {gap:.2} points below the dense model \
             ({}within 1 point).",
            100.0 * p.accuracy.0,
            if gap <= 1.0 { "" } else { "not " }
        ));
    }
    let mut budgets: Vec<f64> = rows.iter().map(|r| r.budget).collect();
    budgets.sort_by(|a, b| b.total_cmp(a));
    budgets.dedup();
    let mut wins = Vec::new();
    let mut losses = Vec::new();
    for b in budgets.iter().filter(|b| **b <= 0.3 + 1e-9) {
        if let (Some(p), Some(m)) = (find(*b, "energy-projection"), find(*b, "magnitude")) {
            let d = 100.0 * (p.accuracy.0 - m.accuracy.0);
            let text = format!("{b:.2} ({d:+.2} points)");
            if d > 0.0 {
                wins.push(text);
            } else {
                losses.push(text);
            }
        }
    }
    if !wins.is_empty() || !losses.is_empty() {
        lines.push(format!(
            "- Budgets ≤ 0.3, projection minus magnitude in mean test accuracy: ahead at {}; not \
             ahead at {}.",
            if wins.is_empty() {
                "none".into()
            } else {
                wins.join(", ")
            },
            if losses.is_empty() {
                "none".into()
            } else {
                losses.join(", ")
            },
        ));
    }
    if lines.is_empty() {
        String::new()
    } else {
        format!("{}\n", lines.join("\n"))
    }
}

// ---------------------------------------------------------------------------------------------
// eap-lenet5
// ---------------------------------------------------------------------------------------------

fn eap(runs: &[RunRecord]) -> Result<Section> {
    let parsed: Vec<(&RunRecord, EapMetrics)> = runs
        .iter()
        .map(|r| Ok((r, metrics::<EapMetrics>(r)?)))
        .collect::<Result<_>>()?;
    let label = parsed
        .first()
        .map(|p| p.1.energy.label())
        .context("no eap-lenet5 records")?;
    let mut t = Table::new(&[
        ("method", "method"),
        ("energy reduction (mean ± sd)", "energy_reduction_mean"),
        ("nonzero weights (mean)", "nonzero_weights_mean"),
        ("test accuracy (mean ± sd)", "test_accuracy_mean_percent"),
        ("dense test accuracy", "dense_test_accuracy_mean_percent"),
        ("validation drop (points, mean)", "val_drop_points_mean"),
        ("seeds", "seeds"),
    ]);
    let groups = by_variant(runs, |r| without_seed(&r.run));
    let mut reductions = BTreeMap::new();
    for (variant, g) in &groups {
        let ms: Vec<&EapMetrics> = g
            .iter()
            .filter_map(|r| parsed.iter().find(|p| std::ptr::eq(p.0, *r)).map(|p| &p.1))
            .collect();
        let red: Vec<f64> = ms.iter().map(|m| m.energy_reduction).collect();
        let (rm, rsd) = mean_sd(&red);
        reductions.insert(variant.clone(), rm);
        let nz: Vec<f64> = ms.iter().map(|m| m.nonzero_weights as f64).collect();
        let acc: Vec<f64> = ms.iter().map(|m| m.test_accuracy).collect();
        let dense: Vec<f64> = ms.iter().map(|m| m.dense_test_accuracy).collect();
        let drop: Vec<f64> = ms
            .iter()
            .map(|m| 100.0 * (m.dense_val_accuracy - m.val_accuracy))
            .collect();
        t.row(vec![
            plain(ms.first().map_or(variant.clone(), |m| m.method.clone())),
            (format!("{rm:.2}x ± {rsd:.2}"), format!("{rm:.4}")),
            (
                group(mean_sd(&nz).0.round() as u64),
                format!("{:.1}", mean_sd(&nz).0),
            ),
            pct_sd(&acc),
            (
                format!("{:.2}%", 100.0 * mean_sd(&dense).0),
                format!("{:.4}", 100.0 * mean_sd(&dense).0),
            ),
            (
                format!("{:.2}", mean_sd(&drop).0),
                format!("{:.4}", mean_sd(&drop).0),
            ),
            plain(seeds_label(g)),
        ]);
    }
    let mut s = Section::new("Energy-aware pruning of LeNet-5 (`eap-lenet5`)");
    s.intro = format!(
        "Energy modelled on {label} with measured activation densities; each method prunes the \
         same dense models as far as a 1-point validation-accuracy budget allows (held-out \
         split, never the test set), then fine-tunes with fixed masks.\n"
    );
    if let (Some(e), Some(m)) = (reductions.get("eap"), reductions.get("mag")) {
        s.outro = format!(
            "Energy-aware pruning reduces energy {e:.2}x against {m:.2}x for magnitude pruning at \
             the same accuracy budget ({}).\n",
            if e > m {
                "energy-aware ahead"
            } else {
                "energy-aware not ahead"
            }
        );
    }
    s.tables.push(("eap-lenet5".into(), String::new(), t));
    // Per-layer energy of the first seed: dense, then each method.
    let first_seed = parsed.iter().map(|p| p.0.seed).min().unwrap_or(1);
    let mut bars: Vec<plot::Bar> = Vec::new();
    let mut layer_names: Vec<String> = Vec::new();
    for (_, m) in parsed.iter().filter(|p| p.0.seed == first_seed) {
        if bars.is_empty() {
            layer_names = m.layers.iter().map(|l| l.name.clone()).collect();
            bars.push(plot::Bar {
                label: "dense".into(),
                values: m.layers.iter().map(|l| l.energy_dense).collect(),
            });
        }
        bars.push(plot::Bar {
            label: m.method.clone(),
            values: m.layers.iter().map(|l| l.energy_pruned).collect(),
        });
    }
    s.plots.push((
        "eap-lenet5-layer-energy".into(),
        "Per-layer energy of LeNet-5 before and after pruning".into(),
        plot::stacked_bars(
            &format!("LeNet-5 energy per layer, seed {first_seed} (modelled on {label})"),
            &layer_names,
            &bars,
        )?,
    ));
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// eap-estimates
// ---------------------------------------------------------------------------------------------

fn estimates(runs: &[RunRecord]) -> Result<Section> {
    let mut t = Table::new(&[
        ("model", "model"),
        ("network", "network"),
        ("weights", "weights"),
        ("MACs", "macs"),
        ("energy (×10⁹)", "energy"),
        ("vs dense AlexNet", "energy_vs_dense_alexnet"),
        ("max compute share", "max_compute_share"),
    ]);
    let mut findings = Vec::new();
    for r in runs {
        let m: EstimateMetrics = metrics(r)?;
        let label = m.energy.label();
        let rows: [(&str, &EstimateRow); 4] = [
            ("AlexNet (dense)", &m.alexnet),
            ("AlexNet, Han et al. densities", &m.alexnet_han),
            ("SqueezeNet 1.0 (dense)", &m.squeezenet),
            ("GoogLeNet (dense)", &m.googlenet),
        ];
        for (name, row) in rows {
            let rel = row.energy / m.alexnet.energy;
            t.row(vec![
                plain(format!("eyeriss/{}", m.energy.preset)),
                plain(name),
                (group(row.weights), row.weights.to_string()),
                (group(row.macs), row.macs.to_string()),
                (format!("{:.2}", row.energy / 1e9), row.energy.to_string()),
                (format!("{rel:.2}x"), format!("{rel:.4}")),
                (
                    format!("{:.0}%", 100.0 * row.max_compute_share),
                    format!("{:.4}", row.max_compute_share),
                ),
            ]);
        }
        findings.push(format!(
            "- {label}: Han et al.'s densities remove {:.1}x of AlexNet's weights (paper: 9x) but \
             cut its energy only {:.2}x; SqueezeNet, with {:.0}x fewer weights than AlexNet, costs \
             {:.2}x AlexNet's energy.",
            m.han_weight_reduction,
            m.han_energy_reduction,
            m.alexnet_vs_squeezenet_weights,
            m.squeezenet_vs_alexnet_energy
        ));
    }
    let mut s = Section::new("Energy estimates without training (`eap-estimates`)");
    s.intro = "Eyeriss row-stationary estimates at batch 16 with dense activations, in MAC16 \
               energies for the whole batch. The pruning rows of the EAP paper (AlexNet 3.7x, \
               GoogLeNet 1.6x less energy) need ImageNet and are in the full profile \
               (`eap-alexnet`, `eap-googlenet`), not run here.\n"
        .into();
    s.outro = format!("{}\n", findings.join("\n"));
    s.tables.push(("eap-estimates".into(), String::new(), t));
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// e2train-mnist (and the full-profile CIFAR experiments)
// ---------------------------------------------------------------------------------------------

/// Target of the E2-Train issue for SMD+SLU+PSG: saving and accuracy loss.
const E2_TARGET_SAVING: f64 = 0.75;
const E2_TARGET_DROP_POINTS: f64 = 2.0;

/// `gated-resnet20` → `ResNet-20`.
fn resnet_name(arch: &str) -> String {
    arch.rsplit_once("resnet")
        .map_or_else(|| arch.to_string(), |(_, depth)| format!("ResNet-{depth}"))
}

/// Training batch of an E2-Train record.
fn first_batch(record: &RunRecord) -> String {
    match &record.spec.kind {
        RunKind::E2Train(spec) => spec.batch.to_string(),
        _ => "?".into(),
    }
}

fn e2train(name: &str, runs: &[RunRecord]) -> Result<Section> {
    let parsed: Vec<(&RunRecord, E2TrainMetrics)> = runs
        .iter()
        .map(|r| Ok((r, metrics::<E2TrainMetrics>(r)?)))
        .collect::<Result<_>>()?;
    let variants: Vec<&str> = crate::e2train::variant_ids().collect();
    let group_of = |variant: &str| -> Vec<&(&RunRecord, E2TrainMetrics)> {
        let mut g: Vec<_> = parsed
            .iter()
            .filter(|p| without_seed(&p.0.run) == variant)
            .collect();
        g.sort_by_key(|p| p.0.seed);
        g
    };
    let base = group_of("baseline");
    let base_acc: BTreeMap<u64, f64> = base.iter().map(|p| (p.0.seed, p.1.test_accuracy)).collect();
    let base_secs: Vec<f64> = base.iter().map(|p| p.1.train_seconds).collect();
    let first = parsed
        .first()
        .with_context(|| format!("no {name} records"))?;
    let mut t = Table::new(&[
        ("variant", "variant"),
        ("test accuracy (mean ± sd)", "test_accuracy_mean_percent"),
        ("vs baseline (points)", "vs_baseline_points"),
        ("blocks executed (train)", "train_executed_percent_mean"),
        ("training energy (MAC16)", "training_energy_mac16_mean"),
        ("saving vs baseline", "saving_mean_percent"),
        ("PSG fallback ρ", "psg_fallback_fraction_mean"),
        ("iterations run", "executed_iterations_mean"),
        ("training time (s)", "train_seconds_mean"),
        ("seeds", "seeds"),
    ]);
    let mut summary: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
    for &v in &variants {
        let g = group_of(v);
        if g.is_empty() {
            continue;
        }
        let acc: Vec<f64> = g.iter().map(|p| p.1.test_accuracy).collect();
        let delta: Vec<f64> = g
            .iter()
            .filter_map(|p| {
                base_acc
                    .get(&p.0.seed)
                    .map(|b| 100.0 * (p.1.test_accuracy - b))
            })
            .collect();
        let saving: Vec<f64> = g.iter().map(|p| p.1.saving_vs_baseline).collect();
        let (sm, ssd) = mean_sd(&saving);
        let energy: Vec<f64> = g.iter().map(|p| p.1.training_energy.total()).collect();
        let executed: Vec<f64> = g.iter().map(|p| p.1.train_executed_percentage).collect();
        let rho: Vec<f64> = g
            .iter()
            .filter_map(|p| p.1.mean_fallback_fraction)
            .collect();
        let iters: Vec<f64> = g.iter().map(|p| p.1.executed_iterations as f64).collect();
        let secs: Vec<f64> = g.iter().map(|p| p.1.train_seconds).collect();
        let (dm, _) = mean_sd(&delta);
        summary.insert(v, (sm, dm, mean_sd(&secs).0));
        let (em, esd) = mean_sd(&energy);
        t.row(vec![
            plain(g[0].1.method.clone()),
            pct_sd(&acc),
            (format!("{dm:+.2}"), format!("{dm:.4}")),
            (
                format!("{:.1}%", mean_sd(&executed).0),
                format!("{:.2}", mean_sd(&executed).0),
            ),
            (format!("{em:.3e} ± {esd:.1e}"), format!("{em:.6e}")),
            (
                format!("{:.1}% ± {:.1}", 100.0 * sm, 100.0 * ssd),
                format!("{:.4}", 100.0 * sm),
            ),
            if rho.is_empty() {
                ("—".into(), String::new())
            } else {
                let r = mean_sd(&rho).0;
                (format!("{r:.3}"), format!("{r:.5}"))
            },
            (
                format!("{:.0}/{}", mean_sd(&iters).0, g[0].1.iterations),
                format!("{:.1}", mean_sd(&iters).0),
            ),
            (
                format!("{:.0}", mean_sd(&secs).0),
                format!("{:.2}", mean_sd(&secs).0),
            ),
            plain(seeds_label(&g.iter().map(|p| p.0).collect::<Vec<_>>())),
        ]);
    }
    let mut s = Section::new(format!(
        "E2-Train on a gated {} (`{name}`)",
        resnet_name(&first.1.arch)
    ));
    s.intro = format!(
        "`{}` on {}, {} iterations of batch {} per run. Training energy is priced by `{}`{}; \
         savings are against standard training of the same backbone on the same nominal \
         schedule, priced by the same function. Blocks executed is the mean share of (gated \
         block, sample) pairs that ran in training. Accuracy differences are per seed against \
         that seed's baseline; training time is the measured wall-clock of the training loop.\n",
        first.1.arch,
        first.1.dataset.to_uppercase(),
        first.1.iterations,
        first_batch(first.0),
        first.1.energy_model,
        if first.1.energy_proxy {
            " (a bit-product proxy, not the paper's measured per-op energies)"
        } else {
            ""
        },
    );
    let mut outro = Vec::new();
    if let Some((saving, delta, _)) = summary.get("smd-slu-psg") {
        let met = *saving >= E2_TARGET_SAVING && -delta <= E2_TARGET_DROP_POINTS;
        outro.push(format!(
            "- SMD + SLU + PSG: {:.1}% saving at {delta:+.2} points; target ≥ {:.0}% saving \
             within {E2_TARGET_DROP_POINTS} points: {}.",
            100.0 * saving,
            100.0 * E2_TARGET_SAVING,
            if met { "met" } else { "not met" }
        ));
    }
    if let Some(g) = summary.get("slu")
        && !base_secs.is_empty()
    {
        outro.push(format!(
            "- SLU with real skipping trains in {:.0} s against the baseline's {:.0} s (mean \
             wall-clock of the training loop on this machine, measured, not modelled).",
            g.2,
            mean_sd(&base_secs).0
        ));
    }
    s.outro = format!("{}\n", outro.join("\n"));
    s.tables.push((name.into(), String::new(), t));
    // Cumulative energy of the first seed, relative to the baseline's total.
    let seed = parsed.iter().map(|p| p.0.seed).min().unwrap_or(1);
    let base_total = base
        .iter()
        .find(|p| p.0.seed == seed)
        .map(|p| p.1.baseline_energy.total())
        .unwrap_or(1.0);
    let mut curves = Vec::new();
    for &v in &variants {
        if let Some(p) = group_of(v).into_iter().find(|p| p.0.seed == seed)
            && !p.1.energy_curve.is_empty()
        {
            curves.push(plot::Curve {
                label: p.1.method.clone(),
                points: p
                    .1
                    .energy_curve
                    .iter()
                    .map(|&(i, e)| (i as f64, e / base_total))
                    .collect(),
            });
        }
    }
    if !curves.is_empty() {
        s.plots.push((
            format!("{name}-energy"),
            "Cumulative training energy per E2-Train variant".into(),
            plot::curves(
                &format!(
                    "Cumulative training energy, seed {seed} (bit-product proxy, relative to \
                     standard training's total)"
                ),
                "iteration",
                "energy / standard training's total",
                &curves,
            )?,
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests;
