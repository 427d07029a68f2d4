//! PyTorch weights in: torchvision-named state dicts (`tests/fixtures/torch/`, written by
//! `make_fixtures.py` with closed-form parameters) loaded into the zoo's models give PyTorch's
//! evaluation-mode logits on the fixtures' closed-form input.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cnn_zoo::Arch;
use flate2::read::GzDecoder;
use tensor_core::{DType, Device, Network, Tensor, VarBuilder, VarMap};

/// Allowed max |zoo − PyTorch| over the logits, relative to max |PyTorch|: f32 summation order
/// differs, the architectures must not.
const TOLERANCE: f64 = 1e-4;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/torch")
}

/// A scratch directory of this test process for test `test` (tests run in parallel and
/// remove what they decompressed).
fn scratch(test: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("it-torch-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Decompresses fixture `name` (`<file>.gz`) into the scratch directory of `test`, streaming
/// (AlexNet's state dict is 244 MB).
fn gunzip(test: &str, name: &str) -> Result<PathBuf> {
    let src = fixture_dir().join(name);
    let dst = scratch(test)?.join(name.trim_end_matches(".gz"));
    let mut reader =
        GzDecoder::new(File::open(&src).with_context(|| format!("cannot open {}", src.display()))?);
    let mut out = File::create(&dst).with_context(|| format!("cannot create {}", dst.display()))?;
    std::io::copy(&mut reader, &mut out)
        .with_context(|| format!("cannot decompress {}", src.display()))?;
    Ok(dst)
}

/// Removes the scratch directory holding `file`.
fn clean(file: &Path) -> Result<()> {
    let dir = file.parent().context("a scratch file has a directory")?;
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))
}

/// PyTorch's logits for `arch` (batch 2), flattened, and the input shape they came from.
fn torch_logits(arch: &str) -> Result<(Vec<usize>, Vec<f32>)> {
    let path = fixture_dir().join("fixtures.json");
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
    )?;
    let model = &json["models"][arch];
    let shape = serde_json::from_value(model["input_shape"].clone())?;
    let rows: Vec<Vec<f32>> = serde_json::from_value(model["logits"].clone())?;
    Ok((shape, rows.concat()))
}

/// The fixtures' input: `x[i] = ((37 i) mod 101) / 50 − 1`, row-major over `[2, c, h, w]`.
fn closed_form_input(shape: &[usize]) -> Result<Tensor> {
    let dims = [&[2], shape].concat();
    let n: usize = dims.iter().product();
    let xs: Vec<f32> = (0..n)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    Ok(Tensor::from_vec(xs, dims, &Device::Cpu)?)
}

/// `arch` built with its reference classes and channels, its variables then read from `file`.
fn loaded(arch: Arch, file: &Path) -> Result<Box<dyn Network>> {
    // Built from a plain variable map: the initial values are overwritten, so candle's
    // unseeded (and faster) initialisers do.
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
    let net = cnn_zoo::build(arch, arch.default_classes(), arch.input_shape()[0], vb)?;
    cnn_zoo::load_state_dict(file, &vars)?;
    Ok(net)
}

/// Evaluation-mode logits of `net` on the closed-form input of `shape`, flattened.
fn zoo_logits(net: &dyn Network, shape: &[usize]) -> Result<Vec<f32>> {
    let xs = closed_form_input(shape)?;
    Ok(net.forward_t(&xs, false)?.flatten_all()?.to_vec1::<f32>()?)
}

/// max |zoo − torch| / max |torch|.
fn relative_difference(zoo: &[f32], torch: &[f32]) -> f64 {
    let diff = zoo
        .iter()
        .zip(torch)
        .map(|(a, b)| f64::from((a - b).abs()))
        .fold(0.0, f64::max);
    let scale = torch.iter().map(|b| f64::from(b.abs())).fold(0.0, f64::max);
    diff / scale
}

/// Loads `<arch>.safetensors.gz` into the zoo's `arch` and compares logits with PyTorch's.
fn matches_torch(arch: Arch) -> Result<()> {
    let file = gunzip(arch.name(), &format!("{arch}.safetensors.gz"))?;
    let (shape, torch) = torch_logits(arch.name())?;
    assert_eq!(shape, arch.input_shape(), "{arch}: fixture input shape");
    let net = loaded(arch, &file)?;
    clean(&file)?;
    let zoo = zoo_logits(net.as_ref(), &shape)?;
    assert_eq!(zoo.len(), torch.len(), "{arch}: logit count");
    let rel = relative_difference(&zoo, &torch);
    assert!(
        rel <= TOLERANCE,
        "{arch}: max |zoo − torch| is {rel:.3e} of max |torch|"
    );
    Ok(())
}

#[test]
fn torchvision_alexnet_gives_torch_logits() -> Result<()> {
    matches_torch(Arch::Alexnet)
}

#[test]
fn torchvision_squeezenet1_0_gives_torch_logits() -> Result<()> {
    matches_torch(Arch::Squeezenet1_0)
}

/// The fixture's batch-norm variances (4 to 6) keep each conv-BN pair's gain below 1; with
/// variances near 1 its 52 pairs amplify f32 rounding to a few percent of the logits, in
/// PyTorch as here.
#[test]
fn torchvision_mobilenet_v2_gives_torch_logits() -> Result<()> {
    matches_torch(Arch::MobilenetV2)
}

/// Batch-norm running statistics come from the file (`num_batches_tracked` is skipped) and
/// the evaluation-mode forward pass uses them.
#[test]
fn torchvision_mobilenet_v2_loads_running_statistics() -> Result<()> {
    let file = gunzip("running-stats", "mobilenet_v2.safetensors.gz")?;
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
    let net = cnn_zoo::build(Arch::MobilenetV2, 1000, 3, vb)?;
    let before = zoo_logits(net.as_ref(), &[3, 224, 224])?;
    cnn_zoo::load_state_dict(&file, &vars)?;
    let stored = tensor_core::tensor::candle::safetensors::load(&file, &Device::Cpu)?;
    clean(&file)?;
    let held = vars
        .data()
        .lock()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .clone();
    let mut statistics = 0;
    for (name, t) in &stored {
        if name.ends_with("num_batches_tracked") {
            assert!(!held.contains_key(name), "{name}");
            continue;
        }
        let var = held
            .get(name)
            .with_context(|| format!("no variable {name}"))?;
        let same = (var.as_tensor() - t)?.abs()?.flatten_all()?.max(0)?;
        assert_eq!(same.to_scalar::<f32>()?, 0.0, "{name}");
        statistics += usize::from(name.ends_with("running_mean") || name.ends_with("running_var"));
    }
    assert_eq!(statistics, 2 * 52, "two statistics per batch norm");
    let after = zoo_logits(net.as_ref(), &[3, 224, 224])?;
    assert!(after.iter().all(|v| v.is_finite()));
    assert_ne!(after, before);
    Ok(())
}

#[test]
fn reference_lenet5_gives_torch_logits() -> Result<()> {
    matches_torch(Arch::Lenet5)
}

/// `torch.save(model.state_dict())` reads through candle's pickle reader to the same weights.
#[test]
fn lenet5_pth_and_safetensors_give_identical_logits() -> Result<()> {
    let (shape, _) = torch_logits("lenet5")?;
    let pth = gunzip("pth", "lenet5.pth.gz")?;
    let st = gunzip("pth", "lenet5.safetensors.gz")?;
    let from_pth = zoo_logits(loaded(Arch::Lenet5, &pth)?.as_ref(), &shape)?;
    let from_st = zoo_logits(loaded(Arch::Lenet5, &st)?.as_ref(), &shape)?;
    assert_eq!(from_pth, from_st);
    clean(&pth)?;
    Ok(())
}

/// Weights of another architecture fail naming the file and a tensor, before any forward pass.
#[test]
fn another_architectures_weights_are_refused() -> Result<()> {
    let file = gunzip("another-arch", "mobilenet_v2.safetensors.gz")?;
    let Err(err) = loaded(Arch::Googlenet, &file) else {
        panic!("MobileNetV2 weights loaded into GoogLeNet")
    };
    clean(&file)?;
    let err = err
        .downcast::<tensor_core::Error>()
        .context("a typed error")?;
    let tensor_core::Error::MissingTensor {
        file: named,
        tensor,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((named, tensor.as_str()), (&file, "conv1.bias"));
    assert!(
        err.to_string().contains("mobilenet_v2.safetensors"),
        "{err}"
    );
    Ok(())
}
