//! Per-sample preprocessing on the host, pure and seeded: scaling to [0, 1], bilinear resize,
//! zero padding, channel replication, CIFAR augmentation (pad-and-crop, horizontal flip) and
//! per-channel normalisation.
//!
//! A [`TransformConfig`] (serialisable) is validated against the input shape into a
//! [`Transform`], the only form that runs. Stages run in a fixed order, the order of the
//! torchvision pipelines the papers use: scale to [0, 1] → resize → pad → replicate channels
//! → random crop → random flip → normalise. Padding therefore adds background (0 before
//! normalisation), as torchvision's `Pad` and `RandomCrop(padding=…)` on images do.
//!
//! Images are CHW slices described by their shape `[c, h, w]`.

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tensor_core::Rng;

use crate::error::{Error, Result, TransformProblem};
use crate::id::DatasetId;

/// Per-channel normalisation `(x − mean[c]) / std[c]` of pixels already scaled to [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    /// Mean per channel.
    pub mean: Vec<f32>,
    /// Standard deviation per channel; finite and positive.
    pub std: Vec<f32>,
}

impl Normalization {
    /// MNIST's full training-set statistics, mean 0.1307 and std 0.3081 (docs/datasets.md §4), the
    /// values of the reference LeNet-5 runs (docs/datasets.md §6) and of MNIST-32
    /// (docs/sparse-projection.md §8).
    pub fn mnist() -> Self {
        Self::new(&[0.1307], &[0.3081])
    }

    /// Fashion-MNIST's training-set statistics, mean 0.2860 and std 0.3530 (docs/datasets.md §4).
    pub fn fashion_mnist() -> Self {
        Self::new(&[0.2860], &[0.3530])
    }

    /// CIFAR-10's true training-set statistics (docs/datasets.md §4): mean 0.4914, 0.4822, 0.4465 and
    /// std 0.2470, 0.2435, 0.2616.
    pub fn cifar10() -> Self {
        Self::new(&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616])
    }

    /// CIFAR-10's mean with the std triple 0.2023, 0.1994, 0.2010 that many CIFAR codes use,
    /// E2-Train's included (docs/datasets.md §4). It is not the data's std; use it to match those
    /// codes and say so in the run's record.
    pub fn cifar10_common_std() -> Self {
        Self::new(&[0.4914, 0.4822, 0.4465], &[0.2023, 0.1994, 0.2010])
    }

    /// CIFAR-100's training-set statistics as commonly quoted: mean 0.5071, 0.4865, 0.4409 and
    /// std 0.2673, 0.2564, 0.2762. Not in docs/datasets.md and not re-measured here (no embedded
    /// CIFAR-100 training data).
    pub fn cifar100() -> Self {
        Self::new(&[0.5071, 0.4865, 0.4409], &[0.2673, 0.2564, 0.2762])
    }

    /// Scaling to [0, 1] only: mean 0 and std 1 on `channels` channels.
    pub fn scale_only(channels: usize) -> Self {
        Self {
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }

    /// The default for a dataset: [`mnist`](Self::mnist), [`fashion_mnist`](Self::fashion_mnist),
    /// [`cifar10`](Self::cifar10) (the true std, not the common triple),
    /// [`cifar100`](Self::cifar100) or [`imagenet`](Self::imagenet).
    pub fn for_dataset(id: DatasetId) -> Self {
        match id {
            DatasetId::Mnist => Self::mnist(),
            DatasetId::FashionMnist => Self::fashion_mnist(),
            DatasetId::Cifar10 => Self::cifar10(),
            DatasetId::Cifar100 => Self::cifar100(),
            DatasetId::ImageNet => Self::imagenet(),
        }
    }

    /// ImageNet's RGB statistics as torchvision's pretrained models expect them: mean 0.485,
    /// 0.456, 0.406 and std 0.229, 0.224, 0.225 (docs/datasets.md §7).
    pub fn imagenet() -> Self {
        Self::new(&[0.485, 0.456, 0.406], &[0.229, 0.224, 0.225])
    }

    fn new(mean: &[f32], std: &[f32]) -> Self {
        Self {
            mean: mean.to_vec(),
            std: std.to_vec(),
        }
    }

    fn check(&self, input: [usize; 3], channels: usize) -> Result<()> {
        let invalid = |problem| Error::InvalidTransform { input, problem };
        if self.mean.len() != channels || self.std.len() != channels {
            return Err(invalid(TransformProblem::NormalizationChannels {
                channels,
                mean: self.mean.len(),
                std: self.std.len(),
            }));
        }
        for (channel, (&mean, &std)) in self.mean.iter().zip(&self.std).enumerate() {
            if !mean.is_finite() || !std.is_finite() || std <= 0.0 {
                return Err(invalid(TransformProblem::NormalizationValue {
                    channel,
                    mean,
                    std,
                }));
            }
        }
        Ok(())
    }
}

/// Random training augmentation: zero-pad by `crop_padding` on every side and crop back to the
/// original size at a uniformly random offset, then flip horizontally with probability 1/2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Padding before the random crop; 0 disables cropping. CIFAR: 4.
    pub crop_padding: usize,
    /// Whether to flip horizontally at random. CIFAR: true.
    pub hflip: bool,
}

impl Augment {
    /// The standard CIFAR augmentation: `RandomCrop(32, padding=4)` and
    /// `RandomHorizontalFlip()`, as in E2-Train's training pipeline.
    pub fn cifar() -> Self {
        Self {
            crop_padding: 4,
            hflip: true,
        }
    }

    /// Draws one sample's augmentation. Consumes, in order, the crop's top and left offsets
    /// (only when `crop_padding > 0`) and the flip (only when `hflip`).
    pub fn draw(&self, rng: &mut Rng) -> AugmentDraw {
        let p = self.crop_padding;
        let (top, left) = if p > 0 {
            (rng.random_range(0..=2 * p), rng.random_range(0..=2 * p))
        } else {
            (0, 0)
        };
        let flip = self.hflip && rng.random_bool(0.5);
        AugmentDraw { top, left, flip }
    }
}

/// One sample's drawn augmentation: the crop's offsets into the padded image (`p, p` is the
/// identity crop) and whether to flip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AugmentDraw {
    /// Row offset in `0..=2·crop_padding`.
    pub top: usize,
    /// Column offset in `0..=2·crop_padding`.
    pub left: usize,
    /// Whether the sample is flipped horizontally.
    pub flip: bool,
}

/// A per-sample preprocessing pipeline as data. Validate it with [`TransformConfig::validate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// Bilinear resize to `(h, w)` (PyTorch `align_corners=False`, no antialiasing). Default
    /// `None`.
    #[serde(default)]
    pub resize: Option<(usize, usize)>,
    /// Zero padding to `(h, w)`, centred (an odd remainder goes to the bottom and right);
    /// must not be smaller than the image. Default `None`.
    #[serde(default)]
    pub pad_to: Option<(usize, usize)>,
    /// Replicate a single channel to this many (gray → RGB); equal to the current count is a
    /// no-op. Default `None`.
    #[serde(default)]
    pub channels: Option<usize>,
    /// Random augmentation (training only). Default `None`.
    #[serde(default)]
    pub augment: Option<Augment>,
    /// Normalisation; its channel count must match the output's.
    pub normalization: Normalization,
}

impl TransformConfig {
    /// Scaling and normalisation only.
    pub fn normalize(normalization: Normalization) -> Self {
        Self {
            resize: None,
            pad_to: None,
            channels: None,
            augment: None,
            normalization,
        }
    }

    /// The dataset's stored shape normalised with [`Normalization::for_dataset`]; no
    /// augmentation. For MNIST this is the input of docs/datasets.md §6: `(x/255 − 0.1307)/0.3081`.
    pub fn for_dataset(id: DatasetId) -> Self {
        Self::normalize(Normalization::for_dataset(id))
    }

    /// **MNIST-32** of the ICLR'19 LeNet-5 (docs/sparse-projection.md §8): 28 × 28 resized
    /// (bilinear, not padded) to 32 × 32, normalised with 0.1307 / 0.3081, no augmentation.
    pub fn mnist32_resize() -> Self {
        Self {
            resize: Some((32, 32)),
            ..Self::normalize(Normalization::mnist())
        }
    }

    /// The classic LeNet-5 input: MNIST zero-padded by 2 pixels to 32 × 32, normalised with
    /// 0.1307 / 0.3081.
    pub fn mnist32_pad() -> Self {
        Self {
            pad_to: Some((32, 32)),
            ..Self::normalize(Normalization::mnist())
        }
    }

    /// CIFAR training: [`Augment::cifar`] then `normalization` (state which CIFAR-10 std
    /// triple a run uses: [`Normalization::cifar10`] or [`Normalization::cifar10_common_std`]).
    pub fn cifar_augmented(normalization: Normalization) -> Self {
        Self {
            augment: Some(Augment::cifar()),
            ..Self::normalize(normalization)
        }
    }

    /// Checks the pipeline against a per-sample input shape `[c, h, w]` and returns the form
    /// that runs.
    pub fn validate(self, input: [usize; 3]) -> Result<Transform> {
        let invalid = |problem| Error::InvalidTransform { input, problem };
        let [mut c, mut h, mut w] = input;
        if c == 0 || h == 0 || w == 0 {
            return Err(invalid(TransformProblem::ZeroSize));
        }
        if let Some((rh, rw)) = self.resize {
            if rh == 0 || rw == 0 {
                return Err(invalid(TransformProblem::ZeroSize));
            }
            (h, w) = (rh, rw);
        }
        if let Some((ph, pw)) = self.pad_to {
            if ph < h || pw < w {
                return Err(invalid(TransformProblem::PadSmaller {
                    from: (h, w),
                    to: (ph, pw),
                }));
            }
            (h, w) = (ph, pw);
        }
        if let Some(to) = self.channels
            && to != c
        {
            if c != 1 || to == 0 {
                return Err(invalid(TransformProblem::Channels { from: c, to }));
            }
            c = to;
        }
        self.normalization.check(input, c)?;
        Ok(Transform {
            config: self,
            input,
            output: [c, h, w],
        })
    }
}

/// A validated [`TransformConfig`] bound to its input shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Transform {
    config: TransformConfig,
    input: [usize; 3],
    output: [usize; 3],
}

impl Transform {
    /// The configuration this transform was validated from.
    pub fn config(&self) -> &TransformConfig {
        &self.config
    }

    /// The per-sample input shape `[c, h, w]`.
    pub fn input_shape(&self) -> [usize; 3] {
        self.input
    }

    /// The per-sample output shape `[c, h, w]`.
    pub fn output_shape(&self) -> [usize; 3] {
        self.output
    }

    /// Whether the transform draws random numbers (has an augmentation).
    pub fn is_random(&self) -> bool {
        self.config.augment.is_some()
    }

    /// The same pipeline without augmentation: the evaluation view of a training transform.
    pub fn without_augment(&self) -> Transform {
        let mut t = self.clone();
        t.config.augment = None;
        t
    }

    /// Transforms one image of [`input_shape`](Self::input_shape) bytes (CHW). `rng` is
    /// required when the transform [`is_random`](Self::is_random) and untouched otherwise.
    pub fn apply(&self, image: &[u8], rng: Option<&mut Rng>) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.output.iter().product());
        self.apply_into(image, rng, &mut out)?;
        Ok(out)
    }

    /// [`apply`](Self::apply), appending to `out`.
    pub(crate) fn apply_into(
        &self,
        image: &[u8],
        rng: Option<&mut Rng>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        check_len("image", image.len(), self.input)?;
        let draw = match (&self.config.augment, rng) {
            (Some(a), Some(rng)) => Some((a.crop_padding, a.draw(rng))),
            (Some(_), None) => return Err(Error::MissingRng),
            (None, _) => None,
        };
        let mut shape = self.input;
        let mut xs: Vec<f32> = image.iter().map(|&b| f32::from(b) / 255.0).collect();
        if let Some(size) = self.config.resize {
            xs = resize_bilinear(&xs, shape, size)?;
            [shape[1], shape[2]] = [size.0, size.1];
        }
        if let Some(size) = self.config.pad_to {
            xs = pad_to(&xs, shape, size)?;
            [shape[1], shape[2]] = [size.0, size.1];
        }
        if let Some(c) = self.config.channels
            && c != shape[0]
        {
            xs = replicate_channels(&xs, shape, c)?;
            shape[0] = c;
        }
        if let Some((padding, d)) = draw {
            if padding > 0 {
                xs = crop_padded(&xs, shape, padding, d.top, d.left)?;
            }
            if d.flip {
                xs = hflip(&xs, shape)?;
            }
        }
        debug_assert_eq!(shape, self.output);
        let plane = shape[1] * shape[2];
        let norm = &self.config.normalization;
        out.extend(
            xs.iter()
                .enumerate()
                .map(|(i, &x)| (x - norm.mean[i / plane]) / norm.std[i / plane]),
        );
        Ok(())
    }
}

/// Bilinear resize of a CHW image to `(out_h, out_w)` with PyTorch's `align_corners=False`
/// semantics (also PIL's for upscaling): source coordinate `(dst + 0.5)·in/out − 0.5`, clamped
/// at 0, the right/bottom neighbour clamped to the edge. No antialiasing when downscaling.
pub fn resize_bilinear(xs: &[f32], shape: [usize; 3], size: (usize, usize)) -> Result<Vec<f32>> {
    check_len("image", xs.len(), shape)?;
    let [c, h, w] = shape;
    let (out_h, out_w) = size;
    // Per output row (column): the two source rows and the weight of the second.
    let taps = |n_in: usize, n_out: usize| -> Vec<(usize, usize, f32)> {
        let scale = n_in as f32 / n_out as f32;
        (0..n_out)
            .map(|d| {
                let src = (scale * (d as f32 + 0.5) - 0.5).max(0.0);
                let i0 = (src as usize).min(n_in - 1);
                let i1 = if i0 < n_in - 1 { i0 + 1 } else { i0 };
                (i0, i1, src - i0 as f32)
            })
            .collect()
    };
    let rows = taps(h, out_h);
    let cols = taps(w, out_w);
    let mut out = Vec::with_capacity(c * out_h * out_w);
    for plane in xs.chunks_exact(h * w) {
        for &(y0, y1, ly) in &rows {
            for &(x0, x1, lx) in &cols {
                let at = |y: usize, x: usize| plane[y * w + x];
                let top = (1.0 - lx) * at(y0, x0) + lx * at(y0, x1);
                let bottom = (1.0 - lx) * at(y1, x0) + lx * at(y1, x1);
                out.push((1.0 - ly) * top + ly * bottom);
            }
        }
    }
    Ok(out)
}

/// Zero-pads a CHW image to `(out_h, out_w)`, centred; an odd remainder goes to the bottom and
/// right. The target must not be smaller than the image.
pub fn pad_to<T: Copy + Default>(
    xs: &[T],
    shape: [usize; 3],
    size: (usize, usize),
) -> Result<Vec<T>> {
    check_len("image", xs.len(), shape)?;
    let [c, h, w] = shape;
    let (out_h, out_w) = size;
    if out_h < h || out_w < w {
        return Err(Error::InvalidTransform {
            input: shape,
            problem: TransformProblem::PadSmaller {
                from: (h, w),
                to: size,
            },
        });
    }
    let (top, left) = ((out_h - h) / 2, (out_w - w) / 2);
    let mut out = vec![T::default(); c * out_h * out_w];
    for (src, dst) in xs
        .chunks_exact(h * w)
        .zip(out.chunks_exact_mut(out_h * out_w))
    {
        for (y, row) in src.chunks_exact(w).enumerate() {
            let start = (y + top) * out_w + left;
            dst[start..start + w].copy_from_slice(row);
        }
    }
    Ok(out)
}

/// Repeats a single-channel image `channels` times (gray → RGB).
pub fn replicate_channels<T: Copy>(xs: &[T], shape: [usize; 3], channels: usize) -> Result<Vec<T>> {
    check_len("image", xs.len(), shape)?;
    if shape[0] != 1 {
        return Err(Error::InvalidTransform {
            input: shape,
            problem: TransformProblem::Channels {
                from: shape[0],
                to: channels,
            },
        });
    }
    Ok(xs.repeat(channels))
}

/// Crops an `h × w` window at offset `(top, left)` out of the image zero-padded by `padding` on
/// every side (torchvision's `RandomCrop(size, padding)` with the offsets given). Offsets
/// larger than `2·padding` are an error; `(padding, padding)` returns the image unchanged.
pub fn crop_padded<T: Copy + Default>(
    xs: &[T],
    shape: [usize; 3],
    padding: usize,
    top: usize,
    left: usize,
) -> Result<Vec<T>> {
    check_len("image", xs.len(), shape)?;
    if top > 2 * padding || left > 2 * padding {
        return Err(Error::Shape {
            what: "crop offset (top, left) within 0..=2·padding",
            expected: vec![2 * padding, 2 * padding],
            got: vec![top, left],
        });
    }
    let [c, h, w] = shape;
    let mut out = vec![T::default(); c * h * w];
    // Output (y, x) reads source (y + top − padding, x + left − padding) when inside the image.
    let src_range = |offset: usize, n: usize| {
        let lo = padding.saturating_sub(offset);
        let hi = (n + padding).saturating_sub(offset).min(n);
        (lo, hi)
    };
    let (y_lo, y_hi) = src_range(top, h);
    let (x_lo, x_hi) = src_range(left, w);
    if y_lo >= y_hi || x_lo >= x_hi {
        // The window lies wholly in the padding (images smaller than the padding).
        return Ok(out);
    }
    for (src, dst) in xs.chunks_exact(h * w).zip(out.chunks_exact_mut(h * w)) {
        for y in y_lo..y_hi {
            let sy = y + top - padding;
            let (sx0, sx1) = (x_lo + left - padding, x_hi + left - padding);
            dst[y * w + x_lo..y * w + x_hi].copy_from_slice(&src[sy * w + sx0..sy * w + sx1]);
        }
    }
    Ok(out)
}

/// Mirrors a CHW image left to right.
pub fn hflip<T: Copy>(xs: &[T], shape: [usize; 3]) -> Result<Vec<T>> {
    check_len("image", xs.len(), shape)?;
    let w = shape[2];
    let mut out = xs.to_vec();
    for row in out.chunks_exact_mut(w) {
        row.reverse();
    }
    Ok(out)
}

fn check_len(what: &'static str, len: usize, shape: [usize; 3]) -> Result<()> {
    if len == shape.iter().product::<usize>() && len > 0 {
        Ok(())
    } else {
        Err(Error::Shape {
            what,
            expected: shape.to_vec(),
            got: vec![len],
        })
    }
}
