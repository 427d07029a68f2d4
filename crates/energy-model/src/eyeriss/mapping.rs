//! Fitting the logical row-stationary PE set onto the physical array (docs/energy-models.md B.4).
//!
//! The logical set of one 2-D convolution is an `R × E` grid: PE `(i, j)` convolves filter row
//! `i` with ifmap row `j·U + i` into psum row `j`. A set taller than the array is folded in
//! height; one wider than the array is cut into ofmap strips (width folds). Spare room holds
//! replicas that work on other channels and filters, and width folds are stacked into spare
//! height before replicas are formed there.

use serde::{Deserialize, Serialize};

/// How one layer's logical PE set sits on a `rows × cols` array.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArrayMapping {
    /// Filter rows `R` (height of the logical set).
    pub set_rows: usize,
    /// Ofmap rows `E` (width of the logical set).
    pub set_cols: usize,
    /// Height folds: the set runs `fold_h` times per strip, accumulating psums in between.
    pub fold_h: usize,
    /// Width folds: ofmap strips processed one after another, like extra images.
    pub fold_w: usize,
    /// Replicas stacked vertically (different channels or filters).
    pub repl_h: usize,
    /// Replicas side by side (different filters).
    pub repl_w: usize,
    /// Ofmap rows per strip, `E' = ⌈E / fold_w⌉`.
    pub strip_rows: usize,
    /// Ifmap rows one strip reads, `H' = (E' − 1)·U + R`.
    pub strip_in_rows: usize,
    /// Busy fraction of the array, `R·E·repl_h·repl_w / (rows·cols·fold_h·fold_w)`.
    pub utilisation: f64,
}

impl ArrayMapping {
    /// Concurrent replicas of the (folded) set.
    pub fn replicas(&self) -> usize {
        self.repl_h * self.repl_w
    }
}

/// Fits an `r × e` set with vertical stride `stride` onto a `rows × cols` array (B.4 b).
/// Every input is at least 1; the caller validates geometry and hardware first.
pub fn fit(r: usize, e: usize, stride: usize, rows: usize, cols: usize) -> ArrayMapping {
    debug_assert!(r > 0 && e > 0 && stride > 0 && rows > 0 && cols > 0);
    let (mut fold_h, mut repl_h) = (1, 1);
    if r > rows {
        fold_h = r.div_ceil(rows);
    } else {
        repl_h = rows / r;
    }
    let (mut fold_w, mut repl_w) = (1, 1);
    if e > cols {
        fold_w = e.div_ceil(cols);
    } else {
        repl_w = cols / e;
    }
    // Width folds go into spare height first: a strip stacked under another runs concurrently.
    let stack = repl_h.min(fold_w);
    fold_w = fold_w.div_ceil(stack);
    repl_h /= stack;
    let strip_rows = e.div_ceil(fold_w);
    let strip_in_rows = (strip_rows - 1) * stride + r;
    let utilisation = (r * e * repl_h * repl_w) as f64 / (rows * cols * fold_h * fold_w) as f64;
    ArrayMapping {
        set_rows: r,
        set_cols: e,
        fold_h,
        fold_w,
        repl_h,
        repl_w,
        strip_rows,
        strip_in_rows,
        utilisation,
    }
}
