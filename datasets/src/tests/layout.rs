//! Data roots in every accepted layout, and files identified by the manifest's raw digests. The
//! embedded MNIST test files are byte-identical to the official ones (docs/datasets.md §3), so
//! they stand in for a full copy; everything else is generated.

use std::path::{Path, PathBuf};

use super::{Scratch, embedded};
use crate::idx::inflate;
use crate::*;

const IMAGES: &str = "t10k-images-idx3-ubyte";
const LABELS: &str = "t10k-labels-idx1-ubyte";

/// The official MNIST test file `name`, gzip as embedded.
fn mnist_gz(name: &str) -> &'static [u8] {
    embedded(&format!("mnist/{name}.gz"))
}

/// The official MNIST test file `name`, raw.
fn mnist_raw(name: &str) -> Vec<u8> {
    let path = format!("mnist/{name}.gz");
    inflate(&path, embedded(&path)).unwrap().into_owned()
}

/// Writes the MNIST test split into `dir` (relative to the scratch root): images raw, labels
/// gzip, so every layout is read through both paths.
fn put_mnist_test(s: &Scratch, dir: &str) -> PathBuf {
    s.write(&format!("{dir}{IMAGES}"), &mnist_raw(IMAGES));
    s.write(&format!("{dir}{LABELS}.gz"), mnist_gz(LABELS));
    s.0.join(dir)
}

fn mnist_test() -> RawDataset {
    RawDataset::load(DatasetId::Mnist, Split::Test, &Source::Embedded).unwrap()
}

fn located(root: &Path, id: DatasetId) -> (Layout, PathBuf) {
    let l = locate(root, id).unwrap();
    assert_eq!(l.dataset, id);
    (l.layout, l.dir)
}

#[test]
fn layouts_display_as_documented() {
    let names: Vec<String> = Layout::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["cache layout", "torchvision layout", "flat folder"]);
    let l = Located {
        dataset: DatasetId::FashionMnist,
        layout: Layout::Flat,
        dir: PathBuf::from("/data/fashion"),
    };
    assert_eq!(l.to_string(), "fashion-mnist in flat folder /data/fashion");
}

#[test]
fn every_layout_is_found_reported_and_read() {
    let cases = [
        ("cache", "mnist/", Layout::Cache),
        ("flat", "", Layout::Flat),
        ("torchvision", "MNIST/raw/", Layout::Torchvision),
        // The root is torchvision's MNIST folder itself.
        ("torchvision-own", "raw/", Layout::Torchvision),
    ];
    for (name, dir, layout) in cases {
        let s = Scratch::new(&format!("layout-{name}"));
        let expected_dir = put_mnist_test(&s, dir);
        let (found, found_dir) = located(&s.0, DatasetId::Mnist);
        assert_eq!(found, layout, "{name}");
        assert_eq!(found_dir, expected_dir, "{name}");
        let d = RawDataset::load(DatasetId::Mnist, Split::Test, &s.source()).unwrap();
        assert_eq!(d, mnist_test(), "{name}");
    }
    // torchvision's Fashion-MNIST folder (which files they are is checked on reading).
    let s = Scratch::new("layout-torchvision-fashion");
    put_mnist_test(&s, "FashionMNIST/raw/");
    assert_eq!(
        located(&s.0, DatasetId::FashionMnist),
        (Layout::Torchvision, s.0.join("FashionMNIST").join("raw"))
    );
    // The most specific layout wins over files lying in the root.
    put_mnist_test(&s, "");
    put_mnist_test(&s, "mnist/");
    assert_eq!(
        located(&s.0, DatasetId::Mnist),
        (Layout::Cache, s.0.join("mnist"))
    );
}

#[cfg(unix)]
#[test]
fn symlinked_files_are_found() {
    let s = Scratch::new("layout-symlinks");
    let real = put_mnist_test(&s, "real/");
    let raw = s.0.join("tv").join("MNIST").join("raw");
    std::fs::create_dir_all(&raw).unwrap();
    for f in [IMAGES.to_string(), format!("{LABELS}.gz")] {
        std::os::unix::fs::symlink(real.join(&f), raw.join(&f)).unwrap();
    }
    let root = s.0.join("tv");
    assert_eq!(located(&root, DatasetId::Mnist), (Layout::Torchvision, raw));
    let d = RawDataset::load(DatasetId::Mnist, Split::Test, &Source::Dir(root)).unwrap();
    assert_eq!(d, mnist_test());
}

#[test]
fn cifar_archive_folders_are_found_as_unpacked() {
    let batch = embedded("cifar-10-batches-bin/test_batch.bin");
    let s = Scratch::new("layout-cifar");
    // The folder holding the unpacked archive, and the archive's folder itself.
    s.write("cifar-10-batches-bin/test_batch.bin", batch);
    let root = s.0.clone();
    let folder = s.0.join("cifar-10-batches-bin");
    assert_eq!(
        located(&root, DatasetId::Cifar10),
        (Layout::Cache, folder.clone())
    );
    assert_eq!(
        located(&folder, DatasetId::Cifar10),
        (Layout::Flat, folder.clone())
    );
    let expected = RawDataset::load(DatasetId::Cifar10, Split::Test, &Source::Embedded).unwrap();
    for r in [root, folder] {
        assert_eq!(
            RawDataset::load(DatasetId::Cifar10, Split::Test, &Source::Dir(r)).unwrap(),
            expected
        );
    }
    let c100 = s.write(
        "cifar-100-binary/test.bin",
        embedded("cifar-100-binary/test.bin"),
    );
    let folder = c100.parent().unwrap();
    assert_eq!(
        located(folder, DatasetId::Cifar100),
        (Layout::Flat, folder.to_path_buf())
    );
    assert_eq!(
        located(&s.0, DatasetId::Cifar100),
        (Layout::Cache, folder.to_path_buf())
    );
}

#[test]
fn gzip_and_raw_both_work() {
    let s = Scratch::new("layout-gzip-raw");
    // The opposite mix of `put_mnist_test`: images gzip, labels raw.
    s.write(&format!("{IMAGES}.gz"), mnist_gz(IMAGES));
    s.write(LABELS, &mnist_raw(LABELS));
    let d = RawDataset::load(DatasetId::Mnist, Split::Test, &s.source()).unwrap();
    assert_eq!(d, mnist_test());
    // Both raw and both gzip.
    for (images, labels) in [
        (mnist_raw(IMAGES), mnist_raw(LABELS)),
        (mnist_gz(IMAGES).to_vec(), mnist_gz(LABELS).to_vec()),
    ] {
        let s = Scratch::new("layout-one-kind");
        let gz = if images[0] == 0x1f { ".gz" } else { "" };
        s.write(&format!("{IMAGES}{gz}"), &images);
        s.write(&format!("{LABELS}{gz}"), &labels);
        let d = RawDataset::load(DatasetId::Mnist, Split::Test, &s.source()).unwrap();
        assert_eq!(d, mnist_test(), "{gz:?}");
    }
}

/// The embedded MNIST test files are official, so read as Fashion-MNIST they are the other
/// dataset's, and the error says which file is what.
#[test]
fn a_flat_folder_of_the_other_dataset_is_a_clear_error() {
    let s = Scratch::new("layout-other-dataset");
    let dir = put_mnist_test(&s, "");
    assert_eq!(
        located(&s.0, DatasetId::FashionMnist),
        (Layout::Flat, dir.clone())
    );
    let err = RawDataset::load(DatasetId::FashionMnist, Split::Test, &s.source()).unwrap_err();
    let images = dir.join(IMAGES).display().to_string();
    let Error::WrongFile {
        file,
        expected,
        found,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(file, &images);
    assert_eq!(
        (expected.dataset, found.dataset, found.name.as_str()),
        (DatasetId::FashionMnist, DatasetId::Mnist, IMAGES)
    );
    assert_eq!(
        err.to_string(),
        format!("{images} is MNIST's test images, not Fashion-MNIST's")
    );
}

/// Fashion-MNIST's full files cannot be generated, so the manifest gets the digests of generated
/// files in their place: the check and its message are those of a real copy.
#[test]
fn fashion_mnist_files_read_as_mnist_say_what_they_are() {
    let bytes = super::idx_images(2, 28, 28, 9);
    let mut m = Manifest::canonical().unwrap();
    let fashion = m
        .datasets
        .iter_mut()
        .find(|d| d.id == DatasetId::FashionMnist)
        .unwrap();
    let entry = fashion
        .files
        .iter_mut()
        .find(|f| f.name == "train-images-idx3-ubyte")
        .unwrap();
    entry.raw = Checksums {
        bytes: Some(bytes.len() as u64),
        md5: None,
        sha256: Some(sha256_hex(&bytes)),
    };
    let file = "/data/train-images-idx3-ubyte";
    let err = m
        .verify_file(DatasetId::Mnist, "train-images-idx3-ubyte", file, &bytes)
        .unwrap_err();
    assert!(matches!(err, Error::WrongFile { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "/data/train-images-idx3-ubyte is Fashion-MNIST's training images, not MNIST's"
    );
    m.verify_file(
        DatasetId::FashionMnist,
        "train-images-idx3-ubyte",
        file,
        &bytes,
    )
    .unwrap();
}

#[test]
fn a_file_under_another_files_name_says_what_it_is() {
    let m = Manifest::canonical().unwrap();
    let labels = mnist_raw(LABELS);
    let known = m.identify(&labels).unwrap();
    assert_eq!(
        (known.dataset, known.name.as_str()),
        (DatasetId::Mnist, LABELS)
    );
    assert_eq!(known.to_string(), "MNIST's test labels");
    let err = m
        .verify_file(
            DatasetId::Mnist,
            "train-labels-idx1-ubyte",
            "x/labels",
            &labels,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "x/labels is MNIST's test labels, not MNIST's training labels"
    );
}

#[test]
fn a_file_matching_nothing_names_the_file_and_both_digests() {
    let s = Scratch::new("layout-unknown");
    let dir = put_mnist_test(&s, "");
    // One label changed: the file still parses, only its digest tells.
    let mut labels = mnist_raw(LABELS);
    labels[8] = (labels[8] + 1) % 10;
    std::fs::remove_file(dir.join(format!("{LABELS}.gz"))).unwrap();
    let path = s.write(LABELS, &labels);
    let err = RawDataset::load(DatasetId::Mnist, Split::Test, &s.source()).unwrap_err();
    let official = Manifest::canonical()
        .unwrap()
        .dataset(DatasetId::Mnist)
        .unwrap()
        .file(LABELS)
        .unwrap()
        .raw
        .sha256
        .clone()
        .unwrap();
    let Error::UnknownFile {
        file,
        algorithm,
        digest,
        got,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (file.as_str(), *algorithm, digest, got),
        (
            path.display().to_string().as_str(),
            "sha256",
            &official,
            &sha256_hex(&labels)
        )
    );
    let msg = err.to_string();
    for needle in [&path.display().to_string(), &official, got] {
        assert!(msg.contains(needle.as_str()), "{msg}");
    }

    // The embedded training subset is not the official file either, gzip or not.
    let s = Scratch::new("layout-subset");
    for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"] {
        s.write(&format!("mnist/{f}"), embedded(&format!("mnist/{f}")));
    }
    let err = RawDataset::load(DatasetId::Mnist, Split::Train, &s.source()).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownFile { file, .. } if file.ends_with("train-images-idx3-ubyte.gz")),
        "{err}"
    );
}

#[test]
fn nothing_found_lists_every_folder_looked_in() {
    let s = Scratch::new("layout-nothing");
    let err = locate(&s.0, DatasetId::Mnist).unwrap_err();
    let Error::DatasetNotFound { looked_in, .. } = &err else {
        panic!("{err}")
    };
    let expected: Vec<PathBuf> = vec![
        s.0.join("mnist"),
        s.0.join("MNIST").join("raw"),
        s.0.join("raw"),
        s.0.clone(),
    ];
    assert_eq!(looked_in, &expected);
    let msg = err.to_string();
    assert!(
        msg.contains("train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]"),
        "{msg}"
    );
    assert!(
        RawDataset::load(DatasetId::Mnist, Split::Test, &s.source())
            .is_err_and(|e| matches!(e, Error::DatasetNotFound { .. }))
    );
    // torchvision keeps no CIFAR binary files.
    let err = locate(&s.0, DatasetId::Cifar10).unwrap_err();
    assert!(
        matches!(&err, Error::DatasetNotFound { looked_in, .. }
            if looked_in == &[s.0.join("cifar-10-batches-bin"), s.0.clone()]),
        "{err}"
    );
    assert!(err.to_string().contains("data_batch_1.bin"), "{err}");
}

#[test]
fn a_missing_file_of_a_located_folder_names_its_candidates() {
    let s = Scratch::new("layout-missing-one");
    let dir = s.write(IMAGES, &mnist_raw(IMAGES));
    let dir = dir.parent().unwrap();
    let err = RawDataset::load(DatasetId::Mnist, Split::Test, &s.source()).unwrap_err();
    assert!(
        matches!(&err, Error::FileNotFound { tried }
            if tried == &[dir.join(LABELS), dir.join(format!("{LABELS}.gz"))]),
        "{err}"
    );
}

/// A flat folder cannot say whether it holds MNIST or Fashion-MNIST: only raw digests can, so
/// every IDX file of the manifest has one, and no two files share it.
#[test]
fn every_idx_file_of_the_manifest_is_identifiable() {
    let m = Manifest::canonical().unwrap();
    let mut seen = Vec::new();
    for id in [DatasetId::Mnist, DatasetId::FashionMnist] {
        for f in &m.dataset(id).unwrap().files {
            let sha = f
                .raw
                .sha256
                .clone()
                .unwrap_or_else(|| panic!("{id} {}", f.name));
            assert!(!seen.contains(&sha), "{id} {}", f.name);
            seen.push(sha);
        }
    }
}
