//! [`DatasetId`] and [`Split`]: the typed names of what can be loaded, with each dataset's shape
//! and classes.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The supported datasets. The serde, [`FromStr`](std::str::FromStr) and
/// [`Display`](std::fmt::Display) forms are the kebab-case names of [`DatasetId::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DatasetId {
    /// MNIST handwritten digits, 1×28×28, 10 classes (`mnist`).
    #[serde(rename = "mnist")]
    Mnist,
    /// Zalando's Fashion-MNIST, 1×28×28, 10 classes (`fashion-mnist`).
    #[serde(rename = "fashion-mnist")]
    FashionMnist,
    /// CIFAR-10, 3×32×32, 10 classes (`cifar10`).
    #[serde(rename = "cifar10")]
    Cifar10,
    /// CIFAR-100, 3×32×32, 100 fine classes (`cifar100`). Labels are the **fine** labels; the
    /// 20 coarse ones are kept beside them
    /// ([`RawDataset::coarse_labels`](crate::RawDataset::coarse_labels)).
    #[serde(rename = "cifar100")]
    Cifar100,
    /// ILSVRC-2012 (`imagenet`), 1000 classes, read from its class folders of JPEGs (feature
    /// `imagenet`, `image_folder`), never as record files: it is not in [`DatasetId::ALL`].
    #[serde(rename = "imagenet")]
    ImageNet,
}

impl DatasetId {
    /// Every dataset read from record files ([`RawDataset::load`](crate::RawDataset::load),
    /// `cargo xtask datasets`), in declaration order: all but [`DatasetId::ImageNet`].
    pub const ALL: [DatasetId; 4] = [
        DatasetId::Mnist,
        DatasetId::FashionMnist,
        DatasetId::Cifar10,
        DatasetId::Cifar100,
    ];

    /// The name used by serde, `FromStr` and `Display`.
    pub fn name(self) -> &'static str {
        match self {
            DatasetId::Mnist => "mnist",
            DatasetId::FashionMnist => "fashion-mnist",
            DatasetId::Cifar10 => "cifar10",
            DatasetId::Cifar100 => "cifar100",
            DatasetId::ImageNet => "imagenet",
        }
    }

    /// The name in prose and messages: `MNIST`, `Fashion-MNIST`, `CIFAR-10`, `CIFAR-100`.
    pub fn title(self) -> &'static str {
        match self {
            DatasetId::Mnist => "MNIST",
            DatasetId::FashionMnist => "Fashion-MNIST",
            DatasetId::Cifar10 => "CIFAR-10",
            DatasetId::Cifar100 => "CIFAR-100",
            DatasetId::ImageNet => "ImageNet",
        }
    }

    /// The directory holding the dataset's files, as in the official archives and under
    /// `datasets/data/` (docs/datasets.md §3).
    pub fn dir_name(self) -> &'static str {
        match self {
            DatasetId::Mnist => "mnist",
            DatasetId::FashionMnist => "fashion-mnist",
            DatasetId::Cifar10 => "cifar-10-batches-bin",
            DatasetId::Cifar100 => "cifar-100-binary",
            DatasetId::ImageNet => "imagenet",
        }
    }

    /// Number of classes of the labels the loader returns (fine labels for CIFAR-100; ImageNet's
    /// 1000, whose names are its class folders').
    pub fn num_classes(self) -> usize {
        match self {
            DatasetId::ImageNet => 1000,
            _ => self.class_names().len(),
        }
    }

    /// Whether the dataset is read from record files (every one but ImageNet).
    pub fn has_records(self) -> bool {
        self != DatasetId::ImageNet
    }

    /// The per-sample shape `[c, h, w]` as stored: `[1, 28, 28]` or `[3, 32, 32]`; for
    /// ImageNet, whose images differ in size, the standard crop `[3, 224, 224]`.
    pub fn input_shape(self) -> [usize; 3] {
        match self {
            DatasetId::Mnist | DatasetId::FashionMnist => [1, 28, 28],
            DatasetId::Cifar10 | DatasetId::Cifar100 => [3, 32, 32],
            DatasetId::ImageNet => [3, 224, 224],
        }
    }

    /// Class names indexed by label (fine names for CIFAR-100); none for ImageNet, whose class
    /// names are its folders' ([`num_classes`](Self::num_classes) still says 1000).
    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            DatasetId::ImageNet => &[],
            DatasetId::Mnist => &MNIST_CLASSES,
            DatasetId::FashionMnist => &FASHION_MNIST_CLASSES,
            DatasetId::Cifar10 => &CIFAR10_CLASSES,
            DatasetId::Cifar100 => &CIFAR100_FINE_CLASSES,
        }
    }
}

impl std::fmt::Display for DatasetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DatasetId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        DatasetId::ALL
            .into_iter()
            .chain([DatasetId::ImageNet])
            .find(|d| d.name() == s)
            .ok_or_else(|| Error::UnknownDataset {
                input: s.to_string(),
            })
    }
}

/// Which part of a dataset: the official training or test records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The training records (`train`).
    Train,
    /// The test records (`test`).
    Test,
}

impl Split {
    /// The name used by serde, `FromStr` and `Display`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Split {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Split::Train),
            "test" => Ok(Split::Test),
            _ => Err(Error::UnknownSplit {
                input: s.to_string(),
            }),
        }
    }
}

/// MNIST's classes: the digits.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Fashion-MNIST's classes, as in Zalando's README.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// CIFAR-10's classes, as in `batches.meta.txt` (docs/datasets.md §1).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// CIFAR-100's 20 coarse classes (superclasses), as in `coarse_label_names.txt`.
pub const CIFAR100_COARSE_CLASSES: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

/// CIFAR-100's 100 fine classes, as in `fine_label_names.txt` (alphabetical).
pub const CIFAR100_FINE_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];
