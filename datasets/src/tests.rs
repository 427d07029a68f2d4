//! Unit tests: golden values of the embedded files (docs/datasets.md §3, §4), parser errors, the
//! manifest, and the properties of the preprocessing.

use std::path::{Path, PathBuf};

use tensor_core::{Device, Tensor};

use crate::checksum::parse_sha256sums;
use crate::cifar::{
    CIFAR10_RECORD, CIFAR100_RECORD, parse_cifar10, parse_cifar100, parse_class_names,
};
use crate::idx::{inflate, parse_idx_images, parse_idx_labels};
use crate::transform::{crop_padded, hflip, pad_to, replicate_channels, resize_bilinear};
use crate::*;

#[cfg(feature = "imagenet")]
mod image_folder;
mod layout;

// ---------------------------------------------------------------------------------------------
// Helpers

fn embedded(path: &str) -> &'static [u8] {
    embedded_file(path).unwrap_or_else(|| panic!("{path} is not embedded"))
}

fn load(id: DatasetId, split: Split) -> RawDataset {
    RawDataset::load(id, split, &Source::Embedded).unwrap()
}

fn to_f32(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Population mean and std of bytes scaled to [0, 1], from exact integer sums (f64 at the end).
fn stats(bytes: impl Iterator<Item = u8>) -> (f64, f64) {
    let (mut n, mut s, mut s2) = (0u64, 0u64, 0u64);
    for b in bytes {
        n += 1;
        s += u64::from(b);
        s2 += u64::from(b) * u64::from(b);
    }
    let mean = s as f64 / n as f64 / 255.0;
    let var = s2 as f64 / n as f64 / (255.0 * 255.0) - mean * mean;
    (mean, var.sqrt())
}

fn sum(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| u64::from(b)).sum()
}

/// A scratch directory under the system temp dir, removed on drop (tests only; the crate itself
/// never writes).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("datasets-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn source(&self) -> Source {
        Source::Dir(self.0.clone())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1];
    v.extend((labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

fn idx_images(n: u32, rows: u32, cols: u32, fill: u8) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for d in [n, rows, cols] {
        v.extend(d.to_be_bytes());
    }
    v.extend(std::iter::repeat_n(fill, (n * rows * cols) as usize));
    v
}

// ---------------------------------------------------------------------------------------------
// Embedded files: checksums (docs/datasets.md §3)

#[test]
fn embedded_files_match_their_sha256sums() {
    verify_embedded().unwrap();
    let lines = parse_sha256sums("SHA256SUMS", SHA256SUMS).unwrap();
    assert_eq!(lines.len(), 11);
    assert_eq!(embedded_files().len(), 11);
    for line in &lines {
        assert_eq!(
            sha256_hex(embedded(&line.path)),
            line.sha256,
            "{}",
            line.path
        );
    }
}

#[test]
fn embedded_files_match_the_spec_table() {
    // docs/datasets.md §3: path, bytes, file sha256.
    let table: [(&str, usize, &str); 11] = [
        (
            "mnist/train-images-idx3-ubyte.gz",
            1_609_526,
            "11a772a6dc925b05dd399880865d80fdc378f1482a27072a7fe2c10be2367eda",
        ),
        (
            "mnist/train-labels-idx1-ubyte.gz",
            4_997,
            "4e8b4ac90e302aa725dd50c14268e8630d3941e30cf889ea15dfa1a6dedf8665",
        ),
        (
            "mnist/t10k-images-idx3-ubyte.gz",
            1_602_050,
            "197e111ae341b0770be9011ac5e622d0e6cd1c640b32eb0de5dc1dd26cc6e182",
        ),
        (
            "mnist/t10k-labels-idx1-ubyte.gz",
            4_517,
            "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
        ),
        (
            "fashion-mnist/train-images-idx3-ubyte.gz",
            430_157,
            "857b8f8a243554eadbdf40cc5374e4242449e104d0aabfc90c84500ac1fd36d0",
        ),
        (
            "fashion-mnist/train-labels-idx1-ubyte.gz",
            525,
            "bfc85198780dd5fa3738b261f2281ae0577e81f8c8d43c33737bdd9d75ce85a2",
        ),
        (
            "fashion-mnist/t10k-images-idx3-ubyte.gz",
            440_030,
            "4dfe4b10393a3d71052654929920f988792269baf4f6da9f736342c20d5417b2",
        ),
        (
            "fashion-mnist/t10k-labels-idx1-ubyte.gz",
            524,
            "af7938be5719422e8517551bf2d75db4819f3cf74292f252f03a241bc5e2ba64",
        ),
        (
            "cifar-10-batches-bin/test_batch.bin",
            61_460,
            "7a75c7f3d741a45b5f79cc341c8607a874c6f441de815b9d426ace5249b5c733",
        ),
        (
            "cifar-10-batches-bin/batches.meta.txt",
            61,
            "558e74b5e208382e186da55784b4bac2cd52e558448e1b5800990fdb28ed8033",
        ),
        (
            "cifar-100-binary/test.bin",
            61_480,
            "505fa2cfe7781c8dbb61830432cbcb1c1e10e3e790e0fcf96866e600b1545cab",
        ),
    ];
    for (path, len, sha) in table {
        let bytes = embedded(path);
        assert_eq!(bytes.len(), len, "{path}");
        verify_sha256(path, bytes, sha).unwrap();
    }
}

#[test]
fn embedded_idx_raw_digests() {
    // docs/datasets.md §3: raw (decompressed) digests of the embedded IDX subsets.
    let cases: [(&str, usize, &str, Option<&str>); 6] = [
        (
            "mnist/train-images-idx3-ubyte.gz",
            7_840_016,
            "63a563d3843dba5073e604e3a7990e87",
            Some("2889698e6bc3614913e76901316712919d1998fc2b44512451bfe65bc1e668b1"),
        ),
        (
            "mnist/train-labels-idx1-ubyte.gz",
            10_008,
            "e6ef65212ddc6f9010e22d95b5269050",
            Some("651e38e2ac0632f5113ec18f1df4977117f953197819034009971a6675a0df78"),
        ),
        (
            "fashion-mnist/train-images-idx3-ubyte.gz",
            784_016,
            "0204cfcdbec845c440aaae046f9798d3",
            None,
        ),
        (
            "fashion-mnist/train-labels-idx1-ubyte.gz",
            1_008,
            "8103653fc6c68ec51774aae8930768b8",
            None,
        ),
        (
            "fashion-mnist/t10k-images-idx3-ubyte.gz",
            784_016,
            "8a1b719f9f0735f54c6f9ef07f01fe5c",
            None,
        ),
        (
            "fashion-mnist/t10k-labels-idx1-ubyte.gz",
            1_008,
            "e27076c4666f2f7b7b7ba19675567282",
            None,
        ),
    ];
    for (path, len, md5, sha) in cases {
        let raw = inflate(path, embedded(path)).unwrap();
        let checks = Checksums {
            bytes: Some(len as u64),
            md5: Some(md5.to_string()),
            sha256: sha.map(str::to_string),
        };
        checks.verify(path, &raw).unwrap();
    }
}

#[test]
fn embedded_mnist_test_is_the_official_test_set() {
    // docs/datasets.md §3: the embedded MNIST test files are the official raw files of §2, so the
    // manifest's raw checksums (size, md5, sha256) hold for them.
    let manifest = Manifest::canonical().unwrap();
    let mnist = manifest.dataset(DatasetId::Mnist).unwrap();
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        let entry = mnist.file(name).unwrap();
        let path = format!("mnist/{}", entry.gz_name());
        entry.verify_raw(&path, embedded(&path)).unwrap();
    }
    // The train subset is not the official file: the size check says so first.
    let entry = mnist.file("train-labels-idx1-ubyte").unwrap();
    let err = entry
        .verify_raw(
            "mnist/train-labels-idx1-ubyte.gz",
            embedded("mnist/train-labels-idx1-ubyte.gz"),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthMismatch {
                expected: 60_008,
                got: 10_008,
                ..
            }
        ),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Golden values (docs/datasets.md §4)

struct IdxGolden {
    id: DatasetId,
    split: Split,
    n: usize,
    first20: [u32; 20],
    histogram: [usize; 10],
    mean: f64,
    std: f64,
    sum_first: u64,
    sum_last: u64,
}

const IDX_GOLDENS: [IdxGolden; 4] = [
    IdxGolden {
        id: DatasetId::Mnist,
        split: Split::Train,
        n: 10_000,
        first20: [5, 0, 4, 1, 9, 2, 1, 3, 1, 4, 3, 5, 3, 6, 1, 7, 2, 8, 6, 9],
        histogram: [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978],
        mean: 0.131126,
        std: 0.308699,
        sum_first: 27_525,
        sum_last: 20_613,
    },
    IdxGolden {
        id: DatasetId::Mnist,
        split: Split::Test,
        n: 10_000,
        first20: [7, 2, 1, 0, 4, 1, 4, 9, 5, 9, 0, 6, 9, 0, 1, 5, 9, 7, 3, 4],
        histogram: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
        mean: 0.132515,
        std: 0.310480,
        sum_first: 18_454,
        sum_last: 41_833,
    },
    IdxGolden {
        id: DatasetId::FashionMnist,
        split: Split::Train,
        n: 1_000,
        first20: [9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9, 5, 5, 7, 9, 1, 0, 6, 4],
        histogram: [107, 104, 86, 92, 95, 100, 100, 115, 102, 99],
        mean: 0.282903,
        std: 0.353079,
        sum_first: 76_247,
        sum_last: 69_838,
    },
    IdxGolden {
        id: DatasetId::FashionMnist,
        split: Split::Test,
        n: 1_000,
        first20: [9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1, 2, 4, 8, 0],
        histogram: [107, 105, 111, 93, 115, 87, 97, 95, 95, 95],
        mean: 0.290287,
        std: 0.354700,
        sum_first: 33_456,
        sum_last: 28_316,
    },
];

// The spec rounds pixel statistics to 6 decimals (IDX) or 5 (CIFAR): the tolerances are twice
// the rounding error, 1e-6 and 1e-5. Statistics are computed from exact integer sums.
const TOL_6: f64 = 1e-6;
const TOL_5: f64 = 1e-5;

#[test]
fn idx_goldens() {
    for g in &IDX_GOLDENS {
        let what = format!("{} {}", g.id, g.split);
        let d = load(g.id, g.split);
        assert_eq!(d.len(), g.n, "{what}");
        assert_eq!(d.shape(), [1, 28, 28], "{what}");
        assert_eq!(&d.labels()[..20], &g.first20, "{what}");
        assert_eq!(d.class_counts(), g.histogram, "{what}");
        let (mean, std) = stats(d.pixels().iter().copied());
        assert!((mean - g.mean).abs() < TOL_6, "{what}: mean {mean}");
        assert!((std - g.std).abs() < TOL_6, "{what}: std {std}");
        assert_eq!(sum(d.image(0).unwrap()), g.sum_first, "{what}");
        assert_eq!(sum(d.image(g.n - 1).unwrap()), g.sum_last, "{what}");
        assert!(d.image(g.n).is_none());
    }
}

#[test]
fn header_counts() {
    // docs/datasets.md §3: 10,000 / 10,000 / 1,000 / 1,000 / 20 / 20 records.
    for (dir, prefix, n) in [
        ("mnist", "train", 10_000),
        ("mnist", "t10k", 10_000),
        ("fashion-mnist", "train", 1_000),
        ("fashion-mnist", "t10k", 1_000),
    ] {
        let images = format!("{dir}/{prefix}-images-idx3-ubyte.gz");
        let labels = format!("{dir}/{prefix}-labels-idx1-ubyte.gz");
        let parsed = parse_idx_images(&images, embedded(&images)).unwrap();
        assert_eq!(
            (parsed.n, parsed.rows, parsed.cols),
            (n, 28, 28),
            "{images}"
        );
        assert_eq!(parsed.pixels.len(), n * 784);
        assert_eq!(
            parse_idx_labels(&labels, embedded(&labels)).unwrap().len(),
            n,
            "{labels}"
        );
    }
    let c10 = "cifar-10-batches-bin/test_batch.bin";
    assert_eq!(parse_cifar10(c10, embedded(c10)).unwrap().n, 20);
    let c100 = "cifar-100-binary/test.bin";
    assert_eq!(parse_cifar100(c100, embedded(c100)).unwrap().n, 20);
}

fn channel_stats(d: &RawDataset, c: usize) -> (f64, f64) {
    let per = 1024;
    stats((0..d.len()).flat_map(|i| d.image(i).unwrap()[c * per..(c + 1) * per].iter().copied()))
}

#[test]
fn cifar10_goldens() {
    let d = load(DatasetId::Cifar10, Split::Test);
    assert_eq!((d.len(), d.shape()), (20, [3, 32, 32]));
    assert_eq!(
        d.labels(),
        &[3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]
    );
    assert_eq!(d.class_counts(), [2, 2, 0, 2, 0, 2, 4, 2, 4, 2]);
    assert!(d.coarse_labels().is_none());
    let means = [0.48974, 0.47436, 0.45047];
    let stds = [0.24930, 0.24740, 0.26230];
    for c in 0..3 {
        let (mean, std) = channel_stats(&d, c);
        assert!((mean - means[c]).abs() < TOL_5, "channel {c}: mean {mean}");
        assert!((std - stds[c]).abs() < TOL_5, "channel {c}: std {std}");
    }
    assert_eq!(sum(d.image(0).unwrap()), 332_962);
    assert_eq!(
        &d.image(0).unwrap()[..8],
        &[158, 159, 165, 166, 160, 156, 162, 159]
    );
    assert_eq!(&d.image(1).unwrap()[..4], &[235, 231, 232, 232]);
    assert_eq!(&d.image(2).unwrap()[..4], &[158, 158, 139, 132]);
    assert_eq!(d.class_names()[d.labels()[0] as usize], "cat");
}

#[test]
fn cifar100_goldens() {
    let d = load(DatasetId::Cifar100, Split::Test);
    assert_eq!(
        (d.len(), d.shape(), d.num_classes()),
        (20, [3, 32, 32], 100)
    );
    let coarse = [
        10, 10, 0, 4, 10, 2, 11, 7, 10, 4, 10, 12, 19, 19, 5, 8, 2, 8, 2, 4,
    ];
    let fine = [
        49, 33, 72, 51, 71, 92, 15, 14, 23, 0, 71, 75, 81, 69, 40, 43, 92, 97, 70, 53,
    ];
    assert_eq!(d.coarse_labels().unwrap(), &coarse);
    assert_eq!(d.labels(), &fine, "labels are the fine labels");
    let mut hist = [0; 20];
    for &c in &coarse {
        hist[c as usize] += 1;
    }
    assert_eq!(
        hist,
        [1, 0, 3, 0, 3, 1, 0, 1, 2, 0, 5, 1, 1, 0, 0, 0, 0, 0, 0, 2]
    );
    let means = [0.51508, 0.48036, 0.45612];
    for (c, m) in means.iter().enumerate() {
        let (mean, _) = channel_stats(&d, c);
        assert!((mean - m).abs() < TOL_5, "channel {c}: mean {mean}");
    }
    assert_eq!(sum(d.image(0).unwrap()), 559_205);
    // The name tables agree with the labels: a mountain is a large natural outdoor scene.
    let names: Vec<_> = d.labels()[..4]
        .iter()
        .map(|&l| CIFAR100_FINE_CLASSES[l as usize])
        .collect();
    assert_eq!(names, ["mountain", "forest", "seal", "mushroom"]);
    assert_eq!(
        CIFAR100_COARSE_CLASSES[coarse[0] as usize],
        "large_natural_outdoor_scenes"
    );
    assert_eq!(
        CIFAR100_COARSE_CLASSES[coarse[2] as usize],
        "aquatic_mammals"
    );
}

#[test]
fn cifar10_class_names_match_batches_meta() {
    let path = "cifar-10-batches-bin/batches.meta.txt";
    let names = parse_class_names(path, embedded(path)).unwrap();
    assert_eq!(names, CIFAR10_CLASSES);
    assert_eq!(DatasetId::Cifar10.class_names(), CIFAR10_CLASSES);
}

// ---------------------------------------------------------------------------------------------
// Dataset ids and sources

#[test]
fn dataset_id_names_round_trip() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct W {
        id: DatasetId,
        split: Split,
    }
    let names = ["mnist", "fashion-mnist", "cifar10", "cifar100"];
    for (id, name) in DatasetId::ALL.into_iter().zip(names) {
        assert_eq!(id.to_string(), name);
        assert_eq!(name.parse::<DatasetId>().unwrap(), id);
        let w = W {
            id,
            split: Split::Test,
        };
        let text = toml::to_string(&w).unwrap();
        assert_eq!(text, format!("id = \"{name}\"\nsplit = \"test\"\n"));
        assert_eq!(toml::from_str::<W>(&text).unwrap(), w);
    }
    let err = "cifar-10".parse::<DatasetId>().unwrap_err();
    assert!(err.to_string().contains("cifar-10"), "{err}");
    assert_eq!("train".parse::<Split>().unwrap(), Split::Train);
    assert!("val".parse::<Split>().is_err());
}

/// ImageNet is named like the others but has no record files: asking for them is a clear
/// error, never a search of the data root.
#[test]
fn imagenet_is_named_but_has_no_records() {
    let id: DatasetId = "imagenet".parse().unwrap();
    assert_eq!(id, DatasetId::ImageNet);
    assert_eq!(
        (id.to_string(), id.title()),
        ("imagenet".into(), "ImageNet")
    );
    assert!(!DatasetId::ALL.contains(&id));
    assert!(DatasetId::ALL.iter().all(|d| d.has_records()));
    assert_eq!((id.num_classes(), id.input_shape()), (1000, [3, 224, 224]));
    assert_eq!(Normalization::for_dataset(id), Normalization::imagenet());
    let root = std::env::temp_dir();
    for err in [
        RawDataset::load(id, Split::Train, &Source::Embedded).unwrap_err(),
        RawDataset::load(id, Split::Test, &Source::Dir(root.clone())).unwrap_err(),
        crate::locate(&root, id).unwrap_err(),
    ] {
        assert!(matches!(err, Error::NoRecords { .. }), "{err}");
        assert!(err.to_string().contains("class folders"), "{err}");
    }
}

#[test]
fn dataset_id_shapes_and_classes() {
    let expected = [
        ([1, 28, 28], 10),
        ([1, 28, 28], 10),
        ([3, 32, 32], 10),
        ([3, 32, 32], 100),
    ];
    for (id, (shape, classes)) in DatasetId::ALL.into_iter().zip(expected) {
        assert_eq!(id.input_shape(), shape, "{id}");
        assert_eq!(id.num_classes(), classes, "{id}");
    }
}

#[test]
fn embedded_cifar_train_is_a_typed_error() {
    for id in [DatasetId::Cifar10, DatasetId::Cifar100] {
        let err = RawDataset::load(id, Split::Train, &Source::Embedded).unwrap_err();
        assert!(
            matches!(err, Error::NotEmbedded { dataset, split: Split::Train } if dataset == id),
            "{err}"
        );
        assert!(err.to_string().contains(id.name()));
    }
}

#[test]
fn dir_source_reads_the_same_layout() {
    // Raw and gzip names through the same parser: unpack MNIST test, keep labels gzipped.
    let s = Scratch::new("dir-layout");
    let images = "mnist/t10k-images-idx3-ubyte.gz";
    s.write(
        "mnist/t10k-images-idx3-ubyte",
        &inflate(images, embedded(images)).unwrap(),
    );
    let labels = "mnist/t10k-labels-idx1-ubyte.gz";
    s.write(labels, embedded(labels));
    let from_dir = RawDataset::load(DatasetId::Mnist, Split::Test, &s.source()).unwrap();
    assert_eq!(from_dir, load(DatasetId::Mnist, Split::Test));

    // CIFAR-10 train is data_batch_1..5 concatenated.
    let batch = embedded("cifar-10-batches-bin/test_batch.bin");
    for k in 1..=5 {
        let mut bytes = batch.to_vec();
        bytes[0] = k; // tag each file through its first label
        s.write(&format!("cifar-10-batches-bin/data_batch_{k}.bin"), &bytes);
    }
    let train = RawDataset::load(DatasetId::Cifar10, Split::Train, &s.source()).unwrap();
    assert_eq!(train.len(), 100);
    let firsts: Vec<u32> = (0..5).map(|k| train.labels()[20 * k]).collect();
    assert_eq!(firsts, [1, 2, 3, 4, 5]);
    assert_eq!(train.image(20).unwrap(), &batch[1..CIFAR10_RECORD]);
}

#[test]
fn dir_source_missing_file_names_every_candidate() {
    let s = Scratch::new("dir-missing");
    // One file of the dataset, so its folder is found.
    s.write("fashion-mnist/t10k-labels-idx1-ubyte", &idx_labels(&[1]));
    let err = RawDataset::load(DatasetId::FashionMnist, Split::Train, &s.source()).unwrap_err();
    let Error::FileNotFound { tried } = &err else {
        panic!("{err}")
    };
    let expected: Vec<PathBuf> = ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
        .iter()
        .map(|f| s.0.join("fashion-mnist").join(f))
        .collect();
    assert_eq!(tried, &expected);
    assert!(
        err.to_string().contains("train-images-idx3-ubyte.gz"),
        "{err}"
    );
}

#[test]
fn label_count_mismatch_names_the_label_file() {
    let s = Scratch::new("count-mismatch");
    s.write("mnist/train-images-idx3-ubyte", &idx_images(3, 28, 28, 7));
    let labels = s.write("mnist/train-labels-idx1-ubyte", &idx_labels(&[1, 2]));
    let err = RawDataset::load(DatasetId::Mnist, Split::Train, &s.source()).unwrap_err();
    let Error::CountMismatch {
        file,
        images,
        labels: n,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((Path::new(file), *images, *n), (labels.as_path(), 3, 2));
    assert!(
        err.to_string().contains(&labels.display().to_string()),
        "{err}"
    );
}

#[test]
fn wrong_image_dims_are_an_error() {
    let s = Scratch::new("dims");
    let images = s.write("mnist/t10k-images-idx3-ubyte", &idx_images(2, 27, 28, 0));
    s.write("mnist/t10k-labels-idx1-ubyte", &idx_labels(&[1, 2]));
    let err = RawDataset::load(DatasetId::Mnist, Split::Test, &s.source()).unwrap_err();
    assert!(
        matches!(&err, Error::DimsMismatch { got, .. } if got == &[27, 28]),
        "{err}"
    );
    assert!(
        err.to_string().contains(&images.display().to_string()),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Parser errors

#[test]
fn truncated_idx_file() {
    let path = "mnist/t10k-labels-idx1-ubyte.gz";
    let raw = inflate(path, embedded(path)).unwrap();
    let err = parse_idx_labels("t10k-labels", &raw[..raw.len() - 1]).unwrap_err();
    let Error::LengthMismatch {
        file,
        expected,
        got,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (file.as_str(), *expected, *got),
        ("t10k-labels", 10_008, 10_007)
    );
    assert!(err.to_string().contains("t10k-labels"), "{err}");
    // Shorter than the header: the header length is what was expected.
    let err = parse_idx_images("stub", &[0, 0, 8, 3, 0, 0]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthMismatch {
                expected: 16,
                got: 6,
                ..
            }
        ),
        "{err}"
    );
    let err = parse_idx_images("empty", &[]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthMismatch {
                expected: 16,
                got: 0,
                ..
            }
        ),
        "{err}"
    );
    // Trailing bytes are as wrong as missing ones.
    let mut long = idx_labels(&[1, 2]);
    long.push(0);
    assert!(matches!(
        parse_idx_labels("long", &long),
        Err(Error::LengthMismatch { .. })
    ));
    // A header claiming more than memory could hold is only a length mismatch.
    let huge = [
        0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    ];
    assert!(matches!(
        parse_idx_images("huge", &huge),
        Err(Error::LengthMismatch { .. })
    ));
}

#[test]
fn bad_magic() {
    let path = "mnist/t10k-labels-idx1-ubyte.gz";
    let err = parse_idx_images(path, embedded(path)).unwrap_err();
    assert!(
        matches!(&err, Error::BadMagic { found: 0x801, expected: 0x803, file } if file == path),
        "{err}"
    );
    assert!(err.to_string().contains(path), "{err}");
    let err = parse_idx_labels("x", &[1, 2, 3, 4, 0, 0, 0, 0]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadMagic {
                found: 0x0102_0304,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn idx_label_out_of_range() {
    let err = parse_idx_labels("labels", &idx_labels(&[0, 9, 10, 3])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LabelOutOfRange {
                index: 2,
                label: 10,
                max: 9,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("labels"));
}

#[test]
fn corrupt_gzip() {
    let path = "mnist/t10k-labels-idx1-ubyte.gz";
    let bytes = embedded(path);
    let truncated = &bytes[..bytes.len() / 2];
    let err = parse_idx_labels(path, truncated).unwrap_err();
    assert!(
        matches!(&err, Error::Gzip { file, .. } if file == path),
        "{err}"
    );
    assert!(err.to_string().contains(path), "{err}");
    let garbage = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        parse_idx_images("g", &garbage),
        Err(Error::Gzip { .. })
    ));
    // A flipped bit inside the stream fails the CRC or the inflater, never parses.
    let mut flipped = bytes.to_vec();
    flipped[bytes.len() / 2] ^= 0x40;
    assert!(parse_idx_labels(path, &flipped).is_err());
}

/// A gzip bomb is an error naming the file, not an allocation that takes the machine down.
#[test]
fn gzip_that_inflates_past_the_limit_is_an_error() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&[0u8; 4096]).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(
        crate::idx::inflate_limited("bomb.gz", &gz, 4096)
            .unwrap()
            .len(),
        4096
    );
    match crate::idx::inflate_limited("bomb.gz", &gz, 4095) {
        Err(err @ Error::TooLarge { limit: 4095, .. }) => {
            assert!(err.to_string().contains("bomb.gz"), "{err}")
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    const { assert!(crate::idx::MAX_INFLATED >= 47_040_016) };
}

/// Found by the `idx` fuzz target (30 inputs a second instead of thousands): a 20-byte file
/// whose corrupt trailer claimed 4 GiB reserved the 256 MiB cap for every attempt. The trailer
/// is now believed only up to deflate's ratio.
#[test]
fn a_corrupt_gzip_trailer_does_not_reserve_a_huge_buffer() {
    let mut tiny = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0];
    tiny.extend(u32::MAX.to_le_bytes());
    assert_eq!(
        crate::idx::size_hint(&tiny, crate::idx::MAX_INFLATED),
        20 * 1032
    );
    assert!(matches!(
        parse_idx_labels("tiny.gz", &tiny),
        Err(Error::Gzip { .. } | Error::LengthMismatch { .. })
    ));
    // A real file's trailer is believed.
    let gz = embedded("mnist/t10k-labels-idx1-ubyte.gz");
    assert_eq!(
        crate::idx::size_hint(gz, crate::idx::MAX_INFLATED),
        inflate("labels", gz).unwrap().len()
    );
}

#[test]
fn cifar_length_not_a_multiple() {
    let path = "cifar-10-batches-bin/test_batch.bin";
    let bytes = embedded(path);
    let err = parse_cifar10(path, &bytes[..bytes.len() - 1]).unwrap_err();
    assert!(
        matches!(&err, Error::PartialRecord { file, len: 61_459, record: 3073 } if file == path),
        "{err}"
    );
    assert!(err.to_string().contains(path), "{err}");
    // A CIFAR-10 batch read as CIFAR-100 does not divide either.
    assert!(matches!(
        parse_cifar100(path, bytes),
        Err(Error::PartialRecord {
            record: CIFAR100_RECORD,
            ..
        })
    ));
    assert_eq!(parse_cifar10("empty", &[]).unwrap().n, 0);
}

#[test]
fn cifar_label_out_of_range() {
    let mut c10 = embedded("cifar-10-batches-bin/test_batch.bin").to_vec();
    c10[CIFAR10_RECORD] = 10;
    let err = parse_cifar10("c10", &c10).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LabelOutOfRange {
                index: 1,
                label: 10,
                max: 9,
                ..
            }
        ),
        "{err}"
    );

    let mut c100 = embedded("cifar-100-binary/test.bin").to_vec();
    c100[0] = 20;
    let err = parse_cifar100("c100", &c100).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LabelOutOfRange {
                index: 0,
                label: 20,
                max: 19,
                ..
            }
        ),
        "{err}"
    );
    c100[0] = 19;
    c100[1] = 100;
    let err = parse_cifar100("c100", &c100).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LabelOutOfRange {
                index: 0,
                label: 100,
                max: 99,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("c100"));
}

#[test]
fn class_names_must_be_utf8() {
    assert!(matches!(
        parse_class_names("meta", &[0xff, 0xfe]),
        Err(Error::NotUtf8 { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Checksums and the manifest

#[test]
fn wrong_checksum_names_the_file() {
    let sha_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(sha256_hex(b"abc"), sha_abc);
    assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    verify_sha256("abc.txt", b"abc", &sha_abc.to_uppercase()).unwrap();
    let err = verify_sha256("abd.txt", b"abd", sha_abc).unwrap_err();
    let Error::ChecksumMismatch {
        file, algorithm, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((file.as_str(), *algorithm), ("abd.txt", "sha256"));
    assert!(
        err.to_string().contains("abd.txt") && err.to_string().contains(sha_abc),
        "{err}"
    );
    let err = verify_md5("abd.txt", b"abd", "900150983cd24fb0d6963f7d28e17f72").unwrap_err();
    assert!(
        matches!(
            err,
            Error::ChecksumMismatch {
                algorithm: "md5",
                ..
            }
        ),
        "{err}"
    );

    let sized = Checksums {
        bytes: Some(4),
        ..Checksums::default()
    };
    let err = sized.verify("short.bin", b"abc").unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthMismatch {
                expected: 4,
                got: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("short.bin"));
}

#[test]
fn sha256sums_format() {
    let sha = "a".repeat(64);
    let lines = parse_sha256sums("L", &format!("{sha}  a/b.bin\n\n{sha} *c.txt\n")).unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0].path.as_str(), lines[1].path.as_str()),
        ("a/b.bin", "c.txt")
    );
    assert!(matches!(
        parse_sha256sums("L", "nohash"),
        Err(Error::ChecksumList { line: 1, .. })
    ));
    assert!(matches!(
        parse_sha256sums("L", "abc  x"),
        Err(Error::BadDigest { .. })
    ));
}

#[test]
fn canonical_manifest() {
    let m = Manifest::canonical().unwrap();
    assert_eq!(m.datasets.len(), 4);
    for id in DatasetId::ALL {
        let d = m.dataset(id).unwrap();
        assert_eq!(d.dir, id.dir_name(), "{id}");
        assert!(!d.mirrors.is_empty(), "{id}");
        // Every file the loader reads is in the manifest.
        for split in [Split::Train, Split::Test] {
            for candidates in source::layout(id, split) {
                let name = candidates[0].rsplit('/').next().unwrap();
                assert!(d.file(name).is_some(), "{id}: {name}");
            }
        }
    }
    let mnist = m.dataset(DatasetId::Mnist).unwrap();
    assert!(mnist.mirrors[0].contains("ossci-datasets"));
    assert!(
        mnist.mirrors[2].contains("yann.lecun.com"),
        "lecun.com last"
    );
    let train = mnist.file("train-images-idx3-ubyte").unwrap();
    assert_eq!(train.remote_name(), "train-images-idx3-ubyte.gz");
    assert_eq!(train.gz.as_ref().unwrap().bytes, Some(9_912_422));
    assert_eq!(
        mnist.urls(&train.remote_name())[0],
        "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
    );
    let fashion = m.dataset(DatasetId::FashionMnist).unwrap();
    assert!(
        fashion
            .files
            .iter()
            .all(|f| f.raw.md5.is_some() && f.raw.sha256.is_some())
    );
    let c10 = m
        .dataset(DatasetId::Cifar10)
        .unwrap()
        .archive
        .as_ref()
        .unwrap();
    assert_eq!(
        (c10.name.as_str(), c10.prefix.as_str()),
        ("cifar-10-binary.tar.gz", "cifar-10-batches-bin/")
    );
    assert_eq!(c10.checksums.bytes, Some(170_052_171));
    let c100 = m
        .dataset(DatasetId::Cifar100)
        .unwrap()
        .archive
        .as_ref()
        .unwrap();
    assert_eq!(
        c100.checksums.md5.as_deref(),
        Some("03b5dce01913d631647c71ecec9e9cb8")
    );
    assert!(c100.checksums.sha256.is_none(), "only the md5 is published");
    // Round trip through TOML.
    let again = Manifest::parse("again", &toml::to_string(&m).unwrap()).unwrap();
    assert_eq!(again, m);
}

#[test]
fn manifest_errors() {
    let m = Manifest::canonical().unwrap();
    let mut dup = m.clone();
    dup.datasets.push(dup.datasets[0].clone());
    let err = Manifest::parse("dup.toml", &toml::to_string(&dup).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ManifestEntries {
                dataset: DatasetId::Mnist,
                count: 2
            }
        ),
        "{err}"
    );
    let mut bad = m.clone();
    bad.datasets[0].files[0].raw.sha256 = Some("xyz".into());
    let err = Manifest::parse("bad.toml", &toml::to_string(&bad).unwrap()).unwrap_err();
    assert!(
        matches!(&err, Error::BadDigest { file, .. } if file == "bad.toml"),
        "{err}"
    );
    let err = Manifest::parse("broken.toml", "[[dataset]]\nid = 3").unwrap_err();
    assert!(matches!(err, Error::Manifest { .. }) && err.to_string().contains("broken.toml"));
}

// ---------------------------------------------------------------------------------------------
// Records and tensors

#[test]
fn in_memory_records_are_validated() {
    let ok = RawDataset::new(DatasetId::Mnist, Split::Train, vec![0; 2 * 784], vec![3, 9]).unwrap();
    assert_eq!((ok.len(), ok.class_counts()[3]), (2, 1));
    assert!(matches!(
        RawDataset::new(DatasetId::Mnist, Split::Train, vec![0; 784], vec![3, 9]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        RawDataset::new(DatasetId::Mnist, Split::Train, vec![0; 784], vec![10]),
        Err(Error::LabelOutOfRange {
            label: 10,
            max: 9,
            ..
        })
    ));
}

#[test]
fn truncate_and_subset() {
    let mut d = load(DatasetId::Cifar100, Split::Test);
    let sub = d.subset(&[3, 0, 3]).unwrap();
    assert_eq!(sub.labels(), &[51, 49, 51]);
    assert_eq!(sub.coarse_labels().unwrap(), &[4, 10, 4]);
    assert_eq!(sub.image(1), d.image(0));
    assert!(matches!(
        d.subset(&[20]),
        Err(Error::IndexOutOfRange { index: 20, len: 20 })
    ));
    d.truncate(5);
    assert_eq!(
        (d.len(), d.pixels().len(), d.coarse_labels().unwrap().len()),
        (5, 5 * 3072, 5)
    );
    d.truncate(100);
    assert_eq!(d.len(), 5);
}

#[test]
fn to_tensors_scale_only_reproduces_channel_means() {
    let d = load(DatasetId::Cifar10, Split::Test);
    let t = TransformConfig::normalize(Normalization::scale_only(3))
        .validate(d.shape())
        .unwrap();
    let (xs, ys) = d.to_tensors(&t, &Device::Cpu).unwrap();
    assert_eq!(xs.dims(), &[20, 3, 32, 32]);
    assert_eq!(ys.to_vec1::<u32>().unwrap(), d.labels());
    let means = xs
        .mean_keepdim(0)
        .unwrap()
        .mean_keepdim(2)
        .unwrap()
        .mean_keepdim(3)
        .unwrap();
    let means = to_f32(&means);
    for (c, m) in [0.48974, 0.47436, 0.45047].into_iter().enumerate() {
        // f32 accumulation over 20k values: 1e-5 covers both rounding and summation error.
        assert!(
            (f64::from(means[c]) - m).abs() < 2e-5,
            "channel {c}: {}",
            means[c]
        );
    }
}

#[test]
fn mnist_normalization_matches_the_spec_formula() {
    // docs/datasets.md §6: input (x/255 − 0.1307)/0.3081.
    let d = load(DatasetId::Mnist, Split::Test);
    let t = TransformConfig::for_dataset(DatasetId::Mnist)
        .validate(d.shape())
        .unwrap();
    let mut rng = tensor_core::rng(0, "unused");
    let (xs, _) = d.batch(&[0], &t, &mut rng, &Device::Cpu).unwrap();
    let got = to_f32(&xs);
    for (g, &b) in got.iter().zip(d.image(0).unwrap()) {
        let want = (f32::from(b) / 255.0 - 0.1307) / 0.3081;
        assert!((g - want).abs() < 1e-6);
    }
}

#[test]
fn batch_checks_shapes_and_indices() {
    let cifar = load(DatasetId::Cifar10, Split::Test);
    let mnist_t = TransformConfig::mnist32_pad()
        .validate([1, 28, 28])
        .unwrap();
    let mut rng = tensor_core::rng(1, "augment");
    let err = cifar
        .batch(&[0], &mnist_t, &mut rng, &Device::Cpu)
        .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let t = TransformConfig::cifar_augmented(Normalization::cifar10())
        .validate(cifar.shape())
        .unwrap();
    let err = cifar
        .batch(&[0, 20], &t, &mut rng, &Device::Cpu)
        .unwrap_err();
    assert!(
        matches!(err, Error::IndexOutOfRange { index: 20, len: 20 }),
        "{err}"
    );
    assert!(matches!(
        cifar.to_tensors(&t, &Device::Cpu),
        Err(Error::MissingRng)
    ));
    let (xs, _) = cifar
        .to_tensors(&t.without_augment(), &Device::Cpu)
        .unwrap();
    assert_eq!(xs.dims(), &[20, 3, 32, 32]);
    let (xs, ys) = cifar.batch(&[], &t, &mut rng, &Device::Cpu).unwrap();
    assert_eq!((xs.dims(), ys.dims()), (&[0, 3, 32, 32][..], &[0][..]));
}

// ---------------------------------------------------------------------------------------------
// Preprocessing

#[test]
fn augmentation_is_seeded() {
    let d = load(DatasetId::Cifar10, Split::Test);
    let t = TransformConfig::cifar_augmented(Normalization::cifar10_common_std())
        .validate(d.shape())
        .unwrap();
    let indices: Vec<usize> = (0..20).rev().collect();
    let run = |seed| {
        let mut rng = tensor_core::rng(seed, "augment");
        to_f32(&d.batch(&indices, &t, &mut rng, &Device::Cpu).unwrap().0)
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn augment_draws_stay_in_range_and_use_both_flips() {
    let a = Augment::cifar();
    let mut rng = tensor_core::rng(3, "augment");
    let draws: Vec<AugmentDraw> = (0..500).map(|_| a.draw(&mut rng)).collect();
    assert!(draws.iter().all(|d| d.top <= 8 && d.left <= 8));
    assert!(draws.iter().any(|d| d.flip) && draws.iter().any(|d| !d.flip));
    assert!(draws.iter().any(|d| d.top == 0) && draws.iter().any(|d| d.top == 8));
    // Nothing to draw: the generator is untouched.
    let none = Augment {
        crop_padding: 0,
        hflip: false,
    };
    let mut r1 = tensor_core::rng(3, "augment");
    let r2 = r1.clone();
    assert_eq!(
        none.draw(&mut r1),
        AugmentDraw {
            top: 0,
            left: 0,
            flip: false
        }
    );
    assert_eq!(r1, r2);
}

fn ramp(shape: [usize; 3]) -> Vec<u8> {
    // Distinct-ish values, none zero, so padding is recognisable.
    (0..shape.iter().product::<usize>())
        .map(|i| (i % 251 + 1) as u8)
        .collect()
}

fn sorted(mut v: Vec<u8>) -> Vec<u8> {
    v.sort_unstable();
    v
}

#[test]
fn flip_properties() {
    let shape = [3, 5, 7];
    let xs = ramp(shape);
    let once = hflip(&xs, shape).unwrap();
    assert_ne!(once, xs);
    assert_eq!(
        sorted(once.clone()),
        sorted(xs.clone()),
        "flip preserves the pixel multiset"
    );
    assert_eq!(
        hflip(&once, shape).unwrap(),
        xs,
        "flip twice is the identity"
    );
    assert_eq!(&once[..7], &[7, 6, 5, 4, 3, 2, 1]);
}

#[test]
fn crop_properties() {
    let shape = [3, 6, 5];
    let xs = ramp(shape);
    assert_eq!(
        crop_padded(&xs, shape, 2, 2, 2).unwrap(),
        xs,
        "centre crop is the identity"
    );
    assert_eq!(crop_padded(&xs, shape, 0, 0, 0).unwrap(), xs);
    for top in 0..=4 {
        for left in 0..=4 {
            let out = crop_padded(&xs, shape, 2, top, left).unwrap();
            let kept: Vec<u8> = out.iter().copied().filter(|&v| v != 0).collect();
            // The window shows (6 - |top - 2|) x (5 - |left - 2|) original pixels per channel:
            // the nonzero multiset is a sub-multiset of the image's.
            let area = 3 * (6 - top.abs_diff(2)) * (5 - left.abs_diff(2));
            assert_eq!(kept.len(), area, "offset ({top}, {left})");
            let mut pool = sorted(xs.clone());
            for v in kept {
                let pos = pool.binary_search(&v).unwrap();
                pool.remove(pos);
            }
        }
    }
    // Shifting down by one: row 0 is padding, row 1 is the image's row 0.
    let out = crop_padded(&xs, shape, 2, 1, 2).unwrap();
    assert!(out[..5].iter().all(|&v| v == 0));
    assert_eq!(&out[5..10], &xs[..5]);
    assert!(crop_padded(&xs, shape, 2, 5, 0).is_err());
    // A window wholly in the padding of a tiny image.
    assert_eq!(crop_padded(&[9u8], [1, 1, 1], 4, 0, 0).unwrap(), vec![0]);
}

#[test]
fn resize_bilinear_matches_torch() {
    // torch.nn.functional.interpolate(torch.arange(4.).view(1,1,2,2), size=(4,4),
    // mode="bilinear", align_corners=False)
    let xs = [0.0, 1.0, 2.0, 3.0];
    let out = resize_bilinear(&xs, [1, 2, 2], (4, 4)).unwrap();
    let want = [
        0.0, 0.25, 0.75, 1.0, //
        0.5, 0.75, 1.25, 1.5, //
        1.5, 1.75, 2.25, 2.5, //
        2.0, 2.25, 2.75, 3.0,
    ];
    for (o, w) in out.iter().zip(want) {
        assert!((o - w).abs() < 1e-6, "{out:?}");
    }
}

#[test]
fn resize_of_a_constant_image_stays_constant() {
    for (shape, size) in [
        ([1, 28, 28], (32, 32)),
        ([3, 32, 32], (28, 28)),
        ([2, 28, 28], (13, 41)),
    ] {
        let xs = vec![0.6f32; shape.iter().product()];
        let out = resize_bilinear(&xs, shape, size).unwrap();
        assert_eq!(out.len(), shape[0] * size.0 * size.1);
        assert!(
            out.iter().all(|v| (v - 0.6).abs() < 1e-6),
            "{shape:?} -> {size:?}"
        );
    }
    let xs: Vec<f32> = (0..28 * 28).map(|i| i as f32).collect();
    assert_eq!(
        resize_bilinear(&xs, [1, 28, 28], (28, 28)).unwrap(),
        xs,
        "same size is the identity"
    );
}

#[test]
fn pad_and_replicate() {
    let xs = ramp([1, 28, 28]);
    let padded = pad_to(&xs, [1, 28, 28], (32, 32)).unwrap();
    assert_eq!(padded.len(), 1024);
    assert_eq!(sum(&padded), sum(&xs));
    assert_eq!(&padded[2 * 32 + 2..2 * 32 + 30], &xs[..28]);
    assert!(padded[..64].iter().all(|&v| v == 0));
    // Odd remainder: the extra row and column go to the bottom and right.
    let odd = pad_to(&[1u8], [1, 1, 1], (2, 2)).unwrap();
    assert_eq!(odd, [1, 0, 0, 0]);
    assert!(pad_to(&xs, [1, 28, 28], (27, 32)).is_err());
    let rgb = replicate_channels(&xs, [1, 28, 28], 3).unwrap();
    assert_eq!(
        (&rgb[..784], &rgb[784..1568], &rgb[1568..]),
        (&xs[..], &xs[..], &xs[..])
    );
    assert!(replicate_channels(&rgb, [3, 28, 28], 1).is_err());
}

#[test]
fn mnist32_pipelines() {
    let d = load(DatasetId::Mnist, Split::Train);
    let mut rng = tensor_core::rng(0, "unused");
    let mean_std = (0.1307f32, 0.3081f32);
    let background = -mean_std.0 / mean_std.1;

    let padded = TransformConfig::mnist32_pad().validate(d.shape()).unwrap();
    assert_eq!(padded.output_shape(), [1, 32, 32]);
    let (xs, _) = d.batch(&[0], &padded, &mut rng, &Device::Cpu).unwrap();
    let v = to_f32(&xs);
    assert!(
        v[..64].iter().all(|&x| (x - background).abs() < 1e-6),
        "border is background"
    );

    let resized = TransformConfig::mnist32_resize()
        .validate(d.shape())
        .unwrap();
    let (xs, _) = d.batch(&[0], &resized, &mut rng, &Device::Cpu).unwrap();
    assert_eq!(xs.dims(), &[1, 1, 32, 32]);
    // Resizing preserves the ink roughly: the mean in [0, 1] moves by little.
    let v = to_f32(&xs);
    let mean_resized = v.iter().map(|x| x * mean_std.1 + mean_std.0).sum::<f32>() / 1024.0;
    let mean_raw = sum(d.image(0).unwrap()) as f32 / 255.0 / 784.0;
    assert!(
        (mean_resized - mean_raw).abs() < 0.01,
        "{mean_resized} vs {mean_raw}"
    );

    // Gray to RGB for a 3-channel model.
    let rgb = TransformConfig {
        channels: Some(3),
        ..TransformConfig::normalize(Normalization::scale_only(3))
    };
    let rgb = rgb.validate(d.shape()).unwrap();
    let (xs, _) = d.batch(&[0], &rgb, &mut rng, &Device::Cpu).unwrap();
    let v = to_f32(&xs);
    assert_eq!(&v[..784], &v[784..1568]);
}

#[test]
fn transform_validation_errors() {
    let problem = |cfg: TransformConfig, input| match cfg.validate(input) {
        Err(Error::InvalidTransform { problem, .. }) => problem,
        other => panic!("{other:?}"),
    };
    let pad = TransformConfig {
        resize: Some((40, 40)),
        pad_to: Some((32, 32)),
        ..TransformConfig::mnist32_pad()
    };
    assert_eq!(
        problem(pad, [1, 28, 28]),
        TransformProblem::PadSmaller {
            from: (40, 40),
            to: (32, 32)
        }
    );
    assert!(matches!(
        problem(TransformConfig::for_dataset(DatasetId::Mnist), [3, 32, 32]),
        TransformProblem::NormalizationChannels {
            channels: 3,
            mean: 1,
            std: 1
        }
    ));
    let gray = TransformConfig {
        channels: Some(1),
        ..TransformConfig::for_dataset(DatasetId::Mnist)
    };
    assert_eq!(
        problem(gray, [3, 32, 32]),
        TransformProblem::Channels { from: 3, to: 1 }
    );
    let zero_std = TransformConfig::normalize(Normalization {
        mean: vec![0.5],
        std: vec![0.0],
    });
    assert!(matches!(
        problem(zero_std, [1, 28, 28]),
        TransformProblem::NormalizationValue { channel: 0, .. }
    ));
    let zero = TransformConfig {
        resize: Some((0, 32)),
        ..TransformConfig::mnist32_resize()
    };
    assert_eq!(problem(zero, [1, 28, 28]), TransformProblem::ZeroSize);
    let err = TransformConfig::mnist32_pad()
        .validate([0, 28, 28])
        .unwrap_err();
    assert!(err.to_string().contains("zero"), "{err}");
}

#[test]
fn transform_config_round_trips_through_toml() {
    let cfg = TransformConfig::cifar_augmented(Normalization::cifar10_common_std());
    let text = toml::to_string(&cfg).unwrap();
    assert_eq!(toml::from_str::<TransformConfig>(&text).unwrap(), cfg);
    let minimal: TransformConfig =
        toml::from_str("[normalization]\nmean = [0.1307]\nstd = [0.3081]\n").unwrap();
    assert_eq!(minimal, TransformConfig::for_dataset(DatasetId::Mnist));
}

#[test]
fn apply_requires_a_generator_when_random() {
    let t = TransformConfig::cifar_augmented(Normalization::cifar10())
        .validate([3, 32, 32])
        .unwrap();
    assert!(t.is_random() && !t.without_augment().is_random());
    let image = vec![128u8; 3072];
    assert!(matches!(t.apply(&image, None), Err(Error::MissingRng)));
    let mut rng = tensor_core::rng(9, "augment");
    assert_eq!(t.apply(&image, Some(&mut rng)).unwrap().len(), 3072);
    assert!(matches!(
        t.apply(&image[..100], Some(&mut rng)),
        Err(Error::Shape { .. })
    ));
}
