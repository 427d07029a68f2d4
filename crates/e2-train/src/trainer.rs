//! The E2-Train loop: stochastic mini-batch dropping, selective layer update (or stochastic
//! depth) and predictive sign gradients combined as configured, recording every iteration's work
//! in a [`WorkLedger`] and reporting through an [`Observer`].
//!
//! Per iteration `i` (the global index): set the learning rate of index `i`; if SMD drops it,
//! record `Dropped` and touch nothing else, not even its batch (decision 3: true skip, parameters
//! and momentum untouched; the data order moves on as in the reference, because the source
//! serves batch `i` by its index). Otherwise pull batch `i` from the source and run the gated
//! forward pass (every block, no gates, during the SLU warm-up: decision 16), the loss
//! `CE + reg·β·Σ m` with SLU after it, one backward pass (PSG convs rewrite their own weight
//! gradients inside it), one momentum-SGD step, and record each layer's work. Evaluations run every
//! `eval_every` global iterations whether or not that iteration was dropped (decision 12), and
//! at the end, with deterministic gates and real skipping over every sample of the source.
//!
//! [`train_resumable`] also hands out a [`Checkpoint`] every so many iterations and continues
//! from one: parameters, momentum buffers, the positions of the SMD and gate generators and the
//! outcome so far, so that a resumed run ends bit for bit where an uninterrupted one does.
//!
//! The observer hears `on_batch_end` for executed iterations only (a dropped one has no loss);
//! returning `Break` stops the run there with [`tensor_core::Error::Interrupted`] (the network's
//! variables hold the model as it was after that iteration). A loss that becomes NaN or infinite
//! stops it with [`tensor_core::Error::Diverged`], before the update. Both name the
//! [`Step`] in phase `training`, epoch `i / batches_per_epoch`, batch `i % batches_per_epoch`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use tensor_core::tensor::nn;
use tensor_core::tensor::{DType, Optimizer, Tensor, TensorId, Var};
use tensor_core::{
    BatchSource, BatchStats, EvalStats, Iteration, MomentumSgd, NoTaps, Observer, RunStart,
    SgdConfig, Step, WorkLedger, finite_loss,
};

use crate::config::E2TrainConfig;
use crate::error::{Error, Result, bad, from_core};
use crate::gated_resnet::{ConvMode, ForwardOptions, GatedResnet, Gating, SkipExecution};
use crate::minibatch_drop::MinibatchDrop;
use crate::selective_update::{GateMode, compute_regulariser, executed_percentage};

/// What a run trains on.
pub struct TrainRun<'a> {
    /// The network, built from the config's `model` (checked).
    pub net: &'a GatedResnet,
    /// Every trainable variable (weights, batch-norm affine parameters, gate parameters), in a
    /// deterministic order (e.g. `SeededInit::named_vars`).
    pub params: Vec<Var>,
    /// Training batches (`images [b, c, 32, 32]`, `labels [b] u32`), at least one per epoch.
    pub train: &'a mut dyn BatchSource,
    /// Held-out batches for evaluation, if any.
    pub eval: Option<&'a mut dyn BatchSource>,
}

/// Where a run stands after its first `done` iterations, as plain data: with the tensors of a
/// [`Checkpoint`], everything [`train_resumable`] needs to continue it exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Iterations completed.
    pub done: usize,
    /// The ledger, history and evaluations of those iterations.
    pub outcome: E2TrainOutcome,
    /// Word position of the SMD generator (`None` without SMD).
    #[serde(with = "position_text::optional")]
    pub smd_position: Option<u128>,
    /// Word position of the gate generator.
    #[serde(with = "position_text")]
    pub gate_position: u128,
    /// The network's running activation scales ([`GatedResnet::activation_scales`]).
    pub activation_scales: Vec<Option<f32>>,
}

/// Generator positions as decimal strings: JSON numbers stop at 64 bits, positions do not.
mod position_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }

    pub(super) mod optional {
        use serde::{Deserialize, Deserializer, Serializer};

        pub(in super::super) fn serialize<S: Serializer>(
            v: &Option<u128>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => super::serialize(v, s),
                None => s.serialize_none(),
            }
        }

        pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<u128>, D::Error> {
            #[derive(Deserialize)]
            struct Text(#[serde(deserialize_with = "super::deserialize")] u128);
            Ok(Option::<Text>::deserialize(d)?.map(|t| t.0))
        }
    }
}

/// A run between two iterations: its [`TrainState`], the values of [`TrainRun::params`] (batch-norm
/// running statistics included, as variables) and their momentum buffers, both in the order of
/// `params` (`None` for a variable not stepped yet).
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The plain-data state.
    pub state: TrainState,
    /// Parameter values, in `params` order.
    pub params: Vec<Tensor>,
    /// Momentum buffers, in `params` order.
    pub momentum: Vec<Option<Tensor>>,
}

/// How often [`train_resumable`] hands out a [`Checkpoint`], and to what. A checkpoint is taken
/// after every `every`-th iteration (and evaluation due there) except the last; `save` failing
/// stops the run with its error.
pub struct Checkpointing<'a> {
    /// Iterations between two checkpoints (0: none).
    pub every: usize,
    /// Receives each checkpoint.
    pub save: &'a mut dyn FnMut(&Checkpoint) -> Result<()>,
}

/// One iteration of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterationLog {
    /// Global iteration index.
    pub iteration: usize,
    /// Learning rate of the index.
    pub lr: f64,
    /// Training loss (`None` when dropped).
    pub loss: Option<f64>,
    /// Executed percentage of gated (block, sample) pairs (`None` when dropped; 100 without
    /// gating).
    pub executed_percentage: Option<f64>,
}

/// One evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalLog {
    /// Iterations completed when it ran.
    pub iteration: usize,
    /// Top-1 accuracy in `[0, 1]`.
    pub accuracy: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Executed percentage of gated (block, sample) pairs, the training formula (decision 6).
    pub executed_percentage: f64,
    /// Samples evaluated (every sample of the source).
    pub samples: usize,
}

/// Result of [`train`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct E2TrainOutcome {
    /// The work executed, iteration by iteration (energy-model prices it).
    pub ledger: WorkLedger,
    /// Every iteration.
    pub history: Vec<IterationLog>,
    /// Every evaluation.
    pub evals: Vec<EvalLog>,
}

impl E2TrainOutcome {
    /// Parameter updates performed (executed iterations).
    pub fn updates(&self) -> u64 {
        self.ledger.executed()
    }
}

/// Multiply-accumulates a ledger records, operand widths ignored: `Σ f·B·(forward + input
/// gradient + weight gradient)`, where a predicted weight gradient counts its predictor plus the
/// fallback share `ρ` of the full one. A MAC count for tests and sanity checks; energy-model
/// prices the widths.
pub fn executed_macs(ledger: &WorkLedger) -> f64 {
    ledger
        .iterations()
        .iter()
        .map(|it| match it {
            Iteration::Dropped => 0.0,
            Iteration::Executed { batch, layers } => layers
                .iter()
                .map(|l| {
                    let m =
                        |g: Option<tensor_core::Gemm>| g.map_or(0.0, |g| g.macs_per_sample as f64);
                    let gw = match l.predictor {
                        Some(p) => {
                            p.macs_per_sample as f64 + l.fallback_fraction * m(l.weight_grad)
                        }
                        None => m(l.weight_grad),
                    };
                    l.executed_fraction
                        * *batch as f64
                        * (l.forward.macs_per_sample as f64 + m(l.input_grad) + gw)
                })
                .sum(),
        })
        .sum()
}

/// The ledger of standard training of `net`'s backbone under `config.baseline()`: every one of
/// the `iterations` executed, iteration `i` on `batch_of(i)` samples (the size of the batch the
/// data source would serve, so an epoch's short last batch is priced as short), every block run,
/// no gates, no predictor.
pub fn baseline_ledger(
    net: &GatedResnet,
    config: &E2TrainConfig,
    batch_of: &dyn Fn(usize) -> usize,
) -> Result<WorkLedger> {
    let base = config.baseline();
    let work = net.standard_work(base.model.conv);
    let mut ledger = WorkLedger::new();
    for i in 0..base.iterations {
        ledger.record_executed(batch_of(i), work.clone())?;
    }
    Ok(ledger)
}

fn check_batch(net: &GatedResnet, xs: &Tensor, ys: &Tensor) -> Result<usize> {
    let [c, h, w] = tensor_core::Network::input_shape(net);
    let b = xs.dims().first().copied().unwrap_or(0);
    if xs.dims() != [b, c, h, w] || b == 0 {
        return Err(Error::BadBatch {
            what: "images",
            expected: vec![0, c, h, w],
            got: xs.dims().to_vec(),
        });
    }
    if ys.dims() != [b] || ys.dtype() != DType::U32 {
        return Err(Error::BadBatch {
            what: "labels (u32)",
            expected: vec![b],
            got: ys.dims().to_vec(),
        });
    }
    Ok(b)
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// What [`evaluate`] calls its source in [`tensor_core::Error::EmptyEvaluation`].
const EVAL_SOURCE: &str = "the e2-train evaluation source";

/// Evaluates `net` on every batch of epoch 0 of `source` ([`tensor_core::evaluate`]) with
/// evaluation gating: deterministic gates (`π > 0.5`) for SLU, the survival-weighted blend for
/// stochastic depth, every block otherwise; blocks are skipped for real. The gates draw from the
/// run's `eval` stream; a source without samples is [`tensor_core::Error::EmptyEvaluation`].
pub fn evaluate(
    net: &GatedResnet,
    config: &E2TrainConfig,
    source: &mut dyn BatchSource,
    iteration: usize,
) -> Result<EvalLog> {
    let opts = ForwardOptions {
        train: false,
        gating: eval_gating(config),
        skip: SkipExecution::Gather,
    };
    let gated = matches!(opts.gating, Gating::Gates { .. });
    let mut rng = tensor_core::rng(config.seed, "eval");
    let mut decisions = Vec::new();
    let eval = tensor_core::evaluate(EVAL_SOURCE, source, |xs| {
        let out = net.forward_gated(xs, &opts, &mut rng, &mut NoTaps)?;
        if gated {
            decisions.extend(out.decisions);
        }
        Ok(out.logits)
    })
    .map_err(from_core)?;
    Ok(EvalLog {
        iteration,
        accuracy: eval.accuracy,
        loss: eval.loss,
        executed_percentage: executed_percentage(&decisions),
        samples: eval.samples,
    })
}

/// Where iteration `i = epoch·batches_per_epoch + batch` of a run is, for the stop and divergence
/// errors.
fn step(epoch: usize, batch: usize) -> Step {
    Step::new("training", epoch, batch)
}

fn train_gating(config: &E2TrainConfig) -> Gating {
    match (config.slu, config.stochastic_depth) {
        (Some(_), _) => Gating::Gates {
            mode: GateMode::Stochastic,
        },
        (None, Some(sd)) => Gating::StochasticDepth(sd),
        (None, None) => Gating::AllOn,
    }
}

fn eval_gating(config: &E2TrainConfig) -> Gating {
    match train_gating(config) {
        Gating::Gates { .. } => Gating::Gates {
            mode: GateMode::Deterministic,
        },
        other => other,
    }
}

/// Trains `run.net` as `config` says; see the module docs for the procedure. The network's
/// variables hold the trained model afterwards.
pub fn train(
    run: TrainRun<'_>,
    config: &E2TrainConfig,
    observer: &mut dyn Observer,
) -> Result<E2TrainOutcome> {
    train_resumable(run, config, observer, None, None)
}

/// [`train`], continuing from `resume` (a checkpoint of the same configuration, network and
/// data) when given, and handing checkpoints to `checkpointing`.
pub fn train_resumable(
    run: TrainRun<'_>,
    config: &E2TrainConfig,
    observer: &mut dyn Observer,
    resume: Option<Checkpoint>,
    mut checkpointing: Option<Checkpointing<'_>>,
) -> Result<E2TrainOutcome> {
    let config = config.clone().validate()?;
    let TrainRun {
        net,
        params,
        train: source,
        mut eval,
    } = run;
    if *net.config() != config.model {
        return Err(bad("model", "differs from the network that was given"));
    }
    let per_epoch = source.batches_per_epoch();
    if per_epoch == 0 {
        return Err(bad("train", "the batch source has no batches"));
    }
    // Sign-updated weights step with their own rate (decision 11); each optimiser only touches
    // its own variables, so a scale of 1 trains exactly as one optimiser would.
    let sign_scale = match config.model.conv {
        ConvMode::Psg(c) if c.sign => Some(config.sign_lr_scale),
        _ => None,
    };
    let signed: HashSet<TensorId> = match sign_scale {
        Some(_) => net.conv_weights().iter().map(|w| w.id()).collect(),
        None => HashSet::new(),
    };
    // Where each of `params` went: (sign optimiser?, index in its optimiser).
    let mut placement = Vec::with_capacity(params.len());
    let (mut sign_params, mut plain_params) = (Vec::new(), Vec::new());
    for v in params.iter().cloned() {
        if signed.contains(&v.as_tensor().id()) {
            placement.push((true, sign_params.len()));
            sign_params.push(v);
        } else {
            placement.push((false, plain_params.len()));
            plain_params.push(v);
        }
    }
    let lr_at = |i: usize| config.lr.at(config.sgd.lr, i, config.iterations);
    let optimiser = |vars, scale: f64| {
        MomentumSgd::with_config(
            vars,
            SgdConfig {
                lr: lr_at(0) * scale,
                ..config.sgd
            },
        )
    };
    let mut sgd = optimiser(plain_params, 1.0)?;
    let mut sign_sgd = match sign_scale {
        Some(scale) if !sign_params.is_empty() => Some((optimiser(sign_params, scale)?, scale)),
        _ => None,
    };
    let mut smd_rng = config.smd.map(|_| tensor_core::rng(config.seed, "smd"));
    let mut gate_rng = tensor_core::rng(config.seed, "gates");
    let mut outcome = E2TrainOutcome {
        ledger: WorkLedger::new(),
        history: Vec::with_capacity(config.iterations),
        evals: Vec::new(),
    };
    let mut start = 0;
    if let Some(c) = resume {
        let state = c.state;
        if state.done >= config.iterations || state.smd_position.is_some() != smd_rng.is_some() {
            return Err(bad(
                "resume",
                format!(
                    "a checkpoint after {} iterations{} does not continue a run of {} iterations{}",
                    state.done,
                    if state.smd_position.is_some() {
                        " with SMD"
                    } else {
                        ""
                    },
                    config.iterations,
                    if smd_rng.is_some() { " with SMD" } else { "" },
                ),
            ));
        }
        if c.params.len() != params.len() || c.momentum.len() != params.len() {
            return Err(bad(
                "resume",
                format!(
                    "the checkpoint holds {} parameters and {} momentum buffers for {} variables",
                    c.params.len(),
                    c.momentum.len(),
                    params.len()
                ),
            ));
        }
        for (v, t) in params.iter().zip(&c.params) {
            v.set(t)?;
        }
        let mut plain = vec![None; sgd.buffers().len()];
        let mut sign = vec![None; sign_sgd.as_ref().map_or(0, |(o, _)| o.buffers().len())];
        for (&(is_sign, k), b) in placement.iter().zip(c.momentum) {
            if is_sign { sign[k] = b } else { plain[k] = b }
        }
        sgd.set_buffers(plain)?;
        if let Some((opt, _)) = sign_sgd.as_mut() {
            opt.set_buffers(sign)?;
        }
        if let (Some(r), Some(p)) = (smd_rng.as_mut(), state.smd_position) {
            r.set_word_pos(p);
        }
        gate_rng.set_word_pos(state.gate_position);
        net.set_activation_scales(&state.activation_scales)?;
        outcome = state.outcome;
        start = state.done;
    }
    let mut drop = match (config.smd, smd_rng) {
        (Some(s), Some(r)) => Some(MinibatchDrop::new(s, r)?),
        _ => None,
    };
    let gating = train_gating(&config);
    let opts = ForwardOptions {
        train: true,
        gating,
        skip: config.skip,
    };
    observer.on_run_start(&RunStart {
        name: format!(
            "e2-train {} seed {}",
            tensor_core::Network::arch(net),
            config.seed
        ),
        epochs: config.iterations.div_ceil(per_epoch),
        batches_per_epoch: per_epoch,
    });
    for i in start..config.iterations {
        let (epoch, index) = (i / per_epoch, i % per_epoch);
        if index == 0 || i == start {
            observer.on_epoch_start(epoch);
        }
        let lr = lr_at(i);
        sgd.set_learning_rate(lr);
        if let Some((opt, scale)) = sign_sgd.as_mut() {
            opt.set_learning_rate(lr * *scale);
        }
        let dropped = drop.as_mut().is_some_and(MinibatchDrop::next_dropped);
        if dropped {
            outcome.ledger.record_dropped();
            outcome.history.push(IterationLog {
                iteration: i,
                lr,
                loss: None,
                executed_percentage: None,
            });
        } else {
            // A dropped iteration costs only its draw: its batch is never prepared (sources
            // serve any (epoch, index) on its own, so the next batch does not change).
            let (xs, ys) = source.batch(epoch, index)?;
            let b = check_batch(net, &xs, &ys)?;
            let warming = config.slu.is_some_and(|s| i < s.warmup);
            let opts = if warming {
                ForwardOptions {
                    gating: Gating::AllOn,
                    ..opts
                }
            } else {
                opts
            };
            let out = net.forward_gated(&xs, &opts, &mut gate_rng, &mut NoTaps)?;
            let cp = executed_percentage(&out.decisions);
            let mut loss = nn::loss::cross_entropy(&out.logits, &ys)?;
            if let Some(slu) = &config.slu
                && !warming
                && let Some(reg) = compute_regulariser(&out.masks, cp, slu)?
            {
                loss = (loss + reg)?;
            }
            let value = finite_loss(scalar(&loss)?, || step(epoch, index))?;
            let grads = loss.backward()?;
            sgd.step_grads(&grads)?;
            if let Some((opt, _)) = sign_sgd.as_mut() {
                opt.step_grads(&grads)?;
            }
            // A masked block ran on every sample whatever its gate said (its output is blended
            // away, not skipped), so the ledger prices it as executed; only gathered blocks
            // leave the samples whose gate is off out of the work.
            let executed = match opts.skip {
                SkipExecution::Gather => out.executed.clone(),
                SkipExecution::Masked => vec![1.0; out.executed.len()],
            };
            let work = net.layer_work(&executed, config.slu.is_some() && !warming)?;
            outcome.ledger.record_executed(b, work)?;
            outcome.history.push(IterationLog {
                iteration: i,
                lr,
                loss: Some(value),
                executed_percentage: Some(cp),
            });
            let stats = BatchStats {
                epoch,
                batch: index,
                loss: value,
                lr,
                samples: b,
            };
            if observer.on_batch_end(&stats).is_break() {
                return Err(tensor_core::Error::Interrupted {
                    at: step(epoch, index),
                }
                .into());
            }
        }
        let last = i + 1 == config.iterations;
        let due = config.eval_every > 0 && (i + 1).is_multiple_of(config.eval_every);
        if let Some(source) = eval.as_deref_mut()
            && (due || last)
        {
            let log = evaluate(net, &config, source, i + 1)?;
            observer.on_eval(&EvalStats {
                epoch,
                split: "val".into(),
                accuracy: log.accuracy,
                loss: log.loss,
                samples: log.samples,
            });
            outcome.evals.push(log);
        }
        if let Some(c) = checkpointing.as_mut()
            && c.every > 0
            && (i + 1).is_multiple_of(c.every)
            && !last
        {
            // Deep copies: the optimisers update parameters and buffers in place.
            let momentum = placement
                .iter()
                .map(|&(is_sign, k)| {
                    let buffer = match (is_sign, sign_sgd.as_ref()) {
                        (true, Some((opt, _))) => &opt.buffers()[k],
                        _ => &sgd.buffers()[k],
                    };
                    buffer.as_ref().map(Tensor::copy).transpose()
                })
                .collect::<std::result::Result<_, _>>()?;
            let checkpoint = Checkpoint {
                state: TrainState {
                    done: i + 1,
                    outcome: outcome.clone(),
                    smd_position: drop.as_ref().map(MinibatchDrop::position),
                    gate_position: gate_rng.get_word_pos(),
                    activation_scales: net.activation_scales(),
                },
                params: params
                    .iter()
                    .map(|v| v.as_tensor().copy())
                    .collect::<std::result::Result<_, _>>()?,
                momentum,
            };
            (c.save)(&checkpoint)?;
        }
    }
    Ok(outcome)
}
