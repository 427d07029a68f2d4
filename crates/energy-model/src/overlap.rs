//! Row overlap of the ICLR'19 input cache (docs/energy-models.md A.3): when a feature map does not
//! fit in the input cache, it is streamed in batches of whole rows, and the `r − ξ` rows shared by
//! two consecutive batches are fetched from DRAM twice.
//!
//! Yang, Zhu, Liu, ICLR 2019, Appendix (input data access energy). The paper's closed form
//! approximates the repeated rows as `k·(r − ξ)` values per extra batch; this module simulates the
//! greedy row batching on the actual per-row nonzero counts instead, so masked rows cost what
//! they hold. The reference implementation checks rows against the default cache size whatever
//! the configured one; here the configured capacity is used throughout.

use crate::error::{Error, Result};

/// Input values fetched a second time from DRAM because consecutive row batches overlap.
///
/// `rows[i]` is the number of nonzero input values in image row `i` (all channels and columns);
/// `padding` zero rows are added on each side, `kernel` and `stride` are the layer's row kernel
/// and row stride, `capacity` the input cache in values. A batch that cannot hold `kernel` rows
/// is [`Error::InputCacheTooSmall`]. Returns 0 whenever the whole padded map fits.
pub fn row_overlap(
    rows: &[u64],
    padding: usize,
    kernel: usize,
    stride: usize,
    capacity: usize,
) -> Result<u64> {
    debug_assert!(kernel >= 1 && stride >= 1);
    let padded: Vec<u64> = std::iter::repeat_n(0, padding)
        .chain(rows.iter().copied())
        .chain(std::iter::repeat_n(0, padding))
        .collect();
    let height = padded.len();
    let capacity = capacity as u64;
    let (mut beg, mut end): (usize, Option<usize>) = (0, None);
    let mut overlap = 0u64;
    while beg + kernel <= height {
        // Rows already loaded by the previous batch are loaded again by this one.
        if let Some(e) = end
            && beg < e
        {
            overlap += padded[beg..e].iter().sum::<u64>();
        }
        let mut loaded = 0u64;
        let mut stop = height;
        for (i, &n) in padded.iter().enumerate().skip(beg) {
            if loaded + n > capacity {
                stop = i;
                break;
            }
            loaded += n;
        }
        if stop - beg < kernel {
            return Err(Error::InputCacheTooSmall {
                rows: stop - beg,
                r: kernel,
                capacity: capacity as usize,
            });
        }
        end = Some(stop);
        // Advance past every output row this batch completes.
        beg += ((stop - beg - kernel) / stride + 1) * stride;
    }
    Ok(overlap)
}
