//! The energy-constrained trainer: W-phases (momentum SGD with periodic projection onto the energy
//! budget) alternating with M-phases (Adam on input masks with an L0 projection), as in
//! `docs/sparse-projection.md` §7.
//!
//! Decisions, each deliberate:
//! - The budget, the normaliser and the schedule's step all use the relaxed evaluator; the energy
//!   model's own evaluation (exact where it has one) is recorded next to it.
//! - A masked run whose target lies below the floor of the current masks runs mask-only rounds
//!   (M-phase without a W-phase) until the floor drops below the target; if the masks run out of
//!   rounds or density first, the run fails with [`Error::BudgetInfeasible`]. The reference
//!   silently raises the budget to the floor instead.
//! - A masked run stops when a round's final validation accuracy does not beat the previous
//!   round's, and returns the best round's model (weights and masks), which satisfies the budget
//!   like every round's.
//! - During an M-phase the weights' gradients are computed by the backward pass but never
//!   applied.
//!
//! A diverged loss, an observer's stop and an empty validation set end the run with tensor-core's
//! [`tensor_core::Error::Diverged`], [`tensor_core::Error::Interrupted`] (both naming the
//! [`Step`], e.g. `W-phase of round 1, epoch 2 batch 5`) and
//! [`tensor_core::Error::EmptyEvaluation`], wrapped in [`Error::Core`].

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use tensor_core::tensor::nn::{self, AdamW, ParamsAdamW};
use tensor_core::tensor::{Device, Optimizer, Tensor, Var};
use tensor_core::{
    BatchSource, BatchStats, Bitmap, EvalStats, GradStore, LayerSparsity, LayerWorkload,
    MomentumSgd, Network, NoTaps, Observer, Precision, ProjectionStats, RelativeBudget, RunStart,
    Step, Support, WeightCostModel, WeightCosts, finite_loss,
};

use crate::config::{ConstrainedConfig, Projection};
use crate::cost::{floor_energy, layer_relaxed_energy, project_layers, project_layers_magnitude};
use crate::error::{Error, Result};
use crate::input_mask::InputMasks;
use crate::schedule::{BudgetSchedule, projects_at};

/// What a constrained run works on.
pub struct ConstrainedRun<'a> {
    /// The network being compressed, initialised from the dense model.
    pub student: &'a dyn Network,
    /// Every trainable variable of the student (weights, biases, batch-norm affine parameters).
    pub params: Vec<Var>,
    /// The frozen dense model for distillation; required when `distillation > 0`.
    pub teacher: Option<&'a dyn Network>,
    /// Prices layers and gives per-weight costs.
    pub model: &'a dyn WeightCostModel,
    /// Training batches; epochs count across phases and rounds.
    pub train: &'a mut dyn BatchSource,
    /// Held-out batches for the per-epoch accuracy and the round-stopping rule.
    pub val: &'a mut dyn BatchSource,
}

/// Energy of the student at one moment, relative to the dense relaxed energy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyPoint {
    /// Relaxed energy (the constraint's evaluator) over the dense relaxed energy.
    pub relaxed: f64,
    /// The energy model's own evaluation of the weight and mask supports over the dense relaxed
    /// energy.
    pub modelled: f64,
    /// Nonzero weights over all projected layers.
    pub nonzero_weights: u64,
    /// Nonzero input-mask entries (equals the mask size when unmasked).
    pub nonzero_inputs: u64,
}

/// One epoch of one phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// Outer round.
    pub round: usize,
    /// `W` or `M`.
    pub phase: char,
    /// Epoch within the phase.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Validation top-1 accuracy in [0, 1].
    pub val_accuracy: f64,
    /// Energy after the epoch.
    pub energy: EnergyPoint,
}

/// Result of [`train_constrained`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConstrainedOutcome {
    /// Dense relaxed energy `E_dense` (the normaliser), in the model's unit.
    pub dense_energy: f64,
    /// Floor of the dense-input network over `E_dense`.
    pub floor: f64,
    /// The target `b`.
    pub relative_budget: RelativeBudget,
    /// Energy of the returned model.
    pub energy: EnergyPoint,
    /// Validation accuracy of the returned model.
    pub val_accuracy: f64,
    /// Nonzero weights per projected layer.
    pub kept_per_layer: Vec<usize>,
    /// Round whose model is returned.
    pub best_round: usize,
    /// Every epoch.
    pub history: Vec<EpochLog>,
    /// Whether the relaxed energy is within the budget (always true unless a bug).
    pub within_budget: bool,
}

struct Ctx<'a, 'b> {
    run: &'b mut ConstrainedRun<'a>,
    config: &'b ConstrainedConfig,
    masks: Option<InputMasks>,
    dense_energy: f64,
    device: Device,
    global_epoch: usize,
}

/// The trained student's summary and, for masked runs, its final binary input masks (apply them
/// through [`InputMasks`]'s taps to evaluate or export the model).
#[derive(Debug)]
pub struct Trained {
    /// Energies, accuracy and history.
    pub outcome: ConstrainedOutcome,
    /// The masks of the returned model.
    pub masks: Option<InputMasks>,
}

/// Trains under the energy constraint; see the module docs for the procedure. The student's
/// variables hold the returned model afterwards.
pub fn train_constrained(
    mut run: ConstrainedRun<'_>,
    config: &ConstrainedConfig,
    observer: &mut dyn Observer,
) -> Result<Trained> {
    let config = config.clone().validate()?;
    if config.distillation > 0.0 && run.teacher.is_none() {
        return Err(Error::Config {
            field: "distillation",
            reason: format!("{} needs a teacher network", config.distillation),
        });
    }
    let layers = run.student.layers();
    let device = layers
        .first()
        .map(|l| l.weight.device().clone())
        .ok_or_else(|| Error::Config {
            field: "student",
            reason: "has no prunable layer".into(),
        })?;
    let dense_costs = weight_costs(run.model, run.student, None)?;
    let dense_energy: f64 = layers
        .iter()
        .zip(&dense_costs)
        .map(|(l, c)| layer_relaxed_energy(c, l.weight.elem_count()))
        .sum();
    let floor = floor_energy(&dense_costs) / dense_energy;
    let b = config.relative_budget.get();
    if config.masks.is_none() && b < floor {
        return Err(Error::BudgetInfeasible { budget: b, floor });
    }
    let masks = match config.masks {
        Some(_) => Some(InputMasks::ones(layers, &device)?),
        None => None,
    };
    let mut ctx = Ctx {
        run: &mut run,
        config: &config,
        masks,
        dense_energy,
        device,
        global_epoch: 0,
    };
    let target = b * dense_energy;
    let rounds = config.masks.map_or(1, |m| m.max_rounds);
    let per_epoch = ctx.run.train.batches_per_epoch();
    observer.on_run_start(&RunStart {
        name: format!(
            "energy-constrained, budget {b} of dense ({})",
            ctx.run.model.name()
        ),
        epochs: config.epochs,
        batches_per_epoch: per_epoch,
    });

    let mut sgd = MomentumSgd::with_config(ctx.run.params.clone(), config.sgd)?;
    let mut schedule: Option<BudgetSchedule> = None;
    let mut history = Vec::new();
    let mut best: Option<(f64, usize, Vec<Tensor>)> = None;
    let mut previous: Option<f64> = None;
    let mut density = config.masks.map_or(1.0, |m| m.initial_density.get());
    let mut best_floor = floor;
    for round in 0..rounds {
        let costs = weight_costs(ctx.run.model, ctx.run.student, ctx.masks.as_ref())?;
        let round_floor = floor_energy(&costs);
        best_floor = best_floor.min(round_floor / dense_energy);
        let w_phase = !(round == 0 && config.skip_first_w_phase) && round_floor <= target;
        if w_phase {
            let sched = match schedule.as_mut() {
                Some(s) => {
                    s.hold_at_target();
                    s
                }
                None => {
                    let start = relaxed_of(ctx.run.student, &costs)?;
                    schedule.insert(BudgetSchedule::new(
                        start,
                        target,
                        config.decay,
                        config.epochs - config.settle_epochs,
                        per_epoch,
                        config.projection_interval,
                    )?)
                }
            };
            let accuracy = ctx.w_phase(round, sched, &mut sgd, &costs, &mut history, observer)?;
            let improved = best.as_ref().is_none_or(|(acc, _, _)| accuracy > *acc);
            if improved {
                best = Some((accuracy, round, ctx.snapshot()?));
            }
            if ctx.masks.is_none() {
                break;
            }
            if previous.is_some_and(|p| accuracy <= p) {
                break;
            }
            previous = Some(accuracy);
        }
        if ctx.masks.is_none() {
            break;
        }
        if density <= 1e-9 {
            break;
        }
        ctx.m_phase(round, density, &mut history, observer)?;
        density -= config.masks.map_or(0.0, |m| m.density_step);
    }
    let Some((val_accuracy, best_round, snapshot)) = best else {
        return Err(Error::BudgetInfeasible {
            budget: b,
            floor: best_floor,
        });
    };
    ctx.restore(&snapshot)?;
    let costs = weight_costs(ctx.run.model, ctx.run.student, ctx.masks.as_ref())?;
    let energy = ctx.energy_point(&costs)?;
    let kept_per_layer = ctx
        .run
        .student
        .layers()
        .iter()
        .map(|l| Ok(host(&l.weight)?.iter().filter(|v| **v != 0.0).count()))
        .collect::<Result<Vec<_>>>()?;
    // Exact integer costs make this an equality check in practice; the slack only absorbs
    // rounding of non-integer costs.
    let within_budget = energy.relaxed <= b * (1.0 + 1e-9);
    let outcome = ConstrainedOutcome {
        dense_energy,
        floor,
        relative_budget: config.relative_budget,
        energy,
        val_accuracy,
        kept_per_layer,
        best_round,
        history,
        within_budget,
    };
    Ok(Trained {
        outcome,
        masks: ctx.masks.take(),
    })
}

impl Ctx<'_, '_> {
    fn loss(&self, xs: &Tensor, ys: &Tensor) -> Result<Tensor> {
        let logits = match &self.masks {
            Some(m) => self.run.student.forward_tapped(xs, true, &mut &*m)?,
            None => self.run.student.forward_tapped(xs, true, &mut NoTaps)?,
        };
        let lambda = self.config.distillation;
        let ce = nn::loss::cross_entropy(&logits, ys)?;
        if lambda <= 0.0 {
            return Ok(ce);
        }
        let teacher = self.run.teacher.ok_or_else(|| Error::Config {
            field: "distillation",
            reason: "needs a teacher network".into(),
        })?;
        let target = teacher.forward_t(xs, false)?.detach();
        let mse = (logits - target)?.sqr()?.mean_all()?;
        Ok(((mse * lambda)? + (ce * (1.0 - lambda))?)?)
    }

    fn check_loss(
        loss: &Tensor,
        phase: &str,
        round: usize,
        epoch: usize,
        batch: usize,
    ) -> Result<f64> {
        let v = f64::from(loss.to_scalar::<f32>()?);
        Ok(finite_loss(v, || step(phase, round, epoch, batch))?)
    }

    /// The forward and backward pass of training batch `batch`: its loss (an error unless
    /// finite), the gradients and the number of samples.
    fn backward(
        &mut self,
        phase: &str,
        round: usize,
        epoch: usize,
        batch: usize,
    ) -> Result<(f64, GradStore, usize)> {
        let (xs, ys) = self.run.train.batch(self.global_epoch, batch)?;
        let loss = self.loss(&xs, &ys)?;
        let v = Self::check_loss(&loss, phase, round, epoch, batch)?;
        Ok((v, loss.backward()?, xs.dim(0)?))
    }

    #[allow(clippy::too_many_arguments)]
    fn w_phase(
        &mut self,
        round: usize,
        schedule: &mut BudgetSchedule,
        sgd: &mut MomentumSgd,
        costs: &[WeightCosts],
        history: &mut Vec<EpochLog>,
        observer: &mut dyn Observer,
    ) -> Result<f64> {
        let per_epoch = self.run.train.batches_per_epoch();
        let last = per_epoch - 1;
        let mut accuracy = 0.0;
        for epoch in 0..self.config.epochs {
            observer.on_epoch_start(epoch);
            let mut loss_sum = 0.0;
            for batch in 0..per_epoch {
                let (v, grads, samples) = self.backward(W_PHASE, round, epoch, batch)?;
                loss_sum += v;
                sgd.step_grads(&grads)?;
                if projects_at(batch, last, self.config.projection_interval) {
                    let projected = self.project(costs, schedule.current())?;
                    observer.on_projection(&ProjectionStats {
                        epoch,
                        batch,
                        nonzero_weights: projected.kept() as u64,
                        relative_energy: projected.energy / self.dense_energy,
                        relative_budget: schedule.current() / self.dense_energy,
                    });
                    // The descent ends with the epoch before the settling ones.
                    let descent = self.config.epochs - self.config.settle_epochs;
                    schedule.after_projection(epoch + 1 >= descent, batch, last);
                }
                let stats = BatchStats {
                    epoch,
                    batch,
                    loss: v,
                    lr: self.config.sgd.lr,
                    samples,
                };
                end_batch(observer, &stats, W_PHASE, round)?;
            }
            self.global_epoch += 1;
            accuracy = self.evaluate(epoch, observer)?;
            history.push(EpochLog {
                round,
                phase: 'W',
                epoch,
                loss: loss_sum / per_epoch as f64,
                val_accuracy: accuracy,
                energy: self.energy_point(costs)?,
            });
        }
        Ok(accuracy)
    }

    fn m_phase(
        &mut self,
        round: usize,
        density: f64,
        history: &mut Vec<EpochLog>,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        let Some(cfg) = self.config.masks else {
            return Ok(());
        };
        let vars = self
            .masks
            .as_ref()
            .map(InputMasks::vars)
            .unwrap_or_default();
        let mut adam = AdamW::new(
            vars,
            ParamsAdamW {
                lr: cfg.lr,
                weight_decay: cfg.weight_decay,
                ..ParamsAdamW::default()
            },
        )?;
        let per_epoch = self.run.train.batches_per_epoch();
        let last = per_epoch - 1;
        let interval = self.config.projection_interval;
        for epoch in 0..self.config.epochs {
            observer.on_epoch_start(epoch);
            let mut loss_sum = 0.0;
            for batch in 0..per_epoch {
                let (v, grads, samples) = self.backward(M_PHASE, round, epoch, batch)?;
                loss_sum += v;
                adam.step(&grads)?;
                if let Some(m) = &self.masks {
                    m.clamp_unit()?;
                    if (batch > 0 && batch.is_multiple_of(interval)) || batch == last {
                        m.project(density)?;
                    }
                }
                let stats = BatchStats {
                    epoch,
                    batch,
                    loss: v,
                    lr: cfg.lr,
                    samples,
                };
                end_batch(observer, &stats, M_PHASE, round)?;
            }
            self.global_epoch += 1;
            let accuracy = self.evaluate(epoch, observer)?;
            let costs = weight_costs(self.run.model, self.run.student, self.masks.as_ref())?;
            history.push(EpochLog {
                round,
                phase: 'M',
                epoch,
                loss: loss_sum / per_epoch as f64,
                val_accuracy: accuracy,
                energy: self.energy_point(&costs)?,
            });
        }
        if let Some(m) = &self.masks {
            m.round()?;
        }
        Ok(())
    }

    fn project(
        &self,
        costs: &[WeightCosts],
        budget: f64,
    ) -> Result<crate::cost::NetworkProjection> {
        let layers = self.run.student.layers();
        let mut host_weights = layers
            .iter()
            .map(|l| host(&l.weight))
            .collect::<Result<Vec<_>>>()?;
        for (l, w) in layers.iter().zip(&host_weights) {
            if let Some(index) = w.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    what: l.name.clone(),
                    index,
                });
            }
        }
        let min_kept = reserved_counts(costs, &host_weights, budget, self.config.reserved_share);
        let mut slices: Vec<&mut [f32]> = host_weights.iter_mut().map(Vec::as_mut_slice).collect();
        let projected = match self.config.projection {
            Projection::Weighted { variant } => {
                project_layers(&mut slices, costs, budget, variant, &min_kept)?
            }
            Projection::Magnitude => {
                project_layers_magnitude(&mut slices, costs, budget, &min_kept)?
            }
        };
        for (l, w) in layers.iter().zip(&host_weights) {
            let t = Tensor::from_slice(w, l.weight.dims(), &self.device)?;
            l.weight.set(&t)?;
        }
        Ok(projected)
    }

    /// Validation accuracy of the student as it is (evaluation mode, masks applied).
    fn evaluate(&mut self, epoch: usize, observer: &mut dyn Observer) -> Result<f64> {
        let student = self.run.student;
        let masks = self.masks.as_ref();
        let eval =
            tensor_core::evaluate("validation source", &mut *self.run.val, |xs| match masks {
                Some(m) => student.forward_tapped(xs, false, &mut &*m),
                None => student.forward_t(xs, false),
            })?;
        observer.on_eval(&EvalStats {
            epoch,
            split: "val".into(),
            accuracy: eval.accuracy,
            loss: eval.loss,
            samples: eval.samples,
        });
        Ok(eval.accuracy)
    }

    fn energy_point(&self, costs: &[WeightCosts]) -> Result<EnergyPoint> {
        let relaxed = relaxed_of(self.run.student, costs)?;
        let supports = match &self.masks {
            Some(m) => m.supports()?,
            None => vec![Support::Dense; costs.len()],
        };
        let mut workloads = Vec::new();
        let mut nonzero_weights = 0;
        for (l, inputs) in self.run.student.layers().iter().zip(supports) {
            let w = host(&l.weight)?;
            nonzero_weights += w.iter().filter(|v| **v != 0.0).count() as u64;
            workloads.push(LayerWorkload {
                id: l.id,
                name: l.name.clone(),
                geometry: l.geometry,
                sparsity: LayerSparsity {
                    weights: Support::Bitmap(Bitmap::from_values(l.weight.dims(), &w)?),
                    inputs,
                    outputs: Support::Dense,
                },
                precision: Precision::default(),
            });
        }
        let modelled = self.run.model.network_energy(&workloads)?.total();
        let nonzero_inputs = match &self.masks {
            Some(m) => m.nonzero()? as u64,
            None => 0,
        };
        Ok(EnergyPoint {
            relaxed: relaxed / self.dense_energy,
            modelled: modelled / self.dense_energy,
            nonzero_weights,
            nonzero_inputs,
        })
    }

    fn snapshot(&self) -> Result<Vec<Tensor>> {
        let mut vars = self.run.params.clone();
        if let Some(m) = &self.masks {
            vars.extend(m.vars());
        }
        Ok(vars
            .iter()
            .map(|v| v.as_tensor().copy())
            .collect::<std::result::Result<_, _>>()?)
    }

    fn restore(&self, snapshot: &[Tensor]) -> Result<()> {
        let mut vars = self.run.params.clone();
        if let Some(m) = &self.masks {
            vars.extend(m.vars());
        }
        for (v, t) in vars.iter().zip(snapshot) {
            v.set(t)?;
        }
        Ok(())
    }
}

/// Per-layer weight costs of `net` under `model`, with each conv layer's input support taken
/// from `masks` (dense when unmasked).
pub fn weight_costs(
    model: &dyn WeightCostModel,
    net: &dyn Network,
    masks: Option<&InputMasks>,
) -> Result<Vec<WeightCosts>> {
    let supports = match masks {
        Some(m) => m.supports()?,
        None => vec![Support::Dense; net.layers().len()],
    };
    net.layers()
        .iter()
        .zip(&supports)
        .map(|(l, s)| {
            model
                .weight_costs(&l.geometry, s)
                .map_err(|e| Error::Core(e.in_layer(l.id)))
        })
        .collect()
}

/// Entries each layer keeps under a reservation of `share` of the weight budget split equally
/// across layers: the largest count whose cheapest-first costs fit the layer's part. Empty when
/// nothing is reserved.
pub fn reserved_counts(
    costs: &[WeightCosts],
    weights: &[Vec<f32>],
    budget: f64,
    share: f64,
) -> Vec<usize> {
    if share <= 0.0 || costs.is_empty() {
        return Vec::new();
    }
    let spare = (budget - crate::cost::floor_energy(costs)).max(0.0);
    let part = share * spare / costs.len() as f64;
    costs
        .iter()
        .zip(weights)
        .map(|(c, w)| {
            let nonzero = w.iter().filter(|v| **v != 0.0).count();
            // The guarded entries are a layer's largest, so they take the cached slots first.
            let cheap = ((part / c.kappa_in).floor() as usize).min(c.cached);
            let k = if cheap < c.cached {
                cheap
            } else {
                let rest = part - c.kappa_in * c.cached as f64;
                c.cached + (rest / c.kappa_out).floor() as usize
            };
            k.min(nonzero)
        })
        .collect()
}

const W_PHASE: &str = "W-phase";
const M_PHASE: &str = "M-phase";

/// Where a run stands, for the divergence and stop errors: rounds are named 1-based like the
/// epoch and batch in [`Step`]'s display.
fn step(phase: &str, round: usize, epoch: usize, batch: usize) -> Step {
    Step::new(format!("{phase} of round {}", round + 1), epoch, batch)
}

/// Reports the end of a batch; a stop the observer asks for is an interruption at that batch.
fn end_batch(
    observer: &mut dyn Observer,
    stats: &BatchStats,
    phase: &str,
    round: usize,
) -> Result<()> {
    match observer.on_batch_end(stats) {
        ControlFlow::Break(()) => {
            let at = step(phase, round, stats.epoch, stats.batch);
            Err(tensor_core::Error::Interrupted { at }.into())
        }
        ControlFlow::Continue(()) => Ok(()),
    }
}

fn relaxed_of(net: &dyn Network, costs: &[WeightCosts]) -> Result<f64> {
    let mut total = 0.0;
    for (l, c) in net.layers().iter().zip(costs) {
        let nz = host(&l.weight)?.iter().filter(|v| **v != 0.0).count();
        total += layer_relaxed_energy(c, nz);
    }
    Ok(total)
}

fn host(v: &Var) -> Result<Vec<f32>> {
    Ok(v.as_tensor().flatten_all()?.to_vec1::<f32>()?)
}
