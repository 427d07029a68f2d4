use super::*;
use crate::experiments::{Experiment, RunKind, RunSpec};
use crate::validation::Check;

fn validation_records() -> Records {
    let runs = Check::ALL
        .iter()
        .map(|&check| RunRecord {
            experiment: "energy-validation".into(),
            run: check.id().into(),
            spec: RunSpec {
                experiment: Experiment::EnergyValidation,
                id: check.id().into(),
                kind: RunKind::EnergyValidation { check },
            },
            seed: 0,
            git_revision: "abc".into(),
            version: "0.0.0".into(),
            deterministic: true,
            metrics: serde_json::to_value(crate::validation::run(check).unwrap()).unwrap(),
            wall_seconds: 0.0,
        })
        .collect();
    Records::from([("energy-validation".to_string(), runs)])
}

#[test]
fn energy_validation_reproduces_the_published_tables() {
    for check in Check::ALL {
        let m = crate::validation::run(check).unwrap();
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
    let names: Vec<String> = a.iter().map(|g| g.path.display().to_string()).collect();
    for expected in [
        "results/tables/energy-alexnet-fig10.md",
        "results/tables/energy-alexnet-fig10.csv",
        "results/tables/energy-lenet5-iclr19.csv",
        README_SECTION,
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    let csv = &a
        .iter()
        .find(|g| g.path.ends_with("energy-alexnet-fig10.csv"))
        .unwrap()
        .content;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "layer,alu_paper,alu_ours,alu_diff_percent,dram_paper,dram_ours,dram_diff_percent,\
         rf_paper,rf_ours,rf_diff_percent"
    );
    assert!(lines.next().unwrap().starts_with("conv1,1.69,"));
    let readme = &a
        .iter()
        .find(|g| g.path == Path::new(README_SECTION))
        .unwrap()
        .content;
    assert!(readme.contains("24 of 24 cells"), "{readme}");
    assert!(readme.contains("25 of 25 cells exact"), "{readme}");
}

#[test]
fn unknown_experiments_and_bad_metrics_are_errors_naming_the_record() {
    let mut records = validation_records();
    records.get_mut("energy-validation").unwrap()[0].metrics = serde_json::json!({"x": 1});
    let e = format!("{:#}", generate(&records).unwrap_err());
    assert!(e.contains("energy-validation/lenet5-iclr19"), "{e}");
    let mut records = validation_records();
    let runs = records.remove("energy-validation").unwrap();
    records.insert("nonsense".into(), runs);
    let e = generate(&records).unwrap_err().to_string();
    assert!(e.contains("nonsense"), "{e}");
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

#[test]
fn formatting_helpers() {
    assert_eq!(group(0), "0");
    assert_eq!(group(999), "999");
    assert_eq!(group(1_000), "1,000");
    assert_eq!(group(17_107_544), "17,107,544");
    assert_eq!(mean_sd(&[1.0]), (1.0, 0.0));
    let (m, sd) = mean_sd(&[1.0, 2.0, 3.0]);
    assert_eq!(m, 2.0);
    assert!((sd - 1.0).abs() < 1e-12);
    assert_eq!(without_seed("b0.3-proj-seed1"), "b0.3-proj");
    assert_eq!(without_seed("seed12-eap"), "eap");
    assert_eq!(without_seed("smd-slu-psg-seed3"), "smd-slu-psg");
    assert_eq!(without_seed("seedling"), "seedling");
}

#[test]
fn tables_render_markdown_and_quoted_csv() {
    let mut t = Table::new(&[("a", "a"), ("b", "b")]);
    t.row(vec![plain("1"), ("x, y".into(), "x, \"y\"".into())]);
    assert_eq!(t.to_markdown(), "| a | b |\n| --- | --- |\n| 1 | x, y |\n");
    assert_eq!(t.to_csv(), "a,b\n1,\"x, \"\"y\"\"\"\n");
}
