//! The typed experiment registry: each experiment (one paper table or figure) expands to a list of
//! run specs per profile. Later work adds the papers' experiments here.

use clap::ValueEnum;
use cnn_zoo::Arch;
use datasets::DatasetId;
use serde::{Deserialize, Serialize};
use tensor_core::DeviceSpec;

use crate::data::DataSource;
use crate::flags::Profile;
use crate::train::TrainSpec;

/// One experiment of the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Experiment {
    /// Layer geometry of every zoo model against the exact weight and MAC totals of the specs.
    ZooGeometry,
    /// Dense LeNet-5 (ICLR'19 layout, MNIST resized to 32x32): the starting point of the
    /// compression experiments.
    BaselineLenet5,
}

impl Experiment {
    /// Every experiment in registry order.
    pub const ALL: [Experiment; 2] = [Experiment::ZooGeometry, Experiment::BaselineLenet5];

    /// Registry name.
    pub fn name(self) -> &'static str {
        match self {
            Experiment::ZooGeometry => "zoo-geometry",
            Experiment::BaselineLenet5 => "baseline-lenet5",
        }
    }

    /// One line on what it produces.
    pub fn about(self) -> &'static str {
        match self {
            Experiment::ZooGeometry => {
                "per-layer geometry of every model; totals vs energy-models.md B.10 (no training)"
            }
            Experiment::BaselineLenet5 => {
                "dense LeNet-5 on MNIST-32: quick = embedded 10k, 3 seeds; full = 60k, 1 seed"
            }
        }
    }

    /// The runs of this experiment in a profile.
    pub fn runs(self, profile: Profile, ctx: &RunContext) -> Vec<RunSpec> {
        match self {
            Experiment::ZooGeometry => Arch::ALL
                .iter()
                .map(|&arch| RunSpec {
                    experiment: self,
                    id: arch.to_string(),
                    kind: RunKind::Geometry { arch },
                })
                .collect(),
            Experiment::BaselineLenet5 => {
                let seeds: &[u64] = match profile {
                    Profile::Quick => &[1, 2, 3],
                    Profile::Full => &[1],
                };
                seeds
                    .iter()
                    .map(|&seed| {
                        let mut spec = TrainSpec::recipe(Arch::Lenet5, DatasetId::Mnist);
                        spec.seed = seed;
                        spec.device = ctx.device;
                        if profile == Profile::Full {
                            spec.data = ctx.full_data();
                            spec.epochs = 15;
                        }
                        RunSpec {
                            experiment: self,
                            id: format!("seed{seed}"),
                            kind: RunKind::Train(spec),
                        }
                    })
                    .collect()
            }
        }
    }
}

impl std::fmt::Display for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What every run of an invocation shares.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// Device for training runs.
    pub device: DeviceSpec,
    /// Directory with full datasets, if given.
    pub data_dir: Option<std::path::PathBuf>,
}

impl RunContext {
    /// The full-data source: `--data-dir` or the download cache.
    pub fn full_data(&self) -> DataSource {
        DataSource::Dir(
            self.data_dir
                .clone()
                .unwrap_or_else(crate::paths::dataset_cache),
        )
    }
}

/// One run: an experiment, a run id unique within it, and what to execute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The experiment it belongs to.
    pub experiment: Experiment,
    /// Unique within the experiment (`seed1`, `alexnet-caffe`).
    pub id: String,
    /// What to execute.
    pub kind: RunKind,
}

/// What a run executes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum RunKind {
    /// Build a model and tabulate its geometry.
    Geometry {
        /// The model.
        arch: Arch,
    },
    /// Train with the baseline trainer.
    Train(TrainSpec),
}

impl RunSpec {
    /// The seed recorded with the run (0 for deterministic, seedless runs).
    pub fn seed(&self) -> u64 {
        match &self.kind {
            RunKind::Geometry { .. } => 0,
            RunKind::Train(t) => t.seed,
        }
    }
}

/// The registry as help text for `reproduce --help`.
pub fn registry_help() -> String {
    let mut s =
        String::from("Experiment registry (quick profile runs offline on embedded data):\n");
    for e in Experiment::ALL {
        s.push_str(&format!("  {:<18} {}\n", e.name(), e.about()));
    }
    s
}
