//! The typed experiment registry: each experiment (one paper table or figure) expands to a list of
//! run specs per profile, and each kind of run knows how to execute, what metrics it records,
//! how to summarise them in a line and which table section renders them. Adding an experiment
//! means a module of its own and the lines here that name it.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use cnn_zoo::Arch;
use datasets::DatasetId;
use serde::{Deserialize, Serialize};
use tensor_core::{Device, DeviceKind, DeviceSpec};

use crate::data::{DataDir, DataSource};
use crate::record::RunRecord;
use crate::render::Section;
use crate::reporter::Reporter;
use crate::train::{self, TrainOutcome, TrainSpec};
use crate::{
    baseline, e2train, eap, eap_estimates, energy_validation, iclr19, imagenet, pareto,
    zoo_geometry,
};

/// One experiment of the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Experiment {
    /// Layer geometry of every zoo model against the exact weight and MAC totals of the specs.
    ZooGeometry,
    /// The iclr19 and eyeriss energy models against the published numbers they reproduce
    /// (LeNet-5 goldens, Eyeriss ISCA'16 Fig. 10), no training.
    EnergyValidation,
    /// Dense LeNet-5 (ICLR'19 layout, MNIST resized to 32x32): the starting point of the
    /// compression experiments.
    BaselineLenet5,
    /// ICLR'19 energy-constrained compression of LeNet-5 on MNIST-32: budgets 0.5 to 0.2 without
    /// masks, 0.15 and 0.1 with input masks, each against magnitude pruning at equal energy.
    Iclr19Lenet5,
    /// E2-Train on a gated ResNet-20 and the embedded MNIST (quick profile): standard training
    /// against stochastic depth, SMD, SMD + SLU and all three, plus single-technique ablations,
    /// with training energy priced by energy-model's training model.
    E2trainMnist,
    /// E2-Train's ResNet-74 preset on CIFAR-10 (full profile; a GPU run).
    E2trainCifar10Resnet74,
    /// E2-Train's ResNet-110 preset on CIFAR-100 (full profile; a GPU run).
    E2trainCifar100Resnet110,
    /// CVPR'17 energy-aware pruning of LeNet-5 on MNIST-32 against magnitude pruning under the
    /// same accuracy budget and fine-tuning, priced by the eyeriss model.
    EapLenet5,
    /// Eyeriss estimates without training: AlexNet dense and with Han et al.'s densities,
    /// SqueezeNet 1.0 and GoogLeNet dense.
    EapEstimates,
    /// Energy-aware pruning of pretrained AlexNet on ImageNet against magnitude pruning (full
    /// profile; skipped without the ImageNet folder or the weights).
    EapAlexnet,
    /// Energy-aware pruning of pretrained GoogLeNet on ImageNet against magnitude pruning (full
    /// profile; skipped without the ImageNet folder or the weights).
    EapGooglenet,
    /// ICLR'19 energy-constrained compression of pretrained AlexNet on ImageNet at budget 0.2
    /// against magnitude pruning (full profile; skipped without the folder or the weights).
    Iclr19Alexnet,
    /// ICLR'19 energy-constrained compression of pretrained SqueezeNet 1.0 on ImageNet at budget
    /// 0.2 against magnitude pruning (full profile; skipped without the folder or the weights).
    Iclr19Squeezenet,
    /// The equal-energy comparison on LeNet-5 and the full MNIST (standard profile): the
    /// projection, magnitude pruning and energy-aware pruning at relative energies 0.5 to 0.1.
    ParetoLenet5Mnist,
    /// The equal-energy comparison on Caffe's LeNet and the full Fashion-MNIST (standard
    /// profile), whose layers' Eyeriss energy order differs from their network order.
    ParetoLenet5CaffeFashionMnist,
    /// Standard profile: energy-aware pruning of Caffe's LeNet for 2, 5 and 10 classes.
    EapClassesFashionMnist,
    /// Standard profile: E2-Train gated ResNet-8 on full Fashion-MNIST, three energy measures.
    E2trainFashionMnist,
}

impl Experiment {
    /// Every experiment in registry order.
    pub const ALL: [Experiment; 17] = [
        Experiment::ZooGeometry,
        Experiment::EnergyValidation,
        Experiment::BaselineLenet5,
        Experiment::Iclr19Lenet5,
        Experiment::E2trainMnist,
        Experiment::E2trainCifar10Resnet74,
        Experiment::E2trainCifar100Resnet110,
        Experiment::EapLenet5,
        Experiment::EapEstimates,
        Experiment::EapAlexnet,
        Experiment::EapGooglenet,
        Experiment::Iclr19Alexnet,
        Experiment::Iclr19Squeezenet,
        Experiment::ParetoLenet5Mnist,
        Experiment::ParetoLenet5CaffeFashionMnist,
        Experiment::EapClassesFashionMnist,
        Experiment::E2trainFashionMnist,
    ];

    /// The order of the README's result sections.
    pub const READING_ORDER: [Experiment; 17] = [
        Experiment::EnergyValidation,
        Experiment::ZooGeometry,
        Experiment::BaselineLenet5,
        Experiment::Iclr19Lenet5,
        Experiment::ParetoLenet5Mnist,
        Experiment::ParetoLenet5CaffeFashionMnist,
        Experiment::EapLenet5,
        Experiment::EapClassesFashionMnist,
        Experiment::EapEstimates,
        Experiment::E2trainMnist,
        Experiment::E2trainFashionMnist,
        Experiment::E2trainCifar10Resnet74,
        Experiment::E2trainCifar100Resnet110,
        Experiment::Iclr19Alexnet,
        Experiment::Iclr19Squeezenet,
        Experiment::EapAlexnet,
        Experiment::EapGooglenet,
    ];

    /// Registry name.
    pub fn name(self) -> &'static str {
        match self {
            Experiment::ZooGeometry => "zoo-geometry",
            Experiment::EnergyValidation => "energy-validation",
            Experiment::BaselineLenet5 => "baseline-lenet5",
            Experiment::Iclr19Lenet5 => "iclr19-lenet5",
            Experiment::E2trainMnist => "e2train-mnist",
            Experiment::E2trainCifar10Resnet74 => "e2train-cifar10-resnet74",
            Experiment::E2trainCifar100Resnet110 => "e2train-cifar100-resnet110",
            Experiment::EapLenet5 => "eap-lenet5",
            Experiment::EapEstimates => "eap-estimates",
            Experiment::EapAlexnet => "eap-alexnet",
            Experiment::EapGooglenet => "eap-googlenet",
            Experiment::Iclr19Alexnet => "iclr19-alexnet",
            Experiment::Iclr19Squeezenet => "iclr19-squeezenet",
            Experiment::ParetoLenet5Mnist => "pareto-lenet5-mnist",
            Experiment::ParetoLenet5CaffeFashionMnist => "pareto-lenet5-caffe-fashion-mnist",
            Experiment::EapClassesFashionMnist => "eap-classes-fashion-mnist",
            Experiment::E2trainFashionMnist => "e2train-fashion-mnist",
        }
    }

    /// One line on what it produces.
    pub fn about(self) -> &'static str {
        match self {
            Experiment::ZooGeometry => {
                "per-layer geometry of every model; totals vs docs/energy-models.md B.10 (no training)"
            }
            Experiment::EnergyValidation => {
                "iclr19 LeNet-5 goldens and eyeriss/isca16 AlexNet Fig. 10, paper vs ours (no training)"
            }
            Experiment::BaselineLenet5 => {
                "dense LeNet-5 on MNIST-32: quick = embedded 10k, 3 seeds; full = 60k, 1 seed"
            }
            Experiment::Iclr19Lenet5 => {
                "energy-constrained LeNet-5 (iclr19 model), budgets 0.5..0.1 vs magnitude pruning"
            }
            Experiment::E2trainMnist => {
                "E2-Train gated ResNet-20 on MNIST-32: SD/SMD/SMD+SLU/all vs baseline (energy proxy)"
            }
            Experiment::E2trainCifar10Resnet74 => {
                "full profile only: E2-Train ResNet-74 on CIFAR-10, paper preset (GPU recommended)"
            }
            Experiment::E2trainCifar100Resnet110 => {
                "full profile only: E2-Train ResNet-110 on CIFAR-100, paper preset (GPU recommended)"
            }
            Experiment::EapLenet5 => {
                "energy-aware vs magnitude pruning of LeNet-5, <= 1 point drop (eyeriss chip, N=16)"
            }
            Experiment::EapEstimates => {
                "eyeriss AlexNet dense vs Han et al. densities, SqueezeNet, GoogLeNet (no training)"
            }
            Experiment::EapAlexnet | Experiment::EapGooglenet => {
                "full profile only: EAP vs magnitude on ImageNet from pretrained weights (--init-from)"
            }
            Experiment::Iclr19Alexnet | Experiment::Iclr19Squeezenet => {
                "full profile only: projection vs magnitude at 0.2 on ImageNet, pretrained start"
            }
            Experiment::ParetoLenet5Mnist => {
                "standard: projection vs magnitude vs energy-aware at equal energy, LeNet-5/MNIST"
            }
            Experiment::ParetoLenet5CaffeFashionMnist => {
                "standard: the same on Caffe's LeNet / Fashion-MNIST (energy order != layer order)"
            }
            Experiment::EapClassesFashionMnist => {
                "standard: energy-aware pruning of Caffe's LeNet for 2, 5, 10 classes (weights vs energy)"
            }
            Experiment::E2trainFashionMnist => {
                "standard: E2-Train gated ResNet-8 on Fashion-MNIST; MACs, proxy and dataflow energy"
            }
        }
    }

    /// Why this experiment cannot run in `profile` with `ctx`, if it cannot: `reproduce` lists
    /// it as skipped, with the reason, instead of failing its runs one by one.
    pub fn unavailable(self, profile: Profile, ctx: &RunContext) -> Option<String> {
        imagenet::missing(self, profile, ctx)
    }

    /// The runs of this experiment in a profile.
    pub fn runs(self, profile: Profile, ctx: &RunContext) -> Result<Vec<RunSpec>> {
        Ok(match self {
            Experiment::ZooGeometry => zoo_geometry::runs(self),
            Experiment::EnergyValidation => energy_validation::runs(self),
            Experiment::BaselineLenet5 => baseline::runs(self, profile, ctx),
            Experiment::Iclr19Lenet5 => iclr19::runs(self, profile, ctx)?,
            Experiment::E2trainMnist
            | Experiment::E2trainFashionMnist
            | Experiment::E2trainCifar10Resnet74
            | Experiment::E2trainCifar100Resnet110 => e2train::runs(self, profile, ctx),
            Experiment::EapLenet5 => eap::runs(self, profile, ctx),
            Experiment::EapAlexnet
            | Experiment::EapGooglenet
            | Experiment::Iclr19Alexnet
            | Experiment::Iclr19Squeezenet => imagenet::runs(self, profile, ctx)?,
            Experiment::EapEstimates => eap_estimates::runs(self),
            Experiment::ParetoLenet5Mnist | Experiment::ParetoLenet5CaffeFashionMnist => {
                pareto::runs(self, profile, ctx)?
            }
            Experiment::EapClassesFashionMnist => eap::classes::runs(self, profile, ctx),
        })
    }

    /// The README section of this experiment's records (sorted by run id).
    pub fn section(self, records: &[RunRecord]) -> Result<Section> {
        let mut section = self.section_of_results(records)?;
        // Failed runs have no metrics to tabulate; every table of the experiment names them.
        let failed: Vec<String> = records
            .iter()
            .filter_map(|r| match &r.metrics {
                Metrics::Failed(f) => Some(format!("- **failed** `{}`: {}", r.run, f.failed)),
                _ => None,
            })
            .collect();
        if !failed.is_empty() {
            let note = format!(
                "Failed runs (excluded from the means above, counted in no column):\n\n{}\n",
                failed.join("\n")
            );
            section.outro = if section.outro.is_empty() {
                note
            } else {
                format!("{}\n\n{note}", section.outro.trim_end())
            };
        }
        Ok(section)
    }

    fn section_of_results(self, records: &[RunRecord]) -> Result<Section> {
        match self {
            Experiment::ZooGeometry => zoo_geometry::section(&typed(records, Metrics::geometry)?),
            Experiment::EnergyValidation => {
                energy_validation::section(&typed(records, Metrics::validation)?)
            }
            Experiment::BaselineLenet5 => baseline::section(&typed(records, Metrics::train)?),
            Experiment::Iclr19Lenet5 | Experiment::Iclr19Alexnet | Experiment::Iclr19Squeezenet => {
                iclr19::section(&typed(records, Metrics::constrained)?)
            }
            Experiment::E2trainMnist
            | Experiment::E2trainFashionMnist
            | Experiment::E2trainCifar10Resnet74
            | Experiment::E2trainCifar100Resnet110 => {
                e2train::section(self, &typed(records, Metrics::e2train)?)
            }
            Experiment::EapLenet5 | Experiment::EapAlexnet | Experiment::EapGooglenet => {
                eap::section(&typed(records, Metrics::eap)?)
            }
            Experiment::EapEstimates => eap_estimates::section(&typed(records, Metrics::estimate)?),
            Experiment::ParetoLenet5Mnist => pareto::section(self, 10, records),
            Experiment::ParetoLenet5CaffeFashionMnist => pareto::section(self, 10, records),
            Experiment::EapClassesFashionMnist => {
                eap::classes::section(&typed(records, Metrics::eap)?)
            }
        }
    }
}

impl std::fmt::Display for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Experiment {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        by_name(&Experiment::ALL, Experiment::name, s)
            .with_context(|| format!("no experiment `{s}` in the registry"))
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

/// Experiment profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Offline, embedded data, CPU-sized; the default.
    Quick,
    /// Full MNIST and Fashion-MNIST, the papers' settings where two CPU cores allow them (it was
    /// sized for four hours; measured in parts, it takes more: the README's wall-time
    /// paragraph), every remaining deviation recorded: the comparisons the papers' claims need.
    Standard,
    /// Full datasets (downloaded or `--data-dir`), paper-sized; meant for a GPU machine.
    Full,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 3] = [Profile::Quick, Profile::Standard, Profile::Full];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Standard => "standard",
            Profile::Full => "full",
        }
    }

    /// One line on what it is.
    pub fn about(self) -> &'static str {
        match self {
            Profile::Quick => "offline, embedded data, CPU-sized; the default",
            Profile::Standard => {
                "full MNIST and Fashion-MNIST, papers' settings, CPU-sized (over 4 hours on 2 cores)"
            }
            Profile::Full => "full datasets (downloaded or --data-dir), paper-sized; for a GPU",
        }
    }
}

impl FromStr for Profile {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        by_name(&Profile::ALL, Profile::name, s)
            .with_context(|| format!("no profile `{s}` (quick, standard or full)"))
    }
}

/// The one of `all` whose `name` is `s`.
fn by_name<T: Copy>(all: &[T], name: fn(T) -> &'static str, s: &str) -> Option<T> {
    all.iter().copied().find(|&t| name(t) == s)
}

/// What every run of an invocation shares.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// Device for training runs.
    /// The kind of device the training runs use: what their specs record. Which GPU a run
    /// executes on is its job's ([`RunEnv::device`]), not part of its spec.
    pub device: DeviceKind,
    /// Directory with full datasets, if given (the download cache otherwise). Where the data
    /// lies is no part of a spec, so the registry's runs do not depend on it.
    pub data_dir: Option<PathBuf>,
    /// Whether an ImageNet folder was given (`--imagenet-dir`): the ImageNet experiments run
    /// only with it.
    pub imagenet: bool,
    /// Architectures with a pretrained weights file (`--init-from`): the ImageNet experiments
    /// start from them.
    pub init_from: std::collections::BTreeSet<Arch>,
}

impl RunContext {
    /// Where the runs read full datasets from: `--data-dir` or the download cache.
    pub fn data(&self) -> DataDir {
        DataDir::new(self.data_dir.clone())
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
    /// Price published layer tables and compare with the published values.
    EnergyValidation {
        /// Which table.
        check: energy_validation::Check,
    },
    /// Train with the baseline trainer.
    Train(TrainSpec),
    /// Energy-constrained training from a dense model.
    Constrained(Box<iclr19::ConstrainedSpec>),
    /// E2-Train training of a gated ResNet, priced by the training-energy model.
    E2Train(Box<e2train::E2TrainSpec>),
    /// Energy-aware or magnitude pruning of a dense model, priced by the eyeriss model.
    Eap(Box<eap::EapSpec>),
    /// Eyeriss estimates of zoo geometries, no data.
    EapEstimate(eap_estimates::EstimateSpec),
}

impl RunSpec {
    /// The seed recorded with the run (0 for deterministic, seedless runs).
    pub fn seed(&self) -> u64 {
        match &self.kind {
            RunKind::Geometry { .. } | RunKind::EnergyValidation { .. } => 0,
            RunKind::Train(t) => t.seed,
            RunKind::Constrained(c) => c.dense.seed,
            RunKind::E2Train(e) => e.config.seed,
            RunKind::Eap(e) => e.dense.seed,
            RunKind::EapEstimate(_) => 0,
        }
    }

    /// The dense model the run starts from, for the kinds that start from one (compression and
    /// pruning); baseline and E2-Train runs train from their seeded initialisation.
    pub fn dense_mut(&mut self) -> Option<&mut TrainSpec> {
        match &mut self.kind {
            RunKind::Constrained(c) => Some(&mut c.dense),
            RunKind::Eap(e) => Some(&mut e.dense),
            _ => None,
        }
    }

    /// The dataset whose full copy the run reads, if it reads one.
    pub fn full_data(&self) -> Option<DatasetId> {
        let (dataset, data) = match &self.kind {
            RunKind::Train(t) => (t.dataset, t.data),
            RunKind::Constrained(c) => (c.dense.dataset, c.dense.data),
            RunKind::E2Train(e) => (e.dataset, e.data),
            RunKind::Eap(e) => (e.dense.dataset, e.dense.data),
            RunKind::Geometry { .. }
            | RunKind::EnergyValidation { .. }
            | RunKind::EapEstimate(_) => return None,
        };
        // ImageNet has no record files to locate: its folder is read as it is.
        (data == DataSource::Full && dataset.has_records()).then_some(dataset)
    }

    /// `experiment/id`, how runs are named in lines and progress.
    pub fn label(&self) -> String {
        format!("{}/{}", self.experiment, self.id)
    }
}

/// What a run gets besides its spec.
pub struct RunEnv<'a> {
    /// The output root: records, checkpoints and the dense-model cache.
    pub out: &'a Path,
    /// This run's checkpoint directory.
    pub checkpoints: PathBuf,
    /// `experiment/id`.
    pub label: String,
    /// Continue from checkpoints where the run has them.
    pub resume: bool,
    /// Where full datasets are read from.
    pub data: &'a DataDir,
    /// Lines and observers.
    pub reporter: &'a dyn Reporter,
    /// The weight files dense models start from, by architecture (`reproduce --init-from`); a
    /// spec names its file by content ([`TrainSpec::init_from`]), never by path.
    pub init_files: &'a InitFiles,
    /// The device this run's job executes on (one of `reproduce --device`).
    pub device: DeviceSpec,
}

/// Weight files by the architecture they initialise.
pub type InitFiles = std::collections::BTreeMap<Arch, PathBuf>;

impl RunEnv<'_> {
    /// Opens the job's device for a spec of device kind `kind`.
    pub fn open(&self, kind: DeviceKind) -> Result<Device> {
        if self.device.kind() != kind {
            bail!(
                "{}: the spec runs on {kind}, this job's device is {}",
                self.label,
                self.device
            );
        }
        self.device
            .to_device()
            .with_context(|| format!("cannot use the device {}", self.device))
    }

    /// The weight file `dense` starts from, when its spec names one.
    pub fn init_file(&self, dense: &TrainSpec) -> Option<&Path> {
        dense
            .init_from
            .as_ref()
            .and_then(|_| self.init_files.get(&dense.arch))
            .map(PathBuf::as_path)
    }
}

/// The typed metrics of a record, one variant per kind of run that leaves a record; stored as
/// the variant's own JSON object (which variant follows from the record's spec).
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Metrics {
    /// `zoo-geometry`.
    Geometry(zoo_geometry::GeometryMetrics),
    /// `energy-validation`.
    Validation(energy_validation::ValidationMetrics),
    /// A baseline training run.
    Train(TrainOutcome),
    /// `iclr19-lenet5`.
    Constrained(Box<iclr19::ConstrainedMetrics>),
    /// `e2train-*`.
    E2Train(Box<e2train::E2TrainMetrics>),
    /// `eap-lenet5`.
    Eap(Box<eap::EapMetrics>),
    /// `eap-estimates`.
    Estimate(Box<eap_estimates::EstimateMetrics>),
    /// A run that diverged or could not reach its target, of any kind.
    Failed(FailedRun),
}

/// What a failed run leaves in its record: the tables list it as failed with the reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedRun {
    /// Why, as the error chain says it.
    pub failed: String,
}

impl FailedRun {
    /// The failure `error` stands for, if it is one a run can end in rather than a fault of the
    /// tool: a diverged loss, an energy level or budget no weight choice reaches.
    pub fn of(error: &anyhow::Error) -> Option<Self> {
        let result = error.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<tensor_core::Error>(),
                Some(tensor_core::Error::Diverged { .. })
            ) || matches!(
                cause.downcast_ref::<energy_prune::Error>(),
                Some(
                    energy_prune::Error::TargetUnreached { .. }
                        | energy_prune::Error::TargetBelowFloor { .. }
                        | energy_prune::Error::Core(tensor_core::Error::Diverged { .. })
                )
            ) || matches!(
                cause.downcast_ref::<sparse_proj::Error>(),
                Some(
                    sparse_proj::Error::BudgetInfeasible { .. }
                        | sparse_proj::Error::Core(tensor_core::Error::Diverged { .. })
                )
            ) || matches!(
                cause.downcast_ref::<e2_train::Error>(),
                Some(e2_train::Error::Core(tensor_core::Error::Diverged { .. }))
            )
        });
        result.then(|| FailedRun {
            failed: format!("{error:#}"),
        })
    }
}

impl Metrics {
    /// Reads the metrics of a run of `kind` from their stored JSON.
    pub fn from_json(kind: &RunKind, value: serde_json::Value) -> Result<Self> {
        use serde_json::from_value as parse;
        if value.get("failed").is_some() {
            return Ok(Metrics::Failed(parse(value)?));
        }
        Ok(match kind {
            RunKind::Geometry { .. } => Metrics::Geometry(parse(value)?),
            RunKind::EnergyValidation { .. } => Metrics::Validation(parse(value)?),
            RunKind::Train(_) => Metrics::Train(parse(value)?),
            RunKind::Constrained(_) => Metrics::Constrained(parse(value)?),
            RunKind::E2Train(_) => Metrics::E2Train(parse(value)?),
            RunKind::Eap(_) => Metrics::Eap(parse(value)?),
            RunKind::EapEstimate(_) => Metrics::Estimate(parse(value)?),
        })
    }
}

/// One accessor per kind of metrics, `Some` when the record holds that kind: the `pick` of
/// [`typed`].
macro_rules! accessors {
    ($($name:ident => $variant:ident: $ty:ty;)*) => {
        impl Metrics {
            $(fn $name(&self) -> Option<&$ty> {
                match self {
                    Metrics::$variant(m) => Some(m),
                    _ => None,
                }
            })*
        }
    };
}

accessors! {
    geometry => Geometry: zoo_geometry::GeometryMetrics;
    validation => Validation: energy_validation::ValidationMetrics;
    train => Train: TrainOutcome;
    constrained => Constrained: iclr19::ConstrainedMetrics;
    e2train => E2Train: e2train::E2TrainMetrics;
    eap => Eap: eap::EapMetrics;
    estimate => Estimate: eap_estimates::EstimateMetrics;
}

/// Records with their metrics of one type, as the table sections take them.
pub type Typed<'a, M> = [(&'a RunRecord, &'a M)];

fn typed<M>(
    records: &[RunRecord],
    pick: fn(&Metrics) -> Option<&M>,
) -> Result<Vec<(&RunRecord, &M)>> {
    records
        .iter()
        .filter(|r| !matches!(r.metrics, Metrics::Failed(_)))
        .map(|r| {
            pick(&r.metrics)
                .map(|m| (r, m))
                .with_context(|| format!("record {} has unexpected metrics", r.spec.label()))
        })
        .collect()
}

/// Executes one run: its metrics, and whether it is bit-for-bit reproducible from its seed.
pub fn execute(run: &RunSpec, env: &RunEnv<'_>) -> Result<(Metrics, bool)> {
    let cpu = |d: DeviceKind| d == DeviceKind::Cpu;
    Ok(match &run.kind {
        RunKind::Geometry { arch } => (Metrics::Geometry(zoo_geometry::run(*arch)?), true),
        RunKind::EnergyValidation { check } => {
            (Metrics::Validation(energy_validation::run(*check)?), true)
        }
        RunKind::Train(spec) => {
            let mut obs = env.reporter.observer(&env.label);
            let outcome = train::train_from(
                spec,
                env.data,
                None,
                env.device,
                &env.checkpoints,
                env.resume,
                obs.as_mut(),
            )?;
            let deterministic = cpu(spec.device) && !spec.arch.uses_dropout();
            (Metrics::Train(outcome), deterministic)
        }
        RunKind::Constrained(spec) => {
            let metrics = iclr19::run(spec, env)?;
            let deterministic = cpu(spec.dense.device) && !spec.dense.arch.uses_dropout();
            (Metrics::Constrained(Box::new(metrics)), deterministic)
        }
        RunKind::E2Train(spec) => {
            // Every random stream of e2-train (drops, gates, stochastic depth) and of the data
            // (shuffling, augmentation) is drawn from the run's seed.
            let metrics = e2train::run(spec, env)?;
            (Metrics::E2Train(Box::new(metrics)), cpu(spec.device))
        }
        RunKind::Eap(spec) => {
            // Fine-tuning is seeded and the least squares are deterministic across threads.
            let metrics = eap::run(spec, env)?;
            let deterministic = cpu(spec.dense.device) && !spec.dense.arch.uses_dropout();
            (Metrics::Eap(Box::new(metrics)), deterministic)
        }
        RunKind::EapEstimate(spec) => {
            (Metrics::Estimate(Box::new(eap_estimates::run(spec)?)), true)
        }
    })
}

/// One line on a record's headline result.
pub fn summary(record: &RunRecord) -> Option<String> {
    let what = match (&record.spec.kind, &record.metrics) {
        (RunKind::Geometry { .. }, Metrics::Geometry(m)) => zoo_geometry::summary(m),
        (RunKind::EnergyValidation { .. }, Metrics::Validation(m)) => energy_validation::summary(m),
        (RunKind::Train(spec), Metrics::Train(m)) => baseline::summary(spec, m),
        (RunKind::Constrained(spec), Metrics::Constrained(m)) => iclr19::summary(spec, m),
        (RunKind::E2Train(spec), Metrics::E2Train(m)) => e2train::summary(spec, m),
        (RunKind::Eap(_), Metrics::Eap(m)) => eap::summary(m),
        (RunKind::EapEstimate(_), Metrics::Estimate(m)) => eap_estimates::summary(m),
        (_, Metrics::Failed(f)) => format!("failed: {}", f.failed),
        _ => return None,
    };
    Some(format!("{:<34} {what}", record.spec.label()))
}

#[cfg(test)]
mod tests;
