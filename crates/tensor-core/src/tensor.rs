//! Re-exports of the tensor backend. Only this crate names candle and its version; every other
//! crate of the workspace reaches tensors through these paths.

pub use candle_core::backprop::GradStore;
pub use candle_core::{
    D, DType, Device, IndexOp, Module, ModuleT, Shape, Tensor, TensorId, Var, WithDType,
};
pub use candle_nn::{Optimizer, VarBuilder, VarMap};

/// The tensor backend itself, for what the curated re-exports do not cover (custom ops with
/// their storage and layout types, safetensors IO, the backend's error type).
pub use candle_core as candle;

/// The parts of candle-nn the workspace uses: layers and their configs, initialisers,
/// optimisers, losses and functional ops.
pub mod nn {
    pub use candle_nn::{
        AdamW, BatchNorm, BatchNormConfig, Init, Linear, ParamsAdamW, SGD, batch_norm, init,
        linear, loss, ops, var_builder,
    };
}
