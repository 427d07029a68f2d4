//! The training vocabulary every method shares: where batches come from ([`BatchSource`]) and the
//! one evaluation ([`evaluate`]: top-1 and top-5 accuracy and mean cross-entropy). The stop and divergence
//! contract is in [`Error::Interrupted`] and [`Error::Diverged`]: a library trainer returns one
//! of them, never a partial result.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor, nn};

/// Batches of `(images [b, c, h, w], labels [b] u32)` of one split. The source owns shuffling
/// and augmentation and returns the same batch for the same `(epoch, index)` (seeded), so runs
/// replay exactly; epochs count across a run's phases.
pub trait BatchSource {
    /// Batches in one epoch.
    fn batches_per_epoch(&self) -> usize;

    /// Batch `index` of epoch `epoch`.
    fn batch(&mut self, epoch: usize, index: usize) -> Result<(Tensor, Tensor)>;
}

/// Top-1 and top-5 accuracy and mean cross-entropy over a split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Top-1 accuracy in `[0, 1]`.
    pub accuracy: f64,
    /// Top-5 accuracy in `[0, 1]`: the share of samples with fewer than five classes scored
    /// strictly above their own (1 with five classes or fewer). ImageNet's usual measure.
    pub top5: f64,
    /// Mean cross-entropy per sample.
    pub loss: f64,
    /// Samples evaluated.
    pub samples: usize,
}

/// Evaluates every batch of epoch 0 of `source`: `logits` maps a batch of images to
/// `[b, classes]` logits (the caller picks the forward pass: evaluation mode, masks, gates).
/// A source without samples is [`Error::EmptyEvaluation`] naming `what`.
pub fn evaluate(
    what: &str,
    source: &mut dyn BatchSource,
    mut logits: impl FnMut(&Tensor) -> Result<Tensor>,
) -> Result<Evaluation> {
    let (mut correct, mut correct5, mut loss_sum, mut samples) = (0u64, 0u64, 0.0f64, 0usize);
    for index in 0..source.batches_per_epoch() {
        let (xs, ys) = source.batch(0, index)?;
        let b = xs.dim(0)?;
        if b == 0 {
            continue;
        }
        let out = logits(&xs)?;
        let ce = nn::loss::cross_entropy(&out, &ys)?.to_scalar::<f32>()?;
        loss_sum += f64::from(ce) * b as f64;
        let predicted = out.argmax(1)?;
        let hits = predicted
            .eq(&ys.to_dtype(predicted.dtype())?)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()?;
        correct += hits as u64;
        correct5 += top_k_hits(&out, &ys, 5)?;
        samples += b;
    }
    if samples == 0 {
        return Err(Error::EmptyEvaluation { what: what.into() });
    }
    Ok(Evaluation {
        accuracy: correct as f64 / samples as f64,
        top5: correct5 as f64 / samples as f64,
        loss: loss_sum / samples as f64,
        samples,
    })
}

/// Samples of `logits` (`[b, classes]`) whose label (`ys`, `[b]`) has fewer than `k` classes
/// scored strictly above it.
fn top_k_hits(logits: &Tensor, ys: &Tensor, k: usize) -> Result<u64> {
    let own = logits.gather(&ys.to_dtype(DType::U32)?.unsqueeze(1)?, 1)?;
    let above = logits.broadcast_gt(&own)?.to_dtype(DType::F32)?.sum(1)?;
    let hits = above
        .lt(k as f64)?
        .to_dtype(DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()?;
    Ok(hits as u64)
}
