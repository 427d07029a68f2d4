//! Test helpers (feature `testing`): a device macro and approximate comparisons with explicit
//! tolerances.

use crate::error::Result;
use crate::tensor::{DType, Tensor};

/// Generates one test per available device from a function `fn(&Device) -> anyhow::Result<()>`
/// (or any error type): `_cpu` always, `_cuda` with the `cuda` feature.
///
/// ```ignore
/// fn conv_shapes(dev: &Device) -> anyhow::Result<()> { /* ... */ Ok(()) }
/// tensor_core::test_device!(conv_shapes, conv_shapes_cpu, conv_shapes_cuda);
/// ```
#[macro_export]
macro_rules! test_device {
    ($fn_name:ident, $test_cpu:ident, $test_cuda:ident) => {
        #[test]
        fn $test_cpu() -> ::std::result::Result<(), Box<dyn ::std::error::Error>> {
            $fn_name(&$crate::tensor::Device::Cpu)?;
            Ok(())
        }

        #[cfg(feature = "cuda")]
        #[test]
        fn $test_cuda() -> ::std::result::Result<(), Box<dyn ::std::error::Error>> {
            $fn_name(&$crate::tensor::Device::new_cuda(0)?)?;
            Ok(())
        }
    };
}

/// Largest absolute difference between two same-shape tensors, computed in f64.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    let d = (a.to_dtype(DType::F64)? - b.to_dtype(DType::F64)?)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f64>()?;
    Ok(d)
}

/// Asserts `|a − b| ≤ atol + rtol·|b|`.
#[track_caller]
pub fn assert_close(a: f64, b: f64, atol: f64, rtol: f64) {
    assert!(
        (a - b).abs() <= atol + rtol * b.abs(),
        "{a} and {b} differ by {} (> atol {atol} + rtol {rtol} · |b|)",
        (a - b).abs()
    );
}

/// Asserts two tensors have the same shape and differ by at most `atol` anywhere.
#[track_caller]
pub fn assert_tensor_close(a: &Tensor, b: &Tensor, atol: f64) {
    assert_eq!(a.dims(), b.dims(), "tensor shapes differ");
    let d = match max_abs_diff(a, b) {
        Ok(d) => d,
        Err(e) => panic!("cannot compare tensors: {e}"),
    };
    assert!(d <= atol, "tensors differ by {d} (> atol {atol})");
}
