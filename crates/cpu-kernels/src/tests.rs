//! The kernels on slices against naive f64 loops (direct convolution, textbook batch norm, plain
//! pooling), plus the properties the callers rely on: results independent of the thread count,
//! only the asked-for gradients, size errors instead of panics.
//!
//! Tolerance: f32 sums of at most a few thousand products against f64, compared as
//! `max |kernel − naive| ≤ 1e-4 · (1 + max |naive|)` per output.

use proptest::prelude::*;

use crate::conv::{Conv2dGeom, Conv2dParams, ConvGrads};
use crate::gemm::{Mat, gemm, gemm_strided};
use crate::norm::{BatchNorm, BatchNormDims};
use crate::pointwise::{MaxPool2d, relu, relu_backward};
use crate::{Error, scratch, sgd};

const TOL: f64 = 1e-4;

/// `n` values in `[-1, 1)` from a splitmix64 stream.
fn data(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    assert_close_within(what, got, want, 0.0);
}

/// [`assert_close`] with `slack` more absolute error allowed: what f32 rounding of the terms a
/// result cancels from can leave.
fn assert_close_within(what: &str, got: &[f32], want: &[f64], slack: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0f64, |m, (&g, &w)| m.max((f64::from(g) - w).abs()));
    assert!(
        diff <= TOL * (1.0 + scale) + slack,
        "{what}: max |diff| {diff} with max |reference| {scale}"
    );
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A convolution: batch, groups, channels and filters per group, input size, kernel size,
/// stride, padding, bias.
#[derive(Clone, Copy, Debug)]
struct Case {
    b: usize,
    groups: usize,
    cg: usize,
    dg: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    bias: bool,
}

impl Case {
    fn c(&self) -> usize {
        self.cg * self.groups
    }

    fn d(&self) -> usize {
        self.dg * self.groups
    }

    fn oh(&self) -> usize {
        (self.h + 2 * self.pad - self.kh) / self.stride + 1
    }

    fn ow(&self) -> usize {
        (self.w + 2 * self.pad - self.kw) / self.stride + 1
    }

    fn geom(&self) -> Conv2dGeom {
        let p = Conv2dParams {
            stride: self.stride,
            padding: self.pad,
            groups: self.groups,
        };
        let xs = [self.b, self.c(), self.h, self.w];
        Conv2dGeom::new(&xs, &[self.d(), self.cg, self.kh, self.kw], p).unwrap()
    }

    /// Calls `f(y index, x index, w index)` for every product of the direct convolution whose
    /// input pixel lies inside the image (padding contributes zero).
    fn for_each_product(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (c, d, h, w) = (self.c(), self.d(), self.h, self.w);
        for n in 0..self.b {
            for g in 0..self.groups {
                for od in 0..self.dg {
                    let oc = g * self.dg + od;
                    for oy in 0..self.oh() {
                        for ox in 0..self.ow() {
                            let y_at = ((n * d + oc) * self.oh() + oy) * self.ow() + ox;
                            for ic in 0..self.cg {
                                let ch = g * self.cg + ic;
                                for ki in 0..self.kh {
                                    for kj in 0..self.kw {
                                        let iy =
                                            (oy * self.stride + ki) as isize - self.pad as isize;
                                        let ix =
                                            (ox * self.stride + kj) as isize - self.pad as isize;
                                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize
                                        {
                                            continue;
                                        }
                                        let x_at =
                                            ((n * c + ch) * h + iy as usize) * w + ix as usize;
                                        let w_at =
                                            ((oc * self.cg + ic) * self.kh + ki) * self.kw + kj;
                                        f(y_at, x_at, w_at);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn y_len(&self) -> usize {
        self.b * self.d() * self.oh() * self.ow()
    }

    /// Direct convolution in f64.
    fn naive_forward(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f64> {
        let mut y = vec![0f64; self.y_len()];
        let plane = self.oh() * self.ow();
        if let Some(bias) = bias {
            for (i, v) in y.iter_mut().enumerate() {
                *v = f64::from(bias[(i / plane) % self.d()]);
            }
        }
        self.for_each_product(|y_at, x_at, w_at| {
            y[y_at] += f64::from(x[x_at]) * f64::from(w[w_at]);
        });
        y
    }

    /// Gradients of `Σ y·dy` by the same loops: `(dx, dw, db)` in f64.
    fn naive_backward(&self, x: &[f32], w: &[f32], dy: &[f32]) -> [Vec<f64>; 3] {
        let mut dx = vec![0f64; x.len()];
        let mut dw = vec![0f64; w.len()];
        let mut db = vec![0f64; self.d()];
        self.for_each_product(|y_at, x_at, w_at| {
            let g = f64::from(dy[y_at]);
            dx[x_at] += f64::from(w[w_at]) * g;
            dw[w_at] += f64::from(x[x_at]) * g;
        });
        let plane = self.oh() * self.ow();
        for (i, &g) in dy.iter().enumerate() {
            db[(i / plane) % self.d()] += f64::from(g);
        }
        [dx, dw, db]
    }
}

/// Forward and all three gradients of a case against the direct convolution.
fn check_conv(case: Case, seed: u64) {
    let geom = case.geom();
    assert_eq!(
        geom.output_dims(),
        [case.b, case.d(), case.oh(), case.ow()],
        "{case:?}"
    );
    let x = data(seed, case.b * case.c() * case.h * case.w);
    let w = data(seed ^ 1, case.d() * case.cg * case.kh * case.kw);
    let bias = data(seed ^ 2, case.d());
    let bias = case.bias.then_some(&bias[..]);
    let y = geom.forward(&x, &w, bias).unwrap();
    assert_close(
        &format!("output {case:?}"),
        &y,
        &case.naive_forward(&x, &w, bias),
    );
    let dy = data(seed ^ 3, y.len());
    let ConvGrads { dx, dw, db } = geom.backward(&x, &w, &dy, (true, true, true)).unwrap();
    let [ndx, ndw, ndb] = case.naive_backward(&x, &w, &dy);
    assert_close(&format!("input gradient {case:?}"), &dx.unwrap(), &ndx);
    assert_close(&format!("weight gradient {case:?}"), &dw.unwrap(), &ndw);
    assert_close(&format!("bias gradient {case:?}"), &db.unwrap(), &ndb);
}

#[allow(clippy::too_many_arguments)]
const fn case(
    b: usize,
    groups: usize,
    cg: usize,
    dg: usize,
    hw: (usize, usize),
    k: (usize, usize),
    stride: usize,
    pad: usize,
    bias: bool,
) -> Case {
    Case {
        b,
        groups,
        cg,
        dg,
        h: hw.0,
        w: hw.1,
        kh: k.0,
        kw: k.1,
        stride,
        pad,
        bias,
    }
}

#[test]
fn conv_matches_direct_convolution() {
    let cases = [
        // Plain 3×3, then stride 2 with padding (a ResNet stage entry), with a ragged edge.
        case(2, 1, 3, 4, (8, 8), (3, 3), 1, 1, true),
        case(3, 1, 4, 6, (9, 9), (3, 3), 2, 1, false),
        case(2, 1, 2, 3, (10, 7), (3, 3), 2, 1, true),
        // Grouped, with padding wider than needed, and a rectangular kernel.
        case(2, 2, 3, 2, (7, 8), (3, 3), 1, 2, true),
        case(2, 3, 2, 2, (6, 9), (2, 3), 2, 1, false),
        // Depthwise (one channel per group) at stride 1 and 2, and with a channel multiplier.
        case(2, 6, 1, 1, (9, 9), (3, 3), 1, 1, false),
        case(2, 8, 1, 1, (9, 9), (3, 3), 2, 1, true),
        case(1, 4, 1, 2, (5, 6), (3, 3), 2, 0, false),
        // Pointwise 1×1 (read in place, no im2col) and a strided 1×1 downsample.
        case(3, 1, 8, 5, (7, 7), (1, 1), 1, 0, true),
        case(2, 1, 4, 8, (8, 8), (1, 1), 2, 0, false),
        // LeNet-5's c1 and a batch spread over several weight-gradient chunks.
        case(2, 1, 1, 6, (12, 12), (5, 5), 1, 0, true),
        case(19, 1, 2, 3, (5, 5), (3, 3), 1, 1, true),
        // A kernel as large as the padded input: one output pixel.
        case(2, 1, 2, 2, (3, 4), (5, 6), 1, 1, true),
    ];
    for (seed, c) in cases.into_iter().enumerate() {
        check_conv(c, seed as u64);
    }
}

fn conv_case() -> impl Strategy<Value = Case> {
    (
        (1usize..5, 1usize..4, 1usize..4, 1usize..4),
        (1usize..5, 1usize..5, 1usize..4, 0usize..3),
        (0usize..8, 0usize..8, any::<bool>()),
    )
        .prop_map(
            |((b, groups, cg, dg), (kh, kw, stride, pad), (eh, ew, bias))| {
                // Sizes from the smallest the kernel fits in upwards.
                let h = (kh + eh).saturating_sub(2 * pad).max(1);
                let w = (kw + ew).saturating_sub(2 * pad).max(1);
                case(b, groups, cg, dg, (h, w), (kh, kw), stride, pad, bias)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn conv_matches_direct_convolution_on_any_geometry(c in conv_case(), seed in any::<u64>()) {
        check_conv(c, seed);
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col(c in conv_case(), seed in any::<u64>()) {
        // ⟨im2col(x), v⟩ = ⟨x, col2im(v)⟩: the input gradient scatters exactly what the forward
        // pass gathered.
        let g = c.geom();
        let (k, n) = (c.cg * c.kh * c.kw, c.oh() * c.ow());
        let x = data(seed, c.c() * c.h * c.w);
        let v = data(seed ^ 1, k * n);
        for grp in 0..c.groups {
            let mut col = vec![f32::NAN; k * n];
            g.im2col(&x, grp * c.cg, &mut col);
            let mut back = vec![0f32; x.len()];
            g.col2im(&v, grp * c.cg, &mut back);
            let lhs: f64 = col.iter().zip(&v).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
            prop_assert!((lhs - rhs).abs() <= 1e-3 * (1.0 + lhs.abs()), "{lhs} vs {rhs}");
        }
    }

    #[test]
    fn batch_norm_matches_textbook(
        (b, c, h, w) in (1usize..4, 1usize..5, 1usize..6, 1usize..6),
        relu in any::<bool>(),
        seed in any::<u64>(),
    ) {
        prop_assume!(b * h * w > 1);
        check_batch_norm(BatchNormDims::new(b, c, h, w), relu, seed);
    }

    /// The 2 × 2 path against the general one on values with ties, signed zeros and NaNs: the
    /// same maxima and the same input each gradient reaches, bit for bit.
    #[test]
    fn max_pool_2x2_matches_the_general_windows(
        (planes, h, w) in (1usize..4, 2usize..12, 2usize..12),
        seed in any::<u64>(),
    ) {
        let specials = [0.0f32, -0.0, 1.0, -1.0, f32::NAN];
        let x: Vec<f32> = data(seed, planes * h * w)
            .iter()
            .map(|v| specials[((v.abs() * 97.0) as usize) % specials.len()])
            .collect();
        let dy = data(seed ^ 1, planes * (h / 2) * (w / 2));
        let pool = MaxPool2d::new(2, h, w).unwrap();
        let (y, dx) = (pool.forward(&x).unwrap(), pool.backward(&x, &dy).unwrap());
        let (want_y, want_dx) = pool.general(&x, &dy);
        prop_assert_eq!(bits(&y), bits(&want_y));
        prop_assert_eq!(bits(&dx), bits(&want_dx));
    }

    #[test]
    fn max_pool_matches_plain_windows(
        (planes, k, h, w) in (1usize..5, 1usize..4, 0usize..9, 0usize..9),
        seed in any::<u64>(),
    ) {
        check_max_pool(planes, k, h + k, w + k, seed);
    }
}

#[test]
fn conv_gradients_do_not_depend_on_the_thread_count() {
    let c = case(21, 2, 3, 2, (9, 9), (3, 3), 2, 1, true);
    let g = c.geom();
    let x = data(1, c.b * c.c() * c.h * c.w);
    let w = data(2, c.d() * c.cg * 9);
    let dy = data(3, c.y_len());
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let y = g.forward(&x, &w, None).unwrap();
            let ConvGrads { dx, dw, db } = g.backward(&x, &w, &dy, (true, true, true)).unwrap();
            [y, dx.unwrap(), dw.unwrap(), db.unwrap()].map(|v| bits(&v))
        })
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn conv_computes_only_the_gradients_asked_for() {
    let c = case(3, 1, 2, 3, (6, 6), (3, 3), 1, 1, true);
    let g = c.geom();
    let x = data(4, c.b * c.c() * 36);
    let w = data(5, c.d() * c.cg * 9);
    let dy = data(6, c.y_len());
    let all = g.backward(&x, &w, &dy, (true, true, true)).unwrap();
    for needs in [
        (false, true, false),
        (true, false, false),
        (false, false, true),
    ] {
        let some = g.backward(&x, &w, &dy, needs).unwrap();
        assert_eq!(some.dx.is_some(), needs.0);
        assert_eq!(some.dw.is_some(), needs.1);
        assert_eq!(some.db.is_some(), needs.2);
        // Skipping one gradient leaves the others' bits alone.
        for (one, full) in [
            (&some.dx, &all.dx),
            (&some.dw, &all.dw),
            (&some.db, &all.db),
        ] {
            if let (Some(one), Some(full)) = (one, full) {
                assert_eq!(bits(one), bits(full));
            }
        }
    }
}

#[test]
fn bad_conv_sizes_are_errors() {
    let p = Conv2dParams {
        stride: 1,
        padding: 0,
        groups: 1,
    };
    let geometry = |r: crate::Result<Conv2dGeom>| matches!(r, Err(Error::Geometry { .. }));
    assert!(matches!(
        Conv2dGeom::new(&[1, 3, 8], &[4, 3, 3, 3], p),
        Err(Error::Shape { .. })
    ));
    assert!(geometry(Conv2dGeom::new(&[1, 3, 8, 8], &[4, 3, 9, 9], p)));
    assert!(geometry(Conv2dGeom::new(&[1, 3, 8, 8], &[4, 2, 3, 3], p)));
    assert!(geometry(Conv2dGeom::new(
        &[1, 3, 8, 8],
        &[4, 3, 3, 3],
        Conv2dParams { stride: 0, ..p }
    )));
    assert!(geometry(Conv2dGeom::new(
        &[1, 4, 8, 8],
        &[3, 2, 3, 3],
        Conv2dParams { groups: 2, ..p }
    )));
    assert!(geometry(Conv2dGeom::new(&[1, 0, 8, 8], &[4, 0, 3, 3], p)));
    assert!(geometry(Conv2dGeom::new(&[1, 3, 8, 8], &[0, 3, 3, 3], p)));
    // An empty batch is fine.
    let g = Conv2dGeom::new(&[0, 3, 8, 8], &[4, 3, 3, 3], p).unwrap();
    assert_eq!(g.forward(&[], &[0.; 108], None).unwrap(), Vec::<f32>::new());
    let g = Conv2dGeom::new(&[1, 3, 8, 8], &[4, 3, 3, 3], p).unwrap();
    let (x, w) = (vec![0.; 192], vec![0.; 108]);
    let length = |r: crate::Result<Vec<f32>>| matches!(r, Err(Error::Length { .. }));
    assert!(length(g.forward(&x[1..], &w, None)));
    assert!(length(g.forward(&x, &w[1..], None)));
    assert!(length(g.forward(&x, &w, Some(&[0.; 3][..]))));
    assert!(g.backward(&x, &w, &[0.; 143], (true, true, true)).is_err());
}

#[test]
fn gemm_matches_plain_products() {
    let (m, n, k) = (5, 7, 4);
    let a = data(7, m * k);
    let b = data(8, k * n);
    let naive = |i: usize, j: usize| -> f64 {
        (0..k)
            .map(|l| f64::from(a[i * k + l]) * f64::from(b[l * n + j]))
            .sum()
    };
    let want: Vec<f64> = (0..m * n).map(|e| naive(e / n, e % n)).collect();
    let mut c = vec![f32::NAN; m * n];
    gemm((m, n, k), Mat::rows(&a, k), Mat::rows(&b, n), &mut c, false);
    assert_close("c = a·b", &c, &want);
    // Accumulating onto ones.
    let mut c = vec![1f32; m * n];
    gemm((m, n, k), Mat::rows(&a, k), Mat::rows(&b, n), &mut c, true);
    assert_close(
        "c += a·b",
        &c,
        &want.iter().map(|v| v + 1.0).collect::<Vec<_>>(),
    );
    // Transposed operands: (bᵀ)ᵀ = b read from a column-major copy.
    let bt: Vec<f32> = (0..n * k).map(|e| b[(e % k) * n + e / k]).collect();
    let mut c = vec![0f32; m * n];
    gemm(
        (m, n, k),
        Mat::rows(&a, k),
        Mat::transposed(&bt, k),
        &mut c,
        false,
    );
    assert_close("c = a·(bᵀ)ᵀ", &c, &want);
    // A column-major output.
    let mut ct = vec![0f32; m * n];
    gemm_strided(
        (m, n, k),
        Mat::rows(&a, k),
        Mat::rows(&b, n),
        (&mut ct, 1, m),
        false,
    );
    let back: Vec<f32> = (0..m * n).map(|e| ct[(e % n) * m + e / n]).collect();
    assert_close("column-major c", &back, &want);
    // An empty reduction clears or keeps `c`.
    let mut c = vec![3f32; 6];
    gemm(
        (2, 3, 0),
        Mat::rows(&[], 0),
        Mat::rows(&[], 3),
        &mut c,
        true,
    );
    assert_eq!(c, [3.; 6]);
    gemm(
        (2, 3, 0),
        Mat::rows(&[], 0),
        Mat::rows(&[], 3),
        &mut c,
        false,
    );
    assert_eq!(c, [0.; 6]);
}

#[test]
fn scratch_is_reused_and_never_shared() {
    scratch::with_cols(16, |outer| {
        outer.fill(7.0);
        // A nested call on the same thread gets a buffer of its own.
        scratch::with_cols(8, |inner| {
            assert_eq!(inner.len(), 8);
            inner.fill(1.0);
        });
        assert!(outer.iter().all(|&v| v == 7.0));
    });
    scratch::with_cols(4, |again| assert_eq!(again.len(), 4));
}

/// Training-mode batch norm (and evaluation mode with the batch's own statistics as running
/// ones) against the textbook formulas in f64.
/// The largest |g| over `cells`.
fn g_max(cells: &[usize], g: impl Fn(usize) -> f64) -> f64 {
    cells.iter().map(|&e| g(e).abs()).fold(0.0, f64::max)
}

fn check_batch_norm(dims: BatchNormDims, relu: bool, seed: u64) {
    let BatchNormDims { b, c, hw } = dims;
    let x: Vec<f32> = data(seed, dims.len()).iter().map(|v| v * 3.0).collect();
    let gamma = data(seed ^ 1, c);
    let beta = data(seed ^ 2, c);
    let dy = data(seed ^ 3, dims.len());
    let eps = 1e-5;
    let at = |i: usize, ch: usize, p: usize| (i * c + ch) * hw + p;
    let m = (b * hw) as f64;
    let mut mean = vec![0f64; c];
    let mut var = vec![0f64; c];
    for ch in 0..c {
        let vals = || (0..b).flat_map(move |i| (0..hw).map(move |p| at(i, ch, p)));
        mean[ch] = vals().map(|e| f64::from(x[e])).sum::<f64>() / m;
        var[ch] = vals()
            .map(|e| (f64::from(x[e]) - mean[ch]).powi(2))
            .sum::<f64>()
            / m;
    }
    let (norm, stats) = BatchNorm::train(dims, &x, eps, relu).unwrap();
    assert_close("mean", &stats.mean, &mean);
    let unbiased: Vec<f64> = var.iter().map(|v| v * m / (m - 1.0)).collect();
    assert_close("unbiased variance", &stats.var, &unbiased);
    // Training-mode gradients; the ReLU mask is read from the kernel's own output.
    let y = norm.forward(&x, &gamma, &beta).unwrap();
    let grads = norm.backward(&x, &gamma, &y, &dy).unwrap();
    let mut want_y = vec![0f64; x.len()];
    let mut want_dx = vec![0f64; x.len()];
    let (mut dgamma, mut dbeta) = (vec![0f64; c], vec![0f64; c]);
    // The input gradient subtracts terms of size |γ|·σ⁻¹·|g| that cancel (exactly, for two
    // samples per channel): f32 rounding of them is not a kernel error. A channel whose few
    // samples lie close together has a large σ⁻¹.
    let mut cancelled = 0f64;
    for ch in 0..c {
        let is = 1.0 / (var[ch] + eps).sqrt();
        let (gm, bt) = (f64::from(gamma[ch]), f64::from(beta[ch]));
        let xhat = |e: usize| (f64::from(x[e]) - mean[ch]) * is;
        let g = |e: usize| {
            if relu && y[e] <= 0.0 {
                0.0
            } else {
                f64::from(dy[e])
            }
        };
        let cells: Vec<usize> = (0..b)
            .flat_map(|i| (0..hw).map(move |p| at(i, ch, p)))
            .collect();
        for &e in &cells {
            let v = gm * xhat(e) + bt;
            want_y[e] = if relu { v.max(0.0) } else { v };
            dgamma[ch] += g(e) * xhat(e);
            dbeta[ch] += g(e);
        }
        for &e in &cells {
            want_dx[e] = gm * is * (g(e) - dbeta[ch] / m - xhat(e) * dgamma[ch] / m);
        }
        let terms: f64 = cells.iter().map(|&e| g(e).abs()).sum::<f64>() / m + g_max(&cells, g);
        cancelled = cancelled.max(gm.abs() * is * terms);
    }
    assert_close("output", &y, &want_y);
    let slack = 64.0 * f64::from(f32::EPSILON) * cancelled;
    assert_close_within("input gradient", &grads.dx, &want_dx, slack);
    assert_close("gamma gradient", &grads.dgamma, &dgamma);
    assert_close("beta gradient", &grads.dbeta, &dbeta);
    // Evaluation mode with the same (biased) variance normalises identically but treats the
    // statistics as constants: dx = γ·σ⁻¹·g.
    let mean32: Vec<f32> = mean.iter().map(|&v| v as f32).collect();
    let var32: Vec<f32> = var.iter().map(|&v| v as f32).collect();
    let eval = BatchNorm::eval(dims, &mean32, &var32, eps, relu).unwrap();
    let ye = eval.forward(&x, &gamma, &beta).unwrap();
    assert_close("evaluation output", &ye, &want_y);
    let ge = eval.backward(&x, &gamma, &ye, &dy).unwrap();
    let want_dx: Vec<f64> = (0..x.len())
        .map(|e| {
            let ch = (e / hw) % c;
            let g = if relu && ye[e] <= 0.0 {
                0.0
            } else {
                f64::from(dy[e])
            };
            f64::from(gamma[ch]) * g / (var[ch] + eps).sqrt()
        })
        .collect();
    assert_close("evaluation input gradient", &ge.dx, &want_dx);
}

#[test]
fn batch_norm_variance_survives_a_large_mean() {
    // One pass over x − shift: no cancellation between Σx² and (Σx)² at a mean of 10⁴.
    let dims = BatchNormDims::new(4, 2, 8, 8);
    let x: Vec<f32> = data(9, dims.len()).iter().map(|v| 1e4 + v).collect();
    let (_, stats) = BatchNorm::train(dims, &x, 1e-5, false).unwrap();
    for ch in 0..2 {
        let vals: Vec<f64> = (0..4)
            .flat_map(|i| (0..64).map(move |p| (i * 2 + ch) * 64 + p))
            .map(|e| f64::from(x[e]))
            .collect();
        let mean = vals.iter().sum::<f64>() / 256.0;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 255.0;
        assert!(
            (f64::from(stats.var[ch]) - var).abs() < 1e-4 * var,
            "{ch}: {stats:?}"
        );
    }
}

#[test]
fn bad_batch_norm_sizes_are_errors() {
    let dims = BatchNormDims::new(2, 3, 2, 2);
    let x = vec![0f32; 24];
    assert!(matches!(
        BatchNorm::train(dims, &x[1..], 1e-5, false),
        Err(Error::Length { .. })
    ));
    assert!(matches!(
        BatchNorm::train(BatchNormDims::new(0, 3, 2, 2), &[], 1e-5, false),
        Err(Error::Geometry { .. })
    ));
    assert!(BatchNorm::eval(BatchNormDims::new(2, 0, 2, 2), &[], &[], 1e-5, false).is_err());
    assert!(BatchNorm::eval(dims, &[0.; 3], &[1.; 2], 1e-5, false).is_err());
    // An empty batch evaluates to nothing.
    let eval = BatchNorm::eval(
        BatchNormDims::new(0, 3, 2, 2),
        &[0.; 3],
        &[1.; 3],
        1e-5,
        true,
    );
    let y = eval.unwrap().forward(&[], &[1.; 3], &[0.; 3]).unwrap();
    assert!(y.is_empty());
    let (norm, _) = BatchNorm::train(dims, &x, 1e-5, false).unwrap();
    assert!(norm.forward(&x, &[1.; 3], &[0.; 2]).is_err());
    assert!(norm.backward(&x, &[1.; 3], &x, &x[2..]).is_err());
}

#[test]
fn relu_and_its_gradient() {
    let x = data(10, 40_000);
    let y = relu(&x);
    assert!(
        y.iter()
            .zip(&x)
            .all(|(&y, &x)| y == if x > 0.0 { x } else { 0.0 })
    );
    let dy = data(11, x.len());
    let dx = relu_backward(&y, &dy).unwrap();
    for ((&d, &v), &g) in dx.iter().zip(&y).zip(&dy) {
        assert_eq!(d, if v > 0.0 { g } else { 0.0 });
    }
    assert!(matches!(
        relu_backward(&y, &dy[1..]),
        Err(Error::Length { .. })
    ));
}

/// Pooling of `planes` planes of `h × w` against plain window loops; values on a coarse grid so
/// that windows hold ties (the first maximum wins).
fn check_max_pool(planes: usize, k: usize, h: usize, w: usize, seed: u64) {
    let x: Vec<f32> = data(seed, planes * h * w)
        .iter()
        .map(|v| (v * 4.0).round())
        .collect();
    let dy = data(seed ^ 1, planes * (h / k) * (w / k));
    let pool = MaxPool2d::new(k, h, w).unwrap();
    let (oh, ow) = pool.out();
    assert_eq!((oh, ow), (h / k, w / k));
    let (mut want_y, mut want_dx) = (Vec::new(), vec![0f32; x.len()]);
    for p in 0..planes {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = p * h * w + oy * k * w + ox * k;
                for i in 0..k {
                    for j in 0..k {
                        let e = p * h * w + (oy * k + i) * w + ox * k + j;
                        if x[e] > x[best] {
                            best = e;
                        }
                    }
                }
                want_y.push(x[best]);
                want_dx[best] += dy[(p * oh + oy) * ow + ox];
            }
        }
    }
    assert_eq!(pool.forward(&x).unwrap(), want_y);
    assert_eq!(bits(&pool.backward(&x, &dy).unwrap()), bits(&want_dx));
}

#[test]
fn max_pool_propagates_nan_and_rejects_bad_sizes() {
    let pool = MaxPool2d::new(2, 2, 2).unwrap();
    let y = pool.forward(&[1.0, f32::NAN, 3.0, 2.0]).unwrap();
    assert!(y[0].is_nan());
    assert_eq!(
        pool.backward(&[1.0, f32::NAN, 3.0, 2.0], &[5.0]).unwrap(),
        [0.0, 5.0, 0.0, 0.0]
    );
    let geometry = |r: crate::Result<MaxPool2d>| matches!(r, Err(Error::Geometry { .. }));
    assert!(geometry(MaxPool2d::new(0, 4, 4)));
    assert!(geometry(MaxPool2d::new(3, 2, 4)));
    assert!(pool.forward(&[0.; 5]).is_err());
    assert!(pool.backward(&[0.; 8], &[0.; 3]).is_err());
}

#[test]
fn sgd_passes_follow_pytorch() {
    // torch.optim.SGD(momentum=0.9, weight_decay=0.01, lr=0.1), second step onwards:
    // buf ← 0.9·buf + g + 0.01·w, then w ← w − 0.1·buf.
    let mut w = vec![1.0f32, -2.0];
    let mut buf = vec![0.5f32, 0.25];
    let g = [0.1f32, -0.3];
    sgd::momentum_update(&mut buf, &g, &w, 0.9, 0.01).unwrap();
    let want_buf = [0.9 * 0.5 + 0.1 + 0.01, 0.9 * 0.25 - 0.3 - 0.02];
    for (b, want) in buf.iter().zip(want_buf) {
        assert!((f64::from(*b) - want).abs() < 1e-6, "{buf:?}");
    }
    sgd::descend(&mut w, &buf, 0.1).unwrap();
    assert!((f64::from(w[0]) - (1.0 - 0.1 * want_buf[0])).abs() < 1e-6);
    assert!((f64::from(w[1]) - (-2.0 - 0.1 * want_buf[1])).abs() < 1e-6);
    assert!(matches!(
        sgd::momentum_update(&mut buf, &g[..1], &w, 0.9, 0.0),
        Err(Error::Length { .. })
    ));
    assert!(sgd::descend(&mut w, &buf[..1], 0.1).is_err());
}

/// Two samples per channel lying close together (found by the property test above): the exact
/// input gradient is zero, and the kernel's is f32 rounding of cancelling terms scaled by σ⁻¹.
#[test]
fn batch_norm_of_two_close_samples() {
    check_batch_norm(
        BatchNormDims::new(2, 4, 1, 1),
        true,
        687_644_342_742_180_956,
    );
}
