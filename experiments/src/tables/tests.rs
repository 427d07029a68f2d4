use super::*;
use crate::energy_validation::{self, Check};
use crate::paths::project_root;
use crate::registry::{Metrics, Profile, RunKind, RunSpec};

fn validation_records() -> Records {
    let runs = Check::ALL
        .iter()
        .map(|&check| {
            let spec = RunSpec {
                experiment: Experiment::EnergyValidation,
                id: check.id().into(),
                kind: RunKind::EnergyValidation { check },
            };
            let metrics = Metrics::Validation(energy_validation::run(check).unwrap());
            RunRecord::new(Profile::Quick, &spec, metrics, true, "abc".into(), 0.0)
        })
        .collect();
    Records::from([(Experiment::EnergyValidation, runs)])
}

#[test]
fn energy_validation_reproduces_the_published_tables() {
    for check in Check::ALL {
        let m = energy_validation::run(check).unwrap();
        assert_eq!(m.cells_within, m.cells, "{check:?}: {m:?}");
        assert_eq!(
            m.layers.len(),
            if check == Check::Lenet5Iclr19 { 5 } else { 8 }
        );
    }
}

#[test]
fn generation_is_a_pure_function_of_the_records() {
    let records = validation_records();
    let a = generate(&records).unwrap();
    let b = generate(&records).unwrap();
    assert_eq!(a, b);
    let (files, readme) = a;
    let names: Vec<String> = files.iter().map(|g| g.path.display().to_string()).collect();
    for expected in [
        "results/tables/energy-alexnet-fig10.md",
        "results/tables/energy-alexnet-fig10.csv",
        "results/tables/energy-lenet5-iclr19.csv",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    let csv = &files
        .iter()
        .find(|g| g.path.ends_with("energy-alexnet-fig10.csv"))
        .unwrap()
        .content;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "layer,alu_paper_1e9_mac16,alu_ours_1e9_mac16,alu_diff_percent,dram_paper_1e9_mac16,\
         dram_ours_1e9_mac16,dram_diff_percent,rf_paper_1e9_mac16,rf_ours_1e9_mac16,\
         rf_diff_percent"
    );
    assert!(lines.next().unwrap().starts_with("conv1,1.69,"));
    assert!(readme.contains("24 of 24 cells"), "{readme}");
    assert!(readme.contains("25 of 25 cells exact"), "{readme}");
}

/// The committed records regenerate the committed files (what `tables --check` asserts).
#[test]
fn committed_results_are_up_to_date() {
    let root = project_root();
    let records = load(&root.join(RESULTS_DIR).join("records")).unwrap();
    let (files, section) = generate(&records).unwrap();
    for f in files {
        let committed = std::fs::read_to_string(root.join(&f.path)).unwrap_or_default();
        assert!(committed == f.content, "{} is stale", f.path.display());
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert_eq!(splice(&readme, &section).unwrap(), readme);
}

/// Every CSV face reads as plain data with pandas' defaults: one snake_case header row, every
/// row as wide as the header, a column either numeric in every non-empty cell or a label column
/// (booleans, names, the `seeds` list), and no formatted number anywhere (`%`, `±`, a trailing
/// `x`, thousands separators) that would turn a numeric column into text.
#[test]
fn every_csv_reads_as_plain_data() {
    let records = load(&project_root().join(RESULTS_DIR).join("records")).unwrap();
    let (files, _) = generate(&records).unwrap();
    let csvs: Vec<_> = files
        .iter()
        .filter(|f| f.path.extension().is_some_and(|e| e == "csv"))
        .collect();
    assert!(csvs.len() >= 10, "{} CSV files", csvs.len());
    let number = |c: &str| c.parse::<f64>().is_ok_and(f64::is_finite);
    let formatted = |c: &str| {
        let digits = c
            .trim_start_matches('-')
            .chars()
            .next()
            .is_some_and(|d| d.is_ascii_digit());
        c.contains('±')
            || (digits
                && (c.ends_with('%') || c.ends_with('x') || c.contains(',') && !c.contains(", ")))
    };
    for f in csvs {
        let name = f.path.display();
        let mut reader = csv::Reader::from_reader(f.content.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        for h in &header {
            assert!(
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}: column {h:?} is not snake_case"
            );
        }
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        for (j, column) in header.iter().enumerate() {
            let cells: Vec<&str> = rows
                .iter()
                .map(|r| &r[j])
                .filter(|c| !c.is_empty())
                .collect();
            for c in &cells {
                assert!(
                    !formatted(c),
                    "{name}: column {column} holds the formatted number {c:?}"
                );
            }
            if column != "seeds" && cells.iter().any(|c| number(c)) {
                assert!(
                    cells.iter().all(|c| number(c)),
                    "{name}: column {column} mixes numbers and text: {cells:?}"
                );
            }
        }
    }
}

/// Shard outputs merge in one import; two different records of one run stop it before anything
/// is written, naming both files.
#[test]
fn imports_merge_shard_outputs_and_refuse_conflicting_records() {
    let tmp = std::env::temp_dir().join(format!("tables-import-{}", std::process::id()));
    let records = validation_records();
    let runs = &records[&Experiment::EnergyValidation];
    let (a, b, dest) = (tmp.join("a"), tmp.join("b"), tmp.join("dest"));
    runs[0].write(&a).unwrap();
    runs[1].write(&b).unwrap();
    runs[1].write(&a).unwrap();
    let n = import_records(&[a.clone(), b.clone()], &dest).unwrap();
    assert_eq!(n, 2);
    assert_eq!(load(&dest).unwrap()[&Experiment::EnergyValidation].len(), 2);
    let mut other = runs[1].clone();
    other.wall_seconds += 1.0;
    other.write(&b).unwrap();
    std::fs::remove_dir_all(&dest).unwrap();
    let err = import_records(&[a, b], &dest).unwrap_err().to_string();
    assert!(
        err.contains("are different records of energy-validation/"),
        "{err}"
    );
    assert!(!dest.exists(), "nothing is written on a conflict");
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn records_of_unknown_experiments_and_bad_metrics_are_errors_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("experiments-tables-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let records = validation_records();
    let record = &records[&Experiment::EnergyValidation][0];
    let mut v = serde_json::to_value(record).unwrap();
    v["metrics"] = serde_json::json!({"x": 1});
    let bad = dir.join("energy-validation/lenet5-iclr19.json");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, v.to_string()).unwrap();
    let e = format!("{:#}", load(&dir).unwrap_err());
    assert!(
        e.contains("lenet5-iclr19.json is not a valid run record"),
        "{e}"
    );
    assert!(e.contains("metrics"), "{e}");
    let mut v = serde_json::to_value(record).unwrap();
    v["experiment"] = serde_json::json!("nonsense");
    std::fs::write(&bad, v.to_string()).unwrap();
    let e = format!("{:#}", load(&dir).unwrap_err());
    assert!(e.contains("nonsense"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn splice_replaces_only_the_marked_region() {
    let readme = format!("# T\n\nbefore\n{BEGIN}\nold\n{END}\nafter\n");
    let out = splice(&readme, "new\n").unwrap();
    assert_eq!(out, format!("# T\n\nbefore\n{BEGIN}\nnew\n{END}\nafter\n"));
    assert_eq!(splice(&out, "new\n").unwrap(), out);
    assert!(splice("no markers", "x").is_err());
    assert!(splice(&format!("{END}\n{BEGIN}"), "x").is_err());
}
