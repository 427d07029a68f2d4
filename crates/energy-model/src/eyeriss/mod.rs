//! The Eyeriss row-stationary (RS) inference energy model behind CVPR'17 energy-aware pruning.
//!
//! Sources: Y.-H. Chen, J. Emer, V. Sze, "Eyeriss: A Spatial Architecture for Energy-Efficient
//! Dataflow for Convolutional Neural Networks", ISCA 2016 (RS dataflow, Table IV access costs,
//! Fig. 10); T.-J. Yang, Y.-H. Chen, V. Sze, "Designing Energy-Efficient Convolutional Neural
//! Networks using Energy-Aware Pruning", CVPR 2017 (the estimation method: per-level, per-data-type
//! energy with sparsity and bit-width). Formulas: `docs/energy-models.md`, part B.
//!
//! A layer's energy is `E_comp + Σ_level Σ_operand A[level][operand]·e_level·b_operand/16` in
//! units of one 16-bit MAC ([`EnergyUnit::Mac16`]), with four storage levels: DRAM (200), global
//! buffer (6), array network (2) and register file (1), plus the MAC (1) ([`UnitCosts::TABLE_IV`]).
//! The access counts come from
//!
//! 1. [`mapping`]: the logical `R × E` PE set folded and replicated onto the physical array;
//! 2. [`blocking`]: a deterministic exhaustive search over blocking factors and loop orders of
//!    the batch, channel and filter loops at the buffer and array levels, keeping the cheapest;
//! 3. the register-file rule of the RS dataflow: one weight read, one ifmap read and a psum read
//!    plus write per MAC, so `A[RF] = 4·MACs`.
//!
//! Both hardware presets of [`Preset`] are available; the batch size is part of every estimate
//! because FC weight traffic per image falls like `1/N`.
//!
//! ```
//! use energy_model::eyeriss::{Eyeriss, Preset};
//! use tensor_core::{ConvParams, EnergyModel, LayerGeometry, LayerSparsity, Level, Precision};
//!
//! let model = Eyeriss::preset(Preset::Isca16, 16)?;
//! // AlexNet conv3 (docs/energy-models.md B.10).
//! let conv3 = LayerGeometry::conv([256, 13, 13], 384, ConvParams::square(3).padding(1))?;
//! let e = model.layer_energy(&conv3, &LayerSparsity::dense(), Precision::FIXED16)?;
//! assert_eq!(e.effective_macs, 16.0 * 149_520_384.0);
//! // Dense RS: register-file energy is four times the compute energy (D.2 B2).
//! assert_eq!(e.by_level(Level::Rf), 4.0 * e.compute);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The row-stationary model prices layers but has no linearised per-weight costs, so handing it
//! to the energy-constrained projection (which takes a
//! [`WeightCostModel`](tensor_core::WeightCostModel)) does not compile:
//!
//! ```compile_fail
//! use energy_model::eyeriss::{Eyeriss, Preset};
//! fn projection_costs(_: &dyn tensor_core::WeightCostModel) {}
//! let model = Eyeriss::preset(Preset::Isca16, 16).unwrap();
//! projection_costs(&model);
//! ```
//!
//! # Modelling choices (reconstructions where the papers leave room)
//!
//! - **Units of work.** A unit is one (image, ofmap strip) × input channel × filter triple of one
//!   group; width folds of the PE set behave like extra images, and each strip re-reads the
//!   `(E' − 1)·U + R` ifmap rows it needs, which is where overlapping strips amplify ifmap
//!   traffic. Ifmaps are counted with their zero padding (`(H + 2p) × (W + 2p)` columns), as the
//!   padded rows are what the array consumes.
//! - **Capacities** are in 16-bit words whatever the bit-widths, so the chosen mapping depends on
//!   widths only through the prices the search weighs. The buffer tile holds the weights, ifmap
//!   strips and psums of the level-1 and level-2 factors together (no bypass). A PE's register
//!   file holds `p·q` filter rows, `q` ifmap windows of `S` words and `p` psums, with `r·t` ≤
//!   replicas (ISCA'16's `p, q, r, t`); the batch factor inside the array runs sequentially.
//! - **Utilisation** is reported, not used to reject mappings: energy does not depend on idle
//!   PEs here, and rejecting would leave some small layers without any mapping.
//! - **Buffer and array counts per unit**: weights `R·S` from the buffer and `R·S·E'` PE
//!   deliveries; ifmaps `H'·W·fold_h` and `R·E'·W`; psums `E'·F` per pass (read and write after
//!   the first, and between height folds) and `R·E'·F`.
//! - **Grouped convolutions** are priced per group and summed; an FC layer is a convolution whose
//!   kernel covers its producer's `c × h × w` (fc6 of AlexNet is a 6 × 6 conv over 256 channels).
//! - **Sparsity** (B.7): effective MACs are the exact count of (nonzero weight, nonzero input)
//!   pairs when supports are bitmaps (or dense), else `MACs·d_W·d_I`. Zero padding is not stored
//!   data, so padded taps are never gated. With zero gating ([`SparsityPolicy::zero_gating`],
//!   default on) compute and register-file energy follow the effective MACs. DRAM traffic of each
//!   operand is scaled by `min(1, d + μ)` (compressed storage with metadata overhead `μ`, never
//!   worse than dense); buffer and array traffic by `d` only under [`OnChipData::Compressed`].
//!   Activation supports describe one image and apply to every image of the batch.
//! - **Bit-widths**: compute costs `b_W·b_I/256` per MAC, every access `b_t/16`.
//! - **Per-weight costs** are not offered (the model does not implement
//!   [`WeightCostModel`](tensor_core::WeightCostModel)): the searched mapping changes with the
//!   layer, so a fixed per-weight linearisation would be misleading.

pub mod blocking;
pub mod mapping;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tensor_core::{
    Bitmap, EnergyModel, EnergyUnit, LayerEnergy, LayerGeometry, LayerKind, LayerSparsity, Operand,
    Precision, Support,
};

use crate::error::{Error, Result};
use crate::sparsity::{InputSupport, tap_hits};
use blocking::{Blocking, Problem};
use mapping::ArrayMapping;

const MODEL: &str = "eyeriss";

/// A hardware configuration of the Eyeriss papers.
#[doc(alias = "EyerissPreset")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The ISCA'16 analysis configuration (Sec. VI, Fig. 10): 16 × 16 PEs, 128 kB global
    /// buffer, 512 B register file per PE.
    Isca16,
    /// The fabricated chip (JSSC'17): 12 × 14 PEs, 108 kB global buffer, 261-word register file
    /// per PE.
    Chip,
}

impl Preset {
    /// The array, buffer and register-file sizes of the preset.
    pub fn hardware(self) -> ArrayHardware {
        match self {
            Preset::Isca16 => ArrayHardware {
                rows: 16,
                cols: 16,
                glb_words: 128 * 1024 / 2,
                rf_words: 512 / 2,
            },
            Preset::Chip => ArrayHardware {
                rows: 12,
                cols: 14,
                glb_words: 108 * 1024 / 2,
                rf_words: 261,
            },
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Preset::Isca16 => "isca16",
            Preset::Chip => "chip",
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Preset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "isca16" => Ok(Preset::Isca16),
            "chip" => Ok(Preset::Chip),
            other => Err(Error::Config {
                field: "preset",
                reason: format!("unknown preset {other:?}, expected \"isca16\" or \"chip\""),
            }),
        }
    }
}

/// Sizes of the PE array and its storage, in 16-bit words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArrayHardware {
    /// PE rows (≥ 1).
    pub rows: usize,
    /// PE columns (≥ 1).
    pub cols: usize,
    /// Global-buffer capacity in words (≥ 1).
    pub glb_words: usize,
    /// Register-file capacity per PE in words (≥ 1).
    pub rf_words: usize,
}

/// Energy of one 16-bit access per level and of one 16-bit MAC, in MAC units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitCosts {
    /// One 16-bit MAC (default 1; finite, ≥ 0).
    pub mac: f64,
    /// One DRAM word (default 200; finite, ≥ 0).
    pub dram: f64,
    /// One global-buffer word (default 6; finite, ≥ 0).
    pub glb: f64,
    /// One inter-PE network word (default 2; finite, ≥ 0).
    pub array: f64,
    /// One register-file word (default 1; finite, ≥ 0).
    pub rf: f64,
}

impl UnitCosts {
    /// ISCA'16 Table IV, normalised to one 16-bit MAC.
    pub const TABLE_IV: UnitCosts = UnitCosts {
        mac: 1.0,
        dram: 200.0,
        glb: 6.0,
        array: 2.0,
        rf: 1.0,
    };

    /// Every cost multiplied by `lambda`.
    pub fn scaled(self, lambda: f64) -> Self {
        Self {
            mac: self.mac * lambda,
            dram: self.dram * lambda,
            glb: self.glb * lambda,
            array: self.array * lambda,
            rf: self.rf * lambda,
        }
    }

    fn levels(&self) -> [f64; 4] {
        [self.dram, self.glb, self.array, self.rf]
    }
}

/// Whether zeros still move through the buffer and the array network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnChipData {
    /// Zeros move on chip like any value (the first Eyeriss chip; the default).
    Dense,
    /// On-chip traffic of each operand scales with its density.
    Compressed,
}

/// How sparsity saves energy (docs/energy-models.md B.7).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SparsityPolicy {
    /// Skip MACs and their register-file accesses when an operand is zero (default `true`).
    pub zero_gating: bool,
    /// On-chip traffic of sparse data (default [`OnChipData::Dense`]).
    pub on_chip: OnChipData,
    /// DRAM metadata overhead `μ` per dense word of a compressed operand (default 0, the ideal
    /// case; finite, ≥ 0). DRAM traffic is scaled by `min(1, d + μ)`.
    pub metadata_overhead: f64,
}

impl Default for SparsityPolicy {
    fn default() -> Self {
        Self {
            zero_gating: true,
            on_chip: OnChipData::Dense,
            metadata_overhead: 0.0,
        }
    }
}

/// Parameters of the Eyeriss model; [`EyerissConfig::validate`] turns them into an [`Eyeriss`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EyerissConfig {
    /// The hardware preset; also names the model.
    pub preset: Preset,
    /// Batch size `N` (≥ 1): every estimate covers the whole batch.
    pub batch: usize,
    /// Array and storage sizes (default: the preset's).
    pub hardware: ArrayHardware,
    /// Access and MAC costs (default [`UnitCosts::TABLE_IV`]).
    pub costs: UnitCosts,
    /// Sparsity rules (default [`SparsityPolicy::default`]).
    pub policy: SparsityPolicy,
}

impl EyerissConfig {
    /// The preset's hardware with Table IV costs and the default sparsity policy.
    pub fn new(preset: Preset, batch: usize) -> Self {
        Self {
            preset,
            batch,
            hardware: preset.hardware(),
            costs: UnitCosts::TABLE_IV,
            policy: SparsityPolicy::default(),
        }
    }

    /// Checks every field and returns the model.
    pub fn validate(self) -> Result<Eyeriss> {
        let bad = |field: &'static str, reason: String| Err(Error::Config { field, reason });
        if self.batch == 0 {
            return bad("batch", "batch size 0, expected at least 1".into());
        }
        let h = self.hardware;
        for (field, v) in [
            ("hardware.rows", h.rows),
            ("hardware.cols", h.cols),
            ("hardware.glb_words", h.glb_words),
            ("hardware.rf_words", h.rf_words),
        ] {
            if v == 0 {
                return bad(field, "0, expected at least 1".into());
            }
        }
        let c = self.costs;
        for (field, v) in [
            ("costs.mac", c.mac),
            ("costs.dram", c.dram),
            ("costs.glb", c.glb),
            ("costs.array", c.array),
            ("costs.rf", c.rf),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(field, format!("{v}, expected a finite value >= 0"));
            }
        }
        let mu = self.policy.metadata_overhead;
        if !mu.is_finite() || mu < 0.0 {
            return bad(
                "policy.metadata_overhead",
                format!("{mu}, expected a finite value >= 0"),
            );
        }
        Ok(Eyeriss { config: self })
    }
}

/// The checked Eyeriss model; implements [`EnergyModel`] in [`EnergyUnit::Mac16`].
#[derive(Clone, Debug, PartialEq)]
pub struct Eyeriss {
    config: EyerissConfig,
}

/// Everything the model derives for one layer: energy, access counts and the chosen mapping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EyerissLayer {
    /// Energy split by level and operand, plus compute.
    pub energy: LayerEnergy,
    /// Word accesses `[level][operand]` (DRAM, buffer, array, RF × W, I, O) for the whole batch
    /// and all groups, after sparsity; multiply by the level cost and `b_t/16` for energy.
    pub accesses: [[f64; 3]; 4],
    /// Dense MACs of the batch, `N·MACs`.
    pub dense_macs: u64,
    /// The PE-set fit.
    pub mapping: ArrayMapping,
    /// The cheapest blocking of one group.
    pub blocking: Blocking,
}

impl Eyeriss {
    /// A preset with Table IV costs and the default sparsity policy at batch `batch`.
    pub fn preset(preset: Preset, batch: usize) -> Result<Self> {
        EyerissConfig::new(preset, batch).validate()
    }

    /// The checked configuration.
    pub fn config(&self) -> &EyerissConfig {
        &self.config
    }

    /// Prices one layer and returns the mapping behind the figure.
    pub fn price(
        &self,
        geometry: &LayerGeometry,
        sparsity: &LayerSparsity,
        precision: Precision,
    ) -> Result<EyerissLayer> {
        let g = geometry;
        let cfg = &self.config;
        for (operand, bits) in [
            (Operand::Weight, precision.weight_bits),
            (Operand::Input, precision.input_bits),
            (Operand::Output, precision.output_bits),
        ] {
            if bits == 0 || bits > 64 {
                return Err(Error::BitWidth {
                    model: MODEL,
                    operand,
                    bits,
                    expected: "1..=64 bits",
                });
            }
        }
        let density = [
            support_density(g, Operand::Weight, &sparsity.weights, g.weights())?,
            support_density(g, Operand::Input, &sparsity.inputs, g.in_features())?,
            support_density(g, Operand::Output, &sparsity.outputs, g.out_features())?,
        ];
        let nonzero_weights = sparsity.weights.nonzeros(g.weights())?;
        let n = cfg.batch;
        let dense_macs = (n * g.macs()) as u64;
        let effective_macs = n as f64 * effective_macs(g, sparsity, density)?;

        let Setup {
            problem,
            mapping,
            factor,
            bits,
            levels,
        } = self.setup(g, precision, density);
        let Some((blocking, _)) = blocking::search(&problem) else {
            return Err(unmappable(&problem));
        };
        let group = blocking::accesses(&problem, &blocking);
        let groups = g.groups() as f64;
        let gated = if cfg.policy.zero_gating {
            effective_macs
        } else {
            dense_macs as f64
        };
        let mut accesses = [[0.0; 3]; 4];
        let mut energy = LayerEnergy {
            compute: gated * cfg.costs.mac * bits[0] * bits[1],
            nonzero_weights,
            effective_macs,
            ..LayerEnergy::default()
        };
        for v in 0..4 {
            for t in 0..3 {
                let words = if v == 3 {
                    // RS register files: W 1, I 1, O 2 (read + write) per executed MAC.
                    gated * if t == 2 { 2.0 } else { 1.0 }
                } else {
                    group[v][t] * groups * factor[v][t] / bits[t]
                };
                accesses[v][t] = words;
                energy.data[v][t] = words * levels[v] * bits[t];
            }
        }
        Ok(EyerissLayer {
            energy,
            accesses,
            dense_macs,
            mapping,
            blocking,
        })
    }
}

/// The search problem of one group plus the per-word factors it was priced with.
pub(crate) struct Setup {
    pub(crate) problem: Problem,
    pub(crate) mapping: ArrayMapping,
    /// `b_t/16` times what sparsity keeps, per level and operand.
    pub(crate) factor: [[f64; 3]; 4],
    /// `b_t/16` per operand.
    pub(crate) bits: [f64; 3],
    /// Cost of one word per level.
    pub(crate) levels: [f64; 4],
}

impl Eyeriss {
    pub(crate) fn setup(
        &self,
        g: &LayerGeometry,
        precision: Precision,
        density: [f64; 3],
    ) -> Setup {
        let cfg = &self.config;
        let (r, s) = g.kernel();
        let wp = g.in_w() + 2 * g.padding().1;
        let hw = cfg.hardware;
        let mapping = mapping::fit(r, g.out_h(), g.stride().0, hw.rows, hw.cols);
        let (e1, h1, f) = (mapping.strip_rows, mapping.strip_in_rows, g.out_w());
        let bits = [
            precision.weight_bits,
            precision.input_bits,
            precision.output_bits,
        ]
        .map(|b| f64::from(b) / 16.0);
        let mu = cfg.policy.metadata_overhead;
        let levels = cfg.costs.levels();
        // Per-word factor of each level and operand: width, then what sparsity removes.
        let mut factor = [[0.0; 3]; 4];
        for (v, row) in factor.iter_mut().enumerate() {
            for (t, x) in row.iter_mut().enumerate() {
                let keep = match v {
                    0 => (density[t] + mu).min(1.0),
                    1 | 2 if cfg.policy.on_chip == OnChipData::Compressed => density[t],
                    _ => 1.0,
                };
                *x = bits[t] * keep;
            }
        }
        let mut price = [[0.0; 3]; 3];
        for (v, row) in price.iter_mut().enumerate() {
            for (t, x) in row.iter_mut().enumerate() {
                *x = levels[v] * factor[v][t];
            }
        }
        let problem = Problem {
            dims: [
                cfg.batch * mapping.fold_w,
                g.channels_per_group(),
                g.out_channels() / g.groups(),
            ],
            unit: [r * s, h1 * wp, e1 * f],
            glb_unit: [r * s, h1 * wp * mapping.fold_h, e1 * f],
            array_unit: [r * s * e1, r * e1 * wp, r * e1 * f],
            fold_h: mapping.fold_h,
            s,
            replicas: mapping.replicas(),
            glb_words: hw.glb_words,
            rf_words: hw.rf_words,
            price,
        };
        Setup {
            problem,
            mapping,
            factor,
            bits,
            levels,
        }
    }
}

impl EnergyModel for Eyeriss {
    fn name(&self) -> String {
        let c = &self.config;
        let custom = if c.hardware == c.preset.hardware() {
            ""
        } else {
            " (custom array)"
        };
        format!("eyeriss-{}{custom} batch {}", c.preset, c.batch)
    }

    fn unit(&self) -> EnergyUnit {
        EnergyUnit::Mac16
    }

    fn layer_energy(
        &self,
        geometry: &LayerGeometry,
        sparsity: &LayerSparsity,
        precision: Precision,
    ) -> tensor_core::Result<LayerEnergy> {
        Ok(self.price(geometry, sparsity, precision)?.energy)
    }
}

fn unmappable(p: &Problem) -> Error {
    let rf_needed = 2 * p.s + 1;
    if rf_needed > p.rf_words {
        return Error::Unmappable {
            what: "one filter row, one ifmap window and one psum",
            level: "register file",
            needed: rf_needed,
            capacity: p.rf_words,
        };
    }
    Error::Unmappable {
        what: "one filter, one ifmap strip and its psums",
        level: "global buffer",
        needed: p.unit.iter().sum(),
        capacity: p.glb_words,
    }
}

/// Density of one operand's support, with bitmap sizes checked against the layer.
fn support_density(
    g: &LayerGeometry,
    operand: Operand,
    support: &Support,
    total: usize,
) -> Result<f64> {
    if let Support::Bitmap(b) = support
        && b.len() != total
    {
        let expected = match operand {
            Operand::Weight => g.weight_shape(),
            Operand::Input => vec![g.in_channels(), g.in_h(), g.in_w()],
            Operand::Output => vec![g.out_channels(), g.out_h(), g.out_w()],
        };
        return Err(tensor_core::Error::Shape {
            what: format!("{operand:?} support"),
            expected,
            got: b.shape().to_vec(),
        }
        .into());
    }
    Ok(support.density()?.get())
}

/// Effective MACs of one image: exact over bitmaps when no support is a fractional density,
/// else the density product.
fn effective_macs(g: &LayerGeometry, sp: &LayerSparsity, density: [f64; 3]) -> Result<f64> {
    // A density below 1 says how many values are zero but not where; no weight means no MAC.
    let partial = |s: &Support| matches!(s, Support::Density(d) if d.get() < 1.0);
    let dense = g.macs() as f64;
    if partial(&sp.weights) || partial(&sp.inputs) || density[0] == 0.0 {
        return Ok(dense * density[0] * density[1]);
    }
    let weights = match &sp.weights {
        Support::Bitmap(b) => Some(b),
        _ => None,
    };
    let inputs = match &sp.inputs {
        Support::Bitmap(b) => Some(b),
        _ => None,
    };
    if weights.is_none() && inputs.is_none() {
        return Ok(dense);
    }
    Ok(match g.kind() {
        LayerKind::Conv => exact_conv(g, weights, inputs)?,
        LayerKind::Fc => exact_fc(g, weights, inputs),
    } as f64)
}

/// (nonzero weight, nonzero input) pairs of a conv layer; padded taps count as executed.
fn exact_conv(g: &LayerGeometry, weights: Option<&Bitmap>, inputs: Option<&Bitmap>) -> Result<u64> {
    let real = tap_hits(g, InputSupport::Dense);
    let nonzero = match inputs {
        Some(b) => tap_hits(g, InputSupport::Mask(b)),
        None => real.clone(),
    };
    let positions = g.out_positions() as u64;
    // Per (channel, tap): outputs whose input there is nonzero or padding.
    let per_tap: Vec<u64> = nonzero
        .iter()
        .zip(&real)
        .map(|(&nz, &re)| nz + positions - re)
        .collect();
    let taps = g.kernel().0 * g.kernel().1;
    let cpg = g.channels_per_group();
    let dpg = g.out_channels() / g.groups();
    let per_filter = cpg * taps;
    let mut total = 0u64;
    for o in 0..g.out_channels() {
        let grp = o / dpg;
        let slice = &per_tap[grp * per_filter..(grp + 1) * per_filter];
        match weights {
            Some(w) => {
                let base = o * per_filter;
                total += slice
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| w.get(base + j))
                    .map(|(_, &h)| h)
                    .sum::<u64>();
            }
            None => total += slice.iter().sum::<u64>(),
        }
    }
    Ok(total)
}

/// (nonzero weight, nonzero input) pairs of an FC layer.
fn exact_fc(g: &LayerGeometry, weights: Option<&Bitmap>, inputs: Option<&Bitmap>) -> u64 {
    let k = g.in_features();
    let live = |i: usize| inputs.is_none_or(|b| b.get(i));
    match weights {
        None => g.out_channels() as u64 * (0..k).filter(|&i| live(i)).count() as u64,
        Some(w) => (0..g.out_channels())
            .map(|o| (0..k).filter(|&i| live(i) && w.get(o * k + i)).count() as u64)
            .sum(),
    }
}

#[cfg(test)]
mod tests;
