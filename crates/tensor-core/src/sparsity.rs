//! Sparsity and precision of one layer's operands: what an energy model needs besides geometry.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A fraction of nonzero entries, checked to lie in `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Density(f64);

impl Density {
    /// Every entry nonzero.
    pub const DENSE: Density = Density(1.0);
    /// Every entry zero.
    pub const EMPTY: Density = Density(0.0);

    /// A density in `[0, 1]`; NaN and values outside the range are errors.
    pub fn new(value: f64) -> Result<Self> {
        if (0.0..=1.0).contains(&value) {
            Ok(Density(value))
        } else {
            Err(Error::OutOfRange {
                what: "density",
                value,
                expected: "a fraction in [0, 1]",
            })
        }
    }

    /// `nonzero / total`; `total = 0` is an error because the density is undefined.
    pub fn from_counts(nonzero: u64, total: u64) -> Result<Self> {
        if total == 0 || nonzero > total {
            return Err(Error::OutOfRange {
                what: "nonzero count",
                value: nonzero as f64,
                expected: "at most the (nonzero) total count",
            });
        }
        Ok(Density(nonzero as f64 / total as f64))
    }

    /// The fraction as a float.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Density {
    type Error = Error;
    fn try_from(value: f64) -> Result<Self> {
        Density::new(value)
    }
}

impl From<Density> for f64 {
    fn from(d: Density) -> f64 {
        d.0
    }
}

/// An energy budget relative to the dense model's energy, checked to lie in `(0, 1]`: the `b` of
/// "energy ≤ b · E_dense".
///
/// ```
/// use tensor_core::RelativeBudget;
/// assert_eq!(RelativeBudget::new(0.2)?.get(), 0.2);
/// assert!(RelativeBudget::new(0.0).is_err());
/// assert!(RelativeBudget::new(1.5).is_err());
/// # Ok::<(), tensor_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct RelativeBudget(f64);

impl RelativeBudget {
    /// The whole dense energy.
    pub const DENSE: RelativeBudget = RelativeBudget(1.0);

    /// A budget in `(0, 1]`; NaN, zero, negative values and values above 1 are errors.
    pub fn new(value: f64) -> Result<Self> {
        if value > 0.0 && value <= 1.0 {
            Ok(RelativeBudget(value))
        } else {
            Err(Error::OutOfRange {
                what: "relative energy budget",
                value,
                expected: "a fraction of the dense energy in (0, 1]",
            })
        }
    }

    /// The fraction as a float.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for RelativeBudget {
    type Error = Error;
    fn try_from(value: f64) -> Result<Self> {
        RelativeBudget::new(value)
    }
}

impl From<RelativeBudget> for f64 {
    fn from(b: RelativeBudget) -> f64 {
        b.0
    }
}

impl std::fmt::Display for RelativeBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which entries of a tensor are nonzero, packed one bit per entry in row-major order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bitmap {
    shape: Vec<usize>,
    words: Vec<u64>,
}

impl Bitmap {
    /// An all-zero bitmap of the given shape.
    pub fn zeros(shape: &[usize]) -> Self {
        let n: usize = shape.iter().product();
        Self {
            shape: shape.to_vec(),
            words: vec![0; n.div_ceil(64)],
        }
    }

    /// An all-one bitmap of the given shape.
    pub fn ones(shape: &[usize]) -> Self {
        let mut b = Self::zeros(shape);
        for i in 0..b.len() {
            b.set(i, true);
        }
        b
    }

    /// The bitmap of the nonzero entries of a row-major value slice.
    pub fn from_values<T: Copy + PartialEq + Default>(
        shape: &[usize],
        values: &[T],
    ) -> Result<Self> {
        Self::from_fn(shape, values, |v| v != T::default())
    }

    /// A bitmap from booleans in row-major order.
    pub fn from_bools(shape: &[usize], bits: &[bool]) -> Result<Self> {
        Self::from_fn(shape, bits, |b| b)
    }

    fn from_fn<T: Copy>(shape: &[usize], values: &[T], f: impl Fn(T) -> bool) -> Result<Self> {
        let n: usize = shape.iter().product();
        if values.len() != n {
            return Err(Error::Shape {
                what: "bitmap values".into(),
                expected: shape.to_vec(),
                got: vec![values.len()],
            });
        }
        let mut b = Self::zeros(shape);
        for (i, &v) in values.iter().enumerate() {
            if f(v) {
                b.words[i / 64] |= 1 << (i % 64);
            }
        }
        Ok(b)
    }

    /// The shape the bits are laid out in.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the bitmap has no entries at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether entry `i` (row-major) is nonzero. Panics if `i` is out of bounds.
    pub fn get(&self, i: usize) -> bool {
        assert!(i < self.len(), "bitmap index {i} out of bounds");
        self.words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Sets entry `i` (row-major). Panics if `i` is out of bounds.
    pub fn set(&mut self, i: usize, value: bool) {
        assert!(i < self.len(), "bitmap index {i} out of bounds");
        if value {
            self.words[i / 64] |= 1 << (i % 64);
        } else {
            self.words[i / 64] &= !(1 << (i % 64));
        }
    }

    /// Number of nonzero entries.
    pub fn count_ones(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Fraction of nonzero entries (an empty bitmap is an error: its density is undefined).
    pub fn density(&self) -> Result<Density> {
        Density::from_counts(self.count_ones(), self.len() as u64)
    }
}

/// What is known about one operand's nonzero pattern.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Support {
    /// Every entry nonzero.
    Dense,
    /// Only the fraction of nonzero entries is known.
    Density(Density),
    /// The exact nonzero pattern.
    Bitmap(Bitmap),
}

impl Support {
    /// The fraction of nonzero entries, whatever the representation.
    pub fn density(&self) -> Result<Density> {
        match self {
            Support::Dense => Ok(Density::DENSE),
            Support::Density(d) => Ok(*d),
            Support::Bitmap(b) => b.density(),
        }
    }

    /// Number of nonzero entries out of `total`: exact for bitmaps (whose size must equal
    /// `total`), rounded to the nearest integer for densities.
    pub fn nonzeros(&self, total: usize) -> Result<u64> {
        match self {
            Support::Dense => Ok(total as u64),
            Support::Density(d) => Ok((d.get() * total as f64).round() as u64),
            Support::Bitmap(b) => {
                if b.len() != total {
                    return Err(Error::Shape {
                        what: "support bitmap".into(),
                        expected: vec![total],
                        got: b.shape().to_vec(),
                    });
                }
                Ok(b.count_ones())
            }
        }
    }
}

/// The nonzero patterns of a layer's weights, inputs and outputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerSparsity {
    /// Weight support (shape `[d, c/g, r_h, r_w]` or `[d, in]` for bitmaps).
    pub weights: Support,
    /// Input support (shape `[c, h, w]` for bitmaps; batch-independent, e.g. an input mask).
    pub inputs: Support,
    /// Output support (shape `[d, h', w']` for bitmaps).
    pub outputs: Support,
}

impl LayerSparsity {
    /// Everything dense.
    pub fn dense() -> Self {
        Self {
            weights: Support::Dense,
            inputs: Support::Dense,
            outputs: Support::Dense,
        }
    }

    /// Given weight density, dense activations.
    pub fn with_weight_density(density: Density) -> Self {
        Self {
            weights: Support::Density(density),
            ..Self::dense()
        }
    }
}

/// Operand bit-widths of a layer (weights, inputs, outputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Precision {
    /// Bits per weight.
    pub weight_bits: u8,
    /// Bits per input activation.
    pub input_bits: u8,
    /// Bits per output activation (and partial sum).
    pub output_bits: u8,
}

impl Precision {
    /// 16-bit fixed point everywhere, the reference point of both inference models.
    pub const FIXED16: Precision = Precision {
        weight_bits: 16,
        input_bits: 16,
        output_bits: 16,
    };

    /// Checked constructor: every width in `1..=64`.
    pub fn new(weight_bits: u8, input_bits: u8, output_bits: u8) -> Result<Self> {
        for b in [weight_bits, input_bits, output_bits] {
            if b == 0 || b > 64 {
                return Err(Error::OutOfRange {
                    what: "bit-width",
                    value: f64::from(b),
                    expected: "1..=64 bits",
                });
            }
        }
        Ok(Self {
            weight_bits,
            input_bits,
            output_bits,
        })
    }
}

impl Default for Precision {
    /// 16/16/16, the precision both inference models are calibrated for.
    fn default() -> Self {
        Self::FIXED16
    }
}
