//! The graph walk: shape inference from the model's input through every node, and the conv and
//! FC layers with their weight supports.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use tensor_core::{
    Bitmap, ConvParams, LayerGeometry, LayerId, LayerSparsity, LayerWorkload, Precision, Support,
};

use super::OnnxOptions;
use super::proto::{AttributeProto, GraphProto, NodeProto, TensorProto};
use super::tensor;
use crate::error::{Error, Result};

pub(super) struct Context<'a> {
    pub file: &'a str,
    pub external_dir: Option<&'a Path>,
    pub options: &'a OnnxOptions,
}

pub(super) struct Walked {
    pub input: [usize; 3],
    pub layers: Vec<LayerWorkload>,
    pub unpriced: BTreeMap<String, usize>,
}

/// What is known of a value: its shape (batch 1), the `[c, h, w]` it was flattened from (an FC
/// layer is priced over its producer's feature map, as the zoo does), and its contents when it
/// is a constant.
#[derive(Clone, Debug, Default)]
struct Value<'g> {
    shape: Vec<usize>,
    unflattened: Option<[usize; 3]>,
    constant: Option<Constant<'g>>,
}

#[derive(Clone, Debug)]
enum Constant<'g> {
    Tensor(&'g TensorProto),
    Ints(Vec<i64>),
    /// A float given as a `Constant` attribute (a clip bound, a scale): never a weight.
    Floats,
}

/// Operators without weights whose output has their (first) input's shape.
const SAME_SHAPE: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Elu",
    "Selu",
    "Gelu",
    "Softplus",
    "Mish",
    "Erf",
    "Exp",
    "Log",
    "Neg",
    "Abs",
    "Sqrt",
    "Reciprocal",
    "Softmax",
    "LogSoftmax",
    "Dropout",
    "Identity",
    "BatchNormalization",
    "InstanceNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "LRN",
    "Cast",
];

/// Elementwise operators with numpy broadcasting.
const BROADCAST: &[&str] = &[
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean",
];

struct Walker<'g, 'c> {
    cx: &'c Context<'c>,
    values: HashMap<&'g str, Value<'g>>,
    layers: Vec<LayerWorkload>,
    unpriced: BTreeMap<String, usize>,
}

pub(super) fn walk(graph: &GraphProto, cx: &Context<'_>) -> Result<Walked> {
    let mut w = Walker {
        cx,
        values: HashMap::new(),
        layers: Vec::new(),
        unpriced: BTreeMap::new(),
    };
    for t in &graph.initializer {
        let shape = tensor::dims(t).map_err(|r| w.fail(&format!("initializer `{}`", t.name), r))?;
        w.values.insert(
            &t.name,
            Value {
                shape,
                unflattened: None,
                constant: Some(Constant::Tensor(t)),
            },
        );
    }
    let input = w.inputs(graph)?;
    for (index, node) in graph.node.iter().enumerate() {
        w.node(index, node)?;
    }
    Ok(Walked {
        input,
        layers: w.layers,
        unpriced: w.unpriced,
    })
}

fn node_label(index: usize, node: &NodeProto) -> String {
    let name = if node.name.is_empty() {
        match node.output.first() {
            Some(out) => format!("#{index} (output `{out}`)"),
            None => format!("#{index}"),
        }
    } else {
        format!("`{}`", node.name)
    };
    format!("node {name} ({})", node.op_type)
}

impl<'g> Walker<'g, '_> {
    fn fail(&self, at: &str, reason: impl Into<String>) -> Error {
        Error::Onnx {
            file: self.cx.file.to_string(),
            at: at.to_string(),
            reason: reason.into(),
        }
    }

    /// Declares the graph inputs that are not initializers; exactly one must be a 4-D image batch.
    /// Further inputs with fixed shapes (weights exported as inputs) are allowed when pricing
    /// dense.
    fn inputs(&mut self, graph: &'g GraphProto) -> Result<[usize; 3]> {
        let mut image = None;
        for vi in &graph.input {
            if self.values.contains_key(vi.name.as_str()) {
                continue;
            }
            let at = format!("graph input `{}`", vi.name);
            let dims: Vec<Option<usize>> = vi
                .r#type
                .as_ref()
                .and_then(|t| t.tensor_type.as_ref())
                .and_then(|t| t.shape.as_ref())
                .map(|s| {
                    s.dim
                        .iter()
                        .map(|d| d.dim_value.and_then(|v| usize::try_from(v).ok()))
                        .collect()
                })
                .ok_or_else(|| self.fail(&at, "is not a tensor with a known rank"))?;
            if image.is_none() && dims.len() == 4 {
                let fixed = [dims[1], dims[2], dims[3]];
                let chw = match self.cx.options.input {
                    Some(given) => {
                        for (axis, (f, g)) in fixed.iter().zip(given).enumerate() {
                            if f.is_some_and(|f| f != g) {
                                return Err(self.fail(
                                    &at,
                                    format!(
                                        "dimension {} is {} in the file, the input shape given \
                                         says {g}",
                                        axis + 1,
                                        f.unwrap_or_default()
                                    ),
                                ));
                            }
                        }
                        given
                    }
                    None => match fixed {
                        [Some(c), Some(h), Some(w)] => [c, h, w],
                        _ => {
                            return Err(self.fail(
                                &at,
                                "its channel, height or width is symbolic: give the input shape",
                            ));
                        }
                    },
                };
                image = Some(chw);
                self.values.insert(
                    &vi.name,
                    Value {
                        shape: vec![1, chw[0], chw[1], chw[2]],
                        ..Value::default()
                    },
                );
            } else if let Some(shape) = dims.iter().copied().collect::<Option<Vec<usize>>>() {
                self.values.insert(
                    &vi.name,
                    Value {
                        shape,
                        ..Value::default()
                    },
                );
            } else {
                return Err(self.fail(
                    &at,
                    "a second input with symbolic dimensions: only models of one image input \
                     are priced",
                ));
            }
        }
        image.ok_or_else(|| {
            self.fail(
                "graph",
                "no 4-D input (batch, channels, height, width) to infer shapes from",
            )
        })
    }

    fn value(&self, at: &str, name: &str) -> Result<&Value<'g>> {
        self.values
            .get(name)
            .ok_or_else(|| self.fail(at, format!("input `{name}` is not defined before it")))
    }

    fn set(&mut self, node: &'g NodeProto, value: Value<'g>) {
        if let Some(out) = node.output.first() {
            self.values.insert(out, value);
        }
    }

    fn ints_of(&self, at: &str, name: &str) -> Result<Vec<i64>> {
        match &self.value(at, name)?.constant {
            Some(Constant::Ints(v)) => Ok(v.clone()),
            Some(Constant::Tensor(t)) => tensor::ints(t, self.cx.external_dir)
                .map_err(|r| self.fail(at, format!("`{name}`: {r}"))),
            Some(Constant::Floats) => {
                Err(self.fail(at, format!("`{name}` holds floats, not integers")))
            }
            None => Err(self.fail(
                at,
                format!("`{name}` is computed at run time; only constant shapes and axes are read"),
            )),
        }
    }

    fn node(&mut self, index: usize, node: &'g NodeProto) -> Result<()> {
        let at = node_label(index, node);
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(self.unsupported(node, &at));
        }
        let op = node.op_type.as_str();
        let first = || -> Result<&Value<'g>> {
            let name = node
                .input
                .first()
                .ok_or_else(|| self.fail(&at, "has no input"))?;
            self.value(&at, name)
        };
        if let Some(value) = self.fold_ints(node, &at)? {
            *self.unpriced.entry(node.op_type.clone()).or_default() += 1;
            self.set(node, value);
            return Ok(());
        }
        match op {
            "Conv" => return self.conv(node, &at),
            "Split" => return self.split(node, &at),
            "Gemm" | "MatMul" => return self.fc(node, &at),
            "Constant" => {
                let value = self.constant(node, &at)?;
                self.set(node, value);
                return Ok(());
            }
            _ => {}
        }
        let out = if SAME_SHAPE.contains(&op) {
            let v = first()?;
            Value {
                // Identity passes a constant on (an exporter's alias of a shared weight).
                constant: if op == "Identity" {
                    v.constant.clone()
                } else {
                    None
                },
                ..v.clone()
            }
        } else if BROADCAST.contains(&op) {
            self.broadcast(node, &at)?
        } else {
            match op {
                "MaxPool" | "AveragePool" | "LpPool" => self.pool(node, &at)?,
                "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => {
                    let s = &first()?.shape;
                    if s.len() != 4 {
                        return Err(self.fail(&at, format!("input of shape {s:?} is not 4-D")));
                    }
                    Value {
                        shape: vec![s[0], s[1], 1, 1],
                        ..Value::default()
                    }
                }
                "ReduceMean" | "ReduceMax" | "ReduceSum" => self.reduce(node, &at)?,
                "Flatten" => {
                    let v = first()?;
                    let axis =
                        normalise_axis(attr_int(node, "axis").unwrap_or(1), v.shape.len() + 1)
                            .map_err(|r| self.fail(&at, r))?;
                    let (a, b) = v.shape.split_at(axis.min(v.shape.len()));
                    Value {
                        shape: vec![
                            product(a).map_err(|r| self.fail(&at, r))?,
                            product(b).map_err(|r| self.fail(&at, r))?,
                        ],
                        unflattened: origin(v, axis == 1),
                        constant: None,
                    }
                }
                "Reshape" => self.reshape(node, &at)?,
                "Concat" => self.concat(node, &at)?,
                "Squeeze" | "Unsqueeze" => self.squeeze(node, &at)?,
                "Slice" => self.slice(node, &at)?,
                "Gather" => {
                    let [d, i] =
                        [0, 1].map(|k| node.input.get(k).map(String::as_str).unwrap_or_default());
                    let (data, indices) = (&self.value(&at, d)?.shape, &self.value(&at, i)?.shape);
                    let axis = normalise_axis(attr_int(node, "axis").unwrap_or(0), data.len())
                        .map_err(|r| self.fail(&at, r))?;
                    let mut shape = data[..axis].to_vec();
                    shape.extend_from_slice(indices);
                    shape.extend_from_slice(&data[axis + 1..]);
                    Value {
                        shape,
                        ..Value::default()
                    }
                }
                "Transpose" => {
                    let s = first()?.shape.clone();
                    let perm: Vec<i64> = match attr(node, "perm") {
                        Some(a) => a.ints.clone(),
                        None => (0..s.len() as i64).rev().collect(),
                    };
                    let shape = perm
                        .iter()
                        .map(|&p| usize::try_from(p).ok().and_then(|p| s.get(p).copied()))
                        .collect::<Option<Vec<_>>>()
                        .filter(|v| v.len() == s.len())
                        .ok_or_else(|| {
                            self.fail(&at, format!("perm {perm:?} does not permute {s:?}"))
                        })?;
                    Value {
                        shape,
                        ..Value::default()
                    }
                }
                _ => return Err(self.unsupported(node, &at)),
            }
        };
        *self.unpriced.entry(node.op_type.clone()).or_default() += 1;
        self.set(node, out);
        Ok(())
    }

    fn unsupported(&self, node: &NodeProto, at: &str) -> Error {
        Error::OnnxOperator {
            file: self.cx.file.to_string(),
            node: at.to_string(),
            op_type: if node.domain.is_empty() {
                node.op_type.clone()
            } else {
                format!("{}::{}", node.domain, node.op_type)
            },
        }
    }

    fn constant(&self, node: &'g NodeProto, at: &str) -> Result<Value<'g>> {
        let a = node
            .attribute
            .first()
            .ok_or_else(|| self.fail(at, "has no value"))?;
        let (shape, constant) = match a.name.as_str() {
            "value" => {
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| self.fail(at, "`value` holds no tensor"))?;
                let dims = tensor::dims(t).map_err(|r| self.fail(at, r))?;
                (dims, Constant::Tensor(t))
            }
            "value_ints" => (vec![a.ints.len()], Constant::Ints(a.ints.clone())),
            "value_int" => (vec![], Constant::Ints(vec![a.i])),
            "value_float" => (vec![], Constant::Floats),
            "value_floats" => (vec![a.floats.len()], Constant::Floats),
            other => {
                return Err(self.fail(at, format!("value kind `{other}` is not read")));
            }
        };
        Ok(Value {
            shape,
            unflattened: None,
            constant: Some(constant),
        })
    }

    /// The weight operand's shape and, unless pricing dense, its nonzero pattern.
    fn weight(&self, at: &str, name: &str) -> Result<(Vec<usize>, Option<Vec<bool>>)> {
        let v = self.value(at, name)?;
        if self.cx.options.dense {
            return Ok((v.shape.clone(), None));
        }
        match &v.constant {
            Some(Constant::Tensor(t)) => {
                let flags = tensor::nonzero(t, self.cx.external_dir)
                    .map_err(|r| self.fail(at, format!("weight `{name}`: {r}")))?;
                Ok((v.shape.clone(), Some(flags)))
            }
            _ => Err(self.fail(
                at,
                format!(
                    "weight `{name}` is not a constant of the model (exported without its \
                     parameters?); price it dense to read the geometry alone"
                ),
            )),
        }
    }

    fn push(
        &mut self,
        weight_name: &str,
        node: &NodeProto,
        geometry: LayerGeometry,
        bitmap: Option<Bitmap>,
    ) {
        let id = LayerId(self.layers.len());
        let name = match weight_name.strip_suffix(".weight") {
            Some(stem) => stem.to_string(),
            None if !node.name.is_empty() => node.name.clone(),
            None => format!("layer{}", id.0),
        };
        let mut sparsity = LayerSparsity::dense();
        if let Some(b) = bitmap {
            sparsity.weights = Support::Bitmap(b);
        }
        self.layers.push(LayerWorkload {
            id,
            name,
            geometry,
            sparsity,
            precision: Precision::default(),
        });
    }

    fn conv(&mut self, node: &'g NodeProto, at: &str) -> Result<()> {
        let [x, w] = [0, 1].map(|i| node.input.get(i).map(String::as_str).unwrap_or_default());
        let xs = self.value(at, x)?.shape.clone();
        let (ws, flags) = self.weight(at, w)?;
        let (&[n, c, h, wd], &[m, cg, kh, kw]) = (xs.as_slice(), ws.as_slice()) else {
            return Err(self.fail(
                at,
                format!("input {xs:?} and weight {ws:?} are not a 2-D convolution's"),
            ));
        };
        let groups = positive(attr_int(node, "group").unwrap_or(1))
            .ok_or_else(|| self.fail(at, "group is not positive"))?;
        if cg.checked_mul(groups) != Some(c) {
            return Err(self.fail(
                at,
                format!("weight {ws:?} with {groups} groups does not take {c} input channels"),
            ));
        }
        let pair = |name: &str| -> Result<(usize, usize)> {
            match attr(node, name).map(|a| a.ints.as_slice()) {
                None => Ok((1, 1)),
                Some(&[a, b]) => positive(a)
                    .zip(positive(b))
                    .ok_or_else(|| self.fail(at, format!("{name} {a}, {b} are not positive"))),
                Some(v) => Err(self.fail(at, format!("{name} {v:?} are not two numbers"))),
            }
        };
        let stride = pair("strides")?;
        let dilation = pair("dilations")?;
        if dilation != (1, 1) {
            return Err(self.fail(
                at,
                format!("dilation {dilation:?}: neither energy model prices a dilated convolution"),
            ));
        }
        if let Some(a) = attr(node, "kernel_shape")
            && a.ints != [kh as i64, kw as i64]
        {
            return Err(self.fail(
                at,
                format!("kernel_shape {:?} disagrees with the weight {ws:?}", a.ints),
            ));
        }
        let padding = self.padding(node, at, (h, wd), (kh, kw), stride)?;
        let params = ConvParams {
            kernel: (kh, kw),
            stride,
            padding,
            groups,
        };
        let geometry =
            LayerGeometry::conv([c, h, wd], m, params).map_err(|e| self.fail(at, e.to_string()))?;
        let bitmap = flags
            .map(|f| Bitmap::from_bools(&geometry.weight_shape(), &f))
            .transpose()
            .map_err(|e| self.fail(at, e.to_string()))?;
        let shape = vec![n, m, geometry.out_h(), geometry.out_w()];
        self.push(w, node, geometry, bitmap);
        self.set(
            node,
            Value {
                shape,
                ..Value::default()
            },
        );
        Ok(())
    }

    /// Symmetric padding `(rows, cols)` from `pads` or `auto_pad`.
    fn padding(
        &self,
        node: &NodeProto,
        at: &str,
        (h, w): (usize, usize),
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
    ) -> Result<(usize, usize)> {
        let auto = attr(node, "auto_pad")
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
            .unwrap_or_default();
        let pads: Vec<i64> = match auto.as_str() {
            "" | "NOTSET" => attr(node, "pads").map_or(vec![0; 4], |a| a.ints.clone()),
            "VALID" => vec![0; 4],
            "SAME_UPPER" | "SAME_LOWER" => {
                // Output ⌈size/stride⌉; the total padding splits evenly or not at all here.
                let total = |size: usize, k: usize, s: usize| {
                    (size.div_ceil(s).saturating_sub(1))
                        .checked_mul(s)
                        .and_then(|v| v.checked_add(k))
                        .and_then(|v| i64::try_from(v.saturating_sub(size)).ok())
                        .ok_or_else(|| self.fail(at, "automatic padding overflows"))
                };
                let (th, tw) = (total(h, kh, sh)?, total(w, kw, sw)?);
                vec![th / 2, tw / 2, th - th / 2, tw - tw / 2]
            }
            other => return Err(self.fail(at, format!("auto_pad `{other}` is not known"))),
        };
        let &[top, left, bottom, right] = pads.as_slice() else {
            return Err(self.fail(at, format!("pads {pads:?} are not four numbers")));
        };
        if top != bottom || left != right || [top, left].iter().any(|&p| p < 0) {
            return Err(self.fail(
                at,
                format!(
                    "padding top {top}, left {left}, bottom {bottom}, right {right}: the energy \
                     models price equal, non-negative padding on opposite sides only"
                ),
            ));
        }
        Ok((top as usize, left as usize))
    }

    fn fc(&mut self, node: &'g NodeProto, at: &str) -> Result<()> {
        let [a, b] = [0, 1].map(|i| node.input.get(i).map(String::as_str).unwrap_or_default());
        let av = self.value(at, a)?.clone();
        if self.value(at, b)?.constant.is_none() && !self.cx.options.dense {
            return Err(self.fail(
                at,
                format!(
                    "its second operand `{b}` is not a constant weight: a product of two \
                     activations is not a layer the energy models price"
                ),
            ));
        }
        let (bs, flags) = self.weight(at, b)?;
        if node.op_type == "Gemm" && attr_int(node, "transA").unwrap_or(0) != 0 {
            return Err(self.fail(at, "transA = 1 is not a layer over a batch of inputs"));
        }
        // Gemm with transB keeps PyTorch's [out, in]; MatMul and plain Gemm hold [in, out].
        let trans_b = node.op_type == "Gemm" && attr_int(node, "transB").unwrap_or(0) != 0;
        if node.op_type == "MatMul" && (3..=4).contains(&av.shape.len()) {
            return self.pointwise(node, at, &av.shape, &bs, flags);
        }
        let (&[n, k], &[b0, b1]) = (av.shape.as_slice(), bs.as_slice()) else {
            return Err(self.fail(
                at,
                format!(
                    "input {:?} and weight {bs:?} are not a matrix product over a batch of \
                     vectors",
                    av.shape
                ),
            ));
        };
        let (out, inner) = if trans_b { (b0, b1) } else { (b1, b0) };
        if inner != k {
            return Err(self.fail(
                at,
                format!("input {:?} does not match weight {bs:?}", av.shape),
            ));
        }
        let [c, h, w] = av
            .unflattened
            .filter(|u| product(u).is_ok_and(|n| n == k))
            .unwrap_or([k, 1, 1]);
        let geometry = LayerGeometry::fc(c, h, w, out).map_err(|e| self.fail(at, e.to_string()))?;
        let bitmap = flags
            .map(|f| {
                let f = if trans_b {
                    f
                } else {
                    transpose(&f, inner, out)
                };
                Bitmap::from_bools(&[out, k], &f)
            })
            .transpose()
            .map_err(|e| self.fail(at, e.to_string()))?;
        self.push(b, node, geometry, bitmap);
        self.set(
            node,
            Value {
                shape: vec![n, out],
                ..Value::default()
            },
        );
        Ok(())
    }

    /// A `MatMul` of a `[1, h, w, k]` (or `[1, t, k]`) activation by a `[k, d]` weight: the same
    /// weights at every position, i.e. a 1×1 convolution over a `k × h × w` input (ConvNeXt's
    /// and transformers' channel MLPs).
    fn pointwise(
        &mut self,
        node: &'g NodeProto,
        at: &str,
        xs: &[usize],
        ws: &[usize],
        flags: Option<Vec<bool>>,
    ) -> Result<()> {
        let (&k, positions) = xs.split_last().unwrap_or((&0, &[]));
        let (&[k_w, out], [_, h, rest @ ..]) = (ws, positions) else {
            return Err(self.fail(
                at,
                format!("input {xs:?} and weight {ws:?} are not a product over positions"),
            ));
        };
        if k_w != k {
            return Err(self.fail(at, format!("input {xs:?} does not match weight {ws:?}")));
        }
        let w = rest.first().copied().unwrap_or(1);
        let geometry = LayerGeometry::conv([k, *h, w], out, ConvParams::square(1))
            .map_err(|e| self.fail(at, e.to_string()))?;
        let bitmap = flags
            .map(|f| Bitmap::from_bools(&geometry.weight_shape(), &transpose(&f, k, out)))
            .transpose()
            .map_err(|e| self.fail(at, e.to_string()))?;
        let name = node.input.get(1).map(String::as_str).unwrap_or_default();
        self.push(name, node, geometry, bitmap);
        let mut shape = xs.to_vec();
        if let Some(last) = shape.last_mut() {
            *last = out;
        }
        self.set(
            node,
            Value {
                shape,
                ..Value::default()
            },
        );
        Ok(())
    }

    /// `Split` along an axis, into sizes given as an input, an attribute, or equal parts.
    fn split(&mut self, node: &'g NodeProto, at: &str) -> Result<()> {
        let name = node.input.first().map(String::as_str).unwrap_or_default();
        let s = self.value(at, name)?.shape.clone();
        let axis = normalise_axis(attr_int(node, "axis").unwrap_or(0), s.len())
            .map_err(|r| self.fail(at, r))?;
        let parts = node.output.len();
        let sizes: Vec<i64> = match (attr(node, "split"), node.input.get(1)) {
            (Some(a), _) => a.ints.clone(),
            (None, Some(input)) if !input.is_empty() => self.ints_of(at, input)?,
            _ if parts > 0 => {
                let chunk = s[axis].div_ceil(parts);
                (0..parts)
                    .map(|i| s[axis].saturating_sub(i.saturating_mul(chunk)).min(chunk) as i64)
                    .collect()
            }
            _ => return Err(self.fail(at, "has no output")),
        };
        let total = sizes.iter().try_fold(0i64, |t, &v| t.checked_add(v));
        if sizes.len() != parts || sizes.iter().any(|&v| v < 0) || total != Some(s[axis] as i64) {
            return Err(self.fail(
                at,
                format!("sizes {sizes:?} do not split dimension {axis} of {s:?} into {parts}"),
            ));
        }
        for (out, size) in node.output.iter().zip(sizes) {
            let mut shape = s.clone();
            shape[axis] = size as usize;
            self.values.insert(
                out,
                Value {
                    shape,
                    ..Value::default()
                },
            );
        }
        *self.unpriced.entry(node.op_type.clone()).or_default() += 1;
        Ok(())
    }

    /// Integer arithmetic on constants, as exporters write it to compute shapes (`Shape`, then
    /// `Gather`, `Concat`, `Unsqueeze`, ... into a `Reshape`), folded here with the batch of 1.
    /// `None` when the node is not such a computation.
    fn fold_ints(&self, node: &NodeProto, at: &str) -> Result<Option<Value<'g>>> {
        let op = node.op_type.as_str();
        if op == "Shape" {
            let name = node.input.first().map(String::as_str).unwrap_or_default();
            let dims: Vec<i64> = self
                .value(at, name)?
                .shape
                .iter()
                .map(|&d| d as i64)
                .collect();
            let rank = dims.len() as i64;
            let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
            let start = clamp(attr_int(node, "start").unwrap_or(0));
            let end = clamp(attr_int(node, "end").unwrap_or(rank));
            let dims = dims[start..end.max(start)].to_vec();
            return Ok(Some(ints_value(dims)));
        }
        if !matches!(
            op,
            "Gather" | "Concat" | "Unsqueeze" | "Squeeze" | "Cast" | "Add" | "Sub" | "Mul" | "Div"
        ) {
            return Ok(None);
        }
        let mut args = Vec::new();
        for name in node.input.iter().filter(|n| !n.is_empty()) {
            let v = self.value(at, name)?;
            let values = match &v.constant {
                Some(Constant::Ints(i)) => i.clone(),
                Some(Constant::Tensor(t)) if matches!(t.data_type, 6 | 7) => {
                    tensor::ints(t, self.cx.external_dir)
                        .map_err(|r| self.fail(at, format!("`{name}`: {r}")))?
                }
                _ => return Ok(None),
            };
            // Shape arithmetic is on scalars and short vectors only.
            if v.shape.len() > 1 {
                return Ok(None);
            }
            args.push(values);
        }
        let bad = || self.fail(at, "integer operands that do not combine");
        let values = match (op, args.as_slice()) {
            ("Gather", [data, indices]) => indices
                .iter()
                .map(|&i| {
                    let i = if i < 0 { i + data.len() as i64 } else { i };
                    usize::try_from(i).ok().and_then(|i| data.get(i).copied())
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(bad)?,
            ("Concat", parts) => parts.concat(),
            ("Unsqueeze" | "Squeeze" | "Cast", [x, ..]) => x.clone(),
            ("Add" | "Sub" | "Mul" | "Div", [a, b]) => {
                let n = a.len().max(b.len());
                if !(a.len() == n || a.len() == 1) || !(b.len() == n || b.len() == 1) {
                    return Err(bad());
                }
                (0..n)
                    .map(|i| {
                        let (x, y) = (a[i.min(a.len() - 1)], b[i.min(b.len() - 1)]);
                        match op {
                            "Add" => x.checked_add(y),
                            "Sub" => x.checked_sub(y),
                            "Mul" => x.checked_mul(y),
                            _ => x.checked_div(y),
                        }
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(bad)?
            }
            _ => return Err(bad()),
        };
        // Scalars stay scalars: a gather by a scalar index, arithmetic on scalars, a squeezed
        // one-element vector; everything else here is a 1-D vector.
        let rank = |i: usize| {
            let name = node.input.get(i).map(String::as_str).unwrap_or_default();
            self.values.get(name).map_or(1, |v| v.shape.len())
        };
        let scalar = match op {
            "Gather" => rank(1) == 0,
            "Squeeze" => values.len() == 1,
            "Add" | "Sub" | "Mul" | "Div" | "Cast" => (0..args.len()).all(|i| rank(i) == 0),
            _ => false,
        };
        let mut value = ints_value(values);
        if scalar {
            value.shape.clear();
        }
        Ok(Some(value))
    }

    fn broadcast(&self, node: &NodeProto, at: &str) -> Result<Value<'g>> {
        let mut shape: Vec<usize> = Vec::new();
        let mut unflattened = None;
        for name in node.input.iter().filter(|n| !n.is_empty()) {
            let v = self.value(at, name)?;
            if v.constant.is_none() && unflattened.is_none() {
                unflattened = v.unflattened;
            }
            let s = &v.shape;
            let rank = shape.len().max(s.len());
            let pad = |x: &[usize]| {
                let mut p = vec![1; rank - x.len()];
                p.extend_from_slice(x);
                p
            };
            let (x, y) = (pad(&shape), pad(s));
            shape = x
                .iter()
                .zip(&y)
                .map(|(&p, &q)| match (p, q) {
                    (p, q) if p == q => Ok(p),
                    (1, q) => Ok(q),
                    (p, 1) => Ok(p),
                    _ => Err(self.fail(at, format!("shapes {x:?} and {y:?} do not broadcast"))),
                })
                .collect::<Result<_>>()?;
        }
        Ok(Value {
            shape,
            unflattened,
            constant: None,
        })
    }

    fn pool(&self, node: &NodeProto, at: &str) -> Result<Value<'g>> {
        let name = node.input.first().map(String::as_str).unwrap_or_default();
        let s = self.value(at, name)?.shape.clone();
        let &[n, c, h, w] = s.as_slice() else {
            return Err(self.fail(at, format!("input of shape {s:?} is not 4-D")));
        };
        let two = |key: &str, default: usize| -> Result<(usize, usize)> {
            match attr(node, key).map(|a| a.ints.as_slice()) {
                None => Ok((default, default)),
                Some(&[a, b]) => positive(a)
                    .zip(positive(b))
                    .ok_or_else(|| self.fail(at, format!("{key} {a}, {b} are not positive"))),
                Some(v) => Err(self.fail(at, format!("{key} {v:?} are not two numbers"))),
            }
        };
        let kernel = match attr(node, "kernel_shape") {
            Some(_) => two("kernel_shape", 1)?,
            None => return Err(self.fail(at, "has no kernel_shape")),
        };
        let stride = two("strides", 1)?;
        let dilation = two("dilations", 1)?;
        let (ph, pw) = self.padding(node, at, (h, w), kernel, stride)?;
        let ceil = attr_int(node, "ceil_mode").unwrap_or(0) != 0;
        let out = |size: usize, k: usize, s: usize, p: usize, d: usize| -> Result<usize> {
            let too_large = || self.fail(at, format!("window {k} is larger than {size} + 2·{p}"));
            let padded = p
                .checked_mul(2)
                .and_then(|v| v.checked_add(size))
                .ok_or_else(too_large)?;
            let window = (k - 1).checked_mul(d).ok_or_else(too_large)?;
            let span = padded.checked_sub(window + 1).ok_or_else(too_large)?;
            let mut o = if ceil { span.div_ceil(s) } else { span / s } + 1;
            // A last window that would start in the right padding is dropped (PyTorch's and
            // ONNX Runtime's ceil mode).
            if ceil && (o - 1).checked_mul(s).is_none_or(|start| start >= size + p) {
                o -= 1;
            }
            Ok(o)
        };
        Ok(Value {
            shape: vec![
                n,
                c,
                out(h, kernel.0, stride.0, ph, dilation.0)?,
                out(w, kernel.1, stride.1, pw, dilation.1)?,
            ],
            ..Value::default()
        })
    }

    fn reduce(&self, node: &NodeProto, at: &str) -> Result<Value<'g>> {
        let name = node.input.first().map(String::as_str).unwrap_or_default();
        let s = self.value(at, name)?.shape.clone();
        // Axes are an attribute before opset 18 (13 for ReduceSum), an optional input after.
        let axes: Vec<i64> = match (attr(node, "axes"), node.input.get(1)) {
            (Some(a), _) => a.ints.clone(),
            (None, Some(input)) if !input.is_empty() => self.ints_of(at, input)?,
            _ => Vec::new(),
        };
        let keep = attr_int(node, "keepdims").unwrap_or(1) != 0;
        let axes: Vec<usize> = if axes.is_empty() {
            if attr_int(node, "noop_with_empty_axes").unwrap_or(0) != 0 {
                Vec::new()
            } else {
                (0..s.len()).collect()
            }
        } else {
            axes.iter()
                .map(|&a| normalise_axis(a, s.len()))
                .collect::<std::result::Result<_, _>>()
                .map_err(|r| self.fail(at, r))?
        };
        let shape = s
            .iter()
            .enumerate()
            .filter_map(|(i, &d)| match (axes.contains(&i), keep) {
                (false, _) => Some(d),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect();
        Ok(Value {
            shape,
            ..Value::default()
        })
    }

    fn reshape(&self, node: &NodeProto, at: &str) -> Result<Value<'g>> {
        let [x, s] = [0, 1].map(|i| node.input.get(i).map(String::as_str).unwrap_or_default());
        let v = self.value(at, x)?.clone();
        let target = self.ints_of(at, s)?;
        let allow_zero = attr_int(node, "allowzero").unwrap_or(0) != 0;
        let total = product(&v.shape).map_err(|r| self.fail(at, r))?;
        let mut shape = Vec::with_capacity(target.len());
        let mut infer = None;
        for (i, &t) in target.iter().enumerate() {
            match t {
                -1 if infer.is_none() => {
                    infer = Some(i);
                    shape.push(1);
                }
                0 if !allow_zero => shape.push(*v.shape.get(i).ok_or_else(|| {
                    self.fail(
                        at,
                        format!("shape {target:?} copies a dimension {v:?} lacks"),
                    )
                })?),
                t if t >= 0 => shape.push(t as usize),
                _ => return Err(self.fail(at, format!("shape {target:?} is not a shape"))),
            }
        }
        let known = product(&shape).map_err(|r| self.fail(at, r))?;
        if let Some(i) = infer {
            if known == 0 || !total.is_multiple_of(known) {
                return Err(self.fail(at, format!("cannot reshape {:?} to {target:?}", v.shape)));
            }
            shape[i] = total / known;
        } else if known != total {
            return Err(self.fail(at, format!("cannot reshape {:?} to {target:?}", v.shape)));
        }
        let flat = shape.len() == 2 && shape.first() == v.shape.first();
        Ok(Value {
            unflattened: origin(&v, flat),
            shape,
            constant: None,
        })
    }

    /// `Slice` of an activation: starts, ends, axes and steps as constant inputs (opset 10 and
    /// later) or attributes (before), clamped as ONNX clamps them.
    fn slice(&self, node: &NodeProto, at: &str) -> Result<Value<'g>> {
        let name = node.input.first().map(String::as_str).unwrap_or_default();
        let mut shape = self.value(at, name)?.shape.clone();
        let operand = |i: usize, key: &str| -> Result<Option<Vec<i64>>> {
            match (node.input.get(i), attr(node, key)) {
                (Some(n), _) if !n.is_empty() => self.ints_of(at, n).map(Some),
                (_, Some(a)) => Ok(Some(a.ints.clone())),
                _ => Ok(None),
            }
        };
        let starts = operand(1, "starts")?.ok_or_else(|| self.fail(at, "has no starts"))?;
        let ends = operand(2, "ends")?.ok_or_else(|| self.fail(at, "has no ends"))?;
        let axes = operand(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = operand(4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
        if [ends.len(), axes.len(), steps.len()]
            .iter()
            .any(|&n| n != starts.len())
        {
            return Err(self.fail(at, "starts, ends, axes and steps differ in length"));
        }
        for (((&start, &end), &axis), &step) in starts.iter().zip(&ends).zip(&axes).zip(&steps) {
            let axis = normalise_axis(axis, shape.len()).map_err(|r| self.fail(at, r))?;
            let dim = shape[axis] as i64;
            if step == 0 {
                return Err(self.fail(at, "a step of 0"));
            }
            let clamp = |v: i64, lo: i64, hi: i64| {
                (if v < 0 { v.saturating_add(dim) } else { v }).clamp(lo, hi)
            };
            let len = if step > 0 {
                let (b, e) = (clamp(start, 0, dim), clamp(end, 0, dim));
                (e - b).max(0).div_euclid(step) + i64::from((e - b).max(0) % step != 0)
            } else {
                let (b, e) = (clamp(start, 0, dim - 1), clamp(end, -1, dim - 1));
                let span = (b - e).max(0);
                let back = step
                    .checked_neg()
                    .ok_or_else(|| self.fail(at, format!("step {step} overflows")))?;
                span / back + i64::from(span % back != 0)
            };
            shape[axis] = len as usize;
        }
        Ok(Value {
            shape,
            ..Value::default()
        })
    }

    fn concat(&self, node: &NodeProto, at: &str) -> Result<Value<'g>> {
        let shapes = node
            .input
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| Ok(self.value(at, n)?.shape.clone()))
            .collect::<Result<Vec<_>>>()?;
        let first = shapes
            .first()
            .ok_or_else(|| self.fail(at, "has no input"))?
            .clone();
        let axis = normalise_axis(
            attr_int(node, "axis").ok_or_else(|| self.fail(at, "has no axis"))?,
            first.len(),
        )
        .map_err(|r| self.fail(at, r))?;
        let mut shape = first.clone();
        shape[axis] = 0;
        for s in &shapes {
            let agrees = s.len() == first.len()
                && s.iter()
                    .zip(&first)
                    .enumerate()
                    .all(|(i, (a, b))| i == axis || a == b);
            if !agrees {
                return Err(self.fail(
                    at,
                    format!("inputs of shapes {shapes:?} do not concatenate on axis {axis}"),
                ));
            }
            shape[axis] = shape[axis]
                .checked_add(s[axis])
                .ok_or_else(|| self.fail(at, "the concatenated size overflows"))?;
        }
        Ok(Value {
            shape,
            ..Value::default()
        })
    }

    fn squeeze(&self, node: &NodeProto, at: &str) -> Result<Value<'g>> {
        let name = node.input.first().map(String::as_str).unwrap_or_default();
        let v = self.value(at, name)?.clone();
        let axes: Vec<i64> = match (attr(node, "axes"), node.input.get(1)) {
            (Some(a), _) => a.ints.clone(),
            (None, Some(input)) if !input.is_empty() => self.ints_of(at, input)?,
            _ => Vec::new(),
        };
        let mut shape = v.shape.clone();
        if node.op_type == "Unsqueeze" {
            let rank = shape.len() + axes.len();
            let mut axes = axes
                .iter()
                .map(|&a| normalise_axis(a, rank))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|r| self.fail(at, r))?;
            axes.sort_unstable();
            for a in axes {
                shape.insert(a.min(shape.len()), 1);
            }
        } else {
            let axes: Vec<usize> = if axes.is_empty() {
                (0..shape.len()).filter(|&i| shape[i] == 1).collect()
            } else {
                axes.iter()
                    .map(|&a| normalise_axis(a, shape.len()))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|r| self.fail(at, r))?
            };
            if axes.iter().any(|&a| shape[a] != 1) {
                return Err(self.fail(
                    at,
                    format!("squeezes a dimension of {shape:?} that is not 1"),
                ));
            }
            shape = shape
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect();
        }
        let flat = shape.len() == 2 && shape.first() == v.shape.first();
        Ok(Value {
            unflattened: origin(&v, flat),
            shape,
            constant: None,
        })
    }
}

/// A 1-D integer constant.
fn ints_value<'g>(values: Vec<i64>) -> Value<'g> {
    Value {
        shape: vec![values.len()],
        unflattened: None,
        constant: Some(Constant::Ints(values)),
    }
}

/// The `[c, h, w]` an FC layer fed by this value is priced over, when the value flattens a
/// feature map (or passes one on).
fn origin(v: &Value<'_>, flattens: bool) -> Option<[usize; 3]> {
    match v.shape.as_slice() {
        &[_, c, h, w] if flattens => Some([c, h, w]),
        _ if flattens => v.unflattened,
        _ => None,
    }
}

/// The element count of a shape, checked (sizes come from the file).
fn product(dims: &[usize]) -> std::result::Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("the size of shape {dims:?} overflows"))
}

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name).map(|a| a.i)
}

fn positive(v: i64) -> Option<usize> {
    usize::try_from(v).ok().filter(|&v| v > 0)
}

fn normalise_axis(axis: i64, rank: usize) -> std::result::Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(format!("axis {axis} is out of range for rank {rank}"))
    }
}

/// Row-major `[rows, cols]` → `[cols, rows]`.
fn transpose(flags: &[bool], rows: usize, cols: usize) -> Vec<bool> {
    let mut out = vec![false; flags.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = flags[r * cols + c];
        }
    }
    out
}
