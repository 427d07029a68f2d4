//! The tap-based data collection over the calibration images: the local least-squares systems
//! of one layer (im2col rows of its input at sampled output positions, targets from the
//! original weights) and every layer's measured input density.

use rayon::prelude::*;
use tensor_core::tensor::{DType, Tensor};
use tensor_core::{BatchSource, Density, LayerId, LayerInfo, LayerKind, Network, Taps};

use super::weights::{Snapshot, host, load, snapshot};
use crate::config::{ActivationDensity, EnergyPruneConfig};
use crate::error::{Error, Result};
use crate::restore::{LeastSquares, Matrix, Target};

/// The first `n` images of epoch 0 of `src` (labels dropped).
pub(super) fn calibration_images(src: &mut dyn BatchSource, n: usize) -> Result<Vec<Tensor>> {
    let mut out = Vec::new();
    let mut have = 0;
    for i in 0..src.batches_per_epoch() {
        if have >= n {
            break;
        }
        let (xs, _) = src.batch(0, i)?;
        let b = xs.dim(0)?;
        let take = b.min(n - have);
        out.push(if take < b { xs.narrow(0, 0, take)? } else { xs });
        have += take;
    }
    if have == 0 {
        return Err(Error::EmptyData {
            what: "calibration source",
        });
    }
    Ok(out)
}

/// Fraction of nonzero inputs of every layer over the calibration images.
struct DensityTap {
    counts: Vec<(u64, u64)>,
}

impl Taps for DensityTap {
    fn post(&mut self, id: LayerId, input: &Tensor, _output: &Tensor) -> tensor_core::Result<()> {
        let nz = input
            .ne(0.0)?
            .to_dtype(DType::F64)?
            .sum_all()?
            .to_scalar::<f64>()?;
        if let Some(c) = self.counts.get_mut(id.0) {
            c.0 += nz as u64;
            c.1 += input.elem_count() as u64;
        }
        Ok(())
    }
}

/// Every layer's input density over `cal` when `mode` measures them, `None` when dense.
pub(super) fn measure(
    net: &dyn Network,
    cal: &[Tensor],
    mode: ActivationDensity,
) -> Result<Option<Vec<Density>>> {
    if mode == ActivationDensity::Dense {
        return Ok(None);
    }
    let mut tap = DensityTap {
        counts: vec![(0, 0); net.layers().len()],
    };
    for xs in cal {
        net.forward_tapped(xs, false, &mut tap)?;
    }
    let d = tap
        .counts
        .iter()
        .map(|&(nz, n)| {
            if n == 0 {
                Ok(Density::DENSE)
            } else {
                Density::from_counts(nz, n)
            }
        })
        .collect::<tensor_core::Result<Vec<_>>>()?;
    Ok(Some(d))
}

/// Local least-squares data of one layer: per group the system `X_g`, per filter its targets.
pub(crate) struct LocalData {
    pub(crate) rows: usize,
    pub(crate) groups: Vec<LeastSquares>,
    pub(crate) targets: Vec<Target>,
}

/// Captures one layer's im2col rows (from its input) or targets (from its output) at the
/// sampled positions.
struct LocalTap<'a> {
    layer: &'a LayerInfo,
    positions: &'a [Vec<usize>],
    capture_input: bool,
    seen: usize,
    /// Per group, row-major rows of `X_g`.
    xs: Vec<Vec<f64>>,
    /// Row-major `rows × d` targets.
    ys: Vec<f64>,
}

impl Taps for LocalTap<'_> {
    fn post(&mut self, id: LayerId, input: &Tensor, output: &Tensor) -> tensor_core::Result<()> {
        if id != self.layer.id {
            return Ok(());
        }
        let g = self.layer.geometry;
        let b = input.dim(0)?;
        // The im2col indexing below trusts these shapes, so they are checked, not assumed.
        let (in_expected, out_expected) = match self.layer.kind {
            LayerKind::Conv => (
                vec![b, g.in_channels(), g.in_h(), g.in_w()],
                vec![b, g.out_channels(), g.out_h(), g.out_w()],
            ),
            LayerKind::Fc => (vec![b, g.in_features()], vec![b, g.out_channels()]),
        };
        let in_ok = match self.layer.kind {
            LayerKind::Conv => input.dims() == in_expected.as_slice(),
            LayerKind::Fc => input.elem_count() == b * g.in_features(),
        };
        for (what, ok, expected, got) in [
            ("tapped layer input", in_ok, in_expected, input.dims()),
            (
                "tapped layer output",
                output.dims() == out_expected.as_slice(),
                out_expected.clone(),
                output.dims(),
            ),
        ] {
            if !ok {
                return Err(tensor_core::Error::Shape {
                    what: format!("{what} of {}", self.layer.name),
                    expected,
                    got: got.to_vec(),
                });
            }
        }
        let start = self.seen;
        self.seen += b;
        if self.capture_input {
            let x = input
                .flatten_all()?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?;
            match self.layer.kind {
                LayerKind::Fc => self.xs[0].extend_from_slice(&x),
                LayerKind::Conv => {
                    let (c, h, w) = (g.in_channels(), g.in_h(), g.in_w());
                    let cg = g.channels_per_group();
                    let (kh, kw) = g.kernel();
                    let (stride, padding) = (g.stride(), g.padding());
                    let ow = g.out_w();
                    for i in 0..b {
                        let img = &x[i * c * h * w..(i + 1) * c * h * w];
                        for &p in &self.positions[start + i] {
                            let (oy, ox) = (p / ow, p % ow);
                            for (grp, rows) in self.xs.iter_mut().enumerate() {
                                for ci in grp * cg..(grp + 1) * cg {
                                    for ky in 0..kh {
                                        let iy = (oy * stride.0 + ky) as isize - padding.0 as isize;
                                        for kx in 0..kw {
                                            let ix =
                                                (ox * stride.1 + kx) as isize - padding.1 as isize;
                                            let inside = iy >= 0
                                                && ix >= 0
                                                && (iy as usize) < h
                                                && (ix as usize) < w;
                                            rows.push(if inside {
                                                img[ci * h * w + iy as usize * w + ix as usize]
                                            } else {
                                                0.0
                                            });
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        } else {
            let y = output
                .flatten_all()?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?;
            let d = g.out_channels();
            match self.layer.kind {
                LayerKind::Fc => self.ys.extend_from_slice(&y),
                LayerKind::Conv => {
                    let p = g.out_positions();
                    for i in 0..b {
                        for &pos in &self.positions[start + i] {
                            for m in 0..d {
                                self.ys.push(y[i * d * p + m * p + pos]);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Output positions sampled for every calibration image: all of them in order when the map
/// has at most `k`, else `k` distinct ones drawn from a stream named after the layer.
fn sample_positions(layer: &LayerInfo, images: usize, k: usize, seed: u64) -> Vec<Vec<usize>> {
    let p = match layer.kind {
        LayerKind::Fc => return vec![vec![0]; images],
        LayerKind::Conv => layer.geometry.out_positions(),
    };
    let mut rng = tensor_core::rng(seed, &format!("positions/{}", layer.name));
    (0..images)
        .map(|_| {
            if p <= k {
                (0..p).collect()
            } else {
                let mut s: Vec<usize> = tensor_core::seed::permutation(p, &mut rng)
                    .into_iter()
                    .take(k)
                    .collect();
                s.sort_unstable();
                s
            }
        })
        .collect()
}

/// Collects `X` from the current network and `Y` from the original weights (spec §2 step 1).
pub(crate) fn local_data(
    net: &dyn Network,
    layer: &LayerInfo,
    original: &Snapshot,
    cal: &[Tensor],
    config: &EnergyPruneConfig,
) -> Result<LocalData> {
    let images = cal
        .iter()
        .map(|t| t.dim(0))
        .sum::<std::result::Result<usize, _>>()?;
    let positions = sample_positions(layer, images, config.positions_per_image, config.seed);
    let groups = layer.geometry.groups();
    let mut tap = LocalTap {
        layer,
        positions: &positions,
        capture_input: true,
        seen: 0,
        xs: vec![Vec::new(); groups],
        ys: Vec::new(),
    };
    for xs in cal {
        net.forward_tapped(xs, false, &mut tap)?;
    }
    let current = snapshot(net.layers())?;
    load(net.layers(), original)?;
    tap.capture_input = false;
    tap.seen = 0;
    let collected = cal
        .iter()
        .try_for_each(|xs| net.forward_tapped(xs, false, &mut tap).map(|_| ()));
    // The current weights go back even when the original pass failed.
    load(net.layers(), &current)?;
    collected?;
    let d = layer.geometry.out_channels();
    let rows = tap.ys.len() / d;
    let fan = layer.geometry.weights() / d;
    if tap.xs.iter().any(|x| x.iter().any(|v| !v.is_finite())) {
        return Err(Error::NonFinite {
            layer: layer.id,
            what: "inputs",
        });
    }
    if tap.ys.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            layer: layer.id,
            what: "targets",
        });
    }
    let bias = layer.bias.is_some() && config.fit_bias;
    let systems = tap
        .xs
        .into_iter()
        .map(|x| Ok(LeastSquares::new(&Matrix::new(rows, fan, x)?, bias)))
        .collect::<Result<Vec<_>>>()?;
    // Without a refitted bias the current bias is subtracted from the targets and kept.
    let b0 = match (&layer.bias, config.fit_bias) {
        (Some(b), false) => Some(host(b.as_tensor())?),
        _ => None,
    };
    let per_group = d / groups;
    let targets = (0..d)
        .into_par_iter()
        .map(|m| {
            let shift = b0.as_ref().map_or(0.0, |b| b[m]);
            let y: Vec<f64> = (0..rows).map(|r| tap.ys[r * d + m] - shift).collect();
            systems[m / per_group].target(&y)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(LocalData {
        rows,
        groups: systems,
        targets,
    })
}
