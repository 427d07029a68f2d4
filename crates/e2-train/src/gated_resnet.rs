//! The gated CIFAR ResNet of depth 6n + 2 (e2-train.md §2): the plain backbone (3×3 stem with 16
//! filters, three stages of `n` BasicBlocks at 16/32/64 channels, 1×1 stride-2 projection
//! shortcuts with batch norm at stage transitions, global average pooling, FC), with a SkipNet
//! recurrent gate deciding per sample whether blocks 1.. run, and convs that fake-quantise and
//! predict sign gradients when asked.
//!
//! Names equal the PyTorch CIFAR ResNet's `state_dict` keys (`conv1`, `bn1`,
//! `layer{1,2,3}.{i}.conv1|bn1|conv2|bn2|downsample.0|downsample.1`, `fc`); gate parameters are
//! `layer{s}.{i}.gate` (the 1×1 embedding on block `(s, i)`'s output, deciding the next block)
//! and `control.rnn.*_l0`, `control.proj.*`. [`Network::layers`] lists the backbone only, in the
//! order the forward pass runs it (stem, per block `conv1`, `conv2`, `downsample.0`, then `fc`),
//! so its geometry equals the plain ResNet's; the gate embeddings follow in
//! [`GatedResnet::gate_layers`] with ids after the backbone's.
//!
//! Reference init: convs `N(0, 2/(k²·C_out))`, batch norm γ = 1, β = 0, linear weights
//! `N(0, 2/(out·in))` and PyTorch's default bias.
//!
//! Execution of a gated block over a batch ([`SkipExecution`]): `Masked` runs the block on every
//! sample and blends `m·Block + (1 − m)·shortcut` (the reference; needed for the straight-through
//! gradient of samples whose gate is off); `Gather` runs the block only on the samples whose gate
//! is on (index-select, run, scatter back) and not at all when none is, so batch-norm statistics
//! come from the executed samples only and gates that are off get no gradient from the loss. The
//! shortcut (identity or projection) always runs on the whole batch. The ledger is the same
//! either way.

use std::sync::{Arc, Mutex, PoisonError};

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tensor_core::tensor::nn::{self, BatchNorm, BatchNormConfig, Init, VarBuilder};
use tensor_core::tensor::{DType, ModuleT, Tensor, Var};
use tensor_core::{
    Gemm, LayerConfig, LayerId, LayerInfo, LayerWork, Network, Rng, ShapeProbe, Taps,
};

use crate::error::{Error, Result, bad};
use crate::quantize::{TensorGrid, activation_scale, quantize_weights, straight_through};
use crate::selective_update::{
    GATE_DIM, GateMode, RecurrentGate, StochasticDepthConfig, straight_through_gate,
};
use crate::sign_gradient::{FallbackCell, PsgConfig, PsgOperands, psg_conv2d};

/// Stage widths.
const WIDTHS: [usize; 3] = [16, 32, 64];

/// What the convs compute.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ConvMode {
    /// Full-precision convs and gradients (32-bit operands in the ledger).
    Float,
    /// Fake-quantised forward (straight-through), ordinary gradients: the baseline that isolates
    /// PSG (energy-models.md C.3, 8/32 widths).
    Quantized {
        /// Activation bits, 2..=16.
        act_bits: u8,
        /// Weight bits (per output channel), 2..=16.
        weight_bits: u8,
    },
    /// Fake-quantised forward with predictive sign gradients.
    Psg(PsgConfig),
}

impl ConvMode {
    /// The 8-bit quantised baseline.
    pub fn quantized8() -> Self {
        ConvMode::Quantized {
            act_bits: 8,
            weight_bits: 8,
        }
    }

    fn validate(self) -> Result<Self> {
        match self {
            ConvMode::Float => {}
            ConvMode::Quantized {
                act_bits,
                weight_bits,
            } => {
                for (f, b) in [("act_bits", act_bits), ("weight_bits", weight_bits)] {
                    if !(2..=16).contains(&b) {
                        return Err(bad(f, format!("{b} is not in 2..=16")));
                    }
                }
            }
            ConvMode::Psg(c) => {
                c.validate()?;
            }
        }
        Ok(self)
    }

    /// `(activation, weight)` bits of the forward operands.
    fn forward_bits(&self) -> (u8, u8) {
        match *self {
            ConvMode::Float => (32, 32),
            ConvMode::Quantized {
                act_bits,
                weight_bits,
            } => (act_bits, weight_bits),
            ConvMode::Psg(c) => (c.act_bits, c.weight_bits),
        }
    }
}

/// Shape of the gated ResNet.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GatedResnetConfig {
    /// Depth 6n + 2 ≥ 8 (8, 14, 20, 74, 110, ...).
    pub depth: usize,
    /// Output classes, ≥ 2 (from the dataset).
    pub num_classes: usize,
    /// Image channels (3 for CIFAR, 1 for MNIST padded to 32×32).
    pub in_channels: usize,
    /// What the convs compute.
    pub conv: ConvMode,
    /// Builds the gate network (needed for selective layer update; the plain backbone without).
    pub gates: bool,
}

impl GatedResnetConfig {
    /// Checks ranges.
    pub fn validate(self) -> Result<Self> {
        if self.depth < 8 || !(self.depth - 2).is_multiple_of(6) {
            return Err(bad(
                "depth",
                format!("{} is not 6n + 2 with n >= 1", self.depth),
            ));
        }
        if self.num_classes < 2 {
            return Err(bad("num_classes", "must be at least 2"));
        }
        if self.in_channels == 0 {
            return Err(bad("in_channels", "must be at least 1"));
        }
        self.conv.validate()?;
        Ok(self)
    }

    /// Residual blocks `3n`.
    pub fn blocks(&self) -> usize {
        3 * ((self.depth - 2) / 6)
    }
}

/// How gated blocks run over a batch (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipExecution {
    /// Run every block on every sample and blend with the mask (the reference).
    Masked,
    /// Run blocks only on the samples whose gate is on.
    Gather,
}

/// Which blocks run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Gating {
    /// Every block for every sample (the plain ResNet).
    AllOn,
    /// The learned gates (the network must have them).
    Gates {
        /// How probabilities become decisions.
        mode: GateMode,
    },
    /// Stochastic depth: in training whole blocks are dropped per batch with linearly decaying
    /// survival; in evaluation every block runs, blended with its survival probability
    /// (`p·Block + (1 − p)·shortcut`, the expectation, as Huang et al. scale the residual).
    StochasticDepth(StochasticDepthConfig),
}

/// Options of one forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForwardOptions {
    /// Batch statistics and quantiser updates (training) or running values (evaluation).
    pub train: bool,
    /// Which blocks run.
    pub gating: Gating,
    /// How skipped samples are executed.
    pub skip: SkipExecution,
}

/// Result of a gated forward pass.
#[derive(Clone, Debug)]
pub struct GatedForward {
    /// Logits `[b, classes]`.
    pub logits: Tensor,
    /// Straight-through masks `[b]` of the gated blocks 1.. (learned gates only; values in
    /// {0, 1}, gradient that of `π`).
    pub masks: Vec<Tensor>,
    /// Hard decisions per gated block and sample (all gating modes; empty for `AllOn`).
    pub decisions: Vec<Vec<f32>>,
    /// Gate probabilities `π` per gated block and sample (learned gates only).
    pub probabilities: Vec<Vec<f32>>,
    /// Executed fraction of every block (block 0 always 1).
    pub executed: Vec<f64>,
}

/// A conv (no bias, square kernel, one group) that quantises and predicts as its mode says.
#[derive(Debug)]
struct QConv {
    id: LayerId,
    weight: Tensor,
    stride: usize,
    padding: usize,
    kernel: usize,
    out_channels: usize,
    signed: bool,
    running_scale: Mutex<Option<f32>>,
    cell: FallbackCell,
}

impl QConv {
    #[allow(clippy::too_many_arguments)]
    fn new(
        id: usize,
        vb: VarBuilder,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        signed: bool,
    ) -> Result<Self> {
        let std = (2.0 / (kernel * kernel * c_out) as f64).sqrt();
        let weight = vb.get_with_hints(
            (c_out, c_in, kernel, kernel),
            "weight",
            Init::Randn {
                mean: 0.0,
                stdev: std,
            },
        )?;
        Ok(Self {
            id: LayerId(id),
            weight,
            stride,
            padding,
            kernel,
            out_channels: c_out,
            signed,
            running_scale: Mutex::new(None),
            cell: Arc::new(Mutex::new(None)),
        })
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Conv {
            out_channels: self.out_channels,
            kernel: (self.kernel, self.kernel),
            stride: (self.stride, self.stride),
            padding: (self.padding, self.padding),
            groups: 1,
        }
    }

    /// Activation scale: the batch mean of per-sample `max|x|` in training (also folded into the
    /// running value), the running value in evaluation (the batch's before any training).
    fn scale(&self, xs: &Tensor, train: bool) -> Result<f32> {
        let mut running = self
            .running_scale
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if train || running.is_none() {
            let s = activation_scale(xs)?;
            if train {
                // Decision 7: the reference's reversed momentum (0.9 on the new value).
                *running = Some(running.map_or(s, |r| 0.1 * r + 0.9 * s));
            }
            return Ok(s);
        }
        Ok(running.unwrap_or(0.0))
    }

    fn forward(&self, xs: &Tensor, train: bool, mode: &ConvMode) -> Result<Tensor> {
        let (p, s) = (self.padding, self.stride);
        let (act_bits, weight_bits) = match *mode {
            ConvMode::Float => return Ok(fast_conv(xs, &self.weight, p, s)?),
            _ => mode.forward_bits(),
        };
        let scale = Tensor::new(self.scale(xs, train)?, xs.device())?.to_dtype(xs.dtype())?;
        let grid = TensorGrid::new(act_bits, &scale, self.signed)?;
        let xq = grid.quantize(xs)?;
        let wq = quantize_weights(&self.weight, weight_bits)?;
        match mode {
            ConvMode::Psg(c) => {
                let xm = grid.msb(xs, c.msb_act_bits)?;
                let operands = PsgOperands { xq, xm, wq };
                psg_conv2d(xs, &self.weight, operands, s, p, c, &self.cell)
            }
            _ => {
                let xq = straight_through(xs, &xq)?;
                let wq = straight_through(&self.weight, &wq)?;
                Ok(fast_conv(&xq, &wq, p, s)?)
            }
        }
    }

    fn tapped(
        &self,
        xs: &Tensor,
        train: bool,
        mode: &ConvMode,
        taps: &mut dyn Taps,
    ) -> Result<Tensor> {
        let replaced = taps.pre(self.id, xs)?;
        let xs = replaced.as_ref().unwrap_or(xs);
        let ys = self.forward(xs, train, mode)?;
        taps.post(self.id, xs, &ys)?;
        Ok(ys)
    }

    fn take_fallback(&self) -> Option<f64> {
        self.cell
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

#[derive(Debug)]
struct Block {
    conv1: QConv,
    bn1: BatchNorm,
    conv2: QConv,
    bn2: BatchNorm,
    downsample: Option<(QConv, BatchNorm)>,
}

/// The gated CIFAR ResNet (built by [`gated_resnet`]).
#[derive(Debug)]
pub struct GatedResnet {
    config: GatedResnetConfig,
    conv1: QConv,
    bn1: BatchNorm,
    blocks: Vec<Block>,
    fc: nn::Linear,
    fc_id: LayerId,
    embeds: Vec<QConv>,
    control: Option<RecurrentGate>,
    layers: Vec<LayerInfo>,
    gate_layers: Vec<LayerInfo>,
}

/// tensor-core's CPU convolution (candle's own elsewhere): same numbers, several times faster
/// forward and backward on the CPU.
fn fast_conv(
    xs: &Tensor,
    w: &Tensor,
    padding: usize,
    stride: usize,
) -> tensor_core::Result<Tensor> {
    let params = tensor_core::ops::Conv2dParams {
        stride,
        padding,
        groups: 1,
    };
    tensor_core::ops::conv2d(xs, w, None, params, tensor_core::ops::OpsBackend::Fast)
}

fn batch_norm(c: usize, vb: VarBuilder) -> Result<BatchNorm> {
    Ok(nn::batch_norm(c, BatchNormConfig::default(), vb)?)
}

fn stage_name(k: usize, n: usize) -> String {
    format!("layer{}.{}", k / n + 1, k % n)
}

/// Builds a gated CIFAR ResNet for `in_channels`×32×32 inputs; layer geometry comes from a
/// batch-1 forward pass.
pub fn gated_resnet(config: GatedResnetConfig, vb: VarBuilder) -> Result<GatedResnet> {
    let config = config.validate()?;
    let n = (config.depth - 2) / 6;
    let mut next = 0usize;
    let mut id = || {
        next += 1;
        next - 1
    };
    let conv1 = QConv::new(
        id(),
        vb.pp("conv1"),
        config.in_channels,
        WIDTHS[0],
        3,
        1,
        1,
        true,
    )?;
    let bn1 = batch_norm(WIDTHS[0], vb.pp("bn1"))?;
    let mut blocks = Vec::with_capacity(3 * n);
    let mut c_in = WIDTHS[0];
    for (stage, &c) in WIDTHS.iter().enumerate() {
        for i in 0..n {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let vb = vb.pp(format!("layer{}.{i}", stage + 1));
            // Decision 8: a block's input may be a skipped transition's batch-norm output, so
            // conv1 and the shortcut quantise signed; conv2 reads a ReLU output, unsigned.
            let conv1 = QConv::new(id(), vb.pp("conv1"), c_in, c, 3, stride, 1, true)?;
            let bn1 = batch_norm(c, vb.pp("bn1"))?;
            let conv2 = QConv::new(id(), vb.pp("conv2"), c, c, 3, 1, 1, false)?;
            let bn2 = batch_norm(c, vb.pp("bn2"))?;
            let downsample = if stride != 1 || c_in != c {
                let vb = vb.pp("downsample");
                let conv = QConv::new(id(), vb.pp("0"), c_in, c, 1, stride, 0, true)?;
                Some((conv, batch_norm(c, vb.pp("1"))?))
            } else {
                None
            };
            blocks.push(Block {
                conv1,
                bn1,
                conv2,
                bn2,
                downsample,
            });
            c_in = c;
        }
    }
    let classes = config.num_classes;
    let fc_vb = vb.pp("fc");
    let std = (2.0 / (classes * WIDTHS[2]) as f64).sqrt();
    let w = fc_vb.get_with_hints(
        (classes, WIDTHS[2]),
        "weight",
        Init::Randn {
            mean: 0.0,
            stdev: std,
        },
    )?;
    let k = 1.0 / (WIDTHS[2] as f64).sqrt();
    let b = fc_vb.get_with_hints(classes, "bias", Init::Uniform { lo: -k, up: k })?;
    let fc_id = LayerId(id());
    let fc_weight = w.clone();
    let fc = nn::Linear::new(w, Some(b.clone()));
    let (embeds, control) = if config.gates {
        let mut embeds = Vec::new();
        for k in 0..blocks.len() - 1 {
            let c = WIDTHS[k / n];
            let vb = vb.pp(format!("{}.gate", stage_name(k, n)));
            embeds.push(QConv::new(id(), vb, c, GATE_DIM, 1, 1, 0, true)?);
        }
        (embeds, Some(RecurrentGate::new(vb.pp("control"))?))
    } else {
        (Vec::new(), None)
    };
    let mut net = GatedResnet {
        config,
        conv1,
        bn1,
        blocks,
        fc,
        fc_id,
        embeds,
        control,
        layers: Vec::new(),
        gate_layers: Vec::new(),
    };
    net.layers = net.derive_layers(&vb, fc_weight, b)?;
    net.gate_layers = net
        .embeds
        .iter()
        .enumerate()
        .map(|(k, e)| {
            let c = WIDTHS[k / n];
            Ok(LayerInfo {
                id: e.id,
                name: format!("{}.gate", stage_name(k, n)),
                kind: tensor_core::LayerKind::Conv,
                geometry: e.config().geometry(&[1, c, 1, 1], &[1, GATE_DIM, 1, 1])?,
                weight: Var::from_tensor(&e.weight)?,
                bias: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(net)
}

impl GatedResnet {
    /// The configuration it was built with.
    pub fn config(&self) -> &GatedResnetConfig {
        &self.config
    }

    /// Residual blocks.
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Gates `L_g = blocks − 1` (0 without a gate network).
    pub fn num_gates(&self) -> usize {
        self.embeds.len()
    }

    /// Whether the network has a gate network.
    pub fn has_gates(&self) -> bool {
        self.control.is_some()
    }

    /// The gate embedding convs (ids after the backbone's).
    pub fn gate_layers(&self) -> &[LayerInfo] {
        &self.gate_layers
    }

    /// Ledger id of the recurrent gate (LSTM and projection), after the gate embeddings.
    pub fn control_layer_id(&self) -> LayerId {
        LayerId(self.layers.len() + self.embeds.len())
    }

    fn backbone_names(&self) -> Vec<String> {
        let n = (self.config.depth - 2) / 6;
        let mut names = vec!["conv1".to_string()];
        for (k, b) in self.blocks.iter().enumerate() {
            let s = stage_name(k, n);
            names.push(format!("{s}.conv1"));
            names.push(format!("{s}.conv2"));
            if b.downsample.is_some() {
                names.push(format!("{s}.downsample.0"));
            }
        }
        names.push("fc".into());
        names
    }

    /// Weights of every conv, backbone then gate embeddings: under PSG with signs on, the
    /// parameters updated with sign gradients.
    pub fn conv_weights(&self) -> Vec<&Tensor> {
        self.backbone_convs()
            .into_iter()
            .chain(&self.embeds)
            .map(|c| &c.weight)
            .collect()
    }

    fn backbone_convs(&self) -> Vec<&QConv> {
        let mut v = vec![&self.conv1];
        for b in &self.blocks {
            v.push(&b.conv1);
            v.push(&b.conv2);
            if let Some((c, _)) = &b.downsample {
                v.push(c);
            }
        }
        v
    }

    fn derive_layers(&self, vb: &VarBuilder, fc_w: Tensor, fc_b: Tensor) -> Result<Vec<LayerInfo>> {
        let xs = Tensor::zeros(
            (1, self.config.in_channels, 32, 32),
            vb.dtype(),
            vb.device(),
        )?;
        let mut probe = ShapeProbe::default();
        let opts = ForwardOptions {
            train: false,
            gating: Gating::AllOn,
            skip: SkipExecution::Masked,
        };
        let mut rng = tensor_core::rng(0, "probe");
        self.forward_gated(&xs, &opts, &mut rng, &mut probe)?;
        let names = self.backbone_names();
        let convs = self.backbone_convs();
        if probe.seen.len() != names.len() {
            return Err(tensor_core::Error::Shape {
                what: "gated resnet layer calls".into(),
                expected: vec![names.len()],
                got: vec![probe.seen.len()],
            }
            .into());
        }
        probe
            .seen
            .into_iter()
            .zip(names)
            .enumerate()
            .map(|(i, ((id, input, output), name))| {
                let (config, weight, bias) = match convs.get(i) {
                    Some(c) => (c.config(), Var::from_tensor(&c.weight)?, None),
                    None => (
                        LayerConfig::Fc {
                            out_features: self.config.num_classes,
                        },
                        Var::from_tensor(&fc_w)?,
                        Some(Var::from_tensor(&fc_b)?),
                    ),
                };
                let geometry = config
                    .geometry(&input, &output)
                    .map_err(|e| e.in_layer(id))?;
                Ok(LayerInfo {
                    id,
                    name,
                    kind: config.kind(),
                    geometry,
                    weight,
                    bias,
                })
            })
            .collect()
    }

    /// Forward pass with explicit gating; `rng` supplies the gates' and stochastic depth's
    /// uniform draws. Taps see the backbone layers that actually run (a block skipped for every
    /// sample is not called).
    pub fn forward_gated(
        &self,
        xs: &Tensor,
        opts: &ForwardOptions,
        rng: &mut Rng,
        taps: &mut dyn Taps,
    ) -> Result<GatedForward> {
        let dims = xs.dims();
        if dims.len() != 4 || dims[1..] != [self.config.in_channels, 32, 32] {
            return Err(Error::BadBatch {
                what: "images",
                expected: vec![0, self.config.in_channels, 32, 32],
                got: dims.to_vec(),
            });
        }
        let b = dims[0];
        let train = opts.train;
        let mode = &self.config.conv;
        let control = match opts.gating {
            Gating::Gates { mode } if mode != GateMode::AllOn => match &self.control {
                Some(c) => Some((c, mode)),
                None => return Err(bad("gating", "the network was built without gates")),
            },
            _ => None,
        };
        let mut out = GatedForward {
            logits: xs.clone(),
            masks: Vec::new(),
            decisions: Vec::new(),
            probabilities: Vec::new(),
            executed: Vec::with_capacity(self.blocks.len()),
        };
        let ys = self.conv1.tapped(xs, train, mode, taps)?;
        let mut ys = self.bn1.forward_t(&ys, train)?.relu()?;
        let mut state = match control {
            Some((c, _)) => Some(c.zero_state(b)?),
            None => None,
        };
        let gated_blocks = self.blocks.len() - 1;
        for (k, block) in self.blocks.iter().enumerate() {
            let (m, hard) = if k == 0 {
                (None, None)
            } else {
                match (opts.gating, control) {
                    (_, Some((c, gm))) => {
                        let embed = &self.embeds[k - 1];
                        // Width first: candle reduces the last dimension on a fast path, any
                        // other one element by element.
                        let feat = ys.mean_keepdim(3)?.mean_keepdim(2)?;
                        let feat = embed.forward(&feat, train, mode)?.flatten_from(1)?;
                        let st = match state.take() {
                            Some(st) => st,
                            None => c.zero_state(b)?,
                        };
                        let (pi, st) = c.step(&feat, &st)?;
                        state = Some(st);
                        let u: Vec<f32> = match gm {
                            GateMode::Stochastic => (0..b).map(|_| rng.random::<f32>()).collect(),
                            _ => vec![0.5; b],
                        };
                        let u = Tensor::from_vec(u, b, xs.device())?.to_dtype(pi.dtype())?;
                        let m = straight_through_gate(&pi, &u)?;
                        let hard = m.to_dtype(DType::F32)?.to_vec1::<f32>()?;
                        out.probabilities
                            .push(pi.to_dtype(DType::F32)?.to_vec1::<f32>()?);
                        out.masks.push(m.clone());
                        (Some(m), Some(hard))
                    }
                    (Gating::StochasticDepth(sd), _) => {
                        let p = sd.survival(k, gated_blocks);
                        if train {
                            let keep = rng.random::<f64>() < p;
                            let v = if keep { 1.0f32 } else { 0.0 };
                            let m = Tensor::full(v, b, xs.device())?.to_dtype(xs.dtype())?;
                            (Some(m), Some(vec![v; b]))
                        } else {
                            let m = Tensor::full(p as f32, b, xs.device())?.to_dtype(xs.dtype())?;
                            (Some(m), Some(vec![1.0; b]))
                        }
                    }
                    _ => (None, None),
                }
            };
            let executed = hard.as_ref().map_or(1.0, |h| {
                h.iter().filter(|&&v| v > 0.5).count() as f64 / b.max(1) as f64
            });
            out.executed.push(executed);
            if let Some(h) = &hard {
                out.decisions.push(h.clone());
            }
            ys = block.forward(&ys, m.as_ref(), hard.as_deref(), opts, mode, taps)?;
        }
        let pooled = ys.mean_keepdim(3)?.mean_keepdim(2)?;
        let replaced = taps.pre(self.fc_id, &pooled)?;
        let pooled = replaced.as_ref().unwrap_or(&pooled);
        let logits = nn::Module::forward(&self.fc, &pooled.flatten_from(1)?)?;
        taps.post(self.fc_id, pooled, &logits)?;
        out.logits = logits;
        Ok(out)
    }

    /// Work of every layer in one executed iteration of batch `batch`, for the ledger: backbone
    /// layers (block convs at their block's executed fraction), and with `gated` the gate
    /// embeddings and the recurrent gate as always-on layers. Reads (and clears) the PSG fallback
    /// fractions of the last backward pass.
    pub fn layer_work(&self, executed: &[f64], gated: bool) -> Result<Vec<LayerWork>> {
        if executed.len() != self.blocks.len() {
            return Err(tensor_core::Error::Shape {
                what: "executed fractions".into(),
                expected: vec![self.blocks.len()],
                got: vec![executed.len()],
            }
            .into());
        }
        let mut fractions = vec![1.0];
        for (b, &f) in self.blocks.iter().zip(executed) {
            fractions.push(f);
            fractions.push(f);
            if b.downsample.is_some() {
                fractions.push(1.0);
            }
        }
        let convs = self.backbone_convs();
        let mut work = Vec::new();
        for (i, info) in self.layers.iter().enumerate() {
            let macs = info.geometry.macs() as u64;
            let (w, rho) = match convs.get(i) {
                Some(c) => (self.conv_work(info.id, macs, c)?, fractions[i]),
                None => (dense_work(info.id, macs, 32, 32), 1.0),
            };
            work.push(LayerWork {
                executed_fraction: rho,
                input_grad: if i == 0 { None } else { w.input_grad },
                ..w
            });
        }
        if gated && self.has_gates() {
            for (e, info) in self.embeds.iter().zip(&self.gate_layers) {
                work.push(self.conv_work(info.id, info.geometry.macs() as u64, e)?);
            }
            let macs = RecurrentGate::macs_per_step() * self.embeds.len() as u64;
            work.push(dense_work(self.control_layer_id(), macs, 32, 32));
        } else {
            for e in &self.embeds {
                e.take_fallback();
            }
        }
        Ok(work)
    }

    fn conv_work(&self, id: LayerId, macs: u64, conv: &QConv) -> Result<LayerWork> {
        Ok(conv_work(id, macs, &self.config.conv, conv.take_fallback()))
    }

    /// Work of one iteration of standard training of this backbone (every block executed, no
    /// gates, no predictor) with convs computing as `conv` says (a PSG mode counts as its
    /// quantised forward with ordinary gradients): the baseline savings are measured against.
    pub fn standard_work(&self, conv: ConvMode) -> Vec<LayerWork> {
        let conv = match conv {
            ConvMode::Psg(c) => ConvMode::Quantized {
                act_bits: c.act_bits,
                weight_bits: c.weight_bits,
            },
            other => other,
        };
        let n_convs = self.backbone_convs().len();
        self.layers
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let macs = info.geometry.macs() as u64;
                let w = if i < n_convs {
                    conv_work(info.id, macs, &conv, None)
                } else {
                    dense_work(info.id, macs, 32, 32)
                };
                LayerWork {
                    input_grad: if i == 0 { None } else { w.input_grad },
                    ..w
                }
            })
            .collect()
    }

    /// The PSG fallback fractions of the last backward pass, backbone convs first (without
    /// clearing them); `None` where a conv did not run backward.
    pub fn fallback_fractions(&self) -> Vec<Option<f64>> {
        self.backbone_convs()
            .into_iter()
            .chain(&self.embeds)
            .map(|c| *c.cell.lock().unwrap_or_else(PoisonError::into_inner))
            .collect()
    }
}

fn conv_work(id: LayerId, macs: u64, mode: &ConvMode, rho: Option<f64>) -> LayerWork {
    let (a, w) = mode.forward_bits();
    let mut work = dense_work(id, macs, a, w);
    if let ConvMode::Psg(c) = mode {
        work.weight_grad = Some(gemm(macs, a, c.grad_bits.min(32)));
        work.predictor = Some(gemm(macs, c.msb_act_bits, c.msb_grad_bits.min(32)));
        work.fallback_fraction = rho.unwrap_or(0.0).clamp(0.0, 1.0);
    }
    work
}

fn gemm(macs: u64, a: u8, b: u8) -> Gemm {
    Gemm {
        macs_per_sample: macs,
        a_bits: a,
        b_bits: b,
    }
}

fn dense_work(id: LayerId, macs: u64, a: u8, w: u8) -> LayerWork {
    LayerWork {
        layer: id,
        executed_fraction: 1.0,
        forward: gemm(macs, a, w),
        input_grad: Some(gemm(macs, 32, w)),
        weight_grad: Some(gemm(macs, a, 32)),
        predictor: None,
        fallback_fraction: 0.0,
    }
}

impl Block {
    fn residual(
        &self,
        xs: &Tensor,
        train: bool,
        mode: &ConvMode,
        taps: &mut dyn Taps,
    ) -> Result<Tensor> {
        let ys = self.conv1.tapped(xs, train, mode, taps)?;
        let ys = self.bn1.forward_t(&ys, train)?.relu()?;
        let ys = self.conv2.tapped(&ys, train, mode, taps)?;
        Ok(self.bn2.forward_t(&ys, train)?)
    }

    fn shortcut(
        &self,
        xs: &Tensor,
        train: bool,
        mode: &ConvMode,
        taps: &mut dyn Taps,
    ) -> Result<Tensor> {
        match &self.downsample {
            None => Ok(xs.clone()),
            Some((conv, bn)) => {
                let ys = conv.tapped(xs, train, mode, taps)?;
                Ok(bn.forward_t(&ys, train)?)
            }
        }
    }

    /// `m·Block(x) + (1 − m)·shortcut(x)`; `m = None` runs the block for every sample.
    fn forward(
        &self,
        xs: &Tensor,
        m: Option<&Tensor>,
        hard: Option<&[f32]>,
        opts: &ForwardOptions,
        mode: &ConvMode,
        taps: &mut dyn Taps,
    ) -> Result<Tensor> {
        let train = opts.train;
        // Taps see conv1, conv2, then the shortcut conv, in the plain ResNet's order; the
        // shortcut always runs on the whole batch (its batch norm sees every sample).
        let (Some(m), Some(hard)) = (m, hard) else {
            let r = self.residual(xs, train, mode, taps)?;
            let s = self.shortcut(xs, train, mode, taps)?;
            return Ok((r + s)?.relu()?);
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
            let r = self.residual(xs, train, mode, taps)?;
            let s = self.shortcut(xs, train, mode, taps)?;
            let full = (r + &s)?.relu()?;
            return blend(&full, &s, m);
        }
        if active.is_empty() {
            return self.shortcut(xs, train, mode, taps);
        }
        let ia = Tensor::new(active.as_slice(), xs.device())?;
        // Index-select needs contiguous storage; a training-mode batch norm (a projection
        // shortcut, or a previous block skipped for every sample) returns a transposed view.
        let xs = xs.contiguous()?;
        let r = self.residual(&xs.index_select(&ia, 0)?, train, mode, taps)?;
        let s = self.shortcut(&xs, train, mode, taps)?.contiguous()?;
        let sa = s.index_select(&ia, 0)?;
        let full = (r + &sa)?.relu()?;
        // The shortcut plus `m·(Block − shortcut)` added into the active rows: `Block` where the
        // gate is on (m = 1), the shortcut elsewhere, and the gates keep their straight-through
        // gradient. One scatter instead of blending, concatenating and reordering the batch.
        let m = m.index_select(&ia, 0)?;
        let delta = (full - &sa)?.broadcast_mul(&m.reshape((active.len(), 1, 1, 1))?)?;
        Ok(s.index_add(&ia, &delta, 0)?)
    }
}

impl Network for GatedResnet {
    fn arch(&self) -> &str {
        match self.config.depth {
            8 => "gated-resnet8",
            14 => "gated-resnet14",
            20 => "gated-resnet20",
            32 => "gated-resnet32",
            44 => "gated-resnet44",
            56 => "gated-resnet56",
            74 => "gated-resnet74",
            110 => "gated-resnet110",
            _ => "gated-resnet",
        }
    }

    fn input_shape(&self) -> [usize; 3] {
        [self.config.in_channels, 32, 32]
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    /// Deterministic gates (`π > 0.5`) where the network has them, real skipping; `train` only
    /// selects batch statistics and quantiser updates.
    fn forward_tapped(
        &self,
        xs: &Tensor,
        train: bool,
        taps: &mut dyn Taps,
    ) -> tensor_core::Result<Tensor> {
        let gating = if self.has_gates() {
            Gating::Gates {
                mode: GateMode::Deterministic,
            }
        } else {
            Gating::AllOn
        };
        let opts = ForwardOptions {
            train,
            gating,
            skip: SkipExecution::Gather,
        };
        let mut rng = tensor_core::rng(0, "deterministic-gates");
        match self.forward_gated(xs, &opts, &mut rng, taps) {
            Ok(f) => Ok(f.logits),
            Err(Error::Core(e)) => Err(e),
            Err(e) => Err(tensor_core::Error::Model(Box::new(e))),
        }
    }
}
