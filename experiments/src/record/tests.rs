use super::*;
use crate::paths::{files_under, project_root};

fn committed() -> Vec<PathBuf> {
    files_under(&project_root().join("results").join("records"))
        .unwrap()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

/// Every committed record reads with this build (they predate the version field, so they read
/// as the current format), and writing one back keeps its spec and metrics field for field.
#[test]
fn committed_records_read_and_keep_their_fields() {
    let paths = committed();
    assert!(paths.len() >= 70, "{} records", paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let record = RunRecord::from_json(&path, &text).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(record.format_version, FORMAT_VERSION);
        assert_eq!(record.spec.id, record.run, "{}", path.display());
        let old: serde_json::Value = serde_json::from_str(&text).unwrap();
        let new = serde_json::to_value(&record).unwrap();
        assert_eq!(new["metrics"], old["metrics"], "{}", path.display());
        if !matches!(record.spec.kind, crate::RunKind::E2Train(_)) {
            // E2-Train configurations name their schedule the new way (see e2train::legacy).
            assert_eq!(new["spec"], old["spec"], "{}", path.display());
        }
    }
}

#[test]
fn records_of_another_format_are_refused_naming_the_file() {
    let path = committed().into_iter().next().unwrap();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["format_version"] = serde_json::json!(FORMAT_VERSION + 1);
    let err = RunRecord::from_json(Path::new("future.json"), &v.to_string()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("future.json was written by another version"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("record format {}", FORMAT_VERSION + 1)),
        "{msg}"
    );
    let err = RunRecord::from_json(Path::new("half.json"), "{\"experiment\": ").unwrap_err();
    assert!(format!("{err:#}").contains("half.json is not a valid run record"));
}

#[test]
fn run_ids_lose_only_their_seed_part() {
    assert_eq!(without_seed("b0.3-proj-seed1"), "b0.3-proj");
    assert_eq!(without_seed("seed12-eap"), "eap");
    assert_eq!(without_seed("smd-slu-psg-seed3"), "smd-slu-psg");
    assert_eq!(without_seed("seedling"), "seedling");
}
