//! The ImageNet-style folder loader feeds the ImageNet networks: a tiny folder of generated
//! JPEGs in the ILSVRC-2012 layout, read by the real loader (worker threads, prefetch), trains
//! AlexNet (224 × 224) and SqueezeNet 1.0 (227 × 227) for a step.

use std::path::PathBuf;

use cnn_zoo::Arch;
use datasets::image_folder::synthetic_jpeg;
use datasets::{FolderBatchConfig, FolderBatches, ImageNetDir, ImagePipeline};
use integration_tests::{seeded_model, snapshot};
use tensor_core::tensor::nn;
use tensor_core::{BatchSource, Device, MomentumSgd, SgdConfig};

const CLASSES: u32 = 3;

/// `train/` and `val/` with `CLASSES` class folders of JPEGs at ImageNet's common 500 × 375
/// and a portrait 375 × 500, two training images per class.
fn imagenet_folder(name: &str) -> anyhow::Result<PathBuf> {
    imagenet_folder_of(name, 2)
}

/// As [`imagenet_folder`] with `train_per_class` training images per class.
fn imagenet_folder_of(name: &str, train_per_class: u32) -> anyhow::Result<PathBuf> {
    let root = std::env::temp_dir().join(format!("it-imagenet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (split, per_class) in [("train", train_per_class), ("val", 1)] {
        for class in 0..CLASSES {
            let dir = root.join(split).join(format!("n{:08}", 1_440_764 + class));
            std::fs::create_dir_all(&dir)?;
            for i in 0..per_class {
                let (w, h) = if i % 2 == 0 { (500, 375) } else { (375, 500) };
                let bytes = synthetic_jpeg(w, h, class, u64::from(i))?;
                std::fs::write(
                    dir.join(format!("ILSVRC2012_{split}_{class}{i}.JPEG")),
                    bytes,
                )?;
            }
        }
    }
    Ok(root)
}

fn one_step(arch: Arch, root: &std::path::Path) -> anyhow::Result<()> {
    let dir = ImageNetDir::open(root)?;
    assert_eq!(dir.train.classes().len(), CLASSES as usize);
    // The crop is the network's input side: 224 for AlexNet, 227 for SqueezeNet 1.0.
    let [_, side, _] = arch.input_shape();
    let crop = side as u32;
    let config = FolderBatchConfig::training(4, 7, 2);
    let pipeline = ImagePipeline::imagenet_train().sized(256, crop);
    let mut train = FolderBatches::new(dir.train, pipeline, config, &Device::Cpu)?;
    assert_eq!(train.batches_per_epoch(), 2);
    let (xs, ys) = train.batch(0, 0)?;
    assert_eq!(xs.dims(), &[4, 3, side, side]);

    let (net, init) = seeded_model(arch, CLASSES as usize, 3, 1)?;
    let before = snapshot(&init)?;
    let vars = init.named_vars().into_iter().map(|(_, v)| v).collect();
    let cfg = SgdConfig {
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 5e-4,
    };
    let mut opt = MomentumSgd::with_config(vars, cfg)?;
    let loss = nn::loss::cross_entropy(&net.forward_t(&xs, true)?, &ys)?;
    let value = loss.to_scalar::<f32>()?;
    assert!(value.is_finite() && value > 0.0, "{arch}: loss {value}");
    opt.step_grads(&loss.backward()?)?;
    let after = snapshot(&init)?;
    let moved = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.1 != a.1)
        .count();
    assert!(
        moved > before.len() / 2,
        "{arch}: {moved} of {} tensors moved",
        before.len()
    );

    // The validation split goes through the centre-crop pipeline in folder order.
    let mut val = FolderBatches::new(
        dir.val,
        ImagePipeline::imagenet_eval().sized(256, crop),
        FolderBatchConfig::evaluation(2, 2),
        &Device::Cpu,
    )?;
    let eval = tensor_core::evaluate("val", &mut val, |xs| net.forward_t(xs, false))?;
    assert_eq!(eval.samples, CLASSES as usize);
    assert!(
        eval.loss.is_finite(),
        "{arch}: validation loss {}",
        eval.loss
    );
    Ok(())
}

#[test]
fn alexnet_and_squeezenet_train_a_step_from_an_imagenet_folder() -> anyhow::Result<()> {
    let root = imagenet_folder("step")?;
    for arch in [Arch::Alexnet, Arch::Squeezenet1_0] {
        one_step(arch, &root)?;
    }
    std::fs::remove_dir_all(&root)?;
    Ok(())
}

/// The dense trainer reads ImageNet from its folder: SqueezeNet 1.0 trains an epoch of the six
/// training images through the folder loader and is tested on the three validation images, with
/// top-5 beside top-1; a resumed run finds the epoch done and reports the same.
#[test]
fn the_dense_trainer_trains_and_tests_on_an_imagenet_folder() -> anyhow::Result<()> {
    use experiments::data::{DataDir, DataSource};
    use experiments::train::{TrainSpec, train};

    let root = imagenet_folder("trainer")?;
    let mut spec = TrainSpec::recipe(Arch::Squeezenet1_0, datasets::DatasetId::ImageNet);
    spec.data = DataSource::Full;
    spec.epochs = 1;
    spec.batch = 4;
    let data = DataDir::default().with_imagenet(Some(root.clone()));
    let out_dir = root.join("run");
    let out = train(
        &spec,
        &data,
        &out_dir,
        false,
        &mut tensor_core::NoopObserver,
    )?;
    assert_eq!((out.train_samples, out.test_samples), (6, 3));
    assert_eq!(out.history.len(), 1);
    let epoch = &out.history[0];
    assert!(epoch.train_loss.is_finite() && epoch.test_loss.is_finite());
    // The network has ImageNet's 1000 outputs, of which the folder uses three.
    let top5 = epoch.test_top5.expect("an ImageNet run reports top-5");
    assert!((epoch.test_accuracy..=1.0).contains(&top5), "{top5}");
    assert_eq!(out.final_top5, Some(top5));
    assert!(out.checkpoint.exists());
    let resumed = train(&spec, &data, &out_dir, true, &mut tensor_core::NoopObserver)?;
    assert_eq!(resumed.history, out.history);
    std::fs::remove_dir_all(&root)?;
    Ok(())
}

/// The compression runs read ImageNet from its folder, starting from torchvision-named weights
/// (PyTorch's SqueezeNet 1.0 fixture as the "pretrained" model): the ICLR'19 projection trains
/// a phase and meets its budget, energy-aware pruning prunes every layer with calibration images
/// drawn from the training folder; both test on the validation folder with top-5.
#[test]
fn compression_runs_start_from_weights_and_read_the_imagenet_folder() -> anyhow::Result<()> {
    use energy_prune::{
        ActivationDensity, BudgetSplit, EnergyPruneConfig, FineTuneConfig, RatioSearch,
        RestoreConfig,
    };
    use experiments::data::{DataDir, DataSource};
    use experiments::eap::{EapMethod, EapSpec, LENET5_ENERGY};
    use experiments::iclr19::{ConstrainedSpec, QUICK_REASONS};
    use experiments::registry::{InitFiles, RunEnv};
    use experiments::train::{InitFrom, TrainSpec};
    use flate2::read::GzDecoder;
    use sparse_proj::ConstrainedConfig;
    use tensor_core::{DeviceSpec, RelativeBudget, SgdConfig};

    let root = imagenet_folder_of("compression", 3)?;
    let weights = root.join("squeezenet1_0.safetensors");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/torch/squeezenet1_0.safetensors.gz");
    std::io::copy(
        &mut GzDecoder::new(std::fs::File::open(&fixture)?),
        &mut std::fs::File::create(&weights)?,
    )?;
    let mut dense = TrainSpec::recipe(Arch::Squeezenet1_0, datasets::DatasetId::ImageNet);
    dense.data = DataSource::Full;
    dense.epochs = 0;
    dense.init_from = Some(InitFrom::of(&weights)?);
    let init_files: InitFiles = [(Arch::Squeezenet1_0, weights.clone())]
        .into_iter()
        .collect();
    let data = DataDir::default().with_imagenet(Some(root.clone()));
    let out = root.join("out");
    let env = |run: &str| RunEnv {
        out: &out,
        checkpoints: out.join(run),
        label: run.to_string(),
        resume: false,
        data: &data,
        reporter: &experiments::reporter::Silent,
        init_files: &init_files,
        device: DeviceSpec::Cpu,
    };

    // Three of the nine training images held out, six to train on in batches of four. Two
    // epochs: the budget reaches its target at the second projection. No distillation and a
    // small rate: the stand-in network is PyTorch's random initialisation, not a trained one.
    let config = ConstrainedConfig {
        relative_budget: RelativeBudget::new(0.5)?,
        epochs: 2,
        distillation: 0.0,
        sgd: SgdConfig {
            lr: 1e-5,
            momentum: 0.9,
            weight_decay: 1e-4,
        },
        ..Default::default()
    };
    let mut constrained = ConstrainedSpec::new(dense.clone(), 3, config, QUICK_REASONS);
    constrained.batch = 4;
    let m = experiments::iclr19::run(&constrained, &env("proj"))?;
    assert!(
        m.relative_energy_relaxed <= 0.5 + 1e-9,
        "{}",
        m.relative_energy_relaxed
    );
    assert!(m.nonzero_weights < m.total_weights);
    let top5 = m.test_top5.expect("an ImageNet run reports top-5");
    assert!((m.test_accuracy..=1.0).contains(&top5), "{top5}");
    assert!(std::path::Path::new(&m.checkpoint).exists());

    let prune = EnergyPruneConfig {
        calibration_images: 2,
        positions_per_image: 2,
        ratio_search: RatioSearch::Bisection {
            max_ratio: 0.5,
            iterations: 1,
        },
        restore: RestoreConfig {
            threshold: 1e-3,
            max_fraction: 0.05,
        },
        ridge_lambda: 1e-2,
        fit_bias: true,
        max_condition: 1e10,
        budget_split: BudgetSplit::Cumulative,
        // Every layer may prune: the stand-in network scores three unrelated classes.
        max_accuracy_drop: 1.0,
        activation_density: ActivationDensity::Measured,
        finetune: FineTuneConfig {
            epochs: 1,
            sgd: SgdConfig {
                lr: 1e-4,
                momentum: 0.9,
                weight_decay: 5e-4,
            },
        },
        seed: 1,
    };
    let pruning = EapSpec {
        dense,
        val_records: 3,
        batch: 4,
        energy: LENET5_ENERGY,
        method: EapMethod::EnergyAware(prune),
        deviations: Vec::new(),
        classes: None,
    };
    let m = experiments::eap::run(&pruning, &env("eap"))?;
    assert_eq!(m.layers.len(), 26, "SqueezeNet 1.0's conv layers");
    assert!(m.nonzero_weights < m.total_weights);
    assert!(m.energy_reduction > 1.0, "{}", m.energy_reduction);
    assert!(m.test_top5.is_some());
    std::fs::remove_dir_all(&root)?;
    Ok(())
}
