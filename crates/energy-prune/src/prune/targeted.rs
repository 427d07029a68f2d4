//! Energy-aware pruning driven to an energy level under a second, measuring model, for
//! comparisons at equal energy (e.g. with the ICLR'19 projection, `docs/sparse-projection.md`).
//!
//! The procedure of `docs/energy-aware-pruning.md` §2 has one knob, the accuracy budget δ; the
//! energy it ends at is a consequence. [`prune_to_energy`] searches δ by bisection until the
//! pruned network, before the global fine-tuning, meets a [`RelativeBudget`] under the measuring
//! model, then fine-tunes that network once (§2 "Global step"). The layers are still ordered and
//! their shares of δ still split under the run's own model (§1.2, §2 "Order"); only the level is
//! measured under the target's.
//!
//! Measurement: the workloads of [`super::layer_energies`] (exact weight bitmaps) with **dense
//! inputs**, both for the pruned network and for the starting network it is divided by. Dense
//! inputs are the ICLR'19 model's normaliser (`docs/energy-models.md` A.5: every mask at 1), its
//! FC layers accept no input density at all (A.4), and they make the floor below a property of
//! the geometry: with measured densities the floor would move with the weights.

use serde::{Deserialize, Serialize};
use tensor_core::{
    Bitmap, EnergyModel, EnergyUnit, EvalStats, LayerId, Network, Observer, ProjectionStats,
    RelativeBudget,
};

use super::energy_aware::{Pruned, Start, finish, layer_loop, removal_support, start};
use super::weights::{Snapshot, host, load, snapshot};
use super::{PruneOutcome, PruneRun, layer_energies, price};
use crate::config::{DropSearch, EnergyPruneConfig, RatioSearch};
use crate::error::{Error, Result};

/// What a targeted run drives to: a level under a measuring model, and the search over δ.
#[derive(Clone, Copy)]
pub struct EnergyTarget<'a> {
    /// The measuring model (e.g. the ICLR'19 model), distinct from [`PruneRun::model`], which
    /// still orders the layers; its `name()` is recorded.
    pub model: &'a dyn EnergyModel,
    /// The level: energy of the pruned network before fine-tuning over the starting network's
    /// energy, both under `model` with dense inputs.
    pub level: RelativeBudget,
    /// The bisection on δ.
    pub search: DropSearch,
}

/// One δ the search tried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchStep {
    /// The accuracy budget δ of this pass of the layer loop.
    pub max_accuracy_drop: f64,
    /// The measured level: energy after the layer loop (no fine-tuning) over the starting
    /// network's, under the measuring model.
    pub level: f64,
    /// The energy after the layer loop under the measuring model.
    pub energy: f64,
    /// Whether `level` is at most the requested level.
    pub met: bool,
    /// Validation accuracy after the layer loop.
    pub accuracy_pruned: f64,
    /// Accepted ρ per layer, in network order.
    pub ratios: Vec<f64>,
}

/// A layer as the loop processed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessedLayer {
    /// The layer.
    pub id: LayerId,
    /// Its name.
    pub name: String,
}

/// One layer's energy under the measuring model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetLayerEnergy {
    /// The layer.
    pub id: LayerId,
    /// Its name.
    pub name: String,
    /// Energy of the starting network's layer.
    pub energy_before: f64,
    /// Energy of the final layer.
    pub energy_after: f64,
}

/// Result of [`prune_to_energy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetedOutcome {
    /// The energy-aware outcome at the chosen δ under the ordering model (its `energy_model`):
    /// energies before and after, per-layer ratios, masks, trials and accuracies;
    /// `max_accuracy_drop` is the chosen δ.
    pub outcome: PruneOutcome,
    /// The measuring model's name (preset and batch included).
    pub target_model: String,
    /// Unit of every `target_*` energy.
    pub target_unit: EnergyUnit,
    /// The requested level.
    pub level: RelativeBudget,
    /// The search settings.
    pub search: DropSearch,
    /// The measuring model's floor: the energy with every weight removed over the starting
    /// network's energy.
    pub floor: f64,
    /// Every δ tried, in the order tried.
    pub steps: Vec<SearchStep>,
    /// The chosen δ: the smallest tried whose pruned network met the level.
    pub chosen_drop: f64,
    /// The layers in the order the chosen pass processed them.
    pub order: Vec<ProcessedLayer>,
    /// Energy of the starting network under the measuring model.
    pub target_energy_before: f64,
    /// Energy after the chosen pass of the layer loop, before fine-tuning, under the measuring
    /// model (what the level constrains).
    pub target_energy_pruned: f64,
    /// Energy at the end under the measuring model (fine-tuning keeps the masks).
    pub target_energy_after: f64,
    /// Per layer, in network order, under the measuring model.
    pub target_layers: Vec<TargetLayerEnergy>,
}

impl TargetedOutcome {
    /// The level reached before fine-tuning: `target_energy_pruned / target_energy_before`.
    pub fn reached(&self) -> f64 {
        self.target_energy_pruned / self.target_energy_before
    }

    /// The step whose δ was chosen.
    pub fn chosen_step(&self) -> Option<&SearchStep> {
        self.steps
            .iter()
            .find(|s| s.max_accuracy_drop == self.chosen_drop && s.met)
    }
}

/// The measuring model's floor for `net`: the energy under `model` with every weight removed
/// (all-zero bitmaps, dense inputs) over the energy of `net`'s current weights (exact bitmaps,
/// dense inputs); the ICLR'19 floor of `docs/energy-models.md` A.5 for a network without exact
/// zeros. No weight pruning gets below it.
pub fn weight_floor(model: &dyn EnergyModel, net: &dyn Network) -> Result<f64> {
    let dense: f64 = layer_energies(model, net, None)?.iter().sum();
    Ok(zero_weights_energy(model, net)? / dense)
}

fn zero_weights_energy(model: &dyn EnergyModel, net: &dyn Network) -> Result<f64> {
    let e = price(model, net, None, |_, l| Ok(Bitmap::zeros(l.weight.dims())))?;
    Ok(e.iter().sum())
}

/// Energy-aware pruning to an energy level: the layer loop of `docs/energy-aware-pruning.md` §2
/// at the smallest accuracy budget δ whose pruned network (before fine-tuning) meets
/// `target.level` under `target.model`, then the global fine-tuning once (§2 "Global step").
/// `config.max_accuracy_drop` is not used: δ is searched.
///
/// The search: a level below [`weight_floor`] is [`Error::TargetBelowFloor`] before anything
/// runs. Otherwise δ_max (`target.search.max_drop`) is tried first; when it misses the level
/// the network gets its original weights back and the result is [`Error::TargetUnreached`],
/// naming the level reached and the ratio floor (every layer pruned at the ratio search's
/// largest ρ, nothing restored). Then `steps` halvings of `[0, δ_max]`; when none of them
/// missed, δ = 0 is tried too, so the chosen δ (the smallest that met) is either 0 or has a
/// tried δ that missed at most `max_drop / 2^steps` below it. Every pass starts from the
/// original weights, orders and prunes the layers as [`super::prune_energy_aware`] does at that
/// δ, without fine-tuning; the chosen pass's weights are kept and fine-tuned. The layer loop's
/// evaluations reach `observer` with their split prefixed by the step, the fine-tuning's as
/// they are.
pub fn prune_to_energy(
    mut run: PruneRun<'_>,
    config: &EnergyPruneConfig,
    target: &EnergyTarget<'_>,
    observer: &mut dyn Observer,
) -> Result<TargetedOutcome> {
    let config = config.clone().validate()?;
    let search = target.search.validate()?;
    let net = run.network;
    let layers = net.layers();
    let level = target.level.get();
    let target_before = layer_energies(target.model, net, None)?;
    let dense: f64 = target_before.iter().sum();
    let floor = zero_weights_energy(target.model, net)? / dense;
    // A NaN floor (a network without energy) fails too.
    if floor.is_nan() || floor > level {
        return Err(Error::TargetBelowFloor {
            model: target.model.name(),
            level,
            floor,
        });
    }
    let start = start(&mut run, &config)?;
    let mut search_run = SearchRun {
        config: &config,
        target,
        dense,
        start: &start,
        steps: Vec::new(),
    };
    let Some(mut best) = search_run.probe(&mut run, search.max_drop, observer)? else {
        load(layers, &start.original)?;
        let max_ratio = match config.ratio_search {
            RatioSearch::Step { max_ratio, .. } | RatioSearch::Bisection { max_ratio, .. } => {
                max_ratio
            }
        };
        let removed = price(target.model, net, None, |i, l| {
            let kept = removal_support(&host(&start.original[i].0)?, max_ratio);
            Ok(Bitmap::from_bools(l.weight.dims(), &kept)?)
        })?;
        return Err(Error::TargetUnreached {
            model: target.model.name(),
            level,
            reached: search_run.steps[0].level,
            max_drop: search.max_drop,
            max_ratio,
            ratio_floor: removed.iter().sum::<f64>() / dense,
        });
    };
    // Every δ that meets the level lowers `hi`, so the last pass that met is the smallest δ.
    let (mut lo, mut hi) = (0.0, search.max_drop);
    let mut missed = false;
    for _ in 0..search.steps {
        if hi <= lo {
            break;
        }
        let mid = 0.5 * (lo + hi);
        match search_run.probe(&mut run, mid, observer)? {
            Some(b) => {
                hi = mid;
                best = b;
            }
            None => {
                lo = mid;
                missed = true;
            }
        }
    }
    if !missed
        && hi > 0.0
        && let Some(b) = search_run.probe(&mut run, 0.0, observer)?
    {
        best = b;
    }
    let steps = search_run.steps;
    let Best {
        drop,
        pruned,
        weights,
        energy,
    } = best;
    load(layers, &weights)?;
    let order = pruned
        .indices
        .iter()
        .map(|&i| ProcessedLayer {
            id: layers[i].id,
            name: layers[i].name.clone(),
        })
        .collect();
    let chosen = EnergyPruneConfig {
        max_accuracy_drop: drop,
        ..config
    };
    let outcome = finish(&mut run, &start, pruned, &chosen, observer)?;
    let target_after = layer_energies(target.model, net, None)?;
    let target_layers = layers
        .iter()
        .enumerate()
        .map(|(i, l)| TargetLayerEnergy {
            id: l.id,
            name: l.name.clone(),
            energy_before: target_before[i],
            energy_after: target_after[i],
        })
        .collect();
    Ok(TargetedOutcome {
        outcome,
        target_model: target.model.name(),
        target_unit: target.model.unit(),
        level: target.level,
        search,
        floor,
        steps,
        chosen_drop: drop,
        order,
        target_energy_before: dense,
        target_energy_pruned: energy,
        target_energy_after: target_after.iter().sum(),
        target_layers,
    })
}

/// A pass of the layer loop that met the level.
struct Best {
    drop: f64,
    pruned: Pruned,
    weights: Snapshot,
    energy: f64,
}

/// The search's state across passes.
struct SearchRun<'s> {
    config: &'s EnergyPruneConfig,
    target: &'s EnergyTarget<'s>,
    dense: f64,
    start: &'s Start,
    steps: Vec<SearchStep>,
}

impl SearchRun<'_> {
    /// One pass of the layer loop at δ = `drop` from the original weights; records the step and
    /// returns the pass (with its weights) when it met the level.
    fn probe(
        &mut self,
        run: &mut PruneRun<'_>,
        drop: f64,
        observer: &mut dyn Observer,
    ) -> Result<Option<Best>> {
        let net = run.network;
        load(net.layers(), &self.start.original)?;
        let config = EnergyPruneConfig {
            max_accuracy_drop: drop,
            ..self.config.clone()
        };
        let mut prefixed = Prefixed {
            inner: observer,
            prefix: format!("search step {} (δ {drop}): ", self.steps.len()),
        };
        let pruned = layer_loop(net, run.model, run.val, self.start, &config, &mut prefixed)?;
        let energy: f64 = layer_energies(self.target.model, net, None)?.iter().sum();
        let level = energy / self.dense;
        let met = level <= self.target.level.get();
        self.steps.push(SearchStep {
            max_accuracy_drop: drop,
            level,
            energy,
            met,
            accuracy_pruned: pruned.accuracy,
            ratios: pruned
                .per_layer
                .iter()
                .map(|p| p.as_ref().map_or(0.0, |p| p.ratio))
                .collect(),
        });
        if !met {
            return Ok(None);
        }
        Ok(Some(Best {
            drop,
            weights: snapshot(net.layers())?,
            pruned,
            energy,
        }))
    }
}

/// Forwards every event, the evaluations with their split prefixed.
struct Prefixed<'o> {
    inner: &'o mut dyn Observer,
    prefix: String,
}

impl Observer for Prefixed<'_> {
    fn on_run_start(&mut self, start: &tensor_core::RunStart) {
        self.inner.on_run_start(start);
    }
    fn on_epoch_start(&mut self, epoch: usize) {
        self.inner.on_epoch_start(epoch);
    }
    fn on_batch_end(&mut self, stats: &tensor_core::BatchStats) -> std::ops::ControlFlow<()> {
        self.inner.on_batch_end(stats)
    }
    fn on_eval(&mut self, stats: &EvalStats) {
        self.inner.on_eval(&EvalStats {
            split: format!("{}{}", self.prefix, stats.split),
            ..stats.clone()
        });
    }
    fn on_projection(&mut self, stats: &ProjectionStats) {
        self.inner.on_projection(stats);
    }
}
