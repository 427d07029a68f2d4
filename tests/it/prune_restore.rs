//! energy-prune on the zoo's LeNet-5 with real embedded MNIST and energy-model's Eyeriss model:
//! the least-squares restoration on a real conv layer's sampled im2col data, and a whole
//! energy-aware run whose pruned weights stay zero through fine-tuning
//! (docs/energy-aware-pruning.md §7 R1, R3, R4, R5).

use cnn_zoo::Arch;
use datasets::TransformConfig;
use energy_model::eyeriss::{Eyeriss, Preset};
use energy_prune::{
    EnergyPruneConfig, LeastSquares, Matrix, PruneRun, RatioSearch, RestoreRule, SolveOptions,
    layer_energies, prune_energy_aware,
};
use tensor_core::testing::host_f64;
use tensor_core::{BatchSource, LayerId, LayerKind, NoopObserver, Taps, Tensor};

use integration_tests::{mnist_batch, seeded_model};

/// Captures one layer's input and output.
struct Capture {
    id: LayerId,
    seen: Option<(Tensor, Tensor)>,
}

impl Taps for Capture {
    fn post(&mut self, id: LayerId, input: &Tensor, output: &Tensor) -> tensor_core::Result<()> {
        if id == self.id {
            self.seen = Some((input.clone(), output.clone()));
        }
        Ok(())
    }
}

/// `‖y − X·w − b‖²`.
fn sq_error(x: &Matrix, y: &[f64], w: &[f64], b: f64) -> f64 {
    (0..x.rows())
        .map(|r| {
            let pred: f64 = x.row(r).iter().zip(w).map(|(a, w)| a * w).sum::<f64>() + b;
            (y[r] - pred).powi(2)
        })
        .sum()
}

#[test]
fn restoration_on_lenet5_conv2_never_increases_the_sampled_error() {
    let (net, _init) = seeded_model(Arch::Lenet5, 10, 1, 7).unwrap();
    let (xs, _) = mnist_batch(300, TransformConfig::mnist32_resize()).unwrap();
    let layer = &net.layers()[1];
    assert_eq!(layer.kind, LayerKind::Conv);
    let g = layer.geometry;
    let mut cap = Capture {
        id: layer.id,
        seen: None,
    };
    net.forward_tapped(&xs, false, &mut cap).unwrap();
    let (input, output) = cap.seen.unwrap();
    let (input, output) = (host_f64(&input), host_f64(&output));
    let (c, h, w) = (g.in_channels(), g.in_h(), g.in_w());
    let (kh, kw) = g.kernel();
    let (ow, positions) = (g.out_w(), g.out_positions());
    let d = g.out_channels();
    let fan = c * kh * kw;
    let images = 300;
    // Four fixed, spread-out output positions per image: im2col rows of the real activations.
    let mut rows = Vec::new();
    let mut ys = vec![Vec::new(); d];
    for i in 0..images {
        for k in 0..4 {
            let p = (i * 37 + k * 23) % positions;
            let (oy, ox) = (p / ow, p % ow);
            for ci in 0..c {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let (iy, ix) = (oy * g.stride().0 + ky, ox * g.stride().1 + kx);
                        rows.push(input[i * c * h * w + ci * h * w + iy * w + ix]);
                    }
                }
            }
            for (m, y) in ys.iter_mut().enumerate() {
                y.push(output[i * d * positions + m * positions + p]);
            }
        }
    }
    let x = Matrix::new(images * 4, fan, rows).unwrap();
    let ls = LeastSquares::new(&x, true);
    let w0 = host_f64(layer.weight.as_tensor());
    let b0 = host_f64(layer.bias.as_ref().unwrap().as_tensor());
    let opts = SolveOptions {
        lambda: 0.0,
        max_condition: 1e10,
    };
    for m in 0..d {
        let wm = &w0[m * fan..(m + 1) * fan];
        let scale = ys[m].iter().map(|v| v * v).sum::<f64>().max(1e-12);
        // The sampled rows reproduce the layer's own output (f32 rounding only).
        assert!(
            sq_error(&x, &ys[m], wm, b0[m]) <= 1e-8 * scale,
            "filter {m}"
        );
        // Remove the 70% smallest weights of the filter.
        let mut idx: Vec<usize> = (0..fan).collect();
        idx.sort_by(|&a, &b| wm[a].abs().total_cmp(&wm[b].abs()));
        let mut support = vec![true; fan];
        for &j in &idx[..fan * 7 / 10] {
            support[j] = false;
        }
        let removed: Vec<usize> = (0..fan).filter(|&j| !support[j]).collect();
        let kept: Vec<f64> = (0..fan)
            .map(|j| if support[j] { wm[j] } else { 0.0 })
            .collect();
        let err_removed = sq_error(&x, &ys[m], &kept, b0[m]);
        let t = ls.target(&ys[m]).unwrap();
        let fit = ls.fit(&t, &support, opts).unwrap();
        let mut grown = support.clone();
        let rule = RestoreRule {
            threshold: 0.0,
            max_count: 20,
        };
        let (restored, readmitted) = ls.restore(&t, &mut grown, &removed, opts, rule).unwrap();
        let tol = 1e-9 * scale;
        assert!(fit.sq_error <= err_removed + tol, "filter {m}: local fit");
        assert!(
            restored.sq_error <= fit.sq_error + tol,
            "filter {m}: restoration raised the error {} -> {}",
            fit.sq_error,
            restored.sq_error
        );
        assert!(readmitted.len() <= 20 && readmitted.iter().all(|j| removed.contains(j)));
        for j in 0..fan {
            assert!(grown[j] || !support[j], "filter {m}: support shrank at {j}");
            if !grown[j] {
                assert_eq!(restored.weights[j], 0.0, "filter {m}: pruned entry {j}");
            }
            if !support[j] {
                assert_eq!(fit.weights[j], 0.0, "filter {m}: pruned entry {j}");
            }
        }
        // The reported error is the error of the returned weights.
        let direct = sq_error(&x, &ys[m], &restored.weights, restored.bias);
        assert!((direct - restored.sq_error).abs() <= 1e-9 * scale.max(direct));
    }
}

/// A fixed set of images served in order.
struct Batches {
    xs: Tensor,
    ys: Tensor,
    batch: usize,
}

impl BatchSource for Batches {
    fn batches_per_epoch(&self) -> usize {
        self.xs.dims()[0].div_ceil(self.batch)
    }

    fn batch(&mut self, _epoch: usize, index: usize) -> tensor_core::Result<(Tensor, Tensor)> {
        let n = self.xs.dims()[0];
        let start = index * self.batch;
        let len = self.batch.min(n - start);
        Ok((
            self.xs.narrow(0, start, len)?,
            self.ys.narrow(0, start, len)?,
        ))
    }
}

#[test]
fn energy_aware_run_on_lenet5_keeps_pruned_weights_zero_and_saves_eyeriss_energy() {
    let (net, init) = seeded_model(Arch::Lenet5, 10, 1, 11).unwrap();
    let (xs, ys) = mnist_batch(400, TransformConfig::mnist32_resize()).unwrap();
    let split = |start: usize, len: usize, batch: usize| Batches {
        xs: xs.narrow(0, start, len).unwrap(),
        ys: ys.narrow(0, start, len).unwrap(),
        batch,
    };
    let (mut train, mut cal, mut val) =
        (split(0, 300, 50), split(0, 200, 100), split(300, 100, 100));
    let model = Eyeriss::preset(Preset::Chip, 16).unwrap();
    let mut config = EnergyPruneConfig::reconstruction_lenet5_mnist();
    config.calibration_images = 200;
    config.ratio_search = RatioSearch::Step {
        step: 0.25,
        max_ratio: 0.75,
    };
    // Every ratio is accepted, so every layer is pruned (the untrained network's accuracy is
    // noise); one short fine-tuning epoch checks that the masks hold.
    config.max_accuracy_drop = 1.0;
    config.finetune.epochs = 1;
    let dense: Vec<u64> = net
        .layers()
        .iter()
        .map(|l| l.weight.elem_count() as u64)
        .collect();
    let before = layer_energies(&model, net.as_ref(), None).unwrap();
    let outcome = prune_energy_aware(
        PruneRun {
            network: net.as_ref(),
            params: init.named_vars().into_iter().map(|(_, v)| v).collect(),
            model: &model,
            calibration: &mut cal,
            val: &mut val,
            train: &mut train,
        },
        &config,
        &mut NoopObserver,
    )
    .unwrap();
    assert_eq!(outcome.energy_model, "eyeriss-chip batch 16");
    assert_eq!(outcome.order.len(), net.layers().len());
    // R5: the first layer processed had the highest energy.
    let first = &outcome.layers[outcome.order[0].0];
    let highest = outcome
        .layers
        .iter()
        .map(|l| l.energy_before)
        .fold(0.0, f64::max);
    assert_eq!(first.energy_at_selection, Some(highest));
    for (i, (l, info)) in outcome.layers.iter().zip(net.layers()).enumerate() {
        assert_eq!(l.ratio, 0.75, "{}", l.name);
        let accepted = l.trials.iter().find(|t| t.ratio == l.ratio).unwrap();
        // R4: fine-tuning never revives a pruned weight.
        let now = host_f64(info.weight.as_tensor());
        let nonzero = now.iter().filter(|v| **v != 0.0).count() as u64;
        assert_eq!(nonzero, l.mask.count_ones(), "{}", l.name);
        assert!(nonzero <= accepted.nonzero_weights, "{}", l.name);
        let removed = (0.75 * dense[i] as f64).round() as u64;
        assert!(accepted.nonzero_weights <= dense[i] - removed + l.restored);
    }
    let after = layer_energies(&model, net.as_ref(), None).unwrap();
    assert!(after.iter().sum::<f64>() < before.iter().sum::<f64>());
    for (b, a) in before.iter().zip(&after) {
        assert!(a <= b);
    }
    assert!(outcome.energy_reduction() > 1.0);
}
