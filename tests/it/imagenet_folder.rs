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
/// and a portrait 375 × 500.
fn imagenet_folder(name: &str) -> anyhow::Result<PathBuf> {
    let root = std::env::temp_dir().join(format!("it-imagenet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (split, per_class) in [("train", 2u32), ("val", 1)] {
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
