//! Parses the embedded real-data subsets (no files, no network) and prints their sizes and the
//! label histogram of MNIST.
//!
//! `cargo run -p datasets --example embedded`
#![allow(clippy::print_stdout)] // an example's output is the point

use datasets::{DatasetId, RawDataset, Source, Split};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Every embedded file against its recorded SHA-256 first.
    datasets::verify_embedded()?;
    for id in [DatasetId::Mnist, DatasetId::FashionMnist] {
        for split in [Split::Train, Split::Test] {
            let data = RawDataset::load(id, split, &Source::Embedded)?;
            let [c, h, w] = data.shape();
            println!(
                "{} {}: {} images of {c}x{h}x{w}, {} classes",
                id.title(),
                split.name(),
                data.len(),
                data.num_classes()
            );
        }
    }

    let train = RawDataset::load(DatasetId::Mnist, Split::Train, &Source::Embedded)?;
    println!("\nMNIST training labels (embedded subset):");
    let counts = train.class_counts();
    let most = counts.iter().copied().max().unwrap_or(1);
    for (name, &n) in train.class_names().iter().zip(&counts) {
        println!("  {name:>2} {n:>5} {}", "#".repeat(40 * n / most));
    }
    let pixels = train.image(0).unwrap_or_default();
    let ink = pixels.iter().filter(|&&p| p > 127).count();
    println!(
        "image 0: label {}, {ink} of {} pixels above 127",
        train.labels()[0],
        pixels.len()
    );

    // CIFAR training data is not embedded: a typed error, not an empty set.
    if let Err(e) = RawDataset::load(DatasetId::Cifar10, Split::Train, &Source::Embedded) {
        println!("CIFAR-10 train: {e}");
    }
    Ok(())
}
