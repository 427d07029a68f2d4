//! CIFAR-10 and CIFAR-100 batches and class-name lists from arbitrary bytes: typed errors only,
//! and a parsed batch holds whole records with labels in range.
#![no_main]

use datasets::cifar::{IMAGE_BYTES, parse_cifar10, parse_cifar100, parse_class_names};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = parse_cifar10("fuzz", data) {
        assert_eq!(b.pixels.len(), b.n * IMAGE_BYTES);
        assert_eq!(b.labels.len(), b.n);
        assert!(b.labels.iter().all(|&l| l <= 9));
    }
    if let Ok(b) = parse_cifar100("fuzz", data) {
        assert_eq!(b.pixels.len(), b.n * IMAGE_BYTES);
        let coarse = b.coarse_labels.expect("CIFAR-100 has coarse labels");
        assert_eq!(coarse.len(), b.n);
        assert!(coarse.iter().all(|&l| l <= 19) && b.labels.iter().all(|&l| l <= 99));
    }
    if let Ok(names) = parse_class_names("fuzz", data) {
        assert!(names.iter().all(|n| !n.is_empty() && n.trim() == n));
    }
});
