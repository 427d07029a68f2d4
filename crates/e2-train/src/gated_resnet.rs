//! The gated CIFAR ResNet of depth 6n + 2 (docs/e2-train.md §2): a residual backbone (3×3 stem
//! with 16 filters, three stages of `n` BasicBlocks at 16/32/64 channels, 1×1 stride-2
//! projection shortcuts with batch norm at stage transitions, global average pooling, FC) driven
//! one block at a time through [`ResidualNetwork`], with a SkipNet recurrent gate deciding per
//! sample whether blocks 1.. run, and convs that fake-quantise and predict sign gradients when
//! asked.
//!
//! The backbone is any [`ResidualNetwork`] (cnn-zoo's `resnet_with` builds the CIFAR ResNet; its
//! `ResnetInit::E2TrainReference` draws the reference's initialisation: convs `N(0, 2/(k²·C_out))`,
//! batch norm γ = 1, β = 0, the FC weight `N(0, 2/(out·in))` and PyTorch's default bias). Its
//! convs are computed by this crate's quantised convolution in their place
//! ([`Taps::substitute`]), on the backbone's own weight variables; everything else (batch norm,
//! the merge, pooling, the FC layer) is the backbone's. Gate parameters are `layer{s}.{i}.gate`
//! (the 1×1 embedding on block `(s, i)`'s output, deciding the next block) and
//! `control.rnn.*_l0`, `control.proj.*`. [`Network::layers`] lists the backbone's layers, so its
//! geometry is the plain network's; the gate embeddings follow in
//! [`GatedResnet::gate_layers`] with ids after the backbone's.
//!
//! Execution of a gated block over a batch ([`SkipExecution`]): `Masked` runs the block on every
//! sample and blends `m·Block + (1 − m)·shortcut` (the reference; needed for the straight-through
//! gradient of samples whose gate is off); `Gather` runs the block only on the samples whose gate
//! is on (index-select, run, scatter back) and not at all when none is, so batch-norm statistics
//! come from the executed samples only and gates that are off get no gradient from the loss. The
//! shortcut (identity or projection) always runs on the whole batch. The trainer prices what
//! ran: a masked block on every sample, a gathered one on the samples whose gate is on.

mod block;
mod qconv;
mod work;

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tensor_core::tensor::{DType, Tensor, Var, VarBuilder};
use tensor_core::{
    ConvParams, LayerConfig, LayerGeometry, LayerId, LayerInfo, LayerKind, Network,
    ResidualNetwork, Rng, Taps,
};

use crate::error::{Error, Result, bad};
use crate::selective_update::{
    GATE_DIM, GateMode, RecurrentGate, StochasticDepthConfig, straight_through_gate,
};
use crate::sign_gradient::PsgConfig;

use qconv::QConv;

/// What the convs compute.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ConvMode {
    /// Full-precision convs and gradients (32-bit operands in the ledger).
    Float,
    /// Fake-quantised forward (straight-through), ordinary gradients: the baseline that isolates
    /// PSG (docs/energy-models.md C.3, 8/32 widths).
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

/// Where a backbone layer sits, for the ledger (a block's residual branch runs on the samples
/// whose gate is on, everything else on every sample) and for the quantisers' sign (decision 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Stem,
    Residual(usize),
    Shortcut(usize),
    Head,
}

/// The gated CIFAR ResNet (built by [`gated_resnet`]).
pub struct GatedResnet {
    config: GatedResnetConfig,
    arch: String,
    backbone: Box<dyn ResidualNetwork>,
    /// Per backbone layer, in layer order: its quantised convolution (convs only).
    convs: Vec<Option<QConv>>,
    roles: Vec<Role>,
    embeds: Vec<QConv>,
    control: Option<RecurrentGate>,
    gate_layers: Vec<LayerInfo>,
}

impl std::fmt::Debug for GatedResnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatedResnet")
            .field("config", &self.config)
            .field("arch", &self.arch)
            .field("gates", &self.embeds.len())
            .finish_non_exhaustive()
    }
}

/// Records which layers a part of the backbone calls.
#[derive(Default)]
struct Calls(Vec<LayerId>);

impl Taps for Calls {
    fn post(&mut self, id: LayerId, _: &Tensor, _: &Tensor) -> tensor_core::Result<()> {
        self.0.push(id);
        Ok(())
    }
}

/// Runs the backbone's convs through the quantised convolutions and passes every hook on to the
/// caller's taps.
struct Quantised<'a> {
    net: &'a GatedResnet,
    train: bool,
    user: &'a mut dyn Taps,
}

impl Taps for Quantised<'_> {
    fn pre(&mut self, id: LayerId, input: &Tensor) -> tensor_core::Result<Option<Tensor>> {
        self.user.pre(id, input)
    }

    fn substitute(&mut self, id: LayerId, input: &Tensor) -> tensor_core::Result<Option<Tensor>> {
        match self.net.convs.get(id.0).and_then(Option::as_ref) {
            Some(conv) => Ok(Some(conv.forward(
                input,
                self.train,
                &self.net.config.conv,
            )?)),
            None => self.user.substitute(id, input),
        }
    }

    fn post(&mut self, id: LayerId, input: &Tensor, output: &Tensor) -> tensor_core::Result<()> {
        self.user.post(id, input, output)
    }
}

/// The role of every backbone layer, from one batch-1 evaluation-mode pass over its parts.
fn roles(backbone: &dyn ResidualNetwork, in_channels: usize, vb: &VarBuilder) -> Result<Vec<Role>> {
    let xs = Tensor::zeros((1, in_channels, 32, 32), vb.dtype(), vb.device())?;
    let mut roles = vec![None; backbone.layers().len()];
    let mut assign = |calls: Calls, role: Role| {
        for id in calls.0 {
            if let Some(slot) = roles.get_mut(id.0) {
                *slot = Some(role);
            }
        }
    };
    let mut calls = Calls::default();
    let mut ys = backbone.stem(&xs, false, &mut calls)?;
    assign(calls, Role::Stem);
    for k in 0..backbone.num_blocks() {
        let mut residual = Calls::default();
        let r = backbone.residual(k, &ys, false, &mut residual)?;
        assign(residual, Role::Residual(k));
        let mut shortcut = Calls::default();
        let s = backbone.shortcut(k, &ys, false, &mut shortcut)?;
        assign(shortcut, Role::Shortcut(k));
        ys = backbone.merge(&r, &s)?;
    }
    let mut head = Calls::default();
    backbone.head(&ys, &mut head)?;
    assign(head, Role::Head);
    roles
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.ok_or_else(|| {
                bad(
                    "backbone",
                    format!("layer #{i} is not called by the stem, a block or the head"),
                )
            })
        })
        .collect()
}

fn stage_name(k: usize, n: usize) -> String {
    format!("layer{}.{}", k / n + 1, k % n)
}

/// Builds the gated network around `backbone`, a CIFAR ResNet for `in_channels`×32×32 inputs
/// with `config`'s depth and classes (checked), adding the gate network from `vb` when
/// `config.gates` is set.
pub fn gated_resnet(
    config: GatedResnetConfig,
    backbone: Box<dyn ResidualNetwork>,
    vb: VarBuilder,
) -> Result<GatedResnet> {
    let config = config.validate()?;
    let expected = [config.in_channels, 32, 32];
    if backbone.num_blocks() != config.blocks()
        || backbone.num_classes() != config.num_classes
        || backbone.input_shape() != expected
    {
        return Err(bad(
            "backbone",
            format!(
                "{} has {} blocks, {} classes and input {:?}; the config asks for {} blocks, {} \
                 classes and input {expected:?}",
                backbone.arch(),
                backbone.num_blocks(),
                backbone.num_classes(),
                backbone.input_shape(),
                config.blocks(),
                config.num_classes,
            ),
        ));
    }
    if let Some((i, l)) = backbone
        .layers()
        .iter()
        .enumerate()
        .find(|(i, l)| l.id != LayerId(*i))
    {
        return Err(bad(
            "backbone",
            format!("layer {} ({}) sits at position {i}", l.id, l.name),
        ));
    }
    let roles = roles(backbone.as_ref(), config.in_channels, &vb)?;
    // Decision 8: the stem reads images and a block's first conv and shortcut read the block's
    // input, which may be a skipped transition's batch-norm output: signed. The other convs of a
    // residual branch read a ReLU output: unsigned.
    let mut first_in_block = vec![true; backbone.num_blocks()];
    let convs = backbone
        .layers()
        .iter()
        .zip(&roles)
        .map(|(l, role)| {
            if l.kind != LayerKind::Conv {
                return Ok(None);
            }
            let signed = match *role {
                Role::Residual(k) => std::mem::replace(&mut first_in_block[k], false),
                _ => true,
            };
            QConv::for_layer(l, signed).map(Some)
        })
        .collect::<Result<Vec<_>>>()?;
    let n = config.blocks() / 3;
    let first_gate_id = backbone.layers().len();
    let (embeds, control) = if config.gates {
        let mut embeds = Vec::new();
        for k in 0..config.blocks() - 1 {
            let c = backbone.block_channels(k);
            let vb = vb.pp(format!("{}.gate", stage_name(k, n)));
            embeds.push(QConv::embedding(
                LayerId(first_gate_id + k),
                vb,
                c,
                GATE_DIM,
            )?);
        }
        (embeds, Some(RecurrentGate::new(vb.pp("control"))?))
    } else {
        (Vec::new(), None)
    };
    let gate_layers = embeds
        .iter()
        .enumerate()
        .map(|(k, e)| {
            let c = backbone.block_channels(k);
            let config = LayerConfig::Conv {
                out_channels: GATE_DIM,
                params: ConvParams::square(1),
            };
            Ok(LayerInfo {
                id: e.id,
                name: format!("{}.gate", stage_name(k, n)),
                kind: LayerKind::Conv,
                geometry: config.geometry(&[1, c, 1, 1], &[1, GATE_DIM, 1, 1])?,
                weight: Var::from_tensor(&e.weight)?,
                bias: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(GatedResnet {
        config,
        arch: format!("gated-{}", backbone.arch()),
        backbone,
        convs,
        roles,
        embeds,
        control,
        gate_layers,
    })
}

impl GatedResnet {
    /// The configuration it was built with.
    pub fn config(&self) -> &GatedResnetConfig {
        &self.config
    }

    /// The backbone.
    pub fn backbone(&self) -> &dyn ResidualNetwork {
        self.backbone.as_ref()
    }

    /// Residual blocks.
    pub fn num_blocks(&self) -> usize {
        self.backbone.num_blocks()
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

    /// Every layer a ledger of this network names, with a geometry to price it by: the
    /// backbone's layers, the gate embeddings and, with gates, the recurrent gate as a fully
    /// connected layer of equal MACs per sample (one output over `macs` inputs; the gate is under
    /// 0.1% of a block's work, so its shape only matters for being priced at all).
    pub fn pricing_layers(&self) -> Result<Vec<(LayerId, LayerGeometry)>> {
        let mut layers: Vec<(LayerId, LayerGeometry)> = self
            .layers()
            .iter()
            .chain(&self.gate_layers)
            .map(|l| (l.id, l.geometry))
            .collect();
        if self.has_gates() {
            let macs = RecurrentGate::macs_per_step() as usize * self.embeds.len();
            layers.push((self.control_layer_id(), LayerGeometry::fc(macs, 1, 1, 1)?));
        }
        Ok(layers)
    }

    /// Ledger id of the recurrent gate (LSTM and projection), after the gate embeddings.
    pub fn control_layer_id(&self) -> LayerId {
        LayerId(self.layers().len() + self.embeds.len())
    }

    /// Weights of every conv, backbone then gate embeddings: under PSG with signs on, the
    /// parameters updated with sign gradients.
    pub fn conv_weights(&self) -> Vec<&Tensor> {
        self.convs
            .iter()
            .flatten()
            .chain(&self.embeds)
            .map(|c| &c.weight)
            .collect()
    }

    /// The running activation scale of every quantised convolution (backbone convs, then gate
    /// embeddings; `None` before the first training pass): state outside the variables that
    /// evaluation reads, so a checkpoint must carry it.
    pub fn activation_scales(&self) -> Vec<Option<f32>> {
        self.qconvs().map(QConv::running_scale).collect()
    }

    /// Restores the values of [`GatedResnet::activation_scales`].
    pub fn set_activation_scales(&self, scales: &[Option<f32>]) -> Result<()> {
        let n = self.qconvs().count();
        if scales.len() != n {
            return Err(bad(
                "activation scales",
                format!("{} given for {n} quantised convolutions", scales.len()),
            ));
        }
        for (conv, &s) in self.qconvs().zip(scales) {
            conv.set_running_scale(s);
        }
        Ok(())
    }

    fn qconvs(&self) -> impl Iterator<Item = &QConv> {
        self.convs.iter().flatten().chain(&self.embeds)
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
        let blocks = self.num_blocks();
        let mut out = GatedForward {
            logits: xs.clone(),
            masks: Vec::new(),
            decisions: Vec::new(),
            probabilities: Vec::new(),
            executed: Vec::with_capacity(blocks),
        };
        let mut taps = Quantised {
            net: self,
            train,
            user: taps,
        };
        let mut ys = self.backbone.stem(xs, train, &mut taps)?;
        let mut state = match control {
            Some((c, _)) => Some(c.zero_state(b)?),
            None => None,
        };
        let gated_blocks = blocks - 1;
        for k in 0..blocks {
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
            let gate = (m.as_ref(), hard.as_deref());
            ys = block::forward(self.backbone.as_ref(), k, &ys, gate, opts, &mut taps)?;
        }
        out.logits = self.backbone.head(&ys, &mut taps)?;
        Ok(out)
    }
}

impl Network for GatedResnet {
    fn arch(&self) -> &str {
        &self.arch
    }

    fn input_shape(&self) -> [usize; 3] {
        [self.config.in_channels, 32, 32]
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn layers(&self) -> &[LayerInfo] {
        self.backbone.layers()
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
        Ok(self.forward_gated(xs, &opts, &mut rng, taps)?.logits)
    }
}
