//! [`MomentumSgd`]: SGD with momentum and L2 weight decay, PyTorch semantics (candle-nn's SGD has
//! neither).

use crate::error::{Error, Result};
use crate::sgd::SgdConfig;
use crate::tensor::{GradStore, Optimizer, Tensor, Var};

/// SGD with momentum and weight decay: `d = g + wd·w`; `buf = d` on a parameter's first step,
/// then `buf = μ·buf + d`; `w ← w − lr·buf`.
///
/// It steps from a [`GradStore`], so gradient rewrites (sign gradients, masks) happen before the
/// step. Parameters without a gradient in the store are left untouched, momentum included.
#[derive(Debug)]
pub struct MomentumSgd {
    vars: Vec<Var>,
    buffers: Vec<Option<Tensor>>,
    config: SgdConfig,
}

impl MomentumSgd {
    /// An optimiser over `vars` (their order fixes the order of [`MomentumSgd::buffers`]).
    pub fn with_config(vars: Vec<Var>, config: SgdConfig) -> Result<Self> {
        let config = config.validate()?;
        let buffers = vec![None; vars.len()];
        Ok(Self {
            vars,
            buffers,
            config,
        })
    }

    /// The current configuration.
    pub fn config(&self) -> SgdConfig {
        self.config
    }

    /// Momentum buffers in variable order (`None` before a variable's first step).
    pub fn buffers(&self) -> &[Option<Tensor>] {
        &self.buffers
    }

    /// Restores momentum buffers (from a checkpoint); shapes must match the variables.
    pub fn set_buffers(&mut self, buffers: Vec<Option<Tensor>>) -> Result<()> {
        if buffers.len() != self.vars.len() {
            return Err(Error::Shape {
                what: "momentum buffers".into(),
                expected: vec![self.vars.len()],
                got: vec![buffers.len()],
            });
        }
        for (var, buf) in self.vars.iter().zip(&buffers) {
            if let Some(b) = buf
                && b.dims() != var.dims()
            {
                return Err(Error::Shape {
                    what: "momentum buffer".into(),
                    expected: var.dims().to_vec(),
                    got: b.dims().to_vec(),
                });
            }
        }
        self.buffers = buffers;
        Ok(())
    }

    /// One update from the gradients in `grads`.
    ///
    /// On the CPU (f32, contiguous) a parameter that already has a momentum buffer is updated in
    /// place in two fused passes, without temporaries; the buffers returned by
    /// [`MomentumSgd::buffers`] are therefore overwritten by later steps.
    pub fn step_grads(&mut self, grads: &GradStore) -> Result<()> {
        let SgdConfig {
            lr,
            momentum,
            weight_decay,
        } = self.config;
        for (var, buf) in self.vars.iter().zip(self.buffers.iter_mut()) {
            let Some(g) = grads.get(var) else { continue };
            let w = var.as_tensor();
            if momentum != 0.0
                && let Some(b) = buf
                && in_place_ok(&[w, g, b])
            {
                let update = MomentumUpdate {
                    momentum: momentum as f32,
                    weight_decay: weight_decay as f32,
                };
                b.inplace_op3(g, w, &update)?;
                w.inplace_op2(b, &Descend { lr: lr as f32 })?;
                continue;
            }
            let d = if weight_decay != 0.0 {
                (g + (w * weight_decay)?)?
            } else {
                // A copy: the buffer is later updated in place and must not alias the gradient.
                g.copy()?
            };
            let d = match buf.take() {
                Some(b) if momentum != 0.0 => ((b * momentum)? + d)?,
                _ => d,
            };
            var.set(&(w - (&d * lr)?)?)?;
            if momentum != 0.0 {
                *buf = Some(d);
            }
        }
        Ok(())
    }
}

/// Whether the in-place update applies: CPU f32 tensors of one shape, contiguous from offset 0.
fn in_place_ok(ts: &[&Tensor]) -> bool {
    ts.iter().all(|t| {
        matches!(t.device(), crate::tensor::Device::Cpu)
            && t.dtype() == crate::tensor::DType::F32
            && t.layout().is_contiguous()
            && t.dims() == ts[0].dims()
    })
}

fn contiguous_f32<'a>(
    s: &'a candle_core::CpuStorage,
    l: &candle_core::Layout,
) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("momentum update: non-contiguous operand"),
    }
}

fn contiguous_f32_mut<'a>(
    s: &'a mut candle_core::CpuStorage,
    l: &candle_core::Layout,
) -> candle_core::Result<&'a mut [f32]> {
    let (candle_core::CpuStorage::F32(data), Some((a, b))) = (s, l.contiguous_offsets()) else {
        candle_core::bail!("momentum update: expected a contiguous f32 buffer")
    };
    Ok(&mut data[a..b])
}

/// `buf ← μ·buf + g + wd·w`, in place on the buffer; sources `(g, w)` (cpu-kernels' loop).
struct MomentumUpdate {
    momentum: f32,
    weight_decay: f32,
}

impl candle_core::InplaceOp3 for MomentumUpdate {
    fn name(&self) -> &'static str {
        "momentum-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
        s3: &candle_core::CpuStorage,
        l3: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let (g, w) = (contiguous_f32(s2, l2)?, contiguous_f32(s3, l3)?);
        let buf = contiguous_f32_mut(s1, l1)?;
        cpu_kernels::sgd::momentum_update(buf, g, w, self.momentum, self.weight_decay)
            .map_err(candle_core::Error::wrap)
    }
}

/// `w ← w − lr·buf`, in place on the weight; source `buf` (cpu-kernels' loop).
struct Descend {
    lr: f32,
}

impl candle_core::InplaceOp2 for Descend {
    fn name(&self) -> &'static str {
        "sgd-descend"
    }

    fn cpu_fwd(
        &self,
        s1: &mut candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let buf = contiguous_f32(s2, l2)?;
        let w = contiguous_f32_mut(s1, l1)?;
        cpu_kernels::sgd::descend(w, buf, self.lr).map_err(candle_core::Error::wrap)
    }
}

impl Optimizer for MomentumSgd {
    type Config = SgdConfig;

    fn new(vars: Vec<Var>, config: SgdConfig) -> candle_core::Result<Self> {
        Self::with_config(vars, config).map_err(candle_core::Error::wrap)
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step_grads(grads).map_err(candle_core::Error::wrap)
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }
}
