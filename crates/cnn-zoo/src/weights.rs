//! Weights in from PyTorch: a `state_dict` saved as safetensors or by `torch.save` (`.pth`),
//! copied by name into the variables of a built model.
//!
//! The zoo's parameter names are the reference models' `state_dict` keys (torchvision's for
//! AlexNet, SqueezeNet 1.0 and MobileNetV2; the ICLR'19 reference's for LeNet-5), batch-norm
//! running statistics included, so a file written by
//! `safetensors.torch.save_file(model.state_dict(), path)` or `torch.save(model.state_dict(),
//! path)` loads without renaming.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::sync::PoisonError;

use tensor_core::tensor::candle;
use tensor_core::{DType, Device, Error, Result, Tensor, Var, VarMap};

/// The leaf name of batch norm's update counter, which PyTorch saves and the zoo does not keep
/// (its momentum is fixed).
const IGNORED_LEAF: &str = "num_batches_tracked";

/// Copies the PyTorch `state_dict` in `path` into `vars`, the variables a zoo model was built
/// from (`SeededInit::var_map`, or the `VarMap` behind its `VarBuilder`).
///
/// The format is read from the content: a zip archive is a `torch.save` file (PyTorch ≥ 1.6,
/// read with candle's pickle reader), anything else must be safetensors. The match is strict:
/// every variable must be in the file with the same shape ([`Error::MissingTensor`],
/// [`Error::TensorShape`]), and every tensor of the file must be a variable
/// ([`Error::UnexpectedTensor`]) except batch norm's `num_batches_tracked` counters. Values are
/// converted to each variable's dtype (f16, bf16 and f64 files load into f32 models) and must
/// be finite ([`Error::NonFinite`] names the tensor). Every check runs before the first
/// variable changes, so on error the model keeps its previous weights.
///
/// ```no_run
/// use std::path::Path;
/// use cnn_zoo::{Arch, build, load_state_dict};
/// use tensor_core::{DType, Device, SeededInit};
///
/// let init = SeededInit::new(0);
/// let net = build(Arch::MobilenetV2, 1000, 3, init.var_builder(DType::F32, &Device::Cpu))?;
/// load_state_dict(Path::new("mobilenet_v2.safetensors"), init.var_map())?;
/// # Ok::<(), tensor_core::Error>(())
/// ```
pub fn load_state_dict(path: &Path, vars: &VarMap) -> Result<()> {
    let unreadable = |reason: String| Error::WeightFile {
        file: path.to_path_buf(),
        reason,
    };
    let mut magic = Vec::with_capacity(4);
    std::fs::File::open(path)
        .and_then(|f| f.take(4).read_to_end(&mut magic))
        .map_err(|e| unreadable(e.to_string()))?;
    if magic == b"PK\x03\x04" {
        // candle's pickle reader opens the archive itself, once per tensor.
        let pth = candle::pickle::PthTensors::new(path, None)
            .map_err(|e| unreadable(format!("not a readable torch.save archive: {e}")))?;
        let entries = pth
            .tensor_infos()
            .iter()
            .map(|(name, info)| (name.clone(), info.layout.dims().to_vec()))
            .collect();
        copy_into(path, entries, vars, |name| {
            pth.get(name)?
                .ok_or_else(|| candle::Error::Msg(format!("no tensor `{name}` in the archive")))
        })
    } else if magic.first() == Some(&0x80) {
        // A pickle protocol marker: torch.save's format before PyTorch 1.6, which candle lacks.
        Err(unreadable(
            "a torch.save file in the legacy (pre-1.6, non-zip) format; save it again with a \
             recent PyTorch or as safetensors"
                .into(),
        ))
    } else {
        let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
        let st = candle::safetensors::SliceSafetensors::new(&bytes).map_err(|e| {
            unreadable(format!("neither safetensors nor a torch.save archive: {e}"))
        })?;
        let entries = st
            .tensors()
            .into_iter()
            .map(|(name, view)| (name, view.shape().to_vec()))
            .collect();
        copy_into(path, entries, vars, |name| st.load(name, &Device::Cpu))
    }
}

/// Checks the file's `entries` (name, shape) against `vars`, then copies every variable's tensor
/// from `load`.
fn copy_into(
    file: &Path,
    entries: Vec<(String, Vec<usize>)>,
    vars: &VarMap,
    load: impl Fn(&str) -> candle::Result<Tensor>,
) -> Result<()> {
    if entries.is_empty() {
        return Err(Error::WeightFile {
            file: file.to_path_buf(),
            reason: "it holds no tensors (expected a state_dict: a flat map from parameter \
                     names to tensors)"
                .into(),
        });
    }
    let mut vars: Vec<(String, Var)> = vars
        .data()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(name, var)| (name.clone(), var.clone()))
        .collect();
    // Sorted, so the tensor an error names does not depend on hash order.
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let shapes: HashMap<&str, &[usize]> = entries
        .iter()
        .map(|(name, dims)| (name.as_str(), dims.as_slice()))
        .collect();
    for (name, var) in &vars {
        match shapes.get(name.as_str()) {
            None => {
                return Err(Error::MissingTensor {
                    file: file.to_path_buf(),
                    tensor: name.clone(),
                });
            }
            Some(&got) if got != var.dims() => {
                return Err(Error::TensorShape {
                    file: file.to_path_buf(),
                    tensor: name.clone(),
                    expected: var.dims().to_vec(),
                    got: got.to_vec(),
                });
            }
            Some(_) => {}
        }
    }
    let known: HashSet<&str> = vars.iter().map(|(name, _)| name.as_str()).collect();
    let mut unexpected: Vec<&str> = entries
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !known.contains(name) && name.rsplit('.').next() != Some(IGNORED_LEAF))
        .collect();
    unexpected.sort_unstable();
    if let Some(name) = unexpected.first() {
        return Err(Error::UnexpectedTensor {
            file: file.to_path_buf(),
            tensor: (*name).to_string(),
        });
    }
    // Values are checked in a first pass and read again in the second, so a bad tensor late in
    // the file leaves the model untouched without holding a second copy of all its weights.
    for (name, var) in &vars {
        read(file, name, var, &load)?;
    }
    for (name, var) in &vars {
        var.set(&read(file, name, var, &load)?)?;
    }
    Ok(())
}

/// Tensor `name` of the file in `var`'s dtype and on its device, finite.
fn read(
    file: &Path,
    name: &str,
    var: &Var,
    load: &impl Fn(&str) -> candle::Result<Tensor>,
) -> Result<Tensor> {
    let t = load(name)
        .and_then(|t| t.to_dtype(var.dtype()))
        .map_err(|e| Error::WeightFile {
            file: file.to_path_buf(),
            reason: format!("tensor `{name}`: {e}"),
        })?;
    if var.dtype().is_float() && !all_finite(&t)? {
        return Err(Error::NonFinite {
            what: format!("tensor `{name}` of {}", file.display()),
        });
    }
    Ok(t.to_device(var.device())?)
}

/// Whether every value of a float tensor is finite: `0·x` is 0 for finite `x` and NaN for NaN
/// and ±∞, so the sum is 0 exactly when all are finite, and no finite value can overflow it.
fn all_finite(t: &Tensor) -> Result<bool> {
    let sum = t
        .affine(0.0, 0.0)?
        .sum_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?;
    Ok(sum == 0.0)
}
