//! Trainable input masks for conv layers (`docs/sparse-projection.md` §6).
//!
//! Every conv layer gets a real-valued mask over its input `c × h × w` (no batch dimension),
//! initialised to 1; the forward pass computes `conv(x ⊙ M)` through the network's pre-tap. Masks
//! make input sparsity static, so the energy bound holds for every input. They are kept in
//! `[0, 1]` after each step, projected to a global L0 budget (plain top-k by magnitude across all
//! masks), and rounded to `{0, 1}` at the end of an M-phase.
//!
//! Rounding rule: an entry `≥ 0.5` becomes 1, below becomes 0. The reference rounds half to even
//! (0.5 → 0); keeping the half-way entries costs a little energy, which the following W-phase
//! pays for out of the weight budget, and keeps more signal.

use tensor_core::tensor::{DType, Device, Tensor, Var};
use tensor_core::{Bitmap, LayerId, LayerInfo, LayerKind, Support, Taps};

use crate::error::Result;
use crate::projection::top_k_magnitude;

/// One mask per conv layer (FC layers have none).
#[derive(Debug)]
pub struct InputMasks {
    masks: Vec<Option<Var>>,
}

impl InputMasks {
    /// Masks of ones for every conv layer of `layers`, in `F32` on `device`.
    pub fn ones(layers: &[LayerInfo], device: &Device) -> Result<Self> {
        let masks = layers
            .iter()
            .map(|l| match l.kind {
                LayerKind::Conv => {
                    let g = &l.geometry;
                    let t =
                        Tensor::ones((g.in_channels(), g.in_h(), g.in_w()), DType::F32, device)?;
                    Ok(Some(Var::from_tensor(&t)?))
                }
                LayerKind::Fc => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { masks })
    }

    /// The trainable variables, for the mask optimiser.
    pub fn vars(&self) -> Vec<Var> {
        self.masks.iter().flatten().cloned().collect()
    }

    /// The mask of layer `id`, if it has one.
    pub fn get(&self, id: LayerId) -> Option<&Var> {
        self.masks.get(id.0).and_then(Option::as_ref)
    }

    /// Total number of mask entries.
    pub fn len(&self) -> usize {
        self.masks.iter().flatten().map(|m| m.elem_count()).sum()
    }

    /// True when the network has no conv layer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nonzero entries over all masks.
    pub fn nonzero(&self) -> Result<usize> {
        let mut n = 0;
        for m in self.masks.iter().flatten() {
            n += host(m)?.iter().filter(|v| **v != 0.0).count();
        }
        Ok(n)
    }

    /// Clamps every mask to `[0, 1]` in place (after each optimiser step).
    pub fn clamp_unit(&self) -> Result<()> {
        for m in self.masks.iter().flatten() {
            m.set(&m.as_tensor().clamp(0f32, 1f32)?)?;
        }
        Ok(())
    }

    /// Global L0 projection: keeps the `⌊density·N⌋` entries of largest magnitude over the
    /// concatenation of all masks (ties by position), zeroing the rest. Returns the kept count.
    pub fn project(&self, density: f64) -> Result<usize> {
        let mut flat = Vec::with_capacity(self.len());
        for m in self.masks.iter().flatten() {
            flat.extend(host(m)?);
        }
        let k = (density * flat.len() as f64).floor() as usize;
        let kept = top_k_magnitude(&mut flat, k, "input masks")?;
        self.write_back(&flat)?;
        Ok(kept)
    }

    /// Rounds every entry to `{0, 1}` (`≥ 0.5` keeps).
    pub fn round(&self) -> Result<()> {
        for m in self.masks.iter().flatten() {
            m.set(&m.as_tensor().ge(0.5f32)?.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }

    /// The input support each layer sees: a bitmap for masked conv layers, dense otherwise.
    pub fn supports(&self) -> Result<Vec<Support>> {
        self.masks
            .iter()
            .map(|m| match m {
                Some(m) => Ok(Support::Bitmap(Bitmap::from_values(m.dims(), &host(m)?)?)),
                None => Ok(Support::Dense),
            })
            .collect()
    }

    /// Host copies of every mask (`None` for FC layers), for checkpoints.
    pub fn tensors(&self) -> Vec<Option<Tensor>> {
        self.masks
            .iter()
            .map(|m| m.as_ref().map(|v| v.as_tensor().clone()))
            .collect()
    }

    fn write_back(&self, flat: &[f32]) -> Result<()> {
        let mut offset = 0;
        for m in self.masks.iter().flatten() {
            let n = m.elem_count();
            let t = Tensor::from_slice(&flat[offset..offset + n], m.dims(), m.device())?;
            m.set(&t)?;
            offset += n;
        }
        Ok(())
    }
}

fn host(v: &Var) -> Result<Vec<f32>> {
    Ok(v.as_tensor().flatten_all()?.to_vec1::<f32>()?)
}

/// Applies the masks through the network's pre-tap.
impl Taps for &InputMasks {
    fn pre(&mut self, id: LayerId, input: &Tensor) -> tensor_core::Result<Option<Tensor>> {
        match self.get(id) {
            Some(m) => Ok(Some(input.broadcast_mul(m.as_tensor())?)),
            None => Ok(None),
        }
    }
}
