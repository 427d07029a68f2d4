//! Unit and property tests of the docs/e2-train.md §8 invariants that need no network: quantisers,
//! drops, gate algebra, sign gradients, configurations and presets. Tests that train or run a
//! gated network need a backbone and live in the integration tests (`tests/it/e2_train_network.rs`).

use proptest::prelude::*;
use tensor_core::ConvParams;
use tensor_core::tensor::{DType, Device, Tensor, Var};
use tensor_core::testing::{assert_tensor_close, host, random};

use crate::quantize::{
    QuantGrid, TensorGrid, quantize_weights, round_code, round_ties_even, straight_through,
};
use crate::sign_gradient::{
    FallbackCell, PsgConfig, PsgOperands, Threshold, psg_conv2d, psg_linear, select_gradient,
};
use crate::*;

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn cpu() -> Device {
    Device::Cpu
}

// ---------------------------------------------------------------- quantisers (Q1, Q2)

#[test]
fn round_ties_even_golden() -> TestResult {
    // torch.round([0.5, 1.5, 2.5, 3.5, 2.4, 2.6, 0.0]) = [0, 2, 2, 4, 2, 3, 0]
    let xs = Tensor::new(&[0.5f32, 1.5, 2.5, 3.5, 2.4, 2.6, 0.0], &cpu())?;
    assert_eq!(host(&round_ties_even(&xs)?), [0., 2., 2., 4., 2., 3., 0.]);
    Ok(())
}

#[test]
fn code_rounding_is_ties_to_even() {
    // Every quarter step below 2^16 (ties included), the top of the 2^23 range, and NaN.
    let small = (0..1u32 << 18).map(|k| k as f32 / 4.0);
    let top = (0..4096u32).map(|k| (1u32 << 23) as f32 - k as f32 / 2.0);
    for v in small.chain(top) {
        assert_eq!(
            round_code(v, 23).to_bits(),
            v.round_ties_even().to_bits(),
            "{v}"
        );
    }
    assert!(round_code(f32::NAN, 8).is_nan());
    assert_eq!(round_code(2.5e7, 31), 2.5e7);
}

#[test]
fn msb_grid_has_17_levels_at_8_over_4_bits() -> TestResult {
    // docs/e2-train.md §3: {0, 16, ..., 240, 255}.
    let g = QuantGrid::new(8, 1.0, false)?;
    let mut levels: Vec<u32> = (0..256).map(|c| g.msb_code(c as f32, 4) as u32).collect();
    levels.dedup();
    assert_eq!(levels.len(), 17);
    assert_eq!(levels.last(), Some(&255));
    Ok(())
}

proptest! {
    #[test]
    fn quantiser_range_grid_and_error(
        bits in 2u8..=8, scale in 0.01f32..10.0, signed: bool, t in 0.0f32..=1.0,
    ) {
        let g = QuantGrid::new(bits, scale, signed).unwrap();
        let x = g.min + t * (scale - g.min);
        let code = g.code(x);
        let q = g.quantize(x);
        // Q1: on the grid, in range, within Δ/2 (plus one Δ at the clamped top code).
        prop_assert!(code >= 0.0 && code <= g.top_code() && code.fract() == 0.0);
        prop_assert!((q - g.dequantize(code)).abs() <= 1e-6 * scale);
        let slack = if code == g.top_code() { 1.5 } else { 0.5 };
        prop_assert!((q - x).abs() <= slack * g.delta + 1e-5 * scale);
        // Idempotence.
        prop_assert!((g.quantize(q) - q).abs() <= 1e-5 * scale);
    }

    #[test]
    fn msb_codes_lie_on_the_coarse_grid(bits in 2u8..=8, m in 1u8..=8, code in 0u32..256) {
        let m = m.min(bits);
        let g = QuantGrid::new(bits, 1.0, true).unwrap();
        let code = (code % (1 << bits)) as f32;
        let msb = g.msb_code(code, m);
        let step = 2f32.powi(i32::from(bits - m));
        // Q2: MSB codes in {k·2^(b−m)} ∪ {2^b − 1}; m = b is the identity.
        prop_assert!(msb % step == 0.0 || msb == g.top_code());
        if m == bits {
            prop_assert_eq!(msb, code);
        }
    }

    #[test]
    fn slice_quantiser_is_the_scalar_one_bit_for_bit(
        xs in prop::collection::vec(
            prop_oneof![
                -8.0f32..8.0,
                Just(f32::NAN),
                Just(f32::INFINITY),
                Just(f32::NEG_INFINITY),
                Just(0.0f32),
                (0i32..512).prop_map(|k| k as f32 / 64.0 - 4.0),
            ],
            0..96,
        ),
        bits in 1u8..=31,
        m in 1u8..=31,
        scale in prop_oneof![Just(0.0f32), 0.01f32..10.0],
        signed: bool,
    ) {
        // Code ties (k/64 against steps that are powers of two), the zero step, the clamps, NaN
        // and the wide-code fallback: the vectorised loops must agree with the reference
        // functions exactly.
        let g = QuantGrid::new(bits, scale, signed).unwrap();
        let bits_of = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut q = xs.clone();
        g.quantize_slice(&mut q);
        let expected: Vec<f32> = xs.iter().map(|&x| g.quantize(x)).collect();
        prop_assert_eq!(bits_of(&q), bits_of(&expected));
        let mut msb = xs.clone();
        g.msb_slice(&mut msb, m);
        let expected: Vec<f32> = xs
            .iter()
            .map(|&x| if m >= bits { g.quantize(x) } else { g.msb(x, m) })
            .collect();
        prop_assert_eq!(bits_of(&msb), bits_of(&expected));
    }

    #[test]
    fn tensor_grid_matches_scalar_grid(seed: u64, bits in 2u8..=8, signed: bool) {
        let xs = random(&[64], seed, 3.0);
        let scale = 2.0f32;
        let tg = TensorGrid::new(bits, &Tensor::new(scale, &cpu()).unwrap(), signed).unwrap();
        let g = QuantGrid::new(bits, scale, signed).unwrap();
        let q = host(&tg.quantize(&xs).unwrap());
        let m = host(&tg.msb(&xs, 3.min(bits)).unwrap());
        for ((x, q), m) in host(&xs).into_iter().zip(q).zip(m) {
            prop_assert!((g.quantize(x) - q).abs() <= 1e-6);
            prop_assert!((g.msb(x, 3.min(bits)) - m).abs() <= 1e-6);
        }
    }
}

#[test]
fn host_quantiser_matches_the_candle_composition() -> TestResult {
    // The one-pass host path against codes + dequantize (candle ops), bit for bit, with a
    // scalar grid, a per-sample grid and a zero-scale sample.
    let xs = random(&[4, 3, 5, 5], 7, 2.0);
    let zero = Tensor::zeros((1, 3, 5, 5), DType::F32, &cpu())?;
    let xs = Tensor::cat(&[&xs, &zero], 0)?;
    for scale in [
        crate::quantize::per_sample_max_abs(&xs)?,
        Tensor::new(1.5f32, &cpu())?,
    ] {
        for (bits, signed) in [(8, true), (4, false), (2, true)] {
            let g = TensorGrid::new(bits, &scale, signed)?;
            let candle = g.dequantize(&g.codes(&xs)?)?;
            assert_eq!(host(&g.quantize(&xs)?), host(&candle));
            for m in 1..bits {
                let step = 2f64.powi(i32::from(bits - m));
                let top = 2f64.powi(i32::from(bits)) - 1.0;
                let codes = round_ties_even(&(g.codes(&xs)? / step)?)?
                    .affine(step, 0.0)?
                    .clamp(0.0, top)?;
                let candle = g.dequantize(&codes)?;
                assert_eq!(host(&g.msb(&xs, m)?), host(&candle), "{bits} bits, msb {m}");
            }
            assert_eq!(host(&g.msb(&xs, bits)?), host(&g.quantize(&xs)?));
        }
    }
    Ok(())
}

#[test]
fn zero_tensor_quantises_to_zero() -> TestResult {
    let xs = Tensor::zeros(8, DType::F32, &cpu())?;
    let g = TensorGrid::new(8, &Tensor::new(0f32, &cpu())?, true)?;
    assert_eq!(host(&g.quantize(&xs)?), vec![0.0; 8]);
    Ok(())
}

#[test]
fn straight_through_quantiser_passes_gradient() -> TestResult {
    let x = Var::from_tensor(&random(&[16], 1, 1.0))?;
    let g = TensorGrid::new(4, &Tensor::new(1f32, &cpu())?, true)?;
    let y = straight_through(x.as_tensor(), &g.quantize(x.as_tensor())?)?;
    let grads = (y * 3.0)?.sum_all()?.backward()?;
    assert_eq!(host(grads.get(&x).expect("grad")), vec![3.0; 16]);
    Ok(())
}

// ---------------------------------------------------------------- SMD (S1–S3)

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn drop_count_is_binomial(seed: u64, p in 0.05f64..0.95) {
        // Six standard deviations: a fair generator fails a case with probability ~2e-9, so the
        // test cannot flake across runs (four, ~6e-5 per case, did), while 20,000 draws still
        // catch a bias of about two points in p.
        let n = 20_000;
        let mut d = MinibatchDrop::new(SmdConfig { p }, tensor_core::rng(seed, "smd")).unwrap();
        let count = (0..n).filter(|_| d.next_dropped()).count() as f64;
        let n = n as f64;
        let sd = (n * p * (1.0 - p)).sqrt();
        prop_assert!((count - n * p).abs() <= 6.0 * sd, "{count} drops of {n} at p = {p}");
    }

    #[test]
    fn drops_are_deterministic_per_seed(seed: u64) {
        let draw = || {
            let mut d = MinibatchDrop::new(SmdConfig { p: 0.5 }, tensor_core::rng(seed, "smd")).unwrap();
            (0..64).map(|_| d.next_dropped()).collect::<Vec<_>>()
        };
        prop_assert_eq!(draw(), draw());
    }
}

#[test]
fn drop_extremes() -> TestResult {
    let mut never = MinibatchDrop::new(SmdConfig { p: 0.0 }, tensor_core::rng(1, "smd"))?;
    let mut always = MinibatchDrop::new(SmdConfig { p: 1.0 }, tensor_core::rng(1, "smd"))?;
    assert!((0..500).all(|_| !never.next_dropped() && always.next_dropped()));
    assert!(SmdConfig { p: 1.5 }.validate().is_err());
    Ok(())
}

#[test]
fn paper_lr_schedule() {
    // docs/e2-train.md §1: 0.1 below 42,666, 0.01 below 64,000, then 0.001.
    let s = paper_smd_schedule();
    let lr = |s: &tensor_core::LrSchedule, i| s.at(0.1, i, 85_333);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(lr(&s, 0), 0.1) && close(lr(&s, 42_665), 0.1));
    assert!(close(lr(&s, 42_666), 0.01) && close(lr(&s, 63_999), 0.01));
    assert!(close(lr(&s, 64_000), 0.001));
    let w = s.with_warmup(400, 0.01);
    assert!(close(lr(&w, 399), 0.01) && close(lr(&w, 400), 0.1));
}

// ---------------------------------------------------------------- gate algebra (G1–G5)

#[test]
fn straight_through_gate_is_binary_with_unit_gradient() -> TestResult {
    let pi = Var::from_tensor(&Tensor::new(&[0.1f32, 0.4, 0.6, 0.9], &cpu())?)?;
    let u = Tensor::new(&[0.5f32, 0.3, 0.7, 0.2], &cpu())?;
    let m = straight_through_gate(pi.as_tensor(), &u)?;
    assert_eq!(host(&m), [0.0, 1.0, 0.0, 1.0]);
    let grads = m.sum_all()?.backward()?;
    assert_eq!(host(grads.get(&pi).expect("grad")), [1.0; 4]);
    Ok(())
}

proptest! {
    #[test]
    fn executed_percentage_is_a_percentage(
        masks in proptest::collection::vec(proptest::collection::vec(prop_oneof![Just(0.0f32), Just(1.0)], 1..8), 0..6),
        target in 0.0f64..=100.0,
    ) {
        let cp = executed_percentage(&masks);
        prop_assert!((0.0..=100.0).contains(&cp));
        prop_assert_eq!(regulariser_sign(cp, target) > 0.0, cp > target);
    }

    #[test]
    fn survival_decays_linearly(l in 1usize..60, p in 0.01f64..=1.0) {
        let sd = StochasticDepthConfig { final_survival: p };
        let a = sd.survival(l - 1, l);
        let b = sd.survival(l, l);
        prop_assert!(a >= b && (b - p).abs() < 1e-12);
    }
}

#[test]
fn zero_beta_regulariser_vanishes() -> TestResult {
    let m = vec![Tensor::ones(4, DType::F32, &cpu())?];
    let off = SluConfig {
        target: 50.0,
        beta: 0.0,
        warmup: 0,
    };
    assert!(compute_regulariser(&m, 100.0, &off)?.is_none());
    let on = SluConfig::with_target(50.0);
    let r = compute_regulariser(&m, 100.0, &on)?.expect("term");
    assert!((r.to_scalar::<f32>()? - 4e-5).abs() < 1e-9);
    let r = compute_regulariser(&m, 10.0, &on)?.expect("term");
    assert!((r.to_scalar::<f32>()? + 4e-5).abs() < 1e-9);
    Ok(())
}

// ---------------------------------------------------------------- PSG (P1–P6)

/// The convolution of [`conv_case`]: 3×3, stride 2, padding 1.
const STRIDE2_PAD1: ConvParams = ConvParams {
    kernel: (3, 3),
    stride: (2, 2),
    padding: (1, 1),
    groups: 1,
};

fn conv_case(seed: u64) -> (Var, Var, Tensor) {
    let x = Var::from_tensor(&random(&[2, 3, 6, 6], seed, 1.0)).expect("x");
    let w = Var::from_tensor(&random(&[4, 3, 3, 3], seed + 1, 0.5)).expect("w");
    let r = random(&[2, 4, 3, 3], seed + 2, 1.0);
    (x, w, r)
}

fn operands(x: &Tensor, w: &Tensor, msb: u8) -> PsgOperands {
    let s = crate::quantize::per_sample_max_abs(x)
        .and_then(|t| Ok(t.mean_all()?))
        .expect("scale");
    let g = TensorGrid::new(8, &s, true).expect("grid");
    PsgOperands {
        xq: g.quantize(x).expect("xq"),
        xm: g.msb(x, msb).expect("xm"),
        wq: quantize_weights(w, 8).expect("wq"),
    }
}

/// The plain 8-bit op: straight-through fake quantisers around the conv the networks run
/// (tensor-core's CPU kernel; stride 2, pad 1).
fn plain_conv(x: &Var, w: &Var, ops: &PsgOperands) -> Tensor {
    let xq = straight_through(x.as_tensor(), &ops.xq).expect("ste");
    let wq = straight_through(w.as_tensor(), &ops.wq).expect("ste");
    tensor_core::ops::conv2d(
        &xq,
        &wq,
        None,
        STRIDE2_PAD1,
        tensor_core::ops::OpsBackend::Fast,
    )
    .expect("conv")
}

#[test]
fn psg_conv_keeps_forward_and_input_gradient() -> TestResult {
    // P6 and P1: same forward value and input gradient as the plain op; weight gradient signs.
    for seed in [1, 5, 9] {
        let (x, w, r) = conv_case(seed);
        let ops = operands(x.as_tensor(), w.as_tensor(), 4);
        let plain = plain_conv(&x, &w, &ops);
        let cell = FallbackCell::default();
        let y = psg_conv2d(
            x.as_tensor(),
            w.as_tensor(),
            ops,
            STRIDE2_PAD1,
            &PsgConfig::reference(),
            &cell,
        )?;
        assert_eq!(host(&plain), host(&y));
        let gp = (plain * &r)?.sum_all()?.backward()?;
        let gs = (y * &r)?.sum_all()?.backward()?;
        assert_tensor_close(gs.get(&x).expect("gx"), gp.get(&x).expect("gx"), 1e-6);
        let gw = host(gs.get(&w).expect("gw"));
        assert!(gw.iter().all(|v| [-1.0, 0.0, 1.0].contains(v)));
        let rho = cell.lock().expect("cell").expect("recorded");
        assert!((0.0..=1.0).contains(&rho));
    }
    Ok(())
}

#[test]
fn psg_with_full_msb_is_sign_of_the_accurate_gradient() -> TestResult {
    // P2: m_x = b_x and an unquantised predictor gradient give G_m = G_q, for every τ.
    for tau in [0.0, 1e-3, f64::INFINITY] {
        let (x, w, r) = conv_case(3);
        let ops = operands(x.as_tensor(), w.as_tensor(), 8);
        let plain = plain_conv(&x, &w, &ops);
        let config = PsgConfig {
            msb_act_bits: 8,
            msb_grad_bits: 32,
            threshold: Threshold::Absolute(tau),
            ..PsgConfig::reference()
        };
        let y = psg_conv2d(
            x.as_tensor(),
            w.as_tensor(),
            ops,
            STRIDE2_PAD1,
            &config,
            &FallbackCell::default(),
        )?;
        let gp = (plain * &r)?.sum_all()?.backward()?;
        let gs = (y * &r)?.sum_all()?.backward()?;
        let expected = gp.get(&w).expect("gw").sign()?;
        assert_eq!(host(gs.get(&w).expect("gw")), host(&expected));
    }
    Ok(())
}

#[test]
fn psg_linear_keeps_input_gradient() -> TestResult {
    let x = Var::from_tensor(&random(&[5, 7], 1, 1.0))?;
    let w = Var::from_tensor(&random(&[3, 7], 2, 1.0))?;
    let r = random(&[5, 3], 3, 1.0);
    let ops = operands(x.as_tensor(), w.as_tensor(), 4);
    let xq = straight_through(x.as_tensor(), &ops.xq)?;
    let wq = straight_through(w.as_tensor(), &ops.wq)?;
    let plain = xq.matmul(&wq.t()?)?;
    let y = psg_linear(
        x.as_tensor(),
        w.as_tensor(),
        ops,
        &PsgConfig::reference(),
        &FallbackCell::default(),
    )?;
    assert_tensor_close(&plain, &y, 1e-6);
    let gp = (plain * &r)?.sum_all()?.backward()?;
    let gs = (y * &r)?.sum_all()?.backward()?;
    assert_tensor_close(gs.get(&x).expect("gx"), gp.get(&x).expect("gx"), 1e-6);
    assert!(
        host(gs.get(&w).expect("gw"))
            .iter()
            .all(|v| [-1.0, 0.0, 1.0].contains(v))
    );
    Ok(())
}

proptest! {
    #[test]
    fn selection_rule(seed: u64, tau in 0.0f64..1.0, sparsify: bool) {
        // P3: sign(G_m) where |G_m| ≥ τ, else sign(G_q) (or 0 with sparsify).
        let gq = random(&[32], seed, 1.0);
        let gm = random(&[32], seed ^ 1, 1.0);
        let config = PsgConfig { threshold: Threshold::Absolute(tau), sparsify, ..PsgConfig::reference() };
        let (g, rho) = select_gradient(&gq, &gm, &config).unwrap();
        let (gq, gm, g) = (host(&gq), host(&gm), host(&g));
        let mut fallback = 0;
        for i in 0..32 {
            let expected = if f64::from(gm[i].abs()) >= tau {
                gm[i].signum()
            } else {
                fallback += 1;
                if sparsify { 0.0 } else { gq[i].signum() }
            };
            prop_assert_eq!(g[i], if expected == 0.0 { 0.0 } else { expected });
        }
        prop_assert!((rho - f64::from(fallback) / 32.0).abs() < 1e-12);
    }

    #[test]
    fn relative_threshold_is_scale_invariant(seed: u64, r in 0.0f64..1.0, c in 0.01f32..100.0) {
        // P4: scaling both gradients (the loss) by c > 0 changes nothing under the relative rule.
        let gq = random(&[32], seed, 1.0);
        let gm = random(&[32], seed ^ 1, 1.0);
        let config = PsgConfig { threshold: Threshold::Relative(r), ..PsgConfig::reference() };
        let (a, ra) = select_gradient(&gq, &gm, &config).unwrap();
        let (b, rb) = select_gradient(&(&gq * f64::from(c)).unwrap(), &(&gm * f64::from(c)).unwrap(), &config).unwrap();
        prop_assert_eq!(host(&a), host(&b));
        prop_assert!((ra - rb).abs() < 1e-12);
    }
}

#[test]
fn absolute_threshold_is_not_scale_invariant() -> TestResult {
    let gq = Tensor::new(&[1f32, -1.0], &cpu())?;
    let gm = Tensor::new(&[-0.5f32, 0.5], &cpu())?;
    let config = PsgConfig {
        threshold: Threshold::Absolute(1.0),
        ..PsgConfig::reference()
    };
    let (_, small) = select_gradient(&gq, &gm, &config)?;
    let (_, large) = select_gradient(&(&gq * 4.0)?, &(&gm * 4.0)?, &config)?;
    assert_eq!((small, large), (1.0, 0.0));
    Ok(())
}

/// The weight gradients of `sum(conv(x, w) · r)` for `conv_case(seed)`, on the host: through
/// the plain 8-bit conv and through PSG under `config`.
fn exact_and_psg_weight_grads(
    seed: u64,
    config: &PsgConfig,
) -> std::result::Result<(Vec<f32>, Vec<f32>), Box<dyn std::error::Error>> {
    let (x, w, r) = conv_case(seed);
    let ops = operands(x.as_tensor(), w.as_tensor(), config.msb_act_bits);
    let exact = (plain_conv(&x, &w, &ops) * &r)?.sum_all()?.backward()?;
    let y = psg_conv2d(
        x.as_tensor(),
        w.as_tensor(),
        ops,
        STRIDE2_PAD1,
        config,
        &FallbackCell::default(),
    )?;
    let psg = (y * &r)?.sum_all()?.backward()?;
    Ok((
        host(exact.get(&w).expect("gw")),
        host(psg.get(&w).expect("gw")),
    ))
}

#[test]
fn sign_agreement_grows_with_msb_bits() -> TestResult {
    // P5 (statistical): averaged over seeds, more MSB bits never agree less with the exact sign.
    let mut agreement = Vec::new();
    for m in [2u8, 4, 8] {
        let mut total = 0.0;
        for seed in 0..6 {
            let config = PsgConfig {
                msb_act_bits: m,
                threshold: Threshold::Absolute(0.0),
                ..PsgConfig::reference()
            };
            let (exact, pred) = exact_and_psg_weight_grads(100 + seed, &config)?;
            let agree = exact
                .iter()
                .zip(&pred)
                .filter(|(e, p)| e.signum() == **p)
                .count();
            total += agree as f64 / exact.len() as f64;
        }
        agreement.push(total / 6.0);
    }
    assert!(agreement[0] <= agreement[1] + 0.05 && agreement[1] <= agreement[2] + 0.05);
    // Entries whose prediction is large agree at least as often as all entries (τ at the median
    // of |G_m|; the unsigned prediction comes from τ = 0 without the sign).
    let (mut all, mut large) = (0.0, 0.0);
    for seed in 0..6 {
        let config = PsgConfig {
            msb_act_bits: 3,
            msb_grad_bits: 4,
            threshold: Threshold::Absolute(0.0),
            sign: false,
            ..PsgConfig::reference()
        };
        let (exact, gm) = exact_and_psg_weight_grads(200 + seed, &config)?;
        let mut mags: Vec<f32> = gm.iter().map(|v| v.abs()).collect();
        mags.sort_by(f32::total_cmp);
        let tau = mags[mags.len() / 2];
        let agree = |keep: &dyn Fn(f32) -> bool| {
            let hits: Vec<bool> = exact
                .iter()
                .zip(&gm)
                .filter(|(_, m)| keep(**m))
                .map(|(e, m)| e.signum() == m.signum())
                .collect();
            hits.iter().filter(|&&h| h).count() as f64 / hits.len().max(1) as f64
        };
        all += agree(&|_| true);
        large += agree(&|m| m.abs() >= tau);
    }
    assert!(large >= all - 1e-9, "{large} < {all}");
    assert!(agreement[2] > 0.999, "{agreement:?}");
    Ok(())
}

#[test]
fn config_validation() {
    let mut c = E2TrainConfig::quick_cpu_resnet8();
    assert!(c.clone().validate().is_ok());
    c.stochastic_depth = Some(StochasticDepthConfig {
        final_survival: 0.5,
    });
    assert!(c.clone().validate().is_err());
    let mut b = E2TrainConfig::paper_cifar10_resnet74(50.0).baseline();
    assert!(b.slu.is_none() && b.smd.is_none() && !b.model.gates);
    assert_eq!(b.model.conv, ConvMode::quantized8());
    b.slu = Some(SluConfig::with_target(50.0));
    assert!(b.validate().is_err());
    assert_eq!(
        E2TrainConfig::paper_cifar100_resnet110(40.0).model.depth,
        110
    );
}

// ---------------------------------------------------------------- presets

/// A warm-up `(iterations, lr)`.
type PlainWarmup = Option<(usize, f64)>;

/// docs/e2-train.md §1 written out: `base·γ^k` after the `k`-th milestone, with an optional
/// constant warm-up `(iterations, lr)`.
fn step_rate(base: f64, milestones: &[usize], gamma: f64, warmup: PlainWarmup, i: usize) -> f64 {
    if let Some((n, lr)) = warmup
        && i < n
    {
        return lr;
    }
    let k = milestones.iter().filter(|&&m| i >= m).count();
    base * gamma.powi(k as i32)
}

#[test]
fn every_preset_keeps_its_learning_rate_at_every_iteration() {
    let paper = [42_666, 64_000];
    let presets: [(&str, E2TrainConfig, &[usize], PlainWarmup); 4] = [
        (
            "resnet74",
            E2TrainConfig::paper_cifar10_resnet74(50.0),
            &paper,
            None,
        ),
        (
            "resnet110",
            E2TrainConfig::paper_cifar100_resnet110(50.0),
            &paper,
            Some((400, 0.01)),
        ),
        (
            "quick8",
            E2TrainConfig::quick_cpu_resnet8(),
            &[100, 150],
            None,
        ),
        (
            "quick20",
            E2TrainConfig::quick_cpu_resnet20(),
            &[800, 1_000],
            None,
        ),
    ];
    for (name, preset, milestones, warmup) in presets {
        for config in [preset.clone(), preset.baseline()] {
            let config = config.validate().expect(name);
            assert_eq!(config.sgd.lr, 0.1, "{name}");
            // A few iterations past the end too: the schedule is a function of the index.
            for i in 0..config.iterations + 10 {
                let rate = config.lr.at(config.sgd.lr, i, config.iterations);
                let expected = step_rate(0.1, milestones, 0.1, warmup, i);
                assert_eq!(
                    rate.to_bits(),
                    expected.to_bits(),
                    "{name} at iteration {i}"
                );
            }
        }
    }
}
