//! Typed configuration of an E2-Train run, validated once before it starts, and the named presets.

use serde::{Deserialize, Serialize};
use tensor_core::{LrDecay, LrSchedule, SgdConfig, Warmup};

use crate::error::{Result, bad};
use crate::gated_resnet::{ConvMode, GatedResnetConfig, SkipExecution};
use crate::minibatch_drop::{SmdConfig, paper_smd_schedule};
use crate::selective_update::{SluConfig, StochasticDepthConfig};
use crate::sign_gradient::{PsgConfig, Threshold};

/// Everything a run needs besides data and an observer. PSG is a property of the network's convs
/// ([`GatedResnetConfig::conv`]); selective layer update needs a network with gates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct E2TrainConfig {
    /// The network to build (and to check the given network against).
    pub model: GatedResnetConfig,
    /// Iterations, dropped ones included (the global index the schedule runs on); ≥ 1.
    pub iterations: usize,
    /// Base learning rate, momentum and weight decay (reference: 0.1, 0.9, 1e-4).
    pub sgd: SgdConfig,
    /// Learning-rate schedule on the global iteration index: iteration `i` trains at
    /// `lr.at(sgd.lr, i, iterations)`.
    pub lr: LrSchedule,
    /// Stochastic mini-batch dropping; `None` trains on every batch.
    pub smd: Option<SmdConfig>,
    /// Selective layer update; `None` runs every block.
    pub slu: Option<SluConfig>,
    /// The stochastic-depth baseline; exclusive with `slu`.
    pub stochastic_depth: Option<StochasticDepthConfig>,
    /// How gated blocks run in training. Default `Masked` (the reference; keeps the
    /// straight-through gradient of gates that are off). Evaluation always skips for real.
    pub skip: SkipExecution,
    /// Iterations between evaluations, counted on the global index so dropped iterations do not
    /// hide any (decision 12); 0 evaluates only at the end.
    pub eval_every: usize,
    /// Seed of every random stream of the run (drops, gates, stochastic depth).
    pub seed: u64,
    /// Learning rate of sign-updated weights (PSG convs with signs on) relative to the others'
    /// (decision 11). The reference shares one rate (1.0): a step of `lr` per element, momentum
    /// included up to `10·lr`, that only batch norm's scale invariance absorbs, and the gate
    /// embedding convs have no batch norm. Finite, > 0; 1.0 when absent.
    #[serde(default = "unit_scale")]
    pub sign_lr_scale: f64,
}

const QUICK20_ITERS: usize = 1_200;
const QUICK20_TARGET: f64 = 65.0;
const QUICK20_BETA: f64 = 1e-2;
const QUICK20_WARMUP: usize = QUICK20_ITERS / 10;
const QUICK20_TAU: f64 = 1e-3;
const QUICK20_SIGN_LR_SCALE: f64 = 0.01;

fn unit_scale() -> f64 {
    1.0
}

impl E2TrainConfig {
    /// ResNet-74 on CIFAR-10 with SMD (p = 0.5), SLU and PSG (reference defaults), as in §4 of the
    /// paper and the reference code: batch 128 (the data source's), SGD momentum 0.9, weight
    /// decay 1e-4, lr 0.1 with ×0.1 at 42,666 and 64,000 over 85,333 iterations (decision 2: the
    /// ×4/3-stretched schedule, so both decays fire), evaluation every 1,000 iterations.
    /// `slu_target` is the executed percentage the gates are pushed toward (decision 1: the paper's
    /// values are unverified, the reference's default of 100 saves nothing).
    pub fn paper_cifar10_resnet74(slu_target: f64) -> Self {
        Self {
            model: GatedResnetConfig {
                depth: 74,
                num_classes: 10,
                in_channels: 3,
                conv: ConvMode::Psg(PsgConfig::reference()),
                gates: true,
            },
            iterations: 85_333,
            sgd: SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 1e-4,
            },
            lr: paper_smd_schedule(),
            smd: Some(SmdConfig { p: 0.5 }),
            slu: Some(SluConfig::with_target(slu_target)),
            stochastic_depth: None,
            skip: SkipExecution::Masked,
            eval_every: 1_000,
            seed: 0,
            sign_lr_scale: 1.0,
        }
    }

    /// ResNet-110 on CIFAR-100, as [`Self::paper_cifar10_resnet74`] plus the reference's
    /// ResNet-110 warm-up (lr 0.01 for the first 400 iterations).
    pub fn paper_cifar100_resnet110(slu_target: f64) -> Self {
        let mut c = Self::paper_cifar10_resnet74(slu_target);
        c.model.depth = 110;
        c.model.num_classes = 100;
        c.lr.warmup = Some(Warmup {
            iterations: 400,
            lr: 0.01,
        });
        c
    }

    /// A quick CPU run: gated ResNet-8, 10 classes, 200 iterations (lr 0.1, ×0.1 at 100 and
    /// 150), SMD 0.5, SLU with target 50%, PSG with the reference defaults, evaluation every 50
    /// iterations.
    pub fn quick_cpu_resnet8() -> Self {
        let mut c = Self::paper_cifar10_resnet74(50.0);
        c.model.depth = 8;
        c.iterations = 200;
        c.lr = LrSchedule::new(LrDecay::Step {
            milestones: vec![100, 150],
            gamma: 0.1,
        });
        c.eval_every = 50;
        c
    }

    /// The CPU preset of the quick reproduction: gated ResNet-20, 10 classes, 1,200 iterations
    /// (made for batch 16; lr 0.1, ×0.1 at 800 and 1,000: with few updates every variant, the
    /// baseline included, ends better for the longer first phase), SMD 0.5, gated blocks masked
    /// in training as in the reference, evaluation every 100 iterations. Where the reference's
    /// settings are made for 64k iterations of batch 128 they are changed, each a decision of
    /// docs/e2-train.md §7 or of the crate docs:
    /// - SLU target 65% with β = 1e-2 (decision 5): at batch 16 the reference's 1e-5 moves a
    ///   gate by far less than the cross-entropy does, and the executed share drifts wherever
    ///   the loss takes it instead of toward the target;
    /// - gates engage after a warm-up of the first 120 iterations with every block on
    ///   (decision 16);
    /// - PSG with the relative threshold 1e-3·max|G_m| (decision 9): the reference's absolute
    ///   5e-5 sends most weight-gradient entries of a small network to the full-precision
    ///   fallback, so PSG would cost more than it saves;
    /// - sign-updated weights at 0.01 of the learning rate (decision 11): the reference's step
    ///   of 0.1 per element (momentum included, up to 1.0) throws the gates' embedding convs,
    ///   which have no batch norm, about in a few hundred iterations.
    pub fn quick_cpu_resnet20() -> Self {
        let mut c = Self::paper_cifar10_resnet74(QUICK20_TARGET);
        c.model.depth = 20;
        c.iterations = QUICK20_ITERS;
        c.lr = LrSchedule::new(LrDecay::Step {
            milestones: vec![QUICK20_ITERS * 2 / 3, QUICK20_ITERS * 5 / 6],
            gamma: 0.1,
        });
        c.slu = Some(SluConfig {
            target: QUICK20_TARGET,
            beta: QUICK20_BETA,
            warmup: QUICK20_WARMUP,
        });
        if let ConvMode::Psg(p) = &mut c.model.conv {
            p.threshold = Threshold::Relative(QUICK20_TAU);
        }
        c.sign_lr_scale = QUICK20_SIGN_LR_SCALE;
        c.eval_every = 100;
        c
    }

    /// Standard training of the same backbone on the same nominal schedule: every batch, every
    /// block, no gates, ordinary gradients, with the forward quantised as this run's (8-bit under
    /// PSG), so savings isolate the three techniques.
    pub fn baseline(&self) -> Self {
        let conv = match self.model.conv {
            ConvMode::Psg(c) => ConvMode::Quantized {
                act_bits: c.act_bits,
                weight_bits: c.weight_bits,
            },
            other => other,
        };
        Self {
            model: GatedResnetConfig {
                conv,
                gates: false,
                ..self.model
            },
            smd: None,
            slu: None,
            stochastic_depth: None,
            ..self.clone()
        }
    }

    /// Checks every range and combination; only a validated config runs.
    pub fn validate(self) -> Result<Self> {
        self.model.validate()?;
        if self.iterations == 0 {
            return Err(bad("iterations", "must be at least 1"));
        }
        if !(self.sign_lr_scale.is_finite() && self.sign_lr_scale > 0.0) {
            return Err(bad(
                "sign_lr_scale",
                format!("{} must be finite and > 0", self.sign_lr_scale),
            ));
        }
        let sgd = self.sgd.validate()?;
        let lr = self.lr.clone().validate()?;
        if let Some(s) = self.smd {
            s.validate()?;
        }
        if let Some(s) = self.slu {
            s.validate()?;
            if !self.model.gates {
                return Err(bad("slu", "needs a model built with gates"));
            }
        }
        if let Some(sd) = self.stochastic_depth {
            sd.validate()?;
            if self.slu.is_some() {
                return Err(bad(
                    "stochastic_depth",
                    "is a baseline for selective layer update, not a companion",
                ));
            }
        }
        Ok(Self { sgd, lr, ..self })
    }
}
