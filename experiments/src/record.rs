//! Run records: everything a finished run leaves behind, one JSON file per run under
//! `records/<experiment>/<run>.json`, written atomically.
//!
//! Records are typed (the metrics are the experiment's own struct, chosen by the spec's kind)
//! and versioned: `format_version` names the layout, [`FORMAT_VERSION`] is the one this build
//! writes and reads, and a record without the field (every record written before it existed)
//! reads as that version. A record of another version is an error naming its file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::paths::write_json_atomic;
use crate::registry::{Experiment, Metrics, Profile, RunSpec};

/// The record layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Everything a finished run leaves behind.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    /// Experiment name.
    pub experiment: Experiment,
    /// Run id within the experiment.
    pub run: String,
    /// The exact spec that ran.
    pub spec: RunSpec,
    /// The run's seed.
    pub seed: u64,
    /// Git revision of the code.
    pub git_revision: String,
    /// Version of the toolkit.
    pub version: String,
    /// Layout of this record ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The profile the run belongs to.
    pub profile: Profile,
    /// Whether the run is bit-for-bit reproducible from its seed on this device.
    pub deterministic: bool,
    /// Experiment-specific results, typed by the spec's kind.
    pub metrics: Metrics,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
}

/// The stored form: the metrics wait for the spec that says how to read them.
#[derive(Deserialize)]
struct Stored {
    experiment: Experiment,
    run: String,
    spec: RunSpec,
    seed: u64,
    git_revision: String,
    version: String,
    #[serde(default = "current_format")]
    format_version: u32,
    // Records written before profiles other than quick ran carry none.
    #[serde(default = "quick")]
    profile: Profile,
    deterministic: bool,
    metrics: serde_json::Value,
    wall_seconds: f64,
}

fn current_format() -> u32 {
    FORMAT_VERSION
}

fn quick() -> Profile {
    Profile::Quick
}

impl<'de> Deserialize<'de> for RunRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = Stored::deserialize(d)?;
        check_format(s.format_version).map_err(D::Error::custom)?;
        let metrics = Metrics::from_json(&s.spec.kind, s.metrics)
            .map_err(|e| D::Error::custom(format!("metrics: {e:#}")))?;
        Ok(RunRecord {
            experiment: s.experiment,
            run: s.run,
            spec: s.spec,
            seed: s.seed,
            git_revision: s.git_revision,
            version: s.version,
            format_version: s.format_version,
            profile: s.profile,
            deterministic: s.deterministic,
            metrics,
            wall_seconds: s.wall_seconds,
        })
    }
}

fn check_format(version: u32) -> Result<()> {
    if version != FORMAT_VERSION {
        bail!("record format {version}; this build reads format {FORMAT_VERSION}");
    }
    Ok(())
}

impl RunRecord {
    /// The record of a finished run of `profile`.
    pub fn new(
        profile: Profile,
        spec: &RunSpec,
        metrics: Metrics,
        deterministic: bool,
        git_revision: String,
        wall_seconds: f64,
    ) -> Self {
        Self {
            experiment: spec.experiment,
            run: spec.id.clone(),
            spec: spec.clone(),
            seed: spec.seed(),
            git_revision,
            version: env!("CARGO_PKG_VERSION").into(),
            format_version: FORMAT_VERSION,
            profile,
            deterministic,
            metrics,
            wall_seconds,
        }
    }

    /// Reads a record from its JSON text; `file` names it in errors. A record of another format
    /// version is refused before its contents are interpreted.
    pub fn from_json(file: &Path, text: &str) -> Result<Self> {
        #[derive(Deserialize)]
        struct Probe {
            format_version: Option<u32>,
        }
        let invalid = || format!("{} is not a valid run record", file.display());
        let probe: Probe = serde_json::from_str(text).with_context(invalid)?;
        check_format(probe.format_version.unwrap_or(FORMAT_VERSION))
            .with_context(|| format!("{} was written by another version", file.display()))?;
        serde_json::from_str(text).with_context(invalid)
    }

    /// Reads the record at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_json(path, &text)
    }

    /// Writes the record atomically to its place under `out`.
    pub fn write(&self, out: &Path) -> Result<()> {
        write_json_atomic(&path(out, &self.spec), self)
    }
}

/// Where the record of `run` lives under the output root `out`.
pub fn path(out: &Path, run: &RunSpec) -> PathBuf {
    out.join("records")
        .join(run.experiment.name())
        .join(format!("{}.json", run.id))
}

/// A run id without its seed part: `b0.3-proj-seed1` → `b0.3-proj`, `seed1-eap` → `eap`.
pub fn without_seed(id: &str) -> String {
    id.split('-')
        .filter(|p| {
            !(p.starts_with("seed") && p.len() > 4 && p[4..].chars().all(|c| c.is_ascii_digit()))
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The seeds of some records, as a table cell: `1, 2, 3`.
pub fn seeds_label(records: &[&RunRecord]) -> String {
    records
        .iter()
        .map(|r| r.seed.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
