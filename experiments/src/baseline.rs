//! `baseline-lenet5`: dense LeNet-5 (ICLR'19 layout, MNIST resized to 32x32) trained with the
//! baseline trainer, the starting point of the compression experiments. Its runs are
//! [`TrainSpec`]s and its metrics the trainer's [`TrainOutcome`].

use anyhow::Result;
use cnn_zoo::Arch;
use datasets::DatasetId;

use crate::data::DataSource;
use crate::registry::{Experiment, Profile, RunContext, RunKind, RunSpec, Typed};
use crate::render::format::{grouped, mean_sd};
use crate::render::{Section, Table};
use crate::train::{TrainOutcome, TrainSpec};

/// The dense LeNet-5 recipe of a seed: the embedded 10k MNIST in the quick profile, the full
/// 60k (downloaded or `--data-dir`) and 15 epochs in the full one.
pub fn lenet5_recipe(seed: u64, profile: Profile, ctx: &RunContext) -> TrainSpec {
    let mut spec = TrainSpec::recipe(Arch::Lenet5, DatasetId::Mnist);
    spec.seed = seed;
    spec.device = ctx.device;
    if profile == Profile::Full {
        spec.data = DataSource::Full;
        spec.epochs = 15;
    }
    spec
}

/// Quick: seeds 1 to 3; full: seed 1.
pub fn runs(experiment: Experiment, profile: Profile, ctx: &RunContext) -> Vec<RunSpec> {
    let seeds: &[u64] = match profile {
        Profile::Quick => &[1, 2, 3],
        // The standard profile's dense models are the comparisons' own (pareto-*).
        Profile::Standard => &[],
        Profile::Full => &[1],
    };
    seeds
        .iter()
        .map(|&seed| RunSpec {
            experiment,
            id: format!("seed{seed}"),
            kind: RunKind::Train(lenet5_recipe(seed, profile, ctx)),
        })
        .collect()
}

/// One line on a record.
pub fn summary(spec: &TrainSpec, m: &TrainOutcome) -> String {
    format!(
        "{} on {}: test accuracy {:.2}% on {} images after {} epochs, seed {}",
        spec.arch,
        spec.dataset,
        100.0 * m.final_accuracy,
        m.test_samples,
        spec.epochs,
        spec.seed
    )
}

/// The README section: one row per seed, then the mean and standard deviation (a Markdown line;
/// the CSV holds the seeds' rows only, so every row is data).
pub fn section(runs: &Typed<'_, TrainOutcome>) -> Result<Section> {
    let mut t = Table::new(
        &[
            "seed",
            "epochs",
            "training images",
            "test images",
            "test accuracy",
        ],
        &[
            "seed",
            "epochs",
            "train_images",
            "test_images",
            "test_accuracy_percent",
        ],
    );
    let mut accs = Vec::new();
    for (r, m) in runs {
        accs.push(m.final_accuracy);
        let (epochs, train, test) = (m.history.len(), m.train_samples, m.test_samples);
        t.row(
            vec![
                r.seed.to_string(),
                epochs.to_string(),
                grouped(train as u64),
                grouped(test as u64),
                format!("{:.2}%", 100.0 * m.final_accuracy),
            ],
            vec![
                r.seed.to_string(),
                epochs.to_string(),
                train.to_string(),
                test.to_string(),
                format!("{:.4}", 100.0 * m.final_accuracy),
            ],
        );
    }
    let (mean, sd) = mean_sd(&accs);
    t.md_row(vec![
        "mean ± sd".into(),
        String::new(),
        String::new(),
        String::new(),
        format!("{:.2}% ± {:.2}", 100.0 * mean, 100.0 * sd),
    ]);
    let mut s = Section::new("Dense LeNet-5 on MNIST (`baseline-lenet5`)");
    s.intro = "LeNet-5 (32x32 input) trained on the embedded MNIST training images with the \
               baseline recipe, tested on the full 10,000-image test set. The spec expects \
               97-98% from the 10k subset (docs/sparse-projection.md §10).\n"
        .into();
    s.tables.push(("baseline-lenet5".into(), String::new(), t));
    Ok(s)
}
