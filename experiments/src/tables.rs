//! `cargo xtask tables`: turns run records into the tables (Markdown and CSV) and plots (SVG) a
//! reader compares with the papers, and the README's results section between its markers.
//! Everything is a pure function of the records, so a check regenerates it in memory and fails
//! when a committed file is stale.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::paths::{files_under, project_root, write_atomic};
use crate::record::RunRecord;
use crate::registry::Experiment;
use crate::render::{self, Generated, RESULTS_DIR};

const BEGIN: &str = "<!-- results:begin -->";
const END: &str = "<!-- results:end -->";

/// Records by experiment, each experiment's runs ordered by run id.
pub type Records = BTreeMap<Experiment, Vec<RunRecord>>;

/// What a `tables` invocation did.
#[derive(Clone, Debug, Default)]
pub struct TablesOutcome {
    /// Records imported first.
    pub imported: usize,
    /// Records read.
    pub records: usize,
    /// Files generated (the README included).
    pub generated: usize,
    /// Files written because they changed (none when checking).
    pub written: Vec<PathBuf>,
    /// Files under the generated folders that no record produces, removed (none when
    /// checking).
    pub removed: Vec<PathBuf>,
}

/// Regenerates everything from `results/records/` (after importing the records of `import`, a
/// `reproduce` output directory, if given). With `check`, writes nothing and fails naming every
/// stale or extra file.
pub fn run(import: &[PathBuf], check: bool) -> Result<TablesOutcome> {
    let root = project_root();
    let records_dir = root.join(RESULTS_DIR).join("records");
    let mut outcome = TablesOutcome::default();
    if !import.is_empty() {
        outcome.imported = import_records(import, &records_dir)?;
    }
    let records = load(&records_dir)?;
    outcome.records = records.values().map(Vec::len).sum();
    let (mut files, section) = generate(&records)?;
    let readme_path = root.join("README.md");
    let readme = fs::read_to_string(&readme_path)
        .with_context(|| format!("cannot read {}", readme_path.display()))?;
    files.push(Generated {
        path: "README.md".into(),
        content: splice(&readme, &section).context("README.md")?,
    });
    outcome.generated = files.len();
    // Files under the generated folders that this run would not write are stale too.
    let mut extra = Vec::new();
    for dir in ["tables", "plots"] {
        for path in list_files(&root.join(RESULTS_DIR).join(dir))? {
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
    if check {
        if stale.is_empty() && extra.is_empty() {
            return Ok(outcome);
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
    for f in stale {
        write_atomic(&root.join(&f.path), f.content.as_bytes())?;
        outcome.written.push(f.path.clone());
    }
    for p in extra {
        fs::remove_file(root.join(&p)).with_context(|| format!("cannot remove {}", p.display()))?;
        outcome.removed.push(p);
    }
    Ok(outcome)
}

/// Copies every record of `reproduce` output directories (`DIR/records/...` or `DIR` itself; the
/// outputs of several shards at once) into `records_dir`, replacing records of the same
/// experiment and run. Nothing is written when two directories hold different records of one run
/// (the error names both) or any record is unreadable. Returns how many records were copied.
pub fn import_records(from: &[PathBuf], records_dir: &Path) -> Result<usize> {
    let mut records: BTreeMap<PathBuf, (PathBuf, String)> = BTreeMap::new();
    for dir in from {
        let src = if dir.join("records").is_dir() {
            dir.join("records")
        } else {
            dir.clone()
        };
        let mut n = 0;
        for path in list_files(&src)? {
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let record = RunRecord::from_json(&path, &text)?;
            let dest = records_dir
                .join(record.experiment.name())
                .join(format!("{}.json", record.run));
            if let Some((other, earlier)) = records.get(&dest)
                && *earlier != text
            {
                bail!(
                    "{} and {} are different records of {}/{}",
                    other.display(),
                    path.display(),
                    record.experiment.name(),
                    record.run
                );
            }
            records.insert(dest, (path, text));
            n += 1;
        }
        if n == 0 {
            bail!("no run records under {}", src.display());
        }
    }
    for (dest, (_, text)) in &records {
        write_atomic(dest, text.as_bytes())?;
    }
    Ok(records.len())
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

/// Loads every record under `dir`.
pub fn load(dir: &Path) -> Result<Records> {
    let mut records = Records::new();
    for path in list_files(dir)? {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let record = RunRecord::read(&path)?;
        records.entry(record.experiment).or_default().push(record);
    }
    for runs in records.values_mut() {
        runs.sort_by(|a, b| a.run.cmp(&b.run));
    }
    Ok(records)
}

/// Every generated file and, apart, the README section.
pub fn generate(records: &Records) -> Result<(Vec<Generated>, String)> {
    let sections = Experiment::READING_ORDER
        .iter()
        .filter_map(|e| records.get(e).map(|runs| (e, runs)))
        .map(|(e, runs)| e.section(runs).with_context(|| format!("the {e} section")))
        .collect::<Result<Vec<_>>>()?;
    let mut revs: Vec<&str> = records
        .values()
        .flatten()
        .map(|r| r.git_revision.as_str())
        .collect();
    revs.sort_unstable();
    revs.dedup();
    // Which experiments each profile's records hold, so no reader takes one for the other.
    let mut profiles: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (e, runs) in records {
        for r in runs {
            let names = profiles.entry(r.profile.name()).or_default();
            if !names.contains(&e.name()) {
                names.push(e.name());
            }
        }
    }
    let profiles: Vec<String> = profiles
        .iter()
        .map(|(p, es)| format!("{p} profile: {}", es.join(", ")))
        .collect();
    let provenance = format!(
        "{}; CPU; code revisions {}",
        profiles.join("; "),
        revs.join(", ")
    );
    render::files(&sections, &provenance)
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

#[cfg(test)]
mod tests;
