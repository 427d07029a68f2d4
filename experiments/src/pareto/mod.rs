//! `pareto-lenet5-mnist` and `pareto-lenet5-caffe-fashion-mnist` (standard profile): the ICLR'19
//! paper's central claim, higher accuracy than energy-aware pruning at the same or lower energy,
//! tested at equal energy. At each relative energy level of the ICLR'19 model (0.5, 0.3, 0.2,
//! 0.15, 0.1), three methods start from the same dense model: the energy-constrained projection
//! (with input masks below the unmasked floor, docs/sparse-projection.md §6), magnitude pruning
//! at equal energy in the same trainer, and energy-aware pruning (CVPR'17) whose accuracy budget
//! is searched until the pruned network meets the level (energy_prune::prune_to_energy; its
//! layer order still comes from the Eyeriss model, docs/energy-aware-pruning.md §2). Every final
//! model is priced by both models.
//!
//! The second network is Caffe's LeNet (20-50-500-10, the "LeNet-5" of Han et al.'s pruning
//! paper) on Fashion-MNIST: under the Eyeriss model its layers' energy order (conv2, fc1, conv1,
//! fc2 with dense activations; fc1 first with the measured activations energy-aware pruning
//! prices) differs from their order in the network, so the energy-aware ordering is exercised,
//! where on the ICLR'19 LeNet-5 the two convs cost nearly the same and come first in either
//! order.

use anyhow::{Context, Result};
use cnn_zoo::Arch;
use datasets::DatasetId;
use energy_model::iclr19::Iclr19;
use energy_prune::{DropSearch, EnergyPruneConfig};
use sparse_proj::{ConstrainedConfig, GreedyVariant, MaskConfig, Projection};
use tensor_core::{DType, Density, Device, RelativeBudget, SeededInit};

use crate::data::DataSource;
use crate::deviation::Deviation;
use crate::eap::{EapMethod, EapSpec};
use crate::iclr19::{ConstrainedSpec, Reasons};
use crate::registry::{Experiment, Profile, RunContext, RunKind, RunSpec};
use crate::train::TrainSpec;

mod table;

pub use table::section;

/// The levels of relative energy, under the ICLR'19 model, every method is brought to.
pub const LEVELS: [f64; 5] = [0.5, 0.3, 0.2, 0.15, 0.1];

/// Training records of the full MNIST and Fashion-MNIST (the last 5,000 of the 60,000 held out).
const TRAIN: usize = 55_000;
const VAL: usize = 5_000;

/// What one network's comparison runs.
struct Setup {
    arch: Arch,
    dataset: DatasetId,
    /// Epochs per phase of the constrained trainer at the levels weights alone reach.
    epochs: usize,
    /// Of `epochs`, the last ones that train at the target budget.
    settle_epochs: usize,
    /// Epochs per phase at the levels below the floor (masks and weights alternate).
    masked_epochs: usize,
}

fn setup(experiment: Experiment) -> Option<Setup> {
    match experiment {
        Experiment::ParetoLenet5Mnist => Some(Setup {
            arch: Arch::Lenet5,
            dataset: DatasetId::Mnist,
            epochs: 15,
            settle_epochs: 5,
            masked_epochs: 5,
        }),
        Experiment::ParetoLenet5CaffeFashionMnist => Some(Setup {
            arch: Arch::Lenet5Caffe,
            dataset: DatasetId::FashionMnist,
            epochs: 6,
            settle_epochs: 2,
            masked_epochs: 2,
        }),
        _ => None,
    }
}

/// The standard profile's reasons for departing from the reference trainer.
const REASONS: &Reasons = &Reasons {
    epochs: "the standard profile's four hours on two CPU cores hold every level, method and \
             seed of both networks only at this length (each run starts from a converged dense \
             model)",
    lr: "unused",
    reserved: "unused",
    masks: "masked levels below the floor are reached in three rounds instead of eight",
    data: "unused",
    settle: "measured on LeNet-5 / MNIST at level 0.2, 15 epochs, seed 1: with the reference \
             schedule validation falls from 99.04% to 97.48% in the final epoch, when the budget \
             reaches the target, and the run ends at 96.9% test accuracy (dense 99.18%); \
             holding the target for the last third lets the weights recover",
};

/// The dense starting model: the baseline recipe on the full training split (55,000 records),
/// 20 epochs of cosine-decayed momentum SGD.
pub fn dense_recipe(arch: Arch, dataset: DatasetId, seed: u64, ctx: &RunContext) -> TrainSpec {
    let mut spec = TrainSpec::recipe(arch, dataset);
    spec.seed = seed;
    spec.device = ctx.device;
    spec.data = DataSource::Full;
    spec.train_limit = Some(TRAIN);
    spec.epochs = 20;
    spec
}

/// The relative energy under the ICLR'19 model below which weight pruning alone cannot go:
/// the floor of docs/energy-models.md A.5 for `arch`.
pub fn floor(arch: Arch, classes: usize) -> Result<f64> {
    let init = SeededInit::new(0);
    let [c, _, _] = arch.input_shape();
    let net = cnn_zoo::build(arch, classes, c, init.var_builder(DType::F32, &Device::Cpu))
        .with_context(|| format!("cannot build {arch}"))?;
    let geometry: Vec<_> = net.layers().iter().map(|l| l.geometry).collect();
    Ok(Iclr19::paper().normalization(&geometry)?.floor())
}

/// The masks of the levels below the floor: a sparser first density and larger steps so the
/// lowest level is feasible by the third round (the reference's 0.9 and 0.1 need eight).
fn masks() -> Result<MaskConfig> {
    Ok(MaskConfig {
        initial_density: Density::new(0.5)?,
        density_step: 0.2,
        max_rounds: 3,
        ..MaskConfig::default()
    })
}

/// Every level and method on seeds 1 to 3 (standard profile only).
pub fn runs(experiment: Experiment, profile: Profile, ctx: &RunContext) -> Result<Vec<RunSpec>> {
    let Some(setup) = setup(experiment) else {
        return Ok(Vec::new());
    };
    if profile != Profile::Standard {
        return Ok(Vec::new());
    }
    let floor = floor(setup.arch, setup.dataset.num_classes())?;
    let mut runs = Vec::new();
    for seed in [1, 2, 3] {
        let dense = dense_recipe(setup.arch, setup.dataset, seed, ctx);
        for level in LEVELS {
            let masked = level < floor;
            for (tag, projection) in [
                (
                    "proj",
                    Projection::Weighted {
                        variant: GreedyVariant::Prefix,
                    },
                ),
                ("mag", Projection::Magnitude),
            ] {
                let config = ConstrainedConfig {
                    relative_budget: RelativeBudget::new(level)?,
                    epochs: if masked {
                        setup.masked_epochs
                    } else {
                        setup.epochs
                    },
                    settle_epochs: if masked { 0 } else { setup.settle_epochs },
                    projection,
                    masks: masked.then(masks).transpose()?,
                    ..ConstrainedConfig::default()
                };
                runs.push(RunSpec {
                    experiment,
                    id: format!("b{level}-{tag}-seed{seed}"),
                    kind: RunKind::Constrained(Box::new(ConstrainedSpec::new(
                        dense.clone(),
                        VAL,
                        config,
                        REASONS,
                    ))),
                });
            }
            // Below the floor no pruning of weights reaches the level; the table says so.
            if !masked {
                let mut config = EnergyPruneConfig::reconstruction_lenet5_mnist();
                config.seed = seed;
                runs.push(RunSpec {
                    experiment,
                    id: format!("b{level}-eap-seed{seed}"),
                    kind: RunKind::Eap(Box::new(EapSpec::lenet(
                        dense.clone(),
                        VAL,
                        EapMethod::ToEnergy {
                            config,
                            level: RelativeBudget::new(level)?,
                            search: DropSearch {
                                max_drop: 0.5,
                                steps: 6,
                            },
                        },
                        vec![Deviation::new(
                            "stopping rule",
                            "a fixed top-5 accuracy budget",
                            "the smallest accuracy budget (bisection, 6 halvings of [0, 0.5]) \
                             whose result meets the energy level",
                            "the comparison is at equal energy; the procedure is otherwise \
                             docs/energy-aware-pruning.md §2 with the LeNet reconstruction \
                             settings",
                        )],
                        None,
                    ))),
                });
            }
        }
    }
    Ok(runs)
}
