//! Re-exports of the tensor backend. Only this crate names candle and its version; every other
//! crate of the workspace reaches tensors through these paths.

pub use candle_core::backprop::GradStore;
pub use candle_core::{
    D, DType, Device, IndexOp, Module, ModuleT, Shape, Tensor, TensorId, Var, WithDType,
};
pub use candle_nn::{Optimizer, VarBuilder, VarMap};

/// The tensor backend itself, for what the curated re-exports do not cover (custom ops,
/// safetensors IO).
pub use candle_core as candle;

/// Layer constructors and functional ops of candle-nn (`conv2d`, `linear`, `batch_norm`, `ops`,
/// `loss`, `Init`, ...).
pub mod nn {
    pub use candle_nn::*;
}
