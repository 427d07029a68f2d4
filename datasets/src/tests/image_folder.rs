//! The ImageNet-style folder loader on generated JPEGs.

use super::Scratch;
use crate::image_folder::{centre_offset, resized_size, synthetic_jpeg};
use crate::*;
use tensor_core::{BatchSource, Device};

/// `classes` class folders (`n01`, `n02`, …) of `per_class` generated JPEGs of varied sizes.
fn folder(scratch: &Scratch, split: &str, classes: u32, per_class: u32) {
    for class in 0..classes {
        for i in 0..per_class {
            let (w, h) = (230 + 37 * i, 240 + 11 * class);
            let bytes = synthetic_jpeg(w, h, class, u64::from(i)).unwrap();
            scratch.write(&format!("{split}/n0{}/img{i}.JPEG", class + 1), &bytes);
        }
    }
}

fn batches(dir: &std::path::Path, config: FolderBatchConfig, train: bool) -> FolderBatches {
    let pipeline = if train {
        ImagePipeline::imagenet_train()
    } else {
        ImagePipeline::imagenet_eval()
    };
    FolderBatches::new(
        ImageFolder::open(dir).unwrap(),
        pipeline,
        config,
        &Device::Cpu,
    )
    .unwrap()
}

fn epoch(source: &mut FolderBatches, epoch: usize) -> Vec<(Vec<f32>, Vec<u32>)> {
    (0..source.batches_per_epoch())
        .map(|i| {
            let (xs, ys) = source.batch(epoch, i).unwrap();
            (
                xs.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                ys.to_vec1::<u32>().unwrap(),
            )
        })
        .collect()
}

#[test]
fn resize_and_centre_crop_follow_torchvision() {
    // Resize(256): the shorter side to 256, the longer one truncated.
    assert_eq!(resized_size(500, 375, 256), (341, 256));
    assert_eq!(resized_size(375, 500, 256), (256, 341));
    assert_eq!(resized_size(300, 300, 256), (256, 256));
    // CenterCrop: round(margin / 2) with Python's round (half to even).
    assert_eq!(centre_offset(256, 224), 16);
    assert_eq!(centre_offset(257, 224), 16); // 16.5 -> 16
    assert_eq!(centre_offset(259, 224), 18); // 17.5 -> 18
    assert_eq!(centre_offset(341, 224), 58); // 58.5 -> 58
    assert_eq!(centre_offset(224, 224), 0);
}

#[test]
fn classes_are_sorted_folder_names_and_labels_their_rank() {
    let s = Scratch::new("imagefolder-classes");
    folder(&s, "train", 3, 2);
    folder(&s, "val", 3, 1);
    s.write("train/n01/notes.txt", b"not an image");
    s.write("train/.cache/x.JPEG", b"hidden folder");
    let dir = ImageNetDir::open(&s.0).unwrap();
    assert_eq!(dir.train.classes(), ["n01", "n02", "n03"]);
    assert_eq!(dir.train.len(), 6);
    assert_eq!(dir.val.len(), 3);
    let labels: Vec<u32> = dir.train.samples().iter().map(|(_, l)| *l).collect();
    assert_eq!(labels, [0, 0, 1, 1, 2, 2]);
}

#[test]
fn a_subset_keeps_the_classes_and_the_order_asked_for() {
    let s = Scratch::new("imagefolder-subset");
    folder(&s, "train", 3, 2);
    let all = ImageFolder::open(&s.0.join("train")).unwrap();
    let part = all.subset(&[5, 0, 3]).unwrap();
    assert_eq!(part.classes(), all.classes());
    let picked: Vec<_> = [5, 0, 3]
        .iter()
        .map(|&i| all.samples()[i].clone())
        .collect();
    assert_eq!(part.samples(), picked.as_slice());
    let e = all.subset(&[1, 6]).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::ImageFolder {
                problem: FolderProblem::NoSample { index: 6, len: 6 },
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("no image at position 6"), "{e}");
}

#[test]
fn folder_errors_name_the_folder_and_the_class() {
    let s = Scratch::new("imagefolder-errors");
    std::fs::create_dir_all(s.0.join("empty")).unwrap();
    let e = ImageFolder::open(&s.0.join("empty")).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::ImageFolder {
                problem: FolderProblem::NoClasses,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("empty"), "{e}");

    folder(&s, "train", 2, 1);
    std::fs::create_dir_all(s.0.join("train/n03")).unwrap();
    let e = ImageFolder::open(&s.0.join("train")).unwrap_err();
    assert!(
        e.to_string().contains("class folder `n03` holds no image"),
        "{e}"
    );
    std::fs::remove_dir(s.0.join("train/n03")).unwrap();

    folder(&s, "val", 1, 1);
    let e = ImageNetDir::open(&s.0).unwrap_err();
    assert!(e.to_string().contains("no folder for class `n02`"), "{e}");
    folder(&s, "val", 3, 1);
    let e = ImageNetDir::open(&s.0).unwrap_err();
    assert!(
        e.to_string()
            .contains("`n03` is not a class of the training split"),
        "{e}"
    );

    let missing = ImageNetDir::open(&s.0.join("nowhere")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
}

#[test]
fn a_corrupt_image_is_an_error_naming_the_file() {
    let s = Scratch::new("imagefolder-corrupt");
    folder(&s, "train", 2, 2);
    let bad = s.write("train/n02/broken.JPEG", b"\xff\xd8\xff\xe0 truncated");
    for workers in [0, 2] {
        let config = FolderBatchConfig::evaluation(8, workers);
        let mut source = batches(&s.0.join("train"), config, false);
        let e = source.batch(0, 0).unwrap_err().to_string();
        assert!(e.contains(&bad.display().to_string()), "{e}");
        assert!(e.contains("cannot decode"), "{e}");
    }
}

#[test]
fn samples_are_normalised_chw_crops() {
    let s = Scratch::new("imagefolder-values");
    // A flat grey image: every value is (128/255 - mean) / std of its channel.
    let grey = vec![128u8; 300 * 260 * 3];
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(&grey, 300, 260, image::ExtendedColorType::Rgb8)
        .unwrap();
    s.write("train/a/grey.png", &bytes);
    let mut source = batches(
        &s.0.join("train"),
        FolderBatchConfig::evaluation(1, 0),
        false,
    );
    let (xs, ys) = source.batch(0, 0).unwrap();
    assert_eq!(xs.dims(), &[1, 3, 224, 224]);
    assert_eq!(ys.to_vec1::<u32>().unwrap(), [0]);
    let values = xs.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let norm = Normalization::imagenet();
    for (ch, plane) in values.chunks_exact(224 * 224).enumerate() {
        let want = (128.0 / 255.0 - norm.mean[ch]) / norm.std[ch];
        assert!(
            plane.iter().all(|v| (v - want).abs() < 1e-5),
            "channel {ch}"
        );
    }
}

use image::ImageEncoder as _;

#[test]
fn batches_do_not_depend_on_workers_or_prefetch() {
    let s = Scratch::new("imagefolder-determinism");
    folder(&s, "train", 3, 3);
    let dir = s.0.join("train");
    let reference = epoch(
        &mut batches(&dir, FolderBatchConfig::training(4, 5, 0), true),
        1,
    );
    assert_eq!(reference.len(), 3); // 9 images in batches of 4
    assert_eq!(reference[2].1.len(), 1);
    for (workers, prefetch) in [(1, 1), (2, 4), (3, 1), (4, 8)] {
        let config = FolderBatchConfig {
            prefetch,
            ..FolderBatchConfig::training(4, 5, workers)
        };
        let mut source = batches(&dir, config, true);
        assert_eq!(
            epoch(&mut source, 1),
            reference,
            "{workers} workers, prefetch {prefetch}"
        );
        // Out of order (a resumed run): the same batch as in sequence.
        let (xs, _) = source.batch(1, 2).unwrap();
        assert_eq!(
            xs.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            reference[2].0
        );
    }
    // Another epoch shuffles and augments differently; every image is served once.
    let other = epoch(
        &mut batches(&dir, FolderBatchConfig::training(4, 5, 2), true),
        2,
    );
    assert_ne!(other, reference);
    let mut labels: Vec<u32> = other.iter().flat_map(|(_, l)| l.clone()).collect();
    labels.sort();
    assert_eq!(labels, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
}

#[test]
fn evaluation_batches_are_in_folder_order_and_repeat() {
    let s = Scratch::new("imagefolder-eval");
    folder(&s, "val", 2, 3);
    let dir = s.0.join("val");
    let mut source = batches(&dir, FolderBatchConfig::evaluation(4, 2), false);
    let first = epoch(&mut source, 0);
    assert_eq!(first[0].1, [0, 0, 0, 1]);
    assert_eq!(first[1].1, [1, 1]);
    assert_eq!(epoch(&mut source, 0), first);
    assert_eq!(epoch(&mut source, 3), first);
}

#[test]
fn a_pipeline_cropping_more_than_it_keeps_is_rejected() {
    let s = Scratch::new("imagefolder-pipeline");
    folder(&s, "train", 1, 1);
    let folder = ImageFolder::open(&s.0.join("train")).unwrap();
    let pipeline = ImagePipeline::imagenet_eval().sized(200, 224);
    let config = FolderBatchConfig::evaluation(1, 0);
    let e = FolderBatches::new(folder, pipeline, config, &Device::Cpu)
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            Error::InvalidImagePipeline {
                resize: 200,
                crop: 224,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn the_resize_matches_pillow_as_torchvision_calls_it() {
    // datasets/tests/fixtures/pil_resize.py: Pillow's antialiased bilinear resize of a 97 x 61
    // image with sharp edges to 63 x 40 (torchvision's `Resize(40)` on a PIL image).
    let input = include_bytes!("../../tests/fixtures/pil-resize-input.png");
    let pillow = include_bytes!("../../tests/fixtures/pil-resize-63x40.rgb");
    let s = Scratch::new("imagefolder-pillow");
    let path = s.write("train/a/input.png", input);
    let pipeline = ImagePipeline::imagenet_eval().sized(40, 32);
    let mut out = vec![0.0f32; 3 * 32 * 32];
    let mut rng = tensor_core::rng(0, "unused");
    pipeline.load(&path, &mut rng, &mut out).unwrap();
    // CenterCrop(32) of 63 x 40: top round(4.0) = 4, left round(15.5) = 16.
    let (top, left) = (
        centre_offset(40, 32) as usize,
        centre_offset(63, 32) as usize,
    );
    assert_eq!((top, left), (4, 16));
    let norm = Normalization::imagenet();
    let (mut worst, mut exact) = (0.0f32, 0usize);
    for ch in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                let p = pillow[((top + y) * 63 + left + x) * 3 + ch];
                let want = (f32::from(p) / 255.0 - norm.mean[ch]) / norm.std[ch];
                let got = out[ch * 1024 + y * 32 + x];
                // In units of one 8-bit level of this channel.
                let levels = (got - want).abs() * 255.0 * norm.std[ch];
                worst = worst.max(levels);
                exact += usize::from(levels < 1e-3);
            }
        }
    }
    assert!(worst <= 1.0 + 1e-3, "off by {worst} levels");
    // 3,020 of 3,072 values are exact with Pillow 13.0; the rest differ by one level (rounding).
    assert!(exact * 100 >= 95 * 3 * 1024, "{exact} of 3072 values exact");
}
