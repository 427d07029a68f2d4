//! The commands that are library calls: flags in, the experiments library's work, lines out.

use anyhow::Result;
use experiments::runner::{self, ReproduceOptions};

use crate::flags::{EnergyArgs, ReproduceArgs, TablesArgs, TrainArgs};
use crate::progress::Progress;

/// `cargo xtask reproduce`.
pub fn reproduce(args: &ReproduceArgs) -> Result<()> {
    let opts: ReproduceOptions = args.options();
    if opts.init_from.len() != args.init_from.len() {
        anyhow::bail!("--init-from names one architecture twice: give one file per architecture");
    }
    let plan = runner::plan(&opts)?;
    if args.dry_run {
        for r in &plan.todo {
            println!("run  {} / {}", r.experiment, r.id);
        }
        for r in &plan.done {
            println!("skip {} / {} (recorded)", r.experiment, r.id);
        }
        for (e, why) in &plan.skipped {
            println!("skip {e}: {why}");
        }
        return Ok(());
    }
    runner::reproduce(&opts, &plan, &Progress::new())
}

/// `cargo xtask train`.
pub fn train(args: &TrainArgs) -> Result<()> {
    let (id, record) = runner::train_one(&args.options(), &Progress::new())?;
    let o = &record.outcome;
    let top5 = o
        .final_top5
        .map_or(String::new(), |t| format!(" (top-5 {:.2}%)", 100.0 * t));
    println!(
        "{id}: test accuracy {:.2}%{top5} on {} test images after {} epochs ({} training \
         images, {:.0}s); checkpoint {}",
        100.0 * o.final_accuracy,
        o.test_samples,
        record.spec.epochs,
        o.train_samples,
        record.wall_seconds,
        o.checkpoint.display()
    );
    Ok(())
}

/// `cargo xtask tables`.
pub fn tables(args: &TablesArgs) -> Result<()> {
    if let Some(dir) = &args.compare {
        return compare(dir);
    }
    let outcome = experiments::tables::run(&args.import, args.check)?;
    if !args.import.is_empty() {
        let from: Vec<String> = args
            .import
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        eprintln!(
            "imported {} records from {} into results/records",
            outcome.imported,
            from.join(", ")
        );
    }
    for p in &outcome.written {
        eprintln!("wrote {}", p.display());
    }
    for p in &outcome.removed {
        eprintln!("removed {}", p.display());
    }
    if args.check {
        eprintln!(
            "tables: {} files up to date with {} records",
            outcome.generated, outcome.records
        );
    } else {
        eprintln!(
            "tables: {} of {} files changed, from {} records in results/records",
            outcome.written.len(),
            outcome.generated,
            outcome.records
        );
    }
    Ok(())
}

/// `cargo xtask energy`: the report on stdout or in `--out`.
pub fn energy(args: &EnergyArgs) -> Result<()> {
    let text = experiments::energy::render(&args.request()?)?;
    match &args.out {
        Some(path) => {
            experiments::paths::write_atomic(path, text.as_bytes())?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `cargo xtask tables --compare DIR`.
fn compare(dir: &std::path::Path) -> Result<()> {
    let committed = experiments::paths::project_root()
        .join(experiments::render::RESULTS_DIR)
        .join("records");
    let c = experiments::compare::compare(&committed, dir)?;
    for (run, diff) in &c.differing {
        println!("differs  {run}: {diff}");
    }
    for run in &c.only_committed {
        println!("missing  {run} (committed, not in {})", dir.display());
    }
    for run in &c.only_new {
        println!("new      {run}");
    }
    println!(
        "{} runs equal, {} differ, {} only committed, {} only new (timings and checkpoint paths \
         aside)",
        c.equal,
        c.differing.len(),
        c.only_committed.len(),
        c.only_new.len()
    );
    if !c.differing.is_empty() || !c.only_committed.is_empty() {
        anyhow::bail!(
            "the records under {} do not reproduce the committed ones",
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use experiments::energy::{Format, ModelKind, Subject};

    use crate::flags::{Cmd, Flags};

    fn parse(cmd: &[&str]) -> Cmd {
        let mut all = vec!["cargo xtask"];
        all.extend(cmd);
        Flags::try_parse_from(all).expect("valid flags").cmd
    }

    #[test]
    fn energy_flags_become_a_request() {
        let Cmd::Energy(args) = parse(&[
            "energy", "--arch", "lenet5", "--model", "eyeriss", "--preset", "chip", "--format",
            "csv",
        ]) else {
            panic!("not energy");
        };
        let r = args.request().unwrap();
        assert_eq!(r.subject, Subject::Arch(cnn_zoo::Arch::Lenet5));
        assert_eq!((r.model, r.format), (ModelKind::Eyeriss, Format::Csv));
        assert!(Flags::try_parse_from(["cargo xtask", "energy", "--arch", "nope"]).is_err());
    }

    #[test]
    fn reproduce_flags_name_registry_experiments() {
        let Cmd::Reproduce(args) = parse(&[
            "reproduce",
            "--only",
            "zoo-geometry",
            "eap-estimates",
            "--profile",
            "full",
            "--jobs",
            "3",
        ]) else {
            panic!("not reproduce");
        };
        let opts = args.options();
        assert_eq!(
            opts.only,
            [
                experiments::Experiment::ZooGeometry,
                experiments::Experiment::EapEstimates
            ]
        );
        assert_eq!(opts.profile, experiments::Profile::Full);
        assert_eq!(opts.jobs(), 3);
        assert!(Flags::try_parse_from(["cargo xtask", "reproduce", "--only", "nope"]).is_err());
    }

    #[test]
    fn train_flags_take_a_weight_file() {
        let Cmd::Train(args) = parse(&["train", "--init-from", "weights/lenet5.pth"]) else {
            panic!("not train");
        };
        let opts = args.options();
        assert_eq!(
            opts.init_from.as_deref(),
            Some(std::path::Path::new("weights/lenet5.pth"))
        );
        let Cmd::Train(args) = parse(&["train"]) else {
            panic!("not train");
        };
        assert_eq!(args.options().init_from, None);
    }
}
