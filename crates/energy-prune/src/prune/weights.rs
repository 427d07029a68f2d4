//! Moving a layer's weights between the network and host `f64` vectors, and snapshots of every
//! prunable layer's weights and biases.

use tensor_core::tensor::{DType, Device, Tensor, Var};
use tensor_core::{Bitmap, LayerInfo};

use crate::error::Result;

/// The nonzero pattern of a layer's current weights.
pub(super) fn mask_of(l: &LayerInfo) -> Result<Bitmap> {
    let w = host(l.weight.as_tensor())?;
    Ok(Bitmap::from_values(l.weight.dims(), &w)?)
}

/// A tensor's values, flattened, as `f64` on the host.
pub(super) fn host(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

fn to_var(var: &Var, values: &[f64]) -> Result<()> {
    let t = Tensor::from_slice(values, var.dims(), &Device::Cpu)?
        .to_dtype(var.dtype())?
        .to_device(var.device())?;
    var.set(&t)?;
    Ok(())
}

/// Overwrites a layer's weights and, when given and present, its bias.
pub(super) fn write(layer: &LayerInfo, weights: &[f64], bias: Option<&[f64]>) -> Result<()> {
    to_var(&layer.weight, weights)?;
    if let (Some(var), Some(b)) = (&layer.bias, bias) {
        to_var(var, b)?;
    }
    Ok(())
}

/// Every prunable layer's `(weight, bias)` tensors, copied.
pub(crate) type Snapshot = Vec<(Tensor, Option<Tensor>)>;

/// Copies every prunable layer's weights and biases.
pub(crate) fn snapshot(layers: &[LayerInfo]) -> Result<Snapshot> {
    layers
        .iter()
        .map(|l| {
            Ok((
                l.weight.as_tensor().copy()?,
                l.bias.as_ref().map(|b| b.as_tensor().copy()).transpose()?,
            ))
        })
        .collect()
}

/// Puts a [`snapshot`] back.
pub(super) fn load(layers: &[LayerInfo], s: &Snapshot) -> Result<()> {
    for (l, (w, b)) in layers.iter().zip(s) {
        l.weight.set(w)?;
        if let (Some(var), Some(b)) = (&l.bias, b) {
            var.set(b)?;
        }
    }
    Ok(())
}
