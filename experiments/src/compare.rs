//! `cargo xtask tables --compare DIR`: whether a set of run records reproduces the committed ones.
//! Two records of the same run agree when every number and label of their metrics is equal,
//! bit for bit; only what a rerun cannot repeat is left out (wall-clock times and the paths of
//! the run's own checkpoints). Specs are not compared: a spec's stored layout may change while
//! the run it describes stays the same, and the run id names it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::record::RunRecord;
use crate::tables::{Records, load};

/// How two sets of records compare.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// Runs in both sets whose metrics agree.
    pub equal: usize,
    /// Runs in both sets whose metrics differ: `experiment/run` and the first differing field
    /// with both values.
    pub differing: Vec<(String, String)>,
    /// Runs only in the committed set.
    pub only_committed: Vec<String>,
    /// Runs only in the new set.
    pub only_new: Vec<String>,
}

/// Compares the records under `new_dir` (a `reproduce` output directory or a records folder)
/// with those under `committed_dir`.
pub fn compare(committed_dir: &Path, new_dir: &Path) -> Result<Comparison> {
    let records_of = |dir: &Path| -> Result<Records> {
        let sub = dir.join("records");
        load(if sub.is_dir() { &sub } else { dir })
    };
    let (old, new) = (
        by_run(records_of(committed_dir)?),
        by_run(records_of(new_dir)?),
    );
    let mut out = Comparison::default();
    for (run, a) in &old {
        match new.get(run) {
            None => out.only_committed.push(run.clone()),
            Some(b) => {
                let (a, b) = (metrics(a)?, metrics(b)?);
                match first_difference(&a, &b, "metrics") {
                    None => out.equal += 1,
                    Some(diff) => out.differing.push((run.clone(), diff)),
                }
            }
        }
    }
    out.only_new = new
        .keys()
        .filter(|r| !old.contains_key(*r))
        .cloned()
        .collect();
    Ok(out)
}

fn by_run(records: Records) -> BTreeMap<String, RunRecord> {
    records
        .into_values()
        .flatten()
        .map(|r| (format!("{}/{}", r.experiment, r.run), r))
        .collect()
}

fn metrics(r: &RunRecord) -> Result<Value> {
    Ok(serde_json::to_value(&r.metrics)?)
}

/// Fields a rerun cannot repeat: wall-clock and CPU times, and where the run's files went.
fn ignored(key: &str) -> bool {
    key.ends_with("seconds") || key == "checkpoint"
}

/// The first place where `a` and `b` differ, as `path: a != b`.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                if ignored(k) {
                    continue;
                }
                let here = format!("{path}.{k}");
                match y.get(k) {
                    None => return Some(format!("{here}: missing in the new record")),
                    Some(vb) => {
                        if let Some(d) = first_difference(va, vb, &here) {
                            return Some(d);
                        }
                    }
                }
            }
            y.keys()
                .find(|k| !ignored(k) && !x.contains_key(*k))
                .map(|k| format!("{path}.{k}: missing in the committed record"))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: {} entries != {}", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (va, vb))| first_difference(va, vb, &format!("{path}[{i}]")))
        }
        // Numbers compare by value, so 1 and 1.0 agree; NaN never does.
        (Value::Number(x), Value::Number(y)) => {
            (x.as_f64() != y.as_f64()).then(|| format!("{path}: {x} != {y}"))
        }
        _ => (a != b).then(|| format!("{path}: {a} != {b}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::first_difference;

    #[test]
    fn timings_and_paths_are_left_out_and_everything_else_counts() {
        let a = json!({"accuracy": 0.97, "train_seconds": 10.0, "checkpoint": "/a",
                       "history": [{"loss": 1.5, "seconds": 3.0}]});
        let b = json!({"accuracy": 0.97, "train_seconds": 12.0, "checkpoint": "/b",
                       "history": [{"loss": 1.5, "seconds": 4.0}]});
        assert_eq!(first_difference(&a, &b, "m"), None);
        let c = json!({"accuracy": 0.97, "train_seconds": 10.0, "checkpoint": "/a",
                       "history": [{"loss": 1.25, "seconds": 3.0}]});
        assert_eq!(
            first_difference(&a, &c, "m").as_deref(),
            Some("m.history[0].loss: 1.5 != 1.25")
        );
        let d = json!({"accuracy": 0.97, "history": []});
        assert!(
            first_difference(&a, &d, "m")
                .unwrap()
                .contains("1 entries != 0")
        );
    }
}
