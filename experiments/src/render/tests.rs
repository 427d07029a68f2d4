use super::*;

#[test]
fn tables_render_markdown_and_quoted_csv() {
    let mut t = Table::new(&["a", "b"], &["a", "b_units"]);
    t.row(
        vec!["1".into(), "x, y".into()],
        vec!["1".into(), "x, \"y\"".into()],
    );
    t.md_row(vec!["mean".into(), String::new()]);
    assert_eq!(
        t.to_markdown(),
        "| a | b |\n| --- | --- |\n| 1 | x, y |\n| mean |  |\n"
    );
    assert_eq!(t.to_csv().unwrap(), "a,b_units\n1,\"x, \"\"y\"\"\"\n");
}

#[test]
fn a_csv_row_of_the_wrong_width_is_an_error() {
    let mut t = Table::new(&["a"], &["a", "b"]);
    t.row(vec!["1".into()], vec!["1".into()]);
    let err = t.to_csv().unwrap_err().to_string();
    assert!(err.contains("1 cells for 2 columns"), "{err}");
}

#[test]
fn files_put_tables_and_plots_under_results_and_link_them() {
    let mut s = Section::new("T");
    s.intro = "intro\n".into();
    s.tables
        .push(("t".into(), "caption".into(), Table::new(&["a"], &["a"])));
    s.plots.push(("p".into(), "alt".into(), "<svg/>".into()));
    let (files, readme) = files(&[s], "quick profile: t; code revisions abc").unwrap();
    let paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    assert_eq!(
        paths,
        [
            "results/tables/t.md",
            "results/tables/t.csv",
            "results/plots/p.svg"
        ]
    );
    assert!(readme.contains("(quick profile: t; code revisions abc)"));
    assert!(readme.contains("([t.csv](results/tables/t.csv))"));
    assert!(readme.contains("![alt](results/plots/p.svg)"));
    assert_eq!(files[0].content, "# T\n\ncaption\n\n| a |\n| --- |\n");
}
