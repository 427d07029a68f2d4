//! [`SeededInit`]: parameters drawn on the host from a seeded stream per name.

use std::sync::PoisonError;

use rand_distr::{Distribution, Normal, Uniform};

use super::{Rng, rng};
use crate::error::Result;
use crate::tensor::nn::init::NormalOrUniform;
use crate::tensor::nn::{Init, var_builder::SimpleBackend};
use crate::tensor::{DType, Device, Shape, Tensor, Var, VarBuilder, VarMap};

/// Seeds the device's own generator where it has one (CUDA). The CPU generator cannot be seeded,
/// which is why CPU randomness never comes from it in this workspace.
pub fn seed_device(device: &Device, seed: u64) -> Result<()> {
    match device {
        Device::Cpu => Ok(()),
        _ => Ok(device.set_seed(seed)?),
    }
}

/// A [`VarMap`] whose missing variables are initialised reproducibly: the values of a parameter
/// depend only on the seed and its name, never on construction order or on the device.
#[derive(Clone)]
pub struct SeededInit {
    vars: VarMap,
    seed: u64,
}

impl SeededInit {
    /// An empty store for the given seed.
    pub fn new(seed: u64) -> Self {
        Self {
            vars: VarMap::new(),
            seed,
        }
    }

    /// The seed parameters are drawn from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A var builder creating (or reusing) variables in this store.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), dtype, device.clone())
    }

    /// The variables created so far (for saving, loading and optimisers).
    pub fn var_map(&self) -> &VarMap {
        &self.vars
    }

    /// All variables sorted by name: a deterministic order for optimiser state.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let data = self
            .vars
            .data()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<_> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn init_values(&self, shape: &Shape, name: &str, init: Init) -> Vec<f32> {
        let n = shape.elem_count();
        let mut rng = rng(self.seed, &format!("init/{name}"));
        let normal = |rng: &mut Rng, mean: f64, std: f64| -> Vec<f32> {
            match Normal::new(mean, std) {
                Ok(d) => (0..n).map(|_| d.sample(rng) as f32).collect(),
                Err(_) => vec![mean as f32; n],
            }
        };
        let uniform = |rng: &mut Rng, lo: f64, up: f64| -> Vec<f32> {
            match Uniform::new(lo, up) {
                Ok(d) => (0..n).map(|_| d.sample(rng) as f32).collect(),
                Err(_) => vec![lo as f32; n],
            }
        };
        match init {
            Init::Const(c) => vec![c as f32; n],
            Init::Randn { mean, stdev } => normal(&mut rng, mean, stdev),
            Init::Uniform { lo, up } => uniform(&mut rng, lo, up),
            Init::Kaiming {
                dist,
                fan,
                non_linearity,
            } => {
                let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
                match dist {
                    NormalOrUniform::Normal => normal(&mut rng, 0.0, std),
                    NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        uniform(&mut rng, -bound, bound)
                    }
                }
            }
        }
    }
}

impl SimpleBackend for SeededInit {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut data = self
            .vars
            .data()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(var) = data.get(name) {
            if var.shape() != &shape {
                candle_core::bail!(
                    "shape mismatch on {name}: requested {shape:?}, stored {:?}",
                    var.shape()
                )
            }
            return Ok(var.as_tensor().clone());
        }
        let values = self.init_values(&shape, name, init);
        let t = Tensor::from_vec(values, shape, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(dev)?;
        let var = Var::from_tensor(&t)?;
        let out = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(out)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let data = self
            .vars
            .data()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match data.get(name) {
            Some(v) => Ok(v.as_tensor().clone()),
            None => candle_core::bail!("no variable named {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        let data = self
            .vars
            .data()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        data.contains_key(name)
    }
}
