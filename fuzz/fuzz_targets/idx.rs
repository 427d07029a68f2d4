//! IDX images and labels (raw or gzip) from arbitrary bytes: typed errors only, and a parsed
//! file's sizes agree with its header.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(images) = datasets::idx::parse_idx_images("fuzz", data) {
        assert_eq!(images.pixels.len(), images.n * images.rows * images.cols);
    }
    if let Ok(labels) = datasets::idx::parse_idx_labels("fuzz", data) {
        assert!(labels.iter().all(|&l| l <= datasets::idx::MAX_LABEL));
    }
    if let Err(e) = datasets::idx::inflate("fuzz", data) {
        assert!(e.to_string().starts_with("fuzz: "), "{e}");
    }
});
