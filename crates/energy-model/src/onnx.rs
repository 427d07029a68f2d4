//! ONNX models in: the layer geometry and weight supports the energy models price, read from a
//! model file as `torch.onnx.export` (either exporter) and other ONNX writers produce it
//! (docs/energy-models.md E).
//!
//! The importer walks the graph in its (topological) order and infers every value's shape from
//! the model's input, so it needs no shape annotations in the file. Each `Conv`, and each `Gemm`
//! or `MatMul` whose second operand is a constant, becomes one priced layer, named after its
//! weight (`features.0.weight` → `features.0`, which is PyTorch's module path) or else after its
//! node. Its weight support is the exact nonzero pattern of the weight initializer, so a pruned
//! model is priced with its zeros; [`OnnxOptions::dense`] prices every weight as nonzero.
//!
//! The operators between the layers (activations, pooling, normalisation, concatenation,
//! residual additions, reshapes) carry no weights and are not priced by either model; they are
//! listed with their counts in [`OnnxNetwork::unpriced`]. An operator the importer does not know
//! is an error naming the node and the operator ([`Error::OnnxOperator`]), never a silent skip,
//! and so is a convolution the models cannot express (dilation, asymmetric padding). A model
//! without a single conv or FC layer is an error.
//!
//! ```no_run
//! use energy_model::onnx::{OnnxOptions, read};
//! let net = read("resnet18.onnx".as_ref(), &OnnxOptions::default())?;
//! for layer in &net.layers {
//!     println!("{} {:?}", layer.name, layer.geometry);
//! }
//! # Ok::<(), energy_model::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;
use tensor_core::LayerWorkload;

use crate::error::{Error, Result};

mod graph;
mod proto;
mod tensor;

/// How a model is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OnnxOptions {
    /// The input `[c, h, w]` of one sample, for models whose input dimensions are symbolic; when
    /// the file fixes them, they must agree. The batch dimension is always taken as 1.
    pub input: Option<[usize; 3]>,
    /// Price every weight as nonzero instead of reading the initializers' zeros (and accept
    /// weights that are graph inputs, as in a model exported without its parameters).
    pub dense: bool,
}

/// A model read from an ONNX file.
#[derive(Clone, Debug)]
pub struct OnnxNetwork {
    /// The graph's name (empty when the file gives none).
    pub graph: String,
    /// The writer named in the file (`pytorch 2.15.0`), empty when it names none.
    pub producer: String,
    /// The version of the default operator set the model declares.
    pub opset: i64,
    /// The input `[c, h, w]` of one sample.
    pub input: [usize; 3],
    /// The conv and FC layers in graph order, batch 1, with their weight supports.
    pub layers: Vec<LayerWorkload>,
    /// Operators without weights, by type, with how often each occurs: neither energy model
    /// prices them.
    pub unpriced: BTreeMap<String, usize>,
}

/// Reads the model at `path`; tensors stored outside it are read relative to its folder.
pub fn read(path: &Path, options: &OnnxOptions) -> Result<OnnxNetwork> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Onnx {
        file: file.clone(),
        at: "file".into(),
        reason: format!("cannot read it: {e}"),
    })?;
    parse(&bytes, &file, path.parent(), options)
}

/// Reads a model from its bytes. `file` names it in errors; `external_dir` is the folder that
/// tensors stored outside the model are relative to (`None`: such tensors are an error).
pub fn parse(
    bytes: &[u8],
    file: &str,
    external_dir: Option<&Path>,
    options: &OnnxOptions,
) -> Result<OnnxNetwork> {
    let fail = |at: &str, reason: String| Error::Onnx {
        file: file.to_string(),
        at: at.to_string(),
        reason,
    };
    if bytes.is_empty() {
        return Err(fail("file", "it is empty".into()));
    }
    let model = proto::ModelProto::decode(bytes)
        .map_err(|e| fail("file", format!("not an ONNX model ({e})")))?;
    let Some(graph) = model.graph.as_ref() else {
        return Err(fail("file", "the model has no graph".into()));
    };
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| fail("file", "the model imports no default operator set".into()))?;
    let walked = graph::walk(
        graph,
        &graph::Context {
            file,
            external_dir,
            options,
        },
    )?;
    if walked.layers.is_empty() {
        return Err(fail(
            "graph",
            "no Conv, Gemm or MatMul layer with constant weights: nothing to price".into(),
        ));
    }
    let producer = [
        model.producer_name.as_str(),
        model.producer_version.as_str(),
    ]
    .iter()
    .filter(|s| !s.is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join(" ");
    Ok(OnnxNetwork {
        graph: graph.name.clone(),
        producer,
        opset,
        input: walked.input,
        layers: walked.layers,
        unpriced: walked.unpriced,
    })
}

#[cfg(test)]
mod tests;
