//! Decoding throughput of the ImageNet-style folder pipeline (resize 256, random crop 224,
//! flip, normalise), in images per second: on the calling thread, and with worker threads and
//! a bounded prefetch queue while the caller does nothing but take batches.
//!
//! `cargo run --release -p datasets --features imagenet --example decode_throughput -- [DIR] [IMAGES]`
//!
//! DIR is a folder of class folders (such as an ImageNet `val/`); without it, IMAGES (default
//! 48) generated 500 × 375 JPEGs, ImageNet's most common size, are written to a temporary
//! folder and removed afterwards.
#![allow(clippy::print_stdout)] // an example's output is the point

use std::path::PathBuf;
use std::time::Instant;

use datasets::{FolderBatchConfig, FolderBatches, ImageFolder, ImagePipeline};
use tensor_core::{BatchSource, Device};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().filter(|a| a != "-");
    let images: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(48);
    let generated = dir.is_none();
    let root = match dir {
        Some(d) => PathBuf::from(d),
        None => generate(images)?,
    };
    let folder = ImageFolder::open(&root)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{} images in {} classes under {}; {cores} cores",
        folder.len(),
        folder.classes().len(),
        root.display()
    );
    let mut settings = vec![("caller's thread, no prefetch", 0)];
    settings.extend((1..=cores).map(|w| ("worker threads with prefetch", w)));
    for (what, workers) in settings {
        let config = FolderBatchConfig::training(16, 1, workers);
        let mut batches = FolderBatches::new(
            folder.clone(),
            ImagePipeline::imagenet_train(),
            config,
            &Device::Cpu,
        )?;
        let start = Instant::now();
        let mut n = 0;
        for index in 0..batches.batches_per_epoch() {
            n += batches.batch(0, index)?.1.dims()[0];
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "{what:<30} workers {workers}: {:>7.1} images/s ({n} images, {seconds:.2} s)",
            n as f64 / seconds
        );
    }
    if generated {
        std::fs::remove_dir_all(&root)?;
    }
    Ok(())
}

/// Four classes of generated 500 × 375 JPEGs in a fresh temporary folder.
fn generate(images: usize) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let root = std::env::temp_dir().join(format!("decode-throughput-{}", std::process::id()));
    for i in 0..images {
        let class = (i % 4) as u32;
        let dir = root.join(format!("class{class}"));
        std::fs::create_dir_all(&dir)?;
        let bytes = datasets::image_folder::synthetic_jpeg(500, 375, class, i as u64)?;
        std::fs::write(dir.join(format!("{i:05}.JPEG")), bytes)?;
    }
    Ok(root)
}
