//! ImageNet-style image folders (feature `imagenet`): the ILSVRC-2012 layout of one folder per
//! class holding JPEG files, for `train` and `val` (docs/datasets.md §7).
//!
//! - [`ImageNetDir::open`] reads the two splits and checks that they name the same classes;
//!   [`ImageFolder::open`] reads one folder. Classes are the sorted folder names, so a class's
//!   label is its rank (torchvision's `ImageFolder` order).
//! - [`ImagePipeline`] is the usual per-sample preprocessing: resize the shorter side to 256
//!   (antialiased bilinear), crop 224 (random with a horizontal flip when training, centred
//!   otherwise), normalise with the ImageNet statistics, as CHW `f32`.
//! - [`FolderBatches`] serves a folder as a [`BatchSource`]: shuffled per epoch from a seed when
//!   training, decoded by worker threads that keep a bounded number of batches ready ahead of
//!   the trainer. A batch is the same whatever the number of workers or the prefetch depth.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use rand::Rng as _;
use tensor_core::{BatchSource, Device, Tensor};

use crate::error::{Error, FolderProblem, Result};
use crate::transform::Normalization;

/// File extensions read as images (case-insensitive), torchvision's image extensions that the
/// decoder supports; other files in a class folder are ignored.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpeg", "jpg", "png"];

/// One split in the class-folder layout: every image file with its label.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    dir: PathBuf,
    classes: Vec<String>,
    samples: Vec<(PathBuf, u32)>,
}

impl ImageFolder {
    /// Reads `dir`: its sub-folders, sorted by name, are the classes; their image files, sorted
    /// by name, the samples.
    pub fn open(dir: &Path) -> Result<Self> {
        let classes = class_folders(dir)?;
        if classes.is_empty() {
            return Err(folder_error(dir, FolderProblem::NoClasses));
        }
        Self::with_classes(dir, classes)
    }

    /// Reads `dir` against a known class list (the training split's): every class must have a
    /// folder and every folder must be a class, so labels mean the same in both splits.
    pub fn open_with_classes(dir: &Path, classes: &[String]) -> Result<Self> {
        let found: BTreeSet<String> = class_folders(dir)?.into_iter().collect();
        let known: BTreeSet<&String> = classes.iter().collect();
        if let Some(c) = found.iter().find(|c| !known.contains(c)) {
            return Err(folder_error(dir, FolderProblem::UnknownClass(c.clone())));
        }
        if let Some(c) = classes.iter().find(|c| !found.contains(*c)) {
            return Err(folder_error(dir, FolderProblem::MissingClass(c.clone())));
        }
        Self::with_classes(dir, classes.to_vec())
    }

    fn with_classes(dir: &Path, classes: Vec<String>) -> Result<Self> {
        let mut samples = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let class_dir = dir.join(class);
            let mut files: Vec<PathBuf> = read_dir(&class_dir)?
                .into_iter()
                .filter(|p| p.is_file() && is_image(p))
                .collect();
            if files.is_empty() {
                return Err(folder_error(dir, FolderProblem::EmptyClass(class.clone())));
            }
            files.sort();
            samples.extend(files.into_iter().map(|p| (p, label as u32)));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            classes,
            samples,
        })
    }

    /// The folder read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Class names; a label indexes this list.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Every image file with its label, by class then file name.
    pub fn samples(&self) -> &[(PathBuf, u32)] {
        &self.samples
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the folder holds no image (never true for an opened folder).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The images at positions `indices` of [`Self::samples`], in that order, with every class
    /// kept (labels mean the same): a held-out or calibration part of a split.
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        let samples = indices
            .iter()
            .map(|&index| {
                self.samples.get(index).cloned().ok_or_else(|| {
                    folder_error(
                        &self.dir,
                        FolderProblem::NoSample {
                            index,
                            len: self.samples.len(),
                        },
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            dir: self.dir.clone(),
            classes: self.classes.clone(),
            samples,
        })
    }
}

/// An ImageNet root: `train/` and `val/`, each one folder per class (the validation images
/// sorted into class folders, as torchvision and most training scripts expect them).
#[derive(Clone, Debug)]
pub struct ImageNetDir {
    /// The training split.
    pub train: ImageFolder,
    /// The validation split, with the training split's classes.
    pub val: ImageFolder,
}

impl ImageNetDir {
    /// Reads `root/train` and `root/val`.
    pub fn open(root: &Path) -> Result<Self> {
        let train = ImageFolder::open(&root.join("train"))?;
        let val = ImageFolder::open_with_classes(&root.join("val"), train.classes())?;
        Ok(Self { train, val })
    }
}

fn folder_error(dir: &Path, problem: FolderProblem) -> Error {
    Error::ImageFolder {
        dir: dir.to_path_buf(),
        problem,
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::read_dir(dir)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()).map_err(io))
        .collect()
}

fn class_folders(dir: &Path) -> Result<Vec<String>> {
    let mut classes: Vec<String> = read_dir(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .filter(|n| !n.starts_with('.'))
        .collect();
    classes.sort();
    Ok(classes)
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The per-sample preprocessing of an image folder.
#[derive(Clone, Debug, PartialEq)]
pub struct ImagePipeline {
    /// The shorter side after resizing (aspect ratio kept; the longer side truncated as
    /// torchvision's `Resize(int)` does).
    pub resize: u32,
    /// The side of the square crop.
    pub crop: u32,
    /// Random crop and horizontal flip (training) instead of the centre crop.
    pub augment: bool,
    /// Per-channel normalisation of the `[0, 1]` RGB values.
    pub normalization: Normalization,
}

impl ImagePipeline {
    /// Training: resize 256, random 224 crop, flip with probability ½, ImageNet normalisation.
    pub fn imagenet_train() -> Self {
        Self {
            resize: 256,
            crop: 224,
            augment: true,
            normalization: Normalization::imagenet(),
        }
    }

    /// Evaluation: resize 256, centre 224 crop, ImageNet normalisation.
    pub fn imagenet_eval() -> Self {
        Self {
            augment: false,
            ..Self::imagenet_train()
        }
    }

    /// The pipeline with another crop side and resize (for networks of other input sizes).
    pub fn sized(self, resize: u32, crop: u32) -> Self {
        Self {
            resize,
            crop,
            ..self
        }
    }

    /// Shape `[3, crop, crop]` of one sample.
    pub fn output_shape(&self) -> [usize; 3] {
        [3, self.crop as usize, self.crop as usize]
    }

    fn check(&self) -> Result<()> {
        let n = &self.normalization;
        let channels_ok = n.mean.len() == 3 && n.std.len() == 3;
        let std_ok = n.std.iter().all(|s| s.is_finite() && *s > 0.0);
        if self.crop == 0 || self.resize < self.crop || !channels_ok || !std_ok {
            return Err(Error::InvalidImagePipeline {
                resize: self.resize,
                crop: self.crop,
                normalization: n.clone(),
            });
        }
        Ok(())
    }

    /// Reads, decodes and preprocesses the image at `path` into `out` (CHW, `3·crop·crop`
    /// values); an augmenting pipeline draws its crop offsets and flip from `rng`.
    pub fn load(&self, path: &Path, rng: &mut tensor_core::Rng, out: &mut [f32]) -> Result<()> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let decode_error = |message: String| Error::ImageDecode {
            path: path.to_path_buf(),
            message,
        };
        let rgb = image::load_from_memory(&bytes)
            .map_err(|e| decode_error(e.to_string()))?
            .into_rgb8();
        let (w, h) = rgb.dimensions();
        let (rw, rh) = resized_size(w, h, self.resize);
        let src = Image::from_vec_u8(w, h, rgb.into_raw(), PixelType::U8x3)
            .map_err(|e| decode_error(e.to_string()))?;
        let mut dst = Image::new(rw, rh, PixelType::U8x3);
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        Resizer::new()
            .resize(&src, &mut dst, &options)
            .map_err(|e| decode_error(e.to_string()))?;
        let c = self.crop;
        let (top, left, flip) = if self.augment {
            let top = rng.random_range(0..=rh - c);
            let left = rng.random_range(0..=rw - c);
            (top, left, rng.random_bool(0.5))
        } else {
            (centre_offset(rh, c), centre_offset(rw, c), false)
        };
        write_chw(
            dst.buffer(),
            rw,
            (top, left, c),
            flip,
            &self.normalization,
            out,
        );
        Ok(())
    }
}

/// `(width, height)` with the shorter side `size` and the longer side truncated, as
/// torchvision's `Resize(size)` computes it.
pub fn resized_size(w: u32, h: u32, size: u32) -> (u32, u32) {
    let long = |l: u32, s: u32| ((u64::from(size) * u64::from(l)) / u64::from(s)) as u32;
    if w <= h {
        (size, long(h, w))
    } else {
        (long(w, h), size)
    }
}

/// The offset of a centred crop of `crop` in `len`: half the margin, rounded half to even as
/// torchvision's `CenterCrop` rounds it (Python's `round`).
pub fn centre_offset(len: u32, crop: u32) -> u32 {
    let margin = len - crop;
    let half = margin / 2;
    if margin % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

fn write_chw(
    rgb: &[u8],
    width: u32,
    (top, left, crop): (u32, u32, u32),
    flip: bool,
    norm: &Normalization,
    out: &mut [f32],
) {
    let (width, top, left, crop) = (width as usize, top as usize, left as usize, crop as usize);
    let plane = crop * crop;
    for ch in 0..3 {
        let scale = 1.0 / (255.0 * norm.std[ch]);
        let shift = norm.mean[ch] / norm.std[ch];
        for y in 0..crop {
            let row = (top + y) * width;
            let dst = &mut out[ch * plane + y * crop..ch * plane + (y + 1) * crop];
            for (x, v) in dst.iter_mut().enumerate() {
                let sx = if flip { crop - 1 - x } else { x };
                let p = rgb[(row + left + sx) * 3 + ch];
                *v = f32::from(p) * scale - shift;
            }
        }
    }
}

/// How [`FolderBatches`] serves a folder.
#[derive(Clone, Debug, PartialEq)]
pub struct FolderBatchConfig {
    /// Images per batch (the last batch of an epoch may be shorter).
    pub batch: usize,
    /// Seed of the per-epoch shuffle and the augmentation draws.
    pub seed: u64,
    /// Shuffle per epoch (training) instead of the folder's order.
    pub shuffle: bool,
    /// Decoding threads; 0 decodes on the caller's thread when a batch is asked for.
    pub workers: usize,
    /// Batches kept ready ahead of the one asked for, in all (at least one per worker).
    pub prefetch: usize,
}

impl FolderBatchConfig {
    /// Shuffled batches of `batch` from `seed`, `workers` threads keeping two batches each ready.
    pub fn training(batch: usize, seed: u64, workers: usize) -> Self {
        Self {
            batch,
            seed,
            shuffle: true,
            workers,
            prefetch: 2 * workers,
        }
    }

    /// Batches of `batch` in the folder's order, `workers` threads keeping two batches each ready.
    pub fn evaluation(batch: usize, workers: usize) -> Self {
        Self {
            shuffle: false,
            ..Self::training(batch, 0, workers)
        }
    }
}

/// One decoded batch on the host.
struct HostBatch {
    images: Vec<f32>,
    labels: Vec<u32>,
}

/// The shared, read-only part of a [`FolderBatches`]: what a worker needs to decode any batch.
struct Plan {
    folder: ImageFolder,
    pipeline: ImagePipeline,
    batch: usize,
    seed: u64,
}

impl Plan {
    fn batches(&self) -> usize {
        self.folder.len().div_ceil(self.batch)
    }

    fn decode(&self, order: &[usize], epoch: usize, index: usize) -> Result<HostBatch> {
        let start = (index * self.batch).min(order.len());
        let chunk = &order[start..(start + self.batch).min(order.len())];
        let sample: usize = self.pipeline.output_shape().iter().product();
        let mut images = vec![0.0f32; chunk.len() * sample];
        let mut labels = Vec::with_capacity(chunk.len());
        // One generator per batch, drawn in sample order: a batch does not depend on which
        // thread decodes it or on which batches were decoded before.
        let mut rng = tensor_core::rng(self.seed, &format!("augment/{epoch}/{index}"));
        for (&i, out) in chunk.iter().zip(images.chunks_exact_mut(sample)) {
            let (path, label) = &self.folder.samples[i];
            self.pipeline.load(path, &mut rng, out)?;
            labels.push(*label);
        }
        Ok(HostBatch { images, labels })
    }
}

/// Worker threads decoding the batches of one epoch from a start index on: worker `k` decodes
/// the batches whose index is `k` modulo the worker count, in order, into its own bounded
/// channel, so reading the channels round-robin yields the batches in order.
struct Prefetch {
    epoch: usize,
    next: usize,
    channels: Vec<Receiver<Result<HostBatch>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Prefetch {
    fn start(
        plan: &Arc<Plan>,
        order: &Arc<Vec<usize>>,
        epoch: usize,
        from: usize,
        workers: usize,
        depth: usize,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut channels = Vec::with_capacity(workers);
        let mut threads = Vec::with_capacity(workers);
        for k in 0..workers {
            let (tx, rx) = sync_channel(depth);
            channels.push(rx);
            let (plan, order, stop) = (Arc::clone(plan), Arc::clone(order), Arc::clone(&stop));
            // The worker serves the batches from `from` on whose index is `k` modulo `workers`.
            let first = from + (k + workers - from % workers) % workers;
            threads.push(std::thread::spawn(move || {
                worker(&plan, &order, epoch, first, workers, &tx, &stop);
            }));
        }
        Self {
            epoch,
            next: from,
            channels,
            stop,
            threads,
        }
    }

    fn take(&mut self) -> Option<Result<HostBatch>> {
        let workers = self.channels.len();
        let got = self.channels[self.next % workers].recv().ok();
        self.next += 1;
        got
    }
}

fn worker(
    plan: &Plan,
    order: &[usize],
    epoch: usize,
    first: usize,
    step: usize,
    tx: &SyncSender<Result<HostBatch>>,
    stop: &AtomicBool,
) {
    let mut index = first;
    while index < plan.batches() && !stop.load(Ordering::Relaxed) {
        let batch = plan.decode(order, epoch, index);
        let failed = batch.is_err();
        // A closed channel means the reader stopped this epoch; so does a failed batch.
        if tx.send(batch).is_err() || failed {
            return;
        }
        index += step;
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the receivers unblocks workers waiting on a full channel.
        self.channels.clear();
        for t in self.threads.drain(..) {
            // A worker that panicked has nothing left to hand over; the reader already saw
            // its channel close.
            let _ = t.join();
        }
    }
}

/// An image folder served as batches of `[b, 3, crop, crop]` images and `[b]` labels.
pub struct FolderBatches {
    plan: Arc<Plan>,
    config: FolderBatchConfig,
    device: Device,
    order: Option<(usize, Arc<Vec<usize>>)>,
    prefetch: Option<Prefetch>,
}

impl FolderBatches {
    /// Serves `folder` through `pipeline` as `config` says, building tensors on `device`.
    pub fn new(
        folder: ImageFolder,
        pipeline: ImagePipeline,
        config: FolderBatchConfig,
        device: &Device,
    ) -> Result<Self> {
        pipeline.check()?;
        let config = FolderBatchConfig {
            batch: config.batch.max(1),
            ..config
        };
        Ok(Self {
            plan: Arc::new(Plan {
                folder,
                pipeline,
                batch: config.batch,
                seed: config.seed,
            }),
            config,
            device: device.clone(),
            order: None,
            prefetch: None,
        })
    }

    /// The folder served.
    pub fn folder(&self) -> &ImageFolder {
        &self.plan.folder
    }

    fn order(&mut self, epoch: usize) -> Arc<Vec<usize>> {
        match &self.order {
            Some((e, order)) if *e == epoch => Arc::clone(order),
            _ => {
                let n = self.plan.folder.len();
                let order = if self.config.shuffle {
                    let mut rng = tensor_core::rng(self.config.seed, &format!("batches/{epoch}"));
                    tensor_core::seed::permutation(n, &mut rng)
                } else {
                    (0..n).collect()
                };
                let order = Arc::new(order);
                self.order = Some((epoch, Arc::clone(&order)));
                order
            }
        }
    }

    /// Batch `index` of `epoch` on the host.
    fn host_batch(&mut self, epoch: usize, index: usize) -> Result<HostBatch> {
        let order = self.order(epoch);
        let workers = self.config.workers;
        if workers == 0 {
            return self.plan.decode(&order, epoch, index);
        }
        let in_step = self
            .prefetch
            .as_ref()
            .is_some_and(|p| p.epoch == epoch && p.next == index);
        if !in_step {
            // Out of sequence (a new epoch, a resumed run): restart the workers from here.
            self.prefetch = None;
            let depth = self.config.prefetch.div_ceil(workers).max(1);
            self.prefetch = Some(Prefetch::start(
                &self.plan, &order, epoch, index, workers, depth,
            ));
        }
        let prefetch = self.prefetch.as_mut().expect("started above");
        match prefetch.take() {
            Some(Ok(batch)) => Ok(batch),
            Some(Err(e)) => {
                self.prefetch = None;
                Err(e)
            }
            // The worker ended without a batch: it panicked. Decode here, which reports the
            // same failure as an error.
            None => {
                self.prefetch = None;
                self.plan.decode(&order, epoch, index)
            }
        }
    }
}

impl BatchSource for FolderBatches {
    fn batches_per_epoch(&self) -> usize {
        self.plan.batches()
    }

    fn batch(&mut self, epoch: usize, index: usize) -> tensor_core::Result<(Tensor, Tensor)> {
        let host = self
            .host_batch(epoch, index)
            .map_err(|e| tensor_core::Error::Model(Box::new(e)))?;
        let [c, h, w] = self.plan.pipeline.output_shape();
        let b = host.labels.len();
        Ok((
            Tensor::from_vec(host.images, (b, c, h, w), &self.device)?,
            Tensor::from_vec(host.labels, b, &self.device)?,
        ))
    }
}

/// A generated JPEG of `width × height` for tests and benchmarks of the folder pipeline: a
/// smooth colour gradient whose hue depends on `class`, with seeded pixel noise so that files
/// differ and compress like photographs rather than flat colour. Returns the file's bytes.
pub fn synthetic_jpeg(width: u32, height: u32, class: u32, seed: u64) -> Result<Vec<u8>> {
    let mut rng = tensor_core::rng(seed, &format!("synthetic-jpeg/{class}"));
    let base = [
        (class * 97) % 256,
        (class * 53 + 80) % 256,
        (class * 29 + 160) % 256,
    ];
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            for (ch, b) in base.iter().enumerate() {
                let ramp = if ch == 0 {
                    x * 64 / width.max(1)
                } else {
                    y * 64 / height.max(1)
                };
                let noise: u32 = rng.random_range(0..48);
                pixels.push(((b + ramp + noise) % 256) as u8);
            }
        }
    }
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode(&pixels, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| Error::ImageDecode {
            path: PathBuf::from("<synthetic>"),
            message: e.to_string(),
        })?;
    Ok(bytes)
}
