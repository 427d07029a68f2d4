//! Pure f64 least squares on plain matrices: the closed-form local fit of one filter on a fixed
//! support and the greedy restoration of removed weights (`docs/energy-aware-pruning.md`
//! §2 steps 3–4 and §3).
//!
//! For a filter with targets `y ∈ R^K` and local inputs `X ∈ R^{K×n}`, the fit on a support `S`
//! solves `min_w ‖y − X_S·w − b·1‖² + λ‖w‖²`, the bias `b` (when present) unregularised and every
//! entry outside `S` exactly 0. The normal equations `(X_SᵀX_S + λI)·w = X_Sᵀy` are solved by
//! Cholesky; when the factorisation fails or its condition estimate is poor, Householder QR of
//! the augmented system `[X_S; √λ·I]` takes over, and a system that is still too ill conditioned
//! is reported as [`Singular`] rather than solved into garbage.
//!
//! [`LeastSquares`] caches the Gram matrix `[X 1]ᵀ[X 1]` once per layer (or group), so every
//! filter, every support tried and every restore candidate reuses it.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest condition estimate of `[X_S; √λ·I]` (the ratio of the Cholesky factor's extreme
/// pivots) accepted from the normal equations. Squaring the condition in the normal equations
/// costs digits, so above this the fit is redone by QR.
pub const CHOLESKY_COND_LIMIT: f64 = 1e6;

/// A dense row-major `rows × cols` matrix of f64.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// A matrix from row-major data; `data.len()` must be `rows·cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::Dimension {
                what: "matrix data",
                expected: rows * cols,
                got: data.len(),
            });
        }
        Ok(Self { rows, cols, data })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Entry `(r, c)`. Panics when out of bounds.
    pub fn get(&self, r: usize, c: usize) -> f64 {
        assert!(r < self.rows && c < self.cols, "matrix index out of bounds");
        self.data[r * self.cols + c]
    }

    /// Row `r`. Panics when out of bounds.
    pub fn row(&self, r: usize) -> &[f64] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// The row-major data.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }
}

/// A least-squares system too ill conditioned to solve; `cond` estimates the condition number of
/// `[X_S; √λ·I]` (infinite when a pivot vanished or there are fewer equations than unknowns).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Singular {
    /// The condition estimate.
    pub cond: f64,
}

/// Which factorisation produced a fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// Nothing to solve (empty support, no bias).
    None,
    /// Cholesky on the normal equations.
    Cholesky,
    /// Householder QR on the augmented system.
    Qr,
}

/// Numerical options of one solve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SolveOptions {
    /// Ridge weight λ ≥ 0 on the weights (never on the bias), absolute.
    pub lambda: f64,
    /// Largest condition estimate of `[X_S; √λ·I]` the QR fallback accepts before reporting
    /// [`Singular`]; > 1.
    pub max_condition: f64,
}

/// The solution of one fit.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// One weight per column of `X`; exactly 0 outside the support.
    pub weights: Vec<f64>,
    /// The bias (0 without a bias column).
    pub bias: f64,
    /// `‖y − X·w − b‖²`.
    pub sq_error: f64,
    /// `sq_error + λ‖w‖²`, the minimised objective.
    pub objective: f64,
    /// The factorisation used.
    pub solver: Solver,
}

/// Greedy restoration rule (spec §2 step 3).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestoreRule {
    /// Stop when re-admitting the best candidate lowers the objective by less than this
    /// fraction of `‖y‖²`; ≥ 0.
    pub threshold: f64,
    /// Most weights re-admitted for this filter.
    pub max_count: usize,
}

/// Targets of one filter with their products against the cached system.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    y: Vec<f64>,
    aty: Vec<f64>,
    yy: f64,
}

impl Target {
    /// `‖y‖²`.
    pub fn norm_sq(&self) -> f64 {
        self.yy
    }
}

/// The local inputs `X` of one layer (or group) with the cached Gram matrix of `[X 1]`.
#[derive(Clone, Debug)]
pub struct LeastSquares {
    /// Columns of `[X 1]`, column-major, so dot products run over contiguous memory.
    columns: Vec<f64>,
    rows: usize,
    /// Weight columns `n` (the bias column, when present, is index `n`).
    n: usize,
    bias: bool,
    gram: Vec<f64>,
}

impl LeastSquares {
    /// Caches `[X 1]ᵀ[X 1]` (`bias` adds the ones column).
    pub fn new(x: &Matrix, bias: bool) -> Self {
        let (rows, n) = (x.rows, x.cols);
        let m = n + usize::from(bias);
        let mut columns = vec![0.0; rows * m];
        for r in 0..rows {
            for c in 0..n {
                columns[c * rows + r] = x.data[r * n + c];
            }
        }
        if bias {
            columns[n * rows..].fill(1.0);
        }
        let col = |j: usize| &columns[j * rows..(j + 1) * rows];
        // Rows of the upper triangle in parallel; each entry is one sequential dot product, so
        // the result does not depend on the thread count.
        let mut gram = vec![0.0; m * m];
        gram.par_chunks_mut(m.max(1))
            .enumerate()
            .for_each(|(i, row)| {
                for (j, v) in row.iter_mut().enumerate().skip(i) {
                    *v = dot(col(i), col(j));
                }
            });
        for i in 0..m {
            for j in 0..i {
                gram[i * m + j] = gram[j * m + i];
            }
        }
        Self {
            columns,
            rows,
            n,
            bias,
            gram,
        }
    }

    /// Weight columns `n`.
    pub fn cols(&self) -> usize {
        self.n
    }

    /// Equations `K`.
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn m(&self) -> usize {
        self.n + usize::from(self.bias)
    }

    fn column(&self, j: usize) -> &[f64] {
        &self.columns[j * self.rows..(j + 1) * self.rows]
    }

    /// Prepares the targets `y` (length `K`) of one filter.
    pub fn target(&self, y: &[f64]) -> Result<Target> {
        if y.len() != self.rows {
            return Err(Error::Dimension {
                what: "least-squares targets",
                expected: self.rows,
                got: y.len(),
            });
        }
        let aty = (0..self.m()).map(|j| dot(self.column(j), y)).collect();
        Ok(Target {
            y: y.to_vec(),
            aty,
            yy: dot(y, y),
        })
    }

    /// Active augmented columns: the support in ascending order, then the bias.
    fn active(&self, support: &[bool]) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.n).filter(|&j| support[j]).collect();
        if self.bias {
            idx.push(self.n);
        }
        idx
    }

    /// The ridge fit on `support` (length `n`); entries outside it are exactly 0.
    pub fn fit(
        &self,
        t: &Target,
        support: &[bool],
        opts: SolveOptions,
    ) -> std::result::Result<Fit, Singular> {
        debug_assert_eq!(support.len(), self.n);
        self.fit_active(t, self.active(support), opts)
            .map(|(fit, _)| fit)
    }

    /// The fit on the augmented columns `idx`, with the Cholesky factor when that solver was
    /// used (for cheap extension during restoration).
    fn fit_active(
        &self,
        t: &Target,
        idx: Vec<usize>,
        opts: SolveOptions,
    ) -> std::result::Result<(Fit, Option<Factor>), Singular> {
        if idx.is_empty() {
            return Ok((self.assemble(t, &idx, &[], Solver::None, opts), None));
        }
        let mut factor = Factor::default();
        let mut ok = true;
        for &j in &idx {
            if !factor.push(self, j, opts) {
                ok = false;
                break;
            }
        }
        if ok {
            let coef = factor.solve(t);
            let fit = self.assemble(t, &factor.order, &coef, Solver::Cholesky, opts);
            Ok((fit, Some(factor)))
        } else {
            let coef = self.qr_solve(t, &idx, opts)?;
            Ok((self.assemble(t, &idx, &coef, Solver::Qr, opts), None))
        }
    }

    /// A [`Fit`] from coefficients on the augmented columns `idx`, with its error computed from
    /// the data (not from the Gram matrix, which would lose digits to cancellation).
    fn assemble(
        &self,
        t: &Target,
        idx: &[usize],
        coef: &[f64],
        solver: Solver,
        opts: SolveOptions,
    ) -> Fit {
        let mut weights = vec![0.0; self.n];
        let mut bias = 0.0;
        let mut residual = t.y.clone();
        for (&j, &c) in idx.iter().zip(coef) {
            if j < self.n {
                weights[j] = c;
            } else {
                bias = c;
            }
            for (r, a) in residual.iter_mut().zip(self.column(j)) {
                *r -= c * a;
            }
        }
        let sq_error = dot(&residual, &residual);
        let objective = sq_error + opts.lambda * dot(&weights, &weights);
        Fit {
            weights,
            bias,
            sq_error,
            objective,
            solver,
        }
    }

    /// Gram entry of augmented columns `i` and `j`, with the ridge on weight diagonals.
    fn gram_ridge(&self, i: usize, j: usize, lambda: f64) -> f64 {
        let g = self.gram[i * self.m() + j];
        if i == j && i < self.n { g + lambda } else { g }
    }

    /// Householder QR of `[A_S; √λ·I]` with the right-hand side `[y; 0]`.
    fn qr_solve(
        &self,
        t: &Target,
        idx: &[usize],
        opts: SolveOptions,
    ) -> std::result::Result<Vec<f64>, Singular> {
        let p = idx.len();
        let ridge_rows: Vec<usize> = if opts.lambda > 0.0 {
            (0..p).filter(|&k| idx[k] < self.n).collect()
        } else {
            Vec::new()
        };
        let rows = self.rows + ridge_rows.len();
        if rows < p {
            return Err(Singular {
                cond: f64::INFINITY,
            });
        }
        // Column-major copy of the augmented system.
        let mut a = vec![0.0; rows * p];
        for (k, &j) in idx.iter().enumerate() {
            a[k * rows..k * rows + self.rows].copy_from_slice(self.column(j));
        }
        let s = opts.lambda.sqrt();
        for (extra, &k) in ridge_rows.iter().enumerate() {
            a[k * rows + self.rows + extra] = s;
        }
        let mut v = t.y.clone();
        v.resize(rows, 0.0);
        let mut diag = vec![0.0; p];
        for k in 0..p {
            let col = &a[k * rows + k..(k + 1) * rows];
            let norm = dot(col, col).sqrt();
            if norm == 0.0 {
                continue;
            }
            let alpha = if col[0] > 0.0 { -norm } else { norm };
            let mut u = col.to_vec();
            u[0] -= alpha;
            let uu = dot(&u, &u);
            diag[k] = alpha;
            if uu == 0.0 {
                continue;
            }
            for j in k..p {
                let c = &mut a[j * rows + k..(j + 1) * rows];
                let f = 2.0 * dot(&u, c) / uu;
                for (ci, ui) in c.iter_mut().zip(&u) {
                    *ci -= f * ui;
                }
            }
            let f = 2.0 * dot(&u, &v[k..]) / uu;
            for (vi, ui) in v[k..].iter_mut().zip(&u) {
                *vi -= f * ui;
            }
        }
        let (lo, hi) = diag.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), d| {
            (lo.min(d.abs()), hi.max(d.abs()))
        });
        let cond = if lo > 0.0 { hi / lo } else { f64::INFINITY };
        if !cond.is_finite() || cond > opts.max_condition {
            return Err(Singular { cond });
        }
        let mut w = vec![0.0; p];
        for k in (0..p).rev() {
            let mut s = v[k];
            for j in k + 1..p {
                s -= a[j * rows + k] * w[j];
            }
            w[k] = s / a[k * rows + k];
        }
        Ok(w)
    }

    /// Greedy restoration (spec §2 step 3): starting from `support`, repeatedly re-admits the
    /// candidate whose correlation with the current residual promises the largest drop of the
    /// objective (`(Xⱼᵀr)² / (‖Xⱼ‖² + λ)`, the drop with only its own coefficient free, a lower
    /// bound of the drop after the joint refit), refits on the enlarged support and keeps the
    /// weight when the objective fell by at least `rule.threshold·‖y‖²`, stopping otherwise.
    /// Candidates already in the support are ignored; a candidate whose refit is singular
    /// (collinear with the support) is skipped. The refit extends the Cholesky factor by one
    /// row (`O(|S|²)`) when it can and refits from scratch otherwise. Returns the final fit and
    /// the re-admitted indices in order; the support only grows and the objective never
    /// increases.
    pub fn restore(
        &self,
        t: &Target,
        support: &mut [bool],
        candidates: &[usize],
        opts: SolveOptions,
        rule: RestoreRule,
    ) -> std::result::Result<(Fit, Vec<usize>), Singular> {
        let (mut fit, mut factor) = self.fit_active(t, self.active(support), opts)?;
        let mut pool: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&j| j < self.n && !support[j])
            .collect();
        pool.sort_unstable();
        pool.dedup();
        let m = self.m();
        let mut restored = Vec::new();
        while restored.len() < rule.max_count && !pool.is_empty() {
            let active = self.active(support);
            let coef = |j: usize| if j < self.n { fit.weights[j] } else { fit.bias };
            let mut best: Option<(usize, f64)> = None;
            for (pos, &j) in pool.iter().enumerate() {
                let g = &self.gram[j * m..(j + 1) * m];
                let c = t.aty[j] - active.iter().map(|&i| g[i] * coef(i)).sum::<f64>();
                let score = c * c / (g[j] + opts.lambda);
                if best.is_none_or(|(_, s)| score > s) {
                    best = Some((pos, score));
                }
            }
            let Some((pos, score)) = best else { break };
            if score.is_nan() || score <= 0.0 {
                break;
            }
            let j = pool.remove(pos);
            support[j] = true;
            let extended = factor.as_ref().and_then(|f| {
                let mut f = f.clone();
                f.push(self, j, opts).then(|| {
                    let coef = f.solve(t);
                    (
                        self.assemble(t, &f.order, &coef, Solver::Cholesky, opts),
                        Some(f),
                    )
                })
            });
            let next = match extended {
                Some(next) => Ok(next),
                None => self.fit_active(t, self.active(support), opts),
            };
            match next {
                Ok((next, f)) if fit.objective - next.objective >= rule.threshold * t.yy => {
                    fit = next;
                    factor = f;
                    restored.push(j);
                }
                Ok(_) => {
                    support[j] = false;
                    break;
                }
                Err(_) => support[j] = false,
            }
        }
        Ok((fit, restored))
    }
}

/// A lower Cholesky factor of the regularised Gram matrix of the augmented columns `order`,
/// grown one column at a time.
#[derive(Clone, Debug, Default)]
struct Factor {
    order: Vec<usize>,
    /// Row `i` holds `L[i][0..=i]`.
    rows: Vec<Vec<f64>>,
    lo: f64,
    hi: f64,
}

impl Factor {
    /// Appends augmented column `j`; `false` (and the factor unchanged) when the new pivot is
    /// not positive or the pivot ratio, an estimate of the condition of `[X_S; √λ·I]`, exceeds
    /// [`CHOLESKY_COND_LIMIT`] or `max_condition`.
    fn push(&mut self, ls: &LeastSquares, j: usize, opts: SolveOptions) -> bool {
        let p = self.order.len();
        let mut row = Vec::with_capacity(p + 1);
        for i in 0..p {
            let li = &self.rows[i];
            let s = ls.gram_ridge(self.order[i], j, opts.lambda) - dot(&li[..i], &row);
            row.push(s / li[i]);
        }
        let d2 = ls.gram_ridge(j, j, opts.lambda) - dot(&row, &row);
        if !d2.is_finite() || d2 <= 0.0 {
            return false;
        }
        let d = d2.sqrt();
        let (lo, hi) = if p == 0 {
            (d, d)
        } else {
            (self.lo.min(d), self.hi.max(d))
        };
        let cond = hi / lo;
        if cond > CHOLESKY_COND_LIMIT || cond > opts.max_condition {
            return false;
        }
        row.push(d);
        self.rows.push(row);
        self.order.push(j);
        (self.lo, self.hi) = (lo, hi);
        true
    }

    /// Coefficients in `order` solving `L·Lᵀ·w = Xᵀy`.
    fn solve(&self, t: &Target) -> Vec<f64> {
        let p = self.order.len();
        let mut z: Vec<f64> = self.order.iter().map(|&j| t.aty[j]).collect();
        for i in 0..p {
            let li = &self.rows[i];
            z[i] = (z[i] - dot(&li[..i], &z[..i])) / li[i];
        }
        for i in (0..p).rev() {
            for k in i + 1..p {
                z[i] -= self.rows[k][i] * z[k];
            }
            z[i] /= self.rows[i][i];
        }
        z
    }
}

/// One-shot fit of `y ≈ X_S·w + b` on `support` (see [`LeastSquares::fit`]).
pub fn fit_support(
    x: &Matrix,
    y: &[f64],
    support: &[bool],
    bias: bool,
    opts: SolveOptions,
) -> Result<std::result::Result<Fit, Singular>> {
    if support.len() != x.cols {
        return Err(Error::Dimension {
            what: "support",
            expected: x.cols,
            got: support.len(),
        });
    }
    let ls = LeastSquares::new(x, bias);
    let t = ls.target(y)?;
    Ok(ls.fit(&t, support, opts))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
