//! The crate's error type. Trait methods of [`tensor_core::EnergyModel`] return tensor-core's
//! error; [`Error`] converts into it (boxed in [`tensor_core::Error::Model`]) so callers can
//! downcast back to the typed variant.

use tensor_core::{LayerId, LayerKind, Operand};

use crate::training::dataflow::Product;

/// Everything that can go wrong when pricing layers, ledgers or reading tool files.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A failure of the shared vocabulary (invalid geometry, density, shape, ...).
    #[error(transparent)]
    Core(#[from] tensor_core::Error),

    /// A row batch of the input cache cannot hold the `r` rows one output row needs (ICLR'19
    /// model, docs/energy-models.md A.3). The layer is attached by the caller's `Layer` wrapper.
    #[error("input cache of {capacity} values holds only {rows} input rows, the kernel needs {r}")]
    InputCacheTooSmall {
        /// Rows that fit in one batch.
        rows: usize,
        /// Kernel rows.
        r: usize,
        /// Input-cache capacity in values.
        capacity: usize,
    },

    /// A relative energy budget below the floor no weight choice can reach (docs/energy-models.md A.5).
    #[error("relative energy budget {budget} is below the floor {floor}")]
    BudgetInfeasible {
        /// The requested budget, relative to the dense energy.
        budget: f64,
        /// The floor, relative to the dense energy.
        floor: f64,
    },

    /// An operand bit-width the model cannot price.
    #[error("{operand:?} bit-width {bits} is not supported by {model}: expected {expected}")]
    BitWidth {
        /// The model.
        model: &'static str,
        /// Which operand.
        operand: Operand,
        /// The width given.
        bits: u8,
        /// What would be accepted.
        expected: &'static str,
    },

    /// An operand support the model cannot price (a density where a bitmap is needed, a mask on
    /// a layer kind that is never masked).
    #[error("{model} cannot price a {kind} layer whose {operand:?} support is {given}: {reason}")]
    Support {
        /// The model.
        model: &'static str,
        /// Conv or FC.
        kind: LayerKind,
        /// Which operand.
        operand: Operand,
        /// What was given (`density`, `bitmap`).
        given: &'static str,
        /// What the model needs instead.
        reason: &'static str,
    },

    /// A hardware or pricing parameter outside its valid range.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The parameter.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// No per-MAC energy for a pair of operand widths in an op-energy table.
    #[error("no per-MAC energy for {a_bits}-bit x {b_bits}-bit operands in table {table}")]
    MissingOpEnergy {
        /// The table's name.
        table: String,
        /// First operand width.
        a_bits: u8,
        /// Second operand width.
        b_bits: u8,
    },

    /// A layer the Eyeriss mapper cannot place: even its smallest tile overflows a storage
    /// level (docs/energy-models.md B.5). The layer is attached by the caller's `Layer` wrapper.
    #[error("{what} needs {needed} words but the {level} holds {capacity}")]
    Unmappable {
        /// What does not fit (`one unit of weights, ifmap strip and psums`, ...).
        what: &'static str,
        /// The storage level (`global buffer`, `register file`).
        level: &'static str,
        /// Words the smallest tile needs.
        needed: usize,
        /// Words the level holds.
        capacity: usize,
    },

    /// A ledger names a layer the dataflow training pricer has no geometry for
    /// (docs/training-energy-dataflow.md: every product is priced from the layer's geometry).
    #[error("the ledger names layer {layer}, for which no geometry was given")]
    MissingGeometry {
        /// The layer.
        layer: LayerId,
    },

    /// A ledger's MACs per sample for one product of a layer disagree with the MACs of the
    /// geometry the product is priced from, so the geometry cannot be this layer's.
    #[error(
        "layer {layer}: the ledger records {ledger} {product} MACs per sample but the geometry \
         has {geometry}"
    )]
    LedgerMismatch {
        /// The layer.
        layer: LayerId,
        /// The product whose MACs disagree.
        product: Product,
        /// MACs per sample in the ledger.
        ledger: u64,
        /// MACs per sample of the geometry.
        geometry: u64,
    },

    /// A malformed line of an MIT estimation-tool layer file (docs/energy-models.md B.9).
    #[error("line {line}: {field}: {reason}")]
    ToolFormat {
        /// 1-based line number.
        line: usize,
        /// The field that is wrong (`index`, `ifmap.height`, `stride`, ...).
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An ONNX model that cannot be read or priced (docs/energy-models.md E): `at` names the
    /// node, initializer or input.
    #[error("ONNX model {file}: {at}: {reason}")]
    Onnx {
        /// The model file.
        file: String,
        /// Where in the model (`node `/features/Conv` (Conv)`, `graph input `x``, `file`).
        at: String,
        /// What is wrong.
        reason: String,
    },

    /// An ONNX operator the importer does not know: it is neither priced nor skipped.
    #[error(
        "ONNX model {file}: {node}: operator {op_type} is not supported (neither a layer the \
         energy models price nor a known operator without weights)"
    )]
    OnnxOperator {
        /// The model file.
        file: String,
        /// The node (name or index).
        node: String,
        /// The operator, with its domain when not the default one.
        op_type: String,
    },
}

impl From<Error> for tensor_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(core) => core,
            other => tensor_core::Error::Model(Box::new(other)),
        }
    }
}

/// Result alias with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
