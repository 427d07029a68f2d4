//! Data-movement-aware training energy (docs/training-energy-dataflow.md): every GEMM a
//! training step executes, priced with the Eyeriss row-stationary model (docs/energy-models.md
//! part B) as the convolution it is, plus the per-step weight-update DRAM traffic.
//!
//! The bit-product proxy of [`TrainingModel`](super::TrainingModel) (part C) prices computation
//! only, which over-credits narrower widths (PSG) and under-credits avoided weight traffic
//! (SLU, SMD). [`DataflowTraining`] prices computation **and** data movement at every memory
//! level. Its figures are a *model* estimate: not measured per-op energies, and not the
//! bit-product proxy either, so [`TrainingEnergy::proxy`] is `false` (that flag says whether the
//! per-op energies are a stand-in table; here they come from the Eyeriss model). Every figure is
//! labelled `training/eyeriss-<preset> dataflow batch <N>`: model, preset and mapping batch.
//!
//! # What is priced (docs/training-energy-dataflow.md, "The three products of one conv layer")
//!
//! For each executed iteration of batch `B` and each layer `l` with executed fraction `f_l`
//! (docs/energy-models.md C.1):
//!
//! - the forward product, the input gradient (when recorded) and the weight gradient, each
//!   written as a convolution by [`products`] and priced by [`Eyeriss::price`]; under PSG the
//!   weight gradient is the predictor product plus `ρ_l` times the full-precision product (C.3;
//!   the fallback share scales compute and data movement alike);
//! - each product at **its own operand widths** from the ledger (B.7: compute `b_W·b_I/256` per
//!   MAC, every access `b_t/16`). The ledger's widths are read in the order e2-train writes them:
//!   forward (activations, weights), input gradient (output gradient, weights), weight gradient
//!   and predictor (activations, output gradient). The first is the product's Eyeriss input, the
//!   second its Eyeriss filter; the output (and psum) width is the wider of the two;
//! - the weight update: reading Wt and the momentum buffer and writing both back, `4·|Wt|`
//!   words of `master_bits` (32 by default: fp32 master weights, 2 units of a 16-bit access
//!   each) at the DRAM cost (200 with Table IV), once per executed step of every layer that has
//!   a weight gradient or a predictor and `f_l > 0` ("Points to get right"). The gradient is the
//!   weight-gradient product's output, whose DRAM write that product prices; the update is taken
//!   to consume it as it is written. The update's arithmetic is not priced.
//!
//! Dropped iterations cost 0; `f_l = 0` (a skipped block) has no products and no update.
//!
//! # Batch
//!
//! The Eyeriss model this pricer is built from maps every product at its batch `N` (the
//! "mapping batch", named in every figure; choose the ledger's batch for the physical reading).
//! A layer's step executes `n = f_l·B` samples (a real number: e2-train records `f_l` as a share
//! of the batch, and the bit-product proxy scales with the same `f_l·B`, so the compute parts of
//! the two measures agree exactly). The step is priced as `⌈n/N⌉` passes of the mapped batch:
//!
//! - computation, register-file traffic and all traffic of the operands indexed by the samples
//!   scale with `n/N` (per-sample);
//! - the traffic above the register files of the one operand not indexed by the samples (Wt for
//!   the forward and input gradient, the gradient dWt for the weight gradient; see
//!   [`ProductConv::per_step`]) is paid once per pass, `⌈n/N⌉` times. `n/N` is rounded up
//!   after subtracting `1e-9`: `f_l·B` is a whole number of samples up to rounding, and a
//!   rounding error above a multiple of `N` must not count one pass too many.
//!
//! Hence pricing the forward product of a full batch `B = N` reproduces
//! [`Eyeriss::layer_energy`] at batch `N` exactly, and halving the executed samples (up to `N`)
//! halves computation and per-sample data movement and leaves the per-step weight traffic
//! unchanged ("Sanity checks that a test can hold").
//!
//! # Fallbacks (never silent)
//!
//! A product that no geometry expresses ([`Expressed::Fallback`]) or that the Eyeriss mapping
//! search cannot place ([`Error::Unmappable`]: its smallest tile overflows the register file or
//! the buffer, as for the weight gradient of a layer whose output rows are so wide that one
//! dilated row of the output gradient, `(F − 1)·U + 1` words, and an ifmap window of as many
//! words no longer fit a register file: ImageNet's 7×7/2 stem with 112 output columns on either
//! preset) is priced as "Points to get right" allows: as the forward product's data movement
//! scaled by the MAC ratio, which is 1 for all three products (the doc's table), i.e. the
//! layer's own geometry priced at the product's widths. Every such product is listed in
//! [`DataflowReport::fallbacks`] with its layer and reason, and the report's
//! [`Display`](std::fmt::Display) shows them. A filter taller than the PE array (the E×F
//! "filter" of the weight gradient) is *not* a fallback: the mapping folds it over `⌈E/rows⌉`
//! passes (B.4), so a CIFAR ResNet maps every product. A forward product the search cannot
//! place is an error: nothing is left to fall back on.
//!
//! ```
//! use energy_model::eyeriss::{Eyeriss, Preset};
//! use energy_model::training::dataflow::DataflowTraining;
//! use tensor_core::{ConvParams, Gemm, LayerGeometry, LayerId, LayerWork, WorkLedger};
//!
//! let conv = LayerGeometry::conv([16, 8, 8], 16, ConvParams::square(3).padding(1))?;
//! let model = DataflowTraining::new(Eyeriss::preset(Preset::Chip, 4)?, [(LayerId(0), conv)])?;
//! let g = |a_bits, b_bits| Gemm { macs_per_sample: conv.macs() as u64, a_bits, b_bits };
//! let mut ledger = WorkLedger::new();
//! ledger.record_executed(4, vec![LayerWork {
//!     layer: LayerId(0),
//!     executed_fraction: 1.0,
//!     forward: g(16, 16),
//!     input_grad: Some(g(16, 16)),
//!     weight_grad: Some(g(16, 16)),
//!     predictor: None,
//!     fallback_fraction: 0.0,
//! }])?;
//! ledger.record_dropped();
//! let report = model.price(&ledger)?;
//! assert_eq!(report.energy.model, "training/eyeriss-chip dataflow batch 4");
//! assert!(!report.energy.proxy);
//! // Stride 1, same padding: the three products have the forward's MACs.
//! let p = &report.products;
//! assert_eq!(p.input_grad.effective_macs, p.forward.effective_macs);
//! assert_eq!(p.weight_grad.effective_macs, p.forward.effective_macs);
//! // Data movement dominates: each product costs several times its computation.
//! assert!(p.forward.data_total() > 2.0 * p.forward.compute);
//! // 4 words (W and momentum, read and written) of 2 units per weight at DRAM cost 200.
//! assert_eq!(p.update.energy, (4 * conv.weights()) as f64 * 2.0 * 200.0);
//! assert!(report.fallbacks.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod products;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tensor_core::{
    EnergyModel, EnergyUnit, Gemm, Iteration, LayerEnergy, LayerGeometry, LayerId, LayerSparsity,
    LayerWork, Level, Operand, Precision, TrainingEnergy, TrainingEnergyModel, WorkLedger,
};

use crate::error::{Error, Result};
use crate::eyeriss::{Eyeriss, EyerissConfig};
pub use products::{Expressed, Product, ProductConv, product_conv};

/// Prices a [`WorkLedger`] with the Eyeriss row-stationary model, product by product, plus the
/// weight-update traffic (module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct DataflowTraining {
    eyeriss: Eyeriss,
    layers: BTreeMap<LayerId, LayerGeometry>,
    master_bits: u8,
}

/// One product of one layer priced at the mapping batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PricedProduct {
    /// Energy of the product for the mapping batch (`nonzero_weights` is 0: a count of weights
    /// does not add up over products and steps).
    pub energy: LayerEnergy,
    /// The operand whose traffic above the register files is paid per pass, not per sample.
    pub per_step: Operand,
    /// Why the fallback priced this product, when it did.
    pub fallback: Option<String>,
}

/// A product the fallback priced (module docs, "Fallbacks").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallbackUse {
    /// The layer.
    pub layer: LayerId,
    /// The product.
    pub product: Product,
    /// Why no convolution of the product could be priced.
    pub reason: String,
}

/// DRAM traffic of the weight updates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightUpdate {
    /// Words of the master-weight width read or written (4 per weight and update).
    pub words: f64,
    /// Their energy: `words · e_DRAM · master_bits/16`.
    pub energy: f64,
}

/// Energy by product class, each with its computation and data movement by level and operand
/// (the operands are the Eyeriss roles within each product: for the weight gradient W is the
/// output gradient acting as filter, I the activations and O the weight gradient).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductEnergy {
    /// Forward products.
    pub forward: LayerEnergy,
    /// Input-gradient products.
    pub input_grad: LayerEnergy,
    /// Weight-gradient products: predictor plus `ρ` times the full-precision product under PSG.
    pub weight_grad: LayerEnergy,
    /// Weight-update DRAM traffic.
    pub update: WeightUpdate,
}

impl ProductEnergy {
    /// Computation of all products.
    pub fn compute(&self) -> f64 {
        self.forward.compute + self.input_grad.compute + self.weight_grad.compute
    }

    /// Data movement: the products' plus the weight update's.
    pub fn data(&self) -> f64 {
        self.forward.data_total()
            + self.input_grad.data_total()
            + self.weight_grad.data_total()
            + self.update.energy
    }

    /// Computation plus data movement.
    pub fn total(&self) -> f64 {
        self.compute() + self.data()
    }

    fn accumulate(&mut self, o: &ProductEnergy) {
        self.forward.accumulate(&o.forward);
        self.input_grad.accumulate(&o.input_grad);
        self.weight_grad.accumulate(&o.weight_grad);
        self.update.words += o.update.words;
        self.update.energy += o.update.energy;
    }
}

/// Executed MACs per class, straight from the ledger (no model): `f_l·B` times the MACs per
/// sample, the weight gradient as predictor plus `ρ` times the full-precision product.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutedMacs {
    /// Forward.
    pub forward: f64,
    /// Input gradient.
    pub input_grad: f64,
    /// Weight gradient.
    pub weight_grad: f64,
}

impl ExecutedMacs {
    /// All classes.
    pub fn total(&self) -> f64 {
        self.forward + self.input_grad + self.weight_grad
    }
}

/// A ledger priced by [`DataflowTraining`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataflowReport {
    /// The totals as [`TrainingEnergyModel::price_work`] returns them: `weight_grad` includes
    /// the weight-update traffic (it has no field of its own there); `proxy` is `false`.
    pub energy: TrainingEnergy,
    /// The totals by product class with the update kept apart.
    pub products: ProductEnergy,
    /// Executed MACs (no model), to be read next to the energies, never mixed with them.
    pub macs: ExecutedMacs,
    /// Per layer over the whole run, in order of first appearance in the ledger.
    pub layers: Vec<(LayerId, ProductEnergy)>,
    /// Products priced by the fallback, once per layer and product, in order of first use.
    pub fallbacks: Vec<FallbackUse>,
}

impl std::fmt::Display for DataflowReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.products;
        writeln!(f, "{}", self.energy)?;
        writeln!(
            f,
            "  a model estimate (Eyeriss row-stationary dataflow, computation plus data \
             movement), neither measured nor the bit-product proxy"
        )?;
        writeln!(
            f,
            "  computation {:.6e}, data movement {:.6e} (DRAM {:.6e}, of it weight updates \
             {:.6e})",
            p.compute(),
            p.data(),
            [&p.forward, &p.input_grad, &p.weight_grad]
                .iter()
                .map(|e| e.by_level(Level::Dram))
                .sum::<f64>()
                + p.update.energy,
            p.update.energy
        )?;
        writeln!(
            f,
            "  executed MACs {:.6e} (forward {:.6e}, input gradient {:.6e}, weight gradient \
             {:.6e})",
            self.macs.total(),
            self.macs.forward,
            self.macs.input_grad,
            self.macs.weight_grad
        )?;
        if self.fallbacks.is_empty() {
            writeln!(f, "  fallbacks: none")?;
        }
        for u in &self.fallbacks {
            writeln!(
                f,
                "  fallback: layer {} {} priced as its forward product at its widths ({})",
                u.layer, u.product, u.reason
            )?;
        }
        Ok(())
    }
}

/// Passes of the mapped batch below which a real sample count counts as a whole pass.
const PASS_TOLERANCE: f64 = 1e-9;

impl DataflowTraining {
    /// A pricer mapping every product with `eyeriss` (its preset, hardware, costs, policy and
    /// batch, the mapping batch) for the layers given; every layer a ledger names needs one.
    /// A layer given twice is an error. Master weights are 32-bit.
    pub fn new(
        eyeriss: Eyeriss,
        layers: impl IntoIterator<Item = (LayerId, LayerGeometry)>,
    ) -> Result<Self> {
        let mut map = BTreeMap::new();
        for (id, g) in layers {
            if map.insert(id, g).is_some() {
                return Err(Error::Config {
                    field: "layer geometry",
                    reason: format!("layer {id} is given twice"),
                });
            }
        }
        Ok(Self {
            eyeriss,
            layers: map,
            master_bits: 32,
        })
    }

    /// The same with `bits`-wide master weights and momentum (1..=64).
    pub fn with_master_bits(self, bits: u8) -> Result<Self> {
        if bits == 0 || bits > 64 {
            return Err(Error::BitWidth {
                model: "training/dataflow",
                operand: Operand::Weight,
                bits,
                expected: "1..=64 bits for the master weights",
            });
        }
        Ok(Self {
            master_bits: bits,
            ..self
        })
    }

    /// The Eyeriss model every product is mapped with.
    pub fn eyeriss(&self) -> &Eyeriss {
        &self.eyeriss
    }

    /// The mapping batch `N`.
    pub fn batch(&self) -> usize {
        self.eyeriss.config().batch
    }

    /// Width of the master weights and momentum the update moves.
    pub fn master_bits(&self) -> u8 {
        self.master_bits
    }

    /// The geometry of a layer, if given.
    pub fn geometry(&self, layer: LayerId) -> Option<&LayerGeometry> {
        self.layers.get(&layer)
    }

    fn layer(&self, layer: LayerId) -> Result<&LayerGeometry> {
        self.geometry(layer).ok_or(Error::MissingGeometry { layer })
    }

    /// `product` of `layer` at the widths of `gemm`, priced for the mapping batch (falling back
    /// as the module docs say, and saying so). The ledger's MACs per sample must equal the
    /// geometry's.
    pub fn product(&self, layer: LayerId, product: Product, gemm: &Gemm) -> Result<PricedProduct> {
        let g = self.layer(layer)?;
        let geometry = g.macs() as u64;
        if gemm.macs_per_sample != geometry {
            return Err(Error::LedgerMismatch {
                layer,
                product,
                ledger: gemm.macs_per_sample,
                geometry,
            });
        }
        self.price_product(g, product, gemm)
            .map_err(|e| tensor_core::Error::from(e).in_layer(layer).into())
    }

    fn price_product(
        &self,
        layer: &LayerGeometry,
        product: Product,
        gemm: &Gemm,
    ) -> Result<PricedProduct> {
        let precision = Precision {
            weight_bits: gemm.b_bits,
            input_bits: gemm.a_bits,
            output_bits: gemm.a_bits.max(gemm.b_bits),
        };
        let n = self.batch();
        let reason = match product_conv(layer, product, n)? {
            Expressed::Conv(pc) => match self.price_conv(&pc, precision) {
                Ok(energy) => {
                    return Ok(PricedProduct {
                        energy,
                        per_step: pc.per_step,
                        fallback: None,
                    });
                }
                Err(e @ Error::Unmappable { .. }) if product != Product::Forward => {
                    format!("the mapping search cannot place it: {e}")
                }
                Err(e) => return Err(e),
            },
            Expressed::Fallback(reason) => reason,
        };
        // "Points to get right": the forward product's data movement scaled by the MAC ratio,
        // which is 1 for every product of the doc's table.
        let forward = products::forward(layer, n);
        Ok(PricedProduct {
            energy: self.price_conv(&forward, precision)?,
            per_step: forward.per_step,
            fallback: Some(reason),
        })
    }

    fn price_conv(&self, pc: &ProductConv, precision: Precision) -> Result<LayerEnergy> {
        let priced = if pc.batch == self.batch() {
            self.eyeriss.price(&pc.geometry, &pc.sparsity, precision)?
        } else {
            EyerissConfig {
                batch: pc.batch,
                ..*self.eyeriss.config()
            }
            .validate()?
            .price(&pc.geometry, &pc.sparsity, precision)?
        };
        let mut e = priced.energy;
        let k = pc.copies as f64;
        e.compute *= k;
        e.effective_macs *= k;
        e.data.iter_mut().flatten().for_each(|v| *v *= k);
        e.nonzero_weights = 0;
        Ok(e)
    }

    /// Prices every executed iteration of `ledger`; dropped iterations add nothing.
    pub fn price(&self, ledger: &WorkLedger) -> Result<DataflowReport> {
        let mut cache: HashMap<(LayerId, Product, Gemm), PricedProduct> = HashMap::new();
        let mut fallbacks: Vec<FallbackUse> = Vec::new();
        let mut layers: Vec<(LayerId, ProductEnergy)> = Vec::new();
        let mut total = ProductEnergy::default();
        let mut macs = ExecutedMacs::default();
        for it in ledger.iterations() {
            let Iteration::Executed {
                batch,
                layers: work,
            } = it
            else {
                continue;
            };
            for w in work {
                let mut priced = |product: Product, gemm: &Gemm| -> Result<PricedProduct> {
                    let key = (w.layer, product, *gemm);
                    if let Some(p) = cache.get(&key) {
                        return Ok(p.clone());
                    }
                    let p = self.product(w.layer, product, gemm)?;
                    if let Some(reason) = &p.fallback
                        && !fallbacks
                            .iter()
                            .any(|u| u.layer == w.layer && u.product == product)
                    {
                        fallbacks.push(FallbackUse {
                            layer: w.layer,
                            product,
                            reason: reason.clone(),
                        });
                    }
                    cache.insert(key, p.clone());
                    Ok(p)
                };
                let (e, m) = self.layer_step(*batch, w, &mut priced)?;
                total.accumulate(&e);
                macs.forward += m.forward;
                macs.input_grad += m.input_grad;
                macs.weight_grad += m.weight_grad;
                match layers.iter_mut().find(|(id, _)| *id == w.layer) {
                    Some((_, acc)) => acc.accumulate(&e),
                    None => layers.push((w.layer, e)),
                }
            }
        }
        Ok(DataflowReport {
            energy: TrainingEnergy {
                model: self.name(),
                proxy: false,
                unit: EnergyUnit::Mac16,
                forward: total.forward.total(),
                input_grad: total.input_grad.total(),
                weight_grad: total.weight_grad.total() + total.update.energy,
                executed_iterations: ledger.executed(),
                dropped_iterations: ledger.dropped(),
            },
            products: total,
            macs,
            layers,
            fallbacks,
        })
    }

    /// Energy and executed MACs of one layer's work in one iteration of `batch` samples.
    fn layer_step(
        &self,
        batch: usize,
        work: &LayerWork,
        priced: &mut impl FnMut(Product, &Gemm) -> Result<PricedProduct>,
    ) -> Result<(ProductEnergy, ExecutedMacs)> {
        super::check_fractions(work)?;
        let layer = self.layer(work.layer)?;
        let samples = work.executed_fraction * batch as f64;
        let mut e = ProductEnergy::default();
        let mut m = ExecutedMacs::default();
        if samples == 0.0 {
            return Ok((e, m));
        }
        let per_sample = samples / self.batch() as f64;
        let passes = (per_sample - PASS_TOLERANCE).ceil().max(1.0);
        let mut run = |product: Product, gemm: &Gemm, share: f64| -> Result<LayerEnergy> {
            let p = priced(product, gemm)?;
            Ok(scaled(&p, share * per_sample, share * passes))
        };
        let rho = work.fallback_fraction;
        e.forward = run(Product::Forward, &work.forward, 1.0)?;
        m.forward = samples * work.forward.macs_per_sample as f64;
        if let Some(g) = &work.input_grad {
            e.input_grad = run(Product::InputGrad, g, 1.0)?;
            m.input_grad = samples * g.macs_per_sample as f64;
        }
        match (&work.predictor, &work.weight_grad) {
            (Some(p), full) => {
                e.weight_grad = run(Product::Predictor, p, 1.0)?;
                m.weight_grad = samples * p.macs_per_sample as f64;
                if let Some(g) = full.as_ref().filter(|_| rho > 0.0) {
                    e.weight_grad.accumulate(&run(Product::WeightGrad, g, rho)?);
                    m.weight_grad += rho * samples * g.macs_per_sample as f64;
                }
            }
            (None, Some(g)) => {
                e.weight_grad = run(Product::WeightGrad, g, 1.0)?;
                m.weight_grad = samples * g.macs_per_sample as f64;
            }
            (None, None) => {}
        }
        if work.predictor.is_some() || work.weight_grad.is_some() {
            let bits = f64::from(self.master_bits) / 16.0;
            e.update.words = 4.0 * layer.weights() as f64;
            e.update.energy = e.update.words * self.eyeriss.config().costs.dram * bits;
        }
        Ok((e, m))
    }
}

/// `p` with its per-sample parts times `per_sample` and its per-step traffic times `per_step`.
fn scaled(p: &PricedProduct, per_sample: f64, per_step: f64) -> LayerEnergy {
    let mut e = LayerEnergy {
        compute: p.energy.compute * per_sample,
        effective_macs: p.energy.effective_macs * per_sample,
        ..LayerEnergy::default()
    };
    for level in Level::ALL {
        for operand in Operand::ALL {
            let k = if operand == p.per_step && level != Level::Rf {
                per_step
            } else {
                per_sample
            };
            e.data[level as usize][operand as usize] =
                p.energy.data[level as usize][operand as usize] * k;
        }
    }
    e
}

impl EnergyModel for DataflowTraining {
    /// `training/eyeriss-<preset>[ (custom array)] dataflow batch <N>`.
    fn name(&self) -> String {
        let c = self.eyeriss.config();
        let custom = if c.hardware == c.preset.hardware() {
            ""
        } else {
            " (custom array)"
        };
        format!(
            "training/eyeriss-{}{custom} dataflow batch {}",
            c.preset, c.batch
        )
    }

    fn unit(&self) -> EnergyUnit {
        EnergyUnit::Mac16
    }

    /// The inference pricing of the underlying Eyeriss model at the mapping batch (what the
    /// forward product of a full batch costs).
    fn layer_energy(
        &self,
        geometry: &LayerGeometry,
        sparsity: &LayerSparsity,
        precision: Precision,
    ) -> tensor_core::Result<LayerEnergy> {
        self.eyeriss.layer_energy(geometry, sparsity, precision)
    }
}

impl TrainingEnergyModel for DataflowTraining {
    /// [`DataflowTraining::price`]'s totals; `weight_grad` includes the weight-update traffic.
    fn price_work(&self, ledger: &WorkLedger) -> tensor_core::Result<TrainingEnergy> {
        Ok(self.price(ledger)?.energy)
    }
}

#[cfg(test)]
mod tests;
