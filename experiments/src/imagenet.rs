//! The full profile's ImageNet experiments, which start from pretrained dense weights
//! (`reproduce --init-from ARCH=FILE`, torchvision-named) and read the ILSVRC-2012 folders
//! (`--imagenet-dir`): energy-constrained AlexNet and SqueezeNet 1.0 (ICLR'19) and
//! energy-aware pruning of AlexNet and GoogLeNet (CVPR'17). Without the folder or the weights
//! `reproduce` skips them, saying which is missing; the dense model is never trained here.

use anyhow::Result;
use cnn_zoo::Arch;
use datasets::DatasetId;
use energy_prune::{EnergyPruneConfig, FineTuneConfig};
use sparse_proj::{BudgetDecay, ConstrainedConfig, GreedyVariant, Projection};
use tensor_core::{RelativeBudget, SgdConfig};

use crate::data::DataSource;
use crate::deviation::Deviation;
use crate::eap::{EapMethod, EapSpec, EnergySetting, LENET5_ENERGY};
use crate::iclr19::{ConstrainedSpec, Reasons};
use crate::registry::{Experiment, Profile, RunContext, RunKind, RunSpec};
use crate::train::TrainSpec;

/// Training images held out for the decisions (round stopping, accept/reject): as many as the
/// ICLR'19 reference's fixed training subset.
pub const HELD_OUT: usize = 10_000;

/// The architecture an ImageNet experiment compresses, `None` for the others.
pub fn arch(experiment: Experiment) -> Option<Arch> {
    match experiment {
        Experiment::Iclr19Alexnet | Experiment::EapAlexnet => Some(Arch::Alexnet),
        Experiment::Iclr19Squeezenet => Some(Arch::Squeezenet1_0),
        Experiment::EapGooglenet => Some(Arch::Googlenet),
        _ => None,
    }
}

/// Why an ImageNet experiment cannot run in `profile` with `ctx`: it runs in the full profile
/// only, with the ImageNet folder and its architecture's pretrained weights.
pub fn missing(experiment: Experiment, profile: Profile, ctx: &RunContext) -> Option<String> {
    let arch = arch(experiment)?;
    if profile != Profile::Full {
        return None;
    }
    let mut needs = Vec::new();
    if !ctx.imagenet {
        needs.push("the ILSVRC-2012 folder (--imagenet-dir, train/ and val/ in class folders)");
    }
    if !ctx.init_from.contains(&arch) {
        needs.push("pretrained weights (--init-from ARCH=FILE, a torchvision-named state dict)");
    }
    (!needs.is_empty()).then(|| {
        format!(
            "needs {} for {arch}; the dense model is not trained from scratch here",
            needs.join(" and ")
        )
    })
}

/// The dense model of an ImageNet run: `arch` as pretrained, evaluated on the validation
/// folder (the runner sets the weights file and zero epochs from `--init-from`).
fn dense(arch: Arch, ctx: &RunContext) -> TrainSpec {
    let mut spec = TrainSpec::recipe(arch, DatasetId::ImageNet);
    spec.data = DataSource::Full;
    spec.device = ctx.device;
    spec
}

/// The runs of an ImageNet experiment (none outside the full profile or without its inputs).
pub fn runs(experiment: Experiment, profile: Profile, ctx: &RunContext) -> Result<Vec<RunSpec>> {
    let Some(arch) = arch(experiment) else {
        return Ok(Vec::new());
    };
    if profile != Profile::Full || missing(experiment, profile, ctx).is_some() {
        return Ok(Vec::new());
    }
    let dense = dense(arch, ctx);
    let run = |id: &str, kind: RunKind| RunSpec {
        experiment,
        id: id.into(),
        kind,
    };
    Ok(match experiment {
        Experiment::Iclr19Alexnet | Experiment::Iclr19Squeezenet => constrained(dense)?
            .into_iter()
            .map(|(id, spec)| run(id, RunKind::Constrained(Box::new(spec))))
            .collect(),
        _ => pruning(dense)
            .into_iter()
            .map(|(id, spec)| run(id, RunKind::Eap(Box::new(spec))))
            .collect(),
    })
}

/// The ImageNet runs keep every reference setting, so no reason is ever printed (a test holds
/// them to no deviation).
const NO_REASONS: &Reasons = &Reasons {
    epochs: "",
    lr: "",
    reserved: "",
    masks: "",
    data: "",
    settle: "",
};

/// The reference trainer as its README runs AlexNet (budget 0.2, exponential budget decay, no
/// masks), against magnitude pruning at the same budget; every other setting is the reference's.
fn constrained(dense: TrainSpec) -> Result<Vec<(&'static str, ConstrainedSpec)>> {
    let mut runs = Vec::new();
    for (id, projection) in [
        (
            "b0.2-proj-seed1",
            Projection::Weighted {
                variant: GreedyVariant::Prefix,
            },
        ),
        ("b0.2-mag-seed1", Projection::Magnitude),
    ] {
        let config = ConstrainedConfig {
            relative_budget: RelativeBudget::new(0.2)?,
            projection,
            decay: BudgetDecay::Exponential,
            ..Default::default()
        };
        runs.push((
            id,
            ConstrainedSpec::new(dense.clone(), HELD_OUT, config, NO_REASONS),
        ));
    }
    Ok(runs)
}

/// The energy setting of the ImageNet pruning runs: the fabricated chip at batch 16, as the
/// LeNet runs (ISCA'16 Fig. 10 prices AlexNet at that batch).
pub const IMAGENET_ENERGY: EnergySetting = LENET5_ENERGY;

/// The energy-aware procedure on ImageNet: the paper's 1-point budget, the LeNet
/// reconstruction's restoration and search, 1,024 calibration images, one epoch of fine-tuning
/// at the usual fine-tuning rate of a pretrained ImageNet model.
pub fn imagenet_config() -> EnergyPruneConfig {
    EnergyPruneConfig {
        calibration_images: 1_024,
        finetune: FineTuneConfig {
            epochs: 1,
            sgd: SgdConfig {
                lr: 0.001,
                momentum: 0.9,
                weight_decay: 5e-4,
            },
        },
        seed: 1,
        ..EnergyPruneConfig::reconstruction_lenet5_mnist()
    }
}

/// Energy-aware pruning and the magnitude search under the same budget and fine-tuning.
fn pruning(dense: TrainSpec) -> Vec<(&'static str, EapSpec)> {
    let config = imagenet_config();
    let magnitude = EapMethod::Magnitude {
        finetune: config.finetune,
        max_accuracy_drop: config.max_accuracy_drop,
        min_density: 0.02,
        iterations: 4,
    };
    let deviations = vec![
        Deviation::new(
            "accuracy budget",
            "1 point of top-5",
            "1 point of top-1 on the held-out images",
            "energy-prune decides on top-1; a top-1 budget is the stricter one",
        ),
        Deviation::new(
            "procedure settings",
            "not given by the paper",
            "calibration 1,024 images × 8 positions, bisection over the ratio, restoration \
             and ridge as on LeNet-5, one epoch of fine-tuning at lr 0.001",
            "docs/energy-aware-pruning.md §2: the paper reports the results, not these settings",
        ),
    ];
    [
        ("seed1-eap", EapMethod::EnergyAware(config)),
        ("seed1-mag", magnitude),
    ]
    .into_iter()
    .map(|(id, method)| {
        let spec = EapSpec {
            dense: dense.clone(),
            val_records: HELD_OUT,
            batch: 256,
            energy: IMAGENET_ENERGY,
            method,
            deviations: deviations.clone(),
            classes: None,
        };
        (id, spec)
    })
    .collect()
}

#[cfg(test)]
mod tests;
