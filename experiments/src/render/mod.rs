//! The renderers: tables with a Markdown face for readers and a CSV face for programs (one CSV
//! writer, the `csv` crate), one number formatter ([`format`](mod@format)), one plotting stack ([`plot`],
//! plotters' SVG backend), and the energy report of `cargo xtask energy` ([`energy_report`]).
//!
//! Every CSV parses with pandas' defaults: one header row, plain numbers (no thousands
//! separators), units in the column names, missing values empty, and summary statistics either
//! in columns of their own or in rows marked by a `row_kind` column, never mixed into the data.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub mod energy_report;
pub mod format;
pub mod plot;

/// Where the committed results live, relative to the project root.
pub const RESULTS_DIR: &str = "results";

/// A table with a Markdown face (formatted cells, for the README) and a CSV face (plain values).
/// The faces may differ in columns and rows: the Markdown face writes `97.93% ± 0.54` in one
/// cell, the CSV face a mean and a standard deviation in two columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    md_header: Vec<String>,
    md_rows: Vec<Vec<String>>,
    csv_header: Vec<String>,
    csv_rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these Markdown and CSV column headers.
    pub fn new(md: &[&str], csv: &[&str]) -> Self {
        Self {
            md_header: md.iter().map(|c| c.to_string()).collect(),
            csv_header: csv.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        }
    }

    /// A table whose headers are computed (one column per quantity of a record).
    pub fn with_headers(md: Vec<String>, csv: Vec<String>) -> Self {
        Self {
            md_header: md,
            csv_header: csv,
            ..Default::default()
        }
    }

    /// Appends a row to both faces.
    pub fn row(&mut self, md: Vec<String>, csv: Vec<String>) {
        self.md_rows.push(md);
        self.csv_rows.push(csv);
    }

    /// Appends a row only the Markdown face shows (a summary line for readers).
    pub fn md_row(&mut self, md: Vec<String>) {
        self.md_rows.push(md);
    }

    /// Appends a row only the CSV face holds (a statistic row of its own kind).
    pub fn csv_row(&mut self, csv: Vec<String>) {
        self.csv_rows.push(csv);
    }

    /// The Markdown face.
    pub fn to_markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut s = line(&self.md_header);
        s.push_str(&line(&vec!["---".to_string(); self.md_header.len()]));
        for r in &self.md_rows {
            s.push_str(&line(r));
        }
        s
    }

    /// The CSV face: a header row, then the rows.
    pub fn to_csv(&self) -> Result<String> {
        csv_document(&self.csv_header, &self.csv_rows)
    }
}

/// The one CSV writer: a header row, then the rows, each as wide as the header; the `csv` crate
/// quotes where a cell needs it; `\n` line ends.
pub fn csv_document(header: &[String], rows: &[Vec<String>]) -> Result<String> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(header)
        .context("cannot write a CSV header")?;
    for (i, r) in rows.iter().enumerate() {
        if r.len() != header.len() {
            bail!(
                "CSV row {} has {} cells for {} columns ({})",
                i + 1,
                r.len(),
                header.len(),
                header.join(",")
            );
        }
        w.write_record(r).context("cannot write a CSV row")?;
    }
    let bytes = w.into_inner().context("cannot finish a CSV document")?;
    String::from_utf8(bytes).context("a CSV document is not UTF-8")
}

/// One README subsection: a title, text, tables and plots.
#[derive(Clone, Debug, Default)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// Text before the tables.
    pub intro: String,
    /// `(file stem, caption printed above it, table)`.
    pub tables: Vec<(String, String, Table)>,
    /// `(file stem, alt text, SVG document)`.
    pub plots: Vec<(String, String, String)>,
    /// Text after the plots.
    pub outro: String,
}

impl Section {
    /// An empty section with a title.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            ..Default::default()
        }
    }
}

/// A generated file, relative to the project root.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// Path relative to the project root.
    pub path: PathBuf,
    /// Its whole content.
    pub content: String,
}

/// The files of `sections` (tables as Markdown and CSV, plots as SVG) and the README section
/// that shows them, which comes back apart.
/// `provenance` says which profiles and code revisions the records come from.
pub fn files(sections: &[Section], provenance: &str) -> Result<(Vec<Generated>, String)> {
    let mut files = Vec::new();
    let mut readme = format!(
        "Generated by `cargo xtask tables` from the run records in `{RESULTS_DIR}/records/` \
         ({provenance}); edit the generator, not this text. \
         Tables as Markdown and CSV are in `{RESULTS_DIR}/tables/`, plots in \
         `{RESULTS_DIR}/plots/`.\n",
    );
    let path = |dir: &str, file: String| Path::new(RESULTS_DIR).join(dir).join(file);
    for s in sections {
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
                path: path("tables", format!("{name}.md")),
                content: if caption.is_empty() {
                    format!("# {}\n\n{md}", s.title)
                } else {
                    format!("# {}\n\n{caption}\n\n{md}", s.title)
                },
            });
            files.push(Generated {
                path: path("tables", format!("{name}.csv")),
                content: t
                    .to_csv()
                    .with_context(|| format!("table {name} of {}", s.title))?,
            });
        }
        for (name, alt, svg) in &s.plots {
            readme.push_str(&format!("![{alt}]({RESULTS_DIR}/plots/{name}.svg)\n\n"));
            files.push(Generated {
                path: path("plots", format!("{name}.svg")),
                content: svg.clone(),
            });
        }
        if !s.outro.is_empty() {
            readme.push_str(&s.outro);
            readme.push('\n');
        }
    }
    Ok((files, readme))
}

#[cfg(test)]
mod tests;
