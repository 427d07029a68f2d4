//! The global fine-tuning (`docs/energy-aware-pruning.md` §2 "Global step"): momentum SGD with
//! every prunable layer's nonzero pattern frozen.

use std::ops::ControlFlow;

use tensor_core::tensor::{DType, Var, nn};
use tensor_core::{
    BatchSource, BatchStats, EvalStats, Mask, MomentumSgd, Network, Observer, RunStart, Step,
    finite_loss,
};

use super::evaluate;
use crate::config::FineTuneConfig;
use crate::error::{Error, Result};

/// The phase the fine-tuning's [`Step`]s name.
const PHASE: &str = "fine-tuning";

/// Global fine-tuning (spec §2 "Global step"): momentum SGD on `params` over `train`, the
/// nonzero pattern of every prunable layer frozen by re-applying its [`Mask`] after each step,
/// so pruned weights stay exactly 0. Reports epochs, batches and evaluations to `observer` and
/// returns the final validation accuracy (the current one when `epochs` is 0).
///
/// A NaN or infinite training loss is [`tensor_core::Error::Diverged`] and an observer's
/// `Break` is [`tensor_core::Error::Interrupted`], both at a `fine-tuning` [`Step`] and carried
/// in [`Error::Core`].
pub fn fine_tune(
    net: &dyn Network,
    params: &[Var],
    train: &mut dyn BatchSource,
    val: &mut dyn BatchSource,
    config: FineTuneConfig,
    observer: &mut dyn Observer,
) -> Result<f64> {
    let config = config.validate()?;
    if config.epochs == 0 {
        return Ok(evaluate(net, val)?.accuracy);
    }
    let masks = net
        .layers()
        .iter()
        .map(|l| Mask::nonzero_of(l.weight.as_tensor()))
        .collect::<tensor_core::Result<Vec<_>>>()?;
    let mut sgd = MomentumSgd::with_config(params.to_vec(), config.sgd)?;
    let per_epoch = train.batches_per_epoch();
    if per_epoch == 0 {
        return Err(Error::EmptyData {
            what: "training source",
        });
    }
    observer.on_run_start(&RunStart {
        name: "energy-prune fine-tuning".into(),
        epochs: config.epochs,
        batches_per_epoch: per_epoch,
    });
    let mut accuracy = 0.0;
    for epoch in 0..config.epochs {
        observer.on_epoch_start(epoch);
        for batch in 0..per_epoch {
            let (xs, ys) = train.batch(epoch, batch)?;
            let logits = net.forward_t(&xs, true)?;
            let loss = nn::loss::cross_entropy(&logits, &ys)?;
            let v = finite_loss(
                f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?),
                || Step::new(PHASE, epoch, batch),
            )?;
            let grads = loss.backward()?;
            sgd.step_grads(&grads)?;
            for (l, m) in net.layers().iter().zip(&masks) {
                l.weight.set(&m.apply(l.weight.as_tensor())?)?;
            }
            let stats = BatchStats {
                epoch,
                batch,
                loss: v,
                lr: config.sgd.lr,
                samples: xs.dim(0)?,
            };
            if let ControlFlow::Break(()) = observer.on_batch_end(&stats) {
                return Err(tensor_core::Error::Interrupted {
                    at: Step::new(PHASE, epoch, batch),
                }
                .into());
            }
        }
        let eval = evaluate(net, val)?;
        accuracy = eval.accuracy;
        observer.on_eval(&EvalStats {
            epoch,
            split: "val".into(),
            accuracy,
            loss: eval.loss,
            samples: eval.samples,
        });
    }
    Ok(accuracy)
}
