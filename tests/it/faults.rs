//! Fault injection through the library APIs: dataset files that are truncated, corrupt or fail
//! their checksum, zero-size and overflowing layers, infeasible and out-of-range budgets. Each
//! case asserts the typed error and that it names the bad thing (TESTING.md tabulates them; the
//! faults that need the binary, such as a kill during `reproduce`, are in `xtask/tests/faults.rs`).

use std::fs;
use std::path::{Path, PathBuf};

use cnn_zoo::Arch;
use datasets::{Checksums, DatasetId, Error as DataError, RawDataset, Source, Split};
use energy_model::iclr19::Iclr19;
use sparse_proj::{ConstrainedConfig, GreedyVariant, project_layers, weight_costs};
use tensor_core::testing::layer_weights;
use tensor_core::{ConvParams, LayerGeometry, LayerKind, RelativeBudget};

use integration_tests::seeded_model;

/// A data root under the temp directory holding copies of embedded files, renamed as given.
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("it-faults-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn put(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        p
    }

    fn source(&self) -> Source {
        Source::Dir(self.0.clone())
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn embedded(path: &str) -> &'static [u8] {
    datasets::embedded_file(path).unwrap()
}

fn names(err: &DataError, path: &Path) -> bool {
    err.to_string().contains(&path.display().to_string())
}

const CIFAR10_TEST: &str = "cifar-10-batches-bin/test_batch.bin";
const MNIST_IMAGES: &str = "mnist/t10k-images-idx3-ubyte";
const MNIST_LABELS: &str = "mnist/t10k-labels-idx1-ubyte";

fn inflated(path: &str) -> Vec<u8> {
    datasets::idx::inflate(path, embedded(path))
        .unwrap()
        .into_owned()
}

#[test]
fn truncated_dataset_files_name_the_file_and_the_lengths() {
    let dir = DataDir::new("truncated");
    // CIFAR: one byte short of the last record.
    let bytes = embedded(CIFAR10_TEST);
    let p = dir.put(CIFAR10_TEST, &bytes[..bytes.len() - 1]);
    let err = RawDataset::load(DatasetId::Cifar10, Split::Test, &dir.source()).unwrap_err();
    assert!(
        matches!(err, DataError::PartialRecord { record: 3073, .. }) && names(&err, &p),
        "{err}"
    );
    // IDX raw: the header promises 10,000 images, the body holds fewer.
    let images = inflated(&format!("{MNIST_IMAGES}.gz"));
    let p = dir.put(MNIST_IMAGES, &images[..images.len() - 784]);
    dir.put(
        &format!("{MNIST_LABELS}.gz"),
        embedded(&format!("{MNIST_LABELS}.gz")),
    );
    let err = RawDataset::load(DatasetId::Mnist, Split::Test, &dir.source()).unwrap_err();
    match &err {
        DataError::LengthMismatch { expected, got, .. } => {
            assert_eq!(
                (*expected, *got),
                (images.len() as u64, images.len() as u64 - 784)
            )
        }
        other => panic!("expected a length mismatch, got {other}"),
    }
    assert!(names(&err, &p), "{err}");
    // IDX gzip cut in half: the inflater's error, with the file.
    fs::remove_file(&p).unwrap();
    let gz = embedded(&format!("{MNIST_IMAGES}.gz"));
    let p = dir.put(&format!("{MNIST_IMAGES}.gz"), &gz[..gz.len() / 2]);
    let err = RawDataset::load(DatasetId::Mnist, Split::Test, &dir.source()).unwrap_err();
    assert!(
        matches!(err, DataError::Gzip { .. }) && names(&err, &p),
        "{err}"
    );
    // A file shorter than its header.
    let p = dir.put(MNIST_IMAGES, &[0, 0, 8]);
    let err = RawDataset::load(DatasetId::Mnist, Split::Test, &dir.source()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LengthMismatch {
                expected: 16,
                got: 3,
                ..
            }
        ) && names(&err, &p),
        "{err}"
    );
}

#[test]
fn corrupt_dataset_files_name_the_file_and_the_value() {
    let dir = DataDir::new("corrupt");
    // CIFAR-10 label byte of record 7 set to 10.
    let mut bytes = embedded(CIFAR10_TEST).to_vec();
    bytes[7 * 3073] = 10;
    let p = dir.put(CIFAR10_TEST, &bytes);
    let err = RawDataset::load(DatasetId::Cifar10, Split::Test, &dir.source()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                index: 7,
                label: 10,
                max: 9,
                ..
            }
        ) && names(&err, &p),
        "{err}"
    );
    // IDX with a label file passed as images: the magic says so.
    let labels = inflated(&format!("{MNIST_LABELS}.gz"));
    let p = dir.put(MNIST_IMAGES, &labels);
    dir.put(MNIST_LABELS, &labels);
    let err = RawDataset::load(DatasetId::Mnist, Split::Test, &dir.source()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadMagic {
                found: 0x801,
                expected: 0x803,
                ..
            }
        ) && names(&err, &p),
        "{err}"
    );
    // Images of another size (the same bytes as 14x56): not silently reshaped.
    let mut images = inflated(&format!("{MNIST_IMAGES}.gz"));
    images[8..16].copy_from_slice(&[0, 0, 0, 14, 0, 0, 0, 56]);
    let p = dir.put(MNIST_IMAGES, &images);
    let err = RawDataset::load(DatasetId::Mnist, Split::Test, &dir.source()).unwrap_err();
    assert!(
        matches!(&err, DataError::DimsMismatch { got, .. } if got == &[14, 56]) && names(&err, &p),
        "{err}"
    );
    // One label short of the images.
    images[8..16].copy_from_slice(&[0, 0, 0, 28, 0, 0, 0, 28]);
    dir.put(MNIST_IMAGES, &images);
    let mut short = labels[..labels.len() - 1].to_vec();
    short[4..8].copy_from_slice(&9_999u32.to_be_bytes());
    let p = dir.put(MNIST_LABELS, &short);
    let err = RawDataset::load(DatasetId::Mnist, Split::Test, &dir.source()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                images: 10_000,
                labels: 9_999,
                ..
            }
        ) && names(&err, &p),
        "{err}"
    );
    // Nothing there at all: every folder looked in and every name are listed.
    let empty = DataDir::new("empty");
    let err = RawDataset::load(DatasetId::FashionMnist, Split::Train, &empty.source()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DataError::DatasetNotFound { ref looked_in, .. } if looked_in.len() == 4)
            && msg.contains("train-images-idx3-ubyte[.gz]"),
        "{msg}"
    );
}

#[test]
fn wrong_checksums_and_sizes_name_the_file() {
    let good = embedded(CIFAR10_TEST);
    let sums = Checksums {
        bytes: Some(good.len() as u64),
        md5: Some(datasets::md5_hex(good)),
        sha256: Some(datasets::sha256_hex(good)),
    };
    sums.verify("test_batch.bin", good).unwrap();
    // A flipped pixel bit keeps the length: the digest catches it.
    let mut flipped = good.to_vec();
    flipped[5000] ^= 1;
    match sums.verify("test_batch.bin", &flipped) {
        Err(
            err @ DataError::ChecksumMismatch {
                algorithm: "sha256",
                ..
            },
        ) => {
            assert!(
                err.to_string()
                    .starts_with("test_batch.bin: sha256 mismatch"),
                "{err}"
            )
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    // A truncated download is reported by its size first.
    match sums.verify("test_batch.bin", &good[..100]) {
        Err(DataError::LengthMismatch {
            expected, got: 100, ..
        }) => {
            assert_eq!(expected, good.len() as u64)
        }
        other => panic!("expected a length mismatch, got {other:?}"),
    }
    // The shipped manifest's digests for a gzip file are checked on the inflated bytes.
    let manifest = datasets::Manifest::canonical().unwrap();
    let entry = manifest.dataset(DatasetId::Mnist).unwrap();
    let labels = entry.file("t10k-labels-idx1-ubyte").unwrap();
    let gz = embedded(&format!("{MNIST_LABELS}.gz"));
    labels.verify_raw("t10k-labels-idx1-ubyte.gz", gz).unwrap();
    let mut raw = inflated(&format!("{MNIST_LABELS}.gz"));
    raw[100] = (raw[100] + 1) % 10;
    assert!(matches!(
        labels.verify_raw("t10k-labels-idx1-ubyte", &raw),
        Err(DataError::ChecksumMismatch { .. })
    ));
    datasets::verify_embedded().unwrap();
}

#[test]
fn zero_size_layers_are_errors_naming_the_size() {
    let fields = [
        "in_channels",
        "in_h",
        "in_w",
        "out_channels",
        "kernel rows",
        "kernel cols",
        "stride rows",
        "stride cols",
        "groups",
    ];
    for (i, field) in fields.iter().enumerate() {
        let mut v = [4, 8, 8, 4, 3, 3, 1, 1, 1];
        v[i] = 0;
        let err = LayerGeometry::conv(
            [v[0], v[1], v[2]],
            v[3],
            ConvParams {
                kernel: (v[4], v[5]),
                stride: (v[6], v[7]),
                padding: (0, 0),
                groups: v[8],
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains(&format!("{field} is 0")), "{err}");
    }
    assert!(LayerGeometry::fc(0, 1, 1, 10).is_err());
    assert!(LayerGeometry::fc(10, 1, 1, 0).is_err());

    // A geometry cannot be built invalid: one read from a record or a tool file goes through
    // the same checks and names the field.
    let g = LayerGeometry::conv([4, 8, 8], 4, ConvParams::square(3)).unwrap();
    let mut json = serde_json::to_value(g).unwrap();
    json["stride"] = serde_json::json!([0, 1]);
    let err = serde_json::from_value::<LayerGeometry>(json).unwrap_err();
    assert!(err.to_string().contains("stride rows is 0"), "{err}");
    assert_eq!(g.kind(), LayerKind::Conv);

    // A model with zero classes or zero input channels is refused when it is built.
    for (classes, channels) in [(0, 1), (10, 0)] {
        assert!(
            seeded_model(Arch::Lenet5, classes, channels, 1).is_err(),
            "{classes} classes, {channels} channels"
        );
    }
}

#[test]
fn budgets_out_of_range_or_below_the_floor_are_errors() {
    for b in [0.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
        let err = RelativeBudget::new(b).unwrap_err();
        assert!(
            err.to_string().contains("relative energy budget"),
            "{b}: {err}"
        );
        // A configuration read from a file goes through the same check.
        let mut json = serde_json::to_value(ConstrainedConfig::default()).unwrap();
        json["relative_budget"] = serde_json::json!(b);
        assert!(
            serde_json::from_value::<ConstrainedConfig>(json).is_err(),
            "{b}"
        );
    }
    // LeNet-5 under the iclr19 model: the floor is 2,604,944 (docs/energy-models.md A.7); below it,
    // or NaN, the projection refuses and names the floor instead of clamping.
    let (net, _init) = seeded_model(Arch::Lenet5, 10, 1, 3).unwrap();
    let costs = weight_costs(&Iclr19::paper(), net.as_ref(), None).unwrap();
    let mut weights = layer_weights(net.as_ref());
    let before = weights.clone();
    for budget in [1e6, -1.0, f64::NAN] {
        let mut slices: Vec<&mut [f32]> = weights.iter_mut().map(Vec::as_mut_slice).collect();
        match project_layers(&mut slices, &costs, budget, GreedyVariant::Prefix, &[]) {
            Err(err @ sparse_proj::Error::BudgetInfeasible { floor, .. }) => {
                assert_eq!(floor, 2_604_944.0);
                assert!(err.to_string().contains("2604944"), "{err}");
            }
            other => panic!("{budget}: expected an infeasible budget, got {other:?}"),
        }
    }
    // A refused projection leaves the weights untouched.
    assert_eq!(weights, before);
}
