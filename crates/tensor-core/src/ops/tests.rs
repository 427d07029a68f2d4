//! The fast ops against candle's own ops (the reference): forward values and every gradient.
//!
//! Tolerance: f32 sums over at most a few hundred products, compared as
//! `max |fast − candle| ≤ 1e-4 · (1 + max |candle|)` per tensor.

use ::proptest::prelude::*;
use rand::Rng as _;
use rand_distr::StandardNormal;

use super::*;
use crate::tensor::{Device, Tensor, Var};

const TOL: f32 = 1e-4;

fn randn(seed: u64, stream: &str, dims: &[usize]) -> Tensor {
    let mut rng = crate::rng(seed, stream);
    let n = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// `max |t|` over every entry.
fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.max(0))
        .and_then(|t| t.to_scalar::<f32>())
        .unwrap()
}

/// Gradients of `sum(ys · r)` for `r` drawn from `seed`.
fn backward_from(ys: &Tensor, seed: u64) -> crate::GradStore {
    let r = randn(seed, "r", ys.dims());
    (ys * &r).unwrap().sum_all().unwrap().backward().unwrap()
}

fn assert_close(what: &str, fast: &Tensor, reference: &Tensor) {
    assert_close_at(what, fast, reference, 0.0);
}

/// As [`assert_close`], with the tolerance scaled by at least `terms`: the size of the terms a
/// result is the difference of, whose rounding errors survive the cancellation.
fn assert_close_at(what: &str, fast: &Tensor, reference: &Tensor, terms: f32) {
    assert_eq!(fast.dims(), reference.dims(), "{what}: shapes");
    let diff = max_abs(&(fast - reference).unwrap());
    let scale = max_abs(reference).max(terms);
    assert!(
        diff <= TOL * (1.0 + scale),
        "{what}: max |diff| {diff} with max |reference| {scale}"
    );
}

/// A convolution case: `(b, groups, c/g, d/g, h, w, k, stride, padding, bias)`.
type ConvCase = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    bool,
);

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        1usize..4,
        1usize..4,
        1usize..4,
        1usize..6,
        1usize..4,
        0usize..3,
    )
        .prop_flat_map(|(b, groups, cg, k, stride, padding)| {
            // Sizes with `h + 2p − k` a multiple of the stride, plus at times one extra row or
            // column that the windows do not reach.
            let first = (2 * padding + 1).saturating_sub(k).div_ceil(stride);
            let size = (first..first + 4, 0usize..2)
                .prop_map(move |(m, extra)| (stride * m + k + extra).saturating_sub(2 * padding));
            (
                Just(b),
                Just(groups),
                Just(cg),
                1usize..4,
                size.clone(),
                size,
                Just(k),
                Just(stride),
                Just(padding),
                any::<bool>(),
            )
        })
}

/// A case's convolution parameters, its input and weights drawn from `seed`, and whether the
/// windows leave input rows or columns unreached.
fn conv_inputs(case: ConvCase, seed: u64) -> (ConvParams, Tensor, Tensor, bool) {
    let (b, groups, cg, dg, h, w, k, stride, padding, _) = case;
    let (c, d) = (cg * groups, dg * groups);
    let params = ConvParams::square(k)
        .stride(stride)
        .padding(padding)
        .groups(groups);
    let ragged = (h + 2 * padding - k) % stride != 0 || (w + 2 * padding - k) % stride != 0;
    let xs = randn(seed, "x", &[b, c, h, w]);
    let ws = randn(seed, "w", &[d, cg, k, k]);
    (params, xs, ws, ragged)
}

/// Forward and gradients of `sum(conv(x, w, b) · r)` for both backends.
fn check_conv(case: ConvCase, seed: u64, x_needs_grad: bool) {
    let with_bias = case.9;
    let (params, xs, ws, ragged) = conv_inputs(case, seed);
    let bs = randn(seed, "b", &[ws.dims()[0]]);
    let mut results = Vec::new();
    let backends = [OpsBackend::Fast, OpsBackend::Candle];
    for backend in backends {
        let x = Var::from_tensor(&xs).unwrap();
        let wv = Var::from_tensor(&ws).unwrap();
        let bv = Var::from_tensor(&bs).unwrap();
        let input = if x_needs_grad {
            x.as_tensor().clone()
        } else {
            xs.clone()
        };
        let bias = with_bias.then(|| bv.as_tensor().clone());
        let ys = conv2d(&input, wv.as_tensor(), bias.as_ref(), params, backend).unwrap();
        if ragged && backend == OpsBackend::Candle {
            results.push((ys, None, None, None));
            continue;
        }
        let grads = backward_from(&ys, seed);
        results.push((
            ys,
            grads.get(&x).cloned(),
            grads.get(&wv).cloned(),
            grads.get(&bv).cloned(),
        ));
    }
    let (fast, stock) = (&results[0], &results[1]);
    assert_close("output", &fast.0, &stock.0);
    assert_eq!(fast.1.is_some(), x_needs_grad, "input gradient presence");
    if ragged {
        // candle's own conv2d backward fails on rows or columns the windows do not reach
        // (its transposed convolution lacks an output padding), so only the forward compares.
        return;
    }
    if let (Some(f), Some(s)) = (&fast.1, &stock.1) {
        assert_close("input gradient", f, s);
    }
    assert_close(
        "weight gradient",
        fast.2.as_ref().unwrap(),
        stock.2.as_ref().unwrap(),
    );
    assert_eq!(fast.3.is_some(), with_bias, "bias gradient presence");
    if let (Some(f), Some(s)) = (&fast.3, &stock.3) {
        assert_close("bias gradient", f, s);
    }
}

/// `conv2d_backward` on both backends against autograd through the fast conv.
fn check_conv_backward(case: ConvCase, seed: u64, need: (bool, bool)) {
    let groups = case.1;
    let (params, xs, ws, ragged) = conv_inputs(case, seed);
    let x = Var::from_tensor(&xs).unwrap();
    let wv = Var::from_tensor(&ws).unwrap();
    let ys = conv2d(
        x.as_tensor(),
        wv.as_tensor(),
        None,
        params,
        OpsBackend::Fast,
    )
    .unwrap();
    let dy = randn(seed, "dy", ys.dims());
    let grads = (&ys * &dy).unwrap().sum_all().unwrap().backward().unwrap();
    for backend in [OpsBackend::Fast, OpsBackend::Candle] {
        if backend == OpsBackend::Candle && groups > 1 && ragged {
            // Autograd through candle's grouped conv fails on unreached rows (see check_conv).
            continue;
        }
        let (dx, dw) = conv2d_backward(&xs, &ws, &dy, params, need, backend).unwrap();
        assert_eq!(
            (dx.is_some(), dw.is_some()),
            need,
            "{backend}: gradients asked for"
        );
        if let Some(dx) = dx {
            assert_close(
                &format!("{backend} input gradient {case:?}"),
                &dx,
                grads.get(&x).unwrap(),
            );
        }
        if let Some(dw) = dw {
            assert_close(
                &format!("{backend} weight gradient {case:?}"),
                &dw,
                grads.get(&wv).unwrap(),
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn conv2d_backward_matches_autograd(
        case in conv_case(),
        seed in any::<u64>(),
        need in (any::<bool>(), any::<bool>()),
    ) {
        check_conv_backward(case, seed, need);
    }

    #[test]
    fn conv2d_matches_candle(case in conv_case(), seed in any::<u64>(), x_grad in any::<bool>()) {
        check_conv(case, seed, x_grad);
    }

    #[test]
    fn batch_norm_matches_candle(
        (b, c, h, w) in (1usize..4, 1usize..5, 1usize..6, 1usize..6),
        relu in any::<bool>(),
        seed in any::<u64>(),
    ) {
        prop_assume!(b * h * w > 1);
        check_batch_norm((b, c, h, w), relu, seed);
    }

    #[test]
    fn max_pool_matches_candle(
        (b, c, k, h, w) in (1usize..3, 1usize..4, 1usize..4, 0usize..9, 0usize..9),
        seed in any::<u64>(),
    ) {
        let (h, w) = (h + k, w + k);
        let xs = randn(seed, "x", &[b, c, h, w]);
        check_unary(&xs, |x, backend| max_pool2d(x, k, backend).unwrap(), seed);
    }
}

fn check_unary(xs: &Tensor, f: impl Fn(&Tensor, OpsBackend) -> Tensor, seed: u64) {
    let mut results = Vec::new();
    for backend in [OpsBackend::Fast, OpsBackend::Candle] {
        let x = Var::from_tensor(xs).unwrap();
        let ys = f(x.as_tensor(), backend);
        let grads = backward_from(&ys, seed);
        results.push((ys, grads.get(&x).unwrap().clone()));
    }
    assert_close("output", &results[0].0, &results[1].0);
    assert_close("input gradient", &results[0].1, &results[1].1);
}

fn check_batch_norm(dims: (usize, usize, usize, usize), relu: bool, seed: u64) {
    let (b, c, h, w) = dims;
    let xs = (randn(seed, "x", &[b, c, h, w]) * 3.0).unwrap();
    let gs = randn(seed, "gamma", &[c]);
    let bs = randn(seed, "beta", &[c]);
    let mut results = Vec::new();
    for backend in [OpsBackend::Fast, OpsBackend::Candle] {
        let x = Var::from_tensor(&xs).unwrap();
        let g = Var::from_tensor(&gs).unwrap();
        let beta = Var::from_tensor(&bs).unwrap();
        let (ys, stats) = batch_norm_train(
            x.as_tensor(),
            g.as_tensor(),
            beta.as_tensor(),
            1e-5,
            relu,
            backend,
        )
        .unwrap();
        let grads = backward_from(&ys, seed);
        results.push((
            ys,
            stats,
            [&x, &g, &beta].map(|v| grads.get(v).unwrap().clone()),
        ));
    }
    let (fast, stock) = (&results[0], &results[1]);
    assert_close("output", &fast.0, &stock.0);
    assert_close("mean", &fast.1.mean, &stock.1.mean);
    assert_close("variance", &fast.1.var, &stock.1.var);
    // The input gradient is γ/σ times a difference of terms of the size of the upstream
    // gradient; with few samples per channel σ can be small and the terms large, so both
    // backends round differently by about ε·|γ|/σ·|g| even when they are equally right.
    let inv_std = (stock
        .1
        .var
        .affine(1.0, 1e-5)
        .unwrap()
        .sqrt()
        .unwrap()
        .recip())
    .unwrap();
    let gain = max_abs(&gs.abs().unwrap().mul(&inv_std).unwrap());
    let upstream = max_abs(&randn(seed, "r", &[b, c, h, w]));
    assert_close_at("input gradient", &fast.2[0], &stock.2[0], gain * upstream);
    assert_close("gamma gradient", &fast.2[1], &stock.2[1]);
    assert_close("beta gradient", &fast.2[2], &stock.2[2]);
}

#[test]
fn conv2d_shapes_of_the_benchmarked_models() {
    // LeNet-5 (Caffe) c2 and a ResNet stride-2 stage entry with its 1x1 downsample.
    check_conv((2, 1, 20, 5, 12, 12, 5, 1, 0, true), 1, true);
    check_conv((2, 1, 16, 32, 16, 16, 3, 2, 1, false), 2, true);
    check_conv((2, 1, 16, 32, 16, 16, 1, 2, 0, false), 3, true);
    // Depthwise and a 1x1 pointwise conv (MobileNetV2).
    check_conv((2, 8, 1, 1, 9, 9, 3, 2, 1, false), 4, true);
    check_conv((2, 1, 8, 12, 7, 7, 1, 1, 0, true), 5, true);
}

#[test]
fn first_layer_input_gets_no_gradient() {
    check_conv((2, 1, 1, 4, 10, 10, 5, 1, 0, true), 6, false);
}

#[test]
fn batch_norm_reference_is_candle_nn() {
    // The candle-composed reference above agrees with candle-nn's own training-mode batch norm.
    use crate::tensor::{ModuleT, nn};
    let xs = randn(7, "x", &[4, 3, 5, 5]);
    let vm = crate::VarMap::new();
    let vb = crate::VarBuilder::from_varmap(&vm, crate::DType::F32, &Device::Cpu);
    let bn = nn::batch_norm(3, nn::BatchNormConfig::default(), vb).unwrap();
    let stock = bn.forward_t(&xs, true).unwrap();
    let (ones, zeros) = (
        Tensor::ones(3, crate::DType::F32, &Device::Cpu).unwrap(),
        Tensor::zeros(3, crate::DType::F32, &Device::Cpu).unwrap(),
    );
    for backend in [OpsBackend::Fast, OpsBackend::Candle] {
        let (ys, stats) = batch_norm_train(&xs, &ones, &zeros, 1e-5, false, backend).unwrap();
        assert_close("batch norm vs candle-nn", &ys, &stock);
        // candle-nn updated its running mean to 0.1 · batch mean.
        assert_close(
            "running mean",
            &(stats.mean * 0.1).unwrap(),
            bn.running_mean(),
        );
    }
}

#[test]
fn relu_matches_candle() {
    let xs = randn(8, "x", &[3, 4, 7, 5]);
    check_unary(&xs, |x, backend| relu(x, backend).unwrap(), 8);
}

#[test]
fn bad_shapes_are_errors() {
    let xs = randn(9, "x", &[1, 3, 8, 8]);
    let p = ConvParams::square(3).groups(2);
    assert!(
        conv2d(
            &xs,
            &randn(9, "w", &[4, 2, 3, 3]),
            None,
            p,
            OpsBackend::Fast
        )
        .is_err()
    );
    let p = ConvParams::square(9);
    let w = randn(9, "w", &[4, 3, 9, 9]);
    assert!(matches!(
        conv2d(&xs, &w, None, p, OpsBackend::Fast),
        Err(Error::Geometry { .. })
    ));
    let w = randn(9, "w", &[4, 3, 3, 3]);
    let bias = randn(9, "b", &[5]);
    assert!(conv2d(&xs, &w, Some(&bias), p, OpsBackend::Fast).is_err());
    assert!(max_pool2d(&xs, 9, OpsBackend::Fast).is_err());
    assert!("fast".parse::<OpsBackend>().is_ok() && "gpu".parse::<OpsBackend>().is_err());
}

#[test]
fn batch_norm_eval_matches_candle() {
    for relu in [false, true] {
        let seed = 11;
        let xs = randn(seed, "x", &[3, 4, 5, 6]);
        let rm = randn(seed, "rm", &[4]);
        let rv = (randn(seed, "rv", &[4]).abs().unwrap() + 0.5).unwrap();
        let gs = randn(seed, "gamma", &[4]);
        let bs = randn(seed, "beta", &[4]);
        let mut results = Vec::new();
        for backend in [OpsBackend::Fast, OpsBackend::Candle] {
            let x = Var::from_tensor(&xs).unwrap();
            let g = Var::from_tensor(&gs).unwrap();
            let b = Var::from_tensor(&bs).unwrap();
            let ys = batch_norm_eval(
                x.as_tensor(),
                g.as_tensor(),
                b.as_tensor(),
                (&rm, &rv),
                1e-5,
                relu,
                backend,
            )
            .unwrap();
            let grads = backward_from(&ys, seed);
            results.push((ys, [&x, &g, &b].map(|v| grads.get(v).unwrap().clone())));
        }
        assert_close("output", &results[0].0, &results[1].0);
        for i in 0..3 {
            assert_close("gradient", &results[0].1[i], &results[1].1[i]);
        }
    }
}
