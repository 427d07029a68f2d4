//! A residual block of the backbone under a gate: run for every sample (no gate), masked
//! (blended with the shortcut) or gathered (run on the samples whose gate is on).

use tensor_core::tensor::Tensor;
use tensor_core::{ResidualNetwork, Taps};

use super::{ForwardOptions, SkipExecution};
use crate::error::Result;

/// `m·Block(x) + (1 − m)·shortcut(x)` for block `k` of `net`; `m = None` runs the block for
/// every sample. `hard` holds the per-sample decisions behind `m`.
pub(super) fn forward(
    net: &dyn ResidualNetwork,
    k: usize,
    xs: &Tensor,
    (m, hard): (Option<&Tensor>, Option<&[f32]>),
    opts: &ForwardOptions,
    taps: &mut dyn Taps,
) -> Result<Tensor> {
    let train = opts.train;
    // Taps see the residual branch's convs, then the shortcut conv, in the plain network's
    // order; the shortcut always runs on the whole batch (its batch norm sees every sample).
    let (Some(m), Some(hard)) = (m, hard) else {
        let r = net.residual(k, xs, train, taps)?;
        let s = net.shortcut(k, xs, train, taps)?;
        return Ok(net.merge(&r, &s)?);
    };
    let b = hard.len();
    let active: Vec<u32> = (0..b as u32).filter(|&i| hard[i as usize] > 0.5).collect();
    let blend = |full: &Tensor, short: &Tensor, m: &Tensor| -> Result<Tensor> {
        let m = m.reshape((m.dim(0)?, 1, 1, 1))?;
        let on = full.broadcast_mul(&m)?;
        let off = short.broadcast_mul(&m.affine(-1.0, 1.0)?)?;
        Ok((on + off)?)
    };
    if opts.skip == SkipExecution::Masked || active.len() == b {
        let r = net.residual(k, xs, train, taps)?;
        let s = net.shortcut(k, xs, train, taps)?;
        let full = net.merge(&r, &s)?;
        return blend(&full, &s, m);
    }
    if active.is_empty() {
        return Ok(net.shortcut(k, xs, train, taps)?);
    }
    let ia = Tensor::new(active.as_slice(), xs.device())?;
    // Index-select needs contiguous storage; a training-mode batch norm (a projection shortcut,
    // or a previous block skipped for every sample) returns a transposed view.
    let xs = xs.contiguous()?;
    let r = net.residual(k, &xs.index_select(&ia, 0)?, train, taps)?;
    let s = net.shortcut(k, &xs, train, taps)?.contiguous()?;
    let sa = s.index_select(&ia, 0)?;
    let full = net.merge(&r, &sa)?;
    // The shortcut plus `m·(Block − shortcut)` added into the active rows: `Block` where the gate
    // is on (m = 1), the shortcut elsewhere, and the gates keep their straight-through gradient.
    // One scatter instead of blending, concatenating and reordering the batch.
    let m = m.index_select(&ia, 0)?;
    let delta = (full - &sa)?.broadcast_mul(&m.reshape((active.len(), 1, 1, 1))?)?;
    Ok(s.index_add(&ia, &delta, 0)?)
}
