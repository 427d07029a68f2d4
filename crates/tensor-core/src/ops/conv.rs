//! The convolution as candle custom ops over cpu-kernels' im2col/GEMM kernel.

use cpu_kernels::conv::{Conv2dGeom, ConvGrads};

use super::{storage_slice, with_slice};
use crate::error::{Error, Result};
use crate::geometry::ConvParams;
use crate::tensor::Tensor;
use crate::tensor::candle::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape};

/// What the kernels and candle's convolutions take of a [`ConvParams`]: one stride and one
/// padding for both directions, and the groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Sliding {
    pub(super) stride: usize,
    pub(super) padding: usize,
    pub(super) groups: usize,
}

impl Sliding {
    /// The sliding of `params` for the weight `w` `[d, c/g, kh, kw]`: its kernel must be the
    /// weight's, and stride and padding the same in both directions.
    pub(super) fn of(params: ConvParams, w: &Tensor) -> Result<Self> {
        let dims = w.dims();
        let kernel = match dims {
            &[_, _, kh, kw] => (kh, kw),
            _ => {
                return Err(Error::Shape {
                    what: "conv2d weight".into(),
                    expected: vec![0, 0, params.kernel.0, params.kernel.1],
                    got: dims.to_vec(),
                });
            }
        };
        if kernel != params.kernel {
            return Err(Error::Shape {
                what: "conv2d weight kernel".into(),
                expected: vec![params.kernel.0, params.kernel.1],
                got: vec![kernel.0, kernel.1],
            });
        }
        let Some((stride, padding)) = params.symmetric() else {
            return Err(Error::Unsupported {
                what: format!(
                    "a convolution with stride {:?} and padding {:?}: the ops take the same \
                     stride and padding in both directions",
                    params.stride, params.padding
                ),
            });
        };
        Ok(Self {
            stride,
            padding,
            groups: params.groups,
        })
    }

    fn kernel(self) -> cpu_kernels::Conv2dParams {
        cpu_kernels::Conv2dParams {
            stride: self.stride,
            padding: self.padding,
            groups: self.groups,
        }
    }
}

/// Input, weight and bias gradients as tensors, each present when asked for.
type Grads = (Option<Tensor>, Option<Tensor>, Option<Tensor>);

/// The backward kernel on contiguous f32 CPU tensors, with the gradients as tensors shaped like
/// the input, the weight and the bias.
fn gradients(
    g: &Conv2dGeom,
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    needs: (bool, bool, bool),
) -> Result<Grads> {
    let ConvGrads { dx, dw, db } = with_slice(x, |xs| {
        with_slice(w, |ws| with_slice(dy, |dys| g.backward(xs, ws, dys, needs)))
    })????;
    let dev = x.device();
    let dx = dx
        .map(|v| Tensor::from_vec(v, g.input_dims().as_slice(), dev))
        .transpose()?;
    let dw = dw
        .map(|v| Tensor::from_vec(v, w.shape(), dev))
        .transpose()?;
    let db = db
        .map(|v| Tensor::from_vec(v, g.weight_dims()[0], dev))
        .transpose()?;
    Ok((dx, dw, db))
}

/// The custom op: inputs `(x, w)` or `(x, w, bias)`.
struct Conv2dOp {
    geom: Conv2dGeom,
}

impl Conv2dOp {
    fn name(&self) -> &'static str {
        "fast-conv2d"
    }

    fn out_shape(&self) -> Shape {
        Shape::from(self.geom.output_dims().as_slice())
    }

    fn forward(
        &self,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
    ) -> candle_core::Result<CpuStorage> {
        let y = self
            .geom
            .forward(x, w, bias)
            .map_err(candle_core::Error::wrap)?;
        Ok(CpuStorage::F32(y))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        grad: &Tensor,
    ) -> candle_core::Result<Grads> {
        let grad = grad.contiguous()?;
        // A batch that is not part of the graph (the network input) needs no gradient.
        let needs = (
            x.track_op(),
            w.track_op(),
            bias.is_some_and(Tensor::track_op),
        );
        gradients(&self.geom, x, w, &grad, needs).map_err(candle_core::Error::wrap)
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        Conv2dOp::name(self)
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (storage_slice(s1, l1)?, storage_slice(s2, l2)?);
        Ok((self.forward(x, w, None)?, self.out_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = Conv2dOp::bwd(self, x, w, None, grad)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        Conv2dOp::name(self)
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (storage_slice(s1, l1)?, storage_slice(s2, l2)?);
        let bias = storage_slice(s3, l3)?;
        Ok((self.forward(x, w, Some(bias))?, self.out_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Grads> {
        Conv2dOp::bwd(self, x, w, Some(bias), grad)
    }
}

pub(super) fn conv2d(
    xs: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    params: Sliding,
) -> Result<Tensor> {
    let geom = Conv2dGeom::new(xs.dims(), w.dims(), params.kernel())?;
    let (xs, w) = (xs.contiguous()?, w.contiguous()?);
    let op = Conv2dOp { geom };
    Ok(match bias {
        None => xs.apply_op2(&w, op)?,
        Some(b) => {
            let d = geom.weight_dims()[0];
            if b.dims() != [d] {
                return Err(Error::Shape {
                    what: "conv2d bias".into(),
                    expected: vec![d],
                    got: b.dims().to_vec(),
                });
            }
            xs.apply_op3(&w, &b.contiguous()?, op)?
        }
    })
}

/// Input and weight gradients of `conv2d(xs, w)` for the output gradient `dy`, outside autograd
/// (each only when asked for; `xs` is read only for the weight gradient).
pub(super) fn conv2d_backward(
    xs: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    params: Sliding,
    (need_dx, need_dw): (bool, bool),
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let g = Conv2dGeom::new(xs.dims(), w.dims(), params.kernel())?;
    let out = g.output_dims();
    if dy.dims() != out {
        return Err(Error::Shape {
            what: "conv2d output gradient".into(),
            expected: out.to_vec(),
            got: dy.dims().to_vec(),
        });
    }
    let (xs, w, dy) = (xs.contiguous()?, w.contiguous()?, dy.contiguous()?);
    let (dx, dw, _) = gradients(&g, &xs, &w, &dy, (need_dx, need_dw, false))?;
    Ok((dx, dw))
}
